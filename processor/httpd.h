/* SPDX-License-Identifier: Apache-2.0 */
/* httpd: the embedded HTTP endpoint (libmicrohttpd) serving /metrics, /healthz and /readyz on its own thread. */
#ifndef TP_HTTPD_H
#define TP_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Threading. The server runs on libmicrohttpd's internal thread, one request
 * at a time; the main loop never waits for it. The main loop talks to it only
 * through httpd_alive and httpd_set_ready (cheap, callable from any thread).
 * The metrics callback runs on the server thread and must only read state that
 * is safe to read concurrently (the metrics registry is).
 *
 * Endpoints (GET or HEAD; another method on them gets 405 with Allow):
 *   /metrics  200 with the callback's body, Content-Type text/plain;
 *             version=0.0.4; 500 if the callback fails.
 *   /healthz  200 "ok" while the last httpd_alive is younger than stale_ms,
 *             else 503 naming how long ago the loop last ticked.
 *   /readyz   200 "ready" while httpd_set_ready(true), else 503 with the
 *             reason given.
 *   other     404.
 */

struct httpd_callbacks {
    /* Renders the /metrics body: returns 0 with *body a malloc'd buffer
     * (taken: httpd frees it with free()) of *len bytes, or -1. Runs on the
     * server thread. NULL: /metrics answers 404. */
    int (*metrics)(void *arg, char **body, size_t *len);
    void *arg; /* passed to metrics, borrowed */
    /* /healthz turns 503 when the loop has not ticked for this long (ms);
     * 0 takes 10000. */
    int64_t stale_ms;
};

struct httpd;

/* Starts serving on addr (an IPv4 or IPv6 literal, borrowed; NULL or "" =
 * 127.0.0.1) and port (0 = a free port, see httpd_port). cb is copied.
 * Starts not ready ("starting") and not alive. Returns NULL with errstr
 * naming the address and what failed. */
struct httpd *httpd_new(const char *addr, int port,
                        const struct httpd_callbacks *cb, char *errstr,
                        size_t errstr_size);

/* Stops the server thread (waits for a request in progress) and frees h. */
void httpd_destroy(struct httpd *h);

/* The port actually bound. */
int httpd_port(const struct httpd *h);

/* Records that the main loop is alive now (monotonic clock). */
void httpd_alive(struct httpd *h);

/* Sets readiness; reason (borrowed, copied, may be NULL) is what /readyz
 * answers while not ready, e.g. "redis unreachable: connection refused". */
void httpd_set_ready(struct httpd *h, bool ready, const char *reason);

#endif
