/*
 * Volumes on file domains: images/<img>/<vol>{,.meta,.lease}
 * (ovirt-storage-format.md 3.3, 5.4).  Creation order (vol.h invariants):
 * template links (a thin image on a template), the payload file (O_EXCL,
 * 0660; qcow2 header or raw size), <vol>.meta ILLEGAL (written as
 * .meta.new then renamed), <vol>.lease with its sanlock resource.
 */
#include "volume/vol-priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"
#include "metadata/sanlock_fmt.h"
#include "volume/qcow2.h"

#define REMOVED_PREFIX "_remove_me_"

static void vpath(char *buf, size_t cap, const struct keel_sd *sd, const char *img,
                  const char *vol, const char *suffix)
{
    snprintf(buf, cap, "%s/images/%s/%s%s", keel_sd_root(sd), img, vol, suffix);
}

/* Read and parse <img>/<vol>.meta; KEEL_E_NOENT when it is not there. */
static int read_md(struct keel_sd *sd, const char *img, const char *vol, struct keel_vol_md *md,
                   struct keel_error *err)
{
    char p[512], *text = NULL;
    size_t len = 0;
    int rc;

    vpath(p, sizeof(p), sd, img, vol, ".meta");
    if (keel_fs_read_file(keel_sd_fs(sd), p, 4096, &text, &len, err) != 0)
        return -1;
    rc = keel_vol_md_parse(text, len, md, err);
    free(text);
    return rc;
}

static bool has_suffix(const char *s, const char *suf)
{
    return keel_str_has_suffix(s, suf);
}

/*
 * The entry of payload file <imgdir>/<name> (imgdir may carry the
 * _remove_me_ prefix).  Fails only on I/O errors; a missing or broken
 * .meta is a status.
 */
static int file_entry(struct keel_sd *sd, const char *imgdir, const char *name,
                      struct keel_vol_entry *e, struct keel_error *err)
{
    struct keel_fs *fs = keel_sd_fs(sd);
    struct keel_error e2 = KEEL_ERROR_INIT;
    struct keel_stat st;
    bool removed = keel_str_has_prefix(imgdir, REMOVED_PREFIX);
    char p[512];

    memset(e, 0, sizeof(*e));
    e->slot = -1;
    keel_strlcpy(e->uuid, name, sizeof(e->uuid));
    keel_strlcpy(e->image, removed ? imgdir + strlen(REMOVED_PREFIX) : imgdir, sizeof(e->image));
    vpath(p, sizeof(p), sd, imgdir, name, "");
    if (keel_fs_stat(fs, p, &st, err) != 0)
        return -1;
    e->size = st.size;
    e->allocated = st.allocated;
    if (read_md(sd, imgdir, name, &e->md, &e2) == 0 && e->md.cleared) {
        e->status = removed ? KEEL_VOL_REMOVED : KEEL_VOL_LEFTOVER;
        keel_strlcpy(e->problem, "metadata cleared (an interrupted deletion)",
                     sizeof(e->problem));
    } else if (e2.code == KEEL_OK && !e->md.cleared) {
        e->has_md = true;
        e->status = removed ? KEEL_VOL_REMOVED
                    : e->md.legality == KEEL_VOL_ILLEGAL ? KEEL_VOL_STATUS_ILLEGAL
                                                         : KEEL_VOL_OK;
    } else if (e2.code == KEEL_E_NOENT) {
        e->status = removed ? KEEL_VOL_REMOVED : KEEL_VOL_LEFTOVER;
        keel_strlcpy(e->problem, "volume file without metadata (an interrupted creation)",
                     sizeof(e->problem));
    } else {
        e->status = removed ? KEEL_VOL_REMOVED : KEEL_VOL_BAD;
        keel_strlcpy(e->problem, e2.msg, sizeof(e->problem));
    }
    return 0;
}

/* The entries of one image directory. */
static int list_image(struct keel_sd *sd, const char *img, struct keel_vol_list *l,
                      struct keel_error *err)
{
    struct keel_fs *fs = keel_sd_fs(sd);
    struct keel_dirlist d = { 0 };
    char dir[512];
    bool removed = keel_str_has_prefix(img, REMOVED_PREFIX);

    snprintf(dir, sizeof(dir), "%s/images/%s", keel_sd_root(sd), img);
    if (keel_fs_readdir(fs, dir, &d, err) != 0)
        return -1;
    for (size_t i = 0; i < d.n; i++) {
        const char *name = d.names[i];
        struct keel_vol_entry e = { .slot = -1 };
        struct keel_error e2 = KEEL_ERROR_INIT;
        char p[512];
        bool payload = keel_uuid_valid(name);

        if (!payload) {
            /* A .meta without its payload is listed too (a half-deleted volume). */
            char base[64];
            bool there = false;

            if (!has_suffix(name, ".meta") || strlen(name) != KEEL_UUID_LEN + 5)
                continue;
            memcpy(base, name, KEEL_UUID_LEN);
            base[KEEL_UUID_LEN] = '\0';
            vpath(p, sizeof(p), sd, img, base, "");
            if (!keel_uuid_valid(base) || keel_fs_exists(fs, p, &there, err) != 0) {
                if (!keel_uuid_valid(base))
                    continue;
                keel_dirlist_release(&d);
                return -1;
            }
            if (there)
                continue;
            keel_strlcpy(e.uuid, base, sizeof(e.uuid));
            keel_strlcpy(e.image, removed ? img + strlen(REMOVED_PREFIX) : img, sizeof(e.image));
            e.status = removed ? KEEL_VOL_REMOVED : KEEL_VOL_BAD;
            keel_strlcpy(e.problem, "metadata without its volume file", sizeof(e.problem));
            if (read_md(sd, img, base, &e.md, &e2) == 0)
                e.has_md = true;
            if (keel_vol_list_add(l, &e, err) != 0) {
                keel_dirlist_release(&d);
                return -1;
            }
            continue;
        }
        if (file_entry(sd, img, name, &e, err) != 0) {
            keel_dirlist_release(&d);
            return -1;
        }
        if (!removed && e.has_md && strcmp(e.md.image, e.image) != 0)
            continue; /* a template hard-linked here is listed under its own image */
        if (keel_vol_list_add(l, &e, err) != 0) {
            keel_dirlist_release(&d);
            return -1;
        }
    }
    keel_dirlist_release(&d);
    return 0;
}

int keel_vol_file_list(struct keel_sd *sd, struct keel_vol_list *l, struct keel_error *err)
{
    struct keel_dirlist d = { 0 };
    char dir[512];
    int rc = 0;

    snprintf(dir, sizeof(dir), "%s/images", keel_sd_root(sd));
    if (keel_fs_readdir(keel_sd_fs(sd), dir, &d, err) != 0)
        return -1;
    for (size_t i = 0; i < d.n && rc == 0; i++) {
        const char *img = d.names[i];
        const char *u = keel_str_has_prefix(img, REMOVED_PREFIX) ? img + strlen(REMOVED_PREFIX)
                                                                 : img;

        if (keel_uuid_valid(u))
            rc = list_image(sd, img, l, err);
    }
    keel_dirlist_release(&d);
    return rc;
}

/* Look for <vol> in image directory img: *found, and its entry. */
static int lookup_in(struct keel_sd *sd, const char *img, const char *vol, bool *found,
                     struct keel_vol_entry *e, struct keel_error *err)
{
    char p[512];

    vpath(p, sizeof(p), sd, img, vol, "");
    if (keel_fs_exists(keel_sd_fs(sd), p, found, err) != 0)
        return -1;
    if (!*found)
        return 0;
    if (file_entry(sd, img, vol, e, err) != 0)
        return -1;
    /* A template's link: its own image holds the real entry. */
    if (e->has_md && strcmp(e->md.image, e->image) != 0 &&
        !keel_str_has_prefix(img, REMOVED_PREFIX)) {
        char own[KEEL_UUID_LEN + 1];

        keel_strlcpy(own, e->md.image, sizeof(own));
        vpath(p, sizeof(p), sd, own, vol, "");
        if (keel_fs_exists(keel_sd_fs(sd), p, found, err) != 0)
            return -1;
        if (*found)
            return file_entry(sd, own, vol, e, err);
        *found = true; /* the template's own image is gone: the link is what is left */
    }
    return 0;
}

int keel_vol_file_lookup(struct keel_sd *sd, const char *img_hint, const char *vol,
                         struct keel_vol_entry *e, struct keel_error *err)
{
    struct keel_dirlist d = { 0 };
    char dir[512];
    bool found = false;
    int rc = 0;

    if (img_hint != NULL && lookup_in(sd, img_hint, vol, &found, e, err) != 0)
        return -1;
    if (found)
        return 0;
    snprintf(dir, sizeof(dir), "%s/images", keel_sd_root(sd));
    if (keel_fs_readdir(keel_sd_fs(sd), dir, &d, err) != 0)
        return -1;
    for (size_t i = 0; i < d.n && !found && rc == 0; i++) {
        const char *img = d.names[i];
        const char *u = keel_str_has_prefix(img, REMOVED_PREFIX) ? img + strlen(REMOVED_PREFIX)
                                                                 : img;

        if (keel_uuid_valid(u) && (img_hint == NULL || strcmp(img, img_hint) != 0))
            rc = lookup_in(sd, img, vol, &found, e, err);
    }
    keel_dirlist_release(&d);
    if (rc != 0)
        return -1;
    if (!found)
        return keel_error_set(err, KEEL_E_NOENT, 0, "volume %s: not found on storage domain %s",
                              vol, keel_sd_info(sd)->uuid);
    return 0;
}

int keel_vol_file_exists_in(struct keel_sd *sd, const char *img, const char *vol, bool *there,
                            struct keel_error *err)
{
    char p[512];

    vpath(p, sizeof(p), sd, img, vol, "");
    if (keel_fs_exists(keel_sd_fs(sd), p, there, err) != 0)
        return -1;
    if (*there)
        return 0;
    vpath(p, sizeof(p), sd, img, vol, ".meta");
    return keel_fs_exists(keel_sd_fs(sd), p, there, err);
}

int keel_vol_file_image_used(struct keel_sd *sd, const char *img, bool *used,
                             struct keel_error *err)
{
    struct keel_dirlist d = { 0 };
    char dir[512];
    bool there = false;

    *used = false;
    snprintf(dir, sizeof(dir), "%s/images/%s", keel_sd_root(sd), img);
    if (keel_fs_exists(keel_sd_fs(sd), dir, &there, err) != 0)
        return -1;
    if (!there)
        return 0;
    if (keel_fs_readdir(keel_sd_fs(sd), dir, &d, err) != 0)
        return -1;
    for (size_t i = 0; i < d.n && !*used; i++) {
        struct keel_vol_md md;
        struct keel_error e2 = KEEL_ERROR_INIT;

        /* Its own volumes count, template links do not. */
        if (keel_uuid_valid(d.names[i]) &&
            (read_md(sd, img, d.names[i], &md, &e2) != 0 || strcmp(md.image, img) == 0))
            *used = true;
    }
    keel_dirlist_release(&d);
    return 0;
}

int keel_vol_file_write_md(struct keel_sd *sd, const char *image, const char *vol,
                           const struct keel_vol_md *md, struct keel_error *err)
{
    char text[KEEL_VOL_MD_SIZE + 1], p[512];
    size_t len;

    if (keel_vol_md_format(md, keel_sd_info(sd)->version >= 5 ? 5 : 4, text, sizeof(text), &len,
                           err) != 0)
        return -1;
    vpath(p, sizeof(p), sd, image, vol, ".meta");
    return keel_fs_write_file_atomic(keel_sd_fs(sd), p, text, len, 0660, err);
}

/* A payload file's block view (keel_sd_view_open), as a keel_vol_payload. */
static int open_view(struct keel_fs *fs, const char *path, unsigned flags, uint64_t size,
                     struct keel_vol_payload *p, struct keel_error *err)
{
    struct keel_sd_file_view v;

    memset(p, 0, sizeof(*p));
    if (keel_sd_view_open(fs, path, flags, size, &v, err) != 0)
        return -1;
    p->file = v.file;
    p->dev = v.area.dev;
    p->size = v.area.size;
    return 0;
}

static int close_view(struct keel_vol_payload *p, struct keel_error *err)
{
    struct keel_sd_file_view v = { .file = p->file, .area = { .dev = p->dev, .size = p->size } };

    memset(p, 0, sizeof(*p));
    return keel_sd_view_close(&v, err);
}

/* Hard-link the template's files into the new image (VDSM's share()). */
static int link_template(struct keel_sd *sd, const struct keel_vol_entry *t, const char *img,
                         struct keel_error *err)
{
    static const char *const suffixes[] = { "", ".meta", ".lease" };

    for (size_t i = 0; i < 3; i++) {
        char from[512], to[512];
        bool there = false;

        vpath(from, sizeof(from), sd, t->image, t->uuid, suffixes[i]);
        vpath(to, sizeof(to), sd, img, t->uuid, suffixes[i]);
        if (keel_fs_exists(keel_sd_fs(sd), to, &there, err) != 0)
            return -1;
        if (there)
            continue;
        if (keel_fs_exists(keel_sd_fs(sd), from, &there, err) != 0)
            return -1;
        if (!there && i == 2)
            continue; /* no lease (local domains) */
        if (keel_fs_link(keel_sd_fs(sd), from, to, err) != 0)
            return -1;
    }
    return 0;
}

int keel_vol_file_create(struct keel_sd *sd, struct vol_new *n, struct keel_error *err)
{
    const struct keel_vol_create *c = n->c;
    struct keel_fs *fs = keel_sd_fs(sd);
    struct keel_vol_payload p;
    char dir[512], path[512];
    bool there = false;
    int rc;

    if (keel_sd_step(sd, &n->op, 0, false, err) != 0)
        return -1;
    snprintf(dir, sizeof(dir), "%s/images/%s", keel_sd_root(sd), c->image);
    if (keel_fs_exists(fs, dir, &there, err) != 0)
        return -1;
    if (!there && keel_fs_mkdir(fs, dir, 0755, err) != 0)
        return -1;
    if (n->parent != NULL && strcmp(n->parent->image, c->image) != 0 &&
        link_template(sd, n->parent, c->image, err) != 0)
        return -1;
    /* The payload. */
    vpath(path, sizeof(path), sd, c->image, n->uuid, "");
    if (open_view(fs, path, KEEL_O_RDWR | KEEL_O_CREAT | KEEL_O_EXCL,
                  c->format == KEEL_VOL_COW ? keel_qcow2_metadata_size(n->md.capacity)
                                            : n->md.capacity,
                  &p, err) != 0)
        return -1;
    if (c->format == KEEL_VOL_COW) {
        struct keel_qcow2_opts o = {
            .size = n->md.capacity,
            .version = keel_sd_info(sd)->version >= 4 ? 3 : 2,
            .backing_file = n->parent ? n->parent->uuid : NULL,
            .backing_format = n->parent ? (n->parent->md.format == KEEL_VOL_COW ? "qcow2" : "raw")
                                        : NULL,
        };

        rc = keel_qcow2_create(p.dev, 0, &o, err);
    } else if (c->type == KEEL_VOL_PREALLOCATED) {
        rc = keel_blockdev_write_zeroes(p.dev, 0, n->md.capacity, err);
    } else {
        rc = 0;
    }
    if (close_view(&p, rc == 0 ? err : NULL) != 0 || rc != 0)
        return -1;
    /* ILLEGAL metadata (invariant 1), then the lease. */
    if (keel_vol_file_write_md(sd, c->image, n->uuid, &n->md, err) != 0 ||
        keel_sd_step(sd, &n->op, 1, false, err) != 0)
        return -1;
    if (keel_sd_info(sd)->type != KEEL_SD_TYPE_LOCALFS) {
        uint64_t align = keel_sd_info(sd)->alignment;

        vpath(path, sizeof(path), sd, c->image, n->uuid, ".lease");
        if (open_view(fs, path, KEEL_O_RDWR | KEEL_O_CREAT | KEEL_O_EXCL | KEEL_O_SYNC, align, &p,
                      err) != 0)
            return -1;
        rc = keel_sanlock_write_resource(p.dev, 0, keel_sd_info(sd)->uuid, n->uuid,
                                         keel_sd_info(sd)->block_size, align, err);
        if (close_view(&p, rc == 0 ? err : NULL) != 0 || rc != 0)
            return -1;
    }
    return 0;
}

static int unlink_if(struct keel_fs *fs, const char *p, struct keel_error *err)
{
    if (keel_fs_unlink(fs, p, err) != 0 && err->code != KEEL_E_NOENT)
        return -1;
    return 0;
}

int keel_vol_file_remove(struct keel_sd *sd, const struct keel_vol_entry *e,
                         struct keel_error *err)
{
    struct keel_fs *fs = keel_sd_fs(sd);
    char p[512], dir[512], img[96];
    struct keel_dirlist d = { 0 };
    bool only_links = true;

    snprintf(img, sizeof(img), "%s%s", e->status == KEEL_VOL_REMOVED ? REMOVED_PREFIX : "",
             e->image);
    /* VDSM's order: volume, lease, metadata last. */
    vpath(p, sizeof(p), sd, img, e->uuid, "");
    if (unlink_if(fs, p, err) != 0)
        return -1;
    vpath(p, sizeof(p), sd, img, e->uuid, ".lease");
    if (unlink_if(fs, p, err) != 0)
        return -1;
    vpath(p, sizeof(p), sd, img, e->uuid, ".meta");
    if (unlink_if(fs, p, err) != 0)
        return -1;
    /* The image is gone when only template links (or nothing) remain. */
    snprintf(dir, sizeof(dir), "%s/images/%s", keel_sd_root(sd), img);
    if (keel_fs_readdir(fs, dir, &d, err) != 0)
        return -1;
    for (size_t i = 0; i < d.n && only_links; i++) {
        struct keel_vol_md md;
        struct keel_error e2 = KEEL_ERROR_INIT;
        char base[KEEL_UUID_LEN + 1];

        if (strcmp(d.names[i], ".") == 0 || strcmp(d.names[i], "..") == 0)
            continue;
        keel_strlcpy(base, d.names[i], sizeof(base));
        if (!keel_uuid_valid(base) || read_md(sd, img, base, &md, &e2) != 0 ||
            strcmp(md.image, e->image) == 0)
            only_links = false;
    }
    if (only_links) {
        for (size_t i = 0; i < d.n; i++) {
            if (strcmp(d.names[i], ".") == 0 || strcmp(d.names[i], "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", dir, d.names[i]);
            if (unlink_if(fs, p, err) != 0) {
                keel_dirlist_release(&d);
                return -1;
            }
        }
    }
    keel_dirlist_release(&d);
    if (only_links && keel_fs_rmdir(fs, dir, err) != 0 && err->code != KEEL_E_NOENT)
        return -1;
    return 0;
}

int keel_vol_file_payload_open(struct keel_sd *sd, const struct keel_vol_entry *e,
                               struct keel_vol_payload *p, struct keel_error *err)
{
    char path[512];

    vpath(path, sizeof(path), sd, e->image, e->uuid, "");
    return open_view(keel_sd_fs(sd), path, KEEL_O_RDWR, 0, p, err);
}

int keel_vol_file_lease_open(struct keel_sd *sd, const struct keel_vol_entry *e,
                             struct keel_vol_payload *p, struct keel_error *err)
{
    char path[512];

    vpath(path, sizeof(path), sd, e->image, e->uuid, ".lease");
    return open_view(keel_sd_fs(sd), path, KEEL_O_RDWR | KEEL_O_SYNC, 0, p, err);
}

int keel_vol_file_resize_raw(struct keel_sd *sd, const struct keel_vol_entry *e, uint64_t size,
                             struct keel_error *err)
{
    struct keel_vol_payload p;
    char path[512];
    int rc = 0;

    vpath(path, sizeof(path), sd, e->image, e->uuid, "");
    if (open_view(keel_sd_fs(sd), path, KEEL_O_RDWR, size, &p, err) != 0)
        return -1;
    if (e->md.type == KEEL_VOL_PREALLOCATED && size > e->size)
        rc = keel_blockdev_write_zeroes(p.dev, e->size & ~UINT64_C(511),
                                        size - (e->size & ~UINT64_C(511)), err);
    return close_view(&p, rc == 0 ? err : NULL) != 0 || rc != 0 ? -1 : 0;
}
