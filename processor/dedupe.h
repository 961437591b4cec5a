/* SPDX-License-Identifier: Apache-2.0 */
/* dedupe: remembers recent event ids so producer retries are counted once. */
#ifndef TP_DEDUPE_H
#define TP_DEDUPE_H

#include <stddef.h>
#include <stdint.h>

struct dedupe;

/* Remembers up to capacity keys, each for horizon_ms of clock. */
struct dedupe *dedupe_new(size_t capacity, int64_t horizon_ms);
void dedupe_destroy(struct dedupe *d);

/* Returns 1 when key was seen within the horizon before now_ms (a duplicate),
 * else remembers it and returns 0. Returns -1 when out of memory. The clock
 * must not go backwards by more than the horizon. */
int dedupe_check(struct dedupe *d, uint64_t key, int64_t now_ms);

/* Allocates the whole window now rather than at the first key. Returns 0 or
 * -1 (out of memory). */
int dedupe_reserve(struct dedupe *d);

/* Has the kernel fault in every page of the window dedupe_reserve allocated
 * (about 32 bytes per key of capacity), contents unchanged, so the first
 * keys checked do not each wait for a fresh page. It reads only what
 * dedupe_reserve set, so another thread may run it while dedupe_check is
 * called. Does nothing before dedupe_reserve, or where the kernel lacks
 * MADV_POPULATE_WRITE (Linux < 5.14). */
void dedupe_populate(const struct dedupe *d);

/* Starts loading what dedupe_check of key will read (a hint). */
void dedupe_prefetch(const struct dedupe *d, uint64_t key);

/* Keys forgotten early because the capacity was reached. */
uint64_t dedupe_evicted(const struct dedupe *d);
size_t dedupe_count(const struct dedupe *d);
size_t dedupe_bytes(const struct dedupe *d);

#endif
