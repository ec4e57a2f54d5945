#include "sources.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_ipv4(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return -1;
    *out = ntohl(a.s_addr);
    return 0;
}

static int add_source(struct load_opts *o, const struct sockaddr *sa, socklen_t len)
{
    if (o->n_sources >= LOAD_MAX_SOURCES)
        return -1;
    memcpy(&o->sources[o->n_sources++], sa, len);
    o->source_len = len;
    return 0;
}

/* One IPv4 address or range, dash pointing at the '-' or NULL. */
static int add_ipv4_range(struct load_opts *o, char *item, char *dash, char *err, size_t errlen)
{
    uint32_t lo, hi;
    if (dash)
        *dash = '\0';
    if (parse_ipv4(item, &lo) < 0) {
        snprintf(err, errlen, "bad source address '%s'", item);
        return -1;
    }
    hi = lo;
    if (dash) {
        char *end;
        unsigned long last = strtoul(dash + 1, &end, 10);
        if (*end == '\0' && end != dash + 1 && last <= 255)
            hi = (lo & 0xffffff00u) | (uint32_t)last;
        else if (parse_ipv4(dash + 1, &hi) < 0) {
            snprintf(err, errlen, "bad source range end '%s'", dash + 1);
            return -1;
        }
    }
    if (hi < lo || hi - lo >= LOAD_MAX_SOURCES) {
        snprintf(err, errlen, "bad source range '%s-%s'", item, dash ? dash + 1 : "");
        return -1;
    }
    for (uint64_t a = lo; a <= hi; a++) {
        struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl((uint32_t)a)};
        if (add_source(o, (struct sockaddr *)&s4, sizeof s4) < 0)
            return -1;
    }
    return 0;
}

static int add_item(struct load_opts *o, char *item, char *err, size_t errlen)
{
    char *dash = strchr(item, '-');
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    if (!dash && inet_pton(AF_INET6, item, &s6.sin6_addr) == 1)
        return add_source(o, (struct sockaddr *)&s6, sizeof s6);
    return add_ipv4_range(o, item, dash, err, errlen);
}

int sources_parse(struct load_opts *o, const char *text, char *err, size_t errlen)
{
    err[0] = '\0';
    if (!o->sources) {
        o->sources = calloc(LOAD_MAX_SOURCES, sizeof *o->sources);
        if (!o->sources) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    char *copy = strdup(text), *save = NULL;
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save))
        rc = add_item(o, item, err, errlen);
    if (rc < 0 && !err[0])
        snprintf(err, errlen, "more than %d source addresses", LOAD_MAX_SOURCES);
    free(copy);
    return rc;
}
