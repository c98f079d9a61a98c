/*
 * Blocking data requests on local files and block devices; see posixio.h.
 *
 * DISCARD punches a hole (or BLKDISCARD) and is advisory: a file system that
 * cannot punch holes leaves the data, which is allowed.  WRITE_ZEROES uses
 * FALLOC_FL_ZERO_RANGE (or BLKZEROOUT) and falls back to writing zeroes.
 * BLOCK_STATUS of a regular file is SEEK_DATA/SEEK_HOLE (a hole is zero);
 * a block device node answers data.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "io/posixio.h"

#define ZERO_CHUNK (1024 * 1024)

static int full_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, (off_t)off);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf = (const char *)buf + n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Read until len or EOF; *got is the count. */
static int full_pread(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    *got = 0;
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, (off_t)off);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        buf = (char *)buf + n;
        len -= (size_t)n;
        off += (uint64_t)n;
        *got += (size_t)n;
    }
    return 0;
}

static int write_zero_buffers(int fd, uint64_t off, uint64_t len)
{
    _cleanup_free_ void *z = calloc(1, ZERO_CHUNK);

    if (z == NULL) {
        errno = ENOMEM;
        return -1;
    }
    while (len > 0) {
        size_t n = (size_t)KEEL_MIN(len, (uint64_t)ZERO_CHUNK);

        if (full_pwrite(fd, z, n, off) != 0)
            return -1;
        off += n;
        len -= n;
    }
    return 0;
}

static int do_zero(const struct keel_posix_target *t, uint64_t off, uint64_t len)
{
    if (t->is_bdev) {
        uint64_t range[2] = { off, len };

        if (ioctl(t->fd, BLKZEROOUT, range) == 0)
            return 0;
    } else if (fallocate(t->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len) == 0) {
        return 0;
    } else if (errno != EOPNOTSUPP && errno != ENOSYS) {
        return -1;
    }
    return write_zero_buffers(t->fd, off, len);
}

static int do_discard(const struct keel_posix_target *t, uint64_t off, uint64_t len)
{
    int r;

    if (t->is_bdev) {
        uint64_t range[2] = { off, len };

        r = ioctl(t->fd, BLKDISCARD, range);
    } else {
        r = fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
    }
    if (r != 0 && (errno == EOPNOTSUPP || errno == ENOSYS || errno == ENOTTY))
        r = 0;
    return r;
}

/* The run at off in a regular file: a hole (zeroes) up to the next data, or data up to the next hole. */
static int do_status(const struct keel_posix_target *t, uint64_t off, uint64_t len,
                     struct keel_io_status *st)
{
    off_t data, hole;

    *st = (struct keel_io_status){ .len = len };
    if (t->is_bdev)
        return 0; /* a block device node cannot tell: data */
    data = lseek(t->fd, (off_t)off, SEEK_DATA);
    if (data < 0 && errno == ENXIO) {
        st->zero = true; /* no data from off to EOF: a hole, or past the end (zero_fill) */
        return 0;
    }
    if (data < 0)
        return (errno == EINVAL || errno == EOPNOTSUPP) ? 0 : -1;
    if ((uint64_t)data > off) {
        st->zero = true;
        st->len = KEEL_MIN(len, (uint64_t)data - off);
        return 0;
    }
    hole = lseek(t->fd, (off_t)off, SEEK_HOLE);
    if (hole < 0)
        return (errno == EINVAL || errno == EOPNOTSUPP) ? 0 : -1;
    if ((uint64_t)hole > off)
        st->len = KEEL_MIN(len, (uint64_t)hole - off);
    return 0;
}

void keel_posix_run(struct keel_engine *eng, struct keel_ioreq *req)
{
    const struct keel_posix_target *t = req->priv.owner;
    struct keel_error e = KEEL_ERROR_INIT;
    size_t got = 0;
    int r;

    switch (req->op) {
    case KEEL_IO_READ:
        r = full_pread(t->fd, req->buf, req->len, req->offset, &got);
        if (r == 0 && got < req->len && t->zero_fill) {
            memset((char *)req->buf + got, 0, req->len - got);
            got = req->len;
        }
        break;
    case KEEL_IO_WRITE:
        r = full_pwrite(t->fd, req->buf, req->len, req->offset);
        got = req->len;
        break;
    case KEEL_IO_FLUSH:
        r = fdatasync(t->fd);
        break;
    case KEEL_IO_DISCARD:
        r = do_discard(t, req->offset, req->len);
        break;
    case KEEL_IO_WRITE_ZEROES:
        r = do_zero(t, req->offset, req->len);
        break;
    case KEEL_IO_TRUNCATE:
        r = ftruncate(t->fd, (off_t)req->offset);
        break;
    case KEEL_IO_BLOCK_STATUS:
        r = do_status(t, req->offset, req->len, req->buf);
        got = req->len;
        break;
    default:
        errno = EINVAL;
        r = -1;
    }
    if (r != 0) {
        int en = errno;

        keel_error_set(&e, en == ENOSPC ? KEEL_E_NOSPC : KEEL_E_IO, en, "%s", strerror(en));
        keel_engine_complete_async(eng, req, KEEL_OUT_ERROR, &e);
        return;
    }
    req->xfer = got;
    keel_engine_complete_async(eng, req, KEEL_OUT_OK, NULL);
}

int keel_posix_connect(struct keel_engine *eng)
{
    keel_engine_session_up(eng);
    return 0;
}
