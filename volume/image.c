/* Images and their volume chains; see image.h. */
#include "volume/image.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"
#include "volume/qcow2.h"

void keel_chain_release(struct keel_chain *c)
{
    if (c == NULL)
        return;
    free(c->vols);
    memset(c, 0, sizeof(*c));
}

/* The backing file names parent, in the bare or the older ../img/vol form. */
static bool backing_names(const char *backing, const char *parent)
{
    const char *slash = strrchr(backing, '/');

    if (strcmp(backing, parent) == 0)
        return true;
    return slash != NULL && keel_str_has_prefix(backing, "../") && strcmp(slash + 1, parent) == 0;
}

static int check_backing(struct keel_sd *sd, const char *img, const struct keel_vol_entry *v,
                         struct keel_error *err)
{
    struct keel_vol_payload p;
    struct keel_qcow2_info qi;
    bool has_parent = strcmp(v->md.parent, KEEL_BLANK_UUID) != 0;
    int rc;

    if (v->md.format == KEEL_VOL_RAW) {
        if (has_parent)
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "image %s: raw volume %s has a parent",
                                  img, v->uuid);
        return 0;
    }
    if (keel_vol_payload_open(sd, v->uuid, &p, err) != 0)
        return keel_error_prefix(err, "image %s", img);
    rc = keel_qcow2_read_header(p.dev, p.offset, &qi, err);
    keel_vol_payload_close(&p);
    if (rc != 0)
        return keel_error_prefix(err, "image %s: volume %s", img, v->uuid);
    if (has_parent && !backing_names(qi.backing_file, v->md.parent))
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "image %s: volume %s's qcow2 backing file "
                              "is \"%s\", its parent is %s", img, v->uuid, qi.backing_file,
                              v->md.parent);
    if (!has_parent && qi.backing_file[0] != '\0')
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "image %s: base volume %s has a qcow2 "
                              "backing file \"%s\"", img, v->uuid, qi.backing_file);
    if (qi.size != v->md.capacity)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "image %s: volume %s: qcow2 size %" PRIu64
                              " but capacity %" PRIu64, img, v->uuid, qi.size, v->md.capacity);
    return 0;
}

int keel_image_chain(struct keel_sd *sd, const char *img, struct keel_chain *out,
                     struct keel_error *err)
{
    struct keel_vol_list l;
    const struct keel_vol_entry *leaf = NULL, *v;
    struct keel_chain c = { 0 };
    size_t members = 0;
    int rc = -1;

    if (!keel_uuid_valid(img))
        return keel_error_set(err, KEEL_E_INVAL, 0, "\"%s\" is not an image UUID", img);
    if (keel_vol_list(sd, &l, err) != 0)
        return -1;
    keel_strlcpy(c.image, img, sizeof(c.image));
    for (size_t i = 0; i < l.n; i++) {
        v = &l.v[i];
        if (strcmp(v->image, img) != 0 || v->status == KEEL_VOL_REMOVED)
            continue;
        members++;
        if (!v->has_md) {
            keel_error_set(err, KEEL_E_CORRUPT, 0, "image %s: volume %s: %s", img, v->uuid,
                           v->problem);
            goto out;
        }
        if (v->md.role == KEEL_VOL_LEAF ||
            (v->md.role == KEEL_VOL_SHARED && leaf == NULL && members == 1)) {
            if (leaf != NULL && leaf->md.role == KEEL_VOL_LEAF && v->md.role == KEEL_VOL_LEAF) {
                keel_error_set(err, KEEL_E_CORRUPT, 0, "image %s: two leaves, %s and %s", img,
                               leaf->uuid, v->uuid);
                goto out;
            }
            if (leaf == NULL || v->md.role == KEEL_VOL_LEAF)
                leaf = v;
        }
    }
    if (members == 0) {
        keel_error_set(err, KEEL_E_NOENT, 0, "image %s: no volumes", img);
        goto out;
    }
    if (leaf == NULL) {
        keel_error_set(err, KEEL_E_CORRUPT, 0, "image %s: no leaf volume", img);
        goto out;
    }
    /* Walk from the leaf to the base; the chain is built leaf first, then reversed. */
    c.vols = calloc(members + 1, sizeof(*c.vols));
    if (c.vols == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        goto out;
    }
    for (v = leaf;;) {
        for (size_t i = 0; i < c.n; i++)
            if (strcmp(c.vols[i].uuid, v->uuid) == 0) {
                keel_error_set(err, KEEL_E_CORRUPT, 0, "image %s: loop at volume %s", img,
                               v->uuid);
                goto out;
            }
        if (c.n > members) {
            keel_error_set(err, KEEL_E_CORRUPT, 0, "image %s: chain longer than its volumes", img);
            goto out;
        }
        if (check_backing(sd, img, v, err) != 0)
            goto out;
        c.vols[c.n++] = *v;
        if (strcmp(v->image, img) != 0) {
            c.on_template = true; /* the template's volume: the chain ends here */
            break;
        }
        if (strcmp(v->md.parent, KEEL_BLANK_UUID) == 0)
            break;
        {
            const struct keel_vol_entry *p = keel_vol_list_find(&l, v->md.parent);

            if (p == NULL || !p->has_md) {
                keel_error_set(err, KEEL_E_CORRUPT, 0, "image %s: volume %s's parent %s does "
                               "not exist", img, v->uuid, v->md.parent);
                goto out;
            }
            if (strcmp(p->image, img) != 0 && p->md.role != KEEL_VOL_SHARED) {
                keel_error_set(err, KEEL_E_CORRUPT, 0, "image %s: volume %s's parent %s is in "
                               "image %s and is not a template", img, v->uuid, p->uuid, p->image);
                goto out;
            }
            v = p;
        }
    }
    if (c.n - (c.on_template ? 1 : 0) != members) {
        for (size_t i = 0; i < l.n; i++) {
            bool in = false;

            if (strcmp(l.v[i].image, img) != 0 || l.v[i].status == KEEL_VOL_REMOVED)
                continue;
            for (size_t j = 0; j < c.n; j++)
                in |= strcmp(c.vols[j].uuid, l.v[i].uuid) == 0;
            if (!in) {
                keel_error_set(err, KEEL_E_CORRUPT, 0, "image %s: volume %s is not in the chain",
                               img, l.v[i].uuid);
                goto out;
            }
        }
    }
    for (size_t i = 0; i < c.n / 2; i++) {
        struct keel_vol_entry t = c.vols[i];

        c.vols[i] = c.vols[c.n - 1 - i];
        c.vols[c.n - 1 - i] = t;
    }
    *out = c;
    c.vols = NULL;
    rc = 0;
out:
    keel_chain_release(&c);
    keel_vol_list_release(&l);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int keel_image_list(struct keel_sd *sd, char ***imgs, size_t *n, struct keel_error *err)
{
    struct keel_vol_list l;
    char **out;
    size_t k = 0;

    if (keel_vol_list(sd, &l, err) != 0)
        return -1;
    out = calloc(l.n + 1, sizeof(*out));
    if (out == NULL) {
        keel_vol_list_release(&l);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < l.n; i++) {
        bool seen = l.v[i].image[0] == '\0' || l.v[i].status == KEEL_VOL_REMOVED;

        for (size_t j = 0; j < k && !seen; j++)
            seen = strcmp(out[j], l.v[i].image) == 0;
        if (!seen)
            out[k++] = strdup(l.v[i].image);
    }
    keel_vol_list_release(&l);
    qsort(out, k, sizeof(*out), cmp_str);
    *imgs = out;
    *n = k;
    return 0;
}

void keel_image_list_free(char **imgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(imgs[i]);
    free(imgs);
}

void keel_chain_format(const struct keel_chain *c, struct keel_strbuf *out)
{
    keel_strbuf_addf(out, "   image:    %s\n\n", c->image);
    for (size_t i = 0; i < c->n; i++) {
        const struct keel_vol_entry *v = &c->vols[i];

        keel_strbuf_addf(out, "             - %s\n", v->uuid);
        keel_strbuf_addf(out, "               status: %s, voltype: %s, format: %s, legality: %s, "
                              "type: %s, capacity: %" PRIu64 ", truesize: %" PRIu64 "\n\n",
                         v->status == KEEL_VOL_OK ? "OK" : "ILLEGAL",
                         keel_vol_role_name(v->md.role), keel_vol_format_name(v->md.format),
                         keel_vol_legality_name(v->md.legality), keel_vol_type_name(v->md.type),
                         v->md.capacity, v->allocated);
    }
}
