/*
 * The copy engine (volume/copy.h, volume/qcow2_map.h) against qemu: qcow2
 * chains made and written by qemu-img and qemu-io in a temporary
 * directory -- a smaller base than the top, data, zero clusters (written
 * and over a backing's data), discards, holes -- are copied collapsed into
 * raw files through io/'s file:// devices, and `qemu-img compare` of the
 * chain's top and the copy must say identical:
 *   - into a new sparse file (zero ranges skipped) and into a file full of
 *     old bytes (zero ranges written), with read-back verification;
 *   - into a new qcow2 image, sized by measure: qemu-img check is clean;
 *   - layer by layer, each its own qcow2 image over the copy of its
 *     backing: the copied chain compares identical (zero clusters over a
 *     backing's data kept), qemu-img info shows the chain;
 *   - from a chain whose base is raw;
 *   - zero data found in what is read: a raw source with zero runs into a
 *     new file (skipped), a used file and an LV of old bytes (zeroed), the
 *     stats naming exactly the runs; qcow2 data clusters of zeroes left
 *     out of a collapsed qcow2 copy, and kept as zero clusters over a
 *     backing file in a layer copy;
 *   - cancelled half way: KEEL_E_CANCELLED, the source unchanged;
 *   - a compressed cluster is refused, naming it;
 *   - between storage domains: the chain imported layer by layer into
 *     volumes of an NFS domain (nfs-ganesha), copied layer by layer into
 *     volumes of a block domain (tgtd LUN), each made LEGAL after its copy,
 *     then collapsed from block into a raw volume on NFS: qemu-img compare
 *     of qemu's chain and that raw volume says identical, qemu-img check
 *     accepts each block layer, lvm2 agrees with the VG; a copy into a
 *     block volume cancelled half way leaves it ILLEGAL and deletable;
 *   - a copy from a LUN while tgtd is restarted under it completes, and
 *     the copy is the LUN's bytes (or it fails cleanly: never success
 *     with other data).
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "tests/functional/lvm_judge.h"
#include "tests/harness/lab.h"
#include "volume/copy.h"
#include "volume/vol.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)

static char *dir;

static char *path(const char *name)
{
    return keel_strdup_printf("%s/%s", dir, name);
}

static void run(const char *const argv[])
{
    struct keel_error err = KEEL_ERROR_INIT;

    ck_assert_msg(keel_lab_run_ok(argv, NULL, NULL, &err) == 0, "%s", err.msg);
}

static void qemu_io(const char *img, const char *cmd)
{
    const char *argv[] = { "qemu-io", "-f", "qcow2", "-c", cmd, img, NULL };

    run(argv);
}

/*
 * base (qcow2 32 MiB, or raw) <- mid (64 MiB) <- top (64 MiB), written so
 * that every kind of range shows up somewhere.
 */
static void make_chain(bool raw_base)
{
    char *base = path("base"), *mid = path("mid"), *top = path("top");

    if (raw_base) {
        const char *c[] = { "qemu-img", "create", "-f", "raw", base, "32M", NULL };
        const char *w[] = { "qemu-io", "-f", "raw", "-c", "write -P 0x11 0 4M", "-c",
                            "write -P 0x12 10M 1M", base, NULL };

        run(c);
        run(w);
    } else {
        const char *c[] = { "qemu-img", "create", "-f", "qcow2", base, "32M", NULL };

        run(c);
        qemu_io(base, "write -P 0x11 0 4M");
        qemu_io(base, "write -P 0x12 10M 1M");
        qemu_io(base, "write -z 20M 2M");
    }
    {
        const char *c[] = { "qemu-img", "create", "-f", "qcow2", "-b", base, "-F",
                            raw_base ? "raw" : "qcow2", mid, "64M", NULL };

        run(c);
    }
    qemu_io(mid, "write -P 0x21 2M 3M");
    qemu_io(mid, "write -z 10M 512k");
    qemu_io(mid, "discard 0 64k");
    qemu_io(mid, "write -P 0x22 40M 64k");
    {
        const char *c[] = { "qemu-img", "create", "-f", "qcow2", "-b", mid, "-F", "qcow2", top,
                            "64M", NULL };

        run(c);
    }
    qemu_io(top, "write -P 0x31 30M 5M");
    qemu_io(top, "write -P 0x32 63M 1M");
    qemu_io(top, "write -P 0x33 2M 4k");
    free(base);
    free(mid);
    free(top);
}

struct opened {
    struct keel_blockdev *dev[3];
    struct keel_copy_layer l[3];
};

static void open_chain(struct opened *o, bool raw_base)
{
    static const char *const names[] = { "top", "mid", "base" };
    struct keel_error err = KEEL_ERROR_INIT;

    for (int i = 0; i < 3; i++) {
        char *p = path(names[i]), *url = keel_strdup_printf("file://%s", p);
        struct stat st;

        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_msg(keel_blockdev_open(url, NULL, &o->dev[i], &err) == 0, "%s", err.msg);
        o->l[i] = (struct keel_copy_layer){ .dev = o->dev[i], .offset = 0,
                                            .size = (uint64_t)st.st_size,
                                            .qcow2 = !(raw_base && i == 2) };
        free(url);
        free(p);
    }
}

static void close_chain(struct opened *o)
{
    for (int i = 0; i < 3; i++)
        keel_blockdev_close(o->dev[i]);
}

static struct keel_blockdev *dest_sized(const char *name, uint64_t size);

/* A destination file of 64 MiB: sparse, or full of 0xee bytes. */
static struct keel_blockdev *dest(const char *name, bool garbage)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *d = dest_sized(name, 64 * MiB);
    unsigned char *buf = malloc(MiB);

    memset(buf, 0xee, MiB);
    for (uint64_t off = 0; garbage && off < 64 * MiB; off += MiB)
        ck_assert_msg(keel_blockdev_pwrite(d, buf, MiB, off, &err) == 0, "%s", err.msg);
    free(buf);
    return d;
}

/* A new sparse destination file of `size` bytes. */
static struct keel_blockdev *dest_sized(const char *name, uint64_t size)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *p = path(name), *url = keel_strdup_printf("file://%s", p);
    struct keel_blockdev *d = NULL;
    int fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0644);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
    close(fd);
    ck_assert_msg(keel_blockdev_open(url, NULL, &d, &err) == 0, "%s", err.msg);
    free(url);
    free(p);
    return d;
}

static void expect_identical(const char *name)
{
    char *top = path("top"), *copy = path(name);
    const char *argv[] = { "qemu-img", "compare", "-f", "qcow2", "-F", "raw", top, copy, NULL };

    run(argv);
    free(top);
    free(copy);
}

static void setup(void)
{
    struct keel_error err = KEEL_ERROR_INIT;

    dir = keel_lab_tmpdir("copy", &err);
    ck_assert_msg(dir != NULL, "%s", err.msg);
}

static void teardown(void)
{
    keel_lab_tmpdir_remove(dir);
    free(dir);
}

START_TEST(collapse_qcow2_chain)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct opened o;
    struct keel_copy_stats st;
    struct keel_copy_opts opts = { .inflight = 8, .chunk = MiB, .verify = true };

    make_chain(false);
    open_chain(&o, false);
    for (int g = 0; g < 2; g++) {
        struct keel_blockdev *d = dest(g ? "old.raw" : "new.raw", g == 1);
        struct keel_copy_dst dst = { .dev = d, .size = 64 * MiB, .reads_zero = g == 0 };

        ck_assert_msg(keel_copy_to_raw(o.l, 3, &dst, &opts, &st, &err) == 0, "%s", err.msg);
        keel_blockdev_close(d);
        expect_identical(g ? "old.raw" : "new.raw");
        ck_assert_uint_eq(st.size, 64 * MiB);
        ck_assert_uint_eq(st.data + st.zeroed + st.skipped, 64 * MiB);
        /* Exactly the chain's data: top 5 MiB + 1 MiB + 64 KiB; mid 3 MiB less top's
         * 64 KiB at 2 MiB, + 64 KiB; base 2 MiB less the discarded 64 KiB, + 0.5 MiB
         * (mid zeroed the first half of 10-11 MiB) = 11.5 MiB. */
        ck_assert_uint_eq(st.data, 11 * MiB + MiB / 2);
        if (g == 0)
            ck_assert_uint_eq(st.zeroed, 0);
        else
            ck_assert_uint_eq(st.skipped, 0);
        fprintf(stderr, "test_copy: into a %s file: %llu MiB data, %llu MiB zeroed, %llu MiB "
                        "skipped\n", g ? "used" : "new", (unsigned long long)(st.data / MiB),
                (unsigned long long)(st.zeroed / MiB), (unsigned long long)(st.skipped / MiB));
    }
    close_chain(&o);
}
END_TEST

/* Into a new qcow2 image: qemu-img check is clean, compare says identical. */
START_TEST(collapse_to_qcow2)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct opened o;
    struct keel_blockdev *d = NULL;
    struct keel_copy_stats st;
    struct keel_copy_opts opts = { .verify = true };
    uint64_t need = 0;
    char *p = path("copy.qcow2"), *url = keel_strdup_printf("file://%s", p), *top = path("top");
    int fd;

    make_chain(false);
    open_chain(&o, false);
    ck_assert_msg(keel_copy_measure_qcow2(o.l, 3, &need, &err) == 0, "%s", err.msg);
    /* header, refcount table and block, L1, 184 data clusters (11.5 MiB), 1 L2 table */
    ck_assert_uint_eq(need, (4 + 184 + 1) * (64 << 10));
    fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)need), 0);
    close(fd);
    ck_assert_msg(keel_blockdev_open(url, NULL, &d, &err) == 0, "%s", err.msg);
    {
        struct keel_copy_dst dst = { .dev = d, .size = need };

        ck_assert_msg(keel_copy_to_qcow2(o.l, 3, &dst, &opts, &st, &err) == 0, "%s", err.msg);
    }
    keel_blockdev_close(d);
    close_chain(&o);
    ck_assert_uint_eq(st.data, 11 * MiB + MiB / 2);
    {
        const char *chk[] = { "qemu-img", "check", "-f", "qcow2", p, NULL };
        const char *cmp[] = { "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", top, p, NULL };

        run(chk);
        run(cmp);
    }
    free(p);
    free(url);
    free(top);
}
END_TEST

/* Layer by layer: base2 <- mid2 <- top2, each its own image; the chains compare identical. */
START_TEST(preserve_chain)
{
    static const char *const names[] = { "base2", "mid2", "top2" };
    struct keel_error err = KEEL_ERROR_INIT;
    struct opened o;

    make_chain(false);
    open_chain(&o, false);
    for (int i = 0; i < 3; i++) {
        const struct keel_copy_layer *l = &o.l[2 - i];  /* bottom first */
        char *p = path(names[i]), *url = keel_strdup_printf("file://%s", p);
        struct keel_blockdev *d = NULL;
        struct keel_copy_stats st;
        uint64_t need = 0;
        int fd;

        ck_assert_msg(keel_copy_measure_layer_qcow2(l, &need, &err) == 0, "%s", err.msg);
        fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, (off_t)need), 0);
        close(fd);
        ck_assert_msg(keel_blockdev_open(url, NULL, &d, &err) == 0, "%s", err.msg);
        {
            struct keel_copy_dst dst = { .dev = d, .size = need };

            ck_assert_msg(keel_copy_layer_to_qcow2(l, i ? names[i - 1] : NULL,
                                                   i ? "qcow2" : NULL, &dst, NULL, &st,
                                                   &err) == 0, "%s", err.msg);
        }
        keel_blockdev_close(d);
        {
            const char *chk[] = { "qemu-img", "check", "-f", "qcow2", p, NULL };

            run(chk);
        }
        free(p);
        free(url);
    }
    close_chain(&o);
    {
        char *top = path("top"), *top2 = path("top2"), *mid = path("mid"), *mid2 = path("mid2");
        const char *cmp[] = { "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", top, top2,
                              NULL };
        const char *cmp2[] = { "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", mid, mid2,
                               NULL };
        const char *info[] = { "qemu-img", "info", "--backing-chain", top2, NULL };
        struct keel_error e = KEEL_ERROR_INIT;
        char *out = NULL;

        run(cmp);
        run(cmp2);
        ck_assert_msg(keel_lab_run_ok(info, NULL, &out, &e) == 0, "%s", e.msg);
        ck_assert_msg(strstr(out, "backing file: mid2") && strstr(out, "backing file: base2"),
                      "%s", out);
        free(out);
        free(top);
        free(top2);
        free(mid);
        free(mid2);
    }
}
END_TEST

START_TEST(collapse_over_raw_base)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct opened o;
    struct keel_blockdev *d;
    struct keel_copy_dst dst = { .size = 64 * MiB };
    struct keel_copy_opts opts = { .verify = true };

    make_chain(true);
    open_chain(&o, true);
    d = dest("copy.raw", true);
    dst.dev = d;
    ck_assert_msg(keel_copy_to_raw(o.l, 3, &dst, &opts, NULL, &err) == 0, "%s", err.msg);
    keel_blockdev_close(d);
    close_chain(&o);
    expect_identical("copy.raw");
}
END_TEST

/*
 * Zero data in what is read: a raw source of ZSIZE bytes of random data
 * with zero runs written into it (zeroes, not holes: a raw layer is all
 * data to the resolver).  The engine looks at 4 KiB blocks and takes a
 * zero run of its own from 64 KiB on (or a whole read); it reads 1 MiB
 * chunks here, so a run is cut at chunk boundaries.  `found` is what the
 * engine must skip or zero of each run.
 */
#define ZSIZE (16 * MiB)

static const struct {
    uint64_t off, len, found;
} zruns[] = {
    { 1 * MiB, 2 * MiB, 2 * MiB },                      /* two whole chunks */
    { 3 * MiB + 4 * KiB, 32 * KiB, 0 },                 /* too short: written as data */
    { 5 * MiB + 512 * KiB, 1664 * KiB, 1664 * KiB },    /* across chunks: 512K + 1M + 128K */
    { 9 * MiB + 256 * KiB, 64 * KiB, 64 * KiB },        /* exactly the minimum, inside data */
    { 10 * MiB + 256 * KiB, 60 * KiB, 0 },              /* just short of it */
    { 12 * MiB - 32 * KiB, 128 * KiB, 96 * KiB },       /* 32K at a chunk's end stays data */
    { 13 * MiB, 32 * KiB, 0 },                          /* and 32K at a chunk's start */
    { 14 * MiB, 2 * MiB, 2 * MiB },                     /* the tail */
};

static uint64_t zruns_found(void)
{
    uint64_t n = 0;

    for (size_t i = 0; i < sizeof(zruns) / sizeof(zruns[0]); i++)
        n += zruns[i].found;
    return n;
}

/* Write the raw source `name`; its bytes are returned (the caller frees them). */
static unsigned char *make_zraw(const char *name)
{
    unsigned char *img = malloc(ZSIZE);
    uint64_t x = 0x2545f4914f6cdd1dull;
    char *p = path(name);
    FILE *f;

    ck_assert(img != NULL);
    for (size_t i = 0; i < ZSIZE; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(img + i, &x, 8);
    }
    for (size_t i = 0; i < sizeof(zruns) / sizeof(zruns[0]); i++)
        memset(img + zruns[i].off, 0, zruns[i].len);
    f = fopen(p, "wb");
    ck_assert(f != NULL);
    ck_assert_uint_eq(fwrite(img, 1, ZSIZE, f), ZSIZE);
    ck_assert_int_eq(fclose(f), 0);
    free(p);
    return img;
}

/* The 64 KiB clusters of img[0, size) that hold a non-zero byte. */
static uint64_t data_clusters(const unsigned char *img, uint64_t size)
{
    uint64_t n = 0;

    for (uint64_t c = 0; c < size; c += 64 * KiB)
        for (uint64_t i = c; i < c + 64 * KiB && i < size; i++)
            if (img[i] != 0) {
                n++;
                break;
            }
    return n;
}

static struct keel_blockdev *open_file(const char *name)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *p = path(name), *url = keel_strdup_printf("file://%s", p);
    struct keel_blockdev *d = NULL;

    ck_assert_msg(keel_blockdev_open(url, NULL, &d, &err) == 0, "%s", err.msg);
    free(url);
    free(p);
    return d;
}

static void compare_files(const char *fmt_a, const char *a, const char *fmt_b, const char *b)
{
    char *pa = path(a), *pb = path(b);
    const char *argv[] = { "qemu-img", "compare", "-f", fmt_a, "-F", fmt_b, pa, pb, NULL };

    run(argv);
    free(pa);
    free(pb);
}

/*
 * A raw source with zero runs into a new sparse file (the runs skipped)
 * and into a file full of old bytes (the runs written as zeroes): the
 * stats name exactly the runs, verification passes, and qemu-img compare
 * says identical -- so over old bytes the runs read back as zeroes.
 */
START_TEST(raw_zero_runs)
{
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char *img = make_zraw("zsrc.raw");
    struct keel_blockdev *s = open_file("zsrc.raw");
    struct keel_copy_layer l = { .dev = s, .size = ZSIZE };
    struct keel_copy_opts opts = { .inflight = 4, .chunk = MiB, .verify = true };
    uint64_t z = zruns_found();

    for (int g = 0; g < 2; g++) {
        const char *name = g ? "zold.raw" : "znew.raw";
        struct keel_blockdev *d = dest_sized(name, ZSIZE);
        struct keel_copy_dst dst = { .dev = d, .size = ZSIZE, .reads_zero = g == 0 };
        struct keel_copy_stats st;

        if (g == 1) {
            unsigned char *old = malloc(ZSIZE);

            memset(old, 0xee, ZSIZE);
            ck_assert_msg(keel_blockdev_pwrite(d, old, ZSIZE, 0, &err) == 0, "%s", err.msg);
            free(old);
        }
        ck_assert_msg(keel_copy_to_raw(&l, 1, &dst, &opts, &st, &err) == 0, "%s", err.msg);
        keel_blockdev_close(d);
        compare_files("raw", "zsrc.raw", "raw", name);
        ck_assert_uint_eq(st.size, ZSIZE);
        ck_assert_uint_eq(st.data, ZSIZE - z);
        ck_assert_uint_eq(st.read, ZSIZE); /* a file without holes: all of it is read */
        ck_assert_uint_eq(g ? st.zeroed : st.skipped, z);
        ck_assert_uint_eq(g ? st.skipped : st.zeroed, 0);
        fprintf(stderr, "test_copy: a raw source with %llu KiB of zero runs into a %s file: "
                        "%llu KiB data, %llu KiB zeroed, %llu KiB skipped\n",
                (unsigned long long)(z / KiB), g ? "used" : "new",
                (unsigned long long)(st.data / KiB), (unsigned long long)(st.zeroed / KiB),
                (unsigned long long)(st.skipped / KiB));
    }
    keel_blockdev_close(s);
    free(img);
}
END_TEST

/*
 * qcow2 destinations: data clusters holding only zeroes -- in the raw base
 * and written as zeroes by qemu-io into a qcow2 top over the base's data
 * -- take no cluster.  Collapsed: they stay unallocated (qemu-img check
 * shows the image ends right after the data it needs), compare identical.
 * Layer by layer: the base's become unallocated, the top's become zero
 * clusters, which must hide the base's data (left unallocated, compare
 * would see it).
 */
START_TEST(zero_clusters_to_qcow2)
{
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char *img = make_zraw("zsrc.raw");
    char *top = path("ztop");
    struct keel_blockdev *sb = open_file("zsrc.raw"), *st_dev;
    struct keel_copy_layer l[2];
    struct keel_copy_stats st;
    uint64_t need = 0, ndata, nbase = data_clusters(img, ZSIZE);
    struct stat sst;

    {
        const char *c[] = { "qemu-img", "create", "-f", "qcow2", "-b", "zsrc.raw", "-F", "raw",
                            top, "16M", NULL };
        const char *map[] = { "qemu-img", "map", "--output=json", top, NULL };
        char *out = NULL;

        run(c);
        qemu_io(top, "write -P 0 0 1M");       /* over the base's data */
        qemu_io(top, "write -P 0x55 1M 512k"); /* over the base's zeroes */
        qemu_io(top, "write -P 0 8M 64k");
        ck_assert_msg(keel_lab_run_ok(map, NULL, &out, &err) == 0, "%s", err.msg);
        /* qemu wrote the zeroes as data clusters, so the engine has zeroes to find. */
        ck_assert_msg(strstr(out, "\"start\": 0, \"length\": 1572864, \"depth\": 0, "
                                  "\"present\": true, \"zero\": false, \"data\": true") != NULL,
                      "%s", out);
        free(out);
    }
    memset(img, 0, MiB);
    memset(img + MiB, 0x55, 512 * KiB);
    memset(img + 8 * MiB, 0, 64 * KiB);
    ndata = data_clusters(img, ZSIZE);
    ck_assert_int_eq(stat(top, &sst), 0);
    st_dev = open_file("ztop");
    l[0] = (struct keel_copy_layer){ .dev = st_dev, .size = (uint64_t)sst.st_size,
                                     .qcow2 = true };
    l[1] = (struct keel_copy_layer){ .dev = sb, .size = ZSIZE };
    /* Collapsed. */
    {
        struct keel_copy_opts opts = { .verify = true };
        struct keel_blockdev *d;
        char *p = path("zcopy.qcow2"), *want;
        const char *chk[] = { "qemu-img", "check", "--output=json", "-f", "qcow2", p, NULL };
        char *out = NULL;

        ck_assert_msg(keel_copy_measure_qcow2(l, 2, &need, &err) == 0, "%s", err.msg);
        d = dest_sized("zcopy.qcow2", need);
        {
            struct keel_copy_dst dst = { .dev = d, .size = need };

            ck_assert_msg(keel_copy_to_qcow2(l, 2, &dst, &opts, &st, &err) == 0, "%s", err.msg);
        }
        keel_blockdev_close(d);
        ck_assert_uint_eq(st.data, ndata * 64 * KiB);
        ck_assert_uint_eq(st.skipped, ZSIZE - st.data);
        ck_assert_msg(keel_lab_run_ok(chk, NULL, &out, &err) == 0, "%s", err.msg);
        /* header, refcount table and block, L1, one L2 table, then the data clusters */
        want = keel_strdup_printf("\"image-end-offset\": %llu,",
                                  (unsigned long long)((5 + ndata) * 64 * KiB));
        ck_assert_msg(strstr(out, want) != NULL && strstr(out, "\"check-errors\": 0") != NULL,
                      "%s (want %s; measure said %llu)", out, want, (unsigned long long)need);
        fprintf(stderr, "test_copy: collapsed into qcow2: %llu data clusters of the %llu measured "
                        "(%llu bytes)\n", (unsigned long long)ndata,
                (unsigned long long)(need / (64 * KiB) - 5), (unsigned long long)need);
        free(out);
        free(want);
        free(p);
        compare_files("qcow2", "ztop", "qcow2", "zcopy.qcow2");
    }
    /* Layer by layer: zbase2 <- ztop2. */
    for (int i = 0; i < 2; i++) {
        const char *name = i ? "ztop2" : "zbase2";
        const struct keel_copy_layer *src = &l[1 - i];
        struct keel_blockdev *d;

        ck_assert_msg(keel_copy_measure_layer_qcow2(src, &need, &err) == 0, "%s", err.msg);
        d = dest_sized(name, need);
        {
            struct keel_copy_dst dst = { .dev = d, .size = need };

            ck_assert_msg(keel_copy_layer_to_qcow2(src, i ? "zbase2" : NULL, i ? "qcow2" : NULL,
                                                   &dst, NULL, &st, &err) == 0, "%s", err.msg);
        }
        keel_blockdev_close(d);
        {
            char *p = path(name);
            const char *chk[] = { "qemu-img", "check", "-f", "qcow2", p, NULL };

            run(chk);
            free(p);
        }
        /* The base: its clusters that hold data; the top: the 0x55 run (its zeroes hide the
         * base's data as zero clusters). */
        ck_assert_uint_eq(st.data, i ? 512 * KiB : nbase * 64 * KiB);
    }
    compare_files("qcow2", "ztop", "qcow2", "ztop2");
    keel_blockdev_close(st_dev);
    keel_blockdev_close(sb);
    free(top);
    free(img);
}
END_TEST

struct canceller {
    int flag;
    uint64_t at;
};

static void progress(void *opaque, uint64_t done, uint64_t total)
{
    struct canceller *c = opaque;

    if (done >= total / 2 && c->at == 0) {
        c->at = done;
        __atomic_store_n(&c->flag, 1, __ATOMIC_RELEASE);
    }
}

START_TEST(cancel_half_way)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct opened o;
    struct keel_blockdev *d;
    struct canceller c = { 0 };
    struct keel_copy_dst dst = { .size = 64 * MiB };
    struct keel_copy_opts opts = { .chunk = 256 << 10, .inflight = 2, .progress = progress,
                                   .opaque = &c, .cancel = &c.flag };
    char *top = path("top"), *keep = path("top.orig");
    const char *cp[] = { "cp", top, keep, NULL };
    const char *cmp[] = { "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", top, keep, NULL };

    make_chain(false);
    run(cp);
    open_chain(&o, false);
    d = dest("cancelled.raw", true);
    dst.dev = d;
    ck_assert_int_eq(keel_copy_to_raw(o.l, 3, &dst, &opts, NULL, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CANCELLED);
    ck_assert_msg(strstr(err.msg, "copy cancelled at") != NULL, "%s", err.msg);
    ck_assert(c.at >= 32 * MiB);
    keel_blockdev_close(d);
    close_chain(&o);
    run(cmp); /* the source is what it was */
    free(top);
    free(keep);
}
END_TEST

START_TEST(compressed_refused)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *src = path("plain"), *cmpr = path("compressed"), *url;
    const char *mk[] = { "qemu-img", "create", "-f", "qcow2", src, "8M", NULL };
    const char *cv[] = { "qemu-img", "convert", "-c", "-O", "qcow2", src, cmpr, NULL };
    struct keel_blockdev *s = NULL, *d;
    struct keel_copy_layer l;
    struct keel_copy_dst dst = { .size = 8 * MiB };
    struct stat st;

    run(mk);
    qemu_io(src, "write -P 0x44 0 1M");
    run(cv);
    ck_assert_int_eq(stat(cmpr, &st), 0);
    url = keel_strdup_printf("file://%s", cmpr);
    ck_assert_msg(keel_blockdev_open(url, NULL, &s, &err) == 0, "%s", err.msg);
    l = (struct keel_copy_layer){ .dev = s, .size = (uint64_t)st.st_size, .qcow2 = true };
    d = dest("out.raw", false);
    dst.dev = d;
    ck_assert_int_eq(keel_copy_to_raw(&l, 1, &dst, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "guest cluster 0 is compressed") != NULL, "%s", err.msg);
    keel_blockdev_close(d);
    keel_blockdev_close(s);
    free(url);
    free(src);
    free(cmpr);
}
END_TEST

#define SDN "aaaaaaaa-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define SDB "bbbbbbbb-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define IMG_N "11111111-0000-4000-8000-000000000001"
#define IMG_B "22222222-0000-4000-8000-000000000002"
#define IMG_R "33333333-0000-4000-8000-000000000003"

/* Layer i of volume vol on sd, as the copy engine takes it. */
static void payload(struct keel_sd *sd, const char *vol, struct keel_vol_payload *p,
                    struct keel_copy_layer *l, bool qcow2)
{
    struct keel_error err = KEEL_ERROR_INIT;

    ck_assert_msg(keel_vol_payload_open(sd, vol, p, &err) == 0, "%s", err.msg);
    *l = (struct keel_copy_layer){ .dev = p->dev, .offset = p->offset, .size = p->size,
                                   .qcow2 = qcow2 };
}

START_TEST(between_domains)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_nfs *nfs = NULL;
    struct keel_lab_tgtd *tgtd = NULL;
    struct keel_fs *fs = NULL;
    struct keel_blockdev *lun = NULL;
    struct keel_sd *sdn = NULL, *sdb = NULL;
    uint64_t size = 12ull << 30;
    char src[3][KEEL_UUID_LEN + 1], dst[3][KEEL_UUID_LEN + 1], raw[KEEL_UUID_LEN + 1];
    struct keel_vol_payload sp[3], dp[3], rp;
    struct keel_copy_layer sl[3], dl[3];
    struct opened local;

    {
        const char *guids[] = { "360014050000000000000000000000b01" };
        struct keel_sd_create cn = { .uuid = SDN, .name = "nfs", .type = KEEL_SD_TYPE_NFS,
                                     .klass = KEEL_SD_CLASS_DATA, .remote_path = "127.0.0.1:/x" };
        struct keel_sd_create cb = { .uuid = SDB, .name = "block", .type = KEEL_SD_TYPE_ISCSI,
                                     .klass = KEEL_SD_CLASS_DATA, .pv_guids = guids };

        ck_assert_msg(keel_lab_nfs_start(&nfs, &err) == 0 &&
                      keel_fs_open(keel_lab_nfs_url(nfs), NULL, &fs, &err) == 0 &&
                      keel_sd_create_file(fs, &cn, &sdn, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_lab_tgtd_start(&tgtd, &err) == 0 &&
                      keel_lab_tgtd_add_target(tgtd, "copy", &size, 1, NULL, NULL, &err) == 0 &&
                      keel_blockdev_open(keel_lab_tgtd_lun_url(tgtd, 0, 1), NULL, &lun,
                                         &err) == 0 &&
                      keel_sd_create_block(&lun, 1, &cb, &sdb, &err) == 0, "%s", err.msg);
    }
    /* The chain made by qemu in a local directory, imported layer by layer into NFS volumes. */
    make_chain(false);
    open_chain(&local, false);
    for (int i = 0; i < 3; i++) {
        const struct keel_copy_layer *l = &local.l[2 - i];
        struct keel_vol_create c = { .image = IMG_N, .format = KEEL_VOL_COW,
                                     .type = KEEL_VOL_SPARSE, .capacity = i ? 64 * MiB : 32 * MiB,
                                     .parent = i ? src[i - 1] : NULL, .illegal = true };
        struct keel_vol_payload p;
        struct keel_copy_dst d;
        uint64_t need = 0;

        ck_assert_msg(keel_vol_create(sdn, &c, src[i], &err) == 0 &&
                      keel_copy_measure_layer_qcow2(l, &need, &err) == 0, "%s", err.msg);
        /* A file volume grows to what the copy needs. */
        ck_assert_msg(keel_vol_payload_open(sdn, src[i], &p, &err) == 0 &&
                      keel_file_truncate(p.file, need, &err) == 0, "%s", err.msg);
        keel_vol_payload_close(&p);
        ck_assert_msg(keel_vol_payload_open(sdn, src[i], &p, &err) == 0, "%s", err.msg);
        d = (struct keel_copy_dst){ .dev = p.dev, .offset = 0, .size = p.size };
        ck_assert_msg(keel_copy_layer_to_qcow2(l, i ? src[i - 1] : NULL, i ? "qcow2" : NULL, &d,
                                               NULL, NULL, &err) == 0 &&
                      keel_vol_set_legality(sdn, src[i], KEEL_VOL_LEGAL, &err) == 0, "%s",
                      err.msg);
        keel_vol_payload_close(&p);
    }
    close_chain(&local);
    /* Copied layer by layer into ILLEGAL volumes of the block domain, then LEGAL. */
    for (int i = 0; i < 3; i++) {
        struct keel_vol_create c = { .image = IMG_B, .format = KEEL_VOL_COW,
                                     .type = KEEL_VOL_SPARSE, .capacity = i ? 64 * MiB : 32 * MiB,
                                     .parent = i ? dst[i - 1] : NULL, .illegal = true };
        struct keel_copy_dst d;
        uint64_t need = 0;

        ck_assert_msg(keel_vol_create(sdb, &c, dst[i], &err) == 0, "%s", err.msg);
        payload(sdn, src[i], &sp[i], &sl[i], true);
        payload(sdb, dst[i], &dp[i], &dl[i], true);
        ck_assert_msg(keel_copy_measure_layer_qcow2(&sl[i], &need, &err) == 0, "%s", err.msg);
        ck_assert_uint_le(need, dp[i].size);
        d = (struct keel_copy_dst){ .dev = dp[i].dev, .offset = dp[i].offset, .size = dp[i].size };
        ck_assert_msg(keel_copy_layer_to_qcow2(&sl[i], i ? dst[i - 1] : NULL, i ? "qcow2" : NULL,
                                               &d, NULL, NULL, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_vol_set_legality(sdb, dst[i], KEEL_VOL_LEGAL, &err) == 0, "%s",
                      err.msg);
    }
    /* Each block layer checks clean (seen alone, through a loop device). */
    for (int i = 0; i < 3; i++) {
        char *loop = NULL, *spec;

        ck_assert_msg(keel_lab_loop_attach(keel_lab_tgtd_lun_path(tgtd, 0, 1), dp[i].offset,
                                           dp[i].size, &loop, &err) == 0, "%s", err.msg);
        spec = keel_strdup_printf("json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":"
                                  "{\"driver\":\"host_device\",\"filename\":\"%s\"}}", loop);
        {
            const char *chk[] = { "qemu-img", "check", "-U", spec, NULL };

            run(chk);
        }
        keel_lab_loop_detach(loop);
        free(loop);
        free(spec);
    }
    /* Collapsed from block into a raw volume on NFS, compared with the NFS chain. */
    {
        struct keel_vol_create c = { .image = IMG_R, .format = KEEL_VOL_RAW,
                                     .type = KEEL_VOL_SPARSE, .capacity = 64 * MiB,
                                     .illegal = true };
        struct keel_copy_layer chain[3] = { dl[2], dl[1], dl[0] };
        struct keel_copy_dst d;
        struct keel_copy_opts o = { .verify = true };
        char *top, *out;

        ck_assert_msg(keel_vol_create(sdn, &c, raw, &err) == 0, "%s", err.msg);
        payload(sdn, raw, &rp, &chain[0], false);
        chain[0] = dl[2];
        d = (struct keel_copy_dst){ .dev = rp.dev, .offset = rp.offset, .size = rp.size,
                                    .reads_zero = true };
        ck_assert_msg(keel_copy_to_raw(chain, 3, &d, &o, NULL, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_vol_set_legality(sdn, raw, KEEL_VOL_LEGAL, &err) == 0, "%s", err.msg);
        top = path("top"); /* the chain qemu made */
        out = keel_strdup_printf("%s/%s/images/%s/%s", keel_lab_nfs_export_dir(nfs), SDN, IMG_R,
                                 raw);
        {
            const char *cmp[] = { "qemu-img", "compare", "-U", "-f", "qcow2", "-F", "raw", top,
                                  out, NULL };

            run(cmp);
        }
        free(top);
        free(out);
    }
    /* A copy cancelled half way: the target stays ILLEGAL and is deleted; the source is intact. */
    {
        struct keel_vol_create c = { .image = "44444444-0000-4000-8000-000000000004",
                                     .format = KEEL_VOL_RAW, .type = KEEL_VOL_PREALLOCATED,
                                     .capacity = 64 * MiB, .illegal = true };
        struct keel_copy_layer chain[3] = { sl[2], sl[1], sl[0] };
        struct canceller cc = { 0 };
        struct keel_copy_opts o = { .chunk = 256 << 10, .inflight = 2, .progress = progress,
                                    .opaque = &cc, .cancel = &cc.flag };
        struct keel_vol_payload tp;
        struct keel_copy_dst d;
        struct keel_vol_entry e;
        char tgt[KEEL_UUID_LEN + 1];

        ck_assert_msg(keel_vol_create(sdb, &c, tgt, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_vol_payload_open(sdb, tgt, &tp, &err) == 0, "%s", err.msg);
        d = (struct keel_copy_dst){ .dev = tp.dev, .offset = tp.offset, .size = 64 * MiB };
        ck_assert_int_eq(keel_copy_to_raw(chain, 3, &d, &o, NULL, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_CANCELLED);
        keel_vol_payload_close(&tp);
        ck_assert_msg(keel_vol_info(sdb, tgt, &e, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(e.md.legality, KEEL_VOL_ILLEGAL);
        ck_assert_msg(keel_vol_delete(sdb, tgt, false, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(keel_vol_info(sdb, tgt, &e, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_NOENT);
    }
    /* The NFS source chain is still qemu's chain. */
    {
        char *top = path("top"), *nfs_top = keel_strdup_printf(
            "%s/%s/images/%s/%s", keel_lab_nfs_export_dir(nfs), SDN, IMG_N, src[2]);
        const char *cmp[] = { "qemu-img", "compare", "-U", "-f", "qcow2", "-F", "qcow2", top,
                              nfs_top, NULL };

        run(cmp);
        free(top);
        free(nfs_top);
    }
    /* lvm2 agrees with Keel's VG, new LVs included. */
    {
        const char *files[] = { keel_lab_tgtd_lun_path(tgtd, 0, 1) };
        struct lvm_judge j;

        ck_assert_msg(lvm_judge_attach(&j, files, 1, &err) == 0 &&
                      lvm_judge_agrees(&j, keel_lvm_store_vg(keel_sd_vg(sdb)), &err) == 0, "%s",
                      err.msg);
        lvm_judge_detach(&j);
    }
    fprintf(stderr, "test_copy: a 3-layer chain local -> NFS -> block layer by layer, then "
                    "block -> NFS collapsed to raw: identical to the source chain\n");
    keel_vol_payload_close(&rp);
    for (int i = 0; i < 3; i++) {
        keel_vol_payload_close(&sp[i]);
        keel_vol_payload_close(&dp[i]);
    }
    keel_sd_close(sdn);
    keel_sd_close(sdb);
    keel_fs_close(fs);
    keel_blockdev_close(lun);
    keel_lab_nfs_stop(nfs);
    keel_lab_tgtd_stop(tgtd);
}
END_TEST

/*
 * The raw source with zero runs into a preallocated raw LV of a block
 * domain (tgtd) that holds an old volume's bytes: the runs are written as
 * zeroes (zeroed, none skipped), verification passes, and qemu-img compare
 * of the source with the LV's bytes in the LUN file says identical.
 */
START_TEST(zero_runs_onto_lv)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *tgtd = NULL;
    struct keel_blockdev *lun = NULL, *s;
    struct keel_sd *sd = NULL;
    uint64_t size = 12ull << 30, z = zruns_found();
    const char *guids[] = { "360014050000000000000000000000b02" };
    struct keel_sd_create cb = { .uuid = SDB, .name = "block", .type = KEEL_SD_TYPE_ISCSI,
                                 .klass = KEEL_SD_CLASS_DATA, .pv_guids = guids };
    struct keel_vol_create c = { .image = IMG_B, .format = KEEL_VOL_RAW,
                                 .type = KEEL_VOL_PREALLOCATED, .capacity = ZSIZE,
                                 .illegal = true };
    char vol[KEEL_UUID_LEN + 1];
    struct keel_vol_payload p;
    struct keel_copy_dst dst;
    struct keel_copy_stats st;
    struct keel_copy_opts opts = { .chunk = MiB, .verify = true };
    unsigned char *img = make_zraw("zsrc.raw"), *old = malloc(ZSIZE);

    ck_assert_msg(keel_lab_tgtd_start(&tgtd, &err) == 0 &&
                  keel_lab_tgtd_add_target(tgtd, "zero", &size, 1, NULL, NULL, &err) == 0 &&
                  keel_blockdev_open(keel_lab_tgtd_lun_url(tgtd, 0, 1), NULL, &lun, &err) == 0 &&
                  keel_sd_create_block(&lun, 1, &cb, &sd, &err) == 0 &&
                  keel_vol_create(sd, &c, vol, &err) == 0 &&
                  keel_vol_payload_open(sd, vol, &p, &err) == 0, "%s", err.msg);
    /* The old volume's bytes. */
    memset(old, 0xee, ZSIZE);
    ck_assert_msg(keel_blockdev_pwrite(p.dev, old, ZSIZE, p.offset, &err) == 0 &&
                  keel_blockdev_flush(p.dev, &err) == 0, "%s", err.msg);
    s = open_file("zsrc.raw");
    {
        struct keel_copy_layer l = { .dev = s, .size = ZSIZE };

        dst = (struct keel_copy_dst){ .dev = p.dev, .offset = p.offset, .size = p.size };
        ck_assert_msg(keel_copy_to_raw(&l, 1, &dst, &opts, &st, &err) == 0, "%s", err.msg);
    }
    ck_assert_uint_eq(st.data, ZSIZE - z);
    ck_assert_uint_eq(st.zeroed, z);
    ck_assert_uint_eq(st.skipped, 0);
    {
        char *src = path("zsrc.raw");
        char *lv = keel_strdup_printf("json:{\"driver\":\"raw\",\"offset\":%llu,\"size\":%llu,"
                                      "\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}",
                                      (unsigned long long)p.offset, (unsigned long long)ZSIZE,
                                      keel_lab_tgtd_lun_path(tgtd, 0, 1));
        const char *cmp[] = { "qemu-img", "compare", "-U", "-f", "raw", src, lv, NULL };

        run(cmp);
        free(src);
        free(lv);
    }
    fprintf(stderr, "test_copy: a raw source with zero runs onto an LV of old bytes: %llu KiB "
                    "zeroed, identical\n", (unsigned long long)(st.zeroed / KiB));
    keel_blockdev_close(s);
    keel_vol_payload_close(&p);
    keel_sd_close(sd);
    keel_blockdev_close(lun);
    keel_lab_tgtd_stop(tgtd);
    free(old);
    free(img);
}
END_TEST

/* json: spec of an LV's bytes in a LUN file, for qemu-img. */
static char *lv_spec(const char *lun_file, uint64_t offset, uint64_t size)
{
    return keel_strdup_printf("json:{\"driver\":\"raw\",\"offset\":%llu,\"size\":%llu,"
                              "\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}",
                              (unsigned long long)offset, (unsigned long long)size, lun_file);
}

/*
 * A thin LUN (tgtd's thin_provisioning=1): a raw source LV that was
 * written in two places is read only there (GET LBA STATUS says the rest
 * is deallocated, which reads as zeroes), and the destination LV, full of
 * an old volume's bytes, gets its zero ranges deallocated (WRITE SAME with
 * UNMAP): the LUN file has holes there, qemu-img compare says identical.
 */
START_TEST(thin_lun_raw_holes)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *tgtd = NULL;
    struct keel_blockdev *lun = NULL;
    struct keel_sd *sd = NULL;
    uint64_t size = 12ull << 30;
    const char *guids[] = { "360014050000000000000000000000b03" };
    struct keel_sd_create cb = { .uuid = SDB, .name = "thin", .type = KEEL_SD_TYPE_ISCSI,
                                 .klass = KEEL_SD_CLASS_DATA, .pv_guids = guids };
    struct keel_vol_create c = { .image = IMG_B, .format = KEEL_VOL_RAW,
                                 .type = KEEL_VOL_PREALLOCATED, .capacity = ZSIZE };
    char src[KEEL_UUID_LEN + 1], dstv[KEEL_UUID_LEN + 1];
    struct keel_vol_payload ps, pd;
    struct keel_copy_dst dst;
    struct keel_copy_stats st;
    struct keel_copy_opts opts = { .chunk = MiB, .verify = true };
    unsigned char *buf = malloc(ZSIZE);
    char *a, *b;
    int fd;

    ck_assert_msg(keel_lab_tgtd_start(&tgtd, &err) == 0, "%s", err.msg);
    keel_lab_tgtd_set_thin(tgtd, true);
    ck_assert_msg(keel_lab_tgtd_add_target(tgtd, "thin", &size, 1, NULL, NULL, &err) == 0 &&
                  keel_blockdev_open(keel_lab_tgtd_lun_url(tgtd, 0, 1), NULL, &lun, &err) == 0 &&
                  keel_sd_create_block(&lun, 1, &cb, &sd, &err) == 0 &&
                  keel_vol_create(sd, &c, src, &err) == 0, "%s", err.msg);
    c.image = IMG_R;
    c.illegal = true;
    ck_assert_msg(keel_vol_create(sd, &c, dstv, &err) == 0 &&
                  keel_vol_payload_open(sd, src, &ps, &err) == 0 &&
                  keel_vol_payload_open(sd, dstv, &pd, &err) == 0, "%s", err.msg);
    /* The source: 1 MiB at 2 MiB and 3 MiB at 8 MiB, the rest never written. */
    for (size_t i = 0; i < ZSIZE; i++)
        buf[i] = (unsigned char)(i * 31 + (i >> 12) + 1);
    ck_assert_msg(keel_blockdev_pwrite(ps.dev, buf + 2 * MiB, MiB, ps.offset + 2 * MiB, &err) == 0 &&
                  keel_blockdev_pwrite(ps.dev, buf + 8 * MiB, 3 * MiB, ps.offset + 8 * MiB,
                                       &err) == 0, "%s", err.msg);
    /* The destination: an old volume's bytes everywhere. */
    memset(buf, 0xee, ZSIZE);
    ck_assert_msg(keel_blockdev_pwrite(pd.dev, buf, ZSIZE, pd.offset, &err) == 0 &&
                  keel_blockdev_flush(pd.dev, &err) == 0, "%s", err.msg);
    {
        struct keel_copy_layer l = { .dev = ps.dev, .offset = ps.offset, .size = ZSIZE };

        dst = (struct keel_copy_dst){ .dev = pd.dev, .offset = pd.offset, .size = pd.size };
        ck_assert_msg(keel_copy_to_raw(&l, 1, &dst, &opts, &st, &err) == 0, "%s", err.msg);
    }
    ck_assert_uint_eq(st.read, 4 * MiB);
    ck_assert_uint_eq(st.data, 4 * MiB);
    ck_assert_uint_eq(st.zeroed, ZSIZE - 4 * MiB);
    ck_assert_uint_eq(st.skipped, 0);
    a = lv_spec(keel_lab_tgtd_lun_path(tgtd, 0, 1), ps.offset, ZSIZE);
    b = lv_spec(keel_lab_tgtd_lun_path(tgtd, 0, 1), pd.offset, ZSIZE);
    {
        const char *cmp[] = { "qemu-img", "compare", "-U", "-f", "raw", "-F", "raw", a, b, NULL };

        run(cmp);
    }
    /* The zero ranges are holes of the LUN file, the data is not. */
    fd = open(keel_lab_tgtd_lun_path(tgtd, 0, 1), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(lseek(fd, (off_t)pd.offset, SEEK_DATA), (off_t)(pd.offset + 2 * MiB));
    ck_assert_int_eq(lseek(fd, (off_t)(pd.offset + 2 * MiB), SEEK_HOLE),
                     (off_t)(pd.offset + 3 * MiB));
    ck_assert_int_eq(lseek(fd, (off_t)(pd.offset + 3 * MiB), SEEK_DATA),
                     (off_t)(pd.offset + 8 * MiB));
    ck_assert_int_eq(lseek(fd, (off_t)(pd.offset + 8 * MiB), SEEK_HOLE),
                     (off_t)(pd.offset + 11 * MiB));
    close(fd);
    fprintf(stderr, "test_copy: a raw LV with 4 MiB of data on a thin LUN: %llu KiB read, "
                    "%llu KiB deallocated, identical\n", (unsigned long long)(st.data / KiB),
            (unsigned long long)(st.zeroed / KiB));
    free(a);
    free(b);
    keel_vol_payload_close(&ps);
    keel_vol_payload_close(&pd);
    keel_sd_close(sd);
    keel_blockdev_close(lun);
    keel_lab_tgtd_stop(tgtd);
    free(buf);
}
END_TEST

struct restarter {
    struct keel_lab_tgtd *tgtd;
    bool done;
    int rc;
    struct keel_error err;
};

/* Restart tgtd from the copy's own thread once a quarter is copied: requests are in flight. */
static void restart_at_quarter(void *opaque, uint64_t done, uint64_t total)
{
    struct restarter *r = opaque;

    if (!r->done && done >= total / 4) {
        r->done = true;
        r->rc = keel_lab_tgtd_restart(r->tgtd, &r->err);
    }
}

START_TEST(through_tgtd_restart)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t size = 256 * MiB, x = 88172645463325252ull;
    struct keel_lab_tgtd *tgtd = NULL;
    struct keel_blockdev *lun = NULL, *d;
    struct restarter r = { 0 };
    struct keel_copy_layer l;
    struct keel_copy_dst dst = { .size = 256 * MiB, .reads_zero = true };
    struct keel_copy_opts o = { .chunk = 256 << 10, .inflight = 8, .progress = restart_at_quarter,
                                .opaque = &r, .verify = true };
    struct keel_copy_stats st;
    unsigned char *buf = malloc(4 * MiB), *other = malloc(4 * MiB);
    int rc;

    ck_assert_msg(keel_lab_tgtd_start(&tgtd, &err) == 0 &&
                  keel_lab_tgtd_add_target(tgtd, "restart", &size, 1, NULL, NULL, &err) == 0 &&
                  keel_blockdev_open(keel_lab_tgtd_lun_url(tgtd, 0, 1), NULL, &lun, &err) == 0,
                  "%s", err.msg);
    for (uint64_t off = 0; off < size; off += 4 * MiB) {
        for (size_t i = 0; i < 4 * MiB; i += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            memcpy(buf + i, &x, 8);
        }
        ck_assert_msg(keel_blockdev_pwrite(lun, buf, 4 * MiB, off, &err) == 0, "%s", err.msg);
    }
    ck_assert_msg(keel_blockdev_flush(lun, &err) == 0, "%s", err.msg);
    d = dest_sized("restart.raw", size);
    dst.dev = d;
    r.tgtd = tgtd;
    l = (struct keel_copy_layer){ .dev = lun, .offset = 0, .size = size };
    rc = keel_copy_to_raw(&l, 1, &dst, &o, &st, &err);
    ck_assert_msg(r.done && r.rc == 0, "tgtd was not restarted: %s", r.err.msg);
    keel_blockdev_close(d);
    if (rc == 0) {
        /* Success must mean the same bytes: compare with the LUN's file itself. */
        char *p = path("restart.raw");
        FILE *a = fopen(keel_lab_tgtd_lun_path(tgtd, 0, 1), "rb"), *b = fopen(p, "rb");

        ck_assert(a != NULL && b != NULL);
        for (uint64_t off = 0; off < size; off += 4 * MiB) {
            ck_assert_uint_eq(fread(buf, 1, 4 * MiB, a), 4 * MiB);
            ck_assert_uint_eq(fread(other, 1, 4 * MiB, b), 4 * MiB);
            ck_assert_msg(memcmp(buf, other, 4 * MiB) == 0, "copy differs in the 4 MiB at %llu",
                          (unsigned long long)off);
        }
        fclose(a);
        fclose(b);
        free(p);
        fprintf(stderr, "test_copy: 256 MiB from a LUN across a tgtd restart: completed, "
                        "verified, identical\n");
    } else {
        ck_assert_msg(err.code != KEEL_E_CORRUPT, "%s", err.msg);
        fprintf(stderr, "test_copy: across a tgtd restart the copy failed cleanly: %s\n",
                err.msg);
    }
    free(buf);
    free(other);
    keel_blockdev_close(lun);
    keel_lab_tgtd_stop(tgtd);
}
END_TEST

/* An L1 table offset near 2^64 (it would wrap past the image's end) is corrupt, not read. */
START_TEST(wrapping_l1_refused)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *img = path("wrap"), *url = keel_strdup_printf("file://%s", img);
    const char *mk[] = { "qemu-img", "create", "-f", "qcow2", img, "8M", NULL };
    static const unsigned char off[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 };
    struct keel_blockdev *s = NULL, *d;
    struct keel_copy_layer l;
    struct keel_copy_dst dst = { .size = 8 * MiB };
    struct stat st;
    int fd;

    run(mk);
    fd = open(img, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, off, 8, 40), 8); /* l1_table_offset, big-endian */
    close(fd);
    ck_assert_int_eq(stat(img, &st), 0);
    ck_assert_msg(keel_blockdev_open(url, NULL, &s, &err) == 0, "%s", err.msg);
    l = (struct keel_copy_layer){ .dev = s, .size = (uint64_t)st.st_size, .qcow2 = true };
    d = dest("wrap.raw", false);
    dst.dev = d;
    ck_assert_int_eq(keel_copy_to_raw(&l, 1, &dst, NULL, NULL, &err), -1);
    ck_assert_msg(err.code == KEEL_E_CORRUPT || err.code == KEEL_E_FORMAT, "%s", err.msg);
    keel_blockdev_close(d);
    keel_blockdev_close(s);
    free(url);
    free(img);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("copy");
    TCase *tc = tcase_create("copy");
    SRunner *sr;
    int failed;

    keel_lab_require("qemu-img");
    keel_lab_require("qemu-io");
    keel_lab_require("tgtd");
    keel_lab_require("ganesha.nfsd");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, collapse_qcow2_chain);
    tcase_add_test(tc, collapse_to_qcow2);
    tcase_add_test(tc, preserve_chain);
    tcase_add_test(tc, collapse_over_raw_base);
    tcase_add_test(tc, raw_zero_runs);
    tcase_add_test(tc, zero_clusters_to_qcow2);
    tcase_add_test(tc, cancel_half_way);
    tcase_add_test(tc, compressed_refused);
    tcase_add_test(tc, wrapping_l1_refused);
    tcase_add_test(tc, between_domains);
    tcase_add_test(tc, zero_runs_onto_lv);
    tcase_add_test(tc, thin_lun_raw_holes);
    tcase_add_test(tc, through_tgtd_restart);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
