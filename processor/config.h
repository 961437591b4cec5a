/* SPDX-License-Identifier: Apache-2.0 */
/* config: touchpointd's configuration — a table of keys, a YAML loader and defaults. */
#ifndef TP_CONFIG_H
#define TP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The longest duration any key takes (3650d): longer ones are surely
 * mistakes, and sums and multiples of them must not overflow. */
#define CONFIG_DURATION_MAX (INT64_C(3650) * 86400000)
#define CONFIG_MAX_WINDOWS 8
#define CONFIG_MAX_TOPICS 16
#define CONFIG_MAX_PROPS 64
#define CONFIG_MAX_TARGETS 32
#define CONFIG_MAX_ALERT_FILES 16

struct rules;

/* A name → string pair (librdkafka property, service-level target). */
struct config_pair {
    char *key;   /* owned */
    char *value; /* owned */
    int64_t ms;  /* parsed duration for targets, else 0 */
};

enum abandon_mode {
    ABANDON_EXCLUDE_SHORT,
    ABANDON_MISSED,
    ABANDON_IGNORE,
};

struct config_window {
    char name[16]; /* as written: "5m" */
    int64_t ms;
};

struct config {
    /* kafka: librdkafka properties, passed as given. */
    struct config_pair kafka[CONFIG_MAX_PROPS];
    size_t n_kafka;

    /* input */
    char *topics[CONFIG_MAX_TOPICS];
    size_t n_topics;
    char *dead_letter_topic;
    int64_t max_message_bytes;

    /* redis */
    char *redis_url;
    char *redis_password;
    char *prefix;
    int64_t redis_timeout_ms;

    /* aggregation */
    int64_t bucket_ms;
    struct config_window windows[CONFIG_MAX_WINDOWS];
    size_t n_windows;
    int64_t retention_ms;
    int64_t flush_interval_ms;
    int64_t dedupe_horizon_ms;
    int64_t future_skew_ms;

    /* service_level */
    struct config_pair targets[CONFIG_MAX_TARGETS];
    size_t n_targets;
    int64_t default_target_ms;
    enum abandon_mode abandons;

    /* limits */
    int64_t max_tenants;
    int64_t max_dims_per_tenant;
    int64_t max_open_correlations;
    int64_t max_pending_cells;
    int64_t dedupe_capacity;

    /* log */
    char *log_level;
    char *log_format;
    int64_t stats_interval_ms;

    /* http */
    char *http_address;
    int64_t http_port;

    /* alerts: rules inline and from files; where transitions go */
    struct rules *rules; /* owned; inline rules, then those of alert_files */
    char *alert_files[CONFIG_MAX_ALERT_FILES];
    size_t n_alert_files;
    char *alert_topic;
    char *alertmanager_url;
    int64_t alert_resend_ms;
    int64_t alert_stream_maxlen;

    /* service */
    int64_t shutdown_timeout_ms;
};

/* Fills cfg with the documented defaults. Returns 0 or -1 (out of memory). */
int config_init(struct config *cfg);

/* Frees what cfg owns. */
void config_release(struct config *cfg);

/* Loads a YAML file over the current values of cfg. Unknown keys, wrong types
 * and bad values are errors written to errstr as "FILE:LINE: KEY: what was
 * expected". Returns 0 or -1. path is borrowed. */
int config_load_file(struct config *cfg, const char *path, char *errstr,
                     size_t errstr_size);

/* Sets one kafka property (added or replaced). Returns 0 or -1. */
int config_set_kafka(struct config *cfg, const char *key, const char *value);

/* Returns the value of a kafka property or NULL (borrowed). */
const char *config_kafka(const struct config *cfg, const char *key);

/* Replaces a string option (redis_url ...). Returns 0 or -1. */
int config_set_string(char **slot, const char *value);

/* Loads the rules of alert_files into cfg->rules and checks every rule's
 * window against aggregation.windows. Call after all other loading.
 * Returns 0 or -1 with errstr "FILE:LINE: alerts[I].KEY: ...". */
int config_load_rules(struct config *cfg, char *errstr, size_t errstr_size);

/* Cross-key checks (windows multiple of the bucket, retention covers the
 * longest window, ...). Returns 0 or -1 with errstr. */
int config_check(const struct config *cfg, char *errstr, size_t errstr_size);

/* The service-level target for a channel (its own or the default). */
int64_t config_target_ms(const struct config *cfg, const char *channel);

/* Writes the full annotated default configuration as YAML. */
void config_write_defaults(FILE *out);

/* Whether a kafka property or key holds a secret (printed masked). */
int config_is_secret(const char *key);

/* A one-line summary of the effective configuration with secrets masked,
 * for the start-up log. */
void config_write_summary(const struct config *cfg, char *buf, size_t size);

#endif
