/* dgram_bench: wharf bench udp://, as a driver of the engine (engine.h).
 *
 * Each "connection" is a connected datagram socket with up to --pipeline datagrams in
 * flight. Every request starts with its sequence number (payload.h: 8 decimal digits),
 * so replies are matched by number, not by order: a reply whose number is below one
 * already answered on its socket is counted as reordered; one whose number is not in
 * flight (answered already, or given up) as a stray (a duplicate or a late reply). A
 * datagram not answered within --timeout is lost: counted, its slot freed, never sent
 * again. With --rate, requests go out on a constant schedule (common/rate.h) and
 * latency counts from the intended send time, so a slow server is not hidden by
 * requests that were never sent (no coordinated omission); slots due while the window
 * is full are sent late, and counted as behind schedule at the end.
 *
 * Phases as bench's (bench_phase.c): ramp (sockets open at once), one start time for
 * all threads, run until the end time, -n or Ctrl-C, then drain: no new requests, wait
 * up to --timeout for those in flight. */
#include "dgram_bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/hist.h"
#include "bench_counters.h"
#include "bench_phase.h"
#include "engine.h"
#include "payload.h"

#define SCAN_NS (10 * 1000000ull) /* how often losses are looked for */

/* Counters past bench_counters.h's. */
enum { LOST = BENCH_COUNTERS, REORDERED, STRAY, SEND_FULL };

/* A datagram in flight: used while seq != 0 (seq is the number + 1). */
struct dslot {
    uint64_t seq;
    uint64_t from; /* latency counts from here: the send, or its slot of the schedule */
    uint64_t sent;
};

struct dconn {
    uint32_t inflight;
    uint64_t issued; /* datagrams sent on the socket (its next number) */
    uint64_t top;    /* highest number answered + 1 */
};

struct dthread {
    struct bench_phase ph; /* first: bench_phase.h */
    struct dconn *conns;
    struct dslot *slots;   /* n * P */
    char *req;             /* the request, its number stamped per send */
};

struct dbench {
    struct bench_clock clk; /* first: bench_phase.h */
    struct payload pl;
    uint32_t P;
};

static inline struct dthread *DT(const struct eng_thread *t) { return t->d; }
static inline struct dbench *DB(const struct eng_thread *t) { return t->e->d; }

static void stamp(char *p, uint64_t seq)
{
    uint64_t v = seq % UDP_SEQ_MOD;
    for (int k = UDP_SEQ_LEN - 1; k >= 0; k--, v /= 10)
        p[k] = (char)('0' + v % 10);
}

static int parse_seq(const char *p, size_t len, uint64_t *seq)
{
    uint64_t v = 0;
    if (len < UDP_SEQ_LEN)
        return -1;
    for (int k = 0; k < UDP_SEQ_LEN; k++) {
        if (p[k] < '0' || p[k] > '9')
            return -1;
        v = v * 10 + (uint64_t)(p[k] - '0');
    }
    *seq = v;
    return 0;
}

static struct dslot *free_slot(struct eng_thread *t, uint32_t i)
{
    uint32_t P = DB(t)->P;
    struct dslot *s = DT(t)->slots + (size_t)i * P;
    for (uint32_t k = 0; k < P; k++)
        if (!s[k].seq)
            return &s[k];
    return NULL;
}

/* Send one datagram numbered c->issued; 0, or -1 when the socket took none. */
static int send_one(struct eng_thread *t, uint32_t i, uint64_t now)
{
    struct dthread *dt = DT(t);
    struct dconn *c = &dt->conns[i];
    size_t len = DB(t)->pl.req_len;
    stamp(dt->req, c->issued);
    ssize_t w;
    do
        w = send(t->conns[i].fd, dt->req, len, MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno == EAGAIN || errno == ENOBUFS) {
            ctr_add(&t->st->c[SEND_FULL], 1); /* sent again when the window is pumped */
            return -1;
        }
        ctr_add(&t->st->err[ERR_WRITE], 1); /* ECONNREFUSED: an ICMP error came back */
        errno_count(&t->st->errnos, errno);
        return -1;
    }
    struct dslot *s = free_slot(t, i);
    uint64_t m = c->issued;
    s->seq = m + 1;
    s->sent = now;
    s->from = t->e->o->rate ? rate_time(&dt->ph.reqrate, i + m * t->n) : now;
    c->issued++;
    c->inflight++;
    dt->ph.issued_total++;
    dt->ph.inflight_total++;
    ctr_add(&t->st->c[SENT], 1);
    ctr_add(&t->st->c[BYTES_OUT], len);
    return 0;
}

static void pump(struct eng_thread *t, uint32_t i, uint64_t now)
{
    const struct dconn *c = &DT(t)->conns[i];
    if (DT(t)->ph.phase != PH_RUN || t->conns[i].state != EC_OPEN)
        return;
    for (uint64_t n = bench_window(t, i, DB(t)->P, c->inflight, c->issued); n; n--)
        if (send_one(t, i, now) < 0)
            return;
}

static void connected(struct eng_thread *t, uint32_t i, uint64_t now)
{
    ctr_add(&t->st->c[LIVE], 1);
    hist_record(&t->st->h[CLAT], now - t->conns[i].t_connect);
    pump(t, i, now);
}

static void connect_failed(struct eng_thread *t, uint32_t i, int err, uint64_t now)
{
    (void)i, (void)now;
    ctr_add(&t->st->err[ERR_CONNECT], 1);
    errno_count(&t->st->errnos, err);
}

static struct dslot *find_slot(struct eng_thread *t, uint32_t i, uint64_t seq)
{
    uint32_t P = DB(t)->P;
    struct dslot *s = DT(t)->slots + (size_t)i * P;
    for (uint32_t k = 0; k < P; k++)
        if (s[k].seq && (s[k].seq - 1) % UDP_SEQ_MOD == seq)
            return &s[k];
    return NULL;
}

/* One datagram from socket i. */
static void take_reply(struct eng_thread *t, uint32_t i, const char *d, size_t len, uint64_t now)
{
    struct dthread *dt = DT(t);
    struct dconn *c = &dt->conns[i];
    uint64_t seq;
    struct dslot *s = parse_seq(d, len, &seq) == 0 ? find_slot(t, i, seq) : NULL;
    ctr_add(&t->st->c[BYTES_IN], len);
    if (!s) {
        ctr_add(&t->st->c[STRAY], 1);
        return;
    }
    uint64_t m = s->seq - 1, from = s->from;
    s->seq = 0;
    c->inflight--;
    dt->ph.inflight_total--;
    t->st->last_ns = now;
    if (m + 1 < c->top)
        ctr_add(&t->st->c[REORDERED], 1);
    else
        c->top = m + 1;
    const char *p = d;
    if (reply_next(&DB(t)->pl, &t->rx[i], &p, &len) != RX_OK)
        ctr_add(&t->st->err[ERR_MISMATCH], 1);
    else if (from < dt->ph.measure_ns)
        ctr_add(&t->st->c[WARM], 1);
    else {
        ctr_add(&t->st->c[OK], 1);
        hist_record(&t->st->h[LAT], now > from ? now - from : 0);
    }
}

/* Read every datagram waiting (the socket is edge-triggered), then refill the window. */
static void on_events(struct eng_thread *t, uint32_t i, uint32_t events)
{
    (void)events;
    uint64_t now = 0;
    for (;;) {
        ssize_t n = recv(t->conns[i].fd, t->rbuf, ENG_RBUF_SIZE, MSG_DONTWAIT);
        if (n >= 0) {
            now = clock_ns();
            take_reply(t, i, t->rbuf, (size_t)n, now);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            break;
        /* An ICMP error (nothing listens there): counted, the socket stays. */
        ctr_add(&t->st->err[ERR_READ], 1);
        errno_count(&t->st->errnos, errno);
    }
    pump(t, i, now ? now : clock_ns());
}

static int on_bytes(struct eng_thread *t, uint32_t i, const char *d, size_t n, uint64_t now)
{
    take_reply(t, i, d, n, now);
    return ENG_OK;
}

static void on_closed(struct eng_thread *t, uint32_t i, int kind, int err, uint64_t now)
{
    (void)t, (void)i, (void)kind, (void)err, (void)now; /* datagram sockets see no EOF */
}

/* Datagrams older than --timeout are lost: counted, and their slots sent on. */
static void scan_losses(struct eng_thread *t, uint64_t now)
{
    struct dthread *dt = DT(t);
    uint64_t limit = t->e->o->timeout_ms * 1000000ull;
    uint32_t P = DB(t)->P;
    for (uint32_t i = 0; i < t->n; i++) {
        struct dslot *s = dt->slots + (size_t)i * P;
        uint32_t lost = 0;
        for (uint32_t k = 0; k < P; k++) {
            if (s[k].seq && now - s[k].sent > limit) {
                s[k].seq = 0;
                lost++;
            }
        }
        if (!lost)
            continue;
        ctr_add(&t->st->c[LOST], lost);
        dt->conns[i].inflight -= lost;
        dt->ph.inflight_total -= lost;
        pump(t, i, now);
    }
}

static int thread_init(struct eng_thread *t)
{
    struct dthread *dt = calloc(1, sizeof *dt);
    t->d = dt;
    if (!dt)
        return -1;
    dt->ph.pump = pump;
    dt->conns = calloc(t->n ? t->n : 1, sizeof *dt->conns);
    dt->slots = calloc((size_t)t->n * DB(t)->P + 1, sizeof *dt->slots);
    dt->req = malloc(DB(t)->pl.req_len + 1);
    if (dt->req)
        memcpy(dt->req, DB(t)->pl.req, DB(t)->pl.req_len);
    return dt->conns && dt->slots && dt->req ? 0 : -1;
}

static void thread_free(struct eng_thread *t)
{
    struct dthread *dt = DT(t);
    if (!dt)
        return;
    free(dt->conns);
    free(dt->slots);
    free(dt->req);
    free(dt);
    t->d = NULL;
}

/* ---- the report ---- */

static void print_text(const struct engine *e, const struct eng_totals *r)
{
    const struct load_opts *o = e->o;
    FILE *f = stdout;
    fprintf(f, "wharf bench %s: %d thread%s, %" PRIu64 " socket%s, %" PRIu64
               " datagrams in flight each, %" PRIu64 "-byte datagrams, expect %s\n",
            e->target, e->nthreads, e->nthreads == 1 ? "" : "s", o->connections,
            o->connections == 1 ? "" : "s", o->pipeline, o->size, mode_name(o->expect));
    if (o->rate)
        fprintf(f, "  constant rate %" PRIu64 " datagrams/s (latency from intended send "
                   "times)\n", o->rate);
    report_latency_text(f, "Latency", &r->h[LAT]);
    fprintf(f, "  %" PRIu64 " sent, %" PRIu64 " answered in %.2fs, %.2f MiB read, %.2f MiB "
               "written\n", r->c[SENT], r->c[OK] + r->c[WARM], r->elapsed_s,
            (double)r->c[BYTES_IN] / 1048576.0, (double)r->c[BYTES_OUT] / 1048576.0);
    fprintf(f, "  Lost: %" PRIu64 " (no reply within --timeout %" PRIu64 " ms; never "
               "retried)  Reordered: %" PRIu64 "  Stray (duplicate or late): %" PRIu64 "\n",
            r->c[LOST] + r->c[UNANSWERED], o->timeout_ms, r->c[REORDERED], r->c[STRAY]);
    if (r->c[SEND_FULL])
        fprintf(f, "  Send buffer full: %" PRIu64 " times (sent later)\n", r->c[SEND_FULL]);
    report_errors_text(f, r->err, r->errors);
    if (r->errors) {
        fprintf(f, "  Errors by errno: ");
        errno_print_text(f, &r->errnos);
        fputc('\n', f);
    }
    if (r->c[BACKLOG])
        fprintf(f, "  Behind schedule: %" PRIu64 " datagrams were due but never sent\n",
                r->c[BACKLOG]);
    engine_text_tail(f, e, r);
}

static void print_json(const struct engine *e, const struct eng_totals *r)
{
    const struct load_opts *o = e->o;
    FILE *f = stdout;
    fprintf(f, "{\"command\":\"bench\",\"target\":\"%s\",\"proto\":\"udp\",\"threads\":%d,"
               "\"connections\":%" PRIu64 ",\"pipeline\":%" PRIu64 ",\"size\":%" PRIu64
               ",\"rate\":%" PRIu64 ",\"expect\":\"%s\",\"warmup_s\":%.3f,"
               "\"duration_s\":%.6f,\"interrupted\":%s,",
            e->target, e->nthreads, o->connections, o->pipeline, o->size, o->rate,
            mode_name(o->expect), (double)o->warmup_ms / 1e3, r->elapsed_s,
            e->interrupted ? "true" : "false");
    fprintf(f, "\"requests\":{\"sent\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"warmup\":%" PRIu64
               ",\"backlog\":%" PRIu64 ",\"unanswered\":%" PRIu64 "},",
            r->c[SENT], r->c[OK], r->c[WARM], r->c[BACKLOG], r->c[UNANSWERED]);
    fprintf(f, "\"datagrams\":{\"lost\":%" PRIu64 ",\"reordered\":%" PRIu64
               ",\"stray\":%" PRIu64 ",\"send_buffer_full\":%" PRIu64 "},",
            r->c[LOST] + r->c[UNANSWERED], r->c[REORDERED], r->c[STRAY], r->c[SEND_FULL]);
    fprintf(f, "\"requests_per_sec\":%.2f,\"bytes\":{\"in\":%" PRIu64 ",\"out\":%" PRIu64
               "},\"mib_per_sec\":{\"in\":%.3f,\"out\":%.3f},",
            r->per_sec, r->c[BYTES_IN], r->c[BYTES_OUT], r->mib_in_s, r->mib_out_s);
    static const char *const hists[] = {"latency", "connect_latency", NULL};
    engine_json_tail(f, e, r, hists, "errnos", "us_per_request", r->cpu_us);
}

/* ---- the main thread ---- */

static void progress(struct engine *e, uint64_t now)
{
    double per_sec;
    if (!bench_progress_rate(e, now, &per_sec))
        return;
    uint64_t start = atomic_load(&bench_clock_of(e)->start_ns);
    fprintf(stderr, "[%6.1fs] %10.0f datagrams/s  %" PRIu64 " lost  %" PRIu64 " errors\n",
            (double)(now - start) / 1e9, per_sec, engine_sum(e, LOST), engine_errors(e));
}

static void no_socket(const struct engine *e)
{
    fprintf(stderr, "wharf bench: no udp socket for %s could be opened\n", e->o->target_text);
}

/* Ramp, one start time for every thread, the end (no --hdr-log over datagrams). */
static int run(struct engine *e)
{
    return bench_phase_main(e, 0, no_socket, progress);
}

static const struct eng_driver dgram_driver = {
    .name = "bench", .conn_noun = "sockets",
    .limit_hint = " (raise 'ulimit -n', or run several wharf processes)",
    .max_pending = 0, .scan_ns = SCAN_NS,
    .thread_init = thread_init, .thread_free = thread_free,
    .turn = bench_phase_turn, .next_wakeup = bench_phase_wakeup,
    .connected = connected, .connect_failed = connect_failed,
    .on_events = on_events, .on_bytes = on_bytes, .on_closed = on_closed, .scan = scan_losses,
    .main = run, .derive = bench_phase_derive,
    .print_text = print_text, .print_json = print_json,
    .failed = bench_failed, .csv_hist = LAT,
    .rate_lines = "Datagrams/sec: %11.2f\nTransfer/sec: %8.2f MiB in, %.2f MiB out\n",
    .cpu_line = "Client CPU:   %8.2f us/datagram (user %.2fs, sys %.2fs)\n",
};

int dgram_bench_run(const struct load_opts *o)
{
    struct dbench b = {.P = (uint32_t)o->pipeline};
    if (payload_init(&b.pl, PROTO_UDP, o->expect, o->size, 1, NULL, 0) < 0) {
        fprintf(stderr, "wharf bench: out of memory\n");
        payload_free(&b.pl);
        return 1;
    }
    int status = engine_run(o, &dgram_driver, &b);
    payload_free(&b.pl);
    return status;
}
