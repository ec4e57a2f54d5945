/* uring: the worker loop on io_uring (built when liburing is found; see build.mk).
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
 * freed once their last completion has arrived (backend.h: conn_busy).
 *
 * The files: uring_probe.c (can io_uring serve here, and with what), uring_ring.c
 * (ring and buffer-ring setup, liburing 2.3 shims, test hooks), uring_pool.c (the
 * receive buffers), uring_accept.c (the handoff's poll, accepts), uring.c (the
 * connection operations, the loop); uring_int.h is what they share. */
#ifndef WHARF_URING_H
#define WHARF_URING_H

#include "uring_probe.h"

struct backend;

/* The io_uring backend, for a kernel that uring_probe found able (its caps): called
 * once, before any worker starts. */
const struct backend *uring_backend_for(const struct uring_caps *caps);

#endif
