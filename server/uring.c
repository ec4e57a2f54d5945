#include "uring.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "conn.h"
#include "worker.h"

#define SQ_ENTRIES 4096
#define CQ_ENTRIES 32768        /* receives and sends of thousands of connections per turn */
#define CQE_BATCH 256           /* completions copied out of the ring at a time, at most */
/* In a big turn, send what the first completions produced after this many, instead of
 * at the end of the turn: the peers get their replies (and go on) while the rest of the
 * turn is served, at the cost of one more io_uring_enter per this many requests. */
#define FLUSH_EVERY 32
#define BGID 0                  /* the worker's one buffer group */
/* Registered files: a kept-alive connection's socket also sits in the ring's file
 * table, at the index of its descriptor, so sends and receives name it without a file
 * lookup and reference per operation (fget/fput: 2% of the core at 1,000 connections).
 * Registering and unregistering cost about 1 µs per connection (5% of a connection
 * that carries one request), so it happens at a connection's second receive, not at
 * accept. The table is sized by RLIMIT_NOFILE up to this many slots (8 bytes of
 * kernel memory each); descriptors past it take the plain path. */
#define FIXED_SLOTS_MAX 65536
#define QUIESCE_MS 2000         /* ur_fini's wait for the ring to let go of every file */

/* Linux 6.12's incremental consumption, which liburing 2.3's headers predate. */
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

/* The receive buffer pool. With incremental consumption a receive takes only the bytes
 * it got from the current buffer, so a thousand 64-byte requests share two buffers and
 * the pages the pool touches follow the bytes received, not the connections. Without
 * it every receive takes a whole buffer. The pool doubles on ENOBUFS up to max, but
 * only when many connections received in that turn: one bulk sender can empty any pool
 * (it then waits for the next turn, the flow control it needs), and growing for it
 * would only let it read further ahead of --max-output. Pages are touched once used. */
struct pool_shape {
    unsigned size, first, max;
};
static const struct pool_shape POOL_INCREMENTAL = {32 * 1024, 32, 512};
static const struct pool_shape POOL_WHOLE = {16 * 1024, 64, 512}; /* a 4 KiB frame fits */

/* Multishot receives with a byte limit per arm (IORING_RECV_MSHOT_LIM in recent kernels,
 * set in the SQE's optlen, which liburing 2.3 calls file_index; older ones refuse it).
 * Found by uring_probe before any worker starts; 0 when the kernel has no such limit. */
static int recv_limit_ok;
#define RECV_LIMIT_MIN (16 * 1024)
#define RECV_LIMIT_MAX (256 * 1024)

/* user_data: a pointer (conn, listener, handoff: 8-byte aligned) | what completed. */
enum ur_tag { TAG_RECV = 1, TAG_SEND, TAG_HANDOFF, TAG_ACCEPT, TAG_LISTEN_POLL, TAG_IGNORE,
              TAG_SLOT_CLEAR /* the slot number instead of a pointer */ };
#define TAG_MASK 7u

struct uring_loop {
    struct io_uring ring;
    int ring_ok;
    unsigned setup_flags;
    struct io_uring_buf_ring *br; /* br_entries (>= pool.max) entries */
    unsigned br_entries;
    int br_helper;                /* set up by io_uring_setup_buf_ring (liburing >= 2.4) */
    int incremental;              /* IOU_PBUF_RING_INC */
    struct pool_shape pool;
    char *bufs;                   /* pool.max * pool.size reserved; pages appear as used */
    uint32_t *used;               /* incremental: bytes of each buffer consumed so far */
    unsigned nbufs;               /* buffers provided so far */
    unsigned turn_receivers;      /* connections that received data in this turn */
    const struct conn *last_receiver;
    unsigned koverflow;           /* *ring.cq.koverflow when last looked at */
    int handoff_armed;
    uint32_t accept_armed;        /* bit i: listener i has its multishot accept */
    uint32_t listen_polled;       /* bit i: out of files, listener i waits on a poll */
    /* What found no SQE (the queue stayed full) and is tried again at the start of
     * the next turn: nothing else would ever arm it (ur_arm_pending). */
    int handoff_pending;
    uint32_t accept_pending;      /* bit i: listener i's accept */
    uint32_t poll_pending;        /* bit i: listener i's poll */
    uint32_t cancel_pending;      /* bit i: draining, the cancels of listener i's accept/poll */
    int cancel_all_due;           /* ur_quiesce's cancel of everything has not completed */
    unsigned sqe_fail_every;      /* test hook: see ur_sqe */
    unsigned sqe_calls;
    uint64_t stall_log_ms;        /* when a stalled queue was last logged */
    int accept_oneshot;           /* test hook: see ur_arm_accept */
    unsigned flush_every;         /* FLUSH_EVERY (a test hook can change it) */
    unsigned fixed_slots;         /* the file table's size; 0: none registered */
};

static inline uint64_t ud(const void *p, unsigned tag) { return (uint64_t)(uintptr_t)p | tag; }
static inline void *ud_ptr(uint64_t v) { return (void *)(uintptr_t)(v & ~(uint64_t)TAG_MASK); }

/* ---- ring setup (shared by the probe and the workers) ---- */

/* $WHARFD_TEST_<name>, read only with $WHARFD_TEST_HOOKS=1 (tests force the paths a
 * busy or old kernel would take). */
static const char *test_knob(const char *name)
{
    const char *hooks = getenv("WHARFD_TEST_HOOKS");
    const char *v = hooks && strcmp(hooks, "1") == 0 ? getenv(name) : NULL;
    return v && *v ? v : NULL;
}

static unsigned test_knob_uint(const char *name, unsigned dflt)
{
    const char *v = test_knob(name);
    return v ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

/* $WHARFD_TEST_URING_SETUP: the errno a test wants every ring setup to fail with. */
static int test_setup_errno(void)
{
    const char *e = test_knob("WHARFD_TEST_URING_SETUP");
    if (!e)
        return 0;
    static const struct { const char *name; int err; } names[] = {
        {"EPERM", EPERM}, {"ENOSYS", ENOSYS}, {"EINVAL", EINVAL}, {"ENOMEM", ENOMEM},
        {"EACCES", EACCES},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(e, names[i].name) == 0)
            return names[i].err;
    return EPERM;
}

/* Set up a ring with the best task-running mode the kernel takes: DEFER_TASKRUN (the
 * kernel's side of completions runs in our io_uring_enter, nothing interrupts the
 * loop), else COOP_TASKRUN, else none; EINVAL means "not this flag here". 0 or -errno. */
static int ring_setup(struct io_uring *ring, unsigned sq, unsigned cq, unsigned *flags_used)
{
    static const unsigned modes[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int err = test_setup_errno();
    if (err)
        return -err;
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0] && rc == -EINVAL; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = modes[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
        p.cq_entries = cq;
        rc = io_uring_queue_init_params(sq, ring, &p);
        if (rc == -EINVAL) { /* maybe SUBMIT_ALL (5.18) is what this kernel lacks */
            p = (struct io_uring_params){.flags = modes[i] | IORING_SETUP_CQSIZE |
                                                  IORING_SETUP_CLAMP,
                                         .cq_entries = cq};
            rc = io_uring_queue_init_params(sq, ring, &p);
        }
        if (rc == 0)
            *flags_used = modes[i];
    }
    return rc;
}

static const char *setup_mode_name(unsigned flags)
{
    if (flags & IORING_SETUP_DEFER_TASKRUN)
        return "SINGLE_ISSUER|DEFER_TASKRUN";
    return flags & IORING_SETUP_COOP_TASKRUN ? "COOP_TASKRUN" : "no task-run flags";
}

/* Map a buffer ring (page aligned) and register it as group BGID with reg_flags. */
static struct io_uring_buf_ring *buf_ring_register(struct io_uring *ring, unsigned n,
                                                   unsigned reg_flags, int *err)
{
    size_t bytes = n * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        *err = -errno;
        return NULL;
    }
    /* The kernel's layout of struct io_uring_buf_reg, whose flags liburing 2.3 calls pad. */
    struct {
        uint64_t ring_addr;
        uint32_t ring_entries;
        uint16_t bgid, flags;
        uint64_t resv[3];
    } abi = {.ring_addr = (uintptr_t)mem, .ring_entries = n, .bgid = BGID,
             .flags = (uint16_t)reg_flags};
    _Static_assert(sizeof abi == sizeof(struct io_uring_buf_reg), "io_uring_buf_reg layout");
    struct io_uring_buf_reg reg;
    memcpy(&reg, &abi, sizeof reg);
    int rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc < 0) {
        munmap(mem, bytes);
        *err = rc;
        return NULL;
    }
    struct io_uring_buf_ring *br = mem;
    io_uring_buf_ring_init(br);
    return br;
}

/* A buffer ring of n entries as group BGID: incremental when asked (always registered
 * here: the liburing helper's flags are not the registration's before 2.6), else with
 * io_uring_setup_buf_ring where liburing has it (2.4), else registered here. NULL with
 * *err set (-errno); *helper says which way it went, for buf_ring_free. */
static struct io_uring_buf_ring *buf_ring_setup(struct io_uring *ring, unsigned n, int inc,
                                                int *helper, int *err)
{
    *helper = 0;
    if (inc)
        return buf_ring_register(ring, n, IOU_PBUF_RING_INC, err);
#ifdef HAVE_IO_URING_SETUP_BUF_RING
    *helper = 1;
    return io_uring_setup_buf_ring(ring, n, BGID, 0, err);
#else
    return buf_ring_register(ring, n, 0, err);
#endif
}

static void buf_ring_free(struct io_uring *ring, struct io_uring_buf_ring *br, unsigned n,
                          int helper)
{
#ifdef HAVE_IO_URING_SETUP_BUF_RING
    if (helper) {
        io_uring_free_buf_ring(ring, br, n, BGID);
        return;
    }
#else
    (void)helper;
#endif
    io_uring_unregister_buf_ring(ring, BGID);
    munmap(br, n * sizeof(struct io_uring_buf));
}

/* ---- the probe ---- */

static void explain_setup_error(int err, char *why, size_t whylen)
{
    char extra[160] = "";
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
    int disabled = 0;
    if (f) {
        if (fscanf(f, "%d", &disabled) != 1)
            disabled = 0;
        fclose(f);
    }
    if (disabled)
        snprintf(extra, sizeof extra, " (kernel.io_uring_disabled = %d)", disabled);
    else if (err == EPERM || err == EACCES)
        snprintf(extra, sizeof extra, " (a seccomp filter, such as systemd's SystemCallFilter, "
                                      "or a container's, refuses io_uring)");
    else if (err == ENOSYS)
        snprintf(extra, sizeof extra, " (the kernel has no io_uring)");
    else if (err == EINVAL)
        snprintf(extra, sizeof extra, " (the kernel is too old)");
    snprintf(why, whylen, "io_uring_setup: %s%s", strerror(err), extra);
}

static int probe_ops(struct io_uring *ring, char *why, size_t whylen)
{
    unsigned need = IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_FAST_POLL;
    if ((ring->features & need) != need) {
        snprintf(why, whylen, "the kernel's io_uring lacks NODROP, EXT_ARG or FAST_POLL "
                              "(Linux 5.11 or later needed)");
        return -1;
    }
    struct io_uring_probe *p = io_uring_get_probe_ring(ring);
    if (!p) {
        snprintf(why, whylen, "cannot probe io_uring's opcodes");
        return -1;
    }
    static const struct { int op; const char *name; } ops[] = {
        {IORING_OP_RECV, "RECV"}, {IORING_OP_SEND, "SEND"}, {IORING_OP_ACCEPT, "ACCEPT"},
        {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}, {IORING_OP_POLL_ADD, "POLL_ADD"},
        {IORING_OP_CLOSE, "CLOSE"},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0] && rc == 0; i++)
        if (!io_uring_opcode_supported(p, ops[i].op)) {
            snprintf(why, whylen, "the kernel's io_uring lacks IORING_OP_%s", ops[i].name);
            rc = -1;
        }
    io_uring_free_probe(p);
    return rc;
}

/* Whether a multishot receive stops after the byte limit in optlen: it must end (no
 * F_MORE) having read at most one buffer past the limit; older kernels refuse the field
 * (EINVAL). Uses the probe's buffer ring. */
static int probe_recv_limit(struct io_uring *ring)
{
    int sv[2], ok = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    sqe->file_index = 4; /* optlen */
    io_uring_sqe_set_data64(sqe, 3);
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts = {.tv_sec = 2};
    int ended = 0;
    if (io_uring_submit(ring) == 1 && write(sv[1], "abcdefgh", 8) == 8) {
        while (!ended && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
            int past = 0;
            if (cqe->user_data == 3) {
                ended = !(cqe->flags & IORING_CQE_F_MORE);
                ok = ended && cqe->res > 0;
                past = !ended && cqe->res >= 8; /* read past the limit: none here */
            }
            io_uring_cqe_seen(ring, cqe);
            if (past)
                break;
        }
    }
    if (!ended) {
        sqe = io_uring_get_sqe(ring);
        io_uring_prep_cancel64(sqe, 3, 0);
        io_uring_sqe_set_data64(sqe, 4);
        io_uring_submit(ring);
        for (int k = 0; k < 2 && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0; k++)
            io_uring_cqe_seen(ring, cqe);
    }
    close(sv[0]);
    close(sv[1]);
    return ok;
}

/* One multishot receive into a registered buffer ring, on a socket pair: what the
 * backend does for every connection (Linux 6.0 or later). */
static int probe_recv(struct io_uring *ring, char *why, size_t whylen)
{
    enum { N = 8, SZ = 64 };
    static char mem[N][SZ];
    int err = 0, rc = -1, helper = 0;
    struct io_uring_buf_ring *br = buf_ring_setup(ring, N, 0, &helper, &err);
    if (!br) {
        snprintf(why, whylen, "cannot register a provided-buffer ring (Linux 5.19 or later "
                              "needed): %s", strerror(-err));
        return -1;
    }
    for (int i = 0; i < N; i++)
        io_uring_buf_ring_add(br, mem[i], SZ, (unsigned short)i, io_uring_buf_ring_mask(N), i);
    io_uring_buf_ring_advance(br, N);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(why, whylen, "socketpair: %s", strerror(errno));
        buf_ring_free(ring, br, N, helper);
        return -1;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, 1);
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts = {.tv_sec = 2};
    int n = io_uring_submit(ring);
    if (n == 1 && write(sv[1], "x", 1) == 1 &&
        io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0 && cqe) {
        if (cqe->res == 1 && (cqe->flags & IORING_CQE_F_BUFFER) && (cqe->flags & IORING_CQE_F_MORE))
            rc = 0;
        else if (cqe->res < 0)
            snprintf(why, whylen, "multishot receive with provided buffers failed: %s "
                                  "(Linux 6.0 or later needed)", strerror(-cqe->res));
        else
            snprintf(why, whylen, "multishot receive did not stay armed (Linux 6.0 or later "
                                  "needed)");
        io_uring_cqe_seen(ring, cqe);
    } else {
        snprintf(why, whylen, "a receive on io_uring did not complete (submit: %d)", n);
    }
    /* Cancel and reap (the cancel's completion and the receive's last one), so the
     * buffer ring is idle when it is unregistered. */
    sqe = io_uring_get_sqe(ring);
    io_uring_prep_cancel64(sqe, 1, 0);
    io_uring_sqe_set_data64(sqe, 2);
    io_uring_submit(ring);
    int cancel_done = 0, recv_done = rc < 0 && n != 1;
    while (!(cancel_done && recv_done) && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
        if (cqe->user_data == 2)
            cancel_done = 1;
        else if (!(cqe->flags & IORING_CQE_F_MORE))
            recv_done = 1;
        io_uring_cqe_seen(ring, cqe);
    }
    close(sv[0]);
    close(sv[1]);
    if (rc == 0)
        recv_limit_ok = probe_recv_limit(ring);
    buf_ring_free(ring, br, N, helper);
    return rc;
}

int uring_probe(char *why, size_t whylen)
{
    struct io_uring ring;
    unsigned flags = 0;
    int rc = ring_setup(&ring, 8, 16, &flags);
    if (rc < 0) {
        explain_setup_error(-rc, why, whylen);
        return -1;
    }
    rc = probe_ops(&ring, why, whylen);
    if (rc == 0)
        rc = probe_recv(&ring, why, whylen);
    io_uring_queue_exit(&ring);
    return rc;
}

/* ---- submissions ---- */

/* No SQE even after submitting: counted, logged at most once a second. */
static void ur_sq_stalled(struct worker *w)
{
    struct uring_loop *u = w->uring;
    counter_add(&w->stats.uring_sq_stalls, 1);
    uint64_t now = clock_ms();
    if (now - u->stall_log_ms >= 1000) {
        u->stall_log_ms = now;
        log_warn("worker %d: io_uring submission queue stays full (%llu times so far); "
                 "putting operations off to the next turn", w->id,
                 (unsigned long long)counter_get(&w->stats.uring_sq_stalls));
    }
}

/* An SQE; when the submission queue is full, submit what is queued first. NULL when
 * there is still none (the kernel took nothing: it may refuse while completions wait);
 * everything queued before has then been submitted, and the caller either keeps a
 * pending retry or does the operation another way. The test hook
 * $WHARFD_TEST_URING_SQE_FAIL=N makes the 1st, N+1th, 2N+1th... call take that path. */
static struct io_uring_sqe *ur_sqe(struct worker *w)
{
    struct uring_loop *u = w->uring;
    struct io_uring *ring = &u->ring;
    if (u->sqe_fail_every && u->sqe_calls++ % u->sqe_fail_every == 0) {
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
static int ur_cancel(struct worker *w, const void *p, unsigned tag)
{
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe)
        return -1;
    io_uring_prep_cancel64(sqe, ud(p, tag), 0);
    io_uring_sqe_set_data64(sqe, TAG_IGNORE);
    return 0;
}

/* Name c's socket in sqe by its file-table slot where it has one. */
static inline void ur_sqe_file(struct io_uring_sqe *sqe, const struct conn *c)
{
    if (c->flags & CONN_FIXED)
        sqe->flags |= IOSQE_FIXED_FILE; /* sqe->fd already holds the index: c->fd */
}

/* ---- registered files ---- */

static void ur_files_setup(struct worker *w)
{
    struct uring_loop *u = w->uring;
    struct rlimit rl;
    if (test_knob("WHARFD_TEST_URING_NO_FIXED") || getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    /* A tiny table (test hook) exercises both paths at once. */
    unsigned cap = test_knob_uint("WHARFD_TEST_URING_FIXED_SLOTS", FIXED_SLOTS_MAX);
    unsigned n = rl.rlim_cur < cap ? (unsigned)rl.rlim_cur : cap;
    int rc = io_uring_register_files_sparse(&u->ring, n);
    if (rc < 0) {
        log_debug("worker %d: no registered files (%s): sockets are looked up per operation",
                  w->id, strerror(-rc));
        return;
    }
    u->fixed_slots = n;
}

/* Put c's socket in the file table (one syscall; the operations already in flight
 * keep the plain descriptor's reference). A failure turns the table off for this
 * worker: everything goes on on plain descriptors. */
static void ur_files_add(struct worker *w, struct conn *c)
{
    struct uring_loop *u = w->uring;
    if (c->fd < 0 || (unsigned)c->fd >= u->fixed_slots)
        return;
    int rc = io_uring_register_files_update(&u->ring, (unsigned)c->fd, &c->fd, 1);
    if (rc == 1) {
        c->flags |= CONN_FIXED;
        return;
    }
    log_warn("worker %d: io_uring file table update: %s; going on without it", w->id,
             strerror(rc < 0 ? -rc : EIO));
    u->fixed_slots = 0;
}

/* Take c's socket out of the table: queued behind what is queued for it (the slot
 * must name it until those are submitted), or now when the queue has no room left. */
static void ur_files_remove(struct worker *w, struct conn *c)
{
    if (!(c->flags & CONN_FIXED))
        return;
    c->flags &= (uint16_t)~CONN_FIXED;
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (sqe) {
        io_uring_prep_close_direct(sqe, (unsigned)c->fd);
        io_uring_sqe_set_data64(sqe, (uint64_t)c->fd << 3 | TAG_SLOT_CLEAR);
        return;
    }
    int none = -1;
    int rc = io_uring_register_files_update(&w->uring->ring, (unsigned)c->fd, &none, 1);
    if (rc != 1) /* the slot keeps the socket open until the worker stops */
        log_warn("worker %d: io_uring file table, clearing slot %d: %s", w->id, c->fd,
                 strerror(rc < 0 ? -rc : EIO));
}

/* ---- provided buffers ---- */

static inline char *buf_addr(const struct uring_loop *u, unsigned bid)
{
    return u->bufs + (size_t)bid * u->pool.size;
}

/* Hand buffers [from, to) to the kernel. */
static void bufs_provide(struct uring_loop *u, unsigned from, unsigned to)
{
    int mask = io_uring_buf_ring_mask(u->br_entries);
    for (unsigned bid = from; bid < to; bid++)
        io_uring_buf_ring_add(u->br, buf_addr(u, bid), u->pool.size, (unsigned short)bid, mask,
                              (int)(bid - from));
    io_uring_buf_ring_advance(u->br, (int)(to - from));
    u->nbufs = to;
}

/* The kernel is done with bid and so is the codec: straight back to the ring. */
static inline void buf_give_back(struct uring_loop *u, unsigned bid)
{
    io_uring_buf_ring_add(u->br, buf_addr(u, bid), u->pool.size, (unsigned short)bid,
                          io_uring_buf_ring_mask(u->br_entries), 0);
    io_uring_buf_ring_advance(u->br, 1);
}

/* Where a receive's bytes are: from the buffer's start, or (incremental) where the
 * previous receive into the same buffer ended. Then account for them, and give the
 * buffer back once the kernel has moved past it. Call after the bytes are handled. */
static inline char *buf_data(const struct uring_loop *u, unsigned bid)
{
    return buf_addr(u, bid) + (u->incremental ? u->used[bid] : 0);
}

static void buf_consumed(struct uring_loop *u, unsigned bid, int res, unsigned cqe_flags)
{
    if (!u->incremental) {
        buf_give_back(u, bid);
        return;
    }
    if (res <= 0)
        return; /* nothing was taken from it */
    u->used[bid] += (uint32_t)res;
    if (!(cqe_flags & IORING_CQE_F_BUF_MORE)) {
        u->used[bid] = 0;
        buf_give_back(u, bid);
    }
}

/* ENOBUFS: more data arrived between two turns than the pool had room for. */
static void bufs_grow(struct worker *w)
{
    struct uring_loop *u = w->uring;
    if (u->nbufs >= u->pool.max || u->turn_receivers < u->nbufs / 2)
        return;
    unsigned to = u->nbufs * 2 > u->pool.max ? u->pool.max : u->nbufs * 2;
    bufs_provide(u, u->nbufs, to);
    log_debug("worker %d: io_uring receive pool: %u buffers of %u KiB", w->id, to,
              u->pool.size / 1024);
}

/* ---- connections ---- */

static int ur_arm_recv(struct worker *w, struct conn *c)
{
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe)
        return -1;
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    ur_sqe_file(sqe, c);
    if (recv_limit_ok) {
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
    c->flags = (uint16_t)((c->flags | CONN_RECV_ARMED) & ~CONN_RECV_CANCEL);
    c->inflight++;
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
    c->flags |= CONN_CANCEL_LATER;
    worker_mark_todo(w, c);
}

static void ur_cancel_recv(struct worker *w, struct conn *c)
{
    if (!(c->flags & CONN_RECV_ARMED) || (c->flags & CONN_RECV_CANCEL))
        return;
    if (ur_cancel(w, c, TAG_RECV) < 0) {
        ur_cancel_later(w, c);
        return;
    }
    c->flags |= CONN_RECV_CANCEL;
}

/* Closing: cancel the receive and the send in flight (a send cancelled twice, when
 * one of the two was owed, only gets ENOENT the second time). */
static void ur_cancel_ops(struct worker *w, struct conn *c)
{
    ur_cancel_recv(w, c);
    if ((c->flags & CONN_SENDING) && ur_cancel(w, c, TAG_SEND) < 0)
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
 * send could reach another client's socket. */
static void ur_detach(struct worker *w, struct conn *c)
{
    ur_cancel_ops(w, c);
    ur_files_remove(w, c);
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe) {
        close(c->fd); /* ur_sqe submitted everything queued before it gave up */
        return;
    }
    io_uring_prep_close(sqe, c->fd);
    io_uring_sqe_set_data64(sqe, TAG_IGNORE);
}

/* Send the frozen buffer's rest, or freeze what waits in out and send it. */
static void ur_submit_send(struct worker *w, struct conn *c)
{
    if (!buf_len(&c->sending)) {
        struct buf t = c->sending; /* empty: out keeps its memory for the next replies */
        c->sending = c->out;
        c->out = t;
    }
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe) {
        worker_mark_todo(w, c); /* ur_revisit sends it next time */
        return;
    }
    io_uring_prep_send(sqe, c->fd, buf_head(&c->sending), buf_len(&c->sending), MSG_NOSIGNAL);
    ur_sqe_file(sqe, c);
    io_uring_sqe_set_data64(sqe, ud(c, TAG_SEND));
    c->flags |= CONN_SENDING;
    c->inflight++;
}

/* Replies are waiting: send them with this turn's io_uring_enter (the to-do list runs
 * after every completion of the turn, so one connection's replies leave together). */
static void ur_send(struct worker *w, struct conn *c)
{
    if (!(c->flags & (CONN_SENDING | CONN_CLOSED)) && buf_len(&c->out))
        worker_mark_todo(w, c);
}

/* Also what found no SQE before: an owed cancel, a receive to arm, a send. */
static void ur_revisit(struct worker *w, struct conn *c)
{
    if (c->flags & CONN_CANCEL_LATER) {
        c->flags &= (uint16_t)~CONN_CANCEL_LATER;
        if (c->flags & CONN_CLOSED)
            ur_cancel_ops(w, c);
        else if (!ur_wants_recv(c)) /* not if reading was turned on again meanwhile */
            ur_cancel_recv(w, c);
    }
    if (c->flags & CONN_CLOSED)
        return;
    if (!(c->flags & CONN_RECV_ARMED) && ur_wants_recv(c))
        ur_arm_recv_or_later(w, c);
    if (!(c->flags & CONN_SENDING) && conn_unsent(c))
        ur_submit_send(w, c);
    conn_settle(w, c);
}

static void ur_read_on(struct worker *w, struct conn *c)
{
    /* With a cancel still on its way, the receive's last completion re-arms it. */
    if (!(c->flags & CONN_RECV_ARMED))
        ur_rearm_recv(w, c);
}

static void ur_read_off(struct worker *w, struct conn *c)
{
    ur_cancel_recv(w, c);
}

static void ur_linger(struct worker *w, struct conn *c)
{
    if (!(c->flags & CONN_RECV_ARMED))
        ur_rearm_recv(w, c);
}

static void ur_on_recv(struct worker *w, struct conn *c, const struct io_uring_cqe *cqe)
{
    int res = cqe->res;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->flags &= (uint16_t)~(CONN_RECV_ARMED | CONN_RECV_CANCEL);
        c->inflight--;
    }
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        /* Bytes read while paused are answered too: they have left the socket. */
        const uint16_t drop = CONN_CLOSED | CONN_LINGER | CONN_CLOSE_WHEN_SENT | CONN_PEER_EOF;
        if (res > 0 && c != w->uring->last_receiver) {
            w->uring->turn_receivers++;
            w->uring->last_receiver = c;
        }
        if (res > 0 && !(c->flags & drop)) {
            if ((c->flags & (CONN_USED | CONN_FIXED)) == CONN_USED)
                ur_files_add(w, c); /* a second receive: likely kept alive */
            conn_received(w, c, buf_data(w->uring, bid), (size_t)res);
        }
        buf_consumed(w->uring, bid, res, cqe->flags);
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
        bufs_grow(w);
    }
    if (!(c->flags & CONN_RECV_ARMED) && ur_wants_recv(c))
        ur_rearm_recv(w, c);
    conn_settle(w, c);
}

static void ur_on_send(struct worker *w, struct conn *c, int res)
{
    c->flags &= (uint16_t)~CONN_SENDING;
    c->inflight--;
    if (c->flags & CONN_CLOSED)
        return;
    if (res <= 0) {
        conn_fail(w, c, res < 0 ? -res : EPIPE);
        return;
    }
    conn_sent(w, c, (size_t)res);
    buf_consume(&c->sending, (size_t)res);
    if (buf_len(&c->sending) || buf_len(&c->out)) {
        worker_mark_todo(w, c); /* the rest, or what was replied meanwhile */
    } else {
        buf_release(&c->sending); /* idle: no memory kept */
        buf_release(&c->out);
    }
    conn_settle(w, c);
}

/* ---- handoff and accepting ---- */

/* Without this poll the worker would never hear of new connections (nor of the
 * drain): with no SQE it is pending, armed at the next turn's start. */
static void ur_arm_handoff(struct worker *w)
{
    struct io_uring_sqe *sqe = ur_sqe(w);
    w->uring->handoff_pending = !sqe;
    if (!sqe)
        return;
    io_uring_prep_poll_multishot(sqe, w->handoff.efd, POLLIN);
    io_uring_sqe_set_data64(sqe, ud(&w->handoff, TAG_HANDOFF));
    w->uring->handoff_armed = 1;
}

static void ur_on_handoff(struct worker *w, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        w->uring->handoff_armed = 0;
    if (cqe->res < 0 && cqe->res != -ECANCELED)
        log_warn("worker %d: poll on the handoff: %s", w->id, strerror(-cqe->res));
    /* The eventfd is never read: the multishot poll reports every write (handoff.h). */
    worker_take_handoff(w);
    if (!w->uring->handoff_armed)
        ur_arm_handoff(w);
}

/* With no SQE, pending (ur_arm_pending): listener i would be accepted from no more. */
static void ur_arm_accept(struct worker *w, int i)
{
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe) {
        w->uring->accept_pending |= 1u << i;
        return;
    }
    w->uring->accept_pending &= ~(1u << i);
    const struct listener *l = &w->accept.listeners[i];
    /* The kernel reads RLIMIT_NOFILE when an accept is prepared, so a multishot accept
     * keeps the limit it started with; a test that lowers the limit of a running
     * server asks for one-shot accepts, re-armed (and re-reading it) each time. */
    if (w->uring->accept_oneshot)
        io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    else
        io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud(l, TAG_ACCEPT));
    w->uring->accept_armed |= 1u << i;
}

/* Out of descriptors: an accept would fail at once (the kernel takes the descriptor
 * before it waits for a connection), so wait for a connection with a poll instead, as
 * the epoll backend waits for an edge, and shed it then. */
static void ur_arm_listen_poll(struct worker *w, int i)
{
    struct io_uring_sqe *sqe = ur_sqe(w);
    if (!sqe) {
        w->uring->poll_pending |= 1u << i;
        return;
    }
    w->uring->poll_pending &= ~(1u << i);
    const struct listener *l = &w->accept.listeners[i];
    io_uring_prep_poll_add(sqe, l->fd, POLLIN);
    io_uring_sqe_set_data64(sqe, ud(l, TAG_LISTEN_POLL));
    w->uring->listen_polled |= 1u << i;
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
    if (w->draining || !a->n_listeners || a->paused_until_ms)
        return;
    if (counter_get(&a->stats.rejected_no_fd) != shed)
        ur_arm_listen_poll(w, i);
    else
        ur_arm_accept(w, i);
}

static void ur_arm_accepts(struct worker *w)
{
    for (int i = 0; i < w->accept.n_listeners; i++)
        if (!((w->uring->accept_armed | w->uring->listen_polled) & (1u << i)) &&
            !w->accept.paused_until_ms)
            ur_arm_accept(w, i);
}

/* A connection the multishot accept took: --max-conns and --max-conns-per-ip, as
 * accept_drain applies them. */
static void ur_admit(struct worker *w, const struct listener *l, int fd)
{
    uint64_t live = stats_active_connections();
    uint32_t peer;
    if (accept_admit(&w->accept, fd, &live, &peer))
        worker_deliver_own(w, fd, (uint8_t)l->ep.proto, peer);
}

static void ur_on_accept(struct worker *w, const struct listener *l, const struct io_uring_cqe *cqe)
{
    struct accept_ctx *a = &w->accept;
    int i = (int)(l - a->listeners);
    if (!(cqe->flags & IORING_CQE_F_MORE))
        w->uring->accept_armed &= ~(1u << i);
    int res = cqe->res;
    if (res >= 0) {
        ur_admit(w, l, res);
    } else if (res != -ECANCELED && accept_failed(a, -res) == ACCEPT_FAIL_NO_FILES) {
        if (!w->draining && a->n_listeners && !(w->uring->accept_armed & (1u << i)))
            ur_listener_drain(w, i);
        return;
    }
    if (!w->draining && a->n_listeners && !(w->uring->accept_armed & (1u << i)) &&
        !a->paused_until_ms)
        ur_arm_accept(w, i);
}

static void ur_on_listen_poll(struct worker *w, const struct listener *l,
                              const struct io_uring_cqe *cqe)
{
    int i = (int)(l - w->accept.listeners);
    w->uring->listen_polled &= ~(1u << i);
    if (cqe->res == -ECANCELED || w->draining || !w->accept.n_listeners)
        return;
    ur_listener_drain(w, i);
}

/* Cancel listener i's accept or poll; a cancel with no SQE is pending. */
static void ur_listener_cancel(struct worker *w, int i)
{
    struct uring_loop *u = w->uring;
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
static void ur_accept_stop(struct worker *w)
{
    w->uring->accept_pending = w->uring->poll_pending = 0;
    for (int i = 0; i < w->accept.n_listeners; i++)
        ur_listener_cancel(w, i);
    io_uring_submit(&w->uring->ring);
}

static int ur_pending(const struct uring_loop *u)
{
    return u->handoff_pending || u->accept_pending || u->poll_pending || u->cancel_pending;
}

/* At each turn's start: arm (or cancel) again what found no SQE before. Accepts and
 * polls only while accepting goes on; a cancel until it has been submitted. */
static void ur_arm_pending(struct worker *w)
{
    struct uring_loop *u = w->uring;
    if (u->handoff_pending && !u->handoff_armed)
        ur_arm_handoff(w);
    uint32_t accepts = u->accept_pending, polls = u->poll_pending, cancels = u->cancel_pending;
    u->accept_pending = u->poll_pending = 0;
    int accepting = !w->draining && w->accept.n_listeners && !w->accept.paused_until_ms;
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

static void ur_accept_resume(struct worker *w)
{
    for (int i = 0; i < w->accept.n_listeners; i++)
        if (!((w->uring->accept_armed | w->uring->listen_polled) & (1u << i)))
            ur_listener_drain(w, i);
}

/* ---- the loop ---- */

static void ur_complete(struct worker *w, const struct io_uring_cqe *cqe)
{
    void *p = ud_ptr(cqe->user_data);
    switch (cqe->user_data & TAG_MASK) {
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
    case TAG_LISTEN_POLL:
        ur_on_listen_poll(w, p, cqe);
        break;
    case TAG_SLOT_CLEAR: /* the slot would keep the socket open until the worker stops */
        if (cqe->res < 0)
            log_warn("worker %d: io_uring file table, clearing slot %llu: %s", w->id,
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
    struct io_uring *ring = &w->uring->ring;
    struct io_uring_cqe batch[CQE_BATCH];
    unsigned chunk = w->uring->flush_every;
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
            io_uring_submit(ring);
        }
    }
}

static void ur_check_overflow(struct worker *w)
{
    struct uring_loop *u = w->uring;
    if (IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
        counter_add(&w->stats.uring_cq_overflows, 1);
    unsigned dropped = IO_URING_READ_ONCE(*u->ring.cq.koverflow);
    if (dropped != u->koverflow) {
        counter_add(&w->stats.uring_cq_dropped, dropped - u->koverflow);
        log_warn("worker %d: the kernel dropped %u io_uring completions", w->id,
                 dropped - u->koverflow);
        u->koverflow = dropped;
    }
}

/* Submit this turn's operations and wait for completions (or the next deadline), in
 * one io_uring_enter. */
static void ur_wait(struct worker *w, int timeout_ms)
{
    struct io_uring *ring = &w->uring->ring;
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
        log_warn("worker %d: io_uring_enter: %s", w->id, strerror(-rc));
}

static void ur_run(struct worker *w)
{
    for (;;) {
        worker_heartbeat(w);
        if (ur_pending(w->uring))
            ur_arm_pending(w);
        /* Still pending (no SQE again): do not sleep on a poll that is not there. */
        ur_wait(w, ur_pending(w->uring) ? 0 : worker_next_timeout_ms(w));
        counter_add(&w->stats.loop_waits, 1);
        worker_update_clock(w);
        ur_check_overflow(w);
        w->uring->turn_receivers = 0;
        w->uring->last_receiver = NULL;
        ur_reap(w);
        if (worker_turn_end(w))
            break;
    }
}

/* The receive pool: incremental where the kernel takes it (EINVAL: older than 6.12). */
static int ur_pool_setup(struct worker *w)
{
    struct uring_loop *u = w->uring;
    int err = 0, want_inc = !test_knob("WHARFD_TEST_URING_NO_INC");
    u->br = NULL;
    if (want_inc) {
        u->pool = POOL_INCREMENTAL;
        u->br_entries = u->pool.max;
        u->br = buf_ring_setup(&u->ring, u->br_entries, 1, &u->br_helper, &err);
        u->incremental = u->br != NULL;
    }
    if (!u->br) {
        u->pool = POOL_WHOLE;
        u->br_entries = u->pool.max;
        u->br = buf_ring_setup(&u->ring, u->br_entries, 0, &u->br_helper, &err);
    }
    if (!u->br) {
        log_error("worker %d: cannot register an io_uring buffer ring: %s", w->id,
                  strerror(-err));
        return -1;
    }
    unsigned n = test_knob_uint("WHARFD_TEST_URING_BUFS", 0); /* a tiny pool: ENOBUFS */
    if (n >= 1 && n <= u->pool.max)
        u->pool.first = u->pool.max = n;
    u->bufs = mmap(NULL, (size_t)u->pool.max * u->pool.size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    u->used = calloc(u->pool.max, sizeof *u->used);
    if (u->bufs == MAP_FAILED || !u->used) {
        u->bufs = u->bufs == MAP_FAILED ? NULL : u->bufs;
        log_error("worker %d: cannot map io_uring receive buffers: %s", w->id, strerror(errno));
        return -1;
    }
    bufs_provide(u, 0, u->pool.first);
    return 0;
}

static int ur_init(struct worker *w)
{
    struct uring_loop *u = calloc(1, sizeof *u);
    if (!u) {
        log_error("worker %d: out of memory", w->id);
        return -1;
    }
    w->uring = u;
    unsigned cq = test_knob_uint("WHARFD_TEST_URING_CQ", CQ_ENTRIES); /* tiny: overflows */
    int rc = ring_setup(&u->ring, cq < SQ_ENTRIES ? cq : SQ_ENTRIES, cq, &u->setup_flags);
    if (rc < 0) {
        char why[256];
        explain_setup_error(-rc, why, sizeof why);
        log_error("worker %d: %s", w->id, why);
        return -1;
    }
    u->ring_ok = 1;
    u->sqe_fail_every = test_knob_uint("WHARFD_TEST_URING_SQE_FAIL", 0);
    u->accept_oneshot = test_knob("WHARFD_TEST_URING_ACCEPT_ONESHOT") != NULL;
    u->flush_every = test_knob_uint("WHARFD_TEST_URING_FLUSH", FLUSH_EVERY); /* 0: at the end */
    io_uring_register_ring_fd(&u->ring); /* optional: saves a file lookup per enter */
    if (ur_pool_setup(w) < 0)
        return -1;
    ur_files_setup(w);
    ur_arm_handoff(w);
    ur_arm_accepts(w);
    log_debug("worker %d: io_uring ring (%s), %u SQ / %u CQ entries, %u %s receive buffers of "
              "%u KiB, receives %s", w->id, setup_mode_name(u->setup_flags),
              u->ring.sq.ring_entries, u->ring.cq.ring_entries, u->nbufs,
              u->incremental ? "incremental" : "whole", u->pool.size / 1024,
              recv_limit_ok ? "limited per arm" : "unlimited");
    return 0;
}

/* Whether the ring still has an operation on a file: an accept or poll on a listener,
 * the handoff's poll, a receive or send of a (closed) connection, or ur_quiesce's
 * cancel of them all. */
static int ur_holds_files(const struct worker *w)
{
    const struct uring_loop *u = w->uring;
    if (u->accept_armed || u->listen_polled || u->handoff_armed || u->cancel_all_due)
        return 1;
    for (const struct conn *c = w->closed; c; c = (const struct conn *)c->timer.next)
        if (c->inflight)
            return 1;
    return 0;
}

/* ur_quiesce's completions: operations end, nothing new starts. */
static void ur_complete_last(struct worker *w, const struct io_uring_cqe *cqe)
{
    struct uring_loop *u = w->uring;
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
    } else if (tag == TAG_HANDOFF) {
        u->handoff_armed &= !ended;
    } else if (tag == TAG_IGNORE && p == u) {
        u->cancel_all_due = 0;
    } else {
        ur_complete(w, cqe); /* a closed connection's receive or send only counts down */
    }
}

/* Cancel everything still in flight and reap until the ring holds no file, in this
 * thread. Why: a request's file reference otherwise goes in the ring's exit work, a
 * kernel worker that runs after close(ring), where the last fput is itself deferred
 * (delayed_fput, a jiffy or more); a listener whose cancelled accept ended there was
 * still LISTENING after the process had exited, and a restart at once could not bind
 * (EADDRINUSE). Here the fput is this thread's task work, run before it returns.
 * 0, or -1 when something was still in flight when it gave up (logged). */
static int ur_quiesce(struct worker *w)
{
    struct uring_loop *u = w->uring;
    struct io_uring *ring = &u->ring;
    io_uring_submit(ring); /* the closes of the last connections, before the cancel */
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe) {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, ud(u, TAG_IGNORE));
        u->cancel_all_due = 1;
    } else { /* the submission failed: only what ends by itself is waited for */
        log_warn("worker %d: io_uring: no room to cancel what is in flight", w->id);
    }
    uint64_t deadline = clock_ms() + QUIESCE_MS;
    while (ur_holds_files(w)) {
        uint64_t now = clock_ms();
        if (now >= deadline) {
            log_warn("worker %d: io_uring operations still in flight after %d ms; the "
                     "ring's exit will end them", w->id, QUIESCE_MS);
            return -1;
        }
        uint64_t left = deadline - now;
        struct __kernel_timespec ts = {.tv_sec = (long long)(left / 1000),
                                       .tv_nsec = (long long)(left % 1000) * 1000000};
        struct io_uring_cqe *cqe;
        int rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            log_warn("worker %d: io_uring_enter while stopping: %s", w->id, strerror(-rc));
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
    return 0;
}

/* After the loop (or a failed init): every operation still in flight is cancelled and
 * reaped (ur_quiesce), the file table dropped, the ring closed; the worker then frees
 * the connections that waited for them. */
static void ur_fini(struct worker *w)
{
    struct uring_loop *u = w->uring;
    if (!u)
        return;
    /* A slot whose clearing failed would hold its socket until the ring's exit. Not
     * after a failed quiesce: older kernels wait there for the requests still using
     * the table. */
    if (u->ring_ok && ur_quiesce(w) == 0 && u->fixed_slots) {
        int rc = io_uring_unregister_files(&u->ring);
        if (rc < 0)
            log_warn("worker %d: io_uring file table, unregistering: %s", w->id,
                     strerror(-rc));
    }
    if (u->br)
        buf_ring_free(&u->ring, u->br, u->br_entries, u->br_helper);
    if (u->ring_ok)
        io_uring_queue_exit(&u->ring);
    if (u->bufs)
        munmap(u->bufs, (size_t)u->pool.max * u->pool.size);
    free(u->used);
    free(u);
    w->uring = NULL;
}

const struct backend uring_backend = {
    .name = "io_uring",
    .replies_in_conn = 1,
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
    .accept_stop = ur_accept_stop,
    .accept_resume = ur_accept_resume,
};
