/* ivlog: --hdr-log, an HdrHistogram interval log of one of the driver's latencies (bench:
 * request latency; churn: connect latency), one line per --interval.
 *
 * The handoff: each load thread records every value twice, into its own eng_stats
 * histogram (the report's, never shared) and into its iv_slot, two histograms behind a
 * mutex, one per parity of the interval number. A value belongs to the interval in
 * which its latency began (bench: the request's send time, or its intended one with
 * --rate; churn: the connect), so warm-up requests land in warm-up intervals and the
 * measured intervals hold exactly the report's requests. A logger thread of the main
 * process wakes a grace time (a quarter of the interval, at most 250 ms) after each
 * interval's end, takes that interval's histogram from every slot under its lock
 * (adding them up, emptying them) and writes the line. A reply later than the grace
 * time is counted two intervals on (never lost). The lock is uncontended but once per
 * interval: a value costs one uncontended lock/unlock more, only with --hdr-log.
 *
 * Interval boundaries are the measured start (bench: after the warm-up; with
 * --start-at that wall clock time) plus whole intervals, so hosts started together
 * have the same boundaries; intervals before the measured start are tagged warmup. */
#ifndef WHARF_IVLOG_H
#define WHARF_IVLOG_H

#include <pthread.h>

#include "../common/hist.h"
#include "engine.h"

struct iv_slot {
    pthread_mutex_t mu;
    uint64_t origin, interval_ns; /* interval k is [origin + k*I, ...); 0: not started */
    struct hist h[2];             /* by the parity of the interval number */
};

/* Give t its slot when the run has --hdr-log (t->iv stays NULL otherwise). 0 or -1. */
int ivlog_slot_init(struct eng_thread *t);
void ivlog_slot_free(struct eng_thread *t);

/* Count v, a latency that began at from (monotonic ns), for the interval log (any
 * thread, its own t). */
static inline void ivlog_record(struct eng_thread *t, uint64_t v, uint64_t from)
{
    struct iv_slot *s = t->iv;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    uint64_t k = s->interval_ns && from > s->origin ? (from - s->origin) / s->interval_ns : 0;
    hist_record(&s->h[k & 1], v);
    pthread_mutex_unlock(&s->mu);
}

/* The main thread, before the run: open --hdr-log (e->iv). 0, or -1 reported. A run
 * without --hdr-log does nothing here and below. what names the values in the header. */
int ivlog_open(struct engine *e, const char *what);
/* The main thread, once the times are known (monotonic ns): write the header, start
 * the logger. 0, or -1 reported. */
int ivlog_begin(struct engine *e, uint64_t start_ns, uint64_t measure_ns);
/* The main thread, after the load threads ended: the last interval, then close. 0, or
 * -1 when the file could not be written (reported). */
int ivlog_finish(struct engine *e);

/* The wall clock (ns since the epoch) of monotonic time mono. */
uint64_t ivlog_wall_of(uint64_t mono);

/* bench's --start-at (o->start_at, wall clock): *measure becomes the monotonic time at
 * which the measured time begins and *start when the warm-up (what of it is still ahead)
 * begins. Returns 0, or -1 when that time has passed (reported on stderr, the engine's
 * threads told to stop). Main thread, after the connections are up. */
int ivlog_start_at(struct engine *e, uint64_t *start, uint64_t *measure);

#endif
