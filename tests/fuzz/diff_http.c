/* diff_http: wharf's HTTP parser against Debian's libhttp-parser, on a corpus.
 *
 *     diff_http [-v] [-l] DIR|FILE...
 *
 * Each input is a connection's bytes. Both parsers take its requests one after the other
 * (as long as they agree); for each they must agree on accept / reject / incomplete and,
 * for an accepted request, on the method, the target, the version, every header name
 * and value, the body (Content-Length or chunked), the request's length in the stream
 * and whether the connection stays open. A disagreement is put in a class by what the
 * request contains (classify()); every class is a section of DIFFERENCES.md, which says
 * why the difference is deliberate (wharf is stricter, as RFC 9112/9110 require or
 * allow; or libhttp-parser is stricter than the RFC; or it is a proxy's parser where
 * wharf is an origin server). A disagreement in no known class fails the run: it is
 * either a wharf bug to fix or a new difference to document.
 *
 * -v prints every disagreement (class, file, what differed); -l lists the classes seen
 * with a count and an example. Prints "N inputs, M agree, K differ (known classes)" and
 * exits 1 when some disagreement is unclassified. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/buf.h"
#include "../../common/http_parse.h"

#define MAX_BODY (1u << 20) /* wharfd's default --max-message */
#define HP_MAX_HEADERS 256
#define MAX_REQUESTS 32

static int verbose, list_classes;

static void die(const char *what)
{
    fprintf(stderr, "diff_http: %s\n", what);
    exit(2);
}

static void append(struct buf *b, const char *p, size_t n)
{
    if (buf_append(b, p, n) < 0)
        die("out of memory");
}

static int buf_eq(const struct buf *b, const char *p, size_t n)
{
    return buf_len(b) == n && (n == 0 || memcmp(buf_head(b), p, n) == 0);
}

/* libhttp-parser leaves the whitespace after a field value in the value; RFC 9110 5.5
 * says it is not part of it (wharf drops it). Not counted as a disagreement. */
static int value_eq(const struct buf *b, const char *p, size_t n)
{
    size_t len = buf_len(b);
    while (len && (buf_head(b)[len - 1] == ' ' || buf_head(b)[len - 1] == '\t'))
        len--;
    return len == n && (n == 0 || memcmp(buf_head(b), p, n) == 0);
}

/* ---- libhttp-parser, collecting one request ------------------------------------ */

struct hp_field {
    struct buf name, value;
};

struct hp_req {
    struct buf url, body;
    struct hp_field fields[HP_MAX_HEADERS];
    size_t n_fields;
    int in_value;
    int headers_done, complete, keep_alive;
};

static struct hp_req *hp_cur(http_parser *p) { return p->data; }

static int hp_on_url(http_parser *p, const char *at, size_t n)
{
    append(&hp_cur(p)->url, at, n);
    return 0;
}

/* Trailer fields come through the same callbacks: only the header section counts. */
static int hp_on_field(http_parser *p, const char *at, size_t n)
{
    struct hp_req *r = hp_cur(p);
    if (r->headers_done)
        return 0;
    if (r->in_value || r->n_fields == 0) {
        if (r->n_fields == HP_MAX_HEADERS)
            return 1;
        r->n_fields++;
        r->in_value = 0;
    }
    append(&r->fields[r->n_fields - 1].name, at, n);
    return 0;
}

static int hp_on_value(http_parser *p, const char *at, size_t n)
{
    struct hp_req *r = hp_cur(p);
    if (r->headers_done)
        return 0;
    if (r->n_fields == 0)
        return 1;
    r->in_value = 1;
    append(&r->fields[r->n_fields - 1].value, at, n);
    return 0;
}

static int hp_on_headers(http_parser *p)
{
    hp_cur(p)->headers_done = 1;
    return 0;
}

static int hp_on_body(http_parser *p, const char *at, size_t n)
{
    append(&hp_cur(p)->body, at, n);
    return 0;
}

static int hp_on_complete(http_parser *p)
{
    hp_cur(p)->complete = 1;
    hp_cur(p)->keep_alive = http_should_keep_alive(p);
    http_parser_pause(p, 1);
    return 0;
}

static void hp_req_free(struct hp_req *r)
{
    buf_release(&r->url);
    buf_release(&r->body);
    for (size_t i = 0; i < r->n_fields; i++) {
        buf_release(&r->fields[i].name);
        buf_release(&r->fields[i].value);
    }
    memset(r, 0, sizeof *r);
}

/* ---- one outcome each ------------------------------------------------------------- */

enum outcome { ACCEPT, REJECT, INCOMPLETE };

static const char *outcome_name(enum outcome o)
{
    return o == ACCEPT ? "accept" : o == REJECT ? "reject" : "incomplete";
}

struct verdict {
    enum outcome wharf, hp;
    int wharf_rc;
    enum http_errno hp_err;
    const char *field; /* both accepted: the first thing that differs, or NULL */
    size_t at;         /* offset of the request in the input */
    size_t hp_used;    /* bytes libhttp-parser took from there (up to its error) */
    int hp_upgrade;    /* libhttp-parser stopped for CONNECT or Upgrade */
};

/* Compare one accepted request; returns what differs first, or NULL. */
static const char *compare(const char *p, const struct http_request *req, const http_parser *hp,
                           const struct hp_req *h, size_t hp_len)
{
    const char *m = http_method_str((enum http_method)hp->method);
    if (strlen(m) != req->method_len || memcmp(m, req->method, req->method_len))
        return "method";
    if (!buf_eq(&h->url, req->target, req->target_len))
        return "target";
    /* HTTP/1.2 and later 1.x are handled as 1.1 (RFC 9110 2.5): wharf says 1 */
    if (hp->http_major != 1 || (hp->http_minor > 1 ? 1 : hp->http_minor) != (unsigned)req->minor_version)
        return "version";
    if (h->n_fields != req->n_headers)
        return "header count";
    for (size_t i = 0; i < req->n_headers; i++) {
        if (!buf_eq(&h->fields[i].name, req->headers[i].name, req->headers[i].name_len))
            return "header name";
        if (!value_eq(&h->fields[i].value, req->headers[i].value, req->headers[i].value_len))
            return "header value";
    }
    if (req->frame_len != hp_len)
        return "request length";
    char *body = malloc(req->body_len ? (size_t)req->body_len : 1);
    if (!body)
        die("out of memory");
    http_body_copy(p, req, body);
    int same = buf_eq(&h->body, body, (size_t)req->body_len);
    free(body);
    if (!same)
        return "body";
    if (h->keep_alive != !(req->flags & HTTP_F_CLOSE))
        return "keep-alive";
    return NULL;
}

/* Run both parsers over the requests of data[0, n); stop at the first disagreement (its
 * verdict is returned in *v, and 1) or when both stop the same way (0). */
static int run_both(const char *data, size_t n, struct verdict *v)
{
    http_parser_settings settings;
    http_parser_settings_init(&settings);
    settings.on_url = hp_on_url;
    settings.on_header_field = hp_on_field;
    settings.on_header_value = hp_on_value;
    settings.on_headers_complete = hp_on_headers;
    settings.on_body = hp_on_body;
    settings.on_message_complete = hp_on_complete;
    http_parser hp;
    http_parser_init(&hp, HTTP_REQUEST);
    struct hp_req *h = calloc(1, sizeof *h);
    if (!h)
        die("out of memory");
    hp.data = h;

    size_t off = 0;
    int differ = 0;
    for (int i = 0; i < MAX_REQUESTS && off < n; i++) {
        struct codec_state cs = {0};
        struct http_request req;
        int rc = http_parse_request(data + off, n - off, MAX_BODY, &cs, &req);
        if (HTTP_PARSER_ERRNO(&hp) == HPE_PAUSED)
            http_parser_pause(&hp, 0);
        size_t used = http_parser_execute(&hp, &settings, data + off, n - off);
        enum http_errno err = HTTP_PARSER_ERRNO(&hp);

        memset(v, 0, sizeof *v);
        v->at = off;
        v->wharf_rc = rc;
        v->hp_err = err;
        v->wharf = rc == HTTP_MESSAGE ? ACCEPT : rc == HTTP_NEED_MORE ? INCOMPLETE : REJECT;
        v->hp_used = used;
        v->hp_upgrade = hp.upgrade;
        v->hp = h->complete ? ACCEPT : (err != HPE_OK ? REJECT : INCOMPLETE);
        if (v->wharf != v->hp) {
            differ = 1;
            break;
        }
        if (v->wharf != ACCEPT)
            break;
        v->field = compare(data + off, &req, &hp, h, used);
        if (v->field) {
            differ = 1;
            break;
        }
        off += req.frame_len;
        hp_req_free(h);
        /* wharf answers and closes after "Connection: close"; so does a server on
         * libhttp-parser (it would refuse more bytes with HPE_CLOSED_CONNECTION). After
         * CONNECT or an Upgrade, libhttp-parser hands the rest over as another protocol. */
        if ((req.flags & HTTP_F_CLOSE) || hp.upgrade)
            break;
    }
    hp_req_free(h);
    free(h);
    return differ;
}


/* ---- classes of disagreement -------------------------------------------------------- */

/* Every kind of disagreement there may be, each a section of DIFFERENCES.md. A "wharf"
 * class (status != 0) is a refusal that RFC 9112/9110 requires or allows and
 * libhttp-parser does not make (or not yet): wharf must answer exactly that status. A
 * status 0 class is one where libhttp-parser refuses what the RFC allows, or refuses a
 * line before it has ended where wharf waits for the end of the line. */
struct klass {
    const char *id;
    int status;
    unsigned count;
    char example[96];
};

static struct klass classes[] = {
    {"request-line-whitespace", 400},
    {"request-line-parts", 400},
    {"method-char", 400},
    {"target-8bit", 400},
    {"target-ctl", 400},
    {"target-char", 400},
    {"target-fragment", 400},
    {"target-pct", 400},
    {"target-form", 400},
    {"target-http-no-host", 400},
    {"version-syntax", 400},
    {"version-unsupported", 505},
    {"too-many-fields", 431},
    {"header-section-too-large", 431},
    {"bare-lf", 400},
    {"obs-fold", 400},
    {"ws-before-colon", 400},
    {"field-name", 400},
    {"bare-cr", 400},
    {"field-value-ctl", 400},
    {"host-invalid", 400},
    {"host-duplicate", 400},
    {"host-missing", 400},
    {"cl-invalid", 400},
    {"cl-duplicate", 400},
    {"te-http10", 400},
    {"te-and-cl", 400},
    {"te-empty", 400},
    {"te-chunked-not-last", 400},
    {"te-chunked-twice", 400},
    {"te-unsupported", 501},
    {"body-too-large", 413},
    {"expect-unsupported", 417},
    {"chunk-line-too-long", 400},
    {"chunk-bare-lf", 400},
    {"chunk-size-invalid", 400},
    {"chunk-ext-ctl", 400},
    {"chunk-ext-syntax", 400},
    {"chunk-data-no-crlf", 400},
    {"trailer-field", 400},
    {"trailers-too-large", 431},
    {"line-not-ended", 0},
    {"hp-cr-ends-header-section", 0},
    {"hp-connect-tunnel", 0},
    {"hp-extension-method", 0},
    {"hp-absolute-uri-no-authority", 0},
    {"hp-scheme-char", 0},
    {"hp-cl-htab", 0},
    {"hp-trailer-content-length", 0},
    {"hp-te-empty-element", 0},
    {"hp-chunk-size-htab", 0},
};

#define N_CLASSES (sizeof classes / sizeof classes[0])

static struct klass *find_class(const char *id)
{
    for (size_t i = 0; i < N_CLASSES; i++)
        if (strcmp(classes[i].id, id) == 0)
            return &classes[i];
    fprintf(stderr, "diff_http: no class %s\n", id);
    exit(2);
}

/* ---- why wharf refuses: an independent reading of RFC 9112 -------------------------- *
 * Written apart from common/http_parse.c (and in another shape), it walks a request in
 * the order wharf does and names the first thing RFC 9112/9110 or one of wharf's limits
 * forbids. wharf's refusal is explained only when this finds a reason with wharf's
 * status. */

#define HEAD_MAX 8192       /* HTTP_MAX_HEADER_BYTES */
#define FIELDS_MAX 64       /* HTTP_MAX_HEADERS */
#define CHUNK_LINE_MAX 1024 /* HTTP_MAX_CHUNK_LINE */

static int tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* RFC 3986: unreserved / "%" / sub-delims / ":" "@" "/" "?" / "[" "]" */
static int uri_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("-._~%!$&'()*+,;=:@/?[]", c));
}

static int ieq(const char *a, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((a[i] >= 'A' && a[i] <= 'Z' ? a[i] + 32 : a[i]) != lit[i])
            return 0;
    return 1;
}

struct line {
    const char *s;
    size_t len; /* without the CRLF or LF */
    int bare_lf;
};

/* The line at *pos, if it ends before limit; *pos moves past it. */
static int get_line(const char *p, size_t limit, size_t *pos, struct line *l)
{
    const char *nl = *pos < limit ? memchr(p + *pos, '\n', limit - *pos) : NULL;
    if (!nl)
        return 0;
    size_t e = (size_t)(nl - p);
    l->s = p + *pos;
    l->bare_lf = !(e > *pos && p[e - 1] == '\r');
    l->len = e - *pos - (l->bare_lf ? 0 : 1);
    *pos = e + 1;
    return 1;
}

static const char *target_reason(const char *t, size_t n, const char *method, size_t mlen)
{
    if (t[0] == '/' || (n == 1 && t[0] == '*') || (mlen == 7 && !memcmp(method, "CONNECT", 7)))
        return NULL;
    size_t i = 0;
    while (i < n && ((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z'))
        i++;
    while (i > 0 && i < n && (isalnum((unsigned char)t[i]) || strchr("+-.", t[i])))
        i++;
    if (i == 0 || i == n || t[i] != ':')
        return "target-form";
    if ((ieq(t, i, "http") || ieq(t, i, "https")) &&
        !(n - i > 3 && t[i + 1] == '/' && t[i + 2] == '/' && !strchr("/?:", t[i + 3])))
        return "target-http-no-host";
    return NULL;
}

static const char *request_line_reason(const struct line *l, int *minor)
{
    const char *s = l->s, *end = l->s + l->len;
    const char *q = s;
    while (q < end && tchar((unsigned char)*q))
        q++;
    if (q == end)
        return "request-line-parts";
    if (q == s || *q != ' ')
        return (*q == ' ' || *q == '\t') ? "request-line-whitespace" : "method-char";
    const char *t = ++q;
    for (; q < end && uri_char((unsigned char)*q); q++)
        if (*q == '%' && (end - q < 3 || hexval((unsigned char)q[1]) < 0 ||
                          hexval((unsigned char)q[2]) < 0))
            return "target-pct";
    if (q == end)
        return "request-line-parts";
    unsigned char c = (unsigned char)*q;
    if (c != ' ')
        return c == '\t' ? "request-line-whitespace"
               : c == '#' ? "target-fragment"
               : c >= 0x80 ? "target-8bit"
               : (c < 0x20 || c == 0x7f) ? "target-ctl"
                                         : "target-char";
    if (q == t)
        return "request-line-whitespace";
    const char *why = target_reason(t, (size_t)(q - t), s, (size_t)(t - 1 - s));
    if (why)
        return why;
    q++;
    if (q < end && (*q == ' ' || *q == '\t'))
        return "request-line-whitespace";
    if (end - q != 8 || memcmp(q, "HTTP/", 5) || q[6] != '.' || !isdigit((unsigned char)q[5]) ||
        !isdigit((unsigned char)q[7]))
        return "version-syntax";
    if (q[5] != '1')
        return "version-unsupported";
    *minor = q[7] == '0' ? 0 : 1;
    return NULL;
}

/* What a byte that cannot be in a request-target is called (as request_line_reason). */
static const char *target_byte_reason(unsigned char c)
{
    return c == '\t' ? "request-line-whitespace"
           : c == '#' ? "target-fragment"
           : c >= 0x80 ? "target-8bit"
           : (c < 0x20 || c == 0x7f) ? "target-ctl"
                                     : "target-char";
}

static const char *request_line_reason(const struct line *l, int *minor);

/* The request line's first n bytes, its LF not there yet. Ending in CR, the line can only
 * end there: judged whole. Else cut at SPs into method, target and version, each checked
 * whole if an SP followed it, else as the start of one. Only what no continuation could
 * repair is a reason (the target's form waits for the line's end). */
static const char *request_prefix_reason(const char *s, size_t n)
{
    if (n && s[n - 1] == '\r') {
        struct line whole = {s, n - 1, 0};
        int minor;
        return n == 1 ? NULL : request_line_reason(&whole, &minor);
    }
    static const char version[] = "HTTP/#.#"; /* # a digit */
    size_t part = 0, from = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t k = i - from; /* index in the part */
        if (c == ' ') {
            if (k == 0 || part == 2)
                return part == 0 ? "method-char" : part == 1 ? "request-line-whitespace"
                                                             : k ? "version-syntax"
                                                                 : "request-line-whitespace";
            if (part == 1 && (s[i - 1] == '%' || (k >= 2 && s[i - 2] == '%')))
                return "target-pct";
            part++;
            from = i + 1;
        } else if (part == 0 && !tchar(c)) {
            return c == '\t' ? "request-line-whitespace" : "method-char";
        } else if (part == 1 && !uri_char(c)) {
            return target_byte_reason(c);
        } else if (part == 1 && k >= 1 && (s[i - 1] == '%' || (k >= 2 && s[i - 2] == '%')) &&
                   hexval(c) < 0) {
            return "target-pct";
        } else if (part == 2 && (k >= 8 || (version[k] == '#' ? !isdigit(c) : c != version[k]))) {
            return k == 0 && c == '\t' ? "request-line-whitespace" : "version-syntax";
        }
    }
    return NULL;
}

/* A field line's first n bytes, its LF not there yet. */
static const char *field_prefix_reason(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && tchar((unsigned char)s[i]))
        i++;
    if (i == n)
        return NULL;
    if (i == 0 && (s[0] == ' ' || s[0] == '\t'))
        return "obs-fold";
    if (i == 0 && s[0] == '\r') /* the empty line ending the section, if LF comes next */
        return n == 1 ? NULL : "bare-cr";
    if (s[i] == ' ' || s[i] == '\t')
        return "ws-before-colon";
    if (s[i] != ':' || i == 0)
        return "field-name";
    for (i++; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' && i + 1 < n)
            return "bare-cr";
        if (c != '\r' && ((c < 0x20 && c != '\t') || c == 0x7f))
            return "field-value-ctl";
    }
    return NULL;
}

/* name ":" OWS value OWS; on success the value without the OWS around it. */
static const char *field_reason(const struct line *l, const char **v, size_t *vlen)
{
    const char *s = l->s, *end = l->s + l->len, *q = s;
    while (q < end && tchar((unsigned char)*q))
        q++;
    if (q == s)
        return (s < end && (*s == ' ' || *s == '\t')) ? "obs-fold" : "field-name";
    if (q == end)
        return "field-name";
    if (*q == ' ' || *q == '\t')
        return "ws-before-colon";
    if (*q != ':')
        return "field-name";
    q++;
    for (const char *r = q; r < end; r++) {
        unsigned char c = (unsigned char)*r;
        if (c == '\r')
            return "bare-cr";
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return "field-value-ctl";
    }
    while (q < end && (*q == ' ' || *q == '\t'))
        q++;
    while (end > q && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *v = q;
    *vlen = (size_t)(end - q);
    return NULL;
}

struct head {
    int minor, hosts, lengths, encodings, te_items, chunked, chunked_last, expect_other;
    uint64_t cl;
};

static const char *note_reason(const struct line *l, const char *v, size_t vlen, struct head *h)
{
    size_t nlen = (size_t)((const char *)memchr(l->s, ':', l->len) - l->s);
    if (ieq(l->s, nlen, "host")) {
        h->hosts++;
        for (size_t i = 0; i < vlen; i++)
            if (!uri_char((unsigned char)v[i]) || strchr("/?@", v[i]))
                return "host-invalid";
    } else if (ieq(l->s, nlen, "content-length")) {
        if (++h->lengths > 1)
            return "cl-duplicate";
        if (vlen == 0)
            return "cl-invalid";
        for (size_t i = 0; i < vlen; i++) {
            if (!isdigit((unsigned char)v[i]) || h->cl > (UINT64_MAX - 9) / 10)
                return "cl-invalid";
            h->cl = h->cl * 10 + (uint64_t)(v[i] - '0');
        }
    } else if (ieq(l->s, nlen, "transfer-encoding")) {
        h->encodings++;
        for (size_t i = 0; i < vlen;) {
            while (i < vlen && (v[i] == ',' || v[i] == ' ' || v[i] == '\t'))
                i++;
            size_t b = i;
            while (i < vlen && v[i] != ',')
                i++;
            size_t e = i;
            while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
                e--;
            if (e > b) {
                h->te_items++;
                h->chunked_last = ieq(v + b, e - b, "chunked");
                h->chunked += h->chunked_last;
            }
        }
    } else if (ieq(l->s, nlen, "expect") && !ieq(v, vlen, "100-continue")) {
        h->expect_other = 1;
    }
    return NULL;
}

/* chunk-ext (RFC 9112 7.1.1) over s[0, n), the chunk line after its size:
 *   *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
 * read one byte at a time; whitespace only before ";" or around "=". */
static int chunk_ext_valid(const char *s, size_t n)
{
    enum { START, WS, SEMI, NAME, NAME_WS, EQ, TOKEN, QUOTED, ESCAPED, CLOSED } st = START;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ws = c == ' ' || c == '\t';
        int qd = ws || c == 0x21 || (c >= 0x23 && c <= 0x7e && c != '\\') || c >= 0x80;
        switch (st) {
        case START: case WS: case CLOSED: case TOKEN:
            if (st == TOKEN && tchar(c))
                break;
            if (c != ';' && !ws)
                return 0;
            st = c == ';' ? SEMI : WS;
            break;
        case SEMI:
            if (!ws && !tchar(c))
                return 0;
            st = ws ? SEMI : NAME;
            break;
        case NAME: case NAME_WS:
            if (st == NAME && tchar(c))
                break;
            if (c != ';' && c != '=' && !ws)
                return 0;
            st = c == ';' ? SEMI : c == '=' ? EQ : NAME_WS;
            break;
        case EQ:
            if (!ws && c != '"' && !tchar(c))
                return 0;
            st = ws ? EQ : c == '"' ? QUOTED : TOKEN;
            break;
        case QUOTED:
            if (c != '"' && c != '\\' && !qd)
                return 0;
            st = c == '"' ? CLOSED : c == '\\' ? ESCAPED : QUOTED;
            break;
        case ESCAPED:
            if (!qd && c != '"' && c != '\\')
                return 0;
            st = QUOTED;
            break;
        }
    }
    return st == START || st == NAME || st == TOKEN || st == CLOSED;
}

/* The chunked body at p[pos, n). */
static const char *chunked_reason(const char *p, size_t n, size_t pos)
{
    size_t raw_limit = pos + MAX_BODY + MAX_BODY / 2 + 2 * HEAD_MAX;
    uint64_t decoded = 0;
    for (;;) {
        if (pos > raw_limit)
            return "body-too-large";
        struct line l;
        size_t at = pos, window = n - pos < CHUNK_LINE_MAX ? n - pos : CHUNK_LINE_MAX;
        if (!get_line(p, pos + window, &pos, &l))
            return n - at >= CHUNK_LINE_MAX ? "chunk-line-too-long" : NULL;
        if (l.bare_lf)
            return "chunk-bare-lf";
        uint64_t size = 0;
        size_t i = 0;
        for (; i < l.len && hexval((unsigned char)l.s[i]) >= 0; i++) {
            uint64_t d = (uint64_t)hexval((unsigned char)l.s[i]);
            if (size > (MAX_BODY - decoded - d) / 16 || d > MAX_BODY - decoded)
                return "body-too-large";
            size = size * 16 + d;
        }
        if (i == 0)
            return "chunk-size-invalid";
        size_t ext = i;
        while (i < l.len && (l.s[i] == ' ' || l.s[i] == '\t'))
            i++;
        if (i < l.len && l.s[i] != ';')
            return "chunk-size-invalid";
        for (; i < l.len; i++)
            if (((unsigned char)l.s[i] < 0x20 && l.s[i] != '\t') || l.s[i] == 0x7f)
                return "chunk-ext-ctl";
        if (!chunk_ext_valid(l.s + ext, l.len - ext))
            return "chunk-ext-syntax";
        if (size == 0)
            break;
        if (pos + size > raw_limit)
            return "body-too-large";
        if (n < pos + size + 1)
            return NULL;
        if (p[pos + size] != '\r')
            return "chunk-data-no-crlf";
        if (n < pos + size + 2)
            return NULL;
        if (p[pos + size + 1] != '\n')
            return "chunk-data-no-crlf";
        pos += size + 2;
        decoded += size;
    }
    size_t start = pos, limit = n - start < HEAD_MAX ? n : start + HEAD_MAX;
    for (;;) {
        struct line l;
        if (!get_line(p, limit, &pos, &l))
            return n - start >= HEAD_MAX ? "trailers-too-large" : NULL;
        if (l.bare_lf) /* the trailer section is part of the chunked framing (7.1) */
            return "chunk-bare-lf";
        if (l.len == 0)
            return NULL;
        const char *v;
        size_t vlen;
        if (field_reason(&l, &v, &vlen))
            return "trailer-field";
    }
}

/* The line at *pos of a header section that ends at limit, or why not: *why is set when
 * the request is refused there (a bare LF, an unfinished line that cannot become valid,
 * 8 KiB), left NULL when it is only incomplete. */
static int head_line(const char *p, size_t n, size_t limit, size_t *pos, struct line *l,
                     int request_line, const char **why)
{
    size_t at = *pos;
    *why = NULL;
    if (get_line(p, limit, pos, l)) {
        *why = l->bare_lf ? "bare-lf" : NULL;
        return !*why;
    }
    *why = request_line ? request_prefix_reason(p + at, limit - at)
                        : field_prefix_reason(p + at, limit - at);
    if (!*why && n >= HEAD_MAX)
        *why = "header-section-too-large";
    return 0;
}

/* The first reason to refuse the request at p[0, n), or NULL. */
static const char *refusal_reason(const char *p, size_t n)
{
    size_t limit = n < HEAD_MAX ? n : HEAD_MAX, pos = 0;
    struct line l;
    const char *why;
    do
        if (!head_line(p, n, limit, &pos, &l, 1, &why))
            return why;
    while (l.len == 0);
    struct head h = {0};
    if ((why = request_line_reason(&l, &h.minor)))
        return why;
    for (int fields = 0;; fields++) {
        if (!head_line(p, n, limit, &pos, &l, 0, &why))
            return why;
        if (l.len == 0)
            break;
        const char *v;
        size_t vlen;
        if ((why = field_reason(&l, &v, &vlen)))
            return why;
        if (fields == FIELDS_MAX)
            return "too-many-fields";
        if ((why = note_reason(&l, v, vlen, &h)))
            return why;
    }
    if (h.hosts > 1)
        return "host-duplicate";
    if (h.minor == 1 && h.hosts == 0)
        return "host-missing";
    if (h.encodings) {
        if (h.minor != 1)
            return "te-http10";
        if (h.lengths)
            return "te-and-cl";
        if (h.te_items == 0)
            return "te-empty";
        if (!h.chunked_last)
            return "te-chunked-not-last";
        if (h.chunked > 1)
            return "te-chunked-twice";
        if (h.te_items != 1)
            return "te-unsupported";
    } else if (h.cl > MAX_BODY) {
        return "body-too-large";
    }
    if (h.minor == 1 && h.expect_other)
        return "expect-unsupported";
    return h.encodings ? chunked_reason(p, n, pos) : NULL;
}

/* ---- why libhttp-parser refuses what the RFC allows ----------------------------------- */

/* Where the header section of the request at p[0, n) ends (n when it does not). */
static size_t head_end(const char *p, size_t n)
{
    size_t pos = 0;
    struct line l;
    int first = 1;
    while (get_line(p, n, &pos, &l))
        if (l.len == 0 && !first)
            return pos;
        else if (l.len)
            first = 0;
    return n;
}

/* RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). 1 when s[0, n) is
 * such a scheme with at least one character past the letters (libhttp-parser's URL
 * parser takes letters only). */
static int scheme_beyond_alpha(const char *s, size_t n)
{
    int beyond = 0;
    if (n == 0 || !isalpha((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalpha(c))
            continue;
        if (!isdigit(c) && c != '+' && c != '-' && c != '.')
            return 0;
        beyond = 1;
    }
    return beyond;
}
/* libhttp-parser refused the target after the request line's first SP (sp): the class
 * when it is a valid absolute-form its URL parser does not take, else NULL. */
static const char *hp_url_reason(const char *p, size_t n, const char *sp)
{
    /* absolute-URI = scheme ":" hier-part: "//" authority is only one of its forms */
    const char *t = sp + 1, *e = memchr(t, ' ', n - (size_t)(t - p));
    if (!e || e == t || t[0] == '/' || t[0] == '*')
        return NULL;
    const char *colon = memchr(t, ':', (size_t)(e - t));
    if (colon && !(e - colon > 2 && colon[1] == '/' && colon[2] == '/'))
        return "hp-absolute-uri-no-authority";
    if (colon && scheme_beyond_alpha(t, (size_t)(colon - t)))
        return "hp-scheme-char";
    return NULL;
}

static const char *hp_reason(const char *p, size_t n, enum http_errno err, size_t err_at)
{
    /* libhttp-parser applies the Content-Length rules to trailer fields too; wharf (RFC
     * 9110 6.5.1) gives trailers no meaning, so it only checks their syntax */
    if ((err == HPE_INVALID_CONTENT_LENGTH || err == HPE_UNEXPECTED_CONTENT_LENGTH) &&
        err_at >= head_end(p, n))
        return "hp-trailer-content-length";
    /* BWS before a chunk extension's ";" may be HTAB (RFC 9110 5.6.3); libhttp-parser
     * takes SP only there */
    if (err == HPE_INVALID_CHUNK_SIZE && err_at > 0 && err_at < n && p[err_at] == '\t') {
        size_t i = err_at - 1; /* the refused HTAB is at err_at: after the size, or its SPs? */
        while (i > 0 && p[i] == ' ')
            i--;
        if (hexval((unsigned char)p[i]) >= 0)
            return "hp-chunk-size-htab";
    }
    const char *sp = memchr(p, ' ', n);
    size_t skip = 0;
    while (skip < n && (p[skip] == '\r' || p[skip] == '\n'))
        skip++;
    if (err == HPE_INVALID_METHOD && sp) {
        const char *m = p + skip;
        size_t mlen = (size_t)(sp - m);
        for (size_t i = 0; i < mlen; i++)
            if (!tchar((unsigned char)m[i]))
                return NULL;
        for (int k = 0; k <= HTTP_SOURCE; k++) {
            const char *known = http_method_str((enum http_method)k);
            if (strlen(known) == mlen && memcmp(known, m, mlen) == 0)
                return NULL;
        }
        return mlen ? "hp-extension-method" : NULL;
    }
    if (err == HPE_INVALID_URL && sp)
        return hp_url_reason(p, n, sp);
    if (err == HPE_INVALID_CONTENT_LENGTH || err == HPE_INVALID_TRANSFER_ENCODING) {
        int cl = err == HPE_INVALID_CONTENT_LENGTH;
        const char *name = cl ? "content-length" : "transfer-encoding";
        for (size_t pos = 0;;) {
            struct line l;
            if (!get_line(p, n, &pos, &l))
                return NULL;
            const char *colon = memchr(l.s, ':', l.len);
            if (!colon || !ieq(l.s, (size_t)(colon - l.s), name))
                continue;
            const char *v = colon + 1, *end = l.s + l.len;
            if (cl && memchr(v, '\t', (size_t)(end - v)))
                return "hp-cl-htab";
            if (!cl) {
                /* an empty list element: ",," or a "," at either end, around OWS */
                int item = 0;
                for (const char *q = v; q < end; q++) {
                    if (*q == ',') {
                        if (!item)
                            return "hp-te-empty-element";
                        item = 0;
                    } else if (*q != ' ' && *q != '\t') {
                        item = 1;
                    }
                }
                if (!item)
                    return "hp-te-empty-element";
            }
        }
    }
    return NULL;
}

/* The class of a disagreement, or NULL when nothing documented explains it. */
static const char *classify(const char *p, size_t n, const struct verdict *v)
{
    p += v->at;
    n -= v->at;
    /* CONNECT: libhttp-parser, made for proxies, takes what follows the header section
     * as tunnel data; wharf never opens a tunnel (no 2xx to CONNECT) and keeps reading
     * HTTP, the declared Content-Length body included */
    if (v->hp_upgrade && v->hp == ACCEPT && n > 8 && !memcmp(p, "CONNECT ", 8) &&
        (v->wharf == INCOMPLETE || (v->field && !strcmp(v->field, "request length"))))
        return "hp-connect-tunnel";
    if (v->wharf == ACCEPT && v->hp == ACCEPT)
        return NULL; /* same verdict, different fields: never documented */
    if (v->wharf == REJECT) {
        const char *why = refusal_reason(p, n);
        return why && find_class(why)->status == -v->wharf_rc ? why : NULL;
    }
    if (v->wharf == INCOMPLETE && v->hp == ACCEPT) {
        /* libhttp-parser (not HTTP_PARSER_STRICT) ends the header section at a line that
         * starts with CR, whatever follows the CR; wharf waits for that line's LF (and
         * then refuses the bare CR) */
        for (size_t i = 1; i + 1 < v->hp_used; i++)
            if (p[i - 1] == '\n' && p[i] == '\r' && p[i + 1] != '\n')
                return "hp-cr-ends-header-section";
        return NULL;
    }
    if (v->hp != REJECT)
        return NULL;
    const char *why = hp_reason(p, n, v->hp_err, v->hp_used);
    if (why)
        return why;
    /* wharf waits for the end of the line libhttp-parser already refused */
    if (v->wharf == INCOMPLETE && !memchr(p + v->hp_used, '\n', n - v->hp_used))
        return "line-not-ended";
    return NULL;
}

/* ---- running over a corpus ------------------------------------------------------------ */

static unsigned inputs, agree, differ_known, unexplained;

static void show(const char *path, const char *p, size_t n, const struct verdict *v,
                 const char *cls)
{
    printf("%s %s: wharf %s (%d), libhttp-parser %s (%s)%s%s at offset %zu:\n    ",
           cls ? cls : "UNEXPLAINED", path, outcome_name(v->wharf), v->wharf_rc,
           outcome_name(v->hp), http_errno_name(v->hp_err), v->field ? ", differ on " : "",
           v->field ? v->field : "", v->at);
    for (size_t k = v->at; k < n && k < v->at + 160; k++) {
        unsigned char c = (unsigned char)p[k];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            putchar(c);
        else
            printf("\\x%02x", c);
    }
    printf("%s\n", n > v->at + 160 ? "..." : "");
}

static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "diff_http: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t n = (size_t)st.st_size;
    char *p = malloc(n ? n : 1);
    if (!p || fread(p, 1, n, f) != n)
        die("cannot read an input");
    fclose(f);
    inputs++;
    struct verdict v;
    if (!run_both(p, n, &v)) {
        agree++;
    } else {
        const char *cls = classify(p, n, &v);
        if (cls) {
            struct klass *k = find_class(cls);
            if (k->count++ == 0)
                snprintf(k->example, sizeof k->example, "%s", path);
            differ_known++;
        } else {
            unexplained++;
        }
        if (!cls || verbose)
            show(path, p, n, &v, cls);
    }
    free(p);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        run_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d)
        die("cannot open a directory");
    char **names = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        names = realloc(names, (count + 1) * sizeof *names);
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        if (!names || !(names[count] = malloc(len)))
            die("out of memory");
        snprintf(names[count++], len, "%s/%s", path, e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, by_name);
    for (size_t i = 0; i < count; i++) {
        run_file(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            verbose = 1;
        } else if (strcmp(argv[i], "-l") == 0) {
            list_classes = 1;
        } else if (strcmp(argv[i], "--ids") == 0) {
            for (size_t k = 0; k < N_CLASSES; k++)
                printf("%s\n", classes[k].id);
            return 0;
        } else {
            break;
        }
    }
    if (i == argc) {
        fprintf(stderr, "usage: %s [-v] [-l] [--ids] DIR|FILE...\n", argv[0]);
        return 2;
    }
    for (; i < argc; i++)
        run_path(argv[i]);
    if (list_classes)
        for (size_t k = 0; k < N_CLASSES; k++)
            if (classes[k].count)
                printf("%-30s %5u  e.g. %s\n", classes[k].id, classes[k].count,
                       classes[k].example);
    printf("%u inputs: %u agree, %u differ in documented ways, %u unexplained\n", inputs, agree,
           differ_known, unexplained);
    return unexplained ? 1 : 0;
}
