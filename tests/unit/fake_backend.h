/* fake_backend: a backend (server/backend.h) with scripted I/O, to drive server/conn.c
 * in a unit test without an event loop, a kernel socket buffer or a server.
 *
 * The test plays the kernel: it queues what each read returns (bytes, EAGAIN, EOF, an
 * errno) and what each write takes (so many bytes, EAGAIN, an errno), then delivers
 * events (fake_readable, fake_writable, fake_advance for timers). The fake calls conn.c
 * the way the epoll backend does (conn_received, conn_peer_eof, conn_sent, conn_fail,
 * then conn_settle; closed connections are freed after each event) and records every
 * hook conn.c calls. What the client would have received is kept in fw->seen; the
 * connection's socket is one end of a real socketpair, so the client's end (client_fd)
 * sees the close, or the shutdown of a lingering close, as a real peer would.
 *
 * The counters are fw->stats, the worker's own: conn.c is given them through the
 * worker_loop, as a real worker gives it its own; /stats renders a registry of this
 * one worker (fw->registry). One connection at a time.
 *
 *     struct fake_worker fw;
 *     fake_worker_init(&fw);
 *     fake_open(&fw, PROTO_LINE);
 *     fake_read_bytes(&fw, "hel");
 *     fake_read_again(&fw);
 *     fake_readable(&fw);          // "hel" is kept as a partial message
 *     fake_read_bytes(&fw, "lo\n");
 *     fake_write_take(&fw, 1);     // the next write takes one byte, the rest wait
 *     fake_readable(&fw);
 *     ...
 *     fake_worker_fini(&fw);
 */
#ifndef WHARF_TEST_FAKE_BACKEND_H
#define WHARF_TEST_FAKE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../server/backend.h"
#include "../../server/conn.h"
#include "../../server/handler.h"
#include "../../server/http_reply.h"
#include "../../server/stats.h"
#include "../../server/worker_loop.h"

/* The hooks conn.c may call, as recorded in fw->calls and fw->trace; FAKE_RELEASE
 * counts connections freed (conn_free, which calls the conn_release hook). */
enum fake_hook {
    FAKE_ATTACH, FAKE_DETACH, FAKE_SEND, FAKE_READ_ON, FAKE_READ_OFF, FAKE_LINGER,
    FAKE_REVISIT, FAKE_RELEASE, FAKE_HOOKS
};

/* One scripted result of a read or a write. */
enum fake_kind {
    FAKE_BYTES, /* read: these bytes arrive; write: at most len bytes are taken */
    FAKE_AGAIN, /* EAGAIN: nothing now (an empty script says the same) */
    FAKE_EOF,   /* read: the peer's FIN (read returns 0) */
    FAKE_ERROR, /* the call fails with err */
};

struct fake_io {
    enum fake_kind kind;
    const char *data;
    size_t len;
    int err;
};

#define FAKE_SCRIPT_MAX 64

struct fake_worker {
    struct worker_loop loop; /* first: conn.c sees a struct worker * through it */
    struct worker_stats stats;
    struct settings set;
    struct handler_env env;
    struct http_cache http;
    struct buf scratch;      /* loop.reply_scratch unless fake_no_scratch */
    struct config cfg;       /* what /stats shows of the configuration */
    struct stats_registry registry; /* this worker's counters alone, for /stats */

    struct conn *conn;       /* the open connection (NULL once detached) */
    int client_fd;           /* the client's end of the socketpair, non-blocking */
    struct fake_io reads[FAKE_SCRIPT_MAX], writes[FAKE_SCRIPT_MAX];
    int n_reads, next_read, n_writes, next_write;
    size_t write_max;        /* with the write script used up: bytes a write takes (0: all) */
    struct buf seen;         /* every byte the writes took, in order */
    unsigned calls[FAKE_HOOKS];
    char trace[2048];        /* the hooks' names in call order, each followed by a space */
    int attach_fails;        /* the next attach returns -1 */
};

extern const struct backend fake_backend;

/* Set up a fake worker: the default settings (mode echo, no timeouts; change fw->set
 * before fake_open), the fake backend with a reply scratch buffer (as epoll has). */
void fake_worker_init(struct fake_worker *fw);
/* Open a connection serving proto (enum proto) on a socketpair, closing the one open
 * before; fw->conn is NULL when conn_open failed. Timers and the handler follow fw->set. */
void fake_open(struct fake_worker *fw, int proto);
/* Replies go into c->out only (as with io_uring), not through the scratch buffer. */
void fake_no_scratch(struct fake_worker *fw);
/* Close what is open, free everything. */
void fake_worker_fini(struct fake_worker *fw);

/* Script the next reads. */
void fake_read_bytes(struct fake_worker *fw, const char *text);
void fake_read_data(struct fake_worker *fw, const void *data, size_t len);
void fake_read_again(struct fake_worker *fw);
void fake_read_eof(struct fake_worker *fw);
void fake_read_error(struct fake_worker *fw, int err);
/* Script the next writes. */
void fake_write_take(struct fake_worker *fw, size_t n);
void fake_write_again(struct fake_worker *fw);
void fake_write_error(struct fake_worker *fw, int err);

/* Events: the socket is readable (read until the script says EAGAIN, or conn.c stops
 * reading; an EAGAIN that comes next is taken too, as this event's end), writable (send what waits in c->out), or time passes (ms; timers expire).
 * Each ends as a loop turn does: conn_settle, then closed connections are freed. */
void fake_readable(struct fake_worker *fw);
void fake_writable(struct fake_worker *fw);
void fake_advance(struct fake_worker *fw, uint32_t ms);

/* fw->seen as a string (NUL-terminated in place). */
const char *fake_seen(struct fake_worker *fw);
/* What the client's end of the socket shows: 1 when it has read the EOF (the server
 * closed or shut down its side), 0 while the connection is open. */
int fake_client_eof(struct fake_worker *fw);
/* Bytes waiting to be written (c->out and the scratch buffer). */
size_t fake_unsent(const struct fake_worker *fw);

#endif
