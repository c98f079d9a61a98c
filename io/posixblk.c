/*
 * file:// block devices: a regular file (a LUN image, a sparse test disk)
 * or a block device node, reached with pread/pwrite on worker threads
 * (posixio.c does the system calls).
 *
 * Buffered I/O is used, so what tgtd or a loop device wrote to the same
 * file is seen at once; FLUSH is fdatasync().
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "io/blockdev-priv.h"
#include "io/engine.h"
#include "io/posixio.h"
#include "io/workers.h"

struct posixblk {
    struct keel_posix_target t;  /* owner of every request */
    struct keel_engine *eng;
    struct keel_workers *workers;
};

static int pb_connect(void *be, struct keel_error *err)
{
    struct posixblk *pb = be;

    (void)err;
    return keel_posix_connect(pb->eng);
}

static int pb_start(void *be, struct keel_ioreq *req, struct keel_error *err)
{
    struct posixblk *pb = be;

    (void)err;
    keel_workers_push(pb->workers, req);
    return 0;
}

static const struct keel_engine_ops pb_engine_ops = {
    .connect = pb_connect,
    .start = pb_start,
};

static void pb_run(void *be, struct keel_ioreq *req)
{
    struct posixblk *pb = be;

    keel_posix_run(pb->eng, req);
}

static int pb_submit(void *be, struct keel_ioreq *req, struct keel_error *err)
{
    struct posixblk *pb = be;

    return keel_engine_submit(pb->eng, req, pb, err);
}

static void pb_close(void *be)
{
    struct posixblk *pb = be;

    if (pb == NULL)
        return;
    keel_engine_free(pb->eng);
    keel_workers_free(pb->workers);
    if (pb->t.fd >= 0)
        close(pb->t.fd);
    free(pb);
}

static void pb_set_fence(void *be, struct keel_fence *f)
{
    struct posixblk *x = be;

    keel_engine_set_fence(x->eng, f);
}

static const struct keel_blockdev_ops pb_ops = {
    .submit = pb_submit,
    .close = pb_close,
    .set_fence = pb_set_fence,
};

int keel_posix_blockdev_open(const struct keel_url *url, const struct keel_io_opts *opts,
                             struct keel_blockdev **ret, struct keel_error *err)
{
    struct keel_blockdev_geom geom = { .block_size = 512, .max_xfer = 4 * 1024 * 1024,
                                       .max_zero = 1024 * 1024 * 1024, .native_zeroes = true };
    struct keel_io_opts o;
    struct posixblk *pb;
    struct stat st;
    char name[KEEL_URL_MAX];

    keel_url_format(url, true, name, sizeof(name));
    if (opts != NULL)
        o = *opts;
    else
        keel_io_opts_init(&o);
    pb = calloc(1, sizeof(*pb));
    if (pb == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", name);
    pb->t.zero_fill = true;
    pb->t.fd = open(url->path, O_RDWR | O_CLOEXEC);
    if (pb->t.fd < 0 && (errno == EACCES || errno == EROFS))
        pb->t.fd = open(url->path, O_RDONLY | O_CLOEXEC);
    if (pb->t.fd < 0) {
        int e = errno;

        pb_close(pb);
        return keel_error_errno(err, keel_errc_from_errno(e), e, "%s: cannot open", name);
    }
    if (fstat(pb->t.fd, &st) != 0) {
        int e = errno;

        pb_close(pb);
        return keel_error_errno(err, KEEL_E_IO, e, "%s: cannot stat", name);
    }
    if (S_ISBLK(st.st_mode)) {
        int ssz = 512;

        pb->t.is_bdev = true;
        if (ioctl(pb->t.fd, BLKGETSIZE64, &geom.size) != 0 || ioctl(pb->t.fd, BLKSSZGET, &ssz) != 0) {
            int e = errno;

            pb_close(pb);
            return keel_error_errno(err, KEEL_E_IO, e, "%s: cannot read the device size", name);
        }
        geom.block_size = (uint32_t)ssz;
    } else if (S_ISREG(st.st_mode)) {
        geom.size = (uint64_t)st.st_size;
        geom.block_status = true; /* SEEK_DATA / SEEK_HOLE */
    } else {
        pb_close(pb);
        return keel_error_set(err, KEEL_E_INVAL, EINVAL,
                              "%s: not a regular file or a block device", name);
    }
    geom.size = KEEL_ALIGN_DOWN(geom.size, geom.block_size);
    pb->workers = keel_workers_new(o.workers ? o.workers : KEEL_IO_DEFAULT_WORKERS, pb_run, pb);
    pb->eng = keel_engine_new(name, &pb_engine_ops, pb, &o);
    if (pb->workers == NULL || pb->eng == NULL) {
        pb_close(pb);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", name);
    }
    if (keel_engine_start(pb->eng, err) != 0) {
        pb_close(pb);
        return -1;
    }
    return keel_blockdev_new(name, &pb_ops, pb, &geom, ret, err);
}
