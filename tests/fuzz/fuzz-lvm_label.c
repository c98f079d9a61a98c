/*
 * libFuzzer target: LVM2 label sector and metadata area header decoders
 * (metadata/lvm_label.c).  What decodes must encode back to a record that
 * decodes to the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/lvm_label.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint8_t sec[KEEL_LVM_SECTOR], out[KEEL_LVM_SECTOR];
    struct keel_lvm_pvh h, h2;
    struct keel_lvm_mdah m, m2;
    uint64_t next;

    memset(sec, 0, sizeof(sec));
    memcpy(sec, data, size < sizeof(sec) ? size : sizeof(sec));
    if (keel_lvm_pvh_decode(sec, 1, &h, &err) == 0 &&
        keel_lvm_pvh_encode(&h, out, &err) == 0) {
        if (keel_lvm_pvh_decode(out, 1, &h2, &err) != 0 || h2.nmda != h.nmda ||
            h2.device_size != h.device_size || strcmp(h2.pv_id, h.pv_id) != 0)
            abort();
    }
    if (keel_lvm_mdah_decode(sec, 4096, &m, &err) == 0) {
        keel_lvm_mdah_encode(&m, out);
        if (keel_lvm_mdah_decode(out, 4096, &m2, &err) != 0 || memcmp(&m, &m2, sizeof(m)) != 0)
            abort();
        if (keel_lvm_mda_next_offset(&m, 1000, &next, &err) == 0 &&
            (next < KEEL_LVM_SECTOR || next >= m.size))
            abort();
    }
    return 0;
}
