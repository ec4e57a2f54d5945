#include "acceptor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "worker.h"

#define BATCH_MAX 64           /* connections handed over per push */
/* Accepted per listener before the loop serves others: a flood of connects on a
 * reuseport worker's listener must not starve the connections it already has. */
#define ACCEPT_BATCH 64
#define PAUSE_MS 100           /* back-off when accept cannot get memory or a descriptor */

static int open_reserve(void) { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

void accept_ctx_init(struct accept_ctx *a, uint64_t max_conns)
{
    memset(&a->stats, 0, sizeof a->stats);
    a->n_listeners = 0;
    atomic_store_explicit(&a->max_conns, max_conns, memory_order_relaxed);
    a->reserve_fd = open_reserve();
    a->paused_until_ms = 0;
    a->last_shed_log_ms = 0;
    a->shed_since_log = 0;
}

void accept_ctx_close(struct accept_ctx *a)
{
    for (int i = 0; i < a->n_listeners; i++)
        listener_close(&a->listeners[i]);
    a->n_listeners = 0;
    a->pending = 0;
    if (a->reserve_fd >= 0)
        close(a->reserve_fd);
    a->reserve_fd = -1;
}

int accept_pause_left_ms(const struct accept_ctx *a)
{
    if (!a->paused_until_ms)
        return 0;
    uint64_t now = clock_ms();
    return now >= a->paused_until_ms ? 0 : (int)(a->paused_until_ms - now);
}

/* Running out of descriptors is logged at most once a second, with what was shed. */
static void note_shed(struct accept_ctx *a, int err)
{
    counter_add(&a->stats.rejected_no_fd, 1);
    a->shed_since_log++;
    uint64_t now = clock_ms();
    if (now - a->last_shed_log_ms >= 1000) {
        log_warn("out of file descriptors (%s): shedding new connections (%llu since the last "
                 "report); raise 'ulimit -n' or lower --max-conns",
                 strerror(err), (unsigned long long)a->shed_since_log);
        a->last_shed_log_ms = now;
        a->shed_since_log = 0;
    }
}

/* EMFILE/ENFILE: give up the reserve descriptor, accept the waiting connection and
 * close it at once (the client sees a clean close instead of waiting in the backlog),
 * then take the reserve back. Without a reserve, pause instead of spinning. */
static int shed_one(struct accept_ctx *a, const struct listener *l, int err)
{
    if (a->reserve_fd < 0) {
        note_shed(a, err);
        a->paused_until_ms = clock_ms() + PAUSE_MS;
        return -1;
    }
    close(a->reserve_fd);
    int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        note_shed(a, err);
    }
    a->reserve_fd = open_reserve();
    return fd >= 0 || errno == ECONNABORTED ? 0 : -1;
}

static uint64_t live_connections(void) { return stats_active_connections(); }

int accept_drain(struct accept_ctx *a, const struct listener *l, accept_deliver_fn deliver,
                 void *arg)
{
    if (a->paused_until_ms) {
        if (accept_pause_left_ms(a) > 0)
            return 1;
        a->paused_until_ms = 0;
    }
    uint64_t live = live_connections();
    uint32_t bit = 1u << (l - a->listeners);
    a->pending &= ~bit;
    for (int taken = 0;; taken++) {
        if (taken == ACCEPT_BATCH) {
            a->pending |= bit;
            return 0;
        }
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            uint32_t peer;
            if (accept_admit(a, fd, &live, &peer))
                deliver(arg, fd, (uint8_t)l->ep.proto, peer);
            continue;
        }
        if (errno == EAGAIN)
            return 0;
        int err = errno;
        switch (accept_failed(a, err)) {
        case ACCEPT_FAIL_RETRY:
            continue;
        case ACCEPT_FAIL_NO_FILES:
            if (shed_one(a, l, err) < 0)
                return 1;
            continue;
        case ACCEPT_FAIL_PAUSED:
            return 1;
        }
    }
}

enum accept_fail accept_failed(struct accept_ctx *a, int err)
{
    switch (err) {
    case EINTR:
    case ECONNABORTED: /* the client gave up before we got to it */
    case EPROTO:
    case EPERM: /* a firewall rule refused it */
        return ACCEPT_FAIL_RETRY;
    case EMFILE:
    case ENFILE:
        return ACCEPT_FAIL_NO_FILES;
    case ENOBUFS:
    case ENOMEM:
        log_warn("accept: %s; pausing accepts for %d ms", strerror(err), PAUSE_MS);
        break;
    default:
        log_error("accept: %s; pausing accepts for %d ms", strerror(err), PAUSE_MS);
        break;
    }
    counter_add(&a->stats.accept_errors, 1);
    a->paused_until_ms = clock_ms() + PAUSE_MS; /* retrying at once could only spin */
    return ACCEPT_FAIL_PAUSED;
}

int accept_admit(struct accept_ctx *a, int fd, uint64_t *live, uint32_t *peer)
{
    counter_add(&a->stats.accepted, 1);
    *peer = PEER_NONE;
    uint64_t max_conns = atomic_load_explicit(&a->max_conns, memory_order_relaxed);
    if (max_conns && *live >= max_conns) {
        /* Accept and close rather than leave it to time out in the backlog. */
        close(fd);
        counter_add(&a->stats.rejected_max_conns, 1);
        *live = live_connections();
        return 0;
    }
    if (a->peers) {
        switch (peer_admit(a->peers, fd, peer)) {
        case PEER_ADMITTED:
            break;
        case PEER_OVER:
            close(fd);
            counter_add(&a->stats.rejected_per_ip, 1);
            return 0;
        case PEER_GONE: /* reset before we got to it: nothing to serve */
            close(fd);
            return 0;
        case PEER_NOMEM:
            close(fd);
            counter_add(&a->stats.accept_errors, 1);
            return 0;
        }
    }
    (*live)++;
    return 1;
}

void accept_pending(struct accept_ctx *a, accept_deliver_fn deliver, void *arg)
{
    uint32_t pending = a->pending;
    for (int i = 0; i < a->n_listeners; i++)
        if (pending & (1u << i))
            accept_drain(a, &a->listeners[i], deliver, arg);
}

/* ---- the acceptor thread ---- */

static unsigned pick_worker(struct acceptor *ac)
{
    unsigned n = (unsigned)ac->n_workers, start = ac->next % n, best = start;
    if (ac->dispatch == DISPATCH_LEAST) {
        uint64_t best_live = UINT64_MAX;
        for (unsigned k = 0; k < n; k++) {
            unsigned i = (start + k) % n;
            struct worker_stats *s = &ac->workers[i].stats;
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
    if (handoff_push(&ac->workers[i].handoff, ac->batch[i], ac->batch_len[i]) < 0) {
        log_error("handoff to worker %u: out of memory; closing %u connections", i,
                  ac->batch_len[i]);
        for (uint32_t k = 0; k < ac->batch_len[i]; k++) {
            close(ac->batch[i][k].fd);
            if (ac->ctx.peers)
                peer_release(ac->ctx.peers, ac->batch[i][k].peer);
        }
        counter_add(&ac->workers[i].stats.closed, ac->batch_len[i]);
    }
    ac->batch_len[i] = 0;
}

static void deal(void *arg, int fd, uint8_t proto, uint32_t peer)
{
    struct acceptor *ac = arg;
    unsigned i = pick_worker(ac);
    counter_add(&ac->workers[i].stats.accepted, 1);
    ac->batch[i][ac->batch_len[i]++] = (struct handoff_item){.fd = fd, .proto = proto, .peer = peer};
    if (ac->batch_len[i] == BATCH_MAX)
        flush_batch(ac, i);
}

static void accept_all(struct acceptor *ac)
{
    for (int k = 0; k < ac->ctx.n_listeners; k++)
        accept_drain(&ac->ctx, &ac->ctx.listeners[k], deal, ac);
}

static void *acceptor_main(void *arg)
{
    struct acceptor *ac = arg;
    struct epoll_event ev[MAX_LISTENERS + 1];
    for (;;) {
        if (ac->ctx.pending) {
            accept_pending(&ac->ctx, deal, ac);
            for (int i = 0; i < ac->n_workers; i++)
                flush_batch(ac, (unsigned)i);
        }
        int timeout = ac->ctx.pending ? 0
                      : ac->ctx.paused_until_ms ? accept_pause_left_ms(&ac->ctx) : -1;
        int n = epoll_wait(ac->epfd, ev, MAX_LISTENERS + 1, timeout);
        if (n < 0 && errno != EINTR) {
            log_error("acceptor: epoll_wait: %s", strerror(errno));
            break;
        }
        int stop = 0;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == NULL)
                stop = 1;
            else
                accept_drain(&ac->ctx, ev[i].data.ptr, deal, ac);
        }
        /* Edge-triggered listeners: after a pause, nothing re-announces what is waiting. */
        if (ac->ctx.paused_until_ms && accept_pause_left_ms(&ac->ctx) == 0)
            accept_all(ac);
        for (int i = 0; i < ac->n_workers; i++)
            flush_batch(ac, (unsigned)i);
        if (stop)
            break;
    }
    return NULL;
}

int acceptor_init(struct acceptor *ac, const struct config *cfg, const struct listener *ls,
                  int n, struct worker *workers, int n_workers)
{
    memset(ac, 0, sizeof *ac);
    accept_ctx_init(&ac->ctx, cfg->set.max_conns);
    ac->workers = workers;
    ac->n_workers = n_workers;
    ac->dispatch = cfg->dispatch;
    ac->epfd = epoll_create1(EPOLL_CLOEXEC);
    ac->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ac->epfd < 0 || ac->stop_efd < 0) {
        log_error("acceptor: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n_workers; i++) {
        ac->batch[i] = calloc(BATCH_MAX, sizeof *ac->batch[i]);
        if (!ac->batch[i])
            return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ac->epfd, EPOLL_CTL_ADD, ac->stop_efd, &ev) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        ac->ctx.listeners[i] = ls[i];
        ev = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.ptr = &ac->ctx.listeners[i]};
        if (epoll_ctl(ac->epfd, EPOLL_CTL_ADD, ls[i].fd, &ev) < 0) {
            log_error("acceptor: epoll_ctl: %s", strerror(errno));
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

void acceptor_stop(struct acceptor *ac)
{
    uint64_t one = 1;
    if (write(ac->stop_efd, &one, sizeof one) < 0)
        log_error("acceptor: cannot signal stop: %s", strerror(errno));
    pthread_join(ac->thread, NULL);
    accept_ctx_close(&ac->ctx);
    for (int i = 0; i < ac->n_workers; i++)
        free(ac->batch[i]);
    close(ac->epfd);
    close(ac->stop_efd);
}
