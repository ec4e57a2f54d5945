/* http_parse: valid requests, pipelining, every split of a stream, malformed and
 * oversized input with the exact status, chunked bodies, resume hints and over-reads.
 *
 * The simulator parses the way server/handler.c does: it keeps unconsumed bytes,
 * appends each new read, parses again from the request boundary with the connection's
 * codec_state, and writes what came out as a text log. Each parse call sees a private
 * copy of its input ending at a PROT_NONE page (guard.h) or at the end of an exactly
 * sized heap block, so any over-read fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/buf.h"
#include "../../common/http_parse.h"
#include "guard.h"

#define GUARD_CAP (1024 * 1024)
#define MAX_BODY (1024 * 1024)

static struct guard guard;

static int setup_guard(void **state)
{
    (void)state;
    return guard_open(&guard, GUARD_CAP);
}

static int teardown_guard(void **state)
{
    (void)state;
    guard_close(&guard);
    return 0;
}

/* Parse len bytes placed right before the guard page, with a fresh state. */
static int parse_n(const char *text, size_t len, size_t max_body, struct http_request *req)
{
    struct codec_state st = {0};
    const char *p = guard_place(&guard, text, len);
    assert_non_null(p);
    return http_parse_request(p, len, max_body, &st, req);
}

static int parse_s(const char *text, size_t max_body, struct http_request *req)
{
    return parse_n(text, strlen(text), max_body, req);
}

static int span_is(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

#define assert_span(p, n, lit)                                                                  \
    do {                                                                                        \
        if (!span_is((p), (n), (lit)))                                                          \
            fail_msg("got \"%.*s\", want \"%s\"", (int)(n), (p), (lit));                        \
    } while (0)

/* buf_head() of a buffer that may never have allocated (NULL + 0 is undefined). */
static const char *bytes_of(const struct buf *b)
{
    return b->data ? buf_head(b) : "";
}

/* ---- logs ---------------------------------------------------------------------- */

static void log_bytes(struct buf *log, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != ']')
            assert_int_equal(buf_append(log, &p[i], 1), 0);
        else
            assert_int_equal(buf_printf(log, "\\x%02x", c), 0);
    }
}

static void log_request_line(struct buf *log, const char *method, size_t mlen, const char *target,
                             size_t tlen, int minor, unsigned flags, size_t hl, size_t fl,
                             const char *body, size_t blen)
{
    assert_int_equal(buf_printf(log, "REQ %.*s %.*s HTTP/1.%d flags=%02x hl=%zu fl=%zu body=%zu [",
                                (int)mlen, method, (int)tlen, target, minor, flags, hl, fl, blen),
                     0);
    log_bytes(log, body, blen);
    assert_int_equal(buf_printf(log, "]\n"), 0);
}

static void log_header(struct buf *log, const char *name, size_t nlen, const char *value,
                       size_t vlen)
{
    assert_int_equal(buf_printf(log, "  H %.*s: [", (int)nlen, name), 0);
    log_bytes(log, value, vlen);
    assert_int_equal(buf_printf(log, "]\n"), 0);
}

static void log_end(struct buf *log, int rc, size_t left)
{
    if (rc == HTTP_NEED_MORE)
        assert_int_equal(buf_printf(log, "END left=%zu\n", left), 0);
    else
        assert_int_equal(buf_printf(log, "ERR %d\n", rc), 0);
}

static void assert_logs_equal(const struct buf *got, const struct buf *want, const char *what)
{
    size_t gl = buf_len(got), wl = buf_len(want);
    const char *g = bytes_of(got), *w = bytes_of(want);
    if (gl == wl && memcmp(g, w, gl) == 0)
        return;
    size_t i = 0, line = 1, bol = 0;
    while (i < gl && i < wl && g[i] == w[i]) {
        if (g[i] == '\n') {
            line++;
            bol = i + 1;
        }
        i++;
    }
    const char *ge = memchr(g + bol, '\n', gl - bol), *we = memchr(w + bol, '\n', wl - bol);
    int gn = (int)((ge ? ge : g + gl) - (g + bol)), wn = (int)((we ? we : w + wl) - (w + bol));
    fail_msg("%s: logs differ at line %zu:\n  got:  %.*s\n  want: %.*s", what, line,
             gn > 300 ? 300 : gn, g + bol, wn > 300 ? 300 : wn, w + bol);
}

/* ---- the simulated connection ------------------------------------------------------ */

enum placement { PLACE_GUARD, PLACE_HEAP };

struct sim {
    size_t max_body;
    enum placement place;
    int forget_state; /* zero the hints before every call: "zero means start over" */
    struct codec_state st;
    struct buf pending;
    int dead;
    unsigned need_more_flags; /* req->flags of the last NEED_MORE */
    struct buf log;
};

static void sim_init(struct sim *s, size_t max_body, enum placement place)
{
    memset(s, 0, sizeof *s);
    s->max_body = max_body;
    s->place = place;
}

static int within(const char *x, size_t n, const char *lo, const char *hi)
{
    return x >= lo && x <= hi && n <= (size_t)(hi - x);
}

/* Check a returned request against the contract and log it. p is the parser's copy. */
static void check_and_log_request(struct sim *s, const char *p, size_t len,
                                  const struct http_request *req)
{
    assert_true(req->header_len > 0);
    assert_true(req->header_len <= req->frame_len);
    assert_true(req->frame_len <= len);
    assert_true(req->minor_version == 0 || req->minor_version == 1);
    assert_true(req->body_len <= s->max_body);
    assert_int_equal(req->flags & HTTP_F_HEADERS_DONE, 0);
    if (!(req->flags & HTTP_F_CHUNKED))
        assert_true(req->frame_len == req->header_len + req->body_len);
    const char *head_end = p + req->header_len;
    assert_true(within(req->method, req->method_len, p, head_end));
    assert_true(within(req->target, req->target_len, p, head_end));
    assert_true(req->n_headers <= HTTP_MAX_HEADERS);
    for (size_t i = 0; i < req->n_headers; i++) {
        assert_true(within(req->headers[i].name, req->headers[i].name_len, p, head_end));
        assert_true(within(req->headers[i].value, req->headers[i].value_len, p, head_end));
    }
    /* The body copied into exactly body_len bytes (ASan sees any overflow). */
    char *body = malloc(req->body_len ? req->body_len : 1);
    assert_non_null(body);
    http_body_copy(p, req, body);
    log_request_line(&s->log, req->method, req->method_len, req->target, req->target_len,
                     req->minor_version, req->flags, req->header_len, req->frame_len, body,
                     req->body_len);
    free(body);
    for (size_t i = 0; i < req->n_headers; i++)
        log_header(&s->log, req->headers[i].name, req->headers[i].name_len, req->headers[i].value,
                   req->headers[i].value_len);
}

static void check_need_more(const struct sim *s, size_t len, const struct http_request *req)
{
    if (req->flags & HTTP_F_HEADERS_DONE) {
        /* Header fields are valid; the total is known unless the body is chunked. */
        assert_true(req->header_len <= len);
        assert_true(req->n_headers <= HTTP_MAX_HEADERS);
        if (req->flags & HTTP_F_CHUNKED) {
            assert_true(req->frame_len == 0);
        } else {
            assert_true(req->body_len <= s->max_body);
            assert_true(req->frame_len == req->header_len + req->body_len);
            assert_true(req->frame_len > len);
        }
    } else {
        /* codec.h: "total bytes the message will occupy when known, else 0". */
        assert_true(req->frame_len == 0);
    }
}

/* One parse call on a private copy of in[0, len); logs a request or an error. */
static int parse_copy(struct sim *s, const char *in, size_t len, size_t *frame_len)
{
    char *heap = NULL;
    const char *p;
    if (s->place == PLACE_GUARD) {
        p = guard_place(&guard, in, len);
        assert_non_null(p);
    } else {
        heap = malloc(len ? len : 1);
        assert_non_null(heap);
        if (len)
            memcpy(heap, in, len);
        p = heap;
    }
    struct http_request *req = malloc(sizeof *req);
    assert_non_null(req);
    memset(req, 0xA5, sizeof *req); /* nothing may be trusted unless the parser set it */
    if (s->forget_state)
        s->st = (struct codec_state){0};
    int rc = http_parse_request(p, len, s->max_body, &s->st, req);
    if (rc == HTTP_MESSAGE) {
        check_and_log_request(s, p, len, req);
        /* "it is reset when a request is returned" */
        assert_int_equal(s->st.scanned, 0);
        assert_int_equal(s->st.aux1, 0);
        assert_int_equal(s->st.aux2, 0);
        *frame_len = req->frame_len;
    } else if (rc == HTTP_NEED_MORE) {
        check_need_more(s, len, req);
        s->need_more_flags = req->flags;
    } else {
        assert_true(rc == HTTP_ERR_BAD_REQUEST || rc == HTTP_ERR_TOO_LARGE ||
                    rc == HTTP_ERR_HEADERS_TOO_LARGE || rc == HTTP_ERR_EXPECTATION ||
                    rc == HTTP_ERR_NOT_IMPLEMENTED || rc == HTTP_ERR_VERSION);
    }
    free(req);
    free(heap);
    return rc;
}

static void sim_feed(struct sim *s, const char *piece, size_t n)
{
    if (s->dead)
        return;
    assert_int_equal(buf_append(&s->pending, piece, n), 0);
    size_t off = 0;
    /* As the handler: parse while there are bytes; an empty remainder is not parsed. */
    while (off < buf_len(&s->pending)) {
        size_t fl = 0;
        int rc = parse_copy(s, bytes_of(&s->pending) + off, buf_len(&s->pending) - off, &fl);
        if (rc == HTTP_MESSAGE) {
            off += fl;
            continue;
        }
        if (rc < 0) {
            log_end(&s->log, rc, 0);
            s->dead = 1;
        }
        break;
    }
    buf_consume(&s->pending, off);
}

static void sim_finish(struct sim *s)
{
    if (!s->dead)
        log_end(&s->log, HTTP_NEED_MORE, buf_len(&s->pending));
    buf_release(&s->pending);
}

static void run_cuts(const char *in, size_t len, size_t max_body, enum placement place,
                     int forget, const size_t *cuts, size_t ncuts, struct buf *log)
{
    struct sim s;
    sim_init(&s, max_body, place);
    s.forget_state = forget;
    size_t from = 0;
    for (size_t i = 0; i < ncuts; i++) {
        sim_feed(&s, in + from, cuts[i] - from);
        from = cuts[i];
    }
    sim_feed(&s, in + from, len - from);
    sim_finish(&s);
    *log = s.log;
}

static void run_bytewise(const char *in, size_t len, size_t max_body, int forget,
                         struct buf *log)
{
    struct sim s;
    sim_init(&s, max_body, PLACE_GUARD);
    s.forget_state = forget;
    for (size_t i = 0; i < len; i++)
        sim_feed(&s, in + i, 1);
    sim_finish(&s);
    *log = s.log;
}

/* One read, a byte at a time (with and without hints), every two-piece split, and
 * every three-piece split of short streams: all must give `want`. */
static void check_all_splits(const char *in, size_t len, size_t max_body, const struct buf *want)
{
    char what[96];
    struct buf log;
    run_cuts(in, len, max_body, PLACE_GUARD, 0, NULL, 0, &log);
    assert_logs_equal(&log, want, "one read");
    buf_release(&log);
    for (int forget = 0; forget <= 1; forget++) {
        run_bytewise(in, len, max_body, forget, &log);
        assert_logs_equal(&log, want, forget ? "byte by byte, no hints" : "byte by byte");
        buf_release(&log);
    }
    for (size_t c = 0; c <= len; c++) {
        run_cuts(in, len, max_body, c % 3 ? PLACE_HEAP : PLACE_GUARD, 0, &c, 1, &log);
        snprintf(what, sizeof what, "two pieces cut at %zu", c);
        assert_logs_equal(&log, want, what);
        buf_release(&log);
    }
    if (len <= 200) {
        for (size_t a = 1; a < len; a++) {
            for (size_t b = a + 1; b < len; b++) {
                size_t two[2] = {a, b};
                run_cuts(in, len, max_body, (a + b) % 2 ? PLACE_HEAP : PLACE_GUARD, 0, two, 2,
                         &log);
                snprintf(what, sizeof what, "three pieces cut at %zu, %zu", a, b);
                assert_logs_equal(&log, want, what);
                buf_release(&log);
            }
        }
    }
}

/* ---- expected logs, from the test's own (deliberately simple) reading of the text ---- */

/* Next line of s: content [s, *eol), returns the start of the following line. */
static const char *oracle_line(const char *s, const char **eol)
{
    const char *nl = strchr(s, '\n');
    assert_non_null(nl);
    *eol = nl > s && nl[-1] == '\r' ? nl - 1 : nl;
    return nl + 1;
}

/* Append a request to a stream and its expected log entry. head is the request line,
 * fields and empty line; raw is the body as sent; body is the decoded body. */
static void add_req(struct buf *stream, struct buf *want, const char *head, const char *raw,
                    size_t raw_len, const char *body, size_t body_len, unsigned flags)
{
    size_t hl = strlen(head);
    assert_int_equal(buf_append(stream, head, hl), 0);
    assert_int_equal(buf_append(stream, raw, raw_len), 0);

    const char *eol, *s = head;
    for (;;) { /* skip empty lines before the request line */
        const char *next = oracle_line(s, &eol);
        if (eol != s)
            break;
        s = next;
    }
    const char *next = oracle_line(s, &eol);
    const char *sp1 = memchr(s, ' ', (size_t)(eol - s));
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    assert_non_null(sp2);
    int minor = sp2[8] - '0' == 0 ? 0 : 1;
    log_request_line(want, s, (size_t)(sp1 - s), sp1 + 1, (size_t)(sp2 - sp1 - 1), minor, flags,
                     hl, hl + raw_len, body, body_len);
    for (s = next;; s = next) {
        next = oracle_line(s, &eol);
        if (eol == s)
            break;
        const char *colon = memchr(s, ':', (size_t)(eol - s));
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        log_header(want, s, (size_t)(colon - s), v, (size_t)(ve - v));
    }
}

static void add_plain(struct buf *stream, struct buf *want, const char *head, const char *body,
                      unsigned flags)
{
    add_req(stream, want, head, body, strlen(body), body, strlen(body), flags);
}

/* ---- valid requests ---------------------------------------------------------------- */

static void test_get_with_host(void **state)
{
    (void)state;
    struct http_request req;
    const char *text = "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\n"
                       "User-Agent:   curl/8  \t\r\nX-Empty:\r\nX-Inner: a  b\r\n"
                       "X-Obs: caf\xc3\xa9\r\n\r\n";
    assert_int_equal(parse_s(text, MAX_BODY, &req), HTTP_MESSAGE);
    assert_span(req.method, req.method_len, "GET");
    assert_span(req.target, req.target_len, "/index.html?x=1");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.flags, 0);
    assert_int_equal(req.header_len, strlen(text));
    assert_int_equal(req.frame_len, strlen(text));
    assert_int_equal(req.body_len, 0);
    assert_int_equal(req.n_headers, 5);
    assert_span(req.headers[0].name, req.headers[0].name_len, "Host");
    assert_span(req.headers[0].value, req.headers[0].value_len, "example.com");
    assert_span(req.headers[1].value, req.headers[1].value_len, "curl/8");
    assert_int_equal(req.headers[2].value_len, 0);
    assert_span(req.headers[3].value, req.headers[3].value_len, "a  b");
    assert_span(req.headers[4].value, req.headers[4].value_len, "caf\xc3\xa9");
    const struct http_header *h = http_find_header(&req, "user-agent");
    assert_non_null(h);
    assert_ptr_equal(h, &req.headers[1]);
    assert_ptr_equal(http_find_header(&req, "host"), &req.headers[0]);
    assert_null(http_find_header(&req, "accept"));
    assert_null(http_find_header(&req, "hos"));
}

static void test_http10_without_host(void **state)
{
    (void)state;
    struct http_request req;
    assert_int_equal(parse_s("GET / HTTP/1.0\r\n\r\n", MAX_BODY, &req), HTTP_MESSAGE);
    assert_int_equal(req.minor_version, 0);
    assert_int_equal(req.flags, HTTP_F_CLOSE);
    assert_int_equal(req.n_headers, 0);
    assert_int_equal(req.frame_len, 18);
    /* A later 1.x is handled as 1.1 (and then needs Host). */
    assert_int_equal(parse_s("GET / HTTP/1.7\r\nHost: x\r\n\r\n", MAX_BODY, &req), HTTP_MESSAGE);
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(parse_s("GET / HTTP/1.9\r\n\r\n", MAX_BODY, &req), HTTP_ERR_BAD_REQUEST);
}

static void test_keepalive_semantics(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        unsigned flags;
    } cases[] = {
        {"GET / HTTP/1.0\r\n\r\n", HTTP_F_CLOSE},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", HTTP_F_KEEPALIVE_10},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", HTTP_F_KEEPALIVE_10},
        {"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", HTTP_F_CLOSE},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", HTTP_F_CLOSE},
        {"GET / HTTP/1.0\r\nConnection: upgrade\r\n\r\n", HTTP_F_CLOSE},
        {"GET / HTTP/1.0\r\nConnection: keep-alivex\r\n\r\n", HTTP_F_CLOSE},
        {"GET / HTTP/1.0\r\nConnection: foo,\t keep-alive ,bar\r\n\r\n", HTTP_F_KEEPALIVE_10},
        {"GET / HTTP/1.0\r\nConnection: foo\r\nConnection: keep-alive\r\n\r\n",
         HTTP_F_KEEPALIVE_10},
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", HTTP_F_CLOSE},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: CLOSE\r\n\r\n", HTTP_F_CLOSE},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n", HTTP_F_CLOSE},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: x\r\nX-Connection: close\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_request req;
        int rc = parse_s(cases[i].text, MAX_BODY, &req);
        if (rc != HTTP_MESSAGE || req.flags != cases[i].flags)
            fail_msg("case %zu (%s): rc %d flags %#x, want flags %#x", i, cases[i].text, rc,
                     req.flags, cases[i].flags);
    }
}

static void test_head_and_methods(void **state)
{
    (void)state;
    struct http_request req;
    assert_int_equal(parse_s("HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n", MAX_BODY, &req), HTTP_MESSAGE);
    assert_span(req.method, req.method_len, "HEAD");
    assert_span(req.target, req.target_len, "/x");
    /* Methods are tokens: any tchar, case kept as sent. */
    assert_int_equal(parse_s("M-SEARCH * HTTP/1.1\r\nHost: x\r\n\r\n", MAX_BODY, &req),
                     HTTP_MESSAGE);
    assert_span(req.method, req.method_len, "M-SEARCH");
    assert_span(req.target, req.target_len, "*");
    assert_int_equal(parse_s("get / HTTP/1.1\r\nHost: x\r\n\r\n", MAX_BODY, &req), HTTP_MESSAGE);
    assert_span(req.method, req.method_len, "get");
    assert_int_equal(parse_s("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
                             MAX_BODY, &req),
                     HTTP_MESSAGE);
    assert_span(req.target, req.target_len, "example.com:443");
}

static void test_post_content_length(void **state)
{
    (void)state;
    struct http_request req;
    const char *head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n";
    size_t hl = strlen(head);
    char text[200];
    snprintf(text, sizeof text, "%shello worldGET", head);
    /* Headers only: need more, with the header fields valid and the total known. */
    assert_int_equal(parse_n(text, hl, MAX_BODY, &req), HTTP_NEED_MORE);
    assert_int_equal(req.flags, HTTP_F_HEADERS_DONE);
    assert_int_equal(req.header_len, hl);
    assert_int_equal(req.body_len, 11);
    assert_int_equal(req.frame_len, hl + 11);
    assert_int_equal(parse_n(text, hl + 10, MAX_BODY, &req), HTTP_NEED_MORE);
    assert_int_equal(req.frame_len, hl + 11);
    /* Complete, with the next request's first bytes after it. */
    assert_int_equal(parse_n(text, hl + 14, MAX_BODY, &req), HTTP_MESSAGE);
    assert_int_equal(req.header_len, hl);
    assert_int_equal(req.frame_len, hl + 11);
    assert_int_equal(req.body_len, 11);
    char body[11];
    const char *p = guard_place(&guard, text, hl + 14);
    struct codec_state st = {0};
    assert_int_equal(http_parse_request(p, hl + 14, MAX_BODY, &st, &req), HTTP_MESSAGE);
    http_body_copy(p, &req, body);
    assert_memory_equal(body, "hello world", 11);
    /* Content-Length: 0, and a body exactly at the limit. */
    assert_int_equal(parse_s("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 0, &req),
                     HTTP_MESSAGE);
    assert_int_equal(req.body_len, 0);
    assert_int_equal(parse_s("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", 11, &req),
                     HTTP_NEED_MORE);
    assert_int_equal(parse_s("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n", 11, &req),
                     HTTP_ERR_TOO_LARGE);
    /* Optional whitespace around the number, and leading zeros, are fine. */
    assert_int_equal(parse_s("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \t007 \r\n\r\n1234567",
                             MAX_BODY, &req),
                     HTTP_MESSAGE);
    assert_int_equal(req.body_len, 7);
}

static const char chunked_head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

#define H11 "Host: x\r\n"
#define CHUNKED_HEAD "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

static void test_chunked_extensions_trailers(void **state)
{
    (void)state;
    const char *chunks = "5;name=val\r\nhello\r\n6 ; ext=\"q\"\r\n world\r\n"
                         "00A\r\n0123456789\r\nfF\r\n";
    char text[1024], body[300];
    size_t n = (size_t)snprintf(text, sizeof text, "%s%s", chunked_head, chunks);
    memset(text + n, 'z', 255);
    n += 255;
    n += (size_t)snprintf(text + n, sizeof text - n,
                          "\r\n0;last\r\nTrailer-A: 1\r\nTrailer-B:  two \r\n\r\nNEXT");
    struct http_request req;
    const char *p = guard_place(&guard, text, n);
    struct codec_state st = {0};
    assert_int_equal(http_parse_request(p, n, MAX_BODY, &st, &req), HTTP_MESSAGE);
    assert_int_equal(req.flags, HTTP_F_CHUNKED);
    assert_int_equal(req.header_len, strlen(chunked_head));
    assert_int_equal(req.frame_len, n - 4);
    assert_int_equal(req.body_len, 5 + 6 + 10 + 255);
    http_body_copy(p, &req, body);
    assert_memory_equal(body, "hello world0123456789zzz", 24);
    for (size_t i = 21; i < 276; i++)
        assert_int_equal(body[i], 'z');
    /* Trailers do not become header fields. */
    assert_int_equal(req.n_headers, 2);
    assert_null(http_find_header(&req, "trailer-a"));

    /* BWS before the extension's ";" (RFC 9112 7.1.1). */
    const char *lf = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
                     "3\r\nabc\r\n2 \t;x\r\nde\r\n0\r\n\r\n";
    p = guard_place(&guard, lf, strlen(lf));
    st = (struct codec_state){0};
    assert_int_equal(http_parse_request(p, strlen(lf), MAX_BODY, &st, &req), HTTP_MESSAGE);
    assert_int_equal(req.frame_len, strlen(lf));
    assert_int_equal(req.body_len, 5);
    http_body_copy(p, &req, body);
    assert_memory_equal(body, "abcde", 5);

    /* No chunks at all: an empty body. */
    snprintf(text, sizeof text, "%s0\r\n\r\n", chunked_head);
    assert_int_equal(parse_s(text, MAX_BODY, &req), HTTP_MESSAGE);
    assert_int_equal(req.body_len, 0);
    assert_int_equal(req.frame_len, strlen(text));
}

/* Small deterministic generator for the randomised cases. */
static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Random bodies (every byte value, CR and LF included) cut into random chunks with
 * random hex spelling and extensions: http_body_copy gives back exactly the body. */
static void test_chunked_body_copy_exact(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    struct buf text = {0};
    char *body = malloc(5000), *copy = malloc(5000);
    for (int round = 0; round < 300; round++) {
        size_t blen = rng_next(&seed) % 5000;
        for (size_t i = 0; i < blen; i++)
            body[i] = (char)rng_next(&seed);
        buf_clear(&text);
        assert_int_equal(buf_append(&text, chunked_head, strlen(chunked_head)), 0);
        size_t off = 0;
        while (off < blen) {
            size_t c = 1 + rng_next(&seed) % (round % 3 ? 700 : 5);
            if (c > blen - off)
                c = blen - off;
            uint32_t style = rng_next(&seed);
            const char *eol = "\r\n"; /* chunk framing is CRLF only */
            assert_int_equal(buf_printf(&text, style & 2 ? "%0*zX" : "%0*zx",
                                        (int)((style >> 4) % 6), c), 0);
            if (style & 4)
                assert_int_equal(buf_printf(&text, ";k=v;flag"), 0);
            assert_int_equal(buf_printf(&text, "%s", eol), 0);
            assert_int_equal(buf_append(&text, body + off, c), 0);
            assert_int_equal(buf_printf(&text, "\r\n"), 0);
            off += c;
        }
        assert_int_equal(buf_printf(&text, "0\r\n\r\n"), 0);
        struct http_request req;
        const char *p = guard_place(&guard, buf_head(&text), buf_len(&text));
        struct codec_state st = {0};
        int rc = http_parse_request(p, buf_len(&text), MAX_BODY, &st, &req);
        if (rc != HTTP_MESSAGE)
            fail_msg("round %d: rc %d", round, rc);
        assert_int_equal(req.frame_len, buf_len(&text));
        assert_int_equal(req.body_len, blen);
        memset(copy, 0, 5000);
        http_body_copy(p, &req, copy);
        assert_memory_equal(copy, body, blen);
    }
    free(body);
    free(copy);
    buf_release(&text);
}

static void test_expect_continue(void **state)
{
    (void)state;
    struct http_request req;
    const char *head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       "Expect: 100-continue\r\n\r\n";
    assert_int_equal(parse_s(head, MAX_BODY, &req), HTTP_NEED_MORE);
    assert_int_equal(req.flags, HTTP_F_HEADERS_DONE | HTTP_F_CONTINUE);
    assert_non_null(http_find_header(&req, "expect"));
    char text[200];
    snprintf(text, sizeof text, "%shello", head);
    assert_int_equal(parse_s(text, MAX_BODY, &req), HTTP_MESSAGE);
    assert_int_equal(req.flags, HTTP_F_CONTINUE);
    /* Case-insensitive; and with a chunked body. */
    assert_int_equal(parse_s("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n",
                             MAX_BODY, &req),
                     HTTP_NEED_MORE);
    assert_int_equal(req.flags, HTTP_F_HEADERS_DONE | HTTP_F_CONTINUE | HTTP_F_CHUNKED);
    /* Before the header block is complete there is nothing to answer yet. */
    assert_int_equal(parse_n(head, strlen(head) - 2, MAX_BODY, &req), HTTP_NEED_MORE);
    assert_int_equal(req.flags & (HTTP_F_HEADERS_DONE | HTTP_F_CONTINUE), 0);
    /* HTTP/1.0 ignores 100-continue (RFC 9110 10.1.1). */
    assert_int_equal(parse_s("POST / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n",
                             MAX_BODY, &req),
                     HTTP_NEED_MORE);
    assert_int_equal(req.flags & HTTP_F_CONTINUE, 0);
}

static void test_leading_empty_lines(void **state)
{
    (void)state;
    struct http_request req;
    const char *text = "\r\n\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const char *p = guard_place(&guard, text, strlen(text));
    struct codec_state st = {0};
    assert_int_equal(http_parse_request(p, strlen(text), MAX_BODY, &st, &req), HTTP_MESSAGE);
    assert_ptr_equal(req.method, p + 6);
    assert_span(req.target, req.target_len, "/a");
    assert_int_equal(req.header_len, strlen(text));
    assert_int_equal(req.frame_len, strlen(text));
    /* Only empty lines so far: need more. */
    assert_int_equal(parse_s("\r\n\r\n\r", MAX_BODY, &req), HTTP_NEED_MORE);
    /* An empty line is CRLF too. */
    assert_int_equal(parse_s("\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", MAX_BODY, &req),
                     HTTP_ERR_BAD_REQUEST);
}

/* A bare LF anywhere in the head or the chunk framing is a 400, given as soon as the LF
 * arrives (not taken as a line end, not waited on): each case byte by byte, with and
 * without hints, is "need more" up to the LF and 400 with it. */
static void test_bare_lf_refused(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "GET / HTTP/1.1\nHost: x\r\n\r\n",
        "\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\nA: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nA: 1\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n\n",
        CHUNKED_HEAD "5\nhello\r\n0\r\n\r\n",
        CHUNKED_HEAD "5;a=b\nhello\r\n0\r\n\r\n",
        CHUNKED_HEAD "5\r\nhello\n0\r\n\r\n",
        CHUNKED_HEAD "5\r\nhello\r\n0\n\r\n",
        CHUNKED_HEAD "0\r\nT: 1\nU: 2\r\n\r\n",
        CHUNKED_HEAD "0\r\nT: 1\r\n\n",
        CHUNKED_HEAD "0\r\n\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *text = cases[i];
        size_t lf = 0; /* the bare LF: the first LF without a CR before it */
        while (text[lf] != '\n' || (lf > 0 && text[lf - 1] == '\r'))
            lf++;
        for (int forget = 0; forget <= 1; forget++) {
            struct codec_state st = {0};
            for (size_t len = 1; len <= lf + 1; len++) {
                struct http_request req;
                if (forget)
                    st = (struct codec_state){0};
                const char *p = guard_place(&guard, text, len);
                int rc = http_parse_request(p, len, MAX_BODY, &st, &req);
                int want = len <= lf ? HTTP_NEED_MORE : HTTP_ERR_BAD_REQUEST;
                if (rc != want)
                    fail_msg("case %zu, %zu bytes%s: %d, want %d", i, len,
                             forget ? " (no hints)" : "", rc, want);
            }
        }
    }
}

/* The smuggling case: a bare LF between CRLF field lines. Taking it as a line end made
 * "Content-Length: 24" a field, so the next 24 bytes were a body and a hidden
 * "GET /admin" came after them: two answers (200 and 404) where a proxy in front that
 * does not split on a bare LF saw "GET /" then "GET /padd". Now the request is refused
 * and nothing after it is parsed. */
static void test_bare_lf_smuggling(void **state)
{
    (void)state;
    static const char smuggle[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: x\nContent-Length: 24\r\n\r\n"
                                  "GET /padd HTTP/1.1\r\nXY: GET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
    struct buf want = {0}, log;
    log_end(&want, HTTP_ERR_BAD_REQUEST, 0);
    check_all_splits(smuggle, strlen(smuggle), MAX_BODY, &want);
    buf_release(&want);
    /* The same bytes with CRLF: one request with a 24-byte body, then GET /admin. */
    static const char crlf[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: x\r\nContent-Length: 24\r\n\r\n"
                               "GET /padd HTTP/1.1\r\nXY: GET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
    run_cuts(crlf, strlen(crlf), MAX_BODY, PLACE_GUARD, 0, NULL, 0, &log);
    assert_non_null(strstr(bytes_of(&log), "REQ GET / HTTP/1.1 flags=00 hl=57 fl=81 body=24"));
    assert_non_null(strstr(bytes_of(&log), "REQ GET /admin HTTP/1.1"));
    buf_release(&log);
}

static void test_absolute_form(void **state)
{
    (void)state;
    struct http_request req;
    assert_int_equal(parse_s("GET http://example.com:8080/a/b?c=d HTTP/1.1\r\n"
                             "Host: example.com:8080\r\n\r\n",
                             MAX_BODY, &req),
                     HTTP_MESSAGE);
    assert_span(req.target, req.target_len, "http://example.com:8080/a/b?c=d");
    assert_int_equal(parse_s("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", MAX_BODY, &req),
                     HTTP_MESSAGE);
    assert_span(req.target, req.target_len, "*");
}

static void test_token_eq(void **state)
{
    (void)state;
    assert_true(http_token_eq("HoSt", 4, "host"));
    assert_true(http_token_eq("", 0, ""));
    assert_true(http_token_eq("CONTENT-LENGTH", 14, "content-length"));
    assert_false(http_token_eq("hos", 3, "host"));
    assert_false(http_token_eq("hostx", 5, "host"));
    assert_false(http_token_eq("host", 3, "host"));
    /* Only A-Z fold: '@' is not '`', '[' is not '{'. */
    assert_false(http_token_eq("@", 1, "`"));
    assert_false(http_token_eq("[", 1, "{"));
    assert_false(http_token_eq("\xc3", 1, "\xe3"));
}

/* A request returned after one that set every field must not leave stale values in
 * the size hint: NEED_MORE's frame_len is the total when known, else 0 (codec.h). */
static void test_need_more_frame_len_not_stale(void **state)
{
    (void)state;
    struct http_request req;
    char text[200];
    snprintf(text, sizeof text, "%s", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assert_int_equal(parse_s(text, MAX_BODY, &req), HTTP_MESSAGE);
    assert_true(req.frame_len > 0);
    /* Same struct, a partial next request. */
    assert_int_equal(parse_s("GET / HT", MAX_BODY, &req), HTTP_NEED_MORE);
    assert_int_equal(req.frame_len, 0);
    assert_int_equal(parse_s(text, MAX_BODY, &req), HTTP_MESSAGE);
    /* Chunked with the header block done: the total is not known. */
    snprintf(text, sizeof text, "%s5\r\nhel", chunked_head);
    assert_int_equal(parse_s(text, MAX_BODY, &req), HTTP_NEED_MORE);
    assert_int_equal(req.flags, HTTP_F_HEADERS_DONE | HTTP_F_CHUNKED);
    assert_int_equal(req.frame_len, 0);
}

/* ---- pipelining and splits ------------------------------------------------------------ */

/* A stream of n mixed requests and its expected log. */
static void build_pipeline(struct buf *stream, struct buf *want, int n)
{
    char head[256];
    for (int i = 0; i < n; i++) {
        switch (i % 6) {
        case 0:
            snprintf(head, sizeof head, "GET /r%d HTTP/1.1\r\nHost: h\r\n\r\n", i);
            add_plain(stream, want, head, "", 0);
            break;
        case 1:
            snprintf(head, sizeof head,
                     "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", i % 17);
            add_plain(stream, want, head, &"0123456789abcdefg"[17 - i % 17], 0);
            break;
        case 2:
            add_req(stream, want,
                    "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
                    "3;x=y\r\nabc\r\n1\r\n\n\r\n0\r\nT: v\r\n\r\n",
                    strlen("3;x=y\r\nabc\r\n1\r\n\n\r\n0\r\nT: v\r\n\r\n"), "abc\n", 4,
                    HTTP_F_CHUNKED);
            break;
        case 3:
            add_plain(stream, want, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", "", 0);
            break;
        case 4:
            add_plain(stream, want, "\r\nGET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "",
                      HTTP_F_KEEPALIVE_10);
            break;
        default:
            add_plain(stream, want,
                      "PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                      "Content-Length: 2\r\n\r\n",
                      "ok", HTTP_F_CONTINUE);
            break;
        }
    }
}

/* 100 requests in one buffer: parsed one by one, each frame_len landing exactly on the
 * next request. */
static void test_pipelined_100(void **state)
{
    (void)state;
    struct buf stream = {0}, want = {0}, log;
    build_pipeline(&stream, &want, 100);
    log_end(&want, HTTP_NEED_MORE, 0);

    /* By hand first: offsets and methods. */
    const char *p = guard_place(&guard, buf_head(&stream), buf_len(&stream));
    size_t off = 0;
    struct codec_state st = {0};
    for (int i = 0; i < 100; i++) {
        struct http_request req;
        int rc = http_parse_request(p + off, buf_len(&stream) - off, MAX_BODY, &st, &req);
        if (rc != HTTP_MESSAGE)
            fail_msg("request %d at offset %zu: rc %d", i, off, rc);
        static const char *const methods[] = {"GET", "POST", "POST", "HEAD", "GET", "PUT"};
        assert_span(req.method, req.method_len, methods[i % 6]);
        off += req.frame_len;
    }
    assert_int_equal(off, buf_len(&stream));

    run_cuts(buf_head(&stream), buf_len(&stream), MAX_BODY, PLACE_GUARD, 0, NULL, 0, &log);
    assert_logs_equal(&log, &want, "100 pipelined in one read");
    buf_release(&log);
    size_t cuts[64], ncuts = 0;
    for (size_t c = 509; c < buf_len(&stream) && ncuts < 64; c += 509)
        cuts[ncuts++] = c;
    run_cuts(buf_head(&stream), buf_len(&stream), MAX_BODY, PLACE_HEAP, 0, cuts, ncuts, &log);
    assert_logs_equal(&log, &want, "100 pipelined in 509-byte reads");
    buf_release(&log);
    buf_release(&stream);
    buf_release(&want);
}

static void test_every_split_of_several_requests(void **state)
{
    (void)state;
    struct buf stream = {0}, want = {0};
    build_pipeline(&stream, &want, 6);
    /* And a partial request at the end. */
    assert_int_equal(buf_append(&stream, "GET /partial HTTP/1.1\r\nHo", 25), 0);
    log_end(&want, HTTP_NEED_MORE, 25);
    check_all_splits(buf_head(&stream), buf_len(&stream), MAX_BODY, &want);
    buf_release(&stream);
    buf_release(&want);
}

/* Short enough for every three-piece split: a chunked request, then a GET. */
static void test_every_split_short_chunked(void **state)
{
    (void)state;
    struct buf stream = {0}, want = {0};
    add_req(&stream, &want, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
            "2;a\r\nxy\r\n1\r\n\r\r\n0\r\nT: 1\r\n\r\n",
            strlen("2;a\r\nxy\r\n1\r\n\r\r\n0\r\nT: 1\r\n\r\n"),
            "xy\r", 3, HTTP_F_CHUNKED);
    add_plain(&stream, &want, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "", 0);
    log_end(&want, HTTP_NEED_MORE, 0);
    check_all_splits(buf_head(&stream), buf_len(&stream), MAX_BODY, &want);
    buf_release(&stream);
    buf_release(&want);
}

/* Good requests, then a bad one: the good ones come out and the error follows, the same
 * however the stream is cut. */
static void test_every_split_error_after_messages(void **state)
{
    (void)state;
    struct buf stream = {0}, want = {0};
    add_plain(&stream, &want, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n", "", 0);
    const char *bad = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "4\r\nabcdX\r\n0\r\n\r\n";
    assert_int_equal(buf_append(&stream, bad, strlen(bad)), 0);
    log_end(&want, HTTP_ERR_BAD_REQUEST, 0);
    check_all_splits(buf_head(&stream), buf_len(&stream), MAX_BODY, &want);
    buf_release(&stream);
    buf_release(&want);
}

/* ---- resume hints ---------------------------------------------------------------------- */

/* A large request (60 fields of ~110 bytes, a chunked body of 300 chunks, trailers)
 * trickled a byte at a time gives what one read gives, with hints and without. */
static void test_trickle_large_request(void **state)
{
    (void)state;
    struct buf stream = {0}, head = {0}, raw = {0}, body = {0}, want = {0}, log;
    assert_int_equal(buf_printf(&head, "POST /big HTTP/1.1\r\nHost: h\r\n"
                                       "Transfer-Encoding: chunked\r\n"),
                     0);
    for (int i = 0; i < 57; i++)
        assert_int_equal(buf_printf(&head, "X-Field-%02d: %0100d\r\n", i, i), 0);
    assert_int_equal(buf_printf(&head, "\r\n"), 0);
    assert_true(buf_len(&head) < HTTP_MAX_HEADER_BYTES);
    for (int i = 0; i < 300; i++) {
        int n = 1 + i % 23; /* 0 would be the last chunk */
        assert_int_equal(buf_printf(&raw, "%x;i=%d\r\n", n, i), 0);
        for (int j = 0; j < n; j++) {
            char c = (char)('A' + (i + j) % 26);
            assert_int_equal(buf_append(&raw, &c, 1), 0);
            assert_int_equal(buf_append(&body, &c, 1), 0);
        }
        assert_int_equal(buf_printf(&raw, "\r\n"), 0);
    }
    assert_int_equal(buf_printf(&raw, "0\r\nT1: a\r\nT2: b\r\n\r\n"), 0);
    assert_int_equal(buf_append(&head, "", 1), 0); /* NUL-terminate for add_req */
    add_req(&stream, &want, buf_head(&head), buf_head(&raw), buf_len(&raw), buf_head(&body),
            buf_len(&body), HTTP_F_CHUNKED);
    log_end(&want, HTTP_NEED_MORE, 0);

    run_cuts(buf_head(&stream), buf_len(&stream), MAX_BODY, PLACE_GUARD, 0, NULL, 0, &log);
    assert_logs_equal(&log, &want, "one read");
    buf_release(&log);
    for (int forget = 0; forget <= 1; forget++) {
        struct sim s;
        sim_init(&s, MAX_BODY, PLACE_HEAP);
        s.forget_state = forget;
        for (size_t i = 0; i < buf_len(&stream); i++) {
            sim_feed(&s, buf_head(&stream) + i, 1);
            /* Once the header block is complete every NEED_MORE says so. */
            size_t hl = buf_len(&head) - 1;
            if (i + 1 >= hl && i + 1 < buf_len(&stream))
                assert_int_equal(s.need_more_flags, HTTP_F_HEADERS_DONE | HTTP_F_CHUNKED);
            else if (i + 1 < hl)
                assert_int_equal(s.need_more_flags & HTTP_F_HEADERS_DONE, 0);
        }
        sim_finish(&s);
        assert_logs_equal(&s.log, &want, forget ? "byte by byte, no hints" : "byte by byte");
        buf_release(&s.log);
    }
    buf_release(&stream);
    buf_release(&head);
    buf_release(&raw);
    buf_release(&body);
    buf_release(&want);
}

/* ---- malformed and oversized input ---------------------------------------------------- */

struct bad_case {
    const char *name;
    const char *text;
    size_t len; /* 0: strlen(text) */
    size_t max_body;
    int want;
};


static const struct bad_case bad_cases[] = {
    /* request line */
    {"missing version", "GET /\r\n" H11 "\r\n", 0, MAX_BODY, HTTP_ERR_BAD_REQUEST},
    {"empty version", "GET / \r\n" H11 "\r\n", 0, MAX_BODY, HTTP_ERR_BAD_REQUEST},
    {"two spaces after method", "GET  / HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"two spaces before version", "GET /  HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"trailing space", "GET / HTTP/1.1 \r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"leading space", " GET / HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"tab separator", "GET\t/ HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"lowercase http", "GET / http/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"HTTPS/1.1", "GET / HTTPS/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"HTTP/1", "GET / HTTP/1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"HTTP/1.a", "GET / HTTP/1.a\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"HTTP/11.1", "GET / HTTP/11.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"HTTP/1.1x", "GET / HTTP/1.1x\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"HTTP/2.0", "GET / HTTP/2.0\r\n" H11 "\r\n", 0, MAX_BODY, HTTP_ERR_VERSION},
    {"HTTP/3.0", "GET / HTTP/3.0\r\n" H11 "\r\n", 0, MAX_BODY, HTTP_ERR_VERSION},
    {"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 0, MAX_BODY, HTTP_ERR_VERSION},
    {"control char in target", "GET /a\x01z HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"DEL in target", "GET /a\x7fz HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"tab in target", "GET /a\tb HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"space in target", "GET /a b HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"CR in target", "GET /a\rb HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"8-bit in target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    /* outside RFC 3986 (2, 3.5): most servers take these; we do not (DIFFERENCES.md) */
    {"quote in target", "GET /a\"b HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"pipe in target", "GET /a|b HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"brace in target", "GET /{a} HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"fragment in target", "GET /a#frag HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"0x80 in target", "GET /\x80 HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"0xff in target", "GET /?q=\xff HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"NUL in target", "GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n", 30, MAX_BODY, -400},
    {"empty method", " / HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"method with (", "GE(T / HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"method with /", "GET/ / HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"method with control", "G\x01T / HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"method with 8-bit", "G\xc3\x89T / HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    {"NUL in method", "G\0T / HTTP/1.1\r\nHost: x\r\n\r\n", 27, MAX_BODY, -400},
    {"request line only CR", "\rGET / HTTP/1.1\r\n" H11 "\r\n", 0, MAX_BODY, -400},
    /* header fields */
    {"no colon", "GET / HTTP/1.1\r\n" H11 "Bogus\r\n\r\n", 0, MAX_BODY, -400},
    {"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 0, MAX_BODY, -400},
    {"tab before colon", "GET / HTTP/1.1\r\n" H11 "A\t: 1\r\n\r\n", 0, MAX_BODY, -400},
    {"obs-fold SP", "GET / HTTP/1.1\r\n" H11 "A: 1\r\n 2\r\n\r\n", 0, MAX_BODY, -400},
    {"obs-fold HTAB", "GET / HTTP/1.1\r\n" H11 "A: 1\r\n\t2\r\n\r\n", 0, MAX_BODY, -400},
    {"first field folded", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", 0, MAX_BODY, -400},
    {"empty name", "GET / HTTP/1.1\r\n" H11 ": v\r\n\r\n", 0, MAX_BODY, -400},
    {"space in name", "GET / HTTP/1.1\r\n" H11 "A B: v\r\n\r\n", 0, MAX_BODY, -400},
    {"( in name", "GET / HTTP/1.1\r\n" H11 "A(B: v\r\n\r\n", 0, MAX_BODY, -400},
    {"8-bit in name", "GET / HTTP/1.1\r\n" H11 "A\xc3\xa9: v\r\n\r\n", 0, MAX_BODY, -400},
    {"NUL in value", "GET / HTTP/1.1\r\nHost: x\r\nA: 1\0 2\r\n\r\n", 36, MAX_BODY, -400},
    {"NUL in name", "GET / HTTP/1.1\r\nHost: x\r\nA\0: 2\r\n\r\n", 34, MAX_BODY, -400},
    {"SOH in value", "GET / HTTP/1.1\r\n" H11 "A: 1\x01\r\n\r\n", 0, MAX_BODY, -400},
    {"ESC in value", "GET / HTTP/1.1\r\n" H11 "A: \x1b[0m\r\n\r\n", 0, MAX_BODY, -400},
    {"DEL in value", "GET / HTTP/1.1\r\n" H11 "A: \x7f\r\n\r\n", 0, MAX_BODY, -400},
    {"bare CR in value", "GET / HTTP/1.1\r\n" H11 "A: 1\r2\r\n\r\n", 0, MAX_BODY, -400},
    {"CR CR LF", "GET / HTTP/1.1\r\n" H11 "A: 1\r\r\n\r\n", 0, MAX_BODY, -400},
    {"CTL in Host", "GET / HTTP/1.1\r\nHost: a\x0b" "b\r\n\r\n", 0, MAX_BODY, -400},
    /* Host */
    {"1.1 without Host", "GET / HTTP/1.1\r\nA: b\r\n\r\n", 0, MAX_BODY, -400},
    {"two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 0, MAX_BODY, -400},
    {"two Host, cases", "GET / HTTP/1.1\r\nhost: a\r\nHOST: b\r\n\r\n", 0, MAX_BODY, -400},
    {"two Host in 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 0, MAX_BODY, -400},
    /* Content-Length */
    {"CL negative", "POST / HTTP/1.1\r\n" H11 "Content-Length: -1\r\n\r\n", 0, MAX_BODY, -400},
    {"CL plus", "POST / HTTP/1.1\r\n" H11 "Content-Length: +1\r\n\r\nx", 0, MAX_BODY, -400},
    {"CL hex", "POST / HTTP/1.1\r\n" H11 "Content-Length: 0x10\r\n\r\n", 0, MAX_BODY, -400},
    {"CL hex digits", "POST / HTTP/1.1\r\n" H11 "Content-Length: 1a\r\n\r\n", 0, MAX_BODY, -400},
    {"CL empty", "POST / HTTP/1.1\r\n" H11 "Content-Length:\r\n\r\n", 0, MAX_BODY, -400},
    {"CL blank", "POST / HTTP/1.1\r\n" H11 "Content-Length:   \r\n\r\n", 0, MAX_BODY, -400},
    {"CL decimal point", "POST / HTTP/1.1\r\n" H11 "Content-Length: 1.0\r\n\r\n", 0, MAX_BODY,
     -400},
    {"CL inner space", "POST / HTTP/1.1\r\n" H11 "Content-Length: 1 0\r\n\r\n", 0, MAX_BODY,
     -400},
    {"CL overflow", "POST / HTTP/1.1\r\n" H11 "Content-Length: 18446744073709551616\r\n\r\n", 0,
     SIZE_MAX, -400},
    {"CL overflow long",
     "POST / HTTP/1.1\r\n" H11 "Content-Length: 99999999999999999999999999\r\n\r\n", 0, SIZE_MAX,
     -400},
    {"CL duplicated equal", "POST / HTTP/1.1\r\n" H11 "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx",
     0, MAX_BODY, -400},
    {"CL duplicated differ", "POST / HTTP/1.1\r\n" H11 "Content-Length: 1\r\ncontent-length: 2\r\n\r\nxx",
     0, MAX_BODY, -400},
    {"CL list", "POST / HTTP/1.1\r\n" H11 "Content-Length: 1, 1\r\n\r\nx", 0, MAX_BODY, -400},
    {"CL list no space", "POST / HTTP/1.1\r\n" H11 "Content-Length: 1,1\r\n\r\nx", 0, MAX_BODY,
     -400},
    {"CL over max", "POST / HTTP/1.1\r\n" H11 "Content-Length: 101\r\n\r\n", 0, 100,
     HTTP_ERR_TOO_LARGE},
    {"CL huge", "POST / HTTP/1.1\r\n" H11 "Content-Length: 18446744073709551615\r\n\r\n", 0,
     MAX_BODY, HTTP_ERR_TOO_LARGE},
    {"CL with max 0", "POST / HTTP/1.1\r\n" H11 "Content-Length: 1\r\n\r\n", 0, 0, -413},
    /* Transfer-Encoding */
    /* chunked not the final coding: the length cannot be known (RFC 9112 6.3), 400 */
    {"TE gzip", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\n\r\n", 0, MAX_BODY,
     HTTP_ERR_BAD_REQUEST},
    {"TE gzip, chunked", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", 0,
     MAX_BODY, -501},
    {"TE chunked, gzip", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n", 0,
     MAX_BODY, -400},
    {"TE identity", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: identity\r\n\r\n", 0,
     MAX_BODY, -400},
    {"TE chunked twice", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n",
     0, MAX_BODY, -400},
    {"TE in two fields",
     "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
     MAX_BODY, -501},
    {"TE chunked, then chunked in another field",
     "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     0, MAX_BODY, -400},
    {"TE chunked, then gzip in another field",
     "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 0,
     MAX_BODY, -400},
    {"TE gzip, chunked, gzip",
     "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip, chunked, gzip\r\n\r\n", 0, MAX_BODY,
     -400},
    {"TE chunkedx", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunkedx\r\n\r\n", 0, MAX_BODY,
     -400},
    {"TE empty", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding:\r\n\r\n", 0, MAX_BODY, -400},
    {"TE commas only", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: , ,\r\n\r\n", 0, MAX_BODY,
     -400},
    {"CL then TE",
     "POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
     MAX_BODY, -400},
    {"TE then CL",
     "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 0,
     MAX_BODY, -400},
    {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0,
     MAX_BODY, -400},
    /* chunked bodies */
    {"chunk size not hex", CHUNKED_HEAD "zz\r\n", 0, MAX_BODY, -400},
    {"chunk size empty", CHUNKED_HEAD "\r\nabc\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk size then junk", CHUNKED_HEAD "5x\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk size negative", CHUNKED_HEAD "-5\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk size 0x", CHUNKED_HEAD "0x5\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk size leading space", CHUNKED_HEAD " 5\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk ext with CTL", CHUNKED_HEAD "5;a\x01\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    /* chunk-ext = *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] ) */
    {"chunk ext no name", CHUNKED_HEAD "5;\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk ext no name, value", CHUNKED_HEAD "5;=b\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk ext ;; ", CHUNKED_HEAD "5;a;;b\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk ext unbalanced quote", CHUNKED_HEAD "5;a=\"b\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY,
     -400},
    {"chunk ext quote escapes the end", CHUNKED_HEAD "5;a=\"b\\\"\r\nhello\r\n0\r\n\r\n", 0,
     MAX_BODY, -400},
    {"chunk ext junk after quote", CHUNKED_HEAD "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY,
     -400},
    {"chunk ext empty value", CHUNKED_HEAD "5;a=\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk ext value not token", CHUNKED_HEAD "5;a=b@c\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY,
     -400},
    {"chunk ext name not token", CHUNKED_HEAD "5;a/b\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk ext space in name", CHUNKED_HEAD "5;a b\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk size trailing space", CHUNKED_HEAD "5 \r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk size trailing tab", CHUNKED_HEAD "5\t\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk ext trailing space", CHUNKED_HEAD "5;a=b \r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk ext name trailing space", CHUNKED_HEAD "5;a \r\nhello\r\n0\r\n\r\n", 0, MAX_BODY,
     -400},
    {"last chunk ext no name", CHUNKED_HEAD "0;\r\n\r\n", 0, MAX_BODY, -400},
    {"last chunk trailing space", CHUNKED_HEAD "0 \r\n\r\n", 0, MAX_BODY, -400},
    {"chunk size plus", CHUNKED_HEAD "+5\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk size 17 hex digits", CHUNKED_HEAD "10000000000000000\r\nx\r\n0\r\n\r\n", 0,
     MAX_BODY, -413},
    {"chunk size 16 f", CHUNKED_HEAD "ffffffffffffffff\r\nx\r\n0\r\n\r\n", 0, MAX_BODY, -413},
    {"chunk size 16 f unbounded", CHUNKED_HEAD "ffffffffffffffff\r\nx\r\n0\r\n\r\n", 0, SIZE_MAX,
     -413},
    {"chunk size 17 f unbounded", CHUNKED_HEAD "fffffffffffffffff\r\nx\r\n0\r\n\r\n", 0,
     SIZE_MAX, -413},
    {"chunk ext with bare CR", CHUNKED_HEAD "5;a\rb\r\nhello\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"chunk size overflow", CHUNKED_HEAD "FFFFFFFFFFFFFFFFFFFF\r\n", 0, MAX_BODY,
     HTTP_ERR_TOO_LARGE},
    {"chunk size 2^64 unbounded", CHUNKED_HEAD "10000000000000000\r\n\r\n", 0, SIZE_MAX, -413},
    {"chunk size 2^64+5 unbounded", CHUNKED_HEAD "10000000000000005\r\nhello\r\n0\r\n\r\n", 0,
     SIZE_MAX, -413},
    {"chunk size 2^68 unbounded", CHUNKED_HEAD "1000000000000000000\r\n0\r\n\r\n", 0, SIZE_MAX,
     -413},
    {"chunk over max", CHUNKED_HEAD "65\r\n", 0, 100, -413},
    {"chunks add up over max", CHUNKED_HEAD "32\r\n" "01234567890123456789012345678901234567890123456789"
                               "\r\n33\r\n", 0, 100, -413},
    {"missing CRLF after data", CHUNKED_HEAD "5\r\nhelloX\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"CR then junk after data", CHUNKED_HEAD "5\r\nhello\rX\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    {"data longer than size", CHUNKED_HEAD "5\r\nhello!\r\n0\r\n\r\n", 0, MAX_BODY, -400},
    /* The byte after the data must be the line end, even when what follows parses. */
    {"junk then last chunk", CHUNKED_HEAD "5\r\nhelloX0\r\n\r\n", 0, MAX_BODY, -400},
    {"CR junk then last chunk", CHUNKED_HEAD "5\r\nhello\rX0\r\n\r\n", 0, MAX_BODY, -400},
    {"no line end, next chunk", CHUNKED_HEAD "5\r\nhello1\r\nx\r\n0\r\n\r\n", 0, MAX_BODY,
     -400},
    {"bad trailer", CHUNKED_HEAD "0\r\nNo colon here\r\n\r\n", 0, MAX_BODY, -400},
    {"folded trailer", CHUNKED_HEAD "0\r\nA: 1\r\n 2\r\n\r\n", 0, MAX_BODY, -400},
    /* Expect */
    {"Expect other", "POST / HTTP/1.1\r\n" H11 "Expect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 0,
     MAX_BODY, HTTP_ERR_EXPECTATION},
    {"Expect list", "GET / HTTP/1.1\r\n" H11 "Expect: 100-continue, x\r\n\r\n", 0, MAX_BODY,
     -417},
    {"Expect 100-continuex", "GET / HTTP/1.1\r\n" H11 "Expect: 100-continuex\r\n\r\n", 0,
     MAX_BODY, -417},
};

/* Each malformed input gives exactly its status: in one read, a byte at a time with
 * hints, and a byte at a time without them; and nothing is returned before it. */
static void test_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        struct http_request req;
        int rc = parse_n(c->text, len, c->max_body, &req);
        if (rc != c->want)
            fail_msg("\"%s\": one read gives %d, want %d", c->name, rc, c->want);
        struct buf want = {0}, log;
        log_end(&want, c->want, 0);
        for (int forget = 0; forget <= 1; forget++) {
            run_bytewise(c->text, len, c->max_body, forget, &log);
            if (buf_len(&log) != buf_len(&want) ||
                memcmp(buf_head(&log), buf_head(&want), buf_len(&want)) != 0)
                fail_msg("\"%s\": byte by byte%s gives %.*s, want %d", c->name,
                         forget ? " (no hints)" : "", (int)buf_len(&log), buf_head(&log),
                         c->want);
            buf_release(&log);
        }
        buf_release(&want);
    }
}

/* A bad line is refused as soon as it is complete, with its own status, even when the
 * header block never ends: trickled, it must not turn into 431 at 8 KiB. */
static void test_bad_line_refused_before_header_end(void **state)
{
    (void)state;
    static const struct {
        const char *start;
        int want;
        size_t at; /* the error comes with this many bytes (the line's end, or earlier) */
    } cases[] = {
        {"GET / HTTP/2.0\r\n", HTTP_ERR_VERSION, 16},
        {"GET / http/1.1\n", HTTP_ERR_BAD_REQUEST, 7},
        {"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n", HTTP_ERR_BAD_REQUEST, 29},
        {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n", HTTP_ERR_BAD_REQUEST, 26},
    };
    char *text = malloc(HTTP_MAX_HEADER_BYTES + 100);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t sl = strlen(cases[i].start);
        memcpy(text, cases[i].start, sl);
        memcpy(text + sl, "X: ", 3);
        memset(text + sl + 3, 'v', HTTP_MAX_HEADER_BYTES + 100 - sl - 3);
        struct http_request req;
        assert_int_equal(parse_n(text, HTTP_MAX_HEADER_BYTES + 100, MAX_BODY, &req),
                         cases[i].want);
        for (int forget = 0; forget <= 1; forget++) {
            struct buf log;
            run_bytewise(text, HTTP_MAX_HEADER_BYTES + 100, MAX_BODY, forget, &log);
            char w[32];
            snprintf(w, sizeof w, "ERR %d\n", cases[i].want);
            if (buf_len(&log) != strlen(w) || memcmp(buf_head(&log), w, strlen(w)) != 0)
                fail_msg("case %zu%s: %.*s, want %s", i, forget ? " (no hints)" : "",
                         (int)buf_len(&log), buf_head(&log), w);
            buf_release(&log);
        }
        /* And the error comes with the byte that makes it one, not later. */
        struct codec_state st = {0};
        for (size_t len = 1; len <= cases[i].at; len++) {
            const char *p = guard_place(&guard, text, len);
            int rc = http_parse_request(p, len, MAX_BODY, &st, &req);
            assert_int_equal(rc, len < cases[i].at ? HTTP_NEED_MORE : cases[i].want);
        }
    }
    free(text);
}

/* A request whose start is already invalid is refused with the byte that makes it so,
 * before its line (or header section) ends (RFC 9112 2.2: a line starting with
 * whitespace right after the request line, 3: the request line): "at" is that byte's
 * count. The rest of the text never arrives. Byte by byte, with the hints and without,
 * then in one read. */
static void test_invalid_start_refused_at_once(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t at;
    } cases[] = {
        {"GET / HTTP/1.1\r\n Host: a", 17},
        {"GET / HTTP/1.1\r\n\tHost: a", 17},
        {"GET / HTTP/01.1\r\nHost: a", 13},
        {"GET / HTTP/1.10", 15},
        {"GET / HTTP/1.1 ", 15},
        {"GET / HTTP/1.1\rHost: a", 16},
        {"GET / HTTP/x", 12},
        {"GET / http/1.1", 7},
        {"GET / HTTPS/1.1", 11},
        {"GE(T / HTTP/1.1\r\n", 3},
        {"GET\t/ HTTP/1.1\r\n", 4},
        {"GET  / HTTP/1.1\r\n", 5},
        {" GET / HTTP/1.1\r\n", 1},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 1}, /* a TLS ClientHello */
        {"\r\n\rGET / HTTP/1.1\r\n", 4},
        {"GET /a\"b HTTP/1.1\r\n", 7},
        {"GET /{a} HTTP/1.1\r\n", 6},
        {"GET /a|b HTTP/1.1\r\n", 7},
        {"GET /a#f HTTP/1.1\r\n", 7},
        {"GET /\xc3\xa9 HTTP/1.1\r\n", 6},
        {"GET /%zz HTTP/1.1\r\n", 7},
        {"GET /%a HTTP/1.1\r\n", 8},
        {"GET /\r\n", 6},
        {"GET / HTTP/1.1\r\nHost: x\r\nBad Header: v", 29},
        {"GET / HTTP/1.1\r\nHost: x\r\nA\t: v", 27},
        {"GET / HTTP/1.1\r\nHost: x\r\n: v", 26},
        {"GET / HTTP/1.1\r\nHost: x\r\nA: b\x01", 30},
        {"GET / HTTP/1.1\r\nHost: x\r\nA: b\x7f", 30},
        {"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc: d", 31},
        {"GET / HTTP/1.1\r\nHost: x\r\nA\r", 27},
        {"GET / HTTP/1.1\r\nHost: x\r\n\rX", 27},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t at = cases[i].at;
        struct http_request req;
        for (int forget = 0; forget <= 1; forget++) {
            struct codec_state st = {0};
            for (size_t len = 1; len <= at; len++) {
                if (forget)
                    st = (struct codec_state){0};
                const char *p = guard_place(&guard, cases[i].text, len);
                int rc = http_parse_request(p, len, MAX_BODY, &st, &req);
                int want = len < at ? HTTP_NEED_MORE : HTTP_ERR_BAD_REQUEST;
                if (rc != want)
                    fail_msg("case %zu, %zu bytes%s: %d, want %d", i, len,
                             forget ? " (no hints)" : "", rc, want);
            }
        }
        assert_int_equal(parse_s(cases[i].text, MAX_BODY, &req), HTTP_ERR_BAD_REQUEST);
    }
}

/* What can only be judged at the end of the line still waits for it: the target's form,
 * Host, the version's number, whether the request line is complete. */
static void test_unfinished_valid_prefixes_wait(void **state)
{
    (void)state;
    static const char *const prefixes[] = {
        "GET cho HTTP/1.1",    "GET http:/x HTTP/1.1", "GET / HTTP/2.0",
        "GET / HTTP/1.1\r",    "GET /%4",              "GET / HTTP/1.1\r\nHost: a b",
        "\r",                  "\r\n\r",                "GET / HTTP/1.1\r\nHost: x\r\n\r",
        "GET / HTTP/1.1\r\nA: \x80\xff\t \r",
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        struct http_request req;
        struct codec_state st = {0};
        for (size_t len = 1; len <= strlen(prefixes[i]); len++) {
            const char *p = guard_place(&guard, prefixes[i], len);
            int rc = http_parse_request(p, len, MAX_BODY, &st, &req);
            if (rc != HTTP_NEED_MORE)
                fail_msg("prefix %zu, %zu bytes: %d", i, len, rc);
        }
    }
}

/* A 65th field line that is invalid is a 400 at its bad byte, as any other; a valid one is
 * 431 when it ends. */
static void test_line_after_max_headers(void **state)
{
    (void)state;
    struct buf text = {0};
    struct http_request req;
    assert_int_equal(buf_printf(&text, "GET / HTTP/1.1\r\nHost: x\r\n"), 0);
    for (int i = 1; i < HTTP_MAX_HEADERS; i++)
        assert_int_equal(buf_printf(&text, "H%d: %d\r\n", i, i), 0);
    size_t n = buf_len(&text);
    assert_int_equal(buf_printf(&text, " folded\r\n\r\n"), 0);
    assert_int_equal(parse_n(buf_head(&text), n + 1, MAX_BODY, &req), HTTP_ERR_BAD_REQUEST);
    assert_int_equal(parse_n(buf_head(&text), buf_len(&text), MAX_BODY, &req),
                     HTTP_ERR_BAD_REQUEST);
    buf_clear(&text);
    assert_int_equal(buf_printf(&text, "GET / HTTP/1.1\r\nHost: x\r\n"), 0);
    for (int i = 1; i < HTTP_MAX_HEADERS; i++)
        assert_int_equal(buf_printf(&text, "H%d: %d\r\n", i, i), 0);
    assert_int_equal(buf_printf(&text, "H65: v\r\n"), 0);
    assert_int_equal(parse_n(buf_head(&text), buf_len(&text) - 1, MAX_BODY, &req),
                     HTTP_NEED_MORE);
    assert_int_equal(parse_n(buf_head(&text), buf_len(&text), MAX_BODY, &req),
                     HTTP_ERR_HEADERS_TOO_LARGE);
    buf_release(&text);
}

/* Each malformed case breaks a valid request: check the valid twins parse, so the
 * cases above fail for the reason they name. */
static void test_malformed_twins_are_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "GET / HTTP/1.1\r\n" H11 "\r\n",
        "GET /a!$&'()*+,;=:@-._~%20 HTTP/1.1\r\n" H11 "\r\n",
        "GET / HTTP/1.1\r\n" H11 "A: 1\t2 3\r\n\r\n",
        "GET / HTTP/1.1\r\n" H11 "A!#$%&'*+-.^_`|~0: v\r\n\r\n",
        "GET / HTTP/1.1\r\n" H11 "A: \x80\xff\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost:\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Content-Length: 1\r\n\r\nx",
        "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: CHUNKED \r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: ,chunked,\r\n\r\n0\r\n\r\n",
        CHUNKED_HEAD "5;a=b\r\nhello\r\n0\r\n\r\n",
        CHUNKED_HEAD "5;a\r\nhello\r\n0\r\n\r\n",
        CHUNKED_HEAD "5 ;a=b\r\nhello\r\n0\r\n\r\n",
        CHUNKED_HEAD "5\t; a =\tb ;c\r\nhello\r\n0;d=\"\"\r\n\r\n",
        CHUNKED_HEAD "5;a=\"q \\\" s\\\\\";b=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n",
        CHUNKED_HEAD "5;a=\"\t\x80\xff\\\x80\"\r\nhello\r\n0\r\n\r\n",
        CHUNKED_HEAD "0000000000000000005\r\nhello\r\n0\r\n\r\n",
        CHUNKED_HEAD "0\r\nA: 1\r\n\r\n",
        "POST / HTTP/1.0\r\nExpect: 200-ok\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct http_request req;
        int rc = parse_s(good[i], MAX_BODY, &req);
        if (rc != HTTP_MESSAGE)
            fail_msg("valid case %zu gives %d", i, rc);
    }
}

/* Header block (request line + fields + empty line) over 8 KiB: 431 both when the
 * terminator comes after the limit and when none ever comes, and exactly at the limit. */
static void test_header_block_limit(void **state)
{
    (void)state;
    char *text = malloc(HTTP_MAX_HEADER_BYTES + 200);
    const char *start = "GET / HTTP/1.1\r\nHost: x\r\nX: ";
    size_t sl = strlen(start);
    struct http_request req;
    for (long extra = -3; extra <= 3; extra++) {
        /* A block of exactly HTTP_MAX_HEADER_BYTES + extra bytes. */
        size_t total = (size_t)((long)HTTP_MAX_HEADER_BYTES + extra);
        memcpy(text, start, sl);
        memset(text + sl, 'v', total - sl - 4);
        memcpy(text + total - 4, "\r\n\r\n", 4);
        int want = extra <= 0 ? HTTP_MESSAGE : HTTP_ERR_HEADERS_TOO_LARGE;
        int rc = parse_n(text, total, MAX_BODY, &req);
        if (rc != want)
            fail_msg("header block of %zu bytes: %d, want %d", total, rc, want);
        struct buf log;
        run_bytewise(text, total, MAX_BODY, 0, &log);
        if (want < 0) {
            char w[32];
            snprintf(w, sizeof w, "ERR %d\n", want);
            assert_int_equal(buf_len(&log), strlen(w));
            assert_memory_equal(buf_head(&log), w, strlen(w));
        } else {
            assert_memory_equal(buf_head(&log), "REQ GET / HTTP/1.1", 18);
        }
        buf_release(&log);
    }
    /* No terminator at all: 431 as soon as 8 KiB are there, not a byte earlier, with
     * and without hints. */
    memcpy(text, start, sl);
    memset(text + sl, 'v', HTTP_MAX_HEADER_BYTES + 100 - sl);
    for (int forget = 0; forget <= 1; forget++) {
        struct codec_state st = {0};
        for (size_t len = 1; len <= HTTP_MAX_HEADER_BYTES + 100; len++) {
            if (forget)
                st = (struct codec_state){0};
            const char *p = guard_place(&guard, text, len);
            int rc = http_parse_request(p, len, MAX_BODY, &st, &req);
            int want = len < HTTP_MAX_HEADER_BYTES ? HTTP_NEED_MORE : HTTP_ERR_HEADERS_TOO_LARGE;
            if (rc != want)
                fail_msg("%zu bytes, no terminator: %d, want %d", len, rc, want);
            if (rc < 0)
                break;
        }
    }
    /* Many short lines rather than one long one. */
    size_t n = (size_t)snprintf(text, HTTP_MAX_HEADER_BYTES, "GET / HTTP/1.1\r\nHost: x\r\n");
    while (n < HTTP_MAX_HEADER_BYTES + 50)
        n += (size_t)sprintf(text + n, "A: %s\r\n", "0123456789012345678901234567890123456789");
    assert_int_equal(parse_n(text, n, MAX_BODY, &req), HTTP_ERR_HEADERS_TOO_LARGE);
    /* Leading empty lines count towards the limit too. */
    for (size_t i = 0; i < HTTP_MAX_HEADER_BYTES; i += 2)
        memcpy(text + i, "\r\n", 2);
    assert_int_equal(parse_n(text, HTTP_MAX_HEADER_BYTES, MAX_BODY, &req),
                     HTTP_ERR_HEADERS_TOO_LARGE);
    free(text);
}

static void test_too_many_headers(void **state)
{
    (void)state;
    struct buf text = {0};
    struct http_request req;
    for (int n = HTTP_MAX_HEADERS - 1; n <= HTTP_MAX_HEADERS + 2; n++) {
        buf_clear(&text);
        assert_int_equal(buf_printf(&text, "GET / HTTP/1.1\r\nHost: x\r\n"), 0);
        for (int i = 1; i < n; i++)
            assert_int_equal(buf_printf(&text, "H%d: %d\r\n", i, i), 0);
        assert_int_equal(buf_printf(&text, "\r\n"), 0);
        int want = n <= HTTP_MAX_HEADERS ? HTTP_MESSAGE : HTTP_ERR_HEADERS_TOO_LARGE;
        int rc = parse_n(buf_head(&text), buf_len(&text), MAX_BODY, &req);
        if (rc != want)
            fail_msg("%d fields: %d, want %d", n, rc, want);
        if (rc == HTTP_MESSAGE) {
            assert_int_equal(req.n_headers, (size_t)n);
            const struct http_header *last = &req.headers[n - 1];
            char v[16];
            snprintf(v, sizeof v, "%d", n - 1);
            assert_span(last->value, last->value_len, v);
        }
        struct buf log;
        run_bytewise(buf_head(&text), buf_len(&text), MAX_BODY, 0, &log);
        if (want < 0)
            assert_memory_equal(buf_head(&log), "ERR -431\n", 9);
        buf_release(&log);
    }
    buf_release(&text);
}

/* 413 for a body over the limit comes with the header block, before any body byte. */
static void test_body_over_max_early(void **state)
{
    (void)state;
    struct http_request req;
    assert_int_equal(parse_s("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
                             MAX_BODY, &req),
                     HTTP_ERR_TOO_LARGE);
    /* Chunked: the first chunk-size line that would pass the limit, before its data. */
    char text[300];
    snprintf(text, sizeof text, "%s%x\r\n", chunked_head, MAX_BODY + 1);
    assert_int_equal(parse_s(text, MAX_BODY, &req), HTTP_ERR_TOO_LARGE);
    snprintf(text, sizeof text, "%s%x\r\n", chunked_head, MAX_BODY);
    assert_int_equal(parse_s(text, MAX_BODY, &req), HTTP_NEED_MORE);
    assert_int_equal(req.flags, HTTP_F_HEADERS_DONE | HTTP_F_CHUNKED);
}

/* A chunk-size line longer than HTTP_MAX_CHUNK_LINE: 400 once that many bytes are
 * there, with or without its end; exactly at the limit is fine. */
static void test_chunk_line_limit(void **state)
{
    (void)state;
    struct buf text = {0};
    struct http_request req;
    size_t hl = strlen(chunked_head);
    for (int extra = -1; extra <= 1; extra++) {
        buf_clear(&text);
        assert_int_equal(buf_append(&text, chunked_head, hl), 0);
        /* "1;" + ext + "\r\n" is HTTP_MAX_CHUNK_LINE + extra bytes. */
        size_t ext = (size_t)(HTTP_MAX_CHUNK_LINE + extra - 4);
        assert_int_equal(buf_printf(&text, "1;%0*d\r\nx\r\n0\r\n\r\n", (int)ext, 0), 0);
        int want = extra <= 0 ? HTTP_MESSAGE : HTTP_ERR_BAD_REQUEST;
        int rc = parse_n(buf_head(&text), buf_len(&text), MAX_BODY, &req);
        if (rc != want)
            fail_msg("chunk line of %d bytes: %d, want %d", HTTP_MAX_CHUNK_LINE + extra, rc, want);
    }
    /* Without a line end: need more below the limit, 400 at it. */
    buf_clear(&text);
    assert_int_equal(buf_append(&text, chunked_head, hl), 0);
    assert_int_equal(buf_printf(&text, "1;%0*d", HTTP_MAX_CHUNK_LINE + 10, 0), 0);
    for (size_t len = hl; len <= buf_len(&text); len++) {
        int rc = parse_n(buf_head(&text), len, MAX_BODY, &req);
        int want = len - hl < HTTP_MAX_CHUNK_LINE ? HTTP_NEED_MORE : HTTP_ERR_BAD_REQUEST;
        if (rc != want)
            fail_msg("%zu bytes of chunk line: %d, want %d", len - hl, rc, want);
    }
    buf_release(&text);
}

/* Tiny chunks with long extensions cannot make the raw body much larger than
 * max_body: the framing is bounded too (413). */
static void test_chunk_framing_bounded(void **state)
{
    (void)state;
    struct buf text = {0};
    struct http_request req;
    const size_t max = 1000;
    assert_int_equal(buf_append(&text, chunked_head, strlen(chunked_head)), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(buf_printf(&text, "1;%01000d\r\nx\r\n", i), 0);
    assert_int_equal(buf_printf(&text, "0\r\n\r\n"), 0);
    /* Only 100 bytes decoded, but ~100 KB of framing. */
    assert_int_equal(parse_n(buf_head(&text), buf_len(&text), max, &req), HTTP_ERR_TOO_LARGE);
    struct buf log;
    run_cuts(buf_head(&text), buf_len(&text), max, PLACE_HEAP, 0, (size_t[]){4096, 20000}, 2,
             &log);
    assert_memory_equal(buf_head(&log), "ERR -413\n", 9);
    buf_release(&log);
    /* The same body with a generous limit is accepted. */
    assert_int_equal(parse_n(buf_head(&text), buf_len(&text), MAX_BODY, &req), HTTP_MESSAGE);
    assert_int_equal(req.body_len, 100);
    buf_release(&text);
}

/* Trailer section over the header limit: 431. */
static void test_trailers_limit(void **state)
{
    (void)state;
    struct buf text = {0};
    struct http_request req;
    assert_int_equal(buf_append(&text, chunked_head, strlen(chunked_head)), 0);
    assert_int_equal(buf_printf(&text, "0\r\n"), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(buf_printf(&text, "T%d: %060d\r\n", i, i), 0);
    assert_int_equal(buf_printf(&text, "\r\n"), 0);
    assert_int_equal(parse_n(buf_head(&text), buf_len(&text), MAX_BODY, &req),
                     HTTP_ERR_HEADERS_TOO_LARGE);
    /* And without the final empty line. */
    assert_int_equal(parse_n(buf_head(&text), buf_len(&text) - 2, MAX_BODY, &req),
                     HTTP_ERR_HEADERS_TOO_LARGE);
    buf_release(&text);
}

/* Chunked bodies whose offsets pass 4 GiB (possible with a large max_body): resuming
 * from the hints must give what one call gives. The 4 GiB chunk lives in a sparse
 * mapping that is never touched (the parser jumps over chunk data), so this costs no
 * memory. Skipped where such a mapping is refused or size_t is 32 bits. */
static void test_chunked_offsets_beyond_4gib(void **state)
{
    (void)state;
    if (SIZE_MAX <= UINT32_MAX)
        skip();
    const size_t big = (size_t)1 << 32;
    size_t hl = strlen(chunked_head);
    const char *line1 = "100000000\r\n", *tail = "\r\n5\r\nhello\r\n0\r\n\r\n";
    size_t l1 = strlen(line1), tl = strlen(tail);
    size_t total = hl + l1 + big + tl;
    char *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        skip();
    memcpy(p, chunked_head, hl);
    memcpy(p + hl, line1, l1);
    memcpy(p + hl + l1 + big, tail, tl);

    struct http_request req;
    struct codec_state st = {0};
    assert_int_equal(http_parse_request(p, total, SIZE_MAX, &st, &req), HTTP_MESSAGE);
    assert_true(req.body_len == big + 5);
    assert_true(req.frame_len == total);

    /* The same bytes in two reads: everything but the last chunk, then the rest. */
    st = (struct codec_state){0};
    assert_int_equal(http_parse_request(p, total - 5, SIZE_MAX, &st, &req), HTTP_NEED_MORE);
    int rc = http_parse_request(p, total, SIZE_MAX, &st, &req);
    munmap(p, total);
    assert_int_equal(rc, HTTP_MESSAGE);
    assert_true(req.body_len == big + 5);
    assert_true(req.frame_len == total);
}

/* ---- over-read guard ------------------------------------------------------------------ */

static void test_guard_catches_overread(void **state)
{
    (void)state;
    assert_true(guard_faults_past_end(&guard));
}

/* Every prefix of several inputs right before the guard page: with a fresh state and
 * with the state carried from the previous (one byte shorter) prefix. Nothing may read
 * past the end, and the hints only save work: they never change the answer (a bad line
 * is refused as soon as it is complete, however the request was cut). */
static void test_overread_every_prefix(void **state)
{
    (void)state;
    const char *inputs[] = {
        "GET /index.html HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
        "\r\n\nGET / HTTP/1.0\n\n",
        "\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n folded",
        "GET /a%2 HTTP/1.1\r\nHost: x\r\nA: 1\r",
        CHUNKED_HEAD "5 ;a=\"q\\\"s\"\r\nhello\r\n0\r\n\r\n",
        CHUNKED_HEAD "5;a=\"q",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
        CHUNKED_HEAD "5;e=1\r\nhello\r\n1\nx\n0\r\nT: v\r\n\r\n",
        CHUNKED_HEAD "5\r\nhello\r",
        CHUNKED_HEAD "5\r\nhelloXY",
        CHUNKED_HEAD "zz",
        "GET / HTTP/1.1\r\nHost: x\r\nA: b\r",
        "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        "GET / HTTP/2.0\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "G",
        "\r",
        "\n",
        "GET / HTTP/1.",
    };
    struct http_request req;
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        size_t n = strlen(inputs[i]);
        const size_t maxes[] = {0, 3, MAX_BODY, SIZE_MAX};
        for (size_t mi = 0; mi < sizeof maxes / sizeof maxes[0]; mi++) {
            struct codec_state carried = {0};
            int carried_done = 0;
            for (size_t len = 0; len <= n; len++) {
                struct codec_state fresh = {0};
                const char *p = guard_place(&guard, inputs[i], len);
                int rc1 = http_parse_request(p, len, maxes[mi], &fresh, &req);
                if (rc1 == HTTP_MESSAGE) {
                    char *body = malloc(req.body_len ? req.body_len : 1);
                    http_body_copy(p, &req, body);
                    free(body);
                }
                if (carried_done)
                    continue;
                int rc2 = http_parse_request(p, len, maxes[mi], &carried, &req);
                if (rc1 != rc2)
                    fail_msg("input %zu, %zu bytes, max %zu: fresh %d, carried %d", i, len,
                             maxes[mi], rc1, rc2);
                carried_done = rc2 != HTTP_NEED_MORE;
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_with_host),
        cmocka_unit_test(test_http10_without_host),
        cmocka_unit_test(test_keepalive_semantics),
        cmocka_unit_test(test_head_and_methods),
        cmocka_unit_test(test_post_content_length),
        cmocka_unit_test(test_chunked_extensions_trailers),
        cmocka_unit_test(test_chunked_body_copy_exact),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_bare_lf_refused),
        cmocka_unit_test(test_bare_lf_smuggling),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_token_eq),
        cmocka_unit_test(test_need_more_frame_len_not_stale),
        cmocka_unit_test(test_pipelined_100),
        cmocka_unit_test(test_every_split_of_several_requests),
        cmocka_unit_test(test_every_split_short_chunked),
        cmocka_unit_test(test_every_split_error_after_messages),
        cmocka_unit_test(test_trickle_large_request),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_bad_line_refused_before_header_end),
        cmocka_unit_test(test_invalid_start_refused_at_once),
        cmocka_unit_test(test_unfinished_valid_prefixes_wait),
        cmocka_unit_test(test_line_after_max_headers),
        cmocka_unit_test(test_malformed_twins_are_valid),
        cmocka_unit_test(test_header_block_limit),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_body_over_max_early),
        cmocka_unit_test(test_chunk_line_limit),
        cmocka_unit_test(test_chunk_framing_bounded),
        cmocka_unit_test(test_trailers_limit),
        cmocka_unit_test(test_chunked_offsets_beyond_4gib),
        cmocka_unit_test(test_guard_catches_overread),
        cmocka_unit_test(test_overread_every_prefix),
    };
    return cmocka_run_group_tests_name("http_parse", tests, setup_guard, teardown_guard);
}
