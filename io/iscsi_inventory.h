/*
 * iSCSI discovery and LUN inventory: what a portal offers, the way oVirt's
 * getDeviceList shows it (targets, LUNs with size, vendor, product, serial
 * and device id).
 *
 * These calls open their own short sessions (a discovery session, then one
 * normal session per target) and close them before returning; every
 * command is bounded by opts->timeout_ms.
 */
#ifndef KEEL_IO_ISCSI_INVENTORY_H
#define KEEL_IO_ISCSI_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/opts.h"
#include "io/url.h"

#define KEEL_SCSI_TYPE_DISK 0x00
#define KEEL_SCSI_TYPE_CONTROLLER 0x0c

struct keel_iscsi_lun {
    int lun;
    int device_type;            /* SCSI peripheral device type (0: disk) */
    uint64_t size;              /* bytes; 0 for LUNs that are not disks */
    uint32_t block_size;
    char vendor[9];
    char product[17];
    char revision[5];
    char serial[256];           /* VPD page 0x80, "" if none */
    /*
     * Device id from VPD page 0x83 in the form multipath and udev use for a
     * WWID, which oVirt shows as the LUN id: "3" + NAA hex, "2" + EUI-64 hex,
     * "8" + SCSI name string, "1" + T10 vendor id (spaces as '_').  "" if none.
     */
    char devid[256];
    char url[KEEL_URL_MAX];     /* iscsi://host:port/iqn/lun, secrets redacted */
};

struct keel_iscsi_target {
    char iqn[KEEL_URL_IQN_MAX];
    char portal[KEEL_URL_HOST_MAX + 16]; /* as the target announced it ("127.0.0.1:3260,1") */
    size_t nluns;
    struct keel_iscsi_lun *luns;         /* sorted by LUN number */
};

struct keel_iscsi_inventory {
    size_t ntargets;
    struct keel_iscsi_target *targets;
};

/*
 * Ask the portal (iscsi://[user%secret@]host[:port]) for its targets
 * (SendTargets), then list every LUN of each.  The credentials, when given,
 * are used for the discovery and the target logins.  Fills *ret; release
 * it with keel_iscsi_inventory_release().
 */
int keel_iscsi_discover(const char *portal_url, const struct keel_io_opts *opts,
                        struct keel_iscsi_inventory *ret, struct keel_error *err);

/*
 * List the LUNs of one target (iscsi://[cred@]host[:port]/<iqn>) into *ret;
 * release with keel_iscsi_target_release().
 */
int keel_iscsi_target_luns(const char *target_url, const struct keel_io_opts *opts,
                           struct keel_iscsi_target *ret, struct keel_error *err);

void keel_iscsi_target_release(struct keel_iscsi_target *t);
void keel_iscsi_inventory_release(struct keel_iscsi_inventory *inv);

#endif /* KEEL_IO_ISCSI_INVENTORY_H */
