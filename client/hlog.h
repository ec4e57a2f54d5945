/* hlog: reading results back for `wharf merge`: an HdrHistogram interval log (wharf's
 * --hdr-log, or any HdrHistogram log of values in ns) or a wharf --json report of bench
 * or churn; and writing a log's header and lines (--hdr-log of merge).
 *
 * A log's intervals are placed in absolute time (BaseTime, else StartTime, plus the
 * line's timestamp; timestamps that are already absolute are taken as they are, as
 * HdrHistogram's own reader does). Intervals tagged warmup count for no total. Every
 * malformed or truncated line is refused with FILE:LINE and the reason. */
#ifndef WHARF_HLOG_H
#define WHARF_HLOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/hist.h"

struct hlog_iv {
    double start, len; /* seconds since the epoch; seconds */
    int warmup;
    struct hist *h;    /* kept only when asked (hlog_read's keep) */
};

struct hlog {
    const char *path;
    int is_json;         /* 1: a JSON report; 2: one with its start_epoch */
    int connects;        /* it holds connect latencies (churn): counts are connections */
    double t0, t1;       /* the measured span (absolute; JSON without start_epoch: 0..) */
    struct hist total;   /* every interval but the warm-up ones */
    uint64_t errors;     /* JSON reports only */
    int has_errors;
    size_t n, cap;
    struct hlog_iv *iv;
};

/* Read path into l (zeroed by the caller). keep: keep every interval's histogram. 0,
 * or -1 with a one-line reason in err. hlog_free in both cases. */
int hlog_read(const char *path, struct hlog *l, int keep, char *err, size_t errlen);
void hlog_free(struct hlog *l);

/* A log's header: StartTime and BaseTime at start (epoch seconds), what it holds, an
 * extra comment (or NULL), the legend. */
void hlog_write_header(FILE *f, double start, const char *what, const char *extra);
/* One interval line (start relative to the header's BaseTime). 0, or -1 when out of
 * memory. */
int hlog_write_line(FILE *f, int warmup, double start, double len, const struct hist *h);

#endif
