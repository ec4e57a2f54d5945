#include "listen_spec.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../common/addr.h"

/* The first rows are indexed by enum proto: listen_scheme_of relies on it. Rows after
 * them speak one of those protocols with scheme flags. */
static const struct listen_scheme wharfd_schemes[] = {
    {"raw", PROTO_RAW, LISTEN_STREAM, 0},
    {"line", PROTO_LINE, LISTEN_STREAM, 0},
    {"frame", PROTO_FRAME, LISTEN_STREAM, 0},
    {"http", PROTO_HTTP, LISTEN_STREAM, 0},
    {"udp", PROTO_UDP, LISTEN_DATAGRAM, 0},
    {"metrics", PROTO_HTTP, LISTEN_STREAM, LISTEN_SCHEME_METRICS},
};

/* proxy: a PROXY protocol header (v1 or v2) comes first and names the real client
 * (server/proxy_stage.c). */
static const struct listen_modifier wharfd_modifiers[] = {
    {"proxy", LISTEN_MOD_PROXY,
     LISTEN_PROTO_BIT(PROTO_RAW) | LISTEN_PROTO_BIT(PROTO_LINE) | LISTEN_PROTO_BIT(PROTO_FRAME) |
         LISTEN_PROTO_BIT(PROTO_HTTP),
     1},
};

const struct listen_grammar listen_grammar_wharfd = {
    wharfd_schemes, sizeof wharfd_schemes / sizeof wharfd_schemes[0],
    wharfd_modifiers, sizeof wharfd_modifiers / sizeof wharfd_modifiers[0],
};

const struct listen_scheme *listen_scheme_of(enum proto p)
{
    return (unsigned)p < PROTO_COUNT ? &wharfd_schemes[p] : NULL;
}

const char *listen_spec_scheme(const struct listen_spec *spec)
{
    for (size_t i = 0; i < sizeof wharfd_schemes / sizeof wharfd_schemes[0]; i++)
        if (wharfd_schemes[i].proto == spec->proto &&
            wharfd_schemes[i].flags == spec->scheme_flags)
            return wharfd_schemes[i].name;
    return proto_name(spec->proto);
}

static int name_is(const char *name, const char *s, size_t len)
{
    return strlen(name) == len && memcmp(name, s, len) == 0;
}

/* "raw, line, frame, http": the names an error offers instead of a wrong one. */
static void list_schemes(const struct listen_grammar *g, char *out, size_t outlen)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < g->n_schemes && off < outlen; i++)
        off += (size_t)snprintf(out + off, outlen - off, "%s%s", i ? ", " : "",
                                g->schemes[i].name);
}

/* Only the modifiers one may write: reserved ones are not offered. */
static void list_modifiers(const struct listen_grammar *g, char *out, size_t outlen)
{
    size_t off = 0;
    snprintf(out, outlen, "none yet");
    for (size_t i = 0; i < g->n_modifiers && off < outlen; i++)
        if (g->modifiers[i].ready)
            off += (size_t)snprintf(out + off, outlen - off, "%s%s", off ? ", " : "",
                                    g->modifiers[i].name);
}

static int parse_scheme(const struct listen_grammar *g, const char *s, size_t len,
                        struct listen_spec *spec, char *err, size_t errlen)
{
    int other_case = 0;
    for (size_t i = 0; i < g->n_schemes; i++) {
        if (name_is(g->schemes[i].name, s, len)) {
            spec->proto = g->schemes[i].proto;
            spec->scheme_flags = g->schemes[i].flags;
            spec->transport = g->schemes[i].transport;
            return 0;
        }
        other_case |= strlen(g->schemes[i].name) == len &&
                      strncasecmp(g->schemes[i].name, s, len) == 0;
    }
    char known[128];
    list_schemes(g, known, sizeof known);
    if (len == 0)
        snprintf(err, errlen, "empty protocol name (known: %s)", known);
    else
        snprintf(err, errlen, "unknown protocol '%.*s' (known: %s%s)", (int)len, s, known,
                 other_case ? "; names are lower case" : "");
    return -1;
}

static const struct listen_modifier *find_modifier(const struct listen_grammar *g,
                                                   const char *s, size_t len)
{
    for (size_t i = 0; i < g->n_modifiers; i++)
        if (name_is(g->modifiers[i].name, s, len))
            return &g->modifiers[i];
    return NULL;
}

/* One "+MODIFIER" (s, len: the name after the '+') added to spec->modifiers. */
static int parse_modifier(const struct listen_grammar *g, const char *s, size_t len,
                          struct listen_spec *spec, char *err, size_t errlen)
{
    const struct listen_modifier *m = find_modifier(g, s, len);
    char known[128];
    list_modifiers(g, known, sizeof known);
    if (len == 0)
        snprintf(err, errlen, "empty modifier after '+' (known: %s)", known);
    else if (!m)
        snprintf(err, errlen, "unknown modifier '%.*s' (known: %s)", (int)len, s, known);
    else if (!m->ready)
        snprintf(err, errlen, "modifier '%s' is not implemented yet (known: %s)", m->name,
                 known);
    else if (!(m->wraps & LISTEN_PROTO_BIT(spec->proto)))
        snprintf(err, errlen, "modifier '%s' does not apply to %s", m->name,
                 proto_name(spec->proto));
    else if (spec->modifiers & m->bit)
        snprintf(err, errlen, "modifier '%s' is given twice", m->name);
    else {
        spec->modifiers |= m->bit;
        return 0;
    }
    return -1;
}

int listen_grammar_parse_name(const struct listen_grammar *g, const char *name, size_t len,
                              struct listen_spec *spec, char *err, size_t errlen)
{
    const char *end = name + len;
    const char *plus = memchr(name, '+', len);
    size_t scheme_len = plus ? (size_t)(plus - name) : len;
    spec->modifiers = 0;
    /* The scheme first: whether a modifier applies depends on it. */
    if (parse_scheme(g, name, scheme_len, spec, err, errlen) < 0)
        return -1;
    while (plus) {
        const char *m = plus + 1;
        plus = memchr(m, '+', (size_t)(end - m));
        size_t mlen = plus ? (size_t)(plus - m) : (size_t)(end - m);
        if (parse_modifier(g, m, mlen, spec, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int listen_grammar_parse(const struct listen_grammar *g, const char *text,
                         struct listen_spec *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof *spec);
    const char *sep = strstr(text, "://");
    char why[256];
    if (!sep) {
        list_schemes(g, why, sizeof why);
        snprintf(err, errlen, "'%s' names no protocol (write SCHEME://HOST:PORT; schemes: %s)",
                 text, why);
        return -1;
    }
    if (listen_grammar_parse_name(g, text, (size_t)(sep - text), spec, why, sizeof why) < 0) {
        snprintf(err, errlen, "'%s': %s", text, why);
        return -1;
    }
    /* The address half is the one every wharf tool shares (common/addr.c). */
    struct endpoint ep;
    memset(&ep, 0, sizeof ep);
    if (addr_parse_host_port(text, (size_t)(sep - text) + 3, &ep, err, errlen) < 0)
        return -1;
    spec->sa = ep.sa;
    spec->sa_len = ep.sa_len;
    return 0;
}

int listen_spec_parse(const char *text, struct listen_spec *spec, char *err, size_t errlen)
{
    return listen_grammar_parse(&listen_grammar_wharfd, text, spec, err, errlen);
}

int listen_spec_parse_name(const char *name, size_t len, struct listen_spec *spec, char *err,
                           size_t errlen)
{
    return listen_grammar_parse_name(&listen_grammar_wharfd, name, len, spec, err, errlen);
}

void listen_spec_format(const struct listen_spec *spec, char *out, size_t outlen)
{
    char scheme[LISTEN_SPEC_TEXT_MAX - ADDR_TEXT_MAX];
    size_t off = (size_t)snprintf(scheme, sizeof scheme, "%s", listen_spec_scheme(spec));
    const struct listen_grammar *g = &listen_grammar_wharfd;
    for (size_t i = 0; i < g->n_modifiers && off < sizeof scheme; i++)
        if (spec->modifiers & g->modifiers[i].bit)
            off += (size_t)snprintf(scheme + off, sizeof scheme - off, "+%s",
                                    g->modifiers[i].name);
    char a[ADDR_TEXT_MAX];
    addr_format((const struct sockaddr *)&spec->sa, a, sizeof a);
    snprintf(out, outlen, "%s://%s", scheme, a);
}
