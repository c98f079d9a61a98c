/*
 * io/ against a real iSCSI target: tgtd started by the harness on
 * 127.0.0.1, LUNs backed by sparse files.  The backing files are the
 * independent judge of what Keel wrote; iscsi-ls/iscsi-inq (libiscsi-bin)
 * and tgtadm judge discovery.
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

#include "common/cleanup.h"
#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/iscsi_inventory.h"
#include "io/iosync.h"
#include "tests/harness/lab.h"

#define MiB (UINT64_C(1) << 20)

static struct keel_lab_tgtd *start_tgtd_thin(const uint64_t *sizes, size_t n, const char *user,
                                             const char *secret, bool thin)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;

    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    keel_lab_tgtd_set_thin(t, thin);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "disks", sizes, n, user, secret, &err) == 0, "%s",
                  err.msg);
    return t;
}

static struct keel_lab_tgtd *start_tgtd(const uint64_t *sizes, size_t n, const char *user,
                                        const char *secret)
{
    return start_tgtd_thin(sizes, n, user, secret, false);
}

static struct keel_io_opts short_opts(unsigned timeout_ms)
{
    struct keel_io_opts o;

    keel_io_opts_init(&o);
    o.timeout_ms = timeout_ms;
    o.connect_timeout_ms = 1000;
    return o;
}

static void fill_pattern(unsigned char *buf, size_t len, uint64_t base, unsigned seed)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = (base + i) * 0x9E3779B97F4A7C15ull ^ seed;

        memcpy(buf + i, &v, KEEL_MIN((size_t)8, len - i));
    }
}

/* Write a pattern through io/, read it back through io/ and from the LUN's file. */
START_TEST(pattern_roundtrip)
{
    uint64_t sizes[] = { 64 * MiB };
    struct keel_lab_tgtd *t = start_tgtd(sizes, 1, NULL, NULL);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    size_t len = 6 * MiB + 4096;
    uint64_t off = 3 * MiB + 512;
    unsigned char *w = malloc(len), *r = malloc(len);
    int fd;

    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), NULL, &dev, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(keel_blockdev_size(dev), 64 * MiB);
    ck_assert_uint_eq(keel_blockdev_block_size(dev), 512);
    ck_assert_str_eq(keel_blockdev_name(dev), keel_lab_tgtd_lun_url(t, 0, 1));
    fill_pattern(w, len, off, 1);
    ck_assert_msg(keel_blockdev_pwrite(dev, w, len, off, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_flush(dev, &err) == 0, "%s", err.msg);
    memset(r, 0, len);
    ck_assert_msg(keel_blockdev_pread(dev, r, len, off, &err) == 0, "%s", err.msg);
    ck_assert(memcmp(w, r, len) == 0);
    fd = open(keel_lab_tgtd_lun_path(t, 0, 1), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    memset(r, 0, len);
    ck_assert_int_eq(pread(fd, r, len, (off_t)off), (ssize_t)len);
    ck_assert(memcmp(w, r, len) == 0);
    /* Zeroes in the middle, through WRITE commands of a zero buffer. */
    ck_assert_msg(keel_blockdev_write_zeroes(dev, off + MiB, 2 * MiB, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_discard(dev, off + MiB, 4096, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(pread(fd, r, 2 * MiB, (off_t)(off + MiB)), (ssize_t)(2 * MiB));
    for (size_t i = 0; i < 2 * MiB; i++)
        ck_assert_int_eq(r[i], 0);
    ck_assert_int_eq(pread(fd, r, 4096, (off_t)(off + 3 * MiB)), 4096);
    ck_assert(memcmp(r, w + 3 * MiB, 4096) == 0);
    close(fd);
    /* A thick LUN cannot tell where its data is: all of it may be. */
    {
        uint64_t run = 0;
        bool zero = true;

        ck_assert(!keel_blockdev_knows_status(dev));
        ck_assert_msg(keel_blockdev_block_status(dev, 0, 64 * MiB, &run, &zero, &err) == 0, "%s",
                      err.msg);
        ck_assert_uint_eq(run, 64 * MiB);
        ck_assert(!zero);
    }
    /* The end of the LUN is reachable and nothing past it. */
    ck_assert_msg(keel_blockdev_pwrite(dev, w, 512, 64 * MiB - 512, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_blockdev_pwrite(dev, w, 1024, 64 * MiB - 512, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_RANGE);
    keel_blockdev_close(dev);
    keel_lab_tgtd_stop(t);
    free(w);
    free(r);
}
END_TEST

static void expect_status(struct keel_blockdev *dev, uint64_t off, uint64_t run, bool zero)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t got = 0;
    bool z = !zero;

    ck_assert_msg(keel_blockdev_block_status(dev, off, keel_blockdev_size(dev) - off, &got, &z,
                                             &err) == 0, "%s", err.msg);
    ck_assert_msg(got == run && z == zero, "status at %llu: %llu bytes %s, expected %llu %s",
                  (unsigned long long)off, (unsigned long long)got, z ? "zero" : "data",
                  (unsigned long long)run, zero ? "zero" : "data");
}

/* Bytes the file holds on disk. */
static uint64_t allocated(int fd)
{
    struct stat st;

    ck_assert_int_eq(fstat(fd, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/*
 * A thin LUN (tgtd's thin_provisioning=1): block status is GET LBA STATUS
 * and zeroes are WRITE SAME with UNMAP, judged by the LUN file itself --
 * its holes (SEEK_DATA, st_blocks) and its bytes.
 */
START_TEST(thin_lun_status_and_zeroes)
{
    uint64_t sizes[] = { 64 * MiB };
    struct keel_lab_tgtd *t = start_tgtd_thin(sizes, 1, NULL, NULL, true);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    size_t len = 4 * MiB;
    unsigned char *w = malloc(len), *r = malloc(len);
    uint64_t before;
    int fd;

    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), NULL, &dev, &err) == 0, "%s",
                  err.msg);
    ck_assert(keel_blockdev_knows_status(dev));
    expect_status(dev, 0, 64 * MiB, true);
    fill_pattern(w, len, 8 * MiB, 3);
    ck_assert_msg(keel_blockdev_pwrite(dev, w, len, 8 * MiB, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_flush(dev, &err) == 0, "%s", err.msg);
    expect_status(dev, 0, 8 * MiB, true);
    expect_status(dev, 8 * MiB, 4 * MiB, false);
    expect_status(dev, 10 * MiB, 2 * MiB, false);
    expect_status(dev, 12 * MiB, 52 * MiB, true);

    fd = open(keel_lab_tgtd_lun_path(t, 0, 1), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    before = allocated(fd);
    ck_assert_uint_ge(before, 4 * MiB);
    /* Zeroes in the middle of the data: deallocated, not written. */
    ck_assert_msg(keel_blockdev_write_zeroes(dev, 9 * MiB, 2 * MiB, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_flush(dev, &err) == 0, "%s", err.msg);
    ck_assert_uint_le(allocated(fd), before - 2 * MiB);
    ck_assert_int_eq(lseek(fd, (off_t)(9 * MiB), SEEK_DATA), (off_t)(11 * MiB));
    ck_assert_int_eq(pread(fd, r, len, (off_t)(8 * MiB)), (ssize_t)len);
    ck_assert(memcmp(r, w, MiB) == 0);
    for (size_t i = MiB; i < 3 * MiB; i++)
        ck_assert_int_eq(r[i], 0);
    ck_assert(memcmp(r + 3 * MiB, w + 3 * MiB, MiB) == 0);
    expect_status(dev, 8 * MiB, MiB, false);
    expect_status(dev, 9 * MiB, 2 * MiB, true);
    expect_status(dev, 11 * MiB, MiB, false);
    /* Less than a file system block: the bytes read as zeroes, their neighbours stay. */
    ck_assert_msg(keel_blockdev_write_zeroes(dev, 8 * MiB + 512, 512, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(pread(fd, r, 4096, (off_t)(8 * MiB)), 4096);
    ck_assert(memcmp(r, w, 512) == 0);
    for (size_t i = 512; i < 1024; i++)
        ck_assert_int_eq(r[i], 0);
    ck_assert(memcmp(r + 1024, w + 1024, 4096 - 1024) == 0);
    /* And through io/ too. */
    ck_assert_msg(keel_blockdev_pread(dev, r, len, 8 * MiB, &err) == 0, "%s", err.msg);
    ck_assert(memcmp(r, w, 512) == 0);
    for (size_t i = 512; i < 1024; i++)
        ck_assert_int_eq(r[i], 0);
    for (size_t i = MiB; i < 3 * MiB; i++)
        ck_assert_int_eq(r[i], 0);
    ck_assert(memcmp(r + 3 * MiB, w + 3 * MiB, MiB) == 0);
    close(fd);
    keel_blockdev_close(dev);
    keel_lab_tgtd_stop(t);
    free(w);
    free(r);
}
END_TEST

START_TEST(chap_login)
{
    uint64_t sizes[] = { 16 * MiB };
    struct keel_lab_tgtd *t = start_tgtd(sizes, 1, "keeluser", "s3cretpass123");
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    struct keel_io_opts o = short_opts(3000);
    char *bad;
    char buf[512];

    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), &o, &dev, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_blockdev_pread(dev, buf, 512, 0, &err) == 0, "%s", err.msg);
    ck_assert_ptr_null(strstr(keel_blockdev_name(dev), "s3cretpass123"));
    ck_assert_ptr_nonnull(strstr(keel_blockdev_name(dev), "keeluser%***@"));
    keel_blockdev_close(dev);

    /* Wrong secret: refused, and the secret is not in the message. */
    bad = keel_strdup_printf("iscsi://keeluser%%wrongsecret99@127.0.0.1:%u/%s/1",
                             keel_lab_tgtd_port(t), keel_lab_tgtd_iqn(t, 0));
    ck_assert_int_eq(keel_blockdev_open(bad, &o, &dev, &err), -1);
    ck_assert_msg(err.code == KEEL_E_AUTH || err.code == KEEL_E_CONNECT, "code %d: %s", err.code,
                  err.msg);
    ck_assert_ptr_null(strstr(err.msg, "wrongsecret99"));
    ck_assert_msg(strstr(err.msg, "keeluser%***@127.0.0.1") != NULL, "%s", err.msg);
    free(bad);
    /* No credentials at all: refused too. */
    bad = keel_strdup_printf("iscsi://127.0.0.1:%u/%s/1", keel_lab_tgtd_port(t),
                             keel_lab_tgtd_iqn(t, 0));
    ck_assert_int_eq(keel_blockdev_open(bad, &o, &dev, &err), -1);
    free(bad);
    keel_lab_tgtd_stop(t);
}
END_TEST

/* Discovery against what tgtd was told to serve, judged by tgtadm and iscsi-ls. */
START_TEST(discovery_inventory)
{
    uint64_t sizes[] = { 64 * MiB, 100 * MiB };
    struct keel_lab_tgtd *t = start_tgtd(sizes, 2, NULL, NULL);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_iscsi_inventory inv = { 0 };
    struct keel_iscsi_target *tg;
    uint64_t sizes2[] = { 32 * MiB };
    const char *ls[] = { "iscsi-ls", "-s", keel_lab_tgtd_portal_url(t), NULL };
    char *out = NULL;

    ck_assert_msg(keel_lab_tgtd_add_target(t, "second", sizes2, 1, NULL, NULL, &err) == 1, "%s",
                  err.msg);
    ck_assert_msg(keel_iscsi_discover(keel_lab_tgtd_portal_url(t), NULL, &inv, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(inv.ntargets, 2);
    tg = strcmp(inv.targets[0].iqn, keel_lab_tgtd_iqn(t, 0)) == 0 ? &inv.targets[0]
                                                                  : &inv.targets[1];
    ck_assert_str_eq(tg->iqn, keel_lab_tgtd_iqn(t, 0));
    /* LUN 0 is tgtd's controller, then the two disks. */
    ck_assert_uint_eq(tg->nluns, 3);
    ck_assert_int_eq(tg->luns[0].lun, 0);
    ck_assert_int_eq(tg->luns[0].device_type, KEEL_SCSI_TYPE_CONTROLLER);
    for (int i = 1; i <= 2; i++) {
        struct keel_iscsi_lun *l = &tg->luns[i];
        char sn[32];

        ck_assert_int_eq(l->lun, i);
        ck_assert_int_eq(l->device_type, KEEL_SCSI_TYPE_DISK);
        ck_assert_uint_eq(l->size, sizes[i - 1]);
        ck_assert_uint_eq(l->block_size, 512);
        ck_assert_str_eq(l->vendor, "IET");
        ck_assert_str_eq(l->product, "VIRTUAL-DISK");
        /* tgtd's serial is "beaf" + target id + LUN (tgtadm shows it as SCSI SN). */
        snprintf(sn, sizeof(sn), "beaf1%d", i);
        ck_assert_str_eq(l->serial, sn);
        /* An NAA id, as multipath would name the device: "3" + 32 hex digits. */
        ck_assert_msg(strlen(l->devid) == 33 && l->devid[0] == '3', "devid '%s'", l->devid);
        ck_assert_str_eq(l->url, keel_lab_tgtd_lun_url(t, 0, i));
    }
    ck_assert_str_ne(tg->luns[1].devid, tg->luns[2].devid);
    /* iscsi-ls agrees on targets and sizes. */
    ck_assert_msg(keel_lab_run_ok(ls, NULL, &out, &err) == 0, "%s", err.msg);
    ck_assert_msg(strstr(out, keel_lab_tgtd_iqn(t, 0)) != NULL, "%s", out);
    ck_assert_msg(strstr(out, keel_lab_tgtd_iqn(t, 1)) != NULL, "%s", out);
    ck_assert_msg(strstr(out, "Lun:1") != NULL && strstr(out, "Lun:2") != NULL, "%s", out);
    free(out);
    keel_iscsi_inventory_release(&inv);
    keel_lab_tgtd_stop(t);
}
END_TEST

START_TEST(bad_urls_and_missing_targets)
{
    uint64_t sizes[] = { 16 * MiB };
    struct keel_lab_tgtd *t = start_tgtd(sizes, 1, NULL, NULL);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    struct keel_io_opts o = short_opts(2000);
    unsigned port = 0;
    char *url;

    /* Missing LUN, unknown scheme: refused before any connection. */
    url = keel_strdup_printf("iscsi://127.0.0.1:%u/%s", keel_lab_tgtd_port(t),
                             keel_lab_tgtd_iqn(t, 0));
    ck_assert_int_eq(keel_blockdev_open(url, &o, &dev, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_URL);
    ck_assert_msg(strstr(err.msg, "missing LUN number") != NULL, "%s", err.msg);
    free(url);
    ck_assert_int_eq(keel_blockdev_open("smb://127.0.0.1/share", &o, &dev, &err), -1);
    ck_assert_str_eq(err.msg, "smb://127.0.0.1/share: unknown scheme (known: iscsi, nfs, file)");

    /* A port where nobody listens. */
    ck_assert_msg(keel_lab_free_port(&port, &err) == 0, "%s", err.msg);
    url = keel_strdup_printf("iscsi://127.0.0.1:%u/%s/1", port, keel_lab_tgtd_iqn(t, 0));
    ck_assert_int_eq(keel_blockdev_open(url, &o, &dev, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CONNECT);
    ck_assert_msg(strncmp(err.msg, url, strlen(url)) == 0, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "refused") != NULL, "%s", err.msg);
    free(url);

    /* A target that does not exist, and a LUN that does not exist. */
    url = keel_strdup_printf("iscsi://127.0.0.1:%u/iqn.2026-11.org.keel.test:nosuch/1",
                             keel_lab_tgtd_port(t));
    ck_assert_int_eq(keel_blockdev_open(url, &o, &dev, &err), -1);
    ck_assert_msg(strncmp(err.msg, url, strlen(url)) == 0, "%s", err.msg);
    free(url);
    url = keel_strdup_printf("iscsi://127.0.0.1:%u/%s/7", keel_lab_tgtd_port(t),
                             keel_lab_tgtd_iqn(t, 0));
    ck_assert_int_eq(keel_blockdev_open(url, &o, &dev, &err), -1);
    ck_assert_msg(strncmp(err.msg, url, strlen(url)) == 0, "%s", err.msg);
    free(url);
    keel_lab_tgtd_stop(t);
}
END_TEST

/* A target that goes away: requests fail with a clear error within the timeout. */
START_TEST(stopped_target_times_out)
{
    uint64_t sizes[] = { 16 * MiB };
    struct keel_lab_tgtd *t = start_tgtd(sizes, 1, NULL, NULL);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    struct keel_io_opts o = short_opts(2000);
    char buf[4096];
    uint64_t t0, elapsed_ms;
    char *prefix;

    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), &o, &dev, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_blockdev_pread(dev, buf, 4096, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_kill(t, &err) == 0, "%s", err.msg);
    t0 = keel_now_ns();
    ck_assert_int_eq(keel_blockdev_pread(dev, buf, 4096, 8192, &err), -1);
    elapsed_ms = (keel_now_ns() - t0) / KEEL_NS_PER_MS;
    ck_assert_int_eq(err.code, KEEL_E_TIMEOUT);
    prefix = keel_strdup_printf("%s: READ(16) at LBA 16 (8 blocks): timed out after ",
                                keel_lab_tgtd_lun_url(t, 0, 1));
    ck_assert_msg(strncmp(err.msg, prefix, strlen(prefix)) == 0, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "last error: ") != NULL, "%s", err.msg);
    free(prefix);
    /* Within the configured 2 s, give or take the poll granularity. */
    ck_assert_msg(elapsed_ms <= 2000 + 1500, "took %llu ms", (unsigned long long)elapsed_ms);
    /* A stalled target (SIGSTOP) is the same for the caller. */
    ck_assert_msg(keel_lab_tgtd_restart(t, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_blockdev_pread(dev, buf, 4096, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_signal(t, SIGSTOP, &err) == 0, "%s", err.msg);
    t0 = keel_now_ns();
    ck_assert_int_eq(keel_blockdev_pwrite(dev, buf, 4096, 0, &err), -1);
    elapsed_ms = (keel_now_ns() - t0) / KEEL_NS_PER_MS;
    ck_assert_int_eq(err.code, KEEL_E_TIMEOUT);
    ck_assert_msg(elapsed_ms <= 2000 + 1500, "took %llu ms", (unsigned long long)elapsed_ms);
    ck_assert_msg(keel_lab_tgtd_signal(t, SIGCONT, &err) == 0, "%s", err.msg);
    /* And once it answers again, so does the device. */
    ck_assert_msg(keel_blockdev_pread(dev, buf, 4096, 0, &err) == 0, "%s", err.msg);
    keel_blockdev_close(dev);
    keel_lab_tgtd_stop(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io_iscsi");
    TCase *tc = tcase_create("io_iscsi");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    keel_lab_require("tgtadm");
    keel_lab_require("iscsi-ls");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, pattern_roundtrip);
    tcase_add_test(tc, thin_lun_status_and_zeroes);
    tcase_add_test(tc, chap_login);
    tcase_add_test(tc, discovery_inventory);
    tcase_add_test(tc, bad_urls_and_missing_targets);
    tcase_add_test(tc, stopped_target_times_out);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
