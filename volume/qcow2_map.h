/*
 * Reading where a qcow2 image's guest bytes are (qemu's docs/interop/
 * qcow2.txt, "Cluster mapping"): the copy engine walks an image extent by
 * extent through io/, since an image inside an LV cannot be given to qemu.
 *
 *   guest offset --L1 entry--> L2 table --L2 entry--> data cluster, zero, or
 *                                                     unallocated (ask the backing file)
 *
 * Supported: versions 2 and 3, any cluster size, 8-byte L2 entries,
 * standard clusters and zero clusters (flag bit 0, v3).  Refused with
 * KEEL_E_UNSUPPORTED: extended L2 entries, an external data file;
 * compressed clusters are refused when met.  Offsets in L1/L2 entries must
 * be cluster aligned and lie inside the image's area (`area` bytes from
 * `offset` on the device: an LV's size, a file's size): KEEL_E_CORRUPT
 * otherwise, naming the entry.  Read-only; not thread-safe (one L2 table
 * cached).
 */
#ifndef KEEL_VOLUME_QCOW2_MAP_H
#define KEEL_VOLUME_QCOW2_MAP_H

#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"
#include "volume/qcow2.h"

enum keel_extent_kind {
    KEEL_EXTENT_DATA,        /* bytes at `host` on the device */
    KEEL_EXTENT_ZERO,        /* reads as zeroes */
    KEEL_EXTENT_UNALLOCATED, /* not in this image: the backing file's (zeroes without one) */
};

struct keel_extent {
    enum keel_extent_kind kind;
    uint64_t guest, len;
    uint64_t host;           /* DATA: device offset of the guest byte `guest` */
};

struct keel_qcow2_map;

int keel_qcow2_map_open(struct keel_blockdev *dev, uint64_t offset, uint64_t area,
                        struct keel_qcow2_map **ret, struct keel_error *err);
const struct keel_qcow2_info *keel_qcow2_map_info(const struct keel_qcow2_map *m);

/*
 * The extent that starts at `guest` (< virtual size): clusters of one kind
 * (DATA ones also contiguous on the device), at most max_len bytes and
 * never past the virtual size or the end of one L2 table.
 */
int keel_qcow2_map_extent(struct keel_qcow2_map *m, uint64_t guest, uint64_t max_len,
                          struct keel_extent *ext, struct keel_error *err);

void keel_qcow2_map_close(struct keel_qcow2_map *m);

#endif /* KEEL_VOLUME_QCOW2_MAP_H */
