/* stats: counters of every worker and of the acceptor, and their rendering.
 *
 * Each counter has exactly one writer thread, which bumps it with a relaxed load and
 * store (no locked instruction on the hot path); any thread may read it with a relaxed
 * load. Totals are sums read at one moment, so they can be off by what is in flight. */
#ifndef WHARF_STATS_H
#define WHARF_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "../common/buf.h"
#include "config.h" /* MAX_WORKERS */

typedef _Atomic uint64_t counter_t;

struct peer_table;

static inline void counter_add(counter_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Take back n that this same writer added (a count that turned out not to happen). */
static inline void counter_sub(counter_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - n,
                          memory_order_relaxed);
}

static inline uint64_t counter_get(const counter_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* X-macro: name, Prometheus type, help. Written by the worker that owns them, except
 * accepted, which is written by whoever hands connections to the worker. */
#define WORKER_COUNTERS(X)                                                                   \
    X(accepted, "counter", "connections handed to this worker")                              \
    X(closed, "counter", "connections closed")                                               \
    X(messages, "counter", "messages (lines, frames, HTTP requests, raw reads) answered")     \
    X(reads, "counter", "read calls that returned data")                                     \
    X(writes, "counter", "write calls that sent data")                                       \
    X(bytes_in, "counter", "bytes read from clients")                                        \
    X(bytes_out, "counter", "bytes written to clients")                                      \
    X(protocol_errors, "counter", "messages rejected as malformed or too large")            \
    X(idle_timeouts, "counter", "connections closed by --idle-timeout")                      \
    X(header_timeouts, "counter", "HTTP connections closed by --header-timeout")             \
    X(linger_timeouts, "counter", "lingering closes cut because the peer sent no EOF in time") \
    X(resets, "counter", "connections reset or broken by the peer")                         \
    X(truncated, "counter", "connections closed by the peer in the middle of a message")     \
    X(output_paused, "counter", "times reading stopped because output passed --max-output") \
    X(shutdown_cut, "counter", "connections cut when --shutdown-timeout ran out")            \
    X(alloc_failures, "counter", "connections closed because memory ran out")                \
    X(http_2xx, "counter", "HTTP responses with a 2xx status")                               \
    X(http_4xx, "counter", "HTTP responses with a 4xx status")                               \
    X(http_5xx, "counter", "HTTP responses with a 5xx status")                               \
    X(stats_forbidden, "counter", "stats pages refused to non-loopback clients (--stats-allow)") \
    X(loop_waits, "counter", "times the event loop waited (epoll_wait, io_uring_enter)")     \
    X(uring_cq_overflows, "counter", "io_uring turns that found completions past a full ring") \
    X(uring_cq_dropped, "counter", "io_uring completions the kernel dropped")                \
    X(uring_recv_rearms, "counter", "io_uring multishot receives armed again after they ended") \
    X(uring_enobufs, "counter", "io_uring receives that found no provided buffer (ENOBUFS)")  \
    X(uring_sq_full, "counter", "io_uring submissions forced early by a full submission queue") \
    X(uring_sq_stalls, "counter", "io_uring operations put off to the next turn (or done without " \
                                  "the ring) because the submission queue stayed full")     \
    X(proxy_headers, "counter", "valid PROXY headers received on +proxy listeners")          \
    X(proxy_untrusted, "counter", "+proxy connections closed at once: not from --proxy-from")  \
    X(proxy_bad_header, "counter", "+proxy connections closed at once: malformed PROXY header") \
    X(proxy_truncated, "counter", "+proxy connections that ended inside their PROXY header")  \
    X(proxy_timeouts, "counter", "+proxy connections closed: no PROXY header within "         \
                                 "--header-timeout")                                         \
    X(proxy_rejected_per_ip, "counter", "+proxy connections closed because the address "     \
                                        "their header names is at --max-conns-per-ip") \
    X(udp_datagrams_in, "counter", "datagrams received on udp:// listeners")                 \
    X(udp_datagrams_out, "counter", "datagrams sent as replies on udp:// listeners")         \
    X(udp_bytes_in, "counter", "payload bytes of the datagrams received")                    \
    X(udp_bytes_out, "counter", "payload bytes of the replies sent")                         \
    X(udp_recv_calls, "counter", "receive calls (recvmmsg, recvmsg) that returned datagrams") \
    X(udp_send_calls, "counter", "send calls (sendmmsg, sendmsg) that sent replies")         \
    X(udp_drop_oversize, "counter", "datagrams dropped unanswered: larger than --max-message") \
    X(udp_drop_truncated, "counter", "datagrams dropped unanswered: cut by the kernel (MSG_TRUNC)") \
    X(udp_drop_sndbuf, "counter", "replies dropped because the socket's send buffer was full") \
    X(udp_send_errors, "counter", "replies dropped because sending them failed")             \
    X(udp_icmp_errors, "counter", "ICMP errors read from the udp sockets' error queues")     \
    X(udp_rxq_overflow, "counter", "datagrams the kernel dropped: the socket's receive "       \
                                   "queue was full (SO_RXQ_OVFL)")

#define ACCEPTOR_COUNTERS(X)                                                                 \
    X(accepted, "counter", "connections accepted")                                           \
    X(rejected_max_conns, "counter", "connections closed at once because of --max-conns")    \
    X(rejected_no_fd, "counter", "connections shed because the process ran out of files")    \
    X(rejected_per_ip, "counter", "connections closed at once because of --max-conns-per-ip") \
    X(accept_errors, "counter", "accept calls that failed for other reasons")

#define DECLARE_COUNTER(name, type, help) counter_t name;

struct worker_stats {
    WORKER_COUNTERS(DECLARE_COUNTER)
} __attribute__((aligned(64)));

struct acceptor_stats {
    ACCEPTOR_COUNTERS(DECLARE_COUNTER)
} __attribute__((aligned(64)));

/* Everything /stats, /metrics, the periodic log line and --max-conns read: a value
 * main fills before any thread starts and never changes afterwards (so it needs no
 * lock), handed by pointer to whoever reads it (the handler's environment, each
 * accept_ctx); a test builds its own. The counters themselves are written only by the
 * module that counts, through its own struct worker_stats or acceptor_stats. */
struct stats_registry {
    const struct config *cfg;
    struct worker_stats *workers[MAX_WORKERS];
    int n_workers;
    struct acceptor_stats *acceptors[MAX_WORKERS]; /* one, or one per worker with reuseport */
    int n_acceptors;
    uint64_t start_ms;
    uint64_t capacity; /* connections the file limit allows */
    const char *backend;
    struct peer_table *peers; /* --max-conns-per-ip's table, for the top-addresses view; NULL */
};

struct stats_totals {
    uint64_t accepted, closed, active, messages, bytes_in, bytes_out, protocol_errors,
        timeouts, resets, rejected;
};

/* Sums over reg's workers and acceptors, read now. */
void stats_totals(const struct stats_registry *reg, struct stats_totals *t);
/* Connections open now, over every worker of reg (accepted - closed). */
uint64_t stats_active_connections(const struct stats_registry *reg);

/* Append the /stats JSON document or the /metrics Prometheus text. 0 or -1 (no memory). */
struct settings;
/* reg: the counters; set: the reloadable settings as the rendering worker sees them. */
int stats_render_json(struct buf *out, const struct stats_registry *reg,
                      const struct settings *set);
int stats_render_prometheus(struct buf *out, const struct stats_registry *reg,
                            const struct settings *set);

/* One line for --stats-interval and for the exit summary. */
void stats_log_line(const struct stats_registry *reg, const char *prefix);

#endif
