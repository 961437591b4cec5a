/* SPDX-License-Identifier: Apache-2.0 */
/* scanpool: a helper thread that parses part of each batch of messages while
 * the consumer thread parses and processes the rest, in order. */
#ifndef TP_SCANPOOL_H
#define TP_SCANPOOL_H

#include <stddef.h>

#include "event.h"
#include "pipeline.h"

/* One message of a batch and what scanning it gave. */
struct scan_item {
    const char *buf; /* NULL: not an event (a Kafka error), not scanned */
    size_t len;
    int rc;          /* scan_event's: 0, or -1 with err */
    struct event ev;
    struct event_hashes h; /* pipeline_hash_event's, when rc is 0 */
    struct event_error err;
};

struct scanpool;

/* Starts the helper thread; max_bytes as for scan_event. NULL with errstr
 * when the thread cannot start. */
struct scanpool *scanpool_new(size_t max_bytes, char *errstr,
                              size_t errstr_size);
void scanpool_destroy(struct scanpool *sp); /* NULL is fine */

/* Scans items[from, to) on the helper thread; the caller owns the rest of
 * the batch meanwhile and must call scanpool_wait before reading these. */
void scanpool_start(struct scanpool *sp, struct scan_item *items, size_t from,
                    size_t to);
void scanpool_wait(struct scanpool *sp);

/* Scans items[from, to) on the calling thread. */
void scanpool_scan(size_t max_bytes, struct scan_item *items, size_t from,
                   size_t to);

#endif
