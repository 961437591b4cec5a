/* SPDX-License-Identifier: Apache-2.0 */
/* scanpool: a helper thread that parses part of each batch of messages while
 * the consumer thread parses and processes the rest, in order. */
#include "scanpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"

struct scanpool {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t go;   /* a range to scan, or quit */
    pthread_cond_t done; /* the range is scanned */
    size_t max_bytes;
    struct scan_item *items;
    size_t from, to;
    bool busy; /* a range is handed over and not yet scanned */
    bool quit;
};

void scanpool_scan(size_t max_bytes, struct scan_item *items, size_t from,
                   size_t to)
{
    for (size_t i = from; i < to; i++) {
        struct scan_item *it = &items[i];
        if (it->buf != NULL) {
            it->rc = scan_event(it->buf, it->len, max_bytes, &it->ev,
                                &it->err);
            if (it->rc == 0) {
                pipeline_hash_event(&it->ev, &it->h);
            }
        }
    }
}

static void *run(void *arg)
{
    struct scanpool *sp = arg;

    pthread_mutex_lock(&sp->mu);
    for (;;) {
        while (!sp->busy && !sp->quit) {
            pthread_cond_wait(&sp->go, &sp->mu);
        }
        if (sp->quit) {
            break;
        }
        pthread_mutex_unlock(&sp->mu);
        scanpool_scan(sp->max_bytes, sp->items, sp->from, sp->to);
        pthread_mutex_lock(&sp->mu);
        sp->busy = false;
        pthread_cond_signal(&sp->done);
    }
    pthread_mutex_unlock(&sp->mu);
    return NULL;
}

struct scanpool *scanpool_new(size_t max_bytes, char *errstr,
                              size_t errstr_size)
{
    struct scanpool *sp = calloc(1, sizeof(*sp));
    int err;

    if (sp == NULL) {
        snprintf(errstr, errstr_size, "scan thread: out of memory");
        return NULL;
    }
    sp->max_bytes = max_bytes;
    pthread_mutex_init(&sp->mu, NULL);
    pthread_cond_init(&sp->go, NULL);
    pthread_cond_init(&sp->done, NULL);
    if ((err = pthread_create(&sp->thread, NULL, run, sp)) != 0) {
        snprintf(errstr, errstr_size, "scan thread: %s", strerror(err));
        pthread_cond_destroy(&sp->done);
        pthread_cond_destroy(&sp->go);
        pthread_mutex_destroy(&sp->mu);
        free(sp);
        return NULL;
    }
    return sp;
}

void scanpool_destroy(struct scanpool *sp)
{
    if (sp == NULL) {
        return;
    }
    pthread_mutex_lock(&sp->mu);
    sp->quit = true;
    pthread_cond_signal(&sp->go);
    pthread_mutex_unlock(&sp->mu);
    pthread_join(sp->thread, NULL);
    pthread_cond_destroy(&sp->done);
    pthread_cond_destroy(&sp->go);
    pthread_mutex_destroy(&sp->mu);
    free(sp);
}

void scanpool_start(struct scanpool *sp, struct scan_item *items, size_t from,
                    size_t to)
{
    pthread_mutex_lock(&sp->mu);
    sp->items = items;
    sp->from = from;
    sp->to = to;
    sp->busy = true;
    pthread_cond_signal(&sp->go);
    pthread_mutex_unlock(&sp->mu);
}

void scanpool_wait(struct scanpool *sp)
{
    pthread_mutex_lock(&sp->mu);
    while (sp->busy) {
        pthread_cond_wait(&sp->done, &sp->mu);
    }
    pthread_mutex_unlock(&sp->mu);
}
