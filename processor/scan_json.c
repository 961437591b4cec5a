/* SPDX-License-Identifier: Apache-2.0 */
/* scan_json: validates one JSON document exactly as jansson 2.14 does, in one pass and without allocating. */

/*
 * The rules of jansson 2.14's json_loadb(JSON_DECODE_ANY), from its
 * src/load.c, src/utf.c and src/strconv.c, mirrored here:
 * - whitespace is space, tab, CR, LF only; nothing may follow the value;
 * - every byte must be strict UTF-8 (no overlong forms, no encoded
 *   surrogates, nothing above U+10FFFF), inside strings or not;
 * - strings: no raw byte below 0x20; escapes \" \\ \/ \b \f \n \r \t and
 *   \uXXXX; a high surrogate escape must be followed by a low one, a lone low
 *   one is an error; \u0000 is an error in keys and in values;
 * - numbers: RFC 8259 grammar; one without '.', 'e', 'E' is an integer and
 *   must fit int64 ("-0" is the integer 0); any other is a real and must not
 *   overflow to infinity under strtod (underflow to 0 is fine);
 * - depth: the top-level value is at depth 1 and no value, scalar or not,
 *   may be deeper than JSON_PARSER_MAX_DEPTH (2048);
 * - duplicate keys: the last value wins, the earlier ones need only be JSON.
 *
 * One deliberate difference: jansson 2.14 skips a single NUL byte right
 * after a number or true/false/null (stream_unget() puts the NUL back into
 * its one-character buffer, where NUL means "empty"), so it accepts
 * {"a":1<NUL>}. That is not JSON; here any NUL byte is an error.
 *
 * Containers are skipped without recursion: one bit per level says object
 * or array, 2048 levels fit in 256 bytes of stack.
 */

#include "scan_json.h"

#include <string.h>

/* jansson's JSON_PARSER_MAX_DEPTH. */
#define SCAN_MAX_DEPTH 2048

/* Largest magnitude strtod rounds to a finite double: 2^1024 - 2^970 (the
 * midpoint between DBL_MAX and 2^1024, which rounds up, to even) has these
 * 309 digits. A real at or above it overflows. */
static const char real_limit[] =
    "17976931348623158079372897140530341507993413271003782693617377898044"
    "49682927647509466490179775872070963302864166928879109465555478519404"
    "02630657488671505820681908902000708383676273854845817711531764475730"
    "27006985557136695962284291481986083493647529271907416844436551070434"
    "2711559699508093042880177904174497792";
#define REAL_LIMIT_DIGITS 309

/* Bytes that end a run of plain string content: '"', '\\', control bytes
 * (< 0x20) and the first byte of a UTF-8 sequence (>= 0x80). */
/* clang-format off */
static const unsigned char string_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20: '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50: '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x70 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x80 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};
/* clang-format on */

struct scanner {
    const unsigned char *p;           /* next byte */
    const unsigned char *end;         /* one past the last byte */
    const char *why;                  /* set when the document is not JSON */
    const struct scan_json_key *keys; /* top-level keys to keep */
    size_t nkeys;
    struct scan_json_value *values; /* values[i]: last value of keys[i] */
    /* The keys by length: 1 + the index of the first key of each length
     * (0: none), and 1 + the index of the next key of the same length. */
    uint8_t first_of_len[SCAN_JSON_KEY_MAX + 1];
    uint8_t next_of_len[SCAN_JSON_KEYS_MAX];
};

/* Records why the document is not JSON; always returns -1. */
static int scan_error(struct scanner *s, const char *why)
{
    s->why = why;
    return -1;
}

static bool is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

static inline void skip_ws(struct scanner *s)
{
    /* every whitespace byte is <= ' ', most bytes here are not */
    while (s->p < s->end && *s->p <= ' ' &&
           (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) {
        s->p++;
    }
}

/* Consumes byte c (after whitespace) or fails with why. */
static int expect_byte(struct scanner *s, unsigned char c, const char *why)
{
    skip_ws(s);
    if (s->p == s->end || *s->p != c) {
        return scan_error(s, why);
    }
    s->p++;
    return 0;
}

/* One multi-byte UTF-8 sequence at s->p, as utf8_check_first/_full accept
 * it: shortest form, no surrogates, at most U+10FFFF. */
static int scan_utf8(struct scanner *s)
{
    const unsigned char *p = s->p;
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;

    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* overlong */
        hi = c == 0xED ? 0x9F : 0xBF; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80; /* overlong */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* above U+10FFFF */
    } else {
        return scan_error(s, "invalid UTF-8 byte");
    }
    if ((size_t)(s->end - p) < n || p[1] < lo || p[1] > hi) {
        return scan_error(s, "invalid UTF-8 sequence");
    }
    for (size_t i = 2; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return scan_error(s, "invalid UTF-8 sequence");
        }
    }
    s->p += n;
    return 0;
}

/* The value of four hex digits at p (at least 4 bytes), or -1. */
static int32_t hex4(const unsigned char *p)
{
    int32_t v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (is_digit(c)) {
            v += (int32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v += (int32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v += (int32_t)(c - 'A' + 10);
        } else {
            return -1;
        }
    }
    return v;
}

/* A "\uXXXX" at p (6 bytes available)? Its value, else -1. */
static int32_t u_escape(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 6 || p[0] != '\\' || p[1] != 'u') {
        return -1;
    }
    return hex4(p + 2);
}

/* The escape at s->p (a backslash): checks it and adds its unescaped length
 * to *len. */
static int scan_escape(struct scanner *s, size_t *len)
{
    int32_t v, low;

    if (s->end - s->p < 2) {
        return scan_error(s, "premature end of input in string");
    }
    switch (s->p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        s->p += 2;
        *len += 1;
        return 0;
    case 'u':
        break;
    default:
        return scan_error(s, "invalid escape");
    }
    if ((v = u_escape(s->p, s->end)) < 0) {
        return scan_error(s, "invalid \\u escape");
    }
    s->p += 6;
    if (v == 0) {
        return scan_error(s, "\\u0000 in a string");
    }
    if (v >= 0xDC00 && v <= 0xDFFF) {
        return scan_error(s, "lone low surrogate escape");
    }
    if (v >= 0xD800 && v <= 0xDBFF) {
        low = u_escape(s->p, s->end);
        if (low < 0xDC00 || low > 0xDFFF) {
            return scan_error(s, "high surrogate escape without a low one");
        }
        s->p += 6;
        *len += 4;
        return 0;
    }
    *len += v < 0x80 ? 1 : v < 0x800 ? 2 : 3;
    return 0;
}

#define SWAR_ONES UINT64_C(0x0101010101010101)
#define SWAR_HIGH UINT64_C(0x8080808080808080)

/* The high bit of each byte of x below n (n <= 0x80; 1 tests for a zero
 * byte), and maybe of bytes after the first such one: a borrow runs upward
 * only from a byte below n. So the lowest bit set marks the first byte below
 * n exactly, and none are set when there is none. */
static uint64_t swar_has_less(uint64_t x, uint64_t n)
{
    return (x - SWAR_ONES * n) & ~x & SWAR_HIGH;
}

/* The first byte at or after p that ends a run of plain string content (see
 * string_stop), or end. Eight bytes at a time: on little-endian machines the
 * lowest flag of the word says which byte it is; elsewhere the byte loop
 * finds it, as it does in the last seven bytes of the input. */
static const unsigned char *string_run(const unsigned char *p,
                                       const unsigned char *end)
{
    while (end - p >= 8) {
        uint64_t w, stop;

        memcpy(&w, p, sizeof(w));
        stop = (w & SWAR_HIGH) | swar_has_less(w, 0x20) |
               swar_has_less(w ^ (SWAR_ONES * '"'), 1) |
               swar_has_less(w ^ (SWAR_ONES * '\\'), 1);
        if (stop != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return p + (__builtin_ctzll(stop) >> 3);
#else
            break;
#endif
        }
        p += 8;
    }
    while (p < end && !string_stop[*p]) {
        p++;
    }
    return p;
}

/* The string at s->p (its opening quote); fills *v. */
static int scan_string(struct scanner *s, struct scan_json_value *v)
{
    const unsigned char *first = ++s->p, *p = first;
    size_t len = 0;

    v->escaped = false;
    for (;;) {
        p = string_run(p, s->end);
        len += (size_t)(p - s->p);
        s->p = p;
        if (p == s->end) {
            return scan_error(s, "premature end of input in string");
        }
        if (*p == '"') {
            break;
        }
        if (*p < 0x20) {
            return scan_error(s, "control character in string");
        }
        if (*p == '\\') {
            v->escaped = true;
            if (scan_escape(s, &len) < 0) {
                return -1;
            }
        } else if (scan_utf8(s) < 0) {
            return -1;
        } else {
            len += (size_t)(s->p - p);
        }
        p = s->p;
    }
    v->kind = SCAN_JSON_STRING;
    v->raw = (const char *)first;
    v->raw_len = (size_t)(p - first);
    v->len = len;
    s->p = p + 1;
    return 0;
}

/* Whether the significant digits of a real, [d, d_end) then [f, f_end)
 * (the first one non-zero), read as 0.ddd..., reach 0.<real_limit>. */
static bool digits_reach_limit(const unsigned char *d,
                               const unsigned char *d_end,
                               const unsigned char *f,
                               const unsigned char *f_end)
{
    for (size_t i = 0;; i++) {
        if (d == d_end) {
            d = f;
            d_end = f = f_end;
        }
        if (d == d_end) {
            /* equal so far: >= only if the rest of the limit is zeros */
            for (; i < REAL_LIMIT_DIGITS; i++) {
                if (real_limit[i] != '0') {
                    return false;
                }
            }
            return true;
        }
        if (i == REAL_LIMIT_DIGITS) {
            return true;
        }
        if (*d != (unsigned char)real_limit[i]) {
            return *d > (unsigned char)real_limit[i];
        }
        d++;
    }
}

/* Whether strtod would overflow (to +-HUGE_VAL with ERANGE) on the real
 * with integer digits [ip, ip_end), fraction digits [fp, fp_end) (maybe
 * empty) and decimal exponent exp. glibc rounds correctly, so this is
 * whether its magnitude reaches 2^1024 - 2^970. */
static bool real_overflows(const unsigned char *ip, const unsigned char *ip_end,
                           const unsigned char *fp, const unsigned char *fp_end,
                           int64_t exp)
{
    const unsigned char *d = ip;
    int64_t e; /* the value is 0.<significant digits> * 10^e */

    while (d < ip_end && *d == '0') {
        d++;
    }
    if (d < ip_end) {
        e = (int64_t)(ip_end - d) + exp;
        if (e == REAL_LIMIT_DIGITS) {
            return digits_reach_limit(d, ip_end, fp, fp_end);
        }
        return e > REAL_LIMIT_DIGITS;
    }
    for (d = fp; d < fp_end && *d == '0'; d++) {
    }
    if (d == fp_end) {
        return false; /* zero */
    }
    e = exp - (int64_t)(d - fp);
    if (e == REAL_LIMIT_DIGITS) {
        return digits_reach_limit(d, fp_end, fp_end, fp_end);
    }
    return e > REAL_LIMIT_DIGITS;
}

/* Reads a run of digits at p, returns the first non-digit. */
static const unsigned char *skip_digits(const unsigned char *p,
                                        const unsigned char *end)
{
    while (p < end && is_digit(*p)) {
        p++;
    }
    return p;
}

/* The fraction and exponent of a real whose integer digits are
 * [ip, ip_end); s->p is at '.', 'e' or 'E'. */
static int scan_real(struct scanner *s, const unsigned char *ip,
                     const unsigned char *ip_end, struct scan_json_value *v)
{
    const unsigned char *p = s->p, *fp = p, *fp_end = p;
    int64_t exp = 0;
    bool neg_exp = false;

    if (*p == '.') {
        fp = ++p;
        if (p == s->end || !is_digit(*p)) {
            return scan_error(s, "digit expected after '.'");
        }
        p = fp_end = skip_digits(p, s->end);
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < s->end && (*p == '+' || *p == '-')) {
            neg_exp = *p++ == '-';
        }
        if (p == s->end || !is_digit(*p)) {
            return scan_error(s, "digit expected in exponent");
        }
        /* saturates near 10^17, far beyond any exponent that matters */
        for (; p < s->end && is_digit(*p); p++) {
            if (exp < INT64_C(10000000000000000)) {
                exp = exp * 10 + (*p - '0');
            }
        }
    }
    s->p = p;
    if (real_overflows(ip, ip_end, fp, fp_end, neg_exp ? -exp : exp)) {
        return scan_error(s, "real number overflow");
    }
    v->kind = SCAN_JSON_OTHER;
    return 0;
}

/* The number at s->p ('-' or a digit); fills *v. */
static int scan_number(struct scanner *s, struct scan_json_value *v)
{
    const unsigned char *p = s->p, *digits;
    bool neg = *p == '-', big = false;
    uint64_t mag = 0;

    p += neg;
    digits = p;
    if (p == s->end || !is_digit(*p)) {
        return scan_error(s, "digit expected");
    }
    if (*p == '0') {
        if (++p < s->end && is_digit(*p)) {
            return scan_error(s, "leading zero");
        }
    } else {
        for (; p < s->end && is_digit(*p); p++) {
            unsigned d = *p - '0';
            big = big || mag > (UINT64_MAX - d) / 10;
            mag = mag * 10 + d;
        }
    }
    s->p = p;
    if (p < s->end && (*p == '.' || *p == 'e' || *p == 'E')) {
        return scan_real(s, digits, p, v);
    }
    if (big || mag > (uint64_t)INT64_MAX + neg) {
        return scan_error(s, "too big integer");
    }
    v->kind = SCAN_JSON_INTEGER;
    if (!neg) {
        v->integer = (int64_t)mag;
    } else if (mag > (uint64_t)INT64_MAX) {
        v->integer = INT64_MIN;
    } else {
        v->integer = -(int64_t)mag;
    }
    return 0;
}

static int scan_literal(struct scanner *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) {
        return scan_error(s, "invalid token");
    }
    s->p += n;
    return 0;
}

/* A string, number or literal at s->p; fills *v. */
static int scan_scalar(struct scanner *s, struct scan_json_value *v)
{
    v->kind = SCAN_JSON_OTHER;
    switch (*s->p) {
    case '"':
        return scan_string(s, v);
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return scan_number(s, v);
    case 't':
        return scan_literal(s, "true", 4);
    case 'f':
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4);
    default:
        return scan_error(s, "invalid token");
    }
}

/* An object key in a nested object: a string, then ':'. */
static int scan_nested_key(struct scanner *s)
{
    struct scan_json_value key;

    if (s->p == s->end || *s->p != '"') {
        return scan_error(s, "string or '}' expected");
    }
    if (scan_string(s, &key) < 0) {
        return -1;
    }
    if (expect_byte(s, ':', "':' expected") < 0) {
        return -1;
    }
    skip_ws(s);
    return 0;
}

/* Set bit d of open: the container at depth d is an object. */
static void nest_set(uint64_t *open, unsigned d, bool object)
{
    uint64_t bit = UINT64_C(1) << (d % 64);

    open[d / 64] = object ? open[d / 64] | bit : open[d / 64] & ~bit;
}

static bool nest_is_object(const uint64_t *open, unsigned d)
{
    return (open[d / 64] >> (d % 64)) & 1;
}

/* Opens the container at s->p, at depth d. Returns 1 when a value follows,
 * 0 when it closed at once, -1 on error. */
static int nest_open(struct scanner *s, uint64_t *open, unsigned d)
{
    bool object = *s->p == '{';

    nest_set(open, d, object);
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == (object ? '}' : ']')) {
        s->p++;
        return 0;
    }
    if (object && scan_nested_key(s) < 0) {
        return -1;
    }
    return 1;
}

/* After a value inside the container at depth d. Returns 1 when another
 * value follows, 0 when the container closed, -1 on error. */
static int nest_next(struct scanner *s, const uint64_t *open, unsigned d)
{
    bool object = nest_is_object(open, d);

    skip_ws(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        skip_ws(s);
        if (object && scan_nested_key(s) < 0) {
            return -1;
        }
        return 1;
    }
    if (s->p < s->end && *s->p == (object ? '}' : ']')) {
        s->p++;
        return 0;
    }
    return scan_error(s,
                      object ? "',' or '}' expected" : "',' or ']' expected");
}

/* Validates the array or object at s->p, itself at depth `depth`, without
 * recursion: a bit per level says object or array. */
static int scan_nested(struct scanner *s, unsigned depth)
{
    uint64_t open[SCAN_MAX_DEPTH / 64 + 1];
    struct scan_json_value ignored;
    unsigned top = depth;
    int rc = nest_open(s, open, top);

    for (;;) {
        if (rc < 0) {
            return -1;
        }
        if (rc == 0) {
            if (top == depth) {
                return 0;
            }
            rc = nest_next(s, open, --top);
            continue;
        }
        /* a value at depth top + 1 starts at s->p (whitespace skipped) */
        if (top + 1 > SCAN_MAX_DEPTH) {
            return scan_error(s, "maximum parsing depth reached");
        }
        if (s->p == s->end) {
            return scan_error(s, "value expected");
        }
        if (*s->p == '{' || *s->p == '[') {
            rc = nest_open(s, open, ++top);
            continue;
        }
        if (scan_scalar(s, &ignored) < 0) {
            return -1;
        }
        rc = nest_next(s, open, top);
    }
}

/* Any value at s->p (whitespace skipped) at the given depth; fills *v. */
static int scan_value(struct scanner *s, unsigned depth,
                      struct scan_json_value *v)
{
    if (depth > SCAN_MAX_DEPTH) {
        return scan_error(s, "maximum parsing depth reached");
    }
    if (s->p == s->end) {
        return scan_error(s, "value expected");
    }
    if (*s->p == '{' || *s->p == '[') {
        v->kind = SCAN_JSON_OTHER;
        return scan_nested(s, depth);
    }
    return scan_scalar(s, v);
}

/* ---- unescaping ----------------------------------------------------- */

static void put_utf8(int32_t c, char **out)
{
    unsigned char *o = (unsigned char *)*out;

    if (c < 0x80) {
        *o++ = (unsigned char)c;
    } else if (c < 0x800) {
        *o++ = (unsigned char)(0xC0 | (c >> 6));
        *o++ = (unsigned char)(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        *o++ = (unsigned char)(0xE0 | (c >> 12));
        *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (c & 0x3F));
    } else {
        *o++ = (unsigned char)(0xF0 | (c >> 18));
        *o++ = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
        *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (c & 0x3F));
    }
    *out = (char *)o;
}

/* The byte a short escape stands for. */
static char short_escape(char c)
{
    switch (c) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return c; /* '"', '\\', '/' */
    }
}

/* The escapes were validated by scan_string. */
void scan_json_copy(const struct scan_json_value *v, char *dst)
{
    const unsigned char *p = (const unsigned char *)v->raw;
    const unsigned char *end = p + v->raw_len;

    if (!v->escaped) {
        memcpy(dst, v->raw, v->raw_len);
        dst[v->raw_len] = '\0';
        return;
    }
    while (p < end) {
        if (*p != '\\') {
            *dst++ = (char)*p++;
        } else if (p[1] != 'u') {
            *dst++ = short_escape((char)p[1]);
            p += 2;
        } else {
            int32_t c = hex4(p + 2);
            p += 6;
            if (c >= 0xD800 && c <= 0xDBFF) {
                c = ((c - 0xD800) << 10) + (hex4(p + 2) - 0xDC00) + 0x10000;
                p += 6;
            }
            put_utf8(c, &dst);
        }
    }
    *dst = '\0';
}

/* ---- the top-level object ---------------------------------------------- */

/* Whether the n bytes at a and b are equal: word loads where n allows, as
 * memcmp's call costs more than the compare for keys this short. */
static bool same_bytes(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    uint32_t u, v;

    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y) {
                return false;
            }
        }
        memcpy(&x, a + n - 8, 8); /* the last eight, maybe overlapping */
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        if (u != v) {
            return false;
        }
        memcpy(&u, a + n - 4, 4);
        memcpy(&v, b + n - 4, 4);
        return u == v;
    }
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return false;
        }
    }
    return true;
}

/* The index of a top-level key of len bytes (1..SCAN_JSON_KEY_MAX,
 * unescaped) at k, or nkeys. */
static size_t key_index(const struct scanner *s, const char *k, size_t len)
{
    unsigned j = s->first_of_len[len];

    for (; j != 0; j = s->next_of_len[j - 1]) {
        if (same_bytes(s->keys[j - 1].name, k, len)) {
            return j - 1;
        }
    }
    return s->nkeys;
}

/* Where to keep the value of top-level member key: a slot or *ignored. */
static struct scan_json_value *member_value(struct scanner *s,
                                            const struct scan_json_value *key,
                                            struct scan_json_value *ignored)
{
    char buf[SCAN_JSON_KEY_MAX + 1];
    size_t i;

    if (key->len > SCAN_JSON_KEY_MAX || key->len == 0) {
        return ignored;
    }
    if (!key->escaped) {
        i = key_index(s, key->raw, key->len);
    } else {
        scan_json_copy(key, buf);
        i = key_index(s, buf, key->len);
    }
    return i < s->nkeys ? &s->values[i] : ignored;
}

/* One "key": value member of the top-level object, s->p at the key. */
static int scan_member(struct scanner *s)
{
    struct scan_json_value key, ignored;
    struct scan_json_value *value;

    if (s->p == s->end || *s->p != '"') {
        return scan_error(s, "string or '}' expected");
    }
    if (scan_string(s, &key) < 0) {
        return -1;
    }
    value = member_value(s, &key, &ignored);
    if (expect_byte(s, ':', "':' expected") < 0) {
        return -1;
    }
    skip_ws(s);
    return scan_value(s, 2, value);
}

/* The top-level object at s->p; fills the values. */
static int scan_object(struct scanner *s)
{
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        if (scan_member(s) < 0) {
            return -1;
        }
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            skip_ws(s);
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return 0;
        }
        return scan_error(s, "',' or '}' expected");
    }
}

int scan_json_document(const char *buf, size_t len,
                       const struct scan_json_key *keys, size_t nkeys,
                       struct scan_json_value *values,
                       struct scan_json_error *err)
{
    struct scanner s = {.keys = keys, .nkeys = nkeys, .values = values};
    struct scan_json_value ignored;
    bool object;

    if (buf == NULL || nkeys > SCAN_JSON_KEYS_MAX) {
        err->why = buf == NULL ? "no buffer" : "too many keys to keep";
        err->offset = 0;
        return -1;
    }
    /* first_of_len starts zeroed (the initializer) */
    for (size_t i = nkeys; i-- > 0;) {
        values[i].kind = SCAN_JSON_ABSENT;
        if (keys[i].len >= 1 && keys[i].len <= SCAN_JSON_KEY_MAX) {
            s.next_of_len[i] = s.first_of_len[keys[i].len];
            s.first_of_len[keys[i].len] = (uint8_t)(i + 1);
        }
    }
    s.p = (const unsigned char *)buf;
    s.end = s.p + len;
    skip_ws(&s);
    object = s.p < s.end && *s.p == '{';
    if ((object ? scan_object(&s) : scan_value(&s, 1, &ignored)) == 0) {
        skip_ws(&s);
        if (s.p == s.end) {
            return object ? 1 : 0;
        }
        scan_error(&s, "end of input expected");
    }
    err->why = s.why;
    err->offset = (size_t)(s.p - (const unsigned char *)buf);
    return -1;
}
