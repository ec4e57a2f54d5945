/* backend: the I/O side of a worker, and which one runs.
 *
 * A worker's connections follow one state machine (conn.c: handler calls, partial
 * messages, backpressure, close-when-sent, drain, timers, counters) whatever does the
 * I/O. A backend is what differs: how the loop waits, how bytes come in and go out,
 * how a connection is registered and let go. Two exist: epoll (epoll_backend.c,
 * always built) and io_uring (uring*.c, built when liburing is found).
 *
 * The contract.
 *
 * Threads. Every hook is called on the worker's own thread, and only there: init,
 * run and fini by the worker's thread function (worker.c); the per-connection hooks
 * by conn.c and worker.c while run is on the stack (and by fini's reaping). A backend
 * needs no lock: the only state shared with other threads is the handoff queue and the
 * counters, reached through worker.h (worker_take_handoff, counter_add).
 *
 * What a backend owns. Its loop state (its epoll descriptor, its ring, its buffers),
 * allocated by init and hung on w->loop.io_state, freed by fini; struct worker holds
 * nothing of it. Its per-connection state, in the connection's own allocation: the
 * byte c->io_flags and conn_private bytes at c->io_private (8-aligned), zeroed when
 * the connection is opened; conn.c never reads or writes either.
 *
 * What the backend tells conn.c (conn.h): bytes arrived (conn_received, or
 * conn_direct_read to read into a partial message), the peer's EOF (conn_peer_eof),
 * bytes sent (conn_sent), a socket error (conn_fail); and, after each event on a
 * connection, conn_settle. What conn.c asks of the backend: the hooks below.
 *
 * Lifetime of a connection. conn_open allocates it (sizeof(struct conn) +
 * conn_private) and calls attach; conn_close calls detach once, marks it
 * CONN_CLOSED and puts it on the worker's closed list; the worker frees it after the
 * event batch, unless conn_busy says operations still name it (then after their last
 * completion, or after fini has reaped everything), calling conn_release first. A
 * backend must treat a CONN_CLOSED connection's events as "count down and forget". */
#ifndef WHARF_BACKEND_H
#define WHARF_BACKEND_H

#include <stddef.h>

#include "config.h"

struct worker;
struct conn;

struct backend {
    const char *name;    /* "epoll", "io_uring": /stats, the log */
    size_t conn_private; /* bytes of per-connection state at c->io_private */
    /* 1: serves udp:// sockets (udp.h). Its init calls udp_port_init for each of
     * w->udp[0..n_udp) and watches the socket, run calls udp_serve when one is readable
     * or has errors queued, and once more for each after the loop's last turn (what is
     * queued then is answered before the worker exits), fini calls udp_port_fini.
     * 0: main refuses udp:// listeners with this backend. */
    int datagrams;

    /* Set up the loop inside the worker's thread: w->loop.io_state, and
     * w->loop.reply_scratch (worker_loop.h) when replies may go into a scratch
     * buffer the backend writes before the event ends; for --dispatch reuseport, the
     * worker's own listeners (w->accept). 0, or -1 with a message logged; fini is
     * called either way. */
    int (*init)(struct worker *w);
    /* Serve until worker_turn_end (worker.h) says the worker has drained: wait for
     * events (at most worker_next_timeout_ms), call worker_update_clock and
     * worker_heartbeat once per wake-up, worker_take_handoff when the handoff's
     * eventfd fired, accept on its own listeners (accept_drain, worker_deliver_own). */
    void (*run)(struct worker *w);
    /* Undo init (after run returned, or after init failed half-way): when it returns
     * no operation names any connection, and w->loop.io_state is freed. */
    void (*fini)(struct worker *w);

    /* conn_open: register c and start reading. 0, or -1 (the caller closes the
     * socket and frees c). */
    int (*attach)(struct worker *w, struct conn *c);
    /* conn_close: let go of the socket (close it; cancel what is in flight). Once. */
    void (*detach)(struct worker *w, struct conn *c);
    /* Replies are waiting (in w->loop.reply_scratch or c->out): send what can go now,
     * or arrange for it to go before the loop sleeps. May close c (conn_fail). */
    void (*send)(struct worker *w, struct conn *c);
    /* Backpressure ended: read again (data may wait with no new event coming). */
    void (*read_on)(struct worker *w, struct conn *c);
    /* Output passed --max-output: stop reading from c until read_on. */
    void (*read_off)(struct worker *w, struct conn *c);
    /* Our side is shut down (lingering close): discard input until the peer's EOF,
     * then conn_close. */
    void (*linger)(struct worker *w, struct conn *c);
    /* c is on the worker's to-do list (worker_mark_todo) or draining began: do what
     * was left for later (epoll: read on; io_uring: submit the send), then settle. */
    void (*revisit)(struct worker *w, struct conn *c);
    /* Bytes of c's replies handed to the kernel and not yet sent (an asynchronous
     * send in flight), beside c->out. NULL: none ever (writes are synchronous). */
    size_t (*unsent)(const struct conn *c);
    /* Whether operations in flight still name the closed c (its memory must stay
     * until their last completion). NULL: never. */
    int (*conn_busy)(const struct conn *c);
    /* c is about to be freed: release what c->io_private holds. NULL: nothing. */
    void (*conn_release)(struct conn *c);

    /* --dispatch reuseport: stop accepting (draining), before the listeners close. */
    void (*accept_stop)(struct worker *w);
    /* --dispatch reuseport: accepting was paused (out of files or memory) and may go on. */
    void (*accept_resume)(struct worker *w);
};

extern const struct backend epoll_backend;

/* The backends this binary has, for --version: "epoll" or "epoll, io_uring". */
const char *backend_list(void);

/* Pick the backend for want (the --backend flag). For auto, the one chosen and, when
 * it is epoll though io_uring is built in, why (in why). For io_uring, NULL when it
 * cannot run here, with the reason in why. Probes the kernel (a throw-away ring). */
const struct backend *backend_choose(enum backend_kind want, char *why, size_t whylen);

#endif
