/* wharfd: start-up, signals and shutdown. The threads do the serving:
 * acceptor.c takes connections in, worker.c/conn.c serve them. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "../common/version.h"
#include "acceptor.h"
#include "config.h"
#include "listener.h"
#include "stats.h"
#include "worker.h"

/* Descriptors that are not connections: epoll and eventfds per thread, listeners,
 * stdio, the EMFILE reserves, and some slack for logging and /proc reads. */
static uint64_t reserved_fds(const struct config *cfg)
{
    int listeners = cfg->n_listen * (cfg->dispatch == DISPATCH_REUSEPORT ? cfg->workers : 1);
    return 32 + 4 * (uint64_t)cfg->workers + (uint64_t)listeners;
}

static int cpus_allowed(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Raise the soft file limit to the hard one and size --max-conns by it. */
static uint64_t apply_file_limit(struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        rl.rlim_cur = rl.rlim_max = 1024;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            log_warn("cannot raise the file limit from %llu to %llu: %s", (unsigned long long)old,
                     (unsigned long long)rl.rlim_max, strerror(errno));
            rl.rlim_cur = old;
        }
    }
    uint64_t limit = rl.rlim_cur, reserve = reserved_fds(cfg);
    uint64_t capacity = limit > reserve ? limit - reserve : 1;
    log_info("file limit %llu: room for %llu connections", (unsigned long long)limit,
             (unsigned long long)capacity);
    if (cfg->max_conns == 0) {
        cfg->max_conns = capacity;
    } else if (cfg->max_conns > capacity) {
        log_warn("--max-conns %llu is more than the file limit allows; using %llu (raise "
                 "'ulimit -n')",
                 (unsigned long long)cfg->max_conns, (unsigned long long)capacity);
        cfg->max_conns = capacity;
    }
    return capacity;
}

static int block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGQUIT);
    /* Blocked before any thread starts, so every thread inherits the mask and the
     * signals reach only the main thread's signalfd. */
    if (pthread_sigmask(SIG_BLOCK, set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN); /* a peer that vanished is an EPIPE, never a crash */
    return signalfd(-1, set, SFD_CLOEXEC);
}

struct server {
    struct config cfg;
    struct worker *workers;
    struct listener listeners[MAX_LISTENERS * MAX_WORKERS];
    int n_listeners;
    struct acceptor acceptor;
    int use_acceptor;
    struct stats_registry registry;
};

static int open_listeners(struct server *s)
{
    const struct config *cfg = &s->cfg;
    struct listen_opts o = {
        .backlog = listener_effective_backlog(cfg->backlog),
        .reuseport = cfg->dispatch == DISPATCH_REUSEPORT,
        .nodelay = cfg->nodelay,
    };
    int copies = o.reuseport ? cfg->workers : 1;
    for (int i = 0; i < cfg->n_listen; i++) {
        struct endpoint ep = cfg->listen[i];
        for (int k = 0; k < copies; k++) {
            char err[256];
            struct listener *l = &s->listeners[s->n_listeners];
            if (listener_open(l, &ep, &o, err, sizeof err) < 0) {
                log_error("%s", err);
                return -1;
            }
            ep = l->ep; /* with port 0, the other copies join the port the first one got */
            s->n_listeners++;
        }
        s->cfg.listen[i] = ep;
    }
    return 0;
}

static int start_threads(struct server *s)
{
    struct config *cfg = &s->cfg;
    for (int i = 0; i < cfg->workers; i++) {
        if (worker_init(&s->workers[i], i, cfg) < 0)
            return -1;
        s->registry.workers[i] = &s->workers[i].stats;
    }
    s->registry.n_workers = cfg->workers;
    if (cfg->dispatch == DISPATCH_REUSEPORT) {
        /* listeners[] holds, per endpoint, one copy per worker. */
        for (int i = 0; i < s->n_listeners; i++)
            if (worker_add_listener(&s->workers[i % cfg->workers], &s->listeners[i]) < 0)
                return -1;
        for (int i = 0; i < cfg->workers; i++)
            s->registry.acceptors[i] = &s->workers[i].accept.stats;
        s->registry.n_acceptors = cfg->workers;
    } else {
        if (acceptor_init(&s->acceptor, cfg, s->listeners, s->n_listeners, s->workers,
                          cfg->workers) < 0)
            return -1;
        s->registry.acceptors[0] = &s->acceptor.ctx.stats;
        s->registry.n_acceptors = 1;
    }
    stats_register(&s->registry);
    for (int i = 0; i < cfg->workers; i++)
        if (worker_start(&s->workers[i]) < 0)
            return -1;
    if (cfg->dispatch != DISPATCH_REUSEPORT) {
        if (acceptor_start(&s->acceptor) < 0)
            return -1;
        s->use_acceptor = 1;
    }
    return 0;
}

static void log_ready(const struct server *s)
{
    char list[MAX_LISTENERS * (ADDR_TEXT_MAX + 16)] = "";
    size_t off = 0;
    for (int i = 0; i < s->cfg.n_listen; i++) {
        char text[ADDR_TEXT_MAX + 16];
        endpoint_format(&s->cfg.listen[i], text, sizeof text);
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? " " : "", text);
    }
    log_info("wharfd %s ready: %s; %d worker%s, dispatch %s, mode %s, max %llu connections",
             WHARF_VERSION, list, s->cfg.workers, s->cfg.workers == 1 ? "" : "s",
             dispatch_name(s->cfg.dispatch), mode_name(s->cfg.mode),
             (unsigned long long)s->cfg.max_conns);
}

/* Wait for SIGTERM/SIGINT/SIGQUIT, logging stats every --stats-interval. */
static void wait_for_stop(int sfd, const struct config *cfg)
{
    uint64_t next_stats = cfg->stats_interval_ms ? clock_ms() + cfg->stats_interval_ms : 0;
    for (;;) {
        int timeout = -1;
        if (next_stats) {
            uint64_t now = clock_ms();
            timeout = next_stats > now ? (int)(next_stats - now) : 0;
        }
        struct pollfd pfd = {.fd = sfd, .events = POLLIN};
        int n = poll(&pfd, 1, timeout);
        if (n < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            return;
        }
        if (next_stats && clock_ms() >= next_stats) {
            stats_log_line("stats: ");
            next_stats += cfg->stats_interval_ms;
        }
        if (n <= 0)
            continue;
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof si) != sizeof si)
            continue;
        if (si.ssi_signo == SIGHUP) {
            log_info("SIGHUP: nothing to reload (no --config file)");
            continue;
        }
        log_info("%s: shutting down: no new connections, answering what was received "
                 "(up to %.1f s)",
                 strsignal((int)si.ssi_signo), (double)cfg->shutdown_timeout_ms / 1000.0);
        return;
    }
}

static int all_finished(const struct server *s)
{
    for (int i = 0; i < s->cfg.workers; i++)
        if (!atomic_load_explicit(&s->workers[i].finished, memory_order_acquire))
            return 0;
    return 1;
}

/* Stop accepting, let the workers drain, and wait; a second SIGTERM/SIGINT cuts the
 * remaining connections at once instead of waiting for --shutdown-timeout. */
static void drain_and_join(struct server *s, int sfd)
{
    if (s->use_acceptor)
        acceptor_stop(&s->acceptor);
    for (int i = 0; i < s->cfg.workers; i++)
        worker_request_drain(&s->workers[i], 0);
    int cut = 0;
    while (!all_finished(s)) {
        struct pollfd pfd = {.fd = sfd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0 || cut)
            continue;
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof si) != sizeof si || si.ssi_signo == SIGHUP)
            continue;
        log_warn("%s again: closing every connection now", strsignal((int)si.ssi_signo));
        for (int i = 0; i < s->cfg.workers; i++)
            worker_request_drain(&s->workers[i], 1);
        cut = 1;
    }
    for (int i = 0; i < s->cfg.workers; i++)
        worker_join(&s->workers[i]);
}

int main(int argc, char **argv)
{
    static struct server s;
    int rc = config_parse(&s.cfg, argc, argv);
    if (rc)
        return rc == 1 ? 0 : rc;
    log_init("wharfd", s.cfg.log_level);
    if (s.cfg.workers == 0)
        s.cfg.workers = cpus_allowed();
    if (s.cfg.workers > MAX_WORKERS)
        s.cfg.workers = MAX_WORKERS;

    s.registry.cfg = &s.cfg;
    s.registry.start_ms = clock_ms();
    s.registry.backend = "epoll";
    s.registry.capacity = apply_file_limit(&s.cfg);

    sigset_t set;
    int sfd = block_signals(&set);
    if (sfd < 0) {
        log_error("signalfd: %s", strerror(errno));
        return 1;
    }
    if (posix_memalign((void **)&s.workers, 64, (size_t)s.cfg.workers * sizeof *s.workers) != 0) {
        log_error("out of memory");
        return 1;
    }
    memset(s.workers, 0, (size_t)s.cfg.workers * sizeof *s.workers);
    if (open_listeners(&s) < 0 || start_threads(&s) < 0)
        return 1;
    log_ready(&s);

    wait_for_stop(sfd, &s.cfg);
    drain_and_join(&s, sfd);
    stats_log_line("exit: ");
    for (int i = 0; i < s.cfg.workers; i++)
        worker_destroy(&s.workers[i]);
    free(s.workers);
    close(sfd);
    return 0;
}
