/* hdr_codec: HdrHistogram V2 bytes for a small histogram, round trips, foreign layouts,
 * and bad input refused (also right before a guard page). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/hdr_codec.h"
#include "guard.h"

static struct hist *new_hist(void)
{
    struct hist *h = malloc(sizeof *h);
    assert_non_null(h);
    hist_init(h);
    return h;
}

/* 1 twice, 3, 300: counts at 1, 3 and 278 (300 is in the bucket [300, 302)). */
static struct hist *small_hist(void)
{
    struct hist *h = new_hist();
    hist_record(h, 1);
    hist_record(h, 1);
    hist_record(h, 3);
    hist_record(h, 300);
    return h;
}

static void test_exact_bytes(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0x1c, 0x84, 0x93, 0x13, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 2, /* cookie, len, 0, 2 */
        0, 0, 0, 0, 0, 0, 0, 1,                                    /* lowest */
        0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff,                      /* highest 2^40 - 1 */
        0x3f, 0xf0, 0, 0, 0, 0, 0, 0,                               /* 1.0 */
        /* index 0: one zero; 1: 2; 2: one zero; 3: 1; 274 zeros (-274 -> 547); 278: 1 */
        0x00, 0x04, 0x00, 0x02, 0xa3, 0x04, 0x02,
    };
    struct hist *h = small_hist();
    uint8_t *b;
    size_t n;
    assert_int_equal(hdr_encode_raw(h, &b, &n), 0);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(b, want, sizeof want);
    struct hist *d = new_hist();
    char err[128];
    assert_int_equal(hdr_decode(b, n, d, err, sizeof err), 0);
    assert_memory_equal(d->buckets, h->buckets, sizeof h->buckets);
    assert_int_equal(d->count, 4);
    assert_int_equal(d->min, 1);
    assert_int_equal(d->max, 301); /* the highest value of 300's bucket */
    free(b);
    free(h);
    free(d);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct hist *h = new_hist(), *d = new_hist();
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        hist_record(h, (x % 1000000) * (1 + x % 1000)); /* 0 .. 1e9 ns */
    }
    hist_record_n(h, HIST_MAX_NS + 5, 3); /* the last bucket */
    char *s = hdr_encode_b64(h);
    assert_non_null(s);
    assert_memory_equal(s, "HISTF", 5); /* what HdrHistogram's logs begin with */
    char err[128];
    assert_int_equal(hdr_decode_b64(s, strlen(s), d, err, sizeof err), 0);
    assert_memory_equal(d->buckets, h->buckets, sizeof h->buckets);
    assert_int_equal(d->count, h->count);
    for (double p = 1; p < 100; p += 7.5) {
        uint64_t a = hist_percentile(h, p), b = hist_percentile(d, p);
        assert_true(hist_bucket_of(a) == hist_bucket_of(b));
    }
    free(s);
    free(h);
    free(d);
}

/* Digits 3 (1024 half sub-buckets): index 1500 is the value 1500, which lands in the
 * wharf bucket holding 1500. */
static void test_foreign_layout(void **state)
{
    (void)state;
    uint8_t b[48] = {0x1c, 0x84, 0x93, 0x13, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 3,
                     0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x98, 0x96, 0x80,
                     0x3f, 0xf0, 0, 0, 0, 0, 0, 0};
    /* -1500 zeros -> 2999 = 0xbb7: b7 17; then 6 -> 12 */
    uint8_t pay[] = {0xb7, 0x17, 0x0c};
    memcpy(b + 40, pay, sizeof pay);
    b[7] = sizeof pay;
    struct hist *d = new_hist();
    char err[128];
    assert_int_equal(hdr_decode(b, 40 + sizeof pay, d, err, sizeof err), 0);
    assert_int_equal(d->count, 6);
    assert_int_equal(d->buckets[hist_bucket_of(1500)], 6);
    free(d);
}

static void expect_refused(const uint8_t *b, size_t n, const char *why)
{
    struct hist *d = new_hist();
    char err[128] = "";
    assert_int_equal(hdr_decode(b, n, d, err, sizeof err), -1);
    assert_non_null(strstr(err, why));
    assert_int_equal(d->count, 0);
    free(d);
}

static void test_corrupt(void **state)
{
    (void)state;
    struct hist *h = small_hist();
    uint8_t *raw, *z;
    size_t nraw, nz;
    assert_int_equal(hdr_encode_raw(h, &raw, &nraw), 0);
    assert_int_equal(hdr_encode(h, &z, &nz), 0);
    expect_refused(raw, nraw - 1, "payload length");
    expect_refused(raw, 20, "shorter than its header");
    raw[4 + 3] = 5; /* payload claims 5 bytes, we pass 5: cut inside 547 */
    expect_refused(raw, 45, "cut inside a count");
    raw[7] = 7;
    raw[15] = 9; /* 9 significant digits */
    expect_refused(raw, nraw, "out of range");
    expect_refused(z, nz - 1, "compressed histogram length");
    z[nz - 1] ^= 0xff; /* the adler32 check */
    expect_refused(z, nz, "does not inflate");
    z[0] = 0;
    expect_refused(z, nz, "not an HdrHistogram");
    struct hist *d = new_hist();
    char err[128];
    assert_int_equal(hdr_decode_b64("HISTF*==", 8, d, err, sizeof err), -1);
    assert_int_equal(hdr_decode_b64("HISTF", 5, d, err, sizeof err), -1);
    free(raw);
    free(z);
    free(h);
    free(d);
}

/* Every prefix of a valid encoding ends right before an unmapped page: each is refused
 * and none reads past its end. Every single flipped byte is refused or decodes. */
static void test_guarded_prefixes(void **state)
{
    (void)state;
    struct hist *h = small_hist(), *d = new_hist();
    uint8_t *z;
    size_t nz;
    char err[128];
    assert_int_equal(hdr_encode(h, &z, &nz), 0);
    struct guard g = {0};
    assert_int_equal(guard_open(&g, 4096), 0);
    for (size_t n = 0; n < nz; n++) {
        const uint8_t *p = (const uint8_t *)guard_place(&g, (const char *)z, n);
        assert_int_equal(hdr_decode(p, n, d, err, sizeof err), -1);
    }
    const uint8_t *p = (const uint8_t *)guard_place(&g, (const char *)z, nz);
    assert_int_equal(hdr_decode(p, nz, d, err, sizeof err), 0);
    for (size_t i = 0; i < nz; i++) {
        uint8_t *q = (uint8_t *)guard_place(&g, (const char *)z, nz);
        q[i] ^= 0x5a;
        int rc = hdr_decode(q, nz, d, err, sizeof err);
        assert_true(rc == 0 || rc == -1);
    }
    guard_close(&g);
    free(z);
    free(h);
    free(d);
}

static void test_base64(void **state)
{
    (void)state;
    char *s = hdr_b64_encode((const uint8_t *)"wharf!", 5);
    assert_string_equal(s, "d2hhcmY=");
    uint8_t out[8];
    assert_int_equal(hdr_b64_decode(s, strlen(s), out), 5);
    assert_memory_equal(out, "wharf", 5);
    assert_int_equal(hdr_b64_decode("d2hh=mY=", 8, out), -1);
    assert_int_equal(hdr_b64_decode("d2h", 3, out), -1);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_bytes),     cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_foreign_layout),  cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_guarded_prefixes), cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
