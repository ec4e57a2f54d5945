#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../common/hdr_codec.h"
#include "load.h"

static const char *const kind_names[ERR_KINDS] = {
    [ERR_CONNECT] = "connect", [ERR_READ] = "read",         [ERR_WRITE] = "write",
    [ERR_TIMEOUT] = "timeout", [ERR_MISMATCH] = "mismatch", [ERR_CLOSED] = "closed",
    [ERR_HTTP] = "http",       [ERR_STATUS] = "status",     [ERR_BODY] = "body",
};

const char *err_kind_name(int kind)
{
    return kind >= 0 && kind < ERR_KINDS ? kind_names[kind] : "?";
}

void errno_merge(struct errno_counts *dst, const struct errno_counts *src)
{
    for (int i = 0; i < ERRNO_SLOTS; i++)
        dst->n[i] += src->n[i];
}

uint64_t errno_total(const struct errno_counts *e)
{
    uint64_t t = 0;
    for (int i = 0; i < ERRNO_SLOTS; i++)
        t += e->n[i];
    return t;
}

/* Indices of non-zero counts, largest first. */
static int errno_sorted(const struct errno_counts *e, int *idx)
{
    int n = 0;
    for (int i = 0; i < ERRNO_SLOTS; i++)
        if (e->n[i])
            idx[n++] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && e->n[idx[j]] > e->n[idx[j - 1]]; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    return n;
}

void errno_print_text(FILE *f, const struct errno_counts *e)
{
    int idx[ERRNO_SLOTS];
    int n = errno_sorted(e, idx);
    if (!n)
        fputs("none", f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%s %" PRIu64, i ? ", " : "", idx[i] ? errno_name(idx[i]) : "other",
                e->n[idx[i]]);
}

void errno_print_json(FILE *f, const struct errno_counts *e)
{
    int idx[ERRNO_SLOTS];
    int n = errno_sorted(e, idx);
    fputc('{', f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\"%s\":%" PRIu64, i ? "," : "", idx[i] ? errno_name(idx[i]) : "other",
                e->n[idx[i]]);
    fputc('}', f);
}

const char *fmt_ns(char *out, size_t len, double ns)
{
    if (ns < 1e3)
        snprintf(out, len, "%.0fns", ns);
    else if (ns < 1e6)
        snprintf(out, len, "%.2fus", ns / 1e3);
    else if (ns < 1e9)
        snprintf(out, len, "%.2fms", ns / 1e6);
    else
        snprintf(out, len, "%.2fs", ns / 1e9);
    return out;
}

static const double pcts[] = {50, 90, 99, 99.9, 99.99};

void report_latency_text(FILE *f, const char *title, const struct hist *h)
{
    char a[32], b[32], c[32];
    if (!h->count) {
        fprintf(f, "  %-10s (no replies)\n", title);
        return;
    }
    fprintf(f, "  %-10s %10s %10s %10s\n", title, "Avg", "Stdev", "Max");
    fprintf(f, "  %-10s %10s %10s %10s\n", "", fmt_ns(a, sizeof a, hist_mean(h)),
            fmt_ns(b, sizeof b, hist_stdev(h)), fmt_ns(c, sizeof c, (double)h->max));
    fprintf(f, "  %s distribution\n", title);
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
        /* A percentile finer than the sample says nothing: skip p99.99 of 100 values. */
        if (pcts[i] > 99.9 && h->count < 10000)
            continue;
        char p[16];
        snprintf(p, sizeof p, "%g%%", pcts[i]);
        fprintf(f, "  %10s %10s\n", p, fmt_ns(a, sizeof a, (double)hist_percentile(h, pcts[i])));
    }
}

void report_latency_json(FILE *f, const struct hist *h)
{
    fprintf(f, "{\"count\":%" PRIu64 ",\"min_us\":%.3f,\"mean_us\":%.3f,\"stdev_us\":%.3f",
            h->count, h->count ? (double)h->min / 1e3 : 0.0, hist_mean(h) / 1e3,
            hist_stdev(h) / 1e3);
    static const char *const names[] = {"p50", "p90", "p99", "p99_9", "p99_99"};
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
        fprintf(f, ",\"%s_us\":%.3f", names[i], (double)hist_percentile(h, pcts[i]) / 1e3);
    fprintf(f, ",\"max_us\":%.3f", (double)h->max / 1e3);
    /* The histogram itself (hdr_codec.h: ns, HdrHistogram V2 compressed, base64), so
     * that reports can be merged (wharf merge). */
    char *hdr = hdr_encode_b64(h);
    fprintf(f, ",\"hdr\":\"%s\"}", hdr ? hdr : "");
    free(hdr);
}

int report_latency_csv(const char *path, const struct hist *h)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "latency_us,percentile,count,inverse\n");
    size_t pos = 0;
    struct hist_step st = {0};
    while (hist_next(h, &pos, &st)) {
        double pct = (double)st.cumulative / (double)h->count;
        if (pct < 1.0)
            fprintf(f, "%.3f,%.6f,%" PRIu64 ",%.2f\n", (double)st.value / 1e3, pct * 100,
                    st.cumulative, 1.0 / (1.0 - pct));
        else
            fprintf(f, "%.3f,%.6f,%" PRIu64 ",inf\n", (double)st.value / 1e3, 100.0,
                    st.cumulative);
    }
    int rc = ferror(f) ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

void cpu_now(struct cpu_use *c)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    c->user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    c->sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void report_errors_text(FILE *f, const uint64_t *err, uint64_t total)
{
    fprintf(f, "  Errors: %" PRIu64, total);
    for (int k = 0; k < ERR_KINDS; k++)
        if (k < ERR_ALWAYS_SHOWN || err[k])
            fprintf(f, "%s%s %" PRIu64, k ? ", " : " (", err_kind_name(k), err[k]);
    fprintf(f, ")\n");
}

void report_errors_json(FILE *f, const uint64_t *err, uint64_t total)
{
    fprintf(f, "\"errors\":{\"total\":%" PRIu64, total);
    for (int k = 0; k < ERR_KINDS; k++)
        if (k < ERR_ALWAYS_SHOWN || err[k])
            fprintf(f, ",\"%s\":%" PRIu64, err_kind_name(k), err[k]);
    fprintf(f, "}");
}
