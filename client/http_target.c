/* http_target: the URL and the HTTP flags; see http_target.h. */
#include "http_target.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY_FILE (64u << 20)

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A URL path byte as sent on the request line: visible ASCII but '#', '"' and '\\'. */
static int is_path_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '#' && c != '"' && c != '\\';
}

int http_target_parse(struct load_opts *o, char *out, size_t outlen, char *err, size_t errlen)
{
    const char *t = o->target_text;
    if (strncmp(t, "https://", 8) == 0) {
        snprintf(err, errlen, "https:// is not supported (no TLS yet): '%s'", t);
        return -1;
    }
    const char *auth = t + 7, *slash = strchr(auth, '/');
    size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
    o->http.path = slash ? slash : "/";
    for (const char *p = o->http.path; *p; p++)
        if (!is_path_char((unsigned char)*p)) {
            snprintf(err, errlen, "bad character in the URL's path '%s'", o->http.path);
            return -1;
        }
    if (alen == 0 || alen >= sizeof o->http.host) {
        snprintf(err, errlen, "no host in '%s'", t);
        return -1;
    }
    memcpy(o->http.host, auth, alen);
    o->http.host[alen] = '\0';
    /* A port is there when the authority ends in :DIGITS after any [IPv6] bracket. */
    const char *colon = strrchr(o->http.host, ':'), *bracket = strrchr(o->http.host, ']');
    int has_port = colon && (!bracket || colon > bracket);
    int n = snprintf(out, outlen, "http://%s%s", o->http.host, has_port ? "" : ":80");
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "URL too long: '%s'", t);
        return -1;
    }
    return 0;
}

int http_target_header(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    const char *colon = strchr(v, ':');
    size_t i = 0;
    while (v[i] && is_tchar((unsigned char)v[i]))
        i++;
    if (!colon || i == 0 || v + i != colon) {
        snprintf(err, errlen, "expected 'Name: value', got '%s'", v);
        return -1;
    }
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t') {
            snprintf(err, errlen, "a control character in '%s'", v);
            return -1;
        }
    if (o->http.n_headers == HTTP_SPEC_MAX_HEADERS) {
        snprintf(err, errlen, "more than %d headers", HTTP_SPEC_MAX_HEADERS);
        return -1;
    }
    o->http.headers[o->http.n_headers++] = v;
    return 0;
}

static void set_status_range(struct http_spec *s, long lo, long hi)
{
    for (long x = lo; x <= hi; x++)
        s->ok_status[x / 64] |= UINT64_C(1) << (x % 64);
}

int http_target_expect_status(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    const char *p = v;
    o->http.expect_status = 1;
    for (;;) {
        char *end;
        long lo = strtol(p, &end, 10), hi = lo;
        if (end == p || lo < 100 || lo > 599)
            break;
        p = end;
        if (*p == '-') {
            hi = strtol(p + 1, &end, 10);
            if (end == p + 1 || hi < lo || hi > 599)
                break;
            p = end;
        }
        set_status_range(&o->http, lo, hi);
        if (*p == '\0')
            return 0;
        if (*p++ != ',')
            break;
    }
    snprintf(err, errlen, "expected statuses such as 200 or 200,204,300-399, got '%s'", v);
    return -1;
}

int http_target_method(struct load_opts *o, const char *v, char *err, size_t errlen)
{
    for (const char *p = v; *p; p++)
        if (!is_tchar((unsigned char)*p))
            break;
        else if (!p[1]) {
            o->http.method = v;
            return 0;
        }
    snprintf(err, errlen, "expected a method such as GET or POST, got '%s'", v);
    return -1;
}

int http_target_body_file(struct load_opts *o, char *err, size_t errlen)
{
    const char *path = o->http.body_file;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "--body-file %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap || cap >= MAX_BODY_FILE)
            break;
        char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
        }
        b = nb;
        cap *= 2;
    }
    int bad = !b || ferror(f) || n >= MAX_BODY_FILE;
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "--body-file %s: %s", path,
                 b ? "unreadable or above 64 MiB" : "out of memory");
        free(b);
        return -1;
    }
    o->http.body_owned = b;
    o->http.body = b;
    o->http.body_len = n;
    return 0;
}
