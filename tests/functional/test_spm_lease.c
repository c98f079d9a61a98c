/*
 * The SPM lease (spm/paxos) on a tgtd LUN through iSCSI, with short
 * timings (N = 1 s, slack 2 s), judged by the real sanlock:
 *   - three hosts race for SDM, ten rounds: exactly one wins each time,
 *     sanlock's read_leader names it, lver grows by one per round;
 *   - a live owner's lease is refused at once, naming the owner;
 *   - the owner stalls (stops renewing its host id): another host takes
 *     SDM only once the owner is dead, by which time the owner's own lease
 *     has expired; the takeover time is printed.
 * Runs alone (not parallel): lease timing on a loaded machine.
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "metadata/sanlock_fmt.h"
#include "spm/paxos.h"
#include "tests/functional/sanlock_judge.h"
#include "tests/harness/lab.h"

#define MiB (UINT64_C(1) << 20)
#define LS "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define NHOSTS 3

static const struct keel_delta_timing T = { .io_timeout = 1, .slack = 2 };

struct host {
    uint64_t id;
    struct keel_blockdev *dev;
    struct keel_delta *d;
    char name[32];
    pthread_barrier_t *go;
    int rc;
    struct keel_paxos_owner got;
    struct keel_error err;
};

static struct keel_blockdev *lun(struct keel_lab_tgtd *t)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_io_opts o;
    struct keel_blockdev *d = NULL;

    keel_io_opts_init(&o);
    o.timeout_ms = 1000;
    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), &o, &d, &err) == 0, "%s",
                  err.msg);
    return d;
}

static void *join(void *arg)
{
    struct host *h = arg;

    h->err = (struct keel_error)KEEL_ERROR_INIT;
    h->rc = keel_delta_acquire(h->dev, 0, LS, h->id, h->name, &T, &h->d, &h->err);
    if (h->rc == 0)
        h->rc = keel_delta_start(h->d, &h->err);
    return NULL;
}

static void *race(void *arg)
{
    struct host *h = arg;

    h->err = (struct keel_error)KEEL_ERROR_INIT;
    pthread_barrier_wait(h->go);
    h->rc = keel_paxos_acquire(h->d, h->dev, MiB, LS, "SDM", &h->got, &h->err);
    return NULL;
}

static char *sdm_field(const char *file, const char *field)
{
    char *spec = keel_strdup_printf("%s:SDM:%s:%llu", LS, file, (unsigned long long)MiB);
    char *v = sanlock_judge_read_leader("-r", spec, field);

    free(spec);
    return v;
}

START_TEST(spm_lease)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t size = 16 * MiB, lver = 0;
    struct keel_lab_tgtd *t = NULL;
    struct host h[NHOSTS];
    pthread_t th[NHOSTS];
    pthread_barrier_t go;
    const char *file;

    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "spm", &size, 1, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    file = keel_lab_tgtd_lun_path(t, 0, 1);
    memset(h, 0, sizeof(h));
    pthread_barrier_init(&go, NULL, NHOSTS);
    for (int i = 0; i < NHOSTS; i++) {
        h[i].id = (uint64_t)i + 1;
        h[i].dev = lun(t);
        h[i].go = &go;
        snprintf(h[i].name, sizeof(h[i].name), "host%d.keel", i + 1);
    }
    ck_assert_msg(keel_sanlock_write_lockspace(h[0].dev, 0, LS, 1, 512, MiB, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_sanlock_write_resource(h[0].dev, MiB, LS, "SDM", 512, MiB, &err) == 0 &&
                  keel_blockdev_flush(h[0].dev, &err) == 0, "%s", err.msg);
    for (int i = 0; i < NHOSTS; i++)
        pthread_create(&th[i], NULL, join, &h[i]);
    for (int i = 0; i < NHOSTS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(h[i].rc == 0, "%s", h[i].err.msg);
    }

    /* Ten races: exactly one winner each, sanlock agrees, lver + 1 per round. */
    for (int round = 0; round < 10; round++) {
        int winner = -1;
        char *v;

        for (int i = 0; i < NHOSTS; i++)
            pthread_create(&th[i], NULL, race, &h[i]);
        for (int i = 0; i < NHOSTS; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < NHOSTS; i++) {
            if (h[i].rc == 0) {
                ck_assert_msg(winner < 0, "round %d: hosts %d and %d both won", round, winner + 1,
                              i + 1);
                winner = i;
            } else {
                ck_assert_msg(h[i].err.code == KEEL_E_BUSY, "round %d: %s", round, h[i].err.msg);
            }
        }
        ck_assert_msg(winner >= 0, "round %d: nobody won", round);
        ck_assert_uint_eq(h[winner].got.lver, lver + 1);
        lver = h[winner].got.lver;
        v = sdm_field(file, "owner_id");
        ck_assert_msg(strtoull(v, NULL, 10) == keel_delta_host_id(h[winner].d),
                      "round %d: sanlock says owner %s, Keel host %" PRIu64, round, v,
                      keel_delta_host_id(h[winner].d));
        free(v);
        ck_assert_msg(keel_paxos_release(h[winner].d, h[winner].dev, MiB, LS, "SDM",
                                         &h[winner].got, &err) == 0, "%s", err.msg);
        /* Released: the leader cleared, or (when another host committed the
         * winner's ballot and so wrote the leader) left for the RELEASED
         * dblock to tell, as sanlock does. */
        v = sdm_field(file, "timestamp");
        if (strcmp(v, "0") != 0) {
            char *w = sdm_field(file, "write_id"), *o = sdm_field(file, "owner_id");

            ck_assert_msg(strcmp(w, o) != 0, "round %d: leader not cleared by its writer %s",
                          round, w);
            free(w);
            free(o);
        }
        free(v);
    }

    /* Host 1 owns SDM; host 2 is refused at once while host 1 lives. */
    ck_assert_msg(keel_paxos_acquire(h[0].d, h[0].dev, MiB, LS, "SDM", &h[0].got, &err) == 0,
                  "%s", err.msg);
    {
        struct keel_paxos_owner o;
        uint64_t t0 = keel_now_ns();

        ck_assert_int_eq(keel_paxos_acquire(h[1].d, h[1].dev, MiB, LS, "SDM", &o, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_BUSY);
        ck_assert_msg(strstr(err.msg, "owned by host 1 generation 1, alive") != NULL, "%s",
                      err.msg);
        ck_assert_msg(keel_now_ns() - t0 < 2 * KEEL_NS_PER_S, "a live owner must fail fast");
    }

    /* Host 1 stalls: host 2 takes over only after it is dead. */
    {
        struct keel_paxos_owner o;
        uint64_t t0 = keel_now_ns(), took = 0;
        char *v;

        keel_delta_stop(h[0].d);
        for (int i = 0; i < 60; i++) {
            if (keel_paxos_acquire(h[1].d, h[1].dev, MiB, LS, "SDM", &o, &err) == 0) {
                took = keel_now_ns() - t0;
                break;
            }
            ck_assert_msg(err.code == KEEL_E_BUSY, "%s", err.msg);
            /* Safety: while host 1's lease may still be valid, nobody else owns SDM. */
            keel_sleep_ms(500);
        }
        ck_assert_msg(took > 0, "no takeover within 30 s");
        ck_assert_msg(!keel_delta_valid(h[0].d, NULL), "host 2 won while host 1's lease held");
        ck_assert_msg(took >= 8 * KEEL_NS_PER_S, "takeover after %.1f s: before host-dead",
                      (double)took / 1e9);
        fprintf(stderr, "test_spm_lease: takeover %.1f s after the owner stalled (N = 1 s, "
                        "slack 2 s: dead after 10 s without a renewal)\n", (double)took / 1e9);
        ck_assert_uint_eq(o.lver, lver + 2);
        {
            /* sanlock direct dump of the resource shows SDM owned by host 2. */
            char *area = keel_strdup_printf("%s:%llu:1048576", file, (unsigned long long)MiB);
            const char *argv[] = { "sanlock", "direct", "dump", area, NULL };
            char *out = NULL;

            ck_assert_msg(keel_lab_run_ok(argv, NULL, &out, &err) == 0, "%s", err.msg);
            ck_assert_msg(strstr(out, " SDM ") != NULL && strstr(out, " 0002 ") != NULL,
                          "sanlock dump:\n%s", out);
            free(out);
            free(area);
        }
        v = sdm_field(file, "owner_id");
        if (strcmp(v, "2") != 0) {
            char *area = keel_strdup_printf("%s:%llu:1048576", file, (unsigned long long)MiB);
            const char *argv[] = { "sanlock", "direct", "dump", area, "-f", "2", NULL };
            char *out = NULL;

            keel_lab_run_ok(argv, NULL, &out, &err);
            fprintf(stderr, "got host %" PRIu64 " gen %" PRIu64 " lver %" PRIu64 "\n%s\n",
                    o.host_id, o.generation, o.lver, out ? out : err.msg);
        }
        ck_assert_str_eq(v, "2");
        free(v);
    }
    for (int i = 0; i < NHOSTS; i++) {
        keel_delta_free(h[i].d);
        keel_blockdev_close(h[i].dev);
    }
    pthread_barrier_destroy(&go);
    keel_lab_tgtd_stop(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("spm_lease");
    TCase *tc = tcase_create("spm_lease");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    keel_lab_require("sanlock");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, spm_lease);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
