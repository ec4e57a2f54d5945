/* clock: monotonic time, in the units the event loops and the histogram use. */
#ifndef WHARF_CLOCK_H
#define WHARF_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Millisecond clock for timeouts; the coarse clock is a vDSO read of a tick-updated
 * value, cheap enough to call once per loop iteration. */
static inline uint64_t clock_ms_coarse(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline uint64_t clock_ms(void) { return clock_ns() / 1000000u; }

#endif
