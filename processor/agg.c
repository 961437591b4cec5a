/* SPDX-License-Identifier: Apache-2.0 */
/* agg: in-memory aggregate cells, one per (tenant, row, event-time bucket), between two flushes. */
#include "agg.h"

#include <stdlib.h>
#include <string.h>

#include "u64map.h"

static const char *const field_names[AGG_NFIELDS] = {
    [F_EVENTS] = "events",       [F_WAIT_N] = "wait_n",
    [F_WAIT_SUM] = "wait_sum",   [F_WAIT_MAX] = "wait_max",
    [F_ANSWERED] = "answered",   [F_ABANDONED] = "abandoned",
    [F_SL_N] = "sl_n",           [F_SL_MET] = "sl_met",
    [F_TTR_N] = "ttr_n",         [F_TTR_SUM] = "ttr_sum",
    [F_TTR_MAX] = "ttr_max",     [F_NPS_N] = "nps_n",
    [F_PROMOTERS] = "promoters", [F_PASSIVES] = "passives",
    [F_DETRACTORS] = "detractors", [F_CSAT_N] = "csat_n",
    [F_CSAT_GOOD] = "csat_good", [F_CSAT_SUM] = "csat_sum",
    [F_CES_N] = "ces_n",         [F_CES_SUM] = "ces_sum",
};

/* Cells are kept in one array and reused across flushes (their sketch memory
 * too), so steady-state aggregation allocates nothing. */
struct agg {
    int64_t bucket_ms;
    struct agg_cell *cells;
    size_t n, cap;
    struct u64map index; /* packed (tenant, dim, bucket) -> cell */
};

const char *agg_field_name(enum agg_field f)
{
    return field_names[f];
}

bool agg_field_is_max(enum agg_field f)
{
    return f == F_WAIT_MAX || f == F_TTR_MAX;
}

struct agg *agg_new(int64_t bucket_ms)
{
    struct agg *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        return NULL;
    }
    a->bucket_ms = bucket_ms;
    u64map_init(&a->index);
    return a;
}

void agg_destroy(struct agg *a)
{
    if (a == NULL) {
        return;
    }
    for (size_t i = 0; i < a->cap; i++) {
        sketch_release(&a->cells[i].wait);
        sketch_release(&a->cells[i].ttr);
    }
    free(a->cells);
    u64map_release(&a->index);
    free(a);
}

int64_t agg_bucket_of(const struct agg *a, int64_t t_ms)
{
    return t_ms - t_ms % a->bucket_ms;
}

/* tenant + 1:20 | dim:20 | bucket index mod 2^24. Pending buckets of one
 * flush span less than two retentions and the future skew, fewer than 2^24
 * buckets, and config_check bounds tenants and rows (AGG_MAX_*), so this is
 * exact. */
static uint64_t cell_key(const struct agg *a, uint32_t tenant, uint32_t dim,
                         int64_t bucket_ms)
{
    uint64_t b = (uint64_t)(bucket_ms / a->bucket_ms) & 0xffffff;

    return ((uint64_t)(tenant + 1) << 44) | ((uint64_t)dim << 24) | b;
}

static int grow(struct agg *a)
{
    size_t ncap = a->cap ? a->cap * 2 : 64;
    struct agg_cell *c = realloc(a->cells, ncap * sizeof(*c));

    if (c == NULL) {
        return -1;
    }
    for (size_t i = a->cap; i < ncap; i++) {
        sketch_init(&c[i].wait);
        sketch_init(&c[i].ttr);
    }
    a->cells = c;
    a->cap = ncap;
    return 0;
}

struct agg_cell *agg_cell(struct agg *a, uint32_t tenant, uint32_t dim,
                          int64_t t_ms)
{
    int64_t bucket = agg_bucket_of(a, t_ms);
    uint64_t key = cell_key(a, tenant, dim, bucket);
    uint32_t *idx = u64map_get(&a->index, key);
    struct agg_cell *c;

    if (idx != NULL) {
        return &a->cells[*idx];
    }
    if ((a->n == a->cap && grow(a) < 0) ||
        u64map_put(&a->index, key, (uint32_t)a->n) < 0) {
        return NULL;
    }
    c = &a->cells[a->n++];
    c->tenant = tenant;
    c->dim = dim;
    c->bucket_ms = bucket;
    memset(c->f, 0, sizeof(c->f));
    sketch_clear(&c->wait);
    sketch_clear(&c->ttr);
    return c;
}

/* a + b, held at the int64 range: a wait_ms near 2^63, which the event
 * contract allows, must not wrap a sum negative. */
static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) {
        return INT64_MAX;
    }
    if (b < 0 && a < INT64_MIN - b) {
        return INT64_MIN;
    }
    return a + b;
}

int agg_merge(struct agg_cell *dst, const struct agg_cell *src)
{
    if (sketch_merge(&dst->wait, &src->wait) < 0 ||
        sketch_merge(&dst->ttr, &src->ttr) < 0) {
        return -1;
    }
    for (int i = 0; i < AGG_NFIELDS; i++) {
        if (!agg_field_is_max((enum agg_field)i)) {
            dst->f[i] = sat_add(dst->f[i], src->f[i]);
        } else if (src->f[i] > dst->f[i]) {
            dst->f[i] = src->f[i];
        }
    }
    return 0;
}

static int add_sample(struct agg_cell *c, struct sketch *s, enum agg_field n,
                      int64_t ms)
{
    if (sketch_add(s, ms) < 0) {
        return -1;
    }
    c->f[n]++;
    c->f[n + 1] = sat_add(c->f[n + 1], ms);
    if (ms > c->f[n + 2]) {
        c->f[n + 2] = ms;
    }
    return 0;
}

int agg_add_wait(struct agg_cell *c, int64_t ms)
{
    return add_sample(c, &c->wait, F_WAIT_N, ms);
}

int agg_add_ttr(struct agg_cell *c, int64_t ms)
{
    return add_sample(c, &c->ttr, F_TTR_N, ms);
}

size_t agg_count(const struct agg *a)
{
    return a->n;
}

struct agg_cell *agg_at(struct agg *a, size_t i)
{
    return &a->cells[i];
}

static int cmp_cells(const void *pa, const void *pb)
{
    const struct agg_cell *x = pa, *y = pb;

    if (x->tenant != y->tenant) {
        return x->tenant < y->tenant ? -1 : 1;
    }
    if (x->dim != y->dim) {
        return x->dim < y->dim ? -1 : 1;
    }
    if (x->bucket_ms != y->bucket_ms) {
        return x->bucket_ms < y->bucket_ms ? -1 : 1;
    }
    return 0;
}

void agg_sort(struct agg *a)
{
    if (a->n < 2) {
        return; /* also: cells may still be NULL */
    }
    qsort(a->cells, a->n, sizeof(*a->cells), cmp_cells);
    u64map_clear(&a->index);
    for (size_t i = 0; i < a->n; i++) {
        const struct agg_cell *c = &a->cells[i];
        /* Cannot fail: the map already held this many keys. */
        (void)u64map_put(&a->index,
                         cell_key(a, c->tenant, c->dim, c->bucket_ms),
                         (uint32_t)i);
    }
}

void agg_clear(struct agg *a)
{
    a->n = 0;
    u64map_clear(&a->index);
}
