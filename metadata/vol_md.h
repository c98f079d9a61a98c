/*
 * struct keel_vol_md: the metadata of one volume in oVirt's form
 * (../shared/specs/ovirt-storage-format.md: section 5.1 keys, 5.2 text,
 * 4.4 block slots, 1 what differs between V4 and V5).
 *
 * Text: "KEY=VALUE\n" lines sorted by key, then "EOF\n", at most 512 bytes,
 * UTF-8.  Where it is kept:
 *   file domains   images/<imgUUID>/<volUUID>.meta, the text alone (no padding)
 *   block domains  a slot of the "metadata" LV, the text NUL-padded to 512 bytes:
 *                  V5 slot N at 1 MiB + N x 8 KiB (first usable slot 1),
 *                  V4 slot N at N x 512 (slots 0-3 reserved, first usable 4)
 *
 * Example, V5 (section 5.2, [observed]; byte for byte what VDSM writes):
 *
 *   CAP=1073741824
 *   CTIME=1700000000
 *   DESCRIPTION={"DiskAlias":"vm1_Disk1","DiskDescription":""}
 *   DISKTYPE=DATA
 *   DOMAIN=5f2d0c9e-3b6e-4c43-9c1a-1f6f0f0a0d01
 *   FORMAT=COW
 *   GEN=0
 *   IMAGE=22222222-aaaa-4aaa-8aaa-000000000002
 *   LEGALITY=LEGAL
 *   PUUID=11111111-bbbb-4bbb-8bbb-000000000001
 *   SEQ=0
 *   TYPE=SPARSE
 *   VOLTYPE=INTERNAL
 *   EOF
 *
 * V4 (and V3) write SIZE in 512-byte sectors instead of CAP, MTIME=0, and
 * no SEQ: "CTIME DESCRIPTION DISKTYPE DOMAIN FORMAT GEN IMAGE LEGALITY
 * MTIME=0 PUUID SIZE=2097152 TYPE VOLTYPE EOF".  Old V4 text may also carry
 * "POOL_UUID=" (ignored).
 *
 * Forms and the functions between them:
 *
 *     V4 text --parse--\                         /--format(4)--> V4 text
 *     V5 text --parse---> struct keel_vol_md ----+--format(5)--> V5 text
 *     slot    --parse--/   (cleared: no text)     \--format_slot--> slot
 *
 * Invariants (kept by keel_vol_md_format, relied on by readers):
 *   1. The text is at most KEEL_VOL_MD_SIZE bytes.  Longer text is refused
 *      ("volume metadata overflow"), never cut: on V4 block domains it would
 *      spill into the next volume's slot, and every reader reads 512 bytes.
 *   2. Keys are sorted and EOF comes last, so Keel writes the same bytes as
 *      VDSM for the same volume (section 5.2) and parse(format(md)) == md.
 *   3. A slot is always written whole, padded with NULs: readers strip
 *      trailing NULs only, so no tail of an older, longer text may survive.
 *   4. Every value reads back as written: no newline or CR, no leading or
 *      trailing white space (readers strip it), UUIDs in lower case.
 *
 * Reading is as lenient as VDSM where VDSM accepts (section 1, "what a
 * reader must do"): CAP or else SIZE x 512 (CAP wins when both are there),
 * GEN and SEQ default to 0, MTIME, POOL_UUID and unknown keys are ignored, a
 * repeated key keeps its last value, an over-long DESCRIPTION is cut to 210
 * characters (VDSM cuts too).  It is stricter where VDSM would only fail
 * later: the "EOF" line is required (a torn write), UUIDs, enumerations and
 * numbers are checked.
 *
 * Ownership: struct keel_vol_md is a plain value with no pointers; copy it
 * with struct assignment.  Nothing here allocates, logs or locks; every
 * function may be called from any thread on its own buffers.
 */
#ifndef KEEL_METADATA_VOL_MD_H
#define KEEL_METADATA_VOL_MD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/uuid.h"

#define KEEL_VOL_MD_SIZE 512             /* the most the text may take; one block slot */
#define KEEL_VOL_MD_DESCRIPTION_MAX 210  /* characters (code points), not bytes */
#define KEEL_VOL_MD_DISKTYPE_MAX 15      /* bytes; VDSM's values have 1 to 4 */
#define KEEL_VOL_MD_V5_AREA (UINT64_C(1) << 20)  /* V5 slots start at 1 MiB of the LV */
#define KEEL_VOL_MD_V5_SLOT_SIZE 8192            /* of which the first 512 bytes are used */

enum keel_vol_format { KEEL_VOL_RAW, KEEL_VOL_COW };
enum keel_vol_type { KEEL_VOL_PREALLOCATED, KEEL_VOL_SPARSE, KEEL_VOL_TYPE_UNKNOWN };
enum keel_vol_role { KEEL_VOL_LEAF, KEEL_VOL_INTERNAL, KEEL_VOL_SHARED };
enum keel_vol_legality { KEEL_VOL_LEGAL, KEEL_VOL_ILLEGAL, KEEL_VOL_FAKE };

struct keel_vol_md {
    /*
     * The legacy cleared form "NONE=###...\nEOF\n" that VDSM < 4.2.5 wrote
     * when it deleted a volume: the volume is partly deleted.  Then every
     * other field is zero except legality, which is KEEL_VOL_ILLEGAL so a
     * caller that forgets to look here still sees a volume it must not use.
     */
    bool cleared;
    uint64_t capacity;                  /* bytes (CAP, or SIZE x 512); >= 1 */
    uint64_t ctime;                     /* seconds since the epoch */
    /* UTF-8, NUL-terminated, <= 210 characters; the 512-byte text bounds its bytes */
    char description[KEEL_VOL_MD_SIZE];
    char disktype[KEEL_VOL_MD_DISKTYPE_MAX + 1]; /* DATA, OVFS, ISOF, ..., legacy "2" */
    char domain[KEEL_UUID_LEN + 1];     /* sdUUID */
    enum keel_vol_format format;
    unsigned gen;                       /* 0..999 */
    char image[KEEL_UUID_LEN + 1];      /* imgUUID */
    enum keel_vol_legality legality;
    char parent[KEEL_UUID_LEN + 1];     /* PUUID; KEEL_BLANK_UUID for a base volume */
    uint32_t seq;                       /* V5 only; 0 when read from V4 */
    enum keel_vol_type type;
    enum keel_vol_role role;            /* VOLTYPE */
};

/* The on-disk names ("RAW", "PREALLOCATED", "LEAF", "LEGAL"...); NULL out of range. */
const char *keel_vol_format_name(enum keel_vol_format f);
const char *keel_vol_type_name(enum keel_vol_type t);
const char *keel_vol_role_name(enum keel_vol_role r);
const char *keel_vol_legality_name(enum keel_vol_legality l);

/*
 * Parse metadata text: a .meta file or a 512-byte slot (trailing NULs are
 * ignored).  text need not be NUL-terminated.  *md is written only on
 * success; the cleared form is a success with md->cleared set.
 *
 * Lines up to the first one starting with "EOF" must be UTF-8 without NUL;
 * lines without '=' are skipped; a line splits at its first '='; key and
 * value lose leading and trailing white space.  Every key but GEN and SEQ
 * is required (CAP may come from SIZE).
 *
 * Errors, all "volume metadata: <reason>":
 *   KEEL_E_NOENT   "empty" (nothing but NULs: a slot never written)
 *   KEEL_E_FORMAT  "missing EOF", "missing IMAGE", "unknown FORMAT \"QCOW\"",
 *                  "invalid PUUID \"not-a-uuid\"", "invalid CAP \"0\"",
 *                  "invalid UTF-8 in DESCRIPTION", "NUL byte in line 3",
 *                  "600 bytes, more than 512"
 */
int keel_vol_md_parse(const char *text, size_t len, struct keel_vol_md *md,
                      struct keel_error *err);

/*
 * Write md in the form of domain version 4 or 5 into buf[0..cap), NUL
 * terminated; *len (when len is not NULL) gets the text length without the
 * NUL.  buf and *len are written only on success.
 *
 * Errors:
 *   KEEL_E_RANGE  "volume metadata overflow: 514 bytes, at most 512";
 *                 "volume metadata: buffer of 100 bytes is too small"
 *   KEEL_E_INVAL  a field that cannot be written so that it reads back:
 *                 "volume metadata: cleared metadata cannot be written",
 *                 "volume metadata: capacity 1000 is not a multiple of 512 (V4)",
 *                 "volume metadata: invalid IMAGE \"...\"", "... DESCRIPTION ...",
 *                 "volume metadata: no version 3 form"
 */
int keel_vol_md_format(const struct keel_vol_md *md, unsigned version, char *buf, size_t cap,
                       size_t *len, struct keel_error *err);

/*
 * The same, NUL-padded to exactly KEEL_VOL_MD_SIZE bytes: the block slot
 * form.  slot is written only on success.
 */
int keel_vol_md_format_slot(const struct keel_vol_md *md, unsigned version,
                            unsigned char slot[KEEL_VOL_MD_SIZE], struct keel_error *err);

/* True when a and b describe the same metadata (every field, cleared included). */
bool keel_vol_md_equal(const struct keel_vol_md *a, const struct keel_vol_md *b);

/*
 * Byte offset of metadata slot n in the metadata LV (version >= 5:
 * 1 MiB + n x 8 KiB; below: n x 512), and the first slot a volume may use
 * (1 for V5, 4 below).  The caller checks the offset against the LV size.
 */
uint64_t keel_vol_md_slot_offset(unsigned version, unsigned slot);
unsigned keel_vol_md_first_slot(unsigned version);

#endif /* KEEL_METADATA_VOL_MD_H */
