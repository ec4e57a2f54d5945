#include "uring_probe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uring_ring.h"

#define PROBE_BGID 0

static int probe_ops(struct io_uring *ring, char *why, size_t whylen)
{
    unsigned need = IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_FAST_POLL;
    if ((ring->features & need) != need) {
        snprintf(why, whylen, "the kernel's io_uring lacks NODROP, EXT_ARG or FAST_POLL "
                              "(Linux 5.11 or later needed)");
        return -1;
    }
    struct io_uring_probe *p = io_uring_get_probe_ring(ring);
    if (!p) {
        snprintf(why, whylen, "cannot probe io_uring's opcodes");
        return -1;
    }
    static const struct { int op; const char *name; } ops[] = {
        {IORING_OP_RECV, "RECV"}, {IORING_OP_SEND, "SEND"}, {IORING_OP_ACCEPT, "ACCEPT"},
        {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}, {IORING_OP_POLL_ADD, "POLL_ADD"},
        {IORING_OP_CLOSE, "CLOSE"},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0] && rc == 0; i++)
        if (!io_uring_opcode_supported(p, ops[i].op)) {
            snprintf(why, whylen, "the kernel's io_uring lacks IORING_OP_%s", ops[i].name);
            rc = -1;
        }
    io_uring_free_probe(p);
    return rc;
}

/* End a probe on the socket pair sv: cancel the multishot request tagged armed (0: it
 * has ended already), reap what the cancel completes, close both sockets. */
static void probe_end(struct io_uring *ring, uint64_t armed, int sv[2])
{
    if (armed) {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 2};
        struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
        if (sqe) {
            io_uring_prep_cancel64(sqe, armed, 0);
            io_uring_sqe_set_data64(sqe, armed + 1);
            io_uring_submit(ring);
        }
        for (int k = 0; k < 2 && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0; k++)
            io_uring_cqe_seen(ring, cqe);
    }
    close(sv[0]);
    close(sv[1]);
}

/* Whether a multishot receive stops after the byte limit in optlen: it must end (no
 * F_MORE) having read at most one buffer past the limit; older kernels refuse the field
 * (EINVAL). Uses the probe's buffer ring. */
static int probe_recv_limit(struct io_uring *ring)
{
    int sv[2], ok = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = PROBE_BGID;
    sqe->file_index = 4; /* optlen */
    io_uring_sqe_set_data64(sqe, 3);
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts = {.tv_sec = 2};
    int ended = 0;
    if (io_uring_submit(ring) == 1 && write(sv[1], "abcdefgh", 8) == 8) {
        while (!ended && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
            int past = 0;
            if (cqe->user_data == 3) {
                ended = !(cqe->flags & IORING_CQE_F_MORE);
                ok = ended && cqe->res > 0;
                past = !ended && cqe->res >= 8; /* read past the limit: none here */
            }
            io_uring_cqe_seen(ring, cqe);
            if (past)
                break;
        }
    }
    probe_end(ring, ended ? 0 : 3, sv);
    return ok;
}

/* Whether a multishot recvmsg stays armed and hands over a datagram in a provided buffer
 * laid out as io_uring_recvmsg_out, name, payload: what udp:// sockets use (Linux 6.0;
 * older kernels refuse IORING_RECV_MULTISHOT on RECVMSG). On a datagram socket pair,
 * with the probe's buffer ring (mem: its buffers of sz bytes). */
static int probe_recvmsg_multishot(struct io_uring *ring, char *mem, size_t sz)
{
    int sv[2], ok = 0, ended;
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    struct msghdr tmpl = {0};
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_recvmsg_multishot(sqe, sv[0], &tmpl, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = PROBE_BGID;
    io_uring_sqe_set_data64(sqe, 5);
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts = {.tv_sec = 2};
    ended = io_uring_submit(ring) != 1; /* not submitted: nothing to cancel */
    if (!ended && write(sv[1], "ab", 2) == 2 &&
        io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0 && cqe->user_data == 5) {
        ended = !(cqe->flags & IORING_CQE_F_MORE);
        if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER) && !ended) {
            unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
            struct io_uring_recvmsg_out *o =
                io_uring_recvmsg_validate(mem + (size_t)bid * sz, cqe->res, &tmpl);
            ok = o && o->payloadlen == 2 && !(o->flags & MSG_TRUNC);
        }
        io_uring_cqe_seen(ring, cqe);
    }
    probe_end(ring, ended ? 0 : 5, sv);
    return ok;
}

/* Arm a multishot receive on fd and see its first completion: 0, or -1 with why set.
 * *submitted: whether the receive went to the kernel. */
static int probe_recv_once(struct io_uring *ring, int fd, int peer, int *submitted, char *why,
                           size_t whylen)
{
    int rc = -1;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = PROBE_BGID;
    io_uring_sqe_set_data64(sqe, 1);
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts = {.tv_sec = 2};
    int n = io_uring_submit(ring);
    *submitted = n == 1;
    if (n == 1 && write(peer, "x", 1) == 1 &&
        io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0 && cqe) {
        if (cqe->res == 1 && (cqe->flags & IORING_CQE_F_BUFFER) && (cqe->flags & IORING_CQE_F_MORE))
            rc = 0;
        else if (cqe->res < 0)
            snprintf(why, whylen, "multishot receive with provided buffers failed: %s "
                                  "(Linux 6.0 or later needed)", strerror(-cqe->res));
        else
            snprintf(why, whylen, "multishot receive did not stay armed (Linux 6.0 or later "
                                  "needed)");
        io_uring_cqe_seen(ring, cqe);
    } else {
        snprintf(why, whylen, "a receive on io_uring did not complete (submit: %d)", n);
    }
    return rc;
}

/* Cancel probe_recv_once's receive and reap (the cancel's completion and the receive's
 * last one, unless recv_done), so the buffer ring is idle when it is unregistered. */
static void probe_recv_cancel(struct io_uring *ring, int recv_done)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_cancel64(sqe, 1, 0);
    io_uring_sqe_set_data64(sqe, 2);
    io_uring_submit(ring);
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts = {.tv_sec = 2};
    int cancel_done = 0;
    while (!(cancel_done && recv_done) && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
        if (cqe->user_data == 2)
            cancel_done = 1;
        else if (!(cqe->flags & IORING_CQE_F_MORE))
            recv_done = 1;
        io_uring_cqe_seen(ring, cqe);
    }
}

/* One multishot receive into a registered buffer ring, on a socket pair: what the
 * backend does for every connection (Linux 6.0 or later). */
static int probe_recv(struct io_uring *ring, struct uring_caps *caps, char *why, size_t whylen)
{
    enum { N = 8, SZ = 64 };
    static char mem[N][SZ];
    int err = 0, helper = 0;
    struct io_uring_buf_ring *br = uring_bufring_setup(ring, N, PROBE_BGID, 0, &helper, &err);
    if (!br) {
        snprintf(why, whylen, "cannot register a provided-buffer ring (Linux 5.19 or later "
                              "needed): %s", strerror(-err));
        return -1;
    }
    for (int i = 0; i < N; i++)
        io_uring_buf_ring_add(br, mem[i], SZ, (unsigned short)i, io_uring_buf_ring_mask(N), i);
    io_uring_buf_ring_advance(br, N);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(why, whylen, "socketpair: %s", strerror(errno));
        uring_bufring_free(ring, br, N, PROBE_BGID, helper);
        return -1;
    }
    int submitted = 0;
    int rc = probe_recv_once(ring, sv[0], sv[1], &submitted, why, whylen);
    probe_recv_cancel(ring, rc < 0 && !submitted);
    close(sv[0]);
    close(sv[1]);
    if (rc == 0) {
        caps->recv_limit = probe_recv_limit(ring);
        caps->recvmsg_multishot = probe_recvmsg_multishot(ring, &mem[0][0], SZ);
    }
    uring_bufring_free(ring, br, N, PROBE_BGID, helper);
    return rc;
}

int uring_probe(struct uring_caps *caps, char *why, size_t whylen)
{
    struct uring_test_hooks hooks;
    uring_test_hooks_read(&hooks);
    *caps = (struct uring_caps){0};
    struct io_uring ring;
    unsigned flags = 0;
    int rc = uring_ring_setup(&ring, 8, 16, &flags, hooks.setup_errno);
    if (rc < 0) {
        uring_explain_setup_error(-rc, why, whylen);
        return -1;
    }
    rc = probe_ops(&ring, why, whylen);
    if (rc == 0)
        rc = probe_recv(&ring, caps, why, whylen);
    io_uring_queue_exit(&ring);
    return rc;
}
