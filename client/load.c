#include "load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/opts.h"
#include "../common/units.h"

#define ALL (CMD_BENCH | CMD_CHURN | CMD_HOLD)

enum {
    O_WARMUP = 256, O_EXPECT, O_JSON, O_LATENCY_CSV, O_ALLOW_ERRORS, O_CONNECT_RATE, O_SOURCE,
    O_PROTO, O_NODELAY, O_RCVBUF, O_SNDBUF, O_TIMEOUT, O_CLOSE, O_LINGER0, O_PROCS, O_LATENCY,
};

struct optdef {
    const char *name;
    int has_arg;
    int val;
    int cmds;
};

static const struct optdef optdefs[] = {
    {"connections", 1, 'c', ALL},
    {"threads", 1, 't', CMD_BENCH | CMD_CHURN},
    {"duration", 1, 'd', ALL},
    {"requests", 1, 'n', CMD_BENCH},
    {"cycles", 1, 'n', CMD_CHURN},
    {"requests-per-conn", 1, 'r', CMD_CHURN},
    {"size", 1, 's', ALL},
    {"pipeline", 1, 'P', CMD_BENCH},
    {"warmup", 1, O_WARMUP, CMD_BENCH},
    {"rate", 1, 'R', CMD_BENCH},
    {"expect", 1, O_EXPECT, ALL},
    {"json", 0, O_JSON, ALL},
    {"latency", 0, O_LATENCY, CMD_BENCH}, /* wrk's flag; the distribution is always printed */
    {"latency-csv", 1, O_LATENCY_CSV, CMD_BENCH | CMD_CHURN},
    {"allow-errors", 0, O_ALLOW_ERRORS, ALL},
    {"connect-rate", 1, O_CONNECT_RATE, ALL},
    {"source", 1, O_SOURCE, ALL},
    {"proto", 1, O_PROTO, ALL},
    {"nodelay", 1, O_NODELAY, ALL},
    {"rcvbuf", 1, O_RCVBUF, ALL},
    {"sndbuf", 1, O_SNDBUF, ALL},
    {"timeout", 1, O_TIMEOUT, ALL},
    {"close", 1, O_CLOSE, CMD_CHURN},
    {"linger0", 0, O_LINGER0, CMD_CHURN},
    {"procs", 1, O_PROCS, CMD_HOLD},
    {"help", 0, 'h', ALL},
};
#define N_OPTDEFS (sizeof optdefs / sizeof optdefs[0])

static const char common_help[] =
    "  -d, --duration T       how long to run (10s, 500ms, 2m) [default: 10s]\n"
    "  -s, --size BYTES       payload bytes per request (64, 4K, 1M)\n"
    "      --expect MODE      echo|upper: what the server's --mode returns; any other reply\n"
    "                         is a mismatch error [default: upper, wharfd's default]\n"
    "      --proto P          raw, line or frame when the address has no PROTO://\n"
    "      --timeout T        a reply (or a connect) later than this is a timeout error\n"
    "                         [default: 5s]\n"
    "      --connect-rate N   new connections per second at most, over all threads\n"
    "      --source LIST      source addresses to spread connections over, e.g.\n"
    "                         127.0.0.2,127.0.0.3 or 127.0.0.2-127.0.0.9 (one source\n"
    "                         address runs out of ephemeral ports near 28k connections)\n"
    "      --nodelay on|off   TCP_NODELAY [default: on]\n"
    "      --rcvbuf BYTES     SO_RCVBUF (default: the kernel's autotuning)\n"
    "      --sndbuf BYTES     SO_SNDBUF (default: the kernel's autotuning)\n"
    "      --json             print the report as one JSON object on stdout\n"
    "      --allow-errors     exit 0 even when there were errors\n"
    "  -h, --help             this help\n";

static void usage(int cmd, FILE *f)
{
    if (cmd == CMD_BENCH) {
        fprintf(f,
                "Usage: wharf bench [OPTION]... PROTO://HOST:PORT\n"
                "Throughput and latency of raw, line or frame request/reply (HTTP: use wrk).\n"
                "  -c, --connections N    connections [default: 10]\n"
                "  -t, --threads N        threads, each with its own epoll loop [default: 2]\n"
                "  -n, --requests N       stop after N requests (with -d: whichever comes first)\n"
                "  -P, --pipeline N       requests in flight per connection [default: 1]\n"
                "  -R, --rate N           constant total rate (requests/s); latency counts from\n"
                "                         each request's intended send time [default: as fast\n"
                "                         as replies come back]\n"
                "      --warmup T         run this long first, not counted [default: 0]\n"
                "      --latency-csv FILE write the latency distribution (CSV)\n"
                "      --latency          accepted for wrk's sake; the distribution is always\n"
                "                         printed\n"
                "%s"
                "Long options are spelled out in full (no abbreviations).\n"
                "Defaults: --size 64, --connect-rate 10000. Exit status: 0 without errors,\n"
                "1 with errors, 2 on bad usage.\n",
                common_help);
    } else if (cmd == CMD_CHURN) {
        fprintf(f,
                "Usage: wharf churn [OPTION]... PROTO://HOST:PORT\n"
                "Connection rate: connect, do R round trips, close, repeat, on -c loops.\n"
                "  -c, --connections N    concurrent loops [default: 10]\n"
                "  -t, --threads N        threads [default: 1]\n"
                "  -n, --cycles N         stop after N connections (with -d: whichever first)\n"
                "  -r, --requests-per-conn R  round trips per connection; 0 connects and\n"
                "                         closes [default: 1]\n"
                "      --close WHO        client: the client closes first and holds TIME_WAIT;\n"
                "                         server: the server closes first and holds TIME_WAIT\n"
                "                         (http:// only: 'Connection: close'); half: the client\n"
                "                         half-closes (SHUT_WR), waits for the server's close,\n"
                "                         then closes (TIME_WAIT on the client) [default: client]\n"
                "      --linger0          close with an RST (SO_LINGER 0): no TIME_WAIT\n"
                "      --latency-csv FILE write the connect latency distribution (CSV)\n"
                "%s"
                "Protocols: raw, line, frame, and http (GET /). Defaults: --size 64, no\n"
                "--connect-rate limit. A loop whose connect fails waits 10 ms before trying\n"
                "again.\n",
                common_help);
    } else {
        fprintf(f,
                "Usage: wharf hold [OPTION]... PROTO://HOST:PORT\n"
                "Many idle connections: open N, prove each live with one round trip, hold\n"
                "them idle for -d, then check that every one still answers.\n"
                "  -c, --connections N    connections to hold [default: 1000]\n"
                "      --procs K          spread them over K processes, for more than one\n"
                "                         process's file limit ('ulimit -n') [default: 1]\n"
                "%s"
                "Defaults: --size 16, --connect-rate 10000. Exit status 0 when every\n"
                "connection survived.\n",
                common_help);
    }
}

const char *close_mode_name(enum close_mode m)
{
    return m == CLOSE_SERVER ? "server" : m == CLOSE_HALF ? "half" : "client";
}

static int bad(const char *cmd, const char *opt, const char *arg, const char *want)
{
    fprintf(stderr, "wharf %s: %s: expected %s, got '%s'\n", cmd, opt, want, arg);
    return 2;
}

static int parse_ipv4(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return -1;
    *out = ntohl(a.s_addr);
    return 0;
}

static int add_source(struct load_opts *o, const struct sockaddr *sa, socklen_t len)
{
    if (o->n_sources >= LOAD_MAX_SOURCES)
        return -1;
    memcpy(&o->sources[o->n_sources++], sa, len);
    o->source_len = len;
    return 0;
}

/* "A,B,C" with IPv4 ranges "127.0.0.2-127.0.0.9" or "127.0.0.2-9". */
static int parse_sources(struct load_opts *o, const char *text, char *err, size_t errlen)
{
    if (!o->sources) {
        o->sources = calloc(LOAD_MAX_SOURCES, sizeof *o->sources);
        if (!o->sources) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    char *copy = strdup(text), *save = NULL;
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(item, '-');
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
        if (!dash && inet_pton(AF_INET6, item, &s6.sin6_addr) == 1) {
            if (add_source(o, (struct sockaddr *)&s6, sizeof s6) < 0)
                rc = -1;
            continue;
        }
        uint32_t lo, hi;
        if (dash)
            *dash = '\0';
        if (parse_ipv4(item, &lo) < 0) {
            snprintf(err, errlen, "bad source address '%s'", item);
            rc = -1;
            break;
        }
        hi = lo;
        if (dash) {
            char *end;
            unsigned long last = strtoul(dash + 1, &end, 10);
            if (*end == '\0' && end != dash + 1 && last <= 255)
                hi = (lo & 0xffffff00u) | (uint32_t)last;
            else if (parse_ipv4(dash + 1, &hi) < 0) {
                snprintf(err, errlen, "bad source range end '%s'", dash + 1);
                rc = -1;
                break;
            }
        }
        if (hi < lo || hi - lo >= LOAD_MAX_SOURCES) {
            snprintf(err, errlen, "bad source range '%s-%s'", item, dash ? dash + 1 : "");
            rc = -1;
            break;
        }
        for (uint64_t a = lo; a <= hi && rc == 0; a++) {
            struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl((uint32_t)a)};
            if (add_source(o, (struct sockaddr *)&s4, sizeof s4) < 0)
                rc = -1;
        }
    }
    if (rc < 0 && !err[0])
        snprintf(err, errlen, "more than %d source addresses", LOAD_MAX_SOURCES);
    free(copy);
    return rc;
}

static int parse_onoff(const char *s, int *out)
{
    if (strcmp(s, "on") == 0 || strcmp(s, "1") == 0 || strcmp(s, "yes") == 0)
        *out = 1;
    else if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0 || strcmp(s, "no") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

static void set_defaults(int cmd, struct load_opts *o)
{
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->proto = PROTO_RAW;
    o->connections = cmd == CMD_HOLD ? 1000 : 10;
    o->threads = cmd == CMD_BENCH ? 2 : 1;
    o->duration_ms = 10000;
    o->size = cmd == CMD_HOLD ? 16 : 64;
    o->pipeline = 1;
    o->timeout_ms = 5000;
    o->connect_rate = cmd == CMD_CHURN ? 0 : 10000;
    o->per_conn = 1;
    o->procs = 1;
    o->expect = MODE_UPPER;
    o->close_mode = CLOSE_CLIENT;
    o->nodelay = 1;
}

/* Checks that involve more than one flag. */
static int validate(const char *name, struct load_opts *o, int have_proto)
{
    char err[256];
    if (addr_parse(o->target_text, &o->ep, err, sizeof err) < 0) {
        fprintf(stderr, "wharf %s: %s\n", name, err);
        return 2;
    }
    if (o->ep.has_proto) {
        if (have_proto && o->ep.proto != o->proto) {
            fprintf(stderr, "wharf %s: --proto %s contradicts the address's %s://\n", name,
                    proto_name(o->proto), proto_name(o->ep.proto));
            return 2;
        }
        o->proto = o->ep.proto;
    }
    o->ep.proto = o->proto;
    if (o->proto == PROTO_HTTP && o->cmd != CMD_CHURN) {
        fprintf(stderr, "wharf %s: http is not a %s protocol (HTTP load stays with wrk; "
                        "wharf churn speaks http)\n", name, name);
        return 2;
    }
    if (o->n_sources && o->sources[0].ss_family != o->ep.sa.ss_family) {
        fprintf(stderr, "wharf %s: --source addresses must be of the target's family\n", name);
        return 2;
    }
    for (int i = 1; i < o->n_sources; i++) {
        if (o->sources[i].ss_family != o->sources[0].ss_family) {
            fprintf(stderr, "wharf %s: --source mixes IPv4 and IPv6\n", name);
            return 2;
        }
    }
    if (o->proto == PROTO_RAW && o->size == 0 && !(o->cmd == CMD_CHURN && o->per_conn == 0)) {
        fprintf(stderr, "wharf %s: raw needs --size of at least 1 (it has no framing)\n", name);
        return 2;
    }
    if (o->threads > o->connections)
        o->threads = o->connections;
    if (o->cmd == CMD_BENCH && o->pipeline * (o->size + 8) > (256u << 20)) {
        fprintf(stderr, "wharf bench: --pipeline x --size is above 256 MiB\n");
        return 2;
    }
    if (o->cmd == CMD_CHURN) {
        if (o->close_mode == CLOSE_SERVER && o->proto != PROTO_HTTP) {
            fprintf(stderr,
                    "wharf churn: --close server needs http://: wharfd closes first only on "
                    "'Connection: close'. For raw, line or frame use --close half (the client "
                    "half-closes and wharfd closes after answering, but the client's FIN goes "
                    "first, so TIME_WAIT stays on the client)\n");
            return 2;
        }
        if (o->close_mode == CLOSE_SERVER && o->per_conn == 0) {
            fprintf(stderr, "wharf churn: --close server needs at least one request per "
                            "connection (-r 1)\n");
            return 2;
        }
        if (o->linger0 && o->close_mode != CLOSE_CLIENT) {
            fprintf(stderr, "wharf churn: --linger0 goes with --close client\n");
            return 2;
        }
    }
    if (o->cmd == CMD_HOLD && o->procs > o->connections)
        o->procs = o->connections;
    return 0;
}

int load_parse(int cmd, int argc, char **argv, struct load_opts *o)
{
    const char *name = argv[0];
    set_defaults(cmd, o);
    struct option longopts[N_OPTDEFS + 1];
    char shortopts[64];
    size_t nl = 0, ns = 0;
    for (size_t i = 0; i < N_OPTDEFS; i++) {
        if (!(optdefs[i].cmds & cmd))
            continue;
        longopts[nl++] = (struct option){optdefs[i].name, optdefs[i].has_arg, NULL, optdefs[i].val};
        if (optdefs[i].val < 256) {
            shortopts[ns++] = (char)optdefs[i].val;
            if (optdefs[i].has_arg)
                shortopts[ns++] = ':';
        }
    }
    longopts[nl] = (struct option){0};
    shortopts[ns] = '\0';
    int have_proto = 0, c, longindex = -1;
    char err[256] = "";
    optind = 1;
    for (; (c = getopt_long(argc, argv, shortopts, longopts, &longindex)) != -1; longindex = -1) {
        const char *a = optarg;
        if (longindex >= 0 && opts_abbreviated(argv, optind, a, longopts[longindex].name, err,
                                               sizeof err)) {
            fprintf(stderr, "wharf %s: %s\n", name, err);
            return 2;
        }
        switch (c) {
        case 'h':
            usage(cmd, stdout);
            return 1;
        case 'c':
            if (parse_uint(a, 1, 10000000, &o->connections) < 0)
                return bad(name, "--connections", a, "a number from 1");
            break;
        case 't':
            if (parse_uint(a, 1, 1024, &o->threads) < 0)
                return bad(name, "--threads", a, "1 to 1024");
            break;
        case 'd':
            if (parse_duration_ms(a, &o->duration_ms) < 0 || o->duration_ms == 0)
                return bad(name, "--duration", a, "a duration such as 10s");
            o->duration_set = 1;
            break;
        case 'n':
            if (parse_uint(a, 1, UINT64_MAX / 2, &o->requests) < 0)
                return bad(name, cmd == CMD_CHURN ? "--cycles" : "--requests", a,
                           "a number from 1");
            break;
        case 'r':
            if (parse_uint(a, 0, 1000000, &o->per_conn) < 0)
                return bad(name, "--requests-per-conn", a, "0 to 1000000");
            break;
        case 's':
            if (parse_size(a, &o->size) < 0 || o->size > (64u << 20))
                return bad(name, "--size", a, "a size up to 64M");
            break;
        case 'P':
            if (parse_uint(a, 1, 4096, &o->pipeline) < 0)
                return bad(name, "--pipeline", a, "1 to 4096");
            break;
        case O_WARMUP:
            if (parse_duration_ms(a, &o->warmup_ms) < 0)
                return bad(name, "--warmup", a, "a duration such as 2s");
            break;
        case 'R':
            if (parse_uint(a, 1, 1000000000, &o->rate) < 0)
                return bad(name, "--rate", a, "requests per second, from 1");
            break;
        case O_EXPECT:
            if (mode_parse(a, &o->expect) < 0)
                return bad(name, "--expect", a, "echo or upper");
            break;
        case O_JSON:
            o->json = 1;
            break;
        case O_LATENCY_CSV:
            o->latency_csv = a;
            break;
        case O_LATENCY:
            break; /* wrk's --latency: the distribution is printed anyway */
        case O_ALLOW_ERRORS:
            o->allow_errors = 1;
            break;
        case O_CONNECT_RATE:
            if (parse_uint(a, 0, 100000000, &o->connect_rate) < 0)
                return bad(name, "--connect-rate", a, "connections per second (0: no limit)");
            break;
        case O_SOURCE:
            if (parse_sources(o, a, err, sizeof err) < 0) {
                fprintf(stderr, "wharf %s: --source: %s\n", name, err);
                return 2;
            }
            break;
        case O_PROTO:
            if (proto_parse(a, strlen(a), &o->proto) < 0)
                return bad(name, "--proto", a, "raw, line, frame or http");
            have_proto = 1;
            break;
        case O_NODELAY:
            if (parse_onoff(a, &o->nodelay) < 0)
                return bad(name, "--nodelay", a, "on or off");
            break;
        case O_RCVBUF:
            if (parse_size(a, &o->rcvbuf) < 0 || o->rcvbuf > INT32_MAX / 2)
                return bad(name, "--rcvbuf", a, "a size");
            break;
        case O_SNDBUF:
            if (parse_size(a, &o->sndbuf) < 0 || o->sndbuf > INT32_MAX / 2)
                return bad(name, "--sndbuf", a, "a size");
            break;
        case O_TIMEOUT:
            if (parse_duration_ms(a, &o->timeout_ms) < 0 || o->timeout_ms == 0)
                return bad(name, "--timeout", a, "a duration such as 5s");
            break;
        case O_CLOSE:
            if (strcmp(a, "client") == 0)
                o->close_mode = CLOSE_CLIENT;
            else if (strcmp(a, "server") == 0)
                o->close_mode = CLOSE_SERVER;
            else if (strcmp(a, "half") == 0)
                o->close_mode = CLOSE_HALF;
            else
                return bad(name, "--close", a, "client, server or half");
            break;
        case O_LINGER0:
            o->linger0 = 1;
            break;
        case O_PROCS:
            if (parse_uint(a, 1, 256, &o->procs) < 0)
                return bad(name, "--procs", a, "1 to 256");
            break;
        default:
            fprintf(stderr, "Try 'wharf %s --help'.\n", name);
            return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "wharf %s: %s (see wharf %s --help)\n", name,
                argc - optind ? "one address only" : "which server? give PROTO://HOST:PORT",
                name);
        return 2;
    }
    o->target_text = argv[optind];
    return validate(name, o, have_proto);
}

void load_opts_free(struct load_opts *o)
{
    free(o->sources);
    o->sources = NULL;
}

int load_connect(const struct load_opts *o, uint64_t index, int *in_progress)
{
    int fd = socket(o->ep.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, err;
    if (o->nodelay)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o->rcvbuf) {
        int v = (int)o->rcvbuf;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    }
    if (o->sndbuf) {
        int v = (int)o->sndbuf;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    }
    if (o->n_sources) {
        /* Port 0 with IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect time for
         * the whole 4-tuple, so sources do not each burn a port per connection. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        const struct sockaddr_storage *src = &o->sources[index % (uint64_t)o->n_sources];
        if (bind(fd, (const struct sockaddr *)src, o->source_len) < 0)
            goto fail;
    }
    if (connect(fd, (const struct sockaddr *)&o->ep.sa, o->ep.sa_len) == 0) {
        *in_progress = 0;
        return fd;
    }
    if (errno == EINPROGRESS) {
        *in_progress = 1;
        return fd;
    }
fail:
    err = errno;
    close(fd);
    return -err;
}

int load_socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

void load_close_rst(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

uint64_t load_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            rl.rlim_cur = old;
    }
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

int load_epoll_wait(int epfd, struct epoll_event *ev, int max, uint64_t wait_ns)
{
    static _Atomic int no_pwait2;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000u),
                              .tv_nsec = (long)(wait_ns % 1000000000u)};
        int n = epoll_pwait2(epfd, ev, max, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, 1, memory_order_relaxed);
    }
    uint64_t ms = (wait_ns + 999999) / 1000000;
    return epoll_wait(epfd, ev, max, ms > 3600000 ? 3600000 : (int)ms);
}

/* ---- the main thread's clock and signals ---- */

static int sig_fd = -1;
static int sig_count;

int runctl_init(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return sig_fd < 0 ? -1 : 0;
}

int runctl_fd(void) { return sig_fd; }

void runctl_take(void)
{
    struct signalfd_siginfo si;
    while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si)
        sig_count++;
}

int runctl_wait(uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = clock_ns();
        if (now >= deadline_ns)
            return sig_count;
        uint64_t left_ms = (deadline_ns - now + 999999) / 1000000;
        struct pollfd p = {.fd = sig_fd, .events = POLLIN};
        int n = poll(&p, 1, left_ms > 1000000 ? 1000000 : (int)left_ms);
        if (n > 0) {
            runctl_take();
            return sig_count;
        }
    }
}

int runctl_signals(void) { return sig_count; }

int runctl_progress(void) { return isatty(STDERR_FILENO); }

const char *errno_name(int err)
{
    const char *n = strerrorname_np(err);
    return n ? n : "EUNKNOWN";
}
