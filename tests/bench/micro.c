/* SPDX-License-Identifier: Apache-2.0 */
/* micro: ns per event of the pure core — scan_event, pipeline_process and sketch_add — on tpgen lines. */
/*
 * Usage: micro FILE [--min-time S] [--once]
 *
 * FILE holds newline-delimited events (tpgen --out). Each benchmark runs
 * whole passes over the input until --min-time seconds (default 0.5) of CPU
 * time have gone by, at least 3 passes, and reports the median pass, timed
 * in thread CPU time (not wall time):
 *
 *   parse    scan_event of every line (validation included), the parser
 *            pipeline_process uses (tests/bench/scan_bench.c compares it
 *            with jansson's event_parse)
 *   process  pipeline_process of every line into a fresh pipeline on event
 *            time (as replay): parse, dedupe, correlate, aggregate
 *   flush    pipeline_flush_prepare + pipeline_flush_done once at the end of
 *            a process pass, per event of the pass (building the batch with
 *            roll-ups; no Redis)
 *   sketch   sketch_add of lognormal waits (median 20 s) into one sketch
 *
 * One line per benchmark on stdout: NAME ns_per_event=X events=N passes=P.
 * --once runs a single pass of each (for callgrind: the pass functions are
 * kept out of line so callgrind_annotate can show their inclusive cost).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "event.h"
#include "scan.h"
#include "pipeline.h"
#include "sketch.h"

#define MAX_PASSES 1000
#define SKETCH_VALUES 200000
#define NOINLINE __attribute__((noinline))

struct input {
    char *data;   /* the file, owned */
    char **lines; /* into data, NUL-terminated, end of line stripped */
    size_t *lens;
    size_t n;
};

struct result {
    double ns[MAX_PASSES];
    int passes;
    size_t events;
};

/* CPU time of this thread: the box may be busy with other work (a broker, a
 * Redis), and a descheduled pass is no slower code. */
static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

/* ---- input --------------------------------------------------------------- */

static char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)len + 1)) == NULL ||
        fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "micro: cannot read %s\n", path);
        free(buf);
        if (f != NULL) {
            fclose(f);
        }
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    *size = (size_t)len;
    return buf;
}

static int input_load(struct input *in, const char *path)
{
    size_t size, cap = 0;
    char *p, *end;

    if ((in->data = slurp(path, &size)) == NULL) {
        return -1;
    }
    for (p = in->data; p < in->data + size; p++) {
        cap += *p == '\n';
    }
    in->lines = malloc((cap + 1) * sizeof(*in->lines));
    in->lens = malloc((cap + 1) * sizeof(*in->lens));
    if (in->lines == NULL || in->lens == NULL) {
        return -1;
    }
    for (p = in->data; p < in->data + size; p = end + 1) {
        end = memchr(p, '\n', (size_t)(in->data + size - p));
        if (end == NULL) {
            end = in->data + size;
        }
        *end = '\0';
        if (end > p && end[-1] == '\r') {
            end[-1] = '\0';
        }
        if (*p != '\0') {
            in->lines[in->n] = p;
            in->lens[in->n++] = strlen(p);
        }
    }
    return in->n > 0 ? 0 : -1;
}

/* ---- the passes ---------------------------------------------------------- */

static NOINLINE size_t micro_parse_pass(const struct input *in)
{
    struct event ev;
    struct event_error err;
    size_t ok = 0;

    for (size_t i = 0; i < in->n; i++) {
        ok += scan_event(in->lines[i], in->lens[i], 65536, &ev, &err) == 0;
    }
    return ok;
}

static NOINLINE size_t micro_process_pass(const struct input *in,
                                          struct pipeline *p,
                                          struct partition *part)
{
    struct event_error err;
    size_t ok = 0;

    for (size_t i = 0; i < in->n; i++) {
        ok += pipeline_process(p, part, in->lines[i], in->lens[i], 0, &err) ==
              PIPE_ACCEPTED;
    }
    return ok;
}

static NOINLINE int micro_flush_pass(struct pipeline *p)
{
    const struct flush_batch *b;

    if (pipeline_flush_prepare(p, 0, &b) < 0) {
        return -1;
    }
    pipeline_flush_done(p, true);
    return 0;
}

static NOINLINE int micro_sketch_pass(struct sketch *s, const int64_t *v,
                                      size_t n)
{
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        rc |= sketch_add(s, v[i]);
    }
    return rc;
}

/* ---- the benchmarks ------------------------------------------------------ */

static int keep_going(const struct result *r, double t0, double min_time,
                      int once)
{
    if (once) {
        return r->passes < 1;
    }
    return r->passes < 3 ||
           (r->passes < MAX_PASSES && now_s() - t0 < min_time);
}

static int bench_parse(const struct input *in, double min_time, int once,
                       struct result *r)
{
    double t0 = now_s();

    while (keep_going(r, t0, min_time, once)) {
        double t = now_s();
        if (micro_parse_pass(in) == 0) {
            fprintf(stderr, "micro: no line parsed as a valid event\n");
            return -1;
        }
        r->ns[r->passes++] = (now_s() - t) * 1e9 / (double)in->n;
    }
    r->events = in->n;
    return 0;
}

/* One pass: a fresh pipeline (made outside the timing), every line, then one
 * flush of everything pending. */
static int bench_process(const struct config *cfg, const struct input *in,
                         double min_time, int once, struct result *proc,
                         struct result *flush)
{
    double t0 = now_s();
    char errstr[256];

    while (keep_going(proc, t0, min_time, once)) {
        struct pipeline *p = pipeline_new(cfg, true, errstr, sizeof(errstr));
        struct partition *part = p ? pipeline_partition(p, "micro/0") : NULL;
        double t1, t2, t3;
        if (part == NULL) {
            fprintf(stderr, "micro: pipeline: %s\n", p ? "no memory" : errstr);
            pipeline_destroy(p);
            return -1;
        }
        t1 = now_s();
        if (micro_process_pass(in, p, part) == 0) {
            fprintf(stderr, "micro: pipeline accepted no event\n");
            pipeline_destroy(p);
            return -1;
        }
        t2 = now_s();
        if (micro_flush_pass(p) < 0) {
            pipeline_destroy(p);
            return -1;
        }
        t3 = now_s();
        pipeline_destroy(p);
        proc->ns[proc->passes++] = (t2 - t1) * 1e9 / (double)in->n;
        flush->ns[flush->passes++] = (t3 - t2) * 1e9 / (double)in->n;
    }
    proc->events = flush->events = in->n;
    return 0;
}

/* Lognormal waits, median 20 s, sigma 1.5: seconds to hours, like tpgen's. */
static int64_t *wait_values(size_t n)
{
    int64_t *v = malloc(n * sizeof(*v));
    uint64_t x = 88172645463325252ULL;

    for (size_t i = 0; v != NULL && i < n; i++) {
        double u1, u2;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        u1 = ((double)(x >> 11) + 1) / 9007199254740993.0;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        u2 = (double)(x >> 11) / 9007199254740992.0;
        v[i] = (int64_t)exp(log(20000.0) +
                            1.5 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
    }
    return v;
}

static int bench_sketch(double min_time, int once, struct result *r)
{
    int64_t *v = wait_values(SKETCH_VALUES);
    struct sketch s;
    double t0 = now_s();
    int rc = 0;

    if (v == NULL) {
        return -1;
    }
    sketch_init(&s);
    while (rc == 0 && keep_going(r, t0, min_time, once)) {
        double t = now_s();
        rc = micro_sketch_pass(&s, v, SKETCH_VALUES);
        r->ns[r->passes++] = (now_s() - t) * 1e9 / SKETCH_VALUES;
    }
    sketch_release(&s);
    free(v);
    r->events = SKETCH_VALUES;
    return rc;
}

static void report(const char *name, struct result *r)
{
    printf("%s ns_per_event=%.1f events=%zu passes=%d\n", name,
           median(r->ns, r->passes), r->events, r->passes);
}

int main(int argc, char **argv)
{
    static struct result parse, proc, flush, sketch;
    struct input in = {0};
    struct config cfg;
    double min_time = 0.5;
    int once = 0, rc = 1;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0) {
            once = 1;
        } else if (strcmp(argv[i], "--min-time") == 0 && i + 1 < argc) {
            min_time = atof(argv[++i]);
        } else {
            argc = 0;
        }
    }
    if (argc < 2) {
        fprintf(stderr, "usage: micro FILE [--min-time S] [--once]\n");
        return 2;
    }
    if (config_init(&cfg) < 0 || input_load(&in, argv[1]) < 0) {
        fprintf(stderr, "micro: cannot load %s\n", argv[1]);
        goto out;
    }
    /* The dedupe window takes its whole capacity on the first id (dedupe.c);
     * sized to the input, a pass measures the per-event work rather than
     * the first touch of a 2,000,000-id table. */
    if (cfg.dedupe_capacity > (int64_t)in.n) {
        cfg.dedupe_capacity = (int64_t)in.n;
    }
    if (bench_parse(&in, min_time, once, &parse) < 0 ||
        bench_process(&cfg, &in, min_time, once, &proc, &flush) < 0 ||
        bench_sketch(min_time, once, &sketch) < 0) {
        goto out;
    }
    report("parse", &parse);
    report("process", &proc);
    report("flush", &flush);
    report("sketch", &sketch);
    rc = 0;
out:
    config_release(&cfg);
    free(in.lines);
    free(in.lens);
    free(in.data);
    return rc;
}
