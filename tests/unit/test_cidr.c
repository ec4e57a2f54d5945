/* cidr: lists parsed with their exact errors, v4 and v6 prefixes of every length at
 * their edges, IPv4-mapped IPv6 addresses against IPv4 rules, and the text written back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "../../common/cidr.h"

static struct cidr_list parse_ok(const char *text)
{
    struct cidr_list l;
    char err[256] = "";
    if (cidr_list_parse(text, &l, err, sizeof err) != 0)
        fail_msg("'%s' refused: %s", text, err);
    return l;
}

/* The 16-byte form of a textual address (IPv4 becomes IPv4-mapped). */
static void a16(const char *text, uint8_t out[16])
{
    struct sockaddr_storage ss = {0};
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    else
        fail_msg("bad test address %s", text);
    assert_int_equal(cidr_addr16((struct sockaddr *)&ss, out), 0);
}

static int in(const struct cidr_list *l, const char *addr)
{
    uint8_t a[16];
    a16(addr, a);
    return cidr_match(l, a);
}

static void test_default_loopback(void **state)
{
    (void)state;
    struct cidr_list l = parse_ok("127.0.0.0/8,::1");
    assert_int_equal(l.n, 2);
    assert_true(in(&l, "127.0.0.1"));
    assert_true(in(&l, "127.255.255.255"));
    assert_true(in(&l, "::ffff:127.0.0.3")); /* a dual-stack socket's view of IPv4 */
    assert_true(in(&l, "::1"));
    assert_false(in(&l, "128.0.0.1"));
    assert_false(in(&l, "126.255.255.255"));
    assert_false(in(&l, "::2"));
    assert_false(in(&l, "::127.0.0.1")); /* IPv4-compatible, not mapped */
    char text[128];
    cidr_list_format(&l, text, sizeof text);
    assert_string_equal(text, "127.0.0.0/8,::1/128");
}

static void test_prefix_edges(void **state)
{
    (void)state;
    struct cidr_list l = parse_ok("10.1.2.128/25");
    assert_int_equal(l.r[0].bits, 96 + 25);
    assert_true(in(&l, "10.1.2.128"));
    assert_true(in(&l, "10.1.2.255"));
    assert_false(in(&l, "10.1.2.127"));
    assert_false(in(&l, "10.1.3.128"));
    l = parse_ok("2001:db8:8000::/33");
    assert_true(in(&l, "2001:db8:8000::1"));
    assert_true(in(&l, "2001:db8:ffff:ffff::"));
    assert_false(in(&l, "2001:db8:7fff::"));
    l = parse_ok("127.0.0.9/32");
    assert_true(in(&l, "127.0.0.9"));
    assert_false(in(&l, "127.0.0.8"));
    l = parse_ok("0.0.0.0/0");
    assert_true(in(&l, "1.2.3.4"));
    assert_false(in(&l, "::1")); /* every IPv4 address, not every address */
    l = parse_ok("::/0");
    assert_true(in(&l, "1.2.3.4"));
    assert_true(in(&l, "ffff::"));
    l = parse_ok("::ffff:10.0.0.0/104"); /* an IPv4 range written the IPv6 way */
    assert_true(in(&l, "10.9.9.9"));
    assert_false(in(&l, "11.0.0.0"));
}

static void test_every_v4_length(void **state)
{
    (void)state;
    for (unsigned n = 0; n <= 32; n++) {
        char text[32];
        uint32_t net = n ? 0xffffffffu << (32 - n) & 0xc0a80101u : 0;
        struct in_addr a = {htonl(net)};
        char addr[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a, addr, sizeof addr);
        snprintf(text, sizeof text, "%s/%u", addr, n);
        struct cidr_list l = parse_ok(text);
        assert_true(in(&l, "192.168.1.1"));
        /* flip the last bit inside the prefix: out */
        if (n) {
            struct in_addr b = {htonl(0xc0a80101u ^ (1u << (32 - n)))};
            inet_ntop(AF_INET, &b, addr, sizeof addr);
            assert_false(in(&l, addr));
        }
    }
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"", "'': empty range in the list"},
        {"127.0.0.1,", "'127.0.0.1,': empty range in the list"},
        {",::1", "',::1': empty range in the list"},
        {"localhost", "'localhost' is not an IPv4 or IPv6 address"},
        {"127.0.0.1 ", "'127.0.0.1 ' is not an IPv4 or IPv6 address"},
        {"[::1]", "'[::1]' is not an IPv4 or IPv6 address"},
        {"10.0.0.0/33", "'10.0.0.0/33': the prefix length must be 0..32"},
        {"10.0.0.0/", "'10.0.0.0/': the prefix length must be 0..32"},
        {"10.0.0.0/08", "'10.0.0.0/08': the prefix length must be 0..32"},
        {"10.0.0.0/-1", "'10.0.0.0/-1': the prefix length must be 0..32"},
        {"::/129", "'::/129': the prefix length must be 0..128"},
        {"10.0.0.1/8", "'10.0.0.1/8' has bits set past its prefix length"},
        {"2001:db8::1/64", "'2001:db8::1/64' has bits set past its prefix length"},
        {"1111:2222:3333:4444:5555:6666:7777:8888/128,ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/1280000000",
         "'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/1280000000' is too long for an address range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cidr_list l;
        char err[256] = "";
        assert_int_equal(cidr_list_parse(cases[i].text, &l, err, sizeof err), -1);
        assert_string_equal(err, cases[i].err);
    }
}

static void test_list_limit(void **state)
{
    (void)state;
    char text[1024] = "";
    size_t off = 0;
    for (int i = 0; i < CIDR_MAX; i++)
        off += (size_t)snprintf(text + off, sizeof text - off, "%s10.0.0.%d", i ? "," : "", i);
    struct cidr_list l = parse_ok(text);
    assert_int_equal(l.n, CIDR_MAX);
    assert_true(in(&l, "10.0.0.31"));
    assert_false(in(&l, "10.0.0.32"));
    snprintf(text + off, sizeof text - off, ",10.0.0.99");
    char err[256];
    assert_int_equal(cidr_list_parse(text, &l, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 32 ranges"));
}

static void test_non_ip_socket(void **state)
{
    (void)state;
    struct cidr_list l = parse_ok("::/0");
    struct sockaddr sa = {.sa_family = AF_UNIX};
    uint8_t a[16];
    assert_int_equal(cidr_addr16(&sa, a), -1);
    assert_int_equal(cidr_match_sa(&l, &sa), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_loopback), cmocka_unit_test(test_prefix_edges),
        cmocka_unit_test(test_every_v4_length),  cmocka_unit_test(test_errors),
        cmocka_unit_test(test_list_limit),       cmocka_unit_test(test_non_ip_socket),
    };
    return cmocka_run_group_tests_name("cidr", tests, NULL, NULL);
}
