/* mode: echo copies, upper changes exactly a-z, both work in place. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/mode.h"

static unsigned char expect_upper(unsigned char c)
{
    return (c >= 'a' && c <= 'z') ? (unsigned char)(c - 'a' + 'A') : c;
}

static void fill_all_bytes(unsigned char *b)
{
    for (int i = 0; i < 256; i++)
        b[i] = (unsigned char)i;
}

static void test_upper_all_bytes(void **state)
{
    (void)state;
    unsigned char src[256], dst[256], copy[256];
    fill_all_bytes(src);
    memcpy(copy, src, sizeof src);
    memset(dst, 0xAA, sizeof dst);
    mode_apply(MODE_UPPER, (const char *)src, sizeof src, (char *)dst);
    for (int i = 0; i < 256; i++)
        if (dst[i] != expect_upper((unsigned char)i))
            fail_msg("upper(0x%02x) = 0x%02x, want 0x%02x", i, dst[i],
                     expect_upper((unsigned char)i));
    /* The source is left alone. */
    assert_memory_equal(src, copy, sizeof src);
}

static void test_upper_in_place(void **state)
{
    (void)state;
    unsigned char b[256];
    fill_all_bytes(b);
    mode_apply(MODE_UPPER, (const char *)b, sizeof b, (char *)b);
    for (int i = 0; i < 256; i++)
        assert_int_equal(b[i], expect_upper((unsigned char)i));
    char s[] = "Hello, wharf! {zap} `az` AZ @[";
    mode_apply(MODE_UPPER, s, strlen(s), s);
    assert_string_equal(s, "HELLO, WHARF! {ZAP} `AZ` AZ @[");
}

/* Lengths and offsets that are not multiples of any word size, so a vectorised loop
 * that handles a tail badly shows up; only the given range is written. */
static void test_upper_lengths(void **state)
{
    (void)state;
    char src[300], dst[310];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (char)('a' + i % 30); /* a-z and a few of { | } ~ */
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len <= 290; len++) {
            memset(dst, '#', sizeof dst);
            mode_apply(MODE_UPPER, src + off, len, dst + 1);
            assert_int_equal(dst[0], '#');
            for (size_t i = 0; i < len; i++)
                assert_int_equal((unsigned char)dst[1 + i],
                                 expect_upper((unsigned char)src[off + i]));
            assert_int_equal(dst[1 + len], '#');
        }
    }
}

static void test_echo(void **state)
{
    (void)state;
    unsigned char src[256], dst[258];
    fill_all_bytes(src);
    memset(dst, 0x55, sizeof dst);
    mode_apply(MODE_ECHO, (const char *)src, sizeof src, (char *)dst + 1);
    assert_memory_equal(dst + 1, src, sizeof src);
    assert_int_equal(dst[0], 0x55);
    assert_int_equal(dst[257], 0x55);
    /* In place: unchanged. */
    mode_apply(MODE_ECHO, (const char *)src, sizeof src, (char *)src);
    for (int i = 0; i < 256; i++)
        assert_int_equal(src[i], i);
    /* Zero length touches nothing. */
    mode_apply(MODE_ECHO, (const char *)src, 0, (char *)dst);
    mode_apply(MODE_UPPER, (const char *)src, 0, (char *)dst);
    assert_int_equal(dst[0], 0x55);
}

static void test_parse_and_name(void **state)
{
    (void)state;
    enum mode m = MODE_UPPER;
    assert_int_equal(mode_parse("echo", &m), 0);
    assert_int_equal(m, MODE_ECHO);
    assert_int_equal(mode_parse("upper", &m), 0);
    assert_int_equal(m, MODE_UPPER);
    assert_int_equal(mode_parse("", &m), -1);
    assert_int_equal(mode_parse("Upper", &m), -1);
    assert_int_equal(mode_parse("echo ", &m), -1);
    assert_int_equal(mode_parse("lower", &m), -1);
    assert_string_equal(mode_name(MODE_ECHO), "echo");
    assert_string_equal(mode_name(MODE_UPPER), "upper");
    /* Round trip. */
    assert_int_equal(mode_parse(mode_name(MODE_UPPER), &m), 0);
    assert_int_equal(m, MODE_UPPER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upper_all_bytes),
        cmocka_unit_test(test_upper_in_place),
        cmocka_unit_test(test_upper_lengths),
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_parse_and_name),
    };
    return cmocka_run_group_tests_name("mode", tests, NULL, NULL);
}
