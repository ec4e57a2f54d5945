/* uring_ring: setting up an io_uring and its buffer rings, the shims for what
 * liburing 2.3's headers predate, and the test hooks that force the paths a busy or
 * old kernel would take. Shared by the start-up probe (uring_probe.c) and the workers
 * (uring.c); io_uring backend only. */
#ifndef WHARF_URING_RING_H
#define WHARF_URING_RING_H

#include <liburing.h>
#include <stddef.h>

/* Linux 6.12's incremental consumption, which liburing 2.3's headers predate. */
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

/* The test-only knobs, all read by uring_test_hooks_read and only with
 * $WHARFD_TEST_HOOKS=1 ($WHARFD_TEST_URING_<NAME>); zero: not set. */
struct uring_test_hooks {
    int setup_errno;        /* SETUP=EPERM|ENOSYS|...: every ring setup fails with it */
    int no_incremental;     /* NO_INC: a pool of whole buffers, as before Linux 6.12 */
    unsigned bufs;          /* BUFS=N: a pool of N buffers (ENOBUFS soon) */
    unsigned cq_entries;    /* CQ=N: a tiny completion queue (overflows) */
    unsigned sqe_fail_every; /* SQE_FAIL=N: the 1st, N+1th... SQE is not to be had */
    int accept_oneshot;     /* ACCEPT_ONESHOT: one-shot accepts, re-armed each time */
    int flush_set;          /* FLUSH=N was given (0: send only at the turn's end) */
    unsigned flush_every;
    int no_fixed;           /* NO_FIXED: no registered files */
    unsigned fixed_slots;   /* FIXED_SLOTS=N: a tiny file table (0: not set) */
    int udp_poll;           /* UDP_POLL: udp:// on the poll+recvmmsg path, as without the
                             * multishot recvmsg (uring_udp_ring.h) */
    unsigned udp_bufs;      /* UDP_BUFS=N: a udp buffer ring of N buffers (ENOBUFS soon) */
    unsigned udp_room;      /* UDP_ROOM=N: N payload bytes per udp buffer (truncation) */
    int udp_sendmsg;        /* UDP_SENDMSG: udp replies as one SENDMSG SQE each */
    int udp_no_gso;         /* UDP_NO_GSO: udp replies one datagram each, no UDP_SEGMENT runs */
};

void uring_test_hooks_read(struct uring_test_hooks *h);

/* Set up a ring with the best task-running mode the kernel takes (DEFER_TASKRUN,
 * else COOP_TASKRUN, else none). setup_errno (a test hook) makes it fail as a
 * filtered system call would. 0 or -errno; *flags_used: the mode that took. */
int uring_ring_setup(struct io_uring *ring, unsigned sq, unsigned cq, unsigned *flags_used,
                     int setup_errno);
/* The mode for the log: "SINGLE_ISSUER|DEFER_TASKRUN", ... */
const char *uring_mode_name(unsigned flags);
/* Why io_uring_setup failed (err: an errno), for the log or --backend's refusal. */
void uring_explain_setup_error(int err, char *why, size_t whylen);

/* A buffer ring of n entries registered as group bgid: incremental (IOU_PBUF_RING_INC)
 * when inc. NULL with *err = -errno; *helper records how it was made, for
 * uring_bufring_free. */
struct io_uring_buf_ring *uring_bufring_setup(struct io_uring *ring, unsigned n, unsigned bgid,
                                              int inc, int *helper, int *err);
void uring_bufring_free(struct io_uring *ring, struct io_uring_buf_ring *br, unsigned n,
                        unsigned bgid, int helper);

#endif
