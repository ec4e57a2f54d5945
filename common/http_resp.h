/* http_resp: a strict, incremental HTTP/1.x response parser (RFC 9112), for the load
 * client: the response head (status line and header fields) in one call over the
 * bytes received so far, then the body through a small state machine that needs no
 * buffer (Content-Length, chunked, or up to the close).
 *
 * Strict like the request parser (http_parse.h): a bare LF, an obsolete line fold, a
 * control character in a field, white space before a colon, a Content-Length that is
 * not all digits (or two that differ), Content-Length together with
 * Transfer-Encoding, a bad chunk line: each is an error, never a response. Nothing is
 * allocated; the head is bounded (HRESP_MAX_HEAD) so a caller that must keep a
 * partial head knows the most it will ever hold. */
#ifndef WHARF_HTTP_RESP_H
#define WHARF_HTTP_RESP_H

#include <stddef.h>
#include <stdint.h>

#define HRESP_MAX_HEAD 16384    /* status line + fields + empty line */
#define HRESP_MAX_FIELDS 100
#define HRESP_MAX_TRAILER 4096  /* trailer fields of a chunked body */
#define HRESP_MAX_CHUNK_LINE 1024

/* Return values of http_resp_head and http_body_feed. */
enum {
    HRESP_NEED_MORE = 0,
    HRESP_DONE = 1,           /* a head (or a body) is complete */
    HRESP_ERR_STATUS = -1,    /* not a status line (or a version other than 1.0/1.1) */
    HRESP_ERR_FIELD = -2,     /* a malformed header field */
    HRESP_ERR_LENGTH = -3,    /* Content-Length / Transfer-Encoding framing */
    HRESP_ERR_TOO_LARGE = -4, /* head above HRESP_MAX_HEAD or too many fields */
    HRESP_ERR_CHUNK = -5,     /* a malformed chunked body */
    HRESP_ERR_UPGRADE = -6,   /* 101 Switching Protocols: no longer HTTP */
};

enum hresp_body { HB_NONE, HB_LENGTH, HB_CHUNKED, HB_UNTIL_CLOSE };

struct http_resp {
    int status;          /* 100-599 */
    int minor;           /* 0 or 1 */
    int close;           /* the server closes after this response */
    int interim;         /* 1xx (not 101): a response before the real one, no body */
    enum hresp_body body;
    uint64_t length;     /* HB_LENGTH: the body's bytes */
    size_t head_len;     /* status line + fields + the empty line */
};

/* Parse the head at p[0, len) (len may run past it, into the body or the next
 * response). head_request: the request was HEAD, so no body follows whatever the
 * fields say. Returns HRESP_DONE with r filled, HRESP_NEED_MORE (not all there yet:
 * call again from the same start with more bytes), or an HRESP_ERR_*. Never reads
 * p[len] or beyond. */
int http_resp_head(const char *p, size_t len, int head_request, struct http_resp *r);

/* A body being received: set up by http_body_start, fed by http_body_feed. */
struct http_body {
    uint8_t kind;       /* enum hresp_body */
    uint8_t state;      /* chunked: where in the chunk grammar */
    uint16_t digits;    /* chunked: hex digits of the current size */
    uint32_t line;      /* chunked: bytes of the current size or trailer line */
    uint32_t trailer;   /* chunked: trailer bytes so far */
    uint64_t left;      /* bytes of the current chunk (or the whole length) to come */
    uint64_t total;     /* body bytes seen (decoded) */
};

void http_body_start(struct http_body *b, const struct http_resp *r);

/* The decoded body bytes, as they pass (optional). */
typedef void (*http_body_fn)(void *ctx, const char *p, size_t n);

/* Consume body bytes from p[0, len); *used says how many (the rest belongs to the next
 * response). Returns HRESP_DONE when the body ended, HRESP_NEED_MORE when all len
 * bytes were used and more are due (always so for HB_UNTIL_CLOSE: the close ends it),
 * or HRESP_ERR_CHUNK. Decoded bytes go to fn(ctx, ...) when fn is set. */
int http_body_feed(struct http_body *b, const char *p, size_t len, size_t *used,
                   http_body_fn fn, void *ctx);

/* "status line", "header field", ...: the error's name, for messages and tests. */
const char *http_resp_error_name(int rc);

#endif
