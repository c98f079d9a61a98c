/*
 * The file-system interface on top of a backend (nfs.c, posixfs.c); see
 * fs.h.  Paths are checked here once, so backends see only clean relative
 * paths.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "io/fence.h"
#include "io/fs-priv.h"
#include "io/iosync.h"

struct keel_fs {
    char name[KEEL_URL_MAX];
    const struct keel_fs_ops *ops;
    void *be;
    struct keel_fence *fence; /* atomic pointer */
};

struct keel_file {
    struct keel_fs *fs;
    void *bfile;
    char path[KEEL_URL_PATH_MAX];
};

const char *keel_fs_call_name(enum keel_fs_opcode op)
{
    switch (op) {
    case KEEL_FSOP_STAT: return "stat";
    case KEEL_FSOP_MKDIR: return "mkdir";
    case KEEL_FSOP_RMDIR: return "rmdir";
    case KEEL_FSOP_UNLINK: return "unlink";
    case KEEL_FSOP_RENAME: return "rename";
    case KEEL_FSOP_LINK: return "link";
    case KEEL_FSOP_READDIR: return "readdir";
    case KEEL_FSOP_STATVFS: return "statvfs";
    case KEEL_FSOP_OPEN: return "open";
    case KEEL_FSOP_CLOSE: return "close";
    case KEEL_FSOP_FSTAT: return "fstat";
    }
    return "?";
}

int keel_fs_new(const char *name, const struct keel_fs_ops *ops, void *be, struct keel_fs **ret,
                struct keel_error *err)
{
    struct keel_fs *fs = calloc(1, sizeof(*fs));

    if (fs == NULL) {
        ops->close(be);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", name);
    }
    keel_strlcpy(fs->name, name, sizeof(fs->name));
    fs->ops = ops;
    fs->be = be;
    *ret = fs;
    return 0;
}

int keel_fs_open(const char *url, const struct keel_io_opts *opts, struct keel_fs **ret,
                 struct keel_error *err)
{
    struct keel_url u;

    if (keel_url_parse(url, &u, err) != 0)
        return -1;
    switch (u.scheme) {
    case KEEL_URL_NFS:
        return keel_nfs_fs_open(&u, opts, ret, err);
    case KEEL_URL_FILE:
        return keel_posix_fs_open(&u, opts, ret, err);
    case KEEL_URL_ISCSI:
        break;
    }
    {
        char red[KEEL_URL_MAX];

        return keel_error_set(err, KEEL_E_URL, EINVAL,
                              "%s: an iSCSI LUN is a block device, not a file system",
                              keel_url_format(&u, true, red, sizeof(red)));
    }
}

void keel_fs_close(struct keel_fs *fs)
{
    if (fs == NULL)
        return;
    fs->ops->close(fs->be);
    free(fs);
}

const char *keel_fs_name(const struct keel_fs *fs)
{
    return fs->name;
}

static int check_path(struct keel_fs *fs, const char *path, struct keel_error *err)
{
    if (keel_path_check(path, err) != 0)
        return keel_error_prefix(err, "%s", fs->name);
    return 0;
}

static bool call_changes(const struct keel_fs_call *c)
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

static int fs_call(struct keel_fs *fs, struct keel_fs_call *c, struct keel_error *err)
{
    struct keel_fence *f = __atomic_load_n(&fs->fence, __ATOMIC_ACQUIRE);

    if (c->path != NULL && check_path(fs, c->path, err) != 0)
        return -1;
    if (c->path2 != NULL && check_path(fs, c->path2, err) != 0)
        return -1;
    /* The engine fails namespace calls in flight when the fence expires. */
    if (f != NULL && call_changes(c) && keel_fence_check(f, err) != 0)
        return keel_error_prefix(err, "%s: %s '%s'", fs->name, keel_fs_call_name(c->op),
                                 c->path);
    return fs->ops->call(fs->be, c, err);
}

void keel_fs_set_fence(struct keel_fs *fs, struct keel_fence *f)
{
    __atomic_store_n(&fs->fence, f, __ATOMIC_RELEASE);
    if (fs->ops->set_fence != NULL)
        fs->ops->set_fence(fs->be, f);
}

int keel_fs_stat(struct keel_fs *fs, const char *path, struct keel_stat *ret,
                 struct keel_error *err)
{
    struct keel_fs_call c = { .op = KEEL_FSOP_STAT, .path = path };

    if (fs_call(fs, &c, err) != 0)
        return -1;
    *ret = c.st;
    return 0;
}

int keel_fs_exists(struct keel_fs *fs, const char *path, bool *ret, struct keel_error *err)
{
    struct keel_error e = KEEL_ERROR_INIT;
    struct keel_stat st;

    if (keel_fs_stat(fs, path, &st, &e) == 0) {
        *ret = true;
        return 0;
    }
    /* A path through a file ("file/x") does not exist either. */
    if (e.code == KEEL_E_NOENT || e.sys_errno == ENOTDIR) {
        *ret = false;
        return 0;
    }
    return keel_error_copy(err, &e);
}

int keel_fs_mkdir(struct keel_fs *fs, const char *path, uint32_t mode, struct keel_error *err)
{
    struct keel_fs_call c = { .op = KEEL_FSOP_MKDIR, .path = path, .mode = mode };

    return fs_call(fs, &c, err);
}

int keel_fs_mkdirs(struct keel_fs *fs, const char *path, uint32_t mode, struct keel_error *err)
{
    char buf[KEEL_URL_PATH_MAX];

    if (check_path(fs, path, err) != 0)
        return -1;
    keel_strlcpy(buf, path, sizeof(buf));
    for (char *p = buf;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            struct keel_error e = KEEL_ERROR_INIT;
            struct keel_stat st;

            *p = '\0';
            if (keel_fs_mkdir(fs, buf, mode, &e) != 0) {
                if (e.code != KEEL_E_EXIST)
                    return keel_error_copy(err, &e);
                if (keel_fs_stat(fs, buf, &st, err) != 0)
                    return -1;
                if (!st.is_dir)
                    return keel_error_set(err, KEEL_E_EXIST, ENOTDIR,
                                          "%s: mkdir '%s': exists and is not a directory",
                                          fs->name, buf);
            }
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    return 0;
}

int keel_fs_rmdir(struct keel_fs *fs, const char *path, struct keel_error *err)
{
    struct keel_fs_call c = { .op = KEEL_FSOP_RMDIR, .path = path };

    return fs_call(fs, &c, err);
}

int keel_fs_unlink(struct keel_fs *fs, const char *path, struct keel_error *err)
{
    struct keel_fs_call c = { .op = KEEL_FSOP_UNLINK, .path = path };

    return fs_call(fs, &c, err);
}

int keel_fs_rename(struct keel_fs *fs, const char *from, const char *to, struct keel_error *err)
{
    struct keel_fs_call c = { .op = KEEL_FSOP_RENAME, .path = from, .path2 = to };

    return fs_call(fs, &c, err);
}

int keel_fs_link(struct keel_fs *fs, const char *from, const char *to, struct keel_error *err)
{
    struct keel_fs_call c = { .op = KEEL_FSOP_LINK, .path = from, .path2 = to };

    return fs_call(fs, &c, err);
}

int keel_fs_readdir(struct keel_fs *fs, const char *path, struct keel_dirlist *ret,
                    struct keel_error *err)
{
    struct keel_fs_call c = { .op = KEEL_FSOP_READDIR, .path = path };

    if (fs_call(fs, &c, err) != 0) {
        keel_dirlist_release(&c.list);
        return -1;
    }
    keel_dirlist_sort(&c.list);
    *ret = c.list;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void keel_dirlist_sort(struct keel_dirlist *l)
{
    if (l->n > 1)
        qsort(l->names, l->n, sizeof(l->names[0]), cmp_names);
}

int keel_dirlist_add(struct keel_dirlist *l, const char *name)
{
    char **nn;

    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    nn = realloc(l->names, (l->n + 1) * sizeof(*nn));
    if (nn == NULL)
        return -1;
    l->names = nn;
    l->names[l->n] = strdup(name);
    if (l->names[l->n] == NULL)
        return -1;
    l->n++;
    return 0;
}

void keel_dirlist_release(struct keel_dirlist *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    l->names = NULL;
    l->n = 0;
}

int keel_fs_statvfs(struct keel_fs *fs, struct keel_statvfs *ret, struct keel_error *err)
{
    struct keel_fs_call c = { .op = KEEL_FSOP_STATVFS };

    if (fs_call(fs, &c, err) != 0)
        return -1;
    *ret = c.vfs;
    return 0;
}

int keel_file_open(struct keel_fs *fs, const char *path, unsigned flags, uint32_t mode,
                   struct keel_file **ret, struct keel_error *err)
{
    struct keel_fs_call c = { .op = KEEL_FSOP_OPEN, .path = path, .flags = flags, .mode = mode };
    struct keel_file *f;

    if (fs_call(fs, &c, err) != 0)
        return -1;
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        struct keel_fs_call cc = { .op = KEEL_FSOP_CLOSE, .file = c.file };

        fs->ops->call(fs->be, &cc, NULL);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", fs->name);
    }
    f->fs = fs;
    f->bfile = c.file;
    keel_strlcpy(f->path, path, sizeof(f->path));
    *ret = f;
    return 0;
}

int keel_file_close(struct keel_file *f, struct keel_error *err)
{
    struct keel_fs_call c = { .op = KEEL_FSOP_CLOSE };
    int rc;

    if (f == NULL)
        return 0;
    c.file = f->bfile;
    rc = f->fs->ops->call(f->fs->be, &c, err);
    free(f);
    return rc;
}

const char *keel_file_path(const struct keel_file *f)
{
    return f->path;
}

struct keel_fs *keel_file_fs(const struct keel_file *f)
{
    return f->fs;
}

int keel_file_submit(struct keel_file *f, struct keel_ioreq *req, struct keel_error *err)
{
    switch (req->op) {
    case KEEL_IO_READ:
    case KEEL_IO_WRITE:
        if (req->buf == NULL && req->len > 0)
            return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: %s '%s' without a buffer",
                                  f->fs->name, keel_io_op_name(req->op), f->path);
        break;
    case KEEL_IO_FLUSH:
    case KEEL_IO_TRUNCATE:
    case KEEL_IO_DISCARD:
    case KEEL_IO_WRITE_ZEROES:
        break;
    default:
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: %s is not a file operation",
                              f->fs->name, keel_io_op_name(req->op));
    }
    return f->fs->ops->submit(f->fs->be, f->bfile, req, err);
}

static int file_sync_op(struct keel_file *f, enum keel_io_op op, void *buf, size_t len,
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

int keel_file_pread(struct keel_file *f, void *buf, size_t len, uint64_t offset, size_t *nread,
                    struct keel_error *err)
{
    size_t got = 0;

    if (file_sync_op(f, KEEL_IO_READ, buf, len, offset, &got, err) != 0)
        return -1;
    if (nread != NULL) {
        *nread = got;
        return 0;
    }
    if (got != len)
        return keel_error_set(err, KEEL_E_SHORT, 0,
                              "%s: read '%s': %zu of %zu bytes at offset %llu: file too short",
                              f->fs->name, f->path, got, len, (unsigned long long)offset);
    return 0;
}

int keel_file_pwrite(struct keel_file *f, const void *buf, size_t len, uint64_t offset,
                     struct keel_error *err)
{
    return file_sync_op(f, KEEL_IO_WRITE, (void *)buf, len, offset, NULL, err);
}

int keel_file_fsync(struct keel_file *f, struct keel_error *err)
{
    return file_sync_op(f, KEEL_IO_FLUSH, NULL, 0, 0, NULL, err);
}

int keel_file_truncate(struct keel_file *f, uint64_t size, struct keel_error *err)
{
    return file_sync_op(f, KEEL_IO_TRUNCATE, NULL, 0, size, NULL, err);
}

int keel_file_fstat(struct keel_file *f, struct keel_stat *ret, struct keel_error *err)
{
    struct keel_fs_call c = { .op = KEEL_FSOP_FSTAT, .file = f->bfile };

    if (f->fs->ops->call(f->fs->be, &c, err) != 0)
        return -1;
    *ret = c.st;
    return 0;
}

int keel_fs_read_file(struct keel_fs *fs, const char *path, size_t max, char **ret,
                      size_t *len, struct keel_error *err)
{
    struct keel_file *f = NULL;
    struct keel_stat st;
    _cleanup_free_ char *buf = NULL;
    size_t got = 0;
    int rc = -1;

    if (keel_file_open(fs, path, KEEL_O_RDONLY, 0, &f, err) != 0)
        return -1;
    if (keel_file_fstat(f, &st, err) != 0)
        goto out;
    if (st.size > max) {
        keel_error_set(err, KEEL_E_RANGE, EFBIG, "%s: '%s': %llu bytes, more than the %zu allowed",
                       fs->name, path, (unsigned long long)st.size, max);
        goto out;
    }
    buf = malloc((size_t)st.size + 1);
    if (buf == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", fs->name);
        goto out;
    }
    if (st.size > 0 && keel_file_pread(f, buf, (size_t)st.size, 0, &got, err) != 0)
        goto out;
    buf[got] = '\0';
    *ret = TAKE_PTR(buf);
    if (len != NULL)
        *len = got;
    rc = 0;
out:
    keel_file_close(f, NULL);
    return rc;
}

int keel_fs_write_file_atomic(struct keel_fs *fs, const char *path, const void *data,
                              size_t len, uint32_t mode, struct keel_error *err)
{
    char tmp[KEEL_URL_PATH_MAX];
    struct keel_file *f = NULL;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp))
        return keel_error_set(err, KEEL_E_INVAL, ENAMETOOLONG, "%s: '%s': path too long",
                              fs->name, path);
    if (keel_file_open(fs, tmp, KEEL_O_RDWR | KEEL_O_CREAT | KEEL_O_TRUNC | KEEL_O_SYNC, mode, &f,
                       err) != 0)
        return -1;
    if ((len > 0 && keel_file_pwrite(f, data, len, 0, err) != 0) || keel_file_fsync(f, err) != 0) {
        keel_file_close(f, NULL);
        return -1;
    }
    if (keel_file_close(f, err) != 0)
        return -1;
    return keel_fs_rename(fs, tmp, path, err);
}
