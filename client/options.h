/* options: the load generators' flags, from one table (options.c): each row is a flag's
 * names, the commands that take it, its default, the setter that checks and stores a
 * value, and its help. Parsing, the defaults, --help and the man page's option list
 * all read that table, so none of them can drift from the others. */
#ifndef WHARF_OPTIONS_H
#define WHARF_OPTIONS_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "../common/addr.h"
#include "../common/codec.h"
#include "../common/mode.h"
#include "http_spec.h"

enum load_cmd { CMD_BENCH = 1, CMD_CHURN = 2, CMD_HOLD = 4 };

enum close_mode {
    CLOSE_CLIENT, /* the client closes first: TIME_WAIT on the client */
    CLOSE_SERVER, /* the server closes first (HTTP Connection: close): TIME_WAIT on the server */
    CLOSE_HALF,   /* the client half-closes and waits for the server's close */
};

#define LOAD_MAX_SOURCES 256

struct load_opts {
    int cmd;
    const char *target_text;
    struct endpoint ep;
    enum proto proto;
    int proto_set;        /* --proto was given (it must agree with the address's) */
    uint64_t connections;
    uint64_t threads;
    uint64_t duration_ms;
    int duration_set;
    uint64_t requests;    /* bench -n: total requests; churn -n: total connections */
    uint64_t size;        /* payload bytes */
    uint64_t pipeline;
    uint64_t warmup_ms;
    uint64_t rate;        /* requests per second over all connections; 0: closed loop */
    uint64_t timeout_ms;
    uint64_t connect_rate; /* connection attempts per second; 0: no limit */
    uint64_t per_conn;    /* churn: requests per connection */
    uint64_t procs;       /* hold: processes */
    enum mode expect;
    enum close_mode close_mode;
    int json;
    int allow_errors;
    int linger0;
    const char *latency_csv;
    const char *hdr_log;  /* --hdr-log: HdrHistogram interval log (ivlog.h) */
    const char *hgrm;     /* --hgrm: the final percentile distribution (.hgrm) */
    uint64_t interval_ms; /* --hdr-log's interval */
    double start_at;      /* --start-at: wall clock seconds since the epoch; 0: none */
    int nodelay;          /* 1 on, 0 off */
    uint64_t rcvbuf, sndbuf; /* 0: the kernel's default */
    int n_sources;
    struct sockaddr_storage *sources;
    socklen_t source_len;
    struct http_spec http; /* http://: what is sent and checked */
    const char *script;   /* -s: a wrk Lua script (script.h) */
    char **script_args;   /* the arguments after `--`, for its init() */
    int n_script_args;
    int script_request;   /* set by script_prepare: request() runs per request */
    int script_response;  /* set by script_prepare: response() sees each response */
    int script_delay;     /* set by script_prepare: delay() before each request */
    size_t script_batch;  /* the most requests one request() returned at first */
};

/* Parse a load command's flags (argv[0] is the command's name). Returns 0 to run,
 * 1 when --help was printed (exit 0), 2 on a usage error (already reported). */
int load_parse(int cmd, int argc, char **argv, struct load_opts *o);
void load_opts_free(struct load_opts *o);

/* The option list of the man page (roff, one .TP per flag and command), on f: what
 * 'wharf man-options' prints, pasted into wharf.1 by hand when the table changes. */
void options_print_man(FILE *f);

/* "client", "server", "half". */
const char *close_mode_name(enum close_mode m);

#endif
