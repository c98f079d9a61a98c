/* Storage domains: what file and block domains share; see sd.h. */
#include "volume/sd-priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"

int keel_sd_new_from_md(struct keel_sd_md *md, struct keel_sd **ret, struct keel_error *err)
{
    struct keel_sd *sd = calloc(1, sizeof(*sd));

    if (sd == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "storage domain: out of memory");
    sd->md = *md;
    keel_sd_md_init(md);
    if (keel_sd_md_info(&sd->md, &sd->info, err) != 0) {
        keel_sd_md_release(&sd->md);
        free(sd);
        return -1;
    }
    *ret = sd;
    return 0;
}

void keel_sd_close(struct keel_sd *sd)
{
    if (sd == NULL)
        return;
    keel_lvm_store_close(sd->vg);
    free(sd->devs);
    keel_sd_md_release(&sd->md);
    free(sd);
}

const struct keel_sd_info *keel_sd_info(const struct keel_sd *sd)
{
    return &sd->info;
}

const struct keel_sd_md *keel_sd_md(const struct keel_sd *sd)
{
    return &sd->md;
}

bool keel_sd_is_block(const struct keel_sd *sd)
{
    return sd->block;
}

struct keel_fs *keel_sd_fs(const struct keel_sd *sd)
{
    return sd->fs;
}

const char *keel_sd_root(const struct keel_sd *sd)
{
    return sd->block ? NULL : sd->root;
}

struct keel_lvm_store *keel_sd_vg(const struct keel_sd *sd)
{
    return sd->vg;
}

int keel_sd_space(struct keel_sd *sd, struct keel_sd_space *ret, struct keel_error *err)
{
    if (sd->block) {
        const struct keel_lvm_vg *vg = keel_lvm_store_vg(sd->vg);
        uint64_t ext = (uint64_t)vg->extent_size * 512;

        ret->capacity = keel_lvm_vg_total_extents(vg) * ext;
        ret->free = keel_lvm_vg_free_extents(vg) * ext;
        return 0;
    } else {
        struct keel_statvfs st;

        if (keel_fs_statvfs(sd->fs, &st, err) != 0)
            return keel_error_prefix(err, "storage domain %s", sd->info.uuid);
        ret->capacity = st.total;
        ret->free = st.avail;
        return 0;
    }
}

int keel_sd_write_md(struct keel_sd *sd, const struct keel_sd_md *md, struct keel_error *err)
{
    struct keel_sd_md copy;
    struct keel_sd_info info;

    /* What is written must still be this domain's valid metadata. */
    if (keel_sd_md_info(md, &info, err) != 0)
        return -1;
    if (strcmp(info.uuid, sd->info.uuid) != 0 || info.type != sd->info.type)
        return keel_error_set(err, KEEL_E_INVAL, 0,
                              "storage domain %s: new metadata changes SDUUID or TYPE",
                              sd->info.uuid);
    keel_sd_md_init(&copy);
    if (keel_sd_md_copy(&copy, md, err) != 0)
        return -1;
    if ((sd->block ? keel_sd_write_md_block(sd, &copy, err)
                   : keel_sd_write_md_file(sd, &copy, err)) != 0) {
        keel_sd_md_release(&copy);
        return keel_error_prefix(err, "storage domain %s", sd->info.uuid);
    }
    keel_sd_md_release(&sd->md);
    sd->md = copy;
    /* Borrowed strings now point into the new map. */
    return keel_sd_md_info(&sd->md, &sd->info, err);
}

int keel_sd_format(struct keel_sd *sd, struct keel_error *err)
{
    int rc = sd->block ? keel_sd_format_block(sd, err) : keel_sd_format_file(sd, err);

    keel_sd_close(sd);
    return rc;
}

void keel_sd_set_step_hook(struct keel_sd *sd, keel_sd_step_fn *fn, void *opaque)
{
    sd->step_fn = fn;
    sd->step_opaque = opaque;
}

int keel_sd_step(struct keel_sd *sd, struct keel_sd_op *op, unsigned step, bool done,
                 struct keel_error *err)
{
    op->step = step;
    op->done = done;
    if (sd->step_fn == NULL)
        return 0;
    return sd->step_fn(sd->step_opaque, op, err);
}

int keel_sd_journal_open(struct keel_sd *sd, uint64_t size, struct keel_sd_region *r,
                         struct keel_error *err)
{
    memset(r, 0, sizeof(*r));
    if (sd->block) {
        struct keel_sd_area a;

        if (keel_sd_lv_area(sd->vg, "keel_journal", false, &a, err) != 0)
            return -1;
        if (a.size < size)
            return keel_error_set(err, KEEL_E_NOSPC, 0, "storage domain %s: keel_journal LV of "
                                  "%llu bytes, need %llu", sd->info.uuid,
                                  (unsigned long long)a.size, (unsigned long long)size);
        r->dev = a.dev;
        r->offset = a.offset;
        r->size = size;
    } else {
        char path[128];
        struct keel_stat st;
        struct keel_sd_file_view v;

        snprintf(path, sizeof(path), "%s/dom_md/keel_journal", sd->root);
        if (keel_fs_stat(sd->fs, path, &st, err) != 0 ||
            keel_sd_view_open(sd->fs, path, KEEL_O_RDWR | KEEL_O_SYNC,
                              st.size < size ? size : 0, &v, err) != 0)
            return keel_error_prefix(err, "storage domain %s: journal", sd->info.uuid);
        r->dev = v.area.dev;
        r->file = v.file;
        r->size = size;
    }
    return 0;
}

int keel_sd_lock_area_open(struct keel_sd *sd, const char *name, struct keel_sd_region *r,
                           struct keel_error *err)
{
    memset(r, 0, sizeof(*r));
    if (strcmp(name, "ids") != 0 && strcmp(name, "leases") != 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "\"%s\" is not a lock area", name);
    if (sd->block) {
        struct keel_sd_area a;

        if (keel_sd_lv_area(sd->vg, name, true, &a, err) != 0)
            return keel_error_prefix(err, "storage domain %s", sd->info.uuid);
        r->dev = a.dev;
        r->offset = a.offset;
        r->size = a.size;
    } else {
        char path[128];
        struct keel_sd_file_view v;

        snprintf(path, sizeof(path), "%s/dom_md/%s", sd->root, name);
        if (keel_sd_view_open(sd->fs, path, KEEL_O_RDWR | KEEL_O_SYNC, 0, &v, err) != 0)
            return keel_error_prefix(err, "storage domain %s", sd->info.uuid);
        r->dev = v.area.dev;
        r->file = v.file;
        r->size = v.area.size;
    }
    return 0;
}

void keel_sd_region_close(struct keel_sd_region *r)
{
    if (r->file != NULL) {
        struct keel_sd_file_view v = { .file = r->file, .area = { .dev = r->dev } };

        keel_sd_view_close(&v, NULL);
    }
    memset(r, 0, sizeof(*r));
}
