/* SPDX-License-Identifier: Apache-2.0 */
/* amclient: posts alerts to Prometheus Alertmanager's API v2 from a thread of its own, with retries. */
#include "amclient.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "tstamp.h"

#define QUEUE_MAX 256
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 10000
#define POST_TIMEOUT_MS 5000
#define STOP_CHECK_MS 50

/* A ring of payloads waiting to be posted, oldest at head. The thread takes
 * the head out of the ring while it posts it (so amclient_post never frees a
 * body curl is sending) and puts it back at the head when the POST failed;
 * it frees it when Alertmanager answered 2xx. A full ring drops its oldest. */
struct amclient {
    char url[512];
    char *queue[QUEUE_MAX];
    size_t head, len;
    bool stopping;
    int64_t deadline_mono;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    atomic_uint_fast64_t failures, sent;
    struct log_limit limit;
};

static size_t discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * nmemb;
}

/* A POST may take POST_TIMEOUT_MS, but never past the shutdown deadline. */
static int64_t post_timeout(struct amclient *c)
{
    int64_t left;

    pthread_mutex_lock(&c->lock);
    left = c->stopping ? c->deadline_mono - tstamp_mono_ms() : POST_TIMEOUT_MS;
    pthread_mutex_unlock(&c->lock);
    return left < 1 ? 1 : left < POST_TIMEOUT_MS ? left : POST_TIMEOUT_MS;
}

/* Whether shutdown's deadline has passed; called with c->lock held. */
static bool deadline_passed(const struct amclient *c)
{
    return c->stopping && tstamp_mono_ms() >= c->deadline_mono;
}

static bool past_deadline(struct amclient *c)
{
    bool past;

    pthread_mutex_lock(&c->lock);
    past = deadline_passed(c);
    pthread_mutex_unlock(&c->lock);
    return past;
}

/* Runs the transfer set up on curl, looking every STOP_CHECK_MS whether the
 * shutdown deadline has passed (a POST begun before amclient_destroy would
 * otherwise hold it up for its whole timeout). */
static CURLcode perform(struct amclient *c, CURLM *multi, CURL *curl)
{
    CURLcode rc = CURLE_FAILED_INIT;
    int running = 1;

    if (curl_multi_add_handle(multi, curl) != CURLM_OK) {
        return rc;
    }
    while (curl_multi_perform(multi, &running) == CURLM_OK) {
        if (running == 0) {
            int left;
            CURLMsg *m = curl_multi_info_read(multi, &left);
            rc = m != NULL && m->msg == CURLMSG_DONE ? m->data.result
                                                     : CURLE_FAILED_INIT;
            break;
        }
        if (past_deadline(c)) {
            rc = CURLE_OPERATION_TIMEDOUT;
            break;
        }
        curl_multi_poll(multi, NULL, 0, STOP_CHECK_MS, NULL);
    }
    curl_multi_remove_handle(multi, curl);
    return rc;
}

/* One POST; returns 0 on a 2xx answer, 1 when Alertmanager refused the
 * body for good (a 4xx other than 408 and 429: sending it again cannot
 * help), -1 when it may be tried again. */
static int post(struct amclient *c, CURLM *multi, CURL *curl,
                const char *body)
{
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: "
                                                     "application/json");
    long status = 0;
    CURLcode rc;

    curl_easy_setopt(curl, CURLOPT_URL, c->url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)post_timeout(c));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    rc = perform(c, multi, curl);
    curl_slist_free_all(hdr);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    }
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        return 0;
    }
    atomic_fetch_add(&c->failures, 1);
    if (rc == CURLE_OK && status >= 400 && status < 500 && status != 408 &&
        status != 429) {
        log_limited(&c->limit, LOG_WARN, "alertmanager",
                    "POST %s refused with status %ld; dropped, not retried",
                    c->url, status);
        return 1;
    }
    if (rc == CURLE_OK) {
        log_limited(&c->limit, LOG_WARN, "alertmanager",
                    "POST %s failed: status %ld", c->url, status);
    } else {
        log_limited(&c->limit, LOG_WARN, "alertmanager", "POST %s failed: %s",
                    c->url, curl_easy_strerror(rc));
    }
    return -1;
}

/* Waits out a retry backoff, never past the shutdown deadline;
 * amclient_destroy wakes a wait begun before it, for one more try. */
static void backoff_wait(struct amclient *c, int64_t ms)
{
    int64_t until;

    pthread_mutex_lock(&c->lock);
    until = tstamp_mono_ms() + ms;
    if (c->stopping && c->deadline_mono < until) {
        until = c->deadline_mono;
    }
    if (until > tstamp_mono_ms()) {
        struct timespec ts = {(time_t)(until / 1000),
                              (long)(until % 1000) * 1000000};
        pthread_cond_timedwait(&c->wake, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
}

/* Takes the oldest waiting body out of the ring (the caller owns it), or
 * NULL when there is none or the shutdown deadline has passed. Waits for
 * one while not stopping. */
static char *take_head(struct amclient *c)
{
    char *body = NULL;

    pthread_mutex_lock(&c->lock);
    while (c->len == 0 && !c->stopping) {
        pthread_cond_wait(&c->wake, &c->lock);
    }
    if (c->len > 0 && !deadline_passed(c)) {
        body = c->queue[c->head];
        c->queue[c->head] = NULL;
        c->head = (c->head + 1) % QUEUE_MAX;
        c->len--;
    }
    pthread_mutex_unlock(&c->lock);
    return body;
}

/* Puts a body whose POST failed back at the head, to be retried first;
 * when newer posts filled the ring meanwhile, it is the oldest: dropped. */
static void put_back(struct amclient *c, char *body)
{
    pthread_mutex_lock(&c->lock);
    if (c->len == QUEUE_MAX) {
        free(body);
        atomic_fetch_add(&c->failures, 1);
    } else {
        c->head = (c->head + QUEUE_MAX - 1) % QUEUE_MAX;
        c->queue[c->head] = body;
        c->len++;
    }
    pthread_mutex_unlock(&c->lock);
}

static void *run(void *arg)
{
    struct amclient *c = arg;
    CURL *curl = curl_easy_init();
    CURLM *multi = curl_multi_init();
    int64_t backoff = 0;
    char *body;

    while ((body = take_head(c)) != NULL) {
        int rc = curl != NULL && multi != NULL ? post(c, multi, curl, body)
                                               : -1;
        if (rc >= 0) { /* sent, or refused for good: the next one */
            free(body);
            atomic_fetch_add(&c->sent, rc == 0);
            backoff = 0;
        } else {
            put_back(c, body);
            backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
            backoff_wait(c, backoff < BACKOFF_MAX_MS ? backoff : BACKOFF_MAX_MS);
        }
    }
    if (multi != NULL) {
        curl_multi_cleanup(multi);
    }
    if (curl != NULL) {
        curl_easy_cleanup(curl);
    }
    return NULL;
}

struct amclient *amclient_new(const char *base_url, char *errstr,
                              size_t errstr_size)
{
    struct amclient *c = calloc(1, sizeof(*c));
    pthread_condattr_t attr;
    size_t n;

    if (c == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/') {
        n--;
    }
    snprintf(c->url, sizeof(c->url), "%.*s/api/v2/alerts", (int)n, base_url);
    pthread_mutex_init(&c->lock, NULL);
    if (pthread_condattr_init(&attr) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* as the deadline */
    pthread_cond_init(&c->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        pthread_create(&c->thread, NULL, run, c) != 0) {
        snprintf(errstr, errstr_size,
                 "alert_outputs.alertmanager_url: cannot start the client");
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->wake);
        free(c);
        return NULL;
    }
    return c;
}

void amclient_post(struct amclient *c, char *json_array)
{
    pthread_mutex_lock(&c->lock);
    if (c->len == QUEUE_MAX) {
        free(c->queue[c->head]);
        c->queue[c->head] = NULL;
        c->head = (c->head + 1) % QUEUE_MAX;
        c->len--;
        atomic_fetch_add(&c->failures, 1);
    }
    c->queue[(c->head + c->len) % QUEUE_MAX] = json_array;
    c->len++;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
}

void amclient_destroy(struct amclient *c, int64_t deadline_ms)
{
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    c->deadline_mono = tstamp_mono_ms() + deadline_ms;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    for (size_t i = 0; i < c->len; i++) {
        free(c->queue[(c->head + i) % QUEUE_MAX]);
        atomic_fetch_add(&c->failures, 1);
    }
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->wake);
    free(c);
}

uint64_t amclient_failures(const struct amclient *c)
{
    return atomic_load(&((struct amclient *)c)->failures);
}

uint64_t amclient_sent(const struct amclient *c)
{
    return atomic_load(&((struct amclient *)c)->sent);
}
