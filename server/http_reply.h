/* http_reply: writing HTTP/1.1 responses into an output buffer.
 *
 * The Date header is formatted once per second per worker (http_cache), and the
 * response to the benchmark route is kept prebuilt with it, so a pipelined batch of
 * "GET /" costs one memcpy per request. */
#ifndef WHARF_HTTP_REPLY_H
#define WHARF_HTTP_REPLY_H

#include <stddef.h>
#include <time.h>

#include "../common/buf.h"

#define REPLY_CLOSE 0x01u       /* "Connection: close" */
#define REPLY_KEEPALIVE_10 0x02u /* "Connection: keep-alive" for an HTTP/1.0 client */
#define REPLY_HEAD 0x04u        /* headers only (HEAD request) */

#define HELLO_BODY "Hello, World!"

struct http_cache {
    time_t sec;
    size_t date_len;
    size_t hello_len;
    size_t hello_close_len;
    char date[48];   /* "Date: ...\r\n" */
    char hello[256]; /* the whole keep-alive response to GET / */
    char hello_close[256]; /* the same with "Connection: close" (short connections) */
};

/* Re-format the date and the canned response when the second has changed. */
void http_cache_refresh(struct http_cache *hc, time_t now);

const char *http_status_text(int status);

/* Append a response's status line and headers for a body of body_len bytes, and reserve
 * room for the body: *body_dst is where the caller writes it (NULL for REPLY_HEAD).
 * allow: value of an Allow header, or NULL. Returns 0 or -1 (no memory). */
int http_reply_begin(struct buf *out, const struct http_cache *hc, int status, const char *ctype,
                     size_t body_len, unsigned flags, const char *allow, char **body_dst);

/* A complete response with the given body. Returns 0 or -1. */
int http_reply(struct buf *out, const struct http_cache *hc, int status, const char *ctype,
               const void *body, size_t body_len, unsigned flags, const char *allow);

/* The canned 200 response to GET / (HTTP/1.1; flags: 0 or REPLY_CLOSE, which adds
 * "Connection: close" exactly where http_reply_begin puts it). Returns 0 or -1. */
int http_reply_hello(struct buf *out, const struct http_cache *hc, unsigned flags);

/* "HTTP/1.1 100 Continue". Returns 0 or -1. */
int http_reply_continue(struct buf *out);

#endif
