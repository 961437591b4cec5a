/* SPDX-License-Identifier: Apache-2.0 */
/* scan: validates one touchpoint message in a single pass, without allocating, exactly as event.c does with jansson. */

/*
 * Why this exists: jansson builds a tree of heap objects for every message
 * and frees it again, about 3.5 us per event, while the contract needs only
 * fourteen top-level values. scan_json_document() walks the bytes once,
 * checks that the whole document is JSON as jansson 2.14 understands it, and
 * keeps where the last value of each of the fourteen keys is (a "slot").
 * Then the contract is applied to the slots in exactly the order of
 * event.c's parse_object()/parse_typed(), with the same checks, so the first
 * error reported — and what *ev holds when it is reported — is the same.
 *
 * Agreement with the reference is not argued here but tested:
 * tests/unit/test_scan.c runs every stored case through both, and
 * tests/fuzz/fuzz_event_diff.c (libFuzzer) compares both on arbitrary
 * bytes. A change to event.c's rules must be made here too; the fuzzer says
 * so if it is not.
 */

#include "scan.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "scan_json.h"
#include "tstamp.h"

/* The longest string tstamp_parse_rfc3339() can accept:
 * "YYYY-MM-DDTHH:MM:SS.fffffffff+hh:mm". */
#define SCAN_TSTAMP_MAX 35

/* The longest type name ("ticket.reopened"). */
#define SCAN_TYPE_MAX 15

/* The contract's top-level keys; a slot holds the last value of each. */
enum slot_id {
    SLOT_EVENT_ID,
    SLOT_TYPE,
    SLOT_OCCURRED_AT,
    SLOT_TENANT,
    SLOT_CHANNEL,
    SLOT_QUEUE,
    SLOT_CONVERSATION_ID,
    SLOT_CALL_ID,
    SLOT_TICKET_ID,
    SLOT_CUSTOMER_ID,
    SLOT_AGENT_ID,
    SLOT_SCORE,
    SLOT_WAIT_MS,
    SLOT_OPENED_AT,
    SLOT_COUNT,
    SLOT_NONE = SLOT_COUNT
};

/* The key of each slot, and its length. */
#define SLOT_KEY(k)                                                            \
    {                                                                          \
        k, sizeof(k) - 1                                                       \
    }
static const struct scan_json_key slot_keys[SLOT_COUNT] = {
    [SLOT_EVENT_ID] = SLOT_KEY("event_id"),
    [SLOT_TYPE] = SLOT_KEY("type"),
    [SLOT_OCCURRED_AT] = SLOT_KEY("occurred_at"),
    [SLOT_TENANT] = SLOT_KEY("tenant"),
    [SLOT_CHANNEL] = SLOT_KEY("channel"),
    [SLOT_QUEUE] = SLOT_KEY("queue"),
    [SLOT_CONVERSATION_ID] = SLOT_KEY("conversation_id"),
    [SLOT_CALL_ID] = SLOT_KEY("call_id"),
    [SLOT_TICKET_ID] = SLOT_KEY("ticket_id"),
    [SLOT_CUSTOMER_ID] = SLOT_KEY("customer_id"),
    [SLOT_AGENT_ID] = SLOT_KEY("agent_id"),
    [SLOT_SCORE] = SLOT_KEY("score"),
    [SLOT_WAIT_MS] = SLOT_KEY("wait_ms"),
    [SLOT_OPENED_AT] = SLOT_KEY("opened_at"),
};

/* Each type's name (as event_type_name() spells it), the correlation id it
 * needs, its score range and whether it takes wait_ms: event.c's
 * type_table, with the name's length for a quick lookup. */
struct scan_type {
    const char *name;
    size_t len;
    enum slot_id corr;        /* SLOT_NONE for surveys */
    int score_min, score_max; /* score_max < 0: no score */
    bool takes_wait_ms;
};

#define TYPE_NAME(n) n, sizeof(n) - 1
static const struct scan_type scan_types[EV_TYPE_COUNT] = {
    [EV_DM_RECEIVED] = {TYPE_NAME("dm.received"), SLOT_CONVERSATION_ID, 0, -1,
                        false},
    [EV_DM_REPLIED] = {TYPE_NAME("dm.replied"), SLOT_CONVERSATION_ID, 0, -1,
                       true},
    [EV_CALL_QUEUED] = {TYPE_NAME("call.queued"), SLOT_CALL_ID, 0, -1, false},
    [EV_CALL_ANSWERED] = {TYPE_NAME("call.answered"), SLOT_CALL_ID, 0, -1,
                          true},
    [EV_CALL_ABANDONED] = {TYPE_NAME("call.abandoned"), SLOT_CALL_ID, 0, -1,
                           true},
    [EV_CALL_ENDED] = {TYPE_NAME("call.ended"), SLOT_CALL_ID, 0, -1, false},
    [EV_TICKET_OPENED] = {TYPE_NAME("ticket.opened"), SLOT_TICKET_ID, 0, -1,
                          false},
    [EV_TICKET_REPLIED] = {TYPE_NAME("ticket.replied"), SLOT_TICKET_ID, 0, -1,
                           true},
    [EV_TICKET_CLOSED] = {TYPE_NAME("ticket.closed"), SLOT_TICKET_ID, 0, -1,
                          false},
    [EV_TICKET_REOPENED] = {TYPE_NAME("ticket.reopened"), SLOT_TICKET_ID, 0, -1,
                            false},
    [EV_SURVEY_NPS] = {TYPE_NAME("survey.nps"), SLOT_NONE, 0, 10, false},
    [EV_SURVEY_CSAT] = {TYPE_NAME("survey.csat"), SLOT_NONE, 1, 5, false},
    [EV_SURVEY_CES] = {TYPE_NAME("survey.ces"), SLOT_NONE, 1, 7, false},
};

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
fail(struct event_error *err, enum event_reject reason, const char *field,
     const char *fmt, ...)
{
    va_list ap;

    err->reason = reason;
    snprintf(err->field, sizeof(err->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
    return -1;
}

/* Bit 1: [a-z0-9_-] (channel, queue); bit 2: [A-Za-z0-9_.-] (tenant). */
#define DIM_CHANNEL 1
#define DIM_TENANT 2

static unsigned char dim_class(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
        c == '-') {
        return DIM_CHANNEL | DIM_TENANT;
    }
    return (c >= 'A' && c <= 'Z') || c == '.' ? DIM_TENANT : 0;
}

/* event.c's get_string: 1 present, 0 absent and optional, -1 error. */
static int get_string(const struct scan_json_value *slot, enum slot_id id,
                      size_t max, bool required, char *dst,
                      struct event_error *err)
{
    const struct scan_json_value *v = &slot[id];
    const char *field = slot_keys[id].name;

    if (v->kind == SCAN_JSON_ABSENT) {
        if (required) {
            return fail(err, REJ_MISSING_FIELD, field,
                        "missing required field %s", field);
        }
        return 0;
    }
    if (v->kind != SCAN_JSON_STRING) {
        return fail(err, REJ_WRONG_TYPE, field, "%s must be a string", field);
    }
    if (v->len < 1 || v->len > max) {
        return fail(err, REJ_OUT_OF_RANGE, field,
                    "%s must be 1..%zu bytes long, got %zu", field, max,
                    v->len);
    }
    if (dst != NULL) {
        scan_json_copy(v, dst);
    }
    return 1;
}

/* event.c's check_dim on the copied value. */
static int check_dim(const char *value, const char *field, bool tenant,
                     struct event_error *err)
{
    unsigned char want = tenant ? DIM_TENANT : DIM_CHANNEL;

    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (!(dim_class(*p) & want)) {
            return fail(err, REJ_BAD_CHARSET, field,
                        "%s has characters outside %s", field,
                        tenant ? "[A-Za-z0-9_.-]" : "[a-z0-9_-]");
        }
    }
    if (!tenant && value[0] == '_' &&
        (strcmp(value, "_all") == 0 || strcmp(value, "_other") == 0)) {
        return fail(err, REJ_BAD_CHARSET, field,
                    "%s value %s is reserved for roll-ups", field, value);
    }
    return 0;
}

/* tstamp_parse_rfc3339 on a string value, unescaped when needed. */
static int parse_tstamp(const struct scan_json_value *v, int64_t *ms)
{
    char buf[SCAN_TSTAMP_MAX + 1];

    if (!v->escaped) {
        return tstamp_parse_rfc3339(v->raw, v->len, ms);
    }
    if (v->len > SCAN_TSTAMP_MAX) {
        return -1;
    }
    scan_json_copy(v, buf);
    return tstamp_parse_rfc3339(buf, v->len, ms);
}

/* event.c's get_time: RFC 3339 string with offset, or epoch ms. */
static int get_time(const struct scan_json_value *slot, enum slot_id id,
                    bool required, int64_t *ms, struct event_error *err)
{
    const struct scan_json_value *v = &slot[id];
    const char *field = slot_keys[id].name;

    if (v->kind == SCAN_JSON_ABSENT) {
        if (required) {
            return fail(err, REJ_MISSING_FIELD, field,
                        "missing required field %s", field);
        }
        return 0;
    }
    if (v->kind == SCAN_JSON_INTEGER) {
        if (v->integer < 0 || v->integer > TSTAMP_MAX_MS) {
            return fail(err, REJ_OUT_OF_RANGE, field,
                        "%s epoch ms out of range 0..%lld", field,
                        (long long)TSTAMP_MAX_MS);
        }
        *ms = v->integer;
        return 1;
    }
    if (v->kind != SCAN_JSON_STRING) {
        return fail(err, REJ_WRONG_TYPE, field,
                    "%s must be an RFC 3339 string or integer epoch ms", field);
    }
    if (parse_tstamp(v, ms) < 0) {
        return fail(err, REJ_BAD_TIMESTAMP, field,
                    "%s is not an RFC 3339 timestamp with offset "
                    "(1970..9999)",
                    field);
    }
    return 1;
}

/* event.c's get_int: an integer within [min, max]; 1, 0 (absent) or -1. */
static int get_int(const struct scan_json_value *slot, enum slot_id id,
                   bool required, int64_t min, int64_t max,
                   enum event_type type, int64_t *out, struct event_error *err)
{
    const struct scan_json_value *v = &slot[id];
    const char *field = slot_keys[id].name;

    if (v->kind == SCAN_JSON_ABSENT) {
        if (required) {
            return fail(err, REJ_MISSING_FIELD, field,
                        "missing required field %s for %s", field,
                        scan_types[type].name);
        }
        return 0;
    }
    if (v->kind != SCAN_JSON_INTEGER) {
        return fail(err, REJ_WRONG_TYPE, field, "%s must be an integer", field);
    }
    *out = v->integer;
    if (*out < min || *out > max) {
        if (max == INT64_MAX) {
            return fail(err, REJ_OUT_OF_RANGE, field,
                        "%s out of range, must be >= %lld", field,
                        (long long)min);
        }
        return fail(err, REJ_OUT_OF_RANGE, field,
                    "%s out of range %lld..%lld for %s", field, (long long)min,
                    (long long)max, scan_types[type].name);
    }
    return 1;
}

static int parse_type(const struct scan_json_value *slot, struct event *ev,
                      struct event_error *err)
{
    const struct scan_json_value *v = &slot[SLOT_TYPE];
    char name[SCAN_TYPE_MAX + 1];

    if (v->kind == SCAN_JSON_ABSENT) {
        return fail(err, REJ_MISSING_FIELD, "type",
                    "missing required field type");
    }
    if (v->kind != SCAN_JSON_STRING) {
        return fail(err, REJ_WRONG_TYPE, "type", "type must be a string");
    }
    /* Type names are at most 15 bytes; \u0000 cannot get this far. */
    if (v->len <= SCAN_TYPE_MAX) {
        scan_json_copy(v, name);
        for (int i = 0; i < EV_TYPE_COUNT; i++) {
            if (scan_types[i].len == v->len &&
                memcmp(scan_types[i].name, name, v->len) == 0) {
                ev->type = (enum event_type)i;
                return 0;
            }
        }
    }
    return fail(err, REJ_UNKNOWN_TYPE, "type",
                "type is not one of the 13 event types");
}

static int parse_dims(const struct scan_json_value *slot, struct event *ev,
                      struct event_error *err)
{
    if (get_string(slot, SLOT_TENANT, EVENT_TENANT_MAX, true, ev->tenant, err) <
            0 ||
        check_dim(ev->tenant, "tenant", true, err) < 0) {
        return -1;
    }
    if (get_string(slot, SLOT_CHANNEL, EVENT_DIM_MAX, true, ev->channel, err) <
            0 ||
        check_dim(ev->channel, "channel", false, err) < 0) {
        return -1;
    }
    switch (
        get_string(slot, SLOT_QUEUE, EVENT_DIM_MAX, false, ev->queue, err)) {
    case -1:
        return -1;
    case 0:
        strcpy(ev->queue, "default");
        return 0;
    default:
        return check_dim(ev->queue, "queue", false, err);
    }
}

/* Correlation id, customer_id, agent_id, score, wait_ms, opened_at. */
static int parse_typed(const struct scan_json_value *slot, struct event *ev,
                       struct event_error *err)
{
    const struct scan_type *st = &scan_types[ev->type];
    int64_t i;
    int rc;

    if (st->corr != SLOT_NONE &&
        get_string(slot, st->corr, EVENT_ID_MAX, true, ev->corr_id, err) < 0) {
        return -1;
    }
    if (get_string(slot, SLOT_CUSTOMER_ID, EVENT_ID_MAX, false, ev->customer_id,
                   err) < 0 ||
        get_string(slot, SLOT_AGENT_ID, EVENT_ID_MAX, false, NULL, err) < 0) {
        return -1;
    }
    if (st->score_max >= 0) {
        if (get_int(slot, SLOT_SCORE, true, st->score_min, st->score_max,
                    ev->type, &i, err) < 0) {
            return -1;
        }
        ev->score = (int)i;
    }
    if (st->takes_wait_ms) {
        rc =
            get_int(slot, SLOT_WAIT_MS, false, 0, INT64_MAX, ev->type, &i, err);
        if (rc < 0) {
            return -1;
        }
        if (rc > 0) {
            ev->wait_ms = i;
        }
    }
    if (ev->type == EV_TICKET_CLOSED &&
        get_time(slot, SLOT_OPENED_AT, false, &ev->opened_ms, err) < 0) {
        return -1;
    }
    return 0;
}

static int parse_fields(const struct scan_json_value *slot, struct event *ev,
                        struct event_error *err)
{
    if (get_string(slot, SLOT_EVENT_ID, EVENT_ID_MAX, true, ev->event_id, err) <
            0 ||
        parse_type(slot, ev, err) < 0 ||
        get_time(slot, SLOT_OCCURRED_AT, true, &ev->occurred_ms, err) < 0 ||
        parse_dims(slot, ev, err) < 0) {
        return -1;
    }
    return parse_typed(slot, ev, err);
}

/* event.c's event_reset (the type is left alone, as there). */
static void event_clear(struct event *ev)
{
    ev->event_id[0] = ev->tenant[0] = ev->channel[0] = ev->queue[0] = '\0';
    ev->corr_id[0] = ev->customer_id[0] = '\0';
    ev->score = -1;
    ev->wait_ms = EVENT_NO_WAIT;
    ev->opened_ms = EVENT_NO_TIME;
    ev->occurred_ms = 0;
}

int scan_event(const char *buf, size_t len, size_t max_bytes, struct event *ev,
               struct event_error *err)
{
    struct scan_json_value slot[SLOT_COUNT];
    struct scan_json_error jerr;

    event_clear(ev);
    if (len > max_bytes) {
        return fail(err, REJ_TOO_LARGE, "",
                    "message of %zu bytes exceeds the limit of %zu", len,
                    max_bytes);
    }
    switch (scan_json_document(buf, len, slot_keys, SLOT_COUNT, slot, &jerr)) {
    case -1:
        return fail(err, REJ_NOT_JSON, "", "not JSON: %s at byte %zu", jerr.why,
                    jerr.offset);
    case 0:
        return fail(err, REJ_NOT_OBJECT, "", "not a JSON object");
    default:
        return parse_fields(slot, ev, err);
    }
}
