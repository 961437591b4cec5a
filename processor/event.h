/* SPDX-License-Identifier: Apache-2.0 */
/* event: the touchpoint event contract — validation and parsing of one message. */
#ifndef TP_EVENT_H
#define TP_EVENT_H

#include <stddef.h>
#include <stdint.h>

enum event_type {
    EV_DM_RECEIVED,
    EV_DM_REPLIED,
    EV_CALL_QUEUED,
    EV_CALL_ANSWERED,
    EV_CALL_ABANDONED,
    EV_CALL_ENDED,
    EV_TICKET_OPENED,
    EV_TICKET_REPLIED,
    EV_TICKET_CLOSED,
    EV_TICKET_REOPENED,
    EV_SURVEY_NPS,
    EV_SURVEY_CSAT,
    EV_SURVEY_CES,
    EV_TYPE_COUNT
};

/* Why a message was rejected; one Prometheus label value / DLQ header each. */
enum event_reject {
    REJ_TOO_LARGE,
    REJ_NOT_JSON,
    REJ_NOT_OBJECT,
    REJ_MISSING_FIELD,
    REJ_WRONG_TYPE,
    REJ_OUT_OF_RANGE,
    REJ_UNKNOWN_TYPE,
    REJ_BAD_CHARSET,
    REJ_BAD_TIMESTAMP,
    REJ_FUTURE,
    REJ_TENANT_LIMIT,
    REJ_COUNT
};

#define EVENT_ID_MAX 128
#define EVENT_TENANT_MAX 64
#define EVENT_DIM_MAX 32

/* Sentinels for absent optional numbers. */
#define EVENT_NO_WAIT (-1)
#define EVENT_NO_TIME INT64_MIN

/* One validated event. Strings are NUL-terminated copies (no pointer into the
 * message or into jansson survives event_parse). */
struct event {
    enum event_type type;
    int64_t occurred_ms;              /* epoch ms */
    char event_id[EVENT_ID_MAX + 1];
    char tenant[EVENT_TENANT_MAX + 1];
    char channel[EVENT_DIM_MAX + 1];
    char queue[EVENT_DIM_MAX + 1];    /* "default" when absent */
    char corr_id[EVENT_ID_MAX + 1];   /* conversation_id / call_id / ticket_id;
                                         "" for surveys */
    char customer_id[EVENT_ID_MAX + 1]; /* "" when absent */
    int score;                        /* surveys only, else -1 */
    int64_t wait_ms;                  /* EVENT_NO_WAIT when absent */
    int64_t opened_ms;                /* ticket.closed opened_at, else EVENT_NO_TIME */
};

/* Validation error: the class, the offending field ("" if none) and a human
 * sentence naming it, e.g. "score out of range 0..10 for survey.nps". */
struct event_error {
    enum event_reject reason;
    char field[32];
    char text[160];
};

/* Parses and fully validates one message of len bytes (not NUL-terminated).
 * Messages longer than max_bytes are rejected as REJ_TOO_LARGE without being
 * parsed. Returns 0 and fills *ev, or -1 and fills *err. buf is borrowed. */
int event_parse(const char *buf, size_t len, size_t max_bytes,
                struct event *ev, struct event_error *err);

/* "dm.received", ... ; NULL for an out-of-range value. */
const char *event_type_name(enum event_type type);

/* Looks a type name up; returns 0 and sets *type, or -1. */
int event_type_from_name(const char *name, enum event_type *type);

/* "too_large", "not_json", ... (the tp-error-class header values). */
const char *event_reject_name(enum event_reject reason);

#endif
