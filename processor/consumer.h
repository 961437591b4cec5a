/* SPDX-License-Identifier: Apache-2.0 */
/* consumer: Kafka input — consumer group, dead-letter producer, offsets recorded in Redis and committed to Kafka. */
#ifndef TP_CONSUMER_H
#define TP_CONSUMER_H

#include <signal.h>
#include <stddef.h>

#include "config.h"
#include "engine.h"

struct consumer;

/* Creates the consumer and dead-letter producer from cfg->kafka (both
 * borrowed; they must outlive it) and subscribes to cfg->topics. Returns
 * NULL with errstr naming the bad property. */
struct consumer *consumer_new(const struct config *cfg, struct engine *e,
                              char *errstr, size_t errstr_size);

/* Consumes until *stop is raised, then flushes, commits and leaves the group
 * within service.shutdown_timeout. Returns 0 on a clean stop, -1 on a fatal
 * error (logged). */
int consumer_run(struct consumer *c, volatile sig_atomic_t *stop);

void consumer_destroy(struct consumer *c);

#endif
