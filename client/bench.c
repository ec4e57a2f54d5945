/* bench: one epoll loop per thread, each with its share of the connections.
 *
 * A connection keeps up to --pipeline requests in flight. Requests are all the same
 * bytes, precomputed once, --pipeline copies back to back, so refilling a window of n
 * is one write of the last n copies. Replies are read into the thread's buffer and cut
 * by the common codecs; each pops the send time of the oldest request from the
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
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
#define MAX_PENDING_CONNECTS 256            /* per thread: SYNs in flight at once */
#define RECONNECT_DELAY_NS (100 * 1000000ull) /* after a failed connect */
#define SCAN_NS (20 * 1000000ull)          /* timeout checks */
#define NO_LIMIT UINT64_MAX

enum { PH_RAMP, PH_RUN, PH_DRAIN, PH_EXIT };
enum { BC_DEAD, BC_QUEUED, BC_CONNECTING, BC_READY };

struct bconn {
    int fd;
    uint32_t gen;       /* bumped per socket: events of an older socket are ignored */
    uint8_t state;
    uint8_t want_write; /* a write came up short: wait for EPOLLOUT */
    uint8_t resolved;   /* connected or failed at least once (the ramp is over for it) */
    uint32_t inflight;
    uint32_t head;      /* ring slot of the oldest request in flight */
    uint32_t unsent;    /* request bytes not yet written */
    uint64_t issued;    /* requests over the connection's life (its rate slots) */
    uint64_t t_connect; /* connect started; when queued for a retry: when to retry */
    struct reply_rx rx;
};

struct bench;

struct bthread {
    struct bench *b;
    int id;
    pthread_t th;
    int epfd, evfd;
    uint32_t n;
    uint64_t first_index;   /* global number of conns[0], for --source */
    struct bconn *conns;
    uint64_t *ring;         /* n * pipeline send times */
    char *rbuf;
    int phase;
    uint64_t quota;         /* -n share, NO_LIMIT without -n */
    uint64_t issued_total;
    uint64_t inflight_total;
    uint64_t due_k;         /* --rate: thread slots handed to connections */
    uint64_t backlog;       /* --rate: slots due but never sent when the run ended */
    uint64_t unanswered;    /* in flight when the thread gave up waiting */
    uint64_t last_reply_ns;
    struct rate reqrate, crate;
    uint64_t start_ns, measure_ns, end_ns, drain_deadline, next_scan;
    uint32_t *q, qhead, qlen;    /* to connect now (as the pace allows) */
    uint32_t *dq, dqhead, dqlen; /* to connect at conns[i].t_connect */
    uint32_t pending;
    uint32_t resolved;
    int ready_sent;
    struct hist *lat;
    struct hist *clat;
    struct errno_counts errnos;
    /* read by the main thread's progress line */
    ctr_t sent, ok, warm, live, err[ERR_KINDS], bytes_in, bytes_out;
};

struct bench {
    const struct load_opts *o;
    struct payload pl;
    uint32_t P;
    int nthreads;
    struct bthread *t;
    _Atomic uint64_t start_ns, measure_ns, end_ns;
    _Atomic int stop; /* 1: stop sending and drain; 2: stop now */
    _Atomic int ready, done;
};

static inline uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static inline void ctr_sub1(ctr_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

static inline uint32_t conn_index(const struct bthread *t, const struct bconn *c)
{
    return (uint32_t)(c - t->conns);
}

static void q_push(struct bthread *t, struct bconn *c)
{
    t->q[(t->qhead + t->qlen++) % t->n] = conn_index(t, c);
    c->state = BC_QUEUED;
}

static void dq_push(struct bthread *t, struct bconn *c, uint64_t when)
{
    c->t_connect = when;
    t->dq[(t->dqhead + t->dqlen++) % t->n] = conn_index(t, c);
    c->state = BC_QUEUED;
}

static void mark_resolved(struct bthread *t, struct bconn *c)
{
    if (!c->resolved) {
        c->resolved = 1;
        t->resolved++;
    }
}

static void connect_failed(struct bthread *t, struct bconn *c, int err, uint64_t now)
{
    if (c->state == BC_CONNECTING)
        t->pending--;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    ctr_add(&t->err[ERR_CONNECT], 1);
    errno_count(&t->errnos, err);
    mark_resolved(t, c);
    if (t->phase <= PH_RUN)
        dq_push(t, c, now + RECONNECT_DELAY_NS);
    else
        c->state = BC_DEAD;
}

/* The connection is gone: every request in flight on it failed with kind (or one
 * error if none was), and it reconnects while the run goes on. */
static void teardown(struct bthread *t, struct bconn *c, int kind)
{
    close(c->fd);
    c->fd = -1;
    ctr_add(&t->err[kind], c->inflight ? c->inflight : 1);
    t->inflight_total -= c->inflight;
    c->inflight = 0;
    c->head = 0;
    c->unsent = 0;
    c->want_write = 0;
    reply_rx_reset(&c->rx, 0);
    ctr_sub1(&t->live);
    if (t->phase <= PH_RUN)
        q_push(t, c);
    else
        c->state = BC_DEAD;
}

/* Write the requests not yet written: they are the last `unsent` bytes of the
 * precomputed copies. */
static void flush(struct bthread *t, struct bconn *c)
{
    const struct payload *pl = &t->b->pl;
    const char *end = pl->reqs + (size_t)t->b->P * pl->req_len;
    while (c->unsent) {
        ssize_t w = write(c->fd, end - c->unsent, c->unsent);
        if (w > 0) {
            ctr_add(&t->bytes_out, (uint64_t)w);
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
        teardown(t, c, ERR_WRITE);
        return;
    }
    c->want_write = 0;
}

/* Fill the connection's window: as many requests as it may have in flight, or (with
 * --rate) as many of its slots as are due; never past -n. One write for all. */
static void pump(struct bthread *t, struct bconn *c, uint64_t now)
{
    if (t->phase != PH_RUN || c->state != BC_READY)
        return;
    const struct bench *b = t->b;
    uint32_t idx = conn_index(t, c);
    uint64_t n = b->P - c->inflight;
    if (b->o->rate) {
        uint64_t due = rate_share(t->due_k, idx, t->n);
        n = min_u64(n, due - c->issued);
    }
    if (t->quota != NO_LIMIT)
        n = min_u64(n, t->quota - t->issued_total);
    if (!n)
        return;
    uint64_t *ring = t->ring + (size_t)idx * b->P;
    uint32_t pos = c->head + c->inflight;
    if (pos >= b->P)
        pos -= b->P;
    for (uint64_t i = 0; i < n; i++) {
        ring[pos] = now;
        if (++pos == b->P)
            pos = 0;
    }
    c->inflight += (uint32_t)n;
    c->issued += n;
    t->issued_total += n;
    t->inflight_total += n;
    ctr_add(&t->sent, n);
    c->unsent += (uint32_t)(n * b->pl.req_len);
    if (!c->want_write)
        flush(t, c);
}

static void on_connected(struct bthread *t, struct bconn *c, uint64_t now)
{
    if (c->state == BC_CONNECTING)
        t->pending--;
    c->state = BC_READY;
    ctr_add(&t->live, 1);
    hist_record(t->clat, now - c->t_connect);
    mark_resolved(t, c);
    pump(t, c, now);
}

static void start_connect(struct bthread *t, struct bconn *c, uint64_t now)
{
    int in_progress = 0;
    int fd = load_connect(t->b->o, t->first_index + conn_index(t, c), &in_progress);
    c->t_connect = now;
    c->state = BC_DEAD;
    if (fd < 0) {
        connect_failed(t, c, -fd, now);
        return;
    }
    c->fd = fd;
    c->gen++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = (uint64_t)c->gen << 32 | conn_index(t, c)};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        connect_failed(t, c, errno, now);
        return;
    }
    if (in_progress) {
        c->state = BC_CONNECTING;
        t->pending++;
    } else {
        on_connected(t, c, now);
    }
}

static void run_connects(struct bthread *t, uint64_t now)
{
    while (t->dqlen && t->conns[t->dq[t->dqhead]].t_connect <= now) {
        struct bconn *c = &t->conns[t->dq[t->dqhead]];
        t->dqhead = (t->dqhead + 1) % t->n;
        t->dqlen--;
        q_push(t, c);
    }
    if (t->b->o->connect_rate)
        rate_cap_backlog(&t->crate, now, MAX_PENDING_CONNECTS);
    while (t->qlen && t->pending < MAX_PENDING_CONNECTS) {
        if (t->b->o->connect_rate) {
            if (!rate_backlog(&t->crate, now))
                break;
            rate_take(&t->crate, 1);
        }
        struct bconn *c = &t->conns[t->q[t->qhead]];
        t->qhead = (t->qhead + 1) % t->n;
        t->qlen--;
        start_connect(t, c, now);
    }
}

/* Take every complete reply in data. Returns -1 when the connection was torn down. */
static int take_replies(struct bthread *t, struct bconn *c, const char *data, size_t len,
                        uint64_t now)
{
    const struct bench *b = t->b;
    uint32_t idx = conn_index(t, c);
    const uint64_t *ring = t->ring + (size_t)idx * b->P;
    for (;;) {
        int rc = reply_next(&b->pl, &c->rx, &data, &len);
        if (rc == RX_NEED_MORE)
            return 0;
        if (rc == RX_GARBLED || c->inflight == 0) {
            teardown(t, c, ERR_MISMATCH);
            return -1;
        }
        uint64_t sent_at = ring[c->head];
        uint64_t m = c->issued - c->inflight; /* this request's number on the connection */
        if (++c->head == b->P)
            c->head = 0;
        c->inflight--;
        t->inflight_total--;
        t->last_reply_ns = now;
        uint64_t from = b->o->rate ? rate_time(&t->reqrate, idx + m * t->n) : sent_at;
        if (rc != RX_OK)
            ctr_add(&t->err[ERR_MISMATCH], 1); /* never a success, warmup or not */
        else if (from < t->measure_ns)
            ctr_add(&t->warm, 1);
        else {
            ctr_add(&t->ok, 1);
            hist_record(t->lat, now > from ? now - from : 0);
        }
    }
}

static void on_readable(struct bthread *t, struct bconn *c, uint32_t events)
{
    /* With the peer's FIN or an error pending, read on to see it: no new edge comes. */
    int to_the_end = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    uint64_t now = 0;
    for (;;) {
        ssize_t n = read(c->fd, t->rbuf, RBUF_SIZE);
        if (n > 0) {
            now = clock_ns();
            ctr_add(&t->bytes_in, (uint64_t)n);
            if (take_replies(t, c, t->rbuf, (size_t)n, now) < 0)
                return;
            if ((size_t)n < RBUF_SIZE && !to_the_end)
                break; /* drained: the next bytes bring a new edge */
            continue;
        }
        if (n == 0) {
            teardown(t, c, ERR_CLOSED);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            teardown(t, c, ERR_READ);
        break;
    }
    if (c->state == BC_READY && now)
        pump(t, c, now);
}

static void on_event(struct bthread *t, uint64_t data, uint32_t events)
{
    struct bconn *c = &t->conns[(uint32_t)data];
    if (c->gen != (uint32_t)(data >> 32) || c->fd < 0)
        return;
    if (c->state == BC_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = load_socket_error(c->fd);
        if (err)
            connect_failed(t, c, err, clock_ns());
        else
            on_connected(t, c, clock_ns());
        return;
    }
    if (c->state != BC_READY)
        return;
    if ((events & EPOLLOUT) && c->unsent)
        flush(t, c);
    if (c->state == BC_READY && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        on_readable(t, c, events);
}

/* --rate: hand the slots that came due to their connections (slot k goes to
 * connection k % n). */
static void distribute(struct bthread *t, uint64_t now)
{
    uint64_t k = min_u64(rate_due(&t->reqrate, now), t->quota);
    if (k <= t->due_k)
        return;
    uint64_t from = t->due_k;
    t->due_k = k;
    if (k - from >= t->n) {
        for (uint32_t i = 0; i < t->n; i++)
            pump(t, &t->conns[i], now);
    } else {
        for (uint64_t s = from; s < k; s++)
            pump(t, &t->conns[s % t->n], now);
    }
}

static void scan_timeouts(struct bthread *t, uint64_t now)
{
    const struct bench *b = t->b;
    uint64_t limit = b->o->timeout_ms * 1000000ull;
    for (uint32_t i = 0; i < t->n; i++) {
        struct bconn *c = &t->conns[i];
        if (c->state == BC_CONNECTING && now - c->t_connect > limit)
            connect_failed(t, c, ETIMEDOUT, now);
        else if (c->state == BC_READY && c->inflight &&
                 now - t->ring[(size_t)i * b->P + c->head] > limit)
            teardown(t, c, ERR_TIMEOUT);
    }
}

static void update_phase(struct bthread *t, uint64_t now)
{
    struct bench *b = t->b;
    int stop = atomic_load_explicit(&b->stop, memory_order_relaxed);
    if (t->phase == PH_RAMP) {
        if (stop) {
            t->phase = PH_EXIT;
            return;
        }
        uint64_t s = atomic_load_explicit(&b->start_ns, memory_order_acquire);
        if (!s || now < s)
            return;
        t->start_ns = s;
        t->measure_ns = atomic_load_explicit(&b->measure_ns, memory_order_relaxed);
        t->end_ns = atomic_load_explicit(&b->end_ns, memory_order_relaxed);
        t->phase = PH_RUN;
        if (b->o->rate) {
            rate_init(&t->reqrate, s, b->o->rate, (uint64_t)t->id, (uint64_t)b->nthreads);
            distribute(t, now);
        } else {
            for (uint32_t i = 0; i < t->n; i++)
                pump(t, &t->conns[i], now);
        }
    }
    if (t->phase == PH_RUN && (stop || now >= t->end_ns || t->issued_total >= t->quota)) {
        if (b->o->rate && !stop)
            distribute(t, min_u64(now, t->end_ns - 1)); /* slots due before the end go out */
        t->phase = PH_DRAIN;
        t->drain_deadline = now + b->o->timeout_ms * 1000000ull + 2 * SCAN_NS;
        if (b->o->rate) {
            uint64_t due = min_u64(rate_due(&t->reqrate, min_u64(now, t->end_ns - 1)), t->quota);
            t->backlog = due > t->issued_total ? due - t->issued_total : 0;
        }
    }
    if (t->phase == PH_DRAIN &&
        (t->inflight_total == 0 || stop >= 2 || now >= t->drain_deadline))
        t->phase = PH_EXIT;
}

static uint64_t next_wakeup(const struct bthread *t, uint64_t now)
{
    uint64_t next = t->next_scan;
    if (t->phase == PH_RAMP) {
        uint64_t s = atomic_load_explicit(&t->b->start_ns, memory_order_acquire);
        if (s)
            next = min_u64(next, s);
    } else if (t->phase == PH_RUN) {
        next = min_u64(next, t->end_ns);
        if (t->b->o->rate && t->due_k < t->quota)
            next = min_u64(next, rate_time(&t->reqrate, t->due_k));
    } else if (t->phase == PH_DRAIN) {
        next = min_u64(next, t->drain_deadline);
    }
    if (t->phase <= PH_RUN) {
        if (t->qlen && t->pending < MAX_PENDING_CONNECTS)
            next = min_u64(next, t->b->o->connect_rate ? rate_next(&t->crate) : now);
        if (t->dqlen)
            next = min_u64(next, t->conns[t->dq[t->dqhead]].t_connect);
    }
    return next;
}

static void *bench_thread(void *arg)
{
    struct bthread *t = arg;
    struct bench *b = t->b;
    struct epoll_event ev[MAX_EVENTS];
    if (b->o->rate)
        prctl(PR_SET_TIMERSLACK, 1000UL); /* wake within a microsecond of a slot */
    for (uint32_t i = 0; i < t->n; i++)
        q_push(t, &t->conns[i]);
    t->next_scan = clock_ns() + SCAN_NS;
    for (;;) {
        uint64_t now = clock_ns();
        update_phase(t, now);
        if (t->phase == PH_EXIT)
            break;
        if (t->phase <= PH_RUN)
            run_connects(t, now);
        if (!t->ready_sent && t->resolved == t->n) {
            t->ready_sent = 1;
            atomic_fetch_add(&b->ready, 1);
        }
        if (t->phase == PH_RUN && b->o->rate)
            distribute(t, now);
        if (now >= t->next_scan) {
            scan_timeouts(t, now);
            t->next_scan = now + SCAN_NS;
        }
        now = clock_ns();
        uint64_t next = next_wakeup(t, now);
        uint64_t wait = next > now ? next - now : 0;
        int n = load_epoll_wait(t->epfd, ev, MAX_EVENTS, wait);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 == UINT64_MAX) {
                uint64_t v;
                if (read(t->evfd, &v, sizeof v) < 0) {
                    /* nothing to do: the wake-up itself was the message */
                }
                continue;
            }
            on_event(t, ev[i].data.u64, ev[i].events);
        }
    }
    t->unanswered = t->inflight_total;
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->conns[i].fd >= 0) {
            close(t->conns[i].fd);
            t->conns[i].fd = -1;
        }
        reply_rx_reset(&t->conns[i].rx, 1);
    }
    if (!t->ready_sent)
        atomic_fetch_add(&b->ready, 1);
    atomic_fetch_add(&b->done, 1);
    return NULL;
}

static int thread_init(struct bench *b, struct bthread *t, int id, uint32_t n, uint64_t first,
                       uint64_t quota, uint64_t t0)
{
    memset(t, 0, sizeof *t);
    t->b = b;
    t->id = id;
    t->n = n;
    t->first_index = first;
    t->quota = quota;
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->conns = calloc(n, sizeof *t->conns);
    t->ring = calloc((size_t)n * b->P, sizeof *t->ring);
    t->q = calloc(n, sizeof *t->q);
    t->dq = calloc(n, sizeof *t->dq);
    t->rbuf = malloc(RBUF_SIZE);
    t->lat = malloc(sizeof *t->lat);
    t->clat = malloc(sizeof *t->clat);
    if (t->epfd < 0 || t->evfd < 0 || !t->conns || !t->ring || !t->q || !t->dq || !t->rbuf ||
        !t->lat || !t->clat)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &ev) < 0)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        t->conns[i].fd = -1;
    hist_init(t->lat);
    hist_init(t->clat);
    if (b->o->connect_rate)
        rate_init(&t->crate, t0, b->o->connect_rate, (uint64_t)id, (uint64_t)b->nthreads);
    return 0;
}

/* n threads not set up yet, or NULL. Their descriptors are -1, not 0 (a valid
 * descriptor), because thread_free runs on every one, also those whose setup never
 * began. */
static struct bthread *threads_new(int n)
{
    struct bthread *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; t && i < n; i++)
        t[i].epfd = t[i].evfd = -1;
    return t;
}

static void thread_free(struct bthread *t)
{
    if (t->epfd >= 0) /* descriptor 0 is valid: stdin may have been closed */
        close(t->epfd);
    if (t->evfd >= 0)
        close(t->evfd);
    free(t->conns);
    free(t->ring);
    free(t->q);
    free(t->dq);
    free(t->rbuf);
    free(t->lat);
    free(t->clat);
}

static void wake_all(struct bench *b)
{
    uint64_t one = 1;
    for (int i = 0; i < b->nthreads; i++)
        if (write(b->t[i].evfd, &one, sizeof one) < 0) {
            /* the counter is full: the thread is awake anyway */
        }
}

/* ---- the report ---- */

struct bench_result {
    uint64_t sent, ok, warm, backlog, unanswered, bytes_in, bytes_out, live;
    uint64_t err[ERR_KINDS], errors;
    uint64_t last_reply_ns;
    double elapsed_s, rps, cpu_us_per_req, mib_in_s, mib_out_s;
    struct cpu_use cpu;
    struct hist *lat, *clat;
    struct errno_counts errnos;
    int interrupted;
};

static void collect(struct bench *b, struct bench_result *r)
{
    for (int i = 0; i < b->nthreads; i++) {
        struct bthread *t = &b->t[i];
        r->sent += ctr_get(&t->sent);
        r->ok += ctr_get(&t->ok);
        r->warm += ctr_get(&t->warm);
        r->bytes_in += ctr_get(&t->bytes_in);
        r->bytes_out += ctr_get(&t->bytes_out);
        r->backlog += t->backlog;
        r->unanswered += t->unanswered;
        for (int k = 0; k < ERR_KINDS; k++)
            r->err[k] += ctr_get(&t->err[k]);
        if (t->last_reply_ns > r->last_reply_ns)
            r->last_reply_ns = t->last_reply_ns;
        hist_merge(r->lat, t->lat);
        hist_merge(r->clat, t->clat);
        errno_merge(&r->errnos, &t->errnos);
    }
    for (int k = 0; k < ERR_KINDS; k++)
        r->errors += r->err[k];
}

static void print_text(const struct bench *b, const struct bench_result *r)
{
    const struct load_opts *o = b->o;
    char target[ADDR_TEXT_MAX + 16], a[32];
    endpoint_format(&o->ep, target, sizeof target);
    FILE *f = stdout;
    fprintf(f, "wharf bench %s: %d thread%s, %" PRIu64 " connection%s, pipeline %" PRIu64
               ", %" PRIu64 "-byte payload, expect %s\n",
            target, b->nthreads, b->nthreads == 1 ? "" : "s", o->connections,
            o->connections == 1 ? "" : "s", o->pipeline, o->size, mode_name(o->expect));
    if (o->rate)
        fprintf(f, "  constant rate %" PRIu64 " requests/s (latency from intended send times)\n",
                o->rate);
    if (o->warmup_ms)
        fprintf(f, "  warmup %s, %" PRIu64 " requests not counted\n",
                fmt_ns(a, sizeof a, (double)o->warmup_ms * 1e6), r->warm);
    report_latency_text(f, "Latency", r->lat);
    fprintf(f, "  %" PRIu64 " requests in %.2fs, %.2f MiB read, %.2f MiB written\n", r->ok,
            r->elapsed_s, (double)r->bytes_in / 1048576.0, (double)r->bytes_out / 1048576.0);
    fprintf(f, "  Errors: %" PRIu64, r->errors);
    for (int k = 0; k < ERR_KINDS; k++)
        fprintf(f, "%s%s %" PRIu64, k ? ", " : " (", err_kind_name(k), r->err[k]);
    fprintf(f, ")\n");
    if (r->err[ERR_CONNECT]) {
        fprintf(f, "  Connect errors: ");
        errno_print_text(f, &r->errnos);
        fputc('\n', f);
    }
    if (r->backlog)
        fprintf(f, "  Behind schedule: %" PRIu64 " requests were due but never sent\n",
                r->backlog);
    if (r->unanswered)
        fprintf(f, "  Unanswered when the run was cut: %" PRIu64 "\n", r->unanswered);
    if (r->interrupted)
        fprintf(f, "  Interrupted: the run was cut short by a signal\n");
    fprintf(f, "Requests/sec: %12.2f\n", r->rps);
    fprintf(f, "Transfer/sec: %8.2f MiB in, %.2f MiB out\n", r->mib_in_s, r->mib_out_s);
    fprintf(f, "Client CPU:   %8.2f us/request (user %.2fs, sys %.2fs)\n", r->cpu_us_per_req,
            r->cpu.user_s, r->cpu.sys_s);
}

static void print_json(const struct bench *b, const struct bench_result *r)
{
    const struct load_opts *o = b->o;
    char target[ADDR_TEXT_MAX + 16];
    endpoint_format(&o->ep, target, sizeof target);
    FILE *f = stdout;
    fprintf(f, "{\"command\":\"bench\",\"target\":\"%s\",\"proto\":\"%s\",\"threads\":%d,"
               "\"connections\":%" PRIu64 ",\"pipeline\":%" PRIu64 ",\"size\":%" PRIu64
               ",\"rate\":%" PRIu64 ",\"expect\":\"%s\",\"warmup_s\":%.3f,"
               "\"duration_s\":%.6f,\"interrupted\":%s,",
            target, proto_name(o->proto), b->nthreads, o->connections, o->pipeline, o->size,
            o->rate, mode_name(o->expect), (double)o->warmup_ms / 1e3, r->elapsed_s,
            r->interrupted ? "true" : "false");
    fprintf(f, "\"requests\":{\"sent\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"warmup\":%" PRIu64
               ",\"backlog\":%" PRIu64 ",\"unanswered\":%" PRIu64 "},",
            r->sent, r->ok, r->warm, r->backlog, r->unanswered);
    fprintf(f, "\"requests_per_sec\":%.2f,\"bytes\":{\"in\":%" PRIu64 ",\"out\":%" PRIu64
               "},\"mib_per_sec\":{\"in\":%.3f,\"out\":%.3f},",
            r->rps, r->bytes_in, r->bytes_out, r->mib_in_s, r->mib_out_s);
    fprintf(f, "\"latency\":");
    report_latency_json(f, r->lat);
    fprintf(f, ",\"connect_latency\":");
    report_latency_json(f, r->clat);
    fprintf(f, ",\"errors\":{\"total\":%" PRIu64, r->errors);
    for (int k = 0; k < ERR_KINDS; k++)
        fprintf(f, ",\"%s\":%" PRIu64, err_kind_name(k), r->err[k]);
    fprintf(f, "},\"connect_errors\":");
    errno_print_json(f, &r->errnos);
    fprintf(f, ",\"cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f,\"us_per_request\":%.3f}}\n",
            r->cpu.user_s, r->cpu.sys_s, r->cpu_us_per_req);
}

static void progress_line(const struct bench *b, uint64_t now, uint64_t *last_done,
                          uint64_t *last_ns)
{
    uint64_t done = 0, errors = 0, live = 0;
    for (int i = 0; i < b->nthreads; i++) {
        const struct bthread *t = &b->t[i];
        done += ctr_get(&t->ok) + ctr_get(&t->warm);
        live += ctr_get(&t->live);
        for (int k = 0; k < ERR_KINDS; k++)
            errors += ctr_get(&t->err[k]);
    }
    uint64_t start = atomic_load(&b->start_ns), measure = atomic_load(&b->measure_ns);
    double dt = (double)(now - *last_ns) / 1e9;
    fprintf(stderr, "[%6.1fs]%s %10.0f req/s  %" PRIu64 " errors  %" PRIu64 " connections\n",
            (double)(now - start) / 1e9, now < measure ? " warmup" : "",
            dt > 0 ? (double)(done - *last_done) / dt : 0.0, errors, live);
    *last_done = done;
    *last_ns = now;
}

/* The main thread: ramp, start, tick, stop, report. */
static int run(struct bench *b, struct bench_result *r)
{
    const struct load_opts *o = b->o;
    int tty = runctl_progress() && !o->json;
    uint64_t t_ramp = clock_ns(), next_tick = t_ramp + 1000000000ull;
    while (atomic_load(&b->ready) < b->nthreads) {
        if (runctl_wait(min_u64(clock_ns() + 50000000ull, next_tick))) {
            r->interrupted = 1;
            atomic_store(&b->stop, 2);
            wake_all(b);
            return -1;
        }
        if (tty && clock_ns() >= next_tick) {
            uint64_t live = 0;
            for (int i = 0; i < b->nthreads; i++)
                live += ctr_get(&b->t[i].live);
            fprintf(stderr, "[connecting] %" PRIu64 " of %" PRIu64 " connected\n", live,
                    o->connections);
            next_tick += 1000000000ull;
        }
    }
    uint64_t live = 0;
    for (int i = 0; i < b->nthreads; i++)
        live += ctr_get(&b->t[i].live);
    if (live == 0) {
        struct errno_counts e = {{0}};
        for (int i = 0; i < b->nthreads; i++)
            errno_merge(&e, &b->t[i].errnos);
        fprintf(stderr, "wharf bench: no connection to %s could be made (", o->target_text);
        errno_print_text(stderr, &e);
        fprintf(stderr, ")\n");
        atomic_store(&b->stop, 2);
        wake_all(b);
        return -1;
    }
    uint64_t start = clock_ns() + 1000000, measure = start + o->warmup_ms * 1000000ull;
    uint64_t run_ns = o->duration_set || !o->requests ? o->duration_ms * 1000000ull : NO_LIMIT;
    uint64_t end = run_ns == NO_LIMIT ? NO_LIMIT : measure + run_ns;
    atomic_store_explicit(&b->measure_ns, measure, memory_order_relaxed);
    atomic_store_explicit(&b->end_ns, end, memory_order_relaxed);
    atomic_store_explicit(&b->start_ns, start, memory_order_release);
    struct cpu_use cpu0;
    cpu_now(&cpu0);
    wake_all(b);
    uint64_t last_done = 0, last_ns = start;
    next_tick = start + 1000000000ull;
    int signals = runctl_signals();
    while (atomic_load(&b->done) < b->nthreads) {
        int s = runctl_wait(min_u64(clock_ns() + 20000000ull, next_tick));
        if (s != signals) {
            signals = s;
            r->interrupted = 1;
            atomic_store(&b->stop, s >= 2 ? 2 : 1); /* a second Ctrl-C stops waiting too */
            wake_all(b);
        }
        uint64_t now = clock_ns();
        if (now >= next_tick) {
            if (tty && now < end)
                progress_line(b, now, &last_done, &last_ns);
            next_tick += 1000000000ull;
        }
    }
    cpu_now(&r->cpu);
    r->cpu.user_s -= cpu0.user_s;
    r->cpu.sys_s -= cpu0.sys_s;
    return 0;
}

static int bench_run(struct load_opts *o)
{
    uint64_t limit = load_raise_nofile();
    uint64_t need = o->connections + 4 * o->threads + 32;
    if (need > limit) {
        fprintf(stderr,
                "wharf bench: %" PRIu64 " connections need %" PRIu64 " file descriptors; the "
                "limit is %" PRIu64 " (raise 'ulimit -n', or run several wharf processes)\n",
                o->connections, need, limit);
        return 2;
    }
    if (runctl_init() < 0) {
        perror("wharf bench: signals");
        return 1;
    }
    struct bench *b = calloc(1, sizeof *b);
    struct bench_result r = {0};
    r.lat = malloc(sizeof *r.lat);
    r.clat = malloc(sizeof *r.clat);
    if (!b || !r.lat || !r.clat ||
        payload_init(&b->pl, o->proto, o->expect, o->size, o->pipeline, NULL, 0) < 0) {
        fprintf(stderr, "wharf bench: out of memory\n");
        return 1;
    }
    hist_init(r.lat);
    hist_init(r.clat);
    b->o = o;
    b->P = (uint32_t)o->pipeline;
    b->nthreads = (int)o->threads;
    b->t = threads_new(b->nthreads);
    if (!b->t) {
        fprintf(stderr, "wharf bench: out of memory\n");
        return 1;
    }
    uint64_t t0 = clock_ns(), first = 0;
    int status = 0, started = 0;
    for (int i = 0; i < b->nthreads; i++) {
        uint64_t n = o->connections / o->threads + ((uint64_t)i < o->connections % o->threads);
        uint64_t quota = NO_LIMIT;
        if (o->requests)
            quota = o->requests / o->threads + ((uint64_t)i < o->requests % o->threads);
        if (thread_init(b, &b->t[i], i, (uint32_t)n, first, quota, t0) < 0) {
            fprintf(stderr, "wharf bench: cannot set up thread %d: %s\n", i, strerror(errno));
            status = 1;
            break;
        }
        first += n;
    }
    /* Before the threads (see fdtable.h): a doubling of the descriptor table inside a
     * connect() would stall this thread's connections for milliseconds. */
    fdtable_reserve(o->connections + 64);
    for (int i = 0; i < b->nthreads && status == 0; i++) {
        if (pthread_create(&b->t[i].th, NULL, bench_thread, &b->t[i]) != 0) {
            fprintf(stderr, "wharf bench: cannot start thread %d\n", i);
            atomic_store(&b->stop, 2);
            wake_all(b);
            status = 1;
            break;
        }
        started++;
    }
    int ran = status == 0 ? run(b, &r) : -1;
    for (int i = 0; i < started; i++)
        pthread_join(b->t[i].th, NULL);
    if (status == 0) {
        collect(b, &r);
        uint64_t measure = atomic_load(&b->measure_ns);
        uint64_t until = r.last_reply_ns > measure ? r.last_reply_ns : clock_ns();
        r.elapsed_s = measure && until > measure ? (double)(until - measure) / 1e9 : 0;
        uint64_t replies = r.ok + r.warm + r.err[ERR_MISMATCH];
        if (r.elapsed_s > 0) {
            r.rps = (double)(r.ok + r.err[ERR_MISMATCH]) / r.elapsed_s;
            double span = r.elapsed_s + (double)o->warmup_ms / 1e3;
            r.mib_in_s = (double)r.bytes_in / 1048576.0 / span;
            r.mib_out_s = (double)r.bytes_out / 1048576.0 / span;
        }
        r.cpu_us_per_req = replies ? (r.cpu.user_s + r.cpu.sys_s) * 1e6 / (double)replies : 0;
        if (o->json)
            print_json(b, &r);
        else
            print_text(b, &r);
        if (o->latency_csv && report_latency_csv(o->latency_csv, r.lat) < 0) {
            fprintf(stderr, "wharf bench: %s: %s\n", o->latency_csv, strerror(errno));
            status = 1;
        }
        if (ran < 0 && !r.interrupted)
            status = 1;
        else if (r.errors && !o->allow_errors)
            status = 1;
    }
    for (int i = 0; i < b->nthreads; i++)
        thread_free(&b->t[i]);
    free(b->t);
    payload_free(&b->pl);
    free(b);
    free(r.lat);
    free(r.clat);
    return status;
}

int bench_main(int argc, char **argv)
{
    struct load_opts o;
    int rc = load_parse(CMD_BENCH, argc, argv, &o);
    if (rc == 0)
        rc = bench_run(&o);
    else
        rc = rc == 1 ? 0 : 2;
    load_opts_free(&o);
    return rc;
}
