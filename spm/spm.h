/*
 * struct keel_spm: this host as the SPM of a pool.  Starting it takes the
 * SDM lease on the master domain, fences the connections the SPM writes
 * metadata through, records the SPM in the pool keys, and -- before any
 * new work -- recovers the journal of every domain of the pool; then each
 * domain journals its multi-step operations (spm/journal.h).
 *
 *   keel_spm_start:  SDM lease -> fences armed -> POOL_SPM_ID/LVER
 *                    -> recover every journal -> journals installed
 *   keel_spm_stop:   journals off -> fences removed (shut) -> SDM released
 *
 * If the lease is lost, every write on the fenced connections fails with
 * io.fenced: the SPM is over and must be stopped (and started again only
 * by taking the lease anew).
 */
#ifndef KEEL_SPM_SPM_H
#define KEEL_SPM_SPM_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "spm/delta.h"
#include "spm/journal.h"
#include "spm/pool.h"
#include "volume/sd.h"

/* A connection the SPM writes metadata through: a LUN or a file system. */
struct keel_spm_conn {
    struct keel_blockdev *dev;
    struct keel_fs *fs;
};

struct keel_spm_config {
    struct keel_delta *me;             /* this host's id in the master's lockspace */
    struct keel_blockdev *leases;      /* the master's leases area, on a lease connection */
    uint64_t sdm_offset;               /* SDM in it (1 x alignment) */
    struct keel_sd *master;            /* on a metadata connection */
    struct keel_sd *const *domains;    /* the pool's other domains, on metadata connections */
    size_t ndomains;
    const struct keel_spm_conn *conns; /* every metadata connection: fenced */
    size_t nconns;
    struct keel_pool_recovery resolver; /* opens domains for pool.* recovery (master is set) */
};

struct keel_spm;

/* Become SPM (see above).  rep (may be NULL) sums what recovery did. */
int keel_spm_start(const struct keel_spm_config *c, struct keel_spm **ret,
                   struct keel_journal_report *rep, struct keel_error *err);

uint64_t keel_spm_lver(const struct keel_spm *s);
/* The SDM lease's fence, for another connection the SPM writes through. */
struct keel_fence;
struct keel_fence *keel_spm_fence(struct keel_spm *s);
/* 0 while the SPM may write; KEEL_E_FENCED once its lease is ending or lost. */
int keel_spm_check(struct keel_spm *s, struct keel_error *err);
/* The journal of domain sd_uuid (for pool changes), or NULL. */
struct keel_journal *keel_spm_journal(struct keel_spm *s, const char *sd_uuid);

/*
 * A domain activated while this host is SPM: every connection of conns
 * [0, n) fenced first (they stay fenced until the SPM stops or the domain
 * is removed), then its journal recovered and installed.  sd and the
 * connections must stay open while it is a domain of s.
 */
int keel_spm_add_domain(struct keel_spm *s, struct keel_sd *sd, const struct keel_spm_conn *conns,
                        size_t nconns, struct keel_journal_report *rep, struct keel_error *err);
/*
 * A domain deactivated or detached: its journal closed (not the master's)
 * and conns [0, n) unfenced and forgotten, so that they may be closed.
 */
void keel_spm_remove_domain(struct keel_spm *s, const char *sd_uuid,
                            const struct keel_spm_conn *conns, size_t nconns);

/* Stop being SPM and free s. */
int keel_spm_stop(struct keel_spm *s, struct keel_error *err);
/* Forget s without writing anything (the host died; tests). */
void keel_spm_abandon(struct keel_spm *s);

#endif /* KEEL_SPM_SPM_H */
