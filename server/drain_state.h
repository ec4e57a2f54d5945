/* drain_state: where the process is in its stop sequence, the one value the main thread
 * publishes to every other thread.
 *
 *   serving --SIGTERM, --drain-delay > 0--> delay --delay over--> draining --> exit
 *   serving --SIGTERM, no delay-----------------------------------^
 *
 * delay is the lame-duck phase: GET /healthz answers 503 so that a balancer's health
 * check takes this server out of its pool, every HTTP response says "Connection: close"
 * (and the connection closes after it) so kept-alive clients reconnect elsewhere, and
 * everything else is served as before: listeners stay open, frame/line/raw connections
 * are untouched. draining is the shutdown as it was before the delay existed: stop
 * accepting, answer what was received, close, exit within --shutdown-timeout. With
 * --defer-accept (the default) "stop accepting" waits for the grace (drain_grace_ms):
 * when the kernel holds connections for them (syn_queue.h), the listeners accept until
 * the grace ends (TCP_DEFER_ACCEPT kept on: what they accept comes with its request), so that a client that
 * connected but had not sent yet (the kernel still held it) is served, not reset by the
 * listener's close.
 *
 * The handoff: the main thread is the only writer (drain_state_set, a release store),
 * and the phase only moves forward. Workers do not poll it: after each change the main
 * thread wakes every worker through its handoff eventfd (handoff.h), and the worker
 * reads the phase (an acquire load) in worker_take_handoff, so serving a request costs
 * nothing more. The stats pages read it when they are rendered, from any thread. */
#ifndef WHARF_DRAIN_STATE_H
#define WHARF_DRAIN_STATE_H

#include <stdint.h>

enum drain_phase {
    DRAIN_SERVING,  /* normal service */
    DRAIN_DELAY,    /* --drain-delay: /healthz says 503, HTTP says Connection: close */
    DRAIN_DRAINING, /* listeners closed, connections finishing (--shutdown-timeout) */
};

/* Main thread only: move on to phase p (never back). The caller then wakes the workers. */
void drain_state_set(enum drain_phase p);

/* Main thread only: the delay phase begins (why: what started it, a signal's name) for
 * delay_ms, which the log and systemd (STOPPING=1, STATUS=) are told, with the number of
 * connections open. The caller then wakes the workers. */
void drain_state_begin_delay(const char *why, uint64_t delay_ms, uint64_t active);

/* Any thread: the phase now. */
enum drain_phase drain_state_get(void);

/* How long draining waits for the first request of a connection that has sent nothing
 * yet (connected just before the stop, in a rolling restart): DRAIN_GRACE_MS, never
 * more than the shutdown timeout. With TCP_DEFER_ACCEPT the listeners stay open that
 * long too when such a client may still be in the kernel's SYN queue (worker.c). */
#define DRAIN_GRACE_MS 1000
/* What the log says when the listeners stay open for the grace (tests look for it). */
#define DRAIN_KEEP_LISTENING "the kernel holds connections not yet accepted: listening on " \
                             "through the drain's grace"
uint64_t drain_grace_ms(uint64_t shutdown_timeout_ms);

/* "serving", "delay" or "draining": as /stats, /metrics and the log name the phase. */
const char *drain_phase_name(enum drain_phase p);

#endif
