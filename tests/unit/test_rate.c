/* rate: intended send times exactly 1/rate apart, no drift, interleaved threads,
 * catch-up after a stall measured from intended times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "../../common/rate.h"

#define S 1000000000ull
#define START 123456789ull

static void times_are_exact_multiples(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, START, 1000, 0, 1);
    for (uint64_t k = 0; k < 10000; k++)
        assert_int_equal(rate_time(&r, k), START + k * 1000000);
    /* 3/s does not divide a second: each time is the exact floor, never a running sum. */
    rate_init(&r, START, 3, 0, 1);
    assert_int_equal(rate_time(&r, 1) - START, 333333333);
    assert_int_equal(rate_time(&r, 2) - START, 666666666);
    assert_int_equal(rate_time(&r, 3) - START, S);
    /* After a billion intervals: exactly 1e9/3 s, where summing the rounded interval
     * would be a third of a second behind. */
    assert_int_equal(rate_time(&r, 3000000000ull) - START, 1000000000ull * S);
    assert_int_equal(rate_time(&r, 3000000001ull) - START, 1000000000ull * S + 333333333);
}

static void intervals_never_drift(void **state)
{
    (void)state;
    static const uint64_t rates[] = {1, 7, 999, 7919, 100000, 1000003, 3000000};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        struct rate r;
        uint64_t R = rates[i];
        rate_init(&r, START, R, 0, 1);
        uint64_t lo = S / R, hi = (S + R - 1) / R;
        uint64_t n = R < 200000 ? R : 200000;
        for (uint64_t k = 0; k < n; k++) {
            uint64_t d = rate_time(&r, k + 1) - rate_time(&r, k);
            assert_true(d == lo || d == hi);
        }
        /* R slots later is exactly one second later, and a thousand seconds later still
         * exactly a thousand seconds. */
        assert_int_equal(rate_time(&r, R) - START, S);
        assert_int_equal(rate_time(&r, 1000 * R) - START, 1000 * S);
    }
}

static void due_counts_slots_at_or_before_now(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    for (int iter = 0; iter < 100000; iter++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t R = 1 + x % 2000000, stride = 1 + (x >> 24) % 8, first = (x >> 32) % stride;
        struct rate r;
        rate_init(&r, START, R, first, stride);
        uint64_t now = START + (x >> 20) % (10 * S);
        uint64_t due = rate_due(&r, now);
        if (due > 0)
            assert_true(rate_time(&r, due - 1) <= now);
        assert_true(rate_time(&r, due) > now);
    }
    struct rate r;
    rate_init(&r, START, 10, 0, 1);
    assert_int_equal(rate_due(&r, START - 1), 0);
    assert_int_equal(rate_due(&r, START), 1); /* slot 0 is due at the start */
    assert_int_equal(rate_due(&r, START + S / 10 - 1), 1);
    assert_int_equal(rate_due(&r, START + S / 10), 2);
}

static void threads_interleave_into_one_schedule(void **state)
{
    (void)state;
    enum { T = 3, R = 1000, N = 3000 };
    struct rate global, th[T];
    rate_init(&global, START, R, 0, 1);
    for (int t = 0; t < T; t++)
        rate_init(&th[t], START, R, (uint64_t)t, T);
    for (uint64_t j = 0; j < N; j++)
        assert_int_equal(rate_time(&th[j % T], j / T), rate_time(&global, j));
    /* At any moment the threads' due slots add up to the global schedule's. */
    for (uint64_t now = START; now < START + 3 * S; now += 777777) {
        uint64_t sum = 0;
        for (int t = 0; t < T; t++)
            sum += rate_due(&th[t], now);
        assert_int_equal(sum, rate_due(&global, now));
    }
}

static void share_splits_slots_over_connections(void **state)
{
    (void)state;
    for (uint64_t total = 0; total < 50; total++) {
        for (uint64_t n = 1; n < 9; n++) {
            uint64_t sum = 0;
            for (uint64_t i = 0; i < n; i++) {
                uint64_t want = 0;
                for (uint64_t k = 0; k < total; k++)
                    want += k % n == i;
                assert_int_equal(rate_share(total, i, n), want);
                sum += rate_share(total, i, n);
            }
            assert_int_equal(sum, total);
        }
    }
}

static void catch_up_after_stall(void **state)
{
    (void)state;
    /* 1000/s; the sender keeps up for 50 ms, stalls until 200 ms, then sends the
     * backlog at once. Latency from intended times: the backlog's first request has
     * waited 149 ms, its last 0 ms; every request is sent exactly once. */
    struct rate r;
    rate_init(&r, START, 1000, 0, 1);
    uint64_t sent = 0, worst = 0, latency_sum = 0;
    for (uint64_t t = 0; t <= 50; t++) {
        uint64_t now = START + t * 1000000;
        uint64_t n = rate_backlog(&r, now);
        assert_int_equal(n, 1);
        uint64_t k = rate_take(&r, n);
        assert_int_equal(rate_time(&r, k), now);
        sent += n;
    }
    uint64_t now = START + 200 * 1000000ull;
    uint64_t n = rate_backlog(&r, now);
    assert_int_equal(n, 150); /* slots 51..200 */
    uint64_t k0 = rate_take(&r, n);
    assert_int_equal(k0, 51);
    for (uint64_t k = k0; k < k0 + n; k++) {
        uint64_t lat = now - rate_time(&r, k);
        assert_int_equal(lat, (200 - k) * 1000000ull);
        latency_sum += lat;
        if (lat > worst)
            worst = lat;
    }
    sent += n;
    assert_int_equal(worst, 149 * 1000000ull);
    assert_int_equal(latency_sum, 149ull * 150 / 2 * 1000000ull);
    assert_int_equal(sent, 201);
    assert_int_equal(rate_backlog(&r, now), 0);
    /* The schedule resumes where it was: the next slot is still at 201 ms. */
    assert_int_equal(rate_next(&r), START + 201 * 1000000ull);
}

static void cap_backlog_drops_only_the_excess(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, START, 100, 0, 1);
    uint64_t now = START + 10 * S; /* 1001 slots due */
    assert_int_equal(rate_cap_backlog(&r, now, 10), 991);
    assert_int_equal(rate_backlog(&r, now), 10);
    assert_int_equal(rate_cap_backlog(&r, now, 10), 0);
    rate_take(&r, 10);
    assert_int_equal(rate_backlog(&r, now), 0);
    assert_int_equal(rate_next(&r), START + 10 * S + S / 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(times_are_exact_multiples),
        cmocka_unit_test(intervals_never_drift),
        cmocka_unit_test(due_counts_slots_at_or_before_now),
        cmocka_unit_test(threads_interleave_into_one_schedule),
        cmocka_unit_test(share_splits_slots_over_connections),
        cmocka_unit_test(catch_up_after_stall),
        cmocka_unit_test(cap_backlog_drops_only_the_excess),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
