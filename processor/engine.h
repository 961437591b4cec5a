/* SPDX-License-Identifier: Apache-2.0 */
/* engine: the pipeline and the store together — flush timing, retries with backoff, clock ticks, the summary. */
#ifndef TP_ENGINE_H
#define TP_ENGINE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "pipeline.h"
#include "store.h"

struct engine;

/* event_clock as in pipeline_new. cfg is borrowed and must outlive the
 * engine. Returns NULL with errstr. */
struct engine *engine_new(const struct config *cfg, bool event_clock,
                          char *errstr, size_t errstr_size);
void engine_destroy(struct engine *e);

struct metrics_catalog;
struct alerting;

/* Evaluates al (borrowed; may be NULL) after every applied flush. With an
 * event clock (backtest) a flush also happens whenever the clock enters a
 * new bucket, so rules are evaluated at bucket resolution. */
void engine_set_alerting(struct engine *e, struct alerting *al);

/* Publishes flush timings and counter snapshots into mc (borrowed; may be
 * NULL) from now on. */
void engine_set_metrics(struct engine *e, struct metrics_catalog *mc);
struct metrics_catalog *engine_metrics(struct engine *e);

/* Copies the current counters into the metrics (after a flush, and when the
 * input wants fresh numbers). */
void engine_publish_metrics(struct engine *e);

/* Borrowed parts, for the input modules. */
struct pipeline *engine_pipeline(struct engine *e);
struct store *engine_store(struct engine *e);

/* Whether a flush should happen now: the flush interval passed (or a
 * pending cap was reached), and no retry backoff is running. */
bool engine_flush_due(const struct engine *e, int64_t mono_ms);

/* Whether a flush may start before it is due: none is in flight, Redis is
 * not failing, and a quarter of the flush interval (at most a second)
 * passed since the last flush. */
bool engine_flush_may_start(const struct engine *e, int64_t mono_ms);

#define ENGINE_MEMBER_MAX 320 /* "topic/partition" */
#define ENGINE_FLUSH_CONFLICT (-2)

/* Flushes pending state with the offsets it covers (into the keys of
 * consumer group `group`; NULL for replay), then refreshes the
 * clock-driven values. The pending state and offsets are taken into one
 * batch that is resent unchanged until Redis confirms it (offsets given
 * while a batch is in flight are ignored); meanwhile new events pend. On
 * failure a backoff starts (logged once per outage). Returns 0, -1 (retry
 * later) or ENGINE_FLUSH_CONFLICT: Redis records other offsets than the
 * batch starts from (another instance advanced a partition; the batch can
 * never apply). */
int engine_flush(struct engine *e, const struct store_offset *offsets,
                 size_t n_offsets, const char *group, int64_t now_ms);

/* engine_flush in two halves, so consumption goes on while Redis applies a
 * flush (on a connection of its own): start takes a batch (or the one being
 * retried) and sends it: 0, -1 (backoff) or ENGINE_FLUSH_PENDING (one is in
 * flight already). poll waits up to wait_ms (-1: until done) for the one in
 * flight: ENGINE_FLUSH_IDLE (none), ENGINE_FLUSH_PENDING, or what
 * engine_flush returns. Every completion must be seen (poll) before the
 * next start: the caller notes the applied offsets in between. */
#define ENGINE_FLUSH_PENDING 2
#define ENGINE_FLUSH_IDLE 3
int engine_flush_start(struct engine *e, const struct store_offset *offsets,
                       size_t n_offsets, const char *group, int64_t now_ms);
int engine_flush_poll(struct engine *e, int wait_ms);
bool engine_flush_busy(const struct engine *e);
/* A batch failed and waits to be resent. */
bool engine_flush_retrying(const struct engine *e);

/* Once *stop is set (a signal), the refresh that follows every applied
 * flush (the clock-driven values, then the alert rules) is put off to
 * engine_drain_refresh, and a sweep in progress ends between two of its
 * calls: the shutdown's time goes to the flushes first. */
void engine_watch_stop(struct engine *e, const volatile sig_atomic_t *stop);
/* Shutdown from here on: no Redis call outlasts deadline_mono (see
 * store_set_deadline), and the refresh is put off as above. */
void engine_drain(struct engine *e, int64_t deadline_mono);
/* Runs the refresh put off, once, for the last flush applied, within the
 * deadline (a failure is logged, not returned). */
void engine_drain_refresh(struct engine *e);

/* The offsets of the last batch engine_flush applied (valid until the next
 * engine_flush). */
const struct store_offset *engine_flushed_offsets(const struct engine *e,
                                                  size_t *n);

/* True while Redis writes are failing (the input should pause when the
 * pending caps are reached). */
bool engine_degraded(const struct engine *e);

/* Writes the counters as the run/replay summary. */
void engine_write_summary(const struct engine *e, FILE *out, const char *title);

/* One-line stats for the periodic log. */
void engine_log_stats(const struct engine *e);

#endif
