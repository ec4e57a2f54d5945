/* uring_stop: a stopping worker's ring lets go of every file before it is closed
 * (ur_quiesce). io_uring backend only. */
#include <errno.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "uring_accept.h"
#include "uring_int.h"
#include "uring_udp.h"

#define QUIESCE_MS 2000 /* the wait for the ring to let go of every file */

/* Whether the ring still has an operation on a file: an accept or poll on a listener,
 * the handoff's poll, a udp socket's poll, receive or reply, a receive or send of a
 * (closed) connection, or ur_quiesce's cancel of them all. */
static int ur_holds_files(const struct worker *w)
{
    const struct uring_loop *u = ur_of(w);
    if (ur_accept_holds_files(&u->acc) || u->cancel_all_due || u->udp.armed || u->udp.sends)
        return 1;
    for (const struct conn *c = w->loop.closed; c; c = (const struct conn *)c->timer.next)
        if (ur_conn_c(c)->inflight)
            return 1;
    return 0;
}

/* ur_quiesce's completions: operations end, nothing new starts. */
static void ur_complete_last(struct worker *w, const struct io_uring_cqe *cqe)
{
    struct uring_loop *u = ur_of(w);
    if (!ur_udp_is(w, ud_ptr(cqe->user_data)) && ur_accept_last(w, cqe))
        return; /* a udp socket's: ur_complete, which arms nothing now */
    if ((cqe->user_data & TAG_MASK) == TAG_IGNORE && ud_ptr(cqe->user_data) == u)
        u->cancel_all_due = 0;
    else
        ur_complete(w, cqe); /* a closed connection's receive or send only counts down */
}

/* Cancel everything still in flight and reap until the ring holds no file, in this
 * thread. Why: a request's file reference otherwise goes in the ring's exit work, a
 * kernel worker that runs after close(ring), where the last fput is itself deferred
 * (delayed_fput, a jiffy or more); a listener whose cancelled accept ended there was
 * still LISTENING after the process had exited, and a restart at once could not bind
 * (EADDRINUSE). Here the fput is this thread's task work, run before it returns.
 * 0, or -1 when something was still in flight when it gave up (logged). */
int ur_quiesce(struct worker *w)
{
    struct uring_loop *u = ur_of(w);
    struct io_uring *ring = &u->ring;
    io_uring_submit(ring); /* the closes of the last connections, before the cancel */
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe) {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, ud(u, TAG_IGNORE));
        u->cancel_all_due = 1;
    } else { /* the submission failed: only what ends by itself is waited for */
        log_warn("worker %d: io_uring: no room to cancel what is in flight", w->loop.id);
    }
    uint64_t deadline = clock_ms() + QUIESCE_MS;
    while (ur_holds_files(w)) {
        uint64_t now = clock_ms();
        if (now >= deadline) {
            log_warn("worker %d: io_uring operations still in flight after %d ms; the "
                     "ring's exit will end them", w->loop.id, QUIESCE_MS);
            return -1;
        }
        uint64_t left = deadline - now;
        struct __kernel_timespec ts = {.tv_sec = (long long)(left / 1000),
                                       .tv_nsec = (long long)(left % 1000) * 1000000};
        struct io_uring_cqe *cqe;
        int rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            log_warn("worker %d: io_uring_enter while stopping: %s", w->loop.id, strerror(-rc));
            return -1;
        }
        unsigned head, n = 0;
        io_uring_for_each_cqe(ring, head, cqe)
        {
            ur_complete_last(w, cqe);
            n++;
        }
        io_uring_cq_advance(ring, n);
    }
    io_uring_submit(ring); /* the closes owed to the last shutdowns' completions */
    return 0;
}
