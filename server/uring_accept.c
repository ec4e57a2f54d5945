#include "uring_accept.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"
#include "uring_int.h"

static inline struct uring_accept *acc_of(const struct worker *w) { return &ur_of(w)->acc; }

/* Without this poll the worker would never hear of new connections (nor of the
 * drain): with no SQE it is pending, armed at the next turn's start. */
static void ur_arm_handoff(struct worker *w)
{
    struct io_uring_sqe *sqe = ur_sqe(w);
    acc_of(w)->handoff_pending = !sqe;
    if (!sqe)
        return;
    io_uring_prep_poll_multishot(sqe, w->handoff.efd, POLLIN);
    io_uring_sqe_set_data64(sqe, ud(&w->handoff, TAG_HANDOFF));
    acc_of(w)->handoff_armed = 1;
}

void ur_on_handoff(struct worker *w, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        acc_of(w)->handoff_armed = 0;
    if (cqe->res < 0 && cqe->res != -ECANCELED)
        log_warn("worker %d: poll on the handoff: %s", w->loop.id, strerror(-cqe->res));
    /* The eventfd is never read: the multishot poll reports every write (handoff.h). */
    worker_take_handoff(w);
    if (!acc_of(w)->handoff_armed)
        ur_arm_handoff(w);
}

/* With no SQE, pending (ur_arm_pending): listener i would be accepted from no more. */
static void ur_arm_accept(struct worker *w, int i)
{
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe) {
        acc_of(w)->accept_pending |= 1u << i;
        return;
    }
    acc_of(w)->accept_pending &= ~(1u << i);
    const struct listener *l = &w->accept.listeners[i];
    /* The kernel reads RLIMIT_NOFILE when an accept is prepared, so a multishot accept
     * keeps the limit it started with; a test that lowers the limit of a running
     * server asks for one-shot accepts, re-armed (and re-reading it) each time. */
    if (ur_of(w)->hooks.accept_oneshot)
        io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    else
        io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud(l, TAG_ACCEPT));
    acc_of(w)->accept_armed |= 1u << i;
}

/* Out of descriptors: an accept would fail at once (the kernel takes the descriptor
 * before it waits for a connection), so wait for a connection with a poll instead, as
 * the epoll backend waits for an edge, and shed it then. */
static void ur_arm_listen_poll(struct worker *w, int i)
{
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe) {
        acc_of(w)->poll_pending |= 1u << i;
        return;
    }
    acc_of(w)->poll_pending &= ~(1u << i);
    const struct listener *l = &w->accept.listeners[i];
    io_uring_prep_poll_add(sqe, l->fd, POLLIN);
    io_uring_sqe_set_data64(sqe, ud(l, TAG_LISTEN_POLL));
    acc_of(w)->listen_polled |= 1u << i;
}

/* Accept what waits on listener i with accept_drain (which sheds through the reserve
 * descriptor, or pauses), then wait for more: by poll while descriptors ran out, by
 * multishot accept once they did not. Nothing while paused (accept_resume comes). */
static void ur_listener_drain(struct worker *w, int i)
{
    struct accept_ctx *a = &w->accept;
    uint64_t shed = counter_get(&a->stats.rejected_no_fd);
    accept_drain(a, &a->listeners[i], worker_deliver_own, w);
    a->pending &= ~(1u << i); /* the multishot accept armed below takes the rest */
    if (!a->n_listeners || a->paused_until_ms)
        return;
    if (counter_get(&a->stats.rejected_no_fd) != shed)
        ur_arm_listen_poll(w, i);
    else
        ur_arm_accept(w, i);
}

static void ur_arm_accepts(struct worker *w)
{
    for (int i = 0; i < w->accept.n_listeners; i++)
        if (!((acc_of(w)->accept_armed | acc_of(w)->listen_polled) & (1u << i)) &&
            !w->accept.paused_until_ms)
            ur_arm_accept(w, i);
}

/* A connection the multishot accept took: --max-conns and --max-conns-per-ip, as
 * accept_drain applies them. */
static void ur_admit(struct worker *w, const struct listener *l, int fd)
{
    uint64_t live = accept_live_connections(&w->accept);
    uint32_t peer;
    if (accept_admit(&w->accept, l, fd, &live, &peer))
        worker_deliver_own(w, fd, listener_conn_proto(l), peer);
}

void ur_on_accept(struct worker *w, const struct listener *l,
                  const struct io_uring_cqe *cqe)
{
    struct accept_ctx *a = &w->accept;
    int i = (int)(l - a->listeners);
    if (!(cqe->flags & IORING_CQE_F_MORE))
        acc_of(w)->accept_armed &= ~(1u << i);
    int res = cqe->res;
    if (res >= 0) {
        ur_admit(w, l, res);
    } else if (res != -ECANCELED && accept_failed(a, -res) == ACCEPT_FAIL_NO_FILES) {
        if (a->n_listeners && !(acc_of(w)->accept_armed & (1u << i)))
            ur_listener_drain(w, i);
        return;
    }
    if (a->n_listeners && !(acc_of(w)->accept_armed & (1u << i)) &&
        !a->paused_until_ms)
        ur_arm_accept(w, i);
}

void ur_on_listen_poll(struct worker *w, const struct listener *l,
                       const struct io_uring_cqe *cqe)
{
    int i = (int)(l - w->accept.listeners);
    acc_of(w)->listen_polled &= ~(1u << i);
    if (cqe->res == -ECANCELED || !w->accept.n_listeners)
        return;
    ur_listener_drain(w, i);
}

/* Cancel listener i's accept or poll; a cancel with no SQE is pending. */
static void ur_listener_cancel(struct worker *w, int i)
{
    struct uring_accept *u = acc_of(w);
    const struct listener *l = &w->accept.listeners[i];
    int failed = 0;
    u->cancel_pending &= ~(1u << i);
    if (u->accept_armed & (1u << i))
        failed |= ur_cancel(w, l, TAG_ACCEPT) < 0;
    if (u->listen_polled & (1u << i))
        failed |= ur_cancel(w, l, TAG_LISTEN_POLL) < 0;
    if (failed)
        u->cancel_pending |= 1u << i;
}

/* Draining: the listeners are closed right after this returns, so what is queued for
 * them (and the cancels) is submitted now, while their descriptors still name them.
 * The socket stays open (and listening) until the ring lets go of it too: when the
 * cancelled accept completes, at the next turn's io_uring_enter, or in ur_fini. */
void ur_accept_stop(struct worker *w)
{
    acc_of(w)->accept_pending = acc_of(w)->poll_pending = 0;
    for (int i = 0; i < w->accept.n_listeners; i++)
        ur_listener_cancel(w, i);
    io_uring_submit(&ur_of(w)->ring);
}

/* At each turn's start: arm (or cancel) again what found no SQE before. Accepts and
 * polls only while accepting goes on; a cancel until it has been submitted. */
void ur_arm_pending(struct worker *w)
{
    struct uring_accept *u = acc_of(w);
    if (u->handoff_pending && !u->handoff_armed)
        ur_arm_handoff(w);
    uint32_t accepts = u->accept_pending, polls = u->poll_pending, cancels = u->cancel_pending;
    u->accept_pending = u->poll_pending = 0;
    int accepting = w->accept.n_listeners && !w->accept.paused_until_ms;
    for (int i = 0; i < MAX_LISTENERS; i++) {
        uint32_t bit = 1u << i, armed = (u->accept_armed | u->listen_polled) & bit;
        if (cancels & bit)
            ur_listener_cancel(w, i);
        if (accepting && !armed && (polls & bit))
            ur_arm_listen_poll(w, i);
        else if (accepting && !armed && (accepts & bit))
            ur_arm_accept(w, i);
    }
}

void ur_accept_resume(struct worker *w)
{
    for (int i = 0; i < w->accept.n_listeners; i++)
        if (!((acc_of(w)->accept_armed | acc_of(w)->listen_polled) & (1u << i)))
            ur_listener_drain(w, i);
}

void ur_accept_start(struct worker *w)
{
    ur_arm_handoff(w);
    ur_arm_accepts(w);
}

int ur_accept_holds_files(const struct uring_accept *u)
{
    return u->accept_armed || u->listen_polled || u->handoff_armed;
}

/* The stopping worker's completions of accepts, polls and the handoff: they end,
 * nothing is armed again. 0 when cqe was none of them. */
int ur_accept_last(struct worker *w, const struct io_uring_cqe *cqe)
{
    struct uring_accept *u = acc_of(w);
    void *p = ud_ptr(cqe->user_data);
    unsigned tag = cqe->user_data & TAG_MASK;
    uint32_t ended = !(cqe->flags & IORING_CQE_F_MORE);
    if (tag == TAG_ACCEPT || tag == TAG_LISTEN_POLL) {
        uint32_t bit = ended << ((const struct listener *)p - w->accept.listeners);
        if (tag == TAG_ACCEPT && cqe->res >= 0)
            close(cqe->res); /* came in while the accept was being cancelled */
        if (tag == TAG_ACCEPT)
            u->accept_armed &= ~bit;
        else
            u->listen_polled &= ~bit;
        return 1;
    }
    if (tag == TAG_HANDOFF) {
        u->handoff_armed &= !ended;
        return 1;
    }
    return 0;
}
