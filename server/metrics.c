#include "metrics.h"

#include <inttypes.h>
#include <string.h>

#include "../common/version.h"
#include "drain_state.h"
#include "handoff.h"
#include "kernel_metrics.h"
#include "settings.h"
#include "stats_peers.h"

/* HELP and TYPE once per metric: the rows of one metric are adjacent in the X-macro
 * lists (stats.h), and last remembers which metric was described. */
static int family(struct buf *out, const char **last, const char *name, const char *type,
                  const char *help)
{
    if (*last && strcmp(*last, name) == 0)
        return 0;
    *last = name;
    return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

#define PROM_WORKER(name, metric, labels, help)                                               \
    rc |= family(out, &last, "wharf_" metric, "counter", help);                               \
    for (int i = 0; i < reg->n_workers; i++)                                                  \
        rc |= buf_printf(out, "wharf_" metric "{worker=\"%d\"%s" labels "} %" PRIu64 "\n", i, \
                         labels[0] ? "," : "", counter_get(&reg->workers[i]->name));

#define PROM_ACCEPTOR(name, metric, labels, help)                                             \
    rc |= family(out, &last, "wharf_" metric, "counter", help);                               \
    rc |= buf_printf(out, "wharf_" metric "%s" labels "%s %" PRIu64 "\n",                     \
                     labels[0] ? "{" : "", labels[0] ? "}" : "",                              \
                     stats_acceptor_sum(reg, offsetof(struct acceptor_stats, name)));

static int render_counters(struct buf *out, const struct stats_registry *reg)
{
    int rc = 0;
    const char *last = NULL;
    WORKER_COUNTERS(PROM_WORKER)
    ACCEPTOR_COUNTERS(PROM_ACCEPTOR)
    return rc;
}

/* Per worker: its open connections and the connections queued for it, not yet taken
 * (a queue that stays long with a loop that stopped counting waits is a stuck worker). */
static int render_worker_gauges(struct buf *out, const struct stats_registry *reg)
{
    int rc = buf_printf(out, "# HELP wharf_connections_active connections open now\n"
                             "# TYPE wharf_connections_active gauge\n");
    for (int i = 0; i < reg->n_workers; i++) {
        const struct worker_stats *s = reg->workers[i];
        uint64_t closed = counter_get(&s->closed); /* first: active never looks negative */
        rc |= buf_printf(out, "wharf_connections_active{worker=\"%d\"} %" PRIu64 "\n", i,
                         counter_get(&s->accepted) - closed);
    }
    if (!reg->handoffs[0])
        return rc;
    rc |= buf_printf(out, "# HELP wharf_handoff_queue_length connections accepted for this "
                          "worker and not taken by it yet\n"
                          "# TYPE wharf_handoff_queue_length gauge\n");
    for (int i = 0; i < reg->n_workers; i++)
        rc |= buf_printf(out, "wharf_handoff_queue_length{worker=\"%d\"} %zu\n", i,
                         handoff_depth(reg->handoffs[i]));
    return rc;
}

/* The stop sequence (drain_state.h): one series per phase, 1 for the current one. */
static int render_drain(struct buf *out, const struct settings *set)
{
    enum drain_phase now = drain_state_get();
    int rc = buf_printf(out, "# HELP wharf_drain_state the stop sequence's phase: serving, delay "
                             "(--drain-delay: /healthz says 503), draining\n"
                             "# TYPE wharf_drain_state gauge\n");
    for (int p = DRAIN_SERVING; p <= DRAIN_DRAINING; p++)
        rc |= buf_printf(out, "wharf_drain_state{state=\"%s\"} %d\n",
                         drain_phase_name((enum drain_phase)p), p == (int)now);
    return rc | buf_printf(out, "# HELP wharf_drain_delay_seconds --drain-delay\n"
                                "# TYPE wharf_drain_delay_seconds gauge\n"
                                "wharf_drain_delay_seconds %.3f\n",
                           (double)set->drain_delay_ms / 1000.0);
}

static int render_info(struct buf *out, const struct stats_registry *reg)
{
    return buf_printf(out,
                      "# HELP wharf_build_info the version and the event loops built in; "
                      "always 1\n# TYPE wharf_build_info gauge\n"
                      "wharf_build_info{version=\"%s\",backends=\"%s\"} 1\n"
                      "# HELP wharf_connections_capacity connections the file limit allows\n"
                      "# TYPE wharf_connections_capacity gauge\n"
                      "wharf_connections_capacity %" PRIu64 "\n",
                      WHARF_VERSION, WHARF_BACKENDS, reg->capacity);
}

int metrics_render(struct buf *out, const struct stats_registry *reg,
                   const struct settings *set)
{
    int rc = render_info(out, reg);
    rc |= render_worker_gauges(out, reg);
    rc |= render_counters(out, reg);
    rc |= stats_peers_prometheus(out, reg->peers);
    rc |= kernel_metrics_listen_queues(out, reg->listeners, reg->n_listeners);
    rc |= render_drain(out, set);
    rc |= kernel_metrics_process(out);
    return rc ? -1 : 0;
}
