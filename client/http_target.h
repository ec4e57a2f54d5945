/* http_target: the HTTP flags' values and the http:// URL, checked and stored in the
 * load options' http_spec. Each returns 0, or -1 with a one-line reason in err. */
#ifndef WHARF_HTTP_TARGET_H
#define WHARF_HTTP_TARGET_H

#include <stddef.h>

#include "options.h"

/* Split an http:// URL (o->target_text) into the address text for addr_parse (out,
 * "http://HOST:PORT", port 80 when none), o->http.host and o->http.path. https:// and
 * anything after the path that is not a URL (a fragment, white space) are refused. */
int http_target_parse(struct load_opts *o, char *out, size_t outlen, char *err, size_t errlen);

/* -H "Name: value" (repeatable). */
int http_target_header(struct load_opts *o, const char *v, char *err, size_t errlen);
/* --expect-status 200,204,300-399. */
int http_target_expect_status(struct load_opts *o, const char *v, char *err, size_t errlen);
/* -m METHOD: a token. */
int http_target_method(struct load_opts *o, const char *v, char *err, size_t errlen);
/* --body-file: read the whole file (after the flags, so --body and it conflict clearly). */
int http_target_body_file(struct load_opts *o, char *err, size_t errlen);

#endif
