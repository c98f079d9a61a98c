/*
 * libFuzzer target: sanlock's on-disk records (metadata/sanlock_fmt.c),
 * read from ids and leases areas any host may have written.  The input is
 * one 512-byte sector (shorter inputs are zero-padded), decoded as a
 * leader (delta, paxos, either), a request record, a dblock and a mode
 * block.  Whatever decodes must encode to a record that decodes to the
 * same fields; a leader whose names are NUL-padded, and every request and
 * dblock with a checksum, encode back to the very bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/sanlock_fmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_leader(const struct keel_sanlock_leader *a, const struct keel_sanlock_leader *b)
{
    return a->magic == b->magic && a->version == b->version && a->flags == b->flags &&
           a->sector_size == b->sector_size && a->num_hosts == b->num_hosts &&
           a->max_hosts == b->max_hosts && a->owner_id == b->owner_id &&
           a->owner_generation == b->owner_generation && a->lver == b->lver &&
           strcmp(a->space_name, b->space_name) == 0 &&
           strcmp(a->resource_name, b->resource_name) == 0 && a->timestamp == b->timestamp &&
           a->unused1 == b->unused1 && a->checksum == b->checksum && a->unused2 == b->unused2 &&
           a->io_timeout == b->io_timeout && a->write_id == b->write_id &&
           a->write_generation == b->write_generation && a->write_timestamp == b->write_timestamp;
}

/* A 48-byte name field as an encoder writes it: no byte after the first NUL. */
static int padded(const unsigned char *p)
{
    size_t n = strnlen((const char *)p, KEEL_SANLOCK_NAME_LEN);

    for (size_t i = n; i < KEEL_SANLOCK_NAME_LEN; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static void leaders(const unsigned char *sector)
{
    static const uint32_t magics[] = { KEEL_SANLOCK_DELTA_MAGIC, KEEL_SANLOCK_PAXOS_MAGIC, 0 };
    unsigned char again[KEEL_SANLOCK_LEADER_SIZE];

    for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
        struct keel_error err = KEEL_ERROR_INIT;
        struct keel_sanlock_leader l, l2;
        unsigned sec;
        uint64_t align;

        if (keel_sanlock_leader_decode(sector, magics[i], "fuzz", &l, &err) != 0) {
            if (err.code != KEEL_E_MAGIC && err.code != KEEL_E_VERSION &&
                err.code != KEEL_E_CHECKSUM)
                abort();
            continue;
        }
        keel_sanlock_leader_encode(&l, again);
        if (keel_sanlock_leader_decode(again, magics[i], "fuzz", &l2, &err) != 0)
            abort();
        /* Names lose what followed their NUL; the checksum follows. */
        if (padded(sector + 56) && padded(sector + 104)) {
            if (!same_leader(&l, &l2) || memcmp(sector, again, sizeof(again)) != 0)
                abort();
        } else {
            l2.checksum = l.checksum;
            if (!same_leader(&l, &l2))
                abort();
        }
        if (keel_sanlock_leader_geometry(&l, "fuzz", &sec, &align, &err) == 0 &&
            keel_sanlock_max_hosts(sec, align) == 0)
            abort();
    }
}

static void request(const unsigned char *sector)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sanlock_request r, r2;
    unsigned char again[KEEL_SANLOCK_REQUEST_SIZE];

    if (keel_sanlock_request_decode(sector, "fuzz", &r, &err) != 0)
        return;
    keel_sanlock_request_encode(&r, again);
    if (keel_sanlock_request_decode(again, "fuzz", &r2, &err) != 0 || r.magic != r2.magic ||
        r.version != r2.version || r.lver != r2.lver || r.force_mode != r2.force_mode)
        abort();
    /* bytes 20..23 are padding, not read */
    if (memcmp(sector, again, 20) != 0)
        abort();
}

static void dblock(const unsigned char *sector)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sanlock_dblock d, d2;
    struct keel_sanlock_mode_block m, m2;
    unsigned char again[KEEL_SANLOCK_DBLOCK_SIZE], mb[KEEL_SANLOCK_MODE_BLOCK_SIZE];
    bool empty, empty2;

    if (keel_sanlock_dblock_decode(sector, "fuzz", &d, &empty, &err) == 0) {
        keel_sanlock_dblock_encode(&d, again);
        /* The encoder always writes a checksum: an empty block gets one too. */
        if (keel_sanlock_dblock_decode(again, "fuzz", &d2, &empty2, &err) != 0 || empty2 ||
            d.mbal != d2.mbal || d.bal != d2.bal || d.inp != d2.inp || d.inp2 != d2.inp2 ||
            d.inp3 != d2.inp3 || d.lver != d2.lver || d.flags != d2.flags)
            abort();
        if (!empty && memcmp(sector, again, sizeof(again)) != 0)
            abort();
    } else if (err.code != KEEL_E_CHECKSUM) {
        abort();
    }
    keel_sanlock_mode_block_decode(sector + KEEL_SANLOCK_MODE_BLOCK_OFFSET, &m);
    keel_sanlock_mode_block_encode(&m, mb);
    keel_sanlock_mode_block_decode(mb, &m2);
    if (m.flags != m2.flags || m.generation != m2.generation)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char sector[512] = { 0 };

    memcpy(sector, data, size < sizeof(sector) ? size : sizeof(sector));
    leaders(sector);
    request(sector);
    dblock(sector);
    return 0;
}
