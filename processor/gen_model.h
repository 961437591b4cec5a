/* SPDX-License-Identifier: Apache-2.0 */
/* gen_model: how one synthetic session unfolds: dimensions, waits, outcome. */
#ifndef TP_GEN_MODEL_H
#define TP_GEN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "gen.h"

/* The model's random numbers: xoshiro256** seeded through splitmix64. */
struct gen_rng {
    uint64_t s[4];
    double spare; /* Box-Muller's second normal */
    int spare_ok;
};

void gen_rng_seed(struct gen_rng *r, uint64_t seed);
uint64_t gen_rng_next(struct gen_rng *r);
/* Uniform in [0, 1). */
double gen_rng_unit(struct gen_rng *r);

/* What a session is, chosen by its channel (2 % are lone surveys). */
enum gen_kind {
    GEN_K_CALL,    /* phone, voice, call */
    GEN_K_DM_FAST, /* chat, webchat, livechat: replies in about 40 s */
    GEN_K_DM_SLOW, /* any other channel: replies in about 4 min */
    GEN_K_TICKET,  /* email, mail */
    GEN_K_SURVEY
};

enum {
    GEN_F_WAITING = 1,  /* a wait is open */
    GEN_F_ANSWERED = 2, /* an agent took the call */
    GEN_F_REOPENED = 4,
    GEN_F_NO_QUEUE = 8 /* the producer leaves out "queue": "default" */
};

/* One session: 56 bytes, the only memory a stream holds per open session. */
struct gen_session {
    uint64_t num;      /* correlation id number */
    int64_t t_next;    /* when the next event is due */
    int64_t t_wait;    /* stamp the open wait started */
    int64_t t_cycle;   /* ticket: stamp of ticket.opened / ticket.reopened */
    int64_t t_reply;   /* DM: when the agent's reply is due */
    uint32_t customer; /* 0: unknown customer */
    uint8_t kind;      /* enum gen_kind */
    uint8_t state;     /* the step due next (gen_model.c) */
    uint8_t tenant, channel, queue; /* indices into the model's names */
    uint8_t agent;                  /* 0: none yet */
    uint8_t n;                      /* DM rounds / ticket replies so far */
    uint8_t flags;                  /* GEN_F_* */
    uint8_t survey;                 /* enum event_type of the closing survey */
    uint8_t tfmt; /* timestamp style of this session's producer */
};

/* What one step of a session emits. */
struct gen_step {
    enum event_type type;
    int score;         /* surveys, else -1 */
    int64_t wait_ms;   /* -1: not given */
    int64_t opened_ms; /* -1: not given */
    int wait_delta;    /* +1 a wait opened, -1 one closed, else 0 */
    int done;          /* the session has no further event */
};

struct gen_name {
    char s[65];
    size_t len;
};

/* What the model reads: the stream start, the names with their cumulative
 * Zipf-like weights, each channel's kind, and the incidents. Embedded:
 * gen_model_init, nothing to release. */
struct gen_model {
    int64_t start_ms;
    struct gen_name tenants[GEN_LIST_MAX], channels[GEN_LIST_MAX],
        queues[GEN_LIST_MAX];
    size_t n_tenants, n_channels, n_queues;
    double w_tenant[GEN_LIST_MAX], w_channel[GEN_LIST_MAX],
        w_queue[GEN_LIST_MAX];
    uint8_t channel_kind[GEN_LIST_MAX];
    struct gen_incident incidents[GEN_INCIDENT_MAX];
    size_t n_incidents;
};

/* Copies the names and incidents of opt (checked by the caller: 1 to
 * GEN_LIST_MAX names each, at most GEN_INCIDENT_MAX incidents). */
void gen_model_init(struct gen_model *m, const struct gen_options *opt);

/* A new session numbered num, its first event due at t. */
void gen_model_start(const struct gen_model *m, struct gen_rng *r,
                     struct gen_session *s, uint64_t num, int64_t t);

/* Emits the session's due event, stamped t, into *out and schedules the next
 * one in s->t_next (>= t) unless out->done. */
void gen_model_step(const struct gen_model *m, struct gen_rng *r,
                    struct gen_session *s, int64_t t, struct gen_step *out);

/* Mean number of events a session started uniformly inside [start, start +
 * span_ms] emits before the span ends; deterministic for a seed. */
double gen_model_pilot(const struct gen_model *m, uint64_t seed,
                       int64_t span_ms);

#endif
