/*
 * The SPM journal (spm/journal.h): an SPM process (journal-worker) is
 * killed with SIGKILL at every step boundary of a volume create, of a
 * volume delete and of a volume extend (qcow2 and raw), on a block domain
 * (tgtd LUN) and an NFS domain
 * (nfs-ganesha).  After each kill a new SPM (this test, a higher lver)
 * opens the journal and recovers; then
 *   - Keel: a create is rolled back (the volume is gone and its parent a
 *     LEAF again) unless it had finished, a delete is rolled forward; the
 *     domain lists no leftover and no volume that is not LEGAL;
 *   - lvm2 (block): lvs and vgck agree with Keel's VG, and every LV with a
 *     metadata slot has its own slot (no LV or slot leaked);
 *   - qemu-img check accepts every remaining qcow2 volume.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "spm/journal.h"
#include "tests/functional/lvm_judge.h"
#include "tests/harness/lab.h"
#include "volume/vol.h"

#define GiB (UINT64_C(1) << 30)
#define SD "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define IMG "11111111-0000-4000-8000-000000000001"
#define BASE "bbbbbbbb-0000-4000-8000-00000000000b"
#define CREATE_STEPS 6
#define DELETE_STEPS 4
#define EXTEND_STEPS 3
#define RAW "dddddddd-0000-4000-8000-00000000000d"

struct lab {
    bool block;
    struct keel_lab_tgtd *tgtd;
    struct keel_lab_nfs *nfs;
    const char *url;
    struct keel_blockdev *dev;
    struct keel_fs *fs;
};

static uint64_t next_lver = 1;

static struct keel_sd *open_sd(struct lab *l)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd *sd = NULL;

    if (l->block)
        ck_assert_msg(keel_sd_open_block(&l->dev, 1, SD, &sd, &err) == 0, "%s", err.msg);
    else
        ck_assert_msg(keel_sd_open_file(l->fs, SD, &sd, &err) == 0, "%s", err.msg);
    return sd;
}

/* Run journal-worker with args; return its wait status. */
static int worker(struct lab *l, const char *const args[])
{
    char *exe = keel_strdup_printf("%s/tests/journal-worker", getenv("KEEL_BUILD_ROOT"));
    char lver[32];
    const char *argv[12] = { exe, l->url, SD, lver };
    int st = 0, n = 4;
    pid_t pid;

    snprintf(lver, sizeof(lver), "%llu", (unsigned long long)next_lver++);
    for (int i = 0; args[i] != NULL && n < 11; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    ck_assert(waitpid(pid, &st, 0) == pid);
    free(exe);
    return st;
}

static void worker_ok(struct lab *l, const char *const args[])
{
    int st = worker(l, args);

    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "journal-worker %s %s: status %d",
                  args[0], args[1], st);
}

static void worker_killed(struct lab *l, const char *const args[])
{
    int st = worker(l, args);

    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "journal-worker %s %s was not "
                  "killed: status %d", args[0], args[1], st);
}

/* The new SPM's recovery: how many records it finished and rolled back. */
static void recover(struct lab *l, unsigned want_finished, unsigned want_rolled_back)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd *sd = open_sd(l);
    struct keel_journal *j = NULL;
    struct keel_journal_report rep;

    ck_assert_msg(keel_journal_open(sd, next_lver++, 2, &j, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_journal_recover(j, &rep, &err) == 0, "%s", err.msg);
    for (unsigned i = 0; i < rep.nlines; i++)
        fprintf(stderr, "test_journal: %s: %s\n", l->block ? "block" : "nfs", rep.lines[i]);
    ck_assert_uint_eq(rep.bad, 0);
    ck_assert_msg(rep.finished == want_finished && rep.rolled_back == want_rolled_back,
                  "recovery finished %u and rolled back %u, want %u and %u", rep.finished,
                  rep.rolled_back, want_finished, want_rolled_back);
    /* A second recovery finds nothing left. */
    keel_journal_close(j);
    ck_assert_msg(keel_journal_open(sd, next_lver++, 2, &j, &err) == 0 &&
                  keel_journal_recover(j, &rep, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(rep.finished + rep.rolled_back, 0);
    keel_journal_close(j);
    keel_sd_close(sd);
}

/* qemu-img check of one qcow2 volume. */
static void qemu_check(struct lab *l, struct keel_sd *sd, const struct keel_vol_entry *v)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *path = NULL, *loop = NULL;

    if (l->block) {
        struct keel_vol_payload p;

        ck_assert_msg(keel_vol_payload_open(sd, v->uuid, &p, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_lab_loop_attach(keel_lab_tgtd_lun_path(l->tgtd, 0, 1), p.offset,
                                           p.size, &loop, &err) == 0, "%s", err.msg);
        keel_vol_payload_close(&p);
        path = strdup(loop);
    } else {
        path = keel_strdup_printf("%s/%s/images/%s/%s", keel_lab_nfs_export_dir(l->nfs), SD,
                                  v->image, v->uuid);
    }
    {
        /* The layer alone: its backing file is named for the chain directory of a host. */
        char *spec = keel_strdup_printf("json:{\"driver\":\"qcow2\",\"backing\":null,"
                                        "\"file\":{\"driver\":\"%s\",\"filename\":\"%s\"}}",
                                        l->block ? "host_device" : "file", path);
        const char *argv[] = { "qemu-img", "check", "-U", "-q", spec, NULL };

        ck_assert_msg(keel_lab_run_ok(argv, NULL, NULL, &err) == 0, "%s: %s", v->uuid, err.msg);
        free(spec);
    }
    if (loop != NULL) {
        keel_lab_loop_detach(loop);
        free(loop);
    }
    free(path);
}

/*
 * The domain holds exactly `want` volumes besides none other, all LEGAL;
 * `base` has the role `role`; lvm2 and qemu-img agree.
 */
static void judge(struct lab *l, const char *const want[], size_t nwant,
                  enum keel_vol_role base_role)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd *sd = open_sd(l);
    struct keel_vol_list vols;

    ck_assert_msg(keel_vol_list(sd, &vols, &err) == 0, "%s", err.msg);
    ck_assert_msg(vols.n == nwant, "%zu volumes on the domain, want %zu", vols.n, nwant);
    for (size_t i = 0; i < nwant; i++) {
        const struct keel_vol_entry *v = keel_vol_list_find(&vols, want[i]);

        ck_assert_msg(v != NULL, "volume %s is gone", want[i]);
        ck_assert_msg(v->status == KEEL_VOL_OK && v->md.legality == KEEL_VOL_LEGAL,
                      "volume %s: status %d legality %d %s", v->uuid, (int)v->status,
                      (int)v->md.legality, v->problem);
        if (strcmp(v->uuid, BASE) == 0)
            ck_assert_msg(v->md.role == base_role, "base role %d, want %d", (int)v->md.role,
                          (int)base_role);
        if (v->md.format == KEEL_VOL_COW)
            qemu_check(l, sd, v);
    }
    keel_vol_list_release(&vols);
    if (l->block) {
        /* lvm2 agrees; special LVs plus one LV per volume, each with its own slot. */
        const struct keel_lvm_vg *vg = keel_lvm_store_vg(keel_sd_vg(sd));
        const char *files[] = { keel_lab_tgtd_lun_path(l->tgtd, 0, 1) };
        struct lvm_judge j;
        bool slot_seen[2048] = { false };
        size_t nvol = 0;

        ck_assert_msg(lvm_judge_attach(&j, files, 1, &err) == 0, "%s", err.msg);
        ck_assert_msg(lvm_judge_agrees(&j, vg, &err) == 0, "%s", err.msg);
        lvm_judge_detach(&j);
        for (size_t i = 0; i < vg->nlvs; i++) {
            const struct keel_lvm_lv *lv = &vg->lvs[i];

            for (size_t t = 0; t < lv->tags.n; t++) {
                unsigned long long s;

                if (sscanf(lv->tags.v[t], "MD_%llu", &s) == 1) {
                    ck_assert_msg(s < 2048 && !slot_seen[s], "slot %llu used twice", s);
                    slot_seen[s] = true;
                    nvol++;
                }
            }
        }
        ck_assert_msg(nvol == nwant, "%zu LVs with a slot, want %zu", nvol, nwant);
    }
    keel_sd_close(sd);
}

/* The capacity in Keel's metadata, and in the payload as qemu-img or the LV/file says. */
static void expect_capacity(struct lab *l, const char *vol, uint64_t want)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd *sd = open_sd(l);
    struct keel_vol_entry e;

    ck_assert_msg(keel_vol_info(sd, vol, &e, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(e.md.capacity, want);
    if (e.md.format == KEEL_VOL_COW) {
        char *loop = NULL, *spec, *out = NULL, *want_s;

        if (l->block) {
            struct keel_vol_payload p;

            ck_assert_msg(keel_vol_payload_open(sd, vol, &p, &err) == 0 &&
                          keel_lab_loop_attach(keel_lab_tgtd_lun_path(l->tgtd, 0, 1), p.offset,
                                               p.size, &loop, &err) == 0, "%s", err.msg);
            keel_vol_payload_close(&p);
            spec = keel_strdup_printf("json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":"
                                      "{\"driver\":\"host_device\",\"filename\":\"%s\"}}",
                                      loop);
        } else {
            spec = keel_strdup_printf("json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":"
                                      "{\"driver\":\"file\",\"filename\":\"%s/%s/images/%s/%s\"}}",
                                      keel_lab_nfs_export_dir(l->nfs), SD, e.image, vol);
        }
        {
            const char *argv[] = { "qemu-img", "info", "-U", "--output=json", spec, NULL };

            ck_assert_msg(keel_lab_run_ok(argv, NULL, &out, &err) == 0, "%s", err.msg);
        }
        want_s = keel_strdup_printf("\"virtual-size\": %llu,", (unsigned long long)want);
        ck_assert_msg(strstr(out, want_s) != NULL, "qemu-img: %s, want %s", out, want_s);
        free(want_s);
        free(out);
        free(spec);
        if (loop != NULL) {
            keel_lab_loop_detach(loop);
            free(loop);
        }
    } else {
        ck_assert_msg(e.size >= want, "payload of %llu bytes, capacity %llu",
                      (unsigned long long)e.size, (unsigned long long)want);
    }
    keel_sd_close(sd);
}

static void journal_flavour(bool block)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct lab l = { .block = block };
    char vols[CREATE_STEPS + DELETE_STEPS][KEEL_UUID_LEN + 1];
    char crash[16];

    /* A domain with a base volume. */
    {
        const char *guids[] = { "360014050000000000000000000000b01" };
        struct keel_sd_create c = { .uuid = SD, .name = "journal", .klass = KEEL_SD_CLASS_DATA,
                                    .remote_path = "server:/export", .pv_guids = guids };
        struct keel_vol_create vc = { .image = IMG, .uuid = BASE, .format = KEEL_VOL_COW,
                                      .type = KEEL_VOL_SPARSE, .capacity = GiB };
        struct keel_sd *sd = NULL;

        if (block) {
            uint64_t sizes[] = { 12 * GiB };

            ck_assert_msg(keel_lab_tgtd_start(&l.tgtd, &err) == 0 &&
                          keel_lab_tgtd_add_target(l.tgtd, "jn", sizes, 1, NULL, NULL, &err) == 0,
                          "%s", err.msg);
            l.url = keel_lab_tgtd_lun_url(l.tgtd, 0, 1);
            ck_assert_msg(keel_blockdev_open(l.url, NULL, &l.dev, &err) == 0, "%s", err.msg);
            c.type = KEEL_SD_TYPE_ISCSI;
            ck_assert_msg(keel_sd_create_block(&l.dev, 1, &c, &sd, &err) == 0, "%s", err.msg);
        } else {
            ck_assert_msg(keel_lab_nfs_start(&l.nfs, &err) == 0, "%s", err.msg);
            l.url = keel_lab_nfs_url(l.nfs);
            ck_assert_msg(keel_fs_open(l.url, NULL, &l.fs, &err) == 0, "%s", err.msg);
            c.type = KEEL_SD_TYPE_NFS;
            ck_assert_msg(keel_sd_create_file(l.fs, &c, &sd, &err) == 0, "%s", err.msg);
        }
        ck_assert_msg(keel_vol_create(sd, &vc, NULL, &err) == 0, "%s", err.msg);
        keel_sd_close(sd);
    }
    for (int i = 0; i < CREATE_STEPS + DELETE_STEPS; i++)
        keel_uuid_new(vols[i]);

    /* A snapshot of BASE, killed at each step of its create (file domains have no step 2). */
    for (int k = 0; k < CREATE_STEPS; k++) {
        if (!block && k == 2)
            continue;
        const char *args[] = { "create", vols[k], IMG, BASE, crash, NULL };
        const char *base_only[] = { BASE };
        const char *both[] = { BASE, vols[k] };

        snprintf(crash, sizeof(crash), "%d", k);
        worker_killed(&l, args);
        if (k < CREATE_STEPS - 1) {
            recover(&l, 0, 1);
            judge(&l, base_only, 1, KEEL_VOL_LEAF);
        } else {
            recover(&l, 0, 0); /* it had written DONE */
            judge(&l, both, 2, KEEL_VOL_INTERNAL);
        }
    }
    /* That snapshot and new ones, killed at each step of their delete. */
    for (int k = 0; k < DELETE_STEPS; k++) {
        const char *victim = k == 0 ? vols[CREATE_STEPS - 1] : vols[CREATE_STEPS + k];
        const char *mk[] = { "create", victim, IMG, BASE, "-1", NULL };
        const char *args[] = { "delete", victim, crash, NULL };
        const char *base_only[] = { BASE };

        if (k > 0)
            worker_ok(&l, mk);
        snprintf(crash, sizeof(crash), "%d", k);
        worker_killed(&l, args);
        recover(&l, k < DELETE_STEPS - 1 ? 1 : 0, 0);
        judge(&l, base_only, 1, KEEL_VOL_LEAF);
    }
    /* BASE (qcow2) and a raw volume, killed at each step of their extend. */
    {
        struct keel_sd *sd = open_sd(&l);
        struct keel_vol_create rc = { .image = "22222222-0000-4000-8000-000000000002",
                                      .uuid = RAW, .format = KEEL_VOL_RAW,
                                      .type = block ? KEEL_VOL_PREALLOCATED : KEEL_VOL_SPARSE,
                                      .capacity = 128 << 20 };

        ck_assert_msg(keel_vol_create(sd, &rc, NULL, &err) == 0, "%s", err.msg);
        keel_sd_close(sd);
    }
    for (int v = 0; v < 2; v++) {
        const char *vol = v == 0 ? BASE : RAW;

        for (int k = 0; k < EXTEND_STEPS; k++) {
            uint64_t cap = (v == 0 ? 2 * GiB : 256 << 20) + (uint64_t)k * (128 << 20);
            char caps[32];
            const char *args[] = { "extend", vol, caps, crash, NULL };
            const char *both[] = { BASE, RAW };

            snprintf(caps, sizeof(caps), "%llu", (unsigned long long)cap);
            snprintf(crash, sizeof(crash), "%d", k);
            worker_killed(&l, args);
            recover(&l, k < EXTEND_STEPS - 1 ? 1 : 0, 0);
            judge(&l, both, 2, KEEL_VOL_LEAF);
            expect_capacity(&l, vol, cap);
        }
    }
    fprintf(stderr, "test_journal: %s: SPM killed at each of %d create, %d delete and %d extend "
                    "steps; recovery left metadata Keel, %sqemu-img accept\n",
            block ? "block" : "nfs", block ? CREATE_STEPS : CREATE_STEPS - 1, DELETE_STEPS,
            EXTEND_STEPS, block ? "lvm2 (lvs, vgck), " : "");
    keel_blockdev_close(l.dev);
    keel_fs_close(l.fs);
    if (l.tgtd)
        keel_lab_tgtd_stop(l.tgtd);
    if (l.nfs)
        keel_lab_nfs_stop(l.nfs);
}

START_TEST(block_domain)
{
    journal_flavour(true);
}
END_TEST

START_TEST(nfs_domain)
{
    journal_flavour(false);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("journal");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    keel_lab_require("ganesha.nfsd");
    keel_lab_require("qemu-img");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, block_domain);
    tcase_add_test(tc, nfs_domain);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
