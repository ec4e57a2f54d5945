/* uring_accept: on a worker's ring, the handoff's multishot poll (new connections and
 * the drain, from the acceptor) and, with --dispatch reuseport, the worker's own
 * multishot accepts (a poll instead while descriptors ran out). What found no SQE is
 * pending, armed again at the next turn's start. io_uring backend only. */
#ifndef WHARF_URING_ACCEPT_H
#define WHARF_URING_ACCEPT_H

#include <liburing.h>
#include <stdint.h>

struct listener;
struct uring_accept; /* its state: struct uring_loop's acc (uring_int.h) */
struct worker;

/* At init: arm the handoff's poll and the accepts. */
void ur_accept_start(struct worker *w);
/* Completions (TAG_HANDOFF, TAG_ACCEPT, TAG_LISTEN_POLL). */
void ur_on_handoff(struct worker *w, const struct io_uring_cqe *cqe);
void ur_on_accept(struct worker *w, const struct listener *l, const struct io_uring_cqe *cqe);
void ur_on_listen_poll(struct worker *w, const struct listener *l,
                       const struct io_uring_cqe *cqe);
/* Arm or cancel what waits (ur_accept_pending, uring_int.h, says whether anything does). */
void ur_arm_pending(struct worker *w);
/* The backend's accept_stop and accept_resume (backend.h). */
void ur_accept_stop(struct worker *w);
void ur_accept_resume(struct worker *w);
/* Stopping: whether an accept, poll or the handoff's poll is still armed; and
 * ur_quiesce's handling of their last completions (1: it was one of them). */
int ur_accept_holds_files(const struct uring_accept *u);
int ur_accept_last(struct worker *w, const struct io_uring_cqe *cqe);

#endif
