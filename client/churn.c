/* churn: connections per second. Each of -c loops runs cycles: connect, R round trips
 * (sequential), close the way --close says, and start over. One epoll loop per thread.
 *
 * Who closes first decides who holds TIME_WAIT:
 *   client  the client closes after the last reply (TIME_WAIT on the client; with
 *           --linger0 an RST instead, and no TIME_WAIT at all);
 *   server  http only: the last request says 'Connection: close', wharfd answers and
 *           closes, the client waits for that EOF, then closes (TIME_WAIT on the server);
 *   half    the client shuts down its sending side, wharfd answers what it had and
 *           closes, the client waits for that EOF (TIME_WAIT on the client, since its
 *           FIN went first) -- what raw, line and frame can do, as wharfd closes those
 *           only at the client's EOF.
 * A loop whose connect fails (EADDRNOTAVAIL when the ephemeral ports are all in
 * TIME_WAIT, ECONNREFUSED, ...) waits RETRY_DELAY before its next attempt, so a
 * failing setup is counted, not spun on. The loop, the connects and the threads are
 * the engine's (engine.h); this file is what a cycle does. */
#include "churn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/hist.h"
#include "engine.h"
#include "ivlog.h"
#include "payload.h"

#define RETRY_DELAY_NS (10 * 1000000ull)
#define SCAN_NS (20 * 1000000ull)

enum { PH_RUN, PH_DRAIN };
enum { CC_CONNECTING, CC_REQ, CC_EOF }; /* where a cycle is, once its connect began */
/* The engine's counters and histograms (eng_stats) as churn uses them. */
enum { CONNECTED, COMPLETED, REPLIES };
enum { CLAT, RLAT, CYC };

/* A loop's current cycle, beside its engine slot. */
struct cconn {
    uint8_t step;      /* CC_* */
    uint32_t reqs_done;
    uint32_t unsent;   /* bytes of the current request not yet written */
    uint64_t t0;       /* the cycle's connect() */
    uint64_t t_phase;  /* when the current wait began (timeouts) */
    uint64_t t_req;    /* the current request's send time */
};

struct cthread {
    struct cconn *conns;
    int phase;
    uint64_t active;   /* cycles under way */
    uint64_t end_ns, drain_deadline;
};

struct churn {
    struct payload pl;      /* every request but a --close server connection's last */
    struct payload pl_last; /* http --close server: the same with 'Connection: close' */
    uint64_t shown_done, shown_ns; /* the main thread's last progress line */
};

static inline struct cthread *CT(const struct eng_thread *t) { return t->d; }

static void end_cycle(struct eng_thread *t, uint32_t i, int rst)
{
    eng_close(t, i, rst);
    CT(t)->active--;
}

/* A cycle failed: count it (by kind, and by errno when there is one), start over. */
static void fail(struct eng_thread *t, uint32_t i, int kind, int err, uint64_t now)
{
    ctr_add(&t->st->err[kind], 1);
    if (err)
        errno_count(&t->st->errnos, err);
    end_cycle(t, i, 0);
    if (kind == ERR_CONNECT)
        eng_queue_at(t, i, now + RETRY_DELAY_NS);
    else
        eng_queue(t, i);
}

/* The cycle is done; rst: close with an RST (--linger0). */
static void complete(struct eng_thread *t, uint32_t i, uint64_t now, int rst)
{
    struct cthread *ct = CT(t);
    end_cycle(t, i, rst);
    ctr_add(&t->st->c[COMPLETED], 1);
    hist_record(&t->st->h[CYC], now - ct->conns[i].t0);
    t->st->last_ns = now;
    eng_queue(t, i);
}

static const struct payload *request_of(const struct eng_thread *t, uint32_t i)
{
    const struct churn *ch = t->e->d;
    const struct load_opts *o = t->e->o;
    if (o->close_mode == CLOSE_SERVER && CT(t)->conns[i].reqs_done + 1 == o->per_conn)
        return &ch->pl_last;
    return &ch->pl;
}

static int flush(struct eng_thread *t, uint32_t i, uint64_t now)
{
    const struct payload *p = request_of(t, i);
    struct cconn *c = &CT(t)->conns[i];
    while (c->unsent) {
        ssize_t w = write(t->conns[i].fd, p->req + p->req_len - c->unsent, c->unsent);
        if (w > 0) {
            c->unsent -= (uint32_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return 0;
        fail(t, i, ERR_WRITE, w < 0 ? errno : EPIPE, now);
        return -1;
    }
    return 0;
}

static void send_request(struct eng_thread *t, uint32_t i, uint64_t now)
{
    struct cconn *c = &CT(t)->conns[i];
    c->step = CC_REQ;
    c->t_req = c->t_phase = now;
    c->unsent = (uint32_t)request_of(t, i)->req_len;
    flush(t, i, now);
}

/* After the last reply (or none): close as --close says. */
static void finish_requests(struct eng_thread *t, uint32_t i, uint64_t now)
{
    const struct load_opts *o = t->e->o;
    if (o->close_mode == CLOSE_CLIENT) {
        complete(t, i, now, o->linger0);
        return;
    }
    if (o->close_mode == CLOSE_HALF && shutdown(t->conns[i].fd, SHUT_WR) < 0) {
        fail(t, i, ERR_WRITE, errno, now);
        return;
    }
    CT(t)->conns[i].step = CC_EOF;
    CT(t)->conns[i].t_phase = now;
}

static void starting(struct eng_thread *t, uint32_t i, uint64_t now)
{
    struct cconn *c = &CT(t)->conns[i];
    CT(t)->active++;
    c->t0 = c->t_phase = now;
    c->step = CC_CONNECTING;
}

static void connect_failed(struct eng_thread *t, uint32_t i, int err, uint64_t now)
{
    fail(t, i, ERR_CONNECT, err, now);
}

static void connected(struct eng_thread *t, uint32_t i, uint64_t now)
{
    struct cconn *c = &CT(t)->conns[i];
    ctr_add(&t->st->c[CONNECTED], 1);
    hist_record(&t->st->h[CLAT], now - c->t0);
    ivlog_record(t, now - c->t0, c->t0);
    c->reqs_done = 0;
    if (t->e->o->per_conn == 0)
        finish_requests(t, i, now);
    else
        send_request(t, i, now);
}

/* One reply: count it, then the next request or the close. ENG_GONE when closed. */
static int take_reply(struct eng_thread *t, uint32_t i, int rc, uint64_t now)
{
    struct cconn *c = &CT(t)->conns[i];
    if (rc == RX_OK) {
        ctr_add(&t->st->c[REPLIES], 1);
        hist_record(&t->st->h[RLAT], now - c->t_req);
    } else {
        ctr_add(&t->st->err[ERR_MISMATCH], 1);
    }
    if (++c->reqs_done < t->e->o->per_conn)
        send_request(t, i, now);
    else
        finish_requests(t, i, now);
    return t->conns[i].state == EC_OPEN ? ENG_OK : ENG_GONE;
}

static int mismatch(struct eng_thread *t, uint32_t i, uint64_t now)
{
    fail(t, i, ERR_MISMATCH, 0, now);
    return ENG_GONE;
}

static int on_bytes(struct eng_thread *t, uint32_t i, const char *d, size_t len, uint64_t now)
{
    struct cconn *c = &CT(t)->conns[i];
    if (c->step != CC_REQ)
        return mismatch(t, i, now); /* bytes nobody asked for */
    while (c->step == CC_REQ) {
        int rc = reply_next(request_of(t, i), &t->rx[i], &d, &len);
        if (rc == RX_NEED_MORE)
            break;
        if (rc == RX_GARBLED || c->unsent)
            return mismatch(t, i, now);
        if (take_reply(t, i, rc, now) == ENG_GONE)
            return ENG_GONE;
    }
    if (len)
        return mismatch(t, i, now); /* more than was asked for */
    /* Waiting for the server's close: read on to the EOF. */
    return c->step == CC_EOF ? ENG_MORE : ENG_OK;
}

static void on_closed(struct eng_thread *t, uint32_t i, int kind, int err, uint64_t now)
{
    if (kind == ERR_CLOSED && CT(t)->conns[i].step == CC_EOF)
        complete(t, i, now, 0);
    else
        fail(t, i, kind, err, now);
}

static void on_events(struct eng_thread *t, uint32_t i, uint32_t events)
{
    uint64_t now = clock_ns();
    if ((events & EPOLLOUT) && CT(t)->conns[i].unsent && flush(t, i, now) < 0)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        eng_read(t, i, events, &now);
}

static void scan_timeouts(struct eng_thread *t, uint64_t now)
{
    uint64_t limit = t->e->o->timeout_ms * 1000000ull;
    for (uint32_t i = 0; i < t->n; i++) {
        const struct cconn *c = &CT(t)->conns[i];
        if (t->conns[i].state == EC_OPEN && now - c->t_phase > limit)
            fail(t, i, ERR_TIMEOUT, 0, now);
    }
}

static int turn(struct eng_thread *t, uint64_t now)
{
    struct cthread *ct = CT(t);
    int stop = atomic_load_explicit(&t->e->stop, memory_order_relaxed);
    if (ct->phase == PH_RUN && (stop || now >= ct->end_ns || t->attempts >= t->quota)) {
        ct->phase = PH_DRAIN;
        t->connecting = 0;
        ct->drain_deadline = now + t->e->o->timeout_ms * 1000000ull + 2 * SCAN_NS;
    }
    return ct->phase == PH_DRAIN &&
           (ct->active == 0 || stop >= 2 || now >= ct->drain_deadline);
}

static uint64_t next_wakeup(const struct eng_thread *t, uint64_t now)
{
    (void)now;
    return CT(t)->phase == PH_RUN ? CT(t)->end_ns : CT(t)->drain_deadline;
}

static int thread_init(struct eng_thread *t)
{
    const struct load_opts *o = t->e->o;
    struct cthread *ct = calloc(1, sizeof *ct);
    t->d = ct;
    if (!ct)
        return -1;
    ct->conns = calloc(t->n ? t->n : 1, sizeof *ct->conns);
    if (!ct->conns)
        return -1;
    t->attempt_limit = t->quota; /* -n counts connections */
    uint64_t run = o->duration_set || !o->requests ? o->duration_ms * 1000000ull : ENG_NO_LIMIT;
    ct->end_ns = run == ENG_NO_LIMIT ? ENG_NO_LIMIT : t->e->t0 + run;
    return 0;
}

static void thread_free(struct eng_thread *t)
{
    struct cthread *ct = CT(t);
    if (!ct)
        return;
    free(ct->conns);
    free(ct);
    t->d = NULL;
}

/* ---- the report ---- */

static void derive(const struct engine *e, struct eng_totals *r)
{
    uint64_t until = r->last_ns ? r->last_ns : clock_ns();
    r->elapsed_s = (double)(until - e->t0) / 1e9;
    r->per_sec = r->elapsed_s > 0 ? (double)r->c[COMPLETED] / r->elapsed_s : 0;
    r->cpu_us = r->c[COMPLETED]
                    ? (e->cpu.user_s + e->cpu.sys_s) * 1e6 / (double)r->c[COMPLETED]
                    : 0.0;
}

static const char *time_wait_side(const struct load_opts *o)
{
    if (o->close_mode == CLOSE_SERVER)
        return "server";
    return o->linger0 ? "none" : "client";
}

static void print_text(const struct engine *e, const struct eng_totals *r)
{
    const struct load_opts *o = e->o;
    FILE *f = stdout;
    fprintf(f, "wharf churn %s: %d thread%s, %" PRIu64 " loops, %" PRIu64
               " request%s per connection, close %s%s (TIME_WAIT: %s)\n",
            e->target, e->nthreads, e->nthreads == 1 ? "" : "s", o->connections, o->per_conn,
            o->per_conn == 1 ? "" : "s", close_mode_name(o->close_mode),
            o->linger0 ? " with RST" : "", time_wait_side(o));
    report_latency_text(f, "Connect", &r->h[CLAT]);
    if (o->per_conn)
        report_latency_text(f, "Request", &r->h[RLAT]);
    report_latency_text(f, "Cycle", &r->h[CYC]);
    fprintf(f, "  %" PRIu64 " connections in %.2fs (%" PRIu64 " attempts, %" PRIu64
               " connected), %" PRIu64 " replies\n",
            r->c[COMPLETED], r->elapsed_s, r->attempts, r->c[CONNECTED], r->c[REPLIES]);
    report_errors_text(f, r->err, r->errors);
    fprintf(f, "  Failures by errno: ");
    errno_print_text(f, &r->errnos);
    fputc('\n', f);
    engine_text_tail(f, e, r);
}

static void print_json(const struct engine *e, const struct eng_totals *r)
{
    const struct load_opts *o = e->o;
    FILE *f = stdout;
    fprintf(f, "{\"command\":\"churn\",\"target\":\"%s\",\"proto\":\"%s\",\"threads\":%d,"
               "\"loops\":%" PRIu64 ",\"requests_per_conn\":%" PRIu64 ",\"close\":\"%s\","
               "\"linger0\":%s,\"time_wait\":\"%s\",\"duration_s\":%.6f,\"interrupted\":%s,",
            e->target, proto_name(o->proto), e->nthreads, o->connections, o->per_conn,
            close_mode_name(o->close_mode), o->linger0 ? "true" : "false", time_wait_side(o),
            r->elapsed_s, e->interrupted ? "true" : "false");
    /* Where the run sits in time, for wharf merge's overlap check. */
    fprintf(f, "\"start_epoch\":%.3f,", (double)ivlog_wall_of(e->t0) / 1e9);
    fprintf(f, "\"attempts\":%" PRIu64 ",\"connected\":%" PRIu64 ",\"completed\":%" PRIu64
               ",\"replies\":%" PRIu64 ",\"connections_per_sec\":%.2f,",
            r->attempts, r->c[CONNECTED], r->c[COMPLETED], r->c[REPLIES], r->per_sec);
    static const char *const hists[] = {"connect_latency", "request_latency", "cycle_latency",
                                        NULL};
    engine_json_tail(f, e, r, hists, "failures_by_errno", "us_per_connection", r->cpu_us);
}

static int failed(const struct engine *e, const struct eng_totals *r, int ran)
{
    (void)ran;
    return (r->errors || !r->c[COMPLETED]) && !e->o->allow_errors;
}

/* ---- the main thread ---- */

static void progress(struct engine *e, uint64_t now)
{
    struct churn *ch = e->d;
    if (!runctl_progress() || e->o->json)
        return;
    uint64_t done = engine_sum(e, COMPLETED);
    if (!ch->shown_ns)
        ch->shown_ns = e->t0;
    double dt = (double)(now - ch->shown_ns) / 1e9;
    fprintf(stderr, "[%6.1fs] %10.0f conn/s  %" PRIu64 " errors\n", (double)(now - e->t0) / 1e9,
            dt > 0 ? (double)(done - ch->shown_done) / dt : 0.0, engine_errors(e));
    ch->shown_done = done;
    ch->shown_ns = now;
}

static int run(struct engine *e)
{
    if (ivlog_begin(e, e->t0, e->t0) < 0) {
        atomic_store(&e->stop, 2);
        engine_wake_all(e);
        return -1;
    }
    engine_wait_done(e, e->t0 + 1000000000ull, progress);
    return 0;
}

static const struct eng_driver churn_driver = {
    .name = "churn", .conn_noun = "loops",
    .limit_hint = "",
    .max_pending = 0, .scan_ns = SCAN_NS, .source_by_attempt = 1,
    /* threads */
    .thread_init = thread_init, .thread_free = thread_free,
    /* the loop */
    .turn = turn, .next_wakeup = next_wakeup,
    /* connections */
    .starting = starting, .connected = connected, .connect_failed = connect_failed,
    .on_events = on_events, .on_bytes = on_bytes, .on_closed = on_closed, .scan = scan_timeouts,
    /* the run and its report */
    .main = run, .derive = derive, .print_text = print_text, .print_json = print_json,
    .failed = failed, .csv_hist = CLAT, .ivlog_what = "connect latency",
    .rate_lines = "Connections/sec: %10.2f\n", /* (the byte rates are bench's) */
    .cpu_line = "Client CPU:      %10.2f us/connection (user %.2fs, sys %.2fs)\n",
};

/* --start-at: the run (connects included: churn has no ramp) begins at that wall clock
 * time. -1 when it has passed (reported). Ctrl-C meanwhile ends wharf at once. */
static int wait_start(const struct load_opts *o)
{
    struct timespec now, at = {(time_t)o->start_at,
                               (long)((o->start_at - (double)(time_t)o->start_at) * 1e9)};
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec > at.tv_sec || (now.tv_sec == at.tv_sec && now.tv_nsec >= at.tv_nsec)) {
        fprintf(stderr, "wharf churn: --start-at %.3f has passed (now %.3f)\n", o->start_at,
                (double)now.tv_sec + (double)now.tv_nsec / 1e9);
        return -1;
    }
    int rc;
    while ((rc = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL)) == EINTR)
        ;
    if (rc != 0) {
        fprintf(stderr, "wharf churn: --start-at: %s\n", strerror(rc));
        return -1;
    }
    return 0;
}

static int churn_run(const struct load_opts *o)
{
    if (o->start_at && wait_start(o) < 0)
        return 1;
    struct churn ch = {0};
    int http_last_close = o->close_mode == CLOSE_SERVER;
    int status = 1;
    if (payload_init(&ch.pl, o->proto, o->expect, o->size, 1, &o->http, 0) < 0 ||
        payload_init(&ch.pl_last, o->proto, o->expect, o->size, 1, &o->http,
                     http_last_close) < 0)
        fprintf(stderr, "wharf churn: out of memory\n");
    else
        status = engine_run(o, &churn_driver, &ch);
    payload_free(&ch.pl);
    payload_free(&ch.pl_last);
    return status;
}

int churn_main(int argc, char **argv)
{
    return load_main(CMD_CHURN, argc, argv, churn_run);
}
