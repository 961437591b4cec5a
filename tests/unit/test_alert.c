/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for alert: the state machine, its groups and saved state. */
/*
 * Every expected transition is worked out by hand from alert.h (the
 * contract) and the semantics (Prometheus: inactive -> pending ->
 * firing -> resolved, one notification per firing and per resolve). The
 * state machine is driven by timelines: a rule, then one evaluation per tick
 * with the observation of one group and the one transition (or none) it must
 * cause. Rules are loaded from YAML text through rules_parse_yaml.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"

#include "alert_fixture.h"
}

/* ---- timelines ---- */

/* What one tick must cause. */
#define NONE 0
#define PEND 'P' /* inactive -> pending */
#define FIRE 'F' /* -> firing */
#define RESO 'R' /* firing -> resolved */
#define DROP 'I' /* pending -> inactive */

struct tick {
    int64_t at_s;
    double v;       /* the value; ignored when absent */
    bool absent;    /* the field is missing from the hash */
    bool gone;      /* no observation at all */
    int64_t n;      /* samples */
    double b;       /* ratio: baseline value */
    int64_t bn;     /* ratio: baseline samples; 0 = no baseline */
    double mean;    /* z-score */
    double sd;      /* z-score */
    int64_t slices; /* z-score; 0 = no stats */
    bool seen;      /* no_data_for: has a last event */
    int64_t last_s; /* no_data_for: last event time */
    int expect;
};

#define MAX_TICKS 12

struct timeline {
    const char *name;
    const char *rule;
    struct tick t[MAX_TICKS];
};

#define RULE_HEAD "alerts:\n  - name: r\n"

static const struct timeline timelines[] = {
    {"for: pending until for has passed, fires at for, resolves once",
     RULE_HEAD "    metric: wait_p90_ms\n    window: 5m\n    above: 100\n"
               "    for: 1m\n",
     {{.at_s = 0, .v = 150, .expect = PEND},
      {.at_s = 30, .v = 150},
      {.at_s = 59, .v = 150},
      {.at_s = 60, .v = 150, .expect = FIRE},
      {.at_s = 90, .v = 150},
      {.at_s = 120, .v = 50, .expect = RESO},
      {.at_s = 150, .v = 50}}},
    {"pending drops silently and restarts its for",
     RULE_HEAD "    metric: wait_p90_ms\n    window: 5m\n    above: 100\n"
               "    for: 1m\n",
     {{.at_s = 0, .v = 150, .expect = PEND},
      {.at_s = 30, .v = 50, .expect = DROP},
      {.at_s = 60, .v = 150, .expect = PEND},
      {.at_s = 100, .v = 150},
      {.at_s = 119, .v = 150},
      {.at_s = 120, .v = 150, .expect = FIRE}}},
    {"without for the first breach fires; at the line is not beyond it",
     RULE_HEAD "    metric: wait_p90_ms\n    window: 5m\n    above: 100\n",
     {{.at_s = 0, .v = 150, .expect = FIRE},
      {.at_s = 1, .v = 150},
      {.at_s = 2, .v = 100, .expect = RESO},
      {.at_s = 3, .v = 100}}},
    {"min_samples: 1 detractor out of 2 answers pages nobody",
     RULE_HEAD "    metric: detractor_rate\n    window: 1h\n    above: 0.3\n"
               "    min_samples: 20\n",
     {{.at_s = 0, .v = 0.5, .n = 2},
      {.at_s = 60, .v = 0.5, .n = 19},
      {.at_s = 120, .v = 0.5, .n = 20, .expect = FIRE},
      {.at_s = 180, .v = 0.5, .n = 19, .expect = RESO}}},
    {"resolve line: a value between the lines neither fires nor resolves",
     RULE_HEAD "    metric: wait_p90_ms\n    window: 5m\n    above: 100\n"
               "    resolve: 80\n",
     {{.at_s = 0, .v = 120, .expect = FIRE},
      {.at_s = 60, .v = 95},
      {.at_s = 120, .v = 101},
      {.at_s = 180, .v = 81},
      {.at_s = 240, .v = 80, .expect = RESO},
      {.at_s = 300, .v = 99},
      {.at_s = 360, .v = 101, .expect = FIRE}}},
    {"without a resolve line each crossing is one notification",
     RULE_HEAD "    metric: wait_p90_ms\n    window: 5m\n    above: 100\n",
     {{.at_s = 0, .v = 101, .expect = FIRE},
      {.at_s = 60, .v = 99, .expect = RESO},
      {.at_s = 120, .v = 101, .expect = FIRE},
      {.at_s = 180, .v = 99, .expect = RESO}}},
    {"keep_firing_for: resolves after clearing that long, a breach resets it",
     RULE_HEAD "    metric: wait_p90_ms\n    window: 5m\n    above: 100\n"
               "    keep_firing_for: 2m\n",
     {{.at_s = 0, .v = 150, .expect = FIRE},
      {.at_s = 60, .v = 50},
      {.at_s = 120, .v = 150},
      {.at_s = 150, .v = 50},
      {.at_s = 240, .v = 50},
      {.at_s = 269, .v = 50},
      {.at_s = 270, .v = 50, .expect = RESO}}},
    /* line = 2.0 x baseline; both windows gated by min_samples */
    {"baseline ratio: fires above 2x the group's own baseline",
     RULE_HEAD "    metric: detractor_rate\n    window: 1h\n"
               "    baseline: 24h\n    above_baseline: 2.0\n"
               "    min_samples: 20\n",
     {{.at_s = 0, .v = 0.25, .n = 40, .b = 0.10, .bn = 500, .expect = FIRE},
      {.at_s = 60, .v = 0.21, .n = 40, .b = 0.10, .bn = 500},
      {.at_s = 120, .v = 0.19, .n = 40, .b = 0.10, .bn = 500, .expect = RESO},
      {.at_s = 180, .v = 0.5, .n = 40},
      {.at_s = 240, .v = 0.5, .n = 40, .b = 0.10, .bn = 10},
      {.at_s = 300, .v = 0.5, .n = 10, .b = 0.10, .bn = 500},
      {.at_s = 360, .v = 0.5, .n = 40, .b = 0.30, .bn = 500},
      {.at_s = 420, .v = 0.61, .n = 40, .b = 0.30, .bn = 500, .expect = FIRE}}},
    /* z = (v - 0.10) / 0.05: 0.24 -> 2.8, 0.26 -> 3.2, 0.20 -> 2.0 */
    {"z-score: fires beyond 3 standard deviations of the baseline slices",
     RULE_HEAD "    metric: detractor_rate\n    window: 1h\n"
               "    baseline: 24h\n    above_zscore: 3\n",
     {{.at_s = 0, .v = 0.24, .mean = 0.10, .sd = 0.05, .slices = 23},
      {.at_s = 60,
       .v = 0.26,
       .mean = 0.10,
       .sd = 0.05,
       .slices = 23,
       .expect = FIRE},
      {.at_s = 120,
       .v = 0.20,
       .mean = 0.10,
       .sd = 0.05,
       .slices = 23,
       .expect = RESO},
      {.at_s = 180, .v = 0.9, .mean = 0.10, .sd = 0.05, .slices = 1},
      {.at_s = 240, .v = 0.9, .mean = 0.10, .sd = 0, .slices = 23},
      {.at_s = 300,
       .v = 0.9,
       .mean = 0.10,
       .sd = 0.05,
       .slices = 23,
       .expect = FIRE}}},
    /* z = (v - 0.90) / 0.02; fires below -3 (0.84), clears at -1 (0.88) */
    {"below z-score with a resolve line in standard deviations",
     RULE_HEAD "    metric: csat_pct\n    window: 1h\n    baseline: 24h\n"
               "    below_zscore: 3\n    resolve: 1\n",
     {{.at_s = 0, .v = 0.87, .mean = 0.90, .sd = 0.02, .slices = 23},
      {.at_s = 60,
       .v = 0.83,
       .mean = 0.90,
       .sd = 0.02,
       .slices = 23,
       .expect = FIRE},
      {.at_s = 120, .v = 0.87, .mean = 0.90, .sd = 0.02, .slices = 23},
      {.at_s = 180,
       .v = 0.885,
       .mean = 0.90,
       .sd = 0.02,
       .slices = 23,
       .expect = RESO}}},
    /*
     * Wilson lower bound at 0.95, z = 1.959964, z^2 = 3.841459:
     *   p = 0.6, n = 5:    (0.6 + 0.384146) / 1.768292 = 0.556552 centre,
     *                      1.108391 x sqrt(0.048 + 0.038415) = 0.325828 half,
     *                      lower 0.230724 < 0.25: no page on 3 of 5
     *   p = 0.35, n = 100: centre 0.355550, half 0.091908, lower 0.263642
     *   p = 0.30, n = 100: centre 0.307400, half 0.088451, lower 0.218949
     */
    {"confidence: a small sample's Wilson bound does not fire, a large one "
     "does",
     RULE_HEAD "    metric: detractor_rate\n    window: 1h\n    above: 0.25\n"
               "    confidence: 0.95\n",
     {{.at_s = 0, .v = 0.6, .n = 5},
      {.at_s = 60, .v = 0.35, .n = 100, .expect = FIRE},
      {.at_s = 120, .v = 0.30, .n = 100, .expect = RESO}}},
    /*
     * Wilson upper bound at 0.95:
     *   p = 0.5, n = 4:    centre 0.5, half 0.349961, upper 0.849961 > 0.8
     *   p = 0.7, n = 100:  centre 0.692599, half 0.088452, upper 0.781051
     *   p = 0.75, n = 100: centre 0.740750, half 0.083798, upper 0.824548
     */
    {"confidence on a below rule uses the upper bound",
     RULE_HEAD "    metric: csat_pct\n    window: 1h\n    below: 0.8\n"
               "    confidence: 0.95\n",
     {{.at_s = 0, .v = 0.5, .n = 4},
      {.at_s = 60, .v = 0.7, .n = 100, .expect = FIRE},
      {.at_s = 120, .v = 0.75, .n = 100, .expect = RESO}}},
    {"no_data_for: a group that used to send events goes quiet",
     RULE_HEAD "    no_data_for: 30m\n",
     {{.at_s = 0},
      {.at_s = 60, .seen = true, .last_s = 0},
      {.at_s = 1800, .seen = true, .last_s = 0},
      {.at_s = 1801, .seen = true, .last_s = 0, .expect = FIRE},
      {.at_s = 1860, .seen = true, .last_s = 0},
      {.at_s = 1900, .seen = true, .last_s = 1850, .expect = RESO}}},
    {"a live gauge fires while the wait is still happening",
     RULE_HEAD "    metric: oldest_wait_ms\n    above: 300000\n",
     {{.at_s = 0, .v = 120000},
      {.at_s = 60, .v = 180000},
      {.at_s = 241, .v = 301000, .expect = FIRE},
      {.at_s = 242, .v = 302000},
      {.at_s = 300, .absent = true, .expect = RESO}}},
    {"a vanished firing group resolves after keep_firing_for",
     RULE_HEAD "    metric: wait_p90_ms\n    window: 5m\n    above: 100\n"
               "    keep_firing_for: 1m\n",
     {{.at_s = 0, .v = 150, .expect = FIRE},
      {.at_s = 30, .gone = true},
      {.at_s = 60, .gone = true},
      {.at_s = 89, .gone = true},
      {.at_s = 90, .gone = true, .expect = RESO},
      {.at_s = 91, .gone = true}}},
    {"a vanished pending group drops at once",
     RULE_HEAD "    metric: wait_p90_ms\n    window: 5m\n    above: 100\n"
               "    for: 1m\n",
     {{.at_s = 0, .v = 150, .expect = PEND},
      {.at_s = 10, .gone = true, .expect = DROP},
      {.at_s = 20, .gone = true}}},
};

static struct alert_obs tick_obs(const struct tick *t)
{
    struct alert_obs o = row(t->absent ? NAN : t->v, t->n);

    o.has_baseline = t->bn > 0;
    o.baseline = t->b;
    o.baseline_samples = t->bn;
    o.has_stats = t->slices > 0;
    o.stats_mean = t->mean;
    o.stats_stddev = t->sd;
    o.stats_slices = t->slices;
    o.has_last_event = t->seen;
    o.last_event_ms = t->last_s * SEC;
    return o;
}

static int code_of(enum alert_status s, enum alert_status previous)
{
    switch (s) {
    case ALERT_PENDING:
        return PEND;
    case ALERT_FIRING:
        return FIRE;
    case ALERT_RESOLVED:
        return RESO;
    default:
        return previous == ALERT_PENDING ? DROP : '?';
    }
}

static void run_timeline(const struct timeline *tl)
{
    struct rules *rs = rules_from(tl->rule);
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);

    assert_non_null(ae);
    for (size_t i = 0; i < MAX_TICKS && (i == 0 || tl->t[i].at_s > 0); i++) {
        const struct tick *t = &tl->t[i];
        struct alert_obs o = tick_obs(t);
        int got;
        recorder_clear(&rec);
        evaluate(ae, &rs->v[0], t->at_s * SEC, t->gone ? NULL : &o);
        got = rec.n ? code_of(rec.v[0].status, rec.v[0].previous) : NONE;
        if (rec.n > 1 || got != t->expect) {
            fail_msg("%s: at %llds: %zu transitions, first %c, want %c",
                     tl->name, (long long)t->at_s, rec.n, got ? got : '-',
                     t->expect ? t->expect : '-');
        }
        if (rec.n == 1 && rec.v[0].notifies != (got == FIRE || got == RESO)) {
            fail_msg("%s: at %llds: notifies wrong", tl->name,
                     (long long)t->at_s);
        }
    }
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

static void test_timelines_cause_exactly_the_expected_transitions(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(timelines) / sizeof(timelines[0]); i++) {
        run_timeline(&timelines[i]);
    }
}

/* ---- what a transition carries ---- */

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

static void test_transitions_carry_values_and_times(void **state)
{
    struct rules *rs = rules_from(spike_yaml);
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs o;
    char fp[ALERT_FINGERPRINT_LEN + 1];

    (void)state;
    o = row(150, 7);
    evaluate(ae, &rs->v[0], 10 * SEC, &o);
    evaluate(ae, &rs->v[0], 70 * SEC, &o);
    o = row(40, 7);
    evaluate(ae, &rs->v[0], 100 * SEC, &o);
    assert_int_equal(rec.n, 3);
    alert_fingerprint("spike", "acme", "phone", "billing", fp);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(rec.v[i].fingerprint, fp);
        assert_string_equal(rec.v[i].tenant, "acme");
        assert_int_equal(rec.v[i].active_at_ms, 10 * SEC);
        assert_true(rec.v[i].has_threshold && rec.v[i].threshold == 100);
        assert_false(rec.v[i].has_baseline);
    }
    assert_int_equal(rec.v[0].status, ALERT_PENDING);
    assert_int_equal(rec.v[0].previous, ALERT_INACTIVE);
    assert_int_equal(rec.v[0].starts_at_ms, ALERT_NO_TIME);
    assert_null(rec.v[0].message); /* pending is never a message */
    assert_non_null(rec.v[0].state);
    assert_int_equal(rec.v[1].status, ALERT_FIRING);
    assert_int_equal(rec.v[1].previous, ALERT_PENDING);
    assert_true(rec.v[1].value == 150);
    assert_int_equal(rec.v[1].starts_at_ms, 70 * SEC);
    assert_int_equal(rec.v[1].ends_at_ms, ALERT_NO_TIME);
    assert_int_equal(rec.v[2].status, ALERT_RESOLVED);
    assert_true(rec.v[2].has_value && rec.v[2].value == 40);
    assert_int_equal(rec.v[2].starts_at_ms, 70 * SEC);
    assert_int_equal(rec.v[2].ends_at_ms, 100 * SEC);
    assert_null(rec.v[2].state); /* resolved: delete the saved state */
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

static void test_baseline_alerts_carry_the_line_and_the_baseline(void **state)
{
    struct rules *rs = rules_from("alerts:\n"
                                  "  - name: ratio\n"
                                  "    metric: detractor_rate\n"
                                  "    window: 1h\n"
                                  "    baseline: 24h\n"
                                  "    above_baseline: 2.5\n"
                                  "  - name: z\n"
                                  "    metric: detractor_rate\n"
                                  "    window: 1h\n"
                                  "    baseline: 24h\n"
                                  "    above_zscore: 2\n");
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs o = row(0.5, 40);

    (void)state;
    o.has_baseline = true;
    o.baseline = 0.1; /* line 2.5 x 0.1 = 0.25 */
    o.baseline_samples = 400;
    o.has_stats = true;
    o.stats_mean = 0.2; /* line 0.2 + 2 x 0.05 = 0.3 */
    o.stats_stddev = 0.05;
    o.stats_slices = 23;
    alert_eval_begin(ae, 0, NULL);
    assert_int_equal(alert_eval_observe(ae, &rs->v[0], &o), 0);
    assert_int_equal(alert_eval_observe(ae, &rs->v[1], &o), 0);
    alert_eval_end(ae);
    assert_int_equal(rec.n, 2);
    assert_true(fabs(rec.v[0].threshold - 0.25) < 1e-12);
    assert_true(rec.v[0].has_baseline && rec.v[0].baseline == 0.1);
    assert_true(fabs(rec.v[1].threshold - 0.3) < 1e-12);
    assert_true(rec.v[1].has_baseline && rec.v[1].baseline == 0.2);
    assert_non_null(json_object_get(rec.v[0].message, "baseline"));
    assert_null(json_object_get(rec.v[0].message, "threshold"));
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

static void test_no_data_value_is_the_age_of_the_last_event(void **state)
{
    struct rules *rs = rules_from("alerts:\n  - name: quiet\n"
                                  "    no_data_for: 30m\n"
                                  "    by: [tenant, channel]\n");
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs o = row(NAN, 0);

    (void)state;
    o.queue = "_all";
    o.has_last_event = true;
    o.last_event_ms = 1000 * SEC;
    evaluate(ae, &rs->v[0], 1000 * SEC + 31 * MIN, &o);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.v[0].status, ALERT_FIRING);
    assert_true(rec.v[0].value == (double)(31 * MIN));
    assert_true(rec.v[0].threshold == (double)(30 * MIN));
    assert_string_equal(
        json_string_value(json_object_get(rec.v[0].message, "metric")),
        ALERT_NO_DATA_METRIC);
    assert_true(json_is_null(json_object_get(rec.v[0].message, "window")));
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

static void test_resolve_of_a_vanished_group_has_no_value(void **state)
{
    struct rules *rs = rules_from(RULE_HEAD "    metric: wait_p90_ms\n"
                                            "    window: 5m\n"
                                            "    above: 100\n");
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs o = row(150, 3);

    (void)state;
    evaluate(ae, &rs->v[0], 0, &o);
    evaluate(ae, &rs->v[0], 60 * SEC, NULL);
    assert_int_equal(rec.n, 2);
    assert_int_equal(rec.v[1].status, ALERT_RESOLVED);
    assert_false(rec.v[1].has_value);
    assert_true(json_is_null(json_object_get(rec.v[1].message, "value")));
    assert_true(rec.v[1].threshold == 100);
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

/* ---- never a storm ---- */

static void test_repeated_evaluations_notify_once_per_transition(void **state)
{
    struct rules *rs = rules_from(spike_yaml);
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs hot = row(150, 1), cold = row(50, 1);

    (void)state;
    for (int64_t s = 0; s < 1000; s++) {
        evaluate(ae, &rs->v[0], s * SEC, &hot);
    }
    assert_int_equal(rec.total, 2); /* pending, firing */
    assert_int_equal(rec.v[1].status, ALERT_FIRING);
    for (int64_t s = 1000; s < 2000; s++) {
        evaluate(ae, &rs->v[0], s * SEC, &cold);
    }
    assert_int_equal(rec.total, 3);
    assert_int_equal(rec.v[2].status, ALERT_RESOLVED);
    assert_int_equal(alert_eval_count(ae), 0);
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

/* Memory and the pass in alert_eval_end follow active alerts only. */
static void test_only_active_groups_hold_state(void **state)
{
    struct rules *rs = rules_from(RULE_HEAD "    metric: wait_p90_ms\n"
                                            "    window: 5m\n"
                                            "    above: 100\n");
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    char queue[16];

    (void)state;
    alert_eval_begin(ae, 0, NULL);
    for (int i = 0; i < 10000; i++) {
        struct alert_obs o = row(i < 3 ? 150 : 50, 1);
        snprintf(queue, sizeof(queue), "q%d", i);
        o.queue = queue;
        assert_int_equal(alert_eval_observe(ae, &rs->v[0], &o), 0);
    }
    alert_eval_end(ae);
    assert_int_equal(alert_eval_count(ae), 3);
    assert_int_equal(rec.total, 3);
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

/* ---- groups: roll-ups and globs ---- */

static void test_rollup_rows_are_groups_only_of_their_own_by(void **state)
{
    static const struct {
        const char *tenant, *channel, *queue;
        bool by3, by2, by1; /* [tenant, channel, queue] / [t, c] / [t] */
    } rows[] = {
        {"acme", "phone", "billing", true, false, false},
        {"acme", "phone", "_all", false, true, false},
        {"acme", "_all", "billing", false, false, false},
        {"acme", "_all", "_all", false, false, true},
        {"_all", "phone", "billing", true, false, false}, /* a tenant name */
        {"acme", "_other", "_other", true, false, false},
        {"acme", "_other", "_all", false, true, false},
    };
    struct rules *rs =
        rules_from("alerts:\n"
                   "  - {name: by3, metric: events, window: 5m, above: 1}\n"
                   "  - {name: by2, metric: events, window: 5m, above: 1,\n"
                   "     by: [tenant, channel]}\n"
                   "  - {name: by1, metric: events, window: 5m, above: 1,\n"
                   "     by: [tenant]}\n");

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bool want[3] = {rows[i].by3, rows[i].by2, rows[i].by1};
        for (size_t r = 0; r < 3; r++) {
            if (alert_row_matches(&rs->v[r], rows[i].tenant, rows[i].channel,
                                  rows[i].queue) != want[r]) {
                fail_msg("%s: row %s:%s:%s wrongly %s", rs->v[r].name,
                         rows[i].tenant, rows[i].channel, rows[i].queue,
                         want[r] ? "excluded" : "included");
            }
        }
    }
    rules_destroy(rs);
}

static void test_rollup_row_never_alerts_on_a_finer_rule(void **state)
{
    struct rules *rs = rules_from(RULE_HEAD "    metric: wait_p90_ms\n"
                                            "    window: 5m\n"
                                            "    above: 100\n");
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs rollup = row(500, 9), leaf = row(150, 9);

    (void)state;
    rollup.queue = "_all";
    alert_eval_begin(ae, 0, NULL);
    assert_int_equal(alert_eval_observe(ae, &rs->v[0], &rollup), 0);
    rollup.channel = "_all";
    assert_int_equal(alert_eval_observe(ae, &rs->v[0], &rollup), 0);
    assert_int_equal(rec.total, 0);
    assert_int_equal(alert_eval_observe(ae, &rs->v[0], &leaf), 0);
    alert_eval_end(ae);
    assert_int_equal(rec.total, 1);
    assert_string_equal(rec.v[0].queue, "billing");
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

static void test_match_globs_select_groups(void **state)
{
    static const struct {
        const char *tenant, *channel, *queue;
        bool match;
    } rows[] = {
        {"acme", "phone", "billing", true},
        {"acme", "phone", "vip-gold", true},
        {"acme", "phone", "vip-", true},
        {"bcme", "phone", "billing", true},
        {"acme", "phone", "support", false},
        {"dcme", "phone", "billing", false},
        {"acme", "phoone", "billing", false},
        {"acme", "phone", "_all", false},
        {"acme-eu", "phone", "billing", false},
    };
    struct rules *rs =
        rules_from("alerts:\n  - name: g\n    metric: events\n    window: 5m\n"
                   "    above: 1\n    match:\n      tenant: \"[a-c]cme\"\n"
                   "      channel: ph?ne\n      queue: [billing, \"vip-*\"]\n");

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (alert_row_matches(&rs->v[0], rows[i].tenant, rows[i].channel,
                              rows[i].queue) != rows[i].match) {
            fail_msg("row %s:%s:%s should %smatch", rows[i].tenant,
                     rows[i].channel, rows[i].queue,
                     rows[i].match ? "" : "not ");
        }
    }
    rules_destroy(rs);
}

static void test_values_longer_than_a_dimension_never_match(void **state)
{
    char tenant[ALERT_TENANT_MAX + 2], dim[ALERT_DIM_MAX + 2];
    struct rules *rs =
        rules_from("alerts:\n  - {name: a, metric: events, window: 5m, "
                   "above: 1}\n");

    (void)state;
    memset(tenant, 't', sizeof(tenant) - 1);
    tenant[sizeof(tenant) - 1] = '\0';
    memset(dim, 'd', sizeof(dim) - 1);
    dim[sizeof(dim) - 1] = '\0';
    assert_false(alert_row_matches(&rs->v[0], tenant, "phone", "q"));
    assert_false(alert_row_matches(&rs->v[0], "acme", dim, "q"));
    tenant[ALERT_TENANT_MAX] = '\0';
    dim[ALERT_DIM_MAX] = '\0';
    assert_true(alert_row_matches(&rs->v[0], tenant, dim, dim));
    rules_destroy(rs);
}

/* ---- what the caller reads ---- */

static void test_needs_tell_the_caller_what_to_read(void **state)
{
    struct rules *rs = rules_from(
        "alerts:\n"
        "  - {name: p90, metric: wait_p90_ms, window: 5m, above: 1}\n"
        "  - {name: ab, metric: abandon_rate, window: 1h, above: 0.1,\n"
        "     by: [tenant, channel]}\n"
        "  - {name: live, metric: oldest_wait_ms, above: 1}\n"
        "  - {name: ratio, metric: ces_mean, window: 1h, baseline: 24h,\n"
        "     below_baseline: 0.5}\n"
        "  - {name: z, metric: csat_mean, window: 1h, baseline: 24h,\n"
        "     below_zscore: 3}\n"
        "  - {name: quiet, no_data_for: 1h}\n");
    struct alert_needs n;

    (void)state;
    alert_rule_needs(&rs->v[0], &n);
    assert_int_equal(n.source, ALERT_SRC_KPI);
    assert_string_equal(n.field, "wait_p90_ms");
    assert_string_equal(n.window, "5m");
    assert_string_equal(n.count[0], "wait_n");
    assert_null(n.count[1]);
    assert_false(n.baseline_value || n.baseline_stats);
    assert_null(n.baseline);
    assert_int_equal(n.by, RULE_BY_ALL);

    alert_rule_needs(&rs->v[1], &n);
    assert_string_equal(n.count[0], "answered");
    assert_string_equal(n.count[1], "abandoned");
    assert_int_equal(n.by, RULE_BY_TENANT | RULE_BY_CHANNEL);

    alert_rule_needs(&rs->v[2], &n);
    assert_int_equal(n.source, ALERT_SRC_LIVE);
    assert_string_equal(n.field, "oldest_wait_ms");
    assert_null(n.window);
    assert_null(n.count[0]);

    alert_rule_needs(&rs->v[3], &n);
    assert_true(n.baseline_value);
    assert_false(n.baseline_stats);
    assert_string_equal(n.baseline, "24h");
    assert_string_equal(n.count[0], "ces_n");

    alert_rule_needs(&rs->v[4], &n);
    assert_false(n.baseline_value);
    assert_true(n.baseline_stats);
    assert_int_equal(n.slice_ms, 1 * HOUR);

    alert_rule_needs(&rs->v[5], &n);
    assert_int_equal(n.source, ALERT_SRC_EVENTS);
    assert_null(n.field);
    assert_null(n.window);
    rules_destroy(rs);
}

/* ---- saved state: restart and takeover ---- */

/* The saved state as it comes back from Redis: text, parsed again. */
static json_t *through_text(const json_t *state)
{
    char *text = json_dumps(state, JSON_COMPACT);
    json_t *back;
    json_error_t err;

    assert_non_null(text);
    back = json_loads(text, 0, &err);
    free(text);
    assert_non_null(back);
    return back;
}

static void
test_restored_firing_alert_is_not_sent_again_and_resolves(void **state)
{
    struct rules *rs = rules_from(spike_yaml);
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs hot = row(150, 1), cold = row(50, 1);
    json_t *saved;
    char err[256];

    (void)state;
    evaluate(ae, &rs->v[0], 0, &hot);
    evaluate(ae, &rs->v[0], 60 * SEC, &hot);
    assert_int_equal(rec.n, 2);
    saved = through_text(rec.v[1].state);
    alert_eval_destroy(ae);
    rules_destroy(rs);
    recorder_clear(&rec);

    /* a new process: rules loaded again, state restored */
    rs = rules_from(spike_yaml);
    ae = alert_eval_new(rs, record, &rec);
    assert_int_equal(alert_state_restore(ae, saved, err, sizeof(err)), 0);
    assert_int_equal(alert_eval_count(ae), 1);
    assert_int_equal(rec.total, 0);
    for (int64_t s = 90; s < 300; s += 30) {
        evaluate(ae, &rs->v[0], s * SEC, &hot);
    }
    assert_int_equal(rec.total, 0); /* never sent again */
    evaluate(ae, &rs->v[0], 300 * SEC, &cold);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.v[0].status, ALERT_RESOLVED);
    assert_int_equal(rec.v[0].starts_at_ms, 60 * SEC); /* the original start */
    assert_int_equal(rec.v[0].active_at_ms, 0);
    assert_int_equal(rec.v[0].ends_at_ms, 300 * SEC);
    json_decref(saved);
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

static void test_restored_pending_alert_keeps_its_for_clock(void **state)
{
    struct rules *rs = rules_from(spike_yaml);
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs hot = row(150, 1);
    json_t *saved;
    char err[256];

    (void)state;
    evaluate(ae, &rs->v[0], 0, &hot);
    saved = through_text(rec.v[0].state);
    assert_string_equal(json_string_value(json_object_get(saved, "status")),
                        "pending");
    alert_eval_destroy(ae);
    recorder_clear(&rec);

    ae = alert_eval_new(rs, record, &rec);
    assert_int_equal(alert_state_restore(ae, saved, err, sizeof(err)), 0);
    evaluate(ae, &rs->v[0], 30 * SEC, &hot);
    assert_int_equal(rec.total, 0);
    evaluate(ae, &rs->v[0], 60 * SEC, &hot); /* 60s after the first breach */
    assert_int_equal(rec.total, 1);
    assert_int_equal(rec.v[0].status, ALERT_FIRING);
    assert_int_equal(rec.v[0].previous, ALERT_PENDING);
    json_decref(saved);
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

static void test_restore_keeps_a_group_already_held(void **state)
{
    struct rules *rs = rules_from(spike_yaml);
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs hot = row(150, 1);
    json_t *pending;
    char err[256];

    (void)state;
    evaluate(ae, &rs->v[0], 0, &hot);
    pending = json_incref(rec.v[0].state);
    evaluate(ae, &rs->v[0], 60 * SEC, &hot); /* now firing */
    assert_int_equal(alert_state_restore(ae, pending, err, sizeof(err)), 0);
    recorder_clear(&rec);
    evaluate(ae, &rs->v[0], 120 * SEC, &hot);
    assert_int_equal(rec.total, 0); /* still firing, not pending again */
    json_decref(pending);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

/* A saved firing state of spike, to be spoilt by the cases. */
static json_t *firing_state(void)
{
    char fp[ALERT_FINGERPRINT_LEN + 1];

    alert_fingerprint("spike", "acme", "phone", "billing", fp);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:s, s:n}",
                     "fingerprint", fp, "rule", "spike", "status", "firing",
                     "tenant", "acme", "channel", "phone", "queue", "billing",
                     "value", 150.5, "active_at", "2026-11-23T10:00:00.000Z",
                     "starts_at", "2026-11-23T10:01:00.000Z", "clear_since");
}

static void test_restore_rejects_malformed_state(void **state)
{
    static const struct {
        const char *field;
        const char *value; /* NULL: delete the field */
        const char *error;
    } cases[] = {
        {"status", "resolved", "status pending or firing"},
        {"status", NULL, "status pending or firing"},
        {"tenant", NULL, "expected fingerprint, rule, tenant"},
        {"fingerprint", "0123456789abcdef", "does not match rule and group"},
        {"queue", "support", "does not match rule and group"},
        {"starts_at", NULL, "RFC 3339"},
        {"active_at", "yesterday", "RFC 3339"},
        {"clear_since", "2026-13-01T00:00:00Z", "RFC 3339"},
    };
    struct rules *rs = rules_from(spike_yaml);
    struct alert_eval *ae = alert_eval_new(rs, NULL, NULL);
    json_t *s = json_string("not an object");
    char err[256];

    (void)state;
    assert_int_equal(alert_state_restore(ae, s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "expected an object"));
    json_decref(s);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s = firing_state();
        if (cases[i].value == NULL) {
            json_object_del(s, cases[i].field);
        } else {
            json_object_set_new(s, cases[i].field, json_string(cases[i].value));
        }
        err[0] = '\0';
        if (alert_state_restore(ae, s, err, sizeof(err)) != -1 ||
            strstr(err, cases[i].error) == NULL) {
            fail_msg("%s=%s: error \"%s\", want \"%s\"", cases[i].field,
                     cases[i].value ? cases[i].value : "(none)", err,
                     cases[i].error);
        }
        json_decref(s);
    }
    assert_int_equal(alert_eval_count(ae), 0);
    s = firing_state();
    assert_int_equal(alert_state_restore(ae, s, err, sizeof(err)), 0);
    assert_int_equal(alert_eval_count(ae), 1);
    json_decref(s);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

/* A firing state whose rule was deleted while the service was down: the
 * caller publishes alert_state_resolved and deletes the state. */
static void
test_state_of_a_removed_rule_becomes_a_resolved_message(void **state)
{
    struct rules *rs = rules_from("alerts:\n  - {name: other, metric: events,"
                                  " window: 5m, above: 1}\n");
    struct alert_eval *ae = alert_eval_new(rs, NULL, NULL);
    json_t *s = firing_state(), *msg;
    char err[256];

    (void)state;
    assert_int_equal(alert_state_restore(ae, s, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "rule spike is not loaded"));
    assert_int_equal(alert_eval_count(ae), 0);
    msg = alert_state_resolved(s, 1795428300000);
    assert_non_null(msg);
    assert_string_equal(json_string_value(json_object_get(msg, "status")),
                        "resolved");
    assert_string_equal(json_string_value(json_object_get(msg, "ends_at")),
                        "2026-11-23T10:05:00.000Z");
    assert_string_equal(json_string_value(json_object_get(msg, "starts_at")),
                        "2026-11-23T10:01:00.000Z");
    assert_true(json_is_null(json_object_get(msg, "value")));
    assert_null(json_object_get(msg, "active_at"));
    assert_null(json_object_get(msg, "clear_since"));
    json_decref(msg);
    json_object_set_new(s, "status", json_string("pending"));
    assert_null(alert_state_resolved(s, 1795428300000)); /* never notified */
    json_decref(s);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

/* ---- reload, scope, forget, foreach ---- */

static void
test_reload_keeps_state_by_name_and_resolves_removed_rules(void **state)
{
    struct rules *old = rules_from(
        "alerts:\n"
        "  - {name: a, metric: wait_p90_ms, window: 5m, above: 100}\n"
        "  - {name: b, metric: wait_p90_ms, window: 5m, above: 100}\n");
    struct rules *new = rules_from(
        "alerts:\n"
        "  - {name: a, metric: wait_p90_ms, window: 5m, above: 200}\n");
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(old, record, &rec);
    struct alert_obs o = row(150, 1);

    (void)state;
    alert_eval_begin(ae, 0, NULL);
    assert_int_equal(alert_eval_observe(ae, &old->v[0], &o), 0);
    assert_int_equal(alert_eval_observe(ae, &old->v[1], &o), 0);
    alert_eval_end(ae);
    assert_int_equal(rec.total, 2);
    recorder_clear(&rec);

    alert_eval_set_rules(ae, new, 30 * SEC);
    rules_destroy(old);
    assert_int_equal(rec.total, 1);
    assert_string_equal(rec.v[0].rule, "b");
    assert_int_equal(rec.v[0].status, ALERT_RESOLVED);
    assert_int_equal(rec.v[0].ends_at_ms, 30 * SEC);
    assert_int_equal(alert_eval_count(ae), 1);
    recorder_clear(&rec);

    evaluate(ae, &new->v[0], 60 * SEC, &o); /* 150 is not above 200 now */
    assert_int_equal(rec.total, 1);
    assert_string_equal(rec.v[0].rule, "a");
    assert_int_equal(rec.v[0].status, ALERT_RESOLVED);
    assert_int_equal(rec.v[0].starts_at_ms, 0);
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(new);
}

static void test_scoped_evaluation_leaves_other_tenants_alone(void **state)
{
    struct rules *rs = rules_from(RULE_HEAD "    metric: wait_p90_ms\n"
                                            "    window: 5m\n"
                                            "    above: 100\n");
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs acme = row(150, 1), globex = row(150, 1);

    (void)state;
    globex.tenant = "globex";
    alert_eval_begin(ae, 0, NULL);
    assert_int_equal(alert_eval_observe(ae, &rs->v[0], &acme), 0);
    assert_int_equal(alert_eval_observe(ae, &rs->v[0], &globex), 0);
    alert_eval_end(ae);
    recorder_clear(&rec);

    alert_eval_begin(ae, 60 * SEC, "acme"); /* acme's rows: none left */
    alert_eval_end(ae);
    assert_int_equal(rec.total, 1);
    assert_string_equal(rec.v[0].tenant, "acme");
    assert_int_equal(rec.v[0].status, ALERT_RESOLVED);
    recorder_clear(&rec);

    alert_eval_begin(ae, 120 * SEC, NULL);
    alert_eval_end(ae);
    assert_int_equal(rec.total, 1);
    assert_string_equal(rec.v[0].tenant, "globex");
    recorder_clear(&rec);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

static void count_firing(const struct alert *a, void *opaque)
{
    size_t *n = opaque;

    assert_int_equal(a->status, ALERT_FIRING);
    assert_int_equal(a->previous, ALERT_FIRING);
    assert_true(a->has_value && a->value == 150);
    (*n)++;
}

static void test_forget_drops_a_tenant_silently_and_foreach_visits(void **state)
{
    struct rules *rs = rules_from(RULE_HEAD "    metric: wait_p90_ms\n"
                                            "    window: 5m\n"
                                            "    above: 100\n");
    struct recorder rec = {.n = 0};
    struct alert_eval *ae = alert_eval_new(rs, record, &rec);
    struct alert_obs acme = row(150, 1), globex = row(150, 1);
    size_t n = 0;

    (void)state;
    globex.tenant = "globex";
    alert_eval_begin(ae, 0, NULL);
    assert_int_equal(alert_eval_observe(ae, &rs->v[0], &acme), 0);
    assert_int_equal(alert_eval_observe(ae, &rs->v[0], &globex), 0);
    alert_eval_end(ae);
    alert_eval_foreach(ae, count_firing, &n);
    assert_int_equal(n, 2);
    recorder_clear(&rec);
    alert_eval_forget(ae, "acme");
    assert_int_equal(alert_eval_count(ae), 1);
    alert_eval_forget(ae, NULL);
    assert_int_equal(alert_eval_count(ae), 0);
    assert_int_equal(rec.total, 0);
    alert_eval_destroy(ae);
    rules_destroy(rs);
}

static void test_observe_rejects_a_rule_of_another_set(void **state)
{
    struct rules *rs = rules_from(spike_yaml), *other = rules_from(spike_yaml);
    struct alert_eval *ae = alert_eval_new(rs, NULL, NULL);
    struct alert_obs o = row(150, 1);

    (void)state;
    alert_eval_begin(ae, 0, NULL);
    assert_int_equal(alert_eval_observe(ae, &other->v[0], &o), -1);
    alert_eval_end(ae);
    alert_eval_destroy(ae);
    alert_eval_destroy(NULL);
    rules_destroy(other);
    rules_destroy(rs);
}

/* ---- numbers, fingerprints, templates ---- */

static void test_wilson_bounds_match_hand_computation(void **state)
{
    static const struct {
        double p;
        int64_t n;
        bool lower;
        double want; /* see the confidence timelines for the arithmetic */
    } cases[] = {
        {0.6, 5, true, 0.230724},    {0.35, 100, true, 0.263642},
        {0.30, 100, true, 0.218949}, {0.5, 4, false, 0.849961},
        {0.7, 100, false, 0.781051}, {0.75, 100, false, 0.824548},
        {0.0, 10, true, 0.0},        {1.0, 10, false, 1.0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double got =
            alert_wilson_bound(cases[i].p, cases[i].n, 0.95, cases[i].lower);
        if (fabs(got - cases[i].want) > 1e-6) {
            fail_msg("p %g n %lld: %.7f, want %.6f", cases[i].p,
                     (long long)cases[i].n, got, cases[i].want);
        }
    }
    /* z at 0.99 is 2.575829: n huge, p 0.5, half = z / (2 sqrt(n)) */
    assert_true(fabs(0.5 - alert_wilson_bound(0.5, 1000000, 0.99, true) -
                     2.575829 / 2000) < 1e-8);
}

static void test_fingerprint_is_fnv1a_of_rule_and_group(void **state)
{
    char a[ALERT_FINGERPRINT_LEN + 1], b[ALERT_FINGERPRINT_LEN + 1];

    (void)state;
    /* FNV-1a 64 of "phone-wait-spike\0acme\0phone\0billing\0", by a
     * separate implementation */
    alert_fingerprint("phone-wait-spike", "acme", "phone", "billing", a);
    assert_string_equal(a, "9efaeda89d6d491f");
    alert_fingerprint("r", "t", "c", "q", a);
    assert_string_equal(a, "755e381c6e59f769");
    alert_fingerprint("ab", "c", "d", "e", a);
    alert_fingerprint("a", "bc", "d", "e", b);
    assert_string_equal(a, "f71a7dea9c1482cc");
    assert_string_equal(b, "84178cf0ecd1bbc0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timelines_cause_exactly_the_expected_transitions),
        cmocka_unit_test(test_transitions_carry_values_and_times),
        cmocka_unit_test(test_baseline_alerts_carry_the_line_and_the_baseline),
        cmocka_unit_test(test_no_data_value_is_the_age_of_the_last_event),
        cmocka_unit_test(test_resolve_of_a_vanished_group_has_no_value),
        cmocka_unit_test(test_repeated_evaluations_notify_once_per_transition),
        cmocka_unit_test(test_only_active_groups_hold_state),
        cmocka_unit_test(test_rollup_rows_are_groups_only_of_their_own_by),
        cmocka_unit_test(test_rollup_row_never_alerts_on_a_finer_rule),
        cmocka_unit_test(test_match_globs_select_groups),
        cmocka_unit_test(test_values_longer_than_a_dimension_never_match),
        cmocka_unit_test(test_needs_tell_the_caller_what_to_read),
        cmocka_unit_test(
            test_restored_firing_alert_is_not_sent_again_and_resolves),
        cmocka_unit_test(test_restored_pending_alert_keeps_its_for_clock),
        cmocka_unit_test(test_restore_keeps_a_group_already_held),
        cmocka_unit_test(test_restore_rejects_malformed_state),
        cmocka_unit_test(
            test_state_of_a_removed_rule_becomes_a_resolved_message),
        cmocka_unit_test(
            test_reload_keeps_state_by_name_and_resolves_removed_rules),
        cmocka_unit_test(test_scoped_evaluation_leaves_other_tenants_alone),
        cmocka_unit_test(
            test_forget_drops_a_tenant_silently_and_foreach_visits),
        cmocka_unit_test(test_observe_rejects_a_rule_of_another_set),
        cmocka_unit_test(test_wilson_bounds_match_hand_computation),
        cmocka_unit_test(test_fingerprint_is_fnv1a_of_rule_and_group),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
