/* SPDX-License-Identifier: Apache-2.0 */
/* tpraw: a Kafka consumer that only counts messages — the speed limit touchpointd run is measured against. */
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/*
 * What it measures
 *
 * A high-level consumer with touchpointd's group settings (cooperative-sticky
 * assignment, no auto commit, no auto offset store, auto.offset.reset
 * earliest) polled one message at a time with rd_kafka_consumer_poll, as
 * touchpointd's loop does, doing nothing with a message but count it. It
 * stops at the --count'th message, or, without --count, once every partition
 * of the topic has been read up to the end offset it had at start. The
 * figures are taken at that moment, before the group is left: elapsed time
 * since main() began, CPU time and peak RSS of the process. One result line
 * goes to stdout as KEY=VALUE pairs, so scripts can read it.
 */

#define PROPS_MAX 64
#define EXIT_USAGE 2
#define META_TIMEOUT_MS 10000

static const char usage_text[] =
    "Usage: tpraw --brokers LIST --topic NAME [OPTIONS]\n"
    "Consumes a topic with touchpointd's consumer-group settings and only\n"
    "counts the messages: the raw speed of Kafka and librdkafka on this box.\n"
    "Prints one line: count, elapsed_s (since main), first_s (first message),\n"
    "msgs_per_s, bytes, cpu_s, maxrss_kb, start_us (CLOCK_REALTIME at main),\n"
    "librdkafka (its version).\n"
    "\n"
    "Options:\n"
    "  --brokers LIST   bootstrap servers (required)\n"
    "  --topic NAME     the topic to count (required)\n"
    "  --group ID       consumer group (default tpraw-PID, a fresh one)\n"
    "  --count N        stop after N messages (default: the end offsets of\n"
    "                   every partition at start)\n"
    "  --timeout S      give up after S seconds, exit 1 (default 600)\n"
    "  -X PROP=VALUE    a librdkafka consumer property (repeatable)\n"
    "  --help           this text\n"
    "\n"
    "Exit status: 0 counted all, 1 a Kafka error or the timeout, 2 usage.\n";

struct options {
    const char *brokers;
    const char *topic;
    const char *group;
    long long count; /* 0: until the end offsets */
    double timeout_s;
    const char *props[PROPS_MAX];
    size_t n_props;
};

/* Per-partition progress towards the end offsets seen at start. */
struct progress {
    int n_parts;
    int64_t *end;   /* end offset per partition */
    int n_pending;  /* partitions not yet read up to their end */
    long long want; /* sum of (end - start) over partitions: for the log */
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long realtime_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the command line ---------------------------------------------------- */

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "tpraw: %s %s\nTry `tpraw --help`.\n", what, arg);
    return EXIT_USAGE;
}

static int parse_number(const char *opt, const char *s, double *out)
{
    char *end;

    *out = strtod(s, &end);
    if (end == s || *end != '\0' || *out < 0) {
        fprintf(stderr, "tpraw: %s needs a number >= 0, not `%s`\n", opt, s);
        return -1;
    }
    return 0;
}

/* Returns 0, 1 (help printed) or EXIT_USAGE. */
static int parse_args(int argc, char **argv, struct options *o)
{
    double v;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = argv[i + 1];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return 1;
        }
        if (val == NULL) {
            return usage_error(strncmp(a, "-", 1) == 0
                                   ? "a value is needed after"
                                   : "unexpected argument",
                               a);
        }
        i++;
        if (strcmp(a, "--brokers") == 0) {
            o->brokers = val;
        } else if (strcmp(a, "--topic") == 0) {
            o->topic = val;
        } else if (strcmp(a, "--group") == 0) {
            o->group = val;
        } else if (strcmp(a, "--count") == 0) {
            if (parse_number(a, val, &v) < 0) {
                return EXIT_USAGE;
            }
            o->count = (long long)v;
        } else if (strcmp(a, "--timeout") == 0) {
            if (parse_number(a, val, &o->timeout_s) < 0) {
                return EXIT_USAGE;
            }
        } else if (strcmp(a, "-X") == 0) {
            if (o->n_props == PROPS_MAX || strchr(val, '=') == NULL) {
                return usage_error("-X needs PROP=VALUE (64 at most):", val);
            }
            o->props[o->n_props++] = val;
        } else {
            return usage_error("unknown option", a);
        }
    }
    if (o->brokers == NULL || o->topic == NULL) {
        return usage_error("--brokers and --topic are required", "");
    }
    return 0;
}

/* ---- the consumer -------------------------------------------------------- */

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char err[256];

    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "tpraw: kafka: %s: %s\n", key, err);
        return -1;
    }
    return 0;
}

/* touchpointd's settings (consumer.c make_conf and the config defaults),
 * then the -X properties. */
static rd_kafka_conf_t *make_conf(const struct options *o, const char *group)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *const base[][2] = {
        {"bootstrap.servers", o->brokers},
        {"group.id", group},
        {"auto.offset.reset", "earliest"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
    };

    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        if (conf_set(conf, base[i][0], base[i][1]) < 0) {
            goto out_fail;
        }
    }
    for (size_t i = 0; i < o->n_props; i++) {
        char key[256];
        const char *eq = strchr(o->props[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - o->props[i]),
                 o->props[i]);
        if (conf_set(conf, key, eq + 1) < 0) {
            goto out_fail;
        }
    }
    return conf;

out_fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Reads the topic's partitions and their end offsets into *pr. */
static int progress_init(rd_kafka_t *rk, const char *topic,
                         struct progress *pr)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    int rc = -1;

    if (rkt == NULL) {
        fprintf(stderr, "tpraw: topic %s: %s\n", topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    err = rd_kafka_metadata(rk, 0, rkt, &md, META_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
        md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "tpraw: metadata of topic %s: %s\n", topic,
                rd_kafka_err2str(err ? err : md->topics[0].err));
        goto out;
    }
    pr->n_parts = md->topics[0].partition_cnt;
    pr->end = calloc((size_t)pr->n_parts, sizeof(*pr->end));
    if (pr->end == NULL) {
        goto out;
    }
    for (int i = 0; i < pr->n_parts; i++) {
        int32_t id = md->topics[0].partitions[i].id;
        int64_t lo, hi;
        err = rd_kafka_query_watermark_offsets(rk, topic, id, &lo, &hi,
                                               META_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR || id < 0 ||
            id >= pr->n_parts) {
            fprintf(stderr, "tpraw: end offset of %s/%d: %s\n", topic,
                    (int)id, rd_kafka_err2str(err));
            goto out;
        }
        pr->end[id] = hi;
        pr->want += hi - lo;
        if (hi > lo) {
            pr->n_pending++;
        }
    }
    rc = 0;
out:
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return rc;
}

/* Notes a consumed offset; true when it completes its partition. */
static int progress_note(struct progress *pr, int32_t partition,
                         int64_t offset)
{
    if (partition < 0 || partition >= pr->n_parts ||
        pr->end[partition] < 0 || offset + 1 < pr->end[partition]) {
        return 0;
    }
    pr->end[partition] = -1; /* done; never counted twice */
    pr->n_pending--;
    return 1;
}

static rd_kafka_t *consumer_open(const struct options *o, const char *group)
{
    rd_kafka_conf_t *conf = make_conf(o, group);
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t err;
    rd_kafka_t *rk;
    char errstr[512];

    if (conf == NULL) {
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "tpraw: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    conf = NULL; /* now owned by rk */
    rd_kafka_poll_set_consumer(rk);
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, o->topic, RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "tpraw: subscribe %s: %s\n", o->topic,
                rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

/* Commits the positions reached, so lag tooling shows the group done. */
static void commit_positions(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *l;

    if (rd_kafka_assignment(rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    if (l->cnt > 0 && rd_kafka_position(rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_commit(rk, l, 0 /* sync */);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* ---- counting ------------------------------------------------------------ */

struct tally {
    long long count;
    long long bytes;
    double first_s; /* since start; < 0 until the first message */
    double done_s;
    struct rusage ru;
};

static int done(const struct options *o, const struct progress *pr,
                const struct tally *t)
{
    return o->count > 0 ? t->count >= o->count : pr->n_pending == 0;
}

/* Polls and counts until done, the timeout or a signal. Returns 0 when done. */
static int count_messages(rd_kafka_t *rk, const struct options *o,
                          struct progress *pr, double t0, struct tally *t)
{
    while (!done(o, pr, t)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m != NULL) {
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (t->count++ == 0) {
                    t->first_s = mono_s() - t0;
                }
                t->bytes += (long long)m->len;
                progress_note(pr, m->partition, m->offset);
            } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fprintf(stderr, "tpraw: consume: %s\n",
                        rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
        }
        if (stop_flag || mono_s() - t0 > o->timeout_s) {
            fprintf(stderr, "tpraw: %s after %lld messages\n",
                    stop_flag ? "stopped" : "timed out", t->count);
            return -1;
        }
    }
    t->done_s = mono_s() - t0;
    getrusage(RUSAGE_SELF, &t->ru);
    return 0;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void print_tally(const struct tally *t, long long start_us)
{
    printf("count=%lld elapsed_s=%.6f first_s=%.6f msgs_per_s=%.0f "
           "bytes=%lld cpu_s=%.3f maxrss_kb=%ld start_us=%lld librdkafka=%s\n",
           t->count, t->done_s, t->first_s,
           t->done_s > 0 ? (double)t->count / t->done_s : 0.0, t->bytes,
           tv_s(t->ru.ru_utime) + tv_s(t->ru.ru_stime), t->ru.ru_maxrss,
           start_us, rd_kafka_version_str());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    double t0 = mono_s();
    long long start_us = realtime_us();
    struct options o = {.timeout_s = 600};
    struct progress pr = {0};
    struct tally t = {.first_s = -1};
    char group[64];
    rd_kafka_t *rk;
    int rc;

    rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        return rc == 1 ? 0 : rc;
    }
    if (o.group == NULL) {
        snprintf(group, sizeof(group), "tpraw-%ld", (long)getpid());
        o.group = group;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    rk = consumer_open(&o, o.group);
    if (rk == NULL) {
        return 1;
    }
    rc = o.count > 0 ? 0 : progress_init(rk, o.topic, &pr);
    if (rc == 0) {
        rc = count_messages(rk, &o, &pr, t0, &t);
    }
    if (rc == 0) {
        print_tally(&t, start_us);
        commit_positions(rk);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(pr.end);
    return rc == 0 ? 0 : 1;
}
