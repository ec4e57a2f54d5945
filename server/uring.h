/* uring: the worker loop on io_uring (built when liburing is found; see Makefile).
 *
 * One ring per worker, created in the worker's own thread (SINGLE_ISSUER|DEFER_TASKRUN,
 * else COOP_TASKRUN, else no flags). Every connection has one multishot receive armed,
 * reading into a buffer ring the worker registers (IORING_OP_RECV with buffer select):
 * the codec reads the bytes where the kernel put them, a partial message is copied into
 * the connection's own buffer, and the buffer goes straight back to the ring. Replies go
 * into the connection's out buffer; at most one send per connection is in flight, from
 * a buffer frozen until it completes, and all sends of a loop turn leave with the one
 * io_uring_enter that also waits for the next completions. The handoff's eventfd has a
 * multishot poll armed on the ring; with --dispatch reuseport each listener a multishot
 * accept. A connection closed with operations in flight has them cancelled and is
 * freed once their last completion has arrived (conn.inflight). */
#ifndef WHARF_URING_H
#define WHARF_URING_H

#include <stddef.h>

#include "backend.h"

extern const struct backend uring_backend;

/* Whether io_uring can serve here: sets up a throw-away ring, checks its features and
 * opcodes, registers a buffer ring and completes one multishot receive on a socket
 * pair. 0, or -1 with the reason in why (e.g. EPERM from seccomp or
 * kernel.io_uring_disabled, a kernel too old for multishot receives).
 * With $WHARFD_TEST_HOOKS=1, $WHARFD_TEST_URING_SETUP=EPERM (or ENOSYS, EINVAL, ...)
 * makes every ring setup fail with that error, as a filtered system call would. */
int uring_probe(char *why, size_t whylen);

#endif
