/*
 * Self-fencing of the SPM (spm/lease.h, io/fence.h), with lease-contender
 * processes on a tgtd LUN (N = 1 s, slack 2 s).  Each contender's stand-in
 * for metadata writes is a write log on the LUN -- one record per host
 * with its lver and a sequence number -- written through its own iSCSI
 * session gated by the SPM lease's fence; the test reads the log itself,
 * so it judges what reached storage, not what the process says.
 *   - SIGSTOP of the SPM past the expiry: another contender becomes SPM;
 *     after SIGCONT the old one writes nothing more (its log record does
 *     not change) and reports its writes refused by the fence.
 *   - SIGSTOP of tgtd (a storage stall): the SPM's writes time out, and
 *     it stops writing by its own deadline (8N after its last renewal),
 *     before another host could take the lease (8N + slack).
 * Runs alone (not parallel): lease timing.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "metadata/sanlock_fmt.h"
#include "tests/functional/contender.h"
#include "tests/functional/writelog.h"
#include "tests/harness/lab.h"

#define MiB (UINT64_C(1) << 20)
#define LS "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define N_MS 1000
#define SLACK_MS 2000


/* A LUN with the lockspace at 0 and SDM at 1 MiB; *dev reads it. */
static struct keel_lab_tgtd *lab(struct keel_blockdev **dev)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t size = 32 * MiB;
    struct keel_lab_tgtd *t = NULL;
    struct keel_io_opts o;

    keel_io_opts_init(&o);
    o.timeout_ms = 3000;
    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "fence", &size, 1, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), &o, dev, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_sanlock_write_lockspace(*dev, 0, LS, 1, 512, MiB, &err) == 0 &&
                  keel_sanlock_write_resource(*dev, MiB, LS, "SDM", 512, MiB, &err) == 0 &&
                  keel_blockdev_flush(*dev, &err) == 0, "%s", err.msg);
    return t;
}

/* The newest write-log record of host `id`, read from the LUN. */
static struct wlog_rec read_log(struct keel_blockdev *dev, int id)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct wlog_rec all[WLOG_RING], newest;
    size_t n, damaged;

    ck_assert_msg(wlog_read_host(dev, 4 * MiB, (uint64_t)id, all, &n, &damaged, &newest,
                                 &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(damaged, 0);
    return newest;
}

static unsigned long long won(struct contender *c)
{
    char *l = contender_ask(c, "acquire");
    unsigned long long lver = 0;

    ck_assert_msg(sscanf(l, "won %llu", &lver) == 1, "%s", l);
    free(l);
    return lver;
}

static void expect(struct contender *c, const char *cmd, const char *want)
{
    char *l = contender_ask(c, cmd);

    ck_assert_msg(strcmp(l, want) == 0, "%s: %s, want %s", cmd, l, want);
    free(l);
}

struct status {
    char state[16];
    unsigned long long seq, refused, errors, deadline_ms, fenced_ms;
    char why[600];
};

static struct status status(struct contender *c)
{
    char *l = contender_ask(c, "status");
    struct status s = { { 0 } };
    int off = 0;

    ck_assert_msg(sscanf(l, "status %15s seq=%llu refused=%llu errors=%llu deadline_ms=%llu "
                            "fenced_ms=%llu %n", s.state, &s.seq, &s.refused, &s.errors,
                         &s.deadline_ms, &s.fenced_ms, &off) == 6, "%s", l);
    keel_strlcpy(s.why, l + off, sizeof(s.why));
    free(l);
    return s;
}

static unsigned long long now_ms(void)
{
    return keel_boottime_ns() / KEEL_NS_PER_MS;
}

START_TEST(sigstop_spm)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    struct keel_lab_tgtd *t = lab(&dev);
    struct contender c[2] = { { 0 } };
    unsigned long long lver, lver2, t0, took = 0;
    struct wlog_rec before, after, r2a, r2b;
    struct status st;

    for (int i = 0; i < 2; i++)
        contender_spawn(&c[i], i + 1, keel_lab_tgtd_lun_url(t, 0, 1), "");
    for (int i = 0; i < 2; i++)
        contender_joined(&c[i]);
    lver = won(&c[0]);
    expect(&c[0], "work", "working");
    keel_sleep_ms(500);
    before = read_log(dev, 1);
    ck_assert_msg(before.seq > 0 && before.lver == lver && before.host == 1,
                  "SPM wrote no log record (seq %llu)", (unsigned long long)before.seq);

    /* Stop the SPM well past its expiry; another contender takes over. */
    ck_assert_int_eq(kill(c[0].pid, SIGSTOP), 0);
    t0 = now_ms();
    keel_sleep_ms(300);
    before = read_log(dev, 1);
    while (took == 0 && now_ms() - t0 < 30000) {
        char *l = contender_ask(&c[1], "acquire");

        if (sscanf(l, "won %llu", &lver2) == 1)
            took = now_ms() - t0;
        else
            ck_assert_msg(strncmp(l, "busy ", 5) == 0, "%s", l);
        free(l);
        if (took == 0)
            keel_sleep_ms(500);
    }
    ck_assert_msg(took > 0, "no new SPM within 30 s of stopping the old one");
    ck_assert_msg(took >= 8 * N_MS, "new SPM %llu ms after the stop: before the expiry", took);
    ck_assert_uint_eq(lver2, lver + 1);
    expect(&c[1], "work", "working");
    keel_sleep_ms(500);
    r2a = read_log(dev, 2);

    /* Resume the old SPM: it must write nothing more. */
    ck_assert_int_eq(kill(c[0].pid, SIGCONT), 0);
    keel_sleep_ms(3000);
    after = read_log(dev, 1);
    r2b = read_log(dev, 2);
    ck_assert_msg(after.seq == before.seq && after.lver == lver,
                  "old SPM wrote after resuming: seq %llu -> %llu",
                  (unsigned long long)before.seq, (unsigned long long)after.seq);
    ck_assert_msg(r2a.lver == lver2 && r2b.seq > r2a.seq, "new SPM's log: lver %llu seq %llu->%llu",
                  (unsigned long long)r2a.lver, (unsigned long long)r2a.seq,
                  (unsigned long long)r2b.seq);
    st = status(&c[0]);
    ck_assert_msg(strcmp(st.state, "fenced") == 0 && st.refused >= 1, "old SPM: %s refused=%llu %s",
                  st.state, st.refused, st.why);
    ck_assert_msg(strstr(st.why, "lease " LS ":SDM: write refused") != NULL, "%s", st.why);
    expect(&c[0], "valid", "invalid");
    fprintf(stderr, "test_spm_fence: SPM stopped %.1f s, new SPM after %.1f s (lver %llu); "
                    "old SPM resumed, wrote nothing (log seq %llu), its write: %s\n",
            (double)(took + 3500) / 1e3, (double)took / 1e3, lver2,
            (unsigned long long)after.seq, st.why);
    contender_stop(&c[0]);
    contender_stop(&c[1]);
    keel_blockdev_close(dev);
    keel_lab_tgtd_stop(t);
    (void)err;
}
END_TEST

START_TEST(storage_stall)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    struct keel_lab_tgtd *t = lab(&dev);
    struct contender c = { 0 };
    unsigned long long t0;
    struct status st = { { 0 } };
    struct wlog_rec r;

    contender_spawn(&c, 1, keel_lab_tgtd_lun_url(t, 0, 1), "");
    contender_joined(&c);
    won(&c);
    expect(&c, "work", "working");
    keel_sleep_ms(500);
    ck_assert(read_log(dev, 1).seq > 0);

    ck_assert_msg(keel_lab_tgtd_signal(t, SIGSTOP, &err) == 0, "%s", err.msg);
    t0 = now_ms();
    while (now_ms() - t0 < 20000) {
        st = status(&c);
        if (strcmp(st.state, "working") != 0)
            break;
        keel_sleep_ms(100);
    }
    ck_assert_msg(strcmp(st.state, "fenced") == 0, "holder after 20 s of stall: %s %s", st.state,
                  st.why);
    /* Its deadline came from a renewal before the stall ... */
    ck_assert_msg(st.deadline_ms <= t0 + 8 * N_MS, "deadline %llu ms after the stall",
                  st.deadline_ms - t0);
    /* ... and it stopped before it, so before any host may take over (deadline + slack). */
    ck_assert_msg(st.fenced_ms <= st.deadline_ms, "fenced %llu ms after its deadline",
                  st.fenced_ms - st.deadline_ms);
    fprintf(stderr, "test_spm_fence: storage stalled: holder fenced %.1f s into the stall, "
                    "%.1f s before its deadline and %.1f s before another host could take the "
                    "lease; %llu writes failed meanwhile; %s\n",
            (double)(st.fenced_ms - t0) / 1e3, (double)(st.deadline_ms - st.fenced_ms) / 1e3,
            (double)(st.deadline_ms + SLACK_MS - st.fenced_ms) / 1e3, st.errors, st.why);

    /* Past the deadline the lease is lost for good, however soon storage comes back. */
    while (now_ms() < st.deadline_ms + 500)
        keel_sleep_ms(100);
    ck_assert_msg(keel_lab_tgtd_signal(t, SIGCONT, &err) == 0, "%s", err.msg);
    keel_sleep_ms(3000);
    expect(&c, "valid", "invalid");
    r = read_log(dev, 1);
    /* A write that timed out may still land when the target wakes (the slack covers it). */
    ck_assert_msg(r.seq == st.seq || r.seq == st.seq + 1, "log seq %llu, holder wrote %llu",
                  (unsigned long long)r.seq, st.seq);
    fprintf(stderr, "test_spm_fence: after the stall: log seq %llu, last acknowledged %llu%s\n",
            (unsigned long long)r.seq, st.seq,
            r.seq > st.seq ? " (a timed-out write landed late)" : "");
    ck_assert(status(&c).seq == st.seq);
    contender_stop(&c);
    keel_blockdev_close(dev);
    keel_lab_tgtd_stop(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("spm_fence");
    TCase *tc = tcase_create("spm_fence");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, sigstop_spm);
    tcase_add_test(tc, storage_stall);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
