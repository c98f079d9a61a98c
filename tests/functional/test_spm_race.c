/*
 * Three contender processes (tests/functional/lease_contender.c), each with
 * its own host id, race for the SPM lease 50 rounds on a block master
 * domain (tgtd LUN through iSCSI) and 50 on an NFS master domain
 * (nfs-ganesha): exactly one wins each round, and lver grows by one.  Then
 * the SPM is killed with SIGKILL: another contender becomes SPM only after
 * the dead one's host id has expired; the takeover time is printed.
 * N = 1 s, slack 2 s.  Runs alone (not parallel).
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "metadata/sanlock_fmt.h"
#include "tests/functional/contender.h"
#include "tests/harness/lab.h"
#include "volume/sd.h"

#define MiB (UINT64_C(1) << 20)
#define LS "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define ROUNDS 50

/* Start three contenders on `where` (and `sd` for NFS); race ROUNDS rounds. */
static void race(const char *where, const char *sd, struct contender *c)
{
    unsigned long long last = 0;

    for (int i = 0; i < 3; i++)
        contender_spawn(&c[i], i + 1, where, sd);
    for (int i = 0; i < 3; i++)
        contender_joined(&c[i]);
    for (int r = 0; r < ROUNDS; r++) {
        int winner = -1;

        for (int i = 0; i < 3; i++)
            contender_say(&c[i], "acquire");
        for (int i = 0; i < 3; i++) {
            char *l = contender_hear(&c[i]);
            unsigned long long lver;

            if (sscanf(l, "won %llu", &lver) == 1) {
                ck_assert_msg(winner < 0, "round %d: contenders %d and %d both won", r,
                              winner + 1, i + 1);
                ck_assert_msg(lver == last + 1, "round %d: lver %llu after %llu", r, lver, last);
                last = lver;
                winner = i;
            } else {
                ck_assert_msg(strncmp(l, "busy ", 5) == 0, "round %d, contender %d: %s", r,
                              i + 1, l);
            }
            free(l);
        }
        ck_assert_msg(winner >= 0, "round %d: nobody won", r);
        contender_say(&c[winner], "release");
        {
            char *l = contender_hear(&c[winner]);

            ck_assert_msg(strcmp(l, "released") == 0, "%s", l);
            free(l);
        }
    }
    fprintf(stderr, "test_spm_race: %s: %d rounds, one winner each, lver 1..%llu\n", where,
            ROUNDS, last);
}

START_TEST(race_block_then_kill)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t size = 16 * MiB;
    struct keel_lab_tgtd *t = NULL;
    struct keel_blockdev *dev = NULL;
    struct contender c[3] = { { 0 } };

    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "race", &size, 1, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), NULL, &dev, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_sanlock_write_lockspace(dev, 0, LS, 1, 512, MiB, &err) == 0 &&
                  keel_sanlock_write_resource(dev, MiB, LS, "SDM", 512, MiB, &err) == 0 &&
                  keel_blockdev_flush(dev, &err) == 0, "%s", err.msg);
    race(keel_lab_tgtd_lun_url(t, 0, 1), "", c);

    /* kill -9 of the SPM: the next one waits for its host id to expire. */
    {
        char *l;
        uint64_t t0, took = 0;

        contender_say(&c[0], "acquire");
        l = contender_hear(&c[0]);
        ck_assert_msg(strncmp(l, "won ", 4) == 0, "%s", l);
        free(l);
        kill(c[0].pid, SIGKILL);
        waitpid(c[0].pid, NULL, 0);
        c[0].pid = 0;
        t0 = keel_now_ns();
        for (int i = 0; i < 80 && took == 0; i++) {
            contender_say(&c[1], "acquire");
            l = contender_hear(&c[1]);
            if (strncmp(l, "won ", 4) == 0)
                took = keel_now_ns() - t0;
            else
                ck_assert_msg(strncmp(l, "busy ", 5) == 0, "%s", l);
            free(l);
            if (took == 0)
                keel_sleep_ms(250);
        }
        ck_assert_msg(took > 0, "no new SPM within 20 s");
        ck_assert_msg(took >= 8 * KEEL_NS_PER_S, "new SPM %.1f s after the kill: too early",
                      (double)took / 1e9);
        fprintf(stderr, "test_spm_race: new SPM %.1f s after kill -9 of the old one (N = 1 s, "
                        "slack 2 s)\n", (double)took / 1e9);
    }
    fclose(c[0].in);
    fclose(c[0].out);
    contender_stop(&c[1]);
    contender_stop(&c[2]);
    keel_blockdev_close(dev);
    keel_lab_tgtd_stop(t);
}
END_TEST

START_TEST(race_nfs)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_nfs *n = NULL;
    struct keel_fs *fs = NULL;
    struct keel_sd *sd = NULL;
    struct keel_sd_create cr = { .uuid = LS, .name = "master", .type = KEEL_SD_TYPE_NFS,
                                 .klass = KEEL_SD_CLASS_DATA, .remote_path = "127.0.0.1:/x" };
    struct contender c[3] = { { 0 } };

    ck_assert_msg(keel_lab_nfs_start(&n, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_fs_open(keel_lab_nfs_url(n), NULL, &fs, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_sd_create_file(fs, &cr, &sd, &err) == 0, "%s", err.msg);
    keel_sd_close(sd);
    /* The domain's lockspace again with the tests' io timeout (1 s, not 10). */
    {
        struct keel_file *f = NULL;
        struct keel_blockdev *d = NULL;

        ck_assert_msg(keel_file_open(fs, LS "/dom_md/ids", KEEL_O_RDWR, 0, &f, &err) == 0 &&
                      keel_blockdev_open_file(f, 512, &d, &err) == 0 &&
                      keel_sanlock_write_lockspace(d, 0, LS, 1, 512, MiB, &err) == 0, "%s",
                      err.msg);
        keel_blockdev_close(d);
        keel_file_close(f, NULL);
    }
    race(keel_lab_nfs_url(n), LS, c);
    for (int i = 0; i < 3; i++)
        contender_stop(&c[i]);
    keel_fs_close(fs);
    keel_lab_nfs_stop(n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("spm_race");
    TCase *tc = tcase_create("spm_race");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    keel_lab_require("ganesha.nfsd");
    tcase_set_timeout(tc, 400);
    tcase_add_test(tc, race_block_then_kill);
    tcase_add_test(tc, race_nfs);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
