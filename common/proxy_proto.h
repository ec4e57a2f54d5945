/* proxy_proto: the PROXY protocol header (versions 1 and 2) a load balancer sends
 * before the client's bytes, naming the client's real address.
 *
 * The parser is strict (anything the specification does not allow is an error, never
 * a guess) and incremental: it is given the bytes received so far, from the start of
 * the connection, and says "complete, N bytes", "a valid beginning: wait for more"
 * (with how many bytes it needs before it can say more), or which error. It never
 * reads past the length it is given, never allocates, and looks at each byte a bounded
 * number of times: a caller that waits for `need` bytes before asking again pays O(n)
 * for a header however it is cut.
 *
 * Version 1: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN...\r\n", at most
 * 107 bytes with the CRLF. Addresses are inet_pton's strict forms (no leading zeros in
 * IPv4); ports are 0..65535 in decimal without leading zeros; fields are separated by
 * exactly one space.
 *
 * Version 2: the 12-byte signature, version/command, family/transport, a big-endian
 * length of what follows (read before anything that follows is), the addresses, then
 * TLVs, each checked to lie inside the length and otherwise skipped (the CRC32C TLV is
 * not verified). LOCAL (a balancer's health check) carries no address: the connection's
 * own endpoints stand. So does PROXY with AF_UNSPEC, and AF_UNIX, whose paths are no IP
 * address to count or match (the paths are returned). */
#ifndef WHARF_PROXY_PROTO_H
#define WHARF_PROXY_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107         /* the longest version-1 line, CRLF included */
#define PROXY_V2_FIXED 16        /* signature, version/command, family, length */
#define PROXY_V2_MAX (PROXY_V2_FIXED + 65535)
#define PROXY_MAX PROXY_V2_MAX   /* the longest header of either version */

enum proxy_error {
    PROXY_NEED_MORE = 0,
    PROXY_ERR_SIGNATURE = -1,   /* neither "PROXY " nor the version-2 signature */
    PROXY_ERR_V1_TOO_LONG = -2, /* no CRLF within 107 bytes */
    PROXY_ERR_V1_CRLF = -3,     /* a CR not followed by LF, or an LF without CR */
    PROXY_ERR_V1_PROTO = -4,    /* not TCP4, TCP6 or UNKNOWN */
    PROXY_ERR_V1_FIELDS = -5,   /* wrong number of fields or spaces */
    PROXY_ERR_V1_ADDR = -6,     /* an address that is not its family's strict form */
    PROXY_ERR_V1_PORT = -7,     /* a port that is not 0..65535 without leading zeros */
    PROXY_ERR_V2_VERSION = -8,  /* the version nibble is not 2 */
    PROXY_ERR_V2_COMMAND = -9,  /* neither LOCAL nor PROXY */
    PROXY_ERR_V2_FAMILY = -10,  /* an unknown address family or transport */
    PROXY_ERR_V2_LENGTH = -11,  /* the length is too short for the family's addresses */
    PROXY_ERR_V2_TLV = -12,     /* a TLV runs past the end of the header */
};

struct proxy_header {
    uint8_t version;          /* 1 or 2 */
    uint8_t local;            /* 1: the connection's own addresses stand (LOCAL, UNKNOWN,
                               * AF_UNSPEC, AF_UNIX); src and dst are then not IP */
    uint16_t n_tlvs;          /* version 2: TLVs seen (and skipped) */
    int family;               /* AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC */
    struct sockaddr_storage src, dst; /* family's sockaddr; ports in network order */
    size_t need;              /* PROXY_NEED_MORE: bytes wanted before asking again */
};

/* Parse the len bytes at data, the first bytes of a connection. Returns the header's
 * length (> 0) with h filled, PROXY_NEED_MORE (h->need: the total bytes to have before
 * calling again; more may still be needed then), or a negative enum proxy_error as soon
 * as the bytes given cannot begin a valid header. Reads no byte at or past data + len. */
int proxy_parse(const void *data, size_t len, struct proxy_header *h);

/* A short description of a result of proxy_parse, for the log ("bad v1 port"). */
const char *proxy_strerror(int err);

#endif
