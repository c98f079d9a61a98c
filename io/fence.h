/*
 * struct keel_fence: the gate every write of a lease holder passes.
 *
 * A lease (spm/) opens the fence with two deadlines on this host's lease
 * clock (keel_lease_clock_ns(): CLOCK_BOOTTIME, or a test's simulated one):
 *   start_until   a write may be started only before this (the lease's
 *                 deadline less one io timeout, so a write that starts
 *                 has time to land);
 *   valid_until   the lease's own deadline: a write still in flight then
 *                 is failed and its session torn down (the TCP connection
 *                 closed, so the server drops what it queued), and from
 *                 then on the fence stays shut until the lease arms it again.
 * Renewals move both forward (keel_fence_extend) but never reopen a fence
 * that expired or was shut: a holder that was stopped past its deadline
 * (SIGSTOP, a stalled disk) may have lost the lease to another host and
 * writes nothing more.
 *
 * A fence is attached to a connection (keel_blockdev_set_fence(),
 * keel_fs_set_fence()); it then covers every request that changes data on
 * that connection -- writes, zeroes, discards, truncates and namespace
 * changes -- while reads and flushes pass.  Leases keep their own
 * connections, unfenced, to renew.
 *
 *   SHUT --arm--> OPEN --now >= start_until--> DRAINING --now >= valid_until--> SHUT
 *    ^             |  \--extend (before valid_until)--> OPEN        |
 *    +-- shut -----+------------------------------------------------+
 *
 * Thread-safe; the fence must outlive every connection it is attached to.
 */
#ifndef KEEL_IO_FENCE_H
#define KEEL_IO_FENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

struct keel_fence;

/* A shut fence named `what` (copied; "SPM lease of pool 5e1c..."), or NULL. */
struct keel_fence *keel_fence_new(const char *what);
void keel_fence_free(struct keel_fence *f);

/* Open the fence (a lease was just taken).  Times: lease clock ns. */
void keel_fence_arm(struct keel_fence *f, uint64_t start_until, uint64_t valid_until);

/*
 * Move the deadlines forward after a renewal.  false (and nothing moves)
 * when the fence is shut or valid_until has passed: it stays shut.
 */
bool keel_fence_extend(struct keel_fence *f, uint64_t start_until, uint64_t valid_until);

/* Shut now (release, or a renewal found the lease taken). */
void keel_fence_shut(struct keel_fence *f, const char *why);

/* 0 when a write may start now; otherwise -1 with KEEL_E_FENCED and why. */
int keel_fence_check(struct keel_fence *f, struct keel_error *err);

/*
 * The time (lease clock ns) by which writes in flight must be done;
 * 0 when the fence is shut (or expired), so every write must stop now.
 */
uint64_t keel_fence_valid_until(struct keel_fence *f);

/* Writes refused or aborted by the fence so far (for logs and tests). */
uint64_t keel_fence_refused(struct keel_fence *f);
void keel_fence_count_refused(struct keel_fence *f);

#endif /* KEEL_IO_FENCE_H */
