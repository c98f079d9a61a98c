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
 *   - cancelled half way: KEEL_E_CANCELLED, the source unchanged;
 *   - a compressed cluster is refused, naming it.
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
#include "tests/harness/lab.h"
#include "volume/copy.h"

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

/* A destination file of 64 MiB: sparse, or full of 0xee bytes. */
static struct keel_blockdev *dest(const char *name, bool garbage)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *p = path(name), *url = keel_strdup_printf("file://%s", p);
    struct keel_blockdev *d = NULL;
    int fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0644);

    ck_assert_int_ge(fd, 0);
    if (garbage) {
        char *buf = malloc(MiB);

        memset(buf, 0xee, MiB);
        for (int i = 0; i < 64; i++)
            ck_assert_int_eq(write(fd, buf, MiB), (ssize_t)MiB);
        free(buf);
    } else {
        ck_assert_int_eq(ftruncate(fd, (off_t)(64 * MiB)), 0);
    }
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

int main(void)
{
    Suite *s = suite_create("copy");
    TCase *tc = tcase_create("copy");
    SRunner *sr;
    int failed;

    keel_lab_require("qemu-img");
    keel_lab_require("qemu-io");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, collapse_qcow2_chain);
    tcase_add_test(tc, collapse_to_qcow2);
    tcase_add_test(tc, preserve_chain);
    tcase_add_test(tc, collapse_over_raw_base);
    tcase_add_test(tc, cancel_half_way);
    tcase_add_test(tc, compressed_refused);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
