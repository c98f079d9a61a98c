/*
 * The lease areas of a new domain (sd-priv.h), as VDSM's creation leaves
 * them (ovirt-storage-format.md 3.2, 4.2, 7): the sanlock lockspace named
 * by the domain over one alignment unit of ids, the SDM resource at
 * leases offset 1 x alignment (slot 0 stays zero); the xleases index.
 */
#include "volume/sd-priv.h"

#include <time.h>

#include "metadata/sanlock_fmt.h"
#include "metadata/xleases.h"

uint64_t keel_sd_xleases_initial_size(uint64_t alignment)
{
    return alignment + KEEL_XLEASES_INDEX_SIZE;
}

int keel_sd_format_xleases(const struct keel_sd_area *xleases, const char *sd_uuid,
                           uint64_t alignment, struct keel_error *err)
{
    if (xleases->size < keel_sd_xleases_initial_size(alignment))
        return keel_error_set(err, KEEL_E_INTERNAL, 0, "xleases area too small");
    return keel_xleases_format(xleases->dev, xleases->offset, sd_uuid, alignment, time(NULL),
                               err);
}

int keel_sd_init_leases(const struct keel_sd_area *ids, const struct keel_sd_area *leases,
                        const char *sd_uuid, unsigned block_size, uint64_t alignment,
                        struct keel_error *err)
{
    if (ids->size < alignment || leases->size < 2 * alignment)
        return keel_error_set(err, KEEL_E_INTERNAL, 0, "lease areas too small");
    if (keel_sanlock_write_lockspace(ids->dev, ids->offset, sd_uuid, KEEL_SANLOCK_IO_TIMEOUT,
                                     block_size, alignment, err) != 0 ||
        keel_sanlock_write_resource(leases->dev, leases->offset + alignment, sd_uuid, "SDM",
                                    block_size, alignment, err) != 0 ||
        keel_blockdev_flush(leases->dev, err) != 0)
        return keel_error_prefix(err, "initialising the lease areas");
    return 0;
}
