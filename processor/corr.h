/* SPDX-License-Identifier: Apache-2.0 */
/* corr: one partition's open correlations (waiting DMs, queued calls, open tickets) as fixed-size records. */
#ifndef TP_CORR_H
#define TP_CORR_H

#include <stddef.h>
#include <stdint.h>

enum corr_kind { CORR_DM, CORR_CALL, CORR_TICKET };

/* 16 bytes per record plus 4 bytes per slot of index (at most 0.7 full, so
 * 6-12 bytes per record): well under the 128-byte budget per open
 * correlation. The start is kept as milliseconds from a base of the store's
 * in 32 bits (read and set it with corr_start and corr_set_start); a start
 * more than 24 days from the base is kept apart at 8 bytes more, and the
 * base moves once many are. leaf is the caller's (the pipeline's leaf row:
 * tenant and channel:queue). logged and dirty are the pipeline's too:
 * corr_open clears them and nothing here reads them. */
struct corr_rec {
    uint64_t key;         /* corr_key(); 0 once closed */
    uint32_t start;       /* corr's: see corr_start */
    uint32_t leaf : 26;   /* row of the starting event (CORR_MAX_LEAVES) */
    uint32_t kind : 2;    /* enum corr_kind */
    uint32_t waiting : 1; /* counts for oldest_wait_ms (DM waiting, call
                             queued, ticket without first reply) */
    uint32_t logged : 1;  /* the persisted log holds it open */
    uint32_t ranked : 1;  /* corr's: in the order corr_oldest walks */
    uint32_t dirty : 1;   /* to be written by the next flush */
};

/* Values leaf holds: 0 .. CORR_MAX_LEAVES - 1. */
#define CORR_MAX_LEAVES (UINT32_C(1) << 26)

struct corr;

struct corr *corr_new(void);
void corr_destroy(struct corr *c);

/* Key of a correlation id of a kind and tenant (tenant_hash from
 * dims_tenant_key: it depends on the name only, so keys stay valid across
 * restarts and instances); never 0. id is borrowed. */
uint64_t corr_key(enum corr_kind kind, uint64_t tenant_hash, const char *id);

/* The open record with that key, or NULL. Valid until the next open. */
struct corr_rec *corr_find(struct corr *c, uint64_t key);

/* Starts loading where corr_find of key looks first (a hint). */
void corr_prefetch(const struct corr *c, uint64_t key);

/* Starts loading the record of key if the slot corr_prefetch asked for
 * (loaded by now, or this waits for it) holds it (a hint). */
void corr_prefetch_rec(const struct corr *c, uint64_t key);

/* Opens a record (key must not be open). Returns it zeroed but for key, or
 * NULL when out of memory (or at 2^30 records). Its start is to be set
 * right after (corr_set_start): corr_oldest ranks by it. */
struct corr_rec *corr_open(struct corr *c, uint64_t key);

/* When an open record's wait (or ticket) started, in ms. */
int64_t corr_start(const struct corr *c, const struct corr_rec *rec);

/* Sets it. Returns 0, or -1 when out of memory (a start far from the
 * others needs room apart), the record unchanged. */
int corr_set_start(struct corr *c, struct corr_rec *rec, int64_t start_ms);

/* Open records whose start is kept apart (far from the base). */
size_t corr_far_count(const struct corr *c);

/* Where a record is: a position that stays its own while it is open. */
uint32_t corr_pos(const struct corr *c, const struct corr_rec *rec);

/* The record at a position corr_pos gave, open or since closed (then its
 * key is 0, or another record's if the position was taken again). */
struct corr_rec *corr_at(struct corr *c, uint32_t pos);

/* Starts loading the record at pos (a hint). */
void corr_prefetch_at(const struct corr *c, uint32_t pos);

/* Positions corr_pos has given so far: 0 .. corr_positions() - 1. */
uint32_t corr_positions(const struct corr *c);

/* Closes an open record (rec from corr_find/corr_open/corr_oldest). */
void corr_close(struct corr *c, struct corr_rec *rec);

/* The open record that started first (least start, ties by position), or
 * NULL when empty. The first call ranks the open records by start (16
 * bytes each, kept); later calls walk that order, skipping records closed
 * since, and rank again once it is used up, so records opened after a
 * ranking come after every record it holds. Meant for eviction at a cap:
 * O(log n) per call amortized when each result is closed. */
struct corr_rec *corr_oldest(struct corr *c);

size_t corr_count(const struct corr *c);

/* Calls fn for every open record with its start, in no particular order. */
void corr_foreach(struct corr *c,
                  void (*fn)(const struct corr_rec *, int64_t start_ms, void *),
                  void *arg);

/* Bytes of memory held. */
size_t corr_bytes(const struct corr *c);

#endif
