/*
 * The xleases volume of a V4+ domain: VDSM's index of external (VM and
 * job) leases (ovirt-storage-format.md 7.3; VDSM lib/vdsm/storage/xlease.py
 * at fd4b0df).  Offsets below are from the start of the xleases area.
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
 * "00000000000" and flags "--".  The record number is authoritative: the
 * offset in a record is informational and never used.
 *
 * Invariants:
 *   1. The index is usable only while its metadata says '-'.  Format (and
 *      a rebuild, not done here) writes 'u' first and '-' last, each write
 *      flushed, so an interrupted one is never read as a good index.
 *   2. A record names a lease only once its resource is durable: add writes
 *      and flushes the resource, then the record.
 *   3. A removed lease leaves the index first: remove writes and flushes
 *      the free record, then clears the resource (empty lockspace and
 *      resource names, as VDSM does).  A crash in between leaves an
 *      orphan resource that no record names, which is harmless.
 *   4. A record changes by rewriting the one block that holds it (the
 *      device's block, at least 512 bytes, at least the domain's sector),
 *      so a torn write cannot touch another block's records.
 *
 * States of a record r and the functions that move it:
 *
 *   [free] --keel_xleases_add: resource at (3 + r) x alignment, flush--> [free, resource]
 *   [free, resource] --keel_xleases_add: record, flush--> [used]
 *   [used] --keel_xleases_remove: free record, flush--> [free, resource]
 *   [free, resource] --keel_xleases_remove: resource with empty names--> [free]
 *
 * A record with the 'u' flag was left by an older VDSM's interrupted add:
 * lookup treats it as absent, add reuses it, remove frees it.
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
#define KEEL_XLEASES_VERSION "0001"
#define KEEL_XLEASES_INDEX_SIZE (62 * 4096)
#define KEEL_XLEASES_META_SIZE 512
#define KEEL_XLEASES_RECORD_SIZE 64
#define KEEL_XLEASES_MAX_RECORDS \
    ((KEEL_XLEASES_INDEX_SIZE - KEEL_XLEASES_META_SIZE) / KEEL_XLEASES_RECORD_SIZE)
#define KEEL_XLEASES_RESERVED_SLOTS 3   /* lockspace, index, sanlock's */
#define KEEL_XLEASES_ID_LEN 48

struct keel_xleases_record {
    char id[KEEL_XLEASES_ID_LEN + 1];   /* "" for a free record */
    uint64_t offset;      /* informational; the record number is authoritative */
    bool updating;
};

struct keel_xleases_index {
    char lockspace[KEEL_XLEASES_ID_LEN + 1];
    uint64_t mtime;
    bool updating;        /* the metadata block says 'u' */
    size_t nused;         /* records with an id */
    struct keel_xleases_record records[KEEL_XLEASES_MAX_RECORDS];
};

/* Encode the metadata block / a record into buf (512 / 64 bytes). */
void keel_xleases_meta_encode(const char *lockspace, uint64_t mtime, bool updating,
                              unsigned char *buf);
void keel_xleases_record_encode(const struct keel_xleases_record *r, unsigned char *buf);

/*
 * Parse an index (KEEL_XLEASES_INDEX_SIZE bytes).  Checks the magic, the
 * version, every separator, digit, flag and padding byte, and that names
 * are NUL-padded ASCII.  Errors: KEEL_E_MAGIC, KEEL_E_VERSION, or
 * KEEL_E_FORMAT naming the metadata block or the record ("xleases index
 * record 7: bad offset \"0000x000000\"").  An index being updated parses
 * (idx->updating); the operations below refuse it.  idx is large (about
 * 240 KiB): allocate it, do not put it on the stack.
 */
int keel_xleases_parse(const unsigned char *buf, size_t len, struct keel_xleases_index *idx,
                       struct keel_error *err);

/* The offset of record r's lease from the start of the area. */
uint64_t keel_xleases_lease_offset(uint64_t alignment, size_t recnum);

/* The record naming lease_id (updating or not), or -1. */
int keel_xleases_find(const struct keel_xleases_index *idx, const char *lease_id);

/*
 * Format the index of the xleases area starting at `offset` of dev
 * (invariant 1): the metadata with 'u' and 3960 free records in one write,
 * flush, the first block again with '-', flush.  Writes nothing outside
 * [offset + alignment, offset + alignment + KEEL_XLEASES_INDEX_SIZE).
 */
int keel_xleases_format(struct keel_blockdev *dev, uint64_t offset, const char *lockspace,
                        uint64_t alignment, time_t now, struct keel_error *err);

/* Read and parse the index of the area at `offset` (idx heap-allocated). */
int keel_xleases_read(struct keel_blockdev *dev, uint64_t offset, uint64_t alignment,
                      struct keel_xleases_index *idx, struct keel_error *err);

/*
 * The offset (from the area start) of lease lease_id.  KEEL_E_NOENT when
 * no ready record names it, KEEL_E_BUSY when the index is being updated.
 */
int keel_xleases_lookup(struct keel_blockdev *dev, uint64_t offset, uint64_t alignment,
                        const char *lease_id, uint64_t *lease_offset, struct keel_error *err);

/*
 * Add lease lease_id to the xleases area at `offset` of dev, `size` bytes
 * long (invariant 2): the first free record r (or a record of lease_id
 * left updating), its sanlock resource (lockspace = the index's, resource
 * = lease_id) at (3 + r) x alignment, sector_size-byte sectors.  On
 * success *lease_offset (may be NULL) is that offset from the area start.
 * Errors: KEEL_E_EXIST (a ready record names it), KEEL_E_NOSPC (no free
 * record, or the area is too small for slot 3 + r: the message gives the
 * size needed, so a caller can extend a file domain's xleases and retry),
 * KEEL_E_BUSY (index being updated), KEEL_E_INVAL (id empty, too long or
 * not ASCII).
 */
int keel_xleases_add(struct keel_blockdev *dev, uint64_t offset, uint64_t size,
                     unsigned sector_size, uint64_t alignment, const char *lease_id,
                     uint64_t *lease_offset, struct keel_error *err);

/*
 * Remove lease lease_id (invariant 3).  KEEL_E_NOENT when no record names
 * it, KEEL_E_BUSY when the index is being updated.  Once the free record
 * is durable the lease is gone: a failure to clear the resource after that
 * is only reported through keel_debug(), as VDSM only logs it.
 */
int keel_xleases_remove(struct keel_blockdev *dev, uint64_t offset, unsigned sector_size,
                        uint64_t alignment, const char *lease_id, struct keel_error *err);

#endif /* KEEL_METADATA_XLEASES_H */
