#include "hist.h"

#include <math.h>
#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

size_t hist_bucket_of(uint64_t v)
{
    if (v > HIST_MAX_NS)
        v = HIST_MAX_NS;
    if (v < 2 * HIST_SUB_COUNT)
        return (size_t)v;
    unsigned top = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS + 1 */
    unsigned shift = top - HIST_SUB_BITS;
    /* v >> shift is in [128, 256): the bucket within this power of two, plus 128. */
    return (size_t)shift * HIST_SUB_COUNT + (size_t)(v >> shift);
}

uint64_t hist_bucket_low(size_t i)
{
    if (i < 2 * HIST_SUB_COUNT)
        return i;
    unsigned shift = (unsigned)(i / HIST_SUB_COUNT) - 1;
    return (uint64_t)(i - (size_t)shift * HIST_SUB_COUNT) << shift;
}

uint64_t hist_bucket_width(size_t i)
{
    if (i < 2 * HIST_SUB_COUNT)
        return 1;
    return UINT64_C(1) << ((unsigned)(i / HIST_SUB_COUNT) - 1);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (!src->count)
        return;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    dst->sumsq += src->sumsq;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

/* The value a bucket stands for: its midpoint, never outside what was recorded. */
static uint64_t bucket_value(const struct hist *h, size_t i)
{
    uint64_t v = hist_bucket_low(i) + (hist_bucket_width(i) - 1) / 2;
    if (v < h->min)
        v = h->min;
    if (v > h->max)
        v = h->max;
    return v;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    if (!h->count)
        return 0;
    if (p <= 0)
        return h->min;
    if (p >= 100)
        return h->max;
    /* Rank of the wanted value among the sorted values (1-based). The small slack keeps
     * 99.9% of 1000 values at rank 999 despite binary floating point. */
    double r = ceil(p / 100.0 * (double)h->count - 1e-9);
    uint64_t rank = r < 1 ? 1 : (uint64_t)r;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank)
            return bucket_value(h, i);
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}

double hist_stdev(const struct hist *h)
{
    if (h->count < 2)
        return 0.0;
    double mean = hist_mean(h);
    double var = h->sumsq / (double)h->count - mean * mean;
    return var > 0 ? sqrt(var) : 0.0;
}

int hist_next(const struct hist *h, size_t *pos, struct hist_step *step)
{
    uint64_t cum = *pos == 0 ? 0 : step->cumulative;
    for (size_t i = *pos; i < HIST_BUCKETS; i++) {
        if (!h->buckets[i])
            continue;
        step->value = bucket_value(h, i);
        step->count = h->buckets[i];
        step->cumulative = cum + h->buckets[i];
        *pos = i + 1;
        return 1;
    }
    *pos = HIST_BUCKETS;
    return 0;
}
