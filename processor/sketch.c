/* SPDX-License-Identifier: Apache-2.0 */
/* sketch: log-bucket quantile sketch with exact bin boundaries for integers. */

/*
 * Why a table of integer thresholds.
 *
 * Bin i >= 0 holds the values v with gamma^(i-1) < v <= gamma^i, that is
 * i = ceil(log(v) / log(gamma)). Evaluated in floating point that formula can
 * land one bin off when v lies within rounding error of a power of gamma, and
 * nothing guarantees it is monotone in v. Values are whole milliseconds, so bin
 * i holds exactly the integers up to floor(gamma^i). Those thresholds are
 * computed once, in double-double arithmetic (about 104 bits; the closest any
 * integer below 2^63 comes to a power of gamma is about 5e-21 relative, far
 * above the accumulated error of about 1e-28), and the bin of v is the smallest
 * i whose threshold is >= v. log() only supplies the first guess. The index is
 * therefore exact, and monotone by construction.
 *
 * gamma = (1 + alpha) / (1 - alpha) = 101 / 99 for alpha = 0.01, and the value
 * a bin reports, 2 gamma^i / (gamma + 1), simplifies to (1 - alpha) gamma^i.
 */

#include "sketch.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Bin of INT64_MAX, the largest index any value can have. */
#define SKETCH_MAX_INDEX 2184

/* Bins added beyond the requested one on each side that grows, so that a
 * slowly widening range does not realloc on every new bin. */
#define SKETCH_GROW_SLACK 32

/* gamma as a fraction: (1 + alpha) / (1 - alpha) with alpha = 1 / 100. */
#define SKETCH_GAMMA_NUM 101.0
#define SKETCH_GAMMA_DEN 99.0

/* 1 / log(gamma); only used for the first guess of an index. */
#define SKETCH_INV_LOG_GAMMA 49.998333288886561

/* sketch_upper[i]: the largest integer in bin i (floor(gamma^i), INT64_MAX for
 * the last bin). sketch_power[i]: gamma^i rounded to double. */
static int64_t sketch_upper[SKETCH_MAX_INDEX + 1];
static double sketch_power[SKETCH_MAX_INDEX + 1];
static pthread_once_t sketch_tables_once = PTHREAD_ONCE_INIT;

/* Veltkamp split: hi + lo == a, each half narrow enough for exact products. */
static void dd_split(double a, double *hi, double *lo)
{
    double c = 134217729.0 * a; /* 2^27 + 1 */
    double big = c - a;

    *hi = c - big;
    *lo = a - *hi;
}

/* Dekker: p + e == a * b exactly. */
static void dd_two_prod(double a, double b, double *p, double *e)
{
    double ah, al, bh, bl, err;

    dd_split(a, &ah, &al);
    dd_split(b, &bh, &bl);
    *p = a * b;
    err = ah * bh - *p;
    err += ah * bl;
    err += al * bh;
    err += al * bl;
    *e = err;
}

/* (hi, lo) *= (bh, bl) in double-double arithmetic. */
static void dd_mul(double *hi, double *lo, double bh, double bl)
{
    double p, e, t;

    dd_two_prod(*hi, bh, &p, &e);
    t = *hi * bl;
    e += t;
    t = *lo * bh;
    e += t;
    *hi = p + e;
    *lo = e - (*hi - p);
}

/* floor(hi + lo) of a normalised double-double below 2^63. */
static int64_t dd_floor(double hi, double lo)
{
    double f = floor(hi);

    if (f != hi) {
        /* hi is not an integer, so |lo| <= ulp(hi) / 2 cannot reach one. */
        return (int64_t)f;
    }
    return (int64_t)hi + (int64_t)floor(lo);
}

static void sketch_build_tables(void)
{
    double gh = SKETCH_GAMMA_NUM / SKETCH_GAMMA_DEN;
    double gl, p, e;
    double hi = 1.0;
    double lo = 0.0;

    /* gl: the rounding error of gh, so that gh + gl is 101/99 to ~2^-106. */
    dd_two_prod(gh, SKETCH_GAMMA_DEN, &p, &e);
    gl = ((SKETCH_GAMMA_NUM - p) - e) / SKETCH_GAMMA_DEN;
    for (int i = 0; i < SKETCH_MAX_INDEX; i++) {
        sketch_power[i] = hi;
        sketch_upper[i] = dd_floor(hi, lo);
        dd_mul(&hi, &lo, gh, gl);
    }
    sketch_power[SKETCH_MAX_INDEX] = hi;
    sketch_upper[SKETCH_MAX_INDEX] = INT64_MAX;
}

static void sketch_tables(void)
{
    (void)pthread_once(&sketch_tables_once, sketch_build_tables);
}

/* ceil(log_gamma(value)) in floating point, clamped to the table; may be
 * one bin off near a boundary. */
static int sketch_guess(int64_t value)
{
    double x = ceil(log((double)value) * SKETCH_INV_LOG_GAMMA);

    if (x <= 0.0) {
        return 0;
    }
    if (x >= SKETCH_MAX_INDEX) {
        return SKETCH_MAX_INDEX;
    }
    return (int)x;
}

int sketch_index(int64_t value)
{
    int i;

    if (value <= 0) {
        return SKETCH_ZERO_BIN;
    }
    sketch_tables();
    i = sketch_guess(value);
    while (i > 0 && sketch_upper[i - 1] >= value) {
        i--;
    }
    while (sketch_upper[i] < value) {
        i++; /* stops at SKETCH_MAX_INDEX: its threshold is INT64_MAX */
    }
    return i;
}

double sketch_bin_value(int index)
{
    if (index == SKETCH_ZERO_BIN) {
        return 0.0;
    }
    if (index >= 0 && index <= SKETCH_MAX_INDEX) {
        sketch_tables();
        return (1.0 - SKETCH_ALPHA) * sketch_power[index];
    }
    /* Not a bin any value maps to; answer the formula anyway. */
    return (1.0 - SKETCH_ALPHA) *
           pow(SKETCH_GAMMA_NUM / SKETCH_GAMMA_DEN, (double)index);
}

void sketch_init(struct sketch *s)
{
    s->bins = NULL;
    s->lo = 0;
    s->len = 0;
    s->zero = 0;
    s->n = 0;
}

void sketch_release(struct sketch *s)
{
    if (s == NULL) {
        return;
    }
    free(s->bins);
    sketch_init(s);
}

void sketch_clear(struct sketch *s)
{
    if (s->len > SKETCH_KEEP_BINS) {
        sketch_release(s);
        return;
    }
    if (s->len > 0) {
        memset(s->bins, 0, (size_t)s->len * sizeof *s->bins);
    }
    s->zero = 0;
    s->n = 0;
}

/* Count of bin index (0 <= index <= SKETCH_MAX_INDEX), 0 outside the store. */
static uint32_t sketch_count_at(const struct sketch *s, int index)
{
    if (index < s->lo || index >= s->lo + s->len) {
        return 0;
    }
    return s->bins[index - s->lo];
}

static int sketch_covers(const struct sketch *s, int first, int last)
{
    return s->len > 0 && first >= s->lo && last < s->lo + s->len;
}

/* Moves the old counts to their place in the grown array and zeroes the rest. */
static void sketch_place(uint32_t *bins, int new_len, int old_len, int shift)
{
    if (old_len > 0 && shift > 0) {
        memmove(bins + shift, bins, (size_t)old_len * sizeof *bins);
    }
    memset(bins, 0, (size_t)shift * sizeof *bins);
    memset(bins + shift + old_len, 0,
           (size_t)(new_len - shift - old_len) * sizeof *bins);
}

/* Makes the dense store cover bins [first, last], both within
 * [0, SKETCH_MAX_INDEX]. Returns 0, or -1 with s untouched. */
static int sketch_reserve(struct sketch *s, int first, int last)
{
    int old_last = s->lo + s->len - 1;
    int kept = s->len; /* bins whose counts the new store keeps */
    int lo, hi;
    uint32_t *bins;

    if (sketch_covers(s, first, last)) {
        return 0;
    }
    if (s->len > 0 && s->n == s->zero) {
        /* No bin counts anything (cleared): the store moves to the new
         * samples instead of stretching from where the last ones were. */
        int width = last - first + 1 + 2 * SKETCH_GROW_SLACK;
        if (width <= s->len) {
            lo = first - SKETCH_GROW_SLACK;
            lo = lo > SKETCH_MAX_INDEX + 1 - s->len
                     ? SKETCH_MAX_INDEX + 1 - s->len
                     : lo;
            s->lo = lo < 0 ? 0 : lo;
            return 0;
        }
        kept = 0; /* too narrow: sized as a first store, in its memory */
    }
    if (kept == 0) {
        lo = first - SKETCH_GROW_SLACK;
        hi = last + SKETCH_GROW_SLACK;
    } else {
        lo = first < s->lo ? first - SKETCH_GROW_SLACK : s->lo;
        hi = last > old_last ? last + SKETCH_GROW_SLACK : old_last;
    }
    lo = lo < 0 ? 0 : lo;
    hi = hi > SKETCH_MAX_INDEX ? SKETCH_MAX_INDEX : hi;
    bins = realloc(s->bins, (size_t)(hi - lo + 1) * sizeof *bins);
    if (bins == NULL) {
        return -1;
    }
    sketch_place(bins, hi - lo + 1, kept, kept > 0 ? s->lo - lo : 0);
    s->bins = bins;
    s->lo = lo;
    s->len = hi - lo + 1;
    return 0;
}

int sketch_add(struct sketch *s, int64_t value)
{
    return sketch_add_bin(s, sketch_index(value), 1);
}

int sketch_add_bin(struct sketch *s, int index, uint64_t count)
{
    if (index != SKETCH_ZERO_BIN && (index < 0 || index > SKETCH_MAX_INDEX)) {
        return -1;
    }
    if (count == 0) {
        return 0;
    }
    if (count > UINT64_MAX - s->n) {
        return -1;
    }
    if (index == SKETCH_ZERO_BIN) {
        s->zero += count;
        s->n += count;
        return 0;
    }
    if (count > UINT32_MAX - sketch_count_at(s, index)) {
        return -1; /* the bin's counter would wrap */
    }
    if (sketch_reserve(s, index, index) != 0) {
        return -1;
    }
    s->bins[index - s->lo] += (uint32_t)count;
    s->n += count;
    return 0;
}

/* First and last non-empty (non-zero-bin) bins of s; -1 when there is none. */
static int sketch_span(const struct sketch *s, int *first, int *last)
{
    int a = 0;
    int b = s->len - 1;

    while (a <= b && s->bins[a] == 0) {
        a++;
    }
    while (b >= a && s->bins[b] == 0) {
        b--;
    }
    if (a > b) {
        return -1;
    }
    *first = s->lo + a;
    *last = s->lo + b;
    return 0;
}

/* Whether dst += src fits every counter. */
static int sketch_merge_fits(const struct sketch *dst, const struct sketch *src)
{
    if (src->n > UINT64_MAX - dst->n) {
        return 0;
    }
    for (int k = 0; k < src->len; k++) {
        uint32_t have = sketch_count_at(dst, src->lo + k);

        if (src->bins[k] > UINT32_MAX - have) {
            return 0;
        }
    }
    return 1;
}

int sketch_merge(struct sketch *dst, const struct sketch *src)
{
    int first, last;

    if (sketch_span(src, &first, &last) != 0) {
        first = 0;
        last = -1; /* only the zero bin, or nothing */
    }
    if (!sketch_merge_fits(dst, src)) {
        return -1;
    }
    if (first <= last && sketch_reserve(dst, first, last) != 0) {
        return -1;
    }
    /* dst may be src: each counter is read and written in one statement. */
    dst->zero += src->zero;
    dst->n += src->n;
    for (int i = first; i <= last; i++) {
        dst->bins[i - dst->lo] += src->bins[i - src->lo];
    }
    return 0;
}

/* floor(q * (n - 1)) for 0 <= q <= 1 and n >= 1, never above n - 1. */
static uint64_t sketch_rank(double q, uint64_t n)
{
    double r = floor(q * (double)(n - 1));

    if (r >= (double)(n - 1)) {
        return n - 1;
    }
    return (uint64_t)r;
}

double sketch_quantile(const struct sketch *s, double q)
{
    uint64_t rank, seen;

    if (s->n == 0 || !(q >= 0.0 && q <= 1.0)) {
        return NAN;
    }
    rank = sketch_rank(q, s->n);
    seen = s->zero;
    if (rank < seen) {
        return 0.0;
    }
    for (int k = 0; k < s->len; k++) {
        seen += s->bins[k];
        if (seen > rank) {
            return sketch_bin_value(s->lo + k);
        }
    }
    return NAN; /* only if n disagrees with the counters */
}

void sketch_foreach(const struct sketch *s,
                    void (*fn)(int index, uint64_t count, void *arg), void *arg)
{
    if (s->zero > 0) {
        fn(SKETCH_ZERO_BIN, s->zero, arg);
    }
    for (int k = 0; k < s->len; k++) {
        if (s->bins[k] > 0) {
            fn(s->lo + k, s->bins[k], arg);
        }
    }
}
