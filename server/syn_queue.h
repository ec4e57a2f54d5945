/* syn_queue: whether the kernel holds connections for a listener that accept cannot see
 * yet: handshakes under way, and clients that completed theirs but are held back by
 * TCP_DEFER_ACCEPT until they send (both are request sockets, state SYN_RECV).
 *
 * The drain asks it once (drain_state.h): only when some are held do the listeners stay
 * open through the grace; otherwise they close at once and an idle server stops at once.
 * Asked through sock_diag (netlink; no privilege needed), in the caller's thread. */
#ifndef WHARF_SYN_QUEUE_H
#define WHARF_SYN_QUEUE_H

#include "listener.h"

/* 1 when the kernel holds a connection on the local port of one of ls[0..n), or when
 * that cannot be known (the query failed: the caller keeps the listeners, the safe
 * side); 0 when it holds none. */
int syn_queue_holds(const struct listener *ls, int n);

#endif
