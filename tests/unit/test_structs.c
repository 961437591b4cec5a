/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the core data structures: u64map, corr, dedupe, agg and dims. */
/*
 * Every expectation follows from the header comments (the contract) and
 * schemas/redis.md; random inputs come from a fixed-seed splitmix64 so a
 * failure replays exactly.
 */
/* madvise's MADV_POPULATE_WRITE is a Linux extension. */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agg.h"
#include "config.h"
#include "corr.h"
#include "dedupe.h"
#include "dims.h"
#include "sketch.h"
#include "u64map.h"

/* ---- helpers ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A non-zero random key. */
static uint64_t rng_key(void)
{
    uint64_t k;

    do {
        k = rng_next();
    } while (k == 0);
    return k;
}

static void shuffle(size_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng_next() % i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

static size_t *identity_order(size_t n)
{
    size_t *v = malloc(n * sizeof(*v));

    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        v[i] = i;
    }
    return v;
}

/* The multiplicative inverse of an odd number mod 2^64 (Newton's method:
 * each step doubles the correct low bits, 3 -> 96 after 5 steps). */
static uint64_t inverse_odd(uint64_t c)
{
    uint64_t x = c;

    for (int i = 0; i < 5; i++) {
        x *= 2 - c * x;
    }
    return x;
}

/* Undoes y = x ^ (x >> s). */
static uint64_t unxorshift(uint64_t y, int s)
{
    uint64_t x = y;

    for (int i = 0; i < 64 / s + 1; i++) {
        x = y ^ (x >> s);
    }
    return x;
}

/* The key whose splitmix64-finaliser image is h. u64map places a key at
 * mix64(key) & (cap - 1) with that finaliser today; keys built from images
 * that share their low bits therefore all start probing at the same slot.
 * Should the mixer change, the keys stay valid, merely less colliding. */
static uint64_t key_with_image(uint64_t h)
{
    uint64_t x = unxorshift(h, 31);

    x *= inverse_odd(UINT64_C(0x94d049bb133111eb));
    x = unxorshift(x, 27);
    x *= inverse_odd(UINT64_C(0xbf58476d1ce4e5b9));
    return unxorshift(x, 30);
}

/* ---- u64map ---- */

static void test_u64map_empty_map_gets_nothing_and_deletes_nothing(
    void **state)
{
    struct u64map m;

    (void)state;
    u64map_init(&m);
    assert_null(u64map_get(&m, 42));
    assert_int_equal(u64map_del(&m, 42), 0);
    assert_int_equal(m.cap, 0);
    u64map_clear(&m);
    assert_int_equal(m.count, 0);
    u64map_release(&m);
}

static void test_u64map_put_replaces_value_without_growing_count(void **state)
{
    struct u64map m;

    (void)state;
    u64map_init(&m);
    assert_int_equal(u64map_put(&m, 7, 1), 0);
    assert_int_equal(u64map_put(&m, 7, 2), 0);
    assert_int_equal(m.count, 1);
    assert_int_equal(*u64map_get(&m, 7), 2);
    assert_int_equal(u64map_del(&m, 7), 1);
    assert_int_equal(u64map_del(&m, 7), 0);
    assert_null(u64map_get(&m, 7));
    assert_int_equal(m.count, 0);
    u64map_release(&m);
}

/* Checks that keys[i] maps to i for the live ones and is absent otherwise. */
static void check_map(const struct u64map *m, const uint64_t *keys,
                      const unsigned char *live, size_t n)
{
    size_t expect = 0;

    for (size_t i = 0; i < n; i++) {
        uint32_t *v = u64map_get(m, keys[i]);
        if (live[i]) {
            expect++;
            if (v == NULL || *v != (uint32_t)i) {
                fail_msg("key %zu (%016llx) lost or wrong value", i,
                         (unsigned long long)keys[i]);
            }
        } else if (v != NULL) {
            fail_msg("deleted key %zu (%016llx) still found", i,
                     (unsigned long long)keys[i]);
        }
    }
    assert_int_equal(m->count, expect);
}

/* Inserts keys[0..n), deletes half in random order, verifies, deletes the
 * rest, verifies the map is empty. */
static void churn(const uint64_t *keys, size_t n)
{
    struct u64map m;
    unsigned char *live = calloc(n, 1);
    size_t *order = identity_order(n);

    assert_non_null(live);
    u64map_init(&m);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(u64map_put(&m, keys[i], (uint32_t)i), 0);
        live[i] = 1;
        /* growth keeps a power-of-two capacity below 0.7 load */
        assert_true((m.cap & (m.cap - 1)) == 0);
        assert_true(m.count * 10 <= m.cap * 7);
    }

    check_map(&m, keys, live, n);
    shuffle(order, n);
    for (size_t i = 0; i < n / 2; i++) {
        assert_int_equal(u64map_del(&m, keys[order[i]]), 1);
        live[order[i]] = 0;
    }
    check_map(&m, keys, live, n);
    for (size_t i = n / 2; i < n; i++) {
        assert_int_equal(u64map_del(&m, keys[order[i]]), 1);
        live[order[i]] = 0;
    }
    check_map(&m, keys, live, n);
    for (size_t i = 0; i < m.cap; i++) {
        assert_true(m.slots[i].key == 0);
    }
    u64map_release(&m);
    free(order);
    free(live);
}

static void test_u64map_100k_random_keys_survive_deleting_half(void **state)
{
    const size_t n = 100000;
    uint64_t *keys = malloc(n * sizeof(*keys));
    struct u64map seen;

    (void)state;
    assert_non_null(keys);
    rng_state = 1;
    u64map_init(&seen);
    for (size_t i = 0; i < n; i++) {
        do {
            keys[i] = rng_key();
        } while (u64map_get(&seen, keys[i]) != NULL);
        assert_int_equal(u64map_put(&seen, keys[i], 0), 0);
    }
    u64map_release(&seen);
    churn(keys, n);
    free(keys);
}

/* Thousands of keys with one home slot, plus neighbours whose homes lie inside
 * that run, and the run wrapping past the end of the table: the backward
 * shift must move exactly the members whose home allows it. */
static void test_u64map_backward_shift_under_heavy_collisions(void **state)
{
    const size_t n = 6000;
    uint64_t *keys = malloc(n * sizeof(*keys));

    (void)state;
    assert_non_null(keys);
    rng_state = 2;
    for (size_t i = 0; i < n; i++) {
        /* low 16 image bits: mostly all ones (the last slot of any table up
         * to 65536), some 0..3 (the first slots, where the run wraps to) */
        uint64_t low = (i % 3 == 0) ? (uint64_t)(i % 4) : UINT64_C(0xffff);
        keys[i] = key_with_image(((uint64_t)(i + 1) << 16) | low);
        assert_true(keys[i] != 0);
    }
    churn(keys, n);
    free(keys);
}

static void test_u64map_clear_forgets_keys_and_keeps_capacity(void **state)
{
    struct u64map m;
    size_t cap;

    (void)state;
    u64map_init(&m);
    for (uint64_t k = 1; k <= 100; k++) {
        assert_int_equal(u64map_put(&m, k, (uint32_t)k), 0);
    }
    cap = m.cap;
    u64map_clear(&m);
    assert_int_equal(m.count, 0);
    assert_int_equal(m.cap, cap);
    for (uint64_t k = 1; k <= 100; k++) {
        assert_null(u64map_get(&m, k));
    }
    assert_int_equal(u64map_put(&m, 5, 55), 0);
    assert_int_equal(*u64map_get(&m, 5), 55);
    u64map_release(&m);
}

static void test_hash64_is_never_zero_and_depends_on_seed_and_bytes(
    void **state)
{
    (void)state;
    assert_true(hash64("", 0, 0) != 0);
    assert_true(hash64("abc", 3, 1) != hash64("abc", 3, 2));
    assert_true(hash64("abc", 3, 1) != hash64("abd", 3, 1));
    assert_true(hash64("abc", 3, 1) == hash64("abc", 3, 1));
    /* a byte past len is not read into the hash */
    assert_true(hash64("abcX", 3, 1) == hash64("abcY", 3, 1));
    rng_state = 3;
    for (int i = 0; i < 100000; i++) {
        uint64_t w = rng_next();
        assert_true(hash64(&w, sizeof(w), rng_next()) != 0);
    }
}

/* ---- corr ---- */

static void test_corr_open_find_close(void **state)
{
    struct corr *c = corr_new();
    uint64_t k1 = corr_key(CORR_DM, 0, "conv-1");
    uint64_t k2 = corr_key(CORR_CALL, 0, "conv-1");
    struct corr_rec *r;

    (void)state;
    assert_non_null(c);
    assert_true(k1 != 0 && k2 != 0);
    assert_true(k1 != k2);                             /* kind is in the key */
    assert_true(k1 != corr_key(CORR_DM, 1, "conv-1")); /* so is the tenant */
    assert_true(k1 == corr_key(CORR_DM, 0, "conv-1"));
    assert_null(corr_find(c, k1));
    assert_null(corr_oldest(c));

    r = corr_open(c, k1);
    assert_non_null(r);
    assert_true(r->key == k1);
    assert_int_equal(r->start, 0);
    assert_int_equal(r->leaf, 0);
    assert_int_equal(r->waiting, 0);
    assert_int_equal(corr_set_start(c, r, 1234), 0);
    assert_int_equal(corr_start(c, r), 1234);
    r->kind = CORR_DM;
    assert_ptr_equal(corr_find(c, k1), r);
    assert_null(corr_find(c, k2));
    assert_int_equal(corr_count(c), 1);

    corr_close(c, corr_find(c, k1));
    assert_null(corr_find(c, k1));
    assert_int_equal(corr_count(c), 0);
    assert_null(corr_oldest(c));
    corr_destroy(c);
    corr_destroy(NULL);
}

static void collect_keys(const struct corr_rec *r, int64_t start_ms,
                         void *arg)
{
    uint64_t **out = arg;

    (void)start_ms;
    *(*out)++ = r->key;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* corr_foreach visits exactly the keys want[0..n), once each. */
static void expect_open(struct corr *c, const uint64_t *want, size_t n)
{
    uint64_t got[16], sorted[16], *cursor = got;

    assert_true(corr_count(c) == n && n <= 16);
    corr_foreach(c, collect_keys, &cursor);
    assert_int_equal(cursor - got, n);
    if (n > 0) {
        memcpy(sorted, want, n * sizeof(*want));
    }
    qsort(got, n, sizeof(*got), cmp_u64);
    qsort(sorted, n, sizeof(*sorted), cmp_u64);
    for (size_t i = 0; i < n; i++) {
        assert_true(got[i] == sorted[i]);
    }
}

static uint64_t open_at(struct corr *c, int id, int64_t start_ms)
{
    char name[16];
    uint64_t k;
    struct corr_rec *r;

    snprintf(name, sizeof(name), "t%d", id);
    k = corr_key(CORR_TICKET, 3, name);
    r = corr_open(c, k);
    assert_non_null(r);
    assert_int_equal(corr_set_start(c, r, start_ms), 0);
    return k;
}

/* Closes corr_oldest and checks it was want. */
static void close_oldest(struct corr *c, uint64_t want)
{
    struct corr_rec *r = corr_oldest(c);

    assert_non_null(r);
    assert_true(r->key == want);
    corr_close(c, r);
}

static void test_corr_oldest_goes_by_start_and_skips_closed_records(
    void **state)
{
    static const int64_t start[6] = {50, 10, 40, 20, 60, 30};
    struct corr *c = corr_new();
    uint64_t k[8];

    (void)state;
    for (int i = 0; i < 6; i++) {
        k[i] = open_at(c, i, start[i]);
    }
    expect_open(c, k, 6);
    close_oldest(c, k[1]); /* 10 */
    close_oldest(c, k[3]); /* 20 */
    corr_close(c, corr_find(c, k[5])); /* 30, closed while ranked */
    /* Opened after the ranking, in a position a ranked record had: it comes
     * after every ranked record although it started first. */
    k[6] = open_at(c, 6, 5);
    expect_open(c, (uint64_t[]){k[0], k[2], k[4], k[6]}, 4);
    close_oldest(c, k[2]); /* 40 */
    k[7] = open_at(c, 7, 45);
    close_oldest(c, k[0]); /* 50 */
    close_oldest(c, k[4]); /* 60: the ranking is used up */
    close_oldest(c, k[6]); /* ranked again: 5, then 45 */
    expect_open(c, (uint64_t[]){k[7]}, 1);
    close_oldest(c, k[7]);
    assert_null(corr_oldest(c));
    expect_open(c, NULL, 0);
    corr_destroy(c);
}

/* Equal starts go by position: a fresh corr hands positions out in
 * opening order. */
static void test_corr_oldest_breaks_ties_by_position(void **state)
{
    struct corr *c = corr_new();
    uint64_t k[5];

    (void)state;
    for (int i = 0; i < 5; i++) {
        k[i] = open_at(c, i, 7);
    }
    for (int i = 0; i < 5; i++) {
        close_oldest(c, k[i]);
    }
    assert_null(corr_oldest(c));
    corr_destroy(c);
}

/* Random opens, closes and evictions (corr_oldest closed) against a model
 * of the open records: every corr_oldest is open, and any open record that
 * ranks before it (start, then position) was opened after it, i.e. after
 * the ranking corr_oldest walks. */
static void test_corr_oldest_against_a_model(void **state)
{
    enum { IDS = 1500, ROUNDS = 30000 };
    struct corr *c = corr_new();
    int64_t start[IDS], opened[IDS]; /* opened: round, or -1 when closed */
    uint64_t keys[IDS];

    (void)state;
    rng_state = 11;
    for (int i = 0; i < IDS; i++) {
        keys[i] = rng_key();
        opened[i] = -1;
    }
    for (int64_t round = 0; round < ROUNDS; round++) {
        uint64_t op = rng_next() % 8;
        int i = (int)(rng_next() % IDS);
        struct corr_rec *r;

        if (op < 4 && opened[i] < 0) {
            r = corr_open(c, keys[i]);
            assert_non_null(r);
            start[i] = (int64_t)(rng_next() % 200); /* ties are common */
            assert_int_equal(corr_set_start(c, r, start[i]), 0);
            opened[i] = round;
        } else if (op < 6 && opened[i] >= 0) {
            corr_close(c, corr_find(c, keys[i]));
            opened[i] = -1;
        } else if (op >= 6 && (r = corr_oldest(c)) != NULL) {
            int o = -1;
            uint32_t pos = corr_pos(c, r);
            for (int k = 0; k < IDS; k++) {
                if (opened[k] >= 0 && keys[k] == r->key) {
                    o = k;
                }
            }
            assert_true(o >= 0);
            for (int k = 0; k < IDS; k++) {
                struct corr_rec *x;
                if (opened[k] < 0 || k == o) {
                    continue;
                }
                x = corr_find(c, keys[k]);
                int64_t xs = corr_start(c, x), rs = corr_start(c, r);
                if (xs < rs || (xs == rs && corr_pos(c, x) < pos)) {
                    if (opened[k] <= opened[o]) {
                        fail_msg("round %lld: oldest start %lld, but %lld "
                                 "opened before it is open",
                                 (long long)round, (long long)corr_start(c, r),
                                 (long long)corr_start(c, x));
                    }
                }
            }
            corr_close(c, r);
            opened[o] = -1;
        }
    }
    /* Draining walks what is left of the current ranking, then at most one
     * more ranking of the records opened since: starts go down at most
     * once. */
    for (int64_t last = INT64_MIN, descents = 0; corr_count(c) > 0;) {
        struct corr_rec *r = corr_oldest(c);
        assert_non_null(r);
        descents += corr_start(c, r) < last;
        assert_true(descents <= 1);
        last = corr_start(c, r);
        corr_close(c, r);
    }
    assert_null(corr_oldest(c));
    corr_destroy(c);
}

/* Starts at the edges of the 32-bit range around the base (the first
 * start), and far outside it, read back exactly; a drain walks them in
 * order. */
static void test_corr_starts_near_and_far_read_back_exactly(void **state)
{
    const int64_t base = 1800000000000, half = INT64_C(1) << 31;
    const int64_t starts[] = {
        base,          base + half - 2, base + half - 1, base + half,
        base - half,   base - half - 1, base - 1,        INT64_MIN + 1,
        INT64_MAX - 1, 0,               -5000000000000,  base + 86400000,
    };
    const size_t n = sizeof(starts) / sizeof(starts[0]);
    struct corr *c = corr_new();
    int64_t last = INT64_MIN;

    (void)state;
    for (size_t i = 0; i < n; i++) {
        struct corr_rec *r = corr_open(c, 1000 + i);
        assert_non_null(r);
        assert_int_equal(corr_set_start(c, r, starts[i]), 0);
    }
    for (size_t i = 0; i < n; i++) {
        int64_t got = corr_start(c, corr_find(c, 1000 + i));
        if (got != starts[i]) {
            fail_msg("start %zu: %lld, want %lld", i, (long long)got,
                     (long long)starts[i]);
        }
    }
    assert_int_equal(corr_far_count(c), 7);
    while (corr_count(c) > 0) {
        struct corr_rec *r = corr_oldest(c);
        assert_true(corr_start(c, r) >= last);
        last = corr_start(c, r);
        corr_close(c, r);
    }
    assert_int_equal(corr_far_count(c), 0);
    corr_destroy(c);
}

/* A stream whose starts move on for months (a record a minute, 10,000 open
 * at a time): the base follows them, so few starts stay apart, and every
 * start reads back exactly. */
static void test_corr_base_follows_the_clock(void **state)
{
    const int64_t t0 = 1700000000000, minute = 60000;
    const uint64_t total = 200000, window = 10000;
    struct corr *c = corr_new();
    size_t most_far = 0;

    (void)state;
    for (uint64_t i = 0; i < total; i++) {
        struct corr_rec *r = corr_open(c, i + 1);
        assert_non_null(r);
        assert_int_equal(corr_set_start(c, r, t0 + (int64_t)i * minute), 0);
        if (i >= window) {
            corr_close(c, corr_find(c, i + 1 - window));
        }
        if (corr_far_count(c) > most_far) {
            most_far = corr_far_count(c);
        }
    }
    print_message("corr: at most %zu of %llu open starts kept apart\n",
                  most_far, (unsigned long long)window);
    /* The base moves once 4,096 starts (plus a quarter of the open ones)
     * are apart; a few sampled past can stay apart after it. */
    assert_true(most_far <= 4096 + window / 4 + 64);
    for (uint64_t i = total - window; i < total; i++) {
        struct corr_rec *r = corr_find(c, i + 1);
        assert_non_null(r);
        assert_true(corr_start(c, r) == t0 + (int64_t)i * minute);
    }
    assert_true(corr_start(c, corr_oldest(c)) ==
                t0 + (int64_t)(total - window) * minute);
    corr_destroy(c);
}

static void test_corr_reuses_closed_slots_without_growing(void **state)
{
    struct corr *c = corr_new();
    size_t bytes;

    (void)state;
    for (uint64_t i = 1; i <= 1000; i++) {
        assert_non_null(corr_open(c, i));
    }
    bytes = corr_bytes(c);
    for (int round = 0; round < 20; round++) {
        for (uint64_t i = 1; i <= 1000; i++) {
            corr_close(c, corr_find(c, i + (uint64_t)round * 1000));
        }
        for (uint64_t i = 1; i <= 1000; i++) {
            struct corr_rec *r = corr_open(c, i + (uint64_t)(round + 1) * 1000);
            assert_non_null(r);
            assert_int_equal(r->start, 0); /* a reused slot comes zeroed */
            assert_int_equal(r->kind, 0);
            assert_int_equal(corr_set_start(c, r, 99), 0);
        }
        assert_int_equal(corr_count(c), 1000);
    }
    assert_int_equal(corr_bytes(c), bytes);
    corr_destroy(c);
}

/* Opens keys[0..n), closes half in random order, reopens them, closes all
 * in another order; after each phase every key is found exactly when open,
 * on its own record. */
static void corr_churn(const uint64_t *keys, size_t n)
{
    struct corr *c = corr_new();
    unsigned char *open = calloc(n, 1);
    size_t *order = identity_order(n);

    assert_non_null(c);
    assert_non_null(open);
    for (int phase = 0; phase < 4; phase++) {
        size_t count = 0;
        shuffle(order, n);
        for (size_t k = 0; k < n; k++) {
            size_t i = order[k];
            if (phase == 0 || (phase == 2 && !open[i])) {
                struct corr_rec *r = corr_open(c, keys[i]);
                assert_non_null(r);
                assert_int_equal(corr_set_start(c, r, (int64_t)i), 0);
                open[i] = 1;
            } else if ((phase == 1 && k < n / 2) || phase == 3) {
                corr_close(c, corr_find(c, keys[i]));
                open[i] = 0;
            }
        }
        for (size_t i = 0; i < n; i++) {
            struct corr_rec *r = corr_find(c, keys[i]);
            count += open[i];
            if (open[i] && (r == NULL || corr_start(c, r) != (int64_t)i ||
                            r->key != keys[i])) {
                fail_msg("phase %d: open key %zu lost", phase, i);
            } else if (!open[i] && r != NULL) {
                fail_msg("phase %d: closed key %zu still found", phase, i);
            }
        }
        assert_int_equal(corr_count(c), count);
    }
    assert_null(corr_oldest(c));
    corr_destroy(c);
    free(order);
    free(open);
}

static void test_corr_100k_random_keys_survive_closing_half(void **state)
{
    const size_t n = 100000;
    uint64_t *keys = malloc(n * sizeof(*keys));

    (void)state;
    assert_non_null(keys);
    rng_state = 5;
    for (size_t i = 0; i < n; i++) {
        keys[i] = rng_key(); /* 2^-64 odds of a repeat: none in this seed */
    }
    corr_churn(keys, n);
    free(keys);
}

/* corr.c starts a key's probe at the high half of key * 0x9e37...7c15 (its
 * tag), low bits first. Keys built from tags whose low 16 bits are all ones
 * (the last slot of any index up to 65536 slots) or 0..3 (the first, where
 * the run wraps to), the rest distinct: thousands of keys with one home, and
 * neighbours whose homes lie inside that run. The backward shift must move
 * exactly the members whose home allows it. */
static void test_corr_backward_shift_under_heavy_collisions(void **state)
{
    const size_t n = 6000;
    const uint64_t inv = inverse_odd(UINT64_C(0x9e3779b97f4a7c15));
    uint64_t *keys = malloc(n * sizeof(*keys));

    (void)state;
    assert_non_null(keys);
    for (size_t i = 0; i < n; i++) {
        uint64_t low = (i % 3 == 0) ? (uint64_t)(i % 4) : UINT64_C(0xffff);
        uint64_t tag = ((uint64_t)(i + 1) << 16) | low;
        keys[i] = ((tag << 32) | (uint64_t)i) * inv;
        assert_true(keys[i] != 0);
    }
    corr_churn(keys, n);
    /* Keys whose whole mix is equal: only the records tell them apart. */
    for (size_t i = 0; i < 500; i++) {
        keys[i] = ((UINT64_C(0x12345678) << 32) | (uint64_t)(i + 1)) * inv;
    }
    corr_churn(keys, 500);
    free(keys);
}

/* The budget of corr.h: under 128 bytes per open correlation, measured with
 * one million open records. */
static void test_corr_one_million_open_cost_under_128_bytes_each(void **state)
{
    const size_t n = 1000000;
    struct corr *c = corr_new();
    size_t bytes;

    (void)state;
    for (size_t i = 0; i < n; i++) {
        char id[24];
        struct corr_rec *r;
        snprintf(id, sizeof(id), "conv-%zu", i);
        r = corr_open(c, corr_key(CORR_DM, 1, id));
        assert_non_null(r);
        assert_int_equal(corr_set_start(c, r, (int64_t)i), 0);
    }
    assert_int_equal(corr_count(c), n);
    bytes = corr_bytes(c);
    print_message("corr: %zu bytes for %zu open = %.1f bytes each\n", bytes,
                  n, (double)bytes / (double)n);
    assert_true(bytes < n * 128);
    assert_int_equal(corr_start(c, corr_oldest(c)), 0);
    assert_int_equal(corr_start(c, corr_find(c, corr_key(CORR_DM, 1,
                                                         "conv-999999"))),
                     999999);
    corr_destroy(c);
}

/* ---- dedupe ---- */

static void test_dedupe_remembers_within_horizon_and_forgets_after(
    void **state)
{
    struct dedupe *d = dedupe_new(100, 1000);

    (void)state;
    assert_non_null(d);
    assert_int_equal(dedupe_check(d, 11, 5000), 0);
    assert_int_equal(dedupe_check(d, 11, 5000), 1);
    assert_int_equal(dedupe_check(d, 11, 5999), 1); /* 999 ms later */
    assert_int_equal(dedupe_check(d, 12, 5500), 0);
    assert_int_equal(dedupe_count(d), 2);
    /* 1001 ms after 11 was first seen: forgotten, and remembered anew */
    assert_int_equal(dedupe_check(d, 11, 6001), 0);
    assert_int_equal(dedupe_check(d, 11, 6001), 1);
    assert_int_equal(dedupe_check(d, 12, 6400), 1); /* 12 is 900 ms old */
    assert_int_equal(dedupe_evicted(d), 0);
    dedupe_destroy(d);
    dedupe_destroy(NULL);
}

static void test_dedupe_capacity_evicts_oldest_and_counts(void **state)
{
    struct dedupe *d = dedupe_new(3, 60000);

    (void)state;
    for (uint64_t k = 1; k <= 3; k++) {
        assert_int_equal(dedupe_check(d, k, 100), 0);
    }
    assert_int_equal(dedupe_evicted(d), 0);
    assert_int_equal(dedupe_check(d, 4, 100), 0); /* evicts 1 */
    assert_int_equal(dedupe_evicted(d), 1);
    assert_int_equal(dedupe_count(d), 3);
    assert_int_equal(dedupe_check(d, 2, 100), 1);
    assert_int_equal(dedupe_check(d, 1, 100), 0); /* forgotten; evicts 2 */
    assert_int_equal(dedupe_evicted(d), 2);
    assert_int_equal(dedupe_check(d, 3, 100), 1);
    assert_int_equal(dedupe_check(d, 4, 100), 1);
    assert_int_equal(dedupe_check(d, 2, 100), 0);
    assert_int_equal(dedupe_evicted(d), 3);
    dedupe_destroy(d);
}

static void test_dedupe_clock_jump_forward_expires_everything(void **state)
{
    struct dedupe *d = dedupe_new(1000, 1000);

    (void)state;
    for (uint64_t k = 1; k <= 500; k++) {
        assert_int_equal(dedupe_check(d, k, (int64_t)k), 0);
    }
    assert_int_equal(dedupe_count(d), 500);
    assert_int_equal(dedupe_check(d, 9999, 1000000), 0);
    assert_int_equal(dedupe_count(d), 1);
    for (uint64_t k = 1; k <= 500; k++) {
        assert_int_equal(dedupe_check(d, k, 1000000), 0);
    }
    assert_int_equal(dedupe_evicted(d), 0);
    assert_true(dedupe_bytes(d) > 0);
    dedupe_destroy(d);
}

/* The memory is taken at full capacity with the first id and does not change
 * as ids come and go: a 16-byte ring entry per id plus an index of the
 * power of two of 8-byte slots that keeps it under 0.7 load (32 bytes per
 * id at the default 2,000,000; at most 16 + 2 x 8 / 0.7 = 39). */
static void test_dedupe_memory_is_its_capacity_from_the_first_id(void **state)
{
    struct dedupe *d = dedupe_new(100000, 1000);
    size_t bytes;

    (void)state;
    assert_int_equal(dedupe_check(d, 1, 0), 0);
    bytes = dedupe_bytes(d);
    assert_true(bytes >= 100000 * 16 + 100000 * 10 / 7 * 8);
    assert_true(bytes <= 100000 * 39 + 4096);
    for (uint64_t k = 2; k <= 300000; k++) {
        assert_int_equal(dedupe_check(d, k, (int64_t)k / 100), 0);
    }
    assert_int_equal(dedupe_count(d), 100000);
    assert_int_equal(dedupe_bytes(d), bytes);
    /* 200,000 ids evicted by capacity: exactly the last 100,000 remain. */
    for (uint64_t k = 200001; k <= 300000; k++) {
        assert_int_equal(dedupe_check(d, k, 3000), 1);
    }
    assert_int_equal(dedupe_check(d, 200000, 3000), 0);
    assert_int_equal(dedupe_check(d, 2, 3000), 0);
    assert_int_equal(dedupe_count(d), 100000);
    dedupe_destroy(d);
}

/* Resident bytes of this process (/proc/self/statm), or 0. */
static size_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;

    if (f != NULL) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2) {
            resident = 0;
        }
        fclose(f);
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Whether the kernel has MADV_POPULATE_WRITE (Linux 5.14). */
static bool can_populate(void)
{
    long page = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bool ok;

    assert_true(p != MAP_FAILED);
    ok = madvise(p, (size_t)page, MADV_POPULATE_WRITE) == 0;
    munmap(p, (size_t)page);
    return ok;
}

static void *populate_main(void *d)
{
    dedupe_populate(d);
    return NULL;
}

/* dedupe_reserve takes the whole window before the first id, and
 * dedupe_populate, run on another thread while ids are checked, changes no
 * answer; alone, it makes the window resident. CAP is the default
 * capacity: its ring (32 MB) is past glibc's largest mmap threshold and its
 * index (32 MB) a mapping of its own, so both are fresh mappings, not
 * reused heap pages that may be resident already. */
static void test_dedupe_reserve_then_populate_beside_checks(void **state)
{
    enum { CAP = 2000000, IDS = 300000 };
    struct dedupe *d = dedupe_new(CAP, INT64_C(3600000));
    pthread_t t;
    size_t bytes, before;

    (void)state;
    dedupe_populate(d); /* nothing reserved yet: no effect */
    assert_int_equal(dedupe_reserve(d), 0);
    bytes = dedupe_bytes(d);
    assert_true(bytes >= (size_t)CAP * 16 + (size_t)CAP * 10 / 7 * 8);
    assert_int_equal(dedupe_reserve(d), 0);
    assert_int_equal(dedupe_bytes(d), bytes);
    for (uint64_t k = 1; k <= 1000; k++) {
        assert_int_equal(dedupe_check(d, k * 7919, 0), 0);
    }
    assert_int_equal(pthread_create(&t, NULL, populate_main, d), 0);
    for (uint64_t k = 1001; k <= IDS; k++) {
        assert_int_equal(dedupe_check(d, k * 7919, (int64_t)k / 100), 0);
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    for (uint64_t k = 1; k <= IDS; k++) {
        assert_int_equal(dedupe_check(d, k * 7919, IDS / 100), 1);
    }
    assert_int_equal(dedupe_check(d, 7, IDS / 100), 0);
    assert_int_equal(dedupe_count(d), IDS + 1);
    dedupe_destroy(d);

    if (!can_populate()) {
        fprintf(stderr, "skipped: no MADV_POPULATE_WRITE in this kernel\n");
        skip();
    }
    d = dedupe_new(CAP, 1000);
    assert_int_equal(dedupe_reserve(d), 0);
    before = resident_bytes();
    dedupe_populate(d);
    assert_true(resident_bytes() >= before + dedupe_bytes(d) * 9 / 10);
    assert_int_equal(dedupe_count(d), 0);
    assert_int_equal(dedupe_check(d, 1, 0), 0);
    assert_int_equal(dedupe_check(d, 1, 0), 1);
    dedupe_destroy(d);
}

/* The clock may step back by less than the horizon (partitions interleave). */
static void test_dedupe_small_backward_step_still_detects(void **state)
{
    struct dedupe *d = dedupe_new(10, 1000);

    (void)state;
    assert_int_equal(dedupe_check(d, 1, 10000), 0);
    assert_int_equal(dedupe_check(d, 2, 9600), 0);
    assert_int_equal(dedupe_check(d, 1, 9700), 1);
    assert_int_equal(dedupe_check(d, 2, 10100), 1);
    dedupe_destroy(d);
}

/* ---- agg ---- */

#define MIN_MS INT64_C(60000)
#define T0 INT64_C(1704067200000) /* 2024-01-01T00:00:00Z, minute aligned */

static void test_agg_field_names_follow_redis_md_order(void **state)
{
    static const char *const want[AGG_NFIELDS] = {
        "events",    "wait_n",     "wait_sum", "wait_max",  "answered",
        "abandoned", "sl_n",       "sl_met",   "ttr_n",     "ttr_sum",
        "ttr_max",   "nps_n",      "promoters", "passives", "detractors",
        "csat_n",    "csat_good",  "csat_sum", "ces_n",     "ces_sum",
    };

    (void)state;
    for (int i = 0; i < AGG_NFIELDS; i++) {
        assert_string_equal(agg_field_name((enum agg_field)i), want[i]);
        assert_int_equal(agg_field_is_max((enum agg_field)i),
                         i == F_WAIT_MAX || i == F_TTR_MAX);
    }
}

/* Bucket roll-over: the first and last ms of a bucket share a cell; one ms
 * later is the next bucket's cell. */
static void test_agg_bucket_roll_over(void **state)
{
    struct agg *a = agg_new(MIN_MS);
    struct agg_cell *c;

    (void)state;
    assert_non_null(a);
    assert_int_equal(agg_bucket_of(a, T0), T0);
    assert_int_equal(agg_bucket_of(a, T0 + MIN_MS - 1), T0);
    assert_int_equal(agg_bucket_of(a, T0 + MIN_MS), T0 + MIN_MS);
    assert_int_equal(agg_bucket_of(a, 0), 0);

    c = agg_cell(a, 1, 2, T0);
    assert_non_null(c);
    assert_int_equal(c->tenant, 1);
    assert_int_equal(c->dim, 2);
    assert_int_equal(c->bucket_ms, T0);
    assert_int_equal(c->f[F_EVENTS], 0);
    c->f[F_EVENTS] = 7;
    assert_ptr_equal(agg_cell(a, 1, 2, T0), c);
    assert_ptr_equal(agg_cell(a, 1, 2, T0 + MIN_MS - 1), c);
    assert_int_equal(agg_count(a), 1);

    c = agg_cell(a, 1, 2, T0 + MIN_MS);
    assert_int_equal(c->bucket_ms, T0 + MIN_MS);
    assert_int_equal(c->f[F_EVENTS], 0);
    assert_int_equal(agg_count(a), 2);
    /* another tenant or row is another cell */
    assert_int_equal(agg_cell(a, 2, 2, T0)->f[F_EVENTS], 0);
    assert_int_equal(agg_cell(a, 1, 3, T0)->f[F_EVENTS], 0);
    assert_int_equal(agg_count(a), 4);
    assert_int_equal(agg_cell(a, 1, 2, T0 + 30000)->f[F_EVENTS], 7);
    agg_destroy(a);
    agg_destroy(NULL);
}

static void test_agg_add_samples_sets_n_sum_max_and_sketch(void **state)
{
    struct agg *a = agg_new(MIN_MS);
    struct agg_cell *c = agg_cell(a, 0, 0, T0);

    (void)state;
    assert_int_equal(agg_add_wait(c, 30000), 0);
    assert_int_equal(agg_add_wait(c, 0), 0);
    assert_int_equal(agg_add_wait(c, 12000), 0);
    assert_int_equal(agg_add_ttr(c, 5), 0);
    assert_int_equal(c->f[F_WAIT_N], 3);
    assert_int_equal(c->f[F_WAIT_SUM], 42000);
    assert_int_equal(c->f[F_WAIT_MAX], 30000);
    assert_int_equal(c->wait.n, 3);
    assert_int_equal(c->wait.zero, 1);
    assert_int_equal(c->f[F_TTR_N], 1);
    assert_int_equal(c->f[F_TTR_SUM], 5);
    assert_int_equal(c->f[F_TTR_MAX], 5);
    assert_int_equal(c->ttr.n, 1);
    agg_destroy(a);
}

/* wait_ms may be any integer >= 0: sums of waits near 2^63 stay at the
 * int64 maximum instead of wrapping negative (undefined behaviour too), in
 * a cell and when cells merge into roll-ups. */
static void test_agg_sums_hold_at_int64_max(void **state)
{
    struct agg *a = agg_new(MIN_MS);
    struct agg_cell *x, *y;

    (void)state;
    x = agg_cell(a, 0, 0, T0);
    assert_int_equal(agg_add_wait(x, INT64_MAX), 0);
    assert_int_equal(agg_add_wait(x, INT64_MAX), 0);
    assert_true(x->f[F_WAIT_SUM] == INT64_MAX);
    assert_true(x->f[F_WAIT_MAX] == INT64_MAX);
    assert_int_equal(x->f[F_WAIT_N], 2);
    y = agg_cell(a, 0, 1, T0);
    x = agg_cell(a, 0, 0, T0); /* y may have moved the array */
    assert_int_equal(agg_add_wait(y, 1), 0);
    assert_int_equal(agg_add_ttr(y, INT64_MAX - 1), 0);
    assert_int_equal(agg_add_ttr(x, 2), 0);
    assert_int_equal(agg_merge(y, x), 0);
    assert_true(y->f[F_WAIT_SUM] == INT64_MAX);
    assert_true(y->f[F_TTR_SUM] == INT64_MAX);
    assert_int_equal(y->f[F_WAIT_N], 3);
    agg_destroy(a);
}

static void test_agg_merge_adds_counts_and_takes_max_of_max_fields(
    void **state)
{
    struct agg *a = agg_new(MIN_MS);
    struct agg_cell *x, *y;

    (void)state;
    x = agg_cell(a, 0, 0, T0);
    x->f[F_EVENTS] = 3;
    x->f[F_SL_N] = 2;
    assert_int_equal(agg_add_wait(x, 100), 0);
    assert_int_equal(agg_add_ttr(x, 9000), 0);
    y = agg_cell(a, 0, 1, T0);
    x = agg_cell(a, 0, 0, T0); /* y may have moved the array */
    y->f[F_EVENTS] = 4;
    y->f[F_PROMOTERS] = 1;
    assert_int_equal(agg_add_wait(y, 500), 0);
    assert_int_equal(agg_add_wait(y, 50), 0);
    assert_int_equal(agg_add_ttr(y, 10), 0);

    assert_int_equal(agg_merge(x, y), 0);
    assert_int_equal(x->f[F_EVENTS], 7);
    assert_int_equal(x->f[F_SL_N], 2);
    assert_int_equal(x->f[F_PROMOTERS], 1);
    assert_int_equal(x->f[F_WAIT_N], 3);
    assert_int_equal(x->f[F_WAIT_SUM], 650);
    assert_int_equal(x->f[F_WAIT_MAX], 500); /* max, not 600 */
    assert_int_equal(x->f[F_TTR_N], 2);
    assert_int_equal(x->f[F_TTR_SUM], 9010);
    assert_int_equal(x->f[F_TTR_MAX], 9000); /* max, not 9010 */
    assert_int_equal(x->wait.n, 3);
    assert_int_equal(x->ttr.n, 2);
    /* src is untouched */
    assert_int_equal(y->f[F_EVENTS], 4);
    assert_int_equal(y->wait.n, 2);
    agg_destroy(a);
}

static void test_agg_sort_orders_by_tenant_dim_bucket_and_cells_stay_found(
    void **state)
{
    struct agg *a = agg_new(MIN_MS);
    int64_t id = 0;

    (void)state;
    /* insert in descending order so that sorting has work to do */
    for (int t = 2; t >= 0; t--) {
        for (int d = 3; d >= 0; d--) {
            for (int b = 4; b >= 0; b--) {
                struct agg_cell *c =
                    agg_cell(a, (uint32_t)t, (uint32_t)d, T0 + b * MIN_MS);
                c->f[F_EVENTS] = ++id;
                assert_int_equal(agg_add_wait(c, id), 0);
            }
        }
    }
    assert_int_equal(agg_count(a), 60);
    agg_sort(a);
    assert_int_equal(agg_count(a), 60);
    for (size_t i = 1; i < agg_count(a); i++) {
        const struct agg_cell *p = agg_at(a, i - 1), *c = agg_at(a, i);
        int before = p->tenant < c->tenant ||
                     (p->tenant == c->tenant &&
                      (p->dim < c->dim ||
                       (p->dim == c->dim && p->bucket_ms < c->bucket_ms)));
        assert_true(before);
    }
    id = 0;
    for (int t = 2; t >= 0; t--) {
        for (int d = 3; d >= 0; d--) {
            for (int b = 4; b >= 0; b--) {
                struct agg_cell *c =
                    agg_cell(a, (uint32_t)t, (uint32_t)d, T0 + b * MIN_MS + 1);
                ++id;
                assert_int_equal(c->f[F_EVENTS], id);
                assert_int_equal(c->f[F_WAIT_MAX], id); /* sketch came along */
                assert_int_equal(c->wait.n, 1);
            }
        }
    }
    assert_int_equal(agg_count(a), 60);
    agg_destroy(a);
}

static void test_agg_clear_empties_and_reuses_cells_fresh(void **state)
{
    struct agg *a = agg_new(MIN_MS);
    struct agg_cell *c, *first;

    (void)state;
    for (int i = 0; i < 200; i++) {
        c = agg_cell(a, 0, (uint32_t)i, T0);
        c->f[F_EVENTS] = 5;
        assert_int_equal(agg_add_wait(c, 1000 + i), 0);
        assert_int_equal(agg_add_ttr(c, 7), 0);
    }
    first = agg_at(a, 0);
    agg_clear(a);
    assert_int_equal(agg_count(a), 0);
    for (int i = 0; i < 200; i++) {
        c = agg_cell(a, 0, (uint32_t)(i + 500), T0 + MIN_MS);
        if (i == 0) {
            assert_ptr_equal(c, first); /* the same memory, reused */
        }
        assert_int_equal(c->f[F_EVENTS], 0);
        assert_int_equal(c->f[F_WAIT_N], 0);
        assert_int_equal(c->f[F_WAIT_MAX], 0);
        assert_int_equal(c->wait.n, 0);
        assert_int_equal(c->ttr.n, 0);
    }
    assert_int_equal(agg_count(a), 200);
    assert_ptr_equal(agg_at(a, 0), first); /* no reallocation */
    /* the cells of before the clear are gone, not merely hidden */
    assert_int_equal(agg_cell(a, 0, 0, T0)->f[F_EVENTS], 0);
    assert_int_equal(agg_count(a), 201);
    agg_destroy(a);
}

/* A cell slot reused flush after flush holds the store its current samples
 * need, not the union of every range it took: waits of seconds one flush,
 * of days the next. */
static void test_agg_reused_cells_do_not_keep_every_range_they_saw(
    void **state)
{
    struct agg *a = agg_new(MIN_MS);
    struct agg_cell *c;
    int widest = 0;

    (void)state;
    for (int round = 0; round < 40; round++) {
        int64_t wait = round % 2 == 0 ? 1000 : INT64_C(86400000) * (round + 1);
        for (int i = 0; i < 64; i++) {
            c = agg_cell(a, 0, (uint32_t)i, T0 + round * MIN_MS);
            assert_int_equal(agg_add_wait(c, wait + i), 0);
            assert_int_equal(agg_add_ttr(c, wait / 2), 0);
        }
        for (size_t i = 0; i < agg_count(a); i++) {
            c = agg_at(a, i);
            widest = c->wait.len > widest ? c->wait.len : widest;
            widest = c->ttr.len > widest ? c->ttr.len : widest;
        }
        agg_clear(a);
    }
    /* one sample each: a first store (the bin and its slack) */
    assert_true(widest > 0 && widest <= SKETCH_KEEP_BINS);
    agg_destroy(a);
}

/* ---- dims ---- */

static void expect_row(const struct dims *d, int tenant, int row,
                       const char *channel, const char *queue, bool leaf)
{
    const struct dim *r = dims_get(d, tenant, row);

    assert_string_equal(r->channel, channel);
    assert_string_equal(r->queue, queue);
    assert_int_equal(r->leaf, leaf);
}

static void test_dims_rollups_point_at_all_rows(void **state)
{
    struct config cfg;
    struct dims *d;
    int t, a, b, c;
    bool folded = true;

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    d = dims_new(&cfg);
    assert_non_null(d);
    t = dims_tenant(d, "acme");
    assert_int_equal(t, 0);
    a = dims_pair(d, t, "phone", "billing", &folded);
    assert_true(a >= 0);
    assert_false(folded);
    expect_row(d, t, a, "phone", "billing", true);
    assert_int_equal(dims_get(d, t, a)->rollup[0], a);
    expect_row(d, t, dims_get(d, t, a)->rollup[1], "phone", "_all", false);
    expect_row(d, t, dims_get(d, t, a)->rollup[2], "_all", "billing", false);
    expect_row(d, t, dims_get(d, t, a)->rollup[3], "_all", "_all", false);
    assert_int_equal(dims_get(d, t, a)->target_ms, 20000);
    assert_int_equal(dims_row_count(d, t), 4);

    /* a second queue of the same channel shares CHANNEL:_all and _all:_all */
    b = dims_pair(d, t, "phone", "sales", &folded);
    expect_row(d, t, b, "phone", "sales", true);
    assert_int_equal(dims_get(d, t, b)->rollup[1], dims_get(d, t, a)->rollup[1]);
    assert_int_equal(dims_get(d, t, b)->rollup[3], dims_get(d, t, a)->rollup[3]);
    expect_row(d, t, dims_get(d, t, b)->rollup[2], "_all", "sales", false);
    assert_int_equal(dims_row_count(d, t), 6);

    /* a second channel of the same queue shares _all:QUEUE */
    c = dims_pair(d, t, "web", "billing", &folded);
    assert_int_equal(dims_get(d, t, c)->rollup[2], dims_get(d, t, a)->rollup[2]);
    expect_row(d, t, dims_get(d, t, c)->rollup[1], "web", "_all", false);
    assert_int_equal(dims_get(d, t, c)->target_ms, 15 * 60000); /* default */
    assert_int_equal(dims_row_count(d, t), 8);

    /* interning is idempotent */
    assert_int_equal(dims_pair(d, t, "phone", "billing", &folded), a);
    assert_int_equal(dims_row_count(d, t), 8);
    dims_destroy(d);
    dims_destroy(NULL);
    config_release(&cfg);
}

static void test_dims_tenant_interning_idempotent_and_capped(void **state)
{
    struct config cfg;
    struct dims *d;
    bool folded;

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    cfg.max_tenants = 2;
    d = dims_new(&cfg);
    assert_int_equal(dims_tenant(d, "acme"), 0);
    assert_int_equal(dims_tenant(d, "globex"), 1);
    assert_int_equal(dims_tenant(d, "acme"), 0);
    assert_int_equal(dims_tenant(d, "initech"), -1);
    assert_int_equal(dims_tenant(d, "globex"), 1);
    assert_int_equal(dims_tenant_count(d), 2);
    assert_string_equal(dims_tenant_name(d, 0), "acme");
    assert_string_equal(dims_tenant_name(d, 1), "globex");
    /* rows are per tenant: the same pair in two tenants is two rows */
    assert_int_equal(dims_pair(d, 0, "chat", "a", &folded), 0);
    assert_int_equal(dims_pair(d, 1, "chat", "a", &folded), 0);
    assert_int_equal(dims_row_count(d, 0), 4);
    assert_int_equal(dims_row_count(d, 1), 4);
    dims_destroy(d);
    config_release(&cfg);
}

/* Row ids across tenants: numbered in the order asked, the same id for the
 * same row, and turned back into the tenant and row they were given for. */
static void test_dims_row_ids_number_rows_of_all_tenants(void **state)
{
    struct config cfg;
    struct dims *d;
    bool folded;
    int a, b, c;

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    d = dims_new(&cfg);
    assert_int_equal(dims_tenant(d, "acme"), 0);
    assert_int_equal(dims_tenant(d, "globex"), 1);
    a = dims_pair(d, 0, "chat", "a", &folded);
    b = dims_pair(d, 1, "chat", "a", &folded);
    c = dims_pair(d, 0, "phone", "b", &folded);
    assert_int_equal(dims_row_ids(d), 0);
    assert_int_equal(dims_row_id(d, 1, b), 0);
    assert_int_equal(dims_row_id(d, 0, c), 1);
    assert_int_equal(dims_row_id(d, 0, a), 2);
    assert_int_equal(dims_row_id(d, 1, b), 0);
    assert_int_equal(dims_row_ids(d), 3);
    assert_int_equal(dims_row_of(d, 0).tenant, 1);
    assert_int_equal(dims_row_of(d, 0).dim, b);
    assert_int_equal(dims_row_of(d, 1).tenant, 0);
    assert_int_equal(dims_row_of(d, 1).dim, c);
    assert_int_equal(dims_row_of(d, 2).tenant, 0);
    assert_int_equal(dims_row_of(d, 2).dim, a);
    dims_destroy(d);
    config_release(&cfg);
}

static void test_dims_pairs_beyond_cap_fold_into_other(void **state)
{
    struct config cfg;
    struct dims *d;
    bool folded;
    int t, a, b, o;

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    cfg.max_dims_per_tenant = 2;
    d = dims_new(&cfg);
    t = dims_tenant(d, "acme");
    a = dims_pair(d, t, "chat", "a", &folded);
    assert_false(folded);
    b = dims_pair(d, t, "chat", "b", &folded);
    assert_false(folded);
    assert_int_equal(dims_folded(d, t), 0);
    o = dims_pair(d, t, "chat", "c", &folded);
    assert_true(folded);
    assert_true(o != a && o != b);
    expect_row(d, t, o, "_other", "_other", true);
    expect_row(d, t, dims_get(d, t, o)->rollup[1], "_other", "_all", false);
    expect_row(d, t, dims_get(d, t, o)->rollup[2], "_all", "_other", false);
    expect_row(d, t, dims_get(d, t, o)->rollup[3], "_all", "_all", false);
    assert_int_equal(dims_folded(d, t), 1);
    /* known pairs keep their rows; another new pair joins _other */
    assert_int_equal(dims_pair(d, t, "chat", "a", &folded), a);
    assert_false(folded);
    assert_int_equal(dims_pair(d, t, "sms", "x", &folded), o);
    assert_true(folded);
    assert_int_equal(dims_folded(d, t), 2);
    /* the cap is per tenant */
    assert_int_equal(dims_pair(d, dims_tenant(d, "globex"), "chat", "c",
                               &folded),
                     0);
    assert_false(folded);
    dims_destroy(d);
    config_release(&cfg);
}


/* Regression: the seed used to be XORed into the first data bytes, so ids a
 * few bits apart collided across seeds: the dedupe seed is
 * (partition << 32 | tenant), and "1001" for tenant 0 hashed like "0001" for
 * tenant 1. Every (seed, id) pair of such seeds and short sequential ids
 * hashes apart. */
static void test_hash64_seeds_never_cancel_id_differences(void **state)
{
    struct u64map seen;
    char id[16];

    (void)state;
    u64map_init(&seen);
    for (uint64_t part = 0; part < 8; part++) {
        for (uint64_t tenant = 0; tenant < 8; tenant++) {
            for (int i = 0; i < 2000; i++) {
                int n = snprintf(id, sizeof(id), "%04d", i);
                uint64_t h = hash64(id, (size_t)n, part << 32 | tenant);
                assert_null(u64map_get(&seen, h));
                assert_int_equal(u64map_put(&seen, h, 1), 0);
            }
        }
    }
    u64map_release(&seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash64_seeds_never_cancel_id_differences),
        cmocka_unit_test(test_u64map_empty_map_gets_nothing_and_deletes_nothing),
        cmocka_unit_test(test_u64map_put_replaces_value_without_growing_count),
        cmocka_unit_test(test_u64map_100k_random_keys_survive_deleting_half),
        cmocka_unit_test(test_u64map_backward_shift_under_heavy_collisions),
        cmocka_unit_test(test_u64map_clear_forgets_keys_and_keeps_capacity),
        cmocka_unit_test(
            test_hash64_is_never_zero_and_depends_on_seed_and_bytes),
        cmocka_unit_test(test_corr_open_find_close),
        cmocka_unit_test(
            test_corr_oldest_goes_by_start_and_skips_closed_records),
        cmocka_unit_test(test_corr_oldest_breaks_ties_by_position),
        cmocka_unit_test(test_corr_oldest_against_a_model),
        cmocka_unit_test(test_corr_starts_near_and_far_read_back_exactly),
        cmocka_unit_test(test_corr_base_follows_the_clock),
        cmocka_unit_test(test_corr_reuses_closed_slots_without_growing),
        cmocka_unit_test(test_corr_100k_random_keys_survive_closing_half),
        cmocka_unit_test(test_corr_backward_shift_under_heavy_collisions),
        cmocka_unit_test(test_corr_one_million_open_cost_under_128_bytes_each),
        cmocka_unit_test(test_dedupe_remembers_within_horizon_and_forgets_after),
        cmocka_unit_test(test_dedupe_capacity_evicts_oldest_and_counts),
        cmocka_unit_test(test_dedupe_clock_jump_forward_expires_everything),
        cmocka_unit_test(test_dedupe_memory_is_its_capacity_from_the_first_id),
        cmocka_unit_test(test_dedupe_small_backward_step_still_detects),
        cmocka_unit_test(test_dedupe_reserve_then_populate_beside_checks),
        cmocka_unit_test(test_agg_field_names_follow_redis_md_order),
        cmocka_unit_test(test_agg_bucket_roll_over),
        cmocka_unit_test(test_agg_add_samples_sets_n_sum_max_and_sketch),
        cmocka_unit_test(
            test_agg_merge_adds_counts_and_takes_max_of_max_fields),
        cmocka_unit_test(test_agg_sums_hold_at_int64_max),
        cmocka_unit_test(
            test_agg_sort_orders_by_tenant_dim_bucket_and_cells_stay_found),
        cmocka_unit_test(test_agg_clear_empties_and_reuses_cells_fresh),
        cmocka_unit_test(
            test_agg_reused_cells_do_not_keep_every_range_they_saw),
        cmocka_unit_test(test_dims_rollups_point_at_all_rows),
        cmocka_unit_test(test_dims_tenant_interning_idempotent_and_capped),
        cmocka_unit_test(test_dims_row_ids_number_rows_of_all_tenants),
        cmocka_unit_test(test_dims_pairs_beyond_cap_fold_into_other),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
