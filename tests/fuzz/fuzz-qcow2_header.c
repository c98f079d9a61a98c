/*
 * libFuzzer target: qcow2 headers (volume/qcow2.c), read from volumes any
 * host or guest-facing tool may have written.  A header that decodes
 * re-encodes (size, version, backing file and format) to a header that
 * decodes to the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "volume/qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char cluster[65536];
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_qcow2_info a, b;
    struct keel_qcow2_opts o;

    if (size > sizeof(cluster))
        size = sizeof(cluster);
    memset(cluster, 0, sizeof(cluster));
    memcpy(cluster, data, size);
    if (keel_qcow2_header_decode(cluster, sizeof(cluster), &a, &err) != 0)
        return 0;
    o = (struct keel_qcow2_opts){ .size = a.size, .version = a.version,
                                  .backing_file = a.backing_file[0] ? a.backing_file : NULL,
                                  .backing_format = a.backing_format[0] ? a.backing_format
                                                                        : "raw" };
    if (keel_qcow2_header_encode(&o, cluster, &err) != 0)
        return 0;
    if (keel_qcow2_header_decode(cluster, sizeof(cluster), &b, &err) != 0 || b.size != a.size ||
        b.version != a.version || strcmp(b.backing_file, a.backing_file) != 0)
        abort();
    return 0;
}
