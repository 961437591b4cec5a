/* SPDX-License-Identifier: Apache-2.0 */
/* pipeline: turns messages into aggregate deltas — validate, dedupe, correlate, aggregate — and hands them out per flush. */
#ifndef TP_PIPELINE_H
#define TP_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "config.h"
#include "dims.h"
#include "event.h"

enum pipe_outcome {
    PIPE_ACCEPTED,
    PIPE_DUPLICATE,
    PIPE_LATE,
    PIPE_REJECTED,
    PIPE_ERROR, /* out of memory: the message was not applied */
};

struct pipeline_stats {
    uint64_t messages;
    uint64_t accepted[EV_TYPE_COUNT];
    uint64_t rejected[REJ_COUNT];
    uint64_t duplicates;
    uint64_t late_dropped;
    uint64_t orphans[EV_TYPE_COUNT];
    uint64_t evicted;        /* open correlations evicted at the cap */
    uint64_t folded;         /* events folded into _other:_other */
    uint64_t dedupe_evicted; /* event ids forgotten early at the capacity */
    uint64_t open_correlations;
    uint64_t handed_over; /* open correlations of partitions dropped: their
                             next owner restores them from Redis */
};

/* Change of the open-wait gauges of one row (leaf or roll-up). */
struct live_delta {
    uint32_t tenant;
    uint32_t dim;
    int64_t open_tickets;
    int64_t waiting_dms;
    int64_t waiting_calls;
};

/* The oldest open wait start of one partition for one row; oldest_ms < 0
 * means the partition no longer has a wait there. */
struct oldest_update {
    uint32_t tenant;
    uint32_t dim;
    const char *member; /* the partition name, borrowed */
    int64_t oldest_ms;
};

/* What one flush writes of one partition's persisted correlation state, a
 * log in Redis: lines appended to it, or (reset) the whole open state that
 * replaces it. A line is "KEY START KIND WAITING TENANT CHANNEL QUEUE" (KEY
 * corr_key() in 16 hex digits, KIND d, c or t, WAITING 0 or 1): the record
 * is open with these values; or "KEY" alone: it closed. Replaying the log in
 * order gives the open records. */
struct corr_log {
    const char *member; /* the partition name, borrowed */
    bool reset;         /* text is a snapshot replacing the log */
    const char *text;   /* newline-terminated lines, borrowed */
    size_t len;
};

/* What one flush writes: everything since the last applied flush. All
 * pointers are borrowed from the pipeline and valid until
 * pipeline_flush_done. */
struct flush_batch {
    const struct dims *dims;
    struct agg *cells; /* sorted by (tenant, dim, bucket); leaves and roll-ups */
    const struct live_delta *live;
    size_t n_live;
    const struct oldest_update *oldest;
    size_t n_oldest;
    const struct corr_log *corr; /* only with pipeline_set_persist */
    size_t n_corr;
    int64_t clock_ms;
};

struct pipeline;
struct partition;

/* event_clock: the clock is the newest occurred_at (replay, backtest) instead
 * of the now_ms callers pass (run), and future events are not rejected.
 * cfg is borrowed and must outlive the pipeline. */
struct pipeline *pipeline_new(const struct config *cfg, bool event_clock,
                              char *errstr, size_t errstr_size);
void pipeline_destroy(struct pipeline *p);

/* The state of one input partition ("topic/partition"), created on first
 * use. NULL on out of memory. Valid until pipeline_partition_drop. */
struct partition *pipeline_partition(struct pipeline *p, const char *name);

/* With on, every flush batch carries the changes of the open correlations
 * (struct corr_log) so the store can keep them with the offsets, and a
 * partition that moves or restarts resumes with its waits (run). Off by
 * default (replay). */
void pipeline_set_persist(struct pipeline *p, bool on);

/* Records a partition keeps in its list of changes between two flushes;
 * past them a flush finds the changed records by a pass over all of them
 * (the list's memory stays bounded). */
#define PIPELINE_DIRTY_LIST_MAX 4096

/* The dedupe window (limits.dedupe_capacity ids) allocated now, and its
 * pages faulted in, for a service about to consume: run reserves before it
 * joins its group and populates on a thread of its own meanwhile, since the
 * first ids would otherwise wait for the kernel to zero about 100 MB page by
 * page. pipeline_reserve returns 0 or -1 (out of memory); pipeline_populate
 * may run beside pipeline_process (see dedupe_populate). */
int pipeline_reserve(struct pipeline *p);
void pipeline_populate(const struct pipeline *p);

/* Restores one persisted record of part (a line of struct corr_log without
 * its key) before its messages are consumed. Gauges are not changed: Redis
 * already counts the record. Returns 0, or -1 when value is malformed or a
 * limit refuses it. */
int pipeline_partition_restore(struct pipeline *p, struct partition *part,
                               uint64_t key, const char *value);

/* After the restore: the persisted log of part holds log_lines lines (the
 * log is rewritten as a snapshot once it outgrows the open state). */
void pipeline_partition_restored(struct pipeline *p, struct partition *part,
                                 uint64_t log_lines);

/* Forgets a partition that moved to another instance. */
void pipeline_partition_drop(struct pipeline *p, struct partition *part);

/* Processes one message of len bytes from part. now_ms is the wall clock
 * (ignored with event_clock). On PIPE_REJECTED *err says why. */
enum pipe_outcome pipeline_process(struct pipeline *p, struct partition *part,
                                   const char *buf, size_t len, int64_t now_ms,
                                   struct event_error *err);

/* The hashes processing an event looks things up by, functions of the
 * event alone: another thread can compute them ahead (the scan thread), and
 * pipeline_prefetch can start loading what they lead to. */
struct event_hashes {
    uint64_t tenant; /* dims_tenant_key of the tenant */
    uint64_t id;     /* of event_id (the dedupe key adds the partition) */
    uint64_t corr;   /* the correlation record's key; 0 for surveys */
    uint64_t pair;   /* dims_pair_hash of its channel and queue */
};

void pipeline_hash_event(const struct event *ev, struct event_hashes *h);

/* A hint, for an event to be processed soon from part: starts loading the
 * dedupe and correlation slots its hashes lead to, so processing it does
 * not wait for memory. */
void pipeline_prefetch(const struct pipeline *p, const struct partition *part,
                       const struct event_hashes *h);

/* The second step, a few events after pipeline_prefetch of the same hashes:
 * starts loading the correlation record its slot (loaded by now) points
 * at. */
void pipeline_prefetch_record(const struct pipeline *p,
                              const struct partition *part,
                              const struct event_hashes *h);

/* pipeline_process of a message already scanned (scan_event with
 * max_message_bytes, e.g. on another thread): scan_rc and *ev or *err are
 * what scan_event gave, *h what pipeline_hash_event gave (read only when
 * scan_rc is 0). */
enum pipe_outcome pipeline_process_scanned(struct pipeline *p,
                                           struct partition *part,
                                           int scan_rc, const struct event *ev,
                                           const struct event_hashes *h,
                                           int64_t now_ms,
                                           struct event_error *err);

/* The processing clock: now_ms, or the newest event time with event_clock. */
int64_t pipeline_clock(const struct pipeline *p, int64_t now_ms);

/* True when pending state has reached a cap and must be flushed now. */
bool pipeline_flush_due(const struct pipeline *p, int64_t now_ms);

const struct pipeline_stats *pipeline_stats(const struct pipeline *p);
/* Aggregate cells waiting for the next flush. */
size_t pipeline_pending_cells(const struct pipeline *p);
const struct dims *pipeline_dims(const struct pipeline *p);
/* Late events dropped for one tenant. */
uint64_t pipeline_late_dropped(const struct pipeline *p, int tenant);

/* Builds the batch of everything pending (roll-ups added, live deltas and
 * oldest-wait changes computed). Returns 0 and sets *batch (borrowed), or -1
 * on out of memory. Must be followed by pipeline_flush_done. */
int pipeline_flush_prepare(struct pipeline *p, int64_t now_ms,
                           const struct flush_batch **batch);

/* applied: the batch is taken (it reached Redis, or the caller keeps
 * resending it unchanged); pending state is cleared and the batch stays
 * valid until the next prepare. Otherwise the pending state stays and the
 * next batch includes it again. */
void pipeline_flush_done(struct pipeline *p, bool applied);

#endif
