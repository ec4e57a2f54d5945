/* net: small blocking-socket helpers for the client's simple modes. */
#ifndef WHARF_NET_H
#define WHARF_NET_H

#include <stddef.h>
#include <sys/types.h>

#include "../common/addr.h"

/* Connect (blocking) with a timeout; returns the fd or -1 with a message in err. */
int net_connect(const struct endpoint *ep, int timeout_ms, char *err, size_t errlen);
/* Write all of p; 0 or -1 (errno set). */
int net_write_all(int fd, const void *p, size_t len);

#endif
