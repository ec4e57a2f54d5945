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

/* hold's counters in the engine's eng_stats (a failed connect is err[ERR_CONNECT] with
 * its errno, the connects started are the engine's attempts): a process's are gathered
 * by procs.c as threads' are. WHY_* after a *_WHY: why a connection failed its first
 * round trip, or was lost after it. */
enum { WHY_CLOSED, WHY_RESET, WHY_TIMEOUT, WHY_MISMATCH, WHY_KINDS };
enum {
    TARGET, CONNECTED, LIVE, PROBE_FAILED, DROPPED, VERIFIED, SURVIVED, LOST, INTERRUPTED,
    PROBE_WHY, LOST_WHY = PROBE_WHY + WHY_KINDS, HOLD_COUNTERS = LOST_WHY + WHY_KINDS
};
_Static_assert(HOLD_COUNTERS <= ENG_COUNTERS, "hold's counters fit eng_stats");
/* eng_stats.mark: when the last connection connected (or failed), and went live (or
 * failed); CLOCK_MONOTONIC. */
enum { AT_CONNECTED, AT_LIVE };

/* A connection's round trip, beside its engine slot: 4 bytes, as hold keeps tens of
 * thousands. t_ms wraps after 2^29 ms (6 days): timeouts are measured modulo that. */
#define T_MS_MASK ((1u << 29) - 1)
struct hconn {
    uint32_t step : 3;
    uint32_t t_ms : 29; /* when the current wait began, ms since the child started */
};

/* A child's state: the engine thread's t->d. */
struct child {
    struct payload pl;
    uint64_t t0;
    struct hconn *conns;
    int phase;
    uint32_t probing, verifying;
    int verify_asked;
    uint64_t next_progress;
};

static inline struct child *CH(const struct eng_thread *t) { return t->d; }

static inline uint32_t ms_since(const struct child *h, uint64_t now)
{
    return (uint32_t)((now - h->t0) / 1000000u) & T_MS_MASK;
}

static void count(struct eng_thread *t, int k) { ctr_add(&t->st->c[k], 1); }
static uint64_t counted(const struct eng_thread *t, int k) { return ctr_get(&t->st->c[k]); }

/* The first of the WHY_* counters for connection i: its probe's or its later loss's. */
static int why(const struct child *h, uint32_t i)
{
    return h->conns[i].step == H_PROBE ? PROBE_WHY : LOST_WHY;
}

/* Connection i failed its round trip (or was dropped while held): count it once. */
static void lose(struct eng_thread *t, uint32_t i)
{
    struct child *h = CH(t);
    uint8_t step = h->conns[i].step;
    if (step == H_PROBE) {
        h->probing--;
        count(t, PROBE_FAILED);
    } else if (step == H_VERIFY) {
        h->verifying--;
        count(t, LOST);
    } else if (step == H_LIVE) {
        count(t, DROPPED); /* closed while held idle */
        count(t, LOST);
    }
    h->conns[i].step = step == H_PROBE ? H_FAILED : H_LOST;
    eng_close(t, i, 0);
}

static void write_probe(struct eng_thread *t, uint32_t i, int step, uint64_t now)
{
    struct child *h = CH(t);
    h->conns[i].t_ms = ms_since(h, now);
    h->conns[i].step = (uint32_t)step;
    /* A fresh or idle socket has room for one small request: a short write means the
     * connection is broken. */
    ssize_t w = write(t->conns[i].fd, h->pl.req, h->pl.req_len);
    if (w == (ssize_t)h->pl.req_len)
        return;
    if (w < 0 && (errno == ECONNRESET || errno == EPIPE))
        count(t, why(h, i) + WHY_RESET);
    lose(t, i);
}

static void resolved(struct eng_thread *t, uint64_t now)
{
    if (counted(t, CONNECTED) + ctr_get(&t->st->err[ERR_CONNECT]) == t->n)
        t->st->mark[AT_CONNECTED] = now;
}

static void connected(struct eng_thread *t, uint32_t i, uint64_t now)
{
    struct child *h = CH(t);
    count(t, CONNECTED);
    h->probing++;
    resolved(t, now);
    write_probe(t, i, H_PROBE, now);
}

static void connect_failed(struct eng_thread *t, uint32_t i, int err, uint64_t now)
{
    struct child *h = CH(t);
    ctr_add(&t->st->err[ERR_CONNECT], 1);
    errno_count(&t->st->errnos, err);
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
        count(t, why(h, i) + WHY_MISMATCH);
        lose(t, i);
        return;
    }
    if (probe) {
        h->probing--;
        count(t, LIVE);
        h->conns[i].step = H_LIVE;
        if (counted(t, LIVE) + counted(t, PROBE_FAILED) + ctr_get(&t->st->err[ERR_CONNECT]) ==
            t->n)
            t->st->mark[AT_LIVE] = now;
    } else {
        h->verifying--;
        count(t, SURVIVED);
        h->conns[i].step = H_OK;
    }
}

static int on_bytes(struct eng_thread *t, uint32_t i, const char *d, size_t len, uint64_t now)
{
    struct child *h = CH(t);
    uint8_t step = h->conns[i].step;
    if (step != H_PROBE && step != H_VERIFY) {
        count(t, why(h, i) + WHY_MISMATCH); /* bytes on an idle connection: it is gone */
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
    count(t, why(CH(t), i) + (kind == ERR_CLOSED ? WHY_CLOSED : WHY_RESET));
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
            ((ms - h->conns[i].t_ms) & T_MS_MASK) > limit) {
            count(t, why(h, i) + WHY_TIMEOUT);
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
            count(t, INTERRUPTED);
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
            count(t, VERIFIED);
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
            procs_send(t, PROCS_PROGRESS);
            h->next_progress = now + REPORT_NS;
        }
        if (!h->verify_asked && (t->attempts < t->n || t->pending || h->probing))
            return 0;
        if (h->verify_asked)
            cut_setup(t);
        t->connecting = 0;
        t->next_scan = ENG_NO_LIMIT; /* nothing to time out while held */
        procs_send(t, PROCS_READY);
        h->phase = PH_HOLD;
    }
    if (h->phase == PH_HOLD && h->verify_asked) {
        start_verify(t, now);
        t->next_scan = now + SCAN_NS;
    }
    if (h->phase != PH_VERIFY || h->verifying)
        return 0;
    procs_send(t, PROCS_FINAL);
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
    struct eng_totals *sum; /* the parent's: the children's counts added up */
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
    struct child h = {.t0 = clock_ns()};
    h.next_progress = h.t0 + REPORT_NS;
    h.conns = calloc(n ? n : 1, sizeof *h.conns);
    e.t = &t;
    t.d = &h;
    if (!h.conns || payload_init(&h.pl, o->proto, o->expect, o->size, 1, &o->http, 0) < 0 ||
        eng_thread_init(&e, &t, 0, n, ctl, start_ns, k, o->procs) < 0)
        _exit(4);
    ctr_add(&t.st->c[TARGET], n);
    engine_loop(&t, 1);
    /* exit() frees everything else; nothing to tidy in a process that ends. */
    _exit(0);
}

/* ---- the parent ---- */

/* The children's counts added up (procs.c, as the engine adds up threads'). */
static void sum_counts(const struct procs *ps, struct eng_totals *s)
{
    eng_totals_init(s);
    procs_collect(ps, s);
}

/* The set-up's progress line, on a terminal. */
static void progress(const struct procs *ps, uint64_t now, void *arg)
{
    struct hold_run *run = arg;
    struct eng_totals *s = run->sum;
    if (!runctl_progress() || run->o->json)
        return;
    sum_counts(ps, s);
    fprintf(stderr, "[%6.1fs] %" PRIu64 " of %" PRIu64 " connected, %" PRIu64 " live, %" PRIu64
                    " failed\n",
            (double)(now - run->start_ns) / 1e9, s->c[CONNECTED], run->o->connections,
            s->c[LIVE], s->err[ERR_CONNECT] + s->c[PROBE_FAILED]);
}

struct hold_result {
    const struct eng_totals *s;
    double connect_s, live_s, held_s;
    int interrupted, lost_procs;
};

/* " (N closed, N reset, N timeout, N mismatch)": the WHY_* counters from `from`. */
static void print_why(const struct eng_totals *s, int from)
{
    const uint64_t *w = &s->c[from];
    printf(" (%" PRIu64 " closed, %" PRIu64 " reset, %" PRIu64 " timeout, %" PRIu64
           " mismatch)", w[WHY_CLOSED], w[WHY_RESET], w[WHY_TIMEOUT], w[WHY_MISMATCH]);
}

static void print_why_json(const char *name, const struct eng_totals *s, int from,
                           uint64_t total)
{
    const uint64_t *w = &s->c[from];
    printf("\"%s\":{\"total\":%" PRIu64 ",\"closed\":%" PRIu64 ",\"reset\":%" PRIu64
           ",\"timeout\":%" PRIu64 ",\"mismatch\":%" PRIu64 "}",
           name, total, w[WHY_CLOSED], w[WHY_RESET], w[WHY_TIMEOUT], w[WHY_MISMATCH]);
}

static void print_text(const struct load_opts *o, const struct hold_result *r)
{
    const struct eng_totals *s = r->s;
    const uint64_t *c = s->c;
    char target[ADDR_TEXT_MAX + 16];
    endpoint_format(&o->ep, target, sizeof target);
    printf("wharf hold %s: %" PRIu64 " connections, %" PRIu64 " process%s, %d source "
           "address%s, %" PRIu64 "-byte probes, expect %s\n",
           target, o->connections, o->procs, o->procs == 1 ? "" : "es",
           o->n_sources ? o->n_sources : 1, o->n_sources > 1 ? "es" : "", o->size,
           mode_name(o->expect));
    printf("  connected   %" PRIu64 " of %" PRIu64, c[CONNECTED], o->connections);
    if (s->mark[AT_CONNECTED])
        printf(" in %.2fs (%.0f/s)", r->connect_s, (double)c[CONNECTED] / r->connect_s);
    printf("\n  live        %" PRIu64 " (first round trip ok)", c[LIVE]);
    if (s->mark[AT_LIVE])
        printf(", all in %.2fs", r->live_s);
    printf("\n  failed      %" PRIu64 " connect (", s->err[ERR_CONNECT]);
    errno_print_text(stdout, &s->errnos);
    printf("), %" PRIu64 " first round trip", c[PROBE_FAILED]);
    print_why(s, PROBE_WHY);
    printf("\n  held        %.2fs idle; %" PRIu64 " closed by the server meanwhile\n", r->held_s,
           c[DROPPED]);
    printf("  survived    %" PRIu64 " of %" PRIu64 "; lost %" PRIu64, c[SURVIVED], c[LIVE],
           c[LOST]);
    print_why(s, LOST_WHY);
    printf("\n");
    if (r->interrupted)
        printf("  Interrupted by a signal: %" PRIu64 " connections never attempted, %" PRIu64
               " cut while being set up\n",
               o->connections - s->attempts, c[INTERRUPTED]);
    if (r->lost_procs)
        printf("  %d process%s died before reporting\n", r->lost_procs,
               r->lost_procs == 1 ? "" : "es");
}

static void print_json(const struct load_opts *o, const struct hold_result *r)
{
    const struct eng_totals *s = r->s;
    const uint64_t *c = s->c;
    char target[ADDR_TEXT_MAX + 16];
    endpoint_format(&o->ep, target, sizeof target);
    printf("{\"command\":\"hold\",\"target\":\"%s\",\"proto\":\"%s\",\"connections\":%" PRIu64
           ",\"procs\":%" PRIu64 ",\"sources\":%d,\"interrupted\":%s,",
           target, proto_name(o->proto), o->connections, o->procs,
           o->n_sources ? o->n_sources : 1, r->interrupted ? "true" : "false");
    printf("\"attempted\":%" PRIu64 ",\"connected\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"failed_by_errno\":",
           s->attempts, c[CONNECTED], s->err[ERR_CONNECT]);
    errno_print_json(stdout, &s->errnos);
    printf(",\"live\":%" PRIu64 ",\"probe_failed\":%" PRIu64 ",\"time_to_connect_s\":%.3f,"
           "\"time_to_live_s\":%.3f,\"held_s\":%.3f,\"dropped_while_held\":%" PRIu64
           ",\"verified\":%" PRIu64 ",\"survived\":%" PRIu64 ",",
           c[LIVE], c[PROBE_FAILED], s->mark[AT_CONNECTED] ? r->connect_s : -1.0,
           s->mark[AT_LIVE] ? r->live_s : -1.0, r->held_s, c[DROPPED], c[VERIFIED],
           c[SURVIVED]);
    print_why_json("probe_failures", s, PROBE_WHY, c[PROBE_FAILED]);
    printf(",");
    print_why_json("lost", s, LOST_WHY, c[LOST]);
    printf(",\"interrupted_setups\":%" PRIu64 ",\"lost_procs\":%d}\n", c[INTERRUPTED],
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
    struct hold_run run = {.o = o, .start_ns = clock_ns(), .sum = malloc(sizeof *run.sum)};
    uint64_t start = run.start_ns;
    if (!ps || !run.sum || procs_spawn(ps, (int)o->procs, child_main, &run) < 0) {
        if (!ps || !run.sum)
            fprintf(stderr, "wharf hold: out of memory\n");
        if (ps)
            procs_free(ps);
        free(ps);
        free(run.sum);
        return 1;
    }
    struct hold_result r = {.s = run.sum};
    supervise(ps, &run, &r);
    sum_counts(ps, run.sum);
    const uint64_t *at = run.sum->mark;
    r.connect_s = at[AT_CONNECTED] > start ? (double)(at[AT_CONNECTED] - start) / 1e9 : 0;
    r.live_s = at[AT_LIVE] > start ? (double)(at[AT_LIVE] - start) / 1e9 : 0;
    if (o->json)
        print_json(o, &r);
    else
        print_text(o, &r);
    int ok = run.sum->c[SURVIVED] == o->connections && !r.lost_procs;
    procs_free(ps);
    free(ps);
    free(run.sum);
    return ok || o->allow_errors ? 0 : 1;
}

int hold_main(int argc, char **argv)
{
    return load_main(CMD_HOLD, argc, argv, hold_run);
}
