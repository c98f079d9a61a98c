/*
 * The test lab: lab dirs and the sweeper.
 *
 * Every server or temporary dir lives in <root>/<prefix>-XXXXXX with:
 *   owner       "PID STARTTIME" of the test process that made it;
 *   server.pid  "PID STARTTIME COMM" of the server running there, if any;
 *   tgtd-control-port  the tgtd control port, if a tgtd runs there.
 * STARTTIME is field 22 of /proc/PID/stat, so a pid reused by another process
 * is not taken for the one we knew.
 *
 * The sweeper removes the dirs whose owner is gone (a test killed by SIGKILL
 * or by check's timeout never ran its atexit handler): it kills the server
 * named in server.pid when that pid still is the same process with the
 * expected command name, one of the servers the harness starts, and never
 * anything else.  A dir without an owner file is left alone: it is not ours
 * or it is being made (dirs are made under the sweep lock, so the latter
 * only happens when a process died in between).
 *
 * One sweeper at a time: flock() on <root>/.sweep.lock, waited for at most
 * KEEL_LAB_LOCK_TIMEOUT_MS.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "tests/harness/lab-priv.h"

/* The only command names the sweeper ever kills. */
static const char *const sweep_servers[] = { "tgtd", "ganesha.nfsd" };

int keel_lab_lock(struct keel_error *err)
{
    _cleanup_free_ char *path = NULL;
    uint64_t deadline = keel_lab_now_ms() + KEEL_LAB_LOCK_TIMEOUT_MS;
    int fd;

    if (keel_lab_root_ensure(err) == -1)
        return -1;
    path = keel_strdup_printf("%s/.sweep.lock", keel_lab_root());
    if (path == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "lab lock: out of memory");
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1)
        return keel_error_errno(err, keel_errc_from_errno(errno), errno, "open %s", path);
    while (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        if ((errno != EWOULDBLOCK && errno != EINTR) || keel_lab_now_ms() >= deadline) {
            int e = errno;

            close(fd);
            return keel_error_errno(err, e == EWOULDBLOCK ? KEEL_E_BUSY : keel_errc_from_errno(e),
                                    e, "lock %s (waited %u ms)", path, KEEL_LAB_LOCK_TIMEOUT_MS);
        }
        keel_lab_sleep_ms(10);
    }
    return fd;
}

void keel_lab_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* "N M [word]" from dir/file; false when missing or malformed. */
static bool read_pid_line(const char *dir, const char *file, pid_t *pid, uint64_t *start,
                          char *word, size_t word_size)
{
    _cleanup_free_ char *path = keel_strdup_printf("%s/%s", dir, file);
    _cleanup_free_ char *buf = NULL;
    char *fields[3] = { NULL, NULL, NULL };
    char *save = NULL;
    char *p;
    uint64_t v;
    int n = 0;

    if (path == NULL || (buf = keel_lab_read_file(path)) == NULL)
        return false;
    for (p = strtok_r(buf, " \n", &save); p != NULL && n < 3; p = strtok_r(NULL, " \n", &save))
        fields[n++] = p;
    if (n < 2 || keel_parse_u64(fields[0], &v) == -1 || v == 0 || v > INT32_MAX)
        return false;
    *pid = (pid_t)v;
    if (keel_parse_u64(fields[1], start) == -1)
        return false;
    if (word != NULL) {
        if (fields[2] == NULL)
            return false;
        keel_strlcpy(word, fields[2], word_size);
    }
    return true;
}

static bool known_server(const char *comm)
{
    for (size_t i = 0; i < KEEL_ARRAY_SIZE(sweep_servers); i++)
        if (strcmp(comm, sweep_servers[i]) == 0)
            return true;
    return false;
}

/* Kill the server of a dead owner's dir; false when it still runs. */
static bool sweep_server(const char *dir)
{
    _cleanup_free_ char *ctl_path = NULL;
    _cleanup_free_ char *ctl = NULL;
    char comm[64];
    uint64_t start = 0;
    uint64_t port;
    pid_t pid = 0;

    if (read_pid_line(dir, KEEL_LAB_SERVER_FILE, &pid, &start, comm, sizeof(comm)) &&
        known_server(comm) && keel_lab_proc_alive(pid, start) &&
        keel_lab_proc_comm_is(pid, comm) &&
        keel_lab_proc_kill_wait(pid, start, SIGKILL, KEEL_LAB_STOP_TIMEOUT_MS) == -1)
        return false;
    ctl_path = keel_strdup_printf("%s/%s", dir, KEEL_LAB_TGTD_CTL_FILE);
    if (ctl_path != NULL && (ctl = keel_lab_read_file(ctl_path)) != NULL) {
        ctl[strcspn(ctl, "\n")] = '\0';
        if (keel_parse_u64(ctl, &port) == 0 && port <= INT32_MAX)
            keel_lab_tgtd_forget_control_port((unsigned)port);
    }
    return true;
}

static void sweep_locked(void)
{
    const char *root = keel_lab_root();
    DIR *d = opendir(root);
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        _cleanup_free_ char *dir = NULL;
        struct stat st;
        uint64_t start;
        pid_t owner;

        if (e->d_name[0] == '.')
            continue;
        dir = keel_strdup_printf("%s/%s", root, e->d_name);
        if (dir == NULL || lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode))
            continue;
        if (!read_pid_line(dir, KEEL_LAB_OWNER_FILE, &owner, &start, NULL, 0))
            continue;
        if (keel_lab_proc_alive(owner, start))
            continue;
        if (sweep_server(dir))
            keel_lab_rm_rf(dir);
    }
    closedir(d);
}

void keel_lab_sweep(void)
{
    int fd = keel_lab_lock(NULL);

    if (fd == -1)
        return;
    sweep_locked();
    keel_lab_unlock(fd);
}

char *keel_lab_dir_create(const char *prefix, struct keel_error *err)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_free_ char *owner = NULL;
    _cleanup_free_ char *owner_path = NULL;
    uint64_t start = 0;
    int fd;

    if (keel_lab_proc_starttime(getpid(), &start) == -1)
        return keel_error_errno(err, KEEL_E_INTERNAL, errno, "read /proc/self/stat"), NULL;
    fd = keel_lab_lock(err);
    if (fd == -1)
        return NULL;
    sweep_locked();
    dir = keel_strdup_printf("%s/%s-XXXXXX", keel_lab_root(), prefix);
    owner = keel_strdup_printf("%d %llu\n", (int)getpid(), (unsigned long long)start);
    if (dir == NULL || owner == NULL) {
        keel_lab_unlock(fd);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "lab dir: out of memory"), NULL;
    }
    if (mkdtemp(dir) == NULL) {
        int e = errno;

        keel_lab_unlock(fd);
        return keel_error_errno(err, keel_errc_from_errno(e), e, "mkdtemp %s", dir), NULL;
    }
    /* Servers and judges may run as other users (qemu as libvirt-qemu). */
    chmod(dir, 0755);
    owner_path = keel_strdup_printf("%s/%s", dir, KEEL_LAB_OWNER_FILE);
    if (owner_path == NULL || keel_lab_write_file(owner_path, owner, err) == -1) {
        if (owner_path == NULL)
            keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "lab dir: out of memory");
        keel_lab_rm_rf(dir);
        keel_lab_unlock(fd);
        return NULL;
    }
    keel_lab_unlock(fd);
    return TAKE_PTR(dir);
}

int keel_lab_dir_set_server(const char *dir, pid_t pid, uint64_t start, const char *comm,
                            struct keel_error *err)
{
    _cleanup_free_ char *path = keel_strdup_printf("%s/%s", dir, KEEL_LAB_SERVER_FILE);
    _cleanup_free_ char *line = NULL;

    if (path == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", dir);
    if (pid <= 0) {
        unlink(path);
        return 0;
    }
    line = keel_strdup_printf("%d %llu %s\n", (int)pid, (unsigned long long)start, comm);
    if (line == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", dir);
    return keel_lab_write_file(path, line, err);
}
