#include "addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *s, int *port)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || v < 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

static int resolve(const char *host, int port, struct endpoint *ep, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(&ep->sa, res->ai_addr, res->ai_addrlen);
    ep->sa_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int addr_parse(const char *text, struct endpoint *ep, char *err, size_t errlen)
{
    memset(ep, 0, sizeof *ep);
    const char *sep = strstr(text, "://");
    size_t skip = 0;
    if (sep) {
        if (proto_parse(text, (size_t)(sep - text), &ep->proto) < 0) {
            snprintf(err, errlen, "unknown protocol in '%s' (use raw, line, frame, http or udp)", text);
            return -1;
        }
        ep->has_proto = 1;
        skip = (size_t)(sep - text) + 3;
    }
    return addr_parse_host_port(text, skip, ep, err, errlen);
}

int addr_parse_host_port(const char *text, size_t skip, struct endpoint *ep, char *err,
                         size_t errlen)
{
    const char *s = text + skip;
    char host[256];
    const char *portstr;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host) {
            snprintf(err, errlen, "bad address '%s' (expected [IPV6]:PORT)", text);
            return -1;
        }
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        portstr = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            snprintf(host, sizeof host, "127.0.0.1");
            portstr = s;
        } else {
            if ((size_t)(colon - s) >= sizeof host || memchr(s, ':', (size_t)(colon - s))) {
                snprintf(err, errlen, "bad address '%s' (write IPv6 as [ADDR]:PORT)", text);
                return -1;
            }
            memcpy(host, s, (size_t)(colon - s));
            host[colon - s] = '\0';
            portstr = colon + 1;
        }
    }
    int port;
    if (parse_port(portstr, &port) < 0) {
        snprintf(err, errlen, "bad port in '%s' (0-65535)", text);
        return -1;
    }
    if (host[0] == '\0')
        snprintf(host, sizeof host, "127.0.0.1");
    else if (strcmp(host, "*") == 0)
        snprintf(host, sizeof host, "0.0.0.0");
    return resolve(host, port, ep, err, errlen);
}

void addr_format(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        snprintf(out, outlen, "[%s]:%d", ip, ntohs(s6->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(out, outlen, "%s:%d", ip, ntohs(s4->sin_port));
    } else {
        snprintf(out, outlen, "(family %d)", sa->sa_family);
    }
}

void endpoint_format(const struct endpoint *ep, char *out, size_t outlen)
{
    char a[ADDR_TEXT_MAX];
    addr_format((const struct sockaddr *)&ep->sa, a, sizeof a);
    snprintf(out, outlen, "%s://%s", proto_name(ep->proto), a);
}

int addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    return -1;
}

int addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}
