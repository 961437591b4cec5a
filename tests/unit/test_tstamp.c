/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for tstamp: RFC 3339 forms and rejections, formatting, durations. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "tstamp.h"

/* A sentinel the parsers must not overwrite when they fail. */
#define UNTOUCHED INT64_C(-424242)

/*
 * Expected epoch milliseconds below were derived independently of the code
 * under test (Python datetime arithmetic and known anchors such as
 * 2001-09-09T01:46:40Z = 1e12 ms and 2038-01-19T03:14:07Z = 2^31 - 1 s).
 */
static const struct {
    const char *name;
    const char *text;
    int64_t ms;
} accepted[] = {
    {"epoch", "1970-01-01T00:00:00Z", INT64_C(0)},
    {"lowercase t and z", "1970-01-01t00:00:00z", INT64_C(0)},
    {"first ms after epoch", "1970-01-01T00:00:00.001Z", INT64_C(1)},
    {"one_e12_anchor", "2001-09-09T01:46:40Z", INT64_C(1000000000000)},
    {"int32 seconds anchor", "2038-01-19T03:14:07Z", INT64_C(2147483647000)},
    {"leap day 2024", "2024-02-29T12:00:00Z", INT64_C(1709208000000)},
    {"leap day 2000 (div by 400)", "2000-02-29T00:00:00Z", INT64_C(951782400000)},
    {"leap day 2400", "2400-02-29T00:00:00Z", INT64_C(13574563200000)},
    {"2100 not leap: Feb 28", "2100-02-28T23:59:59Z", INT64_C(4107542399000)},
    {"2100 not leap: Mar 1", "2100-03-01T00:00:00Z", INT64_C(4107542400000)},
    {"Mar 1 after 28-day Feb", "2023-03-01T00:00:00Z", INT64_C(1677628800000)},
    {"Mar 1 after 29-day Feb", "2024-03-01T00:00:00Z", INT64_C(1709251200000)},
    {"Apr 30", "2024-04-30T00:00:00Z", INT64_C(1714435200000)},
    {"year's last ms", "2024-12-31T23:59:59.999Z", INT64_C(1735689599999)},
    {"offset +05:30", "2024-01-01T05:30:00+05:30", INT64_C(1704067200000)},
    {"offset -08:00 across year", "2023-12-31T16:00:00-08:00",
     INT64_C(1704067200000)},
    {"offset -07:00", "2024-03-10T02:30:00-07:00", INT64_C(1710063000000)},
    {"offset -00:00", "2024-01-01T00:00:00-00:00", INT64_C(1704067200000)},
    {"offset +00:00", "2024-01-01T00:00:00+00:00", INT64_C(1704067200000)},
    {"offset +23:59", "2024-06-30T23:59:59+23:59", INT64_C(1719705659000)},
    {"offset -23:59", "2024-06-30T23:59:59-23:59", INT64_C(1719878339000)},
    {"offset -11:59", "2024-06-30T23:59:59-11:59", INT64_C(1719835139000)},
    {"epoch reached from 1969 by -01:00", "1969-12-31T23:00:00-01:00",
     INT64_C(0)},
    {"epoch reached by +05:30", "1970-01-01T05:30:00+05:30", INT64_C(0)},
    {"1 ms after epoch from 1969 by -05:00", "1969-12-31T19:00:00.001-05:00",
     INT64_C(1)},
    {"fraction 1 digit", "2024-07-15T09:05:03.1Z", INT64_C(1721034303100)},
    {"fraction 2 digits", "2024-07-15T09:05:03.12Z", INT64_C(1721034303120)},
    {"fraction 3 digits", "2024-07-15T09:05:03.123Z", INT64_C(1721034303123)},
    {"fraction 4 digits truncated", "2024-07-15T09:05:03.1239Z",
     INT64_C(1721034303123)},
    {"fraction 6 digits truncated", "2024-07-15T09:05:03.123999Z",
     INT64_C(1721034303123)},
    {"fraction 9 digits truncated", "2024-07-15T09:05:03.123456789Z",
     INT64_C(1721034303123)},
    {"fraction .999999999 stays in the second", "2024-07-15T09:05:03.999999999Z",
     INT64_C(1721034303999)},
    {"fraction of zeros", "2024-07-15T09:05:03.000000000Z",
     INT64_C(1721034303000)},
    {"fraction with offset", "2024-07-15T11:05:03.5+02:00",
     INT64_C(1721034303500)},
    {"sub-ms after epoch truncates to 0", "1970-01-01T00:00:00.0009Z",
     INT64_C(0)},
    {"largest instant", "9999-12-31T23:59:59.999Z", INT64_C(253402300799999)},
    {"largest instant, 9 digits", "9999-12-31T23:59:59.999999999Z",
     INT64_C(253402300799999)},
    {"year 9999 with +00:30", "9999-12-31T23:59:59.999+00:30",
     INT64_C(253402298999999)},
    {"year 9999 with +00:01", "9999-12-31T23:59:59+00:01",
     INT64_C(253402300739000)},
};

static const struct {
    const char *name;
    const char *text;
} rejected[] = {
    {"empty", ""},
    {"date only", "2024-01-01"},
    {"no zone", "2024-01-01T00:00:00"},
    {"no zone after fraction", "2024-01-01T00:00:00.123"},
    {"space for T", "2024-01-01 00:00:00Z"},
    {"leading space", " 2024-01-01T00:00:00Z"},
    {"trailing space", "2024-01-01T00:00:00Z "},
    {"trailing garbage", "2024-01-01T00:00:00Zx"},
    {"second zone", "2024-01-01T00:00:00Z+00:00"},
    {"trailing garbage after offset", "2024-01-01T00:00:00+01:000"},
    {"month 13", "2024-13-01T00:00:00Z"},
    {"month 00", "2024-00-10T00:00:00Z"},
    {"day 00", "2024-01-00T00:00:00Z"},
    {"day 32", "2024-01-32T00:00:00Z"},
    {"Apr 31", "2024-04-31T00:00:00Z"},
    {"Jun 31", "2024-06-31T00:00:00Z"},
    {"Feb 30 in leap year", "2024-02-30T00:00:00Z"},
    {"Feb 29 in 2023", "2023-02-29T00:00:00Z"},
    {"Feb 29 in 2100 (century)", "2100-02-29T00:00:00Z"},
    {"Feb 29 in 1900 (century)", "1900-02-29T00:00:00Z"},
    {"hour 24", "2024-01-01T24:00:00Z"},
    {"minute 60", "2024-01-01T00:60:00Z"},
    {"leap second 60", "2016-12-31T23:59:60Z"},
    {"offset hour 24", "2024-01-01T00:00:00+24:00"},
    {"offset minute 60", "2024-01-01T00:00:00+01:60"},
    {"offset without colon", "2024-01-01T00:00:00+0100"},
    {"offset hour only", "2024-01-01T00:00:00+01"},
    {"offset one-digit hour", "2024-01-01T00:00:00+1:00"},
    {"offset with Z", "2024-01-01T00:00:00+01:00Z"},
    {"empty fraction", "2024-01-01T00:00:00.Z"},
    {"fraction of 10 digits", "2024-01-01T00:00:00.1234567890Z"},
    {"comma fraction", "2024-01-01T00:00:00,5Z"},
    {"short year", "224-01-01T00:00:00Z"},
    {"five-digit year", "10000-01-01T00:00:00Z"},
    {"one-digit month", "2024-1-01T00:00:00Z"},
    {"one-digit second", "2024-01-01T00:00:0Z"},
    {"slashes", "2024/01/01T00:00:00Z"},
    {"signed year", "+2024-01-01T00:00:00Z"},
    {"sign inside a field", "2024-01-+1T00:00:00Z"},
    {"letter in year", "2O24-01-01T00:00:00Z"},
    {"lowercase zone letter other than z", "2024-01-01T00:00:00u"},
    {"named zone", "2024-01-01T00:00:00UTC"},
    {"1969 in UTC", "1969-12-31T23:59:59Z"},
    {"1969 last ms", "1969-12-31T23:59:59.999Z"},
    {"sub-ms before epoch floors to -1", "1969-12-31T23:59:59.9999Z"},
    {"epoch pushed before 1970 by +00:01", "1970-01-01T00:00:00+00:01"},
    {"year 0000", "0000-01-01T00:00:00Z"},
    {"above max by 1 ms", "9999-12-31T23:59:00-00:01"},
    {"above max by a minute", "9999-12-31T23:59:59.999-00:01"},
    {"above max by offset", "9999-12-31T23:30:00-01:00"},
};

static void test_rfc3339_accepts_every_valid_form_with_expected_ms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        int64_t ms = UNTOUCHED;
        int rc = tstamp_parse_rfc3339(accepted[i].text,
                                      strlen(accepted[i].text), &ms);

        if (rc != 0 || ms != accepted[i].ms) {
            fail_msg("%s: \"%s\" -> rc %d, %lld ms, want %lld", accepted[i].name,
                     accepted[i].text, rc, (long long)ms,
                     (long long)accepted[i].ms);
        }
    }
}

static void test_rfc3339_rejects_every_invalid_form(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
        int64_t ms = UNTOUCHED;
        int rc = tstamp_parse_rfc3339(rejected[i].text,
                                      strlen(rejected[i].text), &ms);

        if (rc != -1 || ms != UNTOUCHED) {
            fail_msg("%s: \"%s\" accepted as %lld ms", rejected[i].name,
                     rejected[i].text, (long long)ms);
        }
    }
}

/* The length, not a NUL, ends the input: a prefix of a longer buffer parses,
 * an embedded NUL is an error, and a cut-off zone is an error. */
static void test_rfc3339_honours_length_not_nul(void **state)
{
    static const char longer[] = "2024-02-29T12:00:00Zgarbage";
    static const char nul_in_zone[] = "2024-02-29T12:00:00+01\0:00";
    static const char nul_in_date[] = "2024-02-29T12:00\0:00Z";
    static const char nul_in_fraction[] = "2024-02-29T12:00:00.1\0002Z";
    int64_t ms = UNTOUCHED;

    (void)state;
    assert_int_equal(tstamp_parse_rfc3339(longer, 20, &ms), 0);
    assert_true(ms == INT64_C(1709208000000));
    ms = UNTOUCHED;
    assert_int_equal(tstamp_parse_rfc3339(longer, sizeof longer - 1, &ms), -1);
    assert_int_equal(tstamp_parse_rfc3339(longer, 19, &ms), -1);
    assert_int_equal(tstamp_parse_rfc3339(longer, 0, &ms), -1);
    assert_int_equal(
        tstamp_parse_rfc3339(nul_in_zone, sizeof nul_in_zone - 1, &ms), -1);
    assert_int_equal(
        tstamp_parse_rfc3339(nul_in_date, sizeof nul_in_date - 1, &ms), -1);
    assert_int_equal(
        tstamp_parse_rfc3339(nul_in_fraction, sizeof nul_in_fraction - 1, &ms),
        -1);
    assert_int_equal(tstamp_parse_rfc3339(NULL, 20, &ms), -1);
    assert_true(ms == UNTOUCHED);
}

static void test_format_writes_utc_with_milliseconds(void **state)
{
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {INT64_C(0), "1970-01-01T00:00:00.000Z"},
        {INT64_C(1), "1970-01-01T00:00:00.001Z"},
        {INT64_C(1709208000000), "2024-02-29T12:00:00.000Z"},
        {INT64_C(951782400000), "2000-02-29T00:00:00.000Z"},
        {INT64_C(4107542399000), "2100-02-28T23:59:59.000Z"},
        {INT64_C(4107542400000), "2100-03-01T00:00:00.000Z"},
        {INT64_C(1721034303123), "2024-07-15T09:05:03.123Z"},
        {INT64_C(1735689599999), "2024-12-31T23:59:59.999Z"},
        {INT64_C(253402300799999), "9999-12-31T23:59:59.999Z"},
        {INT64_C(-1), "1969-12-31T23:59:59.999Z"},
        {INT64_C(-86400000), "1969-12-31T00:00:00.000Z"},
    };
    char buf[32];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_ptr_equal(tstamp_format_rfc3339(cases[i].ms, buf, sizeof buf),
                         buf);
        assert_string_equal(buf, cases[i].text);
    }
}

static void test_format_fits_in_25_bytes_and_never_overruns(void **state)
{
    char buf[25];
    char tiny[8];

    (void)state;
    tstamp_format_rfc3339(INT64_C(253402300799999), buf, sizeof buf);
    assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
    tstamp_format_rfc3339(INT64_C(0), tiny, sizeof tiny);
    assert_string_equal(tiny, "1970-01");
    tstamp_format_rfc3339(INT64_MIN, buf, sizeof buf);
    assert_true(strlen(buf) == sizeof buf - 1);
    tstamp_format_rfc3339(INT64_MAX, buf, sizeof buf);
    assert_true(strlen(buf) == sizeof buf - 1);
}

/* Instants about every 1000 s over two days around leap days and both ends
 * of the range format and parse back to themselves. */
static void test_format_then_parse_round_trips(void **state)
{
    static const int64_t starts[] = {
        INT64_C(0), INT64_C(951696000000), INT64_C(1709164800000),
        INT64_C(4107456000000), INT64_C(253402128000000),
    };
    char buf[32];

    (void)state;
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        for (int64_t ms = starts[i]; ms < starts[i] + 2 * 86400000;
             ms += 999983) {
            int64_t back = UNTOUCHED;

            tstamp_format_rfc3339(ms, buf, sizeof buf);
            assert_int_equal(tstamp_parse_rfc3339(buf, strlen(buf), &back), 0);
            assert_true(back == ms);
        }
    }
}

static void test_duration_accepts_units_and_sums(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"250ms", INT64_C(250)},
        {"20s", INT64_C(20000)},
        {"15m", INT64_C(900000)},
        {"4h", INT64_C(14400000)},
        {"2d", INT64_C(172800000)},
        {"1h30m", INT64_C(5400000)},
        {"1m30s", INT64_C(90000)},
        {"1ms", INT64_C(1)},
        {"1m1ms", INT64_C(60001)},
        {"1d2h3m4s5ms", INT64_C(93784005)},
        {"30s1h", INT64_C(3630000)},
        {"0s", INT64_C(0)},
        {"0ms", INT64_C(0)},
        {"007s", INT64_C(7000)},
        {"9223372036854775807ms", INT64_MAX},
        {"106751991167d", INT64_C(9223372036828800000)},
        {"9223372036854775000ms807ms", INT64_MAX},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = UNTOUCHED;

        if (tstamp_parse_duration(cases[i].text, &ms) != 0 ||
            ms != cases[i].ms) {
            fail_msg("\"%s\" -> %lld, want %lld", cases[i].text, (long long)ms,
                     (long long)cases[i].ms);
        }
    }
}

static void test_duration_rejects_malformed_negative_and_overflowing(
    void **state)
{
    static const struct {
        const char *name;
        const char *text;
    } cases[] = {
        {"empty", ""},
        {"plain number", "250"},
        {"number after unit", "1h30"},
        {"unit only", "ms"},
        {"unknown unit", "5w"},
        {"unknown unit y", "1y"},
        {"uppercase unit", "5S"},
        {"microseconds", "5us"},
        {"negative", "-5s"},
        {"plus sign", "+5s"},
        {"inner negative", "1h-5m"},
        {"leading space", " 5s"},
        {"trailing space", "5s "},
        {"inner space", "1h 30m"},
        {"decimal", "1.5h"},
        {"doubled unit letter", "5ss"},
        {"number overflow", "9223372036854775808ms"},
        {"unit overflow", "9223372036854775807s"},
        {"days overflow", "106751991168d"},
        {"sum overflow", "9223372036854775807ms1ms"},
        {"huge digits", "99999999999999999999999999h"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = UNTOUCHED;

        if (tstamp_parse_duration(cases[i].text, &ms) != -1 ||
            ms != UNTOUCHED) {
            fail_msg("%s: \"%s\" accepted as %lld", cases[i].name,
                     cases[i].text, (long long)ms);
        }
    }
    {
        int64_t ms = UNTOUCHED;

        assert_int_equal(tstamp_parse_duration(NULL, &ms), -1);
        assert_true(ms == UNTOUCHED);
    }
}

/* Wall clock is after 2024-01-01 and inside the accepted range; the
 * monotonic clock never goes back. */
static void test_clocks_are_plausible(void **state)
{
    int64_t now = tstamp_now_ms();
    int64_t a = tstamp_mono_ms();
    int64_t b = tstamp_mono_ms();

    (void)state;
    assert_true(now > INT64_C(1704067200000));
    assert_true(now <= TSTAMP_MAX_MS);
    assert_true(a >= 0);
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339_accepts_every_valid_form_with_expected_ms),
        cmocka_unit_test(test_rfc3339_rejects_every_invalid_form),
        cmocka_unit_test(test_rfc3339_honours_length_not_nul),
        cmocka_unit_test(test_format_writes_utc_with_milliseconds),
        cmocka_unit_test(test_format_fits_in_25_bytes_and_never_overruns),
        cmocka_unit_test(test_format_then_parse_round_trips),
        cmocka_unit_test(test_duration_accepts_units_and_sums),
        cmocka_unit_test(test_duration_rejects_malformed_negative_and_overflowing),
        cmocka_unit_test(test_clocks_are_plausible),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
