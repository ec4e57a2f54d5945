/* libFuzzer target: the HTTP request parser (common/http_parse.c) and the HTTP side of
 * the handler (server/handler.c, server/http_reply.c, server/stats.c).
 *
 * For each input, with the server's default body limit and with a small one:
 *  - every call's result is checked on its own: a known status; for a request,
 *    header_len <= frame_len <= len and header_len <= HTTP_MAX_HEADER_BYTES, the method
 *    and every header name a token, the target visible ASCII, every value free of
 *    control characters and of surrounding whitespace, everything inside the header
 *    block, body_len <= the limit, Content-Length and Host rules kept, the flags
 *    consistent; the body is copied with http_body_copy into a heap block of exactly
 *    body_len bytes and compared with an independent de-chunking; NEED_MORE never with a
 *    full header buffer; the request parses the same from exactly its own bytes;
 *  - the pipelined requests of the input, parsed in one read, a byte per read (small
 *    inputs), in two reads and in reads of random sizes (each time keeping the unconsumed
 *    bytes and the codec_state, as the server does) give the same log: every request
 *    field, every body, the final error or pending state; the "need" hint given with
 *    NEED_MORE equals the request's final length;
 *  - handler_process, in one read and cut into reads, answers with well-formed
 *    responses, one per request (and one for the error), the same ones whatever the
 *    cutting; HEAD answers carry no body; /echo returns the request body. */
#include <time.h>

#include "../../common/http_parse.h"
#include "../../common/mode.h"
#include "../../server/config.h"
#include "../../server/handler.h"
#include "../../server/http_reply.h"
#include "../../server/stats.h"
#include "fuzz.h"

#define FUZZ_MAX_INPUT (64 * 1024)

/* ---- independent character classes (RFC 9110 5.6.2, 5.5) ------------------- */

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_field_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/* RFC 3986: unreserved / "%" / sub-delims / ":" "@" "/" "?" / "[" "]" (no "#") */
static int is_uri_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("-._~%!$&'()*+,;=:@/?[]", c));
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One of RFC 9112 3.2's forms: "/...", "*", "scheme:..." or, for CONNECT, anything. */
static int target_form(const char *t, size_t n, const char *method, size_t mlen)
{
    if (t[0] == '/' || (n == 1 && t[0] == '*') || (mlen == 7 && !memcmp(method, "CONNECT", 7)))
        return 1;
    size_t i = 0;
    while (i < n && (((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z') ||
                     (i > 0 && ((t[i] >= '0' && t[i] <= '9') || strchr("+-.", t[i])))))
        i++;
    return i > 0 && i < n && t[i] == ':';
}

static int lit_eq(const char *a, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != (unsigned char)lit[i])
            return 0;
    }
    return 1;
}

static int inside(const char *x, size_t n, const char *lo, const char *hi)
{
    return x >= lo && x <= hi && n <= (size_t)(hi - x);
}

/* ---- an independent de-chunker -------------------------------------------------- */

/* Decode the chunked body in p[0, n) (already judged valid by the parser) into out.
 * Returns the bytes the body occupies, or (size_t)-1 when it is not what the parser
 * should have accepted. */
static size_t ref_dechunk(const char *p, size_t n, struct buf *out)
{
    size_t i = 0;
    for (;;) {
        uint64_t size = 0;
        size_t digits = 0;
        for (; i < n; i++, digits++) {
            char c = p[i];
            int d = c >= '0' && c <= '9' ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                break;
            if (size > (UINT64_MAX >> 4))
                return (size_t)-1;
            size = size * 16 + (uint64_t)d;
        }
        if (digits == 0)
            return (size_t)-1;
        const char *nl = i < n ? memchr(p + i, '\n', n - i) : NULL;
        if (!nl)
            return (size_t)-1;
        i = (size_t)(nl - p) + 1;
        if (size == 0)
            break;
        if (size > n - i)
            return (size_t)-1;
        FUZZ_CHECK(buf_append(out, p + i, (size_t)size) == 0);
        i += (size_t)size;
        if (i < n && p[i] == '\r')
            i++;
        if (i >= n || p[i] != '\n')
            return (size_t)-1;
        i++;
    }
    /* trailer fields, then an empty line */
    for (;;) {
        const char *nl = i < n ? memchr(p + i, '\n', n - i) : NULL;
        if (!nl)
            return (size_t)-1;
        size_t line = (size_t)(nl - p) - i;
        i = (size_t)(nl - p) + 1;
        if (line == 0 || (line == 1 && p[i - 2] == '\r'))
            return i;
    }
}

/* ---- checking one result -------------------------------------------------------- */

static int known_status(int rc)
{
    switch (rc) {
    case HTTP_NEED_MORE:
    case HTTP_MESSAGE:
    case HTTP_ERR_BAD_REQUEST:
    case HTTP_ERR_TOO_LARGE:
    case HTTP_ERR_HEADERS_TOO_LARGE:
    case HTTP_ERR_EXPECTATION:
    case HTTP_ERR_NOT_IMPLEMENTED:
    case HTTP_ERR_VERSION:
        return 1;
    }
    return 0;
}

static void check_header(const char *p, const struct http_request *req, const struct http_header *h)
{
    const char *hend = p + req->header_len;
    FUZZ_CHECK(h->name_len > 0 && inside(h->name, h->name_len, p, hend));
    FUZZ_CHECK(inside(h->value, h->value_len, p, hend));
    for (uint32_t i = 0; i < h->name_len; i++)
        FUZZ_CHECK(is_tchar((unsigned char)h->name[i]));
    FUZZ_CHECK(h->name[h->name_len] == ':');
    for (uint32_t i = 0; i < h->value_len; i++)
        FUZZ_CHECK(is_field_char((unsigned char)h->value[i]));
    if (h->value_len) {
        FUZZ_CHECK(h->value[0] != ' ' && h->value[0] != '\t');
        FUZZ_CHECK(h->value[h->value_len - 1] != ' ' && h->value[h->value_len - 1] != '\t');
    }
    /* after the value: only whitespace up to the end of the line */
    const char *q = h->value + h->value_len;
    while (*q == ' ' || *q == '\t')
        q++;
    FUZZ_CHECK(*q == '\n' || (q[0] == '\r' && q[1] == '\n'));
}

/* Check a request the parser returned from p[0, len) with the given body limit. */
static void check_message(const char *p, size_t len, size_t max, const struct http_request *req)
{
    FUZZ_CHECK(req->header_len > 0 && req->header_len <= HTTP_MAX_HEADER_BYTES);
    FUZZ_CHECK(req->header_len <= req->frame_len && req->frame_len <= len);
    FUZZ_CHECK(req->body_len <= max);
    FUZZ_CHECK(!(req->flags & HTTP_F_HEADERS_DONE));
    FUZZ_CHECK(req->minor_version == 0 || req->minor_version == 1);
    FUZZ_CHECK(p[req->header_len - 1] == '\n');

    const char *hend = p + req->header_len;
    FUZZ_CHECK(req->method_len > 0 && inside(req->method, req->method_len, p, hend));
    for (uint32_t i = 0; i < req->method_len; i++)
        FUZZ_CHECK(is_tchar((unsigned char)req->method[i]));
    FUZZ_CHECK(req->target == req->method + req->method_len + 1);
    FUZZ_CHECK(req->target_len > 0 && inside(req->target, req->target_len, p, hend));
    for (uint32_t i = 0; i < req->target_len; i++) {
        FUZZ_CHECK(is_uri_char((unsigned char)req->target[i]));
        if (req->target[i] == '%')
            FUZZ_CHECK(i + 2 < req->target_len && is_hex(req->target[i + 1]) &&
                       is_hex(req->target[i + 2]));
    }
    FUZZ_CHECK(target_form(req->target, req->target_len, req->method, req->method_len));
    FUZZ_CHECK(memcmp(req->target + req->target_len, " HTTP/1.", 8) == 0);
    /* only empty lines before the request line */
    for (const char *q = p; q < req->method; q++)
        FUZZ_CHECK(*q == '\r' || *q == '\n');

    FUZZ_CHECK(req->n_headers <= HTTP_MAX_HEADERS);
    int hosts = 0, lengths = 0, encodings = 0;
    uint64_t clen = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        check_header(p, req, h);
        if (i > 0)
            FUZZ_CHECK(h->name > req->headers[i - 1].value);
        if (lit_eq(h->name, h->name_len, "host")) {
            hosts++;
            for (uint32_t k = 0; k < h->value_len; k++)
                FUZZ_CHECK(is_uri_char((unsigned char)h->value[k]) &&
                           !strchr("/?@", h->value[k]));
        }
        encodings += lit_eq(h->name, h->name_len, "transfer-encoding");
        if (lit_eq(h->name, h->name_len, "content-length")) {
            lengths++;
            FUZZ_CHECK(h->value_len > 0);
            for (uint32_t k = 0; k < h->value_len; k++) {
                FUZZ_CHECK(h->value[k] >= '0' && h->value[k] <= '9');
                clen = clen * 10 + (uint64_t)(h->value[k] - '0');
            }
        }
    }
    const struct http_header *host = http_find_header(req, "host");
    FUZZ_CHECK(hosts ? host && lit_eq(host->name, host->name_len, "host") : !host);
    FUZZ_CHECK(hosts <= 1 && (req->minor_version == 0 || hosts == 1));
    FUZZ_CHECK(lengths <= 1 && !(lengths && encodings));

    int chunked = (req->flags & HTTP_F_CHUNKED) != 0;
    FUZZ_CHECK(chunked == (encodings > 0));
    FUZZ_CHECK(!chunked || req->minor_version == 1);
    FUZZ_CHECK(!(req->flags & HTTP_F_CONTINUE) || req->minor_version == 1);
    FUZZ_CHECK(!((req->flags & HTTP_F_CLOSE) && (req->flags & HTTP_F_KEEPALIVE_10)));
    FUZZ_CHECK(!(req->flags & HTTP_F_KEEPALIVE_10) || req->minor_version == 0);
    FUZZ_CHECK(req->minor_version == 1 || (req->flags & (HTTP_F_CLOSE | HTTP_F_KEEPALIVE_10)));

    /* the body: copied into exactly body_len bytes, checked against the de-chunker */
    char *body = fuzz_malloc((size_t)req->body_len);
    http_body_copy(p, req, body);
    if (chunked) {
        struct buf ref = {0};
        size_t used = ref_dechunk(p + req->header_len, req->frame_len - req->header_len, &ref);
        FUZZ_CHECK(used == req->frame_len - req->header_len);
        FUZZ_CHECK(buf_len(&ref) == req->body_len);
        FUZZ_CHECK(req->body_len == 0 || memcmp(buf_head(&ref), body, req->body_len) == 0);
        buf_release(&ref);
    } else {
        FUZZ_CHECK(req->body_len == clen);
        FUZZ_CHECK(req->frame_len == req->header_len + req->body_len);
        FUZZ_CHECK(req->body_len == 0 || memcmp(p + req->header_len, body, req->body_len) == 0);
    }
    free(body);
}

static void check_result(const char *p, size_t len, size_t max, int rc,
                         const struct http_request *req)
{
    FUZZ_CHECK(known_status(rc));
    if (rc == HTTP_MESSAGE) {
        check_message(p, len, max, req);
    } else if (rc == HTTP_NEED_MORE) {
        if (req->flags & HTTP_F_HEADERS_DONE) {
            FUZZ_CHECK(req->header_len <= len && req->header_len <= HTTP_MAX_HEADER_BYTES);
            FUZZ_CHECK(req->body_len <= max);
            if (!(req->flags & HTTP_F_CHUNKED))
                FUZZ_CHECK(req->header_len + req->body_len > len);
        } else {
            /* without a complete header block, a full header buffer is an error */
            FUZZ_CHECK(len < HTTP_MAX_HEADER_BYTES);
        }
    }
}

/* ---- parsing a stream --------------------------------------------------------- */

struct http_run {
    size_t max;
    struct codec_state cs;
    struct buf log;
    struct http_request last; /* the last NEED_MORE result */
    size_t hint;              /* the last "need" hint for the pending request, 0 if none */
    int whole;                /* a one-read run: also re-parse each request on its own */
    int failed;
};

static void log_request(struct buf *log, const char *p, const struct http_request *req)
{
    fuzz_log(log, "request fl=%zu hl=%zu bl=%llu flags=%x minor=%d method=", req->frame_len,
             req->header_len, (unsigned long long)req->body_len, req->flags, req->minor_version);
    fuzz_log_bytes(log, req->method, req->method_len);
    fuzz_log(log, " target=");
    fuzz_log_bytes(log, req->target, req->target_len);
    fuzz_log(log, "\n");
    for (size_t i = 0; i < req->n_headers; i++) {
        fuzz_log(log, "  ");
        fuzz_log_bytes(log, req->headers[i].name, req->headers[i].name_len);
        fuzz_log(log, ": ");
        fuzz_log_bytes(log, req->headers[i].value, req->headers[i].value_len);
        fuzz_log(log, "\n");
    }
    char *body = fuzz_malloc((size_t)req->body_len);
    http_body_copy(p, req, body);
    fuzz_log(log, "  body=");
    fuzz_log_bytes(log, body, (size_t)req->body_len);
    fuzz_log(log, "\n");
    free(body);
}

/* The request must come out the same from exactly its own bytes. */
static void check_alone(const char *p, size_t max, const struct http_request *req)
{
    char *own = fuzz_copy(p, req->frame_len);
    struct codec_state cs = {0};
    struct http_request again;
    int rc = http_parse_request(own, req->frame_len, max, &cs, &again);
    FUZZ_CHECK(rc == HTTP_MESSAGE);
    FUZZ_CHECK(again.frame_len == req->frame_len && again.header_len == req->header_len);
    FUZZ_CHECK(again.body_len == req->body_len && again.flags == req->flags);
    FUZZ_CHECK(again.n_headers == req->n_headers);
    free(own);
}

static size_t http_step(void *ctx, const char *p, size_t len, int *stop)
{
    struct http_run *r = ctx;
    size_t off = 0;
    for (;;) {
        struct http_request req;
        memset(&req, 0xa5, sizeof req);
        int rc = http_parse_request(p + off, len - off, r->max, &r->cs, &req);
        check_result(p + off, len - off, r->max, rc, &req);
        if (rc == HTTP_MESSAGE) {
            FUZZ_CHECK(r->cs.scanned == 0 && r->cs.aux1 == 0 && r->cs.aux2 == 0);
            FUZZ_CHECK(r->hint == 0 || r->hint == req.frame_len);
            r->hint = 0;
            log_request(&r->log, p + off, &req);
            if (r->whole)
                check_alone(p + off, r->max, &req);
            off += req.frame_len;
            /* the server parses the next request only if bytes are left */
            if (off == len)
                return off;
            continue;
        }
        if (rc == HTTP_NEED_MORE) {
            r->last = req;
            if ((req.flags & HTTP_F_HEADERS_DONE) && !(req.flags & HTTP_F_CHUNKED)) {
                size_t hint = req.header_len + (size_t)req.body_len;
                FUZZ_CHECK(r->hint == 0 || r->hint == hint);
                r->hint = hint;
            }
            return off;
        }
        fuzz_log(&r->log, "error %d\n", rc);
        r->failed = 1;
        *stop = 1;
        return off;
    }
}

static void http_run_stream(struct http_run *r, const uint8_t *data, size_t size,
                            enum cut_mode mode)
{
    memset(&r->last, 0, sizeof r->last);
    size_t kept = fuzz_feed(data, size, mode, http_step, r);
    if (!r->failed && kept) {
        fuzz_log(&r->log, "end: %zu bytes pending, flags=%x", kept, r->last.flags);
        if (r->last.flags & HTTP_F_HEADERS_DONE)
            fuzz_log(&r->log, " hl=%zu bl=%llu", r->last.header_len,
                     (unsigned long long)r->last.body_len);
        fuzz_log(&r->log, "\n");
    }
}

/* ---- the handler ---------------------------------------------------------------- */

static struct config fuzz_cfg;
static struct settings fuzz_settings;
static struct worker_stats fuzz_worker;
static struct acceptor_stats fuzz_acceptor;
static struct stats_registry fuzz_registry;
static struct http_cache fuzz_cache;

static void fuzz_init_server(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    fuzz_cfg.workers = 1;
    fuzz_settings.max_message = 1u << 20;
    fuzz_settings.stats_allow_all = 1; /* no socket here: render the stats pages anyway */
    fuzz_cfg.set = fuzz_settings;
    fuzz_registry.cfg = &fuzz_cfg;
    fuzz_registry.workers[0] = &fuzz_worker;
    fuzz_registry.n_workers = 1;
    fuzz_registry.acceptors[0] = &fuzz_acceptor;
    fuzz_registry.n_acceptors = 1;
    fuzz_registry.backend = "fuzz";
    http_cache_refresh(&fuzz_cache, (time_t)0);
}

struct handler_run {
    struct handler_env env;
    struct codec_state cs;
    struct buf out;
    unsigned state;
    size_t consumed;
    uint32_t messages;
    enum handler_verdict verdict;
};

static size_t handler_step(void *ctx, const char *p, size_t len, int *stop)
{
    struct handler_run *h = ctx;
    struct handler_io io = {.proto = PROTO_HTTP, .cs = &h->cs, .out = &h->out, .state = h->state,
                            .fd = -1};
    handler_process(&h->env, &io, p, len);
    h->state = io.state;
    FUZZ_CHECK(io.consumed <= len);
    FUZZ_CHECK(io.verdict != HANDLER_NOMEM);
    FUZZ_CHECK(io.verdict != HANDLER_CONTINUE || io.partial == (io.consumed < len));
    h->consumed += io.consumed;
    h->messages += io.messages;
    h->verdict = io.verdict;
    if (io.verdict != HANDLER_CONTINUE)
        *stop = 1;
    return io.consumed;
}

struct response {
    int status;
    size_t clen;
    const char *ctype;
    size_t ctype_len;
    int close, keepalive, allow;
    const char *body;
    size_t body_len;
};

static const char *find_crlf(const char *p, const char *end)
{
    for (; p + 1 < end; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

/* Parse one response at *pos of out[0, n); head: the request was HEAD (no body). */
static void parse_response(const char *out, size_t n, size_t *pos, int head, struct response *r)
{
    const char *p = out + *pos, *end = out + n;
    memset(r, 0, sizeof *r);
    const char *eol = find_crlf(p, end);
    FUZZ_CHECK(eol && eol - p > 13 && memcmp(p, "HTTP/1.1 ", 9) == 0 && p[12] == ' ');
    r->status = atoi(p + 9);
    FUZZ_CHECK(r->status >= 100 && r->status <= 599);
    FUZZ_CHECK(strlen(http_status_text(r->status)) == (size_t)(eol - p - 13) &&
               memcmp(p + 13, http_status_text(r->status), (size_t)(eol - p - 13)) == 0);
    p = eol + 2;
    int lengths = 0;
    for (;;) {
        eol = find_crlf(p, end);
        FUZZ_CHECK(eol != NULL);
        if (eol == p)
            break;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        FUZZ_CHECK(colon && colon[1] == ' ');
        size_t nlen = (size_t)(colon - p);
        const char *v = colon + 2;
        size_t vlen = (size_t)(eol - v);
        for (const char *q = p; q < eol; q++)
            FUZZ_CHECK(is_field_char((unsigned char)*q));
        if (lit_eq(p, nlen, "content-length")) {
            lengths++;
            char num[32];
            FUZZ_CHECK(vlen > 0 && vlen < sizeof num);
            memcpy(num, v, vlen);
            num[vlen] = 0;
            r->clen = (size_t)strtoull(num, NULL, 10);
        } else if (lit_eq(p, nlen, "content-type")) {
            r->ctype = v;
            r->ctype_len = vlen;
        } else if (lit_eq(p, nlen, "connection")) {
            r->close |= lit_eq(v, vlen, "close");
            r->keepalive |= lit_eq(v, vlen, "keep-alive");
        } else if (lit_eq(p, nlen, "allow")) {
            r->allow = 1;
        }
        p = eol + 2;
    }
    p += 2;
    if (r->status == 100) {
        FUZZ_CHECK(lengths == 0);
    } else {
        FUZZ_CHECK(lengths == 1 && r->ctype);
        r->body = p;
        r->body_len = head ? 0 : r->clen;
        FUZZ_CHECK(r->body_len <= (size_t)(end - p));
        p += r->body_len;
    }
    *pos = (size_t)(p - out);
}

static int is_stats_doc(const struct response *r)
{
    return r->ctype && (lit_eq(r->ctype, r->ctype_len, "application/json") ||
                        lit_eq(r->ctype, r->ctype_len, "text/plain; version=0.0.4"));
}

/* Check the handler's replies against the requests (parsed again, one read) and write
 * what must not depend on the cutting to log. */
static void check_replies(const struct handler_run *h, const uint8_t *data, size_t size,
                          struct buf *log)
{
    const char *out = buf_len(&h->out) ? buf_head(&h->out) : "";
    size_t n = buf_len(&h->out), pos = 0, off = 0;
    struct codec_state cs = {0};
    uint32_t answered = 0;
    for (;;) {
        struct http_request req;
        int rc = off < size ? http_parse_request((const char *)data + off, size - off,
                                                 h->env.max_message, &cs, &req)
                            : HTTP_NEED_MORE;
        if (rc == HTTP_NEED_MORE) {
            FUZZ_CHECK(answered == h->messages && h->verdict == HANDLER_CONTINUE);
            break;
        }
        int head = rc == HTTP_MESSAGE && req.method_len == 4 && !memcmp(req.method, "HEAD", 4);
        struct response r;
        do
            parse_response(out, n, &pos, head, &r);
        while (r.status == 100);
        /* the counters and the uptime in /stats and /metrics change from run to run */
        int stats = is_stats_doc(&r);
        fuzz_log(log, "%d %zu%s%s%s ", r.status, stats ? 0 : r.clen, r.close ? " close" : "",
                 r.keepalive ? " keep-alive" : "", r.allow ? " allow" : "");
        if (!stats)
            fuzz_log_bytes(log, r.body, r.body_len);
        fuzz_log(log, "\n");
        if (rc < 0) {
            /* the error answer is the parser's status, and the last */
            FUZZ_CHECK(r.status == -rc && r.close && h->verdict == HANDLER_ERROR);
            FUZZ_CHECK(answered == h->messages);
            break;
        }
        answered++;
        FUZZ_CHECK(r.status == 200 || r.status == 404 || r.status == 405);
        FUZZ_CHECK((r.status == 405) == r.allow);
        int last = (req.flags & HTTP_F_CLOSE) || h->env.draining;
        FUZZ_CHECK(r.close == last);
        FUZZ_CHECK(r.keepalive == (!last && (req.flags & HTTP_F_KEEPALIVE_10)));
        if (r.status == 200 && lit_eq(r.ctype, r.ctype_len, "application/octet-stream")) {
            /* /echo: the (transformed) request body */
            FUZZ_CHECK(req.method_len == 4 && !memcmp(req.method, "POST", 4));
            FUZZ_CHECK(r.clen == req.body_len);
            char *body = fuzz_malloc((size_t)req.body_len);
            http_body_copy((const char *)data + off, &req, body);
            mode_apply(h->env.mode, body, (size_t)req.body_len, body);
            FUZZ_CHECK(head || req.body_len == 0 || memcmp(body, r.body, r.body_len) == 0);
            free(body);
        }
        off += req.frame_len;
        if (last) {
            FUZZ_CHECK(h->verdict == HANDLER_CLOSE && answered == h->messages);
            break;
        }
    }
    /* nothing after the last answer, except "100 Continue" for a pending request */
    while (pos < n) {
        struct response r;
        parse_response(out, n, &pos, 0, &r);
        FUZZ_CHECK(r.status == 100 && h->verdict == HANDLER_CONTINUE);
    }
    FUZZ_CHECK(h->consumed == off);
}

static void handler_check(const uint8_t *data, size_t size, size_t max, uint64_t h,
                          enum cut_mode cut, struct buf *log)
{
    struct handler_run run = {
        .env = {.settings = &fuzz_settings,
                .mode = (h >> 8) & 1 ? MODE_UPPER : MODE_ECHO,
                .max_message = max,
                .draining = (h >> 9) % 8 == 0,
                .http = &fuzz_cache,
                .stats = &fuzz_worker,
                .registry = &fuzz_registry},
        .verdict = HANDLER_CONTINUE,
    };
    fuzz_feed(data, size, cut, handler_step, &run);
    check_replies(&run, data, size, log);
    buf_release(&run.out);
}

/* ---- the target ------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return 0;
    fuzz_init_server();
    uint64_t h = fuzz_hash(data, size);
    size_t limits[2] = {1u << 20, (size_t)(h % 64)};
    for (int i = 0; i < 2; i++) {
        struct http_run whole = {.max = limits[i], .whole = 1};
        http_run_stream(&whole, data, size, CUT_WHOLE);
        static const enum cut_mode cuts[] = {CUT_BYTES, CUT_TWO, CUT_RANDOM};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            if (cuts[c] == CUT_BYTES && size > 512)
                continue;
            struct http_run cut = {.max = limits[i]};
            http_run_stream(&cut, data, size, cuts[c]);
            fuzz_same_log(&whole.log, "one read", &cut.log, "cut into reads");
            buf_release(&cut.log);
        }
        buf_release(&whole.log);

        struct buf a = {0}, b = {0};
        handler_check(data, size, limits[i], h, CUT_WHOLE, &a);
        handler_check(data, size, limits[i], h, size > 512 ? CUT_RANDOM : CUT_BYTES, &b);
        fuzz_same_log(&a, "replies, one read", &b, "replies, cut into reads");
        buf_release(&a);
        buf_release(&b);
    }
    return 0;
}
