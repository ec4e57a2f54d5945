/* floor udp: the least a datagram server can do per datagram, to measure wharfd's
 * udp:// listener against (bench/udp).
 *
 *   floor udp PORT [ADDR]     answers each datagram with the same bytes upper-cased,
 *                             to its sender, like wharfd's udp:// in its default mode
 *
 * One thread, one blocking socket, no poller: recvmmsg (MSG_WAITFORONE: sleep until
 * the first datagram, then take what else is queued, up to BATCH) and one sendmmsg of
 * the batch's replies. No counters, no limits, no error queue; a reply the kernel does
 * not take is dropped. */
#include "floor_udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mode.h"

#define BATCH 64
#define DGRAM_MAX 65536

static char bufs[BATCH][DGRAM_MAX];

static int udp_bind(const char *addr, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "floor: bad IPv4 address %s\n", addr);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("floor: udp socket");
        exit(1);
    }
    return fd;
}

int floor_udp(const char *addr, int port)
{
    int fd = udp_bind(addr, port);
    static struct mmsghdr in[BATCH], out[BATCH];
    static struct iovec iov[BATCH];
    static struct sockaddr_storage peer[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = DGRAM_MAX};
            in[i].msg_hdr = (struct msghdr){.msg_name = &peer[i], .msg_namelen = sizeof peer[i],
                                            .msg_iov = &iov[i], .msg_iovlen = 1};
        }
        int n = recvmmsg(fd, in, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("floor: recvmmsg");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            iov[i].iov_len = in[i].msg_len;
            mode_apply(MODE_UPPER, bufs[i], in[i].msg_len, bufs[i]);
            out[i].msg_hdr = in[i].msg_hdr; /* the sender's address, the datagram's bytes */
        }
        for (int sent = 0; sent < n;) {
            int k = sendmmsg(fd, out + sent, (unsigned)(n - sent), 0);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break; /* no room (or an error): the rest is dropped, as UDP may */
            sent += k;
        }
    }
}
