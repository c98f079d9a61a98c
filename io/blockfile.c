/*
 * A block device view of a file on a keel_fs: lease areas and volumes on
 * file storage domains are files, and the code that reads them (sanlock
 * records, qcow2) wants a disk.  Also what keel_blockdev_open() gives for an
 * nfs:// URL: the export holding the file is mounted for the device alone.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "io/blockdev-priv.h"
#include "io/fs.h"

struct blockfile {
    struct keel_file *file;
    struct keel_fs *own_fs;   /* set when the device opened the file system itself */
};

static int bf_submit(void *be, struct keel_ioreq *req, struct keel_error *err)
{
    struct blockfile *bf = be;

    return keel_file_submit(bf->file, req, err);
}

static void bf_close(void *be)
{
    struct blockfile *bf = be;

    if (bf == NULL)
        return;
    if (bf->own_fs != NULL) {
        keel_file_close(bf->file, NULL);
        keel_fs_close(bf->own_fs);
    }
    free(bf);
}

/* The fence covers the file's whole connection (the file system). */
static void bf_set_fence(void *be, struct keel_fence *f)
{
    struct blockfile *bf = be;

    keel_fs_set_fence(keel_file_fs(bf->file), f);
}

static const struct keel_blockdev_ops bf_ops = {
    .submit = bf_submit,
    .close = bf_close,
    .set_fence = bf_set_fence,
};

static int wrap(struct keel_file *file, struct keel_fs *own_fs, uint32_t block_size,
                struct keel_blockdev **ret, struct keel_error *err)
{
    struct keel_blockdev_geom geom = { .block_size = block_size ? block_size : 512,
                                       .max_xfer = 4 * 1024 * 1024,
                                       .max_zero = 1024 * 1024,
                                       .native_zeroes = true };
    char name[KEEL_URL_MAX];
    struct blockfile *bf;
    struct keel_stat st;

    if (keel_file_fstat(file, &st, err) != 0)
        goto fail;
    geom.size = KEEL_ALIGN_DOWN(st.size, geom.block_size);
    bf = calloc(1, sizeof(*bf));
    if (bf == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
        goto fail;
    }
    bf->file = file;
    bf->own_fs = own_fs;
    snprintf(name, sizeof(name), "%s/%s", keel_fs_name(keel_file_fs(file)), keel_file_path(file));
    return keel_blockdev_new(name, &bf_ops, bf, &geom, ret, err);
fail:
    if (own_fs != NULL) {
        keel_file_close(file, NULL);
        keel_fs_close(own_fs);
    }
    return -1;
}

int keel_blockdev_open_file(struct keel_file *file, uint32_t block_size,
                            struct keel_blockdev **ret, struct keel_error *err)
{
    return wrap(file, NULL, block_size, ret, err);
}

int keel_nfs_blockdev_open(const struct keel_url *url, const struct keel_io_opts *opts,
                           struct keel_blockdev **ret, struct keel_error *err)
{
    struct keel_url dir = *url;
    char dirurl[KEEL_URL_MAX];
    struct keel_fs *fs = NULL;
    struct keel_file *file = NULL;
    char *slash = strrchr(dir.path, '/');
    const char *base;

    if (slash == NULL || slash[1] == '\0' || slash == dir.path) {
        char red[KEEL_URL_MAX];

        return keel_error_set(err, KEEL_E_URL, EINVAL, "%s: names no file inside an export",
                              keel_url_format(url, true, red, sizeof(red)));
    }
    base = url->path + (slash - dir.path) + 1;
    *slash = '\0';
    keel_url_format(&dir, false, dirurl, sizeof(dirurl));
    if (keel_fs_open(dirurl, opts, &fs, err) != 0)
        return -1;
    if (keel_file_open(fs, base, KEEL_O_RDWR, 0, &file, err) != 0) {
        keel_fs_close(fs);
        return -1;
    }
    return wrap(file, fs, 512, ret, err);
}
