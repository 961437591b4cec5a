/* SPDX-License-Identifier: Apache-2.0 */
/* alerting: evaluates the alert rules against the KPIs in Redis and sends the transitions to every output. */
#ifndef TP_ALERTING_H
#define TP_ALERTING_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "store.h"

struct metrics_catalog;
struct rules;

/* Where transitions go besides Redis (the active hash, the stream and
 * PUBLISH, always). Each may be unset. */
struct alerting_outputs {
    /* Kafka: called with the fingerprint (key) and the alert JSON. Returns
     * 0, or -1 when it could not be queued (counted as a failure). */
    int (*kafka)(const char *key, const char *json, void *arg);
    void *kafka_arg;
    /* Backtest: every notification as one JSON line. */
    FILE *print;
    /* Alertmanager base URL ("" or NULL: none). */
    const char *alertmanager_url;
};

struct alerting;

/* cfg, store, mc (may be NULL) and out's pointers are borrowed and must
 * outlive the alerting. Starts inactive. Returns NULL with errstr. */
struct alerting *alerting_new(const struct config *cfg, struct store *store,
                              struct metrics_catalog *mc,
                              const struct alerting_outputs *out,
                              char *errstr, size_t errstr_size);

/* Sends what is queued for Alertmanager (bounded by deadline_ms) and frees.
 * NULL is a no-op. */
void alerting_destroy(struct alerting *al, int64_t deadline_ms);

/* Becomes (or stops being) the instance that evaluates. Activating restores
 * the active alerts of every tenant from Redis, so a firing alert is neither
 * lost nor sent again. Returns 0 or -1 (Redis unreachable; try again). */
int alerting_activate(struct alerting *al, int64_t now_ms, char *errstr,
                      size_t errstr_size);
void alerting_deactivate(struct alerting *al);
bool alerting_active(const struct alerting *al);

/* Evaluates every rule on every group row at the processing clock now_ms
 * (wall time in run, event time in backtest), records the transitions in
 * Redis, then sends the notifications. Does nothing while inactive; without
 * rules it only records and sends the ends of the alerts a reload removed
 * (alerting_set_rules). Returns 0 or -1 (Redis failed; nothing was recorded). */
int alerting_evaluate(struct alerting *al, int64_t now_ms, char *errstr,
                      size_t errstr_size);

/* Replaces the rules (SIGHUP): rs is borrowed and must stay valid until the
 * next alerting_set_rules or alerting_destroy. */
void alerting_set_rules(struct alerting *al, const struct rules *rs,
                        int64_t now_ms);

/* Per-rule counts of notifications (backtest summary). */
void alerting_write_summary(const struct alerting *al, FILE *out);

#endif
