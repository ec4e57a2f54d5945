/* engine: the loop, connection slots, connect pacing, reading, threads and the main
 * thread's wait; see engine.h. */
#include "engine.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/fdtable.h"
#include "hgrm.h"
#include "ivlog.h"
#include "sysio.h"

#define MAX_EVENTS 512
#define WAKE_DATA UINT64_MAX /* the epoll data of the wake descriptor */
#define SECOND_NS 1000000000ull

/* ---- connection slots ---- */

void eng_queue(struct eng_thread *t, uint32_t i)
{
    t->q[(t->qhead + t->qlen++) % t->n] = i;
    t->conns[i].state = EC_QUEUED;
}

void eng_queue_at(struct eng_thread *t, uint32_t i, uint64_t when)
{
    if (!t->dq && !(t->dq = calloc(t->n, sizeof *t->dq))) {
        eng_queue(t, i); /* no memory for the wait: connect as the pace allows */
        return;
    }
    t->conns[i].t_connect = when;
    t->dq[(t->dqhead + t->dqlen++) % t->n] = i;
    t->conns[i].state = EC_QUEUED;
}

void eng_close(struct eng_thread *t, uint32_t i, int rst)
{
    struct eng_conn *c = &t->conns[i];
    if (c->state == EC_CONNECTING)
        t->pending--;
    if (c->fd >= 0) {
        if (rst)
            load_close_rst(c->fd);
        else
            close(c->fd);
    }
    c->fd = -1;
    c->state = EC_IDLE;
    reply_rx_reset(&t->rx[i], 0);
}

static void mark_resolved(struct eng_thread *t, struct eng_conn *c)
{
    if (!c->resolved) {
        c->resolved = 1;
        t->resolved++;
    }
}

static void connect_done(struct eng_thread *t, uint32_t i, int err, uint64_t now)
{
    struct eng_conn *c = &t->conns[i];
    if (c->state == EC_CONNECTING)
        t->pending--;
    c->state = EC_IDLE;
    mark_resolved(t, c);
    if (err) {
        eng_close(t, i, 0);
        t->e->drv->connect_failed(t, i, err, now);
    } else {
        c->state = EC_OPEN;
        t->e->drv->connected(t, i, now);
    }
}

static void start_connect(struct eng_thread *t, uint32_t i, uint64_t now)
{
    struct engine *e = t->e;
    struct eng_conn *c = &t->conns[i];
    uint64_t index = e->drv->source_by_attempt
                         ? t->attempts * (uint64_t)e->nthreads + (uint64_t)t->id
                         : t->first_index + i;
    int in_progress = 0;
    t->attempts++;
    if (e->drv->starting)
        e->drv->starting(t, i, now);
    c->t_connect = now;
    c->state = EC_IDLE;
    int fd = load_connect_to(e->o, t->ep ? t->ep : &e->o->ep, index, &in_progress);
    if (fd < 0) {
        connect_done(t, i, -fd, now);
        return;
    }
    c->fd = fd;
    c->gen++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = (uint64_t)c->gen << 32 | i};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        connect_done(t, i, errno, now);
        return;
    }
    if (in_progress) {
        c->state = EC_CONNECTING;
        t->pending++;
    } else {
        connect_done(t, i, 0, now);
    }
}

static uint32_t pending_limit(const struct eng_thread *t)
{
    return t->e->drv->max_pending ? t->e->drv->max_pending : UINT32_MAX;
}

/* Start what is due: retries whose time came, then queued connects as far as the pace,
 * the handshakes in flight and the attempt limit allow. */
static void run_connects(struct eng_thread *t, uint64_t now)
{
    const struct load_opts *o = t->e->o;
    if (!t->qlen && !t->dqlen)
        return; /* the usual turn once the ramp is over */
    while (t->dqlen && t->conns[t->dq[t->dqhead]].t_connect <= now) {
        uint32_t i = t->dq[t->dqhead];
        t->dqhead = (t->dqhead + 1) % t->n;
        t->dqlen--;
        eng_queue(t, i);
    }
    if (o->connect_rate)
        rate_cap_backlog(&t->crate, now, t->e->drv->max_pending ? t->e->drv->max_pending : t->n);
    while (t->qlen && t->pending < pending_limit(t) && t->attempts < t->attempt_limit) {
        if (o->connect_rate) {
            if (!rate_backlog(&t->crate, now))
                break;
            rate_take(&t->crate, 1);
        }
        uint32_t i = t->q[t->qhead];
        t->qhead = (t->qhead + 1) % t->n;
        t->qlen--;
        start_connect(t, i, now);
    }
}

static uint64_t connect_wakeup(const struct eng_thread *t, uint64_t now)
{
    uint64_t next = ENG_NO_LIMIT;
    if (!t->connecting)
        return next;
    if (t->qlen && t->pending < pending_limit(t) && t->attempts < t->attempt_limit)
        next = t->e->o->connect_rate ? rate_next(&t->crate) : now;
    if (t->dqlen)
        next = min_u64(next, t->conns[t->dq[t->dqhead]].t_connect);
    return next;
}

/* Handshakes past --timeout fail with ETIMEDOUT; then the driver's own timeouts. */
static void scan(struct eng_thread *t, uint64_t now)
{
    uint64_t limit = t->e->o->timeout_ms * 1000000ull;
    for (uint32_t i = 0; i < t->n; i++)
        if (t->conns[i].state == EC_CONNECTING && now - t->conns[i].t_connect > limit)
            connect_done(t, i, ETIMEDOUT, now);
    t->e->drv->scan(t, now);
}

int eng_read(struct eng_thread *t, uint32_t i, uint32_t events, uint64_t *now)
{
    const struct eng_driver *drv = t->e->drv;
    /* With the peer's FIN or an error pending, read on to see it: no new edge comes. */
    int to_the_end = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    for (;;) {
        ssize_t n = sys_read(t->conns[i].fd, t->rbuf, ENG_RBUF_SIZE);
        if (n > 0) {
            *now = clock_ns();
            int rc = drv->on_bytes(t, i, t->rbuf, (size_t)n, *now);
            if (rc == ENG_GONE)
                return -1;
            if ((size_t)n < ENG_RBUF_SIZE && !to_the_end && rc != ENG_MORE)
                return 0; /* drained: the next bytes bring a new edge */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        drv->on_closed(t, i, n == 0 ? ERR_CLOSED : ERR_READ, n == 0 ? 0 : errno, clock_ns());
        return -1;
    }
}

static void on_event(struct eng_thread *t, uint64_t data, uint32_t events)
{
    uint32_t i = (uint32_t)data;
    struct eng_conn *c = &t->conns[i];
    if (c->gen != (uint16_t)(data >> 32) || c->fd < 0)
        return;
    if (c->state == EC_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        connect_done(t, i, load_socket_error(c->fd), clock_ns());
        /* The connected hook has written what it had: only a read may be left. */
        events &= ~(uint32_t)EPOLLOUT;
        if (c->state != EC_OPEN || !(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            return;
    }
    if (c->state == EC_OPEN)
        t->e->drv->on_events(t, i, events);
}

/* ---- the loop ---- */

static void take_wake(struct eng_thread *t)
{
    if (t->e->drv->woken) {
        t->e->drv->woken(t);
        return;
    }
    uint64_t v;
    if (read(t->wakefd, &v, sizeof v) < 0) {
        /* nothing to do: the wake-up itself was the message */
    }
}

/* Sleep until next at the latest (now: the clock read just before), then handle what
 * came. */
static void wait_and_dispatch(struct eng_thread *t, uint64_t next, uint64_t now)
{
    struct epoll_event ev[MAX_EVENTS];
    int n = load_epoll_wait(t->epfd, ev, MAX_EVENTS, next > now ? next - now : 0);
    for (int k = 0; k < n; k++) {
        if (ev[k].data.u64 == WAKE_DATA)
            take_wake(t);
        else
            on_event(t, ev[k].data.u64, ev[k].events);
    }
}

void engine_loop(struct eng_thread *t, int queue_all)
{
    struct engine *e = t->e;
    const struct eng_driver *drv = e->drv;
    int ready_sent = 0;
    if (queue_all)
        for (uint32_t i = 0; i < t->n; i++)
            eng_queue(t, i);
    t->next_scan = clock_ns() + drv->scan_ns;
    for (;;) {
        uint64_t now = clock_ns();
        if (drv->turn(t, now))
            break;
        if (t->connecting)
            run_connects(t, now);
        if (!ready_sent && t->resolved == t->n) {
            ready_sent = 1;
            atomic_fetch_add(&e->ready, 1);
        }
        if (now >= t->next_scan) {
            scan(t, now);
            t->next_scan = now + drv->scan_ns;
        }
        now = clock_ns();
        uint64_t next = min_u64(t->next_scan, drv->next_wakeup(t, now));
        wait_and_dispatch(t, min_u64(next, connect_wakeup(t, now)), now);
    }
    for (uint32_t i = 0; i < t->n; i++)
        eng_close(t, i, 0);
    if (!ready_sent)
        atomic_fetch_add(&e->ready, 1);
    atomic_fetch_add(&e->done, 1);
}

int eng_thread_init(struct engine *e, struct eng_thread *t, int id, uint32_t n, int wakefd,
                    uint64_t start_ns, uint64_t index, uint64_t of)
{
    t->e = e;
    t->id = id;
    t->n = n;
    t->connecting = 1;
    t->attempt_limit = ENG_NO_LIMIT;
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->wakefd = wakefd >= 0 ? wakefd : eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->conns = calloc(n ? n : 1, sizeof *t->conns);
    t->rx = calloc(n ? n : 1, sizeof *t->rx);
    t->q = calloc(n ? n : 1, sizeof *t->q);
    t->rbuf = malloc(ENG_RBUF_SIZE);
    t->st = calloc(1, sizeof *t->st);
    if (t->epfd < 0 || t->wakefd < 0 || !t->conns || !t->rx || !t->q || !t->rbuf ||
        !t->st || ivlog_slot_init(t) < 0)
        return -1;
    for (int h = 0; h < ENG_HISTS; h++)
        hist_init(&t->st->h[h]);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_DATA};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wakefd, &ev) < 0)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        t->conns[i].fd = -1;
    if (e->o->connect_rate)
        rate_init(&t->crate, start_ns, e->o->connect_rate, index, of);
    return 0;
}

void eng_thread_free(struct eng_thread *t)
{
    if (t->epfd >= 0) /* descriptor 0 is valid: stdin may have been closed */
        close(t->epfd);
    if (t->wakefd >= 0)
        close(t->wakefd);
    for (uint32_t i = 0; t->rx && i < t->n; i++)
        reply_rx_reset(&t->rx[i], 1);
    free(t->conns);
    free(t->rx);
    free(t->q);
    free(t->dq);
    free(t->rbuf);
    free(t->st);
    ivlog_slot_free(t);
}

/* ---- threads and the main thread ---- */

void engine_wake_all(struct engine *e)
{
    uint64_t one = 1;
    for (int i = 0; i < e->nthreads; i++)
        if (write(e->t[i].wakefd, &one, sizeof one) < 0) {
            /* the counter is full: the thread is awake anyway */
        }
}

void engine_cpu_mark(struct engine *e) { cpu_now(&e->cpu0); }

int engine_wait_ready(struct engine *e, uint64_t (*live)(const struct engine *e))
{
    int tty = runctl_progress() && !e->o->json;
    uint64_t next_tick = clock_ns() + SECOND_NS;
    while (atomic_load(&e->ready) < e->nthreads) {
        if (runctl_wait(min_u64(clock_ns() + 50000000ull, next_tick))) {
            e->interrupted = 1;
            atomic_store(&e->stop, 2);
            engine_wake_all(e);
            return -1;
        }
        if (tty && clock_ns() >= next_tick) {
            fprintf(stderr, "[connecting] %" PRIu64 " of %" PRIu64 " connected\n", live(e),
                    e->o->connections);
            next_tick += SECOND_NS;
        }
    }
    return 0;
}

void engine_wait_done(struct engine *e, uint64_t first_tick,
                      void (*progress)(struct engine *e, uint64_t now))
{
    uint64_t next_tick = first_tick;
    int signals = runctl_signals();
    while (atomic_load(&e->done) < e->nthreads) {
        int s = runctl_wait(min_u64(clock_ns() + 20000000ull, next_tick));
        if (s != signals) {
            signals = s;
            e->interrupted = 1;
            atomic_store(&e->stop, s >= 2 ? 2 : 1); /* a second Ctrl-C stops waiting too */
            engine_wake_all(e);
        }
        uint64_t now = clock_ns();
        if (now >= next_tick) {
            progress(e, now);
            next_tick += SECOND_NS;
        }
    }
}

static void *thread_main(void *arg)
{
    engine_loop(arg, 1);
    return NULL;
}

/* Descriptors: every slot, plus a few per thread, plus a margin for the process. */
static int check_file_limit(const struct load_opts *o, const struct eng_driver *drv)
{
    uint64_t limit = load_raise_nofile();
    uint64_t need = o->connections + 4 * o->threads + 32;
    if (need <= limit)
        return 0;
    fprintf(stderr, "wharf %s: %" PRIu64 " %s need %" PRIu64 " file descriptors; the limit "
                    "is %" PRIu64 "%s\n",
            drv->name, o->connections, drv->conn_noun, need, limit, drv->limit_hint);
    return -1;
}

static uint64_t share(uint64_t total, uint64_t parts, uint64_t i)
{
    return total / parts + (i < total % parts);
}

/* Every thread's state; -1 (reported) when one cannot be set up. */
static int setup_threads(struct engine *e)
{
    const struct load_opts *o = e->o;
    uint64_t first = 0;
    for (int i = 0; i < e->nthreads; i++) {
        struct eng_thread *t = &e->t[i];
        uint32_t n = (uint32_t)share(o->connections, o->threads, (uint64_t)i);
        t->first_index = first;
        first += n;
        t->quota = o->requests ? share(o->requests, o->threads, (uint64_t)i) : ENG_NO_LIMIT;
        if (eng_thread_init(e, t, i, n, -1, e->t0, (uint64_t)i, (uint64_t)e->nthreads) < 0 ||
            e->drv->thread_init(t) < 0) {
            fprintf(stderr, "wharf %s: cannot set up thread %d: %s\n", e->drv->name, i,
                    strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Start the threads; returns how many started (all, or -1 after stopping those that did). */
static int start_threads(struct engine *e, int *started)
{
    /* Before the threads (see fdtable.h): a doubling of the descriptor table inside a
     * connect() would stall this thread's connections for milliseconds. */
    fdtable_reserve(e->o->connections + 64);
    for (int i = 0; i < e->nthreads; i++) {
        if (pthread_create(&e->t[i].th, NULL, thread_main, &e->t[i]) != 0) {
            fprintf(stderr, "wharf %s: cannot start thread %d\n", e->drv->name, i);
            atomic_store(&e->stop, 2);
            engine_wake_all(e);
            return -1;
        }
        (*started)++;
    }
    return 0;
}

static struct engine *engine_new(const struct load_opts *o, const struct eng_driver *drv, void *d)
{
    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->o = o;
    e->drv = drv;
    e->d = d;
    e->nthreads = (int)o->threads;
    e->t = calloc((size_t)e->nthreads, sizeof *e->t);
    if (!e->t) {
        free(e);
        return NULL;
    }
    /* -1, not 0 (a valid descriptor): the free runs on every thread, also on those whose
     * setup never began. */
    for (int i = 0; i < e->nthreads; i++)
        e->t[i].epfd = e->t[i].wakefd = -1;
    return e;
}

static void engine_free(struct engine *e)
{
    for (int i = 0; i < e->nthreads; i++) {
        if (e->t[i].e)
            e->drv->thread_free(&e->t[i]);
        eng_thread_free(&e->t[i]);
    }
    free(e->t);
    free(e);
}

int engine_run(const struct load_opts *o, const struct eng_driver *drv, void *d)
{
    if (check_file_limit(o, drv) < 0)
        return 2;
    if (runctl_init() < 0) {
        fprintf(stderr, "wharf %s: signals: %s\n", drv->name, strerror(errno));
        return 1;
    }
    struct engine *e = engine_new(o, drv, d);
    if (!e) {
        fprintf(stderr, "wharf %s: out of memory\n", drv->name);
        return 1;
    }
    e->t0 = clock_ns();
    endpoint_format(&o->ep, e->target, sizeof e->target);
    int status = ivlog_open(e, drv->ivlog_what) < 0 ? -1 : setup_threads(e), started = 0;
    engine_cpu_mark(e);
    if (status == 0)
        status = start_threads(e, &started);
    int ran = status == 0 ? drv->main(e) : -1;
    for (int i = 0; i < started; i++)
        pthread_join(e->t[i].th, NULL);
    int logged = ivlog_finish(e);
    if (status == 0) {
        cpu_now(&e->cpu);
        e->cpu.user_s -= e->cpu0.user_s;
        e->cpu.sys_s -= e->cpu0.sys_s;
        status = engine_report(e, ran);
        status = logged < 0 ? 1 : status;
    } else {
        status = 1;
    }
    engine_free(e);
    return status;
}
