/* listener: bound, listening sockets, one per --listen endpoint. */
#ifndef WHARF_LISTENER_H
#define WHARF_LISTENER_H

#include <stdint.h>

#include "../common/addr.h"
#include "config.h"

struct listener {
    int fd;
    struct listen_spec ep; /* what it serves, at the bound address (port 0 replaced) */
};

/* The byte handed on with an accepted socket (accept_deliver_fn, the handoff queue,
 * conn_open): the listener's enum proto (LISTENER_PROTO_MASK), with LISTENER_PROTO_PROXY
 * set when a PROXY header comes first (the connection then runs the header stage,
 * proxy_stage.h) and LISTENER_PROTO_METRICS for a metrics:// listener (only the stats
 * routes are served). */
#define LISTENER_PROTO_PROXY 0x80u
#define LISTENER_PROTO_METRICS 0x40u
#define LISTENER_PROTO_MASK 0x0fu

static inline uint8_t listener_conn_proto(const struct listener *l)
{
    return (uint8_t)((unsigned)l->ep.proto |
                     (l->ep.modifiers & LISTEN_MOD_PROXY ? LISTENER_PROTO_PROXY : 0u) |
                     (l->ep.scheme_flags & LISTEN_SCHEME_METRICS ? LISTENER_PROTO_METRICS : 0u));
}

struct listen_opts {
    int backlog;
    int reuseport; /* SO_REUSEPORT, for one listener per worker */
    const struct sockopts *sock;
};

/* Create, bind and listen. Returns 0, or -1 with a one-line reason in err. */
int listener_open(struct listener *l, const struct listen_spec *ep, const struct listen_opts *o,
                  char *err, size_t errlen);
void listener_close(struct listener *l);

/* Set the per-socket knobs (TCP_NODELAY, TCP_DEFER_ACCEPT, TCP_FASTOPEN, SO_RCVBUF,
 * SO_SNDBUF, SO_BUSY_POLL) on a listener, bound here or inherited from systemd. Linux
 * copies them to every accepted socket. 0, or -1 with a reason in err. */
int listener_apply_sockopts(int fd, const struct sockopts *so, char *err, size_t errlen);

/* The backlog the kernel will really use (net.core.somaxconn caps it); logs once when
 * the requested one is cut. */
int listener_effective_backlog(int requested);

#endif
