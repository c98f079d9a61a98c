/*
 * The test lab: real servers and judges, started and stopped by tests.
 *
 * Every server runs on 127.0.0.1 in its own temporary directory under the
 * lab root ($KEEL_LAB_DIR, default /tmp/keel-lab), on free ports, so that
 * many tests (and many test runs) can run side by side:
 *
 *   - tgtd (iSCSI target) with file-backed LUNs: sparse files in its dir;
 *   - nfs-ganesha (NFSv3, VFS backend) exporting a directory; rpcbind is
 *     started first when no rpcbind runs (and then left running: it is a
 *     machine service, one per machine).  Each ganesha listens on its own
 *     NFS and MOUNT ports, and clients name them in the URL
 *     (nfs://127.0.0.1/DIR?nfsport=N&mountport=M), so no two tests share a
 *     server and rpcbind's registration (which the last ganesha wins) does
 *     not matter;
 *   - loop devices over files, for lvm2 as a judge.
 *
 * Lifetime.  A server dies with the thread that started it
 * (PR_SET_PDEATHSIG), and keel_lab_*_stop() or the process's exit stops it
 * and removes its directory.  Loop devices are attached with autoclear and
 * held open by the test process: they go away when it exits, even by
 * SIGKILL.  Every start first sweeps the lab root: a directory whose owner
 * process is gone (a SIGKILLed test) has its server killed (by the pid file,
 * after checking the command name) and is removed.
 *
 * Note: PR_SET_PDEATHSIG fires when the *thread* that forked the server
 * exits, not the process: start servers from a thread that lives as long as
 * they are needed (the test's main thread; check's fork mode runs each test
 * in a process of its own, whose exit stops its servers).  A server started
 * by one process and stopped by a forked child is killed all right, but the
 * exit handler of a process only stops what that process started.
 *
 * Errors fill struct keel_error like the rest of Keel.  Test code usually
 * wraps these calls in ck_assert_msg(rc == 0, "%s", err.msg).
 */
#ifndef KEEL_TESTS_HARNESS_LAB_H
#define KEEL_TESTS_HARNESS_LAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* ---- requirements ---- */

/*
 * Exit code that makes meson count a test as skipped.
 */
#define KEEL_LAB_SKIP 77

/*
 * True when the program is on PATH (or /usr/sbin, /sbin).  Otherwise, with
 * CI=true in the environment, print why and exit(1): CI never goes green
 * with a judge or server missing.  Without CI, print why and
 * exit(KEEL_LAB_SKIP).  Call at the start of main(), before forking tests.
 */
void keel_lab_require(const char *program);

/* True when running under CI=true. */
bool keel_lab_ci(void);

/* ---- processes and commands ---- */

/*
 * Run argv (argv[0] looked up on PATH, /usr/sbin and /sbin) and wait.
 * stdout and stderr are captured into malloc'ed strings when out/errout are
 * not NULL (the caller frees).  *status gets the exit status (or 128+signal).
 * Returns -1 only when the program could not be run at all.  The child dies
 * with the calling thread (PR_SET_PDEATHSIG).  stdin is /dev/null.  A
 * command still running after 900 s is killed (status 128+9): every wait of
 * the harness is bounded.  env_extra: NULL or a NULL-terminated list of
 * "K=V" added to the environment (replacing K if set).
 */
int keel_lab_run(const char *const argv[], const char *const env_extra[], char **out,
                 char **errout, int *status, struct keel_error *err);

/* keel_lab_run() that fails (with the command, status and stderr in err)
 * unless the exit status is 0.  *out (when out != NULL) is set only on
 * success. */
int keel_lab_run_ok(const char *const argv[], const char *const env_extra[], char **out,
                    struct keel_error *err);

/* A free TCP port on 127.0.0.1 in 20000-32767 (not the ephemeral range). */
int keel_lab_free_port(unsigned *ret, struct keel_error *err);

/* Sweep the lab root now (every start does it too). */
void keel_lab_sweep(void);

/* Create a sparse file of size bytes. */
int keel_lab_sparse_file(const char *path, uint64_t size, struct keel_error *err);

/* A private temporary directory under the lab root, removed by
 * keel_lab_tmpdir_remove() or at exit, and swept like server dirs.  prefix:
 * letters, digits, '-', '_', '.'.  The caller frees the returned string (also
 * after keel_lab_tmpdir_remove(), which removes the directory, not the
 * string).  NULL is accepted by keel_lab_tmpdir_remove(). */
char *keel_lab_tmpdir(const char *prefix, struct keel_error *err);
void keel_lab_tmpdir_remove(char *dir);

/* ---- tgtd ---- */

struct keel_lab_tgtd;

/* Start a tgtd on a free portal port and control port.  Stop it with
 * keel_lab_tgtd_stop() (or let the process exit). */
int keel_lab_tgtd_start(struct keel_lab_tgtd **ret, struct keel_error *err);

/*
 * Add a target "iqn.2026-11.org.keel.test:<name>" with nluns LUNs of the
 * given sizes, backed by sparse files in the tgtd's dir, numbered 1..nluns
 * (LUN 0 is tgtd's controller).  With chap_user/chap_secret (both or
 * neither), logins need CHAP.  Returns the target's index (0, 1, ...) or -1.
 * name: lower-case letters, digits, '.', '-'.  Sizes: positive multiples of
 * 512 (tgtd would silently round down the rest).  CHAP user and secret:
 * letters, digits, '.', '_', '-' (they go into URLs as they are); accounts
 * are per tgtd, so a user given to two targets needs the same secret.
 */
int keel_lab_tgtd_add_target(struct keel_lab_tgtd *t, const char *name, const uint64_t *sizes,
                             size_t nluns, const char *chap_user, const char *chap_secret,
                             struct keel_error *err);

/*
 * Whether the LUNs of targets added from now on are thin-provisioned
 * (tgtd's thin_provisioning=1: READ CAPACITY reports LBPME and LBPRZ, GET
 * LBA STATUS answers from the sparse file's holes, UNMAP and WRITE SAME
 * with UNMAP punch holes).  Off by default: a thick LUN.
 */
void keel_lab_tgtd_set_thin(struct keel_lab_tgtd *t, bool thin);

/* iscsi://[user%secret@]127.0.0.1:PORT/IQN/LUN of a LUN (lun 1..n). Borrowed. */
const char *keel_lab_tgtd_lun_url(struct keel_lab_tgtd *t, int target, int lun);
/* The LUN's backing file. Borrowed. */
const char *keel_lab_tgtd_lun_path(struct keel_lab_tgtd *t, int target, int lun);
const char *keel_lab_tgtd_iqn(struct keel_lab_tgtd *t, int target);
/* iscsi://127.0.0.1:PORT (discovery portal). Borrowed. */
const char *keel_lab_tgtd_portal_url(struct keel_lab_tgtd *t);
unsigned keel_lab_tgtd_port(const struct keel_lab_tgtd *t);
const char *keel_lab_tgtd_dir(const struct keel_lab_tgtd *t);
pid_t keel_lab_tgtd_pid(const struct keel_lab_tgtd *t);

/* SIGKILL tgtd (it ignores SIGTERM while it has targets) and reap it. */
int keel_lab_tgtd_kill(struct keel_lab_tgtd *t, struct keel_error *err);
/* Start it again on the same ports with the same targets and LUN files. */
int keel_lab_tgtd_restart(struct keel_lab_tgtd *t, struct keel_error *err);
/* Send a signal (SIGSTOP/SIGCONT to simulate a stall). */
int keel_lab_tgtd_signal(struct keel_lab_tgtd *t, int sig, struct keel_error *err);
/* Kill it, remove its dir and free t. NULL is accepted. */
void keel_lab_tgtd_stop(struct keel_lab_tgtd *t);
/* Accessors of a killed tgtd: pid 0; URLs, port and paths stay. */

/* ---- nfs-ganesha ---- */

struct keel_lab_nfs;

/* Start rpcbind (if needed) and a ganesha exporting <its dir>/export.
 * keel_lab_nfs_stop() sends SIGTERM, then SIGKILL after 5 s. */
int keel_lab_nfs_start(struct keel_lab_nfs **ret, struct keel_error *err);
/* nfs://127.0.0.1/<export dir>?nfsport=N&mountport=M. Borrowed. */
const char *keel_lab_nfs_url(const struct keel_lab_nfs *n);
/* Same URL with "/sub" appended to the path (sub relative; leading '/' are
 * dropped). Caller frees; NULL only for sub NULL or no memory. */
char *keel_lab_nfs_url_sub(const struct keel_lab_nfs *n, const char *sub);
/* The exported directory on this machine: read it, never change it while
 * ganesha serves it (see LAB.md). Borrowed. */
const char *keel_lab_nfs_export_dir(const struct keel_lab_nfs *n);
const char *keel_lab_nfs_dir(const struct keel_lab_nfs *n);
pid_t keel_lab_nfs_pid(const struct keel_lab_nfs *n);
unsigned keel_lab_nfs_port(const struct keel_lab_nfs *n);
int keel_lab_nfs_kill(struct keel_lab_nfs *n, struct keel_error *err);
int keel_lab_nfs_restart(struct keel_lab_nfs *n, struct keel_error *err);
int keel_lab_nfs_signal(struct keel_lab_nfs *n, int sig, struct keel_error *err);
void keel_lab_nfs_stop(struct keel_lab_nfs *n);

/* ---- loop devices and lvm2 ---- */

/*
 * Attach file (from offset, at most sizelimit bytes; 0 = to the end) to a
 * free loop device with autoclear, keeping it open in this process (until
 * keel_lab_loop_detach() or exit, even by SIGKILL).
 * *ret gets "/dev/loopN" (caller frees).
 */
int keel_lab_loop_attach(const char *file, uint64_t offset, uint64_t sizelimit, char **ret,
                         struct keel_error *err);
/* Close our hold on it (autoclear detaches it once nobody uses it). */
void keel_lab_loop_detach(const char *dev);

/*
 * Run an lvm2 command on the given devices only: argv is the command
 * ("vgs", "-o", ...), NULL-terminated; the harness adds --driverloaded n
 * --nolocking (every lvm2 2.03 command but help and version takes them), and
 * a config whose filter and global_filter accept exactly devs (paths of
 * '/', letters, digits, '_', '-'), use_devicesfile=0, and backup=0
 * archive=0 (no /etc/lvm/archive files), with LVM_SUPPRESS_FD_WARNINGS=1.
 * *out (when out != NULL) gets stdout on success; a failure puts the
 * command, its status and stderr in err.  lvcreate needs "-an", "-Zn" here.
 */
int keel_lab_lvm(const char *const devs[], size_t ndevs, const char *const argv[], char **out,
                 struct keel_error *err);

/* The same, keeping stderr and the exit status (vgck and pvck warn with rc 0). */
int keel_lab_lvm_run(const char *const devs[], size_t ndevs, const char *const argv[], char **out,
                     char **errout, int *status, struct keel_error *err);

#endif /* KEEL_TESTS_HARNESS_LAB_H */
