/* bench_report: the bench driver's reports other than wrk's layout (bench_wrk.c):
 * the text report of raw, line and frame runs, and the JSON report of every run. */
#include <inttypes.h>
#include <stdio.h>

#include "bench_state.h"
#include "ivlog.h"

void bench_print_text(const struct engine *e, const struct eng_totals *r)
{
    const struct load_opts *o = e->o;
    char a[32];
    FILE *f = stdout;
    if (o->proto == PROTO_HTTP) {
        bench_print_wrk(e, r);
        return;
    }
    fprintf(f, "wharf bench %s: %d thread%s, %" PRIu64 " connection%s, pipeline %" PRIu64
               ", %" PRIu64 "-byte payload, expect %s\n",
            e->target, e->nthreads, e->nthreads == 1 ? "" : "s", o->connections,
            o->connections == 1 ? "" : "s", o->pipeline, o->size, mode_name(o->expect));
    if (o->rate)
        fprintf(f, "  constant rate %" PRIu64 " requests/s (latency from intended send times)\n",
                o->rate);
    if (o->warmup_ms)
        fprintf(f, "  warmup %s, %" PRIu64 " requests not counted\n",
                fmt_ns(a, sizeof a, (double)o->warmup_ms * 1e6), r->c[WARM]);
    report_latency_text(f, "Latency", &r->h[LAT]);
    fprintf(f, "  %" PRIu64 " requests in %.2fs, %.2f MiB read, %.2f MiB written\n", r->c[OK],
            r->elapsed_s, (double)r->c[BYTES_IN] / 1048576.0, (double)r->c[BYTES_OUT] / 1048576.0);
    report_errors_text(f, r->err, r->errors);
    if (r->err[ERR_CONNECT]) {
        fprintf(f, "  Connect errors: ");
        errno_print_text(f, &r->errnos);
        fputc('\n', f);
    }
    if (r->c[BACKLOG])
        fprintf(f, "  Behind schedule: %" PRIu64 " requests were due but never sent\n",
                r->c[BACKLOG]);
    if (r->c[UNANSWERED])
        fprintf(f, "  Unanswered when the run was cut: %" PRIu64 "\n", r->c[UNANSWERED]);
    engine_text_tail(f, e, r);
}

void bench_print_json(const struct engine *e, const struct eng_totals *r)
{
    const struct load_opts *o = e->o;
    FILE *f = stdout;
    fprintf(f, "{\"command\":\"bench\",\"target\":\"%s\",\"proto\":\"%s\",\"threads\":%d,"
               "\"connections\":%" PRIu64 ",\"pipeline\":%" PRIu64 ",\"size\":%" PRIu64
               ",\"rate\":%" PRIu64 ",\"expect\":\"%s\",\"warmup_s\":%.3f,"
               "\"duration_s\":%.6f,\"interrupted\":%s,",
            e->target, proto_name(o->proto), e->nthreads, o->connections, o->pipeline, o->size,
            o->rate, mode_name(o->expect), (double)o->warmup_ms / 1e3, r->elapsed_s,
            e->interrupted ? "true" : "false");
    /* Where the measured time sits, for wharf merge's overlap check. */
    fprintf(f, "\"start_epoch\":%.3f,",
            (double)ivlog_wall_of(atomic_load(&((struct bench *)e->d)->clk.measure_ns)) / 1e9);
    fprintf(f, "\"requests\":{\"sent\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"warmup\":%" PRIu64
               ",\"backlog\":%" PRIu64 ",\"unanswered\":%" PRIu64 "},",
            r->c[SENT], r->c[OK], r->c[WARM], r->c[BACKLOG], r->c[UNANSWERED]);
    if (o->proto == PROTO_HTTP)
        fprintf(f, "\"http\":{\"method\":\"%s\",\"path\":\"%s\",\"non_2xx_3xx\":%" PRIu64
                   ",\"server_closes\":%" PRIu64 ",\"lost\":%" PRIu64 "},",
                o->http.method, o->http.path, r->c[NON2XX], r->c[RECONN], r->c[LOST]);
    fprintf(f, "\"requests_per_sec\":%.2f,\"bytes\":{\"in\":%" PRIu64 ",\"out\":%" PRIu64
               "},\"mib_per_sec\":{\"in\":%.3f,\"out\":%.3f},",
            r->per_sec, r->c[BYTES_IN], r->c[BYTES_OUT], r->mib_in_s, r->mib_out_s);
    static const char *const hists[] = {"latency", "connect_latency", NULL};
    engine_json_tail(f, e, r, hists, "connect_errors", "us_per_request", r->cpu_us);
    bench_script_done(e, r);
}
