/*
 * libFuzzer target: the xleases index (metadata/xleases.c).  An index that
 * parses encodes back (metadata block and records) to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/xleases.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct keel_xleases_index idx;
    static unsigned char buf[KEEL_XLEASES_INDEX_SIZE];
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char m[KEEL_XLEASES_META_SIZE], r[KEEL_XLEASES_RECORD_SIZE];

    memset(buf, 0, sizeof(buf));
    /* Small inputs stand for the start; the rest is a valid empty index. */
    keel_xleases_meta_encode("fuzz", 0, false, buf);
    for (size_t i = 0; i < KEEL_XLEASES_MAX_RECORDS; i++) {
        struct keel_xleases_record e = { .id = "" };

        keel_xleases_record_encode(&e, buf + KEEL_XLEASES_META_SIZE + i * KEEL_XLEASES_RECORD_SIZE);
    }
    memcpy(buf, data, size < sizeof(buf) ? size : sizeof(buf));
    if (keel_xleases_parse(buf, sizeof(buf), &idx, &err) != 0)
        return 0;
    keel_xleases_meta_encode(idx.lockspace, idx.mtime, idx.updating, m);
    if (memcmp(m, buf, sizeof(m)) != 0)
        abort();
    for (size_t i = 0; i < KEEL_XLEASES_MAX_RECORDS; i++) {
        keel_xleases_record_encode(&idx.records[i], r);
        if (memcmp(r, buf + KEEL_XLEASES_META_SIZE + i * KEEL_XLEASES_RECORD_SIZE, sizeof(r)) != 0)
            abort();
    }
    return 0;
}
