/*
 * bench/lvm: VG metadata updates, Keel against lvm2, in one run.
 *
 *   Keel  a 1 TiB sparse LUN on a tgtd started here (127.0.0.1), reached
 *         over iSCSI; keel_lvm_store_create() with oVirt's layout (two
 *         128 MiB metadata areas) and 128 MiB extents, then N
 *         keel_lvm_store_lv_create() calls of 128 MiB with 3 tags each:
 *         one metadata commit per LV, durable (flushed) before the next.
 *   peer  a loop device over a 1 TiB sparse file; pvcreate --metadatasize
 *         128m --metadatacopies 2, vgcreate -s 128m --setautoactivation n,
 *         then one lvcreate process per LV as VDSM runs it:
 *         lvcreate -an -Zn --autobackup n --contiguous n --wipesignatures n
 *         --addtag IU_<uuid> --addtag PU_<uuid> --addtag MD_<n> -L 128m
 *         -n <uuid> VG.  The harness adds --driverloaded n, --nolocking and
 *         a filter that sees only that loop device (keel_lab_lvm_run()).
 *
 * Both sides create the same LV names with the same tags, so their
 * metadata texts have the same size.  Each creation is timed on its own;
 * a rate is N over the sum of those times (the benchmark's own reads of
 * the text in between are left out).  At the end a fresh Keel reader and
 * lvm2 (vgs) must find all N LVs at seqno N + 1 on both sides.  Output:
 *   bench: lvm lv_create keel=N ops/s peer=N ops/s ratio=R      (R = keel/peer)
 *   bench: lvm commit_growth keel=X ms peer=Y ms ratio=R        (R = peer/keel)
 * commit_growth is how much one change slowed down between the first 10
 * LVs and the last 10 (mean time of one change at LVs N-9..N minus the
 * mean at LVs 1..10); it is printed only when both sides ran the same N.
 * Lines starting with "bench-lvm:" are informational.
 *
 * Environment: KEEL_BENCH_LVM_N (default 1000) LVs for Keel, and
 * KEEL_BENCH_LVM_PEER_N (default: the same) for lvm2, whose one process
 * per LV is slow; the rates (ops/s) stay comparable with a smaller peer N.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "common/uuid.h"
#include "io/blockdev.h"
#include "metadata/lvm_store.h"
#include "tests/harness/lab.h"

#define MiB (UINT64_C(1) << 20)
#define TiB (UINT64_C(1) << 40)
#define LV_SIZE (128 * MiB)
#define EXTENT (128 * MiB)
#define WINDOW 10 /* LVs averaged at the start and at the end */

static void die(const char *what, const struct keel_error *err)
{
    fprintf(stderr, "bench-lvm: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

static unsigned env_num(const char *name, unsigned def)
{
    const char *v = getenv(name);
    uint64_t n;

    return v && keel_parse_u64(v, &n) == 0 && n > 0 && n <= 100000 ? (unsigned)n : def;
}

/* A UUID-shaped name that is the same on every run (splitmix64 of seed). */
static void fake_uuid(uint64_t seed, char out[KEEL_UUID_LEN + 1])
{
    uint64_t a = seed + UINT64_C(0x9e3779b97f4a7c15), b;

    a = (a ^ (a >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    a = (a ^ (a >> 27)) * UINT64_C(0x94d049bb133111eb);
    a ^= a >> 31;
    b = a * UINT64_C(0x2545f4914f6cdd1d);
    snprintf(out, KEEL_UUID_LEN + 1, "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-8%03" PRIx32
             "-%012" PRIx64, (uint32_t)(a >> 32), (uint32_t)(a >> 16) & 0xffff,
             (uint32_t)a & 0xfff, (uint32_t)(b >> 52), b & UINT64_C(0xffffffffffff));
}

/* The i-th LV (0-based) of both sides: name and the 3 tags VDSM gives a volume. */
struct lv_spec {
    char name[KEEL_UUID_LEN + 1];
    char iu[KEEL_UUID_LEN + 4];
    char pu[KEEL_UUID_LEN + 4];
    char md[16];
    const char *tags[3];
};

static void lv_spec(unsigned i, struct lv_spec *l)
{
    char img[KEEL_UUID_LEN + 1];

    fake_uuid(2 * (uint64_t)i, l->name);
    fake_uuid(2 * (uint64_t)i + 1, img);
    snprintf(l->iu, sizeof(l->iu), "IU_%s", img);
    snprintf(l->pu, sizeof(l->pu), "PU_%s", KEEL_BLANK_UUID);
    snprintf(l->md, sizeof(l->md), "MD_%u", i + 1);
    l->tags[0] = l->iu;
    l->tags[1] = l->pu;
    l->tags[2] = l->md;
}

static double ms_since(uint64_t t0)
{
    return (double)(keel_now_ns() - t0) / 1e6;
}

/* Mean of ms[from..from+n). */
static double mean(const double *ms, unsigned from, unsigned n)
{
    double sum = 0;

    for (unsigned i = 0; i < n; i++)
        sum += ms[from + i];
    return n ? sum / n : 0;
}

struct side {
    const char *who;
    unsigned n;
    double total_s;    /* the N creations, summed (not the checks between them) */
    double *ms;        /* each creation */
    size_t text_first; /* metadata text after the first LV, bytes (with its NUL) */
    size_t text_last;  /* after the last */
    unsigned window;
};

static void side_report(const struct side *s)
{
    double first = mean(s->ms, 0, s->window), last = mean(s->ms, s->n - s->window, s->window);

    fprintf(stdout, "bench-lvm: %s: %u LVs in %.2f s (%.1f ops/s); one change at LVs 1-%u "
            "%.2f ms, at LVs %u-%u %.2f ms (mean); metadata text %zu B at 1 LV, %zu B at %u "
            "LVs\n", s->who, s->n, s->total_s, s->n / s->total_s, s->window, first,
            s->n - s->window + 1, s->n, last, s->text_first, s->text_last, s->n);
    fflush(stdout);
}

/* The text size of the VG on a device, as Keel reads it. */
static size_t text_size_of(struct keel_blockdev *dev, const char *vg)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_store *s = NULL;
    size_t n;

    if (keel_lvm_store_open(&dev, 1, vg, NULL, &s, &err) != 0)
        die("read the VG back", &err);
    n = keel_lvm_store_text_size(s);
    keel_lvm_store_close(s);
    return n;
}

/* lvm2 reads the VG on the loop device: its LV count and seqno. */
static void lvm_count(const char *loop, const char *vg, unsigned *lvs, unsigned *seqno)
{
    struct keel_error err = KEEL_ERROR_INIT;
    const char *devs[] = { loop };
    const char *argv[] = { "vgs", "--noheadings", "-o", "lv_count,seqno", vg, NULL };
    char *out = NULL;

    if (keel_lab_lvm(devs, 1, argv, &out, &err) != 0)
        die("vgs", &err);
    if (sscanf(out, "%u %u", lvs, seqno) != 2) {
        fprintf(stderr, "bench-lvm: vgs said '%s'\n", out);
        exit(1);
    }
    free(out);
}

/* ---- Keel ---- */

static void keel_side(struct side *s)
{
    const char *vgtags[] = { "RHAT_storage_domain" };
    const char *flags[] = { "NOAUTOACTIVATE" };
    struct keel_lvm_create_opts o = { .layout = KEEL_LVM_LAYOUT_OVIRT, .vg_flags = flags,
                                      .nvg_flags = 1 };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;
    struct keel_blockdev *dev = NULL;
    struct keel_lvm_store *vg = NULL;
    uint64_t size = TiB, t0;
    unsigned lvs = 0, seqno = 0;
    char *loop = NULL;
    double create_ms;

    if (keel_lab_tgtd_start(&t, &err) != 0 ||
        keel_lab_tgtd_add_target(t, "benchlvm", &size, 1, NULL, NULL, &err) != 0)
        die("tgtd", &err);
    if (keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), NULL, &dev, &err) != 0)
        die("open the LUN", &err);
    fprintf(stderr, "bench-lvm: Keel on %s (1 TiB sparse LUN)\n", keel_blockdev_name(dev));
    t0 = keel_now_ns();
    if (keel_lvm_store_create(&dev, 1, "vgkeel", EXTENT, vgtags, 1, &o, &vg, &err) != 0)
        die("keel vgcreate", &err);
    create_ms = ms_since(t0);
    for (unsigned i = 0; i < s->n; i++) {
        struct lv_spec l;
        uint64_t t1;

        lv_spec(i, &l);
        t1 = keel_now_ns();
        if (keel_lvm_store_lv_create(vg, l.name, LV_SIZE, l.tags, 3, &err) != 0)
            die("keel lvcreate", &err);
        s->ms[i] = ms_since(t1);
        s->total_s += s->ms[i] / 1e3;
        if (i == 0)
            s->text_first = keel_lvm_store_text_size(vg);
    }
    s->text_last = keel_lvm_store_text_size(vg);
    fprintf(stdout, "bench-lvm: keel: pvcreate+vgcreate %.1f ms; metadata area limit %" PRIu64
            " B of text\n", create_ms, keel_lvm_store_text_max(vg));
    keel_lvm_store_close(vg);
    /* What a fresh reader and lvm2 find: every LV, one seqno per change. */
    if (text_size_of(dev, "vgkeel") != s->text_last) {
        fprintf(stderr, "bench-lvm: a fresh Keel reader sees another text size\n");
        exit(1);
    }
    keel_blockdev_close(dev);
    if (keel_lab_loop_attach(keel_lab_tgtd_lun_path(t, 0, 1), 0, 0, &loop, &err) != 0)
        die("loop device", &err);
    lvm_count(loop, "vgkeel", &lvs, &seqno);
    keel_lab_loop_detach(loop);
    free(loop);
    if (lvs != s->n || seqno != s->n + 1) {
        fprintf(stderr, "bench-lvm: lvm2 reads Keel's VG with %u LVs at seqno %u, not %u at "
                "%u\n", lvs, seqno, s->n, s->n + 1);
        exit(1);
    }
    keel_lab_tgtd_stop(t);
}

/* ---- lvm2 ---- */

static void lvm_ok(const char *loop, const char *const argv[])
{
    struct keel_error err = KEEL_ERROR_INIT;
    const char *devs[] = { loop };

    if (keel_lab_lvm(devs, 1, argv, NULL, &err) != 0)
        die(argv[0], &err);
}

static void peer_side(struct side *s)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    char *dir, *file, *url, *loop = NULL;
    const char *devs[1];
    unsigned lvs = 0, seqno = 0;

    dir = keel_lab_tmpdir("bench-lvm", &err);
    if (dir == NULL)
        die("tmpdir", &err);
    file = keel_strdup_printf("%s/pv.img", dir);
    url = keel_strdup_printf("file://%s", file);
    if (keel_lab_sparse_file(file, TiB, &err) != 0)
        die("sparse file", &err);
    if (keel_lab_loop_attach(file, 0, 0, &loop, &err) != 0)
        die("loop device", &err);
    devs[0] = loop;
    fprintf(stderr, "bench-lvm: lvm2 on %s over %s (1 TiB sparse file)\n", loop, file);
    {
        const char *pv[] = { "pvcreate", "--metadatasize", "128m", "--metadatacopies", "2",
                             loop, NULL };
        const char *vg[] = { "vgcreate", "--setautoactivation", "n", "-s", "128m", "--addtag",
                             "RHAT_storage_domain", "vgpeer", loop, NULL };

        lvm_ok(loop, pv);
        lvm_ok(loop, vg);
    }
    /* Keel reads the peer's text (read only) through the file, after the first LV. */
    if (keel_blockdev_open(url, NULL, &dev, &err) != 0)
        die("open the peer's file", &err);
    for (unsigned i = 0; i < s->n; i++) {
        struct lv_spec l;
        const char *argv[] = { "lvcreate", "-an", "-Zn", "--autobackup", "n", "--contiguous",
                               "n", "--wipesignatures", "n", "--addtag", NULL, "--addtag",
                               NULL, "--addtag", NULL, "-L", "128m", "-n", NULL, "vgpeer",
                               NULL };
        char *errout = NULL;
        int status = 0;
        uint64_t t1;

        lv_spec(i, &l);
        argv[10] = l.tags[0];
        argv[12] = l.tags[1];
        argv[14] = l.tags[2];
        argv[18] = l.name;
        t1 = keel_now_ns();
        if (keel_lab_lvm_run(devs, 1, argv, NULL, &errout, &status, &err) != 0)
            die("lvcreate", &err);
        s->ms[i] = ms_since(t1);
        s->total_s += s->ms[i] / 1e3;
        if (status != 0) {
            fprintf(stderr, "bench-lvm: lvcreate of LV %u: status %d: %s\n", i + 1, status,
                    errout ? errout : "");
            exit(1);
        }
        free(errout);
        if (i == 0)
            s->text_first = text_size_of(dev, "vgpeer");
    }
    s->text_last = text_size_of(dev, "vgpeer");
    keel_blockdev_close(dev);
    lvm_count(loop, "vgpeer", &lvs, &seqno);
    if (lvs != s->n || seqno != s->n + 1) {
        fprintf(stderr, "bench-lvm: lvm2 reads its own VG with %u LVs at seqno %u, not %u at "
                "%u\n", lvs, seqno, s->n, s->n + 1);
        exit(1);
    }
    keel_lab_loop_detach(loop);
    free(loop);
    keel_lab_tmpdir_remove(dir);
    free(dir);
    free(file);
    free(url);
}

int main(void)
{
    struct side keel = { .who = "keel", .n = env_num("KEEL_BENCH_LVM_N", 1000) };
    struct side peer = { .who = "peer (lvm2)" };
    double kr, pr;

    peer.n = env_num("KEEL_BENCH_LVM_PEER_N", keel.n);
    if (keel.n < 2 || peer.n < 2) {
        fprintf(stderr, "bench-lvm: at least 2 LVs per side\n");
        return 2;
    }
    keel.window = keel.n >= 2 * WINDOW ? WINDOW : keel.n / 2;
    peer.window = peer.n >= 2 * WINDOW ? WINDOW : peer.n / 2;
    keel_lab_require("tgtd");
    keel_lab_require("tgtadm");
    keel_lab_require("lvm");
    keel.ms = calloc(keel.n, sizeof(double));
    peer.ms = calloc(peer.n, sizeof(double));
    if (keel.ms == NULL || peer.ms == NULL)
        die("out of memory", NULL);
    fprintf(stderr, "bench-lvm: %u LVs for Keel, %u for lvm2, 128 MiB each with 3 tags, "
            "one commit each\n", keel.n, peer.n);
    keel_side(&keel);
    side_report(&keel);
    peer_side(&peer);
    side_report(&peer);

    kr = keel.n / keel.total_s;
    pr = peer.n / peer.total_s;
    printf("bench-lvm: rates over the creations themselves: Keel N=%u, peer N=%u\n", keel.n,
           peer.n);
    printf("bench: lvm lv_create keel=%.1f ops/s peer=%.1f ops/s ratio=%.1f\n", kr, pr,
           pr > 0 ? kr / pr : 0.0);
    if (keel.n == peer.n) {
        double kg = mean(keel.ms, keel.n - keel.window, keel.window) -
                    mean(keel.ms, 0, keel.window);
        double pg = mean(peer.ms, peer.n - peer.window, peer.window) -
                    mean(peer.ms, 0, peer.window);

        printf("bench-lvm: commit_growth: mean time of one change at LVs %u-%u minus at LVs "
               "1-%u\n", keel.n - keel.window + 1, keel.n, keel.window);
        printf("bench: lvm commit_growth keel=%.2f ms peer=%.2f ms ratio=%.1f\n", kg, pg,
               kg > 0.01 ? pg / kg : 0.0);
    } else {
        printf("bench-lvm: commit_growth not compared: Keel ran %u LVs, lvm2 %u\n", keel.n,
               peer.n);
    }
    fflush(stdout);
    free(keel.ms);
    free(peer.ms);
    return 0;
}
