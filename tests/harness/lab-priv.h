/*
 * Internals shared by the files of the test-lab harness (lab.c, run.c,
 * sweep.c, tgtd.c, ganesha.c, loop.c).  Only the harness and its own test
 * (tests/functional/test_harness.c) include this header.
 *
 * Every wait in the harness is bounded by one of the constants below.
 */
#ifndef KEEL_TESTS_HARNESS_LAB_PRIV_H
#define KEEL_TESTS_HARNESS_LAB_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "tests/harness/lab.h"

#define KEEL_LAB_ROOT_DEFAULT "/tmp/keel-lab"

/* Waiting for <root>/.sweep.lock (held only while sweeping or creating a dir). */
#define KEEL_LAB_LOCK_TIMEOUT_MS 10000
/* keel_lab_run(): a command still running after this is killed (status 128+9). */
#define KEEL_LAB_RUN_TIMEOUT_MS (900 * 1000)
/* One readiness probe (tgtadm, nfs-ls) or one small helper command. */
#define KEEL_LAB_PROBE_TIMEOUT_MS 5000
/* A server must answer its readiness probe within this after it was spawned. */
#define KEEL_LAB_READY_TIMEOUT_MS 10000
/* Start attempts on fresh ports (start) before giving up. */
#define KEEL_LAB_START_ATTEMPTS 5
/* Restart on the same ports: retry while the old port is not yet free. */
#define KEEL_LAB_RESTART_TIMEOUT_MS 10000
/* SIGTERM grace before SIGKILL, and wait for a killed process to vanish. */
#define KEEL_LAB_STOP_TIMEOUT_MS 5000
/* Interval of every polling loop. */
#define KEEL_LAB_POLL_MS 50

/* Port range of keel_lab_free_port(): below Linux's ephemeral range. */
#define KEEL_LAB_PORT_MIN 20000
#define KEEL_LAB_PORT_MAX 32767

/* Files in every lab dir. */
#define KEEL_LAB_OWNER_FILE "owner"        /* "PID STARTTIME\n" of the test process */
#define KEEL_LAB_SERVER_FILE "server.pid"  /* "PID STARTTIME COMM\n" of the server */
#define KEEL_LAB_TGTD_CTL_FILE "tgtd-control-port" /* "N\n": /var/run/tgtd/socket.N */

/* ---- time ---- */

/* Monotonic milliseconds. */
uint64_t keel_lab_now_ms(void);
void keel_lab_sleep_ms(unsigned ms);

/* ---- files ---- */

/* The lab root ($KEEL_LAB_DIR or KEEL_LAB_ROOT_DEFAULT). Borrowed, static. */
const char *keel_lab_root(void);
/* Create the lab root (and its parents) when missing. */
int keel_lab_root_ensure(struct keel_error *err);
/* Remove path recursively (no symlinks followed). 0 when it is gone. */
int keel_lab_rm_rf(const char *path);
/* Write content to path (created or truncated, mode 0644). */
int keel_lab_write_file(const char *path, const char *content, struct keel_error *err);
/* Whole file as a NUL-terminated malloc'ed string (at most 64 KiB), or NULL. */
char *keel_lab_read_file(const char *path);
/* Absolute path of program on PATH, /usr/sbin or /sbin (or program itself when
 * it contains a '/' and is executable); malloc'ed, NULL when not found. */
char *keel_lab_find_program(const char *program);

/* ---- processes ---- */

/* Field 22 of /proc/PID/stat (start time in clock ticks since boot). */
int keel_lab_proc_starttime(pid_t pid, uint64_t *ret);
/*
 * True when pid exists, is not a zombie (a zombie main thread whose other
 * threads still exit counts as alive: they hold its files and locks) and
 * (when start != 0) started at start: a reused pid is not the process we knew.
 */
bool keel_lab_proc_alive(pid_t pid, uint64_t start);
/* True when /proc/PID/comm is exactly comm. */
bool keel_lab_proc_comm_is(pid_t pid, const char *comm);
/* True when any process has the command name comm. */
bool keel_lab_proc_running(const char *comm);
/*
 * Send sig to pid when it is still the process that started at start, then
 * reap it when it is our child and wait (at most timeout_ms) until it is gone.
 * sig 0 only waits.  Returns 0 when it is gone, -1 when it still runs.
 */
int keel_lab_proc_kill_wait(pid_t pid, uint64_t start, int sig, unsigned timeout_ms);

/* ---- running commands (run.c) ---- */

/* keel_lab_run() with its own time limit (the child is SIGKILLed after it). */
int keel_lab_run_timeout(const char *const argv[], const char *const env_extra[], char **out,
                         char **errout, int *status, unsigned timeout_ms,
                         struct keel_error *err);
/*
 * Fork and exec a server: stdin from /dev/null, stdout and stderr appended to
 * log, PR_SET_PDEATHSIG(SIGKILL) (unless turned off, see below), all other
 * fds closed, signals reset.  *pid and *start get the child's pid and start
 * time.  Fails when the program cannot be executed.
 */
int keel_lab_spawn(const char *const argv[], const char *log, pid_t *pid, uint64_t *start,
                   struct keel_error *err);
/*
 * Tests of the harness only: children spawned after keel_lab_set_pdeathsig(false)
 * outlive their parent, to play a server whose parent-death signal did not
 * fire and that only the sweeper can catch.
 */
void keel_lab_set_pdeathsig(bool on);

/* ---- ports ---- */

/* n distinct free TCP ports on 127.0.0.1 (held together while picking). */
int keel_lab_free_ports(unsigned *ports, size_t n, struct keel_error *err);
/* True when a TCP connect to 127.0.0.1:port succeeds. */
bool keel_lab_tcp_connects(unsigned port);

/* ---- lab dirs and sweeping (sweep.c) ---- */

/*
 * Sweep the lab root, then create <root>/<prefix>-XXXXXX (mode 0755) with the
 * owner file, all under the sweep lock.  Returns the malloc'ed path or NULL.
 */
char *keel_lab_dir_create(const char *prefix, struct keel_error *err);
/* Record (or with pid 0, forget) the server running in dir for the sweeper. */
int keel_lab_dir_set_server(const char *dir, pid_t pid, uint64_t start, const char *comm,
                            struct keel_error *err);
/* Take <root>/.sweep.lock (bounded); returns the lock fd or -1. */
int keel_lab_lock(struct keel_error *err);
void keel_lab_unlock(int fd);

/* ---- registry of what this process started (lab.c) ---- */

/*
 * Register obj, stopped by stop(obj) at exit of the registering process (not
 * of a forked child that inherited the registry).  Aborts on allocation
 * failure: a harness that loses track of a server leaks it.
 */
void keel_lab_register(void *obj, void (*stop)(void *obj));
/* Forget obj (no-op when it is not registered). */
void keel_lab_unregister(void *obj);
/* The first registered obj with stop function stop for which match(obj, arg)
 * is true, removed from the registry; NULL when none. */
void *keel_lab_registry_take(void (*stop)(void *obj), bool (*match)(void *obj, const void *arg),
                             const void *arg);

/* ---- tgtd (tgtd.c) ---- */

/* Remove /var/run/tgtd/socket.N and its lock when no tgtd holds the lock. */
void keel_lab_tgtd_forget_control_port(unsigned ctl);

#endif /* KEEL_TESTS_HARNESS_LAB_PRIV_H */
