/* proto_http: HTTP/1.1 requests as the spec says (http_spec.h) and their responses,
 * read with the strict parser of common/http_resp.h. A head is parsed in place from the
 * caller's bytes; only a head cut by the end of a read is copied (into rx->in, at most
 * HRESP_MAX_HEAD bytes). Bodies are never kept: they are counted through the body state
 * machine and, with --expect-body, compared as they pass. A response the parser
 * rejects is RX_GARBLED (the stream cannot be trusted); one that fails --expect-status
 * or --expect-body is RX_MISMATCH with the reason in rx->flags; wrk's "Non-2xx or 3xx"
 * (status 400 and above) is RX_OK with RXF_NON2XX. 1xx interim responses are skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "payload.h"
#include "proto.h"

/* Whether one of the -H lines names the field. */
static int has_field(const struct http_spec *h, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < h->n_headers; i++)
        if (strncasecmp(h->headers[i], name, n) == 0 && h->headers[i][n] == ':')
            return 1;
    return 0;
}

/* The script's request (script.h): its bytes as they are, nothing added. */
static int build_raw(struct payload *p, const struct http_spec *h)
{
    p->req = malloc(h->raw_len);
    if (!p->req)
        return -1;
    memcpy(p->req, h->raw_req, h->raw_len);
    p->req_len = h->raw_len;
    p->head_request = h->raw_head;
    p->max_reply = HRESP_MAX_HEAD;
    return 0;
}

static int http_build(struct payload *p, int http_close)
{
    const struct http_spec *h = p->http;
    if (h->raw_req) /* a script's: sent as it is */
        return build_raw(p, h);
    struct buf b = {0};
    int rc = buf_printf(&b, "%s %s HTTP/1.1\r\n", h->method, h->path);
    if (!has_field(h, "host"))
        rc |= buf_printf(&b, "Host: %s\r\n", h->host);
    for (int i = 0; i < h->n_headers; i++)
        rc |= buf_printf(&b, "%s\r\n", h->headers[i]);
    if (h->body && !has_field(h, "content-length"))
        rc |= buf_printf(&b, "Content-Length: %zu\r\n", h->body_len);
    if (http_close)
        rc |= buf_printf(&b, "Connection: close\r\n");
    rc |= buf_printf(&b, "\r\n");
    if (h->body_len)
        rc |= buf_append(&b, h->body, h->body_len);
    if (rc) {
        buf_release(&b);
        return -1;
    }
    p->req_len = buf_len(&b);
    p->req = malloc(p->req_len);
    if (p->req)
        memcpy(p->req, buf_head(&b), p->req_len);
    buf_release(&b);
    p->head_request = strcmp(h->method, "HEAD") == 0;
    p->max_reply = HRESP_MAX_HEAD;
    return p->req ? 0 : -1;
}

struct body_check {
    const struct http_spec *h;
    struct reply_rx *rx;
};

/* --expect-body: compare the body bytes as they pass. */
static void check_body(void *ctx, const char *d, size_t n)
{
    struct body_check *c = ctx;
    size_t want = strlen(c->h->expect_body), at = c->rx->body_seen;
    if (at + n > want || memcmp(c->h->expect_body + at, d, n) != 0)
        c->rx->flags |= RXF_BAD_BODY;
    c->rx->body_seen = (uint32_t)(at + n <= want ? at + n : want + 1);
}

/* The head is there: judge the status, set up the body. 0, or 1 for a 1xx to skip. */
static int head_done(const struct payload *p, struct reply_rx *rx, const struct http_resp *r)
{
    if (r->interim)
        return 1;
    rx->status = (uint16_t)r->status;
    rx->flags = (uint8_t)(r->close ? RXF_CLOSE : 0);
    if (r->status >= 400)
        rx->flags |= RXF_NON2XX;
    if (p->http->expect_status && !http_spec_status_ok(p->http, r->status))
        rx->flags |= RXF_BAD_STATUS;
    rx->body_seen = 0;
    http_body_start(&rx->body, r);
    rx->in_body = 1;
    return 0;
}

/* The verdict of a complete response. */
static int verdict(const struct payload *p, struct reply_rx *rx)
{
    rx->in_body = 0;
    if (p->http->expect_body && rx->body_seen != strlen(p->http->expect_body))
        rx->flags |= RXF_BAD_BODY;
    return rx->flags & (RXF_BAD_STATUS | RXF_BAD_BODY) ? RX_MISMATCH : RX_OK;
}

/* Parse a head from (*data, *len), through rx->in when it began in an earlier read.
 * HRESP_DONE with *data advanced past it, HRESP_NEED_MORE with every byte kept, or an
 * error. */
static int take_head(const struct payload *p, struct reply_rx *rx, const char **data,
                     size_t *len, struct http_resp *r)
{
    size_t had = buf_len(&rx->in);
    if (!had) {
        int rc = http_resp_head(*data, *len, p->head_request || rx->head, r);
        if (rc == HRESP_NEED_MORE && buf_append(&rx->in, *data, *len) < 0)
            return HRESP_ERR_TOO_LARGE;
        size_t used = rc == HRESP_DONE ? r->head_len : rc == HRESP_NEED_MORE ? *len : 0;
        *data += used;
        *len -= used;
        return rc;
    }
    size_t take = *len < HRESP_MAX_HEAD - had ? *len : HRESP_MAX_HEAD - had;
    if (buf_append(&rx->in, *data, take) < 0)
        return HRESP_ERR_TOO_LARGE;
    int rc = http_resp_head(buf_head(&rx->in), buf_len(&rx->in), p->head_request || rx->head,
                            r);
    size_t used = rc == HRESP_DONE ? r->head_len - had : rc == HRESP_NEED_MORE ? take : 0;
    *data += used;
    *len -= used;
    if (rc == HRESP_DONE)
        buf_clear(&rx->in);
    return rc;
}

static int http_next(const struct payload *p, struct reply_rx *rx, const char **data, size_t *len)
{
    for (;;) {
        if (!rx->in_body) {
            struct http_resp r;
            if (!*len)
                return RX_NEED_MORE;
            int rc = take_head(p, rx, data, len, &r);
            if (rc == HRESP_NEED_MORE)
                return RX_NEED_MORE;
            if (rc < 0)
                return RX_GARBLED;
            if (head_done(p, rx, &r))
                continue;
        }
        size_t used = 0;
        struct body_check bc = {p->http, rx};
        int rc = http_body_feed(&rx->body, *data, *len, &used,
                                p->http->expect_body ? check_body : NULL, &bc);
        *data += used;
        *len -= used;
        if (rc == HRESP_DONE)
            return verdict(p, rx);
        return rc == HRESP_NEED_MORE ? RX_NEED_MORE : RX_GARBLED;
    }
}

static int http_at_eof(const struct payload *p, struct reply_rx *rx)
{
    if (!rx->in_body || rx->body.kind != HB_UNTIL_CLOSE)
        return RX_NEED_MORE;
    rx->flags |= RXF_CLOSE;
    return verdict(p, rx);
}

const struct proto_ops proto_http_ops = {
    .build = http_build, .next_reply = http_next, .at_eof = http_at_eof};
