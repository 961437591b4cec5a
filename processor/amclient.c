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

/* A ring of queued payloads; the thread posts the head and drops it only
 * when Alertmanager answered 2xx (or when the ring overflows). */
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

/* One POST; returns 0 on a 2xx answer. */
static int post(struct amclient *c, CURL *curl, const char *body)
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
    rc = curl_easy_perform(curl);
    curl_slist_free_all(hdr);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    }
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        return 0;
    }
    atomic_fetch_add(&c->failures, 1);
    log_limited(&c->limit, LOG_WARN, "alertmanager", "POST %s failed: %s",
                c->url,
                rc != CURLE_OK ? curl_easy_strerror(rc) : "non-2xx status");
    return -1;
}

/* Waits out a retry backoff; amclient_destroy wakes it at once. */
static void backoff_wait(struct amclient *c, int64_t ms)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&c->lock);
    if (!c->stopping) {
        pthread_cond_timedwait(&c->wake, &c->lock, &until);
    }
    pthread_mutex_unlock(&c->lock);
}

static void *run(void *arg)
{
    struct amclient *c = arg;
    CURL *curl = curl_easy_init();
    int64_t backoff = 0;

    for (;;) {
        char *body;
        pthread_mutex_lock(&c->lock);
        while (c->len == 0 && !c->stopping) {
            pthread_cond_wait(&c->wake, &c->lock);
        }
        if (c->len == 0 ||
            (c->stopping && tstamp_mono_ms() >= c->deadline_mono)) {
            pthread_mutex_unlock(&c->lock);
            break;
        }
        body = c->queue[c->head];
        pthread_mutex_unlock(&c->lock);
        if (curl != NULL && post(c, curl, body) == 0) {
            pthread_mutex_lock(&c->lock);
            if (c->len > 0 && c->queue[c->head] == body) {
                c->queue[c->head] = NULL;
                c->head = (c->head + 1) % QUEUE_MAX;
                c->len--;
                free(body);
            }
            pthread_mutex_unlock(&c->lock);
            atomic_fetch_add(&c->sent, 1);
            backoff = 0;
        } else {
            backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
            backoff_wait(c, backoff < BACKOFF_MAX_MS ? backoff : BACKOFF_MAX_MS);
        }
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
    pthread_cond_init(&c->wake, NULL);
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
