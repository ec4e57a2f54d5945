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
#include <stdint.h>

#include "../common/buf.h"

struct worker;

/* Whether the socket fd, accepted on a proxy listener, comes from --proxy-from. When it
 * does not, the refusal is counted and logged (the caller closes the socket). */
int proxy_stage_trusted(struct worker *w, int fd);

/* The parts of a connection (conn.h) the header stage reads and updates: conn.c owns
 * the connection and its fate, this module only says what the header means. */
struct proxy_stage_conn {
    int fd;
    struct buf *in;          /* everything received so far while the header is partial */
    uint32_t *peer;          /* its --max-conns-per-ip entry: set once the header is known */
    uint8_t *handler_state;  /* gets HANDLER_PEER_CARRIED and HANDLER_PEER_LOOPBACK */
};

enum proxy_stage_result {
    PROXY_STAGE_WAIT,    /* a valid beginning: every byte is kept in pc->in */
    PROXY_STAGE_DONE,    /* complete: what follows it is in pc->in or at *data, *len */
    PROXY_STAGE_REFUSED, /* bad header, or its address is at its limit: counted, close now */
    PROXY_STAGE_NOMEM,   /* close now, as out of memory */
};

/* Bytes arrived while a connection waits for its header. They are *data, *len, or
 * already appended to pc->in (then pc->in holds everything received so far). On DONE,
 * the header's bytes are gone from pc->in, or *data and *len moved past them. */
enum proxy_stage_result proxy_stage_input(struct worker *w, const struct proxy_stage_conn *pc,
                                          const char **data, size_t *len);

/* The peer's EOF came with in holding part of a header: count and log it, and empty in
 * (so that it is not counted again as a truncated message). Nothing at all received is
 * not an error: a balancer's plain TCP check connects and leaves. */
void proxy_stage_eof(struct worker *w, int fd, struct buf *in);

/* The connection's deadline came before its header was complete: count and log it. */
void proxy_stage_timeout(struct worker *w, int fd);

#endif
