/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for metrics and metrics_catalog: exposition format, escaping, label caps, histograms, threads, the catalogue. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "metrics_catalog.h"

/*
 * Expected expositions below are written by hand from the Prometheus text
 * format 0.0.4 (HELP escapes \ and newline; label values escape \, " and
 * newline; histogram buckets are cumulative, le last, +Inf equal to _count).
 *
 * With TP_METRICS_SAMPLE=PATH the catalogue test also writes a fully
 * populated exposition there, and with TP_METRICS_MARKDOWN=PATH the
 * catalogue's Markdown table, for tests/integration/metrics-format.sh.
 */

static char errbuf[256];

static struct metrics *new_registry(const char *overflow_name)
{
    struct metrics *m = metrics_new(overflow_name, errbuf, sizeof(errbuf));

    assert_non_null(m);
    return m;
}

static struct metrics_family *reg(struct metrics *m,
                                  const struct metrics_desc *d)
{
    struct metrics_family *f = metrics_register(m, d, errbuf, sizeof(errbuf));

    if (f == NULL) {
        fail_msg("register %s: %s", d->name, errbuf);
    }
    return f;
}

/* Renders m; the caller frees. */
static char *render(struct metrics *m)
{
    char *out = NULL;
    size_t len = 0;

    assert_int_equal(metrics_render(m, &out, &len), 0);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    return out;
}

static void assert_renders(struct metrics *m, const char *expected)
{
    char *out = render(m);

    assert_string_equal(out, expected);
    free(out);
}

/* True when the exposition of m contains line (a whole line). */
static bool renders_line(struct metrics *m, const char *line)
{
    char *out = render(m);
    size_t n = strlen(line);
    bool found = false;

    for (const char *p = out; !found && (p = strstr(p, line)) != NULL; p++) {
        found = (p == out || p[-1] == '\n') && p[n] == '\n';
    }
    free(out);
    return found;
}

/* ---- format ------------------------------------------------------------ */

static void test_empty_registry_renders_nothing(void **state)
{
    struct metrics *m = new_registry(NULL);

    (void)state;
    assert_renders(m, "");
    metrics_destroy(m);
    metrics_destroy(NULL);
}

static void test_counter_and_gauge_golden_with_help_escaped(void **state)
{
    struct metrics *m = new_registry(NULL);
    struct metrics_desc c = {
        .name = "t_requests_total",
        .type = METRICS_COUNTER,
        .help = "Requests served.\nSecond \"line\" with a \\ backslash."};
    struct metrics_desc g = {.name = "t_temperature_celsius",
                             .type = METRICS_GAUGE,
                             .help = "Temperature."};
    struct metrics_family *fc = reg(m, &c), *fg = reg(m, &g);

    (void)state;
    metrics_counter_add(metrics_series(fc, NULL, NULL), 40);
    metrics_counter_add(metrics_series(fc, NULL, NULL), 2);
    metrics_gauge_set(metrics_series(fg, NULL, NULL), -1.5);
    assert_renders(m, "# HELP t_requests_total Requests served.\\nSecond "
                      "\"line\" with a \\\\ backslash.\n"
                      "# TYPE t_requests_total counter\n"
                      "t_requests_total 42\n"
                      "# HELP t_temperature_celsius Temperature.\n"
                      "# TYPE t_temperature_celsius gauge\n"
                      "t_temperature_celsius -1.5\n");
    metrics_destroy(m);
}

static void test_unset_series_render_zero_from_registration(void **state)
{
    struct metrics *m = new_registry(NULL);
    struct metrics_desc g = {
        .name = "t_up", .type = METRICS_GAUGE, .help = "Up."};

    (void)state;
    reg(m, &g);
    assert_renders(m, "# HELP t_up Up.\n# TYPE t_up gauge\nt_up 0\n");
    metrics_destroy(m);
}

static void test_label_values_escaped(void **state)
{
    struct metrics *m = new_registry(NULL);
    struct metrics_desc d = {
        .name = "t_events_total",
        .type = METRICS_COUNTER,
        .help = "Events.",
        .labels = {{.name = "rule", .cap = 4}},
        .n_labels = 1};
    struct metrics_family *f = reg(m, &d);

    (void)state;
    metrics_counter_add(metrics_series(f, "a\"b\\c\nd", NULL), 3);
    metrics_counter_add(metrics_series(f, "caf\xc3\xa9 {x=1}", NULL), 1);
    assert_renders(m, "# HELP t_events_total Events.\n"
                      "# TYPE t_events_total counter\n"
                      "t_events_total{rule=\"a\\\"b\\\\c\\nd\"} 3\n"
                      "t_events_total{rule=\"caf\xc3\xa9 {x=1}\"} 1\n");
    metrics_destroy(m);
}

static void test_double_formatting_round_trips(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {-0.5, "-0.5"},
        {1e21, "1e+21"},
        {123456789012.0, "123456789012"},
        {1.0 / 3.0, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {5e-324, "4.94065645841247e-324"}, /* shortest that reads back */
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    struct metrics *m = new_registry(NULL);
    struct metrics_desc d = {.name = "t_value", .type = METRICS_GAUGE,
                             .help = "V."};
    struct metrics_family *f = reg(m, &d);
    char line[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        metrics_gauge_set(metrics_series(f, NULL, NULL), cases[i].v);
        snprintf(line, sizeof(line), "t_value %s", cases[i].text);
        if (!renders_line(m, line)) {
            fail_msg("case %zu: no line \"%s\"", i, line);
        }
    }
    metrics_destroy(m);
}

static void test_counter_holds_full_uint64(void **state)
{
    struct metrics *m = new_registry(NULL);
    struct metrics_desc d = {.name = "t_big_total", .type = METRICS_COUNTER,
                             .help = "Big."};
    struct metrics_series *s = metrics_series(reg(m, &d), NULL, NULL);

    (void)state;
    metrics_counter_set(s, UINT64_MAX);
    assert_true(renders_line(m, "t_big_total 18446744073709551615"));
    assert_true(metrics_counter_value(s) == UINT64_MAX);
    metrics_destroy(m);
}

/* ---- labels and caps --------------------------------------------------- */

static const char *const colours[] = {"red", "green", "blue"};

static void test_fixed_labels_render_all_values_unknown_folds(void **state)
{
    struct metrics *m = new_registry("t_label_overflow_total");
    struct metrics_desc d = {
        .name = "t_paint_total",
        .type = METRICS_COUNTER,
        .help = "Paint.",
        .labels = {{.name = "colour", .values = colours, .n_values = 3}},
        .n_labels = 1};
    struct metrics_family *f = reg(m, &d);

    (void)state;
    metrics_counter_add(metrics_series(f, "green", NULL), 2);
    metrics_counter_add(metrics_series_at(f, 2, 0), 5);
    assert_renders(m, "# HELP t_paint_total Paint.\n"
                      "# TYPE t_paint_total counter\n"
                      "t_paint_total{colour=\"red\"} 0\n"
                      "t_paint_total{colour=\"green\"} 2\n"
                      "t_paint_total{colour=\"blue\"} 5\n"
                      "# HELP t_label_overflow_total Label values folded into "
                      "_other (label cap reached or value not allowed), by "
                      "metric.\n"
                      "# TYPE t_label_overflow_total counter\n"
                      "t_label_overflow_total{metric=\"t_paint_total\"} 0\n");
    /* An undeclared value, NULL and an index past the set fold. */
    metrics_counter_add(metrics_series(f, "purple", NULL), 1);
    metrics_counter_add(metrics_series(f, NULL, NULL), 1);
    metrics_counter_add(metrics_series_at(f, 3, 0), 1);
    assert_int_equal(metrics_family_overflows(f), 3);
    assert_true(renders_line(m, "t_paint_total{colour=\"_other\"} 3"));
    assert_true(
        renders_line(m, "t_label_overflow_total{metric=\"t_paint_total\"} 3"));
    metrics_destroy(m);
}

static void test_capped_label_folds_past_cap_and_keeps_sum(void **state)
{
    struct metrics *m = new_registry("t_label_overflow_total");
    struct metrics_desc d = {.name = "t_hits_total",
                             .type = METRICS_COUNTER,
                             .help = "Hits.",
                             .labels = {{.name = "rule", .cap = 2}},
                             .n_labels = 1};
    struct metrics_family *f = reg(m, &d);
    char too_long[METRICS_VALUE_MAX + 2];

    (void)state;
    memset(too_long, 'x', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    metrics_counter_add(metrics_series(f, "a", NULL), 1);
    metrics_counter_add(metrics_series(f, "b", NULL), 10);
    metrics_counter_add(metrics_series(f, "a", NULL), 1);
    metrics_counter_add(metrics_series(f, "c", NULL), 100);
    metrics_counter_add(metrics_series(f, "d", NULL), 1000);
    assert_int_equal(metrics_family_overflows(f), 2);
    /* Not allowed even with room: bad UTF-8, too long; "_other" itself is
     * the overflow series but not an overflow. */
    metrics_counter_add(metrics_series(f, "\xff", NULL), 1);
    metrics_counter_add(metrics_series(f, too_long, NULL), 1);
    metrics_counter_add(metrics_series(f, METRICS_OTHER, NULL), 1);
    assert_int_equal(metrics_family_overflows(f), 4);
    assert_renders(m, "# HELP t_hits_total Hits.\n"
                      "# TYPE t_hits_total counter\n"
                      "t_hits_total{rule=\"a\"} 2\n"
                      "t_hits_total{rule=\"b\"} 10\n"
                      "t_hits_total{rule=\"_other\"} 1103\n"
                      "# HELP t_label_overflow_total Label values folded into "
                      "_other (label cap reached or value not allowed), by "
                      "metric.\n"
                      "# TYPE t_label_overflow_total counter\n"
                      "t_label_overflow_total{metric=\"t_hits_total\"} 4\n");
    metrics_destroy(m);
}

static void test_two_labels_render_touched_series_only(void **state)
{
    static const char *const states[] = {"pending", "firing", "resolved"};
    struct metrics *m = new_registry(NULL);
    struct metrics_desc d = {
        .name = "t_transitions_total",
        .type = METRICS_COUNTER,
        .help = "Transitions.",
        .labels = {{.name = "rule", .cap = 8},
                   {.name = "state", .values = states, .n_values = 3}},
        .n_labels = 2};
    struct metrics_family *f = reg(m, &d);

    (void)state;
    metrics_counter_add(metrics_series(f, "wait", "firing"), 1);
    metrics_counter_add(metrics_series(f, "nps", "pending"), 1);
    metrics_counter_add(metrics_series(f, "wait", "resolved"), 1);
    metrics_counter_add(metrics_series(f, "wait", "firing"), 1);
    assert_renders(m, "# HELP t_transitions_total Transitions.\n"
                      "# TYPE t_transitions_total counter\n"
                      "t_transitions_total{rule=\"wait\",state=\"firing\"} 2\n"
                      "t_transitions_total{rule=\"wait\",state=\"resolved\"} 1\n"
                      "t_transitions_total{rule=\"nps\",state=\"pending\"} 1\n");
    metrics_destroy(m);
}

static void test_hide_and_retain_remove_series_until_updated(void **state)
{
    struct metrics *m = new_registry(NULL);
    struct metrics_desc d = {.name = "t_lag",
                             .type = METRICS_GAUGE,
                             .help = "Lag.",
                             .labels = {{.name = "partition", .cap = 4}},
                             .n_labels = 1};
    struct metrics_family *f = reg(m, &d);
    struct metrics_series *p0 = metrics_series(f, "0", NULL);
    struct metrics_series *p1 = metrics_series(f, "1", NULL);
    struct metrics_series *p2 = metrics_series(f, "2", NULL);

    (void)state;
    /* Looked up but never set: not rendered. */
    assert_renders(m, "# HELP t_lag Lag.\n# TYPE t_lag gauge\n");
    metrics_gauge_set(p0, 5);
    metrics_gauge_set(p1, 6);
    metrics_gauge_set(p2, 7);
    metrics_family_retain(f, &p1, 1);
    assert_renders(m, "# HELP t_lag Lag.\n# TYPE t_lag gauge\n"
                      "t_lag{partition=\"1\"} 6\n");
    metrics_series_hide(p1);
    metrics_gauge_set(p0, 1);
    assert_renders(m, "# HELP t_lag Lag.\n# TYPE t_lag gauge\n"
                      "t_lag{partition=\"0\"} 1\n");
    assert_true(metrics_series(f, "1", NULL) == p1);
    metrics_destroy(m);
}

/* ---- histograms -------------------------------------------------------- */

static void test_histogram_buckets_cumulative_with_inf_sum_count(void **state)
{
    static const double buckets[] = {0.25, 1, 10};
    static const char *const ops[] = {"read", "write"};
    struct metrics *m = new_registry(NULL);
    struct metrics_desc d = {
        .name = "t_latency_seconds",
        .type = METRICS_HISTOGRAM,
        .help = "Latency.",
        .labels = {{.name = "op", .values = ops, .n_values = 2}},
        .n_labels = 1,
        .buckets = buckets,
        .n_buckets = 3};
    struct metrics_family *f = reg(m, &d);
    struct metrics_series *r = metrics_series(f, "read", NULL);

    (void)state;
    metrics_observe(r, 0.125);
    metrics_observe(r, 0.25); /* on a bound: counts in that bucket */
    metrics_observe(r, 0.5);
    metrics_observe(r, 4);
    metrics_observe(r, 64);
    metrics_observe(r, NAN); /* ignored */
    assert_int_equal(metrics_histogram_count(r), 5);
    assert_true(metrics_histogram_sum(r) == 68.875);
    assert_renders(m, "# HELP t_latency_seconds Latency.\n"
                      "# TYPE t_latency_seconds histogram\n"
                      "t_latency_seconds_bucket{op=\"read\",le=\"0.25\"} 2\n"
                      "t_latency_seconds_bucket{op=\"read\",le=\"1\"} 3\n"
                      "t_latency_seconds_bucket{op=\"read\",le=\"10\"} 4\n"
                      "t_latency_seconds_bucket{op=\"read\",le=\"+Inf\"} 5\n"
                      "t_latency_seconds_sum{op=\"read\"} 68.875\n"
                      "t_latency_seconds_count{op=\"read\"} 5\n"
                      "t_latency_seconds_bucket{op=\"write\",le=\"0.25\"} 0\n"
                      "t_latency_seconds_bucket{op=\"write\",le=\"1\"} 0\n"
                      "t_latency_seconds_bucket{op=\"write\",le=\"10\"} 0\n"
                      "t_latency_seconds_bucket{op=\"write\",le=\"+Inf\"} 0\n"
                      "t_latency_seconds_sum{op=\"write\"} 0\n"
                      "t_latency_seconds_count{op=\"write\"} 0\n");
    metrics_destroy(m);
}

static void test_unlabelled_histogram_golden(void **state)
{
    static const double buckets[] = {0.001, 0.1};
    struct metrics *m = new_registry(NULL);
    struct metrics_desc d = {.name = "t_flush_seconds",
                             .type = METRICS_HISTOGRAM,
                             .help = "Flush.",
                             .buckets = buckets,
                             .n_buckets = 2};
    struct metrics_series *s = metrics_series(reg(m, &d), NULL, NULL);

    (void)state;
    metrics_observe(s, 0.5);
    metrics_observe(s, -1); /* below every bound: the first bucket */
    assert_renders(m, "# HELP t_flush_seconds Flush.\n"
                      "# TYPE t_flush_seconds histogram\n"
                      "t_flush_seconds_bucket{le=\"0.001\"} 1\n"
                      "t_flush_seconds_bucket{le=\"0.1\"} 1\n"
                      "t_flush_seconds_bucket{le=\"+Inf\"} 2\n"
                      "t_flush_seconds_sum -0.5\n"
                      "t_flush_seconds_count 2\n");
    metrics_destroy(m);
}

/* ---- registration ------------------------------------------------------ */

static const double good_buckets[] = {1, 2};
static const double flat_buckets[] = {1, 1};
static const double nan_buckets[] = {1, NAN};
static const char *const dup_values[] = {"a", "a"};
static const char *const other_values[] = {"a", METRICS_OTHER};

static void test_registration_rejects_bad_descriptions(void **state)
{
    static const struct {
        struct metrics_desc d;
        const char *error;
    } cases[] = {
        {{.name = "1abc_total", .type = METRICS_COUNTER, .help = "h"},
         "metric 1abc_total: name must match"},
        {{.name = "a-b_total", .type = METRICS_COUNTER, .help = "h"},
         "name must match"},
        {{.name = "", .type = METRICS_COUNTER, .help = "h"},
         "name must match"},
        {{.name = NULL, .type = METRICS_GAUGE, .help = "h"},
         "metric (null): name must match"},
        {{.name = "t_requests", .type = METRICS_COUNTER, .help = "h"},
         "metric t_requests: counter names end in _total"},
        {{.name = "t_up_total", .type = METRICS_GAUGE, .help = "h"},
         "only counter names end in _total"},
        {{.name = "t_x_bucket", .type = METRICS_GAUGE, .help = "h"},
         "suffixes _bucket, _sum and _count are reserved"},
        {{.name = "t_x_count", .type = METRICS_HISTOGRAM, .help = "h",
          .buckets = good_buckets, .n_buckets = 2},
         "reserved"},
        {{.name = "t_x", .type = METRICS_GAUGE, .help = ""},
         "metric t_x: help text is empty"},
        {{.name = "t_x", .type = METRICS_GAUGE, .help = "h",
          .labels = {{.name = "__x", .cap = 1}}, .n_labels = 1},
         "without a leading __"},
        {{.name = "t_x", .type = METRICS_GAUGE, .help = "h",
          .labels = {{.name = "a-b", .cap = 1}}, .n_labels = 1},
         "label name must match"},
        {{.name = "t_x", .type = METRICS_GAUGE, .help = "h",
          .labels = {{.name = "le", .cap = 1}}, .n_labels = 1},
         "le and quantile are reserved"},
        {{.name = "t_x", .type = METRICS_GAUGE, .help = "h",
          .labels = {{.name = "a", .cap = 1}, {.name = "a", .cap = 1}},
          .n_labels = 2},
         "label names repeat"},
        {{.name = "t_x", .type = METRICS_GAUGE, .help = "h", .n_labels = 3},
         "at most 2 labels"},
        {{.name = "t_x", .type = METRICS_GAUGE, .help = "h",
          .labels = {{.name = "a", .cap = 0}}, .n_labels = 1},
         "label cap must be 1..65536"},
        {{.name = "t_x", .type = METRICS_GAUGE, .help = "h",
          .labels = {{.name = "a", .values = dup_values, .n_values = 2}},
          .n_labels = 1},
         "fixed label values repeat"},
        {{.name = "t_x", .type = METRICS_GAUGE, .help = "h",
          .labels = {{.name = "a", .values = other_values, .n_values = 2}},
          .n_labels = 1},
         "not _other"},
        {{.name = "t_x", .type = METRICS_GAUGE, .help = "h",
          .labels = {{.name = "a", .values = dup_values, .n_values = 0}},
          .n_labels = 1},
         "a fixed label needs 1..65536 values"},
        {{.name = "t_x", .type = METRICS_HISTOGRAM, .help = "h"},
         "a histogram needs 1..32 buckets"},
        {{.name = "t_x", .type = METRICS_HISTOGRAM, .help = "h",
          .buckets = flat_buckets, .n_buckets = 2},
         "strictly increasing"},
        {{.name = "t_x", .type = METRICS_HISTOGRAM, .help = "h",
          .buckets = nan_buckets, .n_buckets = 2},
         "finite"},
        {{.name = "t_x", .type = METRICS_GAUGE, .help = "h",
          .buckets = good_buckets, .n_buckets = 2},
         "only histograms have buckets"},
        {{.name = "t_x", .type = METRICS_GAUGE, .help = "h",
          .labels = {{.name = "a", .cap = 65536}, {.name = "b", .cap = 64}},
          .n_labels = 2},
         "allow more than"},
        {{.name = "t_overflow_total", .type = METRICS_COUNTER, .help = "h"},
         "name taken by the overflow counter"},
        {{.name = "t_dup", .type = METRICS_GAUGE, .help = "h"},
         "metric t_dup: registered twice"},
    };
    struct metrics *m = new_registry("t_overflow_total");
    struct metrics_desc dup = {.name = "t_dup", .type = METRICS_GAUGE,
                               .help = "h"};

    (void)state;
    reg(m, &dup);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        errbuf[0] = '\0';
        if (metrics_register(m, &cases[i].d, errbuf, sizeof(errbuf)) != NULL) {
            fail_msg("case %zu (%s) was accepted", i, cases[i].error);
        }
        if (strstr(errbuf, cases[i].error) == NULL) {
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, errbuf,
                     cases[i].error);
        }
    }
    assert_non_null(metrics_find(m, "t_dup"));
    assert_null(metrics_find(m, "t_x"));
    metrics_destroy(m);
}

static void test_overflow_name_validated(void **state)
{
    (void)state;
    assert_null(metrics_new("bad name_total", errbuf, sizeof(errbuf)));
    assert_non_null(strstr(errbuf, "ending in _total"));
    assert_null(metrics_new("t_overflow", errbuf, sizeof(errbuf)));
}

static void test_registry_holds_at_most_max_families(void **state)
{
    struct metrics *m = new_registry(NULL);
    char name[32];

    (void)state;
    for (int i = 0; i <= METRICS_MAX_FAMILIES; i++) {
        struct metrics_desc d = {.name = name, .type = METRICS_GAUGE,
                                 .help = "h"};
        struct metrics_family *f;

        snprintf(name, sizeof(name), "t_g%d", i);
        f = metrics_register(m, &d, errbuf, sizeof(errbuf));
        if (i < METRICS_MAX_FAMILIES) {
            assert_non_null(f);
        } else {
            assert_null(f);
            assert_non_null(strstr(errbuf, "more than 64 families"));
        }
    }
    metrics_destroy(m);
}

static void test_null_handles_are_no_ops(void **state)
{
    (void)state;
    assert_null(metrics_series(NULL, "a", NULL));
    assert_null(metrics_series_at(NULL, 0, 0));
    metrics_counter_add(NULL, 1);
    metrics_counter_set(NULL, 1);
    metrics_gauge_set(NULL, 1);
    metrics_gauge_add(NULL, 1);
    metrics_observe(NULL, 1);
    metrics_series_hide(NULL);
    metrics_family_retain(NULL, NULL, 0);
    assert_int_equal(metrics_counter_value(NULL), 0);
    assert_null(metrics_catalog_series(NULL, MC_FLUSHES, NULL, NULL));
    metrics_catalog_set(NULL, MC_TENANTS, 1);
    metrics_catalog_flush(NULL, 1, 1);
}

/* ---- threads ----------------------------------------------------------- */

#define N_THREADS 4
#define N_ITER 100000

struct hammer {
    struct metrics_family *counter, *gauge, *hist, *labelled;
    int id;
};

static void *hammer_run(void *arg)
{
    const struct hammer *h = arg;
    struct metrics_series *c = metrics_series(h->counter, NULL, NULL);
    struct metrics_series *g = metrics_series(h->gauge, NULL, NULL);
    struct metrics_series *hs = metrics_series(h->hist, NULL, NULL);
    char v[8];

    for (int i = 0; i < N_ITER; i++) {
        metrics_counter_add(c, 1);
        metrics_gauge_add(g, 1.0);
        metrics_observe(hs, (double)(i % 4));
        /* Every thread races to create the same 16 label values. */
        snprintf(v, sizeof(v), "v%d", (i + h->id) % 16);
        metrics_counter_add(metrics_series(h->labelled, v, NULL), 1);
    }
    return NULL;
}

struct renderer {
    struct metrics *m;
    atomic_int *stop;
    int renders;
};

static void *render_run(void *arg)
{
    struct renderer *r = arg;

    while (!atomic_load(r->stop)) {
        char *out = NULL;
        size_t len;

        if (metrics_render(r->m, &out, &len) == 0) {
            r->renders++;
        }
        free(out);
    }
    return NULL;
}

static void test_threads_give_exact_totals_while_rendering(void **state)
{
    static const double buckets[] = {0.5, 1.5, 2.5};
    struct metrics *m = new_registry("t_overflow_total");
    struct metrics_desc dc = {.name = "t_c_total", .type = METRICS_COUNTER,
                              .help = "c"};
    struct metrics_desc dg = {.name = "t_g", .type = METRICS_GAUGE,
                              .help = "g"};
    struct metrics_desc dh = {.name = "t_h", .type = METRICS_HISTOGRAM,
                              .help = "h", .buckets = buckets, .n_buckets = 3};
    struct metrics_desc dl = {.name = "t_l_total",
                              .type = METRICS_COUNTER,
                              .help = "l",
                              .labels = {{.name = "v", .cap = 16}},
                              .n_labels = 1};
    struct hammer h[N_THREADS];
    pthread_t tid[N_THREADS], rtid;
    atomic_int stop;
    struct renderer r = {m, &stop, 0};
    uint64_t sum = 0;
    char line[64];

    (void)state;
    atomic_init(&stop, 0);
    h[0].counter = reg(m, &dc);
    h[0].gauge = reg(m, &dg);
    h[0].hist = reg(m, &dh);
    h[0].labelled = reg(m, &dl);
    assert_int_equal(pthread_create(&rtid, NULL, render_run, &r), 0);
    for (int i = 0; i < N_THREADS; i++) {
        h[i] = h[0];
        h[i].id = i;
        assert_int_equal(pthread_create(&tid[i], NULL, hammer_run, &h[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(tid[i], NULL);
    }
    atomic_store(&stop, 1);
    pthread_join(rtid, NULL);

    assert_true(r.renders > 0);
    assert_int_equal(metrics_counter_value(metrics_series(h[0].counter, NULL,
                                                          NULL)),
                     N_THREADS * N_ITER);
    assert_true(metrics_gauge_value(metrics_series(h[0].gauge, NULL, NULL)) ==
                (double)(N_THREADS * N_ITER));
    assert_int_equal(
        metrics_histogram_count(metrics_series(h[0].hist, NULL, NULL)),
        N_THREADS * N_ITER);
    /* 0,1,2,3 repeating: the sum is 1.5 per observation, exactly. */
    assert_true(metrics_histogram_sum(metrics_series(h[0].hist, NULL, NULL)) ==
                1.5 * N_THREADS * N_ITER);
    snprintf(line, sizeof(line), "t_h_bucket{le=\"1.5\"} %d",
             N_THREADS * N_ITER / 2);
    assert_true(renders_line(m, line));
    for (int i = 0; i < 16; i++) {
        snprintf(line, sizeof(line), "v%d", i);
        sum += metrics_counter_value(metrics_series(h[0].labelled, line, NULL));
    }
    assert_int_equal(sum, N_THREADS * N_ITER);
    assert_int_equal(metrics_family_overflows(h[0].labelled), 0);
    metrics_destroy(m);
}

/* ---- catalogue --------------------------------------------------------- */

/* A trimmed librdkafka statistics report: two topics, the internal UA
 * partition (-1), a partition not being fetched and one with unknown lag. */
static const char kafka_stats[] =
    "{\"name\":\"rdkafka#consumer-1\",\"type\":\"consumer\",\"topics\":{"
    "\"tp.events\":{\"topic\":\"tp.events\",\"partitions\":{"
    "\"0\":{\"partition\":0,\"fetch_state\":\"active\",\"consumer_lag\":42},"
    "\"1\":{\"partition\":1,\"fetch_state\":\"active\",\"consumer_lag\":0},"
    "\"2\":{\"partition\":2,\"fetch_state\":\"none\",\"consumer_lag\":-1},"
    "\"3\":{\"partition\":3,\"fetch_state\":\"offset-query\","
    "\"consumer_lag\":-1},"
    "\"-1\":{\"partition\":-1,\"fetch_state\":\"none\",\"consumer_lag\":-1}}},"
    "\"tp.other\":{\"topic\":\"tp.other\",\"partitions\":{"
    "\"0\":{\"partition\":0,\"fetch_state\":\"active\",\"consumer_lag\":7}}}}}";

static const char kafka_stats_after_revoke[] =
    "{\"topics\":{\"tp.events\":{\"partitions\":{"
    "\"1\":{\"partition\":1,\"fetch_state\":\"active\",\"consumer_lag\":3}}}}}";

static struct metrics_catalog *new_catalog(void)
{
    static struct metrics_catalog c;

    if (metrics_catalog_init(&c, NULL, "1.2.3", errbuf, sizeof(errbuf)) < 0) {
        fail_msg("catalog: %s", errbuf);
    }
    return &c;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void test_catalog_renders_every_metric_with_help_and_type(void **state)
{
    static const char *const expected[] = {
        "# TYPE touchpointd_messages_consumed_total counter",
        "# TYPE touchpointd_events_accepted_total counter",
        "# TYPE touchpointd_events_rejected_total counter",
        "# TYPE touchpointd_events_duplicate_total counter",
        "# TYPE touchpointd_events_late_dropped_total counter",
        "# TYPE touchpointd_orphan_ends_total counter",
        "# TYPE touchpointd_dead_letter_failures_total counter",
        "# TYPE touchpointd_consumer_lag_messages gauge",
        "# TYPE touchpointd_consumer_paused gauge",
        "# TYPE touchpointd_kafka_fetch_wakes_total counter",
        "# TYPE touchpointd_flushes_total counter",
        "# TYPE touchpointd_flush_duration_seconds histogram",
        "# TYPE touchpointd_flush_batch_cells histogram",
        "# TYPE touchpointd_redis_errors_total counter",
        "# TYPE touchpointd_redis_reconnects_total counter",
        "# TYPE touchpointd_pending_cells gauge",
        "# TYPE touchpointd_pending_cells_limit gauge",
        "# TYPE touchpointd_open_correlations gauge",
        "# TYPE touchpointd_open_correlations_limit gauge",
        "# TYPE touchpointd_correlations_evicted_total counter",
        "# TYPE touchpointd_tenants gauge",
        "# TYPE touchpointd_tenants_limit gauge",
        "# TYPE touchpointd_dims_folded_total counter",
        "# TYPE touchpointd_alert_transitions_total counter",
        "# TYPE touchpointd_alert_output_failures_total counter",
        "# TYPE touchpointd_build_info gauge",
        "# TYPE touchpointd_resident_memory_bytes gauge",
        "# TYPE touchpointd_metric_label_overflow_total counter",
        "touchpointd_build_info{version=\"1.2.3\"} 1",
        "touchpointd_events_accepted_total{type=\"dm.received\"} 0",
        "touchpointd_events_accepted_total{type=\"survey.ces\"} 0",
        "touchpointd_events_rejected_total{reason=\"too_large\"} 0",
        "touchpointd_events_rejected_total{reason=\"tenant_limit\"} 0",
        "touchpointd_flush_duration_seconds_bucket{le=\"0.001\"} 0",
        "touchpointd_flush_duration_seconds_bucket{le=\"10\"} 0",
        "touchpointd_flush_batch_cells_bucket{le=\"1000000\"} 0",
    };
    struct metrics_catalog *c = new_catalog();
    char *out = NULL;
    size_t len, n_help = 0;

    (void)state;
    assert_int_equal(MC_COUNT, 27);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        if (!renders_line(c->reg, expected[i])) {
            fail_msg("no line \"%s\"", expected[i]);
        }
    }
    assert_int_equal(metrics_catalog_render(c, &out, &len), 0);
    for (const char *p = out; (p = strstr(p, "# HELP ")) != NULL; p++) {
        n_help++;
    }
    assert_int_equal(n_help, MC_COUNT + 1);
    /* Resident memory is sampled at render time. */
    assert_true(metrics_gauge_value(metrics_catalog_series(
                    c, MC_RESIDENT_MEMORY, NULL, NULL)) > 0);
    free(out);
    metrics_catalog_release(c);
}

static void test_catalog_snapshots_pipeline_store_and_limits(void **state)
{
    struct metrics_catalog *c = new_catalog();
    struct pipeline_stats ps = {0};
    struct store_stats ss = {.commands = 9, .errors = 4, .reconnects = 2,
                             .flushes = 11};
    struct config cfg;

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    ps.messages = 100;
    ps.accepted[EV_CALL_ANSWERED] = 60;
    ps.rejected[REJ_NOT_JSON] = 5;
    ps.orphans[EV_TICKET_CLOSED] = 2;
    ps.duplicates = 7;
    ps.late_dropped = 8;
    ps.evicted = 9;
    ps.folded = 10;
    ps.open_correlations = 12;
    metrics_catalog_pipeline(c, &ps);
    metrics_catalog_store(c, &ss);
    metrics_catalog_limits(c, &cfg);
    metrics_catalog_set(c, MC_CONSUMER_PAUSED, 1);
    metrics_catalog_flush(c, 0.003, 1500);
    {
        static const char *const expected[] = {
            "touchpointd_messages_consumed_total 100",
            "touchpointd_events_accepted_total{type=\"call.answered\"} 60",
            "touchpointd_events_accepted_total{type=\"call.queued\"} 0",
            "touchpointd_events_rejected_total{reason=\"not_json\"} 5",
            "touchpointd_orphan_ends_total{type=\"ticket.closed\"} 2",
            "touchpointd_events_duplicate_total 7",
            "touchpointd_events_late_dropped_total 8",
            "touchpointd_correlations_evicted_total 9",
            "touchpointd_dims_folded_total 10",
            "touchpointd_open_correlations 12",
            "touchpointd_flushes_total 11",
            "touchpointd_redis_errors_total 4",
            "touchpointd_redis_reconnects_total 2",
            "touchpointd_pending_cells_limit 200000",
            "touchpointd_open_correlations_limit 2000000",
            "touchpointd_tenants_limit 1000",
            "touchpointd_consumer_paused 1",
            "touchpointd_flush_duration_seconds_bucket{le=\"0.0025\"} 0",
            "touchpointd_flush_duration_seconds_bucket{le=\"0.005\"} 1",
            "touchpointd_flush_duration_seconds_count 1",
            "touchpointd_flush_batch_cells_bucket{le=\"1000\"} 0",
            "touchpointd_flush_batch_cells_bucket{le=\"10000\"} 1",
            "touchpointd_flush_batch_cells_sum 1500",
        };

        for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
            if (!renders_line(c->reg, expected[i])) {
                fail_msg("no line \"%s\"", expected[i]);
            }
        }
    }
    /* A first connection is not a reconnect. */
    ss.reconnects = 0;
    metrics_catalog_store(c, &ss);
    assert_true(renders_line(c->reg, "touchpointd_redis_reconnects_total 0"));
    config_release(&cfg);
    metrics_catalog_release(c);
}

static void test_catalog_alert_labels_bounded(void **state)
{
    struct metrics_caps caps = {.rules = 2, .sinks = 1};
    struct metrics_catalog c;
    struct metrics_series *s;

    (void)state;
    assert_int_equal(metrics_catalog_init(&c, &caps, "dev", errbuf,
                                          sizeof(errbuf)),
                     0);
    metrics_counter_add(
        metrics_catalog_series(&c, MC_ALERT_TRANSITIONS, "wait", "firing"), 1);
    metrics_counter_add(
        metrics_catalog_series(&c, MC_ALERT_TRANSITIONS, "nps", "resolved"),
        1);
    metrics_counter_add(
        metrics_catalog_series(&c, MC_ALERT_TRANSITIONS, "csat", "pending"),
        1);
    metrics_counter_add(
        metrics_catalog_series(&c, MC_ALERT_TRANSITIONS, "wait", "bogus"), 1);
    s = metrics_catalog_series(&c, MC_ALERT_OUTPUT_FAILURES, "webhook", NULL);
    metrics_counter_add(s, 2);
    metrics_counter_add(
        metrics_catalog_series(&c, MC_ALERT_OUTPUT_FAILURES, "kafka", NULL), 1);
    {
        static const char *const expected[] = {
            "touchpointd_alert_transitions_total{rule=\"wait\",state="
            "\"firing\"} 1",
            "touchpointd_alert_transitions_total{rule=\"wait\",state="
            "\"_other\"} 1",
            "touchpointd_alert_transitions_total{rule=\"nps\",state="
            "\"resolved\"} 1",
            "touchpointd_alert_transitions_total{rule=\"_other\",state="
            "\"pending\"} 1",
            "touchpointd_alert_output_failures_total{sink=\"webhook\"} 2",
            "touchpointd_alert_output_failures_total{sink=\"_other\"} 1",
            "touchpointd_metric_label_overflow_total{metric="
            "\"touchpointd_alert_transitions_total\"} 2",
            "touchpointd_metric_label_overflow_total{metric="
            "\"touchpointd_alert_output_failures_total\"} 1",
        };

        for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
            if (!renders_line(c.reg, expected[i])) {
                fail_msg("no line \"%s\"", expected[i]);
            }
        }
    }
    metrics_catalog_release(&c);
}

/* 260 partitions, each 1 behind: the 4 past the cap of 256 partition
 * labels add up in _other (it held the last one's lag alone, so a
 * sum over the topic read 257 instead of 260). */
static void test_lag_past_the_partition_cap_adds_up_in_other(void **state)
{
    struct metrics_catalog *c = new_catalog();
    size_t cap = 300 * 64 + 128, len = 0;
    char *json = malloc(cap);

    (void)state;
    assert_non_null(json);
    len += (size_t)snprintf(json, cap, "{\"topics\":{\"big\":{\"partitions\":{");
    for (int i = 0; i < 260; i++) {
        len += (size_t)snprintf(json + len, cap - len,
                                "%s\"%d\":{\"partition\":%d,"
                                "\"fetch_state\":\"active\",\"consumer_lag\":1}",
                                i ? "," : "", i, i);
    }
    len += (size_t)snprintf(json + len, cap - len, "}}}}");
    for (int round = 0; round < 2; round++) { /* a second report: not 8 */
        assert_int_equal(
            metrics_catalog_kafka_stats(c, json, len, errbuf, sizeof(errbuf)),
            0);
        assert_true(renders_line(c->reg,
                                 "touchpointd_consumer_lag_messages{topic="
                                 "\"big\",partition=\"_other\"} 4"));
        assert_true(renders_line(c->reg,
                                 "touchpointd_consumer_lag_messages{topic="
                                 "\"big\",partition=\"255\"} 1"));
    }
    free(json);
    metrics_catalog_release(c);
}

static void test_catalog_reads_consumer_lag_from_kafka_stats(void **state)
{
    struct metrics_catalog *c = new_catalog();

    (void)state;
    assert_int_equal(metrics_catalog_kafka_stats(c, kafka_stats,
                                                 strlen(kafka_stats), errbuf,
                                                 sizeof(errbuf)),
                     0);
    assert_true(renders_line(
        c->reg, "touchpointd_consumer_lag_messages{topic=\"tp.events\","
                "partition=\"0\"} 42"));
    assert_true(renders_line(
        c->reg, "touchpointd_consumer_lag_messages{topic=\"tp.events\","
                "partition=\"1\"} 0"));
    assert_true(renders_line(
        c->reg, "touchpointd_consumer_lag_messages{topic=\"tp.other\","
                "partition=\"0\"} 7"));
    {
        char *out = NULL;
        size_t len, n = 0;

        assert_int_equal(metrics_render(c->reg, &out, &len), 0);
        for (const char *p = out;
             (p = strstr(p, "\ntouchpointd_consumer_lag_messages{")) != NULL;
             p++) {
            n++;
        }
        assert_int_equal(n, 3); /* not 2, 3 or -1 */
        free(out);
    }
    /* Partition 0 revoked, topic tp.other gone: only partition 1 stays. */
    assert_int_equal(metrics_catalog_kafka_stats(
                         c, kafka_stats_after_revoke,
                         strlen(kafka_stats_after_revoke), errbuf,
                         sizeof(errbuf)),
                     0);
    assert_true(renders_line(
        c->reg, "touchpointd_consumer_lag_messages{topic=\"tp.events\","
                "partition=\"1\"} 3"));
    assert_false(renders_line(
        c->reg, "touchpointd_consumer_lag_messages{topic=\"tp.events\","
                "partition=\"0\"} 42"));
    assert_false(renders_line(
        c->reg, "touchpointd_consumer_lag_messages{topic=\"tp.other\","
                "partition=\"0\"} 7"));
    /* Garbage is an error and leaves the gauges alone. */
    assert_int_equal(metrics_catalog_kafka_stats(c, "{\"topics\":", 10, errbuf,
                                                 sizeof(errbuf)),
                     -1);
    assert_non_null(strstr(errbuf, "kafka statistics: line 1"));
    assert_int_equal(
        metrics_catalog_kafka_stats(c, "[1]", 3, errbuf, sizeof(errbuf)), -1);
    assert_non_null(strstr(errbuf, "\"topics\" object"));
    assert_true(renders_line(
        c->reg, "touchpointd_consumer_lag_messages{topic=\"tp.events\","
                "partition=\"1\"} 3"));
    metrics_catalog_release(c);
}

static void test_catalog_markdown_lists_every_metric(void **state)
{
    struct metrics_catalog *c = new_catalog();
    char *md = NULL, *out = NULL;
    size_t md_len = 0, len;
    FILE *f = open_memstream(&md, &md_len);
    const char *path;

    (void)state;
    assert_non_null(f);
    metrics_catalog_write_markdown(f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(md, "| Metric | Type | Labels | Meaning |\n"));
    assert_non_null(strstr(
        md, "| `touchpointd_consumer_lag_messages` | gauge | `topic` (up to "
            "`caps.topics`), `partition` (up to `caps.partitions` ids) |"));
    assert_non_null(strstr(md, "Buckets: 0.001, 0.0025,"));
    /* Every family in the exposition has its row. */
    assert_int_equal(metrics_render(c->reg, &out, &len), 0);
    for (const char *p = out; (p = strstr(p, "# TYPE ")) != NULL; p++) {
        char name[128], row[140];

        assert_int_equal(sscanf(p, "# TYPE %127s", name), 1);
        snprintf(row, sizeof(row), "| `%s` |", name);
        if (strstr(md, row) == NULL) {
            fail_msg("markdown has no row for %s", name);
        }
    }
    path = getenv("TP_METRICS_MARKDOWN");
    if (path != NULL) {
        write_file(path, md);
    }
    free(out);
    free(md);
    metrics_catalog_release(c);
}

/* Fills every metric of the catalogue, renders it and, with
 * TP_METRICS_SAMPLE set, writes it there for promtool. */
static void test_catalog_sample_exposition(void **state)
{
    struct metrics_catalog *c = new_catalog();
    struct pipeline_stats ps = {0};
    struct store_stats ss = {.errors = 1, .reconnects = 1, .flushes = 3};
    char *out = NULL;
    size_t len;
    const char *path = getenv("TP_METRICS_SAMPLE");

    (void)state;
    ps.messages = 10;
    ps.accepted[EV_DM_RECEIVED] = 4;
    ps.rejected[REJ_MISSING_FIELD] = 1;
    metrics_catalog_pipeline(c, &ps);
    metrics_catalog_store(c, &ss);
    metrics_catalog_flush(c, 0.02, 42);
    metrics_catalog_set(c, MC_PENDING_CELLS, 17);
    metrics_catalog_set(c, MC_TENANTS, 2);
    assert_int_equal(metrics_catalog_kafka_stats(c, kafka_stats,
                                                 strlen(kafka_stats), errbuf,
                                                 sizeof(errbuf)),
                     0);
    metrics_counter_add(metrics_catalog_series(c, MC_ALERT_TRANSITIONS,
                                               "wait \"p95\"\\x\n", "firing"),
                        1);
    metrics_counter_add(
        metrics_catalog_series(c, MC_ALERT_OUTPUT_FAILURES, "webhook", NULL), 1);
    metrics_counter_add(
        metrics_catalog_series(c, MC_DEAD_LETTER_FAILURES, NULL, NULL), 1);
    assert_int_equal(metrics_catalog_render(c, &out, &len), 0);
    assert_non_null(strstr(out, "rule=\"wait \\\"p95\\\"\\\\x\\n\""));
    if (path != NULL) {
        write_file(path, out);
    }
    free(out);
    metrics_catalog_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_registry_renders_nothing),
        cmocka_unit_test(test_counter_and_gauge_golden_with_help_escaped),
        cmocka_unit_test(test_unset_series_render_zero_from_registration),
        cmocka_unit_test(test_label_values_escaped),
        cmocka_unit_test(test_double_formatting_round_trips),
        cmocka_unit_test(test_counter_holds_full_uint64),
        cmocka_unit_test(test_fixed_labels_render_all_values_unknown_folds),
        cmocka_unit_test(test_capped_label_folds_past_cap_and_keeps_sum),
        cmocka_unit_test(test_two_labels_render_touched_series_only),
        cmocka_unit_test(test_hide_and_retain_remove_series_until_updated),
        cmocka_unit_test(test_histogram_buckets_cumulative_with_inf_sum_count),
        cmocka_unit_test(test_unlabelled_histogram_golden),
        cmocka_unit_test(test_registration_rejects_bad_descriptions),
        cmocka_unit_test(test_overflow_name_validated),
        cmocka_unit_test(test_registry_holds_at_most_max_families),
        cmocka_unit_test(test_null_handles_are_no_ops),
        cmocka_unit_test(test_threads_give_exact_totals_while_rendering),
        cmocka_unit_test(test_catalog_renders_every_metric_with_help_and_type),
        cmocka_unit_test(test_catalog_snapshots_pipeline_store_and_limits),
        cmocka_unit_test(test_catalog_alert_labels_bounded),
        cmocka_unit_test(test_catalog_reads_consumer_lag_from_kafka_stats),
        cmocka_unit_test(test_lag_past_the_partition_cap_adds_up_in_other),
        cmocka_unit_test(test_catalog_markdown_lists_every_metric),
        cmocka_unit_test(test_catalog_sample_exposition),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
