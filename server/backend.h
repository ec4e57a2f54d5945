/* backend: the I/O side of a worker, and which one runs.
 *
 * A worker's connections follow one state machine (conn.c: handler calls, partial
 * messages, backpressure, close-when-sent, drain, timers, counters) whatever does the
 * I/O. A backend is what differs: how the loop waits, how bytes come in and go out,
 * how a connection is registered and let go. Two exist: epoll (epoll_backend.c,
 * always built) and io_uring (uring.c, built when liburing is found).
 *
 * Every hook runs on the worker's own thread. */
#ifndef WHARF_BACKEND_H
#define WHARF_BACKEND_H

#include <stddef.h>

#include "config.h"

struct worker;
struct conn;

struct backend {
    const char *name; /* "epoll", "io_uring": /stats, the log */
    /* Replies go straight into the connection's out buffer (io_uring: they are sent
     * after the handler returns, from memory that must stay put), instead of the
     * worker's scratch output that epoll writes at once. */
    int replies_in_conn;

    /* Set up the loop inside the worker's thread (its epoll or its ring, its
     * listeners for --dispatch reuseport). 0, or -1 with a message logged. */
    int (*init)(struct worker *w);
    /* Serve until the worker has drained; uses worker_* (worker.h) for the rest. */
    void (*run)(struct worker *w);
    /* Undo init (after run returned, or after init failed half-way). */
    void (*fini)(struct worker *w);

    /* A new connection: register it and start reading. 0, or -1 (the caller closes). */
    int (*attach)(struct worker *w, struct conn *c);
    /* conn_close: let go of the socket (close it; cancel what is in flight). */
    void (*detach)(struct worker *w, struct conn *c);
    /* Replies are waiting (the worker's scratch or c->out): send what can go now. */
    void (*send)(struct worker *w, struct conn *c);
    /* Backpressure ended: read again (data may wait with no new event coming). */
    void (*read_on)(struct worker *w, struct conn *c);
    /* Output passed --max-output: stop reading from c until read_on. */
    void (*read_off)(struct worker *w, struct conn *c);
    /* Our side is shut down (lingering close): discard input until the peer's EOF. */
    void (*linger)(struct worker *w, struct conn *c);
    /* c is on the worker's to-do list (worker_mark_todo) or draining began: do what
     * was left for later (epoll: read on; io_uring: submit the send), then settle. */
    void (*revisit)(struct worker *w, struct conn *c);
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
