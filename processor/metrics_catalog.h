/* SPDX-License-Identifier: Apache-2.0 */
/* metrics_catalog: every metric touchpointd exports — one table of names, types, labels and help — and the code that fills them. */
#ifndef TP_METRICS_CATALOG_H
#define TP_METRICS_CATALOG_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "metrics.h"
#include "pipeline.h"
#include "store.h"

/*
 * How the service feeds it (see metrics.h for the threading):
 *  - after every poll/flush cycle the main loop publishes snapshots of what it
 *    already counts: metrics_catalog_pipeline(pipeline_stats(p)),
 *    metrics_catalog_store(store_stats(s)) and the gauges of the moment
 *    (pending cells, tenants, paused) with metrics_catalog_set;
 *  - once at start-up metrics_catalog_limits(cfg);
 *  - per flush metrics_catalog_flush(seconds, cells);
 *  - librdkafka's stats_cb hands its JSON to metrics_catalog_kafka_stats;
 *  - alert code counts with metrics_counter_add(metrics_catalog_series(...)).
 * The HTTP thread calls metrics_catalog_render.
 */

enum metrics_catalog_id {
    MC_MESSAGES_CONSUMED,
    MC_EVENTS_ACCEPTED,
    MC_EVENTS_REJECTED,
    MC_EVENTS_DUPLICATE,
    MC_EVENTS_LATE_DROPPED,
    MC_ORPHAN_ENDS,
    MC_DEAD_LETTER_FAILURES,
    MC_CONSUMER_LAG,
    MC_CONSUMER_PAUSED,
    MC_FETCH_WAKES,
    MC_FLUSHES,
    MC_FLUSH_DURATION,
    MC_FLUSH_BATCH_CELLS,
    MC_REDIS_ERRORS,
    MC_REDIS_RECONNECTS,
    MC_PENDING_CELLS,
    MC_PENDING_CELLS_LIMIT,
    MC_OPEN_CORRELATIONS,
    MC_OPEN_CORRELATIONS_LIMIT,
    MC_CORRELATIONS_EVICTED,
    MC_TENANTS,
    MC_TENANTS_LIMIT,
    MC_DIMS_FOLDED,
    MC_ALERT_TRANSITIONS,
    MC_ALERT_OUTPUT_FAILURES,
    MC_BUILD_INFO,
    MC_RESIDENT_MEMORY,
    MC_COUNT
};

/* The counter of label values folded into "_other", labelled {metric}. */
#define METRICS_CATALOG_OVERFLOW "touchpointd_metric_label_overflow_total"

/* Caps on the label values that are not a fixed set; 0 takes the default
 * (in parentheses). */
struct metrics_caps {
    size_t topics;     /* topic of consumer lag (CONFIG_MAX_TOPICS) */
    size_t partitions; /* partition ids of consumer lag, over all topics (256) */
    size_t rules;      /* alert rule names (64) */
    size_t sinks;      /* alert sink names (8) */
};

/* The states touchpointd_alert_transitions_total{state} knows, in the order
 * of enum alert_status (alert.h): the state a transition enters. */
#define METRICS_ALERT_STATES {"inactive", "pending", "firing", "resolved"}

struct metrics_catalog {
    struct metrics *reg; /* owned */
    struct metrics_family *fam[MC_COUNT];
    /* Fixed label value sets, borrowed by reg. */
    const char *types[EV_TYPE_COUNT];
    const char *reasons[REJ_COUNT];
};

/* Registers the whole catalogue in a new registry and sets build_info to
 * version (borrowed, copied) and the limits to 0. caps is borrowed; NULL
 * takes the defaults. Returns 0 or -1 with errstr. On failure c is released. */
int metrics_catalog_init(struct metrics_catalog *c,
                         const struct metrics_caps *caps, const char *version,
                         char *errstr, size_t errstr_size);
void metrics_catalog_release(struct metrics_catalog *c);

/* The series of metric id with label values v0, v1 (see metrics_series);
 * NULL when c was never initialised. */
struct metrics_series *metrics_catalog_series(struct metrics_catalog *c,
                                              enum metrics_catalog_id id,
                                              const char *v0, const char *v1);

/* Sets an unlabelled gauge (pending cells, tenants, paused ...). */
void metrics_catalog_set(struct metrics_catalog *c, enum metrics_catalog_id id,
                         double value);

/* Snapshot of the pipeline's counters (borrowed): messages, accepted,
 * rejected, duplicates, late, orphans, evicted, folded, open correlations. */
void metrics_catalog_pipeline(struct metrics_catalog *c,
                              const struct pipeline_stats *st);

/* Snapshot of the store's counters (borrowed): flushes, errors, reconnects
 * (connections after the first). */
void metrics_catalog_store(struct metrics_catalog *c,
                           const struct store_stats *st);

/* The configured caps (cfg borrowed): the *_limit gauges. */
void metrics_catalog_limits(struct metrics_catalog *c,
                            const struct config *cfg);

/* One flush attempt took seconds and carried cells aggregate cells. */
void metrics_catalog_flush(struct metrics_catalog *c, double seconds,
                           size_t cells);

/* Reads consumer lag from librdkafka's statistics JSON (json, len borrowed):
 * topics.*.partitions.* with partition >= 0, fetch_state other than "none"
 * and consumer_lag >= 0 set touchpointd_consumer_lag_messages; every other
 * lag series is hidden (revoked partitions). Returns 0, or -1 with errstr
 * when the text is not such JSON (the gauges are left as they were). */
int metrics_catalog_kafka_stats(struct metrics_catalog *c, const char *json,
                                size_t len, char *errstr, size_t errstr_size);

/* Samples process metrics (resident memory). Returns 0 or -1 (no /proc). */
int metrics_catalog_process(struct metrics_catalog *c);

/* Samples process metrics, then renders everything (see metrics_render). */
int metrics_catalog_render(struct metrics_catalog *c, char **out, size_t *len);

/* Writes the catalogue as a Markdown table (metric, type, labels, help),
 * label caps at their defaults, for the README. */
void metrics_catalog_write_markdown(FILE *out);

#endif
