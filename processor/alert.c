/* SPDX-License-Identifier: Apache-2.0 */
/* alert: the alert state machine, its groups and their saved state. */
/*
 * Design
 *
 * The semantics are Prometheus's. A group (one rule, one tenant/channel/queue
 * row of the rule's `by` granularity) is inactive, pending or firing. When
 * its condition starts to hold it turns pending (silently: nobody is told)
 * and remembers when (active_at); once it has held for `for` at an
 * evaluation it fires, which is notified once. A firing group stays firing
 * while its value is beyond the resolve line (`resolve:`, by default the
 * condition's own line, so a value hovering at the threshold does not flap)
 * and for keep_firing_for after it stopped being so; then it resolves,
 * notified once. A pending group whose condition fails drops to inactive,
 * silently. Nothing is notified while a state persists, so repeated
 * evaluations never repeat a notification.
 *
 * "Absent" is a first-class value: no field in the hash, fewer samples than
 * min_samples, a baseline not available, no observation at all in an
 * evaluation (the group's row vanished). Absent never starts an alert, drops
 * a pending one and counts as "not beyond the line" for a firing one. This is
 * what keeps 1 detractor out of 2 answers from paging anyone, and what makes
 * an alert on a vanished group resolve rather than hang.
 *
 * Only pending and firing groups have state, in an array indexed by a map from
 * the fingerprint (a 64-bit hash of rule name and group labels, also the
 * alert's id outside). An evaluation costs one hash lookup per observed row
 * plus one pass over the active groups (absence), so it scales with rules x
 * groups, never with events. The evaluator never reads Redis: the caller
 * turns hashes into struct alert_obs, which also keeps it testable on a
 * table of numbers.
 *
 * Confidence: for rates, the number compared with the lines is the bound of
 * the Wilson score interval on the side of the condition (the lower bound
 * for above, the upper for below), so a small sample whose interval still
 * reaches the threshold does not fire; the reported value stays the rate.
 *
 * Persistence: the caller stores the state of every pending and firing
 * group (alert_state_to_json) on each transition and deletes it on the way
 * out. alert_state_restore brings it back without notifying, so a restart or
 * a takeover by another instance neither loses a firing alert nor sends it
 * again, and the alert still resolves later.
 */
#include "alert.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tstamp.h"
#include "u64map.h"

/* The judgement of one observation. */
struct verdict {
    bool breach; /* beyond the condition's line */
    bool holds;  /* beyond the resolve line (a firing alert stays) */
    bool has_value;
    double value;
    bool has_threshold;
    double threshold;
    bool has_baseline;
    double baseline;
    int64_t samples;
};

/* A pending or firing group. */
struct group {
    uint64_t key; /* the fingerprint */
    const struct rule *rule;
    char fingerprint[ALERT_FINGERPRINT_LEN + 1];
    char tenant[ALERT_TENANT_MAX + 1];
    char channel[ALERT_DIM_MAX + 1];
    char queue[ALERT_DIM_MAX + 1];
    enum alert_status status;
    int64_t active_at_ms;
    int64_t starts_at_ms;
    int64_t clear_since_ms;
    struct verdict last; /* newest verdict with a value */
    uint64_t epoch;      /* evaluation that last observed it */
};

struct alert_eval {
    const struct rules *rules;
    alert_notify_fn *notify;
    void *opaque;
    struct group *groups;
    size_t n, cap;
    struct u64map index; /* fingerprint -> index into groups */
    uint64_t epoch;
    int64_t now_ms;
    bool scoped;
    char scope[ALERT_TENANT_MAX + 1];
};

/* ---- small pieces ---- */

/* FNV-1a over s and its NUL, so ("ab", "c") and ("a", "bc") differ. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s;; p++) {
        h = (h ^ *p) * UINT64_C(0x100000001b3);
        if (*p == '\0') {
            return h;
        }
    }
}

static uint64_t fingerprint64(const char *rule, const char *tenant,
                              const char *channel, const char *queue)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    h = fnv1a(h, rule);
    h = fnv1a(h, tenant);
    h = fnv1a(h, channel);
    h = fnv1a(h, queue);
    return h != 0 ? h : 1;
}

void alert_fingerprint(const char *rule, const char *tenant,
                       const char *channel, const char *queue, char *out)
{
    snprintf(out, ALERT_FINGERPRINT_LEN + 1, "%016llx",
             (unsigned long long)fingerprint64(rule, tenant, channel, queue));
}

bool alert_notifies(const struct alert *a)
{
    return a->status != a->previous &&
           (a->status == ALERT_FIRING || a->status == ALERT_RESOLVED);
}

/* Acklam's rational approximation of the standard normal quantile, refined
 * by one Halley step on erfc (full double precision). 0 < p < 1. */
static double normal_quantile(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                               2.445134137142996e+00, 3.754408661907416e+00};
    double q, r, x, e, u;

    if (p < 0.02425 || p > 1 - 0.02425) {
        q = sqrt(-2 * log(p < 0.5 ? p : 1 - p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q +
             c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        x = p < 0.5 ? x : -x;
    } else {
        q = p - 0.5;
        r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r +
             a[5]) *
            q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    e = 0.5 * erfc(-x / 1.4142135623730951) - p;
    u = e * 2.5066282746310002 * exp(x * x / 2); /* sqrt(2 pi) */
    return x - u / (1 + x * u / 2);
}

double alert_wilson_bound(double p, int64_t n, double c, bool lower)
{
    double z = normal_quantile((1 + c) / 2), z2 = z * z, nn = (double)n;
    double den = 1 + z2 / nn;
    double center = (p + z2 / (2 * nn)) / den;
    double half = z / den * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));

    return lower ? center - half : center + half;
}

/* ---- rows and needs ---- */

static bool glob_match(const struct rule_match *m, const char *value)
{
    for (size_t i = 0; i < m->n; i++) {
        if (fnmatch(m->globs[i], value, 0) == 0) {
            return true;
        }
    }
    return m->n == 0;
}

bool alert_row_matches(const struct rule *r, const char *tenant,
                       const char *channel, const char *queue)
{
    const char *v[RULE_DIMS] = {tenant, channel, queue};

    if (strlen(tenant) > ALERT_TENANT_MAX || strlen(channel) > ALERT_DIM_MAX ||
        strlen(queue) > ALERT_DIM_MAX) {
        return false;
    }
    for (int d = 0; d < RULE_DIMS; d++) {
        bool rolled = d != RULE_DIM_TENANT && strcmp(v[d], "_all") == 0;
        if (!(r->by & (1u << d))) {
            if (!rolled) {
                return false;
            }
        } else if (rolled || !glob_match(&r->match[d], v[d])) {
            return false;
        }
    }
    return true;
}

void alert_rule_needs(const struct rule *r, struct alert_needs *out)
{
    memset(out, 0, sizeof(*out));
    out->by = r->by;
    if (r->kind == RULE_NO_DATA) {
        out->source = ALERT_SRC_EVENTS;
        return;
    }
    out->source = r->metric->live ? ALERT_SRC_LIVE : ALERT_SRC_KPI;
    out->field = r->metric->name;
    out->window = r->window[0] ? r->window : NULL;
    out->count[0] = r->metric->count[0];
    out->count[1] = r->metric->count[1];
    if (rules_kind_baseline(r->kind)) {
        out->baseline = r->baseline;
        out->baseline_value = !rules_kind_zscore(r->kind);
        out->baseline_stats = !out->baseline_value;
        out->slice_ms = out->baseline_stats ? r->window_ms : 0;
    }
}

/* ---- judging ---- */

static bool beyond(bool above, double x, double line)
{
    return above ? x > line : x < line;
}

/* The condition's line and the resolve line of r in metric units; false when
 * a baseline they need is absent. Records threshold/baseline in v. */
static bool lines(const struct rule *r, const struct alert_obs *o,
                  struct verdict *v, double *fire, double *clear)
{
    double res = r->has_resolve ? r->resolve : r->threshold;
    double sign = r->kind == RULE_BELOW_ZSCORE ? -1 : 1;

    switch (r->kind) {
    case RULE_ABOVE:
    case RULE_BELOW:
        *fire = r->threshold;
        *clear = res;
        break;
    case RULE_NO_DATA:
        *fire = *clear = (double)r->no_data_ms;
        break;
    case RULE_ABOVE_BASELINE:
    case RULE_BELOW_BASELINE:
        if (!o->has_baseline || o->baseline_samples < r->min_samples) {
            return false;
        }
        v->has_baseline = true;
        v->baseline = o->baseline;
        *fire = r->threshold * o->baseline;
        *clear = res * o->baseline;
        break;
    case RULE_ABOVE_ZSCORE:
    case RULE_BELOW_ZSCORE:
        if (!o->has_stats || o->stats_slices < 2 || !(o->stats_stddev > 0)) {
            return false;
        }
        v->has_baseline = true;
        v->baseline = o->stats_mean;
        *fire = o->stats_mean + sign * r->threshold * o->stats_stddev;
        *clear = o->stats_mean + sign * res * o->stats_stddev;
        break;
    }
    v->has_threshold = true;
    v->threshold = *fire;
    return true;
}

static void judge(const struct rule *r, const struct alert_obs *o,
                  int64_t now_ms, struct verdict *v)
{
    bool above = rules_kind_above(r->kind);
    double fire = 0, clear = 0, test;

    memset(v, 0, sizeof(*v));
    v->samples = o->samples;
    if (r->kind == RULE_NO_DATA) {
        v->has_value = o->has_last_event;
        v->value = o->has_last_event ? (double)(now_ms - o->last_event_ms) : 0;
    } else {
        v->has_value = o->has_value && isfinite(o->value);
        v->value = v->has_value ? o->value : 0;
    }
    if (!lines(r, o, v, &fire, &clear) || !v->has_value ||
        o->samples < r->min_samples) {
        return;
    }
    test = v->value;
    if (r->confidence > 0) {
        if (o->samples <= 0) {
            return;
        }
        test = alert_wilson_bound(fmin(fmax(test, 0), 1), o->samples,
                                  r->confidence, above);
    }
    v->breach = beyond(above, test, fire);
    v->holds = beyond(above, test, clear);
}

/* ---- the group table ---- */

static struct group *add_group(struct alert_eval *ae, uint64_t key,
                               const struct rule *r, const char *tenant,
                               const char *channel, const char *queue)
{
    struct group *g;

    if (ae->n == ae->cap) {
        size_t cap = ae->cap ? ae->cap * 2 : 16;
        struct group *v = realloc(ae->groups, cap * sizeof(*v));
        if (v == NULL) {
            return NULL;
        }
        ae->groups = v;
        ae->cap = cap;
    }
    if (u64map_put(&ae->index, key, (uint32_t)ae->n) < 0) {
        return NULL;
    }
    g = &ae->groups[ae->n++];
    memset(g, 0, sizeof(*g));
    g->key = key;
    g->rule = r;
    snprintf(g->fingerprint, sizeof(g->fingerprint), "%016llx",
             (unsigned long long)key);
    snprintf(g->tenant, sizeof(g->tenant), "%s", tenant);
    snprintf(g->channel, sizeof(g->channel), "%s", channel);
    snprintf(g->queue, sizeof(g->queue), "%s", queue);
    g->starts_at_ms = ALERT_NO_TIME;
    g->clear_since_ms = ALERT_NO_TIME;
    g->epoch = ae->epoch;
    return g;
}

static void remove_group(struct alert_eval *ae, size_t i)
{
    u64map_del(&ae->index, ae->groups[i].key);
    if (i != ae->n - 1) {
        ae->groups[i] = ae->groups[ae->n - 1];
        *u64map_get(&ae->index, ae->groups[i].key) = (uint32_t)i;
    }
    ae->n--;
}

static bool same_group(const struct group *g, const struct rule *r,
                       const char *tenant, const char *channel,
                       const char *queue)
{
    return strcmp(g->rule->name, r->name) == 0 &&
           strcmp(g->tenant, tenant) == 0 && strcmp(g->channel, channel) == 0 &&
           strcmp(g->queue, queue) == 0;
}

/* ---- transitions ---- */

/* The alert view of g after a transition from previous, judged by v (values
 * the verdict lacks come from the last verdict that had them). */
static void fill_alert(const struct group *g, const struct verdict *v,
                       enum alert_status previous, int64_t now_ms,
                       struct alert *a)
{
    const struct verdict *t = v->has_threshold ? v : &g->last;
    const struct verdict *b = v->has_baseline ? v : &g->last;

    memset(a, 0, sizeof(*a));
    a->rule = g->rule;
    a->fingerprint = g->fingerprint;
    a->tenant = g->tenant;
    a->channel = g->channel;
    a->queue = g->queue;
    a->status = g->status;
    a->previous = previous;
    a->has_value = v->has_value;
    a->value = v->value;
    a->has_threshold = t->has_threshold;
    a->threshold = t->threshold;
    if (!rules_kind_baseline(g->rule->kind)) { /* a constant line */
        a->has_threshold = true;
        a->threshold = g->rule->kind == RULE_NO_DATA
                           ? (double)g->rule->no_data_ms
                           : g->rule->threshold;
    }
    a->has_baseline = b->has_baseline;
    a->baseline = b->baseline;
    a->samples = v->samples;
    a->active_at_ms = g->active_at_ms;
    a->starts_at_ms = g->starts_at_ms;
    a->ends_at_ms = g->status == ALERT_RESOLVED ? now_ms : ALERT_NO_TIME;
    a->clear_since_ms = g->clear_since_ms;
}

static void emit(struct alert_eval *ae, const struct group *g,
                 const struct verdict *v, enum alert_status previous)
{
    struct alert a;

    fill_alert(g, v, previous, ae->now_ms, &a);
    if (ae->notify != NULL) {
        ae->notify(&a, ae->opaque);
    }
}

static void fire(struct alert_eval *ae, struct group *g,
                 const struct verdict *v, enum alert_status previous)
{
    g->status = ALERT_FIRING;
    g->starts_at_ms = ae->now_ms;
    g->clear_since_ms = ALERT_NO_TIME;
    emit(ae, g, v, previous);
}

/* Ends group i as status (INACTIVE or RESOLVED) and drops its state. */
static void finish(struct alert_eval *ae, size_t i, const struct verdict *v,
                   enum alert_status status)
{
    struct group *g = &ae->groups[i];
    enum alert_status previous = g->status;

    g->status = status;
    emit(ae, g, v, previous);
    remove_group(ae, i);
}

/* One step of group i's state machine on verdict v. */
static void step(struct alert_eval *ae, size_t i, const struct verdict *v)
{
    struct group *g = &ae->groups[i];
    int64_t now = ae->now_ms;

    if (v->has_value) {
        g->last = *v;
    }
    if (g->status == ALERT_PENDING) {
        if (!v->breach) {
            finish(ae, i, v, ALERT_INACTIVE);
        } else if (now - g->active_at_ms >= g->rule->for_ms) {
            fire(ae, g, v, ALERT_PENDING);
        }
        return;
    }
    if (v->holds) {
        g->clear_since_ms = ALERT_NO_TIME;
        return;
    }
    if (g->clear_since_ms == ALERT_NO_TIME) {
        g->clear_since_ms = now;
    }
    if (now - g->clear_since_ms >= g->rule->keep_firing_for_ms) {
        finish(ae, i, v, ALERT_RESOLVED);
    }
}

/* A group whose condition starts to hold: pending, or firing at once when
 * the rule has no `for`. */
static int start(struct alert_eval *ae, uint64_t key, const struct rule *r,
                 const struct alert_obs *o, const struct verdict *v)
{
    struct group *g = add_group(ae, key, r, o->tenant, o->channel, o->queue);

    if (g == NULL) {
        return -1;
    }
    g->status = ALERT_PENDING;
    g->active_at_ms = ae->now_ms;
    g->last = *v;
    if (r->for_ms == 0) {
        fire(ae, g, v, ALERT_INACTIVE);
    } else {
        emit(ae, g, v, ALERT_INACTIVE);
    }
    return 0;
}

/* ---- the evaluator ---- */

struct alert_eval *alert_eval_new(const struct rules *rs,
                                  alert_notify_fn *notify, void *opaque)
{
    struct alert_eval *ae = calloc(1, sizeof(*ae));

    if (ae == NULL) {
        return NULL;
    }
    ae->rules = rs;
    ae->notify = notify;
    ae->opaque = opaque;
    u64map_init(&ae->index);
    return ae;
}

void alert_eval_destroy(struct alert_eval *ae)
{
    if (ae == NULL) {
        return;
    }
    u64map_release(&ae->index);
    free(ae->groups);
    free(ae);
}

void alert_eval_set_rules(struct alert_eval *ae, const struct rules *rs,
                          int64_t now_ms)
{
    struct verdict absent;

    memset(&absent, 0, sizeof(absent));
    ae->now_ms = now_ms;
    for (size_t i = ae->n; i-- > 0;) {
        struct group *g = &ae->groups[i];
        const struct rule *r = rules_find(rs, g->rule->name);
        if (r != NULL) {
            g->rule = r;
        } else {
            finish(ae, i, &absent,
                   g->status == ALERT_FIRING ? ALERT_RESOLVED : ALERT_INACTIVE);
        }
    }
    ae->rules = rs;
}

void alert_eval_begin(struct alert_eval *ae, int64_t now_ms, const char *tenant)
{
    ae->epoch++;
    ae->now_ms = now_ms;
    ae->scoped = tenant != NULL;
    snprintf(ae->scope, sizeof(ae->scope), "%s", tenant ? tenant : "");
}

static bool rule_in_set(const struct alert_eval *ae, const struct rule *r)
{
    return ae->rules != NULL && r >= ae->rules->v &&
           r < ae->rules->v + ae->rules->n;
}

int alert_eval_observe(struct alert_eval *ae, const struct rule *r,
                       const struct alert_obs *obs)
{
    struct verdict v;
    uint64_t key;
    uint32_t *idx;

    if (!rule_in_set(ae, r)) {
        return -1;
    }
    if (!alert_row_matches(r, obs->tenant, obs->channel, obs->queue)) {
        return 0;
    }
    judge(r, obs, ae->now_ms, &v);
    key = fingerprint64(r->name, obs->tenant, obs->channel, obs->queue);
    idx = u64map_get(&ae->index, key);
    if (idx == NULL) {
        return v.breach ? start(ae, key, r, obs, &v) : 0;
    }
    if (!same_group(&ae->groups[*idx], r, obs->tenant, obs->channel,
                    obs->queue)) {
        return 0; /* a 64-bit fingerprint collision: the first group keeps it */
    }
    ae->groups[*idx].epoch = ae->epoch;
    step(ae, *idx, &v);
    return 0;
}

void alert_eval_end(struct alert_eval *ae)
{
    struct verdict absent;

    memset(&absent, 0, sizeof(absent));
    /* Backwards: a removal moves the last (already visited) group into i. */
    for (size_t i = ae->n; i-- > 0;) {
        const struct group *g = &ae->groups[i];
        if (g->epoch == ae->epoch ||
            (ae->scoped && strcmp(g->tenant, ae->scope) != 0)) {
            continue;
        }
        step(ae, i, &absent);
    }
}

void alert_eval_foreach(const struct alert_eval *ae,
                        void (*fn)(const struct alert *a, void *opaque),
                        void *opaque)
{
    struct alert a;

    for (size_t i = 0; i < ae->n; i++) {
        const struct group *g = &ae->groups[i];
        fill_alert(g, &g->last, g->status, ae->now_ms, &a);
        fn(&a, opaque);
    }
}

size_t alert_eval_count(const struct alert_eval *ae)
{
    return ae->n;
}

void alert_eval_forget(struct alert_eval *ae, const char *tenant)
{
    for (size_t i = ae->n; i-- > 0;) {
        if (tenant == NULL || strcmp(ae->groups[i].tenant, tenant) == 0) {
            remove_group(ae, i);
        }
    }
}

/* ---- restoring ---- */

static const char *get_string(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A time field: an RFC 3339 string, or null / missing when !required. */
static int get_time(const json_t *o, const char *key, bool required,
                    int64_t *ms)
{
    const json_t *v = json_object_get(o, key);

    *ms = ALERT_NO_TIME;
    if (v == NULL || json_is_null(v)) {
        return required ? -1 : 0;
    }
    if (!json_is_string(v) ||
        tstamp_parse_rfc3339(json_string_value(v), json_string_length(v), ms) <
            0) {
        return -1;
    }
    return 0;
}

static void get_number(const json_t *o, const char *key, bool *has, double *v)
{
    const json_t *j = json_object_get(o, key);

    *has = json_is_number(j);
    *v = *has ? json_number_value(j) : 0;
}

/* The identity of a stored state. */
struct stored {
    const char *fingerprint, *rule, *tenant, *channel, *queue;
    bool firing;
    int64_t active_at, starts_at, clear_since;
};

static int restore_error(char *errstr, size_t size, const char *fp,
                         const char *why)
{
    snprintf(errstr, size, "alert state %s: %s", fp ? fp : "(no fingerprint)",
             why);
    return -1;
}

static int read_stored(const json_t *state, struct stored *s, char *errstr,
                       size_t size)
{
    const char *status = get_string(state, "status");
    char want[ALERT_FINGERPRINT_LEN + 1];

    s->fingerprint = get_string(state, "fingerprint");
    s->rule = get_string(state, "rule");
    s->tenant = get_string(state, "tenant");
    s->channel = get_string(state, "channel");
    s->queue = get_string(state, "queue");
    if (!s->fingerprint || !s->rule || !s->tenant || !s->channel || !s->queue ||
        !status ||
        (strcmp(status, "pending") != 0 && strcmp(status, "firing") != 0)) {
        return restore_error(errstr, size, s->fingerprint,
                             "expected fingerprint, rule, tenant, channel, "
                             "queue and status pending or firing");
    }
    s->firing = strcmp(status, "firing") == 0;
    if (get_time(state, "active_at", true, &s->active_at) < 0 ||
        get_time(state, "starts_at", s->firing, &s->starts_at) < 0 ||
        get_time(state, "clear_since", false, &s->clear_since) < 0) {
        return restore_error(errstr, size, s->fingerprint,
                             "expected RFC 3339 times in active_at, starts_at "
                             "(when firing) and clear_since (or null)");
    }
    if (strlen(s->tenant) > ALERT_TENANT_MAX ||
        strlen(s->channel) > ALERT_DIM_MAX ||
        strlen(s->queue) > ALERT_DIM_MAX) {
        return restore_error(errstr, size, s->fingerprint,
                             "tenant, channel or queue too long");
    }
    alert_fingerprint(s->rule, s->tenant, s->channel, s->queue, want);
    if (strcmp(want, s->fingerprint) != 0) {
        return restore_error(errstr, size, s->fingerprint,
                             "fingerprint does not match rule and group");
    }
    return 0;
}

int alert_state_restore(struct alert_eval *ae, const json_t *state,
                        char *errstr, size_t errstr_size)
{
    struct stored s;
    const struct rule *r;
    struct group *g;
    uint64_t key;

    if (!json_is_object(state)) {
        return restore_error(errstr, errstr_size, NULL, "expected an object");
    }
    if (read_stored(state, &s, errstr, errstr_size) < 0) {
        return -1;
    }
    if ((r = rules_find(ae->rules, s.rule)) == NULL) {
        snprintf(errstr, errstr_size, "alert state %s: rule %s is not loaded",
                 s.fingerprint, s.rule);
        return 1;
    }
    key = fingerprint64(s.rule, s.tenant, s.channel, s.queue);
    if (u64map_get(&ae->index, key) != NULL) {
        return 0;
    }
    if ((g = add_group(ae, key, r, s.tenant, s.channel, s.queue)) == NULL) {
        return restore_error(errstr, errstr_size, s.fingerprint,
                             "out of memory");
    }
    g->status = s.firing ? ALERT_FIRING : ALERT_PENDING;
    g->active_at_ms = s.active_at;
    g->starts_at_ms = s.firing ? s.starts_at : ALERT_NO_TIME;
    g->clear_since_ms = s.firing ? s.clear_since : ALERT_NO_TIME;
    get_number(state, "value", &g->last.has_value, &g->last.value);
    get_number(state, "threshold", &g->last.has_threshold, &g->last.threshold);
    get_number(state, "baseline", &g->last.has_baseline, &g->last.baseline);
    return 0;
}
