/*
 * Starting the SPM (spm/spm.h) on a block master domain (tgtd LUN), two
 * hosts with their own host ids and connections, N = 1 s, slack 2 s:
 *   - host 1 becomes SPM (POOL_SPM_ID 1, POOL_SPM_LVER 1, as lvm2 lists the
 *     VG tags) and dies in the middle of a volume create: the LV made,
 *     the journal record open;
 *   - host 2's start is refused while host 1 may still live, then takes
 *     over: recovery rolls the create back before anything else (the LV
 *     is gone, lvm2's vgck and lvs agree), POOL_SPM_ID 2, LVER 2; its own
 *     create is journalled to the end (a second recovery finds nothing);
 *   - when host 2's host id lease runs out, the SPM's writes fail with
 *     io.fenced.
 * Runs alone (not parallel): lease timing.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "metadata/sanlock_fmt.h"
#include "spm/spm.h"
#include "tests/functional/lvm_judge.h"
#include "tests/harness/lab.h"
#include "volume/sd-priv.h"
#include "volume/vol.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define SD "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define POOL "11111111-2222-4333-8444-555555555555"
#define IMG "11111111-0000-4000-8000-000000000001"
#define VOL1 "aaaaaaaa-0000-4000-8000-00000000000a"
#define VOL2 "bbbbbbbb-0000-4000-8000-00000000000b"

static const struct keel_delta_timing T = { .io_timeout = 1, .slack = 2 };
static struct keel_lab_tgtd *tgtd;

struct host {
    struct keel_blockdev *ldev, *mdev;  /* lease and metadata connections */
    struct keel_sd *lsd, *msd;
    struct keel_sd_area ids, leases;
    struct keel_delta *d;
};

static void host_open(struct host *h, int id)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_io_opts o;
    char name[32];

    keel_io_opts_init(&o);
    o.timeout_ms = 1000;
    memset(h, 0, sizeof(*h));
    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(tgtd, 0, 1), &o, &h->ldev, &err) == 0 &&
                  keel_blockdev_open(keel_lab_tgtd_lun_url(tgtd, 0, 1), &o, &h->mdev, &err) == 0 &&
                  keel_sd_open_block(&h->ldev, 1, SD, &h->lsd, &err) == 0 &&
                  keel_sd_open_block(&h->mdev, 1, SD, &h->msd, &err) == 0 &&
                  keel_sd_lv_area(keel_sd_vg(h->lsd), "ids", true, &h->ids, &err) == 0 &&
                  keel_sd_lv_area(keel_sd_vg(h->lsd), "leases", true, &h->leases, &err) == 0,
                  "%s", err.msg);
    snprintf(name, sizeof(name), "host%d.keel", id);
    ck_assert_msg(keel_delta_acquire(h->ids.dev, h->ids.offset, SD, (uint64_t)id, name, &T, &h->d,
                                     &err) == 0 && keel_delta_start(h->d, &err) == 0, "%s",
                  err.msg);
}

static void host_close(struct host *h)
{
    keel_delta_free(h->d);
    keel_sd_close(h->msd);
    keel_sd_close(h->lsd);
    keel_blockdev_close(h->mdev);
    keel_blockdev_close(h->ldev);
}

static int start(struct host *h, struct keel_spm **spm, struct keel_journal_report *rep,
                 struct keel_error *err)
{
    struct keel_spm_conn conn = { .dev = h->mdev };
    struct keel_spm_config c = { .me = h->d, .leases = h->leases.dev,
                                 .sdm_offset = h->leases.offset + MiB, .master = h->msd,
                                 .conns = &conn, .nconns = 1 };

    return keel_spm_start(&c, spm, rep, err);
}

/* A VG tag as lvm2 lists it; and lvm2 agrees with Keel's VG. */
static void lvm_expect(struct keel_sd *sd, const char *tag, bool present)
{
    struct keel_error err = KEEL_ERROR_INIT;
    const char *files[] = { keel_lab_tgtd_lun_path(tgtd, 0, 1) };
    const char *vgs[] = { "vgs", "--noheadings", "-o", "vg_tags", SD, NULL };
    struct lvm_judge j;
    char *out = NULL;

    ck_assert_msg(lvm_judge_attach(&j, files, 1, &err) == 0 &&
                  lvm_judge_agrees(&j, keel_lvm_store_vg(keel_sd_vg(sd)), &err) == 0 &&
                  lvm_judge_run(&j, vgs, &out, &err) == 0, "%s", err.msg);
    ck_assert_msg((strstr(out, tag) != NULL) == present, "lvm2's tags %s %s: %s",
                  present ? "lack" : "have", tag, out);
    free(out);
    lvm_judge_detach(&j);
}

/* The step hook of a host that dies at step 2 of a create: journal, then stop. */
static int die_at_2(void *opaque, const struct keel_sd_op *op, struct keel_error *err)
{
    if (keel_journal_note(opaque, op, err) != 0)
        return -1;
    if (op->step == 2)
        return keel_error_set(err, KEEL_E_CANCELLED, 0, "host dies here");
    return 0;
}

START_TEST(start_recover_fence)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t size = 12 * GiB;
    struct host h1, h2;
    struct keel_spm *spm1 = NULL, *spm2 = NULL;
    struct keel_journal_report rep;
    struct keel_vol_entry e;
    struct keel_vol_create vc = { .image = IMG, .format = KEEL_VOL_COW, .type = KEEL_VOL_SPARSE,
                                  .capacity = GiB };
    uint64_t t0;

    /* A block domain, master of a pool, its lockspace with the tests' io timeout. */
    {
        const char *guids[] = { "360014050000000000000000000000b01" };
        struct keel_sd_create c = { .uuid = SD, .name = "master", .type = KEEL_SD_TYPE_ISCSI,
                                    .klass = KEEL_SD_CLASS_DATA, .pv_guids = guids };
        struct keel_blockdev *dev = NULL;
        struct keel_sd *sd = NULL;
        struct keel_sd_area ids;

        ck_assert_msg(keel_lab_tgtd_start(&tgtd, &err) == 0 &&
                      keel_lab_tgtd_add_target(tgtd, "spm", &size, 1, NULL, NULL, &err) == 0 &&
                      keel_blockdev_open(keel_lab_tgtd_lun_url(tgtd, 0, 1), NULL, &dev, &err) == 0 &&
                      keel_sd_create_block(&dev, 1, &c, &sd, &err) == 0 &&
                      keel_pool_create(sd, POOL, "dc", false, &err) == 0 &&
                      keel_sd_lv_area(keel_sd_vg(sd), "ids", true, &ids, &err) == 0 &&
                      keel_sanlock_write_lockspace(ids.dev, ids.offset, SD, 1, 512, MiB, &err) == 0,
                      "%s", err.msg);
        keel_sd_close(sd);
        keel_blockdev_close(dev);
    }

    /* Host 1: SPM, then dies half way through a create. */
    host_open(&h1, 1);
    ck_assert_msg(start(&h1, &spm1, &rep, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_spm_lver(spm1), 1);
    lvm_expect(h1.msd, "MDT_POOL_SPM_ID=1", true);
    lvm_expect(h1.msd, "MDT_POOL_SPM_LVER=1", true);
    keel_sd_set_step_hook(h1.msd, die_at_2, keel_spm_journal(spm1, SD));
    vc.uuid = VOL1;
    ck_assert_int_eq(keel_vol_create(h1.msd, &vc, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "host dies here") != NULL, "%s", err.msg);
    lvm_expect(h1.msd, "MDT_POOL_SPM_ID=1", true); /* and lvm2 sees the new LV: agrees */
    ck_assert_msg(keel_vol_info(h1.msd, VOL1, &e, &err) == 0, "%s", err.msg);
    ck_assert_int_ne(e.md.legality, KEEL_VOL_LEGAL);
    keel_spm_abandon(spm1);
    keel_delta_stop(h1.d); /* dead: no more renewals, nothing released */

    /* Host 2: refused while host 1 may live, then SPM; recovery first. */
    host_open(&h2, 2);
    t0 = keel_now_ns();
    while (start(&h2, &spm2, &rep, &err) != 0) {
        ck_assert_msg(err.code == KEEL_E_BUSY, "%s", err.msg);
        ck_assert_msg(keel_now_ns() - t0 < 30 * KEEL_NS_PER_S, "no SPM within 30 s: %s", err.msg);
        keel_sleep_ms(1000);
    }
    fprintf(stderr, "test_spm_start: host 2 SPM %.1f s after host 1 died; recovery: %s\n",
            (double)(keel_now_ns() - t0) / 1e9, rep.nlines ? rep.lines[0] : "(nothing)");
    ck_assert_uint_eq(keel_spm_lver(spm2), 2);
    ck_assert_uint_eq(rep.rolled_back, 1);
    ck_assert_int_eq(keel_vol_info(h2.msd, VOL1, &e, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOENT);
    lvm_expect(h2.msd, "MDT_POOL_SPM_ID=2", true);
    lvm_expect(h2.msd, "MDT_POOL_SPM_LVER=2", true);
    lvm_expect(h2.msd, VOL1, false);

    /* Its own create runs journalled to the end. */
    vc.uuid = VOL2;
    ck_assert_msg(keel_vol_create(h2.msd, &vc, NULL, &err) == 0, "%s", err.msg);
    {
        struct keel_journal *j = NULL;

        ck_assert_msg(keel_journal_open(h2.lsd, 99, 2, &j, &err) == 0 &&
                      keel_journal_recover(j, &rep, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(rep.finished + rep.rolled_back, 0);
        keel_journal_close(j);
    }

    /* Host 2's host id runs out: the SPM's writes are fenced. */
    keel_delta_stop(h2.d);
    keel_sleep_ms(8500);
    ck_assert_int_eq(keel_spm_check(spm2, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FENCED);
    vc.uuid = NULL;
    vc.image = "22222222-0000-4000-8000-000000000002";
    ck_assert_int_eq(keel_vol_create(h2.msd, &vc, NULL, &err), -1);
    ck_assert_msg(err.code == KEEL_E_FENCED, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "lease " SD ":SDM: write refused") != NULL, "%s", err.msg);
    keel_spm_abandon(spm2);

    host_close(&h1);
    host_close(&h2);
    keel_lab_tgtd_stop(tgtd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("spm_start");
    TCase *tc = tcase_create("spm_start");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, start_recover_fence);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
