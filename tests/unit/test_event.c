/* SPDX-License-Identifier: Apache-2.0 */
/* test_event: the event contract, from tests/data/events and the schema examples. */
/*
 * Data layout (jansson test-suite style), under $TP_TESTDATA/events:
 *   valid/NAME.json      must be accepted;
 *   valid/NAME.fields    optional, "field=value" lines the parsed event must have
 *                        (values computed by hand, "none" for an absent optional);
 *   invalid/NAME.json    must be rejected ...
 *   invalid/NAME.expect  ... with the class on line 1 and the field on line 2.
 * Case files are read into buffers of exactly their length, without a NUL, so a
 * parser that reads past len trips ASan (make SANITIZER=address unit).
 * The schema is found in $TP_SCHEMAS, else in $TP_TESTDATA/../../schemas.
 * A directory that yields no case fails the test: finding nothing proves nothing.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

#define MAX_BYTES 65536
#define PATH_SIZE 4096

static const char *const type_names[EV_TYPE_COUNT] = {
    "dm.received",    "dm.replied",     "call.queued",   "call.answered",
    "call.abandoned", "call.ended",     "ticket.opened", "ticket.replied",
    "ticket.closed",  "ticket.reopened", "survey.nps",   "survey.csat",
    "survey.ces",
};

/* The tp-error-class values, as listed in schemas/events.md. */
static const char *const reject_names[REJ_COUNT] = {
    "too_large",    "not_json",     "not_object",    "missing_field",
    "wrong_type",   "out_of_range", "unknown_type",  "bad_charset",
    "bad_timestamp", "future",      "tenant_limit",
};

/* A sorted list of the base names in one directory with one extension. */
struct names {
    char **v;
    size_t n;
};

static void names_release(struct names *names)
{
    for (size_t i = 0; i < names->n; i++) {
        free(names->v[i]);
    }
    free(names->v);
    names->v = NULL;
    names->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls > lx && strcmp(s + ls - lx, suffix) == 0;
}

/* Fills *names with the files of dir ending in ext (ext stripped), sorted.
 * A missing directory is a test failure, not an empty list. */
static void names_list(struct names *names, const char *dir, const char *ext)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t cap = 0;

    names->v = NULL;
    names->n = 0;
    if (d == NULL) {
        fail_msg("cannot open %s: %s", dir, strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        if (!has_suffix(de->d_name, ext)) {
            continue;
        }
        if (names->n == cap) {
            cap = cap ? cap * 2 : 64;
            names->v = realloc(names->v, cap * sizeof(*names->v));
            assert_non_null(names->v);
        }
        names->v[names->n] = strndup(de->d_name, strlen(de->d_name) - strlen(ext));
        assert_non_null(names->v[names->n]);
        names->n++;
    }
    closedir(d);
    if (names->n > 0) {
        qsort(names->v, names->n, sizeof(*names->v), cmp_str);
    }
}

static void path_join(char *buf, const char *dir, const char *name, const char *ext)
{
    int n = snprintf(buf, PATH_SIZE, "%s/%s%s", dir, name, ext);
    assert_true(n > 0 && n < PATH_SIZE);
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return 0;
    }
    fclose(f);
    return 1;
}

/* Reads a whole file into a new buffer of exactly *len bytes (no NUL added;
 * an empty file gives a 1-byte buffer and *len = 0). The caller frees it. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL) {
        fail_msg("cannot open %s: %s", path, strerror(errno));
    }
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    assert_int_equal(ferror(f), 0);
    fclose(f);
    /* Shrink to the exact length so any read past len is out of bounds. */
    char *exact = malloc(n ? n : 1);
    assert_non_null(exact);
    memcpy(exact, buf, n);
    free(buf);
    *len = n;
    return exact;
}

/* Same as slurp, but NUL-terminated, for the small text files. */
static char *slurp_text(const char *path)
{
    size_t len;
    char *raw = slurp(path, &len);
    char *text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, raw, len);
    text[len] = '\0';
    free(raw);
    return text;
}

static const char *events_dir(char *buf, const char *sub)
{
    const char *root = getenv("TP_TESTDATA");
    if (root == NULL || *root == '\0') {
        fail_msg("TP_TESTDATA is not set (run with TP_TESTDATA=tests/data)");
    }
    int n = snprintf(buf, PATH_SIZE, "%s/events/%s", root, sub);
    assert_true(n > 0 && n < PATH_SIZE);
    return buf;
}

/* ---- .fields: expected parsed values ------------------------------------ */

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

/* Expected number: "none" stands for the sentinel of an absent value. */
static int expected_i64(const char *val, int64_t none, int64_t *out)
{
    if (strcmp(val, "none") == 0) {
        *out = none;
        return 0;
    }
    return parse_i64(val, out);
}

static const char *string_field(const struct event *ev, const char *key)
{
    if (strcmp(key, "event_id") == 0) {
        return ev->event_id;
    }
    if (strcmp(key, "tenant") == 0) {
        return ev->tenant;
    }
    if (strcmp(key, "channel") == 0) {
        return ev->channel;
    }
    if (strcmp(key, "queue") == 0) {
        return ev->queue;
    }
    if (strcmp(key, "corr_id") == 0) {
        return ev->corr_id;
    }
    if (strcmp(key, "customer_id") == 0) {
        return ev->customer_id;
    }
    if (strcmp(key, "type") == 0) {
        const char *name = event_type_name(ev->type);
        return name ? name : "(invalid type)";
    }
    return NULL;
}

/* Checks one "key=value" line; returns 0 if it holds, else prints and -1. */
static int check_field(const char *name, const struct event *ev, const char *key,
                       const char *val)
{
    const char *got = string_field(ev, key);
    int64_t want, have;

    if (got != NULL) {
        if (strcmp(got, val) == 0) {
            return 0;
        }
        print_error("valid/%s: %s is \"%s\", expected \"%s\"\n", name, key, got, val);
        return -1;
    }
    if (strcmp(key, "occurred_ms") == 0) {
        have = ev->occurred_ms;
        if (expected_i64(val, EVENT_NO_TIME, &want) != 0) {
            goto bad_value;
        }
    } else if (strcmp(key, "opened_ms") == 0) {
        have = ev->opened_ms;
        if (expected_i64(val, EVENT_NO_TIME, &want) != 0) {
            goto bad_value;
        }
    } else if (strcmp(key, "wait_ms") == 0) {
        have = ev->wait_ms;
        if (expected_i64(val, EVENT_NO_WAIT, &want) != 0) {
            goto bad_value;
        }
    } else if (strcmp(key, "score") == 0) {
        have = ev->score;
        if (expected_i64(val, -1, &want) != 0) {
            goto bad_value;
        }
    } else {
        print_error("valid/%s.fields: unknown key \"%s\"\n", name, key);
        return -1;
    }
    if (have == want) {
        return 0;
    }
    print_error("valid/%s: %s is %" PRId64 ", expected %" PRId64 "\n", name, key, have,
                want);
    return -1;
bad_value:
    print_error("valid/%s.fields: %s has a bad number \"%s\"\n", name, key, val);
    return -1;
}

/* Checks every line of a .fields file; returns the number of mismatches and
 * adds the number of lines checked to *checked. */
static int check_fields(const char *name, const char *path, const struct event *ev,
                        int *checked)
{
    char *text = slurp_text(path);
    char *save = NULL;
    int bad = 0;

    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        line[strcspn(line, "\r")] = '\0';
        if (*line == '\0') {
            continue;
        }
        char *eq = strchr(line, '=');
        if (eq == NULL) {
            print_error("valid/%s.fields: line without '=': %s\n", name, line);
            bad++;
            continue;
        }
        *eq = '\0';
        if (check_field(name, ev, line, eq + 1) != 0) {
            bad++;
        }
        (*checked)++;
    }
    free(text);
    return bad;
}

/* ---- .expect: expected rejection ---------------------------------------- */

struct expect {
    int reason; /* enum event_reject, or -1 if the file names no known class */
    char cls[32];
    char field[64];
};

static void read_expect(const char *path, struct expect *ex)
{
    char *text = slurp_text(path);
    char *line2 = strchr(text, '\n');

    if (line2 != NULL) {
        *line2++ = '\0';
        line2[strcspn(line2, "\r\n")] = '\0';
    }
    text[strcspn(text, "\r")] = '\0';
    /* Line 2 may be empty, absent or spelled "" when no field is named. */
    if (line2 == NULL || strcmp(line2, "\"\"") == 0) {
        line2 = text + strlen(text);
    }
    snprintf(ex->cls, sizeof(ex->cls), "%s", text);
    snprintf(ex->field, sizeof(ex->field), "%s", line2);
    ex->reason = -1;
    for (int i = 0; i < REJ_COUNT; i++) {
        if (strcmp(reject_names[i], ex->cls) == 0) {
            ex->reason = i;
        }
    }
    free(text);
}

/* The class name of a reason from our own table: safe for garbage values. */
static const char *reject_label(enum event_reject reason)
{
    return (unsigned)reason < REJ_COUNT ? reject_names[reason] : "(no class)";
}

static int fieldless_class(int reason)
{
    return reason == REJ_TOO_LARGE || reason == REJ_NOT_JSON || reason == REJ_NOT_OBJECT;
}

/* Checks that err is a filled-in, NUL-terminated rejection matching ex. */
static int check_rejection(const char *name, const struct expect *ex,
                           const struct event_error *err)
{
    if (memchr(err->field, '\0', sizeof(err->field)) == NULL ||
        memchr(err->text, '\0', sizeof(err->text)) == NULL) {
        print_error("invalid/%s: error field/text not NUL-terminated\n", name);
        return -1;
    }
    int bad = 0;
    if ((int)err->reason != ex->reason) {
        print_error("invalid/%s: class %s, expected %s (field \"%s\", text \"%s\")\n",
                    name, reject_label(err->reason), ex->cls, err->field, err->text);
        bad = -1;
    }
    if (strcmp(err->field, ex->field) != 0) {
        print_error("invalid/%s: field \"%s\", expected \"%s\" (text \"%s\")\n", name,
                    err->field, ex->field, err->text);
        bad = -1;
    }
    if (err->text[0] == '\0') {
        print_error("invalid/%s: empty error text\n", name);
        bad = -1;
    } else if (ex->field[0] != '\0' && strstr(err->text, ex->field) == NULL) {
        print_error("invalid/%s: error text \"%s\" does not name %s\n", name, err->text,
                    ex->field);
        bad = -1;
    }
    return bad;
}

/* ---- tests -------------------------------------------------------------- */

static void every_valid_case_is_accepted(void **state)
{
    (void)state;
    char dir[PATH_SIZE], path[PATH_SIZE];
    struct names cases, fields;
    int failures = 0, checked_files = 0, checked_lines = 0;

    events_dir(dir, "valid");
    names_list(&cases, dir, ".json");
    for (size_t i = 0; i < cases.n; i++) {
        struct event ev;
        struct event_error err = {.reason = REJ_COUNT};
        size_t len;

        path_join(path, dir, cases.v[i], ".json");
        char *buf = slurp(path, &len);
        int rc = event_parse(buf, len, MAX_BYTES, &ev, &err);
        free(buf);
        if (rc != 0) {
            print_error("valid/%s: rejected: %s field \"%.32s\": %.160s\n", cases.v[i],
                        reject_label(err.reason), err.field, err.text);
            failures++;
            continue;
        }
        path_join(path, dir, cases.v[i], ".fields");
        if (file_exists(path)) {
            failures += check_fields(cases.v[i], path, &ev, &checked_lines) ? 1 : 0;
            checked_files++;
        }
    }
    /* A .fields file without its .json would silently check nothing. */
    names_list(&fields, dir, ".fields");
    for (size_t i = 0; i < fields.n; i++) {
        path_join(path, dir, fields.v[i], ".json");
        if (!file_exists(path)) {
            print_error("valid/%s.fields has no %s.json\n", fields.v[i], fields.v[i]);
            failures++;
        }
    }
    print_message("valid: %zu cases, %d with .fields (%d values checked), %d failed\n",
                  cases.n, checked_files, checked_lines, failures);
    assert_true(cases.n > 0);
    assert_true(checked_files > 0);
    names_release(&cases);
    names_release(&fields);
    assert_int_equal(failures, 0);
}

static void every_invalid_case_is_rejected_as_expected(void **state)
{
    (void)state;
    char dir[PATH_SIZE], path[PATH_SIZE];
    struct names cases, expects;
    int failures = 0;
    int seen[REJ_COUNT] = {0};

    events_dir(dir, "invalid");
    names_list(&cases, dir, ".json");
    for (size_t i = 0; i < cases.n; i++) {
        struct expect ex;
        struct event ev;
        struct event_error err;
        size_t len;

        path_join(path, dir, cases.v[i], ".expect");
        if (!file_exists(path)) {
            print_error("invalid/%s.json has no .expect\n", cases.v[i]);
            failures++;
            continue;
        }
        read_expect(path, &ex);
        if (ex.reason < 0 || (ex.field[0] == '\0' && !fieldless_class(ex.reason))) {
            print_error("invalid/%s.expect: bad class \"%s\" or missing field\n",
                        cases.v[i], ex.cls);
            failures++;
            continue;
        }
        seen[ex.reason]++;
        memset(&err, 0, sizeof(err));
        err.reason = REJ_COUNT;
        path_join(path, dir, cases.v[i], ".json");
        char *buf = slurp(path, &len);
        int rc = event_parse(buf, len, MAX_BYTES, &ev, &err);
        free(buf);
        if (rc != -1) {
            print_error("invalid/%s: accepted (rc %d), expected %s on \"%s\"\n",
                        cases.v[i], rc, ex.cls, ex.field);
            failures++;
            continue;
        }
        failures += check_rejection(cases.v[i], &ex, &err) ? 1 : 0;
    }
    names_list(&expects, dir, ".expect");
    for (size_t i = 0; i < expects.n; i++) {
        path_join(path, dir, expects.v[i], ".json");
        if (!file_exists(path)) {
            print_error("invalid/%s.expect has no %s.json\n", expects.v[i], expects.v[i]);
            failures++;
        }
    }
    print_message("invalid: %zu cases, %d failed\n", cases.n, failures);
    assert_true(cases.n > 0);
    /* Every class event_parse can produce, except too_large (generated below),
     * has stored cases. */
    for (int r = REJ_NOT_JSON; r <= REJ_BAD_TIMESTAMP; r++) {
        if (seen[r] == 0) {
            print_error("invalid: no case of class %s\n", reject_names[r]);
            failures++;
        }
    }
    names_release(&cases);
    names_release(&expects);
    assert_int_equal(failures, 0);
}

static const char *schema_path(char *buf)
{
    const char *dir = getenv("TP_SCHEMAS");
    int n;
    if (dir != NULL && *dir != '\0') {
        n = snprintf(buf, PATH_SIZE, "%s/touchpoint.schema.json", dir);
    } else {
        const char *root = getenv("TP_TESTDATA");
        if (root == NULL || *root == '\0') {
            fail_msg("neither TP_SCHEMAS nor TP_TESTDATA is set");
        }
        n = snprintf(buf, PATH_SIZE, "%s/../../schemas/touchpoint.schema.json", root);
    }
    assert_true(n > 0 && n < PATH_SIZE);
    return buf;
}

static void every_schema_example_is_accepted(void **state)
{
    (void)state;
    char path[PATH_SIZE];
    json_error_t jerr;
    int failures = 0, types_seen[EV_TYPE_COUNT] = {0};

    json_t *schema = json_load_file(schema_path(path), 0, &jerr);
    if (schema == NULL) {
        fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
    }
    json_t *examples = json_object_get(schema, "examples"); /* borrowed */
    assert_true(json_is_array(examples));
    size_t n = json_array_size(examples);
    for (size_t i = 0; i < n; i++) {
        struct event ev;
        struct event_error err;
        char *text = json_dumps(json_array_get(examples, i), JSON_COMPACT);
        assert_non_null(text);
        if (event_parse(text, strlen(text), MAX_BYTES, &ev, &err) != 0) {
            print_error("schema example %zu rejected: %s \"%s\": %s\n  %s\n", i,
                        reject_label(err.reason), err.field, err.text, text);
            failures++;
        } else if ((unsigned)ev.type < EV_TYPE_COUNT) {
            types_seen[ev.type]++;
        }
        free(text);
    }
    json_decref(schema);
    print_message("schema examples: %zu, %d failed\n", n, failures);
    assert_true(n >= EV_TYPE_COUNT);
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        if (types_seen[t] == 0) {
            print_error("schema has no accepted example of %s\n", type_names[t]);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* Builds a valid dm.received of exactly size bytes by padding an unknown field. */
static char *sized_event(size_t size)
{
    static const char head[] =
        "{\"event_id\":\"e1\",\"type\":\"dm.received\",\"occurred_at\":0,"
        "\"tenant\":\"acme\",\"channel\":\"chat\",\"conversation_id\":\"k1\",\"pad\":\"";
    static const char tail[] = "\"}";
    size_t fixed = sizeof(head) - 1 + sizeof(tail) - 1;

    assert_true(size > fixed);
    char *buf = malloc(size);
    assert_non_null(buf);
    memcpy(buf, head, sizeof(head) - 1);
    memset(buf + sizeof(head) - 1, 'x', size - fixed);
    memcpy(buf + size - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
    return buf;
}

static void size_limit_is_exact(void **state)
{
    (void)state;
    static const size_t limits[] = {256, MAX_BYTES};

    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        size_t max = limits[i];
        struct event ev;
        struct event_error err;

        char *buf = sized_event(max);
        assert_int_equal(event_parse(buf, max, max, &ev, &err), 0);
        assert_int_equal(ev.type, EV_DM_RECEIVED);
        free(buf);

        buf = sized_event(max + 1);
        memset(&err, 0, sizeof(err));
        assert_int_equal(event_parse(buf, max + 1, max, &ev, &err), -1);
        assert_string_equal(reject_label(err.reason), "too_large");
        assert_string_equal(err.field, "");
        assert_true(err.text[0] != '\0');
        free(buf);

        /* Too large wins over anything the bytes hold: they are not parsed. */
        buf = malloc(max + 1);
        assert_non_null(buf);
        memset(buf, '[', max + 1);
        assert_int_equal(event_parse(buf, max + 1, max, &ev, &err), -1);
        assert_string_equal(reject_label(err.reason), "too_large");
        free(buf);
    }
}

static void only_len_bytes_are_read(void **state)
{
    (void)state;
    static const char msg[] =
        "{\"event_id\":\"e1\",\"type\":\"dm.received\",\"occurred_at\":0,"
        "\"tenant\":\"acme\",\"channel\":\"chat\",\"conversation_id\":\"k1\"}"
        "GARBAGE";
    struct event ev;
    struct event_error err;

    assert_int_equal(event_parse(msg, sizeof(msg) - 1 - 7, MAX_BYTES, &ev, &err), 0);
    assert_int_equal(event_parse(msg, sizeof(msg) - 1, MAX_BYTES, &ev, &err), -1);
    assert_string_equal(reject_label(err.reason), "not_json");
}

static void type_names_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        enum event_type t = EV_TYPE_COUNT;
        const char *name = event_type_name((enum event_type)i);
        assert_non_null(name);
        assert_string_equal(name, type_names[i]);
        assert_int_equal(event_type_from_name(type_names[i], &t), 0);
        assert_int_equal(t, i);
    }
    assert_null(event_type_name(EV_TYPE_COUNT));
    static const char *const unknown[] = {"", "dm", "dm.sent", "DM.RECEIVED",
                                          "dm.received ", "survey.nps2"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        enum event_type t;
        assert_int_equal(event_type_from_name(unknown[i], &t), -1);
    }
}

static void reject_names_match_the_contract(void **state)
{
    (void)state;
    for (int i = 0; i < REJ_COUNT; i++) {
        const char *name = event_reject_name((enum event_reject)i);
        assert_non_null(name);
        assert_string_equal(name, reject_names[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_valid_case_is_accepted),
        cmocka_unit_test(every_invalid_case_is_rejected_as_expected),
        cmocka_unit_test(every_schema_example_is_accepted),
        cmocka_unit_test(size_limit_is_exact),
        cmocka_unit_test(only_len_bytes_are_read),
        cmocka_unit_test(type_names_round_trip),
        cmocka_unit_test(reject_names_match_the_contract),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
