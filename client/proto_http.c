/* proto_http: GET / and one HTTP/1.1 response with a Content-Length body; 200 is a
 * success, any other status a mismatch. Responses always go through rx->in (churn,
 * its only user, is not byte-bound). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "payload.h"
#include "proto.h"

#define HTTP_MAX_HEAD 16384

static int http_build(struct payload *p, const char *host, int http_close)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: %s\r\n%s\r\n",
                     host ? host : "wharf", http_close ? "Connection: close\r\n" : "");
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

/* The status of the head s[0, head): 100-999, or -1 when it is not a status line. */
static int status_of(const char *s, size_t head)
{
    if (head < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ')
        return -1;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        status = status * 10 + (s[i] - '0');
    }
    return status;
}

/* The Content-Length of the head s[0, head); -1 when there is none or the body is
 * chunked (not what wharfd sends for GET /). */
static long long body_length(const char *s, size_t head)
{
    long long body = -1;
    for (const char *line = memchr(s, '\n', head) + 1; line < s + head - 2;) {
        const char *eol = memchr(line, '\n', (size_t)(s + head - line));
        if (!eol)
            break;
        if (eol - line > 15 && strncasecmp(line, "content-length:", 15) == 0)
            body = strtoll(line + 15, NULL, 10);
        else if (eol - line > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0)
            return -1;
        line = eol + 1;
    }
    return body;
}

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
    int status = status_of(s, head);
    if (status < 0)
        return RX_GARBLED;
    long long body = body_length(s, head);
    if (body < 0 || (size_t)body > p->max_reply)
        return RX_GARBLED;
    if (n < head + (size_t)body)
        return RX_NEED_MORE;
    buf_consume(&rx->in, head + (size_t)body);
    return status == 200 ? RX_OK : RX_MISMATCH;
}

const struct proto_ops proto_http_ops = {.build = http_build, .next_reply = http_next};
