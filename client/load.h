/* load: what the load generators (bench, churn, hold) share besides the engine: the
 * sockets they open, the main thread's wait for time or Ctrl-C, and the file limit.
 * Their flags are in options.h. */
#ifndef WHARF_LOAD_H
#define WHARF_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../common/addr.h"
#include "../common/codec.h"
#include "../common/mode.h"
#include "options.h"

/* A load command's main: parse its flags, run it, free the flags. Returns the exit
 * status (0 after --help, 2 on bad usage, else what run returned). */
int load_main(int cmd, int argc, char **argv, int (*run)(const struct load_opts *o));

/* Open a non-blocking socket with the flags' options, bound to source index % n_sources
 * when --source was given, and start connecting. Returns the fd, with *in_progress
 * set when the handshake is still under way, or -errno. */
int load_connect(const struct load_opts *o, uint64_t index, int *in_progress);
/* The same to ep instead of the target (a thread a wrk script's setup() sent elsewhere;
 * ep's family must be --source's, when given). */
int load_connect_to(const struct load_opts *o, const struct endpoint *ep, uint64_t index,
                    int *in_progress);

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
