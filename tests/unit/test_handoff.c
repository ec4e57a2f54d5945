/* handoff: a batch pushed is taken whole, the eventfd is written once per burst (only
 * when the queue was empty), FIFO order across pushes, growth past the first 64
 * slots, sockets still queued are closed on destroy, settings, and a producer thread
 * pushing batches while the consumer takes them (run it under TSan too), and the
 * acceptor's close after its last push. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../server/handoff.h"

/* The eventfd's counter, reset to 0 by the read; 0 when nothing was written. */
static uint64_t wakeups(struct handoff *h)
{
    uint64_t v = 0;
    if (read(h->efd, &v, sizeof v) < 0) {
        assert_int_equal(errno, EAGAIN);
        return 0;
    }
    return v;
}

/* Items numbered first..first+n-1 (in peer; fd -1 so that nothing real is closed). */
static void fill(struct handoff_item *it, size_t n, uint32_t first)
{
    for (size_t i = 0; i < n; i++)
        it[i] = (struct handoff_item){.fd = -1, .proto = (uint8_t)(first + i), .peer = first + (uint32_t)i};
}

static void expect_seq(const struct handoff_item *it, size_t n, uint32_t first)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(it[i].peer, first + i);
        assert_int_equal(it[i].proto, (uint8_t)(first + i));
        assert_int_equal(it[i].fd, -1);
    }
}

static void test_batch_taken_whole(void **state)
{
    (void)state;
    struct handoff h;
    assert_int_equal(handoff_init(&h), 0);
    struct handoff_item in[5], *out = NULL;
    fill(in, 5, 100);
    assert_int_equal(handoff_push(&h, in, 5), 0);
    assert_int_equal(handoff_take(&h, &out), 5);
    expect_seq(out, 5, 100);
    free(out);
    /* Nothing left: an empty take hands back no array. */
    assert_int_equal(handoff_take(&h, &out), 0);
    assert_null(out);
    handoff_destroy(&h);
}

static void test_one_wakeup_per_burst(void **state)
{
    (void)state;
    struct handoff h;
    assert_int_equal(handoff_init(&h), 0);
    assert_int_equal(wakeups(&h), 0);
    struct handoff_item in[3], *out;
    fill(in, 3, 0);
    /* Three pushes before the worker takes: one wake-up, from the first. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(handoff_push(&h, in, 3), 0);
    assert_int_equal(wakeups(&h), 1);
    assert_int_equal(handoff_take(&h, &out), 9);
    free(out);
    assert_int_equal(wakeups(&h), 0); /* taking does not write it */
    /* The queue is empty again: the next burst wakes once more. */
    assert_int_equal(handoff_push(&h, in, 1), 0);
    assert_int_equal(handoff_push(&h, in, 2), 0);
    assert_int_equal(wakeups(&h), 1);
    assert_int_equal(handoff_take(&h, &out), 3);
    free(out);
    /* A bare wake writes it whatever the queue holds. */
    handoff_wake(&h);
    assert_int_equal(wakeups(&h), 1);
    handoff_destroy(&h);
}

static void test_fifo_and_growth(void **state)
{
    (void)state;
    struct handoff h;
    assert_int_equal(handoff_init(&h), 0);
    static struct handoff_item in[1000];
    struct handoff_item *out;
    /* Pushes of 1, 2, 3, ... items: past 64 slots, then past several doublings. */
    uint32_t next = 0;
    for (size_t n = 1; next + n <= 1000; n++) {
        fill(in, n, next);
        assert_int_equal(handoff_push(&h, in, n), 0);
        next += (uint32_t)n;
    }
    assert_true(next > 64);
    assert_true(h.cap >= next);
    assert_int_equal(handoff_take(&h, &out), next);
    expect_seq(out, next, 0);
    free(out);
    /* One batch bigger than the first allocation, from empty. */
    fill(in, 1000, 5000);
    assert_int_equal(handoff_push(&h, in, 1000), 0);
    assert_int_equal(h.cap, 1024);
    assert_int_equal(handoff_take(&h, &out), 1000);
    expect_seq(out, 1000, 5000);
    free(out);
    assert_int_equal(wakeups(&h), 2); /* two bursts, each onto an empty queue */
    handoff_destroy(&h);
}

static void test_destroy_closes_queued(void **state)
{
    (void)state;
    struct handoff h;
    assert_int_equal(handoff_init(&h), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct handoff_item in[2] = {{.fd = p[0]}, {.fd = p[1]}};
    assert_int_equal(handoff_push(&h, in, 2), 0);
    handoff_destroy(&h);
    assert_int_equal(fcntl(p[0], F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(fcntl(p[1], F_GETFD), -1);
}

/* The acceptor's last word: handoff_close after its last push wakes the worker, and a
 * take after handoff_closed said 1 has every item pushed. */
static void test_close_after_last_push(void **state)
{
    (void)state;
    struct handoff h;
    assert_int_equal(handoff_init(&h), 0);
    struct handoff_item it[3];
    fill(it, 3, 7);
    assert_int_equal(handoff_closed(&h), 0);
    assert_int_equal(handoff_push(&h, it, 3), 0);
    assert_int_equal(wakeups(&h), 1);
    handoff_close(&h);
    assert_int_equal(wakeups(&h), 1);
    assert_int_equal(handoff_closed(&h), 1);
    struct handoff_item *got;
    size_t n = handoff_take(&h, &got);
    assert_int_equal(n, 3);
    expect_seq(got, n, 7);
    free(got);
    assert_int_equal(handoff_closed(&h), 1); /* it stays closed */
    handoff_destroy(&h);
}

static void test_settings(void **state)
{
    (void)state;
    struct handoff h;
    assert_int_equal(handoff_init(&h), 0);
    struct settings s, got;
    memset(&s, 0x5a, sizeof s);
    memset(&got, 0, sizeof got);
    assert_int_equal(handoff_take_settings(&h, &got), 0);
    handoff_push_settings(&h, &s);
    assert_int_equal(wakeups(&h), 1);
    assert_int_equal(handoff_take_settings(&h, &got), 1);
    assert_memory_equal(&got, &s, sizeof s);
    assert_int_equal(handoff_take_settings(&h, &got), 0); /* taken once */
    handoff_destroy(&h);
}

#define BATCHES 3000
#define MAX_BATCH 7

struct producer {
    struct handoff *h;
    uint32_t total;
    int failed;
};

/* Batches of 1..MAX_BATCH items numbered 0, 1, 2, ... without a gap. */
static void *produce(void *arg)
{
    struct producer *p = arg;
    struct handoff_item b[MAX_BATCH];
    uint32_t next = 0;
    for (unsigned i = 0; i < BATCHES; i++) {
        size_t n = 1 + i % MAX_BATCH;
        fill(b, n, next);
        if (handoff_push(p->h, b, n) != 0)
            p->failed = 1;
        next += (uint32_t)n;
    }
    p->total = next;
    return NULL;
}

/* The consumer waits on the eventfd, reads it (so that poll blocks again), then
 * takes: in that order no wake-up can be lost. Returns how many items arrived. */
static uint32_t consume(struct handoff *h, uint32_t want, unsigned *wakes)
{
    uint32_t next = 0;
    while (next < want) {
        struct pollfd pfd = {.fd = h->efd, .events = POLLIN};
        if (poll(&pfd, 1, 5000) != 1)
            break; /* a lost wake-up: fail rather than hang */
        if (wakeups(h))
            (*wakes)++;
        struct handoff_item *it;
        size_t n = handoff_take(h, &it);
        for (size_t i = 0; i < n; i++) {
            if (it[i].peer != next)
                fail_msg("item %u arrived where %u was due", it[i].peer, next);
            next++;
        }
        free(it);
    }
    return next;
}

static void test_across_threads(void **state)
{
    (void)state;
    struct handoff h;
    assert_int_equal(handoff_init(&h), 0);
    uint32_t want = 0;
    for (unsigned i = 0; i < BATCHES; i++)
        want += 1 + i % MAX_BATCH;
    struct producer p = {.h = &h};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, produce, &p), 0);
    unsigned wakes = 0;
    uint32_t got = consume(&h, want, &wakes);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(p.failed, 0);
    assert_int_equal(p.total, want);
    assert_int_equal(got, want);
    assert_true(wakes >= 1 && wakes <= BATCHES);
    struct handoff_item *it;
    assert_int_equal(handoff_take(&h, &it), 0); /* every item exactly once */
    free(it);
    handoff_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_taken_whole),
        cmocka_unit_test(test_one_wakeup_per_burst),
        cmocka_unit_test(test_fifo_and_growth),
        cmocka_unit_test(test_destroy_closes_queued),
        cmocka_unit_test(test_close_after_last_push),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_across_threads),
    };
    return cmocka_run_group_tests_name("handoff", tests, NULL, NULL);
}
