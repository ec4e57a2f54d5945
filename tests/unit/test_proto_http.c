/* proto_http: the load client's HTTP module -- the exact request bytes from the flags,
 * and responses taken from a stream cut at every byte (a head split across reads goes
 * through the connection's buffer), pipelined responses in one read, the verdicts
 * (--expect-status, --expect-body, Non-2xx) and flags (the server closes), 1xx skipped,
 * HEAD, a body that ends with the close, a response the parser rejects. Each read is
 * placed right before a PROT_NONE page (guard.h).
 *
 * The client's sources are compiled in here: unit tests link the server's objects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../client/payload.c"
#include "../../client/proto_framed.c"
#include "../../client/proto_http.c"
#include "../../client/proto_raw.c"
#include "../../client/proto_udp.c"
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

static void build(struct payload *p, struct http_spec *h, int copies)
{
    if (!h->method)
        h->method = "GET";
    if (!h->path)
        h->path = "/";
    if (!h->host[0])
        strcpy(h->host, "127.0.0.1:8080");
    assert_int_equal(payload_init(p, PROTO_HTTP, MODE_UPPER, 0, (size_t)copies, h, 0), 0);
}

/* Feed stream s in reads of `step` bytes (0: one read); the verdicts, one char each:
 * 'o' ok, 'm' mismatch, 'g' garbled (stops), plus 'c' after one with RXF_CLOSE and 'n'
 * after one with RXF_NON2XX. */
static void verdicts(const struct payload *p, const char *s, size_t step, char *out)
{
    struct reply_rx rx = {0};
    size_t n = strlen(s), done = 0, k = 0;
    while (done < n) {
        size_t len = step && n - done > step ? step : n - done;
        const char *d = guard_place(&guard, s + done, len);
        done += len;
        for (;;) {
            int rc = reply_next(p, &rx, &d, &len);
            if (rc == RX_NEED_MORE)
                break;
            out[k++] = rc == RX_OK ? 'o' : rc == RX_MISMATCH ? 'm' : 'g';
            if (rc == RX_GARBLED) {
                done = n;
                break;
            }
            if (rx.flags & RXF_CLOSE)
                out[k++] = 'c';
            if (rx.flags & RXF_NON2XX)
                out[k++] = 'n';
        }
        assert_true(len == 0 || out[k - 1] == 'g');
    }
    out[k] = '\0';
    reply_rx_reset(&rx, 1);
}

/* The same verdicts whatever the reads: one, then every size from 1 to 7 bytes. */
static void expect_verdicts(const struct payload *p, const char *s, const char *want)
{
    char got[256];
    for (size_t step = 0; step <= 7; step++) {
        verdicts(p, s, step, got);
        if (strcmp(got, want) != 0)
            fail_msg("reads of %zu: got \"%s\", want \"%s\"", step, got, want);
    }
}

static void test_request_bytes(void **state)
{
    (void)state;
    struct http_spec h = {.method = "POST", .path = "/echo?x=1", .body = "hi", .body_len = 2,
                          .headers = {"X-A: 1", "Content-Type: text/plain"}, .n_headers = 2};
    struct payload p;
    build(&p, &h, 2);
    const char *want = "POST /echo?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-A: 1\r\n"
                       "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi";
    assert_int_equal(p.req_len, strlen(want));
    assert_memory_equal(p.req, want, p.req_len);
    assert_memory_equal(p.reqs + p.req_len, want, p.req_len);
    payload_free(&p);
    struct http_spec g = {.method = "HEAD", .headers = {"host: other"}, .n_headers = 1};
    build(&p, &g, 1);
    want = "HEAD / HTTP/1.1\r\nhost: other\r\n\r\n";
    assert_int_equal(p.req_len, strlen(want));
    assert_memory_equal(p.req, want, p.req_len);
    assert_int_equal(p.head_request, 1);
    payload_free(&p);
}

static void test_pipelined_and_cut(void **state)
{
    (void)state;
    struct http_spec h = {0};
    struct payload p;
    build(&p, &h, 1);
    expect_verdicts(&p,
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                    "HTTP/1.1 100 Continue\r\n\r\n"
                    "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "3\r\nnot\r\n0\r\n\r\n"
                    "HTTP/1.1 204 No Content\r\n\r\n"
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                    "oonooc");
    expect_verdicts(&p, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\n\n",
                    "og");
    expect_verdicts(&p, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                    "g");
    payload_free(&p);
}

static void test_expectations(void **state)
{
    (void)state;
    struct http_spec h = {.expect_body = "ok", .expect_status = 1};
    h.ok_status[200 / 64] |= UINT64_C(1) << (200 % 64);
    struct payload p;
    build(&p, &h, 1);
    expect_verdicts(&p,
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nko"
                    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\no"
                    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nokk"
                    "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\no\r\n1\r\nk\r\n0\r\n\r\n",
                    "ommmmo");
    payload_free(&p);
}

static void test_head_and_close(void **state)
{
    (void)state;
    struct http_spec h = {.method = "HEAD"};
    struct payload p;
    build(&p, &h, 1);
    expect_verdicts(&p, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", "oo");
    payload_free(&p);
    struct http_spec g = {0};
    build(&p, &g, 1);
    struct reply_rx rx = {0};
    const char *s = "HTTP/1.0 200 OK\r\n\r\nuntil the close";
    size_t len = strlen(s);
    const char *d = guard_place(&guard, s, len);
    assert_int_equal(reply_next(&p, &rx, &d, &len), RX_NEED_MORE);
    assert_int_equal(len, 0);
    assert_int_equal(p.ops->at_eof(&p, &rx), RX_OK);
    assert_true(rx.flags & RXF_CLOSE);
    assert_int_equal(p.ops->at_eof(&p, &rx), RX_NEED_MORE); /* nothing pending now */
    reply_rx_reset(&rx, 1);
    payload_free(&p);
}

static void test_guard_catches_overread(void **state)
{
    (void)state;
    assert_true(guard_faults_past_end(&guard));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_bytes),
        cmocka_unit_test(test_pipelined_and_cut),
        cmocka_unit_test(test_expectations),
        cmocka_unit_test(test_head_and_close),
        cmocka_unit_test(test_guard_catches_overread),
    };
    return cmocka_run_group_tests(tests, setup_guard, teardown_guard);
}
