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
 * send in flight, in the backend's area). An idle connection costs this struct and
 * its backend's area alone: on x86_64, 104 bytes with epoll (a 112-byte malloc chunk),
 * 136 with io_uring (144), held to that by the assertions below the struct and in
 * uring_int.h. */
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
    CONN_USED = 1u << 7,         /* has received bytes: draining may close it when idle */
};

/* What the backend keeps per connection is its own (backend.h): io_flags, a byte that
 * would otherwise be padding, and io_private, conn_private bytes allocated with the
 * struct. conn.c touches neither. */
struct conn {
    struct tnode timer;      /* idle, header or linger deadline (first: see conn_of_timer) */
    struct conn *todo_next;  /* worker's to-do list (epoll: read again; io_uring: send) */
    struct buf in;           /* a partial message only */
    struct buf out;          /* replies not handed to the kernel yet */
    struct codec_state cs;
    int fd;
    uint32_t peer;           /* its entry in the --max-conns-per-ip table, or PEER_NONE */
    uint8_t flags;           /* enum conn_flag */
    uint8_t proto;           /* listener_conn_proto: enum proto, LISTENER_PROTO_PROXY (until
                              * its header is in), LISTENER_PROTO_METRICS */
    uint8_t handler_state;   /* struct handler_io.state, kept between reads */
    uint8_t io_flags;        /* the backend's */
    _Alignas(8) unsigned char io_private[]; /* the backend's: backend.conn_private bytes */
};

/* The README and the memory figures quote 104 bytes per idle connection with epoll (a
 * 112-byte malloc chunk; io_uring adds its conn_private): a field that grows the struct
 * must update them too (or be placed in the padding). */
_Static_assert(sizeof(struct conn) <= 104, "struct conn grew past the documented 104 bytes");

static inline struct conn *conn_of_timer(struct tnode *n) { return (struct conn *)n; }

/* Take ownership of an accepted socket: allocate, hand it to the backend, and serve
 * it. On failure the socket is closed and counted. proto is listener_conn_proto's byte:
 * with LISTENER_PROTO_PROXY, a peer outside --proxy-from is closed here, and the others
 * run the header stage first (proxy_stage.h). */
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
void conn_free(struct worker *w, struct conn *c);

#endif
