/*
 * struct keel_lease: a paxos resource lease this host holds (the SPM lease
 * `SDM`, a volume lease) together with the fence that gates the writes it
 * protects.  What a lease holder hands to the code that writes: attach
 * keel_lease_fence() to the connections of the protected metadata
 * (keel_blockdev_set_fence(), keel_fs_set_fence()), and every write on
 * them is refused once the lease is near its end, and cut off at its end.
 *
 * The fence follows the host's delta lease (spm/delta.h): open while the
 * host id is held; writes may start until one io timeout before the
 * deadline (8N after the last renewal) and are aborted at the deadline;
 * a lease that expired stays shut for good.  Other hosts may take the
 * resource only 8N + slack after the last renewal they saw, so every
 * write of ours ends at least `slack` before (docs/leases.md).
 *
 *   keel_lease_acquire --> HELD (fence open) --deadline or release--> fence shut
 *
 * Not thread-safe, except keel_lease_check() and the fence.
 */
#ifndef KEEL_SPM_LEASE_H
#define KEEL_SPM_LEASE_H

#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"
#include "spm/delta.h"
#include "spm/paxos.h"

struct keel_lease;
struct keel_fence;

/*
 * Take resource `resource` of `lockspace` at `offset` of dev (the SDM
 * resource at 1 MiB of the master domain's leases area, or a volume
 * lease) as the host of `me`, and open its fence.  KEEL_E_BUSY when a live
 * host holds it.  me and dev are borrowed and must outlive the lease.
 */
int keel_lease_acquire(struct keel_delta *me, struct keel_blockdev *dev, uint64_t offset,
                       const char *lockspace, const char *resource, struct keel_lease **ret,
                       struct keel_error *err);

/* The fence of the lease's writes: borrowed, lives as long as the lease. */
struct keel_fence *keel_lease_fence(struct keel_lease *l);

/* The lease version we hold it with: the fencing token (POOL_SPM_LVER for SDM). */
uint64_t keel_lease_lver(const struct keel_lease *l);
const char *keel_lease_resource(const struct keel_lease *l);

/* 0 while a protected write may start now; KEEL_E_FENCED otherwise. */
int keel_lease_check(struct keel_lease *l, struct keel_error *err);

/*
 * Shut the fence, then release the resource on disk -- only while the
 * host id is still valid: a lease that expired may belong to another
 * host by now, and nothing is written.  Frees l either way.
 */
int keel_lease_release(struct keel_lease *l, struct keel_error *err);

/* Shut the fence and forget the lease without writing (a dying host). */
void keel_lease_free(struct keel_lease *l);

#endif /* KEEL_SPM_LEASE_H */
