/* proxy_stage: the PROXY protocol header in front of a +proxy listener's connections.
 *
 * A connection accepted on a proxy listener (its proto byte has LISTENER_PROTO_PROXY)
 * is first checked against --proxy-from by its socket address: only a trusted balancer
 * may name another client. Its first bytes are then the header (common/proxy_proto.h);
 * until the header is complete the protocol's handler sees nothing, the header deadline
 * (--header-timeout, not pushed back by further bytes) runs, and the partial header
 * waits in the connection's input buffer. Once it is complete:
 * - the address it names replaces the socket's peer for --max-conns-per-ip (counted
 *   here, on the worker: the acceptor only saw the balancer) and --stats-allow (bits in
 *   the connection's handler state); LOCAL, UNKNOWN, AF_UNSPEC and AF_UNIX keep the
 *   socket's address, and are counted under it;
 * - the bytes after it go to the protocol in the same call, and the connection is an
 *   ordinary one from then on: a kept-alive connection pays for its header once.
 * A connection from outside --proxy-from, with a malformed header, ending inside it or
 * not completing it in time is closed at once, counted by cause (stats.h, proxy_*) and
 * logged, at most once a second per worker, with its socket address.
 *
 * Everything here runs on the connection's worker thread. */
#ifndef WHARF_PROXY_STAGE_H
#define WHARF_PROXY_STAGE_H

#include <stddef.h>

struct worker;
struct conn;

/* Whether the socket fd, accepted on a proxy listener, comes from --proxy-from. When it
 * does not, the refusal is counted and logged (the caller closes the socket). */
int proxy_stage_trusted(struct worker *w, int fd);

/* c was just opened on a proxy listener: run the header deadline. */
void proxy_stage_begin(struct worker *w, struct conn *c);

/* Bytes arrived while c waits for its header (c->proto has LISTENER_PROTO_PROXY). They
 * are *data, *len, or already appended to c->in (then c->in holds everything received
 * so far). Returns 1 when the header is complete: what follows it is now in c->in, or
 * at *data, *len (both updated), for the protocol. 0: c waits for more (all bytes kept
 * in c->in). -1: c was closed (bad header, per-address limit, no memory). */
int proxy_stage_input(struct worker *w, struct conn *c, const char **data, size_t *len);

/* The peer's EOF, or c's deadline, came before the header was complete: count it and
 * log it (the caller closes c). */
void proxy_stage_eof(struct worker *w, struct conn *c);
void proxy_stage_timeout(struct worker *w, struct conn *c);

#endif
