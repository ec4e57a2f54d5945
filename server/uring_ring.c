#include "uring_ring.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- test hooks ---- */

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

void uring_test_hooks_read(struct uring_test_hooks *h)
{
    *h = (struct uring_test_hooks){
        .setup_errno = test_setup_errno(),
        .no_incremental = test_knob("WHARFD_TEST_URING_NO_INC") != NULL,
        .bufs = test_knob_uint("WHARFD_TEST_URING_BUFS", 0),
        .cq_entries = test_knob_uint("WHARFD_TEST_URING_CQ", 0),
        .sqe_fail_every = test_knob_uint("WHARFD_TEST_URING_SQE_FAIL", 0),
        .accept_oneshot = test_knob("WHARFD_TEST_URING_ACCEPT_ONESHOT") != NULL,
        .flush_set = test_knob("WHARFD_TEST_URING_FLUSH") != NULL,
        .flush_every = test_knob_uint("WHARFD_TEST_URING_FLUSH", 0),
        .no_fixed = test_knob("WHARFD_TEST_URING_NO_FIXED") != NULL,
        .fixed_slots = test_knob_uint("WHARFD_TEST_URING_FIXED_SLOTS", 0),
        .udp_poll = test_knob("WHARFD_TEST_URING_UDP_POLL") != NULL,
        .udp_bufs = test_knob_uint("WHARFD_TEST_URING_UDP_BUFS", 0),
        .udp_room = test_knob_uint("WHARFD_TEST_URING_UDP_ROOM", 0),
        .udp_sendmsg = test_knob("WHARFD_TEST_URING_UDP_SENDMSG") != NULL,
        .udp_no_gso = test_knob("WHARFD_TEST_URING_UDP_NO_GSO") != NULL,
    };
}

/* ---- rings ---- */

/* Set up a ring with the best task-running mode the kernel takes: DEFER_TASKRUN (the
 * kernel's side of completions runs in our io_uring_enter, nothing interrupts the
 * loop), else COOP_TASKRUN, else none; EINVAL means "not this flag here". 0 or -errno. */
int uring_ring_setup(struct io_uring *ring, unsigned sq, unsigned cq, unsigned *flags_used,
                     int setup_errno)
{
    static const unsigned modes[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    if (setup_errno)
        return -setup_errno;
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

const char *uring_mode_name(unsigned flags)
{
    if (flags & IORING_SETUP_DEFER_TASKRUN)
        return "SINGLE_ISSUER|DEFER_TASKRUN";
    return flags & IORING_SETUP_COOP_TASKRUN ? "COOP_TASKRUN" : "no task-run flags";
}

void uring_explain_setup_error(int err, char *why, size_t whylen)
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

/* ---- buffer rings ---- */

/* Map a buffer ring (page aligned) and register it as group bgid with reg_flags. */
static struct io_uring_buf_ring *bufring_register(struct io_uring *ring, unsigned n,
                                                  unsigned bgid, unsigned reg_flags, int *err)
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
    } abi = {.ring_addr = (uintptr_t)mem, .ring_entries = n, .bgid = (uint16_t)bgid,
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

/* Incremental rings are always registered here (the liburing helper's flags are not
 * the registration's before 2.6); others with io_uring_setup_buf_ring where liburing
 * has it (2.4), else registered here too. */
struct io_uring_buf_ring *uring_bufring_setup(struct io_uring *ring, unsigned n, unsigned bgid,
                                              int inc, int *helper, int *err)
{
    *helper = 0;
    if (inc)
        return bufring_register(ring, n, bgid, IOU_PBUF_RING_INC, err);
#ifdef HAVE_IO_URING_SETUP_BUF_RING
    *helper = 1;
    return io_uring_setup_buf_ring(ring, n, (int)bgid, 0, err);
#else
    return bufring_register(ring, n, bgid, 0, err);
#endif
}

void uring_bufring_free(struct io_uring *ring, struct io_uring_buf_ring *br, unsigned n,
                        unsigned bgid, int helper)
{
#ifdef HAVE_IO_URING_SETUP_BUF_RING
    if (helper) {
        io_uring_free_buf_ring(ring, br, n, (int)bgid);
        return;
    }
#else
    (void)helper;
#endif
    io_uring_unregister_buf_ring(ring, (int)bgid);
    munmap(br, n * sizeof(struct io_uring_buf));
}
