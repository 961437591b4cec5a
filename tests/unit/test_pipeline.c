/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for pipeline: correlation, metrics, clock rules, caps and flushes. */
/*
 * Every test feeds JSON messages written here to pipeline_process and reads
 * the batch of pipeline_flush_prepare. Expected numbers are worked out by
 * hand from schemas/events.md ("Metrics", "Time", "Duplicates") and
 * schemas/redis.md (rows, roll-ups, live gauges), never from the code.
 *
 * Times are offsets in ms from T0 = 2024-01-01T00:00:00Z (minute aligned,
 * so offset 0..59999 is the first 1m bucket). Unless a test says otherwise
 * the run clock is NOW = T0 + 20m, the tenant "acme" and the partition
 * "touchpoints/0". Messages are handed over in buffers of exactly their
 * length (no NUL), so a read past len trips ASan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "config.h"
#include "corr.h"
#include "dims.h"
#include "event.h"
#include "pipeline.h"

#define SEC INT64_C(1000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define T0 INT64_C(1704067200000)
#define NOW (T0 + 20 * MIN)
#define PART0 "touchpoints/0"
#define PART1 "touchpoints/1"
#define GONE INT64_MIN /* an oldest_update that removes the row */

/* ---- fixture ---- */

struct fx {
    struct config cfg;
    struct pipeline *p;
    const struct flush_batch *b;
    unsigned seq; /* for generated event ids */
};

static int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    if (fx == NULL || config_init(&fx->cfg) < 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;

    pipeline_destroy(fx->p);
    config_release(&fx->cfg);
    free(fx);
    return 0;
}

/* Creates the pipeline once the test has adjusted fx->cfg. */
static void fx_start(struct fx *fx, bool event_clock)
{
    char err[128];

    fx->p = pipeline_new(&fx->cfg, event_clock, err, sizeof(err));
    if (fx->p == NULL) {
        fail_msg("pipeline_new: %s", err);
    }
}

/* ---- messages ---- */

/* One message. corr is the conversation / call / ticket id (by type);
 * extra holds more JSON members ("\"wait_ms\":5"), or NULL. */
struct msg {
    const char *type;
    const char *corr;
    int64_t at; /* ms after T0 */
    const char *channel;
    const char *queue; /* NULL: absent ("default") */
    const char *extra;
};

static const char *corr_field(const char *type)
{
    if (strncmp(type, "dm.", 3) == 0) {
        return "conversation_id";
    }
    if (strncmp(type, "call.", 5) == 0) {
        return "call_id";
    }
    if (strncmp(type, "ticket.", 7) == 0) {
        return "ticket_id";
    }
    return NULL;
}

/* Processes m as tenant's event with event_id id (NULL: a fresh one) on the
 * named partition at wall clock now. */
static enum pipe_outcome put(struct fx *fx, const char *part_name,
                             const char *tenant, const char *id,
                             const struct msg *m, int64_t now,
                             struct event_error *err)
{
    char json[1024], auto_id[32], queue[64] = "", corr[192] = "",
                                   extra[512] = "";
    const char *cf = corr_field(m->type);
    struct partition *part = pipeline_partition(fx->p, part_name);
    enum pipe_outcome rc;
    char *exact;
    int n;

    assert_non_null(part);
    if (id == NULL) {
        snprintf(auto_id, sizeof(auto_id), "ev-%u", ++fx->seq);
        id = auto_id;
    }
    if (m->queue != NULL) {
        snprintf(queue, sizeof(queue), ",\"queue\":\"%s\"", m->queue);
    }
    if (cf != NULL && m->corr != NULL) {
        snprintf(corr, sizeof(corr), ",\"%s\":\"%s\"", cf, m->corr);
    }
    if (m->extra != NULL) {
        snprintf(extra, sizeof(extra), ",%s", m->extra);
    }
    n = snprintf(json, sizeof(json),
                 "{\"event_id\":\"%s\",\"type\":\"%s\",\"occurred_at\":%lld,"
                 "\"tenant\":\"%s\",\"channel\":\"%s\"%s%s%s}",
                 id, m->type, (long long)(T0 + m->at), tenant, m->channel,
                 queue, corr, extra);
    assert_true(n > 0 && (size_t)n < sizeof(json));
    exact = malloc((size_t)n);
    assert_non_null(exact);
    memcpy(exact, json, (size_t)n);
    memset(err, 0, sizeof(*err));
    rc = pipeline_process(fx->p, part, exact, (size_t)n, now, err);
    free(exact);
    return rc;
}

static const char *outcome_name(enum pipe_outcome rc)
{
    static const char *const names[] = {"accepted", "duplicate", "late",
                                        "rejected", "error"};
    return names[rc];
}

/* put(), requiring the outcome want. */
static void expect_put(struct fx *fx, const char *part, const char *tenant,
                       const char *id, const struct msg *m, int64_t now,
                       enum pipe_outcome want)
{
    struct event_error err;
    enum pipe_outcome rc = put(fx, part, tenant, id, m, now, &err);

    if (rc != want) {
        fail_msg("%s %s at +%lld: %s (%s), wanted %s", m->type,
                 m->corr ? m->corr : "", (long long)m->at, outcome_name(rc),
                 rc == PIPE_REJECTED ? err.text : "", outcome_name(want));
    }
}

/* The common case: acme, partition 0, clock NOW, must be accepted. */
static void accept(struct fx *fx, const struct msg *m)
{
    expect_put(fx, PART0, "acme", NULL, m, NOW, PIPE_ACCEPTED);
}

/* ---- batches ---- */

static const struct flush_batch *flush(struct fx *fx, int64_t now)
{
    assert_int_equal(pipeline_flush_prepare(fx->p, now, &fx->b), 0);
    assert_non_null(fx->b);
    return fx->b;
}

static void flush_done(struct fx *fx, bool applied)
{
    pipeline_flush_done(fx->p, applied);
    fx->b = NULL;
}

static int tenant_index(const struct dims *d, const char *name)
{
    for (size_t i = 0; i < dims_tenant_count(d); i++) {
        if (strcmp(dims_tenant_name(d, (int)i), name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static bool is_row(const struct flush_batch *b, uint32_t tenant, uint32_t dim,
                   const char *tname, const char *channel, const char *queue)
{
    const struct dim *row = dims_get(b->dims, (int)tenant, (int)dim);

    return (int)tenant == tenant_index(b->dims, tname) &&
           strcmp(row->channel, channel) == 0 && strcmp(row->queue, queue) == 0;
}

/* The batch cell of a row and bucket (offset from T0), or NULL. */
static const struct agg_cell *find_cell(const struct flush_batch *b,
                                        const char *tenant, const char *channel,
                                        const char *queue, int64_t bucket)
{
    for (size_t i = 0; i < agg_count(b->cells); i++) {
        const struct agg_cell *c = agg_at(b->cells, i);
        if (c->bucket_ms == T0 + bucket &&
            is_row(b, c->tenant, c->dim, tenant, channel, queue)) {
            return c;
        }
    }
    return NULL;
}

static size_t count_leaf_cells(const struct flush_batch *b)
{
    size_t n = 0;

    for (size_t i = 0; i < agg_count(b->cells); i++) {
        const struct agg_cell *c = agg_at(b->cells, i);
        n += dims_get(b->dims, (int)c->tenant, (int)c->dim)->leaf;
    }
    return n;
}

/* One expected cell: every field, the ones not given are 0. */
struct row_want {
    const char *tenant; /* NULL: acme */
    const char *channel, *queue;
    int64_t bucket; /* ms after T0 */
    int64_t f[AGG_NFIELDS];
};

static void expect_cell(const struct flush_batch *b, const char *what,
                        const struct row_want *w)
{
    const char *tenant = w->tenant ? w->tenant : "acme";
    const struct agg_cell *c =
        find_cell(b, tenant, w->channel, w->queue, w->bucket);

    if (c == NULL) {
        fail_msg("%s: no cell %s %s:%s bucket +%lld", what, tenant, w->channel,
                 w->queue, (long long)w->bucket);
    }
    for (int i = 0; i < AGG_NFIELDS; i++) {
        if (c->f[i] != w->f[i]) {
            fail_msg("%s: %s %s:%s +%lld: %s = %lld, wanted %lld", what, tenant,
                     w->channel, w->queue, (long long)w->bucket,
                     agg_field_name((enum agg_field)i), (long long)c->f[i],
                     (long long)w->f[i]);
        }
    }
    /* the sketches hold one value per counted sample */
    assert_int_equal(c->wait.n, (uint64_t)w->f[F_WAIT_N]);
    assert_int_equal(c->ttr.n, (uint64_t)w->f[F_TTR_N]);
}

/* Live gauges: each listed row has exactly this delta and no other row has
 * a non-zero one (zero entries may or may not be present). */
struct live_want {
    const char *channel, *queue;
    int64_t open_tickets, waiting_dms, waiting_calls;
};

static void expect_live(const struct flush_batch *b, const char *what,
                        const struct live_want *w, size_t n)
{
    size_t nonzero = 0;
    int acme = tenant_index(b->dims, "acme");

    for (size_t i = 0; i < b->n_live; i++) {
        const struct live_delta *d = &b->live[i];
        nonzero += d->open_tickets != 0 || d->waiting_dms != 0 ||
                   d->waiting_calls != 0;
        for (size_t j = i + 1; j < b->n_live; j++) {
            if (b->live[j].tenant == d->tenant && b->live[j].dim == d->dim) {
                fail_msg("%s: row listed twice in live deltas", what);
            }
        }
    }
    for (size_t k = 0; k < n; k++) {
        const struct live_delta *d = NULL;
        for (size_t i = 0; i < b->n_live; i++) {
            if (is_row(b, b->live[i].tenant, b->live[i].dim, "acme",
                       w[k].channel, w[k].queue)) {
                d = &b->live[i];
            }
        }
        if (d == NULL) {
            fail_msg("%s: no live delta for %s:%s", what, w[k].channel,
                     w[k].queue);
        }
        assert_int_equal((int)d->tenant, acme);
        if (d->open_tickets != w[k].open_tickets ||
            d->waiting_dms != w[k].waiting_dms ||
            d->waiting_calls != w[k].waiting_calls) {
            fail_msg("%s: live %s:%s = tickets %lld dms %lld calls %lld, "
                     "wanted %lld %lld %lld",
                     what, w[k].channel, w[k].queue,
                     (long long)d->open_tickets, (long long)d->waiting_dms,
                     (long long)d->waiting_calls, (long long)w[k].open_tickets,
                     (long long)w[k].waiting_dms,
                     (long long)w[k].waiting_calls);
        }
    }
    if (nonzero != n) {
        fail_msg("%s: %zu rows with live changes, wanted %zu", what, nonzero,
                 n);
    }
}

/* Oldest-wait updates: exactly these (member, row) pairs, start offsets from
 * T0 or GONE for a removal. */
struct oldest_want {
    const char *member, *channel, *queue;
    int64_t start; /* ms after T0, or GONE */
};

static void expect_oldest(const struct flush_batch *b, const char *what,
                          const struct oldest_want *w, size_t n)
{
    if (b->n_oldest != n) {
        fail_msg("%s: %zu oldest updates, wanted %zu", what, b->n_oldest, n);
    }
    for (size_t k = 0; k < n; k++) {
        const struct oldest_update *u = NULL;
        for (size_t i = 0; i < b->n_oldest; i++) {
            if (strcmp(b->oldest[i].member, w[k].member) == 0 &&
                is_row(b, b->oldest[i].tenant, b->oldest[i].dim, "acme",
                       w[k].channel, w[k].queue)) {
                assert_null(u);
                u = &b->oldest[i];
            }
        }
        if (u == NULL) {
            fail_msg("%s: no oldest update for %s %s:%s", what, w[k].member,
                     w[k].channel, w[k].queue);
        }
        if (w[k].start == GONE ? u->oldest_ms >= 0
                               : u->oldest_ms != T0 + w[k].start) {
            fail_msg("%s: oldest %s %s:%s = %lld, wanted %s%lld", what,
                     w[k].member, w[k].channel, w[k].queue,
                     (long long)u->oldest_ms, w[k].start == GONE ? "< 0 " : "",
                     w[k].start == GONE ? 0LL : (long long)(T0 + w[k].start));
        }
    }
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- correlation scenarios (table) ---- */

#define MAX_EVS 8
#define MAX_ROWS 4

struct scenario {
    const char *name;
    enum abandon_mode abandons;
    struct msg evs[MAX_EVS]; /* until type NULL */
    struct row_want rows[MAX_ROWS]; /* until channel NULL: every leaf cell */
    uint64_t orphans[EV_TYPE_COUNT];
};

/* Shorthands for the fields of row_want.f */
#define EVENTS(n) [F_EVENTS] = (n)
#define WAIT(n, sum, max) [F_WAIT_N] = (n), [F_WAIT_SUM] = (sum), [F_WAIT_MAX] = (max)
#define SL(n, met) [F_SL_N] = (n), [F_SL_MET] = (met)
#define TTR(n, sum, max) [F_TTR_N] = (n), [F_TTR_SUM] = (sum), [F_TTR_MAX] = (max)

static const struct scenario scenarios[] = {
    /* DM first response */
    {.name = "dm: a second dm.received does not restart; sample = reply - "
             "first received",
     .evs = {{"dm.received", "c1", 0, "chat", "a", NULL},
             {"dm.received", "c1", 10000, "chat", "a", NULL},
             {"dm.replied", "c1", 30000, "chat", "a", NULL}},
     .rows = {{NULL, "chat", "a", 0,
               {EVENTS(3), WAIT(1, 30000, 30000), SL(1, 1)}}}},
    {.name = "dm: reply with nobody waiting is an orphan and no sample",
     .evs = {{"dm.replied", "c9", 5000, "chat", "a", NULL}},
     .rows = {{NULL, "chat", "a", 0, {EVENTS(1)}}},
     .orphans = {[EV_DM_REPLIED] = 1}},
    {.name = "dm: a second reply finds nobody waiting",
     .evs = {{"dm.received", "c1", 0, "chat", "a", NULL},
             {"dm.replied", "c1", 20000, "chat", "a", NULL},
             {"dm.replied", "c1", 40000, "chat", "a", NULL}},
     .rows = {{NULL, "chat", "a", 0,
               {EVENTS(3), WAIT(1, 20000, 20000), SL(1, 1)}}},
     .orphans = {[EV_DM_REPLIED] = 1}},
    {.name = "dm: a dm.received after the reply opens a new wait",
     .evs = {{"dm.received", "c1", 0, "chat", "a", NULL},
             {"dm.replied", "c1", 10000, "chat", "a", NULL},
             {"dm.received", "c1", 20000, "chat", "a", NULL},
             {"dm.replied", "c1", 50000, "chat", "a", NULL}},
     .rows = {{NULL, "chat", "a", 0,
               {EVENTS(4), WAIT(2, 40000, 30000), SL(2, 2)}}}},
    {.name = "dm: conversations are independent",
     .evs = {{"dm.received", "c1", 0, "chat", "a", NULL},
             {"dm.received", "c2", 5000, "chat", "a", NULL},
             {"dm.replied", "c2", 6000, "chat", "a", NULL},
             {"dm.replied", "c1", 50000, "chat", "a", NULL}},
     .rows = {{NULL, "chat", "a", 0,
               {EVENTS(4), WAIT(2, 51000, 50000), SL(2, 2)}}}},

    /* call queue wait, answered, service level (phone 20s) */
    {.name = "call: answered exactly at the 20s phone target meets it",
     .evs = {{"call.queued", "k1", 0, "phone", "q", NULL},
             {"call.answered", "k1", 20000, "phone", "q", NULL}},
     .rows = {{NULL, "phone", "q", 0,
               {EVENTS(2), WAIT(1, 20000, 20000), [F_ANSWERED] = 1,
                SL(1, 1)}}}},
    {.name = "call: answered 1 ms past the target misses it",
     .evs = {{"call.queued", "k1", 0, "phone", "q", NULL},
             {"call.answered", "k1", 20001, "phone", "q", NULL}},
     .rows = {{NULL, "phone", "q", 0,
               {EVENTS(2), WAIT(1, 20001, 20001), [F_ANSWERED] = 1,
                SL(1, 0)}}}},
    {.name = "call: a repeated call.queued while queued is ignored",
     .evs = {{"call.queued", "k1", 0, "phone", "q", NULL},
             {"call.queued", "k1", 5000, "phone", "q", NULL},
             {"call.answered", "k1", 15000, "phone", "q", NULL}},
     .rows = {{NULL, "phone", "q", 0,
               {EVENTS(3), WAIT(1, 15000, 15000), [F_ANSWERED] = 1,
                SL(1, 1)}}}},
    {.name = "call: answered with nothing queued counts, is an orphan, no "
             "sample",
     .evs = {{"call.answered", "k9", 1000, "phone", "q", NULL}},
     .rows = {{NULL, "phone", "q", 0, {EVENTS(1), [F_ANSWERED] = 1}}},
     .orphans = {[EV_CALL_ANSWERED] = 1}},
    {.name = "call: call.ended closes a queued call without a sample",
     .evs = {{"call.queued", "k1", 0, "phone", "q", NULL},
             {"call.ended", "k1", 30000, "phone", "q", NULL},
             {"call.answered", "k1", 40000, "phone", "q", NULL}},
     .rows = {{NULL, "phone", "q", 0, {EVENTS(3), [F_ANSWERED] = 1}}},
     .orphans = {[EV_CALL_ANSWERED] = 1}},

    /* abandons: waits 10s (short), 20s (at the target), 30s (long) */
    {.name = "abandon, exclude_short: only the abandon past the target counts "
             "(missed)",
     .abandons = ABANDON_EXCLUDE_SHORT,
     .evs = {{"call.queued", "k1", 0, "phone", "q", NULL},
             {"call.abandoned", "k1", 10000, "phone", "q", NULL},
             {"call.queued", "k2", 0, "phone", "q", NULL},
             {"call.abandoned", "k2", 20000, "phone", "q", NULL},
             {"call.queued", "k3", 0, "phone", "q", NULL},
             {"call.abandoned", "k3", 30000, "phone", "q", NULL}},
     .rows = {{NULL, "phone", "q", 0,
               {EVENTS(6), [F_ABANDONED] = 3, SL(1, 0)}}}},
    {.name = "abandon, missed: every abandon counts as missed",
     .abandons = ABANDON_MISSED,
     .evs = {{"call.queued", "k1", 0, "phone", "q", NULL},
             {"call.abandoned", "k1", 10000, "phone", "q", NULL},
             {"call.queued", "k2", 0, "phone", "q", NULL},
             {"call.abandoned", "k2", 20000, "phone", "q", NULL},
             {"call.queued", "k3", 0, "phone", "q", NULL},
             {"call.abandoned", "k3", 30000, "phone", "q", NULL}},
     .rows = {{NULL, "phone", "q", 0,
               {EVENTS(6), [F_ABANDONED] = 3, SL(3, 0)}}}},
    {.name = "abandon, ignore: abandons never count",
     .abandons = ABANDON_IGNORE,
     .evs = {{"call.queued", "k1", 0, "phone", "q", NULL},
             {"call.abandoned", "k1", 10000, "phone", "q", NULL},
             {"call.queued", "k2", 0, "phone", "q", NULL},
             {"call.abandoned", "k2", 20000, "phone", "q", NULL},
             {"call.queued", "k3", 0, "phone", "q", NULL},
             {"call.abandoned", "k3", 30000, "phone", "q", NULL}},
     .rows = {{NULL, "phone", "q", 0, {EVENTS(6), [F_ABANDONED] = 3}}}},
    {.name = "abandon of unknown wait is an orphan and left out of sl "
             "(missed)",
     .abandons = ABANDON_MISSED,
     .evs = {{"call.abandoned", "k9", 5000, "phone", "q", NULL}},
     .rows = {{NULL, "phone", "q", 0, {EVENTS(1), [F_ABANDONED] = 1}}},
     .orphans = {[EV_CALL_ABANDONED] = 1}},
    {.name = "abandon with wait_ms and no start counts by its wait (missed)",
     .abandons = ABANDON_MISSED,
     .evs = {{"call.abandoned", "k9", 5000, "phone", "q", "\"wait_ms\":3000"}},
     .rows = {{NULL, "phone", "q", 0,
               {EVENTS(1), [F_ABANDONED] = 1, SL(1, 0)}}}},
    {.name = "abandon: wait_ms given is the wait (exclude_short)",
     .abandons = ABANDON_EXCLUDE_SHORT,
     .evs = {{"call.queued", "k1", 0, "phone", "q", NULL},
             {"call.abandoned", "k1", 30000, "phone", "q", "\"wait_ms\":5000"},
             {"call.abandoned", "k2", 40000, "phone", "q",
              "\"wait_ms\":25000"}},
     .rows = {{NULL, "phone", "q", 0,
               {EVENTS(3), [F_ABANDONED] = 2, SL(1, 0)}}}},

    /* tickets: first reply, ttr, reopen */
    {.name = "ticket: only the first reply is a sample",
     .evs = {{"ticket.opened", "t1", 0, "email", "s", NULL},
             {"ticket.replied", "t1", 60000, "email", "s", NULL},
             {"ticket.replied", "t1", 120000, "email", "s", NULL}},
     .rows = {{NULL, "email", "s", 0, {EVENTS(1)}},
              {NULL, "email", "s", 60000,
               {EVENTS(1), WAIT(1, 60000, 60000), SL(1, 1)}},
              {NULL, "email", "s", 120000, {EVENTS(1)}}}},
    {.name = "ticket: replied with nothing known and no wait_ms is an orphan",
     .evs = {{"ticket.replied", "t9", 0, "email", "s", NULL}},
     .rows = {{NULL, "email", "s", 0, {EVENTS(1)}}},
     .orphans = {[EV_TICKET_REPLIED] = 1}},
    {.name = "ticket: ttr from ticket.opened",
     .evs = {{"ticket.opened", "t1", 0, "email", "s", NULL},
             {"ticket.closed", "t1", 150000, "email", "s", NULL}},
     .rows = {{NULL, "email", "s", 0, {EVENTS(1)}},
              {NULL, "email", "s", 120000,
               {EVENTS(1), TTR(1, 150000, 150000)}}}},
    {.name = "ticket: ttr from opened_at as given, start seen or not",
     .evs = {{"ticket.opened", "t1", 0, "email", "s", NULL},
             /* opened_at T0 - 1m: ttr 2m although the partition saw T0 */
             {"ticket.closed", "t1", 60000, "email", "s",
              "\"opened_at\":1704067140000"},
             /* opened_at T0 - 1h as RFC 3339, never opened here */
             {"ticket.closed", "t2", 90000, "email", "s",
              "\"opened_at\":\"2023-12-31T23:00:00Z\""}},
     .rows = {{NULL, "email", "s", 0, {EVENTS(1)}},
              {NULL, "email", "s", 60000,
               {EVENTS(2), TTR(2, 120000 + 3690000, 3690000)}}}},
    {.name = "ticket: closed with nothing open and no opened_at is an orphan",
     .evs = {{"ticket.closed", "t9", 0, "email", "s", NULL}},
     .rows = {{NULL, "email", "s", 0, {EVENTS(1)}}},
     .orphans = {[EV_TICKET_CLOSED] = 1}},
    {.name = "ticket: each open-close cycle is a ttr sample, the reopened one "
             "from the reopen",
     .evs = {{"ticket.opened", "t1", 0, "email", "s", NULL},
             {"ticket.closed", "t1", 60000, "email", "s", NULL},
             {"ticket.reopened", "t1", 120000, "email", "s", NULL},
             {"ticket.closed", "t1", 300000, "email", "s", NULL}},
     .rows = {{NULL, "email", "s", 0, {EVENTS(1)}},
              {NULL, "email", "s", 60000, {EVENTS(1), TTR(1, 60000, 60000)}},
              {NULL, "email", "s", 120000, {EVENTS(1)}},
              {NULL, "email", "s", 300000,
               {EVENTS(1), TTR(1, 180000, 180000)}}}},
    {.name = "ticket: a reopened ticket is not waiting for a first reply",
     .evs = {{"ticket.opened", "t1", 0, "email", "s", NULL},
             {"ticket.replied", "t1", 10000, "email", "s", NULL},
             {"ticket.closed", "t1", 20000, "email", "s", NULL},
             {"ticket.reopened", "t1", 60000, "email", "s", NULL},
             {"ticket.replied", "t1", 90000, "email", "s", NULL},
             {"ticket.closed", "t1", 120000, "email", "s", NULL}},
     .rows = {{NULL, "email", "s", 0,
               {EVENTS(3), WAIT(1, 10000, 10000), SL(1, 1),
                TTR(1, 20000, 20000)}},
              {NULL, "email", "s", 60000, {EVENTS(2)}},
              {NULL, "email", "s", 120000,
               {EVENTS(1), TTR(1, 60000, 60000)}}}},

    /* wait_ms and negative waits */
    {.name = "wait_ms given is the sample even without a start",
     .evs = {{"dm.replied", "c5", 10000, "chat", "a", "\"wait_ms\":7000"},
             {"call.answered", "k5", 10000, "phone", "q", "\"wait_ms\":25000"},
             {"ticket.replied", "t5", 10000, "email", "s",
              "\"wait_ms\":3600000"}},
     .rows = {{NULL, "chat", "a", 0, {EVENTS(1), WAIT(1, 7000, 7000), SL(1, 1)}},
              {NULL, "phone", "q", 0,
               {EVENTS(1), WAIT(1, 25000, 25000), [F_ANSWERED] = 1,
                SL(1, 0)}},
              {NULL, "email", "s", 0,
               {EVENTS(1), WAIT(1, 3600000, 3600000), SL(1, 1)}}}},
    {.name = "wait_ms given beats the computed wait and closes the open wait",
     .evs = {{"dm.received", "c1", 0, "chat", "a", NULL},
             {"dm.replied", "c1", 50000, "chat", "a", "\"wait_ms\":3000"},
             {"dm.replied", "c1", 55000, "chat", "a", NULL}},
     .rows = {{NULL, "chat", "a", 0, {EVENTS(3), WAIT(1, 3000, 3000), SL(1, 1)}}},
     .orphans = {[EV_DM_REPLIED] = 1}},
    {.name = "ticket.replied wait_ms counts only while not yet replied",
     .evs = {{"ticket.opened", "t1", 0, "email", "s", NULL},
             {"ticket.replied", "t1", 1000, "email", "s", NULL},
             {"ticket.replied", "t1", 2000, "email", "s", "\"wait_ms\":500"},
             {"ticket.opened", "t2", 0, "email", "s", NULL},
             {"ticket.replied", "t2", 4000, "email", "s", "\"wait_ms\":300"}},
     .rows = {{NULL, "email", "s", 0,
               {EVENTS(5), WAIT(2, 1300, 1000), SL(2, 2)}}}},
    {.name = "a negative computed wait counts as 0",
     .evs = {{"dm.received", "c1", 30000, "chat", "a", NULL},
             {"dm.replied", "c1", 10000, "chat", "a", NULL}},
     .rows = {{NULL, "chat", "a", 0, {EVENTS(2), WAIT(1, 0, 0), SL(1, 1)}}}},

    /* where a sample goes */
    {.name = "the sample goes to the ending event's row and bucket",
     .evs = {{"dm.received", "c1", 0, "chat", "a", NULL},
             {"dm.replied", "c1", 60000, "chat", "b", NULL}},
     .rows = {{NULL, "chat", "a", 0, {EVENTS(1)}},
              {NULL, "chat", "b", 60000,
               {EVENTS(1), WAIT(1, 60000, 60000), SL(1, 1)}}}},
    {.name = "the sl target is the ending event's channel (chat 60s, not "
             "email 4h)",
     .evs = {{"dm.received", "c1", 0, "email", "a", NULL},
             {"dm.replied", "c1", 61000, "chat", "a", NULL}},
     .rows = {{NULL, "email", "a", 0, {EVENTS(1)}},
              {NULL, "chat", "a", 60000,
               {EVENTS(1), WAIT(1, 61000, 61000), SL(1, 0)}}}},
    {.name = "any other channel is judged against the default target (15m)",
     .evs = {{"dm.received", "c1", 0, "web", "a", NULL},
             {"dm.received", "c2", 0, "web", "a", NULL},
             {"dm.replied", "c1", 900000, "web", "a", NULL},
             {"dm.replied", "c2", 900001, "web", "a", NULL}},
     .rows = {{NULL, "web", "a", 0, {EVENTS(2)}},
              {NULL, "web", "a", 900000,
               {EVENTS(2), WAIT(2, 1800001, 900001), SL(2, 1)}}}},
    {.name = "correlation is per kind: a call and a dm may share an id",
     .evs = {{"dm.received", "x1", 0, "chat", "a", NULL},
             {"call.answered", "x1", 5000, "chat", "a", NULL},
             {"dm.replied", "x1", 8000, "chat", "a", NULL}},
     .rows = {{NULL, "chat", "a", 0,
               {EVENTS(3), [F_ANSWERED] = 1, WAIT(1, 8000, 8000), SL(1, 1)}}},
     .orphans = {[EV_CALL_ANSWERED] = 1}},
};

static void run_scenario(const struct scenario *s)
{
    void *state = NULL;
    struct fx *fx;
    const struct flush_batch *b;
    size_t n_rows = 0;
    const struct pipeline_stats *st;

    assert_int_equal(fx_setup(&state), 0);
    fx = state;
    fx->cfg.abandons = s->abandons;
    fx_start(fx, false);
    for (size_t i = 0; i < MAX_EVS && s->evs[i].type != NULL; i++) {
        accept(fx, &s->evs[i]);
    }
    b = flush(fx, NOW);
    for (; n_rows < MAX_ROWS && s->rows[n_rows].channel != NULL; n_rows++) {
        expect_cell(b, s->name, &s->rows[n_rows]);
    }
    if (count_leaf_cells(b) != n_rows) {
        fail_msg("%s: %zu leaf cells, wanted %zu", s->name, count_leaf_cells(b),
                 n_rows);
    }
    st = pipeline_stats(fx->p);
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        if (st->orphans[t] != s->orphans[t]) {
            fail_msg("%s: orphan_ends[%s] = %llu, wanted %llu", s->name,
                     event_type_name((enum event_type)t),
                     (unsigned long long)st->orphans[t],
                     (unsigned long long)s->orphans[t]);
        }
    }
    flush_done(fx, true);
    fx_teardown(&state);
}

static void test_correlation_scenarios(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(scenarios); i++) {
        run_scenario(&scenarios[i]);
    }
}

/* ---- surveys ---- */

static void test_survey_counters_by_score_band(void **state)
{
    struct fx *fx = *state;
    char extra[32];
    const struct row_want want = {
        NULL, "web", "default", 0,
        {EVENTS(11 + 5 + 7), [F_NPS_N] = 11, [F_PROMOTERS] = 2,
         [F_PASSIVES] = 2, [F_DETRACTORS] = 7, [F_CSAT_N] = 5,
         [F_CSAT_GOOD] = 2, [F_CSAT_SUM] = 15, [F_CES_N] = 7,
         [F_CES_SUM] = 28}};

    fx_start(fx, false);
    for (int score = 0; score <= 10; score++) {
        snprintf(extra, sizeof(extra), "\"score\":%d", score);
        accept(fx, &(struct msg){"survey.nps", NULL, 1000, "web", NULL, extra});
    }
    for (int score = 1; score <= 5; score++) {
        snprintf(extra, sizeof(extra), "\"score\":%d", score);
        accept(fx,
               &(struct msg){"survey.csat", NULL, 2000, "web", NULL, extra});
    }
    for (int score = 1; score <= 7; score++) {
        snprintf(extra, sizeof(extra), "\"score\":%d", score);
        accept(fx, &(struct msg){"survey.ces", NULL, 3000, "web", NULL, extra});
    }
    expect_cell(flush(fx, NOW), "surveys", &want);
    flush_done(fx, true);
}

/* Band edges one at a time: 6 detractor / 7 passive, 8 passive / 9 promoter,
 * csat 3 not good / 4 good. */
static void test_survey_band_edges(void **state)
{
    static const struct {
        const char *type;
        int score;
        enum agg_field counted;
    } cases[] = {
        {"survey.nps", 0, F_DETRACTORS}, {"survey.nps", 6, F_DETRACTORS},
        {"survey.nps", 7, F_PASSIVES},   {"survey.nps", 8, F_PASSIVES},
        {"survey.nps", 9, F_PROMOTERS},  {"survey.nps", 10, F_PROMOTERS},
        {"survey.csat", 3, F_CSAT_N},    {"survey.csat", 4, F_CSAT_GOOD},
        {"survey.csat", 5, F_CSAT_GOOD},
    };
    struct fx *fx = *state;

    fx_start(fx, false);
    for (size_t i = 0; i < N_OF(cases); i++) {
        char extra[32], queue[8];
        const struct agg_cell *c;
        snprintf(extra, sizeof(extra), "\"score\":%d", cases[i].score);
        snprintf(queue, sizeof(queue), "q%zu", i);
        accept(fx, &(struct msg){cases[i].type, NULL, 0, "web", queue, extra});
        c = find_cell(flush(fx, NOW), "acme", "web", queue, 0);
        assert_non_null(c);
        if (cases[i].counted == F_CSAT_N) {
            assert_int_equal(c->f[F_CSAT_GOOD], 0);
        }
        if (c->f[cases[i].counted] != 1) {
            fail_msg("%s %d: %s not counted", cases[i].type, cases[i].score,
                     agg_field_name(cases[i].counted));
        }
        assert_int_equal(c->f[F_PROMOTERS] + c->f[F_PASSIVES] +
                             c->f[F_DETRACTORS],
                         c->f[F_NPS_N]);
        flush_done(fx, true);
    }
}

/* ---- rows and roll-ups ---- */

static void test_batch_has_leaves_and_rollups_sorted(void **state)
{
    struct fx *fx = *state;
    const struct flush_batch *b;
    static const struct row_want want[] = {
        /* bucket 0 leaves */
        {NULL, "chat", "a", 0, {EVENTS(3), WAIT(1, 30000, 30000), SL(1, 1)}},
        {NULL, "chat", "b", 0, {EVENTS(1)}},
        {NULL, "phone", "a", 0,
         {EVENTS(2), [F_ANSWERED] = 1, WAIT(1, 10000, 10000), SL(1, 1)}},
        /* bucket 0 roll-ups: sums, and the max of the maxima */
        {NULL, "chat", "_all", 0, {EVENTS(4), WAIT(1, 30000, 30000), SL(1, 1)}},
        {NULL, "phone", "_all", 0,
         {EVENTS(2), [F_ANSWERED] = 1, WAIT(1, 10000, 10000), SL(1, 1)}},
        {NULL, "_all", "a", 0,
         {EVENTS(5), [F_ANSWERED] = 1, WAIT(2, 40000, 30000), SL(2, 2)}},
        {NULL, "_all", "b", 0, {EVENTS(1)}},
        {NULL, "_all", "_all", 0,
         {EVENTS(6), [F_ANSWERED] = 1, WAIT(2, 40000, 30000), SL(2, 2)}},
        /* bucket 1m: c2 answered after exactly 60s */
        {NULL, "chat", "a", 60000, {EVENTS(1), WAIT(1, 60000, 60000), SL(1, 1)}},
        {NULL, "chat", "_all", 60000,
         {EVENTS(1), WAIT(1, 60000, 60000), SL(1, 1)}},
        {NULL, "_all", "a", 60000,
         {EVENTS(1), WAIT(1, 60000, 60000), SL(1, 1)}},
        {NULL, "_all", "_all", 60000,
         {EVENTS(1), WAIT(1, 60000, 60000), SL(1, 1)}},
        /* another tenant rolls up on its own */
        {"globex", "chat", "a", 0, {EVENTS(1)}},
        {"globex", "chat", "_all", 0, {EVENTS(1)}},
        {"globex", "_all", "a", 0, {EVENTS(1)}},
        {"globex", "_all", "_all", 0, {EVENTS(1)}},
    };

    fx_start(fx, false);
    accept(fx, &(struct msg){"dm.received", "c1", 0, "chat", "a", NULL});
    accept(fx, &(struct msg){"dm.received", "c2", 5000, "chat", "a", NULL});
    accept(fx, &(struct msg){"dm.replied", "c1", 30000, "chat", "a", NULL});
    accept(fx, &(struct msg){"dm.received", "c3", 1000, "chat", "b", NULL});
    accept(fx, &(struct msg){"call.queued", "k1", 0, "phone", "a", NULL});
    accept(fx, &(struct msg){"call.answered", "k1", 10000, "phone", "a", NULL});
    accept(fx, &(struct msg){"dm.replied", "c2", 65000, "chat", "a", NULL});
    expect_put(fx, PART0, "globex", NULL,
               &(struct msg){"dm.received", "g1", 0, "chat", "a", NULL}, NOW,
               PIPE_ACCEPTED);
    b = flush(fx, NOW);
    for (size_t i = 0; i < N_OF(want); i++) {
        expect_cell(b, "rollups", &want[i]);
    }
    assert_int_equal(agg_count(b->cells), N_OF(want));
    assert_int_equal(b->clock_ms, NOW);
    for (size_t i = 1; i < agg_count(b->cells); i++) {
        const struct agg_cell *x = agg_at(b->cells, i - 1);
        const struct agg_cell *y = agg_at(b->cells, i);
        bool ordered = x->tenant < y->tenant ||
                       (x->tenant == y->tenant &&
                        (x->dim < y->dim || (x->dim == y->dim &&
                                             x->bucket_ms < y->bucket_ms)));
        assert_true(ordered);
    }
    flush_done(fx, true);
    /* applied: nothing is pending any more */
    assert_int_equal(agg_count(flush(fx, NOW)->cells), 0);
    flush_done(fx, true);
}

/* ---- live gauges ---- */

static void test_live_plus_one_at_start_row_minus_one_on_close(void **state)
{
    struct fx *fx = *state;
    static const struct live_want opened[] = {
        {"chat", "a", 0, 1, 0},    {"chat", "b", 0, 1, 0},
        {"phone", "a", 0, 0, 1},   {"email", "a", 1, 0, 0},
        {"chat", "_all", 0, 2, 0}, {"phone", "_all", 0, 0, 1},
        {"email", "_all", 1, 0, 0}, {"_all", "a", 1, 1, 1},
        {"_all", "b", 0, 1, 0},    {"_all", "_all", 1, 2, 1},
    };
    /* closed by events on other rows: the start rows go down */
    static const struct live_want answered[] = {
        {"chat", "a", 0, -1, 0},     {"chat", "_all", 0, -1, 0},
        {"phone", "a", 0, 0, -1},    {"phone", "_all", 0, 0, -1},
        {"_all", "a", 0, -1, -1},    {"_all", "_all", 0, -1, -1},
    };
    static const struct live_want closed[] = {
        {"email", "a", -1, 0, 0},
        {"email", "_all", -1, 0, 0},
        {"_all", "a", -1, 0, 0},
        {"_all", "_all", -1, 0, 0},
    };

    fx_start(fx, false);
    accept(fx, &(struct msg){"dm.received", "c1", 0, "chat", "a", NULL});
    accept(fx, &(struct msg){"dm.received", "c2", 1000, "chat", "b", NULL});
    accept(fx, &(struct msg){"call.queued", "k1", 2000, "phone", "a", NULL});
    accept(fx, &(struct msg){"ticket.opened", "t1", 3000, "email", "a", NULL});
    expect_live(flush(fx, NOW), "opened", opened, N_OF(opened));
    flush_done(fx, true);

    accept(fx, &(struct msg){"dm.replied", "c1", 70000, "chat", "z", NULL});
    accept(fx, &(struct msg){"call.answered", "k1", 70000, "phone", "b", NULL});
    /* a reply does not close the ticket */
    accept(fx, &(struct msg){"ticket.replied", "t1", 70000, "email", "a", NULL});
    expect_live(flush(fx, NOW), "answered", answered, N_OF(answered));
    flush_done(fx, true);

    accept(fx, &(struct msg){"ticket.closed", "t1", 200000, "email", "b", NULL});
    expect_live(flush(fx, NOW), "closed", closed, N_OF(closed));
    flush_done(fx, true);

    expect_live(flush(fx, NOW), "idle", NULL, 0);
    flush_done(fx, true);
}

/* Persisted correlation state: a record opened and closed between two
 * flushes is never written; one written before is deleted when it closes. */
static void test_persist_writes_only_what_outlives_a_batch(void **state)
{
    struct fx *fx = *state;
    const struct flush_batch *b;
    char t1[17], line[128], want[64];

    fx_start(fx, false);
    pipeline_set_persist(fx->p, true);
    accept(fx, &(struct msg){"ticket.opened", "t1", 0, "email", "a", NULL});
    accept(fx, &(struct msg){"ticket.opened", "t2", 1000, "email", "a", NULL});
    accept(fx, &(struct msg){"ticket.closed", "t2", 2000, "email", "a", NULL});
    b = flush(fx, NOW);
    assert_int_equal(b->n_corr, 1); /* one partition */
    assert_false(b->corr[0].reset);
    assert_true(b->corr[0].len < sizeof(line));
    memcpy(line, b->corr[0].text, b->corr[0].len);
    line[b->corr[0].len] = '\0';
    /* t1 only: "KEY START KIND WAITING TENANT CHANNEL QUEUE" */
    snprintf(t1, sizeof(t1), "%.16s", line);
    snprintf(want, sizeof(want), " %lld t 1 acme email a\n", (long long)T0);
    assert_string_equal(line + 16, want);
    flush_done(fx, true);

    accept(fx, &(struct msg){"ticket.closed", "t1", 3000, "email", "a", NULL});
    b = flush(fx, NOW);
    assert_int_equal(b->n_corr, 1);
    assert_int_equal(b->corr[0].len, 17);
    assert_memory_equal(b->corr[0].text, t1, 16); /* closed: the key alone */
    assert_int_equal(b->corr[0].text[16], '\n');
    flush_done(fx, true);
}

static size_t count_lines(const struct corr_log *l)
{
    size_t n = 0;

    for (size_t i = 0; i < l->len; i++) {
        n += l->text[i] == '\n';
    }
    return n;
}

/* The log replayed: per open key, its value and whether it waits. */
struct log_model {
    uint64_t key[64];
    char value[64][96];
    bool waiting[64];
    size_t n;
};

static void log_apply(struct log_model *m, const struct corr_log *l)
{
    for (const char *line = l->text, *end = line + l->len; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        uint64_t key = strtoull(line, NULL, 16);
        size_t i = 0;
        assert_non_null(nl);
        while (i < m->n && m->key[i] != key) {
            i++;
        }
        if (nl - line == 16) { /* closed */
            assert_true(i < m->n); /* only what the log holds is closed */
            m->key[i] = m->key[--m->n];
            m->waiting[i] = m->waiting[m->n];
            memcpy(m->value[i], m->value[m->n], sizeof(m->value[i]));
        } else {
            char kind;
            int waiting;
            long long start;
            assert_int_equal(sscanf(line + 17, "%lld %c %d", &start, &kind,
                                    &waiting),
                             3);
            if (i == m->n) {
                assert_true(m->n < 64);
                m->key[m->n++] = key;
            }
            m->waiting[i] = waiting != 0;
            assert_true(nl - line - 17 < (ptrdiff_t)sizeof(m->value[i]));
            snprintf(m->value[i], sizeof(m->value[i]), "%.*s",
                     (int)(nl - line - 17), line + 17);
        }
        line = nl + 1;
    }
}

/* Tickets of 12 ids opened, replied to, closed and opened again at random,
 * with flushes between (one in four is not applied and the next one writes
 * it again): after every applied flush the log replayed holds exactly the
 * open tickets, waiting where they wait. Closing a ticket and opening it (or
 * another one, in the closed record's place) again between two flushes is
 * where the log could get a record twice, miss a closing or resurrect one.
 * Then a second instance restores the log and closes every ticket: its log
 * closes every record it restored. */
static void test_persist_log_replays_to_the_open_records(void **state)
{
    struct fx *fx = *state;
    enum { IDS = 12 };
    int st[IDS] = {0}; /* 0 closed, 1 open and waiting, 2 replied to */
    struct log_model m = {.n = 0};
    uint64_t rng = 42;
    int64_t at = 0;

    fx_start(fx, false);
    pipeline_set_persist(fx->p, true);
    for (int round = 0; round <= 400; round++) { /* 400: applied */
        const struct flush_batch *b;
        size_t open = 0, waiting = 0, m_waiting = 0;
        rng = rng * 6364136223846793005u + 1442695040888963407u;
        for (int e = (int)((rng >> 33) % 7); e > 0; e--) {
            char id[16];
            int k;
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            k = (int)((rng >> 33) % IDS);
            snprintf(id, sizeof(id), "t%d", k);
            at += 100;
            if (st[k] == 0) {
                accept(fx, &(struct msg){"ticket.opened", id, at, "email",
                                         "a", NULL});
                st[k] = 1;
            } else if (st[k] == 1 && (rng >> 40) % 2 == 0) {
                accept(fx, &(struct msg){"ticket.replied", id, at, "email",
                                         "a", NULL});
                st[k] = 2;
            } else {
                accept(fx, &(struct msg){"ticket.closed", id, at, "email",
                                         "a", NULL});
                st[k] = 0;
            }
        }
        b = flush(fx, NOW);
        if (round % 4 == 3) {
            flush_done(fx, false);
            continue;
        }
        for (size_t i = 0; i < b->n_corr; i++) {
            if (b->corr[i].reset) {
                m.n = 0;
            }
            log_apply(&m, &b->corr[i]);
        }
        flush_done(fx, true);
        for (int k = 0; k < IDS; k++) {
            open += st[k] != 0;
            waiting += st[k] == 1;
        }
        for (size_t i = 0; i < m.n; i++) {
            m_waiting += m.waiting[i];
        }
        assert_int_equal(m.n, open);
        assert_int_equal(m_waiting, waiting);
        assert_int_equal(pipeline_stats(fx->p)->open_correlations, open);
    }

    {
        struct pipeline *first = fx->p;
        struct partition *part;
        const struct flush_batch *b;
        char err[256];
        size_t n = m.n;
        assert_true(n > 0);
        fx->p = pipeline_new(&fx->cfg, false, err, sizeof(err));
        assert_non_null(fx->p);
        pipeline_set_persist(fx->p, true);
        part = pipeline_partition(fx->p, PART0);
        assert_non_null(part);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(
                pipeline_partition_restore(fx->p, part, m.key[i], m.value[i]),
                0);
        }
        for (int k = 0; k < IDS; k++) {
            char id[16];
            if (st[k] != 0) {
                snprintf(id, sizeof(id), "t%d", k);
                at += 100;
                accept(fx, &(struct msg){"ticket.closed", id, at, "email",
                                         "a", NULL});
            }
        }
        b = flush(fx, NOW);
        assert_int_equal(b->n_corr, 1);
        log_apply(&m, &b->corr[0]);
        assert_int_equal(m.n, 0);
        assert_int_equal(count_lines(&b->corr[0]), n);
        flush_done(fx, true);
        pipeline_destroy(fx->p);
        fx->p = first;
    }
}

/* A partition moves with one wait open (its oldest entry is in Redis); the
 * wait is answered before the new owner's first flush: that flush removes
 * the entry, which nothing else would (oldest_wait_ms grew forever while
 * waiting_dms was 0). A wait still open is written again. */
static void test_restored_wait_answered_before_the_first_flush_is_removed(
    void **state)
{
    struct fx *fx = *state;
    static const struct oldest_want gone[] = {
        {PART0, "chat", "a", GONE}, {PART0, "chat", "_all", GONE},
        {PART0, "_all", "a", GONE}, {PART0, "_all", "_all", GONE},
    };
    static const struct oldest_want kept[] = {
        {PART0, "chat", "a", 1000},    {PART0, "chat", "_all", 1000},
        {PART0, "_all", "a", 1000},    {PART0, "_all", "_all", 1000},
        {PART0, "chat", "b", 2000},    {PART0, "_all", "b", 2000},
    };
    struct log_model m = {.n = 0};
    struct pipeline *first;
    const struct flush_batch *b;
    char err[256];

    fx_start(fx, false);
    first = fx->p;
    pipeline_set_persist(fx->p, true);
    accept(fx, &(struct msg){"dm.received", "c1", 1000, "chat", "a", NULL});
    b = flush(fx, NOW);
    assert_int_equal(b->n_corr, 1);
    log_apply(&m, &b->corr[0]);
    flush_done(fx, true);
    assert_int_equal(m.n, 1);

    for (int round = 0; round < 2; round++) {
        struct partition *part;
        fx->p = pipeline_new(&fx->cfg, false, err, sizeof(err));
        assert_non_null(fx->p);
        pipeline_set_persist(fx->p, true);
        part = pipeline_partition(fx->p, PART0);
        assert_non_null(part);
        assert_int_equal(
            pipeline_partition_restore(fx->p, part, m.key[0], m.value[0]), 0);
        pipeline_partition_restored(fx->p, part, 1);
        if (round == 0) {
            accept(fx, &(struct msg){"dm.replied", "c1", 9000, "chat", "a",
                                     NULL});
            expect_oldest(flush(fx, NOW), "answered", gone, N_OF(gone));
        } else {
            /* c1 still waits, c2 (older) arrives on chat:b */
            accept(fx, &(struct msg){"dm.received", "c2", 2000, "chat", "b",
                                     NULL});
            expect_oldest(flush(fx, NOW), "still open", kept, N_OF(kept));
        }
        flush_done(fx, true);
        pipeline_destroy(fx->p);
    }
    fx->p = first;
}

/* Restored tickets keep the rows their openings were counted on in Redis,
 * past this instance's caps: with max_tenants 1 (taken by initech) and
 * max_dims_per_tenant 1, acme's "_other _other" and "phone a" are restored
 * as they were, and closing tk-1 takes the ticket off phone:a (before,
 * acme was refused, or phone:a folded into _other:_other, so phone:a kept
 * the ticket open for good and _other:_other went negative). */
static void test_restore_keeps_its_rows_past_the_caps(void **state)
{
    struct fx *fx = *state;
    static const struct live_want down[] = {
        {"phone", "a", -1, 0, 0},    {"phone", "_all", -1, 0, 0},
        {"_all", "a", -1, 0, 0},     {"_all", "_all", -1, 0, 0},
    };
    uint64_t th = dims_tenant_key("acme");
    struct partition *part;
    char v[128];

    fx->cfg.max_tenants = 1;
    fx->cfg.max_dims_per_tenant = 1;
    fx_start(fx, false);
    pipeline_set_persist(fx->p, true);
    expect_put(fx, PART0, "initech", NULL,
               &(struct msg){"survey.csat", NULL, 0, "chat", "a", "\"score\":5"},
               NOW, PIPE_ACCEPTED);
    part = pipeline_partition(fx->p, PART0);
    assert_non_null(part);
    snprintf(v, sizeof(v), "%lld t 0 acme _other _other", (long long)T0);
    assert_int_equal(pipeline_partition_restore(
                         fx->p, part, corr_key(CORR_TICKET, th, "tk-2"), v),
                     0);
    snprintf(v, sizeof(v), "%lld t 0 acme phone a", (long long)T0);
    assert_int_equal(pipeline_partition_restore(
                         fx->p, part, corr_key(CORR_TICKET, th, "tk-1"), v),
                     0);
    pipeline_partition_restored(fx->p, part, 2);
    accept(fx, &(struct msg){"ticket.closed", "tk-1", MIN, "phone", "a", NULL});
    expect_live(flush(fx, NOW), "tk-1 closed", down, N_OF(down));
    flush_done(fx, true);
}

/* Any number of open records replayed from logs: key and whether it waits. */
struct big_model {
    uint64_t *key;
    bool *waiting;
    size_t n, cap;
};

static size_t big_find(const struct big_model *m, uint64_t key)
{
    size_t i = 0;

    while (i < m->n && m->key[i] != key) {
        i++;
    }
    return i;
}

/* Applies a log (a snapshot first empties the model). Returns the number of
 * lines; fails if one log names a record twice outside a close-and-reopen. */
static size_t big_apply(struct big_model *m, const struct corr_log *l)
{
    size_t lines = 0, first_upsert = 0;
    uint64_t *seen = calloc(count_lines(l) + 1, sizeof(*seen));

    assert_non_null(seen);
    if (l->reset) {
        m->n = 0;
    }
    for (const char *line = l->text, *end = line + l->len; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        uint64_t key = strtoull(line, NULL, 16);
        size_t i = big_find(m, key);
        assert_non_null(nl);
        if (nl - line == 16) { /* closed: before every upsert of the log */
            assert_int_equal(first_upsert, 0);
            assert_true(i < m->n);
            m->key[i] = m->key[--m->n];
            m->waiting[i] = m->waiting[m->n];
        } else {
            long long start;
            char kind;
            int waiting;
            for (size_t k = 0; k < first_upsert; k++) {
                assert_true(seen[k] != key); /* one line per record */
            }
            seen[first_upsert++] = key;
            assert_int_equal(sscanf(line + 17, "%lld %c %d", &start, &kind,
                                    &waiting),
                             3);
            if (i == m->n) {
                if (m->n == m->cap) {
                    m->cap = m->cap ? 2 * m->cap : 1024;
                    m->key = realloc(m->key, m->cap * sizeof(*m->key));
                    m->waiting =
                        realloc(m->waiting, m->cap * sizeof(*m->waiting));
                    assert_true(m->key != NULL && m->waiting != NULL);
                }
                m->key[m->n++] = key;
            }
            m->waiting[i] = waiting != 0;
        }
        lines++;
        line = nl + 1;
    }
    free(seen);
    return lines;
}

/* The open and the waiting records of the model against the pipeline's. */
static void big_check(const struct big_model *m, size_t open, size_t waiting)
{
    size_t w = 0;

    for (size_t i = 0; i < m->n; i++) {
        w += m->waiting[i];
    }
    assert_int_equal(m->n, open);
    assert_int_equal(w, waiting);
}

/* Ticket sk's event of type (ticket.opened, .replied or .closed) at the
 * next instant; st[k] becomes its state (0 closed, 1 waiting, 2 replied). */
static void ticket_event(struct fx *fx, char *st, int k, int64_t *at,
                         const char *type)
{
    char id[32];

    snprintf(id, sizeof(id), "s%d", k);
    accept(fx, &(struct msg){type, id, ++*at, "email", "a", NULL});
    st[k] = strcmp(type, "ticket.closed") == 0    ? 0
            : strcmp(type, "ticket.replied") == 0 ? 2
                                                   : 1;
}

/* Replies to ticket sk (waiting) alone and flushes: the log then holds
 * open records, waiting of them waiting. */
static void reply_one(struct fx *fx, struct big_model *m, char *st, int k,
                      int64_t *at, size_t open, size_t waiting)
{
    const struct flush_batch *b;

    assert_int_equal(st[k], 1);
    ticket_event(fx, st, k, at, "ticket.replied");
    b = flush(fx, NOW);
    assert_int_equal(b->n_corr, 1);
    assert_int_equal(big_apply(m, &b->corr[0]), 1);
    flush_done(fx, true);
    big_check(m, open, waiting);
}

/* More records change between two flushes than a partition lists
 * (PIPELINE_DIRTY_LIST_MAX): the flush finds them by their dirty bits, and
 * the log still replays to exactly the open records, waiting where they
 * wait, one line per record - through a flush that is not applied and is
 * taken again, a flush with nothing to write, and a snapshot. */
static void test_persist_log_past_the_dirty_list(void **state)
{
    struct fx *fx = *state;
    enum { N = 2 * PIPELINE_DIRTY_LIST_MAX + 100 };
    static char st[6 * N]; /* 0 closed, 1 waiting, 2 replied to */
    struct big_model m = {0};
    const struct flush_batch *b;
    size_t open = 0, waiting = 0, lines;
    int64_t at = 0;
    int last;

    fx_start(fx, false);
    pipeline_set_persist(fx->p, true);
    for (int k = 0; k < N; k++) { /* opened: N records to write */
        ticket_event(fx, st, k, &at, "ticket.opened");
    }
    b = flush(fx, NOW);
    assert_int_equal(b->n_corr, 1);
    assert_false(b->corr[0].reset);
    assert_int_equal(big_apply(&m, &b->corr[0]), N);
    flush_done(fx, true);
    big_check(&m, N, N);

    /* Every other one replied to, every fifth closed, N/2 more opened. */
    for (int k = 0; k < N; k++) {
        if (k % 5 == 0) {
            ticket_event(fx, st, k, &at, "ticket.closed");
        } else if (k % 2 == 0) {
            ticket_event(fx, st, k, &at, "ticket.replied");
        }
    }
    for (int k = N; k < N + N / 2; k++) {
        ticket_event(fx, st, k, &at, "ticket.opened");
    }
    for (int k = 0; k < N + N / 2; k++) {
        open += st[k] != 0;
        waiting += st[k] == 1;
    }
    b = flush(fx, NOW);
    assert_int_equal(b->n_corr, 1);
    lines = count_lines(&b->corr[0]);
    flush_done(fx, false); /* not applied: the next one writes it all */
    b = flush(fx, NOW);
    assert_int_equal(b->n_corr, 1);
    assert_false(b->corr[0].reset);
    assert_int_equal(big_apply(&m, &b->corr[0]), lines);
    flush_done(fx, true);
    big_check(&m, open, waiting);

    b = flush(fx, NOW); /* nothing changed: nothing to write */
    assert_int_equal(b->n_corr, 0);
    flush_done(fx, true);
    /* A change after a flush that scanned is listed and written again. */
    reply_one(fx, &m, st, 1, &at, open, --waiting);

    /* Batches that close every open record and open as many new ones grow
     * the log until it is rewritten as a snapshot. */
    for (int round = 0, next = N + N / 2;; round++) {
        int end = next;
        assert_true(round < 4);
        for (int k = 0; k < end; k++) {
            if (st[k] == 0) {
                continue;
            }
            ticket_event(fx, st, k, &at, "ticket.closed");
            assert_true(next < (int)sizeof(st));
            ticket_event(fx, st, next++, &at, "ticket.opened");
        }
        b = flush(fx, NOW);
        assert_int_equal(b->n_corr, 1);
        big_apply(&m, &b->corr[0]);
        flush_done(fx, true);
        big_check(&m, open, open); /* every open one is new: waiting */
        if (b->corr[0].reset) {
            break;
        }
    }
    b = flush(fx, NOW); /* the snapshot took every change */
    assert_int_equal(b->n_corr, 0);
    flush_done(fx, true);
    /* ... as after a snapshot: the last record opened (not listed). */
    for (last = 6 * N - 1; st[last] == 0; last--) {
    }
    reply_one(fx, &m, st, last, &at, open, open - 1);
    free(m.key);
    free(m.waiting);
}

/* The log is rewritten as a snapshot of the open records once it would pass
 * twice their number plus a slack of 4,096 lines; the snapshot's lines
 * restore the same records into a new pipeline. */
static void test_persist_log_is_compacted_into_a_snapshot(void **state)
{
    struct fx *fx = *state;
    const struct flush_batch *b;
    struct pipeline *q;
    struct partition *qp;
    char id[32], err[256];
    size_t logged = 0, open = 0;
    int batches = 0;

    fx_start(fx, false);
    pipeline_set_persist(fx->p, true);
    /* Each batch opens 1,000 tickets and closes the 990 of the one before:
     * the log grows by ~2,000 lines a batch, the open set by 10. */
    for (;; batches++) {
        for (int k = 0; k < 1000; k++) {
            snprintf(id, sizeof(id), "b%d-%d", batches, k);
            accept(fx, &(struct msg){"ticket.opened", id, batches * 10000 + k,
                                     "email", "a", NULL});
            if (batches > 0 && k >= 10) {
                snprintf(id, sizeof(id), "b%d-%d", batches - 1, k);
                accept(fx, &(struct msg){"ticket.closed", id,
                                         batches * 10000 + k, "email", "a",
                                         NULL});
            }
        }
        open = (size_t)pipeline_stats(fx->p)->open_correlations;
        b = flush(fx, NOW);
        assert_int_equal(b->n_corr, 1);
        if (b->corr[0].reset) {
            break;
        }
        logged += count_lines(&b->corr[0]);
        assert_true(logged <= 2 * open + 4096);
        flush_done(fx, true);
        assert_true(batches < 100);
    }
    /* the snapshot came as soon as the log would have passed the bound */
    assert_true(logged + 1990 > 2 * open + 4096);
    assert_int_equal(count_lines(&b->corr[0]), open);

    /* Its lines restore the same open records. */
    q = pipeline_new(&fx->cfg, false, err, sizeof(err));
    assert_non_null(q);
    qp = pipeline_partition(q, "in/0");
    assert_non_null(qp);
    for (const char *l = b->corr[0].text, *end = l + b->corr[0].len; l < end;) {
        const char *nl = memchr(l, '\n', (size_t)(end - l));
        char value[128];
        assert_non_null(nl);
        assert_true(nl - l > 17 && (size_t)(nl - l) < sizeof(value) + 17);
        snprintf(value, sizeof(value), "%.*s", (int)(nl - l - 17), l + 17);
        assert_int_equal(pipeline_partition_restore(
                             q, qp, strtoull(l, NULL, 16), value),
                         0);
        l = nl + 1;
    }
    assert_int_equal(pipeline_stats(q)->open_correlations, open);
    pipeline_destroy(q);
    flush_done(fx, true);
}

static void test_live_every_close_lowers_the_gauge(void **state)
{
    struct fx *fx = *state;
    static const struct live_want up[] = {
        {"phone", "a", 0, 0, 2}, {"phone", "_all", 0, 0, 2},
        {"_all", "a", 0, 0, 2},  {"_all", "_all", 0, 0, 2},
    };
    static const struct live_want down[] = {
        {"phone", "a", 0, 0, -2}, {"phone", "_all", 0, 0, -2},
        {"_all", "a", 0, 0, -2},  {"_all", "_all", 0, 0, -2},
    };

    fx_start(fx, false);
    /* opened and closed within one flush: no net change */
    accept(fx, &(struct msg){"call.queued", "k0", 0, "phone", "a", NULL});
    accept(fx, &(struct msg){"call.answered", "k0", 1000, "phone", "a", NULL});
    accept(fx, &(struct msg){"call.queued", "k1", 2000, "phone", "a", NULL});
    accept(fx, &(struct msg){"call.queued", "k2", 3000, "phone", "a", NULL});
    expect_live(flush(fx, NOW), "up", up, N_OF(up));
    flush_done(fx, true);
    accept(fx, &(struct msg){"call.ended", "k1", 9000, "phone", "a", NULL});
    accept(fx, &(struct msg){"call.abandoned", "k2", 9000, "phone", "a", NULL});
    /* repeated ends change nothing more */
    accept(fx, &(struct msg){"call.ended", "k2", 9500, "phone", "a", NULL});
    expect_live(flush(fx, NOW), "down", down, N_OF(down));
    flush_done(fx, true);
}

/* ---- oldest waits ---- */

static void test_oldest_wait_start_per_row_then_removed_when_answered(
    void **state)
{
    struct fx *fx = *state;
    static const struct oldest_want first[] = {
        {PART0, "chat", "a", 5000},
        {PART0, "chat", "_all", 5000},
        {PART0, "_all", "a", 5000},
        {PART0, "_all", "_all", 5000},
    };
    static const struct oldest_want older[] = {
        {PART0, "chat", "a", 1000},    {PART0, "chat", "_all", 1000},
        {PART0, "_all", "a", 1000},    {PART0, "_all", "_all", 1000},
        {PART0, "chat", "b", 3000},    {PART0, "_all", "b", 3000},
    };
    /* c2 (1000) answered: c1 (5000) on chat:a, c3 (3000) on chat:b */
    static const struct oldest_want after_c2[] = {
        {PART0, "chat", "a", 5000},
        {PART0, "chat", "_all", 3000},
        {PART0, "_all", "a", 5000},
        {PART0, "_all", "_all", 3000},
    };
    static const struct oldest_want gone[] = {
        {PART0, "chat", "a", GONE}, {PART0, "chat", "_all", GONE},
        {PART0, "_all", "a", GONE}, {PART0, "_all", "_all", GONE},
        {PART0, "chat", "b", GONE}, {PART0, "_all", "b", GONE},
    };

    fx_start(fx, false);
    accept(fx, &(struct msg){"dm.received", "c1", 5000, "chat", "a", NULL});
    expect_oldest(flush(fx, NOW), "first", first, N_OF(first));
    flush_done(fx, true);

    expect_oldest(flush(fx, NOW), "unchanged", NULL, 0);
    flush_done(fx, true);

    accept(fx, &(struct msg){"dm.received", "c2", 1000, "chat", "a", NULL});
    accept(fx, &(struct msg){"dm.received", "c3", 3000, "chat", "b", NULL});
    expect_oldest(flush(fx, NOW), "older", older, N_OF(older));
    flush_done(fx, true);

    accept(fx, &(struct msg){"dm.replied", "c2", 10000, "chat", "a", NULL});
    expect_oldest(flush(fx, NOW), "after c2", after_c2, N_OF(after_c2));
    flush_done(fx, true);

    accept(fx, &(struct msg){"dm.replied", "c1", 11000, "chat", "a", NULL});
    accept(fx, &(struct msg){"dm.replied", "c3", 12000, "chat", "b", NULL});
    expect_oldest(flush(fx, NOW), "gone", gone, N_OF(gone));
    flush_done(fx, true);

    expect_oldest(flush(fx, NOW), "idle", NULL, 0);
    flush_done(fx, true);
}

static void test_oldest_is_per_partition_and_counts_only_waits(void **state)
{
    struct fx *fx = *state;
    static const struct oldest_want opened[] = {
        {PART1, "email", "a", 0},  {PART1, "email", "_all", 0},
        {PART1, "_all", "a", 0},   {PART1, "_all", "_all", 0},
        {PART0, "phone", "a", 2000}, {PART0, "phone", "_all", 2000},
        {PART0, "_all", "a", 2000},  {PART0, "_all", "_all", 2000},
    };
    /* the first reply ends the ticket's wait although it stays open */
    static const struct oldest_want replied[] = {
        {PART1, "email", "a", GONE},
        {PART1, "email", "_all", GONE},
        {PART1, "_all", "a", GONE},
        {PART1, "_all", "_all", GONE},
    };

    fx_start(fx, false);
    expect_put(fx, PART1, "acme", NULL,
               &(struct msg){"ticket.opened", "t1", 0, "email", "a", NULL},
               NOW, PIPE_ACCEPTED);
    /* a reopened ticket is open but not waiting: no oldest entry */
    expect_put(fx, PART1, "acme", NULL,
               &(struct msg){"ticket.reopened", "t2", 1000, "web", "z", NULL},
               NOW, PIPE_ACCEPTED);
    accept(fx, &(struct msg){"call.queued", "k1", 2000, "phone", "a", NULL});
    expect_oldest(flush(fx, NOW), "opened", opened, N_OF(opened));
    flush_done(fx, true);

    expect_put(fx, PART1, "acme", NULL,
               &(struct msg){"ticket.replied", "t1", 9000, "email", "a", NULL},
               NOW, PIPE_ACCEPTED);
    expect_oldest(flush(fx, NOW), "replied", replied, N_OF(replied));
    expect_live(fx->b, "replied", NULL, 0); /* the ticket is still open */
    flush_done(fx, true);
}

/* ---- duplicates ---- */

static void test_duplicate_same_id_tenant_partition_counted_once(void **state)
{
    struct fx *fx = *state;
    const struct msg rcv = {"dm.received", "c1", 0, "chat", "a", NULL};
    const struct msg rep = {"dm.replied", "c1", 10000, "chat", "a", NULL};
    const struct flush_batch *b;

    fx_start(fx, false);
    expect_put(fx, PART0, "acme", "id-1", &rcv, NOW, PIPE_ACCEPTED);
    expect_put(fx, PART0, "acme", "id-1", &rcv, NOW, PIPE_DUPLICATE);
    /* the id is per partition and per tenant */
    expect_put(fx, PART1, "acme", "id-1", &rcv, NOW, PIPE_ACCEPTED);
    expect_put(fx, PART0, "globex", "id-1", &rcv, NOW, PIPE_ACCEPTED);
    /* a duplicate of an end event is not applied: no second sample, and no
     * orphan either */
    expect_put(fx, PART0, "acme", "id-2", &rep, NOW, PIPE_ACCEPTED);
    expect_put(fx, PART0, "acme", "id-2", &rep, NOW, PIPE_DUPLICATE);
    /* the same id with other content is still a duplicate */
    expect_put(fx, PART0, "acme", "id-2",
               &(struct msg){"survey.csat", NULL, 0, "chat", "a",
                             "\"score\":5"},
               NOW, PIPE_DUPLICATE);

    assert_int_equal(pipeline_stats(fx->p)->duplicates, 3);
    assert_int_equal(pipeline_stats(fx->p)->messages, 7);
    assert_int_equal(pipeline_stats(fx->p)->accepted[EV_DM_RECEIVED], 3);
    assert_int_equal(pipeline_stats(fx->p)->accepted[EV_DM_REPLIED], 1);
    assert_int_equal(pipeline_stats(fx->p)->orphans[EV_DM_REPLIED], 0);
    b = flush(fx, NOW);
    /* acme chat:a: received on two partitions, one reply */
    expect_cell(b, "dup",
                &(struct row_want){NULL, "chat", "a", 0,
                                   {EVENTS(3), WAIT(1, 10000, 10000),
                                    SL(1, 1)}});
    expect_cell(b, "dup",
                &(struct row_want){"globex", "chat", "a", 0, {EVENTS(1)}});
    flush_done(fx, true);
}

static void test_duplicate_horizon_follows_run_clock(void **state)
{
    struct fx *fx = *state;
    const struct msg m = {"survey.csat", NULL, 0, "chat", "a", "\"score\":4"};
    const int64_t h = 15 * MIN; /* aggregation.dedupe_horizon default */

    fx_start(fx, false);
    expect_put(fx, PART0, "acme", "h-1", &m, NOW, PIPE_ACCEPTED);
    expect_put(fx, PART0, "acme", "h-1", &m, NOW + h - 1, PIPE_DUPLICATE);
    expect_put(fx, PART0, "acme", "h-1", &m, NOW + h + 1, PIPE_ACCEPTED);
    expect_put(fx, PART0, "acme", "h-1", &m, NOW + h + 2, PIPE_DUPLICATE);
    assert_int_equal(pipeline_stats(fx->p)->duplicates, 2);
    expect_cell(flush(fx, NOW + h + 2), "horizon",
                &(struct row_want){NULL, "chat", "a", 0,
                                   {EVENTS(2), [F_CSAT_N] = 2,
                                    [F_CSAT_GOOD] = 2, [F_CSAT_SUM] = 8}});
    flush_done(fx, true);
}

static void test_duplicate_horizon_follows_event_clock_in_replay(void **state)
{
    struct fx *fx = *state;
    const struct msg m = {"survey.ces", NULL, 0, "chat", "a", "\"score\":2"};

    fx_start(fx, true);
    expect_put(fx, PART0, "acme", "r-1", &m, 0, PIPE_ACCEPTED);
    expect_put(fx, PART0, "acme", "r-1", &m, 0, PIPE_DUPLICATE);
    /* another event moves the event clock 16 minutes on */
    expect_put(fx, PART0, "acme", "r-2",
               &(struct msg){"survey.ces", NULL, 16 * MIN, "chat", "a",
                             "\"score\":3"},
               0, PIPE_ACCEPTED);
    expect_put(fx, PART0, "acme", "r-1", &m, 0, PIPE_ACCEPTED);
    assert_int_equal(pipeline_stats(fx->p)->duplicates, 1);
    flush_done(fx, false); /* no batch prepared: a no-op */
}

/* ---- future ---- */

static void test_future_run_rejects_beyond_skew_accepts_within(void **state)
{
    struct fx *fx = *state;
    struct event_error err;
    const int64_t skew = 5 * MIN; /* aggregation.future_skew default */
    const int64_t now_off = NOW - T0;
    const struct flush_batch *b;

    fx_start(fx, false);
    assert_int_equal(
        put(fx, PART0, "acme", NULL,
            &(struct msg){"dm.received", "c1", now_off + skew + 1, "chat", "a",
                          NULL},
            NOW, &err),
        PIPE_REJECTED);
    assert_int_equal(err.reason, REJ_FUTURE);
    assert_string_equal(err.text, "occurred_at in the future");
    assert_string_equal(err.field, "occurred_at");
    assert_int_equal(pipeline_stats(fx->p)->rejected[REJ_FUTURE], 1);

    /* exactly at the skew: accepted, in its own (future) bucket */
    accept(fx, &(struct msg){"dm.received", "c2", now_off + skew, "chat", "a",
                             NULL});
    /* the rejected message opened nothing */
    accept(fx, &(struct msg){"dm.replied", "c1", now_off, "chat", "a", NULL});
    b = flush(fx, NOW);
    expect_cell(b, "future",
                &(struct row_want){NULL, "chat", "a", now_off + skew,
                                   {EVENTS(1)}});
    expect_cell(b, "future",
                &(struct row_want){NULL, "chat", "a", now_off, {EVENTS(1)}});
    assert_int_equal(count_leaf_cells(b), 2);
    assert_int_equal(pipeline_stats(fx->p)->orphans[EV_DM_REPLIED], 1);
    flush_done(fx, true);
    assert_int_equal(pipeline_clock(fx->p, NOW), NOW);
}

static void test_future_replay_never_rejects(void **state)
{
    struct fx *fx = *state;

    fx_start(fx, true);
    /* now_ms is ignored: the clock is the newest occurred_at */
    expect_put(fx, PART0, "acme", NULL,
               &(struct msg){"dm.received", "c1", 0, "chat", "a", NULL}, 0,
               PIPE_ACCEPTED);
    assert_int_equal(pipeline_clock(fx->p, 0), T0);
    expect_put(fx, PART0, "acme", NULL,
               &(struct msg){"dm.replied", "c1", 24 * HOUR, "chat", "a", NULL},
               T0, PIPE_ACCEPTED);
    assert_int_equal(pipeline_clock(fx->p, 0), T0 + 24 * HOUR);
    assert_int_equal(pipeline_stats(fx->p)->rejected[REJ_FUTURE], 0);
    expect_cell(flush(fx, 0), "replay",
                &(struct row_want){NULL, "chat", "a", 24 * HOUR,
                                   {EVENTS(1), WAIT(1, 24 * HOUR, 24 * HOUR),
                                    SL(1, 0)}});
    assert_int_equal(fx->b->clock_ms, T0 + 24 * HOUR);
    flush_done(fx, true);
}

/* ---- late ---- */

/* Clock = T0 + 48h + 1m + 1ms: the bucket [T0, T0+1m) ended 48h + 1 ms ago
 * (late); the bucket [T0+1m, T0+2m) ends within the retention. */
static void test_late_dropped_counted_per_tenant_and_not_applied(void **state)
{
    struct fx *fx = *state;
    const int64_t now = T0 + 48 * HOUR + MIN + 1;
    const struct flush_batch *b;
    const struct msg late_survey = {"survey.csat", NULL, MIN - 1, "chat", "a",
                                    "\"score\":5"};
    const struct msg late_open = {"dm.received", "c1", 0, "chat", "a", NULL};
    const struct msg kept = {"survey.csat", NULL, MIN, "chat", "a",
                             "\"score\":5"};
    const struct msg reply = {"dm.replied", "c1", MIN, "chat", "a", NULL};

    fx_start(fx, false);
    expect_put(fx, PART0, "acme", NULL, &late_survey, now, PIPE_LATE);
    expect_put(fx, PART0, "acme", NULL, &late_open, now, PIPE_LATE);
    expect_put(fx, PART0, "globex", NULL, &late_survey, now, PIPE_LATE);
    /* inside the retention but older than every window: applied */
    expect_put(fx, PART0, "acme", NULL, &kept, now, PIPE_ACCEPTED);
    /* the late dm.received opened no wait */
    expect_put(fx, PART0, "acme", NULL, &reply, now, PIPE_ACCEPTED);
    expect_put(fx, PART0, "initech", NULL, &kept, now, PIPE_ACCEPTED);

    assert_int_equal(pipeline_stats(fx->p)->late_dropped, 3);
    assert_int_equal(pipeline_late_dropped(
                         fx->p, tenant_index(pipeline_dims(fx->p), "acme")),
                     2);
    assert_int_equal(pipeline_late_dropped(
                         fx->p, tenant_index(pipeline_dims(fx->p), "globex")),
                     1);
    assert_int_equal(pipeline_late_dropped(
                         fx->p, tenant_index(pipeline_dims(fx->p), "initech")),
                     0);
    assert_int_equal(pipeline_stats(fx->p)->accepted[EV_SURVEY_CSAT], 2);
    assert_int_equal(pipeline_stats(fx->p)->accepted[EV_DM_RECEIVED], 0);
    assert_int_equal(pipeline_stats(fx->p)->orphans[EV_DM_REPLIED], 1);

    b = flush(fx, now);
    expect_cell(b, "late",
                &(struct row_want){NULL, "chat", "a", MIN,
                                   {EVENTS(2), [F_CSAT_N] = 1,
                                    [F_CSAT_GOOD] = 1, [F_CSAT_SUM] = 5}});
    expect_cell(b, "late",
                &(struct row_want){"initech", "chat", "a", MIN,
                                   {EVENTS(1), [F_CSAT_N] = 1,
                                    [F_CSAT_GOOD] = 1, [F_CSAT_SUM] = 5}});
    assert_int_equal(count_leaf_cells(b), 2);
    for (size_t i = 0; i < agg_count(b->cells); i++) {
        assert_true(agg_at(b->cells, i)->bucket_ms == T0 + MIN);
    }
    expect_live(b, "late", NULL, 0);
    flush_done(fx, true);
}

/* Late means ended *more than* the retention before the clock: the bucket
 * [T0, T0+1m) that ended exactly 48h ago still takes events; 1 ms later it
 * does not. */
static void test_late_is_more_than_the_retention_not_exactly_it(void **state)
{
    struct fx *fx = *state;
    const int64_t edge = T0 + 48 * HOUR + MIN;
    const struct msg m = {"survey.csat", NULL, 0, "chat", "a", "\"score\":5"};

    fx_start(fx, false);
    expect_put(fx, PART0, "acme", NULL, &m, edge, PIPE_ACCEPTED);
    expect_put(fx, PART0, "acme", NULL, &m, edge + 1, PIPE_LATE);
    assert_int_equal(pipeline_stats(fx->p)->late_dropped, 1);
}

static void test_late_in_replay_is_measured_from_the_event_clock(
    void **state)
{
    struct fx *fx = *state;
    const struct msg m = {"survey.ces", NULL, 0, "chat", "a", "\"score\":1"};

    fx_start(fx, true);
    expect_put(fx, PART0, "acme", NULL,
               &(struct msg){"survey.ces", NULL, 72 * HOUR, "chat", "a",
                             "\"score\":1"},
               0, PIPE_ACCEPTED);
    expect_put(fx, PART0, "acme", NULL, &m, 0, PIPE_LATE);
    expect_put(fx, PART0, "acme", NULL,
               &(struct msg){"survey.ces", NULL, 72 * HOUR - 47 * HOUR, "chat",
                             "a", "\"score\":1"},
               0, PIPE_ACCEPTED);
    assert_int_equal(pipeline_stats(fx->p)->late_dropped, 1);
    assert_int_equal(pipeline_late_dropped(fx->p, 0), 1);
}

/* ---- caps ---- */

static void test_tenant_limit_rejects_further_tenants(void **state)
{
    struct fx *fx = *state;
    struct event_error err;
    const struct msg m = {"survey.nps", NULL, 0, "chat", "a", "\"score\":9"};
    const struct flush_batch *b;

    fx->cfg.max_tenants = 2;
    fx_start(fx, false);
    expect_put(fx, PART0, "acme", NULL, &m, NOW, PIPE_ACCEPTED);
    expect_put(fx, PART0, "globex", NULL, &m, NOW, PIPE_ACCEPTED);
    assert_int_equal(put(fx, PART0, "initech", NULL, &m, NOW, &err),
                     PIPE_REJECTED);
    assert_int_equal(err.reason, REJ_TENANT_LIMIT);
    assert_string_equal(event_reject_name(err.reason), "tenant_limit");
    assert_int_equal(pipeline_stats(fx->p)->rejected[REJ_TENANT_LIMIT], 1);
    /* known tenants carry on */
    expect_put(fx, PART0, "acme", NULL, &m, NOW, PIPE_ACCEPTED);
    assert_int_equal(dims_tenant_count(pipeline_dims(fx->p)), 2);
    assert_int_equal(tenant_index(pipeline_dims(fx->p), "initech"), -1);
    b = flush(fx, NOW);
    assert_int_equal(count_leaf_cells(b), 2);
    expect_cell(b, "tenants",
                &(struct row_want){NULL, "chat", "a", 0,
                                   {EVENTS(2), [F_NPS_N] = 2,
                                    [F_PROMOTERS] = 2}});
    flush_done(fx, true);
}

#define OTHER WAIT(1, 2000, 2000), SL(1, 1), [F_CES_N] = 1, [F_CES_SUM] = 3

static void test_dims_beyond_cap_fold_into_other(void **state)
{
    struct fx *fx = *state;
    const struct flush_batch *b;
    static const struct row_want want[] = {
        {NULL, "chat", "a", 0, {EVENTS(2)}},
        {NULL, "chat", "b", 0, {EVENTS(1)}},
        /* c3 received and replied on chat:c, the ces survey on sms:x */
        {NULL, "_other", "_other", 0, {EVENTS(3), OTHER}},
        {NULL, "chat", "_all", 0, {EVENTS(3)}},
        {NULL, "_other", "_all", 0, {EVENTS(3), OTHER}},
        {NULL, "_all", "_other", 0, {EVENTS(3), OTHER}},
        {NULL, "_all", "_all", 0, {EVENTS(6), OTHER}},
    };
    static const struct live_want live[] = {
        {"chat", "a", 0, 2, 0},          {"chat", "b", 0, 1, 0},
        {"chat", "_all", 0, 3, 0},       {"_all", "a", 0, 2, 0},
        {"_all", "b", 0, 1, 0},          {"_all", "_all", 0, 3, 0},
    };

    fx->cfg.max_dims_per_tenant = 2;
    fx_start(fx, false);
    accept(fx, &(struct msg){"dm.received", "c1", 0, "chat", "a", NULL});
    accept(fx, &(struct msg){"dm.received", "c2", 0, "chat", "b", NULL});
    accept(fx, &(struct msg){"dm.received", "c3", 0, "chat", "c", NULL});
    assert_int_equal(pipeline_stats(fx->p)->folded, 1);
    accept(fx, &(struct msg){"dm.received", "c4", 0, "chat", "a", NULL});
    assert_int_equal(pipeline_stats(fx->p)->folded, 1);
    accept(fx, &(struct msg){"dm.replied", "c3", 2000, "chat", "c", NULL});
    accept(fx, &(struct msg){"survey.ces", NULL, 0, "sms", "x", "\"score\":3"});
    /* events folded: c3 received, c3 replied, the sms survey */
    assert_int_equal(pipeline_stats(fx->p)->folded, 3);
    b = flush(fx, NOW);
    for (size_t i = 0; i < N_OF(want); i++) {
        expect_cell(b, "fold", &want[i]);
    }
    expect_live(b, "fold", live, N_OF(live));
    flush_done(fx, true);
}

/* Regression: a folded event's wait is judged against the
 * target of the `_other` row (the default, 15m) rather than its own
 * channel's. events.md: the sample belongs to "the dimensions (tenant,
 * channel, queue) of the event that ends it", and sl uses "the target of the
 * channel the sample belongs to" -- phone, 20s. A 60s phone wait must miss. */
static void test_folded_wait_judged_by_its_own_channel_target(
    void **state)
{
    struct fx *fx = *state;
    const struct flush_batch *b;

    fx->cfg.max_dims_per_tenant = 1;
    fx_start(fx, false);
    accept(fx, &(struct msg){"dm.received", "c1", 0, "chat", "a", NULL});
    accept(fx, &(struct msg){"call.queued", "k1", 0, "phone", "q", NULL});
    accept(fx, &(struct msg){"call.answered", "k1", 60000, "phone", "q", NULL});
    assert_int_equal(pipeline_stats(fx->p)->folded, 2);
    b = flush(fx, NOW);
    expect_cell(b, "folded sl",
                &(struct row_want){NULL, "_other", "_other", 60000,
                                   {EVENTS(1), [F_ANSWERED] = 1,
                                    WAIT(1, 60000, 60000), SL(1, 0)}});
    flush_done(fx, true);
}

static void test_open_correlation_cap_evicts_oldest_first(void **state)
{
    struct fx *fx = *state;
    static const struct live_want live[] = {
        {"chat", "a", 0, 3, 0},
        {"chat", "_all", 0, 3, 0},
        {"_all", "a", 0, 3, 0},
        {"_all", "_all", 0, 3, 0},
    };
    static const struct oldest_want oldest[] = {
        {PART0, "chat", "a", 3000},
        {PART0, "chat", "_all", 3000},
        {PART0, "_all", "a", 3000},
        {PART0, "_all", "_all", 3000},
    };
    static const struct live_want after[] = {
        {"chat", "a", 0, -1, 0},
        {"chat", "_all", 0, -1, 0},
        {"_all", "a", 0, -1, 0},
        {"_all", "_all", 0, -1, 0},
    };
    const struct flush_batch *b;

    fx->cfg.max_open_correlations = 3;
    fx_start(fx, false);
    for (int i = 1; i <= 5; i++) {
        char id[8];
        snprintf(id, sizeof(id), "c%d", i);
        accept(fx, &(struct msg){"dm.received", id, i * 1000, "chat", "a",
                                 NULL});
    }
    assert_int_equal(pipeline_stats(fx->p)->evicted, 2);
    assert_int_equal(pipeline_stats(fx->p)->open_correlations, 3);
    b = flush(fx, NOW);
    expect_live(b, "evicted", live, N_OF(live));
    expect_oldest(b, "evicted", oldest, N_OF(oldest));
    flush_done(fx, true);

    /* c1 and c2 were evicted: their replies are orphans; c3 is still there */
    accept(fx, &(struct msg){"dm.replied", "c1", 10000, "chat", "a", NULL});
    accept(fx, &(struct msg){"dm.replied", "c2", 10000, "chat", "a", NULL});
    accept(fx, &(struct msg){"dm.replied", "c3", 10000, "chat", "a", NULL});
    assert_int_equal(pipeline_stats(fx->p)->orphans[EV_DM_REPLIED], 2);
    assert_int_equal(pipeline_stats(fx->p)->open_correlations, 2);
    b = flush(fx, NOW);
    expect_cell(b, "evicted",
                &(struct row_want){NULL, "chat", "a", 0,
                                   {EVENTS(3), WAIT(1, 7000, 7000), SL(1, 1)}});
    expect_live(b, "after", after, N_OF(after));
    flush_done(fx, true);
}

/* Eviction order is opening order across kinds (tickets, calls, DMs). */
static void test_open_correlation_cap_counts_every_kind(void **state)
{
    struct fx *fx = *state;
    static const struct live_want live[] = {
        {"phone", "a", 0, 0, 1},  {"phone", "_all", 0, 0, 1},
        {"chat", "a", 0, 2, 0},   {"chat", "_all", 0, 2, 0},
        {"_all", "a", 0, 2, 1},   {"_all", "_all", 0, 2, 1},
    };

    fx->cfg.max_open_correlations = 3;
    fx_start(fx, false);
    accept(fx, &(struct msg){"ticket.opened", "t1", 0, "email", "a", NULL});
    accept(fx, &(struct msg){"call.queued", "k1", 1000, "phone", "a", NULL});
    accept(fx, &(struct msg){"dm.received", "c1", 2000, "chat", "a", NULL});
    accept(fx, &(struct msg){"dm.received", "c2", 3000, "chat", "a", NULL});
    assert_int_equal(pipeline_stats(fx->p)->evicted, 1);
    /* the ticket went: opened and evicted nets to no open ticket */
    expect_live(flush(fx, NOW), "kinds", live, N_OF(live));
    flush_done(fx, true);
    accept(fx, &(struct msg){"ticket.closed", "t1", 9000, "email", "a", NULL});
    assert_int_equal(pipeline_stats(fx->p)->orphans[EV_TICKET_CLOSED], 1);
}

/* Regression: with partitions sharing the cap, opening a wait
 * on a partition that holds nothing else evicts that very wait (the newest
 * of all) instead of the oldest open correlation (config table:
 * "limits.max_open_correlations ... the oldest is evicted"). */
static void test_open_correlation_cap_evicts_oldest_across_partitions(
    void **state)
{
    struct fx *fx = *state;

    fx->cfg.max_open_correlations = 3;
    fx_start(fx, false);
    for (int i = 1; i <= 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "c%d", i);
        accept(fx, &(struct msg){"dm.received", id, i * 1000, "chat", "a",
                                 NULL});
    }
    expect_put(fx, PART1, "acme", NULL,
               &(struct msg){"dm.received", "c4", 4000, "chat", "a", NULL},
               NOW, PIPE_ACCEPTED);
    assert_int_equal(pipeline_stats(fx->p)->evicted, 1);
    /* c4, the newest, must still be waiting: its reply is a 6s sample */
    expect_put(fx, PART1, "acme", NULL,
               &(struct msg){"dm.replied", "c4", 10000, "chat", "a", NULL},
               NOW, PIPE_ACCEPTED);
    assert_int_equal(pipeline_stats(fx->p)->orphans[EV_DM_REPLIED], 0);
    expect_cell(flush(fx, NOW), "cap across partitions",
                &(struct row_want){NULL, "chat", "a", 0,
                                   {EVENTS(5), WAIT(1, 6000, 6000),
                                    SL(1, 1)}});
    flush_done(fx, true);
}

/* A dropped partition's open correlations leave the open count and are
 * counted as handed over (run's summary says where they went). */
static void test_dropped_partition_hands_over_its_open_correlations(
    void **state)
{
    struct fx *fx = *state;

    fx_start(fx, false);
    accept(fx, &(struct msg){"dm.received", "d1", 1000, "chat", "a", NULL});
    accept(fx, &(struct msg){"ticket.opened", "t1", 2000, "email", "a",
                             NULL});
    expect_put(fx, PART1, "acme", NULL,
               &(struct msg){"call.queued", "q1", 3000, "phone", "a", NULL},
               NOW, PIPE_ACCEPTED);
    assert_int_equal(pipeline_stats(fx->p)->open_correlations, 3);
    pipeline_partition_drop(fx->p, pipeline_partition(fx->p, PART0));
    assert_int_equal(pipeline_stats(fx->p)->open_correlations, 1);
    assert_int_equal(pipeline_stats(fx->p)->handed_over, 2);
    pipeline_partition_drop(fx->p, pipeline_partition(fx->p, PART1));
    assert_int_equal(pipeline_stats(fx->p)->open_correlations, 0);
    assert_int_equal(pipeline_stats(fx->p)->handed_over, 3);
}

/* ---- failed flushes ---- */

static void test_failed_flush_keeps_pending_and_counts_once(void **state)
{
    struct fx *fx = *state;
    const struct flush_batch *b;
    static const struct oldest_want oldest[] = {
        {PART0, "chat", "a", 0},
        {PART0, "chat", "_all", 0},
        {PART0, "_all", "a", 0},
        {PART0, "_all", "_all", 0},
    };
    static const struct row_want second[] = {
        {NULL, "chat", "a", 0,
         {EVENTS(3), WAIT(1, 30000, 30000), SL(1, 1), [F_CSAT_N] = 1,
          [F_CSAT_GOOD] = 1, [F_CSAT_SUM] = 5}},
        {NULL, "chat", "b", 0, {EVENTS(1), [F_NPS_N] = 1, [F_PROMOTERS] = 1}},
        {NULL, "chat", "_all", 0,
         {EVENTS(4), WAIT(1, 30000, 30000), SL(1, 1), [F_CSAT_N] = 1,
          [F_CSAT_GOOD] = 1, [F_CSAT_SUM] = 5, [F_NPS_N] = 1,
          [F_PROMOTERS] = 1}},
        {NULL, "_all", "_all", 0,
         {EVENTS(4), WAIT(1, 30000, 30000), SL(1, 1), [F_CSAT_N] = 1,
          [F_CSAT_GOOD] = 1, [F_CSAT_SUM] = 5, [F_NPS_N] = 1,
          [F_PROMOTERS] = 1}},
    };

    fx_start(fx, false);
    accept(fx, &(struct msg){"dm.received", "c1", 0, "chat", "a", NULL});
    accept(fx, &(struct msg){"survey.csat", NULL, 0, "chat", "a",
                             "\"score\":5"});
    b = flush(fx, NOW);
    expect_cell(b, "first",
                &(struct row_want){NULL, "_all", "_all", 0,
                                   {EVENTS(2), [F_CSAT_N] = 1,
                                    [F_CSAT_GOOD] = 1, [F_CSAT_SUM] = 5}});
    expect_oldest(b, "first", oldest, N_OF(oldest));
    flush_done(fx, false);

    /* preparing again without new events gives the same batch */
    b = flush(fx, NOW);
    expect_cell(b, "again",
                &(struct row_want){NULL, "_all", "_all", 0,
                                   {EVENTS(2), [F_CSAT_N] = 1,
                                    [F_CSAT_GOOD] = 1, [F_CSAT_SUM] = 5}});
    expect_oldest(b, "again", oldest, N_OF(oldest));
    flush_done(fx, false);

    accept(fx, &(struct msg){"dm.replied", "c1", 30000, "chat", "a", NULL});
    accept(fx, &(struct msg){"survey.nps", NULL, 0, "chat", "b",
                             "\"score\":10"});
    b = flush(fx, NOW);
    for (size_t i = 0; i < N_OF(second); i++) {
        expect_cell(b, "second", &second[i]);
    }
    /* the wait opened and closed before anything reached Redis */
    expect_live(b, "second", NULL, 0);
    expect_oldest(b, "second", NULL, 0);
    flush_done(fx, true);

    b = flush(fx, NOW);
    assert_int_equal(agg_count(b->cells), 0);
    expect_live(b, "applied", NULL, 0);
    expect_oldest(b, "applied", NULL, 0);
    flush_done(fx, true);
}

static void test_failed_flush_keeps_live_and_oldest_changes(void **state)
{
    struct fx *fx = *state;
    static const struct live_want live[] = {
        {"chat", "a", 0, 2, 0},
        {"chat", "_all", 0, 2, 0},
        {"_all", "a", 0, 2, 0},
        {"_all", "_all", 0, 2, 0},
    };
    static const struct oldest_want oldest[] = {
        {PART0, "chat", "a", 4000},
        {PART0, "chat", "_all", 4000},
        {PART0, "_all", "a", 4000},
        {PART0, "_all", "_all", 4000},
    };

    fx_start(fx, false);
    accept(fx, &(struct msg){"dm.received", "c1", 4000, "chat", "a", NULL});
    flush(fx, NOW);
    flush_done(fx, false);
    accept(fx, &(struct msg){"dm.received", "c2", 8000, "chat", "a", NULL});
    flush(fx, NOW);
    expect_live(fx->b, "retry", live, N_OF(live));
    expect_oldest(fx->b, "retry", oldest, N_OF(oldest));
    flush_done(fx, true);
    flush(fx, NOW);
    expect_live(fx->b, "after", NULL, 0);
    expect_oldest(fx->b, "after", NULL, 0);
    flush_done(fx, true);
}

/* ---- odds and ends ---- */

static void test_invalid_message_rejected_and_counted(void **state)
{
    struct fx *fx = *state;
    struct event_error err;
    struct partition *part;

    fx_start(fx, false);
    part = pipeline_partition(fx->p, PART0);
    assert_ptr_equal(pipeline_partition(fx->p, PART0), part);
    assert_int_equal(pipeline_process(fx->p, part, "{nope", 5, NOW, &err),
                     PIPE_REJECTED);
    assert_int_equal(err.reason, REJ_NOT_JSON);
    assert_int_equal(put(fx, PART0, "acme", NULL,
                         &(struct msg){"survey.nps", NULL, 0, "chat", "a",
                                       "\"score\":11"},
                         NOW, &err),
                     PIPE_REJECTED);
    assert_int_equal(err.reason, REJ_OUT_OF_RANGE);
    assert_int_equal(pipeline_stats(fx->p)->rejected[REJ_NOT_JSON], 1);
    assert_int_equal(pipeline_stats(fx->p)->rejected[REJ_OUT_OF_RANGE], 1);
    assert_int_equal(pipeline_stats(fx->p)->messages, 2);
    accept(fx, &(struct msg){"survey.nps", NULL, 0, "chat", "a",
                             "\"score\":10"});
    assert_int_equal(count_leaf_cells(flush(fx, NOW)), 1);
    flush_done(fx, true);
}

static void test_flush_due_when_pending_cells_reach_the_cap(void **state)
{
    struct fx *fx = *state;

    fx->cfg.max_pending_cells = 3;
    fx_start(fx, false);
    for (int i = 0; i < 3; i++) {
        accept(fx, &(struct msg){"survey.ces", NULL, i * MIN, "chat", "a",
                                 "\"score\":3"});
        /* three cells (three buckets) reach the cap */
        assert_int_equal(pipeline_flush_due(fx->p, NOW), i == 2);
    }
    /* a cell that exists already does not add to the count */
    accept(fx, &(struct msg){"survey.ces", NULL, 0, "chat", "a",
                             "\"score\":3"});
    assert_true(pipeline_flush_due(fx->p, NOW));
    flush(fx, NOW);
    flush_done(fx, false);
    assert_true(pipeline_flush_due(fx->p, NOW)); /* still pending */
    flush(fx, NOW);
    flush_done(fx, true);
    assert_false(pipeline_flush_due(fx->p, NOW));
}

/* Regression: a fresh run-mode pipeline, nothing pending, says
 * a flush is due, because the last-flush clock starts at 0 and NOW - 0 exceeds
 * the retention. pipeline.h: "True when pending state has reached a cap". */
static void test_flush_due_false_on_a_fresh_pipeline(void **state)
{
    struct fx *fx = *state;

    fx_start(fx, false);
    assert_false(pipeline_flush_due(fx->p, NOW));
}

/* Regression: flushing a pipeline whose scratch set never held a cell -- what the
 * engine does on every interval before the first event arrives -- calls
 * qsort(NULL, 0, ...) in agg_sort, which is undefined (qsort's pointer is
 * declared non-null): "agg.c: runtime error: null pointer passed as
 * argument 1". */
static void test_flush_before_any_event_is_defined_behaviour(void **state)
{
    struct fx *fx = *state;
    const struct flush_batch *b;

    fx_start(fx, false);
    b = flush(fx, NOW);
    assert_int_equal(agg_count(b->cells), 0);
    assert_int_equal(b->n_live, 0);
    assert_int_equal(b->n_oldest, 0);
    flush_done(fx, true);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_correlation_scenarios),
        T(test_survey_counters_by_score_band),
        T(test_survey_band_edges),
        T(test_batch_has_leaves_and_rollups_sorted),
        T(test_live_plus_one_at_start_row_minus_one_on_close),
        T(test_live_every_close_lowers_the_gauge),
        T(test_oldest_wait_start_per_row_then_removed_when_answered),
        T(test_restored_wait_answered_before_the_first_flush_is_removed),
        T(test_restore_keeps_its_rows_past_the_caps),
        T(test_oldest_is_per_partition_and_counts_only_waits),
        T(test_duplicate_same_id_tenant_partition_counted_once),
        T(test_duplicate_horizon_follows_run_clock),
        T(test_duplicate_horizon_follows_event_clock_in_replay),
        T(test_future_run_rejects_beyond_skew_accepts_within),
        T(test_future_replay_never_rejects),
        T(test_late_dropped_counted_per_tenant_and_not_applied),
        T(test_late_is_more_than_the_retention_not_exactly_it),
        T(test_late_in_replay_is_measured_from_the_event_clock),
        T(test_tenant_limit_rejects_further_tenants),
        T(test_dims_beyond_cap_fold_into_other),
        T(test_persist_writes_only_what_outlives_a_batch),
        T(test_persist_log_is_compacted_into_a_snapshot),
        T(test_persist_log_replays_to_the_open_records),
        T(test_persist_log_past_the_dirty_list),
        T(test_open_correlation_cap_evicts_oldest_first),
        T(test_open_correlation_cap_counts_every_kind),
        T(test_open_correlation_cap_evicts_oldest_across_partitions),
        T(test_dropped_partition_hands_over_its_open_correlations),
        T(test_failed_flush_keeps_pending_and_counts_once),
        T(test_failed_flush_keeps_live_and_oldest_changes),
        T(test_invalid_message_rejected_and_counted),
        T(test_flush_due_when_pending_cells_reach_the_cap),
        T(test_flush_due_false_on_a_fresh_pipeline),
        T(test_flush_before_any_event_is_defined_behaviour),
        T(test_folded_wait_judged_by_its_own_channel_target),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
