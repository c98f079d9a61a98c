/*
 * Storage pools (data centers) and their master domain, in oVirt's form
 * (../shared/specs/ovirt-storage-format.md section 6): a domain names its
 * pool in POOL_UUID; the master domain has ROLE=Master and the pool keys
 * in its own metadata -- POOL_DESCRIPTION, POOL_DOMAINS
 * ("<sd>:Active,<sd>:Attached"), MASTER_VERSION, POOL_SPM_ID,
 * POOL_SPM_LVER -- and, on file domains, the master/{vms,tasks} tree.
 *
 * Only the SPM calls these (its connections fenced by the SDM lease).
 * Changes of two domains are journalled on the master's journal when one
 * is given (spm/journal.h), and ordered so that each step can be redone:
 *
 *   attach   domain: POOL_UUID=pool (ROLE=Regular) -> master: +<sd>:Attached
 *   detach   master: -<sd> -> domain: POOL_UUID=""
 *   master   new: ROLE=Master, pool keys, MASTER_VERSION+1 -> old: ROLE=Regular,
 *            MASTER_VERSION=0 (the higher MASTER_VERSION is the master
 *            while both say Master)
 *
 * A domain in POOL_DOMAINS is Attached (known, not in use) or Active.
 *   (none) --attach--> Attached --activate--> Active --deactivate--> Attached
 *   Attached --detach--> (none)
 * The master is Active and cannot be deactivated or detached: move the
 * master role first.
 */
#ifndef KEEL_SPM_POOL_H
#define KEEL_SPM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/uuid.h"
#include "spm/journal.h"
#include "volume/sd.h"

#define KEEL_POOL_MAX_DOMAINS 64

struct keel_pool_domain {
    char uuid[KEEL_UUID_LEN + 1];
    bool active;
};

struct keel_pool_info {
    char uuid[KEEL_UUID_LEN + 1];
    char master[KEEL_UUID_LEN + 1]; /* the master domain this was read from */
    char name[128];
    uint64_t master_version;
    int64_t spm_id, spm_lver;      /* -1: none */
    size_t ndomains;
    struct keel_pool_domain domains[KEEL_POOL_MAX_DOMAINS];
};

/* The pool keys of a master domain; KEEL_E_INVAL when it is not a master. */
int keel_pool_info(struct keel_sd *master, struct keel_pool_info *out, struct keel_error *err);

/*
 * Make `master` the master domain of a new pool.  Refused (KEEL_E_BUSY)
 * when it belongs to another pool, unless force.
 */
int keel_pool_create(struct keel_sd *master, const char *pool_uuid, const char *name, bool force,
                     struct keel_error *err);

/*
 * Attach sd to master's pool (Attached).  Refused when sd belongs to
 * another pool ("storage domain X belongs to pool Y"), unless force: the
 * import of a domain from a lost data center takes it over.  j may be NULL.
 */
int keel_pool_attach(struct keel_sd *master, struct keel_sd *sd, bool force,
                     struct keel_journal *j, struct keel_error *err);
int keel_pool_activate(struct keel_sd *master, const char *sd_uuid, struct keel_error *err);
int keel_pool_deactivate(struct keel_sd *master, const char *sd_uuid, struct keel_error *err);
int keel_pool_detach(struct keel_sd *master, struct keel_sd *sd, struct keel_journal *j,
                     struct keel_error *err);

/* Move the master role from `old` to `to` (an Active domain of the pool). */
int keel_pool_move_master(struct keel_sd *old, struct keel_sd *to, struct keel_journal *j,
                          struct keel_error *err);

/*
 * Reconstruct the master on `to` when the old master is gone (unreadable):
 * from the pool as last known (`last`, e.g. the SPM's or the engine's
 * copy), `to` becomes master with MASTER_VERSION + 1 and the old master
 * is listed Attached.  Journalled as pool.master, so that a recovery that
 * can reach the old master demotes it.
 */
int keel_pool_reconstruct(struct keel_sd *to, const struct keel_pool_info *last,
                          struct keel_journal *j, struct keel_error *err);

/* Destroy the pool: only its master may be left in it; the master becomes a plain domain. */
int keel_pool_destroy(struct keel_sd *master, struct keel_error *err);

/* Record the SPM (host id and lease version of SDM) in the pool keys. */
int keel_pool_spm_started(struct keel_sd *master, uint64_t host_id, uint64_t lver,
                          struct keel_error *err);

/*
 * Fault injection for tests (tests/functional/journal_worker.c kills itself
 * there): called at each step boundary of a journalled change -- 0 the
 * record written, 1 the first domain written, 2 the second -- with the
 * operation's name.  NULL (the default) for none.
 */
typedef void keel_pool_probe_fn(const char *op, unsigned step);
void keel_pool_set_probe(keel_pool_probe_fn *fn);

/*
 * Recovery of journalled pool changes: install with
 * keel_journal_set_handler(j, keel_pool_recover_record, &rec).  open
 * gives another domain of the pool by UUID (NULL with err when it cannot
 * be reached), its connections gated by `fence` when it is not NULL (the
 * SPM's: keel_spm_start sets it); close gives it back.  Each change is
 * finished.
 */
struct keel_fence;
struct keel_pool_recovery {
    struct keel_sd *master;
    struct keel_fence *fence;
    struct keel_sd *(*open)(void *opaque, struct keel_fence *fence, const char *sd_uuid,
                            struct keel_error *err);
    void (*close)(void *opaque, struct keel_sd *sd);
    void *opaque;
};
int keel_pool_recover_record(void *recovery, const struct keel_jrec *r, bool *rolled_back,
                             struct keel_error *err);

#endif /* KEEL_SPM_POOL_H */
