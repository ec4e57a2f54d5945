#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "conn.h"

#define MAX_EVENTS 512
#define LINGER_MS 2000          /* how long a lingering close waits for the peer's EOF */
#define OUT_KEEP (256 * 1024)   /* scratch output kept between connections */

void worker_timer_set(struct worker *w, struct conn *c, int list)
{
    if (c->timer.list != TIMER_NONE)
        tlist_remove(&w->timers[c->timer.list], &c->timer);
    tlist_append(&w->timers[list], &c->timer, w->now);
}

void worker_timer_touch(struct worker *w, struct conn *c)
{
    /* Touched even with the idle timeout off, so a reload that turns it on finds
     * deadlines that follow the last activity. */
    if (c->timer.list == TIMER_IDLE)
        tlist_touch(&w->timers[TIMER_IDLE], &c->timer, w->now);
}

void worker_mark_ready(struct worker *w, struct conn *c)
{
    if (c->flags & CONN_READY)
        return;
    c->flags |= CONN_READY;
    c->ready_next = w->ready;
    w->ready = c;
}

int worker_init(struct worker *w, int id, const struct config *cfg, uint32_t max_sleep_ms)
{
    w->id = id;
    w->cfg = cfg;
    w->set = cfg->set;
    w->max_sleep_ms = max_sleep_ms;
    w->epfd = -1;
    if (handoff_init(&w->handoff) < 0) {
        log_error("worker %d: cannot create its handoff queue: %s", id, strerror(errno));
        return -1;
    }
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->rbuf = malloc(WORKER_RBUF_SIZE);
    if (w->epfd < 0 || !w->rbuf) {
        log_error("worker %d: %s", id, strerror(errno));
        return -1;
    }
    /* data.ptr == &w->handoff marks the handoff eventfd; listeners point into
     * w->accept.listeners; everything else is a connection. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->handoff};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->handoff.efd, &ev) < 0) {
        log_error("worker %d: epoll_ctl: %s", id, strerror(errno));
        return -1;
    }
    w->timers[TIMER_IDLE] = (struct tlist){.timeout_ms = (uint32_t)w->set.idle_timeout_ms, .id = TIMER_IDLE};
    w->timers[TIMER_HEADER] = (struct tlist){.timeout_ms = (uint32_t)w->set.header_timeout_ms, .id = TIMER_HEADER};
    w->timers[TIMER_LINGER] = (struct tlist){.timeout_ms = LINGER_MS, .id = TIMER_LINGER};
    w->env = (struct handler_env){
        .mode = w->set.mode,
        .max_message = w->set.max_message,
        .settings = &w->set,
        .test_hooks = cfg->test_hooks,
        .http = &w->http,
        .stats = &w->stats,
    };
    accept_ctx_init(&w->accept, w->set.max_conns);
    return 0;
}

/* --dispatch reuseport: this worker's own listener, watched by its own epoll. */
int worker_add_listener(struct worker *w, const struct listener *l)
{
    struct listener *mine = &w->accept.listeners[w->accept.n_listeners];
    *mine = *l;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = mine};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
        log_error("worker %d: epoll_ctl on a listener: %s", w->id, strerror(errno));
        return -1;
    }
    w->accept.n_listeners++;
    return 0;
}

static int is_listener(const struct worker *w, const void *p)
{
    const struct listener *l = p;
    return l >= w->accept.listeners && l < w->accept.listeners + MAX_LISTENERS;
}

static void deliver_own(void *arg, int fd, uint8_t proto)
{
    struct worker *w = arg;
    counter_add(&w->stats.accepted, 1);
    conn_open(w, fd, proto);
}

static void accept_own(struct worker *w)
{
    for (int i = 0; i < w->accept.n_listeners; i++)
        accept_drain(&w->accept, &w->accept.listeners[i], deliver_own, w);
}

static void start_drain(struct worker *w);

/* A new timeout applies to connections already waiting too: shifting every deadline
 * by the difference keeps the list in order (all moved alike). */
static void retime(struct tlist *list, uint64_t timeout_ms)
{
    uint32_t delta = (uint32_t)timeout_ms - list->timeout_ms;
    for (struct tnode *t = list->head; t; t = t->next)
        t->deadline += delta;
    list->timeout_ms = (uint32_t)timeout_ms;
}

static void apply_settings(struct worker *w, const struct settings *s)
{
    retime(&w->timers[TIMER_IDLE], s->idle_timeout_ms);
    retime(&w->timers[TIMER_HEADER], s->header_timeout_ms);
    w->set = *s;
    w->env.mode = s->mode;
    w->env.max_message = s->max_message;
    atomic_store_explicit(&w->accept.max_conns, s->max_conns, memory_order_relaxed);
}

static void take_handoff(struct worker *w)
{
    struct handoff_item *items;
    size_t n = handoff_take(&w->handoff, &items);
    for (size_t i = 0; i < n; i++)
        conn_open(w, items[i].fd, items[i].proto);
    free(items);
    struct settings set;
    if (handoff_take_settings(&w->handoff, &set))
        apply_settings(w, &set);
    int req = atomic_load_explicit(&w->drain_requested, memory_order_acquire);
    if (req && !w->draining)
        start_drain(w);
    if (req == 2)
        w->drain_deadline_ms = 0;
}

/* Every connection, wherever its timer is: a snapshot, since draining moves them. */
static struct conn **snapshot_conns(struct worker *w, size_t *count)
{
    struct conn **all = malloc((w->n_conns + 1) * sizeof *all);
    size_t n = 0;
    if (!all)
        return NULL;
    for (int l = 0; l < TIMER_LISTS; l++)
        for (struct tnode *t = w->timers[l].head; t && n < w->n_conns; t = t->next)
            all[n++] = conn_of_timer(t);
    *count = n;
    return all;
}

static void start_drain(struct worker *w)
{
    w->draining = 1;
    w->env.draining = 1;
    w->drain_deadline_ms = clock_ms() + w->set.shutdown_timeout_ms;
    accept_ctx_close(&w->accept);
    size_t n = 0;
    struct conn **all = snapshot_conns(w, &n);
    if (!all) {
        log_error("worker %d: out of memory while draining; cutting connections", w->id);
        w->drain_deadline_ms = 0;
        return;
    }
    for (size_t i = 0; i < n; i++)
        conn_drain(w, all[i]);
    free(all);
}

static void cut_all(struct worker *w)
{
    for (int l = 0; l < TIMER_LISTS; l++) {
        while (w->timers[l].head) {
            struct conn *c = conn_of_timer(w->timers[l].head);
            counter_add(&w->stats.shutdown_cut, 1);
            conn_close(w, c);
        }
    }
}

static void run_ready(struct worker *w)
{
    struct conn *c = w->ready;
    w->ready = NULL;
    while (c) {
        struct conn *next = c->ready_next;
        c->flags &= ~CONN_READY;
        conn_resume_read(w, c);
        c = next;
    }
}

static void expire_timers(struct worker *w)
{
    for (int l = 0; l < TIMER_LISTS; l++) {
        struct tlist *list = &w->timers[l];
        if (!list->timeout_ms)
            continue;
        while (list->head && timer_expired(list->head->deadline, w->now))
            conn_on_timeout(w, conn_of_timer(list->head));
    }
}

/* Free what was closed during this batch; a connection still on the ready list waits
 * one more round (run_ready will unlink it first). */
static void free_closed(struct worker *w)
{
    struct conn *c = w->closed, *keep = NULL;
    w->closed = NULL;
    while (c) {
        struct conn *next = (struct conn *)c->timer.next;
        if (c->flags & CONN_READY) {
            c->timer.next = (struct tnode *)keep;
            keep = c;
        } else {
            free(c);
        }
        c = next;
    }
    w->closed = keep;
}

static int next_timeout_ms(const struct worker *w)
{
    if (w->ready)
        return 0;
    int64_t best = -1;
    for (int l = 0; l < TIMER_LISTS; l++) {
        const struct tlist *list = &w->timers[l];
        if (!list->timeout_ms || !list->head)
            continue;
        int64_t left = (int32_t)(list->head->deadline - w->now);
        if (left < 0)
            left = 0;
        if (best < 0 || left < best)
            best = left + 1; /* +1: the coarse clock must have passed the deadline */
    }
    if (w->draining) {
        uint64_t now = clock_ms();
        int64_t left = w->drain_deadline_ms > now ? (int64_t)(w->drain_deadline_ms - now) : 0;
        if (best < 0 || left < best)
            best = left;
    }
    int pause = accept_pause_left_ms(&w->accept);
    if (pause && (best < 0 || pause < best))
        best = pause;
    if (w->max_sleep_ms && (best < 0 || best > w->max_sleep_ms))
        best = w->max_sleep_ms;
    return (int)best;
}

static void update_clock(struct worker *w)
{
    w->now = (uint32_t)(clock_ms_coarse() - w->epoch_ms);
    http_cache_refresh(&w->http, time(NULL));
}

static void dispatch_events(struct worker *w, struct epoll_event *ev, int n)
{
    for (int i = 0; i < n; i++) {
        void *p = ev[i].data.ptr;
        if (p == &w->handoff)
            take_handoff(w);
        else if (is_listener(w, p))
            accept_drain(&w->accept, p, deliver_own, w);
        else
            conn_on_event(w, p, ev[i].events);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event ev[MAX_EVENTS];
    w->epoch_ms = clock_ms_coarse();
    update_clock(w);
    for (;;) {
        atomic_fetch_add_explicit(&w->heartbeat, 1, memory_order_relaxed);
        int n = epoll_wait(w->epfd, ev, MAX_EVENTS, next_timeout_ms(w));
        if (n < 0 && errno != EINTR) {
            log_error("worker %d: epoll_wait: %s", w->id, strerror(errno));
            break;
        }
        update_clock(w);
        dispatch_events(w, ev, n > 0 ? n : 0);
        run_ready(w);
        expire_timers(w);
        if (w->accept.paused_until_ms && accept_pause_left_ms(&w->accept) == 0)
            accept_own(w);
        if (w->draining && (w->n_conns == 0 || clock_ms() >= w->drain_deadline_ms)) {
            cut_all(w);
            free_closed(w);
            break;
        }
        free_closed(w);
    }
    atomic_store_explicit(&w->finished, 1, memory_order_release);
    return NULL;
}

int worker_start(struct worker *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        log_error("cannot start worker %d: %s", w->id, strerror(rc));
        return -1;
    }
    return 0;
}

void worker_request_drain(struct worker *w, int cut)
{
    atomic_store_explicit(&w->drain_requested, cut ? 2 : 1, memory_order_release);
    handoff_wake(&w->handoff);
}

void worker_join(struct worker *w) { pthread_join(w->thread, NULL); }

void worker_destroy(struct worker *w)
{
    accept_ctx_close(&w->accept);
    handoff_destroy(&w->handoff);
    if (w->epfd >= 0)
        close(w->epfd);
    free(w->rbuf);
    buf_release(&w->out);
    (void)OUT_KEEP;
}
