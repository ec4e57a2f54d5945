/* mode: what the server does to a payload before sending it back. */
#ifndef WHARF_MODE_H
#define WHARF_MODE_H

#include <stddef.h>

enum mode { MODE_ECHO, MODE_UPPER };

int mode_parse(const char *s, enum mode *out); /* "echo" | "upper"; 0 or -1 */
const char *mode_name(enum mode m);

/* Write the transformed src to dst (dst may equal src). ASCII upper-casing only:
 * bytes outside a-z pass through, so any binary payload round-trips its length. */
void mode_apply(enum mode m, const char *src, size_t len, char *dst);

#endif
