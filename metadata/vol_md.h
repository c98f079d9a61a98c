/*
 * struct keel_vol_md: the metadata of one volume in oVirt's form
 * (../shared/specs/ovirt-storage-format.md section 5.1-5.2, 4.4).
 *
 * Text: "KEY=VALUE\n" lines sorted by key, then "EOF\n", at most 512 bytes.
 *   file domains   <volUUID>.meta, exactly the text (no padding)
 *   block domains  a slot of the metadata LV, NUL-padded to 512 bytes:
 *                  V5 slot N at 1 MiB + N x 8 KiB, V4 slot N at N x 512
 *
 * V5 keys: CAP CTIME DESCRIPTION DISKTYPE DOMAIN FORMAT GEN IMAGE LEGALITY
 * PUUID SEQ TYPE VOLTYPE.  V4 writes SIZE (512-byte sectors) and MTIME=0
 * instead of CAP and no SEQ.  Reading accepts both (CAP wins over SIZE),
 * ignores unknown keys, and recognises the cleared form VDSM < 4.2.5 wrote
 * on deletion ("NONE=###...").
 */
#ifndef KEEL_METADATA_VOL_MD_H
#define KEEL_METADATA_VOL_MD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/uuid.h"

#define KEEL_VOL_MD_SIZE 512             /* the most a volume's metadata may take */
#define KEEL_VOL_MD_DESCRIPTION_MAX 210  /* VDSM truncates descriptions to this */
#define KEEL_VOL_MD_V5_AREA (UINT64_C(1) << 20)
#define KEEL_VOL_MD_V5_SLOT_SIZE 8192

enum keel_vol_format { KEEL_VOL_RAW, KEEL_VOL_COW };
enum keel_vol_type { KEEL_VOL_PREALLOCATED, KEEL_VOL_SPARSE, KEEL_VOL_TYPE_UNKNOWN };
enum keel_vol_role { KEEL_VOL_LEAF, KEEL_VOL_INTERNAL, KEEL_VOL_SHARED };
enum keel_vol_legality { KEEL_VOL_LEGAL, KEEL_VOL_ILLEGAL, KEEL_VOL_FAKE };

struct keel_vol_md {
    bool cleared;                       /* the legacy "NONE=####" form: nothing else is set */
    uint64_t capacity;                  /* bytes (CAP, or SIZE x 512) */
    uint64_t ctime;
    char description[KEEL_VOL_MD_DESCRIPTION_MAX + 1];
    char disktype[16];                  /* DATA, OVFS, ISOF, MEMD, ... or legacy "2" */
    char domain[KEEL_UUID_LEN + 1];
    enum keel_vol_format format;
    unsigned gen;                       /* 0..999 */
    char image[KEEL_UUID_LEN + 1];
    enum keel_vol_legality legality;
    char parent[KEEL_UUID_LEN + 1];     /* KEEL_BLANK_UUID for a base volume */
    uint32_t seq;
    enum keel_vol_type type;
    enum keel_vol_role role;            /* VOLTYPE */
};

const char *keel_vol_format_name(enum keel_vol_format f);     /* "RAW", "COW" */
const char *keel_vol_type_name(enum keel_vol_type t);         /* "PREALLOCATED", ... */
const char *keel_vol_role_name(enum keel_vol_role r);         /* "LEAF", ... */
const char *keel_vol_legality_name(enum keel_vol_legality l); /* "LEGAL", ... */

/*
 * Parse metadata text (len bytes; trailing NULs of a block slot are
 * ignored).  Every key but GEN and SEQ is required (CAP may come from
 * SIZE).  Errors (KEEL_E_FORMAT) name the key and value:
 *   "volume metadata: missing EOF", "volume metadata: FORMAT=\"QCOW\" is
 *   not RAW or COW", "volume metadata: IMAGE is missing".
 * A slot that is all NULs is KEEL_E_NOENT "volume metadata: empty".
 */
int keel_vol_md_parse(const char *text, size_t len, struct keel_vol_md *md,
                      struct keel_error *err);

/*
 * Write md in the given version's form (4 or 5) into buf[0..cap), NUL
 * terminated; *len gets the text length.  KEEL_E_RANGE "volume metadata
 * overflow" past 512 bytes; KEEL_E_INVAL for a field that cannot be
 * written (a newline in the description, V4 capacity not a multiple of
 * 512, ...).
 */
int keel_vol_md_format(const struct keel_vol_md *md, unsigned version, char *buf, size_t cap,
                       size_t *len, struct keel_error *err);

/* The same, NUL-padded to exactly 512 bytes: the block slot form. */
int keel_vol_md_format_slot(const struct keel_vol_md *md, unsigned version,
                            unsigned char slot[KEEL_VOL_MD_SIZE], struct keel_error *err);

/* Byte offset of metadata slot n in the metadata LV, and the first usable slot. */
uint64_t keel_vol_md_slot_offset(unsigned version, unsigned slot);
unsigned keel_vol_md_first_slot(unsigned version);

#endif /* KEEL_METADATA_VOL_MD_H */
