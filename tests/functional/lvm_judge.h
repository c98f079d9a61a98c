/*
 * lvm2 as the judge of what Keel says a VG is.  The LUN backing files are
 * attached to loop devices (the harness's, autocleared) and the real lvm2
 * commands (vgs, lvs, pvs, vgck, pvck) are run on exactly those devices.
 */
#ifndef KEEL_TESTS_FUNCTIONAL_LVM_JUDGE_H
#define KEEL_TESTS_FUNCTIONAL_LVM_JUDGE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "metadata/lvm_vg.h"

#define LVM_JUDGE_MAX 8

struct lvm_judge {
    size_t n;
    char *files[LVM_JUDGE_MAX];
    char *loops[LVM_JUDGE_MAX];
};

/* Attach every file (the backing files of a VG's LUNs). */
int lvm_judge_attach(struct lvm_judge *j, const char *const *files, size_t n,
                     struct keel_error *err);
void lvm_judge_detach(struct lvm_judge *j);

/* Run an lvm command on the judge's devices; stdout in *out (caller frees). */
int lvm_judge_run(struct lvm_judge *j, const char *const argv[], char **out,
                  struct keel_error *err);

/*
 * Compare what lvm2 reports of the VG with vg: seqno, tags, extent size and
 * counts, every PV (pe_start, pe_count, used flag) and every LV segment
 * (name, size, start, PE ranges on the right device, tags as a set).  Then
 * vgck (rc 0 and no warning) and pvck --dump headers (no CHECK: line) on
 * every device.  On a difference, err tells what lvm2 said and Keel did not.
 */
int lvm_judge_agrees(struct lvm_judge *j, const struct keel_lvm_vg *vg, struct keel_error *err);

/*
 * Just the seqno lvm2 reads for the VG, after vgck says it is sound: status
 * 0 and no message but those of stale areas (an interrupted commit may
 * leave some areas a seqno behind; a damaged area fails).
 */
int lvm_judge_seqno(struct lvm_judge *j, const char *vg_name, unsigned *seqno,
                    struct keel_error *err);

#endif /* KEEL_TESTS_FUNCTIONAL_LVM_JUDGE_H */
