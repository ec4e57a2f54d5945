/* option_table: every wharfd setting, once: its flag names, default, help text and the
 * setter that checks and stores a value. --help, --print-defaults, the defaults, the
 * flags and the configuration file all read this table (config.c), so none of them
 * can drift from the others. */
#include "option_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/units.h"
#include "../common/version.h"
#include "udp.h"

/* Used when neither the flags nor the file name a listener. */
static const char *const default_listeners[] = {"raw://127.0.0.1:9000", "http://127.0.0.1:8080"};

static int set_listen(struct config *cfg, const char *v, char *err, size_t errlen)
{
    if (cfg->n_listen == MAX_LISTENERS)
        return ERR("too many listeners (at most %d)", MAX_LISTENERS);
    if (listen_spec_parse(v, &cfg->listen[cfg->n_listen], err, errlen) < 0)
        return -1;
    cfg->n_listen++;
    return 0;
}

static int set_workers(struct config *cfg, const char *v, char *err, size_t errlen)
{
    uint64_t n;
    if (strcmp(v, "auto") == 0) {
        cfg->workers = 0;
        return 0;
    }
    if (parse_uint(v, 1, MAX_WORKERS, &n) < 0)
        return ERR("expected 'auto' or an integer 1-%d, got '%s'", MAX_WORKERS, v);
    cfg->workers = (int)n;
    return 0;
}

static int set_dispatch(struct config *cfg, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "least") == 0)
        cfg->dispatch = DISPATCH_LEAST;
    else if (strcmp(v, "rr") == 0)
        cfg->dispatch = DISPATCH_RR;
    else if (strcmp(v, "reuseport") == 0)
        cfg->dispatch = DISPATCH_REUSEPORT;
    else
        return ERR("expected least, rr or reuseport, got '%s'", v);
    return 0;
}

static int set_backend(struct config *cfg, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "auto") == 0)
        cfg->backend = BACKEND_AUTO;
    else if (strcmp(v, "epoll") == 0)
        cfg->backend = BACKEND_EPOLL;
    else if (strcmp(v, "io_uring") == 0 || strcmp(v, "io-uring") == 0)
        cfg->backend = BACKEND_IO_URING;
    else
        return ERR("expected auto, epoll or io_uring, got '%s'", v);
#ifndef WHARF_URING
    if (cfg->backend == BACKEND_IO_URING)
        return ERR("io_uring is not built into this wharfd (it was built without liburing; "
                   "backends: %s)", WHARF_BACKENDS);
#endif
    return 0;
}

static int set_mode(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return mode_parse(v, &cfg->set.mode) < 0 ? ERR("expected echo or upper, got '%s'", v) : 0;
}

static int set_size_in(uint64_t *dst, uint64_t min, uint64_t max, const char *v, char *err,
                       size_t errlen)
{
    uint64_t n;
    if (parse_size(v, &n) < 0 || n < min || n > max)
        return ERR("expected a size from %llu to %llu bytes (suffix K, M, G allowed), got '%s'",
                   (unsigned long long)min, (unsigned long long)max, v);
    *dst = n;
    return 0;
}

static int set_max_message(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_size_in(&cfg->set.max_message, 1, 1ull << 30, v, err, errlen);
}

static int set_max_output(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_size_in(&cfg->set.max_output, 4096, 1ull << 30, v, err, errlen);
}

static int set_max_conns(struct config *cfg, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "auto") == 0) {
        cfg->set.max_conns = 0;
        return 0;
    }
    return parse_uint(v, 1, 100000000, &cfg->set.max_conns) < 0
               ? ERR("expected 'auto' or an integer 1-100000000, got '%s'", v)
               : 0;
}

static int set_max_conns_per_ip(struct config *cfg, const char *v, char *err, size_t errlen)
{
    uint64_t n;
    if (strcmp(v, "off") == 0) {
        cfg->max_conns_per_ip = 0;
        return 0;
    }
    if (parse_uint(v, 0, 100000000, &n) < 0)
        return ERR("expected 'off' or an integer 0-100000000, got '%s'", v);
    cfg->max_conns_per_ip = (uint32_t)n;
    return 0;
}

/* loopback (no ranges, the fast test of peer.h), all, or ranges (common/cidr.h). */
static int set_stats_allow(struct config *cfg, const char *v, char *err, size_t errlen)
{
    char why[256];
    cfg->set.stats_allow_all = 0;
    cfg->set.stats_allow.n = 0;
    if (strcmp(v, "all") == 0)
        cfg->set.stats_allow_all = 1;
    else if (strcmp(v, "loopback") != 0 && cidr_list_parse(v, &cfg->set.stats_allow, why,
                                                           sizeof why) < 0)
        return ERR("expected loopback, all or CIDR[,CIDR...] like 127.0.0.0/8,10.0.0.0/8, got "
                   "'%s': %s", v, why);
    return 0;
}

static int set_proxy_from(struct config *cfg, const char *v, char *err, size_t errlen)
{
    char why[256];
    if (cidr_list_parse(v, &cfg->set.proxy_from, why, sizeof why) < 0)
        return ERR("expected CIDR[,CIDR...] like 127.0.0.0/8,::1: %s", why);
    return 0;
}

/* Timeouts are kept below 24 days: worker deadlines are 32-bit milliseconds. */
#define MAX_TIMEOUT_MS (86400ull * 1000)

static int set_duration(uint64_t *dst, const char *v, char *err, size_t errlen)
{
    uint64_t ms;
    if (parse_duration_ms(v, &ms) < 0 || ms > MAX_TIMEOUT_MS)
        return ERR("expected a duration up to 1 day like 30, 30s, 500ms or 2m, got '%s'", v);
    *dst = ms;
    return 0;
}

static int set_idle_timeout(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_duration(&cfg->set.idle_timeout_ms, v, err, errlen);
}

static int set_header_timeout(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_duration(&cfg->set.header_timeout_ms, v, err, errlen);
}

static int set_shutdown_timeout(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_duration(&cfg->set.shutdown_timeout_ms, v, err, errlen);
}

static int set_drain_delay(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_duration(&cfg->set.drain_delay_ms, v, err, errlen);
}

static int set_stats_interval(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_duration(&cfg->set.stats_interval_ms, v, err, errlen);
}

static int set_backlog(struct config *cfg, const char *v, char *err, size_t errlen)
{
    uint64_t n;
    if (parse_uint(v, 1, 1 << 20, &n) < 0)
        return ERR("expected an integer 1-1048576, got '%s'", v);
    cfg->backlog = (int)n;
    return 0;
}

static int set_on_off(int *dst, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "on") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0)
        *dst = 1;
    else if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0)
        *dst = 0;
    else
        return ERR("expected on or off, got '%s'", v);
    return 0;
}

static int set_nodelay(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_on_off(&cfg->sock.nodelay, v, err, errlen);
}

static int set_int_in(int *dst, uint64_t min, uint64_t max, const char *v, char *err,
                      size_t errlen)
{
    uint64_t n;
    if (parse_uint(v, min, max, &n) < 0)
        return ERR("expected an integer %llu-%llu, got '%s'", (unsigned long long)min,
                   (unsigned long long)max, v);
    *dst = (int)n;
    return 0;
}

static int set_defer_accept(struct config *cfg, const char *v, char *err, size_t errlen)
{
    uint64_t ms;
    if (parse_duration_ms(v, &ms) < 0 || ms > 3600 * 1000)
        return ERR("expected a duration up to 1h, got '%s'", v);
    cfg->sock.defer_accept_s = (int)((ms + 999) / 1000);
    return 0;
}

static int set_fastopen(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_int_in(&cfg->sock.fastopen_qlen, 0, 1 << 20, v, err, errlen);
}

static int set_sockbuf(int *dst, const char *v, char *err, size_t errlen)
{
    uint64_t n;
    if (parse_size(v, &n) < 0 || n > (1u << 30))
        return ERR("expected a size up to 1G (0: the kernel's default), got '%s'", v);
    *dst = (int)n;
    return 0;
}

static int set_rcvbuf(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_sockbuf(&cfg->sock.rcvbuf, v, err, errlen);
}

static int set_sndbuf(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_sockbuf(&cfg->sock.sndbuf, v, err, errlen);
}

static int set_busy_poll(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_int_in(&cfg->sock.busy_poll_us, 0, 1000000, v, err, errlen);
}

static int set_udp_batch(struct config *cfg, const char *v, char *err, size_t errlen)
{
    uint64_t n;
    if (parse_uint(v, 1, UDP_BATCH_MAX, &n) < 0)
        return ERR("expected an integer 1-%d, got '%s'", UDP_BATCH_MAX, v);
    cfg->udp_batch = (unsigned)n;
    return 0;
}

static int set_cpu_affinity(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_on_off(&cfg->cpu_affinity, v, err, errlen);
}

/* Strings below point into argv or into the file's lines, which live until exit. */
static int set_config_file(struct config *cfg, const char *v, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    cfg->config_file = v;
    return 0;
}

static int set_user(struct config *cfg, const char *v, char *err, size_t errlen)
{
    if (!*v)
        return ERR("expected a user name");
    cfg->user = v;
    return 0;
}

static int set_log_level(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return log_level_parse(v, &cfg->set.log_level) < 0
               ? ERR("expected debug, info, warn, error or off, got '%s'", v)
               : 0;
}

static const struct option_def options[] = {
    {"listen", 'l', "SCHEME[+MODIFIER...]://HOST:PORT", NULL, set_listen,
     "listen for the protocol SCHEME (raw, line, frame, http; metrics: HTTP serving only "
     "/metrics, /stats, /status and /healthz; lower case) on HOST:PORT; "
     "repeatable. udp://HOST:PORT answers each datagram with one (--mode), from a socket per "
     "worker, on either backend. Each +MODIFIER names something that wraps the protocol, once at most: "
     "+proxy, a PROXY protocol v1/v2 header from a balancer in --proxy-from comes first and "
     "names the client (any TCP scheme, e.g. http+proxy://). HOST defaults to 127.0.0.1, "
     "[::1] for IPv6, * for all IPv4 addresses; port 0 picks a free port. Default: "
     "raw://127.0.0.1:9000 and http://127.0.0.1:8080"},
    {"workers", 'w', "N", "auto", set_workers,
     "worker threads, each with its own event loop ('auto': the CPUs this process may run on)"},
    {"dispatch", 0, "least|rr|reuseport", "least", set_dispatch,
     "how new connections reach workers: least live connections, round-robin, or one "
     "SO_REUSEPORT listener per worker (the kernel picks); a single worker always accepts "
     "its own"},
    {"backend", 0, "auto|epoll|io_uring", "auto", set_backend,
     "event loop of the workers: io_uring (one ring per worker, multishot receives into "
     "provided buffers, batched sends) or epoll; auto uses io_uring where it is built in and "
     "the kernel allows it, else epoll, and logs which and why"},
    {"mode", 'm', "echo|upper", "upper", set_mode,
     "what raw, line, frame and POST /echo do to a payload"},
    {"max-message", 0, "BYTES", "1M", set_max_message,
     "largest line, frame or HTTP body; larger ones get an error and a close"},
    {"max-output", 0, "BYTES", "1M", set_max_output,
     "unsent output per connection above which wharfd stops reading from it"},
    {"max-conns", 0, "N", "auto", set_max_conns,
     "live connections at most; more are accepted and closed at once ('auto': what the "
     "file limit allows)"},
    {"max-conns-per-ip", 0, "N", "off", set_max_conns_per_ip,
     "live connections from one client address at most (IPv4-mapped IPv6 counts as IPv4); "
     "more are accepted and closed at once ('off' or 0: no limit; needs a restart to change)"},
    {"idle-timeout", 0, "DURATION", "60s", set_idle_timeout,
     "close a connection after this long without traffic (0: never)"},
    {"header-timeout", 0, "DURATION", "30s", set_header_timeout,
     "close an HTTP connection whose request is still incomplete this long after its first "
     "byte, however slowly it trickles in (0: never)"},
    {"shutdown-timeout", 0, "DURATION", "10s", set_shutdown_timeout,
     "on SIGTERM/SIGINT, time to finish answering before connections are cut"},
    {"drain-delay", 0, "DURATION", "0", set_drain_delay,
     "on SIGTERM/SIGINT, first serve this long as before but answer GET /healthz with 503 and "
     "close HTTP connections after each response, so a balancer stops sending here; then "
     "drain (--shutdown-timeout). A second signal cuts at once (0: drain at once)"},
    {"backlog", 0, "N", "4096", set_backlog,
     "listen() backlog (the kernel caps it at net.core.somaxconn)"},
    {"nodelay", 0, "on|off", "on", set_nodelay, "TCP_NODELAY on accepted connections"},
    {"defer-accept", 0, "DURATION", "1s", set_defer_accept,
     "TCP_DEFER_ACCEPT: a connection is accepted with its first bytes (or after this long), "
     "so a short one wakes the server once; draining keeps the listeners open through its "
     "grace for the clients still held back (0: off)"},
    {"fastopen", 0, "QLEN", "0", set_fastopen,
     "TCP_FASTOPEN queue length on listeners (0: off; the kernel's net.ipv4.tcp_fastopen "
     "must allow it)"},
    {"rcvbuf", 0, "BYTES", "0", set_rcvbuf, "SO_RCVBUF of accepted sockets (0: the kernel's)"},
    {"sndbuf", 0, "BYTES", "0", set_sndbuf, "SO_SNDBUF of accepted sockets (0: the kernel's)"},
    {"busy-poll", 0, "USEC", "0", set_busy_poll, "SO_BUSY_POLL on accepted sockets (0: off)"},
    {"udp-batch", 0, "N", "64", set_udp_batch,
     "udp:// datagrams read (recvmmsg) and replies sent (sendmmsg) per call, 1-64; 1: one "
     "recvmsg and one sendmsg per datagram (needs a restart to change)"},
    {"cpu-affinity", 0, "on|off", "off", set_cpu_affinity,
     "pin worker i to CPU i mod (number of CPUs this process may use)"},
    {"config", 'c', "FILE", NULL, set_config_file,
     "read settings from FILE: one 'name = value' per line, names as the long flags "
     "(listen may repeat); flags override it; SIGHUP re-reads it"},
    {"user", 'u', "NAME", NULL, set_user,
     "switch to this user (and its groups) after binding the listeners"},
    {"stats-allow", 0, "loopback|all|CIDR[,CIDR...]", "loopback", set_stats_allow,
     "who may read GET /stats and /metrics: clients on loopback addresses only, everyone, or "
     "clients in these ranges (IPv4 ranges also match IPv4-mapped IPv6 peers); others get "
     "403. Behind a +proxy listener the client is the address its PROXY header names"},
    {"proxy-from", 0, "CIDR[,CIDR...]", "127.0.0.0/8,::1", set_proxy_from,
     "who may send a PROXY protocol header to a +proxy listener (IPv4 ranges also match "
     "IPv4-mapped IPv6 peers); connections from elsewhere, with a bad header, or whose "
     "header is not complete within --header-timeout are closed at once and counted"},
    {"stats-interval", 0, "DURATION", "0", set_stats_interval,
     "log a one-line summary this often (0: never)"},
    {"log-level", 0, "LEVEL", "info", set_log_level, "debug, info, warn, error or off"},
    {"check-config", 't', NULL, NULL, NULL,
     "check the flags, --config's file and every listener's address (that it exists on this "
     "host; nothing is bound to its port), print 'configuration ok' or one line per problem, "
     "and exit 0 or 1 without starting"},
    {"help", 'h', NULL, NULL, NULL, "print this help and exit"},
    {"print-defaults", 0, NULL, NULL, NULL,
     "print every setting with its default as 'name = value' lines (a config file to start "
     "from), and exit"},
    {"version", 'V', NULL, NULL, NULL, "print the version and the built-in backends, and exit"},
};

#define N_OPTIONS (sizeof options / sizeof options[0])
_Static_assert(N_OPTIONS <= OPTIONS_MAX, "raise OPTIONS_MAX (option_table.h)");

/* Print text word-wrapped to width columns, every line indented by indent spaces. */
static void print_wrapped(const char *text, int indent, int width)
{
    const char *p = text;
    while (*p) {
        int room = width - indent, n = (int)strlen(p);
        if (n > room) {
            n = room;
            while (n > 0 && p[n] != ' ')
                n--;
            if (n == 0)
                n = room;
        }
        printf("%*s%.*s\n", indent, "", n, p);
        p += n;
        while (*p == ' ')
            p++;
    }
}

/* --print-defaults: every setting with its default, in the config file's syntax. Read
 * from the table, so it cannot drift from --help or from what apply_defaults() sets; a
 * setting without a default (user) is printed commented out. */
void options_print_defaults(void)
{
    printf("# wharfd %s defaults (wharfd --print-defaults); names as the long flags\n",
           WHARF_VERSION);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_def *o = &options[i];
        if (!o->set || o->set == set_config_file)
            continue;
        if (o->set == set_listen)
            for (size_t k = 0; k < sizeof default_listeners / sizeof *default_listeners; k++)
                printf("listen = %s\n", default_listeners[k]);
        else if (o->defval)
            printf("%s = %s\n", o->name, o->defval);
        else
            printf("# %s = %s\n", o->name, o->metavar);
    }
}

void options_print_help(void)
{
    printf("Usage: wharfd [OPTION]...\n"
           "A high-concurrency TCP server: raw, line, frame and HTTP/1.1 on one event loop "
           "(epoll or io_uring) per worker.\n\nOptions:\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_def *o = &options[i];
        char head[80];
        int n = o->short_name ? snprintf(head, sizeof head, "  -%c, --%s", o->short_name, o->name)
                              : snprintf(head, sizeof head, "      --%s", o->name);
        if (o->metavar)
            snprintf(head + n, sizeof head - (size_t)n, " %s", o->metavar);
        char text[512];
        snprintf(text, sizeof text, "%s%s%s%s", o->help, o->defval ? " [default: " : "",
                 o->defval ? o->defval : "", o->defval ? "]" : "");
        printf("%s\n", head);
        print_wrapped(text, 8, 80);
    }
    printf("\nSizes take K, M, G suffixes; durations take ms, s, m, h (a bare number is "
           "seconds).\nSignals: SIGTERM/SIGINT drain (after --drain-delay) and exit 0 (a second one "
           "cuts at\nonce); SIGHUP re-reads --config and applies mode, limits, timeouts and log "
           "level.\n");
}

void options_apply_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    char err[256];
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].defval && options[i].set(cfg, options[i].defval, err, sizeof err) < 0)
            abort(); /* a default the setter rejects is a bug in this table */
}

const struct option_def *option_find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

int option_is_meta(const struct option_def *o)
{
    return !o->set || o->set == set_config_file;
}

void options_getopt_tables(struct getopt_tables *t)
{
    size_t ns = 0;
    t->shortopts[ns++] = ':';
    for (size_t i = 0; i < N_OPTIONS; i++) {
        t->longopts[i] = (struct option){options[i].name,
                                         options[i].metavar ? required_argument : no_argument,
                                         NULL, (int)(256 + i)};
        if (options[i].short_name) {
            t->shortopts[ns++] = (char)options[i].short_name;
            if (options[i].metavar)
                t->shortopts[ns++] = ':';
        }
    }
    t->longopts[N_OPTIONS] = (struct option){0};
    t->shortopts[ns] = '\0';
}

const struct option_def *option_for_getopt(int c)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (c == (int)(256 + i) || (options[i].short_name && c == options[i].short_name))
            return &options[i];
    return NULL;
}


int option_is_listen(const struct option_def *o)
{
    return o->set == set_listen;
}

int option_is_check(const struct option_def *o)
{
    return strcmp(o->name, "check-config") == 0;
}

int option_is_config_file(const struct option_def *o)
{
    return o->set == set_config_file;
}

int options_default_listeners(struct config *cfg, char *err, size_t errlen)
{
    for (size_t k = 0; k < sizeof default_listeners / sizeof *default_listeners; k++)
        if (set_listen(cfg, default_listeners[k], err, errlen) < 0)
            return -1;
    return 0;
}
