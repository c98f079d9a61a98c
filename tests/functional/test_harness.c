/*
 * The test lab itself, against the real servers: tgtd judged by iscsi-ls and
 * iscsi-readcapacity16 (libiscsi-bin), ganesha judged by nfs-ls and nfs-cp
 * (libnfs-utils), loop devices judged by sysfs and lvm2, and the sweeper
 * judged by /proc.
 *
 * No assertion depends on timing: waits for a process to vanish or stop are
 * bounded polls that fail only when the event never comes.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "tests/harness/lab-priv.h"
#include "tests/harness/lab.h"

#define MiB (UINT64_C(1) << 20)
#define WAIT_MS 10000

/* ---- helpers ---- */

/* Run argv; returns its exit status; *out and *errout (optional) get its output. */
static int run(const char *const argv[], char **out, char **errout)
{
    struct keel_error err = KEEL_ERROR_INIT;
    int status = -1;

    ck_assert_msg(keel_lab_run(argv, NULL, out, errout, &status, &err) == 0, "%s", err.msg);
    return status;
}

static bool exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

/* Bounded poll: true once pid is gone (or a zombie). */
static bool wait_gone(pid_t pid)
{
    uint64_t deadline = keel_lab_now_ms() + WAIT_MS;

    while (keel_lab_proc_alive(pid, 0)) {
        if (keel_lab_now_ms() >= deadline)
            return false;
        keel_lab_sleep_ms(20);
    }
    return true;
}

/* Bounded poll: true once path does not exist. */
static bool wait_no_path(const char *path)
{
    uint64_t deadline = keel_lab_now_ms() + WAIT_MS;

    while (exists(path)) {
        if (keel_lab_now_ms() >= deadline)
            return false;
        keel_lab_sleep_ms(20);
    }
    return true;
}

/* The state letter of /proc/PID/stat. */
static char proc_state(pid_t pid)
{
    char path[64];
    _cleanup_free_ char *buf = NULL;
    char *p;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    buf = keel_lab_read_file(path);
    if (buf == NULL || (p = strrchr(buf, ')')) == NULL)
        return '?';
    return p[1] == ' ' ? p[2] : '?';
}

static bool wait_state(pid_t pid, bool stopped)
{
    uint64_t deadline = keel_lab_now_ms() + WAIT_MS;

    while ((proc_state(pid) == 'T') != stopped) {
        if (keel_lab_now_ms() >= deadline)
            return false;
        keel_lab_sleep_ms(20);
    }
    return true;
}

/* A line of text that starts with prefix and contains word. */
static bool has_line(const char *text, const char *prefix, const char *word)
{
    const char *p = text;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        _cleanup_free_ char *line = strndup(p, len);

        if (line != NULL && keel_str_has_prefix(line, prefix) && strstr(line, word) != NULL)
            return true;
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

static uint64_t file_size(const char *path)
{
    struct stat st;

    ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
    return (uint64_t)st.st_size;
}

/* The LUN's size as the initiator sees it. */
static uint64_t lun_size(const char *url)
{
    const char *argv[] = { "iscsi-readcapacity16", "-s", url, NULL };
    _cleanup_free_ char *out = NULL;
    _cleanup_free_ char *eo = NULL;
    uint64_t v = 0;

    ck_assert_msg(run(argv, &out, &eo) == 0, "%s: %s", url, eo);
    out[strcspn(out, "\n")] = '\0';
    ck_assert_msg(keel_parse_u64(out, &v) == 0, "size '%s'", out);
    return v;
}

/*
 * The size iscsi-ls -s prints for a LUN of size bytes: READ CAPACITY(10)'s
 * last LBA times the block size (one block short), divided by 1024 while
 * above 1024 (utils/iscsi-ls.c in libiscsi 1.19): 100 MiB shows as "99M".
 */
static char *iscsi_ls_size(uint64_t bytes)
{
    static const char units[] = { ' ', 'k', 'M', 'G', 'T' };
    uint64_t size = (bytes / 512 - 1) * 512;
    int unit = 0;

    while (unit < 4 && size > 1024) {
        size /= 1024;
        unit++;
    }
    return keel_strdup_printf("(Size:%llu%c)", (unsigned long long)size, units[unit]);
}

static char *read_sysfs(const char *dev, const char *attr)
{
    _cleanup_free_ char *path = keel_strdup_printf("/sys/block/%s/%s", dev + strlen("/dev/"),
                                                   attr);
    char *s = keel_lab_read_file(path);

    if (s != NULL)
        s[strcspn(s, "\n")] = '\0';
    return s;
}

/* ---- commands ---- */

START_TEST(run_captures_output_and_status)
{
    const char *both[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
    const char *big[] = { "sh", "-c",
                          "head -c 300000 /dev/zero | tr '\\000' a; "
                          "head -c 300000 /dev/zero | tr '\\000' b >&2", NULL };
    const char *env_cmd[] = { "sh", "-c", "printf %s \"$KEEL_LAB_X\"", NULL };
    const char *env[] = { "KEEL_LAB_X=hello there", NULL };
    const char *killed[] = { "sh", "-c", "kill -9 $$", NULL };
    const char *missing[] = { "keel-no-such-program", NULL };
    const char *fails[] = { "sh", "-c", "echo boom >&2; exit 4", NULL };
    const char *sbin[] = { "tgtadm", "--help", NULL };
    struct keel_error err = KEEL_ERROR_INIT;
    char *out = NULL, *eo = NULL;
    int status = -1;

    ck_assert_int_eq(run(both, &out, &eo), 3);
    ck_assert_str_eq(out, "out\n");
    ck_assert_str_eq(eo, "err\n");
    free(out);
    free(eo);

    /* Both pipes far beyond their buffers: no deadlock, nothing lost. */
    ck_assert_int_eq(run(big, &out, &eo), 0);
    ck_assert_uint_eq(strlen(out), 300000);
    ck_assert_uint_eq(strlen(eo), 300000);
    ck_assert_int_eq(out[299999], 'a');
    ck_assert_int_eq(eo[0], 'b');
    free(out);
    free(eo);

    ck_assert_int_eq(keel_lab_run(env_cmd, env, &out, NULL, &status, &err), 0);
    ck_assert_int_eq(status, 0);
    ck_assert_str_eq(out, "hello there");
    free(out);

    ck_assert_int_eq(run(killed, NULL, NULL), 128 + SIGKILL);

    ck_assert_int_eq(keel_lab_run(missing, NULL, NULL, NULL, &status, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOENT);
    ck_assert_str_eq(err.msg, "keel-no-such-program: not found on PATH, /usr/sbin or /sbin");

    ck_assert_int_eq(keel_lab_run_ok(fails, NULL, NULL, &err), -1);
    ck_assert_str_eq(err.msg, "sh -c echo boom >&2; exit 4: exit status 4: boom");

    /* /usr/sbin is searched even when PATH lacks it (check forked us: ours to change). */
    ck_assert_int_eq(setenv("PATH", "/usr/bin:/bin", 1), 0);
    ck_assert_int_eq(run(sbin, NULL, NULL), 0);
}
END_TEST

START_TEST(free_port_is_free)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    unsigned port = 0, port2 = 0;
    int fd;

    ck_assert_msg(keel_lab_free_port(&port, &err) == 0, "%s", err.msg);
    ck_assert_uint_ge(port, 20000);
    ck_assert_uint_le(port, 32767);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %u: %s", port,
                  strerror(errno));
    ck_assert_int_eq(listen(fd, 1), 0);
    /* While we hold it, it is not offered again. */
    for (int i = 0; i < 20; i++) {
        ck_assert_msg(keel_lab_free_port(&port2, &err) == 0, "%s", err.msg);
        ck_assert_uint_ne(port2, port);
    }
    close(fd);
}
END_TEST

START_TEST(tmpdir_and_sparse_file)
{
    struct keel_error err = KEEL_ERROR_INIT;
    _cleanup_free_ char *prefix = keel_strdup_printf("%s/tmp-unit-", keel_lab_root());
    _cleanup_free_ char *owner_path = NULL;
    _cleanup_free_ char *owner = NULL;
    _cleanup_free_ char *want = NULL;
    _cleanup_free_ char *file = NULL;
    uint64_t start = 0;
    struct stat st;
    char *dir = keel_lab_tmpdir("unit", &err);

    ck_assert_msg(dir != NULL, "%s", err.msg);
    ck_assert_msg(keel_str_has_prefix(dir, prefix), "%s", dir);
    owner_path = keel_strdup_printf("%s/owner", dir);
    owner = keel_lab_read_file(owner_path);
    ck_assert_ptr_nonnull(owner);
    ck_assert_int_eq(keel_lab_proc_starttime(getpid(), &start), 0);
    want = keel_strdup_printf("%d %llu\n", (int)getpid(), (unsigned long long)start);
    ck_assert_str_eq(owner, want);

    file = keel_strdup_printf("%s/big.img", dir);
    ck_assert_msg(keel_lab_sparse_file(file, 1024 * MiB + 512, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(stat(file, &st), 0);
    ck_assert_uint_eq((uint64_t)st.st_size, 1024 * MiB + 512);
    ck_assert_int_eq(st.st_blocks, 0);

    keel_lab_tmpdir_remove(dir);
    ck_assert(!exists(dir));
    free(dir);

    ck_assert_ptr_null(keel_lab_tmpdir("a/b", &err));
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
}
END_TEST

/* ---- tgtd ---- */

START_TEST(tgtd_two_luns)
{
    const uint64_t sizes[] = { 64 * MiB + 512, 100 * MiB };
    const uint64_t bad[] = { 64 * MiB + 100 };
    const uint64_t one[] = { 16 * MiB };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;
    _cleanup_free_ char *out = NULL;
    _cleanup_free_ char *eo = NULL;
    _cleanup_free_ char *header = NULL;
    _cleanup_free_ char *pidfile = NULL;
    _cleanup_free_ char *pidline = NULL;
    _cleanup_free_ char *url = NULL;
    _cleanup_free_ char *ls_size1 = iscsi_ls_size(sizes[0]);
    _cleanup_free_ char *ls_size2 = iscsi_ls_size(sizes[1]);
    const char *ls[] = { "iscsi-ls", "-s", NULL, NULL };
    char *dir;
    pid_t pid;

    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    pid = keel_lab_tgtd_pid(t);
    ck_assert(keel_lab_proc_comm_is(pid, "tgtd"));
    ck_assert_msg(keel_str_has_prefix(keel_lab_tgtd_dir(t), keel_lab_root()), "%s",
                  keel_lab_tgtd_dir(t));
    pidfile = keel_strdup_printf("%s/server.pid", keel_lab_tgtd_dir(t));
    pidline = keel_lab_read_file(pidfile);
    ck_assert_ptr_nonnull(pidline);
    ck_assert_int_eq(strtol(pidline, NULL, 10), pid);
    ck_assert_ptr_nonnull(strstr(pidline, " tgtd\n"));

    ck_assert_int_eq(keel_lab_tgtd_add_target(t, "pair", sizes, 2, NULL, NULL, &err), 0);
    ck_assert_str_eq(keel_lab_tgtd_iqn(t, 0), "iqn.2026-11.org.keel.test:pair");
    url = keel_strdup_printf("iscsi://127.0.0.1:%u/iqn.2026-11.org.keel.test:pair/2",
                             keel_lab_tgtd_port(t));
    ck_assert_str_eq(keel_lab_tgtd_lun_url(t, 0, 2), url);
    ck_assert_ptr_null(keel_lab_tgtd_lun_url(t, 0, 3));
    ck_assert_ptr_null(keel_lab_tgtd_lun_url(t, 0, 0));
    ck_assert_ptr_null(keel_lab_tgtd_lun_url(t, 1, 1));
    ck_assert_uint_eq(file_size(keel_lab_tgtd_lun_path(t, 0, 1)), sizes[0]);
    ck_assert_uint_eq(file_size(keel_lab_tgtd_lun_path(t, 0, 2)), sizes[1]);

    ls[2] = keel_lab_tgtd_portal_url(t);
    ck_assert_msg(run(ls, &out, &eo) == 0, "%s", eo);
    header = keel_strdup_printf("Target:%s Portal:127.0.0.1:%u,1", keel_lab_tgtd_iqn(t, 0),
                                keel_lab_tgtd_port(t));
    ck_assert_msg(strstr(out, header) != NULL, "%s", out);
    ck_assert_msg(has_line(out, "Lun:1 ", "DIRECT_ACCESS"), "%s", out);
    ck_assert_msg(has_line(out, "Lun:1 ", ls_size1), "%s: %s", ls_size1, out);
    ck_assert_msg(has_line(out, "Lun:2 ", "DIRECT_ACCESS"), "%s", out);
    ck_assert_msg(has_line(out, "Lun:2 ", ls_size2), "%s: %s", ls_size2, out);
    ck_assert_msg(!has_line(out, "Lun:3 ", ""), "%s", out);
    /* iscsi-ls rounds: the exact sizes from READ CAPACITY(16). */
    ck_assert_uint_eq(lun_size(keel_lab_tgtd_lun_url(t, 0, 1)), sizes[0]);
    ck_assert_uint_eq(lun_size(keel_lab_tgtd_lun_url(t, 0, 2)), sizes[1]);

    /* tgtd would serve 64 MiB + 0 of this one: refused. */
    ck_assert_int_eq(keel_lab_tgtd_add_target(t, "bad", bad, 1, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_str_eq(err.msg, "tgtd target bad: LUN 1 size 67108964 is not a positive "
                              "multiple of 512");
    ck_assert_int_eq(keel_lab_tgtd_add_target(t, "Bad_Name", one, 1, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_int_eq(keel_lab_tgtd_add_target(t, "pair", one, 1, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_EXIST);

    /* A second target gets index 1 and tid 2. */
    ck_assert_msg(keel_lab_tgtd_add_target(t, "second", one, 1, NULL, NULL, &err) == 1, "%s",
                  err.msg);
    free(out);
    free(eo);
    ck_assert_msg(run(ls, &out, &eo) == 0, "%s", eo);
    ck_assert_msg(strstr(out, "Target:iqn.2026-11.org.keel.test:second ") != NULL, "%s", out);
    ck_assert_uint_eq(lun_size(keel_lab_tgtd_lun_url(t, 1, 1)), one[0]);

    dir = strdup(keel_lab_tgtd_dir(t));
    keel_lab_tgtd_stop(t);
    ck_assert(!keel_lab_proc_alive(pid, 0));
    ck_assert(!exists(dir));
    free(dir);
}
END_TEST

START_TEST(tgtd_chap)
{
    const uint64_t sizes[] = { 16 * MiB };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;
    char *out = NULL, *eo = NULL;
    _cleanup_free_ char *good = NULL;
    _cleanup_free_ char *wrong = NULL;
    _cleanup_free_ char *want = NULL;
    const char *ls[] = { "iscsi-ls", "-s", NULL, NULL };

    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "secure", sizes, 1, "keeluser", "s3cretpass123",
                                           &err) == 0, "%s", err.msg);
    want = keel_strdup_printf("iscsi://keeluser%%s3cretpass123@127.0.0.1:%u/"
                              "iqn.2026-11.org.keel.test:secure/1", keel_lab_tgtd_port(t));
    ck_assert_str_eq(keel_lab_tgtd_lun_url(t, 0, 1), want);

    /* Right credentials: logged in, LUN listed and readable. */
    good = keel_strdup_printf("iscsi://keeluser%%s3cretpass123@127.0.0.1:%u",
                              keel_lab_tgtd_port(t));
    ls[2] = good;
    ck_assert_msg(run(ls, &out, &eo) == 0, "%s%s", out, eo);
    ck_assert_msg(has_line(out, "Lun:1 ", "DIRECT_ACCESS"), "%s", out);
    free(out);
    free(eo);
    ck_assert_uint_eq(lun_size(keel_lab_tgtd_lun_url(t, 0, 1)), sizes[0]);

    /* No credentials: discovery works, the login does not. */
    ls[2] = keel_lab_tgtd_portal_url(t);
    ck_assert_int_ne(run(ls, &out, &eo), 0);
    ck_assert_msg(strstr(out, "Authentication failure") != NULL ||
                  strstr(eo, "Authentication failure") != NULL, "%s%s", out, eo);
    ck_assert_msg(!has_line(out, "Lun:1 ", "DIRECT_ACCESS"), "%s", out);
    free(out);
    free(eo);

    /* Wrong secret: refused too. */
    wrong = keel_strdup_printf("iscsi://keeluser%%wrongsecret99@127.0.0.1:%u",
                               keel_lab_tgtd_port(t));
    ls[2] = wrong;
    ck_assert_int_ne(run(ls, &out, &eo), 0);
    ck_assert_msg(strstr(out, "Authentication failure") != NULL ||
                  strstr(eo, "Authentication failure") != NULL, "%s%s", out, eo);
    free(out);
    free(eo);

    /* Accounts are per tgtd: the same user may guard another target with the same secret only. */
    ck_assert_int_eq(keel_lab_tgtd_add_target(t, "other", sizes, 1, "keeluser", "different123",
                                              &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "other", sizes, 1, "keeluser", "s3cretpass123",
                                           &err) == 1, "%s", err.msg);
    ck_assert_uint_eq(lun_size(keel_lab_tgtd_lun_url(t, 1, 1)), sizes[0]);
    ck_assert_int_eq(keel_lab_tgtd_add_target(t, "half", sizes, 1, "keeluser", NULL, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    keel_lab_tgtd_stop(t);
}
END_TEST

START_TEST(tgtd_restart)
{
    const uint64_t sizes[] = { 16 * MiB };
    const char marker[] = "keel-harness-marker";
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *t = NULL;
    const char *ls[] = { "iscsi-ls", "-s", NULL, NULL };
    char *out = NULL, *eo = NULL;
    char buf[sizeof(marker)];
    struct stat st1, st2;
    unsigned port;
    pid_t pid1, pid2;
    int fd;

    ck_assert_msg(keel_lab_tgtd_start(&t, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_add_target(t, "phoenix", sizes, 1, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    ls[2] = keel_lab_tgtd_portal_url(t);
    port = keel_lab_tgtd_port(t);
    pid1 = keel_lab_tgtd_pid(t);
    fd = open(keel_lab_tgtd_lun_path(t, 0, 1), O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, marker, sizeof(marker), 4096), (ssize_t)sizeof(marker));
    ck_assert_int_eq(fstat(fd, &st1), 0);
    close(fd);

    /* Killed: gone, and nobody answers on the portal. */
    ck_assert_msg(keel_lab_tgtd_kill(t, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_lab_tgtd_pid(t), 0);
    ck_assert(!keel_lab_proc_alive(pid1, 0));
    ck_assert_int_ne(run(ls, &out, &eo), 0);
    free(out);
    free(eo);
    ck_assert_int_eq(keel_lab_tgtd_signal(t, SIGCONT, &err), -1);

    /* Restarted: same port, same target, same LUN file with its data. */
    ck_assert_msg(keel_lab_tgtd_restart(t, &err) == 0, "%s", err.msg);
    pid2 = keel_lab_tgtd_pid(t);
    ck_assert(keel_lab_proc_alive(pid2, 0));
    ck_assert(keel_lab_proc_comm_is(pid2, "tgtd"));
    ck_assert_uint_eq(keel_lab_tgtd_port(t), port);
    ck_assert_msg(run(ls, &out, &eo) == 0, "%s", eo);
    ck_assert_msg(has_line(out, "Lun:1 ", "DIRECT_ACCESS"), "%s", out);
    free(out);
    free(eo);
    ck_assert_uint_eq(lun_size(keel_lab_tgtd_lun_url(t, 0, 1)), sizes[0]);
    ck_assert_int_eq(stat(keel_lab_tgtd_lun_path(t, 0, 1), &st2), 0);
    ck_assert_uint_eq(st2.st_ino, st1.st_ino);
    fd = open(keel_lab_tgtd_lun_path(t, 0, 1), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, sizeof(buf), 4096), (ssize_t)sizeof(buf));
    close(fd);
    ck_assert_str_eq(buf, marker);

    /* A stall and its end. */
    ck_assert_msg(keel_lab_tgtd_signal(t, SIGSTOP, &err) == 0, "%s", err.msg);
    ck_assert(wait_state(pid2, true));
    ck_assert_msg(keel_lab_tgtd_signal(t, SIGCONT, &err) == 0, "%s", err.msg);
    ck_assert(wait_state(pid2, false));

    /* A restart of a running (even stopped) tgtd kills it first. */
    ck_assert_msg(keel_lab_tgtd_signal(t, SIGSTOP, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_restart(t, &err) == 0, "%s", err.msg);
    ck_assert(!keel_lab_proc_alive(pid2, 0));
    ck_assert_uint_eq(keel_lab_tgtd_port(t), port);
    ck_assert_uint_eq(lun_size(keel_lab_tgtd_lun_url(t, 0, 1)), sizes[0]);
    keel_lab_tgtd_stop(t);
}
END_TEST

/* ---- ganesha ---- */

START_TEST(nfs_start_restart)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_nfs *n = NULL, *n2 = NULL;
    _cleanup_free_ char *want = NULL;
    _cleanup_free_ char *sub = NULL;
    _cleanup_free_ char *local = NULL;
    _cleanup_free_ char *copied = NULL;
    _cleanup_free_ char *src = NULL;
    _cleanup_free_ char *recov = NULL;
    const char *ls[] = { "nfs-ls", NULL, NULL };
    const char *ls2[] = { "nfs-ls", NULL, NULL };
    const char *cp[] = { "nfs-cp", NULL, NULL, NULL };
    char *out = NULL, *eo = NULL;
    char *dir;
    pid_t pid1, pid2;

    ck_assert_msg(keel_lab_nfs_start(&n, &err) == 0, "%s", err.msg);
    pid1 = keel_lab_nfs_pid(n);
    ck_assert(keel_lab_proc_comm_is(pid1, "ganesha.nfsd"));
    ck_assert(keel_lab_proc_running("rpcbind"));
    want = keel_strdup_printf("nfs://127.0.0.1%s?nfsport=%u&mountport=",
                              keel_lab_nfs_export_dir(n), keel_lab_nfs_port(n));
    ck_assert_msg(keel_str_has_prefix(keel_lab_nfs_url(n), want), "%s", keel_lab_nfs_url(n));
    sub = keel_lab_nfs_url_sub(n, "/hello.txt");
    ck_assert_msg(strstr(sub, "/export/hello.txt?nfsport=") != NULL, "%s", sub);
    /* Its own recovery dir, not /var/lib/nfs/ganesha. */
    recov = keel_strdup_printf("%s/recovery/v4recov", keel_lab_nfs_dir(n));
    ck_assert_msg(exists(recov), "%s", recov);

    ls[1] = keel_lab_nfs_url(n);
    ck_assert_msg(run(ls, &out, &eo) == 0, "%s", eo);
    free(out);
    free(eo);

    /* Write through NFS, see it on the disk and in the listing. */
    src = keel_strdup_printf("%s/../hello.src", keel_lab_nfs_export_dir(n));
    ck_assert_msg(keel_lab_write_file(src, "hello nfs\n", &err) == 0, "%s", err.msg);
    cp[1] = src;
    cp[2] = sub;
    ck_assert_msg(run(cp, &out, &eo) == 0, "%s%s", out, eo);
    free(out);
    free(eo);
    local = keel_strdup_printf("%s/hello.txt", keel_lab_nfs_export_dir(n));
    copied = keel_lab_read_file(local);
    ck_assert_ptr_nonnull(copied);
    ck_assert_str_eq(copied, "hello nfs\n");
    ck_assert_msg(run(ls, &out, &eo) == 0, "%s", eo);
    ck_assert_msg(strstr(out, "hello.txt") != NULL, "%s", out);
    free(out);
    free(eo);

    /* A second instance beside it, on its own ports. */
    ck_assert_msg(keel_lab_nfs_start(&n2, &err) == 0, "%s", err.msg);
    ck_assert_uint_ne(keel_lab_nfs_port(n2), keel_lab_nfs_port(n));
    ls2[1] = keel_lab_nfs_url(n2);
    ck_assert_msg(run(ls2, &out, &eo) == 0, "%s", eo);
    ck_assert_msg(strstr(out, "hello.txt") == NULL, "%s", out);
    free(out);
    free(eo);

    /* Killed: nfs-ls fails; restarted: same URL, same files. */
    ck_assert_msg(keel_lab_nfs_kill(n, &err) == 0, "%s", err.msg);
    ck_assert(!keel_lab_proc_alive(pid1, 0));
    ck_assert_int_ne(run(ls, &out, &eo), 0);
    free(out);
    free(eo);
    ck_assert_msg(run(ls2, &out, &eo) == 0, "%s", eo);
    free(out);
    free(eo);
    ck_assert_msg(keel_lab_nfs_restart(n, &err) == 0, "%s", err.msg);
    pid2 = keel_lab_nfs_pid(n);
    ck_assert(keel_lab_proc_alive(pid2, 0));
    ck_assert_int_ne(pid2, pid1);
    ck_assert_msg(run(ls, &out, &eo) == 0, "%s", eo);
    ck_assert_msg(strstr(out, "hello.txt") != NULL, "%s", out);
    free(out);
    free(eo);

    /* A stall and its end; then stop (SIGTERM) removes everything. */
    ck_assert_msg(keel_lab_nfs_signal(n, SIGSTOP, &err) == 0, "%s", err.msg);
    ck_assert(wait_state(pid2, true));
    ck_assert_msg(keel_lab_nfs_signal(n, SIGCONT, &err) == 0, "%s", err.msg);
    ck_assert(wait_state(pid2, false));
    dir = strdup(keel_lab_nfs_dir(n));
    keel_lab_nfs_stop(n);
    ck_assert(!keel_lab_proc_alive(pid2, 0));
    ck_assert(!exists(dir));
    free(dir);
    keel_lab_nfs_stop(n2);
}
END_TEST

/* ---- loop devices and lvm2 ---- */

START_TEST(loop_and_lvm)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *dir = keel_lab_tmpdir("loop", &err);
    _cleanup_free_ char *file = NULL;
    _cleanup_free_ char *file2 = NULL;
    _cleanup_free_ char *backing = NULL;
    _cleanup_free_ char *autoclear = NULL;
    _cleanup_free_ char *size = NULL;
    _cleanup_free_ char *offset = NULL;
    _cleanup_free_ char *limit = NULL;
    _cleanup_free_ char *gone1 = NULL;
    _cleanup_free_ char *gone2 = NULL;
    char *dev = NULL, *dev2 = NULL;
    char *out = NULL;

    ck_assert_msg(dir != NULL, "%s", err.msg);
    file = keel_strdup_printf("%s/pv.img", dir);
    file2 = keel_strdup_printf("%s/slice.img", dir);
    ck_assert_msg(keel_lab_sparse_file(file, 64 * MiB, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_sparse_file(file2, 64 * MiB, &err) == 0, "%s", err.msg);

    ck_assert_msg(keel_lab_loop_attach(file, 0, 0, &dev, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_str_has_prefix(dev, "/dev/loop"), "%s", dev);
    backing = read_sysfs(dev, "loop/backing_file");
    ck_assert_ptr_nonnull(backing);
    ck_assert_str_eq(backing, file);
    autoclear = read_sysfs(dev, "loop/autoclear");
    ck_assert_ptr_nonnull(autoclear);
    ck_assert_str_eq(autoclear, "1");

    /* A slice: offset 1 MiB, 32 MiB long. */
    ck_assert_msg(keel_lab_loop_attach(file2, MiB, 32 * MiB, &dev2, &err) == 0, "%s", err.msg);
    ck_assert_str_ne(dev2, dev);
    size = read_sysfs(dev2, "size");
    offset = read_sysfs(dev2, "loop/offset");
    limit = read_sysfs(dev2, "loop/sizelimit");
    ck_assert_ptr_nonnull(size);
    ck_assert_str_eq(size, "65536");
    ck_assert_str_eq(offset, "1048576");
    ck_assert_str_eq(limit, "33554432");

    {
        const char *devs[] = { dev };
        const char *devs2[] = { dev2 };
        const char *pvcreate[] = { "pvcreate", dev, NULL };
        const char *pvs[] = { "pvs", "--noheadings", "-o", "pv_name", NULL };
        const char *vgcreate[] = { "vgcreate", "keel_harness_vg", dev, NULL };
        const char *lvcreate[] = { "lvcreate", "-an", "-Zn", "-L", "8M", "-n", "lv1",
                                   "keel_harness_vg", NULL };
        const char *lvs[] = { "lvs", "--noheadings", "-o", "lv_name,lv_size", "--units", "b",
                              "--nosuffix", "keel_harness_vg", NULL };
        const char *vgck[] = { "vgck", "keel_harness_vg", NULL };
        const char *vgremove[] = { "vgremove", "-f", "keel_harness_vg", NULL };
        const char *pvremove[] = { "pvremove", dev, NULL };
        const char *weird[] = { "/dev/loop0|x" };

        ck_assert_msg(keel_lab_lvm(devs, 1, pvcreate, NULL, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_lab_lvm(devs, 1, pvs, &out, &err) == 0, "%s", err.msg);
        ck_assert_msg(has_line(out, "  ", dev), "'%s'", out);
        free(out);
        /* The filter: with only the other device visible, ours is not seen. */
        ck_assert_msg(keel_lab_lvm(devs2, 1, pvs, &out, &err) == 0, "%s", err.msg);
        ck_assert_msg(strstr(out, dev) == NULL, "'%s'", out);
        free(out);
        ck_assert_msg(keel_lab_lvm(devs, 1, vgcreate, NULL, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_lab_lvm(devs, 1, lvcreate, NULL, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_lab_lvm(devs, 1, lvs, &out, &err) == 0, "%s", err.msg);
        ck_assert_msg(has_line(out, "  lv1 ", "8388608"), "'%s'", out);
        free(out);
        ck_assert_msg(keel_lab_lvm(devs, 1, vgck, NULL, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_lab_lvm(devs, 1, vgremove, NULL, &err) == 0, "%s", err.msg);
        ck_assert_msg(keel_lab_lvm(devs, 1, pvremove, NULL, &err) == 0, "%s", err.msg);
        /* A failing command reports its status and stderr. */
        ck_assert_int_eq(keel_lab_lvm(devs, 1, vgck, NULL, &err), -1);
        ck_assert_msg(strstr(err.msg, "keel_harness_vg") != NULL, "%s", err.msg);
        ck_assert_int_eq(keel_lab_lvm(weird, 1, pvs, NULL, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_INVAL);
    }

    /* Detached: the kernel lets go of the files. */
    gone1 = keel_strdup_printf("/sys/block/%s/loop/backing_file", dev + strlen("/dev/"));
    gone2 = keel_strdup_printf("/sys/block/%s/loop/backing_file", dev2 + strlen("/dev/"));
    keel_lab_loop_detach(dev);
    keel_lab_loop_detach(dev2);
    ck_assert_msg(wait_no_path(gone1), "%s still attached", dev);
    ck_assert_msg(wait_no_path(gone2), "%s still attached", dev2);
    free(dev);
    free(dev2);
    keel_lab_tmpdir_remove(dir);
    free(dir);
}
END_TEST

/* ---- sweeping ---- */

/*
 * The sweep tests use a lab root of their own (a lab dir of ours, set as
 * $KEEL_LAB_DIR in this forked test process): the sweeps of tests running
 * beside us only see a dir whose owner is alive, and cannot sweep our
 * orphans before we look at them.  Returns the root; remove it with
 * keel_lab_tmpdir_remove() after unsetting KEEL_LAB_DIR.
 */
static char *private_root(void)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *root = keel_lab_tmpdir("root", &err);

    ck_assert_msg(root != NULL, "%s", err.msg);
    ck_assert_int_eq(setenv("KEEL_LAB_DIR", root, 1), 0);
    ck_assert_str_eq(keel_lab_root(), root);
    return root;
}

static void private_root_remove(char *root)
{
    ck_assert_int_eq(unsetenv("KEEL_LAB_DIR"), 0);
    keel_lab_tmpdir_remove(root);
    ck_assert(!exists(root));
    free(root);
}

/*
 * Play a test that starts a tgtd and is SIGKILLed: a plain fork()ed child
 * (not check's machinery) starts it and reports "PID DIR"; we kill the child.
 */
static void killed_test(bool pdeathsig, pid_t *server, char **dir)
{
    int p[2];
    pid_t child;
    char line[4096] = "";
    size_t len = 0;
    int status;
    char *sp;
    uint64_t v;
    uint64_t deadline = keel_lab_now_ms() + 30000;

    ck_assert_int_eq(pipe(p), 0);
    fflush(NULL);
    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        struct keel_error err = KEEL_ERROR_INIT;
        struct keel_lab_tgtd *t = NULL;

        close(p[0]);
        alarm(60); /* never outlive a broken test for long */
        keel_lab_set_pdeathsig(pdeathsig);
        if (keel_lab_tgtd_start(&t, &err) == -1) {
            dprintf(p[1], "ERR %s\n", err.msg);
            _exit(1);
        }
        dprintf(p[1], "%d %s\n", (int)keel_lab_tgtd_pid(t), keel_lab_tgtd_dir(t));
        close(p[1]);
        for (;;)
            pause();
    }
    close(p[1]);
    while (len < sizeof(line) - 1 && memchr(line, '\n', len) == NULL) {
        struct pollfd pfd = { .fd = p[0], .events = POLLIN };
        ssize_t n;

        ck_assert_msg(keel_lab_now_ms() < deadline, "no word from the child");
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        n = read(p[0], line + len, sizeof(line) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(p[0]);
    line[len] = '\0';
    kill(child, SIGKILL);
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    line[strcspn(line, "\n")] = '\0';
    sp = strchr(line, ' ');
    ck_assert_msg(sp != NULL && strncmp(line, "ERR", 3) != 0, "child: '%s'", line);
    *sp = '\0';
    ck_assert_int_eq(keel_parse_u64(line, &v), 0);
    *server = (pid_t)v;
    *dir = strdup(sp + 1);
}

START_TEST(sweep_kills_orphan)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lab_tgtd *mine = NULL;
    _cleanup_free_ char *ctl_path = NULL;
    _cleanup_free_ char *ctl = NULL;
    _cleanup_free_ char *lock = NULL;
    char *root = private_root();
    char *dir = NULL;
    pid_t server = 0;

    /* A live test's server is never swept. */
    ck_assert_msg(keel_lab_tgtd_start(&mine, &err) == 0, "%s", err.msg);

    /* An orphan that its parent-death signal did not catch. */
    killed_test(false, &server, &dir);
    ck_assert_msg(keel_lab_proc_alive(server, 0), "tgtd %d died with its parent", (int)server);
    ck_assert(keel_lab_proc_comm_is(server, "tgtd"));
    ck_assert(exists(dir));
    ctl_path = keel_strdup_printf("%s/tgtd-control-port", dir);
    ctl = keel_lab_read_file(ctl_path);
    ck_assert_ptr_nonnull(ctl);
    ctl[strcspn(ctl, "\n")] = '\0';
    lock = keel_strdup_printf("/var/run/tgtd/socket.%s.lock", ctl);
    ck_assert_msg(exists(lock), "%s", lock);

    keel_lab_sweep();
    ck_assert_msg(!keel_lab_proc_alive(server, 0), "orphan tgtd %d survived", (int)server);
    ck_assert_msg(!exists(dir), "%s", dir);
    ck_assert_msg(!exists(lock), "%s", lock);
    ck_assert(keel_lab_proc_alive(keel_lab_tgtd_pid(mine), 0));
    ck_assert(exists(keel_lab_tgtd_dir(mine)));
    keel_lab_tgtd_stop(mine);
    free(dir);
    private_root_remove(root);
}
END_TEST

START_TEST(server_dies_with_parent)
{
    char *root = private_root();
    char *dir = NULL;
    pid_t server = 0;

    killed_test(true, &server, &dir);
    ck_assert_msg(wait_gone(server), "tgtd %d outlived its parent", (int)server);
    ck_assert(exists(dir));
    keel_lab_sweep();
    ck_assert_msg(!exists(dir), "%s", dir);
    free(dir);
    private_root_remove(root);
}
END_TEST

/* A dir claiming a "tgtd" that is something else: the dir goes, the process stays. */
START_TEST(sweep_checks_command_name)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *root = private_root();
    _cleanup_free_ char *dir = keel_strdup_printf("%s/fake-XXXXXX", keel_lab_root());
    _cleanup_free_ char *owner = NULL;
    _cleanup_free_ char *server = NULL;
    _cleanup_free_ char *path = NULL;
    uint64_t start = 0;
    pid_t victim;

    victim = fork();
    ck_assert_int_ge(victim, 0);
    if (victim == 0) {
        execlp("sleep", "sleep", "60", (char *)NULL);
        _exit(127);
    }
    ck_assert_int_eq(keel_lab_proc_starttime(victim, &start), 0);
    ck_assert_int_eq(keel_lab_root_ensure(&err), 0);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    /* The owner "died": same pid, another start time. */
    owner = keel_strdup_printf("%d %llu\n", (int)victim, (unsigned long long)start + 1);
    server = keel_strdup_printf("%d %llu tgtd\n", (int)victim, (unsigned long long)start);
    path = keel_strdup_printf("%s/owner", dir);
    ck_assert_int_eq(keel_lab_write_file(path, owner, &err), 0);
    free(path);
    path = keel_strdup_printf("%s/server.pid", dir);
    ck_assert_int_eq(keel_lab_write_file(path, server, &err), 0);

    keel_lab_sweep();
    ck_assert(!exists(dir));
    ck_assert(keel_lab_proc_alive(victim, start));
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
    private_root_remove(root);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("harness");
    TCase *basics = tcase_create("basics");
    TCase *servers = tcase_create("servers");
    SRunner *sr;
    int failed;

    keel_lab_require("sh");
    keel_lab_require("tgtd");
    keel_lab_require("tgtadm");
    keel_lab_require("iscsi-ls");
    keel_lab_require("iscsi-readcapacity16");
    keel_lab_require("rpcbind");
    keel_lab_require("ganesha.nfsd");
    keel_lab_require("nfs-ls");
    keel_lab_require("nfs-cp");
    keel_lab_require("lvm");

    tcase_add_test(basics, run_captures_output_and_status);
    tcase_add_test(basics, free_port_is_free);
    tcase_add_test(basics, tmpdir_and_sparse_file);
    tcase_set_timeout(servers, 120);
    tcase_add_test(servers, tgtd_two_luns);
    tcase_add_test(servers, tgtd_chap);
    tcase_add_test(servers, tgtd_restart);
    tcase_add_test(servers, nfs_start_restart);
    tcase_add_test(servers, loop_and_lvm);
    tcase_add_test(servers, sweep_kills_orphan);
    tcase_add_test(servers, server_dies_with_parent);
    tcase_add_test(servers, sweep_checks_command_name);
    suite_add_tcase(s, basics);
    suite_add_tcase(s, servers);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
