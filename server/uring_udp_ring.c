#include "uring_udp_ring.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "../common/log.h"
#include "../common/mode.h"
#include "handler.h"
#include "udp.h"
#include "uring_int.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#define UDP_BGID 1                 /* the connections' pool is group 0 (POOL_BGID) */
#define RING_BYTES (16u << 20)     /* the buffers' address space per worker, at most */
#define RING_BUFS_MIN 16
#define RING_BUFS_MAX 1024         /* a power of two, and buffer ids fit 16 bits */
/* The sender's address: a sockaddr_in6 (28 bytes), rounded up so that the control
 * messages the kernel writes after it are aligned for struct cmsghdr. */
#define NAME_ROOM 32
#define HDR_ROOM (sizeof(struct io_uring_recvmsg_out) + NAME_ROOM + UDP_CMSG_ROOM)
/* A UDP_SEGMENT send: the kernel's limit on segments, and the IP packet's on bytes. */
#define GSO_SEGS_MAX 64
#define GSO_BYTES_MAX 65000

/* A buffer's reply while a SENDMSG SQE holds it (hook UDP_SENDMSG). */
struct ring_slot {
    struct msghdr mh;
    struct iovec iov;
};

struct udp_ring {
    struct io_uring_buf_ring *br;
    int br_helper;                 /* how uring_bufring_setup made it */
    unsigned nbufs, entries;       /* buffers; ring entries (a power of two >= nbufs) */
    unsigned bufsize, room;        /* bytes between buffers; payload bytes one holds */
    char *bufs;
    struct msghdr tmpl;            /* what the kernel writes before a payload */
    uint64_t rx[MAX_LISTENERS];    /* socket i's receive is tagged &rx[i] */
    struct ring_slot *slot;        /* nbufs; a SENDMSG is tagged &slot[bid] */
    int sendmsg_sqes, gso;         /* test hook UDP_SENDMSG; UDP_SEGMENT runs (hook UDP_NO_GSO) */
    /* This turn's replies (one socket's), sent by udp_ring_flush. */
    struct udp_port *out_port;
    unsigned nout;
    struct mmsghdr out[UDP_BATCH_MAX];
    struct iovec iov[UDP_BATCH_MAX];
    uint16_t out_bid[UDP_BATCH_MAX];
    char gso_cmsg[UDP_BATCH_MAX][CMSG_SPACE(sizeof(uint16_t))] __attribute__((aligned(8)));
};

static inline struct udp_ring *ring_of(const struct worker *w) { return ur_of(w)->udp.ring; }

static inline char *buf_of(const struct udp_ring *r, unsigned bid)
{
    return r->bufs + (size_t)bid * r->bufsize;
}

/* Hand buffer bid back to the kernel (its header's room and r->room: a longer datagram
 * is cut there, MSG_TRUNC); publish: advance by the buffers added. */
static inline void give_back(struct udp_ring *r, unsigned bid, int offset)
{
    io_uring_buf_ring_add(r->br, buf_of(r, bid), (unsigned)HDR_ROOM + r->room, (unsigned short)bid,
                          io_uring_buf_ring_mask(r->entries), offset);
}

int udp_ring_wanted(const struct worker *w)
{
    const struct uring_loop *u = ur_of(w);
    return w->n_udp > 0 && u->caps.recvmsg_multishot && !u->hooks.udp_poll &&
           w->cfg->udp_batch > 1;
}

/* Room for a datagram up to --max-message (64 KiB at most: a larger one is cut, and
 * MSG_TRUNC says so); as many buffers as RING_BYTES holds, a power of two. */
static void ring_shape(struct udp_ring *r, size_t max_message, const struct uring_test_hooks *h)
{
    r->room = max_message < UDP_DGRAM_ROOM ? (unsigned)max_message : UDP_DGRAM_ROOM;
    if (h->udp_room >= 1 && h->udp_room < r->room)
        r->room = h->udp_room;
    r->bufsize = (unsigned)((HDR_ROOM + r->room + 63) & ~(size_t)63);
    unsigned n = RING_BUFS_MAX;
    while (n > RING_BUFS_MIN && (size_t)n * r->bufsize > RING_BYTES)
        n /= 2;
    r->nbufs = r->entries = n;
    if (h->udp_bufs >= 1 && h->udp_bufs <= RING_BUFS_MAX) {
        r->nbufs = h->udp_bufs;
        for (r->entries = 1; r->entries < r->nbufs; r->entries *= 2)
            ;
    }
}

static void ring_release(struct udp_ring *r)
{
    if (r->bufs)
        munmap(r->bufs, (size_t)r->nbufs * r->bufsize);
    free(r->slot);
    free(r);
}

int udp_ring_setup(struct worker *w)
{
    struct uring_loop *u = ur_of(w);
    struct udp_ring *r = calloc(1, sizeof *r);
    if (!r) {
        log_warn("worker %d: udp buffer ring: out of memory", w->loop.id);
        return -1;
    }
    ring_shape(r, w->loop.env->max_message, &u->hooks);
    r->bufs = mmap(NULL, (size_t)r->nbufs * r->bufsize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    r->bufs = r->bufs == MAP_FAILED ? NULL : r->bufs;
    r->slot = calloc(r->nbufs, sizeof *r->slot);
    int err = -ENOMEM;
    if (r->bufs && r->slot)
        r->br = uring_bufring_setup(&u->ring, r->entries, UDP_BGID, 0, &r->br_helper, &err);
    if (!r->br) {
        log_warn("worker %d: udp buffer ring: %s; udp sockets are polled instead", w->loop.id,
                 strerror(-err));
        ring_release(r);
        return -1;
    }
    for (unsigned bid = 0; bid < r->nbufs; bid++)
        give_back(r, bid, (int)bid);
    io_uring_buf_ring_advance(r->br, (int)r->nbufs);
    r->tmpl = (struct msghdr){.msg_namelen = NAME_ROOM, .msg_controllen = UDP_CMSG_ROOM};
    r->sendmsg_sqes = u->hooks.udp_sendmsg;
    r->gso = !u->hooks.udp_no_gso;
    u->udp.ring = r;
    log_debug("worker %d: udp:// on a multishot recvmsg, %u buffers of %u bytes, replies %s%s",
              w->loop.id, r->nbufs, r->bufsize, r->sendmsg_sqes ? "by SENDMSG SQEs" : "by sendmmsg",
              r->gso ? " (UDP_SEGMENT)" : "");
    return 0;
}

int udp_ring_arm(struct worker *w, int i)
{
    struct udp_ring *r = ring_of(w);
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe)
        return -1;
    io_uring_prep_recvmsg_multishot(sqe, w->udp[i].fd, &r->tmpl, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = UDP_BGID;
    io_uring_sqe_set_data64(sqe, ud(&r->rx[i], TAG_LISTEN_POLL));
    counter_add(&w->stats.udp_ring_arms, 1);
    return 0;
}

static int in_range(const void *p, const void *base, size_t bytes)
{
    return (uintptr_t)p >= (uintptr_t)base && (uintptr_t)p < (uintptr_t)base + bytes;
}

int udp_ring_owns(const struct udp_ring *r, const void *p)
{
    return r && (in_range(p, r->rx, sizeof r->rx) ||
                 in_range(p, r->slot, (size_t)r->nbufs * sizeof *r->slot));
}

/* ---- replies ---- */

/* How many replies from `from` on go to one peer with one length (> 0): one
 * UDP_SEGMENT send (the iovecs are consecutive, the segments the kernel cuts are the
 * replies). */
static unsigned gso_run(const struct udp_ring *r, unsigned from)
{
    const struct msghdr *a = &r->out[from].msg_hdr;
    size_t len = r->iov[from].iov_len;
    unsigned n = 1;
    while (len && from + n < r->nout && n < GSO_SEGS_MAX && (n + 1) * len <= GSO_BYTES_MAX) {
        const struct msghdr *b = &r->out[from + n].msg_hdr;
        if (r->iov[from + n].iov_len != len || b->msg_namelen != a->msg_namelen ||
            memcmp(b->msg_name, a->msg_name, a->msg_namelen) != 0)
            break;
        n++;
    }
    return n;
}

/* Send msgs[0..m), msgs[j] carrying the segs[j] replies from r->out[first[j]] on:
 * counted like udp_send_replies (a full send buffer drops the rest). A message the
 * kernel refuses (a segment over the path's MTU: EINVAL; a device that cannot
 * segment; an error naming the peer) has its replies sent one by one instead. */
static void send_segments(struct worker *w, struct udp_ring *r, struct mmsghdr *msgs,
                          const unsigned *segs, const unsigned *first, unsigned m)
{
    struct worker_stats *st = &w->stats;
    unsigned i = 0;
    while (i < m) {
        int k = sendmmsg(r->out_port->fd, msgs + i, m - i, MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
            for (; i < m; i++)
                counter_add(&st->udp_drop_sndbuf, segs[i]);
            return;
        }
        if (k < 0) {
            udp_send_replies(&w->loop, r->out_port, &r->out[first[i]], segs[i]);
            i++;
            continue;
        }
        counter_add(&st->udp_send_calls, 1);
        for (unsigned j = i; j < i + (unsigned)k; j++) {
            counter_add(&st->udp_datagrams_out, segs[j]);
            counter_add(&st->udp_bytes_out, msgs[j].msg_len);
        }
        i += (unsigned)k;
    }
}

/* The turn's replies with runs to one peer folded into UDP_SEGMENT sends. */
static void send_gso(struct worker *w, struct udp_ring *r)
{
    struct mmsghdr msgs[UDP_BATCH_MAX];
    unsigned segs[UDP_BATCH_MAX], first[UDP_BATCH_MAX], m = 0;
    for (unsigned i = 0; i < r->nout; m++) {
        unsigned n = gso_run(r, i);
        msgs[m] = r->out[i];
        msgs[m].msg_hdr.msg_iovlen = n; /* msg_iov is &r->iov[i]: the run's iovecs follow */
        if (n > 1) {
            struct cmsghdr *c = (struct cmsghdr *)(void *)r->gso_cmsg[m];
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t size = (uint16_t)r->iov[i].iov_len;
            memcpy(CMSG_DATA(c), &size, sizeof size);
            msgs[m].msg_hdr.msg_control = c;
            msgs[m].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
        }
        segs[m] = n;
        first[m] = i;
        i += n;
    }
    send_segments(w, r, msgs, segs, first, m);
}

void udp_ring_flush(struct worker *w)
{
    struct udp_ring *r = ring_of(w);
    if (!r || !r->nout)
        return;
    if (r->gso)
        send_gso(w, r);
    else
        udp_send_replies(&w->loop, r->out_port, r->out, r->nout);
    for (unsigned k = 0; k < r->nout; k++)
        give_back(r, r->out_bid[k], (int)k);
    io_uring_buf_ring_advance(r->br, (int)r->nout);
    r->nout = 0;
}

/* Queue the reply in buffer bid for this turn's sendmmsg. */
static void queue_reply(struct worker *w, struct udp_port *u, unsigned bid, const struct msghdr *m)
{
    struct udp_ring *r = ring_of(w);
    if (r->nout && (r->out_port != u || r->nout >= u->batch))
        udp_ring_flush(w);
    unsigned k = r->nout++;
    r->out_port = u;
    r->iov[k] = m->msg_iov[0];
    r->out[k].msg_hdr = *m;
    r->out[k].msg_hdr.msg_iov = &r->iov[k];
    r->out_bid[k] = (uint16_t)bid;
    if (ur_of(w)->udp.stopping) /* no turn end is coming */
        udp_ring_flush(w);
}

/* Send the reply in buffer bid as a SENDMSG SQE (hook UDP_SENDMSG); with no SQE (or
 * stopping), at once by a system call. */
static void send_sqe(struct worker *w, struct udp_port *u, unsigned bid, const struct msghdr *m)
{
    struct udp_ring *r = ring_of(w);
    struct ring_slot *sl = &r->slot[bid];
    sl->iov = m->msg_iov[0];
    sl->mh = *m;
    sl->mh.msg_iov = &sl->iov;
    struct io_uring_sqe *sqe = ur_of(w)->udp.stopping ? NULL : ur_sqe(w);
    if (!sqe) {
        struct mmsghdr one = {.msg_hdr = sl->mh};
        udp_send_replies(&w->loop, u, &one, 1);
        give_back(r, bid, 0);
        io_uring_buf_ring_advance(r->br, 1);
        return;
    }
    io_uring_prep_sendmsg(sqe, u->fd, &sl->mh, MSG_DONTWAIT);
    io_uring_sqe_set_data64(sqe, ud(sl, TAG_LISTEN_POLL));
    ur_of(w)->udp.sends++;
    counter_add(&w->stats.udp_send_calls, 1);
}

static void on_sent(struct worker *w, unsigned bid, int res)
{
    struct udp_ring *r = ring_of(w);
    struct worker_stats *st = &w->stats;
    ur_of(w)->udp.sends--;
    if (res >= 0) {
        counter_add(&st->udp_datagrams_out, 1);
        counter_add(&st->udp_bytes_out, (uint64_t)res);
    } else {
        counter_add(res == -EAGAIN || res == -ENOBUFS ? &st->udp_drop_sndbuf : &st->udp_send_errors,
                    1);
    }
    give_back(r, bid, 0);
    io_uring_buf_ring_advance(r->br, 1);
}

/* ---- receiving ---- */

/* The SO_RXQ_OVFL count the datagram carries. */
static void note_rxq(struct worker *w, struct udp_port *u, struct udp_ring *r,
                     struct io_uring_recvmsg_out *o)
{
    for (struct cmsghdr *c = io_uring_recvmsg_cmsg_firsthdr(o, &r->tmpl); c;
         c = io_uring_recvmsg_cmsg_nexthdr(o, &r->tmpl, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL)
            continue;
        uint32_t total;
        memcpy(&total, CMSG_DATA(c), sizeof total);
        udp_note_rxq_total(&w->loop, u, total);
    }
}

/* One datagram in buffer bid (res: the bytes the kernel wrote there): answered, or
 * dropped and counted and the buffer given back at once. */
static void on_datagram(struct worker *w, struct udp_port *u, unsigned bid, int res)
{
    struct udp_ring *r = ring_of(w);
    struct worker_stats *st = &w->stats;
    struct io_uring_recvmsg_out *o =
        res > 0 ? io_uring_recvmsg_validate(buf_of(r, bid), res, &r->tmpl) : NULL;
    if (!o) { /* shorter than the layout it must have: nothing to answer */
        give_back(r, bid, 0);
        io_uring_buf_ring_advance(r->br, 1);
        return;
    }
    note_rxq(w, u, r, o);
    /* The bytes read (cut at the room: the kernel reads without MSG_TRUNC), as
     * recvmmsg's msg_len on the poll path. */
    size_t len = o->payloadlen, max = w->loop.env->max_message;
    counter_add(&st->udp_datagrams_in, 1);
    counter_add(&st->udp_bytes_in, len);
    /* A cut datagram is over --max-message when the room is --max-message's. */
    int oversize = len > max || ((o->flags & MSG_TRUNC) && r->room >= max);
    if (oversize || (o->flags & MSG_TRUNC)) {
        counter_add(oversize ? &st->udp_drop_oversize : &st->udp_drop_truncated, 1);
        give_back(r, bid, 0);
        io_uring_buf_ring_advance(r->br, 1);
        return;
    }
    char *p = io_uring_recvmsg_payload(o, &r->tmpl);
    mode_apply(w->loop.env->mode, p, len, p);
    struct iovec iov = {p, len};
    struct msghdr m = {.msg_name = io_uring_recvmsg_name(o),
                       .msg_namelen = o->namelen < NAME_ROOM ? o->namelen : NAME_ROOM,
                       .msg_iov = &iov, .msg_iovlen = 1};
    if (r->sendmsg_sqes)
        send_sqe(w, u, bid, &m);
    else
        queue_reply(w, u, bid, &m);
}

/* Socket i's receive completed: a datagram, or its end (no F_MORE): ENOBUFS, the
 * socket's error (an ICMP report: the error queue is read), a cancel. An end is armed
 * again at the next turn's start (pending), after this turn's replies gave buffers back. */
static void on_recv(struct worker *w, int i, const struct io_uring_cqe *cqe)
{
    struct uring_udp *s = &ur_of(w)->udp;
    struct udp_port *u = &w->udp[i];
    if (cqe->flags & IORING_CQE_F_BUFFER)
        on_datagram(w, u, cqe->flags >> IORING_CQE_BUFFER_SHIFT, cqe->res);
    else if (cqe->res == -ENOBUFS)
        counter_add(&w->stats.udp_ring_nobufs, 1);
    else if (cqe->res < 0 && cqe->res != -ECANCELED && u->b)
        udp_serve(&w->loop, u, 1, 1); /* reads the error queue, and what waits */
    if (cqe->flags & IORING_CQE_F_MORE)
        return;
    log_debug("worker %d: udp receive ended (%s), armed again", w->loop.id,
              cqe->res < 0 ? strerror(-cqe->res) : "a datagram");
    s->armed &= ~(1u << i);
    if (!s->stopping)
        s->pending |= 1u << i;
}

void udp_ring_on_cqe(struct worker *w, void *p, const struct io_uring_cqe *cqe)
{
    struct udp_ring *r = ring_of(w);
    if (in_range(p, r->rx, sizeof r->rx))
        on_recv(w, (int)((uint64_t *)p - r->rx), cqe);
    else
        on_sent(w, (unsigned)((struct ring_slot *)p - r->slot), cqe->res);
}

void udp_ring_unregister(struct worker *w)
{
    struct udp_ring *r = ring_of(w);
    if (r && r->br)
        uring_bufring_free(&ur_of(w)->ring, r->br, r->entries, UDP_BGID, r->br_helper);
    if (r)
        r->br = NULL;
}

void udp_ring_free(struct worker *w)
{
    struct udp_ring *r = ring_of(w);
    if (r)
        ring_release(r);
    ur_of(w)->udp.ring = NULL;
}
