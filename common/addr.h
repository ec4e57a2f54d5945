/* addr: endpoints written as PROTO://HOST:PORT, HOST:PORT, [IPV6]:PORT or a bare PORT. */
#ifndef WHARF_ADDR_H
#define WHARF_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "codec.h"

#define ADDR_TEXT_MAX 64

struct endpoint {
    enum proto proto;
    int has_proto;               /* the text named a protocol */
    struct sockaddr_storage sa;
    socklen_t sa_len;
};

/* Parse text into ep. A missing host means 127.0.0.1 (wharf binds loopback unless told
 * otherwise); "*" means every IPv4 address. Names are resolved once, with getaddrinfo.
 * Returns 0, or -1 with a one-line reason in err. */
int addr_parse(const char *text, struct endpoint *ep, char *err, size_t errlen);

/* The HOST:PORT half of addr_parse: parse what starts skip bytes into text (the caller
 * has read a scheme before it) into ep's address, leaving ep's protocol alone. Reasons
 * quote the whole text, so they read the same as addr_parse's. */
int addr_parse_host_port(const char *text, size_t skip, struct endpoint *ep, char *err,
                         size_t errlen);

/* "127.0.0.1:9000" or "[::1]:9000". */
void addr_format(const struct sockaddr *sa, char *out, size_t outlen);

/* "raw://127.0.0.1:9000". */
void endpoint_format(const struct endpoint *ep, char *out, size_t outlen);

int addr_port(const struct sockaddr *sa);
int addr_is_loopback(const struct sockaddr *sa);

#endif
