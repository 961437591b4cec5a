/* SPDX-License-Identifier: Apache-2.0 */
/* corr: one partition's open correlations (waiting DMs, queued calls, open tickets) as fixed-size records. */
/* mremap is a Linux extension. */
#define _GNU_SOURCE
#include "corr.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tagidx.h"
#include "u64map.h"

#define NIL UINT32_MAX
#define MIN_RECS 128 /* one page of records */

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

/* Records live in one array; closed ones are chained through `next` into a
 * free list. Open ones form a doubly linked list in opening order so the
 * oldest can be evicted in O(1) when limits.max_open_correlations is hit.
 * The index (tagidx) confirms a tag match on the record, which is read next
 * anyway. */
struct corr {
    struct corr_rec *recs;
    uint32_t cap, used;
    uint32_t free_head;
    uint32_t head, tail; /* oldest, newest */
    struct tagidx idx;
    uint32_t count; /* open records */
};

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
    tagidx_release(&c->idx);
    free(c);
}

uint64_t corr_key(enum corr_kind kind, uint64_t tenant_hash, const char *id)
{
    return hash64(id, strlen(id), tenant_hash + (uint64_t)kind);
}

/* The index slot holding key, or the empty slot ending its probe. */
static uint32_t probe(const struct corr *c, uint64_t key)
{
    return tagidx_probe(&c->idx, key, c->recs, sizeof(*c->recs));
}

struct corr_rec *corr_find(struct corr *c, uint64_t key)
{
    uint32_t ref;

    if (c->idx.slots == NULL) {
        return NULL;
    }
    ref = c->idx.slots[probe(c, key)].ref;
    return ref == 0 ? NULL : &c->recs[ref - 1];
}

void corr_prefetch(const struct corr *c, uint64_t key)
{
    tagidx_prefetch(&c->idx, key);
}

void corr_prefetch_rec(const struct corr *c, uint64_t key)
{
    if (c->idx.slots != NULL) {
        uint32_t tag = tagidx_tag(key);
        const struct tagidx_slot *s = &c->idx.slots[tag & c->idx.mask];
        if (s->tag == tag && s->ref != 0) {
            __builtin_prefetch(&c->recs[s->ref - 1]);
        }
    }
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
    if (tagidx_reserve(&c->idx, (size_t)c->count + 1) < 0) {
        c->recs[i].next = c->free_head;
        c->free_head = i;
        return NULL;
    }
    tagidx_place(&c->idx, key, i);
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

    tagidx_remove(&c->idx, probe(c, rec->key));
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
    rec->key = 0;
    rec->next = c->free_head;
    c->free_head = i;
}

uint32_t corr_pos(const struct corr *c, const struct corr_rec *rec)
{
    return (uint32_t)(rec - c->recs);
}

struct corr_rec *corr_at(struct corr *c, uint32_t pos)
{
    return &c->recs[pos];
}

void corr_prefetch_at(const struct corr *c, uint32_t pos)
{
    __builtin_prefetch(&c->recs[pos]);
}

uint32_t corr_positions(const struct corr *c)
{
    return c->used;
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
           tagidx_slots(&c->idx) * sizeof(*c->idx.slots);
}
