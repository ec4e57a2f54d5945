/* worker_loop: the part of a worker that its connections see.
 *
 * conn.c serves a connection on behalf of its worker: it reads this much of the
 * worker (the backend, the timers, the closed list, the counters, the drain state)
 * and nothing else. struct worker (worker.h) begins with a struct worker_loop, so a
 * struct worker * is also a pointer to its loop (C11 6.7.2.1: a pointer to a struct
 * points to its first member): conn.c takes the worker's pointer and never needs
 * worker.h. Everything here belongs to the worker's thread. */
#ifndef WHARF_WORKER_LOOP_H
#define WHARF_WORKER_LOOP_H

#include <stdint.h>

#include "../common/buf.h"
#include "timer.h"

enum { TIMER_IDLE, TIMER_HEADER, TIMER_LINGER, TIMER_LISTS };

struct backend;
struct conn;
struct handler_env;
struct peer_table;
struct settings;
struct worker;
struct worker_stats;

struct worker_loop {
    const struct backend *io;
    void *io_state;             /* the backend's loop state (its epoll, its ring): init sets it */
    /* Set by the backend's init (backend.h): where a batch's replies go when the
     * connection has none waiting, for a backend that writes them before the event
     * ends (epoll); NULL: replies always go into c->out (io_uring). */
    struct buf *reply_scratch;
    int id;
    uint32_t now;               /* ms since the worker's epoch, updated once per loop iteration */
    struct tlist timers[TIMER_LISTS];
    struct conn *closed;        /* closed; freed after the batch and their last completion */
    uint64_t n_conns;
    int draining;
    /* A connection accepted just before draining began has had no chance to send its
     * request (in a rolling restart, its client sees the new listener too late): it
     * gets this long before draining closes it unanswered. */
    /* When the grace ends (never after the deadline); 0 once it has. With --defer-accept
     * the listeners stay open until then (drain_state.h), and the grace ends one turn
     * after accepting did (worker.c). */
    uint64_t drain_grace_ms;
    /* The worker's own (struct worker): */
    struct worker_stats *stats;
    struct handler_env *env;
    const struct settings *set;
    struct peer_table *peers;   /* --max-conns-per-ip; NULL: off */
};

static inline struct worker_loop *worker_loop(struct worker *w) { return (struct worker_loop *)w; }

/* Put a connection's timer node t on timer list `list` (TIMER_IDLE, ...), its deadline
 * counted from now. (A node, not the connection: this header needs no conn.h.) */
static inline void worker_timer_set(struct worker *w, struct tnode *t, int list)
{
    struct worker_loop *l = worker_loop(w);
    if (t->list != TIMER_NONE)
        tlist_remove(&l->timers[t->list], t);
    tlist_append(&l->timers[list], t, l->now);
}

/* Activity: push the idle deadline back. Touched even with the idle timeout off, so a
 * reload that turns it on finds deadlines that follow the last activity. */
static inline void worker_timer_touch(struct worker *w, struct tnode *t)
{
    struct worker_loop *l = worker_loop(w);
    if (t->list == TIMER_IDLE)
        tlist_touch(&l->timers[TIMER_IDLE], t, l->now);
}

#endif
