#include "uring_udp.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#include "../common/log.h"
#include "udp.h"
#include "uring_int.h"
#include "uring_udp_ring.h"

#define UDP_FINAL_CALLS 64 /* udp_serve calls per socket when the loop ends (as epoll) */

static inline struct uring_udp *udp_of(const struct worker *w) { return &ur_of(w)->udp; }

int ur_udp_is(const struct worker *w, const void *p)
{
    const struct udp_port *u = p;
    return (u >= w->udp && u < w->udp + MAX_LISTENERS) || udp_ring_owns(udp_of(w)->ring, p);
}

/* Socket i's poll, or its multishot recvmsg on the ring path. With no SQE, pending:
 * the socket would never be read again otherwise. */
static void ur_udp_arm(struct worker *w, int i)
{
    struct uring_udp *s = udp_of(w);
    struct io_uring_sqe *sqe = NULL;
    if (s->ring ? udp_ring_arm(w, i) < 0 : !(sqe = ur_sqe(w))) {
        s->pending |= 1u << i;
        return;
    }
    s->pending &= ~(1u << i);
    if (sqe) {
        io_uring_prep_poll_add(sqe, w->udp[i].fd, POLLIN | POLLERR);
        io_uring_sqe_set_data64(sqe, ud(&w->udp[i], TAG_LISTEN_POLL));
    }
    s->armed |= 1u << i;
}

/* The batch buffers are allocated on both paths: the ring path's last reads at the
 * loop's end (ur_udp_stop) and its socket errors use udp_serve. */
int ur_udp_start(struct worker *w)
{
    for (int i = 0; i < w->n_udp; i++)
        if (udp_port_init(&w->udp[i], w->loop.id) < 0)
            return -1;
    if (udp_ring_wanted(w))
        udp_ring_setup(w); /* failed: logged, polls instead */
    for (int i = 0; i < w->n_udp; i++)
        ur_udp_arm(w, i);
    return 0;
}

void ur_udp_on_poll(struct worker *w, void *p, const struct io_uring_cqe *cqe)
{
    struct uring_udp *s = udp_of(w);
    if (udp_ring_owns(s->ring, p)) {
        udp_ring_on_cqe(w, p, cqe);
        return;
    }
    struct udp_port *u = p;
    int i = (int)(u - w->udp);
    s->armed &= ~(1u << i);
    if (s->stopping || cqe->res == -ECANCELED)
        return;
    if (cqe->res < 0) /* the socket is ours and open: not expected; try again */
        log_warn("worker %d: poll on a udp socket: %s", w->loop.id, strerror(-cqe->res));
    else
        udp_serve(&w->loop, u, !!(cqe->res & POLLIN), !!(cqe->res & POLLERR));
    ur_udp_arm(w, i);
}

void ur_udp_arm_pending(struct worker *w)
{
    struct uring_udp *s = udp_of(w);
    for (int i = 0; s->pending && i < w->n_udp; i++)
        if (s->pending & (1u << i))
            ur_udp_arm(w, i);
}

void ur_udp_turn_end(struct worker *w)
{
    udp_ring_flush(w);
}

void ur_udp_stop(struct worker *w)
{
    udp_of(w)->stopping = 1;
    udp_of(w)->pending = 0;
    udp_ring_flush(w); /* the last turn's replies */
    for (int i = 0; i < w->n_udp; i++)
        for (int k = 0; w->udp[i].b && k < UDP_FINAL_CALLS; k++)
            if (udp_serve(&w->loop, &w->udp[i], 1, 1))
                break;
}

void ur_udp_fini(struct worker *w)
{
    udp_of(w)->stopping = 1; /* also after a failed init: the last completions arm nothing */
    for (int i = 0; i < w->n_udp; i++)
        udp_port_fini(&w->udp[i]);
}

void ur_udp_unregister(struct worker *w)
{
    udp_ring_unregister(w);
}

void ur_udp_free(struct worker *w)
{
    udp_ring_free(w);
}
