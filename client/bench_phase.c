/* bench_phase: the phases of a request-reply run; see bench_phase.h. */
#include "bench_phase.h"

#include <stdio.h>
#include <sys/prctl.h>

#include "../common/clock.h"
#include "bench_counters.h"
#include "ivlog.h"

/* --rate: hand the slots that came due to their connections (slot k goes to
 * connection k % n). */
static void distribute(struct eng_thread *t, uint64_t now)
{
    struct bench_phase *ph = PH(t);
    uint64_t k = min_u64(rate_due(&ph->reqrate, now), t->quota);
    if (k <= ph->due_k)
        return;
    uint64_t from = ph->due_k;
    ph->due_k = k;
    if (k - from >= t->n) {
        for (uint32_t i = 0; i < t->n; i++)
            ph->pump(t, i, now);
    } else {
        for (uint64_t s = from; s < k; s++)
            ph->pump(t, (uint32_t)(s % t->n), now);
    }
}

/* The main thread announced the start: run. */
static void begin(struct eng_thread *t, uint64_t s, uint64_t now)
{
    struct bench_phase *ph = PH(t);
    const struct bench_clock *clk = bench_clock_of(t->e);
    ph->start_ns = s;
    ph->measure_ns = atomic_load_explicit(&clk->measure_ns, memory_order_relaxed);
    ph->end_ns = atomic_load_explicit(&clk->end_ns, memory_order_relaxed);
    ph->phase = PH_RUN;
    if (t->e->o->rate) {
        prctl(PR_SET_TIMERSLACK, 1000UL); /* this thread wakes within 1 us of a slot */
        rate_init(&ph->reqrate, s, t->e->o->rate, (uint64_t)t->id, (uint64_t)t->e->nthreads);
        distribute(t, now);
    } else {
        for (uint32_t i = 0; i < t->n; i++)
            ph->pump(t, i, now);
    }
}

/* Time, -n or a signal ended the run: no new requests; wait for those in flight (two
 * timeout scans past --timeout at most). */
static void drain(struct eng_thread *t, int stop, uint64_t now)
{
    struct bench_phase *ph = PH(t);
    const struct load_opts *o = t->e->o;
    if (o->rate && !stop)
        distribute(t, min_u64(now, ph->end_ns - 1)); /* slots due before the end go out */
    ph->phase = PH_DRAIN;
    t->connecting = 0;
    ph->drain_deadline = now + o->timeout_ms * 1000000ull + 2 * t->e->drv->scan_ns;
    if (o->rate) {
        uint64_t due = min_u64(rate_due(&ph->reqrate, min_u64(now, ph->end_ns - 1)), t->quota);
        ctr_add(&t->st->c[BACKLOG], due > ph->issued_total ? due - ph->issued_total : 0);
    }
}

int bench_phase_turn(struct eng_thread *t, uint64_t now)
{
    struct bench_phase *ph = PH(t);
    int stop = atomic_load_explicit(&t->e->stop, memory_order_relaxed);
    if (ph->phase == PH_RAMP) {
        if (stop) {
            ph->phase = PH_EXIT;
        } else {
            uint64_t s = atomic_load_explicit(&bench_clock_of(t->e)->start_ns,
                                              memory_order_acquire);
            if (s && now >= s)
                begin(t, s, now);
        }
    }
    if (ph->phase == PH_RUN && (stop || now >= ph->end_ns || ph->issued_total >= t->quota))
        drain(t, stop, now);
    if (ph->phase == PH_DRAIN &&
        (ph->inflight_total == 0 || stop >= 2 || now >= ph->drain_deadline))
        ph->phase = PH_EXIT;
    if (ph->phase == PH_RUN && t->e->o->rate)
        distribute(t, now);
    if (ph->phase != PH_EXIT)
        return 0;
    ctr_add(&t->st->c[UNANSWERED], ph->inflight_total);
    return 1;
}

uint64_t bench_phase_wakeup(const struct eng_thread *t, uint64_t now)
{
    const struct bench_phase *ph = PH(t);
    (void)now;
    if (ph->phase == PH_RAMP) {
        uint64_t s = atomic_load_explicit(&bench_clock_of(t->e)->start_ns, memory_order_acquire);
        return s ? s : ENG_NO_LIMIT;
    }
    if (ph->phase == PH_RUN) {
        uint64_t next = ph->end_ns;
        if (t->e->o->rate && ph->due_k < t->quota)
            next = min_u64(next, rate_time(&ph->reqrate, ph->due_k));
        return next;
    }
    return ph->drain_deadline;
}

/* ---- the main thread ---- */

uint64_t bench_live(const struct engine *e) { return engine_sum(e, LIVE); }

int bench_phase_main(struct engine *e, int hdr_log, void (*none_live)(const struct engine *e),
                     void (*progress)(struct engine *e, uint64_t now))
{
    const struct load_opts *o = e->o;
    struct bench_clock *clk = bench_clock_of(e);
    if (engine_wait_ready(e, bench_live) < 0)
        return -1;
    if (bench_live(e) == 0) {
        none_live(e); /* says why; the threads stop */
        atomic_store(&e->stop, 2);
        engine_wake_all(e);
        return -1;
    }
    uint64_t start = clock_ns() + 1000000, measure = start + o->warmup_ms * 1000000ull;
    if (hdr_log && o->start_at && ivlog_start_at(e, &start, &measure) < 0)
        return -1;
    uint64_t run_ns =
        o->duration_set || !o->requests ? o->duration_ms * 1000000ull : ENG_NO_LIMIT;
    uint64_t end = run_ns == ENG_NO_LIMIT ? ENG_NO_LIMIT : measure + run_ns;
    atomic_store_explicit(&clk->measure_ns, measure, memory_order_relaxed);
    atomic_store_explicit(&clk->end_ns, end, memory_order_relaxed);
    atomic_store_explicit(&clk->start_ns, start, memory_order_release);
    engine_cpu_mark(e);
    if (hdr_log && ivlog_begin(e, start, measure) < 0) {
        atomic_store(&e->stop, 2);
        engine_wake_all(e);
        return -1;
    }
    engine_wake_all(e);
    engine_wait_done(e, start + 1000000000ull, progress);
    return 0;
}

int bench_progress_rate(struct engine *e, uint64_t now, double *per_sec)
{
    struct bench_clock *clk = bench_clock_of(e);
    if (!runctl_progress() || e->o->json || now >= atomic_load(&clk->end_ns))
        return 0;
    uint64_t done = engine_sum(e, OK) + engine_sum(e, WARM);
    if (!clk->shown_ns)
        clk->shown_ns = atomic_load(&clk->start_ns);
    double dt = (double)(now - clk->shown_ns) / 1e9;
    *per_sec = dt > 0 ? (double)(done - clk->shown_done) / dt : 0.0;
    clk->shown_done = done;
    clk->shown_ns = now;
    return 1;
}

void bench_phase_derive(const struct engine *e, struct eng_totals *r)
{
    bench_derive(e, atomic_load(&bench_clock_of(e)->measure_ns), r);
}

int bench_failed(const struct engine *e, const struct eng_totals *r, int ran)
{
    if (ran < 0 && !e->interrupted)
        return 1;
    return r->errors && !e->o->allow_errors;
}
