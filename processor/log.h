/* SPDX-License-Identifier: Apache-2.0 */
/* log: one-line structured logs to stderr (logfmt or JSON), with rate limiting. */
#ifndef TP_LOG_H
#define TP_LOG_H

#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the threshold and format from config strings ("info", "logfmt"/"json").
 * Returns 0, or -1 for an unknown value (the old settings stay). */
int log_configure(const char *level, const char *format);

/* Logs msg for component; fmt/... build the message text. Thread-safe. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void log_msg(enum log_level level, const char *component, const char *fmt, ...);

/* A limiter lets one message through per interval and counts the rest; the
 * next message that passes says how many were suppressed. Zero-initialise. */
struct log_limit {
    int64_t last_ms;
    uint64_t suppressed;
};

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
void log_limited(struct log_limit *lim, enum log_level level,
                 const char *component, const char *fmt, ...);

#endif
