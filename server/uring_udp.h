/* uring_udp: udp:// sockets on a worker's ring. Where the kernel has a multishot
 * recvmsg into provided buffers (the start-up probe), each socket has one of those and
 * the turn's replies leave in one sendmmsg (uring_udp_ring.h). Otherwise, or with
 * --udp-batch 1, or the test hook UDP_POLL, each socket has a one-shot poll
 * (POLLIN|POLLERR); its completion calls udp_serve, the same batched
 * recvmmsg/sendmmsg path the epoll backend uses, so every counter and limit is the
 * same on both backends; then the poll is armed again. One-shot, not multishot: a
 * multishot poll reports wake-ups, not readiness, so datagrams udp_serve left for
 * later (its bound per call) would wait for the next arrival; a poll armed again
 * completes at once when the queue still holds some. What found no SQE is pending,
 * armed at the next turn's start. io_uring backend only. */
#ifndef WHARF_URING_UDP_H
#define WHARF_URING_UDP_H

#include <liburing.h>
#include <stdint.h>

struct worker;

struct uring_udp; /* its state: struct uring_loop's udp (uring_int.h) */

/* At init: udp_port_init and a poll for each of w->udp. 0, or -1 (logged). */
int ur_udp_start(struct worker *w);
/* Whether p (a TAG_LISTEN_POLL completion's pointer) is one of w->udp. */
int ur_udp_is(const struct worker *w, const void *p);
/* A completion of one of them (p: ur_udp_is): a poll's serves the socket and arms the
 * poll again; the ring path's (uring_udp_ring.h) queue replies or end a receive. */
void ur_udp_on_poll(struct worker *w, void *p, const struct io_uring_cqe *cqe);
/* After a turn's completions: send the replies the ring path queued. */
void ur_udp_turn_end(struct worker *w);
/* At a turn's start: arm the polls that found no SQE. */
void ur_udp_arm_pending(struct worker *w);
/* After the loop's last turn: answer what is queued (backend.h), arm nothing more. */
void ur_udp_stop(struct worker *w);
/* At fini, before ur_quiesce: udp_port_fini for each; completions arm nothing now. */
void ur_udp_fini(struct worker *w);
/* After ur_quiesce, while the ring is up: unregister the ring path's buffers. */
void ur_udp_unregister(struct worker *w);
/* Once the ring is closed: free them. */
void ur_udp_free(struct worker *w);

#endif
