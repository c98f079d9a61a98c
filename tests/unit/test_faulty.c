/*
 * Unit tests of the faulty backend (io/faulty.c, io/faulty-fs.c) over the
 * local backends: a file:// disk image and a file:// directory in a fresh
 * temporary directory.  The wrapper's effects are judged by reading the
 * real file with pread(2) and the real directory with stat(2), never
 * through the wrapper itself.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/faulty.h"
#include "io/fs.h"

#define SECT 512
#define SPW 8           /* sectors per write of the crash sequences */
#define NW 5            /* writes in a crash sequence */
#define DISK_SECTS 64

static char tmpdir[256];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/keel-test-faulty.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static const enum keel_tear all_tears[] = {
    KEEL_TEAR_DROP, KEEL_TEAR_FULL, KEEL_TEAR_PREFIX, KEEL_TEAR_RANDOM,
};

/* ---- block device helpers ---- */

/* What sector s holds before any write: every byte 0x80 | s. */
static unsigned char old_byte(unsigned s)
{
    return (unsigned char)(0x80 | s);
}

/* What write w (1..) puts in its j-th sector. */
static unsigned char new_byte(unsigned w, unsigned j)
{
    return (unsigned char)(w * 16 + j);
}

/* A disk image of DISK_SECTS sectors holding the "old" pattern. */
static char *make_disk(const char *name)
{
    char *path = keel_strdup_printf("%s/%s", tmpdir, name);
    unsigned char sect[SECT];
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);

    ck_assert_int_ge(fd, 0);
    for (unsigned s = 0; s < DISK_SECTS; s++) {
        memset(sect, old_byte(s), SECT);
        ck_assert_int_eq(pwrite(fd, sect, SECT, (off_t)s * SECT), SECT);
    }
    close(fd);
    return path;
}

static struct keel_blockdev *open_faulty_disk(const char *path, const struct keel_fault_plan *plan,
                                              struct keel_faulty **ctl)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *inner = NULL, *dev = NULL;
    char url[512];

    snprintf(url, sizeof(url), "file://%s", path);
    ck_assert_msg(keel_blockdev_open(url, NULL, &inner, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_faulty_blockdev(inner, plan, &dev, ctl, &err) == 0, "%s", err.msg);
    return dev;
}

/* Write w of a sequence: SPW sectors at sector (w - 1) * SPW. */
static int write_nth(struct keel_blockdev *dev, unsigned w, struct keel_error *err)
{
    unsigned char buf[SPW * SECT];

    for (unsigned j = 0; j < SPW; j++)
        memset(buf + j * SECT, new_byte(w, j), SECT);
    return keel_blockdev_pwrite(dev, buf, sizeof(buf), (uint64_t)(w - 1) * SPW * SECT, err);
}

/*
 * State of sector j of write w's range in the real file: 'n' new (what w
 * wrote), 'o' old, 'z' zeroes, '?' anything else (a torn sector).
 */
static char sector_state(int fd, unsigned w, unsigned j)
{
    unsigned s = (w - 1) * SPW + j;
    unsigned char got[SECT], want[SECT];

    ck_assert_int_eq(pread(fd, got, SECT, (off_t)s * SECT), SECT);
    memset(want, new_byte(w, j), SECT);
    if (memcmp(got, want, SECT) == 0)
        return 'n';
    memset(want, old_byte(s), SECT);
    if (memcmp(got, want, SECT) == 0)
        return 'o';
    memset(want, 0, SECT);
    if (memcmp(got, want, SECT) == 0)
        return 'z';
    return '?';
}

/* The states of write w's SPW sectors, as a string. */
static void write_states(int fd, unsigned w, char out[SPW + 1])
{
    for (unsigned j = 0; j < SPW; j++)
        out[j] = sector_state(fd, w, j);
    out[SPW] = '\0';
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

/*
 * Run the 5-write sequence on a fresh disk with crash_at = k and tear; check
 * what each write returned.  Returns the states of the crashing write's
 * sectors in torn[] and checks the other writes' sectors.
 */
static void crash_run(enum keel_tear tear, unsigned k, uint32_t seed, char torn[SPW + 1])
{
    struct keel_fault_plan plan = { .crash_at = k, .tear = tear, .seed = seed };
    char *path = make_disk("disk.img");
    struct keel_faulty *ctl = NULL;
    struct keel_blockdev *dev = open_faulty_disk(path, &plan, &ctl);
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char buf[SECT];
    char states[SPW + 1];
    int fd;

    for (unsigned w = 1; w <= NW; w++) {
        int rc = write_nth(dev, w, &err);

        if (w < k) {
            ck_assert_msg(rc == 0, "write %u: %s", w, err.msg);
            ck_assert(!keel_faulty_crashed(ctl));
        } else if (w == k) {
            ck_assert_int_eq(rc, -1);
            expect_msg(&err, KEEL_E_FAULT, "faulty:file://%s: injected crash at write %u", path,
                       k);
            ck_assert_int_eq(err.sys_errno, EIO);
            ck_assert(keel_faulty_crashed(ctl));
        } else {
            ck_assert_int_eq(rc, -1);
            expect_msg(&err, KEEL_E_FAULT,
                       "faulty:file://%s: dead after the injected crash at write %u", path, k);
        }
    }
    /* Everything after the crash fails, reads and flushes too. */
    ck_assert_int_eq(keel_blockdev_pread(dev, buf, SECT, 0, &err), -1);
    expect_msg(&err, KEEL_E_FAULT, "faulty:file://%s: dead after the injected crash at write %u",
               path, k);
    ck_assert_int_eq(keel_blockdev_flush(dev, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FAULT);
    ck_assert_uint_eq(keel_faulty_writes(ctl), k);
    keel_blockdev_close(dev);

    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    for (unsigned w = 1; w <= NW; w++) {
        write_states(fd, w, states);
        if (w < k)
            ck_assert_str_eq(states, "nnnnnnnn");
        else if (w > k)
            ck_assert_str_eq(states, "oooooooo");
        else
            memcpy(torn, states, SPW + 1);
    }
    /* Beyond the sequence nothing was touched. */
    for (unsigned s = NW * SPW; s < DISK_SECTS; s++) {
        unsigned char want[SECT];

        ck_assert_int_eq(pread(fd, buf, SECT, (off_t)s * SECT), SECT);
        memset(want, old_byte(s), SECT);
        ck_assert_msg(memcmp(buf, want, SECT) == 0, "sector %u changed", s);
    }
    close(fd);
    ck_assert_int_eq(unlink(path), 0);
    free(path);
}

START_TEST(block_crash_each_write_each_tear)
{
    bool proper_subset_seen = false;

    for (size_t t = 0; t < sizeof(all_tears) / sizeof(all_tears[0]); t++) {
        for (unsigned k = 1; k <= NW; k++) {
            char torn[SPW + 1], again[SPW + 1];

            crash_run(all_tears[t], k, 1234, torn);
            switch (all_tears[t]) {
            case KEEL_TEAR_DROP:
                ck_assert_str_eq(torn, "oooooooo");
                break;
            case KEEL_TEAR_FULL:
                ck_assert_str_eq(torn, "nnnnnnnn");
                break;
            case KEEL_TEAR_PREFIX:
                ck_assert_str_eq(torn, "nnnnoooo");
                break;
            case KEEL_TEAR_RANDOM:
                /* A subset: every sector is either the old or the new one. */
                ck_assert_msg(strspn(torn, "no") == SPW, "k=%u: %s", k, torn);
                if (strchr(torn, 'n') != NULL && strchr(torn, 'o') != NULL)
                    proper_subset_seen = true;
                /* The same seed tears the same way. */
                crash_run(KEEL_TEAR_RANDOM, k, 1234, again);
                ck_assert_str_eq(torn, again);
                break;
            }
        }
    }
    ck_assert_msg(proper_subset_seen, "RANDOM never tore a write in 5 tries");
}
END_TEST

/* A torn WRITE_ZEROES and a crashing DISCARD behave like writes. */
START_TEST(block_crash_zeroes_and_discard)
{
    struct keel_fault_plan plan = { .crash_at = 2, .tear = KEEL_TEAR_PREFIX };
    char *path = make_disk("disk.img");
    struct keel_faulty *ctl = NULL;
    struct keel_blockdev *dev = open_faulty_disk(path, &plan, &ctl);
    struct keel_error err = KEEL_ERROR_INIT;
    char states[SPW + 1];
    int fd;

    ck_assert_msg(keel_blockdev_discard(dev, 0, SECT, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_blockdev_write_zeroes(dev, SPW * SECT, SPW * SECT, &err), -1);
    expect_msg(&err, KEEL_E_FAULT, "faulty:file://%s: injected crash at write 2", path);
    keel_blockdev_close(dev);
    fd = open(path, O_RDONLY);
    write_states(fd, 2, states);
    ck_assert_str_eq(states, "zzzzoooo");
    close(fd);
    free(path);
}
END_TEST

/*
 * Buffered writes: flushed ones survive; unflushed ones are applied by the
 * tear; reads before the crash see them.
 */
static void buffered_run(enum keel_tear tear, char w3[SPW + 1], char w4[SPW + 1])
{
    struct keel_fault_plan plan = { .crash_at = 4, .tear = tear, .buffer_writes = true,
                                    .seed = 99 };
    char *path = make_disk("disk.img");
    struct keel_faulty *ctl = NULL;
    struct keel_blockdev *dev = open_faulty_disk(path, &plan, &ctl);
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char got[SPW * SECT];
    char states[SPW + 1];
    int fd = open(path, O_RDONLY);

    ck_assert_msg(write_nth(dev, 1, &err) == 0, "%s", err.msg);
    ck_assert_msg(write_nth(dev, 2, &err) == 0, "%s", err.msg);
    /* Not on the storage yet. */
    write_states(fd, 1, states);
    ck_assert_str_eq(states, "oooooooo");
    ck_assert_msg(keel_blockdev_flush(dev, &err) == 0, "%s", err.msg);
    write_states(fd, 1, states);
    ck_assert_str_eq(states, "nnnnnnnn");
    write_states(fd, 2, states);
    ck_assert_str_eq(states, "nnnnnnnn");
    ck_assert_msg(write_nth(dev, 3, &err) == 0, "%s", err.msg);
    write_states(fd, 3, states);
    ck_assert_str_eq(states, "oooooooo");
    /* ...but the wrapper's reads see it. */
    ck_assert_msg(keel_blockdev_pread(dev, got, sizeof(got), 2 * SPW * SECT, &err) == 0, "%s",
                  err.msg);
    for (unsigned j = 0; j < SPW; j++)
        ck_assert_uint_eq(got[j * SECT + 7], new_byte(3, j));
    ck_assert_int_eq(write_nth(dev, 4, &err), -1);
    expect_msg(&err, KEEL_E_FAULT, "faulty:file://%s: injected crash at write 4", path);
    keel_blockdev_close(dev);
    write_states(fd, 1, states);
    ck_assert_str_eq(states, "nnnnnnnn");
    write_states(fd, 2, states);
    ck_assert_str_eq(states, "nnnnnnnn");
    write_states(fd, 3, w3);
    write_states(fd, 4, w4);
    write_states(fd, 5, states);
    ck_assert_str_eq(states, "oooooooo");
    close(fd);
    ck_assert_int_eq(unlink(path), 0);
    free(path);
}

START_TEST(block_buffered_crash)
{
    char w3[SPW + 1], w4[SPW + 1], r3[SPW + 1], r4[SPW + 1];

    buffered_run(KEEL_TEAR_DROP, w3, w4);
    ck_assert_str_eq(w3, "oooooooo");
    ck_assert_str_eq(w4, "oooooooo");
    buffered_run(KEEL_TEAR_FULL, w3, w4);
    ck_assert_str_eq(w3, "nnnnnnnn");
    ck_assert_str_eq(w4, "nnnnnnnn");
    /* Two unflushed writes: the first one, whole. */
    buffered_run(KEEL_TEAR_PREFIX, w3, w4);
    ck_assert_str_eq(w3, "nnnnnnnn");
    ck_assert_str_eq(w4, "oooooooo");
    buffered_run(KEEL_TEAR_RANDOM, w3, w4);
    ck_assert_msg(strspn(w3, "no") == SPW && strspn(w4, "no") == SPW, "%s %s", w3, w4);
    buffered_run(KEEL_TEAR_RANDOM, r3, r4);
    ck_assert_str_eq(w3, r3);
    ck_assert_str_eq(w4, r4);
}
END_TEST

/* Overlapping buffered writes read back in order; a clean close applies them. */
START_TEST(block_buffered_overlay_and_close)
{
    struct keel_fault_plan plan = { .buffer_writes = true };
    char *path = make_disk("disk.img");
    struct keel_faulty *ctl = NULL;
    struct keel_blockdev *dev = open_faulty_disk(path, &plan, &ctl);
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char a[4 * SECT], b[4 * SECT], got[8 * SECT];
    const char *want = "AABBZBoo";
    int fd = open(path, O_RDONLY);

    memset(a, 'A', sizeof(a));
    memset(b, 'B', sizeof(b));
    ck_assert_msg(keel_blockdev_pwrite(dev, a, sizeof(a), 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_pwrite(dev, b, sizeof(b), 2 * SECT, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_write_zeroes(dev, 4 * SECT, SECT, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_faulty_writes(ctl), 3);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0)
            ck_assert_msg(keel_blockdev_pread(dev, got, sizeof(got), 0, &err) == 0, "%s",
                          err.msg);
        else
            ck_assert_int_eq(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
        for (unsigned s = 0; s < 8; s++) {
            unsigned char w = want[s] == 'Z' ? 0 : want[s] == 'o' ? old_byte(s)
                                                                  : (unsigned char)want[s];

            ck_assert_msg(got[s * SECT] == w && got[s * SECT + SECT - 1] == w,
                          "pass %d sector %u: %02x", pass, s, got[s * SECT]);
        }
        if (pass == 0) {
            /* The file still holds the old data; closing applies the writes. */
            ck_assert_int_eq(pread(fd, got, SECT, 0), SECT);
            ck_assert_uint_eq(got[0], old_byte(0));
            keel_blockdev_close(dev);
        }
    }
    close(fd);
    free(path);
}
END_TEST

START_TEST(block_eio)
{
    struct keel_fault_plan plan = { .eio_at = 2, .eio_ops = 1u << KEEL_IO_WRITE };
    char *path = make_disk("disk.img");
    struct keel_faulty *ctl = NULL;
    struct keel_blockdev *dev = open_faulty_disk(path, &plan, &ctl);
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char buf[SECT];
    char states[SPW + 1];
    int fd;

    ck_assert_msg(keel_blockdev_pread(dev, buf, SECT, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(write_nth(dev, 1, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(write_nth(dev, 2, &err), -1);
    expect_msg(&err, KEEL_E_IO, "faulty:file://%s: injected I/O error", path);
    ck_assert_int_eq(err.sys_errno, EIO);
    ck_assert_msg(write_nth(dev, 3, &err) == 0, "%s", err.msg);
    /* The failed write was not counted: it never reached the storage. */
    ck_assert_uint_eq(keel_faulty_writes(ctl), 2);
    ck_assert(!keel_faulty_crashed(ctl));

    /* eio_ops 0: the 3rd request of any kind. */
    plan = (struct keel_fault_plan){ .eio_at = 3 };
    keel_faulty_arm(ctl, &plan);
    ck_assert_msg(keel_blockdev_pread(dev, buf, SECT, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_flush(dev, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(write_nth(dev, 4, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_IO);
    ck_assert_msg(keel_blockdev_pread(dev, buf, SECT, 0, &err) == 0, "%s", err.msg);

    /* Only FLUSH: the write passes, the flush fails. */
    plan = (struct keel_fault_plan){ .eio_at = 1, .eio_ops = 1u << KEEL_IO_FLUSH };
    keel_faulty_arm(ctl, &plan);
    ck_assert_msg(write_nth(dev, 5, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_blockdev_flush(dev, &err), -1);
    expect_msg(&err, KEEL_E_IO, "faulty:file://%s: injected I/O error", path);
    ck_assert_msg(keel_blockdev_flush(dev, &err) == 0, "%s", err.msg);
    keel_blockdev_close(dev);

    fd = open(path, O_RDONLY);
    write_states(fd, 1, states);
    ck_assert_str_eq(states, "nnnnnnnn");
    write_states(fd, 2, states);
    ck_assert_str_eq(states, "oooooooo");
    write_states(fd, 3, states);
    ck_assert_str_eq(states, "nnnnnnnn");
    write_states(fd, 4, states);
    ck_assert_str_eq(states, "oooooooo");
    write_states(fd, 5, states);
    ck_assert_str_eq(states, "nnnnnnnn");
    close(fd);
    free(path);
}
END_TEST

START_TEST(block_short_read)
{
    struct keel_fault_plan plan = { .short_read_at = 2 };
    char *path = make_disk("disk.img");
    struct keel_faulty *ctl = NULL;
    struct keel_blockdev *dev = open_faulty_disk(path, &plan, &ctl);
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char buf[8 * SECT];

    ck_assert_msg(keel_blockdev_pread(dev, buf, sizeof(buf), 0, &err) == 0, "%s", err.msg);
    /* Writes are not reads: they do not move the count. */
    ck_assert_msg(write_nth(dev, 1, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_blockdev_pread(dev, buf, sizeof(buf), 0, &err), -1);
    expect_msg(&err, KEEL_E_SHORT, "faulty:file://%s: injected short read: 2048 of 4096 bytes",
               path);
    memset(buf, 0, sizeof(buf));
    ck_assert_msg(keel_blockdev_pread(dev, buf, sizeof(buf), 0, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(buf[7 * SECT], new_byte(1, 7));
    keel_blockdev_close(dev);
    free(path);
}
END_TEST

START_TEST(block_counts_and_rearm)
{
    char *path = make_disk("disk.img");
    struct keel_faulty *ctl = NULL;
    struct keel_blockdev *dev = open_faulty_disk(path, NULL, &ctl);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_fault_plan plan = { .crash_at = 2, .tear = KEEL_TEAR_FULL };
    unsigned char buf[SECT];
    char states[SPW + 1];
    int fd = open(path, O_RDONLY);

    /* Unarmed: only counted. */
    ck_assert_msg(write_nth(dev, 1, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_discard(dev, 60 * SECT, SECT, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_write_zeroes(dev, 61 * SECT, SECT, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_flush(dev, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_pread(dev, buf, SECT, 0, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_faulty_writes(ctl), 3);
    ck_assert(!keel_faulty_crashed(ctl));

    keel_faulty_arm(ctl, &plan);
    ck_assert_uint_eq(keel_faulty_writes(ctl), 0);
    ck_assert_msg(write_nth(dev, 2, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(write_nth(dev, 3, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FAULT);
    ck_assert(keel_faulty_crashed(ctl));
    ck_assert_int_eq(keel_blockdev_pread(dev, buf, SECT, 0, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FAULT);
    ck_assert_uint_eq(keel_faulty_writes(ctl), 2);

    /* Alive again. */
    keel_faulty_arm(ctl, NULL);
    ck_assert(!keel_faulty_crashed(ctl));
    ck_assert_uint_eq(keel_faulty_writes(ctl), 0);
    ck_assert_msg(keel_blockdev_pread(dev, buf, SECT, 2 * SPW * SECT, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(buf[0], new_byte(3, 0)); /* FULL applied the crashing write */
    ck_assert_msg(write_nth(dev, 4, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_faulty_writes(ctl), 1);
    write_states(fd, 4, states);
    ck_assert_str_eq(states, "nnnnnnnn");

    /* Re-arming applies what is still buffered. */
    plan = (struct keel_fault_plan){ .buffer_writes = true };
    keel_faulty_arm(ctl, &plan);
    ck_assert_msg(write_nth(dev, 5, &err) == 0, "%s", err.msg);
    write_states(fd, 5, states);
    ck_assert_str_eq(states, "oooooooo");
    keel_faulty_arm(ctl, NULL);
    write_states(fd, 5, states);
    ck_assert_str_eq(states, "nnnnnnnn");
    keel_blockdev_close(dev);
    close(fd);
    free(path);
}
END_TEST

struct done_probe {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    pthread_t thread;
};

static void probe_done(struct keel_ioreq *req)
{
    struct done_probe *p = req->opaque;

    pthread_mutex_lock(&p->lock);
    p->thread = pthread_self();
    p->done = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* Faults complete on the wrapper's thread, never inside submit. */
START_TEST(block_done_not_inside_submit)
{
    static const struct keel_fault_plan plans[] = {
        { .eio_at = 1 },
        { .crash_at = 1 },
        { .buffer_writes = true },
    };

    for (size_t i = 0; i < sizeof(plans) / sizeof(plans[0]); i++) {
        char *path = make_disk("disk.img");
        struct keel_blockdev *dev = open_faulty_disk(path, &plans[i], NULL);
        struct keel_error err = KEEL_ERROR_INIT;
        unsigned char buf[SECT] = { 0 };
        struct done_probe p = { .lock = PTHREAD_MUTEX_INITIALIZER,
                                .cond = PTHREAD_COND_INITIALIZER };
        struct keel_ioreq req = { .op = KEEL_IO_WRITE, .len = SECT, .buf = buf,
                                  .done = probe_done, .opaque = &p };

        ck_assert_msg(keel_blockdev_submit(dev, &req, &err) == 0, "%s", err.msg);
        /* A done() run inside submit would have run on this thread. */
        pthread_mutex_lock(&p.lock);
        while (!p.done)
            pthread_cond_wait(&p.cond, &p.lock);
        pthread_mutex_unlock(&p.lock);
        ck_assert(!pthread_equal(p.thread, pthread_self()));
        ck_assert_int_eq(req.result, i == 2 ? 0 : -1);
        keel_blockdev_close(dev);
        unlink(path);
        free(path);
    }
}
END_TEST

START_TEST(wrap_refuses_bad_plan)
{
    char *path = make_disk("disk.img");
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *inner = NULL, *dev = NULL;
    struct keel_fs *finner = NULL, *fs = NULL;
    struct keel_fault_plan plan = { .tear = (enum keel_tear)9 };
    char url[512];

    snprintf(url, sizeof(url), "file://%s", path);
    ck_assert_msg(keel_blockdev_open(url, NULL, &inner, &err) == 0, "%s", err.msg);
    /* inner is closed on failure too: the leak checker of the sanitizer build sees it. */
    ck_assert_int_eq(keel_faulty_blockdev(inner, &plan, &dev, NULL, &err), -1);
    expect_msg(&err, KEEL_E_INVAL, "faulty:file://%s: unknown tear mode 9", path);
    ck_assert_ptr_null(dev);
    snprintf(url, sizeof(url), "file://%s", tmpdir);
    ck_assert_msg(keel_fs_open(url, NULL, &finner, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_faulty_fs(finner, &plan, &fs, NULL, &err), -1);
    expect_msg(&err, KEEL_E_INVAL, "faulty:file://%s: unknown tear mode 9", tmpdir);
    ck_assert_ptr_null(fs);
    free(path);
}
END_TEST

/* ---- file system ---- */

static char *make_root(const char *name)
{
    char *root = keel_strdup_printf("%s/%s", tmpdir, name);

    ck_assert_int_eq(mkdir(root, 0755), 0);
    return root;
}

static struct keel_fs *open_faulty_fs(const char *root, const struct keel_fault_plan *plan,
                                      struct keel_faulty **ctl)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_fs *inner = NULL, *fs = NULL;
    char url[512];

    snprintf(url, sizeof(url), "file://%s", root);
    ck_assert_msg(keel_fs_open(url, NULL, &inner, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_faulty_fs(inner, plan, &fs, ctl, &err) == 0, "%s", err.msg);
    return fs;
}

/* stat(2) of root/rel: the size, or -1 when it does not exist. */
static long long real_size(const char *root, const char *rel)
{
    char path[1024];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    if (stat(path, &st) != 0) {
        ck_assert_int_eq(errno, ENOENT);
        return -1;
    }
    return (long long)st.st_size;
}

static unsigned char piece_byte(size_t i)
{
    return (unsigned char)('a' + i / 512);
}

/*
 * mkdir d; create d/f; write 1024 bytes to it; close; rename d/f d/g.
 * Returns the number of the step that failed (0: none), with err.
 */
static unsigned fs_sequence(struct keel_fs *fs, struct keel_error *err)
{
    struct keel_file *f = NULL;
    unsigned char data[1024];
    int rc;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = piece_byte(i);
    if (keel_fs_mkdir(fs, "d", 0755, err) != 0)
        return 1;
    if (keel_file_open(fs, "d/f", KEEL_O_RDWR | KEEL_O_CREAT, 0644, &f, err) != 0)
        return 2;
    rc = keel_file_pwrite(f, data, sizeof(data), 0, err);
    /* CLOSE always closes, even after a crash. */
    ck_assert_int_eq(keel_file_close(f, NULL), 0);
    if (rc != 0)
        return 3;
    if (keel_fs_rename(fs, "d/f", "d/g", err) != 0)
        return 4;
    return 0;
}

/* Which pieces of the 1024 bytes the file at root/rel holds: "11", "10", "01", "00". */
static void file_pieces(const char *root, const char *rel, char out[3])
{
    char path[1024];
    unsigned char buf[1024];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    n = pread(fd, buf, sizeof(buf), 0);
    close(fd);
    ck_assert_int_ge(n, 0);
    for (size_t p = 0; p < 2; p++) {
        bool all_data = (size_t)n >= (p + 1) * 512, all_zero = true;

        for (size_t i = p * 512; i < (p + 1) * 512 && i < (size_t)n; i++) {
            all_data = all_data && buf[i] == piece_byte(i);
            all_zero = all_zero && buf[i] == 0;
        }
        ck_assert_msg(all_data || all_zero, "piece %zu is neither the data nor a hole", p);
        out[p] = all_data ? '1' : '0';
    }
    out[2] = '\0';
}

/* The directory after the first `a` steps of fs_sequence, with write 3 torn to `pieces`. */
static bool state_is(const char *root, unsigned a, const char *pieces)
{
    char got[3];
    long long d = real_size(root, "d"), f = real_size(root, "d/f"), g = real_size(root, "d/g");

    if ((d >= 0) != (a >= 1) || (f >= 0) != (a >= 2 && a < 4) || (g >= 0) != (a >= 4))
        return false;
    if (a < 2)
        return true;
    file_pieces(root, a >= 4 ? "d/g" : "d/f", got);
    return strcmp(got, a >= 3 ? "11" : pieces) == 0;
}

START_TEST(fs_crash_each_step_each_tear)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_faulty *ctl = NULL;
    char *root = make_root("count");
    struct keel_fs *fs = open_faulty_fs(root, NULL, &ctl);

    /* The unarmed run counts the crash points: mkdir, create, write, rename. */
    ck_assert_msg(fs_sequence(fs, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_faulty_writes(ctl), 4);
    keel_fs_close(fs);
    free(root);

    for (size_t t = 0; t < sizeof(all_tears) / sizeof(all_tears[0]); t++) {
        enum keel_tear tear = all_tears[t];

        for (unsigned k = 1; k <= 5; k++) {
            struct keel_fault_plan plan = { .crash_at = k, .tear = tear, .seed = 5 };
            char name[64], pieces[3];
            unsigned failed;
            bool before, after;

            snprintf(name, sizeof(name), "run-%zu-%u", t, k);
            root = make_root(name);
            fs = open_faulty_fs(root, &plan, &ctl);
            failed = fs_sequence(fs, &err);
            if (k <= 4) {
                ck_assert_uint_eq(failed, k);
                expect_msg(&err, KEEL_E_FAULT, "faulty:file://%s: injected crash at write %u",
                           root, k);
                ck_assert(keel_faulty_crashed(ctl));
            } else {
                ck_assert_msg(failed == 0, "%s", err.msg);
                ck_assert(!keel_faulty_crashed(ctl));
            }
            keel_fs_close(fs);
            /* Steps 1..k-1 happened; step k by the tear; nothing after. */
            if (k == 5) {
                ck_assert(state_is(root, 4, NULL));
            } else if (k == 3) {
                file_pieces(root, "d/f", pieces);
                ck_assert_int_eq(real_size(root, "d/g"), -1);
                if (tear == KEEL_TEAR_DROP)
                    ck_assert_str_eq(pieces, "00");
                else if (tear == KEEL_TEAR_FULL)
                    ck_assert_str_eq(pieces, "11");
                else if (tear == KEEL_TEAR_PREFIX)
                    ck_assert_str_eq(pieces, "10");
                /* RANDOM: file_pieces() checked each piece is data or hole. */
                ck_assert_int_eq(real_size(root, "d/f"),
                                 pieces[1] == '1' ? 1024 : pieces[0] == '1' ? 512 : 0);
            } else {
                before = state_is(root, k - 1, "00");
                after = state_is(root, k, "00");
                if (tear == KEEL_TEAR_FULL)
                    ck_assert_msg(after, "FULL k=%u", k);
                else if (tear == KEEL_TEAR_RANDOM)
                    ck_assert_msg(before || after, "RANDOM k=%u", k);
                else
                    ck_assert_msg(before, "tear %d k=%u", (int)tear, k);
            }
            free(root);
        }
    }
}
END_TEST

/* Data not fsynced is lost in a crash, though the rename that followed it is not. */
static void fs_buffered_run(enum keel_tear tear)
{
    struct keel_fault_plan plan = { .crash_at = 4, .tear = tear, .buffer_writes = true };
    char *root = make_root(tear == KEEL_TEAR_DROP ? "drop" : "full");
    struct keel_faulty *ctl = NULL;
    struct keel_fs *fs = open_faulty_fs(root, &plan, &ctl);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_file *f = NULL;
    struct keel_stat st;
    char buf[32] = "";
    size_t n = 0;

    ck_assert_msg(keel_file_open(fs, "f.new", KEEL_O_RDWR | KEEL_O_CREAT, 0644, &f, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(real_size(root, "f.new"), 0); /* namespace calls are not buffered */
    ck_assert_msg(keel_file_pwrite(f, "hello world", 11, 0, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(real_size(root, "f.new"), 0);
    /* Reads and sizes through the wrapper see the buffered write. */
    ck_assert_msg(keel_file_pread(f, buf, sizeof(buf), 0, &n, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(n, 11);
    ck_assert(memcmp(buf, "hello world", 11) == 0);
    ck_assert_msg(keel_file_pread(f, buf, 5, 6, NULL, &err) == 0, "%s", err.msg);
    ck_assert(memcmp(buf, "world", 5) == 0);
    ck_assert_msg(keel_file_fstat(f, &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.size, 11);
    ck_assert_msg(keel_fs_stat(fs, "f.new", &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.size, 11);
    ck_assert_int_eq(keel_file_close(f, &err), 0);
    ck_assert_msg(keel_fs_rename(fs, "f.new", "f", &err) == 0, "%s", err.msg);
    ck_assert_int_eq(real_size(root, "f"), 0);
    ck_assert_int_eq(keel_fs_mkdir(fs, "x", 0755, &err), -1);
    expect_msg(&err, KEEL_E_FAULT, "faulty:file://%s: injected crash at write 4", root);
    ck_assert_int_eq(keel_fs_stat(fs, "f", &st, &err), -1);
    expect_msg(&err, KEEL_E_FAULT,
               "faulty:file://%s: dead after the injected crash at write 4", root);
    keel_fs_close(fs);
    if (tear == KEEL_TEAR_DROP) {
        ck_assert_int_eq(real_size(root, "f"), 0);
        ck_assert_int_eq(real_size(root, "x"), -1);
    } else {
        ck_assert_int_eq(real_size(root, "f"), 11);
        ck_assert_int_ge(real_size(root, "x"), 0);
    }
    ck_assert_int_eq(real_size(root, "f.new"), -1);
    free(root);
}

START_TEST(fs_buffered_crash)
{
    fs_buffered_run(KEEL_TEAR_DROP);
    fs_buffered_run(KEEL_TEAR_FULL);
}
END_TEST

/* fsync, KEEL_O_SYNC, TRUNCATE and a clean close, with writes buffered. */
START_TEST(fs_buffered_flush_sync_truncate)
{
    struct keel_fault_plan plan = { .buffer_writes = true };
    char *root = make_root("buf");
    struct keel_faulty *ctl = NULL;
    struct keel_fs *fs = open_faulty_fs(root, &plan, &ctl);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_file *f = NULL, *s = NULL;
    struct keel_stat st;
    char buf[16];
    size_t n = 0;

    ck_assert_msg(keel_file_open(fs, "a", KEEL_O_RDWR | KEEL_O_CREAT, 0644, &f, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_file_pwrite(f, "0123456789", 10, 0, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(real_size(root, "a"), 0);
    ck_assert_msg(keel_file_fsync(f, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(real_size(root, "a"), 10);
    /* A buffered truncate, then a write past the new end: a hole between. */
    ck_assert_msg(keel_file_truncate(f, 4, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_pwrite(f, "XY", 2, 6, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(real_size(root, "a"), 10);
    ck_assert_msg(keel_file_pread(f, buf, sizeof(buf), 0, &n, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(n, 8);
    ck_assert(memcmp(buf, "0123\0\0XY", 8) == 0);
    ck_assert_msg(keel_file_fstat(f, &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.size, 8);
    /* KEEL_O_SYNC writes are durable when they return: never buffered. */
    ck_assert_msg(keel_file_open(fs, "s", KEEL_O_RDWR | KEEL_O_CREAT | KEEL_O_SYNC, 0644, &s,
                                 &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_pwrite(s, "sync", 4, 0, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(real_size(root, "s"), 4);
    ck_assert_int_eq(keel_file_close(s, &err), 0);
    ck_assert_uint_eq(keel_faulty_writes(ctl), 6);
    /* Closing the file keeps its writes pending; closing the file system applies them. */
    ck_assert_int_eq(keel_file_close(f, &err), 0);
    ck_assert_int_eq(real_size(root, "a"), 10);
    keel_fs_close(fs);
    ck_assert_int_eq(real_size(root, "a"), 8);
    free(root);
}
END_TEST

START_TEST(fs_eio_and_short_read)
{
    struct keel_fault_plan plan = { .eio_at = 1 };
    char *root = make_root("eio");
    struct keel_faulty *ctl = NULL;
    struct keel_fs *fs = open_faulty_fs(root, &plan, &ctl);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_file *f = NULL;
    unsigned char data[1000], buf[1000];
    size_t n = 0;

    /* eio_ops 0: namespace calls too. */
    ck_assert_int_eq(keel_fs_mkdir(fs, "d", 0755, &err), -1);
    expect_msg(&err, KEEL_E_IO, "faulty:file://%s: injected I/O error", root);
    ck_assert_int_eq(err.sys_errno, EIO);
    ck_assert_int_eq(real_size(root, "d"), -1);
    ck_assert_msg(keel_fs_mkdir(fs, "d", 0755, &err) == 0, "%s", err.msg);
    ck_assert_int_ge(real_size(root, "d"), 0);

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 13);
    ck_assert_msg(keel_file_open(fs, "d/f", KEEL_O_RDWR | KEEL_O_CREAT, 0644, &f, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(keel_file_pwrite(f, data, sizeof(data), 0, &err) == 0, "%s", err.msg);
    plan = (struct keel_fault_plan){ .short_read_at = 1 };
    keel_faulty_arm(ctl, &plan);
    memset(buf, 0, sizeof(buf));
    ck_assert_msg(keel_file_pread(f, buf, sizeof(buf), 0, &n, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(n, 500);
    ck_assert(memcmp(buf, data, 500) == 0);
    ck_assert_uint_eq(buf[500], 0);
    ck_assert_msg(keel_file_pread(f, buf, sizeof(buf), 0, &n, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(n, 1000);
    /* Through the synchronous form, a short read is an error of fs.c. */
    plan = (struct keel_fault_plan){ .short_read_at = 1 };
    keel_faulty_arm(ctl, &plan);
    ck_assert_int_eq(keel_file_pread(f, buf, sizeof(buf), 0, NULL, &err), -1);
    expect_msg(&err, KEEL_E_SHORT,
               "faulty:file://%s: read 'd/f': 500 of 1000 bytes at offset 0: file too short",
               root);

    /* Only reads fail: the write passes. */
    plan = (struct keel_fault_plan){ .eio_at = 1, .eio_ops = 1u << KEEL_IO_READ };
    keel_faulty_arm(ctl, &plan);
    ck_assert_msg(keel_file_pwrite(f, "z", 1, 0, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_file_pread(f, buf, 10, 0, &n, &err), -1);
    expect_msg(&err, KEEL_E_IO, "faulty:file://%s: injected I/O error", root);
    ck_assert_uint_eq(keel_faulty_writes(ctl), 1);
    ck_assert_int_eq(keel_file_close(f, &err), 0);
    keel_fs_close(fs);
    free(root);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("faulty");
    TCase *tc = tcase_create("faulty");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, block_crash_each_write_each_tear);
    tcase_add_test(tc, block_crash_zeroes_and_discard);
    tcase_add_test(tc, block_buffered_crash);
    tcase_add_test(tc, block_buffered_overlay_and_close);
    tcase_add_test(tc, block_eio);
    tcase_add_test(tc, block_short_read);
    tcase_add_test(tc, block_counts_and_rearm);
    tcase_add_test(tc, block_done_not_inside_submit);
    tcase_add_test(tc, wrap_refuses_bad_plan);
    tcase_add_test(tc, fs_crash_each_step_each_tear);
    tcase_add_test(tc, fs_buffered_crash);
    tcase_add_test(tc, fs_buffered_flush_sync_truncate);
    tcase_add_test(tc, fs_eio_and_short_read);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
