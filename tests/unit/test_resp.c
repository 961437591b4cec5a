/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for resp: the bytes of every encoding equal hiredis's redisFormatCommandArgv, however they are cut. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

/* The oracle: hiredis's own argv encoding (an independent implementation,
 * the one the store uses for every other command). */
static char *hiredis_bytes(size_t argc, const char **argv,
                           const size_t *lens, size_t *len)
{
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, (int)argc, argv, lens);

    assert_true(n >= 0);
    *len = (size_t)n;
    return cmd;
}

/* The segments of r, concatenated. */
static char *joined(const struct resp *r, size_t *len)
{
    size_t total = 0;
    char *out, *o;

    for (size_t i = 0; i < r->n; i++) {
        total += r->iov[i].iov_len;
    }
    out = malloc(total + 1);
    assert_non_null(out);
    o = out;
    for (size_t i = 0; i < r->n; i++) {
        memcpy(o, r->iov[i].iov_base, r->iov[i].iov_len);
        o += r->iov[i].iov_len;
    }
    *len = total;
    return out;
}

/* Checks that the segments of r, in order, are exactly want[0 .. len). */
static void assert_segments(const struct resp *r, const char *want,
                            size_t len)
{
    size_t got_len;
    char *got = joined(r, &got_len);

    assert_int_equal(got_len, len);
    assert_memory_equal(got, want, len);
    free(got);
}

/* Encodes argv with in_place and checks the bytes against hiredis's;
 * returns the number of segments. */
static size_t check_encoding(size_t argc, const char **argv,
                             const size_t *lens, size_t in_place)
{
    struct resp r;
    size_t want_len, segments;
    char *want = hiredis_bytes(argc, argv, lens, &want_len);

    resp_init(&r);
    assert_int_equal(resp_encode(&r, argc, argv, lens, in_place), 0);
    assert_segments(&r, want, want_len);
    segments = r.n;
    free(want);
    resp_release(&r);
    return segments;
}

static void test_resp_small_command_is_one_segment(void **state)
{
    const char *argv[] = {"EVALSHA", "abc", "0", "live", "", "-17"};
    size_t lens[] = {7, 3, 1, 4, 0, 3};

    (void)state;
    assert_int_equal(check_encoding(6, argv, lens, 4096), 1);
}

/* Arguments with CR, LF and NUL inside travel whole: the encoding is by
 * length, never by content. */
static void test_resp_binary_arguments_are_framed_by_length(void **state)
{
    const char bin[] = {'a', '\r', '\n', '\0', '$', '*', 'z'};
    const char *argv[] = {"SET", "k\r\n", bin};
    size_t lens[] = {3, 3, sizeof(bin)};

    (void)state;
    assert_int_equal(check_encoding(3, argv, lens, 4096), 1);
    /* the same with every argument in place: 2 segments per argument */
    assert_int_equal(check_encoding(3, argv, lens, 0), 7);
}

/* A big argument is a segment pointing at the caller's bytes (not copied);
 * two in a row and one last on the line still encode exactly. */
static void test_resp_big_arguments_stay_in_place(void **state)
{
    size_t big = 300000;
    char *a = malloc(big), *b = malloc(big + 1);
    const char *argv[5];
    size_t lens[5] = {7, big, big + 1, 1, 0};
    struct resp r;

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    for (size_t i = 0; i < big; i++) {
        a[i] = (char)('a' + i % 26);
        b[i] = (char)(i % 251);
    }
    b[big] = '\n';
    argv[0] = "EVALSHA";
    argv[1] = a;
    argv[2] = b;
    argv[3] = "1";
    argv[4] = "";
    assert_int_equal(check_encoding(5, argv, lens, 4096), 5);
    assert_int_equal(check_encoding(3, argv, lens, 4096), 5);

    resp_init(&r);
    assert_int_equal(resp_encode(&r, 5, argv, lens, 4096), 0);
    assert_ptr_equal(r.iov[1].iov_base, a);
    assert_ptr_equal(r.iov[3].iov_base, b);
    resp_release(&r);
    free(a);
    free(b);
}

/* resp_advance, after writes of any size (a socket takes what it takes),
 * leaves exactly the bytes not written yet. */
static void test_resp_advance_leaves_the_unwritten_rest(void **state)
{
    size_t big = 10000;
    char *a = malloc(big);
    const char *argv[] = {"RPUSH", "key", NULL, "tail"};
    size_t lens[] = {5, 3, big, 4};
    size_t steps[] = {1, 7, 13, 4096, 1, 5000, 99, 100000};
    size_t want_len, at = 0;
    char *want;
    struct resp r;

    (void)state;
    assert_non_null(a);
    memset(a, 'x', big);
    argv[2] = a;
    want = hiredis_bytes(4, argv, lens, &want_len);
    resp_init(&r);
    assert_int_equal(resp_encode(&r, 4, argv, lens, 4096), 0);
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]) && r.n > 0;
         k++) {
        size_t step = steps[k] < want_len - at ? steps[k] : want_len - at;
        resp_advance(&r, step);
        at += step;
        assert_segments(&r, want + at, want_len - at);
    }
    assert_int_equal(at, want_len);
    assert_int_equal(r.n, 0);
    resp_release(&r);
    free(want);
    free(a);
}

/* The buffers are kept and reused: a small command after a big one. */
static void test_resp_reuse_after_a_bigger_command(void **state)
{
    size_t big = 70000;
    char *a = malloc(big);
    const char *argv1[] = {"RPUSH", "k", NULL};
    size_t lens1[] = {5, 1, big};
    const char *argv2[] = {"PING"};
    size_t lens2[] = {4};
    size_t want_len;
    char *want;
    struct resp r;

    (void)state;
    assert_non_null(a);
    memset(a, 'y', big);
    argv1[2] = a;
    resp_init(&r);
    assert_int_equal(resp_encode(&r, 3, argv1, lens1, 0), 0);
    assert_int_equal(resp_encode(&r, 1, argv2, lens2, 4096), 0);
    want = hiredis_bytes(1, argv2, lens2, &want_len);
    assert_segments(&r, want, want_len);
    free(want);
    resp_release(&r);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp_small_command_is_one_segment),
        cmocka_unit_test(test_resp_binary_arguments_are_framed_by_length),
        cmocka_unit_test(test_resp_big_arguments_stay_in_place),
        cmocka_unit_test(test_resp_advance_leaves_the_unwritten_rest),
        cmocka_unit_test(test_resp_reuse_after_a_bigger_command),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
