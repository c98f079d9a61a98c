/*
 * Unit tests of io/fence.c, the write gate of a lease holder, and of its
 * use by the local backends: a file:// disk image and a file:// directory
 * in a fresh temporary directory.  What reached the files is judged with
 * pread(2) and stat(2), not through io/.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fence.h"
#include "io/fs.h"

#define S (KEEL_NS_PER_S)

static char tmpdir[256];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/keel-test-fence.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static void expect_fenced(const struct keel_error *err, const char *part)
{
    ck_assert_int_eq(err->code, KEEL_E_FENCED);
    ck_assert_msg(strstr(err->msg, part) != NULL, "'%s' lacks '%s'", err->msg, part);
}

START_TEST(states)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_fence *f = keel_fence_new("lease LS:SDM");
    uint64_t now = keel_boottime_ns();

    /* New: shut. */
    ck_assert_int_eq(keel_fence_check(f, &err), -1);
    ck_assert_str_eq(err.msg, "lease LS:SDM: write refused: lease not held");
    ck_assert_uint_eq(keel_fence_valid_until(f), 0);
    ck_assert(!keel_fence_extend(f, now + S, now + 2 * S));

    /* Armed; extended forward only. */
    keel_fence_arm(f, now + 5 * S, now + 6 * S);
    ck_assert_int_eq(keel_fence_check(f, &err), 0);
    ck_assert_uint_eq(keel_fence_valid_until(f), now + 6 * S);
    ck_assert(keel_fence_extend(f, now + 7 * S, now + 8 * S));
    ck_assert_uint_eq(keel_fence_valid_until(f), now + 8 * S);
    ck_assert(keel_fence_extend(f, now + S, now + 2 * S));
    ck_assert_uint_eq(keel_fence_valid_until(f), now + 8 * S);

    /* Shut with a reason; stays shut until armed again. */
    keel_fence_shut(f, "host id lease lost");
    ck_assert_int_eq(keel_fence_check(f, &err), -1);
    ck_assert_str_eq(err.msg, "lease LS:SDM: write refused: host id lease lost");
    ck_assert(!keel_fence_extend(f, now + 7 * S, now + 8 * S));

    /* Draining: past start_until, before valid_until. */
    keel_fence_arm(f, now, now + 5 * S);
    ck_assert_int_eq(keel_fence_check(f, &err), -1);
    expect_fenced(&err, "to the lease deadline, less than one io timeout");
    ck_assert_uint_eq(keel_fence_valid_until(f), now + 5 * S);
    ck_assert(keel_fence_extend(f, now + 3 * S, now + 6 * S));
    ck_assert_int_eq(keel_fence_check(f, &err), 0);

    /* Expired: shut for good, however late the renewal. */
    now = keel_boottime_ns();
    keel_fence_arm(f, now, now + 50 * KEEL_NS_PER_MS);
    keel_sleep_ms(60);
    ck_assert(!keel_fence_extend(f, now + 5 * S, now + 6 * S));
    ck_assert_int_eq(keel_fence_check(f, &err), -1);
    ck_assert_str_eq(err.msg, "lease LS:SDM: write refused: lease deadline passed");
    ck_assert_uint_eq(keel_fence_valid_until(f), 0);
    ck_assert_uint_eq(keel_fence_refused(f), 4);
    keel_fence_free(f);
}
END_TEST

/* A fenced file:// disk: writes of every kind refused, reads served. */
START_TEST(blockdev_gated)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_fence *f = keel_fence_new("lease LS:SDM");
    char *path = keel_strdup_printf("%s/disk", tmpdir), *url = keel_strdup_printf("file://%s", path);
    struct keel_blockdev *dev = NULL;
    unsigned char buf[4096], got[4096];
    int fd;
    uint64_t now;

    fd = open(path, O_CREAT | O_RDWR, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
    ck_assert_msg(keel_blockdev_open(url, NULL, &dev, &err) == 0, "%s", err.msg);
    keel_blockdev_set_fence(dev, f);
    memset(buf, 'k', sizeof(buf));
    ck_assert_int_eq(keel_blockdev_pwrite(dev, buf, 4096, 0, &err), -1);
    expect_fenced(&err, "lease not held");
    ck_assert_int_eq(keel_blockdev_write_zeroes(dev, 0, 4096, &err), -1);
    expect_fenced(&err, "lease not held");
    ck_assert_int_eq(keel_blockdev_discard(dev, 0, 4096, &err), -1);
    expect_fenced(&err, "lease not held");
    ck_assert_msg(keel_blockdev_pread(dev, got, 4096, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_flush(dev, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(pread(fd, got, 4096, 0), 4096);
    ck_assert_int_eq(got[0], 0);

    now = keel_boottime_ns();
    keel_fence_arm(f, now + 10 * S, now + 11 * S);
    ck_assert_msg(keel_blockdev_pwrite(dev, buf, 4096, 0, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(pread(fd, got, 4096, 0), 4096);
    ck_assert_int_eq(got[0], 'k');
    keel_blockdev_set_fence(dev, NULL);
    keel_blockdev_close(dev);
    keel_fence_free(f);
    close(fd);
    free(path);
    free(url);
}
END_TEST

/* A fenced file:// file system: namespace changes and writes refused; lookups served. */
START_TEST(fs_gated)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_fence *f = keel_fence_new("lease LS:SDM");
    char *url = keel_strdup_printf("file://%s", tmpdir), *p;
    struct keel_fs *fs = NULL;
    struct keel_file *file = NULL;
    struct keel_stat st;
    struct stat sb;
    uint64_t now;

    ck_assert_msg(keel_fs_open(url, NULL, &fs, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_fs_mkdir(fs, "d", 0755, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_open(fs, "d/f", KEEL_O_RDWR | KEEL_O_CREAT, 0644, &file, &err) == 0,
                  "%s", err.msg);
    keel_fs_set_fence(fs, f);

    ck_assert_int_eq(keel_fs_mkdir(fs, "e", 0755, &err), -1);
    expect_fenced(&err, "mkdir 'e': lease LS:SDM: write refused: lease not held");
    ck_assert_int_eq(keel_fs_unlink(fs, "d/f", &err), -1);
    expect_fenced(&err, "lease not held");
    ck_assert_int_eq(keel_fs_rename(fs, "d/f", "d/g", &err), -1);
    expect_fenced(&err, "lease not held");
    ck_assert_int_eq(keel_fs_link(fs, "d/f", "d/h", &err), -1);
    expect_fenced(&err, "lease not held");
    ck_assert_int_eq(keel_fs_rmdir(fs, "d", &err), -1);
    expect_fenced(&err, "lease not held");
    {
        struct keel_file *g = NULL;

        ck_assert_int_eq(keel_file_open(fs, "d/new", KEEL_O_RDWR | KEEL_O_CREAT, 0644, &g, &err),
                         -1);
        expect_fenced(&err, "lease not held");
        ck_assert_int_eq(keel_file_open(fs, "d/f", KEEL_O_RDWR | KEEL_O_TRUNC, 0644, &g, &err),
                         -1);
        /* Opening an existing file to read or write is no change. */
        ck_assert_msg(keel_file_open(fs, "d/f", KEEL_O_RDWR, 0, &g, &err) == 0, "%s", err.msg);
        keel_file_close(g, NULL);
    }
    ck_assert_int_eq(keel_file_pwrite(file, "x", 1, 0, &err), -1);
    expect_fenced(&err, "lease not held");
    ck_assert_int_eq(keel_file_truncate(file, 100, &err), -1);
    expect_fenced(&err, "lease not held");
    ck_assert_msg(keel_fs_stat(fs, "d/f", &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.size, 0);
    p = keel_strdup_printf("%s/e", tmpdir);
    ck_assert_int_eq(stat(p, &sb), -1);
    free(p);

    now = keel_boottime_ns();
    keel_fence_arm(f, now + 10 * S, now + 11 * S);
    ck_assert_msg(keel_fs_mkdir(fs, "e", 0755, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_pwrite(file, "x", 1, 0, &err) == 0, "%s", err.msg);
    p = keel_strdup_printf("%s/d/f", tmpdir);
    ck_assert_int_eq(stat(p, &sb), 0);
    ck_assert_int_eq(sb.st_size, 1);
    free(p);
    keel_fs_set_fence(fs, NULL);
    keel_file_close(file, NULL);
    keel_fs_close(fs);
    keel_fence_free(f);
    free(url);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fence");
    TCase *tc = tcase_create("fence");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, states);
    tcase_add_test(tc, blockdev_gated);
    tcase_add_test(tc, fs_gated);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
