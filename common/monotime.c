/* Monotonic clocks; see monotime.h. */
#include <errno.h>
#include <time.h>

#include "common/monotime.h"

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * KEEL_NS_PER_S + (uint64_t)ts.tv_nsec;
}

uint64_t keel_now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

uint64_t keel_boottime_ns(void)
{
    return clock_ns(CLOCK_BOOTTIME);
}

void keel_sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const struct keel_sim_clock *sim;

uint64_t keel_lease_clock_ns(void)
{
    const struct keel_sim_clock *c = __atomic_load_n(&sim, __ATOMIC_ACQUIRE);

    return c != NULL ? c->now_ns(c->opaque) : keel_boottime_ns();
}

void keel_lease_clock_sleep_ms(unsigned ms)
{
    const struct keel_sim_clock *c = __atomic_load_n(&sim, __ATOMIC_ACQUIRE);

    if (c != NULL)
        c->sleep_ms(c->opaque, ms);
    else
        keel_sleep_ms(ms);
}

void keel_lease_clock_simulate(const struct keel_sim_clock *c)
{
    __atomic_store_n(&sim, c, __ATOMIC_RELEASE);
}
