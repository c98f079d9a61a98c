/*
 * io/ against a real NFS server: nfs-ganesha (NFSv3, VFS backend) started
 * by the harness on 127.0.0.1.  The exported directory, read on this
 * machine, is the independent judge of what Keel wrote through NFS.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "tests/harness/lab.h"

#define MiB (UINT64_C(1) << 20)

static struct keel_lab_nfs *start_nfs(void)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_nfs *n = NULL;

    ck_assert_msg(keel_lab_nfs_start(&n, &err) == 0, "%s", err.msg);
    return n;
}

static struct keel_fs *open_fs(const char *url, unsigned timeout_ms)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_fs *fs = NULL;
    struct keel_io_opts o;

    keel_io_opts_init(&o);
    o.timeout_ms = timeout_ms;
    o.connect_timeout_ms = 1000;
    ck_assert_msg(keel_fs_open(url, &o, &fs, &err) == 0, "%s: %s", url, err.msg);
    return fs;
}

static char *local(struct keel_lab_nfs *n, const char *rel)
{
    return keel_strdup_printf("%s/%s", keel_lab_nfs_export_dir(n), rel);
}

START_TEST(pattern_roundtrip)
{
    struct keel_lab_nfs *n = start_nfs();
    struct keel_fs *fs = open_fs(keel_lab_nfs_url(n), 10000);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_file *f = NULL;
    size_t len = 5 * MiB + 123;
    unsigned char *w = malloc(len), *r = malloc(len);
    char *path = local(n, "data/vol.img");
    size_t got = 0;
    int fd;

    for (size_t i = 0; i < len; i++)
        w[i] = (unsigned char)(i ^ (i >> 9) ^ 0x5a);
    ck_assert_msg(keel_fs_mkdir(fs, "data", 0755, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_open(fs, "data/vol.img", KEEL_O_RDWR | KEEL_O_CREAT | KEEL_O_EXCL,
                                 0660, &f, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_pwrite(f, w, len, 4096, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_fsync(f, &err) == 0, "%s", err.msg);
    memset(r, 0, len);
    ck_assert_msg(keel_file_pread(f, r, len, 4096, &got, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(got, len);
    ck_assert(memcmp(w, r, len) == 0);
    /* The exported file on this machine holds the same bytes. */
    fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
    memset(r, 0, len);
    ck_assert_int_eq(pread(fd, r, len, 4096), (ssize_t)len);
    ck_assert(memcmp(w, r, len) == 0);
    close(fd);
    /* Reading past the end is short, and says how short. */
    ck_assert_msg(keel_file_pread(f, r, 1000, 4096 + len - 10, &got, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(got, 10);
    ck_assert_msg(keel_file_close(f, &err) == 0, "%s", err.msg);
    keel_fs_close(fs);
    keel_lab_nfs_stop(n);
    free(w);
    free(r);
    free(path);
}
END_TEST

START_TEST(namespace)
{
    struct keel_lab_nfs *n = start_nfs();
    struct keel_fs *fs = open_fs(keel_lab_nfs_url(n), 10000);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_dirlist l = { 0 };
    struct keel_stat st;
    struct keel_statvfs sv;
    char *text = NULL;
    char *p;
    struct stat lst;
    bool exists = true;

    ck_assert_msg(keel_fs_mkdirs(fs, "sd/dom_md", 0755, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_fs_mkdirs(fs, "sd/images/i1", 0755, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_fs_write_file_atomic(fs, "sd/dom_md/metadata", "CLASS=Data\nEOF\n", 15,
                                            0644, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_fs_read_file(fs, "sd/dom_md/metadata", 4096, &text, NULL, &err) == 0, "%s",
                  err.msg);
    ck_assert_str_eq(text, "CLASS=Data\nEOF\n");
    free(text);
    p = local(n, "sd/dom_md/metadata");
    ck_assert_int_eq(stat(p, &lst), 0);
    ck_assert_int_eq(lst.st_size, 15);
    free(p);
    ck_assert_msg(keel_fs_readdir(fs, "sd", &l, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_str_eq(l.names[0], "dom_md");
    ck_assert_str_eq(l.names[1], "images");
    keel_dirlist_release(&l);
    ck_assert_msg(keel_fs_stat(fs, "sd/images", &st, &err) == 0, "%s", err.msg);
    ck_assert(st.is_dir);
    ck_assert_msg(keel_fs_rename(fs, "sd/images/i1", "sd/images/_remove_me_i1", &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_fs_rmdir(fs, "sd/images/_remove_me_i1", &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_fs_exists(fs, "sd/images/i1", &exists, &err) == 0, "%s", err.msg);
    ck_assert(!exists);
    p = local(n, "sd/images/_remove_me_i1");
    ck_assert_int_eq(stat(p, &lst), -1);
    free(p);
    ck_assert_int_eq(keel_fs_unlink(fs, "sd/nothing", &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOENT);
    p = keel_strdup_printf("%s: unlink 'sd/nothing': No such file or directory",
                           keel_lab_nfs_url(n));
    ck_assert_str_eq(err.msg, p);
    free(p);
    ck_assert_msg(keel_fs_statvfs(fs, &sv, &err) == 0, "%s", err.msg);
    ck_assert_uint_gt(sv.total, 0);
    ck_assert_int_eq(keel_fs_mkdir(fs, "sd/../../etc", 0755, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    keel_fs_close(fs);

    /* A sub-directory of the export is a file system of its own. */
    p = keel_lab_nfs_url_sub(n, "sd");
    fs = open_fs(p, 10000);
    ck_assert_msg(keel_fs_stat(fs, "dom_md/metadata", &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.size, 15);
    keel_fs_close(fs);
    free(p);
    keel_lab_nfs_stop(n);
}
END_TEST

START_TEST(block_view_of_an_nfs_file)
{
    struct keel_lab_nfs *n = start_nfs();
    struct keel_fs *fs = open_fs(keel_lab_nfs_url(n), 10000);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_file *f = NULL;
    struct keel_blockdev *dev = NULL;
    unsigned char w[4096], r[4096];
    char *url;

    ck_assert_msg(keel_file_open(fs, "ids", KEEL_O_RDWR | KEEL_O_CREAT, 0660, &f, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(keel_file_truncate(f, MiB, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_close(f, &err) == 0, "%s", err.msg);
    keel_fs_close(fs);
    /* nfs://.../ids?nfsport=..: the query goes after the path. */
    {
        const char *base = keel_lab_nfs_url(n);
        const char *q = strchr(base, '?');

        url = keel_strdup_printf("%.*s/ids%s", (int)(q - base), base, q);
    }
    ck_assert_msg(keel_blockdev_open(url, NULL, &dev, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_blockdev_size(dev), MiB);
    memset(w, 0xab, sizeof(w));
    ck_assert_msg(keel_blockdev_pwrite(dev, w, sizeof(w), 512 * 3, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_pread(dev, r, sizeof(r), 512 * 3, &err) == 0, "%s", err.msg);
    ck_assert(memcmp(w, r, sizeof(w)) == 0);
    ck_assert_int_eq(keel_blockdev_pwrite(dev, w, 100, 0, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_ALIGN);
    keel_blockdev_close(dev);
    free(url);
    keel_lab_nfs_stop(n);
}
END_TEST

START_TEST(bad_urls_and_missing_exports)
{
    struct keel_lab_nfs *n = start_nfs();
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_fs *fs = NULL;
    struct keel_io_opts o;
    char *url;

    keel_io_opts_init(&o);
    o.timeout_ms = 2000;
    o.connect_timeout_ms = 1000;
    ck_assert_int_eq(keel_fs_open("nfs://127.0.0.1/export/../etc", &o, &fs, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_URL);
    ck_assert_str_eq(err.msg,
                     "nfs://127.0.0.1/export/../etc: '.' and '..' are not allowed in paths");
    ck_assert_int_eq(keel_fs_open("nfs://127.0.0.1:2049/export", &o, &fs, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_URL);
    url = keel_lab_nfs_url_sub(n, "no/such/dir");
    ck_assert_int_eq(keel_fs_open(url, &o, &fs, &err), -1);
    ck_assert_msg(strncmp(err.msg, url, strlen(url)) == 0, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "mount") != NULL, "%s", err.msg);
    free(url);
    ck_assert_int_eq(keel_fs_open("iscsi://127.0.0.1/iqn.x/1", &o, &fs, &err), -1);
    ck_assert_str_eq(err.msg, "iscsi://127.0.0.1/iqn.x/1: an iSCSI LUN is a block device, not a "
                              "file system");
    keel_lab_nfs_stop(n);
}
END_TEST

START_TEST(stopped_server_times_out)
{
    struct keel_lab_nfs *n = start_nfs();
    struct keel_fs *fs = open_fs(keel_lab_nfs_url(n), 2000);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_file *f = NULL;
    uint64_t t0, elapsed_ms;
    char buf[512];
    char *prefix;

    ck_assert_msg(keel_file_open(fs, "f", KEEL_O_RDWR | KEEL_O_CREAT, 0644, &f, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_lab_nfs_kill(n, &err) == 0, "%s", err.msg);
    memset(buf, 1, sizeof(buf));
    t0 = keel_now_ns();
    ck_assert_int_eq(keel_file_pwrite(f, buf, sizeof(buf), 0, &err), -1);
    elapsed_ms = (keel_now_ns() - t0) / KEEL_NS_PER_MS;
    ck_assert_int_eq(err.code, KEEL_E_TIMEOUT);
    prefix = keel_strdup_printf("%s: write of 512 bytes at offset 0 of 'f': timed out after ",
                                keel_lab_nfs_url(n));
    ck_assert_msg(strncmp(err.msg, prefix, strlen(prefix)) == 0, "%s", err.msg);
    free(prefix);
    ck_assert_msg(elapsed_ms <= 2000 + 1500, "took %llu ms", (unsigned long long)elapsed_ms);
    ck_assert_int_eq(keel_fs_mkdir(fs, "d", 0755, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_TIMEOUT);
    /* The server comes back: the same file works again (reopened by path). */
    ck_assert_msg(keel_lab_nfs_restart(n, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_pwrite(f, buf, sizeof(buf), 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_file_close(f, &err) == 0, "%s", err.msg);
    keel_fs_close(fs);
    keel_lab_nfs_stop(n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io_nfs");
    TCase *tc = tcase_create("io_nfs");
    SRunner *sr;
    int failed;

    keel_lab_require("ganesha.nfsd");
    keel_lab_require("rpcbind");
    keel_lab_require("nfs-ls");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, pattern_roundtrip);
    tcase_add_test(tc, namespace);
    tcase_add_test(tc, block_view_of_an_nfs_file);
    tcase_add_test(tc, bad_urls_and_missing_exports);
    tcase_add_test(tc, stopped_server_times_out);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
