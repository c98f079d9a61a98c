/*
 * libFuzzer target: sanlock leader records (metadata/sanlock_fmt.c), read
 * from ids and leases areas any host may have written.  A record that
 * decodes encodes to a record that decodes to the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/sanlock_fmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const struct keel_sanlock_leader *a, const struct keel_sanlock_leader *b)
{
    return a->magic == b->magic && a->version == b->version && a->flags == b->flags &&
           a->sector_size == b->sector_size && a->num_hosts == b->num_hosts &&
           a->max_hosts == b->max_hosts && a->owner_id == b->owner_id &&
           a->owner_generation == b->owner_generation && a->lver == b->lver &&
           strcmp(a->space_name, b->space_name) == 0 &&
           strcmp(a->resource_name, b->resource_name) == 0 && a->timestamp == b->timestamp &&
           a->io_timeout == b->io_timeout && a->write_id == b->write_id &&
           a->write_generation == b->write_generation && a->write_timestamp == b->write_timestamp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t magics[] = { KEEL_SANLOCK_DELTA_MAGIC, KEEL_SANLOCK_PAXOS_MAGIC };
    unsigned char sector[512] = { 0 }, again[512] = { 0 };

    memcpy(sector, data, size < sizeof(sector) ? size : sizeof(sector));
    for (size_t i = 0; i < 2; i++) {
        struct keel_error err = KEEL_ERROR_INIT;
        struct keel_sanlock_leader l, l2;

        if (keel_sanlock_leader_decode(sector, magics[i], "fuzz", &l, &err) != 0)
            continue;
        keel_sanlock_leader_encode(&l, again);
        if (keel_sanlock_leader_decode(again, magics[i], "fuzz", &l2, &err) != 0 || !same(&l, &l2))
            abort();
    }
    return 0;
}
