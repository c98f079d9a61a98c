/*
 * Block storage domains: an LVM2 VG on LUNs, written by Keel through
 * metadata/lvm_store; see sd.h (invariant 2, the tag state diagram) and
 * ovirt-storage-format.md section 4.  Creation:
 *
 *   1. every LUN a PV (oVirt layout: two 128 MiB metadata areas on the
 *      first, ignored areas on the others), VG <sdUUID>, 128 MiB extents,
 *      tag RHAT_storage_domain_UNREADY                     (create_vg)
 *   2. one commit: the special LVs, metadata first so that it starts at
 *      extent 0 of the first PV, then keel_journal          (create_lvs)
 *   3. one commit: the MDT_ tags of the V5 metadata          (write_md)
 *   4. zero the start of metadata, inbox and outbox; format xleases; the
 *      ext3 file system on master; sanlock areas in ids and leases
 *   5. one commit: UNREADY replaced by RHAT_storage_domain   (mark_ready)
 *
 * VDSM makes one lvm call per LV; one commit for all of them is atomic and
 * leaves lvm2 and VDSM the same VG.
 */
#include "volume/sd-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/proc.h"
#include "common/strbuf.h"
#include "common/strutil.h"
#include "metadata/lvm_edit.h"

#define MIB (UINT64_C(1) << 20)
#define COPY_CHUNK MIB

struct special_lv {
    const char *name;
    uint64_t extents;   /* 128 MiB extents, 512-byte sectors, 1 MiB alignment */
};

/* Section 4.2: sizes rounded up to whole extents, in VDSM's order. */
static const struct special_lv special_lvs[] = {
    { "metadata", 1 },  /* 128 MiB, extent 0 of the first PV */
    { "ids", 1 },       /* 8 MiB asked */
    { "inbox", 1 },     /* 16 MiB asked */
    { "outbox", 1 },
    { "leases", 16 },   /* 2048 slots x 1 MiB */
    { "xleases", 8 },   /* 1024 slots x 1 MiB */
    { "master", 8 },    /* 1 GiB ext3 */
    { KEEL_SD_JOURNAL, 1 },
};

bool keel_sd_is_special_lv(const char *name)
{
    for (size_t i = 0; i < sizeof(special_lvs) / sizeof(special_lvs[0]); i++)
        if (strcmp(name, special_lvs[i].name) == 0)
            return true;
    return false;
}

const char *keel_sd_host_name(char *buf, size_t cap)
{
    if (gethostname(buf, cap) != 0)
        keel_strlcpy(buf, "keel", cap);
    buf[cap - 1] = '\0';
    return buf;
}

int keel_sd_lv_area(struct keel_lvm_store *st, const char *name, bool whole,
                    struct keel_sd_area *a, struct keel_error *err)
{
    const struct keel_lvm_vg *vg = keel_lvm_store_vg(st);
    const struct keel_lvm_lv *lv = keel_lvm_vg_find_lv(vg, name);
    uint32_t pv, pe;

    if (lv == NULL)
        return keel_error_set(err, KEEL_E_NOENT, 0, "LV %s is missing", name);
    if (whole && lv->nsegs != 1)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "LV %s is not one linear segment",
                              name);
    if (lv->nsegs == 0 || lv->segs[0].stripe_count != 1)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "LV %s is not linear", name);
    pv = lv->segs[0].stripes[0].pv;
    pe = lv->segs[0].stripes[0].pe;
    a->dev = keel_lvm_store_pv_dev(st, pv);
    if (a->dev == NULL)
        return keel_error_set(err, KEEL_E_NOENT, 0, "LV %s: the LUN of PV %s was not given",
                              name, vg->pvs[pv].id);
    a->offset = keel_lvm_store_pe_offset(st, pv, pe);
    a->size = (uint64_t)lv->segs[0].extent_count * vg->extent_size * 512;
    return 0;
}

/* PV<n> keys of the metadata (section 4.3): informational for readers. */
static int set_pv_keys(struct keel_sd_md *md, const struct keel_lvm_vg *vg,
                       const char *const *guids, size_t nguids, struct keel_error *err)
{
    uint64_t mapoffset = 0;
    char key[16], dashed[KEEL_LVM_ID_DASHED_LEN + 1];

    /* Drop the old map first: PVs may have moved. */
    for (unsigned i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "PV%u", i);
        if (!keel_sd_md_del(md, key) && i >= vg->npvs)
            break;
    }
    for (size_t i = 0; i < vg->npvs; i++) {
        const char *guid = i < nguids && guids[i] != NULL ? guids[i] : "";
        char *v;
        int rc;

        keel_lvm_id_dash(vg->pvs[i].id, dashed);
        v = keel_strdup_printf("pv:%s,uuid:%s,pestart:0,pecount:%" PRIu32 ",mapoffset:%" PRIu64,
                               guid, dashed, vg->pvs[i].pe_count, mapoffset);
        if (v == NULL)
            return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        snprintf(key, sizeof(key), "PV%zu", i);
        rc = keel_sd_md_set(md, key, v, err);
        free(v);
        if (rc != 0)
            return -1;
        mapoffset += vg->pvs[i].pe_count;
    }
    return 0;
}

/* The guid of each PV, read back from the PVn keys (for extend). */
static char *pv_guid_from_md(const struct keel_sd_md *md, size_t i)
{
    char key[16];
    const char *v, *end;

    snprintf(key, sizeof(key), "PV%zu", i);
    v = keel_sd_md_get(md, key);
    if (v == NULL || !keel_str_has_prefix(v, "pv:"))
        return strdup("");
    v += 3;
    end = strchr(v, ',');
    return strndup(v, end ? (size_t)(end - v) : strlen(v));
}

int keel_sd_write_md_block(struct keel_sd *sd, const struct keel_sd_md *md,
                           struct keel_error *err)
{
    const struct keel_lvm_vg *vg = keel_lvm_store_vg(sd->vg);
    char **tags = NULL;
    const char **del = NULL, **add = NULL;
    size_t ntags = 0, ndel = 0, nadd = 0;
    int rc = -1;

    if (keel_sd_md_to_tags(md, &tags, &ntags, err) != 0)
        return -1;
    del = calloc(vg->tags.n + 1, sizeof(*del));
    add = calloc(ntags + 1, sizeof(*add));
    if (del == NULL || add == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < vg->tags.n; i++) {
        bool keep = false;

        if (!keel_str_has_prefix(vg->tags.v[i], KEEL_SD_MD_TAG_PREFIX))
            continue;
        for (size_t j = 0; j < ntags && !keep; j++)
            keep = strcmp(tags[j], vg->tags.v[i]) == 0;
        /* A copy: a stale store re-reads (and frees) its VG before it edits. */
        if (!keep && (del[ndel++] = strdup(vg->tags.v[i])) == NULL) {
            keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
            goto out;
        }
    }
    for (size_t j = 0; j < ntags; j++)
        if (!keel_lvm_strlist_has(&vg->tags, tags[j]))
            add[nadd++] = tags[j];
    rc = nadd + ndel == 0 ? 0 : keel_lvm_store_vg_tags(sd->vg, add, nadd, del, ndel, err);
out:
    for (size_t i = 0; i < ndel; i++)
        free((char *)del[i]);
    free(del);
    free(add);
    keel_sd_md_tags_free(tags, ntags);
    return rc;
}

/* Make the LV area equal to the image file (only differing MiBs are written). */
static int copy_image(int fd, const struct keel_sd_area *a, struct keel_error *err)
{
    unsigned char *img = keel_aligned_alloc(4096, COPY_CHUNK);
    unsigned char *cur = keel_aligned_alloc(4096, COPY_CHUNK);
    int rc = 0;

    if (img == NULL || cur == NULL) {
        free(img);
        free(cur);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    for (uint64_t off = 0; off < a->size && rc == 0; off += COPY_CHUNK) {
        size_t got = 0;

        while (got < COPY_CHUNK) {
            ssize_t n = pread(fd, img + got, COPY_CHUNK - got, (off_t)(off + got));

            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = keel_error_errno(err, KEEL_E_IO, errno, "reading the file system image");
                break;
            }
            if (n == 0) {
                memset(img + got, 0, COPY_CHUNK - got);
                break;
            }
            got += (size_t)n;
        }
        if (rc != 0)
            break;
        rc = keel_blockdev_pread(a->dev, cur, COPY_CHUNK, a->offset + off, err);
        if (rc == 0 && memcmp(img, cur, COPY_CHUNK) != 0)
            rc = keel_blockdev_pwrite(a->dev, img, COPY_CHUNK, a->offset + off, err);
    }
    free(img);
    free(cur);
    return rc;
}

/*
 * The master LV's ext3, made as VDSM makes it (mkfs -q -j -E nodiscard) by
 * e2fsprogs on a sparse image file, then written into the LV.
 */
static int make_master_fs(const struct keel_sd_area *a, struct keel_error *err)
{
    const char *tmp = getenv("TMPDIR");
    char path[512];
    int fd, rc;

    snprintf(path, sizeof(path), "%s/keel-master-XXXXXX", tmp && tmp[0] ? tmp : "/var/tmp");
    fd = mkstemp(path);
    if (fd < 0)
        return keel_error_errno(err, KEEL_E_IO, errno, "master file system: %s", path);
    if (ftruncate(fd, (off_t)a->size) != 0) {
        rc = keel_error_errno(err, KEEL_E_IO, errno, "master file system: %s", path);
    } else {
        const char *argv[] = { "mke2fs", "-q", "-F", "-j", "-E", "nodiscard", path, NULL };

        rc = keel_proc_run(argv, err);
        if (rc == 0)
            rc = copy_image(fd, a, err);
    }
    close(fd);
    unlink(path);
    if (rc != 0)
        keel_error_prefix(err, "master file system");
    return rc;
}

static int init_areas(struct keel_sd *sd, struct keel_error *err)
{
    struct keel_sd_area md, ids, leases, xleases, inbox, outbox, master;
    const struct { const char *name; struct keel_sd_area *a; } areas[] = {
        { "metadata", &md }, { "ids", &ids },       { "leases", &leases }, { "xleases", &xleases },
        { "inbox", &inbox }, { "outbox", &outbox }, { "master", &master },
    };

    for (size_t i = 0; i < sizeof(areas) / sizeof(areas[0]); i++)
        if (keel_sd_lv_area(sd->vg, areas[i].name, true, areas[i].a, err) != 0)
            return -1;
    /* The V5 volume metadata area starts at 1 MiB; VDSM zeroes 17 MiB. */
    if (keel_blockdev_write_zeroes(md.dev, md.offset, KEEL_SD_MD_LV_ZEROED, err) != 0 ||
        keel_blockdev_write_zeroes(inbox.dev, inbox.offset, KEEL_SD_MAILBOX_ZEROED, err) != 0 ||
        keel_blockdev_write_zeroes(outbox.dev, outbox.offset, KEEL_SD_MAILBOX_ZEROED, err) != 0)
        return keel_error_prefix(err, "zeroing the special LVs");
    if (make_master_fs(&master, err) != 0)
        return -1;
    if (keel_sd_format_xleases(&xleases, sd->info.uuid, sd->info.alignment, err) != 0 ||
        keel_sd_init_leases(&ids, &leases, sd->info.uuid, sd->info.block_size,
                            sd->info.alignment, err) != 0)
        return -1;
    for (size_t i = 0; i < sd->ndevs; i++)
        if (keel_blockdev_flush(sd->devs[i], err) != 0)
            return -1;
    return 0;
}

static int total_size(struct keel_blockdev *const *devs, size_t n, uint64_t *ret)
{
    uint64_t t = 0;

    for (size_t i = 0; i < n; i++)
        t += keel_blockdev_size(devs[i]);
    *ret = t;
    return 0;
}

int keel_sd_create_block(struct keel_blockdev *const *devs, size_t ndevs,
                         const struct keel_sd_create *c, struct keel_sd **ret,
                         struct keel_error *err)
{
    static const char *const unready[] = { KEEL_SD_VG_TAG_UNREADY };
    static const char *const ready[] = { KEEL_SD_VG_TAG };
    static const char *const flags[] = { "NOAUTOACTIVATE" };
    struct keel_lvm_create_opts opts = { .layout = KEEL_LVM_LAYOUT_OVIRT,
                                         .vg_flags = flags,
                                         .nvg_flags = 1 };
    struct keel_sd_md md;
    struct keel_sd_md_new nd = { 0 };
    struct keel_lvm_store *st = NULL;
    struct keel_lvm_vg *vg = NULL;
    struct keel_sd *sd = NULL;
    const struct keel_lvm_lv *mlv;
    char uuid[KEEL_UUID_LEN + 1], vgid[KEEL_LVM_ID_DASHED_LEN + 1], host[64];
    uint64_t total;

    if (c->uuid != NULL)
        keel_strlcpy(uuid, c->uuid, sizeof(uuid));
    else
        keel_uuid_new(uuid);
    if (!keel_sd_type_is_block(c->type))
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s: type %s is not a "
                              "block domain type", uuid, keel_sd_type_name(c->type) ?: "?");
    if (ndevs == 0 || c->pv_guids == NULL)
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s: no LUNs given", uuid);
    if (c->name != NULL && strlen(c->name) > KEEL_SD_DESCRIPTION_MAX)
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s: name longer than %d "
                              "characters", uuid, KEEL_SD_DESCRIPTION_MAX);
    total_size(devs, ndevs, &total);
    if (total < KEEL_SD_MIN_BLOCK_SIZE)
        return keel_error_set(err, KEEL_E_NOSPC, 0, "storage domain %s: the LUNs hold %" PRIu64
                              " MiB; a block domain needs at least 10 GiB", uuid, total / MIB);
    keel_sd_host_name(host, sizeof(host));
    opts.host = host;

    /* 1. */
    if (keel_lvm_store_create(devs, ndevs, uuid, KEEL_SD_EXTENT_SIZE, unready, 1, &opts, &st,
                              err) != 0)
        return keel_error_prefix(err, "storage domain %s", uuid);
    /* 2. */
    vg = keel_lvm_vg_dup(keel_lvm_store_vg(st));
    if (vg == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < sizeof(special_lvs) / sizeof(special_lvs[0]); i++)
        if (keel_lvm_lv_create(vg, special_lvs[i].name, special_lvs[i].extents, NULL, 0, host,
                               (uint64_t)time(NULL), err) != 0) {
            keel_lvm_vg_free(vg);
            goto fail;
        }
    if (keel_lvm_store_commit(st, vg, "keel: storage domain special volumes", err) != 0)
        goto fail;
    mlv = keel_lvm_vg_find_lv(keel_lvm_store_vg(st), "metadata");
    if (mlv == NULL || mlv->segs[0].stripes[0].pv != 0 || mlv->segs[0].stripes[0].pe != 0) {
        keel_error_set(err, KEEL_E_INTERNAL, 0, "the metadata LV is not at extent 0");
        goto fail;
    }
    /* 3. */
    keel_lvm_id_dash(keel_lvm_store_vg(st)->id, vgid);
    nd.uuid = uuid;
    nd.description = c->name;
    nd.type = c->type;
    nd.klass = c->klass;
    nd.vg_uuid = vgid;
    keel_sd_md_init(&md);
    if (keel_sd_md_new_domain(&md, &nd, err) != 0 ||
        set_pv_keys(&md, keel_lvm_store_vg(st), c->pv_guids, ndevs, err) != 0 ||
        keel_sd_new_from_md(&md, &sd, err) != 0) {
        keel_sd_md_release(&md);
        goto fail;
    }
    sd->block = true;
    sd->vg = st;
    st = NULL;
    sd->devs = calloc(ndevs, sizeof(*sd->devs));
    if (sd->devs == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        goto fail;
    }
    memcpy(sd->devs, devs, ndevs * sizeof(*devs));
    sd->ndevs = ndevs;
    if (keel_sd_write_md_block(sd, &sd->md, err) != 0)
        goto fail;
    /* 4. */
    if (init_areas(sd, err) != 0)
        goto fail;
    /* 5. */
    if (keel_lvm_store_vg_tags(sd->vg, ready, 1, unready, 1, err) != 0)
        goto fail;
    *ret = sd;
    return 0;
fail:
    keel_lvm_store_close(st);
    keel_sd_close(sd);
    return keel_error_prefix(err, "storage domain %s", uuid);
}

int keel_sd_open_block(struct keel_blockdev *const *devs, size_t ndevs, const char *sd_uuid,
                       struct keel_sd **ret, struct keel_error *err)
{
    struct keel_lvm_store *st = NULL;
    const struct keel_lvm_vg *vg;
    struct keel_sd_md md;
    struct keel_sd *sd = NULL;
    char host[64];

    if (sd_uuid != NULL && !keel_uuid_valid(sd_uuid))
        return keel_error_set(err, KEEL_E_INVAL, 0, "\"%s\" is not a domain UUID", sd_uuid);
    keel_sd_host_name(host, sizeof(host));
    if (keel_lvm_store_open(devs, ndevs, sd_uuid, host, &st, err) != 0)
        return sd_uuid ? keel_error_prefix(err, "storage domain %s", sd_uuid) : -1;
    vg = keel_lvm_store_vg(st);
    if (!keel_lvm_strlist_has(&vg->tags, KEEL_SD_VG_TAG)) {
        if (keel_lvm_strlist_has(&vg->tags, KEEL_SD_VG_TAG_UNREADY))
            keel_error_set(err, KEEL_E_CORRUPT, 0, "storage domain %s: VG is still tagged %s: "
                           "the leftover of an interrupted creation", vg->name,
                           KEEL_SD_VG_TAG_UNREADY);
        else
            keel_error_set(err, KEEL_E_NOENT, 0, "VG %s is not a storage domain (no %s tag)",
                           vg->name, KEEL_SD_VG_TAG);
        keel_lvm_store_close(st);
        return -1;
    }
    keel_sd_md_init(&md);
    if (keel_sd_md_from_tags((const char *const *)vg->tags.v, vg->tags.n, &md, NULL, err) != 0 ||
        keel_sd_new_from_md(&md, &sd, err) != 0) {
        keel_sd_md_release(&md);
        keel_error_prefix(err, "storage domain %s", vg->name);
        keel_lvm_store_close(st);
        return -1;
    }
    sd->block = true;
    sd->vg = st;
    if (strcmp(sd->info.uuid, vg->name) != 0 || !keel_sd_type_is_block(sd->info.type)) {
        keel_error_set(err, KEEL_E_CORRUPT, 0, "storage domain %s: metadata says SDUUID %s "
                       "TYPE %s", vg->name, sd->info.uuid, keel_sd_type_name(sd->info.type));
        keel_sd_close(sd);
        return -1;
    }
    sd->devs = calloc(ndevs, sizeof(*sd->devs));
    if (sd->devs == NULL) {
        keel_sd_close(sd);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    memcpy(sd->devs, devs, ndevs * sizeof(*devs));
    sd->ndevs = ndevs;
    *ret = sd;
    return 0;
}

int keel_sd_extend(struct keel_sd *sd, struct keel_blockdev *dev, const char *pv_guid,
                   struct keel_error *err)
{
    struct keel_sd_md md;
    const struct keel_lvm_vg *vg;
    struct keel_blockdev **devs;
    char **guids;
    size_t npvs;
    int rc;

    if (!sd->block)
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s: only block domains "
                              "are extended with LUNs", sd->info.uuid);
    devs = realloc(sd->devs, (sd->ndevs + 1) * sizeof(*devs));
    if (devs == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    sd->devs = devs;
    if (keel_lvm_store_extend(sd->vg, dev, err) != 0)
        return keel_error_prefix(err, "storage domain %s", sd->info.uuid);
    sd->devs[sd->ndevs++] = dev;
    /* The PV map: old guids from the metadata, the new one last. */
    vg = keel_lvm_store_vg(sd->vg);
    npvs = vg->npvs; /* vg is the store's: the metadata commit below replaces it */
    guids = calloc(npvs, sizeof(*guids));
    if (guids == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    for (size_t i = 0; i + 1 < npvs; i++)
        guids[i] = pv_guid_from_md(&sd->md, i);
    guids[npvs - 1] = strdup(pv_guid);
    keel_sd_md_init(&md);
    rc = keel_sd_md_copy(&md, &sd->md, err);
    if (rc == 0)
        rc = set_pv_keys(&md, vg, (const char *const *)guids, npvs, err);
    vg = NULL;
    if (rc == 0)
        rc = keel_sd_write_md(sd, &md, err);
    keel_sd_md_release(&md);
    for (size_t i = 0; i < npvs; i++)
        free(guids[i]);
    free(guids);
    return rc;
}

int keel_sd_format_block(struct keel_sd *sd, struct keel_error *err)
{
    const struct keel_lvm_vg *vg = keel_lvm_store_vg(sd->vg);
    const char **del = calloc(vg->tags.n + 1, sizeof(*del));
    size_t ndel = 0;

    if (del == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    size_t ntags = vg->tags.n;

    /* First it stops being a domain, then the PVs stop being PVs. */
    for (size_t i = 0; i < ntags; i++)
        if ((del[ndel] = strdup(vg->tags.v[i])) != NULL) /* copies: see keel_sd_write_md_block */
            ndel++;
    if (ndel < ntags ||
        (ndel > 0 && keel_lvm_store_vg_tags(sd->vg, NULL, 0, del, ndel, err) != 0)) {
        if (ndel < ntags)
            keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        for (size_t i = 0; i < ndel; i++)
            free((char *)del[i]);
        free(del);
        return keel_error_prefix(err, "storage domain %s", sd->info.uuid);
    }
    for (size_t i = 0; i < ndel; i++)
        free((char *)del[i]);
    free(del);
    /* pvremove: the label lives in one of the first four sectors. */
    for (size_t i = 0; i < sd->ndevs; i++)
        if (keel_blockdev_write_zeroes(sd->devs[i], 0, MIB, err) != 0 ||
            keel_blockdev_flush(sd->devs[i], err) != 0)
            return keel_error_prefix(err, "storage domain %s", sd->info.uuid);
    return 0;
}
