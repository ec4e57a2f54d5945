/* hold: many idle connections.
 *
 * The parent forks --procs children (so that more connections than one process's file
 * limit can be held) and only coordinates: each child opens its share, proves every
 * connection live with one round trip, and reports READY; when all are ready the
 * parent holds for -d, then tells every child to VERIFY: one more round trip on each
 * connection, and a FINAL report. Children report their counters over a SOCK_SEQPACKET
 * socketpair; they never print.
 *
 * Per connection a child keeps 16 bytes: replies are checked as they stream in
 * against the expected bytes (the reply to a fixed request is a fixed byte string), so
 * nothing is buffered. */
#include "hold.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/rate.h"
#include "load.h"
#include "payload.h"
#include "report.h"

#define MAX_EVENTS 512
#define MAX_PENDING_CONNECTS 512
#define RBUF_SIZE (64 * 1024)
#define SCAN_NS (50 * 1000000ull)
#define PROGRESS_NS 1000000000ull   /* the parent's progress line */
#define REPORT_NS 250000000ull      /* children's counts to the parent */

enum { H_NEW, H_CONNECTING, H_PROBE, H_LIVE, H_VERIFY, H_OK, H_FAILED, H_LOST };

struct hconn {
    int fd;
    uint8_t state;
    uint8_t bad;     /* the reply so far differs from the expected one */
    uint16_t unused;
    uint32_t got;    /* reply bytes seen */
    uint32_t t_ms;   /* when the current wait began, ms since the child started */
};

/* Why a connection failed its first round trip, or was lost after it. */
struct hold_why {
    uint64_t closed, resets, timeouts, mismatches;
};

struct hold_counts {
    uint64_t target, attempted, connected, failed, live, probe_failed, dropped, verified,
        survived, lost, interrupted;
    struct hold_why probe_why, lost_why;
    uint64_t t_connected_ns, t_live_ns; /* CLOCK_MONOTONIC when the last one got there */
    struct errno_counts errnos;        /* connect failures */
};

enum { MSG_PROGRESS = 1, MSG_READY, MSG_FINAL, CMD_VERIFY };

struct hold_msg {
    uint32_t type;
    uint32_t unused;
    struct hold_counts c;
};

struct child {
    const struct load_opts *o;
    struct payload pl;
    int ctl;
    int epfd;
    uint32_t n, next;
    uint64_t first_index;
    uint64_t t0;
    struct hconn *conns;
    char *rbuf;
    struct rate crate;
    uint32_t pending, probing, verifying;
    int verify_asked;
    struct hold_counts c;
};

static inline uint32_t ms_since(const struct child *h, uint64_t now)
{
    return (uint32_t)((now - h->t0) / 1000000u);
}

static void send_msg(struct child *h, uint32_t type)
{
    struct hold_msg m = {.type = type, .c = h->c};
    if (send(h->ctl, &m, sizeof m, MSG_NOSIGNAL) < 0)
        _exit(3); /* the parent is gone */
}

static void drop(struct hconn *c, int state)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = (uint8_t)state;
}

static struct hold_why *why(struct child *h, const struct hconn *c)
{
    return c->state == H_PROBE ? &h->c.probe_why : &h->c.lost_why;
}

static void write_probe(struct child *h, struct hconn *c, int next_state, uint64_t now)
{
    c->got = 0;
    c->bad = 0;
    c->t_ms = ms_since(h, now);
    c->state = (uint8_t)next_state;
    /* A fresh or idle socket has room for one small request: a short write means the
     * connection is broken. */
    ssize_t w = write(c->fd, h->pl.req, h->pl.req_len);
    if (w == (ssize_t)h->pl.req_len)
        return;
    if (w < 0 && (errno == ECONNRESET || errno == EPIPE))
        why(h, c)->resets++;
    if (next_state == H_PROBE) {
        h->c.probe_failed++;
        h->probing--;
    } else {
        h->c.lost++;
        h->verifying--;
    }
    drop(c, next_state == H_PROBE ? H_FAILED : H_LOST);
}

static void connect_done(struct child *h, struct hconn *c, int err, uint64_t now)
{
    if (c->state == H_CONNECTING)
        h->pending--;
    if (err) {
        h->c.failed++;
        errno_count(&h->c.errnos, err);
        drop(c, H_FAILED);
    } else {
        h->c.connected++;
        h->probing++;
        write_probe(h, c, H_PROBE, now);
    }
    if (h->c.connected + h->c.failed == h->n)
        h->c.t_connected_ns = now;
}

static void start_connects(struct child *h, uint64_t now)
{
    if (h->o->connect_rate)
        rate_cap_backlog(&h->crate, now, MAX_PENDING_CONNECTS);
    while (h->next < h->n && h->pending < MAX_PENDING_CONNECTS) {
        if (h->o->connect_rate) {
            if (!rate_backlog(&h->crate, now))
                break;
            rate_take(&h->crate, 1);
        }
        uint32_t i = h->next++;
        struct hconn *c = &h->conns[i];
        int in_progress = 0;
        h->c.attempted++;
        c->t_ms = ms_since(h, now);
        c->fd = load_connect(h->o, h->first_index + i, &in_progress);
        if (c->fd < 0) {
            int err = -c->fd;
            c->fd = -1;
            connect_done(h, c, err, now);
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u32 = i};
        if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            connect_done(h, c, errno, now);
            continue;
        }
        if (in_progress) {
            c->state = H_CONNECTING;
            h->pending++;
        } else {
            connect_done(h, c, 0, now);
        }
    }
}

/* A reply (or something else) arrived on c. */
static void on_readable(struct child *h, struct hconn *c, uint64_t now)
{
    for (;;) {
        ssize_t n = read(c->fd, h->rbuf, RBUF_SIZE);
        int waiting = c->state == H_PROBE || c->state == H_VERIFY;
        if (n > 0 && waiting) {
            size_t left = h->pl.reply_len - c->got;
            size_t take = (size_t)n < left ? (size_t)n : left;
            if ((size_t)n > left || memcmp(h->rbuf, h->pl.exp + c->got, take) != 0)
                c->bad = 1;
            c->got += (uint32_t)take;
            if (c->got < h->pl.reply_len)
                continue;
            int probe = c->state == H_PROBE;
            if (probe)
                h->probing--;
            else
                h->verifying--;
            if (c->bad) {
                why(h, c)->mismatches++;
                if (probe)
                    h->c.probe_failed++;
                else
                    h->c.lost++;
                drop(c, probe ? H_FAILED : H_LOST);
                return;
            }
            if (probe) {
                h->c.live++;
                c->state = H_LIVE;
                if (h->c.live + h->c.probe_failed + h->c.failed == h->n)
                    h->c.t_live_ns = now;
            } else {
                h->c.survived++;
                c->state = H_OK;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        /* EOF, an error, or bytes on an idle connection: it is gone. */
        if (n == 0)
            why(h, c)->closed++;
        else if (n < 0)
            why(h, c)->resets++;
        else
            why(h, c)->mismatches++;
        if (c->state == H_PROBE) {
            h->probing--;
            h->c.probe_failed++;
            drop(c, H_FAILED);
        } else if (c->state == H_VERIFY) {
            h->verifying--;
            h->c.lost++;
            drop(c, H_LOST);
        } else if (c->state == H_LIVE) {
            h->c.dropped++; /* closed while held idle */
            h->c.lost++;
            drop(c, H_LOST);
        } else {
            drop(c, H_LOST);
        }
        return;
    }
}

static void on_event(struct child *h, uint32_t i, uint32_t events, uint64_t now)
{
    struct hconn *c = &h->conns[i];
    if (c->fd < 0)
        return;
    if (c->state == H_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            connect_done(h, c, load_socket_error(c->fd), now);
        if (c->fd < 0 || !(events & (EPOLLIN | EPOLLRDHUP)))
            return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        on_readable(h, c, now);
}

static void scan_timeouts(struct child *h, uint64_t now)
{
    uint32_t limit = (uint32_t)h->o->timeout_ms, t = ms_since(h, now);
    for (uint32_t i = 0; i < h->next; i++) {
        struct hconn *c = &h->conns[i];
        if (c->fd < 0 || t - c->t_ms <= limit)
            continue;
        if (c->state == H_CONNECTING) {
            connect_done(h, c, ETIMEDOUT, now);
        } else if (c->state == H_PROBE) {
            h->probing--;
            h->c.probe_failed++;
            why(h, c)->timeouts++;
            drop(c, H_FAILED);
        } else if (c->state == H_VERIFY) {
            h->verifying--;
            h->c.lost++;
            why(h, c)->timeouts++;
            drop(c, H_LOST);
        }
    }
}

/* The parent's command: VERIFY, or EOF when it is gone. */
static void read_ctl(struct child *h)
{
    struct hold_msg m;
    ssize_t n = recv(h->ctl, &m, sizeof m, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        _exit(3);
    if (n > 0 && m.type == CMD_VERIFY)
        h->verify_asked = 1;
}

/* One turn of the loop: wait up to wait_ns for events and the parent. */
static void turn(struct child *h, uint64_t wait_ns)
{
    struct epoll_event ev[MAX_EVENTS];
    int n = load_epoll_wait(h->epfd, ev, MAX_EVENTS, wait_ns);
    uint64_t now = clock_ns();
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u32 == UINT32_MAX)
            read_ctl(h);
        else
            on_event(h, ev[i].data.u32, ev[i].events, now);
    }
}

static int child_run(struct child *h)
{
    uint64_t next_progress = clock_ns() + REPORT_NS, next_scan = clock_ns() + SCAN_NS;
    /* Ramp: connect and probe every connection (or stop early when told to verify). */
    while ((h->next < h->n || h->pending || h->probing) && !h->verify_asked) {
        uint64_t now = clock_ns();
        start_connects(h, now);
        if (now >= next_scan) {
            scan_timeouts(h, now);
            next_scan = now + SCAN_NS;
        }
        if (now >= next_progress) {
            send_msg(h, MSG_PROGRESS);
            next_progress = now + REPORT_NS;
        }
        uint64_t next = next_scan < next_progress ? next_scan : next_progress;
        if (h->next < h->n && h->pending < MAX_PENDING_CONNECTS) {
            uint64_t when = h->o->connect_rate ? rate_next(&h->crate) : now;
            if (when < next)
                next = when;
        }
        turn(h, next > now ? next - now : 0);
    }
    if (h->verify_asked) {
        /* Interrupted: whatever is still connecting or probing does not count. */
        for (uint32_t i = 0; i < h->next; i++) {
            struct hconn *c = &h->conns[i];
            if (c->state == H_CONNECTING || c->state == H_PROBE) {
                h->c.interrupted++;
                drop(c, H_FAILED);
            }
        }
        h->pending = h->probing = 0;
    }
    send_msg(h, MSG_READY);
    /* Hold: idle, but watching for connections the server closes. */
    while (!h->verify_asked)
        turn(h, 1000000000ull);
    /* Verify: one more round trip on every live connection. */
    uint64_t now = clock_ns();
    for (uint32_t i = 0; i < h->next; i++) {
        struct hconn *c = &h->conns[i];
        if (c->state == H_LIVE) {
            h->verifying++;
            h->c.verified++;
            write_probe(h, c, H_VERIFY, now);
        }
    }
    next_scan = now + SCAN_NS;
    while (h->verifying) {
        now = clock_ns();
        if (now >= next_scan) {
            scan_timeouts(h, now);
            next_scan = now + SCAN_NS;
        }
        turn(h, next_scan > now ? next_scan - now : 0);
    }
    send_msg(h, MSG_FINAL);
    return 0;
}

static void child_main(const struct load_opts *o, int ctl, uint32_t k, uint32_t n,
                       uint64_t first_index, uint64_t start_ns)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(runctl_fd());
    struct child h = {.o = o, .ctl = ctl, .n = n, .first_index = first_index, .t0 = clock_ns()};
    h.c.target = n;
    h.epfd = epoll_create1(EPOLL_CLOEXEC);
    h.conns = calloc(n ? n : 1, sizeof *h.conns);
    h.rbuf = malloc(RBUF_SIZE);
    if (h.epfd < 0 || !h.conns || !h.rbuf ||
        payload_init(&h.pl, o->proto, o->expect, o->size, 1, NULL, 0) < 0)
        _exit(4);
    for (uint32_t i = 0; i < n; i++)
        h.conns[i].fd = -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(h.epfd, EPOLL_CTL_ADD, ctl, &ev) < 0)
        _exit(4);
    if (o->connect_rate)
        rate_init(&h.crate, start_ns, o->connect_rate, k, o->procs);
    child_run(&h);
    /* exit() closes every connection; nothing else to free in a process that ends. */
    _exit(0);
}

/* ---- the parent ---- */

struct proc {
    pid_t pid;
    int ctl;
    int ready, final, gone;
    struct hold_counts c;
};

static void sum_counts(const struct proc *p, int k, struct hold_counts *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < k; i++) {
        const struct hold_counts *c = &p[i].c;
#define ADD(f) s->f += c->f
        ADD(target); ADD(attempted); ADD(connected); ADD(failed); ADD(live);
        ADD(probe_failed); ADD(dropped); ADD(verified); ADD(survived); ADD(lost);
        ADD(interrupted);
        ADD(probe_why.closed); ADD(probe_why.resets); ADD(probe_why.timeouts);
        ADD(probe_why.mismatches);
        ADD(lost_why.closed); ADD(lost_why.resets); ADD(lost_why.timeouts);
        ADD(lost_why.mismatches);
#undef ADD
        if (c->t_connected_ns > s->t_connected_ns)
            s->t_connected_ns = c->t_connected_ns;
        if (c->t_live_ns > s->t_live_ns)
            s->t_live_ns = c->t_live_ns;
        errno_merge(&s->errnos, &c->errnos);
    }
}

/* Read what the children said; until every one has reached `want` (READY or FINAL),
 * or deadline_ns. Returns the number of signals seen. */
static int collect(struct proc *p, int k, int want, uint64_t deadline_ns, int tty,
                   uint64_t start_ns, uint64_t target)
{
    struct pollfd pf[257];
    uint64_t next_tick = clock_ns() + PROGRESS_NS;
    int signals = runctl_signals();
    for (;;) {
        int waiting = 0;
        for (int i = 0; i < k; i++)
            if (!p[i].gone && !(want == MSG_READY ? p[i].ready : p[i].final))
                waiting++;
        uint64_t now = clock_ns();
        if (!waiting || now >= deadline_ns || runctl_signals() != signals)
            return runctl_signals();
        if (now >= next_tick) {
            next_tick += PROGRESS_NS;
            if (tty) {
                struct hold_counts s;
                sum_counts(p, k, &s);
                fprintf(stderr, "[%6.1fs] %" PRIu64 " of %" PRIu64 " connected, %" PRIu64
                                " live, %" PRIu64 " failed\n",
                        (double)(now - start_ns) / 1e9, s.connected, target, s.live,
                        s.failed + s.probe_failed);
            }
        }
        int n = 0;
        pf[n++] = (struct pollfd){.fd = runctl_fd(), .events = POLLIN};
        for (int i = 0; i < k; i++)
            pf[n++] = (struct pollfd){.fd = p[i].gone ? -1 : p[i].ctl, .events = POLLIN};
        uint64_t until = deadline_ns < next_tick ? deadline_ns : next_tick;
        int ms = until > now ? (int)((until - now + 999999) / 1000000) : 0;
        if (poll(pf, (nfds_t)n, ms) <= 0)
            continue;
        if (pf[0].revents)
            runctl_take();
        for (int i = 0; i < k; i++) {
            if (!pf[i + 1].revents)
                continue;
            struct hold_msg m;
            ssize_t got = recv(p[i].ctl, &m, sizeof m, MSG_DONTWAIT);
            if (got == (ssize_t)sizeof m) {
                p[i].c = m.c;
                if (m.type == MSG_READY)
                    p[i].ready = 1;
                else if (m.type == MSG_FINAL)
                    p[i].final = 1;
            } else if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                p[i].gone = 1;
            }
        }
    }
}

static void tell_verify(struct proc *p, int k)
{
    struct hold_msg m = {.type = CMD_VERIFY};
    for (int i = 0; i < k; i++)
        if (!p[i].gone && send(p[i].ctl, &m, sizeof m, MSG_NOSIGNAL) < 0)
            p[i].gone = 1;
}

struct hold_result {
    struct hold_counts s;
    double connect_s, live_s, held_s;
    int interrupted, lost_procs;
};

static void print_why(const struct hold_why *w)
{
    printf(" (%" PRIu64 " closed, %" PRIu64 " reset, %" PRIu64 " timeout, %" PRIu64
           " mismatch)", w->closed, w->resets, w->timeouts, w->mismatches);
}

static void print_why_json(const char *name, const struct hold_why *w, uint64_t total)
{
    printf("\"%s\":{\"total\":%" PRIu64 ",\"closed\":%" PRIu64 ",\"reset\":%" PRIu64
           ",\"timeout\":%" PRIu64 ",\"mismatch\":%" PRIu64 "}",
           name, total, w->closed, w->resets, w->timeouts, w->mismatches);
}

static void print_text(const struct load_opts *o, const struct hold_result *r)
{
    const struct hold_counts *s = &r->s;
    char target[ADDR_TEXT_MAX + 16];
    endpoint_format(&o->ep, target, sizeof target);
    printf("wharf hold %s: %" PRIu64 " connections, %" PRIu64 " process%s, %d source "
           "address%s, %" PRIu64 "-byte probes, expect %s\n",
           target, o->connections, o->procs, o->procs == 1 ? "" : "es",
           o->n_sources ? o->n_sources : 1, o->n_sources > 1 ? "es" : "", o->size,
           mode_name(o->expect));
    printf("  connected   %" PRIu64 " of %" PRIu64, s->connected, o->connections);
    if (s->t_connected_ns)
        printf(" in %.2fs (%.0f/s)", r->connect_s, (double)s->connected / r->connect_s);
    printf("\n  live        %" PRIu64 " (first round trip ok)", s->live);
    if (s->t_live_ns)
        printf(", all in %.2fs", r->live_s);
    printf("\n  failed      %" PRIu64 " connect (", s->failed);
    errno_print_text(stdout, &s->errnos);
    printf("), %" PRIu64 " first round trip", s->probe_failed);
    print_why(&s->probe_why);
    printf("\n  held        %.2fs idle; %" PRIu64 " closed by the server meanwhile\n", r->held_s,
           s->dropped);
    printf("  survived    %" PRIu64 " of %" PRIu64 "; lost %" PRIu64, s->survived, s->live,
           s->lost);
    print_why(&s->lost_why);
    printf("\n");
    if (r->interrupted)
        printf("  Interrupted by a signal: %" PRIu64 " connections never attempted, %" PRIu64
               " cut while being set up\n",
               o->connections - s->attempted, s->interrupted);
    if (r->lost_procs)
        printf("  %d process%s died before reporting\n", r->lost_procs,
               r->lost_procs == 1 ? "" : "es");
}

static void print_json(const struct load_opts *o, const struct hold_result *r)
{
    const struct hold_counts *s = &r->s;
    char target[ADDR_TEXT_MAX + 16];
    endpoint_format(&o->ep, target, sizeof target);
    printf("{\"command\":\"hold\",\"target\":\"%s\",\"proto\":\"%s\",\"connections\":%" PRIu64
           ",\"procs\":%" PRIu64 ",\"sources\":%d,\"interrupted\":%s,",
           target, proto_name(o->proto), o->connections, o->procs,
           o->n_sources ? o->n_sources : 1, r->interrupted ? "true" : "false");
    printf("\"attempted\":%" PRIu64 ",\"connected\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"failed_by_errno\":",
           s->attempted, s->connected, s->failed);
    errno_print_json(stdout, &s->errnos);
    printf(",\"live\":%" PRIu64 ",\"probe_failed\":%" PRIu64 ",\"time_to_connect_s\":%.3f,"
           "\"time_to_live_s\":%.3f,\"held_s\":%.3f,\"dropped_while_held\":%" PRIu64
           ",\"verified\":%" PRIu64 ",\"survived\":%" PRIu64 ",",
           s->live, s->probe_failed, s->t_connected_ns ? r->connect_s : -1.0,
           s->t_live_ns ? r->live_s : -1.0, r->held_s, s->dropped, s->verified, s->survived);
    print_why_json("probe_failures", &s->probe_why, s->probe_failed);
    printf(",");
    print_why_json("lost", &s->lost_why, s->lost);
    printf(",\"interrupted_setups\":%" PRIu64 ",\"lost_procs\":%d}\n", s->interrupted,
           r->lost_procs);
}

static int hold_run(struct load_opts *o)
{
    uint64_t limit = load_raise_nofile();
    uint64_t share = (o->connections + o->procs - 1) / o->procs;
    if (share + 32 > limit) {
        uint64_t room = limit > 64 ? limit - 32 : 32;
        fprintf(stderr,
                "wharf hold: %" PRIu64 " connections per process, but the file limit is %" PRIu64
                ": use --procs %" PRIu64 " or more (or raise 'ulimit -n')\n",
                share, limit, (o->connections + room - 1) / room);
        return 2;
    }
    if (runctl_init() < 0) {
        perror("wharf hold: signals");
        return 1;
    }
    int k = (int)o->procs, tty = runctl_progress() && !o->json;
    struct proc *p = calloc((size_t)k, sizeof *p);
    if (!p)
        return 1;
    fflush(NULL);
    uint64_t start = clock_ns(), first = 0;
    for (int i = 0; i < k; i++) {
        uint32_t n = (uint32_t)(o->connections / o->procs + ((uint64_t)i < o->connections % o->procs));
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
            perror("wharf hold: socketpair");
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("wharf hold: fork");
            return 1;
        }
        if (pid == 0) {
            close(sv[0]);
            for (int j = 0; j < i; j++)
                close(p[j].ctl);
            child_main(o, sv[1], (uint32_t)i, n, first, start);
        }
        close(sv[1]);
        p[i].pid = pid;
        p[i].ctl = sv[0];
        first += n;
    }
    struct hold_result r = {0};
    int sigs = collect(p, k, MSG_READY, UINT64_MAX, tty, start, o->connections);
    uint64_t held_from = clock_ns();
    if (sigs) {
        r.interrupted = 1;
    } else {
        if (tty)
            fprintf(stderr, "[%6.1fs] all set up; holding for %.1fs\n",
                    (double)(held_from - start) / 1e9, (double)o->duration_ms / 1e3);
        runctl_wait(held_from + o->duration_ms * 1000000ull);
        r.interrupted = runctl_signals() > 0;
    }
    uint64_t held_until = clock_ns();
    tell_verify(p, k);
    /* A child needs at most --timeout for its round trips (and the rest of its setup,
     * when interrupted); past that, with some slack, it is lost. */
    uint64_t deadline = clock_ns() + (o->timeout_ms + 5000) * 1000000ull;
    for (;;) {
        int before = runctl_signals();
        collect(p, k, MSG_FINAL, deadline, 0, start, o->connections);
        if (runctl_signals() == before || clock_ns() >= deadline)
            break;
        r.interrupted = 1; /* Ctrl-C while verifying: keep waiting, it is bounded */
    }
    for (int i = 0; i < k; i++) {
        if (!p[i].final)
            r.lost_procs++;
        if (!p[i].final)
            kill(p[i].pid, SIGKILL);
        waitpid(p[i].pid, NULL, 0);
        close(p[i].ctl);
    }
    sum_counts(p, k, &r.s);
    r.connect_s = r.s.t_connected_ns > start ? (double)(r.s.t_connected_ns - start) / 1e9 : 0;
    r.live_s = r.s.t_live_ns > start ? (double)(r.s.t_live_ns - start) / 1e9 : 0;
    r.held_s = (double)(held_until - held_from) / 1e9;
    if (o->json)
        print_json(o, &r);
    else
        print_text(o, &r);
    free(p);
    int ok = r.s.survived == o->connections && !r.lost_procs;
    return ok || o->allow_errors ? 0 : 1;
}

int hold_main(int argc, char **argv)
{
    struct load_opts o;
    int rc = load_parse(CMD_HOLD, argc, argv, &o);
    if (rc == 0)
        rc = hold_run(&o);
    else
        rc = rc == 1 ? 0 : 2;
    load_opts_free(&o);
    return rc;
}
