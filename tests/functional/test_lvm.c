/*
 * Keel's LVM2 implementation against the real lvm2, on LUNs served by the
 * harness's tgtd.  Keel reaches the LUNs through iSCSI (libiscsi); lvm2
 * reads (and writes) the same LUN files through loop devices.
 *
 *   - Keel writes, lvm2 judges, after every kind of change;
 *   - lvm2 writes, Keel reads exactly, changes it, lvm2 reads the result;
 *   - crash at every write of a change (fault injection in io/): both read
 *     the old or the new seqno;
 *   - a second reader process re-reads the text only when the seqno moves;
 *   - 5000 LVs with 4 tags: vgck accepts, text size per LV printed;
 *   - damage over iSCSI: a clear error naming the LUN, nothing written;
 *   - keel-storage lvm show --json agrees.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/faulty.h"
#include "metadata/lvm_edit.h"
#include "metadata/lvm_store.h"
#include "tests/functional/lvm_judge.h"
#include "tests/harness/lab.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

static struct keel_lab_tgtd *start_luns(const uint64_t *sizes, size_t n)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;

    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "vg", sizes, n, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    return t;
}

static struct keel_blockdev *lun(struct keel_lab_tgtd *t, int i)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *d = NULL;

    ck_assert_msg(keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, i), NULL, &d, &err) == 0, "%s",
                  err.msg);
    return d;
}

static void judge_agrees(struct lvm_judge *j, struct keel_lvm_store *s, const char *after)
{
    struct keel_error err = KEEL_ERROR_INIT;

    ck_assert_msg(lvm_judge_agrees(j, keel_lvm_store_vg(s), &err) == 0, "after %s: %s", after,
                  err.msg);
}

START_TEST(keel_writes_lvm_judges)
{
    uint64_t sizes[] = { 4 * GiB, 2 * GiB };
    struct keel_lab_tgtd *t = start_luns(sizes, 2);
    struct keel_blockdev *d[2] = { lun(t, 1), lun(t, 2) };
    const char *files[] = { keel_lab_tgtd_lun_path(t, 0, 1), keel_lab_tgtd_lun_path(t, 0, 2) };
    const char *vgtags[] = { "RHAT_storage_domain", "MDT_CLASS=Data" };
    const char *flags[] = { "NOAUTOACTIVATE" };
    const char *t3[] = { "IU_11111111-2222-3333-4444-555555555555",
                         "PU_00000000-0000-0000-0000-000000000000", "MD_1" };
    const char *add[] = { "MD_2" }, *del[] = { "MD_1" }, *vadd[] = { "MDT_VERSION=5" };
    struct keel_lvm_create_opts o = { .layout = KEEL_LVM_LAYOUT_OVIRT, .vg_flags = flags,
                                      .nvg_flags = 1, .host = "keeltest" };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_store *s = NULL, *r = NULL;
    struct lvm_judge j;

    ck_assert_msg(keel_lvm_store_create(d, 1, "vgkeel", 128 * MiB, vgtags, 2, &o, &s, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(lvm_judge_attach(&j, files, 2, &err) == 0, "%s", err.msg);
    judge_agrees(&j, s, "vgcreate");
    ck_assert_msg(keel_lvm_store_lv_create(s, "lv1", 300 * MiB, t3, 3, &err) == 0, "%s", err.msg);
    judge_agrees(&j, s, "lvcreate");
    ck_assert_msg(keel_lvm_store_lv_create(s, "lv2", 128 * MiB, NULL, 0, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_lvm_store_lv_resize(s, "lv1", GiB, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_lvm_vg_find_lv(keel_lvm_store_vg(s), "lv1")->nsegs, 2);
    judge_agrees(&j, s, "lvextend to a second segment");
    ck_assert_msg(keel_lvm_store_lv_create(s, "lv3", 128 * MiB, NULL, 0, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_lvm_store_lv_remove(s, "lv3", &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_resize(s, "lv1", 1152 * MiB, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_lvm_vg_find_lv(keel_lvm_store_vg(s), "lv1")->nsegs, 2);
    judge_agrees(&j, s, "lvextend growing the last segment");
    ck_assert_msg(keel_lvm_store_lv_resize(s, "lv1", 256 * MiB, &err) == 0, "%s", err.msg);
    judge_agrees(&j, s, "lvreduce");
    ck_assert_msg(keel_lvm_store_lv_tags(s, "lv1", add, 1, del, 1, &err) == 0, "%s", err.msg);
    judge_agrees(&j, s, "lvchange tags");
    ck_assert_msg(keel_lvm_store_lv_rename(s, "lv2", "lv2-renamed", &err) == 0, "%s", err.msg);
    judge_agrees(&j, s, "lvrename");
    ck_assert_msg(keel_lvm_store_vg_tags(s, vadd, 1, vgtags + 1, 1, &err) == 0, "%s", err.msg);
    judge_agrees(&j, s, "vgchange tags");
    ck_assert_msg(keel_lvm_store_lv_remove(s, "lv2-renamed", &err) == 0, "%s", err.msg);
    judge_agrees(&j, s, "lvremove");
    ck_assert_msg(keel_lvm_store_extend(s, d[1], &err) == 0, "%s", err.msg);
    judge_agrees(&j, s, "vgextend");
    /* An LV across both LUNs. */
    ck_assert_msg(keel_lvm_store_lv_create(s, "span", 4 * GiB, NULL, 0, &err) == 0, "%s",
                  err.msg);
    {
        const struct keel_lvm_lv *lv = keel_lvm_vg_find_lv(keel_lvm_store_vg(s), "span");
        bool pv0 = false, pv1 = false;

        for (size_t k = 0; k < lv->nsegs; k++) {
            pv0 |= lv->segs[k].stripes[0].pv == 0;
            pv1 |= lv->segs[k].stripes[0].pv == 1;
        }
        ck_assert(pv0 && pv1);
    }
    judge_agrees(&j, s, "lvcreate across two LUNs");
    /* Out of space: refused, nothing written. */
    ck_assert_int_eq(keel_lvm_store_lv_create(s, "toobig", 100 * GiB, NULL, 0, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOSPC);
    judge_agrees(&j, s, "a refused lvcreate");

    /* A second Keel reader on both LUNs reads the same. */
    ck_assert_msg(keel_lvm_store_open(d, 2, "vgkeel", NULL, &r, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(keel_lvm_store_vg(r)->seqno, keel_lvm_store_vg(s)->seqno);
    ck_assert_msg(lvm_judge_agrees(&j, keel_lvm_store_vg(r), &err) == 0, "%s", err.msg);
    keel_lvm_store_close(r);

    /* keel-storage lvm show --json, for admins, says the same. */
    {
        char *exe = keel_strdup_printf("%s/cli/keel-storage", getenv("KEEL_BUILD_ROOT"));
        const char *argv[] = { exe, "lvm", "show", "--json", keel_lab_tgtd_lun_url(t, 0, 1),
                               keel_lab_tgtd_lun_url(t, 0, 2), NULL };
        char *out = NULL;
        json_t *o2;

        ck_assert_msg(keel_lab_run_ok(argv, NULL, &out, &err) == 0, "%s", err.msg);
        o2 = json_loads(out, 0, NULL);
        ck_assert_ptr_nonnull(o2);
        ck_assert_str_eq(json_string_value(json_object_get(o2, "name")), "vgkeel");
        ck_assert_int_eq(json_integer_value(json_object_get(o2, "seqno")),
                         keel_lvm_store_vg(s)->seqno);
        ck_assert_uint_eq(json_array_size(json_object_get(o2, "lvs")), 2);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(o2, "pvs"), 1), "device")),
                         keel_lab_tgtd_lun_url(t, 0, 2));
        json_decref(o2);
        free(out);
        free(exe);
    }
    lvm_judge_detach(&j);
    keel_lvm_store_close(s);
    keel_blockdev_close(d[0]);
    keel_blockdev_close(d[1]);
    keel_lab_tgtd_stop(t);
}
END_TEST

START_TEST(lvm_writes_keel_reads)
{
    uint64_t sizes[] = { 2 * GiB };
    struct keel_lab_tgtd *t = start_luns(sizes, 1);
    const char *files[] = { keel_lab_tgtd_lun_path(t, 0, 1) };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_store *s = NULL;
    struct keel_blockdev *d[1];
    struct lvm_judge j;
    const char *ctags[] = { "IU_c", "MD_3" }, *del[] = { "newtag" };
    bool changed = false;
    char *out = NULL;

    ck_assert_msg(lvm_judge_attach(&j, files, 1, &err) == 0, "%s", err.msg);
    {
        const char *cmds[][16] = {
            { "pvcreate", "--metadatasize", "128m", "--metadatacopies", "2", j.loops[0], NULL },
            { "vgcreate", "-s", "128m", "--setautoactivation", "n", "--addtag", "T1",
              "--addtag", "RHAT_storage_domain", "vgl", j.loops[0], NULL },
            { "lvcreate", "-an", "-Zn", "-L", "256m", "-n", "a", "--addtag", "IU_x",
              "--addtag", "MD_1", "vgl", NULL },
            { "lvcreate", "-an", "-Zn", "-L", "128m", "-n", "b", "vgl", NULL },
            { "lvextend", "-L", "512m", "vgl/a", NULL },
            { "lvchange", "--addtag", "newtag", "vgl/b", NULL },
        };

        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
            ck_assert_msg(lvm_judge_run(&j, cmds[i], NULL, &err) == 0, "%s", err.msg);
        }
    }
    d[0] = lun(t, 1);
    ck_assert_msg(keel_lvm_store_open(d, 1, "vgl", NULL, &s, &err) == 0, "%s", err.msg);
    /* vgcreate, two lvcreates, lvextend, lvchange: seqno 5. */
    ck_assert_uint_eq(keel_lvm_store_vg(s)->seqno, 5);
    ck_assert_uint_eq(keel_lvm_vg_find_lv(keel_lvm_store_vg(s), "a")->nsegs, 2);
    ck_assert_uint_eq(keel_lvm_store_warnings(s)->n, 0);
    judge_agrees(&j, s, "lvm2's own changes");
    /* Keel changes lvm2's VG; lvm2 reads the result. */
    ck_assert_msg(keel_lvm_store_lv_create(s, "c", 384 * MiB, ctags, 2, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_lvm_store_lv_resize(s, "b", 256 * MiB, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_tags(s, "b", NULL, 0, del, 1, &err) == 0, "%s", err.msg);
    judge_agrees(&j, s, "Keel's changes to lvm2's VG");
    /* And lvm2 again, and Keel again. */
    {
        const char *cmd[] = { "lvcreate", "-an", "-Zn", "-L", "128m", "-n", "d", "vgl", NULL };

        ck_assert_msg(lvm_judge_run(&j, cmd, NULL, &err) == 0, "%s", err.msg);
    }
    ck_assert_msg(keel_lvm_store_refresh(s, &changed, &err) == 0, "%s", err.msg);
    ck_assert(changed);
    ck_assert_ptr_nonnull(keel_lvm_vg_find_lv(keel_lvm_store_vg(s), "d"));
    judge_agrees(&j, s, "lvm2's lvcreate after Keel's changes");
    free(out);
    lvm_judge_detach(&j);
    keel_lvm_store_close(s);
    keel_blockdev_close(d[0]);
    keel_lab_tgtd_stop(t);
}
END_TEST

/* ---- crash safety ---- */

enum op { OP_LVCREATE, OP_LVEXTEND, OP_LVTAGS, OP_LVREMOVE, OP__N };
static const char *const op_names[] = { "lvcreate", "lvextend", "lvchange tags", "lvremove" };

static int run_op(struct keel_lvm_store *s, enum op op, int round, struct keel_error *err)
{
    char name[32], tag[32];
    const char *tags[] = { tag };

    snprintf(name, sizeof(name), "lv%d", round);
    snprintf(tag, sizeof(tag), "R_%d", round);
    switch (op) {
    case OP_LVCREATE:
        return keel_lvm_store_lv_create(s, name, 128 * MiB, tags, 1, err);
    case OP_LVEXTEND: {
        const struct keel_lvm_lv *lv = keel_lvm_vg_find_lv(keel_lvm_store_vg(s), "grow");
        uint64_t ext = keel_lvm_lv_extents(lv) + 1;

        return keel_lvm_store_lv_resize(s, "grow", ext * 128 * MiB, err);
    }
    case OP_LVTAGS:
        return keel_lvm_store_lv_tags(s, "grow", tags, 1, NULL, 0, err);
    case OP_LVREMOVE: {
        const struct keel_lvm_vg *vg = keel_lvm_store_vg(s);

        for (size_t i = 0; i < vg->nlvs; i++)
            if (strncmp(vg->lvs[i].name, "lv", 2) == 0)
                return keel_lvm_store_lv_remove(s, vg->lvs[i].name, err);
        return keel_lvm_store_lv_create(s, name, 128 * MiB, tags, 1, err);
    }
    case OP__N:
        break;
    }
    return -1;
}

/* Both Keel (a fresh reader) and lvm2 read seqno old or old+1, and the same one. */
static unsigned check_after_crash(struct keel_lab_tgtd *t, struct lvm_judge *j, unsigned before,
                                  const char *what)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *d[1] = { lun(t, 1) };
    struct keel_lvm_store *r = NULL;
    unsigned keel_seq, lvm_seq = 0;

    ck_assert_msg(keel_lvm_store_open(d, 1, "vgc", NULL, &r, &err) == 0, "%s: %s", what, err.msg);
    keel_seq = keel_lvm_store_vg(r)->seqno;
    ck_assert_msg(lvm_judge_seqno(j, "vgc", &lvm_seq, &err) == 0, "%s: %s", what, err.msg);
    ck_assert_msg(keel_seq == before || keel_seq == before + 1, "%s: Keel reads seqno %u after %u",
                  what, keel_seq, before);
    ck_assert_msg(lvm_seq == keel_seq, "%s: lvm2 reads seqno %u, Keel %u", what, lvm_seq,
                  keel_seq);
    /* Every area holds the old or the new copy: stale is fine, damaged is not. */
    for (size_t i = 0; i < keel_lvm_store_warnings(r)->n; i++)
        ck_assert_msg(strstr(keel_lvm_store_warnings(r)->v[i], "older than seqno") != NULL,
                      "%s: %s", what, keel_lvm_store_warnings(r)->v[i]);
    keel_lvm_store_close(r);
    keel_blockdev_close(d[0]);
    return keel_seq;
}

START_TEST(crash_at_every_write)
{
    static const enum keel_tear tears[] = { KEEL_TEAR_DROP, KEEL_TEAR_FULL, KEEL_TEAR_PREFIX,
                                            KEEL_TEAR_RANDOM };
    uint64_t sizes[] = { 4 * GiB };
    struct keel_lab_tgtd *t = start_luns(sizes, 1);
    const char *files[] = { keel_lab_tgtd_lun_path(t, 0, 1) };
    struct keel_lvm_create_opts o = { .layout = KEEL_LVM_LAYOUT_OVIRT, .host = "keeltest" };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *inner = lun(t, 1), *dev = NULL;
    struct keel_faulty *ctl = NULL;
    struct keel_lvm_store *s = NULL;
    struct lvm_judge j;
    int round = 0, crashes = 0;

    ck_assert_msg(keel_faulty_blockdev(inner, NULL, &dev, &ctl, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lvm_store_create(&dev, 1, "vgc", 128 * MiB, NULL, 0, &o, &s, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(keel_lvm_store_lv_create(s, "grow", 128 * MiB, NULL, 0, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(lvm_judge_attach(&j, files, 1, &err) == 0, "%s", err.msg);
    for (int op = 0; op < OP__N; op++) {
        unsigned nwrites;

        /* Count the writes of one such change. */
        keel_faulty_arm(ctl, NULL);
        ck_assert_msg(run_op(s, (enum op)op, round++, &err) == 0, "%s", err.msg);
        nwrites = keel_faulty_writes(ctl);
        ck_assert_uint_ge(nwrites, 2);
        for (unsigned k = 1; k <= nwrites; k++) {
            for (size_t tm = 0; tm < sizeof(tears) / sizeof(tears[0]); tm++) {
                for (int buffered = 0; buffered < 2; buffered++) {
                    struct keel_fault_plan plan = { .crash_at = k, .tear = tears[tm],
                                                    .buffer_writes = buffered != 0,
                                                    .seed = (uint32_t)(k * 31 + tm) };
                    unsigned before = keel_lvm_store_vg(s)->seqno;
                    char what[128];

                    snprintf(what, sizeof(what), "%s, crash at write %u of %u, tear %zu%s",
                             op_names[op], k, nwrites, tm, buffered ? ", buffered" : "");
                    keel_faulty_arm(ctl, &plan);
                    ck_assert_msg(run_op(s, (enum op)op, round++, &err) == -1,
                                  "%s: the change did not fail", what);
                    ck_assert_int_eq(err.code, KEEL_E_FAULT);
                    crashes++;
                    keel_faulty_arm(ctl, NULL);
                    check_after_crash(t, &j, before, what);
                    /* The store itself re-reads and carries on from what is on disk. */
                    ck_assert_msg(keel_lvm_store_refresh(s, NULL, &err) == 0, "%s: %s", what,
                                  err.msg);
                }
            }
        }
    }
    fprintf(stderr, "crash safety: %d crashes injected, every one read back old or new\n",
            crashes);
    /* One change that completes writes every area again: the VG is whole for both. */
    keel_faulty_arm(ctl, NULL);
    ck_assert_msg(run_op(s, OP_LVCREATE, round++, &err) == 0, "%s", err.msg);
    ck_assert_msg(lvm_judge_agrees(&j, keel_lvm_store_vg(s), &err) == 0, "%s", err.msg);
    lvm_judge_detach(&j);
    keel_lvm_store_close(s);
    keel_blockdev_close(dev);
    keel_lab_tgtd_stop(t);
}
END_TEST

/* ---- a second reader in another process ---- */

START_TEST(reader_process_rereads_on_seqno_only)
{
    uint64_t sizes[] = { GiB };
    struct keel_lab_tgtd *t = start_luns(sizes, 1);
    struct keel_blockdev *d[1] = { lun(t, 1) };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_store *s = NULL;
    int to_child[2], from_child[2];
    unsigned reads0, reads, seq;
    int changed;
    pid_t pid;
    char cmd;

    ck_assert_msg(keel_lvm_store_create(d, 1, "vgr", 128 * MiB, NULL, 0, NULL, &s, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(pipe(to_child), 0);
    ck_assert_int_eq(pipe(from_child), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The reader: its own iSCSI session, its own cache. */
        struct keel_blockdev *rd[1];
        struct keel_lvm_store *r = NULL;
        FILE *out = fdopen(from_child[1], "w");

        close(to_child[1]);
        close(from_child[0]);
        if (keel_blockdev_open(keel_lab_tgtd_lun_url(t, 0, 1), NULL, &rd[0], &err) != 0 ||
            keel_lvm_store_open(rd, 1, "vgr", NULL, &r, &err) != 0)
            _exit(1);
        while (read(to_child[0], &cmd, 1) == 1) {
            bool ch = false;

            if (keel_lvm_store_refresh(r, &ch, &err) != 0)
                _exit(2);
            fprintf(out, "%d %u %u\n", ch, keel_lvm_store_text_reads(r),
                    keel_lvm_store_vg(r)->seqno);
            fflush(out);
        }
        _exit(0);
    }
    close(to_child[0]);
    close(from_child[1]);
    {
        FILE *in = fdopen(from_child[0], "r");

        ck_assert_int_eq(write(to_child[1], "r", 1), 1);
        ck_assert_int_eq(fscanf(in, "%d %u %u", &changed, &reads0, &seq), 3);
        for (int i = 0; i < 5; i++) {
            ck_assert_int_eq(write(to_child[1], "r", 1), 1);
            ck_assert_int_eq(fscanf(in, "%d %u %u", &changed, &reads, &seq), 3);
            ck_assert_int_eq(changed, 0);
            ck_assert_uint_eq(reads, reads0);
            ck_assert_uint_eq(seq, 1);
        }
        ck_assert_msg(keel_lvm_store_lv_create(s, "x", MiB, NULL, 0, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(write(to_child[1], "r", 1), 1);
        ck_assert_int_eq(fscanf(in, "%d %u %u", &changed, &reads, &seq), 3);
        ck_assert_int_eq(changed, 1);
        ck_assert_uint_eq(reads, reads0 + 1);
        ck_assert_uint_eq(seq, 2);
        close(to_child[1]);
        fclose(in);
    }
    {
        int status = 0;

        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_int_eq(WEXITSTATUS(status), 0);
    }
    keel_lvm_store_close(s);
    keel_blockdev_close(d[0]);
    keel_lab_tgtd_stop(t);
}
END_TEST

/* ---- scale ---- */

START_TEST(five_thousand_lvs_with_four_tags)
{
    uint64_t sizes[] = { 1024 * GiB };
    struct keel_lab_tgtd *t = start_luns(sizes, 1);
    struct keel_blockdev *d[1] = { lun(t, 1) };
    const char *files[] = { keel_lab_tgtd_lun_path(t, 0, 1) };
    struct keel_lvm_create_opts o = { .layout = KEEL_LVM_LAYOUT_OVIRT, .host = "keeltest" };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_store *s = NULL;
    struct lvm_judge j;
    size_t empty;

    ck_assert_msg(keel_lvm_store_create(d, 1, "vg5k", 128 * MiB, NULL, 0, &o, &s, &err) == 0,
                  "%s", err.msg);
    empty = keel_lvm_store_text_size(s);
    for (int batch = 0; batch < 10; batch++) {
        struct keel_lvm_vg *vg = keel_lvm_vg_dup(keel_lvm_store_vg(s));

        for (int i = batch * 500; i < (batch + 1) * 500; i++) {
            char name[64], iu[64], md[16], cap[32];
            const char *tags[] = { iu, "PU_00000000-0000-0000-0000-000000000000", md, cap };

            snprintf(name, sizeof(name), "%08x-4e1c-4b7a-9c2d-%012x", i, i * 13);
            snprintf(iu, sizeof(iu), "IU_%08x-aaaa-4bbb-8ccc-%012x", i, i);
            snprintf(md, sizeof(md), "MD_%d", i + 4);
            snprintf(cap, sizeof(cap), "KEEL_J_%d", i % 100);
            ck_assert_msg(keel_lvm_lv_create(vg, name, 1, tags, 4, "keeltest", 1795505551,
                                             &err) == 0, "%s", err.msg);
        }
        ck_assert_msg(keel_lvm_store_commit(s, vg, "batch of 500", &err) == 0, "%s", err.msg);
    }
    fprintf(stderr, "5000 LVs with 4 tags each: %zu bytes of metadata text, %zu per LV "
                    "(empty VG %zu); the limit of a 128 MiB area is %llu bytes\n",
            keel_lvm_store_text_size(s), (keel_lvm_store_text_size(s) - empty) / 5000, empty,
            (unsigned long long)keel_lvm_store_text_max(s));
    ck_assert_msg(lvm_judge_attach(&j, files, 1, &err) == 0, "%s", err.msg);
    {
        unsigned seq = 0;

        ck_assert_msg(lvm_judge_seqno(&j, "vg5k", &seq, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(seq, 11);
    }
    ck_assert_msg(lvm_judge_agrees(&j, keel_lvm_store_vg(s), &err) == 0, "%s", err.msg);
    lvm_judge_detach(&j);
    keel_lvm_store_close(s);
    keel_blockdev_close(d[0]);
    keel_lab_tgtd_stop(t);
}
END_TEST

/* ---- damage over iSCSI ---- */

START_TEST(damage_is_reported_and_nothing_written)
{
    uint64_t sizes[] = { GiB };
    struct keel_lab_tgtd *t = start_luns(sizes, 1);
    struct keel_blockdev *d[1] = { lun(t, 1) };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_store *s = NULL;
    unsigned char before[8192], after[8192], b;
    int fd;

    ck_assert_msg(keel_lvm_store_create(d, 1, "vgd", 128 * MiB, NULL, 0, NULL, &s, &err) == 0,
                  "%s", err.msg);
    keel_lvm_store_close(s);
    /* Flip a byte of the committed text (seqno 1 is at 512 in the area at 4096). */
    fd = open(keel_lab_tgtd_lun_path(t, 0, 1), O_RDWR);
    ck_assert_int_eq(pread(fd, &b, 1, 4096 + 512 + 30), 1);
    b ^= 0x20;
    ck_assert_int_eq(pwrite(fd, &b, 1, 4096 + 512 + 30), 1);
    fsync(fd);
    ck_assert_int_eq(pread(fd, before, sizeof(before), 0), (ssize_t)sizeof(before));
    ck_assert_int_eq(keel_lvm_store_open(d, 1, "vgd", NULL, &s, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    {
        char *want = keel_strdup_printf("%s: metadata area at 4096: metadata text checksum "
                                        "mismatch", keel_lab_tgtd_lun_url(t, 0, 1));

        ck_assert_str_eq(err.msg, want);
        free(want);
    }
    ck_assert_int_eq(pread(fd, after, sizeof(after), 0), (ssize_t)sizeof(after));
    ck_assert(memcmp(before, after, sizeof(before)) == 0);
    close(fd);
    keel_blockdev_close(d[0]);
    keel_lab_tgtd_stop(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lvm");
    TCase *tc = tcase_create("lvm");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    keel_lab_require("tgtadm");
    keel_lab_require("lvm");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, keel_writes_lvm_judges);
    tcase_add_test(tc, lvm_writes_keel_reads);
    tcase_add_test(tc, crash_at_every_write);
    tcase_add_test(tc, reader_process_rereads_on_seqno_only);
    tcase_add_test(tc, five_thousand_lvs_with_four_tags);
    tcase_add_test(tc, damage_is_reported_and_nothing_written);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
