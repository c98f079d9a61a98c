/*
 * sanlock's on-disk lease records, written and read by Keel itself
 * (../shared/specs/sanlock-leases.md section 5; sanlock 3.8.5 as Debian 12
 * ships it).  All integers are little-endian; records are encoded and
 * decoded field by field, never cast from a buffer.
 *
 *   leader record   200 bytes at the start of a sector: one per host in a
 *                   lockspace (delta leases), one per resource (paxos)
 *   request record  sector 1 of a resource
 *   dblock          sector 2 + (host_id - 1) of a resource
 *
 * The area initialisers write what `sanlock direct init -s` and `-r` write,
 * byte for byte (tests/unit/test_sanlock_fmt.c compares with sanlock's
 * own output): a lockspace of one alignment unit, and a resource of one
 * alignment unit.  The lease algorithms (acquire, renew, paxos) are the
 * SPM's and build on these records.
 */
#ifndef KEEL_METADATA_SANLOCK_FMT_H
#define KEEL_METADATA_SANLOCK_FMT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"

#define KEEL_SANLOCK_DELTA_MAGIC 0x12212010u
#define KEEL_SANLOCK_DELTA_VERSION 0x00030004u
#define KEEL_SANLOCK_PAXOS_MAGIC 0x06152010u
#define KEEL_SANLOCK_PAXOS_VERSION 0x00060004u
#define KEEL_SANLOCK_REQUEST_MAGIC 0x08292011u
#define KEEL_SANLOCK_REQUEST_VERSION 0x00010001u
#define KEEL_SANLOCK_NAME_LEN 48
#define KEEL_SANLOCK_LEADER_SIZE 200
#define KEEL_SANLOCK_CHECKSUM_OFFSET 168
#define KEEL_SANLOCK_IO_TIMEOUT 10   /* VDSM's io_timeout, written into delta leases */

struct keel_sanlock_leader {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;            /* alignment flag 0x10/0x20/0x40/0x80 */
    uint32_t sector_size;
    uint64_t num_hosts;
    uint64_t max_hosts;
    uint64_t owner_id;
    uint64_t owner_generation;
    uint64_t lver;
    char space_name[KEEL_SANLOCK_NAME_LEN + 1];    /* NUL-terminated copy */
    char resource_name[KEEL_SANLOCK_NAME_LEN + 1];
    uint64_t timestamp;
    uint32_t checksum;
    uint16_t io_timeout;
    uint64_t write_id;
    uint64_t write_generation;
    uint64_t write_timestamp;
};

/* CRC-32C (Castagnoli) as sanlock uses it: seed ~1, no final xor. */
uint32_t keel_sanlock_crc(const void *data, size_t len);

/* The alignment flag for align bytes (1, 2, 4, 8 MiB), or 0 when invalid. */
uint32_t keel_sanlock_align_flag(uint64_t align);
/* Hosts a lockspace / resource of this geometry holds (2000, 250, ...). */
uint64_t keel_sanlock_max_hosts(unsigned sector_size, uint64_t align);

/* Encode into buf[0..200) (the rest of the sector is the caller's); the
 * checksum is computed and stored. */
void keel_sanlock_leader_encode(const struct keel_sanlock_leader *l, unsigned char *buf);

/*
 * Decode and check a leader: magic (delta or paxos as `magic` says),
 * major version, checksum.  Errors name `what` (e.g. "ids sector 3").
 */
int keel_sanlock_leader_decode(const unsigned char *buf, uint32_t magic, const char *what,
                               struct keel_sanlock_leader *l, struct keel_error *err);

/*
 * Initialise a lockspace named `name` at `offset` of dev: one alignment
 * unit of delta lease records, record 1 committed last (its magic is 0 in
 * the first write, as sanlock does, so that a half-done init never looks
 * valid).  sector_size 512 or 4096, align 1..8 MiB.
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

/* Read and check the delta lease of host_id (1-based) of lockspace `name`. */
int keel_sanlock_read_delta(struct keel_blockdev *dev, uint64_t offset, const char *name,
                            uint64_t host_id, unsigned sector_size,
                            struct keel_sanlock_leader *l, struct keel_error *err);

/* Read and check the leader of resource `resource` of lockspace `name`. */
int keel_sanlock_read_resource(struct keel_blockdev *dev, uint64_t offset, const char *name,
                               const char *resource, unsigned sector_size,
                               struct keel_sanlock_leader *l, struct keel_error *err);

#endif /* KEEL_METADATA_SANLOCK_FMT_H */
