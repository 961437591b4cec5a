/* SPDX-License-Identifier: Apache-2.0 */
/* rules_yaml: the YAML loader of alert rules, with file:line errors. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "tstamp.h"

#define KIND_LIST                                                              \
    "above, below, above_baseline, below_baseline, above_zscore, "             \
    "below_zscore or no_data_for"

/* ---- the loader ---- */

/* State of one `alerts:` list being loaded, for error messages. */
struct rload {
    struct rules *rs;
    yaml_document_t *doc;
    const char *path;
    size_t index;          /* position of the rule in the list */
    const char *key;       /* the key being parsed */
    yaml_node_t *seen[32]; /* value node of each key of the current rule */
    char *errstr;
    size_t errstr_size;
};

static int load_error(struct rload *ld, const yaml_node_t *node,
                      const char *key, const char *why)
{
    snprintf(ld->errstr, ld->errstr_size, "%s:%lu: alerts[%zu]%s%s: %s",
             ld->path, (unsigned long)node->start_mark.line + 1, ld->index,
             key[0] ? "." : "", key, why);
    return -1;
}

/* An error about the value of the key being parsed. */
static int bad_value(struct rload *ld, const yaml_node_t *node, const char *why)
{
    return load_error(ld, node, ld->key, why);
}

static const char *scalar(const yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE
               ? (const char *)node->data.scalar.value
               : NULL;
}

static yaml_node_t *node_at(struct rload *ld, int id)
{
    return yaml_document_get_node(ld->doc, id);
}

static char *dup_or_fail(struct rload *ld, const yaml_node_t *node,
                         const char *s)
{
    char *copy = strdup(s);

    if (copy == NULL) {
        bad_value(ld, node, "out of memory");
    }
    return copy;
}

static int get_number(struct rload *ld, yaml_node_t *v, double *out)
{
    const char *s = scalar(v);
    char *end;

    if (s != NULL && *s != '\0') {
        errno = 0;
        *out = strtod(s, &end);
        if (errno == 0 && *end == '\0' && isfinite(*out)) {
            return 0;
        }
    }
    return bad_value(ld, v, "expected a number");
}

/* A duration; positive unless zero_ok. */
static int get_duration(struct rload *ld, yaml_node_t *v, bool zero_ok,
                        int64_t *ms)
{
    const char *s = scalar(v);

    if (s == NULL || tstamp_parse_duration(s, ms) < 0 ||
        (*ms == 0 && !zero_ok) || *ms > CONFIG_DURATION_MAX) {
        return bad_value(ld, v,
                         zero_ok ? "expected a duration like 0s, 30s, 5m, 1h, "
                                   "at most 3650d"
                                 : "expected a duration like 30s, 5m, 1h, 24h, "
                                   "at most 3650d");
    }
    return 0;
}

static bool name_ok(const char *s)
{
    size_t len = strlen(s);

    return len >= 1 && len <= RULE_NAME_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789_.:-") == len;
}

/* A Prometheus label name. */
static bool label_name_ok(const char *s)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
    size_t len = strlen(s);

    return len >= 1 && strchr(alpha, s[0]) != NULL &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
                     "0123456789") == len;
}

/* ---- one parser per key ---- */

static int parse_name(struct rload *ld, struct rule *r, yaml_node_t *v, int arg)
{
    const char *s = scalar(v);

    (void)arg;
    if (s == NULL || !name_ok(s)) {
        return bad_value(ld, v, "expected a name of 1-128 of [A-Za-z0-9_.:-]");
    }
    r->name = dup_or_fail(ld, v, s);
    return r->name ? 0 : -1;
}

static int parse_metric(struct rload *ld, struct rule *r, yaml_node_t *v,
                        int arg)
{
    const char *s = scalar(v);

    (void)arg;
    r->metric = s ? rules_metric(s) : NULL;
    if (r->metric == NULL) {
        return bad_value(ld, v,
                         "expected a KPI field or live gauge of "
                         "schemas/redis.md (wait_p90_ms, abandon_rate, "
                         "oldest_wait_ms, ...)");
    }
    return 0;
}

/* window and baseline: arg 0 and 1. */
static int parse_span(struct rload *ld, struct rule *r, yaml_node_t *v, int arg)
{
    char *name = arg ? r->baseline : r->window;
    int64_t *ms = arg ? &r->baseline_ms : &r->window_ms;

    if (get_duration(ld, v, false, ms) < 0) {
        return -1;
    }
    if (strlen(scalar(v)) > RULE_WINDOW_MAX) {
        return bad_value(ld, v, "expected a duration of at most 15 characters");
    }
    strcpy(name, scalar(v));
    *(arg ? &r->baseline_line : &r->window_line) = v->start_mark.line + 1;
    return 0;
}

/* Every condition key; arg is its enum rule_kind. */
static int parse_kind(struct rload *ld, struct rule *r, yaml_node_t *v, int arg)
{
    for (int k = RULE_ABOVE; k <= RULE_NO_DATA; k++) {
        if (k != arg && ld->seen[k] != NULL) {
            return bad_value(ld, v, "only one condition per rule: " KIND_LIST);
        }
    }
    r->kind = (enum rule_kind)arg;
    if (arg == RULE_NO_DATA) {
        return get_duration(ld, v, false, &r->no_data_ms);
    }
    if (get_number(ld, v, &r->threshold) < 0) {
        return -1;
    }
    if ((rules_kind_baseline(r->kind)) && r->threshold <= 0) {
        return bad_value(ld, v,
                         rules_kind_zscore(r->kind)
                             ? "expected a positive number of standard "
                               "deviations"
                             : "expected a positive factor of the baseline");
    }
    return 0;
}

static int parse_resolve(struct rload *ld, struct rule *r, yaml_node_t *v,
                         int arg)
{
    (void)arg;
    r->has_resolve = true;
    return get_number(ld, v, &r->resolve);
}

static int parse_min_samples(struct rload *ld, struct rule *r, yaml_node_t *v,
                             int arg)
{
    const char *s = scalar(v);
    char *end;

    (void)arg;
    if (s != NULL && *s != '\0') {
        errno = 0;
        r->min_samples = strtoll(s, &end, 10);
        if (errno == 0 && *end == '\0' && r->min_samples >= 1) {
            return 0;
        }
    }
    return bad_value(ld, v, "expected a positive integer");
}

static int parse_confidence(struct rload *ld, struct rule *r, yaml_node_t *v,
                            int arg)
{
    (void)arg;
    if (get_number(ld, v, &r->confidence) < 0) {
        return -1;
    }
    if (!(r->confidence > 0 && r->confidence < 1)) {
        return bad_value(ld, v,
                         "expected a level strictly between 0 and 1, "
                         "like 0.95");
    }
    return 0;
}

/* for and keep_firing_for: arg 0 and 1. */
static int parse_hold(struct rload *ld, struct rule *r, yaml_node_t *v, int arg)
{
    return get_duration(ld, v, true, arg ? &r->keep_firing_for_ms : &r->for_ms);
}

static const char *const dim_names[RULE_DIMS] = {"tenant", "channel", "queue"};

static int dim_index(const char *s)
{
    for (int d = 0; s != NULL && d < RULE_DIMS; d++) {
        if (strcmp(s, dim_names[d]) == 0) {
            return d;
        }
    }
    return -1;
}

/* The items of a sequence node, or the node itself when it is a scalar. */
static size_t items_of(yaml_node_t *v, yaml_node_item_t *one,
                       yaml_node_item_t **items)
{
    if (v->type == YAML_SEQUENCE_NODE) {
        *items = v->data.sequence.items.start;
        return (size_t)(v->data.sequence.items.top - *items);
    }
    *items = one;
    return 1;
}

static int parse_by(struct rload *ld, struct rule *r, yaml_node_t *v, int arg)
{
    yaml_node_item_t one = 0, *items;
    size_t n = items_of(v, &one, &items);

    (void)arg;
    r->by = 0;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it =
            v->type == YAML_SEQUENCE_NODE ? node_at(ld, items[i]) : v;
        int d = dim_index(scalar(it));
        if (d < 0 || (r->by & (1u << d))) {
            return bad_value(ld, it,
                             "expected a list of distinct tenant, "
                             "channel, queue");
        }
        r->by |= 1u << d;
    }
    if (!(r->by & RULE_BY_TENANT)) {
        return bad_value(ld, v,
                         "must include tenant (KPIs are kept per "
                         "tenant; there is no cross-tenant roll-up)");
    }
    return 0;
}

static int add_glob(struct rload *ld, struct rule_match *m, yaml_node_t *it)
{
    const char *s = scalar(it);
    char **grown;

    if (s == NULL || *s == '\0') {
        return load_error(ld, it, ld->key,
                          "expected a glob or a list of globs");
    }
    grown = realloc(m->globs, (m->n + 1) * sizeof(*grown));
    if (grown == NULL) {
        return load_error(ld, it, ld->key, "out of memory");
    }
    m->globs = grown;
    if ((m->globs[m->n] = dup_or_fail(ld, it, s)) == NULL) {
        return -1;
    }
    m->n++;
    return 0;
}

static int parse_match_dim(struct rload *ld, struct rule *r, yaml_node_t *kn,
                           yaml_node_t *vn)
{
    char key[64];
    const char *saved = ld->key;
    yaml_node_item_t one = 0, *items;
    size_t n = items_of(vn, &one, &items);
    int d = dim_index(scalar(kn));

    snprintf(key, sizeof(key), "match.%s", scalar(kn) ? scalar(kn) : "?");
    if (d < 0) {
        return load_error(ld, kn, key, "expected tenant, channel or queue");
    }
    if (r->match[d].n > 0 || (vn->type == YAML_SEQUENCE_NODE && n == 0)) {
        return load_error(ld, vn, key,
                          "expected one glob or a non-empty list, "
                          "given once");
    }
    ld->key = key;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it =
            vn->type == YAML_SEQUENCE_NODE ? node_at(ld, items[i]) : vn;
        if (add_glob(ld, &r->match[d], it) < 0) {
            ld->key = saved;
            return -1;
        }
    }
    ld->key = saved;
    return 0;
}

static int parse_match(struct rload *ld, struct rule *r, yaml_node_t *v,
                       int arg)
{
    (void)arg;
    if (v->type != YAML_MAPPING_NODE) {
        return bad_value(ld, v,
                         "expected a mapping of tenant / channel / "
                         "queue to globs");
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
         p < v->data.mapping.pairs.top; p++) {
        if (parse_match_dim(ld, r, node_at(ld, p->key), node_at(ld, p->value)) <
            0) {
            return -1;
        }
    }
    return 0;
}

static int parse_string(struct rload *ld, char **slot, yaml_node_t *v,
                        bool tmpl)
{
    const char *s = scalar(v);

    if (s == NULL || *s == '\0') {
        return bad_value(ld, v, "expected a non-empty string");
    }
    if (tmpl && rules_template_walk(s, NULL, NULL) < 0) {
        return bad_value(ld, v,
                         "expected a template whose placeholders are {{value}} "
                         "{{threshold}} {{baseline}} {{tenant}} {{channel}} "
                         "{{queue}} {{rule}} {{metric}} {{window}}");
    }
    *slot = dup_or_fail(ld, v, s);
    return *slot ? 0 : -1;
}

static int parse_severity(struct rload *ld, struct rule *r, yaml_node_t *v,
                          int arg)
{
    (void)arg;
    return parse_string(ld, &r->severity, v, false);
}

static int parse_summary(struct rload *ld, struct rule *r, yaml_node_t *v,
                         int arg)
{
    (void)arg;
    return parse_string(ld, &r->summary, v, true);
}

/* Labels the alert gets from its group; a rule label may not shadow them. */
static bool label_reserved(const char *name, bool annotation)
{
    static const char *const reserved[] = {"alertname", "severity", "tenant",
                                           "channel", "queue"};

    if (annotation) {
        return strcmp(name, "summary") == 0;
    }
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcmp(name, reserved[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int add_pair(struct rload *ld, struct rule_kv **kv, size_t *n,
                    yaml_node_t *kn, yaml_node_t *vn, bool annotation)
{
    const char *k = scalar(kn);
    struct rule_kv *grown;

    if (k == NULL || !label_name_ok(k) || label_reserved(k, annotation)) {
        return bad_value(ld, kn,
                         annotation ? "expected names like runbook "
                                      "([A-Za-z_][A-Za-z0-9_]*; summary is its "
                                      "own key)"
                                    : "expected label names like team "
                                      "([A-Za-z_][A-Za-z0-9_]*; not alertname, "
                                      "severity, tenant, channel, queue)");
    }
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*kv)[i].key, k) == 0) {
            return bad_value(ld, kn, "expected each name once");
        }
    }
    if ((grown = realloc(*kv, (*n + 1) * sizeof(*grown))) == NULL) {
        return bad_value(ld, kn, "out of memory");
    }
    *kv = grown;
    grown[*n].value = NULL;
    if ((grown[*n].key = dup_or_fail(ld, kn, k)) == NULL) {
        return -1;
    }
    (*n)++;
    return parse_string(ld, &grown[*n - 1].value, vn, annotation);
}

/* One name: value of labels or annotations; errors name the entry. */
static int parse_entry(struct rload *ld, struct rule_kv **kv, size_t *n,
                       yaml_node_t *kn, yaml_node_t *vn, bool annotation)
{
    const char *saved = ld->key;
    char key[96];
    int rc;

    if (scalar(kn) != NULL) {
        snprintf(key, sizeof(key), "%s.%s", saved, scalar(kn));
        ld->key = key;
    }
    rc = add_pair(ld, kv, n, kn, vn, annotation);
    ld->key = saved;
    return rc;
}

/* labels and annotations: arg 0 and 1. */
static int parse_pairs(struct rload *ld, struct rule *r, yaml_node_t *v,
                       int arg)
{
    if (v->type != YAML_MAPPING_NODE) {
        return bad_value(ld, v, "expected a mapping of name: text");
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
         p < v->data.mapping.pairs.top; p++) {
        if (parse_entry(ld, arg ? &r->annotations : &r->labels,
                        arg ? &r->n_annotations : &r->n_labels,
                        node_at(ld, p->key), node_at(ld, p->value),
                        arg != 0) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- the key table ---- */

struct rule_key {
    const char *name;
    int (*parse)(struct rload *ld, struct rule *r, yaml_node_t *v, int arg);
    int arg;
    const char *doc;
};

/* Key indexes; the condition keys sit at the index of their enum rule_kind. */
enum {
    K_NAME = RULE_NO_DATA + 1,
    K_METRIC,
    K_WINDOW,
    K_BASELINE,
    K_RESOLVE,
    K_MIN_SAMPLES,
    K_CONFIDENCE,
    K_FOR,
    K_KEEP_FIRING_FOR,
    K_MATCH,
    K_BY,
    K_SEVERITY,
    K_SUMMARY,
    K_LABELS,
    K_ANNOTATIONS,
    N_KEYS
};

_Static_assert(N_KEYS <= 32, "struct rload.seen holds every key");

/* The one table of rule keys: the loader accepts exactly these, and
 * rules_write_reference documents them. */
static const struct rule_key rule_keys[N_KEYS] = {
    [RULE_ABOVE] = {"above", parse_kind, RULE_ABOVE, "fire while value > N"},
    [RULE_BELOW] = {"below", parse_kind, RULE_BELOW, "fire while value < N"},
    [RULE_ABOVE_BASELINE] = {"above_baseline", parse_kind, RULE_ABOVE_BASELINE,
                             "fire while value > N x the baseline window's "
                             "value of the same group"},
    [RULE_BELOW_BASELINE] = {"below_baseline", parse_kind, RULE_BELOW_BASELINE,
                             "fire while value < N x the baseline window's "
                             "value of the same group"},
    [RULE_ABOVE_ZSCORE] = {"above_zscore", parse_kind, RULE_ABOVE_ZSCORE,
                           "fire while value > mean + N x stddev over the "
                           "baseline's window-long slices (N > 0)"},
    [RULE_BELOW_ZSCORE] = {"below_zscore", parse_kind, RULE_BELOW_ZSCORE,
                           "fire while value < mean - N x stddev over the "
                           "baseline's window-long slices (N > 0)"},
    [RULE_NO_DATA] = {"no_data_for", parse_kind, RULE_NO_DATA,
                      "fire when a group that sent events has been quiet "
                      "this long (no metric, no window)"},
    [K_NAME] = {"name", parse_name, 0,
                "required, unique; 1-128 of [A-Za-z0-9_.:-]"},
    [K_METRIC] = {"metric", parse_metric, 0,
                  "KPI field or live gauge of schemas/redis.md"},
    [K_WINDOW] = {"window", parse_span, 0,
                  "KPI window (one of aggregation.windows); required for KPI "
                  "metrics, not allowed for live gauges"},
    [K_BASELINE] = {"baseline", parse_span, 1,
                    "trailing span to compare with (ratio and z-score "
                    "conditions), longer than window; a z-score's at most "
                    "aggregation.retention"},
    [K_RESOLVE] = {"resolve", parse_resolve, 0,
                   "hysteresis: a firing alert clears only once its value is "
                   "no longer beyond this line (same unit as the condition)"},
    [K_MIN_SAMPLES] = {"min_samples", parse_min_samples, 0,
                       "ignore windows with fewer samples of the metric "
                       "(averages, quantiles, rates)"},
    [K_CONFIDENCE] = {"confidence", parse_confidence, 0,
                      "rates with above/below: compare the Wilson interval's "
                      "bound at this level instead of the rate"},
    [K_FOR] = {"for", parse_hold, 0,
               "the condition must hold this long before firing (default 0s)"},
    [K_KEEP_FIRING_FOR] = {"keep_firing_for", parse_hold, 1,
                           "stay firing this long after the condition clears "
                           "(default 0s)"},
    [K_MATCH] = {"match", parse_match, 0,
                 "tenant / channel / queue: a glob or a list of globs"},
    [K_BY] = {"by", parse_by, 0,
              "dimensions of a group, default [tenant, channel, queue]; the "
              "others are the _all roll-up"},
    [K_SEVERITY] = {"severity", parse_severity, 0, "default warning"},
    [K_SUMMARY] = {"summary", parse_summary, 0,
                   "template with {{value}} {{threshold}} {{baseline}} "
                   "{{tenant}} {{channel}} {{queue}} {{rule}} {{metric}} "
                   "{{window}}"},
    [K_LABELS] = {"labels", parse_pairs, 0,
                  "extra alert labels (not "
                  "templates)"},
    [K_ANNOTATIONS] = {"annotations", parse_pairs, 1,
                       "extra annotations (templates)"},
};

void rules_write_reference(FILE *out)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        fprintf(out, "  %-16s %s\n", rule_keys[i].name, rule_keys[i].doc);
    }
}

static int key_index(const char *name)
{
    for (int i = 0; name != NULL && i < N_KEYS; i++) {
        if (strcmp(rule_keys[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

/* ---- cross-key checks ---- */

/* An error at key k of the current rule, or at the rule when k is absent. */
static int key_error(struct rload *ld, yaml_node_t *rule, int k,
                     const char *why)
{
    return load_error(ld, ld->seen[k] ? ld->seen[k] : rule, rule_keys[k].name,
                      why);
}

static int condition_key(struct rload *ld)
{
    for (int k = RULE_ABOVE; k <= RULE_NO_DATA; k++) {
        if (ld->seen[k] != NULL) {
            return k;
        }
    }
    return -1;
}

static int check_required(struct rload *ld, yaml_node_t *node, struct rule *r)
{
    if (r->name == NULL) {
        return key_error(ld, node, K_NAME, "required");
    }
    if (condition_key(ld) < 0) {
        return load_error(ld, node, "", "expected one condition: " KIND_LIST);
    }
    if (r->kind == RULE_NO_DATA) {
        return ld->seen[K_METRIC] ? key_error(ld, node, K_METRIC,
                                              "not allowed with no_data_for "
                                              "(it watches events of any "
                                              "kind)")
                                  : 0;
    }
    return r->metric ? 0 : key_error(ld, node, K_METRIC, "required");
}

static int check_window(struct rload *ld, yaml_node_t *node, struct rule *r)
{
    bool spanned = r->kind != RULE_NO_DATA && !r->metric->live;

    if (!spanned && ld->seen[K_WINDOW]) {
        return key_error(ld, node, K_WINDOW,
                         r->metric ? "not allowed: live gauges are current "
                                     "values, not windows"
                                   : "not allowed with no_data_for");
    }
    if (spanned && !ld->seen[K_WINDOW]) {
        return key_error(ld, node, K_WINDOW,
                         "required for a KPI metric (5m, 1h, 24h, ...)");
    }
    return 0;
}

static int check_baseline(struct rload *ld, yaml_node_t *node, struct rule *r)
{
    if (!rules_kind_baseline(r->kind)) {
        return ld->seen[K_BASELINE]
                   ? key_error(ld, node, K_BASELINE,
                               "only with above_baseline, below_baseline, "
                               "above_zscore or below_zscore")
                   : 0;
    }
    if (r->metric->live) {
        return key_error(ld, node, (int)r->kind,
                         "live gauges have no baseline; use above or below");
    }
    if (!rules_kind_zscore(r->kind) && strcmp(r->metric->name, "nps") == 0) {
        return key_error(ld, node, (int)r->kind,
                         "a ratio needs a metric that is never negative; nps "
                         "is in [-100, 100] (use above, below or a z-score)");
    }
    if (!ld->seen[K_BASELINE]) {
        return key_error(ld, node, K_BASELINE,
                         "required: the trailing span to compare with (24h)");
    }
    if (r->baseline_ms <= r->window_ms) {
        return key_error(ld, node, K_BASELINE, "expected longer than window");
    }
    if (rules_kind_zscore(r->kind) && r->baseline_ms % r->window_ms != 0) {
        return key_error(ld, node, K_BASELINE,
                         "expected a multiple of window (z-scores compare "
                         "window-long slices)");
    }
    return 0;
}

static int check_resolve(struct rload *ld, yaml_node_t *node, struct rule *r)
{
    bool above = rules_kind_above(r->kind) || rules_kind_zscore(r->kind);

    if (!r->has_resolve) {
        return 0;
    }
    if (r->kind == RULE_NO_DATA) {
        return key_error(ld, node, K_RESOLVE, "not allowed with no_data_for");
    }
    if (above ? r->resolve > r->threshold : r->resolve < r->threshold) {
        return key_error(ld, node, K_RESOLVE,
                         above ? "expected a number not above the condition's"
                               : "expected a number not below the condition's");
    }
    if (rules_kind_zscore(r->kind) && r->resolve < 0) {
        return key_error(ld, node, K_RESOLVE,
                         "expected a non-negative number of standard "
                         "deviations");
    }
    return 0;
}

static int check_gating(struct rload *ld, yaml_node_t *node, struct rule *r)
{
    bool counted = r->metric != NULL && r->metric->count[0] != NULL;
    bool rate = r->metric != NULL && r->metric->rate;
    bool absolute = r->kind == RULE_ABOVE || r->kind == RULE_BELOW;

    if (ld->seen[K_MIN_SAMPLES] && !counted) {
        return key_error(ld, node, K_MIN_SAMPLES,
                         "only for metrics with a sample count (averages, "
                         "quantiles, rates, NPS); counts and live gauges have "
                         "none");
    }
    if (ld->seen[K_CONFIDENCE] && !(rate && absolute)) {
        return key_error(ld, node, K_CONFIDENCE,
                         "only with above or below on a rate (abandon_rate, "
                         "sl_pct, detractor_rate, csat_pct)");
    }
    if (rate && absolute && !(r->threshold >= 0 && r->threshold <= 1)) {
        return key_error(ld, node, (int)r->kind,
                         "expected a fraction in [0, 1] (the metric is a "
                         "rate)");
    }
    if (rate && absolute && r->has_resolve &&
        !(r->resolve >= 0 && r->resolve <= 1)) {
        return key_error(ld, node, K_RESOLVE,
                         "expected a fraction in [0, 1] (the metric is a "
                         "rate)");
    }
    return 0;
}

static int check_match(struct rload *ld, yaml_node_t *node, struct rule *r)
{
    char key[64];

    for (int d = RULE_DIM_CHANNEL; d < RULE_DIMS; d++) {
        if (r->match[d].n > 0 && !(r->by & (1u << d))) {
            snprintf(key, sizeof(key), "match.%s", dim_names[d]);
            return load_error(ld, ld->seen[K_MATCH] ? ld->seen[K_MATCH] : node,
                              key,
                              "only on a dimension in by (the others are the "
                              "_all roll-up)");
        }
    }
    return 0;
}

static int set_defaults(struct rload *ld, yaml_node_t *node, struct rule *r)
{
    static const char def_summary[] =
        "{{rule}}: {{metric}} {{value}} on {{tenant}}/{{channel}}/{{queue}}";

    if (r->severity == NULL && (r->severity = strdup("warning")) == NULL) {
        return load_error(ld, node, "", "out of memory");
    }
    if (r->summary == NULL && (r->summary = strdup(def_summary)) == NULL) {
        return load_error(ld, node, "", "out of memory");
    }
    if ((r->src = strdup(ld->path)) == NULL) {
        return load_error(ld, node, "", "out of memory");
    }
    return 0;
}

static int check_unique(struct rload *ld, yaml_node_t *node, struct rule *r)
{
    const struct rule *first = rules_find(ld->rs, r->name);
    char why[RULE_NAME_MAX + 600];

    if (first == NULL) {
        return 0;
    }
    snprintf(why, sizeof(why), "duplicate rule name %s (first at %s:%lu)",
             r->name, first->src, first->line);
    return key_error(ld, node, K_NAME, why);
}

static int check_rule(struct rload *ld, yaml_node_t *node, struct rule *r)
{
    if (check_required(ld, node, r) < 0 || check_unique(ld, node, r) < 0 ||
        check_window(ld, node, r) < 0 || check_baseline(ld, node, r) < 0 ||
        check_resolve(ld, node, r) < 0 || check_gating(ld, node, r) < 0 ||
        check_match(ld, node, r) < 0) {
        return -1;
    }
    return set_defaults(ld, node, r);
}

static int unknown_key(struct rload *ld, yaml_node_t *kn, const char *name)
{
    char why[400] = "unknown key (expected one of";
    size_t len = strlen(why);

    for (int i = 0; i < N_KEYS && len < sizeof(why); i++) {
        len += (size_t)snprintf(why + len, sizeof(why) - len, "%s %s",
                                i ? "," : "", rule_keys[i].name);
    }
    if (len < sizeof(why)) {
        snprintf(why + len, sizeof(why) - len, ")");
    }
    return load_error(ld, kn, name, why);
}

static int parse_pair(struct rload *ld, struct rule *r, yaml_node_pair_t *p)
{
    yaml_node_t *kn = node_at(ld, p->key), *vn = node_at(ld, p->value);
    const char *name = scalar(kn);
    int k = key_index(name);

    if (k < 0) {
        return unknown_key(ld, kn, name ? name : "?");
    }
    if (ld->seen[k] != NULL) {
        return load_error(ld, kn, name, "given twice");
    }
    ld->seen[k] = vn;
    ld->key = rule_keys[k].name;
    return rule_keys[k].parse(ld, r, vn, rule_keys[k].arg);
}

static int parse_rule(struct rload *ld, yaml_node_t *node, struct rule *r)
{
    memset(ld->seen, 0, sizeof(ld->seen));
    if (node->type != YAML_MAPPING_NODE) {
        return load_error(ld, node, "", "expected a mapping (one rule)");
    }
    r->line = node->start_mark.line + 1;
    r->index = ld->index;
    r->by = RULE_BY_ALL;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         p < node->data.mapping.pairs.top; p++) {
        if (parse_pair(ld, r, p) < 0) {
            return -1;
        }
    }
    return check_rule(ld, node, r);
}

/* An empty value or YAML's null: `alerts:` or `alerts: ~`. */
static bool is_null(const yaml_node_t *node)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    const char *s = scalar(node);

    for (size_t i = 0; s != NULL && i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        if (strcmp(s, nulls[i]) == 0) {
            return node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        }
    }
    return false;
}

int rules_parse_yaml(struct rules *rs, yaml_document_t *doc, yaml_node_t *seq,
                     const char *path, char *errstr, size_t errstr_size)
{
    struct rload ld = {rs, doc, path, 0, "", {NULL}, errstr, errstr_size};
    size_t n0 = rs->n;
    yaml_node_item_t *it;

    if (is_null(seq)) {
        return 0;
    }
    if (seq->type != YAML_SEQUENCE_NODE) {
        snprintf(errstr, errstr_size,
                 "%s:%lu: alerts: expected a list of rules", path,
                 (unsigned long)seq->start_mark.line + 1);
        return -1;
    }
    for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++, ld.index++) {
        yaml_node_t *node = node_at(&ld, *it);
        struct rule r;
        int rc;

        memset(&r, 0, sizeof(r));
        rc = parse_rule(&ld, node, &r);
        if (rc == 0 && (rc = rules_add(rs, &r)) < 0) {
            load_error(&ld, node, "", "out of memory");
        }
        if (rc < 0) {
            rules_rule_release(&r);
            rules_truncate(rs, n0);
            return -1;
        }
    }
    return 0;
}

/* The top level of a rules file: a mapping whose only key is alerts. */
static int load_root(struct rules *rs, yaml_document_t *doc, const char *path,
                     char *errstr, size_t errstr_size)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);

    if (root == NULL) {
        return 0;
    }
    if (root->type != YAML_MAPPING_NODE) {
        snprintf(errstr, errstr_size,
                 "%s:%lu: (top): expected a mapping with "
                 "alerts:",
                 path, (unsigned long)root->start_mark.line + 1);
        return -1;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        const char *key = scalar(kn);
        if (key == NULL || strcmp(key, "alerts") != 0) {
            snprintf(errstr, errstr_size,
                     "%s:%lu: %s: unknown key (a rules "
                     "file holds only alerts:)",
                     path, (unsigned long)kn->start_mark.line + 1,
                     key ? key : "?");
            return -1;
        }
        if (rules_parse_yaml(rs, doc, yaml_document_get_node(doc, p->value),
                             path, errstr, errstr_size) < 0) {
            return -1;
        }
    }
    return 0;
}

int rules_load_file(struct rules *rs, const char *path, char *errstr,
                    size_t errstr_size)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    FILE *f = fopen(path, "rb");
    size_t n0 = rs->n;
    int rc;

    if (f == NULL) {
        snprintf(errstr, errstr_size, "%s: cannot open: %s", path,
                 strerror(errno));
        return -1;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(errstr, errstr_size, "%s:%lu: YAML error: %s", path,
                 (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    rc = load_root(rs, &doc, path, errstr, errstr_size);
    if (rc < 0) {
        rules_truncate(rs, n0); /* a second alerts: key may have added some */
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}
