/*
 * struct keel_delta: one host's delta lease in a lockspace -- its host id
 * in the domain's `ids` area -- in sanlock's on-disk format and algorithm
 * (../shared/specs/sanlock-leases.md sections 0, 2, 5.2).  What the SPM
 * lease and volume leases stand on: a paxos lease names its owner by host
 * id and generation, and is free for others once that host's delta lease
 * is dead.
 *
 * Timings (N = io_timeout, in seconds; oVirt: N = 10, slack = 60):
 *   renewal interval   2N    a renewal is due this long after the last
 *   fail               8N    the holder's own deadline: past it the lease
 *                            is lost (keel_delta_valid() says no) and the
 *                            holder must have stopped every write
 *   host dead          8N + slack
 *                            another host may take the id (or the
 *                            holder's paxos leases) only after seeing no
 *                            renewal for this long
 * The slack stands for sanlock's watchdog (60 s): the time a holder that
 * missed its fail deadline may still need to stop its writes.
 *
 * Clocks: only this host's lease clock (keel_lease_clock_ns(): CLOCK_BOOTTIME,
 * or a test's simulated one), in whole seconds; timestamps
 * that other hosts wrote are opaque values compared for change only.
 *
 * Invariants:
 *   1. Acquire writes the record only after the id was seen free, ours
 *      (same unique name: a restart), or unchanged for a host-dead time;
 *      then waits 2N and must read back exactly what it wrote.
 *   2. A renewal first reads the whole area and checks that our record is
 *      still exactly what we wrote last; any difference ends the lease at
 *      once (another host took the id).
 *   3. last_success is the timestamp taken *before* the renewal write, so
 *      the local deadline is never later than what others compute.
 *   4. Once the deadline passes the lease is lost for good (as sanlock's
 *      lockspace fails): a renewal that lands late does not revive it,
 *      since another host may have waited it out and taken its leases;
 *      release writes nothing then.  The fences that follow the lease
 *      (keel_delta_add_fence) shut at that moment.
 *
 *   (none) --acquire: read, [wait dead], write, wait 2N, read--> HELD
 *   HELD --renew every 2N--> HELD        HELD --8N without renewal--> LOST (for good)
 *   HELD --release: timestamp 0--> (none)    LOST --release--> (none)
 *
 * The block device must time its I/O out within N (keel_io_opts.timeout_ms)
 * so that a stalled storage fails renewals in time.  Not thread-safe except
 * keel_delta_valid() and keel_delta_host_state(), which the renewal thread
 * and its readers may call concurrently.
 */
#ifndef KEEL_SPM_DELTA_H
#define KEEL_SPM_DELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"

struct keel_delta_timing {
    unsigned io_timeout;     /* N, seconds; 0: 10 (oVirt's) */
    unsigned slack;          /* seconds added to 8N before a host is dead; 0: 60 */
};

enum keel_host_state {
    KEEL_HOST_FREE,     /* timestamp 0: nobody holds the id */
    KEEL_HOST_UNKNOWN,  /* held, but no change seen yet and less than 8N since the first look */
    KEEL_HOST_LIVE,     /* a renewal seen within 8N */
    KEEL_HOST_FAIL,     /* no renewal for 8N */
    KEEL_HOST_DEAD,     /* no renewal for 8N + slack: its leases may be taken */
};

const char *keel_host_state_name(enum keel_host_state s);

/* A lease timestamp: this host's lease clock in seconds, never 0 (0 is "free"). */
uint64_t keel_lease_now(void);

struct keel_delta;

/*
 * Join lockspace `lockspace` (the area at `offset` of dev, initialised by
 * keel_sanlock_write_lockspace) as host_id, under unique_name (at most 48
 * bytes; unique per incarnation, e.g. "<uuid>.<host>").  Blocks for 2N,
 * or host-dead + 2N when another name holds the id.  KEEL_E_BUSY when a
 * live host holds it or another host raced us and won.  dev is borrowed.
 */
int keel_delta_acquire(struct keel_blockdev *dev, uint64_t offset, const char *lockspace,
                       uint64_t host_id, const char *unique_name,
                       const struct keel_delta_timing *t, struct keel_delta **ret,
                       struct keel_error *err);

/* One renewal now (see invariant 2).  After a "corrupt" failure the lease is lost. */
int keel_delta_renew(struct keel_delta *d, struct keel_error *err);

/* Renew in a thread every 2N (retrying every 0.5 s after a failure). */
int keel_delta_start(struct keel_delta *d, struct keel_error *err);

/* Stop the renewal thread (the lease then expires: a stalled host). */
void keel_delta_stop(struct keel_delta *d);

/*
 * True while the lease holds: less than 8N since the last successful
 * renewal and nothing found it taken.  *left_ms (may be NULL) gets the time
 * to the local deadline.  Call before every metadata write.
 */
bool keel_delta_valid(struct keel_delta *d, uint64_t *left_ms);

/* The state of another host id, from the last area read. */
enum keel_host_state keel_delta_host_state(struct keel_delta *d, uint64_t host_id);

/* The generation we hold the id with, and the id. */
uint64_t keel_delta_generation(const struct keel_delta *d);
uint64_t keel_delta_host_id(const struct keel_delta *d);

/*
 * Read another host's delta record now (owner id, generation, timestamp,
 * name), from the lockspace this lease is in.
 */
struct keel_sanlock_leader;
int keel_delta_read_host(struct keel_delta *d, uint64_t host_id, struct keel_sanlock_leader *l,
                         struct keel_error *err);

/*
 * Make f (io/fence.h) follow this lease: armed now with start_until =
 * deadline - N and valid_until = the deadline, moved forward by each
 * renewal, shut when the lease is lost or released.  The SPM lease and
 * volume leases each add the fence of their writes.  KEEL_E_PERM when
 * the lease is not held.  At most 64 fences.
 */
struct keel_fence;
int keel_delta_add_fence(struct keel_delta *d, struct keel_fence *f, struct keel_error *err);
/* Stop f following the lease, and shut it. */
void keel_delta_remove_fence(struct keel_delta *d, struct keel_fence *f);

/* Stop renewing and free the id (timestamp 0).  d stays to be freed. */
int keel_delta_release(struct keel_delta *d, struct keel_error *err);

/* Stop renewing (without releasing: as if the host died) and free d. */
void keel_delta_free(struct keel_delta *d);

#endif /* KEEL_SPM_DELTA_H */
