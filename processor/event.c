/* SPDX-License-Identifier: Apache-2.0 */
/* event: validates one touchpoint message against the contract (schemas/events.md) with jansson. */
#include "event.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tstamp.h"

/* Upper bound used for "no upper bound" integer fields. */
#define INT_NO_MAX ((json_int_t)INT64_MAX)

/* Which correlation id a type family needs, and its score range. */
struct type_info {
    const char *name;
    const char *corr_field; /* NULL for surveys */
    int score_min, score_max; /* score_max < 0: no score */
    bool takes_wait_ms;
};

static const struct type_info type_table[EV_TYPE_COUNT] = {
    [EV_DM_RECEIVED] = {"dm.received", "conversation_id", 0, -1, false},
    [EV_DM_REPLIED] = {"dm.replied", "conversation_id", 0, -1, true},
    [EV_CALL_QUEUED] = {"call.queued", "call_id", 0, -1, false},
    [EV_CALL_ANSWERED] = {"call.answered", "call_id", 0, -1, true},
    [EV_CALL_ABANDONED] = {"call.abandoned", "call_id", 0, -1, true},
    [EV_CALL_ENDED] = {"call.ended", "call_id", 0, -1, false},
    [EV_TICKET_OPENED] = {"ticket.opened", "ticket_id", 0, -1, false},
    [EV_TICKET_REPLIED] = {"ticket.replied", "ticket_id", 0, -1, true},
    [EV_TICKET_CLOSED] = {"ticket.closed", "ticket_id", 0, -1, false},
    [EV_TICKET_REOPENED] = {"ticket.reopened", "ticket_id", 0, -1, false},
    [EV_SURVEY_NPS] = {"survey.nps", NULL, 0, 10, false},
    [EV_SURVEY_CSAT] = {"survey.csat", NULL, 1, 5, false},
    [EV_SURVEY_CES] = {"survey.ces", NULL, 1, 7, false},
};

static const char *const reject_names[REJ_COUNT] = {
    [REJ_TOO_LARGE] = "too_large",
    [REJ_NOT_JSON] = "not_json",
    [REJ_NOT_OBJECT] = "not_object",
    [REJ_MISSING_FIELD] = "missing_field",
    [REJ_WRONG_TYPE] = "wrong_type",
    [REJ_OUT_OF_RANGE] = "out_of_range",
    [REJ_UNKNOWN_TYPE] = "unknown_type",
    [REJ_BAD_CHARSET] = "bad_charset",
    [REJ_BAD_TIMESTAMP] = "bad_timestamp",
    [REJ_FUTURE] = "future",
    [REJ_TENANT_LIMIT] = "tenant_limit",
};

const char *event_type_name(enum event_type type)
{
    if ((unsigned)type >= EV_TYPE_COUNT) {
        return NULL;
    }
    return type_table[type].name;
}

int event_type_from_name(const char *name, enum event_type *type)
{
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        if (strcmp(type_table[i].name, name) == 0) {
            *type = (enum event_type)i;
            return 0;
        }
    }
    return -1;
}

const char *event_reject_name(enum event_reject reason)
{
    if ((unsigned)reason >= REJ_COUNT) {
        return "unknown";
    }
    return reject_names[reason];
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int fail(struct event_error *err, enum event_reject reason,
                const char *field, const char *fmt, ...)
{
    va_list ap;

    err->reason = reason;
    snprintf(err->field, sizeof(err->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_dim_char(char c, bool tenant)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
        c == '-') {
        return true;
    }
    return tenant && ((c >= 'A' && c <= 'Z') || c == '.');
}

/* Checks a required or optional string field of 1..max bytes and copies it
 * into dst unless dst is NULL. Returns 1 when present, 0 when absent and
 * optional, -1 on error. */
static int get_string(json_t *obj, const char *field, size_t max,
                      bool required, char *dst, struct event_error *err)
{
    json_t *v = json_object_get(obj, field);
    size_t len;

    if (v == NULL) {
        if (required) {
            return fail(err, REJ_MISSING_FIELD, field,
                        "missing required field %s", field);
        }
        return 0;
    }
    if (!json_is_string(v)) {
        return fail(err, REJ_WRONG_TYPE, field, "%s must be a string", field);
    }
    len = json_string_length(v);
    if (len < 1 || len > max) {
        return fail(err, REJ_OUT_OF_RANGE, field,
                    "%s must be 1..%zu bytes long, got %zu", field, max, len);
    }
    if (dst != NULL) {
        memcpy(dst, json_string_value(v), len);
        dst[len] = '\0';
    }
    return 1;
}

static int check_dim(const char *value, const char *field, bool tenant,
                     struct event_error *err)
{
    for (const char *p = value; *p; p++) {
        if (!is_dim_char(*p, tenant)) {
            return fail(err, REJ_BAD_CHARSET, field,
                        "%s has characters outside %s", field,
                        tenant ? "[A-Za-z0-9_.-]" : "[a-z0-9_-]");
        }
    }
    if (!tenant && (strcmp(value, "_all") == 0 || strcmp(value, "_other") == 0)) {
        return fail(err, REJ_BAD_CHARSET, field,
                    "%s value %s is reserved for roll-ups", field, value);
    }
    return 0;
}

/* occurred_at / opened_at: RFC 3339 string with offset, or epoch ms. */
static int get_time(json_t *obj, const char *field, bool required,
                    int64_t *ms, struct event_error *err)
{
    json_t *v = json_object_get(obj, field);

    if (v == NULL) {
        if (required) {
            return fail(err, REJ_MISSING_FIELD, field,
                        "missing required field %s", field);
        }
        return 0;
    }
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > TSTAMP_MAX_MS) {
            return fail(err, REJ_OUT_OF_RANGE, field,
                        "%s epoch ms out of range 0..%lld", field,
                        (long long)TSTAMP_MAX_MS);
        }
        *ms = (int64_t)i;
        return 1;
    }
    if (!json_is_string(v)) {
        return fail(err, REJ_WRONG_TYPE, field,
                    "%s must be an RFC 3339 string or integer epoch ms", field);
    }
    if (tstamp_parse_rfc3339(json_string_value(v), json_string_length(v), ms) <
        0) {
        return fail(err, REJ_BAD_TIMESTAMP, field,
                    "%s is not an RFC 3339 timestamp with offset "
                    "(1970..9999)",
                    field);
    }
    return 1;
}

/* An optional or required integer within [min, max]. Returns 1, 0 (absent)
 * or -1. */
static int get_int(json_t *obj, const char *field, bool required,
                   json_int_t min, json_int_t max, const char *type_name,
                   json_int_t *out, struct event_error *err)
{
    json_t *v = json_object_get(obj, field);

    if (v == NULL) {
        if (required) {
            return fail(err, REJ_MISSING_FIELD, field,
                        "missing required field %s for %s", field, type_name);
        }
        return 0;
    }
    if (!json_is_integer(v)) {
        return fail(err, REJ_WRONG_TYPE, field, "%s must be an integer",
                    field);
    }
    *out = json_integer_value(v);
    if (*out < min || *out > max) {
        if (max == INT_NO_MAX) {
            return fail(err, REJ_OUT_OF_RANGE, field,
                        "%s out of range, must be >= %lld", field,
                        (long long)min);
        }
        return fail(err, REJ_OUT_OF_RANGE, field,
                    "%s out of range %lld..%lld for %s", field, (long long)min,
                    (long long)max, type_name);
    }
    return 1;
}

static int parse_type(json_t *obj, struct event *ev, struct event_error *err)
{
    json_t *v = json_object_get(obj, "type");

    if (v == NULL) {
        return fail(err, REJ_MISSING_FIELD, "type",
                    "missing required field type");
    }
    if (!json_is_string(v)) {
        return fail(err, REJ_WRONG_TYPE, "type", "type must be a string");
    }
    if (strlen(json_string_value(v)) != json_string_length(v) ||
        event_type_from_name(json_string_value(v), &ev->type) < 0) {
        return fail(err, REJ_UNKNOWN_TYPE, "type",
                    "type is not one of the 13 event types");
    }
    return 0;
}

static int parse_dims(json_t *obj, struct event *ev, struct event_error *err)
{
    if (get_string(obj, "tenant", EVENT_TENANT_MAX, true, ev->tenant, err) < 0 ||
        check_dim(ev->tenant, "tenant", true, err) < 0) {
        return -1;
    }
    if (get_string(obj, "channel", EVENT_DIM_MAX, true, ev->channel, err) < 0 ||
        check_dim(ev->channel, "channel", false, err) < 0) {
        return -1;
    }
    switch (get_string(obj, "queue", EVENT_DIM_MAX, false, ev->queue, err)) {
    case -1:
        return -1;
    case 0:
        strcpy(ev->queue, "default");
        return 0;
    default:
        return check_dim(ev->queue, "queue", false, err);
    }
}

/* The fields that depend on the type: correlation id, score, wait, opened_at. */
static int parse_typed(json_t *obj, struct event *ev, struct event_error *err)
{
    const struct type_info *ti = &type_table[ev->type];
    json_int_t i;
    int rc;

    if (ti->corr_field != NULL &&
        get_string(obj, ti->corr_field, EVENT_ID_MAX, true, ev->corr_id, err) <
            0) {
        return -1;
    }
    if (get_string(obj, "customer_id", EVENT_ID_MAX, false, ev->customer_id,
                   err) < 0 ||
        get_string(obj, "agent_id", EVENT_ID_MAX, false, NULL, err) < 0) {
        return -1;
    }
    if (ti->score_max >= 0) {
        if (get_int(obj, "score", true, ti->score_min, ti->score_max, ti->name,
                    &i, err) < 0) {
            return -1;
        }
        ev->score = (int)i;
    }
    if (ti->takes_wait_ms) {
        rc = get_int(obj, "wait_ms", false, 0, INT_NO_MAX, ti->name, &i,
                     err);
        if (rc < 0) {
            return -1;
        }
        if (rc > 0) {
            ev->wait_ms = (int64_t)i;
        }
    }
    if (ev->type == EV_TICKET_CLOSED &&
        get_time(obj, "opened_at", false, &ev->opened_ms, err) < 0) {
        return -1;
    }
    return 0;
}

static void event_reset(struct event *ev)
{
    ev->event_id[0] = ev->tenant[0] = ev->channel[0] = ev->queue[0] = '\0';
    ev->corr_id[0] = ev->customer_id[0] = '\0';
    ev->score = -1;
    ev->wait_ms = EVENT_NO_WAIT;
    ev->opened_ms = EVENT_NO_TIME;
    ev->occurred_ms = 0;
}

static int parse_object(json_t *obj, struct event *ev, struct event_error *err)
{
    if (get_string(obj, "event_id", EVENT_ID_MAX, true, ev->event_id, err) < 0 ||
        parse_type(obj, ev, err) < 0 ||
        get_time(obj, "occurred_at", true, &ev->occurred_ms, err) < 0 ||
        parse_dims(obj, ev, err) < 0) {
        return -1;
    }
    return parse_typed(obj, ev, err);
}

int event_parse(const char *buf, size_t len, size_t max_bytes,
                struct event *ev, struct event_error *err)
{
    json_error_t jerr;
    json_t *root;
    int rc;

    event_reset(ev);
    if (len > max_bytes) {
        return fail(err, REJ_TOO_LARGE, "",
                    "message of %zu bytes exceeds the limit of %zu", len,
                    max_bytes);
    }
    /* jansson skips a NUL byte right after a number or literal; JSON text
     * never holds one, so it is rejected here (as the scanner does). */
    if (memchr(buf, '\0', len) != NULL) {
        return fail(err, REJ_NOT_JSON, "", "not JSON: NUL byte");
    }
    root = json_loadb(buf, len, JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        return fail(err, REJ_NOT_JSON, "", "not JSON: %s at byte %d",
                    jerr.text, jerr.position);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return fail(err, REJ_NOT_OBJECT, "", "not a JSON object");
    }
    rc = parse_object(root, ev, err);
    json_decref(root);
    return rc;
}
