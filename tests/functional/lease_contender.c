/*
 * lease-contender: one host contending for the SPM lease, as a separate
 * process (tests/functional/test_spm_race.c and test_spm_fence.c drive it).
 *
 *   lease-contender HOST_ID NAME iscsi://LUN            ids at 0, SDM at 1 MiB,
 *                                                       write log at 4 MiB (LUN >= 20 MiB)
 *   lease-contender HOST_ID NAME nfs://.../export SD    SD/dom_md/{ids,leases},
 *                                                       write log SD/dom_md/writelog (16 MiB)
 *
 * Joins its host id (N = 1 s, slack 2 s), prints "joined", then reads
 * commands on stdin, one per line, and answers one line each:
 *   acquire   "won LVER" or "busy REASON"
 *   release   "released"
 *   valid     "valid" or "invalid"
 *   work      "working": while SPM, write a write-log record every 20 ms
 *   status    "status STATE seq=N refused=N errors=N deadline_ms=T fenced_ms=T WHY"
 *             (STATE idle|working|fenced; times in CLOCK_BOOTTIME ms; the
 *             writer retries after I/O errors and stops when fenced)
 * The write log (tests/functional/writelog.h) stands for the SPM's
 * metadata writes: its own connection (not the lease's), gated by the SPM
 * lease's fence.
 * It keeps renewing its host id until stdin closes or it is killed.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fence.h"
#include "io/fs.h"
#include "spm/lease.h"
#include "tests/functional/writelog.h"

#define MiB (UINT64_C(1) << 20)

static void die(const char *what, const struct keel_error *err)
{
    printf("error %s: %s\n", what, err->msg);
    fflush(stdout);
    exit(1);
}

static struct keel_blockdev *file_view(struct keel_fs *fs, const char *path, unsigned flags)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_file *f = NULL;
    struct keel_blockdev *d = NULL;

    if (keel_file_open(fs, path, KEEL_O_RDWR | KEEL_O_SYNC | flags, 0644, &f, &err) != 0 ||
        (flags & KEEL_O_CREAT && keel_file_truncate(f, 16 * MiB, &err) != 0) ||
        keel_blockdev_open_file(f, 512, &d, &err) != 0)
        die(path, &err);
    return d; /* the file stays open for the process's life */
}

/* The writer: the SPM's stand-in metadata writes. */
static struct {
    pthread_mutex_t lock;
    struct keel_blockdev *dev;   /* its own connection, fenced */
    uint64_t base, host_id;
    struct keel_lease *lease;    /* NULL: not SPM */
    bool working;
    const char *state;
    uint64_t seq, errors, deadline_ms, fenced_ms;
    char why[KEEL_ERR_MSG];
} w = { .lock = PTHREAD_MUTEX_INITIALIZER, .state = "idle" };

static void *writer(void *arg)
{
    unsigned char *rec = keel_aligned_alloc(4096, 4096);

    (void)arg;
    for (;;) {
        struct keel_error err = KEEL_ERROR_INIT;
        struct wlog_rec r;
        int rc;

        keel_sleep_ms(20);
        pthread_mutex_lock(&w.lock);
        if (!w.working || w.lease == NULL) {
            pthread_mutex_unlock(&w.lock);
            continue;
        }
        r.host = w.host_id;
        r.lver = keel_lease_lver(w.lease);
        r.seq = w.seq + 1;
        {
            uint64_t until = keel_fence_valid_until(keel_lease_fence(w.lease));

            if (until != 0)
                w.deadline_ms = until / KEEL_NS_PER_MS;
        }
        pthread_mutex_unlock(&w.lock);
        r.t_ns = keel_boottime_ns();
        wlog_encode(&r, rec);
        rc = keel_blockdev_pwrite(w.dev, rec, WLOG_REC, wlog_offset(w.base, &r), &err);
        pthread_mutex_lock(&w.lock);
        if (rc == 0) {
            w.seq = r.seq;
        } else if (err.code == KEEL_E_FENCED) {
            w.working = false;
            w.state = "fenced";
            w.fenced_ms = keel_boottime_ns() / KEEL_NS_PER_MS;
            keel_strlcpy(w.why, err.msg, sizeof(w.why));
        } else {
            /* A timeout or lost session: an SPM retries until its lease says stop. */
            w.errors++;
            keel_strlcpy(w.why, err.msg, sizeof(w.why));
        }
        pthread_mutex_unlock(&w.lock);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_delta_timing t = { .io_timeout = 1, .slack = 2 };
    struct keel_blockdev *ids = NULL, *leases = NULL;
    uint64_t ids_off = 0, sdm_off = MiB, id;
    struct keel_delta *d = NULL;
    struct keel_io_opts o;
    pthread_t th;
    const char *ls;
    char line[64];

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (argc < 4 || keel_parse_u64(argv[1], &id) != 0 || id < 1 || id > WLOG_MAX_HOST) {
        fprintf(stderr, "usage: lease-contender HOST_ID NAME URL [SD]\n");
        return 2;
    }
    keel_io_opts_init(&o);
    o.timeout_ms = 1000;
    if (keel_str_has_prefix(argv[3], "nfs://")) {
        struct keel_fs *fs = NULL, *wfs = NULL;
        char *p;

        if (argc < 5 || keel_fs_open(argv[3], &o, &fs, &err) != 0 ||
            keel_fs_open(argv[3], &o, &wfs, &err) != 0)
            die("nfs", &err);
        ls = argv[4];
        p = keel_strdup_printf("%s/dom_md/ids", ls);
        ids = file_view(fs, p, 0);
        free(p);
        p = keel_strdup_printf("%s/dom_md/leases", ls);
        leases = file_view(fs, p, 0);
        free(p);
        p = keel_strdup_printf("%s/dom_md/writelog", ls);
        w.dev = file_view(wfs, p, KEEL_O_CREAT);
        free(p);
        w.base = 0;
    } else {
        if (keel_blockdev_open(argv[3], &o, &ids, &err) != 0 ||
            keel_blockdev_open(argv[3], &o, &w.dev, &err) != 0)
            die("lun", &err);
        leases = ids;
        ls = "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f";
        w.base = 4 * MiB;
    }
    w.host_id = id;
    if (keel_delta_acquire(ids, ids_off, ls, id, argv[2], &t, &d, &err) != 0 ||
        keel_delta_start(d, &err) != 0)
        die("join", &err);
    if (pthread_create(&th, NULL, writer, NULL) != 0)
        return 1;
    printf("joined\n");
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        err = (struct keel_error)KEEL_ERROR_INIT;
        pthread_mutex_lock(&w.lock);
        if (strcmp(line, "acquire") == 0) {
            struct keel_lease *l = NULL;

            if (w.lease != NULL) {
                printf("error already SPM\n");
            } else if (keel_lease_acquire(d, leases, sdm_off, ls, "SDM", &l, &err) == 0) {
                w.lease = l;
                keel_blockdev_set_fence(w.dev, keel_lease_fence(l));
                printf("won %llu\n", (unsigned long long)keel_lease_lver(l));
            } else {
                printf("busy %s\n", err.msg);
            }
        } else if (strcmp(line, "release") == 0) {
            keel_blockdev_set_fence(w.dev, NULL);
            if (keel_lease_release(w.lease, &err) == 0)
                printf("released\n");
            else
                printf("error %s\n", err.msg);
            w.lease = NULL;
            w.working = false;
        } else if (strcmp(line, "valid") == 0) {
            printf("%s\n", keel_delta_valid(d, NULL) ? "valid" : "invalid");
        } else if (strcmp(line, "work") == 0) {
            w.working = true;
            w.state = "working";
            printf("working\n");
        } else if (strcmp(line, "status") == 0) {
            printf("status %s seq=%llu refused=%llu errors=%llu deadline_ms=%llu fenced_ms=%llu "
                   "%s\n", w.state, (unsigned long long)w.seq,
                   (unsigned long long)(w.lease ? keel_fence_refused(keel_lease_fence(w.lease))
                                                : 0),
                   (unsigned long long)w.errors, (unsigned long long)w.deadline_ms,
                   (unsigned long long)w.fenced_ms, w.why);
        } else {
            printf("error unknown command %s\n", line);
        }
        pthread_mutex_unlock(&w.lock);
        fflush(stdout);
    }
    pthread_mutex_lock(&w.lock);
    w.working = false;
    keel_blockdev_set_fence(w.dev, NULL);
    keel_lease_release(w.lease, &err);
    w.lease = NULL;
    pthread_mutex_unlock(&w.lock);
    keel_delta_release(d, &err);
    keel_delta_free(d);
    return 0;
}
