/*
 * sanlock's on-disk lease records, written and read by Keel itself
 * (../shared/specs/sanlock-leases.md section 5; sanlock 3.8.5 as Debian 12
 * ships it).  All integers are little-endian; records are encoded and
 * decoded field by field, never cast from a buffer.
 *
 *   leader record   200 bytes at the start of a sector: one per host in a
 *                   lockspace (delta leases, sector host_id - 1), one per
 *                   resource (paxos leader, sector 0)
 *   request record  24 bytes at the start of sector 1 of a resource
 *   dblock          56 bytes at the start of sector 2 + (host_id - 1)
 *   mode block      16 bytes at byte 128 of the same sector
 *
 * Geometry: a lockspace or a resource is one alignment unit ("align": 1, 2,
 * 4 or 8 MiB) of sectors of 512 or 4096 bytes: 512/1M, 4096/1M, 4096/2M,
 * 4096/4M, 4096/8M hold 2000, 250, 500, 1000, 2000 hosts.  The leader's
 * flags carry the alignment (0x10 1M ... 0x80 8M); records older than
 * sanlock 3.7 have none, then 512 means 1M and 4096 means 8M.
 *
 * Checksums: CRC-32C seeded with ~1 (0xFFFFFFFE), no final inversion, over
 * the encoded bytes 0..167 of a leader and 0..47 of a dblock.  An all-zero
 * dblock (mbal, bal, inp, lver and checksum 0) is valid without one, as
 * `sanlock direct init` leaves them.  Request and mode blocks have none.
 *
 * The area initialisers write what `sanlock direct init -s` and `-r` write,
 * byte for byte: tests/unit/test_sanlock_fmt.c holds the CRC-32C of each
 * geometry's image as sanlock 3.8.5 wrote it, and
 * tests/functional/test_sanlock_fmt.c compares with a live sanlock.  No
 * field of those images comes from sanlock's own state (no host id, clock
 * or generation); only `init -z 1` (a cleared resource, not written here)
 * would stamp write_timestamp with sanlock's monotonic clock.
 *
 * Invariants of the writers:
 *   1. A lockspace is committed by the magic of record 1.  Its init writes
 *      the whole area with record 1's magic 0, makes that durable, then
 *      writes sector 0 with the magic.  A torn init is never read as a
 *      lockspace: on fresh storage record 1's magic is 0 until the end, and
 *      over an older lockspace the reader finds records of two names.
 *   2. A resource is one write of the whole area (leader, request, zero
 *      dblocks), not flushed: the caller flushes before relying on it, so
 *      that creating many volume leases costs one flush.
 *   3. Encoders write every byte of their record (unused fields and
 *      padding included) and compute the checksum over the encoded bytes.
 *   4. Decoders check magic, major version and checksum before returning a
 *      field; minor versions and flags are not checked (as sanlock).
 *
 * Lockspace init, states and the function that moves between them:
 *
 *   [any bytes] --write_lockspace: area with record 1 magic 0, flush--> [uncommitted]
 *   [uncommitted] --write_lockspace: sector 0 with the magic, flush--> [free lockspace]
 *
 * Errors name the record: "lease area <name> sector <n>: bad checksum
 * (stored 0x..., computed 0x...)", where <name> is the lockspace (or
 * LOCKSPACE:RESOURCE) the caller expects, or the device and offset
 * (PATH:OFFSET, as sanlock writes it) when the caller gives no name, and <n>
 * counts sectors from the start of the area.  Codes: KEEL_E_MAGIC (also a
 * cleared resource), KEEL_E_VERSION, KEEL_E_CHECKSUM, KEEL_E_CORRUPT (a
 * wrong lockspace or resource name, sector size, alignment or host count).
 *
 * The lease algorithms (acquire, renew, ballots) are the SPM's and build on
 * these records.  Nothing here keeps state between calls; every function
 * may be called from any thread.
 */
#ifndef KEEL_METADATA_SANLOCK_FMT_H
#define KEEL_METADATA_SANLOCK_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"

#define KEEL_SANLOCK_DELTA_MAGIC 0x12212010u
#define KEEL_SANLOCK_DELTA_VERSION 0x00030004u   /* major 3 (high 16 bits), minor 4 */
#define KEEL_SANLOCK_PAXOS_MAGIC 0x06152010u
#define KEEL_SANLOCK_PAXOS_VERSION 0x00060004u   /* major 6, minor 4 */
#define KEEL_SANLOCK_PAXOS_CLEAR_MAGIC 0x11282016u /* a resource cleared by `init -z 1` */
#define KEEL_SANLOCK_REQUEST_MAGIC 0x08292011u
#define KEEL_SANLOCK_REQUEST_VERSION 0x00010001u /* major 1, minor 1 */

#define KEEL_SANLOCK_NAME_LEN 48
#define KEEL_SANLOCK_LEADER_SIZE 200
#define KEEL_SANLOCK_CHECKSUM_OFFSET 168  /* the leader checksum covers bytes 0..167 */
#define KEEL_SANLOCK_COMPARE_LEN 152      /* leaders are compared up to the timestamp */
#define KEEL_SANLOCK_BITMAP_OFFSET 256    /* delta sectors: host-id bitmap, 256 bytes */
#define KEEL_SANLOCK_REQUEST_SIZE 24
#define KEEL_SANLOCK_DBLOCK_SIZE 56
#define KEEL_SANLOCK_DBLOCK_CHECKSUM_OFFSET 48
#define KEEL_SANLOCK_MODE_BLOCK_OFFSET 128 /* in a dblock's sector */
#define KEEL_SANLOCK_MODE_BLOCK_SIZE 16
#define KEEL_SANLOCK_MAX_HOSTS 2000

/* leader flags */
#define KEEL_SANLOCK_LFL_SHORT_HOLD 0x1u
#define KEEL_SANLOCK_LFL_ALIGN_1M 0x10u
#define KEEL_SANLOCK_LFL_ALIGN_2M 0x20u
#define KEEL_SANLOCK_LFL_ALIGN_4M 0x40u
#define KEEL_SANLOCK_LFL_ALIGN_8M 0x80u
/* dblock flags */
#define KEEL_SANLOCK_DBLOCK_RELEASED 0x1u
/* mode block flags */
#define KEEL_SANLOCK_MODE_SHARED 0x1u

#define KEEL_SANLOCK_IO_TIMEOUT 10   /* VDSM's io_timeout, written into delta leases */

/* The leader record: a delta lease or a paxos leader (spec 5.1). */
struct keel_sanlock_leader {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;            /* alignment flag 0x10/0x20/0x40/0x80, SHORT_HOLD */
    uint32_t sector_size;
    uint64_t num_hosts;        /* paxos: hosts taking part; delta: 0 */
    uint64_t max_hosts;        /* paxos: from the geometry; delta: 1 */
    uint64_t owner_id;
    uint64_t owner_generation;
    uint64_t lver;
    char space_name[KEEL_SANLOCK_NAME_LEN + 1];    /* NUL-terminated; 48 bytes on disk */
    char resource_name[KEEL_SANLOCK_NAME_LEN + 1];
    uint64_t timestamp;        /* 0: free */
    uint64_t unused1;
    uint32_t checksum;         /* decode: as stored; encode: ignored, computed */
    uint16_t unused2;
    uint16_t io_timeout;       /* delta: the writer's io_timeout; paxos: 0 */
    uint64_t write_id;
    uint64_t write_generation;
    uint64_t write_timestamp;
};

/* The request record, sector 1 of a resource; no checksum (spec 5.3). */
struct keel_sanlock_request {
    uint32_t magic;
    uint32_t version;
    uint64_t lver;
    uint32_t force_mode;       /* 1: SIGKILL the holder, 2: run its killpath */
};

/* A host's ballot block in a resource (spec 5.3). */
struct keel_sanlock_dblock {
    uint64_t mbal;
    uint64_t bal;
    uint64_t inp;              /* proposed owner host id */
    uint64_t inp2;             /* its generation */
    uint64_t inp3;             /* its timestamp */
    uint64_t lver;
    uint32_t checksum;         /* decode: as stored; encode: ignored, computed */
    uint32_t flags;            /* RELEASED; after the checksum, not covered */
};

/* A host's mode block, at byte 128 of its dblock sector. */
struct keel_sanlock_mode_block {
    uint32_t flags;            /* SHARED */
    uint64_t generation;
};

/* ---- checksums and geometry ---- */

/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of len bytes,
 * continuing from crc, with no inversion on entry or exit.  The standard
 * CRC-32C of a buffer is ~keel_crc32c(~0u, buf, len).
 */
uint32_t keel_crc32c(uint32_t crc, const void *data, size_t len);

/* The checksum as sanlock uses it: keel_crc32c(~1u, data, len). */
uint32_t keel_sanlock_crc(const void *data, size_t len);

/* The alignment flag for align bytes (1, 2, 4, 8 MiB), or 0 when invalid. */
uint32_t keel_sanlock_align_flag(uint64_t align);
/* The alignment a leader's flags name, or 0 when they name none. */
uint64_t keel_sanlock_align_from_flags(uint32_t flags);
/* Hosts a lockspace / resource of this geometry holds (2000, 250, 500,
 * 1000, 2000), 0 for a combination sanlock refuses (e.g. 512/2M). */
uint64_t keel_sanlock_max_hosts(unsigned sector_size, uint64_t align);
/* 0, or KEEL_E_INVAL naming the geometry sanlock would refuse. */
int keel_sanlock_check_geometry(unsigned sector_size, uint64_t align, struct keel_error *err);

/*
 * The geometry a leader declares: its sector_size (512 or 4096) and the
 * alignment of its flags, or for records without an alignment flag the
 * old defaults (512: 1 MiB, 4096: 8 MiB).  KEEL_E_CORRUPT naming `what`
 * when they do not make a valid geometry.
 */
int keel_sanlock_leader_geometry(const struct keel_sanlock_leader *l, const char *what,
                                 unsigned *sector_size, uint64_t *align,
                                 struct keel_error *err);

/* ---- records ---- */

/*
 * Encode into buf[0..200); bytes 200.. of the sector are the caller's.  The
 * checksum is computed over the encoded bytes (l->checksum is ignored).
 * Names are written NUL-padded to 48 bytes (no NUL when 48 long).
 */
void keel_sanlock_leader_encode(const struct keel_sanlock_leader *l, unsigned char *buf);

/*
 * Decode and check a leader in buf[0..200): the magic (`magic`: the delta
 * or paxos magic, or 0 for either), the major version that goes with it,
 * the checksum.  A cleared resource (magic 0x11282016) is KEEL_E_MAGIC
 * "...: resource cleared".  Errors begin with `what` (e.g. "lease area LS
 * sector 3").  *l is written only on success.
 */
int keel_sanlock_leader_decode(const unsigned char *buf, uint32_t magic, const char *what,
                               struct keel_sanlock_leader *l, struct keel_error *err);

/* Encode / decode a request record in buf[0..24).  Decode checks the magic
 * and the major version. */
void keel_sanlock_request_encode(const struct keel_sanlock_request *r, unsigned char *buf);
int keel_sanlock_request_decode(const unsigned char *buf, const char *what,
                                struct keel_sanlock_request *r, struct keel_error *err);

/* Encode a dblock in buf[0..56), with its checksum (d->checksum ignored). */
void keel_sanlock_dblock_encode(const struct keel_sanlock_dblock *d, unsigned char *buf);
/*
 * Decode a dblock from buf[0..56): KEEL_E_CHECKSUM unless the checksum
 * matches or the block is empty (mbal, bal, inp, lver and checksum 0).
 * *empty (may be NULL) tells which.
 */
int keel_sanlock_dblock_decode(const unsigned char *buf, const char *what,
                               struct keel_sanlock_dblock *d, bool *empty,
                               struct keel_error *err);

/* Encode / decode a mode block at buf[0..16) (buf = sector + 128).  Any
 * bytes decode. */
void keel_sanlock_mode_block_encode(const struct keel_sanlock_mode_block *m,
                                    unsigned char *buf);
void keel_sanlock_mode_block_decode(const unsigned char *buf, struct keel_sanlock_mode_block *m);

/* ---- area images (no I/O) ---- */

/*
 * Fill area[0..align) with the committed lockspace `name` as `sanlock
 * direct init -s NAME:0:PATH:OFF -Z sector_size -A align -o io_timeout`
 * leaves it: a free delta lease in each of the max_hosts first sectors
 * (owner 0, generation 0, timestamp 0, empty resource name, max_hosts 1),
 * zeros after.  io_timeout 0 means sanlock's default, 10.
 */
int keel_sanlock_lockspace_image(unsigned char *area, const char *name, unsigned io_timeout,
                                 unsigned sector_size, uint64_t align, struct keel_error *err);

/*
 * Fill area[0..align) with resource `resource` of lockspace `name` as
 * `sanlock direct init -r NAME:RES:PATH:OFF` leaves it: the free leader
 * (owner 0, lver 0, num_hosts), the empty request record, zero dblocks.
 * num_hosts 0 (or above the geometry's) means max_hosts, as sanlock does.
 * Empty names are allowed: VDSM "removes" an xlease that way.
 */
int keel_sanlock_resource_image(unsigned char *area, const char *name, const char *resource,
                                unsigned sector_size, uint64_t align, uint64_t num_hosts,
                                struct keel_error *err);

/* ---- areas on a block device ---- */

/*
 * Initialise a lockspace named `name` at `offset` of dev, over one
 * alignment unit (invariant 1): flushed when this returns.
 */
int keel_sanlock_write_lockspace(struct keel_blockdev *dev, uint64_t offset, const char *name,
                                 unsigned io_timeout, unsigned sector_size, uint64_t align,
                                 struct keel_error *err);

/*
 * Initialise a resource lease `resource` of lockspace `name` at `offset`:
 * one write of the whole area, not flushed (the caller flushes before it
 * relies on it; creating many volumes then costs one flush, not one each).
 */
int keel_sanlock_write_resource(struct keel_blockdev *dev, uint64_t offset, const char *name,
                                const char *resource, unsigned sector_size, uint64_t align,
                                struct keel_error *err);

/* A lockspace as read from storage. */
struct keel_sanlock_lockspace {
    char name[KEEL_SANLOCK_NAME_LEN + 1];
    unsigned sector_size;
    uint64_t align;
    uint64_t max_hosts;                 /* of the geometry: 2000, 250, ... */
    struct keel_sanlock_leader *hosts;  /* hosts[i]: the delta lease of host id i + 1 */
};

/*
 * Read the lockspace at `offset` in one I/O of its alignment unit and check
 * every delta lease in it: magic, version, checksum, lockspace name and
 * sector size.  name: the lockspace expected, or NULL to take record 1's.
 * sector_size / align: expected values, or 0 to take record 1's.  The
 * first bad record fails the read, naming its sector.  On success *ls owns
 * ls->hosts: free it with keel_sanlock_lockspace_release().
 */
int keel_sanlock_read_lockspace(struct keel_blockdev *dev, uint64_t offset, const char *name,
                                unsigned sector_size, uint64_t align,
                                struct keel_sanlock_lockspace *ls, struct keel_error *err);
/* Free what read_lockspace allocated; NULL and a zeroed struct are accepted. */
void keel_sanlock_lockspace_release(struct keel_sanlock_lockspace *ls);

/*
 * Read and check the delta lease of host_id (1-based) of lockspace `name`
 * (NULL: any) at `offset`.  sector_size 0: take it from record 1.
 */
int keel_sanlock_read_delta(struct keel_blockdev *dev, uint64_t offset, const char *name,
                            uint64_t host_id, unsigned sector_size,
                            struct keel_sanlock_leader *l, struct keel_error *err);

/*
 * Read and check the leader of resource `resource` of lockspace `name` at
 * `offset` (either name NULL: any).  sector_size 0: take it from the
 * leader.  One sector is read.
 */
int keel_sanlock_read_resource(struct keel_blockdev *dev, uint64_t offset, const char *name,
                               const char *resource, unsigned sector_size,
                               struct keel_sanlock_leader *l, struct keel_error *err);

/* A resource area as read from storage. */
struct keel_sanlock_resource {
    struct keel_sanlock_leader leader;
    struct keel_sanlock_request request;
    unsigned sector_size;
    uint64_t align;
    uint64_t ndblocks;                        /* leader.num_hosts */
    struct keel_sanlock_dblock *dblocks;      /* dblocks[i]: host id i + 1 */
    struct keel_sanlock_mode_block *modes;    /* modes[i]: host id i + 1 */
};

/*
 * Read a whole resource area at `offset` in one I/O and check it as a
 * paxos acquire does: the leader (names as for read_resource, num_hosts
 * within the geometry), the request record, every dblock of num_hosts
 * (a bad one is KEEL_E_CHECKSUM naming its sector).  sector_size / align:
 * expected, or 0 to take the leader's.  On success *res owns its arrays:
 * free them with keel_sanlock_resource_release().
 */
int keel_sanlock_read_resource_area(struct keel_blockdev *dev, uint64_t offset,
                                    const char *name, const char *resource,
                                    unsigned sector_size, uint64_t align,
                                    struct keel_sanlock_resource *res, struct keel_error *err);
/* Free what read_resource_area allocated; NULL and a zeroed struct are accepted. */
void keel_sanlock_resource_release(struct keel_sanlock_resource *res);

#endif /* KEEL_METADATA_SANLOCK_FMT_H */
