/* metrics: the /metrics page, in Prometheus's text exposition format (0.0.4), named by
 * Prometheus's conventions: one metric per quantity, told apart by labels (worker,
 * code, kind, reason; listener and proto for what is per listener), base units in the
 * name (_bytes, _seconds), _total on every counter. The values are /stats's (stats.h)
 * plus what the kernel knows (kernel_metrics.h). README.md lists every metric. */
#ifndef WHARF_METRICS_H
#define WHARF_METRICS_H

#include "../common/buf.h"
#include "stats.h"

/* Append the whole page. reg: the counters, and the listeners and handoff queues when
 * it has them; set: the reloadable settings as the rendering worker sees them.
 * Returns 0, or -1 when memory ran out. */
int metrics_render(struct buf *out, const struct stats_registry *reg,
                   const struct settings *set);

#endif
