/*
 * Blocking data requests on a local file descriptor, shared by the POSIX
 * block device (posixblk.c) and the POSIX file system (posixfs.c).
 * Internal to io/.
 */
#ifndef KEEL_IO_POSIXIO_H
#define KEEL_IO_POSIXIO_H

#include <stdbool.h>

#include "io/engine.h"
#include "io/ioreq.h"

/* The owner of a request on a local backend: every request's priv.owner. */
struct keel_posix_target {
    int fd;
    bool is_bdev;       /* a block device node: BLKZEROOUT / BLKDISCARD */
    bool zero_fill;     /* reads past EOF give zeroes (block view) instead of short */
};

/*
 * Run req on its target (req->priv.owner) and report the outcome to eng.
 * Called on a worker thread.
 */
void keel_posix_run(struct keel_engine *eng, struct keel_ioreq *req);

/* An engine session for local backends: up at once, never lost. */
int keel_posix_connect(struct keel_engine *eng);

#endif /* KEEL_IO_POSIXIO_H */
