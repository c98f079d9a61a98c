/*
 * Delta leases (spm/delta): host ids in a lockspace on a tgtd LUN reached
 * through iSCSI, with short timings (io_timeout 1 s, slack 2 s: renew every
 * 2 s, lost after 8 s, dead after 10 s), judged by the real sanlock
 * (`sanlock direct read_leader` / `dump` on the LUN's file):
 *   - a host joins (2N), renews, and sanlock sees its name and generation;
 *   - a live host's id cannot be taken (the contender waits host-dead and
 *     sees it renewed: BUSY);
 *   - a host that stops renewing is seen LIVE, then FAIL, then DEAD by
 *     another host, and its id can then be taken (generation + 1);
 *   - the stalled host's own lease is invalid past 8N and stays lost: its
 *     renewal after the takeover is refused and its release writes nothing;
 *   - a live holder whose record was changed by another writer stops at
 *     its next renewal;
 *   - release frees the id (timestamp 0).
 * Runs alone (not parallel): lease timing on a loaded machine.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "metadata/sanlock_fmt.h"
#include "spm/delta.h"
#include "tests/functional/sanlock_judge.h"
#include "tests/harness/lab.h"

#define MiB (UINT64_C(1) << 20)
#define LS "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f"

static const struct keel_delta_timing T = { .io_timeout = 1, .slack = 2 };

static struct keel_blockdev *lun(struct keel_lab_tgtd *t)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_io_opts o;
    struct keel_blockdev *d = NULL;

    keel_io_opts_init(&o);
    o.timeout_ms = 1000; /* I/O within N */
    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), &o, &d, &err) == 0, "%s",
                  err.msg);
    return d;
}

/* sanlock's read_leader of host id `id`: the value of `field`. */
static char *sanlock_field(const char *file, int id, const char *field)
{
    char *spec = keel_strdup_printf("%s:%d:%s:0", LS, id, file);
    char *v = sanlock_judge_read_leader("-s", spec, field);

    free(spec);
    return v;
}

static void expect_field(const char *file, int id, const char *field, const char *want)
{
    char *v = sanlock_field(file, id, field);

    ck_assert_msg(strcmp(v, want) == 0, "host id %d: sanlock says %s %s, want %s", id, field, v,
                  want);
    free(v);
}

START_TEST(host_ids)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t size = 16 * MiB, t0;
    struct keel_lab_tgtd *t = NULL;
    struct keel_blockdev *da, *db, *dc;
    struct keel_delta *a = NULL, *b = NULL, *c = NULL;
    const char *file;
    bool saw_fail = false, saw_dead = false;

    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "ids", &size, 1, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    file = keel_lab_tgtd_lun_path(t, 0, 1);
    da = lun(t);
    db = lun(t);
    dc = lun(t);
    ck_assert_msg(keel_sanlock_write_lockspace(da, 0, LS, 1, 512, MiB, &err) == 0, "%s",
                  err.msg);

    /* A joins as host 1, B as host 2; sanlock sees them. */
    t0 = keel_now_ns();
    ck_assert_msg(keel_delta_acquire(da, 0, LS, 1, "hostA.keel", &T, &a, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_now_ns() - t0 >= 2 * KEEL_NS_PER_S, "joined without waiting 2N");
    ck_assert_msg(keel_delta_acquire(db, 0, LS, 2, "hostB.keel", &T, &b, &err) == 0, "%s",
                  err.msg);
    ck_assert_int_eq(keel_delta_start(a, &err), 0);
    ck_assert_int_eq(keel_delta_start(b, &err), 0);
    expect_field(file, 1, "resource_name", "hostA.keel");
    expect_field(file, 1, "owner_id", "1");
    expect_field(file, 1, "owner_generation", "1");
    expect_field(file, 2, "resource_name", "hostB.keel");
    ck_assert(keel_delta_valid(a, NULL));
    /* sanlock direct dump lists the joined hosts of the lockspace. */
    {
        char *area = keel_strdup_printf("%s:0:1048576", file), *out = NULL;
        const char *argv[] = { "sanlock", "direct", "dump", area, NULL };

        ck_assert_msg(keel_lab_run_ok(argv, NULL, &out, &err) == 0, "%s", err.msg);
        ck_assert_msg(strstr(out, LS) != NULL && strstr(out, "hostA.keel") != NULL &&
                      strstr(out, "hostB.keel") != NULL, "sanlock dump:\n%s", out);
        free(out);
        free(area);
    }

    /* C cannot take host 1 while A renews it. */
    t0 = keel_now_ns();
    ck_assert_int_eq(keel_delta_acquire(dc, 0, LS, 1, "hostC.keel", &T, &c, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_BUSY);
    ck_assert_str_eq(err.msg, "lockspace " LS ": host id 1 is held by live host hostA.keel");
    ck_assert_msg(keel_now_ns() - t0 >= 10 * KEEL_NS_PER_S, "refused before host-dead time");
    ck_assert_int_eq(keel_delta_host_state(a, 2), KEEL_HOST_LIVE);

    /* B stalls: A sees it fail, then die. */
    keel_delta_stop(b);
    for (int i = 0; i < 60 && !saw_dead; i++) {
        enum keel_host_state s;

        keel_sleep_ms(500);
        s = keel_delta_host_state(a, 2);
        saw_fail |= s == KEEL_HOST_FAIL;
        saw_dead |= s == KEEL_HOST_DEAD;
        ck_assert_msg(s != KEEL_HOST_DEAD || saw_fail, "dead without failing first");
    }
    ck_assert_msg(saw_fail && saw_dead, "host 2 never seen FAIL then DEAD");
    /* B's own lease ran out at 8N (it stopped renewing). */
    ck_assert(!keel_delta_valid(b, NULL));

    /* C takes B's id (generation 2); B's late renewal finds it taken. */
    ck_assert_msg(keel_delta_acquire(dc, 0, LS, 2, "hostC.keel", &T, &c, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(keel_delta_generation(c), 2);
    expect_field(file, 2, "resource_name", "hostC.keel");
    expect_field(file, 2, "owner_generation", "2");
    /* B's lease expired for good (invariant 4): its late renewal is refused
     * and its release writes nothing over C's record. */
    ck_assert_int_eq(keel_delta_renew(b, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_PERM);
    ck_assert(!keel_delta_valid(b, NULL));
    ck_assert_int_eq(keel_delta_release(b, &err), 0);
    expect_field(file, 2, "resource_name", "hostC.keel");

    /* A live holder whose record another writer changed stops at its next renewal. */
    keel_delta_stop(a);
    {
        unsigned char sec[512];
        struct keel_sanlock_leader l;

        ck_assert_int_eq(keel_blockdev_pread(dc, sec, 512, 0, &err), 0);
        ck_assert_msg(keel_sanlock_leader_decode(sec, KEEL_SANLOCK_DELTA_MAGIC, "host 1", &l,
                                                 &err) == 0, "%s", err.msg);
        l.timestamp++;
        keel_sanlock_leader_encode(&l, sec);
        ck_assert_int_eq(keel_blockdev_pwrite(dc, sec, 512, 0, &err), 0);
    }
    ck_assert_int_eq(keel_delta_renew(a, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CORRUPT);
    ck_assert_msg(strstr(err.msg, "our record of host id 1 changed: now hostA.keel") != NULL,
                  "%s", err.msg);
    ck_assert(!keel_delta_valid(a, NULL));
    ck_assert_int_eq(keel_delta_release(a, &err), 0);
    {
        char *v = sanlock_field(file, 1, "timestamp");

        ck_assert_msg(strcmp(v, "0") != 0, "a lost lease's release cleared the record");
        free(v);
    }

    /* Release frees the id. */
    ck_assert_msg(keel_delta_release(c, &err) == 0, "%s", err.msg);
    expect_field(file, 2, "timestamp", "0");
    keel_delta_free(a);
    keel_delta_free(b);
    keel_delta_free(c);
    keel_blockdev_close(da);
    keel_blockdev_close(db);
    keel_blockdev_close(dc);
    keel_lab_tgtd_stop(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("delta");
    TCase *tc = tcase_create("delta");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    keel_lab_require("sanlock");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, host_ids);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
