/* uring_probe: whether io_uring can serve here, and what the kernel's io_uring can
 * do, found once at start-up (a throw-away ring) before any worker starts. */
#ifndef WHARF_URING_PROBE_H
#define WHARF_URING_PROBE_H

#include <stddef.h>

/* What the workers may use beyond the minimum uring_probe insists on. */
struct uring_caps {
    /* Multishot receives with a byte limit per arm (IORING_RECV_MSHOT_LIM in recent
     * kernels, set in the SQE's optlen, which liburing 2.3 calls file_index; older
     * ones refuse it). */
    int recv_limit;
    /* Multishot IORING_OP_RECVMSG into provided buffers, one datagram per buffer with
     * its sender's address (Linux 6.0): udp:// sockets use it (uring_udp_ring.h). */
    int recvmsg_multishot;
};

/* Sets up a throw-away ring, checks its features and opcodes, registers a buffer ring
 * and completes one multishot receive on a socket pair; fills *caps. 0, or -1 with the
 * reason in why (e.g. EPERM from seccomp or kernel.io_uring_disabled, a kernel too
 * old for multishot receives). Sets nothing else.
 * With $WHARFD_TEST_HOOKS=1, $WHARFD_TEST_URING_SETUP=EPERM (or ENOSYS, EINVAL, ...)
 * makes every ring setup fail with that error, as a filtered system call would. */
int uring_probe(struct uring_caps *caps, char *why, size_t whylen);

#endif
