/* SPDX-License-Identifier: Apache-2.0 */
/* gen_bad: renders tpgen's malformed messages, each with exactly one defect. */
#include "gen_bad.h"

#include <stdio.h>
#include <string.h>

#include "event.h"
#include "tstamp.h"

/*
 * Each message is a plausible event of a base type with one change: a field
 * dropped, a field's raw JSON value replaced (or added), or the whole text
 * wrapped or cut. touchpointd's validator checks fields in a fixed order and
 * reports the first defect, so every variant keeps all other fields valid and
 * its class is unambiguous. Values starting with '@' are computed from the
 * stamp (timestamps, padding, an over-long id).
 */

enum wrap {
    W_NONE,
    W_TRUNCATE, /* cut in the middle of the object */
    W_PROSE,    /* a log line instead of JSON */
    W_TRAILING_COMMA,
    W_ARRAY,  /* the event inside [ ] */
    W_STRING, /* a JSON string */
    W_NUMBER,
    W_NULL
};

struct variant {
    enum gen_invalid_class cls;
    enum event_type base;
    const char *field; /* field changed, added or (value NULL) dropped */
    const char *value; /* raw JSON, or "@name" for a computed value */
    enum wrap wrap;
};

static const struct variant variants[] = {
    {GEN_BAD_NOT_JSON, EV_DM_RECEIVED, NULL, NULL, W_TRUNCATE},
    {GEN_BAD_NOT_JSON, EV_CALL_QUEUED, NULL, NULL, W_PROSE},
    {GEN_BAD_NOT_JSON, EV_DM_RECEIVED, "note", "\"caf\xe9 \xff\xfe\"", W_NONE},
    {GEN_BAD_NOT_JSON, EV_TICKET_OPENED, NULL, NULL, W_TRAILING_COMMA},
    {GEN_BAD_NOT_OBJECT, EV_DM_RECEIVED, NULL, NULL, W_ARRAY},
    {GEN_BAD_NOT_OBJECT, EV_CALL_QUEUED, NULL, NULL, W_STRING},
    {GEN_BAD_NOT_OBJECT, EV_CALL_QUEUED, NULL, NULL, W_NUMBER},
    {GEN_BAD_NOT_OBJECT, EV_CALL_QUEUED, NULL, NULL, W_NULL},
    {GEN_BAD_MISSING_FIELD, EV_DM_RECEIVED, "event_id", NULL, W_NONE},
    {GEN_BAD_MISSING_FIELD, EV_CALL_QUEUED, "type", NULL, W_NONE},
    {GEN_BAD_MISSING_FIELD, EV_TICKET_OPENED, "occurred_at", NULL, W_NONE},
    {GEN_BAD_MISSING_FIELD, EV_DM_REPLIED, "tenant", NULL, W_NONE},
    {GEN_BAD_MISSING_FIELD, EV_CALL_ENDED, "channel", NULL, W_NONE},
    {GEN_BAD_MISSING_FIELD, EV_CALL_ANSWERED, "call_id", NULL, W_NONE},
    {GEN_BAD_MISSING_FIELD, EV_DM_REPLIED, "conversation_id", NULL, W_NONE},
    {GEN_BAD_MISSING_FIELD, EV_TICKET_CLOSED, "ticket_id", NULL, W_NONE},
    {GEN_BAD_MISSING_FIELD, EV_SURVEY_NPS, "score", NULL, W_NONE},
    {GEN_BAD_WRONG_TYPE, EV_SURVEY_NPS, "score", "\"9\"", W_NONE},
    {GEN_BAD_WRONG_TYPE, EV_SURVEY_CSAT, "score", "4.0", W_NONE},
    {GEN_BAD_WRONG_TYPE, EV_SURVEY_CES, "score", "5.5", W_NONE},
    {GEN_BAD_WRONG_TYPE, EV_DM_RECEIVED, "occurred_at", "true", W_NONE},
    {GEN_BAD_WRONG_TYPE, EV_CALL_ANSWERED, "wait_ms", "\"1500\"", W_NONE},
    {GEN_BAD_WRONG_TYPE, EV_DM_RECEIVED, "tenant", "42", W_NONE},
    {GEN_BAD_WRONG_TYPE, EV_CALL_QUEUED, "call_id", "123", W_NONE},
    {GEN_BAD_WRONG_TYPE, EV_TICKET_OPENED, "event_id", "null", W_NONE},
    {GEN_BAD_OUT_OF_RANGE, EV_SURVEY_NPS, "score", "11", W_NONE},
    {GEN_BAD_OUT_OF_RANGE, EV_SURVEY_CSAT, "score", "0", W_NONE},
    {GEN_BAD_OUT_OF_RANGE, EV_SURVEY_CES, "score", "8", W_NONE},
    {GEN_BAD_OUT_OF_RANGE, EV_SURVEY_NPS, "score", "-1", W_NONE},
    {GEN_BAD_OUT_OF_RANGE, EV_DM_REPLIED, "wait_ms", "-5", W_NONE},
    {GEN_BAD_OUT_OF_RANGE, EV_CALL_QUEUED, "occurred_at", "253402300800000",
     W_NONE},
    {GEN_BAD_OUT_OF_RANGE, EV_DM_RECEIVED, "event_id", "@long-id", W_NONE},
    {GEN_BAD_UNKNOWN_TYPE, EV_CALL_QUEUED, "type", "\"call.transferred\"",
     W_NONE},
    {GEN_BAD_UNKNOWN_TYPE, EV_DM_RECEIVED, "type", "\"dm.sent\"", W_NONE},
    {GEN_BAD_UNKNOWN_TYPE, EV_DM_RECEIVED, "type", "\"DM.RECEIVED\"", W_NONE},
    {GEN_BAD_UNKNOWN_TYPE, EV_SURVEY_NPS, "type", "\"survey\"", W_NONE},
    {GEN_BAD_CHARSET, EV_CALL_QUEUED, "tenant", "\"acme corp\"", W_NONE},
    {GEN_BAD_CHARSET, EV_DM_RECEIVED, "channel", "\"Phone\"", W_NONE},
    {GEN_BAD_CHARSET, EV_TICKET_OPENED, "queue", "\"billing/eu\"", W_NONE},
    {GEN_BAD_CHARSET, EV_DM_RECEIVED, "tenant", "\"acm\xc3\xa9\"", W_NONE},
    {GEN_BAD_TIMESTAMP, EV_CALL_QUEUED, "occurred_at", "@ts-hour25", W_NONE},
    {GEN_BAD_TIMESTAMP, EV_DM_RECEIVED, "occurred_at", "@ts-space", W_NONE},
    {GEN_BAD_TIMESTAMP, EV_TICKET_OPENED, "occurred_at", "@ts-nooffset",
     W_NONE},
    {GEN_BAD_TIMESTAMP, EV_DM_REPLIED, "occurred_at", "@ts-frac10", W_NONE},
    {GEN_BAD_TIMESTAMP, EV_CALL_ENDED, "occurred_at", "@ts-feb30", W_NONE},
    {GEN_BAD_TIMESTAMP, EV_SURVEY_CSAT, "occurred_at", "\"yesterday\"", W_NONE},
    {GEN_BAD_TIMESTAMP, EV_TICKET_CLOSED, "opened_at", "@ts-nooffset", W_NONE},
    {GEN_BAD_TOO_LARGE, EV_DM_RECEIVED, "note", "@pad", W_NONE},
    {GEN_BAD_TOO_LARGE, EV_TICKET_OPENED, "note", "@pad", W_NONE},
    {GEN_BAD_RESERVED, EV_CALL_QUEUED, "channel", "\"_all\"", W_NONE},
    {GEN_BAD_RESERVED, EV_DM_RECEIVED, "queue", "\"_all\"", W_NONE},
    {GEN_BAD_RESERVED, EV_TICKET_OPENED, "channel", "\"_other\"", W_NONE},
    {GEN_BAD_RESERVED, EV_CALL_QUEUED, "queue", "\"_other\"", W_NONE},
};

#define VARIANT_COUNT (sizeof(variants) / sizeof(variants[0]))
#define FIELD_MAX 12
#define PAD_BYTES 70000

static const char *const class_names[GEN_BAD_CLASS_COUNT] = {
    [GEN_BAD_NOT_JSON] = "not_json",
    [GEN_BAD_NOT_OBJECT] = "not_object",
    [GEN_BAD_MISSING_FIELD] = "missing_field",
    [GEN_BAD_WRONG_TYPE] = "wrong_type",
    [GEN_BAD_OUT_OF_RANGE] = "out_of_range",
    [GEN_BAD_UNKNOWN_TYPE] = "unknown_type",
    [GEN_BAD_CHARSET] = "bad_charset",
    [GEN_BAD_TIMESTAMP] = "bad_timestamp",
    [GEN_BAD_TOO_LARGE] = "too_large",
    [GEN_BAD_RESERVED] = "reserved",
};

const char *gen_invalid_class_name(enum gen_invalid_class c)
{
    return (unsigned)c < GEN_BAD_CLASS_COUNT ? class_names[c] : "unknown";
}

enum gen_invalid_class gen_bad_class(uint64_t k)
{
    return (enum gen_invalid_class)(k % GEN_BAD_CLASS_COUNT);
}

static const struct variant *pick_variant(uint64_t k)
{
    enum gen_invalid_class cls = gen_bad_class(k);
    uint64_t want = k / GEN_BAD_CLASS_COUNT, n = 0, seen = 0;

    for (size_t i = 0; i < VARIANT_COUNT; i++) {
        n += variants[i].cls == cls;
    }
    want %= n;
    for (size_t i = 0; i < VARIANT_COUNT; i++) {
        if (variants[i].cls == cls && seen++ == want) {
            return &variants[i];
        }
    }
    return &variants[0];
}

/* A JSON object under construction: names with raw JSON values. */
struct fields {
    const char *name[FIELD_MAX];
    char value[FIELD_MAX][160];
    int n;
};

static char *field_slot(struct fields *f, const char *name)
{
    for (int i = 0; i < f->n; i++) {
        if (strcmp(f->name[i], name) == 0) {
            return f->value[i];
        }
    }
    if (f->n == FIELD_MAX) {
        return NULL;
    }
    f->name[f->n] = name;
    f->value[f->n][0] = '\0';
    return f->value[f->n++];
}

static void field_set(struct fields *f, const char *name, const char *value)
{
    char *slot = field_slot(f, name);

    if (slot != NULL) {
        snprintf(slot, sizeof(f->value[0]), "%s", value);
    }
}

static void field_drop(struct fields *f, const char *name)
{
    for (int i = 0; i < f->n; i++) {
        if (strcmp(f->name[i], name) == 0) {
            f->n--;
            memmove(&f->name[i], &f->name[i + 1],
                    (size_t)(f->n - i) * sizeof(f->name[0]));
            memmove(f->value[i], f->value[i + 1],
                    (size_t)(f->n - i) * sizeof(f->value[0]));
            return;
        }
    }
}

static const char *corr_field_of(enum event_type t)
{
    if (t <= EV_DM_REPLIED) {
        return "conversation_id";
    }
    if (t <= EV_CALL_ENDED) {
        return "call_id";
    }
    return t <= EV_TICKET_REOPENED ? "ticket_id" : NULL;
}

/* The intact event of the variant's base type. */
static void base_fields(const struct variant *v, const char *id,
                        const struct gen_bad_ctx *ctx, struct fields *f)
{
    static const char *const scores[] = {"9", "4", "5"};
    char ts[40], buf[160];
    const char *corr = corr_field_of(v->base);

    f->n = 0;
    snprintf(buf, sizeof(buf), "\"%s\"", id);
    field_set(f, "event_id", buf);
    snprintf(buf, sizeof(buf), "\"%s\"", event_type_name(v->base));
    field_set(f, "type", buf);
    snprintf(buf, sizeof(buf), "\"%s\"",
             tstamp_format_rfc3339(ctx->stamp_ms, ts, sizeof(ts)));
    field_set(f, "occurred_at", buf);
    snprintf(buf, sizeof(buf), "\"%s\"", ctx->tenant);
    field_set(f, "tenant", buf);
    snprintf(buf, sizeof(buf), "\"%s\"", ctx->channel);
    field_set(f, "channel", buf);
    snprintf(buf, sizeof(buf), "\"%s\"", ctx->queue);
    field_set(f, "queue", buf);
    snprintf(buf, sizeof(buf), "\"%s\"", id);
    if (corr != NULL) {
        field_set(f, corr, buf);
    } else {
        field_set(f, "customer_id", buf);
        field_set(f, "score", scores[v->base - EV_SURVEY_NPS]);
    }
}

/* A computed timestamp value with one defect. */
static void bad_timestamp(const char *what, int64_t ms, char *out, size_t size)
{
    char ts[40];

    tstamp_format_rfc3339(ms, ts, sizeof(ts)); /* YYYY-MM-DDTHH:MM:SS.mmmZ */
    if (strcmp(what, "@ts-hour25") == 0) {
        ts[11] = '2';
        ts[12] = '5';
    } else if (strcmp(what, "@ts-space") == 0) {
        ts[10] = ' ';
    } else if (strcmp(what, "@ts-nooffset") == 0) {
        ts[23] = '\0';
    } else if (strcmp(what, "@ts-frac10") == 0) {
        snprintf(ts + 23, sizeof(ts) - 23, "0000000Z");
    } else {
        snprintf(ts + 4, sizeof(ts) - 4, "-02-30T10:00:00Z");
    }
    snprintf(out, size, "\"%s\"", ts);
}

static void apply_change(const struct variant *v, const struct gen_bad_ctx *ctx,
                         struct fields *f)
{
    char buf[160];

    if (v->field == NULL) {
        return;
    }
    if (v->value == NULL) {
        field_drop(f, v->field);
    } else if (strncmp(v->value, "@ts-", 4) == 0) {
        bad_timestamp(v->value, ctx->stamp_ms, buf, sizeof(buf));
        field_set(f, v->field, buf);
    } else if (strcmp(v->value, "@long-id") == 0) {
        memset(buf, 'x', 131);
        buf[0] = buf[130] = '"';
        buf[131] = '\0';
        field_set(f, v->field, buf); /* 129 bytes: one over the limit */
    } else {
        field_set(f, v->field, v->value);
    }
}

/* Appends the object; "@pad" values become a long run of letters. */
static size_t render_object(const struct fields *f, char *buf, size_t size)
{
    size_t len = 0;

    buf[len++] = '{';
    for (int i = 0; i < f->n; i++) {
        len += (size_t)snprintf(buf + len, size - len,
                                "%s\"%s\":", i ? "," : "", f->name[i]);
        if (strcmp(f->value[i], "@pad") == 0) {
            buf[len++] = '"';
            memset(buf + len, 'x', PAD_BYTES);
            len += PAD_BYTES;
            buf[len++] = '"';
        } else {
            len += (size_t)snprintf(buf + len, size - len, "%s", f->value[i]);
        }
    }
    buf[len++] = '}';
    buf[len] = '\0';
    return len;
}

/* Applies the variant's wrap to the rendered object of len bytes. */
static size_t wrap(enum wrap w, const char *id, const struct gen_bad_ctx *ctx,
                   char *buf, size_t size, size_t len)
{
    char ts[40];

    switch (w) {
    case W_TRUNCATE:
        return len / 2;
    case W_PROSE:
        return (size_t)snprintf(
            buf, size, "<134>1 %s tpgen - - - call.queued %s tenant=%s",
            tstamp_format_rfc3339(ctx->stamp_ms, ts, sizeof(ts)), id,
            ctx->tenant);
    case W_TRAILING_COMMA:
        buf[len - 1] = ',';
        buf[len++] = '}';
        return len;
    case W_ARRAY:
        memmove(buf + 1, buf, len);
        buf[0] = '[';
        buf[len + 1] = ']';
        return len + 2;
    case W_STRING:
        return (size_t)snprintf(buf, size, "\"call.queued %s\"", id);
    case W_NUMBER:
        return (size_t)snprintf(buf, size, "42");
    case W_NULL:
        return (size_t)snprintf(buf, size, "null");
    default:
        return len;
    }
}

size_t gen_bad_render(uint64_t k, const struct gen_bad_ctx *ctx, char *buf,
                      size_t size, char *key, size_t key_size, size_t *key_len)
{
    const struct variant *v = pick_variant(k);
    struct fields f;
    char id[64];
    size_t len;

    snprintf(id, sizeof(id), "x-%s-%llu", ctx->run, (unsigned long long)k + 1);
    *key_len = (size_t)snprintf(key, key_size, "%s", id);
    base_fields(v, id, ctx, &f);
    apply_change(v, ctx, &f);
    len = render_object(&f, buf, size);
    return wrap(v->wrap, id, ctx, buf, size, len);
}
