/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for sketch: exact bins, 1 % quantiles, merge, growth, iteration. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sketch.h"

/* Bin of INT64_MAX (derived with exact rational arithmetic, see below). */
#define MAX_INDEX 2184

/* Slack for the rounding of the reported value itself (a few ulps): the bins
 * are exact, so the true bound is alpha. */
#define ALPHA_TOL (SKETCH_ALPHA + 1e-12)

#define SAMPLES 100000

/* ---- deterministic random numbers (splitmix64) ---- */

struct prng {
    uint64_t state;
};

static uint64_t prng_next(struct prng *r)
{
    uint64_t z = (r->state += UINT64_C(0x9E3779B97F4A7C15));

    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in (0, 1), never 0 or 1. */
static double prng_unit(struct prng *r)
{
    return ((double)(prng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

/* Standard normal (Box-Muller, one of the pair). */
static double prng_normal(struct prng *r)
{
    double u = prng_unit(r);
    double v = prng_unit(r);

    return sqrt(-2.0 * log(u)) * cos(2.0 * 3.14159265358979323846 * v);
}

static int64_t clamp_ms(double x)
{
    if (x > 1e13) {
        return INT64_C(10000000000000);
    }
    return llround(x);
}

/* Wait-like times: median 20 s, sigma 2 (so p99.9 is around 9 hours). */
static int64_t gen_lognormal(struct prng *r)
{
    return clamp_ms(exp(log(20000.0) + 2.0 * prng_normal(r)));
}

/* Pareto tail, x_m = 50 ms, shape 1.1 (infinite variance). */
static int64_t gen_pareto(struct prng *r)
{
    return clamp_ms(50.0 * pow(prng_unit(r), -1.0 / 1.1));
}

/* A third of the samples are 0 (answered at once), the rest lognormal. */
static int64_t gen_lognormal_with_zeros(struct prng *r)
{
    if (prng_next(r) % 3 == 0) {
        return 0;
    }
    return gen_lognormal(r);
}

/* Small values, many of them on the first few bins (1, 2, 3 ...). */
static int64_t gen_small(struct prng *r)
{
    return (int64_t)(prng_next(r) % 40);
}

/* ---- helpers ---- */

/* A sketch's contents as visited by sketch_foreach, with order checks. */
struct dump {
    uint64_t count[MAX_INDEX + 2]; /* count[index + 1]; [0] is the zero bin */
    uint64_t total;
    int visits;
    int last;    /* last index visited */
    int ordered; /* every visit came after the previous one, non-empty */
};

static void dump_visit(int index, uint64_t count, void *arg)
{
    struct dump *d = arg;

    if (index <= d->last || count == 0 || index < SKETCH_ZERO_BIN ||
        index > MAX_INDEX) {
        d->ordered = 0;
        return;
    }
    d->count[index + 1] = count;
    d->total += count;
    d->visits++;
    d->last = index;
}

static void dump_take(const struct sketch *s, struct dump *d)
{
    memset(d, 0, sizeof *d);
    d->last = SKETCH_ZERO_BIN - 1;
    d->ordered = 1;
    sketch_foreach(s, dump_visit, d);
    assert_true(d->ordered);
    assert_true(d->total == s->n);
}

static void assert_same_bins(const struct sketch *a, const struct sketch *b)
{
    static struct dump da, db;

    dump_take(a, &da);
    dump_take(b, &db);
    assert_true(a->n == b->n);
    assert_true(a->zero == b->zero);
    for (int i = 0; i < MAX_INDEX + 2; i++) {
        if (da.count[i] != db.count[i]) {
            fail_msg("bin %d: %llu != %llu", i - 1,
                     (unsigned long long)da.count[i],
                     (unsigned long long)db.count[i]);
        }
    }
}

static void fill(struct sketch *s, int64_t (*gen)(struct prng *), uint64_t seed,
                 int n)
{
    struct prng r = {seed};

    for (int i = 0; i < n; i++) {
        assert_int_equal(sketch_add(s, gen(&r)), 0);
    }
}

/* |reported - v| <= alpha * v (v > 0), with ALPHA_TOL for rounding. */
static int within_alpha(double reported, double v)
{
    if (v == 0.0) {
        return reported == 0.0;
    }
    return fabs(reported - v) <= ALPHA_TOL * v;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* ---- bins ---- */

static void test_index_of_zero_and_negative_values_is_the_zero_bin(void **state)
{
    static const int64_t values[] = {0, -1, -1000, INT64_MIN};

    (void)state;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        assert_int_equal(sketch_index(values[i]), SKETCH_ZERO_BIN);
    }
}

/*
 * Expected bins computed independently with exact rational arithmetic
 * (Python fractions: the smallest i with v * 99^i <= 101^i), at the integers
 * just below and just above powers of gamma, including the ones that come
 * closest to a power (relative distance 5e-15 near 5.9e11, 4e-21 near 1.3e18),
 * where a plain ceil(log(v) / log(gamma)) can be one bin off.
 */
static void test_index_matches_exact_rational_bins_at_boundaries(void **state)
{
    static const struct {
        int64_t value;
        int index;
    } cases[] = {
        {INT64_C(1), 0},
        {INT64_C(2), 35}, {INT64_C(3), 55},
        {INT64_C(4), 70},
        {INT64_C(10), 116}, {INT64_C(11), 120},
        {INT64_C(101), 231}, {INT64_C(102), 232},
        {INT64_C(1012), 346}, {INT64_C(1013), 347},
        {INT64_C(1075), 349}, {INT64_C(1076), 350},
        {INT64_C(1096), 350}, {INT64_C(1097), 351},
        {INT64_C(22033), 500}, {INT64_C(22034), 501},
        {INT64_C(61106), 551}, {INT64_C(61107), 552},
        {INT64_C(3614641), 755}, {INT64_C(3614642), 756},
        {INT64_C(86929618), 914}, {INT64_C(86929619), 915},
        {INT64_C(485488766), 1000}, {INT64_C(485488767), 1001},
        {INT64_C(145124338391), 1285}, {INT64_C(145124338392), 1286},
        {INT64_C(148056143207), 1286}, {INT64_C(148056143208), 1287},
        {INT64_C(304178758286), 1322}, {INT64_C(304178758287), 1323},
        {INT64_C(588535678241), 1355}, {INT64_C(588535678242), 1356},
        {INT64_C(650434684083), 1360}, {INT64_C(650434684084), 1361},
        {INT64_C(826871154821), 1372}, {INT64_C(826871154822), 1373},
        {INT64_C(989950443657), 1381}, {INT64_C(989950443658), 1382},
        {INT64_C(1000000000000), 1382},
        {INT64_C(1009949442519), 1382}, {INT64_C(1009949442520), 1383},
        {INT64_C(820672084189768), 1717}, {INT64_C(820672084189769), 1718},
        {INT64_C(1176307554430687), 1735}, {INT64_C(1176307554430688), 1736},
        {INT64_C(2059367730911168), 1763}, {INT64_C(2059367730911169), 1764},
        {INT64_C(4065032251734998), 1797}, {INT64_C(4065032251734999), 1798},
        {INT64_C(4492570401765373), 1802}, {INT64_C(4492570401765374), 1803},
        {INT64_C(4866756395630208), 1806}, {INT64_C(4866756395630209), 1807},
        {INT64_C(9007199254740992), 1837},
        {INT64_C(9047136920122006), 1837}, {INT64_C(9047136920122007), 1838},
        {INT64_C(1264728839159816463), 2084},
        {INT64_C(1264728839159816464), 2085},
        {INT64_C(2447041500654681908), 2117},
        {INT64_C(2447041500654681909), 2118},
        {INT64_C(3369924738862941065), 2133},
        {INT64_C(3369924738862941066), 2134},
        {INT64_C(5027403990256525803), 2153},
        {INT64_C(5027403990256525804), 2154},
        {INT64_C(9160710551176990559), 2183},
        {INT64_C(9160710551176990560), 2184},
        {INT64_MAX, MAX_INDEX},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = sketch_index(cases[i].value);

        if (got != cases[i].index) {
            fail_msg("sketch_index(%lld) = %d, want %d",
                     (long long)cases[i].value, got, cases[i].index);
        }
    }
}

/* Checks index monotonicity against the previous value and the 1 % bound. */
static void check_value(int64_t v, int *prev_index)
{
    int i = sketch_index(v);

    if (i < *prev_index) {
        fail_msg("sketch_index(%lld) = %d < %d of a smaller value",
                 (long long)v, i, *prev_index);
    }
    if (!within_alpha(sketch_bin_value(i), (double)v)) {
        fail_msg("value %lld: bin %d reports %.17g", (long long)v, i,
                 sketch_bin_value(i));
    }
    *prev_index = i;
}

static void test_index_is_monotone_and_within_alpha_for_every_value_to_2e6(
    void **state)
{
    int prev = SKETCH_ZERO_BIN;

    (void)state;
    for (int64_t v = 1; v <= 2000000; v++) {
        check_value(v, &prev);
    }
}

/* Geometric steps of 0.01 % from 2e6 to 1e12, each with its neighbours, then
 * coarser steps up to INT64_MAX. */
static void test_index_is_monotone_and_within_alpha_for_sampled_values_to_max(
    void **state)
{
    int prev = SKETCH_ZERO_BIN;
    double x;

    (void)state;
    for (x = 2e6; x <= 1e12; x *= 1.0001) {
        int64_t v = (int64_t)x;

        check_value(v - 1, &prev);
        check_value(v, &prev);
        check_value(v + 1, &prev);
    }
    check_value(INT64_C(1000000000000), &prev);
    for (x = 1.001e12; x < 9.2e18; x *= 1.001) {
        check_value((int64_t)x, &prev);
    }
    check_value(INT64_MAX - 1, &prev);
    check_value(INT64_MAX, &prev);
    assert_int_equal(prev, MAX_INDEX);
}

/* (1 - alpha) * gamma^i: 0.99, and for bin 35 0.99 * (101/99)^35 =
 * 1.9936617014173507 (exact rational arithmetic). */
static void test_bin_value_is_zero_for_zero_bin_else_one_minus_alpha_gamma_pow(
    void **state)
{
    (void)state;
    assert_true(sketch_bin_value(SKETCH_ZERO_BIN) == 0.0);
    assert_true(fabs(sketch_bin_value(0) - 0.99) <= 1e-15);
    assert_true(fabs(sketch_bin_value(35) - 1.9936617014173507) <= 1e-14);
    for (int i = 1; i <= MAX_INDEX; i++) {
        double ratio = sketch_bin_value(i) / sketch_bin_value(i - 1);

        assert_true(fabs(ratio - 101.0 / 99.0) <= 1e-13);
    }
}

/* ---- quantiles ---- */

static const double quantiles[] = {0.5, 0.9, 0.99, 0.999};

static void check_quantiles(const char *name, int64_t (*gen)(struct prng *),
                            uint64_t seed)
{
    struct sketch s;
    struct prng r = {seed};
    int64_t *samples = malloc(SAMPLES * sizeof *samples);

    assert_non_null(samples);
    sketch_init(&s);
    for (int i = 0; i < SAMPLES; i++) {
        samples[i] = gen(&r);
        assert_int_equal(sketch_add(&s, samples[i]), 0);
    }
    qsort(samples, SAMPLES, sizeof *samples, cmp_i64);
    for (size_t k = 0; k < sizeof quantiles / sizeof quantiles[0]; k++) {
        size_t rank = (size_t)floor(quantiles[k] * (SAMPLES - 1));
        double exact = (double)samples[rank];
        double got = sketch_quantile(&s, quantiles[k]);

        if (!within_alpha(got, exact)) {
            fail_msg("%s q=%g: sketch %.17g, exact %.17g", name, quantiles[k],
                     got, exact);
        }
    }
    sketch_release(&s);
    free(samples);
}

static void test_quantiles_within_alpha_of_exact_on_skewed_data(void **state)
{
    static const struct {
        const char *name;
        int64_t (*gen)(struct prng *);
        uint64_t seed;
    } cases[] = {
        {"lognormal", gen_lognormal, 1},
        {"lognormal-other-seed", gen_lognormal, 0xC0FFEE},
        {"pareto-1.1", gen_pareto, 2},
        {"lognormal-third-zeros", gen_lognormal_with_zeros, 3},
        {"small-integers", gen_small, 4},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_quantiles(cases[i].name, cases[i].gen, cases[i].seed);
    }
}

/* Values 1, 2, 3, 10, 100: rank floor(q * 4) picks the sample. */
static void test_quantile_reports_bin_of_sample_at_rank_floor_q_n_minus_1(
    void **state)
{
    static const int64_t values[] = {100, 3, 1, 10, 2};
    static const struct {
        double q;
        int64_t sample;
    } cases[] = {
        {0.0, 1}, {0.24, 1}, {0.25, 2}, {0.5, 3},
        {0.74, 3}, {0.75, 10}, {0.99, 10}, {1.0, 100},
    };
    struct sketch s;

    (void)state;
    sketch_init(&s);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        assert_int_equal(sketch_add(&s, values[i]), 0);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double want = sketch_bin_value(sketch_index(cases[i].sample));

        assert_true(sketch_quantile(&s, cases[i].q) == want);
    }
    sketch_release(&s);
}

static void test_empty_sketch_quantile_is_nan(void **state)
{
    struct sketch s;

    (void)state;
    sketch_init(&s);
    for (size_t k = 0; k < sizeof quantiles / sizeof quantiles[0]; k++) {
        assert_true(isnan(sketch_quantile(&s, quantiles[k])));
    }
    assert_true(isnan(sketch_quantile(&s, 0.0)));
    assert_true(isnan(sketch_quantile(&s, 1.0)));
    assert_int_equal(s.n, 0);
    sketch_release(&s);
}

static void test_quantile_outside_zero_to_one_is_nan(void **state)
{
    static const double bad[] = {-0.001, 1.001, -INFINITY, INFINITY, NAN};
    struct sketch s;

    (void)state;
    sketch_init(&s);
    assert_int_equal(sketch_add(&s, 42), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_true(isnan(sketch_quantile(&s, bad[i])));
    }
    sketch_release(&s);
}

static void test_zero_bin_takes_zero_and_negative_values_and_reports_zero(
    void **state)
{
    struct sketch s;
    struct dump d;

    (void)state;
    sketch_init(&s);
    assert_int_equal(sketch_add(&s, 0), 0);
    assert_int_equal(sketch_add(&s, -250), 0);
    assert_int_equal(sketch_add(&s, INT64_MIN), 0);
    assert_int_equal(sketch_add(&s, 1000), 0);
    assert_true(s.zero == 3 && s.n == 4);
    assert_int_equal(s.len == 0 || s.bins != NULL, 1);
    /* ranks 0..2 are zeros, rank 3 is 1000 */
    assert_true(sketch_quantile(&s, 0.0) == 0.0);
    assert_true(sketch_quantile(&s, 0.66) == 0.0);
    assert_true(within_alpha(sketch_quantile(&s, 1.0), 1000.0));
    dump_take(&s, &d);
    assert_int_equal(d.visits, 2);
    assert_true(d.count[0] == 3);
    sketch_release(&s);
}

/* ---- store ---- */

static void test_store_grows_down_and_up_keeping_counts(void **state)
{
    static const int64_t values[] = {
        1000, 1, 1000000000000, 500, INT64_MAX, 2, 1000,
    };
    struct sketch s;
    struct dump d;

    (void)state;
    sketch_init(&s);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        assert_int_equal(sketch_add(&s, values[i]), 0);
        assert_true(s.lo >= 0 && s.len > 0 && s.lo + s.len <= MAX_INDEX + 1);
    }
    dump_take(&s, &d);
    assert_int_equal(s.lo, 0);
    assert_int_equal(s.lo + s.len - 1, MAX_INDEX);
    assert_int_equal(d.visits, 6);
    assert_true(d.count[346 + 1] == 2);
    assert_true(d.count[0 + 1] == 1);
    assert_true(d.count[35 + 1] == 1);
    assert_true(d.count[1382 + 1] == 1);
    assert_true(d.count[MAX_INDEX + 1] == 1);
    assert_true(within_alpha(sketch_quantile(&s, 0.0), 1.0));
    assert_true(within_alpha(sketch_quantile(&s, 1.0), 9223372036854775807.0));
    sketch_release(&s);
}

static void test_store_stays_within_the_index_range(void **state)
{
    struct sketch s;

    (void)state;
    sketch_init(&s);
    for (int64_t v = INT64_MAX; v > 0; v /= 3) {
        assert_int_equal(sketch_add(&s, v), 0);
    }
    assert_int_equal(sketch_add(&s, 1), 0);
    assert_int_equal(s.lo, 0);
    assert_int_equal(s.len, MAX_INDEX + 1);
    sketch_release(&s);
}

static void test_foreach_visits_zero_bin_first_then_ascending_nonempty_bins(
    void **state)
{
    static const int64_t values[] = {5000, 0, 7, 90000, 7, 1, -3, 300, 5000};
    static const struct {
        int index;
        uint64_t count;
    } want[] = {
        {SKETCH_ZERO_BIN, 2}, {0, 1}, {98, 2}, {286, 1}, {426, 2}, {571, 1},
    };
    struct sketch s;
    struct dump d;

    (void)state;
    sketch_init(&s);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        assert_int_equal(sketch_add(&s, values[i]), 0);
    }
    dump_take(&s, &d); /* fails unless strictly ascending and non-empty */
    assert_int_equal(d.visits, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_true(d.count[want[i].index + 1] == want[i].count);
    }
    sketch_release(&s);
}

static void test_clear_forgets_samples_keeps_a_narrow_store_frees_a_wide_one(
    void **state)
{
    struct sketch s;
    uint32_t *bins;
    int lo, len;

    (void)state;
    sketch_init(&s);
    for (int64_t v = 1000; v <= 1100; v++) { /* five bins and the slack */
        assert_int_equal(sketch_add(&s, v), 0);
    }
    assert_true(s.len > 0 && s.len <= SKETCH_KEEP_BINS);
    bins = s.bins;
    lo = s.lo;
    len = s.len;
    sketch_clear(&s);
    assert_true(s.n == 0 && s.zero == 0);
    assert_ptr_equal(s.bins, bins);
    assert_int_equal(s.lo, lo);
    assert_int_equal(s.len, len);
    assert_true(isnan(sketch_quantile(&s, 0.5)));
    for (int i = 0; i < s.len; i++) {
        assert_true(s.bins[i] == 0);
    }
    /* Cleared, the store moves to a sample far from the last ones rather
     * than stretching to it. */
    assert_int_equal(sketch_add(&s, INT64_C(86400000)), 0);
    assert_ptr_equal(s.bins, bins);
    assert_int_equal(s.len, len);
    assert_true(s.lo > lo);
    assert_true(within_alpha(sketch_quantile(&s, 0.5), 86400000.0));
    assert_int_equal(sketch_add(&s, INT64_C(86400000) * 2), 0);
    assert_true(within_alpha(sketch_quantile(&s, 1.0), 172800000.0));
    sketch_clear(&s);

    /* A store cut short at the lowest index is narrower than a first
     * store: cleared, it is sized afresh for a sample far away. */
    sketch_release(&s);
    assert_int_equal(sketch_add(&s, 1), 0);
    assert_int_equal(s.lo, 0);
    len = s.len;
    sketch_clear(&s);
    assert_int_equal(sketch_add(&s, INT64_C(86400000)), 0);
    assert_true(s.len > len && s.lo > 0);
    assert_true(within_alpha(sketch_quantile(&s, 0.5), 86400000.0));
    sketch_clear(&s);

    fill(&s, gen_lognormal_with_zeros, 9, 1000);
    assert_true(s.len > SKETCH_KEEP_BINS);
    sketch_clear(&s);
    assert_true(s.n == 0 && s.zero == 0);
    assert_null(s.bins);
    assert_int_equal(s.len, 0);
    assert_true(isnan(sketch_quantile(&s, 0.5)));
    assert_int_equal(sketch_add(&s, 10), 0);
    assert_true(within_alpha(sketch_quantile(&s, 0.5), 10.0));
    sketch_release(&s);
    assert_null(s.bins);
    sketch_release(&s); /* twice is harmless */
}

static void test_add_bin_rejects_indexes_no_value_has(void **state)
{
    static const int bad[] = {-2, -100, MAX_INDEX + 1, 1 << 30};
    struct sketch s;

    (void)state;
    sketch_init(&s);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(sketch_add_bin(&s, bad[i], 1), -1);
    }
    assert_true(s.n == 0 && s.len == 0 && s.bins == NULL);
    assert_int_equal(sketch_add_bin(&s, 7, 0), 0); /* nothing to add */
    assert_true(s.n == 0);
    assert_int_equal(sketch_add_bin(&s, SKETCH_ZERO_BIN, 5), 0);
    assert_int_equal(sketch_add_bin(&s, MAX_INDEX, 3), 0);
    assert_true(s.n == 8 && s.zero == 5);
    sketch_release(&s);
}

static void test_counter_that_would_wrap_fails_and_leaves_sketch_unchanged(
    void **state)
{
    struct sketch s, t, before;

    (void)state;
    sketch_init(&s);
    sketch_init(&t);
    sketch_init(&before);
    assert_int_equal(sketch_add_bin(&s, 300, UINT32_MAX - 1), 0);
    assert_int_equal(sketch_add_bin(&s, 10, 4), 0);
    assert_int_equal(sketch_merge(&before, &s), 0);
    assert_int_equal(sketch_add_bin(&s, 300, 2), -1);
    assert_int_equal(sketch_add_bin(&s, 500, UINT64_C(1) << 32), -1);
    assert_same_bins(&s, &before);
    assert_int_equal(sketch_add_bin(&t, 300, 2), 0);
    assert_int_equal(sketch_add_bin(&t, 2000, 1), 0);
    assert_int_equal(sketch_merge(&s, &t), -1);
    assert_same_bins(&s, &before);
    assert_int_equal(sketch_add_bin(&s, 300, 1), 0);
    sketch_release(&s);
    sketch_release(&t);
    sketch_release(&before);
}

/* ---- merge ---- */

static void test_merge_equals_adding_all_samples_to_one_sketch(void **state)
{
    struct sketch a, b, c, all;

    (void)state;
    sketch_init(&a);
    sketch_init(&b);
    sketch_init(&c);
    sketch_init(&all);
    fill(&a, gen_lognormal, 11, 20000);
    fill(&b, gen_pareto, 12, 20000);
    fill(&c, gen_lognormal_with_zeros, 13, 20000);
    fill(&all, gen_lognormal, 11, 20000);
    fill(&all, gen_pareto, 12, 20000);
    fill(&all, gen_lognormal_with_zeros, 13, 20000);
    assert_int_equal(sketch_merge(&a, &b), 0);
    assert_int_equal(sketch_merge(&a, &c), 0);
    assert_same_bins(&a, &all);
    for (size_t k = 0; k < sizeof quantiles / sizeof quantiles[0]; k++) {
        assert_true(sketch_quantile(&a, quantiles[k]) ==
                    sketch_quantile(&all, quantiles[k]));
    }
    sketch_release(&a);
    sketch_release(&b);
    sketch_release(&c);
    sketch_release(&all);
}

/* (a + b) + c, c + (b + a) and b + (c + a) hold the same bins. */
static void test_merge_is_independent_of_order(void **state)
{
    struct sketch a, b, c, x, y, z, t;

    (void)state;
    sketch_init(&a);
    sketch_init(&b);
    sketch_init(&c);
    fill(&a, gen_small, 21, 5000);  /* low bins */
    fill(&b, gen_pareto, 22, 5000); /* high bins */
    fill(&c, gen_lognormal_with_zeros, 23, 5000);
    sketch_init(&x);
    assert_int_equal(sketch_merge(&x, &a), 0);
    assert_int_equal(sketch_merge(&x, &b), 0);
    assert_int_equal(sketch_merge(&x, &c), 0);
    sketch_init(&t);
    assert_int_equal(sketch_merge(&t, &b), 0);
    assert_int_equal(sketch_merge(&t, &a), 0);
    sketch_init(&y);
    assert_int_equal(sketch_merge(&y, &c), 0);
    assert_int_equal(sketch_merge(&y, &t), 0);
    sketch_release(&t);
    sketch_init(&t);
    assert_int_equal(sketch_merge(&t, &c), 0);
    assert_int_equal(sketch_merge(&t, &a), 0);
    sketch_init(&z);
    assert_int_equal(sketch_merge(&z, &b), 0);
    assert_int_equal(sketch_merge(&z, &t), 0);
    assert_same_bins(&x, &y);
    assert_same_bins(&x, &z);
    sketch_release(&a);
    sketch_release(&b);
    sketch_release(&c);
    sketch_release(&x);
    sketch_release(&y);
    sketch_release(&z);
    sketch_release(&t);
}

static void test_merge_with_empty_or_zero_only_sketches(void **state)
{
    struct sketch a, empty, zeros, copy;

    (void)state;
    sketch_init(&a);
    sketch_init(&empty);
    sketch_init(&zeros);
    sketch_init(&copy);
    fill(&a, gen_lognormal, 31, 1000);
    assert_int_equal(sketch_merge(&copy, &a), 0);
    assert_same_bins(&copy, &a);
    assert_int_equal(sketch_merge(&a, &empty), 0);
    assert_same_bins(&copy, &a);
    assert_int_equal(sketch_add(&zeros, 0), 0);
    assert_int_equal(sketch_merge(&empty, &zeros), 0);
    assert_true(empty.n == 1 && empty.zero == 1 && empty.len == 0);
    assert_int_equal(sketch_merge(&a, &zeros), 0);
    assert_true(a.n == 1001 && a.zero == copy.zero + 1);
    sketch_release(&a);
    sketch_release(&empty);
    sketch_release(&zeros);
    sketch_release(&copy);
}

static void test_merge_into_itself_doubles_every_bin(void **state)
{
    struct sketch a, twice;

    (void)state;
    sketch_init(&a);
    sketch_init(&twice);
    fill(&a, gen_lognormal_with_zeros, 41, 3000);
    fill(&twice, gen_lognormal_with_zeros, 41, 3000);
    fill(&twice, gen_lognormal_with_zeros, 41, 3000);
    assert_int_equal(sketch_merge(&a, &a), 0);
    assert_same_bins(&a, &twice);
    sketch_release(&a);
    sketch_release(&twice);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_of_zero_and_negative_values_is_the_zero_bin),
        cmocka_unit_test(test_index_matches_exact_rational_bins_at_boundaries),
        cmocka_unit_test(
            test_index_is_monotone_and_within_alpha_for_every_value_to_2e6),
        cmocka_unit_test(
            test_index_is_monotone_and_within_alpha_for_sampled_values_to_max),
        cmocka_unit_test(
            test_bin_value_is_zero_for_zero_bin_else_one_minus_alpha_gamma_pow),
        cmocka_unit_test(test_quantiles_within_alpha_of_exact_on_skewed_data),
        cmocka_unit_test(
            test_quantile_reports_bin_of_sample_at_rank_floor_q_n_minus_1),
        cmocka_unit_test(test_empty_sketch_quantile_is_nan),
        cmocka_unit_test(test_quantile_outside_zero_to_one_is_nan),
        cmocka_unit_test(
            test_zero_bin_takes_zero_and_negative_values_and_reports_zero),
        cmocka_unit_test(test_store_grows_down_and_up_keeping_counts),
        cmocka_unit_test(test_store_stays_within_the_index_range),
        cmocka_unit_test(
            test_foreach_visits_zero_bin_first_then_ascending_nonempty_bins),
        cmocka_unit_test(
            test_clear_forgets_samples_keeps_a_narrow_store_frees_a_wide_one),
        cmocka_unit_test(test_add_bin_rejects_indexes_no_value_has),
        cmocka_unit_test(
            test_counter_that_would_wrap_fails_and_leaves_sketch_unchanged),
        cmocka_unit_test(test_merge_equals_adding_all_samples_to_one_sketch),
        cmocka_unit_test(test_merge_is_independent_of_order),
        cmocka_unit_test(test_merge_with_empty_or_zero_only_sketches),
        cmocka_unit_test(test_merge_into_itself_doubles_every_bin),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
