#include "stats_peers.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <string.h>

#include "peer.h"

/* "192.0.2.1" for an IPv4-mapped address, else the IPv6 text. */
static void addr16_text(const uint8_t a[16], char *out, size_t outlen)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    int v4 = memcmp(a, v4mapped, 12) == 0;
    if (!inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? a + 12 : a, out, (socklen_t)outlen))
        out[0] = '\0';
}

int stats_peers_json(struct buf *out, struct peer_table *t)
{
    if (!t)
        return buf_printf(out, ",\"top_peers\":null");
    struct peer_count top[STATS_TOP_PEERS];
    uint64_t n_addrs;
    size_t n = peer_top(t, top, STATS_TOP_PEERS, &n_addrs);
    int rc = buf_printf(out, ",\"top_peers\":{\"addresses\":%" PRIu64 ",\"top\":[", n_addrs);
    for (size_t i = 0; i < n; i++) {
        char a[INET6_ADDRSTRLEN];
        addr16_text(top[i].addr, a, sizeof a);
        rc |= buf_printf(out, "%s{\"addr\":\"%s\",\"conns\":%" PRIu32 "}", i ? "," : "", a,
                         top[i].count);
    }
    return rc | buf_printf(out, "]}");
}

int stats_peers_prometheus(struct buf *out, struct peer_table *t)
{
    if (!t)
        return 0;
    struct peer_count top[STATS_TOP_PEERS];
    uint64_t n_addrs;
    size_t n = peer_top(t, top, STATS_TOP_PEERS, &n_addrs);
    int rc = buf_printf(out,
                        "# HELP wharf_peer_addresses client addresses with live connections\n"
                        "# TYPE wharf_peer_addresses gauge\nwharf_peer_addresses %" PRIu64 "\n"
                        "# HELP wharf_peer_connections live connections of the addresses "
                        "holding the most\n# TYPE wharf_peer_connections gauge\n",
                        n_addrs);
    for (size_t i = 0; i < n; i++) {
        char a[INET6_ADDRSTRLEN];
        addr16_text(top[i].addr, a, sizeof a);
        rc |= buf_printf(out, "wharf_peer_connections{addr=\"%s\"} %" PRIu32 "\n", a,
                         top[i].count);
    }
    return rc;
}
