/* SPDX-License-Identifier: Apache-2.0 */
/* sketch: a mergeable log-bucket quantile sketch (DDSketch-style, 1 % relative error). */
#ifndef TP_SKETCH_H
#define TP_SKETCH_H

#include <stddef.h>
#include <stdint.h>

/* Relative accuracy: every reported quantile lies within SKETCH_ALPHA of the
 * true value of the sample at rank floor(q * (n - 1)). */
#define SKETCH_ALPHA 0.01

/* Index of the zero bin (value 0). Other bins: i >= 0 holds the values v with
 * gamma^(i-1) < v <= gamma^i, gamma = (1 + alpha) / (1 - alpha); so value 1 is
 * bin 0. Values are whole milliseconds >= 0 (negative values count as 0). */
#define SKETCH_ZERO_BIN (-1)

/* Bin of a value. */
int sketch_index(int64_t value);

/* The value a bin reports: 0 for the zero bin, 2 * gamma^i / (gamma + 1). */
double sketch_bin_value(int index);

/* A sketch is a dense run of counters over [lo, lo + len) plus the zero bin;
 * it grows as needed. Embedded: sketch_init / sketch_release. */
struct sketch {
    uint32_t *bins;   /* owned; counts of bins lo .. lo + len - 1 */
    int lo;
    int len;
    uint64_t zero;    /* count in the zero bin */
    uint64_t n;       /* total count */
};

void sketch_init(struct sketch *s);
void sketch_release(struct sketch *s);
/* Bins of store a cleared sketch keeps for its next samples (sketch_clear):
 * a first store (one bin and its slack) and one grown once fit. */
#define SKETCH_KEEP_BINS 128

/* Forgets all samples. The store is kept for the next ones while it is at
 * most SKETCH_KEEP_BINS bins wide; a wider one is freed, so a sketch that
 * takes one set of samples after another (an aggregate cell's, reused every
 * flush) holds what its current samples need, not the widest range it ever
 * saw. */
void sketch_clear(struct sketch *s);

/* Adds one value. Returns 0, or -1 when memory ran out (the sketch is left
 * unchanged). */
int sketch_add(struct sketch *s, int64_t value);

/* Adds count samples to a bin. Returns 0 or -1 (out of memory). */
int sketch_add_bin(struct sketch *s, int index, uint64_t count);

/* dst += src. Returns 0 or -1 (out of memory; dst unchanged). */
int sketch_merge(struct sketch *dst, const struct sketch *src);

/* The q-quantile (0 <= q <= 1) as the value of the bin that holds the sample of
 * rank floor(q * (n - 1)); NAN when empty. */
double sketch_quantile(const struct sketch *s, double q);

/* Calls fn(index, count, arg) for every non-empty bin, zero bin first, then in
 * ascending index order. */
void sketch_foreach(const struct sketch *s,
                    void (*fn)(int index, uint64_t count, void *arg), void *arg);

#endif
