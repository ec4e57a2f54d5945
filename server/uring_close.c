/* uring_close: how an io_uring connection's end goes out: its last reply with the FIN
 * right behind it (as epoll's write and close follow each other), and the close of its
 * socket, which must wait for any operation that names the descriptor. io_uring
 * backend only. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"
#include "uring_int.h"

/* Queue the close of c's socket (behind what is queued for it); with no SQE, close now:
 * ur_sqe submitted everything queued before it gave up. */
void ur_close_fd(struct worker *w, struct conn *c)
{
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe) {
        close(c->fd);
        return;
    }
    io_uring_prep_close(sqe, c->fd);
    io_uring_sqe_set_data64(sqe, TAG_IGNORE);
}

/* A connection's last replies, as epoll sends them: write(2) now and, when it took
 * every byte, shutdown(SHUT_WR) at once, so the FIN follows the data within
 * microseconds. Through the ring, a send's completion (and a shutdown linked to it) is
 * only handled once every operation of the same io_uring_enter has been issued, and a
 * client that closes as soon as it has read a Connection: close response (wrk) sent
 * the first FIN in about a fifth of the connections, and held the TIME_WAIT. Two system
 * calls, on a connection's last reply only. 1 when c is done with (all sent, or failed
 * and closed); 0 when the rest goes through the ring (the socket is full). */
int ur_send_last_now(struct worker *w, struct conn *c)
{
    struct ur_conn *uc = ur_conn(c);
    ssize_t n = send(c->fd, buf_head(&uc->sending), buf_len(&uc->sending),
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        conn_fail(w, c, n < 0 ? errno : EPIPE);
        return 1;
    }
    conn_sent(w, c, (size_t)n);
    buf_consume(&uc->sending, (size_t)n);
    if (buf_len(&uc->sending))
        return 0;
    buf_release(&uc->sending);
    if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN)
        log_debug("worker %d: shutdown: %s", w->loop.id, strerror(errno));
    return 1;
}

/* When ur_send_last_now could not write everything (the socket was full), the rest
 * goes through the ring with a shutdown(SHUT_WR) linked behind it: the kernel sends
 * the FIN once every byte is sent (MSG_WAITALL goes on past a short send), rather than
 * a turn after the send's completion has been handled. A send that fails part way
 * breaks the link (the shutdown ends -ECANCELED) and the rest is handled as before.
 * No SQE left: no link, the close after the send does it. */
void ur_link_shutdown(struct worker *w, struct conn *c, struct io_uring_sqe *send)
{
    if (c->io_flags & UR_SHUT_LINKED)
        return;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ur_of(w)->ring); /* never submits */
    if (!sqe)
        return;
    send->msg_flags |= MSG_WAITALL;
    send->flags |= IOSQE_IO_LINK;
    io_uring_prep_shutdown(sqe, c->fd, SHUT_WR);
    ur_sqe_file(sqe, c);
    io_uring_sqe_set_data64(sqe, ud(c, TAG_SHUTDOWN));
    c->io_flags |= UR_SHUT_LINKED;
    ur_conn(c)->inflight++;
}

/* The linked shutdown ran (or was cancelled with its send: either way the close that
 * follows ends the connection): a close owed since ur_detach is queued now. */
void ur_on_shutdown(struct worker *w, struct conn *c, int res)
{
    (void)res; /* a failed send or a reset peer: counted where the send ends */
    c->io_flags &= (uint8_t)~UR_SHUT_LINKED;
    ur_conn(c)->inflight--;
    if (c->io_flags & UR_CLOSE_OWED) {
        c->io_flags &= (uint8_t)~UR_CLOSE_OWED;
        ur_close_fd(w, c);
    }
}
