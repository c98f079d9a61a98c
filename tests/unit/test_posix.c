/*
 * Unit tests of the local backends of io/: file:// block devices
 * (posixblk.c, blockdev.c) and file:// file systems (posixfs.c, fs.c).
 * They run on temporary files and directories of this machine: what is
 * tested is Keel's code path (argument checks, splitting, the engine,
 * the worker threads), judged by reading the files back with plain pread.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "io/iosync.h"

static char tmpdir[256];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/keel-test-posix.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static char *make_file(const char *name, off_t size)
{
    char *path = keel_strdup_printf("%s/%s", tmpdir, name);
    int fd = open(path, O_CREAT | O_RDWR, 0644);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, size), 0);
    close(fd);
    return path;
}

static struct keel_blockdev *open_disk(const char *path)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    char url[512];

    snprintf(url, sizeof(url), "file://%s", path);
    ck_assert_msg(keel_blockdev_open(url, NULL, &dev, &err) == 0, "%s", err.msg);
    return dev;
}

START_TEST(block_roundtrip_and_split)
{
    char *path = make_file("disk.img", 64 << 20);
    struct keel_blockdev *dev = open_disk(path);
    struct keel_error err = KEEL_ERROR_INIT;
    size_t big = 9 << 20; /* larger than one request: split in three */
    unsigned char *w = malloc(big), *r = malloc(big);
    int fd;

    ck_assert_uint_eq(keel_blockdev_size(dev), 64 << 20);
    ck_assert_uint_eq(keel_blockdev_block_size(dev), 512);
    for (size_t i = 0; i < big; i++)
        w[i] = (unsigned char)(i * 7 + i / 4096);
    ck_assert_msg(keel_blockdev_pwrite(dev, w, big, 1 << 20, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_flush(dev, &err) == 0, "%s", err.msg);
    memset(r, 0, big);
    ck_assert_msg(keel_blockdev_pread(dev, r, big, 1 << 20, &err) == 0, "%s", err.msg);
    ck_assert(memcmp(w, r, big) == 0);
    /* The file itself holds it. */
    fd = open(path, O_RDONLY);
    memset(r, 0, big);
    ck_assert_int_eq(pread(fd, r, big, 1 << 20), (ssize_t)big);
    ck_assert(memcmp(w, r, big) == 0);
    /* Zeroes over part of it. */
    ck_assert_msg(keel_blockdev_write_zeroes(dev, 2 << 20, 1 << 20, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(pread(fd, r, 4096, 2 << 20), 4096);
    for (int i = 0; i < 4096; i++)
        ck_assert_int_eq(r[i], 0);
    ck_assert_int_eq(pread(fd, r, 512, (3 << 20)), 512);
    ck_assert(memcmp(r, w + (2 << 20), 512) == 0);
    close(fd);
    keel_blockdev_close(dev);
    free(w);
    free(r);
    free(path);
}
END_TEST

/* Block status of a sparse file: its holes are zero runs, its data data runs. */
START_TEST(block_status_of_a_sparse_file)
{
    char *path = make_file("sparse.img", 16 << 20);
    struct keel_blockdev *dev = open_disk(path);
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char *w = malloc(1 << 20);
    uint64_t run = 0;
    bool zero = false;

    ck_assert(keel_blockdev_knows_status(dev));
    memset(w, 0x5a, 1 << 20);
    ck_assert_msg(keel_blockdev_pwrite(dev, w, 1 << 20, 4 << 20, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_flush(dev, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_block_status(dev, 0, 16 << 20, &run, &zero, &err) == 0, "%s",
                  err.msg);
    ck_assert(zero);
    ck_assert_uint_eq(run, 4 << 20);
    ck_assert_msg(keel_blockdev_block_status(dev, 4 << 20, 12 << 20, &run, &zero, &err) == 0,
                  "%s", err.msg);
    ck_assert(!zero);
    ck_assert_uint_eq(run, 1 << 20);
    /* A run never reaches past the request. */
    ck_assert_msg(keel_blockdev_block_status(dev, 4 << 20, 512, &run, &zero, &err) == 0, "%s",
                  err.msg);
    ck_assert(!zero);
    ck_assert_uint_eq(run, 512);
    ck_assert_msg(keel_blockdev_block_status(dev, 5 << 20, 11 << 20, &run, &zero, &err) == 0,
                  "%s", err.msg);
    ck_assert(zero);
    ck_assert_uint_eq(run, 11 << 20);
    /* A punched hole reads as zero runs again. */
    ck_assert_msg(keel_blockdev_discard(dev, 4 << 20, 1 << 20, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_block_status(dev, 0, 16 << 20, &run, &zero, &err) == 0, "%s",
                  err.msg);
    ck_assert(zero);
    ck_assert_uint_eq(run, 16 << 20);
    /* What the device refuses for a read, it refuses here. */
    ck_assert_int_eq(keel_blockdev_block_status(dev, 100, 512, &run, &zero, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_ALIGN);
    ck_assert_int_eq(keel_blockdev_block_status(dev, 16 << 20, 512, &run, &zero, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_RANGE);
    keel_blockdev_close(dev);
    free(w);
    free(path);
}
END_TEST

START_TEST(block_refuses_bad_requests)
{
    char *path = make_file("disk.img", 1 << 20);
    struct keel_blockdev *dev = open_disk(path);
    struct keel_error err = KEEL_ERROR_INIT;
    char buf[1024];
    char expect[600];

    ck_assert_int_eq(keel_blockdev_pread(dev, buf, 100, 0, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_ALIGN);
    snprintf(expect, sizeof(expect),
             "file://%s: read of 100 bytes at offset 0: not aligned to the 512-byte block size",
             path);
    ck_assert_str_eq(err.msg, expect);
    ck_assert_int_eq(keel_blockdev_pwrite(dev, buf, 1024, (1 << 20) - 512, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_RANGE);
    snprintf(expect, sizeof(expect),
             "file://%s: write of 1024 bytes at offset 1048064: beyond the end of the device "
             "(1048576 bytes)", path);
    ck_assert_str_eq(err.msg, expect);
    ck_assert_int_eq(keel_blockdev_pread(dev, buf, 0, 0, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    keel_blockdev_close(dev);
    free(path);
}
END_TEST

START_TEST(block_open_errors)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    char url[512], expect[600];

    snprintf(url, sizeof(url), "file://%s/missing.img", tmpdir);
    ck_assert_int_eq(keel_blockdev_open(url, NULL, &dev, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOENT);
    snprintf(expect, sizeof(expect), "%s: cannot open: No such file or directory", url);
    ck_assert_str_eq(err.msg, expect);
    snprintf(url, sizeof(url), "file://%s", tmpdir);
    ck_assert_int_eq(keel_blockdev_open(url, NULL, &dev, &err), -1);
    snprintf(expect, sizeof(expect), "%s: cannot open: Is a directory", url);
    ck_assert_str_eq(err.msg, expect);
    ck_assert_int_eq(keel_blockdev_open("ftp://x/y", NULL, &dev, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_URL);
}
END_TEST

/* Many requests in flight at once, each block tagged with its writer. */
START_TEST(block_async_many_in_flight)
{
    enum { N = 1000, INFLIGHT = 32, BS = 4096, BLOCKS = 256 };
    char *path = make_file("disk.img", (off_t)BLOCKS * BS);
    struct keel_blockdev *dev = open_disk(path);
    static struct keel_ioreq req[N];
    static unsigned char data[N][BS];
    int last_writer[BLOCKS];
    struct keel_iosync s;
    unsigned seed = 42;
    int fd;

    for (int b = 0; b < BLOCKS; b++)
        last_writer[b] = -1;
    keel_iosync_init(&s);
    for (int i = 0; i < N; i++) {
        struct keel_error err = KEEL_ERROR_INIT;
        int b = (int)(rand_r(&seed) % BLOCKS);

        memset(data[i], 0, BS);
        snprintf((char *)data[i], BS, "write %d block %d", i, b);
        req[i] = (struct keel_ioreq){ .op = KEEL_IO_WRITE, .offset = (uint64_t)b * BS,
                                      .len = BS, .buf = data[i] };
        keel_iosync_wait_below(&s, INFLIGHT - 1);
        keel_iosync_prepare(&s, &req[i]);
        ck_assert_msg(keel_blockdev_submit(dev, &req[i], &err) == 0, "%s", err.msg);
        last_writer[b] = i;
    }
    keel_iosync_wait(&s);
    keel_iosync_release(&s);
    for (int i = 0; i < N; i++)
        ck_assert_msg(req[i].result == 0, "%s", req[i].err.msg);
    keel_blockdev_close(dev);
    /* Overlapping writes land in submission order: the last one wins. */
    fd = open(path, O_RDONLY);
    for (int b = 0; b < BLOCKS; b++) {
        unsigned char got[BS];

        ck_assert_int_eq(pread(fd, got, BS, (off_t)b * BS), BS);
        if (last_writer[b] < 0)
            ck_assert_int_eq(got[0], 0);
        else
            ck_assert_msg(memcmp(got, data[last_writer[b]], BS) == 0, "block %d: '%s'", b,
                          (char *)got);
    }
    close(fd);
    free(path);
}
END_TEST

static struct keel_fs *open_fs(void)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_fs *fs = NULL;
    char url[512];

    snprintf(url, sizeof(url), "file://%s", tmpdir);
    ck_assert_msg(keel_fs_open(url, NULL, &fs, &err) == 0, "%s", err.msg);
    return fs;
}

START_TEST(fs_namespace)
{
    struct keel_fs *fs = open_fs();
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_dirlist l = { 0 };
    struct keel_stat st;
    struct keel_statvfs sv;
    bool exists;
    char expect[600];

    ck_assert_msg(keel_fs_mkdirs(fs, "sd/dom_md", 0755, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_fs_mkdirs(fs, "sd/images/img1", 0755, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_fs_mkdirs(fs, "sd/images/img1", 0755, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_fs_mkdir(fs, "sd/images", 0755, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_EXIST);
    snprintf(expect, sizeof(expect), "file://%s: mkdir 'sd/images': File exists", tmpdir);
    ck_assert_str_eq(err.msg, expect);
    ck_assert_msg(keel_fs_write_file_atomic(fs, "sd/dom_md/metadata", "A=1\n", 4, 0644, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(keel_fs_stat(fs, "sd/dom_md/metadata", &st, &err) == 0, "%s", err.msg);
    ck_assert(st.is_reg);
    ck_assert_uint_eq(st.size, 4);
    ck_assert_msg(keel_fs_exists(fs, "sd/dom_md/metadata.new", &exists, &err) == 0, "%s",
                  err.msg);
    ck_assert(!exists);
    ck_assert_msg(keel_fs_readdir(fs, "sd", &l, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_str_eq(l.names[0], "dom_md");
    ck_assert_str_eq(l.names[1], "images");
    keel_dirlist_release(&l);
    ck_assert_msg(keel_fs_rename(fs, "sd/dom_md/metadata", "sd/dom_md/md2", &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_fs_unlink(fs, "sd/dom_md/md2", &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_fs_unlink(fs, "sd/dom_md/md2", &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOENT);
    ck_assert_msg(keel_fs_rmdir(fs, "sd/images/img1", &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_fs_statvfs(fs, &sv, &err) == 0, "%s", err.msg);
    ck_assert_uint_gt(sv.total, 0);
    /* Paths cannot leave the root. */
    ck_assert_int_eq(keel_fs_mkdir(fs, "../escape", 0755, &err), -1);
    snprintf(expect, sizeof(expect),
             "file://%s: path '../escape': '.' and '..' are not allowed", tmpdir);
    ck_assert_str_eq(err.msg, expect);
    ck_assert_int_eq(keel_fs_stat(fs, "/etc/passwd", &st, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    keel_fs_close(fs);
}
END_TEST

START_TEST(fs_files)
{
    struct keel_fs *fs = open_fs();
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_file *f = NULL;
    struct keel_blockdev *dev = NULL;
    char buf[64];
    size_t n = 0;
    char *text = NULL;
    size_t len = 0;

    ck_assert_msg(keel_file_open(fs, "ids", KEEL_O_RDWR | KEEL_O_CREAT | KEEL_O_EXCL, 0660, &f,
                                 &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_pwrite(f, "hello world", 11, 100, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_fsync(f, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_pread(f, buf, sizeof(buf), 100, &n, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(n, 11);
    ck_assert_int_eq(keel_file_pread(f, buf, 20, 100, NULL, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_SHORT);
    ck_assert_msg(keel_file_truncate(f, 1 << 20, &err) == 0, "%s", err.msg);
    /* A block view of the file. */
    ck_assert_msg(keel_blockdev_open_file(f, 512, &dev, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_blockdev_size(dev), 1 << 20);
    ck_assert_msg(keel_blockdev_pread(dev, buf, 0, 0, &err) == -1, "zero-length read accepted");
    keel_blockdev_close(dev);
    ck_assert_msg(keel_file_close(f, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_file_open(fs, "ids", KEEL_O_RDWR | KEEL_O_CREAT | KEEL_O_EXCL, 0660, &f,
                                    &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_EXIST);
    ck_assert_int_eq(keel_fs_read_file(fs, "ids", 1024, &text, &len, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_RANGE);
    ck_assert_msg(keel_fs_write_file_atomic(fs, "md", "X=1\nEOF\n", 8, 0644, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_fs_read_file(fs, "md", 1024, &text, &len, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(len, 8);
    ck_assert_str_eq(text, "X=1\nEOF\n");
    free(text);
    keel_fs_close(fs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("posix");
    TCase *tc = tcase_create("posix");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, block_roundtrip_and_split);
    tcase_add_test(tc, block_status_of_a_sparse_file);
    tcase_add_test(tc, block_refuses_bad_requests);
    tcase_add_test(tc, block_open_errors);
    tcase_add_test(tc, block_async_many_in_flight);
    tcase_add_test(tc, fs_namespace);
    tcase_add_test(tc, fs_files);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
