/* SPDX-License-Identifier: Apache-2.0 */
/* test_scan: scan_event() agrees with event_parse() on every stored case, the schema examples and hand-picked JSON corners. */
/*
 * Agreement means: the same return value, err.reason and err.field, an
 * err.text naming the field, and every field of struct event equal (on
 * rejections too; both start from the same garbage). The data cases live in
 * $TP_TESTDATA/events/{valid,invalid}/NAME.json (see test_event.c); each is
 * read into a buffer of exactly its length so ASan catches a read past len.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "scan.h"
#include "scanpool.h"

#define MAX_BYTES 65536
#define PATH_SIZE 4096

/* ---- comparing the two parsers ----------------------------------------- */

struct outcome {
    int rc;
    struct event ev;
    struct event_error err;
};

static void run_both(const char *buf, size_t len, struct outcome *ref,
                     struct outcome *got)
{
    memset(ref, 0x5A, sizeof(*ref));
    memset(got, 0x5A, sizeof(*got));
    ref->rc = event_parse(buf, len, MAX_BYTES, &ref->ev, &ref->err);
    got->rc = scan_event(buf, len, MAX_BYTES, &got->ev, &got->err);
}

static int same_event(const struct event *a, const struct event *b)
{
    return a->type == b->type && a->occurred_ms == b->occurred_ms &&
           strcmp(a->event_id, b->event_id) == 0 &&
           strcmp(a->tenant, b->tenant) == 0 &&
           strcmp(a->channel, b->channel) == 0 &&
           strcmp(a->queue, b->queue) == 0 &&
           strcmp(a->corr_id, b->corr_id) == 0 &&
           strcmp(a->customer_id, b->customer_id) == 0 &&
           a->score == b->score && a->wait_ms == b->wait_ms &&
           a->opened_ms == b->opened_ms;
}

/* Prints how scan_event disagrees with event_parse; 0 if it does not. */
static int disagreement(const char *name, const struct outcome *ref,
                        const struct outcome *got)
{
    const char *what = NULL;

    if (ref->rc != got->rc) {
        what = "decision";
    } else if (ref->rc != 0 && ref->err.reason != got->err.reason) {
        what = "class";
    } else if (ref->rc != 0 && strcmp(ref->err.field, got->err.field) != 0) {
        what = "field";
    } else if (ref->rc != 0 &&
               (got->err.text[0] == '\0' ||
                strstr(got->err.text, got->err.field) == NULL)) {
        what = "error text";
    } else if (!same_event(&ref->ev, &got->ev)) {
        what = "struct event";
    }
    if (what == NULL) {
        return 0;
    }
    print_error("%s: %s differs: event_parse rc %d %s \"%s\" (%s) / "
                "scan_event rc %d %s \"%s\" (%s)\n",
                name, what, ref->rc, event_reject_name(ref->err.reason),
                ref->err.field, ref->err.text, got->rc,
                event_reject_name(got->err.reason), got->err.field,
                got->err.text);
    return -1;
}

/* Runs both on a heap copy of exactly len bytes; returns 0 if they agree. */
static int agree(const char *name, const char *buf, size_t len,
                 struct outcome *got)
{
    struct outcome ref, tmp;
    char *copy = malloc(len ? len : 1);

    assert_non_null(copy);
    memcpy(copy, buf, len);
    run_both(copy, len, &ref, got ? got : &tmp);
    free(copy);
    return disagreement(name, &ref, got ? got : &tmp);
}

/* ---- the stored cases -------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL) {
        fail_msg("cannot open %s: %s", path, strerror(errno));
    }
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc(n ? (size_t)n : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls > lx && strcmp(s + ls - lx, suffix) == 0;
}

/* Runs every *.json of $TP_TESTDATA/events/<sub> through both; returns the
 * number of cases and adds disagreements to *bad. */
static int run_dir(const char *sub, int *bad)
{
    const char *root = getenv("TP_TESTDATA");
    char dir[PATH_SIZE], path[PATH_SIZE];
    struct dirent *de;
    DIR *d;
    int cases = 0;

    if (root == NULL || *root == '\0') {
        fail_msg("TP_TESTDATA is not set (run with TP_TESTDATA=tests/data)");
    }
    int n = snprintf(dir, sizeof(dir), "%s/events/%s", root, sub);
    assert_true(n > 0 && n < PATH_SIZE);
    if ((d = opendir(dir)) == NULL) {
        fail_msg("cannot open %s: %s", dir, strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        size_t len;
        if (!has_suffix(de->d_name, ".json")) {
            continue;
        }
        int pn = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        assert_true(pn > 0 && pn < PATH_SIZE);
        char *buf = slurp(path, &len);
        *bad += agree(path, buf, len, NULL) ? 1 : 0;
        free(buf);
        cases++;
    }
    closedir(d);
    return cases;
}

static void every_stored_case_agrees(void **state)
{
    (void)state;
    int bad = 0;
    int valid = run_dir("valid", &bad);
    int invalid = run_dir("invalid", &bad);

    print_message("stored cases: %d valid, %d invalid, %d disagree\n", valid,
                  invalid, bad);
    assert_true(valid > 0 && invalid > 0);
    assert_int_equal(bad, 0);
}

static void every_schema_example_agrees(void **state)
{
    (void)state;
    const char *root = getenv("TP_TESTDATA");
    char path[PATH_SIZE];
    json_error_t jerr;
    int bad = 0;

    assert_non_null(root);
    snprintf(path, sizeof(path), "%s/../../schemas/touchpoint.schema.json",
             root);
    json_t *schema = json_load_file(path, 0, &jerr);
    if (schema == NULL) {
        fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
    }
    json_t *examples = json_object_get(schema, "examples"); /* borrowed */
    assert_true(json_array_size(examples) > 0);
    for (size_t i = 0; i < json_array_size(examples); i++) {
        struct outcome got;
        char *text = json_dumps(json_array_get(examples, i), JSON_COMPACT);
        assert_non_null(text);
        bad += agree(text, text, strlen(text), &got) ? 1 : 0;
        assert_int_equal(got.rc, 0);
        free(text);
    }
    json_decref(schema);
    assert_int_equal(bad, 0);
}

/* ---- hand-picked corners ------------------------------------------------ */

#define DM_HEAD                                                                \
    "{\"event_id\":\"e1\",\"type\":\"dm.received\",\"occurred_at\":0,"         \
    "\"tenant\":\"acme\",\"channel\":\"chat\",\"conversation_id\":\"k1\""
#define DM_WITH(extra) DM_HEAD "," extra "}"
#define NPS_WITH(score)                                                        \
    "{\"event_id\":\"e1\",\"type\":\"survey.nps\",\"occurred_at\":0,"          \
    "\"tenant\":\"acme\",\"channel\":\"chat\",\"score\":" score "}"

/* One corner: the message and what both must say: rc 0, or the class and
 * field of the rejection. */
struct corner {
    const char *name;
    const char *json;
    int rc;
    enum event_reject reason;
    const char *field;
};

static const struct corner corners[] = {
    /* escapes in keys and values */
    {"escaped keys",
     "{\"ev\\u0065nt_id\":\"e1\",\"\\u0074ype\":\"dm.received\","
     "\"occurred_at\":0,\"tenant\":\"acme\",\"channel\":\"chat\","
     "\"conversation\\u005fid\":\"k1\"}",
     0, 0, NULL},
    {"every escape in a value",
     "{\"event_id\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\","
     "\"type\":\"dm.r\\u0065ceived\",\"occurred_at\":\"2024\\u002d02-29T12:"
     "00:00Z\",\"tenant\":\"ac\\u006de\",\"channel\":\"c\\u0068at\","
     "\"queue\":\"b\\u0069lling\",\"conversation_id\":\"k\\u0031\"}",
     0, 0, NULL},
    {"escaped type not a type",
     "{\"event_id\":\"e1\",\"type\":\"dm.r\\u00e9ceived\",\"occurred_at\":0}",
     -1, REJ_UNKNOWN_TYPE, "type"},
    {"escaped timestamp too long",
     DM_WITH("\"occurred_at\":\"2024-02-29T12:"
             "00:00.123456789+01:00\\u0020\""),
     -1, REJ_BAD_TIMESTAMP, "occurred_at"},
    /* duplicate keys: the last one wins */
    {"duplicate type and tenant",
     DM_WITH("\"type\":\"call.queued\",\"call_id\":"
             "\"c1\",\"tenant\":\"t2\""),
     0, 0, NULL},
    {"duplicate: bad then good",
     "{\"event_id\":null,\"event_id\":\"e1\",\"type\":\"dm.received\","
     "\"occurred_at\":-1,\"occurred_at\":5,\"tenant\":\"acme\","
     "\"channel\":\"chat\",\"conversation_id\":\"k1\"}",
     0, 0, NULL},
    {"duplicate: good then bad", DM_WITH("\"event_id\":\"\""), -1,
     REJ_OUT_OF_RANGE, "event_id"},
    {"duplicate escaped key", DM_WITH("\"t\\u0065nant\":\"x y\""), -1,
     REJ_BAD_CHARSET, "tenant"},
    /* nested unknown values */
    {"nested unknown value",
     DM_WITH("\"meta\":{\"a\":[1,2,{\"b\":null}],\"c\":[[],{}],\"d\":-1.5e3}"),
     0, 0, NULL},
    {"nested bad literal", DM_WITH("\"meta\":{\"a\":[1,2,{\"b\":nul}]}"), -1,
     REJ_NOT_JSON, ""},
    {"nested trailing comma", DM_WITH("\"meta\":[1,]"), -1, REJ_NOT_JSON, ""},
    {"nested missing colon", DM_WITH("\"meta\":{\"a\" 1}"), -1, REJ_NOT_JSON,
     ""},
    {"nested bad key", DM_WITH("\"meta\":{1:2}"), -1, REJ_NOT_JSON, ""},
    {"nested unclosed", DM_WITH("\"meta\":[{\"a\":[]}"), -1, REJ_NOT_JSON, ""},
    {"nested mismatched", DM_WITH("\"meta\":[}"), -1, REJ_NOT_JSON, ""},
    /* numbers */
    {"-0 is the integer 0", NPS_WITH("-0"), 0, 0, NULL},
    {"7.0 is a real", NPS_WITH("7.0"), -1, REJ_WRONG_TYPE, "score"},
    {"1e0 is a real", NPS_WITH("1e0"), -1, REJ_WRONG_TYPE, "score"},
    {"1E+0 is a real", NPS_WITH("1E+0"), -1, REJ_WRONG_TYPE, "score"},
    {"leading zero", NPS_WITH("07"), -1, REJ_NOT_JSON, ""},
    {"bare minus", NPS_WITH("-"), -1, REJ_NOT_JSON, ""},
    {"dot without digits", NPS_WITH("1."), -1, REJ_NOT_JSON, ""},
    {"exponent without digits", NPS_WITH("1e+"), -1, REJ_NOT_JSON, ""},
    {"plus sign", NPS_WITH("+1"), -1, REJ_NOT_JSON, ""},
    {"int64 max", DM_WITH("\"x\":9223372036854775807"), 0, 0, NULL},
    {"int64 max + 1", DM_WITH("\"x\":9223372036854775808"), -1, REJ_NOT_JSON,
     ""},
    {"int64 min", DM_WITH("\"x\":-9223372036854775808"), 0, 0, NULL},
    {"int64 min - 1", DM_WITH("\"x\":-9223372036854775809"), -1, REJ_NOT_JSON,
     ""},
    {"20-digit integer", DM_WITH("\"x\":18446744073709551616"), -1,
     REJ_NOT_JSON, ""},
    {"score int64 min", NPS_WITH("-9223372036854775808"), -1, REJ_OUT_OF_RANGE,
     "score"},
    {"wait_ms int64 max",
     "{\"event_id\":\"e1\",\"type\":\"call.answered\",\"occurred_at\":0,"
     "\"tenant\":\"acme\",\"channel\":\"phone\",\"call_id\":\"c1\","
     "\"wait_ms\":9223372036854775807}",
     0, 0, NULL},
    {"real just below overflow", DM_WITH("\"x\":1.7976931348623157e308"), 0, 0,
     NULL},
    {"real just above the midpoint", DM_WITH("\"x\":1.7976931348623159e308"),
     -1, REJ_NOT_JSON, ""},
    {"real overflow", DM_WITH("\"x\":1e309"), -1, REJ_NOT_JSON, ""},
    {"real overflow, huge exponent",
     DM_WITH("\"x\":0.0001e99999999999999999999999"), -1, REJ_NOT_JSON, ""},
    {"real zero, huge exponent", DM_WITH("\"x\":0.000e99999999999999999999"), 0,
     0, NULL},
    {"real underflow is fine", DM_WITH("\"x\":1e-99999999999999999999"), 0, 0,
     NULL},
    {"real, many leading zeros",
     DM_WITH("\"x\":0.00000000000000000000000000000000000000001e348"), 0, 0,
     NULL},
    {"real, many leading zeros, overflow",
     DM_WITH("\"x\":0.00000000000000000000000000000000000000001e350"), -1,
     REJ_NOT_JSON, ""},
    /* depth: jansson allows 2048 levels of values */
    /* (the deep cases are built in deep_nesting_matches_jansson) */
    /* strings: \u0000, surrogates, UTF-8 */
    {"\\u0000 in a value", DM_WITH("\"x\":\"a\\u0000b\""), -1, REJ_NOT_JSON,
     ""},
    {"\\u0000 in a key", DM_WITH("\"\\u0000\":1"), -1, REJ_NOT_JSON, ""},
    {"surrogate pair", DM_WITH("\"x\":\"\\uD83D\\uDE00\""), 0, 0, NULL},
    {"lone high surrogate", DM_WITH("\"x\":\"\\ud800\""), -1, REJ_NOT_JSON, ""},
    {"lone low surrogate", DM_WITH("\"x\":\"\\udc00\""), -1, REJ_NOT_JSON, ""},
    {"high then high", DM_WITH("\"x\":\"\\ud800\\ud800\""), -1, REJ_NOT_JSON,
     ""},
    {"high then letter", DM_WITH("\"x\":\"\\ud800x\""), -1, REJ_NOT_JSON, ""},
    {"high then escaped backslash", DM_WITH("\"x\":\"\\ud800\\\\u0041\""), -1,
     REJ_NOT_JSON, ""},
    {"bad hex", DM_WITH("\"x\":\"\\u12g4\""), -1, REJ_NOT_JSON, ""},
    {"unknown escape", DM_WITH("\"x\":\"\\a\""), -1, REJ_NOT_JSON, ""},
    {"4-byte UTF-8", DM_WITH("\"x\":\"\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\""), 0,
     0, NULL},
    {"overlong 2-byte", DM_WITH("\"x\":\"\xc0\xaf\""), -1, REJ_NOT_JSON, ""},
    {"overlong 3-byte", DM_WITH("\"x\":\"\xe0\x80\xaf\""), -1, REJ_NOT_JSON,
     ""},
    {"overlong 4-byte", DM_WITH("\"x\":\"\xf0\x80\x80\xaf\""), -1, REJ_NOT_JSON,
     ""},
    {"UTF-8 surrogate", DM_WITH("\"x\":\"\xed\xa0\x80\""), -1, REJ_NOT_JSON,
     ""},
    {"above U+10FFFF", DM_WITH("\"x\":\"\xf4\x90\x80\x80\""), -1, REJ_NOT_JSON,
     ""},
    {"byte F5", DM_WITH("\"x\":\"\xf5\x80\x80\x80\""), -1, REJ_NOT_JSON, ""},
    {"stray continuation", DM_WITH("\"x\":\"\x80\""), -1, REJ_NOT_JSON, ""},
    {"truncated sequence", DM_WITH("\"x\":\"\xe2\x82\""), -1, REJ_NOT_JSON, ""},
    {"UTF-8 outside a string", DM_WITH("\"x\":\xc3\xa9"), -1, REJ_NOT_JSON, ""},
    {"byte order mark", "\xef\xbb\xbf" DM_WITH("\"x\":1"), -1, REJ_NOT_JSON,
     ""},
    {"raw control char", DM_WITH("\"x\":\"a\x01\""), -1, REJ_NOT_JSON, ""},
    {"raw newline", DM_WITH("\"x\":\"a\nb\""), -1, REJ_NOT_JSON, ""},
    {"DEL is allowed", DM_WITH("\"x\":\"a\x7f\""), 0, 0, NULL},
    {"tenant non-ASCII",
     "{\"event_id\":\"e1\",\"type\":\"dm.received\","
     "\"occurred_at\":0,\"tenant\":\"\xc3\xa9\"}",
     -1, REJ_BAD_CHARSET, "tenant"},
    {"channel escaped newline",
     "{\"event_id\":\"e1\",\"type\":\"dm.received\","
     "\"occurred_at\":0,\"tenant\":\"a\","
     "\"channel\":\"chat\\n\"}",
     -1, REJ_BAD_CHARSET, "channel"},
    /* whitespace and document shape */
    {"all four whitespace bytes",
     " \t\r\n" DM_HEAD " \t\r\n, \"x\" \n:\r[ 1 ,\t2 ] }\n", 0, 0, NULL},
    {"form feed", DM_WITH("\"x\":\f1"), -1, REJ_NOT_JSON, ""},
    {"trailing garbage", DM_WITH("\"x\":1") "x", -1, REJ_NOT_JSON, ""},
    {"two objects", "{}{}", -1, REJ_NOT_JSON, ""},
    {"empty object", "{}", -1, REJ_MISSING_FIELD, "event_id"},
    {"empty", "", -1, REJ_NOT_JSON, ""},
    {"whitespace only", " \n", -1, REJ_NOT_JSON, ""},
    {"truncated", "{\"event_id\":", -1, REJ_NOT_JSON, ""},
    {"top-level string", "\"x\"", -1, REJ_NOT_OBJECT, ""},
    {"top-level false", " false ", -1, REJ_NOT_OBJECT, ""},
    {"top-level bad array", "[1,2", -1, REJ_NOT_JSON, ""},
    {"literal with tail", DM_WITH("\"x\":truex"), -1, REJ_NOT_JSON, ""},
    {"capital literal", DM_WITH("\"x\":True"), -1, REJ_NOT_JSON, ""},
    /* contract order: the first error wins, partial fields as event.c */
    {"bad tenant before missing channel",
     "{\"event_id\":\"e1\",\"type\":\"dm.received\",\"occurred_at\":0,"
     "\"tenant\":\"a b\"}",
     -1, REJ_BAD_CHARSET, "tenant"},
    {"queue reserved after copy", DM_WITH("\"queue\":\"_other\""), -1,
     REJ_BAD_CHARSET, "queue"},
    {"agent_id checked after customer_id",
     DM_WITH("\"customer_id\":\"c\",\"agent_id\":7"), -1, REJ_WRONG_TYPE,
     "agent_id"},
    /* keys one byte away from kept ones are other keys: were one taken for
     * the kept key, its number would make the event wrong_type */
    {"near keys: last byte", DM_WITH("\"queuX\":7,\"channeL\":7"), 0, 0,
     NULL},
    {"near keys: first byte", DM_WITH("\"Xueue\":7,\"xhannel\":7"), 0, 0,
     NULL},
    {"near keys: middle byte",
     DM_WITH("\"tenXnt\":7,\"tyXe\":7,\"conversatioX_id\":7"), 0, 0, NULL},
    {"near keys: eight bytes and more",
     DM_WITH("\"event_iD\":7,\"conversation_iD\":7,\"Xonversation_id\":7"),
     0, 0, NULL},
    {"opened_at on ticket.closed",
     "{\"event_id\":\"e1\",\"type\":\"ticket.closed\",\"occurred_at\":5,"
     "\"tenant\":\"a\",\"channel\":\"email\",\"ticket_id\":\"t\","
     "\"opened_at\":\"2024-02-29T12:00:00.5\\u002B01:00\"}",
     0, 0, NULL},
};

static void corners_agree(void **state)
{
    (void)state;
    int bad = 0;

    for (size_t i = 0; i < sizeof(corners) / sizeof(corners[0]); i++) {
        const struct corner *c = &corners[i];
        struct outcome got;

        if (agree(c->name, c->json, strlen(c->json), &got) != 0) {
            bad++;
            continue;
        }
        if (got.rc != c->rc ||
            (c->rc != 0 && (got.err.reason != c->reason ||
                            strcmp(got.err.field, c->field) != 0))) {
            print_error("%s: both say rc %d %s \"%s\" (%s), expected rc %d "
                        "%s \"%s\"\n",
                        c->name, got.rc, event_reject_name(got.err.reason),
                        got.err.field, got.err.text, c->rc,
                        event_reject_name(c->reason), c->field ? c->field : "");
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void escapes_are_decoded(void **state)
{
    (void)state;
    const struct corner *c = &corners[1];
    struct outcome got;

    assert_int_equal(agree(c->name, c->json, strlen(c->json), &got), 0);
    assert_int_equal(got.rc, 0);
    assert_string_equal(got.ev.event_id, "\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac"
                                         "\xf0\x9f\x98\x80");
    assert_int_equal(got.ev.type, EV_DM_RECEIVED);
    assert_int_equal(got.ev.occurred_ms, INT64_C(1709208000000));
    assert_string_equal(got.ev.tenant, "acme");
    assert_string_equal(got.ev.channel, "chat");
    assert_string_equal(got.ev.queue, "billing");
    assert_string_equal(got.ev.corr_id, "k1");
}

/* Lengths are bytes after unescaping: 64 x \u00e9 is 128 bytes. */
static void escaped_lengths_are_unescaped_bytes(void **state)
{
    (void)state;
    static const char head[] = "{\"event_id\":\"";
    static const char tail[] = "\",\"type\":\"dm.received\",\"occurred_at\":0,"
                               "\"tenant\":\"a\",\"channel\":\"c\","
                               "\"conversation_id\":\"k\"}";
    char buf[1024];

    for (int extra = 0; extra <= 1; extra++) {
        struct outcome got;
        size_t len = sizeof(head) - 1;

        memcpy(buf, head, len);
        for (int i = 0; i < 64; i++) {
            memcpy(buf + len, "\\u00e9", 6);
            len += 6;
        }
        if (extra) {
            buf[len++] = 'x';
        }
        memcpy(buf + len, tail, sizeof(tail) - 1);
        len += sizeof(tail) - 1;
        assert_int_equal(agree("escaped length", buf, len, &got), 0);
        if (extra) {
            assert_int_equal(got.rc, -1);
            assert_int_equal(got.err.reason, REJ_OUT_OF_RANGE);
            assert_string_equal(got.err.field, "event_id");
        } else {
            assert_int_equal(got.rc, 0);
            assert_int_equal(strlen(got.ev.event_id), 128);
        }
    }
}

/* Builds {"x": <depth-1 arrays around 0>} style documents. */
static char *nested(size_t arrays, const char *head, const char *tail,
                    size_t *len)
{
    size_t hl = strlen(head), tl = strlen(tail);
    char *buf = malloc(hl + 2 * arrays + 1 + tl);

    assert_non_null(buf);
    memcpy(buf, head, hl);
    memset(buf + hl, '[', arrays);
    buf[hl + arrays] = '0';
    memset(buf + hl + arrays + 1, ']', arrays);
    memcpy(buf + hl + 2 * arrays + 1, tail, tl);
    *len = hl + 2 * arrays + 1 + tl;
    return buf;
}

static void deep_nesting_matches_jansson(void **state)
{
    (void)state;
    /* arrays around a scalar, and the class both must give */
    static const struct {
        size_t arrays;
        const char *head, *tail;
        enum event_reject reason;
    } deep[] = {
        {2047, "", "", REJ_NOT_OBJECT},            /* scalar at depth 2048 */
        {2048, "", "", REJ_NOT_JSON},              /* scalar at depth 2049 */
        {2046, DM_HEAD ",\"x\":", "}", REJ_COUNT}, /* accepted */
        {2047, DM_HEAD ",\"x\":", "}", REJ_NOT_JSON},
        {30000, "", "", REJ_NOT_JSON},
    };

    for (size_t i = 0; i < sizeof(deep) / sizeof(deep[0]); i++) {
        struct outcome got;
        size_t len;
        char *buf = nested(deep[i].arrays, deep[i].head, deep[i].tail, &len);

        assert_int_equal(agree("deep", buf, len, &got), 0);
        if (deep[i].reason == REJ_COUNT) {
            assert_int_equal(got.rc, 0);
        } else {
            assert_int_equal(got.rc, -1);
            assert_int_equal(got.err.reason, deep[i].reason);
        }
        free(buf);
    }
}

/* The overflow rule for reals is checked against strtod itself. */
static void real_overflow_matches_strtod(void **state)
{
    (void)state;
    static const char *const reals[] = {
        "1.7976931348623157e308",
        "1.7976931348623158e308",
        "1.79769313486231580793e308",
        "1.7976931348623158079e308",
        "179769313486231580793728971405303415079934132710037826936173778980"
        "444968292764750946649017977587207096330286416692887910946555547851"
        "940402630657488671505820681908902000708383676273854845817711531764"
        "475730270069855571366959622842914819860834936475292719074168444365"
        "510704342711559699508093042880177904174497791.9999",
        "179769313486231580793728971405303415079934132710037826936173778980"
        "444968292764750946649017977587207096330286416692887910946555547851"
        "940402630657488671505820681908902000708383676273854845817711531764"
        "475730270069855571366959622842914819860834936475292719074168444365"
        "510704342711559699508093042880177904174497792.0",
        "0.017976931348623158e310",
        "17976931348623158e292",
        "1e308",
        "1e309",
        "10e308",
        "0.1e310",
        "0.1e309",
        "-1e309",
        "9.9e307",
        "1e-400",
        "0e400",
        "0.0",
        "123.456e-7",
    };
    char msg[1024];

    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
        struct outcome got;
        int n = snprintf(msg, sizeof(msg), DM_WITH("\"x\":%s"), reals[i]);
        assert_true(n > 0 && (size_t)n < sizeof(msg));
        errno = 0;
        double v = strtod(reals[i], NULL);
        int overflows = errno == ERANGE && isinf(v);
        assert_int_equal(agree(reals[i], msg, (size_t)n, &got), 0);
        if (got.rc != (overflows ? -1 : 0)) {
            fail_msg("%s: strtod overflow %d, scan_event rc %d", reals[i],
                     overflows, got.rc);
        }
    }
}

static void too_large_and_null_buffer(void **state)
{
    (void)state;
    static const char msg[] = DM_WITH("\"x\":1");
    struct event ev;
    struct event_error err;

    assert_int_equal(
        scan_event(msg, sizeof(msg) - 1, sizeof(msg) - 1, &ev, &err), 0);
    assert_int_equal(
        scan_event(msg, sizeof(msg) - 1, sizeof(msg) - 2, &ev, &err), -1);
    assert_int_equal(err.reason, REJ_TOO_LARGE);
    assert_string_equal(err.field, "");
    assert_int_equal(scan_event(NULL, 0, MAX_BYTES, &ev, &err), -1);
    assert_int_equal(err.reason, REJ_NOT_JSON);
}

/* jansson 2.14 skips one NUL byte right after a number or literal, so
 * event_parse accepts these; the contract says they are not JSON, and so
 * does scan_event (reported; see scan.h). */
static void nul_bytes_are_not_json(void **state)
{
    (void)state;
#define LIT(s)                                                                 \
    {                                                                          \
        s, sizeof(s) - 1                                                       \
    }
    static const struct {
        const char *json;
        size_t len;
    } msgs[] = {
        LIT(DM_WITH("\"x\":1\0")),    LIT(DM_WITH("\"x\":true\0")),
        LIT(DM_WITH("\"x\":1.5\0")),  LIT(DM_WITH("\"x\":\"\0\"")),
        LIT(DM_HEAD "\0}"),           LIT("\0{}"),
        LIT(DM_WITH("\"x\":1") "\0"),
    };
#undef LIT

    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        struct event ev;
        struct event_error err;

        assert_int_equal(
            scan_event(msgs[i].json, msgs[i].len, MAX_BYTES, &ev, &err), -1);
        assert_int_equal(err.reason, REJ_NOT_JSON);
    }
}

/* The scan thread gives what scan_event gives, item by item, over many
 * hand-overs, including the items it must leave alone (buf NULL). */
static void scan_thread_matches_scan_event(void **state)
{
    enum { N = 600, FROM = 150 };
    static const char *const msgs[] = {
        DM_WITH("\"queue\":\"q1\""), NPS_WITH("9"), NPS_WITH("11"), "{}",
        "not json", DM_WITH("\"wait_ms\":-1"),
    };
    struct scan_item *items = calloc(N, sizeof(*items));
    char err[256];
    struct scanpool *sp = scanpool_new(MAX_BYTES, err, sizeof(err));

    (void)state;
    assert_non_null(items);
    assert_non_null(sp);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < N; i++) {
            const char *m = msgs[(i + round) % 6];
            items[i].buf = (i + round) % 7 == 0 ? NULL : m;
            items[i].len = strlen(m);
            items[i].rc = 42; /* must stay for buf NULL */
        }
        scanpool_start(sp, items, FROM, N);
        scanpool_scan(MAX_BYTES, items, 0, FROM);
        scanpool_wait(sp);
        for (int i = 0; i < N; i++) {
            struct outcome want;
            if (items[i].buf == NULL) {
                assert_int_equal(items[i].rc, 42);
                continue;
            }
            want.rc = scan_event(items[i].buf, items[i].len, MAX_BYTES,
                                 &want.ev, &want.err);
            assert_int_equal(items[i].rc, want.rc);
            if (want.rc == 0) {
                struct event_hashes h;
                assert_true(same_event(&items[i].ev, &want.ev));
                pipeline_hash_event(&want.ev, &h);
                assert_true(items[i].h.tenant == h.tenant &&
                            items[i].h.id == h.id &&
                            items[i].h.corr == h.corr &&
                            items[i].h.pair == h.pair);
            } else {
                assert_int_equal(items[i].err.reason, want.err.reason);
                assert_string_equal(items[i].err.field, want.err.field);
            }
        }
    }
    scanpool_destroy(sp);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_stored_case_agrees),
        cmocka_unit_test(every_schema_example_agrees),
        cmocka_unit_test(corners_agree),
        cmocka_unit_test(escapes_are_decoded),
        cmocka_unit_test(escaped_lengths_are_unescaped_bytes),
        cmocka_unit_test(deep_nesting_matches_jansson),
        cmocka_unit_test(real_overflow_matches_strtod),
        cmocka_unit_test(too_large_and_null_buffer),
        cmocka_unit_test(nul_bytes_are_not_json),
        cmocka_unit_test(scan_thread_matches_scan_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
