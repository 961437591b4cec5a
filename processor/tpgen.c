/* SPDX-License-Identifier: Apache-2.0 */
/* tpgen: writes or produces a seeded, realistic synthetic touchpoint stream. */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gen.h"
#include "tstamp.h"

#define PROPS_MAX 64
#define EXIT_USAGE 2

/* ---- the command line ---------------------------------------------------- */

enum opt_id {
    O_SEED,
    O_COUNT,
    O_RATE,
    O_START,
    O_SPAN,
    O_TENANTS,
    O_CHANNELS,
    O_QUEUES,
    O_INCIDENT,
    O_INVALID,
    O_DUPLICATES,
    O_UNKEYED,
    O_BROKERS,
    O_TOPIC,
    O_PROP,
    O_OUT,
    O_VALID_OUT,
    O_INVALID_OUT,
    O_KEYS,
    O_HELP,
};

/* The options, in --help order; help lines after the first are indented. */
static const struct opt_def {
    enum opt_id id;
    const char *name;
    const char *arg; /* NULL: a flag */
    const char *help;
} opt_table[] = {
    {O_SEED, "--seed", "N",
     "PRNG seed (default 1). The same seed and options with\n"
     "an explicit --start give byte-identical output."},
    {O_COUNT, "--count", "N",
     "valid first-time events to emit (default 10000);\n"
     "0 = no limit (only with --rate; stop with Ctrl-C)."},
    {O_RATE, "--rate", "N",
     "events/s (default 0 = as fast as possible). With N > 0\n"
     "the stream is live: occurred_at is the wall clock at\n"
     "emission and conversations unfold in real time."},
    {O_START, "--start", "TIME",
     "event time of the stream start: epoch ms, RFC 3339 or\n"
     "`now` (default: now minus --span). Not with --rate."},
    {O_SPAN, "--span", "DURATION",
     "event time the --count events cover (default 1m), e.g.\n"
     "30s, 1h, 1h30m. Sessions arrive over it; those that\n"
     "would end after it stay open. Not with --rate."},
    {O_TENANTS, "--tenants", "LIST",
     "comma list (default acme,globex); earlier names get\n"
     "more traffic (Zipf-like), as for the next two."},
    {O_CHANNELS, "--channels", "LIST",
     "comma list (default phone,chat,email,whatsapp,\n"
     "instagram). phone/voice/call -> calls, email/mail\n"
     "-> tickets, chat/webchat/livechat -> fast DMs,\n"
     "any other -> DMs answered in minutes."},
    {O_QUEUES, "--queues", "LIST", "comma list (default default,billing)."},
    {O_INCIDENT, "--incident", "SPEC",
     "repeatable; T/C/Q name a tenant/channel/queue, `*`\n"
     "matches any; OFFSET and DURATION count from the\n"
     "start (default: the whole stream).\n"
     "wait-spike:T/C/Q[@OFFSET+DURATION][*FACTOR]\n"
     "  multiplies waits starting there (default *10)\n"
     "  and raises the abandon rate.\n"
     "detractor-surge:T/C/Q[@OFFSET+DURATION]\n"
     "  makes NPS answers there mostly 0-6."},
    {O_INVALID, "--invalid", "N",
     "also emit N malformed messages spread through the\n"
     "stream, cycling through not_json, not_object,\n"
     "missing_field, wrong_type, out_of_range,\n"
     "unknown_type, bad_charset, bad_timestamp, too_large\n"
     "(> 65536 bytes) and a reserved _all/_other dimension."},
    {O_DUPLICATES, "--duplicates", "N",
     "also re-emit N earlier valid events, byte-identical\n"
     "with the same key, shortly after the original."},
    {O_UNKEYED, "--unkeyed", NULL,
     "produce with no key, each message to a random\n"
     "partition (shows orphan correlation)."},
    {O_BROKERS, "--brokers", "LIST",
     "produce to Kafka (with --topic), keyed by correlation\n"
     "id as schemas/events.md asks; defaults lz4,\n"
     "linger.ms=20, delivery timeout 30s. Any failed\n"
     "delivery makes the exit status 1."},
    {O_TOPIC, "--topic", "NAME", "the topic to produce to."},
    {O_PROP, "-X", "PROP=VALUE",
     "a librdkafka producer property (repeatable), e.g.\n"
     "-X compression.type=zstd -X linger.ms=5."},
    {O_OUT, "--out", "FILE|-",
     "write every message (valid, duplicate, invalid) one\n"
     "per line in emission order; `-` is stdout, the\n"
     "default when --brokers is not given."},
    {O_VALID_OUT, "--valid-out", "FILE",
     "write only the valid first-time events."},
    {O_INVALID_OUT, "--invalid-out", "FILE",
     "write only the malformed messages, exactly as sent."},
    {O_KEYS, "--keys", NULL,
     "prefix each --out line with KEY<TAB> (kcat -K '\\t')."},
    {O_HELP, "--help", NULL, "show this help and exit (also -h)."},
};

#define OPT_COUNT (sizeof(opt_table) / sizeof(opt_table[0]))

struct list {
    char *buf; /* owned: the argument, split in place */
    const char *names[GEN_LIST_MAX];
    size_t n;
};

struct cli {
    uint64_t seed, count, invalid, duplicates;
    double rate;
    int64_t start_ms, span_ms;
    int start_set, span_set, count_set, unkeyed, keys;
    struct list tenants, channels, queues;
    struct gen_incident incidents[GEN_INCIDENT_MAX];
    size_t n_incidents;
    const char *brokers, *topic, *out, *valid_out, *invalid_out;
    const char *props[PROPS_MAX]; /* "name=value", borrowed from argv */
    size_t n_props;
};

static void print_help(FILE *f)
{
    fputs(
        "Usage: tpgen [OPTIONS]\n"
        "Writes a seeded, realistic stream of customer-touchpoint events (the\n"
        "contract in schemas/events.md) as JSON lines, or produces it to "
        "Kafka.\n"
        "Sessions (calls, DM conversations, email tickets, surveys) arrive as "
        "a\n"
        "Poisson process and unfold with lognormal waits; events come out in\n"
        "nondecreasing occurred_at order. A summary line goes to stderr.\n\n"
        "Options:\n",
        f);
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const struct opt_def *o = &opt_table[i];
        char head[40];
        const char *p = o->help;

        snprintf(head, sizeof(head), "%s%s%s", o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
        fprintf(f, "  %-24s", head);
        if (strlen(head) > 24) {
            fprintf(f, "\n  %-24s", "");
        }
        for (;;) {
            size_t n = strcspn(p, "\n");
            fprintf(f, "%.*s\n", (int)n, p);
            if (p[n] == '\0') {
                break;
            }
            p += n + 1;
            fprintf(f, "  %-24s", "");
        }
    }
    fputs("\nExit status: 0 done, 1 an I/O or Kafka delivery error, 2 a usage "
          "error.\n",
          f);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
usage_error(const char *opt, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "tpgen: %s: ", opt);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'tpgen --help'.\n", stderr);
    return -1;
}

static int parse_u64(const char *opt, const char *s, uint64_t *v)
{
    char *end;

    errno = 0;
    *v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0) {
        return usage_error(opt, "expected a non-negative integer, got '%s'", s);
    }
    return 0;
}

static int parse_rate(const char *s, double *v)
{
    char *end;

    *v = strtod(s, &end);
    if (end == s || *end != '\0' || !(*v >= 0) || *v > 1e8) {
        return usage_error("--rate",
                           "expected events/s from 0 to 1e8, got '%s'", s);
    }
    return 0;
}

static int parse_start(const char *s, int64_t *ms)
{
    uint64_t v;

    if (strcmp(s, "now") == 0) {
        *ms = tstamp_now_ms();
        return 0;
    }
    if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s)) {
        if (parse_u64("--start", s, &v) < 0) {
            return -1;
        }
        *ms = v <= (uint64_t)TSTAMP_MAX_MS ? (int64_t)v : -1;
    } else if (tstamp_parse_rfc3339(s, strlen(s), ms) < 0) {
        return usage_error("--start",
                           "expected epoch ms, an RFC 3339 time with offset "
                           "(2024-05-01T09:00:00Z) or 'now', got '%s'",
                           s);
    }
    if (*ms < 0 || *ms > TSTAMP_MAX_MS / 2) {
        return usage_error("--start",
                           "expected a time from 1970 to 5000, got '%s'", s);
    }
    return 0;
}

static int parse_span(const char *s, int64_t *ms)
{
    if (tstamp_parse_duration(s, ms) < 0 || *ms <= 0 ||
        *ms > INT64_C(100) * 365 * 86400000) {
        return usage_error("--span",
                           "expected a duration > 0 like 30s, 1m, 2h, 1h30m, "
                           "got '%s'",
                           s);
    }
    return 0;
}

static int parse_list(const char *opt, const char *s, int is_tenant,
                      struct list *l)
{
    char err[160], *p;

    free(l->buf);
    l->buf = strdup(s);
    l->n = 0;
    if (l->buf == NULL) {
        return usage_error(opt, "out of memory");
    }
    for (p = strtok(l->buf, ","); p != NULL; p = strtok(NULL, ",")) {
        if (gen_name_check(p, is_tenant, err, sizeof(err)) < 0) {
            return usage_error(opt, "%s", err);
        }
        for (size_t i = 0; i < l->n; i++) {
            if (strcmp(l->names[i], p) == 0) {
                return usage_error(opt, "'%s' is listed twice", p);
            }
        }
        if (l->n == GEN_LIST_MAX) {
            return usage_error(opt, "at most %d names", GEN_LIST_MAX);
        }
        l->names[l->n++] = p;
    }
    if (l->n == 0) {
        return usage_error(opt, "expected a comma-separated list of names");
    }
    return 0;
}

static int parse_incident(struct cli *c, const char *s)
{
    char err[160];

    if (c->n_incidents == GEN_INCIDENT_MAX) {
        return usage_error("--incident", "at most %d incidents",
                           GEN_INCIDENT_MAX);
    }
    if (gen_incident_parse(s, &c->incidents[c->n_incidents], err, sizeof(err)) <
        0) {
        return usage_error("--incident", "%s, got '%s'", err, s);
    }
    c->n_incidents++;
    return 0;
}

static int parse_prop(struct cli *c, const char *s)
{
    const char *eq = strchr(s, '=');

    if (eq == NULL || eq == s) {
        return usage_error("-X", "expected PROP=VALUE, got '%s'", s);
    }
    if (c->n_props == PROPS_MAX) {
        return usage_error("-X", "at most %d properties", PROPS_MAX);
    }
    c->props[c->n_props++] = s;
    return 0;
}

/* Applies one option with its argument (NULL for flags). */
static int apply_option(struct cli *c, enum opt_id id, const char *name,
                        const char *arg)
{
    switch (id) {
    case O_SEED:
        return parse_u64(name, arg, &c->seed);
    case O_COUNT:
        c->count_set = 1;
        return parse_u64(name, arg, &c->count);
    case O_RATE:
        return parse_rate(arg, &c->rate);
    case O_START:
        c->start_set = 1;
        return parse_start(arg, &c->start_ms);
    case O_SPAN:
        c->span_set = 1;
        return parse_span(arg, &c->span_ms);
    case O_TENANTS:
        return parse_list(name, arg, 1, &c->tenants);
    case O_CHANNELS:
        return parse_list(name, arg, 0, &c->channels);
    case O_QUEUES:
        return parse_list(name, arg, 0, &c->queues);
    case O_INCIDENT:
        return parse_incident(c, arg);
    case O_INVALID:
        return parse_u64(name, arg, &c->invalid);
    case O_DUPLICATES:
        return parse_u64(name, arg, &c->duplicates);
    case O_UNKEYED:
        c->unkeyed = 1;
        return 0;
    case O_BROKERS:
        c->brokers = arg;
        return 0;
    case O_TOPIC:
        c->topic = arg;
        return 0;
    case O_PROP:
        return parse_prop(c, arg);
    case O_OUT:
        c->out = arg;
        return 0;
    case O_VALID_OUT:
        c->valid_out = arg;
        return 0;
    case O_INVALID_OUT:
        c->invalid_out = arg;
        return 0;
    case O_KEYS:
        c->keys = 1;
        return 0;
    default:
        return 0;
    }
}

/* Finds the option of argv[*i] ("--name", "--name=value", "-X", "-Xp=v").
 * Returns 1 when --help was asked, 0 or -1. */
static int parse_one(struct cli *c, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *arg = NULL;
    size_t n = strcspn(a, "=");

    if (strcmp(a, "-h") == 0) {
        return 1;
    }
    if (strncmp(a, "-X", 2) == 0 && a[2] != '\0') {
        return parse_prop(c, a + 2);
    }
    for (size_t k = 0; k < OPT_COUNT; k++) {
        const struct opt_def *o = &opt_table[k];
        if (strlen(o->name) != n || strncmp(a, o->name, n) != 0) {
            continue;
        }
        if (o->id == O_HELP) {
            return 1;
        }
        if (o->arg == NULL) {
            return a[n] == '=' ? usage_error(o->name, "takes no value")
                               : apply_option(c, o->id, o->name, NULL);
        }
        if (a[n] == '=') {
            arg = a + n + 1;
        } else if (*i + 1 < argc) {
            arg = argv[++*i];
        } else {
            return usage_error(o->name, "expected %s after it", o->arg);
        }
        return apply_option(c, o->id, o->name, arg);
    }
    return usage_error(a, "unknown option");
}

static int list_has(const struct list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->names[i], name) == 0) {
            return 1;
        }
    }
    return strcmp(name, "*") == 0;
}

/* An incident naming a tenant, channel or queue that never occurs is a typo. */
static int check_incidents(const struct cli *c)
{
    for (size_t i = 0; i < c->n_incidents; i++) {
        const struct gen_incident *inc = &c->incidents[i];
        const char *what = !list_has(&c->tenants, inc->tenant)     ? "tenant"
                           : !list_has(&c->channels, inc->channel) ? "channel"
                           : !list_has(&c->queues, inc->queue)     ? "queue"
                                                                   : NULL;
        if (what != NULL) {
            return usage_error("--incident", "%s '%s' is not in --%ss", what,
                               what[0] == 't'   ? inc->tenant
                               : what[0] == 'c' ? inc->channel
                                                : inc->queue,
                               what);
        }
    }
    return 0;
}

/* Option combinations and defaults that depend on each other. */
static int check_cli(struct cli *c)
{
    if (c->rate > 0 && (c->start_set || c->span_set)) {
        return usage_error(c->start_set ? "--start" : "--span",
                           "not with --rate (a live stream is stamped with "
                           "the wall clock and lasts --count / --rate)");
    }
    if (c->count == 0 && !(c->rate > 0)) {
        return usage_error("--count", "0 (no limit) needs --rate > 0");
    }
    if ((c->brokers == NULL) != (c->topic == NULL)) {
        return usage_error(c->brokers ? "--brokers" : "--topic", "needs %s too",
                           c->brokers ? "--topic" : "--brokers");
    }
    if (c->n_props > 0 && c->brokers == NULL) {
        return usage_error("-X", "needs --brokers");
    }
    if (c->brokers == NULL && c->out == NULL) {
        c->out = "-";
    }
    if (c->keys && c->out == NULL) {
        return usage_error("--keys", "needs --out");
    }
    if (!c->start_set) {
        c->start_ms = tstamp_now_ms() - (c->rate > 0 ? 0 : c->span_ms);
    }
    return 0;
}

static int set_default_list(const char *opt, const char *names, int is_tenant,
                            struct list *l)
{
    return l->n > 0 ? 0 : parse_list(opt, names, is_tenant, l);
}

/* Returns 0, 1 (--help) or -1 (usage error, already reported). */
static int parse_cli(struct cli *c, int argc, char **argv)
{
    c->seed = 1;
    c->count = 10000;
    c->span_ms = 60000;
    for (int i = 1; i < argc; i++) {
        int rc = parse_one(c, argc, argv, &i);
        if (rc != 0) {
            return rc;
        }
    }
    if (set_default_list("--tenants", "acme,globex", 1, &c->tenants) < 0 ||
        set_default_list("--channels", "phone,chat,email,whatsapp,instagram", 0,
                         &c->channels) < 0 ||
        set_default_list("--queues", "default,billing", 0, &c->queues) < 0) {
        return -1;
    }
    return check_incidents(c) < 0 ? -1 : check_cli(c);
}

static void cli_release(struct cli *c)
{
    free(c->tenants.buf);
    free(c->channels.buf);
    free(c->queues.buf);
}

/* ---- Kafka --------------------------------------------------------------- */

struct producer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    uint64_t delivered, failed;
    char first_error[256];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque)
{
    struct producer *p = opaque;

    (void)rk;
    if (m->err) {
        if (p->failed++ == 0) {
            snprintf(p->first_error, sizeof(p->first_error), "%s",
                     rd_kafka_err2str(m->err));
        }
    } else {
        p->delivered++;
    }
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    char *errstr, size_t errstr_size)
{
    char err[256];

    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "%.64s=%.128s: %.200s", name, value, err);
        return -1;
    }
    return 0;
}

/* Sets our defaults, then the user's -X properties over them. */
static int conf_fill(rd_kafka_conf_t *conf, const struct cli *c, char *errstr,
                     size_t errstr_size)
{
    static const char *const defaults[][2] = {
        {"compression.type", "lz4"},
        {"linger.ms", "20"},
        {"queue.buffering.max.messages", "1000000"},
        {"message.timeout.ms", "30000"},
    };
    char name[256];

    if (conf_set(conf, "bootstrap.servers", c->brokers, errstr, errstr_size) <
        0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (conf_set(conf, defaults[i][0], defaults[i][1], errstr,
                     errstr_size) < 0) {
            return -1;
        }
    }
    /* Unkeyed messages would otherwise stick to one partition per linger
     * period, hiding the very orphans --unkeyed is there to show. */
    if (c->unkeyed && conf_set(conf, "sticky.partitioning.linger.ms", "0",
                               errstr, errstr_size) < 0) {
        return -1;
    }
    for (size_t i = 0; i < c->n_props; i++) {
        size_t n = strcspn(c->props[i], "=");
        snprintf(name, sizeof(name), "%.*s", (int)n, c->props[i]);
        if (conf_set(conf, name, c->props[i] + n + 1, errstr, errstr_size) <
            0) {
            return -1;
        }
    }
    return 0;
}

/* Builds the producer configuration: our defaults, then -X. Returns a new
 * conf, or NULL with a message naming the property. */
static rd_kafka_conf_t *producer_conf(const struct cli *c, char *errstr,
                                      size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (conf_fill(conf, c, errstr, errstr_size) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* Starts the producer; takes conf (destroyed on failure). */
static int producer_open(struct producer *p, rd_kafka_conf_t *conf,
                         const char *topic, char *errstr, size_t errstr_size)
{
    memset(p, 0, sizeof(*p));
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (p->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    conf = NULL; /* now owned by rk */
    p->rkt = rd_kafka_topic_new(p->rk, topic, NULL);
    if (p->rkt == NULL) {
        snprintf(errstr, errstr_size, "topic %s: %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(p->rk);
        p->rk = NULL;
        return -1;
    }
    return 0;
}

static int producer_send(struct producer *p, const struct gen_msg *m,
                         char *errstr, size_t errstr_size)
{
    for (;;) {
        if (rd_kafka_produce(p->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                             (void *)m->data, m->len,
                             m->key_len ? m->key : NULL, m->key_len,
                             NULL) == 0) {
            return 0;
        }
        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            snprintf(errstr, errstr_size, "produce: %s",
                     rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
        rd_kafka_poll(p->rk, 10);
    }
}

/* Waits for every delivery report; -1 when any delivery failed. */
static int producer_close(struct producer *p, char *errstr, size_t errstr_size)
{
    int rc = 0;

    if (p->rk == NULL) {
        return 0;
    }
    while (rd_kafka_outq_len(p->rk) > 0) {
        rd_kafka_flush(p->rk, 1000);
    }
    if (p->failed > 0) {
        snprintf(
            errstr, errstr_size, "%llu of %llu deliveries failed, first: %s",
            (unsigned long long)p->failed,
            (unsigned long long)(p->failed + p->delivered), p->first_error);
        rc = -1;
    }
    rd_kafka_topic_destroy(p->rkt);
    rd_kafka_destroy(p->rk);
    p->rk = NULL;
    return rc;
}

/* ---- outputs and the loop ------------------------------------------------ */

struct sinks {
    FILE *all, *valid, *bad;
    const char *all_name, *valid_name, *bad_name;
    int keys;
    struct producer kafka; /* kafka.rk NULL: none */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static FILE *open_output(const char *path, char *errstr, size_t errstr_size)
{
    FILE *f;

    if (path == NULL) {
        return NULL;
    }
    f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (f == NULL) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    return f;
}

/* Opens the outputs; takes conf (NULL: no Kafka). */
static int sinks_open(struct sinks *s, const struct cli *c,
                      rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
    memset(s, 0, sizeof(*s));
    s->keys = c->keys;
    s->all_name = c->out;
    s->valid_name = c->valid_out;
    s->bad_name = c->invalid_out;
    if ((c->out && !(s->all = open_output(c->out, errstr, errstr_size))) ||
        (c->valid_out &&
         !(s->valid = open_output(c->valid_out, errstr, errstr_size))) ||
        (c->invalid_out &&
         !(s->bad = open_output(c->invalid_out, errstr, errstr_size)))) {
        if (conf != NULL) {
            rd_kafka_conf_destroy(conf);
        }
        return -1;
    }
    if (conf != NULL &&
        producer_open(&s->kafka, conf, c->topic, errstr, errstr_size) < 0) {
        return -1;
    }
    return 0;
}

static int close_output(FILE *f, const char *name, char *errstr,
                        size_t errstr_size)
{
    int bad;

    if (f == NULL) {
        return 0;
    }
    bad = fflush(f) != 0 || ferror(f);
    if (f != stdout && fclose(f) != 0) {
        bad = 1;
    }
    if (bad) {
        snprintf(errstr, errstr_size, "%s: write failed: %s", name,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* Closes everything; returns -1 with the first error. */
static int sinks_close(struct sinks *s, char *errstr, size_t errstr_size)
{
    int rc = 0;

    rc |= producer_close(&s->kafka, errstr, errstr_size);
    if (close_output(s->all, s->all_name, errstr, errstr_size) < 0 ||
        close_output(s->valid, s->valid_name, errstr, errstr_size) < 0 ||
        close_output(s->bad, s->bad_name, errstr, errstr_size) < 0) {
        rc = -1;
    }
    s->all = s->valid = s->bad = NULL;
    return rc;
}

static void write_line(FILE *f, const struct gen_msg *m, int keys)
{
    if (keys) {
        fwrite(m->key, 1, m->key_len, f);
        putc('\t', f);
    }
    fwrite(m->data, 1, m->len, f);
    putc('\n', f);
}

static int sinks_write(struct sinks *s, const struct gen_msg *m, char *errstr,
                       size_t errstr_size)
{
    if (s->all != NULL) {
        write_line(s->all, m, s->keys);
    }
    if (s->valid != NULL && m->kind == GEN_MSG_VALID) {
        write_line(s->valid, m, 0);
    }
    if (s->bad != NULL && m->kind == GEN_MSG_INVALID) {
        write_line(s->bad, m, 0);
    }
    if (s->kafka.rk != NULL) {
        return producer_send(&s->kafka, m, errstr, errstr_size);
    }
    return 0;
}

/* A live stream sleeps until the next event is due; lines written so far
 * reach their readers first. */
static void wait_until(struct sinks *s, int64_t due, int64_t now)
{
    int64_t ms = due - now > 100 ? 100 : due - now;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};

    if (s->all != NULL) {
        fflush(s->all);
    }
    if (s->kafka.rk != NULL) {
        rd_kafka_poll(s->kafka.rk, (int)ms);
    } else {
        nanosleep(&ts, NULL);
    }
}

static int run(struct gen *g, struct sinks *s, double rate, char *errstr,
               size_t errstr_size)
{
    struct gen_msg m;
    uint64_t n = 0;
    int rc;

    while (!stop_requested) {
        int64_t stamp = GEN_SCHEDULED, due = gen_next_time(g);
        if (due == INT64_MAX) {
            break;
        }
        if (rate > 0) {
            stamp = tstamp_now_ms();
            if (due > stamp) {
                wait_until(s, due, stamp);
                continue;
            }
        }
        rc = gen_next(g, stamp, &m);
        if (rc <= 0) {
            if (rc < 0) {
                snprintf(errstr, errstr_size, "%s", gen_error(g));
            }
            return rc;
        }
        if (sinks_write(s, &m, errstr, errstr_size) < 0) {
            return -1;
        }
        if (s->kafka.rk != NULL && ++n % 1024 == 0) {
            rd_kafka_poll(s->kafka.rk, 0);
        }
    }
    return 0;
}

static double mono_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_summary(const struct gen *g, double elapsed)
{
    struct gen_stats st;
    double total;

    gen_get_stats(g, &st);
    total = (double)(st.valid + st.duplicates + st.invalid);
    fprintf(stderr,
            "tpgen: valid %llu, duplicates %llu, invalid %llu, open waits "
            "%llu, elapsed %.3f s, rate %.0f msg/s%s\n",
            (unsigned long long)st.valid, (unsigned long long)st.duplicates,
            (unsigned long long)st.invalid, (unsigned long long)st.open_waits,
            elapsed, elapsed > 0 ? total / elapsed : 0.0,
            stop_requested ? " (interrupted)" : "");
}

static struct gen *make_gen(const struct cli *c, char *errstr,
                            size_t errstr_size)
{
    struct gen_options o = {
        .seed = c->seed,
        .start_ms = c->start_ms,
        .span_ms = c->span_ms,
        .count = c->count,
        .invalid = c->invalid,
        .duplicates = c->duplicates,
        .unkeyed = c->unkeyed,
        .tenants = c->tenants.names,
        .n_tenants = c->tenants.n,
        .channels = c->channels.names,
        .n_channels = c->channels.n,
        .queues = c->queues.names,
        .n_queues = c->queues.n,
        .incidents = c->incidents,
        .n_incidents = c->n_incidents,
    };

    if (c->rate > 0) {
        /* Arrivals follow the follow-ups; the span only sizes the pilot. */
        o.events_per_ms = c->rate / 1000.0;
        o.steady = 1;
        o.span_ms = c->count > 0
                        ? (int64_t)ceil((double)c->count / c->rate * 1000.0)
                        : 3600000;
    } else {
        o.events_per_ms = (double)c->count / (double)c->span_ms;
    }
    return gen_new(&o, errstr, errstr_size);
}

static void catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int main(int argc, char **argv)
{
    struct cli c;
    struct sinks s;
    struct gen *g = NULL;
    rd_kafka_conf_t *conf = NULL;
    char err[512] = "";
    double t0;
    int rc, status = 0;

    memset(&c, 0, sizeof(c));
    rc = parse_cli(&c, argc, argv);
    if (rc != 0) {
        if (rc > 0) {
            print_help(stdout);
        }
        cli_release(&c);
        return rc > 0 ? 0 : EXIT_USAGE;
    }
    if (c.brokers != NULL &&
        (conf = producer_conf(&c, err, sizeof(err))) == NULL) {
        usage_error("-X", "%s", err);
        cli_release(&c);
        return EXIT_USAGE;
    }
    g = make_gen(&c, err, sizeof(err));
    if (g == NULL) {
        fprintf(stderr, "tpgen: %s\n", err);
        if (conf != NULL) {
            rd_kafka_conf_destroy(conf);
        }
        cli_release(&c);
        return EXIT_USAGE;
    }
    catch_signals();
    t0 = mono_seconds();
    if (sinks_open(&s, &c, conf, err, sizeof(err)) < 0 ||
        run(g, &s, c.rate, err, sizeof(err)) < 0) {
        fprintf(stderr, "tpgen: %s\n", err);
        status = 1;
    }
    if (sinks_close(&s, err, sizeof(err)) < 0) {
        fprintf(stderr, "tpgen: %s\n", err);
        status = 1;
    }
    print_summary(g, mono_seconds() - t0);
    if (status == 0 && stop_requested && c.count > 0) {
        status = 130;
    }
    gen_destroy(g);
    cli_release(&c);
    return status;
}
