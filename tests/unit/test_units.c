/* units: sizes, durations and bounded integers as flags and config files write them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "../../common/units.h"

struct good {
    const char *text;
    uint64_t value;
};

static void check_sizes(const struct good *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 12345;
        int rc = parse_size(g[i].text, &v);
        if (rc != 0 || v != g[i].value)
            fail_msg("parse_size(\"%s\"): rc %d value %llu, want 0 and %llu", g[i].text, rc,
                     (unsigned long long)v, (unsigned long long)g[i].value);
    }
}

static void test_size_good(void **state)
{
    (void)state;
    static const struct good g[] = {
        {"0", 0},
        {"4096", 4096},
        {"64K", 64 * 1024},
        {"64k", 64 * 1024},
        {"64KiB", 64 * 1024},
        {"64kib", 64 * 1024},
        {"64KB", 64 * 1024},
        {"1M", 1024 * 1024},
        {"1MiB", 1024 * 1024},
        {"1m", 1024 * 1024},
        {"2G", 2ull << 30},
        {"2GiB", 2ull << 30},
        {"7b", 7},
        {"7B", 7},
        {"18446744073709551615", UINT64_MAX},
        {"17179869183G", UINT64_MAX - (1ull << 30) + 1}, /* (2^34 - 1) * 2^30 */
        {"18014398509481983K", UINT64_MAX - 1023},      /* (2^54 - 1) * 2^10 */
    };
    check_sizes(g, sizeof g / sizeof g[0]);
}

static void test_size_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "K", "M", "-1", "+1", " 1", "1 ", "1 K", "1X", "1KX", "1Ki", "1KiBB", "1KK",
        "1iB", "1T", "1.5K", "0x10", "1e3",
        "18446744073709551616",     /* > UINT64_MAX */
        "99999999999999999999999K", /* strtoull overflow */
        "17179869184G",             /* 2^34 * 2^30 = 2^64 */
        "18014398509481984K",       /* 2^54 * 2^10 = 2^64 */
        "1Bb", "1bib",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 777;
        int rc = parse_size(bad[i], &v);
        if (rc != -1)
            fail_msg("parse_size(\"%s\") = %d (value %llu), want -1", bad[i], rc,
                     (unsigned long long)v);
    }
}

static void test_duration_good(void **state)
{
    (void)state;
    static const struct good g[] = {
        {"0", 0},
        {"10", 10000},     /* bare number: seconds */
        {"10s", 10000},
        {"500ms", 500},
        {"2m", 120000},
        {"2min", 120000},
        {"1h", 3600000},
        {"1.5s", 1500},
        {"1.5", 1500},
        {"0.5", 500},
        {".25s", 250},
        {"1.", 1000},
        {"2500us", 3},     /* 2.5 ms rounds to nearest */
        {"0.0004s", 0},
        {"86400s", 86400000},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        uint64_t v = 12345;
        int rc = parse_duration_ms(g[i].text, &v);
        if (rc != 0 || v != g[i].value)
            fail_msg("parse_duration_ms(\"%s\"): rc %d value %llu, want 0 and %llu", g[i].text,
                     rc, (unsigned long long)v, (unsigned long long)g[i].value);
    }
}

static void test_duration_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "s", "ms", ".", ".s", "-1", "-1s", "+1s", " 1s", "1s ", "10 s", "10x", "10S",
        "10sec", "1.5.5s", "1hh", "inf", "nan", "1e400", "1e20s", "ms10",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 777;
        int rc = parse_duration_ms(bad[i], &v);
        if (rc != -1)
            fail_msg("parse_duration_ms(\"%s\") = %d (value %llu), want -1", bad[i], rc,
                     (unsigned long long)v);
    }
}

static void test_uint_bounds(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(parse_uint("5", 1, 10, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(parse_uint("1", 1, 10, &v), 0); /* both bounds inclusive */
    assert_int_equal(v, 1);
    assert_int_equal(parse_uint("10", 1, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(parse_uint("0", 1, 10, &v), -1);
    assert_int_equal(parse_uint("11", 1, 10, &v), -1);
    assert_int_equal(parse_uint("0", 0, 0, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(parse_uint("007", 0, 10, &v), 0); /* decimal, not octal */
    assert_int_equal(v, 7);
    assert_int_equal(parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -1);
    assert_int_equal(parse_uint("99999999999999999999999", 0, UINT64_MAX, &v), -1);

    static const char *const bad[] = {"", "-1", "+1", " 1", "1 ", "1x", "0x10", "1.0", "1K", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse_uint(bad[i], 0, UINT64_MAX, &v) != -1)
            fail_msg("parse_uint(\"%s\") accepted", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_good),
        cmocka_unit_test(test_size_bad),
        cmocka_unit_test(test_duration_good),
        cmocka_unit_test(test_duration_bad),
        cmocka_unit_test(test_uint_bounds),
    };
    return cmocka_run_group_tests_name("units", tests, NULL, NULL);
}
