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
#include <sys/wait.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/faulty.h"
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

static struct keel_blockdev *open_dev(const char *path)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    char *url = keel_strdup_printf("file://%s", path);

    ck_assert_msg(keel_blockdev_open(url, NULL, &dev, &err) == 0, "%s", err.msg);
    free(url);
    return dev;
}

/* Keel grows the image in the file at path (offset 0) to size. */
static void keel_resize(const char *path, uint64_t size)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = open_dev(path);

    ck_assert_msg(keel_qcow2_resize_in(dev, 0, keel_blockdev_size(dev), size, &err) == 0, "%s",
                  err.msg);
    keel_blockdev_close(dev);
}

static void grow_file(const char *path, uint64_t size)
{
    ck_assert_int_eq(truncate(path, (off_t)size), 0);
}

/* `qemu-img info` of the image at path has `want` in its JSON. */
static void info_has(const char *path, const char *want)
{
    int st;
    char *out = sh(&st, "qemu-img info -U --output=json 'json:{\"driver\":\"qcow2\","
                        "\"backing\":null,\"file\":{\"driver\":\"file\","
                        "\"filename\":\"%s\"}}' 2>&1", path);

    ck_assert_msg(st == 0 && strstr(out, want) != NULL, "no %s in %s", want, out);
    free(out);
}

static void checked(const char *what, const char *path)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), "qemu-img check -q 'json:{\"driver\":\"qcow2\","
             "\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}'",
             path);
    sh_ok(what, cmd);
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
    /* Past the L1 table's cluster: the table moves, into room the file lacks. */
    {
        uint64_t need = 1;
        char want[512];

        ck_assert_int_eq(keel_qcow2_resize_space(dev, 0, 200 * GIB, &need, &err), 0);
        ck_assert_uint_eq(need, 0);
        ck_assert_int_eq(keel_qcow2_resize_space(dev, 0, 5 * 1024 * GIB, &need, &err), 0);
        ck_assert_uint_eq(need, 6 * 65536);
        /* Without the volume's size, no cluster is allocated. */
        ck_assert_int_eq(keel_qcow2_resize(dev, 0, 5 * 1024 * GIB, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_UNSUPPORTED);
        snprintf(want, sizeof(want), "qcow2 at %s: growing to 5497558138880 bytes moves the L1 "
                 "table, and the size of the volume was not given", url);
        ck_assert_str_eq(err.msg, want);
        ck_assert_int_eq(keel_qcow2_resize_in(dev, 0, keel_blockdev_size(dev), 5 * 1024 * GIB,
                                              &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_NOSPC);
        snprintf(want, sizeof(want), "qcow2 at %s: growing to 5497558138880 bytes moves the L1 "
                 "table: the image needs 393216 bytes, it has 262144", url);
        ck_assert_str_eq(err.msg, want);
    }
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

static uint64_t file_size(const char *path)
{
    struct stat st;

    ck_assert_int_eq(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/*
 * Keel's resize against qemu-img resize's, byte for byte, where the L1
 * table has to move (qemu-img resize always moves it; Keel only when the
 * table's clusters are full, so the bytes can be compared only then).
 */
START_TEST(resize_as_qemu_img)
{
    static const struct { const char *opts, *io; uint64_t from, to; } cases[] = {
        /* Keel's own image: the table leaves cluster 3 for clusters 4-5. */
        { NULL, NULL, GIB, 5 * 1024 * GIB },
        /* qemu's, with data.  512-byte clusters and 64-bit refcounts: a
         * refcount block counts 64 clusters, so the new 32-cluster table
         * needs a new block (17k written) or not (34k). */
        { "-o cluster_size=512,refcount_bits=64", "write -P 0x11 0 17k", MIB, 64 * MIB },
        { "-o cluster_size=512,refcount_bits=64", "write -P 0x11 0 34k", MIB, 64 * MIB },
        { "-o cluster_size=512,refcount_bits=1",
          "write -P 0x22 0 300k' -c 'write -P 0x33 700k 200k", MIB, 64 * MIB },
        { "-o compat=0.10", "write -P 0x44 0 1M", GIB, 6 * 1024 * GIB },
        { "", NULL, 0, GIB },   /* size 0: no L1 table at all until now */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct keel_error err = KEEL_ERROR_INIT;
        struct keel_blockdev *dev;
        char *mine, *theirs = keel_strdup_printf("%s/rq-%zu", dir, i);
        char *raw = keel_strdup_printf("%s/rr-%zu", dir, i), cmd[1024], want[64];
        uint64_t need = 0;

        if (cases[i].opts == NULL) {
            struct keel_qcow2_opts o = { .size = cases[i].from };
            char name[32];

            snprintf(name, sizeof(name), "rk-%zu", i);
            mine = keel_image(name, keel_qcow2_metadata_size(o.size), 0, &o);
        } else {
            mine = keel_strdup_printf("%s/rk-%zu", dir, i);
            snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s %s %llu", cases[i].opts,
                     mine, (unsigned long long)cases[i].from);
            sh_ok("qemu-img create", cmd);
        }
        if (cases[i].io != NULL) {
            snprintf(cmd, sizeof(cmd), "qemu-io -f qcow2 -c '%s' %s", cases[i].io, mine);
            sh_ok("qemu-io write", cmd);
        }
        snprintf(cmd, sizeof(cmd), "qemu-img convert -f qcow2 -O raw %s %s && cp %s %s && "
                 "qemu-img resize -q -f qcow2 %s %llu", mine, raw, mine, theirs, theirs,
                 (unsigned long long)cases[i].to);
        sh_ok("qemu-img resize", cmd);
        /* Keel: how much room, then the resize. */
        dev = open_dev(mine);
        ck_assert_msg(keel_qcow2_resize_space(dev, 0, cases[i].to, &need, &err) == 0, "%s",
                      err.msg);
        keel_blockdev_close(dev);
        ck_assert_uint_gt(need, 0);
        if (need > file_size(mine))
            grow_file(mine, need);
        keel_resize(mine, cases[i].to);
        same_bytes(mine, theirs);
        checked("check after resize", mine);
        snprintf(want, sizeof(want), "\"virtual-size\": %llu", (unsigned long long)cases[i].to);
        info_has(mine, want);
        snprintf(cmd, sizeof(cmd), "qemu-img compare -q -f raw -F qcow2 %s %s", raw, mine);
        sh_ok("same data", cmd);
        free(mine);
        free(theirs);
        free(raw);
    }
}
END_TEST

/* A block volume: the image inside a bigger "LUN" file, grown in place and moved. */
START_TEST(resize_at_an_offset)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_qcow2_opts o = { .size = GIB, .backing_file = PARENT, .backing_format = "raw" };
    char *lun = keel_image("rlun", 64 * MIB, 16 * MIB, &o), spec[1024], cmd[1536];
    struct keel_blockdev *dev = open_dev(lun);
    struct keel_qcow2_info in;
    uint64_t need = 0;
    int st;
    char *out;

    snprintf(spec, sizeof(spec), "json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":{"
             "\"driver\":\"raw\",\"offset\":%llu,\"size\":%llu,\"file\":{\"driver\":\"file\","
             "\"filename\":\"%s\"}}}", (unsigned long long)(16 * MIB),
             (unsigned long long)(32 * MIB), lun);
    snprintf(cmd, sizeof(cmd), "qemu-io -c 'write -P 0x5a 0 64k' "
             "-c 'write -P 0x6b 1073676288 64k' '%s'", spec);
    sh_ok("qemu-io write at an offset", cmd);
    ck_assert_msg(keel_qcow2_resize(dev, 16 * MIB, 3 * 1024 * GIB, &err) == 0, "%s", err.msg);
    /* The LUN has room after the volume, but that is not the volume's. */
    ck_assert_int_eq(keel_qcow2_resize_in(dev, 16 * MIB, 4 * 65536, 5 * 1024 * GIB, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOSPC);
    ck_assert_msg(strstr(err.msg, " offset 16777216: growing to 5497558138880 bytes moves the L1 "
                         "table: the image needs ") != NULL, "%s", err.msg);
    ck_assert_msg(keel_qcow2_resize_space(dev, 16 * MIB, 5 * 1024 * GIB, &need, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_gt(need, 4 * 65536);
    ck_assert_uint_lt(need, 16 * MIB);
    ck_assert_msg(keel_qcow2_resize_in(dev, 16 * MIB, 32 * MIB, 5 * 1024 * GIB, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_qcow2_read_header(dev, 16 * MIB, &in, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(in.size, 5 * 1024 * GIB);
    ck_assert_uint_eq(in.l1_size, 10240);
    ck_assert_str_eq(in.backing_file, PARENT);
    ck_assert_str_eq(in.backing_format, "raw");
    keel_blockdev_close(dev);
    snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s'", spec);
    sh_ok("check at an offset after resize", cmd);
    /* The old data, zeros past the old size, and a write at 4 TiB (new L1 entries). */
    out = sh(&st, "qemu-io -c 'read -P 0x5a 0 64k' -c 'read -P 0x6b 1073676288 64k' "
                  "-c 'read -P 0 1073741824 64k' -c 'write -P 0x7c 4398046511104 64k' "
                  "-c 'read -P 0x7c 4398046511104 64k' '%s' 2>&1", spec);
    ck_assert_msg(st == 0 && strstr(out, "Pattern verification failed") == NULL &&
                  strstr(out, "error") == NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s'", spec);
    sh_ok("check after a write past the old size", cmd);
    free(lun);
}
END_TEST

START_TEST(resize_refusals)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_qcow2_opts o = { .size = GIB };
    char *path = keel_image("dirty", 8 * MIB, 0, &o), *bm, want[512], cmd[1024];
    struct keel_blockdev *dev;
    struct keel_qcow2_info in;
    unsigned char one = 1;
    int fd;

    /* Dirty (lazy refcounts): growing in place is fine, moving the table is not. */
    fd = open(path, O_WRONLY);
    ck_assert(fd >= 0 && pwrite(fd, &one, 1, 79) == 1);
    close(fd);
    dev = open_dev(path);
    ck_assert_msg(keel_qcow2_resize(dev, 0, 2 * GIB, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_qcow2_resize(dev, 0, 5 * 1024 * GIB, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_UNSUPPORTED);
    snprintf(want, sizeof(want), "qcow2 at file://%s: growing to 5497558138880 bytes moves the "
             "L1 table, but the image is dirty (refcounts not up to date: qemu-img check -r all "
             "repairs it)", path);
    ck_assert_str_eq(err.msg, want);
    /* Over qemu's L1 limit, or smaller. */
    ck_assert_int_eq(keel_qcow2_resize(dev, 0, KEEL_QCOW2_SIZE_MAX + 512, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    snprintf(want, sizeof(want), "qcow2 at file://%s: 2251799813685760 bytes is over qcow2's "
             "limit with 65536-byte clusters", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(keel_qcow2_resize(dev, 0, GIB, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_int_eq(keel_qcow2_read_header(dev, 0, &in, &err), 0);
    ck_assert_uint_eq(in.size, 2 * GIB);
    keel_blockdev_close(dev);
    /* Persistent bitmaps would have to grow with the size: refused. */
    bm = keel_strdup_printf("%s/bitmaps", dir);
    snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s 1G && "
             "qemu-img bitmap -q --add %s b0 2>&1 || qemu-img bitmap --add %s b0", bm, bm, bm);
    sh_ok("qemu-img bitmap", cmd);
    dev = open_dev(bm);
    ck_assert_int_eq(keel_qcow2_resize(dev, 0, 2 * GIB, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_UNSUPPORTED);
    snprintf(want, sizeof(want), "qcow2 at file://%s: cannot resize an image with persistent "
             "bitmaps (they would have to grow too)", bm);
    ck_assert_str_eq(err.msg, want);
    keel_blockdev_close(dev);
    checked("bitmaps untouched", bm);
    free(bm);
    free(path);
}
END_TEST

/* Extended L2 entries map half as much per L2 table: the L1 table says so. */
START_TEST(resize_extended_l2)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *path = keel_strdup_printf("%s/extl2", dir), cmd[512];
    struct keel_blockdev *dev;
    struct keel_qcow2_info in;

    snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 -o extended_l2=on %s 1T", path);
    sh_ok("qemu-img create", cmd);
    dev = open_dev(path);
    ck_assert_int_eq(keel_qcow2_read_header(dev, 0, &in, &err), 0);
    ck_assert_uint_eq(in.l1_size, 4096);
    /* qemu wrote the 4096 entries only: the file ends inside the table's cluster. */
    ck_assert_msg(keel_qcow2_resize(dev, 0, 2 * 1024 * GIB, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_qcow2_read_header(dev, 0, &in, &err), 0);
    ck_assert_uint_eq(in.l1_size, 8192);
    keel_blockdev_close(dev);
    checked("extended L2", path);
    info_has(path, "\"virtual-size\": 2199023255552");
    free(path);
}
END_TEST

/*
 * A crash at every write of a resize, each tear mode, writes buffered until
 * flushed: qemu-img check finds no corruption (leaks at most), the size is
 * the old or the new one and the data is intact.
 */
START_TEST(resize_crash_points)
{
    static const struct { const char *opts, *io; uint64_t from, to; } cases[] = {
        { "-o cluster_size=512,refcount_bits=64", "write -P 0x11 0 17k", MIB, 64 * MIB },
        { "", "write -P 0x22 0 64k", GIB, 5 * 1024 * GIB },
        { "", "write -P 0x33 1M 64k", GIB, 3 * 1024 * GIB },  /* in place */
    };
    static const enum keel_tear tears[] = { KEEL_TEAR_DROP, KEEL_TEAR_FULL, KEEL_TEAR_PREFIX,
                                            KEEL_TEAR_RANDOM };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *orig = keel_strdup_printf("%s/co-%zu", dir, i);
        char *raw = keel_strdup_printf("%s/cr-%zu", dir, i);
        char *img = keel_strdup_printf("%s/ci-%zu", dir, i), cmd[1024];
        unsigned n = 0;

        snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s %s %llu && "
                 "qemu-io -f qcow2 -c '%s' %s && truncate -s 4M %s && "
                 "qemu-img convert -f qcow2 -O raw %s %s", cases[i].opts, orig,
                 (unsigned long long)cases[i].from, cases[i].io, orig, orig, orig, raw);
        sh_ok("image with data", cmd);
        for (unsigned k = 0; k == 0 || k <= n; k++) {
            for (size_t t = 0; t < (k == 0 ? 1 : sizeof(tears) / sizeof(tears[0])); t++) {
                struct keel_fault_plan plan = { .crash_at = k, .tear = tears[t],
                                                .buffer_writes = true, .seed = k * 7 + t };
                struct keel_error err = KEEL_ERROR_INIT;
                struct keel_blockdev *dev, *fdev = NULL;
                struct keel_faulty *ctl = NULL;
                int rc, st;
                char *out;

                snprintf(cmd, sizeof(cmd), "cp %s %s", orig, img);
                sh_ok("copy", cmd);
                dev = open_dev(img);
                ck_assert_int_eq(keel_faulty_blockdev(dev, &plan, &fdev, &ctl, &err), 0);
                rc = keel_qcow2_resize_in(fdev, 0, keel_blockdev_size(fdev), cases[i].to, &err);
                if (k == 0) {
                    ck_assert_msg(rc == 0, "%s", err.msg);
                    n = keel_faulty_writes(ctl);
                    ck_assert_uint_gt(n, 1);
                } else {
                    ck_assert_msg(rc == -1 && err.code == KEEL_E_FAULT, "case %zu write %u: %s",
                                  i, k, err.msg);
                }
                keel_blockdev_close(fdev);
                /* 0: clean, 3: leaked clusters only. */
                out = sh(&st, "qemu-img check %s 2>&1", img);
                ck_assert_msg(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3),
                              "case %zu crash at write %u/%u, tear %zu: %s", i, k, n, t, out);
                free(out);
                out = sh(&st, "qemu-img info --output=json %s", img);
                ck_assert_msg(st == 0, "%s", out);
                {
                    char old[64], new[64];

                    snprintf(old, sizeof(old), "\"virtual-size\": %llu,",
                             (unsigned long long)cases[i].from);
                    snprintf(new, sizeof(new), "\"virtual-size\": %llu,",
                             (unsigned long long)cases[i].to);
                    ck_assert_msg(strstr(out, old) != NULL || strstr(out, new) != NULL,
                                  "case %zu write %u: %s", i, k, out);
                    ck_assert_msg(k != 0 || strstr(out, new) != NULL, "%s", out);
                }
                free(out);
                snprintf(cmd, sizeof(cmd), "qemu-img compare -q -f raw -F qcow2 %s %s", raw, img);
                sh_ok("data after a crash", cmd);
            }
        }
        free(orig);
        free(raw);
        free(img);
    }
}
END_TEST

START_TEST(decode_more)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_qcow2_opts o = { .size = KEEL_QCOW2_SIZE_MAX };
    unsigned char *c = calloc(1, 65536);
    struct keel_blockdev *dev;
    struct keel_qcow2_info in;
    char *path = keel_strdup_printf("%s/junk", dir), want[512], cmd[512];
    FILE *f;

    /* qemu's largest image with 64 KiB clusters, and not one sector more. */
    ck_assert_int_eq(keel_qcow2_header_encode(&o, c, &err), 0);
    ck_assert_int_eq(keel_qcow2_header_decode(c, 65536, &in, &err), 0);
    ck_assert_uint_eq(in.l1_size, 4194304);
    ck_assert_uint_eq(keel_qcow2_metadata_size(o.size), (3 + 512) * 65536);
    o.size += 512;
    ck_assert_int_eq(keel_qcow2_header_encode(&o, c, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_str_eq(err.msg, "qcow2: bad virtual size 2251799813685760");
    o.size = GIB;
    o.backing_file = PARENT;
    o.backing_format = "0123456789abcdef";   /* 16 bytes: qemu cannot open that */
    ck_assert_int_eq(keel_qcow2_header_encode(&o, c, &err), -1);
    ck_assert_str_eq(err.msg, "qcow2: a backing file needs its format");
    o.backing_format = "qcow2";
    ck_assert_int_eq(keel_qcow2_header_encode(&o, c, &err), 0);
    /* L1 over 32 MiB. */
    c[36] = 0x00, c[37] = 0x40, c[38] = 0x00, c[39] = 0x01;
    ck_assert_int_eq(keel_qcow2_header_decode(c, 65536, &in, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FORMAT);
    ck_assert_str_eq(err.msg, "qcow2: L1 table of 4194305 entries is over 32 MiB");
    c[37] = 0, c[39] = 2;
    /* Extended L2 entries with 4 KiB clusters. */
    c[23] = 12;
    c[79] = 0x10;
    ck_assert_int_eq(keel_qcow2_header_decode(c, 65536, &in, &err), -1);
    ck_assert_str_eq(err.msg, "qcow2: extended L2 entries need clusters of 16 KiB or more");
    c[23] = 16;
    c[79] = 0;
    /* No refcount table. */
    c[59] = 0;
    ck_assert_int_eq(keel_qcow2_header_decode(c, 65536, &in, &err), -1);
    ck_assert_str_eq(err.msg, "qcow2: refcount table of 0 clusters");
    c[59] = 1;
    /* A backing format of 16 bytes. */
    ck_assert_int_eq(c[112 + 7], 5);
    c[112 + 7] = 16;
    ck_assert_int_eq(keel_qcow2_header_decode(c, 65536, &in, &err), -1);
    ck_assert_str_eq(err.msg, "qcow2: bad backing format");
    c[112 + 7] = 5;
    ck_assert_int_eq(keel_qcow2_header_decode(c, 65536, &in, &err), 0);
    free(c);
    /* Errors of read_header name the image, and its offset inside a LUN. */
    f = fopen(path, "wb");
    ck_assert(f != NULL);
    for (int i = 0; i < 8192; i++)
        fputc(i % 251, f);
    fclose(f);
    dev = open_dev(path);
    ck_assert_int_eq(keel_qcow2_read_header(dev, 0, &in, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    snprintf(want, sizeof(want), "qcow2 at file://%s: bad magic", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(keel_qcow2_read_header(dev, 4096, &in, &err), -1);
    snprintf(want, sizeof(want), "qcow2 at file://%s offset 4096: bad magic", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(keel_qcow2_read_header(dev, 8192, &in, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FORMAT);
    snprintf(want, sizeof(want), "qcow2 at file://%s offset 8192: no header (the device ends "
             "there)", path);
    ck_assert_str_eq(err.msg, want);
    keel_blockdev_close(dev);
    /* An empty image has no L1 table: offset 0 is fine then. */
    snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s 0", path);
    sh_ok("qemu-img create", cmd);
    dev = open_dev(path);
    ck_assert_msg(keel_qcow2_read_header(dev, 0, &in, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(in.size, 0);
    ck_assert_uint_eq(in.l1_size, 0);
    ck_assert_uint_eq(in.l1_offset, 0);
    keel_blockdev_close(dev);
    free(path);
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
    tcase_add_test(tc, resize_as_qemu_img);
    tcase_add_test(tc, resize_at_an_offset);
    tcase_add_test(tc, resize_refusals);
    tcase_add_test(tc, resize_extended_l2);
    tcase_add_test(tc, resize_crash_points);
    tcase_add_test(tc, decode_more);
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
