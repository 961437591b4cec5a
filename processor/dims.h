/* SPDX-License-Identifier: Apache-2.0 */
/* dims: interned tenants and channel:queue dimension rows, with their roll-ups and caps. */
#ifndef TP_DIMS_H
#define TP_DIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "event.h"

/* Roll-up slots of a leaf row: the row itself, CHANNEL:_all, _all:QUEUE,
 * _all:_all. */
#define DIMS_ROLLUPS 4
/* Rows a tenant may have, and tenants (config_check bounds the leaf rows
 * of all tenants lower: struct corr_rec names one in 26 bits). */
#define DIMS_MAX_ROWS (1 << 29)
#define DIMS_MAX_TENANTS (1 << 29)

struct dim {
    char channel[EVENT_DIM_MAX + 1];
    char queue[EVENT_DIM_MAX + 1];
    bool leaf;                /* a CHANNEL:QUEUE seen in events (or _other) */
    int rollup[DIMS_ROLLUPS]; /* leaf rows only: this row and its roll-ups */
    int64_t target_ms;        /* service-level target of the channel */
    uint32_t id_plus1;        /* dims_row_id + 1, or 0 before one is asked */
};

/* A tenant's row as one number. */
struct dims_row_ref {
    uint32_t tenant, dim;
};

struct dims;

/* cfg is borrowed and must outlive the dims. Returns NULL on out of memory. */
struct dims *dims_new(const struct config *cfg);
void dims_destroy(struct dims *d);

/* Index of a tenant, interned on first sight. Returns -1 when
 * limits.max_tenants is reached (or out of memory). */
int dims_tenant(struct dims *d, const char *name);

/* The key dims_tenant looks a tenant name up by (a function of the name
 * only, so another thread may compute it ahead), and the lookup by it. */
uint64_t dims_tenant_key(const char *name);
int dims_tenant_keyed(struct dims *d, const char *name, uint64_t key);

/* Index of the leaf row CHANNEL:QUEUE of a tenant, interned with its roll-ups.
 * Beyond limits.max_dims_per_tenant new pairs fold into _other:_other and
 * *folded is set. Returns -1 on out of memory. */
int dims_pair(struct dims *d, int tenant, const char *channel,
              const char *queue, bool *folded);

/* The hash of a CHANNEL:QUEUE pair dims_pair_hashed takes: of the strings
 * only, so it may be computed ahead on another thread. */
uint64_t dims_pair_hash(const char *channel, const char *queue);

/* dims_pair with pair_hash = dims_pair_hash(channel, queue). */
int dims_pair_hashed(struct dims *d, int tenant, const char *channel,
                     const char *queue, uint64_t pair_hash, bool *folded);

/* For a correlation restored from a previous owner's log, whose rows Redis
 * already counts it on: the tenant and the exact CHANNEL:QUEUE leaf (with
 * its roll-ups, "_other:_other" included), past limits.max_tenants and
 * limits.max_dims_per_tenant, so its end lands where its start was counted.
 * -1 past what a cell's key holds (AGG_MAX_*) or out of memory. */
int dims_tenant_restored(struct dims *d, const char *name);
int dims_pair_restored(struct dims *d, int tenant, const char *channel,
                       const char *queue);

/* A number for a row of a tenant (0, 1, 2, ... in the order first asked,
 * kept for good): struct corr_rec names a row by it. Returns -1 when out of
 * memory. dims_row_of turns it back; ids go up to dims_row_ids() - 1. */
int dims_row_id(struct dims *d, int tenant, int dim);
struct dims_row_ref dims_row_of(const struct dims *d, uint32_t id);
size_t dims_row_ids(const struct dims *d);

/* Borrowed views; valid until dims_destroy. */
const char *dims_tenant_name(const struct dims *d, int tenant);
const struct dim *dims_get(const struct dims *d, int tenant, int dim);
size_t dims_tenant_count(const struct dims *d);
size_t dims_row_count(const struct dims *d, int tenant);

/* How many new pairs were folded into _other for a tenant. */
uint64_t dims_folded(const struct dims *d, int tenant);

#endif
