/* hold: many idle connections, as a driver of the engine (engine.h).
 *
 * The parent forks --procs children (so that more connections than one process's file
 * limit can be held) and only coordinates: each child runs one engine loop that opens
 * its share, proves every connection live with one round trip, and reports READY;
 * when all are ready the parent holds for -d, then tells every child to VERIFY: one
 * more round trip on each connection, and a FINAL report. Children report their
 * counters over a SOCK_SEQPACKET socketpair, which is also their loop's wake
 * descriptor; they never print. */
#include "hold.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/clock.h"
#include "engine.h"
#include "payload.h"
#include "procs.h"

#define MAX_PENDING_CONNECTS 512
#define SCAN_NS (50 * 1000000ull)
#define PROGRESS_NS 1000000000ull   /* the parent's progress line */
#define REPORT_NS 250000000ull      /* children's counts to the parent */

/* Where a connection is, once its connect began. */
enum { H_CONNECTING, H_PROBE, H_LIVE, H_VERIFY, H_OK, H_FAILED, H_LOST };
enum { PH_RAMP, PH_HOLD, PH_VERIFY };

/* A connection's round trip, beside its engine slot. */
struct hconn {
    uint8_t step;
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

_Static_assert(sizeof(struct hold_counts) <= PROCS_COUNTS_MAX, "a child's counts fit a message");

/* A child's state: the engine thread's t->d. */
struct child {
    struct payload pl;
    uint64_t t0;
    struct hconn *conns;
    int phase;
    uint32_t probing, verifying;
    int verify_asked;
    uint64_t next_progress;
    struct hold_counts c;
};

static inline struct child *CH(const struct eng_thread *t) { return t->d; }

static inline uint32_t ms_since(const struct child *h, uint64_t now)
{
    return (uint32_t)((now - h->t0) / 1000000u);
}

static void send_msg(struct eng_thread *t, int type)
{
    CH(t)->c.attempted = t->attempts;
    procs_send(t->wakefd, type, &CH(t)->c, sizeof CH(t)->c);
}

static struct hold_why *why(struct child *h, uint32_t i)
{
    return h->conns[i].step == H_PROBE ? &h->c.probe_why : &h->c.lost_why;
}

/* Connection i failed its round trip (or was dropped while held): count it once. */
static void lose(struct eng_thread *t, uint32_t i)
{
    struct child *h = CH(t);
    uint8_t step = h->conns[i].step;
    if (step == H_PROBE) {
        h->probing--;
        h->c.probe_failed++;
    } else if (step == H_VERIFY) {
        h->verifying--;
        h->c.lost++;
    } else if (step == H_LIVE) {
        h->c.dropped++; /* closed while held idle */
        h->c.lost++;
    }
    h->conns[i].step = step == H_PROBE ? H_FAILED : H_LOST;
    eng_close(t, i, 0);
}

static void write_probe(struct eng_thread *t, uint32_t i, int step, uint64_t now)
{
    struct child *h = CH(t);
    h->conns[i].t_ms = ms_since(h, now);
    h->conns[i].step = (uint8_t)step;
    /* A fresh or idle socket has room for one small request: a short write means the
     * connection is broken. */
    ssize_t w = write(t->conns[i].fd, h->pl.req, h->pl.req_len);
    if (w == (ssize_t)h->pl.req_len)
        return;
    if (w < 0 && (errno == ECONNRESET || errno == EPIPE))
        why(h, i)->resets++;
    lose(t, i);
}

static void resolved(struct eng_thread *t, uint64_t now)
{
    struct child *h = CH(t);
    if (h->c.connected + h->c.failed == t->n)
        h->c.t_connected_ns = now;
}

static void connected(struct eng_thread *t, uint32_t i, uint64_t now)
{
    struct child *h = CH(t);
    h->c.connected++;
    h->probing++;
    resolved(t, now);
    write_probe(t, i, H_PROBE, now);
}

static void connect_failed(struct eng_thread *t, uint32_t i, int err, uint64_t now)
{
    struct child *h = CH(t);
    h->c.failed++;
    errno_count(&h->c.errnos, err);
    h->conns[i].step = H_FAILED;
    resolved(t, now);
}

/* A whole reply arrived on i, rc its verdict (a reply with more bytes behind it in the
 * same read is not the one asked for). */
static void replied(struct eng_thread *t, uint32_t i, int rc, uint64_t now)
{
    struct child *h = CH(t);
    int probe = h->conns[i].step == H_PROBE;
    if (rc != RX_OK) {
        why(h, i)->mismatches++;
        lose(t, i);
        return;
    }
    if (probe) {
        h->probing--;
        h->c.live++;
        h->conns[i].step = H_LIVE;
        if (h->c.live + h->c.probe_failed + h->c.failed == t->n)
            h->c.t_live_ns = now;
    } else {
        h->verifying--;
        h->c.survived++;
        h->conns[i].step = H_OK;
    }
}

static int on_bytes(struct eng_thread *t, uint32_t i, const char *d, size_t len, uint64_t now)
{
    struct child *h = CH(t);
    uint8_t step = h->conns[i].step;
    if (step != H_PROBE && step != H_VERIFY) {
        why(h, i)->mismatches++; /* bytes on an idle connection: it is gone */
        lose(t, i);
        return ENG_GONE;
    }
    int rc = reply_next(&h->pl, &t->rx[i], &d, &len);
    if (rc == RX_NEED_MORE)
        return ENG_MORE;
    replied(t, i, rc == RX_OK && len == 0 ? RX_OK : RX_MISMATCH, now);
    return t->conns[i].state == EC_OPEN ? ENG_MORE : ENG_GONE;
}

static void on_closed(struct eng_thread *t, uint32_t i, int kind, int err, uint64_t now)
{
    (void)err, (void)now;
    if (kind == ERR_CLOSED)
        why(CH(t), i)->closed++;
    else
        why(CH(t), i)->resets++;
    lose(t, i);
}

static void on_events(struct eng_thread *t, uint32_t i, uint32_t events)
{
    uint64_t now = 0;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        eng_read(t, i, events, &now);
}

static void scan_timeouts(struct eng_thread *t, uint64_t now)
{
    struct child *h = CH(t);
    uint32_t limit = (uint32_t)t->e->o->timeout_ms, ms = ms_since(h, now);
    for (uint32_t i = 0; i < t->n; i++) {
        uint8_t step = h->conns[i].step;
        if (t->conns[i].state == EC_OPEN && (step == H_PROBE || step == H_VERIFY) &&
            ms - h->conns[i].t_ms > limit) {
            why(h, i)->timeouts++;
            lose(t, i);
        }
    }
}

/* Interrupted while setting up: whatever is still connecting or probing does not count. */
static void cut_setup(struct eng_thread *t)
{
    struct child *h = CH(t);
    for (uint32_t i = 0; i < t->n; i++) {
        uint8_t state = t->conns[i].state;
        if (state == EC_CONNECTING || (state == EC_OPEN && h->conns[i].step == H_PROBE)) {
            h->c.interrupted++;
            h->conns[i].step = H_FAILED;
            eng_close(t, i, 0);
        }
    }
    h->probing = 0;
}

/* Verify: one more round trip on every live connection. */
static void start_verify(struct eng_thread *t, uint64_t now)
{
    struct child *h = CH(t);
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->conns[i].state == EC_OPEN && h->conns[i].step == H_LIVE) {
            h->verifying++;
            h->c.verified++;
            write_probe(t, i, H_VERIFY, now);
        }
    }
    h->phase = PH_VERIFY;
}

/* Ramp (connect and probe every connection, or stop early when told to verify), hold
 * (idle, watching for connections the server closes), verify. */
static int turn(struct eng_thread *t, uint64_t now)
{
    struct child *h = CH(t);
    if (h->phase == PH_RAMP) {
        if (now >= h->next_progress) {
            send_msg(t, PROCS_PROGRESS);
            h->next_progress = now + REPORT_NS;
        }
        if (!h->verify_asked && (t->attempts < t->n || t->pending || h->probing))
            return 0;
        if (h->verify_asked)
            cut_setup(t);
        t->connecting = 0;
        t->next_scan = ENG_NO_LIMIT; /* nothing to time out while held */
        send_msg(t, PROCS_READY);
        h->phase = PH_HOLD;
    }
    if (h->phase == PH_HOLD && h->verify_asked) {
        start_verify(t, now);
        t->next_scan = now + SCAN_NS;
    }
    if (h->phase != PH_VERIFY || h->verifying)
        return 0;
    send_msg(t, PROCS_FINAL);
    return 1;
}

static uint64_t next_wakeup(const struct eng_thread *t, uint64_t now)
{
    const struct child *h = CH(t);
    if (h->phase == PH_RAMP)
        return h->next_progress;
    return h->phase == PH_HOLD ? now + 1000000000ull : ENG_NO_LIMIT;
}

/* The parent's GO: verify. */
static void woken(struct eng_thread *t)
{
    if (procs_take_go(t->wakefd))
        CH(t)->verify_asked = 1;
}

static const struct eng_driver hold_driver = {
    .name = "hold",
    .max_pending = MAX_PENDING_CONNECTS, .scan_ns = SCAN_NS,
    /* the loop */
    .turn = turn, .next_wakeup = next_wakeup, .woken = woken,
    /* connections */
    .connected = connected, .connect_failed = connect_failed,
    .on_events = on_events, .on_bytes = on_bytes, .on_closed = on_closed, .scan = scan_timeouts,
};

struct hold_run {
    const struct load_opts *o;
    uint64_t start_ns;
};

/* Child k: one engine loop over its share of the connections (numbered from the shares
 * before it, for --source), paced as share k of --procs from the start. */
static void child_main(int ctl, int index, void *arg)
{
    const struct hold_run *run = arg;
    const struct load_opts *o = run->o;
    uint64_t k = (uint64_t)index, start_ns = run->start_ns;
    uint32_t n = (uint32_t)(o->connections / o->procs + (k < o->connections % o->procs));
    uint64_t first_index = k * (o->connections / o->procs) +
                           (k < o->connections % o->procs ? k : o->connections % o->procs);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(runctl_fd());
    struct engine e = {.o = o, .drv = &hold_driver, .nthreads = 1};
    struct eng_thread t = {.first_index = first_index, .epfd = -1, .wakefd = -1};
    struct child h = {.t0 = clock_ns(), .c.target = n};
    h.next_progress = h.t0 + REPORT_NS;
    h.conns = calloc(n ? n : 1, sizeof *h.conns);
    e.t = &t;
    t.d = &h;
    if (!h.conns || payload_init(&h.pl, o->proto, o->expect, o->size, 1, &o->http, 0) < 0 ||
        eng_thread_init(&e, &t, 0, n, ctl, start_ns, k, o->procs) < 0)
        _exit(4);
    engine_loop(&t, 1);
    /* exit() frees everything else; nothing to tidy in a process that ends. */
    _exit(0);
}

/* ---- the parent ---- */

static void sum_counts(const struct procs *ps, struct hold_counts *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < ps->k; i++) {
        const struct hold_counts *c = (const struct hold_counts *)ps->p[i].counts;
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

/* The set-up's progress line, on a terminal. */
static void progress(const struct procs *ps, uint64_t now, void *arg)
{
    const struct hold_run *run = arg;
    struct hold_counts s;
    if (!runctl_progress() || run->o->json)
        return;
    sum_counts(ps, &s);
    fprintf(stderr, "[%6.1fs] %" PRIu64 " of %" PRIu64 " connected, %" PRIu64 " live, %" PRIu64
                    " failed\n",
            (double)(now - run->start_ns) / 1e9, s.connected, run->o->connections, s.live,
            s.failed + s.probe_failed);
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


/* Wait for every child to be set up, hold for -d, have them verify, wait for their
 * final counts; then reap them. */
static void supervise(struct procs *ps, struct hold_run *run, struct hold_result *r)
{
    const struct load_opts *o = run->o;
    int sigs = procs_wait(ps, PROCS_READY, UINT64_MAX, progress, run);
    uint64_t held_from = clock_ns();
    if (sigs) {
        r->interrupted = 1;
    } else {
        if (runctl_progress() && !o->json)
            fprintf(stderr, "[%6.1fs] all set up; holding for %.1fs\n",
                    (double)(held_from - run->start_ns) / 1e9, (double)o->duration_ms / 1e3);
        runctl_wait(held_from + o->duration_ms * 1000000ull);
        r->interrupted = runctl_signals() > 0;
    }
    r->held_s = (double)(clock_ns() - held_from) / 1e9;
    procs_go(ps);
    /* A child needs at most --timeout for its round trips (and the rest of its setup,
     * when interrupted); past that, with some slack, it is lost. */
    uint64_t deadline = clock_ns() + (o->timeout_ms + 5000) * 1000000ull;
    for (;;) {
        int before = runctl_signals();
        procs_wait(ps, PROCS_FINAL, deadline, NULL, NULL);
        if (runctl_signals() == before || clock_ns() >= deadline)
            break;
        r->interrupted = 1; /* Ctrl-C while verifying: keep waiting, it is bounded */
    }
    procs_reap(ps);
    r->lost_procs = ps->lost;
}

/* Each process holds its share plus a few descriptors of its own. */
static int check_file_limit(const struct load_opts *o)
{
    uint64_t limit = load_raise_nofile();
    uint64_t share = (o->connections + o->procs - 1) / o->procs;
    if (share + 32 <= limit)
        return 0;
    uint64_t room = limit > 64 ? limit - 32 : 32;
    fprintf(stderr,
            "wharf hold: %" PRIu64 " connections per process, but the file limit is %" PRIu64
            ": use --procs %" PRIu64 " or more (or raise 'ulimit -n')\n",
            share, limit, (o->connections + room - 1) / room);
    return -1;
}

static int hold_run(const struct load_opts *o)
{
    if (check_file_limit(o) < 0)
        return 2;
    if (runctl_init() < 0) {
        perror("wharf hold: signals");
        return 1;
    }
    struct procs *ps = calloc(1, sizeof *ps);
    struct hold_run run = {.o = o, .start_ns = clock_ns()};
    uint64_t start = run.start_ns;
    if (!ps || procs_spawn(ps, (int)o->procs, sizeof(struct hold_counts), child_main, &run) < 0) {
        free(ps);
        return 1;
    }
    struct hold_result r = {0};
    supervise(ps, &run, &r);
    sum_counts(ps, &r.s);
    r.connect_s = r.s.t_connected_ns > start ? (double)(r.s.t_connected_ns - start) / 1e9 : 0;
    r.live_s = r.s.t_live_ns > start ? (double)(r.s.t_live_ns - start) / 1e9 : 0;
    if (o->json)
        print_json(o, &r);
    else
        print_text(o, &r);
    free(ps);
    int ok = r.s.survived == o->connections && !r.lost_procs;
    return ok || o->allow_errors ? 0 : 1;
}

int hold_main(int argc, char **argv)
{
    return load_main(CMD_HOLD, argc, argv, hold_run);
}
