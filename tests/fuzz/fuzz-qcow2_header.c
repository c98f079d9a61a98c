/*
 * libFuzzer target: qcow2 headers (volume/qcow2.c), read from volumes any
 * host or guest-facing tool may have written.  The input is the start of
 * the first cluster, decoded in a buffer of exactly its length (so that
 * ASan sees any read past it).  A header that decodes and that Keel could
 * have written (size in sectors, a backing format qemu accepts) re-encodes
 * to a header that decodes to the same size, version, backing file and
 * format.
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
    unsigned char *in;

    if (size > sizeof(cluster))
        size = sizeof(cluster);
    in = malloc(size ? size : 1);
    if (in == NULL)
        return 0;
    memcpy(in, data, size);
    if (keel_qcow2_header_decode(in, size, &a, &err) != 0) {
        free(in);
        return 0;
    }
    free(in);
    o = (struct keel_qcow2_opts){ .size = a.size, .version = a.version,
                                  .backing_file = a.backing_file[0] ? a.backing_file : NULL,
                                  .backing_format = a.backing_format[0] ? a.backing_format
                                                                        : "raw" };
    if (keel_qcow2_header_encode(&o, cluster, &err) != 0)
        return 0;
    if (keel_qcow2_header_decode(cluster, sizeof(cluster), &b, &err) != 0 || b.size != a.size ||
        b.version != a.version || strcmp(b.backing_file, a.backing_file) != 0 ||
        (o.backing_file != NULL && strcmp(b.backing_format, o.backing_format) != 0) ||
        (o.backing_file == NULL && b.backing_format[0] != '\0'))
        abort();
    return 0;
}
