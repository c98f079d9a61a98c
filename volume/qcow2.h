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
 * for the size, refcount order, header length, no unknown incompatible
 * feature, extensions and backing name inside the cluster.  Errors are
 * KEEL_E_MAGIC / KEEL_E_VERSION / KEEL_E_FORMAT / KEEL_E_UNSUPPORTED.
 */
int keel_qcow2_header_decode(const unsigned char *buf, size_t len, struct keel_qcow2_info *info,
                             struct keel_error *err);

/* Write a new image at `offset` of dev (which must hold metadata_size bytes there). */
int keel_qcow2_create(struct keel_blockdev *dev, uint64_t offset, const struct keel_qcow2_opts *o,
                      struct keel_error *err);

/* Read the header of the image at `offset` of dev. Errors name the device. */
int keel_qcow2_read_header(struct keel_blockdev *dev, uint64_t offset,
                           struct keel_qcow2_info *info, struct keel_error *err);

/*
 * Grow the virtual size to new_size.  The L1 table grows in place inside
 * the clusters it already has (4 TiB of virtual size per cluster); growing
 * past them is refused (KEEL_E_UNSUPPORTED) until L1 relocation exists.
 * Shrinking is refused (KEEL_E_INVAL).
 */
int keel_qcow2_resize(struct keel_blockdev *dev, uint64_t offset, uint64_t new_size,
                      struct keel_error *err);

#endif /* KEEL_VOLUME_QCOW2_H */
