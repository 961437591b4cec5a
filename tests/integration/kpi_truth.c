/* SPDX-License-Identifier: Apache-2.0 */
/* kpi_truth: an independent re-derivation of the KPI contract that checks what
 * touchpointd wrote to Redis. */

/*
 * Why a second implementation. Nothing here comes from processor/: the rules
 * are re-read from schemas/events.md and schemas/redis.md and computed another
 * way, so a product bug shows up as a mismatch instead of being shared.
 *
 * Pass 1 reads the NDJSON file in order and runs the correlation rules keyed by
 * tenant + correlation id. Each applied event leaves facts (the event, a wait
 * sample, answered, abandoned, a service-level verdict, a ttr sample, a survey
 * score) stamped with the bucket and leaf row (tenant, channel, queue) of the
 * event that carries them. Live gauges are read off the state still open.
 * Pass 2 folds the facts of each window into the leaf row and its three
 * roll-ups, keeping every sample, so quantiles are exact.
 * Pass 3 reads Redis (HGETALL, SMEMBERS, SCAN; argv forms only) and compares.
 *
 * Usage:
 *   kpi_truth --events FILE --redis redis://HOST:PORT/DB --clock-ms MS
 *     [--prefix tp] [--bucket 1m] [--windows 5m,1h,24h] [--retention 48h]
 *     [--live-clock-min MS --live-clock-max MS] [--targets chan=dur,...]
 *     [--abandons exclude_short|missed|ignore] [--late-clock final|running]
 *     [--expect-only]
 *   kpi_truth --redis URL --compare-db URL2 [--prefix tp]
 * --late-clock running judges lateness against the newest occurred_at read so
 * far (replay/backtest) instead of --clock-ms (run).
 * Exit status: 0 all match, 1 mismatches, 2 usage or I/O error.
 */

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#define MAX_WINDOWS 16
#define MAX_TARGETS 64
#define MAX_FIELDS 40
#define MAX_MISMATCH_LINES 50
#define UNSET INT64_MIN

/* ---- small utilities ---- */

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kpi_truth: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fail("out of memory");
    }
    return p;
}

static char *xstrndup(const char *s, size_t len)
{
    char *d = xrealloc(NULL, len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* Makes room for `need` elements of `elem` bytes in *p of capacity *cap. */
static void grow(void *p, size_t *cap, size_t need, size_t elem)
{
    void **pp = p;
    if (need > *cap) {
        *cap = need > 2 * *cap ? need + 15 : 2 * *cap;
        *pp = xrealloc(*pp, *cap * elem);
    }
}

struct i64vec {
    int64_t *v;
    size_t n, cap;
};

struct strlist {
    char **v;
    size_t n, cap;
};

static void strlist_add(struct strlist *l, const char *s, size_t len)
{
    grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v));
    l->v[l->n++] = xstrndup(s, len);
}

static void strlist_clear(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* qsort(NULL, 0, ...) is undefined, hence the guards. */
static void i64vec_sort(struct i64vec *v)
{
    if (v->n > 1) {
        qsort(v->v, v->n, sizeof(*v->v), cmp_i64);
    }
}

static void strlist_sort(struct strlist *l)
{
    if (l->n > 1) {
        qsort(l->v, l->n, sizeof(*l->v), cmp_str);
    }
}

static int64_t floor_to(int64_t t, int64_t step)
{
    int64_t q = t / step;
    return (q - (t % step < 0)) * step;
}

/* Strict integer: optional '-', then digits only. */
static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    const char *p = s + (*s == '-');
    if (*p < '0' || *p > '9') {
        return -1;
    }
    *out = strtoll(s, &end, 10);
    return *end ? -1 : 0;
}

/* ---- string -> int hash map (byte-string keys) ---- */

struct strmap_slot {
    char *key;
    size_t len;
    int val;
};

struct strmap {
    struct strmap_slot *slots;
    size_t cap, n;
};

static struct strmap_slot *strmap_slot(const struct strmap *m, const char *k, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
    }
    size_t i = (size_t)h & (m->cap - 1);
    while (m->slots[i].key && !(m->slots[i].len == len && !memcmp(m->slots[i].key, k, len))) {
        i = (i + 1) & (m->cap - 1);
    }
    return &m->slots[i];
}

static int strmap_get(const struct strmap *m, const char *key, size_t len)
{
    const struct strmap_slot *s = m->cap ? strmap_slot(m, key, len) : NULL;
    return s && s->key ? s->val : -1;
}

static void strmap_put(struct strmap *m, const char *key, size_t len, int val)
{
    if (2 * (m->n + 1) > m->cap) {
        struct strmap old = *m;
        m->cap = old.cap ? old.cap * 2 : 64;
        m->slots = xrealloc(NULL, m->cap * sizeof(*m->slots));
        memset(m->slots, 0, m->cap * sizeof(*m->slots));
        for (size_t i = 0; i < old.cap; i++) {
            if (old.slots[i].key) {
                *strmap_slot(m, old.slots[i].key, old.slots[i].len) = old.slots[i];
            }
        }
        free(old.slots);
    }
    struct strmap_slot *s = strmap_slot(m, key, len);
    if (!s->key) {
        s->key = xstrndup(key, len);
        s->len = len;
        m->n++;
    }
    s->val = val;
}

static void strmap_release(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].key);
    }
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* ---- time: RFC 3339, epoch ms, durations ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    int64_t doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±hh:mm)". The input is valid by contract,
 * so this only reads it; the fraction is truncated to ms (toward the past). */
static int ts_parse(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, se, oh = 0, om = 0, n = 0, ms = 0, nd = 0;
    char t;
    if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &t, &h, &mi, &se, &n) != 7 ||
        (t != 'T' && t != 't') || n != 19) {
        return -1;
    }
    const char *p = s + 19;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, nd++) {
            ms = nd < 3 ? ms * 10 + (*p - '0') : ms;
        }
        for (; nd < 3; nd++) {
            ms *= 10;
        }
    }
    int sign = *p == '+' ? 1 : *p == '-' ? -1 : 0;
    if (sign && (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || p[6])) {
        return -1;
    }
    if (!sign && strcmp(p, "Z") && strcmp(p, "z")) {
        return -1;
    }
    *out = days_from_civil(y, mo, d) * 86400000 + h * 3600000LL + mi * 60000LL +
           se * 1000LL + ms - sign * (oh * 60 + om) * 60000LL;
    return 0;
}

/* occurred_at / opened_at: an RFC 3339 string or integer epoch ms. */
static int time_from_json(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    return json_is_string(v) ? ts_parse(json_string_value(v), out) : -1;
}

/* "500ms", "20s", "15m", "4h", "1d" -> milliseconds, > 0. */
static int dur_parse(const char *s, int64_t *out)
{
    static const char *const unit[] = {"ms", "s", "m", "h", "d"};
    static const int64_t ms[] = {1, 1000, 60000, 3600000, 86400000};
    char *end;
    long long n = strtoll(s, &end, 10);
    for (int i = 0; i < 5 && *s >= '0' && *s <= '9' && n > 0; i++) {
        if (!strcmp(end, unit[i])) {
            *out = n * ms[i];
            return 0;
        }
    }
    return -1;
}

/* ---- options ---- */

enum abandons { AB_EXCLUDE_SHORT, AB_MISSED, AB_IGNORE };

struct target {
    char name[40];
    int64_t ms;
};

struct opts {
    const char *events, *redis, *compare_db, *prefix;
    int64_t clock, bucket, retention, live_min, live_max;
    int expect_only, late_running, abandons, nwin, ntargets;
    char *win_name[MAX_WINDOWS];
    int64_t win_ms[MAX_WINDOWS];
    struct target targets[MAX_TARGETS];
};

/* The channel's service-level target, else "default"'s. */
static int64_t target_of(const struct opts *o, const char *channel)
{
    int64_t dflt = 15 * 60000;
    for (int i = 0; i < o->ntargets; i++) {
        if (!strcmp(o->targets[i].name, channel)) {
            return o->targets[i].ms;
        }
        dflt = strcmp(o->targets[i].name, "default") ? dflt : o->targets[i].ms;
    }
    return dflt;
}

/* "name=dur,..." overrides entries of the documented defaults (or adds). */
static void opt_targets(struct opts *o, const char *arg)
{
    char *copy = xstrndup(arg, strlen(arg)), *save = NULL, *eq;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int64_t ms;
        int i = 0;
        if (!(eq = strchr(tok, '=')) || dur_parse(eq + 1, &ms) || eq - tok >= 40) {
            fail("--targets: expected CHANNEL=DURATION, got '%s'", tok);
        }
        *eq = '\0';
        while (i < o->ntargets && strcmp(o->targets[i].name, tok)) {
            i++;
        }
        if (i == MAX_TARGETS) {
            fail("--targets: more than %d entries", MAX_TARGETS);
        }
        snprintf(o->targets[i].name, sizeof(o->targets[i].name), "%s", tok);
        o->targets[i].ms = ms;
        o->ntargets += i == o->ntargets;
    }
    free(copy);
}

static void opt_windows(struct opts *o, const char *arg)
{
    char *copy = xstrndup(arg, strlen(arg)), *save = NULL;
    while (o->nwin > 0) {
        free(o->win_name[--o->nwin]);
    }
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->nwin == MAX_WINDOWS || dur_parse(tok, &o->win_ms[o->nwin])) {
            fail("--windows: bad or too many windows at '%s'", tok);
        }
        o->win_name[o->nwin++] = xstrndup(tok, strlen(tok));
    }
    free(copy);
}

enum opt_kind { O_STR, O_MS, O_DUR, O_CHOICE, O_FN };

static const struct optdef {
    const char *name;
    enum opt_kind kind;
    size_t off;
    void (*fn)(struct opts *, const char *);
    const char *const choices[3]; /* O_CHOICE: the int field gets the index */
} optdefs[] = {
    {"--events", O_STR, offsetof(struct opts, events), NULL, {NULL}},
    {"--redis", O_STR, offsetof(struct opts, redis), NULL, {NULL}},
    {"--compare-db", O_STR, offsetof(struct opts, compare_db), NULL, {NULL}},
    {"--prefix", O_STR, offsetof(struct opts, prefix), NULL, {NULL}},
    {"--clock-ms", O_MS, offsetof(struct opts, clock), NULL, {NULL}},
    {"--live-clock-min", O_MS, offsetof(struct opts, live_min), NULL, {NULL}},
    {"--live-clock-max", O_MS, offsetof(struct opts, live_max), NULL, {NULL}},
    {"--bucket", O_DUR, offsetof(struct opts, bucket), NULL, {NULL}},
    {"--retention", O_DUR, offsetof(struct opts, retention), NULL, {NULL}},
    {"--windows", O_FN, 0, opt_windows, {NULL}},
    {"--targets", O_FN, 0, opt_targets, {NULL}},
    {"--abandons", O_CHOICE, offsetof(struct opts, abandons), NULL,
     {"exclude_short", "missed", "ignore"}},
    {"--late-clock", O_CHOICE, offsetof(struct opts, late_running), NULL, {"final", "running"}},
};

static void opt_set(struct opts *o, const struct optdef *d, const char *val)
{
    char *field = (char *)o + d->off;
    if (d->kind == O_STR) {
        memcpy(field, &val, sizeof(val));
    } else if (d->kind == O_FN) {
        d->fn(o, val);
    } else if (d->kind == O_CHOICE) {
        int i = 0;
        while (i < 3 && d->choices[i] && strcmp(d->choices[i], val)) {
            i++;
        }
        if (i == 3 || !d->choices[i]) {
            fail("%s: '%s' is not one of the choices (see kpi_truth.c)", d->name, val);
        }
        memcpy(field, &i, sizeof(i));
    } else if (d->kind == O_MS ? parse_i64(val, (int64_t *)(void *)field)
                               : dur_parse(val, (int64_t *)(void *)field)) {
        fail("%s: expected %s, got '%s'", d->name,
             d->kind == O_MS ? "epoch ms" : "a duration like 1m or 48h", val);
    }
}

static void opts_parse(struct opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->prefix = "tp";
    o->clock = o->live_min = o->live_max = UNSET;
    o->bucket = 60000;
    o->retention = 48 * 3600000LL;
    opt_windows(o, "5m,1h,24h");
    opt_targets(o, "phone=20s,chat=60s,email=4h,sms=15m,whatsapp=15m,"
                   "instagram=15m,messenger=15m,default=15m");
    for (int i = 1; i < argc; i++) {
        size_t k = 0, nd = sizeof(optdefs) / sizeof(optdefs[0]);
        if (!strcmp(argv[i], "--expect-only")) {
            o->expect_only = 1;
            continue;
        }
        while (k < nd && strcmp(argv[i], optdefs[k].name)) {
            k++;
        }
        if (k == nd || i + 1 == argc) {
            fail("unknown option or missing value: %s (usage: see kpi_truth.c)", argv[i]);
        }
        opt_set(o, &optdefs[k], argv[++i]);
    }
    if (o->compare_db ? !o->redis
                      : !o->events || o->clock == UNSET || (!o->redis && !o->expect_only)) {
        fail("usage: kpi_truth --events FILE --redis URL --clock-ms MS [options] | "
             "kpi_truth --redis URL --compare-db URL2");
    }
    if ((o->live_min == UNSET) != (o->live_max == UNSET)) {
        fail("--live-clock-min and --live-clock-max go together");
    }
}

/* ---- the model: rows, facts, correlation state ---- */

enum fact_kind { F_EVENT, F_WAIT, F_ANSWERED, F_ABANDONED, F_SL, F_TTR, F_NPS, F_CSAT, F_CES };

struct fact {
    int64_t bucket, value;
    int row, kind;
};

/* A KPI row: a leaf CHANNEL:QUEUE or a roll-up using "_all". A leaf's up[]
 * lists the rows its facts count in: itself, CH:_all, _all:Q, _all:_all. */
struct row {
    int tenant, leaf, up[4];
    char *dim; /* "CHANNEL:QUEUE" */
};

/* One conversation ('d'), call ('c') or ticket ('t'). A closed ticket is the
 * same as an unknown one (see the report on ticket.replied after close). */
struct corr {
    int64_t start;
    int row;
    char family;
    unsigned char open, replied;
};

struct truth {
    const struct opts *o;
    struct strmap tenant_ix, row_ix, corr_ix;
    char **tenants;
    struct row *rows;
    struct corr *corrs;
    struct fact *facts;
    size_t ntenants, tenants_cap, nrows, rows_cap, ncorrs, corrs_cap, nfacts, facts_cap;
    int64_t run_clock;
    long events, late;
};

static int tenant_get(struct truth *t, const char *name)
{
    int ix = strmap_get(&t->tenant_ix, name, strlen(name));
    if (ix < 0) {
        grow(&t->tenants, &t->tenants_cap, t->ntenants + 1, sizeof(char *));
        ix = (int)t->ntenants;
        t->tenants[t->ntenants++] = xstrndup(name, strlen(name));
        strmap_put(&t->tenant_ix, name, strlen(name), ix);
    }
    return ix;
}

static int row_get(struct truth *t, int tenant, const char *ch, const char *q)
{
    char key[256];
    int n = snprintf(key, sizeof(key), "%s:%s:%s", t->tenants[tenant], ch, q);
    int ix = strmap_get(&t->row_ix, key, (size_t)n);
    if (ix < 0) {
        grow(&t->rows, &t->rows_cap, t->nrows + 1, sizeof(*t->rows));
        ix = (int)t->nrows++;
        t->rows[ix] = (struct row){tenant, 0, {0}, NULL};
        t->rows[ix].dim = xstrndup(key + strlen(t->tenants[tenant]) + 1,
                                   strlen(ch) + 1 + strlen(q));
        strmap_put(&t->row_ix, key, (size_t)n, ix);
    }
    return ix;
}

static int leaf_get(struct truth *t, const char *tenant, const char *ch, const char *q)
{
    int tn = tenant_get(t, tenant), ix = row_get(t, tn, ch, q);
    if (!t->rows[ix].leaf) {
        int up1 = row_get(t, tn, ch, "_all"), up2 = row_get(t, tn, "_all", q);
        int up3 = row_get(t, tn, "_all", "_all");
        t->rows[ix].leaf = 1; /* t->rows may have moved: index again */
        memcpy(t->rows[ix].up, (int[4]){ix, up1, up2, up3}, sizeof(t->rows[ix].up));
    }
    return ix;
}

/* ---- events ---- */

enum evtype {
    DM_RECEIVED, DM_REPLIED, CALL_QUEUED, CALL_ANSWERED, CALL_ABANDONED, CALL_ENDED,
    TICKET_OPENED, TICKET_REPLIED, TICKET_CLOSED, TICKET_REOPENED,
    SURVEY_NPS, SURVEY_CSAT, SURVEY_CES, EV_NTYPES
};

static const char *const evnames[EV_NTYPES] = {
    "dm.received",   "dm.replied",     "call.queued",    "call.answered", "call.abandoned",
    "call.ended",    "ticket.opened",  "ticket.replied", "ticket.closed", "ticket.reopened",
    "survey.nps",    "survey.csat",    "survey.ces"};

/* One event; its strings are borrowed from the JSON document. */
struct event {
    int type, has_wait, has_opened, row;
    int64_t at, bucket, wait, opened_at, score;
    const char *tenant, *channel, *queue, *id;
    size_t id_len;
};

static char family_of(int type)
{
    return type <= DM_REPLIED ? 'd' : type <= CALL_ENDED ? 'c' : type <= TICKET_REOPENED ? 't' : 's';
}

static const char *str_field(const json_t *o, const char *name, long line, size_t *len)
{
    const json_t *v = json_object_get(o, name);
    if (!json_is_string(v)) {
        fail("line %ld: %s missing or not a string", line, name);
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

/* 1 if the integer field is there, 0 if absent. */
static int int_field(const json_t *o, const char *name, long line, int64_t *out)
{
    const json_t *v = json_object_get(o, name);
    if (v && !json_is_integer(v)) {
        fail("line %ld: %s is not an integer", line, name);
    }
    *out = v ? json_integer_value(v) : 0;
    return v != NULL;
}

/* Reads only what the contract gives each type: wait_ms on the four closing
 * types, opened_at on ticket.closed, score on surveys. */
static void event_parse(const json_t *o, struct event *ev, long line)
{
    static const char *const id_field[] = {"conversation_id", "call_id", "ticket_id"};
    size_t len;
    const char *type = str_field(o, "type", line, &len);
    memset(ev, 0, sizeof(*ev));
    while (ev->type < EV_NTYPES && strcmp(type, evnames[ev->type])) {
        ev->type++;
    }
    if (ev->type == EV_NTYPES || time_from_json(json_object_get(o, "occurred_at"), &ev->at)) {
        fail("line %ld: unknown type or bad occurred_at", line);
    }
    ev->tenant = str_field(o, "tenant", line, &len);
    ev->channel = str_field(o, "channel", line, &len);
    ev->queue = json_object_get(o, "queue") ? str_field(o, "queue", line, &len) : "default";
    char fam = family_of(ev->type);
    if (fam != 's') {
        ev->id = str_field(o, id_field[fam == 'd' ? 0 : fam == 'c' ? 1 : 2], line, &ev->id_len);
    } else if (!int_field(o, "score", line, &ev->score)) {
        fail("line %ld: score missing", line);
    }
    if (ev->type == DM_REPLIED || ev->type == CALL_ANSWERED || ev->type == CALL_ABANDONED ||
        ev->type == TICKET_REPLIED) {
        ev->has_wait = int_field(o, "wait_ms", line, &ev->wait);
    }
    const json_t *op = json_object_get(o, "opened_at");
    if (ev->type == TICKET_CLOSED && op) {
        if (time_from_json(op, &ev->opened_at)) {
            fail("line %ld: opened_at unparseable", line);
        }
        ev->has_opened = 1;
    }
}

static void fact_add(struct truth *t, const struct event *ev, int kind, int64_t value)
{
    grow(&t->facts, &t->facts_cap, t->nfacts + 1, sizeof(*t->facts));
    t->facts[t->nfacts++] = (struct fact){ev->bucket, value, ev->row, kind};
}

/* The entry of (family, tenant, id), created closed if new. */
static struct corr *corr_get(struct truth *t, const struct event *ev)
{
    size_t tl = strlen(ev->tenant), len = 3 + tl + ev->id_len;
    char *key = xrealloc(NULL, len);
    key[0] = family_of(ev->type);
    key[1] = key[2 + tl] = ':'; /* tenants never contain ':' */
    memcpy(key + 2, ev->tenant, tl);
    memcpy(key + 3 + tl, ev->id, ev->id_len);
    int ix = strmap_get(&t->corr_ix, key, len);
    if (ix < 0) {
        grow(&t->corrs, &t->corrs_cap, t->ncorrs + 1, sizeof(*t->corrs));
        ix = (int)t->ncorrs++;
        t->corrs[ix] = (struct corr){0, -1, key[0], 0, 0};
        strmap_put(&t->corr_ix, key, len, ix);
    }
    free(key);
    return &t->corrs[ix];
}

/* A completed first wait: a sample and a service-level verdict, on the bucket
 * and row of the event that ends the wait. */
static void add_wait(struct truth *t, const struct event *ev, int64_t w)
{
    w = w < 0 ? 0 : w;
    fact_add(t, ev, F_WAIT, w);
    fact_add(t, ev, F_SL, w <= target_of(t->o, ev->channel));
}

/* An abandon of known wait w: a missed verdict or nothing, per --abandons. */
static void add_abandon(struct truth *t, const struct event *ev, int64_t w)
{
    if (t->o->abandons == AB_MISSED ||
        (t->o->abandons == AB_EXCLUDE_SHORT && w > target_of(t->o, ev->channel))) {
        fact_add(t, ev, F_SL, 0);
    }
}

static void correlate(struct truth *t, const struct event *ev)
{
    struct corr *c = corr_get(t, ev);
    int64_t waited = ev->has_wait ? ev->wait : ev->at - c->start;
    if (ev->type == DM_RECEIVED || ev->type == CALL_QUEUED || ev->type == TICKET_OPENED ||
        ev->type == TICKET_REOPENED) {
        if (!c->open) { /* a repeat while open changes nothing */
            *c = (struct corr){ev->at, ev->row, c->family, 1, ev->type == TICKET_REOPENED};
        }
        return;
    }
    if (ev->type == TICKET_REPLIED) {
        if (c->open ? !c->replied : ev->has_wait) {
            add_wait(t, ev, waited);
        }
        c->replied = 1;
        return;
    }
    int known = ev->has_wait || c->open;
    if ((ev->type == DM_REPLIED || ev->type == CALL_ANSWERED) && known) {
        add_wait(t, ev, waited);
    } else if (ev->type == CALL_ABANDONED && known) {
        add_abandon(t, ev, waited < 0 ? 0 : waited);
    } else if (ev->type == TICKET_CLOSED && (ev->has_opened || c->open)) {
        int64_t ttr = ev->at - (ev->has_opened ? ev->opened_at : c->start);
        fact_add(t, ev, F_TTR, ttr < 0 ? 0 : ttr);
    }
    c->open = 0;
}

static void truth_apply(struct truth *t, struct event *ev)
{
    const struct opts *o = t->o;
    ev->bucket = floor_to(ev->at, o->bucket);
    t->run_clock = ev->at > t->run_clock ? ev->at : t->run_clock;
    if ((o->late_running ? t->run_clock : o->clock) - (ev->bucket + o->bucket) > o->retention) {
        t->late++; /* late: not applied at all, no correlation either */
        return;
    }
    ev->row = leaf_get(t, ev->tenant, ev->channel, ev->queue);
    fact_add(t, ev, F_EVENT, 1);
    if (ev->type == CALL_ANSWERED || ev->type == CALL_ABANDONED) {
        fact_add(t, ev, ev->type == CALL_ANSWERED ? F_ANSWERED : F_ABANDONED, 1);
    }
    if (family_of(ev->type) != 's') {
        correlate(t, ev);
    } else {
        fact_add(t, ev, F_NPS + (ev->type - SURVEY_NPS), ev->score);
    }
}

static void truth_load(struct truth *t, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    if (!f) {
        fail("cannot open events file %s", path);
    }
    t->run_clock = UNSET;
    while ((n = getline(&line, &cap, f)) >= 0) {
        json_error_t jerr;
        struct event ev;
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)n) {
            continue;
        }
        json_t *doc = json_loadb(line, (size_t)n, 0, &jerr);
        if (!json_is_object(doc)) {
            fail("%s:%ld: not a JSON object: %s", path, lineno, jerr.text);
        }
        event_parse(doc, &ev, lineno);
        truth_apply(t, &ev);
        t->events++;
        json_decref(doc);
    }
    free(line);
    fclose(f);
}

static void truth_release(struct truth *t)
{
    for (size_t i = 0; i < t->ntenants; i++) {
        free(t->tenants[i]);
    }
    for (size_t i = 0; i < t->nrows; i++) {
        free(t->rows[i].dim);
    }
    strmap_release(&t->tenant_ix);
    strmap_release(&t->row_ix);
    strmap_release(&t->corr_ix);
    free(t->tenants);
    free(t->rows);
    free(t->corrs);
    free(t->facts);
}

/* ---- pass 2: windows and live gauges ---- */

struct acc {
    int64_t events, wait_n, wait_sum, wait_max, answered, abandoned, sl_n, sl_met;
    int64_t ttr_n, ttr_sum, ttr_max, nps_n, promoters, passives, detractors;
    int64_t csat_n, csat_good, csat_sum, ces_n, ces_sum;
    struct i64vec waits, ttrs;
};

struct live {
    int64_t open_tickets, waiting_dms, waiting_calls, oldest_start;
    int waiting;
};

static void sample_add(int64_t *n, int64_t *sum, int64_t *max, struct i64vec *s, int64_t v)
{
    *max = *n == 0 || v > *max ? v : *max;
    (*n)++;
    *sum += v;
    grow(&s->v, &s->cap, s->n + 1, sizeof(*s->v));
    s->v[s->n++] = v;
}

static void acc_add(struct acc *a, const struct fact *f)
{
    int64_t v = f->value;
    a->events += f->kind == F_EVENT;
    a->answered += f->kind == F_ANSWERED;
    a->abandoned += f->kind == F_ABANDONED;
    if (f->kind == F_SL) {
        a->sl_n++;
        a->sl_met += v;
    } else if (f->kind == F_WAIT) {
        sample_add(&a->wait_n, &a->wait_sum, &a->wait_max, &a->waits, v);
    } else if (f->kind == F_TTR) {
        sample_add(&a->ttr_n, &a->ttr_sum, &a->ttr_max, &a->ttrs, v);
    } else if (f->kind == F_NPS) {
        a->nps_n++;
        a->promoters += v >= 9;
        a->passives += v == 7 || v == 8;
        a->detractors += v <= 6;
    } else if (f->kind == F_CSAT) {
        a->csat_n++;
        a->csat_good += v >= 4;
        a->csat_sum += v;
    } else if (f->kind == F_CES) {
        a->ces_n++;
        a->ces_sum += v;
    }
}

/* accs[w * nrows + row]: window w of every row; buckets whose start lies in
 * (clock_bucket - window, clock_bucket]. */
static struct acc *truth_windows(const struct truth *t)
{
    const struct opts *o = t->o;
    size_t n = (size_t)o->nwin * t->nrows;
    struct acc *accs = xrealloc(NULL, (n + 1) * sizeof(*accs));
    int64_t cb = floor_to(o->clock, o->bucket);
    memset(accs, 0, (n + 1) * sizeof(*accs));
    for (int w = 0; w < o->nwin; w++) {
        for (size_t i = 0; i < t->nfacts; i++) {
            const struct fact *f = &t->facts[i];
            for (int k = 0; k < 4 && f->bucket <= cb && f->bucket > cb - o->win_ms[w]; k++) {
                acc_add(&accs[(size_t)w * t->nrows + t->rows[f->row].up[k]], f);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        i64vec_sort(&accs[i].waits);
        i64vec_sort(&accs[i].ttrs);
    }
    return accs;
}

static void accs_free(struct acc *accs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(accs[i].waits.v);
        free(accs[i].ttrs.v);
    }
    free(accs);
}

/* Gauges of the open state, on the rows of the events that started it. */
static struct live *truth_live(const struct truth *t)
{
    struct live *lv = xrealloc(NULL, (t->nrows + 1) * sizeof(*lv));
    memset(lv, 0, (t->nrows + 1) * sizeof(*lv));
    for (size_t i = 0; i < t->ncorrs; i++) {
        const struct corr *c = &t->corrs[i];
        int waiting = c->family != 't' || !c->replied;
        for (int k = 0; k < 4 && c->open; k++) {
            struct live *l = &lv[t->rows[c->row].up[k]];
            l->waiting_dms += c->family == 'd';
            l->waiting_calls += c->family == 'c';
            l->open_tickets += c->family == 't';
            if (waiting && (!l->waiting || c->start < l->oldest_start)) {
                l->oldest_start = c->start;
            }
            l->waiting |= waiting;
        }
    }
    return lv;
}

/* ---- expected hashes ---- */

enum exp_kind {
    E_EXACT,  /* string equality */
    E_COUNT,  /* string equality; "0" may also be absent */
    E_QUANT,  /* within 1 % of `exact` */
    E_RANGE,  /* integer in [lo, hi] */
    E_ANYINT, /* any integer, required */
    E_OPTINT  /* any integer, optional */
};

struct exp_field {
    const char *name;
    enum exp_kind kind;
    char str[48];
    double exact;
    int64_t lo, hi;
};

struct exp_hash {
    struct exp_field f[MAX_FIELDS];
    int n, must_exist;
};

static struct exp_field *exp_push(struct exp_hash *e, const char *name, enum exp_kind k)
{
    struct exp_field *f = &e->f[e->n++];
    memset(f, 0, sizeof(*f));
    f->name = name;
    f->kind = k;
    snprintf(f->str, sizeof(f->str), "(integer)");
    return f;
}

static void exp_int(struct exp_hash *e, const char *name, enum exp_kind k, int64_t v)
{
    snprintf(exp_push(e, name, k)->str, sizeof(e->f[0].str), "%" PRId64, v);
}

static void exp_real(struct exp_hash *e, const char *name, double v)
{
    snprintf(exp_push(e, name, E_EXACT)->str, sizeof(e->f[0].str), "%.10g", v);
}

static void exp_ratio(struct exp_hash *e, const char *name, int64_t num, int64_t den)
{
    exp_real(e, name, (double)num / (double)den);
}

/* The sample at rank floor(pct/100 * (n-1)) of the sorted samples. */
static void exp_quant(struct exp_hash *e, const char *name, const struct i64vec *s, int pct)
{
    struct exp_field *f = exp_push(e, name, E_QUANT);
    f->exact = (double)s->v[(size_t)pct * (s->n - 1) / 100];
    snprintf(f->str, sizeof(f->str), "~%.10g", f->exact);
}

static void exp_samples(struct exp_hash *e, const char *const names[5], int64_t n,
                        int64_t sum, int64_t max, const struct i64vec *s, int with_p99)
{
    exp_int(e, names[0], E_COUNT, n);
    if (n) {
        exp_ratio(e, names[1], sum, n);
        exp_quant(e, names[2], s, 50);
        exp_quant(e, names[3], s, 90);
        if (with_p99) {
            exp_quant(e, "wait_p99_ms", s, 99);
        }
        exp_int(e, names[4], E_EXACT, max);
    }
}

/* a NULL: a row the truth does not know, which must be empty if it exists. */
static void exp_kpi(struct exp_hash *e, const struct acc *a)
{
    static const char *const wait[5] = {"wait_n", "wait_mean_ms", "wait_p50_ms",
                                        "wait_p90_ms", "wait_max_ms"};
    static const char *const ttr[5] = {"ttr_n", "ttr_mean_ms", "ttr_p50_ms", "ttr_p90_ms",
                                       "ttr_max_ms"};
    static const struct acc zero;
    e->n = 0;
    e->must_exist = a && a->events > 0;
    a = a ? a : &zero;
    exp_int(e, "events", E_COUNT, a->events);
    exp_samples(e, wait, a->wait_n, a->wait_sum, a->wait_max, &a->waits, 1);
    exp_int(e, "answered", E_COUNT, a->answered);
    exp_int(e, "abandoned", E_COUNT, a->abandoned);
    if (a->answered + a->abandoned) {
        exp_ratio(e, "abandon_rate", a->abandoned, a->answered + a->abandoned);
    }
    exp_int(e, "sl_n", E_COUNT, a->sl_n);
    exp_int(e, "sl_met", E_COUNT, a->sl_met);
    if (a->sl_n) {
        exp_ratio(e, "sl_pct", a->sl_met, a->sl_n);
    }
    exp_samples(e, ttr, a->ttr_n, a->ttr_sum, a->ttr_max, &a->ttrs, 0);
    exp_int(e, "nps_n", E_COUNT, a->nps_n);
    exp_int(e, "promoters", E_COUNT, a->promoters);
    exp_int(e, "passives", E_COUNT, a->passives);
    exp_int(e, "detractors", E_COUNT, a->detractors);
    if (a->nps_n) {
        exp_real(e, "nps", 100.0 * (double)(a->promoters - a->detractors) / (double)a->nps_n);
        exp_ratio(e, "detractor_rate", a->detractors, a->nps_n);
    }
    exp_int(e, "csat_n", E_COUNT, a->csat_n);
    if (a->csat_n) {
        exp_ratio(e, "csat_pct", a->csat_good, a->csat_n);
        exp_ratio(e, "csat_mean", a->csat_sum, a->csat_n);
    }
    exp_int(e, "ces_n", E_COUNT, a->ces_n);
    if (a->ces_n) {
        exp_ratio(e, "ces_mean", a->ces_sum, a->ces_n);
    }
    exp_push(e, "updated_at_ms", a == &zero ? E_OPTINT : E_ANYINT);
}

static void exp_live(struct exp_hash *e, const struct live *l, const struct opts *o)
{
    static const struct live zero;
    l = l ? l : &zero;
    e->n = 0;
    e->must_exist = l->open_tickets || l->waiting_dms || l->waiting_calls || l->waiting;
    exp_int(e, "open_tickets", E_COUNT, l->open_tickets);
    exp_int(e, "waiting_dms", E_COUNT, l->waiting_dms);
    exp_int(e, "waiting_calls", E_COUNT, l->waiting_calls);
    if (l->waiting && o->live_min != UNSET) {
        struct exp_field *f = exp_push(e, "oldest_wait_ms", E_RANGE);
        f->lo = o->live_min - l->oldest_start;
        f->hi = o->live_max - l->oldest_start;
        snprintf(f->str, sizeof(f->str), "[%" PRId64 ",%" PRId64 "]", f->lo, f->hi);
    } else if (l->waiting) {
        exp_int(e, "oldest_wait_ms", E_EXACT, o->clock - l->oldest_start);
    }
    exp_push(e, "updated_at_ms", E_OPTINT);
}

/* ---- comparison and reporting ---- */

struct report {
    long keys, fields, mismatches;
};

static void mismatch(struct report *r, const char *key, const char *field, const char *want,
                     const char *got)
{
    if (r->mismatches++ < MAX_MISMATCH_LINES) {
        printf("MISMATCH %s %s expected=%s got=%s\n", key, field, want, got);
    }
}

static int field_ok(const struct exp_field *f, const char *got)
{
    int64_t v;
    char *end;
    if (f->kind == E_EXACT || f->kind == E_COUNT) {
        return !strcmp(f->str, got);
    }
    if (f->kind == E_QUANT) {
        double d = strtod(got, &end);
        /* 1e-9 relative slack: %.10g may round a value exactly at the 1 % edge */
        return *got && !*end && fabs(d - f->exact) <= 0.01 * f->exact + 1e-9 * (1 + f->exact);
    }
    return !parse_i64(got, &v) && (f->kind != E_RANGE || (v >= f->lo && v <= f->hi));
}

/* h: an HGETALL reply, a flat field/value array. */
static void compare_hash(struct report *r, const char *key, const struct exp_hash *e,
                         const redisReply *h)
{
    unsigned char seen[MAX_FIELDS] = {0};
    r->keys++;
    if (h->elements == 0 && !e->must_exist) {
        return; /* a row without events in the window may have no key */
    }
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const char *name = h->element[i]->str, *val = h->element[i + 1]->str;
        int j = 0;
        while (j < e->n && strcmp(e->f[j].name, name)) {
            j++;
        }
        r->fields++;
        if (j == e->n) {
            mismatch(r, key, name, "(absent)", val);
            continue;
        }
        seen[j] = 1;
        if (!field_ok(&e->f[j], val)) {
            mismatch(r, key, name, e->f[j].str, val);
        }
    }
    for (int j = 0; j < e->n; j++) {
        const struct exp_field *f = &e->f[j];
        if (!seen[j] && f->kind != E_OPTINT && !(f->kind == E_COUNT && !strcmp(f->str, "0"))) {
            r->fields++;
            mismatch(r, key, f->name, f->str, "(absent)");
        }
    }
}

static void compare_sets(struct report *r, const char *key, struct strlist *want,
                         struct strlist *got)
{
    size_t i = 0, j = 0;
    strlist_sort(want);
    strlist_sort(got);
    r->keys++;
    while (i < want->n || j < got->n) {
        int c = i == want->n ? 1 : j == got->n ? -1 : strcmp(want->v[i], got->v[j]);
        r->fields++;
        if (c) {
            mismatch(r, key, "member", c < 0 ? want->v[i] : "(absent)",
                     c < 0 ? "(absent)" : got->v[j]);
        }
        i += c <= 0;
        j += c >= 0;
    }
}

/* ---- Redis: the only I/O besides the events file ---- */

/* url: redis://HOST:PORT[/DB] */
static redisContext *store_connect(const char *url)
{
    char host[256], dbs[16];
    int port = 0, db = 0;
    if (sscanf(url, "redis://%255[^:/]:%d/%d", host, &port, &db) < 2) {
        fail("bad Redis URL %s (expected redis://HOST:PORT/DB)", url);
    }
    redisContext *c = redisConnectWithTimeout(host, port, (struct timeval){10, 0});
    if (!c || c->err) {
        fail("cannot connect to %s: %s", url, c ? c->errstr : "out of memory");
    }
    snprintf(dbs, sizeof(dbs), "%d", db);
    redisReply *rep = redisCommandArgv(c, 2, (const char *[]){"SELECT", dbs}, NULL);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        fail("SELECT %d on %s failed", db, url);
    }
    freeReplyObject(rep);
    return c;
}

/* Runs one command whose reply must be an array; returns a new reference. */
static redisReply *store_array(redisContext *c, int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fail("%s %s: %s", argv[0], argv[1],
             !r ? c->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
    }
    return r;
}

static redisReply *store_hgetall(redisContext *c, const char *key)
{
    return store_array(c, 2, (const char *[]){"HGETALL", key});
}

static void store_smembers(redisContext *c, const char *key, struct strlist *out)
{
    redisReply *rep = store_array(c, 2, (const char *[]){"SMEMBERS", key});
    for (size_t i = 0; i < rep->elements; i++) {
        strlist_add(out, rep->element[i]->str, rep->element[i]->len);
    }
    freeReplyObject(rep);
}

static void store_scan(redisContext *c, const char *pattern, struct strlist *out)
{
    char cursor[32] = "0";
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
        redisReply *rep = store_array(c, 6, argv);
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        for (size_t i = 0; i < rep->element[1]->elements; i++) {
            strlist_add(out, rep->element[1]->element[i]->str, rep->element[1]->element[i]->len);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0"));
}

/* ---- pass 3: the checks ---- */

struct checker {
    struct report *r;
    redisContext *c;
    struct strmap seen; /* keys checked against a truth row */
};

/* Hands the expected hashes of every row (kpi of each window, then live) to
 * fn(ctx, key, expected). */
static void each_expected(const struct truth *t, const struct acc *accs,
                          const struct live *lv,
                          void (*fn)(void *, const char *, const struct exp_hash *),
                          void *ctx)
{
    static struct exp_hash e;
    const struct opts *o = t->o;
    char key[512];
    for (size_t i = 0; i < t->nrows; i++) {
        const char *tenant = t->tenants[t->rows[i].tenant], *dim = t->rows[i].dim;
        for (int w = 0; w <= o->nwin; w++) {
            if (w < o->nwin) {
                snprintf(key, sizeof(key), "%s:{%s}:kpi:%s:%s", o->prefix, tenant,
                         o->win_name[w], dim);
                exp_kpi(&e, &accs[(size_t)w * t->nrows + i]);
            } else {
                snprintf(key, sizeof(key), "%s:{%s}:live:%s", o->prefix, tenant, dim);
                exp_live(&e, &lv[i], o);
            }
            fn(ctx, key, &e);
        }
    }
}

static void check_fn(void *ctx, const char *key, const struct exp_hash *e)
{
    struct checker *ck = ctx;
    redisReply *h = store_hgetall(ck->c, key);
    compare_hash(ck->r, key, e, h);
    freeReplyObject(h);
    strmap_put(&ck->seen, key, strlen(key), 1);
}

/* Keys the product wrote that no truth row matches (wrong dims, stray
 * tenants, _other) must be empty. Windows not configured here are skipped. */
static void check_strays(struct checker *ck, const struct opts *o)
{
    static struct exp_hash e;
    struct strlist keys = {0};
    char pat[256];
    snprintf(pat, sizeof(pat), "%s:{*}:kpi:*", o->prefix);
    store_scan(ck->c, pat, &keys);
    snprintf(pat, sizeof(pat), "%s:{*}:live:*", o->prefix);
    store_scan(ck->c, pat, &keys);
    strlist_sort(&keys);
    for (size_t i = 0; i < keys.n; i++) {
        const char *k = strstr(keys.v[i], "}:kpi:");
        int w = k ? -1 : o->nwin;
        for (int j = 0; k && j < o->nwin; j++) {
            size_t n = strlen(o->win_name[j]);
            w = !strncmp(k + 6, o->win_name[j], n) && k[6 + n] == ':' ? j : w;
        }
        if (w >= 0 && strmap_get(&ck->seen, keys.v[i], strlen(keys.v[i])) < 0) {
            if (k) {
                exp_kpi(&e, NULL);
            } else {
                exp_live(&e, NULL, o);
            }
            check_fn(ck, keys.v[i], &e);
        }
    }
    strlist_clear(&keys);
}

/* Compares the set at key with *want, then empties *want. */
static void check_set(struct report *r, redisContext *c, const char *key,
                      struct strlist *want)
{
    struct strlist got = {0};
    store_smembers(c, key, &got);
    compare_sets(r, key, want, &got);
    strlist_clear(&got);
    strlist_clear(want);
}

/* tp:tenants and every tenant's tp:{T}:dims. */
static void check_sets(struct report *r, const struct truth *t, redisContext *c)
{
    struct strlist want = {0};
    char key[512];
    for (size_t i = 0; i < t->ntenants; i++) {
        strlist_add(&want, t->tenants[i], strlen(t->tenants[i]));
    }
    snprintf(key, sizeof(key), "%s:tenants", t->o->prefix);
    check_set(r, c, key, &want);
    for (size_t tn = 0; tn < t->ntenants; tn++) {
        for (size_t i = 0; i < t->nrows; i++) {
            if (t->rows[i].leaf && t->rows[i].tenant == (int)tn) {
                strlist_add(&want, t->rows[i].dim, strlen(t->rows[i].dim));
            }
        }
        snprintf(key, sizeof(key), "%s:{%s}:dims", t->o->prefix, t->tenants[tn]);
        check_set(r, c, key, &want);
    }
}

/* --expect-only: "KEY FIELD VALUE" lines of the keys that must exist. */
static void print_fn(void *ctx, const char *key, const struct exp_hash *e)
{
    char line[1024];
    for (int j = 0; e->must_exist && j < e->n; j++) {
        int n = snprintf(line, sizeof(line), "%s %s %s", key, e->f[j].name, e->f[j].str);
        if (e->f[j].kind != E_OPTINT) {
            strlist_add(ctx, line, (size_t)n);
        }
    }
}

static void run_truth(struct report *r, const struct opts *o)
{
    struct truth t = {.o = o};
    struct strlist lines = {0};
    truth_load(&t, o->events);
    struct acc *accs = truth_windows(&t);
    struct live *lv = truth_live(&t);
    fprintf(stderr, "kpi_truth: %ld events read, %ld late (dropped), %zu tenants\n", t.events,
            t.late, t.ntenants);
    if (o->expect_only) {
        each_expected(&t, accs, lv, print_fn, &lines);
        strlist_sort(&lines);
        for (size_t i = 0; i < lines.n; i++) {
            puts(lines.v[i]);
        }
        strlist_clear(&lines);
    } else {
        struct checker ck = {r, store_connect(o->redis), {0}};
        each_expected(&t, accs, lv, check_fn, &ck);
        check_strays(&ck, o);
        check_sets(r, &t, ck.c);
        strmap_release(&ck.seen);
        redisFree(ck.c);
    }
    accs_free(accs, (size_t)o->nwin * t.nrows);
    free(lv);
    truth_release(&t);
}

/* ---- --compare-db: every kpi key of two DBs, field by field ---- */

static const char *hash_get(const redisReply *h, const char *field)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        if (!strcmp(h->element[i]->str, field)) {
            return h->element[i + 1]->str;
        }
    }
    return NULL;
}

/* Every field but updated_at_ms, a's value as "expected", b's as "got". */
static void compare_pair(struct report *r, const char *key, const redisReply *a,
                         const redisReply *b)
{
    r->keys++;
    for (int side = 0; side < 2; side++) {
        const redisReply *h = side ? b : a, *other = side ? a : b;
        for (size_t i = 0; i + 1 < h->elements; i += 2) {
            const char *f = h->element[i]->str, *v = h->element[i + 1]->str;
            const char *ov = hash_get(other, f);
            if (!strcmp(f, "updated_at_ms") || (side && ov)) {
                continue; /* fields in both were compared on side 0 */
            }
            r->fields++;
            if (!ov || strcmp(v, ov)) {
                mismatch(r, key, f, side ? "(absent)" : v, side ? v : ov ? ov : "(absent)");
            }
        }
    }
}

static void run_compare_db(struct report *r, const struct opts *o)
{
    redisContext *ca = store_connect(o->redis), *cb = store_connect(o->compare_db);
    struct strlist keys = {0};
    char pat[256];
    snprintf(pat, sizeof(pat), "%s:{*}:kpi:*", o->prefix);
    store_scan(ca, pat, &keys);
    store_scan(cb, pat, &keys);
    strlist_sort(&keys);
    for (size_t i = 0; i < keys.n; i++) {
        if (i > 0 && !strcmp(keys.v[i], keys.v[i - 1])) {
            continue; /* in both DBs */
        }
        redisReply *a = store_hgetall(ca, keys.v[i]), *b = store_hgetall(cb, keys.v[i]);
        compare_pair(r, keys.v[i], a, b);
        freeReplyObject(a);
        freeReplyObject(b);
    }
    strlist_clear(&keys);
    redisFree(ca);
    redisFree(cb);
}

int main(int argc, char **argv)
{
    struct opts o;
    struct report r = {0, 0, 0};
    opts_parse(&o, argc, argv);
    if (o.compare_db) {
        run_compare_db(&r, &o);
    } else {
        run_truth(&r, &o);
    }
    while (o.nwin > 0) {
        free(o.win_name[--o.nwin]);
    }
    if (o.expect_only && !o.compare_db) {
        return 0;
    }
    printf("kpi_truth: checked %ld keys, %ld fields, %ld mismatches\n", r.keys, r.fields,
           r.mismatches);
    return r.mismatches == 0 ? 0 : 1;
}
