/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_event_diff: differential fuzz target — scan_event() must decide, classify and fill struct event exactly as event_parse() does, on any bytes. */
/*
 * Two builds of one file:
 *   libFuzzer:  clang -DFUZZ_LIBFUZZER -fsanitize=fuzzer,address,undefined ...
 *               LLVMFuzzerTestOneInput abort()s on the first difference, so
 *               the fuzzer keeps the input as a crash-* artifact.
 *   replay:     cc ... (any compiler, no libFuzzer)
 *               fuzz_event_diff [-l] PATH...  runs every file (directories:
 *               their regular files, not recursive) and, with -l, every line
 *               of every file as its own input; prints each difference and a
 *               last line "N passed, M failed"; exit status 1 on any failure.
 *
 * Compared on every input: the return value, err.reason and err.field, that
 * err.text is a non-empty string naming err.field, and every field of struct
 * event — on rejections too, since both fill it in the same order up to the
 * first error. Both structs start from the same garbage so that a field one
 * side forgets to set shows up.
 *
 * This target found that jansson 2.14 skips one NUL byte right after a
 * number or true/false/null ({"a":1<NUL>} was accepted); event.c now rejects
 * any NUL byte, as the scanner does.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "event.h"
#include "scan.h"

#define FUZZ_MAX_BYTES 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int reference_parse(const char *buf, size_t len, struct event *ev,
                           struct event_error *err)
{
    return event_parse(buf, len, FUZZ_MAX_BYTES, ev, err);
}

static void print_input(const uint8_t *data, size_t size)
{
    fprintf(stderr, "input (%zu bytes): \"", size);
    for (size_t i = 0; i < size && i < 600; i++) {
        if (data[i] == '"' || data[i] == '\\') {
            fprintf(stderr, "\\%c", data[i]);
        } else if (data[i] >= 0x20 && data[i] < 0x7F) {
            fputc(data[i], stderr);
        } else {
            fprintf(stderr, "\\x%02x", data[i]);
        }
    }
    fprintf(stderr, "%s\"\n", size > 600 ? "..." : "");
}

static void print_side(const char *who, int rc, const struct event *ev,
                       const struct event_error *err)
{
    if (rc != 0) {
        fprintf(stderr, "  %s: rc %d, %s field \"%s\": %s\n", who, rc,
                event_reject_name(err->reason), err->field, err->text);
    } else {
        fprintf(stderr, "  %s: rc 0\n", who);
    }
    fprintf(stderr,
            "    type %d occurred %" PRId64 " id \"%s\" tenant \"%s\" channel "
            "\"%s\" queue \"%s\" corr \"%s\" customer \"%s\" score %d "
            "wait %" PRId64 " opened %" PRId64 "\n",
            (int)ev->type, ev->occurred_ms, ev->event_id, ev->tenant,
            ev->channel, ev->queue, ev->corr_id, ev->customer_id, ev->score,
            ev->wait_ms, ev->opened_ms);
}

/* The name of the first differing field of a and b, or NULL. */
static const char *event_diff(const struct event *a, const struct event *b)
{
    if (a->type != b->type) {
        return "type";
    }
    if (a->occurred_ms != b->occurred_ms) {
        return "occurred_ms";
    }
    if (strcmp(a->event_id, b->event_id) != 0) {
        return "event_id";
    }
    if (strcmp(a->tenant, b->tenant) != 0) {
        return "tenant";
    }
    if (strcmp(a->channel, b->channel) != 0) {
        return "channel";
    }
    if (strcmp(a->queue, b->queue) != 0) {
        return "queue";
    }
    if (strcmp(a->corr_id, b->corr_id) != 0) {
        return "corr_id";
    }
    if (strcmp(a->customer_id, b->customer_id) != 0) {
        return "customer_id";
    }
    if (a->score != b->score) {
        return "score";
    }
    if (a->wait_ms != b->wait_ms) {
        return "wait_ms";
    }
    if (a->opened_ms != b->opened_ms) {
        return "opened_ms";
    }
    return NULL;
}

/* What is wrong with scan_event's error, compared with the reference's. */
static const char *error_diff(const struct event_error *ref,
                              const struct event_error *got)
{
    if (ref->reason != got->reason) {
        return "reason class";
    }
    if (memchr(got->field, '\0', sizeof(got->field)) == NULL ||
        memchr(got->text, '\0', sizeof(got->text)) == NULL) {
        return "field/text not NUL-terminated";
    }
    if (strcmp(ref->field, got->field) != 0) {
        return "field";
    }
    if (got->text[0] == '\0') {
        return "empty text";
    }
    if (got->field[0] != '\0' && strstr(got->text, got->field) == NULL) {
        return "text does not name the field";
    }
    return NULL;
}

/* Runs both parsers on one input; 0 when they agree, else prints why. */
static int diff_one(const uint8_t *data, size_t size)
{
    struct event ref_ev, got_ev;
    struct event_error ref_err, got_err;
    const char *what = NULL;
    int ref_rc, got_rc;

    memset(&ref_ev, 0x5A, sizeof(ref_ev));
    memset(&got_ev, 0x5A, sizeof(got_ev));
    memset(&ref_err, 0x5A, sizeof(ref_err));
    memset(&got_err, 0x5A, sizeof(got_err));
    ref_rc = reference_parse((const char *)data, size, &ref_ev, &ref_err);
    got_rc =
        scan_event((const char *)data, size, FUZZ_MAX_BYTES, &got_ev, &got_err);
    if (ref_rc != got_rc) {
        what = "accept/reject decision";
    } else if (ref_rc != 0) {
        what = error_diff(&ref_err, &got_err);
    }
    if (what == NULL) {
        what = event_diff(&ref_ev, &got_ev);
    }
    if (what == NULL) {
        return 0;
    }
    fprintf(stderr, "DIFFERENCE in %s\n", what);
    print_input(data, size);
    print_side("event_parse", ref_rc, &ref_ev, &ref_err);
    print_side("scan_event ", got_rc, &got_ev, &got_err);
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (diff_one(data, size) != 0) {
        abort();
    }
    return 0;
}

#ifndef FUZZ_LIBFUZZER

struct tally {
    unsigned long passed, failed;
};

/* Runs one input from a heap copy of exactly len bytes, so ASan sees any
 * read past the end. */
static void run_exact(const char *data, size_t len, const char *where,
                      struct tally *t)
{
    uint8_t *copy = malloc(len ? len : 1);

    if (copy == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(copy, data, len);
    if (diff_one(copy, len) == 0) {
        t->passed++;
    } else {
        fprintf(stderr, "  at %s\n", where);
        t->failed++;
    }
    free(copy);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (f == NULL) {
        return NULL;
    }
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

static void run_file(const char *path, int lines, struct tally *t)
{
    size_t len;
    char *buf = slurp(path, &len);
    char where[4200];

    if (buf == NULL) {
        fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
        t->failed++;
        return;
    }
    if (!lines) {
        run_exact(buf, len, path, t);
        free(buf);
        return;
    }
    for (size_t start = 0, line = 1; start < len; line++) {
        const char *nl = memchr(buf + start, '\n', len - start);
        size_t n = nl ? (size_t)(nl - (buf + start)) : len - start;
        snprintf(where, sizeof(where), "%s:%zu", path, line);
        run_exact(buf + start, n, where, t);
        start += n + 1;
    }
    free(buf);
}

static void run_path(const char *path, int lines, struct tally *t)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    char sub[4096];

    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        run_file(path, lines, t);
        return;
    }
    if ((d = opendir(path)) == NULL) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        t->failed++;
        return;
    }
    while ((de = readdir(d)) != NULL) {
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        if (de->d_name[0] != '.' && stat(sub, &st) == 0 &&
            S_ISREG(st.st_mode)) {
            run_file(sub, lines, t);
        }
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    struct tally t = {0, 0};
    int lines = 0, first = 1;

    if (argc > 1 && strcmp(argv[1], "-l") == 0) {
        lines = 1;
        first = 2;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: %s [-l] FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (int i = first; i < argc; i++) {
        run_path(argv[i], lines, &t);
    }
    printf("%lu passed, %lu failed\n", t.passed, t.failed);
    return t.failed == 0 && t.passed > 0 ? 0 : 1;
}

#endif
