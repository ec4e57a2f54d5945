/* listen_spec: the one grammar of a listener, for --listen, the configuration file's
 * "listen =" lines and systemd's FileDescriptorName=.
 *
 *     listener := SCHEME [ "+" MODIFIER ]... "://" ADDRESS
 *     ADDRESS  := HOST ":" PORT | "[" IPV6 "]" ":" PORT | "*" ":" PORT | PORT
 *
 * SCHEME names the protocol spoken on the socket (raw, line, frame, http; metrics is
 * HTTP serving only the stats routes; udp: datagrams, each one a message, answered with
 * one datagram); each MODIFIER names something that wraps it ("proxy": a PROXY protocol
 * header, v1 or v2, precedes the protocol and names the real client; see
 * server/proxy_stage.h). ADDRESS is addr_parse's (common/addr.h): a missing host means
 * 127.0.0.1, "*" every IPv4 address, port 0 a free port.
 *
 * Decisions, so that every caller agrees:
 * - names are lower case and matched exactly ("HTTP://" is refused, with a hint): systemd
 *   unit names and the log print them that way, and one spelling keeps a reload's
 *   comparison of old and new listeners trivial;
 * - a modifier may appear once; the order of several is free (they are a set, printed in
 *   table order);
 * - the scheme is required: a bare "127.0.0.1:9000" is an error, not a raw listener.
 *
 * New kinds are rows in the tables of listen_spec.c, not changes to the parser: a scheme
 * row gives its protocol and transport, a modifier row its bit and the schemes it may
 * wrap. The rest of the server reads struct listen_spec, never the text. */
#ifndef WHARF_LISTEN_SPEC_H
#define WHARF_LISTEN_SPEC_H

#include <stddef.h>
#include <sys/socket.h>

#include "../common/codec.h"

/* Longest text listen_spec_format writes, NUL included: scheme, modifiers, address. */
#define LISTEN_SPEC_TEXT_MAX 128

enum listen_transport { LISTEN_STREAM, LISTEN_DATAGRAM };

struct listen_scheme {
    const char *name;
    enum proto proto;
    enum listen_transport transport;
    unsigned flags; /* LISTEN_SCHEME_* bits */
};

/* The scheme serves only the stats routes (GET /metrics, /stats, /status, /healthz) over
 * HTTP: "metrics://", so that an operator can expose them on another address than the
 * service. */
#define LISTEN_SCHEME_METRICS 0x1u

struct listen_modifier {
    const char *name;
    unsigned bit;    /* its bit in listen_spec.modifiers */
    unsigned wraps;  /* LISTEN_PROTO_BIT(p) of every protocol it may wrap */
    int ready;       /* 0: the name is reserved and refused until it is implemented */
};

#define LISTEN_PROTO_BIT(p) (1u << (unsigned)(p))

/* The PROXY-protocol listener: a header from a trusted balancer comes first. */
#define LISTEN_MOD_PROXY 0x1u

/* A set of schemes and modifiers. wharfd has one (listen_grammar_wharfd); the unit tests
 * build others to exercise modifiers before any is implemented. */
struct listen_grammar {
    const struct listen_scheme *schemes;
    size_t n_schemes;
    const struct listen_modifier *modifiers;
    size_t n_modifiers;
};

extern const struct listen_grammar listen_grammar_wharfd;

/* One parsed listener. The address is the one asked for until the listener is bound,
 * then the bound one (port 0 replaced by the real port). */
struct listen_spec {
    enum proto proto;
    unsigned scheme_flags; /* its scheme's LISTEN_SCHEME_* bits */
    unsigned modifiers; /* LISTEN_MOD_* bits */
    struct sockaddr_storage sa;
    socklen_t sa_len;
    /* The scheme row's transport: LISTEN_DATAGRAM for udp:// (PROTO_UDP, served by
     * server/udp.c), LISTEN_STREAM for the rest. */
    enum listen_transport transport;
};

/* Parse a whole listener ("http://127.0.0.1:8080") with grammar g into spec. Names are
 * resolved once, with getaddrinfo. Returns 0, or -1 with a one-line reason in err that
 * quotes the text and, for an unknown name, lists the known ones. spec is undefined
 * after an error. */
int listen_grammar_parse(const struct listen_grammar *g, const char *text,
                         struct listen_spec *spec, char *err, size_t errlen);

/* Parse "SCHEME[+MODIFIER...]" (the len bytes at name; no "://") into spec->proto and
 * spec->modifiers, leaving the address alone. Returns 0, or -1 with a one-line reason
 * in err naming the bad part (the caller adds where the text came from). */
int listen_grammar_parse_name(const struct listen_grammar *g, const char *name, size_t len,
                              struct listen_spec *spec, char *err, size_t errlen);

/* listen_grammar_parse and listen_grammar_parse_name with wharfd's grammar. */
int listen_spec_parse(const char *text, struct listen_spec *spec, char *err, size_t errlen);
int listen_spec_parse_name(const char *name, size_t len, struct listen_spec *spec, char *err,
                           size_t errlen);

/* Write spec the way it is parsed back ("http://127.0.0.1:8080", "[::1]:80" with its
 * scheme and modifiers), truncated to outlen (LISTEN_SPEC_TEXT_MAX always suffices). */
void listen_spec_format(const struct listen_spec *spec, char *out, size_t outlen);

/* wharfd's row for protocol p, or NULL when p has none. */
const struct listen_scheme *listen_scheme_of(enum proto p);

/* The name spec's scheme is written with ("http", "metrics"): its row by protocol and
 * scheme flags. */
const char *listen_spec_scheme(const struct listen_spec *spec);

#endif
