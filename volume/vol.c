/*
 * Volumes: what file and block domains share (validation, metadata,
 * parents and children, legality); see vol.h for the invariants.
 */
#include "volume/vol-priv.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/strutil.h"
#include "volume/qcow2.h"

#define ROUND_UP(x, a) (((x) + (a) - 1) / (a) * (a))

int keel_vol_list_add(struct keel_vol_list *l, const struct keel_vol_entry *e,
                      struct keel_error *err)
{
    struct keel_vol_entry *v = realloc(l->v, (l->n + 1) * sizeof(*v));

    if (v == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    l->v = v;
    l->v[l->n++] = *e;
    return 0;
}

void keel_vol_list_release(struct keel_vol_list *l)
{
    if (l == NULL)
        return;
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Block: re-read the VG if another host (the SPM) moved it; once per operation. */
static int refresh(struct keel_sd *sd, struct keel_error *err)
{
    bool changed;

    if (!keel_sd_is_block(sd))
        return 0;
    return keel_lvm_store_refresh(keel_sd_vg(sd), &changed, err);
}

static int cmp_entry(const void *a, const void *b)
{
    const struct keel_vol_entry *x = a, *y = b;
    int c = strcmp(x->image, y->image);

    return c != 0 ? c : strcmp(x->uuid, y->uuid);
}

int keel_vol_list(struct keel_sd *sd, struct keel_vol_list *out, struct keel_error *err)
{
    struct keel_vol_list l = { 0 };
    int rc = refresh(sd, err);

    if (rc == 0)
        rc = keel_sd_is_block(sd) ? keel_vol_block_list(sd, &l, err)
                                  : keel_vol_file_list(sd, &l, err);
    if (rc != 0) {
        keel_vol_list_release(&l);
        return keel_error_prefix(err, "storage domain %s", keel_sd_info(sd)->uuid);
    }
    qsort(l.v, l.n, sizeof(l.v[0]), cmp_entry);
    *out = l;
    return 0;
}

const struct keel_vol_entry *keel_vol_list_find(const struct keel_vol_list *l, const char *vol)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].uuid, vol) == 0)
            return &l->v[i];
    return NULL;
}

/* One volume without listing the domain (after refresh): img_hint is where to look first. */
static int lookup(struct keel_sd *sd, const char *img_hint, const char *vol,
                  struct keel_vol_entry *out, struct keel_error *err)
{
    if (keel_sd_is_block(sd))
        return keel_vol_block_lookup(sd, vol, out, err);
    return keel_vol_file_lookup(sd, img_hint, vol, out, err);
}

int keel_vol_info(struct keel_sd *sd, const char *vol, struct keel_vol_entry *out,
                  struct keel_error *err)
{
    if (!keel_uuid_valid(vol))
        return keel_error_set(err, KEEL_E_INVAL, 0, "\"%s\" is not a volume UUID", vol);
    if (refresh(sd, err) != 0)
        return -1;
    return lookup(sd, NULL, vol, out, err);
}

/* Durable when it returns (file: .meta.new + rename; block: slot + flush). */
static int write_md(struct keel_sd *sd, const struct keel_vol_entry *e,
                    const struct keel_vol_md *md, struct keel_error *err)
{
    if (keel_sd_is_block(sd))
        return keel_vol_block_write_md(sd, e->slot, md, true, err);
    return keel_vol_file_write_md(sd, e->image, e->uuid, md, err);
}

/* Children: volumes whose metadata names vol as parent. */
static size_t count_children(const struct keel_vol_list *l, const char *vol, const char *except)
{
    size_t n = 0;

    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].has_md && strcmp(l->v[i].md.parent, vol) == 0 &&
            (except == NULL || strcmp(l->v[i].uuid, except) != 0))
            n++;
    return n;
}

static int check_create(struct keel_sd *sd, const struct keel_vol_create *c,
                        struct keel_vol_entry *parent, bool *has_parent, struct keel_error *err)
{
    struct keel_vol_entry e;
    struct keel_error e2 = KEEL_ERROR_INIT;

    *has_parent = false;
    if (c->image == NULL || !keel_uuid_valid(c->image))
        return keel_error_set(err, KEEL_E_INVAL, 0, "image \"%s\" is not a UUID",
                              c->image ? c->image : "");
    if (c->uuid != NULL && !keel_uuid_valid(c->uuid))
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume \"%s\" is not a UUID", c->uuid);
    if (c->capacity == 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "a volume needs a capacity");
    /* The description (at most 210 characters) is checked when the metadata is written. */
    if (c->type != KEEL_VOL_PREALLOCATED && c->type != KEEL_VOL_SPARSE)
        return keel_error_set(err, KEEL_E_INVAL, 0, "type must be preallocated or sparse");
    if (keel_sd_is_block(sd) && c->format == KEEL_VOL_RAW && c->type == KEEL_VOL_SPARSE)
        return keel_error_set(err, KEEL_E_INVAL, 0,
                              "sparse raw volumes are not allowed on block domains");
    if (c->uuid != NULL) {
        /* Block: LV names are the VG's; file: the image directory, as VDSM checks. */
        bool there = false;

        if (keel_sd_is_block(sd)) {
            if (lookup(sd, c->image, c->uuid, &e, &e2) == 0)
                there = true;
            else if (e2.code != KEEL_E_NOENT)
                return keel_error_copy(err, &e2);
        } else if (keel_vol_file_exists_in(sd, c->image, c->uuid, &there, err) != 0) {
            return -1;
        }
        if (there)
            return keel_error_set(err, KEEL_E_EXIST, 0, "volume %s exists already", c->uuid);
    }
    if (c->parent != NULL) {
        struct keel_vol_entry *p = parent;

        if (c->format != KEEL_VOL_COW)
            return keel_error_set(err, KEEL_E_INVAL, 0, "a volume with a parent must be COW");
        if (lookup(sd, c->image, c->parent, p, &e2) != 0) {
            if (e2.code != KEEL_E_NOENT)
                return keel_error_copy(err, &e2);
            return keel_error_set(err, KEEL_E_NOENT, 0, "parent volume %s does not exist",
                                  c->parent);
        }
        if (!p->has_md)
            return keel_error_set(err, KEEL_E_NOENT, 0, "parent volume %s has no metadata",
                                  c->parent);
        /*
         * A copy's destination chain is made ILLEGAL, base first, and each
         * volume becomes LEGAL when copied: an ILLEGAL child may sit on it.
         */
        if (p->status != KEEL_VOL_OK && !(c->illegal && p->status == KEEL_VOL_STATUS_ILLEGAL))
            return keel_error_set(err, KEEL_E_INVAL, 0, "parent volume %s is not LEGAL",
                                  c->parent);
        if (strcmp(p->image, c->image) != 0 && p->md.role != KEEL_VOL_SHARED)
            return keel_error_set(err, KEEL_E_INVAL, 0, "parent volume %s is in image %s and is "
                                  "not a template (SHARED)", c->parent, p->image);
        if (strcmp(p->image, c->image) == 0 && p->md.role != KEEL_VOL_LEAF)
            return keel_error_set(err, KEEL_E_INVAL, 0, "parent volume %s is not the leaf of "
                                  "image %s", c->parent, c->image);
        if (c->capacity < p->md.capacity)
            return keel_error_set(err, KEEL_E_INVAL, 0, "capacity %llu is smaller than the "
                                  "parent's %llu", (unsigned long long)c->capacity,
                                  (unsigned long long)p->md.capacity);
        *has_parent = true;
    } else {
        /* A base volume starts a new image: it must not have volumes yet. */
        bool used = false;

        if ((keel_sd_is_block(sd) ? keel_vol_block_image_used(sd, c->image, &used, err)
                                  : keel_vol_file_image_used(sd, c->image, &used, err)) != 0)
            return -1;
        if (used)
            return keel_error_set(err, KEEL_E_EXIST, 0, "image %s has volumes already: a new "
                                  "volume there needs a parent", c->image);
    }
    return 0;
}

int keel_vol_create(struct keel_sd *sd, const struct keel_vol_create *c,
                    char uuid_out[KEEL_UUID_LEN + 1], struct keel_error *err)
{
    const struct keel_sd_info *si = keel_sd_info(sd);
    struct vol_new n = { .c = c };
    struct keel_vol_create cc = *c;
    struct keel_vol_entry self = { 0 }, parent;
    bool has_parent = false;
    int rc = -1;

    cc.capacity = ROUND_UP(c->capacity, 4096); /* as VDSM rounds */
    n.c = &cc;
    if (refresh(sd, err) != 0 || check_create(sd, &cc, &parent, &has_parent, err) != 0)
        goto out;
    n.parent = has_parent ? &parent : NULL;
    if (c->uuid != NULL)
        keel_strlcpy(n.uuid, c->uuid, sizeof(n.uuid));
    else
        keel_uuid_new(n.uuid);
    n.md.capacity = cc.capacity;
    n.md.ctime = (uint64_t)time(NULL);
    keel_strlcpy(n.md.description, c->description ? c->description : "",
                 sizeof(n.md.description));
    keel_strlcpy(n.md.disktype, c->disktype ? c->disktype : "DATA", sizeof(n.md.disktype));
    keel_strlcpy(n.md.domain, si->uuid, sizeof(n.md.domain));
    n.md.format = c->format;
    keel_strlcpy(n.md.image, c->image, sizeof(n.md.image));
    n.md.legality = KEEL_VOL_ILLEGAL;                  /* invariant 1 */
    keel_strlcpy(n.md.parent, c->parent ? c->parent : KEEL_BLANK_UUID, sizeof(n.md.parent));
    n.md.type = c->type;
    n.md.role = c->shared ? KEEL_VOL_SHARED : KEEL_VOL_LEAF;
    n.op.kind = KEEL_SD_OP_VOL_CREATE;
    keel_strlcpy(n.op.vol, n.uuid, sizeof(n.op.vol));
    keel_strlcpy(n.op.image, c->image, sizeof(n.op.image));
    keel_strlcpy(n.op.parent, n.md.parent, sizeof(n.op.parent));
    n.op.slot = -1;
    n.op.illegal = c->illegal;
    /* Steps 1-2: payload, ILLEGAL metadata, lease. */
    if ((keel_sd_is_block(sd) ? keel_vol_block_create(sd, &n, err)
                              : keel_vol_file_create(sd, &n, err)) != 0 ||
        keel_sd_step(sd, &n.op, 3, false, err) != 0)
        goto out;
    /* Invariant 3: the parent is INTERNAL (durably) before the child is LEGAL.
     * Block: payload, metadata and lease were made durable by the commit. */
    if (n.parent != NULL && strcmp(n.parent->image, c->image) == 0 &&
        n.parent->md.role == KEEL_VOL_LEAF) {
        struct keel_vol_md pm = n.parent->md;

        pm.role = KEEL_VOL_INTERNAL;
        if ((keel_sd_is_block(sd) ? keel_vol_block_write_md(sd, n.parent->slot, &pm, true, err)
                                  : write_md(sd, n.parent, &pm, err)) != 0)
            goto out;
    }
    if (keel_sd_step(sd, &n.op, 4, false, err) != 0)
        goto out;
    if (!c->illegal) {
        n.md.legality = KEEL_VOL_LEGAL;
        if (keel_sd_is_block(sd)) {
            /* The slot is the one the commit just named. */
            if (keel_vol_block_write_md(sd, n.op.slot, &n.md, true, err) != 0)
                goto out;
        } else if (lookup(sd, c->image, n.uuid, &self, err) != 0 ||
                   write_md(sd, &self, &n.md, err) != 0) {
            goto out;
        }
    }
    if (keel_sd_step(sd, &n.op, 5, true, err) != 0)
        goto out;
    if (uuid_out != NULL)
        keel_strlcpy(uuid_out, n.uuid, KEEL_UUID_LEN + 1);
    rc = 0;
out:
    if (rc != 0)
        keel_error_prefix(err, "volume %s", n.uuid[0] ? n.uuid : "(new)");
    return rc;
}

int keel_vol_set_legality(struct keel_sd *sd, const char *vol, enum keel_vol_legality lg,
                          struct keel_error *err)
{
    struct keel_vol_entry e;
    struct keel_vol_md md;

    if (keel_vol_info(sd, vol, &e, err) != 0)
        return -1;
    if (!e.has_md)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume %s has no metadata (%s)", vol,
                              e.problem);
    md = e.md;
    md.legality = lg;
    if (write_md(sd, &e, &md, err) != 0)
        return keel_error_prefix(err, "volume %s", vol);
    return 0;
}

int keel_vol_delete(struct keel_sd *sd, const char *vol, bool force, struct keel_error *err)
{
    struct keel_vol_list l;
    const struct keel_vol_entry *e;
    struct keel_vol_entry copy;
    struct keel_sd_op op = { 0 };
    int rc = -1;

    if (keel_vol_list(sd, &l, err) != 0)
        return -1;
    e = keel_vol_list_find(&l, vol);
    if (e == NULL) {
        keel_error_set(err, KEEL_E_NOENT, 0, "not found on storage domain %s",
                       keel_sd_info(sd)->uuid);
        goto out;
    }
    copy = *e;
    if (count_children(&l, vol, NULL) > 0) {
        keel_error_set(err, KEEL_E_BUSY, 0, "it has %zu child volume(s): delete them first",
                       count_children(&l, vol, NULL));
        goto out;
    }
    if (copy.has_md && copy.md.role == KEEL_VOL_SHARED && !force) {
        keel_error_set(err, KEEL_E_PERM, 0, "it is a template volume (SHARED): use force");
        goto out;
    }
    op.kind = KEEL_SD_OP_VOL_DELETE;
    keel_strlcpy(op.vol, copy.uuid, sizeof(op.vol));
    keel_strlcpy(op.image, copy.image, sizeof(op.image));
    keel_strlcpy(op.parent, copy.has_md ? copy.md.parent : KEEL_BLANK_UUID, sizeof(op.parent));
    op.slot = copy.slot;
    if (keel_sd_step(sd, &op, 0, false, err) != 0)
        goto out;
    /* ILLEGAL first: a crash half way leaves a leftover, never a LEGAL torso. */
    if (copy.has_md && copy.md.legality != KEEL_VOL_ILLEGAL) {
        struct keel_vol_md md = copy.md;

        md.legality = KEEL_VOL_ILLEGAL;
        if (write_md(sd, &copy, &md, err) != 0)
            goto out;
    }
    if (keel_sd_step(sd, &op, 1, false, err) != 0 ||
        (keel_sd_is_block(sd) ? keel_vol_block_remove(sd, &copy, err)
                              : keel_vol_file_remove(sd, &copy, err)) != 0 ||
        keel_sd_step(sd, &op, 2, false, err) != 0)
        goto out;
    /* The parent is a leaf again when this was its last child (invariant 3). */
    if (copy.has_md && strcmp(copy.md.parent, KEEL_BLANK_UUID) != 0) {
        const struct keel_vol_entry *p = keel_vol_list_find(&l, copy.md.parent);

        if (p != NULL && p->has_md && p->md.role == KEEL_VOL_INTERNAL &&
            strcmp(p->image, copy.image) == 0 && count_children(&l, p->uuid, vol) == 0) {
            struct keel_vol_md pm = p->md;

            pm.role = KEEL_VOL_LEAF;
            if (write_md(sd, p, &pm, err) != 0)
                goto out;
        }
    }
    if (keel_sd_step(sd, &op, 3, true, err) != 0)
        goto out;
    rc = 0;
out:
    keel_vol_list_release(&l);
    if (rc != 0)
        keel_error_prefix(err, "cannot delete volume %s", vol);
    return rc;
}

int keel_vol_settle_parent(struct keel_sd *sd, const char *parent, struct keel_error *err)
{
    struct keel_vol_list l;
    const struct keel_vol_entry *p;
    int rc = 0;

    if (refresh(sd, err) != 0 || keel_vol_list(sd, &l, err) != 0)
        return -1;
    p = keel_vol_list_find(&l, parent);
    if (p != NULL && p->has_md && p->md.role == KEEL_VOL_INTERNAL &&
        count_children(&l, p->uuid, NULL) == 0) {
        struct keel_vol_md pm = p->md;

        pm.role = KEEL_VOL_LEAF;
        rc = write_md(sd, p, &pm, err);
    }
    keel_vol_list_release(&l);
    return rc;
}

int keel_vol_payload_open(struct keel_sd *sd, const char *vol, struct keel_vol_payload *p,
                          struct keel_error *err)
{
    struct keel_vol_entry e;

    memset(p, 0, sizeof(*p));
    if (keel_vol_info(sd, vol, &e, err) != 0)
        return -1;
    return keel_sd_is_block(sd) ? keel_vol_block_payload_open(sd, &e, p, err)
                                : keel_vol_file_payload_open(sd, &e, p, err);
}

int keel_vol_lease_open(struct keel_sd *sd, const char *vol, struct keel_vol_payload *p,
                        struct keel_error *err)
{
    struct keel_vol_entry e;

    memset(p, 0, sizeof(*p));
    if (keel_vol_info(sd, vol, &e, err) != 0)
        return -1;
    if (keel_sd_is_block(sd) ? keel_vol_block_lease_open(sd, &e, p, err) != 0
                             : keel_vol_file_lease_open(sd, &e, p, err) != 0)
        return keel_error_prefix(err, "volume %s: lease", vol);
    return 0;
}

void keel_vol_payload_close(struct keel_vol_payload *p)
{
    if (p->file != NULL) {
        keel_blockdev_close(p->dev);
        keel_file_close(p->file, NULL);
    }
    keel_blockdev_close(p->linear);
    memset(p, 0, sizeof(*p));
}

int keel_vol_extend(struct keel_sd *sd, const char *vol, uint64_t capacity,
                    struct keel_error *err)
{
    struct keel_vol_entry e;
    struct keel_vol_md md;
    struct keel_sd_op op = { 0 };
    int rc;

    capacity = ROUND_UP(capacity, 4096);
    if (keel_vol_info(sd, vol, &e, err) != 0)
        return -1;
    if (e.status != KEEL_VOL_OK)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume %s is not LEGAL", vol);
    if (e.md.role == KEEL_VOL_SHARED)
        return keel_error_set(err, KEEL_E_PERM, 0, "volume %s is a template: never written",
                              vol);
    if (capacity < e.md.capacity)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume %s: %llu bytes is smaller than its "
                              "capacity", vol, (unsigned long long)capacity);
    if (capacity == e.md.capacity)
        return 0;
    op.kind = KEEL_SD_OP_VOL_EXTEND;
    keel_strlcpy(op.vol, e.uuid, sizeof(op.vol));
    keel_strlcpy(op.image, e.image, sizeof(op.image));
    keel_strlcpy(op.parent, e.md.parent, sizeof(op.parent));
    op.slot = e.slot;
    op.capacity = capacity;
    if (keel_sd_step(sd, &op, 0, false, err) != 0)
        return -1;
    if (e.md.format == KEEL_VOL_COW) {
        struct keel_vol_payload p;
        uint64_t need = 0;

        if (keel_vol_payload_open(sd, vol, &p, err) != 0)
            return -1;
        rc = keel_qcow2_resize_space(p.dev, p.offset, capacity, &need, err);
        if (rc == 0 && need > p.size) {
            /* The L1 table moves and needs room: a file grows for it; an LV
             * does not here (keel_vol_extend_lv grows it): the qcow2
             * metadata must fit in the LV, all of whose segments the
             * payload reaches. */
            uint64_t have = p.size;

            keel_vol_payload_close(&p);
            rc = keel_sd_is_block(sd)
                     ? keel_error_set(err, KEEL_E_NOSPC, 0, "the qcow2 metadata for %llu bytes "
                                      "needs %llu bytes of the LV, which has %llu",
                                      (unsigned long long)capacity, (unsigned long long)need,
                                      (unsigned long long)have)
                     : keel_vol_file_resize_raw(sd, &e, need, err);
            if (rc == 0)
                rc = keel_vol_payload_open(sd, vol, &p, err);
            if (rc != 0)
                return keel_error_prefix(err, "volume %s", vol);
        }
        if (rc == 0)
            rc = keel_qcow2_resize_in(p.dev, p.offset, p.size, capacity, err);
        keel_vol_payload_close(&p);
    } else {
        rc = keel_sd_is_block(sd) ? keel_vol_block_resize_lv(sd, &e, capacity, err)
                                  : keel_vol_file_resize_raw(sd, &e, capacity, err);
    }
    if (rc != 0 || keel_sd_step(sd, &op, 1, false, err) != 0)
        return keel_error_prefix(err, "volume %s", vol);
    md = e.md;
    md.capacity = capacity;
    if (write_md(sd, &e, &md, err) != 0 || keel_sd_step(sd, &op, 2, true, err) != 0)
        return keel_error_prefix(err, "volume %s", vol);
    return 0;
}

int keel_vol_extend_lv(struct keel_sd *sd, const char *vol, uint64_t size,
                       struct keel_error *err)
{
    struct keel_vol_entry e;

    if (!keel_sd_is_block(sd))
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume %s: only block volumes have an LV",
                              vol);
    if (keel_vol_info(sd, vol, &e, err) != 0)
        return -1;
    if (e.status != KEEL_VOL_OK)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume %s is not LEGAL", vol);
    if (size < e.size)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume %s: the LV has %llu bytes already",
                              vol, (unsigned long long)e.size);
    if (size == e.size)
        return 0;
    if (keel_vol_block_resize_lv(sd, &e, size, err) != 0)
        return keel_error_prefix(err, "volume %s", vol);
    return 0;
}
