/* stats_peers: who holds the most live connections, for /stats and /metrics.
 *
 * Read from the --max-conns-per-ip table (peer.h), which knows every address with live
 * connections: behind a +proxy listener these are the clients' addresses that the
 * PROXY headers named, not the balancer's. Without --max-conns-per-ip there is no
 * table, and the view says so (null in JSON, no samples in Prometheus). */
#ifndef WHARF_STATS_PEERS_H
#define WHARF_STATS_PEERS_H

#include "../common/buf.h"

#define STATS_TOP_PEERS 10 /* addresses shown, most connections first */

struct peer_table;

/* Append ,"top_peers":{"addresses":N,"top":[{"addr":"192.0.2.1","conns":3},...]} (or
 * ,"top_peers":null) to a JSON object being written. 0 or -1 (no memory). */
int stats_peers_json(struct buf *out, struct peer_table *t);

/* Append the wharf_peer_connections gauge, one sample per top address and
 * wharf_peer_addresses (how many addresses have live connections). 0 or -1. */
int stats_peers_prometheus(struct buf *out, struct peer_table *t);

#endif
