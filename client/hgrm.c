/* hgrm: the .hgrm percentile distribution (hgrm.h). */
#include "hgrm.h"

#include <inttypes.h>
#include <math.h>

#define HGRM_TICKS 5 /* lines per halving of the distance to 100% (HdrHistogram's default) */

/* The next percentile level after p (0..100), HdrHistogram's way: steps of
 * 100 / (ticks * 2^(k+1)) where 100/(100-p) is in [2^k, 2^(k+1)). */
static double next_level(double p)
{
    double k = floor(log2(100.0 / (100.0 - p)));
    return p + 100.0 / (HGRM_TICKS * pow(2.0, k + 1));
}

/* The first bucket index at or after *i whose cumulative count reaches rank. */
static uint64_t walk_to(const struct hist *h, size_t *i, uint64_t *cum, uint64_t rank)
{
    while (*i < HIST_BUCKETS && *cum + h->buckets[*i] < rank)
        *cum += h->buckets[(*i)++];
    return *cum + (*i < HIST_BUCKETS ? h->buckets[*i] : 0);
}

void hgrm_print(FILE *f, const struct hist *h)
{
    fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount",
            "1/(1-Percentile)");
    size_t i = 0;
    uint64_t cum = 0;
    for (double p = 0; h->count && p < 100.0; p = next_level(p)) {
        double r = ceil(p / 100.0 * (double)h->count - 1e-9);
        uint64_t rank = r < 1 ? 1 : (uint64_t)r;
        uint64_t at = walk_to(h, &i, &cum, rank);
        if (at >= h->count)
            break;
        fprintf(f, "%12.3f %2.12f %10" PRIu64 " %14.2f\n",
                (double)hist_percentile(h, p) / 1e6, p / 100.0, at, 100.0 / (100.0 - p));
    }
    if (h->count)
        fprintf(f, "%12.3f %2.12f %10" PRIu64 "\n", (double)h->max / 1e6, 1.0, h->count);
    fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", hist_mean(h) / 1e6,
            hist_stdev(h) / 1e6);
    fprintf(f, "#[Max     = %12.3f, Total count    = %12" PRIu64 "]\n",
            h->count ? (double)h->max / 1e6 : 0.0, h->count);
    fprintf(f, "#[Buckets = %12d, SubBuckets     = %12d]\n", HIST_TOP_BIT - HIST_SUB_BITS,
            2 * HIST_SUB_COUNT);
}

int report_hgrm(const char *path, const struct hist *h)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    hgrm_print(f, h);
    int rc = ferror(f) ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}
