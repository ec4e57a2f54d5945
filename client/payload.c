#include "payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_MAX_HEAD 16384

/* Lower-case letters, so that "upper" replies differ from "echo" ones in every byte
 * run, and no '\n' that would cut a line. */
static void fill(char *p, size_t n)
{
    static const char pat[] = "abcdefghijklmnopqrstuvwxyz";
    for (size_t i = 0; i < n; i++)
        p[i] = pat[i % (sizeof pat - 1)];
}

static int build_http(struct payload *p, const char *host, int http_close)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: %s\r\n%s\r\n", host,
                     http_close ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof req)
        return -1;
    p->req_len = (size_t)n;
    p->req = malloc(p->req_len);
    if (!p->req)
        return -1;
    memcpy(p->req, req, p->req_len);
    p->max_reply = HTTP_MAX_HEAD + 65536;
    return 0;
}

int payload_init(struct payload *p, enum proto proto, enum mode expect, size_t size,
                 size_t copies, const char *host, int http_close)
{
    memset(p, 0, sizeof *p);
    p->proto = proto;
    p->expect = expect;
    p->size = size;
    p->copies = copies ? copies : 1;
    if (proto == PROTO_HTTP) {
        if (build_http(p, host, http_close) < 0)
            return -1;
    } else {
        size_t head = proto == PROTO_FRAME ? FRAME_HEADER_LEN : 0;
        size_t tail = proto == PROTO_LINE ? 1 : 0;
        p->req_len = head + size + tail;
        p->req = malloc(p->req_len ? p->req_len : 1);
        p->exp = malloc(p->req_len ? p->req_len : 1);
        if (!p->req || !p->exp)
            return -1;
        if (head)
            codec_frame_header((uint32_t)size, (unsigned char *)p->req);
        fill(p->req + head, size);
        if (tail)
            p->req[head + size] = '\n';
        /* The reply has the request's shape, its payload put through the mode. */
        memcpy(p->exp, p->req, p->req_len);
        mode_apply(expect, p->req + head, size, p->exp + head);
        p->reply_len = p->req_len;
        p->exp_off = head;
        p->exp_payload_len = size;
        p->max_reply = 2 * size + 4096;
    }
    size_t all = p->req_len * p->copies;
    p->reqs = malloc(all ? all : 1);
    if (!p->reqs)
        return -1;
    for (size_t i = 0; i < p->copies; i++)
        memcpy(p->reqs + i * p->req_len, p->req, p->req_len);
    return 0;
}

void payload_free(struct payload *p)
{
    free(p->req);
    free(p->reqs);
    free(p->exp);
    memset(p, 0, sizeof *p);
}

void reply_rx_reset(struct reply_rx *rx, int release)
{
    if (release)
        buf_release(&rx->in);
    else
        buf_clear(&rx->in);
    rx->cs = (struct codec_state){0};
    rx->raw_got = 0;
    rx->raw_bad = 0;
}

/* Raw has no framing: a reply is complete when as many bytes as were sent came back,
 * and it is compared with the expected bytes as they stream in (nothing is buffered). */
static int raw_next(const struct payload *p, struct reply_rx *rx, const char **data, size_t *len)
{
    while (*len) {
        size_t want = p->reply_len - rx->raw_got;
        size_t n = *len < want ? *len : want;
        if (memcmp(*data, p->exp + rx->raw_got, n) != 0)
            rx->raw_bad = 1;
        rx->raw_got += (uint32_t)n;
        *data += n;
        *len -= n;
        if (rx->raw_got == p->reply_len) {
            int bad = rx->raw_bad;
            rx->raw_got = 0;
            rx->raw_bad = 0;
            return bad ? RX_MISMATCH : RX_OK;
        }
    }
    return RX_NEED_MORE;
}

static int judge(const struct payload *p, const struct codec_msg *m)
{
    return m->payload_len == p->exp_payload_len &&
                   memcmp(m->payload, p->exp + p->exp_off, p->exp_payload_len) == 0
               ? RX_OK
               : RX_MISMATCH;
}

/* Line and frame: cut with the common codecs, straight from the caller's bytes; only a
 * reply cut by the end of a read is copied, into rx->in. */
static int framed_next(const struct payload *p, struct reply_rx *rx, const char **data,
                       size_t *len)
{
    struct codec_msg m;
    int rc;
    /* A reply begun in an earlier read: complete it with just the bytes it lacks (the
     * rest of this read is then cut in place, not copied). */
    while (buf_len(&rx->in)) {
        rc = codec_decode(p->proto, buf_head(&rx->in), buf_len(&rx->in), p->max_reply, &rx->cs, &m);
        if (rc == CODEC_MESSAGE) {
            rc = judge(p, &m);
            buf_consume(&rx->in, m.frame_len);
            return rc;
        }
        if (rc < 0)
            return RX_GARBLED;
        if (!*len)
            return RX_NEED_MORE;
        size_t take = *len, have = buf_len(&rx->in);
        if (p->proto == PROTO_FRAME) {
            size_t want = m.frame_len ? m.frame_len - have : FRAME_HEADER_LEN - have;
            if (want < take)
                take = want;
        } else {
            const char *nl = memchr(*data, '\n', *len);
            if (nl)
                take = (size_t)(nl - *data) + 1;
        }
        if (buf_append(&rx->in, *data, take) < 0)
            return RX_GARBLED;
        *data += take;
        *len -= take;
    }
    if (!*len)
        return RX_NEED_MORE;
    rc = codec_decode(p->proto, *data, *len, p->max_reply, &rx->cs, &m);
    if (rc == CODEC_NEED_MORE) {
        size_t need = m.frame_len > *len ? m.frame_len : *len;
        if (buf_reserve(&rx->in, need) < 0 || buf_append(&rx->in, *data, *len) < 0)
            return RX_GARBLED;
        *data += *len;
        *len = 0;
        return RX_NEED_MORE;
    }
    if (rc < 0)
        return RX_GARBLED;
    rc = judge(p, &m);
    *data += m.frame_len;
    *len -= m.frame_len;
    return rc;
}

/* One HTTP/1.1 response with a Content-Length body; 200 is a success, any other
 * status a mismatch. Responses always go through rx->in (churn is not byte-bound). */
static int http_next(const struct payload *p, struct reply_rx *rx, const char **data, size_t *len)
{
    if (*len && buf_append(&rx->in, *data, *len) < 0)
        return RX_GARBLED;
    *data += *len;
    *len = 0;
    const char *s = buf_head(&rx->in);
    size_t n = buf_len(&rx->in);
    if (!n)
        return RX_NEED_MORE;
    const char *end = memmem(s, n < HTTP_MAX_HEAD ? n : HTTP_MAX_HEAD, "\r\n\r\n", 4);
    if (!end)
        return n >= HTTP_MAX_HEAD ? RX_GARBLED : RX_NEED_MORE;
    size_t head = (size_t)(end - s) + 4;
    if (head < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ')
        return RX_GARBLED;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return RX_GARBLED;
        status = status * 10 + (s[i] - '0');
    }
    long long body = -1;
    for (const char *line = memchr(s, '\n', head) + 1; line < s + head - 2;) {
        const char *eol = memchr(line, '\n', (size_t)(s + head - line));
        if (!eol)
            break;
        if (eol - line > 15 && strncasecmp(line, "content-length:", 15) == 0)
            body = strtoll(line + 15, NULL, 10);
        else if (eol - line > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0)
            return RX_GARBLED; /* chunked bodies: not what wharfd sends for GET / */
        line = eol + 1;
    }
    if (body < 0 || (size_t)body > p->max_reply)
        return RX_GARBLED;
    if (n < head + (size_t)body)
        return RX_NEED_MORE;
    buf_consume(&rx->in, head + (size_t)body);
    return status == 200 ? RX_OK : RX_MISMATCH;
}

int reply_next(const struct payload *p, struct reply_rx *rx, const char **data, size_t *len)
{
    switch (p->proto) {
    case PROTO_RAW:
        return raw_next(p, rx, data, len);
    case PROTO_LINE:
    case PROTO_FRAME:
        return framed_next(p, rx, data, len);
    case PROTO_HTTP:
        return http_next(p, rx, data, len);
    default:
        return RX_GARBLED;
    }
}
