/* worker: one thread, one event loop (its backend: epoll or io_uring), the
 * connections it owns, their timers, the handoff and the drain.
 *
 * Cross-thread surface, and nothing else: the handoff queue (connections in, the
 * drain signal, the wake-up after the drain phase changed: drain_state.h), the stats
 * counters (read by anyone), the heartbeat (read by the
 * main thread's watchdog) and the start handshake. Every other field belongs to the
 * worker thread.
 *
 * The start handshake: worker_start creates the thread and sleeps on init_cond until
 * the thread, once its backend is set up (or has failed), sets init_state and signals
 * it; init_state is only read or written under init_lock. The condition variable runs
 * on CLOCK_MONOTONIC, so the start-up deadline ignores changes of the wall clock.
 *
 * The backend (backend.h) runs the loop, keeping its own state behind
 * loop.io_state, and calls back into the worker_* functions below for everything
 * that is the same whatever waits for events. What the connections see of their
 * worker is the struct worker_loop at its start (worker_loop.h). */
#ifndef WHARF_WORKER_H
#define WHARF_WORKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../common/buf.h"
#include "accept_ctx.h"
#include "backend.h"
#include "config.h"
#include "handler.h"
#include "handoff.h"
#include "http_reply.h"
#include "listener.h"
#include "stats.h"
#include "timer.h"
#include "udp.h"
#include "worker_loop.h"

struct conn;

struct worker {
    /* private to the worker thread; first (worker_loop.h): what its connections see */
    struct worker_loop loop;

    /* shared */
    struct worker_stats stats;
    struct handoff handoff;
    _Atomic int drain_requested; /* 1: drain gracefully; 2: cut every connection now */
    _Atomic int finished;        /* the loop has ended; joining will not block */
    _Atomic uint64_t heartbeat; /* bumped every loop iteration */
    /* the start handshake (above) */
    pthread_mutex_t init_lock;
    pthread_cond_t init_cond;
    int init_state;             /* 0: starting; 1: the loop runs; -1: its backend failed */

    /* set before the thread starts (and loop.id, loop.io) */
    int done_fd;                 /* an eventfd written once finished is set; -1: none */
    int fed;                     /* an acceptor thread sends its connections (handoff) */
    int accept_grace;            /* draining: own listeners accept through the grace
                                  * when the kernel holds clients (drain_state.h) */
    pthread_t thread;
    const struct config *cfg;
    struct accept_ctx accept; /* --dispatch reuseport: this worker's own listeners */
    struct udp_port udp[MAX_LISTENERS]; /* its own socket on each udp:// port (udp.h) */
    int n_udp;

    /* private to the worker thread */
    struct settings set;        /* this worker's copy; reloads arrive through the handoff */
    uint32_t max_sleep_ms;      /* wake at least this often (watchdog); 0: sleep freely */
    uint64_t epoch_ms;          /* deadlines count from here */
    struct conn *todo;          /* connections to revisit before sleeping (backend.h) */
    uint64_t drain_deadline_ms;
    int feed_over;              /* fed: the acceptor has closed the handoff */
    int grace_last_turn;        /* draining: accepting is over, the grace ends next turn */
    struct http_cache http;
    struct handler_env env;
};

/* Prepare the worker (its handoff queue and start handshake; the backend's loop is set
 * up by the thread itself). 0, or -1 with a message logged. max_sleep_ms: longest wait, so the
 * heartbeat shows a live loop. */
int worker_init(struct worker *w, int id, const struct config *cfg, const struct backend *io,
                uint32_t max_sleep_ms);
/* --dispatch reuseport: give this worker its own listener (before it starts). */
int worker_add_listener(struct worker *w, const struct listener *l);
/* Give this worker its socket fd on the udp:// port ep (before it starts); the worker
 * closes it in worker_destroy. 0, or -1 with a message logged. */
int worker_add_udp(struct worker *w, int fd, const struct listen_spec *ep);
/* Start the thread and wait (the start handshake, at most INIT_WAIT_MS) until its
 * backend is set up: 0, or -1 with a message logged when it failed or took too long. */
int worker_start(struct worker *w);
/* Ask the worker to drain and exit, or (cut) to close everything now. Any thread. */
void worker_request_drain(struct worker *w, int cut);
void worker_join(struct worker *w);
/* Undo worker_init, after the thread was joined (or never started). */
void worker_destroy(struct worker *w);

/* The CPUs this process may run on (the default --workers). */
int workers_cpus_allowed(void);
/* --cpu-affinity: pin the n_workers started workers of ws[] one to a CPU, in turn over
 * the allowed ones (a failure is logged, the worker runs unpinned). */
void workers_pin(struct worker *ws, int n_workers);

_Static_assert(offsetof(struct worker, loop) == 0, "worker_loop(): the loop comes first");

/* Used by the backends (worker_timer_set and _touch: worker_loop.h): */
/* Revisit c before the loop sleeps again (the backend's revisit hook). */
void worker_mark_todo(struct worker *w, struct conn *c);

/* Used by the backends' loops: */
static inline void worker_heartbeat(struct worker *w)
{
    atomic_fetch_add_explicit(&w->heartbeat, 1, memory_order_relaxed);
}
/* Refresh the loop's clock (once per wake-up). */
void worker_update_clock(struct worker *w);
/* How long the loop may sleep: -1 forever, else milliseconds. */
int worker_next_timeout_ms(const struct worker *w);
/* The handoff woke us: take new connections, new settings, the drain request. */
void worker_take_handoff(struct worker *w);
/* Revisit the to-do list now (worker_turn_end does it too). */
void worker_run_todo(struct worker *w);
/* A connection this worker accepted itself (--dispatch reuseport, or a single worker). */
void worker_deliver_own(void *arg, int fd, uint8_t proto, uint32_t peer);
/* After the events of one wake-up: revisit the to-do list, expire timers, resume a
 * paused accept, free what was closed; returns 1 when the worker has drained and its
 * loop must end. */
int worker_turn_end(struct worker *w);
/* After the loop: free the closed connections still waiting for completions (the
 * backend has made sure none will come). */
void worker_free_closed_all(struct worker *w);

#endif
