/* SPDX-License-Identifier: Apache-2.0 */
/* rules: alert rules — the model, and its YAML loader (rules_yaml.c). */
#ifndef TP_RULES_H
#define TP_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <yaml.h>

#include "config.h"

/*
 * A rule in YAML; every key but name and one condition is optional:
 *
 *   - name: phone-wait-spike       # [A-Za-z0-9_.:-]{1,128}, unique
 *     metric: wait_p90_ms          # KPI field or live gauge (redis.md)
 *     window: 5m                   # KPI metrics only, required there
 *     match: {channel: phone}      # tenant/channel/queue: glob or list
 *     by: [tenant, channel, queue] # the default; tenant is required
 *     above: 120000                # exactly one condition (rule_kind)
 *     resolve: 90000               # hysteresis line (default: above)
 *     min_samples: 10              # metrics with a sample count only
 *     confidence: 0.95             # rates with above/below only
 *     for: 1m                      # pending this long before firing
 *     keep_firing_for: 2m          # firing this long after it clears
 *     severity: page               # default "warning"
 *     summary: "p90 {{value}} ms on {{channel}}/{{queue}}"
 *     labels: {team: voice}        # names [A-Za-z_][A-Za-z0-9_]*
 *     annotations: {runbook: "https://wiki/{{rule}}"}
 *
 * Ratio and z-score conditions also need `baseline: DURATION` (longer than
 * window). no_data_for takes no metric, window, resolve, min_samples or
 * confidence. rules_write_reference prints every key with its meaning.
 */

/* Dimensions a rule groups by; a bit set. */
#define RULE_BY_TENANT 1u
#define RULE_BY_CHANNEL 2u
#define RULE_BY_QUEUE 4u
#define RULE_BY_ALL (RULE_BY_TENANT | RULE_BY_CHANNEL | RULE_BY_QUEUE)

/* Index of a dimension in struct rule.match. */
enum rule_dim { RULE_DIM_TENANT, RULE_DIM_CHANNEL, RULE_DIM_QUEUE, RULE_DIMS };

/* The condition. "Beyond" is > for the above kinds, < for the below kinds. */
enum rule_kind {
    RULE_ABOVE,          /* value > threshold */
    RULE_BELOW,          /* value < threshold */
    RULE_ABOVE_BASELINE, /* value > threshold x baseline value */
    RULE_BELOW_BASELINE, /* value < threshold x baseline value */
    RULE_ABOVE_ZSCORE,   /* value > mean + threshold x stddev (threshold > 0) */
    RULE_BELOW_ZSCORE,   /* value < mean - threshold x stddev (threshold > 0) */
    RULE_NO_DATA,        /* clock - last event > no_data_for */
};

/* A metric a rule can watch. count[] names the fields whose sum is the
 * metric's own sample count (min_samples, Wilson n); count[0] == NULL means
 * the metric has none (counts, live gauges). */
struct rule_metric {
    const char *name; /* the hash field, e.g. "wait_p90_ms" */
    bool live;        /* tp:{T}:live:C:Q, else tp:{T}:kpi:WINDOW:C:Q */
    bool rate;        /* a fraction in [0, 1] of count[] samples */
    const char *count[2];
};

/* A name -> value pair of labels or annotations; both strings owned. */
struct rule_kv {
    char *key;
    char *value;
};

/* One dimension's match: any of the globs (fnmatch(3)); n == 0 matches all. */
struct rule_match {
    char **globs; /* owned, each owned */
    size_t n;
};

#define RULE_NAME_MAX 128
#define RULE_WINDOW_MAX 15

/* One rule as loaded. Strings and arrays are owned by the rule. */
struct rule {
    char *name;
    enum rule_kind kind;
    const struct rule_metric *metric; /* static; NULL for no_data_for */
    /* The KPI window as written, or as bound by rules_bind_windows; "" and
     * 0 for live gauges and no_data_for. */
    char window[RULE_WINDOW_MAX + 1];
    int64_t window_ms;
    /* Ratio and z-score kinds; else "" and 0. */
    char baseline[RULE_WINDOW_MAX + 1];
    int64_t baseline_ms;
    double threshold; /* above / below / factor / z (per kind) */
    bool has_resolve;
    double resolve;      /* same unit as threshold */
    int64_t min_samples; /* 0: no gating */
    double confidence;   /* 0: off; else in (0, 1) */
    int64_t for_ms;
    int64_t keep_firing_for_ms;
    int64_t no_data_ms; /* RULE_NO_DATA only */
    unsigned by;        /* RULE_BY_* bits; tenant always set */
    struct rule_match match[RULE_DIMS];
    char *severity;
    char *summary; /* a template */
    struct rule_kv *labels;
    size_t n_labels;
    struct rule_kv *annotations; /* values are templates */
    size_t n_annotations;
    /* Where the rule was written, for later errors (rules_bind_windows). */
    char *src;    /* the file's path */
    size_t index; /* position in that file's list */
    unsigned long line, window_line, baseline_line;
};

/* An ordered set of rules; heap object. */
struct rules {
    struct rule *v;
    size_t n, cap;
};

/* Returns an empty set, or NULL on out of memory. */
struct rules *rules_new(void);

/* Frees the set and every rule. NULL is a no-op. */
void rules_destroy(struct rules *rs);

/* ---- rules_yaml.c: the loader ---- */

/* Appends the rules of seq, the value node of an `alerts:` key of doc (a
 * sequence; an empty value or ~ means no rules). Everything is validated; on
 * error nothing is appended and errstr says
 * "FILE:LINE: alerts[INDEX].KEY: what was expected" (path names FILE). A name
 * already in rs is an error too, so several files can be loaded into one set.
 * doc, seq and path are borrowed. Returns 0 or -1. */
int rules_parse_yaml(struct rules *rs, yaml_document_t *doc, yaml_node_t *seq,
                     const char *path, char *errstr, size_t errstr_size);

/* Appends the rules of a rules file whose top level is `alerts: [...]` (no
 * other key; an empty file holds no rules). Same errors as rules_parse_yaml,
 * plus "FILE: cannot open: ..." and "FILE:LINE: YAML error: ...". */
int rules_load_file(struct rules *rs, const char *path, char *errstr,
                    size_t errstr_size);

/* Writes the rule keys and what each means (for docs and --help). */
void rules_write_reference(FILE *out);

/* ---- rules.c: the model ---- */

/* Checks each KPI rule's window, and a ratio rule's baseline, against the
 * configured windows, matched by length (a rule's 60m finds 1h), and rewrites
 * them to the configured spelling, which is the one in the Redis key. Errors
 * "FILE:LINE: alerts[INDEX].window: 10m is not one of aggregation.windows".
 * Z-score baselines are not windows (see alert.h) but spans of buckets, so
 * they may be no longer than retention_ms. windows is borrowed. */
int rules_bind_windows(struct rules *rs, const struct config_window *windows,
                       size_t n_windows, int64_t retention_ms, char *errstr,
                       size_t errstr_size);

/* Appends r, taking what it owns (r is zeroed). Returns 0, or -1 on out of
 * memory with r untouched. The loader's way in; tests may build rules so. */
int rules_add(struct rules *rs, struct rule *r);

/* Frees what r owns and zeroes it (a rule built by hand, never added). */
void rules_rule_release(struct rule *r);

/* Drops the rules from index n on (undoing a failed load). */
void rules_truncate(struct rules *rs, size_t n);

/* The rule of that name, or NULL. Borrowed, valid until rules_destroy. */
const struct rule *rules_find(const struct rules *rs, const char *name);

/* The metric of that name, or NULL. Static. */
const struct rule_metric *rules_metric(const char *name);

/* True for the above kinds (RULE_ABOVE, RULE_ABOVE_BASELINE,
 * RULE_ABOVE_ZSCORE, RULE_NO_DATA). */
bool rules_kind_above(enum rule_kind kind);

/* True for RULE_ABOVE_ZSCORE and RULE_BELOW_ZSCORE. */
bool rules_kind_zscore(enum rule_kind kind);

/* True for the ratio and z-score kinds, whose alerts carry a baseline. */
bool rules_kind_baseline(enum rule_kind kind);

/* The YAML key of a kind ("above", "no_data_for", ...). Static. */
const char *rules_kind_name(enum rule_kind kind);

/* Placeholders of summary and annotation templates, written {{name}} (blanks
 * inside the braces allowed). Any other {{...}} is a load error. */
enum rule_field {
    RULE_F_VALUE,
    RULE_F_THRESHOLD,
    RULE_F_BASELINE,
    RULE_F_TENANT,
    RULE_F_CHANNEL,
    RULE_F_QUEUE,
    RULE_F_RULE,
    RULE_F_METRIC,
    RULE_F_WINDOW,
    RULE_FIELDS
};

/* Walks a template: calls emit once per literal run (field == -1, text/len
 * the run) and once per placeholder (field a rule_field, text NULL). Stops at
 * the first non-zero emit result and returns it. Returns -1 when the template
 * is malformed (unknown placeholder or unclosed "{{") before emitting
 * anything, else 0. */
int rules_template_walk(const char *tmpl,
                        int (*emit)(void *ctx, int field, const char *text,
                                    size_t len),
                        void *ctx);

#endif
