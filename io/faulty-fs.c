/*
 * The faulty file system: a backend of fs.c (fs-priv.h) over another
 * keel_fs, driven by the controller of faulty.c.  See faulty.h, and the
 * invariants and states at the top of faulty.c, which hold here too.
 *
 * Namespace calls map to the inner file system's public functions, after
 * the controller counted them.  They run on the caller's thread, except
 * while the plan buffers writes: then they run on the worker, to keep
 * their place among the buffered file writes (faulty.c invariants 4, 5).
 * They are never buffered themselves: fs.h makes them durable on return.
 *
 * A file opened through the wrapper holds a file of inner.  A file the user
 * closes while writes of it are still buffered keeps its inner file open
 * until they are applied (flush by arm or close of the file system) or
 * lost (crash): only then does ff_forget() close it.  This is what lets a
 * test see the classic bug "write, close, rename, no fsync: after a crash
 * the new name holds an empty file".
 *
 * File writes are torn in 512-byte pieces counted from the start of the
 * request (no alignment: files have none); the last piece may be shorter.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "io/faulty.h"
#include "io/fs-priv.h"
#include "io/iosync.h"
#include "io/url.h"

#define PIECE 512

struct faulty_fs {
    struct keel_faulty *ctl;
    struct keel_fs *inner;
};

struct faulty_file {
    struct keel_file *inner;
    unsigned flags;          /* keel_open_flags it was opened with */
    size_t npending;         /* its writes in the pending list (worker only) */
    bool closed;             /* closed by the user: freed when npending is 0 */
    char path[KEEL_URL_PATH_MAX];
};

static bool fs_op_writes(enum keel_io_op op)
{
    /* DISCARD punches a hole in a file: it changes what reads return. */
    return op == KEEL_IO_WRITE || op == KEEL_IO_WRITE_ZEROES || op == KEEL_IO_DISCARD ||
           op == KEEL_IO_TRUNCATE;
}

static bool call_writes(const struct keel_fs_call *c)
{
    switch (c->op) {
    case KEEL_FSOP_MKDIR:
    case KEEL_FSOP_RMDIR:
    case KEEL_FSOP_UNLINK:
    case KEEL_FSOP_RENAME:
    case KEEL_FSOP_LINK:
        return true;
    case KEEL_FSOP_OPEN:
        return (c->flags & (KEEL_O_CREAT | KEEL_O_TRUNC)) != 0;
    default:
        return false;
    }
}

static bool match_file(const struct keel_fault_pending *p, const void *arg)
{
    return p->file == arg;
}

static bool match_path(const struct keel_fault_pending *p, const void *arg)
{
    const struct faulty_file *ff = p->file;

    return strcmp(ff->path, arg) == 0;
}

/* A data request on an inner file, waited for (fs.h has no synchronous form of all). */
static int file_op(struct keel_file *f, enum keel_io_op op, void *buf, size_t len,
                   uint64_t offset, size_t *xfer, struct keel_error *err)
{
    struct keel_ioreq req = { .op = op, .offset = offset, .len = len, .buf = buf };
    struct keel_iosync s;

    keel_iosync_init(&s);
    keel_iosync_prepare(&s, &req);
    if (keel_file_submit(f, &req, err) != 0) {
        keel_iosync_cancel(&s, &req);
        keel_iosync_release(&s);
        return -1;
    }
    keel_iosync_wait(&s);
    keel_iosync_release(&s);
    if (req.result != 0)
        return keel_error_copy(err, &req.err);
    if (xfer != NULL)
        *xfer = req.xfer;
    return 0;
}

static int free_file(struct faulty_file *ff, struct keel_error *err)
{
    int rc = keel_file_close(ff->inner, err);

    free(ff);
    return rc;
}

static int ff_apply(void *be, const struct keel_fault_pending *p, uint64_t rel, size_t len,
                    struct keel_error *err)
{
    struct faulty_file *ff = p->file;

    (void)be;
    if (p->op == KEEL_IO_TRUNCATE)
        return keel_file_truncate(ff->inner, p->offset, err);
    if (len == 0)
        return 0;
    if (p->op == KEEL_IO_WRITE)
        return keel_file_pwrite(ff->inner, p->buf + rel, len, p->offset + rel, err);
    return file_op(ff->inner, p->op, NULL, len, p->offset + rel, NULL, err);
}

static void ff_forget(void *be, struct keel_fault_pending *p)
{
    struct faulty_file *ff = p->file;

    (void)be;
    if (--ff->npending == 0 && ff->closed)
        free_file(ff, NULL);
}

static const struct keel_fault_backend ff_backend = {
    .apply = ff_apply,
    .forget = ff_forget,
};

/* ---- namespace calls ---- */

static int open_file(struct faulty_fs *ffs, struct keel_fs_call *c, struct keel_error *err)
{
    struct faulty_file *ff = calloc(1, sizeof(*ff));

    if (ff == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory",
                              keel_faulty__name(ffs->ctl));
    if (keel_file_open(ffs->inner, c->path, c->flags, c->mode, &ff->inner, err) != 0) {
        free(ff);
        return -1;
    }
    ff->flags = c->flags;
    keel_strlcpy(ff->path, c->path, sizeof(ff->path));
    c->file = ff;
    return 0;
}

static int close_file(struct faulty_file *ff, struct keel_error *err)
{
    if (ff == NULL)
        return 0;
    if (ff->npending > 0) {
        ff->closed = true;
        return 0;
    }
    return free_file(ff, err);
}

/* The call itself, on inner.  buffered: sizes include the pending writes. */
static int do_call(struct faulty_fs *ffs, struct keel_fs_call *c, bool buffered,
                   struct keel_error *err)
{
    struct faulty_file *ff = c->file;

    switch (c->op) {
    case KEEL_FSOP_STAT:
        if (keel_fs_stat(ffs->inner, c->path, &c->st, err) != 0)
            return -1;
        if (buffered && c->st.is_reg)
            c->st.size = keel_faulty__size(ffs->ctl, match_path, c->path, c->st.size);
        return 0;
    case KEEL_FSOP_MKDIR:
        return keel_fs_mkdir(ffs->inner, c->path, c->mode, err);
    case KEEL_FSOP_RMDIR:
        return keel_fs_rmdir(ffs->inner, c->path, err);
    case KEEL_FSOP_UNLINK:
        return keel_fs_unlink(ffs->inner, c->path, err);
    case KEEL_FSOP_RENAME:
        return keel_fs_rename(ffs->inner, c->path, c->path2, err);
    case KEEL_FSOP_LINK:
        return keel_fs_link(ffs->inner, c->path, c->path2, err);
    case KEEL_FSOP_READDIR:
        return keel_fs_readdir(ffs->inner, c->path, &c->list, err);
    case KEEL_FSOP_STATVFS:
        return keel_fs_statvfs(ffs->inner, &c->vfs, err);
    case KEEL_FSOP_OPEN:
        return open_file(ffs, c, err);
    case KEEL_FSOP_CLOSE:
        return close_file(ff, err);
    case KEEL_FSOP_FSTAT:
        if (keel_file_fstat(ff->inner, &c->st, err) != 0)
            return -1;
        if (buffered)
            c->st.size = keel_faulty__size(ffs->ctl, match_file, ff, c->st.size);
        return 0;
    }
    return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: unknown call %d",
                          keel_faulty__name(ffs->ctl), (int)c->op);
}

/* A call with its fault t: on the caller's thread, or on the worker when buffered. */
static int run_call(struct faulty_fs *ffs, struct keel_fs_call *c, const struct keel_fault_tag *t,
                    struct keel_error *err)
{
    struct keel_error ignored = KEEL_ERROR_INIT;

    switch (t->act) {
    case KEEL_FA_PASS:
        return do_call(ffs, c, t->buffered, err);
    case KEEL_FA_CRASH:
        /* The buffered writes came first; then this call happens or not. */
        keel_faulty__crash(ffs->ctl, NULL, t->buffered);
        if (keel_faulty__crash_applies(ffs->ctl) && do_call(ffs, c, false, &ignored) == 0 &&
            c->op == KEEL_FSOP_OPEN) {
            /* The file exists now, but the caller gets an error, not a file. */
            close_file(c->file, NULL);
            c->file = NULL;
        }
        return keel_faulty__fail(ffs->ctl, t, err);
    default:
        return keel_faulty__fail(ffs->ctl, t, err);
    }
}

static int ffs_call(void *be, struct keel_fs_call *c, struct keel_error *err)
{
    struct faulty_fs *ffs = be;
    struct keel_fault_tag t = { .act = KEEL_FA_PASS };
    struct keel_ioreq req = { .op = KEEL_IO_FS_OP };

    /* CLOSE always closes: it is neither counted nor failed. */
    if (c->op == KEEL_FSOP_CLOSE)
        t.buffered = keel_faulty__buffered(ffs->ctl);
    else
        keel_faulty__decide(ffs->ctl, KEEL_IO_FS_OP, call_writes(c), &t);
    if (!t.buffered)
        return run_call(ffs, c, &t, err);
    req.priv.fsarg = c;
    return keel_faulty__run_on_worker(ffs->ctl, &req, &t, err);
}

/* ---- file data ---- */

/* Read from the inner file; buffered: with the pending writes laid over. */
static int ff_read(struct faulty_fs *ffs, struct faulty_file *ff, bool buffered, void *buf,
                   size_t len, uint64_t offset, size_t *xfer, struct keel_error *err)
{
    size_t got = 0;

    *xfer = 0;
    if (len == 0)
        return 0;
    if (keel_file_pread(ff->inner, buf, len, offset, &got, err) != 0)
        return -1;
    *xfer = buffered ? keel_faulty__overlay(ffs->ctl, match_file, ff, buf, offset, len, got)
                     : got;
    return 0;
}

/* A request without a fault while writes are buffered. */
static int ffs_run_buffered(struct faulty_fs *ffs, struct faulty_file *ff, struct keel_ioreq *req,
                            size_t *xfer, struct keel_error *err)
{
    struct keel_fault_pending now = { .op = req->op, .offset = req->offset, .file = ff,
                                      .len = req->op == KEEL_IO_TRUNCATE ? 0 : req->len,
                                      .buf = req->buf };

    switch (req->op) {
    case KEEL_IO_READ:
        return ff_read(ffs, ff, true, req->buf, req->len, req->offset, xfer, err);
    case KEEL_IO_WRITE:
    case KEEL_IO_WRITE_ZEROES:
    case KEEL_IO_DISCARD:
    case KEEL_IO_TRUNCATE:
        *xfer = req->op == KEEL_IO_WRITE ? req->len : 0;
        /* KEEL_O_SYNC: durable on return (fs.h), so never buffered. */
        if (ff->flags & KEEL_O_SYNC)
            return ff_apply(ffs, &now, 0, now.len, err);
        if (keel_faulty__pending_add(ffs->ctl, req->op, req->offset, req->len, req->buf,
                                     ff) == NULL)
            return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory",
                                  keel_faulty__name(ffs->ctl));
        ff->npending++;
        return 0;
    case KEEL_IO_FLUSH:
        if (keel_faulty__flush(ffs->ctl, match_file, ff, err) != 0)
            return -1;
        return keel_file_fsync(ff->inner, err);
    default:
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: %s is not a file operation",
                              keel_faulty__name(ffs->ctl), keel_io_op_name(req->op));
    }
}

/* The worker: every request the wrapper answers itself. */
static void ffs_run(void *be, struct keel_ioreq *req)
{
    struct faulty_fs *ffs = be;
    struct keel_fault_tag t = *keel_faulty__tag(req);
    struct faulty_file *ff = t.file;
    struct keel_error e = KEEL_ERROR_INIT;
    struct keel_fault_pending last;
    size_t xfer = 0;
    int rc = -1;

    if (req->op == KEEL_IO_FS_OP) {
        rc = run_call(ffs, (struct keel_fs_call *)req->priv.fsarg, &t, &e);
        keel_faulty__complete(req, rc, 0, &e);
        return;
    }
    switch (t.act) {
    case KEEL_FA_PASS:
        rc = ffs_run_buffered(ffs, ff, req, &xfer, &e);
        break;
    case KEEL_FA_SHORT:
        /* Half of what was asked, and no error: the caller must look at xfer. */
        rc = ff_read(ffs, ff, t.buffered, req->buf, req->len / 2, req->offset, &xfer, &e);
        break;
    case KEEL_FA_CRASH:
        last = (struct keel_fault_pending){ .op = req->op, .offset = req->offset, .file = ff,
                                            .len = req->op == KEEL_IO_TRUNCATE ? 0 : req->len,
                                            .buf = req->buf };
        keel_faulty__crash(ffs->ctl, &last, t.buffered);
        keel_faulty__fail(ffs->ctl, &t, &e);
        break;
    default:
        keel_faulty__fail(ffs->ctl, &t, &e);
        break;
    }
    keel_faulty__complete(req, rc, xfer, &e);
}

static int ffs_submit(void *be, void *file, struct keel_ioreq *req, struct keel_error *err)
{
    struct faulty_fs *ffs = be;
    struct faulty_file *ff = file;
    struct keel_fault_tag t;

    keel_faulty__decide(ffs->ctl, req->op, fs_op_writes(req->op), &t);
    t.file = ff;
    if (t.act == KEEL_FA_PASS && !t.buffered)
        return keel_file_submit(ff->inner, req, err);
    keel_faulty__push(ffs->ctl, req, &t);
    return 0;
}

static void ffs_close(void *be)
{
    struct faulty_fs *ffs = be;

    if (ffs == NULL)
        return;
    /* Applies what is still buffered, which closes the files kept open for it. */
    keel_faulty__stop(ffs->ctl);
    keel_fs_close(ffs->inner);
    keel_faulty__free(ffs->ctl);
    free(ffs);
}

static void ffs_set_fence(void *be, struct keel_fence *f)
{
    struct faulty_fs *ffs = be;

    keel_fs_set_fence(ffs->inner, f);
}

static const struct keel_fs_ops ffs_ops = {
    .call = ffs_call,
    .submit = ffs_submit,
    .close = ffs_close,
    .set_fence = ffs_set_fence,
};

int keel_faulty_fs(struct keel_fs *inner, const struct keel_fault_plan *plan,
                   struct keel_fs **ret, struct keel_faulty **ctl, struct keel_error *err)
{
    char name[KEEL_URL_MAX];
    struct faulty_fs *ffs;
    struct keel_fs *fs;

    snprintf(name, sizeof(name), "faulty:%s", keel_fs_name(inner));
    if (keel_faulty__check_plan(name, plan, err) != 0) {
        keel_fs_close(inner);
        return -1;
    }
    ffs = calloc(1, sizeof(*ffs));
    if (ffs == NULL) {
        keel_fs_close(inner);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", name);
    }
    ffs->inner = inner;
    ffs->ctl = keel_faulty__new(name, &ff_backend, ffs, PIECE, plan, ffs_run);
    if (ffs->ctl == NULL) {
        ffs_close(ffs);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", name);
    }
    /* On failure keel_fs_new() closes ffs, and so inner. */
    if (keel_fs_new(name, &ffs_ops, ffs, &fs, err) != 0)
        return -1;
    if (ctl != NULL)
        *ctl = ffs->ctl;
    *ret = fs;
    return 0;
}
