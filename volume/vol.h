/*
 * Volumes and images of a storage domain, in oVirt's V5 format
 * (../shared/specs/ovirt-storage-format.md sections 3.3, 4.4, 5).
 *
 * A volume is one layer of a disk: raw or qcow2 ("COW"), preallocated or
 * sparse, with its metadata (vol_md.h) and its sanlock lease.  An image is
 * the chain of volumes of one disk (image.h).
 *
 *   file   images/<img>/<vol>, <vol>.meta, <vol>.lease
 *   block  LV <vol> tagged IU_<img> PU_<parent> MD_<slot>; the metadata in
 *          slot <slot> of the metadata LV; the lease in the leases LV at
 *          (100 + slot) x alignment
 *
 * Invariants of creation (a crash at any step leaves no LEGAL volume that
 * is not complete; keel_vol_list reports what is left over):
 *   1. the payload exists before the metadata, and the metadata is written
 *      ILLEGAL first: a payload without metadata (file), an LV still tagged
 *      OVIRT_VOL_INITIALIZING (VDSM's block leftover; Keel's block create
 *      writes payload and ILLEGAL slot before the one commit that makes the
 *      LV, see vol_block.c), or ILLEGAL metadata is a leftover;
 *   2. the payload is complete (qcow2 header, backing reference, size)
 *      before the metadata says LEGAL, which is the last write;
 *   3. a parent becomes INTERNAL before its child is LEGAL; deleting the
 *      last child of a parent makes it LEAF again.
 *
 * State diagram of a new volume:
 *
 *   (none) --payload--> orphan payload --md ILLEGAL--> ILLEGAL
 *          --lease, parent INTERNAL--> ILLEGAL --md LEGAL--> LEGAL (LEAF)
 *
 * All functions change the domain: only its SPM may call them on a domain
 * of a pool (see sd.h).
 */
#ifndef KEEL_VOLUME_VOL_H
#define KEEL_VOLUME_VOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "metadata/vol_md.h"
#include "volume/sd.h"

#define KEEL_VOL_TAG_INITIALIZING "OVIRT_VOL_INITIALIZING"
#define KEEL_VOL_RESERVED_LEASES 100
/* VDSM's default allocation for a sparse qcow2 block volume (MiB). */
#define KEEL_VOL_BLOCK_CHUNK (UINT64_C(2560) << 20)

struct keel_vol_create {
    const char *image;              /* imgUUID (required) */
    const char *uuid;               /* volUUID; NULL: a new one */
    enum keel_vol_format format;
    enum keel_vol_type type;        /* PREALLOCATED or SPARSE */
    uint64_t capacity;              /* bytes; rounded up to 4 KiB as VDSM does */
    const char *parent;             /* parent volUUID or NULL for a base volume */
    const char *description;        /* NULL: "" */
    const char *disktype;           /* NULL: "DATA" */
    uint64_t initial_size;          /* block sparse qcow2: LV size hint; 0: VDSM's default */
    bool illegal;                   /* leave it ILLEGAL (a copy target, made LEGAL later);
                                       its parent may be ILLEGAL too (a copy target) */
    bool shared;                    /* a template volume (VOLTYPE=SHARED) */
};

/* Create a volume; *uuid_out (may be NULL) gets its UUID. */
int keel_vol_create(struct keel_sd *sd, const struct keel_vol_create *c,
                    char uuid_out[KEEL_UUID_LEN + 1], struct keel_error *err);

enum keel_vol_status {
    KEEL_VOL_OK,             /* metadata readable, LEGAL (or a FAKE template) */
    KEEL_VOL_STATUS_ILLEGAL, /* being created, being deleted, or a copy not finished */
    KEEL_VOL_LEFTOVER,       /* a payload without metadata, an LV still initialising */
    KEEL_VOL_REMOVED,        /* marked for removal (_remove_me_) */
    KEEL_VOL_BAD,            /* metadata unreadable: see problem */
};

struct keel_vol_entry {
    char uuid[KEEL_UUID_LEN + 1];
    char image[KEEL_UUID_LEN + 1];  /* the image it belongs to (IU_ tag / directory) */
    enum keel_vol_status status;
    char problem[160];              /* why a volume is LEFTOVER or BAD */
    bool has_md;
    struct keel_vol_md md;
    uint64_t size;                  /* file size or LV size, bytes */
    uint64_t allocated;             /* bytes in use (file) or LV size */
    int slot;                       /* block metadata slot, -1 on file */
};

struct keel_vol_list {
    size_t n;
    struct keel_vol_entry *v;
};

/*
 * Every volume of the domain, leftovers included, sorted by image then
 * volume UUID.  A template's hard links in other image directories are
 * listed once, under the template's own image.
 */
int keel_vol_list(struct keel_sd *sd, struct keel_vol_list *out, struct keel_error *err);
void keel_vol_list_release(struct keel_vol_list *l);
/* The entry of volume vol in l (borrowed), or NULL. */
const struct keel_vol_entry *keel_vol_list_find(const struct keel_vol_list *l, const char *vol);

/* One volume; KEEL_E_NOENT when it does not exist. */
int keel_vol_info(struct keel_sd *sd, const char *vol, struct keel_vol_entry *out,
                  struct keel_error *err);

/*
 * Delete a volume (and its image directory when that was its last volume).
 * Refused when other volumes have it as parent; a SHARED volume only with
 * force.  Works on leftovers too (that is how they are cleaned up).
 */
int keel_vol_delete(struct keel_sd *sd, const char *vol, bool force, struct keel_error *err);

/*
 * Make parent a LEAF again when it is INTERNAL and has no child volume
 * left: what a delete does last, for the journal's recovery of a delete
 * that stopped before it.  Nothing when parent does not exist.
 */
int keel_vol_settle_parent(struct keel_sd *sd, const char *parent, struct keel_error *err);

/*
 * Grow a volume's capacity (the size the guest sees): the qcow2 virtual
 * size or the raw file / LV, and the metadata.
 */
int keel_vol_extend(struct keel_sd *sd, const char *vol, uint64_t capacity,
                    struct keel_error *err);

/*
 * Grow the LV of a block volume to `size` bytes (rounded up to extents),
 * the capacity unchanged: what the SPM does when a thin qcow2 volume
 * fills up.  KEEL_E_INVAL on file domains and for a smaller size.
 */
int keel_vol_extend_lv(struct keel_sd *sd, const char *vol, uint64_t size,
                       struct keel_error *err);

/* Set the legality (LEGAL after a verified copy, ILLEGAL before deleting). */
int keel_vol_set_legality(struct keel_sd *sd, const char *vol, enum keel_vol_legality l,
                          struct keel_error *err);

/*
 * Open the volume's payload as a block device view: the bytes
 * [offset, offset + size) of dev.
 *   file domains: the file through keel_fs, offset 0;
 *   block, an LV of one segment: the LUN (borrowed from the domain),
 *     offset the LV's start on it;
 *   block, an LV of several segments (extended, or larger than a free
 *     run, possibly on several LUNs): a linear device over them
 *     (io/linear.h), owned by p, offset 0.
 * size is the file's or the LV's size.  Writes go through the domain's
 * LUN devices either way, so their fences apply.  The caller closes p
 * with keel_vol_payload_close, before the domain; the LUNs must stay open
 * until then.
 */
struct keel_vol_payload {
    struct keel_blockdev *dev;      /* owned on file domains and when linear, else borrowed */
    struct keel_file *file;         /* file domains */
    struct keel_blockdev *linear;   /* block, several segments: dev, owned */
    uint64_t offset, size;
};
int keel_vol_payload_open(struct keel_sd *sd, const char *vol, struct keel_vol_payload *p,
                          struct keel_error *err);
void keel_vol_payload_close(struct keel_vol_payload *p);

/*
 * Open the volume's lease area, the same way (close with
 * keel_vol_payload_close): <vol>.lease on file domains (offset 0), the
 * leases LV at (100 + slot) x alignment on block domains.  The lease is
 * the sanlock resource named by the volume UUID in the lockspace named by
 * the domain UUID (spm/lease.h takes it): its holder may change this
 * volume's own metadata (legality) without being SPM.
 */
int keel_vol_lease_open(struct keel_sd *sd, const char *vol, struct keel_vol_payload *p,
                        struct keel_error *err);

#endif /* KEEL_VOLUME_VOL_H */
