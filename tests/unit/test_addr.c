/* addr: PROTO://HOST:PORT parsing, formatting and loopback checks (numeric hosts only,
 * so the tests never depend on DNS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/un.h>

#include <cmocka.h>

#include "../../common/addr.h"

/* Parse text and format it back; fails the test when parsing fails. */
static void parse_ok(const char *text, struct endpoint *ep)
{
    char err[128] = "";
    int rc = addr_parse(text, ep, err, sizeof err);
    if (rc != 0)
        fail_msg("addr_parse(\"%s\") = %d: %s", text, rc, err);
}

static void expect_round_trip(const char *text, const char *formatted, enum proto proto,
                              int has_proto)
{
    struct endpoint ep;
    parse_ok(text, &ep);
    char out[ADDR_TEXT_MAX + 16];
    endpoint_format(&ep, out, sizeof out);
    if (strcmp(out, formatted) != 0)
        fail_msg("\"%s\" formats as \"%s\", want \"%s\"", text, out, formatted);
    assert_int_equal(ep.proto, proto);
    assert_int_equal(ep.has_proto, has_proto);
    /* Parsing the formatted text gives the same address again. */
    struct endpoint again;
    parse_ok(out, &again);
    assert_int_equal(again.sa_len, ep.sa_len);
    assert_memory_equal(&again.sa, &ep.sa, ep.sa_len);
    assert_int_equal(again.proto, ep.proto);
}

static void test_ipv4_with_proto(void **state)
{
    (void)state;
    struct endpoint ep;
    parse_ok("raw://127.0.0.1:9000", &ep);
    assert_int_equal(ep.proto, PROTO_RAW);
    assert_int_equal(ep.has_proto, 1);
    assert_int_equal(ep.sa.ss_family, AF_INET);
    assert_int_equal(ep.sa_len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ep.sa;
    assert_int_equal(ntohs(s4->sin_port), 9000);
    assert_int_equal(ntohl(s4->sin_addr.s_addr), 0x7f000001);
    assert_int_equal(addr_port((const struct sockaddr *)&ep.sa), 9000);

    parse_ok("line://10.1.2.3:1", &ep);
    assert_int_equal(ep.proto, PROTO_LINE);
    parse_ok("frame://0.0.0.0:65535", &ep);
    assert_int_equal(ep.proto, PROTO_FRAME);
    assert_int_equal(addr_port((const struct sockaddr *)&ep.sa), 65535);
    parse_ok("http://127.0.0.1:0", &ep);
    assert_int_equal(ep.proto, PROTO_HTTP);
    assert_int_equal(addr_port((const struct sockaddr *)&ep.sa), 0);
}

static void test_ipv6_brackets(void **state)
{
    (void)state;
    struct endpoint ep;
    parse_ok("[::1]:80", &ep);
    assert_int_equal(ep.has_proto, 0);
    assert_int_equal(ep.proto, PROTO_RAW);
    assert_int_equal(ep.sa.ss_family, AF_INET6);
    assert_int_equal(ep.sa_len, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ep.sa;
    assert_int_equal(ntohs(s6->sin6_port), 80);
    assert_true(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));

    parse_ok("http://[2001:db8::5]:8080", &ep);
    assert_int_equal(ep.proto, PROTO_HTTP);
    assert_int_equal(ep.sa.ss_family, AF_INET6);
    assert_int_equal(addr_port((const struct sockaddr *)&ep.sa), 8080);
}

static void test_bare_port_and_wildcard(void **state)
{
    (void)state;
    struct endpoint ep;
    parse_ok("9000", &ep);
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ep.sa;
    assert_int_equal(ep.sa.ss_family, AF_INET);
    assert_int_equal(ntohl(s4->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(ntohs(s4->sin_port), 9000);
    assert_int_equal(ep.has_proto, 0);

    parse_ok(":7000", &ep); /* empty host: loopback too */
    assert_int_equal(ntohl(s4->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(ntohs(s4->sin_port), 7000);

    parse_ok("*:8080", &ep);
    assert_int_equal(ep.sa.ss_family, AF_INET);
    assert_int_equal(ntohl(s4->sin_addr.s_addr), INADDR_ANY);
    assert_int_equal(ntohs(s4->sin_port), 8080);

    parse_ok("line://*:8081", &ep);
    assert_int_equal(ep.proto, PROTO_LINE);
    assert_int_equal(ntohl(s4->sin_addr.s_addr), INADDR_ANY);

    parse_ok("frame://5000", &ep);
    assert_int_equal(ep.proto, PROTO_FRAME);
    assert_int_equal(ntohl(s4->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(ntohs(s4->sin_port), 5000);
}

static void expect_bad(const char *text)
{
    struct endpoint ep;
    char err[128];
    memset(err, 0, sizeof err);
    int rc = addr_parse(text, &ep, err, sizeof err);
    if (rc != -1)
        fail_msg("addr_parse(\"%s\") = %d, want -1", text, rc);
    if (err[0] == '\0')
        fail_msg("addr_parse(\"%s\") gave no reason", text);
}

static void test_bad_proto(void **state)
{
    (void)state;
    expect_bad("tcp://127.0.0.1:9000");
    expect_bad("RAW://127.0.0.1:9000");
    expect_bad("://127.0.0.1:9000");
    expect_bad("rawx://1");
    expect_bad("http2://[::1]:80");
    /* The reason names the problem. */
    struct endpoint ep;
    char err[128];
    assert_int_equal(addr_parse("bogus://127.0.0.1:1", &ep, err, sizeof err), -1);
    assert_non_null(strstr(err, "protocol"));
}

static void test_bad_port(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "70000", "65536", "127.0.0.1:70000", "", "x", "127.0.0.1:", "127.0.0.1:x",
        "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1: 80", "127.0.0.1:80 ", "127.0.0.1:80x",
        "raw://", "raw://x", "[::1]:", "[::1]:99999", "99999999999999999999999",
        "127.0.0.1:8.0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad(bad[i]);
    struct endpoint ep;
    char err[128];
    assert_int_equal(addr_parse("127.0.0.1:70000", &ep, err, sizeof err), -1);
    assert_non_null(strstr(err, "port"));
}

static void test_ipv6_needs_brackets(void **state)
{
    (void)state;
    expect_bad("::1:80");
    expect_bad("raw://::1:80");
    expect_bad("2001:db8::1:443");
    expect_bad("[::1]");       /* no port */
    expect_bad("[::1]80");     /* no colon */
    expect_bad("[::1:80");     /* unterminated */
}

/* (Hosts that are not numeric would go to the resolver; these tests stay off DNS.) */
static void test_bad_host(void **state)
{
    (void)state;
    /* A host longer than the parser's buffer is refused, not truncated. */
    char text[600];
    memset(text, '1', 400);
    strcpy(text + 400, ":80");
    expect_bad(text);
    text[0] = '[';
    strcpy(text + 400, "]:80");
    expect_bad(text);
}

/* A small err buffer is respected (NUL-terminated, not overrun). */
static void test_error_buffer_small(void **state)
{
    (void)state;
    char err[9];
    memset(err, 'Z', sizeof err);
    struct endpoint ep;
    assert_int_equal(addr_parse("bogus://127.0.0.1:1", &ep, err, 8), -1);
    assert_int_equal(err[7], '\0');
    assert_int_equal(err[8], 'Z');
}

static void test_format_round_trip(void **state)
{
    (void)state;
    expect_round_trip("raw://127.0.0.1:9000", "raw://127.0.0.1:9000", PROTO_RAW, 1);
    expect_round_trip("9000", "raw://127.0.0.1:9000", PROTO_RAW, 0);
    expect_round_trip("*:8080", "raw://0.0.0.0:8080", PROTO_RAW, 0);
    expect_round_trip("line://[::1]:80", "line://[::1]:80", PROTO_LINE, 1);
    expect_round_trip("frame://10.0.0.7:1234", "frame://10.0.0.7:1234", PROTO_FRAME, 1);
    expect_round_trip("http://[2001:db8::5]:8080", "http://[2001:db8::5]:8080", PROTO_HTTP, 1);

    char out[64];
    struct endpoint ep;
    parse_ok("[::ffff:127.0.0.1]:1", &ep);
    addr_format((const struct sockaddr *)&ep.sa, out, sizeof out);
    assert_string_equal(out, "[::ffff:127.0.0.1]:1");

    /* Unknown families are named, not misprinted; a tiny output buffer is respected. */
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    addr_format((const struct sockaddr *)&un, out, sizeof out);
    assert_non_null(strstr(out, "family"));
    assert_int_equal(addr_port((const struct sockaddr *)&un), -1);
    memset(out, 'Z', sizeof out);
    parse_ok("127.0.0.1:9000", &ep);
    addr_format((const struct sockaddr *)&ep.sa, out, 5);
    assert_string_equal(out, "127.");
    assert_int_equal(out[5], 'Z');
}

static int loopback(const char *text)
{
    struct endpoint ep;
    parse_ok(text, &ep);
    return addr_is_loopback((const struct sockaddr *)&ep.sa);
}

static void test_loopback(void **state)
{
    (void)state;
    assert_true(loopback("127.0.0.1:1"));
    assert_true(loopback("127.255.3.4:1"));
    assert_true(loopback("127.0.0.0:1"));
    assert_true(loopback("9000"));
    assert_true(loopback("[::1]:1"));
    assert_true(loopback("[::ffff:127.0.0.1]:1"));
    assert_true(loopback("[::ffff:127.9.9.9]:1"));
    assert_false(loopback("0.0.0.0:1"));
    assert_false(loopback("*:1"));
    assert_false(loopback("128.0.0.1:1"));
    assert_false(loopback("126.255.255.255:1"));
    assert_false(loopback("10.0.0.1:1"));
    assert_false(loopback("1.0.0.127:1"));
    assert_false(loopback("[::]:1"));
    assert_false(loopback("[::2]:1"));
    assert_false(loopback("[::ffff:10.0.0.1]:1"));
    assert_false(loopback("[::127.0.0.1]:1")); /* v4-compatible, not v4-mapped */
    assert_false(loopback("[2001:db8::1]:1"));
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_false(addr_is_loopback((const struct sockaddr *)&un));
}

static void test_proto_names(void **state)
{
    (void)state;
    const char *names[] = {"raw", "line", "frame", "http", "udp"};
    for (int i = 0; i < PROTO_COUNT; i++) {
        assert_string_equal(proto_name((enum proto)i), names[i]);
        enum proto p = PROTO_COUNT;
        assert_int_equal(proto_parse(names[i], strlen(names[i]), &p), 0);
        assert_int_equal(p, i);
    }
    enum proto p;
    assert_int_equal(proto_parse("rawx", 3, &p), 0); /* length bounds the name */
    assert_int_equal(p, PROTO_RAW);
    assert_int_equal(proto_parse("ra", 2, &p), -1);
    assert_int_equal(proto_parse("", 0, &p), -1);
    assert_int_equal(proto_parse("Raw", 3, &p), -1);
    assert_string_equal(proto_name(PROTO_COUNT), "?");
    assert_string_equal(proto_name((enum proto)-1), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_with_proto),
        cmocka_unit_test(test_ipv6_brackets),
        cmocka_unit_test(test_bare_port_and_wildcard),
        cmocka_unit_test(test_bad_proto),
        cmocka_unit_test(test_bad_port),
        cmocka_unit_test(test_ipv6_needs_brackets),
        cmocka_unit_test(test_bad_host),
        cmocka_unit_test(test_error_buffer_small),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_proto_names),
    };
    return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
