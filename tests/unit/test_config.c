/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for config: defaults, the YAML loader, its errors, checks, round trip. */
/*
 * The expected defaults are written out by hand from the documentation
 * (schemas/events.md, schemas/redis.md and the key table that
 * `touchpointd config --defaults` prints), not read from the code. YAML files
 * are written to a fresh temporary directory that the group teardown
 * removes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define TMPDIR_PREFIX "test_config"
#include "tmpdir_fixture.h"
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Loads text (as file name) over the defaults into *cfg; returns the loader's
 * result, errstr holds its message. */
static int load_text(struct config *cfg, const char *name, const char *text,
                     char *path, size_t path_size, char *errstr,
                     size_t errstr_size)
{
    assert_int_equal(config_init(cfg), 0);
    write_file(name, text, path, path_size);
    errstr[0] = '\0';
    return config_load_file(cfg, path, errstr, errstr_size);
}

static void expect_pair(const struct config_pair *pairs, size_t n,
                        const char *key, const char *value)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(pairs[i].key, key) == 0) {
            assert_string_equal(pairs[i].value, value);
            return;
        }
    }
    fail_msg("no entry %s", key);
}

/* ---- defaults ---- */

/* Every key that `touchpointd config --defaults` documents, in table order. */
static const char *const all_keys[] = {
    "kafka",
    "input.topics",
    "input.dead_letter_topic",
    "input.max_message_bytes",
    "redis.url",
    "redis.password",
    "redis.prefix",
    "redis.timeout",
    "aggregation.bucket",
    "aggregation.windows",
    "aggregation.retention",
    "aggregation.flush_interval",
    "aggregation.dedupe_horizon",
    "aggregation.future_skew",
    "service_level.targets",
    "service_level.abandons",
    "limits.max_tenants",
    "limits.max_dims_per_tenant",
    "limits.max_open_correlations",
    "limits.max_pending_cells",
    "limits.dedupe_capacity",
    "log.level",
    "log.format",
    "log.stats_interval",
    "http.address",
    "http.port",
    "alerts",
    "alert_files",
    "alert_outputs.kafka_topic",
    "alert_outputs.alertmanager_url",
    "alert_outputs.resend_interval",
    "alert_outputs.stream_maxlen",
    "service.shutdown_timeout",
};
#define N_ALL_KEYS (sizeof(all_keys) / sizeof(all_keys[0]))

static const struct {
    const char *channel;
    int64_t ms;
} default_targets[] = {
    {"phone", 20 * SEC},    {"chat", 60 * SEC},      {"email", 4 * HOUR},
    {"sms", 15 * MIN},      {"whatsapp", 15 * MIN},  {"instagram", 15 * MIN},
    {"messenger", 15 * MIN},
};
#define N_DEFAULT_TARGETS (sizeof(default_targets) / sizeof(default_targets[0]))

static void expect_documented_defaults(const struct config *cfg)
{
    assert_int_equal(cfg->n_kafka, 3);
    assert_string_equal(config_kafka(cfg, "bootstrap.servers"),
                        "localhost:9092");
    assert_string_equal(config_kafka(cfg, "group.id"), "touchpointd");
    assert_string_equal(config_kafka(cfg, "auto.offset.reset"), "earliest");
    assert_null(config_kafka(cfg, "enable.auto.commit"));

    assert_int_equal(cfg->n_topics, 1);
    assert_string_equal(cfg->topics[0], "touchpoints");
    assert_string_equal(cfg->dead_letter_topic, "touchpoints.dlq");
    assert_int_equal(cfg->max_message_bytes, 65536);

    assert_string_equal(cfg->redis_url, "redis://127.0.0.1:6379/0");
    assert_string_equal(cfg->prefix, "tp");
    assert_int_equal(cfg->redis_timeout_ms, 5 * SEC);

    assert_int_equal(cfg->bucket_ms, 1 * MIN);
    assert_int_equal(cfg->n_windows, 3);
    assert_string_equal(cfg->windows[0].name, "5m");
    assert_int_equal(cfg->windows[0].ms, 5 * MIN);
    assert_string_equal(cfg->windows[1].name, "1h");
    assert_int_equal(cfg->windows[1].ms, 1 * HOUR);
    assert_string_equal(cfg->windows[2].name, "24h");
    assert_int_equal(cfg->windows[2].ms, 24 * HOUR);
    assert_int_equal(cfg->retention_ms, 48 * HOUR);
    assert_int_equal(cfg->flush_interval_ms, 1 * SEC);
    assert_int_equal(cfg->dedupe_horizon_ms, 15 * MIN);
    assert_int_equal(cfg->future_skew_ms, 5 * MIN);

    assert_int_equal(cfg->n_targets, N_DEFAULT_TARGETS);
    for (size_t i = 0; i < N_DEFAULT_TARGETS; i++) {
        assert_int_equal(config_target_ms(cfg, default_targets[i].channel),
                         default_targets[i].ms);
    }
    assert_int_equal(cfg->default_target_ms, 15 * MIN);
    assert_int_equal(cfg->abandons, ABANDON_EXCLUDE_SHORT);

    assert_int_equal(cfg->max_tenants, 1000);
    assert_int_equal(cfg->max_dims_per_tenant, 500);
    assert_int_equal(cfg->max_open_correlations, 2000000);
    assert_int_equal(cfg->max_pending_cells, 200000);
    assert_int_equal(cfg->dedupe_capacity, 2000000);

    assert_string_equal(cfg->log_level, "info");
    assert_string_equal(cfg->log_format, "logfmt");
    assert_int_equal(cfg->stats_interval_ms, 30 * SEC);
    assert_string_equal(cfg->http_address, "127.0.0.1");
    assert_int_equal(cfg->http_port, 9725);
    assert_string_equal(cfg->redis_password, "");
    assert_string_equal(cfg->alert_topic, "touchpoint.alerts");
    assert_string_equal(cfg->alertmanager_url, "");
    assert_int_equal(cfg->alert_resend_ms, 1 * MIN);
    assert_int_equal(cfg->alert_stream_maxlen, 10000);
    assert_int_equal(cfg->n_alert_files, 0);
    assert_int_equal(cfg->shutdown_timeout_ms, 10 * SEC);
}

static void test_init_sets_every_documented_default(void **state)
{
    struct config cfg;
    char err[256] = "";

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    expect_documented_defaults(&cfg);
    if (config_check(&cfg, err, sizeof(err)) != 0) {
        fail_msg("defaults fail config_check: %s", err);
    }
    config_release(&cfg);
}

/* The keys of the defaults text: the line after each comment names one key,
 * at indent 0 (top-level key) or 2 (under the last section line). */
static size_t keys_of_defaults_text(char keys[][64], size_t max)
{
    char *text = NULL, *save = NULL, *line;
    size_t size = 0, n = 0;
    char section[64] = "";
    int after_comment = 0;
    FILE *f = open_memstream(&text, &size);

    assert_non_null(f);
    config_write_defaults(f);
    assert_int_equal(fclose(f), 0);
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        const char *s = line + strspn(line, " ");
        size_t indent = (size_t)(s - line), len = strcspn(s, ":");
        if (*s == '#') {
            after_comment = 1;
            continue;
        }
        if (indent == 0 && !after_comment) {
            snprintf(section, sizeof(section), "%.*s", (int)len, s);
        } else if (after_comment) {
            assert_true(n < max);
            if (indent == 0) {
                snprintf(keys[n++], 64, "%.*s", (int)len, s);
            } else {
                assert_int_equal(indent, 2);
                snprintf(keys[n++], 64, "%s.%.*s", section, (int)len, s);
            }
        }
        after_comment = 0;
    }
    free(text);
    return n;
}

static void test_defaults_text_documents_every_key_once(void **state)
{
    char keys[64][64];
    size_t n = keys_of_defaults_text(keys, 64);

    (void)state;
    assert_int_equal(n, N_ALL_KEYS);
    for (size_t i = 0; i < N_ALL_KEYS; i++) {
        assert_string_equal(keys[i], all_keys[i]);
    }
}

static void test_target_ms_own_channel_or_default(void **state)
{
    struct config cfg;

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    assert_int_equal(config_target_ms(&cfg, "phone"), 20 * SEC);
    assert_int_equal(config_target_ms(&cfg, "email"), 4 * HOUR);
    assert_int_equal(config_target_ms(&cfg, "web"), 15 * MIN);
    assert_int_equal(config_target_ms(&cfg, "default"), 15 * MIN);
    assert_int_equal(config_target_ms(&cfg, "phon"), 15 * MIN);
    cfg.default_target_ms = 42;
    assert_int_equal(config_target_ms(&cfg, "web"), 42);
    assert_int_equal(config_target_ms(&cfg, "phone"), 20 * SEC);
    config_release(&cfg);
}

/* ---- loading ---- */

static const char full_yaml[] =
    "# every section, every key changed\n"
    "kafka:\n"
    "  bootstrap.servers: broker-1:9093,broker-2:9093\n"
    "  group.id: cx-kpis\n"
    "  auto.offset.reset: latest\n"
    "input:\n"
    "  topics:\n"
    "    - tp-a\n"
    "    - tp-b\n"
    "  dead_letter_topic: tp.dlq\n"
    "  max_message_bytes: 1024\n"
    "redis:\n"
    "  url: redis://cache:6380/2\n"
    "  prefix: cx\n"
    "  timeout: 1500ms\n"
    "aggregation:\n"
    "  bucket: 30s\n"
    "  windows:\n"
    "    - 1m\n"
    "    - 1h30m\n"
    "  retention: 2d\n"
    "  flush_interval: 2s\n"
    "  dedupe_horizon: 1h\n"
    "  future_skew: 90s\n"
    "service_level:\n"
    "  targets:\n"
    "    phone: 30s\n"
    "    chat: 2m\n"
    "    email: 1h\n"
    "    sms: 10m\n"
    "    whatsapp: 11m\n"
    "    instagram: 12m\n"
    "    messenger: 13m\n"
    "    default: 1h\n"
    "  abandons: missed\n"
    "limits:\n"
    "  max_tenants: 5\n"
    "  max_dims_per_tenant: 6\n"
    "  max_open_correlations: 7\n"
    "  max_pending_cells: 8\n"
    "  dedupe_capacity: 9\n"
    "log:\n"
    "  level: debug\n"
    "  format: json\n"
    "  stats_interval: 1m\n"
    "http:\n"
    "  address: \"::1\"\n"
    "  port: 0\n"
    "service:\n"
    "  shutdown_timeout: 3s\n";

static void expect_full_yaml(const struct config *cfg)
{
    assert_int_equal(cfg->n_kafka, 3);
    assert_string_equal(config_kafka(cfg, "bootstrap.servers"),
                        "broker-1:9093,broker-2:9093");
    assert_string_equal(config_kafka(cfg, "group.id"), "cx-kpis");
    assert_string_equal(config_kafka(cfg, "auto.offset.reset"), "latest");
    assert_int_equal(cfg->n_topics, 2);
    assert_string_equal(cfg->topics[0], "tp-a");
    assert_string_equal(cfg->topics[1], "tp-b");
    assert_string_equal(cfg->dead_letter_topic, "tp.dlq");
    assert_int_equal(cfg->max_message_bytes, 1024);
    assert_string_equal(cfg->redis_url, "redis://cache:6380/2");
    assert_string_equal(cfg->prefix, "cx");
    assert_int_equal(cfg->redis_timeout_ms, 1500);
    assert_int_equal(cfg->bucket_ms, 30 * SEC);
    assert_int_equal(cfg->n_windows, 2);
    assert_string_equal(cfg->windows[0].name, "1m");
    assert_int_equal(cfg->windows[0].ms, 1 * MIN);
    assert_string_equal(cfg->windows[1].name, "1h30m");
    assert_int_equal(cfg->windows[1].ms, 90 * MIN);
    assert_int_equal(cfg->retention_ms, 48 * HOUR);
    assert_int_equal(cfg->flush_interval_ms, 2 * SEC);
    assert_int_equal(cfg->dedupe_horizon_ms, 1 * HOUR);
    assert_int_equal(cfg->future_skew_ms, 90 * SEC);
    assert_int_equal(cfg->n_targets, 7);
    assert_int_equal(config_target_ms(cfg, "phone"), 30 * SEC);
    assert_int_equal(config_target_ms(cfg, "chat"), 2 * MIN);
    assert_int_equal(config_target_ms(cfg, "email"), 1 * HOUR);
    assert_int_equal(config_target_ms(cfg, "sms"), 10 * MIN);
    assert_int_equal(config_target_ms(cfg, "whatsapp"), 11 * MIN);
    assert_int_equal(config_target_ms(cfg, "instagram"), 12 * MIN);
    assert_int_equal(config_target_ms(cfg, "messenger"), 13 * MIN);
    assert_int_equal(config_target_ms(cfg, "web"), 1 * HOUR);
    assert_int_equal(cfg->default_target_ms, 1 * HOUR);
    assert_int_equal(cfg->abandons, ABANDON_MISSED);
    assert_int_equal(cfg->max_tenants, 5);
    assert_int_equal(cfg->max_dims_per_tenant, 6);
    assert_int_equal(cfg->max_open_correlations, 7);
    assert_int_equal(cfg->max_pending_cells, 8);
    assert_int_equal(cfg->dedupe_capacity, 9);
    assert_string_equal(cfg->log_level, "debug");
    assert_string_equal(cfg->log_format, "json");
    assert_int_equal(cfg->stats_interval_ms, 1 * MIN);
    assert_string_equal(cfg->http_address, "::1");
    assert_int_equal(cfg->http_port, 0);
    assert_int_equal(cfg->shutdown_timeout_ms, 3 * SEC);
}

static void test_load_full_file_sets_every_key(void **state)
{
    struct config cfg;
    char path[512], err[512];

    (void)state;
    if (load_text(&cfg, "full.yaml", full_yaml, path, sizeof(path), err,
                  sizeof(err)) != 0) {
        fail_msg("full file rejected: %s", err);
    }
    expect_full_yaml(&cfg);
    assert_int_equal(config_check(&cfg, err, sizeof(err)), 0);
    config_release(&cfg);
}

static void test_load_empty_file_keeps_defaults(void **state)
{
    struct config cfg;
    char path[512], err[512];

    (void)state;
    assert_int_equal(load_text(&cfg, "empty.yaml", "", path, sizeof(path), err,
                               sizeof(err)),
                     0);
    expect_documented_defaults(&cfg);
    config_release(&cfg);
    assert_int_equal(load_text(&cfg, "comment.yaml", "# nothing here\n", path,
                               sizeof(path), err, sizeof(err)),
                     0);
    expect_documented_defaults(&cfg);
    config_release(&cfg);
}

/* Each bad file must fail with "FILE:LINE: KEY: " and a word of what was
 * expected. */
static const struct {
    const char *name;
    const char *yaml;
    int line;
    const char *key;
    const char *expected; /* a fragment of the explanation */
} bad_files[] = {
    {"unknown key in a section",
     "redis:\n  url: redis://h:1/0\n  prefx: x\n", 3, "redis.prefx",
     "unknown key"},
    {"unknown top-level key", "# c\n\nlimit:\n  max_tenants: 3\n", 3, "limit",
     "unknown key"},
    {"unknown key deep in a file",
     "input:\n  topics: [a]\naggregation:\n  bucket: 1m\n  window: 5m\n", 5,
     "aggregation.window", "unknown key"},
    {"string for an int", "limits:\n  max_tenants: lots\n", 2,
     "limits.max_tenants", "integer"},
    {"float for an int", "limits:\n\n  max_pending_cells: 1.5\n", 3,
     "limits.max_pending_cells", "integer"},
    {"zero for a positive int", "input:\n  max_message_bytes: 0\n", 2,
     "input.max_message_bytes", "positive integer"},
    {"negative int", "limits:\n  dedupe_capacity: -4\n", 2,
     "limits.dedupe_capacity", "positive integer"},
    {"list for an int", "limits:\n  max_tenants:\n    - 1\n", 3,
     "limits.max_tenants", "single value"},
    {"duration in words", "aggregation:\n  bucket: 5 minutes\n", 2,
     "aggregation.bucket", "duration"},
    {"duration without unit", "redis:\n  timeout: 5000\n", 2,
     "redis.timeout", "duration"},
    {"zero duration", "aggregation:\n  retention: 0s\n", 2,
     "aggregation.retention", "duration"},
    {"window list with a bad entry",
     "aggregation:\n  windows:\n    - 5m\n    - soon\n    - 1h\n", 4,
     "aggregation.windows", "duration"},
    {"window name too long",
     "aggregation:\n  windows:\n    - 1h1h1h1h1h1h1h1h\n", 3,
     "aggregation.windows", "duration"},
    {"target not a duration",
     "service_level:\n  targets:\n    phone: 20\n", 3,
     "service_level.targets.phone", "duration"},
    {"targets not a map", "service_level:\n  targets: 20s\n", 2,
     "service_level.targets", "mapping"},
    {"kafka not a map", "kafka: localhost:9092\n", 1, "kafka", "mapping"},
    {"abandons unknown mode", "service_level:\n  abandons: sometimes\n", 2,
     "service_level.abandons", "exclude_short"},
    {"section given a scalar", "limits: 5\n", 1, "limits", "mapping"},
    {"string key given a map", "redis:\n  url:\n    host: x\n", 3,
     "redis.url", "single value"},
};

static void test_load_errors_name_file_line_and_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
        struct config cfg;
        char path[512], err[512], want[640];
        int rc = load_text(&cfg, "bad.yaml", bad_files[i].yaml, path,
                           sizeof(path), err, sizeof(err));
        snprintf(want, sizeof(want), "%s:%d: %s: ", path, bad_files[i].line,
                 bad_files[i].key);
        if (rc != -1 || strstr(err, want) == NULL ||
            strstr(err, bad_files[i].expected) == NULL) {
            fail_msg("%s: rc %d, error \"%s\", wanted \"%s\" and \"%s\"",
                     bad_files[i].name, rc, err, want, bad_files[i].expected);
        }
        config_release(&cfg);
    }
}

static void test_load_missing_file_and_bad_yaml_name_the_file(void **state)
{
    struct config cfg;
    char path[512], err[512], want[640];

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    snprintf(path, sizeof(path), "%s/does-not-exist.yaml", tmpdir);
    assert_int_equal(config_load_file(&cfg, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    config_release(&cfg);

    assert_int_equal(load_text(&cfg, "syntax.yaml",
                               "redis:\n  url: [unclosed\n  prefix: x\n", path,
                               sizeof(path), err, sizeof(err)),
                     -1);
    snprintf(want, sizeof(want), "%s:", path);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "YAML"));
    config_release(&cfg);
}

static void test_kafka_map_merges_over_defaults(void **state)
{
    struct config cfg;
    char path[512], err[512];

    (void)state;
    assert_int_equal(load_text(&cfg, "kafka.yaml",
                               "kafka:\n"
                               "  bootstrap.servers: broker:9093\n"
                               "  security.protocol: SSL\n",
                               path, sizeof(path), err, sizeof(err)),
                     0);
    assert_int_equal(cfg.n_kafka, 4);
    assert_string_equal(config_kafka(&cfg, "bootstrap.servers"), "broker:9093");
    assert_string_equal(config_kafka(&cfg, "group.id"), "touchpointd");
    assert_string_equal(config_kafka(&cfg, "auto.offset.reset"), "earliest");
    assert_string_equal(config_kafka(&cfg, "security.protocol"), "SSL");
    expect_pair(cfg.kafka, cfg.n_kafka, "security.protocol", "SSL");
    /* config_set_kafka (the --brokers path) replaces, too */
    assert_int_equal(config_set_kafka(&cfg, "bootstrap.servers", "b2:1"), 0);
    assert_int_equal(cfg.n_kafka, 4);
    assert_string_equal(config_kafka(&cfg, "bootstrap.servers"), "b2:1");
    config_release(&cfg);
}

static void test_targets_merge_and_default_sets_the_fallback(void **state)
{
    struct config cfg;
    char path[512], err[512];

    (void)state;
    assert_int_equal(load_text(&cfg, "targets.yaml",
                               "service_level:\n"
                               "  targets:\n"
                               "    phone: 30s\n"
                               "    web: 2m\n"
                               "    default: 1h\n",
                               path, sizeof(path), err, sizeof(err)),
                     0);
    assert_int_equal(config_target_ms(&cfg, "phone"), 30 * SEC);
    assert_int_equal(config_target_ms(&cfg, "web"), 2 * MIN);
    assert_int_equal(config_target_ms(&cfg, "chat"), 60 * SEC); /* kept */
    assert_int_equal(config_target_ms(&cfg, "email"), 4 * HOUR);
    assert_int_equal(config_target_ms(&cfg, "fax"), 1 * HOUR);
    assert_int_equal(cfg.default_target_ms, 1 * HOUR);
    assert_int_equal(cfg.n_targets, N_DEFAULT_TARGETS + 1);
    expect_pair(cfg.targets, cfg.n_targets, "web", "2m");
    assert_int_equal(cfg.abandons, ABANDON_EXCLUDE_SHORT);
    config_release(&cfg);
}

static void test_lists_are_replaced_whole(void **state)
{
    struct config cfg;
    char path[512], err[512];

    (void)state;
    assert_int_equal(load_text(&cfg, "lists.yaml",
                               "aggregation:\n"
                               "  windows: [10m, 2h]\n"
                               "input:\n"
                               "  topics:\n"
                               "    - other\n",
                               path, sizeof(path), err, sizeof(err)),
                     0);
    assert_int_equal(cfg.n_windows, 2);
    assert_string_equal(cfg.windows[0].name, "10m");
    assert_int_equal(cfg.windows[0].ms, 10 * MIN);
    assert_string_equal(cfg.windows[1].name, "2h");
    assert_int_equal(cfg.windows[1].ms, 2 * HOUR);
    assert_int_equal(cfg.n_topics, 1);
    assert_string_equal(cfg.topics[0], "other");
    config_release(&cfg);

    /* a single scalar is a one-element list */
    assert_int_equal(load_text(&cfg, "scalar.yaml",
                               "aggregation:\n  windows: 15m\n", path,
                               sizeof(path), err, sizeof(err)),
                     0);
    assert_int_equal(cfg.n_windows, 1);
    assert_string_equal(cfg.windows[0].name, "15m");
    assert_int_equal(cfg.windows[0].ms, 15 * MIN);
    config_release(&cfg);
}

/* A later file loaded over an earlier one: scalars replaced, lists replaced,
 * maps merged. */
static void test_second_file_loads_over_the_first(void **state)
{
    struct config cfg;
    char path[512], err[512];

    (void)state;
    assert_int_equal(load_text(&cfg, "first.yaml", full_yaml, path,
                               sizeof(path), err, sizeof(err)),
                     0);
    write_file("second.yaml",
               "redis:\n  prefix: again\naggregation:\n  windows: [3m]\n"
               "kafka:\n  client.id: me\n",
               path, sizeof(path));
    assert_int_equal(config_load_file(&cfg, path, err, sizeof(err)), 0);
    assert_string_equal(cfg.prefix, "again");
    assert_int_equal(cfg.n_windows, 1);
    assert_int_equal(cfg.windows[0].ms, 3 * MIN);
    assert_string_equal(config_kafka(&cfg, "group.id"), "cx-kpis");
    assert_string_equal(config_kafka(&cfg, "client.id"), "me");
    assert_string_equal(cfg.redis_url, "redis://cache:6380/2");
    config_release(&cfg);
}

/* ---- cross-key checks ---- */

static void expect_check_error(const struct config *cfg, const char *fragment)
{
    char err[256] = "";

    if (config_check(cfg, err, sizeof(err)) != -1 ||
        strstr(err, fragment) == NULL) {
        fail_msg("config_check: wanted an error naming \"%s\", got \"%s\"",
                 fragment, err);
    }
}

static void expect_check_ok(const struct config *cfg)
{
    char err[256] = "";

    if (config_check(cfg, err, sizeof(err)) != 0) {
        fail_msg("config_check rejected: %s", err);
    }
}

static void test_check_window_must_be_a_multiple_of_the_bucket(void **state)
{
    struct config cfg;

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    snprintf(cfg.windows[1].name, sizeof(cfg.windows[1].name), "90s");
    cfg.windows[1].ms = 90 * SEC;
    expect_check_error(&cfg, "aggregation.windows");
    expect_check_error(&cfg, "90s");
    cfg.bucket_ms = 30 * SEC; /* now 90s is 3 buckets */
    expect_check_ok(&cfg);
    cfg.n_windows = 0;
    expect_check_error(&cfg, "aggregation.windows");
    config_release(&cfg);
}

static void test_check_retention_covers_longest_window_plus_bucket(
    void **state)
{
    struct config cfg;

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    /* longest window 24h, bucket 1m */
    cfg.retention_ms = 24 * HOUR;
    expect_check_error(&cfg, "aggregation.retention");
    cfg.retention_ms = 24 * HOUR + 1 * MIN - 1;
    expect_check_error(&cfg, "aggregation.retention");
    cfg.retention_ms = 24 * HOUR + 1 * MIN;
    expect_check_ok(&cfg);
    config_release(&cfg);
}

static void test_check_leaf_rows_fit_a_correlation_record(void **state)
{
    struct config cfg;

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    cfg.max_dims_per_tenant = 1023;
    cfg.max_tenants = 65536; /* 65,536 x 1,024 = 2^26 leaf rows */
    expect_check_ok(&cfg);
    cfg.max_tenants = 65537;
    expect_check_error(&cfg, "limits.max_tenants x "
                             "(limits.max_dims_per_tenant + 1)");
    cfg.max_tenants = 1;
    cfg.max_dims_per_tenant = INT64_C(1) << 26;
    expect_check_error(&cfg, "limits.max_dims_per_tenant");
    config_release(&cfg);
}

/* A pending cell's key has 20 bits for the tenant + 1, 20 for the row (a leaf
 * and up to three roll-ups each) and 24 for the bucket: configurations that
 * would make two cells share a key are refused. */
static void test_check_cell_keys_fit_tenants_rows_and_buckets(void **state)
{
    struct config cfg;

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    cfg.max_dims_per_tenant = 31;
    cfg.max_tenants = (1 << 20) - 1;
    expect_check_ok(&cfg);
    cfg.max_tenants = 1 << 20;
    expect_check_error(&cfg, "limits.max_tenants: must be at most 1048575");
    cfg.max_tenants = 1;
    cfg.max_dims_per_tenant = (1 << 18) - 1; /* 2^18 leaves x 4 = 2^20 rows */
    expect_check_ok(&cfg);
    cfg.max_dims_per_tenant = 1 << 18;
    expect_check_error(&cfg, "limits.max_dims_per_tenant: must be at most "
                             "262143");
    cfg.max_dims_per_tenant = 500;
    /* 10 ms buckets: 48h is 17.3 M of them, two retentions far more */
    cfg.bucket_ms = 10;
    cfg.n_windows = 1;
    cfg.windows[0].ms = MIN;
    expect_check_error(&cfg, "aggregation.retention: two retentions");
    /* 5m of skew is 30,000 buckets: 2 x 8,373,605 + 30,000 + 4 < 2^24 */
    cfg.retention_ms = INT64_C(8373605) * 10;
    expect_check_ok(&cfg);
    cfg.retention_ms = INT64_C(8373606) * 10;
    expect_check_error(&cfg, "aggregation.retention: two retentions");
    cfg.retention_ms = INT64_MAX;
    expect_check_error(&cfg, "aggregation.retention");
    config_release(&cfg);
}

/* Durations stop at 3650d: longer ones are mistakes, and multiples of them
 * (resend intervals, deadlines) must not overflow. */
static void test_durations_are_at_most_3650_days(void **state)
{
    struct config cfg;
    char path[512], err[512];

    (void)state;
    assert_int_equal(load_text(&cfg, "d3650.yaml",
                               "redis:\n  timeout: 3650d\n", path,
                               sizeof(path), err, sizeof(err)),
                     0);
    assert_true(cfg.redis_timeout_ms == INT64_C(3650) * 86400000);
    config_release(&cfg);
    assert_int_equal(load_text(&cfg, "d3651.yaml",
                               "alert_outputs:\n  resend_interval: 3650d1ms\n",
                               path, sizeof(path), err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, ":2: alert_outputs.resend_interval: "
                                "expected a duration like 500ms, 30s, 5m, 4h, "
                                "2d, at most 3650d"));
    config_release(&cfg);
}

static void test_check_prefix_must_be_a_plain_word(void **state)
{
    static const char *const bad[] = {"tp:x", ":", "a{b", ""};
    struct config cfg;

    (void)state;
    assert_int_equal(config_init(&cfg), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(config_set_string(&cfg.prefix, bad[i]), 0);
        expect_check_error(&cfg, "redis.prefix");
    }
    assert_int_equal(config_set_string(&cfg.prefix, "cx-prod"), 0);
    expect_check_ok(&cfg);
    config_release(&cfg);
}

static void test_check_needs_a_topic(void **state)
{
    struct config cfg;
    char path[512], err[512];

    (void)state;
    assert_int_equal(load_text(&cfg, "notopics.yaml", "input:\n  topics: []\n",
                               path, sizeof(path), err, sizeof(err)),
                     0);
    assert_int_equal(cfg.n_topics, 0);
    expect_check_error(&cfg, "input.topics");
    config_release(&cfg);
}

/* ---- round trip ---- */

static void expect_same_pairs(const struct config_pair *a, size_t na,
                              const struct config_pair *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        size_t j = 0;
        while (j < nb && strcmp(a[i].key, b[j].key) != 0) {
            j++;
        }
        if (j == nb) {
            fail_msg("%s missing after the round trip", a[i].key);
        }
        assert_string_equal(a[i].value, b[j].value);
        assert_int_equal(a[i].ms, b[j].ms);
    }
}

static void expect_same_config(const struct config *a, const struct config *b)
{
    expect_same_pairs(a->kafka, a->n_kafka, b->kafka, b->n_kafka);
    assert_int_equal(a->n_topics, b->n_topics);
    for (size_t i = 0; i < a->n_topics; i++) {
        assert_string_equal(a->topics[i], b->topics[i]);
    }
    assert_string_equal(a->dead_letter_topic, b->dead_letter_topic);
    assert_int_equal(a->max_message_bytes, b->max_message_bytes);
    assert_string_equal(a->redis_url, b->redis_url);
    assert_string_equal(a->prefix, b->prefix);
    assert_int_equal(a->redis_timeout_ms, b->redis_timeout_ms);
    assert_int_equal(a->bucket_ms, b->bucket_ms);
    assert_int_equal(a->n_windows, b->n_windows);
    for (size_t i = 0; i < a->n_windows; i++) {
        assert_string_equal(a->windows[i].name, b->windows[i].name);
        assert_int_equal(a->windows[i].ms, b->windows[i].ms);
    }
    assert_int_equal(a->retention_ms, b->retention_ms);
    assert_int_equal(a->flush_interval_ms, b->flush_interval_ms);
    assert_int_equal(a->dedupe_horizon_ms, b->dedupe_horizon_ms);
    assert_int_equal(a->future_skew_ms, b->future_skew_ms);
    expect_same_pairs(a->targets, a->n_targets, b->targets, b->n_targets);
    assert_int_equal(a->default_target_ms, b->default_target_ms);
    assert_int_equal(a->abandons, b->abandons);
    assert_int_equal(a->max_tenants, b->max_tenants);
    assert_int_equal(a->max_dims_per_tenant, b->max_dims_per_tenant);
    assert_int_equal(a->max_open_correlations, b->max_open_correlations);
    assert_int_equal(a->max_pending_cells, b->max_pending_cells);
    assert_int_equal(a->dedupe_capacity, b->dedupe_capacity);
    assert_string_equal(a->log_level, b->log_level);
    assert_string_equal(a->log_format, b->log_format);
    assert_int_equal(a->stats_interval_ms, b->stats_interval_ms);
    assert_string_equal(a->http_address, b->http_address);
    assert_string_equal(a->redis_password, b->redis_password);
    assert_string_equal(a->alert_topic, b->alert_topic);
    assert_string_equal(a->alertmanager_url, b->alertmanager_url);
    assert_int_equal(a->alert_resend_ms, b->alert_resend_ms);
    assert_int_equal(a->alert_stream_maxlen, b->alert_stream_maxlen);
    assert_int_equal(a->http_port, b->http_port);
    assert_int_equal(a->shutdown_timeout_ms, b->shutdown_timeout_ms);
}

/* The text of config_write_defaults loads back into the defaults: loaded over
 * config_init, and loaded over a config where every key (map entries too)
 * had been changed by full_yaml, which proves each line is actually read. */
static void test_defaults_text_loads_back_to_the_same_config(void **state)
{
    struct config want, got;
    char path[512], dpath[512], err[512];
    FILE *f;

    (void)state;
    snprintf(dpath, sizeof(dpath), "%s/defaults.yaml", tmpdir);
    f = fopen(dpath, "w");
    assert_non_null(f);
    config_write_defaults(f);
    assert_int_equal(fclose(f), 0);

    assert_int_equal(config_init(&want), 0);
    assert_int_equal(config_init(&got), 0);
    if (config_load_file(&got, dpath, err, sizeof(err)) != 0) {
        fail_msg("defaults text rejected: %s", err);
    }
    expect_same_config(&want, &got);
    expect_documented_defaults(&got);
    config_release(&got);

    assert_int_equal(load_text(&got, "changed.yaml", full_yaml, path,
                               sizeof(path), err, sizeof(err)),
                     0);
    if (config_load_file(&got, dpath, err, sizeof(err)) != 0) {
        fail_msg("defaults text rejected: %s", err);
    }
    expect_same_config(&want, &got);
    config_release(&got);
    config_release(&want);
}


/* ---- environment and secret files ---- */

static void test_env_expands_and_dollar_dollar_is_literal(void **state)
{
    struct config cfg;
    char path[512], err[512];

    (void)state;
    setenv("TP_CFG_TEST_BROKERS", "b1:9092,b2:9092", 1);
    assert_int_equal(load_text(&cfg, "env.yaml",
                               "kafka:\n"
                               "  bootstrap.servers: ${TP_CFG_TEST_BROKERS}\n"
                               "  client.id: a$$b-${TP_CFG_TEST_BROKERS}\n",
                               path, sizeof(path), err, sizeof(err)),
                     0);
    expect_pair(cfg.kafka, cfg.n_kafka, "bootstrap.servers", "b1:9092,b2:9092");
    expect_pair(cfg.kafka, cfg.n_kafka, "client.id", "a$b-b1:9092,b2:9092");
    config_release(&cfg);
}

static void test_env_unset_names_variable_file_line_and_key(void **state)
{
    struct config cfg;
    char path[512], err[512], want[600];

    (void)state;
    unsetenv("TP_CFG_TEST_UNSET");
    assert_int_equal(load_text(&cfg, "unset.yaml",
                               "redis:\n  url: ${TP_CFG_TEST_UNSET}\n", path,
                               sizeof(path), err, sizeof(err)),
                     -1);
    snprintf(want, sizeof(want),
             "%s:2: redis.url: environment variable TP_CFG_TEST_UNSET is not "
             "set",
             path);
    assert_string_equal(err, want);
    config_release(&cfg);
}

static void test_file_variants_read_secrets(void **state)
{
    struct config cfg;
    char path[512], err[512], secret[512], text[1200];

    (void)state;
    write_file("secret", "s3cr3t\n", secret, sizeof(secret));
    snprintf(text, sizeof(text),
             "kafka:\n  sasl.password_file: %s\n"
             "redis:\n  password_file: %s\n",
             secret, secret);
    assert_int_equal(
        load_text(&cfg, "files.yaml", text, path, sizeof(path), err, sizeof(err)),
        0);
    expect_pair(cfg.kafka, cfg.n_kafka, "sasl.password", "s3cr3t");
    assert_string_equal(cfg.redis_password, "s3cr3t");
    config_release(&cfg);
}

static void test_file_variant_errors(void **state)
{
    struct config cfg;
    char path[512], err[512];

    (void)state;
    assert_int_equal(load_text(&cfg, "nofile.yaml",
                               "redis:\n  password_file: /nonexistent/x\n",
                               path, sizeof(path), err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, ":2: redis.password_file: cannot read "
                                "/nonexistent/x"));
    config_release(&cfg);
    /* A secret of 4095 bytes (the most a value holds) is read whole; one
     * byte more is refused, naming the file, never its contents. */
    {
        static char big[4097];
        char secret[512], text[1200];
        memset(big, 'k', 4095);
        big[4095] = '\0';
        write_file("secret4095", big, secret, sizeof(secret));
        snprintf(text, sizeof(text), "kafka:\n  sasl.password_file: %s\n",
                 secret);
        assert_int_equal(load_text(&cfg, "s4095.yaml", text, path,
                                   sizeof(path), err, sizeof(err)),
                         0);
        for (size_t i = 0; i < cfg.n_kafka; i++) {
            if (strcmp(cfg.kafka[i].key, "sasl.password") == 0) {
                assert_int_equal(strlen(cfg.kafka[i].value), 4095);
            }
        }
        config_release(&cfg);
        big[4095] = 'k';
        write_file("secret4096", big, secret, sizeof(secret));
        snprintf(text, sizeof(text), "kafka:\n  sasl.password_file: %s\n",
                 secret);
        assert_int_equal(load_text(&cfg, "s4096.yaml", text, path,
                                   sizeof(path), err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "secret4096 is longer than 4095 bytes"));
        assert_null(strstr(err, "kkkk"));
        config_release(&cfg);
    }
    /* Only string keys have a _file variant. */
    assert_int_equal(load_text(&cfg, "notstring.yaml",
                               "aggregation:\n  windows_file: /etc/hosts\n",
                               path, sizeof(path), err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, ":2: aggregation.windows_file: unknown key"));
    config_release(&cfg);
}

static void test_summary_masks_secrets(void **state)
{
    struct config cfg;
    char path[512], err[512], buf[2000];

    (void)state;
    assert_int_equal(load_text(&cfg, "mask.yaml",
                               "kafka:\n  sasl.password: hunter2\n"
                               "  ssl.key.password: hunter3\n"
                               "redis:\n  url: redis://u:hunter4@h:6379/2\n"
                               "  password: hunter5\n",
                               path, sizeof(path), err, sizeof(err)),
                     0);
    config_write_summary(&cfg, buf, sizeof(buf));
    assert_null(strstr(buf, "hunter"));
    assert_non_null(strstr(buf, "kafka.sasl.password=*****"));
    assert_non_null(strstr(buf, "redis.url=redis://u:*****@h:6379/2"));
    assert_non_null(strstr(buf, "kafka.bootstrap.servers=localhost:9092"));
    config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_sets_every_documented_default),
        cmocka_unit_test(test_env_expands_and_dollar_dollar_is_literal),
        cmocka_unit_test(test_env_unset_names_variable_file_line_and_key),
        cmocka_unit_test(test_file_variants_read_secrets),
        cmocka_unit_test(test_file_variant_errors),
        cmocka_unit_test(test_summary_masks_secrets),
        cmocka_unit_test(test_defaults_text_documents_every_key_once),
        cmocka_unit_test(test_target_ms_own_channel_or_default),
        cmocka_unit_test(test_load_full_file_sets_every_key),
        cmocka_unit_test(test_load_empty_file_keeps_defaults),
        cmocka_unit_test(test_load_errors_name_file_line_and_key),
        cmocka_unit_test(test_load_missing_file_and_bad_yaml_name_the_file),
        cmocka_unit_test(test_kafka_map_merges_over_defaults),
        cmocka_unit_test(test_targets_merge_and_default_sets_the_fallback),
        cmocka_unit_test(test_lists_are_replaced_whole),
        cmocka_unit_test(test_second_file_loads_over_the_first),
        cmocka_unit_test(test_check_window_must_be_a_multiple_of_the_bucket),
        cmocka_unit_test(
            test_check_retention_covers_longest_window_plus_bucket),
        cmocka_unit_test(test_check_leaf_rows_fit_a_correlation_record),
        cmocka_unit_test(test_check_cell_keys_fit_tenants_rows_and_buckets),
        cmocka_unit_test(test_durations_are_at_most_3650_days),
        cmocka_unit_test(test_check_prefix_must_be_a_plain_word),
        cmocka_unit_test(test_check_needs_a_topic),
        cmocka_unit_test(test_defaults_text_loads_back_to_the_same_config),
    };

    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
