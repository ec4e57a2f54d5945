/* uring_int: what the io_uring backend's files share, and nothing outside them sees:
 * the worker's loop state (w->loop.io_state), a connection's state (c->io_flags,
 * c->io_private), how completions are tagged, getting an SQE. */
#ifndef WHARF_URING_INT_H
#define WHARF_URING_INT_H

#include <liburing.h>
#include <stdint.h>

#include "conn.h"
#include "uring_pool.h"
#include "uring_probe.h"
#include "uring_ring.h"
#include "worker.h"

struct udp_ring;

/* Accepting and the handoff (uring_accept.c). */
struct uring_accept {
    int handoff_armed;
    uint32_t accept_armed;        /* bit i: listener i has its multishot accept */
    uint32_t listen_polled;       /* bit i: out of files, listener i waits on a poll */
    /* What found no SQE (the queue stayed full) and is tried again at the start of
     * the next turn: nothing else would ever arm it (ur_arm_pending). */
    int handoff_pending;
    uint32_t accept_pending;      /* bit i: listener i's accept */
    uint32_t poll_pending;        /* bit i: listener i's poll */
    uint32_t cancel_pending;      /* bit i: draining, the cancels of listener i's accept/poll */
};

/* Whether something waits to be armed or cancelled (ur_arm_pending does it). Asked
 * twice every loop turn: inline, not a call into uring_accept.c. */
static inline int ur_accept_pending(const struct uring_accept *u)
{
    return u->handoff_pending || u->accept_pending || u->poll_pending || u->cancel_pending;
}

/* The worker's udp:// sockets on the ring (uring_udp.c). */
struct uring_udp {
    uint32_t armed;    /* bit i: w->udp[i] has its poll (or multishot recvmsg) in flight */
    uint32_t pending;  /* bit i: to arm at the next turn (no SQE; a receive that ended) */
    int stopping;      /* the loop has ended: completions arm nothing again */
    struct udp_ring *ring; /* the multishot recvmsg path (uring_udp_ring.h); NULL: polls */
    unsigned sends;    /* its SENDMSG SQEs in flight (hook UDP_SENDMSG) */
};

struct uring_loop {
    struct io_uring ring;
    int ring_ok;
    unsigned setup_flags;
    struct uring_caps caps;       /* what the start-up probe found */
    struct uring_test_hooks hooks;
    struct uring_pool pool;       /* the receive buffers */
    struct uring_accept acc;      /* the handoff's poll, --dispatch reuseport's accepts */
    struct uring_udp udp;         /* the polls of the worker's udp:// sockets */
    unsigned koverflow;           /* *ring.cq.koverflow when last looked at */
    int cancel_all_due;           /* ur_quiesce's cancel of everything has not completed */
    unsigned sqe_calls;           /* for hooks.sqe_fail_every */
    uint64_t stall_log_ms;        /* when a stalled queue was last logged */
    unsigned flush_every;         /* FLUSH_EVERY (a test hook can change it) */
    unsigned fixed_slots;         /* the file table's size; 0: none registered */
};

static inline struct uring_loop *ur_of(const struct worker *w) { return w->loop.io_state; }

/* A connection's own (backend.h): c->io_flags, and struct ur_conn at c->io_private. */
enum {
    UR_RECV_ARMED = 1u << 0,   /* a multishot receive is armed */
    UR_RECV_CANCEL = 1u << 1,  /* a cancel of that receive is on its way */
    UR_SENDING = 1u << 2,      /* a send of ur_conn(c)->sending is in flight */
    UR_FIXED = 1u << 3,        /* also in the ring's file table, at index fd */
    UR_CANCEL_LATER = 1u << 4, /* a cancel found no SQE; the to-do list sends it */
    UR_SHUT_LINKED = 1u << 5,  /* a shutdown is linked behind the last send (in flight) */
    UR_CLOSE_OWED = 1u << 6,   /* closed while that shutdown was in flight: close after it */
};

struct ur_conn {
    struct buf sending;        /* the send in flight; frozen until it completes */
    uint8_t inflight;          /* operations whose last completion is still due */
};

_Static_assert(sizeof(struct conn) + sizeof(struct ur_conn) <= 136,
               "an io_uring connection grew past the documented 136 bytes");

static inline struct ur_conn *ur_conn(struct conn *c) { return (struct ur_conn *)c->io_private; }
static inline const struct ur_conn *ur_conn_c(const struct conn *c)
{
    return (const struct ur_conn *)c->io_private;
}

/* user_data: a pointer (conn, listener, handoff: 8-byte aligned) | what completed.
 * TAG_SHUTDOWN is 0: its pointer (a connection) is never NULL. */
enum ur_tag { TAG_SHUTDOWN = 0, TAG_RECV, TAG_SEND, TAG_HANDOFF, TAG_ACCEPT, TAG_LISTEN_POLL,
              TAG_IGNORE, TAG_SLOT_CLEAR /* the slot number instead of a pointer */ };
#define TAG_MASK 7u

static inline uint64_t ud(const void *p, unsigned tag) { return (uint64_t)(uintptr_t)p | tag; }
static inline void *ud_ptr(uint64_t v) { return (void *)(uintptr_t)(v & ~(uint64_t)TAG_MASK); }

/* Name c's socket in sqe by its file-table slot where it has one. */
static inline void ur_sqe_file(struct io_uring_sqe *sqe, const struct conn *c)
{
    if (c->io_flags & UR_FIXED)
        sqe->flags |= IOSQE_FIXED_FILE; /* sqe->fd already holds the index: c->fd */
}

/* The ring's file table (uring_files.c): set up at init; a kept-alive connection's
 * socket is added at its second receive and removed before its close. */
void ur_files_setup(struct worker *w);
void ur_files_add(struct worker *w, struct conn *c);
void ur_files_remove(struct worker *w, struct conn *c);

/* A connection's end (uring_close.c). Queue the close of c's socket (with no SQE: close
 * now). The last replies of c (closing when sent) written now, with the FIN right
 * behind: 1 when c is done with, 0 when the rest goes through the ring. A shutdown
 * linked behind that ring send (sqe); its completion, after which a close owed by
 * ur_detach (UR_CLOSE_OWED) is queued. */
void ur_close_fd(struct worker *w, struct conn *c);
int ur_send_last_now(struct worker *w, struct conn *c);
void ur_link_shutdown(struct worker *w, struct conn *c, struct io_uring_sqe *send);
void ur_on_shutdown(struct worker *w, struct conn *c, int res);

/* An SQE; when the submission queue is full, submit what is queued first. NULL when
 * there is still none (uring.c). */
struct io_uring_sqe *ur_sqe(struct worker *w);
/* Handle one completion, by its tag (uring.c). */
void ur_complete(struct worker *w, const struct io_uring_cqe *cqe);
/* After the loop: cancel everything in flight and reap until the ring holds no file
 * (uring_stop.c). 0, or -1 when something was still in flight when it gave up (logged). */
int ur_quiesce(struct worker *w);
/* Cancel the operation tagged tag of p. 0, or -1 when no SQE was to be had. */
int ur_cancel(struct worker *w, const void *p, unsigned tag);

#endif
