#include "uring_pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../common/log.h"

static const struct pool_shape POOL_INCREMENTAL = {32 * 1024, 32, 512};
static const struct pool_shape POOL_WHOLE = {16 * 1024, 64, 512}; /* a 4 KiB frame fits */

/* Hand buffers [from, to) to the kernel. */
static void pool_provide(struct uring_pool *p, unsigned from, unsigned to)
{
    int mask = io_uring_buf_ring_mask(p->br_entries);
    for (unsigned bid = from; bid < to; bid++)
        io_uring_buf_ring_add(p->br, pool_addr(p, bid), p->shape.size, (unsigned short)bid, mask,
                              (int)(bid - from));
    io_uring_buf_ring_advance(p->br, (int)(to - from));
    p->nbufs = to;
}

void pool_grow(struct uring_pool *p, int id)
{
    if (p->nbufs >= p->shape.max || p->turn_receivers < p->nbufs / 2)
        return;
    unsigned to = p->nbufs * 2 > p->shape.max ? p->shape.max : p->nbufs * 2;
    pool_provide(p, p->nbufs, to);
    log_debug("worker %d: io_uring receive pool: %u buffers of %u KiB", id, to,
              p->shape.size / 1024);
}

/* The buffer ring: incremental where the kernel takes it (EINVAL: older than 6.12). */
static int pool_ring(struct uring_pool *p, struct io_uring *ring, int want_inc, int id)
{
    int err = 0;
    p->br = NULL;
    if (want_inc) {
        p->shape = POOL_INCREMENTAL;
        p->br_entries = p->shape.max;
        p->br = uring_bufring_setup(ring, p->br_entries, POOL_BGID, 1, &p->br_helper, &err);
        p->incremental = p->br != NULL;
    }
    if (!p->br) {
        p->shape = POOL_WHOLE;
        p->br_entries = p->shape.max;
        p->br = uring_bufring_setup(ring, p->br_entries, POOL_BGID, 0, &p->br_helper, &err);
    }
    if (!p->br) {
        log_error("worker %d: cannot register an io_uring buffer ring: %s", id, strerror(-err));
        return -1;
    }
    return 0;
}

int pool_setup(struct uring_pool *p, struct io_uring *ring, const struct uring_test_hooks *h,
               int id)
{
    if (pool_ring(p, ring, !h->no_incremental, id) < 0)
        return -1;
    unsigned n = h->bufs; /* a tiny pool: ENOBUFS */
    if (n >= 1 && n <= p->shape.max)
        p->shape.first = p->shape.max = n;
    p->bufs = mmap(NULL, (size_t)p->shape.max * p->shape.size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    p->used = calloc(p->shape.max, sizeof *p->used);
    if (p->bufs == MAP_FAILED || !p->used) {
        p->bufs = p->bufs == MAP_FAILED ? NULL : p->bufs;
        log_error("worker %d: cannot map io_uring receive buffers: %s", id, strerror(errno));
        return -1;
    }
    pool_provide(p, 0, p->shape.first);
    return 0;
}

void pool_unregister(struct uring_pool *p, struct io_uring *ring)
{
    if (p->br)
        uring_bufring_free(ring, p->br, p->br_entries, POOL_BGID, p->br_helper);
    p->br = NULL;
}

void pool_free(struct uring_pool *p)
{
    if (p->bufs)
        munmap(p->bufs, (size_t)p->shape.max * p->shape.size);
    p->bufs = NULL;
    free(p->used);
    p->used = NULL;
}
