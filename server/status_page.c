#include "status_page.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/version.h"
#include "config.h"
#include "drain_state.h"
#include "filelimit.h"
#include "listen_spec.h"
#include "stats.h"

/* server/status.html, turned into a list of byte values by build.mk. */
static const char page[] = {
#include "status_html.h"
};

#define SLOT_TOP "<!--TOP-->"
#define SLOT_REST "<!--REST-->"
#define DASH "\xe2\x80\x94" /* what the script shows for a number it cannot know yet */

/* Numbers for people, as the page's script writes them: 987, 12.3k, 4.56M; 512 B, 4.1 MiB,
 * 293 KiB. */
static void fmt_count(char *dst, size_t n, double v)
{
    static const char *const unit[] = {"", "k", "M", "G", "T"};
    int u = 0;
    if (v < 1000) {
        snprintf(dst, n, v != (uint64_t)v && v < 100 ? "%.1f" : "%.0f", v);
        return;
    }
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    snprintf(dst, n, v < 10 ? "%.2f%s" : v < 100 ? "%.1f%s" : "%.0f%s", v, unit[u]);
}

static void fmt_bytes(char *dst, size_t n, double v)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    if (v < 1024) {
        snprintf(dst, n, "%.0f B", v);
        return;
    }
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(dst, n, v < 100 ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static void fmt_duration(char *dst, size_t n, uint64_t ms)
{
    uint64_t s = ms / 1000, d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;
    s %= 60;
    if (d)
        snprintf(dst, n, "%" PRIu64 "d %" PRIu64 "h", d, h);
    else if (h)
        snprintf(dst, n, "%" PRIu64 "h %" PRIu64 "m", h, m);
    else if (m)
        snprintf(dst, n, "%" PRIu64 "m %" PRIu64 "s", m, s);
    else
        snprintf(dst, n, "%" PRIu64 "s", s);
}

/* One number: its /stats path and exact value for a reader, and its text for people. */
static int cell(struct buf *out, const char *tag, const char *key, double v, int bytes)
{
    char text[32];
    (bytes ? fmt_bytes : fmt_count)(text, sizeof text, v);
    return buf_printf(out, "<%s data-k=\"%s\" data-v=\"%.15g\">%s</%s>", tag, key, v, text, tag);
}

static int card(struct buf *out, const char *key, double v, int bytes, const char *label)
{
    int rc = buf_printf(out, "<div>");
    rc |= cell(out, "b", key, v, bytes);
    return rc | buf_printf(out, "<span>%s</span></div>", label);
}

static int render_top(struct buf *out, const struct stats_registry *reg, int draining)
{
    struct stats_totals t;
    char up[32];
    uint64_t up_ms = clock_ms() - reg->start_ms;
    double secs = up_ms ? (double)up_ms / 1000.0 : 1.0;
    /* The stop sequence's phase names it (delay, draining); a worker told to close down
     * without one (tests, a handler-only caller) still says draining. */
    enum drain_phase phase = drain_state_get();
    const char *state = phase != DRAIN_SERVING ? drain_phase_name(phase)
                        : draining             ? "draining"
                                               : "serving";
    stats_totals(reg, &t);
    fmt_duration(up, sizeof up, up_ms);
    int rc = buf_printf(out,
                        "<header><h1>wharfd</h1><span class=\"st %s\" id=\"state\" "
                        "data-k=\"drain.state\">%s</span><span>%s</span><span>backend <b "
                        "data-k=\"backend\">%s</b></span><span>up <b data-k=\"uptime_ms\" "
                        "data-v=\"%" PRIu64 "\">%s</b></span></header><div class=\"cards\">",
                        state, state, WHARF_VERSION, reg->backend, up_ms, up);
    rc |= card(out, "totals.active", (double)t.active, 0, "connections now");
    rc |= card(out, "=avg_rps", (double)t.messages / secs, 0, "requests/s since start");
    rc |= card(out, "=avg_in_bps", (double)t.bytes_in / secs, 1, "in/s since start");
    rc |= card(out, "=avg_out_bps", (double)t.bytes_out / secs, 1, "out/s since start");
    rc |= card(out, "totals.messages", (double)t.messages, 0, "requests");
    rc |= card(out, "totals.protocol_errors", (double)t.protocol_errors, 0, "errors");
    return rc | buf_printf(out, "</div>");
}

static int limit_row(struct buf *out, const char *label, const char *key, uint64_t used,
                     const char *max_key, uint64_t max)
{
    double pc = max ? 100.0 * (double)used / (double)max : 0;
    pc = pc > 100 ? 100 : pc;
    int rc = buf_printf(out, "<tr><td>%s</td>", label);
    rc |= cell(out, "td", key, (double)used, 0);
    rc |= cell(out, "td", max_key, (double)max, 0);
    return rc | buf_printf(out,
                           "<td>%.*f%%</td><td><meter min=\"0\" max=\"100\" low=\"70\" "
                           "high=\"90\" optimum=\"0\" value=\"%.1f\"></meter></td></tr>",
                           pc < 10 ? 1 : 0, pc, pc);
}

static int render_limits(struct buf *out, const struct stats_registry *reg,
                         const struct settings *set)
{
    uint64_t active = stats_active_connections(reg), open_fds, limit;
    char msg[32], outmax[32];
    int rc = buf_printf(out, "<div class=\"cols\"><div><h2>Limits</h2><div class=\"tw\"><table>"
                             "<tr><th></th><th>now</th><th>limit</th><th>used</th><th></th></tr>");
    rc |= limit_row(out, "connections / <code>--max-conns</code>", "totals.active", active,
                    "config.max_conns", set->max_conns);
    rc |= limit_row(out, "connections / file limit room", "totals.active", active, "capacity",
                    reg->capacity);
    if (filelimit_usage(&open_fds, &limit) == 0)
        rc |= limit_row(out, "descriptors / file limit", "files.open", open_fds, "files.limit",
                        limit);
    fmt_bytes(msg, sizeof msg, (double)set->max_message);
    fmt_bytes(outmax, sizeof outmax, (double)set->max_output);
    if (reg->cfg->max_conns_per_ip)
        rc |= buf_printf(out, "</table></div><p class=\"mu\">per client address: %" PRIu32,
                         reg->cfg->max_conns_per_ip);
    else
        rc |= buf_printf(out, "</table></div><p class=\"mu\">per client address: no limit");
    return rc | buf_printf(out, " \xc2\xb7 max message %s \xc2\xb7 max output %s</p></div>", msg,
                           outmax);
}

static uint64_t acceptor_sum(const struct stats_registry *reg, size_t offset)
{
    uint64_t sum = 0;
    for (int i = 0; i < reg->n_acceptors; i++)
        sum += counter_get((const counter_t *)((const char *)reg->acceptors[i] + offset));
    return sum;
}

#define ACCEPTOR_ROW(name, metric, labels, help)                                              \
    rc |= buf_printf(out, "<tr><td>%s</td>", label_of(#name, label, sizeof label));           \
    rc |= cell(out, "td", "acceptor." #name,                                                  \
               (double)acceptor_sum(reg, offsetof(struct acceptor_stats, name)), 0);          \
    rc |= buf_printf(out, "</tr>");

/* "rejected_max_conns" -> "rejected max conns" */
static const char *label_of(const char *name, char *dst, size_t n)
{
    snprintf(dst, n, "%s", name);
    for (char *p = dst; *p; p++)
        *p = *p == '_' ? ' ' : *p;
    return dst;
}

static int render_acceptor(struct buf *out, const struct stats_registry *reg)
{
    char label[64];
    int rc = buf_printf(out, "<div><h2>Acceptor");
    if (reg->n_acceptors > 1)
        rc |= buf_printf(out, " <small>%d, one per worker</small>", reg->n_acceptors);
    rc |= buf_printf(out, "</h2><div class=\"tw\"><table>");
    ACCEPTOR_COUNTERS(ACCEPTOR_ROW)
    return rc | buf_printf(out, "</table></div></div></div>");
}

static uint64_t worker_timeouts(const struct worker_stats *w)
{
    return counter_get(&w->idle_timeouts) + counter_get(&w->header_timeouts) +
           counter_get(&w->linger_timeouts);
}

/* With one acceptor per worker (--dispatch reuseport), what worker i's listener shed. */
static int shed_cell(struct buf *out, const struct stats_registry *reg, int i)
{
    if (reg->n_acceptors != reg->n_workers || reg->n_workers < 2)
        return buf_printf(out, "<td title=\"one acceptor: see Acceptor\">" DASH "</td>");
    const struct acceptor_stats *a = reg->acceptors[i];
    char key[32];
    snprintf(key, sizeof key, "=w%d.shed", i);
    return cell(out, "td", key,
                (double)(counter_get(&a->rejected_max_conns) + counter_get(&a->rejected_no_fd) +
                         counter_get(&a->rejected_per_ip)),
                0);
}

static int worker_row(struct buf *out, const struct stats_registry *reg, int i, double secs)
{
    const struct worker_stats *w = reg->workers[i];
    uint64_t closed = counter_get(&w->closed);
    uint64_t active = counter_get(&w->accepted) - closed, msgs = counter_get(&w->messages);
    char k[7][40];
    const char *names[7] = {"active", "=rps", "messages", "protocol_errors", "=timeouts",
                            "bytes_in", "bytes_out"};
    for (int n = 0; n < 7; n++)
        snprintf(k[n], sizeof k[n], names[n][0] == '=' ? "=w%d.%s" : "workers.%d.%s", i,
                 names[n] + (names[n][0] == '='));
    int rc = buf_printf(out, "<tr><td>%d</td>", i);
    rc |= cell(out, "td", k[0], (double)active, 0);
    rc |= cell(out, "td", k[1], (double)msgs / secs, 0);
    rc |= cell(out, "td", k[2], (double)msgs, 0);
    rc |= cell(out, "td", k[3], (double)counter_get(&w->protocol_errors), 0);
    rc |= cell(out, "td", k[4], (double)worker_timeouts(w), 0);
    rc |= shed_cell(out, reg, i);
    rc |= cell(out, "td", k[5], (double)counter_get(&w->bytes_in), 1);
    rc |= cell(out, "td", k[6], (double)counter_get(&w->bytes_out), 1);
    return rc | buf_printf(out, "</tr>");
}

static int render_workers(struct buf *out, const struct stats_registry *reg)
{
    uint64_t up_ms = clock_ms() - reg->start_ms;
    double secs = up_ms ? (double)up_ms / 1000.0 : 1.0;
    int rc = buf_printf(out,
                        "<h2>Workers <small>dispatch %s</small></h2><div class=\"tw\"><table><tr>"
                        "<th>worker</th><th>connections</th><th>requests/s since start</th>"
                        "<th>requests</th><th>errors</th><th>timeouts</th><th>shed</th>"
                        "<th>in</th><th>out</th></tr>",
                        dispatch_name(reg->cfg->dispatch));
    for (int i = 0; i < reg->n_workers; i++)
        rc |= worker_row(out, reg, i, secs);
    return rc | buf_printf(out, "</table></div>");
}

static int render_listeners(struct buf *out, const struct stats_registry *reg,
                            const struct settings *set)
{
    const struct config *c = reg->cfg;
    int rc = buf_printf(out, "<h2>Listeners</h2><p>");
    for (int i = 0; i < c->n_listen; i++) {
        char text[LISTEN_SPEC_TEXT_MAX];
        listen_spec_format(&c->listen[i], text, sizeof text);
        rc |= buf_printf(out, "%s<code>%s</code>", i ? " " : "", text);
    }
    return rc | buf_printf(out,
                           " <span class=\"mu\">\xc2\xb7 %d workers \xc2\xb7 mode %s \xc2\xb7 "
                           "/stats for %s</span></p>",
                           c->workers, mode_name(set->mode),
                           set->stats_allow_all ? "all" : "loopback");
}

/* The page with the snapshot in its two slots; page[] is the same for every request. */
static int render_page(struct buf *doc, const struct stats_registry *reg,
                       const struct settings *set, int draining)
{
    const char *top = memmem(page, sizeof page, SLOT_TOP, strlen(SLOT_TOP));
    const char *rest = memmem(page, sizeof page, SLOT_REST, strlen(SLOT_REST));
    if (!top || !rest || rest < top)
        return -1; /* status.html lost a slot: the build's own test says so */
    int rc = buf_append(doc, page, (size_t)(top - page));
    rc |= render_top(doc, reg, draining);
    rc |= buf_append(doc, top + strlen(SLOT_TOP), (size_t)(rest - top) - strlen(SLOT_TOP));
    rc |= render_limits(doc, reg, set);
    rc |= render_acceptor(doc, reg);
    rc |= render_workers(doc, reg);
    rc |= render_listeners(doc, reg, set);
    rest += strlen(SLOT_REST);
    return rc | buf_append(doc, rest, (size_t)(page + sizeof page - rest));
}

int status_page_reply(struct buf *out, const struct http_cache *hc,
                      const struct stats_registry *reg, const struct settings *set, int draining,
                      unsigned flags)
{
    struct buf doc = {0};
    int rc = render_page(&doc, reg, set, draining);
    if (rc == 0)
        rc = http_reply(out, hc, 200, "text/html; charset=utf-8", buf_head(&doc), buf_len(&doc),
                        flags, NULL);
    buf_release(&doc);
    return rc;
}
