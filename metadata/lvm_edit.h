/*
 * Changes to an LVM2 VG model (struct keel_lvm_vg) and Keel's extent
 * allocator.  These edit memory only; lvm_store.h writes the result.
 *
 * Every function either makes the whole change or leaves the VG as it was
 * (on failure err says why, naming the VG and LV).  None of them bumps the
 * seqno: the commit does.
 *
 * Allocation (lvm's "normal" policy in spirit):
 *   1. contiguous when possible: the first free run (lowest PV, lowest
 *      extent) that holds the whole request;
 *   2. otherwise the fewest segments: the largest free runs first.
 *   Extending an LV first grows its last segment into the free extents
 *   right after it, as lvextend does, then allocates the rest as above.
 * Only PVs with the ALLOCATABLE status are used.  Out of space is
 * KEEL_E_NOSPC with the numbers: "VG x: cannot allocate 10 extents for LV
 * y: 7 free".
 */
#ifndef KEEL_METADATA_LVM_EDIT_H
#define KEEL_METADATA_LVM_EDIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "metadata/lvm_vg.h"

/*
 * A new VG model with no PVs: name, fresh id, seqno 0 (the first commit
 * writes 1), extent_size in sectors, status RESIZEABLE READ WRITE, the
 * given flags (e.g. "NOAUTOACTIVATE") and tags.
 */
int keel_lvm_vg_new(const char *name, uint32_t extent_size, const char *const *flags,
                    size_t nflags, const char *const *tags, size_t ntags, struct keel_lvm_vg **ret,
                    struct keel_error *err);

/* Add a PV (sizes in sectors) as "pv<N>", ALLOCATABLE. */
int keel_lvm_vg_add_pv(struct keel_lvm_vg *vg, const char *pv_id, uint64_t dev_size,
                       uint64_t pe_start, uint32_t pe_count, struct keel_error *err);

/*
 * Create an LV of `extents` extents with tags, status READ WRITE VISIBLE,
 * creation time `now` and host `host`.
 */
int keel_lvm_lv_create(struct keel_lvm_vg *vg, const char *name, uint64_t extents,
                       const char *const *tags, size_t ntags, const char *host, uint64_t now,
                       struct keel_error *err);
/* Grow to `extents` (more than now). */
int keel_lvm_lv_extend(struct keel_lvm_vg *vg, const char *name, uint64_t extents,
                       struct keel_error *err);
/* Shrink to `extents` (fewer than now, at least 1): segments go from the end. */
int keel_lvm_lv_reduce(struct keel_lvm_vg *vg, const char *name, uint64_t extents,
                       struct keel_error *err);
int keel_lvm_lv_remove(struct keel_lvm_vg *vg, const char *name, struct keel_error *err);
int keel_lvm_lv_rename(struct keel_lvm_vg *vg, const char *name, const char *new_name,
                       struct keel_error *err);
/* Add (appended, unless present) and remove tags of an LV. */
int keel_lvm_lv_change_tags(struct keel_lvm_vg *vg, const char *name, const char *const *add,
                            size_t nadd, const char *const *del, size_t ndel,
                            struct keel_error *err);
/* The same for the VG's own tags. */
int keel_lvm_vg_change_tags(struct keel_lvm_vg *vg, const char *const *add, size_t nadd,
                            const char *const *del, size_t ndel, struct keel_error *err);

#endif /* KEEL_METADATA_LVM_EDIT_H */
