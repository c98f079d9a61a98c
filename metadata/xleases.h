/*
 * The xleases volume of a V4+ domain: VDSM's index of external (VM and
 * job) leases (ovirt-storage-format.md 7.3; VDSM lib/vdsm/storage/xlease.py).
 *
 *   slot 0 (offset 0)            unused (lockspace area)
 *   slot 1 (1 x alignment)       the index: a 512-byte metadata block, then
 *                                3960 records of 64 bytes (62 x 4 KiB)
 *   slot 2                       reserved for sanlock
 *   slot 3 + r                   the sanlock resource of record r
 *
 * Metadata block: big-endian int32 magic 0x12152016, NUL, "0001", NUL, the
 * lockspace (sdUUID, NUL-padded to 48), NUL, mtime (10 decimal digits),
 * NUL, flag ('-' ready, 'u' being updated: the index is unusable), 440 NUL,
 * '\n'.  Record: lease id (NUL-padded 48), NUL, offset (11 digits), NUL,
 * updating flag, '-', '\n'; a free record has an empty id, offset
 * "00000000000" and flags "--".
 *
 * Formatting writes the metadata block with 'u', then the empty records,
 * flushes, then the block with '-': an interrupted format is never read as
 * a good index.
 */
#ifndef KEEL_METADATA_XLEASES_H
#define KEEL_METADATA_XLEASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"
#include "io/blockdev.h"

#define KEEL_XLEASES_MAGIC 0x12152016u
#define KEEL_XLEASES_INDEX_SIZE (62 * 4096)
#define KEEL_XLEASES_META_SIZE 512
#define KEEL_XLEASES_RECORD_SIZE 64
#define KEEL_XLEASES_MAX_RECORDS \
    ((KEEL_XLEASES_INDEX_SIZE - KEEL_XLEASES_META_SIZE) / KEEL_XLEASES_RECORD_SIZE)

struct keel_xleases_record {
    char id[49];          /* "" for a free record */
    uint64_t offset;      /* informational; the record number is authoritative */
    bool updating;
};

struct keel_xleases_index {
    char lockspace[49];
    uint64_t mtime;
    bool updating;        /* the metadata block says 'u' */
    size_t nused;
    struct keel_xleases_record records[KEEL_XLEASES_MAX_RECORDS];
};

/* Encode the metadata block / a record into buf (512 / 64 bytes). */
void keel_xleases_meta_encode(const char *lockspace, uint64_t mtime, bool updating,
                              unsigned char *buf);
void keel_xleases_record_encode(const struct keel_xleases_record *r, unsigned char *buf);

/*
 * Parse an index (KEEL_XLEASES_INDEX_SIZE bytes).  Checks the magic,
 * version, every separator and digit; KEEL_E_MAGIC, KEEL_E_VERSION or
 * KEEL_E_FORMAT naming the record.  idx is heap-sized (~240 KiB): allocate
 * it, do not put it on the stack.
 */
int keel_xleases_parse(const unsigned char *buf, size_t len, struct keel_xleases_index *idx,
                       struct keel_error *err);

/* Format the index of the xleases area starting at `offset` of dev. */
int keel_xleases_format(struct keel_blockdev *dev, uint64_t offset, const char *lockspace,
                        uint64_t alignment, time_t now, struct keel_error *err);

/* Read and parse the index of the area at `offset` (idx heap-allocated). */
int keel_xleases_read(struct keel_blockdev *dev, uint64_t offset, uint64_t alignment,
                      struct keel_xleases_index *idx, struct keel_error *err);

#endif /* KEEL_METADATA_XLEASES_H */
