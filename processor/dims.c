/* SPDX-License-Identifier: Apache-2.0 */
/* dims: interned tenants and channel:queue dimension rows, with their roll-ups and caps. */
#include "dims.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "mem.h"
#include "u64map.h"

struct tenant {
    char name[EVENT_TENANT_MAX + 1];
    struct dim *rows;
    size_t n_rows, cap_rows;
    size_t n_leaves;
    uint64_t folded;
};

struct dims {
    const struct config *cfg;
    struct tenant *tenants;
    size_t n_tenants, cap_tenants;
    struct u64map tenant_index; /* hash(name) -> tenant */
    struct u64map row_index;    /* hash(tenant, channel, queue) -> row */
    struct dims_row_ref *ids;   /* the rows dims_row_id numbered */
    size_t n_ids, cap_ids;
};

struct dims *dims_new(const struct config *cfg)
{
    struct dims *d = calloc(1, sizeof(*d));

    if (d == NULL) {
        return NULL;
    }
    d->cfg = cfg;
    u64map_init(&d->tenant_index);
    u64map_init(&d->row_index);
    return d;
}

void dims_destroy(struct dims *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->n_tenants; i++) {
        free(d->tenants[i].rows);
    }
    free(d->tenants);
    free(d->ids);
    u64map_release(&d->tenant_index);
    u64map_release(&d->row_index);
    free(d);
}

uint64_t dims_tenant_key(const char *name)
{
    return hash64(name, strlen(name), 0x7465);
}

int dims_tenant(struct dims *d, const char *name)
{
    return dims_tenant_keyed(d, name, dims_tenant_key(name));
}

/* dims_tenant_keyed, up to max tenants. */
static int intern_tenant(struct dims *d, const char *name, uint64_t key,
                         int64_t max)
{
    uint32_t *idx = u64map_get(&d->tenant_index, key);
    struct tenant *t;

    if (idx != NULL) {
        return (int)*idx;
    }
    if ((int64_t)d->n_tenants >= max ||
        d->n_tenants >= (size_t)DIMS_MAX_TENANTS ||
        mem_grow((void **)&d->tenants, &d->cap_tenants, d->n_tenants + 1,
                 sizeof(*d->tenants)) < 0 ||
        u64map_put(&d->tenant_index, key, (uint32_t)d->n_tenants) < 0) {
        return -1;
    }
    t = &d->tenants[d->n_tenants];
    memset(t, 0, sizeof(*t));
    strcpy(t->name, name);
    return (int)d->n_tenants++;
}

int dims_tenant_keyed(struct dims *d, const char *name, uint64_t key)
{
    return intern_tenant(d, name, key, d->cfg->max_tenants);
}

uint64_t dims_pair_hash(const char *channel, const char *queue)
{
    size_t nc = strlen(channel);

    return hash64(queue, strlen(queue), hash64(channel, nc, 0x726f77 ^ nc));
}

static uint64_t row_key(int tenant, uint64_t pair_hash)
{
    return hash64_pair(pair_hash, (uint64_t)(uint32_t)tenant);
}

/* Finds or adds a row (leaf or roll-up) without the cap. */
static int intern_row(struct dims *d, int tenant, const char *channel,
                      const char *queue, uint64_t pair_hash, bool leaf)
{
    struct tenant *t = &d->tenants[tenant];
    uint64_t key = row_key(tenant, pair_hash);
    uint32_t *idx = u64map_get(&d->row_index, key);
    struct dim *r;

    if (idx != NULL) {
        return (int)*idx;
    }
    if (t->n_rows >= (size_t)DIMS_MAX_ROWS) {
        return -1;
    }
    if (mem_grow((void **)&t->rows, &t->cap_rows, t->n_rows + 1,
                 sizeof(*t->rows)) < 0 ||
        u64map_put(&d->row_index, key, (uint32_t)t->n_rows) < 0) {
        return -1;
    }
    r = &t->rows[t->n_rows];
    memset(r, 0, sizeof(*r));
    strcpy(r->channel, channel);
    strcpy(r->queue, queue);
    r->leaf = leaf;
    r->target_ms = config_target_ms(d->cfg, channel);
    if (leaf) {
        t->n_leaves++;
    }
    return (int)t->n_rows++;
}

static int add_rollups(struct dims *d, int tenant, int row)
{
    struct dim *r = &d->tenants[tenant].rows[row];
    char channel[EVENT_DIM_MAX + 1], queue[EVENT_DIM_MAX + 1];
    int a, b, c;

    strcpy(channel, r->channel);
    strcpy(queue, r->queue);
    a = intern_row(d, tenant, channel, "_all",
                   dims_pair_hash(channel, "_all"), false);
    b = intern_row(d, tenant, "_all", queue, dims_pair_hash("_all", queue),
                   false);
    c = intern_row(d, tenant, "_all", "_all", dims_pair_hash("_all", "_all"),
                   false);
    if (a < 0 || b < 0 || c < 0) {
        return -1;
    }
    r = &d->tenants[tenant].rows[row]; /* rows may have moved */
    r->rollup[0] = row;
    r->rollup[1] = a;
    r->rollup[2] = b;
    r->rollup[3] = c;
    return row;
}

/* The leaf row of a pair already interned, or -1. */
static int find_leaf(const struct dims *d, int tenant, uint64_t pair_hash)
{
    uint32_t *idx = u64map_get(&d->row_index, row_key(tenant, pair_hash));

    return idx != NULL && d->tenants[tenant].rows[*idx].leaf ? (int)*idx : -1;
}

/* Interns a new leaf row with its roll-ups; -1 when out of room. */
static int add_leaf(struct dims *d, int tenant, const char *channel,
                    const char *queue, uint64_t pair_hash)
{
    int row = intern_row(d, tenant, channel, queue, pair_hash, true);

    return row < 0 ? -1 : add_rollups(d, tenant, row);
}

int dims_pair(struct dims *d, int tenant, const char *channel,
              const char *queue, bool *folded)
{
    return dims_pair_hashed(d, tenant, channel, queue,
                            dims_pair_hash(channel, queue), folded);
}

int dims_pair_hashed(struct dims *d, int tenant, const char *channel,
                     const char *queue, uint64_t pair_hash, bool *folded)
{
    struct tenant *t = &d->tenants[tenant];
    uint32_t *idx;
    int row = find_leaf(d, tenant, pair_hash);

    *folded = false;
    if (row >= 0) {
        return row;
    }
    if ((int64_t)t->n_leaves >= d->cfg->max_dims_per_tenant) {
        *folded = true;
        t->folded++;
        channel = "_other";
        queue = "_other";
        pair_hash = dims_pair_hash(channel, queue);
        idx = u64map_get(&d->row_index, row_key(tenant, pair_hash));
        if (idx != NULL) {
            return (int)*idx;
        }
    }
    return add_leaf(d, tenant, channel, queue, pair_hash);
}

int dims_tenant_restored(struct dims *d, const char *name)
{
    return intern_tenant(d, name, dims_tenant_key(name), AGG_MAX_TENANTS);
}

int dims_pair_restored(struct dims *d, int tenant, const char *channel,
                       const char *queue)
{
    uint64_t pair_hash = dims_pair_hash(channel, queue);
    int row = find_leaf(d, tenant, pair_hash);

    if (row >= 0) {
        return row;
    }
    /* A leaf and up to three roll-ups more must fit a cell's key. */
    if ((int64_t)d->tenants[tenant].n_rows + DIMS_ROLLUPS > AGG_MAX_ROWS) {
        return -1;
    }
    return add_leaf(d, tenant, channel, queue, pair_hash);
}

int dims_row_id(struct dims *d, int tenant, int dim)
{
    struct dim *r = &d->tenants[tenant].rows[dim];

    if (r->id_plus1 == 0) {
        if (d->n_ids >= (size_t)INT32_MAX ||
            mem_grow((void **)&d->ids, &d->cap_ids, d->n_ids + 1,
                     sizeof(*d->ids)) < 0) {
            return -1;
        }
        d->ids[d->n_ids] = (struct dims_row_ref){(uint32_t)tenant,
                                                 (uint32_t)dim};
        r->id_plus1 = (uint32_t)++d->n_ids;
    }
    return (int)(r->id_plus1 - 1);
}

struct dims_row_ref dims_row_of(const struct dims *d, uint32_t id)
{
    return d->ids[id];
}

size_t dims_row_ids(const struct dims *d)
{
    return d->n_ids;
}

const char *dims_tenant_name(const struct dims *d, int tenant)
{
    return d->tenants[tenant].name;
}

const struct dim *dims_get(const struct dims *d, int tenant, int dim)
{
    return &d->tenants[tenant].rows[dim];
}

size_t dims_tenant_count(const struct dims *d)
{
    return d->n_tenants;
}

size_t dims_row_count(const struct dims *d, int tenant)
{
    return d->tenants[tenant].n_rows;
}

uint64_t dims_folded(const struct dims *d, int tenant)
{
    return d->tenants[tenant].folded;
}
