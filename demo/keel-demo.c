/*
 * keel-demo: Keel's storage demo on this one machine.
 *
 * Starts an iSCSI target (tgtd) with one LUN and an NFS server
 * (nfs-ganesha) on 127.0.0.1, then through Keel's io/ layer:
 *   - discovers the target and lists its LUNs,
 *   - writes a pattern on the LUN and reads it back (through Keel and from
 *     the LUN's backing file),
 *   - creates a directory and a file on the NFS export, writes a pattern,
 *     reads it back (through Keel and from the exported directory),
 *   - makes a storage domain in oVirt's V5 format on the NFS export and
 *     one on a second LUN (an LVM2 VG written by Keel through iSCSI), and
 *     on each a disk with two snapshots and a thin disk on a template,
 *     and prints their volume chains as vdsm-tool dump-volume-chains does,
 * and prints what it did and where the servers run.  With --keep the
 * servers stay up until Enter is pressed, so they can be looked at
 * (iscsi-ls, nfs-ls, ls).  As the data center grows (engine, hosts), this
 * demo grows with it.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "io/iscsi_inventory.h"
#include "tests/harness/lab.h"
#include "volume/image.h"
#include "volume/vol.h"

#define MiB (UINT64_C(1) << 20)
#define PATTERN (16 * MiB)

static void fail(const char *what, const struct keel_error *err)
{
    fprintf(stderr, "keel-demo: %s: %s\n", what, err->msg);
    exit(1);
}

static void pattern(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)((i * 31 + seed) ^ (i >> 12));
}

static bool same_as_file(const char *path, uint64_t off, const unsigned char *want, size_t n)
{
    unsigned char *got = malloc(n);
    int fd = open(path, O_RDONLY);
    bool ok = fd >= 0 && pread(fd, got, n, (off_t)off) == (ssize_t)n && memcmp(got, want, n) == 0;

    if (fd >= 0)
        close(fd);
    free(got);
    return ok;
}

/* A disk with two snapshots and a thin disk on a template; print the chains. */
static void disks(struct keel_sd *sd)
{
    static const char *const img = "d15c0000-0000-4000-8000-000000000001";
    static const char *const timg = "7e3b1a7e-0000-4000-8000-000000000002";
    static const char *const thin = "d15c0000-0000-4000-8000-000000000003";
    struct keel_error err = KEEL_ERROR_INIT;
    char base[40], s1[40], s2[40], tv[40], tc[40];
    bool block = keel_sd_is_block(sd);
    struct keel_vol_create c = { .image = img, .format = block ? KEEL_VOL_COW : KEEL_VOL_RAW,
                                 .type = block ? KEEL_VOL_PREALLOCATED : KEEL_VOL_SPARSE,
                                 .capacity = 1024 * MiB, .description = "demo disk" };
    const char *imgs[] = { img, timg, thin };

    if (keel_vol_create(sd, &c, base, &err) != 0)
        fail("creating a disk", &err);
    c.format = KEEL_VOL_COW;
    c.type = KEEL_VOL_SPARSE;
    c.parent = base;
    if (keel_vol_create(sd, &c, s1, &err) != 0)
        fail("creating a snapshot", &err);
    c.parent = s1;
    if (keel_vol_create(sd, &c, s2, &err) != 0)
        fail("creating a snapshot", &err);
    c = (struct keel_vol_create){ .image = timg, .format = KEEL_VOL_RAW,
                                  .type = KEEL_VOL_PREALLOCATED, .capacity = 256 * MiB,
                                  .description = "demo template", .shared = true };
    if (keel_vol_create(sd, &c, tv, &err) != 0)
        fail("creating a template", &err);
    c = (struct keel_vol_create){ .image = thin, .format = KEEL_VOL_COW, .type = KEEL_VOL_SPARSE,
                                  .capacity = 256 * MiB, .parent = tv,
                                  .description = "thin disk on the template" };
    if (keel_vol_create(sd, &c, tc, &err) != 0)
        fail("creating a thin disk", &err);
    for (size_t i = 0; i < 3; i++) {
        struct keel_chain ch;
        struct keel_strbuf sb;

        if (keel_image_chain(sd, imgs[i], &ch, &err) != 0)
            fail("reading a chain", &err);
        keel_strbuf_init(&sb, 512);
        keel_chain_format(&ch, &sb);
        fputs(sb.buf, stdout);
        keel_strbuf_release(&sb);
        keel_chain_release(&ch);
    }
}

static double mibs(size_t n, uint64_t ns)
{
    return (double)n / MiB / ((double)ns / 1e9);
}

int main(int argc, char **argv)
{
    bool keep = argc > 1 && strcmp(argv[1], "--keep") == 0;
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;
    struct keel_lab_nfs *n = NULL;
    struct keel_blockdev *dev = NULL;
    struct keel_fs *fs = NULL;
    struct keel_file *f = NULL;
    struct keel_iscsi_inventory inv = { 0 };
    uint64_t lun_sizes[] = { 256 * MiB, UINT64_C(12) << 30 };
    struct keel_sd *sd = NULL;
    struct keel_blockdev *lun2 = NULL;
    unsigned char *w = malloc(PATTERN), *r = malloc(PATTERN);
    uint64_t t0, tw, tr;
    char *path;

    keel_lab_require("tgtd");
    keel_lab_require("ganesha.nfsd");
    keel_lab_require("rpcbind");
    printf("Keel storage demo\n=================\n\n");

    /* iSCSI */
    if (keel_lab_tgtd_start(&t, &err) != 0 ||
        keel_lab_tgtd_add_target(t, "demo", lun_sizes, 2, NULL, NULL, &err) != 0)
        fail("starting tgtd", &err);
    printf("iSCSI target: tgtd (pid %d) on 127.0.0.1:%u, directory %s\n",
           (int)keel_lab_tgtd_pid(t), keel_lab_tgtd_port(t), keel_lab_tgtd_dir(t));
    if (keel_iscsi_discover(keel_lab_tgtd_portal_url(t), NULL, &inv, &err) != 0)
        fail("discovery", &err);
    for (size_t i = 0; i < inv.ntargets; i++) {
        printf("  discovered target %s\n", inv.targets[i].iqn);
        for (size_t j = 0; j < inv.targets[i].nluns; j++) {
            const struct keel_iscsi_lun *l = &inv.targets[i].luns[j];

            if (l->device_type != KEEL_SCSI_TYPE_DISK)
                continue;
            printf("    LUN %d: %" PRIu64 " MiB, %s %s, serial %s, id %s\n", l->lun,
                   l->size / MiB, l->vendor, l->product, l->serial, l->devid);
        }
    }
    keel_iscsi_inventory_release(&inv);
    if (keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), NULL, &dev, &err) != 0)
        fail("opening the LUN", &err);
    pattern(w, PATTERN, 7);
    t0 = keel_now_ns();
    if (keel_blockdev_pwrite(dev, w, PATTERN, 64 * MiB, &err) != 0 ||
        keel_blockdev_flush(dev, &err) != 0)
        fail("writing the LUN", &err);
    tw = keel_now_ns() - t0;
    t0 = keel_now_ns();
    if (keel_blockdev_pread(dev, r, PATTERN, 64 * MiB, &err) != 0)
        fail("reading the LUN", &err);
    tr = keel_now_ns() - t0;
    printf("  wrote %u MiB at offset 64 MiB of %s (%.0f MiB/s), read it back (%.0f MiB/s): %s\n",
           (unsigned)(PATTERN / MiB), keel_blockdev_name(dev), mibs(PATTERN, tw),
           mibs(PATTERN, tr), memcmp(w, r, PATTERN) == 0 ? "identical" : "DIFFERENT");
    printf("  the LUN's backing file %s holds: %s\n\n", keel_lab_tgtd_lun_path(t, 0, 1),
           same_as_file(keel_lab_tgtd_lun_path(t, 0, 1), 64 * MiB, w, PATTERN) ? "the same bytes"
                                                                               : "OTHER BYTES");
    keel_blockdev_close(dev);

    /* NFS */
    if (keel_lab_nfs_start(&n, &err) != 0)
        fail("starting nfs-ganesha", &err);
    printf("NFS server: nfs-ganesha (pid %d), NFSv3 on 127.0.0.1:%u, exporting %s\n",
           (int)keel_lab_nfs_pid(n), keel_lab_nfs_port(n), keel_lab_nfs_export_dir(n));
    if (keel_fs_open(keel_lab_nfs_url(n), NULL, &fs, &err) != 0)
        fail("mounting the export", &err);
    if (keel_fs_mkdirs(fs, "demo/images", 0755, &err) != 0 ||
        keel_file_open(fs, "demo/images/volume.raw", KEEL_O_RDWR | KEEL_O_CREAT, 0660, &f,
                       &err) != 0)
        fail("creating a file", &err);
    pattern(w, PATTERN, 11);
    t0 = keel_now_ns();
    if (keel_file_pwrite(f, w, PATTERN, 0, &err) != 0 || keel_file_fsync(f, &err) != 0)
        fail("writing the file", &err);
    tw = keel_now_ns() - t0;
    t0 = keel_now_ns();
    if (keel_file_pread(f, r, PATTERN, 0, NULL, &err) != 0)
        fail("reading the file", &err);
    tr = keel_now_ns() - t0;
    printf("  mounted %s\n  wrote %u MiB to demo/images/volume.raw (%.0f MiB/s), read it back "
           "(%.0f MiB/s): %s\n",
           keel_lab_nfs_url(n), (unsigned)(PATTERN / MiB), mibs(PATTERN, tw), mibs(PATTERN, tr),
           memcmp(w, r, PATTERN) == 0 ? "identical" : "DIFFERENT");
    path = keel_strdup_printf("%s/demo/images/volume.raw", keel_lab_nfs_export_dir(n));
    printf("  the exported file %s holds: %s\n\n", path,
           same_as_file(path, 0, w, PATTERN) ? "the same bytes" : "OTHER BYTES");
    free(path);
    keel_file_close(f, NULL);

    /* Storage domains */
    {
        char *remote = keel_strdup_printf("127.0.0.1:%s", keel_lab_nfs_export_dir(n));
        struct keel_sd_create c = { .name = "demo-nfs", .type = KEEL_SD_TYPE_NFS,
                                    .klass = KEEL_SD_CLASS_DATA, .remote_path = remote };

        if (keel_sd_create_file(fs, &c, &sd, &err) != 0)
            fail("creating the NFS domain", &err);
        printf("Storage domain %s (NFS, V5) in %s/%s\n", keel_sd_info(sd)->uuid,
               keel_lab_nfs_export_dir(n), keel_sd_info(sd)->uuid);
        disks(sd);
        keel_sd_close(sd);
        free(remote);
    }
    {
        const char *guids[] = { "demo-lun-2" };
        struct keel_sd_create c = { .name = "demo-iscsi", .type = KEEL_SD_TYPE_ISCSI,
                                    .klass = KEEL_SD_CLASS_DATA, .pv_guids = guids };

        if (keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 2), NULL, &lun2, &err) != 0 ||
            keel_sd_create_block(&lun2, 1, &c, &sd, &err) != 0)
            fail("creating the block domain", &err);
        printf("Storage domain %s (iSCSI, V5): VG %s on %s (12 GiB)\n", keel_sd_info(sd)->uuid,
               keel_sd_info(sd)->uuid, keel_lab_tgtd_lun_url(t, 0, 2));
        disks(sd);
        keel_sd_close(sd);
        keel_blockdev_close(lun2);
    }
    keel_fs_close(fs);

    if (keep) {
        char *sub = keel_lab_nfs_url_sub(n, "demo/images");

        printf("The servers stay up. Try:\n  iscsi-ls -s %s\n  nfs-ls '%s'\n"
               "  build/cli/keel-storage image chain '%s'\n"
               "  build/cli/keel-storage volume list %s\n"
               "Press Enter to stop them.\n",
               keel_lab_tgtd_portal_url(t), sub, keel_lab_nfs_url(n),
               keel_lab_tgtd_lun_url(t, 0, 2));
        fflush(stdout);
        getchar();
        free(sub);
    }
    keel_lab_nfs_stop(n);
    keel_lab_tgtd_stop(t);
    printf("Stopped tgtd and nfs-ganesha; their directories are removed.\n");
    free(w);
    free(r);
    return 0;
}
