/*
 * Unit tests of metadata/lvm_store.c and lvm_edit.c on file:// devices:
 * VG creation, every kind of change, reading back, caching by seqno,
 * damaged areas, out-of-space refusals, and the size of the text for
 * thousands of LVs.  The lvm2 tools judge the same operations on real
 * LUNs in tests/functional/test_lvm.c.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/faulty.h"
#include "metadata/lvm_crc.h"
#include "metadata/lvm_edit.h"
#include "metadata/lvm_label.h"
#include "metadata/lvm_store.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/keel-test-lvm.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct keel_blockdev *disk(const char *name, uint64_t size)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    char path[512], url[600];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_CREAT | O_RDWR, 0644);
    ck_assert_int_ge(fd, 0);
    if (size)
        ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
    close(fd);
    snprintf(url, sizeof(url), "file://%s", path);
    ck_assert_msg(keel_blockdev_open(url, NULL, &dev, &err) == 0, "%s", err.msg);
    return dev;
}

static struct keel_lvm_store *open_vg(struct keel_blockdev **d, size_t n)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_store *s = NULL;

    ck_assert_msg(keel_lvm_store_open(d, n, "vg1", "test", &s, &err) == 0, "%s", err.msg);
    return s;
}

static struct keel_lvm_store *make_vg(struct keel_blockdev **d, size_t n,
                                      struct keel_lvm_layout layout)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_store *s = NULL;
    const char *tags[] = { "RHAT_storage_domain" };
    struct keel_lvm_create_opts o = { .layout = layout, .host = "test" };

    ck_assert_msg(keel_lvm_store_create(d, n, "vg1", 128 * MiB, tags, 1, &o, &s, &err) == 0, "%s",
                  err.msg);
    return s;
}

START_TEST(create_change_reopen)
{
    struct keel_blockdev *d[2] = { disk("a.img", 4 * GiB), disk("b.img", 2 * GiB) };
    struct keel_lvm_store *s = make_vg(d, 1, KEEL_LVM_LAYOUT_OVIRT), *r;
    struct keel_error err = KEEL_ERROR_INIT;
    const char *t3[] = { "IU_img", "PU_parent", "MD_7" };
    const char *add[] = { "IU_new" }, *del[] = { "IU_img" };
    const char *vgadd[] = { "MDT_X=1" };
    const struct keel_lvm_vg *vg;
    const struct keel_lvm_lv *lv;

    vg = keel_lvm_store_vg(s);
    ck_assert_uint_eq(vg->seqno, 1);
    /* (4 GiB - 129 MiB - 128 MiB) / 128 MiB */
    ck_assert_uint_eq(vg->pvs[0].pe_count, 29);
    ck_assert_uint_eq(vg->pvs[0].pe_start, 129 * 2048);
    ck_assert_msg(keel_lvm_store_lv_create(s, "lv1", 300 * MiB, t3, 3, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_create(s, "lv2", MiB, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_resize(s, "lv1", GiB, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_tags(s, "lv1", add, 1, del, 1, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_rename(s, "lv2", "lv2b", &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_vg_tags(s, vgadd, 1, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_extend(s, d[1], &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_create(s, "big", 30 * 128 * MiB, NULL, 0, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_lvm_store_lv_resize(s, "lv1", 512 * MiB, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_remove(s, "lv2b", &err) == 0, "%s", err.msg);
    vg = keel_lvm_store_vg(s);
    ck_assert_uint_eq(vg->seqno, 11);

    /* Another reader sees exactly that. */
    r = open_vg(d, 2);
    vg = keel_lvm_store_vg(r);
    ck_assert_uint_eq(vg->seqno, 11);
    ck_assert_uint_eq(vg->npvs, 2);
    ck_assert_uint_eq(vg->nlvs, 2);
    ck_assert(keel_lvm_strlist_has(&vg->tags, "MDT_X=1"));
    lv = keel_lvm_vg_find_lv(vg, "lv1");
    ck_assert_ptr_nonnull(lv);
    ck_assert_uint_eq(keel_lvm_lv_extents(lv), 4);
    ck_assert_uint_eq(lv->tags.n, 3);
    ck_assert_str_eq(lv->tags.v[2], "IU_new");
    lv = keel_lvm_vg_find_lv(vg, "big");
    ck_assert_uint_eq(keel_lvm_lv_extents(lv), 30);
    ck_assert_uint_gt(lv->nsegs, 1); /* spans both PVs */
    ck_assert_uint_eq(keel_lvm_store_warnings(r)->n, 0);
    /* The first device alone holds the metadata: enough to read. */
    keel_lvm_store_close(r);
    r = open_vg(d, 1);
    ck_assert_uint_eq(keel_lvm_store_vg(r)->seqno, 11);
    /* ...but not to change it. */
    ck_assert_int_eq(keel_lvm_store_lv_create(r, "x", MiB, NULL, 0, &err), -1);
    ck_assert_str_eq(err.msg, "VG vg1: the device of pv1 is not among the devices given");
    keel_lvm_store_close(r);
    keel_lvm_store_close(s);
    keel_blockdev_close(d[0]);
    keel_blockdev_close(d[1]);
}
END_TEST

START_TEST(refusals_leave_the_vg_unchanged)
{
    struct keel_blockdev *d[1] = { disk("a.img", 2 * GiB) };
    struct keel_lvm_store *s = make_vg(d, 1, KEEL_LVM_LAYOUT_DEFAULT);
    struct keel_error err = KEEL_ERROR_INIT;
    const char *bad[] = { "a@b" };

    ck_assert_msg(keel_lvm_store_lv_create(s, "lv1", 128 * MiB, NULL, 0, &err) == 0, "%s",
                  err.msg);
    ck_assert_int_eq(keel_lvm_store_lv_create(s, "lv2", 100 * GiB, NULL, 0, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOSPC);
    ck_assert_str_eq(err.msg, "VG vg1: cannot allocate 800 extents for LV lv2: 14 free");
    ck_assert_int_eq(keel_lvm_store_lv_create(s, "lv1", MiB, NULL, 0, &err), -1);
    ck_assert_str_eq(err.msg, "VG vg1: LV lv1 exists already");
    ck_assert_int_eq(keel_lvm_store_lv_create(s, "bad/name", MiB, NULL, 0, &err), -1);
    ck_assert_str_eq(err.msg, "VG vg1: LV name 'bad/name': character '/' is not allowed");
    ck_assert_int_eq(keel_lvm_store_lv_create(s, "lv3", MiB, bad, 1, &err), -1);
    ck_assert_str_eq(err.msg, "VG vg1: LV lv3: tag 'a@b': character '@' is not allowed");
    ck_assert_int_eq(keel_lvm_store_lv_remove(s, "nope", &err), -1);
    ck_assert_str_eq(err.msg, "VG vg1: no LV named nope");
    ck_assert_int_eq(keel_lvm_store_lv_resize(s, "lv1", 100 * GiB, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOSPC);
    ck_assert_uint_eq(keel_lvm_store_vg(s)->seqno, 2);
    keel_lvm_store_close(s);
    s = open_vg(d, 1);
    ck_assert_uint_eq(keel_lvm_store_vg(s)->seqno, 2);
    ck_assert_uint_eq(keel_lvm_store_vg(s)->nlvs, 1);
    keel_lvm_store_close(s);
    keel_blockdev_close(d[0]);
}
END_TEST

/* A reader re-reads the text only when the seqno moved. */
START_TEST(reader_cache)
{
    struct keel_blockdev *d[1] = { disk("a.img", GiB) };
    struct keel_lvm_store *w = make_vg(d, 1, KEEL_LVM_LAYOUT_DEFAULT), *r = open_vg(d, 1);
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned reads = keel_lvm_store_text_reads(r);
    bool changed = true;

    for (int i = 0; i < 5; i++) {
        ck_assert_msg(keel_lvm_store_refresh(r, &changed, &err) == 0, "%s", err.msg);
        ck_assert(!changed);
    }
    ck_assert_uint_eq(keel_lvm_store_text_reads(r), reads);
    ck_assert_msg(keel_lvm_store_lv_create(w, "lv1", MiB, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_refresh(r, &changed, &err) == 0, "%s", err.msg);
    ck_assert(changed);
    ck_assert_uint_eq(keel_lvm_store_text_reads(r), reads + 1);
    ck_assert_uint_eq(keel_lvm_store_vg(r)->seqno, 2);
    ck_assert_ptr_nonnull(keel_lvm_vg_find_lv(keel_lvm_store_vg(r), "lv1"));
    /* A writer whose view is old is refused, not allowed to overwrite. */
    ck_assert_msg(keel_lvm_store_lv_create(w, "lv2", MiB, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_lvm_store_lv_create(r, "lv3", MiB, NULL, 0, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_BUSY);
    ck_assert_str_eq(err.msg, "VG vg1: changed on storage by someone else (now seqno 3); re-read "
                              "it and try again");
    keel_lvm_store_close(r);
    keel_lvm_store_close(w);
    keel_blockdev_close(d[0]);
}
END_TEST

/* Damage one byte, then open: a clear error naming the device and area; nothing written. */
static void damage_and_open(uint64_t offset, uint8_t xor_with, enum keel_errc want,
                            const char *want_msg_end)
{
    struct keel_blockdev *d[1] = { disk("a.img", GiB) };
    struct keel_lvm_store *s = make_vg(d, 1, KEEL_LVM_LAYOUT_DEFAULT);
    struct keel_error err = KEEL_ERROR_INIT;
    char path[512], before[4096], after[4096];
    uint8_t b;
    int fd;
    size_t ml;

    ck_assert_msg(keel_lvm_store_lv_create(s, "lv1", MiB, NULL, 0, &err) == 0, "%s", err.msg);
    keel_lvm_store_close(s);
    snprintf(path, sizeof(path), "%s/a.img", dir);
    fd = open(path, O_RDWR);
    ck_assert_int_eq(pread(fd, &b, 1, (off_t)offset), 1);
    b ^= xor_with;
    ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)offset), 1);
    ck_assert_int_eq(pread(fd, before, sizeof(before), 4096), (ssize_t)sizeof(before));
    ck_assert_int_eq(keel_lvm_store_open(d, 1, "vg1", "test", &s, &err), -1);
    ck_assert_int_eq(err.code, want);
    ml = strlen(want_msg_end);
    ck_assert_msg(strlen(err.msg) >= ml && strcmp(err.msg + strlen(err.msg) - ml,
                                                   want_msg_end) == 0, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, keel_blockdev_name(d[0])) != NULL, "%s", err.msg);
    ck_assert_int_eq(pread(fd, after, sizeof(after), 4096), (ssize_t)sizeof(after));
    ck_assert(memcmp(before, after, sizeof(before)) == 0);
    close(fd);
    keel_blockdev_close(d[0]);
}

START_TEST(damaged_text_checksum)
{
    /* seqno 2 text: the second copy, at 4096 + 1536 or later; the first byte of the area
     * after the header is seqno 1's, the current copy follows it. Flip a byte of the current. */
    struct keel_blockdev *d[1] = { disk("probe.img", GiB) };
    struct keel_lvm_store *s = make_vg(d, 1, KEEL_LVM_LAYOUT_DEFAULT);
    struct keel_error err = KEEL_ERROR_INIT;
    uint8_t sec[512];
    struct keel_lvm_mdah h;

    ck_assert_msg(keel_lvm_store_lv_create(s, "lv1", MiB, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_blockdev_pread(d[0], sec, 512, 4096, &err), 0);
    ck_assert_int_eq(keel_lvm_mdah_decode(sec, 4096, &h, &err), 0);
    keel_lvm_store_close(s);
    keel_blockdev_close(d[0]);
    damage_and_open(4096 + h.slot[0].offset + 40, 0x01, KEEL_E_CHECKSUM,
                    ": metadata area at 4096: metadata text checksum mismatch");
}
END_TEST

START_TEST(damaged_header_and_magic)
{
    damage_and_open(4096 + 100, 0x01, KEEL_E_CHECKSUM,
                    ": metadata area at 4096: metadata area header checksum mismatch");
}
END_TEST

START_TEST(damaged_label)
{
    damage_and_open(512 + 40, 0x01, KEEL_E_CHECKSUM,
                    ": label in sector 1: label checksum mismatch");
}
END_TEST

START_TEST(wrong_magic)
{
    struct keel_blockdev *d[1] = { disk("a.img", GiB) };
    struct keel_lvm_store *s = make_vg(d, 1, KEEL_LVM_LAYOUT_DEFAULT);
    struct keel_error err = KEEL_ERROR_INIT;
    uint8_t sec[512];
    uint32_t c;

    keel_lvm_store_close(s);
    ck_assert_int_eq(keel_blockdev_pread(d[0], sec, 512, 4096, &err), 0);
    sec[4] = 'X';
    c = keel_lvm_crc(KEEL_LVM_CRC_SEED, sec + 4, 508);
    for (int i = 0; i < 4; i++)
        sec[i] = (uint8_t)(c >> (8 * i));
    ck_assert_int_eq(keel_blockdev_pwrite(d[0], sec, 512, 4096, &err), 0);
    ck_assert_int_eq(keel_lvm_store_open(d, 1, "vg1", "test", &s, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    ck_assert_msg(strstr(err.msg, ": metadata area at 4096: metadata area header: wrong magic") !=
                  NULL, "%s", err.msg);
    keel_blockdev_close(d[0]);
}
END_TEST

/* Two areas, one stale: the newest wins and the stale one is reported. */
START_TEST(stale_area_is_reported)
{
    struct keel_blockdev *d[1] = { disk("a.img", 2 * GiB) };
    struct keel_lvm_store *s = make_vg(d, 1, KEEL_LVM_LAYOUT_OVIRT);
    struct keel_error err = KEEL_ERROR_INIT;
    uint8_t old2[512];
    uint64_t mda2 = 2 * GiB - 128 * MiB;

    ck_assert_int_eq(keel_blockdev_pread(d[0], old2, 512, mda2, &err), 0);
    ck_assert_msg(keel_lvm_store_lv_create(s, "lv1", MiB, NULL, 0, &err) == 0, "%s", err.msg);
    keel_lvm_store_close(s);
    /* Put the second area's header back to seqno 1: as if the commit stopped there. */
    ck_assert_int_eq(keel_blockdev_pwrite(d[0], old2, 512, mda2, &err), 0);
    s = open_vg(d, 1);
    ck_assert_uint_eq(keel_lvm_store_vg(s)->seqno, 2);
    ck_assert_uint_eq(keel_lvm_store_warnings(s)->n, 1);
    ck_assert_msg(strstr(keel_lvm_store_warnings(s)->v[0], "VG vg1 seqno 1, older than seqno 2 "
                                                          "elsewhere") != NULL,
                  "%s", keel_lvm_store_warnings(s)->v[0]);
    /* The next change writes both areas again. */
    ck_assert_msg(keel_lvm_store_lv_create(s, "lv2", MiB, NULL, 0, &err) == 0, "%s", err.msg);
    keel_lvm_store_close(s);
    s = open_vg(d, 1);
    ck_assert_uint_eq(keel_lvm_store_vg(s)->seqno, 3);
    ck_assert_uint_eq(keel_lvm_store_warnings(s)->n, 0);
    keel_lvm_store_close(s);
    keel_blockdev_close(d[0]);
}
END_TEST

/* The VG model as text with a fixed trailer, to compare two models byte for byte. */
static char *model_text(const struct keel_lvm_vg *vg)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *text = NULL;
    size_t len;

    ck_assert_msg(keel_lvm_vg_format(vg, "x", "host", 1795505551, &text, &len, &err) == 0, "%s",
                  err.msg);
    return text;
}

/*
 * The changes edit the committed VG in place: when their commit fails
 * after the edit (here: a damaged area, found before anything is
 * written), the VG is put back as it was, and after that the incremental
 * text still matches what a fresh reader gets.
 */
START_TEST(failed_commit_puts_the_vg_back)
{
    struct keel_blockdev *d[1] = { disk("a.img", 2 * GiB) };
    struct keel_lvm_store *s = make_vg(d, 1, KEEL_LVM_LAYOUT_OVIRT), *r;
    struct keel_error err = KEEL_ERROR_INIT;
    const char *t1[] = { "t1" }, *t2[] = { "t2" };
    uint64_t mda2 = 2 * GiB - 128 * MiB;
    uint8_t good[512], bad[512];
    char *before, *after;

    ck_assert_msg(keel_lvm_store_lv_create(s, "lv1", 128 * MiB, t1, 1, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_create(s, "lv2", 128 * MiB, NULL, 0, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_lvm_store_lv_create(s, "lv3", 128 * MiB, NULL, 0, &err) == 0, "%s",
                  err.msg);
    /* Damage the magic of area 2's header. */
    ck_assert_int_eq(keel_blockdev_pread(d[0], good, 512, mda2, &err), 0);
    memcpy(bad, good, sizeof(bad));
    bad[5] ^= 0x20;
    ck_assert_int_eq(keel_blockdev_pwrite(d[0], bad, 512, mda2, &err), 0);
    /* The first change sees the area move and re-reads; the next ones are refused. */
    ck_assert_int_eq(keel_lvm_store_lv_create(s, "lv4", 128 * MiB, NULL, 0, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_BUSY);
    before = model_text(keel_lvm_store_vg(s));
    ck_assert_int_eq(keel_lvm_store_lv_create(s, "lv4", 128 * MiB, t1, 1, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CORRUPT);
    ck_assert_msg(strstr(err.msg, "not writing until it is repaired") != NULL, "%s", err.msg);
    ck_assert_int_eq(keel_lvm_store_lv_resize(s, "lv1", GiB, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CORRUPT);
    ck_assert_int_eq(keel_lvm_store_lv_resize(s, "lv1", MiB, &err), 0); /* no change: no commit */
    ck_assert_int_eq(keel_lvm_store_lv_rename(s, "lv2", "lv2-new", &err), -1);
    ck_assert_int_eq(keel_lvm_store_lv_tags(s, "lv1", t2, 1, t1, 1, &err), -1);
    ck_assert_int_eq(keel_lvm_store_lv_remove(s, "lv2", &err), -1);
    ck_assert_int_eq(keel_lvm_store_lv_remove(s, "lv1", &err), -1);
    ck_assert_int_eq(keel_lvm_store_lv_remove(s, "lv3", &err), -1);
    ck_assert_int_eq(keel_lvm_store_vg_tags(s, t2, 1, NULL, 0, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CORRUPT);
    after = model_text(keel_lvm_store_vg(s));
    ck_assert_str_eq(after, before);
    free(after);
    free(before);
    /* Repaired: the changes go through, and a fresh reader reads what the store holds. */
    ck_assert_int_eq(keel_blockdev_pwrite(d[0], good, 512, mda2, &err), 0);
    ck_assert_int_eq(keel_lvm_store_lv_create(s, "lv4", 128 * MiB, NULL, 0, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_BUSY);
    ck_assert_msg(keel_lvm_store_lv_remove(s, "lv2", &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_create(s, "lv4", 256 * MiB, t1, 1, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_lvm_store_lv_rename(s, "lv1", "lv1-new", &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_tags(s, "lv3", t2, 1, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_resize(s, "lv3", 384 * MiB, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_vg_tags(s, t2, 1, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_lvm_store_vg(s)->seqno, 10);
    r = open_vg(d, 1);
    ck_assert_uint_eq(keel_lvm_store_warnings(r)->n, 0);
    ck_assert_uint_eq(keel_lvm_store_text_size(r), keel_lvm_store_text_size(s));
    before = model_text(keel_lvm_store_vg(s));
    after = model_text(keel_lvm_store_vg(r));
    ck_assert_str_eq(after, before);
    free(before);
    free(after);
    keel_lvm_store_close(r);
    keel_lvm_store_close(s);
    keel_blockdev_close(d[0]);
}
END_TEST

/*
 * A refresh that saw the headers move but could not read the new text
 * leaves a store that must not be trusted: its next change re-reads
 * first, and never commits its old VG over what the other writer
 * committed (lv1 must survive).
 */
START_TEST(failed_refresh_is_not_trusted)
{
    struct keel_blockdev *d[1] = { disk("a.img", GiB) }, *f[1];
    struct keel_lvm_store *w = make_vg(d, 1, KEEL_LVM_LAYOUT_DEFAULT), *r, *fresh;
    struct keel_fault_plan eio = { .eio_at = 2, .eio_ops = 1u << KEEL_IO_READ };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_faulty *ctl = NULL;
    int rc;

    ck_assert_msg(keel_faulty_blockdev(disk("a.img", 0), NULL, &f[0], &ctl, &err) == 0, "%s",
                  err.msg);
    r = open_vg(f, 1);
    ck_assert_msg(keel_lvm_store_lv_create(w, "lv1", MiB, NULL, 0, &err) == 0, "%s", err.msg);
    /* The header read passes (it moved), the re-read of the text fails. */
    keel_faulty_arm(ctl, &eio);
    ck_assert_int_eq(keel_lvm_store_refresh(r, NULL, &err), -1);
    keel_faulty_arm(ctl, NULL);
    rc = keel_lvm_store_lv_create(r, "lv3", MiB, NULL, 0, &err);
    if (rc != 0) {  /* refused (busy) is fine; then it has re-read and goes through */
        ck_assert_int_eq(err.code, KEEL_E_BUSY);
        ck_assert_msg(keel_lvm_store_lv_create(r, "lv3", MiB, NULL, 0, &err) == 0, "%s",
                      err.msg);
    }
    fresh = open_vg(d, 1);
    ck_assert_msg(keel_lvm_vg_find_lv(keel_lvm_store_vg(fresh), "lv1") != NULL,
                  "lv1, committed by the other writer, was lost");
    ck_assert_ptr_nonnull(keel_lvm_vg_find_lv(keel_lvm_store_vg(fresh), "lv3"));
    ck_assert_uint_eq(keel_lvm_store_vg(fresh)->seqno, 3);
    keel_lvm_store_close(fresh);
    keel_lvm_store_close(r);
    keel_lvm_store_close(w);
    keel_blockdev_close(f[0]);
    keel_blockdev_close(d[0]);
}
END_TEST

START_TEST(not_a_pv)
{
    struct keel_blockdev *d[1] = { disk("a.img", GiB) };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_store *s = NULL;
    char want[600];

    ck_assert_int_eq(keel_lvm_store_open(d, 1, "vg1", "test", &s, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    snprintf(want, sizeof(want), "%s: not an LVM2 physical volume (no label)",
             keel_blockdev_name(d[0]));
    ck_assert_str_eq(err.msg, want);
    keel_blockdev_close(d[0]);
}
END_TEST

/*
 * 5000 LVs with 4 tags each, VDSM-style names, in the 128 MiB areas oVirt
 * uses: the text size per LV is printed (docs/lvm.md quotes it).  Built in
 * memory and committed once: this tests the size, not the speed.
 */
START_TEST(five_thousand_lvs)
{
    struct keel_blockdev *d[1] = { disk("a.img", 1024 * GiB) };
    struct keel_lvm_store *s = make_vg(d, 1, KEEL_LVM_LAYOUT_OVIRT), *r;
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_vg *vg = keel_lvm_vg_dup(keel_lvm_store_vg(s));
    size_t empty = keel_lvm_store_text_size(s);

    for (int i = 0; i < 5000; i++) {
        char name[64], iu[64], pu[64], md[16], extra[32];
        const char *tags[4] = { iu, pu, md, extra };

        snprintf(name, sizeof(name), "%08x-0000-4000-8000-%012x", i, i * 7);
        snprintf(iu, sizeof(iu), "IU_%08x-1111-4000-8000-%012x", i, i);
        snprintf(pu, sizeof(pu), "PU_00000000-0000-0000-0000-000000000000");
        snprintf(md, sizeof(md), "MD_%d", i + 1);
        snprintf(extra, sizeof(extra), "KEEL_gen_%d", i % 10);
        ck_assert_msg(keel_lvm_lv_create(vg, name, 1, tags, 4, "host", 1795505551, &err) == 0,
                      "%s", err.msg);
    }
    ck_assert_msg(keel_lvm_store_commit(s, vg, "5000 LVs", &err) == 0, "%s", err.msg);
    fprintf(stderr, "text for 5000 LVs with 4 tags: %zu bytes (%zu bytes per LV); maximum %llu\n",
            keel_lvm_store_text_size(s), (keel_lvm_store_text_size(s) - empty) / 5000,
            (unsigned long long)keel_lvm_store_text_max(s));
    ck_assert_uint_lt(keel_lvm_store_text_size(s), keel_lvm_store_text_max(s));
    r = open_vg(d, 1);
    ck_assert_uint_eq(keel_lvm_store_vg(r)->nlvs, 5000);
    keel_lvm_store_close(r);
    keel_lvm_store_close(s);
    keel_blockdev_close(d[0]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lvm_store");
    TCase *tc = tcase_create("lvm_store");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, create_change_reopen);
    tcase_add_test(tc, refusals_leave_the_vg_unchanged);
    tcase_add_test(tc, reader_cache);
    tcase_add_test(tc, damaged_text_checksum);
    tcase_add_test(tc, damaged_header_and_magic);
    tcase_add_test(tc, damaged_label);
    tcase_add_test(tc, wrong_magic);
    tcase_add_test(tc, stale_area_is_reported);
    tcase_add_test(tc, not_a_pv);
    tcase_add_test(tc, failed_commit_puts_the_vg_back);
    tcase_add_test(tc, failed_refresh_is_not_trusted);
    tcase_add_test(tc, five_thousand_lvs);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
