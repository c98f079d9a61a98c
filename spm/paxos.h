/*
 * Disk-paxos resource leases (the SPM lease `SDM`, volume leases) in
 * sanlock's format and algorithm (../shared/specs/sanlock-leases.md 3, 5.3).
 * Exclusive mode only.  A host takes part through its delta lease
 * (spm/delta.h): its host id is its ballot slot, its generation tells its
 * incarnations apart, and its view of other hosts' delta leases decides
 * when an owner is dead.
 *
 * Invariants:
 *   1. A lease owned by another host is balloted for only when that owner
 *      released it, its host id changed hands (another generation or
 *      owner), or its delta lease has been seen unchanged for host-dead
 *      (8N + slack): never while the owner may still write.
 *   2. A ballot writes our dblock (phase 1: mbal, phase 2: bal and value)
 *      and reads every dblock after each write; a higher mbal or lver
 *      aborts it; a value already chosen by another host is carried on.
 *   3. The leader is written only after phase 2, with lver one higher: lver
 *      only grows, and is the fencing token (POOL_SPM_LVER).
 *
 *   free/dead owner --ballot (phase 1, 2)--> commit leader lver+1 --> OWNED
 *   OWNED --release: dblock RELEASED, leader timestamp 0--> free
 */
#ifndef KEEL_SPM_PAXOS_H
#define KEEL_SPM_PAXOS_H

#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"
#include "spm/delta.h"

struct keel_paxos_owner {
    uint64_t host_id;      /* 0: free */
    uint64_t generation;
    uint64_t timestamp;    /* the owner's clock: opaque */
    uint64_t lver;
};

/*
 * Take the resource `resource` of lockspace `lockspace` at `offset` of dev
 * for the host of `me`.  On success *got is the new owner record (us) with
 * its lver.  KEEL_E_BUSY when a live host owns it ("... owned by host 2
 * generation 1, alive") or another host won the ballot; the caller retries
 * later.  dev is borrowed; me must be valid (keel_delta_valid).
 */
int keel_paxos_acquire(struct keel_delta *me, struct keel_blockdev *dev, uint64_t offset,
                       const char *lockspace, const char *resource,
                       struct keel_paxos_owner *got, struct keel_error *err);

/* Release what keel_paxos_acquire gave (held). */
int keel_paxos_release(struct keel_delta *me, struct keel_blockdev *dev, uint64_t offset,
                       const char *lockspace, const char *resource,
                       const struct keel_paxos_owner *held, struct keel_error *err);

/* The current owner as the leader says (host_id 0: free). */
int keel_paxos_owner(struct keel_blockdev *dev, uint64_t offset, const char *lockspace,
                     const char *resource, struct keel_paxos_owner *out, struct keel_error *err);

#endif /* KEEL_SPM_PAXOS_H */
