/* SPDX-License-Identifier: Apache-2.0 */
/* tagidx: a hash index of 8-byte slots over records kept elsewhere (remembered event ids). */
#ifndef TP_TAGIDX_H
#define TP_TAGIDX_H

#include <stddef.h>
#include <stdint.h>

/*
 * The records live in the caller's array, each starting with its 64-bit key.
 * A slot keeps 32 bits of the key's mix (its tag) and the record's position
 * plus one (0: an empty slot, so fresh zero pages are an empty index that
 * the kernel makes resident only as it is written). A tag match is
 * confirmed on the record's key. Open addressing with linear probing from
 * the tag's low bits and backward-shift deletion (no tombstones), so
 * moving a slot needs no read of its record. Half of u64map's 16-byte
 * slots; the slot array is a mapping of its own (big ones ask for huge
 * pages, being probed at random).
 */
struct tagidx_slot {
    uint32_t tag;
    uint32_t ref; /* position + 1; 0: empty */
};

struct tagidx {
    struct tagidx_slot *slots; /* NULL before the first resize */
    uint32_t mask;             /* slots - 1; slots is a power of two */
};

static inline uint32_t tagidx_tag(uint64_t key)
{
    /* Keys are hashes already; the multiply only spreads keys that are not
     * (tests, small integers) over the high half. */
    return (uint32_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 32);
}

/* The slot holding key among the records at recs, stride bytes apart, or
 * the empty slot that ends its probe. x must have slots (and at least one
 * empty). */
static inline uint32_t tagidx_probe(const struct tagidx *x, uint64_t key,
                                    const void *recs, size_t stride)
{
    uint32_t tag = tagidx_tag(key);

    for (uint32_t i = tag & x->mask;; i = (i + 1) & x->mask) {
        const struct tagidx_slot *s = &x->slots[i];
        if (s->ref == 0 ||
            (s->tag == tag &&
             *(const uint64_t *)(const void *)((const char *)recs +
                                               (size_t)(s->ref - 1) *
                                                   stride) == key)) {
            return i;
        }
    }
}

/* Slots of the index (0 before the first resize). */
size_t tagidx_slots(const struct tagidx *x);

/* Room for n keys with the index at most 0.7 full: when it would be fuller,
 * the index moves into a fresh mapping, the smallest power of two of at
 * least 512 slots (a page) that holds n. Returns 0, or -1 (out of memory,
 * or past 2^32 slots; the index unchanged). */
int tagidx_reserve(struct tagidx *x, size_t n);

void tagidx_release(struct tagidx *x); /* back to empty, no slots */

/* Indexes the record at pos under key's tag (key not indexed yet). */
void tagidx_place(struct tagidx *x, uint64_t key, uint32_t pos);

/* Empties slot i (from tagidx_probe, holding a key), pulling later members
 * of its probe run back. */
void tagidx_remove(struct tagidx *x, uint32_t i);

/* Starts loading the slot where a probe of key begins (a hint). */
void tagidx_prefetch(const struct tagidx *x, uint64_t key);

#endif
