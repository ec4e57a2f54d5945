/* listener: bound, listening sockets, one per --listen endpoint. */
#ifndef WHARF_LISTENER_H
#define WHARF_LISTENER_H

#include "../common/addr.h"

struct listener {
    int fd;
    struct endpoint ep; /* the bound address: port 0 is replaced by the real port */
};

struct listen_opts {
    int backlog;
    int reuseport; /* SO_REUSEPORT, for one listener per worker */
    int nodelay;   /* TCP_NODELAY: Linux copies it to every accepted socket */
};

/* Create, bind and listen. Returns 0, or -1 with a one-line reason in err. */
int listener_open(struct listener *l, const struct endpoint *ep, const struct listen_opts *o,
                  char *err, size_t errlen);
void listener_close(struct listener *l);

/* The backlog the kernel will really use (net.core.somaxconn caps it); logs once when
 * the requested one is cut. */
int listener_effective_backlog(int requested);

#endif
