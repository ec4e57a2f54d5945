/* conn: one client connection, owned by exactly one worker.
 *
 * A connection holds memory only for what is in flight: a partial message that has
 * not finished arriving (in) and replies the socket has not taken yet (out). Reads go
 * into the worker's scratch buffer and replies into the worker's output buffer, so an
 * idle connection costs this struct alone (about 100 bytes). */
#ifndef WHARF_CONN_H
#define WHARF_CONN_H

#include <stdint.h>

#include "../common/buf.h"
#include "../common/codec.h"
#include "timer.h"

struct worker;

enum conn_flag {
    CONN_PEER_EOF = 1u << 0,     /* read returned 0: the peer will send nothing more */
    CONN_READ_PAUSED = 1u << 1,  /* output passed --max-output: not reading until it drains */
    CONN_CLOSE_WHEN_SENT = 1u << 2, /* the replies in out are the last ones */
    CONN_LINGER = 1u << 3,       /* our side is shut down; discarding input until EOF */
    CONN_CLOSED = 1u << 4,       /* closed; the struct is freed after the event batch */
    CONN_READY = 1u << 5,        /* on the worker's list of connections to read again */
    CONN_ERROR = 1u << 6,        /* closing because of a protocol error */
    CONN_RDHUP = 1u << 7,        /* epoll saw the peer's FIN: read on to EOF, even after a short read */
};

struct conn {
    struct tnode timer;      /* idle, header or linger deadline (first: see conn_of_timer) */
    struct conn *ready_next; /* worker's read-again list, or its list of closed conns */
    struct buf in;           /* a partial message only */
    struct buf out;          /* unsent replies only */
    struct codec_state cs;
    int fd;
    uint16_t flags;          /* enum conn_flag */
    uint8_t proto;           /* enum proto */
    uint8_t handler_state;   /* struct handler_io.state, kept between reads */
};

static inline struct conn *conn_of_timer(struct tnode *n) { return (struct conn *)n; }

/* Take ownership of an accepted socket: allocate, register with the worker's epoll
 * (once, edge-triggered, for reads and writes), and serve what is already there.
 * On failure the socket is closed and counted. */
void conn_open(struct worker *w, int fd, uint8_t proto);

/* Handle readiness reported by epoll. */
void conn_on_event(struct worker *w, struct conn *c, uint32_t events);

/* Read again (after a fairness cap or the end of backpressure). */
void conn_resume_read(struct worker *w, struct conn *c);

/* Close now: the fd is closed at once, the memory after the current event batch. */
void conn_close(struct worker *w, struct conn *c);

/* A timer of c ran out (which one: c->timer.list). */
void conn_on_timeout(struct worker *w, struct conn *c);

/* Graceful shutdown has begun: read what is waiting, answer it, close when idle. */
void conn_drain(struct worker *w, struct conn *c);

#endif
