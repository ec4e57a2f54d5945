/* bench: throughput and latency, as a driver of the engine (engine.h).
 *
 * A connection keeps up to --pipeline requests in flight. Requests are all the same
 * bytes, precomputed once, --pipeline copies back to back, so refilling a window of n
 * is one write of the last n copies. Replies are read into the thread's buffer and cut
 * by the protocol module; each pops the send time of the oldest request from the
 * connection's ring (replies come back in order). With --rate, requests go out on a
 * constant schedule (common/rate.h) and latency counts from the intended send time.
 *
 * Lifecycle: every thread ramps its connections up (paced by --connect-rate), says it
 * is ready; the main thread then sets one start time for all, and the threads run until
 * the end time, -n, or Ctrl-C, then drain: no new requests, wait for the replies of
 * those in flight (up to --timeout). */
#include "bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/hist.h"
#include "bench_state.h"
#include "dgram_bench.h"
#include "engine.h"
#include "ivlog.h"
#include "payload.h"
#include "script.h"
#include "sysio.h"

#define MAX_PENDING_CONNECTS 256              /* per thread: SYNs in flight at once */
#define RECONNECT_DELAY_NS (100 * 1000000ull) /* after a failed connect */
#define SCAN_NS (20 * 1000000ull)             /* timeout checks */

static inline void ctr_sub1(ctr_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

static void connect_failed(struct eng_thread *t, uint32_t i, int err, uint64_t now)
{
    struct bthread *bt = BT(t);
    ctr_add(&t->st->err[ERR_CONNECT], 1);
    errno_count(&t->st->errnos, err);
    if (bt->phase <= PH_RUN)
        eng_queue_at(t, i, now + RECONNECT_DELAY_NS);
}

/* The connection is gone: every request in flight on it failed with kind (or one
 * error if none was), and it reconnects while the run goes on. */
static void teardown(struct eng_thread *t, uint32_t i, int kind)
{
    struct bthread *bt = BT(t);
    struct bconn *c = &bt->conns[i];
    eng_close(t, i, 0);
    ctr_add(&t->st->err[kind], c->inflight ? c->inflight : 1);
    bt->inflight_total -= c->inflight;
    c->inflight = 0;
    c->head = 0;
    c->unsent = 0;
    c->want_write = 0;
    buf_clear(&c->resp);
    ctr_sub1(&t->st->c[LIVE]);
    if (bt->phase <= PH_RUN)
        eng_queue(t, i);
}

/* Write the requests not yet written: they are the last `unsent` bytes of the
 * precomputed copies. */
static void flush(struct eng_thread *t, uint32_t i)
{
    const struct payload *pl = &BB(t)->pl;
    struct bconn *c = &BT(t)->conns[i];
    const char *end = t->e->o->script_request ? buf_head(&c->out) + buf_len(&c->out)
                                              : pl->reqs + (size_t)BB(t)->P * pl->req_len;
    while (c->unsent) {
        ssize_t w = sys_write(t->conns[i].fd, end - c->unsent, c->unsent);
        if (w > 0) {
            ctr_add(&t->st->c[BYTES_OUT], (uint64_t)w);
            c->unsent -= (uint32_t)w;
            if (c->unsent) {
                c->want_write = 1; /* the socket is full; EPOLLOUT says when it is not */
                return;
            }
            break;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            c->want_write = 1;
            return;
        }
        teardown(t, i, ERR_WRITE);
        return;
    }
    c->want_write = 0;
}

/* How many requests connection i may send now: its window, its due rate slots, -n. */
static uint64_t window(const struct eng_thread *t, uint32_t i)
{
    const struct bthread *bt = BT(t);
    uint64_t n = BB(t)->P - bt->conns[i].inflight;
    if (t->e->o->rate)
        n = min_u64(n, rate_share(bt->due_k, i, t->n) - bt->conns[i].issued);
    if (t->quota != ENG_NO_LIMIT)
        n = min_u64(n, t->quota - bt->issued_total);
    return n;
}

/* Fill the connection's window: as many requests as it may have in flight, or (with
 * --rate) as many of its slots as are due; never past -n. One write for all. */
static void pump(struct eng_thread *t, uint32_t i, uint64_t now)
{
    struct bthread *bt = BT(t);
    if (bt->phase != PH_RUN || t->conns[i].state != EC_OPEN)
        return;
    uint32_t P = BB(t)->P;
    struct bconn *c = &bt->conns[i];
    uint64_t n = window(t, i);
    if (n && t->e->o->script_delay)
        n = bench_script_delay(t, i, now);
    if (n && t->e->o->script_request)
        n = bench_script_fill(t, i, n);
    if (!n)
        return;
    uint64_t *ring = bt->ring + (size_t)i * P;
    uint32_t pos = c->head + c->inflight;
    if (pos >= P)
        pos -= P;
    for (uint64_t k = 0; k < n; k++) {
        ring[pos] = now;
        if (++pos == P)
            pos = 0;
    }
    c->inflight += (uint32_t)n;
    c->issued += n;
    bt->issued_total += n;
    bt->inflight_total += n;
    ctr_add(&t->st->c[SENT], n);
    if (!t->e->o->script_request)
        c->unsent += (uint32_t)(n * BB(t)->pl.req_len);
    if (!c->want_write)
        flush(t, i);
}

static void connected(struct eng_thread *t, uint32_t i, uint64_t now)
{
    ctr_add(&t->st->c[LIVE], 1);
    hist_record(&t->st->h[CLAT], now - t->conns[i].t_connect);
    pump(t, i, now);
}

/* k replies on connection i, each a success received at now: pop their send times,
 * record their latencies one by one (a reply's receive time is its read's). Returns
 * how many were in the measured time. */
static uint64_t count_ok(struct eng_thread *t, uint32_t i, uint32_t k, uint64_t now)
{
    struct bthread *bt = BT(t);
    struct bconn *c = &bt->conns[i];
    uint32_t P = BB(t)->P;
    const uint64_t *ring = bt->ring + (size_t)i * P;
    int rated = t->e->o->rate != 0;
    uint64_t m = c->issued - c->inflight; /* the first one's number on the connection */
    uint64_t measured = 0;
    for (uint32_t j = 0; j < k; j++, m++) {
        uint64_t from = rated ? rate_time(&bt->reqrate, i + m * t->n) : ring[c->head];
        uint64_t lat = now > from ? now - from : 0;
        if (++c->head == P)
            c->head = 0;
        if (from >= bt->measure_ns) {
            measured++;
            hist_record(&t->st->h[LAT], lat);
        }
        ivlog_record(t, lat, from);
    }
    c->inflight -= k;
    bt->inflight_total -= k;
    t->st->last_ns = now;
    ctr_add(&t->st->c[OK], measured);
    ctr_add(&t->st->c[WARM], k - measured);
    return measured;
}

/* One reply on connection i, rc its verdict: pop its send time, count it. */
static void count_reply(struct eng_thread *t, uint32_t i, int rc, uint64_t now)
{
    struct bthread *bt = BT(t);
    struct bconn *c = &bt->conns[i];
    if (rc == RX_OK) {
        if (count_ok(t, i, 1, now) && (t->rx[i].flags & RXF_NON2XX))
            ctr_add(&t->st->c[NON2XX], 1);
        return;
    }
    if (++c->head == BB(t)->P) /* never a success, warmup or not */
        c->head = 0;
    c->inflight--;
    bt->inflight_total--;
    t->st->last_ns = now;
    ctr_add(&t->st->err[reply_error_kind(&t->rx[i])], 1);
}

/* The server closed after a complete response (HTTP 'Connection: close', or a body
 * that ended with the close): reconnect; the requests sent behind it are lost -- counted,
 * never sent again. */
static void server_closed(struct eng_thread *t, uint32_t i)
{
    struct bthread *bt = BT(t);
    struct bconn *c = &bt->conns[i];
    ctr_add(&t->st->c[RECONN], 1);
    ctr_add(&t->st->c[LOST], c->inflight);
    bt->inflight_total -= c->inflight;
    c->inflight = c->head = c->unsent = 0;
    c->want_write = 0;
    buf_clear(&c->resp);
    eng_close(t, i, 0);
    ctr_sub1(&t->st->c[LIVE]);
    if (bt->phase <= PH_RUN)
        eng_queue(t, i);
}

/* Take every complete reply in data: the expected ones a read's worth at a time
 * (unless response() wants each one), the others one by one. */
static int on_bytes(struct eng_thread *t, uint32_t i, const char *data, size_t len, uint64_t now)
{
    struct bconn *c = &BT(t)->conns[i];
    const struct payload *pl = &BB(t)->pl;
    int each = t->e->o->script_response;
    ctr_add(&t->st->c[BYTES_IN], len);
    for (;;) {
        if (!each && c->inflight) {
            uint32_t k = reply_take_matched(pl, &t->rx[i], &data, &len, c->inflight);
            if (k)
                count_ok(t, i, k, now);
            if (k && !len)
                return ENG_OK; /* all taken, nothing partial left */
        }
        const char *from = data;
        int rc = reply_next(pl, &t->rx[i], &data, &len);
        if (each && rc != RX_GARBLED)
            bench_script_response(t, c, from, (size_t)(data - from), rc != RX_NEED_MORE);
        if (rc == RX_NEED_MORE)
            return ENG_OK;
        if (rc == RX_GARBLED || c->inflight == 0) {
            teardown(t, i, pl->proto == PROTO_HTTP ? ERR_HTTP : ERR_MISMATCH);
            return ENG_GONE;
        }
        count_reply(t, i, rc, now);
        if (t->rx[i].flags & RXF_CLOSE) {
            server_closed(t, i);
            return ENG_GONE;
        }
    }
}

static void on_closed(struct eng_thread *t, uint32_t i, int kind, int err, uint64_t now)
{
    (void)err;
    const struct payload *pl = &BB(t)->pl;
    int rc = kind == ERR_CLOSED && pl->ops->at_eof && BT(t)->conns[i].inflight
                 ? pl->ops->at_eof(pl, &t->rx[i])
                 : RX_NEED_MORE;
    if (rc == RX_NEED_MORE) {
        teardown(t, i, kind);
        return;
    }
    count_reply(t, i, rc, now);
    server_closed(t, i);
}

static void on_events(struct eng_thread *t, uint32_t i, uint32_t events)
{
    uint64_t now = 0;
    if ((events & EPOLLOUT) && BT(t)->conns[i].unsent)
        flush(t, i);
    if (t->conns[i].state != EC_OPEN || !(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    if (eng_read(t, i, events, &now) == 0 && now)
        pump(t, i, now);
}

/* --rate: hand the slots that came due to their connections (slot k goes to
 * connection k % n). */
static void distribute(struct eng_thread *t, uint64_t now)
{
    struct bthread *bt = BT(t);
    uint64_t k = min_u64(rate_due(&bt->reqrate, now), t->quota);
    if (k <= bt->due_k)
        return;
    uint64_t from = bt->due_k;
    bt->due_k = k;
    if (k - from >= t->n) {
        for (uint32_t i = 0; i < t->n; i++)
            pump(t, i, now);
    } else {
        for (uint64_t s = from; s < k; s++)
            pump(t, (uint32_t)(s % t->n), now);
    }
}

static void scan_timeouts(struct eng_thread *t, uint64_t now)
{
    struct bthread *bt = BT(t);
    uint64_t limit = t->e->o->timeout_ms * 1000000ull;
    uint32_t P = BB(t)->P;
    for (uint32_t i = 0; i < t->n; i++) {
        const struct bconn *c = &bt->conns[i];
        if (t->conns[i].state == EC_OPEN && c->inflight &&
            now - bt->ring[(size_t)i * P + c->head] > limit)
            teardown(t, i, ERR_TIMEOUT);
    }
}

/* The main thread announced the start: run. */
static void begin(struct eng_thread *t, uint64_t s, uint64_t now)
{
    struct bthread *bt = BT(t);
    struct bench *b = BB(t);
    bt->start_ns = s;
    bt->measure_ns = atomic_load_explicit(&b->measure_ns, memory_order_relaxed);
    bt->end_ns = atomic_load_explicit(&b->end_ns, memory_order_relaxed);
    bt->phase = PH_RUN;
    if (t->e->o->rate) {
        prctl(PR_SET_TIMERSLACK, 1000UL); /* this thread wakes within 1 us of a slot */
        rate_init(&bt->reqrate, s, t->e->o->rate, (uint64_t)t->id, (uint64_t)t->e->nthreads);
        distribute(t, now);
    } else {
        for (uint32_t i = 0; i < t->n; i++)
            pump(t, i, now);
    }
}

/* Time, -n or a signal ended the run: no new requests; wait for those in flight. */
static void drain(struct eng_thread *t, int stop, uint64_t now)
{
    struct bthread *bt = BT(t);
    const struct load_opts *o = t->e->o;
    if (o->rate && !stop)
        distribute(t, min_u64(now, bt->end_ns - 1)); /* slots due before the end go out */
    bt->phase = PH_DRAIN;
    t->connecting = 0;
    bt->drain_deadline = now + o->timeout_ms * 1000000ull + 2 * SCAN_NS;
    if (o->rate) {
        uint64_t due = min_u64(rate_due(&bt->reqrate, min_u64(now, bt->end_ns - 1)), t->quota);
        ctr_add(&t->st->c[BACKLOG], due > bt->issued_total ? due - bt->issued_total : 0);
    }
}

static int turn(struct eng_thread *t, uint64_t now)
{
    struct bthread *bt = BT(t);
    int stop = atomic_load_explicit(&t->e->stop, memory_order_relaxed);
    if (bt->phase == PH_RAMP) {
        if (stop) {
            bt->phase = PH_EXIT;
        } else {
            uint64_t s = atomic_load_explicit(&BB(t)->start_ns, memory_order_acquire);
            if (s && now >= s)
                begin(t, s, now);
        }
    }
    if (bt->phase == PH_RUN && (stop || now >= bt->end_ns || bt->issued_total >= t->quota))
        drain(t, stop, now);
    if (bt->phase == PH_DRAIN &&
        (bt->inflight_total == 0 || stop >= 2 || now >= bt->drain_deadline))
        bt->phase = PH_EXIT;
    if (bt->phase == PH_RUN && t->e->o->rate)
        distribute(t, now);
    if (bt->phase == PH_RUN && t->e->o->script_delay && now >= bt->next_due) {
        bt->next_due = ENG_NO_LIMIT; /* the pumps below set it again */
        for (uint32_t i = 0; i < t->n; i++)
            pump(t, i, now);
    }
    if (bt->phase != PH_EXIT)
        return 0;
    ctr_add(&t->st->c[UNANSWERED], bt->inflight_total);
    return 1;
}

static uint64_t next_wakeup(const struct eng_thread *t, uint64_t now)
{
    const struct bthread *bt = BT(t);
    (void)now;
    if (bt->phase == PH_RAMP) {
        uint64_t s = atomic_load_explicit(&BB(t)->start_ns, memory_order_acquire);
        return s ? s : ENG_NO_LIMIT;
    }
    if (bt->phase == PH_RUN) {
        uint64_t next = bt->end_ns;
        if (t->e->o->rate && bt->due_k < t->quota)
            next = min_u64(next, rate_time(&bt->reqrate, bt->due_k));
        if (t->e->o->script_delay)
            next = min_u64(next, bt->next_due);
        return next;
    }
    return bt->drain_deadline;
}

static int thread_init(struct eng_thread *t)
{
    struct bthread *bt = calloc(1, sizeof *bt);
    t->d = bt;
    if (!bt)
        return -1;
    bt->conns = calloc(t->n ? t->n : 1, sizeof *bt->conns);
    bt->ring = calloc((size_t)t->n * BB(t)->P + 1, sizeof *bt->ring);
    return bt->conns && bt->ring ? 0 : -1;
}

static void thread_free(struct eng_thread *t)
{
    struct bthread *bt = BT(t);
    if (!bt)
        return;
    for (uint32_t i = 0; bt->conns && i < t->n; i++)
        buf_release(&bt->conns[i].out), buf_release(&bt->conns[i].resp);
    free(bt->conns);
    free(bt->ring);
    free(bt);
    t->d = NULL;
}

/* ---- the report ---- */

static void derive(const struct engine *e, struct eng_totals *r)
{
    bench_derive(e, atomic_load(&((struct bench *)e->d)->measure_ns), r);
}

static int failed(const struct engine *e, const struct eng_totals *r, int ran)
{
    if (ran < 0 && !e->interrupted)
        return 1;
    return r->errors && !e->o->allow_errors;
}

/* ---- the main thread ---- */

static uint64_t live_now(const struct engine *e) { return engine_sum(e, LIVE); }

static void progress(struct engine *e, uint64_t now)
{
    struct bench *b = e->d;
    uint64_t start = atomic_load(&b->start_ns), measure = atomic_load(&b->measure_ns);
    bench_rps_sample(e, now);
    if (!runctl_progress() || e->o->json || now >= atomic_load(&b->end_ns))
        return;
    uint64_t done = engine_sum(e, OK) + engine_sum(e, WARM);
    if (!b->shown_ns)
        b->shown_ns = start;
    double dt = (double)(now - b->shown_ns) / 1e9;
    fprintf(stderr, "[%6.1fs]%s %10.0f req/s  %" PRIu64 " errors  %" PRIu64 " connections\n",
            (double)(now - start) / 1e9, now < measure ? " warmup" : "",
            dt > 0 ? (double)(done - b->shown_done) / dt : 0.0, engine_errors(e), live_now(e));
    b->shown_done = done;
    b->shown_ns = now;
}

/* No connection at all: say why, and stop the threads. */
static int nothing_connected(struct engine *e)
{
    struct errno_counts errs = {{0}};
    for (int i = 0; i < e->nthreads; i++)
        errno_merge(&errs, &e->t[i].st->errnos);
    fprintf(stderr, "wharf bench: no connection to %s could be made (", e->o->target_text);
    errno_print_text(stderr, &errs);
    fprintf(stderr, ")\n");
    atomic_store(&e->stop, 2);
    engine_wake_all(e);
    return -1;
}

/* Ramp, then one start time for every thread, then wait for the end. */
static int run(struct engine *e)
{
    const struct load_opts *o = e->o;
    struct bench *b = e->d;
    if (engine_wait_ready(e, live_now) < 0)
        return -1;
    if (live_now(e) == 0)
        return nothing_connected(e);
    uint64_t start = clock_ns() + 1000000, measure = start + o->warmup_ms * 1000000ull;
    if (o->start_at && ivlog_start_at(e, &start, &measure) < 0)
        return -1;
    uint64_t run_ns =
        o->duration_set || !o->requests ? o->duration_ms * 1000000ull : ENG_NO_LIMIT;
    uint64_t end = run_ns == ENG_NO_LIMIT ? ENG_NO_LIMIT : measure + run_ns;
    atomic_store_explicit(&b->measure_ns, measure, memory_order_relaxed);
    atomic_store_explicit(&b->end_ns, end, memory_order_relaxed);
    atomic_store_explicit(&b->start_ns, start, memory_order_release);
    engine_cpu_mark(e);
    if (ivlog_begin(e, start, measure) < 0) {
        atomic_store(&e->stop, 2);
        engine_wake_all(e);
        return -1;
    }
    engine_wake_all(e);
    engine_wait_done(e, start + 1000000000ull, progress);
    return 0;
}

static const struct eng_driver bench_driver = {
    .name = "bench", .conn_noun = "connections",
    .limit_hint = " (raise 'ulimit -n', or run several wharf processes)",
    .max_pending = MAX_PENDING_CONNECTS, .scan_ns = SCAN_NS,
    /* threads */
    .thread_init = thread_init, .thread_free = thread_free,
    /* the loop */
    .turn = turn, .next_wakeup = next_wakeup,
    /* connections */
    .connected = connected, .connect_failed = connect_failed,
    .on_events = on_events, .on_bytes = on_bytes, .on_closed = on_closed, .scan = scan_timeouts,
    /* the run and its report */
    .main = run, .derive = derive, .print_text = bench_print_text, .print_json = bench_print_json,
    .failed = failed, .csv_hist = LAT, .ivlog_what = "request latency",
    .rate_lines = "Requests/sec: %12.2f\nTransfer/sec: %8.2f MiB in, %.2f MiB out\n",
    .cpu_line = "Client CPU:   %8.2f us/request (user %.2fs, sys %.2fs)\n",
};

static int bench_run(const struct load_opts *o)
{
    if (o->proto == PROTO_UDP)
        return dgram_bench_run(o); /* datagrams: matched by number, lost, reordered */
    struct bench b = {.P = (uint32_t)o->pipeline};
    if (o->script && script_prepare((struct load_opts *)o))
        return 2;
    if (o->script_request && o->script_batch > b.P) /* a batch is in flight at once */
        b.P = (uint32_t)o->script_batch;
    if (payload_init(&b.pl, o->proto, o->expect, o->size, o->pipeline, &o->http, 0) < 0) {
        fprintf(stderr, "wharf bench: out of memory\n");
        payload_free(&b.pl);
        return 1;
    }
    int status = engine_run(o, &bench_driver, &b);
    payload_free(&b.pl);
    bench_rps_free(&b.rps);
    if (o->script && script_failed())
        status = 2;
    script_close();
    return status;
}

int bench_main(int argc, char **argv)
{
    return load_main(CMD_BENCH, argc, argv, bench_run);
}
