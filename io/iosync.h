/*
 * struct keel_iosync: wait for a set of asynchronous requests.
 *
 *     struct keel_iosync s;
 *     keel_iosync_init(&s);
 *     for (...) { keel_iosync_prepare(&s, &req[i]); keel_blockdev_submit(dev, &req[i], &err); }
 *     keel_iosync_wait(&s);            every prepared request is done
 *     keel_iosync_release(&s);
 *
 * keel_iosync_prepare() sets req->done and req->opaque.  When a submit is
 * refused, call keel_iosync_cancel() for that request.
 */
#ifndef KEEL_IO_IOSYNC_H
#define KEEL_IO_IOSYNC_H

#include <pthread.h>

#include "io/ioreq.h"

struct keel_iosync {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned outstanding;
};

void keel_iosync_init(struct keel_iosync *s);
void keel_iosync_prepare(struct keel_iosync *s, struct keel_ioreq *req);
void keel_iosync_cancel(struct keel_iosync *s, struct keel_ioreq *req);
void keel_iosync_wait(struct keel_iosync *s);
/* Wait until at most `max` prepared requests are outstanding. */
void keel_iosync_wait_below(struct keel_iosync *s, unsigned max);
void keel_iosync_release(struct keel_iosync *s);

#endif /* KEEL_IO_IOSYNC_H */
