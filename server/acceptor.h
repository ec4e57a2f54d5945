/* acceptor: the thread that accepts for every worker (--dispatch least or round-robin,
 * with more than one worker).
 *
 * It runs one accept_ctx (accept_ctx.h) over every listener, picks a worker for each
 * new connection and deals them out in batches through the workers' handoff queues.
 * What it may touch of a worker is exactly an accept_target: its handoff queue
 * (handoff.h, the named path between threads) and its counters (stats.h: relaxed
 * atomics, read by anyone). It knows nothing else of struct worker. */
#ifndef WHARF_ACCEPTOR_H
#define WHARF_ACCEPTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "accept_ctx.h"
#include "config.h"
#include "handoff.h"
#include "listener.h"
#include "poller.h"
#include "stats.h"

/* One worker, as the acceptor sees it. */
struct accept_target {
    struct handoff *handoff;    /* where its connections go */
    struct worker_stats *stats; /* accepted: written by the acceptor (its one writer;
                                 * taken back when a push fails for want of memory);
                                 * closed: only read, for --dispatch least */
};

struct acceptor {
    struct accept_ctx ctx;
    pthread_t thread;
    struct poller poller; /* its listeners, edge-triggered, and stop_efd (tag NULL) */
    int stop_efd;         /* written by acceptor_begin_stop */
    /* -1 while serving; then the grace (ms) acceptor_begin_stop asked for, 0: stop now.
     * Written by the main thread, read by the acceptor after stop_efd woke it. */
    _Atomic int64_t stop_grace_ms;
    uint64_t grace_until_ms; /* the acceptor's own: when its grace ends; 0: none began */
    struct accept_target to[MAX_WORKERS];
    int n_workers;
    enum dispatch dispatch;
    unsigned next; /* where the next round-robin or tie-break starts */
    struct handoff_item *batch[MAX_WORKERS];
    uint32_t batch_len[MAX_WORKERS];
};

/* Take over the listeners (a copy; the acceptor closes them when it stops), and deal
 * connections to the n_workers workers of to[] (copied). */
int acceptor_init(struct acceptor *ac, const struct config *cfg, const struct listener *ls,
                  int n, const struct accept_target *to, int n_workers);
int acceptor_start(struct acceptor *ac);
/* Main thread: stop accepting. With grace_ms > 0 (draining with --defer-accept), when
 * the kernel holds clients back (syn_queue.h), first accept for that long more, then
 * take what the listeners hold; with 0, stop now (also cuts a grace short). Either way the thread then closes the
 * listeners and closes every worker's handoff (handoff_close): workers wait for that
 * before they end their drain's grace. Does not wait; may be called again. */
void acceptor_begin_stop(struct acceptor *ac, uint64_t grace_ms);
/* Main thread, after acceptor_begin_stop: join the thread and free what it used. */
void acceptor_join(struct acceptor *ac);

#endif
