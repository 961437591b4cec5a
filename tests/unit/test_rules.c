/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for rules: the model, the YAML loader, every load error. */
/*
 * Expectations come from rules.h (the contract), the issue text and
 * schemas/redis.md, written out by hand. Rule files are written to a fresh
 * temporary directory that the group teardown removes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rules.h"

#define TMPDIR_PREFIX "test_rules"
#include "tmpdir_fixture.h"
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* Loads text as file name into rs; returns the loader's result. */
static int load_text(struct rules *rs, const char *name, const char *text,
                     char *path, size_t path_size, char *err, size_t err_size)
{
    write_file(name, text, path, path_size);
    err[0] = '\0';
    return rules_load_file(rs, path, err, err_size);
}

/* ---- the metric table (schemas/redis.md and the sample counts) ----
 */

static const struct {
    const char *name;
    bool live, rate;
    const char *count0, *count1; /* the sample count fields, NULL if none */
} metric_table[] = {
    {"events", false, false, NULL, NULL},
    {"wait_n", false, false, NULL, NULL},
    {"wait_mean_ms", false, false, "wait_n", NULL},
    {"wait_p50_ms", false, false, "wait_n", NULL},
    {"wait_p90_ms", false, false, "wait_n", NULL},
    {"wait_p99_ms", false, false, "wait_n", NULL},
    {"wait_max_ms", false, false, "wait_n", NULL},
    {"answered", false, false, NULL, NULL},
    {"abandoned", false, false, NULL, NULL},
    {"abandon_rate", false, true, "answered", "abandoned"},
    {"sl_n", false, false, NULL, NULL},
    {"sl_met", false, false, "sl_n", NULL},
    {"sl_pct", false, true, "sl_n", NULL},
    {"ttr_n", false, false, NULL, NULL},
    {"ttr_mean_ms", false, false, "ttr_n", NULL},
    {"ttr_p50_ms", false, false, "ttr_n", NULL},
    {"ttr_p90_ms", false, false, "ttr_n", NULL},
    {"ttr_max_ms", false, false, "ttr_n", NULL},
    {"nps_n", false, false, NULL, NULL},
    {"promoters", false, false, "nps_n", NULL},
    {"passives", false, false, "nps_n", NULL},
    {"detractors", false, false, "nps_n", NULL},
    {"nps", false, false, "nps_n", NULL},
    {"detractor_rate", false, true, "nps_n", NULL},
    {"csat_n", false, false, NULL, NULL},
    {"csat_pct", false, true, "csat_n", NULL},
    {"csat_mean", false, false, "csat_n", NULL},
    {"ces_n", false, false, NULL, NULL},
    {"ces_mean", false, false, "ces_n", NULL},
    {"open_tickets", true, false, NULL, NULL},
    {"waiting_dms", true, false, NULL, NULL},
    {"waiting_calls", true, false, NULL, NULL},
    {"oldest_wait_ms", true, false, NULL, NULL},
};

static void expect_field(const char *got, const char *want, const char *what,
                         const char *metric)
{
    if (want == NULL ? got != NULL : got == NULL || strcmp(got, want) != 0) {
        fail_msg("%s: %s is %s, want %s", metric, what, got ? got : "NULL",
                 want ? want : "NULL");
    }
}

static void
test_every_redis_field_is_a_metric_with_its_sample_count(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(metric_table) / sizeof(metric_table[0]);
         i++) {
        const struct rule_metric *m = rules_metric(metric_table[i].name);
        if (m == NULL) {
            fail_msg("%s is not a metric", metric_table[i].name);
        }
        assert_string_equal(m->name, metric_table[i].name);
        assert_int_equal(m->live, metric_table[i].live);
        assert_int_equal(m->rate, metric_table[i].rate);
        expect_field(m->count[0], metric_table[i].count0, "count[0]", m->name);
        expect_field(m->count[1], metric_table[i].count1, "count[1]", m->name);
    }
    assert_null(rules_metric("updated_at_ms"));
    assert_null(rules_metric("wait_p95_ms"));
    assert_null(rules_metric(""));
}

/* ---- loading ---- */

static const char full_yaml[] =
    "# every key at least once\n"
    "alerts:\n"
    "  - name: phone-wait-spike\n"
    "    metric: wait_p90_ms\n"
    "    window: 5m\n"
    "    match: {channel: phone, queue: [billing, \"vip-*\"]}\n"
    "    by: [tenant, channel, queue]\n"
    "    above: 120000\n"
    "    resolve: 90000\n"
    "    min_samples: 10\n"
    "    for: 1m\n"
    "    keep_firing_for: 2m\n"
    "    severity: page\n"
    "    summary: \"p90 wait {{value}} ms on {{channel}}/{{queue}}\"\n"
    "    labels: {team: voice, tier: \"1\"}\n"
    "    annotations:\n"
    "      runbook: \"https://wiki/{{ rule }}\"\n"
    "  - name: detractor-surge\n"
    "    metric: detractor_rate\n"
    "    window: 1h\n"
    "    baseline: 24h\n"
    "    above_baseline: 2.0\n"
    "    min_samples: 20\n"
    "  - name: crm-quiet\n"
    "    no_data_for: 30m\n"
    "    by: [tenant, channel]\n"
    "  - name: abandon-confident\n"
    "    metric: abandon_rate\n"
    "    window: 15m\n"
    "    below: 0.5\n"
    "    confidence: 0.95\n"
    "  - name: csat.drop:z\n"
    "    metric: csat_pct\n"
    "    window: 1h\n"
    "    baseline: 1d\n"
    "    below_zscore: 3\n"
    "    resolve: 1\n"
    "  - name: oldest_wait\n"
    "    metric: oldest_wait_ms\n"
    "    above: 300000\n"
    "    by: tenant\n"
    "    match: {tenant: \"acme*\"}\n";

static void expect_phone_wait_spike(const struct rule *r, const char *path)
{
    assert_string_equal(r->name, "phone-wait-spike");
    assert_int_equal(r->kind, RULE_ABOVE);
    assert_ptr_equal(r->metric, rules_metric("wait_p90_ms"));
    assert_string_equal(r->window, "5m");
    assert_int_equal(r->window_ms, 5 * MIN);
    assert_string_equal(r->baseline, "");
    assert_true(r->threshold == 120000);
    assert_true(r->has_resolve);
    assert_true(r->resolve == 90000);
    assert_int_equal(r->min_samples, 10);
    assert_true(r->confidence == 0);
    assert_int_equal(r->for_ms, 1 * MIN);
    assert_int_equal(r->keep_firing_for_ms, 2 * MIN);
    assert_int_equal(r->by, RULE_BY_ALL);
    assert_int_equal(r->match[RULE_DIM_TENANT].n, 0);
    assert_int_equal(r->match[RULE_DIM_CHANNEL].n, 1);
    assert_string_equal(r->match[RULE_DIM_CHANNEL].globs[0], "phone");
    assert_int_equal(r->match[RULE_DIM_QUEUE].n, 2);
    assert_string_equal(r->match[RULE_DIM_QUEUE].globs[0], "billing");
    assert_string_equal(r->match[RULE_DIM_QUEUE].globs[1], "vip-*");
    assert_string_equal(r->severity, "page");
    assert_string_equal(r->summary,
                        "p90 wait {{value}} ms on {{channel}}/{{queue}}");
    assert_int_equal(r->n_labels, 2);
    assert_string_equal(r->labels[0].key, "team");
    assert_string_equal(r->labels[0].value, "voice");
    assert_string_equal(r->labels[1].key, "tier");
    assert_string_equal(r->labels[1].value, "1");
    assert_int_equal(r->n_annotations, 1);
    assert_string_equal(r->annotations[0].key, "runbook");
    assert_string_equal(r->annotations[0].value, "https://wiki/{{ rule }}");
    assert_string_equal(r->src, path);
    assert_int_equal(r->index, 0);
    assert_int_equal(r->line, 3);
    assert_int_equal(r->window_line, 5);
}

static void expect_other_rules(const struct rules *rs)
{
    const struct rule *r = rules_find(rs, "detractor-surge");

    assert_non_null(r);
    assert_int_equal(r->kind, RULE_ABOVE_BASELINE);
    assert_string_equal(rules_kind_name(r->kind), "above_baseline");
    assert_string_equal(r->baseline, "24h");
    assert_int_equal(r->baseline_ms, 24 * HOUR);
    assert_true(r->threshold == 2.0);
    assert_int_equal(r->min_samples, 20);
    assert_string_equal(r->severity, "warning"); /* the default */
    assert_int_equal(r->index, 1);

    r = rules_find(rs, "crm-quiet");
    assert_non_null(r);
    assert_int_equal(r->kind, RULE_NO_DATA);
    assert_string_equal(rules_kind_name(r->kind), "no_data_for");
    assert_null(r->metric);
    assert_string_equal(r->window, "");
    assert_int_equal(r->no_data_ms, 30 * MIN);
    assert_int_equal(r->by, RULE_BY_TENANT | RULE_BY_CHANNEL);

    r = rules_find(rs, "abandon-confident");
    assert_int_equal(r->kind, RULE_BELOW);
    assert_true(r->confidence == 0.95);

    r = rules_find(rs, "csat.drop:z");
    assert_int_equal(r->kind, RULE_BELOW_ZSCORE);
    assert_int_equal(r->baseline_ms, 24 * HOUR);
    assert_true(r->threshold == 3 && r->resolve == 1);

    r = rules_find(rs, "oldest_wait");
    assert_int_equal(r->kind, RULE_ABOVE);
    assert_true(r->metric->live);
    assert_int_equal(r->window_ms, 0);
    assert_int_equal(r->by, RULE_BY_TENANT);
    assert_string_equal(r->match[RULE_DIM_TENANT].globs[0], "acme*");
}

static void test_load_full_file_sets_every_field(void **state)
{
    struct rules *rs = rules_new();
    char path[512], err[512];

    (void)state;
    assert_non_null(rs);
    if (load_text(rs, "full.yaml", full_yaml, path, sizeof(path), err,
                  sizeof(err)) != 0) {
        fail_msg("full file rejected: %s", err);
    }
    assert_int_equal(rs->n, 6);
    expect_phone_wait_spike(&rs->v[0], path);
    expect_other_rules(rs);
    assert_null(rules_find(rs, "nope"));
    rules_destroy(rs);
}

static void test_minimal_rule_gets_documented_defaults(void **state)
{
    struct rules *rs = rules_new();
    char path[512], err[512];
    const struct rule *r;

    (void)state;
    assert_int_equal(load_text(rs, "min.yaml",
                               "alerts:\n  - name: m\n    metric: nps\n"
                               "    window: 1h\n    below: 0\n",
                               path, sizeof(path), err, sizeof(err)),
                     0);
    r = &rs->v[0];
    assert_int_equal(r->by, RULE_BY_ALL);
    assert_string_equal(r->severity, "warning");
    assert_string_equal(
        r->summary,
        "{{rule}}: {{metric}} {{value}} on {{tenant}}/{{channel}}/{{queue}}");
    assert_int_equal(r->for_ms, 0);
    assert_int_equal(r->keep_firing_for_ms, 0);
    assert_int_equal(r->min_samples, 0);
    assert_false(r->has_resolve);
    assert_true(r->confidence == 0);
    assert_int_equal(r->n_labels + r->n_annotations, 0);
    for (int d = 0; d < RULE_DIMS; d++) {
        assert_int_equal(r->match[d].n, 0);
    }
    rules_destroy(rs);
}

static void test_empty_file_and_empty_list_hold_no_rules(void **state)
{
    static const char *const texts[] = {"", "# nothing\n", "alerts:\n",
                                        "alerts: []\n", "alerts: ~\n"};
    char path[512], err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct rules *rs = rules_new();
        if (load_text(rs, "empty.yaml", texts[i], path, sizeof(path), err,
                      sizeof(err)) != 0) {
            fail_msg("\"%s\" rejected: %s", texts[i], err);
        }
        assert_int_equal(rs->n, 0);
        rules_destroy(rs);
    }
}

/* ---- every load error: "FILE:LINE: alerts[I].KEY: what was expected" ---- */

#define R "alerts:\n  - name: r\n" /* lines 1-2; a rule's keys from line 3 */

static const struct {
    const char *name;
    const char *yaml;
    int line;
    const char *key;
    const char *expected; /* a fragment of the explanation */
} bad_rules[] = {
    {"unknown key",
     R "    metric: events\n    window: 5m\n    above: 1\n"
       "    treshold: 3\n",
     6, "alerts[0].treshold",
     "unknown key (expected one of above, below, above_baseline, "
     "below_baseline, above_zscore, below_zscore, no_data_for, name, metric, "
     "window, baseline, resolve, min_samples, confidence, for, "
     "keep_firing_for, match, by, severity, summary, labels, annotations)"},
    {"key given twice",
     R "    metric: events\n    window: 5m\n    above: 1\n"
       "    above: 2\n",
     6, "alerts[0].above", "given twice"},
    {"alerts not a list", "alerts:\n  name: r\n", 2, "alerts",
     "expected a list of rules"},
    {"alerts a quoted empty string", "alerts: ''\n", 1, "alerts",
     "expected a list of rules"},
    {"rule not a mapping", "alerts:\n  - just-a-name\n", 2, "alerts[0]",
     "expected a mapping"},
    {"name missing",
     "alerts:\n  - metric: events\n    window: 5m\n"
     "    above: 1\n",
     2, "alerts[0].name", "required"},
    {"name with a blank",
     "alerts:\n  - name: phone wait\n    metric: events\n"
     "    window: 5m\n    above: 1\n",
     2, "alerts[0].name", "[A-Za-z0-9_.:-]"},
    {"name a list", "alerts:\n  - name: [a]\n", 2, "alerts[0].name",
     "expected a name"},
    {"duplicate name in one file",
     R "    metric: events\n    window: 5m\n    above: 1\n  - name: r\n"
       "    metric: events\n    window: 1h\n    above: 2\n",
     6, "alerts[1].name", "duplicate rule name r (first at "},
    {"metric unknown",
     R "    metric: wait_p95_ms\n    window: 5m\n"
       "    above: 1\n",
     3, "alerts[0].metric", "KPI field or live gauge"},
    {"metric a list", R "    metric: [events]\n    window: 5m\n    above: 1\n",
     3, "alerts[0].metric", "KPI field"},
    {"metric missing", R "    window: 5m\n    above: 1\n", 2,
     "alerts[0].metric", "required"},
    {"window missing for a KPI metric",
     R "    metric: wait_p90_ms\n"
       "    above: 1\n",
     2, "alerts[0].window", "required for a KPI metric"},
    {"window on a live gauge",
     R "    metric: oldest_wait_ms\n"
       "    window: 5m\n    above: 1\n",
     4, "alerts[0].window", "live gauges are current values"},
    {"window in words",
     R "    metric: events\n    window: 5 minutes\n"
       "    above: 1\n",
     4, "alerts[0].window", "duration"},
    {"window without unit",
     R "    metric: events\n    window: 300\n"
       "    above: 1\n",
     4, "alerts[0].window", "duration"},
    {"window zero", R "    metric: events\n    window: 0s\n    above: 1\n", 4,
     "alerts[0].window", "duration"},
    {"window too long to name",
     R "    metric: events\n"
       "    window: 1h1h1h1h1h1h1h1h\n"
       "    above: 1\n",
     4, "alerts[0].window", "at most 15 characters"},
    {"no condition", R "    metric: events\n    window: 5m\n", 2, "alerts[0]",
     "expected one condition: above, below"},
    {"two conditions",
     R "    metric: events\n    window: 5m\n    above: 1\n"
       "    below: 0\n",
     6, "alerts[0].below", "only one condition"},
    {"threshold not a number",
     R "    metric: events\n    window: 5m\n"
       "    above: lots\n",
     5, "alerts[0].above", "expected a number"},
    {"threshold empty", R "    metric: events\n    window: 5m\n    above:\n", 5,
     "alerts[0].above", "expected a number"},
    {"threshold not finite",
     R "    metric: events\n    window: 5m\n"
       "    above: 1e999\n",
     5, "alerts[0].above", "expected a number"},
    {"rate threshold beyond 1",
     R "    metric: detractor_rate\n"
       "    window: 1h\n    above: 20\n",
     5, "alerts[0].above", "fraction in [0, 1]"},
    {"rate resolve beyond 1",
     R "    metric: sl_pct\n    window: 1h\n"
       "    below: 0.8\n    resolve: 85\n",
     6, "alerts[0].resolve", "fraction in [0, 1]"},
    {"baseline missing",
     R "    metric: detractor_rate\n    window: 1h\n"
       "    above_baseline: 2\n",
     2, "alerts[0].baseline", "required"},
    {"baseline with a plain threshold",
     R "    metric: events\n"
       "    window: 1h\n"
       "    baseline: 24h\n"
       "    above: 5\n",
     5, "alerts[0].baseline", "only with above_baseline"},
    {"ratio on a signed metric",
     R "    metric: nps\n    window: 1h\n    baseline: 24h\n"
       "    below_baseline: 0.5\n",
     6, "alerts[0].below_baseline", "never negative"},
    {"baseline not longer than window",
     R "    metric: csat_mean\n    window: 1h\n"
       "    baseline: 1h\n"
       "    below_baseline: 0.5\n",
     5, "alerts[0].baseline", "longer than window"},
    {"z-score baseline not a multiple of window",
     R "    metric: nps\n    window: 5m\n    baseline: 12m\n"
       "    below_zscore: 3\n",
     5, "alerts[0].baseline", "multiple of window"},
    {"ratio factor zero",
     R "    metric: nps_n\n    window: 1h\n"
       "    baseline: 24h\n    below_baseline: 0\n",
     6, "alerts[0].below_baseline", "positive factor"},
    {"z-score not positive",
     R "    metric: nps\n    window: 1h\n"
       "    baseline: 24h\n    above_zscore: -3\n",
     6, "alerts[0].above_zscore", "positive number of standard deviations"},
    {"baseline condition on a live gauge",
     R "    metric: waiting_calls\n"
       "    baseline: 24h\n"
       "    above_baseline: 2\n",
     5, "alerts[0].above_baseline", "live gauges have no baseline"},
    {"resolve beyond an above line",
     R "    metric: events\n    window: 5m\n"
       "    above: 100\n    resolve: 120\n",
     6, "alerts[0].resolve", "not above the condition's"},
    {"resolve beyond a below line",
     R "    metric: csat_mean\n"
       "    window: 1h\n    below: 3.5\n"
       "    resolve: 3\n",
     6, "alerts[0].resolve", "not below the condition's"},
    {"resolve on no_data_for", R "    no_data_for: 30m\n    resolve: 1\n", 4,
     "alerts[0].resolve", "not allowed with no_data_for"},
    {"negative z-score resolve",
     R "    metric: nps\n    window: 1h\n"
       "    baseline: 24h\n    above_zscore: 3\n"
       "    resolve: -1\n",
     7, "alerts[0].resolve", "non-negative number of standard deviations"},
    {"min_samples on a count",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    min_samples: 5\n",
     6, "alerts[0].min_samples", "only for metrics with a sample count"},
    {"min_samples on a live gauge",
     R "    metric: oldest_wait_ms\n"
       "    above: 1\n    min_samples: 5\n",
     5, "alerts[0].min_samples", "only for metrics with a sample count"},
    {"min_samples on no_data_for",
     R "    no_data_for: 30m\n"
       "    min_samples: 3\n",
     4, "alerts[0].min_samples", "only for metrics with a sample count"},
    {"min_samples zero",
     R "    metric: nps\n    window: 1h\n    below: 0\n"
       "    min_samples: 0\n",
     6, "alerts[0].min_samples", "positive integer"},
    {"min_samples fractional",
     R "    metric: nps\n    window: 1h\n"
       "    below: 0\n    min_samples: 2.5\n",
     6, "alerts[0].min_samples", "positive integer"},
    {"confidence on a quantile",
     R "    metric: wait_p90_ms\n"
       "    window: 5m\n    above: 1\n"
       "    confidence: 0.95\n",
     6, "alerts[0].confidence", "only with above or below on a rate"},
    {"confidence with a baseline",
     R "    metric: detractor_rate\n"
       "    window: 1h\n    baseline: 24h\n"
       "    above_baseline: 2\n"
       "    confidence: 0.9\n",
     7, "alerts[0].confidence", "only with above or below on a rate"},
    {"confidence of 1",
     R "    metric: sl_pct\n    window: 1h\n"
       "    below: 0.8\n    confidence: 1\n",
     6, "alerts[0].confidence", "strictly between 0 and 1"},
    {"confidence of 0",
     R "    metric: sl_pct\n    window: 1h\n"
       "    below: 0.8\n    confidence: 0\n",
     6, "alerts[0].confidence", "strictly between 0 and 1"},
    {"for in words",
     R "    metric: events\n    window: 5m\n    above: 1\n"
       "    for: a while\n",
     6, "alerts[0].for", "duration"},
    {"keep_firing_for negative",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    keep_firing_for: -1m\n",
     6, "alerts[0].keep_firing_for", "duration"},
    {"match not a mapping",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    match: phone\n",
     6, "alerts[0].match", "mapping of tenant / channel / queue"},
    {"match on an unknown dimension",
     R "    metric: events\n"
       "    window: 5m\n    above: 1\n"
       "    match:\n      agent: bob\n",
     7, "alerts[0].match.agent", "tenant, channel or queue"},
    {"match on a rolled-up dimension",
     R "    metric: events\n"
       "    window: 5m\n    above: 1\n"
       "    by: [tenant, channel]\n"
       "    match: {queue: vip}\n",
     7, "alerts[0].match.queue", "only on a dimension in by"},
    {"match with an empty list",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    match:\n"
       "      channel: []\n",
     7, "alerts[0].match.channel", "non-empty list"},
    {"match glob a mapping",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    match:\n"
       "      channel: {a: b}\n",
     7, "alerts[0].match.channel", "expected a glob"},
    {"by without tenant",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    by: [channel, queue]\n",
     6, "alerts[0].by", "must include tenant"},
    {"by an unknown dimension",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    by: [tenant, agent]\n",
     6, "alerts[0].by", "distinct tenant, channel, queue"},
    {"by a dimension twice",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    by:\n      - tenant\n"
       "      - tenant\n",
     8, "alerts[0].by", "distinct tenant, channel, queue"},
    {"severity a list",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    severity: [page]\n",
     6, "alerts[0].severity", "non-empty string"},
    {"summary unknown placeholder",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n"
       "    summary: \"{{vaule}} ms\"\n",
     6, "alerts[0].summary", "placeholders are {{value}}"},
    {"summary unclosed placeholder",
     R "    metric: events\n"
       "    window: 5m\n    above: 1\n"
       "    summary: \"{{value ms\"\n",
     6, "alerts[0].summary", "placeholders are {{value}}"},
    {"labels not a mapping",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    labels: [team]\n",
     6, "alerts[0].labels", "mapping of name: text"},
    {"label shadows a group label",
     R "    metric: events\n"
       "    window: 5m\n    above: 1\n"
       "    labels:\n      tenant: x\n",
     7, "alerts[0].labels.tenant", "not alertname, severity, tenant"},
    {"label name with a dash",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    labels: {team-name: x}\n",
     6, "alerts[0].labels.team-name", "[A-Za-z_][A-Za-z0-9_]*"},
    {"label given twice",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    labels:\n      team: a\n"
       "      team: b\n",
     8, "alerts[0].labels.team", "each name once"},
    {"label value a mapping",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    labels:\n"
       "      team: {a: b}\n",
     7, "alerts[0].labels.team", "non-empty string"},
    {"annotation named summary",
     R "    metric: events\n    window: 5m\n"
       "    above: 1\n    annotations:\n"
       "      summary: x\n",
     7, "alerts[0].annotations.summary", "summary is its own key"},
    {"annotation unknown placeholder",
     R "    metric: events\n"
       "    window: 5m\n    above: 1\n"
       "    annotations:\n"
       "      runbook: \"{{runbook}}\"\n",
     7, "alerts[0].annotations.runbook", "placeholders are {{value}}"},
    {"no_data_for with a metric",
     R "    metric: events\n"
       "    no_data_for: 30m\n",
     3, "alerts[0].metric", "not allowed with no_data_for"},
    {"no_data_for with a window", R "    no_data_for: 30m\n    window: 5m\n", 4,
     "alerts[0].window", "not allowed with no_data_for"},
    {"no_data_for without unit", R "    no_data_for: 30\n", 3,
     "alerts[0].no_data_for", "duration"},
    {"second rule names its own index",
     "alerts:\n  - name: a\n    metric: events\n    window: 5m\n"
     "    above: 1\n  - name: b\n    metric: events\n    window: 5m\n"
     "    abve: 1\n",
     9, "alerts[1].abve", "unknown key"},
    {"top level not a mapping", "- name: r\n", 1, "(top)",
     "expected a mapping with alerts:"},
    {"top-level key other than alerts", "# rules\nrules:\n  - name: r\n", 2,
     "rules", "a rules file holds only alerts:"},
};

static void test_load_errors_name_file_line_and_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_rules) / sizeof(bad_rules[0]); i++) {
        struct rules *rs = rules_new();
        char path[512], err[512], want[640];
        int rc = load_text(rs, "bad.yaml", bad_rules[i].yaml, path,
                           sizeof(path), err, sizeof(err));
        snprintf(want, sizeof(want), "%s:%d: %s: ", path, bad_rules[i].line,
                 bad_rules[i].key);
        if (rc != -1 || strncmp(err, want, strlen(want)) != 0 ||
            strstr(err, bad_rules[i].expected) == NULL) {
            fail_msg("%s: rc %d, error \"%s\", wanted \"%s\" and \"%s\"",
                     bad_rules[i].name, rc, err, want, bad_rules[i].expected);
        }
        if (rs->n != 0) {
            fail_msg("%s: a failed load left %zu rules", bad_rules[i].name,
                     rs->n);
        }
        rules_destroy(rs);
    }
}

static void test_missing_file_and_bad_yaml_name_the_file(void **state)
{
    struct rules *rs = rules_new();
    char path[512], err[512], want[640];

    (void)state;
    snprintf(path, sizeof(path), "%s/does-not-exist.yaml", tmpdir);
    assert_int_equal(rules_load_file(rs, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: cannot open: ", path);
    assert_non_null(strstr(err, want));

    assert_int_equal(load_text(rs, "syntax.yaml",
                               "alerts:\n  - name: [unclosed\n    above: 1\n",
                               path, sizeof(path), err, sizeof(err)),
                     -1);
    snprintf(want, sizeof(want), "%s:", path);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    assert_non_null(strstr(err, "YAML error"));
    assert_int_equal(rs->n, 0);
    rules_destroy(rs);
}

static const char two_rules[] = "alerts:\n"
                                "  - name: a\n"
                                "    metric: events\n"
                                "    window: 5m\n"
                                "    above: 1\n"
                                "  - name: b\n"
                                "    metric: nps\n"
                                "    window: 1h\n"
                                "    below: 0\n";

/* A set is appended to file by file; a bad file leaves it as it was. */
static void test_failed_load_keeps_the_rules_already_loaded(void **state)
{
    struct rules *rs = rules_new();
    char path[512], err[512];

    (void)state;
    assert_int_equal(load_text(rs, "good.yaml", two_rules, path, sizeof(path),
                               err, sizeof(err)),
                     0);
    assert_int_equal(rs->n, 2);
    assert_int_equal(load_text(rs, "half.yaml",
                               "alerts:\n  - name: c\n    metric: events\n"
                               "    window: 5m\n    above: 1\n"
                               "  - name: d\n    metric: events\n",
                               path, sizeof(path), err, sizeof(err)),
                     -1);
    assert_int_equal(rs->n, 2);
    assert_string_equal(rs->v[0].name, "a");
    assert_string_equal(rs->v[1].name, "b");
    assert_null(rules_find(rs, "c"));
    rules_destroy(rs);
}

static void test_duplicate_name_across_files_names_the_first(void **state)
{
    struct rules *rs = rules_new();
    char first[512], path[512], err[512], want[1200];

    (void)state;
    assert_int_equal(load_text(rs, "one.yaml", two_rules, first, sizeof(first),
                               err, sizeof(err)),
                     0);
    assert_int_equal(load_text(rs, "two.yaml",
                               "alerts:\n  - name: x\n    metric: events\n"
                               "    window: 5m\n    above: 1\n"
                               "  - name: b\n    metric: events\n"
                               "    window: 5m\n    above: 2\n",
                               path, sizeof(path), err, sizeof(err)),
                     -1);
    snprintf(want, sizeof(want),
             "%s:6: alerts[1].name: duplicate rule name b (first at %s:6)",
             path, first);
    assert_string_equal(err, want);
    assert_int_equal(rs->n, 2);
    rules_destroy(rs);
}

/* config.c hands over the alerts: node of its own document; lines count in
 * that document. */
static void test_parse_yaml_takes_the_alerts_node_of_a_config(void **state)
{
    static const char text[] = "redis:\n"
                               "  prefix: tp\n"
                               "alerts:\n"
                               "  - name: ok\n"
                               "    metric: sl_pct\n"
                               "    window: 1h\n"
                               "    below: 0.8\n"
                               "  - name: bad\n"
                               "    metric: sl_pct\n"
                               "    window: 1h\n"
                               "    below: 0.8\n"
                               "    confidence: 2\n";
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root, *alerts = NULL;
    struct rules *rs = rules_new();
    char err[512];

    (void)state;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text,
                                 strlen(text));
    assert_true(yaml_parser_load(&parser, &doc));
    root = yaml_document_get_root_node(&doc);
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        if (strcmp((const char *)k->data.scalar.value, "alerts") == 0) {
            alerts = yaml_document_get_node(&doc, p->value);
        }
    }
    assert_non_null(alerts);
    assert_int_equal(
        rules_parse_yaml(rs, &doc, alerts, "etc/tp.yaml", err, sizeof(err)),
        -1);
    assert_string_equal(err, "etc/tp.yaml:12: alerts[1].confidence: expected "
                             "a level strictly between 0 and 1, like 0.95");
    assert_int_equal(rs->n, 0);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    rules_destroy(rs);
}

/* ---- binding to aggregation.windows ---- */

static const struct config_window windows[] = {
    {"5m", 5 * MIN}, {"1h", 1 * HOUR}, {"24h", 24 * HOUR}};

static void test_bind_windows_finds_windows_by_length(void **state)
{
    struct rules *rs = rules_new();
    char path[512], err[512];

    (void)state;
    assert_int_equal(load_text(rs, "bind.yaml",
                               "alerts:\n"
                               "  - name: ratio\n"
                               "    metric: detractor_rate\n"
                               "    window: 60m\n"
                               "    baseline: 1d\n"
                               "    above_baseline: 2\n"
                               "  - name: z\n"
                               "    metric: nps\n"
                               "    window: 300s\n"
                               "    baseline: 12h\n"
                               "    below_zscore: 3\n"
                               "  - name: live\n"
                               "    metric: waiting_calls\n"
                               "    above: 10\n",
                               path, sizeof(path), err, sizeof(err)),
                     0);
    if (rules_bind_windows(rs, windows, 3, 48 * 3600000LL, err, sizeof(err)) !=
        0) {
        fail_msg("bind failed: %s", err);
    }
    assert_string_equal(rs->v[0].window, "1h");
    assert_string_equal(rs->v[0].baseline, "24h");
    assert_string_equal(rs->v[1].window, "5m");
    assert_string_equal(rs->v[1].baseline, "12h"); /* a span, not a window */
    assert_string_equal(rs->v[2].window, "");
    rules_destroy(rs);
}

static void test_bind_windows_errors_name_file_line_and_key(void **state)
{
    static const struct {
        const char *yaml;
        const char *error; /* after "PATH:" */
    } cases[] = {
        {"alerts:\n  - name: w\n    metric: events\n    window: 10m\n"
         "    above: 1\n",
         "4: alerts[0].window: 10m is not one of aggregation.windows"},
        {"alerts:\n  - name: ok\n    metric: events\n    window: 5m\n"
         "    above: 1\n  - name: b\n    metric: csat_mean\n    window: 1h\n"
         "    baseline: 2d\n    below_baseline: 0.5\n",
         "9: alerts[1].baseline: 2d is not one of aggregation.windows"},
        /* a z-score reads the baseline's buckets: 72h of them are not kept */
        {"alerts:\n  - name: z\n    metric: events\n    window: 1h\n"
         "    baseline: 72h\n    above_zscore: 3\n",
         "5: alerts[0].baseline: 72h is longer than aggregation.retention "
         "(the buckets it reads are gone by then)"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rules *rs = rules_new();
        char path[512], err[512], want[1024];
        assert_int_equal(load_text(rs, "bind.yaml", cases[i].yaml, path,
                                   sizeof(path), err, sizeof(err)),
                         0);
        assert_int_equal(
            rules_bind_windows(rs, windows, 3, 48 * 3600000LL, err, sizeof(err)),
            -1);
        snprintf(want, sizeof(want), "%s:%s", path, cases[i].error);
        assert_string_equal(err, want);
        rules_destroy(rs);
    }
}

/* ---- templates ---- */

/* Writes each piece as [literal] or {field name}. */
static int describe_piece(void *ctx, int field, const char *text, size_t len)
{
    static const char *const names[RULE_FIELDS] = {
        "value", "threshold", "baseline", "tenant", "channel",
        "queue", "rule",      "metric",   "window"};
    char *out = ctx;
    size_t used = strlen(out);

    if (field < 0) {
        snprintf(out + used, 256 - used, "[%.*s]", (int)len, text);
    } else {
        snprintf(out + used, 256 - used, "{%s}", names[field]);
    }
    return 0;
}

static void test_template_walk_splits_literals_and_placeholders(void **state)
{
    static const struct {
        const char *tmpl;
        int rc;
        const char *pieces;
    } cases[] = {
        {"p90 {{value}} ms", 0, "[p90 ]{value}[ ms]"},
        {"{{ tenant }}/{{channel}}/{{  queue}}", 0,
         "{tenant}[/]{channel}[/]{queue}"},
        {"{{rule}}{{metric}}{{window}}{{threshold}}{{baseline}}", 0,
         "{rule}{metric}{window}{threshold}{baseline}"},
        {"no placeholders {x} }} {", 0, "[no placeholders {x} }} {]"},
        {"", 0, ""},
        {"{{vaule}}", -1, ""},
        {"ok {{value}} then {{value", -1, ""},
        {"{{}}", -1, ""},
        {"{{Value}}", -1, ""},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256] = "";
        int rc = rules_template_walk(cases[i].tmpl, describe_piece, out);
        if (rc != cases[i].rc || strcmp(out, cases[i].pieces) != 0) {
            fail_msg("\"%s\": rc %d pieces \"%s\", want %d \"%s\"",
                     cases[i].tmpl, rc, out, cases[i].rc, cases[i].pieces);
        }
    }
}

static void test_reference_documents_every_key(void **state)
{
    static const char *const keys[] = {"name",
                                       "metric",
                                       "window",
                                       "baseline",
                                       "above",
                                       "below",
                                       "above_baseline",
                                       "below_baseline",
                                       "above_zscore",
                                       "below_zscore",
                                       "no_data_for",
                                       "resolve",
                                       "min_samples",
                                       "confidence",
                                       "for",
                                       "keep_firing_for",
                                       "match",
                                       "by",
                                       "severity",
                                       "summary",
                                       "labels",
                                       "annotations"};
    char *text = NULL, *line, *save = NULL;
    size_t size = 0, n = 0;
    FILE *f = open_memstream(&text, &size);

    (void)state;
    assert_non_null(f);
    rules_write_reference(f);
    assert_int_equal(fclose(f), 0);
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save), n++) {
        char key[32];
        bool known = false;
        assert_int_equal(sscanf(line, " %31s", key), 1);
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            known |= strcmp(keys[i], key) == 0;
        }
        if (!known) {
            fail_msg("reference documents unknown key %s", key);
        }
    }
    assert_int_equal(n, sizeof(keys) / sizeof(keys[0]));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_every_redis_field_is_a_metric_with_its_sample_count),
        cmocka_unit_test(test_load_full_file_sets_every_field),
        cmocka_unit_test(test_minimal_rule_gets_documented_defaults),
        cmocka_unit_test(test_empty_file_and_empty_list_hold_no_rules),
        cmocka_unit_test(test_load_errors_name_file_line_and_key),
        cmocka_unit_test(test_missing_file_and_bad_yaml_name_the_file),
        cmocka_unit_test(test_failed_load_keeps_the_rules_already_loaded),
        cmocka_unit_test(test_duplicate_name_across_files_names_the_first),
        cmocka_unit_test(test_parse_yaml_takes_the_alerts_node_of_a_config),
        cmocka_unit_test(test_bind_windows_finds_windows_by_length),
        cmocka_unit_test(test_bind_windows_errors_name_file_line_and_key),
        cmocka_unit_test(test_template_walk_splits_literals_and_placeholders),
        cmocka_unit_test(test_reference_documents_every_key),
    };

    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
