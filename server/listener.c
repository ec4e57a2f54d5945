#include "listener.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"

static int read_somaxconn(void)
{
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "re");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

int listener_effective_backlog(int requested)
{
    int max = read_somaxconn();
    if (max > 0 && requested > max) {
        log_info("listen backlog %d is capped by net.core.somaxconn=%d; raise it with "
                 "'sysctl -w net.core.somaxconn=%d' (see tuning/)",
                 requested, max, requested);
        return max;
    }
    return requested;
}

static int set_int_opt(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof value);
}

int listener_open(struct listener *l, const struct listen_spec *ep, const struct listen_opts *o,
                  char *err, size_t errlen)
{
    char text[ADDR_TEXT_MAX];
    addr_format((const struct sockaddr *)&ep->sa, text, sizeof text);
    l->ep = *ep;
    l->fd = socket(ep->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        snprintf(err, errlen, "socket for %s: %s", text, strerror(errno));
        return -1;
    }
    /* SO_REUSEADDR: a restart binds at once although old connections sit in TIME_WAIT. */
    if (set_int_opt(l->fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0 ||
        (o->reuseport && set_int_opt(l->fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) ||
        (ep->sa.ss_family == AF_INET6 && set_int_opt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) < 0)) {
        snprintf(err, errlen, "setsockopt on %s: %s", text, strerror(errno));
        goto fail;
    }
    if (listener_apply_sockopts(l->fd, o->sock, err, errlen) < 0)
        goto fail;
    if (bind(l->fd, (const struct sockaddr *)&ep->sa, ep->sa_len) < 0) {
        snprintf(err, errlen, "cannot bind %s: %s%s", text, strerror(errno),
                 errno == EADDRINUSE ? " (another process listens there)" : "");
        goto fail;
    }
    if (listen(l->fd, o->backlog) < 0) {
        snprintf(err, errlen, "listen on %s: %s", text, strerror(errno));
        goto fail;
    }
    socklen_t len = sizeof l->ep.sa;
    if (getsockname(l->fd, (struct sockaddr *)&l->ep.sa, &len) < 0) {
        snprintf(err, errlen, "getsockname on %s: %s", text, strerror(errno));
        goto fail;
    }
    l->ep.sa_len = len;
    return 0;
fail:
    close(l->fd);
    l->fd = -1;
    return -1;
}

int listener_apply_sockopts(int fd, const struct sockopts *so, char *err, size_t errlen)
{
    static const char *const names[] = {"TCP_NODELAY", "TCP_DEFER_ACCEPT", "TCP_FASTOPEN",
                                        "SO_RCVBUF", "SO_SNDBUF", "SO_BUSY_POLL"};
    const struct {
        int on, level, name, value;
    } opts[] = {
        {so->nodelay, IPPROTO_TCP, TCP_NODELAY, 1},
        {so->defer_accept_s > 0, IPPROTO_TCP, TCP_DEFER_ACCEPT, so->defer_accept_s},
        {so->fastopen_qlen > 0, IPPROTO_TCP, TCP_FASTOPEN, so->fastopen_qlen},
        {so->rcvbuf > 0, SOL_SOCKET, SO_RCVBUF, so->rcvbuf},
        {so->sndbuf > 0, SOL_SOCKET, SO_SNDBUF, so->sndbuf},
        {so->busy_poll_us > 0, SOL_SOCKET, SO_BUSY_POLL, so->busy_poll_us},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        if (opts[i].on && set_int_opt(fd, opts[i].level, opts[i].name, opts[i].value) < 0) {
            snprintf(err, errlen, "setsockopt %s=%d: %s", names[i], opts[i].value,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

void listener_close(struct listener *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}
