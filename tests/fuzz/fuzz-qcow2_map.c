/*
 * libFuzzer target: qcow2 cluster mapping (volume/qcow2_map.c), read from
 * images anyone may have written.  The input is an image (header, L1 and
 * L2 tables, anywhere in it), given to the mapper through io/ as a file
 * in memory (a memfd).  Every extent it returns must be inside the
 * virtual size, non-empty, and DATA extents inside the image; at most
 * 4096 extents are walked per input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io/blockdev.h"
#include "volume/qcow2_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    struct keel_qcow2_map *m = NULL;
    size_t padded = (size + 511) / 512 * 512;
    char url[64];
    int fd;

    if (size == 0 || size > (4u << 20))
        return 0;
    fd = memfd_create("qcow2", 0);
    if (fd < 0 || ftruncate(fd, (off_t)padded) != 0 ||
        pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    snprintf(url, sizeof(url), "file:///proc/self/fd/%d", fd);
    if (keel_blockdev_open(url, NULL, &dev, &err) != 0)
        abort();
    if (keel_qcow2_map_open(dev, 0, padded, &m, &err) == 0) {
        uint64_t vsize = keel_qcow2_map_info(m)->size, pos = 0;

        for (int i = 0; i < 4096 && pos < vsize; i++) {
            struct keel_extent e;

            if (keel_qcow2_map_extent(m, pos, UINT64_C(1) << 40, &e, &err) != 0)
                break;
            if (e.guest != pos || e.len == 0 || e.guest + e.len > vsize)
                abort();
            if (e.kind == KEEL_EXTENT_DATA && e.host + e.len > padded + (UINT64_C(1) << 21))
                abort();
            pos += e.len;
        }
        keel_qcow2_map_close(m);
    }
    keel_blockdev_close(dev);
    close(fd);
    return 0;
}
