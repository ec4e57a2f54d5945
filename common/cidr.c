#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t V4MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int is_v4mapped(const uint8_t a[16]) { return memcmp(a, V4MAPPED, 12) == 0; }

int cidr_addr16(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa->sa_family == AF_INET) {
        memcpy(out, V4MAPPED, 12);
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

/* Whether a and b agree on their first bits bits. */
static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return ((a[whole] ^ b[whole]) & mask) == 0;
}

/* "LEN" after the '/': 0..max in decimal, no sign, no leading zeros. */
static int parse_len(const char *s, unsigned max, unsigned *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* One range, NUL-terminated in text (which it may modify). */
static int parse_one(char *text, struct cidr *c, char *err, size_t errlen)
{
    char *slash = strchr(text, '/');
    if (slash)
        *slash = '\0';
    struct in_addr v4;
    struct in6_addr v6;
    unsigned len, base;
    if (inet_pton(AF_INET, text, &v4) == 1) {
        memcpy(c->addr, V4MAPPED, 12);
        memcpy(c->addr + 12, &v4, 4);
        base = 96;
    } else if (inet_pton(AF_INET6, text, &v6) == 1) {
        memcpy(c->addr, &v6, 16);
        base = 0;
    } else {
        snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address", text);
        return -1;
    }
    len = 128 - base;
    if (slash && parse_len(slash + 1, 128 - base, &len) < 0) {
        snprintf(err, errlen, "'%s/%s': the prefix length must be 0..%u", text, slash + 1,
                 128 - base);
        return -1;
    }
    c->bits = (uint8_t)(base + len);
    uint8_t masked[16];
    memcpy(masked, c->addr, 16);
    for (unsigned b = c->bits; b < 128; b++)
        masked[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
    if (memcmp(masked, c->addr, 16) != 0) {
        snprintf(err, errlen, "'%s/%u' has bits set past its prefix length", text, len);
        return -1;
    }
    return 0;
}

int cidr_list_parse(const char *text, struct cidr_list *l, char *err, size_t errlen)
{
    l->n = 0;
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char one[INET6_ADDRSTRLEN + 8];
        if (n == 0) {
            snprintf(err, errlen, "'%s': empty range in the list", text);
            return -1;
        }
        if (n >= sizeof one) {
            snprintf(err, errlen, "'%.*s' is too long for an address range", (int)n, p);
            return -1;
        }
        if (l->n == CIDR_MAX) {
            snprintf(err, errlen, "more than %d ranges in '%s'", CIDR_MAX, text);
            return -1;
        }
        memcpy(one, p, n);
        one[n] = '\0';
        if (parse_one(one, &l->r[l->n], err, errlen) < 0)
            return -1;
        l->n++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int cidr_match(const struct cidr_list *l, const uint8_t addr[16])
{
    for (int i = 0; i < l->n; i++)
        if (prefix_equal(addr, l->r[i].addr, l->r[i].bits))
            return 1;
    return 0;
}

int cidr_match_sa(const struct cidr_list *l, const struct sockaddr *sa)
{
    uint8_t a[16];
    return cidr_addr16(sa, a) == 0 && cidr_match(l, a);
}

void cidr_list_format(const struct cidr_list *l, char *out, size_t outlen)
{
    size_t off = 0;
    if (outlen)
        out[0] = '\0';
    for (int i = 0; i < l->n && off < outlen; i++) {
        const struct cidr *c = &l->r[i];
        char a[INET6_ADDRSTRLEN];
        int v4 = is_v4mapped(c->addr) && c->bits >= 96;
        inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? c->addr + 12 : c->addr, a, sizeof a);
        off += (size_t)snprintf(out + off, outlen - off, "%s%s/%u", i ? "," : "", a,
                                v4 ? c->bits - 96u : (unsigned)c->bits);
    }
}
