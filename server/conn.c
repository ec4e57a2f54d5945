#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"
#include "worker.h"

#define READS_PER_EVENT 8          /* then other connections get a turn */
#define FLUSH_AT (64 * 1024)       /* write mid-batch once this much output is waiting */
#define DIRECT_READ_MIN 4096       /* read straight into a partial message's buffer */

static void conn_settle(struct worker *w, struct conn *c);

void conn_open(struct worker *w, int fd, uint8_t proto)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        counter_add(&w->stats.alloc_failures, 1);
        counter_add(&w->stats.closed, 1);
        return;
    }
    c->fd = fd;
    c->proto = proto;
    c->timer.list = TIMER_NONE;
    /* Registered once for both directions: "want to write" is the non-empty out
     * buffer, so no epoll_ctl is ever needed per reply. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        log_warn("worker %d: epoll_ctl add: %s", w->id, strerror(errno));
        close(fd);
        free(c);
        counter_add(&w->stats.closed, 1);
        return;
    }
    w->n_conns++;
    worker_timer_set(w, c, TIMER_IDLE);
    if (w->draining)
        conn_drain(w, c);
}

void conn_close(struct worker *w, struct conn *c)
{
    if (c->flags & CONN_CLOSED)
        return;
    if (c->timer.list != TIMER_NONE)
        tlist_remove(&w->timers[c->timer.list], &c->timer);
    /* close() also removes the fd from epoll: it is never dup'ed. */
    close(c->fd);
    buf_release(&c->in);
    buf_release(&c->out);
    buf_clear(&w->out); /* it only ever holds the replies of the connection being served */
    c->flags |= CONN_CLOSED;
    /* Freed after the event batch, so a later event in this batch finds CONN_CLOSED. */
    c->timer.next = (struct tnode *)w->closed;
    w->closed = c;
    w->n_conns--;
    counter_add(&w->stats.closed, 1);
}

/* The peer broke the connection (reset, broken pipe): count it, never log it loudly. */
static void conn_fail(struct worker *w, struct conn *c, int err)
{
    if (err == ECONNRESET || err == EPIPE || err == ETIMEDOUT || err == EHOSTUNREACH)
        counter_add(&w->stats.resets, 1);
    else
        log_warn("worker %d: fd %d: %s", w->id, c->fd, strerror(err));
    conn_close(w, c);
}

static void conn_nomem(struct worker *w, struct conn *c)
{
    counter_add(&w->stats.alloc_failures, 1);
    log_warn("worker %d: out of memory; closing a connection", w->id);
    conn_close(w, c);
}

/* Input after our shutdown(SHUT_WR): discarded until the peer's EOF (lingering close,
 * so unread data does not turn our FIN into an RST that destroys the last reply). */
static void conn_linger_read(struct worker *w, struct conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, w->rbuf, WORKER_RBUF_SIZE);
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

/* Close once the last replies are out: at once when nothing unread is left behind,
 * else after a lingering close. */
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
    conn_linger_read(w, c);
}

/* Write what is waiting: the worker's output buffer (replies produced during this
 * event) or the connection's own (what an earlier write left over). Whatever the
 * socket does not take moves into the connection's buffer. */
static void conn_flush(struct worker *w, struct conn *c)
{
    struct buf *b = buf_len(&w->out) ? &w->out : &c->out;
    while (buf_len(b)) {
        size_t len = buf_len(b);
        ssize_t n = write(c->fd, buf_head(b), len);
        if (n > 0) {
            counter_add(&w->stats.writes, 1);
            counter_add(&w->stats.bytes_out, (uint64_t)n);
            buf_consume(b, (size_t)n);
            worker_timer_touch(w, c);
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
    if (b == &w->out) {
        if (buf_len(b) && buf_append(&c->out, buf_head(b), buf_len(b)) < 0) {
            conn_nomem(w, c);
            return;
        }
        buf_clear(b);
    }
    if (!buf_len(&c->out))
        buf_release(&c->out);
}

static size_t pending_output(const struct worker *w, const struct conn *c)
{
    return buf_len(&w->out) + buf_len(&c->out);
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

/* Keep the unconsumed tail of data (read into scratch) as the connection's partial
 * message, sized for the whole message when the codec knows its length. */
static int conn_keep_partial(struct conn *c, const char *data, size_t len, size_t need)
{
    if (buf_reserve(&c->in, need > len ? need : len) < 0)
        return -1;
    return buf_append(&c->in, data, len);
}

/* Run the handler over data: c->in's contents (from_in) or fresh bytes in scratch. */
static void conn_input(struct worker *w, struct conn *c, const char *data, size_t len, int from_in)
{
    struct handler_io io = {
        .proto = (enum proto)c->proto,
        .cs = &c->cs,
        .out = buf_len(&c->out) ? &c->out : &w->out,
        .state = c->handler_state,
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

/* Read and answer until the socket is drained, the output must drain first, or this
 * connection has had its share of the loop. */
static void conn_read(struct worker *w, struct conn *c)
{
    const uint16_t stop = CONN_READ_PAUSED | CONN_PEER_EOF | CONN_CLOSE_WHEN_SENT | CONN_CLOSED;
    for (int reads = 0; reads < READS_PER_EVENT;) {
        if (c->flags & stop)
            return;
        int direct = buf_len(&c->in) && buf_room(&c->in) >= DIRECT_READ_MIN;
        char *dst = direct ? buf_tail(&c->in) : w->rbuf;
        size_t room = direct ? buf_room(&c->in) : WORKER_RBUF_SIZE;
        ssize_t n = read(c->fd, dst, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                conn_fail(w, c, errno);
            return;
        }
        if (n == 0) {
            c->flags |= CONN_PEER_EOF;
            if (buf_len(&c->in)) {
                counter_add(&w->stats.truncated, 1);
                buf_release(&c->in);
            }
            return;
        }
        reads++;
        counter_add(&w->stats.reads, 1);
        counter_add(&w->stats.bytes_in, (uint64_t)n);
        worker_timer_touch(w, c);
        if (direct) {
            buf_commit(&c->in, (size_t)n);
        } else if (buf_len(&c->in)) {
            if (buf_append(&c->in, w->rbuf, (size_t)n) < 0) {
                conn_nomem(w, c);
                return;
            }
        }
        if (buf_len(&c->in))
            conn_input(w, c, buf_head(&c->in), buf_len(&c->in), 1);
        else
            conn_input(w, c, w->rbuf, (size_t)n, 0);
        if (c->flags & CONN_CLOSED)
            return;
        if (pending_output(w, c) >= FLUSH_AT)
            conn_flush(w, c);
        if (c->flags & CONN_CLOSED)
            return;
        if (buf_len(&c->out) > w->set.max_output) {
            c->flags |= CONN_READ_PAUSED;
            counter_add(&w->stats.output_paused, 1);
            return;
        }
        /* A short read drained the socket: edge-triggered epoll reports the next bytes,
         * unless the FIN came with these ones, which only a read returning 0 shows. */
        if ((size_t)n < room && !(c->flags & CONN_RDHUP))
            return;
    }
    worker_mark_ready(w, c);
}

/* After reads and writes: send what was produced, then decide the connection's fate. */
static void conn_settle(struct worker *w, struct conn *c)
{
    if (buf_len(&w->out))
        conn_flush(w, c);
    if (c->flags & (CONN_CLOSED | CONN_LINGER))
        return;
    size_t out = buf_len(&c->out);
    if ((c->flags & CONN_READ_PAUSED) && out <= w->set.max_output / 2) {
        c->flags &= ~CONN_READ_PAUSED;
        worker_mark_ready(w, c); /* data may wait in the socket with no new edge coming */
    }
    if (out)
        return;
    if (c->flags & CONN_CLOSE_WHEN_SENT)
        conn_close_when_sent(w, c);
    else if (c->flags & CONN_PEER_EOF)
        conn_close(w, c); /* everything the peer sent is answered */
    else if (w->draining && !buf_len(&c->in))
        conn_close(w, c); /* shutting down and nothing half-received */
}

void conn_on_event(struct worker *w, struct conn *c, uint32_t events)
{
    if (c->flags & CONN_CLOSED)
        return;
    if (c->flags & CONN_LINGER) {
        conn_linger_read(w, c);
        return;
    }
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->flags |= CONN_RDHUP;
    if (buf_len(&c->out) && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        conn_flush(w, c);
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
        conn_read(w, c);
    if (!(c->flags & CONN_CLOSED))
        conn_settle(w, c);
}

void conn_resume_read(struct worker *w, struct conn *c)
{
    if (c->flags & (CONN_CLOSED | CONN_LINGER))
        return;
    conn_read(w, c);
    if (!(c->flags & CONN_CLOSED))
        conn_settle(w, c);
}

void conn_on_timeout(struct worker *w, struct conn *c)
{
    if (c->timer.list == TIMER_IDLE)
        counter_add(&w->stats.idle_timeouts, 1);
    else if (c->timer.list == TIMER_HEADER)
        counter_add(&w->stats.header_timeouts, 1);
    conn_close(w, c);
}

void conn_drain(struct worker *w, struct conn *c)
{
    conn_resume_read(w, c);
}
