/* SPDX-License-Identifier: Apache-2.0 */
/* corr: one partition's open correlations (waiting DMs, queued calls, open tickets) as fixed-size records. */
/* mremap is a Linux extension. */
#define _GNU_SOURCE
#include "corr.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mem.h"
#include "tagidx.h"
#include "u64map.h"

#define NIL UINT32_MAX
#define MIN_RECS 128                  /* 3 KiB of records */
#define MAX_RECS (UINT32_C(1) << 30)  /* positions + 1 fit 31 bits */
#define MIN_SLOTS 1024                /* one page of index */

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

/* A record's start is stored as start - base + 2^31 when that fits in
 * [0, FAR); FAR means the start is far[pos]. */
#define FAR UINT32_MAX
#define HALF (INT64_C(1) << 31)
/* Far starts tolerated beyond those left by the last rebase before the
 * base moves (plus a quarter of the open records). */
#define FAR_SLACK 4096
/* Starts sampled to choose a base. */
#define BASE_SAMPLES 1024

/* Records live in one array; closed ones are chained through start into
 * a free list. Records carry no links in opening order (8 bytes each): the
 * order eviction needs is built only once there is something to evict, and
 * only as often as it is used up.
 *
 * The index: open addressing over 4-byte slots, linear probing from the low
 * bits of the key's mix (tagidx_tag), backward-shift deletion (no
 * tombstones). A slot holds the record's position + 1 in its low ref_bits,
 * enough for any position of the array as it is (the index is re-encoded
 * when the array doubles), and the mix's top bits above them, so most
 * mismatches are told without reading the record; 0 is empty. Half of
 * tagidx's 8-byte slots; the price is that a deletion reads the keys of the
 * records it moves, to find where their probes start. */
struct corr {
    struct corr_rec *recs;
    uint32_t cap, used;
    uint32_t free_head;
    int64_t base_ms;    /* set by the first start */
    bool based;
    int64_t *far;       /* far starts by position; NULL until one */
    uint32_t far_cap;
    size_t n_far, far_limit;
    uint32_t *slots; /* NULL before the first record */
    uint32_t mask;   /* slots - 1; slots is a power of two */
    uint32_t ref_mask; /* the low ref_bits of a slot */
    uint32_t count;  /* open records */
    struct rank *order; /* ranked records, oldest first, from order_at on */
    size_t n_order, order_at, cap_order;
};

static size_t index_slots(const struct corr *c)
{
    return c->slots ? (size_t)c->mask + 1 : 0;
}

struct corr *corr_new(void)
{
    struct corr *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->free_head = NIL;
    c->far_limit = FAR_SLACK;
    return c;
}

void corr_destroy(struct corr *c)
{
    if (c == NULL) {
        return;
    }
    map_free(c->recs, (size_t)c->cap * sizeof(*c->recs));
    map_free(c->slots, index_slots(c) * sizeof(*c->slots));
    map_free(c->far, (size_t)c->far_cap * sizeof(*c->far));
    free(c->order);
    free(c);
}

uint64_t corr_key(enum corr_kind kind, uint64_t tenant_hash, const char *id)
{
    return hash64(id, strlen(id), tenant_hash + (uint64_t)kind);
}

/* The record a (full) slot points at. */
static struct corr_rec *slot_rec(const struct corr *c, uint32_t s)
{
    return &c->recs[(s & c->ref_mask) - 1];
}

/* Whether a full slot may hold a key of this mix. */
static bool slot_may_be(const struct corr *c, uint32_t s, uint32_t mix)
{
    return ((s ^ mix) & ~c->ref_mask) == 0;
}

/* The index slot holding key, or the empty slot ending its probe. */
static uint32_t probe(const struct corr *c, uint64_t key)
{
    uint32_t mix = tagidx_tag(key);

    for (uint32_t i = mix & c->mask;; i = (i + 1) & c->mask) {
        uint32_t s = c->slots[i];
        if (s == 0 || (slot_may_be(c, s, mix) && slot_rec(c, s)->key == key)) {
            return i;
        }
    }
}

struct corr_rec *corr_find(struct corr *c, uint64_t key)
{
    uint32_t s;

    if (c->slots == NULL) {
        return NULL;
    }
    s = c->slots[probe(c, key)];
    return s == 0 ? NULL : slot_rec(c, s);
}

void corr_prefetch(const struct corr *c, uint64_t key)
{
    if (c->slots != NULL) {
        __builtin_prefetch(&c->slots[tagidx_tag(key) & c->mask]);
    }
}

void corr_prefetch_rec(const struct corr *c, uint64_t key)
{
    if (c->slots != NULL) {
        uint32_t mix = tagidx_tag(key), s = c->slots[mix & c->mask];
        if (s != 0 && slot_may_be(c, s, mix)) {
            __builtin_prefetch(slot_rec(c, s));
        }
    }
}

static void place(uint32_t *slots, uint32_t mask, uint32_t ref_mask,
                  uint64_t key, uint32_t pos)
{
    uint32_t mix = tagidx_tag(key), i = mix & mask;

    while (slots[i] != 0) {
        i = (i + 1) & mask;
    }
    slots[i] = (mix & ~ref_mask) | (pos + 1);
}

/* The slot bits that positions of the array as it is need: positions + 1
 * go up to cap, a power of two, one bit more than its positions. */
static uint32_t ref_mask_of(const struct corr *c)
{
    return (c->cap << 1) - 1;
}

/* Builds the index afresh in a new mapping of n slots (a power of two, more
 * than the records open). */
static int reindex(struct corr *c, size_t n)
{
    uint32_t ref_mask = ref_mask_of(c);
    uint32_t *s = map_resize(NULL, 0, n * sizeof(*s));

    if (s == NULL) {
        return -1;
    }
    mem_ask_huge(s, n * sizeof(*s));
    for (uint32_t i = 0; i < c->used; i++) {
        if (c->recs[i].key != 0) {
            place(s, (uint32_t)(n - 1), ref_mask, c->recs[i].key, i);
        }
    }
    map_free(c->slots, index_slots(c) * sizeof(*c->slots));
    c->slots = s;
    c->mask = (uint32_t)(n - 1);
    c->ref_mask = ref_mask;
    return 0;
}

/* Room in the index for n keys with it at most 0.7 full, and slots that
 * encode every position of the array. Returns 0 or -1 (out of memory; the
 * index unchanged). */
static int index_fit(struct corr *c, size_t n)
{
    size_t slots = index_slots(c);
    uint32_t ref_mask = ref_mask_of(c);

    if (n * 10 > slots * 7) {
        slots = MIN_SLOTS;
        while (slots * 7 < n * 10) {
            slots *= 2;
        }
        return reindex(c, slots);
    }
    if (c->ref_mask != ref_mask) {
        /* The array doubled: the mix bits that positions now need are
         * cleared in place (the positions held fit below them, and where a
         * probe starts does not depend on them). */
        uint32_t gained = ref_mask & ~c->ref_mask;
        for (size_t i = 0; i < slots; i++) {
            c->slots[i] &= ~gained;
        }
        c->ref_mask = ref_mask;
    }
    return 0;
}

/* Empties slot i (holding a key), pulling later members of its probe run
 * back. */
static void unindex(struct corr *c, uint32_t i)
{
    uint32_t mask = c->mask, h = i;

    for (uint32_t j = (h + 1) & mask; c->slots[j] != 0; j = (j + 1) & mask) {
        uint32_t home = tagidx_tag(slot_rec(c, c->slots[j])->key) & mask;
        if (((j - home) & mask) >= ((j - h) & mask)) {
            c->slots[h] = c->slots[j];
            h = j;
        }
    }
    c->slots[h] = 0;
}

static uint32_t take_slot(struct corr *c)
{
    uint32_t i;

    if (c->free_head != NIL) {
        i = c->free_head;
        c->free_head = c->recs[i].start;
        return i;
    }
    if (c->used == c->cap) {
        uint32_t ncap = c->cap ? c->cap * 2 : MIN_RECS;
        struct corr_rec *r;
        if (c->cap >= MAX_RECS) {
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
    if (index_fit(c, (size_t)c->count + 1) < 0) {
        c->recs[i].key = 0;
        c->recs[i].start = c->free_head;
        c->free_head = i;
        return NULL;
    }
    place(c->slots, c->mask, c->ref_mask, key, i);
    c->count++;
    r = &c->recs[i];
    memset(r, 0, sizeof(*r));
    r->key = key;
    return r;
}

void corr_close(struct corr *c, struct corr_rec *rec)
{
    uint32_t i = (uint32_t)(rec - c->recs);

    unindex(c, probe(c, rec->key));
    c->count--;
    if (rec->start == FAR) {
        c->n_far--;
    }
    rec->key = 0;
    rec->start = c->free_head;
    c->free_head = i;
}

/* ---- starts ---- */

/* The stored form of ms against base, or FAR when it does not fit. */
static uint32_t encode(int64_t base, int64_t ms)
{
    int64_t rel;

    if (__builtin_sub_overflow(ms, base, &rel) || rel < -HALF ||
        rel > HALF - 2) {
        return FAR;
    }
    return (uint32_t)(rel + HALF);
}

static int64_t decode(const struct corr *c, uint32_t pos, uint32_t start)
{
    return start == FAR ? c->far[pos] : c->base_ms + ((int64_t)start - HALF);
}

int64_t corr_start(const struct corr *c, const struct corr_rec *rec)
{
    return decode(c, (uint32_t)(rec - c->recs), rec->start);
}

/* Room for a far start at every position of the array. */
static int far_room(struct corr *c)
{
    int64_t *f;

    if (c->far_cap >= c->cap) {
        return 0;
    }
    f = map_resize(c->far, (size_t)c->far_cap * sizeof(*f),
                   (size_t)c->cap * sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    c->far = f;
    c->far_cap = c->cap;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* The base under which most of a sample of the open starts (and ms) fit:
 * the start of the widest run of samples within 2^32 - 2 ms, less 2^31. */
static int64_t choose_base(const struct corr *c, int64_t ms)
{
    int64_t sample[BASE_SAMPLES];
    size_t n = 0, best = 0, best_n = 0;
    uint32_t step = c->used / (BASE_SAMPLES - 1) + 1;

    for (uint32_t i = 0; i < c->used && n < BASE_SAMPLES - 1; i += step) {
        if (c->recs[i].key != 0) {
            sample[n++] = decode(c, i, c->recs[i].start);
        }
    }
    sample[n++] = ms;
    qsort(sample, n, sizeof(*sample), cmp_i64);
    for (size_t i = 0, j = 0; i < n; i++) {
        int64_t top;
        if (__builtin_add_overflow(sample[i], 2 * HALF - 2, &top)) {
            top = INT64_MAX;
        }
        while (j < n && sample[j] <= top) {
            j++;
        }
        if (j - i > best_n) {
            best = i;
            best_n = j - i;
        }
    }
    return sample[best] > INT64_MAX - HALF ? INT64_MAX - HALF
                                            : sample[best] + HALF;
}

/* Moves the base to where most starts fit and stores every open start
 * again. Needs far_room. */
static void rebase(struct corr *c, int64_t ms)
{
    int64_t base = choose_base(c, ms);

    c->n_far = 0;
    for (uint32_t i = 0; i < c->used; i++) {
        struct corr_rec *r = &c->recs[i];
        if (r->key != 0) {
            int64_t v = decode(c, i, r->start);
            r->start = encode(base, v);
            if (r->start == FAR) {
                c->far[i] = v;
                c->n_far++;
            }
        }
    }
    c->base_ms = base;
    c->far_limit = c->n_far + c->count / 4 + FAR_SLACK;
}

int corr_set_start(struct corr *c, struct corr_rec *rec, int64_t start_ms)
{
    uint32_t pos = (uint32_t)(rec - c->recs), e;

    if (!c->based) {
        c->base_ms = start_ms;
        c->based = true;
    }
    e = encode(c->base_ms, start_ms);
    if (e == FAR) {
        if (far_room(c) < 0) {
            return -1;
        }
        if (c->n_far + (rec->start != FAR) > c->far_limit) {
            rebase(c, start_ms);
            e = encode(c->base_ms, start_ms);
        }
    }
    c->n_far -= rec->start == FAR;
    rec->start = e;
    if (e == FAR) {
        c->far[pos] = start_ms;
        c->n_far++;
    }
    return 0;
}

size_t corr_far_count(const struct corr *c)
{
    return c->n_far;
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
            c->order[n++] = (struct rank){decode(c, i, r->start), i};
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
    int64_t best_ms = 0;

    for (uint32_t i = 0; i < c->used; i++) {
        struct corr_rec *r = &c->recs[i];
        if (r->key != 0) {
            int64_t ms = decode(c, i, r->start);
            if (best == NULL || ms < best_ms) {
                best = r;
                best_ms = ms;
            }
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

void corr_foreach(struct corr *c,
                  void (*fn)(const struct corr_rec *, int64_t start_ms, void *),
                  void *arg)
{
    for (uint32_t i = 0; i < c->used; i++) {
        if (c->recs[i].key != 0) {
            fn(&c->recs[i], decode(c, i, c->recs[i].start), arg);
        }
    }
}

size_t corr_bytes(const struct corr *c)
{
    return sizeof(*c) + (size_t)c->cap * sizeof(*c->recs) +
           index_slots(c) * sizeof(*c->slots) +
           (size_t)c->far_cap * sizeof(*c->far) +
           c->cap_order * sizeof(*c->order);
}
