/* cidr: lists of address ranges ("127.0.0.0/8,::1"), and whether an address is in one.
 *
 * Every address is compared in one 16-byte form: IPv6 as it is, IPv4 as its
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d). So an IPv4 rule also matches a client
 * that reaches a dual-stack socket as ::ffff:a.b.c.d, and "::/0" matches everything.
 * A range's address must have no bits set past its prefix ("10.0.0.1/8" is refused:
 * it is more likely a typo than a wish for 10.0.0.0/8). */
#ifndef WHARF_CIDR_H
#define WHARF_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CIDR_MAX 32 /* ranges in one list: a short allow-list, matched by a linear scan */

struct cidr {
    uint8_t addr[16]; /* IPv6, or IPv4-mapped IPv6 */
    uint8_t bits;     /* prefix length over those 128 bits (IPv4 /n is 96 + n) */
};

struct cidr_list {
    struct cidr r[CIDR_MAX];
    int n;
};

/* Parse "CIDR[,CIDR...]" (each ADDRESS or ADDRESS/LEN; IPv6 without brackets; no
 * spaces) into l. 0, or -1 with a one-line reason in err quoting the bad range. */
int cidr_list_parse(const char *text, struct cidr_list *l, char *err, size_t errlen);

/* The 16-byte form of sa's address (AF_INET or AF_INET6). 0, or -1 for other families. */
int cidr_addr16(const struct sockaddr *sa, uint8_t out[16]);

/* 1 when the 16-byte address is in one of l's ranges, else 0. */
int cidr_match(const struct cidr_list *l, const uint8_t addr[16]);

/* cidr_match for a socket address; 0 for families that are not IP. */
int cidr_match_sa(const struct cidr_list *l, const struct sockaddr *sa);

/* Write l back as parsed ("127.0.0.0/8,::1/128"), truncated to outlen. */
void cidr_list_format(const struct cidr_list *l, char *out, size_t outlen);

#endif
