/* Waiting for asynchronous requests; see iosync.h. */
#include "io/iosync.h"

void keel_iosync_init(struct keel_iosync *s)
{
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->outstanding = 0;
}

static void iosync_done(struct keel_ioreq *req)
{
    struct keel_iosync *s = req->opaque;

    pthread_mutex_lock(&s->lock);
    s->outstanding--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void keel_iosync_prepare(struct keel_iosync *s, struct keel_ioreq *req)
{
    req->done = iosync_done;
    req->opaque = s;
    pthread_mutex_lock(&s->lock);
    s->outstanding++;
    pthread_mutex_unlock(&s->lock);
}

void keel_iosync_cancel(struct keel_iosync *s, struct keel_ioreq *req)
{
    iosync_done(req);
    (void)s;
}

void keel_iosync_wait_below(struct keel_iosync *s, unsigned max)
{
    pthread_mutex_lock(&s->lock);
    while (s->outstanding > max)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

void keel_iosync_wait(struct keel_iosync *s)
{
    keel_iosync_wait_below(s, 0);
}

void keel_iosync_release(struct keel_iosync *s)
{
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
}
