#include "udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/mode.h"
#include "handler.h"
#include "stats.h"
#include "worker_loop.h"

/* Batches per readiness report: then the other sockets and connections get a turn
 * (the socket is watched level-triggered, so what is left is reported again). */
#define UDP_ROUNDS 8
/* Error-queue entries read per report, likewise. */
#define UDP_ERRQ_MAX 256

struct udp_batch {
    struct mmsghdr in[UDP_BATCH_MAX];
    struct mmsghdr out[UDP_BATCH_MAX];
    struct iovec iov_in[UDP_BATCH_MAX];
    struct iovec iov_out[UDP_BATCH_MAX];
    struct sockaddr_storage from[UDP_BATCH_MAX];
    char cmsg[UDP_BATCH_MAX][UDP_CMSG_ROOM] __attribute__((aligned(8)));
    char data[]; /* UDP_BATCH_MAX datagrams of UDP_DGRAM_ROOM */
};

static int set_opt(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof value);
}

int udp_open(const struct listen_spec *spec, const struct sockopts *so,
             struct listen_spec *bound, char *err, size_t errlen)
{
    char text[ADDR_TEXT_MAX];
    addr_format((const struct sockaddr *)&spec->sa, text, sizeof text);
    int v6 = spec->sa.ss_family == AF_INET6;
    int fd = socket(spec->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "udp socket for %s: %s", text, strerror(errno));
        return -1;
    }
    if (set_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0 ||
        set_opt(fd, SOL_SOCKET, SO_RXQ_OVFL, 1) < 0 ||
        (v6 ? set_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) < 0 ||
                  set_opt(fd, IPPROTO_IPV6, IPV6_RECVERR, 1) < 0
            : set_opt(fd, IPPROTO_IP, IP_RECVERR, 1) < 0) ||
        (so->rcvbuf > 0 && set_opt(fd, SOL_SOCKET, SO_RCVBUF, so->rcvbuf) < 0) ||
        (so->sndbuf > 0 && set_opt(fd, SOL_SOCKET, SO_SNDBUF, so->sndbuf) < 0) ||
        (so->busy_poll_us > 0 && set_opt(fd, SOL_SOCKET, SO_BUSY_POLL, so->busy_poll_us) < 0)) {
        snprintf(err, errlen, "setsockopt on udp://%s: %s", text, strerror(errno));
        goto fail;
    }
    if (bind(fd, (const struct sockaddr *)&spec->sa, spec->sa_len) < 0) {
        snprintf(err, errlen, "cannot bind udp://%s: %s%s", text, strerror(errno),
                 errno == EADDRINUSE ? " (another process uses the port)" : "");
        goto fail;
    }
    *bound = *spec;
    socklen_t len = sizeof bound->sa;
    if (getsockname(fd, (struct sockaddr *)&bound->sa, &len) < 0) {
        snprintf(err, errlen, "getsockname on udp://%s: %s", text, strerror(errno));
        goto fail;
    }
    bound->sa_len = len;
    return fd;
fail:
    close(fd);
    return -1;
}

int udp_port_init(struct udp_port *u, int worker_id)
{
    struct udp_batch *b = malloc(sizeof *b + (size_t)u->batch * UDP_DGRAM_ROOM);
    if (!b) {
        log_error("worker %d: udp buffers: %s", worker_id, strerror(errno));
        return -1;
    }
    for (unsigned i = 0; i < u->batch; i++) {
        b->iov_in[i] = (struct iovec){b->data + (size_t)i * UDP_DGRAM_ROOM, UDP_DGRAM_ROOM};
        b->in[i].msg_hdr = (struct msghdr){.msg_iov = &b->iov_in[i], .msg_iovlen = 1};
    }
    u->b = b;
    return 0;
}

void udp_port_fini(struct udp_port *u)
{
    free(u->b);
    u->b = NULL;
}

void udp_port_close(struct udp_port *u)
{
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
}

/* ICMP errors (a closed client port, an unreachable host) arrive on the error queue
 * (IP_RECVERR): counted, and read so that the queue never fills. */
static void read_errqueue(struct worker_loop *w, struct udp_port *u)
{
    char data[64], ctl[512];
    for (int i = 0; i < UDP_ERRQ_MAX; i++) {
        struct iovec iov = {data, sizeof data};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                           .msg_controllen = sizeof ctl};
        if (recvmsg(u->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                log_debug("worker %d: udp error queue: %s", w->id, strerror(errno));
            return;
        }
        counter_add(&w->stats->udp_icmp_errors, 1);
    }
}

void udp_note_rxq_total(struct worker_loop *w, struct udp_port *u, uint32_t total)
{
    counter_add(&w->stats->udp_rxq_overflow, (uint32_t)(total - u->rxq_seen));
    u->rxq_seen = total;
}

/* The socket's count of datagrams dropped for want of receive-queue room
 * (SO_RXQ_OVFL), carried by a received datagram: add what is new. */
static void note_rxq_overflow(struct worker_loop *w, struct udp_port *u, struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL)
            continue;
        uint32_t total;
        memcpy(&total, CMSG_DATA(c), sizeof total);
        udp_note_rxq_total(w, u, total);
    }
}

/* Receive up to u->batch datagrams. Returns how many, 0 when none is waiting (or a
 * socket error, a consumed ICMP report, came instead). */
static int receive_batch(struct worker_loop *w, struct udp_port *u)
{
    struct udp_batch *b = u->b;
    for (unsigned i = 0; i < u->batch; i++) {
        struct msghdr *h = &b->in[i].msg_hdr;
        h->msg_name = &b->from[i];
        h->msg_namelen = sizeof b->from[i];
        h->msg_control = b->cmsg[i];
        h->msg_controllen = UDP_CMSG_ROOM;
        h->msg_flags = 0;
    }
    int n;
    do {
        if (u->batch == 1) {
            ssize_t r = recvmsg(u->fd, &b->in[0].msg_hdr, MSG_DONTWAIT);
            if (r >= 0)
                b->in[0].msg_len = (unsigned)r;
            n = r < 0 ? -1 : 1;
        } else {
            n = recvmmsg(u->fd, b->in, u->batch, MSG_DONTWAIT, NULL);
        }
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        int e = errno;
        /* EAGAIN: drained. Anything else is a pending ICMP error that IP_RECVERR also
         * queued (counted there): not fatal, the next round reads on. */
        if (e != EAGAIN && e != ECONNREFUSED && e != EHOSTUNREACH && e != ENETUNREACH)
            log_debug("worker %d: udp receive: %s", w->id, strerror(e));
        return e == EAGAIN ? -1 : 0;
    }
    counter_add(&w->stats->udp_recv_calls, 1);
    return n;
}

/* Turn the n datagrams received into replies in b->out (transformed in place);
 * returns how many; the rest are counted as dropped. */
static unsigned make_replies(struct worker_loop *w, struct udp_port *u, int n)
{
    struct udp_batch *b = u->b;
    unsigned k = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < n; i++) {
        struct msghdr *h = &b->in[i].msg_hdr;
        size_t len = b->in[i].msg_len;
        bytes += len;
        note_rxq_overflow(w, u, h);
        if (h->msg_flags & MSG_TRUNC) {
            counter_add(&w->stats->udp_drop_truncated, 1);
            continue;
        }
        if (len > w->env->max_message) {
            counter_add(&w->stats->udp_drop_oversize, 1);
            continue;
        }
        char *p = b->iov_in[i].iov_base;
        mode_apply(w->env->mode, p, len, p);
        b->iov_out[k] = (struct iovec){p, len};
        b->out[k].msg_hdr = (struct msghdr){.msg_name = h->msg_name,
                                            .msg_namelen = h->msg_namelen,
                                            .msg_iov = &b->iov_out[k], .msg_iovlen = 1};
        k++;
    }
    counter_add(&w->stats->udp_datagrams_in, (uint64_t)n);
    counter_add(&w->stats->udp_bytes_in, bytes);
    return k;
}

/* One send call for replies out[from, n): how many went, or -1 with errno. */
static int send_some(struct udp_port *u, struct mmsghdr *out, unsigned from, unsigned n)
{
    if (u->batch > 1)
        return sendmmsg(u->fd, &out[from], n - from, MSG_DONTWAIT);
    ssize_t r = sendmsg(u->fd, &out[from].msg_hdr, MSG_DONTWAIT);
    if (r >= 0)
        out[from].msg_len = (unsigned)r;
    return r < 0 ? -1 : 1;
}

/* One call when the socket takes them all. A full send buffer drops the rest
 * (counted: no backpressure, no retry loop); an error naming one reply (a pending ICMP
 * report, an unreachable address) is retried once, then that reply is dropped as a
 * send error. */
void udp_send_replies(struct worker_loop *w, struct udp_port *u, struct mmsghdr *out,
                      unsigned n)
{
    unsigned i = 0;
    int failed_at = -1;
    while (i < n) {
        int r = send_some(u, out, i, n);
        if (r > 0) {
            counter_add(&w->stats->udp_send_calls, 1);
            for (int k = 0; k < r; k++) {
                counter_add(&w->stats->udp_datagrams_out, 1);
                counter_add(&w->stats->udp_bytes_out, out[i + (unsigned)k].msg_len);
            }
            i += (unsigned)r;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == ENOBUFS) {
            counter_add(&w->stats->udp_drop_sndbuf, n - i);
            return;
        }
        if (failed_at == (int)i) { /* its second try: give this one up */
            counter_add(&w->stats->udp_send_errors, 1);
            i++;
            failed_at = -1;
        } else {
            failed_at = (int)i;
        }
    }
}

int udp_serve(struct worker_loop *w, struct udp_port *u, int in, int err)
{
    if (err)
        read_errqueue(w, u);
    if (!in && !err)
        return 1;
    for (int round = 0; round < UDP_ROUNDS; round++) {
        int n = receive_batch(w, u);
        if (n < 0)
            return 1;
        if (n == 0) {
            read_errqueue(w, u);
            continue;
        }
        unsigned k = make_replies(w, u, n);
        if (k)
            udp_send_replies(w, u, u->b->out, k);
        if ((unsigned)n < u->batch)
            return 1; /* the queue is drained (or nearly: level-triggered reports the rest) */
    }
    return 0;
}
