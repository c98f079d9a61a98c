/*
 * journal-worker: an SPM doing one journalled volume operation, killed
 * with SIGKILL at a chosen step boundary (tests/functional/test_journal.c).
 *
 *   journal-worker URL SD LVER create VOL IMG PARENT|- CRASH
 *   journal-worker URL SD LVER delete VOL CRASH
 *   journal-worker URL SD LVER extend VOL CAPACITY CRASH
 *   journal-worker URL SD LVER pool-attach|pool-detach|pool-master URL2 SD2 CRASH
 *       SD is the pool's master; SD2 the domain attached, detached, or
 *       made master (then SD2's journal is used)
 *
 * URL is an iSCSI LUN (block domain SD) or an NFS export (file domain).
 * CRASH is the step (keel_sd_op.step, or the pool probe's step) after
 * which the process kills itself, or -1.  Prints "ok" when the operation
 * completed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "spm/journal.h"
#include "spm/pool.h"
#include "volume/vol.h"

static long crash_at = -1;
static struct keel_journal *journal;

static int hook(void *opaque, const struct keel_sd_op *op, struct keel_error *err)
{
    (void)opaque;
    if (keel_journal_note(journal, op, err) != 0)
        return -1;
    if ((long)op->step == crash_at)
        raise(SIGKILL);
    return 0;
}

static void pool_probe(const char *op, unsigned step)
{
    (void)op;
    if ((long)step == crash_at)
        raise(SIGKILL);
}

static void die(const char *what, const struct keel_error *err)
{
    printf("error %s: %s\n", what, err->msg);
    exit(1);
}

static void open_domain(const char *url, const char *uuid, struct keel_blockdev **dev,
                        struct keel_fs **fs, struct keel_sd **sd)
{
    struct keel_error err = KEEL_ERROR_INIT;

    if (keel_str_has_prefix(url, "iscsi://")) {
        if (keel_blockdev_open(url, NULL, dev, &err) != 0 ||
            keel_sd_open_block(dev, 1, uuid, sd, &err) != 0)
            die("open", &err);
    } else if (keel_fs_open(url, NULL, fs, &err) != 0 ||
               keel_sd_open_file(*fs, uuid, sd, &err) != 0) {
        die("open", &err);
    }
}

int main(int argc, char **argv)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL, *dev2 = NULL;
    struct keel_fs *fs = NULL, *fs2 = NULL;
    struct keel_sd *sd = NULL, *sd2 = NULL;
    uint64_t lver;
    int rc;

    if (argc < 7 || keel_parse_u64(argv[3], &lver) != 0) {
        fprintf(stderr, "usage: journal-worker URL SD LVER create|delete ...\n");
        return 2;
    }
    open_domain(argv[1], argv[2], &dev, &fs, &sd);
    if (keel_str_has_prefix(argv[4], "pool-")) {
        if (argc != 8)
            return 2;
        open_domain(argv[5], argv[6], &dev2, &fs2, &sd2);
        crash_at = strtol(argv[7], NULL, 10);
        keel_pool_set_probe(pool_probe);
        if (keel_journal_open(strcmp(argv[4], "pool-master") == 0 ? sd2 : sd, lver, 1, &journal,
                              &err) != 0)
            die("journal", &err);
        if (strcmp(argv[4], "pool-attach") == 0)
            rc = keel_pool_attach(sd, sd2, false, journal, &err);
        else if (strcmp(argv[4], "pool-detach") == 0)
            rc = keel_pool_detach(sd, sd2, journal, &err);
        else
            rc = keel_pool_move_master(sd, sd2, journal, &err);
        if (rc != 0)
            die(argv[4], &err);
        printf("ok\n");
        return 0;
    }
    if (keel_journal_open(sd, lver, 1, &journal, &err) != 0)
        die("journal", &err);
    keel_sd_set_step_hook(sd, hook, NULL);
    if (strcmp(argv[4], "create") == 0 && argc == 9) {
        struct keel_vol_create c = { .image = argv[6], .uuid = argv[5], .format = KEEL_VOL_COW,
                                     .type = KEEL_VOL_SPARSE, .capacity = UINT64_C(1) << 30 };

        if (strcmp(argv[7], "-") != 0)
            c.parent = argv[7];
        crash_at = strtol(argv[8], NULL, 10);
        rc = keel_vol_create(sd, &c, NULL, &err);
    } else if (strcmp(argv[4], "delete") == 0 && argc == 7) {
        crash_at = strtol(argv[6], NULL, 10);
        rc = keel_vol_delete(sd, argv[5], false, &err);
    } else if (strcmp(argv[4], "extend") == 0 && argc == 8) {
        uint64_t cap;

        if (keel_parse_u64(argv[6], &cap) != 0)
            return 2;
        crash_at = strtol(argv[7], NULL, 10);
        rc = keel_vol_extend(sd, argv[5], cap, &err);
    } else {
        fprintf(stderr, "journal-worker: bad arguments\n");
        return 2;
    }
    if (rc != 0)
        die(argv[4], &err);
    printf("ok\n");
    keel_journal_close(journal);
    keel_sd_close(sd);
    keel_blockdev_close(dev);
    keel_fs_close(fs);
    return 0;
}
