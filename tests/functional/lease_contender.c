/*
 * lease-contender: one host contending for the SPM lease, as a separate
 * process (tests/functional/test_spm_race.c drives three of them).
 *
 *   lease-contender HOST_ID NAME iscsi://LUN            ids at 0, SDM at 1 MiB
 *   lease-contender HOST_ID NAME nfs://.../export SD    SD/dom_md/{ids,leases}
 *
 * Joins its host id (N = 1 s, slack 2 s), prints "joined", then reads
 * commands on stdin, one per line, and answers one line each:
 *   acquire   "won LVER" or "busy REASON"
 *   release   "released"
 *   valid     "valid" or "invalid"
 * It keeps renewing its host id until stdin closes or it is killed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <signal.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "spm/paxos.h"

#define MiB (UINT64_C(1) << 20)

static void die(const char *what, const struct keel_error *err)
{
    printf("error %s: %s\n", what, err->msg);
    fflush(stdout);
    exit(1);
}

static struct keel_blockdev *file_view(struct keel_fs *fs, const char *path)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_file *f = NULL;
    struct keel_blockdev *d = NULL;

    if (keel_file_open(fs, path, KEEL_O_RDWR | KEEL_O_SYNC, 0, &f, &err) != 0 ||
        keel_blockdev_open_file(f, 512, &d, &err) != 0)
        die(path, &err);
    return d; /* the file stays open for the process's life */
}

int main(int argc, char **argv)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_delta_timing t = { .io_timeout = 1, .slack = 2 };
    struct keel_blockdev *ids = NULL, *leases = NULL;
    uint64_t ids_off = 0, sdm_off = MiB, id;
    struct keel_delta *d = NULL;
    struct keel_paxos_owner held = { 0 };
    struct keel_io_opts o;
    const char *ls;
    char line[64];

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (argc < 4 || keel_parse_u64(argv[1], &id) != 0) {
        fprintf(stderr, "usage: lease-contender HOST_ID NAME URL [SD]\n");
        return 2;
    }
    keel_io_opts_init(&o);
    o.timeout_ms = 1000;
    if (keel_str_has_prefix(argv[3], "nfs://")) {
        struct keel_fs *fs = NULL;
        char *p1, *p2;

        if (argc < 5 || keel_fs_open(argv[3], &o, &fs, &err) != 0)
            die("nfs", &err);
        ls = argv[4];
        p1 = keel_strdup_printf("%s/dom_md/ids", ls);
        p2 = keel_strdup_printf("%s/dom_md/leases", ls);
        ids = file_view(fs, p1);
        leases = file_view(fs, p2);
    } else {
        if (keel_blockdev_open(argv[3], &o, &ids, &err) != 0)
            die("lun", &err);
        leases = ids;
        ls = "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f";
    }
    if (keel_delta_acquire(ids, ids_off, ls, id, argv[2], &t, &d, &err) != 0 ||
        keel_delta_start(d, &err) != 0)
        die("join", &err);
    printf("joined\n");
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        err = (struct keel_error)KEEL_ERROR_INIT;
        if (strcmp(line, "acquire") == 0) {
            if (keel_paxos_acquire(d, leases, sdm_off, ls, "SDM", &held, &err) == 0)
                printf("won %llu\n", (unsigned long long)held.lver);
            else
                printf("busy %s\n", err.msg);
        } else if (strcmp(line, "release") == 0) {
            if (keel_paxos_release(d, leases, sdm_off, ls, "SDM", &held, &err) == 0)
                printf("released\n");
            else
                printf("error %s\n", err.msg);
        } else if (strcmp(line, "valid") == 0) {
            printf("%s\n", keel_delta_valid(d, NULL) ? "valid" : "invalid");
        } else {
            printf("error unknown command %s\n", line);
        }
        fflush(stdout);
    }
    keel_delta_release(d, &err);
    keel_delta_free(d);
    return 0;
}
