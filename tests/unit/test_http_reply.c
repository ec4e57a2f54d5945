/* http_reply: the exact bytes of the responses wharfd writes (status line, headers,
 * Content-Length, Connection, Allow, HEAD without a body), and the Date header as an
 * IMF-fixdate (RFC 9110 5.6.7) that changes only when the second does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../server/http_reply.h"

/* 2023-11-14 22:13:20 UTC, a Tuesday. */
#define T0 ((time_t)1700000000)
#define DATE0 "Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"

static void expect_bytes(const struct buf *out, const char *want)
{
    size_t n = strlen(want);
    if (buf_len(out) != n || memcmp(buf_head(out), want, n) != 0)
        fail_msg("wrote %zu bytes:\n%.*s\nwant %zu bytes:\n%s", buf_len(out),
                 (int)buf_len(out), buf_head(out), n, want);
}

/* "Date: " IMF-fixdate CRLF: "Sun, 06 Nov 1994 08:49:37 GMT" is 29 characters. */
static void check_imf_fixdate(const char *line, size_t len)
{
    static const char *const days = "Mon Tue Wed Thu Fri Sat Sun";
    static const char *const months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec";
    assert_int_equal(len, 6 + 29 + 2);
    assert_memory_equal(line, "Date: ", 6);
    const char *d = line + 6;
    char day[4], mon[4];
    memcpy(day, d, 3), day[3] = '\0';
    memcpy(mon, d + 8, 3), mon[3] = '\0';
    assert_non_null(strstr(days, day));
    assert_non_null(strstr(months, mon));
    assert_memory_equal(d + 3, ", ", 2);
    const char *digits = "0123456789";
    static const int digit_at[] = {5, 6, 12, 13, 14, 15, 17, 18, 20, 21, 23, 24};
    for (size_t i = 0; i < sizeof digit_at / sizeof digit_at[0]; i++)
        assert_non_null(memchr(digits, d[digit_at[i]], 10));
    assert_int_equal(d[7], ' ');
    assert_int_equal(d[11], ' ');
    assert_int_equal(d[16], ' ');
    assert_int_equal(d[19], ':');
    assert_int_equal(d[22], ':');
    assert_memory_equal(d + 25, " GMT\r\n", 6);
}

static void test_date_header(void **state)
{
    (void)state;
    struct http_cache hc = {0};
    http_cache_refresh(&hc, T0);
    assert_int_equal(hc.date_len, strlen(DATE0));
    assert_memory_equal(hc.date, DATE0, hc.date_len);
    check_imf_fixdate(hc.date, hc.date_len);
    /* Every day of a week, both ends of the month and year, single-digit fields. */
    static const time_t more[] = {0, 946684799, 951782400, 1704067199, 4102444800};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        http_cache_refresh(&hc, more[i]);
        check_imf_fixdate(hc.date, hc.date_len);
    }
    http_cache_refresh(&hc, 0);
    assert_memory_equal(hc.date, "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n", hc.date_len);
    for (time_t t = T0; t < T0 + 7 * 86400; t += 86400) {
        http_cache_refresh(&hc, t);
        check_imf_fixdate(hc.date, hc.date_len);
    }
}

static void test_cache_changes_with_the_second(void **state)
{
    (void)state;
    struct http_cache hc = {0};
    http_cache_refresh(&hc, T0);
    /* The same second again leaves the text alone (mark it to see). */
    hc.date[6] = 'X';
    http_cache_refresh(&hc, T0);
    assert_int_equal(hc.date[6], 'X');
    http_cache_refresh(&hc, T0 + 1);
    assert_memory_equal(hc.date, "Date: Tue, 14 Nov 2023 22:13:21 GMT\r\n", hc.date_len);
}

static void test_hello(void **state)
{
    (void)state;
    struct http_cache hc = {0};
    struct buf out = {0};
    http_cache_refresh(&hc, T0);
    assert_int_equal(http_reply_hello(&out, &hc, 0), 0);
    expect_bytes(&out, "HTTP/1.1 200 OK\r\nServer: wharf\r\n" DATE0
                       "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!");
    /* Pipelined: a second one is appended, not written over the first. */
    assert_int_equal(http_reply_hello(&out, &hc, 0), 0);
    assert_int_equal(buf_len(&out), 2 * hc.hello_len);
    assert_memory_equal(buf_head(&out) + hc.hello_len, hc.hello, hc.hello_len);
    buf_release(&out);
}

/* The canned connection-close answer is byte for byte what http_reply formats. */
static void test_hello_close(void **state)
{
    (void)state;
    struct http_cache hc = {0};
    struct buf canned = {0}, formatted = {0};
    http_cache_refresh(&hc, T0);
    assert_int_equal(http_reply_hello(&canned, &hc, REPLY_CLOSE), 0);
    assert_int_equal(http_reply(&formatted, &hc, 200, "text/plain", HELLO_BODY,
                                sizeof HELLO_BODY - 1, REPLY_CLOSE, NULL), 0);
    assert_int_equal(buf_len(&canned), buf_len(&formatted));
    assert_memory_equal(buf_head(&canned), buf_head(&formatted), buf_len(&formatted));
    expect_bytes(&canned, "HTTP/1.1 200 OK\r\nServer: wharf\r\n" DATE0
                          "Content-Type: text/plain\r\nContent-Length: 13\r\n"
                          "Connection: close\r\n\r\nHello, World!");
    buf_release(&canned);
    buf_release(&formatted);
}

static void test_reply_bytes(void **state)
{
    (void)state;
    struct http_cache hc = {0};
    struct buf out = {0};
    http_cache_refresh(&hc, T0);
    assert_int_equal(http_reply(&out, &hc, 200, "application/json", "{}\n", 3, 0, NULL), 0);
    expect_bytes(&out, "HTTP/1.1 200 OK\r\nServer: wharf\r\n" DATE0
                       "Content-Type: application/json\r\nContent-Length: 3\r\n\r\n{}\n");
    buf_release(&out);

    assert_int_equal(http_reply(&out, &hc, 404, "text/plain", "not found\n", 10, REPLY_CLOSE,
                                NULL), 0);
    expect_bytes(&out, "HTTP/1.1 404 Not Found\r\nServer: wharf\r\n" DATE0
                       "Content-Type: text/plain\r\nContent-Length: 10\r\n"
                       "Connection: close\r\n\r\nnot found\n");
    buf_release(&out);

    assert_int_equal(http_reply(&out, &hc, 405, "text/plain", "", 0, 0, "GET, HEAD"), 0);
    expect_bytes(&out, "HTTP/1.1 405 Method Not Allowed\r\nServer: wharf\r\n" DATE0
                       "Content-Type: text/plain\r\nContent-Length: 0\r\n"
                       "Allow: GET, HEAD\r\n\r\n");
    buf_release(&out);
}

static void test_keepalive_for_http10(void **state)
{
    (void)state;
    struct http_cache hc = {0};
    struct buf out = {0};
    http_cache_refresh(&hc, T0);
    assert_int_equal(http_reply(&out, &hc, 200, "text/plain", "ab", 2, REPLY_KEEPALIVE_10,
                                NULL), 0);
    expect_bytes(&out, "HTTP/1.1 200 OK\r\nServer: wharf\r\n" DATE0
                       "Content-Type: text/plain\r\nContent-Length: 2\r\n"
                       "Connection: keep-alive\r\n\r\nab");
    buf_release(&out);
    /* close wins when both are asked for */
    assert_int_equal(http_reply(&out, &hc, 200, "text/plain", "ab", 2,
                                REPLY_KEEPALIVE_10 | REPLY_CLOSE, NULL), 0);
    assert_non_null(memmem(buf_head(&out), buf_len(&out), "Connection: close\r\n", 19));
    assert_null(memmem(buf_head(&out), buf_len(&out), "keep-alive", 10));
    buf_release(&out);
}

/* HEAD: the headers a GET would get, Content-Length included, and no body. */
static void test_head_has_no_body(void **state)
{
    (void)state;
    struct http_cache hc = {0};
    struct buf out = {0};
    http_cache_refresh(&hc, T0);
    char *dst = (char *)&out; /* anything but NULL */
    assert_int_equal(http_reply_begin(&out, &hc, 200, "text/plain", 13, REPLY_HEAD, NULL, &dst),
                     0);
    assert_null(dst);
    expect_bytes(&out, "HTTP/1.1 200 OK\r\nServer: wharf\r\n" DATE0
                       "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n");
    buf_release(&out);
    assert_int_equal(http_reply(&out, &hc, 200, "text/plain", HELLO_BODY, 13,
                                REPLY_HEAD | REPLY_CLOSE, NULL), 0);
    expect_bytes(&out, "HTTP/1.1 200 OK\r\nServer: wharf\r\n" DATE0
                       "Content-Type: text/plain\r\nContent-Length: 13\r\n"
                       "Connection: close\r\n\r\n");
    buf_release(&out);
}

/* begin reserves the body's room after the headers; the caller fills it in place. */
static void test_begin_then_fill(void **state)
{
    (void)state;
    struct http_cache hc = {0};
    struct buf out = {0};
    http_cache_refresh(&hc, T0);
    assert_int_equal(buf_append(&out, "prev", 4), 0);
    char *dst = NULL;
    assert_int_equal(http_reply_begin(&out, &hc, 413, "text/plain", 5000, REPLY_CLOSE, NULL,
                                      &dst), 0);
    assert_non_null(dst);
    assert_ptr_equal(dst + 5000, buf_head(&out) + buf_len(&out));
    memset(dst, 'x', 5000);
    const char *want = "prevHTTP/1.1 413 Content Too Large\r\n";
    assert_memory_equal(buf_head(&out), want, strlen(want));
    assert_non_null(memmem(buf_head(&out), buf_len(&out), "Content-Length: 5000\r\n", 22));
    buf_release(&out);
}

static void test_continue_and_status_text(void **state)
{
    (void)state;
    struct buf out = {0};
    assert_int_equal(http_reply_continue(&out), 0);
    expect_bytes(&out, "HTTP/1.1 100 Continue\r\n\r\n");
    buf_release(&out);
    static const struct { int code; const char *text; } rows[] = {
        {200, "OK"}, {400, "Bad Request"}, {403, "Forbidden"}, {404, "Not Found"},
        {408, "Request Timeout"}, {413, "Content Too Large"},
        {431, "Request Header Fields Too Large"}, {500, "Internal Server Error"},
        {503, "Service Unavailable"}, {505, "HTTP Version Not Supported"}, {299, "Unknown"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_string_equal(http_status_text(rows[i].code), rows[i].text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_header),
        cmocka_unit_test(test_cache_changes_with_the_second),
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_hello_close),
        cmocka_unit_test(test_reply_bytes),
        cmocka_unit_test(test_keepalive_for_http10),
        cmocka_unit_test(test_head_has_no_body),
        cmocka_unit_test(test_begin_then_fill),
        cmocka_unit_test(test_continue_and_status_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
