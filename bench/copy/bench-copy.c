/*
 * bench-copy: the copy engine (volume/copy.h) against qemu-img convert
 * (bench/run copy).
 *
 * Lab: one tgtd with two sparse LUNs, each a Keel block domain (LUN 1
 * holds the sources, LUN 2 the destinations), and one nfs-ganesha with an
 * NFS domain, all on 127.0.0.1.  Sources, made once, the same on NFS and
 * on block:
 *   raw    a raw volume of S MiB (KEEL_BENCH_COPY_MIB, default 2048):
 *          64 MiB runs of random data alternating with 64 MiB holes,
 *          written through Keel (the holes are never written);
 *   chain  base + 2 snapshot layers, qcow2 volumes made by Keel: the base
 *          is the raw volume converted into it by qemu-img (holes left
 *          unallocated), then per 256 MiB mid gets 32 MiB of 0xa1 and top
 *          16 MiB of 0xb2 and 8 MiB of zero clusters over the base's data
 *          (qemu-io).  The block chain is the NFS chain copied layer by
 *          layer by Keel (keel_copy_layer_to_qcow2).
 *
 * Measures: each source collapsed into a new raw volume,
 *   {nfs_to_block, block_to_block, block_to_nfs}_{raw, chain}
 *   Keel: keel_copy_to_raw(), 16 requests of 1 MiB in flight (the
 *         defaults); reads_zero on a new NFS file (sparse), not on an LV
 *         (an LV may hold an old volume's bytes: zero ranges are written).
 *         Timed: the call, its final flush included.
 *   peer: qemu-img convert -W -m 16 -n -t none -T none -O raw (cache
 *         none as VDSM runs it: qemu-img's default target cache for
 *         convert is "unsafe", which never flushes), --target-is-zero
 *         onto a new NFS file; endpoints as json: nodes -- nfs for a file,
 *         raw offset/size over iscsi for an LV.  Timed: the process.
 *         Raw sources only: qemu-img 7.2 cannot open these chains over
 *         nfs or iscsi (it resolves the relative backing name of an nfs
 *         image to "<image>/<name>", and refuses backing nodes given in
 *         json: whose file is not named by a "filename" -- "Can't specify
 *         'file' and 'filename'", "Option server.host cannot be used with
 *         a filename" -- while a raw offset/size view cannot be named so),
 *         so the chain measures are Keel's alone.
 *   Every copy is judged: qemu-img compare of the destination with the
 *   NFS source (the chain as qemu made it), both read from the servers'
 *   own files; a block source is thereby checked too.
 *   block_to_block_raw_vs_iscsi_perf: Keel's block_to_block_raw against
 *   iscsi-perf -m 32 -b 256 -t 10 reading the source LUN (target 0.6).
 *
 * Output, last: one line per measure with a peer,
 *   bench: copy MEASURE keel=N MB/s peer=N MB/s ratio=R
 * with MB = 2^20 bytes of virtual size (as iscsi-perf counts) per second.
 * KEEL_BENCH_COPY_ONLY=m1,m2: run only those measures (the names above).
 * KEEL_BENCH_COPY_ROUNDS (default 3, at most 9): alternating rounds of each
 * measure, the median of each side reported.
 * KEEL_BENCH_COPY_QEMU_CACHE overrides qemu-img's -t (e.g. unsafe);
 * KEEL_BENCH_COPY_INFLIGHT and KEEL_BENCH_COPY_CHUNK_KIB Keel's requests in
 * flight and their size (16, 1024: the engine's defaults).
 *
 * The LUNs are thin-provisioned (tgtd's thin_provisioning=1), as most
 * arrays' LUNs are today: both sides may ask where the source has data
 * (GET LBA STATUS) and zero the destination by deallocating it (WRITE
 * SAME with UNMAP).  KEEL_BENCH_COPY_THICK=1 makes them thick instead.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/monotime.h"
#include "common/strutil.h"
#include "common/uuid.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "tests/harness/lab.h"
#include "volume/copy.h"
#include "volume/vol.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define RUN (64 * MiB)     /* data and holes of the raw image alternate in runs of this */
#define PERIOD (256 * MiB) /* the snapshot layers write once per period */
#define MAX_ROUNDS 9
#define FILL (4 * MiB)
#define LAYERS 3

#define SD_NFS "c0c0c0c0-1d2b-4c3d-8e4f-5a6b7c8d9e01"
#define SD_SRC "c0c0c0c0-1d2b-4c3d-8e4f-5a6b7c8d9e02"
#define SD_DST "c0c0c0c0-1d2b-4c3d-8e4f-5a6b7c8d9e03"

enum where { NFS, BLK_SRC, BLK_DST, NWHERE };

static const char *const where_name[NWHERE] = { "nfs", "block", "block" };

struct vol {
    enum where w;
    char img[KEEL_UUID_LEN + 1], uuid[KEEL_UUID_LEN + 1];
    bool qcow2;
};

struct bench {
    uint64_t size;                  /* virtual size of every image */
    unsigned rounds;                /* of each measure (median reported) */
    const char *qemu_cache;
    struct keel_lab_tgtd *tgtd;
    struct keel_lab_nfs *nfs;
    unsigned nfs_ports[2];          /* NFS and MOUNT, as rpcbind must list them */
    struct keel_fs *fs;
    struct keel_blockdev *lun[2];
    struct keel_sd *sd[NWHERE];
    struct vol raw[NWHERE];         /* raw sources on NFS and BLK_SRC */
    struct vol chain[NWHERE][LAYERS]; /* base, mid, top */
};

struct result {
    const char *name;
    double keel, peer;
};

static void die(const char *what, const struct keel_error *err)
{
    fprintf(stderr, "bench-copy: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    uint64_t n;

    return v && keel_parse_u64(v, &n) == 0 && n > 0 ? n : def;
}

static double secs_since(uint64_t t0)
{
    return (double)(keel_now_ns() - t0) / 1e9;
}

static double mbs(uint64_t bytes, double secs)
{
    return (double)bytes / (double)MiB / secs;
}

/* Run argv: its exit status; *errout (when not NULL) gets its stderr. */
static int run(const char *const argv[], char **out, char **errout)
{
    struct keel_error err = KEEL_ERROR_INIT;
    int status = -1;

    if (keel_lab_run(argv, NULL, out, errout, &status, &err) != 0)
        die(argv[0], &err);
    return status;
}

/* Run argv; exit with its whole stderr (json: specs are long) unless it succeeds. */
static void run_ok(const char *const argv[], char **out)
{
    char *o = NULL, *e = NULL;
    int status = run(argv, &o, &e);

    if (status != 0) {
        fprintf(stderr, "bench-copy: %s %s: exit status %d:\n%s", argv[0], argv[1], status,
                e ? e : "");
        exit(1);
    }
    free(e);
    if (out != NULL)
        *out = o;
    else
        free(o);
}

/* ---- the lab: servers and domains ---- */

static void start_block(struct bench *b)
{
    struct keel_error err = KEEL_ERROR_INIT;
    /* Sources (raw + chain) on LUN 1, one destination at a time on LUN 2, and the
     * domain's own areas (about 6 GiB); sparse files, so room costs nothing. */
    uint64_t sizes[2] = { 16 * GiB + 4 * b->size, 16 * GiB + 2 * b->size };
    const char *guids[2][1] = { { "360014050000000000000000000c0c001" },
                                { "360014050000000000000000000c0c002" } };
    const char *uuids[2] = { SD_SRC, SD_DST };

    if (keel_lab_tgtd_start(&b->tgtd, &err) != 0)
        die("tgtd", &err);
    keel_lab_tgtd_set_thin(b->tgtd, getenv("KEEL_BENCH_COPY_THICK") == NULL);
    if (keel_lab_tgtd_add_target(b->tgtd, "copy", sizes, 2, NULL, NULL, &err) < 0)
        die("tgtd", &err);
    for (int i = 0; i < 2; i++) {
        struct keel_sd_create c = { .uuid = uuids[i], .name = i ? "dst" : "src",
                                    .type = KEEL_SD_TYPE_ISCSI, .klass = KEEL_SD_CLASS_DATA,
                                    .pv_guids = guids[i] };

        if (keel_blockdev_open(keel_lab_tgtd_lun_url(b->tgtd, 0, i + 1), NULL, &b->lun[i],
                               &err) != 0 ||
            keel_sd_create_block(&b->lun[i], 1, &c, &b->sd[BLK_SRC + i], &err) != 0)
            die("block domain", &err);
    }
}

static void start_nfs(struct bench *b)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_create c = { .uuid = SD_NFS, .name = "nfs", .type = KEEL_SD_TYPE_NFS,
                                .klass = KEEL_SD_CLASS_DATA, .remote_path = "127.0.0.1:/bench" };
    const char *mnt;

    if (keel_lab_nfs_start(&b->nfs, &err) != 0 ||
        keel_fs_open(keel_lab_nfs_url(b->nfs), NULL, &b->fs, &err) != 0 ||
        keel_sd_create_file(b->fs, &c, &b->sd[NFS], &err) != 0)
        die("nfs domain", &err);
    mnt = strstr(keel_lab_nfs_url(b->nfs), "mountport=");
    b->nfs_ports[0] = keel_lab_nfs_port(b->nfs);
    if (mnt == NULL || sscanf(mnt, "mountport=%u", &b->nfs_ports[1]) != 1)
        die("nfs url without mountport", NULL);
}

/* rpcinfo lists `prog` (version 3, tcp) on `port`. */
static bool rpc_has(const char *out, unsigned prog, unsigned port)
{
    char want[64];

    snprintf(want, sizeof(want), "%u    3   tcp  %u", prog, port);
    return strstr(out, want) != NULL;
}

/*
 * qemu's nfs driver finds the server through rpcbind (it takes no port),
 * where the last ganesha started wins: another test's ganesha may have taken
 * it since ours started.  Then restart ours on its ports, which registers it.
 */
static bool nfs_own_rpcbind(struct bench *b)
{
    struct keel_error err = KEEL_ERROR_INIT;
    const char *argv[] = { "rpcinfo", "-p", "127.0.0.1", NULL };
    char *out = NULL;
    bool ours;

    run_ok(argv, &out);
    ours = rpc_has(out, 100003, b->nfs_ports[0]) && rpc_has(out, 100005, b->nfs_ports[1]);
    free(out);
    if (ours)
        return true;
    fprintf(stderr, "bench-copy: rpcbind lists another ganesha; restarting ours\n");
    if (keel_lab_nfs_restart(b->nfs, &err) != 0)
        die("ganesha restart", &err);
    return false;
}

/*
 * Run a qemu program that reaches our NFS server: rpcbind made ours first,
 * and the run again (at most 3 times) when it failed and rpcbind turned out
 * to list another ganesha by then.  Seconds of the run that succeeded.
 */
static double run_qemu_nfs(struct bench *b, const char *const argv[])
{
    for (int attempt = 1;; attempt++) {
        char *e = NULL;
        uint64_t t0;
        int status;

        nfs_own_rpcbind(b);
        t0 = keel_now_ns();
        status = run(argv, NULL, &e);
        if (status == 0) {
            free(e);
            return secs_since(t0);
        }
        if (attempt == 3 || nfs_own_rpcbind(b)) {
            fprintf(stderr, "bench-copy: %s %s: exit status %d:\n%s", argv[0], argv[1], status,
                    e ? e : "");
            exit(1);
        }
        free(e);
        fprintf(stderr, "bench-copy: %s failed while rpcbind listed another ganesha; again\n",
                argv[0]);
    }
}

static void stop_lab(struct bench *b)
{
    for (int w = 0; w < NWHERE; w++)
        keel_sd_close(b->sd[w]);
    keel_fs_close(b->fs);
    for (int i = 0; i < 2; i++)
        keel_blockdev_close(b->lun[i]);
    keel_lab_nfs_stop(b->nfs);
    keel_lab_tgtd_stop(b->tgtd);
}

/* ---- volumes ---- */

struct vol_spec {
    enum keel_vol_format format;
    enum keel_vol_type type;
    const struct vol *parent;  /* NULL: a new image */
    uint64_t initial_size;     /* block qcow2: the LV size wanted */
    bool illegal;              /* a copy target */
};

static struct vol new_vol(struct bench *b, enum where w, const struct vol_spec *s)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct vol v = { .w = w, .qcow2 = s->format == KEEL_VOL_COW };
    struct keel_vol_create c = { .image = v.img, .format = s->format, .type = s->type,
                                 .capacity = b->size, .initial_size = s->initial_size,
                                 .parent = s->parent ? s->parent->uuid : NULL,
                                 .illegal = s->illegal };

    if (s->parent != NULL)
        memcpy(v.img, s->parent->img, sizeof(v.img));
    else
        keel_uuid_new(v.img);
    if (keel_vol_create(b->sd[w], &c, v.uuid, &err) != 0)
        die("keel_vol_create", &err);
    return v;
}

/* A new raw volume to copy into: sparse file on NFS, preallocated LV on block. */
static void open_payload(struct bench *b, const struct vol *v, struct keel_vol_payload *p)
{
    struct keel_error err = KEEL_ERROR_INIT;

    if (keel_vol_payload_open(b->sd[v->w], v->uuid, p, &err) != 0)
        die("keel_vol_payload_open", &err);
}

/*
 * A new destination volume.  An LV takes the extents the last copy's LV
 * had, so it is deallocated first (UNMAP; nothing on a thick LUN): every
 * copy, Keel's or qemu-img's, starts from the same state of the LUN file
 * rather than the second one of a round overwriting blocks the first one
 * allocated.
 */
static struct vol new_dst(struct bench *b, enum where w)
{
    struct vol_spec s = { .format = KEEL_VOL_RAW, .illegal = true,
                          .type = w == NFS ? KEEL_VOL_SPARSE : KEEL_VOL_PREALLOCATED };
    struct vol v = new_vol(b, w, &s);

    if (w != NFS) {
        struct keel_error err = KEEL_ERROR_INIT;
        struct keel_vol_payload p;

        open_payload(b, &v, &p);
        if (keel_blockdev_discard(p.dev, p.offset, p.size, &err) != 0 ||
            keel_blockdev_flush(p.dev, &err) != 0)
            die("discard the destination", &err);
        keel_vol_payload_close(&p);
    }
    return v;
}

static void delete_vol(struct bench *b, const struct vol *v)
{
    struct keel_error err = KEEL_ERROR_INIT;

    if (keel_vol_delete(b->sd[v->w], v->uuid, false, &err) != 0)
        die("keel_vol_delete", &err);
}

/* The volume's file on NFS, as the export's path. */
static char *nfs_path(struct bench *b, const struct vol *v)
{
    return keel_strdup_printf("%s/%s/images/%s/%s", keel_lab_nfs_export_dir(b->nfs), SD_NFS,
                              v->img, v->uuid);
}

/* ---- qemu's view of a volume: json: nodes ---- */

/*
 * The volume's bytes as qemu's node: over the network (nfs, or a raw
 * offset/size view of the LUN over iscsi) or, when local, the same bytes
 * in the server's own file (the export's file, the LUN's file).  An LV's
 * view is the whole LV for a qcow2 layer, the virtual size for raw.
 * Every node is spelled out: qemu 7.2's nfs driver finds no file named
 * by a URL inside json: ("No such file or directory").
 */
static char *bytes_node(struct bench *b, const struct vol *v, bool local)
{
    struct keel_vol_payload p;
    char *path, *node;
    int lun = v->w == BLK_SRC ? 1 : 2;

    if (v->w == NFS) {
        path = nfs_path(b, v);
        node = local ? keel_strdup_printf("{\"driver\":\"file\",\"filename\":\"%s\"}", path)
                     : keel_strdup_printf("{\"driver\":\"nfs\",\"server\":{\"type\":\"inet\","
                                          "\"host\":\"127.0.0.1\"},\"path\":\"%s\"}", path);
        free(path);
        return node;
    }
    open_payload(b, v, &p);
    path = local ? keel_strdup_printf("{\"driver\":\"file\",\"filename\":\"%s\"}",
                                      keel_lab_tgtd_lun_path(b->tgtd, 0, lun))
                 : keel_strdup_printf("{\"driver\":\"iscsi\",\"transport\":\"tcp\","
                                      "\"portal\":\"127.0.0.1:%u\",\"target\":\"%s\","
                                      "\"lun\":%d}", keel_lab_tgtd_port(b->tgtd),
                                      keel_lab_tgtd_iqn(b->tgtd, 0), lun);
    node = keel_strdup_printf("{\"driver\":\"raw\",\"offset\":%" PRIu64 ",\"size\":%" PRIu64
                              ",\"file\":%s}", p.offset, v->qcow2 ? p.size : b->size, path);
    keel_vol_payload_close(&p);
    free(path);
    return node;
}

/*
 * qemu's json: spec of one volume as an image: raw (an LV's raw view is
 * the image), or qcow2 -- with "backing": null (no backing: a layer being
 * written by whole clusters), or with the backing its header names, which
 * qemu 7.2 finds only on a local file.
 */
static char *spec(struct bench *b, const struct vol *v, bool local, bool backing)
{
    char *bytes = bytes_node(b, v, local), *s;

    if (!v->qcow2 && v->w != NFS)
        s = keel_strdup_printf("json:%s", bytes);
    else
        s = keel_strdup_printf("json:{\"driver\":\"%s\",\"file\":%s%s}",
                               v->qcow2 ? "qcow2" : "raw", bytes,
                               v->qcow2 && !backing ? ",\"backing\":null" : "");
    free(bytes);
    return s;
}

/*
 * qemu-img compare of a copy (raw) with its source, both read from the
 * servers' own files: identical or exit.  The source is read as qemu made
 * it, on NFS (a block source was made from it; a chain is its top).
 */
static void judge(struct bench *b, const struct vol *nfs_src, const struct vol *dst,
                  const char *what)
{
    char *a = spec(b, nfs_src, true, true), *d = spec(b, dst, true, false);
    const char *argv[] = { "qemu-img", "compare", "-U", a, d, NULL };

    fprintf(stderr, "bench-copy:   qemu-img compare: %s's copy is its source\n", what);
    run_ok(argv, NULL);
    free(a);
    free(d);
}

/* ---- the sources ---- */

/* Random bytes for the FILL bytes at guest offset off: the same wherever written. */
static void random_fill(unsigned char *buf, uint64_t off)
{
    uint64_t x = off * UINT64_C(0x9e3779b97f4a7c15) + 1;

    for (size_t i = 0; i < FILL; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
}

/* The raw source: data runs written through Keel, holes never written. */
static struct vol make_raw(struct bench *b, enum where w)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct vol_spec s = { .format = KEEL_VOL_RAW,
                          .type = w == NFS ? KEEL_VOL_SPARSE : KEEL_VOL_PREALLOCATED };
    struct vol v = new_vol(b, w, &s);
    struct keel_vol_payload p;
    unsigned char *buf = keel_aligned_alloc(4096, FILL);

    open_payload(b, &v, &p);
    for (uint64_t off = 0; off < b->size; off += FILL) {
        if (off % (2 * RUN) >= RUN)
            continue; /* a hole */
        random_fill(buf, off);
        if (keel_blockdev_pwrite(p.dev, buf, FILL, p.offset + off, &err) != 0)
            die("write the raw source", &err);
    }
    if (keel_blockdev_flush(p.dev, &err) != 0)
        die("flush the raw source", &err);
    keel_vol_payload_close(&p);
    free(buf);
    return v;
}

/* qemu-io commands for a snapshot layer: one write (or zero write) per period. */
static void write_layer(struct bench *b, const struct vol *v, int layer)
{
    /* mid: 32 MiB of 0xa1 at 48 MiB (half over data, half over a hole);
     * top: 16 MiB of 0xb2 at 160 MiB and 8 MiB of zero clusters at 0 (over data). */
    size_t periods = (size_t)(b->size / PERIOD), n = 0, max = 4 + 4 * periods;
    const char **argv = calloc(max + 1, sizeof(*argv));
    char **cmds = calloc(2 * periods, sizeof(*cmds));
    char *s = spec(b, v, false, false);

    argv[n++] = "qemu-io";
    for (size_t i = 0, c = 0; i < periods; i++) {
        uint64_t p = i * PERIOD / MiB;

        if (layer == 1) {
            cmds[c] = keel_strdup_printf("write -P 0xa1 %" PRIu64 "M 32M", p + 48);
        } else {
            cmds[c] = keel_strdup_printf("write -P 0xb2 %" PRIu64 "M 16M", p + 160);
            argv[n++] = "-c";
            argv[n++] = cmds[c++];
            cmds[c] = keel_strdup_printf("write -z %" PRIu64 "M 8M", p);
        }
        argv[n++] = "-c";
        argv[n++] = cmds[c++];
    }
    argv[n++] = s;
    run_qemu_nfs(b, argv);
    for (size_t i = 0; i < 2 * periods; i++)
        free(cmds[i]);
    free(cmds);
    free(argv);
    free(s);
}

/* The NFS chain: base converted from the raw source by qemu-img, layers written by qemu-io. */
static void make_nfs_chain(struct bench *b)
{
    struct vol_spec s = { .format = KEEL_VOL_COW, .type = KEEL_VOL_SPARSE };
    struct vol *c = b->chain[NFS];

    c[0] = new_vol(b, NFS, &s);
    {
        char *src = spec(b, &b->raw[NFS], false, false), *dst = spec(b, &c[0], false, false);
        const char *argv[] = { "qemu-img", "convert", "-n", "--target-is-zero", "-W", "-m",
                               "16", "-O", "qcow2", src, dst, NULL };

        run_qemu_nfs(b, argv);
        free(src);
        free(dst);
    }
    for (int i = 1; i < LAYERS; i++) {
        s.parent = &c[i - 1];
        c[i] = new_vol(b, NFS, &s);
        write_layer(b, &c[i], i);
    }
}

/* The block chain: the NFS chain copied layer by layer by Keel, bottom first. */
static void make_block_chain(struct bench *b)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct vol *c = b->chain[BLK_SRC];

    for (int i = 0; i < LAYERS; i++) {
        struct keel_vol_payload sp, dp;
        struct keel_copy_layer l;
        struct keel_copy_dst d;
        uint64_t need = 0;
        struct vol_spec s = { .format = KEEL_VOL_COW, .type = KEEL_VOL_SPARSE,
                              .parent = i ? &c[i - 1] : NULL, .illegal = true };

        open_payload(b, &b->chain[NFS][i], &sp);
        l = (struct keel_copy_layer){ .dev = sp.dev, .offset = sp.offset, .size = sp.size,
                                      .qcow2 = true };
        if (keel_copy_measure_layer_qcow2(&l, &need, &err) != 0)
            die("measure a layer", &err);
        s.initial_size = need;
        c[i] = new_vol(b, BLK_SRC, &s);
        open_payload(b, &c[i], &dp);
        d = (struct keel_copy_dst){ .dev = dp.dev, .offset = dp.offset, .size = dp.size };
        if (keel_copy_layer_to_qcow2(&l, i ? c[i - 1].uuid : NULL, i ? "qcow2" : NULL, &d, NULL,
                                     NULL, &err) != 0 ||
            keel_vol_set_legality(b->sd[BLK_SRC], c[i].uuid, KEEL_VOL_LEGAL, &err) != 0)
            die("copy a layer to block", &err);
        keel_vol_payload_close(&dp);
        keel_vol_payload_close(&sp);
    }
}

/* The sources; the block ones are checked when their copies are (against NFS). */
static void make_sources(struct bench *b)
{
    uint64_t t0 = keel_now_ns();

    b->raw[NFS] = make_raw(b, NFS);
    b->raw[BLK_SRC] = make_raw(b, BLK_SRC);
    make_nfs_chain(b);
    make_block_chain(b);
    fprintf(stderr, "bench-copy: sources made in %.1f s\n", secs_since(t0));
}

/* ---- one copy by each side ---- */

/* The source of a measure, top first. */
struct source {
    struct vol layers[LAYERS];
    size_t n;
};

static struct source source_of(struct bench *b, enum where w, bool chain)
{
    struct source s = { .n = chain ? LAYERS : 1 };

    for (size_t i = 0; i < s.n; i++)
        s.layers[i] = chain ? b->chain[w][LAYERS - 1 - i] : b->raw[w];
    return s;
}

/* Keel: keel_copy_to_raw into dst; MB/s of virtual size. */
static double keel_side(struct bench *b, const struct source *src, const struct vol *dst)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_payload sp[LAYERS], dp;
    struct keel_copy_layer l[LAYERS];
    struct keel_copy_dst d;
    struct keel_copy_opts o = { .inflight = (unsigned)env_u64("KEEL_BENCH_COPY_INFLIGHT", 16),
                                .chunk = (size_t)env_u64("KEEL_BENCH_COPY_CHUNK_KIB", 1024) * 1024 };
    struct keel_copy_stats st;
    uint64_t t0;
    double secs;

    for (size_t i = 0; i < src->n; i++) {
        open_payload(b, &src->layers[i], &sp[i]);
        l[i] = (struct keel_copy_layer){ .dev = sp[i].dev, .offset = sp[i].offset,
                                         .size = src->layers[i].qcow2 ? sp[i].size : b->size,
                                         .qcow2 = src->layers[i].qcow2 };
    }
    open_payload(b, dst, &dp);
    d = (struct keel_copy_dst){ .dev = dp.dev, .offset = dp.offset, .size = dp.size,
                                .reads_zero = dst->w == NFS };
    t0 = keel_now_ns();
    if (keel_copy_to_raw(l, src->n, &d, &o, &st, &err) != 0)
        die("keel_copy_to_raw", &err);
    secs = secs_since(t0);
    fprintf(stderr, "bench-copy:   keel %.2f s: %" PRIu64 " MiB read, %" PRIu64 " MiB data, %"
            PRIu64 " MiB zeroed, %" PRIu64 " MiB skipped\n", secs, st.read / MiB, st.data / MiB,
            st.zeroed / MiB, st.skipped / MiB);
    keel_vol_payload_close(&dp);
    for (size_t i = 0; i < src->n; i++)
        keel_vol_payload_close(&sp[i]);
    return mbs(st.size, secs);
}

/* Peer: qemu-img convert of a raw volume between the same endpoints; MB/s of virtual size. */
static double peer_side(struct bench *b, const struct vol *src, const struct vol *dst)
{
    char *s = spec(b, src, false, false), *d = spec(b, dst, false, false);
    const char *argv[] = { "qemu-img", "convert", "-W", "-m", "16", "-n", "-t", b->qemu_cache,
                           "-T", "none", "-O", "raw", s, d,
                           dst->w == NFS ? "--target-is-zero" : NULL, NULL };
    double secs;

    if (src->w == NFS || dst->w == NFS) {
        secs = run_qemu_nfs(b, argv);
    } else {
        uint64_t t0 = keel_now_ns();

        run_ok(argv, NULL);
        secs = secs_since(t0);
    }
    fprintf(stderr, "bench-copy:   qemu-img %.2f s\n", secs);
    free(s);
    free(d);
    return mbs(b->size, secs);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v). */
static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Keel copies the source at `from` into a new raw volume at `to`, then
 * qemu-img does for a raw source (it cannot open an oVirt chain over nfs
 * or iscsi, see the header); each copy is judged, then deleted.  Rounds
 * of the pair alternate, and each side's median is its result: one run of
 * either side swings by 30 % on this shared machine.
 */
static struct result measure(struct bench *b, const char *name, enum where from, enum where to,
                             bool chain)
{
    struct source src = source_of(b, from, chain);
    const struct vol *ref = chain ? &b->chain[NFS][LAYERS - 1] : &b->raw[NFS];
    struct result r = { .name = name };
    double keel[MAX_ROUNDS], peer[MAX_ROUNDS];
    struct vol dst;

    fprintf(stderr, "bench-copy: %s (%s %s -> %s)\n", name, chain ? "3-layer chain" : "raw",
            where_name[from], where_name[to]);
    for (unsigned i = 0; i < b->rounds; i++) {
        dst = new_dst(b, to);
        keel[i] = keel_side(b, &src, &dst);
        judge(b, ref, &dst, "keel");
        delete_vol(b, &dst);
        if (chain)
            continue;
        dst = new_dst(b, to);
        peer[i] = peer_side(b, &src.layers[0], &dst);
        judge(b, ref, &dst, "qemu-img");
        delete_vol(b, &dst);
    }
    r.keel = median(keel, b->rounds);
    if (!chain)
        r.peer = median(peer, b->rounds);
    return r;
}

/* iscsi-perf reading the source LUN: MiB/s (its "MB/s"). */
static double iscsi_perf(struct bench *b)
{
    const char *argv[] = { "iscsi-perf", "-m", "32", "-b", "256", "-t", "10",
                           keel_lab_tgtd_lun_url(b->tgtd, 0, 1), NULL };
    char *out = NULL, *p, *last = NULL;
    double rate = 0;

    run_ok(argv, &out);
    /* The last "iops average N (M MB/s)" is the whole run. */
    for (p = out; (p = strstr(p, "iops average")) != NULL; p++)
        last = p;
    if (last == NULL || sscanf(last, "iops average %*u (%lf MB/s)", &rate) != 1)
        die("iscsi-perf output", NULL);
    free(out);
    fprintf(stderr, "bench-copy: iscsi-perf -m 32 -b 256 -t 10 on LUN 1: %.0f MB/s\n", rate);
    return rate;
}

/* Whether KEEL_BENCH_COPY_ONLY (a comma-separated list of measures) names `name`; unset: all. */
static bool chosen(const char *name)
{
    const char *only = getenv("KEEL_BENCH_COPY_ONLY");
    size_t n = strlen(name);

    if (only == NULL || *only == '\0')
        return true;
    for (const char *p = only; (p = strstr(p, name)) != NULL; p += n)
        if ((p == only || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}

static void line(const char *measure, double keel, double peer)
{
    if (peer > 0)
        printf("bench: copy %s keel=%.0f MB/s peer=%.0f MB/s ratio=%.2f\n", measure, keel, peer,
               keel / peer);
    else
        printf("bench-copy: %s keel=%.0f MB/s (no peer: qemu-img 7.2 cannot open the chain)\n",
               measure, keel);
}

int main(void)
{
    static const struct {
        const char *name;
        enum where from, to;
        bool chain;
    } plan[] = {
        { "nfs_to_block_raw", NFS, BLK_DST, false },
        { "block_to_block_raw", BLK_SRC, BLK_DST, false },
        { "block_to_nfs_raw", BLK_SRC, NFS, false },
        { "nfs_to_block_chain", NFS, BLK_DST, true },
        { "block_to_block_chain", BLK_SRC, BLK_DST, true },
        { "block_to_nfs_chain", BLK_SRC, NFS, true },
    };
    struct result r[sizeof(plan) / sizeof(plan[0])];
    struct bench b = { 0 };
    uint64_t t0 = keel_now_ns();
    double perf;

    keel_lab_require("tgtd");
    keel_lab_require("ganesha.nfsd");
    keel_lab_require("qemu-img");
    keel_lab_require("qemu-io");
    keel_lab_require("iscsi-perf");
    keel_lab_require("rpcinfo");
    b.size = env_u64("KEEL_BENCH_COPY_MIB", 2048) * MiB / PERIOD * PERIOD;
    if (b.size == 0)
        b.size = PERIOD;
    b.rounds = (unsigned)KEEL_MIN(env_u64("KEEL_BENCH_COPY_ROUNDS", 3), MAX_ROUNDS);
    b.qemu_cache = getenv("KEEL_BENCH_COPY_QEMU_CACHE") ? getenv("KEEL_BENCH_COPY_QEMU_CACHE")
                                                         : "none";
    fprintf(stderr, "bench-copy: %" PRIu64 " MiB images; keel %" PRIu64 " x %" PRIu64 " KiB in "
            "flight; qemu-img -W -m 16 -t %s; medians of %u rounds\n", b.size / MiB,
            env_u64("KEEL_BENCH_COPY_INFLIGHT", 16), env_u64("KEEL_BENCH_COPY_CHUNK_KIB", 1024),
            b.qemu_cache, b.rounds);
    start_block(&b);
    start_nfs(&b);
    make_sources(&b);
    for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]); i++)
        r[i] = chosen(plan[i].name) ? measure(&b, plan[i].name, plan[i].from, plan[i].to,
                                              plan[i].chain)
                                    : (struct result){ .name = NULL };
    perf = chosen("block_to_block_raw") ? iscsi_perf(&b) : 0;
    stop_lab(&b);
    fprintf(stderr, "bench-copy: done in %.0f s\n", secs_since(t0));
    for (int with_peer = 0; with_peer < 2; with_peer++) /* the bench: lines last */
        for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]); i++)
            if (r[i].name != NULL && (r[i].peer > 0) == with_peer)
                line(r[i].name, r[i].keel, r[i].peer);
    if (perf > 0)
        line("block_to_block_raw_vs_iscsi_perf", r[1].keel, perf);
    return 0;
}
