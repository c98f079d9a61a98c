/*
 * Clocks.  Keel times things only with its own monotonic clocks: no wall
 * clock is ever compared, between hosts or within one.
 *
 * keel_now_ns()      CLOCK_MONOTONIC: timeouts and deadlines of I/O.
 * keel_boottime_ns() CLOCK_BOOTTIME: lease deadlines; unlike MONOTONIC it
 *                    keeps counting while the machine is suspended.
 */
#ifndef KEEL_COMMON_MONOTIME_H
#define KEEL_COMMON_MONOTIME_H

#include <stdint.h>

#define KEEL_NS_PER_MS UINT64_C(1000000)
#define KEEL_NS_PER_S UINT64_C(1000000000)

uint64_t keel_now_ns(void);
uint64_t keel_boottime_ns(void);

/* Sleep for ms milliseconds (restarts after signals). */
void keel_sleep_ms(unsigned ms);

/*
 * The clock of leases and of the fences that follow them (spm/, io/fence.c):
 * CLOCK_BOOTTIME and real sleeps, or -- for simulations that run many
 * lease lifetimes in a second (tests/unit/test_spm_sim.c) -- a simulated
 * clock whose sleeps only move it forward.  Set it before any lease exists.
 */
uint64_t keel_lease_clock_ns(void);
void keel_lease_clock_sleep_ms(unsigned ms);

struct keel_sim_clock {
    uint64_t (*now_ns)(void *opaque);
    void (*sleep_ms)(void *opaque, unsigned ms);
    void *opaque;
};
/* NULL: the real clock again.  c is borrowed until then. */
void keel_lease_clock_simulate(const struct keel_sim_clock *c);

#endif /* KEEL_COMMON_MONOTIME_H */
