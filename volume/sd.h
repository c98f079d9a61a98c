/*
 * struct keel_sd: a storage domain in oVirt's V5 format, on a file system
 * (NFS export or POSIX directory) or on LUNs (an LVM2 VG).
 * ../shared/specs/ovirt-storage-format.md sections 2-4, 7, 10.2.
 *
 *   file   <root>/<sdUUID>/dom_md/{metadata,ids,leases,xleases,inbox,outbox,
 *                                  keel_journal}
 *          <root>/<sdUUID>/images/
 *   block  VG <sdUUID> (128 MiB extents, tags MDT_* and RHAT_storage_domain)
 *          LVs metadata ids inbox outbox leases xleases master keel_journal
 *
 * Creation writes what VDSM writes, in an order chosen so that a crash
 * never leaves something that looks like a finished domain (invariants
 * below); keel_sd_open reads either kind back, including domains oVirt
 * made (V3-V5).
 *
 * Invariants of creation:
 *   1. file: dom_md/metadata is written after every special file exists and
 *      xleases is formatted; the sanlock areas are initialised after it
 *      (VDSM's order).  A tree without metadata is not a domain: open
 *      refuses it and names it as left over.
 *   2. block: the VG is born with the tag RHAT_storage_domain_UNREADY and
 *      all special LVs in one commit; the MDT_ tags follow; only after the
 *      special LVs are initialised (zeroed areas, xleases, master file
 *      system, sanlock areas) does one last commit swap UNREADY for
 *      RHAT_storage_domain.  A VG still tagged UNREADY is not a domain.
 *
 * State diagram of a block domain's VG tags:
 *
 *   (no VG) --create_vg--> {UNREADY} --write_md--> {UNREADY, MDT_*}
 *     --init areas-- --mark_ready--> {RHAT_storage_domain, MDT_*}
 *
 * Ownership: a keel_sd borrows its file system or devices (they must
 * outlive it) and owns everything else.  Not thread-safe.  Only the SPM may
 * change a domain that belongs to a pool; until leases exist (the SPM
 * issue) callers must make sure nothing else writes it.
 */
#ifndef KEEL_VOLUME_SD_H
#define KEEL_VOLUME_SD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/uuid.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "metadata/lvm_store.h"
#include "metadata/sd_md.h"

struct keel_sd;

/* Sizes of the special areas (section 3.2, 4.2, 9). */
#define KEEL_SD_MAILBOX_SIZE (UINT64_C(16) << 20)      /* file inbox/outbox */
#define KEEL_SD_EXTENT_SIZE (UINT64_C(128) << 20)      /* block domains */
#define KEEL_SD_MIN_BLOCK_SIZE (UINT64_C(10) << 30)    /* VDSM's minimum for a VG */
#define KEEL_SD_MD_LV_ZEROED (UINT64_C(17) << 20)      /* metadata LV zeroed at creation */
#define KEEL_SD_MAILBOX_ZEROED UINT64_C(1024000)       /* first bytes of block mailboxes */
#define KEEL_SD_JOURNAL "keel_journal"

struct keel_sd_create {
    const char *uuid;            /* NULL: a new random one */
    const char *name;            /* DESCRIPTION; at most 50 characters on block */
    enum keel_sd_type type;      /* NFS, POSIXFS, LOCALFS; ISCSI or FCP for block */
    enum keel_sd_class klass;    /* data, iso, export(backup) */
    const char *remote_path;     /* file: REMOTE_PATH ("server:/export", "/srv/data") */
    const char *const *pv_guids; /* block: the device id of each LUN (PVn "pv:" value) */
};

/*
 * Create a file domain in the directory the file system's URL names.
 * Refused when that directory already holds a domain (any "<x>/dom_md").
 */
int keel_sd_create_file(struct keel_fs *fs, const struct keel_sd_create *c,
                        struct keel_sd **ret, struct keel_error *err);

/*
 * Create a block domain on the LUNs devs[0..ndevs) (together at least
 * 10 GiB).  Everything on the LUNs is overwritten.
 */
int keel_sd_create_block(struct keel_blockdev *const *devs, size_t ndevs,
                         const struct keel_sd_create *c, struct keel_sd **ret,
                         struct keel_error *err);

/*
 * Open the file domain sd_uuid under the file system's root; sd_uuid NULL
 * opens the only domain there (refused when there are none or several).
 */
int keel_sd_open_file(struct keel_fs *fs, const char *sd_uuid, struct keel_sd **ret,
                      struct keel_error *err);

/*
 * Open the block domain on devs (the LUN that holds the VG metadata is
 * enough to read it; changes need every LUN).  sd_uuid NULL: the VG found.
 */
int keel_sd_open_block(struct keel_blockdev *const *devs, size_t ndevs, const char *sd_uuid,
                       struct keel_sd **ret, struct keel_error *err);

void keel_sd_close(struct keel_sd *sd);

/* The typed metadata and the raw map; borrowed from sd. */
const struct keel_sd_info *keel_sd_info(const struct keel_sd *sd);
const struct keel_sd_md *keel_sd_md(const struct keel_sd *sd);
bool keel_sd_is_block(const struct keel_sd *sd);

struct keel_sd_space {
    uint64_t capacity;   /* bytes */
    uint64_t free;
};

/* Capacity and free space: the file system's, or the VG's extents. */
int keel_sd_space(struct keel_sd *sd, struct keel_sd_space *ret, struct keel_error *err);

/* The domain's file system and root directory ("<sdUUID>"); NULL on block. */
struct keel_fs *keel_sd_fs(const struct keel_sd *sd);
const char *keel_sd_root(const struct keel_sd *sd);
/* The VG of a block domain; NULL on file. */
struct keel_lvm_store *keel_sd_vg(const struct keel_sd *sd);

/*
 * Add a LUN to a block domain (pvcreate + vgextend), with its device id
 * for the PV map keys.
 */
int keel_sd_extend(struct keel_sd *sd, struct keel_blockdev *dev, const char *pv_guid,
                   struct keel_error *err);

/*
 * Replace the domain metadata (a changed copy of keel_sd_md(sd)) durably:
 * file: metadata.new + rename; block: one VG commit of the MDT_ tags.
 */
int keel_sd_write_md(struct keel_sd *sd, const struct keel_sd_md *md, struct keel_error *err);

/*
 * Destroy the domain: file: remove the whole <sdUUID> tree; block: remove
 * the VG's LVs and wipe the PV labels.  sd is closed by the call.
 */
int keel_sd_format(struct keel_sd *sd, struct keel_error *err);

/*
 * Multi-step operations report each step boundary to a hook, which is how
 * the SPM's journal (spm/journal.h) records its intent before the first
 * write and its end after the last.  A hook that fails stops the
 * operation before its next step.
 *
 *   volume.create  0 placed (nothing written; block: slot chosen)
 *                  1 payload and ILLEGAL metadata written (block: and the lease)
 *                  2 block: the LV committed with its tags
 *                  3 lease written   4 parent INTERNAL, flushed
 *                  5 done: LEGAL written (or left ILLEGAL as asked)
 *   volume.delete  0 found   1 ILLEGAL written   2 payload/LV removed
 *                  3 done: the parent a LEAF again when it was the last child
 *   volume.extend  0 checked   1 payload grown (qcow2 header, LV or file)
 *                  2 done: the new capacity in the metadata
 */
enum keel_sd_opkind {
    KEEL_SD_OP_VOL_CREATE,
    KEEL_SD_OP_VOL_DELETE,
    KEEL_SD_OP_VOL_EXTEND,
};

struct keel_sd_op {
    enum keel_sd_opkind kind;
    unsigned step;
    bool done;                          /* the last step */
    char vol[KEEL_UUID_LEN + 1];
    char image[KEEL_UUID_LEN + 1];
    char parent[KEEL_UUID_LEN + 1];     /* KEEL_BLANK_UUID for none */
    int slot;                           /* block metadata slot; -1 on file */
    bool illegal;                       /* create: stays ILLEGAL when done */
    uint64_t capacity;                  /* extend: the new capacity */
};

typedef int keel_sd_step_fn(void *opaque, const struct keel_sd_op *op, struct keel_error *err);

/* Install (or with NULL remove) the step hook of sd. */
void keel_sd_set_step_hook(struct keel_sd *sd, keel_sd_step_fn *fn, void *opaque);
/* Report a step boundary to the hook (0 when there is none). */
int keel_sd_step(struct keel_sd *sd, struct keel_sd_op *op, unsigned step, bool done,
                 struct keel_error *err);

/*
 * The domain's keel_journal area as a byte range of at least `size`
 * bytes: the keel_journal LV on block domains, dom_md/keel_journal on
 * file domains (grown to size when smaller: a write).  Close with
 * keel_sd_region_close().
 */
struct keel_sd_region {
    struct keel_blockdev *dev;   /* owned on file domains, borrowed on block */
    struct keel_file *file;      /* file domains */
    uint64_t offset, size;
};
int keel_sd_journal_open(struct keel_sd *sd, uint64_t size, struct keel_sd_region *r,
                         struct keel_error *err);
void keel_sd_region_close(struct keel_sd_region *r);
/*
 * The sanlock area "ids" (the lockspace) or "leases" (SDM at 1 x
 * alignment, volume leases) as a region: the whole LV on block domains,
 * dom_md/<name> opened O_SYNC on file domains.  Close with
 * keel_sd_region_close().
 */
int keel_sd_lock_area_open(struct keel_sd *sd, const char *name, struct keel_sd_region *r,
                           struct keel_error *err);

/* Domain UUIDs under a file system's root (dirs holding dom_md/metadata). */
int keel_sd_list_file(struct keel_fs *fs, char ***uuids, size_t *n, struct keel_error *err);

#endif /* KEEL_VOLUME_SD_H */
