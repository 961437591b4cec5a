/* SPDX-License-Identifier: Apache-2.0 */
/* corr: one partition's open correlations (waiting DMs, queued calls, open tickets) as fixed-size records. */
/* mremap is a Linux extension. */
#define _GNU_SOURCE
#include "corr.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "u64map.h"

#define NIL UINT32_MAX
#define MIN_SLOTS 512 /* one page of slots */
#define MIN_RECS 128  /* one page of records */

/* The record array and the index are mappings of their own, not malloc
 * blocks: a malloc'd array that doubles leaves its predecessor behind in the
 * heap, resident and too small for the next doubling (in a traced 10 M
 * event run the main heap held 15 MB more free memory than after 2 M, where
 * the open records grew from 24 to 48 MB). A mapping grows in place or
 * moves without a copy (mremap), and an old index goes back to the kernel
 * whole. */
static void *map_resize(void *old, size_t old_bytes, size_t bytes)
{
    void *p = old ? mremap(old, old_bytes, bytes, MREMAP_MAYMOVE)
                  : mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static void map_free(void *p, size_t bytes)
{
    if (p != NULL) {
        munmap(p, bytes);
    }
}

/* A slot of the index: the record's tag and position, or rec NIL (empty). */
struct slot {
    uint32_t tag;
    uint32_t rec;
};

/* Records live in one array; closed ones are chained through `next` into a
 * free list. Open ones form a doubly linked list in opening order so the
 * oldest can be evicted in O(1) when limits.max_open_correlations is hit.
 *
 * The index is open addressing with linear probing and backward-shift
 * deletion over 8-byte slots (half of u64map's): a slot keeps 32 bits of the
 * key's mix (its tag) and the record, whose key confirms a tag match. A
 * key's probe starts at its tag's low bits, so moving a slot needs no read
 * of its record. */
struct corr {
    struct corr_rec *recs;
    uint32_t cap, used;
    uint32_t free_head;
    uint32_t head, tail; /* oldest, newest */
    struct slot *slots;
    uint32_t mask;  /* slots - 1; slots is a power of two */
    uint32_t count; /* open records */
};

/* Slots of the index (0 before the first open). */
static size_t n_slots(const struct corr *c)
{
    return c->slots ? (size_t)c->mask + 1 : 0;
}

static uint32_t tag_of(uint64_t key)
{
    /* Keys are hashes already; the multiply only spreads keys that are not
     * (tests, small integers) over the high half. */
    return (uint32_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 32);
}

struct corr *corr_new(void)
{
    struct corr *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->free_head = c->head = c->tail = NIL;
    return c;
}

void corr_destroy(struct corr *c)
{
    if (c == NULL) {
        return;
    }
    map_free(c->recs, (size_t)c->cap * sizeof(*c->recs));
    map_free(c->slots, n_slots(c) * sizeof(*c->slots));
    free(c);
}

uint64_t corr_key(enum corr_kind kind, uint64_t tenant_hash, const char *id)
{
    return hash64(id, strlen(id), tenant_hash + (uint64_t)kind);
}

/* The slot holding key, or the empty slot ending its probe. */
static uint32_t probe(const struct corr *c, uint64_t key)
{
    uint32_t tag = tag_of(key);

    for (uint32_t i = tag & c->mask;; i = (i + 1) & c->mask) {
        const struct slot *s = &c->slots[i];
        if (s->rec == NIL || (s->tag == tag && c->recs[s->rec].key == key)) {
            return i;
        }
    }
}

struct corr_rec *corr_find(struct corr *c, uint64_t key)
{
    uint32_t i;

    if (c->slots == NULL) {
        return NULL;
    }
    i = probe(c, key);
    return c->slots[i].rec == NIL ? NULL : &c->recs[c->slots[i].rec];
}

void corr_prefetch(const struct corr *c, uint64_t key)
{
    if (c->slots != NULL) {
        __builtin_prefetch(&c->slots[tag_of(key) & c->mask]);
    }
}

void corr_prefetch_rec(const struct corr *c, uint64_t key)
{
    if (c->slots != NULL) {
        uint32_t tag = tag_of(key);
        const struct slot *s = &c->slots[tag & c->mask];
        if (s->tag == tag && s->rec != NIL) {
            __builtin_prefetch(&c->recs[s->rec]);
        }
    }
}

static void place(struct slot *slots, uint32_t mask, uint32_t tag, uint32_t rec)
{
    uint32_t i = tag & mask;

    while (slots[i].rec != NIL) {
        i = (i + 1) & mask;
    }
    slots[i] = (struct slot){tag, rec};
}

/* Room for one more key: the index stays at most 0.7 full. */
static int index_room(struct corr *c)
{
    uint32_t n = (uint32_t)n_slots(c), ncap;
    struct slot *s;

    if ((uint64_t)(c->count + 1) * 10 <= (uint64_t)n * 7) {
        return 0;
    }
    if (n > UINT32_MAX / 2) {
        return -1;
    }
    ncap = n ? n * 2 : MIN_SLOTS;
    s = map_resize(NULL, 0, (size_t)ncap * sizeof(*s));
    if (s == NULL) {
        return -1;
    }
    memset(s, 0xff, (size_t)ncap * sizeof(*s)); /* rec NIL: empty */
    for (uint32_t i = 0; i < n; i++) {
        if (c->slots[i].rec != NIL) {
            place(s, ncap - 1, c->slots[i].tag, c->slots[i].rec);
        }
    }
    map_free(c->slots, (size_t)n * sizeof(*s));
    c->slots = s;
    c->mask = ncap - 1;
    return 0;
}

static uint32_t take_slot(struct corr *c)
{
    uint32_t i;

    if (c->free_head != NIL) {
        i = c->free_head;
        c->free_head = c->recs[i].next;
        return i;
    }
    if (c->used == c->cap) {
        uint32_t ncap = c->cap ? c->cap * 2 : MIN_RECS;
        struct corr_rec *r;
        if (c->cap >= NIL / 2) {
            return NIL;
        }
        r = map_resize(c->recs, (size_t)c->cap * sizeof(*r),
                       (size_t)ncap * sizeof(*r));
        if (r == NULL) {
            return NIL;
        }
        c->recs = r;
        c->cap = ncap;
    }
    return c->used++;
}

struct corr_rec *corr_open(struct corr *c, uint64_t key)
{
    uint32_t i = take_slot(c);
    struct corr_rec *r;

    if (i == NIL) {
        return NULL;
    }
    if (index_room(c) < 0) {
        c->recs[i].next = c->free_head;
        c->free_head = i;
        return NULL;
    }
    place(c->slots, c->mask, tag_of(key), i);
    c->count++;
    r = &c->recs[i];
    memset(r, 0, sizeof(*r));
    r->key = key;
    r->prev = c->tail;
    r->next = NIL;
    if (c->tail != NIL) {
        c->recs[c->tail].next = i;
    } else {
        c->head = i;
    }
    c->tail = i;
    return r;
}

void corr_close(struct corr *c, struct corr_rec *rec)
{
    uint32_t i = (uint32_t)(rec - c->recs);
    uint32_t h = probe(c, rec->key), j;

    /* Backward shift: pull later members of the probe run into the hole. */
    for (j = (h + 1) & c->mask; c->slots[j].rec != NIL; j = (j + 1) & c->mask) {
        uint32_t home = c->slots[j].tag & c->mask;
        if (((j - home) & c->mask) >= ((j - h) & c->mask)) {
            c->slots[h] = c->slots[j];
            h = j;
        }
    }
    c->slots[h].rec = NIL;
    c->count--;
    if (rec->prev != NIL) {
        c->recs[rec->prev].next = rec->next;
    } else {
        c->head = rec->next;
    }
    if (rec->next != NIL) {
        c->recs[rec->next].prev = rec->prev;
    } else {
        c->tail = rec->prev;
    }
    rec->next = c->free_head;
    c->free_head = i;
}

struct corr_rec *corr_oldest(struct corr *c)
{
    return c->head == NIL ? NULL : &c->recs[c->head];
}

size_t corr_count(const struct corr *c)
{
    return c->count;
}

void corr_foreach(struct corr *c, void (*fn)(const struct corr_rec *, void *),
                  void *arg)
{
    for (uint32_t i = c->head; i != NIL; i = c->recs[i].next) {
        fn(&c->recs[i], arg);
    }
}

size_t corr_bytes(const struct corr *c)
{
    return sizeof(*c) + (size_t)c->cap * sizeof(*c->recs) +
           n_slots(c) * sizeof(*c->slots);
}
