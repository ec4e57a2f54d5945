#include "stats.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "../common/version.h"
#include "config.h"
#include "drain_state.h"
#include "filelimit.h"
#include "stats_peers.h"

static uint64_t acceptor_sum(const struct stats_registry *registry, size_t offset)
{
    uint64_t sum = 0;
    for (int i = 0; i < registry->n_acceptors; i++)
        sum += counter_get((const counter_t *)((const char *)registry->acceptors[i] + offset));
    return sum;
}

#define ACCEPTOR_SUM(field) acceptor_sum(registry, offsetof(struct acceptor_stats, field))

void stats_totals(const struct stats_registry *registry, struct stats_totals *t)
{
    *t = (struct stats_totals){0};
    for (int i = 0; i < registry->n_workers; i++) {
        const struct worker_stats *w = registry->workers[i];
        /* Read closed before accepted so active can never look negative. */
        uint64_t closed = counter_get(&w->closed);
        uint64_t accepted = counter_get(&w->accepted);
        t->closed += closed;
        t->accepted += accepted;
        t->active += accepted - closed;
        t->messages += counter_get(&w->messages);
        t->bytes_in += counter_get(&w->bytes_in);
        t->bytes_out += counter_get(&w->bytes_out);
        t->protocol_errors += counter_get(&w->protocol_errors);
        t->timeouts += counter_get(&w->idle_timeouts) + counter_get(&w->header_timeouts) +
                       counter_get(&w->linger_timeouts);
        t->resets += counter_get(&w->resets);
    }
    t->rejected = ACCEPTOR_SUM(rejected_max_conns) + ACCEPTOR_SUM(rejected_no_fd);
}

uint64_t stats_active_connections(const struct stats_registry *registry)
{
    uint64_t active = 0;
    for (int i = 0; i < registry->n_workers; i++) {
        uint64_t closed = counter_get(&registry->workers[i]->closed);
        active += counter_get(&registry->workers[i]->accepted) - closed;
    }
    return active;
}

static int render_config_json(struct buf *out, const struct stats_registry *registry,
                              const struct settings *set)
{
    const struct config *c = registry->cfg;
    const struct sockopts *so = &c->sock;
    int rc = buf_printf(out,
                        "\"config\":{\"workers\":%d,\"dispatch\":\"%s\",\"mode\":\"%s\","
                        "\"max_message\":%" PRIu64 ",\"max_output\":%" PRIu64
                        ",\"max_conns\":%" PRIu64 ",\"max_conns_per_ip\":%" PRIu32
                        ",\"stats_allow\":\"%s\",\"idle_timeout_ms\":%" PRIu64
                        ",\"header_timeout_ms\":%" PRIu64 ",\"shutdown_timeout_ms\":%" PRIu64
                        ",\"backlog\":%d,\"cpu_affinity\":%s,\"nodelay\":%s,\"defer_accept_s\":%d"
                        ",\"fastopen\":%d,\"rcvbuf\":%d,\"sndbuf\":%d,\"busy_poll_us\":%d"
                        ",\"listen\":[",
                        c->workers, dispatch_name(c->dispatch), mode_name(set->mode),
                        set->max_message, set->max_output, set->max_conns, c->max_conns_per_ip,
                        set->stats_allow_all ? "all" : "loopback", set->idle_timeout_ms,
                        set->header_timeout_ms, set->shutdown_timeout_ms, c->backlog,
                        c->cpu_affinity ? "true" : "false", so->nodelay ? "true" : "false",
                        so->defer_accept_s, so->fastopen_qlen, so->rcvbuf, so->sndbuf,
                        so->busy_poll_us);
    for (int i = 0; i < c->n_listen && rc == 0; i++) {
        char text[LISTEN_SPEC_TEXT_MAX];
        listen_spec_format(&c->listen[i], text, sizeof text);
        rc = buf_printf(out, "%s\"%s\"", i ? "," : "", text);
    }
    return rc ? rc : buf_printf(out, "]}");
}

#define JSON_FIELD(name, type, help)                                                          \
    rc |= buf_printf(out, "%s\"" #name "\":%" PRIu64, first ? "" : ",", counter_get(&s->name)); \
    first = 0;

static int render_worker_json(struct buf *out, const struct worker_stats *s, int id)
{
    int rc = 0, first = 0;
    uint64_t closed = counter_get(&s->closed);
    rc |= buf_printf(out, "{\"id\":%d,\"active\":%" PRIu64, id, counter_get(&s->accepted) - closed);
    WORKER_COUNTERS(JSON_FIELD)
    return rc | buf_printf(out, "}");
}

#define JSON_TOTAL(name, type, help)                                                          \
    do {                                                                                      \
        uint64_t sum = 0;                                                                     \
        for (int i = 0; i < registry->n_workers; i++)                                         \
            sum += counter_get(&registry->workers[i]->name);                                  \
        rc |= buf_printf(out, ",\"" #name "\":%" PRIu64, sum);                                \
    } while (0);

#define JSON_ACCEPTOR(name, type, help)                                                       \
    rc |= buf_printf(out, "%s\"" #name "\":%" PRIu64, first ? "" : ",", ACCEPTOR_SUM(name));   \
    first = 0;

/* Added last, so a reader of the fields before them sees no change: the descriptors
 * against the file limit, and each acceptor's own counters (one per worker with
 * --dispatch reuseport: what that worker's listener shed). */
static int render_files_and_acceptors_json(struct buf *out,
                                           const struct stats_registry *registry)
{
    uint64_t open_fds, limit;
    int rc = 0, first;
    if (filelimit_usage(&open_fds, &limit) == 0)
        rc |= buf_printf(out, ",\"files\":{\"open\":%" PRIu64 ",\"limit\":%" PRIu64 "}",
                         open_fds, limit);
    rc |= buf_printf(out, ",\"acceptors\":[");
    for (int i = 0; i < registry->n_acceptors; i++) {
        const struct acceptor_stats *s = registry->acceptors[i];
        rc |= buf_printf(out, "%s{", i ? "," : "");
        first = 1;
        ACCEPTOR_COUNTERS(JSON_FIELD)
        rc |= buf_printf(out, "}");
    }
    return rc | buf_printf(out, "]");
}

int stats_render_json(struct buf *out, const struct stats_registry *registry,
                      const struct settings *set)
{
    int rc = 0, first = 1;
    uint64_t now = clock_ms();
    rc |= buf_printf(out,
                     "{\"server\":\"wharfd\",\"version\":\"%s\",\"backend\":\"%s\","
                     "\"uptime_ms\":%" PRIu64 ",\"capacity\":%" PRIu64 ",",
                     WHARF_VERSION, registry->backend, now - registry->start_ms,
                     registry->capacity);
    rc |= render_config_json(out, registry, set);
    rc |= buf_printf(out, ",\"drain\":{\"state\":\"%s\",\"delay_ms\":%" PRIu64 "}",
                     drain_phase_name(drain_state_get()), set->drain_delay_ms);
    rc |= buf_printf(out, ",\"totals\":{\"active\":%" PRIu64, stats_active_connections(registry));
    WORKER_COUNTERS(JSON_TOTAL)
    rc |= buf_printf(out, "},\"acceptor\":{");
    ACCEPTOR_COUNTERS(JSON_ACCEPTOR)
    rc |= buf_printf(out, "},\"workers\":[");
    for (int i = 0; i < registry->n_workers; i++) {
        rc |= buf_printf(out, "%s", i ? "," : "");
        rc |= render_worker_json(out, registry->workers[i], i);
    }
    rc |= buf_printf(out, "]");
    rc |= render_files_and_acceptors_json(out, registry);
    rc |= stats_peers_json(out, registry->peers);
    rc |= buf_printf(out, "}\n");
    return rc ? -1 : 0;
}

#define PROM_WORKER(name, type, help)                                                         \
    rc |= buf_printf(out, "# HELP wharf_" #name "_total " help "\n# TYPE wharf_" #name        \
                          "_total " type "\n");                                               \
    for (int i = 0; i < registry->n_workers; i++)                                             \
        rc |= buf_printf(out, "wharf_" #name "_total{worker=\"%d\"} %" PRIu64 "\n", i,         \
                         counter_get(&registry->workers[i]->name));

#define PROM_ACCEPTOR(name, type, help)                                                       \
    rc |= buf_printf(out,                                                                     \
                     "# HELP wharf_acceptor_" #name "_total " help "\n# TYPE wharf_acceptor_" #name \
                     "_total " type "\nwharf_acceptor_" #name "_total %" PRIu64 "\n",         \
                     ACCEPTOR_SUM(name));

/* The stop sequence (drain_state.h): one series per phase, 1 for the current one. */
static int render_drain_prometheus(struct buf *out, const struct settings *set)
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

int stats_render_prometheus(struct buf *out, const struct stats_registry *registry,
                            const struct settings *set)
{
    int rc = 0;
    rc |= buf_printf(out, "# HELP wharf_connections_active connections open now\n"
                          "# TYPE wharf_connections_active gauge\n");
    for (int i = 0; i < registry->n_workers; i++) {
        const struct worker_stats *s = registry->workers[i];
        uint64_t closed = counter_get(&s->closed);
        rc |= buf_printf(out, "wharf_connections_active{worker=\"%d\"} %" PRIu64 "\n", i,
                         counter_get(&s->accepted) - closed);
    }
    WORKER_COUNTERS(PROM_WORKER)
    ACCEPTOR_COUNTERS(PROM_ACCEPTOR)
    rc |= stats_peers_prometheus(out, registry->peers);
    rc |= buf_printf(out,
                     "# HELP wharf_connections_capacity connections the file limit allows\n"
                     "# TYPE wharf_connections_capacity gauge\nwharf_connections_capacity %" PRIu64
                     "\n# HELP wharf_uptime_seconds seconds since start\n"
                     "# TYPE wharf_uptime_seconds gauge\nwharf_uptime_seconds %.3f\n",
                     registry->capacity, (double)(clock_ms() - registry->start_ms) / 1000.0);
    rc |= render_drain_prometheus(out, set);
    return rc ? -1 : 0;
}

void stats_log_line(const struct stats_registry *registry, const char *prefix)
{
    struct stats_totals t;
    stats_totals(registry, &t);
    log_info("%sactive=%" PRIu64 " accepted=%" PRIu64 " messages=%" PRIu64 " in=%" PRIu64
             " out=%" PRIu64 " errors=%" PRIu64 " timeouts=%" PRIu64 " resets=%" PRIu64
             " rejected=%" PRIu64,
             prefix, t.active, t.accepted, t.messages, t.bytes_in, t.bytes_out,
             t.protocol_errors, t.timeouts, t.resets, t.rejected);
}
