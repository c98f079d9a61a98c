/*
 * What a block device backend provides to blockdev.c.  Internal to io/.
 */
#ifndef KEEL_IO_BLOCKDEV_PRIV_H
#define KEEL_IO_BLOCKDEV_PRIV_H

#include "io/blockdev.h"
#include "io/url.h"

struct keel_blockdev_ops {
    /* Start req (already checked and split to max_xfer); done() follows. */
    int (*submit)(void *be, struct keel_ioreq *req, struct keel_error *err);
    /* Wait for the backend's requests and free it. */
    void (*close)(void *be);
    /* Gate the connection's writes (fence.h); NULL removes the fence. */
    void (*set_fence)(void *be, struct keel_fence *f);
};

struct keel_blockdev_geom {
    uint64_t size;         /* bytes */
    uint32_t block_size;   /* logical block size */
    size_t max_xfer;       /* largest READ/WRITE in one request (multiple of block_size) */
    size_t max_zero;       /* largest WRITE_ZEROES/DISCARD in one request */
    bool native_zeroes;    /* false: io/ writes zero buffers instead */
    bool block_status;     /* the backend answers KEEL_IO_BLOCK_STATUS */
};

/*
 * Wrap a backend into a device; name is the redacted URL (copied).  On
 * failure the backend is closed.
 */
int keel_blockdev_new(const char *name, const struct keel_blockdev_ops *ops, void *be,
                      const struct keel_blockdev_geom *geom, struct keel_blockdev **ret,
                      struct keel_error *err);

/* Backends (iscsi.c, posixblk.c, faulty.c) */
int keel_iscsi_blockdev_open(const struct keel_url *url, const struct keel_io_opts *opts,
                             struct keel_blockdev **ret, struct keel_error *err);
int keel_posix_blockdev_open(const struct keel_url *url, const struct keel_io_opts *opts,
                             struct keel_blockdev **ret, struct keel_error *err);
int keel_nfs_blockdev_open(const struct keel_url *url, const struct keel_io_opts *opts,
                           struct keel_blockdev **ret, struct keel_error *err);

#endif /* KEEL_IO_BLOCKDEV_PRIV_H */
