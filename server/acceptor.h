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
    int stop_efd;         /* written once by acceptor_stop */
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
/* Stop accepting, close the listeners and join the thread. */
void acceptor_stop(struct acceptor *ac);

#endif
