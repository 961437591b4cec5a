/* SPDX-License-Identifier: Apache-2.0 */
/* metrics_catalog: every metric touchpointd exports — one table of names, types, labels and help — and the code that fills them. */
#include "metrics_catalog.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where a label's values come from. */
enum label_kind {
    L_NONE,
    L_TYPE,      /* fixed: event types */
    L_REASON,    /* fixed: reject classes */
    L_STATE,     /* fixed: alert states */
    L_TOPIC,     /* capped: caps.topics */
    L_PARTITION, /* capped: caps.partitions */
    L_RULE,      /* capped: caps.rules */
    L_SINK,      /* capped: caps.sinks */
    L_VERSION,   /* capped: 1 */
};

static const char *const alert_states[] = METRICS_ALERT_STATES;
#define N_ALERT_STATES (sizeof(alert_states) / sizeof(alert_states[0]))

static const struct {
    const char *name;
    const char *doc; /* the Markdown table's note on its values */
} label_kinds[] = {
    [L_NONE] = {NULL, NULL},
    [L_TYPE] = {"type", "the 13 event types"},
    [L_REASON] = {"reason", "the 11 reject classes"},
    [L_STATE] = {"state", "inactive, pending, firing, resolved"},
    [L_TOPIC] = {"topic", "up to `caps.topics`"},
    [L_PARTITION] = {"partition", "up to `caps.partitions` ids"},
    [L_RULE] = {"rule", "up to `caps.rules`"},
    [L_SINK] = {"sink", "up to `caps.sinks`"},
    [L_VERSION] = {"version", "one"},
};

static const struct metrics_caps default_caps = {
    .topics = CONFIG_MAX_TOPICS, .partitions = 256, .rules = 64, .sinks = 8};

static const double flush_seconds[] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05,  0.1,    0.25,  0.5,  1,
                                       2.5,   5,      10};
static const double batch_cells[] = {1,     10,     100,    1000,
                                     10000, 100000, 1000000};

#define BUCKETS(a) a, sizeof(a) / sizeof(a[0])

struct catalog_entry {
    const char *name;
    enum metrics_type type;
    enum label_kind labels[METRICS_MAX_LABELS];
    const char *help;
    const double *buckets;
    size_t n_buckets;
};

/* The catalogue. README's metrics table is written from it
 * (metrics_catalog_write_markdown); keep both in step. */
static const struct catalog_entry catalog[MC_COUNT] = {
    [MC_MESSAGES_CONSUMED] = {"touchpointd_messages_consumed_total",
                              METRICS_COUNTER, {L_NONE, L_NONE},
                              "Kafka messages handed to the pipeline, valid "
                              "or not.", NULL, 0},
    [MC_EVENTS_ACCEPTED] = {"touchpointd_events_accepted_total",
                            METRICS_COUNTER, {L_TYPE, L_NONE},
                            "Events validated and aggregated, by event type.",
                            NULL, 0},
    [MC_EVENTS_REJECTED] = {"touchpointd_events_rejected_total",
                            METRICS_COUNTER, {L_REASON, L_NONE},
                            "Messages rejected and dead-lettered, by reject "
                            "class.", NULL, 0},
    [MC_EVENTS_DUPLICATE] = {"touchpointd_events_duplicate_total",
                             METRICS_COUNTER, {L_NONE, L_NONE},
                             "Events dropped as repeats of an event_id seen "
                             "within the dedupe horizon.", NULL, 0},
    [MC_EVENTS_LATE_DROPPED] = {"touchpointd_events_late_dropped_total",
                                METRICS_COUNTER, {L_NONE, L_NONE},
                                "Events dropped because their bucket ended "
                                "before the retention window.", NULL, 0},
    [MC_ORPHAN_ENDS] = {"touchpointd_orphan_ends_total", METRICS_COUNTER,
                        {L_TYPE, L_NONE},
                        "End events with no open start to pair with, by "
                        "event type.", NULL, 0},
    [MC_DEAD_LETTER_FAILURES] = {"touchpointd_dead_letter_failures_total",
                                 METRICS_COUNTER, {L_NONE, L_NONE},
                                 "Rejected messages that could not be queued "
                                 "to the dead-letter topic or that the broker "
                                 "refused for good.", NULL, 0},
    [MC_CONSUMER_LAG] = {"touchpointd_consumer_lag_messages", METRICS_GAUGE,
                         {L_TOPIC, L_PARTITION},
                         "Messages between an assigned partition's high "
                         "watermark and the group's committed offset "
                         "(librdkafka statistics).", NULL, 0},
    [MC_CONSUMER_PAUSED] = {"touchpointd_consumer_paused", METRICS_GAUGE,
                            {L_NONE, L_NONE},
                            "1 while consumption is paused (pending state at "
                            "its cap while Redis fails), else 0.", NULL, 0},
    [MC_FETCH_WAKES] = {"touchpointd_kafka_fetch_wakes_total",
                        METRICS_COUNTER, {L_NONE, L_NONE},
                        "Requests sent to partition leaders while a backlog "
                        "is read, to wake a fetcher that stopped at the "
                        "prefetch queue's bound.", NULL, 0},
    [MC_FLUSHES] = {"touchpointd_flushes_total", METRICS_COUNTER,
                    {L_NONE, L_NONE}, "Flushes applied to Redis.", NULL, 0},
    [MC_FLUSH_DURATION] = {"touchpointd_flush_duration_seconds",
                           METRICS_HISTOGRAM, {L_NONE, L_NONE},
                           "Time one flush to Redis took, applied or not.",
                           BUCKETS(flush_seconds)},
    [MC_FLUSH_BATCH_CELLS] = {"touchpointd_flush_batch_cells",
                              METRICS_HISTOGRAM, {L_NONE, L_NONE},
                              "Aggregate cells (leaves and roll-ups) in one "
                              "flush.", BUCKETS(batch_cells)},
    [MC_REDIS_ERRORS] = {"touchpointd_redis_errors_total", METRICS_COUNTER,
                         {L_NONE, L_NONE},
                         "Redis connections and commands that failed.", NULL,
                         0},
    [MC_REDIS_RECONNECTS] = {"touchpointd_redis_reconnects_total",
                             METRICS_COUNTER, {L_NONE, L_NONE},
                             "Redis connections made after the first.", NULL,
                             0},
    [MC_PENDING_CELLS] = {"touchpointd_pending_cells", METRICS_GAUGE,
                          {L_NONE, L_NONE},
                          "Aggregate cells in memory waiting for the next "
                          "flush.", NULL, 0},
    [MC_PENDING_CELLS_LIMIT] = {"touchpointd_pending_cells_limit",
                                METRICS_GAUGE, {L_NONE, L_NONE},
                                "limits.max_pending_cells: pending cells that "
                                "force a flush.", NULL, 0},
    [MC_OPEN_CORRELATIONS] = {"touchpointd_open_correlations", METRICS_GAUGE,
                              {L_NONE, L_NONE},
                              "Conversations, calls and tickets waiting for "
                              "their end event.", NULL, 0},
    [MC_OPEN_CORRELATIONS_LIMIT] = {"touchpointd_open_correlations_limit",
                                    METRICS_GAUGE, {L_NONE, L_NONE},
                                    "limits.max_open_correlations: open "
                                    "correlations kept before the oldest is "
                                    "evicted.", NULL, 0},
    [MC_CORRELATIONS_EVICTED] = {"touchpointd_correlations_evicted_total",
                                 METRICS_COUNTER, {L_NONE, L_NONE},
                                 "Open correlations evicted, oldest first, at "
                                 "limits.max_open_correlations.", NULL, 0},
    [MC_TENANTS] = {"touchpointd_tenants", METRICS_GAUGE, {L_NONE, L_NONE},
                    "Tenants seen since start.", NULL, 0},
    [MC_TENANTS_LIMIT] = {"touchpointd_tenants_limit", METRICS_GAUGE,
                          {L_NONE, L_NONE},
                          "limits.max_tenants: events of further tenants are "
                          "rejected (reason tenant_limit).", NULL, 0},
    [MC_DIMS_FOLDED] = {"touchpointd_dims_folded_total", METRICS_COUNTER,
                        {L_NONE, L_NONE},
                        "Events folded into the _other:_other row at "
                        "limits.max_dims_per_tenant.", NULL, 0},
    [MC_ALERT_TRANSITIONS] = {"touchpointd_alert_transitions_total",
                              METRICS_COUNTER, {L_RULE, L_STATE},
                              "Alert state transitions, by rule and the state "
                              "entered.", NULL, 0},
    [MC_ALERT_OUTPUT_FAILURES] = {"touchpointd_alert_output_failures_total",
                                  METRICS_COUNTER, {L_SINK, L_NONE},
                                  "Alert notifications a sink failed to "
                                  "deliver, by sink.", NULL, 0},
    [MC_BUILD_INFO] = {"touchpointd_build_info", METRICS_GAUGE,
                       {L_VERSION, L_NONE},
                       "Always 1; the version label names the build.", NULL,
                       0},
    [MC_RESIDENT_MEMORY] = {"touchpointd_resident_memory_bytes", METRICS_GAUGE,
                            {L_NONE, L_NONE},
                            "Resident memory of the process "
                            "(/proc/self/statm).", NULL, 0},
};

static size_t cap_or(size_t v, size_t def)
{
    return v != 0 ? v : def;
}

/* Fills *l for kind. */
static void label_def(const struct metrics_catalog *c, enum label_kind kind,
                      const struct metrics_caps *caps, struct metrics_label *l)
{
    memset(l, 0, sizeof(*l));
    l->name = label_kinds[kind].name;
    switch (kind) {
    case L_TYPE:
        l->values = c->types, l->n_values = EV_TYPE_COUNT;
        break;
    case L_REASON:
        l->values = c->reasons, l->n_values = REJ_COUNT;
        break;
    case L_STATE:
        l->values = alert_states, l->n_values = N_ALERT_STATES;
        break;
    case L_TOPIC:
        l->cap = cap_or(caps->topics, default_caps.topics);
        break;
    case L_PARTITION:
        l->cap = cap_or(caps->partitions, default_caps.partitions);
        break;
    case L_RULE:
        l->cap = cap_or(caps->rules, default_caps.rules);
        break;
    case L_SINK:
        l->cap = cap_or(caps->sinks, default_caps.sinks);
        break;
    case L_VERSION:
    case L_NONE:
        l->cap = 1;
        break;
    }
}

static int register_entry(struct metrics_catalog *c, size_t id,
                          const struct metrics_caps *caps, char *errstr,
                          size_t errstr_size)
{
    const struct catalog_entry *e = &catalog[id];
    struct metrics_desc d = {.name = e->name,
                             .type = e->type,
                             .help = e->help,
                             .buckets = e->buckets,
                             .n_buckets = e->n_buckets};

    for (size_t k = 0; k < METRICS_MAX_LABELS && e->labels[k] != L_NONE;
         k++) {
        label_def(c, e->labels[k], caps, &d.labels[k]);
        d.n_labels++;
    }
    c->fam[id] = metrics_register(c->reg, &d, errstr, errstr_size);
    return c->fam[id] == NULL ? -1 : 0;
}

int metrics_catalog_init(struct metrics_catalog *c,
                         const struct metrics_caps *caps, const char *version,
                         char *errstr, size_t errstr_size)
{
    memset(c, 0, sizeof(*c));
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        c->types[t] = event_type_name((enum event_type)t);
    }
    for (int r = 0; r < REJ_COUNT; r++) {
        c->reasons[r] = event_reject_name((enum event_reject)r);
    }
    c->reg = metrics_new(METRICS_CATALOG_OVERFLOW, errstr, errstr_size);
    if (c->reg == NULL) {
        return -1;
    }
    for (size_t id = 0; id < MC_COUNT; id++) {
        if (register_entry(c, id, caps ? caps : &default_caps, errstr,
                           errstr_size) < 0) {
            metrics_catalog_release(c);
            return -1;
        }
    }
    metrics_gauge_set(metrics_catalog_series(c, MC_BUILD_INFO, version, NULL),
                      1);
    return 0;
}

void metrics_catalog_release(struct metrics_catalog *c)
{
    metrics_destroy(c->reg);
    memset(c, 0, sizeof(*c));
}

struct metrics_series *metrics_catalog_series(struct metrics_catalog *c,
                                              enum metrics_catalog_id id,
                                              const char *v0, const char *v1)
{
    if (c == NULL || c->reg == NULL || (unsigned)id >= MC_COUNT) {
        return NULL;
    }
    return metrics_series(c->fam[id], v0, v1);
}

void metrics_catalog_set(struct metrics_catalog *c, enum metrics_catalog_id id,
                         double value)
{
    metrics_gauge_set(metrics_catalog_series(c, id, NULL, NULL), value);
}

static void put_counter(struct metrics_catalog *c, enum metrics_catalog_id id,
                        uint64_t value)
{
    metrics_counter_set(metrics_catalog_series(c, id, NULL, NULL), value);
}

/* Publishes counts[0..n) into the fixed-label counter id. */
static void put_counters(struct metrics_catalog *c, enum metrics_catalog_id id,
                         const uint64_t *counts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        metrics_counter_set(metrics_series_at(c->fam[id], i, 0), counts[i]);
    }
}

void metrics_catalog_pipeline(struct metrics_catalog *c,
                              const struct pipeline_stats *st)
{
    if (c == NULL || c->reg == NULL || st == NULL) {
        return;
    }
    put_counter(c, MC_MESSAGES_CONSUMED, st->messages);
    put_counters(c, MC_EVENTS_ACCEPTED, st->accepted, EV_TYPE_COUNT);
    put_counters(c, MC_EVENTS_REJECTED, st->rejected, REJ_COUNT);
    put_counters(c, MC_ORPHAN_ENDS, st->orphans, EV_TYPE_COUNT);
    put_counter(c, MC_EVENTS_DUPLICATE, st->duplicates);
    put_counter(c, MC_EVENTS_LATE_DROPPED, st->late_dropped);
    put_counter(c, MC_CORRELATIONS_EVICTED, st->evicted);
    put_counter(c, MC_DIMS_FOLDED, st->folded);
    metrics_catalog_set(c, MC_OPEN_CORRELATIONS,
                        (double)st->open_correlations);
}

void metrics_catalog_store(struct metrics_catalog *c,
                           const struct store_stats *st)
{
    if (st == NULL) {
        return;
    }
    put_counter(c, MC_FLUSHES, st->flushes);
    put_counter(c, MC_REDIS_ERRORS, st->errors);
    put_counter(c, MC_REDIS_RECONNECTS, st->reconnects);
}

void metrics_catalog_limits(struct metrics_catalog *c,
                            const struct config *cfg)
{
    metrics_catalog_set(c, MC_PENDING_CELLS_LIMIT,
                        (double)cfg->max_pending_cells);
    metrics_catalog_set(c, MC_OPEN_CORRELATIONS_LIMIT,
                        (double)cfg->max_open_correlations);
    metrics_catalog_set(c, MC_TENANTS_LIMIT, (double)cfg->max_tenants);
}

void metrics_catalog_flush(struct metrics_catalog *c, double seconds,
                           size_t cells)
{
    metrics_observe(metrics_catalog_series(c, MC_FLUSH_DURATION, NULL, NULL),
                    seconds);
    metrics_observe(
        metrics_catalog_series(c, MC_FLUSH_BATCH_CELLS, NULL, NULL),
        (double)cells);
}

/* ---- librdkafka statistics --------------------------------------------- */

/* The lag series updated by one statistics report. */
struct lag_seen {
    struct metrics_series **s;
    size_t n, cap;
    bool oom;
};

static void seen_add(struct lag_seen *seen, struct metrics_series *s)
{
    if (seen->n == seen->cap) {
        size_t cap = seen->cap ? seen->cap * 2 : 64;
        struct metrics_series **p = realloc(seen->s, cap * sizeof(*p));

        if (p == NULL) {
            seen->oom = true;
            return;
        }
        seen->s = p;
        seen->cap = cap;
    }
    seen->s[seen->n++] = s;
}

static bool seen_has(const struct lag_seen *seen, const struct metrics_series *s)
{
    for (size_t i = 0; i < seen->n; i++) {
        if (seen->s[i] == s) {
            return true;
        }
    }
    return false;
}

/* One entry of topics.T.partitions: sets its lag when it is being fetched.
 * Partitions past the label cap share the _other series: their lags add
 * up there, so a sum over the topic stays the topic's lag. */
static void lag_partition(struct metrics_catalog *c, const char *topic,
                          const json_t *part, struct lag_seen *seen)
{
    const json_t *id = json_object_get(part, "partition");
    const json_t *lag = json_object_get(part, "consumer_lag");
    const char *state = json_string_value(json_object_get(part, "fetch_state"));
    struct metrics_series *s;
    char pid[24];

    if (!json_is_integer(id) || json_integer_value(id) < 0 ||
        !json_is_integer(lag) || json_integer_value(lag) < 0 ||
        (state != NULL && strcmp(state, "none") == 0)) {
        return;
    }
    snprintf(pid, sizeof(pid), "%lld", (long long)json_integer_value(id));
    s = metrics_catalog_series(c, MC_CONSUMER_LAG, topic, pid);
    if (seen_has(seen, s)) {
        metrics_gauge_add(s, (double)json_integer_value(lag));
        return;
    }
    metrics_gauge_set(s, (double)json_integer_value(lag));
    seen_add(seen, s);
}

int metrics_catalog_kafka_stats(struct metrics_catalog *c, const char *json,
                                size_t len, char *errstr, size_t errstr_size)
{
    struct lag_seen seen = {NULL, 0, 0, false};
    json_error_t jerr;
    json_t *root, *topics, *t, *parts, *p;
    const char *name, *key;

    root = json_loadb(json, len, 0, &jerr);
    if (root == NULL) {
        snprintf(errstr, errstr_size, "kafka statistics: line %d: %s",
                 jerr.line, jerr.text);
        return -1;
    }
    topics = json_object_get(root, "topics");
    if (!json_is_object(topics)) {
        snprintf(errstr, errstr_size,
                 "kafka statistics: expected a \"topics\" object");
        json_decref(root);
        return -1;
    }
    json_object_foreach(topics, name, t) {
        parts = json_object_get(t, "partitions");
        json_object_foreach(parts, key, p) {
            lag_partition(c, name, p, &seen);
        }
    }
    /* Out of memory: better stale series than hiding live ones. */
    if (!seen.oom && c != NULL && c->reg != NULL) {
        metrics_family_retain(c->fam[MC_CONSUMER_LAG], seen.s, seen.n);
    }
    free(seen.s);
    json_decref(root);
    return 0;
}

/* ---- process, rendering, docs ------------------------------------------ */

int metrics_catalog_process(struct metrics_catalog *c)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size, resident;
    long page = sysconf(_SC_PAGESIZE);
    int n;

    if (f == NULL) {
        return -1;
    }
    n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2 || page <= 0) {
        return -1;
    }
    metrics_catalog_set(c, MC_RESIDENT_MEMORY,
                        (double)resident * (double)page);
    return 0;
}

int metrics_catalog_render(struct metrics_catalog *c, char **out, size_t *len)
{
    if (c == NULL || c->reg == NULL) {
        return -1;
    }
    (void)metrics_catalog_process(c); /* without /proc the gauge stays 0 */
    return metrics_render(c->reg, out, len);
}

static void write_labels(FILE *out, const struct catalog_entry *e)
{
    const char *sep = "";

    if (e->labels[0] == L_NONE) {
        fputs("—", out);
    }
    for (size_t k = 0; k < METRICS_MAX_LABELS && e->labels[k] != L_NONE;
         k++) {
        fprintf(out, "%s`%s` (%s)", sep, label_kinds[e->labels[k]].name,
                label_kinds[e->labels[k]].doc);
        sep = ", ";
    }
}

static void write_buckets(FILE *out, const struct catalog_entry *e)
{
    if (e->n_buckets == 0) {
        return;
    }
    fputs(" Buckets:", out);
    for (size_t i = 0; i < e->n_buckets; i++) {
        fprintf(out, "%s %.15g", i ? "," : "", e->buckets[i]);
    }
    fputs(", +Inf.", out);
}

void metrics_catalog_write_markdown(FILE *out)
{
    fputs("| Metric | Type | Labels | Meaning |\n", out);
    fputs("|---|---|---|---|\n", out);
    for (size_t id = 0; id < MC_COUNT; id++) {
        const struct catalog_entry *e = &catalog[id];

        fprintf(out, "| `%s` | %s | ", e->name, metrics_type_name(e->type));
        write_labels(out, e);
        fprintf(out, " | %s", e->help);
        write_buckets(out, e);
        fputs(" |\n", out);
    }
    fprintf(out,
            "| `%s` | counter | `metric` (each labelled metric) | Label "
            "values folded into `_other` because a label's cap was reached "
            "or the value was not allowed. |\n",
            METRICS_CATALOG_OVERFLOW);
    fprintf(out,
            "\nLabel caps default to topics %zu, partitions %zu, rules %zu, "
            "sinks %zu; a value past its cap is counted as `_other`.\n",
            default_caps.topics, default_caps.partitions, default_caps.rules,
            default_caps.sinks);
}
