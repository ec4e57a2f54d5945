/* buf: reserve, append, consume, sliding before growing, release/trim, printf, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/buf.h"

static void check_invariants(const struct buf *b)
{
    assert_true(b->start <= b->end);
    assert_true(b->end <= b->cap);
    assert_true(b->cap <= BUF_MAX_CAP);
    if (b->cap == 0)
        assert_null(b->data);
    else
        assert_non_null(b->data);
}

static void test_zero_state(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(buf_room(&b), 0);
    /* Reserving nothing on an empty buffer allocates nothing. */
    assert_int_equal(buf_reserve(&b, 0), 0);
    assert_null(b.data);
    /* Appending nothing is fine too. */
    assert_int_equal(buf_append(&b, "x", 0), 0);
    assert_null(b.data);
    buf_release(&b);
    check_invariants(&b);
}

static void test_reserve_and_append(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_int_equal(buf_reserve(&b, 10), 0);
    check_invariants(&b);
    assert_true(buf_room(&b) >= 10);
    assert_int_equal(buf_len(&b), 0);

    assert_int_equal(buf_append(&b, "hello", 5), 0);
    assert_int_equal(buf_append(&b, " world", 6), 0);
    assert_int_equal(buf_len(&b), 11);
    assert_memory_equal(buf_head(&b), "hello world", 11);

    /* Writing into the tail, then committing. */
    assert_int_equal(buf_reserve(&b, 3), 0);
    memcpy(buf_tail(&b), "!!!", 3);
    buf_commit(&b, 3);
    assert_int_equal(buf_len(&b), 14);
    assert_memory_equal(buf_head(&b), "hello world!!!", 14);
    check_invariants(&b);
    buf_release(&b);
}

static void test_grow_keeps_contents(void **state)
{
    (void)state;
    struct buf b = {0};
    char chunk[97];
    size_t total = 0;
    for (int i = 0; i < 500; i++) {
        memset(chunk, 'a' + i % 26, sizeof chunk);
        assert_int_equal(buf_append(&b, chunk, sizeof chunk), 0);
        total += sizeof chunk;
        check_invariants(&b);
    }
    assert_int_equal(buf_len(&b), total);
    for (size_t i = 0; i < total; i++)
        assert_int_equal(buf_head(&b)[i], 'a' + (int)(i / sizeof chunk) % 26);
    /* Capacity grows by doubling: never more than twice what is needed (min 256). */
    assert_true(b.cap < 2 * total);
    buf_release(&b);
}

static void test_grow_after_consume_keeps_live_bytes(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_int_equal(buf_append(&b, "0123456789", 10), 0);
    buf_consume(&b, 4);
    size_t cap = b.cap;
    /* More than the buffer can hold even after sliding: it must grow and keep "456789". */
    assert_int_equal(buf_reserve(&b, cap), 0);
    assert_true(b.cap > cap);
    assert_int_equal(b.start, 0);
    assert_int_equal(buf_len(&b), 6);
    assert_memory_equal(buf_head(&b), "456789", 6);
    check_invariants(&b);
    buf_release(&b);
}

static void test_consume(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_int_equal(buf_append(&b, "abcdef", 6), 0);
    buf_consume(&b, 2);
    assert_int_equal(buf_len(&b), 4);
    assert_memory_equal(buf_head(&b), "cdef", 4);
    buf_consume(&b, 0);
    assert_int_equal(buf_len(&b), 4);
    /* Emptying rewinds to offset 0, so the whole capacity is room again. */
    buf_consume(&b, 4);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(b.start, 0);
    assert_int_equal(b.end, 0);
    assert_int_equal(buf_room(&b), b.cap);
    /* Consuming more than there is empties the buffer (no underflow). */
    assert_int_equal(buf_append(&b, "xyz", 3), 0);
    buf_consume(&b, 100);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(b.start, 0);
    check_invariants(&b);
    buf_release(&b);
}

/* A buffer drained about as fast as it fills slides its bytes to the front instead of
 * growing: same memory, same capacity. */
static void test_slides_instead_of_growing(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_int_equal(buf_reserve(&b, 256), 0);
    size_t cap = b.cap;
    char *mem = b.data;
    char fill[200];
    memset(fill, 'q', sizeof fill);
    assert_int_equal(buf_append(&b, fill, 200), 0);
    buf_consume(&b, 150);
    assert_int_equal(b.start, 150);
    assert_memory_equal(buf_head(&b), fill, 50);
    /* Room at the tail is cap-200 < 150, but cap-50 >= 150: slide. */
    assert_true(buf_room(&b) < 150);
    assert_int_equal(buf_reserve(&b, 150), 0);
    assert_ptr_equal(b.data, mem);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.start, 0);
    assert_int_equal(b.end, 50);
    assert_true(buf_room(&b) >= 150);
    assert_memory_equal(buf_head(&b), fill, 50);

    /* Steady state: append 100, consume 100, many times: never grows. */
    for (int i = 0; i < 1000; i++) {
        char msg[100];
        memset(msg, '0' + i % 10, sizeof msg);
        assert_int_equal(buf_append(&b, msg, sizeof msg), 0);
        assert_int_equal(buf_head(&b)[buf_len(&b) - 1], '0' + i % 10);
        buf_consume(&b, 100);
        assert_int_equal(b.cap, cap);
        check_invariants(&b);
    }
    assert_ptr_equal(b.data, mem);
    buf_release(&b);
}

/* When even sliding cannot make room, the buffer grows (and compacts while doing so). */
static void test_grows_when_slide_is_not_enough(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_int_equal(buf_reserve(&b, 256), 0);
    size_t cap = b.cap;
    char fill[256];
    for (size_t i = 0; i < sizeof fill; i++)
        fill[i] = (char)i;
    assert_int_equal(buf_append(&b, fill, cap), 0);
    buf_consume(&b, 10);
    assert_int_equal(buf_reserve(&b, 11), 0); /* cap - len = 10 < 11 */
    assert_true(b.cap > cap);
    assert_int_equal(b.start, 0);
    assert_int_equal(buf_len(&b), cap - 10);
    assert_memory_equal(buf_head(&b), fill + 10, cap - 10);
    buf_release(&b);
}

static void test_release_and_trim(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    buf_release(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(buf_len(&b), 0);
    /* A released buffer is usable again. */
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_memory_equal(buf_head(&b), "abc", 3);

    /* trim never drops live bytes. */
    buf_trim(&b, 0);
    assert_non_null(b.data);
    assert_int_equal(buf_len(&b), 3);
    assert_memory_equal(buf_head(&b), "abc", 3);

    /* An empty buffer within keep keeps its memory for reuse... */
    buf_consume(&b, 3);
    size_t cap = b.cap;
    buf_trim(&b, cap);
    assert_non_null(b.data);
    assert_int_equal(b.cap, cap);
    /* ...and one larger than keep gives it back. */
    buf_trim(&b, cap - 1);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    check_invariants(&b);
    /* Trimming the zero state is harmless. */
    buf_trim(&b, 0);
    buf_release(&b);
    check_invariants(&b);
}

static void test_clear_keeps_memory(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    buf_consume(&b, 1);
    char *mem = b.data;
    buf_clear(&b);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(b.start, 0);
    assert_ptr_equal(b.data, mem);
    buf_release(&b);
}

static void test_printf(void **state)
{
    (void)state;
    struct buf b = {0};
    /* On the zero state: must allocate. */
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_int_equal(buf_len(&b), 4);
    assert_memory_equal(buf_head(&b), "42-x", 4);
    /* Fits in the room: no growth. */
    size_t cap = b.cap;
    assert_int_equal(buf_printf(&b, "|%c", 'y'), 0);
    assert_int_equal(b.cap, cap);
    assert_int_equal(buf_len(&b), 6);
    assert_memory_equal(buf_head(&b), "42-x|y", 6);
    /* Empty format appends nothing, even on a full buffer. */
    assert_int_equal(buf_printf(&b, "%s", ""), 0);
    assert_int_equal(buf_len(&b), 6);
    buf_release(&b);
}

/* A formatted string longer than the room grows the buffer, with the exact text and no
 * terminating NUL counted in the length; at every starting fill level. */
static void test_printf_grows(void **state)
{
    (void)state;
    char big[3000];
    for (size_t i = 0; i < sizeof big - 1; i++)
        big[i] = (char)('a' + i % 26);
    big[sizeof big - 1] = '\0';
    for (size_t pre = 0; pre < 600; pre += 7) {
        struct buf b = {0};
        for (size_t i = 0; i < pre; i++)
            assert_int_equal(buf_append(&b, "#", 1), 0);
        size_t n = (pre * 13) % (sizeof big - 1) + 1;
        assert_int_equal(buf_printf(&b, "<%.*s>", (int)n, big), 0);
        assert_int_equal(buf_len(&b), pre + n + 2);
        assert_int_equal(buf_head(&b)[pre], '<');
        assert_memory_equal(buf_head(&b) + pre + 1, big, n);
        assert_int_equal(buf_head(&b)[pre + n + 1], '>');
        check_invariants(&b);
        buf_release(&b);
    }
    /* After a consume, the text still lands right after the live bytes. */
    struct buf b = {0};
    assert_int_equal(buf_append(&b, "0123456789", 10), 0);
    buf_consume(&b, 8);
    assert_int_equal(buf_printf(&b, "%s", big), 0);
    assert_int_equal(buf_len(&b), 2 + strlen(big));
    assert_memory_equal(buf_head(&b), "89", 2);
    assert_memory_equal(buf_head(&b) + 2, big, strlen(big));
    buf_release(&b);
}

/* Text that exactly fills the room, or is one byte shorter or longer: the terminating
 * NUL vsnprintf writes needs a byte too, so exactly-fitting text must still grow. */
static void test_printf_exact_fit(void **state)
{
    (void)state;
    char text[400];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('A' + i % 26);
    for (size_t room = 0; room <= 300; room++) {
        for (int delta = -1; delta <= 1; delta++) {
            if ((long)room + delta < 0)
                continue;
            size_t n = (size_t)((long)room + delta);
            struct buf b = {0};
            assert_int_equal(buf_reserve(&b, 400), 0);
            size_t fill = b.cap - room;
            for (size_t i = 0; i < fill; i++)
                buf_tail(&b)[i] = '#';
            buf_commit(&b, fill);
            assert_int_equal(buf_room(&b), room);
            assert_int_equal(buf_printf(&b, "%.*s", (int)n, text), 0);
            assert_int_equal(buf_len(&b), fill + n);
            assert_memory_equal(buf_head(&b) + fill, text, n);
            check_invariants(&b);
            buf_release(&b);
        }
    }
}

/* Requests beyond BUF_MAX_CAP are refused and leave the buffer as it was (no 2 GiB
 * allocation is attempted by these cases). */
static void test_max_cap_refused(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_int_equal(buf_reserve(&b, (size_t)BUF_MAX_CAP + 1), -1);
    assert_null(b.data);
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -1);
    assert_null(b.data);

    assert_int_equal(buf_append(&b, "0123456789", 10), 0);
    buf_consume(&b, 3);
    struct buf before = b;
    /* 7 live bytes + (MAX - 6) > MAX. */
    assert_int_equal(buf_reserve(&b, (size_t)BUF_MAX_CAP - 6), -1);
    assert_ptr_equal(b.data, before.data);
    assert_int_equal(b.start, before.start);
    assert_int_equal(b.end, before.end);
    assert_int_equal(b.cap, before.cap);
    assert_memory_equal(buf_head(&b), "3456789", 7);
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -1);
    assert_int_equal(buf_reserve(&b, SIZE_MAX - 5), -1); /* would wrap len + n */
    /* buf_append refuses the same way, without touching the source. */
    assert_int_equal(buf_append(&b, "x", (size_t)BUF_MAX_CAP), -1);
    assert_int_equal(buf_len(&b), 7);
    assert_int_equal(b.cap, before.cap);
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_state),
        cmocka_unit_test(test_reserve_and_append),
        cmocka_unit_test(test_grow_keeps_contents),
        cmocka_unit_test(test_grow_after_consume_keeps_live_bytes),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_slides_instead_of_growing),
        cmocka_unit_test(test_grows_when_slide_is_not_enough),
        cmocka_unit_test(test_release_and_trim),
        cmocka_unit_test(test_clear_keeps_memory),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_printf_grows),
        cmocka_unit_test(test_printf_exact_fit),
        cmocka_unit_test(test_max_cap_refused),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
