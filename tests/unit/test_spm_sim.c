/*
 * The SPM under a simulated clock (common/monotime.h keel_lease_clock_*):
 * hosts join, renew, take the SPM lease, write a write log through a
 * fenced connection (tests/functional/writelog.h), die, stop, stall and
 * hand over -- many lease lifetimes per second of real time.  The disk is
 * a local file reached through io/'s POSIX backend; the hosts' lease code,
 * fences and io engine are Keel's own, only time is simulated (sleeps move
 * it forward; nothing runs in a renewal thread).
 *
 * Each round (10 s of simulated time, steps of 250 ms) injects one fault:
 * kill of the SPM, a stop of the SPM for 2-14 s while the others contend,
 * a storage stall of 1-12 s (nobody's I/O gets through: no renewal, no
 * write, no ballot), a handover.  The checker keeps every write that
 * landed with its lease version and time, and counts violations: a write
 * of lver l landing after the first write of a higher lver (two writers);
 * lver not growing; damaged or lost log records on the disk.
 *
 * KEEL_SIM_ROUNDS rounds (default 100; the soak runs 1000), seed
 * KEEL_SIM_SEED.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fence.h"
#include "metadata/sanlock_fmt.h"
#include "spm/lease.h"
#include "tests/functional/writelog.h"

#define MiB (UINT64_C(1) << 20)
#define S (KEEL_NS_PER_S)
#define MS (KEEL_NS_PER_MS)
#define LS "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define NC 3
#define MAXL 8192
#define MAX_ID 1999      /* the lockspace's 2000 hosts; the disk has a log ring for each */
#define DISK (4 * MiB + (uint64_t)(MAX_ID + 1) * WLOG_HOST_BYTES)

static const struct keel_delta_timing TIMING = { .io_timeout = 1, .slack = 2 };

/* ---- the simulated clock ---- */

static uint64_t T;

static uint64_t sim_now(void *opaque)
{
    (void)opaque;
    return __atomic_load_n(&T, __ATOMIC_ACQUIRE);
}

static void sim_sleep(void *opaque, unsigned ms)
{
    (void)opaque;
    __atomic_add_fetch(&T, (uint64_t)ms * MS, __ATOMIC_ACQ_REL);
}

static const struct keel_sim_clock sim_clock = { .now_ns = sim_now, .sleep_ms = sim_sleep };

static void advance(uint64_t ns)
{
    __atomic_add_fetch(&T, ns, __ATOMIC_ACQ_REL);
}

/* ---- the world ---- */

struct host {
    int id;
    struct keel_blockdev *ldev, *wdev;  /* lease connection; fenced write-log connection */
    struct keel_delta *d;
    struct keel_lease *lease;
    uint64_t seq, next_renew, next_try, stopped_until;
};

static struct {
    char path[256];
    char *url;
    struct host h[NC];
    int next_id;
    uint64_t stall_until;
    unsigned long long last_lver;
    /* the checker */
    uint64_t first_t[MAXL], last_t[MAXL];
    bool seen[MAXL];
    unsigned violations, regressions, lost, damaged, takeovers, faults[4];
    unsigned long long writes, refused;
    unsigned seed;
} W;

static unsigned rnd(unsigned n)
{
    W.seed = W.seed * 1103515245u + 12345u;
    return (W.seed >> 16) % n;
}

static void host_join(struct host *h)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char name[32];

    memset(h, 0, sizeof(*h));
    ck_assert_msg(W.next_id <= MAX_ID, "out of host ids");
    h->id = W.next_id++;
    snprintf(name, sizeof(name), "sim%d.keel", h->id);
    ck_assert_msg(keel_blockdev_open(W.url, NULL, &h->ldev, &err) == 0 &&
                  keel_blockdev_open(W.url, NULL, &h->wdev, &err) == 0, "%s", err.msg);
    /* A free id: joining sleeps 2N of simulated time. */
    ck_assert_msg(keel_delta_acquire(h->ldev, 0, LS, (uint64_t)h->id, name, &TIMING, &h->d,
                                     &err) == 0, "%s", err.msg);
    h->next_renew = sim_now(NULL) + 2 * S;
}

/* A host that dies: nothing released, nothing written. */
static void host_die(struct host *h)
{
    if (h->lease != NULL) {
        keel_blockdev_set_fence(h->wdev, NULL);
        keel_lease_free(h->lease);
    }
    keel_delta_free(h->d);
    keel_blockdev_close(h->wdev);
    keel_blockdev_close(h->ldev);
    memset(h, 0, sizeof(*h));
}

static void drop_lease(struct host *h, bool release)
{
    struct keel_error err = KEEL_ERROR_INIT;

    keel_blockdev_set_fence(h->wdev, NULL);
    if (release)
        keel_lease_release(h->lease, &err);
    else
        keel_lease_free(h->lease);
    h->lease = NULL;
}

static void landed(uint64_t lver, uint64_t t)
{
    ck_assert_uint_lt(lver, MAXL);
    if (!W.seen[lver] || t < W.first_t[lver])
        W.first_t[lver] = t;
    if (!W.seen[lver] || t > W.last_t[lver])
        W.last_t[lver] = t;
    W.seen[lver] = true;
    W.writes++;
}

/* One step of one host: renew, write as SPM, or contend. */
static void host_step(struct host *h, int spm_exists)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t now = sim_now(NULL);

    if (now < h->stopped_until || now < W.stall_until)
        return;
    /* An SPM writes first: one woken from a stop goes on where it was. */
    if (h->lease != NULL) {
        struct wlog_rec r = { .host = (uint64_t)h->id, .lver = keel_lease_lver(h->lease),
                              .seq = h->seq + 1, .t_ns = sim_now(NULL) };
        unsigned char *buf = keel_aligned_alloc(4096, WLOG_REC);
        int rc;

        wlog_encode(&r, buf);
        rc = keel_blockdev_pwrite(h->wdev, buf, WLOG_REC, wlog_offset(4 * MiB, &r), &err);
        free(buf);
        if (rc == 0) {
            h->seq = r.seq;
            landed(r.lver, sim_now(NULL));
        } else {
            ck_assert_msg(err.code == KEEL_E_FENCED, "%s", err.msg);
            W.refused++;
            drop_lease(h, false);
        }
    }
    if (now >= h->next_renew) {
        if (keel_delta_renew(h->d, &err) == 0)
            h->next_renew = now + 2 * S;
        else
            h->next_renew = now + S / 2;
    }
    if (!keel_delta_valid(h->d, NULL)) {
        host_die(h); /* it lost its host id: a new process with a new id */
        host_join(h);
        return;
    }
    if (h->lease == NULL && !spm_exists && now >= h->next_try) {
        struct keel_lease *l = NULL;

        h->next_try = now + S;
        if (keel_lease_acquire(h->d, h->ldev, MiB, LS, "SDM", &l, &err) == 0) {
            if (keel_lease_lver(l) <= W.last_lver)
                W.regressions++;
            W.last_lver = keel_lease_lver(l);
            W.takeovers++;
            h->lease = l;
            keel_blockdev_set_fence(h->wdev, keel_lease_fence(l));
        }
    }
}

static int spm_index(void)
{
    for (int i = 0; i < NC; i++)
        if (W.h[i].lease != NULL && sim_now(NULL) >= W.h[i].stopped_until)
            return i;
    return -1;
}

static void step(void)
{
    int spm = spm_index();

    advance(250 * MS);
    for (int j = 0; j < NC; j++)
        host_step(&W.h[(j + (int)rnd(NC)) % NC], spm >= 0);
}

static void check_disk(void)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;

    ck_assert_msg(keel_blockdev_open(W.url, NULL, &dev, &err) == 0, "%s", err.msg);
    for (int i = 0; i < NC; i++) {
        struct wlog_rec recs[WLOG_RING], newest;
        size_t n, bad;

        if (W.h[i].id == 0)
            continue;
        ck_assert_msg(wlog_read_host(dev, 4 * MiB, (uint64_t)W.h[i].id, recs, &n, &bad, &newest,
                                     &err) == 0, "%s", err.msg);
        W.damaged += (unsigned)bad;
        if (newest.seq != W.h[i].seq)
            W.lost++;
    }
    keel_blockdev_close(dev);
}

static void violations(void)
{
    W.violations = 0;
    for (unsigned l = 1; l < MAXL; l++)
        for (unsigned L = l + 1; W.seen[l] && L < MAXL; L++)
            if (W.seen[L] && W.last_t[l] > W.first_t[L])
                W.violations++;
}

static void sim_round(void)
{
    unsigned r = rnd(100), f;
    int spm;

    for (int i = 0; i < 8; i++)
        step();
    spm = spm_index();
    f = r < 30 ? 0 : r < 55 ? 1 : r < 80 ? 2 : 3;
    W.faults[f]++;
    if (spm >= 0 && f == 0) {
        host_die(&W.h[spm]);
        host_join(&W.h[spm]);
    } else if (spm >= 0 && f == 1) {
        W.h[spm].stopped_until = sim_now(NULL) + (2000 + rnd(12000)) * MS;
    } else if (f == 2) {
        W.stall_until = sim_now(NULL) + (1000 + rnd(11000)) * MS;
    } else if (spm >= 0 && f == 3) {
        drop_lease(&W.h[spm], true);
    }
    for (int i = 0; i < 60; i++)
        step();
    check_disk();
}

static unsigned env_u(const char *name, unsigned dflt)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

START_TEST(simulated_rounds)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    unsigned rounds = env_u("KEEL_SIM_ROUNDS", 100), seed = env_u("KEEL_SIM_SEED", 1);
    int fd;

    memset(&W, 0, sizeof(W));
    W.seed = seed;
    W.next_id = 1;
    T = 1000 * S;
    keel_lease_clock_simulate(&sim_clock);
    snprintf(W.path, sizeof(W.path), "/tmp/keel-spm-sim.XXXXXX");
    fd = mkstemp(W.path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)DISK), 0);
    close(fd);
    W.url = keel_strdup_printf("file://%s", W.path);
    ck_assert_msg(keel_blockdev_open(W.url, NULL, &dev, &err) == 0 &&
                  keel_sanlock_write_lockspace(dev, 0, LS, 1, 512, MiB, &err) == 0 &&
                  keel_sanlock_write_resource(dev, MiB, LS, "SDM", 512, MiB, &err) == 0, "%s",
                  err.msg);
    keel_blockdev_close(dev);
    for (int i = 0; i < NC; i++)
        host_join(&W.h[i]);
    for (unsigned r = 0; r < rounds; r++)
        sim_round();
    violations();
    fprintf(stderr, "spm_sim: seed %u: %u rounds (%.0f s simulated), faults: kill %u, stop %u, "
                    "stall %u, handover %u; %u takeovers (lver 1..%llu), %llu writes landed, "
                    "%llu refused by fences, %d hosts; violations %u, lver regressions %u, "
                    "lost %u, damaged %u\n",
            seed, rounds, (double)(T - 1000 * S) / 1e9, W.faults[0], W.faults[1], W.faults[2],
            W.faults[3], W.takeovers, W.last_lver, W.writes, W.refused, W.next_id - 1,
            W.violations, W.regressions, W.lost, W.damaged);
    ck_assert_uint_eq(W.violations, 0);
    ck_assert_uint_eq(W.regressions, 0);
    ck_assert_uint_eq(W.lost, 0);
    ck_assert_uint_eq(W.damaged, 0);
    ck_assert_uint_gt(W.takeovers, rounds / 4);
    for (int i = 0; i < NC; i++)
        host_die(&W.h[i]);
    keel_lease_clock_simulate(NULL);
    unlink(W.path);
    free(W.url);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("spm_sim");
    TCase *tc = tcase_create("spm_sim");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 3600);
    tcase_add_test(tc, simulated_rounds);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
