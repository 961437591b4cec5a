/* SPDX-License-Identifier: Apache-2.0 */
/* store: the Redis side — connection, the atomic flush of a batch with its offsets, the clock tick, offsets read-back. */
#ifndef TP_STORE_H
#define TP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "pipeline.h"

/* A parsed redis://[user[:pass]@]host:port[/db] URL. */
struct store_url {
    char user[128];
    char pass[256];
    char host[256];
    int port;
    int db;
};

/* Parses url (borrowed). Returns 0, or -1 with errstr naming what is wrong. */
int store_parse_url(const char *url, struct store_url *out, char *errstr,
                    size_t errstr_size);

/* The offsets [start, next) of one input partition a flush covers; next is
 * recorded with it. start is what Redis recorded before (-1: nothing). */
struct store_offset {
    const char *member; /* "topic/partition", borrowed */
    int64_t start;
    int64_t next;
};

/* store_flush_poll results besides 0 (applied) and -1 (not applied, retry). */
enum {
    STORE_FLUSH_APPLIED_BEFORE = 1, /* an earlier attempt was applied */
    STORE_FLUSH_PENDING = 2,        /* store_flush_poll: no reply yet */
    STORE_FLUSH_CONFLICT = -2,      /* another writer advanced a partition */
};

struct store;

/* Prepares a store for cfg (borrowed, must outlive it). Connects lazily; a
 * bad URL is an error here. Returns NULL with errstr. */
struct store *store_new(const struct config *cfg, char *errstr,
                        size_t errstr_size);
void store_destroy(struct store *s);

/* A deadline (tstamp_mono_ms; 0: none) no Redis call outlasts: each one's
 * timeout is what is left before it when that is below redis.timeout, and
 * calls made after it fail at once (shutdown). */
void store_set_deadline(struct store *s, int64_t deadline_mono);

/* Connects now (and loads the script). Returns 0 or -1 with errstr. */
int store_connect(struct store *s, char *errstr, size_t errstr_size);

/* A flush in two halves, so the caller works while Redis applies it.
 * send writes batch, the offsets it covers and its correlation-state
 * changes as one MULTI/EXEC, into the keys of consumer group `group`
 * (tp:offsets:GROUP, tp:corr:GROUP:TOPIC/PARTITION); group may be NULL
 * (replay: no offsets, no persisted state). batch_id names the batch: the
 * same for every send of one batch, another for the next (with a group it
 * is recorded, so a resend is known even when the batch moved no offset).
 * offsets lists every partition the instance owns (start = next: nothing
 * consumed; next -1: nothing to record). Returns 0 or -1 with errstr.
 * poll collects the replies, waiting up to wait_ms (-1: until done or
 * redis.timeout from the send). The transaction applies only if Redis
 * records every partition's start (exactly once: a resend of a flush whose
 * reply was lost finds next recorded and applies nothing). poll returns 0
 * when applied, STORE_FLUSH_APPLIED_BEFORE, STORE_FLUSH_PENDING, -1 when not
 * applied (resend the same batch later) or STORE_FLUSH_CONFLICT (never
 * applicable), both with errstr. No other command may use the store while a
 * flush is open. */
int store_flush_send(struct store *s, const struct flush_batch *batch,
                     uint64_t batch_id, const struct store_offset *offsets,
                     size_t n_offsets, const char *group, int64_t wall_ms,
                     char *errstr, size_t errstr_size);
int store_flush_poll(struct store *s, int wait_ms, char *errstr,
                     size_t errstr_size);
bool store_flush_open(const struct store *s); /* sent, not yet answered */

/* What store_read_corr found in a partition's correlation log. */
struct store_corr_stats {
    uint64_t lines;     /* the log's length (struct corr_log lines) */
    size_t bad_lines;   /* lines that are no record, skipped */
};

/* Replays the persisted correlation log of one partition ("topic/partition")
 * of group and calls fn(key, value, arg) for every record open at its end,
 * in opening order (value: a struct corr_log line without its key). Fills st
 * (may be NULL). Returns 0, or -1 with errstr (fn's return value < 0 also
 * stops and fails the read). */
int store_read_corr(struct store *s, const char *group, const char *member,
                    int (*fn)(uint64_t key, const char *value, void *arg),
                    void *arg, struct store_corr_stats *st, char *errstr,
                    size_t errstr_size);

/* The key of the offsets hash of group (tp:offsets:GROUP), into buf. */
void store_offsets_key(const struct store *s, const char *group, char *buf,
                       size_t size);

/* One step of refreshing the clock-driven values of every tenant
 * (oldest_wait_ms, and with slide the windows of rows that had no events):
 * the tenants one SSCAN step from cursor returns ("0" starts). cursor then
 * holds the next step's, "0" once every tenant was refreshed. Each step holds
 * Redis briefly; the caller may stop between them. Returns 0 or -1. */
#define STORE_CURSOR_MAX 32
int store_tick_step(struct store *s, int64_t clock_ms, int64_t wall_ms,
                    bool slide, char cursor[STORE_CURSOR_MAX], char *errstr,
                    size_t errstr_size);

/* Reads recorded next offsets of members from offsets_key into next[i]
 * (-1 where none). Returns 0 or -1. */
int store_read_offsets(struct store *s, const char *offsets_key,
                       const char *const *members, size_t n, int64_t *next,
                       char *errstr, size_t errstr_size);

/* ---- alerts ---- */

/* Calls fn(tenant, "CHANNEL:QUEUE", arg) for every tenant's leaf row
 * (tp:tenants, tp:{T}:dims). Returns 0 or -1. */
int store_rows(struct store *s,
               void (*fn)(const char *tenant, const char *dim, void *arg),
               void *arg, char *errstr, size_t errstr_size);

/* What one alert observation reads (all strings borrowed). */
struct store_obs_req {
    const char *tenant;
    const char *dim;      /* "CHANNEL:QUEUE" */
    char source;          /* 'k' KPI, 'z' KPI + slice statistics, 'l' live
                             gauge, 's' last seen */
    const char *field;
    const char *window;   /* k, z */
    const char *count[2]; /* summed into samples; NULL-terminated */
    const char *baseline; /* k, z: baseline window, or "" */
    int64_t span_ms;      /* z: statistics span and slice length */
    int64_t slice_ms;
    int64_t min_samples;  /* z: slices with fewer samples are left out */
};

struct store_obs {
    bool has_value;
    double value;
    int64_t samples;
    bool has_baseline;
    double baseline;
    int64_t baseline_samples;
    bool has_stats;
    double mean, stddev;
    int64_t slices;
};

/* Reads n observations in one script call (clock_ms: for the slices).
 * out has n entries. Returns 0 or -1. */
int store_alert_read(struct store *s, int64_t clock_ms,
                     const struct store_obs_req *req, size_t n,
                     struct store_obs *out, char *errstr, size_t errstr_size);

/* One alert transition to record (strings borrowed). */
struct store_alert_tx {
    const char *tenant;
    const char *fingerprint;
    const char *state;   /* JSON to keep in tp:{T}:alerts:active; NULL
                            deletes */
    bool notify;         /* add message to the stream and publish it */
    const char *message; /* the alert JSON */
};

/* Records transitions atomically. Returns 0 or -1. */
int store_alert_write(struct store *s, const struct store_alert_tx *tx,
                      size_t n, char *errstr, size_t errstr_size);

/* Calls fn(fingerprint, state_json, arg) for each active alert of tenant.
 * Returns 0 or -1. */
int store_alert_states(struct store *s, const char *tenant,
                       void (*fn)(const char *fp, const char *json, void *arg),
                       void *arg, char *errstr, size_t errstr_size);

/* Deletes every key under the configured prefix (backtest's scratch keys).
 * Returns 0 or -1. */
int store_delete_all(struct store *s, char *errstr, size_t errstr_size);

/* Redis commands sent (top level), errors and reconnects (connections made
 * after the store's first) so far. */
struct store_stats {
    uint64_t commands;
    uint64_t errors;
    uint64_t reconnects;
    uint64_t flushes;
};
const struct store_stats *store_stats(const struct store *s);

#endif
