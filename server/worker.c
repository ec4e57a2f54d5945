#include "worker.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "conn.h"
#include "drain_state.h"
#include "syn_queue.h"

#define LINGER_MS 2000          /* how long a lingering close waits for the peer's EOF */
#define INIT_WAIT_MS 10000      /* how long worker_start waits for the loop to be set up */

void worker_mark_todo(struct worker *w, struct conn *c)
{
    if (c->flags & CONN_TODO)
        return;
    c->flags |= CONN_TODO;
    c->todo_next = w->todo;
    w->todo = c;
}

/* The start handshake (worker.h): a mutex, and a condition variable on the monotonic
 * clock. 0, or -1 with a message logged. */
static int start_handshake_init(struct worker *w)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc == 0) {
        rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        if (rc == 0)
            rc = pthread_cond_init(&w->init_cond, &attr);
        pthread_condattr_destroy(&attr);
    }
    if (rc != 0) {
        log_error("worker %d: cannot create its start condition: %s", w->loop.id, strerror(rc));
        return -1;
    }
    rc = pthread_mutex_init(&w->init_lock, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&w->init_cond);
        log_error("worker %d: cannot create its start lock: %s", w->loop.id, strerror(rc));
        return -1;
    }
    w->init_state = 0;
    return 0;
}

/* Thread side of the start handshake: the backend is set up (1) or failed (-1). */
static void start_handshake_announce(struct worker *w, int state)
{
    pthread_mutex_lock(&w->init_lock);
    w->init_state = state;
    pthread_cond_signal(&w->init_cond);
    pthread_mutex_unlock(&w->init_lock);
}

/* Starter's side: init_state once the thread has announced it, or 0 when it has not
 * within INIT_WAIT_MS. */
static int start_handshake_wait(struct worker *w)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += INIT_WAIT_MS / 1000;
    deadline.tv_nsec += (INIT_WAIT_MS % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->init_lock);
    int rc = 0;
    while (w->init_state == 0 && rc == 0)
        rc = pthread_cond_timedwait(&w->init_cond, &w->init_lock, &deadline);
    int state = w->init_state;
    pthread_mutex_unlock(&w->init_lock);
    if (rc != 0 && rc != ETIMEDOUT)
        log_error("worker %d: waiting for its start: %s", w->loop.id, strerror(rc));
    return state;
}

int worker_init(struct worker *w, int id, const struct config *cfg, const struct backend *io,
                uint32_t max_sleep_ms)
{
    w->loop.id = id;
    w->cfg = cfg;
    w->loop.io = io;
    w->set = cfg->set;
    w->max_sleep_ms = max_sleep_ms;
    w->loop.stats = &w->stats;
    w->loop.env = &w->env;
    w->loop.set = &w->set;
    w->done_fd = -1;
    if (handoff_init(&w->handoff) < 0) {
        log_error("worker %d: cannot create its handoff queue: %s", id, strerror(errno));
        return -1;
    }
    if (start_handshake_init(w) < 0) {
        handoff_destroy(&w->handoff);
        return -1;
    }
    struct tlist *timers = w->loop.timers;
    timers[TIMER_IDLE] = (struct tlist){.timeout_ms = (uint32_t)w->set.idle_timeout_ms,
                                        .id = TIMER_IDLE};
    timers[TIMER_HEADER] = (struct tlist){.timeout_ms = (uint32_t)w->set.header_timeout_ms,
                                          .id = TIMER_HEADER};
    timers[TIMER_LINGER] = (struct tlist){.timeout_ms = LINGER_MS, .id = TIMER_LINGER};
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

/* --dispatch reuseport: this worker's own listener, watched by its own loop (the
 * backend registers it when the thread sets the loop up). */
int worker_add_listener(struct worker *w, const struct listener *l)
{
    if (w->accept.n_listeners == MAX_LISTENERS) {
        log_error("worker %d: too many listeners", w->loop.id);
        return -1;
    }
    w->accept.listeners[w->accept.n_listeners++] = *l;
    return 0;
}

int worker_add_udp(struct worker *w, int fd, const struct listen_spec *ep)
{
    if (w->n_udp == MAX_LISTENERS) {
        log_error("worker %d: too many udp listeners", w->loop.id);
        return -1;
    }
    w->udp[w->n_udp++] = (struct udp_port){.fd = fd, .ep = *ep, .batch = w->cfg->udp_batch};
    return 0;
}

void worker_deliver_own(void *arg, int fd, uint8_t proto, uint32_t peer)
{
    struct worker *w = arg;
    counter_add(&w->stats.accepted, 1);
    conn_open(w, fd, proto, peer);
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
    retime(&w->loop.timers[TIMER_IDLE], s->idle_timeout_ms);
    retime(&w->loop.timers[TIMER_HEADER], s->header_timeout_ms);
    w->set = *s;
    w->env.mode = s->mode;
    w->env.max_message = s->max_message;
    atomic_store_explicit(&w->accept.max_conns, s->max_conns, memory_order_relaxed);
}

void worker_take_handoff(struct worker *w)
{
    struct handoff_item *items;
    /* Before the take: once closed, this take has every connection the acceptor sent. */
    int fed_all = w->fed && !w->feed_over && handoff_closed(&w->handoff);
    size_t n = handoff_take(&w->handoff, &items);
    if (fed_all)
        w->feed_over = 1;
    for (size_t i = 0; i < n; i++)
        conn_open(w, items[i].fd, items[i].proto, items[i].peer);
    free(items);
    struct settings set;
    if (handoff_take_settings(&w->handoff, &set))
        apply_settings(w, &set);
    /* --drain-delay's lame-duck phase: announced through this wake-up (drain_state.h). */
    if (!w->env.draining && drain_state_get() != DRAIN_SERVING)
        w->env.draining = 1;
    int req = atomic_load_explicit(&w->drain_requested, memory_order_acquire);
    if (req && !w->loop.draining)
        start_drain(w);
    if (req == 2)
        w->drain_deadline_ms = 0;
}

/* Every connection, wherever its timer is: a snapshot, since draining moves them. */
static struct conn **snapshot_conns(struct worker *w, size_t *count)
{
    struct conn **all = malloc((w->loop.n_conns + 1) * sizeof *all);
    size_t n = 0;
    if (!all)
        return NULL;
    for (int l = 0; l < TIMER_LISTS; l++)
        for (struct tnode *t = w->loop.timers[l].head; t && n < w->loop.n_conns; t = t->next)
            all[n++] = conn_of_timer(t);
    *count = n;
    return all;
}

/* Let every connection see the new drain state (conn_settle closes the idle ones). */
static void revisit_all(struct worker *w)
{
    size_t n = 0;
    struct conn **all = snapshot_conns(w, &n);
    if (!all) {
        log_error("worker %d: out of memory while draining; cutting connections", w->loop.id);
        w->drain_deadline_ms = 0;
        return;
    }
    for (size_t i = 0; i < n; i++)
        conn_drain(w, all[i]);
    free(all);
}

/* Whether connections may still come in: through this worker's own listeners, or from
 * the acceptor thread, until it has closed the handoff. */
static int still_accepting(const struct worker *w)
{
    return w->accept.n_listeners || (w->fed && !w->feed_over);
}

/* This worker's own listeners close: what they hold is accepted first (to be served or
 * closed cleanly rather than reset by the close). */
static void stop_accepting(struct worker *w)
{
    if (!w->accept.n_listeners)
        return;
    accept_sweep(&w->accept, worker_deliver_own, w);
    w->loop.io->accept_stop(w);
    accept_ctx_close(&w->accept);
}

static void start_drain(struct worker *w)
{
    w->loop.draining = 1;
    w->env.draining = 1;
    w->drain_deadline_ms = clock_ms() + w->set.shutdown_timeout_ms;
    w->loop.drain_grace_ms = clock_ms() + drain_grace_ms(w->set.shutdown_timeout_ms);
    /* TCP_DEFER_ACCEPT stays on: what the grace accepts comes with its request (a silent
     * client is promoted by the kernel's SYN-ACK retransmit no later with it cleared). */
    if (!w->accept_grace || !syn_queue_holds(w->accept.listeners, w->accept.n_listeners))
        stop_accepting(w);
    else /* it accepts on until the grace's time is up */
        log_info("worker %d: %s", w->loop.id, DRAIN_KEEP_LISTENING);
    revisit_all(w);
}

/* The grace (worker_loop.h) ends in two steps. Accepting stops first: this worker's own
 * listeners when the grace's time is up, the acceptor's handoffs when it has closed them
 * (it stops at its own grace's end). Connections never used are closed one turn later,
 * so that the request a last accept brought with it (deferred, it came with the
 * connection) is read first: io_uring submits that receive only at the next turn. */
static void drain_grace_step(struct worker *w)
{
    if (w->grace_last_turn) {
        w->grace_last_turn = 0;
        w->loop.drain_grace_ms = 0;
        revisit_all(w);
        return;
    }
    if (clock_ms() < w->loop.drain_grace_ms)
        return;
    stop_accepting(w);
    if (!still_accepting(w))
        w->grace_last_turn = 1;
}

static void cut_all(struct worker *w)
{
    for (int l = 0; l < TIMER_LISTS; l++) {
        while (w->loop.timers[l].head) {
            struct conn *c = conn_of_timer(w->loop.timers[l].head);
            counter_add(&w->stats.shutdown_cut, 1);
            conn_close(w, c);
        }
    }
}

void worker_run_todo(struct worker *w)
{
    struct conn *c = w->todo;
    w->todo = NULL;
    while (c) {
        struct conn *next = c->todo_next;
        c->flags &= ~CONN_TODO;
        w->loop.io->revisit(w, c);
        c = next;
    }
}

static void expire_timers(struct worker *w)
{
    for (int l = 0; l < TIMER_LISTS; l++) {
        struct tlist *list = &w->loop.timers[l];
        if (!list->timeout_ms)
            continue;
        while (list->head && timer_expired(list->head->deadline, w->loop.now))
            conn_on_timeout(w, conn_of_timer(list->head));
    }
}

/* Free what was closed; a connection still on the to-do list waits one more round
 * (run_todo will unlink it first), one with operations in flight until their last
 * completion has arrived. */
static void free_closed(struct worker *w)
{
    struct conn *c = w->loop.closed, *keep = NULL;
    w->loop.closed = NULL;
    while (c) {
        struct conn *next = (struct conn *)c->timer.next;
        if ((c->flags & CONN_TODO) || (w->loop.io->conn_busy && w->loop.io->conn_busy(c))) {
            c->timer.next = (struct tnode *)keep;
            keep = c;
        } else {
            conn_free(w, c);
        }
        c = next;
    }
    w->loop.closed = keep;
}

void worker_free_closed_all(struct worker *w)
{
    struct conn *c = w->loop.closed;
    w->loop.closed = NULL;
    while (c) {
        struct conn *next = (struct conn *)c->timer.next;
        conn_free(w, c);
        c = next;
    }
    w->todo = NULL;
}

int worker_next_timeout_ms(const struct worker *w)
{
    if (w->todo || w->accept.pending)
        return 0;
    int64_t best = -1;
    for (int l = 0; l < TIMER_LISTS; l++) {
        const struct tlist *list = &w->loop.timers[l];
        if (!list->timeout_ms || !list->head)
            continue;
        int64_t left = (int32_t)(list->head->deadline - w->loop.now);
        if (left < 0)
            left = 0;
        if (best < 0 || left < best)
            best = left + 1; /* +1: the coarse clock must have passed the deadline */
    }
    if (w->loop.draining) {
        uint64_t now = clock_ms();
        /* After the grace's time, waiting for the acceptor: its handoff_close wakes us. */
        uint64_t until = w->grace_last_turn ? now
                         : w->loop.drain_grace_ms > now ? w->loop.drain_grace_ms
                                                        : w->drain_deadline_ms;
        int64_t left = until > now ? (int64_t)(until - now) : 0;
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

void worker_update_clock(struct worker *w)
{
    w->loop.now = (uint32_t)(clock_ms_coarse() - w->epoch_ms);
    http_cache_refresh(&w->http, time(NULL));
}

int worker_turn_end(struct worker *w)
{
    worker_run_todo(w);
    expire_timers(w);
    if (w->accept.paused_until_ms && accept_pause_left_ms(&w->accept) == 0)
        w->loop.io->accept_resume(w);
    if (w->loop.draining && w->loop.drain_grace_ms)
        drain_grace_step(w);
    if (w->loop.draining && ((w->loop.n_conns == 0 && !still_accepting(w)) ||
                             clock_ms() >= w->drain_deadline_ms)) {
        cut_all(w);
        free_closed(w);
        return 1;
    }
    free_closed(w);
    return 0;
}

/* finished is set: wake the main thread, which waits to join (a failed write leaves
 * it to notice at its next poll timeout). */
static void worker_finished(struct worker *w)
{
    atomic_store_explicit(&w->finished, 1, memory_order_release);
    uint64_t one = 1;
    while (w->done_fd >= 0 && write(w->done_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->loop.peers = w->accept.peers; /* set by main after worker_init */
    w->epoch_ms = clock_ms_coarse();
    worker_update_clock(w);
    if (w->loop.io->init(w) < 0) {
        w->loop.io->fini(w);
        worker_finished(w);
        start_handshake_announce(w, -1);
        return NULL;
    }
    start_handshake_announce(w, 1);
    w->loop.io->run(w);
    w->loop.io->fini(w);
    worker_free_closed_all(w);
    worker_finished(w);
    return NULL;
}

int worker_start(struct worker *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        log_error("cannot start worker %d: %s", w->loop.id, strerror(rc));
        return -1;
    }
    int state = start_handshake_wait(w);
    if (state != 1) {
        if (state == 0)
            log_error("worker %d: its %s loop was not ready after %d ms", w->loop.id,
                      w->loop.io->name, INIT_WAIT_MS);
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
    for (int i = 0; i < w->n_udp; i++)
        udp_port_close(&w->udp[i]);
    handoff_destroy(&w->handoff);
    pthread_cond_destroy(&w->init_cond);
    pthread_mutex_destroy(&w->init_lock);
}

int workers_cpus_allowed(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void workers_pin(struct worker *ws, int n_workers)
{
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) < 0)
        return;
    int cpus[CPU_SETSIZE], n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &allowed))
            cpus[n++] = c;
    for (int i = 0; i < n_workers && n > 0; i++) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[i % n], &one);
        int rc = pthread_setaffinity_np(ws[i].thread, sizeof one, &one);
        if (rc != 0)
            log_warn("--cpu-affinity: worker %d: %s", i, strerror(rc));
    }
}
