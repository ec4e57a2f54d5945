/* poller: wait until one of a few descriptors is readable, for a thread that is not a
 * worker (the acceptor). Workers wait through their backend (backend.h); this is the
 * small interface beside it, implemented on epoll in epoll_poller.c, so that only the
 * backend files know about epoll.
 *
 * Every descriptor is watched edge-triggered: it is reported once each time it becomes
 * readable, and the caller reads (or accepts) until EAGAIN before the next report can
 * come. A poller belongs to the thread that waits on it; poller_watch is called before
 * that thread starts or by it. */
#ifndef WHARF_POLLER_H
#define WHARF_POLLER_H

#define POLLER_WAIT_MAX 64 /* most descriptors one poller_wait reports */

struct poller {
    int fd; /* the implementation's descriptor (an epoll instance); -1: none */
};

/* 0, or -1 with errno set. */
int poller_open(struct poller *p);
/* Watch fd for input; poller_wait reports it as tag (any pointer, NULL too). 0, or -1
 * with errno set. Closing fd stops the watch (fd is never dup'ed). */
int poller_watch(struct poller *p, int fd, void *tag);
/* Wait up to timeout_ms (-1: no limit, 0: do not wait) for input; fills tags[] with the
 * tags of the ready descriptors, at most max (and POLLER_WAIT_MAX). Returns how many (0:
 * timed out), or -1 with errno set (EINTR: a signal came first). */
int poller_wait(struct poller *p, void **tags, int max, int timeout_ms);
void poller_close(struct poller *p);

#endif
