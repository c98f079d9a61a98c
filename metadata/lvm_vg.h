/*
 * struct keel_lvm_vg: an LVM2 volume group as its text metadata says, in
 * memory.  Parse it from the text lvm2 (or Keel) wrote, change it, and
 * format it back in lvm2's own layout.  ../shared/specs/lvm2-format.md §6.
 *
 * The model keeps what Keel does not interpret: status and flag words,
 * unknown keys of the VG, PV and LV sections ("extras", re-emitted as
 * read), PV device hints.  Keel writes only linear ("striped" with one
 * stripe) segments, and reads striped segments with any stripe count;
 * other segment types (thin, raid, mirror, cache...) make the VG
 * unsupported: Keel refuses to read it rather than lose them.
 *
 * Units follow the text: extent_size, dev_size and pe_start in 512-byte
 * sectors; pe_count, start_extent, extent_count and stripe PEs in extents.
 *
 * Ownership: every pointer inside a VG is owned by it; free with
 * keel_lvm_vg_free().  A VG is not thread-safe.
 */
#ifndef KEEL_METADATA_LVM_VG_H
#define KEEL_METADATA_LVM_VG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "metadata/lvm_id.h"

struct keel_strbuf;

struct keel_lvm_strlist {
    size_t n;
    char **v;
};

struct keel_lvm_stripe {
    uint32_t pv;   /* index into vg->pvs */
    uint32_t pe;   /* first physical extent on that PV */
};

struct keel_lvm_seg {
    uint32_t start_extent;
    uint32_t extent_count;
    uint32_t stripe_count;           /* 1: linear */
    uint32_t stripe_size;            /* sectors, when stripe_count > 1 */
    struct keel_lvm_strlist tags;
    struct keel_lvm_stripe *stripes; /* stripe_count entries */
};

struct keel_lvm_lv {
    char *name;
    char id[KEEL_LVM_ID_LEN + 1];
    struct keel_lvm_strlist status;  /* "READ", "WRITE", "VISIBLE", ... */
    struct keel_lvm_strlist flags;
    struct keel_lvm_strlist tags;    /* in insertion order */
    bool has_ctime;                  /* creation_time and creation_host present */
    uint64_t creation_time;
    char *creation_host;
    size_t nsegs;
    struct keel_lvm_seg *segs;       /* in logical extent order */
    struct keel_lvm_strlist extra;   /* unknown "key = value" lines */
};

struct keel_lvm_pv {
    char id[KEEL_LVM_ID_LEN + 1];
    char *device;                    /* hint from the text, or NULL */
    struct keel_lvm_strlist status;  /* "ALLOCATABLE" */
    struct keel_lvm_strlist flags;
    struct keel_lvm_strlist tags;
    bool has_dev_size;
    uint64_t dev_size;               /* sectors */
    uint64_t pe_start;               /* sectors */
    uint32_t pe_count;
    uint64_t ba_start, ba_size;      /* sectors; both 0 when absent */
    struct keel_lvm_strlist extra;
};

struct keel_lvm_vg {
    char *name;
    char id[KEEL_LVM_ID_LEN + 1];
    uint32_t seqno;
    char *format;                    /* "lvm2", or NULL when absent */
    struct keel_lvm_strlist status;  /* "RESIZEABLE", "READ", "WRITE" */
    struct keel_lvm_strlist flags;   /* e.g. "NOAUTOACTIVATE" */
    struct keel_lvm_strlist tags;
    uint32_t extent_size;            /* sectors */
    uint32_t max_lv, max_pv;
    bool has_metadata_copies;
    uint32_t metadata_copies;
    struct keel_lvm_strlist extra;
    size_t npvs;
    struct keel_lvm_pv *pvs;         /* "pv0", "pv1", ... in this order */
    size_t nlvs;
    struct keel_lvm_lv *lvs;
};

/*
 * Parse metadata text (len bytes, a NUL may end it earlier).  Checks what
 * lvm checks on read (required keys, ids, segment coverage, PE ranges,
 * overlapping PEs) and fails with KEEL_E_FORMAT, KEEL_E_CORRUPT or
 * KEEL_E_UNSUPPORTED and a message naming the VG, LV or PV.
 */
int keel_lvm_vg_parse(const char *text, size_t len, struct keel_lvm_vg **ret,
                      struct keel_error *err);

/*
 * Format vg in lvm2's on-disk layout, trailer included: the text starts
 * with "<vg> {\nid = ...\nseqno = ...", ends with "\n\n" and a NUL.
 * description and host go into the trailer; now is the creation_time of
 * the trailer (Unix seconds).  *ret is malloc'ed; *len counts the NUL.
 */
int keel_lvm_vg_format(const struct keel_lvm_vg *vg, const char *description, const char *host,
                       uint64_t now, char **ret, size_t *len, struct keel_error *err);

/*
 * Check vg before it is written: names, tags and ids valid, segments cover
 * each LV without gaps, every PE inside its PV, no PE used twice.
 */
int keel_lvm_vg_validate(const struct keel_lvm_vg *vg, struct keel_error *err);

/*
 * The pieces of keel_lvm_vg_validate(), for lvm_text.c, which validates a
 * changed VG without redoing what did not change: the VG's own fields and
 * its PVs; one LV's name (which depends on the VG's name), id and tags; the
 * segments of every LV (coverage, PVs, PE ranges, no PE used twice); and
 * unique LV names.  Together they check what keel_lvm_vg_validate() does,
 * which reports the same faults in a fixed order.
 */
int keel_lvm_vg_validate_head(const struct keel_lvm_vg *vg, struct keel_error *err);
int keel_lvm_lv_validate(const char *vg_name, const struct keel_lvm_lv *lv,
                         struct keel_error *err);
int keel_lvm_vg_validate_extents(const struct keel_lvm_vg *vg, struct keel_error *err);
int keel_lvm_vg_check_unique_names(const struct keel_lvm_vg *vg, struct keel_error *err);

/*
 * The pieces of keel_lvm_vg_format(), whose text is: head, then each LV
 * (the visible ones first, each in array order), then the tail.  The head
 * runs up to "logical_volumes {\n" (when there are LVs), the tail from
 * its closing brace to the end of the trailer (without the NUL).  One LV's
 * text depends on that LV only.  Out of memory shows in sb->failed.
 */
void keel_lvm_vg_format_head(struct keel_strbuf *sb, const struct keel_lvm_vg *vg);
void keel_lvm_lv_format(struct keel_strbuf *sb, const struct keel_lvm_lv *lv);
void keel_lvm_vg_format_tail(struct keel_strbuf *sb, const struct keel_lvm_vg *vg,
                             const char *description, const char *host, uint64_t now);
/* The LV has the VISIBLE status (lvm writes those first). */
bool keel_lvm_lv_visible(const struct keel_lvm_lv *lv);

/* A deep copy, or NULL on allocation failure. */
struct keel_lvm_vg *keel_lvm_vg_dup(const struct keel_lvm_vg *vg);
void keel_lvm_vg_free(struct keel_lvm_vg *vg);

/* The LV of that name, or NULL. */
struct keel_lvm_lv *keel_lvm_vg_find_lv(const struct keel_lvm_vg *vg, const char *name);
/* The index of the PV with that id (raw form), or -1. */
int keel_lvm_vg_find_pv(const struct keel_lvm_vg *vg, const char *pv_id);

/* Extents of an LV (sum of its segments). */
uint64_t keel_lvm_lv_extents(const struct keel_lvm_lv *lv);
/* Extents in use on the VG and free on it. */
uint64_t keel_lvm_vg_total_extents(const struct keel_lvm_vg *vg);
uint64_t keel_lvm_vg_free_extents(const struct keel_lvm_vg *vg);

/* String lists: add (copied), remove by value, find. */
int keel_lvm_strlist_add(struct keel_lvm_strlist *l, const char *s);
bool keel_lvm_strlist_remove(struct keel_lvm_strlist *l, const char *s);
bool keel_lvm_strlist_has(const struct keel_lvm_strlist *l, const char *s);
void keel_lvm_strlist_release(struct keel_lvm_strlist *l);

/* Release an LV's contents (for removal from the array). */
void keel_lvm_lv_release(struct keel_lvm_lv *lv);
/* A deep copy of src into dst (owned by the caller); on failure dst is released. */
int keel_lvm_lv_copy(struct keel_lvm_lv *dst, const struct keel_lvm_lv *src);
/* a and b are equal in every field (name, id, lists, creation, segments). */
bool keel_lvm_lv_equal(const struct keel_lvm_lv *a, const struct keel_lvm_lv *b);

#endif /* KEEL_METADATA_LVM_VG_H */
