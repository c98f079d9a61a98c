/*
 * Volumes and images (volume/vol, volume/image) on real storage, judged by
 * qemu-img and lvm2.  One body, three flavours (STYLE.md 13): a POSIX
 * directory, an NFS export (nfs-ganesha), and a block domain on a tgtd LUN
 * reached through iSCSI.
 *
 *   - a base volume, two snapshot layers, a template and a thin image on
 *     it: qemu-img info --backing-chain reports the chain Keel reports,
 *     qemu-img check accepts every qcow2 volume, qemu-io writes through
 *     the leaf; on block, each LV is given to qemu-img as a loop device
 *     named by its volume UUID, and lvm2 shows the tags Keel reports;
 *   - extend, delete (children refused, parent a leaf again), refusals;
 *   - crash safety: a snapshot create interrupted at every write (fault
 *     injection in io/) never leaves a LEGAL volume that is incomplete, and
 *     what is left over is listed and deleted;
 *   - a block domain on two LUNs and volumes whose LVs span both: data
 *     written through the payload (a linear device) lands in the LUNs'
 *     backing files where lvm2 says the LV's extents are; a qcow2 volume
 *     created and extended there is judged by qemu-img on the LV
 *     reassembled from those extents.
 */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/faulty.h"
#include "io/fs.h"
#include "tests/functional/lvm_judge.h"
#include "tests/harness/lab.h"
#include "volume/image.h"
#include "volume/vol.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define SD1 "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define IMG1 "11111111-0000-4000-8000-000000000001"
#define TIMG "22222222-0000-4000-8000-000000000002"
#define IMG2 "33333333-0000-4000-8000-000000000003"
#define IMG3 "44444444-0000-4000-8000-000000000004"

enum kind { POSIX, NFS, BLOCK };

struct flavour {
    enum kind kind;
    char *dir;                     /* POSIX: the domain's root directory */
    struct keel_lab_nfs *nfs;
    struct keel_lab_tgtd *tgtd;
    const char *ondisk;            /* file kinds: the root as seen on this machine */
    const char *lun_file;          /* block: the LUN's backing file */
    struct keel_fs *fs;
    struct keel_blockdev *dev;
};

static void flavour_start(struct flavour *f, enum kind kind)
{
    struct keel_error err = KEEL_ERROR_INIT;

    memset(f, 0, sizeof(*f));
    f->kind = kind;
    if (kind == POSIX) {
        char *url;

        f->dir = keel_lab_tmpdir("vol-posix", &err);
        ck_assert_msg(f->dir != NULL, "%s", err.msg);
        url = keel_strdup_printf("file://%s", f->dir);
        ck_assert_msg(keel_fs_open(url, NULL, &f->fs, &err) == 0, "%s", err.msg);
        free(url);
        f->ondisk = f->dir;
    } else if (kind == NFS) {
        ck_assert_msg(keel_lab_nfs_start(&f->nfs, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_fs_open(keel_lab_nfs_url(f->nfs), NULL, &f->fs, &err) == 0, "%s",
                      err.msg);
        f->ondisk = keel_lab_nfs_export_dir(f->nfs);
    } else {
        uint64_t sizes[] = { 12 * GiB };

        ck_assert_msg(keel_lab_tgtd_start(&f->tgtd, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_lab_tgtd_add_target(f->tgtd, "vol", sizes, 1, NULL, NULL, &err) == 0,
                      "%s", err.msg);
        ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(f->tgtd, 0, 1), NULL, &f->dev,
                                         &err) == 0, "%s", err.msg);
        f->lun_file = keel_lab_tgtd_lun_path(f->tgtd, 0, 1);
    }
}

static void flavour_stop(struct flavour *f)
{
    keel_fs_close(f->fs);
    keel_blockdev_close(f->dev);
    if (f->nfs)
        keel_lab_nfs_stop(f->nfs);
    if (f->tgtd)
        keel_lab_tgtd_stop(f->tgtd);
    if (f->dir) {
        keel_lab_tmpdir_remove(f->dir);
        free(f->dir);
    }
}

static struct keel_sd *create_domain(struct flavour *f)
{
    struct keel_error err = KEEL_ERROR_INIT;
    const char *guids[] = { "360014050000000000000000000000b01" };
    struct keel_sd_create c = { .uuid = SD1, .name = "vols", .klass = KEEL_SD_CLASS_DATA,
                                .remote_path = "server:/export", .pv_guids = guids };
    struct keel_sd *sd = NULL;

    c.type = f->kind == BLOCK ? KEEL_SD_TYPE_ISCSI : f->kind == NFS ? KEEL_SD_TYPE_NFS
                                                                    : KEEL_SD_TYPE_POSIXFS;
    if (f->kind == BLOCK)
        ck_assert_msg(keel_sd_create_block(&f->dev, 1, &c, &sd, &err) == 0, "%s", err.msg);
    else
        ck_assert_msg(keel_sd_create_file(f->fs, &c, &sd, &err) == 0, "%s", err.msg);
    return sd;
}

static struct keel_sd *open_domain(struct flavour *f, struct keel_fs *fs,
                                   struct keel_blockdev *dev)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd *sd = NULL;

    if (f->kind == BLOCK)
        ck_assert_msg(keel_sd_open_block(&dev, 1, SD1, &sd, &err) == 0, "%s", err.msg);
    else
        ck_assert_msg(keel_sd_open_file(fs, SD1, &sd, &err) == 0, "%s", err.msg);
    return sd;
}

static void vol(struct keel_sd *sd, const char *img, const char *uuid, enum keel_vol_format fmt,
                enum keel_vol_type type, uint64_t cap, const char *parent, bool shared)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_create c = { .image = img, .uuid = uuid, .format = fmt, .type = type,
                                 .capacity = cap, .parent = parent, .shared = shared };

    ck_assert_msg(keel_vol_create(sd, &c, NULL, &err) == 0, "%s", err.msg);
}

/*
 * A directory where every volume of the chain is a file named by its UUID:
 * file domains: the image directory itself; block: loop devices over the
 * LVs (single segment), symlinked by UUID in a temp dir.
 */
struct chain_dir {
    char *dir;
    bool temp;
    size_t nloops;
    char *loops[16];
};

static void chain_dir_open(struct flavour *f, struct keel_sd *sd, const struct keel_chain *c,
                           struct chain_dir *d)
{
    struct keel_error err = KEEL_ERROR_INIT;

    memset(d, 0, sizeof(*d));
    if (f->kind != BLOCK) {
        d->dir = keel_strdup_printf("%s/%s/images/%s", f->ondisk, SD1, c->image);
        return;
    }
    d->temp = true;
    d->dir = keel_lab_tmpdir("chain", &err);
    ck_assert_msg(d->dir != NULL, "%s", err.msg);
    for (size_t i = 0; i < c->n; i++) {
        struct keel_vol_payload p;
        char *link;

        ck_assert_msg(keel_vol_payload_open(sd, c->vols[i].uuid, &p, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_lab_loop_attach(f->lun_file, p.offset, c->vols[i].size,
                                           &d->loops[d->nloops], &err) == 0, "%s", err.msg);
        link = keel_strdup_printf("%s/%s", d->dir, c->vols[i].uuid);
        ck_assert_int_eq(symlink(d->loops[d->nloops], link), 0);
        free(link);
        d->nloops++;
        keel_vol_payload_close(&p);
    }
}

static void chain_dir_close(struct chain_dir *d)
{
    for (size_t i = 0; i < d->nloops; i++) {
        keel_lab_loop_detach(d->loops[i]);
        free(d->loops[i]);
    }
    if (d->temp)
        keel_lab_tmpdir_remove(d->dir);
    free(d->dir);
}

/* qemu-img's view of the chain equals Keel's, and every qcow2 layer checks clean. */
static void qemu_judges(struct flavour *f, struct keel_sd *sd, const char *img)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_chain c;
    struct chain_dir d;
    char *leaf, *out = NULL;
    json_t *a;

    ck_assert_msg(keel_image_chain(sd, img, &c, &err) == 0, "%s", err.msg);
    chain_dir_open(f, sd, &c, &d);
    leaf = keel_strdup_printf("%s/%s", d.dir, c.vols[c.n - 1].uuid);
    {
        const char *argv[] = { "qemu-img", "info", "-U", "--backing-chain", "--output=json",
                               leaf, NULL };

        ck_assert_msg(keel_lab_run_ok(argv, NULL, &out, &err) == 0, "%s", err.msg);
    }
    a = json_loads(out, 0, NULL);
    ck_assert_msg(a != NULL && json_array_size(a) == c.n, "qemu-img sees %zu layers, Keel %zu:\n%s",
                  json_array_size(a), c.n, out);
    for (size_t i = 0; i < c.n; i++) {
        json_t *layer = json_array_get(a, i);
        const struct keel_vol_entry *v = &c.vols[c.n - 1 - i];
        const char *fn = json_string_value(json_object_get(layer, "filename"));
        const char *fmt = json_string_value(json_object_get(layer, "format"));
        const char *bf = json_string_value(json_object_get(layer, "backing-filename"));

        ck_assert_msg(fn != NULL && keel_str_has_suffix(fn, v->uuid), "layer %zu is %s, Keel "
                      "says %s", i, fn, v->uuid);
        ck_assert_str_eq(fmt, v->md.format == KEEL_VOL_COW ? "qcow2" : "raw");
        ck_assert_uint_eq(json_integer_value(json_object_get(layer, "virtual-size")),
                          v->md.capacity);
        if (i + 1 < c.n)
            ck_assert_msg(bf != NULL && strcmp(bf, c.vols[c.n - 2 - i].uuid) == 0,
                          "%s: backing %s, Keel's parent %s", v->uuid, bf ? bf : "(none)",
                          c.vols[c.n - 2 - i].uuid);
        else
            ck_assert_msg(bf == NULL, "base %s has backing %s", v->uuid, bf);
        if (v->md.format == KEEL_VOL_COW) {
            char *p = keel_strdup_printf("%s/%s", d.dir, v->uuid);
            const char *chk[] = { "qemu-img", "check", "-U", "-q", p, NULL };

            ck_assert_msg(keel_lab_run_ok(chk, NULL, NULL, &err) == 0, "%s", err.msg);
            free(p);
        }
    }
    json_decref(a);
    free(out);
    free(leaf);
    chain_dir_close(&d);
    keel_chain_release(&c);
}

/* qemu-io writes through the leaf and reads the pattern back; check stays clean. */
static void qemu_writes(struct flavour *f, struct keel_sd *sd, const char *img)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_chain c;
    struct chain_dir d;
    char *leaf;

    ck_assert_msg(keel_image_chain(sd, img, &c, &err) == 0, "%s", err.msg);
    chain_dir_open(f, sd, &c, &d);
    leaf = keel_strdup_printf("%s/%s", d.dir, c.vols[c.n - 1].uuid);
    {
        const char *w[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1M", "-c",
                            "read -P 0x5a 0 1M", leaf, NULL };
        const char *chk[] = { "qemu-img", "check", "-q", leaf, NULL };
        char *out = NULL;

        ck_assert_msg(keel_lab_run_ok(w, NULL, &out, &err) == 0, "%s", err.msg);
        ck_assert_msg(strstr(out, "Pattern verification failed") == NULL, "%s", out);
        free(out);
        ck_assert_msg(keel_lab_run_ok(chk, NULL, NULL, &err) == 0, "%s", err.msg);
    }
    free(leaf);
    chain_dir_close(&d);
    keel_chain_release(&c);
}

#define BASE "aaaaaaaa-0000-4000-8000-000000000001"
#define SNAP1 "aaaaaaaa-0000-4000-8000-000000000002"
#define SNAP2 "aaaaaaaa-0000-4000-8000-000000000003"
#define TVOL "bbbbbbbb-0000-4000-8000-000000000001"
#define THIN "cccccccc-0000-4000-8000-000000000001"

static void chains_body(enum kind kind)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct flavour f;
    struct keel_sd *sd;
    struct keel_vol_entry e;
    struct keel_vol_list l;

    flavour_start(&f, kind);
    sd = create_domain(&f);
    /* Base (raw on file, preallocated qcow2 on block), two snapshot layers. */
    if (kind == BLOCK)
        vol(sd, IMG1, BASE, KEEL_VOL_COW, KEEL_VOL_PREALLOCATED, GiB, NULL, false);
    else
        vol(sd, IMG1, BASE, KEEL_VOL_RAW, KEEL_VOL_SPARSE, GiB, NULL, false);
    vol(sd, IMG1, SNAP1, KEEL_VOL_COW, KEEL_VOL_SPARSE, GiB, BASE, false);
    vol(sd, IMG1, SNAP2, KEEL_VOL_COW, KEEL_VOL_SPARSE, 2 * GiB, SNAP1, false);
    /* A template and an image on it. */
    vol(sd, TIMG, TVOL, KEEL_VOL_RAW, KEEL_VOL_PREALLOCATED, 256 * MiB, NULL, true);
    vol(sd, IMG2, THIN, KEEL_VOL_COW, KEEL_VOL_SPARSE, 256 * MiB, TVOL, false);
    /* Roles as oVirt keeps them. */
    ck_assert_int_eq(keel_vol_info(sd, BASE, &e, &err), 0);
    ck_assert_int_eq(e.md.role, KEEL_VOL_INTERNAL);
    ck_assert_int_eq(keel_vol_info(sd, SNAP2, &e, &err), 0);
    ck_assert_int_eq(e.md.role, KEEL_VOL_LEAF);
    ck_assert_int_eq(e.md.legality, KEEL_VOL_LEGAL);
    ck_assert_str_eq(e.md.parent, SNAP1);
    ck_assert_int_eq(keel_vol_info(sd, TVOL, &e, &err), 0);
    ck_assert_int_eq(e.md.role, KEEL_VOL_SHARED);
    /* qemu-img judges every chain. */
    qemu_judges(&f, sd, IMG1);
    qemu_judges(&f, sd, IMG2);
    qemu_judges(&f, sd, TIMG);
    {
        struct keel_chain c;

        ck_assert_int_eq(keel_image_chain(sd, IMG2, &c, &err), 0);
        ck_assert(c.on_template);
        ck_assert_uint_eq(c.n, 2);
        ck_assert_str_eq(c.vols[0].uuid, TVOL);
        keel_chain_release(&c);
    }
    if (kind == BLOCK) {
        /* lvm2 sees the volume LVs with the tags Keel reports, and agrees on the VG. */
        struct lvm_judge j;
        const char *files[] = { f.lun_file };
        const char *argv[] = { "lvs", "--noheadings", "-o", "lv_name,lv_tags", NULL };
        char *out = NULL;

        ck_assert_msg(lvm_judge_attach(&j, files, 1, &err) == 0, "%s", err.msg);
        ck_assert_msg(lvm_judge_agrees(&j, keel_lvm_store_vg(keel_sd_vg(sd)), &err) == 0, "%s",
                      err.msg);
        ck_assert_msg(lvm_judge_run(&j, argv, &out, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(keel_vol_info(sd, SNAP1, &e, &err), 0);
        {
            char *want = keel_strdup_printf("%s IU_%s,MD_%d,PU_%s", SNAP1, IMG1, e.slot, BASE);

            ck_assert_msg(strstr(out, want) != NULL, "lvs lacks '%s':\n%s", want, out);
            free(want);
        }
        free(out);
        lvm_judge_detach(&j);
    } else {
        /* The template is hard-linked into the thin image's directory. */
        char *a = keel_strdup_printf("%s/%s/images/%s/%s", f.ondisk, SD1, TIMG, TVOL);
        char *b = keel_strdup_printf("%s/%s/images/%s/%s", f.ondisk, SD1, IMG2, TVOL);
        struct stat sa, sb;

        ck_assert_int_eq(stat(a, &sa), 0);
        ck_assert_int_eq(stat(b, &sb), 0);
        ck_assert(sa.st_ino == sb.st_ino && sa.st_nlink == 2);
        free(a);
        free(b);
    }
    qemu_writes(&f, sd, IMG1);
    qemu_writes(&f, sd, IMG2);

    /* Extend the leaf; qemu-img sees it. */
    ck_assert_msg(keel_vol_extend(sd, SNAP2, 3 * GiB, &err) == 0, "%s", err.msg);
    qemu_judges(&f, sd, IMG1);
    if (kind == BLOCK) {
        /* A thin volume's LV grows (what the SPM does when it fills up). */
        struct lvm_judge j;
        const char *files[] = { f.lun_file };

        ck_assert_int_eq(keel_vol_info(sd, SNAP2, &e, &err), 0);
        ck_assert_msg(keel_vol_extend_lv(sd, SNAP2, e.size + 200 * MiB, &err) == 0, "%s",
                      err.msg);
        ck_assert_int_eq(keel_vol_info(sd, SNAP2, &e, &err), 0);
        ck_assert_uint_eq(e.size % (128 * MiB), 0);
        ck_assert_uint_eq(e.md.capacity, 3 * GiB);
        ck_assert_msg(lvm_judge_attach(&j, files, 1, &err) == 0, "%s", err.msg);
        ck_assert_msg(lvm_judge_agrees(&j, keel_lvm_store_vg(keel_sd_vg(sd)), &err) == 0, "%s",
                      err.msg);
        lvm_judge_detach(&j);
        ck_assert_int_eq(keel_vol_extend_lv(sd, SNAP2, MiB, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_INVAL);
    } else {
        ck_assert_int_eq(keel_vol_extend_lv(sd, SNAP2, GiB, &err), -1);
        /* Past 4 TiB the L1 table moves (the file grows for it). */
        ck_assert_msg(keel_vol_extend(sd, SNAP2, 5 * 1024 * GiB, &err) == 0, "%s", err.msg);
        qemu_judges(&f, sd, IMG1);
    }

    /* Refusals. */
    ck_assert_int_eq(keel_vol_delete(sd, SNAP1, false, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_BUSY);
    ck_assert_msg(strstr(err.msg, "it has 1 child volume(s): delete them first") != NULL, "%s",
                  err.msg);
    ck_assert_int_eq(keel_vol_delete(sd, TVOL, true, &err), -1); /* THIN still on it */
    {
        struct keel_vol_create c = { .image = IMG1, .format = KEEL_VOL_COW,
                                     .type = KEEL_VOL_SPARSE, .capacity = GiB, .parent = SNAP1 };

        ck_assert_int_eq(keel_vol_create(sd, &c, NULL, &err), -1);
        ck_assert_msg(strstr(err.msg, "is not the leaf of image") != NULL, "%s", err.msg);
        c.parent = "99999999-0000-4000-8000-000000000009";
        ck_assert_int_eq(keel_vol_create(sd, &c, NULL, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_NOENT);
        c.parent = NULL;
        c.image = IMG3;
        c.format = KEEL_VOL_RAW;
        if (kind == BLOCK) {
            ck_assert_int_eq(keel_vol_create(sd, &c, NULL, &err), -1);
            ck_assert_msg(strstr(err.msg, "sparse raw volumes are not allowed on block "
                                          "domains") != NULL, "%s", err.msg);
        }
    }
    /* Delete the top: its parent is the leaf again; the chain stays valid. */
    ck_assert_msg(keel_vol_delete(sd, SNAP2, false, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_vol_info(sd, SNAP1, &e, &err), 0);
    ck_assert_int_eq(e.md.role, KEEL_VOL_LEAF);
    qemu_judges(&f, sd, IMG1);
    /* Thin image gone: the template can go too (with force: it is SHARED). */
    ck_assert_msg(keel_vol_delete(sd, THIN, false, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_vol_delete(sd, TVOL, false, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_PERM);
    ck_assert_msg(keel_vol_delete(sd, TVOL, true, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_vol_list(sd, &l, &err), 0);
    ck_assert_uint_eq(l.n, 2);
    keel_vol_list_release(&l);
    if (kind != BLOCK) {
        char *p = keel_strdup_printf("%s/%s/images/%s", f.ondisk, SD1, IMG2);

        ck_assert_msg(access(p, F_OK) != 0, "%s is still there", p);
        free(p);
    }
    keel_sd_close(sd);
    flavour_stop(&f);
}

START_TEST(chains_posix) { chains_body(POSIX); }
END_TEST
START_TEST(chains_nfs) { chains_body(NFS); }
END_TEST
START_TEST(chains_block) { chains_body(BLOCK); }
END_TEST

/*
 * A snapshot create crashed at its k-th write, for every k: afterwards the
 * new volume is absent, a leftover, ILLEGAL, or (crash at the very end)
 * LEGAL and complete; deleting what is left brings the image back to a
 * valid chain whose leaf is the old one.
 */
static void crash_body(enum kind kind)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct flavour f;
    struct keel_sd *sd;
    unsigned n = 0;

    flavour_start(&f, kind);
    sd = create_domain(&f);
    vol(sd, IMG1, BASE, KEEL_VOL_COW, KEEL_VOL_PREALLOCATED, 256 * MiB, NULL, false);
    keel_sd_close(sd);
    for (unsigned k = 0;; k++) {
        struct keel_fault_plan plan = { .crash_at = k, .tear = KEEL_TEAR_PREFIX };
        struct keel_faulty *ctl = NULL;
        struct keel_fs *ffs = NULL;
        struct keel_blockdev *fdev = NULL, *inner = NULL;
        struct keel_vol_create c = { .image = IMG1, .uuid = SNAP1, .format = KEEL_VOL_COW,
                                     .type = KEEL_VOL_SPARSE, .capacity = 256 * MiB,
                                     .parent = BASE };
        struct keel_vol_entry e;
        struct keel_chain ch;
        int rc;

        if (kind == BLOCK) {
            ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(f.tgtd, 0, 1), NULL, &inner,
                                             &err) == 0, "%s", err.msg);
            ck_assert_int_eq(keel_faulty_blockdev(inner, &plan, &fdev, &ctl, &err), 0);
        } else {
            struct keel_fs *in2 = NULL;
            char *url = keel_strdup_printf("file://%s", f.ondisk);

            ck_assert_msg(keel_fs_open(kind == NFS ? keel_lab_nfs_url(f.nfs) : url, NULL, &in2,
                                       &err) == 0, "%s", err.msg);
            free(url);
            ck_assert_int_eq(keel_faulty_fs(in2, &plan, &ffs, &ctl, &err), 0);
        }
        sd = open_domain(&f, ffs, fdev);
        rc = keel_vol_create(sd, &c, NULL, &err);
        if (k == 0) {
            ck_assert_msg(rc == 0, "%s", err.msg);
            n = keel_faulty_writes(ctl);
            ck_assert(n > 3);
        } else {
            ck_assert_msg(rc != 0 || k > n, "crash at write %u of %u did not fail", k, n);
        }
        keel_sd_close(sd);
        if (kind == BLOCK)
            keel_blockdev_close(fdev);
        else
            keel_fs_close(ffs);

        /* Judge on storage, unwrapped. */
        sd = open_domain(&f, f.fs, f.dev);
        if (keel_vol_info(sd, SNAP1, &e, &err) == 0) {
            if (e.status == KEEL_VOL_OK) {
                /* Only a complete volume may be LEGAL. */
                ck_assert_msg(keel_image_chain(sd, IMG1, &ch, &err) == 0,
                              "crash at %u: LEGAL but %s", k, err.msg);
                ck_assert_uint_eq(ch.n, 2);
                keel_chain_release(&ch);
            } else {
                ck_assert_msg(e.status == KEEL_VOL_LEFTOVER || e.status == KEEL_VOL_STATUS_ILLEGAL,
                              "crash at %u: status %d (%s)", k, e.status, e.problem);
            }
            if (kind == POSIX && e.status != KEEL_VOL_OK) {
                /* What an admin sees and does: keel-storage lists it, and deletes it. */
                char *exe = keel_strdup_printf("%s/cli/keel-storage", getenv("KEEL_BUILD_ROOT"));
                char *url = keel_strdup_printf("file://%s", f.ondisk);
                const char *list[] = { exe, "volume", "list", "--json", url, NULL };
                const char *del[] = { exe, "volume", "delete", "--volume", SNAP1, url, NULL };
                char *out = NULL, *want;

                keel_sd_close(sd);
                ck_assert_msg(keel_lab_run_ok(list, NULL, &out, &err) == 0, "%s", err.msg);
                want = keel_strdup_printf("\"status\": \"%s\"",
                                          e.status == KEEL_VOL_LEFTOVER ? "LEFTOVER" : "ILLEGAL");
                ck_assert_msg(strstr(out, SNAP1) != NULL && strstr(out, want) != NULL,
                              "crash at %u: keel-storage volume list lacks %s:\n%s", k, want,
                              out);
                free(want);
                free(out);
                ck_assert_msg(keel_lab_run_ok(del, NULL, NULL, &err) == 0, "%s", err.msg);
                free(exe);
                free(url);
                sd = open_domain(&f, f.fs, f.dev);
            } else {
                ck_assert_msg(keel_vol_delete(sd, SNAP1, false, &err) == 0, "crash at %u: %s", k,
                              err.msg);
            }
        } else {
            ck_assert_msg(err.code == KEEL_E_NOENT, "%s", err.msg);
        }
        /* Back to the base alone, a LEAF, with a valid chain. */
        ck_assert_msg(keel_image_chain(sd, IMG1, &ch, &err) == 0, "crash at %u: %s", k, err.msg);
        ck_assert_uint_eq(ch.n, 1);
        ck_assert_int_eq(ch.vols[0].md.role, KEEL_VOL_LEAF);
        keel_chain_release(&ch);
        keel_sd_close(sd);
        if (k >= n && k > 0)
            break;
    }
    flavour_stop(&f);
}

START_TEST(crash_posix) { crash_body(POSIX); }
END_TEST
START_TEST(crash_block) { crash_body(BLOCK); }
END_TEST

/*
 * keel-storage volume / image as an admin runs them, and a copy target:
 * created ILLEGAL, listed so, made LEGAL with keel_vol_set_legality.
 */
START_TEST(cli_and_legality)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct flavour f;
    struct keel_sd *sd;
    char *exe = keel_strdup_printf("%s/cli/keel-storage", getenv("KEEL_BUILD_ROOT"));
    char *url, *out = NULL;
    const char *mk_base[] = { NULL, "volume", "create", "--image", IMG1, "--uuid", BASE,
                              "--format", "raw", "--size", "1G", NULL, NULL };
    const char *mk_snap[] = { NULL, "volume", "create", "--image", IMG1, "--uuid", SNAP1,
                              "--format", "cow", "--size", "1G", "--parent", BASE, NULL, NULL };
    const char *grow[] = { NULL, "volume", "extend", "--size", "2G", "--volume", SNAP1, NULL,
                           NULL };
    const char *chain[] = { NULL, "image", "chain", "--json", "--image", IMG1, NULL, NULL };
    json_t *a, *vols;
    struct keel_vol_entry e;

    flavour_start(&f, POSIX);
    sd = create_domain(&f);
    keel_sd_close(sd);
    url = keel_strdup_printf("file://%s", f.ondisk);
    mk_base[0] = mk_snap[0] = grow[0] = chain[0] = exe;
    mk_base[11] = url;
    mk_snap[13] = url;
    grow[7] = url;
    chain[6] = url;
    ck_assert_msg(keel_lab_run_ok(mk_base, NULL, &out, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(out, BASE "\n");
    free(out);
    ck_assert_msg(keel_lab_run_ok(mk_snap, NULL, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_run_ok(grow, NULL, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_run_ok(chain, NULL, &out, &err) == 0, "%s", err.msg);
    a = json_loads(out, 0, NULL);
    ck_assert_msg(a != NULL && json_array_size(a) == 1, "%s", out);
    vols = json_object_get(json_array_get(a, 0), "volumes");
    ck_assert_uint_eq(json_array_size(vols), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(vols, 0), "uuid")), BASE);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(vols, 1), "uuid")), SNAP1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(vols, 1), "parent")), BASE);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(vols, 1), "capacity")),
                     2 * GiB);
    json_decref(a);
    free(out);
    sd = open_domain(&f, f.fs, f.dev);
    qemu_judges(&f, sd, IMG1);

    /* A copy target: ILLEGAL until its copy is verified. */
    {
        struct keel_vol_create c = { .image = IMG2, .uuid = THIN, .format = KEEL_VOL_RAW,
                                     .type = KEEL_VOL_SPARSE, .capacity = GiB, .illegal = true };

        ck_assert_msg(keel_vol_create(sd, &c, NULL, &err) == 0, "%s", err.msg);
    }
    ck_assert_int_eq(keel_vol_info(sd, THIN, &e, &err), 0);
    ck_assert_int_eq(e.status, KEEL_VOL_STATUS_ILLEGAL);
    ck_assert_msg(keel_vol_set_legality(sd, THIN, KEEL_VOL_LEGAL, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_vol_info(sd, THIN, &e, &err), 0);
    ck_assert_int_eq(e.status, KEEL_VOL_OK);
    ck_assert_int_eq(e.md.legality, KEEL_VOL_LEGAL);
    keel_sd_close(sd);
    free(url);
    free(exe);
    flavour_stop(&f);
}
END_TEST

/* ---- volumes spanning two LUNs ---- */

#define SPAN "dddddddd-0000-4000-8000-000000000001"
#define SPANQ "dddddddd-0000-4000-8000-000000000002"
#define MAX_SEGS 8

/* A segment of an LV as lvm2 reports it: bytes of the LV on bytes of a backing file. */
struct lvm_seg {
    const char *file;              /* borrowed from the judge */
    uint64_t lv_off, file_off, len;
};

static uint64_t json_u64(json_t *row, const char *key)
{
    const char *v = json_string_value(json_object_get(row, key));
    uint64_t n = 0;

    ck_assert_msg(v != NULL && keel_parse_u64(v, &n) == 0, "lvm field %s: %s", key,
                  v ? v : "(none)");
    return n;
}

/* lvm2's report (--reportformat json) of rows of `kind`; caller decrefs. */
static json_t *lvm_rows(struct lvm_judge *j, const char *const argv[], const char *kind)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *out = NULL;
    json_t *root, *rows;

    ck_assert_msg(lvm_judge_run(j, argv, &out, &err) == 0, "%s", err.msg);
    root = json_loads(out, 0, NULL);
    ck_assert_msg(root != NULL, "bad JSON from %s: %s", argv[0], out);
    rows = json_object_get(json_array_get(json_object_get(root, "report"), 0), kind);
    ck_assert_msg(json_is_array(rows), "no %s rows from %s: %s", kind, argv[0], out);
    json_incref(rows);
    json_decref(root);
    free(out);
    return rows;
}

/*
 * Where lvm2 says LV vg/lv lives: its segments (lvs seg_start, seg_size,
 * seg_pe_ranges), each PE range turned into a byte range of the backing
 * file of the loop device it names (pvs pe_start, vgs vg_extent_size).
 */
static size_t lvm_lv_segments(struct lvm_judge *j, const char *vg, const char *lv,
                              struct lvm_seg *segs)
{
    const char *vgs[] = { "vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                          "vg_extent_size", vg, NULL };
    const char *pvs[] = { "pvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                          "pv_name,pe_start", NULL };
    char *name = keel_strdup_printf("%s/%s", vg, lv);
    const char *lvs[] = { "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                          "seg_start,seg_size,seg_pe_ranges", name, NULL };
    json_t *vrows = lvm_rows(j, vgs, "vg"), *prows = lvm_rows(j, pvs, "pv");
    json_t *lrows = lvm_rows(j, lvs, "lv"), *row;
    uint64_t ext = json_u64(json_array_get(vrows, 0), "vg_extent_size");
    size_t i, n = 0;

    json_array_foreach(lrows, i, row) {
        const char *ranges = json_string_value(json_object_get(row, "seg_pe_ranges"));
        const char *colon = ranges ? strrchr(ranges, ':') : NULL;
        unsigned first = 0, last = 0;
        uint64_t pe_start = UINT64_MAX;
        char dev[128];
        size_t pi;
        json_t *prow;

        ck_assert_msg(colon != NULL && sscanf(colon + 1, "%u-%u", &first, &last) == 2 &&
                      (size_t)(colon - ranges) < sizeof(dev), "seg_pe_ranges '%s'",
                      ranges ? ranges : "(none)");
        memcpy(dev, ranges, (size_t)(colon - ranges));
        dev[colon - ranges] = '\0';
        ck_assert_uint_lt(n, MAX_SEGS);
        segs[n].file = NULL;
        for (size_t k = 0; k < j->n; k++)
            if (strcmp(j->loops[k], dev) == 0)
                segs[n].file = j->files[k];
        ck_assert_msg(segs[n].file != NULL, "lvm names %s, not one of the LUNs' loops", dev);
        json_array_foreach(prows, pi, prow)
            if (strcmp(json_string_value(json_object_get(prow, "pv_name")), dev) == 0)
                pe_start = json_u64(prow, "pe_start");
        ck_assert_msg(pe_start != UINT64_MAX, "pvs lacks %s", dev);
        segs[n].lv_off = json_u64(row, "seg_start");
        segs[n].len = json_u64(row, "seg_size");
        segs[n].file_off = pe_start + (uint64_t)first * ext;
        ck_assert_uint_eq(segs[n].len, (uint64_t)(last - first + 1) * ext);
        n++;
    }
    json_decref(vrows);
    json_decref(prows);
    json_decref(lrows);
    free(name);
    return n;
}

/* Bytes [off, off + len) of the LV, read from the backing files where lvm2 puts them. */
static void lvm_read(const struct lvm_seg *segs, size_t n, unsigned char *buf, uint64_t off,
                     size_t len)
{
    size_t done = 0;

    while (done < len) {
        uint64_t at = off + done;
        size_t k;
        int fd;
        size_t chunk;

        for (k = 0; k < n; k++)
            if (at >= segs[k].lv_off && at < segs[k].lv_off + segs[k].len)
                break;
        ck_assert_msg(k < n, "byte %" PRIu64 " of the LV is in no segment lvm2 reports", at);
        chunk = (size_t)KEEL_MIN((uint64_t)(len - done), segs[k].lv_off + segs[k].len - at);
        fd = open(segs[k].file, O_RDONLY);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pread(fd, buf + done, chunk,
                               (off_t)(segs[k].file_off + (at - segs[k].lv_off))),
                         (ssize_t)chunk);
        close(fd);
        done += chunk;
    }
}

/*
 * The LV as one sparse file (what a host's dm-linear device would show):
 * every data run of each segment's range of its backing file is copied.
 */
static char *lvm_assemble(const struct lvm_seg *segs, size_t n, const char *dir,
                          const char *name)
{
    char *path = keel_strdup_printf("%s/%s", dir, name);
    int out = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    unsigned char *buf = malloc(MiB);
    uint64_t total = 0;

    ck_assert_int_ge(out, 0);
    ck_assert_ptr_nonnull(buf);
    for (size_t k = 0; k < n; k++) {
        int in = open(segs[k].file, O_RDONLY);
        off_t at = (off_t)segs[k].file_off, end = (off_t)(segs[k].file_off + segs[k].len);

        ck_assert_int_ge(in, 0);
        while (at < end) {
            off_t data = lseek(in, at, SEEK_DATA), hole;

            if (data < 0 || data >= end)
                break;
            hole = lseek(in, data, SEEK_HOLE);
            if (hole > end)
                hole = end;
            for (off_t p = data; p < hole;) {
                size_t len = (size_t)KEEL_MIN((off_t)MiB, hole - p);

                ck_assert_int_eq(pread(in, buf, len, p), (ssize_t)len);
                ck_assert_int_eq(pwrite(out, buf, len,
                                        (off_t)(segs[k].lv_off + (uint64_t)(p - (off_t)segs[k].file_off))),
                                 (ssize_t)len);
                p += (off_t)len;
            }
            at = hole;
        }
        close(in);
        total = KEEL_MAX(total, segs[k].lv_off + segs[k].len);
    }
    ck_assert_int_eq(ftruncate(out, (off_t)total), 0);
    close(out);
    free(buf);
    return path;
}

static void span_pattern(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)((i / 512) * 7 + seed * 31 + (i % 512) / 32);
}

START_TEST(span_two_luns)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;
    uint64_t sizes[] = { 8 * GiB, 4 * GiB };
    struct keel_blockdev *devs[2] = { NULL, NULL };
    const char *files[2];
    const char *guids[] = { "360014050000000000000000000000b01",
                            "360014050000000000000000000000b02" };
    struct keel_sd_create c = { .uuid = SD1, .name = "span", .klass = KEEL_SD_CLASS_DATA,
                                .type = KEEL_SD_TYPE_ISCSI, .remote_path = "server:/export",
                                .pv_guids = guids };
    struct keel_sd *sd = NULL;
    const struct keel_lvm_vg *vg;
    const struct keel_lvm_lv *lv;
    struct keel_vol_payload p;
    struct keel_vol_entry e;
    struct lvm_judge j;
    struct lvm_seg segs[MAX_SEGS];
    size_t nsegs;
    uint64_t ext, cap, bounds[MAX_SEGS];
    size_t nb = 0;
    unsigned char *want, *got;
    const size_t win = 2 * MiB;       /* written around each boundary */

    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "span", sizes, 2, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, i + 1), NULL, &devs[i],
                                         &err) == 0, "%s", err.msg);
        files[i] = keel_lab_tgtd_lun_path(t, 0, i + 1);
    }
    ck_assert_msg(keel_sd_create_block(devs, 2, &c, &sd, &err) == 0, "%s", err.msg);
    vg = keel_lvm_store_vg(keel_sd_vg(sd));
    ext = (uint64_t)vg->extent_size * 512;
    /* All the free extents but one: more than either LUN's free run holds. */
    cap = (keel_lvm_vg_free_extents(vg) - 1) * ext;
    vol(sd, IMG1, SPAN, KEEL_VOL_RAW, KEEL_VOL_PREALLOCATED, cap, NULL, false);
    vg = keel_lvm_store_vg(keel_sd_vg(sd));
    lv = keel_lvm_vg_find_lv(vg, SPAN);
    ck_assert_ptr_nonnull(lv);
    ck_assert_msg(lv->nsegs >= 2, "LV %s has %zu segment(s)", SPAN, lv->nsegs);
    {
        bool pv_used[2] = { false, false };

        for (size_t i = 0; i < lv->nsegs; i++) {
            pv_used[lv->segs[i].stripes[0].pv] = true;
            if (i > 0)
                bounds[nb++] = (uint64_t)lv->segs[i].start_extent * ext;
        }
        ck_assert_msg(pv_used[0] && pv_used[1], "LV %s is on one LUN only", SPAN);
    }

    /* The payload is the whole LV, from offset 0 of a linear device of Keel's. */
    ck_assert_int_eq(keel_vol_info(sd, SPAN, &e, &err), 0);
    ck_assert_msg(keel_vol_payload_open(sd, SPAN, &p, &err) == 0, "%s", err.msg);
    ck_assert_ptr_nonnull(p.linear);
    ck_assert_ptr_eq(p.dev, p.linear);
    ck_assert_uint_eq(p.offset, 0);
    ck_assert_uint_eq(p.size, cap);
    ck_assert_uint_eq(p.size, e.size);
    ck_assert_uint_eq(keel_blockdev_size(p.dev), cap);
    {
        char *name = keel_strdup_printf("linear:%s/%s", SD1, SPAN);

        ck_assert_str_eq(keel_blockdev_name(p.dev), name);
        free(name);
    }
    /*
     * A pattern over each segment boundary (half on each side), the first
     * and the last MiB; then zeroes over each boundary in the middle of it.
     */
    want = malloc(win);
    got = malloc(win);
    ck_assert(want != NULL && got != NULL);
    for (size_t b = 0; b < nb; b++) {
        span_pattern(want, win, (unsigned)b + 1);
        ck_assert_msg(keel_blockdev_pwrite(p.dev, want, win, p.offset + bounds[b] - win / 2,
                                           &err) == 0, "%s", err.msg);
    }
    span_pattern(want, MiB, 100);
    ck_assert_msg(keel_blockdev_pwrite(p.dev, want, MiB, p.offset, &err) == 0, "%s", err.msg);
    span_pattern(want, MiB, 101);
    ck_assert_msg(keel_blockdev_pwrite(p.dev, want, MiB, p.offset + cap - MiB, &err) == 0, "%s",
                  err.msg);
    for (size_t b = 0; b < nb; b++)
        ck_assert_msg(keel_blockdev_write_zeroes(p.dev, p.offset + bounds[b] - 64 * 1024,
                                                 128 * 1024, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_flush(p.dev, &err) == 0, "%s", err.msg);
    /* Read back through the payload. */
    for (size_t b = 0; b < nb; b++) {
        span_pattern(want, win, (unsigned)b + 1);
        memset(want + win / 2 - 64 * 1024, 0, 128 * 1024);
        ck_assert_msg(keel_blockdev_pread(p.dev, got, win, p.offset + bounds[b] - win / 2,
                                          &err) == 0, "%s", err.msg);
        ck_assert_msg(memcmp(want, got, win) == 0, "boundary %zu reads back wrong", b);
    }
    keel_vol_payload_close(&p);
    ck_assert_ptr_null(p.dev);

    /* lvm2 agrees on the VG; the LUNs' backing files hold the data where lvm2 says. */
    ck_assert_msg(lvm_judge_attach(&j, files, 2, &err) == 0, "%s", err.msg);
    ck_assert_msg(lvm_judge_agrees(&j, vg, &err) == 0, "%s", err.msg);
    nsegs = lvm_lv_segments(&j, SD1, SPAN, segs);
    ck_assert_uint_eq(nsegs, lv->nsegs);
    ck_assert(segs[0].file != segs[nsegs - 1].file || nsegs > 2);
    for (size_t b = 0; b < nb; b++) {
        span_pattern(want, win, (unsigned)b + 1);
        memset(want + win / 2 - 64 * 1024, 0, 128 * 1024);
        lvm_read(segs, nsegs, got, bounds[b] - win / 2, win);
        ck_assert_msg(memcmp(want, got, win) == 0, "boundary %zu: the LUN files differ", b);
    }
    span_pattern(want, MiB, 100);
    lvm_read(segs, nsegs, got, 0, MiB);
    ck_assert_msg(memcmp(want, got, MiB) == 0, "first MiB: the LUN files differ");
    span_pattern(want, MiB, 101);
    lvm_read(segs, nsegs, got, cap - MiB, MiB);
    ck_assert_msg(memcmp(want, got, MiB) == 0, "last MiB: the LUN files differ");
    lvm_judge_detach(&j);

    /*
     * A qcow2 volume over the same extents: its header is written through
     * all the LV's segments at create, read back by the chain check, moved
     * by an extend; qemu-img judges the LV as lvm2 lays it out.
     */
    ck_assert_msg(keel_vol_delete(sd, SPAN, false, &err) == 0, "%s", err.msg);
    vol(sd, IMG2, SPANQ, KEEL_VOL_COW, KEEL_VOL_PREALLOCATED, cap, NULL, false);
    ck_assert_msg(keel_vol_extend(sd, SPANQ, 2 * cap, &err) == 0, "%s", err.msg);
    vg = keel_lvm_store_vg(keel_sd_vg(sd));
    lv = keel_lvm_vg_find_lv(vg, SPANQ);
    ck_assert_msg(lv != NULL && lv->nsegs >= 2, "LV %s is not spread", SPANQ);
    {
        struct keel_chain ch;

        ck_assert_msg(keel_image_chain(sd, IMG2, &ch, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(ch.n, 1);
        ck_assert_uint_eq(ch.vols[0].md.capacity, 2 * cap);
        keel_chain_release(&ch);
    }
    ck_assert_msg(lvm_judge_attach(&j, files, 2, &err) == 0, "%s", err.msg);
    ck_assert_msg(lvm_judge_agrees(&j, vg, &err) == 0, "%s", err.msg);
    nsegs = lvm_lv_segments(&j, SD1, SPANQ, segs);
    ck_assert_uint_eq(nsegs, lv->nsegs);
    {
        char *dir = keel_lab_tmpdir("span", &err);
        char *img, *out = NULL, *want_size;

        ck_assert_msg(dir != NULL, "%s", err.msg);
        img = lvm_assemble(segs, nsegs, dir, SPANQ);
        {
            const char *info[] = { "qemu-img", "info", "-U", "-f", "qcow2", "--output=json", img,
                                   NULL };
            const char *chk[] = { "qemu-img", "check", "-U", "-q", "-f", "qcow2", img, NULL };

            ck_assert_msg(keel_lab_run_ok(info, NULL, &out, &err) == 0, "%s", err.msg);
            want_size = keel_strdup_printf("\"virtual-size\": %" PRIu64, 2 * cap);
            ck_assert_msg(strstr(out, want_size) != NULL, "qemu-img info lacks %s:\n%s",
                          want_size, out);
            free(want_size);
            free(out);
            ck_assert_msg(keel_lab_run_ok(chk, NULL, NULL, &err) == 0, "%s", err.msg);
        }
        free(img);
        keel_lab_tmpdir_remove(dir);
        free(dir);
    }
    lvm_judge_detach(&j);
    free(want);
    free(got);
    keel_sd_close(sd);
    keel_blockdev_close(devs[0]);
    keel_blockdev_close(devs[1]);
    keel_lab_tgtd_stop(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vol");
    TCase *tc = tcase_create("vol");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    keel_lab_require("ganesha.nfsd");
    keel_lab_require("lvm");
    keel_lab_require("qemu-img");
    keel_lab_require("qemu-io");
    keel_lab_require("mke2fs");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, chains_posix);
    tcase_add_test(tc, chains_nfs);
    tcase_add_test(tc, chains_block);
    tcase_add_test(tc, crash_posix);
    tcase_add_test(tc, crash_block);
    tcase_add_test(tc, cli_and_legality);
    tcase_add_test(tc, span_two_luns);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
