/* peer: who a connection comes from — the --max-conns-per-ip table and the loopback
 * test of --stats-allow.
 *
 * The table is the one piece of mutable state that accepting threads (the acceptor, or
 * every worker with --dispatch reuseport) and closing threads (the workers) share: a
 * connection is counted where it is accepted (on a +proxy listener: by its worker, once
 * the PROXY header has named the client) and released where it closes, which can be two
 * threads. It sits behind its own mutex, taken once per accept and once per close, and
 * only when --max-conns-per-ip is set; without it nothing here runs.
 *
 * Each address with live connections has one entry (IPv4-mapped IPv6 counts as IPv4);
 * an entry is freed when its last connection closes, so memory follows the live
 * connections, not the addresses ever seen. Buckets are chosen by a hash keyed with a
 * random seed, so a client cannot pick addresses that all land in one chain. */
#ifndef WHARF_PEER_H
#define WHARF_PEER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define PEER_NONE 0u      /* a connection not counted in any table */

struct peer_entry;

struct peer_table {
    pthread_mutex_t lock;
    uint32_t limit;          /* connections per address at most */
    uint64_t seed;
    uint32_t *buckets;       /* entry index of each chain's head; 0: empty */
    uint32_t n_buckets;      /* a power of two */
    struct peer_entry *entries; /* [0] unused, so that 0 can mean "none" */
    uint32_t n_entries, cap_entries;
    uint32_t free_head;      /* a freed entry to reuse; 0: none */
};

/* 0, or -1 with errno. buckets_hint: about how many addresses to expect. */
int peer_table_init(struct peer_table *t, uint32_t limit, uint32_t buckets_hint);
void peer_table_free(struct peer_table *t);

enum peer_admit {
    PEER_ADMITTED,  /* counted: *slot names the entry to release at close */
    PEER_OVER,      /* the address already has `limit` connections */
    PEER_GONE,      /* getpeername failed: the client has already gone */
    PEER_NOMEM,
};

/* Count a newly accepted socket against its address. */
enum peer_admit peer_admit(struct peer_table *t, int fd, uint32_t *slot);
/* Count a connection against addr (16 bytes, IPv4 as ::ffff:a.b.c.d): the address a
 * PROXY header carried. Never PEER_GONE. */
enum peer_admit peer_admit_addr(struct peer_table *t, const uint8_t addr[16], uint32_t *slot);
/* A connection counted with peer_admit has closed. */
void peer_release(struct peer_table *t, uint32_t slot);

/* 1 when the socket's peer is a loopback address (127.0.0.0/8, ::1, or
 * ::ffff:127.0.0.0/104), 0 when it is not or cannot be told. */
int peer_is_loopback(int fd);
/* The same test of a 16-byte address. */
int peer_addr_is_loopback(const uint8_t addr[16]);
/* 1 when the socket's peer is in one of l's ranges, 0 when it is not or cannot be told. */
struct cidr_list;
int peer_in_ranges(int fd, const struct cidr_list *l);

/* One address with live connections, for the /stats view of who holds the most. */
struct peer_count {
    uint8_t addr[16];
    uint32_t count;
};

/* The at most n addresses with the most live connections, most first, into out.
 * Returns how many; *n_addrs: how many addresses have live connections. One pass over
 * the table under its lock (a stats page, not a hot path). */
size_t peer_top(struct peer_table *t, struct peer_count *out, size_t n, uint64_t *n_addrs);

#endif
