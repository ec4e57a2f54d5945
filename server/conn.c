#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"
#include "backend.h"
#include "config.h"
#include "handler.h"
#include "listener.h"
#include "peer.h"
#include "proxy_stage.h"
#include "stats.h"
#include "worker_loop.h"

#define FLUSH_AT (64 * 1024)       /* send mid-batch once this much output is waiting */
#define DIRECT_READ_MIN 4096       /* read straight into a partial message's buffer */

/* Socket closed: its address may have one more connection (--max-conns-per-ip). */
static void conn_release_peer(struct worker *w, uint32_t peer)
{
    struct worker_loop *l = worker_loop(w);
    if (l->peers)
        peer_release(l->peers, peer);
}

void conn_open(struct worker *w, int fd, uint8_t proto, uint32_t peer)
{
    struct worker_loop *l = worker_loop(w);
    if ((proto & LISTENER_PROTO_PROXY) && !proxy_stage_trusted(w, fd)) {
        close(fd); /* at once: an untrusted peer gets no header stage, no reply */
        conn_release_peer(w, peer);
        counter_add(&l->stats->closed, 1);
        return;
    }
    struct conn *c = calloc(1, sizeof *c + l->io->conn_private);
    if (!c) {
        close(fd);
        conn_release_peer(w, peer);
        counter_add(&l->stats->alloc_failures, 1);
        counter_add(&l->stats->closed, 1);
        return;
    }
    c->fd = fd;
    c->proto = proto;
    c->peer = peer;
    c->timer.list = TIMER_NONE;
    if (l->io->attach(w, c) < 0) {
        close(fd);
        conn_release_peer(w, peer);
        free(c);
        counter_add(&l->stats->closed, 1);
        return;
    }
    l->n_conns++;
    worker_timer_set(w, &c->timer, TIMER_IDLE);
    /* The header runs on the header deadline (with --header-timeout 0, the idle one). */
    if ((proto & LISTENER_PROTO_PROXY) && l->timers[TIMER_HEADER].timeout_ms)
        worker_timer_set(w, &c->timer, TIMER_HEADER);
    if (l->draining)
        conn_drain(w, c);
}

void conn_free(struct worker *w, struct conn *c)
{
    struct worker_loop *l = worker_loop(w);
    if (l->io->conn_release)
        l->io->conn_release(c);
    buf_release(&c->in);
    buf_release(&c->out);
    free(c);
}

void conn_close(struct worker *w, struct conn *c)
{
    struct worker_loop *l = worker_loop(w);
    if (c->flags & CONN_CLOSED)
        return;
    if (c->timer.list != TIMER_NONE)
        tlist_remove(&l->timers[c->timer.list], &c->timer);
    l->io->detach(w, c);
    conn_release_peer(w, c->peer);
    c->peer = PEER_NONE;
    buf_release(&c->in);
    buf_release(&c->out); /* not what the backend sends: a send in flight may read it */
    c->flags |= CONN_CLOSED;
    /* Freed after the event batch, so a later event in this batch finds CONN_CLOSED. */
    c->timer.next = (struct tnode *)l->closed;
    l->closed = c;
    l->n_conns--;
    counter_add(&l->stats->closed, 1);
}

void conn_fail(struct worker *w, struct conn *c, int err)
{
    struct worker_loop *l = worker_loop(w);
    if (err == ECONNRESET || err == EPIPE || err == ETIMEDOUT || err == EHOSTUNREACH)
        counter_add(&l->stats->resets, 1);
    else
        log_warn("worker %d: fd %d: %s", l->id, c->fd, strerror(err));
    conn_close(w, c);
}

void conn_nomem(struct worker *w, struct conn *c)
{
    struct worker_loop *l = worker_loop(w);
    counter_add(&l->stats->alloc_failures, 1);
    log_warn("worker %d: out of memory; closing a connection", l->id);
    conn_close(w, c);
}

/* Close once the last replies are out: at once when nothing unread is left behind,
 * else after a lingering close (so unread input does not turn our FIN into an RST
 * that destroys the last reply). */
static void conn_close_when_sent(struct worker *w, struct conn *c)
{
    struct worker_loop *l = worker_loop(w);
    if ((c->flags & CONN_PEER_EOF) || !(c->flags & CONN_ERROR)) {
        conn_close(w, c);
        return;
    }
    if (shutdown(c->fd, SHUT_WR) < 0) {
        conn_close(w, c);
        return;
    }
    c->flags |= CONN_LINGER;
    buf_release(&c->in);
    buf_release(&c->out);
    worker_timer_set(w, &c->timer, TIMER_LINGER);
    l->io->linger(w, c);
}

/* HTTP requests that have begun but not finished run on the header deadline, which
 * further bytes do not push back (a trickle cannot hold a connection forever). */
static void conn_update_timer(struct worker *w, struct conn *c, int partial)
{
    struct worker_loop *l = worker_loop(w);
    if ((c->proto & LISTENER_PROTO_MASK) != PROTO_HTTP || l->timers[TIMER_HEADER].timeout_ms == 0)
        return;
    if (partial && c->timer.list == TIMER_IDLE)
        worker_timer_set(w, &c->timer, TIMER_HEADER);
    else if (!partial && c->timer.list == TIMER_HEADER)
        worker_timer_set(w, &c->timer, TIMER_IDLE);
}

/* Keep the unconsumed tail of data (the backend's memory) as the connection's partial
 * message, sized for the whole message when the codec knows its length. */
static int conn_keep_partial(struct conn *c, const char *data, size_t len, size_t need)
{
    if (buf_reserve(&c->in, need > len ? need : len) < 0)
        return -1;
    return buf_append(&c->in, data, len);
}

/* Where this batch's replies go: the connection's own buffer when earlier replies
 * wait there (order) or when the backend has no scratch (it sends asynchronously),
 * else the backend's scratch output, which it writes before the event ends. */
static struct buf *conn_reply_buf(struct worker *w, struct conn *c)
{
    struct worker_loop *l = worker_loop(w);
    return l->reply_scratch && !buf_len(&c->out) ? l->reply_scratch : &c->out;
}

/* Replies not yet taken by the kernel: c->out, and a send the backend has in flight. */
static size_t conn_unsent(struct worker *w, const struct conn *c)
{
    struct worker_loop *l = worker_loop(w);
    return buf_len(&c->out) + (l->io->unsent ? l->io->unsent(c) : 0);
}

/* Run the handler over data: c->in's contents (from_in) or fresh bytes. */
static void conn_input(struct worker *w, struct conn *c, const char *data, size_t len, int from_in)
{
    struct worker_loop *l = worker_loop(w);
    struct handler_io io = {
        .proto = (enum proto)(c->proto & LISTENER_PROTO_MASK),
        .metrics_only = (c->proto & LISTENER_PROTO_METRICS) != 0,
        .cs = &c->cs,
        .out = conn_reply_buf(w, c),
        .state = c->handler_state,
        .fd = c->fd,
    };
    handler_process(l->env, &io, data, len);
    c->handler_state = (uint8_t)io.state;
    counter_add(&l->stats->messages, io.messages);

    if (io.verdict == HANDLER_NOMEM) {
        conn_nomem(w, c);
        return;
    }
    if (io.verdict != HANDLER_CONTINUE) {
        c->flags |= CONN_CLOSE_WHEN_SENT;
        if (io.verdict == HANDLER_ERROR || io.consumed < len)
            c->flags |= CONN_ERROR; /* input is left unread: close by lingering */
        buf_release(&c->in);
        return;
    }
    if (from_in) {
        buf_consume(&c->in, io.consumed);
        if (io.need > buf_len(&c->in) && buf_reserve(&c->in, io.need - buf_len(&c->in)) < 0) {
            conn_nomem(w, c);
            return;
        }
        if (!buf_len(&c->in))
            buf_release(&c->in);
    } else if (io.consumed < len &&
               conn_keep_partial(c, data + io.consumed, len - io.consumed, io.need) < 0) {
        conn_nomem(w, c);
        return;
    }
    conn_update_timer(w, c, io.partial);
}

char *conn_direct_read(struct conn *c, size_t *room)
{
    if (!buf_len(&c->in) || buf_room(&c->in) < DIRECT_READ_MIN)
        return NULL;
    *room = buf_room(&c->in);
    return buf_tail(&c->in);
}

int conn_reading(const struct conn *c)
{
    const uint16_t stop = CONN_READ_PAUSED | CONN_PEER_EOF | CONN_CLOSE_WHEN_SENT | CONN_CLOSED |
                          CONN_LINGER;
    return !(c->flags & stop);
}

/* A +proxy connection's header stage (proxy_stage.h): 1 when the header is complete
 * and the protocol may run on what follows it, else 0 (waiting for more, or closed). */
static int conn_proxy_header(struct worker *w, struct conn *c, const char **data, size_t *len)
{
    struct proxy_stage_conn pc = {c->fd, &c->in, &c->peer, &c->handler_state};
    switch (proxy_stage_input(w, &pc, data, len)) {
    case PROXY_STAGE_WAIT:
        return 0;
    case PROXY_STAGE_REFUSED:
        conn_close(w, c); /* at once: nothing reached the protocol, nothing is answered */
        return 0;
    case PROXY_STAGE_NOMEM:
        conn_nomem(w, c);
        return 0;
    case PROXY_STAGE_DONE:
        break;
    }
    c->proto &= (uint8_t)~LISTENER_PROTO_PROXY;
    worker_timer_set(w, &c->timer, TIMER_IDLE); /* paid once: kept alive, it is ordinary */
    return 1;
}

int conn_received(struct worker *w, struct conn *c, const char *data, size_t len)
{
    struct worker_loop *l = worker_loop(w);
    struct worker_stats *st = l->stats;
    counter_add(&st->reads, 1);
    counter_add(&st->bytes_in, (uint64_t)len);
    c->flags |= CONN_USED;
    worker_timer_touch(w, &c->timer);
    if (buf_len(&c->in) && data == buf_tail(&c->in)) {
        buf_commit(&c->in, len);
    } else if (buf_len(&c->in) && buf_append(&c->in, data, len) < 0) {
        conn_nomem(w, c);
        return 0;
    }
    /* A +proxy connection's header first: the protocol sees only what follows it. */
    if ((c->proto & LISTENER_PROTO_PROXY) && !conn_proxy_header(w, c, &data, &len))
        return conn_reading(c);
    if (buf_len(&c->in))
        conn_input(w, c, buf_head(&c->in), buf_len(&c->in), 1);
    else if (len)
        conn_input(w, c, data, len, 0);
    if (c->flags & CONN_CLOSED)
        return 0;
    if ((l->reply_scratch ? buf_len(l->reply_scratch) : 0) + buf_len(&c->out) >= FLUSH_AT)
        l->io->send(w, c);
    if (c->flags & CONN_CLOSED)
        return 0;
    if (!(c->flags & CONN_READ_PAUSED) && conn_unsent(w, c) > l->set->max_output) {
        c->flags |= CONN_READ_PAUSED;
        counter_add(&st->output_paused, 1);
        l->io->read_off(w, c);
        return 0;
    }
    return conn_reading(c);
}

void conn_peer_eof(struct worker *w, struct conn *c)
{
    struct worker_loop *l = worker_loop(w);
    c->flags |= CONN_PEER_EOF;
    if (c->proto & LISTENER_PROTO_PROXY)
        proxy_stage_eof(w, c->fd, &c->in);
    if (buf_len(&c->in)) {
        counter_add(&l->stats->truncated, 1);
        buf_release(&c->in);
    }
}

void conn_sent(struct worker *w, struct conn *c, size_t n)
{
    struct worker_stats *st = worker_loop(w)->stats;
    counter_add(&st->writes, 1);
    counter_add(&st->bytes_out, (uint64_t)n);
    worker_timer_touch(w, &c->timer);
}

void conn_settle(struct worker *w, struct conn *c)
{
    struct worker_loop *l = worker_loop(w);
    if (c->flags & CONN_CLOSED)
        return;
    l->io->send(w, c);
    if (c->flags & (CONN_CLOSED | CONN_LINGER))
        return;
    size_t out = conn_unsent(w, c);
    if ((c->flags & CONN_READ_PAUSED) && out <= l->set->max_output / 2) {
        c->flags &= ~CONN_READ_PAUSED;
        l->io->read_on(w, c); /* data may wait in the socket with no new event coming */
    }
    if (out)
        return;
    if (c->flags & CONN_CLOSE_WHEN_SENT)
        conn_close_when_sent(w, c);
    else if (c->flags & CONN_PEER_EOF)
        conn_close(w, c); /* everything the peer sent is answered */
    else if (l->draining && !buf_len(&c->in) && ((c->flags & CONN_USED) || !l->drain_grace_ms))
        conn_close(w, c); /* shutting down and nothing half-received */
}

void conn_on_timeout(struct worker *w, struct conn *c)
{
    struct worker_loop *l = worker_loop(w);
    if (c->proto & LISTENER_PROTO_PROXY)
        proxy_stage_timeout(w, c->fd);
    else if (c->timer.list == TIMER_IDLE)
        counter_add(&l->stats->idle_timeouts, 1);
    else if (c->timer.list == TIMER_HEADER)
        counter_add(&l->stats->header_timeouts, 1);
    else if (c->timer.list == TIMER_LINGER)
        counter_add(&l->stats->linger_timeouts, 1);
    conn_close(w, c);
}

void conn_drain(struct worker *w, struct conn *c)
{
    struct worker_loop *l = worker_loop(w);
    l->io->revisit(w, c);
}
