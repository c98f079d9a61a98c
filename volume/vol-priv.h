/*
 * Internals of volume/vol.c shared with vol_file.c and vol_block.c: what
 * each kind of domain does for the common volume logic.  See vol.h.
 */
#ifndef KEEL_VOLUME_VOL_PRIV_H
#define KEEL_VOLUME_VOL_PRIV_H

#include "volume/sd-priv.h"
#include "volume/vol.h"

/* What a create needs besides its request: the metadata to write and the parent. */
struct vol_new {
    const struct keel_vol_create *c;
    char uuid[KEEL_UUID_LEN + 1];
    struct keel_vol_md md;                /* written ILLEGAL first */
    const struct keel_vol_entry *parent;  /* NULL for a base volume */
    struct keel_sd_op op;                 /* for the step hook (sd.h) */
};

/* file domains (vol_file.c) */
int keel_vol_file_list(struct keel_sd *sd, struct keel_vol_list *l, struct keel_error *err);
int keel_vol_file_create(struct keel_sd *sd, struct vol_new *n, struct keel_error *err);
/* img_hint: the image to look in first (NULL: search every image). */
int keel_vol_file_lookup(struct keel_sd *sd, const char *img_hint, const char *vol,
                         struct keel_vol_entry *e, struct keel_error *err);
int keel_vol_file_image_used(struct keel_sd *sd, const char *img, bool *used,
                             struct keel_error *err);
/* Is there a file <vol> (or <vol>.meta) in image directory img? */
int keel_vol_file_exists_in(struct keel_sd *sd, const char *img, const char *vol, bool *there,
                            struct keel_error *err);
int keel_vol_file_write_md(struct keel_sd *sd, const char *image, const char *vol,
                           const struct keel_vol_md *md, struct keel_error *err);
int keel_vol_file_remove(struct keel_sd *sd, const struct keel_vol_entry *e,
                         struct keel_error *err);
int keel_vol_file_payload_open(struct keel_sd *sd, const struct keel_vol_entry *e,
                               struct keel_vol_payload *p, struct keel_error *err);
int keel_vol_file_lease_open(struct keel_sd *sd, const struct keel_vol_entry *e,
                             struct keel_vol_payload *p, struct keel_error *err);
int keel_vol_file_resize_raw(struct keel_sd *sd, const struct keel_vol_entry *e, uint64_t size,
                             struct keel_error *err);

/* block domains (vol_block.c) */
int keel_vol_block_list(struct keel_sd *sd, struct keel_vol_list *l, struct keel_error *err);
int keel_vol_block_create(struct keel_sd *sd, struct vol_new *n, struct keel_error *err);
int keel_vol_block_lookup(struct keel_sd *sd, const char *vol, struct keel_vol_entry *e,
                          struct keel_error *err);
int keel_vol_block_image_used(struct keel_sd *sd, const char *img, bool *used,
                              struct keel_error *err);
/* Write slot `slot`; flushed when sync (else the caller's next flush makes it durable). */
int keel_vol_block_write_md(struct keel_sd *sd, int slot, const struct keel_vol_md *md,
                            bool sync, struct keel_error *err);
/* Flush every LUN of the domain. */
int keel_vol_block_flush(struct keel_sd *sd, struct keel_error *err);
int keel_vol_block_remove(struct keel_sd *sd, const struct keel_vol_entry *e,
                          struct keel_error *err);
int keel_vol_block_payload_open(struct keel_sd *sd, const struct keel_vol_entry *e,
                                struct keel_vol_payload *p, struct keel_error *err);
int keel_vol_block_lease_open(struct keel_sd *sd, const struct keel_vol_entry *e,
                              struct keel_vol_payload *p, struct keel_error *err);
int keel_vol_block_resize_lv(struct keel_sd *sd, const struct keel_vol_entry *e, uint64_t size,
                             struct keel_error *err);

/* Append an entry to a list (copies e). */
int keel_vol_list_add(struct keel_vol_list *l, const struct keel_vol_entry *e,
                      struct keel_error *err);

#endif /* KEEL_VOLUME_VOL_PRIV_H */
