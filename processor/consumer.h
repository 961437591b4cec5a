/* SPDX-License-Identifier: Apache-2.0 */
/* consumer: Kafka input — consumer group, dead-letter producer, offsets recorded in Redis and committed to Kafka. */
#ifndef TP_CONSUMER_H
#define TP_CONSUMER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "engine.h"

struct consumer;
struct httpd;

/* Creates the consumer and dead-letter producer from cfg->kafka (cfg, e and
 * h borrowed; they must outlive it; h may be NULL) and subscribes to
 * cfg->topics. The consumer keeps h's liveness and readiness and feeds the
 * engine's metrics (consumer lag from librdkafka statistics). Returns NULL
 * with errstr naming the bad property. */
struct consumer *consumer_new(const struct config *cfg, struct engine *e,
                              struct httpd *h, char *errstr,
                              size_t errstr_size);

struct alerting;

/* The instance that owns partition 0 of the first topic evaluates the alert
 * rules: al (borrowed; may be NULL) is activated and deactivated as that
 * partition moves. */
void consumer_set_alerting(struct consumer *c, struct alerting *al);

/* When *flag is raised (SIGHUP), the loop lowers it and calls fn(arg). */
void consumer_on_reload(struct consumer *c, volatile sig_atomic_t *flag,
                        void (*fn)(void *arg), void *arg);

/* An alerting_outputs.kafka sink: produces json to alert_outputs.kafka_topic
 * keyed by key, through the dead-letter producer. arg is the consumer. */
int consumer_produce_alert(const char *key, const char *json, void *arg);

/* Consumes until *stop is raised, then flushes, commits and leaves the group
 * within service.shutdown_timeout. Returns 0 on a clean stop, -1 on a fatal
 * error (logged). */
int consumer_run(struct consumer *c, volatile sig_atomic_t *stop);

/* After consumer_run: what is left of service.shutdown_timeout (ms, 0 when
 * it has passed or consumer_run has not stopped), for what still has to be
 * sent on the way out. */
int64_t consumer_exit_left_ms(const struct consumer *c);

/* Frees c, waiting for the dead-letter producer's queue no longer than
 * consumer_exit_left_ms. NULL is a no-op. */
void consumer_destroy(struct consumer *c);

#endif
