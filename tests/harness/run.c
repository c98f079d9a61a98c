/*
 * The test lab: running commands and spawning servers.
 *
 * Both fork and exec a program found on PATH, /usr/sbin or /sbin.  Between
 * fork and exec the child only makes async-signal-safe calls (the test may
 * have threads): the path and environment are prepared before the fork.
 *
 * The child asks for PR_SET_PDEATHSIG(SIGKILL), then checks that its parent
 * is still the process that forked it (the parent may have died before the
 * prctl).  The signal fires when the *thread* that forked dies, not the
 * process: start servers from the thread that outlives them (lab.h says so).
 * Exec failures travel back to the parent on a close-on-exec pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "tests/harness/lab-priv.h"

extern char **environ;

/* Captured output beyond this is dropped (a runaway command must not eat memory). */
#define RUN_OUTPUT_MAX (64u << 20)

/*
 * Only the harness's own test turns this off (keel_lab_set_pdeathsig()); a
 * plain flag, read before each fork.
 */
static volatile bool lab_pdeathsig = true;

void keel_lab_set_pdeathsig(bool on)
{
    lab_pdeathsig = on;
}

/* argv[0] from the path; environ plus env_extra ("K=V" replaces K). */
static char **build_env(const char *const env_extra[])
{
    size_t n = 0, extra = 0, k = 0;
    char **envp;

    while (environ != NULL && environ[n] != NULL)
        n++;
    while (env_extra != NULL && env_extra[extra] != NULL)
        extra++;
    envp = calloc(n + extra + 1, sizeof(*envp));
    if (envp == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;

        for (size_t j = 0; j < extra && !replaced; j++) {
            size_t klen = strcspn(env_extra[j], "=");

            replaced = strncmp(environ[i], env_extra[j], klen) == 0 && environ[i][klen] == '=';
        }
        if (!replaced)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < extra; j++)
        envp[k++] = (char *)env_extra[j];
    envp[k] = NULL;
    return envp;
}

/* Move fd to a number >= 3 so that dup2() onto 0-2 cannot clobber it. */
static int fd_high(int fd)
{
    return fd >= 0 && fd < 3 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : fd;
}

/*
 * In the child, between fork and exec: async-signal-safe calls only.
 * Never returns.
 */
static void __attribute__((noreturn)) child_exec(const char *path, char *const argv[],
                                                 char *const envp[], int out_fd, int err_fd,
                                                 int exec_fd, pid_t parent, bool pdeathsig)
{
    sigset_t none;
    int null_fd;
    int e;

    if (pdeathsig) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
            goto fail;
        if (getppid() != parent)
            _exit(127);
    }
    exec_fd = fd_high(exec_fd);
    out_fd = fd_high(out_fd);
    err_fd = fd_high(err_fd);
    null_fd = fd_high(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (exec_fd == -1 || out_fd == -1 || err_fd == -1 || null_fd == -1)
        goto fail;
    if (dup2(null_fd, 0) == -1 || dup2(out_fd, 1) == -1 || dup2(err_fd, 2) == -1)
        goto fail;
    /* Everything else goes, except the exec-error pipe (close-on-exec). */
    if (close_range(3, (unsigned)exec_fd - 1, 0) == -1 ||
        close_range((unsigned)exec_fd + 1, ~0u, 0) == -1) {
        for (int fd = 3; fd < 4096; fd++)
            if (fd != exec_fd)
                close(fd);
    }
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa = { .sa_handler = SIG_DFL };

        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(path, argv, envp);
fail:
    e = errno;
    if (write(exec_fd, &e, sizeof(e)) < 0) {
        /* Nothing more to do: the parent sees status 127. */
    }
    _exit(127);
}

/* After the fork: 0 when the child exec'ed, else the child's errno. */
static int exec_result(int exec_fd)
{
    int e = 0;
    ssize_t n;

    do {
        n = read(exec_fd, &e, sizeof(e));
    } while (n == -1 && errno == EINTR);
    return n == (ssize_t)sizeof(e) ? e : 0;
}

static int decode_status(int ws)
{
    if (WIFEXITED(ws))
        return WEXITSTATUS(ws);
    if (WIFSIGNALED(ws))
        return 128 + WTERMSIG(ws);
    return 255;
}

struct outbuf {
    char *data;
    size_t len, cap;
};

static void outbuf_add(struct outbuf *b, const char *p, size_t n)
{
    if (b->len + n > RUN_OUTPUT_MAX)
        n = RUN_OUTPUT_MAX - b->len;
    if (n == 0)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = KEEL_MAX(b->cap * 2, b->len + n + 1);
        char *d = realloc(b->data, KEEL_MAX(cap, (size_t)256));

        if (d == NULL)
            return;
        b->data = d;
        b->cap = KEEL_MAX(cap, (size_t)256);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static char *outbuf_take(struct outbuf *b)
{
    char *d = b->data;

    if (d == NULL)
        d = strdup("");
    b->data = NULL;
    return d;
}

/*
 * Read both pipes until the child exits and the pipes are drained (a
 * grandchild that keeps a pipe open does not hold us up), or the deadline.
 */
static void collect(pid_t pid, int fds[2], struct outbuf bufs[2], uint64_t deadline, int *ws,
                    bool *timed_out)
{
    bool reaped = false;

    for (;;) {
        struct pollfd pfd[2];
        int map[2];
        nfds_t n = 0;
        int rc;

        if (!reaped && waitpid(pid, ws, WNOHANG) == pid)
            reaped = true;
        for (int i = 0; i < 2; i++) {
            if (fds[i] >= 0) {
                pfd[n].fd = fds[i];
                pfd[n].events = POLLIN;
                pfd[n].revents = 0;
                map[n++] = i;
            }
        }
        if (n == 0 && reaped)
            break;
        if (!reaped && keel_lab_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, ws, 0);
            reaped = true;
            *timed_out = true;
            continue;
        }
        rc = poll(pfd, n, reaped ? 0 : 20);
        if (rc == -1 && errno != EINTR) {
            if (!reaped) {
                kill(pid, SIGKILL);
                waitpid(pid, ws, 0);
            }
            break;
        }
        if (rc == 0 && reaped)
            break;
        for (nfds_t j = 0; j < n && rc > 0; j++) {
            char buf[16384];
            ssize_t got;
            int i = map[j];

            if (pfd[j].revents == 0)
                continue;
            got = read(fds[i], buf, sizeof(buf));
            if (got > 0) {
                outbuf_add(&bufs[i], buf, (size_t)got);
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(fds[i]);
                fds[i] = -1;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

static int run_impl(const char *const argv[], const char *const env_extra[], char **out,
                    char **errout, int *status, unsigned timeout_ms, bool *timed_out,
                    struct keel_error *err)
{
    _cleanup_free_ char *path = NULL;
    _cleanup_free_ char **envp = NULL;
    int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, exep[2] = { -1, -1 };
    struct outbuf bufs[2] = { { 0 }, { 0 } };
    pid_t parent = getpid();
    bool pdeathsig = lab_pdeathsig;
    int fds[2];
    int ws = 0;
    int e;
    pid_t pid;

    *timed_out = false;
    if (argv == NULL || argv[0] == NULL)
        return keel_error_set(err, KEEL_E_INVAL, 0, "run: empty command");
    path = keel_lab_find_program(argv[0]);
    if (path == NULL)
        return keel_error_set(err, KEEL_E_NOENT, ENOENT,
                              "%s: not found on PATH, /usr/sbin or /sbin", argv[0]);
    envp = build_env(env_extra);
    if (envp == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", argv[0]);
    if (pipe2(outp, O_CLOEXEC) == -1 || pipe2(errp, O_CLOEXEC) == -1 ||
        pipe2(exep, O_CLOEXEC) == -1) {
        e = errno;
        goto fail_pipes;
    }
    pid = fork();
    if (pid == -1) {
        e = errno;
        goto fail_pipes;
    }
    if (pid == 0)
        child_exec(path, (char *const *)argv, envp, outp[1], errp[1], exep[1], parent,
                   pdeathsig);
    close(outp[1]);
    close(errp[1]);
    close(exep[1]);
    e = exec_result(exep[0]);
    close(exep[0]);
    fds[0] = outp[0];
    fds[1] = errp[0];
    collect(pid, fds, bufs, keel_lab_now_ms() + timeout_ms, &ws, timed_out);
    if (e != 0) {
        free(bufs[0].data);
        free(bufs[1].data);
        return keel_error_errno(err, keel_errc_from_errno(e), e, "%s: cannot execute %s",
                                argv[0], path);
    }
    if (status != NULL)
        *status = decode_status(ws);
    if (out != NULL)
        *out = outbuf_take(&bufs[0]);
    if (errout != NULL)
        *errout = outbuf_take(&bufs[1]);
    free(bufs[0].data);
    free(bufs[1].data);
    return 0;

fail_pipes:
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
        if (exep[i] >= 0)
            close(exep[i]);
    }
    return keel_error_errno(err, keel_errc_from_errno(e), e, "%s: cannot start", argv[0]);
}

int keel_lab_run_timeout(const char *const argv[], const char *const env_extra[], char **out,
                         char **errout, int *status, unsigned timeout_ms,
                         struct keel_error *err)
{
    bool timed_out;

    return run_impl(argv, env_extra, out, errout, status, timeout_ms, &timed_out, err);
}

int keel_lab_run(const char *const argv[], const char *const env_extra[], char **out,
                 char **errout, int *status, struct keel_error *err)
{
    return keel_lab_run_timeout(argv, env_extra, out, errout, status, KEEL_LAB_RUN_TIMEOUT_MS,
                                err);
}

/* "a b c" for messages, cut to fit. */
static void join_argv(const char *const argv[], char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; argv[i] != NULL && len < size; i++) {
        int n = snprintf(buf + len, size - len, "%s%s", i > 0 ? " " : "", argv[i]);

        if (n < 0)
            break;
        len += (size_t)n;
    }
}

/* The last line(s) of a command's stderr, trimmed, for an error message. */
static const char *tail_text(char *s)
{
    size_t n;

    if (s == NULL)
        return "";
    n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
    return n > 300 ? s + n - 300 : s;
}

int keel_lab_run_ok(const char *const argv[], const char *const env_extra[], char **out,
                    struct keel_error *err)
{
    _cleanup_free_ char *o = NULL;
    _cleanup_free_ char *eo = NULL;
    char cmd[256];
    bool timed_out = false;
    int status = 0;

    if (run_impl(argv, env_extra, &o, &eo, &status, KEEL_LAB_RUN_TIMEOUT_MS, &timed_out,
                 err) == -1)
        return -1;
    if (timed_out || status != 0) {
        join_argv(argv, cmd, sizeof(cmd));
        if (timed_out)
            return keel_error_set(err, KEEL_E_TIMEOUT, 0, "%s: still running after %u s, killed",
                                  cmd, KEEL_LAB_RUN_TIMEOUT_MS / 1000);
        return keel_error_set(err, KEEL_E_IO, 0, "%s: exit status %d: %s", cmd, status,
                              eo != NULL && eo[0] != '\0' ? tail_text(eo) : tail_text(o));
    }
    if (out != NULL)
        *out = TAKE_PTR(o);
    return 0;
}

int keel_lab_spawn(const char *const argv[], const char *log, pid_t *ret_pid, uint64_t *ret_start,
                   struct keel_error *err)
{
    _cleanup_free_ char *path = NULL;
    _cleanup_free_ char **envp = NULL;
    _cleanup_fd_ int log_fd = -1;
    int exep[2] = { -1, -1 };
    pid_t parent = getpid();
    bool pdeathsig = lab_pdeathsig;
    uint64_t start = 0;
    pid_t pid;
    int e;

    path = keel_lab_find_program(argv[0]);
    if (path == NULL)
        return keel_error_set(err, KEEL_E_NOENT, ENOENT,
                              "%s: not found on PATH, /usr/sbin or /sbin", argv[0]);
    envp = build_env(NULL);
    if (envp == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", argv[0]);
    log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd == -1)
        return keel_error_errno(err, keel_errc_from_errno(errno), errno, "%s: open log %s",
                                argv[0], log);
    if (pipe2(exep, O_CLOEXEC) == -1)
        return keel_error_errno(err, keel_errc_from_errno(errno), errno, "%s: pipe", argv[0]);
    pid = fork();
    if (pid == -1) {
        e = errno;
        close(exep[0]);
        close(exep[1]);
        return keel_error_errno(err, keel_errc_from_errno(e), e, "%s: fork", argv[0]);
    }
    if (pid == 0)
        child_exec(path, (char *const *)argv, envp, log_fd, log_fd, exep[1], parent, pdeathsig);
    close(exep[1]);
    /* The start time does not change at exec: read it now, while the child surely exists. */
    keel_lab_proc_starttime(pid, &start);
    e = exec_result(exep[0]);
    close(exep[0]);
    if (e != 0) {
        waitpid(pid, NULL, 0);
        return keel_error_errno(err, keel_errc_from_errno(e), e, "%s: cannot execute %s",
                                argv[0], path);
    }
    *ret_pid = pid;
    *ret_start = start;
    return 0;
}
