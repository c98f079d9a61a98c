/*
 * What a file-system backend provides to fs.c.  Internal to io/.
 *
 * Namespace calls are described by struct keel_fs_call and run
 * synchronously; data requests on files go through the backend's engine.
 */
#ifndef KEEL_IO_FS_PRIV_H
#define KEEL_IO_FS_PRIV_H

#include "io/fs.h"
#include "io/url.h"

enum keel_fs_opcode {
    KEEL_FSOP_STAT,
    KEEL_FSOP_MKDIR,
    KEEL_FSOP_RMDIR,
    KEEL_FSOP_UNLINK,
    KEEL_FSOP_RENAME,
    KEEL_FSOP_READDIR,
    KEEL_FSOP_STATVFS,
    KEEL_FSOP_OPEN,
    KEEL_FSOP_CLOSE,
    KEEL_FSOP_FSTAT,
    KEEL_FSOP_LINK,
};

struct keel_fs_call {
    enum keel_fs_opcode op;
    const char *path;       /* relative, checked */
    const char *path2;      /* rename and link target */
    unsigned flags;         /* keel_open_flags */
    uint32_t mode;
    void *file;             /* OPEN: out; CLOSE, FSTAT: in (backend file) */
    struct keel_stat st;    /* STAT, FSTAT, OPEN (size at open) */
    struct keel_statvfs vfs;
    struct keel_dirlist list;
};

struct keel_fs_ops {
    int (*call)(void *be, struct keel_fs_call *c, struct keel_error *err);
    /* Queue a data request on a backend file. */
    int (*submit)(void *be, void *file, struct keel_ioreq *req, struct keel_error *err);
    void (*close)(void *be);
    /* Gate the connection's writes (fence.h); NULL removes the fence. */
    void (*set_fence)(void *be, struct keel_fence *f);
};

int keel_fs_new(const char *name, const struct keel_fs_ops *ops, void *be, struct keel_fs **ret,
                struct keel_error *err);

const char *keel_fs_call_name(enum keel_fs_opcode op);

int keel_nfs_fs_open(const struct keel_url *url, const struct keel_io_opts *opts,
                     struct keel_fs **ret, struct keel_error *err);
int keel_posix_fs_open(const struct keel_url *url, const struct keel_io_opts *opts,
                       struct keel_fs **ret, struct keel_error *err);

/* Sort and de-duplicate helper for READDIR results. */
void keel_dirlist_sort(struct keel_dirlist *l);
int keel_dirlist_add(struct keel_dirlist *l, const char *name);

#endif /* KEEL_IO_FS_PRIV_H */
