/* SPDX-License-Identifier: Apache-2.0 */
/* config: the table of configuration keys, their defaults and docs, and the YAML loader. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "agg.h"
#include "corr.h"
#include "dims.h"
#include "rules.h"
#include "tstamp.h"

enum conf_type {
    CT_STRING,   /* char * */
    CT_INT,      /* int64_t, > 0 */
    CT_PORT,     /* int64_t, 0..65535 */
    CT_DURATION, /* int64_t ms, "30s" */
    CT_TOPICS,   /* list of strings */
    CT_WINDOWS,  /* list of durations */
    CT_ABANDONS, /* enum abandon_mode */
    CT_KAFKA,    /* map of librdkafka properties */
    CT_TARGETS,  /* map channel -> duration */
    CT_ALERTS,   /* sequence of alert rules (rules.c) */
    CT_FILES,    /* list of rule files */
};

struct conf_key {
    const char *name;
    enum conf_type type;
    const char *def; /* default, in the same text form a YAML scalar has */
    size_t offset;
    const char *doc;
};

#define OFF(f) offsetof(struct config, f)

/* The one table: defaults, documentation (config --defaults, README) and the
 * set of valid keys all come from it. Map and list defaults are comma lists. */
static const struct conf_key conf_keys[] = {
    {"kafka", CT_KAFKA,
     "bootstrap.servers=localhost:9092,group.id=touchpointd,"
     "auto.offset.reset=earliest",
     OFF(kafka),
     "librdkafka properties, passed as given to the consumer and the "
     "dead-letter producer (see librdkafka CONFIGURATION.md); "
     "partition.assignment.strategy is cooperative-sticky, "
     "queued.min.messages 1000000, queued.max.messages.kbytes 32768 and "
     "(without message.max.bytes) fetch.max.bytes 2097152, and the "
     "producer's message.timeout.ms 0 (retry until delivered or refused) "
     "unless set; offsets are managed by touchpointd"},
    {"input.topics", CT_TOPICS, "touchpoints", OFF(topics),
     "topics to consume touchpoint events from"},
    {"input.dead_letter_topic", CT_STRING, "touchpoints.dlq",
     OFF(dead_letter_topic),
     "where rejected messages go, with headers tp-error, tp-error-class, "
     "tp-source"},
    {"input.max_message_bytes", CT_INT, "65536", OFF(max_message_bytes),
     "larger messages are rejected as too_large"},
    {"redis.url", CT_STRING, "redis://127.0.0.1:6379/0", OFF(redis_url),
     "redis://[user[:pass]@]host:port[/db]"},
    {"redis.password", CT_STRING, "", OFF(redis_password),
     "overrides the password of redis.url (e.g. redis.password_file: "
     "/run/secrets/redis)"},
    {"redis.prefix", CT_STRING, "tp", OFF(prefix),
     "first part of every key (schemas/redis.md)"},
    {"redis.timeout", CT_DURATION, "5s", OFF(redis_timeout_ms),
     "connect and command timeout"},
    {"aggregation.bucket", CT_DURATION, "1m", OFF(bucket_ms),
     "event-time bucket length; windows are multiples of it"},
    {"aggregation.windows", CT_WINDOWS, "5m,1h,24h", OFF(windows),
     "rolling windows of the kpi hashes"},
    {"aggregation.retention", CT_DURATION, "48h", OFF(retention_ms),
     "raw bucket TTL; older events are late_dropped (two retentions and "
     "future_skew at most 16777212 buckets)"},
    {"aggregation.flush_interval", CT_DURATION, "1s", OFF(flush_interval_ms),
     "how often aggregates are written to Redis"},
    {"aggregation.dedupe_horizon", CT_DURATION, "15m", OFF(dedupe_horizon_ms),
     "a repeated event_id within this much clock is a duplicate"},
    {"aggregation.future_skew", CT_DURATION, "5m", OFF(future_skew_ms),
     "run: events further ahead of the clock are rejected"},
    {"service_level.targets", CT_TARGETS,
     "phone=20s,chat=60s,email=4h,sms=15m,whatsapp=15m,instagram=15m,"
     "messenger=15m,default=15m",
     OFF(targets),
     "service-level target per channel; `default` for any other channel"},
    {"service_level.abandons", CT_ABANDONS, "exclude_short", OFF(abandons),
     "exclude_short | missed | ignore: how abandoned calls count in sl_pct"},
    {"limits.max_tenants", CT_INT, "1000", OFF(max_tenants),
     "events of further tenants are rejected (tenant_limit); at most "
     "1048575, and max_tenants x (max_dims_per_tenant + 1) at most 67108864"},
    {"limits.max_dims_per_tenant", CT_INT, "500", OFF(max_dims_per_tenant),
     "further channel:queue pairs of a tenant fold into _other:_other; at "
     "most 262143"},
    {"limits.max_open_correlations", CT_INT, "2000000",
     OFF(max_open_correlations),
     "open DMs, queued calls and open tickets kept; the oldest is evicted"},
    {"limits.max_pending_cells", CT_INT, "200000", OFF(max_pending_cells),
     "aggregate cells held between flushes; reaching it forces a flush"},
    {"limits.dedupe_capacity", CT_INT, "2000000", OFF(dedupe_capacity),
     "event ids remembered for duplicate detection (~32 B each, all "
     "resident from the start of run)"},
    {"log.level", CT_STRING, "info", OFF(log_level),
     "error | warn | info | debug"},
    {"log.format", CT_STRING, "logfmt", OFF(log_format), "logfmt | json"},
    {"log.stats_interval", CT_DURATION, "30s", OFF(stats_interval_ms),
     "period of the stats log line"},
    {"http.address", CT_STRING, "127.0.0.1", OFF(http_address),
     "address of /metrics, /healthz, /readyz; empty turns the endpoint off"},
    {"http.port", CT_PORT, "9725", OFF(http_port),
     "port of the HTTP endpoint; 0 picks a free one (logged at start)"},
    {"alerts", CT_ALERTS, "", OFF(rules),
     "alert rules (README, Alerts); reloaded on SIGHUP"},
    {"alert_files", CT_FILES, "", OFF(alert_files),
     "files whose top level is `alerts: [...]`; reloaded on SIGHUP"},
    {"alert_outputs.kafka_topic", CT_STRING, "touchpoint.alerts",
     OFF(alert_topic),
     "topic of alert transitions (JSON, keyed by fingerprint); empty: none"},
    {"alert_outputs.alertmanager_url", CT_STRING, "", OFF(alertmanager_url),
     "Alertmanager base URL, e.g. http://127.0.0.1:9093; empty: none"},
    {"alert_outputs.resend_interval", CT_DURATION, "1m", OFF(alert_resend_ms),
     "firing alerts are re-sent to Alertmanager this often"},
    {"alert_outputs.stream_maxlen", CT_INT, "10000", OFF(alert_stream_maxlen),
     "about how many transitions the tp:{TENANT}:alerts stream keeps"},
    {"service.shutdown_timeout", CT_DURATION, "10s", OFF(shutdown_timeout_ms),
     "SIGTERM: flush, commit and leave within this time"},
};

#define N_KEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

static void *field_at(struct config *cfg, const struct conf_key *k)
{
    return (char *)cfg + k->offset;
}

int config_set_string(char **slot, const char *value)
{
    char *copy = strdup(value);

    if (copy == NULL) {
        return -1;
    }
    free(*slot);
    *slot = copy;
    return 0;
}

static int set_pair(struct config_pair *pairs, size_t *n, size_t cap,
                    const char *key, const char *value, int64_t ms)
{
    size_t i;

    for (i = 0; i < *n; i++) {
        if (strcmp(pairs[i].key, key) == 0) {
            break;
        }
    }
    if (i == cap) {
        return -1;
    }
    if (i == *n) {
        pairs[i].key = strdup(key);
        pairs[i].value = NULL;
        if (pairs[i].key == NULL) {
            return -1;
        }
        (*n)++;
    }
    pairs[i].ms = ms;
    return config_set_string(&pairs[i].value, value);
}

int config_set_kafka(struct config *cfg, const char *key, const char *value)
{
    return set_pair(cfg->kafka, &cfg->n_kafka, CONFIG_MAX_PROPS, key, value, 0);
}

const char *config_kafka(const struct config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka[i].key, key) == 0) {
            return cfg->kafka[i].value;
        }
    }
    return NULL;
}

int64_t config_target_ms(const struct config *cfg, const char *channel)
{
    for (size_t i = 0; i < cfg->n_targets; i++) {
        if (strcmp(cfg->targets[i].key, channel) == 0) {
            return cfg->targets[i].ms;
        }
    }
    return cfg->default_target_ms;
}

static int parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0) {
        return -1;
    }
    *out = v;
    return 0;
}

/* A positive duration no longer than CONFIG_DURATION_MAX; 0 or -1. */
static int parse_duration(const char *value, int64_t *ms)
{
    return tstamp_parse_duration(value, ms) < 0 || *ms <= 0 ||
                   *ms > CONFIG_DURATION_MAX
               ? -1
               : 0;
}

/* Sets one list element or map entry, or a scalar. For maps, sub is the map
 * key; for lists and scalars it is NULL. Returns 0 or -1 with a message of
 * what was expected in why. */
static int set_value(struct config *cfg, const struct conf_key *k,
                     const char *sub, const char *value, const char **why)
{
    void *f = field_at(cfg, k);
    int64_t ms;

    switch (k->type) {
    case CT_STRING:
        *why = "expected a string";
        return config_set_string((char **)f, value);
    case CT_INT:
        *why = "expected a positive integer";
        return parse_int(value, (int64_t *)f);
    case CT_PORT:
        *why = "expected a port number 0..65535";
        if (strcmp(value, "0") == 0) {
            *(int64_t *)f = 0;
            return 0;
        }
        return parse_int(value, (int64_t *)f) < 0 || *(int64_t *)f > 65535
                   ? -1
                   : 0;
    case CT_DURATION:
        *why = "expected a duration like 500ms, 30s, 5m, 4h, 2d, at most "
               "3650d";
        if (parse_duration(value, &ms) < 0) {
            return -1;
        }
        *(int64_t *)f = ms;
        return 0;
    case CT_TOPICS:
        *why = "too many topics";
        if (cfg->n_topics == CONFIG_MAX_TOPICS) {
            return -1;
        }
        cfg->topics[cfg->n_topics] = NULL;
        if (config_set_string(&cfg->topics[cfg->n_topics], value) < 0) {
            return -1;
        }
        cfg->n_topics++;
        return 0;
    case CT_WINDOWS:
        *why = "expected a duration like 5m, 1h, 24h, at most 3650d (at most "
               "8 windows)";
        if (cfg->n_windows == CONFIG_MAX_WINDOWS ||
            strlen(value) >= sizeof(cfg->windows[0].name) ||
            parse_duration(value, &ms) < 0) {
            return -1;
        }
        strcpy(cfg->windows[cfg->n_windows].name, value);
        cfg->windows[cfg->n_windows++].ms = ms;
        return 0;
    case CT_ABANDONS:
        *why = "expected exclude_short, missed or ignore";
        if (strcmp(value, "exclude_short") == 0) {
            cfg->abandons = ABANDON_EXCLUDE_SHORT;
        } else if (strcmp(value, "missed") == 0) {
            cfg->abandons = ABANDON_MISSED;
        } else if (strcmp(value, "ignore") == 0) {
            cfg->abandons = ABANDON_IGNORE;
        } else {
            return -1;
        }
        return 0;
    case CT_KAFKA:
        *why = "too many kafka properties";
        return config_set_kafka(cfg, sub, value);
    case CT_FILES:
        *why = "too many alert files";
        if (cfg->n_alert_files == CONFIG_MAX_ALERT_FILES) {
            return -1;
        }
        cfg->alert_files[cfg->n_alert_files] = NULL;
        if (config_set_string(&cfg->alert_files[cfg->n_alert_files], value) <
            0) {
            return -1;
        }
        cfg->n_alert_files++;
        return 0;
    case CT_ALERTS:
        *why = "alert rules are a YAML sequence";
        return -1;
    case CT_TARGETS:
        *why = "expected a duration like 20s, 15m, 4h, at most 3650d";
        if (parse_duration(value, &ms) < 0) {
            return -1;
        }
        if (strcmp(sub, "default") == 0) {
            cfg->default_target_ms = ms;
            return 0;
        }
        return set_pair(cfg->targets, &cfg->n_targets, CONFIG_MAX_TARGETS, sub,
                        value, ms);
    }
    return -1;
}

/* Empties a list or map option. */
static void clear_collection(struct config *cfg, const struct conf_key *k)
{
    size_t i;

    switch (k->type) {
    case CT_TOPICS:
        for (i = 0; i < cfg->n_topics; i++) {
            free(cfg->topics[i]);
        }
        cfg->n_topics = 0;
        break;
    case CT_WINDOWS:
        cfg->n_windows = 0;
        break;
    case CT_FILES:
        for (i = 0; i < cfg->n_alert_files; i++) {
            free(cfg->alert_files[i]);
        }
        cfg->n_alert_files = 0;
        break;
    case CT_ALERTS:
        rules_destroy(cfg->rules);
        cfg->rules = NULL;
        break;
    case CT_TARGETS:
        for (i = 0; i < cfg->n_targets; i++) {
            free(cfg->targets[i].key);
            free(cfg->targets[i].value);
        }
        cfg->n_targets = 0;
        break;
    default:
        break;
    }
}

/* Applies a default written as "a,b" or "k=v,k2=v2". */
static int apply_default(struct config *cfg, const struct conf_key *k)
{
    char *copy = strdup(k->def), *save = NULL, *tok;
    const char *why;
    int rc = 0;

    if (copy == NULL) {
        return -1;
    }
    if (k->type == CT_ALERTS) {
        free(copy);
        cfg->rules = rules_new();
        return cfg->rules ? 0 : -1;
    }
    if (k->type == CT_STRING || k->type == CT_INT || k->type == CT_DURATION ||
        k->type == CT_ABANDONS || k->type == CT_PORT) {
        rc = set_value(cfg, k, NULL, copy, &why);
        free(copy);
        return rc;
    }
    for (tok = strtok_r(copy, ",", &save); tok && rc == 0;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq != NULL) {
            *eq = '\0';
            rc = set_value(cfg, k, tok, eq + 1, &why);
        } else {
            rc = set_value(cfg, k, NULL, tok, &why);
        }
    }
    free(copy);
    return rc;
}

int config_init(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < N_KEYS; i++) {
        if (apply_default(cfg, &conf_keys[i]) < 0) {
            config_release(cfg);
            return -1;
        }
    }
    return 0;
}

void config_release(struct config *cfg)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (k->type == CT_STRING) {
            free(*(char **)field_at(cfg, k));
            *(char **)field_at(cfg, k) = NULL;
        } else {
            clear_collection(cfg, k);
        }
    }
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].value);
    }
    cfg->n_kafka = 0;
}

static const struct conf_key *find_key(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(conf_keys[i].name, name) == 0) {
            return &conf_keys[i];
        }
    }
    return NULL;
}

/* Is name a section, i.e. the prefix of some key followed by a dot? */
static bool is_section(const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < N_KEYS; i++) {
        if (strncmp(conf_keys[i].name, name, len) == 0 &&
            conf_keys[i].name[len] == '.') {
            return true;
        }
    }
    return false;
}

/* State of one file load, for error messages. */
struct loader {
    struct config *cfg;
    yaml_document_t *doc;
    const char *path;
    char *errstr;
    size_t errstr_size;
    char why[300]; /* a composed "what was expected" */
};

#define VALUE_MAX 4096
#define FILE_SUFFIX "_file"

/* Expands ${NAME} from the environment ($$ is a literal $) into dst. */
static int expand_env(struct loader *ld, const char *src, char *dst,
                      size_t size)
{
    size_t n = 0;

    for (const char *s = src; *s; s++) {
        const char *piece = s, *end;
        size_t len = 1;
        if (s[0] == '$' && s[1] == '$') {
            s++;
        } else if (s[0] == '$' && s[1] == '{') {
            char name[128];
            end = strchr(s + 2, '}');
            if (end == NULL || (size_t)(end - s - 2) >= sizeof(name) ||
                end == s + 2) {
                snprintf(ld->why, sizeof(ld->why),
                         "expected ${NAME} with a closing brace");
                return -1;
            }
            snprintf(name, sizeof(name), "%.*s", (int)(end - s - 2), s + 2);
            piece = getenv(name);
            if (piece == NULL) {
                snprintf(ld->why, sizeof(ld->why),
                         "environment variable %s is not set", name);
                return -1;
            }
            len = strlen(piece);
            s = end;
        }
        if (n + len >= size) {
            snprintf(ld->why, sizeof(ld->why), "value longer than %zu bytes",
                     size - 1);
            return -1;
        }
        memcpy(dst + n, piece, len);
        n += len;
    }
    dst[n] = '\0';
    return 0;
}

/* Replaces the file name in value with the file's content (one trailing
 * newline dropped): the *_file variant of a key, for mounted secrets. */
static int read_value_file(struct loader *ld, char *value, size_t size)
{
    FILE *f = fopen(value, "rb");
    char path[256];
    size_t n;

    snprintf(path, sizeof(path), "%.200s", value); /* value gets the contents */
    if (f == NULL) {
        snprintf(ld->why, sizeof(ld->why), "cannot read %.200s: %s", value,
                 strerror(errno));
        return -1;
    }
    n = fread(value, 1, size - 1, f);
    /* A file of exactly size - 1 bytes has not hit its end yet. */
    if (ferror(f) || (n == size - 1 && fgetc(f) != EOF)) {
        snprintf(ld->why, sizeof(ld->why), ferror(f) ? "cannot read %.200s"
                                                     : "%.200s is longer than "
                                                       "%zu bytes",
                 path, size - 1);
        fclose(f);
        return -1;
    }
    fclose(f);
    value[n] = '\0';
    if (n > 0 && value[n - 1] == '\n') {
        value[--n] = '\0';
    }
    if (n > 0 && value[n - 1] == '\r') {
        value[--n] = '\0';
    }
    return 0;
}

/* Whether name ends in _file; if so, base receives the name without it. */
static bool file_variant(const char *name, char *base, size_t size)
{
    size_t len = strlen(name), sl = strlen(FILE_SUFFIX);

    if (len <= sl || len - sl >= size ||
        strcmp(name + len - sl, FILE_SUFFIX) != 0) {
        return false;
    }
    snprintf(base, size, "%.*s", (int)(len - sl), name);
    return true;
}

static int load_error(struct loader *ld, const yaml_node_t *node,
                      const char *key, const char *why)
{
    snprintf(ld->errstr, ld->errstr_size, "%s:%lu: %s: %s", ld->path,
             (unsigned long)node->start_mark.line + 1, key, why);
    return -1;
}

static const char *scalar(const yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value
                                          : NULL;
}

/* One value: ${ENV} expanded, read from a file for a *_file key. */
static int load_value(struct loader *ld, const struct conf_key *k,
                      const char *sub, yaml_node_t *node, const char *path,
                      bool from_file)
{
    const char *why = "expected a single value";
    const char *v = scalar(node);
    char value[VALUE_MAX];

    if (v == NULL) {
        return load_error(ld, node, path, why);
    }
    if (expand_env(ld, v, value, sizeof(value)) < 0 ||
        (from_file && read_value_file(ld, value, sizeof(value)) < 0)) {
        return load_error(ld, node, path, ld->why);
    }
    if (set_value(ld->cfg, k, sub, value, &why) < 0) {
        return load_error(ld, node, path, why);
    }
    return 0;
}

static int load_scalar(struct loader *ld, const struct conf_key *k,
                       const char *sub, yaml_node_t *node, const char *path)
{
    return load_value(ld, k, sub, node, path, false);
}

static int load_map(struct loader *ld, const struct conf_key *k,
                    yaml_node_t *node, const char *path)
{
    yaml_node_pair_t *p;

    if (node->type != YAML_MAPPING_NODE) {
        return load_error(ld, node, path, "expected a mapping of name: value");
    }
    for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ld->doc, p->value);
        char base[256];
        bool from_file;
        if (scalar(kn) == NULL) {
            return load_error(ld, kn, path, "expected a name");
        }
        char full[300];
        from_file = file_variant(scalar(kn), base, sizeof(base));
        snprintf(full, sizeof(full), "%s.%s", path, scalar(kn));
        if (load_value(ld, k, from_file ? base : scalar(kn), vn, full,
                       from_file) < 0) {
            return -1;
        }
    }
    return 0;
}

static int load_list(struct loader *ld, const struct conf_key *k,
                     yaml_node_t *node, const char *path)
{
    yaml_node_item_t *it;

    if (node->type == YAML_SCALAR_NODE) {
        return load_scalar(ld, k, NULL, node, path);
    }
    if (node->type != YAML_SEQUENCE_NODE) {
        return load_error(ld, node, path, "expected a list");
    }
    for (it = node->data.sequence.items.start;
         it < node->data.sequence.items.top; it++) {
        if (load_scalar(ld, k, NULL, yaml_document_get_node(ld->doc, *it),
                        path) < 0) {
            return -1;
        }
    }
    return 0;
}

static int load_key(struct loader *ld, const struct conf_key *k,
                    yaml_node_t *node, const char *path)
{
    /* Lists are replaced whole; maps merge over the defaults. */
    if (k->type == CT_TOPICS || k->type == CT_WINDOWS || k->type == CT_FILES) {
        clear_collection(ld->cfg, k);
    }
    switch (k->type) {
    case CT_ALERTS:
        return rules_parse_yaml(ld->cfg->rules, ld->doc, node, ld->path,
                                ld->errstr, ld->errstr_size);
    case CT_KAFKA:
    case CT_TARGETS:
        return load_map(ld, k, node, path);
    case CT_FILES:
    case CT_TOPICS:
    case CT_WINDOWS:
        return load_list(ld, k, node, path);
    default:
        return load_scalar(ld, k, NULL, node, path);
    }
}

/* The string key a KEY_file names, or NULL. */
static const struct conf_key *file_secret_key(const char *path)
{
    char base[128];
    const struct conf_key *k;

    if (!file_variant(path, base, sizeof(base))) {
        return NULL;
    }
    k = find_key(base);
    return k != NULL && k->type == CT_STRING ? k : NULL;
}

static int load_mapping(struct loader *ld, yaml_node_t *node,
                        const char *prefix)
{
    yaml_node_pair_t *p;
    char path[128];

    if (node->type != YAML_MAPPING_NODE) {
        return load_error(ld, node, prefix[0] ? prefix : "(top)",
                          "expected a mapping");
    }
    for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ld->doc, p->value);
        const struct conf_key *k;
        if (scalar(kn) == NULL) {
            return load_error(ld, kn, prefix, "expected a key name");
        }
        snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "",
                 scalar(kn));
        k = find_key(path);
        if (k != NULL) {
            if (load_key(ld, k, vn, path) < 0) {
                return -1;
            }
        } else if (is_section(path)) {
            if (load_mapping(ld, vn, path) < 0) {
                return -1;
            }
        } else if (file_secret_key(path) != NULL) {
            if (load_value(ld, file_secret_key(path), NULL, vn, path, true) <
                0) {
                return -1;
            }
        } else {
            return load_error(ld, kn, path,
                              "unknown key (touchpointd config --defaults "
                              "lists every key)");
        }
    }
    return 0;
}

int config_load_file(struct config *cfg, const char *path, char *errstr,
                     size_t errstr_size)
{
    struct loader ld = {cfg, NULL, path, errstr, errstr_size, ""};
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    FILE *f = fopen(path, "rb");
    int rc = 0;

    if (f == NULL) {
        snprintf(errstr, errstr_size, "%s: cannot open: %s", path,
                 strerror(errno));
        return -1;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(errstr, errstr_size, "%s:%lu: YAML error: %s", path,
                 (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    ld.doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (root != NULL) {
        rc = load_mapping(&ld, root, "");
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

int config_load_rules(struct config *cfg, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < cfg->n_alert_files; i++) {
        if (rules_load_file(cfg->rules, cfg->alert_files[i], errstr,
                            errstr_size) < 0) {
            return -1;
        }
    }
    return rules_bind_windows(cfg->rules, cfg->windows, cfg->n_windows,
                              cfg->retention_ms, errstr, errstr_size);
}

/* A pending cell names its tenant, row and bucket in one 64-bit key
 * (agg.c): tenants, a tenant's rows (each leaf and up to three roll-ups) and
 * the buckets one flush can span (two retentions and the future skew) must
 * fit it. */
static int check_cell_keys(const struct config *cfg, char *errstr,
                           size_t errstr_size)
{
    int64_t ret = cfg->retention_ms / cfg->bucket_ms;
    int64_t skew = cfg->future_skew_ms / cfg->bucket_ms;

    if (cfg->max_tenants > AGG_MAX_TENANTS) {
        snprintf(errstr, errstr_size, "limits.max_tenants: must be at most %lld",
                 (long long)AGG_MAX_TENANTS);
        return -1;
    }
    if ((cfg->max_dims_per_tenant + 1) * DIMS_ROLLUPS > AGG_MAX_ROWS) {
        snprintf(errstr, errstr_size,
                 "limits.max_dims_per_tenant: must be at most %lld",
                 (long long)(AGG_MAX_ROWS / DIMS_ROLLUPS - 1));
        return -1;
    }
    if (ret >= AGG_KEY_BUCKETS || skew >= AGG_KEY_BUCKETS ||
        2 * ret + skew + 4 >= AGG_KEY_BUCKETS) {
        snprintf(errstr, errstr_size,
                 "aggregation.retention: two retentions and "
                 "aggregation.future_skew must span fewer than %lld buckets "
                 "of aggregation.bucket",
                 (long long)(AGG_KEY_BUCKETS - 4));
        return -1;
    }
    return 0;
}

int config_check(const struct config *cfg, char *errstr, size_t errstr_size)
{
    int64_t longest = 0;

    if (cfg->n_topics == 0) {
        snprintf(errstr, errstr_size, "input.topics: at least one topic");
        return -1;
    }
    if (cfg->n_windows == 0) {
        snprintf(errstr, errstr_size, "aggregation.windows: at least one");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_windows; i++) {
        if (cfg->windows[i].ms % cfg->bucket_ms != 0) {
            snprintf(errstr, errstr_size,
                     "aggregation.windows: %s is not a multiple of "
                     "aggregation.bucket",
                     cfg->windows[i].name);
            return -1;
        }
        if (cfg->windows[i].ms > longest) {
            longest = cfg->windows[i].ms;
        }
    }
    if (cfg->retention_ms < longest + cfg->bucket_ms) {
        snprintf(errstr, errstr_size,
                 "aggregation.retention: must be at least the longest window "
                 "plus one bucket");
        return -1;
    }
    if (strchr(cfg->prefix, ':') != NULL || strchr(cfg->prefix, '{') != NULL ||
        cfg->prefix[0] == '\0') {
        snprintf(errstr, errstr_size,
                 "redis.prefix: must be non-empty without ':' or '{'");
        return -1;
    }
    if (config_kafka(cfg, "group.id") == NULL) {
        snprintf(errstr, errstr_size, "kafka: group.id is required");
        return -1;
    }
    /* An open correlation names its leaf row in 26 bits (struct corr_rec);
     * a tenant has at most max_dims_per_tenant rows and _other:_other. */
    if (cfg->max_dims_per_tenant >= (int64_t)CORR_MAX_LEAVES ||
        cfg->max_tenants >
            (int64_t)CORR_MAX_LEAVES / (cfg->max_dims_per_tenant + 1)) {
        snprintf(errstr, errstr_size,
                 "limits.max_tenants x (limits.max_dims_per_tenant + 1): "
                 "must be at most %lu",
                 (unsigned long)CORR_MAX_LEAVES);
        return -1;
    }
    return check_cell_keys(cfg, errstr, errstr_size);
}

static void write_comment(FILE *out, const char *indent, const char *doc)
{
    fprintf(out, "%s# %s\n", indent, doc);
}

static void write_collection(FILE *out, const struct conf_key *k,
                             const char *indent)
{
    char *copy = strdup(k->def), *save = NULL, *tok;

    if (copy == NULL) {
        return;
    }
    for (tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq != NULL) {
            *eq = '\0';
            fprintf(out, "%s  %s: %s\n", indent, tok, eq + 1);
        } else {
            fprintf(out, "%s  - %s\n", indent, tok);
        }
    }
    free(copy);
}

void config_write_defaults(FILE *out)
{
    char section[64] = "";

    fprintf(out, "# touchpointd configuration: every key with its default.\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct conf_key *k = &conf_keys[i];
        const char *dot = strchr(k->name, '.');
        const char *leaf = dot ? dot + 1 : k->name;
        const char *indent = dot ? "  " : "";
        if (dot != NULL && (strncmp(section, k->name, (size_t)(dot - k->name)) ||
                            section[dot - k->name] != '\0')) {
            snprintf(section, sizeof(section), "%.*s", (int)(dot - k->name),
                     k->name);
            fprintf(out, "\n%s:\n", section);
        }
        write_comment(out, indent, k->doc);
        if (k->type == CT_ALERTS || k->type == CT_FILES) {
            fprintf(out, "%s%s: []\n", indent, leaf);
        } else if (k->type == CT_KAFKA || k->type == CT_TARGETS ||
                   k->type == CT_TOPICS || k->type == CT_WINDOWS) {
            fprintf(out, "%s%s:\n", indent, leaf);
            write_collection(out, k, indent);
        } else {
            fprintf(out, "%s%s: %s\n", indent, leaf, k->def);
        }
    }
}

int config_is_secret(const char *key)
{
    return strstr(key, "password") != NULL || strstr(key, "secret") != NULL ||
           strstr(key, ".pem") != NULL || strstr(key, "sasl.oauthbearer.config") != NULL;
}

/* Appends "key=value " to buf at *n, truncating safely. */
static void put_kv(char *buf, size_t size, size_t *n, const char *key,
                   const char *value)
{
    int w;

    if (*n >= size) {
        return;
    }
    w = snprintf(buf + *n, size - *n, "%s=%s ", key, value);
    *n += w > 0 ? (size_t)w : 0;
}

/* redis.url with any password replaced by *****. */
static void mask_url(const char *url, char *out, size_t size)
{
    const char *at = strrchr(url, '@');
    const char *colon = at ? memchr(url + 8, ':', (size_t)(at - url - 8)) : NULL;

    if (strncmp(url, "redis://", 8) != 0 || colon == NULL) {
        snprintf(out, size, "%s", url);
        return;
    }
    snprintf(out, size, "%.*s:*****%s", (int)(colon - url), url, at);
}

void config_write_summary(const struct config *cfg, char *buf, size_t size)
{
    char tmp[512];
    size_t n = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        snprintf(tmp, sizeof(tmp), "kafka.%s", cfg->kafka[i].key);
        put_kv(buf, size, &n, tmp,
               config_is_secret(cfg->kafka[i].key) ? "*****"
                                                   : cfg->kafka[i].value);
    }
    for (size_t i = 0; i < cfg->n_topics; i++) {
        put_kv(buf, size, &n, "input.topic", cfg->topics[i]);
    }
    mask_url(cfg->redis_url, tmp, sizeof(tmp));
    put_kv(buf, size, &n, "redis.url", tmp);
    put_kv(buf, size, &n, "redis.password",
           cfg->redis_password[0] ? "*****" : "(none)");
    put_kv(buf, size, &n, "redis.prefix", cfg->prefix);
    for (size_t i = 0; i < cfg->n_windows; i++) {
        put_kv(buf, size, &n, "window", cfg->windows[i].name);
    }
    snprintf(tmp, sizeof(tmp), "%lldms", (long long)cfg->bucket_ms);
    put_kv(buf, size, &n, "aggregation.bucket", tmp);
    snprintf(tmp, sizeof(tmp), "%lldms", (long long)cfg->flush_interval_ms);
    put_kv(buf, size, &n, "aggregation.flush_interval", tmp);
    if (n > 0 && n <= size) {
        buf[n - 1] = '\0';
    }
}
