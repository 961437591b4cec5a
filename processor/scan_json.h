/* SPDX-License-Identifier: Apache-2.0 */
/* scan_json: one JSON document validated by jansson 2.14's rules in a single pass, keeping a few top-level values. */
#ifndef TP_SCAN_JSON_H
#define TP_SCAN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest key scan_json_document() can be asked to keep, and how many. */
#define SCAN_JSON_KEY_MAX 32
#define SCAN_JSON_KEYS_MAX 64

/* What the event contract can tell apart (jansson's json_is_string,
 * json_is_integer, anything else). */
enum scan_json_kind {
    SCAN_JSON_ABSENT,
    SCAN_JSON_STRING,
    SCAN_JSON_INTEGER,
    SCAN_JSON_OTHER
};

/* One value. A string is kept as its raw bytes between the quotes (already
 * validated, borrowed from the document) and its length once unescaped;
 * scan_json_copy() unescapes it. */
struct scan_json_value {
    enum scan_json_kind kind;
    bool escaped;    /* string: the raw bytes hold a backslash */
    const char *raw; /* string: borrowed from the document */
    size_t raw_len;
    size_t len;      /* string: bytes after unescaping */
    int64_t integer; /* integer */
};

/* A top-level key whose value to keep: len bytes (<= SCAN_JSON_KEY_MAX) at
 * name, no NUL needed. */
struct scan_json_key {
    const char *name;
    size_t len;
};

/* Why and where a document is not JSON. */
struct scan_json_error {
    const char *why; /* a static string, e.g. "invalid escape" */
    size_t offset;   /* of the byte where the scan stopped */
};

/* Validates buf[0..len) as one JSON document, accepting exactly what
 * jansson 2.14's json_loadb(buf, len, JSON_DECODE_ANY) accepts (see the
 * notes at the top of scan_json.c), except that any NUL byte is an error.
 * Never allocates and reads only buf[0..len).
 *
 * When the document is an object, values[i] is set to the value of its last
 * top-level member named keys[i] (kind SCAN_JSON_ABSENT when there is none;
 * values has room for nkeys entries, nkeys <= SCAN_JSON_KEYS_MAX). buf and
 * keys are borrowed; the strings in values point into buf.
 *
 * Returns 1 for an object, 0 for any other JSON value, -1 (and fills *err)
 * when it is not JSON; values are then unspecified. */
int scan_json_document(const char *buf, size_t len,
                       const struct scan_json_key *keys, size_t nkeys,
                       struct scan_json_value *values,
                       struct scan_json_error *err);

/* Copies string value v, unescaped, into dst (at least v->len + 1 bytes)
 * and NUL-terminates it. */
void scan_json_copy(const struct scan_json_value *v, char *dst);

#endif
