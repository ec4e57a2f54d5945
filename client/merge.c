/* merge: several hosts' histograms as one report (merge.h). */
#include "merge.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hgrm.h"
#include "hlog.h"
#include "report.h"

struct merge_opts {
    int per_host;
    const char *hdr_log, *hgrm;
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: wharf merge [OPTION]... FILE...\n"
               "Add up the histograms of several wharf runs (interval logs written with\n"
               "--hdr-log, or --json reports) and print one report for the whole.\n\n"
               "      --per-host     a row per file as well\n"
               "      --hdr-log FILE write the merged interval log (intervals aligned by time)\n"
               "      --hgrm FILE    write the merged percentile distribution (.hgrm)\n"
               "  -h, --help         this help\n\n"
               "Interval logs must overlap in time (start the runs with --start-at).\n"
               "Exit status: 0, 1 when a file is refused, 2 on bad usage.\n");
}

/* Options; the index of the first file, or -1 (usage error, reported) or 0 (--help). */
static int parse(int argc, char **argv, struct merge_opts *o)
{
    static const struct option longs[] = {
        {"per-host", no_argument, NULL, 'p'}, {"hdr-log", required_argument, NULL, 'l'},
        {"hgrm", required_argument, NULL, 'g'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        if (c == 'p')
            o->per_host = 1;
        else if (c == 'l')
            o->hdr_log = optarg;
        else if (c == 'g')
            o->hgrm = optarg;
        else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "wharf merge: unknown option '%s' (see wharf merge --help)\n",
                    argv[optind - 1]);
            return -1;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "wharf merge: no file given (see wharf merge --help)\n");
        return -1;
    }
    return optind;
}

static const char *clock_text(char *out, size_t len, double t)
{
    time_t secs = (time_t)t;
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, len, "%H:%M:%S", &tm);
    return out;
}

/* The inputs' common measured time [*lo, *hi); -1 when two of them do not overlap
 * (reported, naming the pair). JSON reports older than start_epoch have no place in
 * time and are left out. */
static int common_span(const struct hlog *l, int n, double *lo, double *hi)
{
    int first = 1, late = -1, early = -1;
    for (int i = 0; i < n; i++) {
        if (l[i].is_json == 1)
            continue;
        if (first || l[i].t0 > *lo)
            *lo = l[i].t0, late = i;
        if (first || l[i].t1 < *hi)
            *hi = l[i].t1, early = i;
        first = 0;
    }
    if (first || *hi > *lo)
        return 0;
    char a[16], b[16], c[16], d[16];
    fprintf(stderr,
            "wharf merge: %s (measured %s-%s UTC) does not overlap %s (%s-%s UTC): "
            "start the runs together (--start-at)\n",
            l[late].path, clock_text(a, sizeof a, l[late].t0), clock_text(b, sizeof b, l[late].t1),
            l[early].path, clock_text(c, sizeof c, l[early].t0),
            clock_text(d, sizeof d, l[early].t1));
    return -1;
}

static double rate_of(const struct hlog *l)
{
    double span = l->t1 - l->t0;
    return span > 0 ? (double)l->total.count / span : 0.0;
}

static void per_host_rows(FILE *f, const struct hlog *l, int n, int conns)
{
    char a[32], b[32], c[32];
    fprintf(f, "  %-28s %12s %12s %10s %10s %10s\n", "Per host", conns ? "connections" : "requests",
            conns ? "conn/s" : "req/s", "p50", "p99", "max");
    for (int i = 0; i < n; i++)
        fprintf(f, "  %-28s %12" PRIu64 " %12.2f %10s %10s %10s\n", l[i].path,
                l[i].total.count, rate_of(&l[i]),
                fmt_ns(a, sizeof a, (double)hist_percentile(&l[i].total, 50)),
                fmt_ns(b, sizeof b, (double)hist_percentile(&l[i].total, 99)),
                fmt_ns(c, sizeof c, (double)l[i].total.max));
}

static void print_report(FILE *f, const struct merge_opts *o, const struct hlog *l, int n,
                         const struct hist *all, double lo, double hi)
{
    int logs = 0, json = 0, conns = 1; /* churn's files count connections */
    uint64_t errors = 0;
    double rate = 0;
    for (int i = 0; i < n; i++) {
        logs += !l[i].is_json;
        json += l[i].is_json;
        errors += l[i].errors;
        rate += rate_of(&l[i]);
        conns &= l[i].connects;
    }
    char a[16], b[16];
    fprintf(f, "wharf merge: %d file%s (%d interval log%s, %d JSON report%s)\n", n,
            n == 1 ? "" : "s", logs, logs == 1 ? "" : "s", json, json == 1 ? "" : "s");
    if (hi > lo)
        fprintf(f, "  measured together %.2fs, %s to %s UTC\n", hi - lo,
                clock_text(a, sizeof a, lo), clock_text(b, sizeof b, hi));
    report_latency_text(f, conns ? "Connect" : "Latency", all);
    fprintf(f, "  %" PRIu64 " %s in all\n", all->count, conns ? "connections" : "requests");
    if (json)
        fprintf(f, "  Errors: %" PRIu64 " (from the %d JSON report%s%s)\n", errors, json,
                json == 1 ? "" : "s", logs ? "; interval logs carry none" : "");
    else
        fprintf(f, "  Errors: not in interval logs (see each host's report)\n");
    if (o->per_host)
        per_host_rows(f, l, n, conns);
    fprintf(f, "%s %12.2f (summed over %d host%s)\n", conns ? "Connections/sec:" : "Requests/sec:",
            rate, n, n == 1 ? "" : "s");
}

/* The merged interval log: the logs' (longest) interval length, slots from the earliest
 * interval's start; an interval goes to the slot its middle falls in. A slot is warm-up
 * when everything in it was. 0, or -1 (reported). */
struct slot {
    struct hist *h;
    int measured;
    double end; /* the latest end of what went in (the last slot is cut there) */
};

static int fill_slots(const struct hlog *l, int n, double g0, double len, struct slot *s,
                      size_t ns)
{
    for (int i = 0; i < n; i++) {
        for (size_t k = 0; k < l[i].n; k++) {
            const struct hlog_iv *iv = &l[i].iv[k];
            double at = (iv->start + iv->len / 2 - g0) / len;
            size_t j = at < 0 ? 0 : (size_t)at >= ns ? ns - 1 : (size_t)at;
            if (!s[j].h) {
                if (!(s[j].h = malloc(sizeof *s[j].h)))
                    return -1;
                hist_init(s[j].h);
            }
            if (!iv->warmup && !s[j].measured) {
                hist_init(s[j].h); /* measured counts push warm-up ones out */
                s[j].measured = 1;
            }
            if (!iv->warmup || !s[j].measured)
                hist_merge(s[j].h, iv->h);
            if (iv->start + iv->len > s[j].end)
                s[j].end = iv->start + iv->len;
        }
    }
    return 0;
}

static int write_merged_log(const char *path, const struct hlog *l, int n)
{
    int conns = 1;
    for (int i = 0; i < n; i++)
        conns &= l[i].connects;
    double g0 = 0, end = 0, len = 0;
    int any = 0;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < l[i].n; k++) {
            const struct hlog_iv *iv = &l[i].iv[k];
            if (!any || iv->start < g0)
                g0 = iv->start;
            if (!any || iv->start + iv->len > end)
                end = iv->start + iv->len;
            if (iv->len > len) /* the whole intervals' length (the last one is cut) */
                len = iv->len;
            any = 1;
        }
    if (!any || len <= 0) {
        fprintf(stderr, "wharf merge: --hdr-log needs interval logs\n");
        return -1;
    }
    size_t ns = (size_t)((end - g0) / len) + 1;
    struct slot *s = calloc(ns, sizeof *s);
    FILE *f = s ? fopen(path, "w") : NULL;
    int rc = f && fill_slots(l, n, g0, len, s, ns) == 0 ? 0 : -1;
    if (f) {
        hlog_write_header(f, g0, conns ? "merge, connect latency" : "merge, request latency",
                          NULL);
        for (size_t j = 0; rc == 0 && j < ns; j++)
            if (s[j].h && hlog_write_line(f, !s[j].measured, (double)j * len,
                                          fmin(len, s[j].end - g0 - (double)j * len), s[j].h) < 0)
                rc = -1;
        if (ferror(f) | fclose(f))
            rc = -1;
    }
    for (size_t j = 0; s && j < ns; j++)
        free(s[j].h);
    free(s);
    if (rc < 0)
        fprintf(stderr, "wharf merge: %s: could not be written\n", path);
    return rc;
}

static int merge_files(const struct merge_opts *o, struct hlog *l, int n)
{
    char err[256];
    for (int i = 0; i < n; i++) {
        if (hlog_read(l[i].path, &l[i], o->hdr_log != NULL, err, sizeof err) < 0) {
            fprintf(stderr, "wharf merge: %s\n", err);
            return 1;
        }
    }
    double lo = 0, hi = 0;
    if (common_span(l, n, &lo, &hi) < 0)
        return 1;
    struct hist *all = malloc(sizeof *all);
    if (!all) {
        fprintf(stderr, "wharf merge: out of memory\n");
        return 1;
    }
    hist_init(all);
    for (int i = 0; i < n; i++)
        hist_merge(all, &l[i].total);
    print_report(stdout, o, l, n, all, lo, hi);
    int status = 0;
    if (o->hdr_log && write_merged_log(o->hdr_log, l, n) < 0)
        status = 1;
    if (o->hgrm && report_hgrm(o->hgrm, all) < 0) {
        fprintf(stderr, "wharf merge: %s: could not be written\n", o->hgrm);
        status = 1;
    }
    free(all);
    return status;
}

int merge_main(int argc, char **argv)
{
    struct merge_opts o = {0};
    int first = parse(argc, argv, &o);
    if (first <= 0)
        return first == 0 ? 0 : 2;
    int n = argc - first;
    struct hlog *l = calloc((size_t)n, sizeof *l);
    if (!l) {
        fprintf(stderr, "wharf merge: out of memory\n");
        return 1;
    }
    for (int i = 0; i < n; i++)
        l[i].path = argv[first + i];
    int status = merge_files(&o, l, n);
    for (int i = 0; i < n; i++)
        hlog_free(&l[i]);
    free(l);
    return status;
}
