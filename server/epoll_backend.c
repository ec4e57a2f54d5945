#include "epoll_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../common/log.h"
#include "conn.h"
#include "udp.h"
#include "worker.h"

#define MAX_EVENTS 512
#define READS_PER_EVENT 4          /* then other connections get a turn */
#define RBUF_SIZE (64 * 1024)
#define UDP_FINAL_CALLS 64         /* udp_serve calls per socket when the loop ends */

/* The worker's loop state (w->loop.io_state). */
struct ep_loop {
    int epfd;
    struct buf out;                /* replies of the connection being served (reply_scratch) */
    char rbuf[RBUF_SIZE];          /* read scratch */
};

/* c->io_flags */
enum { EP_RDHUP = 1u << 0 };       /* saw the peer's FIN: read on to EOF, even after a short read */

static inline struct ep_loop *ep_of(struct worker *w) { return w->loop.io_state; }

/* ---- connection I/O ---- */

static int ep_attach(struct worker *w, struct conn *c)
{
    /* Registered once for both directions: "want to write" is the non-empty out
     * buffer, so no epoll_ctl is ever needed per reply. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(ep_of(w)->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        log_warn("worker %d: epoll_ctl add: %s", w->loop.id, strerror(errno));
        return -1;
    }
    return 0;
}

static void ep_detach(struct worker *w, struct conn *c)
{
    /* close() also removes the fd from epoll: it is never dup'ed. */
    close(c->fd);
    buf_clear(&ep_of(w)->out); /* it only ever holds the replies of the connection served */
}

/* Input after our shutdown(SHUT_WR): discarded until the peer's EOF. */
static void ep_linger(struct worker *w, struct conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, ep_of(w)->rbuf, RBUF_SIZE);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        conn_close(w, c);
        return;
    }
}

/* Write what is waiting: the worker's output buffer (replies produced during this
 * event) or the connection's own (what an earlier write left over). Whatever the
 * socket does not take moves into the connection's buffer. */
static void ep_flush(struct worker *w, struct conn *c)
{
    struct buf *scratch = &ep_of(w)->out;
    struct buf *b = buf_len(scratch) ? scratch : &c->out;
    while (buf_len(b)) {
        size_t len = buf_len(b);
        ssize_t n = write(c->fd, buf_head(b), len);
        if (n > 0) {
            conn_sent(w, c, (size_t)n);
            buf_consume(b, (size_t)n);
            if ((size_t)n < len)
                break; /* the socket is full; EPOLLOUT will say when it has room */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        conn_fail(w, c, n < 0 ? errno : EPIPE);
        return;
    }
    if (b == scratch) {
        if (buf_len(b) && buf_append(&c->out, buf_head(b), buf_len(b)) < 0) {
            conn_nomem(w, c);
            return;
        }
        buf_clear(b);
    }
    if (!buf_len(&c->out))
        buf_release(&c->out);
}

/* Replies of this event are in the loop's scratch: write them now. Replies already
 * waiting in the connection's buffer go when EPOLLOUT says the socket has room. */
static void ep_send(struct worker *w, struct conn *c)
{
    if (buf_len(&ep_of(w)->out))
        ep_flush(w, c);
}

/* Read and answer until the socket is drained, the output must drain first, or this
 * connection has had its share of the loop. */
static void ep_read(struct worker *w, struct conn *c)
{
    for (int reads = 0; reads < READS_PER_EVENT;) {
        if (!conn_reading(c))
            return;
        size_t room;
        char *dst = conn_direct_read(c, &room);
        if (!dst) {
            dst = ep_of(w)->rbuf;
            room = RBUF_SIZE;
        }
        ssize_t n = read(c->fd, dst, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                conn_fail(w, c, errno);
            return;
        }
        if (n == 0) {
            conn_peer_eof(w, c);
            return;
        }
        reads++;
        if (!conn_received(w, c, dst, (size_t)n))
            return;
        /* A short read drained the socket: edge-triggered epoll reports the next bytes,
         * unless the FIN came with these ones, which only a read returning 0 shows. */
        if ((size_t)n < room && !(c->io_flags & EP_RDHUP))
            return;
    }
    worker_mark_todo(w, c);
}

static void ep_read_on(struct worker *w, struct conn *c)
{
    worker_mark_todo(w, c);
}

static void ep_read_off(struct worker *w, struct conn *c)
{
    (void)w;
    (void)c; /* ep_read stops at CONN_READ_PAUSED; the edge is kept by the socket */
}

static void ep_revisit(struct worker *w, struct conn *c)
{
    if (c->flags & (CONN_CLOSED | CONN_LINGER))
        return;
    ep_read(w, c);
    conn_settle(w, c);
}

static void ep_on_event(struct worker *w, struct conn *c, uint32_t events)
{
    if (c->flags & CONN_CLOSED)
        return;
    if (c->flags & CONN_LINGER) {
        ep_linger(w, c);
        return;
    }
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->io_flags |= EP_RDHUP;
    if (buf_len(&c->out) && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        ep_flush(w, c);
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
        ep_read(w, c);
    conn_settle(w, c);
}

/* ---- the loop ---- */

static int is_listener(const struct worker *w, const void *p)
{
    const struct listener *l = p;
    return l >= w->accept.listeners && l < w->accept.listeners + MAX_LISTENERS;
}

static int is_udp(const struct worker *w, const void *p)
{
    const struct udp_port *u = p;
    return u >= w->udp && u < w->udp + MAX_LISTENERS;
}

static void ep_accept_resume(struct worker *w)
{
    for (int i = 0; i < w->accept.n_listeners; i++)
        accept_drain(&w->accept, &w->accept.listeners[i], worker_deliver_own, w);
}

static void ep_accept_stop(struct worker *w)
{
    (void)w; /* closing a listener removes it from epoll */
}

/* udp:// sockets: level-triggered, so udp_serve may stop after a few batches and be
 * called again for the rest; data.ptr points into w->udp. */
static int ep_watch_udp(struct worker *w, struct ep_loop *ep)
{
    for (int i = 0; i < w->n_udp; i++) {
        if (udp_port_init(&w->udp[i], w->loop.id) < 0)
            return -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->udp[i]};
        if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, w->udp[i].fd, &ev) < 0) {
            log_error("worker %d: epoll_ctl on a udp socket: %s", w->loop.id, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int ep_init(struct worker *w)
{
    struct ep_loop *ep = malloc(sizeof *ep);
    if (!ep) {
        log_error("worker %d: %s", w->loop.id, strerror(errno));
        return -1;
    }
    ep->out = (struct buf){0};
    w->loop.io_state = ep;
    w->loop.reply_scratch = &ep->out;
    ep->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ep->epfd < 0) {
        log_error("worker %d: %s", w->loop.id, strerror(errno));
        return -1;
    }
    /* data.ptr == &w->handoff marks the handoff eventfd (edge-triggered: never read,
     * see handoff.h); listeners point into w->accept.listeners; else a connection. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = &w->handoff};
    if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, w->handoff.efd, &ev) < 0) {
        log_error("worker %d: epoll_ctl: %s", w->loop.id, strerror(errno));
        return -1;
    }
    for (int i = 0; i < w->accept.n_listeners; i++) {
        struct listener *l = &w->accept.listeners[i];
        ev = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.ptr = l};
        if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
            log_error("worker %d: epoll_ctl on a listener: %s", w->loop.id, strerror(errno));
            return -1;
        }
    }
    return ep_watch_udp(w, ep);
}

static void ep_fini(struct worker *w)
{
    struct ep_loop *ep = ep_of(w);
    if (!ep)
        return;
    if (ep->epfd >= 0)
        close(ep->epfd);
    buf_release(&ep->out);
    for (int i = 0; i < w->n_udp; i++)
        udp_port_fini(&w->udp[i]);
    free(ep);
    w->loop.io_state = NULL;
    w->loop.reply_scratch = NULL;
}

static void ep_dispatch(struct worker *w, struct epoll_event *ev, int n)
{
    for (int i = 0; i < n; i++) {
        void *p = ev[i].data.ptr;
        if (p == &w->handoff)
            worker_take_handoff(w);
        else if (is_listener(w, p))
            accept_drain(&w->accept, p, worker_deliver_own, w);
        else if (is_udp(w, p))
            udp_serve(&w->loop, p, !!(ev[i].events & EPOLLIN), !!(ev[i].events & EPOLLERR));
        else
            ep_on_event(w, p, ev[i].events);
    }
}

static void ep_run(struct worker *w)
{
    struct epoll_event ev[MAX_EVENTS];
    for (;;) {
        worker_heartbeat(w);
        if (w->accept.pending)
            accept_pending(&w->accept, worker_deliver_own, w);
        int n = epoll_wait(ep_of(w)->epfd, ev, MAX_EVENTS, worker_next_timeout_ms(w));
        if (n < 0 && errno != EINTR) {
            log_error("worker %d: epoll_wait: %s", w->loop.id, strerror(errno));
            break;
        }
        counter_add(&w->stats.loop_waits, 1);
        worker_update_clock(w);
        ep_dispatch(w, ev, n > 0 ? n : 0);
        if (worker_turn_end(w))
            break;
    }
    /* Datagrams already queued when the drain ended are answered before the sockets
     * close: until the queue is empty, or (a flood keeps it full) UDP_FINAL_CALLS calls. */
    for (int i = 0; i < w->n_udp; i++)
        for (int k = 0; w->udp[i].b && k < UDP_FINAL_CALLS; k++)
            if (udp_serve(&w->loop, &w->udp[i], 1, 1))
                break;
}

const struct backend epoll_backend = {
    .name = "epoll",
    .conn_private = 0, /* its one flag is c->io_flags */
    .datagrams = 1,
    .init = ep_init,
    .run = ep_run,
    .fini = ep_fini,
    .attach = ep_attach,
    .detach = ep_detach,
    .send = ep_send,
    .read_on = ep_read_on,
    .read_off = ep_read_off,
    .linger = ep_linger,
    .revisit = ep_revisit,
    .accept_stop = ep_accept_stop,
    .accept_resume = ep_accept_resume,
};
