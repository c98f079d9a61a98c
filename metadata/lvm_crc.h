/*
 * lvm2's CRC-32: the reflected CRC-32 (polynomial 0xEDB88320) seeded with
 * 0xF597A6CF, with no inversion before or after.  It chains:
 * crc(A||B) == keel_lvm_crc(keel_lvm_crc(seed, A), B).
 * ../shared/specs/lvm2-format.md section 2.
 */
#ifndef KEEL_METADATA_LVM_CRC_H
#define KEEL_METADATA_LVM_CRC_H

#include <stddef.h>
#include <stdint.h>

#define KEEL_LVM_CRC_SEED 0xF597A6CFu

uint32_t keel_lvm_crc(uint32_t seed, const void *buf, size_t len);

/*
 * keel_lvm_crc(crc, zeros, len) without the zeros, in O(log len).  It
 * joins CRCs of pieces computed apart:
 * crc(seed, A||B) == keel_lvm_crc_zeros(crc(seed, A), |B|) ^ crc(0, B).
 */
uint32_t keel_lvm_crc_zeros(uint32_t crc, uint64_t len);

#endif /* KEEL_METADATA_LVM_CRC_H */
