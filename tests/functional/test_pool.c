/*
 * Storage pools (spm/pool.h) over real storage: a master on NFS
 * (nfs-ganesha), a block domain (tgtd LUN) and a POSIX domain that
 * belongs to another pool.  What Keel writes is judged from outside: the
 * NFS master's dom_md/metadata read as a file from the export, the block
 * domain's MDT_ tags as lvm2 lists them (`vgs -o vg_tags`).
 *   - create, attach, activate, SPM recorded, deactivate; the master can
 *     be neither deactivated nor detached; an active domain not detached;
 *   - attaching a domain of another pool is refused, and forced works;
 *   - the master role moves (MASTER_VERSION 2 on the new, Regular on the
 *     old), and the pool is destroyed once only its master is left;
 *   - the master is reconstructed on another domain when it is gone, and
 *     the old one, back, is demoted when attached again;
 *   - a change of two domains stopped after its first write (the journal
 *     record written, one of the two domains changed) is finished by
 *     recovery: attach, detach, master move;
 *   - the same with an SPM process (journal-worker) killed with SIGKILL at
 *     each step boundary of an attach, a detach and a master move.
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
#include "metadata/journal_fmt.h"
#include "spm/pool.h"
#include "tests/functional/lvm_judge.h"
#include "tests/harness/lab.h"

#define GiB (UINT64_C(1) << 30)
#define SDA "aaaaaaaa-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define SDB "bbbbbbbb-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define SDC "cccccccc-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define POOL "11111111-2222-4333-8444-555555555555"
#define POOL2 "99999999-2222-4333-8444-555555555555"

struct lab {
    struct keel_lab_nfs *nfs;
    struct keel_lab_tgtd *tgtd;
    char *posix_dir;
    struct keel_fs *nfs_fs, *posix_fs;
    struct keel_blockdev *lun;
};

static struct lab L;

static struct keel_sd *open_sd(const char *uuid)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd *sd = NULL;
    int rc;

    if (strcmp(uuid, SDA) == 0)
        rc = keel_sd_open_file(L.nfs_fs, SDA, &sd, &err);
    else if (strcmp(uuid, SDB) == 0)
        rc = keel_sd_open_block(&L.lun, 1, SDB, &sd, &err);
    else
        rc = keel_sd_open_file(L.posix_fs, SDC, &sd, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    return sd;
}

static struct keel_sd *resolve(void *opaque, struct keel_fence *fence, const char *uuid,
                               struct keel_error *err)
{
    (void)fence; /* no SPM here */
    (void)opaque, (void)err;
    return open_sd(uuid);
}

static void give_back(void *opaque, struct keel_sd *sd)
{
    (void)opaque;
    keel_sd_close(sd);
}

/* A key of the NFS master as the metadata file on the export says. */
static void expect_file_key(const char *key, const char *want)
{
    char *path = keel_strdup_printf("%s/%s/dom_md/metadata", keel_lab_nfs_export_dir(L.nfs), SDA);
    char *line = keel_strdup_printf("\n%s=%s\n", key, want);
    FILE *f = fopen(path, "r");
    char buf[8192];
    size_t n;

    ck_assert_ptr_nonnull(f);
    buf[0] = '\n';
    n = fread(buf + 1, 1, sizeof(buf) - 2, f);
    buf[n + 1] = '\0';
    fclose(f);
    ck_assert_msg(strstr(buf, line) != NULL, "%s lacks %s=%s:\n%s", path, key, want, buf + 1);
    free(line);
    free(path);
}

/* A key of the block domain as lvm2 lists its VG tags. */
static void expect_block_key(const char *key, const char *want)
{
    struct keel_error err = KEEL_ERROR_INIT;
    const char *files[] = { keel_lab_tgtd_lun_path(L.tgtd, 0, 1) };
    const char *argv[] = { "vgs", "--noheadings", "-o", "vg_tags", SDB, NULL };
    struct lvm_judge j;
    char *out = NULL, *tag = keel_strdup_printf("MDT_%s=%s", key, want);
    struct keel_sd *sd = open_sd(SDB);
    bool ok;

    /* lvm2 agrees with the whole VG Keel reads (vgck and pvck included)... */
    ck_assert_msg(lvm_judge_attach(&j, files, 1, &err) == 0 &&
                  lvm_judge_agrees(&j, keel_lvm_store_vg(keel_sd_vg(sd)), &err) == 0 &&
                  lvm_judge_run(&j, argv, &out, &err) == 0, "%s", err.msg);
    keel_sd_close(sd);
    /* ... and lists the key. */
    /* An empty value is the tag "MDT_KEY=" followed by a separator or the end. */
    {
        const char *p = strstr(out, tag);
        size_t tl = strlen(tag);

        ok = p != NULL && (p[tl] == ',' || p[tl] == '\n' || p[tl] == '\0' || p[tl] == ' ');
    }
    ck_assert_msg(ok, "lvm2's tags of %s lack %s: %s", SDB, tag, out);
    free(out);
    free(tag);
    lvm_judge_detach(&j);
}

static void setup(void)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t sizes[] = { 12 * GiB };
    const char *guids[] = { "360014050000000000000000000000b01" };
    struct keel_sd_create a = { .uuid = SDA, .name = "master", .type = KEEL_SD_TYPE_NFS,
                                .klass = KEEL_SD_CLASS_DATA, .remote_path = "127.0.0.1:/x" };
    struct keel_sd_create b = { .uuid = SDB, .name = "block", .type = KEEL_SD_TYPE_ISCSI,
                                .klass = KEEL_SD_CLASS_DATA, .pv_guids = guids };
    struct keel_sd_create c = { .uuid = SDC, .name = "other", .type = KEEL_SD_TYPE_POSIXFS,
                                .klass = KEEL_SD_CLASS_DATA, .remote_path = "/srv/other" };
    struct keel_sd *sd = NULL;
    char *url;

    memset(&L, 0, sizeof(L));
    ck_assert_msg(keel_lab_nfs_start(&L.nfs, &err) == 0 &&
                  keel_fs_open(keel_lab_nfs_url(L.nfs), NULL, &L.nfs_fs, &err) == 0 &&
                  keel_sd_create_file(L.nfs_fs, &a, &sd, &err) == 0, "%s", err.msg);
    keel_sd_close(sd);
    ck_assert_msg(keel_lab_tgtd_start(&L.tgtd, &err) == 0 &&
                  keel_lab_tgtd_add_target(L.tgtd, "pool", sizes, 1, NULL, NULL, &err) == 0 &&
                  keel_blockdev_open(keel_lab_tgtd_lun_url(L.tgtd, 0, 1), NULL, &L.lun,
                                     &err) == 0 &&
                  keel_sd_create_block(&L.lun, 1, &b, &sd, &err) == 0, "%s", err.msg);
    keel_sd_close(sd);
    L.posix_dir = keel_lab_tmpdir("pool-posix", &err);
    ck_assert_msg(L.posix_dir != NULL, "%s", err.msg);
    url = keel_strdup_printf("file://%s", L.posix_dir);
    ck_assert_msg(keel_fs_open(url, NULL, &L.posix_fs, &err) == 0 &&
                  keel_sd_create_file(L.posix_fs, &c, &sd, &err) == 0, "%s", err.msg);
    free(url);
    /* C is the master of another data center. */
    ck_assert_msg(keel_pool_create(sd, POOL2, "other-dc", false, &err) == 0, "%s", err.msg);
    keel_sd_close(sd);
}

static void teardown(void)
{
    keel_fs_close(L.nfs_fs);
    keel_fs_close(L.posix_fs);
    keel_blockdev_close(L.lun);
    keel_lab_nfs_stop(L.nfs);
    keel_lab_tgtd_stop(L.tgtd);
    keel_lab_tmpdir_remove(L.posix_dir);
    free(L.posix_dir);
}

START_TEST(lifecycle)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd *a = open_sd(SDA), *b = open_sd(SDB), *c = open_sd(SDC);
    struct keel_pool_info info;
    char doms[256];

    ck_assert_msg(keel_pool_create(a, POOL, "dc1", false, &err) == 0, "%s", err.msg);
    expect_file_key("POOL_UUID", POOL);
    expect_file_key("ROLE", "Master");
    expect_file_key("MASTER_VERSION", "1");
    expect_file_key("POOL_DESCRIPTION", "dc1");
    expect_file_key("POOL_DOMAINS", SDA ":Active");
    expect_file_key("POOL_SPM_ID", "-1");
    expect_file_key("POOL_SPM_LVER", "-1");
    expect_file_key("LOCKPOLICY", "ON");
    {
        char *p = keel_strdup_printf("%s/%s/master/tasks", keel_lab_nfs_export_dir(L.nfs), SDA);
        struct keel_stat st;

        ck_assert_msg(keel_fs_stat(L.nfs_fs, SDA "/master/tasks", &st, &err) == 0, "%s: %s", p,
                      err.msg);
        free(p);
    }

    /* Attach and activate the block domain; the SPM is recorded. */
    ck_assert_msg(keel_pool_attach(a, b, false, NULL, &err) == 0, "%s", err.msg);
    expect_block_key("POOL_UUID", POOL);
    expect_block_key("ROLE", "Regular");
    expect_file_key("POOL_DOMAINS", SDA ":Active," SDB ":Attached");
    ck_assert_msg(keel_pool_activate(a, SDB, &err) == 0, "%s", err.msg);
    expect_file_key("POOL_DOMAINS", SDA ":Active," SDB ":Active");
    ck_assert_msg(keel_pool_spm_started(a, 2, 7, &err) == 0, "%s", err.msg);
    expect_file_key("POOL_SPM_ID", "2");
    expect_file_key("POOL_SPM_LVER", "7");

    /* What may not be done. */
    ck_assert_int_eq(keel_pool_deactivate(a, SDA, &err), -1);
    ck_assert_msg(strstr(err.msg, "is the master of pool " POOL ": move the master role first"),
                  "%s", err.msg);
    ck_assert_int_eq(keel_pool_detach(a, b, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "is active in pool " POOL ": deactivate it first"), "%s",
                  err.msg);
    ck_assert_int_eq(keel_pool_attach(a, c, false, NULL, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_BUSY);
    ck_assert_str_eq(err.msg, "storage domain " SDC " belongs to pool " POOL2 ": detach it "
                              "there, or force");
    ck_assert_int_eq(keel_pool_destroy(a, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_BUSY);

    /* Forced: the import path takes a domain over from a lost data center. */
    ck_assert_msg(keel_pool_attach(a, c, true, NULL, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(keel_sd_info(c)->pool_uuids, POOL);
    ck_assert(!keel_sd_info(c)->master);

    /* The master moves to the block domain. */
    ck_assert_msg(keel_pool_move_master(a, b, NULL, &err) == 0, "%s", err.msg);
    expect_block_key("ROLE", "Master");
    expect_block_key("MASTER_VERSION", "2");
    expect_block_key("POOL_DESCRIPTION", "dc1");
    expect_block_key("POOL_SPM_LVER", "7");
    expect_file_key("ROLE", "Regular");
    expect_file_key("MASTER_VERSION", "0");
    ck_assert_msg(keel_pool_info(b, &info, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(info.master_version, 2);
    ck_assert_uint_eq(info.ndomains, 3);
    ck_assert_int_eq(keel_pool_info(a, &info, &err), -1);

    /* Deactivate and detach the others; destroy. */
    ck_assert_msg(keel_pool_deactivate(b, SDA, &err) == 0 &&
                  keel_pool_detach(b, a, NULL, &err) == 0 && keel_pool_detach(b, c, NULL, &err) == 0,
                  "%s", err.msg);
    expect_file_key("POOL_UUID", "");
    snprintf(doms, sizeof(doms), "%s:Active", SDB);
    expect_block_key("POOL_DOMAINS", doms);
    ck_assert_msg(keel_pool_destroy(b, &err) == 0, "%s", err.msg);
    expect_block_key("POOL_UUID", "");
    expect_block_key("ROLE", "Regular");
    keel_sd_close(a);
    keel_sd_close(b);
    keel_sd_close(c);
}
END_TEST

/* Write the journal record of a two-domain change, as the SPM does before its first step. */
static unsigned begin(struct keel_journal *j, const char *op, const char *const kv[])
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_jrec r = { 0 };
    unsigned slot = 0;

    keel_strlcpy(r.op, op, sizeof(r.op));
    for (size_t i = 0; kv[i] != NULL; i += 2)
        ck_assert_int_eq(keel_jrec_add_arg(&r, kv[i], kv[i + 1], &err), 0);
    ck_assert_msg(keel_journal_begin(j, &r, &slot, &err) == 0, "%s", err.msg);
    return slot;
}

static void set_key(struct keel_sd *sd, const char *key, const char *value)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_md md;

    keel_sd_md_init(&md);
    ck_assert_msg(keel_sd_md_copy(&md, keel_sd_md(sd), &err) == 0 &&
                  keel_sd_md_set(&md, key, value, &err) == 0 &&
                  keel_sd_write_md(sd, &md, &err) == 0, "%s", err.msg);
    keel_sd_md_release(&md);
}

/* A new SPM on master uuid recovers; want records finished. */
static void recover(const char *master_uuid, unsigned want)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd *m = open_sd(master_uuid);
    struct keel_journal *j = NULL;
    struct keel_pool_recovery rec = { .master = m, .open = resolve, .close = give_back };
    struct keel_journal_report rep;

    ck_assert_msg(keel_journal_open(m, 50, 3, &j, &err) == 0, "%s", err.msg);
    keel_journal_set_handler(j, keel_pool_recover_record, &rec);
    ck_assert_msg(keel_journal_recover(j, &rep, &err) == 0, "%s", err.msg);
    for (unsigned i = 0; i < rep.nlines; i++)
        fprintf(stderr, "test_pool: %s\n", rep.lines[i]);
    ck_assert_uint_eq(rep.finished, want);
    keel_journal_close(j);
    keel_sd_close(m);
}

START_TEST(interrupted_changes_finish)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd *a = open_sd(SDA), *b = open_sd(SDB);
    struct keel_journal *j = NULL;

    ck_assert_msg(keel_pool_create(a, POOL, "dc1", false, &err) == 0, "%s", err.msg);

    /* attach: the domain names the pool, the master does not list it yet. */
    ck_assert_msg(keel_journal_open(a, 1, 1, &j, &err) == 0, "%s", err.msg);
    {
        const char *kv[] = { "pool", POOL, "domain", SDB, NULL };

        begin(j, "pool.attach", kv);
    }
    keel_journal_close(j);
    set_key(b, "POOL_UUID", POOL);
    keel_sd_close(b);
    recover(SDA, 1);
    expect_file_key("POOL_DOMAINS", SDA ":Active," SDB ":Attached");

    /* detach: the master forgot it, the domain still names the pool. */
    keel_sd_close(a);
    a = open_sd(SDA);
    ck_assert_msg(keel_journal_open(a, 2, 1, &j, &err) == 0, "%s", err.msg);
    {
        const char *kv[] = { "pool", POOL, "domain", SDB, NULL };

        begin(j, "pool.detach", kv);
    }
    keel_journal_close(j);
    set_key(a, "POOL_DOMAINS", SDA ":Active");
    recover(SDA, 1);
    expect_block_key("POOL_UUID", "");

    /* master move: the new one is master at version 2, the old one still says Master. */
    b = open_sd(SDB);
    keel_sd_close(a);
    a = open_sd(SDA);
    ck_assert_msg(keel_pool_attach(a, b, false, NULL, &err) == 0 &&
                  keel_pool_activate(a, SDB, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_journal_open(b, 3, 1, &j, &err) == 0, "%s", err.msg);
    {
        const char *kv[] = { "pool", POOL, "domain", SDB, "from", SDA, "version", "2", NULL };

        begin(j, "pool.master", kv);
    }
    keel_journal_close(j);
    {
        struct keel_sd_md md;

        keel_sd_md_init(&md);
        ck_assert_msg(keel_sd_md_copy(&md, keel_sd_md(b), &err) == 0, "%s", err.msg);
        for (size_t i = 0; i < keel_sd_md(a)->n; i++) {
            const struct keel_sd_md_kv *kv = &keel_sd_md(a)->kv[i];

            if (strncmp(kv->key, "POOL_", 5) == 0 || strcmp(kv->key, "LOCKPOLICY") == 0)
                ck_assert_int_eq(keel_sd_md_set(&md, kv->key, kv->value, &err), 0);
        }
        ck_assert_msg(keel_sd_md_set(&md, "ROLE", "Master", &err) == 0 &&
                      keel_sd_md_set(&md, "MASTER_VERSION", "2", &err) == 0 &&
                      keel_sd_write_md(b, &md, &err) == 0, "%s", err.msg);
        keel_sd_md_release(&md);
    }
    keel_sd_close(b);
    recover(SDB, 1);
    expect_file_key("ROLE", "Regular");
    expect_file_key("MASTER_VERSION", "0");
    expect_block_key("ROLE", "Master");
    keel_sd_close(a);
}
END_TEST

/* The master is lost: the SPM reconstructs it elsewhere; the old one, back, is demoted. */
START_TEST(reconstruct)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd *a = open_sd(SDA), *b = open_sd(SDB);
    struct keel_pool_info last, now;

    ck_assert_msg(keel_pool_create(a, POOL, "dc1", false, &err) == 0 &&
                  keel_pool_attach(a, b, false, NULL, &err) == 0 &&
                  keel_pool_activate(a, SDB, &err) == 0 &&
                  keel_pool_info(a, &last, &err) == 0, "%s", err.msg);
    keel_sd_close(a); /* gone */
    ck_assert_msg(keel_pool_reconstruct(b, &last, NULL, &err) == 0, "%s", err.msg);
    expect_block_key("ROLE", "Master");
    expect_block_key("MASTER_VERSION", "2");
    expect_block_key("POOL_DESCRIPTION", "dc1");
    ck_assert_msg(keel_pool_info(b, &now, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(now.ndomains, 2);
    ck_assert_str_eq(now.domains[0].uuid, SDA);
    ck_assert(!now.domains[0].active);
    ck_assert(now.domains[1].active);
    /* The old master comes back still saying Master (version 1): attaching demotes it. */
    expect_file_key("ROLE", "Master");
    expect_file_key("MASTER_VERSION", "1");
    a = open_sd(SDA);
    ck_assert_msg(keel_pool_attach(b, a, false, NULL, &err) == 0, "%s", err.msg);
    expect_file_key("ROLE", "Regular");
    expect_file_key("MASTER_VERSION", "0");
    expect_file_key("POOL_UUID", POOL);
    keel_sd_close(a);
    keel_sd_close(b);
}
END_TEST

/* journal-worker on master A: OP the block domain B, killed at step k. */
static void worker_killed(const char *op, int k)
{
    char *exe = keel_strdup_printf("%s/tests/journal-worker", getenv("KEEL_BUILD_ROOT"));
    char crash[16];
    const char *argv[] = { exe, keel_lab_nfs_url(L.nfs), SDA, "7", op,
                           keel_lab_tgtd_lun_url(L.tgtd, 0, 1), SDB, crash, NULL };
    int st = 0;
    pid_t pid;

    snprintf(crash, sizeof(crash), "%d", k);
    pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    ck_assert(waitpid(pid, &st, 0) == pid);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s at step %d: status %d", op, k,
                  st);
    free(exe);
}

START_TEST(killed_changes_finish)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd *a = open_sd(SDA), *b;

    ck_assert_msg(keel_pool_create(a, POOL, "dc1", false, &err) == 0, "%s", err.msg);
    keel_sd_close(a);
    for (int k = 0; k <= 2; k++) {
        /* attach, killed at step k; the new SPM finishes it */
        worker_killed("pool-attach", k);
        recover(SDA, 1);
        expect_block_key("POOL_UUID", POOL);
        expect_file_key("POOL_DOMAINS", SDA ":Active," SDB ":Attached");
        /* detach, killed at step k */
        worker_killed("pool-detach", k);
        recover(SDA, 1);
        expect_block_key("POOL_UUID", "");
        expect_file_key("POOL_DOMAINS", SDA ":Active");
    }
    /* master moves A -> B, killed at each step, finished on B; then back to A. */
    a = open_sd(SDA);
    b = open_sd(SDB);
    ck_assert_msg(keel_pool_attach(a, b, false, NULL, &err) == 0 &&
                  keel_pool_activate(a, SDB, &err) == 0, "%s", err.msg);
    keel_sd_close(a);
    keel_sd_close(b);
    for (int k = 0; k <= 2; k++) {
        char ver[16];

        worker_killed("pool-master", k);
        recover(SDB, 1);
        snprintf(ver, sizeof(ver), "%d", 2 + 2 * k);
        expect_block_key("ROLE", "Master");
        expect_block_key("MASTER_VERSION", ver);
        expect_file_key("ROLE", "Regular");
        expect_file_key("MASTER_VERSION", "0");
        a = open_sd(SDA);
        b = open_sd(SDB);
        ck_assert_msg(keel_pool_move_master(b, a, NULL, &err) == 0, "%s", err.msg);
        keel_sd_close(a);
        keel_sd_close(b);
        snprintf(ver, sizeof(ver), "%d", 3 + 2 * k);
        expect_file_key("MASTER_VERSION", ver);
    }
    fprintf(stderr, "test_pool: an SPM killed at each of 3 steps of an attach, a detach and a "
                    "master move: recovery finished each\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    keel_lab_require("ganesha.nfsd");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, lifecycle);
    tcase_add_test(tc, interrupted_changes_finish);
    tcase_add_test(tc, reconstruct);
    tcase_add_test(tc, killed_changes_finish);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
