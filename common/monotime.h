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

#endif /* KEEL_COMMON_MONOTIME_H */
