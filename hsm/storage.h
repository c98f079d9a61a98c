/*
 * keeld's storage registry as the verbs use it (storage.c; the domain
 * cache is in hsm.h).  The JSON results are new references.
 */
#ifndef KEEL_HSM_STORAGE_H
#define KEEL_HSM_STORAGE_H

#include <jansson.h>
#include <stddef.h>

#include "common/error.h"
#include "io/blockdev.h"
#include "io/fs.h"

struct keel_hsm;

/* Connect each of conns (checked by the dispatch); per-connection status. */
json_t *keel_hsm_storage_connect(struct keel_hsm *h, json_t *conns);
json_t *keel_hsm_storage_disconnect(struct keel_hsm *h, const char *const *ids, size_t n);
json_t *keel_hsm_storage_list(struct keel_hsm *h);
/* The disk LUNs of the iSCSI connections (only: one connection id, or NULL). */
json_t *keel_hsm_storage_devices(struct keel_hsm *h, const char *only);
/* The domains on every connection, read now. */
json_t *keel_hsm_storage_domains(struct keel_hsm *h);

/* The file system of a file connection (borrowed: valid while it is connected). */
int keel_hsm_storage_fs(struct keel_hsm *h, const char *conn_id, struct keel_fs **ret,
                        struct keel_error *err);
/* A LUN by device id or URL (borrowed), and its device id. */
int keel_hsm_storage_lun(struct keel_hsm *h, const char *lun, struct keel_blockdev **ret,
                         char *devid, size_t devid_cap, struct keel_error *err);

#endif /* KEEL_HSM_STORAGE_H */
