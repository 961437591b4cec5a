/* SPDX-License-Identifier: Apache-2.0 */
/* fetchwake: a helper thread that wakes librdkafka's fetcher while a
 * backlog is read, by asking partition leaders for their end offsets. */
#ifndef TP_FETCHWAKE_H
#define TP_FETCHWAKE_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * librdkafka 2.0's broker thread stops fetching once the consumer queue
 * holds queued.max.messages.kbytes or queued.min.messages, and decides
 * again only at its next one-second turn or when something reaches it: a
 * request it has to send, a reply on its connection. Polling the queue
 * empty does not, so a consumer that drains the queue in less than a second
 * waits out the rest of it (2.2 added fetch.queue.backoff.ms for this;
 * Debian 12 ships 2.0.2). A ListOffsets request for the latest offsets of a
 * leader's partitions reaches that broker thread; it sends the request,
 * decides again and fetches. The call blocks until the replies, so it runs
 * on this thread, one at a time.
 */
struct fetchwake;

/* Starts the thread for consumer rk (which must outlive it). NULL with
 * errstr when it cannot start. */
struct fetchwake *fetchwake_new(rd_kafka_t *rk, char *errstr,
                                size_t errstr_size);
/* Waits for a wake in flight (its requests time out after a second). NULL
 * is fine. */
void fetchwake_destroy(struct fetchwake *w);

/* Whether a wake is in flight. */
bool fetchwake_busy(struct fetchwake *w);
/* Wakes the leaders of parts unless a wake is in flight: then false, and
 * the caller keeps parts; else true, and parts is the thread's to
 * destroy. */
bool fetchwake_ask(struct fetchwake *w, rd_kafka_topic_partition_list_t *parts);
/* Wakes asked for so far. */
uint64_t fetchwake_count(struct fetchwake *w);

#endif
