/* http_resp: response heads and bodies from exact bytes -- framing by Content-Length,
 * chunked and the close, HTTP/1.0, HEAD, 1xx/204/304, Connection -- every malformed
 * shape with its error, every prefix of a valid response as NEED_MORE, and bodies fed
 * in one piece and a byte at a time. Every parse sees its bytes end right at a
 * PROT_NONE page (guard.h), so an over-read faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/http_resp.h"
#include "guard.h"

static struct guard guard;

static int setup_guard(void **state)
{
    (void)state;
    return guard_open(&guard, 64 * 1024);
}

static int teardown_guard(void **state)
{
    (void)state;
    guard_close(&guard);
    return 0;
}

static int head_n(const char *s, size_t n, int head_req, struct http_resp *r)
{
    const char *p = guard_place(&guard, s, n);
    assert_non_null(p);
    memset(r, 0x5a, sizeof *r);
    return http_resp_head(p, n, head_req, r);
}

static int head(const char *s, struct http_resp *r) { return head_n(s, strlen(s), 0, r); }

/* The decoded body, collected. */
struct sink {
    char b[4096];
    size_t n;
};

static void collect(void *ctx, const char *p, size_t n)
{
    struct sink *s = ctx;
    assert_true(s->n + n <= sizeof s->b);
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

/* Feed body bytes s (placed at the guard) in pieces of `step` (0: all at once); the
 * result, the bytes used in all, and the decoded body in sink. */
static int body_feed(const struct http_resp *r, const char *s, size_t n, size_t step,
                     size_t *used_all, struct sink *sink)
{
    struct http_body b;
    http_body_start(&b, r);
    sink->n = 0;
    *used_all = 0;
    int rc = HRESP_NEED_MORE;
    while (*used_all < n || n == 0) {
        size_t k = step && n - *used_all > step ? step : n - *used_all, used;
        const char *p = guard_place(&guard, s + *used_all, k);
        rc = http_body_feed(&b, p, k, &used, collect, sink);
        assert_true(used <= k);
        *used_all += used;
        if (rc != HRESP_NEED_MORE || n == 0)
            break;
        assert_int_equal(used, k);
    }
    return rc;
}

static void test_content_length(void **state)
{
    (void)state;
    struct http_resp r;
    const char *s = "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1";
    assert_int_equal(head(s, &r), HRESP_DONE);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.close, 0);
    assert_int_equal(r.interim, 0);
    assert_int_equal(r.body, HB_LENGTH);
    assert_int_equal(r.length, 5);
    assert_int_equal(r.head_len, 49);
    struct sink sk;
    size_t used;
    for (size_t step = 0; step <= 2; step++) {
        assert_int_equal(body_feed(&r, s + r.head_len, strlen(s) - r.head_len, step, &used, &sk),
                         HRESP_DONE);
        assert_int_equal(used, 5);
        assert_memory_equal(sk.b, "hello", 5);
    }
}

static void test_every_prefix_needs_more(void **state)
{
    (void)state;
    struct http_resp r;
    const char *s = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX-A: b c\r\n\r\n";
    size_t n = strlen(s);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(head_n(s, k, 0, &r), HRESP_NEED_MORE);
    assert_int_equal(head_n(s, n, 0, &r), HRESP_DONE);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.head_len, n);
}

static void test_chunked(void **state)
{
    (void)state;
    struct http_resp r;
    const char *s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5;name=val\r\nhello\r\nA\r\n, chunked!\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    assert_int_equal(head(s, &r), HRESP_DONE);
    assert_int_equal(r.body, HB_CHUNKED);
    const char *b = s + r.head_len;
    size_t n = strlen(b);
    struct sink sk;
    size_t used;
    for (size_t step = 0; step <= 3; step++) {
        assert_int_equal(body_feed(&r, b, n, step, &used, &sk), HRESP_DONE);
        assert_int_equal(used, n - 4);
        assert_int_equal(sk.n, 15);
        assert_memory_equal(sk.b, "hello, chunked!", 15);
    }
}

static void test_chunked_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "g\r\n",                   /* not hex */
        "\r\n",                    /* no digits */
        "1 \r\n",                  /* white space */
        "1\n",                     /* bare LF */
        "1000000000000000\r\n",    /* 16 digits */
        "2\r\nabX\r\n",            /* data longer than the size */
        "2\r\nab\rX",              /* CR without LF */
        "0\r\n:bad\r\n\r\n",       /* trailer name empty */
        "0\r\nX\x01\r\n\r\n",      /* control character in a trailer */
        "0\r\n\rX",                /* end without LF */
        "1;a b\r\nx\r\n0\r\n\r\n", /* space in an extension */
    };
    struct http_resp r;
    assert_int_equal(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &r),
                     HRESP_DONE);
    struct sink sk;
    size_t used;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (size_t step = 0; step <= 1; step++)
            if (body_feed(&r, bad[i], strlen(bad[i]), step, &used, &sk) != HRESP_ERR_CHUNK)
                fail_msg("accepted chunked body #%zu", i);
}

static void test_framing_and_close(void **state)
{
    (void)state;
    struct http_resp r;
    assert_int_equal(head("HTTP/1.0 200 OK\r\n\r\n", &r), HRESP_DONE);
    assert_int_equal(r.minor, 0);
    assert_int_equal(r.body, HB_UNTIL_CLOSE);
    assert_int_equal(r.close, 1);
    assert_int_equal(head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\n",
                          &r),
                     HRESP_DONE);
    assert_int_equal(r.close, 0);
    assert_int_equal(head("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", &r), HRESP_DONE);
    assert_int_equal(r.close, 1);
    assert_int_equal(r.body, HB_LENGTH);
    assert_int_equal(head("HTTP/1.1 200 OK\r\nConnection: keep-alive, cLoSe\r\n"
                          "Content-Length: 0\r\n\r\n", &r), HRESP_DONE);
    assert_int_equal(r.close, 1);
    assert_int_equal(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &r), HRESP_DONE);
    assert_int_equal(r.body, HB_UNTIL_CLOSE);
    assert_int_equal(r.close, 1);
    assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n",
                          &r), HRESP_DONE);
    assert_int_equal(r.length, 7);
    assert_int_equal(head("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n", &r), HRESP_DONE);
    assert_int_equal(head("HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\n", &r), HRESP_DONE);
}

static void test_no_body(void **state)
{
    (void)state;
    struct http_resp r;
    const char *cl = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    assert_int_equal(head_n(cl, strlen(cl), 1, &r), HRESP_DONE);
    assert_int_equal(r.body, HB_NONE);
    assert_int_equal(head("HTTP/1.1 204 No Content\r\n\r\n", &r), HRESP_DONE);
    assert_int_equal(r.body, HB_NONE);
    assert_int_equal(r.close, 0);
    assert_int_equal(head("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", &r),
                     HRESP_DONE);
    assert_int_equal(r.body, HB_NONE);
    assert_int_equal(head("HTTP/1.1 100 Continue\r\n\r\n", &r), HRESP_DONE);
    assert_int_equal(r.interim, 1);
    assert_int_equal(r.body, HB_NONE);
    struct sink sk;
    size_t used;
    assert_int_equal(body_feed(&r, "HTTP", 4, 0, &used, &sk), HRESP_DONE);
    assert_int_equal(used, 0);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
    } cases[] = {
        {"HTTP/1.1 200 OK\n\r\n", HRESP_ERR_STATUS},
        {"HTTP/2.0 200 OK\r\n\r\n", HRESP_ERR_STATUS},
        {"HTTP/1.2 200 OK\r\n\r\n", HRESP_ERR_STATUS},
        {"HTTP/1.1 099 OK\r\n\r\n", HRESP_ERR_STATUS},
        {"HTTP/1.1 600 OK\r\n\r\n", HRESP_ERR_STATUS},
        {"HTTP/1.1 20x OK\r\n\r\n", HRESP_ERR_STATUS},
        {"HTTP/1.1  200 OK\r\n\r\n", HRESP_ERR_STATUS},
        {"HTTP/1.1 2000 OK\r\n\r\n", HRESP_ERR_STATUS},
        {"http/1.1 200 OK\r\n", HRESP_ERR_STATUS},
        {"XTTP", HRESP_ERR_STATUS},
        {"HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n", HRESP_ERR_FIELD},
        {"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", HRESP_ERR_FIELD},
        {"HTTP/1.1 200 OK\r\nA: b\rC: d\r\n\r\n", HRESP_ERR_FIELD},
        {"HTTP/1.1 200 OK\rX\r\n\r\n", HRESP_ERR_STATUS},
        {"HTTP/1.1 200 OK\r\nA : b\r\n\r\n", HRESP_ERR_FIELD},
        {"HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n", HRESP_ERR_FIELD},
        {"HTTP/1.1 200 OK\r\n: b\r\n\r\n", HRESP_ERR_FIELD},
        {"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", HRESP_ERR_FIELD},
        {"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", HRESP_ERR_LENGTH},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", HRESP_ERR_LENGTH},
        {"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", HRESP_ERR_LENGTH},
        {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", HRESP_ERR_LENGTH},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HRESP_ERR_LENGTH},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         HRESP_ERR_LENGTH},
        {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HRESP_ERR_LENGTH},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HRESP_ERR_LENGTH},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
         HRESP_ERR_LENGTH},
        {"HTTP/1.1 101 Switching Protocols\r\n\r\n", HRESP_ERR_UPGRADE},
    };
    struct http_resp r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = head(cases[i].s, &r);
        if (rc != cases[i].rc)
            fail_msg("case %zu: got %d (%s), want %d", i, rc, http_resp_error_name(rc),
                     cases[i].rc);
    }
}

static void test_limits(void **state)
{
    (void)state;
    struct http_resp r;
    static char big[HRESP_MAX_HEAD + 64];
    /* One field that never ends: too large once HRESP_MAX_HEAD bytes are there. */
    size_t n = (size_t)snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nX: ");
    memset(big + n, 'a', sizeof big - n);
    assert_int_equal(head_n(big, HRESP_MAX_HEAD - 1, 0, &r), HRESP_NEED_MORE);
    assert_int_equal(head_n(big, HRESP_MAX_HEAD, 0, &r), HRESP_ERR_TOO_LARGE);
    assert_int_equal(head_n(big, sizeof big, 0, &r), HRESP_ERR_TOO_LARGE);
    /* Too many fields. */
    n = (size_t)snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i <= HRESP_MAX_FIELDS; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "A%d: b\r\n", i);
    n += (size_t)snprintf(big + n, sizeof big - n, "\r\n");
    assert_int_equal(head_n(big, n, 0, &r), HRESP_ERR_TOO_LARGE);
    /* A chunk-size line with an endless extension. */
    struct http_body b;
    struct http_resp c = {.body = HB_CHUNKED};
    http_body_start(&b, &c);
    memset(big, 'a', sizeof big);
    big[0] = '1';
    big[1] = ';';
    size_t used;
    assert_int_equal(http_body_feed(&b, guard_place(&guard, big, 4096), 4096, &used, NULL, NULL),
                     HRESP_ERR_CHUNK);
}

static void test_guard_catches_overread(void **state)
{
    (void)state;
    assert_true(guard_faults_past_end(&guard));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_every_prefix_needs_more),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunked_errors),
        cmocka_unit_test(test_framing_and_close),
        cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_guard_catches_overread),
    };
    return cmocka_run_group_tests(tests, setup_guard, teardown_guard);
}
