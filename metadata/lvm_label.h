/*
 * LVM2's binary on-disk records: the label sector with the PV header and
 * its extension, and the metadata area (mda) header with its raw_locn
 * slots; plus the arithmetic of the mda's circular text buffer.
 * ../shared/specs/lvm2-format.md sections 1-5.
 *
 * These are pure functions on 512-byte buffers: decode checks magic,
 * version, bounds and checksum and fails with a named error; encode
 * computes the checksum.  All integers on disk are little-endian.
 */
#ifndef KEEL_METADATA_LVM_LABEL_H
#define KEEL_METADATA_LVM_LABEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "metadata/lvm_id.h"

#define KEEL_LVM_SECTOR 512
#define KEEL_LVM_LABEL_SCAN 4         /* the label may sit in sectors 0..3 */
#define KEEL_LVM_MAX_AREAS 8
#define KEEL_LVM_PV_EXT_USED 0x1u
#define KEEL_LVM_RAW_LOCN_IGNORED 0x1u
#define KEEL_LVM_MDA_MAGIC " LVM2 x[5A%r0N*>"

struct keel_lvm_area {
    uint64_t offset; /* bytes from the start of the device */
    uint64_t size;   /* bytes; 0 for a data area means "to the end" */
};

/* The label sector: label_header + pv_header + pv_header_extension. */
struct keel_lvm_pvh {
    uint64_t sector;                 /* the sector the label sits in (1) */
    char pv_id[KEEL_LVM_ID_LEN + 1]; /* raw form */
    uint64_t device_size;            /* bytes, when the header was written */
    size_t nda;
    struct keel_lvm_area da[KEEL_LVM_MAX_AREAS];  /* data areas: lvm writes one {pe_start, 0} */
    size_t nmda;
    struct keel_lvm_area mda[KEEL_LVM_MAX_AREAS]; /* metadata areas, at most 2 in practice */
    uint32_t ext_version;            /* 2 */
    uint32_t ext_flags;              /* KEEL_LVM_PV_EXT_USED once in a VG */
    size_t nba;
    struct keel_lvm_area ba[KEEL_LVM_MAX_AREAS];  /* bootloader areas */
};

/*
 * Decode the label in sec, read from sector number sector_no.  Errors:
 * KEEL_E_MAGIC when there is no "LABELONE"/"LVM2 001" label (not a PV),
 * KEEL_E_CHECKSUM, KEEL_E_CORRUPT (wrong sector number, lists that run off
 * the sector, a bad id).
 */
int keel_lvm_pvh_decode(const uint8_t sec[KEEL_LVM_SECTOR], uint64_t sector_no,
                        struct keel_lvm_pvh *ret, struct keel_error *err);
/* Encode h into sec (the whole sector is written; unused bytes zero). */
int keel_lvm_pvh_encode(const struct keel_lvm_pvh *h, uint8_t sec[KEEL_LVM_SECTOR],
                        struct keel_error *err);

struct keel_lvm_rlocn {
    uint64_t offset;   /* bytes from the start of the mda */
    uint64_t size;     /* bytes of text including the NUL */
    uint32_t checksum; /* lvm CRC of the text */
    uint32_t flags;    /* KEEL_LVM_RAW_LOCN_IGNORED */
};

struct keel_lvm_mdah {
    uint64_t start;                 /* absolute byte offset of the mda */
    uint64_t size;                  /* bytes, header sector included */
    struct keel_lvm_rlocn slot[2];  /* [0] committed, [1] precommitted */
};

/*
 * Decode an mda header.  expect_start is where the PV header says the mda
 * is.  Errors: KEEL_E_CHECKSUM, KEEL_E_MAGIC, KEEL_E_VERSION, KEEL_E_CORRUPT
 * (start mismatch, size, slots out of bounds).
 */
int keel_lvm_mdah_decode(const uint8_t sec[KEEL_LVM_SECTOR], uint64_t expect_start,
                         struct keel_lvm_mdah *ret, struct keel_error *err);
void keel_lvm_mdah_encode(const struct keel_lvm_mdah *h, uint8_t sec[KEEL_LVM_SECTOR]);

/* The largest text (with NUL) one copy may have in an mda of this size. */
uint64_t keel_lvm_mda_max_text(uint64_t mda_size);

/* True when slot 0 of h holds no metadata (ignored or empty). */
bool keel_lvm_mdah_empty(const struct keel_lvm_mdah *h);

/*
 * Where the next copy of n bytes goes (offset from the mda start), after
 * the copy in slot 0, following lvm's rules (section 5.2).  Fails with
 * KEEL_E_NOSPC when n exceeds the maximum.
 */
int keel_lvm_mda_next_offset(const struct keel_lvm_mdah *h, uint64_t n, uint64_t *ret,
                             struct keel_error *err);

/*
 * Split a copy at offset/size of an mda of mda_size into at most two
 * pieces of the circular buffer: {offset, len} from the mda start.
 * Returns the number of pieces (1 or 2).
 */
int keel_lvm_mda_pieces(uint64_t mda_size, uint64_t offset, uint64_t size,
                        struct keel_lvm_area pieces[2]);

#endif /* KEEL_METADATA_LVM_LABEL_H */
