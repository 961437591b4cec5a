/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for httpd: /metrics, /healthz, /readyz, 404 and 405 over a real loopback socket, with a plain client written here. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "tstamp.h"

/* ---- a minimal HTTP/1.1 client ----------------------------------------- */

struct reply {
    int status;
    char head[2048]; /* status line and headers */
    char body[8192];
};

static int dial(int family, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct timeval tv = {5, 0};
    int fd;

    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    fd = socket(family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        fail_msg("connect to port %d: %s", port, strerror(errno));
    }
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void copy_part(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap) {
        fail_msg("reply part of %zu bytes does not fit %zu", n, cap);
    }
    memcpy(dst, src, n + 1);
}

/* Sends "METHOD PATH" with an optional body and reads the reply to EOF. */
static void request_on(int family, int port, const char *method,
                       const char *path, const char *body, struct reply *r)
{
    static char buf[sizeof(r->head) + sizeof(r->body)];
    char req[512];
    size_t got = 0;
    ssize_t n;
    char *sep;
    int fd = dial(family, port);

    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
             "Content-Length: %zu\r\n\r\n",
             method, path, body ? strlen(body) : 0);
    send_all(fd, req, strlen(req));
    if (body != NULL) {
        send_all(fd, body, strlen(body));
    }
    while ((n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0) {
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    memset(r, 0, sizeof(*r));
    if (sscanf(buf, "HTTP/1.1 %d", &r->status) != 1) {
        fail_msg("%s %s: no status line in \"%s\"", method, path, buf);
    }
    sep = strstr(buf, "\r\n\r\n");
    assert_non_null(sep);
    *sep = '\0';
    copy_part(r->head, sizeof(r->head), buf);
    copy_part(r->body, sizeof(r->body), sep + 4);
}

static void request(int port, const char *method, const char *path,
                    struct reply *r)
{
    request_on(AF_INET, port, method, path, NULL, r);
}

/* The value of header name in r, or NULL (case-insensitive name). */
static const char *header(struct reply *r, const char *name)
{
    static char value[256];
    size_t n = strlen(name);

    for (char *line = strstr(r->head, "\r\n"); line != NULL;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, n) == 0 && line[2 + n] == ':') {
            const char *v = line + 3 + n;
            const char *end = strstr(v, "\r\n");
            size_t len = end ? (size_t)(end - v) : strlen(v);

            while (*v == ' ') {
                v++, len--;
            }
            snprintf(value, sizeof(value), "%.*s", (int)len, v);
            return value;
        }
    }
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* ---- fixtures ---------------------------------------------------------- */

struct probe {
    atomic_int calls;
    atomic_bool fail;
    pthread_t test_thread;      /* set before the server starts */
    atomic_bool on_other_thread; /* the last call ran off test_thread */
};

static const char metrics_body[] = "# HELP t_up Up.\n# TYPE t_up gauge\nt_up 1\n";

static int render_metrics(void *arg, char **body, size_t *len)
{
    struct probe *p = arg;

    atomic_fetch_add(&p->calls, 1);
    atomic_store(&p->on_other_thread,
                 !pthread_equal(pthread_self(), p->test_thread));
    if (atomic_load(&p->fail)) {
        return -1;
    }
    *body = strdup(metrics_body);
    *len = strlen(metrics_body);
    return *body ? 0 : -1;
}

struct fixture {
    struct httpd *h;
    struct probe probe;
    int port;
};

#define STALE_MS 300

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct httpd_callbacks cb = {render_metrics, NULL, STALE_MS};
    char err[256];

    if (f == NULL) {
        return -1;
    }
    cb.arg = &f->probe;
    f->probe.test_thread = pthread_self();
    f->h = httpd_new("127.0.0.1", 0, &cb, err, sizeof(err));
    if (f->h == NULL) {
        fprintf(stderr, "httpd_new: %s\n", err);
        free(f);
        return -1;
    }
    f->port = httpd_port(f->h);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    httpd_destroy(f->h);
    free(f);
    return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_port_zero_binds_a_free_loopback_port(void **state)
{
    struct fixture *f = *state;

    assert_true(f->port > 0 && f->port <= 65535);
}

static void test_metrics_served_from_callback_on_server_thread(void **state)
{
    struct fixture *f = *state;
    struct reply r;

    request(f->port, "GET", "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, metrics_body);
    assert_string_equal(header(&r, "Content-Type"),
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_int_equal(atomic_load(&f->probe.calls), 1);
    /* The callback ran on the server's thread, not the caller's. */
    assert_true(atomic_load(&f->probe.on_other_thread));
    /* The query string does not change the route. */
    request(f->port, "GET", "/metrics?name=x", &r);
    assert_int_equal(r.status, 200);
}

static void test_metrics_callback_failure_is_500(void **state)
{
    struct fixture *f = *state;
    struct reply r;

    atomic_store(&f->probe.fail, true);
    request(f->port, "GET", "/metrics", &r);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.body, "cannot render metrics\n");
}

static void test_healthz_follows_the_liveness_heartbeat(void **state)
{
    struct fixture *f = *state;
    struct reply r;

    request(f->port, "GET", "/healthz", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "starting: the main loop has not ticked yet\n");
    httpd_alive(f->h);
    request(f->port, "GET", "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    sleep_ms(STALE_MS + 100);
    request(f->port, "GET", "/healthz", &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "stale: the main loop last ticked 0."));
    httpd_alive(f->h);
    request(f->port, "GET", "/healthz", &r);
    assert_int_equal(r.status, 200);
}

static void test_readyz_toggles_with_reason(void **state)
{
    struct fixture *f = *state;
    struct reply r;

    request(f->port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "not ready: starting\n");
    httpd_set_ready(f->h, true, NULL);
    request(f->port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ready\n");
    httpd_set_ready(f->h, false, "redis unreachable: connection refused");
    request(f->port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body,
                        "not ready: redis unreachable: connection refused\n");
    httpd_set_ready(f->h, false, NULL);
    request(f->port, "GET", "/readyz", &r);
    assert_string_equal(r.body, "not ready: not ready\n");
}

static void test_unknown_paths_are_404(void **state)
{
    static const char *const paths[] = {"/", "/metrics/", "/health",
                                        "/readyz/x", "/METRICS"};
    struct fixture *f = *state;
    struct reply r;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        request(f->port, "GET", paths[i], &r);
        if (r.status != 404) {
            fail_msg("GET %s: %d", paths[i], r.status);
        }
    }
    request(f->port, "POST", "/nope", &r);
    assert_int_equal(r.status, 404);
}

static void test_other_methods_are_405_with_allow(void **state)
{
    static const char *const methods[] = {"POST", "PUT", "DELETE", "PATCH",
                                          "OPTIONS"};
    struct fixture *f = *state;
    struct reply r;

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        request(f->port, methods[i], "/healthz", &r);
        if (r.status != 405) {
            fail_msg("%s /healthz: %d", methods[i], r.status);
        }
        assert_string_equal(header(&r, "Allow"), "GET, HEAD");
    }
    /* A request with a body is answered without reading it. */
    request_on(AF_INET, f->port, "POST", "/metrics", "x=1&y=2", &r);
    assert_int_equal(r.status, 405);
    assert_int_equal(atomic_load(&f->probe.calls), 0);
}

static void test_head_answers_without_body(void **state)
{
    struct fixture *f = *state;
    struct reply r;

    httpd_alive(f->h);
    request(f->port, "HEAD", "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "");
}

static void test_many_requests_in_a_row(void **state)
{
    struct fixture *f = *state;
    struct reply r;

    for (int i = 0; i < 200; i++) {
        request(f->port, "GET", "/metrics", &r);
        assert_int_equal(r.status, 200);
    }
    assert_int_equal(atomic_load(&f->probe.calls), 200);
}

/* A connection to port from a loopback address of our choosing; -1 when
 * the connect fails. */
static int dial_from(const char *src, int port)
{
    struct sockaddr_in a = {0}, to = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    a.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, src, &a.sin_addr), 1);
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 40 slow clients from one address, each with a request begun and never
 * finished, do not take every connection: a probe from another address is
 * answered (before, they held all 32 and the probe was refused, so a
 * liveness probe failed and the pod restarted). */
static void test_one_address_cannot_hold_every_connection(void **state)
{
    struct fixture *f = *state;
    static const char partial[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    int fds[40];
    struct reply r;

    httpd_alive(f->h);
    for (int i = 0; i < 40; i++) {
        fds[i] = dial_from("127.0.0.2", f->port);
        if (fds[i] >= 0) { /* refused ones may be closed already */
            (void)send(fds[i], partial, sizeof(partial) - 1, MSG_NOSIGNAL);
        }
    }
    request(f->port, "GET", "/healthz", &r);
    assert_int_equal(r.status, 200);
    for (int i = 0; i < 40; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
}

static void test_destroy_returns_with_an_idle_connection_open(void **state)
{
    struct fixture *f = *state;
    int fd = dial(AF_INET, f->port);
    int64_t start = tstamp_mono_ms();

    httpd_destroy(f->h);
    f->h = NULL;
    assert_true(tstamp_mono_ms() - start < 2000);
    close(fd);
}

static void test_bad_address_port_and_busy_port_are_errors(void **state)
{
    struct httpd_callbacks cb = {NULL, NULL, 0};
    struct httpd *h, *h2;
    char err[256];

    (void)state;
    assert_null(httpd_new("localhost", 0, &cb, err, sizeof(err)));
    assert_string_equal(err, "http address \"localhost\": expected an IPv4 "
                             "or IPv6 literal such as 127.0.0.1 or ::1");
    assert_null(httpd_new("127.0.0.1", 70000, &cb, err, sizeof(err)));
    assert_string_equal(err, "http port 70000: expected 0..65535");
    assert_null(httpd_new("127.0.0.1", -1, &cb, err, sizeof(err)));
    h = httpd_new(NULL, 0, &cb, err, sizeof(err));
    assert_non_null(h);
    h2 = httpd_new("127.0.0.1", httpd_port(h), &cb, err, sizeof(err));
    if (h2 != NULL) {
        httpd_destroy(h2);
        httpd_destroy(h);
        fail_msg("second server on a busy port started");
    }
    assert_non_null(strstr(err, "cannot listen"));
    httpd_destroy(h);
    httpd_destroy(NULL);
}

static void test_no_metrics_callback_means_404_and_default_addr(void **state)
{
    struct httpd_callbacks cb = {NULL, NULL, 0};
    struct httpd *h;
    struct reply r;
    char err[256];

    (void)state;
    h = httpd_new("", 0, &cb, err, sizeof(err));
    assert_non_null(h);
    request(httpd_port(h), "GET", "/metrics", &r);
    assert_int_equal(r.status, 404);
    /* Default stale_ms (10 s): a fresh tick is healthy. */
    httpd_alive(h);
    request(httpd_port(h), "GET", "/healthz", &r);
    assert_int_equal(r.status, 200);
    httpd_destroy(h);
}

static void test_ipv6_loopback(void **state)
{
    struct httpd_callbacks cb = {NULL, NULL, 0};
    struct httpd *h;
    struct reply r;
    char err[256];
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                             .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have_v6 = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    (void)state;
    if (fd >= 0) {
        close(fd);
    }
    if (!have_v6) {
        skip(); /* no IPv6 loopback on this host */
    }
    h = httpd_new("[::1]", 0, &cb, err, sizeof(err));
    if (h == NULL) {
        fail_msg("httpd_new [::1]: %s", err);
    }
    httpd_set_ready(h, true, NULL);
    request_on(AF_INET6, httpd_port(h), "GET", "/readyz", NULL, &r);
    assert_int_equal(r.status, 200);
    httpd_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_port_zero_binds_a_free_loopback_port, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_metrics_served_from_callback_on_server_thread, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_metrics_callback_failure_is_500,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_healthz_follows_the_liveness_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_toggles_with_reason, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_paths_are_404, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_other_methods_are_405_with_allow,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_answers_without_body, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_one_address_cannot_hold_every_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_requests_in_a_row, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_destroy_returns_with_an_idle_connection_open, setup,
            teardown),
        cmocka_unit_test(test_bad_address_port_and_busy_port_are_errors),
        cmocka_unit_test(test_no_metrics_callback_means_404_and_default_addr),
        cmocka_unit_test(test_ipv6_loopback),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
