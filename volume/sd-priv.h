/*
 * Internals of struct keel_sd shared by sd.c, sd_file.c, sd_block.c and
 * sd_areas.c (and the tests).  See sd.h.
 */
#ifndef KEEL_VOLUME_SD_PRIV_H
#define KEEL_VOLUME_SD_PRIV_H

#include "volume/sd.h"

struct keel_sd {
    bool block;
    struct keel_sd_md md;
    struct keel_sd_info info;      /* strings borrowed from md */
    /* file domains */
    struct keel_fs *fs;            /* borrowed */
    char root[KEEL_UUID_LEN + 1];  /* "<sdUUID>", relative to the fs root */
    /* block domains */
    struct keel_blockdev **devs;   /* array owned, devices borrowed */
    size_t ndevs;
    struct keel_lvm_store *vg;     /* owned */
    keel_sd_step_fn *step_fn;      /* keel_sd_set_step_hook */
    void *step_opaque;
};

/* A new keel_sd taking md over (md is left empty); info decoded from it. */
int keel_sd_new_from_md(struct keel_sd_md *md, struct keel_sd **ret, struct keel_error *err);

/* Where one special area lives: a device and a byte range on it. */
struct keel_sd_area {
    struct keel_blockdev *dev;     /* a file's block view, or the LUN */
    uint64_t offset, size;
};

/*
 * Initialise the sanlock areas as VDSM does at creation (section 7): the
 * lockspace <sdUUID> over one alignment unit of ids, the SDM resource at
 * leases offset 1 x alignment (slot 0 zero).  The areas must be at least
 * as large as their contents.
 */
int keel_sd_init_leases(const struct keel_sd_area *ids, const struct keel_sd_area *leases,
                        const char *sd_uuid, unsigned block_size, uint64_t alignment,
                        struct keel_error *err);
/* Format the xleases index (section 7.3). */
int keel_sd_format_xleases(const struct keel_sd_area *xleases, const char *sd_uuid,
                           uint64_t alignment, struct keel_error *err);

/* A file of a file domain seen as a block device of 512-byte blocks. */
struct keel_sd_file_view {
    struct keel_file *file;
    struct keel_sd_area area;      /* the file's block view, offset 0, its size */
};

/*
 * Open path with flags (mode 0660 when created), grow or cut it to `size`
 * first when size > 0, and open its block view.
 */
int keel_sd_view_open(struct keel_fs *fs, const char *path, unsigned flags, uint64_t size,
                      struct keel_sd_file_view *v, struct keel_error *err);
/* Flush the view, fsync and close the file; the first error wins. */
int keel_sd_view_close(struct keel_sd_file_view *v, struct keel_error *err);

/*
 * The LV `name` of a block domain as a byte range on its LUN: its first
 * segment (where metadata slots live), or, with whole, the LV only if it
 * is that one segment.  Linear LVs only.  A volume's payload, which may
 * have several segments, is opened with keel_vol_payload_open (vol.h).
 */
int keel_sd_lv_area(struct keel_lvm_store *st, const char *name, bool whole,
                    struct keel_sd_area *a, struct keel_error *err);
/* metadata, ids, leases, inbox, outbox, xleases, master, keel_journal. */
bool keel_sd_is_special_lv(const char *name);
/* This host's name for LVM's creation_host (gethostname, else "keel"). */
const char *keel_sd_host_name(char *buf, size_t cap);

/* The kind-specific halves of sd.h's functions (sd_file.c, sd_block.c). */
int keel_sd_write_md_file(struct keel_sd *sd, const struct keel_sd_md *md,
                          struct keel_error *err);
int keel_sd_write_md_block(struct keel_sd *sd, const struct keel_sd_md *md,
                           struct keel_error *err);
int keel_sd_format_file(struct keel_sd *sd, struct keel_error *err);
int keel_sd_format_block(struct keel_sd *sd, struct keel_error *err);

/* Bytes an xleases area needs right after formatting (index slot only). */
uint64_t keel_sd_xleases_initial_size(uint64_t alignment);

#endif /* KEEL_VOLUME_SD_PRIV_H */
