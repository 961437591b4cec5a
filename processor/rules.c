/* SPDX-License-Identifier: Apache-2.0 */
/* rules: the alert rule model: metrics, conditions, templates, rule sets. */
#include "rules.h"

#include <stdlib.h>
#include <string.h>

/* ---- metrics (schemas/redis.md) ---- */

#define WAIT                                                                   \
    {                                                                          \
        "wait_n", NULL                                                         \
    }
#define TTR                                                                    \
    {                                                                          \
        "ttr_n", NULL                                                          \
    }
#define NPS                                                                    \
    {                                                                          \
        "nps_n", NULL                                                          \
    }
#define CSAT                                                                   \
    {                                                                          \
        "csat_n", NULL                                                         \
    }
#define NONE                                                                   \
    {                                                                          \
        NULL, NULL                                                             \
    }

static const struct rule_metric metrics[] = {
    {"events", false, false, NONE},
    {"wait_n", false, false, NONE},
    {"wait_mean_ms", false, false, WAIT},
    {"wait_p50_ms", false, false, WAIT},
    {"wait_p90_ms", false, false, WAIT},
    {"wait_p99_ms", false, false, WAIT},
    {"wait_max_ms", false, false, WAIT},
    {"answered", false, false, NONE},
    {"abandoned", false, false, NONE},
    {"abandon_rate", false, true, {"answered", "abandoned"}},
    {"sl_n", false, false, NONE},
    {"sl_met", false, false, {"sl_n", NULL}},
    {"sl_pct", false, true, {"sl_n", NULL}},
    {"ttr_n", false, false, NONE},
    {"ttr_mean_ms", false, false, TTR},
    {"ttr_p50_ms", false, false, TTR},
    {"ttr_p90_ms", false, false, TTR},
    {"ttr_max_ms", false, false, TTR},
    {"nps_n", false, false, NONE},
    {"promoters", false, false, NPS},
    {"passives", false, false, NPS},
    {"detractors", false, false, NPS},
    {"nps", false, false, NPS},
    {"detractor_rate", false, true, NPS},
    {"csat_n", false, false, NONE},
    {"csat_pct", false, true, CSAT},
    {"csat_mean", false, false, CSAT},
    {"ces_n", false, false, NONE},
    {"ces_mean", false, false, {"ces_n", NULL}},
    {"open_tickets", true, false, NONE},
    {"waiting_dms", true, false, NONE},
    {"waiting_calls", true, false, NONE},
    {"oldest_wait_ms", true, false, NONE},
};

#define N_METRICS (sizeof(metrics) / sizeof(metrics[0]))

const struct rule_metric *rules_metric(const char *name)
{
    for (size_t i = 0; i < N_METRICS; i++) {
        if (strcmp(metrics[i].name, name) == 0) {
            return &metrics[i];
        }
    }
    return NULL;
}

/* ---- kinds ---- */

static const char *const kind_names[] = {
    [RULE_ABOVE] = "above",
    [RULE_BELOW] = "below",
    [RULE_ABOVE_BASELINE] = "above_baseline",
    [RULE_BELOW_BASELINE] = "below_baseline",
    [RULE_ABOVE_ZSCORE] = "above_zscore",
    [RULE_BELOW_ZSCORE] = "below_zscore",
    [RULE_NO_DATA] = "no_data_for",
};

const char *rules_kind_name(enum rule_kind kind)
{
    return kind_names[kind];
}

bool rules_kind_above(enum rule_kind kind)
{
    return kind == RULE_ABOVE || kind == RULE_ABOVE_BASELINE ||
           kind == RULE_ABOVE_ZSCORE || kind == RULE_NO_DATA;
}

bool rules_kind_zscore(enum rule_kind kind)
{
    return kind == RULE_ABOVE_ZSCORE || kind == RULE_BELOW_ZSCORE;
}

bool rules_kind_baseline(enum rule_kind kind)
{
    return kind == RULE_ABOVE_BASELINE || kind == RULE_BELOW_BASELINE ||
           rules_kind_zscore(kind);
}

/* ---- templates ---- */

static const char *const field_names[RULE_FIELDS] = {
    [RULE_F_VALUE] = "value",       [RULE_F_THRESHOLD] = "threshold",
    [RULE_F_BASELINE] = "baseline", [RULE_F_TENANT] = "tenant",
    [RULE_F_CHANNEL] = "channel",   [RULE_F_QUEUE] = "queue",
    [RULE_F_RULE] = "rule",         [RULE_F_METRIC] = "metric",
    [RULE_F_WINDOW] = "window",
};

/* The placeholder at s ("{{" already seen at s): its field and the bytes it
 * spans, or -1. */
static int placeholder_at(const char *s, size_t *span)
{
    const char *p = s + 2, *end = strstr(p, "}}");
    size_t len;

    if (end == NULL) {
        return -1;
    }
    *span = (size_t)(end + 2 - s);
    p += strspn(p, " ");
    len = (size_t)(end - p);
    while (len > 0 && p[len - 1] == ' ') {
        len--;
    }
    for (int f = 0; f < RULE_FIELDS; f++) {
        if (strlen(field_names[f]) == len &&
            strncmp(field_names[f], p, len) == 0) {
            return f;
        }
    }
    return -1;
}

static int walk(const char *tmpl,
                int (*emit)(void *ctx, int field, const char *text, size_t len),
                void *ctx)
{
    const char *s = tmpl;

    while (*s != '\0') {
        const char *open = strstr(s, "{{");
        size_t lit = open ? (size_t)(open - s) : strlen(s), span = 0;
        int field, rc;

        if (lit > 0 && emit && (rc = emit(ctx, -1, s, lit)) != 0) {
            return rc;
        }
        if (open == NULL) {
            break;
        }
        if ((field = placeholder_at(open, &span)) < 0) {
            return -1;
        }
        if (emit && (rc = emit(ctx, field, NULL, 0)) != 0) {
            return rc;
        }
        s = open + span;
    }
    return 0;
}

int rules_template_walk(const char *tmpl,
                        int (*emit)(void *ctx, int field, const char *text,
                                    size_t len),
                        void *ctx)
{
    if (walk(tmpl, NULL, NULL) < 0) {
        return -1;
    }
    return walk(tmpl, emit, ctx);
}

/* ---- rules and sets ---- */

static void free_pairs(struct rule_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

void rules_rule_release(struct rule *r)
{
    free(r->name);
    for (int d = 0; d < RULE_DIMS; d++) {
        for (size_t i = 0; i < r->match[d].n; i++) {
            free(r->match[d].globs[i]);
        }
        free(r->match[d].globs);
    }
    free(r->severity);
    free(r->summary);
    free_pairs(r->labels, r->n_labels);
    free_pairs(r->annotations, r->n_annotations);
    free(r->src);
    memset(r, 0, sizeof(*r));
}

struct rules *rules_new(void)
{
    return calloc(1, sizeof(struct rules));
}

void rules_destroy(struct rules *rs)
{
    if (rs == NULL) {
        return;
    }
    for (size_t i = 0; i < rs->n; i++) {
        rules_rule_release(&rs->v[i]);
    }
    free(rs->v);
    free(rs);
}

const struct rule *rules_find(const struct rules *rs, const char *name)
{
    for (size_t i = 0; i < rs->n; i++) {
        if (strcmp(rs->v[i].name, name) == 0) {
            return &rs->v[i];
        }
    }
    return NULL;
}

static int grow(struct rules *rs)
{
    size_t cap = rs->cap ? rs->cap * 2 : 8;
    struct rule *v;

    if (rs->n < rs->cap) {
        return 0;
    }
    if ((v = realloc(rs->v, cap * sizeof(*v))) == NULL) {
        return -1;
    }
    rs->v = v;
    rs->cap = cap;
    return 0;
}

void rules_truncate(struct rules *rs, size_t n)
{
    while (rs->n > n) {
        rules_rule_release(&rs->v[--rs->n]);
    }
}

int rules_add(struct rules *rs, struct rule *r)
{
    if (grow(rs) < 0) {
        return -1;
    }
    rs->v[rs->n++] = *r;
    memset(r, 0, sizeof(*r));
    return 0;
}

/* ---- binding to the configured windows ---- */

static int bind_span(const struct rule *r, char *name, int64_t ms,
                     unsigned long line, const char *key,
                     const struct config_window *w, size_t n, char *errstr,
                     size_t errstr_size)
{
    for (size_t i = 0; i < n; i++) {
        if (w[i].ms == ms) {
            snprintf(name, RULE_WINDOW_MAX + 1, "%s", w[i].name);
            return 0;
        }
    }
    snprintf(errstr, errstr_size,
             "%s:%lu: alerts[%zu].%s: %s is not one of aggregation.windows",
             r->src, line, r->index, key, name);
    return -1;
}

int rules_bind_windows(struct rules *rs, const struct config_window *windows,
                       size_t n_windows, int64_t retention_ms, char *errstr,
                       size_t errstr_size)
{
    for (size_t i = 0; i < rs->n; i++) {
        struct rule *r = &rs->v[i];
        if (rules_kind_zscore(r->kind) && r->baseline_ms > retention_ms) {
            snprintf(errstr, errstr_size,
                     "%s:%lu: alerts[%zu].baseline: %s is longer than "
                     "aggregation.retention (the buckets it reads are gone "
                     "by then)",
                     r->src, r->baseline_line, r->index, r->baseline);
            return -1;
        }
        if (r->window_ms > 0 &&
            bind_span(r, r->window, r->window_ms, r->window_line, "window",
                      windows, n_windows, errstr, errstr_size) < 0) {
            return -1;
        }
        if ((r->kind == RULE_ABOVE_BASELINE ||
             r->kind == RULE_BELOW_BASELINE) &&
            bind_span(r, r->baseline, r->baseline_ms, r->baseline_line,
                      "baseline", windows, n_windows, errstr,
                      errstr_size) < 0) {
            return -1;
        }
    }
    return 0;
}
