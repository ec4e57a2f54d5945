#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/units.h"
#include "../common/version.h"

typedef int (*setter_fn)(struct config *cfg, const char *val, char *err, size_t errlen);

struct option_def {
    const char *name;
    int short_name;      /* 0: long only */
    const char *metavar; /* NULL: takes no value */
    const char *defval;  /* applied through the setter before the flags; NULL: none */
    setter_fn set;
    const char *help;
};

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static int set_listen(struct config *cfg, const char *v, char *err, size_t errlen)
{
    if (cfg->n_listen == MAX_LISTENERS)
        return ERR("too many listeners (at most %d)", MAX_LISTENERS);
    struct endpoint *ep = &cfg->listen[cfg->n_listen];
    char why[160];
    if (addr_parse(v, ep, why, sizeof why) < 0)
        return ERR("%s", why);
    if (!ep->has_proto)
        return ERR("'%s' names no protocol (write raw://, line://, frame:// or http://)", v);
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

static int set_mode(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return mode_parse(v, &cfg->mode) < 0 ? ERR("expected echo or upper, got '%s'", v) : 0;
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
    return set_size_in(&cfg->max_message, 1, 1ull << 30, v, err, errlen);
}

static int set_max_output(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_size_in(&cfg->max_output, 4096, 1ull << 30, v, err, errlen);
}

static int set_max_conns(struct config *cfg, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "auto") == 0) {
        cfg->max_conns = 0;
        return 0;
    }
    return parse_uint(v, 1, 100000000, &cfg->max_conns) < 0
               ? ERR("expected 'auto' or an integer 1-100000000, got '%s'", v)
               : 0;
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
    return set_duration(&cfg->idle_timeout_ms, v, err, errlen);
}

static int set_header_timeout(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_duration(&cfg->header_timeout_ms, v, err, errlen);
}

static int set_shutdown_timeout(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_duration(&cfg->shutdown_timeout_ms, v, err, errlen);
}

static int set_stats_interval(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return set_duration(&cfg->stats_interval_ms, v, err, errlen);
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
    return set_on_off(&cfg->nodelay, v, err, errlen);
}

static int set_log_level(struct config *cfg, const char *v, char *err, size_t errlen)
{
    return log_level_parse(v, &cfg->log_level) < 0
               ? ERR("expected debug, info, warn, error or off, got '%s'", v)
               : 0;
}

static const struct option_def options[] = {
    {"listen", 'l', "PROTO://HOST:PORT", NULL, set_listen,
     "listen for PROTO (raw, line, frame, http) on HOST:PORT; repeatable. HOST defaults to "
     "127.0.0.1, [::1] for IPv6, * for all IPv4 addresses; port 0 picks a free port. "
     "Default: raw://127.0.0.1:9000 and http://127.0.0.1:8080"},
    {"workers", 'w', "N", "auto", set_workers,
     "worker threads, each with its own epoll loop ('auto': the CPUs this process may run on)"},
    {"dispatch", 0, "least|rr|reuseport", "least", set_dispatch,
     "how new connections reach workers: least live connections, round-robin, or one "
     "SO_REUSEPORT listener per worker (the kernel picks)"},
    {"mode", 'm', "echo|upper", "upper", set_mode,
     "what raw, line, frame and POST /echo do to a payload"},
    {"max-message", 0, "BYTES", "1M", set_max_message,
     "largest line, frame or HTTP body; larger ones get an error and a close"},
    {"max-output", 0, "BYTES", "1M", set_max_output,
     "unsent output per connection above which wharfd stops reading from it"},
    {"max-conns", 0, "N", "auto", set_max_conns,
     "live connections at most; more are accepted and closed at once ('auto': what the "
     "file limit allows)"},
    {"idle-timeout", 0, "DURATION", "60s", set_idle_timeout,
     "close a connection after this long without traffic (0: never)"},
    {"header-timeout", 0, "DURATION", "30s", set_header_timeout,
     "close an HTTP connection whose request is still incomplete this long after its first "
     "byte, however slowly it trickles in (0: never)"},
    {"shutdown-timeout", 0, "DURATION", "10s", set_shutdown_timeout,
     "on SIGTERM/SIGINT, time to finish answering before connections are cut"},
    {"backlog", 0, "N", "4096", set_backlog,
     "listen() backlog (the kernel caps it at net.core.somaxconn)"},
    {"nodelay", 0, "on|off", "on", set_nodelay, "TCP_NODELAY on accepted connections"},
    {"stats-interval", 0, "DURATION", "0", set_stats_interval,
     "log a one-line summary this often (0: never)"},
    {"log-level", 0, "LEVEL", "info", set_log_level, "debug, info, warn, error or off"},
    {"help", 'h', NULL, NULL, NULL, "print this help and exit"},
    {"version", 'V', NULL, NULL, NULL, "print the version and the built-in backends, and exit"},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

const char *dispatch_name(enum dispatch d)
{
    return d == DISPATCH_RR ? "rr" : d == DISPATCH_REUSEPORT ? "reuseport" : "least";
}

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

static void print_help(void)
{
    printf("Usage: wharfd [OPTION]...\n"
           "A high-concurrency TCP server: raw, line, frame and HTTP/1.1 on one epoll loop per "
           "worker.\n\nOptions:\n");
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
           "seconds).\nSignals: SIGTERM/SIGINT drain and exit 0; SIGHUP is logged.\n");
}

static void apply_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    char err[256];
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].defval && options[i].set(cfg, options[i].defval, err, sizeof err) < 0)
            abort(); /* a default the setter rejects is a bug in this table */
}

static int add_default_listeners(struct config *cfg)
{
    char err[256];
    if (set_listen(cfg, "raw://127.0.0.1:9000", err, sizeof err) < 0 ||
        set_listen(cfg, "http://127.0.0.1:8080", err, sizeof err) < 0) {
        fprintf(stderr, "wharfd: %s\n", err);
        return 2;
    }
    return 0;
}

int config_parse(struct config *cfg, int argc, char **argv)
{
    apply_defaults(cfg);
    struct option longopts[N_OPTIONS + 1];
    char shortopts[2 * N_OPTIONS + 2] = ":";
    size_t ns = 1;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        longopts[i] = (struct option){options[i].name, options[i].metavar ? required_argument
                                                                           : no_argument,
                                      NULL, (int)(256 + i)};
        if (options[i].short_name) {
            shortopts[ns++] = (char)options[i].short_name;
            if (options[i].metavar)
                shortopts[ns++] = ':';
        }
    }
    longopts[N_OPTIONS] = (struct option){0};
    shortopts[ns] = '\0';

    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == '?' || c == ':') {
            const char *what = argv[optind - 1];
            fprintf(stderr, "wharfd: %s: %s (see wharfd --help)\n", what,
                    c == '?' ? "unknown option" : "missing value");
            return 2;
        }
        const struct option_def *o = NULL;
        for (size_t i = 0; i < N_OPTIONS; i++)
            if (c == (int)(256 + i) || (options[i].short_name && c == options[i].short_name))
                o = &options[i];
        if (strcmp(o->name, "help") == 0) {
            print_help();
            return 1;
        }
        if (strcmp(o->name, "version") == 0) {
            printf("wharfd %s (backends: %s)\n", WHARF_VERSION, WHARF_BACKENDS);
            return 1;
        }
        char err[256];
        if (o->set(cfg, optarg, err, sizeof err) < 0) {
            fprintf(stderr, "wharfd: --%s: %s\n", o->name, err);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wharfd: unexpected argument '%s' (see wharfd --help)\n", argv[optind]);
        return 2;
    }
    if (cfg->n_listen == 0)
        return add_default_listeners(cfg);
    return 0;
}
