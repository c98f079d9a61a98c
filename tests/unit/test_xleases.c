/*
 * Unit tests of metadata/xleases: VDSM's external lease index, formatted,
 * parsed, leases added and removed (ovirt-storage-format.md 7.3), on local
 * files through file:// URLs; crashes at every write of format, add and
 * remove (io/faulty) leave an index that is either the old or the new one.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/faulty.h"
#include "metadata/sanlock_fmt.h"
#include "metadata/xleases.h"

#define LS "3f1c2c5e-8a1b-4c2d-9e3f-0123456789ab"
#define MIB (UINT64_C(1) << 20)
#define LEASE_A "0b9a6f43-1e8c-4c1e-9d0e-4a2b5f6c7d8e"
#define LEASE_B "7c2d1e0f-3a4b-4c5d-8e6f-9a0b1c2d3e4f"

struct tmpfile {
    char path[64];
    char *url;
};

/* A file of size bytes, all `fill`. */
static void tmpfile_make(struct tmpfile *t, uint64_t size, int fill)
{
    unsigned char *buf = malloc(MIB);
    int fd;

    keel_strlcpy(t->path, "/tmp/keel-xleases-XXXXXX", sizeof(t->path));
    fd = mkstemp(t->path);
    ck_assert(fd >= 0 && buf != NULL);
    memset(buf, fill, MIB);
    for (uint64_t off = 0; off < size; off += MIB)
        ck_assert_int_eq(pwrite(fd, buf, MIB, (off_t)off), (ssize_t)MIB);
    close(fd);
    free(buf);
    t->url = keel_strdup_printf("file://%s", t->path);
}

static struct keel_blockdev *tmpfile_open(const struct tmpfile *t)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;

    ck_assert_msg(keel_blockdev_open(t->url, NULL, &dev, &err) == 0, "%s", err.msg);
    return dev;
}

static void tmpfile_remove(struct tmpfile *t)
{
    unlink(t->path);
    free(t->url);
}

static void peek(const struct tmpfile *t, uint64_t off, void *buf, size_t len)
{
    int fd = open(t->path, O_RDONLY);

    ck_assert(fd >= 0);
    ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void poke(const struct tmpfile *t, uint64_t off, const void *buf, size_t len)
{
    int fd = open(t->path, O_WRONLY);

    ck_assert(fd >= 0);
    ck_assert_int_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static struct keel_xleases_index *read_index(struct keel_blockdev *dev, uint64_t off)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_xleases_index *idx = calloc(1, sizeof(*idx));

    ck_assert(idx != NULL);
    ck_assert_msg(keel_xleases_read(dev, off, MIB, idx, &err) == 0, "%s", err.msg);
    return idx;
}

START_TEST(encodings)
{
    unsigned char m[512], r[64], want[64] = { 0 };
    struct keel_xleases_record rec = { .id = "vm-lease-1", .offset = 4194304 };
    struct keel_xleases_record empty = { .id = "" };

    keel_xleases_meta_encode(LS, 1700000000, false, m);
    ck_assert(memcmp(m, "\x12\x15\x20\x16\0" "0001\0" LS, 10 + 36) == 0);
    ck_assert(memcmp(m + 58, "\0" "1700000000\0-", 13) == 0);
    ck_assert_int_eq(m[511], '\n');
    for (int i = 71; i < 511; i++)
        ck_assert_int_eq(m[i], 0);
    keel_xleases_meta_encode(LS, 42, true, m);
    ck_assert(memcmp(m + 59, "0000000042\0u", 12) == 0);
    keel_xleases_record_encode(&rec, r);
    ck_assert(memcmp(r, "vm-lease-1", 10) == 0);
    ck_assert(memcmp(r + 48, "\0" "00004194304\0--\n", 16) == 0);
    /* VDSM's EMPTY_RECORD */
    memcpy(want + 49, "00000000000\0--\n", 15);
    keel_xleases_record_encode(&empty, r);
    ck_assert(memcmp(r, want, 64) == 0);
    ck_assert_uint_eq(KEEL_XLEASES_MAX_RECORDS, 3960);
    ck_assert_uint_eq(keel_xleases_lease_offset(MIB, 0), 3 * MIB);
    ck_assert_uint_eq(keel_xleases_lease_offset(8 * MIB, 2), 40 * MIB);
}
END_TEST

START_TEST(format_and_parse)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct tmpfile t;
    struct keel_blockdev *dev;
    struct keel_xleases_index *idx;
    unsigned char *buf = malloc(KEEL_XLEASES_INDEX_SIZE + 512), *want = malloc(512);
    struct keel_xleases_record empty = { .id = "" };

    /* Everything 0xaa: what format writes shows, what it leaves stays. */
    tmpfile_make(&t, 2 * MIB, 0xaa);
    dev = tmpfile_open(&t);
    ck_assert_msg(keel_xleases_format(dev, 0, LS, MIB, 1700000000, &err) == 0, "%s", err.msg);
    idx = read_index(dev, 0);
    ck_assert_str_eq(idx->lockspace, LS);
    ck_assert_uint_eq(idx->mtime, 1700000000);
    ck_assert(!idx->updating);
    ck_assert_uint_eq(idx->nused, 0);
    ck_assert_int_eq(keel_xleases_find(idx, "x"), -1);
    keel_blockdev_close(dev);
    peek(&t, MIB - 512, buf, KEEL_XLEASES_INDEX_SIZE + 512);
    for (size_t i = 0; i < 512; i++)
        ck_assert_uint_eq(buf[i], 0xaa);
    keel_xleases_meta_encode(LS, 1700000000, false, want);
    ck_assert(memcmp(buf + 512, want, 512) == 0);
    keel_xleases_record_encode(&empty, want);
    for (size_t r = 0; r < KEEL_XLEASES_MAX_RECORDS; r++)
        ck_assert(memcmp(buf + 1024 + r * 64, want, 64) == 0);
    peek(&t, MIB + KEEL_XLEASES_INDEX_SIZE, buf, 512);
    for (size_t i = 0; i < 512; i++)
        ck_assert_uint_eq(buf[i], 0xaa);

    /* Damage is named. */
    peek(&t, MIB, buf, KEEL_XLEASES_INDEX_SIZE);
    buf[512 + 64 * 7 + 50] = 'x';
    idx->mtime = 12345;
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), -1);
    ck_assert_uint_eq(idx->mtime, 12345);   /* written only on success */
    ck_assert_int_eq(err.code, KEEL_E_FORMAT);
    ck_assert_str_eq(err.msg, "xleases index record 7: bad offset \"0x000000000\"");
    buf[512 + 64 * 7 + 50] = '0';
    buf[512 + 64 * 9 + 61] = 'z';
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), -1);
    ck_assert_str_eq(err.msg, "xleases index record 9: bad updating flag 0x7a");
    buf[512 + 64 * 9 + 61] = '-';
    buf[512 + 64 * 3 + 63] = 0;
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), -1);
    ck_assert_str_eq(err.msg, "xleases index record 3: no newline");
    buf[512 + 64 * 3 + 63] = '\n';
    buf[512 + 64 * 3 + 40] = 'q';   /* garbage after the (empty) id's NUL */
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), -1);
    ck_assert_str_eq(err.msg, "xleases index record 3: bad lease id");
    buf[512 + 64 * 3 + 40] = 0;
    buf[12] = 0xc3;
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), -1);
    ck_assert_str_eq(err.msg, "xleases index metadata: bad lockspace \"3f?c2c5e-8a1b-4c2d-9e3f-"
                              "0123456789ab????????????\"");
    buf[12] = '1';
    buf[200] = 1;
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), -1);
    ck_assert_str_eq(err.msg, "xleases index metadata: padding byte 200 is 0x01");
    buf[200] = 0;
    buf[60] = ' ';
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), -1);
    ck_assert_str_eq(err.msg, "xleases index metadata: bad mtime \"1 00000000\"");
    buf[60] = '7';
    memcpy(buf + 5, "0002", 4);
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_VERSION);
    ck_assert_str_eq(err.msg, "xleases index: unsupported version \"0002\"");
    memcpy(buf + 5, "0001", 4);
    buf[9] = '-';
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), -1);
    ck_assert_str_eq(err.msg, "xleases index metadata: byte 9 is 0x2d, not a NUL separator");
    buf[9] = 0;
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), 0);
    buf[0] = 0;
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    ck_assert_str_eq(err.msg, "xleases index: bad magic 0x00152016");
    ck_assert_int_eq(keel_xleases_parse(buf, 100, idx, &err), -1);
    ck_assert_str_eq(err.msg, "xleases index: 100 bytes, want 253952");
    tmpfile_remove(&t);
    free(idx);
    free(buf);
    free(want);
}
END_TEST

/* The area at `base` of a file: slots 0..2, then leases A and B. */
START_TEST(add_lookup_remove)
{
    const uint64_t base = MIB, size = 5 * MIB;
    struct keel_error err = KEEL_ERROR_INIT;
    struct tmpfile t;
    struct keel_blockdev *dev;
    struct keel_xleases_index *idx;
    struct keel_sanlock_leader l;
    struct keel_sanlock_resource res = { 0 };
    uint64_t off = 0;
    unsigned char rec[64];

    tmpfile_make(&t, base + size + MIB, 0);
    dev = tmpfile_open(&t);
    ck_assert_int_eq(keel_xleases_format(dev, base, LS, MIB, 1700000000, &err), 0);
    ck_assert_msg(keel_xleases_add(dev, base, size, 512, MIB, LEASE_A, &off, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(off, 3 * MIB);
    ck_assert_msg(keel_xleases_add(dev, base, size, 512, MIB, LEASE_B, &off, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(off, 4 * MIB);
    ck_assert_int_eq(keel_xleases_add(dev, base, size, 512, MIB, LEASE_A, &off, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_EXIST);
    ck_assert_str_eq(err.msg, "adding lease " LEASE_A ": xleases: lease " LEASE_A " exists "
                              "(record 0)");
    ck_assert_int_eq(keel_xleases_add(dev, base, size, 512, MIB, "c", &off, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOSPC);
    ck_assert_str_eq(err.msg, "adding lease c: xleases: lease c needs slot 5: the area must be "
                              "6291456 bytes, it is 5242880");

    /* The records, on disk as VDSM writes them, and the resources. */
    peek(&t, base + MIB + 512 + 64, rec, 64);
    ck_assert(memcmp(rec, LEASE_B "\0\0\0\0\0\0\0\0\0\0\0\0\0" "00004194304\0--\n", 64) == 0);
    idx = read_index(dev, base);
    ck_assert_uint_eq(idx->nused, 2);
    ck_assert_str_eq(idx->records[0].id, LEASE_A);
    ck_assert_uint_eq(idx->records[0].offset, 3 * MIB);
    ck_assert_int_eq(keel_xleases_find(idx, LEASE_B), 1);
    free(idx);
    ck_assert_int_eq(keel_xleases_lookup(dev, base, MIB, LEASE_B, &off, &err), 0);
    ck_assert_uint_eq(off, 4 * MIB);
    ck_assert_msg(keel_sanlock_read_resource_area(dev, base + 3 * MIB, LS, LEASE_A, 512, MIB,
                                                  &res, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(res.leader.owner_id, 0);
    keel_sanlock_resource_release(&res);

    /* Remove: the record is free, the resource has empty names. */
    ck_assert_msg(keel_xleases_remove(dev, base, 512, MIB, LEASE_A, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_xleases_lookup(dev, base, MIB, LEASE_A, &off, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOENT);
    ck_assert_str_eq(err.msg, "xleases: no lease " LEASE_A " in lockspace " LS);
    ck_assert_int_eq(keel_xleases_remove(dev, base, 512, MIB, LEASE_A, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOENT);
    ck_assert_int_eq(keel_sanlock_read_resource(dev, base + 3 * MIB, NULL, NULL, 0, &l, &err), 0);
    ck_assert_str_eq(l.space_name, "");
    ck_assert_str_eq(l.resource_name, "");
    peek(&t, base + MIB + 512, rec, 64);
    ck_assert(memcmp(rec + 48, "\0" "00000000000\0--\n", 16) == 0);
    /* The free record is taken again, before the end. */
    ck_assert_int_eq(keel_xleases_add(dev, base, size, 512, MIB, "c", &off, &err), 0);
    ck_assert_uint_eq(off, 3 * MIB);

    /* Bad ids. */
    ck_assert_int_eq(keel_xleases_add(dev, base, size, 512, MIB, "", &off, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_int_eq(keel_xleases_add(dev, base, size, 512, MIB, LS "-0123456789ab", &off, &err),
                     -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);

    /* A record an older VDSM left updating is no lease; add takes it again. */
    poke(&t, base + MIB + 512 + 64 + 61, "u", 1);
    ck_assert_int_eq(keel_xleases_lookup(dev, base, MIB, LEASE_B, &off, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOENT);
    ck_assert_msg(keel_xleases_add(dev, base, size, 512, MIB, LEASE_B, &off, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(off, 4 * MIB);
    ck_assert_int_eq(keel_xleases_lookup(dev, base, MIB, LEASE_B, &off, &err), 0);

    /* An index being updated refuses everything. */
    poke(&t, base + MIB + 70, "u", 1);
    idx = read_index(dev, base);
    ck_assert(idx->updating);
    free(idx);
    ck_assert_int_eq(keel_xleases_add(dev, base, size, 512, MIB, "d", &off, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_BUSY);
    ck_assert_str_eq(err.msg, "adding lease d: xleases index of " LS " is being updated or an "
                              "update was interrupted: format or rebuild it");
    ck_assert_int_eq(keel_xleases_remove(dev, base, 512, MIB, LEASE_B, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_BUSY);
    ck_assert_int_eq(keel_xleases_lookup(dev, base, MIB, LEASE_B, &off, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_BUSY);
    keel_blockdev_close(dev);
    tmpfile_remove(&t);
}
END_TEST

START_TEST(sectors_4k)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct tmpfile t;
    struct keel_blockdev *dev;
    struct keel_sanlock_resource res = { 0 };
    uint64_t off;

    tmpfile_make(&t, 8 * MIB, 0);
    dev = tmpfile_open(&t);
    ck_assert_int_eq(keel_xleases_format(dev, 0, LS, 2 * MIB, 1, &err), 0);
    ck_assert_msg(keel_xleases_add(dev, 0, 8 * MIB, 4096, 2 * MIB, LEASE_A, &off, &err) == 0,
                  "%s", err.msg);
    ck_assert_uint_eq(off, 6 * MIB);
    ck_assert_msg(keel_sanlock_read_resource_area(dev, off, LS, LEASE_A, 0, 0, &res, &err) == 0,
                  "%s", err.msg);
    ck_assert_uint_eq(res.sector_size, 4096);
    ck_assert_uint_eq(res.align, 2 * MIB);
    ck_assert_uint_eq(res.leader.num_hosts, 500);
    keel_sanlock_resource_release(&res);
    ck_assert_int_eq(keel_xleases_add(dev, 0, 8 * MIB, 4096, 3 * MIB, LEASE_B, &off, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_int_eq(keel_xleases_add(dev, 0, 8 * MIB, 512, 2 * MIB, LEASE_B, &off, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);   /* sanlock has no 512/2M */
    keel_blockdev_close(dev);
    tmpfile_remove(&t);
}
END_TEST

/* What a crashed operation may leave: one of the states of xleases.h. */
enum step { FORMAT, ADD, REMOVE };

static void run_step(struct keel_blockdev *dev, enum step s, struct keel_error *err, int *rc)
{
    switch (s) {
    case FORMAT: *rc = keel_xleases_format(dev, 0, LS, MIB, 1700000000, err); break;
    case ADD: *rc = keel_xleases_add(dev, 0, 4 * MIB, 512, MIB, LEASE_A, NULL, err); break;
    case REMOVE: *rc = keel_xleases_remove(dev, 0, 512, MIB, LEASE_A, err); break;
    }
}

static void prepare(const struct tmpfile *t, enum step s)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = tmpfile_open(t);
    unsigned char *zero = calloc(1, 4 * MIB);

    ck_assert_int_eq(keel_blockdev_pwrite(dev, zero, 4 * MIB, 0, &err), 0);
    if (s != FORMAT)
        ck_assert_int_eq(keel_xleases_format(dev, 0, LS, MIB, 1700000000, &err), 0);
    if (s == REMOVE)
        ck_assert_int_eq(keel_xleases_add(dev, 0, 4 * MIB, 512, MIB, LEASE_A, NULL, &err), 0);
    keel_blockdev_close(dev);
    free(zero);
}

/* After a crash in step s: the old state or the new one, never a third. */
static void check_after(const struct tmpfile *t, enum step s, bool done)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = tmpfile_open(t);
    struct keel_xleases_index *idx = calloc(1, sizeof(*idx));
    struct keel_sanlock_leader l;
    uint64_t off;
    int rc = keel_xleases_read(dev, 0, MIB, idx, &err);

    if (s == FORMAT) {
        /* Never a "ready" index unless it is whole. */
        ck_assert(rc == 0 || err.code == KEEL_E_MAGIC || err.code == KEEL_E_FORMAT);
        if (rc == 0 && !idx->updating)
            ck_assert_uint_eq(idx->nused, 0);
        if (done)
            ck_assert(rc == 0 && !idx->updating);
    } else {
        ck_assert_msg(rc == 0 && !idx->updating, "%s", err.msg);
        rc = keel_xleases_lookup(dev, 0, MIB, LEASE_A, &off, &err);
        if (rc == 0) {
            /* A record names only a lease whose resource is there. */
            ck_assert_uint_eq(off, 3 * MIB);
            ck_assert_msg(keel_sanlock_read_resource(dev, off, LS, LEASE_A, 512, &l, &err) == 0,
                          "%s", err.msg);
            ck_assert(!done || s == ADD);
        } else {
            ck_assert_int_eq(err.code, KEEL_E_NOENT);
            ck_assert(!done || s == REMOVE);
        }
    }
    keel_blockdev_close(dev);
    free(idx);
}

START_TEST(crash_points)
{
    static const enum keel_tear tears[] = { KEEL_TEAR_DROP, KEEL_TEAR_FULL, KEEL_TEAR_PREFIX,
                                            KEEL_TEAR_RANDOM };
    enum step s = (enum step)_i;
    struct keel_error err = KEEL_ERROR_INIT;
    struct tmpfile t;
    unsigned n;

    tmpfile_make(&t, 4 * MIB, 0);
    /* Count the writes of the step. */
    {
        struct keel_blockdev *dev = NULL;
        struct keel_faulty *ctl = NULL;
        int rc;

        prepare(&t, s);
        ck_assert_int_eq(keel_faulty_blockdev(tmpfile_open(&t), NULL, &dev, &ctl, &err), 0);
        run_step(dev, s, &err, &rc);
        ck_assert_msg(rc == 0, "%s", err.msg);
        n = keel_faulty_writes(ctl);
        keel_blockdev_close(dev);
        ck_assert_uint_ge(n, 2);
        check_after(&t, s, true);
    }
    for (unsigned k = 1; k <= n; k++)
        for (size_t m = 0; m < sizeof(tears) / sizeof(tears[0]); m++) {
            struct keel_fault_plan plan = { .crash_at = k, .tear = tears[m],
                                            .buffer_writes = true, .seed = k * 7 + m };
            struct keel_blockdev *dev = NULL;
            int rc;

            prepare(&t, s);
            ck_assert_int_eq(keel_faulty_blockdev(tmpfile_open(&t), &plan, &dev, NULL, &err), 0);
            run_step(dev, s, &err, &rc);
            /* remove succeeds once the record is free: a crash after it is not
             * its failure */
            ck_assert(rc == -1 || (s == REMOVE && k > 1));
            keel_blockdev_close(dev);
            check_after(&t, s, false);
        }
    tmpfile_remove(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("xleases");
    TCase *tc = tcase_create("xleases");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, encodings);
    tcase_add_test(tc, format_and_parse);
    tcase_add_test(tc, add_lookup_remove);
    tcase_add_test(tc, sectors_4k);
    tcase_add_loop_test(tc, crash_points, FORMAT, REMOVE + 1);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
