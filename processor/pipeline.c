/* SPDX-License-Identifier: Apache-2.0 */
/* pipeline: turns messages into aggregate deltas — validate, dedupe, correlate, aggregate — and hands them out per flush. */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "corr.h"
#include "dedupe.h"
#include "mem.h"
#include "scan.h"
#include "u64map.h"

/*
 * Design
 *
 * Everything here is pure memory work; Redis and Kafka live elsewhere. A
 * message is validated (event.c), checked against the clock (future, late),
 * de-duplicated by (partition, tenant, event_id), correlated within its
 * partition (corr.c) and added to the cell of its tenant, leaf row and
 * event-time bucket (agg.c). Roll-ups are not touched per event: at flush time
 * the leaf cells are merged into their CHANNEL:_all, _all:QUEUE and _all:_all
 * rows in a scratch set, so a failed flush leaves the pending leaves as they
 * were and the next attempt simply includes more.
 *
 * Live gauges are deltas (a wait opened: +1 on the starting row) plus, per
 * partition, the oldest open wait start of each row, recomputed at flush time
 * only for partitions whose waits changed and published as differences.
 */

#define NAME_MAX_LEN 300

/* Kinds in the persisted value format (struct corr_update). */
static const char kind_chars[] = {[CORR_DM] = 'd', [CORR_CALL] = 'c',
                                   [CORR_TICKET] = 't'};

/* One row's oldest open wait start within a partition. */
struct oldest_entry {
    uint32_t tenant;
    uint32_t dim;
    int64_t ms;
};

struct oldest_set {
    struct oldest_entry *v;
    size_t n, cap;
    struct u64map index; /* row key -> entry */
};

struct partition {
    char name[NAME_MAX_LEN];
    uint32_t id;
    struct corr *corr;
    /* What the next flush writes of the log (persist only): positions of
     * the records marked dirty since the last flush took the log (a
     * position may be stale: its record closed, or taken again) - the
     * first PIPELINE_DIRTY_LIST_MAX of them; past those (dirty_scan) the
     * flush finds them by their dirty bits instead - and the keys of logged
     * records closed since. n_marked counts the marks, listed or not. */
    uint32_t *dirty;
    size_t n_dirty, cap_dirty, n_marked;
    bool dirty_scan;
    uint64_t *closed;
    size_t n_closed, cap_closed;
    uint64_t log_lines;          /* lines of the persisted log in Redis */
    uint64_t log_next;           /* ... once the prepared batch is applied */
    bool log_reset;              /* the prepared batch snapshots the log */
    bool oldest_dirty;
    struct oldest_set published; /* what Redis has (after the last flush) */
    struct oldest_set computed;  /* what the pending flush will write */
};

struct pipeline {
    const struct config *cfg;
    bool event_clock;
    bool persist;
    int64_t clock_ms;          /* event clock: newest occurred_at */
    int64_t last_flush_clock;  /* clock at the last applied flush */
    struct dims *dims;
    struct agg *pending;       /* leaf cells since the last applied flush */
    struct agg *scratch;       /* pending + roll-ups, for one flush */
    struct dedupe *dedupe;
    struct partition **parts;
    size_t n_parts, cap_parts;
    uint32_t next_part_id;
    struct live_delta *live;   /* leaf rows; index via live_index */
    size_t n_live, cap_live;
    struct u64map live_index;
    struct live_delta *live_out; /* roll-ups expanded, for one flush */
    size_t n_live_out, cap_live_out;
    struct u64map live_out_index;
    struct oldest_update *oldest_out;
    size_t n_oldest_out, cap_oldest_out;
    /* build_oldest's scratch: the oldest wait start of each leaf row of one
     * partition at leaf_min[leaf] (INT64_MAX between scans), and the leaf
     * rows given one, in the order first seen. */
    int64_t *leaf_min;
    size_t cap_leaf_min;
    uint32_t *leaves;
    size_t n_leaves, cap_leaves;
    struct corr_log *corr_out;
    size_t n_corr_out, cap_corr_out;
    char *values;                /* corr_out texts, back to back */
    size_t values_len, values_cap;
    uint64_t *late_by_tenant;
    size_t cap_late;
    struct pipeline_stats stats;
    struct flush_batch batch;
};

static uint64_t row_key(uint32_t tenant, uint32_t dim)
{
    return ((uint64_t)(tenant + 1) << 32) | dim;
}

struct pipeline *pipeline_new(const struct config *cfg, bool event_clock,
                              char *errstr, size_t errstr_size)
{
    struct pipeline *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        goto out_oom;
    }
    p->cfg = cfg;
    p->event_clock = event_clock;
    p->dims = dims_new(cfg);
    p->pending = agg_new(cfg->bucket_ms);
    p->scratch = agg_new(cfg->bucket_ms);
    p->dedupe = dedupe_new((size_t)cfg->dedupe_capacity, cfg->dedupe_horizon_ms);
    u64map_init(&p->live_index);
    u64map_init(&p->live_out_index);
    if (p->dims == NULL || p->pending == NULL || p->scratch == NULL ||
        p->dedupe == NULL) {
        goto out_free;
    }
    return p;

out_free:
    pipeline_destroy(p);
out_oom:
    snprintf(errstr, errstr_size, "out of memory creating the pipeline");
    return NULL;
}

static void oldest_set_release(struct oldest_set *s)
{
    free(s->v);
    u64map_release(&s->index);
    memset(s, 0, sizeof(*s));
}

static void partition_free(struct partition *part)
{
    corr_destroy(part->corr);
    free(part->dirty);
    free(part->closed);
    oldest_set_release(&part->published);
    oldest_set_release(&part->computed);
    free(part);
}

void pipeline_destroy(struct pipeline *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->n_parts; i++) {
        partition_free(p->parts[i]);
    }
    free(p->parts);
    dims_destroy(p->dims);
    agg_destroy(p->pending);
    agg_destroy(p->scratch);
    dedupe_destroy(p->dedupe);
    free(p->live);
    free(p->live_out);
    free(p->oldest_out);
    free(p->leaf_min);
    free(p->leaves);
    free(p->corr_out);
    free(p->values);
    free(p->late_by_tenant);
    u64map_release(&p->live_index);
    u64map_release(&p->live_out_index);
    free(p);
}

struct partition *pipeline_partition(struct pipeline *p, const char *name)
{
    struct partition *part;

    for (size_t i = 0; i < p->n_parts; i++) {
        if (strcmp(p->parts[i]->name, name) == 0) {
            return p->parts[i];
        }
    }
    if (mem_grow((void **)&p->parts, &p->cap_parts, p->n_parts + 1,
                 sizeof(*p->parts)) < 0 ||
        (part = calloc(1, sizeof(*part))) == NULL) {
        return NULL;
    }
    snprintf(part->name, sizeof(part->name), "%s", name);
    part->id = p->next_part_id++;
    part->corr = corr_new();
    if (part->corr == NULL) {
        free(part);
        return NULL;
    }
    p->parts[p->n_parts++] = part;
    return part;
}

void pipeline_partition_drop(struct pipeline *p, struct partition *part)
{
    for (size_t i = 0; i < p->n_parts; i++) {
        if (p->parts[i] == part) {
            p->stats.open_correlations -= corr_count(part->corr);
            p->stats.handed_over += corr_count(part->corr);
            partition_free(part);
            p->parts[i] = p->parts[--p->n_parts];
            return;
        }
    }
}

void pipeline_set_persist(struct pipeline *p, bool on)
{
    p->persist = on;
}

int pipeline_reserve(struct pipeline *p)
{
    return dedupe_reserve(p->dedupe);
}

void pipeline_populate(const struct pipeline *p)
{
    dedupe_populate(p->dedupe);
}

int64_t pipeline_clock(const struct pipeline *p, int64_t now_ms)
{
    return p->event_clock ? p->clock_ms : now_ms;
}

/* ---- leaf rows ---- */

/* The id of a leaf row as corr_rec.leaf keeps it (dims numbers the rows;
 * config_check bounds them to limits.max_tenants x
 * (limits.max_dims_per_tenant + 1), under CORR_MAX_LEAVES), or -1 when out
 * of memory. */
static int leaf_of(struct pipeline *p, int tenant, int dim)
{
    int id = dims_row_id(p->dims, tenant, dim);

    return id < 0 || (uint32_t)id >= CORR_MAX_LEAVES ? -1 : id;
}

/* ---- live gauges ---- */

static struct live_delta *live_row(struct pipeline *p, uint32_t tenant,
                                   uint32_t dim)
{
    uint64_t key = row_key(tenant, dim);
    uint32_t *idx = u64map_get(&p->live_index, key);
    struct live_delta *d;

    if (idx != NULL) {
        return &p->live[*idx];
    }
    if (mem_grow((void **)&p->live, &p->cap_live, p->n_live + 1,
                 sizeof(*p->live)) < 0 ||
        u64map_put(&p->live_index, key, (uint32_t)p->n_live) < 0) {
        return NULL;
    }
    d = &p->live[p->n_live++];
    memset(d, 0, sizeof(*d));
    d->tenant = tenant;
    d->dim = dim;
    return d;
}

/* Adds sign to the gauge of a record's kind on the record's row. */
static int live_change(struct pipeline *p, const struct corr_rec *r, int sign)
{
    struct dims_row_ref l = dims_row_of(p->dims, r->leaf);
    struct live_delta *d = live_row(p, l.tenant, l.dim);

    if (d == NULL) {
        return -1;
    }
    switch ((enum corr_kind)r->kind) {
    case CORR_DM:
        d->waiting_dms += sign;
        break;
    case CORR_CALL:
        d->waiting_calls += sign;
        break;
    case CORR_TICKET:
        d->open_tickets += sign;
        break;
    }
    return 0;
}

/* ---- correlation ---- */

/* Notes that the next flush writes r's line. A record opened since the last
 * flush (not logged) and closed again before the next one is never written
 * at all. The list of dirty records stops at PIPELINE_DIRTY_LIST_MAX (16 KiB
 * of positions): a flush that changed more records (a busy second, a
 * backlog, an outage) reads the dirty bits of all of them instead, so the
 * list stays that small however many changed; one sequential pass over the
 * records costs about what visiting that many listed ones in event order
 * does. */
static void mark_dirty(struct pipeline *p, struct partition *part,
                       struct corr_rec *r)
{
    if (!p->persist || r->dirty) {
        return;
    }
    r->dirty = 1;
    part->n_marked++;
    if (part->dirty_scan) {
        return;
    }
    /* A list that cannot grow (full, or out of memory) hands over to the
     * scan: no change is lost. */
    if (part->n_dirty == PIPELINE_DIRTY_LIST_MAX ||
        mem_grow((void **)&part->dirty, &part->cap_dirty, part->n_dirty + 1,
                 sizeof(*part->dirty)) < 0) {
        part->dirty_scan = true;
        return;
    }
    part->dirty[part->n_dirty++] = corr_pos(part->corr, r);
}

/* Notes that the next flush writes r's closing (if the log holds it). */
static int mark_closed(struct pipeline *p, struct partition *part,
                       const struct corr_rec *r)
{
    if (!p->persist || !r->logged) {
        return 0;
    }
    if (mem_grow((void **)&part->closed, &part->cap_closed,
                 part->n_closed + 1, sizeof(*part->closed)) < 0) {
        return -1;
    }
    part->closed[part->n_closed++] = r->key;
    return 0;
}

/* The kind of correlation an event type opens, ends or touches; -1 for
 * surveys. */
static int corr_kind_of(enum event_type type)
{
    switch (type) {
    case EV_DM_RECEIVED:
    case EV_DM_REPLIED:
        return CORR_DM;
    case EV_CALL_QUEUED:
    case EV_CALL_ANSWERED:
    case EV_CALL_ABANDONED:
    case EV_CALL_ENDED:
        return CORR_CALL;
    case EV_TICKET_OPENED:
    case EV_TICKET_REPLIED:
    case EV_TICKET_CLOSED:
    case EV_TICKET_REOPENED:
        return CORR_TICKET;
    default:
        return -1;
    }
}

void pipeline_hash_event(const struct event *ev, struct event_hashes *h)
{
    int kind = corr_kind_of(ev->type);

    h->tenant = dims_tenant_key(ev->tenant);
    h->id = hash64(ev->event_id, strlen(ev->event_id), 0);
    h->corr = kind < 0 ? 0
                       : corr_key((enum corr_kind)kind, h->tenant, ev->corr_id);
    h->pair = dims_pair_hash(ev->channel, ev->queue);
}

/* Duplicates are judged per tenant and per partition instance: a partition
 * assigned again re-reads from its recorded offsets, and those events are
 * not duplicates of the first reading. */
static uint64_t dedupe_key(const struct partition *part,
                           const struct event_hashes *h)
{
    return hash64_pair(h->id, h->tenant + part->id);
}

void pipeline_prefetch(const struct pipeline *p, const struct partition *part,
                       const struct event_hashes *h)
{
    dedupe_prefetch(p->dedupe, dedupe_key(part, h));
    if (h->corr != 0) {
        corr_prefetch(part->corr, h->corr);
    }
}

void pipeline_prefetch_record(const struct pipeline *p,
                              const struct partition *part,
                              const struct event_hashes *h)
{
    (void)p;
    if (h->corr != 0) {
        corr_prefetch_rec(part->corr, h->corr);
    }
}


static void close_rec(struct pipeline *p, struct partition *part,
                      struct corr_rec *r)
{
    /* The row exists already (it was created when the record opened), so
     * this cannot run out of memory. */
    (void)live_change(p, r, -1);
    if (r->waiting) {
        part->oldest_dirty = true;
    }
    /* Out of memory here leaves the record open in the log; the close
     * still happens in memory. */
    (void)mark_closed(p, part, r);
    r->dirty = 0;
    corr_close(part->corr, r);
    p->stats.open_correlations--;
}

/* The partition whose oldest open record started first. */
static struct partition *oldest_partition(struct pipeline *p)
{
    struct partition *best = NULL;
    int64_t best_ms = INT64_MAX;

    for (size_t i = 0; i < p->n_parts; i++) {
        struct corr_rec *r = corr_oldest(p->parts[i]->corr);
        if (r != NULL && corr_start(p->parts[i]->corr, r) < best_ms) {
            best = p->parts[i];
            best_ms = corr_start(p->parts[i]->corr, r);
        }
    }
    return best;
}

/* limits.max_open_correlations is one cap over all partitions: past it the
 * record that started first anywhere is evicted (partitions are few, so the
 * scan is cheap; corr_oldest ranks a partition's records once per as many
 * evictions, records opened since the ranking coming after it). */
static void evict_if_full(struct pipeline *p)
{
    while ((int64_t)p->stats.open_correlations >
           p->cfg->max_open_correlations) {
        struct partition *part = oldest_partition(p);
        if (part == NULL) {
            return;
        }
        close_rec(p, part, corr_oldest(part->corr));
        p->stats.evicted++;
    }
}

/* Opens a record unless one is open (a repeated start does not restart the
 * wait). Returns 0 or -1 (out of memory). */
static int open_rec(struct pipeline *p, struct partition *part,
                    enum corr_kind kind, uint64_t key, const struct event *ev,
                    int tenant, int dim, bool waiting)
{
    struct corr_rec *r = corr_find(part->corr, key);
    int leaf;

    if (r != NULL) {
        return 0;
    }
    leaf = leaf_of(p, tenant, dim);
    r = leaf < 0 ? NULL : corr_open(part->corr, key);
    if (r == NULL) {
        return -1;
    }
    r->leaf = (uint32_t)leaf;
    r->kind = (uint8_t)kind;
    r->waiting = waiting;
    if (corr_set_start(part->corr, r, ev->occurred_ms) < 0 ||
        live_change(p, r, +1) < 0) {
        corr_close(part->corr, r);
        return -1;
    }
    mark_dirty(p, part, r);
    p->stats.open_correlations++;
    part->oldest_dirty |= waiting;
    evict_if_full(p);
    return 0;
}

static int64_t wait_of(const struct event *ev, const struct partition *part,
                       const struct corr_rec *r)
{
    int64_t w;

    if (ev->wait_ms != EVENT_NO_WAIT) {
        return ev->wait_ms;
    }
    w = ev->occurred_ms - corr_start(part->corr, r);
    return w < 0 ? 0 : w;
}

/* A completed wait sample on the ending event's cell, judged against the
 * service-level target of the event's channel. */
static int record_wait(struct agg_cell *c, int64_t w, int64_t target_ms)
{
    c->f[F_SL_N]++;
    if (w <= target_ms) {
        c->f[F_SL_MET]++;
    }
    return agg_add_wait(c, w);
}

/* dm.replied, call.answered: close the wait with a sample. */
static int end_wait(struct pipeline *p, struct partition *part, uint64_t key,
                    const struct event *ev, struct agg_cell *c,
                    int64_t target_ms)
{
    struct corr_rec *r = corr_find(part->corr, key);
    int64_t w;

    if (r == NULL && ev->wait_ms == EVENT_NO_WAIT) {
        p->stats.orphans[ev->type]++;
        return 0;
    }
    w = wait_of(ev, part, r);
    if (r != NULL) {
        close_rec(p, part, r);
    }
    return record_wait(c, w, target_ms);
}

static void abandon(struct pipeline *p, struct partition *part, uint64_t key,
                    const struct event *ev, struct agg_cell *c,
                    int64_t target_ms)
{
    struct corr_rec *r = corr_find(part->corr, key);
    int64_t w;

    c->f[F_ABANDONED]++;
    if (r == NULL && ev->wait_ms == EVENT_NO_WAIT) {
        p->stats.orphans[ev->type]++;
        return;
    }
    w = wait_of(ev, part, r);
    if (r != NULL) {
        close_rec(p, part, r);
    }
    if (p->cfg->abandons == ABANDON_MISSED ||
        (p->cfg->abandons == ABANDON_EXCLUDE_SHORT && w > target_ms)) {
        c->f[F_SL_N]++;
    }
}

static void close_quietly(struct pipeline *p, struct partition *part,
                          uint64_t key)
{
    struct corr_rec *r = corr_find(part->corr, key);

    if (r != NULL) {
        close_rec(p, part, r);
    }
}

static int ticket_reply(struct pipeline *p, struct partition *part,
                        uint64_t key, const struct event *ev,
                        struct agg_cell *c, int64_t target_ms)
{
    struct corr_rec *r = corr_find(part->corr, key);

    if (r == NULL) {
        if (ev->wait_ms == EVENT_NO_WAIT) {
            p->stats.orphans[ev->type]++;
            return 0;
        }
        return record_wait(c, ev->wait_ms, target_ms);
    }
    if (!r->waiting) {
        return 0; /* not the first reply */
    }
    r->waiting = 0;
    part->oldest_dirty = true;
    mark_dirty(p, part, r);
    return record_wait(c, wait_of(ev, part, r), target_ms);
}

static int ticket_close(struct pipeline *p, struct partition *part,
                        uint64_t key, const struct event *ev,
                        struct agg_cell *c)
{
    struct corr_rec *r = corr_find(part->corr, key);
    int64_t ttr;

    if (ev->opened_ms != EVENT_NO_TIME) {
        ttr = ev->occurred_ms - ev->opened_ms;
    } else if (r != NULL) {
        ttr = ev->occurred_ms - corr_start(part->corr, r);
    } else {
        p->stats.orphans[ev->type]++;
        return 0;
    }
    if (r != NULL) {
        close_rec(p, part, r);
    }
    return agg_add_ttr(c, ttr < 0 ? 0 : ttr);
}

static void survey(const struct event *ev, struct agg_cell *c)
{
    switch (ev->type) {
    case EV_SURVEY_NPS:
        c->f[F_NPS_N]++;
        c->f[ev->score >= 9   ? F_PROMOTERS
              : ev->score >= 7 ? F_PASSIVES
                               : F_DETRACTORS]++;
        break;
    case EV_SURVEY_CSAT:
        c->f[F_CSAT_N]++;
        c->f[F_CSAT_SUM] += ev->score;
        c->f[F_CSAT_GOOD] += ev->score >= 4;
        break;
    default:
        c->f[F_CES_N]++;
        c->f[F_CES_SUM] += ev->score;
        break;
    }
}

/* Applies one accepted event. A folded event's row is _other:_other, so its
 * service-level target is looked up by its own channel. Returns 0 or -1 (out
 * of memory). */
static int apply(struct pipeline *p, struct partition *part,
                 const struct event *ev, uint64_t key, int tenant, int dim,
                 bool folded)
{
    struct agg_cell *c =
        agg_cell(p->pending, (uint32_t)tenant, (uint32_t)dim, ev->occurred_ms);
    int64_t target = folded ? config_target_ms(p->cfg, ev->channel)
                            : dims_get(p->dims, tenant, dim)->target_ms;

    if (c == NULL) {
        return -1;
    }
    c->f[F_EVENTS]++;
    switch (ev->type) {
    case EV_DM_RECEIVED:
        return open_rec(p, part, CORR_DM, key, ev, tenant, dim, true);
    case EV_CALL_QUEUED:
        return open_rec(p, part, CORR_CALL, key, ev, tenant, dim, true);
    case EV_TICKET_OPENED:
        return open_rec(p, part, CORR_TICKET, key, ev, tenant, dim, true);
    case EV_TICKET_REOPENED:
        return open_rec(p, part, CORR_TICKET, key, ev, tenant, dim, false);
    case EV_DM_REPLIED:
        return end_wait(p, part, key, ev, c, target);
    case EV_CALL_ANSWERED:
        c->f[F_ANSWERED]++;
        return end_wait(p, part, key, ev, c, target);
    case EV_CALL_ABANDONED:
        abandon(p, part, key, ev, c, target);
        return 0;
    case EV_CALL_ENDED:
        close_quietly(p, part, key);
        return 0;
    case EV_TICKET_REPLIED:
        return ticket_reply(p, part, key, ev, c, target);
    case EV_TICKET_CLOSED:
        return ticket_close(p, part, key, ev, c);
    default:
        survey(ev, c);
        return 0;
    }
}

static int note_late(struct pipeline *p, int tenant)
{
    size_t n = p->cap_late;

    if (mem_grow((void **)&p->late_by_tenant, &p->cap_late,
                 (size_t)tenant + 1, sizeof(*p->late_by_tenant)) < 0) {
        return -1;
    }
    memset(p->late_by_tenant + n, 0,
           (p->cap_late - n) * sizeof(*p->late_by_tenant));
    p->late_by_tenant[tenant]++;
    p->stats.late_dropped++;
    return 0;
}

static enum pipe_outcome reject(struct pipeline *p, struct event_error *err,
                                enum event_reject reason, const char *field,
                                const char *text)
{
    err->reason = reason;
    snprintf(err->field, sizeof(err->field), "%s", field);
    snprintf(err->text, sizeof(err->text), "%s", text);
    p->stats.rejected[reason]++;
    return PIPE_REJECTED;
}

/* Clock rules of schemas/events.md: future (run only) and late. */
static enum pipe_outcome check_time(struct pipeline *p, const struct event *ev,
                                    int64_t now_ms, struct event_error *err)
{
    int64_t clock, bucket_end;

    if (p->event_clock) {
        if (ev->occurred_ms > p->clock_ms) {
            p->clock_ms = ev->occurred_ms;
        }
    } else if (ev->occurred_ms > now_ms + p->cfg->future_skew_ms) {
        return reject(p, err, REJ_FUTURE, "occurred_at",
                      "occurred_at in the future");
    }
    clock = pipeline_clock(p, now_ms);
    if (p->last_flush_clock == 0) {
        p->last_flush_clock = clock;
    }
    /* Late: the bucket ended more than the retention before the clock. */
    bucket_end = agg_bucket_of(p->pending, ev->occurred_ms) + p->cfg->bucket_ms;
    return clock - bucket_end > p->cfg->retention_ms ? PIPE_LATE
                                                     : PIPE_ACCEPTED;
}

static enum pipe_outcome process_event(struct pipeline *p,
                                       struct partition *part,
                                       const struct event *ev,
                                       const struct event_hashes *h,
                                       int64_t now_ms, struct event_error *err)
{
    enum pipe_outcome rc = check_time(p, ev, now_ms, err);
    int tenant, dim;
    bool folded;

    if (rc == PIPE_REJECTED) {
        return rc;
    }
    tenant = dims_tenant_keyed(p->dims, ev->tenant, h->tenant);
    if (tenant < 0) {
        return reject(p, err, REJ_TENANT_LIMIT, "tenant",
                      "tenant limit (limits.max_tenants) reached");
    }
    if (rc == PIPE_LATE) {
        return note_late(p, tenant) < 0 ? PIPE_ERROR : PIPE_LATE;
    }
    switch (dedupe_check(p->dedupe, dedupe_key(part, h),
                         pipeline_clock(p, now_ms))) {
    case 1:
        p->stats.duplicates++;
        return PIPE_DUPLICATE;
    case -1:
        return PIPE_ERROR;
    }
    dim = dims_pair_hashed(p->dims, tenant, ev->channel, ev->queue, h->pair,
                           &folded);
    if (dim < 0 || apply(p, part, ev, h->corr, tenant, dim, folded) < 0) {
        return PIPE_ERROR;
    }
    p->stats.folded += folded;
    p->stats.accepted[ev->type]++;
    return PIPE_ACCEPTED;
}

enum pipe_outcome pipeline_process(struct pipeline *p, struct partition *part,
                                   const char *buf, size_t len, int64_t now_ms,
                                   struct event_error *err)
{
    struct event ev;
    struct event_hashes h;
    /* The single-pass scanner: same decisions, classes and fields as
     * event_parse (jansson), proven by tests/fuzz and test_scan; ~10x
     * cheaper per event. */
    int rc = scan_event(buf, len, (size_t)p->cfg->max_message_bytes, &ev, err);

    if (rc == 0) {
        pipeline_hash_event(&ev, &h);
    }
    return pipeline_process_scanned(p, part, rc, &ev, &h, now_ms, err);
}

enum pipe_outcome pipeline_process_scanned(struct pipeline *p,
                                           struct partition *part,
                                           int scan_rc, const struct event *ev,
                                           const struct event_hashes *h,
                                           int64_t now_ms,
                                           struct event_error *err)
{
    p->stats.messages++;
    if (scan_rc < 0) {
        p->stats.rejected[err->reason]++;
        return PIPE_REJECTED;
    }
    return process_event(p, part, ev, h, now_ms, err);
}

bool pipeline_flush_due(const struct pipeline *p, int64_t now_ms)
{
    /* The cell keys of agg.c stay exact while pending buckets span less than
     * about two retentions; an event clock that ran on a retention forces a
     * flush. */
    return (int64_t)agg_count(p->pending) >= p->cfg->max_pending_cells ||
           (agg_count(p->pending) > 0 &&
            pipeline_clock(p, now_ms) - p->last_flush_clock >
                p->cfg->retention_ms);
}

const struct pipeline_stats *pipeline_stats(const struct pipeline *p)
{
    return &p->stats;
}

size_t pipeline_pending_cells(const struct pipeline *p)
{
    return agg_count(p->pending);
}

const struct dims *pipeline_dims(const struct pipeline *p)
{
    return p->dims;
}

uint64_t pipeline_late_dropped(const struct pipeline *p, int tenant)
{
    return (size_t)tenant < p->cap_late ? p->late_by_tenant[tenant] : 0;
}

/* ---- persisted correlation state ---- */

static int kind_of(char c, enum corr_kind *kind)
{
    for (int k = 0; k < 3; k++) {
        if (kind_chars[k] == c) {
            *kind = (enum corr_kind)k;
            return 0;
        }
    }
    return -1;
}

static int oldest_note(struct oldest_set *s, uint32_t tenant, uint32_t dim,
                       int64_t ms);

/* A restored wait's rows hold this partition's oldest entry in Redis, as the
 * previous owner published it (its log and its oldest entries go in one
 * flush). They are noted as published with an unknown start (INT64_MIN), so
 * the first flush writes each row's start again, and removes the entry of a
 * row whose waits all ended (answered, or evicted) before it. */
static int note_restored_wait(struct pipeline *p, struct partition *part,
                              int tenant, int dim)
{
    const struct dim *row = dims_get(p->dims, tenant, dim);

    for (int k = 0; k < DIMS_ROLLUPS; k++) {
        if (oldest_note(&part->published, (uint32_t)tenant,
                        (uint32_t)row->rollup[k], INT64_MIN) < 0) {
            return -1;
        }
    }
    return 0;
}

int pipeline_partition_restore(struct pipeline *p, struct partition *part,
                               uint64_t key, const char *value)
{
    char tenant[EVENT_TENANT_MAX + 1], channel[EVENT_DIM_MAX + 1],
        queue[EVENT_DIM_MAX + 1], kc;
    long long start;
    int waiting, t, dim, leaf;
    enum corr_kind kind;
    struct corr_rec *r;

    if (sscanf(value, "%lld %c %d %64s %32s %32s", &start, &kc, &waiting,
               tenant, channel, queue) != 6 ||
        kind_of(kc, &kind) < 0 ||
        (t = dims_tenant_restored(p->dims, tenant)) < 0 ||
        (dim = dims_pair_restored(p->dims, t, channel, queue)) < 0 ||
        (leaf = leaf_of(p, t, dim)) < 0) {
        return -1;
    }
    if (corr_find(part->corr, key) != NULL) {
        return 0;
    }
    r = corr_open(part->corr, key);
    if (r == NULL) {
        return -1;
    }
    if (corr_set_start(part->corr, r, start) < 0 ||
        (waiting != 0 && note_restored_wait(p, part, t, dim) < 0)) {
        corr_close(part->corr, r);
        return -1;
    }
    r->leaf = (uint32_t)leaf;
    r->kind = (uint8_t)kind;
    r->waiting = waiting != 0;
    r->logged = 1;
    p->stats.open_correlations++;
    part->oldest_dirty |= r->waiting;
    evict_if_full(p);
    return 0;
}

void pipeline_partition_restored(struct pipeline *p, struct partition *part,
                                 uint64_t log_lines)
{
    (void)p;
    part->log_lines = log_lines;
    part->log_next = log_lines;
}

/* ---- flush ---- */

static int build_cells(struct pipeline *p)
{
    agg_clear(p->scratch);
    for (size_t i = 0; i < agg_count(p->pending); i++) {
        const struct agg_cell *leaf = agg_at(p->pending, i);
        const struct dim *row = dims_get(p->dims, (int)leaf->tenant,
                                         (int)leaf->dim);
        for (int r = 0; r < DIMS_ROLLUPS; r++) {
            struct agg_cell *c =
                agg_cell(p->scratch, leaf->tenant, (uint32_t)row->rollup[r],
                         leaf->bucket_ms);
            /* leaf may not move: it lives in another set. */
            if (c == NULL || agg_merge(c, leaf) < 0) {
                return -1;
            }
        }
    }
    agg_sort(p->scratch);
    return 0;
}

static int build_live(struct pipeline *p)
{
    p->n_live_out = 0;
    u64map_clear(&p->live_out_index);
    for (size_t i = 0; i < p->n_live; i++) {
        const struct live_delta *d = &p->live[i];
        const struct dim *row = dims_get(p->dims, (int)d->tenant, (int)d->dim);
        for (int r = 0; r < DIMS_ROLLUPS; r++) {
            uint64_t key = row_key(d->tenant, (uint32_t)row->rollup[r]);
            uint32_t *idx = u64map_get(&p->live_out_index, key);
            struct live_delta *o;
            if (idx == NULL) {
                if (mem_grow((void **)&p->live_out, &p->cap_live_out,
                             p->n_live_out + 1, sizeof(*p->live_out)) < 0 ||
                    u64map_put(&p->live_out_index, key,
                               (uint32_t)p->n_live_out) < 0) {
                    return -1;
                }
                o = &p->live_out[p->n_live_out++];
                memset(o, 0, sizeof(*o));
                o->tenant = d->tenant;
                o->dim = (uint32_t)row->rollup[r];
            } else {
                o = &p->live_out[*idx];
            }
            o->open_tickets += d->open_tickets;
            o->waiting_dms += d->waiting_dms;
            o->waiting_calls += d->waiting_calls;
        }
    }
    return 0;
}

/* Lowers the oldest start of one row in a set (adding the row if new). */
static int oldest_note(struct oldest_set *s, uint32_t tenant, uint32_t dim,
                       int64_t ms)
{
    uint64_t key = row_key(tenant, dim);
    uint32_t *idx = u64map_get(&s->index, key);

    if (idx != NULL) {
        if (ms < s->v[*idx].ms) {
            s->v[*idx].ms = ms;
        }
        return 0;
    }
    if (mem_grow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)) < 0 ||
        u64map_put(&s->index, key, (uint32_t)s->n) < 0) {
        return -1;
    }
    s->v[s->n++] = (struct oldest_entry){tenant, dim, ms};
    return 0;
}

/* The walk over a partition's open records: one array slot per leaf row. */
static void scan_rec(const struct corr_rec *r, int64_t start_ms, void *arg)
{
    struct pipeline *p = arg;
    int64_t *m;

    if (!r->waiting) {
        return;
    }
    m = &p->leaf_min[r->leaf];
    if (*m == INT64_MAX) { /* first record of the row: its minimum is *m */
        p->leaves[p->n_leaves++] = r->leaf;
    }
    if (start_ms < *m) {
        *m = start_ms;
    }
}

/* Sizes the scratch of build_oldest to the leaf rows interned now. */
static int oldest_scratch(struct pipeline *p)
{
    size_t total = dims_row_ids(p->dims), old = p->cap_leaf_min;

    if (mem_grow((void **)&p->leaf_min, &p->cap_leaf_min, total,
                 sizeof(*p->leaf_min)) < 0 ||
        mem_grow((void **)&p->leaves, &p->cap_leaves, total,
                 sizeof(*p->leaves)) < 0) {
        return -1;
    }
    for (size_t i = old; i < p->cap_leaf_min; i++) {
        p->leaf_min[i] = INT64_MAX;
    }
    return 0;
}

static int oldest_emit(struct pipeline *p, struct partition *part,
                       uint32_t tenant, uint32_t dim, int64_t ms)
{
    struct oldest_update *u;

    if (mem_grow((void **)&p->oldest_out, &p->cap_oldest_out,
                 p->n_oldest_out + 1, sizeof(*p->oldest_out)) < 0) {
        return -1;
    }
    u = &p->oldest_out[p->n_oldest_out++];
    *u = (struct oldest_update){tenant, dim, part->name, ms};
    return 0;
}

/* Recomputes a dirty partition's oldest starts and emits what changed. */
static int build_oldest_part(struct pipeline *p, struct partition *part)
{
    struct oldest_set *pub = &part->published;
    int rc = 0;

    part->computed.n = 0;
    u64map_clear(&part->computed.index);
    p->n_leaves = 0;
    corr_foreach(part->corr, scan_rec, p);
    for (size_t i = 0; i < p->n_leaves; i++) {
        struct dims_row_ref l = dims_row_of(p->dims, p->leaves[i]);
        int64_t *m = &p->leaf_min[p->leaves[i]];
        const struct dim *row = dims_get(p->dims, (int)l.tenant, (int)l.dim);

        for (int k = 0; k < DIMS_ROLLUPS && rc == 0; k++) {
            rc = oldest_note(&part->computed, l.tenant,
                             (uint32_t)row->rollup[k], *m);
        }
        *m = INT64_MAX;
    }
    if (rc < 0) {
        return -1;
    }
    for (size_t i = 0; i < part->computed.n; i++) {
        const struct oldest_entry *e = &part->computed.v[i];
        uint32_t *idx = u64map_get(&pub->index, row_key(e->tenant, e->dim));
        if ((idx == NULL || pub->v[*idx].ms != e->ms) &&
            oldest_emit(p, part, e->tenant, e->dim, e->ms) < 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < pub->n; i++) {
        const struct oldest_entry *e = &pub->v[i];
        if (u64map_get(&part->computed.index, row_key(e->tenant, e->dim)) ==
                NULL &&
            oldest_emit(p, part, e->tenant, e->dim, -1) < 0) {
            return -1;
        }
    }
    return 0;
}

static int build_oldest(struct pipeline *p)
{
    p->n_oldest_out = 0;
    if (oldest_scratch(p) < 0) {
        return -1;
    }
    for (size_t i = 0; i < p->n_parts; i++) {
        if (p->parts[i]->oldest_dirty &&
            build_oldest_part(p, p->parts[i]) < 0) {
            return -1;
        }
    }
    return 0;
}

static char *put_hex16(char *o, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 15; i >= 0; i--) {
        o[i] = digits[v & 15];
        v >>= 4;
    }
    return o + 16;
}

static char *put_i64(char *o, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        *o++ = '-';
    }
    while (n > 0) {
        *o++ = tmp[--n];
    }
    return o;
}

static char *put_word(char *o, const char *s)
{
    size_t n = strlen(s);

    *o++ = ' ';
    memcpy(o, s, n);
    return o + n;
}

/* Appends a line of struct corr_log to the values arena: the record r
 * (open) or, with r NULL, the closing of key. Returns 0 or -1. Formatted by
 * hand: a flush writes hundreds of thousands of lines, snprintf made that
 * most of the flush preparation. */
static int append_line(struct pipeline *p, uint64_t key,
                       const struct corr_rec *r, int64_t start_ms)
{
    size_t need = 64 + EVENT_TENANT_MAX + 2 * EVENT_DIM_MAX;
    char *o;

    if (mem_grow((void **)&p->values, &p->values_cap, p->values_len + need,
                 1) < 0) {
        return -1;
    }
    o = put_hex16(p->values + p->values_len, key);
    if (r != NULL) {
        struct dims_row_ref l = dims_row_of(p->dims, r->leaf);
        const struct dim *row = dims_get(p->dims, (int)l.tenant, (int)l.dim);
        *o++ = ' ';
        o = put_i64(o, start_ms);
        *o++ = ' ';
        *o++ = kind_chars[r->kind];
        *o++ = ' ';
        *o++ = r->waiting ? '1' : '0';
        o = put_word(o, dims_tenant_name(p->dims, (int)l.tenant));
        o = put_word(o, row->channel);
        o = put_word(o, row->queue);
    }
    *o++ = '\n';
    p->values_len = (size_t)(o - p->values);
    return 0;
}

/* corr_foreach's walk that appends the lines of open records: all of them
 * (a snapshot), or those whose dirty bit is set (dirty_only). */
struct snapshot_ctx {
    struct pipeline *p;
    bool dirty_only;
    uint64_t lines;
    int rc;
};

static void snapshot_one(const struct corr_rec *r, int64_t start_ms,
                         void *arg)
{
    struct snapshot_ctx *c = arg;

    if (c->rc == 0 && (!c->dirty_only || r->dirty)) {
        c->rc = append_line(c->p, r->key, r, start_ms);
        c->lines++;
    }
}

/* Dirty records looked ahead of the one at hand. */
#define CORR_PREFETCH_AHEAD 16

/* Sets (or clears) the dirty bit of every open record part->dirty names:
 * each was dirty when the flush began, and build_corr_part clears it on the
 * record's line, which also writes a position named twice only once. */
static void set_dirty(struct partition *part, bool on)
{
    for (size_t k = 0; k < part->n_dirty; k++) {
        struct corr_rec *r = corr_at(part->corr, part->dirty[k]);
        if (r->key != 0) {
            r->dirty = on;
        }
    }
}

/* The log of part for this flush: its changes (the closings first, so a key
 * closed and opened again ends open), or a snapshot of its open records when
 * the log would pass twice their number (plus some slack), so Redis holds
 * O(open) and a restore reads O(open). *lines: the lines written. */
static int build_corr_part(struct pipeline *p, struct partition *part,
                           bool reset, uint64_t *lines)
{
    *lines = 0;
    if (reset) {
        struct snapshot_ctx c = {p, false, 0, 0};
        corr_foreach(part->corr, snapshot_one, &c);
        *lines = c.lines;
        set_dirty(part, false);
        return c.rc;
    }
    for (size_t k = 0; k < part->n_closed; k++) {
        if (append_line(p, part->closed[k], NULL, 0) < 0) {
            return -1;
        }
        (*lines)++;
    }
    if (part->dirty_scan) { /* the bits are cleared by corr_taken */
        struct snapshot_ctx c = {p, true, 0, 0};
        corr_foreach(part->corr, snapshot_one, &c);
        *lines += c.lines;
        return c.rc;
    }
    for (size_t k = 0; k < part->n_dirty; k++) {
        struct corr_rec *r;
        /* Records are marked in event order, not position order. */
        if (k + CORR_PREFETCH_AHEAD < part->n_dirty) {
            corr_prefetch_at(part->corr, part->dirty[k + CORR_PREFETCH_AHEAD]);
        }
        r = corr_at(part->corr, part->dirty[k]);
        if (r->key == 0 || !r->dirty) {
            continue; /* closed since (or written already) */
        }
        if (append_line(p, r->key, r, corr_start(part->corr, r)) < 0) {
            return -1;
        }
        r->dirty = 0;
        (*lines)++;
    }
    return 0;
}

/* After the log of every partition is taken: what it wrote is logged. */
static void corr_taken(struct partition *part, bool reset)
{
    if (reset || part->dirty_scan) {
        for (uint32_t i = 0; i < corr_positions(part->corr); i++) {
            struct corr_rec *r = corr_at(part->corr, i);
            if (r->key != 0 && (reset || r->dirty)) {
                r->logged = 1;
                r->dirty = 0;
            }
        }
    } else {
        for (size_t k = 0; k < part->n_dirty; k++) {
            struct corr_rec *r = corr_at(part->corr, part->dirty[k]);
            if (r->key != 0) {
                r->logged = 1;
            }
        }
    }
    part->n_dirty = 0;
    part->n_marked = 0;
    part->dirty_scan = false;
    part->n_closed = 0;
}

/* Lines a log may hold beyond twice the open records before it is
 * rewritten. */
#define CORR_LOG_SLACK 4096

static int build_corr(struct pipeline *p)
{
    bool snapshot_taken = false;

    p->n_corr_out = 0;
    p->values_len = 0;
    for (size_t i = 0; i < p->n_parts && p->persist; i++) {
        struct partition *part = p->parts[i];
        size_t off = p->values_len;
        uint64_t lines;
        /* One snapshot per flush bounds the memory it needs to the largest
         * partition's. */
        bool reset = !snapshot_taken &&
                     part->log_lines + part->n_marked + part->n_closed >
                         2 * (uint64_t)corr_count(part->corr) + CORR_LOG_SLACK;

        part->log_next = part->log_lines;
        part->log_reset = reset;
        if (!reset && part->n_marked + part->n_closed == 0) {
            continue;
        }
        if (build_corr_part(p, part, reset, &lines) < 0) {
            return -1;
        }
        if (!reset && lines == 0) {
            continue;
        }
        snapshot_taken |= reset;
        part->log_next = reset ? lines : part->log_lines + lines;
        if (mem_grow((void **)&p->corr_out, &p->cap_corr_out,
                     p->n_corr_out + 1, sizeof(*p->corr_out)) < 0) {
            return -1;
        }
        /* text holds an offset for now: the arena may still move. */
        p->corr_out[p->n_corr_out++] = (struct corr_log){
            .member = part->name,
            .reset = reset,
            .text = (const char *)(uintptr_t)off,
            .len = p->values_len - off,
        };
    }
    for (size_t i = 0; i < p->n_corr_out; i++) {
        p->corr_out[i].text = p->values + (uintptr_t)p->corr_out[i].text;
    }
    return 0;
}

int pipeline_flush_prepare(struct pipeline *p, int64_t now_ms,
                           const struct flush_batch **batch)
{
    p->stats.dedupe_evicted = dedupe_evicted(p->dedupe);
    if (build_cells(p) < 0 || build_live(p) < 0 || build_oldest(p) < 0) {
        return -1;
    }
    if (build_corr(p) < 0) {
        for (size_t i = 0; i < p->n_parts; i++) {
            set_dirty(p->parts[i], true); /* the next attempt writes them */
        }
        return -1;
    }
    p->batch = (struct flush_batch){
        .dims = p->dims,
        .cells = p->scratch,
        .live = p->live_out,
        .n_live = p->n_live_out,
        .oldest = p->oldest_out,
        .n_oldest = p->n_oldest_out,
        .corr = p->corr_out,
        .n_corr = p->n_corr_out,
        .clock_ms = pipeline_clock(p, now_ms),
    };
    *batch = &p->batch;
    return 0;
}

static void publish_oldest(struct partition *part)
{
    struct oldest_set tmp = part->published;

    part->published = part->computed;
    part->computed = tmp;
    part->oldest_dirty = false;
}

void pipeline_flush_done(struct pipeline *p, bool applied)
{
    if (!applied) {
        for (size_t i = 0; i < p->n_parts; i++) {
            set_dirty(p->parts[i], true); /* the next batch writes them */
        }
        return;
    }
    agg_clear(p->pending);
    p->n_live = 0;
    u64map_clear(&p->live_index);
    for (size_t i = 0; i < p->n_parts; i++) {
        if (p->parts[i]->oldest_dirty) {
            publish_oldest(p->parts[i]);
        }
        if (p->persist) {
            corr_taken(p->parts[i], p->parts[i]->log_reset);
        }
        p->parts[i]->log_reset = false;
        p->parts[i]->log_lines = p->parts[i]->log_next;
    }
    p->last_flush_clock = p->batch.clock_ms;
}
