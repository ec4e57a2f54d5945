#include "config_check.h"

#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/addr.h"

static int is_wildcard(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (sa->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 0;
}

int config_check_listener(const struct listen_spec *l, char *err, size_t errlen)
{
    char text[LISTEN_SPEC_TEXT_MAX];
    listen_spec_format(l, text, sizeof text);
    if (is_wildcard(&l->sa))
        return 0;
    struct sockaddr_storage probe = l->sa;
    if (probe.ss_family == AF_INET)
        ((struct sockaddr_in *)&probe)->sin_port = 0;
    else
        ((struct sockaddr_in6 *)&probe)->sin6_port = 0;
    int fd = socket(probe.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "'%s': %s on this host: %s", text,
                 probe.ss_family == AF_INET6 ? "no IPv6" : "no IPv4", strerror(errno));
        return -1;
    }
    int rc = bind(fd, (const struct sockaddr *)&probe, l->sa_len);
    int e = errno;
    close(fd);
    if (rc == 0)
        return 0;
    char host[ADDR_TEXT_MAX];
    addr_format((const struct sockaddr *)&probe, host, sizeof host);
    char *colon = strrchr(host, ':'); /* "10.1.2.3:0" or "[::5]:0": the host part */
    if (colon)
        *colon = '\0';
    if (e == EADDRNOTAVAIL)
        snprintf(err, errlen, "'%s': address %s does not exist on this host", text, host);
    else
        snprintf(err, errlen, "'%s': cannot use address %s: %s", text, host, strerror(e));
    return -1;
}

int config_check_clash(const struct listen_spec *a, const struct listen_spec *b)
{
    const struct sockaddr *x = (const struct sockaddr *)&a->sa;
    const struct sockaddr *y = (const struct sockaddr *)&b->sa;
    if (x->sa_family != y->sa_family || addr_port(x) == 0 || addr_port(x) != addr_port(y))
        return 0;
    if (is_wildcard(&a->sa) || is_wildcard(&b->sa))
        return 1;
    if (x->sa_family == AF_INET)
        return ((const struct sockaddr_in *)x)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)y)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)x)->sin6_addr,
                  &((const struct sockaddr_in6 *)y)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

int config_check_user(const char *user, char *err, size_t errlen)
{
    errno = 0;
    if (getpwnam(user))
        return 0;
    if (errno)
        snprintf(err, errlen, "user: cannot look up '%s': %s", user, strerror(errno));
    else
        snprintf(err, errlen, "user: no user '%s' on this host", user);
    return -1;
}
