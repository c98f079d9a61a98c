/*
 * Lost sessions: the server is killed and restarted while many writes are
 * outstanding, and io/ must neither lose nor duplicate nor reorder them.
 *
 * 1000 writes of 4 or 8 KiB at random 4 KiB-aligned offsets of a 2 MiB
 * region (so that many overlap), 32 in flight, each sector tagged with its
 * write number.  Part-way through, the server is stopped (SIGSTOP, so that
 * no more answers come), the test waits until the outstanding count is
 * steady and asserts it is at least 16, then kills the server (SIGKILL)
 * and starts it again on the same port with the same storage.  At the end
 * every write must have succeeded, and every sector of the storage (read
 * from the LUN's backing file or the exported file, not through Keel) must
 * hold the data of the write acknowledged last among those that covered
 * it.  The reconnect must be reported through the io event callback.
 *
 * Runs alone (not parallel): it stops servers on purpose and a loaded
 * machine must not turn that into false timeouts elsewhere.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "tests/harness/lab.h"

#define NWRITES 1000
#define INFLIGHT 32
#define REGION (2u << 20)
#define SLOT 4096
#define SECTOR 512
#define MIN_OUTSTANDING 16

struct wr {
    struct keel_ioreq req;
    uint64_t ack;            /* order of acknowledgement, 1-based */
    unsigned char *buf;
};

struct run {
    struct keel_blockdev *dev;   /* one of these two */
    struct keel_file *file;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int submitted, completed;
    uint64_t acks;
    struct wr w[NWRITES];
    int lost_events, reconnect_events;
    char last_event[KEEL_ERR_MSG + 128];
};

static void on_event(void *opaque, enum keel_io_event ev, const char *name, const char *msg)
{
    struct run *r = opaque;

    /* This is what a daemon does with the event: log it. */
    keel_log(KEEL_LOG_INFO, "test", "%s: %s", name, msg);
    pthread_mutex_lock(&r->lock);
    if (ev == KEEL_IO_EV_LOST)
        r->lost_events++;
    else if (ev == KEEL_IO_EV_RECONNECTED)
        r->reconnect_events++;
    snprintf(r->last_event, sizeof(r->last_event), "%s", msg);
    pthread_mutex_unlock(&r->lock);
}

static void write_done(struct keel_ioreq *req)
{
    struct run *r = req->opaque;
    struct wr *w = (struct wr *)req;

    pthread_mutex_lock(&r->lock);
    w->ack = ++r->acks;
    r->completed++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void fill(struct wr *w, int i)
{
    for (size_t s = 0; s < w->req.len / SECTOR; s++) {
        unsigned char *p = w->buf + s * SECTOR;

        memset(p, (int)((unsigned)(i * 7 + (int)s) & 0xff), SECTOR);
        snprintf((char *)p, 32, "write %04d sector %zu", i, s);
    }
}

static void *submitter(void *arg)
{
    struct run *r = arg;
    unsigned seed = 20261125;

    for (int i = 0; i < NWRITES; i++) {
        struct wr *w = &r->w[i];
        struct keel_error err = KEEL_ERROR_INIT;
        size_t len = (rand_r(&seed) % 2 + 1) * SLOT;
        uint64_t off = (uint64_t)(rand_r(&seed) % ((REGION - len) / SLOT + 1)) * SLOT;
        int rc;

        w->buf = malloc(len);
        w->req = (struct keel_ioreq){ .op = KEEL_IO_WRITE, .offset = off, .len = len,
                                      .buf = w->buf, .done = write_done, .opaque = r };
        fill(w, i);
        pthread_mutex_lock(&r->lock);
        while (r->submitted - r->completed >= INFLIGHT)
            pthread_cond_wait(&r->cond, &r->lock);
        r->submitted++;
        pthread_mutex_unlock(&r->lock);
        rc = r->dev ? keel_blockdev_submit(r->dev, &w->req, &err)
                    : keel_file_submit(r->file, &w->req, &err);
        ck_assert_msg(rc == 0, "%s", err.msg);
    }
    return NULL;
}

static int outstanding(struct run *r)
{
    int n;

    pthread_mutex_lock(&r->lock);
    n = r->submitted - r->completed;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* Wait (bounded) until predicate on the counters holds. */
static bool wait_for(struct run *r, int min_submitted, int min_completed, unsigned ms)
{
    uint64_t end = keel_now_ns() + (uint64_t)ms * KEEL_NS_PER_MS;
    bool ok;

    for (;;) {
        pthread_mutex_lock(&r->lock);
        ok = r->submitted >= min_submitted && r->completed >= min_completed;
        pthread_mutex_unlock(&r->lock);
        if (ok || keel_now_ns() > end)
            return ok;
        keel_sleep_ms(10);
    }
}

/* Wait until the outstanding count has not changed for `steady_ms`; return it. */
static int wait_steady(struct run *r, unsigned steady_ms, unsigned max_ms)
{
    uint64_t end = keel_now_ns() + (uint64_t)max_ms * KEEL_NS_PER_MS;
    int last = -1;
    uint64_t since = keel_now_ns();

    while (keel_now_ns() < end) {
        int n = outstanding(r);

        if (n != last) {
            last = n;
            since = keel_now_ns();
        } else if (keel_now_ns() - since >= (uint64_t)steady_ms * KEEL_NS_PER_MS) {
            break;
        }
        keel_sleep_ms(10);
    }
    return last;
}

/* Judge the storage byte by byte against the acknowledged writes. */
static void verify(struct run *r, const char *path, uint64_t base)
{
    unsigned char *disk = malloc(REGION);
    int fd = open(path, O_RDONLY);
    int mismatches = 0;

    ck_assert_msg(fd >= 0, "cannot open %s", path);
    memset(disk, 0, REGION);
    ck_assert_int_ge(pread(fd, disk, REGION, (off_t)base), 0);
    close(fd);
    for (uint64_t sec = 0; sec < REGION / SECTOR; sec++) {
        uint64_t off = sec * SECTOR;
        const struct wr *best = NULL;
        const unsigned char *want;
        static const unsigned char zero[SECTOR];

        for (int i = 0; i < NWRITES; i++) {
            const struct wr *w = &r->w[i];

            if (off >= w->req.offset && off < w->req.offset + w->req.len &&
                (best == NULL || w->ack > best->ack))
                best = w;
        }
        want = best ? best->buf + (off - best->req.offset) : zero;
        if (memcmp(disk + off, want, SECTOR) != 0 && mismatches++ < 5)
            fprintf(stderr, "sector %llu: holds '%.24s', expected '%.24s'\n",
                    (unsigned long long)sec, disk + off, want);
    }
    free(disk);
    ck_assert_msg(mismatches == 0, "%d sectors do not hold the last acknowledged write",
                  mismatches);
}

static void run_init(struct run *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
}

static struct keel_io_opts opts_for(struct run *r)
{
    struct keel_io_opts o;

    keel_io_opts_init(&o);
    o.timeout_ms = 60000; /* much longer than the outage */
    o.connect_timeout_ms = 2000;
    o.event_cb = on_event;
    o.event_opaque = r;
    return o;
}

static void finish_and_check(struct run *r, pthread_t th)
{
    ck_assert_msg(wait_for(r, NWRITES, NWRITES, 90000), "writes did not finish: %d of %d done",
                  r->completed, r->submitted);
    pthread_join(th, NULL);
    for (int i = 0; i < NWRITES; i++)
        ck_assert_msg(r->w[i].req.result == 0, "write %d: %s", i, r->w[i].req.err.msg);
    ck_assert_msg(r->lost_events >= 1, "no lost-session event");
    ck_assert_msg(r->reconnect_events >= 1, "no reconnect event; last: %s", r->last_event);
    ck_assert_msg(strstr(r->last_event, "reconnected after") != NULL, "%s", r->last_event);
}

START_TEST(iscsi_target_killed_mid_stream)
{
    static struct run r;
    uint64_t sizes[] = { 64u << 20 };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;
    struct keel_io_opts o;
    pthread_t th;
    int n;

    run_init(&r);
    o = opts_for(&r);
    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "disk", sizes, 1, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), &o, &r.dev, &err) == 0,
                  "%s", err.msg);
    pthread_create(&th, NULL, submitter, &r);
    ck_assert(wait_for(&r, 300, 0, 30000));
    ck_assert_msg(keel_lab_tgtd_signal(t, SIGSTOP, &err) == 0, "%s", err.msg);
    n = wait_steady(&r, 300, 10000);
    fprintf(stderr, "killing tgtd with %d writes outstanding (%d submitted)\n", n, r.submitted);
    ck_assert_msg(n >= MIN_OUTSTANDING, "only %d writes outstanding at the kill", n);
    ck_assert_msg(keel_lab_tgtd_kill(t, &err) == 0, "%s", err.msg);
    keel_sleep_ms(1000);
    ck_assert_msg(keel_lab_tgtd_restart(t, &err) == 0, "%s", err.msg);
    finish_and_check(&r, th);
    keel_blockdev_close(r.dev);
    verify(&r, keel_lab_tgtd_lun_path(t, 0, 1), 0);
    keel_lab_tgtd_stop(t);
    for (int i = 0; i < NWRITES; i++)
        free(r.w[i].buf);
}
END_TEST

START_TEST(nfs_server_killed_mid_stream)
{
    static struct run r;
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_nfs *n = NULL;
    struct keel_fs *fs = NULL;
    struct keel_io_opts o;
    pthread_t th;
    char *path;
    int out;

    run_init(&r);
    o = opts_for(&r);
    ck_assert_msg(keel_lab_nfs_start(&n, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_fs_open(keel_lab_nfs_url(n), &o, &fs, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_open(fs, "volume", KEEL_O_RDWR | KEEL_O_CREAT, 0660, &r.file,
                                 &err) == 0, "%s", err.msg);
    pthread_create(&th, NULL, submitter, &r);
    ck_assert(wait_for(&r, 300, 0, 30000));
    ck_assert_msg(keel_lab_nfs_signal(n, SIGSTOP, &err) == 0, "%s", err.msg);
    out = wait_steady(&r, 300, 10000);
    fprintf(stderr, "killing ganesha with %d writes outstanding (%d submitted)\n", out,
            r.submitted);
    ck_assert_msg(out >= MIN_OUTSTANDING, "only %d writes outstanding at the kill", out);
    ck_assert_msg(keel_lab_nfs_kill(n, &err) == 0, "%s", err.msg);
    keel_sleep_ms(1000);
    ck_assert_msg(keel_lab_nfs_restart(n, &err) == 0, "%s", err.msg);
    finish_and_check(&r, th);
    ck_assert_msg(keel_file_fsync(r.file, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_close(r.file, &err) == 0, "%s", err.msg);
    keel_fs_close(fs);
    path = keel_strdup_printf("%s/volume", keel_lab_nfs_export_dir(n));
    verify(&r, path, 0);
    free(path);
    keel_lab_nfs_stop(n);
    for (int i = 0; i < NWRITES; i++)
        free(r.w[i].buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io_reconnect");
    TCase *tc = tcase_create("io_reconnect");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    keel_lab_require("tgtadm");
    keel_lab_require("ganesha.nfsd");
    keel_lab_require("rpcbind");
    keel_log_set_program("test_io_reconnect");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, iscsi_target_killed_mid_stream);
    tcase_add_test(tc, nfs_server_killed_mid_stream);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
