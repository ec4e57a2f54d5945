#include "uring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "uring_accept.h"
#include "uring_int.h"
#include "uring_udp.h"

#define SQ_ENTRIES 4096
#define CQ_ENTRIES 32768        /* receives and sends of thousands of connections per turn */
#define CQE_BATCH 256           /* completions copied out of the ring at a time, at most */
/* In a big turn, send what the first completions produced after this many, instead of
 * at the end of the turn: the peers get their replies (and go on) while the rest of the
 * turn is served, at the cost of one more io_uring_enter per this many requests. */
#define FLUSH_EVERY 32
/* A receive's byte limit per arm (caps.recv_limit): read ahead of the replies by
 * --max-output / 2, within these bounds. */
#define RECV_LIMIT_MIN (16 * 1024)
#define RECV_LIMIT_MAX (256 * 1024)

/* What uring_probe found, given by backend_choose before any worker starts (their
 * threads are created after it: pthread_create orders the write before their reads). */
static struct uring_caps probed;

/* ---- submissions ---- */

/* No SQE even after submitting: counted, logged at most once a second. */
static void ur_sq_stalled(struct worker *w)
{
    struct uring_loop *u = ur_of(w);
    counter_add(&w->stats.uring_sq_stalls, 1);
    uint64_t now = clock_ms();
    if (now - u->stall_log_ms >= 1000) {
        u->stall_log_ms = now;
        log_warn("worker %d: io_uring submission queue stays full (%llu times so far); "
                 "putting operations off to the next turn", w->loop.id,
                 (unsigned long long)counter_get(&w->stats.uring_sq_stalls));
    }
}

/* An SQE; when the submission queue is full, submit what is queued first. NULL when
 * there is still none (the kernel took nothing: it may refuse while completions wait);
 * everything queued before has then been submitted, and the caller either keeps a
 * pending retry or does the operation another way. The test hook
 * $WHARFD_TEST_URING_SQE_FAIL=N makes the 1st, N+1th, 2N+1th... call take that path. */
struct io_uring_sqe *ur_sqe(struct worker *w)
{
    struct uring_loop *u = ur_of(w);
    struct io_uring *ring = &u->ring;
    if (u->hooks.sqe_fail_every && u->sqe_calls++ % u->hooks.sqe_fail_every == 0) {
        io_uring_submit(ring);
        ur_sq_stalled(w);
        return NULL;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe)
        return sqe;
    counter_add(&w->stats.uring_sq_full, 1);
    io_uring_submit(ring);
    sqe = io_uring_get_sqe(ring);
    if (!sqe)
        ur_sq_stalled(w);
    return sqe;
}

/* Cancel the operation tagged tag of p. 0, or -1 when no SQE was to be had. */
int ur_cancel(struct worker *w, const void *p, unsigned tag)
{
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe)
        return -1;
    io_uring_prep_cancel64(sqe, ud(p, tag), 0);
    io_uring_sqe_set_data64(sqe, TAG_IGNORE);
    return 0;
}

/* ---- connections ---- */

static int ur_arm_recv(struct worker *w, struct conn *c)
{
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe)
        return -1;
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = POOL_BGID;
    ur_sqe_file(sqe, c);
    if (ur_of(w)->caps.recv_limit) {
        /* Read ahead of the replies by at most this much: the receive ends there and is
         * armed again unless backpressure stopped reading meanwhile. */
        uint64_t limit = w->set.max_output / 2;
        if (limit < RECV_LIMIT_MIN)
            limit = RECV_LIMIT_MIN;
        if (limit > RECV_LIMIT_MAX)
            limit = RECV_LIMIT_MAX;
        sqe->file_index = (uint32_t)limit; /* optlen */
    }
    io_uring_sqe_set_data64(sqe, ud(c, TAG_RECV));
    c->io_flags = (uint8_t)((c->io_flags | UR_RECV_ARMED) & ~UR_RECV_CANCEL);
    ur_conn(c)->inflight++;
    return 0;
}

/* Whether c should have a receive armed. */
static int ur_wants_recv(const struct conn *c)
{
    if (c->flags & CONN_CLOSED)
        return 0;
    return (c->flags & CONN_LINGER) || conn_reading(c);
}

/* Arm c's receive; with no SQE, put c on the to-do list: ur_revisit arms it then. */
static void ur_arm_recv_or_later(struct worker *w, struct conn *c)
{
    if (ur_arm_recv(w, c) < 0)
        worker_mark_todo(w, c);
}

static void ur_rearm_recv(struct worker *w, struct conn *c)
{
    counter_add(&w->stats.uring_recv_rearms, 1);
    ur_arm_recv_or_later(w, c);
}

/* A cancel found no SQE: it is owed, and ur_revisit sends it (a receive left armed
 * on a closed connection would hold its socket open, and the struct, for as long as
 * the peer stays silent). */
static void ur_cancel_later(struct worker *w, struct conn *c)
{
    c->io_flags |= UR_CANCEL_LATER;
    worker_mark_todo(w, c);
}

static void ur_cancel_recv(struct worker *w, struct conn *c)
{
    if (!(c->io_flags & UR_RECV_ARMED) || (c->io_flags & UR_RECV_CANCEL))
        return;
    if (ur_cancel(w, c, TAG_RECV) < 0) {
        ur_cancel_later(w, c);
        return;
    }
    c->io_flags |= UR_RECV_CANCEL;
}

/* Closing: cancel the receive and the send in flight (a send cancelled twice, when
 * one of the two was owed, only gets ENOENT the second time). */
static void ur_cancel_ops(struct worker *w, struct conn *c)
{
    ur_cancel_recv(w, c);
    if ((c->io_flags & UR_SENDING) && ur_cancel(w, c, TAG_SEND) < 0)
        ur_cancel_later(w, c);
}

/* Never fails: with no SQE for the receive, it is armed from the to-do list. */
static int ur_attach(struct worker *w, struct conn *c)
{
    ur_arm_recv_or_later(w, c);
    return 0;
}

/* Cancel what is in flight and close the socket (io_uring keeps its own reference
 * until the cancelled operations complete; the struct lives until their completions are
 * in). The close is queued behind the cancels, not done now: SQEs still waiting to be
 * submitted name this descriptor, and they take their reference at submission, in
 * order; a close(2) now would free the number for the acceptor to reuse, and a queued
 * send could reach another client's socket. A linked shutdown (ur_link_shutdown) is
 * different: a linked request looks its descriptor up only when it runs, so the close
 * waits for its completion (ur_on_shutdown). */
static void ur_detach(struct worker *w, struct conn *c)
{
    ur_cancel_ops(w, c);
    ur_files_remove(w, c);
    if (c->io_flags & UR_SHUT_LINKED) {
        c->io_flags |= UR_CLOSE_OWED;
        return;
    }
    ur_close_fd(w, c);
}

/* Send the frozen buffer's rest, or freeze what waits in out and send it. */
static void ur_submit_send(struct worker *w, struct conn *c)
{
    struct ur_conn *uc = ur_conn(c);
    if (!buf_len(&uc->sending)) {
        struct buf t = uc->sending; /* empty: out keeps its memory for the next replies */
        uc->sending = c->out;
        c->out = t;
    }
    int last = (c->flags & CONN_CLOSE_WHEN_SENT) && !buf_len(&c->out); /* nothing follows */
    if (last && ur_send_last_now(w, c))
        return;
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe) {
        worker_mark_todo(w, c); /* ur_revisit sends it next time */
        return;
    }
    io_uring_prep_send(sqe, c->fd, buf_head(&uc->sending), buf_len(&uc->sending), MSG_NOSIGNAL);
    ur_sqe_file(sqe, c);
    io_uring_sqe_set_data64(sqe, ud(c, TAG_SEND));
    c->io_flags |= UR_SENDING;
    uc->inflight++;
    if (last)
        ur_link_shutdown(w, c, sqe);
}

/* Replies are waiting: send them with this turn's io_uring_enter (the to-do list runs
 * after every completion of the turn, so one connection's replies leave together). */
static void ur_send(struct worker *w, struct conn *c)
{
    if (!(c->io_flags & UR_SENDING) && !(c->flags & CONN_CLOSED) && buf_len(&c->out))
        worker_mark_todo(w, c);
}

/* Also what found no SQE before: an owed cancel, a receive to arm, a send. */
static void ur_revisit(struct worker *w, struct conn *c)
{
    if (c->io_flags & UR_CANCEL_LATER) {
        c->io_flags &= (uint8_t)~UR_CANCEL_LATER;
        if (c->flags & CONN_CLOSED)
            ur_cancel_ops(w, c);
        else if (!ur_wants_recv(c)) /* not if reading was turned on again meanwhile */
            ur_cancel_recv(w, c);
    }
    if (c->flags & CONN_CLOSED)
        return;
    if (!(c->io_flags & UR_RECV_ARMED) && ur_wants_recv(c))
        ur_arm_recv_or_later(w, c);
    if (!(c->io_flags & UR_SENDING) && (buf_len(&c->out) || buf_len(&ur_conn(c)->sending)))
        ur_submit_send(w, c);
    conn_settle(w, c);
}

static void ur_read_on(struct worker *w, struct conn *c)
{
    /* With a cancel still on its way, the receive's last completion re-arms it. */
    if (!(c->io_flags & UR_RECV_ARMED))
        ur_rearm_recv(w, c);
}

static void ur_read_off(struct worker *w, struct conn *c)
{
    ur_cancel_recv(w, c);
}

static void ur_linger(struct worker *w, struct conn *c)
{
    if (!(c->io_flags & UR_RECV_ARMED))
        ur_rearm_recv(w, c);
}

static void ur_on_recv(struct worker *w, struct conn *c, const struct io_uring_cqe *cqe)
{
    struct uring_loop *u = ur_of(w);
    int res = cqe->res;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->io_flags &= (uint8_t)~(UR_RECV_ARMED | UR_RECV_CANCEL);
        ur_conn(c)->inflight--;
    }
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        /* Bytes read while paused are answered too: they have left the socket. */
        const uint8_t drop = CONN_CLOSED | CONN_LINGER | CONN_CLOSE_WHEN_SENT | CONN_PEER_EOF;
        if (res > 0)
            pool_note_receiver(&u->pool, c);
        if (res > 0 && !(c->flags & drop)) {
            if ((c->flags & CONN_USED) && !(c->io_flags & UR_FIXED))
                ur_files_add(w, c); /* a second receive: likely kept alive */
            conn_received(w, c, pool_data(&u->pool, bid), (size_t)res);
        }
        pool_consumed(&u->pool, bid, res, cqe->flags);
    }
    if (c->flags & CONN_CLOSED)
        return;
    if (res == 0 || (res < 0 && res != -ENOBUFS && res != -ECANCELED)) {
        if (c->flags & CONN_LINGER)
            conn_close(w, c);
        else if (res == 0)
            conn_peer_eof(w, c);
        else
            conn_fail(w, c, -res);
        if (c->flags & CONN_CLOSED)
            return;
    } else if (res == -ENOBUFS) {
        counter_add(&w->stats.uring_enobufs, 1);
        pool_grow(&u->pool, w->loop.id);
    }
    if (!(c->io_flags & UR_RECV_ARMED) && ur_wants_recv(c))
        ur_rearm_recv(w, c);
    conn_settle(w, c);
}

static void ur_on_send(struct worker *w, struct conn *c, int res)
{
    struct ur_conn *uc = ur_conn(c);
    c->io_flags &= (uint8_t)~UR_SENDING;
    uc->inflight--;
    if (c->flags & CONN_CLOSED)
        return;
    if (res <= 0) {
        conn_fail(w, c, res < 0 ? -res : EPIPE);
        return;
    }
    conn_sent(w, c, (size_t)res);
    buf_consume(&uc->sending, (size_t)res);
    if (buf_len(&uc->sending) || buf_len(&c->out)) {
        worker_mark_todo(w, c); /* the rest, or what was replied meanwhile */
    } else {
        buf_release(&uc->sending); /* idle: no memory kept */
        buf_release(&c->out);
    }
    conn_settle(w, c);
}

/* ---- the loop ---- */

void ur_complete(struct worker *w, const struct io_uring_cqe *cqe)
{
    void *p = ud_ptr(cqe->user_data);
    switch (cqe->user_data & TAG_MASK) {
    case TAG_SHUTDOWN:
        if (p)
            ur_on_shutdown(w, p, cqe->res);
        break;
    case TAG_RECV:
        ur_on_recv(w, p, cqe);
        break;
    case TAG_SEND:
        ur_on_send(w, p, cqe->res);
        break;
    case TAG_HANDOFF:
        ur_on_handoff(w, cqe);
        break;
    case TAG_ACCEPT:
        ur_on_accept(w, p, cqe);
        break;
    case TAG_LISTEN_POLL: /* a listener's, or a udp socket's */
        if (ur_udp_is(w, p))
            ur_udp_on_poll(w, p, cqe);
        else
            ur_on_listen_poll(w, p, cqe);
        break;
    case TAG_SLOT_CLEAR: /* the slot would keep the socket open until the worker stops */
        if (cqe->res < 0)
            log_warn("worker %d: io_uring file table, clearing slot %llu: %s", w->loop.id,
                     (unsigned long long)(cqe->user_data >> 3), strerror(-cqe->res));
        break;
    default:
        break; /* cancellations */
    }
}

/* Handle every completion; they are copied out first so the ring has room for what
 * the handlers' own submissions complete at once. Every flush_every completions, while
 * more are waiting, the replies produced so far are submitted (FLUSH_EVERY). */
static void ur_reap(struct worker *w)
{
    struct io_uring *ring = &ur_of(w)->ring;
    struct io_uring_cqe batch[CQE_BATCH];
    unsigned chunk = ur_of(w)->flush_every;
    if (chunk == 0 || chunk > CQE_BATCH)
        chunk = CQE_BATCH;
    for (;;) {
        unsigned head, n = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(ring, head, cqe)
        {
            batch[n++] = *cqe;
            if (n == chunk)
                break;
        }
        if (n == 0)
            return;
        io_uring_cq_advance(ring, n);
        for (unsigned i = 0; i < n; i++)
            ur_complete(w, &batch[i]);
        if (chunk < CQE_BATCH && io_uring_cq_ready(ring)) {
            worker_run_todo(w);
            /* With events: DEFER_TASKRUN runs the shutdowns linked behind these sends
             * (ur_link_shutdown) only in an enter that asks for completions. */
            io_uring_submit_and_get_events(ring);
        }
    }
}

static void ur_check_overflow(struct worker *w)
{
    struct uring_loop *u = ur_of(w);
    if (IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
        counter_add(&w->stats.uring_cq_overflows, 1);
    unsigned dropped = IO_URING_READ_ONCE(*u->ring.cq.koverflow);
    if (dropped != u->koverflow) {
        counter_add(&w->stats.uring_cq_dropped, dropped - u->koverflow);
        log_warn("worker %d: the kernel dropped %u io_uring completions", w->loop.id,
                 dropped - u->koverflow);
        u->koverflow = dropped;
    }
}

/* Submit this turn's operations and wait for completions (or the next deadline), in
 * one io_uring_enter. */
static void ur_wait(struct worker *w, int timeout_ms)
{
    struct io_uring *ring = &ur_of(w)->ring;
    int rc;
    if (io_uring_cq_ready(ring) || timeout_ms == 0) {
        rc = io_uring_submit_and_get_events(ring);
    } else if (timeout_ms < 0) {
        rc = io_uring_submit_and_wait(ring, 1);
    } else {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        struct io_uring_cqe *cqe;
        rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        log_warn("worker %d: io_uring_enter: %s", w->loop.id, strerror(-rc));
}

static void ur_run(struct worker *w)
{
    for (;;) {
        worker_heartbeat(w);
        if (ur_accept_pending(&ur_of(w)->acc))
            ur_arm_pending(w);
        if (ur_of(w)->udp.pending)
            ur_udp_arm_pending(w);
        /* Still pending (no SQE again): do not sleep on a poll that is not there. */
        int again = ur_accept_pending(&ur_of(w)->acc) || ur_of(w)->udp.pending;
        ur_wait(w, again ? 0 : worker_next_timeout_ms(w));
        counter_add(&w->stats.loop_waits, 1);
        worker_update_clock(w);
        ur_check_overflow(w);
        pool_turn_start(&ur_of(w)->pool);
        ur_reap(w);
        ur_udp_turn_end(w);
        if (worker_turn_end(w))
            break;
    }
    ur_udp_stop(w);
}

static int ur_init(struct worker *w)
{
    struct uring_loop *u = calloc(1, sizeof *u);
    if (!u) {
        log_error("worker %d: out of memory", w->loop.id);
        return -1;
    }
    w->loop.io_state = u;
    u->caps = probed;
    uring_test_hooks_read(&u->hooks);
    unsigned cq = u->hooks.cq_entries ? u->hooks.cq_entries : CQ_ENTRIES; /* tiny: overflows */
    int rc = uring_ring_setup(&u->ring, cq < SQ_ENTRIES ? cq : SQ_ENTRIES, cq, &u->setup_flags,
                              u->hooks.setup_errno);
    if (rc < 0) {
        char why[256];
        uring_explain_setup_error(-rc, why, sizeof why);
        log_error("worker %d: %s", w->loop.id, why);
        return -1;
    }
    u->ring_ok = 1;
    u->flush_every = u->hooks.flush_set ? u->hooks.flush_every : FLUSH_EVERY; /* 0: at the end */
    io_uring_register_ring_fd(&u->ring); /* optional: saves a file lookup per enter */
    if (pool_setup(&u->pool, &u->ring, &u->hooks, w->loop.id) < 0)
        return -1;
    ur_files_setup(w);
    ur_accept_start(w);
    if (ur_udp_start(w) < 0)
        return -1;
    log_debug("worker %d: io_uring ring (%s), %u SQ / %u CQ entries, %u %s receive buffers of "
              "%u KiB, receives %s", w->loop.id, uring_mode_name(u->setup_flags),
              u->ring.sq.ring_entries, u->ring.cq.ring_entries, u->pool.nbufs,
              u->pool.incremental ? "incremental" : "whole", u->pool.shape.size / 1024,
              u->caps.recv_limit ? "limited per arm" : "unlimited");
    return 0;
}

/* After the loop (or a failed init): every operation still in flight is cancelled and
 * reaped (ur_quiesce), the file table dropped, the ring closed; the worker then frees
 * the connections that waited for them. */
static void ur_fini(struct worker *w)
{
    struct uring_loop *u = ur_of(w);
    if (!u)
        return;
    ur_udp_fini(w); /* its polls' last completions (ur_quiesce) arm nothing again */
    /* A slot whose clearing failed would hold its socket until the ring's exit. Not
     * after a failed quiesce: older kernels wait there for the requests still using
     * the table. */
    if (u->ring_ok && ur_quiesce(w) == 0 && u->fixed_slots) {
        int rc = io_uring_unregister_files(&u->ring);
        if (rc < 0)
            log_warn("worker %d: io_uring file table, unregistering: %s", w->loop.id,
                     strerror(-rc));
    }
    pool_unregister(&u->pool, &u->ring);
    ur_udp_unregister(w);
    if (u->ring_ok)
        io_uring_queue_exit(&u->ring);
    pool_free(&u->pool);
    ur_udp_free(w);
    free(u);
    w->loop.io_state = NULL;
}

/* The backend's view of a connection's own state (backend.h). */
static size_t ur_unsent(const struct conn *c) { return buf_len(&ur_conn_c(c)->sending); }

static int ur_conn_busy(const struct conn *c) { return ur_conn_c(c)->inflight != 0; }

static void ur_conn_release(struct conn *c) { buf_release(&ur_conn(c)->sending); }

static const struct backend uring_backend = {
    .name = "io_uring",
    .conn_private = sizeof(struct ur_conn),
    .datagrams = 1,
    .init = ur_init,
    .run = ur_run,
    .fini = ur_fini,
    .attach = ur_attach,
    .detach = ur_detach,
    .send = ur_send,
    .read_on = ur_read_on,
    .read_off = ur_read_off,
    .linger = ur_linger,
    .revisit = ur_revisit,
    .unsent = ur_unsent,
    .conn_busy = ur_conn_busy,
    .conn_release = ur_conn_release,
    .accept_stop = ur_accept_stop,
    .accept_resume = ur_accept_resume,
};

const struct backend *uring_backend_for(const struct uring_caps *caps)
{
    probed = *caps;
    return &uring_backend;
}
