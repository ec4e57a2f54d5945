/* proxy_proto: every field and every error of both versions with exact bytes, every
 * split of valid headers (the prefix waits, the whole parses the same), and over-reads:
 * each parse sees its input ending right at a PROT_NONE page (guard.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cmocka.h>

#include "../../common/proxy_proto.h"
#include "guard.h"

static struct guard guard;

static int setup_guard(void **state)
{
    (void)state;
    return guard_open(&guard, PROXY_MAX + 4096);
}

static int teardown_guard(void **state)
{
    (void)state;
    guard_close(&guard);
    return 0;
}

static int parse_n(const void *data, size_t len, struct proxy_header *h)
{
    const char *p = guard_place(&guard, data, len);
    assert_non_null(p);
    return proxy_parse(p, len, h);
}

static int parse_s(const char *text, struct proxy_header *h) { return parse_n(text, strlen(text), h); }

static const unsigned char SIG[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* A version-2 header: signature, ver_cmd, fam, then body (blen bytes). Returns length. */
static size_t v2(unsigned char *out, uint8_t ver_cmd, uint8_t fam, const void *body, size_t blen)
{
    memcpy(out, SIG, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(blen >> 8);
    out[15] = (uint8_t)blen;
    if (blen)
        memcpy(out + 16, body, blen);
    return 16 + blen;
}

static void assert_v4(const struct sockaddr_storage *ss, const char *addr, int port)
{
    const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
    char text[INET_ADDRSTRLEN];
    assert_int_equal(in->sin_family, AF_INET);
    assert_non_null(inet_ntop(AF_INET, &in->sin_addr, text, sizeof text));
    assert_string_equal(text, addr);
    assert_int_equal(ntohs(in->sin_port), port);
}

static void assert_v6(const struct sockaddr_storage *ss, const char *addr, int port)
{
    const struct sockaddr_in6 *in = (const struct sockaddr_in6 *)ss;
    char text[INET6_ADDRSTRLEN];
    assert_int_equal(in->sin6_family, AF_INET6);
    assert_non_null(inet_ntop(AF_INET6, &in->sin6_addr, text, sizeof text));
    assert_string_equal(text, addr);
    assert_int_equal(ntohs(in->sin6_port), port);
}

/* Every proper prefix waits (asking for more than it has), the whole gives want. */
static void assert_every_split(const void *data, size_t len, int want)
{
    struct proxy_header h;
    for (size_t n = 0; n < len; n++) {
        int rc = parse_n(data, n, &h);
        if (rc != PROXY_NEED_MORE)
            fail_msg("prefix of %zu/%zu bytes gave %d", n, len, rc);
        assert_true(h.need > n && h.need <= len);
    }
    assert_int_equal(parse_n(data, len, &h), want);
}

static void test_v1_tcp4(void **state)
{
    (void)state;
    struct proxy_header h;
    const char *line = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n";
    assert_int_equal(parse_s(line, &h), (int)strlen(line));
    assert_int_equal(h.version, 1);
    assert_int_equal(h.local, 0);
    assert_int_equal(h.family, AF_INET);
    assert_v4(&h.src, "192.0.2.1", 56324);
    assert_v4(&h.dst, "198.51.100.7", 443);
    assert_every_split(line, strlen(line), (int)strlen(line));
}

static void test_v1_tcp6_and_ports(void **state)
{
    (void)state;
    struct proxy_header h;
    const char *line = "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n";
    assert_int_equal(parse_s(line, &h), (int)strlen(line));
    assert_int_equal(h.family, AF_INET6);
    assert_v6(&h.src, "2001:db8::1", 0);
    assert_v6(&h.dst, "::ffff:10.0.0.1", 65535);
}

/* Bytes after the CRLF belong to the protocol: the length stops at the LF. */
static void test_v1_following_bytes(void **state)
{
    (void)state;
    struct proxy_header h;
    const char *s = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n\r\n";
    assert_int_equal(parse_s(s, &h), 32);
    assert_v4(&h.src, "1.2.3.4", 1);
}

static void test_v1_unknown(void **state)
{
    (void)state;
    struct proxy_header h;
    assert_int_equal(parse_s("PROXY UNKNOWN\r\n", &h), 15);
    assert_int_equal(h.local, 1);
    assert_int_equal(h.family, AF_UNSPEC);
    /* whatever follows UNKNOWN is ignored */
    assert_int_equal(parse_s("PROXY UNKNOWN ffff:f...f:ffff 1 2\r\n", &h), 35);
    assert_int_equal(h.local, 1);
    assert_int_equal(parse_s("PROXY UNKNOWNX\r\n", &h), PROXY_ERR_V1_PROTO);
}

/* The longest possible line is 107 bytes, CRLF included; 108 is refused. */
static void test_v1_length_limit(void **state)
{
    (void)state;
    struct proxy_header h;
    char line[200];
    memcpy(line, "PROXY UNKNOWN ", 14);
    memset(line + 14, 'x', 91);
    memcpy(line + 105, "\r\n", 2);
    assert_int_equal(parse_n(line, 107, &h), 107);
    memset(line + 14, 'x', 92);
    memcpy(line + 106, "\r\n", 2);
    assert_int_equal(parse_n(line, 108, &h), PROXY_ERR_V1_TOO_LONG);
    /* decided at 107 bytes without CRLF, without waiting for more */
    assert_int_equal(parse_n(line, 107, &h), PROXY_ERR_V1_TOO_LONG);
    assert_int_equal(parse_n(line, 106, &h), PROXY_NEED_MORE);
    assert_int_equal(h.need, 107);
    /* the largest real TCP6 line fits */
    const char *big = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(big), 104);
    assert_int_equal(parse_s(big, &h), 104);
}

static void test_v1_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int err;
    } cases[] = {
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", PROXY_ERR_V1_CRLF},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", PROXY_ERR_V1_CRLF},
        {"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n", PROXY_ERR_V1_CRLF},
        {"PROXY TCP4 1.2.3.4\rX", PROXY_ERR_V1_CRLF},
        {"PROXY \r\n", PROXY_ERR_V1_PROTO},
        {"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_V1_PROTO},
        {"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_V1_PROTO},
        {"PROXY TCP4\r\n", PROXY_ERR_V1_FIELDS},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", PROXY_ERR_V1_FIELDS},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", PROXY_ERR_V1_FIELDS},
        {"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", PROXY_ERR_V1_FIELDS},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", PROXY_ERR_V1_FIELDS},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1\t2\r\n", PROXY_ERR_V1_FIELDS},
        {"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", PROXY_ERR_V1_ADDR},
        {"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_V1_ADDR},
        {"PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n", PROXY_ERR_V1_ADDR},
        {"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", PROXY_ERR_V1_ADDR},
        {"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", PROXY_ERR_V1_ADDR},
        {"PROXY TCP6 ::1 ::g 1 2\r\n", PROXY_ERR_V1_ADDR},
        {"PROXY TCP6 ::1 1111:2222:3333:4444:5555:6666:7777:8888:9999 1 2\r\n", PROXY_ERR_V1_ADDR},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", PROXY_ERR_V1_PORT},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\n", PROXY_ERR_V1_PORT},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", PROXY_ERR_V1_PORT},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n", PROXY_ERR_V1_PORT},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 999999\r\n", PROXY_ERR_V1_PORT},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n", PROXY_ERR_V1_PORT},
        {"PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_SIGNATURE},
        {"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_SIGNATURE},
        {"GET / HTTP/1.1\r\n\r\n", PROXY_ERR_SIGNATURE},
        {"PRO", PROXY_NEED_MORE},
        {"PRX", PROXY_ERR_SIGNATURE},
        {"\r\n\r\n\x00\r\nQUIX", PROXY_ERR_SIGNATURE},
    };
    struct proxy_header h;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].text);
        if (cases[i].text[0] == '\r')
            len = 12; /* holds a NUL */
        int rc = parse_n(cases[i].text, len, &h);
        if (rc != cases[i].err)
            fail_msg("'%s': got %d (%s), want %d", cases[i].text, rc, proxy_strerror(rc),
                     cases[i].err);
    }
}

static void test_v2_inet(void **state)
{
    (void)state;
    unsigned char buf[64];
    const unsigned char body[12] = {192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb};
    size_t n = v2(buf, 0x21, 0x11, body, sizeof body);
    struct proxy_header h;
    assert_int_equal(parse_n(buf, n, &h), 28);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.local, 0);
    assert_int_equal(h.family, AF_INET);
    assert_v4(&h.src, "192.0.2.1", 56324);
    assert_v4(&h.dst, "198.51.100.7", 443);
    assert_int_equal(h.n_tlvs, 0);
    assert_every_split(buf, n, 28);
}

static void test_v2_inet6_with_tlvs(void **state)
{
    (void)state;
    unsigned char body[36 + 16], buf[128];
    memset(body, 0, 36);
    body[0] = 0x20, body[1] = 0x01, body[2] = 0x0d, body[3] = 0xb8, body[15] = 1;
    body[31] = 1;
    body[32] = 0x12, body[33] = 0x34, body[34] = 0x00, body[35] = 0x50;
    /* TLVs: ALPN "h2" (3 + 2), NOOP with an empty value (3), unique id 5 bytes (3 + 5) */
    const unsigned char tlvs[16] = {0x01, 0, 2, 'h', '2', 0x04, 0, 0, 0x05, 0, 5, 1, 2, 3, 4, 5};
    memcpy(body + 36, tlvs, 16);
    size_t n = v2(buf, 0x21, 0x21, body, sizeof body);
    struct proxy_header h;
    assert_int_equal(parse_n(buf, n, &h), 16 + 52);
    assert_int_equal(h.family, AF_INET6);
    assert_v6(&h.src, "2001:db8::1", 0x1234);
    assert_v6(&h.dst, "::1", 80);
    assert_int_equal(h.n_tlvs, 3);
    assert_every_split(buf, n, (int)n);
    /* a TLV whose length runs one byte past the header */
    body[36 + 10] = 6;
    n = v2(buf, 0x21, 0x21, body, sizeof body);
    assert_int_equal(parse_n(buf, n, &h), PROXY_ERR_V2_TLV);
    /* a TLV cut inside its 3-byte head */
    n = v2(buf, 0x21, 0x21, body, 36 + 2);
    assert_int_equal(parse_n(buf, n, &h), PROXY_ERR_V2_TLV);
}

static void test_v2_unix(void **state)
{
    (void)state;
    unsigned char body[216], buf[256];
    memset(body, 0, sizeof body);
    memcpy(body, "/run/client.sock", 16);
    memcpy(body + 108, "/run/wharf.sock", 15);
    size_t n = v2(buf, 0x21, 0x31, body, sizeof body);
    struct proxy_header h;
    assert_int_equal(parse_n(buf, n, &h), 232);
    assert_int_equal(h.family, AF_UNIX);
    assert_int_equal(h.local, 1);
    assert_string_equal(((struct sockaddr_un *)&h.src)->sun_path, "/run/client.sock");
    assert_string_equal(((struct sockaddr_un *)&h.dst)->sun_path, "/run/wharf.sock");
    assert_int_equal(parse_n(buf, n - 1 - 16, &h), PROXY_NEED_MORE);
    n = v2(buf, 0x21, 0x31, body, 215);
    assert_int_equal(parse_n(buf, n, &h), PROXY_ERR_V2_LENGTH);
}

static void test_v2_local_and_unspec(void **state)
{
    (void)state;
    unsigned char buf[64];
    struct proxy_header h;
    /* LOCAL: the body, whatever it holds, is skipped */
    size_t n = v2(buf, 0x20, 0x00, NULL, 0);
    assert_int_equal(parse_n(buf, n, &h), 16);
    assert_int_equal(h.local, 1);
    assert_int_equal(h.version, 2);
    n = v2(buf, 0x20, 0x11, "\xff\xff\xff", 3);
    assert_int_equal(parse_n(buf, n, &h), 19);
    assert_int_equal(h.local, 1);
    /* PROXY with AF_UNSPEC: the connection's own address stands */
    n = v2(buf, 0x21, 0x00, "\x04\x00\x00", 3);
    assert_int_equal(parse_n(buf, n, &h), 19);
    assert_int_equal(h.local, 1);
    assert_int_equal(h.family, AF_UNSPEC);
}

static void test_v2_errors(void **state)
{
    (void)state;
    unsigned char buf[64], body[12] = {0};
    struct proxy_header h;
    static const struct {
        uint8_t ver_cmd, fam;
        size_t blen;
        int err;
    } cases[] = {
        {0x11, 0x11, 12, PROXY_ERR_V2_VERSION}, {0x31, 0x11, 12, PROXY_ERR_V2_VERSION},
        {0x01, 0x11, 12, PROXY_ERR_V2_VERSION}, {0x22, 0x11, 12, PROXY_ERR_V2_COMMAND},
        {0x2f, 0x11, 12, PROXY_ERR_V2_COMMAND}, {0x21, 0x41, 12, PROXY_ERR_V2_FAMILY},
        {0x21, 0x13, 12, PROXY_ERR_V2_FAMILY},  {0x21, 0x12, 12, PROXY_ERR_V2_FAMILY},
        {0x21, 0x10, 12, PROXY_ERR_V2_FAMILY},  {0x21, 0x01, 12, PROXY_ERR_V2_FAMILY},
        {0x20, 0xf0, 0, PROXY_ERR_V2_FAMILY},   {0x21, 0x11, 11, PROXY_ERR_V2_LENGTH},
        {0x21, 0x11, 0, PROXY_ERR_V2_LENGTH},   {0x21, 0x21, 12, PROXY_ERR_V2_LENGTH},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = v2(buf, cases[i].ver_cmd, cases[i].fam, body, cases[i].blen);
        int rc = parse_n(buf, n, &h);
        if (rc != cases[i].err)
            fail_msg("case %zu: got %d (%s), want %d", i, rc, proxy_strerror(rc), cases[i].err);
    }
    /* decided as soon as the byte arrives: the version at 13 bytes, the family at 14 */
    v2(buf, 0x11, 0x11, body, 12);
    assert_int_equal(parse_n(buf, 13, &h), PROXY_ERR_V2_VERSION);
    v2(buf, 0x21, 0x41, body, 12);
    assert_int_equal(parse_n(buf, 14, &h), PROXY_ERR_V2_FAMILY);
    /* the length is judged from the fixed part alone: too short is refused at 16 bytes */
    v2(buf, 0x21, 0x21, body, 12);
    assert_int_equal(parse_n(buf, 16, &h), PROXY_ERR_V2_LENGTH);
    /* a signature wrong in its last byte */
    v2(buf, 0x21, 0x11, body, 12);
    buf[11] = 0x0b;
    assert_int_equal(parse_n(buf, 12, &h), PROXY_ERR_SIGNATURE);
}

/* The largest length: 65535 bytes of body wait for all of them, then parse. */
static void test_v2_max_length(void **state)
{
    (void)state;
    static unsigned char buf[PROXY_MAX];
    unsigned char body[12] = {10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2};
    memset(buf, 0, sizeof buf);
    v2(buf, 0x21, 0x11, body, 12);
    buf[14] = 0xff, buf[15] = 0xff;
    /* the rest, 65523 bytes, is one NOOP TLV: 3 + 65520 */
    buf[28] = 0x04, buf[29] = (65520 >> 8) & 0xff, buf[30] = 65520 & 0xff;
    struct proxy_header h;
    assert_int_equal(parse_n(buf, 16, &h), PROXY_NEED_MORE);
    assert_int_equal(h.need, PROXY_MAX);
    assert_int_equal(parse_n(buf, PROXY_MAX - 1, &h), PROXY_NEED_MORE);
    assert_int_equal(parse_n(buf, PROXY_MAX, &h), PROXY_MAX);
    assert_int_equal(h.n_tlvs, 1);
    assert_v4(&h.src, "10.0.0.1", 1);
}

static void test_every_error_has_text(void **state)
{
    (void)state;
    for (int e = PROXY_ERR_V2_TLV; e <= 0; e++)
        assert_string_not_equal(proxy_strerror(e), "unknown error");
    assert_string_equal(proxy_strerror(-99), "unknown error");
}

static void test_guard_catches_overread(void **state)
{
    (void)state;
    assert_true(guard_faults_past_end(&guard));
}

/* Every prefix of every kind of header, placed against the guard page. */
static void test_overread_every_prefix(void **state)
{
    (void)state;
    unsigned char buf[64];
    const unsigned char body[12] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2};
    const char *lines[] = {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY UNKNOWN\r\n",
                           "PROXY TCP6 ::1 ::2 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"};
    struct proxy_header h;
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        for (size_t n = 0; n <= strlen(lines[i]); n++)
            (void)parse_n(lines[i], n, &h);
    size_t n = v2(buf, 0x21, 0x11, body, 12);
    for (size_t k = 0; k <= n; k++)
        (void)parse_n(buf, k, &h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6_and_ports),
        cmocka_unit_test(test_v1_following_bytes),
        cmocka_unit_test(test_v1_unknown),
        cmocka_unit_test(test_v1_length_limit),
        cmocka_unit_test(test_v1_errors),
        cmocka_unit_test(test_v2_inet),
        cmocka_unit_test(test_v2_inet6_with_tlvs),
        cmocka_unit_test(test_v2_unix),
        cmocka_unit_test(test_v2_local_and_unspec),
        cmocka_unit_test(test_v2_errors),
        cmocka_unit_test(test_v2_max_length),
        cmocka_unit_test(test_every_error_has_text),
        cmocka_unit_test(test_guard_catches_overread),
        cmocka_unit_test(test_overread_every_prefix),
    };
    return cmocka_run_group_tests_name("proxy_proto", tests, setup_guard, teardown_guard);
}
