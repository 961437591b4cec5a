/* SPDX-License-Identifier: Apache-2.0 */
/* amclient: posts alerts to Prometheus Alertmanager's API v2 from a thread of its own, with retries. */
#ifndef TP_AMCLIENT_H
#define TP_AMCLIENT_H

#include <stddef.h>
#include <stdint.h>

struct amclient;

/* A client for base_url (e.g. "http://127.0.0.1:9093", borrowed and copied);
 * it POSTs to base_url/api/v2/alerts. Returns NULL with errstr. */
struct amclient *amclient_new(const char *base_url, char *errstr,
                              size_t errstr_size);

/* Stops the thread after trying what is queued for up to deadline_ms, and
 * frees the client. NULL is a no-op. */
void amclient_destroy(struct amclient *c, int64_t deadline_ms);

/* Queues a JSON array of Alertmanager alerts (taken; freed with free()).
 * Never blocks on the network. A failed POST is retried with backoff, but
 * one Alertmanager refuses with a 4xx (not 408 or 429) is dropped; when more
 * than a bounded number of posts wait, the oldest is dropped. Both count as
 * failed. */
void amclient_post(struct amclient *c, char *json_array);

/* POST attempts that failed (each retry counts) plus posts dropped, and posts
 * that succeeded so far. */
uint64_t amclient_failures(const struct amclient *c);
uint64_t amclient_sent(const struct amclient *c);

#endif
