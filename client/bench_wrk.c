/* bench_wrk: the text report of an http:// run. Its first lines have wrk's layout
 * (Latency / Req/Sec / Latency Distribution / N requests in / Socket errors: /
 * Non-2xx or 3xx responses: / Requests/sec: / Transfer/sec:) so that scripts reading
 * wrk's output read wharf's; wharf's additions follow: the tail percentiles, errors
 * by kind, server closes and lost requests, client CPU per request. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_state.h"

/* ---- Req/Sec samples ---- */

static void rps_push(struct rps_samples *s, double v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        double *nv = realloc(s->v, cap * sizeof *nv);
        if (!nv)
            return; /* a sample fewer: the row is an estimate anyway */
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = v;
}

void bench_rps_sample(struct engine *e, uint64_t now)
{
    struct bench *b = e->d;
    struct rps_samples *s = &b->rps;
    uint64_t measure = atomic_load(&b->clk.measure_ns), end = atomic_load(&b->clk.end_ns);
    if (!s->last)
        s->last = calloc((size_t)e->nthreads, sizeof *s->last);
    if (!s->last || !measure || now < measure)
        return;
    if (!s->last_ns)
        s->last_ns = measure; /* OK counts measured replies only: zero at the measure */
    int take = s->last_ns >= measure && now <= end && now > s->last_ns;
    for (int i = 0; i < e->nthreads; i++) {
        uint64_t ok = ctr_get(&e->t[i].st->c[OK]);
        if (take)
            rps_push(s, (double)(ok - s->last[i]) * 1e9 / (double)(now - s->last_ns));
        s->last[i] = ok;
    }
    s->last_ns = now;
}

void bench_rps_free(struct rps_samples *s)
{
    free(s->v);
    free(s->last);
}

/* ---- numbers as wrk writes them ---- */

static const char *fmt_time(char *out, size_t len, double us)
{
    if (us < 1e3)
        snprintf(out, len, "%.2fus", us);
    else if (us < 1e6)
        snprintf(out, len, "%.2fms", us / 1e3);
    else
        snprintf(out, len, "%.2fs", us / 1e6);
    return out;
}

static const char *fmt_metric(char *out, size_t len, double v)
{
    if (v < 1e3)
        snprintf(out, len, "%.2f", v);
    else if (v < 1e6)
        snprintf(out, len, "%.2fk", v / 1e3);
    else
        snprintf(out, len, "%.2fM", v / 1e6);
    return out;
}

static const char *fmt_binary(char *out, size_t len, double v)
{
    static const char *const units[] = {"", "K", "M", "G", "T"};
    int u = 0;
    while (v >= 1024 && u < 4)
        v /= 1024, u++;
    snprintf(out, len, "%.2f%s", v, units[u]);
    return out;
}

/* Share of the histogram's values within mean +- stdev, in percent. */
static double hist_within_stdev(const struct hist *h)
{
    double mean = hist_mean(h), sd = hist_stdev(h);
    uint64_t in = 0, prev = 0;
    size_t pos = 0;
    struct hist_step st = {0};
    while (hist_next(h, &pos, &st)) {
        if ((double)st.value >= mean - sd && (double)st.value <= mean + sd)
            in += st.cumulative - prev;
        prev = st.cumulative;
    }
    return h->count ? 100.0 * (double)in / (double)h->count : 0;
}

static void rps_row(FILE *f, const struct rps_samples *s, double fallback)
{
    double sum = 0, sq = 0, max = 0, within = 0;
    for (size_t i = 0; i < s->n; i++) {
        sum += s->v[i];
        max = s->v[i] > max ? s->v[i] : max;
    }
    double mean = s->n ? sum / (double)s->n : fallback;
    for (size_t i = 0; i < s->n; i++)
        sq += (s->v[i] - mean) * (s->v[i] - mean);
    double sd = s->n > 1 ? sqrt(sq / (double)(s->n - 1)) : 0;
    for (size_t i = 0; i < s->n; i++)
        within += fabs(s->v[i] - mean) <= sd;
    char a[32], b[32], c[32];
    fprintf(f, "    %-10s%8s%10s%9s%8.2f%%\n", "Req/Sec", fmt_metric(a, sizeof a, mean),
            fmt_metric(b, sizeof b, sd), fmt_metric(c, sizeof c, s->n ? max : mean),
            s->n ? 100.0 * within / (double)s->n : 100.0);
}

/* wrk's lines. */
static void wrk_lines(FILE *f, const struct engine *e, const struct eng_totals *r)
{
    const struct load_opts *o = e->o;
    const struct hist *h = &r->h[LAT];
    char a[32], b[32], c[32];
    fprintf(f, "Running %s test @ %s\n", fmt_time(a, sizeof a, (double)o->duration_ms * 1e3),
            o->target_text);
    fprintf(f, "  %d threads and %" PRIu64 " connections\n", e->nthreads, o->connections);
    fprintf(f, "  Thread Stats%6s%11s%8s%12s\n", "Avg", "Stdev", "Max", "+/- Stdev");
    fprintf(f, "    %-10s%8s%10s%9s%8.2f%%\n", "Latency", fmt_time(a, sizeof a, hist_mean(h) / 1e3),
            fmt_time(b, sizeof b, hist_stdev(h) / 1e3), fmt_time(c, sizeof c, (double)h->max / 1e3),
            hist_within_stdev(h));
    rps_row(f, &((const struct bench *)e->d)->rps, r->per_sec / e->nthreads);
    fprintf(f, "  Latency Distribution\n");
    static const double pct[] = {50, 75, 90, 99};
    for (size_t i = 0; i < sizeof pct / sizeof pct[0]; i++)
        fprintf(f, "%7.0f%%%10s\n", pct[i],
                fmt_time(a, sizeof a, (double)hist_percentile(h, pct[i]) / 1e3));
    uint64_t answered = r->c[OK] + r->err[ERR_MISMATCH] + r->err[ERR_STATUS] + r->err[ERR_BODY];
    fprintf(f, "  %" PRIu64 " requests in %s, %sB read\n", answered,
            fmt_time(a, sizeof a, r->elapsed_s * 1e6),
            fmt_binary(b, sizeof b, (double)r->c[BYTES_IN]));
    uint64_t rd = r->err[ERR_READ] + r->err[ERR_CLOSED];
    if (r->err[ERR_CONNECT] || rd || r->err[ERR_WRITE] || r->err[ERR_TIMEOUT])
        fprintf(f, "  Socket errors: connect %" PRIu64 ", read %" PRIu64 ", write %" PRIu64
                   ", timeout %" PRIu64 "\n",
                r->err[ERR_CONNECT], rd, r->err[ERR_WRITE], r->err[ERR_TIMEOUT]);
    if (r->c[NON2XX])
        fprintf(f, "  Non-2xx or 3xx responses: %" PRIu64 "\n", r->c[NON2XX]);
    fprintf(f, "Requests/sec: %9.2f\n", r->per_sec);
    fprintf(f, "Transfer/sec: %10sB\n", fmt_binary(a, sizeof a, r->mib_in_s * 1048576.0));
}

void bench_print_wrk(const struct engine *e, const struct eng_totals *r)
{
    const struct load_opts *o = e->o;
    FILE *f = stdout;
    char a[32], b[32], c[32];
    wrk_lines(f, e, r);
    if (o->script)
        fprintf(f, "wharf: script %s, ", o->script);
    else
        fprintf(f, "wharf: %s %s, ", o->http.method, o->http.path);
    fprintf(f, "pipeline %" PRIu64 ", latency of each request from its %s send time\n",
            o->pipeline, o->rate ? "intended" : "own");
    if (o->rate)
        fprintf(f, "  constant rate %" PRIu64 " requests/s\n", o->rate);
    if (o->warmup_ms)
        fprintf(f, "  warmup %s, %" PRIu64 " requests not counted\n",
                fmt_ns(a, sizeof a, (double)o->warmup_ms * 1e6), r->c[WARM]);
    fprintf(f, "  Latency 99.9%% %s, 99.99%% %s, max %s\n",
            fmt_ns(a, sizeof a, (double)hist_percentile(&r->h[LAT], 99.9)),
            fmt_ns(b, sizeof b, (double)hist_percentile(&r->h[LAT], 99.99)),
            fmt_ns(c, sizeof c, (double)r->h[LAT].max));
    report_errors_text(f, r->err, r->errors);
    if (r->err[ERR_CONNECT]) {
        fprintf(f, "  Connect errors: ");
        errno_print_text(f, &r->errnos);
        fputc('\n', f);
    }
    fprintf(f, "  Server closes: %" PRIu64 " (reconnected); requests lost with them: %" PRIu64
               " (not resent)\n", r->c[RECONN], r->c[LOST]);
    if (r->c[BACKLOG])
        fprintf(f, "  Behind schedule: %" PRIu64 " requests were due but never sent\n",
                r->c[BACKLOG]);
    if (r->c[UNANSWERED])
        fprintf(f, "  Unanswered when the run was cut: %" PRIu64 "\n", r->c[UNANSWERED]);
    if (e->interrupted)
        fprintf(f, "  Interrupted: the run was cut short by a signal\n");
    fprintf(f, "Client CPU:   %8.2f us/request (user %.2fs, sys %.2fs)\n", r->cpu_us,
            e->cpu.user_s, e->cpu.sys_s);
    bench_script_done(e, r);
}
