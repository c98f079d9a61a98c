/*
 * struct keel_lvm_store: an LVM2 volume group on block devices (LUNs),
 * read and written by Keel itself through io/, byte-compatible with lvm2.
 * ../shared/specs/lvm2-format.md; the invariants of a commit are at the top
 * of lvm_store.c.
 *
 *   keel_lvm_store_create(devs, n, "vgname", 128 MiB, tags, ...)  pvcreate + vgcreate
 *   keel_lvm_store_open(devs, n, "vgname", ...)                   read the VG
 *   keel_lvm_store_lv_create(s, "lv", size, tags, ...)            one change = one commit
 *   keel_lvm_store_refresh(s, &changed, ...)                      re-read if the seqno moved
 *
 * Reading needs one device with a good metadata area; changing the VG
 * needs the devices of all its PVs.  Every change is validated (no PE used
 * twice, segments inside their PVs, names and tags) before anything is
 * written, and is written in lvm's order: new text into the free part of
 * every metadata area in use, flush, then each area's header, flush.  A
 * crash at any point leaves every area with the old or the new VG.
 *
 * The devices are borrowed: they must outlive the store.  A store is not
 * thread-safe; one writer (the SPM) per VG.
 */
#ifndef KEEL_METADATA_LVM_STORE_H
#define KEEL_METADATA_LVM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"
#include "metadata/lvm_vg.h"

/* Where a new PV puts its metadata areas. */
struct keel_lvm_layout {
    uint64_t mda_size;        /* bytes asked for; 0: lvm's default (pe_start at 1 MiB) */
    unsigned mda_copies;      /* 1, or 2 (a second area at the end of the device) */
    uint64_t data_alignment;  /* bytes; 0: 1 MiB */
};

/* pvcreate's defaults: one ~1 MiB area. */
#define KEEL_LVM_LAYOUT_DEFAULT ((struct keel_lvm_layout){ 0, 1, 0 })
/* VDSM's: pvcreate --metadatasize 128m --metadatacopies 2. */
#define KEEL_LVM_LAYOUT_OVIRT ((struct keel_lvm_layout){ UINT64_C(128) << 20, 2, 0 })

struct keel_lvm_create_opts {
    struct keel_lvm_layout layout;
    const char *const *vg_flags;  /* e.g. "NOAUTOACTIVATE" (vgcreate --setautoactivation n) */
    size_t nvg_flags;
    const char *host;             /* creation_host of LVs and the trailer; NULL: gethostname */
};

struct keel_lvm_store;

/*
 * Make every device a PV (with `layout`; the metadata areas of all but the
 * first device are marked ignored, as VDSM does) and write a new VG with
 * seqno 1.  extent_size in bytes (a power of two, at least 1 MiB).
 */
int keel_lvm_store_create(struct keel_blockdev *const *devs, size_t ndevs, const char *vg_name,
                          uint64_t extent_size, const char *const *tags, size_t ntags,
                          const struct keel_lvm_create_opts *opts, struct keel_lvm_store **ret,
                          struct keel_error *err);

/*
 * Read the VG named vg_name (NULL: the one found) from the devices.  A
 * metadata area that is damaged or older than the others is reported in
 * the warnings and the newest valid copy wins, as lvm does; nothing is
 * written.  Fails when no area holds a valid copy, naming the device and
 * area: "iscsi://...: metadata area at 4096: metadata text checksum
 * mismatch".
 */
int keel_lvm_store_open(struct keel_blockdev *const *devs, size_t ndevs, const char *vg_name,
                        const char *host, struct keel_lvm_store **ret, struct keel_error *err);

void keel_lvm_store_close(struct keel_lvm_store *s);

/*
 * The committed VG as last read or written; borrowed from s, and valid
 * only until the next change or refresh, failed or not (a change may
 * re-read the VG, and edits it in place): pass copies of its strings, not
 * pointers into it, to the change functions.
 */
const struct keel_lvm_vg *keel_lvm_store_vg(const struct keel_lvm_store *s);

/*
 * Re-read the metadata area headers; when the committed copy moved (the
 * seqno changed), re-read and parse the text.  *changed tells which.
 */
int keel_lvm_store_refresh(struct keel_lvm_store *s, bool *changed, struct keel_error *err);

/* How many times metadata text was read from storage (for tests). */
unsigned keel_lvm_store_text_reads(const struct keel_lvm_store *s);
/* Warnings of the last read: areas that disagree, stale or damaged. */
const struct keel_lvm_strlist *keel_lvm_store_warnings(const struct keel_lvm_store *s);
/* Bytes of the committed text (with its NUL), and the smallest maximum. */
size_t keel_lvm_store_text_size(const struct keel_lvm_store *s);
uint64_t keel_lvm_store_text_max(const struct keel_lvm_store *s);

/*
 * Write vg (taken over: freed by the call) as the next seqno.  It must be a
 * changed copy of keel_lvm_store_vg(s) (keel_lvm_vg_dup() + lvm_edit.h).
 * Refused, and nothing written, when the VG on storage moved since it was
 * read (KEEL_E_BUSY), when a PV's device is missing, when a metadata area
 * in use is damaged, when the text does not fit or does not validate.
 */
int keel_lvm_store_commit(struct keel_lvm_store *s, struct keel_lvm_vg *vg,
                          const char *description, struct keel_error *err);

/* Add a device to the VG (pvcreate with ignored metadata areas + commit). */
int keel_lvm_store_extend(struct keel_lvm_store *s, struct keel_blockdev *dev,
                          struct keel_error *err);

/* One change, one commit (size in bytes, rounded up to whole extents). */
int keel_lvm_store_lv_create(struct keel_lvm_store *s, const char *name, uint64_t size,
                             const char *const *tags, size_t ntags, struct keel_error *err);
int keel_lvm_store_lv_resize(struct keel_lvm_store *s, const char *name, uint64_t size,
                             struct keel_error *err);
int keel_lvm_store_lv_remove(struct keel_lvm_store *s, const char *name, struct keel_error *err);
int keel_lvm_store_lv_rename(struct keel_lvm_store *s, const char *name, const char *new_name,
                             struct keel_error *err);
int keel_lvm_store_lv_tags(struct keel_lvm_store *s, const char *name, const char *const *add,
                           size_t nadd, const char *const *del, size_t ndel,
                           struct keel_error *err);
int keel_lvm_store_vg_tags(struct keel_lvm_store *s, const char *const *add, size_t nadd,
                           const char *const *del, size_t ndel, struct keel_error *err);

/*
 * The device holding the PV at index pv of the VG, or NULL when it was not
 * given; and where an LV's extent lives: byte offset on that device.
 */
struct keel_blockdev *keel_lvm_store_pv_dev(const struct keel_lvm_store *s, uint32_t pv);
uint64_t keel_lvm_store_pe_offset(const struct keel_lvm_store *s, uint32_t pv, uint64_t pe);

#endif /* KEEL_METADATA_LVM_STORE_H */
