/* bench_state: what bench.c (the driver) and bench_wrk.c (the HTTP report in wrk's
 * layout) share: the counters and histograms of eng_stats as bench uses them, and the
 * run-wide state. */
#ifndef WHARF_BENCH_STATE_H
#define WHARF_BENCH_STATE_H

#include <stdatomic.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/rate.h"
#include "bench_counters.h"
#include "bench_phase.h"
#include "engine.h"
#include "payload.h"

/* Counters past bench_counters.h's: NON2XX (status >= 400), RECONN (the server closed
 * after a response and the connection was made again), LOST (requests in flight behind
 * such a close). */
enum { NON2XX = BENCH_COUNTERS, RECONN, LOST };

/* Requests per second of each thread, one sample a second (the main thread's), for
 * wrk's "Req/Sec" row. */
struct rps_samples {
    double *v;
    size_t n, cap;
    uint64_t *last;   /* per thread: OK at the last sample */
    uint64_t last_ns; /* when */
};

/* The start the main thread announces (first: bench_phase.h), and the run's settings. */
struct bench {
    struct bench_clock clk;
    struct payload pl;
    uint32_t P;
    struct rps_samples rps;
};

/* The driver's connections and threads (bench.c; bench_script.c for -s). */

/* A connection's requests, beside its engine slot. */
struct bconn {
    uint8_t want_write; /* a write came up short: wait for EPOLLOUT */
    uint32_t inflight;
    uint32_t head;      /* ring slot of the oldest request in flight */
    uint32_t unsent;    /* request bytes not yet written */
    uint64_t issued;    /* requests over the connection's life (its rate slots) */
    struct buf out;     /* -s with request(): the script's bytes; unsent is their tail */
    struct buf resp;    /* -s with response(): the response being received, as it came */
    uint64_t due;       /* -s with delay(): its next request not before (0: ask delay()) */
};

struct bthread {
    struct bench_phase ph;  /* first: bench_phase.h */
    struct bconn *conns;
    uint64_t *ring;         /* n * rcap send times: connection i's ring at i * rcap */
    uint32_t rcap;          /* the window (-P), more once a script's batch needed more */
    uint8_t *heads;         /* -s with request(): n * rcap, the request there is a HEAD */
    uint64_t next_due;      /* -s with delay(): the earliest connection's due time */
};

static inline struct bthread *BT(const struct eng_thread *t) { return t->d; }
static inline struct bench *BB(const struct eng_thread *t) { return t->e->d; }

/* The error kind of a reply that is not a success (HTTP: status or body). */
static inline int reply_error_kind(const struct reply_rx *rx)
{
    return rx->flags & RXF_BAD_STATUS ? ERR_STATUS
           : rx->flags & RXF_BAD_BODY ? ERR_BODY
                                      : ERR_MISMATCH;
}

/* The main thread, once a second while the run is measured: sample every thread's
 * requests per second. */
void bench_rps_sample(struct engine *e, uint64_t now);
void bench_rps_free(struct rps_samples *s);

/* The text report of an http:// run: wrk's lines first, then wharf's. */
void bench_print_wrk(const struct engine *e, const struct eng_totals *r);

/* The report of a run (eng_driver's print_text and print_json): text in wrk's layout
 * for http://, wharf's own for the others; JSON for all. */
void bench_print_text(const struct engine *e, const struct eng_totals *r);
void bench_print_json(const struct engine *e, const struct eng_totals *r);

/* -s: the thread's script state, before its connections start (thread_init): where it
 * connects (thread.addr) and, with request(), which requests in flight are HEADs. 0 or
 * -1 (errno). */
int bench_script_thread_init(struct eng_thread *t);

/* -s with request(): the script's next requests for connection i (the engine's window
 * allowed n >= 1; with delay(), n is 1: one request() call), appended to its bytes
 * (c->out, c->unsent); returns how many they are, every one counted and timed. A request() call waits until the window (-P, at
 * least the first calls' largest batch) has room for such a batch, and with -R until
 * its first slot is due (the batch takes as many slots as it has requests); a larger
 * batch grows the rings (up to SCRIPT_BATCH_MAX past the window). A batch that cannot
 * fit before -n, wrk.thread:stop() and an error (reported) end the thread's sending. */
uint64_t bench_script_fill(struct eng_thread *t, uint32_t i, uint64_t n);

/* -s with request(): whether the oldest request in flight on connection i (the one the
 * response being read answers) is a HEAD. */
int bench_script_head(const struct eng_thread *t, uint32_t i);

/* -s with delay(): how many requests connection i may send now, 0 or 1: 1 once the
 * delay() asked for before its next request (with request(): its next batch, once the
 * window has room for one) has passed (bt->next_due keeps the earliest wait). A Lua
 * error ends the thread's sending. */
uint64_t bench_script_delay(struct eng_thread *t, uint32_t i, uint64_t now);

/* -s with response(): n more bytes (from p) of connection c's response; at the end of
 * one (complete), the script's response() sees it. */
void bench_script_response(struct eng_thread *t, struct bconn *c, const char *p, size_t n,
                           int complete);

/* -s: the script's done(summary, latency, requests) with the report's figures (wrk's
 * "requests" is every answered request; the latency is the report's histogram). */
void bench_script_done(const struct engine *e, const struct eng_totals *r);

#endif
