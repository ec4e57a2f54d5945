/* uring_files: the ring's file table (declared in uring_int.h). */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "../common/log.h"
#include "uring_int.h"

/* Registered files: a kept-alive connection's socket also sits in the ring's file
 * table, at the index of its descriptor, so sends and receives name it without a file
 * lookup and reference per operation (fget/fput: 2% of the core at 1,000 connections).
 * Registering and unregistering cost about 1 µs per connection (5% of a connection
 * that carries one request), so it happens at a connection's second receive, not at
 * accept. The table is sized by RLIMIT_NOFILE up to this many slots (8 bytes of
 * kernel memory each); descriptors past it take the plain path. */
#define FIXED_SLOTS_MAX 65536

void ur_files_setup(struct worker *w)
{
    struct uring_loop *u = ur_of(w);
    struct rlimit rl;
    if (u->hooks.no_fixed || getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    /* A tiny table (test hook) exercises both paths at once. */
    unsigned cap = u->hooks.fixed_slots ? u->hooks.fixed_slots : FIXED_SLOTS_MAX;
    unsigned n = rl.rlim_cur < cap ? (unsigned)rl.rlim_cur : cap;
    int rc = io_uring_register_files_sparse(&u->ring, n);
    if (rc < 0) {
        log_debug("worker %d: no registered files (%s): sockets are looked up per operation",
                  w->loop.id, strerror(-rc));
        return;
    }
    u->fixed_slots = n;
}

/* Put c's socket in the file table (one syscall; the operations already in flight
 * keep the plain descriptor's reference). A failure turns the table off for this
 * worker: everything goes on on plain descriptors. */
void ur_files_add(struct worker *w, struct conn *c)
{
    struct uring_loop *u = ur_of(w);
    if (c->fd < 0 || (unsigned)c->fd >= u->fixed_slots)
        return;
    int rc = io_uring_register_files_update(&u->ring, (unsigned)c->fd, &c->fd, 1);
    if (rc == 1) {
        c->io_flags |= UR_FIXED;
        return;
    }
    log_warn("worker %d: io_uring file table update: %s; going on without it", w->loop.id,
             strerror(rc < 0 ? -rc : EIO));
    u->fixed_slots = 0;
}

/* Take c's socket out of the table: queued behind what is queued for it (the slot
 * must name it until those are submitted), or now when the queue has no room left. */
void ur_files_remove(struct worker *w, struct conn *c)
{
    if (!(c->io_flags & UR_FIXED))
        return;
    c->io_flags &= (uint8_t)~UR_FIXED;
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (sqe) {
        io_uring_prep_close_direct(sqe, (unsigned)c->fd);
        io_uring_sqe_set_data64(sqe, (uint64_t)c->fd << 3 | TAG_SLOT_CLEAR);
        return;
    }
    int none = -1;
    int rc = io_uring_register_files_update(&ur_of(w)->ring, (unsigned)c->fd, &none, 1);
    if (rc != 1) /* the slot keeps the socket open until the worker stops */
        log_warn("worker %d: io_uring file table, clearing slot %d: %s", w->loop.id, c->fd,
                 strerror(rc < 0 ? -rc : EIO));
}
