/*
 * Images: the chain of volumes of one disk (ovirt-storage-format.md 5.4).
 *
 * A chain has exactly one LEAF (the writable top); each volume's PUUID
 * leads to its parent until the blank UUID, or until a SHARED template
 * volume of another image, which is the chain's base but not part of the
 * image.  A template's own image is one SHARED volume.  Every qcow2
 * volume's backing file must name its parent (the bare UUID, or the older
 * "../<img>/<vol>" form), and a raw volume has no parent.
 */
#ifndef KEEL_VOLUME_IMAGE_H
#define KEEL_VOLUME_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "volume/vol.h"

struct keel_chain {
    char image[KEEL_UUID_LEN + 1];
    size_t n;
    struct keel_vol_entry *vols;   /* base first, leaf last */
    bool on_template;              /* vols[0] is a template of another image */
};

/*
 * Build and check the chain of image img.  Errors name the image and the
 * volume (KEEL_E_CORRUPT): "image X: two leaves, A and B", "image X:
 * volume B's qcow2 backing file is \"C\", its parent is A", "image X:
 * loop at volume A", "image X: volume C is not in the chain".
 */
int keel_image_chain(struct keel_sd *sd, const char *img, struct keel_chain *out,
                     struct keel_error *err);
void keel_chain_release(struct keel_chain *c);

/* The images of the domain (sorted); free with keel_image_list_free. */
int keel_image_list(struct keel_sd *sd, char ***imgs, size_t *n, struct keel_error *err);
void keel_image_list_free(char **imgs, size_t n);

/* The chain as vdsm-tool dump-volume-chains prints it. */
void keel_chain_format(const struct keel_chain *c, struct keel_strbuf *out);

#endif /* KEEL_VOLUME_IMAGE_H */
