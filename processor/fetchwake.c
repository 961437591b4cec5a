/* SPDX-License-Identifier: Apache-2.0 */
/* fetchwake: wakes librdkafka's fetcher while a backlog is read (fetchwake.h
 * says why and how). */
#include "fetchwake.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long one wake's requests may take. */
#define WAKE_TIMEOUT_MS 1000

struct fetchwake {
    rd_kafka_t *rk;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t go;
    rd_kafka_topic_partition_list_t *parts; /* the wake asked for, or NULL */
    bool busy; /* parts handed over and not yet answered */
    bool quit;
    uint64_t count;
};

static void *run(void *arg)
{
    struct fetchwake *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        rd_kafka_topic_partition_list_t *parts;
        while (!w->quit && w->parts == NULL) {
            pthread_cond_wait(&w->go, &w->mu);
        }
        if (w->quit) {
            break;
        }
        parts = w->parts;
        w->parts = NULL;
        pthread_mutex_unlock(&w->mu);
        /* The answer does not matter, only that the leaders were asked
         * (the offset asked for is a timestamp: -1 is the latest). */
        (void)rd_kafka_offsets_for_times(w->rk, parts, WAKE_TIMEOUT_MS);
        rd_kafka_topic_partition_list_destroy(parts);
        pthread_mutex_lock(&w->mu);
        w->busy = false;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct fetchwake *fetchwake_new(rd_kafka_t *rk, char *errstr,
                                size_t errstr_size)
{
    struct fetchwake *w = calloc(1, sizeof(*w));
    int err;

    if (w == NULL) {
        snprintf(errstr, errstr_size, "fetch wake thread: out of memory");
        return NULL;
    }
    w->rk = rk;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->go, NULL);
    if ((err = pthread_create(&w->thread, NULL, run, w)) != 0) {
        snprintf(errstr, errstr_size, "fetch wake thread: %s", strerror(err));
        pthread_cond_destroy(&w->go);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    return w;
}

void fetchwake_destroy(struct fetchwake *w)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_signal(&w->go);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    if (w->parts != NULL) {
        rd_kafka_topic_partition_list_destroy(w->parts);
    }
    pthread_cond_destroy(&w->go);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

bool fetchwake_busy(struct fetchwake *w)
{
    bool busy;

    pthread_mutex_lock(&w->mu);
    busy = w->busy;
    pthread_mutex_unlock(&w->mu);
    return busy;
}

bool fetchwake_ask(struct fetchwake *w, rd_kafka_topic_partition_list_t *parts)
{
    bool taken;

    pthread_mutex_lock(&w->mu);
    taken = !w->busy;
    if (taken) {
        w->parts = parts;
        w->busy = true;
        w->count++;
        pthread_cond_signal(&w->go);
    }
    pthread_mutex_unlock(&w->mu);
    return taken;
}

uint64_t fetchwake_count(struct fetchwake *w)
{
    uint64_t n;

    pthread_mutex_lock(&w->mu);
    n = w->count;
    pthread_mutex_unlock(&w->mu);
    return n;
}
