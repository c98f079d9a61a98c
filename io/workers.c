/*
 * Worker threads for blocking system calls; see workers.h.
 * The queue links requests through priv.cnext: a request leaves the queue
 * before run() is called, and only then may it be completed (which uses
 * cnext again).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "io/workers.h"

struct keel_workers {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct keel_ioreq *head, *tail;
    bool stopping;
    keel_workers_run_fn *run;
    void *be;
    unsigned n;
    pthread_t threads[];
};

static void *worker_main(void *arg)
{
    struct keel_workers *w = arg;

    for (;;) {
        struct keel_ioreq *req;

        pthread_mutex_lock(&w->lock);
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->cond, &w->lock);
        req = w->head;
        if (req == NULL) {
            pthread_mutex_unlock(&w->lock);
            return NULL;
        }
        w->head = req->priv.cnext;
        if (w->head == NULL)
            w->tail = NULL;
        pthread_mutex_unlock(&w->lock);
        w->run(w->be, req);
    }
}

struct keel_workers *keel_workers_new(unsigned n, keel_workers_run_fn *run, void *be)
{
    struct keel_workers *w = calloc(1, sizeof(*w) + n * sizeof(pthread_t));

    if (w == NULL)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->run = run;
    w->be = be;
    for (w->n = 0; w->n < n; w->n++) {
        if (pthread_create(&w->threads[w->n], NULL, worker_main, w) != 0) {
            keel_workers_free(w);
            return NULL;
        }
    }
    return w;
}

void keel_workers_push(struct keel_workers *w, struct keel_ioreq *req)
{
    req->priv.cnext = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->tail)
        w->tail->priv.cnext = req;
    else
        w->head = req;
    w->tail = req;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void keel_workers_free(struct keel_workers *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (unsigned i = 0; i < w->n; i++)
        pthread_join(w->threads[i], NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}
