/* accept_ctx: the accept loop with its limits (--max-conns, --max-conns-per-ip, running
 * out of file descriptors) and counters: the only code that calls accept.
 *
 * The acceptor thread (acceptor.h) runs one over every listener and deals connections
 * to workers through their handoff queues; with --dispatch reuseport (or a single
 * worker) each worker runs its own over its own listeners instead. An accept_ctx
 * belongs to the thread that runs it; max_conns is the one field another thread (the
 * main thread, on reload) writes. */
#ifndef WHARF_ACCEPT_CTX_H
#define WHARF_ACCEPT_CTX_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "listener.h"
#include "peer.h"
#include "stats.h"

struct accept_ctx {
    struct acceptor_stats stats;
    struct listener listeners[MAX_LISTENERS];
    int n_listeners;
    _Atomic uint64_t max_conns; /* changed by the main thread on reload */
    int reserve_fd;           /* /dev/null, given up to shed a connection on EMFILE */
    uint64_t paused_until_ms; /* accepting paused (out of memory or files): retry then */
    uint32_t pending;         /* bit i: listener i stopped at ACCEPT_BATCH with more queued */
    struct peer_table *peers; /* --max-conns-per-ip (shared, see peer.h); NULL: off */
    const struct stats_registry *registry; /* live connections, for --max-conns; NULL: none */
    uint64_t last_shed_log_ms;
    uint64_t shed_since_log;
};

/* deliver: takes ownership of an accepted, non-blocking socket, counted in the peer
 * table as peer (PEER_NONE when not counted); proto is listener_conn_proto's byte. */
typedef void (*accept_deliver_fn)(void *arg, int fd, uint8_t proto, uint32_t peer);

void accept_ctx_init(struct accept_ctx *a, uint64_t max_conns);
void accept_ctx_close(struct accept_ctx *a);

/* Accept on l until the kernel's queue is empty, accepting must pause, or ACCEPT_BATCH
 * connections were taken (then l's bit in a->pending is set: the listener is
 * edge-triggered, so the caller must come back with accept_pending after serving
 * others). Returns 1 if it stopped early because accepting is paused, else 0. */
int accept_drain(struct accept_ctx *a, const struct listener *l, accept_deliver_fn deliver,
                 void *arg);
/* --max-conns and --max-conns-per-ip for a socket just accepted on l: 1 when it may be
 * served (*peer says where it was counted), 0 when it was closed and counted. A proxy
 * listener's sockets are not counted per address here: the balancer's address is not
 * the client's; the worker counts the address its header names (proxy_stage.h). */
int accept_admit(struct accept_ctx *a, const struct listener *l, int fd, uint64_t *live,
                 uint32_t *peer);
/* What a failed accept (err, not EAGAIN) means for the accept loop. Counts and logs
 * it, and pauses accepting (accept_pause_left_ms) where retrying at once would spin. */
enum accept_fail {
    ACCEPT_FAIL_RETRY,    /* that connection is gone (aborted, refused): go on */
    ACCEPT_FAIL_NO_FILES, /* EMFILE/ENFILE: shed through the reserve descriptor */
    ACCEPT_FAIL_PAUSED,   /* out of memory, or an unexpected error: paused */
};
enum accept_fail accept_failed(struct accept_ctx *a, int err);
/* One more batch from every listener that stopped at ACCEPT_BATCH. */
void accept_pending(struct accept_ctx *a, accept_deliver_fn deliver, void *arg);

/* Before the listeners close: accept what is queued (up to a bound, as a flood may keep
 * them full), so those clients are served or closed, not reset by the close. */
void accept_sweep(struct accept_ctx *a, accept_deliver_fn deliver, void *arg);

/* Connections open now in the whole server, as --max-conns counts them (0 without a
 * registry). */
uint64_t accept_live_connections(const struct accept_ctx *a);

/* Milliseconds until a pause ends (0 when not paused). */
int accept_pause_left_ms(const struct accept_ctx *a);

#endif
