/*
 * Unit tests of the linear backend (io/linear.c) over file:// disk images
 * in a fresh temporary directory.  What a request did is judged by reading
 * the image files with pread(2), never only through the linear device, and
 * by a model of the files that the test keeps itself.
 *
 * The layout of most tests, in 512-byte sectors (three segments, two
 * files, the first file used twice and not contiguously):
 *
 *   linear  [0, 16)     [16, 24)     [24, 40)
 *   file    a.img 8..23 b.img 32..39 a.img 40..55
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/faulty.h"
#include "io/fence.h"
#include "io/fs.h"
#include "io/linear.h"

#define SECT 512
#define DISK_SECTS 64
#define NFILES 2
#define LIN_SECTS 40

static char tmpdir[256];

/* Segment table of the layout above: file index, first sector on it, sectors. */
static const struct {
    int file;
    unsigned at, n;
} layout[] = { { 0, 8, 16 }, { 1, 32, 8 }, { 0, 40, 16 } };

struct rig {
    char *path[NFILES];
    char url[NFILES][512];
    struct keel_blockdev *disk[NFILES];   /* the devices the segments are on */
    struct keel_faulty *ctl[NFILES];      /* when wrapped in a faulty device */
    struct keel_blockdev *lin;
    unsigned char model[NFILES][DISK_SECTS * SECT]; /* what each file should hold */
};

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/keel-test-linear.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Every byte of sector s of file f before any write. */
static unsigned char old_byte(int f, unsigned s)
{
    return (unsigned char)(0x80 | (f << 6) | s);
}

/* Sector s of the linear device: its file and sector there. */
static void map(unsigned s, int *file, unsigned *fs)
{
    unsigned start = 0;

    for (size_t i = 0; i < sizeof(layout) / sizeof(layout[0]); i++) {
        if (s < start + layout[i].n) {
            *file = layout[i].file;
            *fs = layout[i].at + (s - start);
            return;
        }
        start += layout[i].n;
    }
    ck_abort_msg("sector %u is past the layout", s);
}

/* Make the image files and open them; wrap file f in a faulty device with plan[f] if given. */
static void rig_open(struct rig *r, const struct keel_fault_plan *plans[NFILES])
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_linear_seg segs[3];
    unsigned char sect[SECT];

    memset(r, 0, sizeof(*r));
    for (int f = 0; f < NFILES; f++) {
        int fd;

        r->path[f] = keel_strdup_printf("%s/%c.img", tmpdir, 'a' + f);
        snprintf(r->url[f], sizeof(r->url[f]), "file://%s", r->path[f]);
        fd = open(r->path[f], O_CREAT | O_TRUNC | O_RDWR, 0644);
        ck_assert_int_ge(fd, 0);
        for (unsigned s = 0; s < DISK_SECTS; s++) {
            memset(sect, old_byte(f, s), SECT);
            memcpy(r->model[f] + s * SECT, sect, SECT);
            ck_assert_int_eq(pwrite(fd, sect, SECT, (off_t)s * SECT), SECT);
        }
        close(fd);
        ck_assert_msg(keel_blockdev_open(r->url[f], NULL, &r->disk[f], &err) == 0, "%s",
                      err.msg);
        if (plans != NULL && plans[f] != NULL)
            ck_assert_msg(keel_faulty_blockdev(r->disk[f], plans[f], &r->disk[f], &r->ctl[f],
                                               &err) == 0, "%s", err.msg);
    }
    for (size_t i = 0; i < 3; i++)
        segs[i] = (struct keel_linear_seg){ .dev = r->disk[layout[i].file],
                                            .offset = (uint64_t)layout[i].at * SECT,
                                            .len = (uint64_t)layout[i].n * SECT };
    ck_assert_msg(keel_linear_blockdev("linear:test", segs, 3, &r->lin, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(keel_blockdev_size(r->lin), LIN_SECTS * SECT);
    ck_assert_uint_eq(keel_blockdev_block_size(r->lin), SECT);
    ck_assert_str_eq(keel_blockdev_name(r->lin), "linear:test");
}

static void rig_close(struct rig *r)
{
    keel_blockdev_close(r->lin);
    for (int f = 0; f < NFILES; f++) {
        keel_blockdev_close(r->disk[f]);
        free(r->path[f]);
    }
}

/* The pattern of write `w` in its j-th sector. */
static void pattern(unsigned char *buf, unsigned nsect, unsigned w)
{
    for (unsigned j = 0; j < nsect; j++)
        for (unsigned b = 0; b < SECT; b++)
            buf[j * SECT + b] = (unsigned char)(w * 37 + j * 5 + b / 64);
}

/* Apply to the model what a write (data, or zeroes when buf is NULL) at sector s does. */
static void model_write(struct rig *r, unsigned s, unsigned nsect, const unsigned char *buf)
{
    for (unsigned j = 0; j < nsect; j++) {
        int f;
        unsigned fs;

        map(s + j, &f, &fs);
        if (buf != NULL)
            memcpy(r->model[f] + fs * SECT, buf + j * SECT, SECT);
        else
            memset(r->model[f] + fs * SECT, 0, SECT);
    }
}

/* Every file holds exactly what the model says, sector by sector. */
static void files_match(struct rig *r, const char *when)
{
    static unsigned char got[DISK_SECTS * SECT];

    for (int f = 0; f < NFILES; f++) {
        int fd = open(r->path[f], O_RDONLY);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
        close(fd);
        for (unsigned s = 0; s < DISK_SECTS; s++)
            ck_assert_msg(memcmp(got + s * SECT, r->model[f] + s * SECT, SECT) == 0,
                          "%s: %s sector %u is not what was written", when, r->path[f], s);
    }
}

/* Reading [s, s + n) through the linear device gives what the model maps there. */
static void reads_match(struct rig *r, unsigned s, unsigned n)
{
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char *buf = malloc((size_t)n * SECT);

    ck_assert_ptr_nonnull(buf);
    ck_assert_msg(keel_blockdev_pread(r->lin, buf, (size_t)n * SECT, (uint64_t)s * SECT,
                                      &err) == 0, "%s", err.msg);
    for (unsigned j = 0; j < n; j++) {
        int f;
        unsigned fs;

        map(s + j, &f, &fs);
        ck_assert_msg(memcmp(buf + j * SECT, r->model[f] + fs * SECT, SECT) == 0,
                      "read of sector %u (%s sector %u) differs", s + j, r->path[f], fs);
    }
    free(buf);
}

static void write_at(struct rig *r, unsigned s, unsigned n, unsigned w)
{
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char *buf = malloc((size_t)n * SECT);

    ck_assert_ptr_nonnull(buf);
    pattern(buf, n, w);
    ck_assert_msg(keel_blockdev_pwrite(r->lin, buf, (size_t)n * SECT, (uint64_t)s * SECT,
                                       &err) == 0, "write %u: %s", w, err.msg);
    model_write(r, s, n, buf);
    free(buf);
}

static void expect_msg(const struct keel_error *err, enum keel_errc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void expect_msg(const struct keel_error *err, enum keel_errc code, const char *fmt, ...)
{
    char want[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(want, sizeof(want), fmt, ap);
    va_end(ap);
    ck_assert_int_eq(err->code, code);
    ck_assert_str_eq(err->msg, want);
}

START_TEST(split_at_boundaries)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct rig r;

    rig_open(&r, NULL);
    /* The whole device: every segment, in the right place of the right file. */
    write_at(&r, 0, LIN_SECTS, 1);
    files_match(&r, "whole write");
    reads_match(&r, 0, LIN_SECTS);
    /* Across the first boundary (a.img -> b.img), then across both. */
    write_at(&r, 14, 4, 2);
    files_match(&r, "write across 16");
    write_at(&r, 20, 11, 3);
    files_match(&r, "write across 24");
    /* Entirely inside one segment: the middle one, and the last sector of the device. */
    write_at(&r, 17, 3, 4);
    write_at(&r, LIN_SECTS - 1, 1, 5);
    files_match(&r, "writes inside a segment");
    reads_match(&r, 0, LIN_SECTS);
    reads_match(&r, 15, 2);
    reads_match(&r, 23, 2);
    reads_match(&r, 18, 1);
    /* Write-zeroes across a boundary; a discard across one leaves the rest alone. */
    ck_assert_msg(keel_blockdev_write_zeroes(r.lin, 22 * SECT, 5 * SECT, &err) == 0, "%s",
                  err.msg);
    model_write(&r, 22, 5, NULL);
    files_match(&r, "write-zeroes across 24");
    reads_match(&r, 0, LIN_SECTS);
    ck_assert_msg(keel_blockdev_discard(r.lin, 15 * SECT, 2 * SECT, &err) == 0, "%s", err.msg);
    model_write(&r, 15, 2, NULL); /* the file backend punches a hole: zeroes */
    files_match(&r, "discard across 16");
    ck_assert_msg(keel_blockdev_flush(r.lin, &err) == 0, "%s", err.msg);
    rig_close(&r);
}
END_TEST

START_TEST(refusals)
{
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char buf[2 * SECT] = { 0 };
    struct keel_ioreq req = { .op = KEEL_IO_WRITE, .offset = 0, .len = 100, .buf = buf };
    struct rig r;

    rig_open(&r, NULL);
    ck_assert_int_eq(keel_blockdev_pwrite(r.lin, buf, 100, 0, &err), -1);
    expect_msg(&err, KEEL_E_ALIGN, "linear:test: write of 100 bytes at offset 0: not aligned to "
               "the 512-byte block size");
    ck_assert_int_eq(keel_blockdev_pread(r.lin, buf, SECT, 100, &err), -1);
    expect_msg(&err, KEEL_E_ALIGN, "linear:test: read of 512 bytes at offset 100: not aligned to "
               "the 512-byte block size");
    ck_assert_int_eq(keel_blockdev_pread(r.lin, buf, 2 * SECT, (LIN_SECTS - 1) * SECT, &err), -1);
    expect_msg(&err, KEEL_E_RANGE, "linear:test: read of 1024 bytes at offset 19968: beyond the "
               "end of the device (20480 bytes)");
    ck_assert_int_eq(keel_blockdev_write_zeroes(r.lin, LIN_SECTS * SECT, SECT, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_RANGE);
    /* Refused by submit: -1 and no done(). */
    ck_assert_int_eq(keel_blockdev_submit(r.lin, &req, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_ALIGN);
    /* Nothing reached the files. */
    files_match(&r, "refused requests");
    rig_close(&r);
}
END_TEST

START_TEST(refused_layouts)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *a = NULL, *b4k = NULL, *dev = NULL;
    struct keel_fs *fs = NULL;
    struct keel_file *file = NULL;
    char *path = keel_strdup_printf("%s/a.img", tmpdir), url[512], dir[512];
    struct keel_linear_seg segs[2];
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, DISK_SECTS * SECT), 0);
    close(fd);
    snprintf(url, sizeof(url), "file://%s", path);
    ck_assert_msg(keel_blockdev_open(url, NULL, &a, &err) == 0, "%s", err.msg);

    ck_assert_int_eq(keel_linear_blockdev("lin", segs, 0, &dev, &err), -1);
    expect_msg(&err, KEEL_E_INVAL, "lin: no segments");
    segs[0] = (struct keel_linear_seg){ .dev = a, .offset = 0, .len = 0 };
    ck_assert_int_eq(keel_linear_blockdev("lin", segs, 1, &dev, &err), -1);
    expect_msg(&err, KEEL_E_INVAL, "lin: segment 0 is empty");
    segs[0] = (struct keel_linear_seg){ .dev = a, .offset = 512, .len = 1000 };
    ck_assert_int_eq(keel_linear_blockdev("lin", segs, 1, &dev, &err), -1);
    expect_msg(&err, KEEL_E_ALIGN, "lin: segment 0, 1000 bytes at offset 512 of %s: not aligned "
               "to the 512-byte block size", url);
    segs[0] = (struct keel_linear_seg){ .dev = a, .offset = 0, .len = SECT };
    segs[1] = (struct keel_linear_seg){ .dev = a, .offset = 60 * SECT, .len = 8 * SECT };
    ck_assert_int_eq(keel_linear_blockdev(NULL, segs, 2, &dev, &err), -1);
    expect_msg(&err, KEEL_E_RANGE, "linear:%s: segment 1, 4096 bytes at offset 30720: beyond "
               "the end of %s (32768 bytes)", url, url);
    segs[1].dev = NULL;
    ck_assert_int_eq(keel_linear_blockdev("lin", segs, 2, &dev, &err), -1);
    expect_msg(&err, KEEL_E_INVAL, "lin: segment 1 has no device");

    /* A view of the same file with 4096-byte blocks does not mix with 512. */
    snprintf(dir, sizeof(dir), "file://%s", tmpdir);
    ck_assert_msg(keel_fs_open(dir, NULL, &fs, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_open(fs, "a.img", KEEL_O_RDWR, 0, &file, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_open_file(file, 4096, &b4k, &err) == 0, "%s", err.msg);
    segs[1] = (struct keel_linear_seg){ .dev = b4k, .offset = 0, .len = 4096 };
    ck_assert_int_eq(keel_linear_blockdev("lin", segs, 2, &dev, &err), -1);
    expect_msg(&err, KEEL_E_INVAL, "lin: segment 1 is on %s, of 4096-byte blocks, segment 0 on "
               "%s, of 512-byte blocks", keel_blockdev_name(b4k), url);
    ck_assert_ptr_null(dev);

    /* Segments that continue each other on one device make one: still right. */
    segs[0] = (struct keel_linear_seg){ .dev = a, .offset = 0, .len = 4 * SECT };
    segs[1] = (struct keel_linear_seg){ .dev = a, .offset = 4 * SECT, .len = 4 * SECT };
    ck_assert_msg(keel_linear_blockdev("lin", segs, 2, &dev, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_blockdev_size(dev), 8 * SECT);
    {
        unsigned char w[8 * SECT], g[8 * SECT];

        pattern(w, 8, 9);
        ck_assert_msg(keel_blockdev_pwrite(dev, w, sizeof(w), 0, &err) == 0, "%s", err.msg);
        fd = open(path, O_RDONLY);
        ck_assert_int_eq(pread(fd, g, sizeof(g), 0), (ssize_t)sizeof(g));
        close(fd);
        ck_assert(memcmp(w, g, sizeof(w)) == 0);
    }
    keel_blockdev_close(dev);
    keel_blockdev_close(b4k);
    ck_assert_int_eq(keel_file_close(file, &err), 0);
    keel_fs_close(fs);
    keel_blockdev_close(a);
    free(path);
}
END_TEST

/* ---- many requests in flight ---- */

#define NREQ 200
#define REQ_SECTS 3

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned done, failed;
    char first_err[KEEL_ERR_MSG];
};

static void count_done(struct keel_ioreq *req)
{
    struct waiter *w = req->opaque;

    pthread_mutex_lock(&w->lock);
    if (req->result != 0 && w->failed++ == 0)
        keel_strlcpy(w->first_err, req->err.msg, sizeof(w->first_err));
    else if (req->result == 0 && req->op != KEEL_IO_FLUSH && req->xfer != req->len &&
             w->failed++ == 0)
        snprintf(w->first_err, sizeof(w->first_err), "xfer %zu of %zu", req->xfer, req->len);
    w->done++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void wait_all(struct waiter *w, unsigned n)
{
    pthread_mutex_lock(&w->lock);
    while (w->done < n)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

/*
 * NREQ requests at once, each of REQ_SECTS sectors at a position that
 * walks over the device (so many straddle a boundary); the writes of one
 * round do not overlap each other, so every result is defined.
 */
START_TEST(async_many_in_flight)
{
    static struct keel_ioreq reqs[NREQ];
    static unsigned char bufs[NREQ][REQ_SECTS * SECT];
    struct waiter w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
    struct keel_error err = KEEL_ERROR_INIT;
    /* Non-overlapping slots of one round, shifted by up to REQ_SECTS - 1 sectors. */
    unsigned per_round = (LIN_SECTS - (REQ_SECTS - 1)) / REQ_SECTS;
    static unsigned char big[32][10 * SECT];
    struct rig r;

    rig_open(&r, NULL);
    /* Round k writes slots k * per_round ... with a shift of k % REQ_SECTS sectors. */
    for (unsigned base = 0; base < NREQ; base += per_round) {
        unsigned n = KEEL_MIN(per_round, NREQ - base), shift = (base / per_round) % REQ_SECTS;

        memset(&w, 0, sizeof(w));
        pthread_mutex_init(&w.lock, NULL);
        pthread_cond_init(&w.cond, NULL);
        for (unsigned i = 0; i < n; i++) {
            unsigned s = shift + i * REQ_SECTS;

            pattern(bufs[base + i], REQ_SECTS, base + i);
            reqs[base + i] = (struct keel_ioreq){ .op = KEEL_IO_WRITE, .offset = (uint64_t)s * SECT,
                                                  .len = REQ_SECTS * SECT, .buf = bufs[base + i],
                                                  .done = count_done, .opaque = &w };
            model_write(&r, s, REQ_SECTS, bufs[base + i]);
        }
        for (unsigned i = 0; i < n; i++)
            ck_assert_msg(keel_blockdev_submit(r.lin, &reqs[base + i], &err) == 0, "%s", err.msg);
        wait_all(&w, n);
        ck_assert_msg(w.failed == 0, "%u failed: %s", w.failed, w.first_err);
        pthread_mutex_destroy(&w.lock);
        pthread_cond_destroy(&w.cond);
    }
    files_match(&r, "async writes");

    /* NREQ reads at once, every position; each gets what the model maps there. */
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    for (unsigned i = 0; i < NREQ; i++) {
        unsigned s = i % (LIN_SECTS - REQ_SECTS + 1);

        memset(bufs[i], 0, sizeof(bufs[i]));
        reqs[i] = (struct keel_ioreq){ .op = KEEL_IO_READ, .offset = (uint64_t)s * SECT,
                                       .len = REQ_SECTS * SECT, .buf = bufs[i],
                                       .done = count_done, .opaque = &w };
        ck_assert_msg(keel_blockdev_submit(r.lin, &reqs[i], &err) == 0, "%s", err.msg);
    }
    /* A flush in the middle of them all. */
    {
        static struct keel_ioreq fl;

        fl = (struct keel_ioreq){ .op = KEEL_IO_FLUSH, .done = count_done, .opaque = &w };
        ck_assert_msg(keel_blockdev_submit(r.lin, &fl, &err) == 0, "%s", err.msg);
    }
    wait_all(&w, NREQ + 1);
    ck_assert_msg(w.failed == 0, "%u failed: %s", w.failed, w.first_err);
    for (unsigned i = 0; i < NREQ; i++) {
        unsigned s = i % (LIN_SECTS - REQ_SECTS + 1);

        for (unsigned j = 0; j < REQ_SECTS; j++) {
            int f;
            unsigned fs;

            map(s + j, &f, &fs);
            ck_assert_msg(memcmp(bufs[i] + j * SECT, r.model[f] + fs * SECT, SECT) == 0,
                          "async read %u, sector %u differs", i, s + j);
        }
    }
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    /* Close with requests in flight: it waits for them. */
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    for (unsigned i = 0; i < 32; i++) {
        reqs[i] = (struct keel_ioreq){ .op = KEEL_IO_READ, .offset = (uint64_t)(i % 30) * SECT,
                                       .len = 10 * SECT, .buf = big[i],
                                       .done = count_done, .opaque = &w };
        ck_assert_msg(keel_blockdev_submit(r.lin, &reqs[i], &err) == 0, "%s", err.msg);
    }
    keel_blockdev_close(r.lin);
    r.lin = NULL;
    ck_assert_uint_eq(w.done, 32);
    rig_close(&r);
}
END_TEST

/* A part that fails fails its request, with that part's error; the other parts stand. */
START_TEST(errors_of_one_part)
{
    struct keel_fault_plan eio_b = { .eio_at = 1, .eio_ops = 1u << KEEL_IO_WRITE };
    const struct keel_fault_plan *plans[NFILES] = { NULL, &eio_b };
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char buf[8 * SECT];
    struct rig r;

    rig_open(&r, plans);
    /* Sectors 12..19: 4 on a.img, 4 on b.img, whose write fails. */
    pattern(buf, 8, 7);
    ck_assert_int_eq(keel_blockdev_pwrite(r.lin, buf, sizeof(buf), 12 * SECT, &err), -1);
    expect_msg(&err, KEEL_E_IO, "faulty:%s: injected I/O error", r.url[1]);
    ck_assert_int_eq(err.sys_errno, EIO);
    /* The part on a.img was written (a failed write may be applied in part). */
    model_write(&r, 12, 4, buf);
    files_match(&r, "write failed on b.img");
    reads_match(&r, 0, LIN_SECTS);
    /* The next write passes whole. */
    write_at(&r, 12, 8, 8);
    files_match(&r, "write after the error");

    /* The same through submit: done() reports it, with xfer 0. */
    {
        struct waiter w = { .lock = PTHREAD_MUTEX_INITIALIZER,
                            .cond = PTHREAD_COND_INITIALIZER };
        struct keel_ioreq req = { .op = KEEL_IO_READ, .offset = 12 * SECT, .len = 8 * SECT,
                                  .buf = buf, .done = count_done, .opaque = &w };
        struct keel_fault_plan short_b = { .short_read_at = 1 };

        keel_faulty_arm(r.ctl[1], &short_b);
        ck_assert_int_eq(keel_blockdev_submit(r.lin, &req, &err), 0);
        wait_all(&w, 1);
        ck_assert_int_eq(req.result, -1);
        ck_assert_uint_eq(req.xfer, 0);
        expect_msg(&req.err, KEEL_E_SHORT, "faulty:%s: injected short read: 1024 of 2048 bytes",
                   r.url[1]);
    }
    /* A flush reaches every device: one that fails fails it. */
    {
        struct keel_fault_plan eio_flush = { .eio_at = 1, .eio_ops = 1u << KEEL_IO_FLUSH };

        keel_faulty_arm(r.ctl[1], &eio_flush);
        ck_assert_int_eq(keel_blockdev_flush(r.lin, &err), -1);
        expect_msg(&err, KEEL_E_IO, "faulty:%s: injected I/O error", r.url[1]);
        ck_assert_msg(keel_blockdev_flush(r.lin, &err) == 0, "%s", err.msg);
    }
    /* A request inside a.img's segments never touches b.img's faults. */
    {
        struct keel_fault_plan crash_b = { .crash_at = 1 };

        keel_faulty_arm(r.ctl[1], &crash_b);
        write_at(&r, 0, 16, 10);
        write_at(&r, 24, 16, 11);
        ck_assert_uint_eq(keel_faulty_writes(r.ctl[1]), 0);
        ck_assert_int_eq(keel_blockdev_write_zeroes(r.lin, 0, LIN_SECTS * SECT, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_FAULT);
        keel_faulty_arm(r.ctl[1], NULL);
    }
    rig_close(&r);
}
END_TEST

/* A fence set on the linear device is the fence of the segments' connections. */
START_TEST(fence_reaches_the_devices)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_fence *fence = keel_fence_new("test lease");
    unsigned char buf[2 * SECT];
    struct rig r;

    ck_assert_ptr_nonnull(fence);
    rig_open(&r, NULL);
    keel_blockdev_set_fence(r.lin, fence);
    pattern(buf, 2, 1);
    ck_assert_int_eq(keel_blockdev_pwrite(r.lin, buf, sizeof(buf), 15 * SECT, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FENCED);
    ck_assert_int_eq(keel_blockdev_pwrite(r.disk[1], buf, sizeof(buf), 0, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FENCED);
    /* Reads and flushes pass. */
    reads_match(&r, 0, LIN_SECTS);
    ck_assert_msg(keel_blockdev_flush(r.lin, &err) == 0, "%s", err.msg);
    files_match(&r, "fenced writes");
    keel_blockdev_set_fence(r.lin, NULL);
    write_at(&r, 15, 2, 2);
    files_match(&r, "write after the fence is gone");
    rig_close(&r);
    keel_fence_free(fence);
}
END_TEST

/* A sparse file of `size` bytes with `len` bytes of 0x77 at `at`; its file:// device. */
static struct keel_blockdev *sparse_disk(const char *name, uint64_t size, uint64_t at,
                                         size_t len)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    _cleanup_free_ char *path = keel_strdup_printf("%s/%s", tmpdir, name);
    char url[512];
    unsigned char buf[4096];
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
    memset(buf, 0x77, sizeof(buf));
    for (size_t done = 0; done < len; done += sizeof(buf))
        ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), (off_t)(at + done)), (ssize_t)sizeof(buf));
    close(fd);
    snprintf(url, sizeof(url), "file://%s", path);
    ck_assert_msg(keel_blockdev_open(url, NULL, &dev, &err) == 0, "%s", err.msg);
    return dev;
}

static void expect_status(struct keel_blockdev *dev, uint64_t off, uint64_t len, uint64_t run,
                          bool zero)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t got = 0;
    bool z = !zero;

    ck_assert_msg(keel_blockdev_block_status(dev, off, len, &got, &z, &err) == 0, "%s", err.msg);
    ck_assert_msg(got == run && z == zero, "status at %llu: %llu bytes %s, expected %llu %s",
                  (unsigned long long)off, (unsigned long long)got, z ? "zero" : "data",
                  (unsigned long long)run, zero ? "zero" : "data");
}

/*
 * Block status through segments: each answer comes from the segment's own
 * device at the translated offset and stops at the segment's end.
 *   linear [0, 256K) a.img 0..256K   (data at 64K..128K)
 *          [256K, 512K) b.img 0..256K (no data)
 *          [512K, 640K) a.img 128K..256K
 */
START_TEST(block_status_by_segment)
{
    const uint64_t K = 1024;
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *a = sparse_disk("a.img", 1024 * K, 64 * K, 64 * K);
    struct keel_blockdev *b = sparse_disk("b.img", 1024 * K, 0, 0);
    struct keel_blockdev *lin = NULL, *fa = NULL, *lin2 = NULL;
    struct keel_faulty *ctl = NULL;
    struct keel_fault_plan plan = { 0 };
    struct keel_linear_seg segs[3] = {
        { .dev = a, .offset = 0, .len = 256 * K },
        { .dev = b, .offset = 0, .len = 256 * K },
        { .dev = a, .offset = 128 * K, .len = 128 * K },
    };
    uint64_t run;
    bool zero;

    ck_assert_msg(keel_linear_blockdev("lin", segs, 3, &lin, &err) == 0, "%s", err.msg);
    ck_assert(keel_blockdev_knows_status(lin));
    expect_status(lin, 0, 640 * K, 64 * K, true);
    expect_status(lin, 64 * K, 576 * K, 64 * K, false);
    expect_status(lin, 96 * K, 576 * K - 32 * K, 32 * K, false);
    /* a.img is a hole from 128K to its end, but the segment ends at 256K. */
    expect_status(lin, 128 * K, 512 * K, 128 * K, true);
    expect_status(lin, 256 * K, 384 * K, 256 * K, true);
    expect_status(lin, 512 * K, 128 * K, 128 * K, true);
    expect_status(lin, 520 * K, 4 * K, 4 * K, true);
    ck_assert_int_eq(keel_blockdev_block_status(lin, 640 * K, 512, &run, &zero, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_RANGE);
    keel_blockdev_close(lin);

    /* A segment on a device that cannot tell: the whole linear device answers data. */
    ck_assert_msg(keel_faulty_blockdev(b, &plan, &fa, &ctl, &err) == 0, "%s", err.msg);
    ck_assert(!keel_blockdev_knows_status(fa));
    segs[1].dev = fa;
    ck_assert_msg(keel_linear_blockdev("lin2", segs, 3, &lin2, &err) == 0, "%s", err.msg);
    ck_assert(!keel_blockdev_knows_status(lin2));
    expect_status(lin2, 0, 640 * K, 640 * K, false);
    keel_blockdev_close(lin2);
    keel_blockdev_close(fa); /* closes b */
    keel_blockdev_close(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("linear");
    TCase *tc = tcase_create("linear");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, split_at_boundaries);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, refused_layouts);
    tcase_add_test(tc, async_many_in_flight);
    tcase_add_test(tc, errors_of_one_part);
    tcase_add_test(tc, fence_reaches_the_devices);
    tcase_add_test(tc, block_status_by_segment);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
