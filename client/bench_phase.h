/* bench_phase: the run that every request-reply driver of the engine goes through
 * (bench.c over streams, dgram_bench.c over datagrams), written once: the main thread
 * waits for the ramp and announces one start time for all threads; each thread then
 * runs (every connection's window pumped, or with --rate the schedule's slots handed
 * out as they come due) until the end time, -n or Ctrl-C, drains (no new requests;
 * those in flight get up to --timeout) and leaves. What a request is, how it is sent
 * and how its reply is matched stay the driver's: its pump hook.
 *
 * A driver's per-thread state (t->d) begins with its struct bench_phase, and its
 * run-wide state (e->d) with its struct bench_clock. */
#ifndef WHARF_BENCH_PHASE_H
#define WHARF_BENCH_PHASE_H

#include <stdatomic.h>
#include <stdint.h>

#include "../common/rate.h"
#include "engine.h"

enum { PH_RAMP, PH_RUN, PH_DRAIN, PH_EXIT };

/* The times the main thread announces (start_ns last, with release: a thread that sees
 * it sees the others), and its progress line's last figures. */
struct bench_clock {
    _Atomic uint64_t start_ns, measure_ns, end_ns;
    uint64_t shown_done, shown_ns;
};

/* A thread's phase and its requests. */
struct bench_phase {
    int phase;
    uint64_t issued_total;   /* requests sent by the thread */
    uint64_t inflight_total; /* of those, not yet answered nor given up */
    uint64_t due_k;          /* --rate: the thread's slots handed to connections */
    struct rate reqrate;
    uint64_t start_ns, measure_ns, end_ns, drain_deadline;
    /* The driver's: send what connection i may send now (nothing outside PH_RUN). */
    void (*pump)(struct eng_thread *t, uint32_t i, uint64_t now);
};

static inline struct bench_phase *PH(const struct eng_thread *t) { return t->d; }
static inline struct bench_clock *bench_clock_of(const struct engine *e) { return e->d; }

/* How many requests connection i may send now: its window (P less inflight), its
 * share of the --rate slots due (issued: its requests so far), the thread's -n.
 * Inline: it is on every reply's path. */
static inline uint64_t bench_window(const struct eng_thread *t, uint32_t i, uint64_t P,
                                    uint64_t inflight, uint64_t issued)
{
    const struct bench_phase *ph = PH(t);
    /* A script's batch may go past the window, its slots and -n (bench_script_fill):
     * each limit is then 0, never a wrapped-around count. */
    uint64_t n = P > inflight ? P - inflight : 0;
    if (t->e->o->rate) {
        uint64_t due = rate_share(ph->due_k, i, t->n);
        n = min_u64(n, due > issued ? due - issued : 0);
    }
    if (t->quota != ENG_NO_LIMIT)
        n = min_u64(n, t->quota > ph->issued_total ? t->quota - ph->issued_total : 0);
    return n;
}

/* The driver's turn hook (eng_driver.turn): the phase machine. Returns 1 once the
 * thread is done (its unanswered requests counted). */
int bench_phase_turn(struct eng_thread *t, uint64_t now);
/* The driver's next_wakeup hook: the start, the next --rate slot, the end, the drain's
 * deadline. */
uint64_t bench_phase_wakeup(const struct eng_thread *t, uint64_t now);

/* The main thread, as the driver's main hook: wait for the ramp (none_live says why no
 * connection could be made; the threads are then stopped), announce the start (with
 * the --start-at and --hdr-log steps when hdr_log), and wait for the end with progress
 * ticks. Returns 0, or -1 when the run could not happen. */
int bench_phase_main(struct engine *e, int hdr_log, void (*none_live)(const struct engine *e),
                     void (*progress)(struct engine *e, uint64_t now));
/* The main thread's progress line: 0 when none is to be printed now (no terminal,
 * --json, the end passed); else 1 with the replies per second since the last line. */
int bench_progress_rate(struct engine *e, uint64_t now, double *per_sec);
/* Connections (or sockets) open now, over all threads. */
uint64_t bench_live(const struct engine *e);
/* The driver's derive hook: bench_derive from the announced measured start. */
void bench_phase_derive(const struct engine *e, struct eng_totals *r);
/* The driver's failed hook: a run that could not happen, or any error without
 * --allow-errors. */
int bench_failed(const struct engine *e, const struct eng_totals *r, int ran);

#endif
