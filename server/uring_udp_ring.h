/* uring_udp_ring: udp:// sockets on a worker's ring through a multishot
 * IORING_OP_RECVMSG into provided buffers (a buffer ring of its own, group UDP_BGID),
 * where the start-up probe found the kernel has it (uring_probe.h, Linux 6.0).
 *
 * Each socket has one multishot recvmsg; each completion is one datagram in one
 * buffer (io_uring_recvmsg_out, the sender's address, the SO_RXQ_OVFL count, the
 * payload), answered in place: the reply is transformed in the buffer and queued, and
 * the turn's replies leave in one sendmmsg at the turn's end (or when --udp-batch of
 * them wait), after which their buffers go back to the ring. The test hook
 * UDP_SENDMSG sends each reply as a SENDMSG SQE instead (its buffer comes back with
 * the send's completion). A run of equal-size replies to one peer in a turn's batch
 * leaves as one UDP_SEGMENT message (GSO: the kernel cuts it into the replies, one trip
 * through the stack for the run; a message the path refuses is sent reply by reply);
 * the test hook UDP_NO_GSO turns that off. bench/udp measures all three
 * (bench/results/udp-uring.md): sendmmsg per turn with GSO is the cheapest.
 *
 * The counters and limits are udp.c's: --max-message (oversize), MSG_TRUNC
 * (truncated: a datagram larger than a buffer's room, which is --max-message's, at
 * most 64 KiB), SO_RXQ_OVFL, a full send buffer, send errors, ICMP reports (the
 * receive ends with the socket's error; the error queue is read). Memory is the
 * buffer ring's, fixed at start: when every buffer holds a datagram the receive ends
 * with ENOBUFS (udp_ring_nobufs), the datagrams wait in the socket (its --rcvbuf
 * bounds them, SO_RXQ_OVFL counts what it drops), and the receive is armed again at
 * the next turn's start, after this turn's replies gave their buffers back; any other
 * end (no IORING_CQE_F_MORE) is armed again the same way (udp_ring_arms counts every
 * arm). io_uring backend only; uring_udp.c chooses between this and its poll. */
#ifndef WHARF_URING_UDP_RING_H
#define WHARF_URING_UDP_RING_H

#include <liburing.h>

struct worker;
struct udp_ring; /* its state: uring_udp_ring.c's */

/* Whether this worker's udp sockets should use it: the kernel has it, the test hook
 * UDP_POLL does not force the poll path, and --udp-batch is above 1 (1 keeps the
 * one-call-per-datagram path, wharfd's unbatched baseline). */
int udp_ring_wanted(const struct worker *w);
/* Map and register the buffer ring; sets struct uring_udp's ring. 0, or -1 (logged;
 * nothing is left registered, the caller uses the poll path). */
int udp_ring_setup(struct worker *w);
/* Arm socket i's multishot recvmsg. 0, or -1 when no SQE was to be had. */
int udp_ring_arm(struct worker *w, int i);
/* Whether p (a TAG_LISTEN_POLL completion's pointer) is one of r's receives or sends. */
int udp_ring_owns(const struct udp_ring *r, const void *p);
/* A completion for p (udp_ring_owns). */
void udp_ring_on_cqe(struct worker *w, void *p, const struct io_uring_cqe *cqe);
/* Send the replies queued in this turn and give their buffers back. */
void udp_ring_flush(struct worker *w);
/* After ur_quiesce, while the ring is up: unregister the buffer ring. */
void udp_ring_unregister(struct worker *w);
/* Once the ring is closed (the kernel may write into the buffers until then): free. */
void udp_ring_free(struct worker *w);

#endif
