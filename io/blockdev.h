/*
 * struct keel_blockdev: a block device reached through io/ -- an iSCSI LUN,
 * a local file or block device, a file on a keel_fs seen as a disk, or a
 * fault-injecting wrapper around any of them.
 *
 *   keel_blockdev_open("iscsi://127.0.0.1:3261/iqn.2026-11.org.keel:t1/0",
 *                      &opts, &dev, &err);
 *
 * Offsets and lengths of every request must be multiples of the logical
 * block size (KEEL_E_ALIGN otherwise) and inside the device (KEEL_E_RANGE).
 * Large requests are split by io/ to what the storage takes in one command.
 *
 * Threads: every function may be called from any thread; completions run on
 * the device's I/O thread.  A device must not be closed while requests are
 * being submitted to it from other threads.
 */
#ifndef KEEL_IO_BLOCKDEV_H
#define KEEL_IO_BLOCKDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/ioreq.h"
#include "io/opts.h"

struct keel_blockdev;
struct keel_file;

/*
 * Open a block device by URL (iscsi://... or file://...).  opts may be NULL.
 * The first session is built before this returns: an unreachable target,
 * a refused login or a missing LUN fail here.  The caller frees *ret with
 * keel_blockdev_close().
 */
int keel_blockdev_open(const char *url, const struct keel_io_opts *opts,
                       struct keel_blockdev **ret, struct keel_error *err);

/*
 * A block device view of an open file of a keel_fs (a lease area on NFS, a
 * volume file): size is the file size now, block_size usually 512.  The
 * file must stay open until the device is closed.
 */
int keel_blockdev_open_file(struct keel_file *file, uint32_t block_size,
                            struct keel_blockdev **ret, struct keel_error *err);

/*
 * Wait for every submitted request to finish, then release the device.
 * NULL is accepted.
 */
void keel_blockdev_close(struct keel_blockdev *dev);

uint64_t keel_blockdev_size(const struct keel_blockdev *dev);
uint32_t keel_blockdev_block_size(const struct keel_blockdev *dev);
/* The URL with any secret redacted; borrowed from dev. */
const char *keel_blockdev_name(const struct keel_blockdev *dev);

/*
 * Gate every write of dev's connection with a lease's fence (io/fence.h);
 * NULL removes it.  f must outlive dev, or be removed first.  A view of a
 * file (keel_blockdev_open_file) fences the file's whole file system.
 */
struct keel_fence;
void keel_blockdev_set_fence(struct keel_blockdev *dev, struct keel_fence *f);

/*
 * Queue an asynchronous request (see ioreq.h).  Returns -1 without calling
 * done() when the request is refused (alignment, range, closed device);
 * otherwise done() reports the outcome.
 */
int keel_blockdev_submit(struct keel_blockdev *dev, struct keel_ioreq *req,
                         struct keel_error *err);

/* Synchronous forms; each returns when the request is done. */
int keel_blockdev_pread(struct keel_blockdev *dev, void *buf, size_t len, uint64_t offset,
                        struct keel_error *err);
int keel_blockdev_pwrite(struct keel_blockdev *dev, const void *buf, size_t len,
                         uint64_t offset, struct keel_error *err);
int keel_blockdev_flush(struct keel_blockdev *dev, struct keel_error *err);
int keel_blockdev_discard(struct keel_blockdev *dev, uint64_t offset, uint64_t len,
                          struct keel_error *err);
int keel_blockdev_write_zeroes(struct keel_blockdev *dev, uint64_t offset, uint64_t len,
                               struct keel_error *err);

/*
 * What the storage holds from offset on (at most len bytes, both aligned to
 * the block size): *run bytes (> 0) that are all of one kind, *zero when
 * they read as zeroes without being stored -- a deallocated range of a
 * thin-provisioned LUN whose deallocated blocks read as zeroes (LBPRZ), a
 * hole of a file.  A device that cannot tell answers *run = len, *zero =
 * false without any I/O (see keel_blockdev_knows_status()).  Used to skip
 * reading what is known to be zeroes.
 */
int keel_blockdev_block_status(struct keel_blockdev *dev, uint64_t offset, uint64_t len,
                               uint64_t *run, bool *zero, struct keel_error *err);
/* Whether keel_blockdev_block_status() asks the storage (else: always data). */
bool keel_blockdev_knows_status(const struct keel_blockdev *dev);

#endif /* KEEL_IO_BLOCKDEV_H */
