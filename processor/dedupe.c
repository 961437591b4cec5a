/* SPDX-License-Identifier: Apache-2.0 */
/* dedupe: remembers recent event ids so producer retries are counted once. */
#include "dedupe.h"

#include <stdint.h>
#include <stdlib.h>

#include "mem.h"
#include "tagidx.h"

/* A ring of (key, first seen) in arrival order; the clock only moves forward,
 * so the oldest entries expire from the head. The index points a key at its
 * ring slot, the ring entry confirming the key. */
struct entry {
    uint64_t key;
    int64_t seen_ms;
};

struct dedupe {
    struct entry *ring;
    size_t cap, head, len;
    int64_t horizon_ms;
    uint64_t evicted;
    struct tagidx index;
};

struct dedupe *dedupe_new(size_t capacity, int64_t horizon_ms)
{
    struct dedupe *d = calloc(1, sizeof(*d));

    if (d == NULL) {
        return NULL;
    }
    d->cap = capacity ? capacity : 1;
    d->horizon_ms = horizon_ms;
    return d;
}

void dedupe_destroy(struct dedupe *d)
{
    if (d == NULL) {
        return;
    }
    free(d->ring);
    tagidx_release(&d->index);
    free(d);
}

static void pop_head(struct dedupe *d)
{
    /* A key is in the ring once (a repeat is found, not added). */
    tagidx_remove(&d->index, tagidx_probe(&d->index, d->ring[d->head].key,
                                          d->ring, sizeof(*d->ring)));
    d->head = (d->head + 1) % d->cap;
    d->len--;
}

/* The ring and the index are allocated at full capacity at once, on first
 * use or by dedupe_reserve. The ring's pages become resident as they are
 * written; the index is probed at random, so its pages all become resident
 * within the first thousands of ids (about 32 bytes per id of capacity in
 * all: a 16-byte ring entry and 8-byte slots kept under 0.7 full). Growing
 * the index by doubling instead cost, per doubling, a rehash of every id
 * into a table twice the size whose pages the kernel then zeroes, the old
 * table held beside it meanwhile: in a 2 M event `run` the consumer
 * thread's CPU was 1.26 s (median of 8) against 1.07 s reserved. */
int dedupe_reserve(struct dedupe *d)
{
    if (d->ring != NULL) {
        return 0;
    }
    if (d->cap > UINT32_MAX - 1 || tagidx_reserve(&d->index, d->cap) < 0) {
        return -1;
    }
    d->ring = malloc(d->cap * sizeof(*d->ring));
    if (d->ring == NULL) {
        tagidx_release(&d->index);
        return -1;
    }
    /* All of it becomes resident (dedupe_populate, or the ids themselves):
     * in huge pages that is one fault per 2 MiB instead of 512, each of
     * which cost several microseconds of a shared CPU. */
    mem_ask_huge(d->ring, d->cap * sizeof(*d->ring));
    return 0;
}

void dedupe_populate(const struct dedupe *d)
{
    mem_populate(d->ring, d->ring ? d->cap * sizeof(*d->ring) : 0);
    mem_populate(d->index.slots,
                 tagidx_slots(&d->index) * sizeof(*d->index.slots));
}

int dedupe_check(struct dedupe *d, uint64_t key, int64_t now_ms)
{
    size_t slot;

    if (dedupe_reserve(d) < 0) {
        return -1;
    }
    while (d->len > 0 && d->ring[d->head].seen_ms < now_ms - d->horizon_ms) {
        pop_head(d);
    }
    if (d->index.slots[tagidx_probe(&d->index, key, d->ring, sizeof(*d->ring))]
            .ref != 0) {
        return 1;
    }
    if (d->len == d->cap) {
        pop_head(d);
        d->evicted++;
    }
    slot = (d->head + d->len) % d->cap;
    d->ring[slot].key = key;
    d->ring[slot].seen_ms = now_ms;
    tagidx_place(&d->index, key, (uint32_t)slot);
    d->len++;
    return 0;
}

void dedupe_prefetch(const struct dedupe *d, uint64_t key)
{
    tagidx_prefetch(&d->index, key);
}

uint64_t dedupe_evicted(const struct dedupe *d)
{
    return d->evicted;
}

size_t dedupe_count(const struct dedupe *d)
{
    return d->len;
}

size_t dedupe_bytes(const struct dedupe *d)
{
    return sizeof(*d) + (d->ring ? d->cap * sizeof(*d->ring) : 0) +
           tagidx_slots(&d->index) * sizeof(*d->index.slots);
}
