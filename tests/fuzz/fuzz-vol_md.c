/*
 * libFuzzer target: volume metadata (metadata/vol_md.c), read from .meta
 * files and metadata-LV slots that any host may have written.
 *
 * Beyond "no crash", for input that parses (and is not the cleared form):
 *   1. formatting in the V5 form fails only for overflow (the input may omit
 *      GEN and SEQ, which are written) or for a CR inside the description
 *      (read leniently, never written): nothing else parse lets through is
 *      refused by format;
 *   2. the V5 text, and the V5 slot, parse back to an equal struct, and
 *      formatting that struct again gives the same bytes;
 *   3. the same for the V4 form when the capacity is whole sectors, except
 *      SEQ, which V4 does not have and reads back as 0.
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/vol_md.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const struct keel_vol_md *in, unsigned version)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md want = *in, md2;
    const struct keel_vol_md *md = &want;
    char out[KEEL_VOL_MD_SIZE + 1], out2[KEEL_VOL_MD_SIZE + 1];
    unsigned char slot[KEEL_VOL_MD_SIZE];
    size_t n, n2;

    if (version == 4)
        want.seq = 0;
    if (keel_vol_md_format(md, version, out, sizeof(out), &n, &err) != 0) {
        if (err.code != KEEL_E_RANGE && strchr(md->description, '\r') == NULL)
            abort();
        return;
    }
    if (n > KEEL_VOL_MD_SIZE || strlen(out) != n)
        abort();
    if (keel_vol_md_parse(out, n, &md2, &err) != 0 || !keel_vol_md_equal(md, &md2))
        abort();
    if (keel_vol_md_format(&md2, version, out2, sizeof(out2), &n2, &err) != 0 || n2 != n ||
        memcmp(out, out2, n) != 0)
        abort();
    if (keel_vol_md_format_slot(md, version, slot, &err) != 0 || memcmp(slot, out, n) != 0)
        abort();
    for (size_t i = n; i < KEEL_VOL_MD_SIZE; i++)
        if (slot[i] != 0)
            abort();
    if (keel_vol_md_parse((const char *)slot, sizeof(slot), &md2, &err) != 0 ||
        !keel_vol_md_equal(md, &md2))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md md;

    if (keel_vol_md_parse((const char *)data, size, &md, &err) != 0)
        return 0;
    if (md.cleared) {
        if (md.legality != KEEL_VOL_ILLEGAL || md.capacity != 0)
            abort();
        return 0;
    }
    if (md.capacity == 0 || md.gen > 999)
        abort();
    roundtrip(&md, 5);
    if (md.capacity % 512 == 0)
        roundtrip(&md, 4);
    return 0;
}
