#include "peer.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "../common/cidr.h"

struct peer_entry {
    uint8_t addr[16];   /* IPv6, or IPv4-mapped IPv6 */
    uint32_t count;     /* live connections; 0: free */
    uint32_t next;      /* next entry in the chain, or in the free list; 0: none */
};

#define MAX_BUCKETS (1u << 20)

static uint32_t round_pow2(uint32_t n)
{
    uint32_t p = 64;
    while (p < n && p < MAX_BUCKETS)
        p <<= 1;
    return p;
}

int peer_table_init(struct peer_table *t, uint32_t limit, uint32_t buckets_hint)
{
    memset(t, 0, sizeof *t);
    t->limit = limit;
    t->n_buckets = round_pow2(buckets_hint);
    if (getrandom(&t->seed, sizeof t->seed, GRND_NONBLOCK) != (ssize_t)sizeof t->seed)
        t->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull; /* no entropy yet: still varies */
    t->buckets = calloc(t->n_buckets, sizeof *t->buckets);
    t->cap_entries = 64;
    t->entries = calloc(t->cap_entries, sizeof *t->entries);
    t->n_entries = 1; /* entry 0 is never used */
    if (!t->buckets || !t->entries || pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t->buckets);
        free(t->entries);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void peer_table_free(struct peer_table *t)
{
    if (!t->buckets)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->buckets);
    free(t->entries);
    t->buckets = NULL;
    t->entries = NULL;
}

/* The peer's address as 16 bytes (IPv4 as ::ffff:a.b.c.d). 0, or -1. */
static int peer_addr(int fd, uint8_t out[16])
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &in->sin_addr, 4);
        return 0;
    }
    if (ss.ss_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        return 0;
    }
    errno = EAFNOSUPPORT;
    return -1;
}

/* A keyed mix of the two halves: the seed is unknown to clients, so they cannot aim
 * many addresses at one bucket (an IPv6 client may own 2^64 of them). */
static uint32_t bucket_of(const struct peer_table *t, const uint8_t addr[16])
{
    uint64_t a, b;
    memcpy(&a, addr, 8);
    memcpy(&b, addr + 8, 8);
    uint64_t h = t->seed;
    h = (h ^ a) * 0xff51afd7ed558ccdull;
    h = (h ^ (h >> 29) ^ b) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 32;
    return (uint32_t)h & (t->n_buckets - 1);
}

static uint32_t new_entry(struct peer_table *t)
{
    if (t->free_head) {
        uint32_t i = t->free_head;
        t->free_head = t->entries[i].next;
        return i;
    }
    if (t->n_entries == t->cap_entries) {
        if (t->cap_entries > UINT32_MAX / 2)
            return 0;
        struct peer_entry *e = realloc(t->entries, 2 * (size_t)t->cap_entries * sizeof *e);
        if (!e)
            return 0;
        t->entries = e;
        t->cap_entries *= 2;
    }
    return t->n_entries++;
}

enum peer_admit peer_admit(struct peer_table *t, int fd, uint32_t *slot)
{
    uint8_t addr[16];
    if (peer_addr(fd, addr) < 0)
        return PEER_GONE;
    return peer_admit_addr(t, addr, slot);
}

enum peer_admit peer_admit_addr(struct peer_table *t, const uint8_t addr[16], uint32_t *slot)
{
    enum peer_admit r = PEER_ADMITTED;
    pthread_mutex_lock(&t->lock);
    uint32_t b = bucket_of(t, addr), i = t->buckets[b];
    while (i && memcmp(t->entries[i].addr, addr, 16) != 0)
        i = t->entries[i].next;
    if (i && t->entries[i].count >= t->limit) {
        r = PEER_OVER;
    } else if (i) {
        t->entries[i].count++;
    } else if ((i = new_entry(t)) == 0) {
        r = PEER_NOMEM;
    } else {
        struct peer_entry *e = &t->entries[i];
        memcpy(e->addr, addr, 16);
        e->count = 1;
        e->next = t->buckets[b];
        t->buckets[b] = i;
    }
    pthread_mutex_unlock(&t->lock);
    *slot = r == PEER_ADMITTED ? i : PEER_NONE;
    return r;
}

void peer_release(struct peer_table *t, uint32_t slot)
{
    if (slot == PEER_NONE)
        return;
    pthread_mutex_lock(&t->lock);
    struct peer_entry *e = &t->entries[slot];
    if (e->count && --e->count == 0) {
        /* unlink from its chain, then onto the free list */
        uint32_t *link = &t->buckets[bucket_of(t, e->addr)];
        while (*link && *link != slot)
            link = &t->entries[*link].next;
        if (*link)
            *link = e->next;
        e->next = t->free_head;
        t->free_head = slot;
    }
    pthread_mutex_unlock(&t->lock);
}

int peer_is_loopback(int fd)
{
    uint8_t a[16];
    return peer_addr(fd, a) == 0 && peer_addr_is_loopback(a);
}

int peer_in_ranges(int fd, const struct cidr_list *l)
{
    uint8_t a[16];
    return peer_addr(fd, a) == 0 && cidr_match(l, a);
}

/* Insert e into out[0, *have) kept in decreasing count, at most n long. */
static void top_insert(struct peer_count *out, size_t n, size_t *have, const uint8_t addr[16],
                       uint32_t count)
{
    size_t i = *have < n ? (*have)++ : n;
    while (i > 0 && out[i - 1].count < count) {
        if (i < n)
            out[i] = out[i - 1];
        i--;
    }
    if (i < n) {
        memcpy(out[i].addr, addr, 16);
        out[i].count = count;
    }
}

size_t peer_top(struct peer_table *t, struct peer_count *out, size_t n, uint64_t *n_addrs)
{
    size_t have = 0;
    *n_addrs = 0;
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 1; i < t->n_entries; i++) {
        if (!t->entries[i].count)
            continue;
        (*n_addrs)++;
        top_insert(out, n, &have, t->entries[i].addr, t->entries[i].count);
    }
    pthread_mutex_unlock(&t->lock);
    return have;
}

int peer_addr_is_loopback(const uint8_t a[16])
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t v6loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (memcmp(a, v4mapped, 12) == 0)
        return a[12] == 127;
    return memcmp(a, v6loop, 16) == 0;
}
