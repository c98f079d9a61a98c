/*
 * The test lab: tgtd, the iSCSI target.
 *
 * Each instance runs in the foreground as our child:
 *     tgtd -f --iscsi portal=127.0.0.1:PORT --control-port N
 * and is driven with `tgtadm -C N`.  The control port is not a TCP port: it
 * names the unix socket /var/run/tgtd/socket.N, guarded by a lockf() lock on
 * socket.N.lock that tgtd takes at start ("another tgtd is using ..." and
 * exit 1 when taken).  tgtd leaves both files behind when it is killed; we
 * remove them after it is gone, while holding the lock ourselves.
 *
 * What tgtd does here (tgt 1.0.85, measured):
 *   - A portal that cannot be bound does not stop tgtd: it logs "unable to
 *     bind server socket" and goes on with its default portals (0.0.0.0:3260
 *     and [::]:3260).  So readiness is: `tgtadm --mode sys --op show` answers
 *     AND `--mode portal --op show` lists 127.0.0.1:PORT.  A list without it
 *     is a failed start, retried on other ports (or, on a restart, the same
 *     ones until KEEL_LAB_RESTART_TIMEOUT_MS).
 *   - It binds with SO_REUSEADDR: a restart right after SIGKILL gets the same
 *     port back despite TIME_WAIT connections.
 *   - It ignores SIGTERM while it has targets: SIGKILL is the only stop.
 *   - A LUN's size is its file's size rounded down to 512-byte blocks; we
 *     refuse sizes that are not a multiple of 512 rather than serve less.
 *   - CHAP accounts belong to the whole tgtd: a user is created once and
 *     bound to each target that names it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "tests/harness/lab-priv.h"

#define TGTD_IQN_PREFIX "iqn.2026-11.org.keel.test:"
#define TGTD_SOCKET_DIR "/var/run/tgtd"
#define TGTD_MAX_LUNS 255
#define TGTD_TGTADM_ARGS 24
/* Ends the argument list of tgtadm(). */
#define TGTADM_END ((const char *)NULL)

struct lab_lun {
    uint64_t size;
    char *path; /* backing file in the tgtd's dir */
    char *url;
};

struct lab_target {
    int tid;
    char *iqn;
    char *user;   /* NULL without CHAP */
    char *secret;
    size_t nluns;
    struct lab_lun *luns; /* luns[k - 1] is LUN k */
    bool thin;    /* LUNs thin-provisioned (tgtd's thin_provisioning=1) */
};

struct keel_lab_tgtd {
    char *dir;
    char *log;
    char *portal_url;
    unsigned port;
    unsigned ctl;
    pid_t pid; /* 0 when killed */
    uint64_t start;
    struct lab_target *targets;
    size_t ntargets;
    bool thin;    /* for targets added from now on */
};

/* ---- control port ---- */

static char *ctl_lock_path(unsigned ctl)
{
    return keel_strdup_printf("%s/socket.%u.lock", TGTD_SOCKET_DIR, ctl);
}

/* True when no process holds socket.N.lock (or it does not exist). */
static bool ctl_free(unsigned ctl)
{
    _cleanup_free_ char *path = ctl_lock_path(ctl);
    _cleanup_fd_ int fd = -1;
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

    if (path == NULL)
        return false;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return errno == ENOENT;
    if (fcntl(fd, F_GETLK, &fl) == -1)
        return false;
    return fl.l_type == F_UNLCK;
}

void keel_lab_tgtd_forget_control_port(unsigned ctl)
{
    _cleanup_free_ char *lock = ctl_lock_path(ctl);
    _cleanup_free_ char *sock = keel_strdup_printf("%s/socket.%u", TGTD_SOCKET_DIR, ctl);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    int fd;

    if (lock == NULL || sock == NULL)
        return;
    fd = open(lock, O_RDWR | O_CLOEXEC);
    if (fd == -1)
        return;
    /* Held by us, no tgtd can be starting on N while we unlink. */
    if (fcntl(fd, F_SETLK, &fl) == 0) {
        unlink(sock);
        unlink(lock);
    }
    close(fd);
}

/* A control port whose lock nobody holds: the portal port when free, else random. */
static int pick_ctl(unsigned port, unsigned *ret, struct keel_error *err)
{
    unsigned span = KEEL_LAB_PORT_MAX - KEEL_LAB_PORT_MIN + 1;
    unsigned seed = (unsigned)getpid() * 40503u ^ (unsigned)keel_lab_now_ms();

    if (ctl_free(port)) {
        *ret = port;
        return 0;
    }
    for (unsigned i = 0; i < 1000; i++) {
        unsigned ctl = KEEL_LAB_PORT_MIN + (seed + i * 7919u) % span;

        if (ctl_free(ctl)) {
            *ret = ctl;
            return 0;
        }
    }
    return keel_error_set(err, KEEL_E_BUSY, 0, "tgtd: no free control port");
}

/* ---- tgtadm ---- */

/* Run `tgtadm -C N args... TGTADM_END`; *out gets stdout when out != NULL. */
static int tgtadm(const struct keel_lab_tgtd *t, char **out, struct keel_error *err, ...)
    __attribute__((sentinel));
static int tgtadm(const struct keel_lab_tgtd *t, char **out, struct keel_error *err, ...)
{
    const char *argv[TGTD_TGTADM_ARGS];
    _cleanup_free_ char *o = NULL;
    _cleanup_free_ char *eo = NULL;
    char ctl[16];
    char cmd[256];
    size_t n = 0, len = 0;
    int status = 0;
    va_list ap;
    const char *a;

    snprintf(ctl, sizeof(ctl), "%u", t->ctl);
    argv[n++] = "tgtadm";
    argv[n++] = "-C";
    argv[n++] = ctl;
    va_start(ap, err);
    while ((a = va_arg(ap, const char *)) != NULL && n < TGTD_TGTADM_ARGS - 1)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    if (keel_lab_run_timeout(argv, NULL, &o, &eo, &status, KEEL_LAB_PROBE_TIMEOUT_MS, err) == -1)
        return -1;
    if (status != 0) {
        cmd[0] = '\0';
        for (size_t i = 0; argv[i] != NULL && len < sizeof(cmd); i++) {
            int w = snprintf(cmd + len, sizeof(cmd) - len, "%s%s", i > 0 ? " " : "", argv[i]);

            len += w > 0 ? (size_t)w : 0;
        }
        eo[strcspn(eo, "\n")] = '\0';
        return keel_error_set(err, KEEL_E_IO, 0, "tgtd %s: %s: exit status %d: %s", t->dir, cmd,
                              status, eo);
    }
    if (out != NULL)
        *out = TAKE_PTR(o);
    return 0;
}

/* ---- start, kill ---- */

/* "tgtd: ..." lines of the log that explain a failed start. */
static void log_tail(const struct keel_lab_tgtd *t, char *buf, size_t size)
{
    _cleanup_free_ char *log = keel_lab_read_file(t->log);
    const char *p;

    buf[0] = '\0';
    if (log == NULL)
        return;
    p = strstr(log, "another tgtd");
    if (p == NULL)
        p = strstr(log, "unable to bind");
    if (p != NULL)
        keel_strlcpy(buf, p, KEEL_MIN(size, strcspn(p, "\n") + 1));
}

static void kill_child(struct keel_lab_tgtd *t)
{
    if (t->pid > 0 &&
        keel_lab_proc_kill_wait(t->pid, t->start, SIGKILL, KEEL_LAB_STOP_TIMEOUT_MS) == 0) {
        keel_lab_dir_set_server(t->dir, 0, 0, NULL, NULL);
        t->pid = 0;
    }
}

/*
 * Spawn tgtd on t->port and t->ctl and wait until it serves our portal.
 * On failure *retry tells whether another attempt may succeed (port or
 * control port taken), and the child is gone.
 */
static int launch(struct keel_lab_tgtd *t, bool *retry, struct keel_error *err)
{
    char portal[64], ctl[16], want[64], why[160];
    const char *argv[] = { "tgtd", "-f", "--iscsi", portal, "--control-port", ctl, NULL };
    uint64_t deadline;
    _cleanup_free_ char *ctl_line = NULL;
    _cleanup_free_ char *ctl_path = NULL;

    *retry = false;
    snprintf(portal, sizeof(portal), "portal=127.0.0.1:%u", t->port);
    snprintf(ctl, sizeof(ctl), "%u", t->ctl);
    snprintf(want, sizeof(want), "Portal: 127.0.0.1:%u,", t->port);
    ctl_path = keel_strdup_printf("%s/%s", t->dir, KEEL_LAB_TGTD_CTL_FILE);
    ctl_line = keel_strdup_printf("%u\n", t->ctl);
    if (ctl_path == NULL || ctl_line == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "tgtd: out of memory");
    if (keel_lab_write_file(ctl_path, ctl_line, err) == -1)
        return -1;
    mkdir(TGTD_SOCKET_DIR, 0755);
    if (keel_lab_spawn(argv, t->log, &t->pid, &t->start, err) == -1)
        return -1;
    if (keel_lab_dir_set_server(t->dir, t->pid, t->start, "tgtd", err) == -1) {
        kill_child(t);
        return -1;
    }
    deadline = keel_lab_now_ms() + KEEL_LAB_READY_TIMEOUT_MS;
    for (;;) {
        _cleanup_free_ char *portals = NULL;
        int ws;

        if (waitpid(t->pid, &ws, WNOHANG) == t->pid) {
            t->pid = 0;
            keel_lab_dir_set_server(t->dir, 0, 0, NULL, NULL);
            log_tail(t, why, sizeof(why));
            *retry = true;
            return keel_error_set(err, KEEL_E_CONNECT, 0,
                                  "tgtd %s (127.0.0.1:%u, control port %u) exited at start: %s",
                                  t->dir, t->port, t->ctl, why[0] != '\0' ? why : "see tgtd.log");
        }
        if (tgtadm(t, NULL, NULL, "--op", "show", "--mode", "sys", TGTADM_END) == 0 &&
            tgtadm(t, &portals, NULL, "--lld", "iscsi", "--op", "show", "--mode", "portal",
                   TGTADM_END) == 0) {
            /* Our tgtd, and nobody else on its control port: it serves our portal. */
            if (strstr(portals, want) != NULL && keel_lab_proc_alive(t->pid, t->start))
                return 0;
            if (portals[0] != '\0') {
                kill_child(t);
                log_tail(t, why, sizeof(why));
                *retry = true;
                return keel_error_set(err, KEEL_E_BUSY, 0,
                                      "tgtd %s: portal 127.0.0.1:%u not served: %s", t->dir,
                                      t->port, why[0] != '\0' ? why : "port taken");
            }
        }
        if (keel_lab_now_ms() >= deadline) {
            kill_child(t);
            return keel_error_set(err, KEEL_E_TIMEOUT, 0,
                                  "tgtd %s: not ready after %u ms (see tgtd.log)", t->dir,
                                  KEEL_LAB_READY_TIMEOUT_MS);
        }
        keel_lab_sleep_ms(KEEL_LAB_POLL_MS);
    }
}

static void free_target(struct lab_target *tg)
{
    for (size_t k = 0; k < tg->nluns; k++) {
        free(tg->luns[k].path);
        free(tg->luns[k].url);
    }
    free(tg->luns);
    free(tg->iqn);
    free(tg->user);
    free(tg->secret);
}

static void tgtd_stop_cb(void *obj)
{
    keel_lab_tgtd_stop(obj);
}

void keel_lab_tgtd_stop(struct keel_lab_tgtd *t)
{
    if (t == NULL)
        return;
    keel_lab_unregister(t);
    kill_child(t);
    if (t->ctl != 0)
        keel_lab_tgtd_forget_control_port(t->ctl);
    if (t->pid == 0 && t->dir != NULL)
        keel_lab_rm_rf(t->dir); /* else the sweeper gets it later */
    for (size_t i = 0; i < t->ntargets; i++)
        free_target(&t->targets[i]);
    free(t->targets);
    free(t->dir);
    free(t->log);
    free(t->portal_url);
    free(t);
}

int keel_lab_tgtd_start(struct keel_lab_tgtd **ret, struct keel_error *err)
{
    struct keel_lab_tgtd *t = calloc(1, sizeof(*t));
    bool retry = true;

    if (t == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "tgtd: out of memory");
    t->dir = keel_lab_dir_create("tgtd", err);
    if (t->dir == NULL) {
        free(t);
        return -1;
    }
    t->log = keel_strdup_printf("%s/tgtd.log", t->dir);
    if (t->log == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "tgtd: out of memory");
        goto fail;
    }
    for (int attempt = 0; attempt < KEEL_LAB_START_ATTEMPTS && retry; attempt++) {
        if (keel_lab_free_port(&t->port, err) == -1 || pick_ctl(t->port, &t->ctl, err) == -1)
            goto fail;
        if (launch(t, &retry, err) == 0) {
            t->portal_url = keel_strdup_printf("iscsi://127.0.0.1:%u", t->port);
            if (t->portal_url == NULL) {
                keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "tgtd: out of memory");
                goto fail;
            }
            keel_lab_register(t, tgtd_stop_cb);
            *ret = t;
            return 0;
        }
    }
fail:
    keel_lab_tgtd_stop(t);
    return -1;
}

int keel_lab_tgtd_kill(struct keel_lab_tgtd *t, struct keel_error *err)
{
    if (t->pid == 0)
        return 0;
    if (keel_lab_proc_kill_wait(t->pid, t->start, SIGKILL, KEEL_LAB_STOP_TIMEOUT_MS) == -1)
        return keel_error_set(err, KEEL_E_BUSY, 0, "tgtd %s: pid %d still alive after SIGKILL",
                              t->dir, (int)t->pid);
    keel_lab_dir_set_server(t->dir, 0, 0, NULL, NULL);
    t->pid = 0;
    return 0;
}

int keel_lab_tgtd_signal(struct keel_lab_tgtd *t, int sig, struct keel_error *err)
{
    if (t->pid == 0 || !keel_lab_proc_alive(t->pid, t->start))
        return keel_error_set(err, KEEL_E_NOENT, ESRCH, "tgtd %s: not running", t->dir);
    if (kill(t->pid, sig) == -1)
        return keel_error_errno(err, keel_errc_from_errno(errno), errno, "tgtd %s: kill pid %d",
                                t->dir, (int)t->pid);
    return 0;
}

/* ---- targets ---- */

static bool valid_chars(const char *s, const char *extra, bool upper)
{
    if (s == NULL || s[0] == '\0')
        return false;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (!(islower(c) || isdigit(c) || (upper && isupper(c)) || strchr(extra, c) != NULL))
            return false;
    }
    return true;
}

/* True when no target before index i uses the same CHAP user. */
static bool first_of_user(const struct keel_lab_tgtd *t, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (t->targets[j].user != NULL && strcmp(t->targets[j].user, t->targets[i].user) == 0)
            return false;
    return true;
}

/* Tell tgtd about target i (its LUN files exist). */
static int configure(struct keel_lab_tgtd *t, size_t i, struct keel_error *err)
{
    struct lab_target *tg = &t->targets[i];
    char tid[16];

    snprintf(tid, sizeof(tid), "%d", tg->tid);
    if (tgtadm(t, NULL, err, "--lld", "iscsi", "--op", "new", "--mode", "target", "--tid", tid,
               "-T", tg->iqn, TGTADM_END) == -1)
        return -1;
    for (size_t k = 0; k < tg->nluns; k++) {
        char lun[16];

        snprintf(lun, sizeof(lun), "%zu", k + 1);
        if (tgtadm(t, NULL, err, "--lld", "iscsi", "--op", "new", "--mode", "logicalunit",
                   "--tid", tid, "--lun", lun, "-b", tg->luns[k].path, TGTADM_END) == -1)
            return -1;
        if (tg->thin && tgtadm(t, NULL, err, "--lld", "iscsi", "--op", "update", "--mode",
                               "logicalunit", "--tid", tid, "--lun", lun, "--params",
                               "thin_provisioning=1", TGTADM_END) == -1)
            return -1;
    }
    if (tgtadm(t, NULL, err, "--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", tid,
               "-I", "ALL", TGTADM_END) == -1)
        return -1;
    if (tg->user == NULL)
        return 0;
    if (first_of_user(t, i) &&
        tgtadm(t, NULL, err, "--lld", "iscsi", "--op", "new", "--mode", "account", "--user",
               tg->user, "--password", tg->secret, TGTADM_END) == -1)
        return -1;
    return tgtadm(t, NULL, err, "--lld", "iscsi", "--op", "bind", "--mode", "account", "--tid",
                  tid, "--user", tg->user, TGTADM_END);
}

static int check_target_args(const struct keel_lab_tgtd *t, const char *name,
                             const uint64_t *sizes, size_t nluns, const char *user,
                             const char *secret, struct keel_error *err)
{
    if (t->pid == 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "tgtd %s: not running", t->dir);
    if (!valid_chars(name, ".-", false))
        return keel_error_set(err, KEEL_E_INVAL, 0, "tgtd target '%s': name must be lower-case "
                              "letters, digits, '.' and '-'", name != NULL ? name : "");
    if (nluns == 0 || nluns > TGTD_MAX_LUNS)
        return keel_error_set(err, KEEL_E_INVAL, 0, "tgtd target %s: %zu LUNs (1-%d please)",
                              name, nluns, TGTD_MAX_LUNS);
    for (size_t k = 0; k < nluns; k++)
        if (sizes[k] == 0 || sizes[k] % 512 != 0)
            return keel_error_set(err, KEEL_E_INVAL, 0, "tgtd target %s: LUN %zu size %llu is "
                                  "not a positive multiple of 512", name, k + 1,
                                  (unsigned long long)sizes[k]);
    if ((user == NULL) != (secret == NULL))
        return keel_error_set(err, KEEL_E_INVAL, 0, "tgtd target %s: CHAP needs both user and "
                              "secret", name);
    if (user != NULL && (!valid_chars(user, "._-", true) || !valid_chars(secret, "._-", true)))
        return keel_error_set(err, KEEL_E_INVAL, 0, "tgtd target %s: CHAP user and secret must "
                              "be letters, digits, '.', '_' and '-'", name);
    for (size_t i = 0; i < t->ntargets; i++) {
        const struct lab_target *o = &t->targets[i];

        if (strcmp(o->iqn + strlen(TGTD_IQN_PREFIX), name) == 0)
            return keel_error_set(err, KEEL_E_EXIST, 0, "tgtd %s: target %s exists", t->dir,
                                  name);
        if (user != NULL && o->user != NULL && strcmp(o->user, user) == 0 &&
            strcmp(o->secret, secret) != 0)
            return keel_error_set(err, KEEL_E_INVAL, 0, "tgtd %s: CHAP user %s has another "
                                  "secret already (accounts are per tgtd)", t->dir, user);
    }
    return 0;
}

int keel_lab_tgtd_add_target(struct keel_lab_tgtd *t, const char *name, const uint64_t *sizes,
                             size_t nluns, const char *chap_user, const char *chap_secret,
                             struct keel_error *err)
{
    struct lab_target *targets;
    struct lab_target *tg;
    size_t i = t->ntargets;

    if (check_target_args(t, name, sizes, nluns, chap_user, chap_secret, err) == -1)
        return -1;
    targets = realloc(t->targets, (i + 1) * sizeof(*targets));
    if (targets == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "tgtd: out of memory");
    t->targets = targets;
    tg = &targets[i];
    memset(tg, 0, sizeof(*tg));
    tg->tid = (int)i + 1;
    tg->thin = t->thin;
    tg->iqn = keel_strdup_printf("%s%s", TGTD_IQN_PREFIX, name);
    tg->luns = calloc(nluns, sizeof(*tg->luns));
    if (chap_user != NULL) {
        tg->user = strdup(chap_user);
        tg->secret = strdup(chap_secret);
    }
    if (tg->iqn == NULL || tg->luns == NULL || (chap_user != NULL && tg->secret == NULL) ||
        (chap_user != NULL && tg->user == NULL)) {
        free_target(tg);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "tgtd: out of memory");
    }
    tg->nluns = nluns;
    for (size_t k = 0; k < nluns; k++) {
        struct lab_lun *l = &tg->luns[k];

        l->size = sizes[k];
        l->path = keel_strdup_printf("%s/%s-lun%zu.img", t->dir, name, k + 1);
        if (chap_user != NULL)
            l->url = keel_strdup_printf("iscsi://%s%%%s@127.0.0.1:%u/%s/%zu", chap_user,
                                        chap_secret, t->port, tg->iqn, k + 1);
        else
            l->url = keel_strdup_printf("iscsi://127.0.0.1:%u/%s/%zu", t->port, tg->iqn, k + 1);
        if (l->path == NULL || l->url == NULL) {
            keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "tgtd: out of memory");
            goto fail;
        }
        if (keel_lab_sparse_file(l->path, l->size, err) == -1)
            goto fail;
    }
    t->ntargets++;
    if (configure(t, i, err) == 0)
        return (int)i;
    t->ntargets--;
    {
        char tid[16];

        snprintf(tid, sizeof(tid), "%d", tg->tid);
        tgtadm(t, NULL, NULL, "--lld", "iscsi", "--op", "delete", "--mode", "target", "--tid",
               tid, "--force", TGTADM_END);
    }
fail:
    for (size_t k = 0; k < nluns; k++)
        if (tg->luns[k].path != NULL)
            unlink(tg->luns[k].path);
    free_target(tg);
    return -1;
}

int keel_lab_tgtd_restart(struct keel_lab_tgtd *t, struct keel_error *err)
{
    uint64_t deadline;
    bool retry = true;

    if (keel_lab_tgtd_kill(t, err) == -1)
        return -1;
    deadline = keel_lab_now_ms() + KEEL_LAB_RESTART_TIMEOUT_MS;
    for (;;) {
        /* The old tgtd is gone, and its lock with it; anyone else is a stranger. */
        if (!ctl_free(t->ctl)) {
            if (keel_lab_now_ms() >= deadline)
                return keel_error_set(err, KEEL_E_BUSY, 0, "tgtd %s: control port %u taken",
                                      t->dir, t->ctl);
            keel_lab_sleep_ms(KEEL_LAB_POLL_MS);
            continue;
        }
        if (launch(t, &retry, err) == 0)
            break;
        if (!retry || keel_lab_now_ms() >= deadline)
            return keel_error_prefix(err, "restart");
        keel_lab_sleep_ms(KEEL_LAB_POLL_MS * 4);
    }
    for (size_t i = 0; i < t->ntargets; i++) {
        if (configure(t, i, err) == -1) {
            kill_child(t);
            return keel_error_prefix(err, "restart");
        }
    }
    return 0;
}

/* ---- accessors ---- */

static const struct lab_lun *find_lun(struct keel_lab_tgtd *t, int target, int lun)
{
    if (t == NULL || target < 0 || (size_t)target >= t->ntargets || lun < 1 ||
        (size_t)lun > t->targets[target].nluns)
        return NULL;
    return &t->targets[target].luns[lun - 1];
}

const char *keel_lab_tgtd_lun_url(struct keel_lab_tgtd *t, int target, int lun)
{
    const struct lab_lun *l = find_lun(t, target, lun);

    return l != NULL ? l->url : NULL;
}

const char *keel_lab_tgtd_lun_path(struct keel_lab_tgtd *t, int target, int lun)
{
    const struct lab_lun *l = find_lun(t, target, lun);

    return l != NULL ? l->path : NULL;
}

const char *keel_lab_tgtd_iqn(struct keel_lab_tgtd *t, int target)
{
    if (t == NULL || target < 0 || (size_t)target >= t->ntargets)
        return NULL;
    return t->targets[target].iqn;
}

const char *keel_lab_tgtd_portal_url(struct keel_lab_tgtd *t)
{
    return t->portal_url;
}

unsigned keel_lab_tgtd_port(const struct keel_lab_tgtd *t)
{
    return t->port;
}

const char *keel_lab_tgtd_dir(const struct keel_lab_tgtd *t)
{
    return t->dir;
}

pid_t keel_lab_tgtd_pid(const struct keel_lab_tgtd *t)
{
    return t->pid;
}

void keel_lab_tgtd_set_thin(struct keel_lab_tgtd *t, bool thin)
{
    t->thin = thin;
}
