/* http_spec: what an HTTP load run sends and checks, from the flags (options.c,
 * http_target.c) to the protocol module (proto_http.c). */
#ifndef WHARF_HTTP_SPEC_H
#define WHARF_HTTP_SPEC_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_SPEC_MAX_HEADERS 64
#define HTTP_SPEC_HOST_MAX 300

struct http_spec {
    char host[HTTP_SPEC_HOST_MAX]; /* the Host field: the URL's authority as written */
    const char *path;              /* the URL's path and query: "/" when none */
    const char *method;            /* -m: GET unless told */
    const char *headers[HTTP_SPEC_MAX_HEADERS]; /* -H lines as given */
    int n_headers;
    const char *body;              /* --body, or --body-file's bytes */
    size_t body_len;
    char *body_owned;              /* --body-file's bytes, freed with the options */
    const char *body_file;
    uint64_t ok_status[10];        /* --expect-status: a bit per status 0-639 */
    int expect_status;             /* --expect-status was given */
    const char *expect_body;       /* --expect-body */
    char *raw_req;                 /* -s: the script's request, sent as it is (owned) */
    size_t raw_len;
    int raw_head;                  /* -s without request(): raw_req is HEAD (no bodies);
                                    * with request() each request's own method decides */
};

static inline int http_spec_status_ok(const struct http_spec *s, int status)
{
    return (s->ok_status[status / 64] >> (status % 64)) & 1;
}

#endif
