/* timer: deadline order of appends, O(1) touch to the tail, expiry at the deadline
 * (across the 2^32 ms wrap), removal of the head and of other nodes while expired
 * nodes are walked, and TIMER_NONE once a node is out of every list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../server/timer.h"

#define N_NODES 8

/* The list's nodes from head to tail, checking both directions agree. */
static size_t walk(const struct tlist *l, struct tnode **out, size_t max)
{
    size_t n = 0;
    const struct tnode *prev = NULL;
    for (struct tnode *t = l->head; t; t = t->next) {
        assert_true(n < max);
        assert_ptr_equal(t->prev, prev);
        assert_int_equal(t->list, l->id);
        out[n++] = t;
        prev = t;
    }
    assert_ptr_equal(l->tail, prev);
    return n;
}

/* The list holds exactly want[0..n) in that order. */
static void expect_order(const struct tlist *l, struct tnode *const *want, size_t n)
{
    struct tnode *got[N_NODES];
    assert_int_equal(walk(l, got, N_NODES), n);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(got[i], want[i]);
}

static void test_append_orders_by_deadline(void **state)
{
    (void)state;
    struct tlist l = {.timeout_ms = 100, .id = 2};
    struct tnode n[4];
    uint32_t now = 1000;
    for (int i = 0; i < 4; i++) {
        tlist_append(&l, &n[i], now);
        assert_int_equal(n[i].deadline, now + 100);
        now += 7;
    }
    struct tnode *want[] = {&n[0], &n[1], &n[2], &n[3]};
    expect_order(&l, want, 4);
    for (int i = 1; i < 4; i++)
        assert_true((int32_t)(n[i].deadline - n[i - 1].deadline) > 0);
}

static void test_touch_moves_to_tail(void **state)
{
    (void)state;
    struct tlist l = {.timeout_ms = 50, .id = 0};
    struct tnode n[3];
    for (int i = 0; i < 3; i++)
        tlist_append(&l, &n[i], 10);
    /* The head, then a middle node: each goes to the tail with a new deadline. */
    tlist_touch(&l, &n[0], 20);
    assert_int_equal(n[0].deadline, 70);
    expect_order(&l, (struct tnode *[]){&n[1], &n[2], &n[0]}, 3);
    tlist_touch(&l, &n[2], 25);
    assert_int_equal(n[2].deadline, 75);
    expect_order(&l, (struct tnode *[]){&n[1], &n[0], &n[2]}, 3);
    /* The tail stays where it is; only its deadline moves. */
    tlist_touch(&l, &n[2], 30);
    assert_int_equal(n[2].deadline, 80);
    expect_order(&l, (struct tnode *[]){&n[1], &n[0], &n[2]}, 3);
    /* Touched twice in one millisecond: nothing changes the second time. */
    tlist_touch(&l, &n[1], 30);
    expect_order(&l, (struct tnode *[]){&n[0], &n[2], &n[1]}, 3);
    tlist_touch(&l, &n[1], 30);
    assert_int_equal(n[1].deadline, 80);
    expect_order(&l, (struct tnode *[]){&n[0], &n[2], &n[1]}, 3);
}

static void test_single_node_touch_and_remove(void **state)
{
    (void)state;
    struct tlist l = {.timeout_ms = 5, .id = 1};
    struct tnode n;
    tlist_append(&l, &n, 0);
    tlist_touch(&l, &n, 3);
    assert_int_equal(n.deadline, 8);
    expect_order(&l, (struct tnode *[]){&n}, 1);
    tlist_remove(&l, &n);
    assert_null(l.head);
    assert_null(l.tail);
    assert_int_equal(n.list, TIMER_NONE);
}

static void test_expired_at_deadline(void **state)
{
    (void)state;
    assert_false(timer_expired(100, 99));
    assert_true(timer_expired(100, 100));
    assert_true(timer_expired(100, 101));
    /* Long past (but within 2^31 ms) still counts as expired. */
    assert_true(timer_expired(100, 100 + 0x7fffffffu));
}

static void test_expired_across_wrap(void **state)
{
    (void)state;
    struct tlist l = {.timeout_ms = 100, .id = 0};
    struct tnode n;
    uint32_t now = UINT32_MAX - 40; /* the deadline wraps past 2^32 */
    tlist_append(&l, &n, now);
    assert_int_equal(n.deadline, 59);
    assert_false(timer_expired(n.deadline, now));
    assert_false(timer_expired(n.deadline, UINT32_MAX));
    assert_false(timer_expired(n.deadline, 0));
    assert_false(timer_expired(n.deadline, 58));
    assert_true(timer_expired(n.deadline, 59));
    assert_true(timer_expired(n.deadline, 60));
    /* A deadline just before the wrap, seen just after it. */
    assert_true(timer_expired(UINT32_MAX - 2, 3));
    assert_false(timer_expired(3, UINT32_MAX - 2));
}

struct expiry {
    struct tlist *l;
    struct tnode *n;
    struct tnode *fired[N_NODES];
    size_t n_fired;
};

/* The worker's walk: while the head has expired, handle it. Handling removes it, and
 * for node 1 also removes nodes 3 and 6 (a handler closing other connections). */
static void expire(struct expiry *x, uint32_t now)
{
    while (x->l->head && timer_expired(x->l->head->deadline, now)) {
        struct tnode *t = x->l->head;
        assert_true(x->n_fired < N_NODES);
        x->fired[x->n_fired++] = t;
        tlist_remove(x->l, t);
        if (t == &x->n[1]) {
            tlist_remove(x->l, &x->n[3]);
            tlist_remove(x->l, &x->n[6]);
        }
    }
}

static void test_remove_while_expiring(void **state)
{
    (void)state;
    struct tlist l = {.timeout_ms = 10, .id = 3};
    struct tnode n[N_NODES];
    for (int i = 0; i < N_NODES; i++)
        tlist_append(&l, &n[i], (uint32_t)i); /* deadlines 10, 11, ... 17 */
    struct expiry x = {.l = &l, .n = n};
    expire(&x, 14); /* 0..4 are due; 1 takes 3 (due) and 6 (not) with it */
    assert_int_equal(x.n_fired, 4);
    assert_ptr_equal(x.fired[0], &n[0]);
    assert_ptr_equal(x.fired[1], &n[1]);
    assert_ptr_equal(x.fired[2], &n[2]);
    assert_ptr_equal(x.fired[3], &n[4]);
    expect_order(&l, (struct tnode *[]){&n[5], &n[7]}, 2);
    for (int i = 0; i < 5; i++)
        assert_int_equal(n[i].list, TIMER_NONE);
    assert_int_equal(n[6].list, TIMER_NONE);
    /* Nothing more is due until 15; then everything left goes. */
    x.n_fired = 0;
    expire(&x, 14);
    assert_int_equal(x.n_fired, 0);
    expire(&x, 100);
    assert_int_equal(x.n_fired, 2);
    assert_null(l.head);
    assert_null(l.tail);
}

static void test_remove_ends_and_reappend(void **state)
{
    (void)state;
    struct tlist a = {.timeout_ms = 10, .id = 0}, b = {.timeout_ms = 30, .id = 1};
    struct tnode n[3];
    for (int i = 0; i < 3; i++)
        tlist_append(&a, &n[i], 0);
    tlist_remove(&a, &n[2]); /* the tail */
    assert_int_equal(n[2].list, TIMER_NONE);
    assert_null(n[2].prev);
    assert_null(n[2].next);
    expect_order(&a, (struct tnode *[]){&n[0], &n[1]}, 2);
    tlist_remove(&a, &n[0]); /* the head */
    expect_order(&a, (struct tnode *[]){&n[1]}, 1);
    /* Moved to another list: it takes that list's id and timeout. */
    tlist_append(&b, &n[0], 5);
    assert_int_equal(n[0].list, 1);
    assert_int_equal(n[0].deadline, 35);
    expect_order(&b, (struct tnode *[]){&n[0]}, 1);
    expect_order(&a, (struct tnode *[]){&n[1]}, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_orders_by_deadline),
        cmocka_unit_test(test_touch_moves_to_tail),
        cmocka_unit_test(test_single_node_touch_and_remove),
        cmocka_unit_test(test_expired_at_deadline),
        cmocka_unit_test(test_expired_across_wrap),
        cmocka_unit_test(test_remove_while_expiring),
        cmocka_unit_test(test_remove_ends_and_reappend),
    };
    return cmocka_run_group_tests_name("timer", tests, NULL, NULL);
}
