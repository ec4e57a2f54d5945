/* peer: the --max-conns-per-ip table. Counts per address (IPv4, IPv6, IPv4-mapped
 * IPv6 as IPv4), the limit, release to zero freeing the entry for reuse, chains of
 * colliding addresses (more addresses than buckets), the entry array growing and the
 * refusal when it cannot, and two threads admitting and releasing at once.
 *
 * peer_admit reads the address with getpeername, so each address is the peer of a
 * connected UDP socket: connect() on UDP sends nothing, and reconnecting one socket
 * moves it to the next address. Every 127.0.0.0/8 address routes to loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../server/peer.h"

/* Connect the UDP socket fd (AF_INET or AF_INET6) to ip, port 9. 0, or -1. */
static int udp_to(int fd, const char *ip)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(9)};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
    if (inet_pton(AF_INET, ip, &in.sin_addr) == 1)
        return connect(fd, (struct sockaddr *)&in, sizeof in);
    if (inet_pton(AF_INET6, ip, &in6.sin6_addr) == 1)
        return connect(fd, (struct sockaddr *)&in6, sizeof in6);
    return -1;
}

static enum peer_admit admit(struct peer_table *t, int fd, const char *ip, uint32_t *slot)
{
    assert_int_equal(udp_to(fd, ip), 0);
    return peer_admit(t, fd, slot);
}

/* 127.1.x.y for i in [0, 65536). */
static const char *v4_nth(char *out, size_t len, unsigned i)
{
    snprintf(out, len, "127.1.%u.%u", (i >> 8) & 255, i & 255);
    return out;
}

static void assert_buckets_empty(const struct peer_table *t)
{
    for (uint32_t b = 0; b < t->n_buckets; b++)
        assert_int_equal(t->buckets[b], 0);
}

static void test_counts_per_v4_address(void **state)
{
    (void)state;
    struct peer_table t;
    assert_int_equal(peer_table_init(&t, 3, 16), 0);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    uint32_t a[3], b, x = 12345;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(admit(&t, fd, "127.0.0.2", &a[i]), PEER_ADMITTED);
        assert_int_not_equal(a[i], PEER_NONE);
        assert_int_equal(a[i], a[0]);
    }
    /* The limit reached: refused, and nothing to release. */
    assert_int_equal(admit(&t, fd, "127.0.0.2", &x), PEER_OVER);
    assert_int_equal(x, PEER_NONE);
    /* Another address has its own count. */
    assert_int_equal(admit(&t, fd, "127.0.0.3", &b), PEER_ADMITTED);
    assert_int_not_equal(b, a[0]);
    /* One released: one more fits again, and only one. */
    peer_release(&t, a[0]);
    assert_int_equal(admit(&t, fd, "127.0.0.2", &x), PEER_ADMITTED);
    assert_int_equal(x, a[0]);
    assert_int_equal(admit(&t, fd, "127.0.0.2", &x), PEER_OVER);
    for (int i = 0; i < 3; i++)
        peer_release(&t, a[i]);
    peer_release(&t, b);
    peer_release(&t, PEER_NONE); /* a connection never counted: nothing happens */
    assert_buckets_empty(&t);
    close(fd);
    peer_table_free(&t);
}

static void test_counts_per_v6_address(void **state)
{
    (void)state;
    int fd6 = socket(AF_INET6, SOCK_DGRAM, 0), fd4 = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd6 < 0 || udp_to(fd6, "::1") < 0) {
        if (fd6 >= 0)
            close(fd6);
        close(fd4);
        skip(); /* no IPv6 here */
    }
    struct peer_table t;
    assert_int_equal(peer_table_init(&t, 2, 0), 0);
    uint32_t s1, s2, m1, m2, x;
    assert_int_equal(admit(&t, fd6, "::1", &s1), PEER_ADMITTED);
    assert_int_equal(admit(&t, fd6, "::1", &s2), PEER_ADMITTED);
    assert_int_equal(s1, s2);
    assert_int_equal(admit(&t, fd6, "::1", &x), PEER_OVER);
    /* 127.0.0.1 is another address than ::1 ... */
    assert_int_equal(admit(&t, fd4, "127.0.0.1", &m1), PEER_ADMITTED);
    assert_int_not_equal(m1, s1);
    /* ... and IPv4-mapped IPv6 counts as the IPv4 address itself. */
    assert_int_equal(admit(&t, fd6, "::ffff:127.0.0.1", &m2), PEER_ADMITTED);
    assert_int_equal(m2, m1);
    assert_int_equal(admit(&t, fd6, "::ffff:127.0.0.1", &x), PEER_OVER);
    assert_int_equal(admit(&t, fd4, "127.0.0.1", &x), PEER_OVER);
    peer_release(&t, s1);
    peer_release(&t, s2);
    peer_release(&t, m1);
    peer_release(&t, m2);
    assert_buckets_empty(&t);
    close(fd6);
    close(fd4);
    peer_table_free(&t);
}

static void test_release_to_zero_frees_entry(void **state)
{
    (void)state;
    struct peer_table t;
    assert_int_equal(peer_table_init(&t, 2, 0), 0);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    uint32_t a1, a2, b, x;
    assert_int_equal(admit(&t, fd, "127.0.0.5", &a1), PEER_ADMITTED);
    assert_int_equal(admit(&t, fd, "127.0.0.5", &a2), PEER_ADMITTED);
    uint32_t used = t.n_entries;
    peer_release(&t, a1);
    assert_int_equal(t.free_head, 0); /* one connection still open */
    peer_release(&t, a2);
    assert_int_equal(t.free_head, a1); /* the last one: the entry is free */
    assert_buckets_empty(&t);
    /* A new address takes the freed entry instead of a new one. */
    assert_int_equal(admit(&t, fd, "127.0.0.6", &b), PEER_ADMITTED);
    assert_int_equal(b, a1);
    assert_int_equal(t.n_entries, used);
    /* The old address starts again from zero: the full limit fits. */
    assert_int_equal(admit(&t, fd, "127.0.0.5", &a1), PEER_ADMITTED);
    assert_int_equal(admit(&t, fd, "127.0.0.5", &a2), PEER_ADMITTED);
    assert_int_equal(admit(&t, fd, "127.0.0.5", &x), PEER_OVER);
    peer_release(&t, a1);
    peer_release(&t, a2);
    peer_release(&t, b);
    assert_buckets_empty(&t);
    close(fd);
    peer_table_free(&t);
}

#define N_COLLIDE 1000

/* Every address admitted once more: at the limit it must be found and refused. */
static void expect_all_over(struct peer_table *t, int fd, const uint32_t *slots,
                            unsigned step, unsigned first)
{
    char ip[32];
    uint32_t x;
    for (unsigned i = first; i < N_COLLIDE; i += step) {
        assert_int_equal(admit(t, fd, v4_nth(ip, sizeof ip, i), &x), PEER_OVER);
        assert_int_not_equal(slots[i], PEER_NONE);
    }
}

/* 1000 addresses in 64 buckets: chains of about 16, whatever the seed. Releasing
 * entries from the heads, middles and tails of chains leaves the others intact. */
static void test_collisions_in_chains(void **state)
{
    (void)state;
    struct peer_table t;
    assert_int_equal(peer_table_init(&t, 2, 1), 0);
    assert_int_equal(t.n_buckets, 64);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    static uint32_t s1[N_COLLIDE], s2[N_COLLIDE];
    char ip[32];
    for (unsigned i = 0; i < N_COLLIDE; i++) {
        assert_int_equal(admit(&t, fd, v4_nth(ip, sizeof ip, i), &s1[i]), PEER_ADMITTED);
        assert_int_equal(admit(&t, fd, v4_nth(ip, sizeof ip, i), &s2[i]), PEER_ADMITTED);
        assert_int_equal(s1[i], s2[i]);
        if (i)
            assert_int_not_equal(s1[i], s1[i - 1]);
    }
    expect_all_over(&t, fd, s1, 1, 0);
    /* Every third address released to zero, in reverse order. */
    for (unsigned i = N_COLLIDE; i-- > 0;)
        if (i % 3 == 0) {
            peer_release(&t, s1[i]);
            peer_release(&t, s2[i]);
        }
    expect_all_over(&t, fd, s1, 3, 1);
    expect_all_over(&t, fd, s1, 3, 2);
    /* The released ones can come back (on reused entries). */
    for (unsigned i = 0; i < N_COLLIDE; i += 3) {
        assert_int_equal(admit(&t, fd, v4_nth(ip, sizeof ip, i), &s1[i]), PEER_ADMITTED);
        assert_int_equal(admit(&t, fd, v4_nth(ip, sizeof ip, i), &s2[i]), PEER_ADMITTED);
    }
    expect_all_over(&t, fd, s1, 1, 0);
    for (unsigned i = 0; i < N_COLLIDE; i++) {
        peer_release(&t, s1[i]);
        peer_release(&t, s2[i]);
    }
    assert_buckets_empty(&t);
    close(fd);
    peer_table_free(&t);
}

/* The entry array starts at 64 and doubles; slots stay valid across the move. When it
 * cannot grow (its size would pass 2^32), a new address is refused with PEER_NOMEM,
 * while known addresses and freed entries still work. */
static void test_table_full(void **state)
{
    (void)state;
    struct peer_table t;
    assert_int_equal(peer_table_init(&t, 5, 0), 0);
    assert_int_equal(t.cap_entries, 64);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    uint32_t s[200], x;
    char ip[32];
    for (unsigned i = 0; i < 200; i++)
        assert_int_equal(admit(&t, fd, v4_nth(ip, sizeof ip, i), &s[i]), PEER_ADMITTED);
    assert_int_equal(t.cap_entries, 256);
    assert_int_equal(admit(&t, fd, v4_nth(ip, sizeof ip, 0), &x), PEER_ADMITTED);
    assert_int_equal(x, s[0]); /* found again after two moves */
    peer_release(&t, x);

    uint32_t n_real = t.n_entries, cap_real = t.cap_entries;
    t.n_entries = t.cap_entries = UINT32_MAX / 2 + 1; /* full, and too big to double */
    x = 777;
    assert_int_equal(admit(&t, fd, "127.2.0.1", &x), PEER_NOMEM);
    assert_int_equal(x, PEER_NONE);
    assert_int_equal(admit(&t, fd, v4_nth(ip, sizeof ip, 7), &x), PEER_ADMITTED);
    assert_int_equal(x, s[7]);
    peer_release(&t, x);
    peer_release(&t, s[9]); /* address 9 to zero: its entry is free to reuse */
    assert_int_equal(admit(&t, fd, "127.2.0.1", &x), PEER_ADMITTED);
    assert_int_equal(x, s[9]);
    peer_release(&t, x);
    t.n_entries = n_real;
    t.cap_entries = cap_real;

    for (unsigned i = 0; i < 200; i++)
        if (i != 9)
            peer_release(&t, s[i]);
    assert_buckets_empty(&t);
    close(fd);
    peer_table_free(&t);
}

static void test_gone(void **state)
{
    (void)state;
    struct peer_table t;
    assert_int_equal(peer_table_init(&t, 1, 0), 0);
    uint32_t x = 99;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(peer_admit(&t, sv[0], &x), PEER_GONE); /* not an IP peer */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(peer_admit(&t, fd, &x), PEER_GONE); /* no peer at all */
    assert_int_equal(peer_admit(&t, -1, &x), PEER_GONE);
    assert_int_equal(t.n_entries, 1);
    close(sv[0]);
    close(sv[1]);
    close(fd);
    peer_table_free(&t);
}

static void test_loopback(void **state)
{
    (void)state;
    int fd4 = socket(AF_INET, SOCK_DGRAM, 0), fd6 = socket(AF_INET6, SOCK_DGRAM, 0);
    assert_int_equal(udp_to(fd4, "127.3.4.5"), 0);
    assert_int_equal(peer_is_loopback(fd4), 1);
    if (fd6 >= 0 && udp_to(fd6, "::1") == 0) {
        assert_int_equal(peer_is_loopback(fd6), 1);
        assert_int_equal(udp_to(fd6, "::ffff:127.0.0.9"), 0);
        assert_int_equal(peer_is_loopback(fd6), 1);
    }
    int unconnected = socket(AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(peer_is_loopback(unconnected), 0);
    close(unconnected);
    close(fd4);
    if (fd6 >= 0)
        close(fd6);
}

#define THREAD_TRIES 400
#define SHARED_LIMIT 500

struct racer {
    struct peer_table *t;
    unsigned id;
    uint32_t held[THREAD_TRIES];
    unsigned admitted, over;
};

/* Take up to THREAD_TRIES connections from the shared address (the two threads
 * together want more than the limit), churn a private address, then release all. */
static void *race(void *arg)
{
    struct racer *r = arg;
    int fd = socket(AF_INET, SOCK_DGRAM, 0), own = socket(AF_INET, SOCK_DGRAM, 0);
    char ip[32];
    snprintf(ip, sizeof ip, "127.4.0.%u", r->id + 1);
    if (fd < 0 || own < 0 || udp_to(fd, "127.4.1.1") < 0 || udp_to(own, ip) < 0)
        return NULL;
    for (unsigned i = 0; i < THREAD_TRIES; i++) {
        uint32_t s, p;
        enum peer_admit a = peer_admit(r->t, fd, &s);
        if (a == PEER_ADMITTED)
            r->held[r->admitted++] = s;
        else if (a == PEER_OVER)
            r->over++;
        if (peer_admit(r->t, own, &p) == PEER_ADMITTED)
            peer_release(r->t, p);
    }
    for (unsigned i = 0; i < r->admitted; i++)
        peer_release(r->t, r->held[i]);
    close(fd);
    close(own);
    return NULL;
}

/* 16-byte form of an IPv4 address, as a PROXY header's source is counted. */
static void v4_16(uint8_t out[16], uint8_t last)
{
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    out[12] = 192, out[13] = 0, out[14] = 2, out[15] = last;
}

/* Addresses named by PROXY headers are counted like socket peers; the top view lists
 * the busiest first and follows releases. */
static void test_admit_addr_and_top(void **state)
{
    (void)state;
    struct peer_table t;
    assert_int_equal(peer_table_init(&t, 3, 64), 0);
    uint8_t a[16];
    uint32_t s[12];
    int k = 0;
    /* .1: 1 connection, .2: 3 (the limit), .3: 2 */
    const uint8_t last[] = {1, 2, 2, 2, 3, 3};
    for (size_t i = 0; i < sizeof last; i++) {
        v4_16(a, last[i]);
        assert_int_equal(peer_admit_addr(&t, a, &s[k++]), PEER_ADMITTED);
    }
    v4_16(a, 2);
    uint32_t over;
    assert_int_equal(peer_admit_addr(&t, a, &over), PEER_OVER);
    assert_int_equal(over, PEER_NONE);
    assert_true(peer_addr_is_loopback((const uint8_t[16]){[10] = 0xff, [11] = 0xff, [12] = 127}));
    assert_false(peer_addr_is_loopback(a));

    struct peer_count top[2];
    uint64_t n_addrs;
    assert_int_equal(peer_top(&t, top, 2, &n_addrs), 2);
    assert_int_equal(n_addrs, 3);
    assert_int_equal(top[0].addr[15], 2);
    assert_int_equal(top[0].count, 3);
    assert_int_equal(top[1].addr[15], 3);
    assert_int_equal(top[1].count, 2);
    /* release .2 down to 0: .3 leads, .1 follows, .2 is gone */
    for (int i = 1; i <= 3; i++)
        peer_release(&t, s[i]);
    struct peer_count all[8];
    assert_int_equal(peer_top(&t, all, 8, &n_addrs), 2);
    assert_int_equal(n_addrs, 2);
    assert_int_equal(all[0].addr[15], 3);
    assert_int_equal(all[1].addr[15], 1);
    assert_int_equal(all[1].count, 1);
    peer_table_free(&t);
}

static void test_two_threads(void **state)
{
    (void)state;
    struct peer_table t;
    assert_int_equal(peer_table_init(&t, SHARED_LIMIT, 0), 0);
    static struct racer r[2];
    pthread_t th[2];
    for (unsigned i = 0; i < 2; i++) {
        r[i] = (struct racer){.t = &t, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    for (unsigned i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    /* Releases may let a thread in again, so at least the limit was admitted. */
    assert_true(r[0].admitted + r[1].admitted >= SHARED_LIMIT);
    assert_int_equal(r[0].admitted + r[0].over, THREAD_TRIES);
    assert_int_equal(r[1].admitted + r[1].over, THREAD_TRIES);
    /* Everything released: every chain is empty, and at most 3 entries were used. */
    assert_buckets_empty(&t);
    assert_true(t.n_entries <= 4);
    peer_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_per_v4_address),
        cmocka_unit_test(test_counts_per_v6_address),
        cmocka_unit_test(test_release_to_zero_frees_entry),
        cmocka_unit_test(test_collisions_in_chains),
        cmocka_unit_test(test_table_full),
        cmocka_unit_test(test_gone),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_two_threads),
        cmocka_unit_test(test_admit_addr_and_top),
    };
    return cmocka_run_group_tests_name("peer", tests, NULL, NULL);
}
