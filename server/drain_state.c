#include "drain_state.h"

#include <stdatomic.h>

#include "../common/log.h"
#include "sd.h"

/* Written by the main thread only; see the handoff in drain_state.h. */
static _Atomic int phase = DRAIN_SERVING;

void drain_state_set(enum drain_phase p)
{
    atomic_store_explicit(&phase, (int)p, memory_order_release);
}

void drain_state_begin_delay(const char *why, uint64_t delay_ms, uint64_t active)
{
    double delay = (double)delay_ms / 1000.0;
    drain_state_set(DRAIN_DELAY);
    log_info("%s: draining: GET /healthz answers 503 and HTTP responses say Connection: close "
             "for %.1f s (--drain-delay), then no new connections", why, delay);
    sd_notify("STOPPING=1\nSTATUS=draining: /healthz answers 503 for %.1f s (--drain-delay), "
              "then stops accepting; %llu connections", delay, (unsigned long long)active);
}

uint64_t drain_grace_ms(uint64_t shutdown_timeout_ms)
{
    return shutdown_timeout_ms < DRAIN_GRACE_MS ? shutdown_timeout_ms : DRAIN_GRACE_MS;
}

enum drain_phase drain_state_get(void)
{
    return (enum drain_phase)atomic_load_explicit(&phase, memory_order_acquire);
}

const char *drain_phase_name(enum drain_phase p)
{
    switch (p) {
    case DRAIN_SERVING:
        return "serving";
    case DRAIN_DELAY:
        return "delay";
    case DRAIN_DRAINING:
        return "draining";
    }
    return "?";
}
