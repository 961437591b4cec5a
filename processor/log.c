/* SPDX-License-Identifier: Apache-2.0 */
/* log: one-line structured logs to stderr (logfmt or JSON), with rate limiting. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tstamp.h"

#define LIMIT_INTERVAL_MS 10000

static enum log_level threshold = LOG_INFO;
static bool json_format;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_configure(const char *level, const char *format)
{
    int lv = -1;

    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcmp(level, level_names[i]) == 0) {
            lv = i;
        }
    }
    if (lv < 0 || (strcmp(format, "logfmt") != 0 && strcmp(format, "json") != 0)) {
        return -1;
    }
    threshold = (enum log_level)lv;
    json_format = strcmp(format, "json") == 0;
    return 0;
}

/* Writes s quoted and escaped (both formats accept JSON string escapes). */
static void put_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
        } else {
            fputc(c, out);
        }
    }
    fputc('"', out);
}

static void emit(enum log_level level, const char *component, const char *text)
{
    char ts[32];

    tstamp_format_rfc3339(tstamp_now_ms(), ts, sizeof(ts));
    pthread_mutex_lock(&log_lock);
    if (json_format) {
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", ts,
                level_names[level]);
        put_quoted(stderr, component);
        fputs(",\"msg\":", stderr);
        put_quoted(stderr, text);
        fputs("}\n", stderr);
    } else {
        fprintf(stderr, "ts=%s level=%s component=%s msg=", ts,
                level_names[level], component);
        put_quoted(stderr, text);
        fputc('\n', stderr);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    if (level > threshold) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    emit(level, component, text);
}

void log_limited(struct log_limit *lim, enum log_level level,
                 const char *component, const char *fmt, ...)
{
    char text[1024];
    int64_t now = tstamp_mono_ms();
    size_t n;
    va_list ap;

    if (level > threshold) {
        return;
    }
    if (lim->last_ms != 0 && now - lim->last_ms < LIMIT_INTERVAL_MS) {
        lim->suppressed++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    n = strlen(text);
    if (lim->suppressed > 0 && n < sizeof(text)) {
        snprintf(text + n, sizeof(text) - n, " (%llu similar suppressed)",
                 (unsigned long long)lim->suppressed);
    }
    lim->suppressed = 0;
    lim->last_ms = now;
    emit(level, component, text);
}
