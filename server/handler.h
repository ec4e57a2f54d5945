/* handler: what each message gets. Bytes in, bytes out: no epoll, and no socket call
 * but one (the peer's address, when a stats page is asked for and --stats-allow says
 * loopback).
 *
 * handler_process cuts every complete message at the front of the input with the
 * connection's codec, appends every reply to one output buffer (so a pipelined batch
 * leaves in one write) and says how much input it used and what should happen next. */
#ifndef WHARF_HANDLER_H
#define WHARF_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/codec.h"
#include "../common/mode.h"
#include "config.h"
#include "http_reply.h"
#include "stats.h"

struct handler_env {
    const struct settings *settings; /* the worker's own copy (for /stats) */
    enum mode mode;
    size_t max_message;
    int draining;                /* answer, then close (HTTP says "Connection: close"), and
                                  * GET /healthz says 503: from the first SIGTERM on */
    int test_hooks;              /* serve GET /__test/stall?ms=N (blocks this worker) */
    const struct http_cache *http;
    struct worker_stats *stats;  /* the calling worker's own counters */
    const struct stats_registry *registry; /* everyone's, for /stats and /metrics */
};

enum handler_verdict {
    HANDLER_CONTINUE, /* keep the connection */
    HANDLER_CLOSE,    /* the replies are final: close once they are sent */
    HANDLER_ERROR,    /* protocol error (counted): close once the error reply is sent */
    HANDLER_NOMEM,    /* out of memory: close now */
};

#define HANDLER_CONTINUE_SENT 0x1u /* io->state: "100 Continue" already sent for this request */
/* io->state: the client's address is the one a PROXY header named (not the socket's
 * peer, a balancer), and whether it is loopback: what --stats-allow asks. */
#define HANDLER_PEER_CARRIED 0x2u
#define HANDLER_PEER_LOOPBACK 0x4u
/* io->state: the carried address is in --stats-allow's ranges, as they were when the
 * header came (a reload applies to headers that come after it). */
#define HANDLER_PEER_STATS_RANGES 0x8u

struct handler_io {
    enum proto proto;
    struct codec_state *cs;  /* the connection's resume hints */
    struct buf *out;         /* replies are appended here */
    unsigned state;          /* HANDLER_* bits, kept by the connection */
    int fd;                  /* the connection's socket: only for --stats-allow */
    int metrics_only;        /* a metrics:// listener's: only the stats routes */
    /* results */
    size_t consumed;         /* input bytes fully handled */
    uint32_t messages;
    size_t need;             /* total size of the partial message at the front, if known */
    int partial;             /* a message has begun but is incomplete */
    enum handler_verdict verdict;
};

void handler_process(const struct handler_env *env, struct handler_io *io, const char *data,
                     size_t len);

#endif
