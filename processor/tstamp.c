/* SPDX-License-Identifier: Apache-2.0 */
/* tstamp: strict RFC 3339 and duration parsing on Gregorian day arithmetic. */

/*
 * No timegm/mktime/strptime: they depend on the locale and TZ and accept more
 * than RFC 3339 allows. Dates become days since the epoch with Howard
 * Hinnant's days_from_civil (and back with civil_from_days), which are exact
 * for every proleptic Gregorian date and need no tables.
 */

#include "tstamp.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS_PER_SECOND INT64_C(1000)
#define MS_PER_MINUTE INT64_C(60000)
#define MS_PER_HOUR INT64_C(3600000)
#define MS_PER_DAY INT64_C(86400000)

/* Length of "YYYY-MM-DDTHH:MM:SS", and of a numeric offset "+hh:mm". */
#define TSTAMP_BASE_LEN 19
#define TSTAMP_OFFSET_LEN 6
#define TSTAMP_MAX_FRACTION 9

/* The fields of a parsed date-time, before the offset is applied. */
struct tstamp_fields {
    int year, month, day;
    int hour, minute, second;
    int milli;
    int offset_min; /* local time minus UTC */
};

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t tstamp_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The date of day z since 1970-01-01. */
static void tstamp_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int tstamp_is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int tstamp_days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};

    return m == 2 && tstamp_is_leap(y) ? 29 : days[m - 1];
}

static int tstamp_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The value of the n decimal digits at s, or -1 if one is not a digit. */
static int tstamp_digits(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!tstamp_is_digit(s[i])) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Reads "YYYY-MM-DDTHH:MM:SS" from the first TSTAMP_BASE_LEN bytes of s. */
static int tstamp_parse_base(const char *s, struct tstamp_fields *f)
{
    if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':') {
        return -1;
    }
    f->year = tstamp_digits(s, 4);
    f->month = tstamp_digits(s + 5, 2);
    f->day = tstamp_digits(s + 8, 2);
    f->hour = tstamp_digits(s + 11, 2);
    f->minute = tstamp_digits(s + 14, 2);
    f->second = tstamp_digits(s + 17, 2);
    if (f->year < 0 || f->month < 1 || f->month > 12 || f->day < 1 ||
        f->day > tstamp_days_in_month(f->year, f->month)) {
        return -1;
    }
    if (f->hour < 0 || f->hour > 23 || f->minute < 0 || f->minute > 59 ||
        f->second < 0 || f->second > 59) {
        return -1;
    }
    return 0;
}

/* Reads an optional ".f{1,9}" at s[*pos]; keeps whole milliseconds, which for
 * the non-negative instants accepted here is truncation toward the past. */
static int tstamp_parse_fraction(const char *s, size_t len, size_t *pos,
                                 int *milli)
{
    size_t i = *pos + 1;
    int digits = 0;

    *milli = 0;
    if (*pos >= len || s[*pos] != '.') {
        return 0;
    }
    for (; i < len && tstamp_is_digit(s[i]); i++, digits++) {
        if (digits < 3) {
            *milli = *milli * 10 + (s[i] - '0');
        }
    }
    if (digits < 1 || digits > TSTAMP_MAX_FRACTION) {
        return -1;
    }
    for (int k = digits; k < 3; k++) {
        *milli *= 10;
    }
    *pos = i;
    return 0;
}

/* Reads the zone, which must end the string: "Z", "z", "+hh:mm" or "-hh:mm". */
static int tstamp_parse_zone(const char *s, size_t len, size_t pos,
                             int *offset_min)
{
    int hh, mm;

    if (pos + 1 == len && (s[pos] == 'Z' || s[pos] == 'z')) {
        *offset_min = 0;
        return 0;
    }
    if (pos + TSTAMP_OFFSET_LEN != len || (s[pos] != '+' && s[pos] != '-') ||
        s[pos + 3] != ':') {
        return -1;
    }
    hh = tstamp_digits(s + pos + 1, 2);
    mm = tstamp_digits(s + pos + 4, 2);
    if (hh < 0 || hh > 23 || mm < 0 || mm > 59) {
        return -1;
    }
    *offset_min = (s[pos] == '-' ? -1 : 1) * (hh * 60 + mm);
    return 0;
}

/* Epoch ms of the fields: local time minus the offset. */
static int64_t tstamp_fields_ms(const struct tstamp_fields *f)
{
    int64_t days = tstamp_days_from_civil(f->year, f->month, f->day);
    int64_t ms = days * MS_PER_DAY;

    ms += f->hour * MS_PER_HOUR + f->minute * MS_PER_MINUTE;
    ms += f->second * MS_PER_SECOND + f->milli;
    return ms - f->offset_min * MS_PER_MINUTE;
}

int tstamp_parse_rfc3339(const char *s, size_t len, int64_t *ms)
{
    struct tstamp_fields f;
    size_t pos = TSTAMP_BASE_LEN;
    int64_t v;

    if (s == NULL || len <= TSTAMP_BASE_LEN || tstamp_parse_base(s, &f) != 0) {
        return -1;
    }
    if (tstamp_parse_fraction(s, len, &pos, &f.milli) != 0 ||
        tstamp_parse_zone(s, len, pos, &f.offset_min) != 0) {
        return -1;
    }
    v = tstamp_fields_ms(&f);
    if (v < 0 || v > TSTAMP_MAX_MS) {
        return -1;
    }
    *ms = v;
    return 0;
}

char *tstamp_format_rfc3339(int64_t ms, char *buf, size_t size)
{
    int64_t days = ms / MS_PER_DAY;
    int64_t rem = ms % MS_PER_DAY;
    int64_t year;
    int month, day;

    if (rem < 0) {
        /* floor division, so instants before 1970 get the right date */
        rem += MS_PER_DAY;
        days -= 1;
    }
    tstamp_civil_from_days(days, &year, &month, &day);
    (void)snprintf(buf, size, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
                   (long long)year, month, day, (int)(rem / MS_PER_HOUR),
                   (int)(rem / MS_PER_MINUTE % 60),
                   (int)(rem / MS_PER_SECOND % 60),
                   (int)(rem % MS_PER_SECOND));
    return buf;
}

/* Reads a run of digits at *p into *v; -1 if there is none or it overflows. */
static int tstamp_read_number(const char **p, int64_t *v)
{
    const char *s = *p;

    *v = 0;
    if (!tstamp_is_digit(*s)) {
        return -1;
    }
    for (; tstamp_is_digit(*s); s++) {
        int d = *s - '0';

        if (*v > (INT64_MAX - d) / 10) {
            return -1;
        }
        *v = *v * 10 + d;
    }
    *p = s;
    return 0;
}

/* Duration units; "ms" comes before "m" so that the longer name wins. */
static const struct tstamp_unit {
    const char *name;
    int64_t ms;
} tstamp_units[] = {
    {"ms", 1},
    {"s", MS_PER_SECOND},
    {"m", MS_PER_MINUTE},
    {"h", MS_PER_HOUR},
    {"d", MS_PER_DAY},
};

/* Reads a unit name at *p into its length in ms; -1 if there is none. */
static int tstamp_read_unit(const char **p, int64_t *unit)
{
    size_t n = sizeof tstamp_units / sizeof tstamp_units[0];

    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(tstamp_units[i].name);

        if (strncmp(*p, tstamp_units[i].name, len) == 0) {
            *unit = tstamp_units[i].ms;
            *p += len;
            return 0;
        }
    }
    return -1;
}

int tstamp_parse_duration(const char *s, int64_t *ms)
{
    int64_t total = 0;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    while (*s != '\0') {
        int64_t n, unit;

        if (tstamp_read_number(&s, &n) != 0 ||
            tstamp_read_unit(&s, &unit) != 0) {
            return -1;
        }
        if (n > (INT64_MAX - total) / unit) {
            return -1;
        }
        total += n * unit;
    }
    *ms = total;
    return 0;
}

static int64_t tstamp_clock_ms(clockid_t clock)
{
    struct timespec ts;

    if (clock_gettime(clock, &ts) != 0) {
        return 0;
    }
    return (int64_t)ts.tv_sec * MS_PER_SECOND + ts.tv_nsec / 1000000;
}

int64_t tstamp_now_ms(void)
{
    return tstamp_clock_ms(CLOCK_REALTIME);
}

int64_t tstamp_mono_ms(void)
{
    return tstamp_clock_ms(CLOCK_MONOTONIC);
}
