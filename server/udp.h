/* udp: udp:// listeners. Each datagram is one message, answered with one datagram to
 * its sender, transformed by --mode; there are no connections.
 *
 * Each worker has its own socket on the port (SO_REUSEPORT: the kernel spreads
 * senders over them), so no acceptor and no handoff is in the path. The worker's
 * backend watches the socket (backend.h: a backend with .datagrams set) and calls
 * udp_serve when it is readable or has an error queued; everything here runs on that
 * worker's thread. Datagrams are read and answered in batches (recvmmsg/sendmmsg, up
 * to UDP_BATCH_MAX; --udp-batch 1: recvmsg/sendmsg, one at a time), the replies of a
 * batch in one call.
 *
 * What UDP loses is counted, never retried and never waited for (worker_stats):
 * - a datagram over --max-message (udp_drop_oversize), or cut by the kernel because it
 *   did not fit the buffer (MSG_TRUNC, udp_drop_truncated): no reply;
 * - a reply the send buffer has no room for (udp_drop_sndbuf): UDP has no
 *   backpressure, so the reply is dropped rather than kept or retried in a loop;
 * - ICMP errors (the client's port is closed), read from the error queue
 *   (IP_RECVERR/IPV6_RECVERR: udp_icmp_errors), never fatal;
 * - datagrams the socket's receive queue had no room for (SO_RXQ_OVFL:
 *   udp_rxq_overflow).
 * A reply is never larger than its request (--mode keeps the length), so a spoofed
 * source gains no amplification. */
#ifndef WHARF_UDP_H
#define WHARF_UDP_H

#include <stdint.h>
#include <sys/socket.h>

#include "listen_spec.h"
#include "settings.h"

#define UDP_BATCH_MAX 64
/* Every datagram fits (an IPv4 UDP payload is at most 65,507 bytes); only a larger
 * one (an IPv6 jumbogram) is cut, and MSG_TRUNC says so. */
#define UDP_DGRAM_ROOM 65536
/* Control-message room per datagram: SO_RXQ_OVFL's count. */
#define UDP_CMSG_ROOM CMSG_SPACE(sizeof(uint32_t))

struct worker_loop;
struct udp_batch; /* the receive/reply buffers: udp.c's */

/* One worker's socket on a udp:// port. fd and ep are set before the worker starts;
 * the rest belongs to the worker's thread. */
struct udp_port {
    int fd;
    struct listen_spec ep;
    unsigned batch;          /* datagrams per call, 1..UDP_BATCH_MAX */
    struct udp_batch *b;     /* NULL until udp_port_init */
    uint32_t rxq_seen;       /* the socket's SO_RXQ_OVFL count already added */
};

/* Create a non-blocking datagram socket for spec with SO_REUSEPORT (one per worker
 * joins the same port), IP_RECVERR/IPV6_RECVERR and SO_RXQ_OVFL, --rcvbuf, --sndbuf,
 * --busy-poll, and bind it. *bound is the bound address (port 0 replaced). Returns the
 * descriptor, or -1 with a one-line reason in err. */
int udp_open(const struct listen_spec *spec, const struct sockopts *so,
             struct listen_spec *bound, char *err, size_t errlen);

/* On the worker's thread, before the socket is watched: allocate the batch buffers.
 * 0, or -1 with a message logged. */
int udp_port_init(struct udp_port *u, int worker_id);
/* Free what udp_port_init allocated (the socket stays: udp_port_close). */
void udp_port_fini(struct udp_port *u);
/* Close the socket (after the worker's thread has ended). */
void udp_port_close(struct udp_port *u);

/* w: the worker's loop (its counters, --mode, --max-message). The socket is readable
 * (in) and/or has errors queued (err): read the error queue, then read and answer a
 * bounded number of batches (level-triggered: what is left is reported again), each
 * batch's replies sent before the next is read. Returns 1 when the receive queue was
 * found empty, 0 when the bound stopped it first. */
int udp_serve(struct worker_loop *w, struct udp_port *u, int in, int err);

/* For a backend that receives datagrams its own way (uring_udp_ring.c), the same
 * accounting as udp_serve's:
 * total: an SO_RXQ_OVFL count a datagram carried; what is new is added to
 * udp_rxq_overflow. */
void udp_note_rxq_total(struct worker_loop *w, struct udp_port *u, uint32_t total);
/* Send the n replies out[0..n) on u (sendmmsg; --udp-batch 1: sendmsg each), counted
 * as sent, or dropped (a full send buffer drops the rest; a failing reply is tried
 * twice). Sets each out[i].msg_len. */
void udp_send_replies(struct worker_loop *w, struct udp_port *u, struct mmsghdr *out,
                      unsigned n);

#endif
