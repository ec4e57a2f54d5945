/* hist: a log-linear latency histogram (HDR style) in nanoseconds.
 *
 * Values below 256 ns are counted exactly. Above, every power-of-two range is cut into
 * 128 equal buckets, so a bucket is at most 1/128 of its lowest value wide; reported
 * values are bucket midpoints (clamped to the exact min and max seen), which keeps the
 * relative error under 0.4%, far inside the 1% promised from 1 us to 60 s. Values
 * above HIST_MAX_NS (about 18 minutes) land in the last bucket; max stays exact.
 *
 * Recording is a count-leading-zeros, two shifts and an increment: cheap enough for
 * every reply. A histogram is a flat array (about 35 KB) with no pointers, so threads
 * each fill their own and merge them at the end by adding counts. */
#ifndef WHARF_HIST_H
#define WHARF_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)
#define HIST_TOP_BIT 40 /* values are tracked below 2^40 ns */
#define HIST_MAX_NS ((UINT64_C(1) << HIST_TOP_BIT) - 1)
#define HIST_BUCKETS ((HIST_TOP_BIT - HIST_SUB_BITS + 1) * HIST_SUB_COUNT)

struct hist {
    uint64_t count;
    uint64_t sum;   /* ns; overflows only past 584 years of summed latency */
    uint64_t min;   /* UINT64_MAX while empty */
    uint64_t max;
    double sumsq;   /* for the standard deviation */
    uint64_t buckets[HIST_BUCKETS];
};

void hist_init(struct hist *h);

/* Index of the bucket holding v, and that bucket's [low, low + width) range. */
size_t hist_bucket_of(uint64_t v);
uint64_t hist_bucket_low(size_t i);
uint64_t hist_bucket_width(size_t i);

static inline void hist_record_n(struct hist *h, uint64_t v, uint64_t n)
{
    h->buckets[hist_bucket_of(v)] += n;
    h->count += n;
    h->sum += v * n;
    h->sumsq += (double)v * (double)v * (double)n;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

static inline void hist_record(struct hist *h, uint64_t v) { hist_record_n(h, v, 1); }

/* dst += src. */
void hist_merge(struct hist *dst, const struct hist *src);

/* The value at percentile p (0..100): the smallest recorded value v such that at least
 * p% of the values are <= v, as the midpoint of its bucket. 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);

double hist_mean(const struct hist *h);
double hist_stdev(const struct hist *h);

/* Walk the non-empty buckets in increasing order: start with *pos = 0; each call
 * fills value (bucket midpoint, clamped to min/max), count and the cumulative count,
 * and returns 1, or 0 after the last one. */
struct hist_step {
    uint64_t value;
    uint64_t count;
    uint64_t cumulative;
};
int hist_next(const struct hist *h, size_t *pos, struct hist_step *step);

#endif
