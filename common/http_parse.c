#include "http_parse.h"

#include <string.h>

/* tchar (RFC 9110 5.6.2): the characters of methods, header names and tokens. */
static const unsigned char tchar[256] = {
    ['0' ... '9'] = 1, ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1,
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
    ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
};

/* field-value characters: VCHAR, SP, HTAB and obs-text; no other control characters. */
static const unsigned char vchar[256] = {
    ['\t'] = 1, [' ' ... '~'] = 1, [0x80 ... 0xff] = 1,
};

/* request-target (RFC 9112 3.2, RFC 3986): unreserved, "%", sub-delims, ":" "@" "/" "?"
 * and the "[" "]" of IP literals. No fragment "#", no space, control or 8-bit byte, none
 * of the characters URIs never hold raw ('"' "<" ">" "\\" "^" "`" "{" "|" "}"). */
#define PCT 2 /* "%": must start a %XX escape */
static const unsigned char target_char[256] = {
    ['0' ... '9'] = 1, ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1,
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['%'] = PCT,
    ['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1,
    ['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1,
    [':'] = 1, ['@'] = 1, ['/'] = 1, ['?'] = 1, ['['] = 1, [']'] = 1,
};

/* Host = uri-host [":" port] (RFC 9112 3.2): a reg-name or IP literal, and ":". The
 * target's characters without "/", "?" and "@". */
static const unsigned char host_char[256] = {
    ['0' ... '9'] = 1, ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1,
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['%'] = 1,
    ['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1,
    ['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1,
    [':'] = 1, ['['] = 1, [']'] = 1,
};

static inline unsigned char lower(unsigned char c)
{
    return (unsigned char)(c | (((unsigned)(c - 'A') < 26u) << 5)); /* branch-free */
}

/* 0-15 for a hex digit, 16 for anything else. */
static inline unsigned hex_digit(char ch)
{
    unsigned c = lower((unsigned char)ch);
    if (c - '0' < 10u)
        return c - '0';
    if (c - 'a' < 6u)
        return c - 'a' + 10u;
    return 16;
}

int http_token_eq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    if (alen != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

const struct http_header *http_find_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (http_token_eq(req->headers[i].name, req->headers[i].name_len, name))
            return &req->headers[i];
    return NULL;
}

/* One line of p[0, end): content in [p, *eol), next line at *next; 0 when no line has
 * ended yet. Lines end with CRLF only: a bare LF is refused. RFC 9112 2.2 lets a
 * recipient take it as a line end, but a proxy in front that does not (or that does
 * where we would not) sees other lines than we do: "X-Pad: x\nContent-Length: 24" is
 * one field to one parser and two to the other, which is how a request gets smuggled
 * inside another. A CR elsewhere is caught by the character checks. */
static int next_line(const char *p, const char *end, const char **eol, const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
        return 0;
    if (nl == p || nl[-1] != '\r')
        return HTTP_ERR_BAD_REQUEST;
    *eol = nl - 1;
    *next = nl + 1;
    return 1;
}

static int parse_version(const char *p, const char *eol, int *minor)
{
    if (eol - p != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.')
        return HTTP_ERR_BAD_REQUEST;
    if (p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
        return HTTP_ERR_BAD_REQUEST;
    if (p[5] != '1')
        return HTTP_ERR_VERSION;
    /* A later 1.x minor version is handled as 1.1 (RFC 9110 2.5). */
    *minor = p[7] == '0' ? 0 : 1;
    return 0;
}

/* One of the forms of RFC 9112 3.2: origin-form "/...", absolute-form "scheme:..." (for
 * http and https with a host, RFC 9110 4.2), asterisk-form "*" (meant for OPTIONS, also
 * used by SSDP's M-SEARCH), or for CONNECT the authority-form (its characters were
 * checked). */
static int target_form_ok(const char *t, size_t n, const struct http_request *req)
{
    if (t[0] == '/' || (n == 1 && t[0] == '*'))
        return 1;
    if (req->method_len == 7 && memcmp(req->method, "CONNECT", 7) == 0)
        return 1;
    size_t i = 0; /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
    while (i < n && ((lower((unsigned char)t[i]) >= 'a' && lower((unsigned char)t[i]) <= 'z') ||
                     (i > 0 && ((t[i] >= '0' && t[i] <= '9') || strchr("+-.", t[i])))))
        i++;
    if (i == 0 || i == n || t[i] != ':')
        return 0;
    if (!http_token_eq(t, i, "http") && !http_token_eq(t, i, "https"))
        return 1;
    /* "http://" then a host that is not empty */
    return n - i > 3 && t[i + 1] == '/' && t[i + 2] == '/' && !strchr("/?:", t[i + 3]);
}

static int parse_request_line(const char *p, const char *eol, struct http_request *req)
{
    const char *q = p;
    while (q < eol && tchar[(unsigned char)*q])
        q++;
    if (q == p || q == eol || *q != ' ')
        return HTTP_ERR_BAD_REQUEST;
    req->method = p;
    req->method_len = (uint32_t)(q - p);
    const char *t = ++q;
    for (unsigned k; q < eol && (k = target_char[(unsigned char)*q]) != 0; q++)
        if (k == PCT && (eol - q < 3 || hex_digit(q[1]) == 16 || hex_digit(q[2]) == 16))
            return HTTP_ERR_BAD_REQUEST;
    if (q == t || q == eol || *q != ' ' || !target_form_ok(t, (size_t)(q - t), req))
        return HTTP_ERR_BAD_REQUEST;
    req->target = t;
    req->target_len = (uint32_t)(q - t);
    return parse_version(q + 1, eol, &req->minor_version);
}

/* Does [p, end) hold field-value characters only? Eight bytes at a time: a word is
 * clean when no byte is below 0x20 and none is 0x7f (bytes of 0x80 and above are
 * obs-text, allowed); a word that is not (usually one holding a tab) is checked byte by
 * byte. The words are read with memcpy, so alignment does not matter. */
static int value_chars_ok(const char *p, const char *end)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t below_space = (x - ones * 0x20) & ~x & highs;
        uint64_t y = x ^ (ones * 0x7f);
        uint64_t is_del = (y - ones) & ~y & highs;
        if (below_space | is_del) {
            for (int i = 0; i < 8; i++)
                if (!vchar[(unsigned char)p[i]])
                    return 0;
        }
        p += 8;
    }
    for (; p < end; p++)
        if (!vchar[(unsigned char)*p])
            return 0;
    return 1;
}

/* A field line "name: value" with optional whitespace around the value. */
static int parse_field(const char *p, const char *eol, struct http_header *h)
{
    const char *q = p;
    while (q < eol && tchar[(unsigned char)*q])
        q++;
    /* Empty names, obs-fold (a line starting with whitespace) and whitespace before
     * the colon are all rejected: each has been used for request smuggling. */
    if (q == p || q == eol || *q != ':')
        return HTTP_ERR_BAD_REQUEST;
    h->name = p;
    h->name_len = (uint32_t)(q - p);
    q++;
    while (q < eol && (*q == ' ' || *q == '\t'))
        q++;
    const char *v = q;
    if (!value_chars_ok(v, eol))
        return HTTP_ERR_BAD_REQUEST;
    q = eol;
    while (q > v && (q[-1] == ' ' || q[-1] == '\t'))
        q--;
    h->value = v;
    h->value_len = (uint32_t)(q - v);
    return 0;
}

/* Content-Length: 1*DIGIT, nothing else (no sign, no list, no whitespace inside). */
static int parse_content_length(const struct http_header *h, uint64_t *out)
{
    if (h->value_len == 0)
        return HTTP_ERR_BAD_REQUEST;
    uint64_t n = 0;
    for (uint32_t i = 0; i < h->value_len; i++) {
        unsigned d = (unsigned char)h->value[i] - '0';
        if (d > 9 || n > (UINT64_MAX - d) / 10)
            return HTTP_ERR_BAD_REQUEST;
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

/* Walk a comma-separated token list, calling back for each element. */
typedef void (*list_item_fn)(const char *tok, size_t len, void *arg);

static void for_each_list_item(const struct http_header *h, list_item_fn fn, void *arg)
{
    const char *q = h->value, *end = h->value + h->value_len;
    while (q < end) {
        while (q < end && (*q == ' ' || *q == '\t' || *q == ','))
            q++;
        const char *s = q;
        while (q < end && *q != ',')
            q++;
        const char *e = q;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s)
            fn(s, (size_t)(e - s), arg);
    }
}

struct conn_tokens {
    int close, keep_alive;
};

static void connection_item(const char *tok, size_t len, void *arg)
{
    struct conn_tokens *ct = arg;
    if (http_token_eq(tok, len, "close"))
        ct->close = 1;
    else if (http_token_eq(tok, len, "keep-alive"))
        ct->keep_alive = 1;
}

struct te_codings {
    int count, chunked, chunked_last;
};

static void te_item(const char *tok, size_t len, void *arg)
{
    struct te_codings *te = arg;
    te->count++;
    te->chunked_last = http_token_eq(tok, len, "chunked");
    te->chunked += te->chunked_last;
}

/* What the framing-relevant fields say, gathered while the fields are parsed. */
struct fields_seen {
    int hosts, lengths, encodings;
    uint64_t content_length;
    struct conn_tokens conn;
    struct te_codings te;
    int expect_continue, expect_other;
};

static int note_field(const struct http_header *h, struct fields_seen *fs)
{
    switch (h->name_len) {
    case 4:
        if (http_token_eq(h->name, 4, "host")) {
            fs->hosts++;
            /* an invalid Host is a 400 (RFC 9112 3.2, a MUST) */
            const unsigned char *c = (const unsigned char *)h->value, *e = c + h->value_len;
            while (c < e && host_char[*c])
                c++;
            if (c != e)
                return HTTP_ERR_BAD_REQUEST;
        }
        break;
    case 6:
        if (http_token_eq(h->name, 6, "expect")) {
            if (http_token_eq(h->value, h->value_len, "100-continue"))
                fs->expect_continue = 1;
            else
                fs->expect_other = 1;
        }
        break;
    case 10:
        if (http_token_eq(h->name, 10, "connection"))
            for_each_list_item(h, connection_item, &fs->conn);
        break;
    case 14:
        if (http_token_eq(h->name, 14, "content-length")) {
            /* Any second Content-Length, even an equal one, is refused: two framings
             * for one message is how smuggling starts. */
            if (++fs->lengths > 1)
                return HTTP_ERR_BAD_REQUEST;
            return parse_content_length(h, &fs->content_length);
        }
        break;
    case 17:
        if (http_token_eq(h->name, 17, "transfer-encoding")) {
            fs->encodings++;
            for_each_list_item(h, te_item, &fs->te);
        }
        break;
    }
    return 0;
}

/* Decide framing and connection persistence from the fields (RFC 9112 6.1-6.3, 9.3). */
static int apply_fields(const struct fields_seen *fs, size_t max_body, struct http_request *req)
{
    int v11 = req->minor_version == 1;
    if (fs->hosts > 1 || (v11 && fs->hosts == 0))
        return HTTP_ERR_BAD_REQUEST;
    if (fs->encodings) {
        if (!v11 || fs->lengths)
            return HTTP_ERR_BAD_REQUEST;
        if (fs->te.count == 0)
            return HTTP_ERR_BAD_REQUEST;
        /* chunked not last: the length cannot be known, a 400 (RFC 9112 6.3, a MUST);
         * chunked after codings we do not implement: 501 (6.1). */
        if (!fs->te.chunked_last)
            return HTTP_ERR_BAD_REQUEST;
        /* chunked twice: a sender MUST NOT (RFC 9112 7), so the framing is broken */
        if (fs->te.chunked > 1)
            return HTTP_ERR_BAD_REQUEST;
        if (fs->te.count != 1)
            return HTTP_ERR_NOT_IMPLEMENTED;
        req->flags |= HTTP_F_CHUNKED;
    } else {
        if (fs->content_length > max_body)
            return HTTP_ERR_TOO_LARGE;
        req->body_len = fs->content_length;
    }
    if (v11 && fs->expect_other)
        return HTTP_ERR_EXPECTATION;
    if (v11 && fs->expect_continue)
        req->flags |= HTTP_F_CONTINUE;
    if (fs->conn.close || (!v11 && !fs->conn.keep_alive))
        req->flags |= HTTP_F_CLOSE;
    else if (!v11)
        req->flags |= HTTP_F_KEEPALIVE_10;
    return 0;
}

/* Where the check of a line whose LF has not arrived yet stopped: kept in
 * codec_state.aux2 between reads while the header section is incomplete, so that each
 * read checks only its new bytes. */
enum unfinished_line {
    AT_REQUEST_LINE,   /* an empty line before the request line, or the request line */
    IN_METHOD,
    AT_TARGET,         /* after the method's SP: the target may not be empty */
    IN_TARGET,
    IN_PCT_1,          /* after "%": two hex digits */
    IN_PCT_2,
    IN_VERSION,        /* + the index of the next byte of "HTTP/" DIGIT "." DIGIT, 0..8 */
    AT_FIELD = IN_VERSION + 9, /* a field line, or the empty line ending the section */
    IN_FIELD_NAME,
    IN_FIELD_VALUE,
    AFTER_CR,          /* only LF may follow, and it ends the line */
    LINE_INVALID,
};

/* The state after byte c of a line in state s; LINE_INVALID once no ending of the line
 * can make it valid. The same grammar as parse_request_line and parse_field, but for a
 * prefix: what these checks only when the whole line (or more) is there (the target's
 * form, the Host value, the version number) waits for the line's end. */
static enum unfinished_line unfinished_step(enum unfinished_line s, unsigned char c)
{
    switch (s) {
    case AT_REQUEST_LINE:
        return c == '\r' ? AFTER_CR : tchar[c] ? IN_METHOD : LINE_INVALID;
    case IN_METHOD:
        return c == ' ' ? AT_TARGET : tchar[c] ? IN_METHOD : LINE_INVALID;
    case AT_TARGET:
    case IN_TARGET:
        if (c == ' ' && s == IN_TARGET)
            return IN_VERSION;
        return target_char[c] == PCT ? IN_PCT_1 : target_char[c] ? IN_TARGET : LINE_INVALID;
    case IN_PCT_1:
    case IN_PCT_2:
        return hex_digit((char)c) == 16 ? LINE_INVALID : s == IN_PCT_1 ? IN_PCT_2 : IN_TARGET;
    case AT_FIELD: /* SP or HTAB here is obs-fold, or a first field folded into the request line */
        return c == '\r' ? AFTER_CR : tchar[c] ? IN_FIELD_NAME : LINE_INVALID;
    case IN_FIELD_NAME:
        return c == ':' ? IN_FIELD_VALUE : tchar[c] ? IN_FIELD_NAME : LINE_INVALID;
    case IN_FIELD_VALUE:
        return c == '\r' ? AFTER_CR : vchar[c] ? IN_FIELD_VALUE : LINE_INVALID;
    case AFTER_CR:
    case LINE_INVALID:
        return LINE_INVALID;
    default: {
        unsigned i = (unsigned)(s - IN_VERSION);
        if (i == 8)
            return c == '\r' ? AFTER_CR : LINE_INVALID;
        int ok = (i == 5 || i == 7) ? (unsigned)(c - '0') < 10u : c == (unsigned char)"HTTP/?."[i];
        return ok ? s + 1 : LINE_INVALID;
    }
    }
}

/* Check the bytes [q, end) of an unfinished line from state *s (which it updates): a
 * request whose start is already invalid is refused as soon as the bad byte is there,
 * not when its line, its header section or the header timeout ends. */
static int check_unfinished(const char *q, const char *end, uint32_t *s)
{
    enum unfinished_line at = (enum unfinished_line)*s;
    for (; q < end; q++) {
        if (at == IN_FIELD_VALUE) /* most of a long line: skip it quickly */
            while (q < end - 1 && vchar[(unsigned char)*q])
                q++;
        at = unfinished_step(at, (unsigned char)*q);
        if (at == LINE_INVALID)
            return HTTP_ERR_BAD_REQUEST;
    }
    *s = at;
    return 0;
}

/* Skip the empty lines before the request line (RFC 9112 2.2) and parse it. Returns 1
 * with *next at the first field line, 0 when the line has not ended (*next at its start),
 * or an error. */
static int head_request_line(const char *p, const char *end, const char **next,
                             struct http_request *req)
{
    const char *q = p, *eol;
    int rc;
    for (;;) {
        *next = q;
        if ((rc = next_line(q, end, &eol, next)) <= 0)
            return rc;
        if (eol != q)
            break;
        q = *next;
    }
    return (rc = parse_request_line(q, eol, req)) < 0 ? rc : 1;
}

/* Parse the request line and the fields; on success sets req->header_len. On
 * HTTP_NEED_MORE, *unfinished is where the check of the unfinished last line stopped. */
static int parse_head(const char *p, size_t len, size_t max_body, struct http_request *req,
                      uint32_t *unfinished)
{
    const char *end = p + (len < HTTP_MAX_HEADER_BYTES ? len : HTTP_MAX_HEADER_BYTES);
    const char *q, *eol, *next;
    int rc = head_request_line(p, end, &q, req);
    if (rc <= 0) {
        *unfinished = AT_REQUEST_LINE;
        goto need_more;
    }
    *unfinished = AT_FIELD;
    struct fields_seen fs = {0};
    for (;; q = next) {
        if ((rc = next_line(q, end, &eol, &next)) <= 0)
            goto need_more;
        if (eol == q)
            break;
        /* A 65th line is parsed too, so that a bad one is a 400 here as it is when the
         * check of an unfinished line refuses it. */
        struct http_header spare;
        struct http_header *h =
            req->n_headers < HTTP_MAX_HEADERS ? &req->headers[req->n_headers] : &spare;
        if ((rc = parse_field(q, eol, h)) < 0)
            return rc;
        if (h == &spare)
            return HTTP_ERR_HEADERS_TOO_LARGE;
        req->n_headers++;
        if ((rc = note_field(h, &fs)) < 0)
            return rc;
    }
    if ((rc = apply_fields(&fs, max_body, req)) < 0)
        return rc;
    req->header_len = (size_t)(next - p);
    return HTTP_MESSAGE;

need_more:
    if (rc < 0 || (rc = check_unfinished(q, end, unfinished)) < 0)
        return rc;
    return len >= HTTP_MAX_HEADER_BYTES ? HTTP_ERR_HEADERS_TOO_LARGE : HTTP_NEED_MORE;
}

/* Raw chunked bytes may exceed the decoded body by framing; bound that too, so tiny
 * chunks with long extensions cannot make us buffer far more than max_body. Where the
 * raw body may end at the latest (saturated: max_body may be SIZE_MAX). */
static size_t chunked_raw_end(size_t header_len, size_t max_body)
{
    size_t framing = header_len + max_body / 2 + 2 * HTTP_MAX_HEADER_BYTES;
    return max_body > SIZE_MAX - framing ? SIZE_MAX : framing + max_body;
}

static const char *skip_ws(const char *q, const char *end)
{
    while (q < end && (*q == ' ' || *q == '\t'))
        q++;
    return q;
}

static const char *skip_token(const char *q, const char *end)
{
    while (q < end && tchar[(unsigned char)*q])
        q++;
    return q;
}

/* quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 5.6.4), starting at
 * q's DQUOTE: where it ends, or NULL when it does not before end. qdtext and the byte
 * after a backslash are field-value characters (no CTL but HTAB, no DEL). */
static const char *skip_quoted_string(const char *q, const char *end)
{
    for (q++; q < end && *q != '"'; q++)
        if ((*q == '\\' && ++q == end) || !vchar[(unsigned char)*q])
            return NULL;
    return q < end ? q + 1 : NULL;
}

/* chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), the whole of
 * [q, eol) (RFC 9112 7.1.1); chunk-ext-name = token, chunk-ext-val = token /
 * quoted-string. Whitespace is allowed only before ";" and around "=": "5 \r\n" is
 * refused. We ignore extensions, but a recipient that parses them must not be able to
 * read another chunk boundary out of one (an unbalanced quote, a bare name-less ";"). */
static int chunk_ext_ok(const char *q, const char *eol)
{
    while (q < eol) {
        q = skip_ws(q, eol);
        if (q == eol || *q != ';')
            return 0;
        const char *name = skip_ws(q + 1, eol);
        if ((q = skip_token(name, eol)) == name)
            return 0;
        const char *eq = skip_ws(q, eol);
        if (eq == eol || *eq != '=')
            continue; /* no value: q stays before any whitespace, which needs a ";" next */
        const char *val = skip_ws(eq + 1, eol);
        if (val < eol && *val == '"')
            q = skip_quoted_string(val, eol);
        else if ((q = skip_token(val, eol)) == val)
            q = NULL;
        if (!q)
            return 0;
    }
    return 1;
}

/* chunk-size = 1*HEXDIG (no sign, no "0x", no whitespace before), then the extensions. */
static int parse_chunk_size(const char *p, const char *eol, uint64_t limit, uint64_t *size)
{
    uint64_t n = 0;
    const char *q = p;
    for (; q < eol; q++) {
        unsigned d = hex_digit(*q);
        if (d == 16)
            break;
        /* Checked before the shift: a wrapped size could read as the last chunk. */
        if (n > limit >> 4)
            return HTTP_ERR_TOO_LARGE;
        n = n * 16 + d;
        if (n > limit)
            return HTTP_ERR_TOO_LARGE;
    }
    if (q == p || !chunk_ext_ok(q, eol))
        return HTTP_ERR_BAD_REQUEST;
    *size = n;
    return 0;
}

/* The trailer section after the last chunk: field lines, then an empty line. */
static int scan_trailers(const char *p, size_t pos, size_t len, size_t *out_end)
{
    /* Like a header block, the whole section must fit in HTTP_MAX_HEADER_BYTES. Lines are
     * looked for only inside that window, so that a line crossing its end gets the same
     * answer however the bytes were cut into reads. */
    size_t start = pos;
    const char *end = p + (len - start < HTTP_MAX_HEADER_BYTES ? len
                                                               : start + HTTP_MAX_HEADER_BYTES);
    for (;;) {
        const char *eol, *next;
        int rc = next_line(p + pos, end, &eol, &next);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return len - start >= HTTP_MAX_HEADER_BYTES ? HTTP_ERR_HEADERS_TOO_LARGE
                                                        : HTTP_NEED_MORE;
        if (eol == p + pos) {
            *out_end = (size_t)(next - p);
            return HTTP_MESSAGE;
        }
        struct http_header h;
        if (parse_field(p + pos, eol, &h) < 0)
            return HTTP_ERR_BAD_REQUEST;
        pos = (size_t)(next - p);
    }
}

/* Walk the chunks from where the last call stopped (st->aux1 = offset of the next
 * chunk-size line, st->aux2 = decoded bytes so far). */
static int scan_chunked(const char *p, size_t len, size_t max_body, struct codec_state *st,
                        struct http_request *req)
{
    size_t pos = st->aux1 ? st->aux1 : req->header_len;
    uint64_t decoded = st->aux2;
    size_t raw_end = chunked_raw_end(req->header_len, max_body);
    for (;;) {
        if (pos > raw_end)
            return HTTP_ERR_TOO_LARGE;
        size_t avail = len - pos;
        size_t window = avail < HTTP_MAX_CHUNK_LINE ? avail : HTTP_MAX_CHUNK_LINE;
        const char *eol, *next;
        /* CRLF only (next_line), as every line of the request: parsers that disagree on
         * where a chunk line ends are how requests get smuggled past a proxy. */
        int rc = next_line(p + pos, p + pos + window, &eol, &next);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return avail >= HTTP_MAX_CHUNK_LINE ? HTTP_ERR_BAD_REQUEST : HTTP_NEED_MORE;
        uint64_t size;
        if ((rc = parse_chunk_size(p + pos, eol, max_body - decoded, &size)) < 0)
            return rc;
        size_t data = (size_t)(next - p);
        if (size == 0) {
            size_t end;
            rc = scan_trailers(p, data, len, &end);
            if (rc != HTTP_MESSAGE)
                return rc;
            req->body_len = decoded;
            req->frame_len = end;
            return HTTP_MESSAGE;
        }
        /* Compared without adding: with a huge max_body, data + size could wrap. */
        if (data > raw_end || size > raw_end - data)
            return HTTP_ERR_TOO_LARGE;
        if (len - data <= size)
            return HTTP_NEED_MORE;
        size_t after = data + (size_t)size; /* the data's CRLF: nothing else may follow it */
        if (p[after] != '\r' || (len - after >= 2 && p[after + 1] != '\n'))
            return HTTP_ERR_BAD_REQUEST;
        if (len - after < 2)
            return HTTP_NEED_MORE;
        pos = after + 2;
        decoded += size;
        /* Hints are 32 bits: past that, keep the last boundary that fits (decoded <= pos). */
        if (pos <= UINT32_MAX) {
            st->aux1 = (uint32_t)pos;
            st->aux2 = (uint32_t)decoded;
        }
    }
}

/* While the header section is incomplete (st->scanned != 0), look only at the bytes that
 * are new since the last call: until another line has ended there is nothing new to
 * parse, only the unfinished line to check on (from st->aux2). Returns HTTP_MESSAGE when
 * a line has ended and the head must be parsed again, else the answer for this call. */
static int head_resume(const char *p, size_t len, struct codec_state *st)
{
    size_t from = st->scanned;
    size_t upto = len < HTTP_MAX_HEADER_BYTES ? len : HTTP_MAX_HEADER_BYTES;
    if (from < upto && memchr(p + from, '\n', upto - from))
        return HTTP_MESSAGE;
    if (from < upto && check_unfinished(p + from, p + upto, &st->aux2) < 0)
        return HTTP_ERR_BAD_REQUEST;
    if (len >= HTTP_MAX_HEADER_BYTES)
        return HTTP_ERR_HEADERS_TOO_LARGE;
    if (upto > from)
        st->scanned = (uint32_t)upto;
    return HTTP_NEED_MORE;
}

int http_parse_request(const char *p, size_t len, size_t max_body, struct codec_state *st,
                       struct http_request *req)
{
    req->flags = 0;
    req->n_headers = 0;
    req->body_len = 0;
    /* NEED_MORE's size hint is 0 unless this call learns the total (codec.h). */
    req->header_len = 0;
    req->frame_len = 0;
    if (len == 0) /* nothing to look at: the state stays "start over" */
        return HTTP_NEED_MORE;
    int rc, in_head = st->scanned != 0;
    if (in_head && (rc = head_resume(p, len, st)) != HTTP_MESSAGE)
        return rc;
    uint32_t unfinished;
    rc = parse_head(p, len, max_body, req, &unfinished);
    if (rc == HTTP_NEED_MORE) {
        st->scanned = (uint32_t)len; /* parse_head answers 431 from HTTP_MAX_HEADER_BYTES on */
        st->aux2 = unfinished;
        return rc;
    }
    if (rc < 0)
        return rc;
    if (in_head) /* the section has just ended: from here the hints are the chunk scanner's */
        *st = (struct codec_state){0};
    if (req->flags & HTTP_F_CHUNKED) {
        rc = scan_chunked(p, len, max_body, st, req);
    } else {
        req->frame_len = req->header_len + (size_t)req->body_len;
        rc = len >= req->frame_len ? HTTP_MESSAGE : HTTP_NEED_MORE;
    }
    if (rc == HTTP_NEED_MORE)
        req->flags |= HTTP_F_HEADERS_DONE; /* st->scanned is 0: no head resuming */
    else if (rc == HTTP_MESSAGE)
        *st = (struct codec_state){0};
    return rc;
}

void http_body_copy(const char *p, const struct http_request *req, char *dst)
{
    if (!(req->flags & HTTP_F_CHUNKED)) {
        memcpy(dst, p + req->header_len, (size_t)req->body_len);
        return;
    }
    /* The chunks were validated by scan_chunked; walk them again, copying the data. */
    const char *q = p + req->header_len, *end = p + req->frame_len;
    for (;;) {
        uint64_t size = 0;
        for (;; q++) {
            unsigned d = hex_digit(*q);
            if (d == 16)
                break;
            size = size * 16 + d;
        }
        if (size == 0)
            return;
        q = (const char *)memchr(q, '\n', (size_t)(end - q)) + 1;
        memcpy(dst, q, (size_t)size);
        dst += size;
        q += size;
        q += (*q == '\r') ? 2 : 1;
    }
}
