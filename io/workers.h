/*
 * struct keel_workers: a pool of threads that run blocking system calls for
 * the local backends (POSIX files and block devices).  Internal to io/.
 */
#ifndef KEEL_IO_WORKERS_H
#define KEEL_IO_WORKERS_H

#include "io/ioreq.h"

struct keel_workers;

/* run() executes one request on a worker thread and reports its outcome. */
typedef void keel_workers_run_fn(void *be, struct keel_ioreq *req);

/* Start n threads; NULL on failure. */
struct keel_workers *keel_workers_new(unsigned n, keel_workers_run_fn *run, void *be);

/* Queue req for a worker (FIFO). */
void keel_workers_push(struct keel_workers *w, struct keel_ioreq *req);

/* Finish the queue, stop the threads and free. NULL is accepted. */
void keel_workers_free(struct keel_workers *w);

#endif /* KEEL_IO_WORKERS_H */
