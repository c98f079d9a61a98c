/*
 * libFuzzer target: the xleases index (metadata/xleases.c), as any VDSM or
 * Keel host may have left it.  The input overlays the start of a valid
 * empty index (short inputs stand for the metadata block and the first
 * records).  An index that parses encodes back (metadata block and
 * records) to the same bytes, and every used record is found by its id.
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
    size_t used = 0;

    memset(buf, 0, sizeof(buf));
    keel_xleases_meta_encode("fuzz", 0, false, buf);
    for (size_t i = 0; i < KEEL_XLEASES_MAX_RECORDS; i++) {
        struct keel_xleases_record e = { .id = "" };

        keel_xleases_record_encode(&e, buf + KEEL_XLEASES_META_SIZE + i * KEEL_XLEASES_RECORD_SIZE);
    }
    memcpy(buf, data, size < sizeof(buf) ? size : sizeof(buf));
    if (keel_xleases_parse(buf, sizeof(buf), &idx, &err) != 0) {
        if (err.code != KEEL_E_MAGIC && err.code != KEEL_E_VERSION && err.code != KEEL_E_FORMAT)
            abort();
        return 0;
    }
    keel_xleases_meta_encode(idx.lockspace, idx.mtime, idx.updating, m);
    if (memcmp(m, buf, sizeof(m)) != 0)
        abort();
    for (size_t i = 0; i < KEEL_XLEASES_MAX_RECORDS; i++) {
        const struct keel_xleases_record *rec = &idx.records[i];
        int found;

        keel_xleases_record_encode(rec, r);
        if (memcmp(r, buf + KEEL_XLEASES_META_SIZE + i * KEEL_XLEASES_RECORD_SIZE, sizeof(r)) != 0)
            abort();
        if (rec->id[0] == '\0')
            continue;
        used++;
        /* the first record of that id, never a later one */
        found = keel_xleases_find(&idx, rec->id);
        if (found < 0 || (size_t)found > i || strcmp(idx.records[found].id, rec->id) != 0)
            abort();
    }
    if (used != idx.nused)
        abort();
    return 0;
}
