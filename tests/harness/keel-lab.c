/*
 * keel-lab: the test lab for shell scripts.
 *
 *   keel-lab tgtd --lun SIZE [--lun SIZE...] [--chap USER:SECRET] [--name NAME]
 *   keel-lab nfs
 *   keel-lab sweep
 *
 * "tgtd" and "nfs" start the server, print KEY=VALUE lines on stdout (values
 * are not quoted: read them with `IFS== read -r key value`), flush, and keep
 * the server until stdin reaches EOF or SIGTERM/SIGINT/SIGHUP arrives; then
 * they stop it, remove its dir and exit 0.  Keep stdin open, e.g. with a
 * coprocess:
 *
 *   coproc LAB { keel-lab tgtd --lun 64M --lun 100M; }
 *   while IFS== read -r key value <&"${LAB[0]}"; do
 *       [ "$key" = END ] && break
 *       declare "T_$key=$value"
 *   done
 *   ...  # use $T_LUN1_URL
 *   exec {LAB[1]}>&-; wait "$LAB_PID"   # LAB_PID: bash's pid of the coprocess
 *
 * (A plain `keel-lab ... &` in a script gets /dev/null as stdin and stops at
 * once.)  The last line is END=1.  If keel-lab itself is killed, its server
 * dies with it (parent-death signal) and the next sweep removes the dir.
 *
 * tgtd prints DIR, PID (the server's), PORT, PORTAL, IQN, and for each LUN K
 * LUNK_URL, LUNK_PATH, LUNK_SIZE.  nfs prints DIR, PID, NFS_PORT, NFS_URL,
 * EXPORT_DIR.  Exit status: 0 done, 1 the server did not start, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/strutil.h"
#include "tests/harness/lab.h"

#define MAX_LUNS 32

static void usage(FILE *f)
{
    fprintf(f, "usage: keel-lab tgtd --lun SIZE [--lun SIZE...] [--chap USER:SECRET] "
            "[--name NAME]\n"
            "       keel-lab nfs\n"
            "       keel-lab sweep\n"
            "Starts the server, prints KEY=VALUE lines, and stops it when stdin reaches EOF\n"
            "or on SIGTERM/SIGINT/SIGHUP.\n");
}

/* Block the stop signals now (they wait for us in a signalfd); -1 on failure. */
static int stop_signals_fd(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
        return -1;
    return signalfd(-1, &set, SFD_CLOEXEC);
}

/* Until stdin reaches EOF (or fails) or a stop signal arrives. */
static void wait_for_stop(int sfd)
{
    for (;;) {
        struct pollfd pfd[2] = { { .fd = 0, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
        char buf[512];

        if (poll(pfd, 2, -1) == -1) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (pfd[1].revents != 0)
            return;
        if (pfd[0].revents != 0) {
            ssize_t n = read(0, buf, sizeof(buf));

            if (n == 0 || (n == -1 && errno != EINTR && errno != EAGAIN))
                return;
        }
    }
}

static int print_done(void)
{
    printf("END=1\n");
    return fflush(stdout) == 0 ? 0 : -1;
}

static int cmd_tgtd(int argc, char **argv, int sfd)
{
    static const struct option opts[] = {
        { "lun", required_argument, NULL, 'l' },
        { "chap", required_argument, NULL, 'c' },
        { "name", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;
    uint64_t sizes[MAX_LUNS];
    size_t nluns = 0;
    char *user = NULL, *secret = NULL;
    const char *name = "lab";
    int c;

    while ((c = getopt_long(argc, argv, "l:c:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (nluns == MAX_LUNS) {
                fprintf(stderr, "keel-lab: at most %d LUNs\n", MAX_LUNS);
                return 2;
            }
            if (keel_parse_size(optarg, &sizes[nluns], &err) == -1) {
                fprintf(stderr, "keel-lab: --lun %s: %s\n", optarg, err.msg);
                return 2;
            }
            nluns++;
            break;
        case 'c':
            free(user);
            user = strdup(optarg);
            secret = user != NULL ? strchr(user, ':') : NULL;
            if (secret == NULL) {
                fprintf(stderr, "keel-lab: --chap wants USER:SECRET\n");
                free(user);
                return 2;
            }
            *secret++ = '\0';
            break;
        case 'n':
            name = optarg;
            break;
        case 'h':
            usage(stdout);
            free(user);
            return 0;
        default:
            usage(stderr);
            free(user);
            return 2;
        }
    }
    if (nluns == 0 || optind != argc) {
        usage(stderr);
        free(user);
        return 2;
    }
    if (keel_lab_tgtd_start(&t, &err) == -1 ||
        keel_lab_tgtd_add_target(t, name, sizes, nluns, user, secret, &err) == -1) {
        fprintf(stderr, "keel-lab: %s\n", err.msg);
        keel_lab_tgtd_stop(t);
        free(user);
        return 1;
    }
    free(user);
    printf("DIR=%s\nPID=%d\nPORT=%u\nPORTAL=%s\nIQN=%s\n", keel_lab_tgtd_dir(t),
           (int)keel_lab_tgtd_pid(t), keel_lab_tgtd_port(t), keel_lab_tgtd_portal_url(t),
           keel_lab_tgtd_iqn(t, 0));
    for (size_t k = 1; k <= nluns; k++)
        printf("LUN%zu_URL=%s\nLUN%zu_PATH=%s\nLUN%zu_SIZE=%llu\n", k,
               keel_lab_tgtd_lun_url(t, 0, (int)k), k, keel_lab_tgtd_lun_path(t, 0, (int)k), k,
               (unsigned long long)sizes[k - 1]);
    if (print_done() == 0)
        wait_for_stop(sfd);
    keel_lab_tgtd_stop(t);
    return 0;
}

static int cmd_nfs(int argc, char **argv, int sfd)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_nfs *n = NULL;

    (void)argv;
    if (argc != 1) {
        usage(stderr);
        return 2;
    }
    if (keel_lab_nfs_start(&n, &err) == -1) {
        fprintf(stderr, "keel-lab: %s\n", err.msg);
        return 1;
    }
    printf("DIR=%s\nPID=%d\nNFS_PORT=%u\nNFS_URL=%s\nEXPORT_DIR=%s\n", keel_lab_nfs_dir(n),
           (int)keel_lab_nfs_pid(n), keel_lab_nfs_port(n), keel_lab_nfs_url(n),
           keel_lab_nfs_export_dir(n));
    if (print_done() == 0)
        wait_for_stop(sfd);
    keel_lab_nfs_stop(n);
    return 0;
}

int main(int argc, char **argv)
{
    int sfd;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "sweep") == 0 && argc == 2) {
        keel_lab_sweep();
        return 0;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    /* A broken stdout pipe must not kill us before we stop the server. */
    signal(SIGPIPE, SIG_IGN);
    sfd = stop_signals_fd();
    if (sfd == -1) {
        perror("keel-lab: signalfd");
        return 1;
    }
    if (strcmp(argv[1], "tgtd") == 0)
        return cmd_tgtd(argc - 1, argv + 1, sfd);
    if (strcmp(argv[1], "nfs") == 0)
        return cmd_nfs(argc - 1, argv + 1, sfd);
    usage(stderr);
    return 2;
}
