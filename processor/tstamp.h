/* SPDX-License-Identifier: Apache-2.0 */
/* tstamp: RFC 3339 timestamps and duration strings to and from epoch milliseconds. */
#ifndef TP_TSTAMP_H
#define TP_TSTAMP_H

#include <stddef.h>
#include <stdint.h>

/* Largest accepted instant: 9999-12-31T23:59:59.999Z. */
#define TSTAMP_MAX_MS INT64_C(253402300799999)

/* Parses an RFC 3339 date-time of len bytes (s is borrowed, need not be
 * NUL-terminated): "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|z|+hh:mm|-hh:mm)"; 'T' may be
 * 't'. Fractions beyond milliseconds are truncated toward the past. Rejects
 * impossible dates (Feb 30, month 13, hour 24, leap second 60), years before
 * 1970 after applying the offset, results above TSTAMP_MAX_MS, and anything
 * else. Returns 0 and sets *ms, or -1. */
int tstamp_parse_rfc3339(const char *s, size_t len, int64_t *ms);

/* Writes ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (at least 25 bytes).
 * Returns buf. */
char *tstamp_format_rfc3339(int64_t ms, char *buf, size_t size);

/* Parses a duration like "250ms", "20s", "15m", "4h", "2d", or a sum of them
 * ("1h30m"), NUL-terminated. Plain integers are rejected (a unit is required).
 * Returns 0 and sets *ms (> 0 unless the string is "0s"/"0ms"...), or -1. */
int tstamp_parse_duration(const char *s, int64_t *ms);

/* Current wall-clock time in epoch ms. */
int64_t tstamp_now_ms(void);

/* Monotonic clock in ms (for intervals and timeouts). */
int64_t tstamp_mono_ms(void);

#endif
