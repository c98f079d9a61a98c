/*
 * The test lab, common parts: requirements, files, /proc, ports, sparse files,
 * temporary dirs and the registry that stops everything at exit.
 *
 * The registry is the one piece of global state in the harness (STYLE.md
 * rule 6 allows none outside main()): an atexit handler has no other way to
 * find what the process started, and "nothing outlives the test" is the
 * point of the harness.  Each entry remembers the pid that registered it, so
 * a child forked by check (or by a test) that inherits the registry does not
 * stop its parent's servers when it exits.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "tests/harness/lab-priv.h"

/* ---- requirements ---- */

bool keel_lab_ci(void)
{
    const char *ci = getenv("CI");

    return ci != NULL && strcasecmp(ci, "true") == 0;
}

char *keel_lab_find_program(const char *program)
{
    static const char *const extra[] = { "/usr/sbin", "/sbin" };
    const char *path = getenv("PATH");
    _cleanup_free_ char *dirs = NULL;
    char *p;

    if (program == NULL || program[0] == '\0')
        return NULL;
    if (strchr(program, '/') != NULL)
        return access(program, X_OK) == 0 ? strdup(program) : NULL;
    dirs = keel_strdup_printf("%s:%s:%s", path != NULL ? path : "/usr/bin:/bin", extra[0],
                              extra[1]);
    if (dirs == NULL)
        return NULL;
    p = dirs;
    while (p != NULL) {
        char *colon = strchr(p, ':');
        _cleanup_free_ char *cand = NULL;
        struct stat st;

        if (colon != NULL)
            *colon = '\0';
        cand = keel_strdup_printf("%s/%s", p[0] != '\0' ? p : ".", program);
        if (cand != NULL && stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
            access(cand, X_OK) == 0)
            return TAKE_PTR(cand);
        p = colon != NULL ? colon + 1 : NULL;
    }
    return NULL;
}

void keel_lab_require(const char *program)
{
    _cleanup_free_ char *found = keel_lab_find_program(program);

    if (found != NULL)
        return;
    if (keel_lab_ci()) {
        fprintf(stderr, "keel-lab: required program '%s' not found on PATH, /usr/sbin or "
                "/sbin; CI=true, so this is a failure\n", program);
        fflush(stderr);
        exit(1);
    }
    fprintf(stderr, "keel-lab: required program '%s' not found on PATH, /usr/sbin or /sbin; "
            "skipping\n", program);
    fflush(stderr);
    exit(KEEL_LAB_SKIP);
}

/* ---- time ---- */

uint64_t keel_lab_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void keel_lab_sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ---- files ---- */

const char *keel_lab_root(void)
{
    const char *root = getenv("KEEL_LAB_DIR");

    return root != NULL && root[0] == '/' ? root : KEEL_LAB_ROOT_DEFAULT;
}

int keel_lab_root_ensure(struct keel_error *err)
{
    const char *root = keel_lab_root();
    char path[4096];

    if (keel_strlcpy(path, root, sizeof(path)) >= sizeof(path))
        return keel_error_set(err, KEEL_E_INVAL, 0, "lab root %s: path too long", root);
    for (char *p = path + 1;; p++) {
        bool end = *p == '\0';

        if (*p != '/' && !end)
            continue;
        *p = '\0';
        if (mkdir(path, 0755) == -1 && errno != EEXIST)
            return keel_error_errno(err, keel_errc_from_errno(errno), errno, "mkdir %s", path);
        if (end)
            break;
        *p = '/';
    }
    return 0;
}

static int rm_rf_at(int dirfd, const char *name)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    int fd;
    int rc = 0;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0) == -1 && errno != ENOENT ? -1 : 0;
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1)
        return -1;
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (rm_rf_at(fd, e->d_name) == -1)
            rc = -1;
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) == -1 && errno != ENOENT)
        rc = -1;
    return rc;
}

int keel_lab_rm_rf(const char *path)
{
    return rm_rf_at(AT_FDCWD, path);
}

int keel_lab_write_file(const char *path, const char *content, struct keel_error *err)
{
    size_t len = strlen(content);
    size_t done = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd == -1)
        return keel_error_errno(err, keel_errc_from_errno(errno), errno, "create %s", path);
    while (done < len) {
        ssize_t n = write(fd, content + done, len - done);

        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n == -1 ? errno : EIO;

            close(fd);
            return keel_error_errno(err, keel_errc_from_errno(e), e, "write %s", path);
        }
        done += (size_t)n;
    }
    if (close(fd) == -1)
        return keel_error_errno(err, keel_errc_from_errno(errno), errno, "close %s", path);
    return 0;
}

char *keel_lab_read_file(const char *path)
{
    enum { MAX = 64 * 1024 };
    _cleanup_fd_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;

    if (fd == -1)
        return NULL;
    buf = malloc(MAX + 1);
    if (buf == NULL)
        return NULL;
    while (len < MAX) {
        ssize_t n = read(fd, buf + len, MAX - len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return NULL;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return TAKE_PTR(buf);
}

int keel_lab_sparse_file(const char *path, uint64_t size, struct keel_error *err)
{
    int fd;

    if (size > (uint64_t)INT64_MAX)
        return keel_error_set(err, KEEL_E_INVAL, 0, "sparse file %s: size %llu too large", path,
                              (unsigned long long)size);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1)
        return keel_error_errno(err, keel_errc_from_errno(errno), errno, "sparse file %s: create",
                                path);
    if (ftruncate(fd, (off_t)size) == -1) {
        int e = errno;

        close(fd);
        unlink(path);
        return keel_error_errno(err, keel_errc_from_errno(e), e, "sparse file %s: truncate to %llu",
                                path, (unsigned long long)size);
    }
    close(fd);
    return 0;
}

/* ---- /proc ---- */

/* /proc/PID/stat: "pid (comm) S ppid ..." -- comm may hold spaces and ')'. */
static int proc_stat_fields(pid_t pid, char *state, uint64_t *start)
{
    char path[64];
    _cleanup_free_ char *buf = NULL;
    char *p;
    int field = 3;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    buf = keel_lab_read_file(path);
    if (buf == NULL)
        return -1;
    p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ')
        return -1;
    p += 2;
    if (state != NULL)
        *state = *p;
    /* p is at field 3 (state); field 22 is starttime. */
    while (field < 22) {
        p = strchr(p, ' ');
        if (p == NULL)
            return -1;
        p++;
        field++;
    }
    if (start != NULL) {
        char num[32];
        size_t n = strcspn(p, " \n");

        if (n == 0 || n >= sizeof(num))
            return -1;
        memcpy(num, p, n);
        num[n] = '\0';
        if (keel_parse_u64(num, start) == -1)
            return -1;
    }
    return 0;
}

int keel_lab_proc_starttime(pid_t pid, uint64_t *ret)
{
    return proc_stat_fields(pid, NULL, ret);
}

/* Entries of /proc/PID/task: the threads not yet reaped. */
static int proc_threads(pid_t pid)
{
    char path[64];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    d = opendir(path);
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

bool keel_lab_proc_alive(pid_t pid, uint64_t start)
{
    char state = '?';
    uint64_t st = 0;

    if (pid <= 0 || proc_stat_fields(pid, &state, &st) == -1)
        return false;
    if (start != 0 && st != start)
        return false;
    /* A zombie main thread whose other threads still exit still holds its
     * files and locks (tgtd's control-port lock): not gone yet. */
    if (state == 'Z' || state == 'X' || state == 'x')
        return proc_threads(pid) > 1;
    return true;
}

bool keel_lab_proc_comm_is(pid_t pid, const char *comm)
{
    char path[64];
    _cleanup_free_ char *buf = NULL;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    buf = keel_lab_read_file(path);
    if (buf == NULL)
        return false;
    n = strcspn(buf, "\n");
    buf[n] = '\0';
    return strcmp(buf, comm) == 0;
}

bool keel_lab_proc_running(const char *comm)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool found = false;

    if (d == NULL)
        return false;
    while (!found && (e = readdir(d)) != NULL) {
        uint64_t pid;

        if (keel_parse_u64(e->d_name, &pid) == -1 || pid > INT32_MAX)
            continue;
        found = keel_lab_proc_comm_is((pid_t)pid, comm) && keel_lab_proc_alive((pid_t)pid, 0);
    }
    closedir(d);
    return found;
}

int keel_lab_proc_kill_wait(pid_t pid, uint64_t start, int sig, unsigned timeout_ms)
{
    uint64_t deadline = keel_lab_now_ms() + timeout_ms;

    if (pid <= 0)
        return 0;
    if (sig != 0 && keel_lab_proc_alive(pid, start))
        kill(pid, sig);
    for (;;) {
        /* Look before reaping: once reaped, the pid may belong to someone else. */
        bool alive = keel_lab_proc_alive(pid, start);
        pid_t r = waitpid(pid, NULL, WNOHANG);

        if (r == pid)
            return 0;
        /* Dead and not our child (ECHILD): nothing to reap.  Dead and our child
         * (r == 0): it is still exiting; reap it on a later turn. */
        if (!alive && r == -1)
            return 0;
        if (keel_lab_now_ms() >= deadline)
            return alive ? -1 : 0;
        keel_lab_sleep_ms(10);
    }
}

/* ---- ports ---- */

static int bind_port(unsigned port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd == -1)
        return -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* No SO_REUSEADDR: a port with connections in TIME_WAIT counts as busy. */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        close(fd);
        return -1;
    }
    return fd;
}

int keel_lab_free_ports(unsigned *ports, size_t n, struct keel_error *err)
{
    const unsigned span = KEEL_LAB_PORT_MAX - KEEL_LAB_PORT_MIN + 1;
    int fds[8];
    size_t got = 0;
    unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)keel_lab_now_ms();
    unsigned first = seed % span;

    if (n == 0 || n > KEEL_ARRAY_SIZE(fds))
        return keel_error_set(err, KEEL_E_INVAL, 0, "free ports: bad count %zu", n);
    for (unsigned i = 0; i < span && got < n; i++) {
        unsigned port = KEEL_LAB_PORT_MIN + (first + i * 7919u) % span;
        int fd = bind_port(port);

        if (fd == -1)
            continue;
        fds[got] = fd;
        ports[got] = port;
        got++;
    }
    for (size_t i = 0; i < got; i++)
        close(fds[i]);
    if (got < n)
        return keel_error_set(err, KEEL_E_BUSY, 0, "no free port in %u-%u on 127.0.0.1",
                              KEEL_LAB_PORT_MIN, KEEL_LAB_PORT_MAX);
    return 0;
}

int keel_lab_free_port(unsigned *ret, struct keel_error *err)
{
    return keel_lab_free_ports(ret, 1, err);
}

bool keel_lab_tcp_connects(unsigned port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    _cleanup_fd_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd == -1)
        return false;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Loopback: connect() answers at once (accepted or refused). */
    return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
}

/* ---- registry ---- */

struct reg_entry {
    struct reg_entry *next;
    void *obj;
    void (*stop)(void *obj);
    pid_t owner;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reg_entry *reg_head;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void reg_atexit(void)
{
    struct reg_entry *list;
    pid_t self = getpid();

    pthread_mutex_lock(&reg_lock);
    list = reg_head;
    reg_head = NULL;
    pthread_mutex_unlock(&reg_lock);
    /* Newest first: servers go before the tmpdirs and loop devices under them. */
    while (list != NULL) {
        struct reg_entry *e = list;

        list = e->next;
        if (e->owner == self)
            e->stop(e->obj);
        free(e);
    }
}

static void reg_init(void)
{
    atexit(reg_atexit);
}

void keel_lab_register(void *obj, void (*stop)(void *obj))
{
    struct reg_entry *e = calloc(1, sizeof(*e));

    if (e == NULL) {
        fprintf(stderr, "keel-lab: out of memory registering a lab object\n");
        abort();
    }
    pthread_once(&reg_once, reg_init);
    e->obj = obj;
    e->stop = stop;
    e->owner = getpid();
    pthread_mutex_lock(&reg_lock);
    e->next = reg_head;
    reg_head = e;
    pthread_mutex_unlock(&reg_lock);
}

void keel_lab_unregister(void *obj)
{
    struct reg_entry **pp;

    pthread_mutex_lock(&reg_lock);
    for (pp = &reg_head; *pp != NULL; pp = &(*pp)->next) {
        struct reg_entry *e = *pp;

        if (e->obj == obj) {
            *pp = e->next;
            free(e);
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

void *keel_lab_registry_take(void (*stop)(void *obj), bool (*match)(void *obj, const void *arg),
                             const void *arg)
{
    struct reg_entry **pp;
    void *obj = NULL;

    pthread_mutex_lock(&reg_lock);
    for (pp = &reg_head; *pp != NULL; pp = &(*pp)->next) {
        struct reg_entry *e = *pp;

        if (e->stop == stop && match(e->obj, arg)) {
            *pp = e->next;
            obj = e->obj;
            free(e);
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return obj;
}

/* ---- temporary dirs ---- */

static void tmpdir_stop(void *obj)
{
    keel_lab_rm_rf(obj);
    free(obj);
}

static bool str_match(void *obj, const void *arg)
{
    return strcmp(obj, arg) == 0;
}

char *keel_lab_tmpdir(const char *prefix, struct keel_error *err)
{
    _cleanup_free_ char *name = NULL;
    char *dir;
    char *copy;

    for (const char *p = prefix; p != NULL && *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return keel_error_set(err, KEEL_E_INVAL, 0, "tmpdir prefix '%s': only letters, "
                                  "digits, '-', '_' and '.' please", prefix), NULL;
    name = keel_strdup_printf("tmp-%s", prefix != NULL && prefix[0] != '\0' ? prefix : "dir");
    if (name == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "tmpdir: out of memory"), NULL;
    dir = keel_lab_dir_create(name, err);
    if (dir == NULL)
        return NULL;
    copy = strdup(dir);
    if (copy == NULL) {
        keel_lab_rm_rf(dir);
        free(dir);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "tmpdir: out of memory"), NULL;
    }
    keel_lab_register(copy, tmpdir_stop);
    return dir;
}

void keel_lab_tmpdir_remove(char *dir)
{
    char *reg;

    if (dir == NULL)
        return;
    reg = keel_lab_registry_take(tmpdir_stop, str_match, dir);
    free(reg);
    keel_lab_rm_rf(dir);
}
