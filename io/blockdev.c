/*
 * The block device interface: argument checks, splitting of large requests
 * and emulated write-zeroes on top of a backend; see blockdev.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "io/blockdev-priv.h"
#include "io/iosync.h"
#include "io/url.h"

#define ZERO_BUF_MAX (1024 * 1024)

struct keel_blockdev {
    char name[KEEL_URL_MAX];
    const struct keel_blockdev_ops *ops;
    void *be;
    struct keel_blockdev_geom geom;
    void *zero_buf;        /* zeroes for emulated WRITE_ZEROES, zero_len bytes */
    size_t zero_len;
};

/* A request cut into children; the last child to finish completes the parent. */
struct split {
    struct keel_ioreq *parent;
    pthread_mutex_t lock;
    unsigned remaining;
    size_t xfer;
    bool failed;
    struct keel_error err;
    unsigned n;
    struct keel_ioreq child[];
};

int keel_blockdev_open(const char *url, const struct keel_io_opts *opts,
                       struct keel_blockdev **ret, struct keel_error *err)
{
    struct keel_url u;

    if (keel_url_parse(url, &u, err) != 0)
        return -1;
    switch (u.scheme) {
    case KEEL_URL_ISCSI:
        return keel_iscsi_blockdev_open(&u, opts, ret, err);
    case KEEL_URL_FILE:
        return keel_posix_blockdev_open(&u, opts, ret, err);
    case KEEL_URL_NFS:
        return keel_nfs_blockdev_open(&u, opts, ret, err);
    }
    return keel_error_set(err, KEEL_E_URL, EINVAL, "unknown scheme");
}

int keel_blockdev_new(const char *name, const struct keel_blockdev_ops *ops, void *be,
                      const struct keel_blockdev_geom *geom, struct keel_blockdev **ret,
                      struct keel_error *err)
{
    struct keel_blockdev *dev = calloc(1, sizeof(*dev));

    if (dev == NULL) {
        ops->close(be);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", name);
    }
    keel_strlcpy(dev->name, name, sizeof(dev->name));
    dev->ops = ops;
    dev->be = be;
    dev->geom = *geom;
    if (dev->geom.block_size == 0)
        dev->geom.block_size = 512;
    if (dev->geom.max_xfer == 0)
        dev->geom.max_xfer = 4 * 1024 * 1024;
    dev->geom.max_xfer = KEEL_ALIGN_DOWN(dev->geom.max_xfer, dev->geom.block_size);
    if (dev->geom.max_zero == 0)
        dev->geom.max_zero = dev->geom.max_xfer;
    dev->geom.max_zero = KEEL_ALIGN_DOWN(dev->geom.max_zero, dev->geom.block_size);
    if (!dev->geom.native_zeroes) {
        dev->zero_len = KEEL_MIN(dev->geom.max_xfer, (size_t)ZERO_BUF_MAX);
        dev->zero_buf = keel_aligned_alloc(4096, dev->zero_len);
        if (dev->zero_buf == NULL) {
            keel_blockdev_close(dev);
            return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", name);
        }
        memset(dev->zero_buf, 0, dev->zero_len);
    }
    *ret = dev;
    return 0;
}

void keel_blockdev_close(struct keel_blockdev *dev)
{
    if (dev == NULL)
        return;
    dev->ops->close(dev->be);
    free(dev->zero_buf);
    free(dev);
}

uint64_t keel_blockdev_size(const struct keel_blockdev *dev)
{
    return dev->geom.size;
}

uint32_t keel_blockdev_block_size(const struct keel_blockdev *dev)
{
    return dev->geom.block_size;
}

const char *keel_blockdev_name(const struct keel_blockdev *dev)
{
    return dev->name;
}

static int check_req(const struct keel_blockdev *dev, const struct keel_ioreq *req,
                     struct keel_error *err)
{
    uint32_t bs = dev->geom.block_size;
    const char *op = keel_io_op_name(req->op);

    switch (req->op) {
    case KEEL_IO_FLUSH:
        return 0;
    case KEEL_IO_READ:
    case KEEL_IO_WRITE:
        if (req->buf == NULL)
            return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: %s without a buffer",
                                  dev->name, op);
        /* fallthrough */
    case KEEL_IO_DISCARD:
    case KEEL_IO_WRITE_ZEROES:
        break;
    case KEEL_IO_BLOCK_STATUS:
        if (req->buf == NULL)
            return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: %s without a status",
                                  dev->name, op);
        if (!dev->geom.block_status)
            return keel_error_set(err, KEEL_E_UNSUPPORTED, EOPNOTSUPP,
                                  "%s: the storage does not report block status", dev->name);
        break;
    default:
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: %s is not a block device operation",
                              dev->name, op);
    }
    if (req->len == 0)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: %s of 0 bytes", dev->name, op);
    if (req->offset % bs != 0 || req->len % bs != 0)
        return keel_error_set(err, KEEL_E_ALIGN, EINVAL,
                              "%s: %s of %zu bytes at offset %" PRIu64
                              ": not aligned to the %" PRIu32 "-byte block size",
                              dev->name, op, req->len, req->offset, bs);
    if (req->offset > dev->geom.size || req->len > dev->geom.size - req->offset)
        return keel_error_set(err, KEEL_E_RANGE, EINVAL,
                              "%s: %s of %zu bytes at offset %" PRIu64
                              ": beyond the end of the device (%" PRIu64 " bytes)",
                              dev->name, op, req->len, req->offset, dev->geom.size);
    return 0;
}

static void split_child_done(struct keel_ioreq *child)
{
    struct split *sp = child->opaque;
    struct keel_ioreq *parent;
    bool last;

    pthread_mutex_lock(&sp->lock);
    if (child->result != 0 && !sp->failed) {
        sp->failed = true;
        sp->err = child->err;
    }
    sp->xfer += child->xfer;
    last = --sp->remaining == 0;
    pthread_mutex_unlock(&sp->lock);
    if (!last)
        return;
    parent = sp->parent;
    parent->result = sp->failed ? -1 : 0;
    parent->xfer = sp->failed ? 0 : sp->xfer;
    if (sp->failed)
        parent->err = sp->err;
    else
        keel_error_clear(&parent->err);
    pthread_mutex_destroy(&sp->lock);
    free(sp);
    parent->done(parent);
}

static int submit_split(struct keel_blockdev *dev, struct keel_ioreq *req, size_t chunk,
                        bool emulate_zeroes, struct keel_error *err)
{
    unsigned n = (unsigned)((req->len + chunk - 1) / chunk);
    struct split *sp = calloc(1, sizeof(*sp) + n * sizeof(struct keel_ioreq));
    unsigned i;

    if (sp == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", dev->name);
    pthread_mutex_init(&sp->lock, NULL);
    sp->parent = req;
    sp->n = n;
    sp->remaining = n;
    for (i = 0; i < n; i++) {
        struct keel_ioreq *c = &sp->child[i];
        uint64_t off = (uint64_t)i * chunk;

        c->op = emulate_zeroes ? KEEL_IO_WRITE : req->op;
        c->offset = req->offset + off;
        c->len = KEEL_MIN(chunk, req->len - off);
        if (emulate_zeroes)
            c->buf = dev->zero_buf;
        else if (req->buf != NULL)
            c->buf = (char *)req->buf + off;
        c->done = split_child_done;
        c->opaque = sp;
    }
    /* From here on the parent is accepted: a refused child counts as failed. */
    for (i = 0; i < n; i++) {
        struct keel_ioreq *c = &sp->child[i];
        struct keel_error e = KEEL_ERROR_INIT;

        if (dev->ops->submit(dev->be, c, &e) != 0) {
            c->result = -1;
            c->err = e;
            c->xfer = 0;
            split_child_done(c);
        }
    }
    return 0;
}

void keel_blockdev_set_fence(struct keel_blockdev *dev, struct keel_fence *f)
{
    if (dev->ops->set_fence != NULL)
        dev->ops->set_fence(dev->be, f);
}

int keel_blockdev_submit(struct keel_blockdev *dev, struct keel_ioreq *req,
                         struct keel_error *err)
{
    bool zero_op = req->op == KEEL_IO_WRITE_ZEROES || req->op == KEEL_IO_DISCARD;
    bool emulate = req->op == KEEL_IO_WRITE_ZEROES && !dev->geom.native_zeroes;
    size_t chunk;

    if (check_req(dev, req, err) != 0)
        return -1;
    if (req->op == KEEL_IO_FLUSH || req->op == KEEL_IO_BLOCK_STATUS)
        return dev->ops->submit(dev->be, req, err);
    chunk = emulate ? dev->zero_len : zero_op ? dev->geom.max_zero : dev->geom.max_xfer;
    if (req->len > chunk || emulate)
        return submit_split(dev, req, chunk, emulate, err);
    return dev->ops->submit(dev->be, req, err);
}

static int run_sync(struct keel_blockdev *dev, enum keel_io_op op, void *buf, size_t len,
                    uint64_t offset, struct keel_error *err)
{
    struct keel_ioreq req = { .op = op, .offset = offset, .len = len, .buf = buf };
    struct keel_iosync s;
    int rc;

    keel_iosync_init(&s);
    keel_iosync_prepare(&s, &req);
    if (keel_blockdev_submit(dev, &req, err) != 0) {
        keel_iosync_cancel(&s, &req);
        keel_iosync_release(&s);
        return -1;
    }
    keel_iosync_wait(&s);
    keel_iosync_release(&s);
    rc = req.result;
    if (rc != 0)
        keel_error_copy(err, &req.err);
    return rc;
}

int keel_blockdev_pread(struct keel_blockdev *dev, void *buf, size_t len, uint64_t offset,
                        struct keel_error *err)
{
    return run_sync(dev, KEEL_IO_READ, buf, len, offset, err);
}

int keel_blockdev_pwrite(struct keel_blockdev *dev, const void *buf, size_t len,
                         uint64_t offset, struct keel_error *err)
{
    return run_sync(dev, KEEL_IO_WRITE, (void *)buf, len, offset, err);
}

int keel_blockdev_flush(struct keel_blockdev *dev, struct keel_error *err)
{
    return run_sync(dev, KEEL_IO_FLUSH, NULL, 0, 0, err);
}

int keel_blockdev_discard(struct keel_blockdev *dev, uint64_t offset, uint64_t len,
                          struct keel_error *err)
{
    return run_sync(dev, KEEL_IO_DISCARD, NULL, (size_t)len, offset, err);
}

int keel_blockdev_write_zeroes(struct keel_blockdev *dev, uint64_t offset, uint64_t len,
                               struct keel_error *err)
{
    return run_sync(dev, KEEL_IO_WRITE_ZEROES, NULL, (size_t)len, offset, err);
}

bool keel_blockdev_knows_status(const struct keel_blockdev *dev)
{
    return dev->geom.block_status;
}

int keel_blockdev_block_status(struct keel_blockdev *dev, uint64_t offset, uint64_t len,
                               uint64_t *run, bool *zero, struct keel_error *err)
{
    struct keel_io_status st = { 0 };
    size_t n = (size_t)KEEL_MIN(len, (uint64_t)SIZE_MAX / 2);

    if (!dev->geom.block_status) {
        struct keel_ioreq probe = { .op = KEEL_IO_READ, .offset = offset, .len = n, .buf = &st };

        /* Still refuse what the storage would refuse: a misaligned or outside range. */
        if (check_req(dev, &probe, err) != 0)
            return -1;
        *run = n;
        *zero = false;
        return 0;
    }
    n = KEEL_ALIGN_DOWN(n, dev->geom.block_size);
    if (run_sync(dev, KEEL_IO_BLOCK_STATUS, &st, n, offset, err) != 0)
        return -1;
    if (st.len == 0 || st.len > n)
        return keel_error_set(err, KEEL_E_IO, EIO, "%s: block status at offset %" PRIu64
                              ": a run of %" PRIu64 " bytes for a request of %zu",
                              dev->name, offset, st.len, n);
    *run = st.len;
    *zero = st.zero;
    return 0;
}
