/*
 * bench/io: sequential throughput of the io/ block backend on a loopback
 * iSCSI LUN, side by side with the peers in one run:
 *
 *   read   Keel: 128 KiB READ(16)s, 32 in flight, over the whole LUN again
 *          and again for the run time;  peer: iscsi-perf -m 32 -b 256 -t T.
 *   write  Keel: a 1 GiB random raw file copied onto the LUN with 128 KiB
 *          writes, 32 in flight;  peer: qemu-img convert -n -W -m 16 -O raw
 *          (16 is the most coroutines qemu-img allows)
 *          of the same file onto the same LUN.
 *
 * Both run against the same tgtd (started here on 127.0.0.1) and LUN.
 * Output: one line per measure, in the form of the developers' guide:
 *   bench: io seq_read keel=N MiB/s peer=N MiB/s ratio=R
 * R > 1 means Keel is faster.  KEEL_BENCH_SECONDS sets the read run time
 * (default 10), KEEL_BENCH_SIZE_MB the LUN and file size (default 1024).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "tests/harness/lab.h"

#define REQ (128 * 1024)
#define INFLIGHT 32

static void die(const char *what, const struct keel_error *err)
{
    fprintf(stderr, "bench-io: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

static unsigned env_num(const char *name, unsigned def)
{
    const char *v = getenv(name);
    uint64_t n;

    return v && keel_parse_u64(v, &n) == 0 && n > 0 ? (unsigned)n : def;
}

/* A pool of INFLIGHT request slots: a slot is reused only after its own
 * completion (completions come back in any order). */
struct slots {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct keel_ioreq req[INFLIGHT];
    unsigned free[INFLIGHT], nfree;
    bool failed;
    struct keel_error err;
};

static void slot_done(struct keel_ioreq *r)
{
    struct slots *p = r->opaque;

    pthread_mutex_lock(&p->lock);
    if (r->result != 0 && !p->failed) {
        p->failed = true;
        p->err = r->err;
    }
    p->free[p->nfree++] = (unsigned)(r - p->req);
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void slots_init(struct slots *p)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    for (unsigned i = 0; i < INFLIGHT; i++)
        p->free[p->nfree++] = i;
}

/* Wait until at least `want` slots are free; take one unless want is all. */
static struct keel_ioreq *slots_wait(struct slots *p, unsigned want, const char *what)
{
    struct keel_ioreq *r = NULL;

    pthread_mutex_lock(&p->lock);
    while (p->nfree < want)
        pthread_cond_wait(&p->cond, &p->lock);
    if (p->failed)
        die(what, &p->err);
    if (want < INFLIGHT)
        r = &p->req[p->free[--p->nfree]];
    pthread_mutex_unlock(&p->lock);
    return r;
}

static void slots_release(struct slots *p)
{
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
}

/* Keel: read the LUN sequentially, wrapping around, for `seconds`. */
static double keel_read(const char *url, unsigned seconds)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    static struct slots p;
    unsigned char *buf;
    uint64_t size, pos = 0, bytes = 0, t0, end;

    if (keel_blockdev_open(url, NULL, &dev, &err) != 0)
        die("open", &err);
    size = keel_blockdev_size(dev);
    buf = keel_aligned_alloc(4096, (size_t)REQ * INFLIGHT);
    slots_init(&p);
    t0 = keel_now_ns();
    end = t0 + (uint64_t)seconds * KEEL_NS_PER_S;
    while (keel_now_ns() < end) {
        struct keel_ioreq *r = slots_wait(&p, 1, "read");
        size_t i = (size_t)(r - p.req);

        *r = (struct keel_ioreq){ .op = KEEL_IO_READ, .offset = pos, .len = REQ,
                                  .buf = buf + i * REQ, .done = slot_done, .opaque = &p };
        if (keel_blockdev_submit(dev, r, &err) != 0)
            die("submit", &err);
        bytes += REQ;
        pos = (pos + REQ) % size;
    }
    slots_wait(&p, INFLIGHT, "read");
    t0 = keel_now_ns() - t0;
    slots_release(&p);
    keel_blockdev_close(dev);
    free(buf);
    return (double)bytes / (1 << 20) / ((double)t0 / 1e9);
}

/* Keel: copy the local raw file onto the LUN. */
static double keel_write(const char *url, const char *src, uint64_t size)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    static struct slots p;
    unsigned char *buf;
    uint64_t t0;
    int fd = open(src, O_RDONLY);

    if (fd < 0)
        die(src, NULL);
    if (keel_blockdev_open(url, NULL, &dev, &err) != 0)
        die("open", &err);
    buf = keel_aligned_alloc(4096, (size_t)REQ * INFLIGHT);
    slots_init(&p);
    t0 = keel_now_ns();
    for (uint64_t pos = 0; pos < size; pos += REQ) {
        struct keel_ioreq *r = slots_wait(&p, 1, "write");
        size_t i = (size_t)(r - p.req);

        if (pread(fd, buf + i * REQ, REQ, (off_t)pos) != REQ)
            die("read source", NULL);
        *r = (struct keel_ioreq){ .op = KEEL_IO_WRITE, .offset = pos, .len = REQ,
                                  .buf = buf + i * REQ, .done = slot_done, .opaque = &p };
        if (keel_blockdev_submit(dev, r, &err) != 0)
            die("submit", &err);
    }
    slots_wait(&p, INFLIGHT, "write");
    if (keel_blockdev_flush(dev, &err) != 0)
        die("flush", &err);
    t0 = keel_now_ns() - t0;
    slots_release(&p);
    keel_blockdev_close(dev);
    close(fd);
    free(buf);
    return (double)size / (1 << 20) / ((double)t0 / 1e9);
}

static double peer_read(const char *url, unsigned seconds)
{
    char secs[16];
    const char *argv[] = { "iscsi-perf", "-m", "32", "-b", "256", "-t", secs, url, NULL };
    struct keel_error err = KEEL_ERROR_INIT;
    char *out = NULL, *p, *last = NULL;
    double mbs = 0;

    snprintf(secs, sizeof(secs), "%u", seconds);
    if (keel_lab_run_ok(argv, NULL, &out, &err) != 0)
        die("iscsi-perf", &err);
    /* The last "iops average N (M MB/s)" is the whole run (M is MiB/s). */
    for (p = out; (p = strstr(p, "iops average")) != NULL; p++)
        last = p;
    if (last == NULL || sscanf(last, "iops average %*u (%lf MB/s)", &mbs) != 1)
        die("iscsi-perf output", NULL);
    free(out);
    return mbs;
}

static double peer_write(const char *url, const char *src, uint64_t size)
{
    /* qemu-img allows at most 16 coroutines (-m 32 is refused): its best. */
    const char *argv[] = { "qemu-img", "convert", "-n", "-W", "-m", "16", "-f", "raw",
                           "-O", "raw", src, url, NULL };
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t t0 = keel_now_ns();

    if (keel_lab_run_ok(argv, NULL, NULL, &err) != 0)
        die("qemu-img convert", &err);
    t0 = keel_now_ns() - t0;
    return (double)size / (1 << 20) / ((double)t0 / 1e9);
}

static void line(const char *measure, double keel, double peer)
{
    printf("bench: io %s keel=%.0f MiB/s peer=%.0f MiB/s ratio=%.2f\n", measure, keel, peer,
           peer > 0 ? keel / peer : 0.0);
    fflush(stdout);
}

int main(void)
{
    unsigned seconds = env_num("KEEL_BENCH_SECONDS", 10);
    uint64_t size = (uint64_t)env_num("KEEL_BENCH_SIZE_MB", 1024) << 20;
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;
    char *src;
    const char *url;
    double kr, pr, kw, pw;

    keel_lab_require("tgtd");
    keel_lab_require("iscsi-perf");
    keel_lab_require("qemu-img");
    if (keel_lab_tgtd_start(&t, &err) != 0 ||
        keel_lab_tgtd_add_target(t, "bench", &size, 1, NULL, NULL, &err) != 0)
        die("tgtd", &err);
    url = keel_lab_tgtd_lun_url(t, 0, 1);
    src = keel_strdup_printf("%s/random.raw", keel_lab_tgtd_dir(t));
    {
        char count[32];
        const char *dd[] = { "dd", "if=/dev/urandom", NULL, "bs=1M", count, "status=none",
                             NULL };
        char *of = keel_strdup_printf("of=%s", src);

        dd[2] = of;
        snprintf(count, sizeof(count), "count=%" PRIu64, size >> 20);
        if (keel_lab_run_ok(dd, NULL, NULL, &err) != 0)
            die("dd", &err);
        free(of);
    }
    fprintf(stderr, "bench-io: LUN %s (%" PRIu64 " MiB), %u s reads\n", url, size >> 20,
            seconds);
    /* Writes first, so that the reads read written data; alternate the order. */
    pw = peer_write(url, src, size);
    kw = keel_write(url, src, size);
    kr = keel_read(url, seconds);
    pr = peer_read(url, seconds);
    line("seq_write", kw, pw);
    line("seq_read", kr, pr);
    unlink(src);
    free(src);
    keel_lab_tgtd_stop(t);
    return 0;
}
