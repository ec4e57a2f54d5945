/* worker: one thread, one edge-triggered epoll loop, the connections it owns.
 *
 * Cross-thread surface, and nothing else: the handoff queue (connections in, the
 * drain signal), the stats counters (read by anyone), and the heartbeat (read by the
 * main thread's watchdog). Every other field belongs to the worker thread. */
#ifndef WHARF_WORKER_H
#define WHARF_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../common/buf.h"
#include "acceptor.h"
#include "config.h"
#include "handler.h"
#include "handoff.h"
#include "http_reply.h"
#include "listener.h"
#include "stats.h"
#include "timer.h"

#define WORKER_RBUF_SIZE (64 * 1024)

enum { TIMER_IDLE, TIMER_HEADER, TIMER_LINGER, TIMER_LISTS };

struct conn;

struct worker {
    /* shared */
    struct worker_stats stats;
    struct handoff handoff;
    _Atomic int drain_requested; /* 1: drain gracefully; 2: cut every connection now */
    _Atomic int finished;        /* the loop has ended; joining will not block */
    _Atomic uint64_t heartbeat; /* bumped every loop iteration */

    /* set before the thread starts */
    int id;
    pthread_t thread;
    const struct config *cfg;
    struct accept_ctx accept; /* --dispatch reuseport: this worker's own listeners */

    /* private to the worker thread */
    struct settings set;        /* this worker's copy; reloads arrive through the handoff */
    uint32_t max_sleep_ms;      /* wake at least this often (watchdog); 0: sleep freely */
    int epfd;
    uint64_t epoch_ms;          /* deadlines count from here */
    uint32_t now;               /* ms since epoch, updated once per loop iteration */
    char *rbuf;                 /* WORKER_RBUF_SIZE bytes of read scratch */
    struct buf out;             /* replies of the connection being served */
    struct tlist timers[TIMER_LISTS];
    struct conn *ready;         /* connections to read again before sleeping */
    struct conn *closed;        /* closed during this batch; freed after it */
    uint64_t n_conns;
    int draining;
    uint64_t drain_deadline_ms;
    struct http_cache http;
    struct handler_env env;
};

/* Allocate what the loop needs (epoll, eventfd, buffers). 0, or -1 with a message
 * logged. max_sleep_ms: longest epoll_wait, so the heartbeat shows a live loop. */
int worker_init(struct worker *w, int id, const struct config *cfg, uint32_t max_sleep_ms);
/* --dispatch reuseport: give this worker its own listener (before it starts). */
int worker_add_listener(struct worker *w, const struct listener *l);
int worker_start(struct worker *w);
/* Ask the worker to drain and exit, or (cut) to close everything now. Any thread. */
void worker_request_drain(struct worker *w, int cut);
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);

/* Used by conn.c: */
void worker_timer_set(struct worker *w, struct conn *c, int list);
void worker_timer_touch(struct worker *w, struct conn *c);
void worker_mark_ready(struct worker *w, struct conn *c);

#endif
