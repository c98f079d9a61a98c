/*
 * libFuzzer target: LVM2 text metadata (metadata/lvm_cfg.c, lvm_vg.c),
 * read from LUNs that any host or tool may have written.  Beyond "no
 * crash": a text that parses formats to a text that parses to the same
 * seqno, LV count and extents.
 */
#include <stdint.h>
#include <stdlib.h>

#include "metadata/lvm_vg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_vg *vg = NULL, *vg2 = NULL;
    char *text = NULL;
    size_t len = 0;

    if (keel_lvm_vg_parse((const char *)data, size, &vg, &err) != 0)
        return 0;
    if (keel_lvm_vg_format(vg, "fuzz", "fuzz", 1, &text, &len, &err) != 0)
        abort();
    if (keel_lvm_vg_parse(text, len, &vg2, &err) != 0)
        abort();
    if (vg2->seqno != vg->seqno || vg2->nlvs != vg->nlvs ||
        keel_lvm_vg_free_extents(vg2) != keel_lvm_vg_free_extents(vg))
        abort();
    keel_lvm_vg_free(vg2);
    keel_lvm_vg_free(vg);
    free(text);
    return 0;
}
