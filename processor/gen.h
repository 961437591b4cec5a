/* SPDX-License-Identifier: Apache-2.0 */
/* gen: tpgen's seeded generator of realistic touchpoint event streams. */
#ifndef TP_GEN_H
#define TP_GEN_H

#include <stddef.h>
#include <stdint.h>

/*
 * A generator turns a seed and a few options into a stream of messages, in
 * nondecreasing event time:
 *
 *  - Sessions (a call, a DM conversation, an email ticket, or a lone survey)
 *    arrive as a Poisson process. Each picks a tenant, channel and queue with
 *    Zipf-like weights (the first name of each list is the most frequent) and
 *    unfolds step by step; each session's next event sits in a min-heap, so
 *    memory grows with the sessions still open, not with the event count.
 *  - The arrival rate is sized so that `count` valid events fall in `span`:
 *    a deterministic pilot run of the session model measures how many events
 *    a session started inside the span contributes before the span ends.
 *    A steady stream (a live one) instead sets each arrival gap so that
 *    arrivals make up the difference between the wanted event rate and the
 *    recent rate of follow-up events (an exponentially decaying count), so a
 *    live stream runs at its rate from the first second on.
 *  - Malformed messages and byte-identical duplicates are spread evenly
 *    through the valid ones.
 *
 * Nothing here does I/O. The same options give the same bytes (a steady
 * stream stamped with the wall clock excepted). The module's parts:
 * gen_model.{c,h} (the session model), gen_bad.{c,h} (malformed messages).
 */

#define GEN_LIST_MAX 64
#define GEN_INCIDENT_MAX 32

/* Stamp argument of gen_next: use each event's scheduled time. */
#define GEN_SCHEDULED INT64_MIN

/* The invalid messages cycle through these, in this order. */
enum gen_invalid_class {
    GEN_BAD_NOT_JSON,
    GEN_BAD_NOT_OBJECT,
    GEN_BAD_MISSING_FIELD,
    GEN_BAD_WRONG_TYPE,
    GEN_BAD_OUT_OF_RANGE,
    GEN_BAD_UNKNOWN_TYPE,
    GEN_BAD_CHARSET,
    GEN_BAD_TIMESTAMP,
    GEN_BAD_TOO_LARGE,
    GEN_BAD_RESERVED,
    GEN_BAD_CLASS_COUNT
};

enum gen_incident_kind { GEN_WAIT_SPIKE, GEN_DETRACTOR_SURGE };

/* One incident: where ("*" matches any value) and when, relative to the
 * stream start. */
struct gen_incident {
    enum gen_incident_kind kind;
    char tenant[65];
    char channel[33];
    char queue[33];
    int64_t offset_ms;
    int64_t duration_ms; /* INT64_MAX: to the end of the stream */
    double factor;       /* wait-spike multiplier */
};

/* Parses "wait-spike:T/C/Q[@OFFSET+DURATION][*FACTOR]" or
 * "detractor-surge:T/C/Q[@OFFSET+DURATION]" (spec is borrowed). Returns 0, or
 * -1 with a message naming what was expected. */
int gen_incident_parse(const char *spec, struct gen_incident *inc, char *errstr,
                       size_t errstr_size);

/* Checks a tenant name (is_tenant) or a channel/queue name against the
 * contract's charset and the reserved "_all"/"_other". Returns 0 or -1. */
int gen_name_check(const char *name, int is_tenant, char *errstr,
                   size_t errstr_size);

struct gen_options {
    uint64_t seed;
    int64_t start_ms;     /* event time of the stream start */
    int64_t span_ms;      /* the span the arrival rate is sized for */
    double events_per_ms; /* wanted valid events per ms over the span */
    uint64_t count;       /* valid events to emit; 0: no limit */
    uint64_t invalid;     /* malformed messages to mix in */
    uint64_t duplicates;  /* byte-identical re-emissions to mix in */
    int unkeyed;          /* every message gets an empty key */
    int steady;           /* live streams: hold events_per_ms at every
                             moment (arrivals fill in what the sessions'
                             later events leave), not just on average */
    /* Names, borrowed for the duration of gen_new (copied). */
    const char *const *tenants;
    size_t n_tenants;
    const char *const *channels;
    size_t n_channels;
    const char *const *queues;
    size_t n_queues;
    const struct gen_incident *incidents; /* borrowed, copied */
    size_t n_incidents;
};

enum gen_msg_kind { GEN_MSG_VALID, GEN_MSG_DUPLICATE, GEN_MSG_INVALID };

/* One message. data and key are borrowed from the generator and valid until
 * the next gen_next or gen_destroy; data holds no newline. */
struct gen_msg {
    enum gen_msg_kind kind;
    const char *data;
    size_t len;
    const char *key; /* key_len 0: no key */
    size_t key_len;
    int64_t time_ms; /* occurred_at of a valid event or duplicate */
};

struct gen_stats {
    uint64_t valid;
    uint64_t duplicates;
    uint64_t invalid;
    uint64_t sessions;   /* sessions started */
    uint64_t open;       /* sessions not finished */
    uint64_t open_waits; /* DMs, calls and tickets still waiting */
};

/* Validates the options and builds a generator. Returns a new generator, or
 * NULL with a message. */
struct gen *gen_new(const struct gen_options *opt, char *errstr,
                    size_t errstr_size);

/* Frees g; gen_destroy(NULL) is a no-op. */
void gen_destroy(struct gen *g);

/* Event time the next message is scheduled for; INT64_MAX when the stream is
 * complete. */
int64_t gen_next_time(const struct gen *g);

/* Produces the next message into *msg. stamp_ms is the occurred_at to use (a
 * live stream's wall clock; raised to keep the stream nondecreasing), or
 * GEN_SCHEDULED. Returns 1, 0 when the stream is complete, or -1 when memory
 * ran out (gen_error says so). */
int gen_next(struct gen *g, int64_t stamp_ms, struct gen_msg *msg);

/* Why gen_next failed; borrowed. */
const char *gen_error(const struct gen *g);

void gen_get_stats(const struct gen *g, struct gen_stats *st);

/* "not_json", "not_object", ... "reserved" (the _all/_other dimension). */
const char *gen_invalid_class_name(enum gen_invalid_class c);

#endif
