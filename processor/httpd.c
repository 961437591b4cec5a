/* SPDX-License-Identifier: Apache-2.0 */
/* httpd: the embedded HTTP endpoint (libmicrohttpd) serving /metrics, /healthz and /readyz on its own thread. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <microhttpd.h>

#include "log.h"
#include "metrics.h"
#include "tstamp.h"

/* Handlers return enum MHD_Result since 0.9.71, int before. */
#if MHD_VERSION >= 0x00097002
#define HTTPD_RESULT enum MHD_Result
#else
#define HTTPD_RESULT int
#endif

#define DEFAULT_ADDR "127.0.0.1"
#define DEFAULT_STALE_MS 10000
#define MAX_CONNECTIONS 32u
/* One address (a slow or hostile client) holds at most this many, so the
 * probes and scrapes from others always find a free connection. */
#define MAX_CONNECTIONS_PER_IP 8u
#define CONNECTION_TIMEOUT_S 10u

struct httpd {
    struct MHD_Daemon *daemon;
    struct httpd_callbacks cb;
    int port;
    _Atomic int64_t alive_ms; /* monotonic; 0 = never */
    atomic_bool ready;
    struct log_limit log_limit; /* of mhd_log */
    pthread_mutex_t lock; /* reason */
    char reason[256];
};

enum route { ROUTE_NONE, ROUTE_METRICS, ROUTE_HEALTHZ, ROUTE_READYZ };

static enum route route_of(const struct httpd *h, const char *url)
{
    if (strcmp(url, "/metrics") == 0 && h->cb.metrics != NULL) {
        return ROUTE_METRICS;
    }
    if (strcmp(url, "/healthz") == 0) {
        return ROUTE_HEALTHZ;
    }
    if (strcmp(url, "/readyz") == 0) {
        return ROUTE_READYZ;
    }
    return ROUTE_NONE;
}

/* Queues resp with status, adding the headers every answer carries. */
static HTTPD_RESULT send_response(struct MHD_Connection *conn,
                                  unsigned int status,
                                  struct MHD_Response *resp,
                                  const char *content_type)
{
    HTTPD_RESULT rc;

    if (resp == NULL) {
        return MHD_NO; /* out of memory: MHD closes the connection */
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static HTTPD_RESULT send_text(struct MHD_Connection *conn, unsigned int status,
                              const char *text)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);

    return send_response(conn, status, resp, "text/plain; charset=utf-8");
}

static HTTPD_RESULT serve_metrics(struct httpd *h, struct MHD_Connection *conn)
{
    struct MHD_Response *resp;
    char *body = NULL;
    size_t len = 0;

    if (h->cb.metrics(h->cb.arg, &body, &len) < 0) {
        return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                         "cannot render metrics\n");
    }
    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
    }
    return send_response(conn, MHD_HTTP_OK, resp, METRICS_CONTENT_TYPE);
}

static HTTPD_RESULT serve_healthz(struct httpd *h, struct MHD_Connection *conn)
{
    int64_t alive = atomic_load(&h->alive_ms);
    int64_t age = tstamp_mono_ms() - alive;
    char text[96];

    if (alive == 0) {
        return send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                         "starting: the main loop has not ticked yet\n");
    }
    if (age >= h->cb.stale_ms) {
        snprintf(text, sizeof(text),
                 "stale: the main loop last ticked %.1f s ago\n",
                 (double)age / 1000.0);
        return send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, text);
    }
    return send_text(conn, MHD_HTTP_OK, "ok\n");
}

static HTTPD_RESULT serve_readyz(struct httpd *h, struct MHD_Connection *conn)
{
    char text[sizeof(h->reason) + 16];

    if (atomic_load(&h->ready)) {
        return send_text(conn, MHD_HTTP_OK, "ready\n");
    }
    pthread_mutex_lock(&h->lock);
    snprintf(text, sizeof(text), "not ready: %s\n", h->reason);
    pthread_mutex_unlock(&h->lock);
    return send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, text);
}

/* MHD's access handler, once per request on the server thread. Answering on
 * the first call is fine for bodiless GETs; a request with a body gets its
 * 405/404 at once and MHD closes the connection instead of reading it. */
static HTTPD_RESULT handle(void *cls, struct MHD_Connection *conn,
                           const char *url, const char *method,
                           const char *version, const char *upload_data,
                           size_t *upload_data_size, void **req_cls)
{
    struct httpd *h = cls;
    enum route r = route_of(h, url);

    (void)version, (void)upload_data, (void)upload_data_size, (void)req_cls;
    if (r == ROUTE_NONE) {
        return send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                         "method not allowed\n");
    }
    switch (r) {
    case ROUTE_METRICS:
        return serve_metrics(h, conn);
    case ROUTE_HEALTHZ:
        return serve_healthz(h, conn);
    default:
        return serve_readyz(h, conn);
    }
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct httpd *h = cls;
    char text[256];
    size_t n;

    vsnprintf(text, sizeof(text), fmt, ap);
    n = strlen(text);
    while (n > 0 && text[n - 1] == '\n') {
        text[--n] = '\0';
    }
    /* A client can make MHD complain at will (aborted or refused
     * connections): one line per log interval. MHD calls this from its
     * thread (or, starting, from the caller's), never from two at once. */
    log_limited(&h->log_limit, LOG_WARN, "httpd", "%s", text);
}

/* Fills ss from an IPv4 or IPv6 literal ("::1" or "[::1]"). */
static int parse_addr(const char *addr, int port, struct sockaddr_storage *ss)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    char host[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(addr);

    memset(ss, 0, sizeof(*ss));
    if (n >= sizeof(host)) {
        return -1;
    }
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
        memcpy(host, addr + 1, n - 2);
        host[n - 2] = '\0';
    } else {
        memcpy(host, addr, n + 1);
    }
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return -1;
}

/* The logger must be the first option, or MHD's own may print to stderr. */
static struct MHD_Daemon *start_daemon(struct httpd *h, int port,
                                       const struct sockaddr_storage *ss)
{
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC |
                         MHD_USE_ERROR_LOG;

    if (ss->ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    return MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, handle, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_SOCK_ADDR,
        (const struct sockaddr *)ss, MHD_OPTION_CONNECTION_LIMIT,
        MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        MAX_CONNECTIONS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
        CONNECTION_TIMEOUT_S, MHD_OPTION_END);
}

static int bound_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);

    return info != NULL ? (int)info->port : -1;
}

/* A server not yet listening: not ready ("starting"), never alive. */
static struct httpd *httpd_alloc(const struct httpd_callbacks *cb)
{
    struct httpd *h = calloc(1, sizeof(*h));

    if (h == NULL || pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h);
        return NULL;
    }
    if (cb != NULL) {
        h->cb = *cb;
    }
    if (h->cb.stale_ms <= 0) {
        h->cb.stale_ms = DEFAULT_STALE_MS;
    }
    atomic_init(&h->alive_ms, 0);
    atomic_init(&h->ready, false);
    snprintf(h->reason, sizeof(h->reason), "starting");
    return h;
}

struct httpd *httpd_new(const char *addr, int port,
                        const struct httpd_callbacks *cb, char *errstr,
                        size_t errstr_size)
{
    struct sockaddr_storage ss;
    struct httpd *h;

    if (addr == NULL || addr[0] == '\0') {
        addr = DEFAULT_ADDR;
    }
    if (port < 0 || port > 65535) {
        snprintf(errstr, errstr_size, "http port %d: expected 0..65535",
                 port);
        return NULL;
    }
    if (parse_addr(addr, port, &ss) < 0) {
        snprintf(errstr, errstr_size,
                 "http address \"%s\": expected an IPv4 or IPv6 literal such "
                 "as 127.0.0.1 or ::1",
                 addr);
        return NULL;
    }
    h = httpd_alloc(cb);
    if (h == NULL) {
        snprintf(errstr, errstr_size, "http: out of memory");
        return NULL;
    }
    errno = 0;
    h->daemon = start_daemon(h, port, &ss);
    if (h->daemon == NULL) {
        snprintf(errstr, errstr_size, "http %s port %d: cannot listen: %s",
                 addr, port,
                 errno ? strerror(errno) : "libmicrohttpd did not start");
        httpd_destroy(h);
        return NULL;
    }
    h->port = bound_port(h->daemon);
    return h;
}

void httpd_destroy(struct httpd *h)
{
    if (h == NULL) {
        return;
    }
    if (h->daemon != NULL) {
        MHD_stop_daemon(h->daemon);
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}

int httpd_port(const struct httpd *h)
{
    return h->port;
}

void httpd_alive(struct httpd *h)
{
    int64_t now = tstamp_mono_ms();

    /* 0 means "never"; a clock that starts at 0 still counts as alive. */
    atomic_store(&h->alive_ms, now != 0 ? now : 1);
}

void httpd_set_ready(struct httpd *h, bool ready, const char *reason)
{
    pthread_mutex_lock(&h->lock);
    snprintf(h->reason, sizeof(h->reason), "%s",
             reason != NULL ? reason : "not ready");
    pthread_mutex_unlock(&h->lock);
    atomic_store(&h->ready, ready);
}
