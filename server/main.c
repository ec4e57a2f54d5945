/* wharfd: start-up, signals, systemd, reload and shutdown. The threads do the
 * serving: acceptor.c takes connections in, worker.c/conn.c serve them. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "../common/version.h"
#include "acceptor.h"
#include "backend.h"
#include "config.h"
#include "drain_state.h"
#include "filelimit.h"
#include "listener.h"
#include "peer.h"
#include "sd.h"
#include "stats.h"
#include "udp.h"
#include "worker.h"

#define STATUS_INTERVAL_MS 5000 /* how often systemd's STATUS= line is refreshed */

struct server {
    struct config cfg;
    struct worker *workers;
    struct listener listeners[MAX_LISTENERS * MAX_WORKERS];
    int n_listeners;
    int inherited;                /* listeners came from systemd */
    struct udp_port udp[MAX_LISTENERS * MAX_WORKERS]; /* udp://: one per port and worker */
    int n_udp;
    struct acceptor acceptor;
    int use_acceptor;
    struct stats_registry registry;
    const struct backend *io;
    uint64_t capacity;
    uint64_t watchdog_ms;         /* ping interval; 0: no watchdog */
    uint64_t last_heartbeat[MAX_WORKERS];
    uint8_t stuck[MAX_WORKERS];
    struct stats_totals last_totals;
    uint64_t last_totals_ms;
    struct peer_table peers;      /* --max-conns-per-ip; the one table all threads share */
    int done_efd;                 /* written by each worker as it finishes; -1: none */
};

static int block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    /* Blocked before any thread starts, so every thread inherits the mask and the
     * signals reach only the main thread's signalfd. */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN); /* a peer that vanished is an EPIPE, never a crash */
    return signalfd(-1, &set, SFD_CLOEXEC);
}

/* udp://: a socket per worker on the same port (the first one resolves port 0). */
static int open_udp(struct server *s, struct listen_spec *ep)
{
    char err[256];
    for (int k = 0; k < s->cfg.workers; k++) {
        int fd = udp_open(ep, &s->cfg.sock, ep, err, sizeof err);
        if (fd < 0) {
            log_error("%s", err);
            return -1;
        }
        s->udp[s->n_udp++] = (struct udp_port){.fd = fd, .ep = *ep};
    }
    return 0;
}

static int open_listeners(struct server *s)
{
    struct config *cfg = &s->cfg;
    char err[256];
    int n = sd_listen_fds(s->listeners, MAX_LISTENERS, err, sizeof err);
    if (n < 0) {
        log_error("socket activation: %s", err);
        return -1;
    }
    if (n > 0) {
        s->inherited = 1;
        s->n_listeners = n;
        cfg->n_listen = n;
        for (int i = 0; i < n; i++) {
            cfg->listen[i] = s->listeners[i].ep;
            if (listener_apply_sockopts(s->listeners[i].fd, &cfg->sock, err, sizeof err) < 0) {
                log_error("inherited socket: %s", err);
                return -1;
            }
        }
        if (cfg->dispatch == DISPATCH_REUSEPORT) {
            log_warn("--dispatch reuseport needs a listener per worker; with sockets from "
                     "systemd, using least");
            cfg->dispatch = DISPATCH_LEAST;
        }
        log_info("using %d listening socket%s from systemd", n, n == 1 ? "" : "s");
        return 0;
    }
    struct listen_opts o = {
        .backlog = listener_effective_backlog(cfg->backlog),
        .reuseport = cfg->dispatch == DISPATCH_REUSEPORT,
        .sock = &cfg->sock,
    };
    int copies = o.reuseport ? cfg->workers : 1;
    for (int i = 0; i < cfg->n_listen; i++) {
        if (cfg->listen[i].transport == LISTEN_DATAGRAM) {
            if (open_udp(s, &cfg->listen[i]) < 0)
                return -1;
            continue;
        }
        struct listen_spec ep = cfg->listen[i];
        for (int k = 0; k < copies; k++) {
            struct listener *l = &s->listeners[s->n_listeners];
            if (listener_open(l, &ep, &o, err, sizeof err) < 0) {
                log_error("%s", err);
                return -1;
            }
            ep = l->ep; /* with port 0, the other copies join the port the first one got */
            s->n_listeners++;
        }
        cfg->listen[i] = ep;
    }
    return 0;
}

/* --user: give up root once the listeners are bound, before any thread starts. */
static int drop_privileges(const char *user)
{
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        log_error("--user %s: no such user", user);
        return -1;
    }
    if (geteuid() == pw->pw_uid)
        return 0;
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        log_error("--user %s: cannot switch user: %s%s", user, strerror(errno),
                  errno == EPERM ? " (only root can)" : "");
        return -1;
    }
    if (setuid(0) == 0) {
        log_error("--user %s: root privileges could be regained; refusing to run", user);
        return -1;
    }
    log_info("running as user %s (uid %d)", user, (int)pw->pw_uid);
    return 0;
}

/* Workers accept on their own listeners with --dispatch reuseport, and when there is only
 * one worker: an acceptor thread would hand it every connection across a thread switch
 * and an eventfd, for no choice to make. */
static int workers_accept(const struct config *cfg)
{
    return cfg->dispatch == DISPATCH_REUSEPORT || cfg->workers == 1;
}

/* Draining with TCP_DEFER_ACCEPT, the listeners stay open through the grace (drain_state.h).
 * Not systemd's: closing ours leaves them open there, queueing for the next instance. */
static int keeps_listeners(const struct server *s)
{
    return s->cfg.sock.defer_accept_s > 0 && !s->inherited;
}

/* --max-conns-per-ip: the one table every accepting thread counts in. */
static int share_peer_table(struct server *s)
{
    if (peer_table_init(&s->peers, s->cfg.max_conns_per_ip, (uint32_t)(s->capacity / 4)) < 0) {
        log_error("--max-conns-per-ip: %s", strerror(errno));
        return -1;
    }
    s->acceptor.ctx.peers = &s->peers; /* used only if the acceptor thread runs */
    for (int i = 0; i < s->cfg.workers; i++)
        s->workers[i].accept.peers = &s->peers;
    s->registry.peers = &s->peers;
    return 0;
}

static int start_threads(struct server *s)
{
    struct config *cfg = &s->cfg;
    uint32_t max_sleep = (uint32_t)(s->watchdog_ms / 2);
    for (int i = 0; i < cfg->workers; i++) {
        if (worker_init(&s->workers[i], i, cfg, s->io, max_sleep) < 0)
            return -1;
        s->workers[i].done_fd = s->done_efd;
        s->workers[i].fed = !workers_accept(cfg); /* connections come from the acceptor */
        s->workers[i].accept_grace = keeps_listeners(s);
        s->registry.workers[i] = &s->workers[i].stats;
        s->registry.handoffs[i] = &s->workers[i].handoff;
        s->workers[i].env.registry = &s->registry;
        s->workers[i].accept.registry = &s->registry;
    }
    s->registry.n_workers = cfg->workers;
    s->registry.listeners = s->listeners; /* main's copies: their fds are never reassigned */
    s->registry.n_listeners = s->n_listeners;
    for (int i = 0; i < s->n_udp; i++) /* per port, one copy per worker */
        if (worker_add_udp(&s->workers[i % cfg->workers], s->udp[i].fd, &s->udp[i].ep) < 0)
            return -1;
    if (workers_accept(cfg)) {
        /* listeners[] holds, per endpoint, one copy per worker. */
        for (int i = 0; i < s->n_listeners; i++)
            if (worker_add_listener(&s->workers[i % cfg->workers], &s->listeners[i]) < 0)
                return -1;
        for (int i = 0; i < cfg->workers; i++)
            s->registry.acceptors[i] = &s->workers[i].accept.stats;
        s->registry.n_acceptors = cfg->workers;
    } else {
        struct accept_target to[MAX_WORKERS];
        for (int i = 0; i < cfg->workers; i++)
            to[i] = (struct accept_target){&s->workers[i].handoff, &s->workers[i].stats};
        if (acceptor_init(&s->acceptor, cfg, s->listeners, s->n_listeners, to, cfg->workers) < 0)
            return -1;
        s->registry.acceptors[0] = &s->acceptor.ctx.stats;
        s->acceptor.ctx.registry = &s->registry;
        s->registry.n_acceptors = 1;
    }
    if (cfg->max_conns_per_ip && share_peer_table(s) < 0)
        return -1;
    for (int i = 0; i < cfg->workers; i++)
        if (worker_start(&s->workers[i]) < 0)
            return -1;
    if (cfg->cpu_affinity)
        workers_pin(s->workers, s->cfg.workers);
    if (!workers_accept(cfg)) {
        if (acceptor_start(&s->acceptor) < 0)
            return -1;
        s->use_acceptor = 1;
    }
    return 0;
}

/* READY=1 promises every worker runs: wait for each loop's first heartbeat. */
static void wait_workers_running(const struct server *s)
{
    uint64_t deadline = clock_ms() + 5000;
    for (int i = 0; i < s->cfg.workers && clock_ms() < deadline; i++)
        while (!atomic_load_explicit(&s->workers[i].heartbeat, memory_order_relaxed) &&
               clock_ms() < deadline)
            usleep(1000);
}

static void log_ready(const struct server *s)
{
    char list[MAX_LISTENERS * (ADDR_TEXT_MAX + 16)] = "";
    size_t off = 0;
    for (int i = 0; i < s->cfg.n_listen; i++) {
        char text[ADDR_TEXT_MAX + 16];
        listen_spec_format(&s->cfg.listen[i], text, sizeof text);
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? " " : "", text);
    }
    log_info("wharfd %s ready: %s; %d worker%s (%s), dispatch %s, mode %s, "
             "max %llu connections; on SIGTERM: drain delay %.1f s, shutdown timeout %.1f s",
             WHARF_VERSION, list, s->cfg.workers,
             s->cfg.workers == 1 ? "" : "s", s->io->name,
             s->use_acceptor ? dispatch_name(s->cfg.dispatch)
             : s->cfg.workers == 1 ? "none (the one worker accepts)" : "reuseport",
             mode_name(s->cfg.set.mode), (unsigned long long)s->cfg.set.max_conns,
             (double)s->cfg.set.drain_delay_ms / 1000.0,
             (double)s->cfg.set.shutdown_timeout_ms / 1000.0);
}

static void notify_status(struct server *s)
{
    if (!sd_notify_enabled())
        return;
    struct stats_totals t;
    stats_totals(&s->registry, &t);
    uint64_t now = clock_ms();
    double secs = (double)(now - s->last_totals_ms) / 1000.0;
    double rps = s->last_totals_ms && secs > 0 ? (double)(t.messages - s->last_totals.messages) / secs
                                               : 0.0;
    sd_notify("STATUS=%s%llu connections, %.0f requests/s, %llu served",
              drain_state_get() == DRAIN_SERVING ? "" : "draining (/healthz says 503): ",
              (unsigned long long)t.active, rps, (unsigned long long)t.messages);
    s->last_totals = t;
    s->last_totals_ms = now;
}

/* WATCHDOG=1 only while every worker's loop keeps turning: a stuck worker stops the
 * pings, and systemd restarts the service. */
static void watchdog_check(struct server *s)
{
    int alive = 1;
    for (int i = 0; i < s->cfg.workers; i++) {
        uint64_t hb = atomic_load_explicit(&s->workers[i].heartbeat, memory_order_relaxed);
        int stuck = hb == s->last_heartbeat[i];
        if (stuck && !s->stuck[i])
            log_warn("worker %d has not run its loop for %llu ms: withholding the watchdog ping",
                     i, (unsigned long long)s->watchdog_ms);
        else if (!stuck && s->stuck[i])
            log_warn("worker %d runs again", i);
        s->stuck[i] = (uint8_t)stuck;
        alive &= !stuck;
        s->last_heartbeat[i] = hb;
    }
    if (alive)
        sd_notify("WATCHDOG=1");
}

/* SIGHUP: re-read the file, apply what can change live, say what needs a restart. */
static void reload(struct server *s)
{
    sd_notify("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)(clock_ns() / 1000));
    static struct config next; /* main thread only */
    char err[512];
    if (!s->cfg.config_file) {
        log_info("SIGHUP: no --config file to re-read; nothing changed");
    } else if (config_reload(&s->cfg, &next, err, sizeof err) < 0) {
        log_error("reload failed, keeping the running settings: %s", err);
    } else {
        config_reload_refused(&s->cfg, &next, s->inherited); /* logged; the rest applies */
        filelimit_resolve_max_conns(&next.set, s->capacity);
        s->cfg.set = next.set;
        log_set_level(next.set.log_level);
        if (s->use_acceptor)
            atomic_store_explicit(&s->acceptor.ctx.max_conns, next.set.max_conns,
                                  memory_order_relaxed);
        for (int i = 0; i < s->cfg.workers; i++)
            handoff_push_settings(&s->workers[i].handoff, &next.set);
        log_info("reloaded %s: mode %s, max-conns %llu, max-message %llu, max-output %llu, "
                 "idle-timeout %llu ms, header-timeout %llu ms, log-level %s",
                 s->cfg.config_file, mode_name(next.set.mode),
                 (unsigned long long)next.set.max_conns, (unsigned long long)next.set.max_message,
                 (unsigned long long)next.set.max_output,
                 (unsigned long long)next.set.idle_timeout_ms,
                 (unsigned long long)next.set.header_timeout_ms,
                 log_level_name(next.set.log_level));
    }
    sd_notify("READY=1");
    notify_status(s);
}

static uint64_t next_tick(uint64_t next, uint64_t candidate)
{
    return candidate && (!next || candidate < next) ? candidate : next;
}

/* What the main thread does once it stops serving. */
enum stop_step { KEEP_SERVING, STOP_DRAIN, STOP_CUT };

static void log_stopping(const struct server *s, const char *why)
{
    log_info("%s: shutting down: no new connections, answering what was received "
             "(up to %.1f s)", why, (double)s->cfg.set.shutdown_timeout_ms / 1000.0);
}

/* A signal: SIGHUP reloads (not while stopping); SIGTERM/SIGINT/SIGQUIT starts the
 * delay, or the drain when there is none; a second one during the delay cuts.
 * *delay_end: when the delay ends, 0 before it began. */
static enum stop_step on_signal(struct server *s, int sig, uint64_t *delay_end)
{
    if (sig == SIGHUP) {
        if (*delay_end)
            log_warn("SIGHUP while draining: not reloading");
        else
            reload(s);
        return KEEP_SERVING;
    }
    if (*delay_end) {
        log_warn("%s again: closing every connection now", strsignal(sig));
        return STOP_CUT;
    }
    if (!s->cfg.set.drain_delay_ms) {
        log_stopping(s, strsignal(sig));
        return STOP_DRAIN;
    }
    /* The lame-duck phase (drain_state.h): each worker hears of it through its handoff. */
    drain_state_begin_delay(strsignal(sig), s->cfg.set.drain_delay_ms, stats_active_connections(&s->registry));
    for (int i = 0; i < s->cfg.workers; i++)
        handoff_wake(&s->workers[i].handoff);
    *delay_end = clock_ms() + s->cfg.set.drain_delay_ms;
    return KEEP_SERVING;
}

/* Serve until SIGTERM/SIGINT/SIGQUIT and the --drain-delay after it: periodic stats,
 * systemd status and watchdog. STOP_DRAIN, or STOP_CUT for a second signal in the delay. */
static enum stop_step wait_for_stop(struct server *s, int sfd)
{
    uint64_t now = clock_ms(), delay_end = 0;
    uint64_t next_stats = s->cfg.set.stats_interval_ms ? now + s->cfg.set.stats_interval_ms : 0;
    uint64_t next_status = sd_notify_enabled() ? now + STATUS_INTERVAL_MS : 0;
    uint64_t next_watchdog = s->watchdog_ms ? now + s->watchdog_ms : 0;
    for (;;) {
        uint64_t wake = next_tick(next_tick(next_tick(next_stats, next_status), next_watchdog),
                                  delay_end);
        now = clock_ms();
        int timeout = wake ? (wake > now ? (int)(wake - now) : 0) : -1;
        struct pollfd pfd = {.fd = sfd, .events = POLLIN};
        int n = poll(&pfd, 1, timeout);
        if (n < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            return STOP_DRAIN;
        }
        now = clock_ms();
        if (next_watchdog && now >= next_watchdog) {
            watchdog_check(s);
            next_watchdog = now + s->watchdog_ms;
        }
        if (next_status && now >= next_status) {
            notify_status(s);
            next_status = now + STATUS_INTERVAL_MS;
        }
        if (next_stats && now >= next_stats) {
            stats_log_line(&s->registry, "stats: ");
            next_stats = now + s->cfg.set.stats_interval_ms;
        }
        if (delay_end && now >= delay_end) {
            log_stopping(s, "drain delay over");
            return STOP_DRAIN;
        }
        struct signalfd_siginfo si;
        if (n <= 0 || read(sfd, &si, sizeof si) != sizeof si)
            continue;
        enum stop_step step = on_signal(s, (int)si.ssi_signo, &delay_end);
        if (si.ssi_signo == SIGHUP)
            next_stats = s->cfg.set.stats_interval_ms ? now + s->cfg.set.stats_interval_ms : 0;
        if (step != KEEP_SERVING)
            return step;
    }
}

static int all_finished(const struct server *s)
{
    for (int i = 0; i < s->cfg.workers; i++)
        if (!atomic_load_explicit(&s->workers[i].finished, memory_order_acquire))
            return 0;
    return 1;
}

/* Stop accepting, let the workers drain, and wait; a second SIGTERM/SIGINT (or cut: one
 * came during --drain-delay) cuts the remaining connections at once instead of waiting
 * for --shutdown-timeout. The last worker's wake-up (done_efd) ends the wait at once: a
 * restart waits for this process to exit, not for a poll timeout (which stays, should a
 * wake-up be lost). */
static void drain_and_join(struct server *s, int sfd, int cut)
{
    drain_state_set(DRAIN_DRAINING);
    sd_notify("STOPPING=1\nSTATUS=draining %llu connections",
              (unsigned long long)stats_active_connections(&s->registry));
    uint64_t grace = keeps_listeners(s) ? drain_grace_ms(s->cfg.set.shutdown_timeout_ms) : 0;
    if (s->use_acceptor)
        acceptor_begin_stop(&s->acceptor, cut ? 0 : grace);
    for (int i = 0; i < s->cfg.workers; i++)
        worker_request_drain(&s->workers[i], cut);
    while (!all_finished(s)) {
        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN},
                                {.fd = s->done_efd, .events = POLLIN}};
        uint64_t n;
        if (poll(pfd, 2, 50) <= 0)
            continue;
        if ((pfd[1].revents & POLLIN) && read(s->done_efd, &n, sizeof n) < 0 && errno != EAGAIN)
            log_warn("reading the workers' eventfd: %s", strerror(errno));
        if (!(pfd[0].revents & POLLIN) || cut)
            continue;
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof si) != sizeof si || si.ssi_signo == SIGHUP)
            continue;
        log_warn("%s again: closing every connection now", strsignal((int)si.ssi_signo));
        if (s->use_acceptor)
            acceptor_begin_stop(&s->acceptor, 0);
        for (int i = 0; i < s->cfg.workers; i++)
            worker_request_drain(&s->workers[i], 1);
        cut = 1;
    }
    for (int i = 0; i < s->cfg.workers; i++)
        worker_join(&s->workers[i]);
    if (s->use_acceptor)
        acceptor_join(&s->acceptor);
}

/* After dropping privileges: what the kernel lets this user do decides. */
static int choose_backend(struct server *s)
{
    char why[256];
    s->io = backend_choose(s->cfg.backend, why, sizeof why);
    if (!s->io) {
        log_error("--backend io_uring: io_uring cannot run here: %s", why);
        return -1;
    }
    if (s->n_udp && !s->io->datagrams) {
        if (s->cfg.backend != BACKEND_AUTO) {
            log_error("--backend %s: udp:// listeners are served by the epoll backend only "
                      "(use --backend epoll or auto)", s->io->name);
            return -1;
        }
        s->io = &epoll_backend;
        snprintf(why, sizeof why, "udp:// listeners are served by epoll only");
    }
    if (s->cfg.backend == BACKEND_AUTO) {
        if (why[0])
            log_info("backend %s (auto; io_uring not used: %s)", s->io->name, why);
        else
            log_info("backend %s (auto)", s->io->name);
    }
    s->registry.backend = s->io->name;
    return 0;
}

static int setup(struct server *s)
{
    char err[256];
    if (sd_notify_open(err, sizeof err) < 0) {
        log_error("%s", err);
        return -1;
    }
    uint64_t wd_usec = sd_watchdog_usec();
    s->watchdog_ms = wd_usec / 2000; /* ping at half the interval systemd expects */
    if (wd_usec && s->watchdog_ms == 0)
        s->watchdog_ms = 1;
    s->capacity = filelimit_raise(&s->cfg);
    filelimit_resolve_max_conns(&s->cfg.set, s->capacity);
    filelimit_size_table(&s->cfg); /* before any thread starts */
    s->done_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->done_efd < 0) /* only the wait for the workers is longer: a poll timeout */
        log_warn("eventfd: %s; stopping may take up to 50 ms longer", strerror(errno));
    s->registry.cfg = &s->cfg;
    s->registry.start_ms = clock_ms();
    s->registry.capacity = s->capacity;
    if (posix_memalign((void **)&s->workers, 64, (size_t)s->cfg.workers * sizeof *s->workers)) {
        log_error("out of memory");
        return -1;
    }
    memset(s->workers, 0, (size_t)s->cfg.workers * sizeof *s->workers);
    if (open_listeners(s) < 0)
        return -1;
    if (s->cfg.user && drop_privileges(s->cfg.user) < 0)
        return -1;
    if (choose_backend(s) < 0)
        return -1;
    return start_threads(s);
}

int main(int argc, char **argv)
{
    static struct server s;
    int rc = config_parse(&s.cfg, argc, argv);
    if (rc != CONFIG_RUN)
        return rc == CONFIG_DONE ? 0 : rc == CONFIG_CHECK_FAILED ? 1 : 2;
    log_init("wharfd", s.cfg.set.log_level);
    const char *hooks = getenv("WHARFD_TEST_HOOKS");
    s.cfg.test_hooks = hooks && strcmp(hooks, "1") == 0;
    if (s.cfg.workers == 0)
        s.cfg.workers = workers_cpus_allowed();
    if (s.cfg.workers > MAX_WORKERS)
        s.cfg.workers = MAX_WORKERS;
    int sfd = block_signals();
    if (sfd < 0) {
        log_error("signalfd: %s", strerror(errno));
        return 1;
    }
    if (setup(&s) < 0) {
        sd_notify("STATUS=failed to start, see the log");
        return 1;
    }
    wait_workers_running(&s);
    log_ready(&s);
    sd_notify("READY=1\nMAINPID=%d", (int)getpid());
    notify_status(&s);

    drain_and_join(&s, sfd, wait_for_stop(&s, sfd) == STOP_CUT);
    stats_log_line(&s.registry, "exit: ");
    for (int i = 0; i < s.cfg.workers; i++)
        worker_destroy(&s.workers[i]);
    free(s.workers);
    peer_table_free(&s.peers);
    sd_notify_close();
    if (s.done_efd >= 0)
        close(s.done_efd);
    close(sfd);
    return 0;
}
