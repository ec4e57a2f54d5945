#include "http_reply.h"

#include <stdio.h>
#include <string.h>

const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void http_cache_refresh(struct http_cache *hc, time_t now)
{
    if (hc->sec == now && hc->date_len)
        return;
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&now, &tm);
    hc->sec = now;
    hc->date_len = (size_t)snprintf(hc->date, sizeof hc->date,
                                    "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                                    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                                    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    /* Both variants canned: formatting one per connection-close request cost more
     * user-space instructions than all the rest of the connection. */
    for (int close = 0; close < 2; close++) {
        char *dst = close ? hc->hello_close : hc->hello;
        size_t *len = close ? &hc->hello_close_len : &hc->hello_len;
        *len = (size_t)snprintf(dst, sizeof hc->hello,
                                "HTTP/1.1 200 OK\r\nServer: wharf\r\n%s"
                                "Content-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s",
                                hc->date, sizeof HELLO_BODY - 1,
                                close ? "Connection: close\r\n" : "", HELLO_BODY);
    }
}

int http_reply_begin(struct buf *out, const struct http_cache *hc, int status, const char *ctype,
                     size_t body_len, unsigned flags, const char *allow, char **body_dst)
{
    const char *conn = (flags & REPLY_CLOSE)        ? "Connection: close\r\n"
                       : (flags & REPLY_KEEPALIVE_10) ? "Connection: keep-alive\r\n"
                                                      : "";
    size_t send_len = (flags & REPLY_HEAD) ? 0 : body_len;
    /* Status line and fixed headers are short; 256 bytes covers them with the Allow value. */
    if (buf_reserve(out, 256 + hc->date_len + send_len) < 0)
        return -1;
    int n = snprintf(buf_tail(out), buf_room(out),
                     "HTTP/1.1 %d %s\r\nServer: wharf\r\n%.*sContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%s%s%s%s\r\n",
                     status, http_status_text(status), (int)hc->date_len, hc->date, ctype,
                     body_len, conn, allow ? "Allow: " : "", allow ? allow : "",
                     allow ? "\r\n" : "");
    if (n < 0 || (size_t)n >= buf_room(out) - send_len)
        return -1;
    buf_commit(out, (size_t)n);
    *body_dst = send_len ? buf_tail(out) : NULL;
    buf_commit(out, send_len);
    return 0;
}

int http_reply(struct buf *out, const struct http_cache *hc, int status, const char *ctype,
               const void *body, size_t body_len, unsigned flags, const char *allow)
{
    char *dst;
    if (http_reply_begin(out, hc, status, ctype, body_len, flags, allow, &dst) < 0)
        return -1;
    if (dst)
        memcpy(dst, body, body_len);
    return 0;
}

int http_reply_hello(struct buf *out, const struct http_cache *hc, unsigned flags)
{
    if (flags & REPLY_CLOSE)
        return buf_append(out, hc->hello_close, hc->hello_close_len);
    return buf_append(out, hc->hello, hc->hello_len);
}

int http_reply_continue(struct buf *out)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    return buf_append(out, msg, sizeof msg - 1);
}
