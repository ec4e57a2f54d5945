/* listen_spec: the listener grammar SCHEME[+MODIFIER...]://HOST:PORT, with wharfd's
 * tables and with a test grammar whose modifiers are implemented (wharfd has none yet).
 * Numeric hosts only, so the tests never depend on DNS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include <cmocka.h>

#include "../../server/listen_spec.h"
#include "../../server/listener.h"

/* A grammar with modifiers the parser must handle before wharfd has any: tls wraps http
 * only, zip wraps raw and http, later is reserved. dgram stands in for a datagram kind. */
#define MOD_TLS 0x1u
#define MOD_ZIP 0x2u
#define MOD_LATER 0x4u

static const struct listen_scheme test_schemes[] = {
    {"raw", PROTO_RAW, LISTEN_STREAM, 0},
    {"http", PROTO_HTTP, LISTEN_STREAM, 0},
    {"dgram", PROTO_LINE, LISTEN_DATAGRAM, 0},
};

static const struct listen_modifier test_modifiers[] = {
    {"tls", MOD_TLS, LISTEN_PROTO_BIT(PROTO_HTTP), 1},
    {"zip", MOD_ZIP, LISTEN_PROTO_BIT(PROTO_RAW) | LISTEN_PROTO_BIT(PROTO_HTTP), 1},
    {"later", MOD_LATER, LISTEN_PROTO_BIT(PROTO_HTTP), 0},
};

static const struct listen_grammar test_grammar = {test_schemes, 3, test_modifiers, 3};

static void parse_ok(const struct listen_grammar *g, const char *text, struct listen_spec *spec)
{
    char err[256] = "";
    int rc = listen_grammar_parse(g, text, spec, err, sizeof err);
    if (rc != 0)
        fail_msg("parse(\"%s\") = %d: %s", text, rc, err);
}

/* text must be refused with exactly the reason want, or, when want starts with '~',
 * with a reason containing the rest of want. Every reason is one line. */
static void expect_error(const struct listen_grammar *g, const char *text, const char *want)
{
    struct listen_spec spec;
    char err[256] = "";
    int rc = listen_grammar_parse(g, text, &spec, err, sizeof err);
    if (rc != -1)
        fail_msg("parse(\"%s\") = %d, want -1", text, rc);
    if (strchr(err, '\n'))
        fail_msg("parse(\"%s\"): reason is not one line: %s", text, err);
    int ok = want[0] == '~' ? strstr(err, want + 1) != NULL : strcmp(err, want) == 0;
    if (!ok)
        fail_msg("parse(\"%s\"): reason \"%s\", want \"%s\"", text, err, want);
}

struct bad_case {
    const char *text, *want; /* want: as for expect_error */
};

static void expect_errors(const struct listen_grammar *g, const struct bad_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_error(g, c[i].text, c[i].want);
}

static int port_of(const struct listen_spec *s)
{
    return s->sa.ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)&s->sa)->sin6_port)
                                       : ntohs(((const struct sockaddr_in *)&s->sa)->sin_port);
}

static uint32_t ipv4_of(const struct listen_spec *s)
{
    return ntohl(((const struct sockaddr_in *)&s->sa)->sin_addr.s_addr);
}

static void test_every_scheme_and_address_form(void **state)
{
    (void)state;
    const struct listen_grammar *g = &listen_grammar_wharfd;
    struct listen_spec s;
    parse_ok(g, "raw://127.0.0.1:9000", &s);
    assert_int_equal(s.proto, PROTO_RAW);
    assert_int_equal(s.modifiers, 0);
    assert_int_equal(s.sa.ss_family, AF_INET);
    assert_int_equal(s.sa_len, sizeof(struct sockaddr_in));
    assert_int_equal(ipv4_of(&s), INADDR_LOOPBACK);
    assert_int_equal(port_of(&s), 9000);

    parse_ok(g, "line://*:8081", &s); /* every IPv4 address */
    assert_int_equal(s.proto, PROTO_LINE);
    assert_int_equal(ipv4_of(&s), INADDR_ANY);

    parse_ok(g, "frame://5000", &s); /* a bare port: loopback */
    assert_int_equal(s.proto, PROTO_FRAME);
    assert_int_equal(ipv4_of(&s), INADDR_LOOPBACK);
    assert_int_equal(port_of(&s), 5000);

    parse_ok(g, "http://:7000", &s); /* an empty host: loopback too */
    assert_int_equal(s.proto, PROTO_HTTP);
    assert_int_equal(ipv4_of(&s), INADDR_LOOPBACK);

    parse_ok(g, "http://[::1]:8080", &s);
    assert_int_equal(s.sa.ss_family, AF_INET6);
    assert_int_equal(s.sa_len, sizeof(struct sockaddr_in6));
    assert_true(IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&s.sa)->sin6_addr));
    assert_int_equal(port_of(&s), 8080);

    parse_ok(g, "raw://[2001:db8::5]:0", &s); /* port 0: the kernel picks one at bind */
    assert_int_equal(port_of(&s), 0);
    parse_ok(g, "http://0.0.0.0:65535", &s);
    assert_int_equal(port_of(&s), 65535);
    assert_int_equal(s.scheme_flags, 0);
    struct listener l = {.fd = -1, .ep = s};
    assert_int_equal(listener_conn_proto(&l), PROTO_HTTP);

    /* metrics: HTTP that serves only the stats routes, told apart by its scheme flag, which
     * travels with each connection in its protocol byte (listener.h) */
    parse_ok(g, "metrics://0.0.0.0:9100", &s);
    assert_int_equal(s.proto, PROTO_HTTP);
    assert_int_equal(s.scheme_flags, LISTEN_SCHEME_METRICS);
    l.ep = s;
    assert_int_equal(listener_conn_proto(&l), PROTO_HTTP | LISTENER_PROTO_METRICS);
    assert_string_equal(listen_spec_scheme(&s), "metrics");
    /* behind a balancer: both bits, and the protocol under them */
    parse_ok(g, "metrics+proxy://127.0.0.1:1", &l.ep);
    assert_int_equal(listener_conn_proto(&l),
                     PROTO_HTTP | LISTENER_PROTO_METRICS | LISTENER_PROTO_PROXY);
    assert_int_equal(listener_conn_proto(&l) & LISTENER_PROTO_MASK, PROTO_HTTP);
}

/* udp://: a datagram listener, with the proto and the transport of its row; no
 * modifier wraps it, and it prints back as it was written. */
static void test_udp_scheme(void **state)
{
    (void)state;
    struct listen_spec s;
    char out[LISTEN_SPEC_TEXT_MAX];
    parse_ok(&listen_grammar_wharfd, "udp://[::1]:0", &s);
    assert_int_equal(s.proto, PROTO_UDP);
    assert_int_equal(s.transport, LISTEN_DATAGRAM);
    assert_int_equal(s.sa.ss_family, AF_INET6);
    parse_ok(&listen_grammar_wharfd, "udp://127.0.0.1:53", &s);
    listen_spec_format(&s, out, sizeof out);
    assert_string_equal(out, "udp://127.0.0.1:53");
    parse_ok(&listen_grammar_wharfd, "raw://127.0.0.1:53", &s);
    assert_int_equal(s.transport, LISTEN_STREAM);
    expect_error(&listen_grammar_wharfd, "udp+proxy://127.0.0.1:53",
                 "'udp+proxy://127.0.0.1:53': modifier 'proxy' does not apply to udp");
    expect_error(&listen_grammar_wharfd, "UDP://127.0.0.1:53", "~names are lower case");
}

static void test_format_round_trips(void **state)
{
    (void)state;
    static const char *const texts[] = {"raw://127.0.0.1:9000", "line://0.0.0.0:1",
                                        "frame://[::1]:0", "http://[2001:db8::5]:8080",
                                        "metrics://10.0.0.1:9100"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct listen_spec s, again;
        char out[LISTEN_SPEC_TEXT_MAX];
        parse_ok(&listen_grammar_wharfd, texts[i], &s);
        listen_spec_format(&s, out, sizeof out);
        assert_string_equal(out, texts[i]);
        parse_ok(&listen_grammar_wharfd, out, &again);
        assert_int_equal(again.proto, s.proto);
        assert_int_equal(again.scheme_flags, s.scheme_flags);
        assert_int_equal(again.sa_len, s.sa_len);
        assert_memory_equal(&again.sa, &s.sa, s.sa_len);
    }
    /* Modifiers are printed after the scheme, even one not accepted yet. */
    struct listen_spec s;
    parse_ok(&listen_grammar_wharfd, "http://127.0.0.1:80", &s);
    s.modifiers = LISTEN_MOD_PROXY;
    char out[LISTEN_SPEC_TEXT_MAX];
    listen_spec_format(&s, out, sizeof out);
    assert_string_equal(out, "http+proxy://127.0.0.1:80");
    /* A short buffer is cut and terminated, not overrun. */
    char small[9];
    memset(small, 'Z', sizeof small);
    listen_spec_format(&s, small, 8);
    assert_string_equal(small, "http+pr");
    assert_int_equal(small[8], 'Z');
}

static void test_scheme_errors(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"ftp://1.2.3.4:1",
         "'ftp://1.2.3.4:1': unknown protocol 'ftp' (known: raw, line, frame, http, udp, metrics)"},
        {"127.0.0.1:9", "'127.0.0.1:9' names no protocol (write SCHEME://HOST:PORT; "
                        "schemes: raw, line, frame, http, udp, metrics)"},
        {"9000", "~names no protocol"},
        {"", "~names no protocol"},
        {"http:/127.0.0.1:80", "~names no protocol"},
        {"://127.0.0.1:1",
         "'://127.0.0.1:1': empty protocol name (known: raw, line, frame, http, udp, metrics)"},
        {"+proxy://127.0.0.1:1", "~empty protocol name"},
        /* Lower case only, as systemd names and the log write them; the reason says so. */
        {"HTTP://127.0.0.1:1", "'HTTP://127.0.0.1:1': unknown protocol 'HTTP' "
                               "(known: raw, line, frame, http, udp, metrics; names are lower case)"},
        {"Raw://127.0.0.1:1", "~names are lower case"},
        {"rawx://127.0.0.1:1", "~unknown protocol 'rawx' (known: raw, line, frame, http, udp, metrics)"},
        {"ra://127.0.0.1:1", "~unknown protocol 'ra'"},
        {"http2://[::1]:80", "~unknown protocol 'http2'"},
    };
    expect_errors(&listen_grammar_wharfd, cases, sizeof cases / sizeof cases[0]);
}

static void test_modifier_errors_in_wharfd(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"http+gzip://127.0.0.1:80",
         "'http+gzip://127.0.0.1:80': unknown modifier 'gzip' (known: proxy)"},
        {"http+://127.0.0.1:80",
         "'http+://127.0.0.1:80': empty modifier after '+' (known: proxy)"},
        {"http++proxy://127.0.0.1:80", "~empty modifier after '+'"},
        {"http+proxy+://127.0.0.1:80", "~empty modifier after '+'"},
        {"http+proxy+proxy://127.0.0.1:80", "'http+proxy+proxy://127.0.0.1:80': modifier "
                                            "'proxy' is given twice"},
        {"http+PROXY://127.0.0.1:80", "~unknown modifier 'PROXY'"},
        /* The scheme is checked first: its error wins over a modifier's. */
        {"ftp+gzip://127.0.0.1:80", "~unknown protocol 'ftp'"},
    };
    expect_errors(&listen_grammar_wharfd, cases, sizeof cases / sizeof cases[0]);
}

static void test_address_errors(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"http://127.0.0.1", "bad port in 'http://127.0.0.1' (0-65535)"},
        {"http://127.0.0.1:", "bad port in 'http://127.0.0.1:' (0-65535)"},
        {"raw://", "~bad port"},
        {"http://127.0.0.1:65536", "~bad port"},
        {"http://127.0.0.1:99999", "~bad port"},
        {"http://127.0.0.1:-1", "~bad port"},
        {"http://127.0.0.1:80x", "~bad port"},
        {"http://[::1]:", "~bad port"},
        {"http://[::1]", "~bad address"},
        {"http://[::1:80", "~bad address"},
        {"http://::1:80", "~write IPv6 as [ADDR]:PORT"},
        {"http://raw://127.0.0.1:80", "~bad address"},
    };
    expect_errors(&listen_grammar_wharfd, cases, sizeof cases / sizeof cases[0]);
}

static void test_modifiers_when_implemented(void **state)
{
    (void)state;
    struct listen_spec s, t;
    parse_ok(&test_grammar, "http+tls://127.0.0.1:443", &s);
    assert_int_equal(s.proto, PROTO_HTTP);
    assert_int_equal(s.modifiers, MOD_TLS);
    assert_int_equal(port_of(&s), 443);
    /* A set: the order of several does not matter. */
    parse_ok(&test_grammar, "http+tls+zip://127.0.0.1:1", &s);
    parse_ok(&test_grammar, "http+zip+tls://127.0.0.1:1", &t);
    assert_int_equal(s.modifiers, MOD_TLS | MOD_ZIP);
    assert_int_equal(t.modifiers, s.modifiers);
    parse_ok(&test_grammar, "raw+zip://127.0.0.1:1", &s);
    assert_int_equal(s.modifiers, MOD_ZIP);

    expect_error(&test_grammar, "http+tls+tls://127.0.0.1:1",
                 "'http+tls+tls://127.0.0.1:1': modifier 'tls' is given twice");
    expect_error(&test_grammar, "raw+tls://127.0.0.1:1",
                 "'raw+tls://127.0.0.1:1': modifier 'tls' does not apply to raw");
    /* Reserved names are refused and not offered. */
    expect_error(&test_grammar, "http+later://127.0.0.1:1",
                 "~modifier 'later' is not implemented yet (known: tls, zip)");
    expect_error(&test_grammar, "http+gzip://127.0.0.1:1",
                 "~unknown modifier 'gzip' (known: tls, zip)");
    expect_error(&test_grammar, "udp://127.0.0.1:1", "~(known: raw, http, dgram)");
}

/* The socket-activation half: FileDescriptorName= gives the part before "://". */
static void test_names(void **state)
{
    (void)state;
    struct listen_spec s;
    char err[256];
    memset(&s, 0, sizeof s);
    assert_int_equal(listen_spec_parse_name("http-public", 4, &s, err, sizeof err), 0);
    assert_int_equal(s.proto, PROTO_HTTP);
    assert_int_equal(listen_spec_parse_name("frame", 5, &s, err, sizeof err), 0);
    assert_int_equal(s.proto, PROTO_FRAME);
    assert_int_equal(s.modifiers, 0);
    assert_int_equal(listen_spec_parse_name("gopher", 6, &s, err, sizeof err), -1);
    assert_string_equal(err, "unknown protocol 'gopher' (known: raw, line, frame, http, udp, metrics)");
    assert_int_equal(listen_spec_parse_name("", 0, &s, err, sizeof err), -1);
    assert_string_equal(err, "empty protocol name (known: raw, line, frame, http, udp, metrics)");
    assert_int_equal(listen_spec_parse_name("http+proxy", 10, &s, err, sizeof err), 0);
    assert_int_equal(s.proto, PROTO_HTTP);
    assert_int_equal(s.modifiers, LISTEN_MOD_PROXY);
    /* every TCP scheme may be proxied, and it prints back the same */
    const char *proxied[] = {"raw+proxy://127.0.0.1:1", "line+proxy://127.0.0.1:2",
                             "frame+proxy://[::1]:3", "http+proxy://127.0.0.1:4"};
    for (size_t i = 0; i < sizeof proxied / sizeof proxied[0]; i++) {
        char out[LISTEN_SPEC_TEXT_MAX];
        assert_int_equal(listen_spec_parse(proxied[i], &s, err, sizeof err), 0);
        assert_int_equal(s.modifiers, LISTEN_MOD_PROXY);
        listen_spec_format(&s, out, sizeof out);
        assert_string_equal(out, proxied[i]);
    }
    /* The length bounds the name: what follows is not read. */
    assert_int_equal(listen_grammar_parse_name(&test_grammar, "http+tls+tls", 8, &s, err,
                                               sizeof err),
                     0);
    assert_int_equal(s.modifiers, MOD_TLS);
}

/* listen_scheme_of indexes wharfd's table by protocol: the table must be in that order. */
static void test_scheme_table(void **state)
{
    (void)state;
    const struct listen_grammar *g = &listen_grammar_wharfd;
    /* one row per protocol, indexed by it, then metrics (HTTP with a scheme flag) */
    assert_int_equal(g->n_schemes, PROTO_COUNT + 1);
    assert_string_equal(g->schemes[PROTO_COUNT].name, "metrics");
    assert_int_equal(g->schemes[PROTO_COUNT].flags, LISTEN_SCHEME_METRICS);
    for (int p = 0; p < PROTO_COUNT; p++) {
        const struct listen_scheme *sc = listen_scheme_of((enum proto)p);
        assert_non_null(sc);
        assert_ptr_equal(sc, &g->schemes[p]);
        assert_int_equal(sc->proto, p);
        assert_string_equal(sc->name, proto_name((enum proto)p));
        assert_int_equal(sc->transport, p == PROTO_UDP ? LISTEN_DATAGRAM : LISTEN_STREAM);
        assert_int_equal(sc->flags, 0);
        assert_int_equal(p & ~LISTENER_PROTO_MASK, 0); /* fits the protocol byte's low bits */
    }
    assert_null(listen_scheme_of(PROTO_COUNT));
    assert_null(listen_scheme_of((enum proto)-1));
    /* Modifier bits are distinct, so a set of them is a bitmask. */
    unsigned seen = 0;
    for (size_t i = 0; i < g->n_modifiers; i++) {
        assert_int_equal(seen & g->modifiers[i].bit, 0);
        assert_int_not_equal(g->modifiers[i].bit, 0);
        seen |= g->modifiers[i].bit;
    }
}

/* A small err buffer is respected (NUL-terminated, not overrun). */
static void test_error_buffer_small(void **state)
{
    (void)state;
    static const char *const bad[] = {"ftp://1.2.3.4:1", "http+gzip://1", "9000",
                                      "http://127.0.0.1:99999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[9];
        memset(err, 'Z', sizeof err);
        struct listen_spec s;
        assert_int_equal(listen_spec_parse(bad[i], &s, err, 8), -1);
        assert_int_equal(err[7], '\0');
        assert_int_equal(err[8], 'Z');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_scheme_and_address_form),
        cmocka_unit_test(test_format_round_trips),
        cmocka_unit_test(test_udp_scheme),
        cmocka_unit_test(test_scheme_errors),
        cmocka_unit_test(test_modifier_errors_in_wharfd),
        cmocka_unit_test(test_address_errors),
        cmocka_unit_test(test_modifiers_when_implemented),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_scheme_table),
        cmocka_unit_test(test_error_buffer_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
