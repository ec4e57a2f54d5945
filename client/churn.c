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
 * failing setup is counted, not spun on. */
#include "churn.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/fdtable.h"
#include "../common/hist.h"
#include "../common/rate.h"
#include "load.h"
#include "payload.h"
#include "report.h"

#define RBUF_SIZE (64 * 1024)
#define MAX_EVENTS 512
#define RETRY_DELAY_NS (10 * 1000000ull)
#define SCAN_NS (20 * 1000000ull)
#define NO_LIMIT UINT64_MAX

enum { PH_RUN, PH_DRAIN, PH_EXIT };
enum { CC_IDLE, CC_QUEUED, CC_CONNECTING, CC_REQ, CC_EOF };

struct cconn {
    int fd;
    uint32_t gen;
    uint8_t state;
    uint32_t reqs_done;
    uint32_t unsent;   /* bytes of the current request not yet written */
    uint64_t t0;       /* the cycle's connect() */
    uint64_t t_phase;  /* when the current wait began (timeouts) */
    uint64_t t_req;    /* the current request's send time */
    uint64_t retry_at;
    struct reply_rx rx;
};

struct churn;

struct cthread {
    struct churn *ch;
    int id;
    pthread_t th;
    int epfd, evfd;
    uint32_t n;
    struct cconn *conns;
    char *rbuf;
    int phase;
    uint64_t quota, attempts, active;
    uint64_t end_ns, drain_deadline, next_scan, last_done_ns;
    struct rate crate;
    uint32_t *q, qhead, qlen;
    uint32_t *dq, dqhead, dqlen;
    struct hist *clat, *rlat, *cyc;
    struct errno_counts errnos;
    ctr_t connected, completed, replies, err[ERR_KINDS];
};

struct churn {
    const struct load_opts *o;
    struct payload pl;      /* every request but a --close server connection's last */
    struct payload pl_last; /* http --close server: the same with 'Connection: close' */
    int nthreads;
    struct cthread *t;
    uint64_t start_ns;
    _Atomic int stop;
    _Atomic int done;
};

static inline uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static inline uint32_t idx_of(const struct cthread *t, const struct cconn *c)
{
    return (uint32_t)(c - t->conns);
}

static void q_push(struct cthread *t, struct cconn *c)
{
    t->q[(t->qhead + t->qlen++) % t->n] = idx_of(t, c);
    c->state = CC_QUEUED;
}

static void dq_push(struct cthread *t, struct cconn *c, uint64_t when)
{
    c->retry_at = when;
    t->dq[(t->dqhead + t->dqlen++) % t->n] = idx_of(t, c);
    c->state = CC_QUEUED;
}

static void end_cycle(struct cthread *t, struct cconn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    reply_rx_reset(&c->rx, 0);
    t->active--;
}

/* A cycle failed: count it (by kind, and by errno when there is one), start over. */
static void fail(struct cthread *t, struct cconn *c, int kind, int err, uint64_t now)
{
    ctr_add(&t->err[kind], 1);
    if (err)
        errno_count(&t->errnos, err);
    end_cycle(t, c);
    if (kind == ERR_CONNECT)
        dq_push(t, c, now + RETRY_DELAY_NS);
    else
        q_push(t, c);
}

static void complete(struct cthread *t, struct cconn *c, uint64_t now)
{
    end_cycle(t, c);
    ctr_add(&t->completed, 1);
    hist_record(t->cyc, now - c->t0);
    t->last_done_ns = now;
    q_push(t, c);
}

static const struct payload *request_of(const struct cthread *t, const struct cconn *c)
{
    const struct churn *ch = t->ch;
    if (ch->o->close_mode == CLOSE_SERVER && c->reqs_done + 1 == ch->o->per_conn)
        return &ch->pl_last;
    return &ch->pl;
}

static int flush(struct cthread *t, struct cconn *c, uint64_t now)
{
    const struct payload *p = request_of(t, c);
    while (c->unsent) {
        ssize_t w = write(c->fd, p->req + p->req_len - c->unsent, c->unsent);
        if (w > 0) {
            c->unsent -= (uint32_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return 0;
        fail(t, c, ERR_WRITE, w < 0 ? errno : EPIPE, now);
        return -1;
    }
    return 0;
}

static void send_request(struct cthread *t, struct cconn *c, uint64_t now)
{
    c->state = CC_REQ;
    c->t_req = c->t_phase = now;
    c->unsent = (uint32_t)request_of(t, c)->req_len;
    flush(t, c, now);
}

/* After the last reply (or none): close as --close says. */
static void finish_requests(struct cthread *t, struct cconn *c, uint64_t now)
{
    const struct load_opts *o = t->ch->o;
    if (o->close_mode == CLOSE_CLIENT) {
        if (o->linger0) {
            load_close_rst(c->fd);
            c->fd = -1;
        }
        complete(t, c, now);
        return;
    }
    if (o->close_mode == CLOSE_HALF && shutdown(c->fd, SHUT_WR) < 0) {
        fail(t, c, ERR_WRITE, errno, now);
        return;
    }
    c->state = CC_EOF;
    c->t_phase = now;
}

static void on_connected(struct cthread *t, struct cconn *c, uint64_t now)
{
    ctr_add(&t->connected, 1);
    hist_record(t->clat, now - c->t0);
    c->reqs_done = 0;
    if (t->ch->o->per_conn == 0)
        finish_requests(t, c, now);
    else
        send_request(t, c, now);
}

static void start_cycle(struct cthread *t, struct cconn *c, uint64_t now)
{
    const struct churn *ch = t->ch;
    int in_progress = 0;
    uint64_t index = t->attempts * (uint64_t)ch->nthreads + (uint64_t)t->id;
    t->attempts++;
    t->active++;
    c->t0 = c->t_phase = now;
    c->state = CC_CONNECTING;
    c->fd = load_connect(ch->o, index, &in_progress);
    if (c->fd < 0) {
        int err = -c->fd;
        c->fd = -1;
        fail(t, c, ERR_CONNECT, err, now);
        return;
    }
    c->gen++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = (uint64_t)c->gen << 32 | idx_of(t, c)};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        fail(t, c, ERR_CONNECT, errno, now);
        return;
    }
    if (!in_progress)
        on_connected(t, c, now);
}

static void run_starts(struct cthread *t, uint64_t now)
{
    while (t->dqlen && t->conns[t->dq[t->dqhead]].retry_at <= now) {
        struct cconn *c = &t->conns[t->dq[t->dqhead]];
        t->dqhead = (t->dqhead + 1) % t->n;
        t->dqlen--;
        q_push(t, c);
    }
    if (t->ch->o->connect_rate)
        rate_cap_backlog(&t->crate, now, t->n);
    while (t->qlen && t->attempts < t->quota) {
        if (t->ch->o->connect_rate) {
            if (!rate_backlog(&t->crate, now))
                break;
            rate_take(&t->crate, 1);
        }
        struct cconn *c = &t->conns[t->q[t->qhead]];
        t->qhead = (t->qhead + 1) % t->n;
        t->qlen--;
        start_cycle(t, c, now);
    }
}

static void on_readable(struct cthread *t, struct cconn *c, uint32_t events)
{
    const struct load_opts *o = t->ch->o;
    int to_the_end = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    for (;;) {
        ssize_t n = read(c->fd, t->rbuf, RBUF_SIZE);
        uint64_t now = clock_ns();
        if (n == 0) {
            if (c->state == CC_EOF)
                complete(t, c, now);
            else
                fail(t, c, ERR_CLOSED, 0, now);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                fail(t, c, ERR_READ, errno, now);
            return;
        }
        if (c->state != CC_REQ) {
            fail(t, c, ERR_MISMATCH, 0, now); /* bytes nobody asked for */
            return;
        }
        const char *d = t->rbuf;
        size_t len = (size_t)n;
        while (c->state == CC_REQ) {
            int rc = reply_next(request_of(t, c), &c->rx, &d, &len);
            if (rc == RX_NEED_MORE)
                break;
            if (rc == RX_GARBLED || c->unsent) {
                fail(t, c, ERR_MISMATCH, 0, now);
                return;
            }
            if (rc == RX_OK) {
                ctr_add(&t->replies, 1);
                hist_record(t->rlat, now - c->t_req);
            } else {
                ctr_add(&t->err[ERR_MISMATCH], 1);
            }
            if (++c->reqs_done < o->per_conn) {
                send_request(t, c, now);
                if (c->fd < 0)
                    return;
            } else {
                finish_requests(t, c, now);
                if (c->state != CC_EOF)
                    return; /* closed and done */
            }
        }
        if (len) {
            fail(t, c, ERR_MISMATCH, 0, now); /* more than was asked for */
            return;
        }
        if ((size_t)n < RBUF_SIZE && !to_the_end && c->state != CC_EOF)
            return;
    }
}

static void on_event(struct cthread *t, uint64_t data, uint32_t events)
{
    struct cconn *c = &t->conns[(uint32_t)data];
    if (c->gen != (uint32_t)(data >> 32) || c->fd < 0)
        return;
    uint64_t now = clock_ns();
    if (c->state == CC_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = load_socket_error(c->fd);
        if (err) {
            fail(t, c, ERR_CONNECT, err, now);
            return;
        }
        on_connected(t, c, now);
        if (c->fd < 0 || c->state == CC_QUEUED)
            return;
    }
    if ((events & EPOLLOUT) && c->unsent && flush(t, c, now) < 0)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        on_readable(t, c, events);
}

static void scan_timeouts(struct cthread *t, uint64_t now)
{
    uint64_t limit = t->ch->o->timeout_ms * 1000000ull;
    for (uint32_t i = 0; i < t->n; i++) {
        struct cconn *c = &t->conns[i];
        if (c->fd < 0 || now - c->t_phase <= limit)
            continue;
        if (c->state == CC_CONNECTING)
            fail(t, c, ERR_CONNECT, ETIMEDOUT, now);
        else if (c->state == CC_REQ || c->state == CC_EOF)
            fail(t, c, ERR_TIMEOUT, 0, now);
    }
}

static void *churn_thread(void *arg)
{
    struct cthread *t = arg;
    struct churn *ch = t->ch;
    struct epoll_event ev[MAX_EVENTS];
    for (uint32_t i = 0; i < t->n; i++)
        q_push(t, &t->conns[i]);
    t->next_scan = clock_ns() + SCAN_NS;
    for (;;) {
        uint64_t now = clock_ns();
        int stop = atomic_load_explicit(&ch->stop, memory_order_relaxed);
        if (t->phase == PH_RUN && (stop || now >= t->end_ns || t->attempts >= t->quota)) {
            t->phase = PH_DRAIN;
            t->drain_deadline = now + ch->o->timeout_ms * 1000000ull + 2 * SCAN_NS;
        }
        if (t->phase == PH_DRAIN && (t->active == 0 || stop >= 2 || now >= t->drain_deadline))
            break;
        if (t->phase == PH_RUN)
            run_starts(t, now);
        if (now >= t->next_scan) {
            scan_timeouts(t, now);
            t->next_scan = now + SCAN_NS;
        }
        now = clock_ns();
        uint64_t next = t->next_scan;
        if (t->phase == PH_RUN) {
            next = min_u64(next, t->end_ns);
            if (t->qlen && t->attempts < t->quota)
                next = min_u64(next, ch->o->connect_rate ? rate_next(&t->crate) : now);
            if (t->dqlen)
                next = min_u64(next, t->conns[t->dq[t->dqhead]].retry_at);
        } else {
            next = min_u64(next, t->drain_deadline);
        }
        uint64_t wait = next > now ? next - now : 0;
        int n = load_epoll_wait(t->epfd, ev, MAX_EVENTS, wait);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 == UINT64_MAX) {
                uint64_t v;
                if (read(t->evfd, &v, sizeof v) < 0) {
                    /* the wake-up was the message */
                }
                continue;
            }
            on_event(t, ev[i].data.u64, ev[i].events);
        }
    }
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->conns[i].fd >= 0)
            close(t->conns[i].fd);
        t->conns[i].fd = -1;
        reply_rx_reset(&t->conns[i].rx, 1);
    }
    atomic_fetch_add(&ch->done, 1);
    return NULL;
}

static int thread_init(struct churn *ch, struct cthread *t, int id, uint32_t n, uint64_t quota)
{
    const struct load_opts *o = ch->o;
    memset(t, 0, sizeof *t);
    t->ch = ch;
    t->id = id;
    t->n = n;
    t->quota = quota;
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->conns = calloc(n, sizeof *t->conns);
    t->q = calloc(n, sizeof *t->q);
    t->dq = calloc(n, sizeof *t->dq);
    t->rbuf = malloc(RBUF_SIZE);
    t->clat = malloc(sizeof *t->clat);
    t->rlat = malloc(sizeof *t->rlat);
    t->cyc = malloc(sizeof *t->cyc);
    if (t->epfd < 0 || t->evfd < 0 || !t->conns || !t->q || !t->dq || !t->rbuf || !t->clat ||
        !t->rlat || !t->cyc)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &ev) < 0)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        t->conns[i].fd = -1;
    hist_init(t->clat);
    hist_init(t->rlat);
    hist_init(t->cyc);
    uint64_t run = o->duration_set || !o->requests ? o->duration_ms * 1000000ull : NO_LIMIT;
    t->end_ns = run == NO_LIMIT ? NO_LIMIT : ch->start_ns + run;
    if (o->connect_rate)
        rate_init(&t->crate, ch->start_ns, o->connect_rate, (uint64_t)id, (uint64_t)ch->nthreads);
    return 0;
}

/* n threads not set up yet, or NULL. Their descriptors are -1, not 0 (a valid
 * descriptor), because thread_free runs on every one, also those whose setup never
 * began. */
static struct cthread *threads_new(int n)
{
    struct cthread *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; t && i < n; i++)
        t[i].epfd = t[i].evfd = -1;
    return t;
}

static void thread_free(struct cthread *t)
{
    if (t->epfd >= 0) /* descriptor 0 is valid: stdin may have been closed */
        close(t->epfd);
    if (t->evfd >= 0)
        close(t->evfd);
    free(t->conns);
    free(t->q);
    free(t->dq);
    free(t->rbuf);
    free(t->clat);
    free(t->rlat);
    free(t->cyc);
}

static void wake_all(struct churn *ch)
{
    uint64_t one = 1;
    for (int i = 0; i < ch->nthreads; i++)
        if (write(ch->t[i].evfd, &one, sizeof one) < 0) {
            /* already awake */
        }
}

struct churn_result {
    uint64_t attempts, connected, completed, replies, err[ERR_KINDS], errors;
    uint64_t last_done_ns;
    double elapsed_s, cps;
    struct cpu_use cpu;
    struct hist *clat, *rlat, *cyc;
    struct errno_counts errnos;
    int interrupted;
};

static void collect(struct churn *ch, struct churn_result *r)
{
    for (int i = 0; i < ch->nthreads; i++) {
        struct cthread *t = &ch->t[i];
        r->attempts += t->attempts;
        r->connected += ctr_get(&t->connected);
        r->completed += ctr_get(&t->completed);
        r->replies += ctr_get(&t->replies);
        for (int k = 0; k < ERR_KINDS; k++)
            r->err[k] += ctr_get(&t->err[k]);
        if (t->last_done_ns > r->last_done_ns)
            r->last_done_ns = t->last_done_ns;
        hist_merge(r->clat, t->clat);
        hist_merge(r->rlat, t->rlat);
        hist_merge(r->cyc, t->cyc);
        errno_merge(&r->errnos, &t->errnos);
    }
    for (int k = 0; k < ERR_KINDS; k++)
        r->errors += r->err[k];
}

static const char *time_wait_side(const struct load_opts *o)
{
    if (o->close_mode == CLOSE_SERVER)
        return "server";
    return o->linger0 ? "none" : "client";
}

static void print_text(const struct churn *ch, const struct churn_result *r)
{
    const struct load_opts *o = ch->o;
    char target[ADDR_TEXT_MAX + 16];
    endpoint_format(&o->ep, target, sizeof target);
    FILE *f = stdout;
    fprintf(f, "wharf churn %s: %d thread%s, %" PRIu64 " loops, %" PRIu64
               " request%s per connection, close %s%s (TIME_WAIT: %s)\n",
            target, ch->nthreads, ch->nthreads == 1 ? "" : "s", o->connections, o->per_conn,
            o->per_conn == 1 ? "" : "s", close_mode_name(o->close_mode),
            o->linger0 ? " with RST" : "", time_wait_side(o));
    report_latency_text(f, "Connect", r->clat);
    if (o->per_conn)
        report_latency_text(f, "Request", r->rlat);
    report_latency_text(f, "Cycle", r->cyc);
    fprintf(f, "  %" PRIu64 " connections in %.2fs (%" PRIu64 " attempts, %" PRIu64
               " connected), %" PRIu64 " replies\n",
            r->completed, r->elapsed_s, r->attempts, r->connected, r->replies);
    fprintf(f, "  Errors: %" PRIu64, r->errors);
    for (int k = 0; k < ERR_KINDS; k++)
        fprintf(f, "%s%s %" PRIu64, k ? ", " : " (", err_kind_name(k), r->err[k]);
    fprintf(f, ")\n  Failures by errno: ");
    errno_print_text(f, &r->errnos);
    fputc('\n', f);
    if (r->interrupted)
        fprintf(f, "  Interrupted: the run was cut short by a signal\n");
    fprintf(f, "Connections/sec: %10.2f\n", r->cps);
    fprintf(f, "Client CPU:      %10.2f us/connection (user %.2fs, sys %.2fs)\n",
            r->completed ? (r->cpu.user_s + r->cpu.sys_s) * 1e6 / (double)r->completed : 0.0,
            r->cpu.user_s, r->cpu.sys_s);
}

static void print_json(const struct churn *ch, const struct churn_result *r)
{
    const struct load_opts *o = ch->o;
    char target[ADDR_TEXT_MAX + 16];
    endpoint_format(&o->ep, target, sizeof target);
    FILE *f = stdout;
    fprintf(f, "{\"command\":\"churn\",\"target\":\"%s\",\"proto\":\"%s\",\"threads\":%d,"
               "\"loops\":%" PRIu64 ",\"requests_per_conn\":%" PRIu64 ",\"close\":\"%s\","
               "\"linger0\":%s,\"time_wait\":\"%s\",\"duration_s\":%.6f,\"interrupted\":%s,",
            target, proto_name(o->proto), ch->nthreads, o->connections, o->per_conn,
            close_mode_name(o->close_mode), o->linger0 ? "true" : "false", time_wait_side(o),
            r->elapsed_s, r->interrupted ? "true" : "false");
    fprintf(f, "\"attempts\":%" PRIu64 ",\"connected\":%" PRIu64 ",\"completed\":%" PRIu64
               ",\"replies\":%" PRIu64 ",\"connections_per_sec\":%.2f,",
            r->attempts, r->connected, r->completed, r->replies, r->cps);
    fprintf(f, "\"connect_latency\":");
    report_latency_json(f, r->clat);
    fprintf(f, ",\"request_latency\":");
    report_latency_json(f, r->rlat);
    fprintf(f, ",\"cycle_latency\":");
    report_latency_json(f, r->cyc);
    fprintf(f, ",\"errors\":{\"total\":%" PRIu64, r->errors);
    for (int k = 0; k < ERR_KINDS; k++)
        fprintf(f, ",\"%s\":%" PRIu64, err_kind_name(k), r->err[k]);
    fprintf(f, "},\"failures_by_errno\":");
    errno_print_json(f, &r->errnos);
    fprintf(f, ",\"cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f,\"us_per_connection\":%.3f}}\n",
            r->cpu.user_s, r->cpu.sys_s,
            r->completed ? (r->cpu.user_s + r->cpu.sys_s) * 1e6 / (double)r->completed : 0.0);
}

static void run(struct churn *ch, struct churn_result *r)
{
    int tty = runctl_progress() && !ch->o->json;
    uint64_t next_tick = ch->start_ns + 1000000000ull, last = 0, last_ns = ch->start_ns;
    int signals = 0;
    while (atomic_load(&ch->done) < ch->nthreads) {
        int s = runctl_wait(min_u64(clock_ns() + 20000000ull, next_tick));
        if (s != signals) {
            signals = s;
            r->interrupted = 1;
            atomic_store(&ch->stop, s >= 2 ? 2 : 1);
            wake_all(ch);
        }
        uint64_t now = clock_ns();
        if (now < next_tick)
            continue;
        next_tick += 1000000000ull;
        if (!tty)
            continue;
        uint64_t done = 0, errors = 0;
        for (int i = 0; i < ch->nthreads; i++) {
            done += ctr_get(&ch->t[i].completed);
            for (int k = 0; k < ERR_KINDS; k++)
                errors += ctr_get(&ch->t[i].err[k]);
        }
        double dt = (double)(now - last_ns) / 1e9;
        fprintf(stderr, "[%6.1fs] %10.0f conn/s  %" PRIu64 " errors\n",
                (double)(now - ch->start_ns) / 1e9, dt > 0 ? (double)(done - last) / dt : 0.0,
                errors);
        last = done;
        last_ns = now;
    }
}

static int churn_run(struct load_opts *o)
{
    uint64_t limit = load_raise_nofile();
    uint64_t need = o->connections + 4 * o->threads + 32;
    if (need > limit) {
        fprintf(stderr, "wharf churn: %" PRIu64 " loops need %" PRIu64 " file descriptors; the "
                        "limit is %" PRIu64 "\n", o->connections, need, limit);
        return 2;
    }
    if (runctl_init() < 0) {
        perror("wharf churn: signals");
        return 1;
    }
    struct churn *ch = calloc(1, sizeof *ch);
    struct churn_result r = {0};
    r.clat = malloc(sizeof *r.clat);
    r.rlat = malloc(sizeof *r.rlat);
    r.cyc = malloc(sizeof *r.cyc);
    int http_last_close = o->close_mode == CLOSE_SERVER;
    if (!ch || !r.clat || !r.rlat || !r.cyc ||
        payload_init(&ch->pl, o->proto, o->expect, o->size, 1, "wharf", 0) < 0 ||
        payload_init(&ch->pl_last, o->proto, o->expect, o->size, 1, "wharf", http_last_close) < 0) {
        fprintf(stderr, "wharf churn: out of memory\n");
        return 1;
    }
    hist_init(r.clat);
    hist_init(r.rlat);
    hist_init(r.cyc);
    ch->o = o;
    ch->nthreads = (int)o->threads;
    ch->t = threads_new(ch->nthreads);
    if (!ch->t) {
        fprintf(stderr, "wharf churn: out of memory\n");
        return 1;
    }
    ch->start_ns = clock_ns();
    int status = 0, started = 0;
    for (int i = 0; i < ch->nthreads && status == 0; i++) {
        uint64_t n = o->connections / o->threads + ((uint64_t)i < o->connections % o->threads);
        uint64_t quota = NO_LIMIT;
        if (o->requests)
            quota = o->requests / o->threads + ((uint64_t)i < o->requests % o->threads);
        if (thread_init(ch, &ch->t[i], i, (uint32_t)n, quota) < 0) {
            fprintf(stderr, "wharf churn: cannot set up thread %d: %s\n", i, strerror(errno));
            status = 1;
        }
    }
    struct cpu_use cpu0;
    cpu_now(&cpu0);
    /* Before the threads (see fdtable.h): a doubling of the descriptor table inside a
     * connect() would stall this thread's connections for milliseconds. */
    fdtable_reserve(o->connections + 64);
    for (int i = 0; i < ch->nthreads && status == 0; i++) {
        if (pthread_create(&ch->t[i].th, NULL, churn_thread, &ch->t[i]) != 0) {
            fprintf(stderr, "wharf churn: cannot start thread %d\n", i);
            atomic_store(&ch->stop, 2);
            wake_all(ch);
            status = 1;
            break;
        }
        started++;
    }
    if (status == 0)
        run(ch, &r);
    for (int i = 0; i < started; i++)
        pthread_join(ch->t[i].th, NULL);
    if (status == 0) {
        cpu_now(&r.cpu);
        r.cpu.user_s -= cpu0.user_s;
        r.cpu.sys_s -= cpu0.sys_s;
        collect(ch, &r);
        uint64_t until = r.last_done_ns ? r.last_done_ns : clock_ns();
        r.elapsed_s = (double)(until - ch->start_ns) / 1e9;
        r.cps = r.elapsed_s > 0 ? (double)r.completed / r.elapsed_s : 0;
        if (o->json)
            print_json(ch, &r);
        else
            print_text(ch, &r);
        if (o->latency_csv && report_latency_csv(o->latency_csv, r.clat) < 0) {
            fprintf(stderr, "wharf churn: %s: %s\n", o->latency_csv, strerror(errno));
            status = 1;
        }
        if ((r.errors || !r.completed) && !o->allow_errors)
            status = 1;
    }
    for (int i = 0; i < ch->nthreads; i++)
        thread_free(&ch->t[i]);
    free(ch->t);
    payload_free(&ch->pl);
    payload_free(&ch->pl_last);
    free(ch);
    free(r.clat);
    free(r.rlat);
    free(r.cyc);
    return status;
}

int churn_main(int argc, char **argv)
{
    struct load_opts o;
    int rc = load_parse(CMD_CHURN, argc, argv, &o);
    if (rc == 0)
        rc = churn_run(&o);
    else
        rc = rc == 1 ? 0 : 2;
    load_opts_free(&o);
    return rc;
}
