/*
 * qcow2 images written and read by Keel itself (qemu's docs/interop/
 * qcow2.txt).  A volume on a block domain is an LV inside a LUN that
 * qemu-img cannot open, so Keel lays out new images as qemu-img create does
 * (qemu 7.2, Debian 12), byte for byte, at any offset of a block device:
 *
 *   cluster 0      header (v3: 112 bytes; v2: 72), header extensions
 *                  (backing format 0xE2792ACA when there is a backing file,
 *                  feature name table 0x6803F857 on v3, end), backing file
 *                  name
 *   cluster 1      refcount table (one entry: cluster 2)
 *   cluster 2      refcount block (16-bit refcounts of clusters 0..3+L1)
 *   cluster 3...   L1 table, all zero (nothing allocated yet)
 *
 * 64 KiB clusters, refcount order 4, no features.  Every metadata cluster is
 * written whole, so stale bytes of a reused LV never show through.  Data
 * clusters are the copy engine's and qemu's business, not this module's.
 */
#ifndef KEEL_VOLUME_QCOW2_H
#define KEEL_VOLUME_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"

#define KEEL_QCOW2_MAGIC 0x514649fbu
#define KEEL_QCOW2_CLUSTER_BITS 16
#define KEEL_QCOW2_BACKING_MAX 1023
#define KEEL_QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define KEEL_QCOW2_EXT_FEATURE_TABLE 0x6803f857u
/* The largest virtual size with 64 KiB clusters: qemu's L1 table limit, 32 MiB. */
#define KEEL_QCOW2_SIZE_MAX (UINT64_C(2) << 50)

struct keel_qcow2_info {
    unsigned version;                 /* 2 (compat 0.10) or 3 (compat 1.1) */
    unsigned cluster_bits;
    uint64_t size;                    /* virtual size, bytes */
    uint32_t l1_size;
    uint64_t l1_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    unsigned refcount_order;
    uint64_t incompatible, compatible, autoclear;
    char backing_file[KEEL_QCOW2_BACKING_MAX + 1];   /* "" without one */
    char backing_format[32];                         /* "" when not recorded */
};

struct keel_qcow2_opts {
    uint64_t size;                    /* virtual size in bytes, > 0 */
    unsigned version;                 /* 0 or 3: compat 1.1; 2: compat 0.10 */
    const char *backing_file;         /* NULL: none; oVirt writes the bare parent UUID */
    const char *backing_format;       /* "qcow2" or "raw"; with backing_file */
};

/* Bytes a new image's metadata takes (clusters 0..3+L1, whole clusters). */
uint64_t keel_qcow2_metadata_size(uint64_t size);

/*
 * Encode the first cluster (header, extensions, backing name) of a new
 * image into buf[0..64 KiB).  KEEL_E_INVAL for a bad size, version or
 * backing name.
 */
int keel_qcow2_header_encode(const struct keel_qcow2_opts *o, unsigned char *buf,
                             struct keel_error *err);

/*
 * Decode and check the first cluster (len bytes, at least the header):
 * magic, version 2 or 3, cluster_bits 9..21, no encryption, L1 big enough
 * for the size (16-byte L2 entries with extended L2) and at most qemu's
 * 32 MiB, refcount order and table, header length, no unknown incompatible
 * feature, not marked corrupt, extensions and backing name inside the
 * cluster.  Errors are KEEL_E_MAGIC / KEEL_E_VERSION / KEEL_E_FORMAT /
 * KEEL_E_UNSUPPORTED, their messages start with "qcow2: ".  *info is
 * written only on success.
 */
int keel_qcow2_header_decode(const unsigned char *buf, size_t len, struct keel_qcow2_info *info,
                             struct keel_error *err);

/*
 * Write a new image at `offset` of dev (which must hold metadata_size bytes
 * there).  Not flushed: the caller flushes before the volume is LEGAL.
 */
int keel_qcow2_create(struct keel_blockdev *dev, uint64_t offset, const struct keel_qcow2_opts *o,
                      struct keel_error *err);

/*
 * Read and decode the header of the image at `offset` of dev.  Messages
 * start with "qcow2 at <device name>" (and " offset N" when N is not 0),
 * e.g. "qcow2 at file:///v/img: bad magic".
 */
int keel_qcow2_read_header(struct keel_blockdev *dev, uint64_t offset,
                           struct keel_qcow2_info *info, struct keel_error *err);

/*
 * Grow the virtual size of the image at `offset` of dev to new_size, on an
 * image nothing else has open; flushed.
 *
 * keel_qcow2_resize_in() is told `area`, the bytes from `offset` that are
 * the image's (an LV's size on a LUN, the file size of a file view): never
 * anything past them is written.  The L1 table grows in place inside the
 * clusters it already has (4 TiB of virtual size per 64 KiB cluster); past
 * them, as qemu-img resize does, a new L1 table goes to free clusters after
 * the last cluster in use (with refcount blocks for them if needed), the
 * header switches to it and the old one is freed.  A crash leaves the old
 * or the new image, at worst with leaked clusters (never corrupt).
 *
 * keel_qcow2_resize() does not know where the image ends (dev may be a
 * whole LUN): it grows in place only and refuses a move of the L1 table
 * (KEEL_E_UNSUPPORTED).
 *
 * Refused: shrinking, a size that is not whole sectors or is over the L1
 * limit (KEEL_E_INVAL); images with persistent bitmaps or an external data
 * file, a move of the L1 table on a dirty image or one that needs a larger
 * refcount table (KEEL_E_UNSUPPORTED); a move that does not fit in `area`
 * (KEEL_E_NOSPC: keel_qcow2_resize_space() says how much to give first).
 * Unknown auto-clear feature bits are cleared, as qcow2.txt asks.  Messages
 * start with "qcow2 at <device name>" as keel_qcow2_read_header()'s.
 */
int keel_qcow2_resize(struct keel_blockdev *dev, uint64_t offset, uint64_t new_size,
                      struct keel_error *err);
int keel_qcow2_resize_in(struct keel_blockdev *dev, uint64_t offset, uint64_t area,
                         uint64_t new_size, struct keel_error *err);

/*
 * What a resize to new_size needs, without writing: *need = 0 when the L1
 * table grows in place, else the bytes from `offset` that the image's area
 * must hold (its used clusters, the new L1 table and refcount blocks):
 * extend the LV or the file to that, then call keel_qcow2_resize_in().  The
 * same refusals as keel_qcow2_resize_in(), except KEEL_E_NOSPC.
 */
int keel_qcow2_resize_space(struct keel_blockdev *dev, uint64_t offset, uint64_t new_size,
                            uint64_t *need, struct keel_error *err);

#endif /* KEEL_VOLUME_QCOW2_H */
