/* uring_pool: a worker's receive buffers, provided to its ring as one buffer group.
 *
 * With incremental consumption (Linux 6.12) a receive takes only the bytes it got from
 * the current buffer, so a thousand 64-byte requests share two buffers and the pages
 * the pool touches follow the bytes received, not the connections. Without it every
 * receive takes a whole buffer. The pool doubles on ENOBUFS up to its maximum, but
 * only when many connections received in that turn: one bulk sender can empty any
 * pool (it then waits for the next turn, the flow control it needs), and growing for
 * it would only let it read further ahead of --max-output. Pages are touched once
 * used. A buffer goes back to the ring as soon as the codec has consumed it. */
#ifndef WHARF_URING_POOL_H
#define WHARF_URING_POOL_H

#include <liburing.h>
#include <stdint.h>

#include "uring_ring.h"

#define POOL_BGID 0 /* the worker's one buffer group */

struct pool_shape {
    unsigned size, first, max;
};

struct uring_pool {
    struct io_uring_buf_ring *br; /* br_entries (>= shape.max) entries */
    unsigned br_entries;
    int br_helper;                /* how uring_bufring_setup made it */
    int incremental;              /* IOU_PBUF_RING_INC */
    struct pool_shape shape;
    char *bufs;                   /* shape.max * shape.size reserved; pages appear as used */
    uint32_t *used;               /* incremental: bytes of each buffer consumed so far */
    unsigned nbufs;               /* buffers provided so far */
    unsigned turn_receivers;      /* connections that received data in this turn */
    const void *last_receiver;
};

/* Register the pool on ring: incremental where the kernel takes it, else whole
 * buffers (test hooks: no_incremental, bufs). 0, or -1 with a message logged (worker
 * id); pool_unregister (while the ring is up) and pool_free (once it is closed: the
 * kernel may write into the buffers until then) undo it either way. */
int pool_setup(struct uring_pool *p, struct io_uring *ring, const struct uring_test_hooks *h,
               int id);
void pool_unregister(struct uring_pool *p, struct io_uring *ring);
void pool_free(struct uring_pool *p);
/* ENOBUFS: more data arrived between two turns than the pool had room for. */
void pool_grow(struct uring_pool *p, int id);

static inline void pool_turn_start(struct uring_pool *p)
{
    p->turn_receivers = 0;
    p->last_receiver = NULL;
}

/* A connection received bytes in this turn (counted once per run of receives). */
static inline void pool_note_receiver(struct uring_pool *p, const void *conn)
{
    if (conn != p->last_receiver) {
        p->turn_receivers++;
        p->last_receiver = conn;
    }
}

static inline char *pool_addr(const struct uring_pool *p, unsigned bid)
{
    return p->bufs + (size_t)bid * p->shape.size;
}

/* Where a receive's bytes are: from the buffer's start, or (incremental) where the
 * previous receive into the same buffer ended. */
static inline char *pool_data(const struct uring_pool *p, unsigned bid)
{
    return pool_addr(p, bid) + (p->incremental ? p->used[bid] : 0);
}

/* The kernel is done with bid and so is the codec: straight back to the ring. */
static inline void pool_give_back(struct uring_pool *p, unsigned bid)
{
    io_uring_buf_ring_add(p->br, pool_addr(p, bid), p->shape.size, (unsigned short)bid,
                          io_uring_buf_ring_mask(p->br_entries), 0);
    io_uring_buf_ring_advance(p->br, 1);
}

/* After a receive's bytes are handled: account for them, and give the buffer back once
 * the kernel has moved past it. */
static inline void pool_consumed(struct uring_pool *p, unsigned bid, int res, unsigned cqe_flags)
{
    if (!p->incremental) {
        pool_give_back(p, bid);
        return;
    }
    if (res <= 0)
        return; /* nothing was taken from it */
    p->used[bid] += (uint32_t)res;
    if (!(cqe_flags & IORING_CQE_F_BUF_MORE)) {
        p->used[bid] = 0;
        pool_give_back(p, bid);
    }
}

#endif
