/* options: every flag of bench, churn and hold, once. A row names the commands that
 * take it; a flag whose default or help differs between commands has one row per
 * variant. Most values are numbers, sizes or durations checked against the row's range
 * and stored at the row's offset in struct load_opts; the rest have a setter. */
#include "options.h"

#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../common/opts.h"
#include "../common/units.h"
#include "http_target.h"
#include "payload.h"
#include "script.h"
#include "sources.h"

#define B CMD_BENCH
#define C CMD_CHURN
#define H CMD_HOLD
#define ALL (B | C | H)
#define HELP_COL 25  /* where the help text starts */
#define HELP_WIDTH 88

enum kind {
    K_UINT,     /* uint64_t in [lo, hi] */
    K_SIZE,     /* uint64_t, a size ("4K") up to hi */
    K_DURATION, /* uint64_t milliseconds ("10s"), at least lo */
    K_FLAG,     /* int set to 1 */
    K_STRING,   /* const char *, the argument itself */
    K_SETTER,   /* the row's setter */
    K_IGNORED,  /* accepted, does nothing */
    K_HELP,
};

typedef int (*setter_fn)(struct load_opts *o, const char *v, char *err, size_t errlen);

struct optrow {
    const char *name;
    int short_name;      /* 0: long only */
    const char *metavar; /* NULL: takes no value */
    int cmds;
    enum kind kind;
    size_t off;          /* the field, for all kinds but K_SETTER, K_IGNORED and K_HELP */
    uint64_t lo, hi;
    setter_fn set;
    const char *defval;  /* applied through the row before the flags; NULL: none */
    const char *want;    /* "expected WANT, got '...'" when a value is refused */
    const char *help;    /* lines after the first are indented to the help column */
};

static int set_expect(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    return mode_parse(v, &o->expect);
}

static int set_source(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    return sources_parse(o, v, err, errlen);
}

static int set_proto(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    o->proto_set = 1;
    return proto_parse(v, strlen(v), &o->proto);
}

static int set_nodelay(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    if (strcmp(v, "on") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0)
        o->nodelay = 1;
    else if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0)
        o->nodelay = 0;
    else
        return -1;
    return 0;
}

static int set_start_at(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    char *end;
    double t = strtod(v, &end);
    if (end == v || *end || !(t >= 1e9 && t < 1e11))
        return -1;
    o->start_at = t;
    return 0;
}

static int set_close(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    static const char *const names[] = {"client", "server", "half"};
    for (int m = CLOSE_CLIENT; m <= CLOSE_HALF; m++) {
        if (strcmp(v, names[m]) == 0) {
            o->close_mode = (enum close_mode)m;
            return 0;
        }
    }
    return -1;
}

const char *close_mode_name(enum close_mode m)
{
    return m == CLOSE_SERVER ? "server" : m == CLOSE_HALF ? "half" : "client";
}

static int set_script(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    if (!script_built_in()) {
        snprintf(err, errlen, "Lua support is not built in (see wharf --version)");
        return -1;
    }
    o->script = v;
    return 0;
}

static int set_header(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    return http_target_header(o, v, err, errlen);
}

static int set_expect_status(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    return http_target_expect_status(o, v, err, errlen);
}

static int set_method(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    return http_target_method(o, v, err, errlen);
}

static int set_body(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    o->http.body = v;
    o->http.body_len = strlen(v);
    return 0;
}

#define F(field) offsetof(struct load_opts, field)
#define NUM(field, lo, hi) K_UINT, F(field), lo, hi, NULL
#define SETTER(fn) K_SETTER, 0, 0, 0, fn

static const struct optrow rows[] = {
    /* bench */
    {"connections", 'c', "N", B, NUM(connections, 1, 10000000), "10", "a number from 1",
     "connections"},
    {"threads", 't', "N", B, NUM(threads, 1, 1024), "2", "1 to 1024",
     "threads, each with its own epoll loop"},
    {"requests", 'n', "N", B, NUM(requests, 1, UINT64_MAX / 2), NULL, "a number from 1",
     "stop after N requests (with -d: whichever comes first)"},
    {"pipeline", 'P', "N", B, NUM(pipeline, 1, 4096), "1", "1 to 4096",
     "requests in flight per connection"},
    {"rate", 'R', "N", B, NUM(rate, 1, 1000000000), NULL, "requests per second, from 1",
     "constant total rate (requests/s); latency counts from\neach request's intended send "
     "time [default: as fast\nas replies come back]"},
    {"warmup", 0, "T", B, K_DURATION, F(warmup_ms), 0, 0, NULL, "0", "a duration such as 2s",
     "run this long first, not counted"},
    {"latency-csv", 0, "FILE", B, K_STRING, F(latency_csv), 0, 0, NULL, NULL, NULL,
     "write the latency distribution (CSV)"},
    {"latency", 0, NULL, B, K_IGNORED, 0, 0, 0, NULL, NULL, NULL,
     "accepted for wrk's sake; the distribution is always\nprinted"},
    /* churn */
    {"connections", 'c', "N", C, NUM(connections, 1, 10000000), "10", "a number from 1",
     "concurrent loops"},
    {"threads", 't', "N", C, NUM(threads, 1, 1024), "1", "1 to 1024", "threads"},
    {"cycles", 'n', "N", C, NUM(requests, 1, UINT64_MAX / 2), NULL, "a number from 1",
     "stop after N connections (with -d: whichever first)"},
    {"requests-per-conn", 'r', "R", C, NUM(per_conn, 0, 1000000), "1", "0 to 1000000",
     "round trips per connection; 0 connects and\ncloses"},
    {"close", 0, "WHO", C, SETTER(set_close), "client", "client, server or half",
     "client: the client closes first and holds TIME_WAIT;\nserver: the server closes first "
     "and holds TIME_WAIT\n(http:// only: 'Connection: close'); half: the client\nhalf-closes "
     "(SHUT_WR), waits for the server's close,\nthen closes (TIME_WAIT on the client)"},
    {"linger0", 0, NULL, C, K_FLAG, F(linger0), 0, 0, NULL, NULL, NULL,
     "close with an RST (SO_LINGER 0): no TIME_WAIT"},
    {"latency-csv", 0, "FILE", C, K_STRING, F(latency_csv), 0, 0, NULL, NULL, NULL,
     "write the connect latency distribution (CSV)"},
    /* hold */
    {"connections", 'c', "N", H, NUM(connections, 1, 10000000), "1000", "a number from 1",
     "connections to hold"},
    {"procs", 0, "K", H, NUM(procs, 1, 256), "1", "1 to 256",
     "spread them over K processes, for more than one\nprocess's file limit ('ulimit -n')"},
    /* all three */
    {"duration", 'd', "T", ALL, K_DURATION, F(duration_ms), 1, 0, NULL, "10s",
     "a duration such as 10s", "how long to run (10s, 500ms, 2m)"},
    {"size", 0, "BYTES", B | C, K_SIZE, F(size), 0, 64u << 20, NULL, "64", "a size up to 64M",
     "payload bytes per request (64, 4K, 1M)"},
    {"size", 0, "BYTES", H, K_SIZE, F(size), 0, 64u << 20, NULL, "16", "a size up to 64M",
     "payload bytes per request (64, 4K, 1M)"},
    {"expect", 0, "MODE", ALL, SETTER(set_expect), "upper", "echo or upper",
     "echo|upper: what the server's --mode returns; any other\nreply is a mismatch error"},
    {"proto", 0, "P", ALL, SETTER(set_proto), NULL, "raw, line, frame or http",
     "raw, line or frame when the address has no PROTO://"},
    {"timeout", 0, "T", ALL, K_DURATION, F(timeout_ms), 1, 0, NULL, "5s",
     "a duration such as 5s", "a reply (or a connect) later than this is a timeout error"},
    {"connect-rate", 0, "N", B | H, NUM(connect_rate, 0, 100000000), "10000",
     "connections per second (0: no limit)",
     "new connections per second at most, over all threads\n(0: no limit)"},
    {"connect-rate", 0, "N", C, NUM(connect_rate, 0, 100000000), "0",
     "connections per second (0: no limit)",
     "new connections per second at most, over all threads\n(0: no limit)"},
    {"source", 0, "LIST", ALL, SETTER(set_source), NULL, NULL,
     "source addresses to spread connections over, e.g.\n127.0.0.2,127.0.0.3 or "
     "127.0.0.2-127.0.0.9 (one source\naddress runs out of ephemeral ports near 28k "
     "connections)"},
    {"nodelay", 0, "on|off", ALL, SETTER(set_nodelay), "on", "on or off", "TCP_NODELAY"},
    {"rcvbuf", 0, "BYTES", ALL, K_SIZE, F(rcvbuf), 0, INT32_MAX / 2, NULL, NULL, "a size",
     "SO_RCVBUF (default: the kernel's autotuning)"},
    {"sndbuf", 0, "BYTES", ALL, K_SIZE, F(sndbuf), 0, INT32_MAX / 2, NULL, NULL, "a size",
     "SO_SNDBUF (default: the kernel's autotuning)"},
    {"json", 0, NULL, ALL, K_FLAG, F(json), 0, 0, NULL, NULL, NULL,
     "print the report as one JSON object on stdout"},
    {"allow-errors", 0, NULL, ALL, K_FLAG, F(allow_errors), 0, 0, NULL, NULL, NULL,
     "exit 0 even when there were errors"},
    /* http:// */
    {"header", 'H', "LINE", ALL, SETTER(set_header), NULL, "'Name: value'",
     "http: add this header field to every request\n(repeatable)"},
    {"method", 'm', "METHOD", ALL, SETTER(set_method), NULL, NULL, "http: the method [default: GET]"},
    {"body", 0, "STRING", ALL, SETTER(set_body), NULL, NULL,
     "http: the request body (Content-Length is added)"},
    {"body-file", 0, "FILE", ALL, K_STRING, F(http.body_file), 0, 0, NULL, NULL, NULL,
     "http: the request body, from a file"},
    {"expect-status", 0, "LIST", ALL, SETTER(set_expect_status), NULL, NULL,
     "http: statuses that are a success (200 or\n200,204,300-399); any other is a 'status' error\n"
     "[default: any; 4xx and 5xx counted as wrk counts them]"},
    {"expect-body", 0, "STRING", ALL, K_STRING, F(http.expect_body), 0, 0, NULL, NULL, NULL,
     "http: the exact body every response must have; any\nother is a 'body' error"},
    {"script", 's', "FILE", B, SETTER(set_script), NULL, NULL,
     "a wrk Lua script (http:// only; its init() gets the\narguments after --)"},
    {"hdr-log", 0, "FILE", B | C, K_STRING, F(hdr_log), 0, 0, NULL, NULL, NULL,
     "write an HdrHistogram interval log (values in ns; bench:\nrequest latency, churn: "
     "connect latency)"},
    {"hgrm", 0, "FILE", B | C, K_STRING, F(hgrm), 0, 0, NULL, NULL, NULL,
     "write the percentile distribution in HdrHistogram's\n.hgrm layout (milliseconds)"},
    {"interval", 0, "T", B | C, K_DURATION, F(interval_ms), 10, 0, NULL, "1s",
     "a duration from 10ms", "--hdr-log's interval"},
    {"start-at", 0, "TIME", B, SETTER(set_start_at), NULL,
     "seconds since the epoch, such as 1767225600.5",
     "start the measured time at this wall clock time (in\nseconds since the epoch), so "
     "that several hosts'\nintervals line up"},
    {"start-at", 0, "TIME", C, SETTER(set_start_at), NULL,
     "seconds since the epoch, such as 1767225600.5",
     "start the run at this wall clock time (in seconds\nsince the epoch), so that several "
     "hosts' intervals\nline up"},
    {"help", 'h', NULL, ALL, K_HELP, 0, 0, 0, NULL, NULL, NULL, "this help"},
};
#define N_ROWS (sizeof rows / sizeof rows[0])

/* What a command's --help says around its rows. */
struct cmd_text {
    int cmd;
    const char *name, *about, *footer;
};

static const struct cmd_text cmd_texts[] = {
    {B, "bench",
     "Throughput and latency of HTTP/1.1 (http://HOST:PORT/PATH, wrk's flags) or of\n"
     "raw, line or frame request/reply.\n",
     "Exit status: 0 without errors, 1 with errors, 2 on bad usage.\n"},
    {C, "churn", "Connection rate: connect, do R round trips, close, repeat, on -c loops.\n",
     "Protocols: raw, line, frame, and http (GET /). A loop whose connect fails waits\n"
     "10 ms before trying again.\n"},
    {H, "hold",
     "Many idle connections: open N, prove each live with one round trip, hold\n"
     "them idle for -d, then check that every one still answers.\n",
     "Exit status 0 when every connection survived.\n"},
};

static const struct cmd_text *cmd_text(int cmd)
{
    for (size_t i = 0; i < sizeof cmd_texts / sizeof cmd_texts[0]; i++)
        if (cmd_texts[i].cmd == cmd)
            return &cmd_texts[i];
    return &cmd_texts[0];
}

/* Store v through row r. 0, or -1 with err set when the setter said why (else empty). */
static int apply(const struct optrow *r, struct load_opts *o, const char *v, char *err,
                 size_t errlen)
{
    void *field = (char *)o + r->off;
    uint64_t *u = field;
    err[0] = '\0';
    switch (r->kind) {
    case K_UINT:
        return parse_uint(v, r->lo, r->hi, u);
    case K_SIZE:
        return parse_size(v, u) < 0 || *u > r->hi ? -1 : 0;
    case K_DURATION:
        if (r->off == F(duration_ms))
            o->duration_set = 1;
        return parse_duration_ms(v, u) < 0 || *u < r->lo ? -1 : 0;
    case K_FLAG:
        *(int *)field = 1;
        return 0;
    case K_STRING:
        *(const char **)field = v;
        return 0;
    case K_SETTER:
        return r->set(o, v, err, errlen);
    default:
        return 0;
    }
}

/* Zero o, then give every row of cmd its default, through the row as if typed. */
static void apply_defaults(int cmd, struct load_opts *o)
{
    char err[256];
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    /* Settings no flag of this command sets, but the engine reads. */
    o->pipeline = 1;
    o->per_conn = 1;
    o->procs = 1;
    o->threads = 1;
    o->http.method = "GET";
    for (size_t i = 0; i < N_ROWS; i++)
        if ((rows[i].cmds & cmd) && rows[i].defval)
            apply(&rows[i], o, rows[i].defval, err, sizeof err);
    o->duration_set = 0; /* a default is not the user's -d */
    o->proto_set = 0;
}

/* The row's help lines, the first after the flag's names, the rest indented. */
static void print_row_help(FILE *f, const struct optrow *r)
{
    char left[64];
    int n = r->short_name ? snprintf(left, sizeof left, "  -%c, --%s", r->short_name, r->name)
                          : snprintf(left, sizeof left, "      --%s", r->name);
    if (r->metavar)
        n += snprintf(left + n, sizeof left - (size_t)n, " %s", r->metavar);
    int col = fprintf(f, "%s%*s", left, n < HELP_COL ? HELP_COL - n : 2, "");
    for (const char *s = r->help;;) {
        const char *nl = strchr(s, '\n');
        int len = nl ? (int)(nl - s) : (int)strlen(s);
        col += fprintf(f, "%.*s", len, s);
        if (!nl)
            break;
        col = fprintf(f, "\n%*s", HELP_COL, "") - 1;
        s = nl + 1;
    }
    if (r->defval) {
        int len = (int)strlen(r->defval) + 12;
        if (col + len > HELP_WIDTH)
            fprintf(f, "\n%*s", HELP_COL - 1, "");
        fprintf(f, " [default: %s]", r->defval);
    }
    fputc('\n', f);
}

static void usage(int cmd, FILE *f)
{
    const struct cmd_text *t = cmd_text(cmd);
    fprintf(f, "Usage: wharf %s [OPTION]... PROTO://HOST:PORT | http://HOST[:PORT][/PATH]\n%s",
            t->name, t->about);
    for (size_t i = 0; i < N_ROWS; i++)
        if (rows[i].cmds & cmd)
            print_row_help(f, &rows[i]);
    fprintf(f, "%sLong options are spelled out in full (no abbreviations).\n", t->footer);
}

/* roff: the escapes a man page needs in a flag's name or help. */
static void print_roff(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '-' || *s == '\\')
            fputc('\\', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
}

void options_print_man(FILE *f)
{
    for (size_t c = 0; c < sizeof cmd_texts / sizeof cmd_texts[0]; c++) {
        fprintf(f, ".SS wharf %s\n", cmd_texts[c].name);
        for (size_t i = 0; i < N_ROWS; i++) {
            const struct optrow *r = &rows[i];
            if (!(r->cmds & cmd_texts[c].cmd))
                continue;
            fprintf(f, ".TP\n");
            if (r->short_name)
                fprintf(f, "\\fB\\-%c\\fR, ", r->short_name);
            fprintf(f, "\\fB");
            print_roff(f, "--");
            print_roff(f, r->name);
            fprintf(f, "\\fR%s%s%s\n", r->metavar ? " \\fI" : "", r->metavar ? r->metavar : "",
                    r->metavar ? "\\fR" : "");
            print_roff(f, r->help);
            if (r->defval)
                fprintf(f, " [default: %s]", r->defval);
            fputc('\n', f);
        }
    }
}

/* getopt_long's tables for cmd's rows; a long option's val is 256 + its row. */
static void getopt_tables(int cmd, struct option *longopts, char *shortopts)
{
    size_t nl = 0, ns = 0;
    for (size_t i = 0; i < N_ROWS; i++) {
        if (!(rows[i].cmds & cmd))
            continue;
        longopts[nl++] = (struct option){rows[i].name, rows[i].metavar != NULL, NULL,
                                         256 + (int)i};
        if (rows[i].short_name) {
            shortopts[ns++] = (char)rows[i].short_name;
            if (rows[i].metavar)
                shortopts[ns++] = ':';
        }
    }
    longopts[nl] = (struct option){0};
    shortopts[ns] = '\0';
}

/* The row of cmd for what getopt_long returned; NULL for '?'. */
static const struct optrow *row_for(int cmd, int c)
{
    if (c >= 256)
        return &rows[c - 256];
    for (size_t i = 0; i < N_ROWS; i++)
        if ((rows[i].cmds & cmd) && rows[i].short_name == c)
            return &rows[i];
    return NULL;
}

static int refuse(const char *name, const char *what)
{
    fprintf(stderr, "wharf %s: %s\n", name, what);
    return 2;
}

/* The HTTP flags: only with http://, and --body or --body-file, not both. */
static int validate_http(struct load_opts *o, char *err, size_t errlen)
{
    struct http_spec *h = &o->http;
    int any = h->n_headers || h->body || h->body_file || h->expect_status || h->expect_body ||
              strcmp(h->method, "GET") != 0 || o->script;
    if (o->proto != PROTO_HTTP) {
        if (any)
            snprintf(err, errlen, "-H, -m, --body, --body-file, --expect-status, "
                                  "--expect-body and -s go with http:// only");
        return any ? -1 : 0;
    }
    if (!h->host[0]) /* HOST:PORT with --proto http */
        snprintf(h->host, sizeof h->host, "%s", o->target_text);
    if (!h->path)
        h->path = "/";
    if (h->body && h->body_file) {
        snprintf(err, errlen, "--body and --body-file: one or the other");
        return -1;
    }
    return h->body_file ? http_target_body_file(o, err, errlen) : 0;
}

/* The target address, and the checks that involve more than one flag. */
static int validate_target(const char *name, struct load_opts *o)
{
    char err[512], url_addr[HTTP_SPEC_HOST_MAX + 16];
    const char *addr_text = o->target_text;
    if (strncmp(addr_text, "http://", 7) == 0 || strncmp(addr_text, "https://", 8) == 0) {
        if (http_target_parse(o, url_addr, sizeof url_addr, err, sizeof err) < 0)
            return refuse(name, err);
        addr_text = url_addr;
    }
    if (addr_parse(addr_text, &o->ep, err, sizeof err) < 0)
        return refuse(name, err);
    if (o->ep.has_proto) {
        if (o->proto_set && o->ep.proto != o->proto) {
            fprintf(stderr, "wharf %s: --proto %s contradicts the address's %s://\n", name,
                    proto_name(o->proto), proto_name(o->ep.proto));
            return 2;
        }
        o->proto = o->ep.proto;
    }
    o->ep.proto = o->proto;
    if (validate_http(o, err, sizeof err) < 0)
        return refuse(name, err);
    if (o->n_sources && o->sources[0].ss_family != o->ep.sa.ss_family)
        return refuse(name, "--source addresses must be of the target's family");
    for (int i = 1; i < o->n_sources; i++)
        if (o->sources[i].ss_family != o->sources[0].ss_family)
            return refuse(name, "--source mixes IPv4 and IPv6");
    return 0;
}

static int validate(const char *name, struct load_opts *o)
{
    int rc = validate_target(name, o);
    if (rc)
        return rc;
    if (o->proto == PROTO_UDP && o->cmd != CMD_BENCH)
        return refuse(name, "udp:// is for bench (and send): datagrams have no connections "
                            "to churn or hold");
    if (o->proto == PROTO_UDP && (o->size < UDP_SEQ_LEN || o->size > UDP_MAX_DGRAM))
        return refuse(name, "udp needs --size 8 to 65507 (an 8-byte sequence number starts "
                            "each datagram)");
    if (o->proto == PROTO_RAW && o->size == 0 && !(o->cmd == CMD_CHURN && o->per_conn == 0))
        return refuse(name, "raw needs --size of at least 1 (it has no framing)");
    if (o->threads > o->connections)
        o->threads = o->connections;
    if (o->cmd == CMD_BENCH && o->pipeline * (o->size + 8) > (256u << 20))
        return refuse(name, "--pipeline x --size is above 256 MiB");
    if (o->cmd == CMD_CHURN && o->close_mode == CLOSE_SERVER && o->proto != PROTO_HTTP)
        return refuse(name, "--close server needs http://: wharfd closes first only on "
                            "'Connection: close'. For raw, line or frame use --close half (the "
                            "client half-closes and wharfd closes after answering, but the "
                            "client's FIN goes first, so TIME_WAIT stays on the client)");
    if (o->cmd == CMD_CHURN && o->close_mode == CLOSE_SERVER && o->per_conn == 0)
        return refuse(name, "--close server needs at least one request per connection (-r 1)");
    if (o->cmd == CMD_CHURN && o->linger0 && o->close_mode != CLOSE_CLIENT)
        return refuse(name, "--linger0 goes with --close client");
    if (o->cmd == CMD_HOLD && o->procs > o->connections)
        o->procs = o->connections;
    return 0;
}

/* One flag getopt_long returned. 0 to go on, 1 after --help, 2 on a usage error. */
static int take_flag(const char *name, const struct optrow *r, struct load_opts *o,
                     const char *a)
{
    char err[256];
    if (!r) {
        fprintf(stderr, "Try 'wharf %s --help'.\n", name);
        return 2;
    }
    if (r->kind == K_HELP) {
        usage(o->cmd, stdout);
        return 1;
    }
    if (apply(r, o, a, err, sizeof err) == 0)
        return 0;
    if (err[0])
        fprintf(stderr, "wharf %s: --%s: %s\n", name, r->name, err);
    else
        fprintf(stderr, "wharf %s: --%s: expected %s, got '%s'\n", name, r->name, r->want, a);
    return 2;
}

int load_parse(int cmd, int argc, char **argv, struct load_opts *o)
{
    const char *name = argv[0];
    struct option longopts[N_ROWS + 1];
    char shortopts[2 * N_ROWS + 1], err[256];
    apply_defaults(cmd, o);
    getopt_tables(cmd, longopts, shortopts);
    int c, longindex = -1;
    optind = 1;
    for (int i = 1; i < argc; i++) /* wrk's `-- ARGS...`: the script's, not ours */
        if (strcmp(argv[i], "--") == 0) {
            o->script_args = argv + i + 1;
            o->n_script_args = argc - i - 1;
            argc = i;
            break;
        }
    for (; (c = getopt_long(argc, argv, shortopts, longopts, &longindex)) != -1; longindex = -1) {
        if (longindex >= 0 &&
            opts_abbreviated(argv, optind, optarg, longopts[longindex].name, err, sizeof err))
            return refuse(name, err);
        int rc = take_flag(name, c == '?' ? NULL : row_for(cmd, c), o, optarg);
        if (rc)
            return rc;
    }
    if (argc - optind != 1) {
        fprintf(stderr, "wharf %s: %s (see wharf %s --help)\n", name,
                argc - optind ? "one address only" : "which server? give PROTO://HOST:PORT",
                name);
        return 2;
    }
    o->target_text = argv[optind];
    return validate(name, o);
}

void load_opts_free(struct load_opts *o)
{
    free(o->sources);
    o->sources = NULL;
    free(o->http.body_owned);
    o->http.body_owned = NULL;
    free(o->http.raw_req);
    o->http.raw_req = NULL;
}
