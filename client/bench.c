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
    if (bt->ph.phase <= PH_RUN)
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
    bt->ph.inflight_total -= c->inflight;
    c->inflight = 0;
    c->head = 0;
    c->unsent = 0;
    c->want_write = 0;
    buf_clear(&c->resp);
    ctr_sub1(&t->st->c[LIVE]);
    if (bt->ph.phase <= PH_RUN)
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
    const struct bconn *c = &BT(t)->conns[i];
    return bench_window(t, i, BB(t)->P, c->inflight, c->issued);
}

/* Fill the connection's window: as many requests as it may have in flight, or (with
 * --rate) as many of its slots as are due; never past -n. One write for all. */
static void pump(struct eng_thread *t, uint32_t i, uint64_t now)
{
    struct bthread *bt = BT(t);
    if (bt->ph.phase != PH_RUN || t->conns[i].state != EC_OPEN)
        return;
    struct bconn *c = &bt->conns[i];
    uint64_t n = window(t, i);
    if (n && t->e->o->script_delay)
        n = bench_script_delay(t, i, now);
    if (n && t->e->o->script_request)
        n = bench_script_fill(t, i, n);
    if (!n)
        return;
    uint32_t P = bt->rcap; /* after the script's fill: it may grow the rings */
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
    bt->ph.issued_total += n;
    bt->ph.inflight_total += n;
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
    uint32_t P = bt->rcap;
    const uint64_t *ring = bt->ring + (size_t)i * P;
    int rated = t->e->o->rate != 0;
    uint64_t m = c->issued - c->inflight; /* the first one's number on the connection */
    uint64_t measured = 0;
    for (uint32_t j = 0; j < k; j++, m++) {
        /* -R: from the intended send time, or the actual one when a script's batch sent
         * the request ahead of its slot (bench_script_fill). */
        uint64_t from = rated ? min_u64(rate_time(&bt->ph.reqrate, i + m * t->n), ring[c->head])
                              : ring[c->head];
        uint64_t lat = now > from ? now - from : 0;
        if (++c->head == P)
            c->head = 0;
        if (from >= bt->ph.measure_ns) {
            measured++;
            hist_record(&t->st->h[LAT], lat);
        }
        ivlog_record(t, lat, from);
    }
    c->inflight -= k;
    bt->ph.inflight_total -= k;
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
    if (++c->head == bt->rcap) /* never a success, warmup or not */
        c->head = 0;
    c->inflight--;
    bt->ph.inflight_total--;
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
    bt->ph.inflight_total -= c->inflight;
    c->inflight = c->head = c->unsent = 0;
    c->want_write = 0;
    buf_clear(&c->resp);
    eng_close(t, i, 0);
    ctr_sub1(&t->st->c[LIVE]);
    if (bt->ph.phase <= PH_RUN)
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
        if (t->e->o->script_request) /* a mix of methods: this response's decides */
            t->rx[i].head = bench_script_head(t, i) != 0;
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

static void scan_timeouts(struct eng_thread *t, uint64_t now)
{
    struct bthread *bt = BT(t);
    uint64_t limit = t->e->o->timeout_ms * 1000000ull;
    uint32_t P = bt->rcap;
    for (uint32_t i = 0; i < t->n; i++) {
        const struct bconn *c = &bt->conns[i];
        if (t->conns[i].state == EC_OPEN && c->inflight &&
            now - bt->ring[(size_t)i * P + c->head] > limit)
            teardown(t, i, ERR_TIMEOUT);
    }
}

/* The phase machine (bench_phase.c), and -s's delay(): connections whose wait ended. */
static int turn(struct eng_thread *t, uint64_t now)
{
    struct bthread *bt = BT(t);
    if (bench_phase_turn(t, now))
        return 1;
    if (bt->ph.phase == PH_RUN && t->e->o->script_delay && now >= bt->next_due) {
        bt->next_due = ENG_NO_LIMIT; /* the pumps below set it again */
        for (uint32_t i = 0; i < t->n; i++)
            pump(t, i, now);
    }
    return 0;
}

static uint64_t next_wakeup(const struct eng_thread *t, uint64_t now)
{
    uint64_t next = bench_phase_wakeup(t, now);
    if (BT(t)->ph.phase == PH_RUN && t->e->o->script_delay)
        next = min_u64(next, BT(t)->next_due);
    return next;
}

static int thread_init(struct eng_thread *t)
{
    struct bthread *bt = calloc(1, sizeof *bt);
    t->d = bt;
    if (!bt)
        return -1;
    bt->ph.pump = pump;
    bt->conns = calloc(t->n ? t->n : 1, sizeof *bt->conns);
    bt->rcap = BB(t)->P;
    bt->ring = calloc((size_t)t->n * bt->rcap + 1, sizeof *bt->ring);
    if (!bt->conns || !bt->ring)
        return -1;
    return t->e->o->script ? bench_script_thread_init(t) : 0;
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
    free(bt->heads);
    free(bt);
    t->d = NULL;
}

/* ---- the main thread ---- */

static void progress(struct engine *e, uint64_t now)
{
    double per_sec;
    bench_rps_sample(e, now);
    if (!bench_progress_rate(e, now, &per_sec))
        return;
    const struct bench_clock *clk = bench_clock_of(e);
    uint64_t start = atomic_load(&clk->start_ns), measure = atomic_load(&clk->measure_ns);
    fprintf(stderr, "[%6.1fs]%s %10.0f req/s  %" PRIu64 " errors  %" PRIu64 " connections\n",
            (double)(now - start) / 1e9, now < measure ? " warmup" : "", per_sec,
            engine_errors(e), bench_live(e));
}

/* No connection at all: say why. */
static void nothing_connected(const struct engine *e)
{
    struct errno_counts errs = {{0}};
    for (int i = 0; i < e->nthreads; i++)
        errno_merge(&errs, &e->t[i].st->errnos);
    fprintf(stderr, "wharf bench: no connection to %s could be made (", e->o->target_text);
    errno_print_text(stderr, &errs);
    fprintf(stderr, ")\n");
}

/* Ramp, then one start time for every thread, then wait for the end. */
static int run(struct engine *e)
{
    return bench_phase_main(e, 1, nothing_connected, progress);
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
    .main = run, .derive = bench_phase_derive,
    .print_text = bench_print_text, .print_json = bench_print_json,
    .failed = bench_failed, .csv_hist = LAT, .ivlog_what = "request latency",
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
