#include "acceptor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "drain_state.h"
#include "syn_queue.h"

#define BATCH_MAX 64 /* connections handed over per push */

static unsigned pick_worker(struct acceptor *ac)
{
    unsigned n = (unsigned)ac->n_workers, start = ac->next % n, best = start;
    if (ac->dispatch == DISPATCH_LEAST) {
        uint64_t best_live = UINT64_MAX;
        for (unsigned k = 0; k < n; k++) {
            unsigned i = (start + k) % n;
            const struct worker_stats *s = ac->to[i].stats;
            /* accepted is ours to write; closed is the worker's. */
            uint64_t live = counter_get(&s->accepted) - counter_get(&s->closed);
            if (live < best_live) {
                best_live = live;
                best = i;
            }
        }
    }
    ac->next = best + 1;
    return best;
}

static void flush_batch(struct acceptor *ac, unsigned i)
{
    if (ac->batch_len[i] == 0)
        return;
    if (handoff_push(ac->to[i].handoff, ac->batch[i], ac->batch_len[i]) < 0) {
        log_error("handoff to worker %u: out of memory; closing %u connections", i,
                  ac->batch_len[i]);
        for (uint32_t k = 0; k < ac->batch_len[i]; k++) {
            close(ac->batch[i][k].fd);
            if (ac->ctx.peers)
                peer_release(ac->ctx.peers, ac->batch[i][k].peer);
        }
        /* Never handed over: take them back from accepted, which only this thread
         * writes (closed is the worker's, and a second writer could lose its adds). */
        counter_sub(&ac->to[i].stats->accepted, ac->batch_len[i]);
    }
    ac->batch_len[i] = 0;
}

static void deal(void *arg, int fd, uint8_t proto, uint32_t peer)
{
    struct acceptor *ac = arg;
    unsigned i = pick_worker(ac);
    counter_add(&ac->to[i].stats->accepted, 1);
    ac->batch[i][ac->batch_len[i]++] = (struct handoff_item){.fd = fd, .proto = proto, .peer = peer};
    if (ac->batch_len[i] == BATCH_MAX)
        flush_batch(ac, i);
}

static void accept_all(struct acceptor *ac)
{
    for (int k = 0; k < ac->ctx.n_listeners; k++)
        accept_drain(&ac->ctx, &ac->ctx.listeners[k], deal, ac);
}

/* The stop request (acceptor_begin_stop): 1 when the thread must end now, else 0 (the
 * grace began, or goes on). The grace keeps accepting; it is skipped when the kernel
 * holds no client back (syn_queue.h). */
static int stop_now(struct acceptor *ac)
{
    int64_t grace = atomic_load_explicit(&ac->stop_grace_ms, memory_order_acquire);
    if (grace < 0)
        return 0;
    if (grace == 0)
        return 1;
    if (!ac->grace_until_ms) { /* TCP_DEFER_ACCEPT stays on, as in worker.c's start_drain */
        if (!syn_queue_holds(ac->ctx.listeners, ac->ctx.n_listeners))
            return 1; /* nobody held back: stop now (with the last sweep) */
        log_info("acceptor: %s", DRAIN_KEEP_LISTENING);
        ac->grace_until_ms = clock_ms() + (uint64_t)grace;
    }
    return clock_ms() >= ac->grace_until_ms;
}

/* How long to sleep: -1 forever, 0 to go on with a listener's next batch. */
static int wait_ms(struct acceptor *ac)
{
    int timeout = ac->ctx.pending ? 0
                  : ac->ctx.paused_until_ms ? accept_pause_left_ms(&ac->ctx) : -1;
    if (ac->grace_until_ms) {
        uint64_t now = clock_ms();
        int left = ac->grace_until_ms > now ? (int)(ac->grace_until_ms - now) : 0;
        if (timeout < 0 || left < timeout)
            timeout = left;
    }
    return timeout;
}

/* The thread's last acts: what the listeners hold is taken (after a grace, not after a
 * cut), the listeners close, and every worker hears that nothing more comes. */
static void acceptor_finish(struct acceptor *ac)
{
    if (atomic_load_explicit(&ac->stop_grace_ms, memory_order_acquire) > 0)
        accept_sweep(&ac->ctx, deal, ac);
    for (int i = 0; i < ac->n_workers; i++)
        flush_batch(ac, (unsigned)i);
    accept_ctx_close(&ac->ctx);
    for (int i = 0; i < ac->n_workers; i++)
        handoff_close(ac->to[i].handoff);
}

static void *acceptor_main(void *arg)
{
    struct acceptor *ac = arg;
    void *ready[MAX_LISTENERS + 1];
    while (!stop_now(ac)) {
        if (ac->ctx.pending) {
            accept_pending(&ac->ctx, deal, ac);
            for (int i = 0; i < ac->n_workers; i++)
                flush_batch(ac, (unsigned)i);
        }
        int n = poller_wait(&ac->poller, ready, MAX_LISTENERS + 1, wait_ms(ac));
        if (n < 0 && errno != EINTR) {
            log_error("acceptor: waiting for connections: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++)
            if (ready[i] != NULL) /* NULL: the stop eventfd; stop_now looks */
                accept_drain(&ac->ctx, ready[i], deal, ac);
        /* Edge-triggered listeners: after a pause, nothing re-announces what is waiting. */
        if (ac->ctx.paused_until_ms && accept_pause_left_ms(&ac->ctx) == 0)
            accept_all(ac);
        for (int i = 0; i < ac->n_workers; i++)
            flush_batch(ac, (unsigned)i);
    }
    acceptor_finish(ac);
    return NULL;
}

int acceptor_init(struct acceptor *ac, const struct config *cfg, const struct listener *ls,
                  int n, const struct accept_target *to, int n_workers)
{
    memset(ac, 0, sizeof *ac);
    atomic_store_explicit(&ac->stop_grace_ms, -1, memory_order_relaxed);
    accept_ctx_init(&ac->ctx, cfg->set.max_conns);
    memcpy(ac->to, to, (size_t)n_workers * sizeof *to);
    ac->n_workers = n_workers;
    ac->dispatch = cfg->dispatch;
    int polling = poller_open(&ac->poller);
    ac->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (polling < 0 || ac->stop_efd < 0) {
        log_error("acceptor: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n_workers; i++) {
        ac->batch[i] = calloc(BATCH_MAX, sizeof *ac->batch[i]);
        if (!ac->batch[i])
            return -1;
    }
    if (poller_watch(&ac->poller, ac->stop_efd, NULL) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        ac->ctx.listeners[i] = ls[i];
        if (poller_watch(&ac->poller, ls[i].fd, &ac->ctx.listeners[i]) < 0) {
            log_error("acceptor: watching a listener: %s", strerror(errno));
            return -1;
        }
        ac->ctx.n_listeners++;
    }
    return 0;
}

int acceptor_start(struct acceptor *ac)
{
    int rc = pthread_create(&ac->thread, NULL, acceptor_main, ac);
    if (rc != 0) {
        log_error("cannot start the acceptor thread: %s", strerror(rc));
        return -1;
    }
    return 0;
}

void acceptor_begin_stop(struct acceptor *ac, uint64_t grace_ms)
{
    atomic_store_explicit(&ac->stop_grace_ms, (int64_t)grace_ms, memory_order_release);
    uint64_t one = 1;
    if (write(ac->stop_efd, &one, sizeof one) < 0)
        log_error("acceptor: cannot signal stop: %s", strerror(errno));
}

void acceptor_join(struct acceptor *ac)
{
    pthread_join(ac->thread, NULL);
    for (int i = 0; i < ac->n_workers; i++)
        free(ac->batch[i]);
    poller_close(&ac->poller);
    close(ac->stop_efd);
}
