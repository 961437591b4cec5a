/* SPDX-License-Identifier: Apache-2.0 */
/* gen: tpgen's stream — sessions in event-time order, rendered as JSON lines.
 */
#include "gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "gen_bad.h"
#include "gen_model.h"
#include "tstamp.h"

/*
 * Each open session has exactly one pending event, kept in a 4-ary min-heap
 * of (time, session index); the next arrival is a separate number. The
 * stream takes whichever is due first, lets the model (gen_model.c) step the
 * session, renders the event by hand (no JSON library: this is the hot path,
 * over a million events a second) and pushes the session back with its next
 * time. A finished session's slot is recycled, so memory follows the open
 * sessions. Malformed messages (gen_bad.c) and duplicates (from a ring of the
 * last valid events) are slotted in after evenly spaced valid counts.
 */

#define GEN_LINE_MAX (80 * 1024)
#define GEN_EVENT_MAX 1024
#define GEN_KEY_MAX 160
#define GEN_RING 32
#define GEN_DUP_BACK 8
#define GEN_RATE_TAU_MS 3000.0 /* memory of the follow-up rate estimate */

struct heap_entry {
    int64_t t;
    uint32_t s;
};

struct ring_slot {
    size_t len, key_len;
    char data[GEN_EVENT_MAX];
    char key[GEN_KEY_MAX];
};

struct gen {
    struct gen_options opt; /* name and incident pointers not kept */
    struct gen_model model;
    struct gen_rng rng;
    char run[48]; /* "<seed>-<start in base 36>", part of every id */
    size_t run_len;
    double arrival_mean_ms; /* mean gap between session arrivals */
    double next_arrival;
    double followup_rate; /* steady: recent follow-up events per ms */
    int64_t followup_t;   /* when followup_rate was last decayed */

    struct gen_session *pool;
    uint32_t pool_len, pool_cap;
    uint32_t *free_list;
    uint32_t free_len;
    struct heap_entry *heap;
    uint32_t heap_len, heap_cap;

    uint64_t sessions, open, open_waits, events, valid, dups, bad;
    int64_t last_stamp;
    int64_t day_cached; /* date cache for the timestamp writer */
    char day_text[11];

    struct ring_slot *ring; /* last valid events, for duplicates */
    uint64_t ring_fill;
    char key[GEN_KEY_MAX];
    char *line; /* GEN_LINE_MAX bytes */
    char err[128];
};

/* ---- names and incidents ------------------------------------------------- */

int gen_name_check(const char *name, int is_tenant, char *errstr,
                   size_t errstr_size)
{
    size_t len = strlen(name), max = is_tenant ? 64 : 32;
    const char *set = is_tenant ? "[A-Za-z0-9_.-]{1,64}" : "[a-z0-9_-]{1,32}";

    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                 c == '-' ||
                 (is_tenant && ((c >= 'A' && c <= 'Z') || c == '.'));
        if (!ok) {
            len = 0; /* reported below */
            break;
        }
    }
    if (len < 1 || len > max) {
        snprintf(errstr, errstr_size, "'%s' does not match %s", name, set);
        return -1;
    }
    if (!is_tenant &&
        (strcmp(name, "_all") == 0 || strcmp(name, "_other") == 0)) {
        snprintf(errstr, errstr_size, "'%s' is reserved for roll-ups", name);
        return -1;
    }
    return 0;
}

/* Copies the part of *p up to one of stops (or the end) into dst. */
static int take_part(const char **p, const char *stops, char *dst, size_t size)
{
    size_t n = strcspn(*p, stops);

    if (n == 0 || n >= size) {
        return -1;
    }
    memcpy(dst, *p, n);
    dst[n] = '\0';
    *p += n;
    return 0;
}

static int incident_where(const char **p, struct gen_incident *inc,
                          char *errstr, size_t errstr_size)
{
    char *dims[3] = {inc->tenant, inc->channel, inc->queue};
    size_t sizes[3] = {sizeof(inc->tenant), sizeof(inc->channel),
                       sizeof(inc->queue)};

    for (int i = 0; i < 3; i++) {
        int any = **p == '*'; /* names never hold '*' */
        if (any) {
            strcpy(dims[i], "*");
            (*p)++;
        }
        if ((!any &&
             take_part(p, i < 2 ? "/@*" : "@*", dims[i], sizes[i]) < 0) ||
            (i < 2 && **p != '/')) {
            snprintf(errstr, errstr_size,
                     "expected TENANT/CHANNEL/QUEUE after the kind ('*' "
                     "matches any)");
            return -1;
        }
        if (i < 2) {
            (*p)++;
        }
        if (strcmp(dims[i], "*") != 0 &&
            gen_name_check(dims[i], i == 0, errstr, errstr_size) < 0) {
            return -1;
        }
    }
    return 0;
}

static int incident_when(const char **p, struct gen_incident *inc, char *errstr,
                         size_t errstr_size)
{
    char part[64];

    if (take_part(p, "+*", part, sizeof(part)) < 0 ||
        tstamp_parse_duration(part, &inc->offset_ms) < 0) {
        snprintf(errstr, errstr_size,
                 "expected @OFFSET+DURATION with durations like 30s, 5m, 1h");
        return -1;
    }
    if (**p != '+') {
        return 0; /* from OFFSET to the end */
    }
    (*p)++;
    if (take_part(p, "*", part, sizeof(part)) < 0 ||
        tstamp_parse_duration(part, &inc->duration_ms) < 0 ||
        inc->duration_ms <= 0) {
        snprintf(errstr, errstr_size,
                 "expected a DURATION > 0 after '+', like 10m");
        return -1;
    }
    return 0;
}

int gen_incident_parse(const char *spec, struct gen_incident *inc, char *errstr,
                       size_t errstr_size)
{
    const char *p = strchr(spec, ':');
    char *end;

    memset(inc, 0, sizeof(*inc));
    inc->duration_ms = INT64_MAX;
    inc->factor = 10.0;
    if (p != NULL && (size_t)(p - spec) == 10 &&
        strncmp(spec, "wait-spike", 10) == 0) {
        inc->kind = GEN_WAIT_SPIKE;
    } else if (p != NULL && (size_t)(p - spec) == 15 &&
               strncmp(spec, "detractor-surge", 15) == 0) {
        inc->kind = GEN_DETRACTOR_SURGE;
    } else {
        snprintf(errstr, errstr_size,
                 "expected wait-spike:... or detractor-surge:...");
        return -1;
    }
    p++;
    if (incident_where(&p, inc, errstr, errstr_size) < 0) {
        return -1;
    }
    if (*p == '@' && (p++, incident_when(&p, inc, errstr, errstr_size) < 0)) {
        return -1;
    }
    if (*p == '*' && inc->kind == GEN_DETRACTOR_SURGE) {
        snprintf(errstr, errstr_size, "a detractor-surge takes no *FACTOR");
        return -1;
    }
    if (*p == '*') {
        inc->factor = strtod(p + 1, &end);
        if (end == p + 1 || *end != '\0' || !(inc->factor > 0) ||
            inc->factor > 1e6) {
            snprintf(errstr, errstr_size,
                     "expected *FACTOR with a number > 0, like *10");
            return -1;
        }
        p = end;
    }
    if (*p != '\0') {
        snprintf(errstr, errstr_size, "unexpected '%s' at the end", p);
        return -1;
    }
    return 0;
}

/* ---- rendering ----------------------------------------------------------- */

static char *put_mem(char *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}

#define PUT_LIT(w, lit) put_mem((w), (lit), sizeof(lit) - 1)

static char *put_u64(char *w, uint64_t v)
{
    char tmp[24];
    int n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        *w++ = tmp[--n];
    }
    return w;
}

static char *put_2(char *w, unsigned v)
{
    w[0] = (char)('0' + v / 10);
    w[1] = (char)('0' + v % 10);
    return w + 2;
}

/* days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static char *put_date(struct gen *g, char *w, int64_t day)
{
    if (day != g->day_cached) {
        int64_t y;
        unsigned m, d;
        civil_from_days(day, &y, &m, &d);
        put_2(put_2(g->day_text, (unsigned)(y / 100)), (unsigned)(y % 100));
        g->day_text[4] = '-';
        put_2(g->day_text + 5, m);
        g->day_text[7] = '-';
        put_2(g->day_text + 8, d);
        g->day_cached = day;
    }
    return put_mem(w, g->day_text, 10);
}

/* Producers' timestamp styles, chosen per session: {offset minutes, fraction
 * digits (-1: as few as needed), 'Z' when the offset is 0}; the rest of the
 * 20 styles send epoch milliseconds. */
static const struct {
    int16_t off;
    int8_t digits;
    int8_t zulu;
} styles[] = {
    {0, 3, 1},    {0, 3, 1},    {0, 3, 1},   {0, 3, 1},   {0, 3, 1},
    {0, 3, 1},    {0, 3, 1},    {0, 3, 1},   {0, 3, 1},   {0, 3, 1},
    {120, 3, 0},  {-300, 3, 0}, {330, 6, 0}, {60, -1, 0}, {0, 6, 1},
    {-480, 9, 0}, {0, -1, 0},
};

#define STYLE_COUNT (sizeof(styles) / sizeof(styles[0]))

static char *put_time(struct gen *g, char *w, int64_t ms, unsigned style)
{
    int64_t local, day, rem;
    unsigned frac, off;

    /* Offsets could push the local year out of 0000..9999 at the extremes. */
    if (style >= STYLE_COUNT || ms < 86400000 ||
        ms > TSTAMP_MAX_MS - 86400000) {
        return put_u64(w, (uint64_t)ms);
    }
    local = ms + styles[style].off * 60000;
    day = local / 86400000;
    rem = local % 86400000;
    *w++ = '"';
    w = put_date(g, w, day);
    *w++ = 'T';
    w = put_2(w, (unsigned)(rem / 3600000));
    *w++ = ':';
    w = put_2(w, (unsigned)(rem / 60000 % 60));
    *w++ = ':';
    w = put_2(w, (unsigned)(rem / 1000 % 60));
    frac = (unsigned)(rem % 1000);
    if (styles[style].digits != -1 || frac != 0) {
        int digits = styles[style].digits;
        *w++ = '.';
        *w++ = (char)('0' + frac / 100);
        if (digits != -1 || frac % 100 != 0) {
            w = put_2(w, frac % 100);
            if (digits == -1 && w[-1] == '0') {
                w--;
            }
        }
        for (int i = 3; i < digits; i++) {
            *w++ = '0';
        }
    }
    if (styles[style].zulu) {
        *w++ = 'Z';
    } else {
        off = (unsigned)abs(styles[style].off);
        *w++ = styles[style].off < 0 ? '-' : '+';
        w = put_2(w, off / 60);
        *w++ = ':';
        w = put_2(w, off % 60);
    }
    *w++ = '"';
    return w;
}

static const char *const corr_field[] = {
    [GEN_K_CALL] = "\",\"call_id\":\"call-",
    [GEN_K_DM_FAST] = "\",\"conversation_id\":\"dm-",
    [GEN_K_DM_SLOW] = "\",\"conversation_id\":\"dm-",
    [GEN_K_TICKET] = "\",\"ticket_id\":\"tk-",
    [GEN_K_SURVEY] = NULL,
};

/* Writes the key of the event just rendered into g->key. */
static size_t render_key(struct gen *g, const struct gen_session *s,
                         const struct gen_step *st, uint64_t event_num)
{
    static const char *const prefix[] = {
        [GEN_K_CALL] = "call-",
        [GEN_K_DM_FAST] = "dm-",
        [GEN_K_DM_SLOW] = "dm-",
        [GEN_K_TICKET] = "tk-",
    };
    char *w = g->key;

    if (g->opt.unkeyed) {
        return 0;
    }
    if (st->score < 0 && s->kind != GEN_K_SURVEY) {
        w = put_mem(w, prefix[s->kind], strlen(prefix[s->kind]));
        w = put_mem(put_mem(w, g->run, g->run_len), "-", 1);
        w = put_u64(w, s->num);
    } else if (s->customer != 0) {
        w = put_u64(PUT_LIT(w, "cu-"), s->customer);
    } else {
        w = put_mem(PUT_LIT(w, "ev-"), g->run, g->run_len);
        w = put_u64(PUT_LIT(w, "-"), event_num);
    }
    return (size_t)(w - g->key);
}

static char *render_dims(struct gen *g, char *w, const struct gen_session *s)
{
    const struct gen_name *n = &g->model.tenants[s->tenant];

    w = put_mem(PUT_LIT(w, ",\"tenant\":\""), n->s, n->len);
    n = &g->model.channels[s->channel];
    w = put_mem(PUT_LIT(w, "\",\"channel\":\""), n->s, n->len);
    if (!(s->flags & GEN_F_NO_QUEUE)) {
        n = &g->model.queues[s->queue];
        w = put_mem(PUT_LIT(w, "\",\"queue\":\""), n->s, n->len);
    }
    return w;
}

/* The optional tail: ids, score, wait, opened_at, and now and then an
 * unknown field that consumers must ignore. */
static char *render_tail(struct gen *g, char *w, const struct gen_session *s,
                         const struct gen_step *st)
{
    static const char *const langs[] = {"en", "de", "fr", "es"};

    if (s->customer != 0) {
        w = put_u64(PUT_LIT(w, ",\"customer_id\":\"cu-"), s->customer);
        *w++ = '"';
    }
    if (s->agent != 0 && st->type != EV_CALL_QUEUED &&
        st->type != EV_DM_RECEIVED && st->score < 0 &&
        gen_rng_unit(&g->rng) < 0.85) {
        w = put_u64(PUT_LIT(w, ",\"agent_id\":\"ag-"), s->agent);
        *w++ = '"';
    }
    if (st->score >= 0) {
        w = put_u64(PUT_LIT(w, ",\"score\":"), (uint64_t)st->score);
    }
    if (st->wait_ms >= 0) {
        w = put_u64(PUT_LIT(w, ",\"wait_ms\":"), (uint64_t)st->wait_ms);
    }
    if (st->opened_ms >= 0) {
        w = put_time(g, PUT_LIT(w, ",\"opened_at\":"), st->opened_ms, s->tfmt);
    }
    if (gen_rng_next(&g->rng) % 12 == 0) {
        w = PUT_LIT(w, ",\"meta\":{\"sdk\":\"tpgen/1\",\"lang\":\"");
        w = put_mem(w, langs[s->num % 4], 2);
        w = PUT_LIT(w, "\"}");
    }
    *w++ = '}';
    return w;
}

static size_t render_event(struct gen *g, const struct gen_session *s,
                           const struct gen_step *st, int64_t stamp,
                           uint64_t event_num)
{
    const char *type = event_type_name(st->type);
    char *w = g->line;

    w = put_mem(PUT_LIT(w, "{\"event_id\":\"ev-"), g->run, g->run_len);
    w = put_u64(PUT_LIT(w, "-"), event_num);
    w = put_mem(PUT_LIT(w, "\",\"type\":\""), type, strlen(type));
    w = put_time(g, PUT_LIT(w, "\",\"occurred_at\":"), stamp, s->tfmt);
    w = render_dims(g, w, s);
    if (st->score < 0) {
        const char *f = corr_field[s->kind];
        w = put_mem(put_mem(w, f, strlen(f)), g->run, g->run_len);
        w = put_u64(PUT_LIT(w, "-"), s->num);
    }
    *w++ = '"';
    w = render_tail(g, w, s, st);
    return (size_t)(w - g->line);
}

/* ---- heap and pool ------------------------------------------------------- */

static int heap_push(struct gen *g, int64_t t, uint32_t s)
{
    uint32_t i;

    if (g->heap_len == g->heap_cap) {
        uint32_t cap = g->heap_cap ? 2 * g->heap_cap : 1024;
        struct heap_entry *h = realloc(g->heap, cap * sizeof(*h));
        if (h == NULL) {
            return -1;
        }
        g->heap = h;
        g->heap_cap = cap;
    }
    i = g->heap_len++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        if (g->heap[parent].t <= t) {
            break;
        }
        g->heap[i] = g->heap[parent];
        i = parent;
    }
    g->heap[i].t = t;
    g->heap[i].s = s;
    return 0;
}

static uint32_t heap_pop(struct gen *g)
{
    uint32_t top = g->heap[0].s, i = 0, n = --g->heap_len;
    struct heap_entry last = g->heap[n];

    for (;;) {
        uint32_t c = 4 * i + 1, best;
        if (c >= n) {
            break;
        }
        best = c;
        for (uint32_t k = c + 1; k < c + 4 && k < n; k++) {
            if (g->heap[k].t < g->heap[best].t) {
                best = k;
            }
        }
        if (g->heap[best].t >= last.t) {
            break;
        }
        g->heap[i] = g->heap[best];
        i = best;
    }
    g->heap[i] = last;
    return top;
}

/* Index of a free session slot, or UINT32_MAX when memory ran out. */
static uint32_t pool_take(struct gen *g)
{
    if (g->free_len > 0) {
        return g->free_list[--g->free_len];
    }
    if (g->pool_len == g->pool_cap) {
        uint32_t cap = g->pool_cap ? 2 * g->pool_cap : 1024;
        struct gen_session *p = realloc(g->pool, cap * sizeof(*p));
        uint32_t *f;
        if (p == NULL) {
            return UINT32_MAX;
        }
        g->pool = p;
        f = realloc(g->free_list, cap * sizeof(*f));
        if (f == NULL) {
            return UINT32_MAX;
        }
        g->free_list = f;
        g->pool_cap = cap;
    }
    return g->pool_len++;
}

/* ---- the stream ---------------------------------------------------------- */

static int check_options(const struct gen_options *o, char *errstr,
                         size_t errstr_size)
{
    if (o->n_tenants < 1 || o->n_tenants > GEN_LIST_MAX || o->n_channels < 1 ||
        o->n_channels > GEN_LIST_MAX || o->n_queues < 1 ||
        o->n_queues > GEN_LIST_MAX) {
        snprintf(errstr, errstr_size,
                 "tenants, channels and queues need 1..%d names each",
                 GEN_LIST_MAX);
        return -1;
    }
    if (o->n_incidents > GEN_INCIDENT_MAX) {
        snprintf(errstr, errstr_size, "at most %d incidents", GEN_INCIDENT_MAX);
        return -1;
    }
    if (o->span_ms <= 0 || !(o->events_per_ms > 0) || o->start_ms < 0 ||
        o->start_ms > TSTAMP_MAX_MS / 2) {
        snprintf(errstr, errstr_size,
                 "need a span > 0, a rate > 0 and a start in 1970..5000");
        return -1;
    }
    return 0;
}

static char *base36(char *w, uint64_t v)
{
    char tmp[16];
    int n = 0;

    do {
        tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
        v /= 36;
    } while (v != 0);
    while (n > 0) {
        *w++ = tmp[--n];
    }
    return w;
}

/* Mean gap to the next arrival. A steady stream leaves room for the
 * follow-up events it expects (never less than a tenth of the arrivals of a
 * stream without any). */
static double arrival_mean(const struct gen *g)
{
    double want = g->opt.events_per_ms, lam;

    if (!g->opt.steady) {
        return g->arrival_mean_ms;
    }
    lam = want - g->followup_rate;
    return 1.0 / (lam > 0.1 * want ? lam : 0.1 * want);
}

/* Decays the follow-up rate estimate to t and counts one more event. */
static void note_event(struct gen *g, int64_t t, int followup)
{
    if (t > g->followup_t) {
        g->followup_rate *= exp(-(double)(t - g->followup_t) / GEN_RATE_TAU_MS);
        g->followup_t = t;
    }
    if (followup) {
        g->followup_rate += 1.0 / GEN_RATE_TAU_MS;
    }
}

struct gen *gen_new(const struct gen_options *opt, char *errstr,
                    size_t errstr_size)
{
    struct gen *g;
    char *w;

    if (check_options(opt, errstr, errstr_size) < 0) {
        return NULL;
    }
    g = calloc(1, sizeof(*g));
    if (g == NULL || (g->line = malloc(GEN_LINE_MAX)) == NULL ||
        (opt->duplicates > 0 &&
         (g->ring = malloc(GEN_RING * sizeof(*g->ring))) == NULL)) {
        snprintf(errstr, errstr_size, "out of memory");
        gen_destroy(g);
        return NULL;
    }
    g->opt = *opt;
    gen_model_init(&g->model, opt);
    g->opt.tenants = g->opt.channels = g->opt.queues = NULL;
    g->opt.incidents = NULL;
    w = put_u64(g->run, opt->seed);
    w = base36(put_mem(w, "-", 1), (uint64_t)opt->start_ms);
    g->run_len = (size_t)(w - g->run);
    g->day_cached = -1;
    g->last_stamp = opt->start_ms;
    g->arrival_mean_ms = gen_model_pilot(&g->model, opt->seed, opt->span_ms) /
                         opt->events_per_ms;
    g->followup_t = opt->start_ms;
    gen_rng_seed(&g->rng, opt->seed);
    g->next_arrival = (double)opt->start_ms +
                      -arrival_mean(g) * log1p(-gen_rng_unit(&g->rng));
    return g;
}

void gen_destroy(struct gen *g)
{
    if (g == NULL) {
        return;
    }
    free(g->pool);
    free(g->free_list);
    free(g->heap);
    free(g->ring);
    free(g->line);
    free(g);
}

/* Valid events after which the k-th of n extra messages is due. */
static uint64_t extra_due(const struct gen *g, uint64_t k, uint64_t n)
{
    if (g->opt.count == 0) {
        return 1000 * (k + 1);
    }
    return (uint64_t)((double)(k + 1) * (double)g->opt.count / (double)(n + 1));
}

static int bad_due(const struct gen *g)
{
    return g->bad < g->opt.invalid &&
           g->valid >= extra_due(g, g->bad, g->opt.invalid);
}

static int dup_due(const struct gen *g)
{
    uint64_t at = extra_due(g, g->dups, g->opt.duplicates);

    return g->dups < g->opt.duplicates && g->valid >= (at < 1 ? 1 : at);
}

int64_t gen_next_time(const struct gen *g)
{
    int64_t t;

    if (bad_due(g) || dup_due(g)) {
        return g->last_stamp;
    }
    if (g->opt.count != 0 && g->valid >= g->opt.count) {
        return INT64_MAX;
    }
    t = (int64_t)g->next_arrival;
    if (g->heap_len > 0 && g->heap[0].t < t) {
        t = g->heap[0].t;
    }
    return t;
}

static void emit_duplicate(struct gen *g, struct gen_msg *msg)
{
    uint64_t back_max =
        g->ring_fill < GEN_DUP_BACK ? g->ring_fill : GEN_DUP_BACK;
    uint64_t back = 1 + gen_rng_next(&g->rng) % back_max;
    const struct ring_slot *slot = &g->ring[(g->ring_fill - back) % GEN_RING];

    msg->kind = GEN_MSG_DUPLICATE;
    msg->data = slot->data;
    msg->len = slot->len;
    msg->key = slot->key;
    msg->key_len = slot->key_len;
    msg->time_ms = g->last_stamp;
    g->dups++;
}

static void emit_bad(struct gen *g, struct gen_msg *msg)
{
    struct gen_bad_ctx ctx = {
        .run = g->run,
        .tenant = g->model.tenants[g->bad % g->opt.n_tenants].s,
        .channel = g->model.channels[g->bad % g->opt.n_channels].s,
        .queue = g->model.queues[0].s,
        .stamp_ms = g->last_stamp,
    };

    msg->kind = GEN_MSG_INVALID;
    msg->len = gen_bad_render(g->bad, &ctx, g->line, GEN_LINE_MAX, g->key,
                              sizeof(g->key), &msg->key_len);
    msg->data = g->line;
    msg->key = g->key;
    if (g->opt.unkeyed) {
        msg->key_len = 0;
    }
    msg->time_ms = g->last_stamp;
    g->bad++;
}

/* The session whose event is due next: a new arrival or the heap's top.
 * Returns UINT32_MAX when memory ran out. */
static uint32_t next_session(struct gen *g)
{
    uint32_t i;

    if (g->heap_len > 0 && g->heap[0].t < (int64_t)g->next_arrival) {
        if (g->opt.steady) {
            note_event(g, g->heap[0].t, 1);
        }
        return heap_pop(g);
    }
    if (g->opt.steady) {
        note_event(g, (int64_t)g->next_arrival, 0);
    }
    i = pool_take(g);
    if (i == UINT32_MAX) {
        return i;
    }
    gen_model_start(&g->model, &g->rng, &g->pool[i], ++g->sessions,
                    (int64_t)g->next_arrival);
    g->open++;
    g->next_arrival += -arrival_mean(g) * log1p(-gen_rng_unit(&g->rng));
    return i;
}

static void keep_for_duplicates(struct gen *g, const struct gen_msg *msg)
{
    struct ring_slot *slot = &g->ring[g->ring_fill++ % GEN_RING];

    memcpy(slot->data, msg->data, msg->len);
    slot->len = msg->len;
    memcpy(slot->key, msg->key, msg->key_len);
    slot->key_len = msg->key_len;
}

int gen_next(struct gen *g, int64_t stamp_ms, struct gen_msg *msg)
{
    struct gen_session *s;
    struct gen_step st;
    uint32_t i;
    int64_t stamp;

    if (bad_due(g)) {
        emit_bad(g, msg);
        return 1;
    }
    if (dup_due(g)) {
        emit_duplicate(g, msg);
        return 1;
    }
    if (g->opt.count != 0 && g->valid >= g->opt.count) {
        return 0;
    }
    i = next_session(g);
    if (i == UINT32_MAX) {
        snprintf(g->err, sizeof(g->err), "out of memory for %llu sessions",
                 (unsigned long long)g->open);
        return -1;
    }
    s = &g->pool[i];
    stamp = stamp_ms == GEN_SCHEDULED ? s->t_next : stamp_ms;
    if (stamp < g->last_stamp) {
        stamp = g->last_stamp;
    }
    g->last_stamp = stamp;
    gen_model_step(&g->model, &g->rng, s, stamp, &st);
    g->open_waits += (uint64_t)(int64_t)st.wait_delta;
    g->events++;
    msg->kind = GEN_MSG_VALID;
    msg->len = render_event(g, s, &st, stamp, g->events);
    msg->data = g->line;
    msg->key_len = render_key(g, s, &st, g->events);
    msg->key = g->key;
    msg->time_ms = stamp;
    g->valid++;
    if (g->ring != NULL) {
        keep_for_duplicates(g, msg);
    }
    if (st.done) {
        g->free_list[g->free_len++] = i;
        g->open--;
    } else if (heap_push(g, s->t_next, i) < 0) {
        snprintf(g->err, sizeof(g->err), "out of memory for the event heap");
        return -1;
    }
    return 1;
}

const char *gen_error(const struct gen *g)
{
    return g->err;
}

void gen_get_stats(const struct gen *g, struct gen_stats *st)
{
    st->valid = g->valid;
    st->duplicates = g->dups;
    st->invalid = g->bad;
    st->sessions = g->sessions;
    st->open = g->open;
    st->open_waits = g->open_waits;
}
