/*
 * bench-volumes: how fast volumes are made (bench/run volumes).
 *
 *   block  Keel: a block domain on a 1 TiB sparse LUN served by tgtd,
 *          reached through iSCSI; 100 images of one base volume and nine
 *          snapshot layers each (qcow2, sparse, 1 GiB, one extent each):
 *          1000 keel_vol_create calls, each durable before the next.
 *          Peer, VDSM's way of making the same LV: on a loop device over a
 *          sparse 1 TiB file, a VG built with VDSM's options, then per
 *          volume one `lvcreate` with its IU_/PU_/MD_ tags and one 512-byte
 *          metadata write into the metadata LV (dd, O_DIRECT).
 *   nfs    Keel: the same 1000 volumes on an NFS domain (nfs-ganesha);
 *          reported alone (the issue names no peer for it).
 *
 * KEEL_BENCH_VOLUMES (default 1000) and KEEL_BENCH_PEER_VOLUMES (default:
 * the same) set the counts; rates are per second, so the ratio stays fair
 * when the peer runs fewer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "tests/harness/lab.h"
#include "volume/vol.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define LAYERS 10

static void die(const char *what, const struct keel_error *err)
{
    fprintf(stderr, "bench-volumes: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

static unsigned env_num(const char *name, unsigned def)
{
    const char *v = getenv(name);
    uint64_t n;

    return v && keel_parse_u64(v, &n) == 0 && n > 0 ? (unsigned)n : def;
}

static void uuid_n(char *out, unsigned kind, unsigned i)
{
    snprintf(out, KEEL_UUID_LEN + 1, "%08x-0000-4000-8000-%012x", kind, i);
}

/* Keel: n volumes as 10-layer images; volumes per second. */
static double keel_volumes(struct keel_sd *sd, unsigned n)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char img[40], vol[40], parent[40];
    uint64_t t0 = keel_now_ns();

    for (unsigned i = 0; i < n; i++) {
        struct keel_vol_create c = { .image = img, .uuid = vol, .format = KEEL_VOL_COW,
                                     .type = KEEL_VOL_SPARSE, .capacity = GiB,
                                     .initial_size = MiB };

        uuid_n(img, 0x11111111, i / LAYERS);
        uuid_n(vol, 0x22222222, i);
        if (i % LAYERS != 0) {
            uuid_n(parent, 0x22222222, i - 1);
            c.parent = parent;
        }
        if (keel_vol_create(sd, &c, NULL, &err) != 0)
            die("keel_vol_create", &err);
        if ((i + 1) % 250 == 0)
            fprintf(stderr, "bench-volumes: %s: %u volumes after %.2f s\n",
                    keel_sd_is_block(sd) ? "block" : "nfs", i + 1,
                    (double)(keel_now_ns() - t0) / 1e9);
    }
    return n / ((double)(keel_now_ns() - t0) / 1e9);
}

static double keel_block(unsigned n)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;
    struct keel_blockdev *dev = NULL;
    struct keel_sd *sd = NULL;
    uint64_t size = 1024 * GiB;
    const char *guids[] = { "360014050000000000000000000000f01" };
    struct keel_sd_create c = { .name = "bench", .type = KEEL_SD_TYPE_ISCSI,
                                .klass = KEEL_SD_CLASS_DATA, .pv_guids = guids };
    double rate;

    if (keel_lab_tgtd_start(&t, &err) != 0 ||
        keel_lab_tgtd_add_target(t, "bench", &size, 1, NULL, NULL, &err) != 0)
        die("tgtd", &err);
    if (keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), NULL, &dev, &err) != 0 ||
        keel_sd_create_block(&dev, 1, &c, &sd, &err) != 0)
        die("block domain", &err);
    rate = keel_volumes(sd, n);
    keel_sd_close(sd);
    keel_blockdev_close(dev);
    keel_lab_tgtd_stop(t);
    return rate;
}

static double keel_nfs(unsigned n)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_nfs *nfs = NULL;
    struct keel_fs *fs = NULL;
    struct keel_sd *sd = NULL;
    struct keel_sd_create c = { .name = "bench", .type = KEEL_SD_TYPE_NFS,
                                .klass = KEEL_SD_CLASS_DATA, .remote_path = "127.0.0.1:/bench" };
    double rate;

    if (keel_lab_nfs_start(&nfs, &err) != 0 ||
        keel_fs_open(keel_lab_nfs_url(nfs), NULL, &fs, &err) != 0 ||
        keel_sd_create_file(fs, &c, &sd, &err) != 0)
        die("nfs domain", &err);
    rate = keel_volumes(sd, n);
    keel_sd_close(sd);
    keel_fs_close(fs);
    keel_lab_nfs_stop(nfs);
    return rate;
}

static void lvm_ok(const char *loop, const char *const argv[])
{
    struct keel_error err = KEEL_ERROR_INIT;
    const char *devs[] = { loop };

    if (keel_lab_lvm(devs, 1, argv, NULL, &err) != 0)
        die(argv[0], &err);
}

/* VDSM's way: lvcreate with tags + a metadata block written with dd, per volume. */
static double peer_block(unsigned n)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *dir = keel_lab_tmpdir("bench-volumes", &err), *file, *loop = NULL, *slotf;
    const char *vg = "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f";
    uint64_t t0;
    FILE *f;

    if (dir == NULL)
        die("tmpdir", &err);
    file = keel_strdup_printf("%s/lun.img", dir);
    slotf = keel_strdup_printf("%s/slot", dir);
    if (keel_lab_sparse_file(file, 1024 * GiB, &err) != 0 ||
        keel_lab_loop_attach(file, 0, 0, &loop, &err) != 0)
        die("loop", &err);
    {
        const char *pvc[] = { "pvcreate", "--metadatasize", "128m", "--metadatacopies", "2",
                              "--metadataignore", "y", loop, NULL };
        const char *pvch[] = { "pvchange", "--metadataignore", "n", loop, NULL };
        const char *vgc[] = { "vgcreate", "--setautoactivation", "n", "--physicalextentsize",
                              "128m", "--addtag", "RHAT_storage_domain", vg, loop, NULL };
        const char *md[] = { "lvcreate", "-an", "-Zn", "--autobackup", "n", "--size", "128m",
                             "--name", "metadata", vg, NULL };

        lvm_ok(loop, pvc);
        lvm_ok(loop, pvch);
        lvm_ok(loop, vgc);
        lvm_ok(loop, md);
    }
    f = fopen(slotf, "wb");
    for (int i = 0; i < 512; i++)
        fputc(i < 300 ? 'x' : 0, f);
    fclose(f);
    t0 = keel_now_ns();
    for (unsigned i = 0; i < n; i++) {
        char name[40], img[40], parent[40], iu[64], pu[64], mdt[16], seek[40], of[600], in[600];
        const char *lvc[] = { "lvcreate", "-an", "-Zn", "--autobackup", "n", "--contiguous", "n",
                              "--wipesignatures", "n", "--size", "128m", "--addtag", iu,
                              "--addtag", pu, "--addtag", mdt, "--name", name, vg, NULL };
        const char *dd[] = { "dd", in, of, "bs=512", "count=1", seek, "oflag=direct",
                             "conv=notrunc", "status=none", NULL };

        uuid_n(img, 0x11111111, i / LAYERS);
        uuid_n(name, 0x22222222, i);
        uuid_n(parent, 0x22222222, i - 1);
        snprintf(iu, sizeof(iu), "IU_%s", img);
        snprintf(pu, sizeof(pu), "PU_%s",
                 i % LAYERS ? parent : "00000000-0000-0000-0000-000000000000");
        snprintf(mdt, sizeof(mdt), "MD_%u", i + 1);
        lvm_ok(loop, lvc);
        /* The metadata LV is the first LV: slot at 129 MiB + 1 MiB + n x 8 KiB. */
        snprintf(seek, sizeof(seek), "seek=%" PRIu64,
                 (130 * MiB + (uint64_t)(i + 1) * 8192) / 512);
        snprintf(of, sizeof(of), "of=%s", loop);
        snprintf(in, sizeof(in), "if=%s", slotf);
        if (keel_lab_run_ok(dd, NULL, NULL, &err) != 0)
            die("dd", &err);
    }
    {
        double rate = n / ((double)(keel_now_ns() - t0) / 1e9);

        keel_lab_loop_detach(loop);
        free(loop);
        keel_lab_tmpdir_remove(dir);
        free(dir);
        free(file);
        free(slotf);
        return rate;
    }
}

int main(void)
{
    unsigned n = env_num("KEEL_BENCH_VOLUMES", 1000);
    unsigned np = env_num("KEEL_BENCH_PEER_VOLUMES", n);
    double kb, kn, pb;

    if (n > 1900)
        n = 1900; /* metadata slots of one block domain */
    fprintf(stderr, "bench-volumes: %u volumes (%u images of %d layers); peer %u\n", n,
            (n + LAYERS - 1) / LAYERS, LAYERS, np);
    kb = keel_block(n);
    pb = peer_block(np);
    kn = keel_nfs(n);
    printf("bench: volumes block_create keel=%.1f ops/s peer=%.1f ops/s ratio=%.2f\n", kb, pb,
           kb / pb);
    printf("bench-volumes: nfs_create keel=%.1f ops/s (no peer)\n", kn);
    return 0;
}
