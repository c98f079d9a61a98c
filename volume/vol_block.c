/*
 * Volumes on block domains: an LV per volume, tagged IU_<img> PU_<parent>
 * MD_<slot>, its metadata in a slot of the metadata LV and its lease in
 * the leases LV (ovirt-storage-format.md 4.4).  Creation order (vol.h):
 *
 *   1. the new LV is placed in a copy of the VG (free extents, free slot)
 *   2. the payload: a qcow2 header written into those extents (raw: none)
 *   3. the metadata, ILLEGAL, into the free slot
 *   4. the volume lease at leases offset (100 + slot) x alignment
 *   5. one commit: LV <vol> with MD_<slot> PU_<parent> IU_<img>; the commit
 *      flushes before it writes its headers, so 2-4 are on disk first
 * Until the commit, 2-4 lie in free extents and in a slot no LV names:
 * a crash before it leaves nothing anyone reads.
 *
 * VDSM makes the LV first, tagged OVIRT_VOL_INITIALIZING, and retags it
 * after: two commits.  Writing into the extents before the commit that
 * allocates them needs only one and keeps the rule: an LV that carries an
 * MD_ tag always has at least ILLEGAL metadata in its slot.  Keel still
 * reads OVIRT_VOL_INITIALIZING LVs (VDSM's leftovers) as leftovers.
 */
#include "volume/vol-priv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/linear.h"
#include "metadata/lvm_edit.h"
#include "metadata/sanlock_fmt.h"
#include "volume/qcow2.h"

#define MIB (UINT64_C(1) << 20)
#define REMOVED_TAG "IU__remove_me_"
#define MAX_SLOT 1947 /* leases LV: 2048 slots - 100 reserved - 1 */

/* The value of the tag of lv that starts with prefix, or NULL. */
static const char *tag_value(const struct keel_lvm_lv *lv, const char *prefix)
{
    for (size_t i = 0; i < lv->tags.n; i++)
        if (keel_str_has_prefix(lv->tags.v[i], prefix))
            return lv->tags.v[i] + strlen(prefix);
    return NULL;
}

static uint64_t lv_bytes(const struct keel_lvm_vg *vg, const struct keel_lvm_lv *lv)
{
    return keel_lvm_lv_extents(lv) * vg->extent_size * 512;
}

/*
 * LV lv of vg (the store's VG, or a changed copy of it not committed yet)
 * as a payload: one segment is its LUN (borrowed) at the segment's offset,
 * as it always was; several, possibly on several LUNs, a linear device
 * over them (io/linear.h), owned by p, at offset 0.  Either way p->size is
 * the LV's size.
 */
static int lv_payload(struct keel_lvm_store *st, const struct keel_lvm_vg *vg,
                      const struct keel_lvm_lv *lv, struct keel_vol_payload *p,
                      struct keel_error *err)
{
    uint64_t ext = (uint64_t)vg->extent_size * 512;
    struct keel_linear_seg *segs;
    char name[256];
    int rc;

    memset(p, 0, sizeof(*p));
    if (lv->nsegs == 0)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "LV %s has no segment", lv->name);
    segs = calloc(lv->nsegs, sizeof(*segs));
    if (segs == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < lv->nsegs; i++) {
        const struct keel_lvm_seg *sg = &lv->segs[i];
        uint32_t pv = sg->stripes[0].pv;

        if (sg->stripe_count != 1) {
            free(segs);
            return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "LV %s: segment %zu is striped "
                                  "(%" PRIu32 " stripes), not linear", lv->name, i,
                                  sg->stripe_count);
        }
        segs[i].dev = keel_lvm_store_pv_dev(st, pv);
        if (segs[i].dev == NULL) {
            free(segs);
            return keel_error_set(err, KEEL_E_NOENT, 0, "LV %s: the LUN of PV %s was not given",
                                  lv->name, vg->pvs[pv].id);
        }
        segs[i].offset = keel_lvm_store_pe_offset(st, pv, sg->stripes[0].pe);
        segs[i].len = (uint64_t)sg->extent_count * ext;
        p->size += segs[i].len;
    }
    if (lv->nsegs == 1) {
        p->dev = segs[0].dev;
        p->offset = segs[0].offset;
        free(segs);
        return 0;
    }
    snprintf(name, sizeof(name), "linear:%s/%s", vg->name, lv->name);
    rc = keel_linear_blockdev(name, segs, lv->nsegs, &p->linear, err);
    free(segs);
    if (rc != 0) {
        memset(p, 0, sizeof(*p));
        return -1;
    }
    p->dev = p->linear;
    return 0;
}

/* Where metadata slot `slot` lives: the metadata LV's LUN and byte offset. */
static int slot_at(struct keel_sd *sd, int slot, struct keel_blockdev **dev, uint64_t *at,
                   struct keel_error *err)
{
    unsigned version = keel_sd_info(sd)->version >= 5 ? 5 : 4;
    struct keel_sd_area a;

    if (slot < 0)
        return keel_error_set(err, KEEL_E_INTERNAL, 0, "no metadata slot");
    if (keel_sd_lv_area(keel_sd_vg(sd), "metadata", false, &a, err) != 0)
        return -1;
    if (keel_vol_md_slot_offset(version, (unsigned)slot) + KEEL_VOL_MD_SIZE > a.size)
        return keel_error_set(err, KEEL_E_RANGE, 0, "metadata slot %d is past the metadata LV",
                              slot);
    *dev = a.dev;
    *at = a.offset + keel_vol_md_slot_offset(version, (unsigned)slot);
    return 0;
}

static int read_slot(struct keel_sd *sd, int slot, struct keel_vol_md *md,
                     struct keel_error *err)
{
    struct keel_blockdev *dev;
    uint64_t at;
    unsigned char *buf;
    int rc;

    if (slot_at(sd, slot, &dev, &at, err) != 0)
        return -1;
    buf = keel_aligned_alloc(4096, KEEL_VOL_MD_SIZE);
    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    rc = keel_blockdev_pread(dev, buf, KEEL_VOL_MD_SIZE, at, err);
    if (rc == 0)
        rc = keel_vol_md_parse((const char *)buf, KEEL_VOL_MD_SIZE, md, err);
    free(buf);
    return rc;
}

int keel_vol_block_flush(struct keel_sd *sd, struct keel_error *err)
{
    const struct keel_lvm_vg *vg = keel_lvm_store_vg(keel_sd_vg(sd));

    for (uint32_t i = 0; i < vg->npvs; i++) {
        struct keel_blockdev *dev = keel_lvm_store_pv_dev(keel_sd_vg(sd), i);

        if (dev != NULL && keel_blockdev_flush(dev, err) != 0)
            return -1;
    }
    return 0;
}

int keel_vol_block_write_md(struct keel_sd *sd, int slot, const struct keel_vol_md *md,
                            bool sync, struct keel_error *err)
{
    struct keel_blockdev *dev;
    uint64_t at;
    unsigned char *buf;
    int rc;

    if (slot_at(sd, slot, &dev, &at, err) != 0)
        return -1;
    buf = keel_aligned_alloc(4096, KEEL_VOL_MD_SIZE);
    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    rc = keel_vol_md_format_slot(md, keel_sd_info(sd)->version >= 5 ? 5 : 4, buf, err);
    if (rc == 0)
        rc = keel_blockdev_pwrite(dev, buf, KEEL_VOL_MD_SIZE, at, err);
    if (rc == 0 && sync)
        rc = keel_blockdev_flush(dev, err);
    free(buf);
    return rc;
}

/* The entry of a volume LV: tags, status, and its slot's metadata. */
static void build_entry(struct keel_sd *sd, const struct keel_lvm_vg *vg,
                        const struct keel_lvm_lv *lv, struct keel_vol_entry *e)
{
    struct keel_error e2 = KEEL_ERROR_INIT;
    const char *img, *md;
    uint64_t n;

    memset(e, 0, sizeof(*e));
    e->slot = -1;
    keel_strlcpy(e->uuid, lv->name, sizeof(e->uuid));
    e->size = e->allocated = lv_bytes(vg, lv);
    img = tag_value(lv, "IU_");
    md = tag_value(lv, "MD_");
    if (md != NULL && keel_parse_u64(md, &n) == 0 && n <= MAX_SLOT)
        e->slot = (int)n;
    if (keel_lvm_strlist_has(&lv->tags, KEEL_VOL_TAG_INITIALIZING)) {
        e->status = KEEL_VOL_LEFTOVER;
        keel_strlcpy(e->problem, "LV still tagged " KEEL_VOL_TAG_INITIALIZING
                     " (an interrupted creation)", sizeof(e->problem));
    } else if (img != NULL && keel_str_has_prefix(img, "_remove_me_")) {
        e->status = KEEL_VOL_REMOVED;
        img += strlen("_remove_me_");
        if (keel_str_has_prefix(img, "ZERO_"))
            img += 5;
    } else if (img == NULL || tag_value(lv, "PU_") == NULL || e->slot < 0) {
        e->status = KEEL_VOL_LEFTOVER;
        keel_strlcpy(e->problem, "LV without IU_, PU_ or MD_ tags", sizeof(e->problem));
    }
    if (img != NULL)
        keel_strlcpy(e->image, img, sizeof(e->image));
    if (e->slot >= 0 && e->status != KEEL_VOL_LEFTOVER) {
        if (read_slot(sd, e->slot, &e->md, &e2) == 0 && e->md.cleared) {
            e->status = e->status == KEEL_VOL_REMOVED ? KEEL_VOL_REMOVED : KEEL_VOL_LEFTOVER;
            keel_strlcpy(e->problem, "metadata cleared (an interrupted deletion)",
                         sizeof(e->problem));
        } else if (e2.code == KEEL_OK) {
            e->has_md = true;
            if (e->status == KEEL_VOL_OK && e->md.legality == KEEL_VOL_ILLEGAL)
                e->status = KEEL_VOL_STATUS_ILLEGAL;
        } else if (e->status == KEEL_VOL_OK) {
            e->status = KEEL_VOL_BAD;
            snprintf(e->problem, sizeof(e->problem), "slot %d: %s", e->slot, e2.msg);
        }
    }
}

int keel_vol_block_list(struct keel_sd *sd, struct keel_vol_list *l, struct keel_error *err)
{
    const struct keel_lvm_vg *vg = keel_lvm_store_vg(keel_sd_vg(sd));

    for (size_t i = 0; i < vg->nlvs; i++) {
        struct keel_vol_entry e;

        if (keel_sd_is_special_lv(vg->lvs[i].name) || !keel_uuid_valid(vg->lvs[i].name))
            continue;
        build_entry(sd, vg, &vg->lvs[i], &e);
        if (keel_vol_list_add(l, &e, err) != 0)
            return -1;
    }
    return 0;
}

int keel_vol_block_lookup(struct keel_sd *sd, const char *vol, struct keel_vol_entry *e,
                          struct keel_error *err)
{
    const struct keel_lvm_vg *vg = keel_lvm_store_vg(keel_sd_vg(sd));
    const struct keel_lvm_lv *lv = keel_lvm_vg_find_lv(vg, vol);

    if (lv == NULL || keel_sd_is_special_lv(vol))
        return keel_error_set(err, KEEL_E_NOENT, 0, "volume %s: not found on storage domain %s",
                              vol, keel_sd_info(sd)->uuid);
    build_entry(sd, vg, lv, e);
    return 0;
}

int keel_vol_block_image_used(struct keel_sd *sd, const char *img, bool *used,
                              struct keel_error *err)
{
    const struct keel_lvm_vg *vg = keel_lvm_store_vg(keel_sd_vg(sd));
    char tag[64];

    (void)err;
    snprintf(tag, sizeof(tag), "IU_%s", img);
    *used = false;
    for (size_t i = 0; i < vg->nlvs && !*used; i++)
        *used = keel_lvm_strlist_has(&vg->lvs[i].tags, tag);
    return 0;
}

/* The smallest free slot (VDSM's _getFreeMetadataSlot). */
static int free_slot(struct keel_sd *sd, struct keel_error *err)
{
    const struct keel_lvm_vg *vg = keel_lvm_store_vg(keel_sd_vg(sd));
    unsigned first = keel_vol_md_first_slot(keel_sd_info(sd)->version);
    bool used[MAX_SLOT + 1] = { false };

    for (size_t i = 0; i < vg->nlvs; i++) {
        const struct keel_lvm_lv *lv = &vg->lvs[i];
        const char *md = tag_value(lv, "MD_");
        uint64_t n;

        if (keel_sd_is_special_lv(lv->name) || keel_lvm_strlist_has(&lv->tags, KEEL_VOL_TAG_INITIALIZING))
            continue;
        if (md != NULL && keel_parse_u64(md, &n) == 0 && n <= MAX_SLOT)
            used[n] = true;
    }
    for (unsigned s = first; s <= MAX_SLOT; s++)
        if (!used[s])
            return (int)s;
    return keel_error_set(err, KEEL_E_NOSPC, 0, "no free metadata slot (%d volumes)",
                          MAX_SLOT - (int)first + 1);
}

/* LV size of a new volume (VDSM's calculate_volume_alloc_size). */
static uint64_t alloc_size(const struct keel_vol_create *c, uint64_t capacity)
{
    uint64_t size;

    if (c->type == KEEL_VOL_PREALLOCATED)
        size = c->initial_size ? c->initial_size : capacity;
    else if (c->initial_size)
        size = c->initial_size + c->initial_size / 10;
    else
        size = capacity < KEEL_VOL_BLOCK_CHUNK ? capacity : KEEL_VOL_BLOCK_CHUNK;
    if (c->format == KEEL_VOL_COW && size < keel_qcow2_metadata_size(capacity))
        size = keel_qcow2_metadata_size(capacity);
    return (size + MIB - 1) / MIB * MIB;
}

int keel_vol_block_create(struct keel_sd *sd, struct vol_new *n, struct keel_error *err)
{
    const struct keel_vol_create *c = n->c;
    const struct keel_sd_info *si = keel_sd_info(sd);
    struct keel_lvm_store *st = keel_sd_vg(sd);
    const struct keel_lvm_vg *cur = keel_lvm_store_vg(st);
    uint64_t ext = (uint64_t)cur->extent_size * 512;
    uint64_t size = alloc_size(c, n->md.capacity);
    struct keel_lvm_vg *vg;
    const struct keel_lvm_lv *lv;
    struct keel_vol_payload pl;
    struct keel_sd_area leases;
    uint64_t off;
    char mdt[16], put[64], iut[64], host[64];
    const char *tags[3] = { mdt, put, iut };
    int slot;

    /* 1. Where the LV will be, in a copy of the VG: nothing is written yet. */
    slot = free_slot(sd, err);
    if (slot < 0)
        return -1;
    snprintf(mdt, sizeof(mdt), "MD_%d", slot);
    snprintf(put, sizeof(put), "PU_%s", n->parent ? n->parent->uuid : KEEL_BLANK_UUID);
    snprintf(iut, sizeof(iut), "IU_%s", c->image);
    keel_sd_host_name(host, sizeof(host));
    vg = keel_lvm_vg_dup(cur);
    if (vg == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    if (keel_lvm_lv_create(vg, n->uuid, (size + ext - 1) / ext, tags, 3, host,
                           (uint64_t)time(NULL), err) != 0) {
        keel_lvm_vg_free(vg);
        return -1;
    }
    lv = keel_lvm_vg_find_lv(vg, n->uuid);
    n->op.slot = slot;
    if (keel_sd_step(sd, &n->op, 0, false, err) != 0) {
        keel_lvm_vg_free(vg);
        return -1;
    }
    /*
     * 2. The payload into the extents it will get (free until the commit),
     * through all of its segments: the qcow2 metadata of a large capacity
     * may not fit in the first.
     */
    if (c->format == KEEL_VOL_COW) {
        struct keel_qcow2_opts o = {
            .size = n->md.capacity,
            .version = si->version >= 4 ? 3 : 2,
            .backing_file = n->parent ? n->parent->uuid : NULL,
            .backing_format = n->parent ? (n->parent->md.format == KEEL_VOL_COW ? "qcow2" : "raw")
                                        : NULL,
        };

        if (lv_payload(st, vg, lv, &pl, err) != 0) {
            keel_lvm_vg_free(vg);
            return -1;
        }
        if (keel_qcow2_create(pl.dev, pl.offset, &o, err) != 0) {
            keel_vol_payload_close(&pl);
            keel_lvm_vg_free(vg);
            return -1;
        }
        keel_vol_payload_close(&pl);
    }
    /* 3. The metadata, ILLEGAL, into a slot no LV names yet. */
    /* 4. The lease, in the slot's lease area. */
    if (keel_vol_block_write_md(sd, slot, &n->md, false, err) != 0 ||
        keel_sd_lv_area(st, "leases", false, &leases, err) != 0) {
        keel_lvm_vg_free(vg);
        return -1;
    }
    if ((uint64_t)(KEEL_VOL_RESERVED_LEASES + slot + 1) * si->alignment > leases.size) {
        keel_lvm_vg_free(vg);
        return keel_error_set(err, KEEL_E_NOSPC, 0, "no lease slot for metadata slot %d", slot);
    }
    off = leases.offset + (uint64_t)(KEEL_VOL_RESERVED_LEASES + slot) * si->alignment;
    if (keel_sanlock_write_resource(leases.dev, off, si->uuid, n->uuid, si->block_size,
                                    si->alignment, err) != 0 ||
        keel_sd_step(sd, &n->op, 1, false, err) != 0) {
        keel_lvm_vg_free(vg);
        return -1;
    }
    /* 5. One commit makes the LV with its tags; it flushes before its headers. */
    if (keel_lvm_store_commit(st, vg, "keel: create volume", err) != 0 ||
        keel_sd_step(sd, &n->op, 2, false, err) != 0)
        return -1;
    return 0;
}

int keel_vol_block_remove(struct keel_sd *sd, const struct keel_vol_entry *e,
                          struct keel_error *err)
{
    const struct keel_lvm_lv *lv =
        keel_lvm_vg_find_lv(keel_lvm_store_vg(keel_sd_vg(sd)), e->uuid);
    const char *img;

    if (lv == NULL)
        return keel_error_set(err, KEEL_E_NOENT, 0, "LV %s is gone", e->uuid);
    /* Mark it for removal first (VDSM's IU__remove_me_), then remove it. */
    img = tag_value(lv, "IU_");
    if (img != NULL && !keel_str_has_prefix(img, "_remove_me_")) {
        char old[64], mark[96];
        const char *add[1] = { mark }, *del[1] = { old };

        snprintf(old, sizeof(old), "IU_%s", img);
        snprintf(mark, sizeof(mark), REMOVED_TAG "%s", img);
        if (keel_lvm_store_lv_tags(keel_sd_vg(sd), e->uuid, add, 1, del, 1, err) != 0)
            return -1;
    }
    return keel_lvm_store_lv_remove(keel_sd_vg(sd), e->uuid, err);
}

int keel_vol_block_payload_open(struct keel_sd *sd, const struct keel_vol_entry *e,
                                struct keel_vol_payload *p, struct keel_error *err)
{
    struct keel_lvm_store *st = keel_sd_vg(sd);
    const struct keel_lvm_vg *vg = keel_lvm_store_vg(st);
    const struct keel_lvm_lv *lv = keel_lvm_vg_find_lv(vg, e->uuid);

    memset(p, 0, sizeof(*p));
    if (lv == NULL)
        return keel_error_set(err, KEEL_E_NOENT, 0, "LV %s is missing", e->uuid);
    return lv_payload(st, vg, lv, p, err);
}

int keel_vol_block_lease_open(struct keel_sd *sd, const struct keel_vol_entry *e,
                              struct keel_vol_payload *p, struct keel_error *err)
{
    uint64_t align = keel_sd_info(sd)->alignment;
    struct keel_sd_area a;

    memset(p, 0, sizeof(*p));
    if (e->slot < 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume %s has no metadata slot", e->uuid);
    if (keel_sd_lv_area(keel_sd_vg(sd), "leases", false, &a, err) != 0)
        return -1;
    p->dev = a.dev;
    p->offset = a.offset + (uint64_t)(KEEL_VOL_RESERVED_LEASES + e->slot) * align;
    p->size = align;
    if (p->offset + align > a.offset + a.size)
        return keel_error_set(err, KEEL_E_RANGE, 0, "volume %s: lease of slot %d beyond the "
                              "leases LV", e->uuid, e->slot);
    return 0;
}

int keel_vol_block_resize_lv(struct keel_sd *sd, const struct keel_vol_entry *e, uint64_t size,
                             struct keel_error *err)
{
    return keel_lvm_store_lv_resize(keel_sd_vg(sd), e->uuid, (size + MIB - 1) / MIB * MIB, err);
}
