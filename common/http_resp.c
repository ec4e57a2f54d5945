/* http_resp: see http_resp.h. The head is validated left to right in one pass, so a
 * prefix of a head answers NEED_MORE or the error the whole head has; the body is a
 * byte-at-a-time state machine (bulk for chunk data) that keeps no bytes. */
#include "http_resp.h"

#include <string.h>

#define MAX_LENGTH (UINT64_C(1) << 62)

/* Byte classes as tables (every byte of every head passes through them: a table load
 * is what keeps the client's parsing cost below the server's). */
static const unsigned char tchar_tab[256] = {
    ['0' ... '9'] = 1, ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1, ['!'] = 1, ['#'] = 1,
    ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1,
    ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
};

/* A field value's byte (RFC 9110 5.5): HTAB, SP, VCHAR or obs-text. */
static const unsigned char vchar_tab[256] = {
    ['\t'] = 1, [' ' ... '~'] = 1, [0x80 ... 0xff] = 1,
};

static int is_tchar(unsigned char c) { return tchar_tab[c]; }
static int is_vchar(unsigned char c) { return vchar_tab[c]; }

static int hex_of(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int ieq(const char *a, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lit[i])
            return 0;
    return 1;
}

const char *http_resp_error_name(int rc)
{
    switch (rc) {
    case HRESP_ERR_STATUS:
        return "status line";
    case HRESP_ERR_FIELD:
        return "header field";
    case HRESP_ERR_LENGTH:
        return "body length";
    case HRESP_ERR_TOO_LARGE:
        return "head too large";
    case HRESP_ERR_CHUNK:
        return "chunked body";
    case HRESP_ERR_UPGRADE:
        return "101 upgrade";
    default:
        return "none";
    }
}

/* ---- the head ---- */

/* What the fields said, while they are read. */
struct fields {
    int n;
    int has_length, has_te, te_chunked, conn_close, conn_keep;
    uint64_t length;
};

/* The end of the line starting at p[i]: the index of its CR. -1: need more; -2: a byte
 * not allowed in a line (a bare CR or LF, a control character). */
static long line_end(const char *p, size_t len, size_t i)
{
    for (; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r') {
            if (i + 1 == len)
                return -1;
            return p[i + 1] == '\n' ? (long)i : -2;
        }
        if (!is_vchar(c))
            return -2;
    }
    return -1;
}

/* "HTTP/1.x DDD[ reason]" at p[0, n). */
static int status_line(const char *p, size_t n, struct http_resp *r)
{
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return HRESP_ERR_STATUS;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return HRESP_ERR_STATUS;
        status = status * 10 + (p[i] - '0');
    }
    if (status < 100 || status > 599 || (n > 12 && p[12] != ' '))
        return HRESP_ERR_STATUS;
    r->minor = p[7] - '0';
    r->status = status;
    return 0;
}

/* A status line arriving: its bytes so far must be a prefix of one. */
static int status_prefix_ok(const char *p, size_t len)
{
    static const char lit[] = "HTTP/1.";
    for (size_t i = 0; i < len && i < 7; i++)
        if (p[i] != lit[i])
            return 0;
    return 1;
}

/* Each element of a comma-separated list value, trimmed; fn sees (element, length). */
static int each_element(const char *v, size_t n, int (*fn)(struct fields *, const char *, size_t),
                        struct fields *f)
{
    size_t i = 0;
    while (i <= n) {
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (s < e && (v[s] == ' ' || v[s] == '\t'))
            s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && fn(f, v + s, e - s) < 0)
            return -1;
        i++;
    }
    return 0;
}

static int te_element(struct fields *f, const char *t, size_t n)
{
    if (f->te_chunked)
        return -1; /* chunked must be the last coding, and only once */
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)t[i]) && t[i] != ';' && t[i] != '=' && t[i] != ' ')
            return -1;
    f->te_chunked = ieq(t, n, "chunked");
    return 0;
}

static int conn_element(struct fields *f, const char *t, size_t n)
{
    if (ieq(t, n, "close"))
        f->conn_close = 1;
    else if (ieq(t, n, "keep-alive"))
        f->conn_keep = 1;
    return 0;
}

static int content_length(struct fields *f, const char *v, size_t n)
{
    uint64_t x = 0;
    if (n == 0 || n > 19)
        return HRESP_ERR_LENGTH;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return HRESP_ERR_LENGTH;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (x > MAX_LENGTH || (f->has_length && x != f->length))
        return HRESP_ERR_LENGTH;
    f->has_length = 1;
    f->length = x;
    return 0;
}

/* One field line p[0, n) (without its CRLF). */
static int field_line(const char *p, size_t n, struct fields *f)
{
    size_t c = 0;
    while (c < n && is_tchar((unsigned char)p[c]))
        c++;
    if (c == 0 || c == n || p[c] != ':')
        return HRESP_ERR_FIELD; /* also a fold (leading SP) and SP before the colon */
    if (++f->n > HRESP_MAX_FIELDS)
        return HRESP_ERR_TOO_LARGE;
    const char *v = p + c + 1;
    size_t vn = n - c - 1;
    while (vn && (*v == ' ' || *v == '\t'))
        v++, vn--;
    while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
        vn--;
    if (ieq(p, c, "content-length"))
        return content_length(f, v, vn);
    if (ieq(p, c, "transfer-encoding")) {
        f->has_te = 1;
        return each_element(v, vn, te_element, f) < 0 ? HRESP_ERR_LENGTH : 0;
    }
    if (ieq(p, c, "connection"))
        each_element(v, vn, conn_element, f);
    return 0;
}

/* From the status and the fields: how the body is framed and whether the server
 * closes after it (RFC 9112 6.3, 9.3). */
static int decide(struct http_resp *r, const struct fields *f, int head_request)
{
    if (f->has_te && (f->has_length || r->minor == 0))
        return HRESP_ERR_LENGTH; /* a smuggling shape, or chunked in HTTP/1.0 */
    if (r->status == 101)
        return HRESP_ERR_UPGRADE;
    r->close = f->conn_close || (r->minor == 0 && !f->conn_keep);
    r->interim = r->status < 200;
    r->length = 0;
    if (r->interim || head_request || r->status == 204 || r->status == 304)
        r->body = HB_NONE;
    else if (f->has_te)
        r->body = f->te_chunked ? HB_CHUNKED : HB_UNTIL_CLOSE;
    else if (f->has_length)
        r->body = HB_LENGTH, r->length = f->length;
    else
        r->body = HB_UNTIL_CLOSE;
    if (r->body == HB_UNTIL_CLOSE)
        r->close = 1;
    if (r->interim)
        r->close = 0;
    return HRESP_DONE;
}

int http_resp_head(const char *p, size_t len, int head_request, struct http_resp *r)
{
    struct fields f = {0};
    size_t limit = len < HRESP_MAX_HEAD ? len : HRESP_MAX_HEAD;
    long e = line_end(p, limit, 0);
    if (e == -1) {
        if (!status_prefix_ok(p, limit))
            return HRESP_ERR_STATUS;
        return len >= HRESP_MAX_HEAD ? HRESP_ERR_TOO_LARGE : HRESP_NEED_MORE;
    }
    if (e < 0 || status_line(p, (size_t)e, r) < 0)
        return HRESP_ERR_STATUS;
    for (size_t i = (size_t)e + 2;;) {
        e = line_end(p, limit, i);
        if (e == -1)
            return len >= HRESP_MAX_HEAD ? HRESP_ERR_TOO_LARGE : HRESP_NEED_MORE;
        if (e < 0)
            return HRESP_ERR_FIELD;
        if ((size_t)e == i) {
            r->head_len = i + 2;
            return decide(r, &f, head_request);
        }
        int rc = field_line(p + i, (size_t)e - i, &f);
        if (rc < 0)
            return rc;
        i = (size_t)e + 2;
    }
}

/* ---- the body ---- */

enum {
    CS_SIZE, CS_SIZE_MORE, CS_EXT, CS_SIZE_LF, CS_DATA, CS_DATA_CR, CS_DATA_LF,
    CS_TRAILER_START, CS_TRAILER, CS_TRAILER_LF, CS_END_LF, CS_DONE
};

void http_body_start(struct http_body *b, const struct http_resp *r)
{
    memset(b, 0, sizeof *b);
    b->kind = (uint8_t)r->body;
    b->left = r->body == HB_LENGTH ? r->length : 0;
    b->state = CS_SIZE;
}

/* The chunk-size line: SIZE[;ext]CRLF. */
static int chunk_size_byte(struct http_body *b, unsigned char c)
{
    int h = hex_of(c);
    if (++b->line > HRESP_MAX_CHUNK_LINE)
        return -1;
    if (b->state == CS_SIZE || (b->state == CS_SIZE_MORE && h >= 0)) {
        if (h < 0 || ++b->digits > 15)
            return -1;
        b->left = b->left * 16 + (uint64_t)h;
        b->state = CS_SIZE_MORE;
    } else if (b->state == CS_SIZE_MORE && c == ';') {
        b->state = CS_EXT;
    } else if ((b->state == CS_SIZE_MORE || b->state == CS_EXT) && c == '\r') {
        b->state = CS_SIZE_LF;
    } else if (b->state == CS_EXT) {
        if (!is_vchar(c) || c == '\t' || c == ' ')
            return -1;
    } else {
        return -1;
    }
    return 0;
}

/* Every state but the data's, one byte. */
static int chunk_byte(struct http_body *b, unsigned char c)
{
    switch (b->state) {
    case CS_SIZE: case CS_SIZE_MORE: case CS_EXT:
        return chunk_size_byte(b, c);
    case CS_SIZE_LF:
        if (c != '\n')
            return -1;
        b->line = 0;
        b->digits = 0;
        b->state = b->left ? CS_DATA : CS_TRAILER_START;
        return 0;
    case CS_DATA_CR:
        b->state = CS_DATA_LF;
        return c == '\r' ? 0 : -1;
    case CS_DATA_LF:
        b->state = CS_SIZE;
        return c == '\n' ? 0 : -1;
    case CS_TRAILER_START:
        if (c == '\r') {
            b->state = CS_END_LF;
            return 0;
        }
        b->state = CS_TRAILER;
        return is_tchar(c) && ++b->trailer <= HRESP_MAX_TRAILER ? 0 : -1;
    case CS_TRAILER:
        if (c == '\r')
            b->state = CS_TRAILER_LF;
        return is_vchar(c) || c == '\r' ? (++b->trailer <= HRESP_MAX_TRAILER ? 0 : -1) : -1;
    case CS_TRAILER_LF:
        b->state = CS_TRAILER_START;
        return c == '\n' ? 0 : -1;
    case CS_END_LF:
        b->state = CS_DONE;
        return c == '\n' ? 0 : -1;
    default:
        return -1;
    }
}

static int feed_chunked(struct http_body *b, const char *p, size_t len, size_t *used,
                        http_body_fn fn, void *ctx)
{
    size_t i = 0;
    while (i < len) {
        if (b->state == CS_DATA) {
            size_t n = len - i < b->left ? len - i : (size_t)b->left;
            if (fn)
                fn(ctx, p + i, n);
            b->left -= n;
            b->total += n;
            i += n;
            if (!b->left)
                b->state = CS_DATA_CR;
            continue;
        }
        if (chunk_byte(b, (unsigned char)p[i++]) < 0) {
            *used = i;
            return HRESP_ERR_CHUNK;
        }
        if (b->state == CS_DONE) {
            *used = i;
            return HRESP_DONE;
        }
    }
    *used = i;
    return HRESP_NEED_MORE;
}

int http_body_feed(struct http_body *b, const char *p, size_t len, size_t *used,
                   http_body_fn fn, void *ctx)
{
    size_t n;
    switch (b->kind) {
    case HB_NONE:
        *used = 0;
        return HRESP_DONE;
    case HB_LENGTH:
        n = len < b->left ? len : (size_t)b->left;
        if (fn && n)
            fn(ctx, p, n);
        b->left -= n;
        b->total += n;
        *used = n;
        return b->left ? HRESP_NEED_MORE : HRESP_DONE;
    case HB_CHUNKED:
        return feed_chunked(b, p, len, used, fn, ctx);
    default:
        if (fn && len)
            fn(ctx, p, len);
        b->total += len;
        *used = len;
        return HRESP_NEED_MORE;
    }
}
