/* SPDX-License-Identifier: Apache-2.0 */
/* alert_json: alerts as JSON messages, Alertmanager alerts and saved state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "tstamp.h"

/* ---- templates ---- */

struct strbuf {
    char *p;
    size_t len, cap;
};

static int sb_add(struct strbuf *sb, const char *s, size_t len)
{
    if (sb->len + len + 1 > sb->cap) {
        size_t cap = (sb->len + len + 1) * 2;
        char *p = realloc(sb->p, cap);
        if (p == NULL) {
            return -1;
        }
        sb->p = p;
        sb->cap = cap;
    }
    memcpy(sb->p + sb->len, s, len);
    sb->len += len;
    sb->p[sb->len] = '\0';
    return 0;
}

void alert_format_number(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, "%s", "NaN");
    } else if (isinf(v)) {
        snprintf(buf, size, "%s", v > 0 ? "+Inf" : "-Inf");
    } else if (fabs(v) < 1e15 && (v == floor(v) || fabs(v) >= 1000)) {
        snprintf(buf, size, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    } else {
        snprintf(buf, size, "%.4g", v);
    }
}

static const char *number_text(bool has, double v, char *buf, size_t size)
{
    if (!has) {
        return "n/a";
    }
    alert_format_number(v, buf, size);
    return buf;
}

static const char *metric_name(const struct rule *r)
{
    return r->metric ? r->metric->name : ALERT_NO_DATA_METRIC;
}

/* The text of one placeholder; numbers go through buf. */
static const char *field_text(const struct alert *a, int field, char *buf,
                              size_t size)
{
    switch (field) {
    case RULE_F_VALUE:
        return number_text(a->has_value, a->value, buf, size);
    case RULE_F_THRESHOLD:
        return number_text(a->has_threshold, a->threshold, buf, size);
    case RULE_F_BASELINE:
        return number_text(a->has_baseline, a->baseline, buf, size);
    case RULE_F_TENANT:
        return a->tenant;
    case RULE_F_CHANNEL:
        return a->channel;
    case RULE_F_QUEUE:
        return a->queue;
    case RULE_F_RULE:
        return a->rule->name;
    case RULE_F_METRIC:
        return metric_name(a->rule);
    default:
        return a->rule->window;
    }
}

struct render_ctx {
    struct strbuf sb;
    const struct alert *a;
};

static int render_part(void *ctx, int field, const char *text, size_t len)
{
    struct render_ctx *rc = ctx;
    char buf[32];

    if (field >= 0) {
        text = field_text(rc->a, field, buf, sizeof(buf));
        len = strlen(text);
    }
    return sb_add(&rc->sb, text, len);
}

char *alert_render(const char *tmpl, const struct alert *a)
{
    struct render_ctx rc = {{NULL, 0, 0}, a};

    if (sb_add(&rc.sb, "", 0) < 0 ||
        rules_template_walk(tmpl, render_part, &rc) != 0) {
        free(rc.sb.p);
        return NULL;
    }
    return rc.sb.p;
}

/* ---- JSON ---- */

static const char *const status_names[] = {
    [ALERT_INACTIVE] = "inactive",
    [ALERT_PENDING] = "pending",
    [ALERT_FIRING] = "firing",
    [ALERT_RESOLVED] = "resolved",
};

/* Integral numbers as JSON integers (a count reads 3, not 3.0). */
static json_t *number(double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        return json_integer((json_int_t)v);
    }
    return json_real(v);
}

static json_t *number_or_null(bool has, double v)
{
    return has ? number(v) : json_null();
}

static json_t *time_or_null(int64_t ms)
{
    char buf[32];

    if (ms == ALERT_NO_TIME) {
        return json_null();
    }
    return json_string(tstamp_format_rfc3339(ms, buf, sizeof(buf)));
}

static json_t *rendered(const char *tmpl, const struct alert *a)
{
    char *s = alert_render(tmpl, a);
    json_t *j = s ? json_string(s) : NULL;

    free(s);
    return j;
}

/* Adds the pairs to o; values rendered for a, or verbatim when a is NULL. */
static int add_pairs(json_t *o, const struct rule_kv *kv, size_t n,
                     const struct alert *a)
{
    for (size_t i = 0; i < n; i++) {
        json_t *v = a ? rendered(kv[i].value, a) : json_string(kv[i].value);
        if (json_object_set_new(o, kv[i].key, v) != 0) {
            return -1;
        }
    }
    return 0;
}

static json_t *pairs_object(const struct rule_kv *kv, size_t n,
                            const struct alert *a)
{
    json_t *o = json_object();

    if (o != NULL && add_pairs(o, kv, n, a) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Sets key to v (taken); non-zero when v is NULL or on out of memory. */
static int put(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new(o, key, v) != 0;
}

static int put_identity(json_t *o, const struct alert *a, const char *status)
{
    const struct rule *r = a->rule;
    int bad = 0;

    bad |= put(o, "fingerprint", json_string(a->fingerprint));
    bad |= put(o, "rule", json_string(r->name));
    bad |= put(o, "status", json_string(status));
    bad |= put(o, "severity", json_string(r->severity));
    bad |= put(o, "tenant", json_string(a->tenant));
    bad |= put(o, "channel", json_string(a->channel));
    bad |= put(o, "queue", json_string(a->queue));
    bad |= put(o, "metric", json_string(metric_name(r)));
    bad |=
        put(o, "window", r->window[0] ? json_string(r->window) : json_null());
    return bad;
}

/* The message of schemas/alert.schema.json with the given status. */
static json_t *message(const struct alert *a, const char *status)
{
    const struct rule *r = a->rule;
    json_t *o = json_object();
    int bad;

    if (o == NULL) {
        return NULL;
    }
    bad = put_identity(o, a, status);
    bad |= put(o, "value", number_or_null(a->has_value, a->value));
    if (rules_kind_baseline(r->kind)) {
        bad |= put(o, "baseline", number_or_null(a->has_baseline, a->baseline));
    } else {
        bad |= put(o, "threshold", number(a->threshold));
    }
    bad |= put(o, "starts_at", time_or_null(a->starts_at_ms));
    bad |= put(o, "ends_at", time_or_null(a->ends_at_ms));
    bad |= put(o, "summary", rendered(r->summary, a));
    bad |= put(o, "labels", pairs_object(r->labels, r->n_labels, NULL));
    bad |= put(o, "annotations",
               pairs_object(r->annotations, r->n_annotations, a));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *alert_to_json(const struct alert *a)
{
    if (a->status != ALERT_FIRING && a->status != ALERT_RESOLVED) {
        return NULL;
    }
    return message(a, status_names[a->status]);
}

json_t *alert_state_to_json(const struct alert *a)
{
    json_t *o;

    if (a->status != ALERT_PENDING && a->status != ALERT_FIRING) {
        return NULL;
    }
    o = message(a, status_names[a->status]);
    if (o != NULL && (put(o, "active_at", time_or_null(a->active_at_ms)) ||
                      put(o, "clear_since", time_or_null(a->clear_since_ms)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *am_labels(const struct alert *a)
{
    const struct rule *r = a->rule;
    json_t *o = pairs_object(r->labels, r->n_labels, NULL);
    int bad;

    if (o == NULL) {
        return NULL;
    }
    bad = put(o, "alertname", json_string(r->name));
    bad |= put(o, "severity", json_string(r->severity));
    bad |= put(o, "tenant", json_string(a->tenant));
    bad |= put(o, "channel", json_string(a->channel));
    bad |= put(o, "queue", json_string(a->queue));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *alert_to_alertmanager(const struct alert *a, int64_t now_ms,
                              int64_t valid_for_ms, const char *generator_url)
{
    const struct rule *r = a->rule;
    json_t *o, *ann;
    int bad;

    if (a->status != ALERT_FIRING && a->status != ALERT_RESOLVED) {
        return NULL;
    }
    if ((o = json_object()) == NULL) {
        return NULL;
    }
    bad = put(o, "labels", am_labels(a));
    ann = json_object();
    bad |= ann == NULL || put(ann, "summary", rendered(r->summary, a)) ||
           add_pairs(ann, r->annotations, r->n_annotations, a) != 0;
    bad |= put(o, "annotations", ann);
    bad |= put(o, "startsAt", time_or_null(a->starts_at_ms));
    bad |= put(o, "endsAt",
               time_or_null(a->status == ALERT_FIRING ? now_ms + valid_for_ms
                                                      : a->ends_at_ms));
    if (generator_url != NULL) {
        bad |= put(o, "generatorURL", json_string(generator_url));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static const char *get_string(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

json_t *alert_state_resolved(const json_t *state, int64_t now_ms)
{
    const char *status = get_string(state, "status");
    json_t *o;
    int bad;

    if (!json_is_object(state) || status == NULL ||
        strcmp(status, "firing") != 0 || (o = json_deep_copy(state)) == NULL) {
        return NULL;
    }
    json_object_del(o, "active_at");
    json_object_del(o, "clear_since");
    bad = put(o, "status", json_string("resolved"));
    bad |= put(o, "value", json_null());
    bad |= put(o, "ends_at", time_or_null(now_ms));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
