/* poller.h on epoll: one epoll instance, every descriptor EPOLLIN|EPOLLET. */
#include "poller.h"

#include <sys/epoll.h>
#include <unistd.h>

int poller_open(struct poller *p)
{
    p->fd = epoll_create1(EPOLL_CLOEXEC);
    return p->fd < 0 ? -1 : 0;
}

int poller_watch(struct poller *p, int fd, void *tag)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = tag};
    return epoll_ctl(p->fd, EPOLL_CTL_ADD, fd, &ev);
}

int poller_wait(struct poller *p, void **tags, int max, int timeout_ms)
{
    struct epoll_event ev[POLLER_WAIT_MAX];
    int n = epoll_wait(p->fd, ev, max < POLLER_WAIT_MAX ? max : POLLER_WAIT_MAX, timeout_ms);
    for (int i = 0; i < n; i++)
        tags[i] = ev[i].data.ptr;
    return n;
}

void poller_close(struct poller *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}
