/* SPDX-License-Identifier: Apache-2.0 */
/* u64map: an open-addressing hash map from non-zero 64-bit keys to 32-bit values, and the string hash used for its keys. */
#ifndef TP_U64MAP_H
#define TP_U64MAP_H

#include <stddef.h>
#include <stdint.h>

/* Linear probing with backward-shift deletion; no tombstones, so lookups stay
 * fast under churn. Embedded: u64map_init. */
struct u64map_slot {
    uint64_t key; /* 0 = empty slot */
    uint32_t val; /* beside its key: a lookup touches one cache line */
};

struct u64map {
    struct u64map_slot *slots;
    size_t cap; /* power of two */
    size_t count;
};

void u64map_init(struct u64map *m);
void u64map_release(struct u64map *m);
void u64map_clear(struct u64map *m);

/* Returns a pointer to the value of key (key != 0) or NULL. The pointer is
 * valid until the next put or del. */
uint32_t *u64map_get(const struct u64map *m, uint64_t key);

/* Inserts or replaces. Returns 0 or -1 (out of memory; map unchanged). */
int u64map_put(struct u64map *m, uint64_t key, uint32_t val);

/* Removes key if present. Returns 1 if it was there, else 0. */
int u64map_del(struct u64map *m, uint64_t key);

/* 64-bit hash of len bytes, seeded; never returns 0. */
uint64_t hash64(const void *data, size_t len, uint64_t seed);

/* A hash of two hashes (order matters); never returns 0. */
uint64_t hash64_pair(uint64_t a, uint64_t b);

#endif
