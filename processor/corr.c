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

/* A ranked record: corr_oldest's order. */
struct rank {
    int64_t start_ms;
    uint32_t pos;
};

/* Records live in one array; closed ones are chained through start_ms into
 * a free list. The index (tagidx) confirms a tag match on the record, which
 * is read next anyway. Records carry no links in opening order (8 bytes
 * each): the order eviction needs is built only once there is something to
 * evict, and only as often as it is used up. */
struct corr {
    struct corr_rec *recs;
    uint32_t cap, used;
    uint32_t free_head;
    struct tagidx idx;
    uint32_t count; /* open records */
    struct rank *order; /* ranked records, oldest first, from order_at on */
    size_t n_order, order_at, cap_order;
};

struct corr *corr_new(void)
{
    struct corr *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->free_head = NIL;
    return c;
}

void corr_destroy(struct corr *c)
{
    if (c == NULL) {
        return;
    }
    map_free(c->recs, (size_t)c->cap * sizeof(*c->recs));
    tagidx_release(&c->idx);
    free(c->order);
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
        c->free_head = (uint32_t)c->recs[i].start_ms;
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
        c->recs[i].key = 0;
        c->recs[i].start_ms = c->free_head;
        c->free_head = i;
        return NULL;
    }
    tagidx_place(&c->idx, key, i);
    c->count++;
    r = &c->recs[i];
    memset(r, 0, sizeof(*r));
    r->key = key;
    return r;
}

void corr_close(struct corr *c, struct corr_rec *rec)
{
    uint32_t i = (uint32_t)(rec - c->recs);

    tagidx_remove(&c->idx, probe(c, rec->key));
    c->count--;
    rec->key = 0;
    rec->start_ms = c->free_head;
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

static int rank_cmp(const void *a, const void *b)
{
    const struct rank *x = a, *y = b;

    if (x->start_ms != y->start_ms) {
        return x->start_ms < y->start_ms ? -1 : 1;
    }
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* The order of the open records now. Returns 0 or -1 (out of memory). */
static int rank(struct corr *c)
{
    size_t n = 0;

    if (c->cap_order < c->count) {
        struct rank *o = realloc(c->order, c->count * sizeof(*o));
        if (o == NULL) {
            return -1;
        }
        c->order = o;
        c->cap_order = c->count;
    }
    for (uint32_t i = 0; i < c->used; i++) {
        struct corr_rec *r = &c->recs[i];
        if (r->key != 0) {
            r->ranked = 1;
            c->order[n++] = (struct rank){r->start_ms, i};
        }
    }
    qsort(c->order, n, sizeof(*c->order), rank_cmp);
    c->n_order = n;
    c->order_at = 0;
    return 0;
}

/* corr_oldest without a ranking (out of memory): one pass. */
static struct corr_rec *scan_oldest(struct corr *c)
{
    struct corr_rec *best = NULL;

    for (uint32_t i = 0; i < c->used; i++) {
        struct corr_rec *r = &c->recs[i];
        if (r->key != 0 && (best == NULL || r->start_ms < best->start_ms)) {
            best = r;
        }
    }
    return best;
}

struct corr_rec *corr_oldest(struct corr *c)
{
    while (c->count > 0) {
        for (; c->order_at < c->n_order; c->order_at++) {
            struct corr_rec *r = &c->recs[c->order[c->order_at].pos];
            /* Closed since, or the position was taken again (corr_open
             * clears ranked). */
            if (r->key != 0 && r->ranked) {
                return r;
            }
        }
        if (rank(c) < 0) {
            return scan_oldest(c);
        }
    }
    return NULL;
}

size_t corr_count(const struct corr *c)
{
    return c->count;
}

void corr_foreach(struct corr *c, void (*fn)(const struct corr_rec *, void *),
                  void *arg)
{
    for (uint32_t i = 0; i < c->used; i++) {
        if (c->recs[i].key != 0) {
            fn(&c->recs[i], arg);
        }
    }
}

size_t corr_bytes(const struct corr *c)
{
    return sizeof(*c) + (size_t)c->cap * sizeof(*c->recs) +
           tagidx_slots(&c->idx) * sizeof(*c->idx.slots) +
           c->cap_order * sizeof(*c->order);
}
