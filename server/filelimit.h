/* filelimit: what the file limit (RLIMIT_NOFILE) leaves room for. Every descriptor
 * that is not a connection (epoll and eventfds per thread, listeners, stdio, the EMFILE
 * reserves, some slack) is set aside first; --max-conns follows from the rest.
 * Main thread only: at start-up, and filelimit_resolve_max_conns on reload. */
#ifndef WHARF_FILELIMIT_H
#define WHARF_FILELIMIT_H

#include <stdint.h>

#include "config.h"

/* Raise the soft file limit to the hard one; returns the connections it leaves room
 * for (logged). */
uint64_t filelimit_raise(const struct config *cfg);
/* --max-conns auto means the capacity; more than the capacity is clamped (logged). */
void filelimit_resolve_max_conns(struct settings *set, uint64_t capacity);
/* Size the descriptor table for --max-conns and the rest, before any thread starts
 * (see common/fdtable.h). */
void filelimit_size_table(const struct config *cfg);

/* Descriptors open now (from /proc/self/fd) and the soft file limit, for /stats. Any
 * thread; one stat since Linux 6.2, a read of a directory as long as the descriptor
 * table before, so it is for pages asked for now and then, never for a connection's
 * path. 0, or -1 (errno) if either cannot be read. */
int filelimit_usage(uint64_t *open_fds, uint64_t *limit);

#endif
