/* SPDX-License-Identifier: Apache-2.0 */
/* gen_model: tpgen's session model: where sessions arrive, how long they wait. */
#include "gen_model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/*
 * All times in ms; waits are lognormal (median, sigma):
 *
 *   phone/voice/call  call.queued, then after the queue wait (15 s, 0.8)
 *                     call.answered (~85 %), call.abandoned (~10 %) or a
 *                     call.ended while still queued (~5 %); call.ended after
 *                     the talk (4 min) or right after the abandon.
 *   chat/webchat      dm.received, maybe more dm.received, dm.replied after a
 *                     first-response wait of (40 s, 1.0); the customer writes
 *                     back in about a third of the conversations (a new wait).
 *   email/mail        ticket.opened, ticket.replied (1 h, 1.0), maybe more
 *                     replies, ticket.closed; ~8 % are reopened and closed
 *                     again.
 *   any other         DMs like chat, first response (4 min, 1.0): whatsapp,
 *                     instagram, sms, ...
 *
 * Some sessions end in a survey (NPS mostly 7-10, CSAT mostly 4-5); 2 % of
 * the arrivals are a lone survey (a relationship NPS). A wait-spike incident
 * multiplies the waits that start inside it and raises the abandon rate to
 * 10 % x sqrt(factor) (at most 50 %); a detractor surge swaps the NPS score
 * distribution for one that is mostly 0-6. A session's customer_id, its
 * agent and its producer's timestamp style stay the same across its events.
 */

#define GEN_PILOT_SESSIONS 4000
#define GEN_CUSTOMERS 200000
#define GEN_PI 3.14159265358979323846

enum state {
    S_CALL_QUEUED,
    S_CALL_ANSWERED,
    S_CALL_ABANDONED,
    S_CALL_ENDED,
    S_DM_RECEIVED,
    S_DM_MORE,
    S_DM_REPLIED,
    S_TICKET_OPENED,
    S_TICKET_REPLIED,
    S_TICKET_CLOSED,
    S_TICKET_REOPENED,
    S_SURVEY
};

/* ---- random numbers ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));

    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

void gen_rng_seed(struct gen_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&seed);
    }
    r->spare_ok = 0;
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
uint64_t gen_rng_next(struct gen_rng *r)
{
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double gen_rng_unit(struct gen_rng *r)
{
    return (double)(gen_rng_next(r) >> 11) * 0x1.0p-53;
}

static unsigned rng_below(struct gen_rng *r, unsigned n)
{
    return (unsigned)(gen_rng_unit(r) * n);
}

static double rng_normal(struct gen_rng *r)
{
    double u, v, rad;

    if (r->spare_ok) {
        r->spare_ok = 0;
        return r->spare;
    }
    u = 1.0 - gen_rng_unit(r); /* (0, 1] */
    v = gen_rng_unit(r);
    rad = sqrt(-2.0 * log(u));
    r->spare = rad * sin(2.0 * GEN_PI * v);
    r->spare_ok = 1;
    return rad * cos(2.0 * GEN_PI * v);
}

static int64_t rng_lognormal(struct gen_rng *r, double median, double sigma)
{
    double v = median * exp(sigma * rng_normal(r));

    return v > 1e12 ? (int64_t)1e12 : (int64_t)v;
}

/* Index into a cumulative weight table of n entries. */
static unsigned rng_pick(struct gen_rng *r, const double *cum, size_t n)
{
    double u = gen_rng_unit(r);

    for (size_t i = 0; i + 1 < n; i++) {
        if (u < cum[i]) {
            return (unsigned)i;
        }
    }
    return (unsigned)(n - 1);
}

/* ---- the session model --------------------------------------------------- */

/* Cumulative score distributions. */
static const double nps_normal[11] = {0.02, 0.03, 0.04, 0.06, 0.08, 0.12,
                                      0.17, 0.27, 0.45, 0.70, 1.0};
static const double nps_surge[11] = {0.10, 0.16, 0.23, 0.33, 0.45, 0.60,
                                     0.75, 0.85, 0.92, 0.97, 1.0};
static const double csat_dist[5] = {0.05, 0.12, 0.25, 0.60, 1.0};
static const double ces_dist[7] = {0.03, 0.08, 0.16, 0.30, 0.55, 0.82, 1.0};

static int incident_hits(const struct gen_model *m,
                         const struct gen_incident *inc,
                         const struct gen_session *s, int64_t t)
{
    int64_t from = m->start_ms + inc->offset_ms;

    if (t < from ||
        (inc->duration_ms != INT64_MAX && t - from >= inc->duration_ms)) {
        return 0;
    }
    return (inc->tenant[0] == '*' ||
            strcmp(inc->tenant, m->tenants[s->tenant].s) == 0) &&
           (inc->channel[0] == '*' ||
            strcmp(inc->channel, m->channels[s->channel].s) == 0) &&
           (inc->queue[0] == '*' ||
            strcmp(inc->queue, m->queues[s->queue].s) == 0);
}

/* Product of the wait-spike factors over a wait starting at t. */
static double wait_factor(const struct gen_model *m,
                          const struct gen_session *s, int64_t t)
{
    double f = 1.0;

    for (size_t i = 0; i < m->n_incidents; i++) {
        if (m->incidents[i].kind == GEN_WAIT_SPIKE &&
            incident_hits(m, &m->incidents[i], s, t)) {
            f *= m->incidents[i].factor;
        }
    }
    return f;
}

static int detractor_surge(const struct gen_model *m,
                           const struct gen_session *s, int64_t t)
{
    for (size_t i = 0; i < m->n_incidents; i++) {
        if (m->incidents[i].kind == GEN_DETRACTOR_SURGE &&
            incident_hits(m, &m->incidents[i], s, t)) {
            return 1;
        }
    }
    return 0;
}

static void wait_open(struct gen_session *s, int64_t stamp,
                      struct gen_step *out)
{
    if (!(s->flags & GEN_F_WAITING)) {
        s->flags |= GEN_F_WAITING;
        s->t_wait = stamp;
        out->wait_delta = 1;
    }
}

/* Closes the open wait; gives wait_ms with probability p. */
static void wait_close(struct gen_rng *r, struct gen_session *s, int64_t stamp,
                       double p, struct gen_step *out)
{
    if (s->flags & GEN_F_WAITING) {
        s->flags &= (uint8_t)~GEN_F_WAITING;
        out->wait_delta = -1;
        if (gen_rng_unit(r) < p) {
            out->wait_ms = stamp - s->t_wait;
        }
    }
}

static void assign_agent(struct gen_rng *r, struct gen_session *s)
{
    if (s->agent == 0) {
        double u = gen_rng_unit(r);
        s->agent = (uint8_t)(1 + (unsigned)(40.0 * u * u));
    }
}

/* The session ends, or a survey follows after a delay. */
static void maybe_survey(struct gen_rng *r, struct gen_session *s,
                         int64_t stamp, double p, const double mix[2],
                         double median, struct gen_step *out)
{
    double u;

    if (gen_rng_unit(r) >= p) {
        out->done = 1;
        return;
    }
    u = gen_rng_unit(r);
    s->survey = (uint8_t)(u < mix[0]   ? EV_SURVEY_NPS
                          : u < mix[1] ? EV_SURVEY_CSAT
                                       : EV_SURVEY_CES);
    if (s->customer == 0 && gen_rng_unit(r) < 0.6) {
        s->customer = 1 + rng_below(r, GEN_CUSTOMERS);
    }
    s->state = S_SURVEY;
    s->t_next = stamp + rng_lognormal(r, median, 1.0);
}

static void step_call(const struct gen_model *m, struct gen_rng *r,
                      struct gen_session *s, int64_t t, struct gen_step *out)
{
    static const double mix[2] = {0.5, 0.9};
    double f, p_abandon, u;
    int64_t w;

    switch (s->state) {
    case S_CALL_QUEUED:
        out->type = EV_CALL_QUEUED;
        wait_open(s, t, out);
        f = wait_factor(m, s, t);
        w = rng_lognormal(r, 15000.0 * f, 0.8);
        p_abandon = fmin(0.5, 0.10 * sqrt(f));
        u = gen_rng_unit(r);
        if (u < 0.05) {
            s->state = S_CALL_ENDED;
            s->t_next =
                t + (int64_t)((double)w * (0.2 + 0.6 * gen_rng_unit(r)));
        } else if (u < 0.05 + p_abandon) {
            s->state = S_CALL_ABANDONED;
            s->t_next =
                t + (int64_t)((double)w * (0.2 + 0.7 * gen_rng_unit(r)));
        } else {
            s->state = S_CALL_ANSWERED;
            s->t_next = t + w;
        }
        return;
    case S_CALL_ANSWERED:
        out->type = EV_CALL_ANSWERED;
        wait_close(r, s, t, 0.2, out);
        assign_agent(r, s);
        s->flags |= GEN_F_ANSWERED;
        s->state = S_CALL_ENDED;
        s->t_next = t + rng_lognormal(r, 240000.0, 0.7);
        return;
    case S_CALL_ABANDONED:
        out->type = EV_CALL_ABANDONED;
        wait_close(r, s, t, 0.2, out);
        s->state = S_CALL_ENDED;
        s->t_next = t + rng_below(r, 1500);
        return;
    default:
        out->type = EV_CALL_ENDED;
        wait_close(r, s, t, 0.0, out);
        if (s->flags & GEN_F_ANSWERED) {
            maybe_survey(r, s, t, 0.3, mix, 180000.0, out);
        } else {
            out->done = 1;
        }
        return;
    }
}

/* More customer messages may come in before the reply. */
static void dm_schedule(struct gen_rng *r, struct gen_session *s, int64_t t)
{
    double median = s->kind == GEN_K_DM_FAST ? 8000.0 : 30000.0;

    if (gen_rng_unit(r) < 0.3) {
        int64_t next = t + rng_lognormal(r, median, 0.8);
        if (next < s->t_reply) {
            s->state = S_DM_MORE;
            s->t_next = next;
            return;
        }
    }
    s->state = S_DM_REPLIED;
    s->t_next = s->t_reply > t ? s->t_reply : t;
}

static void step_dm(const struct gen_model *m, struct gen_rng *r,
                    struct gen_session *s, int64_t t, struct gen_step *out)
{
    static const double mix[2] = {0.3, 0.9};
    int fast = s->kind == GEN_K_DM_FAST;

    switch (s->state) {
    case S_DM_RECEIVED:
        out->type = EV_DM_RECEIVED;
        wait_open(s, t, out);
        s->t_reply =
            t + rng_lognormal(
                    r, (fast ? 40000.0 : 240000.0) * wait_factor(m, s, t), 1.0);
        dm_schedule(r, s, t);
        return;
    case S_DM_MORE:
        out->type = EV_DM_RECEIVED;
        dm_schedule(r, s, t);
        return;
    default:
        out->type = EV_DM_REPLIED;
        wait_close(r, s, t, 0.15, out);
        assign_agent(r, s);
        s->n++;
        if (s->n < 4 && gen_rng_unit(r) < 0.35) {
            s->state = S_DM_RECEIVED;
            s->t_next = t + rng_lognormal(r, fast ? 60000.0 : 600000.0, 1.0);
        } else {
            maybe_survey(r, s, t, 0.2, mix, 120000.0, out);
        }
        return;
    }
}

static void step_ticket(const struct gen_model *m, struct gen_rng *r,
                        struct gen_session *s, int64_t t, struct gen_step *out)
{
    static const double mix[2] = {0.2, 0.65};

    switch (s->state) {
    case S_TICKET_OPENED:
    case S_TICKET_REOPENED:
        out->type =
            s->state == S_TICKET_OPENED ? EV_TICKET_OPENED : EV_TICKET_REOPENED;
        s->t_cycle = t;
        if (s->state == S_TICKET_OPENED) {
            wait_open(s, t, out);
            s->t_next =
                t + rng_lognormal(r, 3600000.0 * wait_factor(m, s, t), 1.0);
        } else {
            s->n = 2; /* one more reply, then closed */
            s->t_next = t + rng_lognormal(r, 3600000.0, 1.0);
        }
        s->state = S_TICKET_REPLIED;
        return;
    case S_TICKET_REPLIED:
        out->type = EV_TICKET_REPLIED;
        wait_close(r, s, t, 0.1, out);
        assign_agent(r, s);
        s->n++;
        if (s->n < 3 && gen_rng_unit(r) < 0.3) {
            s->t_next = t + rng_lognormal(r, 7200000.0, 1.0);
        } else {
            s->state = S_TICKET_CLOSED;
            s->t_next = t + rng_lognormal(r, 1800000.0, 1.0);
        }
        return;
    default:
        out->type = EV_TICKET_CLOSED;
        if (gen_rng_unit(r) < 0.3) {
            out->opened_ms = s->t_cycle;
        }
        if (!(s->flags & GEN_F_REOPENED) && gen_rng_unit(r) < 0.08) {
            s->flags |= GEN_F_REOPENED;
            s->state = S_TICKET_REOPENED;
            s->t_next = t + rng_lognormal(r, 6 * 3600000.0, 1.0);
        } else {
            maybe_survey(r, s, t, 0.25, mix, 1800000.0, out);
        }
        return;
    }
}

static void step_survey(const struct gen_model *m, struct gen_rng *r,
                        struct gen_session *s, int64_t t, struct gen_step *out)
{
    out->type = (enum event_type)s->survey;
    switch (out->type) {
    case EV_SURVEY_NPS:
        out->score = (int)rng_pick(
            r, detractor_surge(m, s, t) ? nps_surge : nps_normal, 11);
        break;
    case EV_SURVEY_CSAT:
        out->score = 1 + (int)rng_pick(r, csat_dist, 5);
        break;
    default:
        out->score = 1 + (int)rng_pick(r, ces_dist, 7);
        break;
    }
    out->done = 1;
}

/* Emits the session's due event at stamp t and schedules the next one. */
void gen_model_step(const struct gen_model *m, struct gen_rng *r,
                    struct gen_session *s, int64_t t, struct gen_step *out)
{
    out->score = -1;
    out->wait_ms = -1;
    out->opened_ms = -1;
    out->wait_delta = 0;
    out->done = 0;
    if (s->state == S_SURVEY) {
        step_survey(m, r, s, t, out);
    } else if (s->kind == GEN_K_CALL) {
        step_call(m, r, s, t, out);
    } else if (s->kind == GEN_K_TICKET) {
        step_ticket(m, r, s, t, out);
    } else {
        step_dm(m, r, s, t, out);
    }
}

/* A new session arriving at t (its first event is due at t). */
void gen_model_start(const struct gen_model *m, struct gen_rng *r,
                     struct gen_session *s, uint64_t num, int64_t t)
{
    static const double customer_p[] = {[GEN_K_CALL] = 0.6,
                                        [GEN_K_DM_FAST] = 0.5,
                                        [GEN_K_DM_SLOW] = 0.7,
                                        [GEN_K_TICKET] = 0.7,
                                        [GEN_K_SURVEY] = 0.9};
    static const uint8_t first[] = {[GEN_K_CALL] = S_CALL_QUEUED,
                                    [GEN_K_DM_FAST] = S_DM_RECEIVED,
                                    [GEN_K_DM_SLOW] = S_DM_RECEIVED,
                                    [GEN_K_TICKET] = S_TICKET_OPENED,
                                    [GEN_K_SURVEY] = S_SURVEY};

    memset(s, 0, sizeof(*s));
    s->num = num;
    s->t_next = t;
    s->tenant = (uint8_t)rng_pick(r, m->w_tenant, m->n_tenants);
    s->channel = (uint8_t)rng_pick(r, m->w_channel, m->n_channels);
    s->queue = (uint8_t)rng_pick(r, m->w_queue, m->n_queues);
    s->kind =
        gen_rng_unit(r) < 0.02 ? GEN_K_SURVEY : m->channel_kind[s->channel];
    s->state = first[s->kind];
    s->survey = gen_rng_unit(r) < 0.8 ? EV_SURVEY_NPS : EV_SURVEY_CSAT;
    if (gen_rng_unit(r) < customer_p[s->kind]) {
        s->customer = 1 + rng_below(r, GEN_CUSTOMERS);
    }
    if (strcmp(m->queues[s->queue].s, "default") == 0 &&
        gen_rng_unit(r) < 0.5) {
        s->flags |= GEN_F_NO_QUEUE;
    }
    s->tfmt = (uint8_t)rng_below(r, 20);
}

double gen_model_pilot(const struct gen_model *m, uint64_t seed,
                       int64_t span_ms)
{
    struct gen_rng r;
    struct gen_session s;
    struct gen_step st;
    int64_t end = m->start_ms + span_ms;
    uint64_t total = 0;

    gen_rng_seed(&r, seed ^ UINT64_C(0x5DEECE66D));
    for (int i = 0; i < GEN_PILOT_SESSIONS; i++) {
        int64_t t = m->start_ms +
                    (int64_t)((double)span_ms * (i + 0.5) / GEN_PILOT_SESSIONS);
        gen_model_start(m, &r, &s, 0, t);
        do {
            t = s.t_next;
            gen_model_step(m, &r, &s, t, &st);
            total++;
        } while (!st.done && s.t_next <= end);
    }
    return (double)total / GEN_PILOT_SESSIONS;
}

static void copy_names(struct gen_name *dst, double *cum,
                       const char *const *src, size_t n)
{
    double total = 0, acc = 0;

    for (size_t i = 0; i < n; i++) {
        snprintf(dst[i].s, sizeof(dst[i].s), "%s", src[i]);
        dst[i].len = strlen(dst[i].s);
        total += 1.0 / (double)(i + 1);
    }
    for (size_t i = 0; i < n; i++) {
        acc += 1.0 / (double)(i + 1) / total;
        cum[i] = i + 1 == n ? 1.0 : acc;
    }
}

static uint8_t kind_of_channel(const char *c)
{
    if (strcmp(c, "phone") == 0 || strcmp(c, "voice") == 0 ||
        strcmp(c, "call") == 0) {
        return GEN_K_CALL;
    }
    if (strcmp(c, "email") == 0 || strcmp(c, "mail") == 0) {
        return GEN_K_TICKET;
    }
    if (strcmp(c, "chat") == 0 || strcmp(c, "webchat") == 0 ||
        strcmp(c, "livechat") == 0) {
        return GEN_K_DM_FAST;
    }
    return GEN_K_DM_SLOW;
}

void gen_model_init(struct gen_model *m, const struct gen_options *opt)
{
    memset(m, 0, sizeof(*m));
    m->start_ms = opt->start_ms;
    m->n_tenants = opt->n_tenants;
    m->n_channels = opt->n_channels;
    m->n_queues = opt->n_queues;
    copy_names(m->tenants, m->w_tenant, opt->tenants, opt->n_tenants);
    copy_names(m->channels, m->w_channel, opt->channels, opt->n_channels);
    copy_names(m->queues, m->w_queue, opt->queues, opt->n_queues);
    for (size_t i = 0; i < opt->n_channels; i++) {
        m->channel_kind[i] = kind_of_channel(m->channels[i].s);
    }
    m->n_incidents = opt->n_incidents;
    if (opt->n_incidents > 0) {
        memcpy(m->incidents, opt->incidents,
               opt->n_incidents * sizeof(*opt->incidents));
    }
}
