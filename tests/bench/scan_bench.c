/* SPDX-License-Identifier: Apache-2.0 */
/* scan_bench: ns/event of event_parse() (jansson) against scan_event() on an NDJSON file; not part of make test. */
/*
 *   build/tpgen --count 1000000 --out /tmp/ev.ndjson
 *   cc -O2 -Iprocessor tests/bench/scan_bench.c build/libtp.a -ljansson -lm \
 *      -o build/scan_bench
 *   build/scan_bench /tmp/ev.ndjson [RUNS] [LIMIT] [event|scan|both]
 *
 * Loads the lines into memory, then alternates whole passes of each parser
 * (RUNS each, default 5) and prints every pass and the median ns/event. With
 * LIMIT only the first LIMIT lines are used; with "event" or "scan" only that
 * parser runs (for valgrind --tool=callgrind --toggle-collect=...).
 * Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so a busy
 * machine that preempts the benchmark does not inflate them much.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "scan.h"

#define BENCH_MAX_BYTES 65536
#define BENCH_MAX_RUNS 99

struct lines {
    char *buf;
    size_t *off, *len;
    size_t n;
};

typedef int (*parse_fn)(const char *, size_t, size_t, struct event *,
                        struct event_error *);

static int load(const char *path, size_t limit, struct lines *l)
{
    FILE *f = fopen(path, "rb");
    long size;
    size_t cap = 0;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0) {
        perror(path);
        return -1;
    }
    rewind(f);
    l->buf = malloc((size_t)size + 1);
    if (l->buf == NULL || fread(l->buf, 1, (size_t)size, f) != (size_t)size) {
        perror(path);
        return -1;
    }
    fclose(f);
    l->n = 0;
    l->off = l->len = NULL;
    for (size_t start = 0; start < (size_t)size && l->n < limit;) {
        char *nl = memchr(l->buf + start, '\n', (size_t)size - start);
        size_t n = nl ? (size_t)(nl - (l->buf + start)) : (size_t)size - start;
        if (l->n == cap) {
            cap = cap ? cap * 2 : 1024;
            l->off = realloc(l->off, cap * sizeof(*l->off));
            l->len = realloc(l->len, cap * sizeof(*l->len));
            if (l->off == NULL || l->len == NULL) {
                return -1;
            }
        }
        l->off[l->n] = start;
        l->len[l->n++] = n;
        start += n + 1;
    }
    return 0;
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One pass; returns ns/event and counts the accepted events. */
static double pass(const struct lines *l, parse_fn parse, size_t *accepted)
{
    struct event ev;
    struct event_error err;
    double t0 = now_ns();

    *accepted = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (parse(l->buf + l->off[i], l->len[i], BENCH_MAX_BYTES, &ev, &err) ==
            0) {
            (*accepted)++;
        }
    }
    return (now_ns() - t0) / (double)l->n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    struct lines l;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    size_t limit = argc > 3 ? strtoull(argv[3], NULL, 10) : SIZE_MAX;
    const char *only = argc > 4 ? argv[4] : "both";
    double t_event[BENCH_MAX_RUNS], t_scan[BENCH_MAX_RUNS];
    size_t acc_event = 0, acc_scan = 0;

    if (argc < 2 || runs < 1 || runs > BENCH_MAX_RUNS || limit == 0) {
        fprintf(stderr,
                "usage: %s FILE.ndjson [RUNS] [LIMIT] [event|scan|both]\n",
                argv[0]);
        return 2;
    }
    if (load(argv[1], limit, &l) != 0) {
        return 1;
    }
    for (int r = 0; r < runs; r++) {
        if (strcmp(only, "scan") != 0) {
            t_event[r] = pass(&l, event_parse, &acc_event);
        }
        if (strcmp(only, "event") != 0) {
            t_scan[r] = pass(&l, scan_event, &acc_scan);
        }
        printf("run %d: event_parse %.1f ns/event, scan_event %.1f ns/event\n",
               r + 1, strcmp(only, "scan") ? t_event[r] : 0.0,
               strcmp(only, "event") ? t_scan[r] : 0.0);
    }
    printf("%zu events (%zu / %zu accepted)\n", l.n, acc_event, acc_scan);
    if (strcmp(only, "both") == 0) {
        double me = median(t_event, runs), ms = median(t_scan, runs);
        printf("median of %d: event_parse %.1f ns/event (%.0f k/s), "
               "scan_event %.1f ns/event (%.0f k/s), ratio %.1fx\n",
               runs, me, 1e6 / me, ms, 1e6 / ms, me / ms);
    }
    free(l.buf);
    free(l.off);
    free(l.len);
    return 0;
}
