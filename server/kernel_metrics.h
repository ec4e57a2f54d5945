/* kernel_metrics: what the kernel knows about this process, for /metrics: the
 * standard process_* metrics, named as Prometheus's own process collector names them
 * (so dashboards made for any exporter work), and the listen queue of each listener.
 *
 * Read at each scrape from /proc/self and getsockopt; a value the kernel will not give
 * is left out of the page rather than failing it. Any thread may call these. */
#ifndef WHARF_KERNEL_METRICS_H
#define WHARF_KERNEL_METRICS_H

#include "../common/buf.h"

struct listener;

/* process_cpu_seconds_total, process_open_fds, process_max_fds,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_start_time_seconds. 0, or -1 when memory ran out. */
int kernel_metrics_process(struct buf *out);

/* wharf_listen_queue_length and wharf_listen_queue_limit per listener (labels
 * listener: its address, proto: its scheme), from TCP_INFO on the listening socket
 * (tcpi_unacked: connections waiting for accept; tcpi_sacked: the backlog). Adjacent copies of one listener (--dispatch
 * reuseport) are summed. The descriptors are read, never changed: one that was closed
 * (draining) or is not a listening TCP socket is skipped. ls may be NULL when n is 0.
 * 0, or -1 when memory ran out. */
int kernel_metrics_listen_queues(struct buf *out, const struct listener *ls, int n);

#endif
