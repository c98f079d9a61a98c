/*
 * keeld's storage pool (pool.c): the one pool this host is connected to,
 * the lockspaces it joined, and the SPM when this host is it.
 *
 *   StoragePool.connect  join the lockspace (delta lease, spm/delta.h) of
 *                        the master and of every Active domain, each on a
 *                        lease connection of its own (keel_hsm_own)
 *   StoragePool.spmStart the SDM lease on the master (spm/spm.h); the SPM
 *                        writes metadata through connections of its own,
 *                        fenced by that lease, with every domain's journal
 *   Volume.* changes     keel_hsm_writer_get(): the SPM's domain when this
 *                        host is SPM of the domain's pool; the cached domain
 *                        when the domain is in no pool; else refused
 *
 * Why connections of their own: a fence gates every write of a connection
 * (io/fence.h).  The lease renewals must never be gated by the lease they
 * renew, and a lost SPM lease must stop the SPM's metadata writes but not
 * the reads of the monitor or a job's writes under its volume leases.
 *
 * Lock order: the pool lock, then a domain's (keel_hsm_dom_get), then the
 * registry's.  Nothing takes the pool lock with a domain held.
 */
#ifndef KEEL_HSM_POOL_H
#define KEEL_HSM_POOL_H

#include <jansson.h>

#include "common/error.h"
#include "io/blockdev.h"
#include "spm/delta.h"
#include "volume/sd.h"

struct keel_hsm;
struct keel_hsm_dom;
struct keel_hsm_pool;

int keel_hsm_pool_new(struct keel_hsm *h, struct keel_hsm_pool **ret, struct keel_error *err);
/* Stop the SPM (releasing its lease) and leave every lockspace; free. */
void keel_hsm_pool_free(struct keel_hsm_pool *p);
struct keel_hsm_pool *keel_hsm_pool(struct keel_hsm *h);

/* What a change of a domain's metadata goes through; see above. */
struct keel_hsm_writer {
    struct keel_sd *sd;
    struct keel_hsm_dom *d;         /* the cached domain (no pool), or NULL */
    struct keel_hsm_pool *spm;      /* the pool (its lock held) when through the SPM */
};
int keel_hsm_writer_get(struct keel_hsm *h, const char *sd_uuid, struct keel_hsm_writer *w,
                        struct keel_error *err);
void keel_hsm_writer_put(struct keel_hsm *h, struct keel_hsm_writer *w);

/*
 * This host's membership of domain sd_uuid's lockspace (joined now when
 * it was not; the domain must be Active in the connected pool): its delta
 * lease, which volume leases of that domain are taken with.
 * Valid while the pool stays connected; jobs hold a pin
 * (keel_hsm_pool_unpin) so that it does.
 */
int keel_hsm_pool_lockspace(struct keel_hsm *h, const char *sd_uuid, struct keel_delta **delta,
                            struct keel_error *err);
void keel_hsm_pool_unpin(struct keel_hsm *h);

/* The pool part of Host.getStats: pool, SPM state, lockspaces. */
json_t *keel_hsm_pool_stats(struct keel_hsm *h);

#endif /* KEEL_HSM_POOL_H */
