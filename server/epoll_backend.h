/* epoll_backend: the worker loop on edge-triggered epoll (always built).
 *
 * Each connection is registered once for EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET; "want
 * to write" is a non-empty out buffer, so no epoll_ctl is ever needed per reply.
 * Reads go into the loop's 64 KiB scratch (or straight into a partial message's own
 * buffer), replies into the loop's scratch output, written with one write before
 * the event ends; what the socket does not take waits in the connection's out buffer
 * for EPOLLOUT. Both scratch buffers live in struct ep_loop (w->loop.io_state); a
 * connection's one flag of its own (the peer's FIN seen) in c->io_flags. The backend
 * itself is `epoll_backend` (backend.h). */
#ifndef WHARF_EPOLL_BACKEND_H
#define WHARF_EPOLL_BACKEND_H

#include "backend.h"

#endif
