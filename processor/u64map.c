/* SPDX-License-Identifier: Apache-2.0 */
/* u64map: an open-addressing hash map from non-zero 64-bit keys to 32-bit values. */
#include "u64map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

#define MIN_CAP 16

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

uint64_t hash64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    /* The seed is diffused before it meets the data: XORed in raw, a seed
     * differing in a few bits cancels ids differing in the same bits
     * ("1001" with one seed == "0001" with another). */
    uint64_t h = mix64(seed + UINT64_C(0x632be59bd9b4e019)) ^
                 (len * UINT64_C(0x9e3779b97f4a7c15));
    uint64_t w;

    while (len >= 8) {
        memcpy(&w, p, 8);
        h = mix64(h ^ w) * UINT64_C(0x9e3779b97f4a7c15);
        p += 8;
        len -= 8;
    }
    w = 0;
    memcpy(&w, p, len);
    h = mix64(h ^ w ^ ((uint64_t)len << 56));
    return h != 0 ? h : 1;
}

uint64_t hash64_pair(uint64_t a, uint64_t b)
{
    uint64_t h = mix64(a ^ mix64(b + UINT64_C(0x632be59bd9b4e019)));

    return h != 0 ? h : 1;
}

void u64map_init(struct u64map *m)
{
    memset(m, 0, sizeof(*m));
}

void u64map_release(struct u64map *m)
{
    free(m->slots);
    u64map_init(m);
}

void u64map_clear(struct u64map *m)
{
    if (m->slots != NULL && m->count > 0) {
        memset(m->slots, 0, m->cap * sizeof(*m->slots));
    }
    m->count = 0;
}

static size_t slot_of(const struct u64map *m, uint64_t key)
{
    return (size_t)mix64(key) & (m->cap - 1);
}

uint32_t *u64map_get(const struct u64map *m, uint64_t key)
{
    if (m->cap == 0) {
        return NULL;
    }
    for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key) {
            return &m->slots[i].val;
        }
        if (m->slots[i].key == 0) {
            return NULL;
        }
    }
}

static void insert_fresh(struct u64map *m, uint64_t key, uint32_t val)
{
    size_t i = slot_of(m, key);

    while (m->slots[i].key != 0) {
        i = (i + 1) & (m->cap - 1);
    }
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->count++;
}

/* A zeroed slot array. A big map is probed at random, one slot per lookup,
 * so it asks for huge pages. calloc of that size maps fresh pages without
 * touching them, so the advice comes before the first fault. */
static struct u64map_slot *slots_new(size_t cap)
{
    struct u64map_slot *s = calloc(cap, sizeof(*s));

    if (s != NULL) {
        mem_ask_huge(s, cap * sizeof(*s));
    }
    return s;
}

/* Moves every entry into a new table of cap slots. */
static int rehash(struct u64map *m, size_t cap)
{
    struct u64map old = *m;

    m->slots = slots_new(cap);
    if (m->slots == NULL) {
        *m = old;
        return -1;
    }
    m->cap = cap;
    m->count = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i].key != 0) {
            insert_fresh(m, old.slots[i].key, old.slots[i].val);
        }
    }
    free(old.slots);
    return 0;
}

static int grow(struct u64map *m)
{
    return rehash(m, m->cap ? m->cap * 2 : MIN_CAP);
}

int u64map_put(struct u64map *m, uint64_t key, uint32_t val)
{
    uint32_t *v = u64map_get(m, key);

    if (v != NULL) {
        *v = val;
        return 0;
    }
    /* Keep the load factor under 0.7. */
    if ((m->count + 1) * 10 > m->cap * 7 && grow(m) < 0) {
        return -1;
    }
    insert_fresh(m, key, val);
    return 0;
}

int u64map_del(struct u64map *m, uint64_t key)
{
    size_t i, j, mask = m->cap - 1;

    if (m->cap == 0) {
        return 0;
    }
    for (i = slot_of(m, key); m->slots[i].key != key; i = (i + 1) & mask) {
        if (m->slots[i].key == 0) {
            return 0;
        }
    }
    /* Backward-shift: pull later members of the probe run into the hole. */
    for (j = (i + 1) & mask; m->slots[j].key != 0; j = (j + 1) & mask) {
        size_t home = slot_of(m, m->slots[j].key);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = 0;
    m->count--;
    return 1;
}
