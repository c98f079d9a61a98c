/*
 * Unit tests of volume/qcow2: Keel's images against qemu-img's own, on
 * local files.  qemu-img is the judge: the bytes qemu-img create writes
 * for the same parameters, `qemu-img check`, `qemu-img info`, and qemu-io
 * writing into a child.  (No server needed: qemu-img is a local tool.)
 */
#include <check.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "volume/qcow2.h"

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define PARENT "11111111-bbbb-4bbb-8bbb-000000000001"

static char dir[] = "/tmp/keel-qcow2-XXXXXX";

/* Run a shell command; its stdout (caller frees) and exit status. */
static char *sh(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *sh(int *status, const char *fmt, ...)
{
    char cmd[2048], *out = calloc(1, 65536);
    size_t n = 0;
    va_list ap;
    FILE *p;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "%s", cmd);
    while (n < 65535) {
        size_t r = fread(out + n, 1, 65535 - n, p);

        if (r == 0)
            break;
        n += r;
    }
    *status = pclose(p);
    return out;
}

static void sh_ok(const char *what, const char *cmd)
{
    int st;
    char *out = sh(&st, "%s 2>&1", cmd);

    ck_assert_msg(st == 0, "%s: %s failed: %s", what, cmd, out);
    free(out);
}

/* Keel writes an image into a new sparse file of `fsize` bytes at `offset`. */
static char *keel_image(const char *name, uint64_t fsize, uint64_t offset,
                        const struct keel_qcow2_opts *o)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    char *path = keel_strdup_printf("%s/%s", dir, name), *url;
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);

    ck_assert(fd >= 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)fsize), 0);
    close(fd);
    url = keel_strdup_printf("file://%s", path);
    ck_assert_msg(keel_blockdev_open(url, NULL, &dev, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_qcow2_create(dev, offset, o, &err) == 0, "%s", err.msg);
    keel_blockdev_close(dev);
    free(url);
    return path;
}

/* Equal bytes, the shorter file read as zero-extended. */
static void same_bytes(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    long off = 0;

    ck_assert(fa != NULL && fb != NULL);
    for (;;) {
        int ca = fgetc(fa), cb = fgetc(fb);

        if (ca == EOF && cb == EOF)
            break;
        ck_assert_msg((ca == EOF ? 0 : ca) == (cb == EOF ? 0 : cb),
                      "%s and %s differ at byte %ld", a, b, off);
        off++;
    }
    fclose(fa);
    fclose(fb);
}

static void checked_setup(void)
{
    int st = system("command -v qemu-img >/dev/null && command -v qemu-io >/dev/null");

    if (st != 0) {
        fprintf(stderr, "qemu-img/qemu-io missing (Debian qemu-utils)\n");
        exit(getenv("CI") && strcmp(getenv("CI"), "true") == 0 ? 1 : 77);
    }
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

START_TEST(same_as_qemu_img)
{
    static const struct { uint64_t size; unsigned version; const char *backing, *fmt; } cases[] = {
        { GIB, 3, NULL, NULL },
        { GIB, 3, PARENT, "qcow2" },
        { 3 * GIB, 2, PARENT, "raw" },
        { 5 * 1024 * GIB, 3, NULL, NULL },   /* L1 over two clusters */
        { 10 * GIB + 512, 3, PARENT, "raw" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct keel_qcow2_opts o = { .size = cases[i].size, .version = cases[i].version,
                                     .backing_file = cases[i].backing,
                                     .backing_format = cases[i].fmt };
        char name[32], *mine, *theirs = keel_strdup_printf("%s/qemu-%zu", dir, i), cmd[1024];
        uint64_t msize = keel_qcow2_metadata_size(o.size);

        snprintf(name, sizeof(name), "keel-%zu", i);
        mine = keel_image(name, msize, 0, &o);
        snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 -o compat=%s %s%s%s%s %s %llu",
                 cases[i].version == 2 ? "0.10" : "1.1", cases[i].backing ? "-u -b " : "",
                 cases[i].backing ? cases[i].backing : "", cases[i].backing ? " -F " : "",
                 cases[i].backing ? cases[i].fmt : "", theirs,
                 (unsigned long long)cases[i].size);
        sh_ok("qemu-img create", cmd);
        same_bytes(mine, theirs);
        /* The parent does not exist here: check the image alone. */
        snprintf(cmd, sizeof(cmd), "qemu-img check -q 'json:{\"driver\":\"qcow2\","
                 "\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}'",
                 mine);
        sh_ok("qemu-img check", cmd);
        free(mine);
        free(theirs);
    }
}
END_TEST

START_TEST(read_back)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_qcow2_opts o = { .size = 7 * GIB, .backing_file = PARENT,
                                 .backing_format = "qcow2" };
    struct keel_blockdev *dev = NULL;
    struct keel_qcow2_info in;
    char *path = keel_image("rb", keel_qcow2_metadata_size(o.size), 0, &o), *url;

    url = keel_strdup_printf("file://%s", path);
    ck_assert_msg(keel_blockdev_open(url, NULL, &dev, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_qcow2_read_header(dev, 0, &in, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(in.version, 3);
    ck_assert_uint_eq(in.size, 7 * GIB);
    ck_assert_str_eq(in.backing_file, PARENT);
    ck_assert_str_eq(in.backing_format, "qcow2");
    /* Grow in place: qemu-img sees the new size and a clean image. */
    ck_assert_msg(keel_qcow2_resize(dev, 0, 100 * GIB, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_qcow2_resize(dev, 0, GIB, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_int_eq(keel_qcow2_resize(dev, 0, 5 * 1024 * GIB, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_UNSUPPORTED);
    keel_blockdev_close(dev);
    {
        int st;
        char *out = sh(&st, "qemu-img info -U --output=json %s", path);

        ck_assert_int_eq(st, 0);
        ck_assert_msg(strstr(out, "\"virtual-size\": 107374182400") != NULL, "%s", out);
        ck_assert_msg(strstr(out, "\"backing-filename\": \"" PARENT "\"") != NULL, "%s", out);
        ck_assert_msg(strstr(out, "\"backing-filename-format\": \"qcow2\"") != NULL, "%s", out);
        free(out);
    }
    {
        char cmd[512];

        snprintf(cmd, sizeof(cmd), "qemu-img check -q 'json:{\"driver\":\"qcow2\","
                 "\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}'",
                 path);
        sh_ok("check after resize", cmd);
    }
    free(url);
    free(path);
}
END_TEST

/* An image inside a bigger "LUN" file at an offset, as on a block domain. */
START_TEST(at_an_offset_and_usable)
{
    struct keel_qcow2_opts base = { .size = GIB };
    struct keel_qcow2_opts child = { .size = GIB, .backing_file = "base",
                                     .backing_format = "qcow2" };
    char *lun = keel_image("lun", 64 * MIB, 16 * MIB, &base), cmd[2048], *b, *c;
    int st;
    char *out;

    snprintf(cmd, sizeof(cmd),
             "qemu-img check -q 'json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"raw\","
             "\"offset\":%llu,\"size\":%llu,\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}}'",
             (unsigned long long)(16 * MIB), (unsigned long long)(32 * MIB), lun);
    sh_ok("check at an offset", cmd);
    /* A base and a child written by Keel; qemu-io writes through the child. */
    b = keel_image("base", 4 * MIB, 0, &base);
    c = keel_image("child", 4 * MIB, 0, &child);
    snprintf(cmd, sizeof(cmd), "cd %s && qemu-io -f qcow2 -c 'write -P 0x5a 0 64k' "
             "-c 'write -P 0x33 1M 128k' child", dir);
    sh_ok("qemu-io write", cmd);
    snprintf(cmd, sizeof(cmd), "cd %s && qemu-img check -q child && qemu-img check -q base", dir);
    sh_ok("check after writes", cmd);
    out = sh(&st, "cd %s && qemu-io -f qcow2 -c 'read -P 0x5a 0 64k' -c 'read -P 0 64k 64k' "
                  "-c 'read -P 0x33 1M 128k' child 2>&1", dir);
    ck_assert_msg(st == 0 && strstr(out, "Pattern verification failed") == NULL, "%s", out);
    free(out);
    out = sh(&st, "cd %s && qemu-img info --backing-chain child 2>&1", dir);
    ck_assert_msg(st == 0 && strstr(out, "backing file: base") != NULL, "%s", out);
    free(out);
    free(lun);
    free(b);
    free(c);
}
END_TEST

START_TEST(decode_refusals)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_qcow2_opts o = { .size = GIB, .backing_file = PARENT, .backing_format = "raw" };
    unsigned char *c = calloc(1, 65536);
    struct keel_qcow2_info in;

    ck_assert_int_eq(keel_qcow2_header_encode(&o, c, &err), 0);
    ck_assert_int_eq(keel_qcow2_header_decode(c, 65536, &in, &err), 0);
    c[0] = 0;
    ck_assert_int_eq(keel_qcow2_header_decode(c, 65536, &in, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    ck_assert_str_eq(err.msg, "qcow2: bad magic");
    c[0] = 0x51;
    c[7] = 4;
    ck_assert_int_eq(keel_qcow2_header_decode(c, 65536, &in, &err), -1);
    ck_assert_str_eq(err.msg, "qcow2: unsupported version 4");
    c[7] = 3;
    c[39] = 1; /* l1_size 1: too small for 1 GiB */
    ck_assert_int_eq(keel_qcow2_header_decode(c, 65536, &in, &err), -1);
    ck_assert_str_eq(err.msg, "qcow2: L1 table of 1 entries is too small for 1073741824 bytes");
    c[39] = 2;
    c[79] = 0x20; /* an unknown incompatible feature */
    ck_assert_int_eq(keel_qcow2_header_decode(c, 65536, &in, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_UNSUPPORTED);
    c[79] = 0;
    c[19] = 0xff; /* backing name of 255 bytes: past its place? still inside; make it huge */
    c[18] = 0xff;
    ck_assert_int_eq(keel_qcow2_header_decode(c, 65536, &in, &err), -1);
    ck_assert_str_eq(err.msg, "qcow2: backing file name outside the header cluster");
    o.backing_format = NULL;
    ck_assert_int_eq(keel_qcow2_header_encode(&o, c, &err), -1);
    ck_assert_str_eq(err.msg, "qcow2: a backing file needs its format");
    o.size = 1000;
    ck_assert_int_eq(keel_qcow2_header_encode(&o, c, &err), -1);
    free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qcow2");
    TCase *tc = tcase_create("qcow2");
    SRunner *sr;
    int failed;

    checked_setup();
    tcase_add_test(tc, same_as_qemu_img);
    tcase_add_test(tc, read_back);
    tcase_add_test(tc, at_an_offset_and_usable);
    tcase_add_test(tc, decode_refusals);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    {
        char cmd[256];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", dir);
    }
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
