/* SPDX-License-Identifier: Apache-2.0 */
/* consumer: Kafka input — consumer group, dead-letter producer, offsets recorded in Redis and committed to Kafka. */
#ifndef TP_CONSUMER_H
#define TP_CONSUMER_H

#include <signal.h>
#include <stddef.h>

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

/* Consumes until *stop is raised, then flushes, commits and leaves the group
 * within service.shutdown_timeout. Returns 0 on a clean stop, -1 on a fatal
 * error (logged). */
int consumer_run(struct consumer *c, volatile sig_atomic_t *stop);

void consumer_destroy(struct consumer *c);

#endif
