#include "syn_queue.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The local port of a bound listener, in network order (0: not an inet socket). */
static uint16_t port_of(const struct listener *l)
{
    if (l->ep.sa.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&l->ep.sa)->sin_port;
    if (l->ep.sa.ss_family == AF_INET6)
        return ((const struct sockaddr_in6 *)&l->ep.sa)->sin6_port;
    return 0;
}

/* Read the dump's answer: 1 when a request socket on port is in it, 0 when none is,
 * -1 on an error. Stops at the first one found (the socket is closed after). */
static int read_dump(int nl, uint16_t port)
{
    char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
    for (;;) {
        ssize_t got = recv(nl, buf, sizeof buf, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        size_t len = (size_t)got, off = 0;
        while (off + sizeof(struct nlmsghdr) <= len) {
            struct nlmsghdr *h = (struct nlmsghdr *)(buf + off);
            if (h->nlmsg_len < sizeof *h || h->nlmsg_len > len - off)
                return -1;
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR)
                return -1;
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            if (h->nlmsg_len >= NLMSG_LENGTH(sizeof *m) && m->id.idiag_sport == port)
                return 1;
            off += NLMSG_ALIGN(h->nlmsg_len);
        }
    }
}

/* SYN_RECV sockets of family on port (the kernel filters by the port too). */
static int held_on(int family, uint16_t port)
{
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -1;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = (uint8_t)family;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = 1u << TCP_SYN_RECV; /* the kernel adds its NEW_SYN_RECV */
    msg.req.id.idiag_sport = port;
    int rc = send(nl, &msg, sizeof msg, 0) == (ssize_t)sizeof msg ? read_dump(nl, port) : -1;
    close(nl);
    return rc;
}

int syn_queue_holds(const struct listener *ls, int n)
{
    for (int i = 0; i < n; i++) {
        uint16_t port = port_of(&ls[i]);
        if (!port || held_on(ls[i].ep.sa.ss_family, port) != 0)
            return 1;
    }
    return 0;
}
