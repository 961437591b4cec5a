/* SPDX-License-Identifier: Apache-2.0 */
/* alerting: evaluates the alert rules against the KPIs in Redis and sends the transitions to every output. */
#include "alerting.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "amclient.h"
#include "log.h"
#include "mem.h"
#include "metrics_catalog.h"
#include "rules.h"
#include "tstamp.h"

/*
 * One evaluation
 *
 * The KPIs live in Redis and are global over all instances, so exactly one
 * instance evaluates (the one that owns the first partition of the first
 * topic; consumer.c calls activate/deactivate as it moves). An evaluation
 * lists the rows (tp:tenants, tp:{T}:dims and their roll-ups), asks each
 * rule's groups for their observation in one script call, feeds the
 * evaluator, and records every transition — the active state and, for
 * notifications, the stream entry and the PUBLISH — in one more script call
 * before anything leaves the process. The cost grows with rules x rows,
 * never with events.
 *
 * A restart or a takeover restores the active alerts from Redis first, so a
 * firing alert neither fires again nor loses its resolution. What cannot be
 * made exact is the window between recording a transition and handing it to
 * Kafka or Alertmanager: a crash there loses that one notification.
 */

#define AM_VALID_FACTOR 3 /* endsAt = now + 3 x resend_interval while firing */
#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(10))

struct row {
    char tenant[EVENT_TENANT_MAX + 1];
    char channel[EVENT_DIM_MAX + 1];
    char queue[EVENT_DIM_MAX + 1];
    char dim[2 * EVENT_DIM_MAX + 2];
};

/* A transition, serialised while its struct alert is valid. */
struct pending {
    char *tenant, *fingerprint, *state, *message;
    bool notify;
};

struct rule_count {
    uint64_t firing, resolved;
};

struct alerting {
    const struct config *cfg;
    struct store *store;
    struct metrics_catalog *mc;
    struct alerting_outputs out;
    struct amclient *am;
    const struct rules *rules;
    struct alert_eval *ae;
    bool active;
    int64_t now_ms;          /* of the evaluation in progress */
    int64_t last_resend_ms;
    struct row *rows;
    size_t n_rows, cap_rows;
    /* Parallel arrays, one entry per (rule, group row) observation. */
    struct store_obs_req *req;
    const struct rule **req_rule;
    const struct row **req_row;
    struct store_obs *obs;
    size_t n_req, cap_req;
    struct pending *tx;
    size_t n_tx, cap_tx;
    json_t *am_batch;        /* Alertmanager alerts of this evaluation */
    struct rule_count *counts; /* per rule, by index in rules */
    size_t n_counts;
    uint64_t failures;
    struct log_limit limit;
};

/* ---- transitions ---- */

static void count_failure(struct alerting *al, const char *sink)
{
    al->failures++;
    if (al->mc != NULL) {
        metrics_counter_add(
            metrics_catalog_series(al->mc, MC_ALERT_OUTPUT_FAILURES, sink, NULL),
            1);
    }
}

static void count_transition(struct alerting *al, const struct alert *a)
{
    static const char *const states[] = METRICS_ALERT_STATES;
    size_t idx = (size_t)(a->rule - al->rules->v);

    if (al->mc != NULL) {
        metrics_counter_add(metrics_catalog_series(al->mc, MC_ALERT_TRANSITIONS,
                                                   a->rule->name,
                                                   states[a->status]),
                            1);
    }
    if (idx < al->n_counts && alert_notifies(a)) {
        if (a->status == ALERT_FIRING) {
            al->counts[idx].firing++;
        } else {
            al->counts[idx].resolved++;
        }
    }
}

static char *dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_FLAGS) : NULL;

    json_decref(j);
    return s;
}

/* The evaluator's callback: serialise now, write later. */
static void on_transition(const struct alert *a, void *opaque)
{
    struct alerting *al = opaque;
    struct pending *p;
    bool keep = a->status == ALERT_PENDING || a->status == ALERT_FIRING;

    count_transition(al, a);
    if (mem_grow((void **)&al->tx, &al->cap_tx, al->n_tx + 1,
                 sizeof(*al->tx)) < 0) {
        count_failure(al, "redis");
        return;
    }
    p = &al->tx[al->n_tx++];
    p->tenant = strdup(a->tenant);
    p->fingerprint = strdup(a->fingerprint);
    p->state = keep ? dump(alert_state_to_json(a)) : NULL;
    p->notify = alert_notifies(a);
    p->message = p->notify ? dump(alert_to_json(a)) : NULL;
    if (p->notify && al->am != NULL && al->am_batch != NULL) {
        json_array_append_new(al->am_batch,
                              alert_to_alertmanager(a, al->now_ms,
                                                    AM_VALID_FACTOR *
                                                        al->cfg->alert_resend_ms,
                                                    NULL));
    }
}

static void clear_pending(struct alerting *al)
{
    for (size_t i = 0; i < al->n_tx; i++) {
        free(al->tx[i].tenant);
        free(al->tx[i].fingerprint);
        free(al->tx[i].state);
        free(al->tx[i].message);
    }
    al->n_tx = 0;
}

static void send_am_batch(struct alerting *al)
{
    if (al->am != NULL && json_array_size(al->am_batch) > 0) {
        char *body = json_dumps(al->am_batch, JSON_FLAGS);
        if (body != NULL) {
            amclient_post(al->am, body);
        }
    }
    json_array_clear(al->am_batch);
}

/* Records the collected transitions, then notifies. */
static int commit(struct alerting *al, char *errstr, size_t errstr_size)
{
    struct store_alert_tx *tx = calloc(al->n_tx + 1, sizeof(*tx));
    int rc = 0;

    if (tx == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < al->n_tx; i++) {
        struct pending *p = &al->tx[i];
        tx[i] = (struct store_alert_tx){p->tenant, p->fingerprint, p->state,
                                        p->notify, p->message};
    }
    if (al->n_tx > 0 &&
        store_alert_write(al->store, tx, al->n_tx, errstr, errstr_size) < 0) {
        /* The evaluator moved on; send anyway rather than lose them. */
        count_failure(al, "redis");
        rc = -1;
    }
    for (size_t i = 0; i < al->n_tx; i++) {
        struct pending *p = &al->tx[i];
        if (!p->notify || p->message == NULL) {
            continue;
        }
        if (al->out.kafka != NULL &&
            al->out.kafka(p->fingerprint, p->message, al->out.kafka_arg) < 0) {
            count_failure(al, "kafka");
        }
        if (al->out.print != NULL) {
            fprintf(al->out.print, "%s\n", p->message);
        }
    }
    send_am_batch(al);
out:
    free(tx);
    clear_pending(al);
    return rc;
}

/* ---- rows and observations ---- */

static int add_row(struct alerting *al, const char *tenant, const char *channel,
                   const char *queue)
{
    struct row *r;

    if (mem_grow((void **)&al->rows, &al->cap_rows, al->n_rows + 1,
                 sizeof(*al->rows)) < 0) {
        return -1;
    }
    r = &al->rows[al->n_rows++];
    snprintf(r->tenant, sizeof(r->tenant), "%s", tenant);
    snprintf(r->channel, sizeof(r->channel), "%s", channel);
    snprintf(r->queue, sizeof(r->queue), "%s", queue);
    snprintf(r->dim, sizeof(r->dim), "%s:%s", channel, queue);
    return 0;
}

/* A leaf row and its roll-ups. */
static void on_leaf(const char *tenant, const char *dim, void *arg)
{
    struct alerting *al = arg;
    char channel[EVENT_DIM_MAX + 1], queue[EVENT_DIM_MAX + 1];
    const char *colon = strchr(dim, ':');

    if (colon == NULL || (size_t)(colon - dim) > EVENT_DIM_MAX ||
        strlen(colon + 1) > EVENT_DIM_MAX) {
        return;
    }
    snprintf(channel, sizeof(channel), "%.*s", (int)(colon - dim), dim);
    snprintf(queue, sizeof(queue), "%s", colon + 1);
    (void)(add_row(al, tenant, channel, queue) < 0 ||
           add_row(al, tenant, channel, "_all") < 0 ||
           add_row(al, tenant, "_all", queue) < 0 ||
           add_row(al, tenant, "_all", "_all") < 0);
}

static int cmp_rows(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    int c = strcmp(x->tenant, y->tenant);

    return c != 0 ? c : strcmp(x->dim, y->dim);
}

static int list_rows(struct alerting *al, char *errstr, size_t errstr_size)
{
    size_t n = 0;

    al->n_rows = 0;
    if (store_rows(al->store, on_leaf, al, errstr, errstr_size) < 0) {
        return -1;
    }
    if (al->n_rows > 1) { /* rows is NULL before the first row */
        qsort(al->rows, al->n_rows, sizeof(*al->rows), cmp_rows);
    }
    for (size_t i = 0; i < al->n_rows; i++) {
        if (n == 0 || cmp_rows(&al->rows[n - 1], &al->rows[i]) != 0) {
            al->rows[n++] = al->rows[i];
        }
    }
    al->n_rows = n;
    return 0;
}

static char source_of(const struct alert_needs *nd)
{
    switch (nd->source) {
    case ALERT_SRC_KPI:
        return nd->baseline_stats ? 'z' : 'k';
    case ALERT_SRC_LIVE:
        return 'l';
    default:
        return 's';
    }
}

/* Grows the four request arrays together. */
static int grow_requests(struct alerting *al)
{
    size_t cap = al->cap_req ? al->cap_req * 2 : 64;
    void *a, *b, *c, *d;

    if (al->n_req < al->cap_req) {
        return 0;
    }
    a = realloc(al->req, cap * sizeof(*al->req));
    if (a != NULL) {
        al->req = a;
    }
    b = realloc(al->req_rule, cap * sizeof(*al->req_rule));
    if (b != NULL) {
        al->req_rule = b;
    }
    c = realloc(al->req_row, cap * sizeof(*al->req_row));
    if (c != NULL) {
        al->req_row = c;
    }
    d = realloc(al->obs, cap * sizeof(*al->obs));
    if (d != NULL) {
        al->obs = d;
    }
    if (a == NULL || b == NULL || c == NULL || d == NULL) {
        return -1;
    }
    al->cap_req = cap;
    return 0;
}

static int add_request(struct alerting *al, const struct rule *r,
                       const struct alert_needs *nd, const struct row *row)
{
    struct store_obs_req *q;

    if (grow_requests(al) < 0) {
        return -1;
    }
    q = &al->req[al->n_req];
    *q = (struct store_obs_req){
        .tenant = row->tenant,
        .dim = row->dim,
        .source = source_of(nd),
        .field = nd->field,
        .window = nd->window,
        .count = {nd->count[0], nd->count[0] ? nd->count[1] : NULL},
        .baseline = nd->baseline_value ? nd->baseline : "",
        .span_ms = nd->baseline_stats ? r->baseline_ms : 0,
        .slice_ms = nd->slice_ms,
        .min_samples = r->min_samples,
    };
    al->req_rule[al->n_req] = r;
    al->req_row[al->n_req++] = row;
    return 0;
}

static int build_requests(struct alerting *al)
{
    al->n_req = 0;
    for (size_t i = 0; i < al->rules->n; i++) {
        const struct rule *r = &al->rules->v[i];
        struct alert_needs nd;
        alert_rule_needs(r, &nd);
        for (size_t k = 0; k < al->n_rows; k++) {
            const struct row *row = &al->rows[k];
            if (alert_row_matches(r, row->tenant, row->channel, row->queue) &&
                add_request(al, r, &nd, row) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

static void observe(struct alerting *al, size_t i)
{
    const struct store_obs_req *q = &al->req[i];
    const struct store_obs *o = &al->obs[i];
    const struct row *row = al->req_row[i];
    struct alert_obs obs = {0};

    obs.tenant = row->tenant;
    obs.channel = row->channel;
    obs.queue = row->queue;
    if (q->source == 's') {
        obs.has_last_event = o->has_value;
        obs.last_event_ms = (int64_t)o->value;
    } else {
        obs.has_value = o->has_value;
        obs.value = o->value;
        obs.samples = o->samples;
    }
    obs.has_baseline = o->has_baseline;
    obs.baseline = o->baseline;
    obs.baseline_samples = o->baseline_samples;
    obs.has_stats = o->has_stats;
    obs.stats_mean = o->mean;
    obs.stats_stddev = o->stddev;
    obs.stats_slices = o->slices;
    alert_eval_observe(al->ae, al->req_rule[i], &obs);
}

/* ---- periodic Alertmanager re-send ---- */

static void add_firing(const struct alert *a, void *opaque)
{
    struct alerting *al = opaque;

    if (a->status == ALERT_FIRING) {
        json_array_append_new(
            al->am_batch,
            alert_to_alertmanager(a, al->now_ms,
                                  AM_VALID_FACTOR * al->cfg->alert_resend_ms,
                                  NULL));
    }
}

static void resend_firing(struct alerting *al)
{
    if (al->am == NULL ||
        al->now_ms - al->last_resend_ms < al->cfg->alert_resend_ms) {
        return;
    }
    al->last_resend_ms = al->now_ms;
    alert_eval_foreach(al->ae, add_firing, al);
    send_am_batch(al);
}

int alerting_evaluate(struct alerting *al, int64_t now_ms, char *errstr,
                      size_t errstr_size)
{
    if (!al->active || al->rules == NULL) {
        return 0;
    }
    if (al->rules->n == 0) {
        /* Nothing to evaluate, but the alerts of the rules a reload removed
         * still resolve (recorded, then sent). */
        al->now_ms = now_ms;
        return al->n_tx > 0 ? commit(al, errstr, errstr_size) : 0;
    }
    al->now_ms = now_ms;
    if (list_rows(al, errstr, errstr_size) < 0 || build_requests(al) < 0) {
        return -1;
    }
    if (al->n_req > 0 &&
        store_alert_read(al->store, now_ms, al->req, al->n_req, al->obs,
                         errstr, errstr_size) < 0) {
        return -1;
    }
    alert_eval_begin(al->ae, now_ms, NULL);
    for (size_t i = 0; i < al->n_req; i++) {
        observe(al, i);
    }
    alert_eval_end(al->ae);
    if (commit(al, errstr, errstr_size) < 0) {
        return -1;
    }
    resend_firing(al);
    if (al->am != NULL && al->mc != NULL) {
        metrics_counter_set(metrics_catalog_series(al->mc,
                                                   MC_ALERT_OUTPUT_FAILURES,
                                                   "alertmanager", NULL),
                            amclient_failures(al->am));
    }
    return 0;
}

/* ---- activation: restore from Redis ---- */

struct restore_ctx {
    struct alerting *al;
    const char *tenant;
    size_t restored, gone;
};

/* A stored alert whose rule is gone resolves (once, here). */
static void resolve_gone(struct restore_ctx *rc, const char *fp,
                         const json_t *state)
{
    struct alerting *al = rc->al;
    char *msg = dump(alert_state_resolved(state, al->now_ms));
    struct pending *p;

    if (mem_grow((void **)&al->tx, &al->cap_tx, al->n_tx + 1,
                 sizeof(*al->tx)) < 0) {
        free(msg);
        return;
    }
    p = &al->tx[al->n_tx++];
    *p = (struct pending){strdup(rc->tenant), strdup(fp), NULL, msg, msg != NULL};
    rc->gone++;
}

static void on_state(const char *fp, const char *json, void *arg)
{
    struct restore_ctx *rc = arg;
    char err[256];
    json_error_t jerr;
    json_t *state = json_loads(json, 0, &jerr);

    if (state == NULL) {
        log_msg(LOG_WARN, "alerts", "%s: unreadable stored alert %s: %s",
                rc->tenant, fp, jerr.text);
        return;
    }
    switch (alert_state_restore(rc->al->ae, state, err, sizeof(err))) {
    case 0:
        rc->restored++;
        break;
    case 1:
        resolve_gone(rc, fp, state);
        break;
    default:
        log_msg(LOG_WARN, "alerts", "%s: stored alert %s not restored: %s",
                rc->tenant, fp, err);
    }
    json_decref(state);
}

int alerting_activate(struct alerting *al, int64_t now_ms, char *errstr,
                      size_t errstr_size)
{
    size_t restored = 0;

    if (al->active) {
        return 0;
    }
    al->now_ms = now_ms;
    if (list_rows(al, errstr, errstr_size) < 0) {
        return -1;
    }
    alert_eval_forget(al->ae, NULL);
    for (size_t i = 0; i < al->n_rows; i++) {
        struct restore_ctx rc = {al, al->rows[i].tenant, 0, 0};
        if (i > 0 && strcmp(al->rows[i - 1].tenant, al->rows[i].tenant) == 0) {
            continue;
        }
        if (store_alert_states(al->store, rc.tenant, on_state, &rc, errstr,
                               errstr_size) < 0) {
            alert_eval_forget(al->ae, NULL);
            clear_pending(al);
            return -1;
        }
        restored += rc.restored;
    }
    commit(al, errstr, errstr_size);
    al->active = true;
    al->last_resend_ms = 0; /* re-send firing alerts at the next evaluation */
    log_msg(LOG_INFO, "alerts", "evaluating %zu rules; %zu active alerts "
                                "restored",
            al->rules ? al->rules->n : 0, restored);
    return 0;
}

void alerting_deactivate(struct alerting *al)
{
    if (al->active) {
        alert_eval_forget(al->ae, NULL);
        al->active = false;
        log_msg(LOG_INFO, "alerts", "stopped evaluating: the lead partition "
                                    "was revoked or the service stops");
    }
}

bool alerting_active(const struct alerting *al)
{
    return al->active;
}

/* ---- lifecycle ---- */

static int reset_counts(struct alerting *al)
{
    size_t n = al->rules ? al->rules->n : 0;

    free(al->counts);
    al->counts = calloc(n + 1, sizeof(*al->counts));
    al->n_counts = al->counts ? n : 0;
    return al->counts ? 0 : -1;
}

struct alerting *alerting_new(const struct config *cfg, struct store *store,
                              struct metrics_catalog *mc,
                              const struct alerting_outputs *out,
                              char *errstr, size_t errstr_size)
{
    struct alerting *al = calloc(1, sizeof(*al));

    if (al == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    al->cfg = cfg;
    al->store = store;
    al->mc = mc;
    al->out = *out;
    al->rules = cfg->rules;
    al->ae = alert_eval_new(cfg->rules, on_transition, al);
    al->am_batch = json_array();
    if (al->ae == NULL || al->am_batch == NULL || reset_counts(al) < 0) {
        snprintf(errstr, errstr_size, "out of memory");
        alerting_destroy(al, 0);
        return NULL;
    }
    if (out->alertmanager_url != NULL && out->alertmanager_url[0] != '\0') {
        al->am = amclient_new(out->alertmanager_url, errstr, errstr_size);
        if (al->am == NULL) {
            alerting_destroy(al, 0);
            return NULL;
        }
    }
    return al;
}

void alerting_set_rules(struct alerting *al, const struct rules *rs,
                        int64_t now_ms)
{
    al->now_ms = now_ms;
    /* The alerts of rules no longer in rs end first, counted against the set
     * their rules belong to; their notifications go out with the next
     * alerting_evaluate. */
    alert_eval_set_rules(al->ae, rs, now_ms);
    al->rules = rs;
    reset_counts(al);
}

void alerting_destroy(struct alerting *al, int64_t deadline_ms)
{
    if (al == NULL) {
        return;
    }
    amclient_destroy(al->am, deadline_ms);
    alert_eval_destroy(al->ae);
    clear_pending(al);
    json_decref(al->am_batch);
    free(al->tx);
    free(al->rows);
    free(al->req);
    free(al->req_rule);
    free(al->req_row);
    free(al->obs);
    free(al->counts);
    free(al);
}

void alerting_write_summary(const struct alerting *al, FILE *out)
{
    fprintf(out, "alert summary (notifications per rule)\n");
    for (size_t i = 0; al->rules != NULL && i < al->rules->n; i++) {
        fprintf(out, "  %-28s firing %llu, resolved %llu\n",
                al->rules->v[i].name,
                (unsigned long long)(i < al->n_counts ? al->counts[i].firing
                                                      : 0),
                (unsigned long long)(i < al->n_counts ? al->counts[i].resolved
                                                      : 0));
    }
}
