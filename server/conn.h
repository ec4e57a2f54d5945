/* conn: one client connection, owned by exactly one worker, and the state machine
 * that serves it whatever the backend (backend.h) does the I/O.
 *
 * A backend reports what happened (bytes arrived, the peer's EOF, bytes sent, an
 * error); conn.c runs the handler, keeps partial messages, decides backpressure, when
 * to close and how, and keeps timers and counters; it asks the backend, through its
 * hooks, to send, to stop or resume reading, and to let go of the socket.
 *
 * A connection holds memory only for what is in flight: a partial message that has
 * not finished arriving (in) and replies not sent yet (out, and with io_uring the
 * send in flight). An idle connection costs this struct alone: 136 bytes on x86_64 (a
 * 144-byte malloc chunk), held to that by the assertion below the struct. */
#ifndef WHARF_CONN_H
#define WHARF_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/codec.h"
#include "timer.h"

struct worker;

enum conn_flag {
    CONN_PEER_EOF = 1u << 0,     /* the peer will send nothing more */
    CONN_READ_PAUSED = 1u << 1,  /* output passed --max-output: not reading until it drains */
    CONN_CLOSE_WHEN_SENT = 1u << 2, /* the replies in out are the last ones */
    CONN_LINGER = 1u << 3,       /* our side is shut down; discarding input until EOF */
    CONN_CLOSED = 1u << 4,       /* closed; the struct is freed after the event batch */
    CONN_TODO = 1u << 5,         /* on the worker's to-do list (todo_next) */
    CONN_ERROR = 1u << 6,        /* closing because of a protocol error */
    CONN_RDHUP = 1u << 7,        /* epoll saw the peer's FIN: read on to EOF, even after a short read */
    CONN_RECV_ARMED = 1u << 8,   /* io_uring: a multishot receive is armed */
    CONN_RECV_CANCEL = 1u << 9,  /* io_uring: a cancel of that receive is on its way */
    CONN_SENDING = 1u << 10,     /* io_uring: a send of c->sending is in flight */
    CONN_USED = 1u << 11,        /* has received bytes: draining may close it when idle */
    CONN_FIXED = 1u << 12,       /* io_uring: also in the ring's file table, at index fd */
    CONN_CANCEL_LATER = 1u << 13, /* io_uring: a cancel found no SQE; the to-do list sends it */
};

struct conn {
    struct tnode timer;      /* idle, header or linger deadline (first: see conn_of_timer) */
    struct conn *todo_next;  /* worker's to-do list (epoll: read again; io_uring: send) */
    struct buf in;           /* a partial message only */
    struct buf out;          /* replies not handed to the kernel yet */
    struct buf sending;      /* io_uring: the send in flight; frozen until it completes */
    struct codec_state cs;
    int fd;
    uint16_t flags;          /* enum conn_flag */
    uint8_t proto;           /* enum proto */
    uint8_t handler_state;   /* struct handler_io.state, kept between reads */
    uint8_t inflight;        /* io_uring: operations whose last completion is still due */
    uint32_t peer;           /* its entry in the --max-conns-per-ip table, or PEER_NONE */
};

/* The README and the memory figures quote 136 bytes per idle connection: a field that
 * grows the struct must update them too (or be placed in the padding). */
_Static_assert(sizeof(struct conn) <= 136, "struct conn grew past the documented 136 bytes");

static inline struct conn *conn_of_timer(struct tnode *n) { return (struct conn *)n; }

/* Replies not yet taken by the kernel. */
static inline size_t conn_unsent(const struct conn *c)
{
    return buf_len(&c->out) + buf_len(&c->sending);
}

/* Take ownership of an accepted socket: allocate, hand it to the backend, and serve
 * it. On failure the socket is closed and counted. */
void conn_open(struct worker *w, int fd, uint8_t proto, uint32_t peer);

/* Close now: the backend lets go of the socket; the memory is freed after the event
 * batch, or once the backend's last completion for it has arrived. */
void conn_close(struct worker *w, struct conn *c);

/* The socket failed (err: an errno): resets are counted, anything else logged. */
void conn_fail(struct worker *w, struct conn *c, int err);

/* len bytes arrived at data (the backend's memory, valid during the call only; or
 * written at c->in's tail when data == buf_tail(&c->in)). Runs the handler and keeps
 * any partial message. Returns 1 when the backend may read on, 0 when it must stop
 * (closed, closing, or paused by backpressure). */
int conn_received(struct worker *w, struct conn *c, const char *data, size_t len);

/* Where the backend may read straight into the connection's partial-message buffer
 * (NULL when there is none worth it): *room bytes at the returned address. */
char *conn_direct_read(struct conn *c, size_t *room);

/* The peer sent its EOF (read returned 0). */
void conn_peer_eof(struct worker *w, struct conn *c);

/* The kernel took n bytes of replies. */
void conn_sent(struct worker *w, struct conn *c, size_t n);

/* Whether input is still wanted: not closed, closing, at EOF or paused. */
int conn_reading(const struct conn *c);

/* After an event: send what was produced, then decide the connection's fate (resume
 * reading when output drained, close when everything is answered). */
void conn_settle(struct worker *w, struct conn *c);

/* Out of memory while serving c: count it, close it. */
void conn_nomem(struct worker *w, struct conn *c);

/* A timer of c ran out (which one: c->timer.list): count it as an idle, header or
 * linger timeout, and close c. */
void conn_on_timeout(struct worker *w, struct conn *c);

/* Graceful shutdown has begun: read what is waiting, answer it, close when idle. */
void conn_drain(struct worker *w, struct conn *c);

/* Free a closed connection's memory (the worker calls it when nothing refers to it). */
void conn_free(struct conn *c);

#endif
