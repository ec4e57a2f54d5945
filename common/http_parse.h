/* http_parse: a strict, zero-copy HTTP/1.x request parser (RFC 9112 grammar).
 *
 * Same contract as the other codecs (codec.h): given the bytes received so far,
 * starting at a request boundary, it answers "a request of frame_len bytes", "need
 * more" or an error, as the HTTP status the server should answer with before it
 * closes. Pointers in the result point into the caller's bytes; nothing is copied or
 * allocated, and every size is checked before a caller could buffer it. */
#ifndef WHARF_HTTP_PARSE_H
#define WHARF_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_HEADER_BYTES 8192 /* request line + header fields, as nginx's 8k buffer */
#define HTTP_MAX_CHUNK_LINE 1024   /* chunk-size line including extensions */

/* Return values; errors are the negated HTTP status to answer with. */
enum {
    HTTP_NEED_MORE = 0,
    HTTP_MESSAGE = 1,
    HTTP_ERR_BAD_REQUEST = -400,
    HTTP_ERR_TOO_LARGE = -413,
    HTTP_ERR_HEADERS_TOO_LARGE = -431,
    HTTP_ERR_EXPECTATION = -417,
    HTTP_ERR_NOT_IMPLEMENTED = -501,
    HTTP_ERR_VERSION = -505,
};

#define HTTP_F_CLOSE 0x01u        /* the connection closes after the response */
#define HTTP_F_KEEPALIVE_10 0x02u /* HTTP/1.0 asking for keep-alive: say so in the reply */
#define HTTP_F_CHUNKED 0x04u      /* Transfer-Encoding: chunked body */
#define HTTP_F_CONTINUE 0x08u     /* Expect: 100-continue */
#define HTTP_F_HEADERS_DONE 0x10u /* NEED_MORE with the header block complete (body pending) */

struct http_header {
    const char *name;
    const char *value;
    uint32_t name_len;
    uint32_t value_len;
};

struct http_request {
    const char *method;
    const char *target;
    uint32_t method_len;
    uint32_t target_len;
    int minor_version;   /* 0 or 1 */
    unsigned flags;      /* HTTP_F_* */
    size_t header_len;   /* request line, fields and the empty line */
    size_t frame_len;    /* header_len + body as sent (with chunk framing) */
    uint64_t body_len;   /* decoded body length */
    size_t n_headers;
    struct http_header headers[HTTP_MAX_HEADERS];
};

/* Parse one request from p[0, len). max_body bounds the decoded body (413 above it).
 * st carries resume hints between calls for the same request (zero it for a new
 * connection; it is reset when a request is returned). On HTTP_NEED_MORE with
 * HTTP_F_HEADERS_DONE set in req->flags, the header fields in req are valid (used to
 * answer "Expect: 100-continue"). */
int http_parse_request(const char *p, size_t len, size_t max_body, struct codec_state *st,
                       struct http_request *req);

/* Copy the decoded body of a parsed request (p is the request's first byte) to dst,
 * which must hold req->body_len bytes. */
void http_body_copy(const char *p, const struct http_request *req, char *dst);

/* Case-insensitive ASCII comparison of a header name or token. */
int http_token_eq(const char *a, size_t alen, const char *lit);

/* Find a header by (lower-case) name; NULL when absent. */
const struct http_header *http_find_header(const struct http_request *req, const char *name);

#endif
