/* SPDX-License-Identifier: Apache-2.0 */
/* corr: one partition's open correlations (waiting DMs, queued calls, open tickets) as fixed-size records. */
#include "corr.h"

#include <stdlib.h>
#include <string.h>

#include "u64map.h"

#define NIL UINT32_MAX

/* Records live in one array; closed ones are chained through `next` into a
 * free list. Open ones form a doubly linked list in opening order so the
 * oldest can be evicted in O(1) when limits.max_open_correlations is hit. */
struct corr {
    struct corr_rec *recs;
    uint32_t cap, used;
    uint32_t free_head;
    uint32_t head, tail; /* oldest, newest */
    struct u64map index; /* key -> record */
};

struct corr *corr_new(void)
{
    struct corr *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->free_head = c->head = c->tail = NIL;
    u64map_init(&c->index);
    return c;
}

void corr_destroy(struct corr *c)
{
    if (c == NULL) {
        return;
    }
    free(c->recs);
    u64map_release(&c->index);
    free(c);
}

uint64_t corr_key(enum corr_kind kind, uint64_t tenant_hash, const char *id)
{
    return hash64(id, strlen(id), tenant_hash + (uint64_t)kind);
}

struct corr_rec *corr_find(struct corr *c, uint64_t key)
{
    uint32_t *i = u64map_get(&c->index, key);

    return i ? &c->recs[*i] : NULL;
}

void corr_prefetch(const struct corr *c, uint64_t key)
{
    u64map_prefetch(&c->index, key);
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
        uint32_t ncap = c->cap ? c->cap * 2 : 64;
        struct corr_rec *r;
        if (c->cap >= NIL / 2) {
            return NIL;
        }
        r = realloc(c->recs, (size_t)ncap * sizeof(*r));
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
    if (u64map_put(&c->index, key, i) < 0) {
        c->recs[i].next = c->free_head;
        c->free_head = i;
        return NULL;
    }
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

    u64map_del(&c->index, rec->key);
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
    return c->index.count;
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
           u64map_bytes(&c->index);
}
