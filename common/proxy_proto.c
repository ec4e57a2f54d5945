#include "proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

static const char V1_SIG[] = "PROXY ";
#define V1_SIG_LEN 6
static const unsigned char V2_SIG[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

enum { V2_LOCAL = 0x0, V2_PROXY = 0x1 };
enum { V2_AF_UNSPEC = 0x0, V2_AF_INET = 0x1, V2_AF_INET6 = 0x2, V2_AF_UNIX = 0x3 };
enum { V2_T_UNSPEC = 0x0, V2_T_STREAM = 0x1, V2_T_DGRAM = 0x2 };
#define V2_UNIX_PATH 108 /* the specification's length of each AF_UNIX address */

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* ---- version 1 ---- */

/* One "0".."65535" field, without leading zeros. */
static int v1_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = htons((uint16_t)v);
    return 0;
}

/* One address field in the strict text form of family af (inet_pton's). */
static int v1_addr(int af, const char *s, size_t n, struct sockaddr_storage *out)
{
    char text[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof text)
        return -1;
    memcpy(text, s, n);
    text[n] = '\0';
    memset(out, 0, sizeof *out);
    out->ss_family = (sa_family_t)af;
    void *dst = af == AF_INET ? (void *)&((struct sockaddr_in *)out)->sin_addr
                              : (void *)&((struct sockaddr_in6 *)out)->sin6_addr;
    return inet_pton(af, text, dst) == 1 ? 0 : -1;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port_be)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = port_be;
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = port_be;
}

/* The family a version-1 protocol field names: AF_INET, AF_INET6, or -1. */
static int v1_proto(const char *s, size_t n)
{
    if (n == 4 && memcmp(s, "TCP4", 4) == 0)
        return AF_INET;
    if (n == 4 && memcmp(s, "TCP6", 4) == 0)
        return AF_INET6;
    return -1;
}

/* The line between "PROXY " and the CRLF (n bytes at s, no CR or LF inside). */
static int v1_fields(const char *s, size_t n, struct proxy_header *h)
{
    const char *f[5];
    size_t fl[5];
    int nf = 0, af = -1;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ' ')
            continue;
        if (nf == 0) {
            if (i == 7 && memcmp(s, "UNKNOWN", 7) == 0) {
                h->local = 1; /* whatever follows is to be ignored (the specification) */
                h->family = AF_UNSPEC;
                return 0;
            }
            if ((af = v1_proto(s, i)) < 0)
                return PROXY_ERR_V1_PROTO;
        }
        if (nf == 5 || i == start)
            return PROXY_ERR_V1_FIELDS;
        f[nf] = s + start;
        fl[nf++] = i - start;
        start = i + 1;
    }
    if (nf != 5)
        return PROXY_ERR_V1_FIELDS;
    uint16_t sport, dport;
    if (v1_addr(af, f[1], fl[1], &h->src) < 0 || v1_addr(af, f[2], fl[2], &h->dst) < 0)
        return PROXY_ERR_V1_ADDR;
    if (v1_port(f[3], fl[3], &sport) < 0 || v1_port(f[4], fl[4], &dport) < 0)
        return PROXY_ERR_V1_PORT;
    set_port(&h->src, sport);
    set_port(&h->dst, dport);
    h->family = af;
    return 0;
}

static int parse_v1(const char *p, size_t len, struct proxy_header *h)
{
    size_t scan = min_sz(len, PROXY_V1_MAX);
    const char *lf = memchr(p, '\n', scan);
    const char *cr = memchr(p, '\r', lf ? (size_t)(lf - p) : scan);
    if (!lf) {
        if (len >= PROXY_V1_MAX)
            return PROXY_ERR_V1_TOO_LONG;
        if (cr && cr != p + len - 1)
            return PROXY_ERR_V1_CRLF; /* a CR that is not the end of the line */
        h->need = len + 1;
        return PROXY_NEED_MORE;
    }
    if (!cr || cr != lf - 1)
        return PROXY_ERR_V1_CRLF;
    h->version = 1;
    int rc = v1_fields(p + V1_SIG_LEN, (size_t)(cr - p) - V1_SIG_LEN, h);
    return rc < 0 ? rc : (int)(lf - p) + 1;
}

/* ---- version 2 ---- */

/* The fixed part's bytes 12 and 13, checked as soon as they arrive. */
static int v2_check_fixed(const unsigned char *p, size_t len)
{
    if (len > 12) {
        if (p[12] >> 4 != 2)
            return PROXY_ERR_V2_VERSION;
        if ((p[12] & 0xf) > V2_PROXY)
            return PROXY_ERR_V2_COMMAND;
    }
    if (len > 13) {
        unsigned af = p[13] >> 4, tr = p[13] & 0xf;
        if (af > V2_AF_UNIX || tr > V2_T_DGRAM)
            return PROXY_ERR_V2_FAMILY;
        /* A PROXY command for a TCP listener names a stream, or nothing at all. */
        if ((p[12] & 0xf) == V2_PROXY && (af == V2_AF_UNSPEC ? tr != V2_T_UNSPEC
                                                              : tr != V2_T_STREAM))
            return PROXY_ERR_V2_FAMILY;
    }
    return 0;
}

static size_t v2_addr_len(unsigned af)
{
    switch (af) {
    case V2_AF_INET:
        return 12;
    case V2_AF_INET6:
        return 36;
    case V2_AF_UNIX:
        return 2 * V2_UNIX_PATH;
    default:
        return 0;
    }
}

/* Addresses of family af at a (already known to fit). */
static void v2_addrs(unsigned af, const unsigned char *a, struct proxy_header *h)
{
    memset(&h->src, 0, sizeof h->src);
    memset(&h->dst, 0, sizeof h->dst);
    if (af == V2_AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&h->src, *d = (struct sockaddr_in *)&h->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
        h->family = AF_INET;
    } else if (af == V2_AF_INET6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&h->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
        h->family = AF_INET6;
    } else if (af == V2_AF_UNIX) {
        struct sockaddr_un *s = (struct sockaddr_un *)&h->src, *d = (struct sockaddr_un *)&h->dst;
        s->sun_family = d->sun_family = AF_UNIX;
        _Static_assert(sizeof s->sun_path >= V2_UNIX_PATH, "sun_path holds a v2 path");
        memcpy(s->sun_path, a, V2_UNIX_PATH);
        memcpy(d->sun_path, a + V2_UNIX_PATH, V2_UNIX_PATH);
        h->family = AF_UNIX;
        h->local = 1; /* no IP address to count or match */
    } else {
        h->family = AF_UNSPEC;
        h->local = 1;
    }
}

/* TLVs fill [off, end): each is type, 16-bit length, value, and must end by end. */
static int v2_tlvs(const unsigned char *p, size_t off, size_t end, struct proxy_header *h)
{
    while (off < end) {
        if (end - off < 3)
            return PROXY_ERR_V2_TLV;
        size_t vlen = (size_t)p[off + 1] << 8 | p[off + 2];
        if (end - off - 3 < vlen)
            return PROXY_ERR_V2_TLV;
        off += 3 + vlen;
        h->n_tlvs++;
    }
    return 0;
}

static int parse_v2(const unsigned char *p, size_t len, struct proxy_header *h)
{
    int rc = v2_check_fixed(p, len);
    if (rc < 0)
        return rc;
    if (len < PROXY_V2_FIXED) {
        h->need = PROXY_V2_FIXED;
        return PROXY_NEED_MORE;
    }
    unsigned cmd = p[12] & 0xf, af = p[13] >> 4;
    size_t body = (size_t)p[14] << 8 | p[15];
    size_t alen = cmd == V2_PROXY ? v2_addr_len(af) : 0;
    if (body < alen)
        return PROXY_ERR_V2_LENGTH; /* decided before a byte of the body is read */
    size_t total = PROXY_V2_FIXED + body;
    if (len < total) {
        h->need = total;
        return PROXY_NEED_MORE;
    }
    h->version = 2;
    if (cmd == V2_LOCAL) {
        h->local = 1; /* the body is ignored, as the specification says */
        h->family = AF_UNSPEC;
        return (int)total;
    }
    v2_addrs(af, p + PROXY_V2_FIXED, h);
    rc = v2_tlvs(p, PROXY_V2_FIXED + alen, total, h);
    return rc < 0 ? rc : (int)total;
}

int proxy_parse(const void *data, size_t len, struct proxy_header *h)
{
    const unsigned char *p = data;
    memset(h, 0, sizeof *h);
    if (len == 0) {
        h->need = 1;
        return PROXY_NEED_MORE;
    }
    if (p[0] == 'P') {
        if (memcmp(p, V1_SIG, min_sz(len, V1_SIG_LEN)) != 0)
            return PROXY_ERR_SIGNATURE;
        if (len < V1_SIG_LEN) {
            h->need = len + 1;
            return PROXY_NEED_MORE;
        }
        return parse_v1((const char *)p, len, h);
    }
    if (memcmp(p, V2_SIG, min_sz(len, sizeof V2_SIG)) != 0)
        return PROXY_ERR_SIGNATURE;
    return parse_v2(p, len, h);
}

const char *proxy_strerror(int err)
{
    switch (err) {
    case PROXY_NEED_MORE:
        return "incomplete header";
    case PROXY_ERR_SIGNATURE:
        return "no PROXY signature";
    case PROXY_ERR_V1_TOO_LONG:
        return "v1 line longer than 107 bytes";
    case PROXY_ERR_V1_CRLF:
        return "v1 line not ended by one CRLF";
    case PROXY_ERR_V1_PROTO:
        return "v1 protocol not TCP4, TCP6 or UNKNOWN";
    case PROXY_ERR_V1_FIELDS:
        return "v1 fields or spaces wrong";
    case PROXY_ERR_V1_ADDR:
        return "bad v1 address";
    case PROXY_ERR_V1_PORT:
        return "bad v1 port";
    case PROXY_ERR_V2_VERSION:
        return "v2 version not 2";
    case PROXY_ERR_V2_COMMAND:
        return "v2 command not LOCAL or PROXY";
    case PROXY_ERR_V2_FAMILY:
        return "v2 family or transport not supported";
    case PROXY_ERR_V2_LENGTH:
        return "v2 length shorter than its addresses";
    case PROXY_ERR_V2_TLV:
        return "v2 TLV past the end of the header";
    default:
        return "unknown error";
    }
}
