/* sysio: read, write and epoll_pwait2 for the load threads' hot path, without glibc's
 * cancellation bracket. In a process with more than one thread, glibc's read(), write()
 * and epoll_pwait2() are cancellation points: each call switches the thread's cancel
 * type on and back off with two atomic compare-and-swaps, about 60 instructions a
 * request at -P 1 (callgrind). wharf never cancels a thread, so the hot path makes the
 * system calls itself; errors come back as -1 with errno, as from the wrappers. */
#ifndef WHARF_SYSIO_H
#define WHARF_SYSIO_H

#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static inline ssize_t sys_read(int fd, void *buf, size_t n)
{
    return (ssize_t)syscall(SYS_read, fd, buf, n);
}

static inline ssize_t sys_write(int fd, const void *buf, size_t n)
{
    return (ssize_t)syscall(SYS_write, fd, buf, n);
}

#ifdef SYS_epoll_pwait2
/* No signal mask (NULL): the kernel ignores the mask size. */
static inline int sys_epoll_pwait2(int epfd, struct epoll_event *ev, int max,
                                   const struct timespec *timeout)
{
    return (int)syscall(SYS_epoll_pwait2, epfd, ev, max, timeout, NULL, (size_t)(_NSIG / 8));
}
#endif

#endif
