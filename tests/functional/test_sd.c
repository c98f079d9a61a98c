/*
 * Storage domains (volume/sd) on real storage, judged by independent tools:
 *   - POSIX and NFS (nfs-ganesha) file domains: the dom_md tree as oVirt
 *     lays it out, read on the exported directory itself;
 *   - block domains on tgtd LUNs reached through iSCSI: lvm2 (on loop
 *     devices over the LUN files) agrees with Keel's VG, the special LVs
 *     sit where VDSM puts them, e2fsck accepts the master LV's ext3, and
 *     sanlock reads the lease areas;
 *   - extend with a second LUN, format, and the refusals (a second domain
 *     on one storage, a broken seal, a leftover of an interrupted
 *     creation, LUNs too small);
 *   - keel-storage domain create/info/list --json.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "metadata/lvm_store.h"
#include "tests/functional/lvm_judge.h"
#include "tests/harness/lab.h"
#include "volume/sd.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define SD1 "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f"

struct expect_file {
    const char *name;
    unsigned mode;
    long long size; /* -1: any */
};

/* The tree of a new file domain (section 3.2), as found on the server's disk. */
static void check_tree(const char *dir, const char *uuid)
{
    static const struct expect_file files[] = {
        { "dom_md", 0775, -1 },
        { "dom_md/metadata", 0660, -1 },
        { "dom_md/ids", 0660, 1048576 },
        { "dom_md/leases", 0660, 2097152 },
        { "dom_md/xleases", 0660, 1302528 },
        { "dom_md/inbox", 0660, 16777216 },
        { "dom_md/outbox", 0660, 16777216 },
        { "dom_md/keel_journal", 0660, 0 },
        { "images", 0755, -1 },
    };

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *p = keel_strdup_printf("%s/%s/%s", dir, uuid, files[i].name);
        struct stat st;

        ck_assert_msg(stat(p, &st) == 0, "%s is missing", p);
        ck_assert_msg((st.st_mode & 07777) == files[i].mode, "%s: mode %o, want %o", p,
                      st.st_mode & 07777, files[i].mode);
        if (files[i].size >= 0)
            ck_assert_msg(st.st_size == files[i].size, "%s: size %lld, want %lld", p,
                          (long long)st.st_size, files[i].size);
        free(p);
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 65536);

    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert(fread(buf, 1, 65535, f) > 0);
    fclose(f);
    return buf;
}

/* The 1 MiB at offset of path, for comparing areas. */
static unsigned char *read_mib(const char *path, unsigned long long offset)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = calloc(1, 1 << 20);

    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseeko(f, (off_t)offset, SEEK_SET), 0);
    ck_assert_uint_eq(fread(buf, 1, 1 << 20, f), 1 << 20);
    fclose(f);
    return buf;
}

/*
 * sanlock judges the lease areas: read_leader accepts the delta leases of
 * hosts 1 and 2000 and the SDM leader, dump shows the SDM resource of the
 * lockspace <uuid>, and both areas are byte for byte what
 * `sanlock direct init` writes itself.
 */
static void sanlock_judges(const char *ids, unsigned long long ids_off, const char *leases,
                           unsigned long long leases_off, const char *uuid)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *h1 = keel_strdup_printf("%s:1:%s:%llu", uuid, ids, ids_off);
    char *h2000 = keel_strdup_printf("%s:2000:%s:%llu", uuid, ids, ids_off);
    char *sdm = keel_strdup_printf("%s:SDM:%s:%llu", uuid, leases, leases_off + 1048576);
    char *area = keel_strdup_printf("%s:%llu:1048576", leases, leases_off + 1048576);
    const char *rl1[] = { "sanlock", "direct", "read_leader", "-s", h1, NULL };
    const char *rl2[] = { "sanlock", "direct", "read_leader", "-s", h2000, NULL };
    const char *rl3[] = { "sanlock", "direct", "read_leader", "-r", sdm, NULL };
    const char *dump[] = { "sanlock", "direct", "dump", area, NULL };
    char *out = NULL, *dir = keel_lab_tmpdir("sanlock-peer", &err);
    char *pids = keel_strdup_printf("%s/ids", dir), *pleases = keel_strdup_printf("%s/leases", dir);
    char *s1 = keel_strdup_printf("%s:0:%s:0", uuid, pids);
    char *s2 = keel_strdup_printf("%s:SDM:%s:1048576", uuid, pleases);
    const char *init1[] = { "sanlock", "direct", "init", "-s", s1, "-Z", "512", "-A", "1M",
                            "-o", "10", NULL };
    const char *init2[] = { "sanlock", "direct", "init", "-r", s2, "-Z", "512", "-A", "1M", NULL };
    unsigned char *a, *b;

    ck_assert_msg(keel_lab_run_ok(rl1, NULL, &out, &err) == 0, "%s", err.msg);
    ck_assert_msg(strstr(out, "read_leader done 0") != NULL, "%s", out);
    free(out);
    ck_assert_msg(keel_lab_run_ok(rl2, NULL, &out, &err) == 0, "%s", err.msg);
    free(out);
    ck_assert_msg(keel_lab_run_ok(rl3, NULL, &out, &err) == 0, "%s", err.msg);
    free(out);
    ck_assert_msg(keel_lab_run_ok(dump, NULL, &out, &err) == 0, "%s", err.msg);
    ck_assert_msg(strstr(out, uuid) != NULL && strstr(out, " SDM ") != NULL,
                  "sanlock dump of leases lacks %s / SDM:\n%s", uuid, out);
    free(out);
    /* The peer writes the same areas; the bytes must be equal. */
    ck_assert_msg(keel_lab_sparse_file(pids, 1 << 20, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_sparse_file(pleases, 2 << 20, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_run_ok(init1, NULL, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_run_ok(init2, NULL, NULL, &err) == 0, "%s", err.msg);
    a = read_mib(ids, ids_off);
    b = read_mib(pids, 0);
    ck_assert_msg(memcmp(a, b, 1 << 20) == 0, "ids differs from sanlock's own init");
    free(a);
    free(b);
    a = read_mib(leases, leases_off + 1048576);
    b = read_mib(pleases, 1048576);
    ck_assert_msg(memcmp(a, b, 1 << 20) == 0, "leases differs from sanlock's own init");
    free(a);
    free(b);
    a = read_mib(leases, leases_off);
    for (size_t i = 0; i < (1 << 20); i++)
        ck_assert_msg(a[i] == 0, "leases slot 0 is not zero at %zu", i);
    free(a);
    keel_lab_tmpdir_remove(dir);
    free(dir);
    free(pids);
    free(pleases);
    free(s1);
    free(s2);
    free(h1);
    free(h2000);
    free(sdm);
    free(area);
}

static void file_domain(struct keel_fs *fs, const char *ondisk, enum keel_sd_type type,
                        const char *remote)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_create c = { .uuid = SD1, .name = "data-1", .type = type,
                                .klass = KEEL_SD_CLASS_DATA, .remote_path = remote };
    struct keel_sd *sd = NULL, *sd2 = NULL;
    struct keel_sd_md md;
    struct keel_sd_space sp;
    char *p, *text;
    bool sealed = false;

    ck_assert_msg(keel_sd_create_file(fs, &c, &sd, &err) == 0, "%s", err.msg);
    check_tree(ondisk, SD1);
    /* The metadata file is what Keel says, sealed. */
    p = keel_strdup_printf("%s/%s/dom_md/metadata", ondisk, SD1);
    text = slurp(p);
    keel_sd_md_init(&md);
    ck_assert_msg(keel_sd_md_parse(text, strlen(text), &md, &sealed, &err) == 0, "%s", err.msg);
    ck_assert(sealed);
    ck_assert(keel_sd_md_equal(&md, keel_sd_md(sd)));
    ck_assert_str_eq(keel_sd_md_get(&md, "REMOTE_PATH"), remote);
    ck_assert_str_eq(keel_sd_md_get(&md, "TYPE"), keel_sd_type_name(type));
    ck_assert_str_eq(keel_sd_md_get(&md, "VERSION"), "5");
    keel_sd_md_release(&md);
    free(text);
    {
        char *ids = keel_strdup_printf("%s/%s/dom_md/ids", ondisk, SD1);
        char *leases = keel_strdup_printf("%s/%s/dom_md/leases", ondisk, SD1);

        sanlock_judges(ids, 0, leases, 0, SD1);
        free(ids);
        free(leases);
    }
    /* Read back, by name and as the only domain there. */
    ck_assert_msg(keel_sd_open_file(fs, NULL, &sd2, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(keel_sd_info(sd2)->uuid, SD1);
    ck_assert_str_eq(keel_sd_info(sd2)->description, "data-1");
    ck_assert_uint_eq(keel_sd_info(sd2)->version, 5);
    ck_assert_msg(keel_sd_space(sd2, &sp, &err) == 0, "%s", err.msg);
    ck_assert(sp.capacity > 0 && sp.free <= sp.capacity);
    keel_sd_close(sd2);
    /* One domain per storage. */
    c.uuid = NULL;
    ck_assert_int_eq(keel_sd_create_file(fs, &c, &sd2, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_EXIST);
    ck_assert_msg(strstr(err.msg, "the storage already holds domain " SD1) != NULL, "%s",
                  err.msg);
    /* A broken seal is refused, naming the domain. */
    {
        FILE *f;

        text = slurp(p);
        *strstr(text, "data-1") = 'D';
        f = fopen(p, "wb");
        fputs(text, f);
        fclose(f);
        ck_assert_int_eq(keel_sd_open_file(fs, SD1, &sd2, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
        ck_assert_msg(keel_str_has_prefix(err.msg, "storage domain " SD1
                                                   ": metadata checksum mismatch"),
                      "%s", err.msg);
        *strstr(text, "Data-1") = 'd';
        f = fopen(p, "wb");
        fputs(text, f);
        fclose(f);
        free(text);
    }
    free(p);
    /* Format removes the tree. */
    ck_assert_msg(keel_sd_format(sd, &err) == 0, "%s", err.msg);
    p = keel_strdup_printf("%s/%s", ondisk, SD1);
    ck_assert_msg(access(p, F_OK) != 0, "%s still there after format", p);
    free(p);
}

START_TEST(posix_domain)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *dir = keel_lab_tmpdir("sd-posix", &err);
    char *url = keel_strdup_printf("file://%s", dir);
    struct keel_fs *fs = NULL;

    ck_assert_msg(dir != NULL, "%s", err.msg);
    ck_assert_msg(keel_fs_open(url, NULL, &fs, &err) == 0, "%s", err.msg);
    file_domain(fs, dir, KEEL_SD_TYPE_POSIXFS, dir);
    keel_fs_close(fs);
    keel_lab_tmpdir_remove(dir);
    free(dir);
    free(url);
}
END_TEST

START_TEST(nfs_domain)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_nfs *n = NULL;
    struct keel_fs *fs = NULL;
    char *remote;

    ck_assert_msg(keel_lab_nfs_start(&n, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_fs_open(keel_lab_nfs_url(n), NULL, &fs, &err) == 0, "%s", err.msg);
    remote = keel_strdup_printf("127.0.0.1:%s", keel_lab_nfs_export_dir(n));
    file_domain(fs, keel_lab_nfs_export_dir(n), KEEL_SD_TYPE_NFS, remote);
    free(remote);
    keel_fs_close(fs);
    keel_lab_nfs_stop(n);
}
END_TEST

static struct keel_blockdev *open_lun(struct keel_lab_tgtd *t, int i)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *d = NULL;

    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, i), NULL, &d, &err) == 0, "%s",
                  err.msg);
    return d;
}

/* The byte offset of an LV's first extent on PV 0 (single segment). */
static uint64_t lv_offset(struct keel_sd *sd, const char *name, uint32_t *pe)
{
    struct keel_lvm_store *st = keel_sd_vg(sd);
    const struct keel_lvm_lv *lv = keel_lvm_vg_find_lv(keel_lvm_store_vg(st), name);

    ck_assert_msg(lv != NULL && lv->nsegs == 1, "LV %s", name);
    *pe = lv->segs[0].stripes[0].pe;
    return keel_lvm_store_pe_offset(st, lv->segs[0].stripes[0].pv, *pe);
}

START_TEST(block_domain)
{
    static const struct { const char *name; uint32_t pe; } where[] = {
        { "metadata", 0 }, { "ids", 1 },      { "inbox", 2 },  { "outbox", 3 },
        { "leases", 4 },   { "xleases", 20 }, { "master", 28 }, { "keel_journal", 36 },
    };
    uint64_t sizes[] = { 12 * GiB, 4 * GiB };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;
    struct keel_blockdev *d[2];
    const char *files[2];
    const char *guids[] = { "360014050000000000000000000000a01" };
    struct keel_sd_create c = { .uuid = SD1, .name = "block-1", .type = KEEL_SD_TYPE_ISCSI,
                                .klass = KEEL_SD_CLASS_DATA, .pv_guids = guids };
    struct keel_sd *sd = NULL, *sd2 = NULL;
    const struct keel_lvm_vg *vg;
    struct lvm_judge j;
    uint32_t pe;

    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "sd", sizes, 2, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    d[0] = open_lun(t, 1);
    d[1] = open_lun(t, 2);
    files[0] = keel_lab_tgtd_lun_path(t, 0, 1);
    files[1] = keel_lab_tgtd_lun_path(t, 0, 2);
    /* Too small alone. */
    c.uuid = NULL;
    ck_assert_int_eq(keel_sd_create_block(d + 1, 1, &c, &sd, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOSPC);
    ck_assert_msg(strstr(err.msg, "a block domain needs at least 10 GiB") != NULL, "%s",
                  err.msg);
    c.uuid = SD1;
    ck_assert_msg(keel_sd_create_block(d, 1, &c, &sd, &err) == 0, "%s", err.msg);

    /* lvm2 sees the VG Keel says it wrote, tags and all. */
    ck_assert_msg(lvm_judge_attach(&j, files, 2, &err) == 0, "%s", err.msg);
    ck_assert_msg(lvm_judge_agrees(&j, keel_lvm_store_vg(keel_sd_vg(sd)), &err) == 0, "%s",
                  err.msg);
    vg = keel_lvm_store_vg(keel_sd_vg(sd));
    ck_assert_str_eq(vg->name, SD1);
    ck_assert_uint_eq(vg->extent_size, 128 * MiB / 512);
    ck_assert(keel_lvm_strlist_has(&vg->tags, "RHAT_storage_domain"));
    ck_assert(!keel_lvm_strlist_has(&vg->tags, "RHAT_storage_domain_UNREADY"));
    ck_assert(keel_lvm_strlist_has(&vg->tags, "MDT_TYPE=ISCSI"));
    {
        bool pv0 = false;

        for (size_t i = 0; i < vg->tags.n; i++)
            pv0 |= keel_str_has_prefix(vg->tags.v[i], "MDT_PV0=pv:360014050000000000000000000000a01"
                                                      "&44&uuid:");
        ck_assert_msg(pv0, "no escaped MDT_PV0 tag");
    }
    ck_assert_msg(keel_str_has_prefix(keel_sd_md_get(keel_sd_md(sd), "PV0"),
                                      "pv:360014050000000000000000000000a01,uuid:"),
                  "%s", keel_sd_md_get(keel_sd_md(sd), "PV0"));
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        lv_offset(sd, where[i].name, &pe);
        ck_assert_msg(pe == where[i].pe, "LV %s at extent %u, VDSM puts it at %u",
                      where[i].name, pe, where[i].pe);
        ck_assert_uint_eq(keel_lvm_vg_find_lv(vg, where[i].name)->tags.n, 0);
    }
    /* e2fsck accepts the master LV's ext3. */
    {
        uint64_t off = lv_offset(sd, "master", &pe);
        char *loop = NULL;
        const char *argv[] = { "e2fsck", "-fn", NULL, NULL };

        ck_assert_msg(keel_lab_loop_attach(files[0], off, GiB, &loop, &err) == 0, "%s",
                      err.msg);
        argv[2] = loop;
        ck_assert_msg(keel_lab_run_ok(argv, NULL, NULL, &err) == 0, "%s", err.msg);
        keel_lab_loop_detach(loop);
        free(loop);
    }
    {
        uint32_t pe_ids, pe_leases;
        uint64_t ids = lv_offset(sd, "ids", &pe_ids), leases = lv_offset(sd, "leases", &pe_leases);

        sanlock_judges(files[0], (unsigned long long)ids, files[0], (unsigned long long)leases,
                       SD1);
    }
    keel_sd_close(sd);

    /* Read back from the first LUN alone. */
    ck_assert_msg(keel_sd_open_block(d, 1, NULL, &sd, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(keel_sd_info(sd)->uuid, SD1);
    ck_assert_str_eq(keel_sd_info(sd)->description, "block-1");
    ck_assert_int_eq(keel_sd_info(sd)->type, KEEL_SD_TYPE_ISCSI);
    ck_assert(keel_sd_info(sd)->vg_uuid != NULL);

    /* Extend with the second LUN: lvm2 agrees, the PV map has PV1. */
    ck_assert_msg(keel_sd_extend(sd, d[1], "360014050000000000000000000000a02", &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(lvm_judge_agrees(&j, keel_lvm_store_vg(keel_sd_vg(sd)), &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_str_has_prefix(keel_sd_md_get(keel_sd_md(sd), "PV1"),
                                      "pv:360014050000000000000000000000a02,uuid:"),
                  "%s", keel_sd_md_get(keel_sd_md(sd), "PV1"));
    ck_assert_msg(strstr(keel_sd_md_get(keel_sd_md(sd), "PV1"), ",mapoffset:93") != NULL, "%s",
                  keel_sd_md_get(keel_sd_md(sd), "PV1"));
    keel_sd_close(sd);
    ck_assert_msg(keel_sd_open_block(d, 2, SD1, &sd, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_lvm_store_vg(keel_sd_vg(sd))->npvs, 2);

    /* Format: lvm2 finds no PV left. */
    ck_assert_msg(keel_sd_format(sd, &err) == 0, "%s", err.msg);
    {
        const char *argv[] = { "pvs", "--noheadings", "-o", "pv_name", NULL };
        char *out = NULL;

        ck_assert_msg(lvm_judge_run(&j, argv, &out, &err) == 0, "%s", err.msg);
        ck_assert_msg(strstr(out, "/dev/loop") == NULL, "PVs left after format:\n%s", out);
        free(out);
    }
    ck_assert_int_eq(keel_sd_open_block(d, 2, NULL, &sd2, &err), -1);
    lvm_judge_detach(&j);
    keel_blockdev_close(d[0]);
    keel_blockdev_close(d[1]);
    keel_lab_tgtd_stop(t);
}
END_TEST

/* A VG still tagged UNREADY is the leftover of an interrupted creation. */
START_TEST(unready_leftover)
{
    uint64_t sizes[] = { 12 * GiB };
    static const char *const unready[] = { "RHAT_storage_domain_UNREADY" };
    struct keel_lvm_create_opts o = { .layout = KEEL_LVM_LAYOUT_OVIRT, .host = "keeltest" };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;
    struct keel_blockdev *d;
    struct keel_lvm_store *st = NULL;
    struct keel_sd *sd = NULL;

    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "sd", sizes, 1, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    d = open_lun(t, 1);
    ck_assert_msg(keel_lvm_store_create(&d, 1, SD1, 128 * MiB, unready, 1, &o, &st, &err) == 0,
                  "%s", err.msg);
    keel_lvm_store_close(st);
    ck_assert_int_eq(keel_sd_open_block(&d, 1, NULL, &sd, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CORRUPT);
    ck_assert_str_eq(err.msg, "storage domain " SD1 ": VG is still tagged "
                              "RHAT_storage_domain_UNREADY: the leftover of an interrupted "
                              "creation");
    keel_blockdev_close(d);
    keel_lab_tgtd_stop(t);
}
END_TEST

/* keel-storage domain create / info / list, as an admin runs them. */
START_TEST(cli_domain)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *dir = keel_lab_tmpdir("sd-cli", &err);
    char *url = keel_strdup_printf("file://%s", dir);
    char *exe = keel_strdup_printf("%s/cli/keel-storage", getenv("KEEL_BUILD_ROOT"));
    const char *create[] = { exe, "domain", "create", "--type", "posix", "--name", "cli dom",
                             "--uuid", SD1, url, NULL };
    const char *info[] = { exe, "domain", "info", "--json", url, NULL };
    const char *list[] = { exe, "domain", "list", url, NULL };
    const char *again[] = { exe, "domain", "create", "--type", "posix", "--name", "x", url, NULL };
    char *out = NULL, *errout = NULL;
    json_t *o;
    int status = 0;

    ck_assert_msg(keel_lab_run_ok(create, NULL, &out, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(out, SD1 "\n");
    free(out);
    ck_assert_msg(keel_lab_run_ok(info, NULL, &out, &err) == 0, "%s", err.msg);
    o = json_loads(out, 0, NULL);
    ck_assert_msg(o != NULL, "not JSON: %s", out);
    ck_assert_str_eq(json_string_value(json_object_get(o, "uuid")), SD1);
    ck_assert_str_eq(json_string_value(json_object_get(o, "name")), "cli dom");
    ck_assert_str_eq(json_string_value(json_object_get(o, "type")), "POSIXFS");
    ck_assert_str_eq(json_string_value(json_object_get(o, "class")), "Data");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "version")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "block_size")), 512);
    ck_assert(json_integer_value(json_object_get(o, "capacity")) > 0);
    json_decref(o);
    free(out);
    ck_assert_msg(keel_lab_run_ok(list, NULL, &out, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(out, SD1 "\n");
    free(out);
    ck_assert_int_eq(keel_lab_run(again, NULL, &out, &errout, &status, &err), 0);
    ck_assert_int_eq(status, 1);
    ck_assert_msg(strstr(errout, "the storage already holds domain " SD1) != NULL, "%s",
                  errout);
    free(out);
    free(errout);
    keel_lab_tmpdir_remove(dir);
    free(dir);
    free(url);
    free(exe);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sd");
    TCase *tc = tcase_create("sd");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    keel_lab_require("ganesha.nfsd");
    keel_lab_require("lvm");
    keel_lab_require("sanlock");
    keel_lab_require("e2fsck");
    keel_lab_require("mke2fs");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, posix_domain);
    tcase_add_test(tc, nfs_domain);
    tcase_add_test(tc, block_domain);
    tcase_add_test(tc, unready_leftover);
    tcase_add_test(tc, cli_domain);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
