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

uint64_t stats_acceptor_sum(const struct stats_registry *registry, size_t offset)
{
    uint64_t sum = 0;
    for (int i = 0; i < registry->n_acceptors; i++)
        sum += counter_get((const counter_t *)((const char *)registry->acceptors[i] + offset));
    return sum;
}

#define ACCEPTOR_SUM(field) stats_acceptor_sum(registry, offsetof(struct acceptor_stats, field))

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

/* --stats-allow as it is written: "all", "loopback" or the ranges. */
static const char *stats_allow_text(const struct settings *set, char *buf, size_t len)
{
    if (set->stats_allow_all)
        return "all";
    if (set->stats_allow.n == 0)
        return "loopback";
    cidr_list_format(&set->stats_allow, buf, len);
    return buf;
}

static int render_config_json(struct buf *out, const struct stats_registry *registry,
                              const struct settings *set)
{
    char allow[CIDR_MAX * 48];
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
                        stats_allow_text(set, allow, sizeof allow), set->idle_timeout_ms,
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

#define JSON_FIELD(name, metric, labels, help)                                                          \
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

#define JSON_TOTAL(name, metric, labels, help)                                                          \
    do {                                                                                      \
        uint64_t sum = 0;                                                                     \
        for (int i = 0; i < registry->n_workers; i++)                                         \
            sum += counter_get(&registry->workers[i]->name);                                  \
        rc |= buf_printf(out, ",\"" #name "\":%" PRIu64, sum);                                \
    } while (0);

#define JSON_ACCEPTOR(name, metric, labels, help)                                                       \
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
