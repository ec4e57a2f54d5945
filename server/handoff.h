/* handoff: the one path by which connections cross threads.
 *
 * The acceptor pushes accepted sockets into a worker's queue under a mutex and wakes
 * the worker through an eventfd, once per batch: it writes the eventfd only when the
 * queue was empty before its push, because a non-empty queue means the worker has a
 * wake-up pending and will take the new items in the same swap. The worker swaps the
 * whole queue out under the lock and handles it unlocked. It never reads the eventfd:
 * both backends watch it edge-triggered (epoll's EPOLLET, io_uring's multishot poll),
 * where every write is a new wake-up whatever the counter holds (filling it would take
 * 2^64 writes), so a push after the swap always wakes the worker again.
 * The same eventfd carries the "drain now" signal (the drain flag is read after wake),
 * new settings after a reload (copied under the same lock), and the acceptor's last
 * word when it stops: handoff_close, after its last push, so a worker that reads
 * handoff_closed before its take has every connection that will ever come. */
#ifndef WHARF_HANDOFF_H
#define WHARF_HANDOFF_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct handoff_item {
    int fd;
    uint8_t proto;  /* listener_conn_proto's byte (listener.h) */
    uint32_t peer; /* its entry in the --max-conns-per-ip table (peer.h) */
};

struct handoff {
    pthread_mutex_t lock;
    struct handoff_item *items;
    size_t n, cap;
    int efd; /* eventfd, EFD_NONBLOCK|EFD_CLOEXEC */
    struct settings settings; /* valid when settings_pending */
    int settings_pending;
    int closed; /* the acceptor has stopped: nothing more is pushed (handoff_close) */
};

int handoff_init(struct handoff *h);
void handoff_destroy(struct handoff *h); /* closes any sockets still queued */

/* Acceptor side: queue n sockets and wake the worker if needed. Returns 0, or -1 when
 * memory ran out (the caller still owns and must close the sockets). */
int handoff_push(struct handoff *h, const struct handoff_item *items, size_t n);

/* Wake the worker without queueing anything (used to announce draining). */
void handoff_wake(struct handoff *h);

/* Any thread: the sockets queued now and not taken yet (for /metrics). */
size_t handoff_depth(struct handoff *h);

/* Acceptor side, once, after its last push: no more connections come; wakes the worker. */
void handoff_close(struct handoff *h);
/* Worker side: whether handoff_close was called. Read before handoff_take: a take after
 * a 1 here gets every connection the acceptor pushed. */
int handoff_closed(struct handoff *h);

/* Main thread: hand the worker new settings (applied at its next wake-up). */
void handoff_push_settings(struct handoff *h, const struct settings *s);

/* Worker side: take new settings if any were pushed. Returns 1 and fills *out, or 0. */
int handoff_take_settings(struct handoff *h, struct settings *out);

/* Worker side: consume the wake-up and take every queued item. *items is replaced by
 * the queue's array (the caller frees it with free()); returns the count. */
size_t handoff_take(struct handoff *h, struct handoff_item **items);

#endif
