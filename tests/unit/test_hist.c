/* hist: bucket arithmetic, percentiles against a sorted-array oracle, merging. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/hist.h"

#define US 1000ull
#define S 1000000000ull

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static double rng_unit(void) { return (double)(rng() >> 11) / 9007199254740992.0; }

/* Log-uniform between lo and hi: every decade equally represented. */
static uint64_t rng_log(uint64_t lo, uint64_t hi)
{
    return (uint64_t)exp(log((double)lo) + rng_unit() * (log((double)hi) - log((double)lo)));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The oracle: the smallest value with at least p% of the values at or below it. */
static uint64_t oracle(const uint64_t *sorted, size_t n, double p)
{
    if (p <= 0)
        return sorted[0];
    double r = ceil(p / 100.0 * (double)n - 1e-9);
    size_t rank = r < 1 ? 1 : (size_t)r;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static double rel_err(uint64_t got, uint64_t want)
{
    return fabs((double)got - (double)want) / (double)want;
}

static struct hist *new_hist(void)
{
    struct hist *h = malloc(sizeof *h);
    assert_non_null(h);
    hist_init(h);
    return h;
}

static void buckets_tile_the_range(void **state)
{
    (void)state;
    for (size_t i = 0; i + 1 < HIST_BUCKETS; i++) {
        uint64_t lo = hist_bucket_low(i), w = hist_bucket_width(i);
        assert_int_equal(hist_bucket_of(lo), i);
        assert_int_equal(hist_bucket_of(lo + w - 1), i);
        assert_int_equal(hist_bucket_low(i + 1), lo + w);
        if (lo >= 2 * HIST_SUB_COUNT)
            assert_true((double)w / (double)lo <= 1.0 / HIST_SUB_COUNT);
    }
    assert_int_equal(hist_bucket_of(HIST_MAX_NS), HIST_BUCKETS - 1);
    assert_int_equal(hist_bucket_of(UINT64_MAX), HIST_BUCKETS - 1);
    assert_true(hist_bucket_low(HIST_BUCKETS - 1) + hist_bucket_width(HIST_BUCKETS - 1) - 1 ==
                HIST_MAX_NS);
}

static void small_values_are_exact(void **state)
{
    (void)state;
    struct hist *h = new_hist();
    for (uint64_t v = 0; v < 256; v++)
        hist_record(h, v);
    for (int p = 1; p <= 100; p++) {
        uint64_t want = (uint64_t)ceil(p / 100.0 * 256 - 1e-9) - 1;
        assert_int_equal(hist_percentile(h, p), want);
    }
    free(h);
}

static void check_against_oracle(const char *name, uint64_t (*gen)(void), size_t n)
{
    uint64_t *v = malloc(n * sizeof *v);
    assert_non_null(v);
    struct hist *h = new_hist();
    double sum = 0, sumsq = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = gen();
        hist_record(h, v[i]);
        sum += (double)v[i];
        sumsq += (double)v[i] * (double)v[i];
    }
    qsort(v, n, sizeof *v, cmp_u64);
    static const double ps[] = {0,  0.1, 1,    5,     10,     25,      50,  75,
                                90, 99,  99.9, 99.99, 99.999, 99.9999, 100};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        uint64_t want = oracle(v, n, ps[i]), got = hist_percentile(h, ps[i]);
        if (rel_err(got, want) > 0.01)
            fail_msg("%s: p%g: got %llu, oracle %llu", name, ps[i], (unsigned long long)got,
                     (unsigned long long)want);
    }
    assert_int_equal(h->count, n);
    assert_int_equal(h->min, v[0]);
    assert_int_equal(h->max, v[n - 1]);
    double mean = sum / (double)n, sd = sqrt(sumsq / (double)n - mean * mean);
    assert_true(fabs(hist_mean(h) - mean) <= 1e-9 * mean);
    assert_true(fabs(hist_stdev(h) - sd) <= 1e-6 * sd + 1e-6);
    free(h);
    free(v);
}

static uint64_t gen_log_range(void) { return rng_log(1 * US, 60 * S); }
static uint64_t gen_tight(void) { return 50 * US + rng() % (2 * US); } /* 50-52 us */
static uint64_t gen_bimodal(void)
{
    /* 99% fast, 1% a stalled server: the tail must be reported as the tail. */
    return rng() % 100 ? 20 * US + rng() % (10 * US) : rng_log(100000 * US, 5 * S);
}

static void percentiles_match_oracle_log_range(void **state)
{
    (void)state;
    check_against_oracle("log-uniform 1us-60s", gen_log_range, 200000);
}

static void percentiles_match_oracle_tight(void **state)
{
    (void)state;
    check_against_oracle("50-52us", gen_tight, 100000);
}

static void percentiles_match_oracle_bimodal(void **state)
{
    (void)state;
    check_against_oracle("bimodal", gen_bimodal, 100000);
}

static void relative_error_below_one_percent_everywhere(void **state)
{
    (void)state;
    /* Every single value from 1 us to 60 s, alone in a histogram, reads back within 1%
     * of itself at the median (min/max clamping disabled by a second, far value). */
    for (int i = 0; i < 200000; i++) {
        uint64_t v = rng_log(1 * US, 60 * S);
        size_t b = hist_bucket_of(v);
        uint64_t mid = hist_bucket_low(b) + (hist_bucket_width(b) - 1) / 2;
        if (rel_err(mid, v) > 0.005)
            fail_msg("value %llu reads as %llu", (unsigned long long)v, (unsigned long long)mid);
    }
}

static void merge_equals_single(void **state)
{
    (void)state;
    struct hist *all = new_hist(), *parts[4], *merged = new_hist();
    for (int i = 0; i < 4; i++)
        parts[i] = new_hist();
    for (int i = 0; i < 100000; i++) {
        uint64_t v = rng_log(1 * US, 10 * S);
        hist_record(all, v);
        hist_record(parts[rng() % 4], v);
    }
    for (int i = 0; i < 4; i++)
        hist_merge(merged, parts[i]);
    assert_int_equal(merged->count, all->count);
    assert_int_equal(merged->sum, all->sum);
    assert_int_equal(merged->min, all->min);
    assert_int_equal(merged->max, all->max);
    assert_memory_equal(merged->buckets, all->buckets, sizeof all->buckets);
    for (double p = 0; p <= 100; p += 0.5)
        assert_int_equal(hist_percentile(merged, p), hist_percentile(all, p));
    assert_true(fabs(hist_stdev(merged) - hist_stdev(all)) <= 1e-6 * hist_stdev(all));
    /* Merging an empty histogram changes nothing. */
    struct hist *empty = new_hist();
    hist_merge(merged, empty);
    assert_int_equal(merged->min, all->min);
    free(empty);
    for (int i = 0; i < 4; i++)
        free(parts[i]);
    free(all);
    free(merged);
}

static void empty_and_clamped(void **state)
{
    (void)state;
    struct hist *h = new_hist();
    assert_int_equal(hist_percentile(h, 50), 0);
    assert_true(hist_mean(h) == 0.0);
    assert_true(hist_stdev(h) == 0.0);
    size_t pos = 0;
    struct hist_step st;
    assert_int_equal(hist_next(h, &pos, &st), 0);
    uint64_t huge = HIST_MAX_NS * 4;
    hist_record(h, huge);
    hist_record_n(h, 1000, 3);
    assert_int_equal(h->count, 4);
    assert_int_equal(h->max, huge);
    assert_int_equal(hist_percentile(h, 100), huge);
    assert_true(rel_err(hist_percentile(h, 75), 1000) <= 0.005);
    free(h);
}

static void iteration_walks_every_value(void **state)
{
    (void)state;
    struct hist *h = new_hist();
    for (int i = 0; i < 5000; i++)
        hist_record(h, rng_log(1 * US, 60 * S));
    size_t pos = 0;
    struct hist_step st = {0};
    uint64_t total = 0, last = 0;
    int steps = 0;
    while (hist_next(h, &pos, &st)) {
        total += st.count;
        assert_int_equal(st.cumulative, total);
        assert_true(st.value >= last);
        last = st.value;
        steps++;
    }
    assert_int_equal(total, 5000);
    assert_true(steps > 100);
    assert_true(last <= h->max && rel_err(last, h->max) <= 0.005);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buckets_tile_the_range),
        cmocka_unit_test(small_values_are_exact),
        cmocka_unit_test(percentiles_match_oracle_log_range),
        cmocka_unit_test(percentiles_match_oracle_tight),
        cmocka_unit_test(percentiles_match_oracle_bimodal),
        cmocka_unit_test(relative_error_below_one_percent_everywhere),
        cmocka_unit_test(merge_equals_single),
        cmocka_unit_test(empty_and_clamped),
        cmocka_unit_test(iteration_walks_every_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
