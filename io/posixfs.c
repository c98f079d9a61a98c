/*
 * file:// file systems: a local directory (a POSIX storage domain's mount
 * point, or any directory).  Namespace calls are system calls relative to a
 * descriptor of the root (openat, mkdirat, renameat...), made durable by
 * syncing the parent directory.  File data requests run on worker threads
 * through an engine, like the POSIX block device.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "io/engine.h"
#include "io/fs-priv.h"
#include "io/posixio.h"
#include "io/workers.h"

struct posixfs {
    char name[KEEL_URL_MAX];
    int rootfd;
    struct keel_engine *eng;
    struct keel_workers *workers;
};

struct posixfile {
    struct keel_posix_target t; /* owner of the file's requests */
};

static int pf_connect(void *be, struct keel_error *err)
{
    struct posixfs *pf = be;

    (void)err;
    return keel_posix_connect(pf->eng);
}

static int pf_start(void *be, struct keel_ioreq *req, struct keel_error *err)
{
    struct posixfs *pf = be;

    (void)err;
    keel_workers_push(pf->workers, req);
    return 0;
}

static const struct keel_engine_ops pf_engine_ops = {
    .connect = pf_connect,
    .start = pf_start,
};

static void pf_run(void *be, struct keel_ioreq *req)
{
    struct posixfs *pf = be;

    keel_posix_run(pf->eng, req);
}

static int fail(struct posixfs *pf, struct keel_fs_call *c, int en, struct keel_error *err)
{
    if (c->op == KEEL_FSOP_RENAME || c->op == KEEL_FSOP_LINK)
        return keel_error_errno(err, keel_errc_from_errno(en), en, "%s: %s '%s' to '%s'",
                                pf->name, keel_fs_call_name(c->op), c->path, c->path2);
    if (c->path == NULL)
        return keel_error_errno(err, keel_errc_from_errno(en), en, "%s: %s", pf->name,
                                keel_fs_call_name(c->op));
    return keel_error_errno(err, keel_errc_from_errno(en), en, "%s: %s '%s'", pf->name,
                            keel_fs_call_name(c->op), c->path);
}

/* fsync the directory that holds path, so that a namespace change is durable. */
static int sync_parent(struct posixfs *pf, const char *path)
{
    char buf[KEEL_URL_PATH_MAX];
    char *slash;
    int fd, r;

    keel_strlcpy(buf, path, sizeof(buf));
    slash = strrchr(buf, '/');
    if (slash == NULL) {
        fd = openat(pf->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        *slash = '\0';
        fd = openat(pf->rootfd, buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (fd < 0)
        return -1;
    r = fsync(fd);
    close(fd);
    return r;
}

static void fill_stat(struct keel_stat *ks, const struct stat *st)
{
    memset(ks, 0, sizeof(*ks));
    ks->size = (uint64_t)st->st_size;
    ks->allocated = (uint64_t)st->st_blocks * 512;
    ks->mode = st->st_mode & 07777;
    ks->is_dir = S_ISDIR(st->st_mode);
    ks->is_reg = S_ISREG(st->st_mode);
    ks->ino = (uint64_t)st->st_ino;
    ks->mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
}

static int pf_readdir(struct posixfs *pf, struct keel_fs_call *c, struct keel_error *err)
{
    int fd = openat(pf->rootfd, c->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d;
    struct dirent *de;

    if (fd < 0)
        return fail(pf, c, errno, err);
    d = fdopendir(fd);
    if (d == NULL) {
        int en = errno;

        close(fd);
        return fail(pf, c, en, err);
    }
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (keel_dirlist_add(&c->list, de->d_name) != 0) {
            closedir(d);
            return fail(pf, c, ENOMEM, err);
        }
    }
    closedir(d);
    return 0;
}

static int pf_open(struct posixfs *pf, struct keel_fs_call *c, struct keel_error *err)
{
    int flags = O_CLOEXEC | ((c->flags & KEEL_O_RDWR) ? O_RDWR : O_RDONLY);
    struct posixfile *f;
    struct stat st;
    int fd;

    if (c->flags & KEEL_O_CREAT)
        flags |= O_CREAT;
    if (c->flags & KEEL_O_EXCL)
        flags |= O_EXCL;
    if (c->flags & KEEL_O_TRUNC)
        flags |= O_TRUNC;
    if (c->flags & KEEL_O_SYNC)
        flags |= O_DSYNC;
    fd = openat(pf->rootfd, c->path, flags, (mode_t)(c->mode ? c->mode : 0644));
    if (fd < 0)
        return fail(pf, c, errno, err);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int en = S_ISDIR(st.st_mode) ? EISDIR : errno ? errno : EINVAL;

        close(fd);
        return fail(pf, c, en, err);
    }
    /* A file this call created (or rewrites from empty) gets exactly its mode,
     * not the umask's. */
    if ((c->flags & KEEL_O_CREAT) && (c->flags & (KEEL_O_EXCL | KEEL_O_TRUNC)) && c->mode != 0 &&
        fchmod(fd, (mode_t)c->mode) != 0) {
        int en = errno;

        close(fd);
        return fail(pf, c, en, err);
    }
    if ((c->flags & KEEL_O_CREAT) && sync_parent(pf, c->path) != 0) {
        int en = errno;

        close(fd);
        return fail(pf, c, en, err);
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        close(fd);
        return fail(pf, c, ENOMEM, err);
    }
    f->t.fd = fd;
    fill_stat(&c->st, &st);
    c->file = f;
    return 0;
}

static int pf_call(void *be, struct keel_fs_call *c, struct keel_error *err)
{
    struct posixfs *pf = be;
    struct posixfile *f = c->file;
    struct stat st;
    struct statvfs sv;

    switch (c->op) {
    case KEEL_FSOP_STAT:
        if (fstatat(pf->rootfd, c->path, &st, 0) != 0)
            return fail(pf, c, errno, err);
        fill_stat(&c->st, &st);
        return 0;
    case KEEL_FSOP_MKDIR:
        /* The mode asked for, not the umask's: oVirt's trees have exact modes. */
        if (mkdirat(pf->rootfd, c->path, (mode_t)(c->mode ? c->mode : 0755)) != 0 ||
            fchmodat(pf->rootfd, c->path, (mode_t)(c->mode ? c->mode : 0755), 0) != 0 ||
            sync_parent(pf, c->path) != 0)
            return fail(pf, c, errno, err);
        return 0;
    case KEEL_FSOP_RMDIR:
        if (unlinkat(pf->rootfd, c->path, AT_REMOVEDIR) != 0 || sync_parent(pf, c->path) != 0)
            return fail(pf, c, errno, err);
        return 0;
    case KEEL_FSOP_UNLINK:
        if (unlinkat(pf->rootfd, c->path, 0) != 0 || sync_parent(pf, c->path) != 0)
            return fail(pf, c, errno, err);
        return 0;
    case KEEL_FSOP_RENAME:
        if (renameat(pf->rootfd, c->path, pf->rootfd, c->path2) != 0 ||
            sync_parent(pf, c->path2) != 0 || sync_parent(pf, c->path) != 0)
            return fail(pf, c, errno, err);
        return 0;
    case KEEL_FSOP_LINK:
        if (linkat(pf->rootfd, c->path, pf->rootfd, c->path2, 0) != 0 ||
            sync_parent(pf, c->path2) != 0)
            return fail(pf, c, errno, err);
        return 0;
    case KEEL_FSOP_READDIR:
        return pf_readdir(pf, c, err);
    case KEEL_FSOP_STATVFS:
        if (fstatvfs(pf->rootfd, &sv) != 0)
            return fail(pf, c, errno, err);
        c->vfs.block_size = sv.f_frsize;
        c->vfs.total = (uint64_t)sv.f_blocks * sv.f_frsize;
        c->vfs.free = (uint64_t)sv.f_bfree * sv.f_frsize;
        c->vfs.avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        return 0;
    case KEEL_FSOP_OPEN:
        return pf_open(pf, c, err);
    case KEEL_FSOP_CLOSE:
        if (f == NULL)
            return 0;
        /* The file's requests are done: fs.h forbids closing with I/O pending. */
        close(f->t.fd);
        free(f);
        return 0;
    case KEEL_FSOP_FSTAT:
        if (fstat(f->t.fd, &st) != 0)
            return fail(pf, c, errno, err);
        fill_stat(&c->st, &st);
        return 0;
    }
    return fail(pf, c, EINVAL, err);
}

static int pf_submit(void *be, void *file, struct keel_ioreq *req, struct keel_error *err)
{
    struct posixfs *pf = be;

    return keel_engine_submit(pf->eng, req, file, err);
}

static void pf_close(void *be)
{
    struct posixfs *pf = be;

    if (pf == NULL)
        return;
    keel_engine_free(pf->eng);
    keel_workers_free(pf->workers);
    if (pf->rootfd >= 0)
        close(pf->rootfd);
    free(pf);
}

static void pf_set_fence(void *be, struct keel_fence *f)
{
    struct posixfs *x = be;

    keel_engine_set_fence(x->eng, f);
}

static const struct keel_fs_ops pf_ops = {
    .call = pf_call,
    .submit = pf_submit,
    .close = pf_close,
    .set_fence = pf_set_fence,
};

int keel_posix_fs_open(const struct keel_url *url, const struct keel_io_opts *opts,
                       struct keel_fs **ret, struct keel_error *err)
{
    struct posixfs *pf = calloc(1, sizeof(*pf));
    struct keel_io_opts o;

    if (pf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    keel_url_format(url, true, pf->name, sizeof(pf->name));
    if (opts != NULL)
        o = *opts;
    else
        keel_io_opts_init(&o);
    pf->rootfd = open(url->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pf->rootfd < 0) {
        int en = errno;

        keel_error_errno(err, keel_errc_from_errno(en), en, "%s: cannot open the directory",
                         pf->name);
        pf_close(pf);
        return -1;
    }
    pf->workers = keel_workers_new(o.workers ? o.workers : KEEL_IO_DEFAULT_WORKERS, pf_run, pf);
    pf->eng = keel_engine_new(pf->name, &pf_engine_ops, pf, &o);
    if (pf->workers == NULL || pf->eng == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", pf->name);
        pf_close(pf);
        return -1;
    }
    if (keel_engine_start(pf->eng, err) != 0) {
        pf_close(pf);
        return -1;
    }
    return keel_fs_new(pf->name, &pf_ops, pf, ret, err);
}
