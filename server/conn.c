#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"
#include "backend.h"
#include "peer.h"
#include "worker.h"

#define FLUSH_AT (64 * 1024)       /* send mid-batch once this much output is waiting */
#define DIRECT_READ_MIN 4096       /* read straight into a partial message's buffer */

/* Socket closed: its address may have one more connection (--max-conns-per-ip). */
static void conn_release_peer(struct worker *w, uint32_t peer)
{
    if (w->accept.peers)
        peer_release(w->accept.peers, peer);
}

void conn_open(struct worker *w, int fd, uint8_t proto, uint32_t peer)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        conn_release_peer(w, peer);
        counter_add(&w->stats.alloc_failures, 1);
        counter_add(&w->stats.closed, 1);
        return;
    }
    c->fd = fd;
    c->proto = proto;
    c->peer = peer;
    c->timer.list = TIMER_NONE;
    if (w->io->attach(w, c) < 0) {
        close(fd);
        conn_release_peer(w, peer);
        free(c);
        counter_add(&w->stats.closed, 1);
        return;
    }
    w->n_conns++;
    worker_timer_set(w, c, TIMER_IDLE);
    if (w->draining)
        conn_drain(w, c);
}

void conn_free(struct conn *c)
{
    buf_release(&c->in);
    buf_release(&c->out);
    buf_release(&c->sending);
    free(c);
}

void conn_close(struct worker *w, struct conn *c)
{
    if (c->flags & CONN_CLOSED)
        return;
    if (c->timer.list != TIMER_NONE)
        tlist_remove(&w->timers[c->timer.list], &c->timer);
    w->io->detach(w, c);
    conn_release_peer(w, c->peer);
    c->peer = PEER_NONE;
    buf_release(&c->in);
    buf_release(&c->out); /* not c->sending: a send in flight may still read it */
    buf_clear(&w->out); /* it only ever holds the replies of the connection being served */
    c->flags |= CONN_CLOSED;
    /* Freed after the event batch, so a later event in this batch finds CONN_CLOSED. */
    c->timer.next = (struct tnode *)w->closed;
    w->closed = c;
    w->n_conns--;
    counter_add(&w->stats.closed, 1);
}

void conn_fail(struct worker *w, struct conn *c, int err)
{
    if (err == ECONNRESET || err == EPIPE || err == ETIMEDOUT || err == EHOSTUNREACH)
        counter_add(&w->stats.resets, 1);
    else
        log_warn("worker %d: fd %d: %s", w->id, c->fd, strerror(err));
    conn_close(w, c);
}

void conn_nomem(struct worker *w, struct conn *c)
{
    counter_add(&w->stats.alloc_failures, 1);
    log_warn("worker %d: out of memory; closing a connection", w->id);
    conn_close(w, c);
}

/* Close once the last replies are out: at once when nothing unread is left behind,
 * else after a lingering close (so unread input does not turn our FIN into an RST
 * that destroys the last reply). */
static void conn_close_when_sent(struct worker *w, struct conn *c)
{
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
    worker_timer_set(w, c, TIMER_LINGER);
    w->io->linger(w, c);
}

/* HTTP requests that have begun but not finished run on the header deadline, which
 * further bytes do not push back (a trickle cannot hold a connection forever). */
static void conn_update_timer(struct worker *w, struct conn *c, int partial)
{
    if (c->proto != PROTO_HTTP || w->timers[TIMER_HEADER].timeout_ms == 0)
        return;
    if (partial && c->timer.list == TIMER_IDLE)
        worker_timer_set(w, c, TIMER_HEADER);
    else if (!partial && c->timer.list == TIMER_HEADER)
        worker_timer_set(w, c, TIMER_IDLE);
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
 * wait there (order) or when the backend sends asynchronously, else the worker's
 * scratch output, which epoll writes before the event ends. */
static struct buf *conn_reply_buf(struct worker *w, struct conn *c)
{
    return w->io->replies_in_conn || buf_len(&c->out) ? &c->out : &w->out;
}

/* Run the handler over data: c->in's contents (from_in) or fresh bytes. */
static void conn_input(struct worker *w, struct conn *c, const char *data, size_t len, int from_in)
{
    struct handler_io io = {
        .proto = (enum proto)c->proto,
        .cs = &c->cs,
        .out = conn_reply_buf(w, c),
        .state = c->handler_state,
        .fd = c->fd,
    };
    handler_process(&w->env, &io, data, len);
    c->handler_state = (uint8_t)io.state;
    counter_add(&w->stats.messages, io.messages);

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

int conn_received(struct worker *w, struct conn *c, const char *data, size_t len)
{
    counter_add(&w->stats.reads, 1);
    counter_add(&w->stats.bytes_in, (uint64_t)len);
    c->flags |= CONN_USED;
    worker_timer_touch(w, c);
    if (buf_len(&c->in) && data == buf_tail(&c->in)) {
        buf_commit(&c->in, len);
    } else if (buf_len(&c->in) && buf_append(&c->in, data, len) < 0) {
        conn_nomem(w, c);
        return 0;
    }
    if (buf_len(&c->in))
        conn_input(w, c, buf_head(&c->in), buf_len(&c->in), 1);
    else
        conn_input(w, c, data, len, 0);
    if (c->flags & CONN_CLOSED)
        return 0;
    if (buf_len(&w->out) + buf_len(&c->out) >= FLUSH_AT)
        w->io->send(w, c);
    if (c->flags & CONN_CLOSED)
        return 0;
    if (!(c->flags & CONN_READ_PAUSED) && conn_unsent(c) > w->set.max_output) {
        c->flags |= CONN_READ_PAUSED;
        counter_add(&w->stats.output_paused, 1);
        w->io->read_off(w, c);
        return 0;
    }
    return conn_reading(c);
}

void conn_peer_eof(struct worker *w, struct conn *c)
{
    c->flags |= CONN_PEER_EOF;
    if (buf_len(&c->in)) {
        counter_add(&w->stats.truncated, 1);
        buf_release(&c->in);
    }
}

void conn_sent(struct worker *w, struct conn *c, size_t n)
{
    counter_add(&w->stats.writes, 1);
    counter_add(&w->stats.bytes_out, (uint64_t)n);
    worker_timer_touch(w, c);
}

void conn_settle(struct worker *w, struct conn *c)
{
    if (c->flags & CONN_CLOSED)
        return;
    w->io->send(w, c);
    if (c->flags & (CONN_CLOSED | CONN_LINGER))
        return;
    size_t out = conn_unsent(c);
    if ((c->flags & CONN_READ_PAUSED) && out <= w->set.max_output / 2) {
        c->flags &= ~CONN_READ_PAUSED;
        w->io->read_on(w, c); /* data may wait in the socket with no new event coming */
    }
    if (out)
        return;
    if (c->flags & CONN_CLOSE_WHEN_SENT)
        conn_close_when_sent(w, c);
    else if (c->flags & CONN_PEER_EOF)
        conn_close(w, c); /* everything the peer sent is answered */
    else if (w->draining && !buf_len(&c->in) && ((c->flags & CONN_USED) || !w->drain_grace_ms))
        conn_close(w, c); /* shutting down and nothing half-received */
}

void conn_on_timeout(struct worker *w, struct conn *c)
{
    if (c->timer.list == TIMER_IDLE)
        counter_add(&w->stats.idle_timeouts, 1);
    else if (c->timer.list == TIMER_HEADER)
        counter_add(&w->stats.header_timeouts, 1);
    else if (c->timer.list == TIMER_LINGER)
        counter_add(&w->stats.linger_timeouts, 1);
    conn_close(w, c);
}

void conn_drain(struct worker *w, struct conn *c)
{
    w->io->revisit(w, c);
}
