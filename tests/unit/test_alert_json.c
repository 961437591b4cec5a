/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for alert_json: messages, Alertmanager alerts, the schema. */
/*
 * The expected JSON is written out by hand from schemas/alert.schema.json
 * and alert.h; the schema's own examples are rendered by driving the
 * evaluator and must come out equal to them as JSON values. Rules are
 * loaded from YAML text through rules_parse_yaml.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"

#include "alert_fixture.h"
}

static const char spike_yaml[] = "alerts:\n"
                                 "  - name: spike\n"
                                 "    metric: wait_p90_ms\n"
                                 "    window: 5m\n"
                                 "    above: 100\n"
                                 "    for: 1m\n"
                                 "    severity: page\n"
                                 "    labels: {team: voice}\n"
                                 "    annotations:\n"
                                 "      runbook: \"https://wiki/{{rule}}\"\n";

static void test_numbers_are_formatted_for_people(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {120000, "120000"},
        {-3, "-3"},
        {0, "0"},
        {-0.0, "0"},
        {125432.6, "125433"},
        {1000.4, "1000"},
        {0.3333333, "0.3333"},
        {2.5, "2.5"},
        {12.3456, "12.35"},
        {999.94, "999.9"},
        {0.1, "0.1"},
        {1e20, "1e+20"},
        {0.00001234, "1.234e-05"},
        {NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        alert_format_number(cases[i].v, buf, sizeof(buf));
        if (strcmp(buf, cases[i].text) != 0) {
            fail_msg("%g: \"%s\", want \"%s\"", cases[i].v, buf, cases[i].text);
        }
    }
}

static void test_templates_render_every_placeholder(void **state)
{
    struct rules *rs = rules_from(
        "alerts:\n"
        "  - {name: r, metric: detractor_rate, window: 1h, baseline: 24h,\n"
        "     above_baseline: 2}\n"
        "  - {name: live, metric: oldest_wait_ms, above: 300000}\n");
    struct alert a;
    char *s;

    (void)state;
    memset(&a, 0, sizeof(a));
    a.rule = &rs->v[0];
    a.fingerprint = "0123456789abcdef";
    a.tenant = "acme";
    a.channel = "instagram";
    a.queue = "_all";
    a.status = ALERT_FIRING;
    a.has_value = true;
    a.value = 0.2857142857;
    a.has_threshold = true;
    a.threshold = 0.2;
    a.has_baseline = true;
    a.baseline = 0.1;
    s = alert_render("{{rule}} {{metric}} {{window}} {{tenant}}/{{channel}}/"
                     "{{queue}}: {{ value }} > {{threshold}} (2x {{baseline}})",
                     &a);
    assert_string_equal(s, "r detractor_rate 1h acme/instagram/_all: 0.2857 > "
                           "0.2 (2x 0.1)");
    free(s);
    a.has_value = a.has_baseline = a.has_threshold = false;
    s = alert_render("{{value}} {{threshold}} {{baseline}}", &a);
    assert_string_equal(s, "n/a n/a n/a");
    free(s);
    a.rule = &rs->v[1];
    a.has_value = true;
    a.value = 301234;
    s = alert_render("[{{window}}] oldest wait {{value}} ms", &a);
    assert_string_equal(s, "[] oldest wait 301234 ms");
    free(s);
    assert_null(alert_render("{{nope}}", &a));
    rules_destroy(rs);
}

/* ---- Alertmanager ---- */

static void
test_alertmanager_alert_has_labels_annotations_and_times(void **state)
{
    struct rules *rs = rules_from(spike_yaml);
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, NULL, NULL);
    struct alert a;
    json_t *am, *want;

    (void)state;
    (void)rec;
    memset(&a, 0, sizeof(a));
    a.rule = &rs->v[0];
    a.fingerprint = "0123456789abcdef";
    a.tenant = "acme";
    a.channel = "phone";
    a.queue = "billing";
    a.status = ALERT_FIRING;
    a.previous = ALERT_PENDING;
    a.has_value = true;
    a.value = 150;
    a.starts_at_ms = 1795428300000; /* 2026-11-23T10:05:00Z */
    a.ends_at_ms = ALERT_NO_TIME;
    am = alert_to_alertmanager(&a, 1795428360000, 4 * MIN,
                               "http://tp:9464/alerts");
    want = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:{s:s, s:s}, s:s, s:s, s:s}",
        "labels", "team", "voice", "alertname", "spike", "severity", "page",
        "tenant", "acme", "channel", "phone", "queue", "billing", "annotations",
        "summary", "spike: wait_p90_ms 150 on acme/phone/billing", "runbook",
        "https://wiki/spike", "startsAt", "2026-11-23T10:05:00.000Z", "endsAt",
        "2026-11-23T10:10:00.000Z", "generatorURL", "http://tp:9464/alerts");
    assert_true(json_equal(am, want));
    json_decref(am);
    json_decref(want);

    a.status = ALERT_RESOLVED;
    a.ends_at_ms = 1795428420000;
    am = alert_to_alertmanager(&a, 1795428999000, 4 * MIN, NULL);
    assert_string_equal(json_string_value(json_object_get(am, "endsAt")),
                        "2026-11-23T10:07:00.000Z");
    assert_null(json_object_get(am, "generatorURL"));
    json_decref(am);

    a.status = ALERT_PENDING;
    assert_null(alert_to_alertmanager(&a, 0, 4 * MIN, NULL));
    assert_null(alert_to_json(&a));
    a.status = ALERT_RESOLVED;
    assert_null(alert_state_to_json(&a));
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

/* ---- schemas/alert.schema.json ---- */

/*
 * A checker for the JSON Schema keywords alert.schema.json uses: type, enum,
 * const, pattern (POSIX ERE), minLength, required, properties,
 * additionalProperties, propertyNames, $ref (#/$defs/...), anyOf, oneOf,
 * if/then/else. Unknown keywords fail, so the schema cannot outgrow it
 * silently.
 */
static const json_t *schema_root;

static bool is_type(const json_t *v, const char *type)
{
    if (strcmp(type, "number") == 0) {
        return json_is_number(v);
    }
    if (strcmp(type, "string") == 0) {
        return json_is_string(v);
    }
    if (strcmp(type, "object") == 0) {
        return json_is_object(v);
    }
    if (strcmp(type, "null") == 0) {
        return json_is_null(v);
    }
    fail_msg("schema type %s not supported by the test", type);
    return false;
}

static bool check(const json_t *v, const json_t *schema, char *why);

static bool check_type(const json_t *v, const json_t *type)
{
    size_t i;
    const json_t *t;

    if (json_is_string(type)) {
        return is_type(v, json_string_value(type));
    }
    json_array_foreach(type, i, t)
    {
        if (is_type(v, json_string_value(t))) {
            return true;
        }
    }
    return false;
}

static bool matches(const char *s, const char *pattern)
{
    regex_t re;
    bool ok;

    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static bool check_object(const json_t *v, const json_t *schema, char *why)
{
    const json_t *props = json_object_get(schema, "properties");
    const json_t *extra = json_object_get(schema, "additionalProperties");
    const json_t *names = json_object_get(schema, "propertyNames");
    const char *key;
    const json_t *item;

    if (!json_is_object(v)) {
        return true;
    }
    json_object_foreach((json_t *)v, key, item)
    {
        const json_t *sub = props ? json_object_get(props, key) : NULL;
        json_t *name = json_string(key);
        bool ok = names == NULL || check(name, names, why);
        json_decref(name);
        if (!ok || (sub != NULL && !check(item, sub, why))) {
            return false;
        }
        if (sub == NULL && json_is_false(extra)) {
            snprintf(why, 256, "property %s not allowed", key);
            return false;
        }
        if (sub == NULL && json_is_object(extra) && !check(item, extra, why)) {
            return false;
        }
    }
    return true;
}

static bool check_required(const json_t *v, const json_t *required, char *why)
{
    size_t i;
    const json_t *k;

    json_array_foreach(required, i, k)
    {
        if (json_is_object(v) &&
            json_object_get(v, json_string_value(k)) == NULL) {
            snprintf(why, 256, "%s required", json_string_value(k));
            return false;
        }
    }
    return true;
}

static bool check_value(const json_t *v, const json_t *schema, char *why)
{
    const json_t *t = json_object_get(schema, "type");
    const json_t *e = json_object_get(schema, "enum");
    const json_t *c = json_object_get(schema, "const");
    const json_t *p = json_object_get(schema, "pattern");
    const json_t *m = json_object_get(schema, "minLength");
    size_t i;
    const json_t *x;
    bool in_enum = e == NULL;

    json_array_foreach(e, i, x)
    {
        in_enum |= json_equal(x, v);
    }
    if ((t && !check_type(v, t)) || !in_enum || (c && !json_equal(c, v)) ||
        (p && json_is_string(v) &&
         !matches(json_string_value(v), json_string_value(p))) ||
        (m && json_is_string(v) &&
         json_string_length(v) < (size_t)json_integer_value(m))) {
        char *text = json_dumps(v, JSON_ENCODE_ANY);
        snprintf(why, 256, "%s fails type/enum/const/pattern/minLength", text);
        free(text);
        return false;
    }
    return true;
}

static size_t count_valid(const json_t *v, const json_t *list)
{
    size_t i, n = 0;
    const json_t *s;
    char scratch[256];

    json_array_foreach(list, i, s)
    {
        n += check(v, s, scratch);
    }
    return n;
}

static bool check(const json_t *v, const json_t *schema, char *why)
{
    static const char *const known[] = {"$schema",
                                        "$id",
                                        "title",
                                        "description",
                                        "examples",
                                        "$defs",
                                        "type",
                                        "enum",
                                        "const",
                                        "pattern",
                                        "minLength",
                                        "required",
                                        "properties",
                                        "additionalProperties",
                                        "propertyNames",
                                        "$ref",
                                        "anyOf",
                                        "oneOf",
                                        "if",
                                        "then",
                                        "else"};
    const json_t *ref = json_object_get(schema, "$ref"), *any, *one, *cond;
    const char *key;
    const json_t *item;

    json_object_foreach((json_t *)schema, key, item)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            ok |= strcmp(known[i], key) == 0;
        }
        if (!ok) {
            fail_msg("schema keyword %s not supported by the test", key);
        }
    }
    if (ref != NULL) {
        const char *name = json_string_value(ref) + strlen("#/$defs/");
        if (!check(v,
                   json_object_get(json_object_get(schema_root, "$defs"), name),
                   why)) {
            return false;
        }
    }
    if (!check_value(v, schema, why) ||
        !check_required(v, json_object_get(schema, "required"), why) ||
        !check_object(v, schema, why)) {
        return false;
    }
    if ((any = json_object_get(schema, "anyOf")) && count_valid(v, any) == 0) {
        snprintf(why, 256, "no anyOf branch holds");
        return false;
    }
    if ((one = json_object_get(schema, "oneOf")) && count_valid(v, one) != 1) {
        snprintf(why, 256, "not exactly one oneOf branch holds");
        return false;
    }
    if ((cond = json_object_get(schema, "if")) != NULL) {
        char scratch[256];
        const json_t *then =
            json_object_get(schema, check(v, cond, scratch) ? "then" : "else");
        return then == NULL || check(v, then, why);
    }
    return true;
}

static json_t *load_schema(void)
{
    const char *dir = getenv("TP_SCHEMAS");
    char path[512];
    json_error_t err;
    json_t *schema;

    snprintf(path, sizeof(path), "%s/alert.schema.json",
             dir && *dir ? dir : "schemas");
    schema = json_load_file(path, 0, &err);
    if (schema == NULL) {
        fail_msg("%s:%d: %s", path, err.line, err.text);
    }
    return schema;
}

/* The rules the schema's examples were written for. */
static const char example_rules[] =
    "alerts:\n"
    "  - name: phone-wait-spike\n"
    "    metric: wait_p90_ms\n"
    "    window: 5m\n"
    "    match: {channel: phone}\n"
    "    above: 120000\n"
    "    min_samples: 10\n"
    "    for: 1m\n"
    "    severity: page\n"
    "    summary: \"p90 wait {{value}} ms on {{channel}}/{{queue}}\"\n"
    "    labels: {team: voice}\n"
    "    annotations:\n"
    "      runbook: \"https://wiki.example.com/runbooks/{{rule}}\"\n"
    "  - name: detractor-surge\n"
    "    metric: detractor_rate\n"
    "    window: 1h\n"
    "    baseline: 24h\n"
    "    above_baseline: 2.0\n"
    "    min_samples: 20\n"
    "    by: [tenant, channel]\n"
    "    summary: \"detractor rate {{value}} on {{channel}} "
    "(baseline {{baseline}})\"\n";

/* One evaluation at at_ms observing both example groups. */
static void evaluate_both(struct alert_eval *ae, const struct rules *rs,
                          int64_t at_ms, const struct alert_obs *wait,
                          const struct alert_obs *surge)
{
    alert_eval_begin(ae, at_ms, NULL);
    assert_int_equal(alert_eval_observe(ae, &rs->v[0], wait), 0);
    assert_int_equal(alert_eval_observe(ae, &rs->v[1], surge), 0);
    alert_eval_end(ae);
}

/* Drives both example rules through the evaluator; returns the firing
 * message of the first and the resolved one of the second. */
static void render_examples(struct rules *rs, json_t **firing,
                            json_t **resolved)
{
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs wait = row(131072.25, 50), surge = row(0.25, 40);

    surge.channel = "instagram";
    surge.queue = "_all";
    surge.has_baseline = true;
    surge.baseline = 0.1;
    surge.baseline_samples = 900;
    wait.has_value = false;
    evaluate_both(ae, rs, 1795425120000, &wait, &surge); /* 09:12 surge */
    wait.has_value = true;
    evaluate_both(ae, rs, 1795428240000, &wait, &surge); /* 10:04 pending */
    evaluate_both(ae, rs, 1795428300000, &wait, &surge); /* 10:05 firing */
    surge.value = 0.125;
    evaluate_both(ae, rs, 1795434000000, &wait, &surge); /* 11:40 resolved */
    assert_int_equal(rec.n, 4);
    assert_int_equal(rec.v[2].status, ALERT_FIRING);
    assert_int_equal(rec.v[3].status, ALERT_RESOLVED);
    *firing = json_incref(rec.v[2].message);
    *resolved = json_incref(rec.v[3].message);
    recorder_clear(&rec);
    alert_eval_destroy(ae);
}

static void test_schema_examples_are_what_the_renderer_produces(void **state)
{
    json_t *schema = load_schema(), *examples, *firing, *resolved;
    struct rules *rs = rules_from(example_rules);
    char why[256] = "";

    (void)state;
    schema_root = schema;
    examples = json_object_get(schema, "examples");
    assert_int_equal(json_array_size(examples), 2);
    render_examples(rs, &firing, &resolved);
    if (!json_equal(firing, json_array_get(examples, 0))) {
        char *text = json_dumps(firing, JSON_SORT_KEYS);
        fail_msg("renderer: %s", text);
    }
    assert_true(json_equal(resolved, json_array_get(examples, 1)));
    for (size_t i = 0; i < 2; i++) {
        if (!check(json_array_get(examples, i), schema, why)) {
            fail_msg("example %zu fails the schema: %s", i, why);
        }
    }
    json_decref(firing);
    json_decref(resolved);
    json_decref(schema);
    rules_destroy(rs);
}

/* The schema is not vacuous: it rejects what the contract rules out. */
static void test_schema_rejects_broken_alerts(void **state)
{
    static const struct {
        const char *field;
        const char *json; /* NULL: delete */
    } spoil[] = {
        {"ends_at", "\"2026-11-23T10:06:00.000Z\""}, /* firing with an end */
        {"baseline", "0.1"}, /* threshold and baseline */
        {"threshold", NULL}, /* neither */
        {"status", "\"pending\""},
        {"fingerprint", "\"9EFAEDA89D6D491F\""},
        {"starts_at", "\"2026-11-23T10:05:00+01:00\""},
        {"channel", "\"Phone\""},
        {"metric", "\"wait_p95_ms\""},
        {"labels", "{\"team\": 1}"},
        {"value", "\"131072\""},
        {"summary", NULL},
        {"extra", "1"},
    };
    json_t *schema = load_schema();
    char why[256];

    (void)state;
    schema_root = schema;
    for (size_t i = 0; i < sizeof(spoil) / sizeof(spoil[0]); i++) {
        json_t *bad = json_deep_copy(
            json_array_get(json_object_get(schema, "examples"), 0));
        if (spoil[i].json == NULL) {
            json_object_del(bad, spoil[i].field);
        } else {
            json_object_set_new(
                bad, spoil[i].field,
                json_loads(spoil[i].json, JSON_DECODE_ANY, NULL));
        }
        if (check(bad, schema, why)) {
            fail_msg("schema accepts a broken %s", spoil[i].field);
        }
        json_decref(bad);
    }
    json_decref(schema);
}

/* Every saved state is a message plus active_at and clear_since. */
static void test_saved_state_is_the_message_plus_its_clocks(void **state)
{
    json_t *schema = load_schema(), *props;
    struct rules *rs = rules_from(spike_yaml);
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs hot = row(150, 1);
    const char *key;
    json_t *item;

    (void)state;
    props = json_object_get(schema, "properties");
    evaluate(ae, &rs->v[0], 0, &hot);
    evaluate(ae, &rs->v[0], 60 * SEC, &hot);
    json_object_foreach(rec.v[1].state, key, item)
    {
        if (json_object_get(props, key) == NULL &&
            strcmp(key, "active_at") != 0 && strcmp(key, "clear_since") != 0) {
            fail_msg("saved state has unknown key %s", key);
        }
    }
    json_object_foreach(rec.v[1].message, key, item)
    {
        assert_true(json_equal(item, json_object_get(rec.v[1].state, key)));
    }
    assert_string_equal(
        json_string_value(json_object_get(rec.v[1].state, "active_at")),
        "1970-01-01T00:00:00.000Z");
    assert_true(json_is_null(json_object_get(rec.v[1].state, "clear_since")));
    assert_true(json_is_null(json_object_get(rec.v[0].state, "starts_at")));
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(rs);
    json_decref(schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_are_formatted_for_people),
        cmocka_unit_test(test_templates_render_every_placeholder),
        cmocka_unit_test(
            test_alertmanager_alert_has_labels_annotations_and_times),
        cmocka_unit_test(test_schema_examples_are_what_the_renderer_produces),
        cmocka_unit_test(test_schema_rejects_broken_alerts),
        cmocka_unit_test(test_saved_state_is_the_message_plus_its_clocks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
