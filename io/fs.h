/*
 * struct keel_fs: a file system reached through io/ -- an NFSv3 export
 * (nfs://host/export[/dir]) through libnfs, or a local directory
 * (file:///dir).  struct keel_file: a file open on it.
 *
 * Paths are relative to the root the URL names ("dom_md/metadata") and are
 * checked by keel_path_check(): no "..", no absolute paths; "." alone
 * names the root itself (to list or stat it).
 *
 * Durability: a call that changes the namespace (mkdir, rename, unlink,
 * rmdir, create) is durable when it returns.  Writes to a file opened with
 * KEEL_O_SYNC are durable when they return (NFS FILE_SYNC, O_DSYNC
 * locally); other writes are durable after keel_file_fsync().
 *
 * Sessions: an NFS file system reconnects by itself when the server goes
 * away (see engine.h); open files are opened again by path on the new
 * session.  A call retried after a lost session that finds its work already
 * done (mkdir: exists, unlink/rmdir/rename: source gone) reports success.
 *
 * Threads: any function may be called from any thread.  A file must not be
 * used after keel_file_close(), nor a file system after keel_fs_close().
 */
#ifndef KEEL_IO_FS_H
#define KEEL_IO_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/ioreq.h"
#include "io/opts.h"

struct keel_fs;
struct keel_file;

enum keel_open_flags {
    KEEL_O_RDONLY = 0,
    KEEL_O_RDWR = 1 << 0,
    KEEL_O_CREAT = 1 << 1,  /* create if missing (mode applies) */
    KEEL_O_EXCL = 1 << 2,   /* with CREAT: fail if it exists */
    KEEL_O_TRUNC = 1 << 3,
    KEEL_O_SYNC = 1 << 4,   /* every write is durable when it returns */
};

struct keel_stat {
    uint64_t size;
    uint64_t allocated;  /* bytes the storage really uses */
    uint32_t mode;       /* permission bits */
    bool is_dir;
    bool is_reg;
    uint64_t ino;
    uint64_t mtime_ns;   /* server time; display only, never compared */
};

struct keel_statvfs {
    uint64_t block_size;
    uint64_t total;      /* bytes */
    uint64_t free;
    uint64_t avail;      /* free for unprivileged users */
};

/* Names of a directory, without "." and "..", sorted. */
struct keel_dirlist {
    size_t n;
    char **names;
};

/*
 * Open a file system.  For NFS the export is mounted before this returns:
 * a server that does not answer, or an export that does not exist, fails
 * here.  opts may be NULL.  Free with keel_fs_close().
 */
int keel_fs_open(const char *url, const struct keel_io_opts *opts, struct keel_fs **ret,
                 struct keel_error *err);

/* Close; every file of fs must be closed first. NULL is accepted. */
void keel_fs_close(struct keel_fs *fs);

/*
 * Gate every change through fs -- data writes, truncates, and namespace
 * changes (mkdir, rmdir, unlink, rename, link, open with create or
 * truncate) -- with a lease's fence (io/fence.h); NULL removes it.  f must
 * outlive fs, or be removed first.
 */
struct keel_fence;
void keel_fs_set_fence(struct keel_fs *fs, struct keel_fence *f);

/* The URL with any secret redacted; borrowed. */
const char *keel_fs_name(const struct keel_fs *fs);

int keel_fs_stat(struct keel_fs *fs, const char *path, struct keel_stat *ret,
                 struct keel_error *err);
/* True/false in *ret; errors other than "not found" fail. */
int keel_fs_exists(struct keel_fs *fs, const char *path, bool *ret, struct keel_error *err);
int keel_fs_mkdir(struct keel_fs *fs, const char *path, uint32_t mode, struct keel_error *err);
/* mkdir -p: every missing component of path. */
int keel_fs_mkdirs(struct keel_fs *fs, const char *path, uint32_t mode, struct keel_error *err);
int keel_fs_rmdir(struct keel_fs *fs, const char *path, struct keel_error *err);
int keel_fs_unlink(struct keel_fs *fs, const char *path, struct keel_error *err);
/* Atomic replace of to, as rename(2). */
int keel_fs_rename(struct keel_fs *fs, const char *from, const char *to, struct keel_error *err);
/* A hard link `to` of the file `from` (oVirt links template volumes into images). */
int keel_fs_link(struct keel_fs *fs, const char *from, const char *to, struct keel_error *err);
/* Fills *ret (free with keel_dirlist_release()). */
int keel_fs_readdir(struct keel_fs *fs, const char *path, struct keel_dirlist *ret,
                    struct keel_error *err);
void keel_dirlist_release(struct keel_dirlist *l);
int keel_fs_statvfs(struct keel_fs *fs, struct keel_statvfs *ret, struct keel_error *err);

/*
 * Open a file.  flags are keel_open_flags; mode applies when it is created
 * (exactly: the umask does not apply), and with KEEL_O_TRUNC.
 * Free with keel_file_close().
 */
int keel_file_open(struct keel_fs *fs, const char *path, unsigned flags, uint32_t mode,
                   struct keel_file **ret, struct keel_error *err);
/* Close the file (after waiting for its requests). NULL is accepted. */
int keel_file_close(struct keel_file *f, struct keel_error *err);
const char *keel_file_path(const struct keel_file *f);
struct keel_fs *keel_file_fs(const struct keel_file *f);

/*
 * Asynchronous READ, WRITE, FLUSH (fsync) and TRUNCATE (to req->offset)
 * of a file, as in ioreq.h.  Any offset and length: files need no alignment.
 * A READ past the end of the file is short: req->xfer tells how much.
 */
int keel_file_submit(struct keel_file *f, struct keel_ioreq *req, struct keel_error *err);

/* Read up to len bytes; *nread (may be NULL) gets the count.  With nread
 * NULL a short read is an error (KEEL_E_SHORT). */
int keel_file_pread(struct keel_file *f, void *buf, size_t len, uint64_t offset, size_t *nread,
                    struct keel_error *err);
int keel_file_pwrite(struct keel_file *f, const void *buf, size_t len, uint64_t offset,
                     struct keel_error *err);
int keel_file_fsync(struct keel_file *f, struct keel_error *err);
int keel_file_truncate(struct keel_file *f, uint64_t size, struct keel_error *err);
int keel_file_fstat(struct keel_file *f, struct keel_stat *ret, struct keel_error *err);

/*
 * Read a whole small file (at most max bytes) into a malloc'ed buffer with
 * a NUL after the data; the caller frees *ret.  For metadata files.
 */
int keel_fs_read_file(struct keel_fs *fs, const char *path, size_t max, char **ret,
                      size_t *len, struct keel_error *err);

/*
 * Replace a small file atomically and durably: write path + ".new" (synced),
 * then rename it over path.  For metadata files.
 */
int keel_fs_write_file_atomic(struct keel_fs *fs, const char *path, const void *data,
                              size_t len, uint32_t mode, struct keel_error *err);

#endif /* KEEL_IO_FS_H */
