#include "load.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../common/clock.h"
#include "sysio.h"

int load_main(int cmd, int argc, char **argv, int (*run)(const struct load_opts *o))
{
    struct load_opts o;
    int rc = load_parse(cmd, argc, argv, &o);
    if (rc == 0)
        rc = run(&o);
    else
        rc = rc == 1 ? 0 : 2;
    load_opts_free(&o);
    return rc;
}

int load_connect(const struct load_opts *o, uint64_t index, int *in_progress)
{
    return load_connect_to(o, &o->ep, index, in_progress);
}

int load_connect_to(const struct load_opts *o, const struct endpoint *ep, uint64_t index,
                    int *in_progress)
{
    /* udp://: a connected datagram socket, "connected" at once (no handshake); it
     * receives only the server's datagrams, and an ICMP error shows as ECONNREFUSED. */
    int dgram = o->proto == PROTO_UDP;
    int fd = socket(ep->sa.ss_family,
                    (dgram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, err;
    if (o->nodelay && !dgram)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o->rcvbuf) {
        int v = (int)o->rcvbuf;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    }
    if (o->sndbuf) {
        int v = (int)o->sndbuf;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    }
    if (o->n_sources) {
        /* Port 0 with IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect time for
         * the whole 4-tuple, so sources do not each burn a port per connection. */
        if (!dgram)
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        const struct sockaddr_storage *src = &o->sources[index % (uint64_t)o->n_sources];
        if (bind(fd, (const struct sockaddr *)src, o->source_len) < 0)
            goto fail;
    }
    if (connect(fd, (const struct sockaddr *)&ep->sa, ep->sa_len) == 0) {
        *in_progress = 0;
        return fd;
    }
    if (errno == EINPROGRESS) {
        *in_progress = 1;
        return fd;
    }
fail:
    err = errno;
    close(fd);
    return -err;
}

int load_socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

void load_close_rst(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

uint64_t load_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            rl.rlim_cur = old;
    }
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

int load_epoll_wait(int epfd, struct epoll_event *ev, int max, uint64_t wait_ns)
{
    static _Atomic int no_pwait2;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000u),
                              .tv_nsec = (long)(wait_ns % 1000000000u)};
#ifdef SYS_epoll_pwait2
        int n = sys_epoll_pwait2(epfd, ev, max, &ts);
#else
        int n = epoll_pwait2(epfd, ev, max, &ts, NULL);
#endif
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, 1, memory_order_relaxed);
    }
    uint64_t ms = (wait_ns + 999999) / 1000000;
    return epoll_wait(epfd, ev, max, ms > 3600000 ? 3600000 : (int)ms);
}

/* ---- the main thread's clock and signals ---- */

static int sig_fd = -1;
static int sig_count;

int runctl_init(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return sig_fd < 0 ? -1 : 0;
}

int runctl_fd(void) { return sig_fd; }

void runctl_take(void)
{
    struct signalfd_siginfo si;
    while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si)
        sig_count++;
}

int runctl_wait(uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = clock_ns();
        if (now >= deadline_ns)
            return sig_count;
        uint64_t left_ms = (deadline_ns - now + 999999) / 1000000;
        struct pollfd p = {.fd = sig_fd, .events = POLLIN};
        int n = poll(&p, 1, left_ms > 1000000 ? 1000000 : (int)left_ms);
        if (n > 0) {
            runctl_take();
            return sig_count;
        }
    }
}

int runctl_signals(void) { return sig_count; }

int runctl_progress(void) { return isatty(STDERR_FILENO); }

const char *errno_name(int err)
{
    const char *n = strerrorname_np(err);
    return n ? n : "EUNKNOWN";
}
