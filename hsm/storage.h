/*
 * keeld's storage registry (storage.c): the storage server connections,
 * the cache of the domains found on them, and the domain monitor.  The
 * JSON results are new references.  Locks: see hsm.h.
 */
#ifndef KEEL_HSM_STORAGE_H
#define KEEL_HSM_STORAGE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/uuid.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "volume/sd.h"

struct keel_hsm;

struct keel_hsm_storage;

int keel_hsm_storage_new(struct keel_hsm *h, struct keel_hsm_storage **ret,
                         struct keel_error *err);
void keel_hsm_storage_free(struct keel_hsm_storage *s);
struct keel_hsm_storage *keel_hsm_storage(struct keel_hsm *h);

/* A domain found on a connection, with its lock held while in use. */
struct keel_hsm_dom {
    char uuid[KEEL_UUID_LEN + 1];
    struct keel_sd *sd;
    char conn_id[72];               /* the connection it was found on (block: the first LUN's) */
    pthread_mutex_t lock;
    unsigned refs;                  /* registry lock */
    /* monitor (registry lock) */
    bool valid;
    char error[KEEL_ERR_MSG];
    uint64_t capacity, free_bytes, delay_ms, checked_ns;
};

/*
 * The domain sd_uuid with its lock held: found in the cache, else by
 * scanning the connections.  A block domain's VG is re-read when its
 * seqno moved (another host changed it).  KEEL_E_NOENT when no connected
 * server has it.  Give it back with keel_hsm_dom_put().
 */
int keel_hsm_dom_get(struct keel_hsm *h, const char *sd_uuid, struct keel_hsm_dom **ret,
                     struct keel_error *err);
void keel_hsm_dom_put(struct keel_hsm *h, struct keel_hsm_dom *d);
/* Drop a domain from the cache (formatted); d must be held, and is put. */
void keel_hsm_dom_forget(struct keel_hsm *h, struct keel_hsm_dom *d);

/*
 * 0 when this host may change d's shared metadata (volumes, LVM, domain
 * metadata) through the domain cache: the domain belongs to no pool.  In
 * a pool only its SPM may, through its own connections
 * (keel_hsm_writer_get, pool.h): KEEL_E_PERM names the pool.
 */
int keel_hsm_dom_may_change(struct keel_hsm_dom *d, struct keel_error *err);

/*
 * Connections of its own to domain sd_uuid's storage, opened with the
 * URLs (and credentials) of the connections it was found on, and the
 * domain opened on them: a lease's fence (io/fence.h) gates every write
 * of a connection, so the SPM's metadata writes, a job's writes under a
 * volume lease and the lease renewals each go through their own.
 */
struct keel_hsm_own {
    struct keel_fs *fs;             /* file domains */
    struct keel_blockdev **devs;    /* block domains: its LUNs */
    size_t ndevs;
    struct keel_sd *sd;
};
/* timeout_ms: of each request (lease connections: within the lease's N); 0: keeld's. */
int keel_hsm_own_open(struct keel_hsm *h, const char *sd_uuid, unsigned timeout_ms,
                      struct keel_hsm_own *o, struct keel_error *err);
void keel_hsm_own_close(struct keel_hsm_own *o);
/* Gate every write of o's connections with f (NULL: none). */
struct keel_fence;
void keel_hsm_own_fence(struct keel_hsm_own *o, struct keel_fence *f);

/* The domain info as JSON (a new reference); d held. */
json_t *keel_hsm_dom_info_json(struct keel_hsm_dom *d, struct keel_error *err);
/* Monitor stats of every cached domain, for Host.getStats. */
json_t *keel_hsm_storage_stats(struct keel_hsm *h);


/* Connect each of conns (checked by the dispatch); per-connection status. */
json_t *keel_hsm_storage_connect(struct keel_hsm *h, json_t *conns);
json_t *keel_hsm_storage_disconnect(struct keel_hsm *h, const char *const *ids, size_t n);
json_t *keel_hsm_storage_list(struct keel_hsm *h);
/* The disk LUNs of the iSCSI connections (only: one connection id, or NULL). */
json_t *keel_hsm_storage_devices(struct keel_hsm *h, const char *only);
/* The domains on every connection, read now. */
json_t *keel_hsm_storage_domains(struct keel_hsm *h);

/*
 * The file system of a file connection and its remote path as oVirt
 * writes it (REMOTE_PATH); the connection is pinned (not disconnected)
 * until keel_hsm_storage_unpin(*pin).
 */
struct keel_hsm_pin;
int keel_hsm_storage_fs(struct keel_hsm *h, const char *conn_id, struct keel_fs **ret,
                        char *remote_path, size_t remote_cap, struct keel_hsm_pin **pin,
                        struct keel_error *err);
/* A LUN by device id or URL, and its device id; its connection pinned the same way. */
int keel_hsm_storage_lun(struct keel_hsm *h, const char *lun, struct keel_blockdev **ret,
                         char *devid, size_t devid_cap, struct keel_hsm_pin **pin,
                         struct keel_error *err);
void keel_hsm_storage_unpin(struct keel_hsm *h, struct keel_hsm_pin *pin);

#endif /* KEEL_HSM_STORAGE_H */
