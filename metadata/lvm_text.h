/*
 * struct keel_lvm_text: a VG's metadata text, formatted again at every
 * change without formatting again what did not change.
 *
 * keel_lvm_text_format() gives, byte for byte, the text and checksum that
 * keel_lvm_vg_validate() + keel_lvm_vg_format() + keel_lvm_crc() give for
 * the same VG, description, host and time, and refuses what they refuse.
 * It keeps, for every LV it formatted, a deep copy of that LV, its text
 * and the fact that it validated; an LV of the next VG reuses them only
 * when it equals the copy in every field (keel_lvm_lv_equal()), so the
 * cache needs no invalidation: whoever changes the VG, in place or in a
 * copy, a changed LV is formatted and validated again.  What is redone
 * for the whole VG is cheap and has no formatting: the comparison, the
 * segment and extent checks, and the copy of the pieces into one buffer.
 *
 * The checksum is joined from pieces: crc(head), then the CRC of the LV
 * texts in text order (kept as running values, so an appended LV costs
 * its own bytes only; a change at position k re-reads the texts after k),
 * shifted by keel_lvm_crc_zeros(), then the tail.
 *
 * Cost per change: O(head + tail + changed LVs' text) formatting, O(LVs)
 * comparisons, O(text) memcpy.  Memory: one copy of each LV and its text.
 * An owner that edits one VG in place and knows what it changed (struct
 * keel_lvm_store) skips the comparisons: keel_lvm_text_format_changed().
 *
 * Not thread-safe; the owner (struct keel_lvm_store) serialises calls.
 */
#ifndef KEEL_METADATA_LVM_TEXT_H
#define KEEL_METADATA_LVM_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "metadata/lvm_vg.h"

struct keel_lvm_text;

/* An empty cache, or NULL when out of memory.  Free with keel_lvm_text_free(). */
struct keel_lvm_text *keel_lvm_text_new(void);
void keel_lvm_text_free(struct keel_lvm_text *t);

/*
 * Validate vg and format it into t's buffer (see the top).  On failure the
 * error is keel_lvm_vg_validate()'s for the same VG, or KEEL_E_NOMEM, and
 * t's cache is as before (its last text is gone).
 */
int keel_lvm_text_format(struct keel_lvm_text *t, const struct keel_lvm_vg *vg,
                         const char *description, const char *host, uint64_t now,
                         struct keel_error *err);

/*
 * keel_lvm_text_format() for an owner that edits vg in place: vg is the VG
 * of t's last successful call, and since then only the LV at index
 * `changed` (SIZE_MAX: none) was changed in place; LVs may have been
 * appended, or removed from the array with the others moved down, and the
 * VG's own fields changed.  The other LVs are then taken as unchanged
 * when they still have the name, tags and segments pointers they had (a
 * pointer check, not a comparison).  When vg is not that VG, or the last
 * call failed, it is keel_lvm_text_format().  The owner must call
 * keel_lvm_text_format() instead whenever it cannot name what changed
 * (after a failed commit whose edit it undid, after re-reading the VG).
 */
int keel_lvm_text_format_changed(struct keel_lvm_text *t, const struct keel_lvm_vg *vg,
                                 size_t changed, const char *description, const char *host,
                                 uint64_t now, struct keel_error *err);

/*
 * The last text formatted: *len bytes with the NUL, and its lvm2 CRC.  The
 * buffer is 4096-aligned and zero from *len up to the next multiple of
 * 4096; borrowed from t, valid until the next keel_lvm_text_format() or
 * keel_lvm_text_free().
 */
const char *keel_lvm_text_get(const struct keel_lvm_text *t, size_t *len, uint32_t *crc);

/* Of the last keel_lvm_text_format(): LV texts reused, and formatted (for tests). */
void keel_lvm_text_stats(const struct keel_lvm_text *t, size_t *reused, size_t *formatted);

#endif /* KEEL_METADATA_LVM_TEXT_H */
