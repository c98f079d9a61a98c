/*
 * The test lab: loop devices over files, and lvm2 as a judge on them.
 *
 * A loop device is attached with LO_FLAGS_AUTOCLEAR and its fd stays open in
 * this process (in the registry): the kernel detaches it when the last fd
 * closes, so even a SIGKILLed test leaves no loop device behind.  The free
 * device comes from LOOP_CTL_GET_FREE; another process may grab the same
 * one before we configure it (EBUSY), so we retry with the next free one.
 *
 * lvm2 (2.03.16 here) runs without device-mapper: every command gets
 * "--driverloaded n" (no activation, no dm ioctls) and "--nolocking", and a
 * config that sees only the test's own devices.  Measured: pvcreate,
 * vgcreate, lvcreate, lvextend, lvreduce, lvresize, lvremove, lvrename,
 * lvchange, vgchange, vgextend, vgreduce, vgrename, vgs, lvs, pvs, vgck,
 * pvck, vgremove, pvremove, pvresize, pvchange, vgcfgbackup, vgcfgrestore,
 * vgscan, pvscan, lvscan, *display, fullreport, lvmconfig all accept both
 * options; lvcreate fails without --driverloaded n ("Failure to
 * communicate with kernel device-mapper driver").  Only "version" (which
 * opens /dev/mapper/control whatever it is told) and "help" get neither:
 * the options mean nothing to them.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "tests/harness/lab-priv.h"

#define LOOP_ATTACH_ATTEMPTS 16
#define LVM_MAX_DEVS 32
#define LVM_MAX_ARGS 128

struct lab_loop {
    char dev[32];
    int fd;
};

/* ---- loop devices ---- */

static void loop_stop(void *obj)
{
    struct lab_loop *l = obj;

    /* With autoclear set this only marks it; the last close detaches it. */
    ioctl(l->fd, LOOP_CLR_FD, 0);
    close(l->fd);
    free(l);
}

static bool loop_match(void *obj, const void *arg)
{
    return strcmp(((struct lab_loop *)obj)->dev, arg) == 0;
}

/* Configure loop_fd over file_fd; -1 with errno (EBUSY: taken meanwhile). */
static int loop_configure(int loop_fd, int file_fd, uint64_t offset, uint64_t sizelimit)
{
    struct loop_config cfg;
    struct loop_info64 info;

    memset(&cfg, 0, sizeof(cfg));
    cfg.fd = (unsigned)file_fd;
    cfg.info.lo_offset = offset;
    cfg.info.lo_sizelimit = sizelimit;
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (ioctl(loop_fd, LOOP_CONFIGURE, &cfg) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOTTY)
        return -1;
    /* Kernels before 5.8: two steps. */
    if (ioctl(loop_fd, LOOP_SET_FD, file_fd) == -1)
        return -1;
    memset(&info, 0, sizeof(info));
    info.lo_offset = offset;
    info.lo_sizelimit = sizelimit;
    info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (ioctl(loop_fd, LOOP_SET_STATUS64, &info) == -1) {
        int e = errno;

        ioctl(loop_fd, LOOP_CLR_FD, 0);
        errno = e == EBUSY ? EIO : e;
        return -1;
    }
    return 0;
}

int keel_lab_loop_attach(const char *file, uint64_t offset, uint64_t sizelimit, char **ret,
                         struct keel_error *err)
{
    _cleanup_fd_ int file_fd = -1;
    _cleanup_fd_ int ctl_fd = -1;
    int last = 0;

    file_fd = open(file, O_RDWR | O_CLOEXEC);
    if (file_fd == -1)
        return keel_error_errno(err, keel_errc_from_errno(errno), errno, "loop: open %s", file);
    ctl_fd = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl_fd == -1)
        return keel_error_errno(err, keel_errc_from_errno(errno), errno,
                                "loop: open /dev/loop-control");
    for (int attempt = 0; attempt < LOOP_ATTACH_ATTEMPTS; attempt++) {
        struct lab_loop *l;
        char *dev;
        int n = ioctl(ctl_fd, LOOP_CTL_GET_FREE);
        int fd;

        if (n < 0)
            return keel_error_errno(err, keel_errc_from_errno(errno), errno,
                                    "loop: LOOP_CTL_GET_FREE");
        l = calloc(1, sizeof(*l));
        if (l == NULL)
            return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "loop: out of memory");
        snprintf(l->dev, sizeof(l->dev), "/dev/loop%d", n);
        fd = open(l->dev, O_RDWR | O_CLOEXEC);
        if (fd == -1) {
            last = errno;
            free(l);
            /* devtmpfs may lag behind a just-created device. */
            keel_lab_sleep_ms(KEEL_LAB_POLL_MS);
            continue;
        }
        if (loop_configure(fd, file_fd, offset, sizelimit) == -1) {
            last = errno;
            close(fd);
            free(l);
            if (last == EBUSY)
                continue;
            return keel_error_errno(err, keel_errc_from_errno(last), last,
                                    "loop: attach %s to /dev/loop%d", file, n);
        }
        dev = strdup(l->dev);
        if (dev == NULL) {
            l->fd = fd;
            loop_stop(l);
            return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "loop: out of memory");
        }
        l->fd = fd;
        keel_lab_register(l, loop_stop);
        *ret = dev;
        return 0;
    }
    return keel_error_errno(err, KEEL_E_BUSY, last, "loop: attach %s: no free loop device "
                            "after %d attempts", file, LOOP_ATTACH_ATTEMPTS);
}

void keel_lab_loop_detach(const char *dev)
{
    struct lab_loop *l;

    if (dev == NULL)
        return;
    l = keel_lab_registry_take(loop_stop, loop_match, dev);
    if (l != NULL)
        loop_stop(l);
}

/* ---- lvm2 ---- */

/* Commands that get neither --driverloaded n nor --nolocking (see the top). */
static const char *const lvm_no_flags[] = { "help", "version" };

static bool lvm_takes_flags(const char *cmd)
{
    for (size_t i = 0; i < KEEL_ARRAY_SIZE(lvm_no_flags); i++)
        if (strcmp(cmd, lvm_no_flags[i]) == 0)
            return false;
    return true;
}

/* A device path that can go into a filter regex as it is. */
static bool plain_path(const char *s)
{
    if (s == NULL || s[0] != '/')
        return false;
    for (; *s != '\0'; s++)
        if (!(isalnum((unsigned char)*s) || *s == '/' || *s == '_' || *s == '-'))
            return false;
    return true;
}

/*
 * devices{...} that accepts exactly devs; backups and archives off so that
 * tests do not fill /etc/lvm/archive with each other's VG names
 * (vgcfgbackup -f FILE still works).
 */
static char *lvm_config(const char *const devs[], size_t ndevs, struct keel_error *err)
{
    char filter[LVM_MAX_DEVS * 48 + 16];
    size_t len = 0;

    if (ndevs > LVM_MAX_DEVS)
        return keel_error_set(err, KEEL_E_INVAL, 0, "lvm: %zu devices (at most %d)", ndevs,
                              LVM_MAX_DEVS), NULL;
    filter[0] = '\0';
    for (size_t i = 0; i < ndevs; i++) {
        if (!plain_path(devs[i]))
            return keel_error_set(err, KEEL_E_INVAL, 0, "lvm: device '%s': only /, letters, "
                                  "digits, '_' and '-' please", devs[i] != NULL ? devs[i] : ""),
                   NULL;
        len += (size_t)snprintf(filter + len, sizeof(filter) - len, "\"a|^%s$|\",", devs[i]);
    }
    snprintf(filter + len, sizeof(filter) - len, "\"r|.*|\"");
    /* hints="none": lvm's hint file would make it skip devices that were no PV before. */
    return keel_strdup_printf("devices{use_devicesfile=0 obtain_device_list_from_udev=0 "
                              "hints=\"none\" filter=[%s] global_filter=[%s]} "
                              "activation{udev_sync=0 udev_rules=0 monitoring=0} "
                              "backup{backup=0 archive=0}",
                              filter, filter);
}

/* Build the full lvm command line into full[] (config owned by *config). */
static int lvm_argv(const char *const devs[], size_t ndevs, const char *const argv[],
                    const char *full[LVM_MAX_ARGS], char **config, struct keel_error *err)
{
    size_t n = 0;

    if (argv == NULL || argv[0] == NULL)
        return keel_error_set(err, KEEL_E_INVAL, 0, "lvm: empty command");
    *config = lvm_config(devs, ndevs, err);
    if (*config == NULL)
        return -1;
    full[n++] = "lvm";
    full[n++] = argv[0];
    if (lvm_takes_flags(argv[0])) {
        full[n++] = "--driverloaded";
        full[n++] = "n";
        full[n++] = "--nolocking";
    }
    full[n++] = "--config";
    full[n++] = *config;
    for (size_t i = 1; argv[i] != NULL; i++) {
        if (n >= LVM_MAX_ARGS - 1)
            return keel_error_set(err, KEEL_E_INVAL, 0, "lvm %s: too many arguments", argv[0]);
        full[n++] = argv[i];
    }
    full[n] = NULL;
    return 0;
}

static const char *const lvm_env[] = { "LVM_SUPPRESS_FD_WARNINGS=1", NULL };

int keel_lab_lvm(const char *const devs[], size_t ndevs, const char *const argv[], char **out,
                 struct keel_error *err)
{
    const char *full[LVM_MAX_ARGS];
    _cleanup_free_ char *config = NULL;

    if (lvm_argv(devs, ndevs, argv, full, &config, err) != 0)
        return -1;
    return keel_lab_run_ok(full, lvm_env, out, err);
}

int keel_lab_lvm_run(const char *const devs[], size_t ndevs, const char *const argv[], char **out,
                     char **errout, int *status, struct keel_error *err)
{
    const char *full[LVM_MAX_ARGS];
    _cleanup_free_ char *config = NULL;

    if (lvm_argv(devs, ndevs, argv, full, &config, err) != 0)
        return -1;
    return keel_lab_run(full, lvm_env, out, errout, status, err);
}
