/* SPDX-License-Identifier: Apache-2.0 */
/* agg: in-memory aggregate cells, one per (tenant, row, event-time bucket), between two flushes. */
#ifndef TP_AGG_H
#define TP_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sketch.h"

/* What a cell's key holds (config_check keeps the configuration inside):
 * tenant indexes below AGG_MAX_TENANTS, row indexes below AGG_MAX_ROWS, and
 * pending buckets of one flush spanning fewer than AGG_KEY_BUCKETS. */
#define AGG_MAX_TENANTS ((INT64_C(1) << 20) - 1)
#define AGG_MAX_ROWS (INT64_C(1) << 20)
#define AGG_KEY_BUCKETS (INT64_C(1) << 24)

/* The raw bucket fields of schemas/redis.md, in that order. */
enum agg_field {
    F_EVENTS,
    F_WAIT_N,
    F_WAIT_SUM,
    F_WAIT_MAX,
    F_ANSWERED,
    F_ABANDONED,
    F_SL_N,
    F_SL_MET,
    F_TTR_N,
    F_TTR_SUM,
    F_TTR_MAX,
    F_NPS_N,
    F_PROMOTERS,
    F_PASSIVES,
    F_DETRACTORS,
    F_CSAT_N,
    F_CSAT_GOOD,
    F_CSAT_SUM,
    F_CES_N,
    F_CES_SUM,
    AGG_NFIELDS
};

/* Field name in Redis ("wait_sum"). */
const char *agg_field_name(enum agg_field f);

/* Whether a field merges by maximum instead of by addition. */
bool agg_field_is_max(enum agg_field f);

struct agg_cell {
    uint32_t tenant;
    uint32_t dim;
    int64_t bucket_ms;
    int64_t f[AGG_NFIELDS];
    struct sketch wait;
    struct sketch ttr;
};

struct agg;

/* Cells of buckets of bucket_ms. NULL on out of memory. */
struct agg *agg_new(int64_t bucket_ms);
void agg_destroy(struct agg *a);

/* The cell of (tenant, dim, bucket of t_ms), created empty on first use.
 * tenant < 2^20, dim < 2^20. NULL on out of memory. The pointer is valid
 * until the next agg_cell, agg_clear or agg_sort. */
struct agg_cell *agg_cell(struct agg *a, uint32_t tenant, uint32_t dim,
                          int64_t t_ms);

/* dst += src, field by field (max fields by maximum). Returns 0 or -1 (out of
 * memory). */
int agg_merge(struct agg_cell *dst, const struct agg_cell *src);

/* Records one wait sample / one ttr sample into a cell. Returns 0 or -1. */
int agg_add_wait(struct agg_cell *c, int64_t ms);
int agg_add_ttr(struct agg_cell *c, int64_t ms);

size_t agg_count(const struct agg *a);
struct agg_cell *agg_at(struct agg *a, size_t i);

/* Orders the cells by (tenant, dim, bucket) so rows are contiguous. */
void agg_sort(struct agg *a);

/* Empties the set, keeping memory for reuse. */
void agg_clear(struct agg *a);

/* The bucket start of an instant. */
int64_t agg_bucket_of(const struct agg *a, int64_t t_ms);

#endif
