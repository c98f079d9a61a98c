/*
 * Keel reads what oVirt writes: a V5 block domain built the way VDSM builds
 * one, with the real tools on a loop device over a tgtd LUN's file --
 * pvcreate/vgcreate with VDSM's options, vgchange with the MDT_ tags
 * (made in Python by VDSM's rules: tests/data/sdmd/iscsi_v5_tags.txt),
 * lvcreate of the special LVs and of volume LVs with IU_/PU_/MD_ tags,
 * qemu-img create on the LVs, and the metadata slots written with dd --
 * is read by Keel through iSCSI with every volume and chain right.  Then
 * Keel adds a snapshot and lvm2 and qemu-img read the result.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "tests/functional/lvm_judge.h"
#include "tests/harness/lab.h"
#include "volume/image.h"
#include "volume/vol.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define SD "7a3b1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define BLANK "00000000-0000-0000-0000-000000000000"
#define IMG_A "a0000000-0000-4000-8000-00000000000a"
#define IMG_T "70000000-0000-4000-8000-000000000007"
#define IMG_B "b0000000-0000-4000-8000-00000000000b"
#define IMG_C "c0000000-0000-4000-8000-00000000000c"
#define V_A1 "a1000000-0000-4000-8000-0000000000a1"
#define V_A2 "a2000000-0000-4000-8000-0000000000a2"
#define V_T "7e000000-0000-4000-8000-00000000007e"
#define V_B1 "b1000000-0000-4000-8000-0000000000b1"
#define V_C1 "c1000000-0000-4000-8000-0000000000c1"
#define NOWHERE "deadbeef-0000-4000-8000-000000000000"
#define V_A3 "a3000000-0000-4000-8000-0000000000a3"

struct lab {
    struct keel_lab_tgtd *t;
    const char *file;
    char *loop;
    struct keel_error err;
};

static void lvm(struct lab *l, const char *const argv[])
{
    const char *devs[] = { l->loop };

    ck_assert_msg(keel_lab_lvm(devs, 1, argv, NULL, &l->err) == 0, "%s", l->err.msg);
}

__attribute__((noinline)) static char *lvm_out(struct lab *l, const char *const argv[])
{
    const char *devs[] = { l->loop };
    char *out = NULL;

    ck_assert_msg(keel_lab_lvm(devs, 1, argv, &out, &l->err) == 0, "%s", l->err.msg);
    return out;
}

static void lvcreate(struct lab *l, const char *name, const char *size, const char *img,
                     const char *parent, int slot)
{
    char iu[64], pu[64], md[16];

    if (img == NULL) {
        const char *argv[] = { "lvcreate", "-an", "-Zn", "--autobackup", "n", "--contiguous",
                               "n", "--wipesignatures", "n", "--size", size, "--name", name, SD,
                               NULL };

        lvm(l, argv);
        return;
    }
    snprintf(iu, sizeof(iu), "IU_%s", img);
    snprintf(pu, sizeof(pu), "PU_%s", parent);
    snprintf(md, sizeof(md), "MD_%d", slot);
    {
        const char *argv[] = { "lvcreate", "-an", "-Zn", "--autobackup", "n", "--contiguous", "n",
                               "--wipesignatures", "n", "--size", size, "--addtag", iu,
                               "--addtag", pu, "--addtag", md, "--name", name, SD, NULL };

        lvm(l, argv);
    }
}

/* Byte offset of an LV on the LUN, from lvm2's own report. */
static uint64_t lv_offset(struct lab *l, const char *name)
{
    const char *pvs[] = { "pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start",
                          NULL };
    const char *lvs[] = { "lvs", "--noheadings", "-o", "lv_name,seg_pe_ranges", SD, NULL };
    char *o1 = lvm_out(l, pvs), *o2 = lvm_out(l, lvs), *p;
    uint64_t pe_start = strtoull(o1, NULL, 10), pe;

    p = strstr(o2, name);
    ck_assert_msg(p != NULL, "lvs lacks %s:\n%s", name, o2);
    p = strchr(p, ':');
    ck_assert(p != NULL);
    pe = strtoull(p + 1, NULL, 10);
    free(o1);
    free(o2);
    return pe_start + pe * 128 * MiB;
}

/* qemu-img create on a loop device over the LV, as VDSM does on /dev/<vg>/<lv>. */
static void qcow2_on_lv(struct lab *l, const char *name, const char *backing, const char *fmt)
{
    char *loop = NULL;
    const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=1.1",
                           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
    int i = 7;

    ck_assert_msg(keel_lab_loop_attach(l->file, lv_offset(l, name), GiB, &loop, &l->err) == 0,
                  "%s", l->err.msg);
    if (backing != NULL) {
        argv[i++] = "-u";
        argv[i++] = "-b";
        argv[i++] = backing;
        argv[i++] = "-F";
        argv[i++] = fmt;
    }
    argv[i++] = loop;
    argv[i++] = "1073741824";
    ck_assert_msg(keel_lab_run_ok(argv, NULL, NULL, &l->err) == 0, "%s", l->err.msg);
    keel_lab_loop_detach(loop);
    free(loop);
}

/* VDSM's V5 metadata text, into slot n with dd (section 4.4, 5.2). */
static void slot(struct lab *l, int n, const char *img, const char *parent, const char *fmt,
                 const char *type, const char *voltype)
{
    char text[600], *tmp = keel_lab_tmpdir("slot", &l->err), *path, *seek, *of;
    FILE *f;
    uint64_t at = lv_offset(l, "metadata") + MiB + (uint64_t)n * 8192;
    int len = snprintf(text, sizeof(text),
                       "CAP=1073741824\nCTIME=1700000000\nDESCRIPTION={\"DiskAlias\":\"d%d\","
                       "\"DiskDescription\":\"\"}\nDISKTYPE=DATA\nDOMAIN=" SD "\nFORMAT=%s\nGEN=0\n"
                       "IMAGE=%s\nLEGALITY=LEGAL\nPUUID=%s\nSEQ=0\nTYPE=%s\nVOLTYPE=%s\nEOF\n",
                       n, fmt, img, parent, type, voltype);

    path = keel_strdup_printf("%s/slot", tmp);
    f = fopen(path, "wb");
    ck_assert(f != NULL);
    fwrite(text, 1, (size_t)len, f);
    for (int i = len; i < 512; i++)
        fputc(0, f);
    fclose(f);
    seek = keel_strdup_printf("seek=%" PRIu64, at / 512);
    of = keel_strdup_printf("of=%s", l->file);
    {
        char *in = keel_strdup_printf("if=%s", path);
        const char *argv[] = { "dd", in, of, "bs=512", seek, "count=1", "conv=notrunc,fsync",
                               "status=none", NULL };

        ck_assert_msg(keel_lab_run_ok(argv, NULL, NULL, &l->err) == 0, "%s", l->err.msg);
        free(in);
    }
    free(seek);
    free(of);
    free(path);
    keel_lab_tmpdir_remove(tmp);
    free(tmp);
}

static const struct keel_vol_entry *entry(const struct keel_vol_list *vl, const char *uuid)
{
    const struct keel_vol_entry *e = keel_vol_list_find(vl, uuid);

    ck_assert_msg(e != NULL, "Keel does not list volume %s", uuid);
    return e;
}

START_TEST(keel_reads_vdsm_block_domain)
{
    uint64_t sizes[] = { 12 * GiB };
    struct lab l = { .err = KEEL_ERROR_INIT };
    struct keel_blockdev *dev = NULL;
    struct keel_sd *sd = NULL;
    struct keel_vol_list vl;
    struct keel_chain c;
    char *tagtext, *save = NULL;

    ck_assert_msg(keel_lab_tgtd_start(&l.t, &l.err) == 0, "%s", l.err.msg);
    ck_assert_msg(keel_lab_tgtd_add_target(l.t, "vdsm", sizes, 1, NULL, NULL, &l.err) == 0, "%s",
                  l.err.msg);
    l.file = keel_lab_tgtd_lun_path(l.t, 0, 1);
    ck_assert_msg(keel_lab_loop_attach(l.file, 0, 0, &l.loop, &l.err) == 0, "%s", l.err.msg);

    /* lvm.createVG: 128 MiB metadata x2 on the first PV, 128 MiB extents, UNREADY. */
    {
        const char *pvc[] = { "pvcreate", "--metadatasize", "128m", "--metadatacopies", "2",
                              "--metadataignore", "y", l.loop, NULL };
        const char *pvch[] = { "pvchange", "--metadataignore", "n", l.loop, NULL };
        const char *vgc[] = { "vgcreate", "--setautoactivation", "n", "--physicalextentsize",
                              "128m", "--addtag", "RHAT_storage_domain_UNREADY", SD, l.loop,
                              NULL };

        lvm(&l, pvc);
        lvm(&l, pvch);
        lvm(&l, vgc);
    }
    /* The special LVs, in VDSM's order and sizes. */
    lvcreate(&l, "metadata", "128m", NULL, NULL, 0);
    lvcreate(&l, "ids", "8m", NULL, NULL, 0);
    lvcreate(&l, "inbox", "16m", NULL, NULL, 0);
    lvcreate(&l, "outbox", "16m", NULL, NULL, 0);
    lvcreate(&l, "leases", "2048m", NULL, NULL, 0);
    lvcreate(&l, "xleases", "1024m", NULL, NULL, 0);
    lvcreate(&l, "master", "1024m", NULL, NULL, 0);
    /* The domain metadata as VG tags, then ready. */
    {
        char path[512];
        const char *argv[64] = { "vgchange" };
        int n = 1;
        FILE *f;
        long len;

        snprintf(path, sizeof(path), "%s/sdmd/iscsi_v5_tags.txt", getenv("KEEL_TEST_DATA"));
        f = fopen(path, "rb");
        ck_assert(f != NULL);
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        fseek(f, 0, SEEK_SET);
        tagtext = calloc(1, (size_t)len + 1);
        ck_assert_int_eq(fread(tagtext, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        for (char *t = strtok_r(tagtext, "\n", &save); t != NULL; t = strtok_r(NULL, "\n", &save)) {
            argv[n++] = "--addtag";
            argv[n++] = t;
        }
        argv[n++] = SD;
        argv[n] = NULL;
        lvm(&l, argv);
        free(tagtext);
    }
    {
        const char *argv[] = { "vgchange", "--deltag", "RHAT_storage_domain_UNREADY", "--addtag",
                               "RHAT_storage_domain", SD, NULL };

        lvm(&l, argv);
    }
    /* Volumes: a base and a snapshot, a template and a thin disk on it, an orphan layer. */
    lvcreate(&l, V_A1, "1024m", IMG_A, BLANK, 1);
    lvcreate(&l, V_A2, "1024m", IMG_A, V_A1, 2);
    lvcreate(&l, V_T, "1024m", IMG_T, BLANK, 3);
    lvcreate(&l, V_B1, "1024m", IMG_B, V_T, 4);
    lvcreate(&l, V_C1, "1024m", IMG_C, NOWHERE, 5);
    qcow2_on_lv(&l, V_A1, NULL, NULL);
    qcow2_on_lv(&l, V_A2, V_A1, "qcow2");
    qcow2_on_lv(&l, V_B1, V_T, "raw");
    qcow2_on_lv(&l, V_C1, NOWHERE, "qcow2");
    slot(&l, 1, IMG_A, BLANK, "COW", "SPARSE", "INTERNAL");
    slot(&l, 2, IMG_A, V_A1, "COW", "SPARSE", "LEAF");
    slot(&l, 3, IMG_T, BLANK, "RAW", "PREALLOCATED", "SHARED");
    slot(&l, 4, IMG_B, V_T, "COW", "SPARSE", "LEAF");
    slot(&l, 5, IMG_C, NOWHERE, "COW", "SPARSE", "LEAF");

    /* Keel, through iSCSI. */
    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(l.t, 0, 1), NULL, &dev, &l.err) == 0,
                  "%s", l.err.msg);
    ck_assert_msg(keel_sd_open_block(&dev, 1, NULL, &sd, &l.err) == 0, "%s", l.err.msg);
    ck_assert_str_eq(keel_sd_info(sd)->uuid, SD);
    ck_assert_str_eq(keel_sd_info(sd)->description, "vdsm built");
    ck_assert_uint_eq(keel_sd_info(sd)->version, 5);
    ck_assert_msg(keel_vol_list(sd, &vl, &l.err) == 0, "%s", l.err.msg);
    ck_assert_uint_eq(vl.n, 5);
    {
        const struct keel_vol_entry *a1 = entry(&vl, V_A1), *a2 = entry(&vl, V_A2),
                                    *t = entry(&vl, V_T), *b1 = entry(&vl, V_B1);

        ck_assert_int_eq(a1->status, KEEL_VOL_OK);
        ck_assert_str_eq(a1->image, IMG_A);
        ck_assert_int_eq(a1->slot, 1);
        ck_assert_int_eq(a1->md.role, KEEL_VOL_INTERNAL);
        ck_assert_str_eq(a2->md.parent, V_A1);
        ck_assert_int_eq(a2->md.format, KEEL_VOL_COW);
        ck_assert_uint_eq(a2->md.capacity, GiB);
        ck_assert_str_eq(a2->md.description, "{\"DiskAlias\":\"d2\",\"DiskDescription\":\"\"}");
        ck_assert_int_eq(t->md.role, KEEL_VOL_SHARED);
        ck_assert_int_eq(t->md.format, KEEL_VOL_RAW);
        ck_assert_str_eq(b1->image, IMG_B);
        ck_assert_uint_eq(b1->size, GiB);
    }
    keel_vol_list_release(&vl);
    ck_assert_msg(keel_image_chain(sd, IMG_A, &c, &l.err) == 0, "%s", l.err.msg);
    ck_assert_uint_eq(c.n, 2);
    ck_assert_str_eq(c.vols[0].uuid, V_A1);
    ck_assert_str_eq(c.vols[1].uuid, V_A2);
    keel_chain_release(&c);
    ck_assert_msg(keel_image_chain(sd, IMG_B, &c, &l.err) == 0, "%s", l.err.msg);
    ck_assert(c.on_template);
    ck_assert_str_eq(c.vols[0].uuid, V_T);
    keel_chain_release(&c);
    /* A parent that does not exist is refused, named. */
    ck_assert_int_eq(keel_image_chain(sd, IMG_C, &c, &l.err), -1);
    ck_assert_int_eq(l.err.code, KEEL_E_CORRUPT);
    ck_assert_str_eq(l.err.msg, "image " IMG_C ": volume " V_C1 "'s parent " NOWHERE
                                " does not exist");

    /* Keel changes it; lvm2 and qemu-img read the result. */
    {
        struct keel_vol_create vc = { .image = IMG_A, .uuid = V_A3, .format = KEEL_VOL_COW,
                                      .type = KEEL_VOL_SPARSE, .capacity = GiB,
                                      .parent = V_A2 };
        struct lvm_judge j;
        const char *files[] = { l.file };
        const char *lvs[] = { "lvs", "--noheadings", "-o", "lv_name,lv_tags", SD, NULL };
        char *out;

        ck_assert_msg(keel_vol_create(sd, &vc, NULL, &l.err) == 0, "%s", l.err.msg);
        keel_lab_loop_detach(l.loop);
        ck_assert_msg(lvm_judge_attach(&j, files, 1, &l.err) == 0, "%s", l.err.msg);
        ck_assert_msg(lvm_judge_agrees(&j, keel_lvm_store_vg(keel_sd_vg(sd)), &l.err) == 0, "%s",
                      l.err.msg);
        ck_assert_msg(lvm_judge_run(&j, lvs, &out, &l.err) == 0, "%s", l.err.msg);
        ck_assert_msg(strstr(out, V_A3 " IU_" IMG_A ",MD_6,PU_" V_A2) != NULL, "%s", out);
        free(out);
        lvm_judge_detach(&j);
    }
    ck_assert_msg(keel_image_chain(sd, IMG_A, &c, &l.err) == 0, "%s", l.err.msg);
    ck_assert_uint_eq(c.n, 3);
    ck_assert_int_eq(c.vols[1].md.role, KEEL_VOL_INTERNAL);
    keel_chain_release(&c);
    keel_sd_close(sd);
    keel_blockdev_close(dev);
    free(l.loop);
    keel_lab_tgtd_stop(l.t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vdsm_block");
    TCase *tc = tcase_create("vdsm_block");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    keel_lab_require("lvm");
    keel_lab_require("qemu-img");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, keel_reads_vdsm_block_domain);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
