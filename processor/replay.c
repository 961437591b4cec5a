/* SPDX-License-Identifier: Apache-2.0 */
/* replay: feeds newline-delimited JSON through the same pipeline, on event time. */
#include "replay.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "tstamp.h"

/* Replay tolerates a Redis outage for this long before giving up. */
#define REPLAY_RETRY_MS 60000

static struct log_limit reject_limit;

static int flush_retrying(struct engine *e, volatile sig_atomic_t *stop)
{
    int64_t give_up = tstamp_mono_ms() + REPLAY_RETRY_MS;

    for (;;) {
        if (engine_flush(e, NULL, 0, NULL, tstamp_now_ms()) == 0) {
            return 0;
        }
        if (*stop || tstamp_mono_ms() > give_up) {
            return -1;
        }
        while (!engine_flush_due(e, tstamp_mono_ms()) && !*stop) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL); /* waiting out the backoff */
        }
    }
}

static void strip_eol(char *line, ssize_t *len)
{
    while (*len > 0 && (line[*len - 1] == '\n' || line[*len - 1] == '\r')) {
        line[--*len] = '\0';
    }
}

int replay_stream(struct engine *e, FILE *in, const char *name,
                  volatile sig_atomic_t *stop)
{
    struct pipeline *p = engine_pipeline(e);
    struct partition *part = pipeline_partition(p, "replay/0");
    struct event_error err;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int rc = 0;

    if (part == NULL) {
        return -1;
    }
    while (rc == 0 && !*stop && (len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        strip_eol(line, &len);
        if (len == 0) {
            continue;
        }
        switch (pipeline_process(p, part, line, (size_t)len, 0, &err)) {
        case PIPE_REJECTED:
            log_limited(&reject_limit, LOG_WARN, "replay",
                        "%s:%zu: rejected (%s): %s", name, lineno,
                        event_reject_name(err.reason), err.text);
            break;
        case PIPE_ERROR:
            log_msg(LOG_ERROR, "replay", "%s:%zu: out of memory", name, lineno);
            rc = -1;
            break;
        default:
            break;
        }
        if (engine_flush_due(e, tstamp_mono_ms())) {
            rc = flush_retrying(e, stop);
        }
    }
    free(line);
    if (rc == 0 && ferror(in)) {
        log_msg(LOG_ERROR, "replay", "%s: read error", name);
        rc = -1;
    }
    return rc == 0 && !*stop ? flush_retrying(e, stop) : -1;
}
