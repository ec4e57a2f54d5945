/* load: what the load generators (bench, churn, hold) share: their flags, the sockets
 * they open, the main thread's wait for time or Ctrl-C, and the file limit. */
#ifndef WHARF_LOAD_H
#define WHARF_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../common/addr.h"
#include "../common/codec.h"
#include "../common/mode.h"

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
    int nodelay;          /* 1 on, 0 off */
    uint64_t rcvbuf, sndbuf; /* 0: the kernel's default */
    int n_sources;
    struct sockaddr_storage *sources;
    socklen_t source_len;
};

/* Parse a load command's flags (argv[0] is the command's name). Returns 0 to run,
 * 1 when --help was printed (exit 0), 2 on a usage error (already reported). */
int load_parse(int cmd, int argc, char **argv, struct load_opts *o);
void load_opts_free(struct load_opts *o);

/* "client", "server", "half". */
const char *close_mode_name(enum close_mode m);

/* Open a non-blocking socket with the flags' options, bound to source index % n_sources
 * when --source was given, and start connecting. Returns the fd, with *in_progress
 * set when the handshake is still under way, or -errno. */
int load_connect(const struct load_opts *o, uint64_t index, int *in_progress);

/* The outcome of a non-blocking connect (SO_ERROR): 0 or an errno. */
int load_socket_error(int fd);

/* Close with an RST instead of a FIN (SO_LINGER 0): no TIME_WAIT anywhere. */
void load_close_rst(int fd);

/* Raise the soft file limit to the hard one. Returns the limit now in force. */
uint64_t load_raise_nofile(void);

/* epoll_wait with a nanosecond timeout (epoll_pwait2, Linux 5.11+; on older kernels
 * epoll_wait with the timeout rounded up to a millisecond). */
struct epoll_event;
int load_epoll_wait(int epfd, struct epoll_event *ev, int max, uint64_t wait_ns);

/* Signals: block SIGINT/SIGTERM in every thread (call before any thread or child
 * starts) and ignore SIGPIPE; the main thread then sees them with runctl_wait. */
int runctl_init(void);
/* The signalfd, for callers that poll other descriptors too; runctl_take reads it
 * after poll says it is readable. */
int runctl_fd(void);
void runctl_take(void);
/* Sleep until deadline_ns (CLOCK_MONOTONIC) or until a signal arrives. Returns the
 * number of SIGINT/SIGTERM seen so far. */
int runctl_wait(uint64_t deadline_ns);
int runctl_signals(void);
/* Progress lines go to stderr, and only when it is a terminal. */
int runctl_progress(void);

/* "ECONNREFUSED" and the like (never NULL). */
const char *errno_name(int err);

#endif
