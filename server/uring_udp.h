/* uring_udp: udp:// sockets on a worker's ring. Each socket has a one-shot poll
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
/* A poll's completion (p: ur_udp_is). Serves the socket, arms the poll again. */
void ur_udp_on_poll(struct worker *w, void *p, const struct io_uring_cqe *cqe);
/* At a turn's start: arm the polls that found no SQE. */
void ur_udp_arm_pending(struct worker *w);
/* After the loop's last turn: answer what is queued (backend.h), arm nothing more. */
void ur_udp_stop(struct worker *w);
/* At fini: udp_port_fini for each. */
void ur_udp_fini(struct worker *w);

#endif
