/*
 * The test lab: nfs-ganesha (NFSv3 over TCP, VFS backend) and rpcbind.
 *
 * Each instance has its own dir holding ganesha.conf, its logs, the exported
 * dir export/ and recovery/ (NFSV4.RecoveryRoot: ganesha 4.3 creates v4old
 * and v4recov there instead of sharing /var/lib/nfs/ganesha between
 * instances).  It listens on 127.0.0.1 on four free ports (NFS, MOUNT, and
 * the disabled NLM and RQUOTA); clients name the NFS and MOUNT ports in the
 * URL, so rpcbind's registration (the last ganesha started wins) never
 * matters.
 *
 * What ganesha does here (4.3, measured):
 *   - A port that cannot be bound ends it at start ("Error binding to V6
 *     interface. Cannot continue.", exit 2): a start retries on other ports,
 *     a restart retries the same ones until KEEL_LAB_RESTART_TIMEOUT_MS.
 *   - SIGTERM stops it in about 1.6 s; a stopped (SIGSTOP) one needs SIGKILL.
 *   - Without D-Bus and Kerberos it logs CRIT lines and runs fine.
 *   - The main thread's command name is "ganesha.nfsd".
 * Ready means: the NFS port accepts TCP connections and nfs-ls lists the
 * export through the URL.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "tests/harness/lab-priv.h"

#define RPCBIND_PORT 111

enum { PORT_NFS, PORT_MNT, PORT_NLM, PORT_RQUOTA, NPORTS };

struct keel_lab_nfs {
    char *dir;
    char *export_dir;
    char *conf;
    char *log;     /* ganesha's own log (-L) */
    char *out;     /* its stdout and stderr */
    char *pidfile; /* ganesha's own pid file (-p) */
    char *url;
    unsigned ports[NPORTS];
    pid_t pid; /* 0 when killed */
    uint64_t start;
};

/* ---- rpcbind ---- */

/*
 * rpcbind is a machine service: start it when none runs and leave it running
 * (it daemonizes, so it does not inherit our parent-death signal).  Under the
 * lab lock, so that two tests do not both start one.
 */
static int ensure_rpcbind(struct keel_error *err)
{
    const char *argv[] = { "rpcbind", "-w", NULL };
    uint64_t deadline;
    int status = 0;
    int fd = keel_lab_lock(err);

    if (fd == -1)
        return -1;
    if (!keel_lab_proc_running("rpcbind") &&
        keel_lab_run_timeout(argv, NULL, NULL, NULL, &status, KEEL_LAB_PROBE_TIMEOUT_MS,
                             err) == -1) {
        keel_lab_unlock(fd);
        return keel_error_prefix(err, "start rpcbind");
    }
    deadline = keel_lab_now_ms() + KEEL_LAB_READY_TIMEOUT_MS;
    while (!keel_lab_tcp_connects(RPCBIND_PORT)) {
        if (keel_lab_now_ms() >= deadline) {
            keel_lab_unlock(fd);
            return keel_error_set(err, KEEL_E_TIMEOUT, 0, "rpcbind: port %d not answering after "
                                  "%u ms (rpcbind -w exit status %d)", RPCBIND_PORT,
                                  KEEL_LAB_READY_TIMEOUT_MS, status);
        }
        keel_lab_sleep_ms(KEEL_LAB_POLL_MS);
    }
    keel_lab_unlock(fd);
    return 0;
}

/* ---- configuration ---- */

static int write_conf(struct keel_lab_nfs *n, struct keel_error *err)
{
    _cleanup_free_ char *text = keel_strdup_printf(
        "# Written by the Keel test lab (tests/harness/ganesha.c).\n"
        "NFS_CORE_PARAM {\n"
        "    NFS_Port = %u;\n"
        "    MNT_Port = %u;\n"
        "    NLM_Port = %u;\n"
        "    Rquota_Port = %u;\n"
        "    Enable_NLM = false;\n"
        "    Enable_RQUOTA = false;\n"
        "    Enable_UDP = false;\n"
        "    Bind_addr = 127.0.0.1;\n"
        "    Protocols = 3;\n"
        "}\n"
        "NFSV4 {\n"
        "    Graceless = true;\n"
        "    RecoveryRoot = \"%s/recovery\";\n"
        "}\n"
        "NFS_KRB5 {\n"
        "    Active_krb5 = false;\n"
        "}\n"
        "EXPORT {\n"
        "    Export_Id = 1;\n"
        "    Path = \"%s\";\n"
        "    Pseudo = /export;\n"
        "    Access_Type = RW;\n"
        "    Squash = No_Root_Squash;\n"
        "    Protocols = 3;\n"
        "    Transports = TCP;\n"
        "    SecType = sys;\n"
        "    FSAL { Name = VFS; }\n"
        "}\n",
        n->ports[PORT_NFS], n->ports[PORT_MNT], n->ports[PORT_NLM], n->ports[PORT_RQUOTA], n->dir,
        n->export_dir);

    if (text == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "nfs: out of memory");
    free(n->url);
    n->url = keel_strdup_printf("nfs://127.0.0.1%s?nfsport=%u&mountport=%u", n->export_dir,
                                n->ports[PORT_NFS], n->ports[PORT_MNT]);
    if (n->url == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "nfs: out of memory");
    return keel_lab_write_file(n->conf, text, err);
}

/* ---- start, kill ---- */

static void kill_child(struct keel_lab_nfs *n, int first_sig)
{
    if (n->pid <= 0)
        return;
    if (first_sig != SIGKILL &&
        keel_lab_proc_kill_wait(n->pid, n->start, first_sig, KEEL_LAB_STOP_TIMEOUT_MS) == 0)
        goto gone;
    if (keel_lab_proc_kill_wait(n->pid, n->start, SIGKILL, KEEL_LAB_STOP_TIMEOUT_MS) == -1)
        return;
gone:
    keel_lab_dir_set_server(n->dir, 0, 0, NULL, NULL);
    n->pid = 0;
}

/* The FATAL line of ganesha's log, if any. */
static void log_fatal(const struct keel_lab_nfs *n, char *buf, size_t size)
{
    _cleanup_free_ char *log = keel_lab_read_file(n->log);
    const char *p = log != NULL ? strstr(log, ":FATAL :") : NULL;

    buf[0] = '\0';
    if (p != NULL)
        keel_strlcpy(buf, p + 8, KEEL_MIN(size, strcspn(p + 8, "\n") + 1));
}

/* nfs-ls of the export answers. */
static bool nfs_ls_ok(const struct keel_lab_nfs *n)
{
    const char *argv[] = { "nfs-ls", n->url, NULL };
    int status = -1;

    return keel_lab_run_timeout(argv, NULL, NULL, NULL, &status, KEEL_LAB_PROBE_TIMEOUT_MS,
                                NULL) == 0 && status == 0;
}

/*
 * Spawn ganesha with n->conf and wait until it serves the export.  On failure
 * *retry tells whether it died at start (a port taken), and the child is gone.
 */
static int launch(struct keel_lab_nfs *n, bool *retry, struct keel_error *err)
{
    const char *argv[] = { "ganesha.nfsd", "-F", "-f", n->conf, "-L", n->log, "-p", n->pidfile,
                           NULL };
    char why[200];
    uint64_t deadline;

    *retry = false;
    if (keel_lab_spawn(argv, n->out, &n->pid, &n->start, err) == -1)
        return -1;
    if (keel_lab_dir_set_server(n->dir, n->pid, n->start, "ganesha.nfsd", err) == -1) {
        kill_child(n, SIGKILL);
        return -1;
    }
    deadline = keel_lab_now_ms() + KEEL_LAB_READY_TIMEOUT_MS;
    for (;;) {
        int ws;

        if (waitpid(n->pid, &ws, WNOHANG) == n->pid) {
            n->pid = 0;
            keel_lab_dir_set_server(n->dir, 0, 0, NULL, NULL);
            log_fatal(n, why, sizeof(why));
            *retry = true;
            return keel_error_set(err, KEEL_E_CONNECT, 0,
                                  "ganesha %s (nfs port %u, mount port %u) exited at start: %s",
                                  n->dir, n->ports[PORT_NFS], n->ports[PORT_MNT],
                                  why[0] != '\0' ? why : "see ganesha.log");
        }
        if (keel_lab_tcp_connects(n->ports[PORT_NFS]) && nfs_ls_ok(n) &&
            keel_lab_proc_alive(n->pid, n->start))
            return 0;
        if (keel_lab_now_ms() >= deadline) {
            kill_child(n, SIGKILL);
            return keel_error_set(err, KEEL_E_TIMEOUT, 0,
                                  "ganesha %s: %s not served after %u ms (see ganesha.log)",
                                  n->dir, n->url, KEEL_LAB_READY_TIMEOUT_MS);
        }
        keel_lab_sleep_ms(KEEL_LAB_POLL_MS * 2);
    }
}

static void nfs_stop_cb(void *obj)
{
    keel_lab_nfs_stop(obj);
}

void keel_lab_nfs_stop(struct keel_lab_nfs *n)
{
    if (n == NULL)
        return;
    keel_lab_unregister(n);
    kill_child(n, SIGTERM);
    if (n->pid == 0 && n->dir != NULL)
        keel_lab_rm_rf(n->dir); /* else the sweeper gets it later */
    free(n->dir);
    free(n->export_dir);
    free(n->conf);
    free(n->log);
    free(n->out);
    free(n->pidfile);
    free(n->url);
    free(n);
}

static int make_paths(struct keel_lab_nfs *n, struct keel_error *err)
{
    _cleanup_free_ char *recovery = keel_strdup_printf("%s/recovery", n->dir);

    n->export_dir = keel_strdup_printf("%s/export", n->dir);
    n->conf = keel_strdup_printf("%s/ganesha.conf", n->dir);
    n->log = keel_strdup_printf("%s/ganesha.log", n->dir);
    n->out = keel_strdup_printf("%s/ganesha.out", n->dir);
    n->pidfile = keel_strdup_printf("%s/ganesha.pid", n->dir);
    if (recovery == NULL || n->export_dir == NULL || n->conf == NULL || n->log == NULL ||
        n->out == NULL || n->pidfile == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "nfs: out of memory");
    if (mkdir(n->export_dir, 0755) == -1)
        return keel_error_errno(err, keel_errc_from_errno(errno), errno, "mkdir %s",
                                n->export_dir);
    if (mkdir(recovery, 0755) == -1)
        return keel_error_errno(err, keel_errc_from_errno(errno), errno, "mkdir %s", recovery);
    return 0;
}

int keel_lab_nfs_start(struct keel_lab_nfs **ret, struct keel_error *err)
{
    struct keel_lab_nfs *n;
    bool retry = true;

    if (ensure_rpcbind(err) == -1)
        return -1;
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "nfs: out of memory");
    n->dir = keel_lab_dir_create("nfs", err);
    if (n->dir == NULL || make_paths(n, err) == -1)
        goto fail;
    for (int attempt = 0; attempt < KEEL_LAB_START_ATTEMPTS && retry; attempt++) {
        if (keel_lab_free_ports(n->ports, NPORTS, err) == -1 || write_conf(n, err) == -1)
            goto fail;
        if (launch(n, &retry, err) == 0) {
            keel_lab_register(n, nfs_stop_cb);
            *ret = n;
            return 0;
        }
    }
fail:
    keel_lab_nfs_stop(n);
    return -1;
}

int keel_lab_nfs_kill(struct keel_lab_nfs *n, struct keel_error *err)
{
    if (n->pid == 0)
        return 0;
    if (keel_lab_proc_kill_wait(n->pid, n->start, SIGKILL, KEEL_LAB_STOP_TIMEOUT_MS) == -1)
        return keel_error_set(err, KEEL_E_BUSY, 0, "ganesha %s: pid %d still alive after SIGKILL",
                              n->dir, (int)n->pid);
    keel_lab_dir_set_server(n->dir, 0, 0, NULL, NULL);
    n->pid = 0;
    return 0;
}

int keel_lab_nfs_restart(struct keel_lab_nfs *n, struct keel_error *err)
{
    uint64_t deadline;
    bool retry = true;

    if (keel_lab_nfs_kill(n, err) == -1)
        return -1;
    deadline = keel_lab_now_ms() + KEEL_LAB_RESTART_TIMEOUT_MS;
    while (launch(n, &retry, err) == -1) {
        if (!retry || keel_lab_now_ms() >= deadline)
            return keel_error_prefix(err, "restart");
        keel_lab_sleep_ms(KEEL_LAB_POLL_MS * 4);
    }
    return 0;
}

int keel_lab_nfs_signal(struct keel_lab_nfs *n, int sig, struct keel_error *err)
{
    if (n->pid == 0 || !keel_lab_proc_alive(n->pid, n->start))
        return keel_error_set(err, KEEL_E_NOENT, ESRCH, "ganesha %s: not running", n->dir);
    if (kill(n->pid, sig) == -1)
        return keel_error_errno(err, keel_errc_from_errno(errno), errno,
                                "ganesha %s: kill pid %d", n->dir, (int)n->pid);
    return 0;
}

/* ---- accessors ---- */

const char *keel_lab_nfs_url(const struct keel_lab_nfs *n)
{
    return n->url;
}

char *keel_lab_nfs_url_sub(const struct keel_lab_nfs *n, const char *sub)
{
    if (sub == NULL)
        return NULL;
    while (sub[0] == '/')
        sub++;
    return keel_strdup_printf("nfs://127.0.0.1%s/%s?nfsport=%u&mountport=%u", n->export_dir, sub,
                              n->ports[PORT_NFS], n->ports[PORT_MNT]);
}

const char *keel_lab_nfs_export_dir(const struct keel_lab_nfs *n)
{
    return n->export_dir;
}

const char *keel_lab_nfs_dir(const struct keel_lab_nfs *n)
{
    return n->dir;
}

pid_t keel_lab_nfs_pid(const struct keel_lab_nfs *n)
{
    return n->pid;
}

unsigned keel_lab_nfs_port(const struct keel_lab_nfs *n)
{
    return n->ports[PORT_NFS];
}
