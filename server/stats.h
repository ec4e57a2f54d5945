/* stats: counters of every worker and of the acceptor, and their rendering.
 *
 * Each counter has exactly one writer thread, which bumps it with a relaxed load and
 * store (no locked instruction on the hot path); any thread may read it with a relaxed
 * load. Totals are sums read at one moment, so they can be off by what is in flight. */
#ifndef WHARF_STATS_H
#define WHARF_STATS_H

#include <stdatomic.h>
#include <stddef.h>
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

/* X-macro: name (the field, and its key in /stats), its /metrics name after "wharf_",
 * the labels that tell it apart from the others of that metric ("" when none), help.
 * Rows of one metric are adjacent; the first row's help describes the whole metric.
 * Written by the worker that owns them, except accepted, which is written by whoever
 * hands connections to the worker. On /metrics every row also has a worker label. */
#define WORKER_COUNTERS(X)                                                                   \
    X(accepted, "connections_opened_total", "", "connections handed to this worker")         \
    X(closed, "connections_closed_total", "", "connections closed")                          \
    X(messages, "messages_total", "",                                                        \
      "messages (lines, frames, HTTP requests, raw reads) answered")                         \
    X(reads, "read_calls_total", "", "read calls that returned data")                       \
    X(writes, "write_calls_total", "", "write calls that sent data")                        \
    X(bytes_in, "received_bytes_total", "", "bytes read from clients")                      \
    X(bytes_out, "sent_bytes_total", "", "bytes written to clients")                        \
    X(protocol_errors, "protocol_errors_total", "", "messages rejected as malformed or too large") \
    X(idle_timeouts, "timeouts_total", "kind=\"idle\"",                                      \
      "connections closed by a timeout: idle (--idle-timeout), header (--header-timeout), "  \
      "linger (a lingering close whose peer sent no EOF in time)")                           \
    X(header_timeouts, "timeouts_total", "kind=\"header\"", "")                              \
    X(linger_timeouts, "timeouts_total", "kind=\"linger\"", "")                              \
    X(resets, "connection_resets_total", "", "connections reset or broken by the peer")     \
    X(truncated, "connections_truncated_total", "",                                          \
      "connections closed by the peer in the middle of a message")                           \
    X(output_paused, "output_pauses_total", "",                                              \
      "times reading stopped because output passed --max-output")                            \
    X(shutdown_cut, "connections_cut_total", "",                                             \
      "connections cut when --shutdown-timeout ran out")                                     \
    X(alloc_failures, "alloc_failures_total", "",                                            \
      "connections closed because memory ran out")                                           \
    X(http_2xx, "http_responses_total", "code=\"2xx\"",                                      \
      "HTTP responses by status class (1xx and 3xx are never sent)")                         \
    X(http_4xx, "http_responses_total", "code=\"4xx\"", "")                                  \
    X(http_5xx, "http_responses_total", "code=\"5xx\"", "")                                  \
    X(stats_forbidden, "stats_forbidden_total", "",                                          \
      "stats pages refused to clients --stats-allow does not name")                          \
    X(loop_waits, "loop_waits_total", "",                                                    \
      "times the event loop waited (epoll_wait, io_uring_enter)")                            \
    X(uring_cq_overflows, "uring_cq_overflows_total", "",                                    \
      "io_uring turns that found completions past a full ring")                              \
    X(uring_cq_dropped, "uring_cq_dropped_total", "",                                        \
      "io_uring completions the kernel dropped")                                             \
    X(uring_recv_rearms, "uring_recv_rearms_total", "",                                      \
      "io_uring multishot receives armed again after they ended")                            \
    X(uring_enobufs, "uring_enobufs_total", "",                                              \
      "io_uring receives that found no provided buffer (ENOBUFS)")                           \
    X(uring_sq_full, "uring_sq_full_total", "",                                              \
      "io_uring submissions forced early by a full submission queue")                        \
    X(uring_sq_stalls, "uring_sq_stalls_total", "",                                          \
      "io_uring operations put off to the next turn (or done without the ring) because "     \
      "the submission queue stayed full")                                                    \
    X(proxy_headers, "proxy_headers_total", "",                                              \
      "valid PROXY headers received on +proxy listeners")                                    \
    X(proxy_untrusted, "proxy_refused_total", "reason=\"untrusted\"",                        \
      "+proxy connections closed before their protocol ran: untrusted (not from "            \
      "--proxy-from), bad_header (malformed), truncated (ended inside the header), timeout " \
      "(no header within --header-timeout), per_ip (the address the header names is at "     \
      "--max-conns-per-ip)")                                                                 \
    X(proxy_bad_header, "proxy_refused_total", "reason=\"bad_header\"", "")                  \
    X(proxy_truncated, "proxy_refused_total", "reason=\"truncated\"", "")                    \
    X(proxy_timeouts, "proxy_refused_total", "reason=\"timeout\"", "")                       \
    X(proxy_rejected_per_ip, "proxy_refused_total", "reason=\"per_ip\"", "") \
    X(udp_datagrams_in, "udp_received_datagrams_total", "",                                  \
      "datagrams received on udp:// listeners")                                              \
    X(udp_datagrams_out, "udp_sent_datagrams_total", "",                                     \
      "datagrams sent as replies on udp:// listeners")                                       \
    X(udp_bytes_in, "udp_received_bytes_total", "", "payload bytes of the datagrams received") \
    X(udp_bytes_out, "udp_sent_bytes_total", "", "payload bytes of the replies sent")        \
    X(udp_recv_calls, "udp_receive_calls_total", "",                                         \
      "receive calls (recvmmsg, recvmsg) that returned datagrams")                           \
    X(udp_send_calls, "udp_send_calls_total", "",                                            \
      "send calls (sendmmsg, sendmsg) that sent replies")                                    \
    X(udp_drop_oversize, "udp_dropped_total", "reason=\"oversize\"",                         \
      "datagrams or replies dropped: oversize (larger than --max-message), truncated (cut "  \
      "by the kernel, MSG_TRUNC), sndbuf (the reply found the send buffer full), "           \
      "send_error (sending the reply failed), rxq_overflow (the kernel dropped it: the "     \
      "socket's receive queue was full, SO_RXQ_OVFL)")                                       \
    X(udp_drop_truncated, "udp_dropped_total", "reason=\"truncated\"", "")                   \
    X(udp_drop_sndbuf, "udp_dropped_total", "reason=\"sndbuf\"", "")                         \
    X(udp_send_errors, "udp_dropped_total", "reason=\"send_error\"", "")                     \
    X(udp_rxq_overflow, "udp_dropped_total", "reason=\"rxq_overflow\"", "")                 \
    X(udp_icmp_errors, "udp_icmp_errors_total", "",                                          \
      "ICMP errors read from the udp sockets' error queues")                                 \
    X(udp_ring_arms, "udp_ring_receives_armed_total", "",                                    \
      "io_uring multishot recvmsg armed on udp:// sockets (at start, and again each time "   \
      "one ended)")                                                                          \
    X(udp_ring_nobufs, "udp_ring_nobufs_total", "",                                          \
      "io_uring udp receives that found the udp buffer ring empty (ENOBUFS): the datagrams " \
      "wait in the socket until replies give buffers back")

/* The same columns; on /metrics summed over the acceptors (one, or one per worker). */
#define ACCEPTOR_COUNTERS(X)                                                                 \
    X(accepted, "connections_accepted_total", "", "connections accepted")                   \
    X(rejected_max_conns, "connections_rejected_total", "reason=\"max_conns\"",              \
      "connections closed at once: max_conns (--max-conns), no_fd (the process ran out of " \
      "files), per_ip (--max-conns-per-ip)")                                                 \
    X(rejected_no_fd, "connections_rejected_total", "reason=\"no_fd\"", "")                  \
    X(rejected_per_ip, "connections_rejected_total", "reason=\"per_ip\"", "")                \
    X(accept_errors, "accept_errors_total", "", "accept calls that failed for other reasons")

#define DECLARE_COUNTER(name, metric, labels, help) counter_t name;

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
    /* /metrics only; both may be absent (0 and NULLs), as in a unit test */
    const struct listener *listeners; /* the listen queues (TCP_INFO) */
    int n_listeners;
    struct handoff *handoffs[MAX_WORKERS]; /* each worker's queue, by worker id */
    struct peer_table *peers; /* --max-conns-per-ip's table, for the top-addresses view; NULL */
};

struct listener;
struct handoff;

struct stats_totals {
    uint64_t accepted, closed, active, messages, bytes_in, bytes_out, protocol_errors,
        timeouts, resets, rejected;
};

/* Sums over reg's workers and acceptors, read now. */
void stats_totals(const struct stats_registry *reg, struct stats_totals *t);
/* Connections open now, over every worker of reg (accepted - closed). */
uint64_t stats_active_connections(const struct stats_registry *reg);

/* The sum over reg's acceptors of the counter at offset in struct acceptor_stats. */
uint64_t stats_acceptor_sum(const struct stats_registry *reg, size_t offset);

/* Append the /stats JSON document (/metrics is metrics.h's). 0 or -1 (no memory).
 * reg: the counters; set: the reloadable settings as the rendering worker sees them. */
struct settings;
int stats_render_json(struct buf *out, const struct stats_registry *reg,
                      const struct settings *set);

/* One line for --stats-interval and for the exit summary. */
void stats_log_line(const struct stats_registry *reg, const char *prefix);

#endif
