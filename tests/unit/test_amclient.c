/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for amclient: what it sends, drops and how long it holds a shutdown, against an HTTP peer on a loopback socket written here that answers only when the test lets it. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "amclient.h"
#include "tstamp.h"

#define BIG_BODY ((size_t)64 << 20) /* past glibc's largest mmap threshold */
#define MAX_SEEN 1024
#define WAIT_MS 20000

/* ---- the peer: accepts, holds each connection unread until opened, then
 * answers every request 200 and records what it got ----------------------- */

struct peer {
    int ls, port;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t opened_cv;
    bool opened, stop;
    atomic_int accepted;
    atomic_int conn_fd;    /* the connection being held, or -1 */
    atomic_int status;     /* what it answers: 200 unless set */
    long seen[MAX_SEEN];   /* per request: the body's number, or -1 for the
                              big body intact, -2 for it corrupted */
    atomic_int n_seen;
};

static bool stopping(struct peer *p)
{
    bool s;

    pthread_mutex_lock(&p->lock);
    s = p->stop;
    pthread_mutex_unlock(&p->lock);
    return s;
}

static ssize_t read_some(struct peer *p, int fd, char *buf, size_t len)
{
    struct pollfd pf = {fd, POLLIN, 0};

    while (!stopping(p)) {
        if (poll(&pf, 1, 50) > 0) {
            return read(fd, buf, len);
        }
    }
    return -1;
}

static char *find_blank_line(char *buf, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++) {
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            return buf + i;
        }
    }
    return NULL;
}

/* The Content-Length of a header block (NUL-terminated), 0 when absent. */
static size_t content_length(const char *head)
{
    for (const char *l = head; l != NULL; l = strstr(l, "\r\n")) {
        l += l[0] == '\r' ? 2 : 0;
        if (strncasecmp(l, "Content-Length:", 15) == 0) {
            return strtoul(l + 15, NULL, 10);
        }
    }
    return 0;
}

/* Records one body: "[N]" as N; a big one as -1 when every byte is 'x'. */
static void record(struct peer *p, const char *body, size_t len)
{
    long v = -2;

    if (len == BIG_BODY) {
        size_t i = 0;
        while (i < len && body[i] == 'x') {
            i++;
        }
        v = i == len ? -1 : -2;
    } else if (len > 2 && body[0] == '[') {
        v = strtol(body + 1, NULL, 10);
    }
    if (atomic_load(&p->n_seen) < MAX_SEEN) {
        p->seen[atomic_load(&p->n_seen)] = v;
        atomic_fetch_add(&p->n_seen, 1);
    }
}

/* Serves requests on fd until the client closes it; 0, or -1 on an error. */
static int serve(struct peer *p, int fd)
{
    static char buf[1 << 16];
    char *body = malloc(BIG_BODY);
    size_t have = 0;
    int rc = -1;

    while (body != NULL) {
        char *end = NULL, reply[80];
        size_t head, len, got;
        ssize_t n;
        int rlen;
        while ((end = find_blank_line(buf, have)) == NULL) {
            n = have < sizeof(buf)
                    ? read_some(p, fd, buf + have, sizeof(buf) - have)
                    : -1; /* a header block this long is not curl's */
            if (n <= 0) {
                rc = n == 0 && have == 0 ? 0 : -1;
                goto out;
            }
            have += (size_t)n;
        }
        *end = '\0';
        head = (size_t)(end - buf) + 4;
        len = content_length(buf);
        if (len > BIG_BODY) {
            goto out;
        }
        got = have - head < len ? have - head : len;
        memcpy(body, buf + head, got);
        memmove(buf, buf + head + got, have - head - got);
        have -= head + got;
        while (got < len) {
            n = read_some(p, fd, body + got, len - got);
            if (n <= 0) {
                goto out;
            }
            got += (size_t)n;
        }
        record(p, body, len);
        rlen = snprintf(reply, sizeof(reply),
                        "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n",
                        atomic_load(&p->status) ? atomic_load(&p->status)
                                                : 200);
        if (send(fd, reply, (size_t)rlen, MSG_NOSIGNAL) != rlen) {
            goto out;
        }
    }
out:
    free(body);
    return rc;
}

static void *peer_run(void *arg)
{
    struct peer *p = arg;
    struct pollfd pf = {p->ls, POLLIN, 0};

    while (!stopping(p)) {
        int fd;
        if (poll(&pf, 1, 50) <= 0 || (fd = accept(p->ls, NULL, NULL)) < 0) {
            continue;
        }
        atomic_store(&p->conn_fd, fd);
        atomic_fetch_add(&p->accepted, 1);
        pthread_mutex_lock(&p->lock);
        while (!p->opened && !p->stop) {
            pthread_cond_wait(&p->opened_cv, &p->lock);
        }
        pthread_mutex_unlock(&p->lock);
        serve(p, fd);
        atomic_store(&p->conn_fd, -1);
        close(fd);
    }
    return NULL;
}

static void peer_start(struct peer *p)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);

    memset(p, 0, sizeof(*p));
    atomic_store(&p->conn_fd, -1);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->opened_cv, NULL);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->ls >= 0);
    assert_int_equal(bind(p->ls, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(p->ls, 8), 0);
    assert_int_equal(getsockname(p->ls, (struct sockaddr *)&a, &len), 0);
    p->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&p->thread, NULL, peer_run, p), 0);
}

static void peer_open(struct peer *p)
{
    pthread_mutex_lock(&p->lock);
    p->opened = true;
    pthread_cond_broadcast(&p->opened_cv);
    pthread_mutex_unlock(&p->lock);
}

static void peer_stop(struct peer *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->opened_cv);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    close(p->ls);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->opened_cv);
}

/* Bytes waiting unread on the held connection. */
static int peer_unread(struct peer *p)
{
    int fd = atomic_load(&p->conn_fd), n = 0;

    if (fd < 0 || ioctl(fd, FIONREAD, &n) < 0) {
        return 0;
    }
    return n;
}

static void pause_ms(long ms)
{
    nanosleep(&(struct timespec){0, ms * 1000000}, NULL);
}

static struct amclient *client_for(int port)
{
    char url[64], err[256] = "";
    struct amclient *c;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    c = amclient_new(url, err, sizeof(err));
    if (c == NULL) {
        fail_msg("amclient_new: %s", err);
    }
    return c;
}

static char *numbered(int i)
{
    char *s = malloc(24);

    assert_non_null(s);
    snprintf(s, 24, "[%d]", i);
    return s;
}

/* ---- tests -------------------------------------------------------------- */

/* The ring overflows while its oldest body is half sent: the body curl is
 * sending is not the one dropped (it was freed under curl before), the oldest
 * waiting one is, and the rest go out in order. */
static void test_full_queue_drops_the_oldest_waiting_not_the_one_in_flight(
    void **state)
{
    struct peer p;
    struct amclient *c;
    char *big = malloc(BIG_BODY + 1);
    int64_t until;

    (void)state;
    assert_non_null(big);
    memset(big, 'x', BIG_BODY);
    big[BIG_BODY] = '\0';
    peer_start(&p);
    c = client_for(p.port);
    amclient_post(c, big);
    /* Sending has begun once body bytes arrive (the headers are under
     * 1 KiB; curl sends the body after a second's wait for "100 Continue");
     * the peer reads none of them yet, so curl stays in the middle. */
    until = tstamp_mono_ms() + WAIT_MS;
    while (peer_unread(&p) < (32 << 10) && tstamp_mono_ms() < until) {
        pause_ms(5);
    }
    assert_true(peer_unread(&p) >= (32 << 10));
    for (int i = 1; i <= 257; i++) {
        amclient_post(c, numbered(i));
    }
    peer_open(&p);
    until = tstamp_mono_ms() + WAIT_MS;
    while (amclient_sent(c) < 257 && tstamp_mono_ms() < until) {
        pause_ms(5);
    }
    assert_int_equal(amclient_sent(c), 257);
    assert_int_equal(amclient_failures(c), 1);
    amclient_destroy(c, 0);
    peer_stop(&p);
    assert_int_equal(atomic_load(&p.n_seen), 257);
    assert_int_equal(p.seen[0], -1);
    for (int i = 1; i < 257; i++) {
        assert_int_equal(p.seen[i], i + 1);
    }
}

/* A POST that Alertmanager never answers holds amclient_destroy up to its
 * deadline, not for the POST's whole timeout (5 s). */
static void test_destroy_keeps_its_deadline_while_a_post_hangs(void **state)
{
    struct peer p;
    struct amclient *c;
    int64_t until, t0, took;

    (void)state;
    peer_start(&p);
    c = client_for(p.port);
    amclient_post(c, numbered(1));
    until = tstamp_mono_ms() + WAIT_MS;
    while (peer_unread(&p) == 0 && tstamp_mono_ms() < until) {
        pause_ms(5);
    }
    assert_true(peer_unread(&p) > 0);
    t0 = tstamp_mono_ms();
    amclient_destroy(c, 300);
    took = tstamp_mono_ms() - t0;
    peer_stop(&p);
    assert_true(took >= 250);
    if (took > 1500) {
        fail_msg("amclient_destroy(300 ms) took %lld ms", (long long)took);
    }
}

/* With Alertmanager answering 503, retries during shutdown back off as
 * they do before it, instead of following each other until the deadline. */
static void test_retries_back_off_during_shutdown(void **state)
{
    struct peer p;
    struct amclient *c;
    int before, during;

    (void)state;
    peer_start(&p);
    atomic_store(&p.status, 503);
    peer_open(&p);
    c = client_for(p.port);
    amclient_post(c, numbered(1));
    while (amclient_failures(c) == 0) {
        pause_ms(5);
    }
    before = atomic_load(&p.n_seen);
    amclient_destroy(c, 1000);
    during = atomic_load(&p.n_seen) - before;
    peer_stop(&p);
    /* Backoff from 200 ms, doubling: at most a handful in a second. */
    if (during > 8) {
        fail_msg("%d POSTs during a 1 s shutdown", during);
    }
    assert_true(during >= 1);
}

/* A body Alertmanager refuses with 400 is dropped, not retried ahead of
 * everything queued behind it; a 503 is retried. */
static void test_a_refused_body_is_dropped_a_failed_one_retried(void **state)
{
    struct peer p;
    struct amclient *c;
    int64_t until;

    (void)state;
    peer_start(&p);
    atomic_store(&p.status, 400);
    peer_open(&p);
    c = client_for(p.port);
    amclient_post(c, numbered(1));
    until = tstamp_mono_ms() + WAIT_MS;
    while (amclient_failures(c) < 1 && tstamp_mono_ms() < until) {
        pause_ms(5);
    }
    assert_int_equal(amclient_failures(c), 1);
    atomic_store(&p.status, 200);
    amclient_post(c, numbered(2));
    while (amclient_sent(c) < 1 && tstamp_mono_ms() < until) {
        pause_ms(5);
    }
    assert_int_equal(amclient_sent(c), 1);
    amclient_destroy(c, 0);
    peer_stop(&p);
    /* [1] once (refused), then [2]: never [1] again */
    assert_int_equal(atomic_load(&p.n_seen), 2);
    assert_int_equal(p.seen[0], 1);
    assert_int_equal(p.seen[1], 2);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as touchpointd does */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_full_queue_drops_the_oldest_waiting_not_the_one_in_flight),
        cmocka_unit_test(test_destroy_keeps_its_deadline_while_a_post_hangs),
        cmocka_unit_test(test_retries_back_off_during_shutdown),
        cmocka_unit_test(test_a_refused_body_is_dropped_a_failed_one_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
