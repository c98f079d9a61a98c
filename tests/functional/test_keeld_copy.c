/*
 * keeld's data jobs, two keeld processes over TLS with the harness's tgtd
 * and nfs-ganesha, qemu-img and lvm2 as judges:
 *
 *   - host 1 is SPM of a pool with an NFS master and a block domain; a
 *     3-layer qcow2 image made by qemu is uploaded into NFS volumes;
 *   - host 2 (not SPM) measures it and copies it to the block domain
 *     preserving the chain, into ILLEGAL volumes the SPM made: they end
 *     LEGAL, lvm2 lists the LVs, qemu-img checks every layer and finds
 *     each equal to qemu's;
 *   - host 2 copies that block chain collapsed into a raw NFS volume:
 *     qemu-img compare says it equals qemu's chain;
 *   - a copy cancelled half-way ends cancelled, its destination ILLEGAL
 *     and deletable, the source untouched;
 *   - a copy during a tgtd restart either ends done with a destination
 *     equal to its source, or fails with the destination ILLEGAL;
 *   - Data.zero wipes a volume: ILLEGAL, its LV all zeroes on the LUN.
 * Runs alone (not parallel): lease timing.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/errc.h"
#include "common/monotime.h"
#include "common/strutil.h"
#include "common/uuid.h"
#include "functional/keeld_lab.h"
#include "functional/lvm_judge.h"
#include "functional/sanlock_judge.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "volume/copy.h"
#include "volume/sd.h"
#include "volume/vol.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define POOL "0f1e2d3c-4b5a-4697-8877-665544332211"
#define IMG "1b1b1b1b-0000-4000-8000-000000000001"
#define IMG_R "2c2c2c2c-0000-4000-8000-000000000002"
#define IMG_BIG "3d3d3d3d-0000-4000-8000-000000000003"
#define CAP (128 * MiB)

static const char *const vols[3] = { "a0a0a0a0-0000-4000-8000-000000000000",
                                     "a1a1a1a1-0000-4000-8000-000000000001",
                                     "a2a2a2a2-0000-4000-8000-000000000002" };

struct events {
    int progress, done;
    char state[32];
    char job[KEEL_UUID_LEN + 1];
};

static void on_event(void *opaque, const char *method, json_t *params)
{
    struct events *e = opaque;
    const char *job = json_string_value(json_object_get(params, "job"));

    if (job == NULL || strcmp(job, e->job) != 0)
        return;
    if (strcmp(method, "Job.progress") == 0)
        e->progress++;
    if (strcmp(method, "Job.done") == 0) {
        e->done++;
        keel_strlcpy(e->state, json_string_value(json_object_get(params, "state")),
                     sizeof(e->state));
    }
}

static char *local(const char *name)
{
    return keel_strdup_printf("%s/%s", kl_tmp, name);
}

static void run(const char *const argv[])
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *out = NULL;

    ck_assert_msg(keel_lab_run_ok(argv, NULL, &out, &err) == 0, "%s: %s", argv[0], err.msg);
    free(out);
}

/* qemu's chain in the test's directory: base <- mid <- top, 128 MiB each. */
static void make_chain(void)
{
    char *base = local("base"), *mid = local("mid"), *top = local("top");
    const char *cb[] = { "qemu-img", "create", "-q", "-f", "qcow2", base, "128M", NULL };
    const char *wb[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 24M", "-c",
                         "write -P 0x12 100M 8M", "-c", "write -z 60M 2M", base, NULL };
    const char *cm[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2",
                         mid, "128M", NULL };
    const char *wm[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x21 16M 16M", "-c",
                         "write -P 0x22 127M 1M", mid, NULL };
    const char *ct[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", mid, "-F", "qcow2",
                         top, "128M", NULL };
    const char *wt[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x31 8M 4M", "-c",
                         "write -z 100M 4M", "-c", "write -P 0x32 64M 3M", top, NULL };

    run(cb);
    run(wb);
    run(cm);
    run(wm);
    run(ct);
    run(wt);
    free(base);
    free(mid);
    free(top);
}

static json_t *volume_info(struct keel_client *c, const char *sd, const char *vol)
{
    return call_ok(c, "Volume.getInfo", "{s:s, s:s}", "sd", sd, "volume", vol);
}

static void expect_legality(struct keel_client *c, const char *sd, const char *vol,
                            const char *want)
{
    json_t *r = volume_info(c, sd, vol);

    ck_assert_msg(strcmp(json_string_value(json_object_get(r, "legality")), want) == 0,
                  "volume %s: %s, want %s", vol, json_string_value(json_object_get(r, "legality")),
                  want);
    json_decref(r);
}

/* Upload qemu's chain into the NFS volumes (as an import would), through NFS. */
static void upload(const char *nfs_sd)
{
    static const char *const names[3] = { "base", "mid", "top" };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_fs *fs = NULL;
    struct keel_sd *sd = NULL;

    ck_assert_msg(keel_fs_open(keel_lab_nfs_url(kl_nfs), NULL, &fs, &err) == 0 &&
                  keel_sd_open_file(fs, nfs_sd, &sd, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        char *p = local(names[i]), *url = keel_strdup_printf("file://%s", p);
        struct keel_blockdev *src = NULL;
        struct keel_vol_payload vp;
        struct keel_copy_layer l;
        struct keel_copy_dst d;
        struct stat st;
        uint64_t need = 0;

        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_msg(keel_blockdev_open(url, NULL, &src, &err) == 0, "%s", err.msg);
        l = (struct keel_copy_layer){ .dev = src, .size = (uint64_t)st.st_size, .qcow2 = true };
        ck_assert_msg(keel_copy_measure_layer_qcow2(&l, &need, &err) == 0 &&
                      keel_vol_payload_open(sd, vols[i], &vp, &err) == 0 &&
                      keel_file_truncate(vp.file, 0, &err) == 0 &&
                      keel_file_truncate(vp.file, need, &err) == 0, "%s", err.msg);
        keel_vol_payload_close(&vp);
        ck_assert_msg(keel_vol_payload_open(sd, vols[i], &vp, &err) == 0, "%s", err.msg);
        d = (struct keel_copy_dst){ .dev = vp.dev, .size = vp.size, .reads_zero = true };
        ck_assert_msg(keel_copy_layer_to_qcow2(&l, i ? vols[i - 1] : NULL, i ? "qcow2" : NULL, &d,
                                               NULL, NULL, &err) == 0, "%s", err.msg);
        keel_vol_payload_close(&vp);
        keel_blockdev_close(src);
        free(url);
        free(p);
    }
    keel_sd_close(sd);
    keel_fs_close(fs);
}

/* Start job `method` on c (its id into e, whose events ev counts). */
static void job_start(struct keel_client *c, struct events *e, const char *method, json_t *params)
{
    struct keel_error err = KEEL_ERROR_INIT;
    json_t *r = NULL;

    ck_assert_msg(keel_client_call(c, method, params, &r, &err) == 0, "%s: %s", method, err.msg);
    json_decref(params);
    memset(e, 0, sizeof(*e));
    keel_strlcpy(e->job, json_string_value(json_object_get(r, "job")), sizeof(e->job));
    json_decref(r);
}

/* Wait for e's job to end (its Job.done on ev); cancel it once past cancel_at_percent (> 0). */
static void job_wait(struct keel_client *c, struct keel_client *ev, struct events *e,
                     int cancel_at_percent)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t deadline = keel_now_ns() + 240 * KEEL_NS_PER_S;
    bool cancelled = false;
    json_t *r, *m = NULL;

    while (e->done == 0) {
        ck_assert_msg(keel_now_ns() < deadline, "job %s did not end", e->job);
        if (keel_client_read(ev, 200, &m, &err) == 0)
            json_decref(m);
        if (cancel_at_percent > 0 && !cancelled) {
            r = call_ok(c, "Job.getStatus", "{s:s}", "job", e->job);
            if (json_integer_value(json_object_get(r, "percent")) >= cancel_at_percent) {
                json_decref(call_ok(c, "Job.cancel", "{s:s}", "job", e->job));
                cancelled = true;
            }
            json_decref(r);
        }
    }
}

/* A copy on c, to its end. */
static void copy(struct keel_client *c, struct keel_client *ev, struct events *e, json_t *params,
                 int cancel_at_percent)
{
    job_start(c, e, "Data.copy", params);
    job_wait(c, ev, e, cancel_at_percent);
}

static void create_volume(struct keel_client *spm, const char *sd, const char *img,
                          const char *vol, const char *parent, const char *format,
                          const char *type, uint64_t cap, uint64_t initial, bool illegal)
{
    json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b}", "sd", sd, "image", img, "uuid",
                          vol, "format", format, "type", type, "capacity", (json_int_t)cap,
                          "illegal", illegal);
    struct keel_error err = KEEL_ERROR_INIT;
    json_t *r = NULL;

    if (parent != NULL)
        json_object_set_new(p, "parent", json_string(parent));
    if (initial != 0)
        json_object_set_new(p, "initial_size", json_integer((json_int_t)initial));
    ck_assert_msg(keel_client_call(spm, "Volume.create", p, &r, &err) == 0, "%s: %s", vol,
                  err.msg);
    json_decref(p);
    json_decref(r);
}

/* A block volume's bytes on LUN 1: its offset and size there (the test's own view). */
static void lv_place(const char *blk_sd, const char *vol, uint64_t *offset, uint64_t *size)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *lun = NULL;
    struct keel_sd *sd = NULL;
    struct keel_vol_payload p;

    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(kl_tgtd, 0, 1), NULL, &lun, &err) == 0 &&
                  keel_sd_open_block(&lun, 1, blk_sd, &sd, &err) == 0 &&
                  keel_vol_payload_open(sd, vol, &p, &err) == 0, "%s", err.msg);
    *offset = p.offset;
    *size = p.size;
    keel_vol_payload_close(&p);
    keel_sd_close(sd);
    keel_blockdev_close(lun);
}

/* qemu's view of one layer alone (backing null): an LV on the LUN file, or a local file. */
static char *lv_spec(const char *blk_sd, const char *vol)
{
    uint64_t off, size;

    lv_place(blk_sd, vol, &off, &size);
    return keel_strdup_printf("json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":{\"driver\":"
                              "\"raw\",\"offset\":%llu,\"size\":%llu,\"file\":{\"driver\":"
                              "\"file\",\"filename\":\"%s\"}}}", (unsigned long long)off,
                              (unsigned long long)size, keel_lab_tgtd_lun_path(kl_tgtd, 0, 1));
}

static char *file_spec(const char *path)
{
    return keel_strdup_printf("json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":{\"driver\":"
                              "\"file\",\"filename\":\"%s\"}}", path);
}

static char *nfs_file(const char *sd, const char *img, const char *vol)
{
    return keel_strdup_printf("%s/%s/images/%s/%s", keel_lab_nfs_export_dir(kl_nfs), sd, img,
                              vol);
}

START_TEST(copy_jobs)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_client *h1 = connect_host(0), *h2 = connect_host(1), *ev = connect_host(1);
    static const char *const names[3] = { "base", "mid", "top" };
    struct events e;
    char nfs_sd[KEEL_UUID_LEN + 1], blk_sd[KEEL_UUID_LEN + 1], raw[KEEL_UUID_LEN + 1];
    char big[KEEL_UUID_LEN + 1], bigdst[KEEL_UUID_LEN + 1], img2[KEEL_UUID_LEN + 1], *msg;
    json_t *r, *v;
    size_t i;

    keel_client_set_events(ev, on_event, &e);
    json_decref(call_ok(ev, "Host.subscribe", NULL));
    connect_storage(h1);
    connect_storage(h2);
    r = call_ok(h1, "StorageDomain.create", "{s:s, s:s, s:s}", "name", "master", "type", "nfs",
                "connection", "nfs1");
    keel_strlcpy(nfs_sd, json_string_value(json_object_get(r, "uuid")), sizeof(nfs_sd));
    json_decref(r);
    {
        json_t *d = call_ok(h1, "Host.getDeviceList", "{}");

        r = call_ok(h1, "StorageDomain.create", "{s:s, s:s, s:[s]}", "name", "block", "type",
                    "iscsi", "luns", json_string_value(json_object_get(
                        json_array_get(json_object_get(d, "devices"), 0), "devid")));
        keel_strlcpy(blk_sd, json_string_value(json_object_get(r, "uuid")), sizeof(blk_sd));
        json_decref(r);
        json_decref(d);
    }
    json_decref(call_ok(h1, "StoragePool.create", "{s:s, s:s, s:s}", "pool", POOL, "name", "dc",
                        "master", nfs_sd));
    json_decref(call_ok(h1, "StoragePool.connect", "{s:s, s:s}", "pool", POOL, "master", nfs_sd));
    json_decref(call_ok(h2, "StoragePool.connect", "{s:s, s:s}", "pool", POOL, "master", nfs_sd));
    json_decref(call_ok(h1, "StoragePool.spmStart", "{s:s}", "pool", POOL));
    json_decref(call_ok(h1, "StoragePool.attachDomain", "{s:s, s:s}", "pool", POOL, "sd",
                        blk_sd));
    json_decref(call_ok(h1, "StoragePool.activateDomain", "{s:s, s:s}", "pool", POOL, "sd",
                        blk_sd));

    /* qemu's chain, uploaded into three NFS volumes the SPM made. */
    make_chain();
    for (int k = 0; k < 3; k++)
        create_volume(h1, nfs_sd, IMG, vols[k], k ? vols[k - 1] : NULL, "cow", "sparse", CAP, 0,
                      false);
    upload(nfs_sd);

    /* Host 2 measures; the SPM makes the ILLEGAL destinations; host 2 copies. */
    r = call_ok(h2, "Data.measure", "{s:s, s:s}", "sd", nfs_sd, "image", IMG);
    ck_assert_int_eq(json_array_size(json_object_get(r, "volumes")), 3);
    json_array_foreach(json_object_get(r, "volumes"), i, v) {
        ck_assert_str_eq(json_string_value(json_object_get(v, "volume")), vols[i]);
        create_volume(h1, blk_sd, IMG, vols[i], i ? vols[i - 1] : NULL, "cow", "sparse", CAP,
                      (uint64_t)json_integer_value(json_object_get(v, "bytes")), true);
    }
    json_decref(r);
    msg = call_fails(h2, KEEL_E_INVAL, "Data.copy",
                     json_pack("{s:s, s:s, s:s}", "src_sd", nfs_sd, "src_image", IMG, "dst_sd",
                               nfs_sd));
    ck_assert_msg(strstr(msg, "same image") != NULL, "%s", msg);
    free(msg);

    copy(h2, ev, &e, json_pack("{s:s, s:s, s:s}", "src_sd", nfs_sd, "src_image", IMG, "dst_sd",
                               blk_sd), 0);
    ck_assert_msg(strcmp(e.state, "done") == 0, "copy NFS -> block: %s", e.state);
    ck_assert_int_gt(e.progress, 0);
    r = call_ok(h1, "Job.list", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r, "jobs")), 0); /* host 1 did none */
    json_decref(r);
    r = call_ok(h2, "Job.getStatus", "{s:s}", "job", e.job);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "percent")), 100);
    json_decref(r);
    {
        /* Copying again into what is now LEGAL is refused: only an ILLEGAL volume is a copy's. */
        copy(h2, ev, &e, json_pack("{s:s, s:s, s:s}", "src_sd", nfs_sd, "src_image", IMG,
                                   "dst_sd", blk_sd), 0);
        ck_assert_str_eq(e.state, "failed");
        r = call_ok(h2, "Job.getStatus", "{s:s}", "job", e.job);
        ck_assert_msg(strstr(json_string_value(json_object_get(r, "error")), "LEGAL") != NULL,
                      "%s", json_string_value(json_object_get(r, "error")));
        json_decref(r);
        json_decref(call_ok(h2, "Job.delete", "{s:s}", "job", e.job));
    }
    for (int k = 0; k < 3; k++)
        expect_legality(h1, blk_sd, vols[k], "LEGAL");
    /* lvm2 lists the LVs; qemu-img checks each layer and finds it equal to qemu's. */
    {
        const char *files[] = { keel_lab_tgtd_lun_path(kl_tgtd, 0, 1) };
        const char *lvs[] = { "lvs", "--noheadings", "-o", "lv_name", blk_sd, NULL };
        struct lvm_judge j;
        char *out = NULL;

        ck_assert_msg(lvm_judge_attach(&j, files, 1, &err) == 0 &&
                      lvm_judge_run(&j, lvs, &out, &err) == 0, "%s", err.msg);
        lvm_judge_detach(&j);
        for (int k = 0; k < 3; k++)
            ck_assert_msg(strstr(out, vols[k]) != NULL, "lvm2 lacks %s:\n%s", vols[k], out);
        free(out);
    }
    for (int k = 0; k < 3; k++) {
        char *lv = lv_spec(blk_sd, vols[k]), *p = local(names[k]), *f = file_spec(p);
        const char *check[] = { "qemu-img", "check", "-q", lv, NULL };
        const char *cmp[] = { "qemu-img", "compare", "-q", f, lv, NULL };

        run(check);
        run(cmp);
        free(f);
        free(p);
        free(lv);
    }

    /* Block -> NFS collapsed to raw: qemu-img compare with qemu's chain. */
    keel_uuid_new(raw);
    create_volume(h1, nfs_sd, IMG_R, raw, NULL, "raw", "sparse", CAP, 0, true);
    msg = call_fails(h2, KEEL_E_INVAL, "Data.copy",
                     json_pack("{s:s, s:s, s:s, s:b}", "src_sd", blk_sd, "src_image", IMG,
                               "dst_sd", nfs_sd, "collapse", 1));
    ck_assert_msg(strstr(msg, "dst_volume") != NULL, "%s", msg);
    free(msg);
    copy(h2, ev, &e, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "src_sd", blk_sd, "src_image",
                               IMG, "dst_sd", nfs_sd, "dst_image", IMG_R, "collapse", 1,
                               "dst_volume", raw), 0);
    ck_assert_msg(strcmp(e.state, "done") == 0, "copy block -> NFS: %s", e.state);
    expect_legality(h1, nfs_sd, raw, "LEGAL");
    {
        char *top = local("top"), *dst = nfs_file(nfs_sd, IMG_R, raw);
        const char *cmp[] = { "qemu-img", "compare", "-q", "-F", "raw", top, dst, NULL };

        run(cmp);
        free(dst);
        free(top);
    }

    /* A big raw volume (512 MiB, nothing written) copied to block, cancelled half-way. */
    keel_uuid_new(big);
    create_volume(h1, nfs_sd, IMG_BIG, big, NULL, "raw", "sparse", 512 * MiB, 0, false);
    create_volume(h1, blk_sd, IMG_BIG, big, NULL, "raw", "preallocated", 512 * MiB, 0, true);
    copy(h2, ev, &e, json_pack("{s:s, s:s, s:s}", "src_sd", nfs_sd, "src_image", IMG_BIG,
                               "dst_sd", blk_sd), 20);
    ck_assert_msg(strcmp(e.state, "cancelled") == 0 || strcmp(e.state, "done") == 0, "%s",
                  e.state);
    if (strcmp(e.state, "cancelled") == 0) {
        r = call_ok(h2, "Job.getStatus", "{s:s}", "job", e.job);
        ck_assert_int_eq(json_integer_value(json_object_get(r, "code")), KEEL_E_CANCELLED);
        json_decref(r);
        expect_legality(h1, blk_sd, big, "ILLEGAL");
        expect_legality(h1, nfs_sd, big, "LEGAL");
        json_decref(call_ok(h1, "Volume.delete", "{s:s, s:s}", "sd", blk_sd, "volume", big));
    } else {
        /* The machine outran the cancel: then the copy must be complete. */
        expect_legality(h1, blk_sd, big, "LEGAL");
    }
    msg = call_fails(h2, KEEL_E_INVAL, "Job.cancel", json_pack("{s:s}", "job", e.job));
    free(msg);

    /*
     * The copying host holds the destination's volume lease while it copies, and only then:
     * sanlock reads the lease of an NFS destination (its .lease file) as owned by host 2
     * during the copy -- caught with the block source stalled (tgtd stopped for a moment)
     * -- and as released (timestamp 0) before and after.
     */
    {
        char img4[KEEL_UUID_LEN + 1], v4[KEEL_UUID_LEN + 1], *f, *spec, *owner = NULL,
             *stamp = NULL, *t;
        uint64_t deadline = keel_now_ns() + 60 * KEEL_NS_PER_S;

        keel_uuid_new(img4);
        keel_uuid_new(v4);
        create_volume(h1, blk_sd, img4, v4, NULL, "raw", "preallocated", GiB, 0, false);
        create_volume(h1, nfs_sd, img4, v4, NULL, "raw", "sparse", GiB, 0, true);
        f = nfs_file(nfs_sd, img4, v4);
        spec = keel_strdup_printf("%s:%s:%s.lease:0", nfs_sd, v4, f);
        t = sanlock_judge_read_leader("-r", spec, "timestamp");
        ck_assert_msg(strcmp(t, "0") == 0, "lease of %s held before the copy: %s", v4, t);
        free(t);
        job_start(h2, &e, "Data.copy", json_pack("{s:s, s:s, s:s}", "src_sd", blk_sd,
                                                  "src_image", img4, "dst_sd", nfs_sd));
        while (owner == NULL && keel_now_ns() < deadline) {
            const char *state;

            r = call_ok(h2, "Job.getStatus", "{s:s}", "job", e.job);
            state = json_string_value(json_object_get(r, "state"));
            if (strcmp(state, "running") != 0) {
                json_decref(r);
                break;
            }
            if (json_integer_value(json_object_get(r, "percent")) >= 1) {
                /* Copying, so the lease is held: stall the source and look. */
                ck_assert_msg(keel_lab_tgtd_signal(kl_tgtd, SIGSTOP, &err) == 0, "%s", err.msg);
                owner = sanlock_judge_read_leader("-r", spec, "owner_id");
                stamp = sanlock_judge_read_leader("-r", spec, "timestamp");
                ck_assert_msg(keel_lab_tgtd_signal(kl_tgtd, SIGCONT, &err) == 0, "%s", err.msg);
            }
            json_decref(r);
        }
        ck_assert_msg(owner != NULL, "the 1 GiB copy ended before the test could look at its "
                      "lease");
        ck_assert_msg(strcmp(owner, "2") == 0 && strcmp(stamp, "0") != 0,
                      "lease of %s during the copy: owner_id %s, timestamp %s", v4, owner, stamp);
        job_wait(h2, ev, &e, 0);
        ck_assert_msg(strcmp(e.state, "done") == 0, "copy with a stall: %s", e.state);
        expect_legality(h1, nfs_sd, v4, "LEGAL");
        t = sanlock_judge_read_leader("-r", spec, "timestamp");
        ck_assert_msg(strcmp(t, "0") == 0, "lease of %s still held after the copy: %s", v4, t);
        fprintf(stderr, "volume lease during the copy: owner_id %s, timestamp %s; after: %s\n",
                owner, stamp, t);
        free(t);
        free(owner);
        free(stamp);
        free(spec);
        free(f);
    }

    /* A copy while tgtd restarts: done with equal data, or failed with an ILLEGAL destination. */
    keel_uuid_new(bigdst);
    keel_uuid_new(img2);
    create_volume(h1, blk_sd, img2, bigdst, NULL, "raw", "preallocated", CAP, 0, true);
    job_start(h2, &e, "Data.copy",
              json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "src_sd", nfs_sd, "src_image",
                        IMG, "src_volume", vols[2], "dst_sd", blk_sd, "dst_image", img2,
                        "collapse", 1, "dst_volume", bigdst));
    ck_assert_msg(keel_lab_tgtd_restart(kl_tgtd, &err) == 0, "%s", err.msg);
    job_wait(h2, ev, &e, 0);
    if (strcmp(e.state, "done") == 0) {
        uint64_t off, size;
        char *top = local("top"), *spec;

        expect_legality(h1, blk_sd, bigdst, "LEGAL");
        lv_place(blk_sd, bigdst, &off, &size);
        spec = keel_strdup_printf("json:{\"driver\":\"raw\",\"offset\":%llu,\"size\":%llu,"
                                  "\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}",
                                  (unsigned long long)off, (unsigned long long)CAP,
                                  keel_lab_tgtd_lun_path(kl_tgtd, 0, 1));
        {
            const char *cmp[] = { "qemu-img", "compare", "-q", top, spec, NULL };

            run(cmp);
        }
        free(spec);
        free(top);
    } else {
        ck_assert_str_eq(e.state, "failed");
        expect_legality(h1, blk_sd, bigdst, "ILLEGAL");
    }
    fprintf(stderr, "copy during a tgtd restart: %s\n", e.state);

    /* A raw LV longer than its volume (100 MiB in a 128 MiB extent) copies its capacity. */
    {
        char img3[KEEL_UUID_LEN + 1], v3[KEEL_UUID_LEN + 1], *dst, *spec;
        uint64_t off, size;

        keel_uuid_new(img3);
        keel_uuid_new(v3);
        create_volume(h1, blk_sd, img3, v3, NULL, "raw", "preallocated", 100 * MiB, 0, false);
        create_volume(h1, nfs_sd, img3, v3, NULL, "raw", "sparse", 100 * MiB, 0, true);
        copy(h2, ev, &e, json_pack("{s:s, s:s, s:s}", "src_sd", blk_sd, "src_image", img3,
                                   "dst_sd", nfs_sd), 0);
        ck_assert_msg(strcmp(e.state, "done") == 0, "copy of a 100 MiB raw LV: %s", e.state);
        lv_place(blk_sd, v3, &off, &size);
        ck_assert_uint_eq(size, 128 * MiB);
        dst = nfs_file(nfs_sd, img3, v3);
        spec = keel_strdup_printf("json:{\"driver\":\"raw\",\"offset\":%llu,\"size\":%llu,"
                                  "\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}",
                                  (unsigned long long)off, (unsigned long long)(100 * MiB),
                                  keel_lab_tgtd_lun_path(kl_tgtd, 0, 1));
        {
            const char *cmp[] = { "qemu-img", "compare", "-q", "-f", "raw", "-F", "raw", dst,
                                  spec, NULL };
            struct stat st;

            ck_assert_int_eq(stat(dst, &st), 0);
            ck_assert_int_eq(st.st_size, 100 * MiB);
            run(cmp);
        }
        free(spec);
        free(dst);
    }

    /* Wiped (host 2, under the volume's lease): ILLEGAL, zeroes on the LUN, then deleted. */
    {
        uint64_t off, size;
        FILE *f;

        job_start(h2, &e, "Data.zero", json_pack("{s:s, s:s}", "sd", blk_sd, "volume", bigdst));
        job_wait(h2, ev, &e, 0);
        ck_assert_str_eq(e.state, "done");
        expect_legality(h1, blk_sd, bigdst, "ILLEGAL");
        lv_place(blk_sd, bigdst, &off, &size);
        f = fopen(keel_lab_tgtd_lun_path(kl_tgtd, 0, 1), "rb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fseeko(f, (off_t)off, SEEK_SET), 0);
        for (uint64_t at = 0; at < size; at += MiB) {
            static unsigned char buf[MiB], zero[MiB];

            ck_assert_int_eq(fread(buf, 1, MiB, f), MiB);
            if (memcmp(buf, zero, MiB) != 0) {
                size_t k = 0;

                while (buf[k] == 0)
                    k++;
                ck_abort_msg("byte %llu of the wiped LV is %#x", (unsigned long long)(at + k),
                             buf[k]);
            }
        }
        fclose(f);
        json_decref(call_ok(h1, "Volume.delete", "{s:s, s:s}", "sd", blk_sd, "volume", bigdst));
    }

    json_decref(call_ok(h1, "StoragePool.spmStop", "{s:s}", "pool", POOL));
    keel_client_close(ev);
    keel_client_close(h2);
    keel_client_close(h1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keeld_copy");
    TCase *tc = tcase_create("copy");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, keeld_lab_setup, keeld_lab_teardown);
    tcase_add_test(tc, copy_jobs);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
