/*
 * SPM soak (opt-in: `meson test -C build --suite soak`, or scripts/soak):
 * three lease-contender processes on a block master (tgtd LUN) and then on
 * an NFS master (nfs-ganesha) keep an SPM doing "metadata work" -- the
 * write log of tests/functional/writelog.h, through a connection fenced by
 * the SPM lease -- while random faults hit them: kill -9 of the SPM,
 * SIGSTOP/SIGCONT of the SPM (2-14 s, so past the expiry too, while the
 * others try to take over), a storage stall (SIGSTOP of tgtd or ganesha,
 * 1-12 s), a server restart, a clean handover.  A contender whose host id
 * was lost is replaced by a new process with a new host id.
 *
 * The invariant checker reads every host's write log from storage (its
 * own connection) several times a second:
 *   - never two writers: no write of an SPM with lease version l submitted
 *     after the first write of an SPM with a higher version;
 *   - lver grows with each new SPM;
 *   - no damaged log record; after each round, every write a contender
 *     had acknowledged is on storage (none lost); at the end sanlock reads
 *     the lockspace.
 * KEEL_SOAK_ROUNDS (default 100) rounds, half per master; KEEL_SOAK_SEED.
 * Prints rounds, faults by kind, takeovers and violations (must be 0).
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "metadata/sanlock_fmt.h"
#include "tests/functional/contender.h"
#include "tests/functional/writelog.h"
#include "tests/harness/lab.h"
#include "volume/sd.h"

#define MiB (UINT64_C(1) << 20)
#define LS "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define NC 3
#define MAXL 4096

enum fault { F_KILL, F_STOP, F_STALL, F_RESTART, F_HANDOVER, F_NR };

struct world {
    bool block;
    struct keel_lab_tgtd *tgtd;
    struct keel_lab_nfs *nfs;
    const char *url, *sd;
    struct keel_blockdev *log;      /* the checker's view of the write log */
    struct keel_fs *fs;
    struct keel_file *logf;
    uint64_t base;
    struct contender c[NC];
    int next_id;
    int spm;                        /* index in c, -1 */
    unsigned long long last_lver;
};

struct checker {
    uint64_t first_t[MAXL], last_t[MAXL];
    bool seen[MAXL];
    size_t damaged, records;
    unsigned violations, lver_regressions, lost;
    char first_violation[256];
};

static unsigned faults[F_NR], takeovers;
static unsigned seed;

static unsigned rnd(unsigned n)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) % n;
}

/* Read every host's ring; false when the storage does not answer now. */
static bool poll_log(struct world *w, struct checker *k)
{
    for (int h = 1; h < w->next_id; h++) {
        struct keel_error err = KEEL_ERROR_INIT;
        struct wlog_rec recs[WLOG_RING];
        size_t n, bad;

        if (wlog_read_host(w->log, w->base, (uint64_t)h, recs, &n, &bad, NULL, &err) != 0)
            return false;
        k->damaged += bad;
        for (size_t i = 0; i < n; i++) {
            uint64_t l = recs[i].lver, t = recs[i].t_ns;

            ck_assert_msg(l < MAXL, "lver %llu", (unsigned long long)l);
            if (!k->seen[l] || t < k->first_t[l])
                k->first_t[l] = t;
            if (!k->seen[l] || t > k->last_t[l])
                k->last_t[l] = t;
            k->seen[l] = true;
            k->records++;
        }
    }
    /* Never two writers: an older SPM's write after a newer SPM's first one. */
    k->violations = 0;
    for (unsigned l = 1; l < MAXL; l++) {
        if (!k->seen[l])
            continue;
        for (unsigned L = l + 1; L < MAXL; L++) {
            if (k->seen[L] && k->last_t[l] > k->first_t[L]) {
                if (k->violations++ == 0)
                    snprintf(k->first_violation, sizeof(k->first_violation),
                             "lver %u wrote %.3f s after lver %u's first write", l,
                             (double)(k->last_t[l] - k->first_t[L]) / 1e9, L);
            }
        }
    }
    return true;
}

/* Sleep ms, reading the log every 250 ms (unless the storage is stalled). */
static void watch(struct world *w, struct checker *k, unsigned ms, bool stalled)
{
    uint64_t end = keel_now_ns() + (uint64_t)ms * KEEL_NS_PER_MS;

    while (keel_now_ns() < end) {
        keel_sleep_ms(250);
        if (!stalled)
            poll_log(w, k);
    }
}

static void spawn(struct world *w, int i)
{
    ck_assert_msg(w->next_id <= WLOG_MAX_HOST, "out of host ids");
    contender_spawn(&w->c[i], w->next_id++, w->url, w->sd);
    contender_joined(&w->c[i]);
}

static void replace(struct world *w, int i)
{
    contender_stop(&w->c[i]);
    if (w->spm == i)
        w->spm = -1;
    spawn(w, i);
}

/* Ask every contender whether its host id holds; replace those that lost it. */
static void revalidate(struct world *w)
{
    for (int i = 0; i < NC; i++) {
        char *l = contender_ask(&w->c[i], "valid");
        bool ok = strcmp(l, "valid") == 0;

        free(l);
        if (!ok)
            replace(w, i);
    }
}

/* Try once to get an SPM among the contenders other than `skip`; true when one won. */
static bool try_acquire(struct world *w, struct checker *k, int skip)
{
    for (int j = 0; j < NC; j++) {
        int i = (j + (int)rnd(NC)) % NC;
        unsigned long long lver;
        char *l;

        if (i == skip || i == w->spm)
            continue;
        l = contender_ask(&w->c[i], "acquire");
        if (sscanf(l, "won %llu", &lver) == 1) {
            if (lver <= w->last_lver)
                k->lver_regressions++;
            w->last_lver = lver;
            w->spm = i;
            takeovers++;
            free(l);
            l = contender_ask(&w->c[i], "work");
            ck_assert_str_eq(l, "working");
            free(l);
            return true;
        }
        ck_assert_msg(strncmp(l, "busy ", 5) == 0 || strncmp(l, "error already", 13) == 0,
                      "contender %d: %s", i, l);
        free(l);
    }
    return false;
}

static void ensure_spm(struct world *w, struct checker *k)
{
    uint64_t end = keel_now_ns() + 60 * KEEL_NS_PER_S;

    if (w->spm >= 0)
        return;
    while (!try_acquire(w, k, -1)) {
        ck_assert_msg(keel_now_ns() < end, "no SPM within 60 s");
        watch(w, k, 500, false);
    }
}

/* Every write a live contender acknowledged is on storage. */
static void check_acked(struct world *w, struct checker *k)
{
    for (int i = 0; i < NC; i++) {
        struct keel_error err = KEEL_ERROR_INIT;
        struct wlog_rec recs[WLOG_RING], newest;
        unsigned long long seq = 0;
        size_t n, bad;
        char *l = contender_ask(&w->c[i], "status");
        const char *p = strstr(l, " seq=");

        if (p != NULL)
            seq = strtoull(p + 5, NULL, 10);
        free(l);
        if (seq == 0)
            continue;
        if (wlog_read_host(w->log, w->base, (uint64_t)w->c[i].id, recs, &n, &bad, &newest,
                           &err) != 0)
            continue; /* storage busy: the next round looks again */
        if (newest.seq < seq)
            k->lost++;
    }
}

static void round_once(struct world *w, struct checker *k)
{
    enum fault f;
    unsigned r = rnd(100), d;
    struct keel_error err = KEEL_ERROR_INIT;

    ensure_spm(w, k);
    watch(w, k, 300 + rnd(700), false);
    f = r < 25 ? F_KILL : r < 45 ? F_STOP : r < 65 ? F_STALL : r < 80 ? F_RESTART : F_HANDOVER;
    faults[f]++;
    switch (f) {
    case F_KILL:
        kill(w->c[w->spm].pid, SIGKILL);
        replace(w, w->spm);
        break;
    case F_STOP: {
        int s = w->spm;
        uint64_t end;

        d = 2000 + rnd(12000);
        kill(w->c[s].pid, SIGSTOP);
        end = keel_now_ns() + (uint64_t)d * KEEL_NS_PER_MS;
        /* The others try to take over meanwhile (they may, past the expiry). */
        while (keel_now_ns() < end) {
            if (w->spm == s)
                try_acquire(w, k, s);
            watch(w, k, 500, false);
        }
        kill(w->c[s].pid, SIGCONT);
        watch(w, k, 1500, false); /* the resumed one must write nothing */
        break;
    }
    case F_STALL:
        d = 1000 + rnd(11000);
        ck_assert_msg((w->block ? keel_lab_tgtd_signal(w->tgtd, SIGSTOP, &err)
                                : keel_lab_nfs_signal(w->nfs, SIGSTOP, &err)) == 0, "%s", err.msg);
        watch(w, k, d, true);
        ck_assert_msg((w->block ? keel_lab_tgtd_signal(w->tgtd, SIGCONT, &err)
                                : keel_lab_nfs_signal(w->nfs, SIGCONT, &err)) == 0, "%s", err.msg);
        watch(w, k, 1500, false);
        break;
    case F_RESTART:
        ck_assert_msg((w->block ? keel_lab_tgtd_restart(w->tgtd, &err)
                                : keel_lab_nfs_restart(w->nfs, &err)) == 0, "%s", err.msg);
        watch(w, k, 1500, false);
        break;
    case F_HANDOVER: {
        char *l = contender_ask(&w->c[w->spm], "release");

        ck_assert_str_eq(l, "released");
        free(l);
        w->spm = -1;
        break;
    }
    case F_NR:
        break;
    }
    revalidate(w);
    check_acked(w, k);
    if (w->spm >= 0) {
        /* Still SPM, or fenced while stopped or stalled? */
        char *l = contender_ask(&w->c[w->spm], "status");

        if (strncmp(l, "status working", 14) != 0) {
            free(l);
            l = contender_ask(&w->c[w->spm], "release");
            w->spm = -1;
        }
        free(l);
    }
}

static void soak(bool block, unsigned rounds)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct world w = { .block = block, .spm = -1, .next_id = 1 };
    struct checker *k = calloc(1, sizeof(*k));
    struct keel_io_opts o;
    uint64_t t0 = keel_now_ns();

    keel_io_opts_init(&o);
    o.timeout_ms = 1000;
    if (block) {
        uint64_t size = 32 * MiB;

        ck_assert_msg(keel_lab_tgtd_start(&w.tgtd, &err) == 0 &&
                      keel_lab_tgtd_add_target(w.tgtd, "soak", &size, 1, NULL, NULL, &err) == 0 &&
                      keel_blockdev_open(keel_lab_tgtd_lun_url(w.tgtd, 0, 1), &o, &w.log,
                                         &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_sanlock_write_lockspace(w.log, 0, LS, 1, 512, MiB, &err) == 0 &&
                      keel_sanlock_write_resource(w.log, MiB, LS, "SDM", 512, MiB, &err) == 0 &&
                      keel_blockdev_flush(w.log, &err) == 0, "%s", err.msg);
        w.url = keel_lab_tgtd_lun_url(w.tgtd, 0, 1);
        w.sd = "";
        w.base = 4 * MiB;
    } else {
        struct keel_sd_create cr = { .uuid = LS, .name = "soak", .type = KEEL_SD_TYPE_NFS,
                                     .klass = KEEL_SD_CLASS_DATA, .remote_path = "127.0.0.1:/x" };
        struct keel_sd *sd = NULL;
        struct keel_file *f = NULL;
        struct keel_blockdev *d = NULL;

        ck_assert_msg(keel_lab_nfs_start(&w.nfs, &err) == 0 &&
                      keel_fs_open(keel_lab_nfs_url(w.nfs), &o, &w.fs, &err) == 0 &&
                      keel_sd_create_file(w.fs, &cr, &sd, &err) == 0, "%s", err.msg);
        keel_sd_close(sd);
        ck_assert_msg(keel_file_open(w.fs, LS "/dom_md/ids", KEEL_O_RDWR, 0, &f, &err) == 0 &&
                      keel_blockdev_open_file(f, 512, &d, &err) == 0 &&
                      keel_sanlock_write_lockspace(d, 0, LS, 1, 512, MiB, &err) == 0, "%s",
                      err.msg);
        keel_blockdev_close(d);
        keel_file_close(f, NULL);
        ck_assert_msg(keel_file_open(w.fs, LS "/dom_md/writelog", KEEL_O_RDWR | KEEL_O_CREAT,
                                     0644, &w.logf, &err) == 0 &&
                      keel_file_truncate(w.logf, 16 * MiB, &err) == 0 &&
                      keel_blockdev_open_file(w.logf, 512, &w.log, &err) == 0, "%s", err.msg);
        w.url = keel_lab_nfs_url(w.nfs);
        w.sd = LS;
        w.base = 0;
    }
    for (int i = 0; i < NC; i++)
        spawn(&w, i);
    for (unsigned r = 0; r < rounds; r++)
        round_once(&w, k);
    ensure_spm(&w, k);
    watch(&w, k, 1000, false);
    ck_assert(poll_log(&w, k));
    fprintf(stderr, "soak: %s: %u rounds in %.0f s, faults: kill-9 %u, sigstop %u, stall %u, "
                    "restart %u, handover %u; %u takeovers (lver 1..%llu), %zu log records read, "
                    "%u hosts; violations %u, lver regressions %u, lost writes %u, damaged "
                    "records %zu%s%s\n",
            block ? "block" : "nfs", rounds, (double)(keel_now_ns() - t0) / 1e9, faults[F_KILL],
            faults[F_STOP], faults[F_STALL], faults[F_RESTART], faults[F_HANDOVER], takeovers,
            w.last_lver, k->records, w.next_id - 1, k->violations, k->lver_regressions, k->lost,
            k->damaged, k->violations ? ": " : "", k->violations ? k->first_violation : "");
    ck_assert_uint_eq(k->violations, 0);
    ck_assert_uint_eq(k->lver_regressions, 0);
    ck_assert_uint_eq(k->lost, 0);
    ck_assert_uint_eq(k->damaged, 0);
    for (int i = 0; i < NC; i++)
        contender_stop(&w.c[i]);
    /* The lease areas are intact for the real sanlock. */
    {
        char *path = block ? strdup(keel_lab_tgtd_lun_path(w.tgtd, 0, 1))
                           : keel_strdup_printf("%s/%s/dom_md/ids",
                                                keel_lab_nfs_export_dir(w.nfs), LS);
        char *spec = keel_strdup_printf("%s:0", path);
        const char *argv[] = { "sanlock", "direct", "dump", spec, NULL };
        char *out = NULL;

        ck_assert_msg(keel_lab_run_ok(argv, NULL, &out, &err) == 0, "%s", err.msg);
        free(out);
        free(spec);
        free(path);
    }
    memset(faults, 0, sizeof(faults));
    takeovers = 0;
    keel_blockdev_close(w.log);
    if (w.logf != NULL)
        keel_file_close(w.logf, NULL);
    keel_fs_close(w.fs);
    if (w.tgtd)
        keel_lab_tgtd_stop(w.tgtd);
    if (w.nfs)
        keel_lab_nfs_stop(w.nfs);
    free(k);
}

static unsigned env_u(const char *name, unsigned dflt)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

START_TEST(block_master)
{
    soak(true, (env_u("KEEL_SOAK_ROUNDS", 100) + 1) / 2);
}
END_TEST

START_TEST(nfs_master)
{
    soak(false, env_u("KEEL_SOAK_ROUNDS", 100) / 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("soak_spm");
    TCase *tc = tcase_create("soak_spm");
    SRunner *sr;
    int failed;

    seed = env_u("KEEL_SOAK_SEED", (unsigned)time(NULL));
    fprintf(stderr, "soak: seed %u (KEEL_SOAK_SEED)\n", seed);
    keel_lab_require("tgtd");
    keel_lab_require("ganesha.nfsd");
    keel_lab_require("sanlock");
    tcase_set_timeout(tc, 7200);
    tcase_add_test(tc, block_master);
    tcase_add_test(tc, nfs_master);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
