/* SPDX-License-Identifier: Apache-2.0 */
/* consumer: Kafka input — consumer group, dead-letter producer, offsets recorded in Redis and committed to Kafka. */
#include "consumer.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerting.h"
#include "fetchwake.h"
#include "httpd.h"
#include "log.h"
#include "metrics_catalog.h"
#include "scanpool.h"
#include "tstamp.h"

/*
 * Offsets and the exactly-once effect
 *
 * The next offset of every partition is written to Redis inside the same
 * MULTI/EXEC as the aggregates of the messages before it (store.c), so Redis
 * always holds aggregates and offsets that agree. When a partition is
 * assigned, consumption starts at the offset Redis recorded (falling back to
 * the group's committed offset, then auto.offset.reset, for a partition
 * Redis has never seen). Kafka commits happen after each applied flush only
 * so that lag tooling works; they are never the source of truth. Before a
 * flush records an offset, every dead-letter message before it has been
 * delivered (rd_kafka_flush), so rejected messages are not lost either.
 *
 * Each flush also names the offset Redis recorded for every partition it
 * covers (its start); the script applies it only if Redis still records
 * exactly that (store.c). A flush whose reply was lost is resent unchanged
 * (engine.c), finds its own offsets recorded and applies nothing; a flush
 * of a partition another instance has advanced meanwhile is refused, and
 * this instance exits so that its restart resumes from what Redis records.
 *
 * On a revoke the pending state is flushed first, so the next owner starts
 * exactly where this instance stopped. If that flush fails, what this
 * instance holds mixes the revoked partitions' messages with the others';
 * it exits (status 1) rather than ever writing them.
 */

#define POLL_MS 100
/* Messages handled between two housekeeping rounds (about 35 ms at full
 * speed): a long run keeps the two batches below overlapping; 2000 left
 * this thread waiting for the scan thread 0.5 s in 3 s. */
#define BATCH_MAX 32768
/* Messages parsed together. In a run of polls each full batch is parsed
 * whole on the scan thread while this thread processes the one before;
 * the last, partial batch of a run is shared (the scan thread parses its
 * last 3/4 while this thread parses the first quarter and processes it).
 * Smaller batches (a quiet stream) are parsed here, without a hand-over.
 * 4096 (two batches of 816-byte scan items, about 6.7 MB) against 512 cut
 * the time this thread waited for the scan thread by about a third: each
 * hand-over costs both threads a wake-up. 8192 was no faster. */
#define SCAN_BATCH 4096
/* Events this many places ahead are prefetched: about the number of
 * memory loads a core keeps in flight, and the dedupe window and open
 * correlations are far bigger than the caches. The correlation record the
 * prefetched slot points at is asked for PREFETCH_RECORD_AHEAD places ahead,
 * when the slot has arrived. PREFETCH_RING is a power of two >= the first. */
#define PREFETCH_AHEAD 8
#define PREFETCH_RECORD_AHEAD 4
#define PREFETCH_RING 16
#define SCAN_SHARED_MIN 64
#define MEMBER_MAX 300
/* How often a keeping-up consumer looks for a backlog (catch_up). */
#define LAG_CHECK_MS 100
/* The poll wait while an early flush waits to start (flush_now). */
#define FLUSH_NOW_POLL_MS 5
/* While behind, how often the queue is looked at for a fetcher wake, and
 * the least time between wakes (a fetcher that is fetching but slower than
 * the consumer keeps the queue low too: at most this many requests). */
#define WAKE_CHECK_MS 10
#define WAKE_GAP_MS 100
/* The longest a flush waits for earlier dead letters to be delivered. */
#define DLQ_DRAIN_MS 10000
/* The pause between two flush attempts of the shutdown. */
#define DRAIN_RETRY_MS 200
/* The most of service.shutdown_timeout kept for closing (close_reserve_ms). */
#define CLOSE_RESERVE_MS 1000

struct part_state {
    char topic[256];
    int32_t partition;
    char member[MEMBER_MAX]; /* "topic/partition" */
    struct partition *pipe_part;
    int64_t next_offset; /* -1: nothing consumed since assignment */
    int64_t recorded;    /* the next offset Redis records, -1: none */
};

struct consumer {
    const struct config *cfg;
    struct engine *engine;
    struct httpd *http; /* may be NULL */
    bool joined;        /* a rebalance happened: the group is joined */
    struct alerting *alerting; /* may be NULL */
    char fatal[512];    /* why the consumer must stop (auth, fatal error) */
    char kafka_error[256]; /* the latest error, for /readyz */
    bool leader;        /* owns the first partition of the first topic */
    int64_t next_activate_mono;
    volatile sig_atomic_t *stop; /* consumer_run's, once it runs */
    volatile sig_atomic_t *reload_flag;
    void (*reload_fn)(void *arg);
    void *reload_arg;
    rd_kafka_t *rk;  /* consumer */
    rd_kafka_t *dlq; /* dead-letter producer */
    const char *group;
    char offsets_key[512];
    struct part_state *parts;
    size_t n_parts, cap_parts;
    bool paused;
    bool closing_abandoned; /* shutdown gave up writing the pending state */
    int64_t deadline_mono;  /* 0, or the shutdown's: nothing waits past it */
    struct scanpool *scan;
    pthread_t populate; /* faults in the dedupe window at start */
    bool populating;    /* populate is to be joined */
    /* Two batches of polled messages not yet handled: one being filled by
     * polls, and (while scanning) the older one with the scan thread. */
    rd_kafka_message_t *batch[2][SCAN_BATCH];
    struct scan_item *items[2]; /* SCAN_BATCH each */
    size_t n_batch[2];
    int fill;      /* the batch being filled */
    bool scanning; /* batch !fill is with the scan thread */
    /* The partition of item i of the batch being processed, when its slots
     * were prefetched: ahead[i % PREFETCH_RING] (part NULL: none). */
    struct {
        size_t i;
        struct partition *part;
    } ahead[PREFETCH_RING];
    /* A backlog was seen and not yet read to its end (catch_up); then
     * flush_now asks for a flush before the interval is over. */
    bool behind;
    bool flush_now; /* polls wait FLUSH_NOW_POLL_MS until it starts */
    int64_t next_lag_mono; /* when fetched_lag is looked at next */
    /* Waking the fetcher while behind (wake_fetcher): the consumer queue,
     * where the fetcher stops (queued.min.messages, and
     * queued.max.messages.kbytes in bytes), and what was polled so far. */
    struct fetchwake *wake;
    rd_kafka_queue_t *queue;
    double queued_max_msgs, queued_max_bytes;
    uint64_t polled, polled_bytes;
    int64_t next_wake_mono;
    int batch_rc; /* -1: handling failed (out of memory): stop */
    uint64_t dlq_failed;
    size_t dlq_inflight; /* dead letters queued, their delivery not reported */
    struct log_limit reject_limit, kafka_limit, dlq_limit;
};

/* ---- configuration ---- */

/* Properties that only a consumer understands; the dead-letter producer
 * skips them instead of warning about each. */
static bool consumer_only(const char *key)
{
    static const char *const prefixes[] = {
        "group.", "partition.assignment", "enable.auto.", "auto.offset",
        "auto.commit", "session.timeout", "heartbeat.", "max.poll",
        "fetch.", "isolation.", "enable.partition.eof", "check.crcs",
        "queued.", "consume.", "coordinator.",
    };

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (strncmp(key, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    return false;
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                    char *errstr, size_t errstr_size)
{
    char err[256];

    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "kafka: %s: %s", key, err);
        return -1;
    }
    return 0;
}

static rd_kafka_conf_t *make_conf(const struct config *cfg, bool consumer,
                                  char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    for (size_t i = 0; i < cfg->n_kafka; i++) {
        const struct config_pair *p = &cfg->kafka[i];
        if (!consumer && consumer_only(p->key)) {
            continue;
        }
        if (conf_set(conf, p->key, p->value, errstr, errstr_size) < 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    /* queued.min.messages and queued.max.messages.kbytes: librdkafka 2.0
     * backs the fetcher off until its next one-second turn whenever the
     * prefetched queue passes either; wake_fetcher wakes it when the queue
     * is half drained, so the bound only needs to cover a fetch round
     * trip. 32 MiB (about 160,000 events here) bounds the prefetch, most of
     * the peak RSS, at a quarter of the 128 MiB that fed the consumer
     * without the wakes; the message count (librdkafka's default 100,000)
     * is raised so that the bytes bound it.
     * fetch.max.bytes: a fetch that starts just under the bound lands whole
     * on top of it, so it sets how far past the bound the queue goes:
     * librdkafka's 50 MiB let one response carry a full 1 MiB of every
     * partition (lz4: several MB of messages each). With 2 MiB, peak RSS
     * of a 2 M / 10 M event run went from 364-378 / 419-438 MB (3 runs) to
     * 332-333 / 374-387 MB (2 runs), run CPU per 1 M events no higher. It
     * must not be below message.max.bytes, so a configured one leaves
     * librdkafka's default in place. */
    if (consumer &&
        ((config_kafka(cfg, "partition.assignment.strategy") == NULL &&
          conf_set(conf, "partition.assignment.strategy", "cooperative-sticky",
                   errstr, errstr_size) < 0) ||
         (config_kafka(cfg, "queued.min.messages") == NULL &&
          conf_set(conf, "queued.min.messages", "1000000", errstr,
                   errstr_size) < 0) ||
         (config_kafka(cfg, "queued.max.messages.kbytes") == NULL &&
          conf_set(conf, "queued.max.messages.kbytes", "32768", errstr,
                   errstr_size) < 0) ||
         (config_kafka(cfg, "fetch.max.bytes") == NULL &&
          config_kafka(cfg, "message.max.bytes") == NULL &&
          conf_set(conf, "fetch.max.bytes", "2097152", errstr,
                   errstr_size) < 0) ||
         conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) <
             0 ||
         conf_set(conf, "enable.auto.offset.store", "false", errstr,
                  errstr_size) < 0)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* The producer retries a dead letter (or alert) until the broker takes
     * it or refuses it for good, instead of dropping it after librdkafka's
     * 5 minutes: meanwhile the flushes wait (drain_dlq), so no offset past
     * an undelivered dead letter is recorded. */
    if (!consumer && config_kafka(cfg, "message.timeout.ms") == NULL &&
        conf_set(conf, "message.timeout.ms", "0", errstr, errstr_size) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* The value of a numeric property of rk's configuration (0 if unset). */
static double conf_number(rd_kafka_t *rk, const char *key)
{
    char buf[64];
    size_t size = sizeof(buf);

    if (rd_kafka_conf_get(rd_kafka_conf(rk), key, buf, &size) !=
        RD_KAFKA_CONF_OK) {
        return 0;
    }
    return strtod(buf, NULL);
}

/* ---- partitions ---- */

static struct part_state *find_part(struct consumer *c, const char *topic,
                                    int32_t partition)
{
    for (size_t i = 0; i < c->n_parts; i++) {
        if (c->parts[i].partition == partition &&
            strcmp(c->parts[i].topic, topic) == 0) {
            return &c->parts[i];
        }
    }
    return NULL;
}

static struct part_state *add_part(struct consumer *c, const char *topic,
                                   int32_t partition)
{
    struct part_state *ps;

    if (c->n_parts == c->cap_parts) {
        size_t ncap = c->cap_parts ? c->cap_parts * 2 : 16;
        struct part_state *p = realloc(c->parts, ncap * sizeof(*p));
        if (p == NULL) {
            return NULL;
        }
        c->parts = p;
        c->cap_parts = ncap;
    }
    ps = &c->parts[c->n_parts];
    memset(ps, 0, sizeof(*ps));
    snprintf(ps->topic, sizeof(ps->topic), "%s", topic);
    ps->partition = partition;
    snprintf(ps->member, sizeof(ps->member), "%s/%d", topic, (int)partition);
    ps->next_offset = -1;
    ps->recorded = -1;
    ps->pipe_part = pipeline_partition(engine_pipeline(c->engine), ps->member);
    if (ps->pipe_part == NULL) {
        return NULL;
    }
    c->n_parts++;
    return ps;
}

static void remove_part(struct consumer *c, struct part_state *ps)
{
    pipeline_partition_drop(engine_pipeline(c->engine), ps->pipe_part);
    *ps = c->parts[--c->n_parts];
}

/* ---- flush and commit ---- */

/* How long a wait of at most ms may last: less once the shutdown deadline
 * is nearer (0 when it has passed). */
static int64_t shutdown_wait_ms(const struct consumer *c, int64_t ms)
{
    if (c->deadline_mono > 0) {
        int64_t left = c->deadline_mono - tstamp_mono_ms();
        ms = left < ms ? (left < 0 ? 0 : left) : ms;
    }
    return ms;
}

/* Waits until the delivery of every dead letter queued so far is reported
 * (up to 10 s, or the shutdown deadline), serving the producer's delivery
 * reports; alerts on the same producer are not waited for. */
static int drain_dlq(struct consumer *c)
{
    int64_t until = tstamp_mono_ms() + shutdown_wait_ms(c, DLQ_DRAIN_MS);

    rd_kafka_poll(c->dlq, 0);
    while (c->dlq_inflight > 0) {
        int64_t left = until - tstamp_mono_ms();
        if (left <= 0) {
            log_limited(&c->dlq_limit, LOG_ERROR, "dlq",
                        "%zu dead-letter messages not delivered yet; flush "
                        "postponed",
                        c->dlq_inflight);
            return -1;
        }
        rd_kafka_poll(c->dlq, (int)(left < 100 ? left : 100));
    }
    return 0;
}

static struct part_state *find_member(struct consumer *c, const char *member)
{
    for (size_t i = 0; i < c->n_parts; i++) {
        if (strcmp(c->parts[i].member, member) == 0) {
            return &c->parts[i];
        }
    }
    return NULL;
}

/* Notes the offsets the applied flush recorded and commits them to Kafka. */
static void commit_kafka(struct consumer *c)
{
    size_t n;
    const struct store_offset *offs = engine_flushed_offsets(c->engine, &n);
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new((int)n);

    for (size_t i = 0; i < n; i++) {
        struct part_state *ps = find_member(c, offs[i].member);
        if (ps != NULL && offs[i].next >= 0) {
            ps->recorded = offs[i].next;
            rd_kafka_topic_partition_list_add(l, ps->topic, ps->partition)
                ->offset = offs[i].next;
        }
    }
    if (l->cnt > 0) {
        rd_kafka_commit(c->rk, l, 1 /* async */);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* After a flush's outcome: note the applied offsets, or stop on conflict. */
static void flush_end(struct consumer *c, int rc)
{
    if (rc == 0) {
        commit_kafka(c);
    } else if (rc == ENGINE_FLUSH_CONFLICT) {
        snprintf(c->fatal, sizeof(c->fatal),
                 "another instance advanced a partition of this instance's "
                 "unwritten state (it lost the partition while Redis was "
                 "unreachable); that state is dropped and a restart resumes "
                 "from the offsets Redis records");
    }
}

/* Sends what is pending (or resends the batch being retried) with the
 * offsets it covers. Returns 0, -1 or ENGINE_FLUSH_PENDING. */
static int flush_begin(struct consumer *c)
{
    struct store_offset *offs = NULL;
    int rc;

    if (c->fatal[0] != '\0' || drain_dlq(c) < 0) {
        return -1;
    }
    if (c->n_parts > 0 && (offs = calloc(c->n_parts, sizeof(*offs))) == NULL) {
        return -1;
    }
    /* Every partition owned, consumed from or not: the flush may carry a
     * partition's state without messages (restored or evicted
     * correlations), and the guard refuses it once another instance has
     * moved that partition on. */
    for (size_t i = 0; i < c->n_parts; i++) {
        const struct part_state *ps = &c->parts[i];
        offs[i].member = ps->member;
        offs[i].start = ps->recorded;
        offs[i].next = ps->next_offset >= 0 ? ps->next_offset : ps->recorded;
    }
    rc = engine_flush_start(c->engine, offs, c->n_parts, c->group,
                            tstamp_now_ms());
    free(offs);
    if (rc >= 0) { /* started, or ENGINE_FLUSH_PENDING */
        c->flush_now = false;
    }
    return rc;
}

/* Waits for the flush in flight, if any. Returns 0 or its failure. */
static int settle(struct consumer *c)
{
    int rc = engine_flush_poll(c->engine, -1);

    if (rc == ENGINE_FLUSH_IDLE) {
        return 0;
    }
    flush_end(c, rc);
    return rc;
}

/* Flushes everything consumed so far and waits for it (revoke, shutdown).
 * A batch being retried goes first, then what pended meanwhile. */
static int flush(struct consumer *c)
{
    int rc = settle(c);

    for (int round = 0; round < 2 && rc != ENGINE_FLUSH_CONFLICT; round++) {
        bool retry = engine_flush_retrying(c->engine);
        if ((rc = flush_begin(c)) < 0 || (rc = settle(c)) != 0 || !retry) {
            break;
        }
    }
    return rc;
}

/* ---- rebalance ---- */

struct restore_ctx {
    struct consumer *c;
    struct part_state *ps;
    size_t restored, bad;
};

static int restore_one(uint64_t key, const char *value, void *arg)
{
    struct restore_ctx *r = arg;

    if (pipeline_partition_restore(engine_pipeline(r->c->engine),
                                   r->ps->pipe_part, key, value) < 0) {
        r->bad++;
    } else {
        r->restored++;
    }
    return 0;
}

/* Loads the persisted open correlations of the assigned partitions. */
static int restore_state(struct consumer *c, const char **members, int n,
                         char *err, size_t err_size)
{
    for (int i = 0; i < n; i++) {
        struct part_state *ps = find_member(c, members[i]);
        struct restore_ctx r = {c, ps, 0, 0};
        struct store_corr_stats st;
        if (ps == NULL) {
            continue;
        }
        if (store_read_corr(engine_store(c->engine), c->group, members[i],
                            restore_one, &r, &st, err, err_size) < 0) {
            return -1;
        }
        pipeline_partition_restored(engine_pipeline(c->engine),
                                    ps->pipe_part, st.lines);
        r.bad += st.bad_lines;
        if (r.restored + r.bad > 0) {
            log_msg(r.bad ? LOG_WARN : LOG_INFO, "consumer",
                    "%s: restored %zu open correlations from a log of %llu "
                    "lines (%zu unreadable or over a limit)",
                    members[i], r.restored, (unsigned long long)st.lines,
                    r.bad);
        }
    }
    return 0;
}

/* Waits ms for a retry, reporting liveness meanwhile; false as soon as a
 * stop is asked for. */
static bool assign_wait(struct consumer *c, int64_t ms)
{
    int64_t until = tstamp_mono_ms() + ms;

    while (c->stop == NULL || !*c->stop) {
        int64_t left = until - tstamp_mono_ms();
        if (c->http != NULL) {
            httpd_alive(c->http); /* waiting for Redis is not a hang */
        }
        if (left <= 0) {
            return true;
        }
        left = left < 100 ? left : 100;
        nanosleep(&(struct timespec){0, (long)left * 1000000}, NULL);
    }
    return false;
}

/* Sets each partition's start to the offset Redis recorded and restores its
 * open correlations, waiting for Redis if it is down: starting anywhere else
 * could count twice. A stop asked for meanwhile ends the wait: the consumer
 * stops (c->fatal) and returns -1; the partitions must not be read. */
static int resume_offsets(struct consumer *c,
                          rd_kafka_topic_partition_list_t *parts)
{
    const char **members = calloc((size_t)parts->cnt + 1, sizeof(*members));
    int64_t *next = calloc((size_t)parts->cnt + 1, sizeof(*next));
    char err[512];
    int64_t backoff = 250;
    int rc = 0;

    for (int i = 0; members && next && i < parts->cnt; i++) {
        struct part_state *ps = find_part(c, parts->elems[i].topic,
                                          parts->elems[i].partition);
        members[i] = ps ? ps->member : "";
    }
    while (members && next &&
           (store_read_offsets(engine_store(c->engine), c->offsets_key,
                               members, (size_t)parts->cnt, next, err,
                               sizeof(err)) < 0 ||
            restore_state(c, members, parts->cnt, err, sizeof(err)) < 0)) {
        log_limited(&c->kafka_limit, LOG_ERROR, "consumer",
                    "cannot read recorded offsets and state, waiting for "
                    "Redis: %s",
                    err);
        if (!assign_wait(c, backoff)) {
            snprintf(c->fatal, sizeof(c->fatal),
                     "stopped while waiting for Redis to read the recorded "
                     "offsets of assigned partitions (%.300s)",
                     err);
            rc = -1;
            break;
        }
        backoff = backoff < 8000 ? backoff * 2 : backoff;
    }
    for (int i = 0; rc == 0 && members && next && i < parts->cnt; i++) {
        struct part_state *ps = find_member(c, members[i]);
        if (ps != NULL) {
            ps->recorded = next[i];
        }
        parts->elems[i].offset = next[i] >= 0 ? next[i] : RD_KAFKA_OFFSET_INVALID;
        log_msg(LOG_INFO, "consumer", "assigned %s starting at %s%lld",
                members[i], next[i] >= 0 ? "recorded offset " : "committed/reset ",
                (long long)(next[i] >= 0 ? next[i] : -1));
    }
    free(members);
    free(next);
    return rc;
}

/* The first partition of the first topic makes its owner the leader. */
static bool is_lead_partition(const struct consumer *c,
                              const rd_kafka_topic_partition_t *tp)
{
    return tp->partition == 0 && strcmp(tp->topic, c->cfg->topics[0]) == 0;
}

/* Returns -1 when the partitions must not be read (a stop came while
 * waiting for their offsets). */
static int on_assign(struct consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    /* Cooperative rebalancing hands out empty assignments too; there is
     * nothing to resume (and HMGET with no fields is an error reply). */
    if (parts->cnt == 0) {
        return 0;
    }
    for (int i = 0; i < parts->cnt; i++) {
        c->leader |= is_lead_partition(c, &parts->elems[i]);
    }
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (find_part(c, tp->topic, tp->partition) == NULL &&
            add_part(c, tp->topic, tp->partition) == NULL) {
            log_msg(LOG_ERROR, "consumer", "out of memory on assignment");
        }
    }
    return resume_offsets(c, parts);
}

static void on_revoke(struct consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    /* Write what was consumed so the next owner resumes exactly here. If
     * that fails, the unwritten state mixes revoked and kept partitions: it
     * is never written (the next owners re-read from the recorded offsets)
     * and this instance stops. */
    if (!c->closing_abandoned && flush(c) < 0 && c->fatal[0] == '\0') {
        snprintf(c->fatal, sizeof(c->fatal),
                 "partitions revoked while their state could not be written "
                 "to Redis; the next owners re-read them from the recorded "
                 "offsets and this instance stops without writing it");
    }
    for (int i = 0; i < parts->cnt; i++) {
        struct part_state *ps =
            find_part(c, parts->elems[i].topic, parts->elems[i].partition);
        if (is_lead_partition(c, &parts->elems[i])) {
            c->leader = false;
            if (c->alerting != NULL) {
                alerting_deactivate(c->alerting);
            }
        }
        if (ps != NULL) {
            remove_part(c, ps);
        }
    }
}

static void handle_batch(struct consumer *c);

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct consumer *c = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;

    handle_batch(c); /* what was polled before belongs to the old assignment */
    c->joined = true;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        bool hold = on_assign(c, parts) < 0;
        if (coop) {
            error = rd_kafka_incremental_assign(rk, parts);
        } else {
            rd_kafka_assign(rk, parts);
        }
        /* Partitions that came while consumption is paused (backpressure)
         * wait with the others; unresumed ones are never read. */
        if (hold || c->paused) {
            rd_kafka_pause_partitions(rk, parts);
        }
    } else {
        on_revoke(c, parts);
        if (coop) {
            error = rd_kafka_incremental_unassign(rk, parts);
        } else {
            rd_kafka_assign(rk, NULL);
        }
    }
    if (error != NULL) {
        log_msg(LOG_ERROR, "consumer", "rebalance: %s",
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

/* ---- messages ---- */

/* The message opaques of the producer's two kinds of message. */
static char dead_letter_tag, alert_tag;

/* The tp-source header of a dead letter ("?" without one). */
static void dead_letter_source(const rd_kafka_message_t *m, char *out,
                               size_t size)
{
    rd_kafka_headers_t *h = NULL;
    const void *val = NULL;
    size_t len = 0;

    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, "tp-source", &val, &len) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        val == NULL) {
        val = "?";
        len = 1;
    }
    snprintf(out, size, "%.*s", (int)len, (const char *)val);
}

/* The producer's delivery reports, served on the consumer's thread (by the
 * main loop's rd_kafka_poll and by drain_dlq). A dead letter the broker
 * refused for good (too large for the topic, topic missing, not
 * authorised) is counted and logged with its source; the stream goes on. */
static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *m,
                      void *opaque)
{
    struct consumer *c = opaque;
    struct metrics_catalog *mc = engine_metrics(c->engine);
    char source[MEMBER_MAX + 32];

    (void)rk;
    if (m->_private == &dead_letter_tag) {
        c->dlq_inflight--;
        if (m->err) {
            c->dlq_failed++;
            dead_letter_source(m, source, sizeof(source));
            log_limited(&c->dlq_limit, LOG_ERROR, "dlq",
                        "dead-letter message from %s not delivered to %s: %s",
                        source, c->cfg->dead_letter_topic,
                        rd_kafka_err2str(m->err));
        }
    } else if (m->_private == &alert_tag && m->err) {
        log_limited(&c->dlq_limit, LOG_ERROR, "alerts",
                    "alert not delivered to %s: %s", c->cfg->alert_topic,
                    rd_kafka_err2str(m->err));
        if (mc != NULL) {
            metrics_counter_add(metrics_catalog_series(
                                    mc, MC_ALERT_OUTPUT_FAILURES, "kafka", NULL),
                                1);
        }
    }
}

static void set_header(rd_kafka_vu_t *vu, const char *name, const char *val)
{
    vu->vtype = RD_KAFKA_VTYPE_HEADER;
    vu->u.header.name = name;
    vu->u.header.val = val;
    vu->u.header.size = -1;
}

static void dead_letter(struct consumer *c, const rd_kafka_message_t *m,
                        const struct event_error *e)
{
    char source[MEMBER_MAX + 32];
    const char *cls = event_reject_name(e->reason);
    rd_kafka_vu_t vu[8];
    rd_kafka_error_t *err;

    snprintf(source, sizeof(source), "%s/%d/%lld", rd_kafka_topic_name(m->rkt),
             (int)m->partition, (long long)m->offset);
    /* produceva, not producev: producev's type-check macros are GNU
     * statement expressions, which -Wpedantic rejects. */
    vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[0].u.cstr = c->cfg->dead_letter_topic;
    vu[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[1].u.i = RD_KAFKA_MSG_F_COPY;
    vu[2].vtype = RD_KAFKA_VTYPE_KEY;
    vu[2].u.mem.ptr = m->key;
    vu[2].u.mem.size = m->key_len;
    vu[3].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[3].u.mem.ptr = m->payload;
    vu[3].u.mem.size = m->len;
    set_header(&vu[4], "tp-error", e->text);
    set_header(&vu[5], "tp-error-class", cls);
    set_header(&vu[6], "tp-source", source);
    vu[7].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[7].u.ptr = &dead_letter_tag;
    err = rd_kafka_produceva(c->dlq, vu, 8);
    if (err == NULL) {
        c->dlq_inflight++;
    } else {
        c->dlq_failed++;
        log_limited(&c->dlq_limit, LOG_ERROR, "dlq",
                    "cannot queue dead-letter message from %s: %s", source,
                    rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
    }
    log_limited(&c->reject_limit, LOG_WARN, "input", "rejected %s (%s): %s",
                source, cls, e->text);
}

static int handle(struct consumer *c, rd_kafka_message_t *m,
                  struct scan_item *it, int64_t now_ms)
{
    struct part_state *ps;

    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            log_limited(&c->kafka_limit, LOG_WARN, "consumer", "kafka: %s",
                        rd_kafka_message_errstr(m));
        }
        return 0;
    }
    ps = find_part(c, rd_kafka_topic_name(m->rkt), m->partition);
    if (ps == NULL) {
        return 0; /* a message of a partition already revoked */
    }
    switch (pipeline_process_scanned(engine_pipeline(c->engine), ps->pipe_part,
                                     it->rc, &it->ev, &it->h, now_ms,
                                     &it->err)) {
    case PIPE_REJECTED:
        dead_letter(c, m, &it->err);
        break;
    case PIPE_ERROR:
        log_msg(LOG_ERROR, "consumer", "out of memory processing %s@%lld",
                ps->member, (long long)m->offset);
        return -1;
    default:
        break;
    }
    ps->next_offset = m->offset + 1;
    return 0;
}

/* The payloads of batch b, for scanning. */
static void take_items(struct consumer *c, int b)
{
    for (size_t i = 0; i < c->n_batch[b]; i++) {
        const rd_kafka_message_t *m = c->batch[b][i];
        c->items[b][i].buf = m->err ? NULL : m->payload;
        c->items[b][i].len = m->len;
    }
}

/* The first step for item i of batch b, remembered for the second. */
static void prefetch(struct consumer *c, int b, size_t i)
{
    const rd_kafka_message_t *m = c->batch[b][i];
    const struct scan_item *it = &c->items[b][i];
    struct part_state *ps;

    if (m->err || it->rc != 0) {
        return;
    }
    ps = find_part(c, rd_kafka_topic_name(m->rkt), m->partition);
    if (ps != NULL) {
        pipeline_prefetch(engine_pipeline(c->engine), ps->pipe_part, &it->h);
        c->ahead[i % PREFETCH_RING].i = i;
        c->ahead[i % PREFETCH_RING].part = ps->pipe_part;
    }
}

/* The second step for item i of batch b, if the first was taken. */
static void prefetch_record(struct consumer *c, int b, size_t i)
{
    const struct partition *part = c->ahead[i % PREFETCH_RING].part;

    if (part != NULL && c->ahead[i % PREFETCH_RING].i == i) {
        pipeline_prefetch_record(engine_pipeline(c->engine), part,
                                 &c->items[b][i].h);
    }
}

/* Processes scanned batch b in order and empties it; items from wait_at on
 * are the scan thread's, waited for there. */
static void process_batch(struct consumer *c, int b, size_t wait_at)
{
    int64_t now_ms = tstamp_now_ms();
    size_t n = c->n_batch[b];

    for (size_t k = 0; k < PREFETCH_RING; k++) {
        c->ahead[k].part = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t ahead = i + PREFETCH_AHEAD, near = i + PREFETCH_RECORD_AHEAD;
        if (i == wait_at) {
            scanpool_wait(c->scan);
        }
        if (ahead < n && (ahead < wait_at || i >= wait_at)) {
            prefetch(c, b, ahead);
        }
        if (near < n) {
            prefetch_record(c, b, near);
        }
        if (c->batch_rc == 0 && c->fatal[0] == '\0') {
            c->batch_rc = handle(c, c->batch[b][i], &c->items[b][i], now_ms);
        }
        rd_kafka_message_destroy(c->batch[b][i]);
    }
    c->n_batch[b] = 0;
}

/* A full batch goes to the scan thread whole, and the batch it scanned
 * before is processed here meanwhile: in a run of polls, parsing and
 * processing overlap. */
static void pass_batch(struct consumer *c)
{
    int b = c->fill;

    take_items(c, b);
    if (c->scanning) {
        scanpool_wait(c->scan);
    }
    scanpool_start(c->scan, c->items[b], 0, c->n_batch[b]);
    c->fill = !b;
    if (c->scanning) {
        process_batch(c, c->fill, SIZE_MAX);
    }
    c->scanning = true;
}

/* Handles every polled message in polling order: the batch with the scan
 * thread, then the one being filled (most of it parsed on the scan thread
 * while this thread parses the rest and processes). Called before anything
 * that must see them handled: the end of a poll run, and a rebalance (which
 * flushes and drops partitions), so batching changes no outcome. */
static void handle_batch(struct consumer *c)
{
    int b = c->fill;
    size_t n = c->n_batch[b], k = n;

    if (c->scanning) {
        scanpool_wait(c->scan);
        c->scanning = false;
        process_batch(c, !b, SIZE_MAX);
    }
    if (n == 0) {
        return;
    }
    take_items(c, b);
    if (n >= SCAN_SHARED_MIN) {
        k = n / 4;
        scanpool_start(c->scan, c->items[b], k, n);
    }
    scanpool_scan((size_t)c->cfg->max_message_bytes, c->items[b], 0, k);
    process_batch(c, b, k == n ? SIZE_MAX : k);
}

/* ---- lifecycle ---- */

/* Errors librdkafka reports outside messages. Wrong credentials before the
 * group was ever joined, and fatal errors, stop the service: retrying would
 * hide a misconfiguration behind a quiet, never-ready process. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct consumer *c = opaque;
    char fatal[256];

    snprintf(c->kafka_error, sizeof(c->kafka_error), "%s", reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL &&
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal)) != 0) {
        snprintf(c->fatal, sizeof(c->fatal), "kafka fatal error: %s", fatal);
    } else if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION && !c->joined &&
               c->fatal[0] == '\0') {
        const char *mech = config_kafka(c->cfg, "sasl.mechanisms");
        const char *user = config_kafka(c->cfg, "sasl.username");
        snprintf(c->fatal, sizeof(c->fatal),
                 "kafka authentication failed (sasl.mechanisms=%s, "
                 "sasl.username=%s): %s",
                 mech ? mech : "-", user ? user : "-", reason);
    }
}

/* librdkafka statistics (statistics.interval.ms): consumer lag. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct consumer *c = opaque;
    char err[256];

    (void)rk;
    if (metrics_catalog_kafka_stats(engine_metrics(c->engine), json, len, err,
                                    sizeof(err)) < 0) {
        log_limited(&c->kafka_limit, LOG_WARN, "consumer",
                    "unreadable librdkafka statistics: %s", err);
    }
    return 0; /* json is freed by librdkafka */
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
    (void)rk;
    log_msg(level <= 3 ? LOG_ERROR : level <= 4 ? LOG_WARN : LOG_DEBUG, "kafka",
            "%s: %s", fac, buf);
}

static void *populate_main(void *pipe)
{
    pipeline_populate(pipe);
    return NULL;
}

struct consumer *consumer_new(const struct config *cfg, struct engine *e,
                              struct httpd *h, char *errstr,
                              size_t errstr_size)
{
    struct consumer *c = calloc(1, sizeof(*c));
    rd_kafka_conf_t *cconf = NULL, *pconf = NULL;
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t err;

    if (c == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->cfg = cfg;
    c->engine = e;
    c->http = h;
    c->group = config_kafka(cfg, "group.id");
    c->items[0] = calloc(SCAN_BATCH, sizeof(*c->items[0]));
    c->items[1] = calloc(SCAN_BATCH, sizeof(*c->items[1]));
    if (c->items[0] == NULL || c->items[1] == NULL ||
        (c->scan = scanpool_new((size_t)cfg->max_message_bytes, errstr,
                                errstr_size)) == NULL) {
        if (c->items[0] == NULL || c->items[1] == NULL) {
            snprintf(errstr, errstr_size, "out of memory");
        }
        goto out_fail;
    }
    if (pipeline_reserve(engine_pipeline(e)) < 0) {
        snprintf(errstr, errstr_size,
                 "out of memory for the dedupe window "
                 "(limits.dedupe_capacity %lld ids)",
                 (long long)cfg->dedupe_capacity);
        goto out_fail;
    }
    /* Without the thread the first ids fault the pages in, as before. */
    c->populating = pthread_create(&c->populate, NULL, populate_main,
                                   engine_pipeline(e)) == 0;
    store_offsets_key(engine_store(e), c->group, c->offsets_key,
                      sizeof(c->offsets_key));
    pipeline_set_persist(engine_pipeline(e), true);
    cconf = make_conf(cfg, true, errstr, errstr_size);
    pconf = cconf ? make_conf(cfg, false, errstr, errstr_size) : NULL;
    if (pconf == NULL) {
        goto out_fail;
    }
    rd_kafka_conf_set_opaque(cconf, c);
    rd_kafka_conf_set_rebalance_cb(cconf, rebalance_cb);
    if (engine_metrics(e) != NULL) {
        if (config_kafka(cfg, "statistics.interval.ms") == NULL &&
            conf_set(cconf, "statistics.interval.ms", "5000", errstr,
                     errstr_size) < 0) {
            goto out_fail;
        }
        rd_kafka_conf_set_stats_cb(cconf, stats_cb);
    }
    rd_kafka_conf_set_log_cb(cconf, log_cb);
    rd_kafka_conf_set_log_cb(pconf, log_cb);
    rd_kafka_conf_set_error_cb(cconf, error_cb);
    rd_kafka_conf_set_error_cb(pconf, error_cb);
    rd_kafka_conf_set_opaque(pconf, c);
    rd_kafka_conf_set_dr_msg_cb(pconf, delivered);
    c->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, errstr, errstr_size);
    if (c->dlq == NULL) {
        goto out_fail;
    }
    pconf = NULL; /* now owned by c->dlq */
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, errstr, errstr_size);
    if (c->rk == NULL) {
        goto out_fail;
    }
    cconf = NULL; /* now owned by c->rk */
    rd_kafka_poll_set_consumer(c->rk);
    if ((c->queue = rd_kafka_queue_get_consumer(c->rk)) == NULL) {
        snprintf(errstr, errstr_size, "kafka: no consumer queue");
        goto out_fail;
    }
    if ((c->wake = fetchwake_new(c->rk, errstr, errstr_size)) == NULL) {
        goto out_fail;
    }
    c->queued_max_msgs = conf_number(c->rk, "queued.min.messages");
    c->queued_max_bytes = 1024 * conf_number(c->rk,
                                             "queued.max.messages.kbytes");
    topics = rd_kafka_topic_partition_list_new((int)cfg->n_topics);
    for (size_t i = 0; i < cfg->n_topics; i++) {
        rd_kafka_topic_partition_list_add(topics, cfg->topics[i],
                                          RD_KAFKA_PARTITION_UA);
    }
    err = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "kafka subscribe: %s",
                 rd_kafka_err2str(err));
        goto out_fail;
    }
    return c;

out_fail:
    if (cconf) {
        rd_kafka_conf_destroy(cconf);
    }
    if (pconf) {
        rd_kafka_conf_destroy(pconf);
    }
    consumer_destroy(c);
    return NULL;
}

void consumer_set_alerting(struct consumer *c, struct alerting *al)
{
    c->alerting = al;
}

void consumer_on_reload(struct consumer *c, volatile sig_atomic_t *flag,
                        void (*fn)(void *arg), void *arg)
{
    c->reload_flag = flag;
    c->reload_fn = fn;
    c->reload_arg = arg;
}

int consumer_produce_alert(const char *key, const char *json, void *arg)
{
    struct consumer *c = arg;
    rd_kafka_vu_t vu[5];
    rd_kafka_error_t *err;

    if (c->cfg->alert_topic[0] == '\0') {
        return 0;
    }
    vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[0].u.cstr = c->cfg->alert_topic;
    vu[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[1].u.i = RD_KAFKA_MSG_F_COPY;
    vu[2].vtype = RD_KAFKA_VTYPE_KEY;
    vu[2].u.mem.ptr = (void *)key;
    vu[2].u.mem.size = strlen(key);
    vu[3].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[3].u.mem.ptr = (void *)json;
    vu[3].u.mem.size = strlen(json);
    vu[4].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[4].u.ptr = &alert_tag;
    err = rd_kafka_produceva(c->dlq, vu, 5);
    if (err != NULL) {
        log_limited(&c->dlq_limit, LOG_ERROR, "alerts",
                    "cannot queue alert for %s: %s", c->cfg->alert_topic,
                    rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
        return -1;
    }
    return 0;
}

/* The leader evaluates alerts; activation reads Redis, so it is retried. */
static void lead(struct consumer *c, int64_t mono)
{
    char err[512];

    if (c->alerting == NULL || !c->leader || alerting_active(c->alerting) ||
        mono < c->next_activate_mono) {
        return;
    }
    if (alerting_activate(c->alerting, tstamp_now_ms(), err, sizeof(err)) < 0) {
        log_limited(&c->kafka_limit, LOG_WARN, "alerts",
                    "cannot take over alerting yet: %s", err);
        c->next_activate_mono = mono + 1000;
    }
}

static void maybe_reload(struct consumer *c)
{
    if (c->reload_flag != NULL && *c->reload_flag) {
        *c->reload_flag = 0;
        c->reload_fn(c->reload_arg);
    }
}

/* Liveness every loop; readiness: the group is joined (with partitions or
 * waiting for them) and Redis takes writes. */
static void report_health(struct consumer *c)
{
    struct metrics_catalog *mc = engine_metrics(c->engine);

    if (c->http != NULL) {
        httpd_alive(c->http);
        char reason[sizeof(c->kafka_error) + 64];
        snprintf(reason, sizeof(reason), "%s%s%s",
                 !c->joined ? "waiting to join the consumer group"
                            : "redis writes failing",
                 c->kafka_error[0] ? "; last kafka error: " : "",
                 c->kafka_error);
        httpd_set_ready(c->http, c->joined && !engine_degraded(c->engine),
                        reason);
    }
    if (mc != NULL) {
        metrics_catalog_set(mc, MC_CONSUMER_PAUSED, c->paused ? 1 : 0);
        metrics_counter_set(
            metrics_catalog_series(mc, MC_DEAD_LETTER_FAILURES, NULL, NULL),
            c->dlq_failed);
        metrics_counter_set(metrics_catalog_series(mc, MC_FETCH_WAKES, NULL,
                                                   NULL),
                            fetchwake_count(c->wake));
    }
}

/* While Redis is failing and the pending caps are reached, consumption
 * pauses (memory stays bounded) and resumes after the next good flush. */
static void apply_backpressure(struct consumer *c)
{
    bool want = engine_degraded(c->engine) &&
                pipeline_flush_due(engine_pipeline(c->engine), tstamp_now_ms());
    rd_kafka_topic_partition_list_t *l;

    if (want == c->paused) {
        return;
    }
    if (rd_kafka_assignment(c->rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    if (want) {
        rd_kafka_pause_partitions(c->rk, l);
    } else {
        rd_kafka_resume_partitions(c->rk, l);
    }
    rd_kafka_topic_partition_list_destroy(l);
    c->paused = want;
    log_msg(LOG_WARN, "consumer", "%s consumption (pending state at its cap "
                                  "while Redis is failing)",
            want ? "paused" : "resumed");
}

/* Messages of partition ps between what was handled and the high watermark
 * of its latest fetch (librdkafka's cached value; no request); -1 while
 * the watermark is unknown. */
static int64_t part_lag(const struct consumer *c, const struct part_state *ps)
{
    int64_t low, high;
    int64_t pos = ps->next_offset >= 0 ? ps->next_offset : ps->recorded;

    if (rd_kafka_get_watermark_offsets(c->rk, ps->topic, ps->partition, &low,
                                       &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        high < 0) {
        return -1;
    }
    if (pos < 0) { /* nothing handled or recorded: from the start */
        pos = low > 0 ? low : 0;
    }
    return high > pos ? high - pos : 0;
}

/* part_lag summed over the assigned partitions; -1 while a watermark is
 * unknown. */
static int64_t fetched_lag(const struct consumer *c)
{
    int64_t lag = 0;

    for (size_t i = 0; i < c->n_parts; i++) {
        int64_t part = part_lag(c, &c->parts[i]);
        if (part < 0) {
            return -1;
        }
        lag += part;
    }
    return c->n_parts > 0 ? lag : -1;
}

/* A backlog (a run of BATCH_MAX messages, or as many fetched but not yet
 * handled after a run) is flushed as soon as every partition is handled to
 * its end, not a flush interval later. A stream that is kept up with ends
 * each run with (about) nothing left, so its flushes stay one per
 * interval. */
static void catch_up(struct consumer *c, size_t n_run, int64_t mono)
{
    if (!c->behind) {
        bool look = mono >= c->next_lag_mono;
        if (look) {
            c->next_lag_mono = mono + LAG_CHECK_MS;
        }
        c->behind = n_run >= BATCH_MAX || (look && fetched_lag(c) >= BATCH_MAX);
    } else if (n_run < BATCH_MAX && fetched_lag(c) == 0) {
        c->behind = false;
        c->flush_now = true;
    }
}

/* While a backlog is read (behind), librdkafka's fetcher stops at the
 * queue's bound and would wait up to a second for its next turn (see
 * fetchwake.h); once the queue is down to half the bound, the leaders of the
 * partitions not read to their end are asked for their end offsets, which
 * wakes their fetchers. The bound in messages is queued.min.messages or
 * queued.max.messages.kbytes over the mean size of the messages polled,
 * whichever is lower. A stream that is kept up with is never behind, and
 * paused partitions (apply_backpressure) fetch nothing. */
static void wake_fetcher(struct consumer *c, int64_t mono)
{
    rd_kafka_topic_partition_list_t *l;
    double bound;

    if (!c->behind || c->paused || mono < c->next_wake_mono ||
        c->polled == 0) {
        return;
    }
    c->next_wake_mono = mono + WAKE_CHECK_MS;
    bound = c->queued_max_msgs;
    if (c->polled_bytes > 0) {
        double by_bytes =
            c->queued_max_bytes * (double)c->polled / (double)c->polled_bytes;
        bound = by_bytes < bound ? by_bytes : bound;
    }
    if ((double)rd_kafka_queue_length(c->queue) * 2 >= bound ||
        fetchwake_busy(c->wake) ||
        (l = rd_kafka_topic_partition_list_new((int)c->n_parts)) == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_parts; i++) {
        const struct part_state *ps = &c->parts[i];
        if (part_lag(c, ps) > 0) {
            /* the offset asked for is a timestamp: -1, the latest */
            rd_kafka_topic_partition_list_add(l, ps->topic, ps->partition)
                ->offset = -1;
        }
    }
    if (l->cnt > 0 && fetchwake_ask(c->wake, l)) {
        c->next_wake_mono = mono + WAKE_GAP_MS;
    } else {
        rd_kafka_topic_partition_list_destroy(l);
    }
}

/* Of service.shutdown_timeout, what the drain leaves for leaving the group
 * and closing once it ends (a tenth, at most CLOSE_RESERVE_MS), so the exit
 * comes within the timeout even when the drain uses all it has. */
static int64_t close_reserve_ms(int64_t shutdown_timeout_ms)
{
    int64_t ms = shutdown_timeout_ms / 10;

    return ms < CLOSE_RESERVE_MS ? ms : CLOSE_RESERVE_MS;
}

int consumer_run(struct consumer *c, volatile sig_atomic_t *stop)
{
    int64_t next_stats = tstamp_mono_ms() + c->cfg->stats_interval_ms;
    int64_t deadline, loop_mono = tstamp_mono_ms();
    int rc = 0;

    c->stop = stop;
    engine_watch_stop(c->engine, stop);
    while (!*stop && rc == 0) {
        rd_kafka_message_t *m;
        int64_t mono;
        size_t n_run;
        loop_mono = tstamp_mono_ms(); /* a stop signal comes after this */
        /* Messages already fetched are taken in a run of up to BATCH_MAX;
         * the housekeeping below is done once per run. */
        m = rd_kafka_consumer_poll(c->rk,
                                   c->flush_now ? FLUSH_NOW_POLL_MS : POLL_MS);
        for (n_run = 0; m != NULL;) {
            c->polled_bytes += m->len;
            c->batch[c->fill][c->n_batch[c->fill]++] = m;
            if (c->n_batch[c->fill] == SCAN_BATCH) {
                pass_batch(c);
            }
            m = ++n_run < BATCH_MAX && c->batch_rc == 0
                    ? rd_kafka_consumer_poll(c->rk, 0)
                    : NULL;
        }
        handle_batch(c);
        c->polled += n_run;
        rc = c->batch_rc;
        if (c->fatal[0] != '\0') {
            if (c->http != NULL) {
                httpd_set_ready(c->http, false, c->fatal);
            }
            log_msg(LOG_ERROR, "consumer", "%s; exiting", c->fatal);
            rc = -1;
            break;
        }
        rd_kafka_poll(c->dlq, 0);
        mono = tstamp_mono_ms();
        catch_up(c, n_run, mono);
        wake_fetcher(c, mono);
        if (engine_flush_busy(c->engine)) {
            /* At the pending cap, wait for Redis rather than take more. */
            int frc = engine_flush_poll(
                c->engine, pipeline_flush_due(engine_pipeline(c->engine),
                                              tstamp_now_ms())
                               ? -1
                               : 0);
            if (frc != ENGINE_FLUSH_PENDING && frc != ENGINE_FLUSH_IDLE) {
                flush_end(c, frc);
            }
        } else if (engine_flush_due(c->engine, mono) ||
                   (c->flush_now && engine_flush_may_start(c->engine, mono))) {
            flush_begin(c);
        }
        apply_backpressure(c);
        report_health(c);
        lead(c, mono);
        maybe_reload(c);
        if (mono >= next_stats) {
            engine_log_stats(c->engine);
            next_stats = mono + c->cfg->stats_interval_ms;
        }
    }
    /* Drain: flush (retrying within the shutdown timeout, no Redis call
     * outlasting it), refresh the clock-driven values, commit, leave. Redis
     * records nothing of what could not be written: the next owners re-read
     * it. */
    deadline = loop_mono + c->cfg->shutdown_timeout_ms -
               close_reserve_ms(c->cfg->shutdown_timeout_ms);
    c->deadline_mono = deadline;
    engine_drain(c->engine, deadline);
    for (;;) {
        int64_t left = deadline - tstamp_mono_ms();
        if (left <= 0 || c->fatal[0] != '\0') {
            c->closing_abandoned = true;
            log_msg(LOG_ERROR, "consumer",
                    "shutdown: pending state not written (%s); the next "
                    "owners re-read it from the recorded offsets",
                    c->fatal[0] ? c->fatal : "service.shutdown_timeout passed");
            rc = -1;
            break;
        }
        if (flush(c) == 0) {
            engine_drain_refresh(c->engine);
            break;
        }
        /* Retry backoff during shutdown, ending by the deadline. */
        int64_t pause = shutdown_wait_ms(c, DRAIN_RETRY_MS);
        nanosleep(&(struct timespec){0, (long)pause * 1000000}, NULL);
    }
    rd_kafka_consumer_close(c->rk);
    log_msg(LOG_INFO, "consumer", "left the group, stopped");
    return rc;
}

int64_t consumer_exit_left_ms(const struct consumer *c)
{
    int64_t left;

    if (c == NULL || c->deadline_mono == 0) {
        return 0;
    }
    left = c->deadline_mono + close_reserve_ms(c->cfg->shutdown_timeout_ms) -
           tstamp_mono_ms();
    return left > 0 ? left : 0;
}

void consumer_destroy(struct consumer *c)
{
    if (c == NULL) {
        return;
    }
    if (c->populating) {
        pthread_join(c->populate, NULL);
    }
    fetchwake_destroy(c->wake); /* before c->rk, which it uses */
    if (c->queue != NULL) {
        rd_kafka_queue_destroy(c->queue);
    }
    if (c->rk != NULL) {
        rd_kafka_destroy(c->rk);
    }
    if (c->dlq != NULL) {
        rd_kafka_flush(c->dlq, (int)consumer_exit_left_ms(c));
        rd_kafka_destroy(c->dlq);
    }
    for (size_t i = 0; i < c->n_parts; i++) {
        pipeline_partition_drop(engine_pipeline(c->engine), c->parts[i].pipe_part);
    }
    free(c->parts);
    scanpool_destroy(c->scan);
    free(c->items[0]);
    free(c->items[1]);
    free(c);
}
