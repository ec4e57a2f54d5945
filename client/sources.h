/* sources: --source, the list of local addresses connections are spread over. */
#ifndef WHARF_SOURCES_H
#define WHARF_SOURCES_H

#include <stddef.h>

#include "options.h"

/* Add the addresses of text to o->sources: "A,B,C", where an item is an IPv6 address,
 * an IPv4 address or an IPv4 range "127.0.0.2-127.0.0.9" or "127.0.0.2-9". Returns 0,
 * or -1 with a one-line reason in err. */
int sources_parse(struct load_opts *o, const char *text, char *err, size_t errlen);

#endif
