#include "accept_ctx.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"

/* Accepted per listener before the loop serves others: a flood of connects on a
 * reuseport worker's listener must not starve the connections it already has. */
#define ACCEPT_BATCH 64
#define SWEEP_BATCHES 16       /* accept_sweep: at most this many ACCEPT_BATCHes a listener */
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

uint64_t accept_live_connections(const struct accept_ctx *a)
{
    return a->registry ? stats_active_connections(a->registry) : 0;
}

int accept_drain(struct accept_ctx *a, const struct listener *l, accept_deliver_fn deliver,
                 void *arg)
{
    if (l->fd < 0) /* closed (draining) while its event waited in the same batch */
        return 0;
    if (a->paused_until_ms) {
        if (accept_pause_left_ms(a) > 0)
            return 1;
        a->paused_until_ms = 0;
    }
    uint64_t live = accept_live_connections(a);
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
            if (accept_admit(a, l, fd, &live, &peer))
                deliver(arg, fd, listener_conn_proto(l), peer);
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

int accept_admit(struct accept_ctx *a, const struct listener *l, int fd, uint64_t *live,
                 uint32_t *peer)
{
    counter_add(&a->stats.accepted, 1);
    *peer = PEER_NONE;
    uint64_t max_conns = atomic_load_explicit(&a->max_conns, memory_order_relaxed);
    if (max_conns && *live >= max_conns) {
        /* Accept and close rather than leave it to time out in the backlog. */
        close(fd);
        counter_add(&a->stats.rejected_max_conns, 1);
        *live = accept_live_connections(a);
        return 0;
    }
    if (a->peers && !(l->ep.modifiers & LISTEN_MOD_PROXY)) {
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

void accept_sweep(struct accept_ctx *a, accept_deliver_fn deliver, void *arg)
{
    for (int i = 0; i < a->n_listeners; i++)
        for (int k = 0; k < SWEEP_BATCHES; k++)
            if (accept_drain(a, &a->listeners[i], deliver, arg) || !(a->pending & (1u << i)))
                break;
}
