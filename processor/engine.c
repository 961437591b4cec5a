/* SPDX-License-Identifier: Apache-2.0 */
/* engine: the pipeline and the store together — flush timing, retries with backoff, clock ticks, the summary. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "alerting.h"
#include "log.h"
#include "metrics_catalog.h"
#include "tstamp.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000

struct engine {
    const struct config *cfg;
    struct pipeline *pipe;
    struct store *store;
    int64_t last_flush_mono;
    int64_t retry_at_mono;   /* 0: no backoff running */
    int64_t backoff_ms;
    uint64_t batch_seq;      /* batches taken so far: names the in-flight one */
    int64_t last_tick_bucket;
    bool failing;
    struct metrics_catalog *mc;     /* borrowed, may be NULL */
    struct alerting *alerting;      /* borrowed, may be NULL */
    bool event_clock;
    int64_t flushed_bucket;         /* clock bucket of the last flush */
    struct log_limit alert_limit;
    struct pipeline_stats reported; /* counters at the last cap report */
    struct log_limit cap_limit;
    /* The batch being written: taken from the pipeline, resent unchanged
     * (same offsets) until Redis confirms it, so a lost reply cannot make it
     * count twice. */
    const struct flush_batch *inflight;
    struct store_offset *offs;
    char (*members)[ENGINE_MEMBER_MAX];
    size_t n_offs, cap_offs;
    uint64_t applied_before; /* retries that found their flush applied */
    struct store *fstore;    /* a connection of its own for the flushes */
    int64_t sent_mono;       /* when the flush in flight was sent */
    const volatile sig_atomic_t *stop; /* NULL, or see engine_watch_stop */
    bool draining;           /* see engine_drain */
    int64_t drain_clock;     /* -1, or the clock the drain's refresh owes */
};

struct engine *engine_new(const struct config *cfg, bool event_clock,
                          char *errstr, size_t errstr_size)
{
    struct engine *e = calloc(1, sizeof(*e));

    if (e == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    e->cfg = cfg;
    e->pipe = pipeline_new(cfg, event_clock, errstr, errstr_size);
    e->store = e->pipe ? store_new(cfg, errstr, errstr_size) : NULL;
    e->fstore = e->store ? store_new(cfg, errstr, errstr_size) : NULL;
    if (e->fstore == NULL) {
        engine_destroy(e);
        return NULL;
    }
    e->last_flush_mono = tstamp_mono_ms();
    e->last_tick_bucket = -1;
    e->drain_clock = -1;
    e->event_clock = event_clock;
    return e;
}

void engine_destroy(struct engine *e)
{
    if (e == NULL) {
        return;
    }
    pipeline_destroy(e->pipe);
    store_destroy(e->store);
    store_destroy(e->fstore);
    free(e->offs);
    free(e->members);
    free(e);
}

void engine_set_alerting(struct engine *e, struct alerting *al)
{
    e->alerting = al;
}

/* Backtest: a new bucket of event time needs an evaluation. */
static bool new_bucket(const struct engine *e)
{
    int64_t clock = pipeline_clock(e->pipe, 0);

    return e->alerting != NULL && e->event_clock && clock > 0 &&
           clock - clock % e->cfg->bucket_ms != e->flushed_bucket;
}

void engine_set_metrics(struct engine *e, struct metrics_catalog *mc)
{
    e->mc = mc;
    if (mc != NULL) {
        metrics_catalog_limits(mc, e->cfg);
    }
}

struct metrics_catalog *engine_metrics(struct engine *e)
{
    return e->mc;
}

/* The counters of both connections. */
static struct store_stats both_stats(const struct engine *e)
{
    struct store_stats st = *store_stats(e->store);
    const struct store_stats *fs = store_stats(e->fstore);

    st.commands += fs->commands;
    st.errors += fs->errors;
    st.reconnects += fs->reconnects;
    st.flushes += fs->flushes;
    return st;
}

void engine_publish_metrics(struct engine *e)
{
    struct store_stats st = both_stats(e);

    if (e->mc == NULL) {
        return;
    }
    metrics_catalog_pipeline(e->mc, pipeline_stats(e->pipe));
    metrics_catalog_store(e->mc, &st);
    metrics_catalog_set(e->mc, MC_PENDING_CELLS,
                        (double)(pipeline_pending_cells(e->pipe) +
                                 (e->inflight ? agg_count(e->inflight->cells)
                                              : 0)));
    metrics_catalog_set(e->mc, MC_TENANTS,
                        (double)dims_tenant_count(pipeline_dims(e->pipe)));
}

struct pipeline *engine_pipeline(struct engine *e)
{
    return e->pipe;
}

struct store *engine_store(struct engine *e)
{
    return e->store;
}

bool engine_flush_due(const struct engine *e, int64_t mono_ms)
{
    if (store_flush_open(e->fstore)) {
        return false;
    }
    if (e->retry_at_mono != 0) {
        return mono_ms >= e->retry_at_mono;
    }
    return mono_ms - e->last_flush_mono >= e->cfg->flush_interval_ms ||
           pipeline_flush_due(e->pipe, tstamp_now_ms()) || new_bucket(e);
}

bool engine_flush_may_start(const struct engine *e, int64_t mono_ms)
{
    int64_t gap = e->cfg->flush_interval_ms / 4;

    /* retry_at_mono is set exactly while flushes are failing. */
    return !store_flush_open(e->fstore) && e->retry_at_mono == 0 &&
           mono_ms - e->last_flush_mono >= (gap < 1000 ? gap : 1000);
}

bool engine_degraded(const struct engine *e)
{
    return e->failing;
}

static void flush_failed(struct engine *e, const char *why, int64_t mono)
{
    if (!e->failing) {
        log_msg(LOG_ERROR, "store",
                "flush failed, retrying with backoff (state kept in memory): "
                "%s",
                why);
    }
    e->failing = true;
    e->backoff_ms = e->backoff_ms ? e->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (e->backoff_ms > BACKOFF_MAX_MS) {
        e->backoff_ms = BACKOFF_MAX_MS;
    }
    e->retry_at_mono = mono + e->backoff_ms;
}

/* Logs every cap that overflowed since the last report, naming its key. */
static void report_caps(struct engine *e)
{
    const struct pipeline_stats *st = pipeline_stats(e->pipe);
    struct pipeline_stats *old = &e->reported;
    uint64_t tenants = st->rejected[REJ_TENANT_LIMIT] -
                       old->rejected[REJ_TENANT_LIMIT];

    if (st->evicted > old->evicted || st->folded > old->folded ||
        tenants > 0 || st->dedupe_evicted > old->dedupe_evicted) {
        log_limited(&e->cap_limit, LOG_WARN, "limits",
                    "caps reached since the last report: "
                    "limits.max_open_correlations evicted=%llu, "
                    "limits.max_dims_per_tenant folded=%llu, "
                    "limits.max_tenants rejected=%llu, "
                    "limits.dedupe_capacity forgotten=%llu",
                    (unsigned long long)(st->evicted - old->evicted),
                    (unsigned long long)(st->folded - old->folded),
                    (unsigned long long)tenants,
                    (unsigned long long)(st->dedupe_evicted -
                                         old->dedupe_evicted));
        *old = *st;
    }
}

static bool stop_seen(const struct engine *e)
{
    return e->stop != NULL && *e->stop != 0;
}

/* After a flush: gauges follow the clock; windows slide once per bucket.
 * False when a stop signal came first or meanwhile (the sweep is left
 * between two steps; every step is idempotent). */
static bool tick(struct engine *e, int64_t clock, int64_t wall)
{
    char err[256], cursor[STORE_CURSOR_MAX] = "0";
    int64_t bucket = clock - clock % e->cfg->bucket_ms;
    bool slide = bucket != e->last_tick_bucket;

    do {
        if (stop_seen(e)) {
            return false;
        }
        if (store_tick_step(e->store, clock, wall, slide, cursor, err,
                            sizeof(err)) < 0) {
            log_msg(LOG_WARN, "store", "tick failed: %s", err);
            return true;
        }
    } while (strcmp(cursor, "0") != 0);
    e->last_tick_bucket = bucket;
    return true;
}

/* Copies the offsets of a new batch (members too: the caller's may move). */
static int keep_offsets(struct engine *e, const struct store_offset *offsets,
                        size_t n)
{
    if (n > e->cap_offs) {
        struct store_offset *o = realloc(e->offs, n * sizeof(*o));
        char(*m)[ENGINE_MEMBER_MAX] = o ? realloc(e->members, n * sizeof(*m))
                                        : NULL;
        if (o != NULL) {
            e->offs = o;
        }
        if (m == NULL) {
            return -1;
        }
        e->members = m;
        e->cap_offs = n;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(e->members[i], ENGINE_MEMBER_MAX, "%s", offsets[i].member);
        e->offs[i] = offsets[i];
        e->offs[i].member = e->members[i];
    }
    e->n_offs = n;
    return 0;
}

/* Takes everything pending into a new in-flight batch. */
static int take_batch(struct engine *e, const struct store_offset *offsets,
                      size_t n_offsets, int64_t now_ms)
{
    const struct flush_batch *batch;

    if (keep_offsets(e, offsets, n_offsets) < 0 ||
        pipeline_flush_prepare(e->pipe, now_ms, &batch) < 0) {
        return -1;
    }
    pipeline_flush_done(e->pipe, true); /* the batch stays valid */
    e->inflight = batch;
    e->batch_seq++; /* the name of this batch in every send of it */
    return 0;
}

const struct store_offset *engine_flushed_offsets(const struct engine *e,
                                                  size_t *n)
{
    *n = e->n_offs;
    return e->offs;
}

int engine_flush_start(struct engine *e, const struct store_offset *offsets,
                       size_t n_offsets, const char *group, int64_t now_ms)
{
    int64_t mono = tstamp_mono_ms();
    char err[512];

    if (store_flush_open(e->fstore)) {
        return ENGINE_FLUSH_PENDING;
    }
    if (e->inflight == NULL &&
        take_batch(e, offsets, n_offsets, now_ms) < 0) {
        snprintf(err, sizeof(err), "out of memory preparing the flush");
        flush_failed(e, err, mono);
        return -1;
    }
    e->sent_mono = mono;
    if (store_flush_send(e->fstore, e->inflight, e->batch_seq, e->offs,
                         e->n_offs, group, now_ms, err, sizeof(err)) < 0) {
        flush_failed(e, err, mono);
        engine_publish_metrics(e);
        return -1;
    }
    return 0;
}

bool engine_flush_busy(const struct engine *e)
{
    return store_flush_open(e->fstore);
}

bool engine_flush_retrying(const struct engine *e)
{
    return e->inflight != NULL && !store_flush_open(e->fstore);
}

/* After a flush: the clock-driven values, then the alert rules. False when
 * a stop signal cut it short. */
static bool run_refresh(struct engine *e, int64_t clock)
{
    char err[512];

    if (!tick(e, clock, tstamp_now_ms())) {
        return false;
    }
    if (e->alerting != NULL &&
        alerting_evaluate(e->alerting, clock, err, sizeof(err)) < 0) {
        log_limited(&e->alert_limit, LOG_WARN, "alerts",
                    "evaluation failed: %s", err);
    }
    return true;
}

/* The refresh, or (stopping) a note that engine_drain_refresh owes one. */
static void refresh(struct engine *e, int64_t clock)
{
    if (e->draining || !run_refresh(e, clock)) {
        e->drain_clock = clock;
    }
}

/* What follows a flush's outcome: backoff, or the clock-driven values. */
static int flush_finished(struct engine *e, int rc, const char *err)
{
    const struct flush_batch *batch = e->inflight;
    int64_t mono = e->sent_mono;

    if (rc == STORE_FLUSH_CONFLICT) {
        log_msg(LOG_ERROR, "store", "%s", err);
        engine_publish_metrics(e);
        return ENGINE_FLUSH_CONFLICT;
    }
    if (rc < 0) {
        flush_failed(e, err, tstamp_mono_ms());
        engine_publish_metrics(e);
        return -1;
    }
    e->inflight = NULL;
    if (rc == STORE_FLUSH_APPLIED_BEFORE) {
        e->applied_before++;
        log_msg(LOG_WARN, "store",
                "the previous attempt of this flush had been applied (its "
                "reply was lost); not applied again");
    }
    if (e->mc != NULL) {
        metrics_catalog_flush(e->mc, (double)(tstamp_mono_ms() - mono) / 1000.0,
                              agg_count(batch->cells));
    }
    report_caps(e);
    if (e->failing) {
        log_msg(LOG_INFO, "store", "flush succeeded again, resuming");
    }
    e->failing = false;
    e->backoff_ms = 0;
    e->retry_at_mono = 0;
    e->last_flush_mono = mono;
    e->flushed_bucket = batch->clock_ms - batch->clock_ms % e->cfg->bucket_ms;
    refresh(e, batch->clock_ms);
    engine_publish_metrics(e);
    return 0;
}

int engine_flush_poll(struct engine *e, int wait_ms)
{
    char err[512];
    int rc;

    if (!store_flush_open(e->fstore)) {
        return ENGINE_FLUSH_IDLE;
    }
    rc = store_flush_poll(e->fstore, wait_ms, err, sizeof(err));
    if (rc == STORE_FLUSH_PENDING) {
        return ENGINE_FLUSH_PENDING;
    }
    return flush_finished(e, rc, err);
}

int engine_flush(struct engine *e, const struct store_offset *offsets,
                 size_t n_offsets, const char *group, int64_t now_ms)
{
    int rc = engine_flush_poll(e, -1);

    if (rc != ENGINE_FLUSH_IDLE && rc != 0) {
        return rc;
    }
    rc = engine_flush_start(e, offsets, n_offsets, group, now_ms);
    return rc < 0 ? rc : engine_flush_poll(e, -1);
}

void engine_watch_stop(struct engine *e, const volatile sig_atomic_t *stop)
{
    e->stop = stop;
}

void engine_drain(struct engine *e, int64_t deadline_mono)
{
    e->stop = NULL; /* the deadline bounds the drain instead */
    e->draining = true;
    store_set_deadline(e->store, deadline_mono);
    store_set_deadline(e->fstore, deadline_mono);
}

void engine_drain_refresh(struct engine *e)
{
    int64_t clock = e->drain_clock;

    if (clock >= 0) {
        e->drain_clock = -1;
        run_refresh(e, clock);
    }
}

static void write_by_type(FILE *out, const char *label, const uint64_t *v)
{
    uint64_t total = 0;
    const char *sep = "";

    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        total += v[i];
    }
    fprintf(out, "  %-14s %llu", label, (unsigned long long)total);
    if (total > 0) {
        fputs("  (", out);
        for (int i = 0; i < EV_TYPE_COUNT; i++) {
            if (v[i] > 0) {
                fprintf(out, "%s%s %llu", sep, event_type_name((enum event_type)i),
                        (unsigned long long)v[i]);
                sep = ", ";
            }
        }
        fputc(')', out);
    }
    fputc('\n', out);
}

void engine_write_summary(const struct engine *e, FILE *out, const char *title)
{
    const struct pipeline_stats *st = pipeline_stats(e->pipe);
    const struct dims *d = pipeline_dims(e->pipe);
    uint64_t rejected = 0;
    const char *sep = "";

    for (int i = 0; i < REJ_COUNT; i++) {
        rejected += st->rejected[i];
    }
    fprintf(out, "%s\n  %-14s %llu\n", title, "messages",
            (unsigned long long)st->messages);
    write_by_type(out, "accepted", st->accepted);
    fprintf(out, "  %-14s %llu", "rejected", (unsigned long long)rejected);
    if (rejected > 0) {
        fputs("  (", out);
        for (int i = 0; i < REJ_COUNT; i++) {
            if (st->rejected[i] > 0) {
                fprintf(out, "%s%s %llu", sep,
                        event_reject_name((enum event_reject)i),
                        (unsigned long long)st->rejected[i]);
                sep = ", ";
            }
        }
        fputc(')', out);
    }
    fprintf(out, "\n  %-14s %llu\n", "duplicates",
            (unsigned long long)st->duplicates);
    fprintf(out, "  %-14s %llu", "late_dropped",
            (unsigned long long)st->late_dropped);
    sep = "  (";
    for (size_t t = 0; t < dims_tenant_count(d); t++) {
        uint64_t n = pipeline_late_dropped(e->pipe, (int)t);
        if (n > 0) {
            fprintf(out, "%s%s %llu", sep, dims_tenant_name(d, (int)t),
                    (unsigned long long)n);
            sep = ", ";
        }
    }
    fputs(sep[0] == ',' ? ")\n" : "\n", out);
    write_by_type(out, "orphan_ends", st->orphans);
    fprintf(out, "  %-14s %llu\n  %-14s %llu\n  %-14s %llu", "evicted",
            (unsigned long long)st->evicted, "folded",
            (unsigned long long)st->folded, "open",
            (unsigned long long)st->open_correlations);
    /* run releases its partitions before this is written, so open reads 0
     * after a clean exit: say where the open ones went. */
    if (st->handed_over > 0) {
        fprintf(out, "  (%llu handed over with revoked partitions)",
                (unsigned long long)st->handed_over);
    }
    fputc('\n', out);
}

void engine_log_stats(const struct engine *e)
{
    const struct pipeline_stats *st = pipeline_stats(e->pipe);
    struct store_stats both = both_stats(e);
    const struct store_stats *ss = &both;
    uint64_t acc = 0, rej = 0, orph = 0;

    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        acc += st->accepted[i];
        orph += st->orphans[i];
    }
    for (int i = 0; i < REJ_COUNT; i++) {
        rej += st->rejected[i];
    }
    log_msg(LOG_INFO, "stats",
            "messages=%llu accepted=%llu rejected=%llu duplicates=%llu "
            "late_dropped=%llu orphan_ends=%llu open=%llu evicted=%llu "
            "flushes=%llu redis_errors=%llu",
            (unsigned long long)st->messages, (unsigned long long)acc,
            (unsigned long long)rej, (unsigned long long)st->duplicates,
            (unsigned long long)st->late_dropped, (unsigned long long)orph,
            (unsigned long long)st->open_correlations,
            (unsigned long long)st->evicted, (unsigned long long)ss->flushes,
            (unsigned long long)ss->errors);
}
