/* handoff: the one path by which connections cross threads.
 *
 * The acceptor pushes accepted sockets into a worker's queue under a mutex and wakes
 * the worker through an eventfd, once per batch: it writes the eventfd only when the
 * queue was empty before its push, because a non-empty queue means the worker has a
 * wake-up pending and will take the new items in the same swap. The worker reads the
 * eventfd, then swaps the whole queue out under the lock and handles it unlocked.
 * The same eventfd carries the "drain now" signal (the drain flag is read after wake). */
#ifndef WHARF_HANDOFF_H
#define WHARF_HANDOFF_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct handoff_item {
    int fd;
    uint8_t proto;
};

struct handoff {
    pthread_mutex_t lock;
    struct handoff_item *items;
    size_t n, cap;
    int efd; /* eventfd, EFD_NONBLOCK|EFD_CLOEXEC */
};

int handoff_init(struct handoff *h);
void handoff_destroy(struct handoff *h); /* closes any sockets still queued */

/* Acceptor side: queue n sockets and wake the worker if needed. Returns 0, or -1 when
 * memory ran out (the caller still owns and must close the sockets). */
int handoff_push(struct handoff *h, const struct handoff_item *items, size_t n);

/* Wake the worker without queueing anything (used to announce draining). */
void handoff_wake(struct handoff *h);

/* Worker side: consume the wake-up and take every queued item. *items is replaced by
 * the queue's array (the caller frees it with free()); returns the count. */
size_t handoff_take(struct handoff *h, struct handoff_item **items);

#endif
