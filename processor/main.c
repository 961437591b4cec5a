/* SPDX-License-Identifier: Apache-2.0 */
/* main: touchpointd's command line — parses options, loads the config and wires the input to the engine. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerting.h"
#include "config.h"
#include "consumer.h"
#include "engine.h"
#include "httpd.h"
#include "log.h"
#include "metrics_catalog.h"
#include "replay.h"
#include "rules.h"
#include "store.h"
#include "tstamp.h"

#ifndef TP_VERSION
#define TP_VERSION "0.1.0"
#endif

static const char usage_text[] =
    "usage: touchpointd COMMAND [OPTIONS] [FILE]\n"
    "\n"
    "Turns a Kafka stream of customer touchpoints into rolling CX KPIs in "
    "Redis.\n"
    "\n"
    "Commands:\n"
    "  run                 consume from Kafka (consumer group) until SIGTERM\n"
    "  replay FILE|-       feed newline-delimited JSON through the same "
    "pipeline on\n"
    "                      event time, write the same Redis keys, print a "
    "summary\n"
    "  backtest FILE|-     replay on event time through the alert rules and "
    "print every\n"
    "                      transition as a JSON line (summary on stderr); "
    "writes no\n"
    "                      live keys (a scratch prefix, deleted after)\n"
    "  check               validate the configuration and exit (0 = valid)\n"
    "  config --defaults   print every configuration key with its default\n"
    "  config --alerts     print every alert rule key and what it means\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   YAML configuration; optional, the built-in "
    "defaults serve\n"
    "                      a local setup (see `touchpointd config "
    "--defaults`)\n"
    "  --redis URL         redis://[user[:pass]@]host:port[/db] "
    "(overrides redis.url)\n"
    "  --brokers LIST      host:port[,...] (overrides "
    "kafka.bootstrap.servers)\n"
    "  -h, --help          this text\n"
    "  --version           the version\n"
    "\n"
    "Precedence: command-line flags, then TOUCHPOINTD_REDIS / "
    "TOUCHPOINTD_BROKERS,\n"
    "then the file, then the defaults.\n"
    "Keys written: see schemas/redis.md. Events: schemas/events.md.\n";

struct options {
    const char *command;
    const char *config;
    const char *redis;
    const char *brokers;
    const char *file;
    int defaults; /* config: 1 --defaults, 2 --alerts */
};

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

static void on_signal(int sig)
{
    if (sig == SIGHUP) {
        reload_flag = 1;
    } else {
        stop_flag = 1;
    }
}

/* Prints "touchpointd: WHAT ARG" and the help hint; returns 2. */
static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "touchpointd: %s%s%s\nTry `touchpointd --help`.\n", what,
            arg[0] ? " " : "", arg);
    return 2;
}

/* Returns 0, 1 (done: help/version printed) or 2 (usage error). */
static int parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("touchpointd %s\n", TP_VERSION);
            return 1;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            slot = &o->config;
        } else if (strcmp(a, "--redis") == 0) {
            slot = &o->redis;
        } else if (strcmp(a, "--brokers") == 0) {
            slot = &o->brokers;
        } else if (strcmp(a, "--defaults") == 0) {
            o->defaults = 1;
        } else if (strcmp(a, "--alerts") == 0) {
            o->defaults = 2;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option", a);
        } else if (o->command == NULL) {
            o->command = a;
        } else if (o->file == NULL) {
            o->file = a;
        } else {
            return usage_error("unexpected argument", a);
        }
        if (slot != NULL) {
            if (++i == argc) {
                return usage_error("a value is needed after", a);
            }
            *slot = argv[i];
        }
    }
    if (o->command == NULL) {
        return usage_error("a command is required (run, replay, check, config)", "");
    }
    return 0;
}

/* Defaults, then the file, then the environment, then the flags. */
static int load_config(const struct options *o, struct config *cfg)
{
    char err[512];
    const char *env;

    if (config_init(cfg) < 0) {
        fprintf(stderr, "touchpointd: out of memory\n");
        return -1;
    }
    if (o->config != NULL && config_load_file(cfg, o->config, err, sizeof(err)) < 0) {
        fprintf(stderr, "touchpointd: %s\n", err);
        return -1;
    }
    env = getenv("TOUCHPOINTD_REDIS");
    if ((env && config_set_string(&cfg->redis_url, env) < 0) ||
        (o->redis && config_set_string(&cfg->redis_url, o->redis) < 0)) {
        return -1;
    }
    env = getenv("TOUCHPOINTD_BROKERS");
    if ((env && config_set_kafka(cfg, "bootstrap.servers", env) < 0) ||
        (o->brokers && config_set_kafka(cfg, "bootstrap.servers", o->brokers) < 0)) {
        return -1;
    }
    if (config_load_rules(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "touchpointd: %s\n", err);
        return -1;
    }
    if (config_check(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "touchpointd: %s%s%s\n", o->config ? o->config : "",
                o->config ? ": " : "", err);
        return -1;
    }
    if (log_configure(cfg->log_level, cfg->log_format) < 0) {
        fprintf(stderr, "touchpointd: log.level or log.format: unknown value\n");
        return -1;
    }
    return 0;
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int cmd_replay(const struct config *cfg, const char *file)
{
    char err[512];
    struct engine *e;
    FILE *in;
    int rc;

    if (file == NULL) {
        return usage_error("replay needs a FILE (or - for stdin)", "");
    }
    in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (in == NULL) {
        fprintf(stderr, "touchpointd: %s: cannot open\n", file);
        return 1;
    }
    e = engine_new(cfg, true, err, sizeof(err));
    if (e == NULL) {
        fprintf(stderr, "touchpointd: %s\n", err);
        rc = 1;
        goto out_close;
    }
    rc = replay_stream(e, in, file, &stop_flag) == 0 ? 0 : 1;
    engine_write_summary(e, stdout, rc == 0 ? "replay summary"
                                           : "replay summary (incomplete)");
    engine_destroy(e);
out_close:
    if (in != stdin) {
        fclose(in);
    }
    return rc;
}

static int cmd_backtest(struct config *cfg, const char *file)
{
    struct alerting_outputs outs = {0};
    struct alerting *al = NULL;
    struct engine *e;
    char err[512], scratch[96];
    FILE *in;
    int rc = 1;

    if (file == NULL) {
        return usage_error("backtest needs a FILE (or - for stdin)", "");
    }
    in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (in == NULL) {
        fprintf(stderr, "touchpointd: %s: cannot open\n", file);
        return 1;
    }
    /* Live keys stay untouched: everything goes under a scratch prefix. */
    snprintf(scratch, sizeof(scratch), "%s-backtest-%ld-%lld", cfg->prefix,
             (long)getpid(), (long long)tstamp_now_ms());
    config_set_string(&cfg->prefix, scratch);
    outs.print = stdout;
    e = engine_new(cfg, true, err, sizeof(err));
    if (e == NULL ||
        (al = alerting_new(cfg, engine_store(e), NULL, &outs, err,
                           sizeof(err))) == NULL ||
        alerting_activate(al, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "touchpointd: %s\n", err);
        goto out;
    }
    engine_set_alerting(e, al);
    rc = replay_stream(e, in, file, &stop_flag) == 0 ? 0 : 1;
    engine_write_summary(e, stderr, "backtest summary");
    alerting_write_summary(al, stderr);
    if (store_delete_all(engine_store(e), err, sizeof(err)) < 0) {
        fprintf(stderr, "touchpointd: removing scratch keys %s:*: %s\n",
                scratch, err);
    }
out:
    if (e != NULL) {
        engine_set_alerting(e, NULL);
    }
    alerting_destroy(al, 0);
    engine_destroy(e);
    if (in != stdin) {
        fclose(in);
    }
    return rc;
}

static int render_metrics(void *arg, char **body, size_t *len)
{
    return metrics_catalog_render(arg, body, len);
}

/* The HTTP endpoint, unless http.address is empty. Returns 0 or -1. */
static int start_http(const struct config *cfg, struct metrics_catalog *mc,
                      struct httpd **h)
{
    struct httpd_callbacks cb = {render_metrics, mc, 0};
    char err[512];

    *h = NULL;
    if (cfg->http_address[0] == '\0') {
        return 0;
    }
    *h = httpd_new(cfg->http_address, (int)cfg->http_port, &cb, err,
                   sizeof(err));
    if (*h == NULL) {
        fprintf(stderr, "touchpointd: http.address/http.port: %s\n", err);
        return -1;
    }
    log_msg(LOG_INFO, "main", "serving /metrics /healthz /readyz on %s:%d",
            cfg->http_address, httpd_port(*h));
    return 0;
}

/* SIGHUP: the rules of the config file (alerts: and alert_files) are read
 * again; on any error the old rules stay and the log says exactly why. */
struct reload_ctx {
    struct config *cfg;
    const char *path;
    struct alerting *alerting;
};

static void reload_rules(void *arg)
{
    struct reload_ctx *rc = arg;
    struct config fresh;
    struct rules *old;
    char err[512] = "";
    int ok;

    if (config_init(&fresh) < 0) {
        return;
    }
    ok = (rc->path == NULL ||
          config_load_file(&fresh, rc->path, err, sizeof(err)) == 0) &&
         config_load_rules(&fresh, err, sizeof(err)) == 0 &&
         rules_bind_windows(fresh.rules, rc->cfg->windows, rc->cfg->n_windows,
                            rc->cfg->retention_ms, err, sizeof(err)) == 0;
    if (!ok) {
        log_msg(LOG_ERROR, "alerts", "SIGHUP: keeping the old rules: %s", err);
        config_release(&fresh);
        return;
    }
    old = rc->cfg->rules;
    rc->cfg->rules = fresh.rules;
    fresh.rules = old; /* released below */
    alerting_set_rules(rc->alerting, rc->cfg->rules, tstamp_now_ms());
    config_release(&fresh);
    log_msg(LOG_INFO, "alerts", "SIGHUP: %zu rules loaded",
            rc->cfg->rules->n);
}

static int cmd_run(struct config *cfg, const char *path)
{
    struct alerting *al = NULL;
    struct alerting_outputs outs = {0};
    struct reload_ctx rctx = {cfg, path, NULL};
    struct metrics_catalog mc;
    struct httpd *h = NULL;
    struct engine *e = NULL;
    struct consumer *c = NULL;
    char err[512], summary[900];
    int rc = 1;

    if (metrics_catalog_init(&mc, NULL, TP_VERSION, err, sizeof(err)) < 0) {
        fprintf(stderr, "touchpointd: %s\n", err);
        return 1;
    }
    e = engine_new(cfg, false, err, sizeof(err));
    if (e == NULL) {
        fprintf(stderr, "touchpointd: %s\n", err);
        goto out;
    }
    if (start_http(cfg, &mc, &h) < 0) {
        goto out;
    }
    engine_set_metrics(e, &mc);
    c = consumer_new(cfg, e, h, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "touchpointd: %s\n", err);
        goto out;
    }
    outs.kafka = consumer_produce_alert;
    outs.kafka_arg = c;
    outs.alertmanager_url = cfg->alertmanager_url;
    al = alerting_new(cfg, engine_store(e), &mc, &outs, err, sizeof(err));
    if (al == NULL) {
        fprintf(stderr, "touchpointd: %s\n", err);
        goto out;
    }
    rctx.alerting = al;
    consumer_set_alerting(c, al);
    engine_set_alerting(e, al);
    consumer_on_reload(c, &reload_flag, reload_rules, &rctx);
    config_write_summary(cfg, summary, sizeof(summary));
    log_msg(LOG_INFO, "main", "touchpointd %s starting: %s", TP_VERSION,
            summary);
    rc = consumer_run(c, &stop_flag) == 0 ? 0 : 1;
    engine_write_summary(e, stderr, "run summary");
out:
    if (e != NULL) {
        engine_set_alerting(e, NULL);
    }
    /* Alertmanager gets what the shutdown left; it uses the consumer's
     * producer, so it goes first. */
    alerting_destroy(al, consumer_exit_left_ms(c));
    consumer_destroy(c);
    httpd_destroy(h); /* before the catalogue it reads */
    engine_destroy(e);
    metrics_catalog_release(&mc);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    struct config cfg;
    int rc;

    install_signals(); /* a SIGTERM during start-up stops it cleanly too */
    rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        return rc == 1 ? 0 : rc;
    }
    if (strcmp(o.command, "config") == 0) {
        if (o.defaults == 1) {
            config_write_defaults(stdout);
        } else if (o.defaults == 2) {
            rules_write_reference(stdout);
        } else {
            return usage_error("config takes --defaults or --alerts", "");
        }
        return 0;
    }
    if (strcmp(o.command, "run") != 0 && strcmp(o.command, "replay") != 0 &&
        strcmp(o.command, "check") != 0 && strcmp(o.command, "backtest") != 0) {
        return usage_error("unknown command", o.command);
    }
    if (load_config(&o, &cfg) < 0) {
        config_release(&cfg);
        return 1;
    }
    if (strcmp(o.command, "check") == 0) {
        printf("%s: ok (%zu alert rules)\n", o.config ? o.config : "(defaults)",
               cfg.rules->n);
        rc = 0;
    } else if (strcmp(o.command, "replay") == 0) {
        rc = cmd_replay(&cfg, o.file);
    } else if (strcmp(o.command, "backtest") == 0) {
        rc = cmd_backtest(&cfg, o.file);
    } else {
        rc = cmd_run(&cfg, o.config);
    }
    config_release(&cfg);
    return rc;
}
