/* conn: the connection state machine (server/conn.c) driven through the fake backend
 * (fake_backend.h), which plays the kernel: short reads, EAGAIN, one-byte writes, EPIPE
 * and ECONNRESET in the middle of a reply, the peer's FIN in the middle of a pipelined
 * batch, timers running out in the middle of a message. Running out of memory is
 * injected at the allocator itself: this test is linked with malloc and calloc wrapped
 * (build.mk, WRAP_test_conn), so the Nth allocation from now can fail.
 *
 * Each test checks what the client would see (the bytes the writes took, and whether
 * its end of the socket reads EOF) and what the worker's counters say. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_backend.h"

/* ---- allocation faults (the linker routes malloc and calloc here) ---- */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);

static int alloc_fail_in = -1; /* the allocation that fails: 0 is the next one; -1: none */
static int allocs_failed;

static int alloc_fails_now(void)
{
    if (alloc_fail_in < 0 || alloc_fail_in-- > 0)
        return 0;
    allocs_failed++;
    errno = ENOMEM;
    return 1;
}

void *__wrap_malloc(size_t n) { return alloc_fails_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return alloc_fails_now() ? NULL : __real_calloc(n, size); }

/* Fail the allocation after `skip` more have succeeded. */
static void fail_allocation(int skip)
{
    alloc_fail_in = skip;
    allocs_failed = 0;
}

/* ---- helpers ---- */
#define COUNT(fw, name) counter_get(&(fw).stats.name)

static const char HTTP_GET[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/* The bytes of the reply to HTTP_GET, as the handler writes them. */
static const char *hello_reply(struct fake_worker *fw)
{
    static char text[512];
    snprintf(text, sizeof text, "%.*s", (int)fw->http.hello_len, fw->http.hello);
    return text;
}

static size_t frame(char *out, const char *payload)
{
    size_t n = strlen(payload);
    codec_frame_header((uint32_t)n, (unsigned char *)out);
    memcpy(out + FRAME_HEADER_LEN, payload, n);
    return FRAME_HEADER_LEN + n;
}

/* Writable events until nothing waits (bounded). */
static void drain_writes(struct fake_worker *fw)
{
    for (int i = 0; i < 10000 && fw->conn && fake_unsent(fw); i++)
        fake_writable(fw);
}

static int teardown(void **state)
{
    (void)state;
    alloc_fail_in = -1;
    return 0;
}

/* ---- reads that stop short ---- */

/* A read returns EAGAIN after 3 bytes of a line: they are kept, nothing is answered,
 * and the rest completes the line whatever the split. */
static void test_line_split_by_eagain(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fake_open(&fw, PROTO_LINE);
    fake_read_bytes(&fw, "hel");
    fake_read_again(&fw);
    fake_readable(&fw);
    assert_non_null(fw.conn);
    assert_string_equal(fake_seen(&fw), "");
    assert_int_equal(buf_len(&fw.conn->in), 3);
    assert_int_equal(COUNT(fw, messages), 0);
    fake_read_bytes(&fw, "lo\nwor");
    fake_read_again(&fw);
    fake_readable(&fw);
    assert_string_equal(fake_seen(&fw), "hello\n");
    assert_int_equal(buf_len(&fw.conn->in), 3);
    fake_read_bytes(&fw, "ld\n");
    fake_readable(&fw);
    assert_string_equal(fake_seen(&fw), "hello\nworld\n");
    assert_int_equal(buf_len(&fw.conn->in), 0);
    assert_int_equal(COUNT(fw, messages), 2);
    assert_int_equal(COUNT(fw, reads), 3);
    assert_int_equal(COUNT(fw, bytes_in), 12);
    assert_int_equal(COUNT(fw, bytes_out), 12);
    assert_int_equal(COUNT(fw, closed), 0);
    assert_false(fake_client_eof(&fw));
    fake_worker_fini(&fw);
}

/* A frame whose 4-byte header itself is split, then a payload in two reads. */
static void test_frame_split_in_its_header(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fake_open(&fw, PROTO_FRAME);
    char f[64];
    size_t n = frame(f, "payload!");
    fake_read_data(&fw, f, 2);
    fake_read_again(&fw);
    fake_readable(&fw);
    fake_read_data(&fw, f + 2, 5);
    fake_read_again(&fw);
    fake_readable(&fw);
    assert_int_equal(buf_len(&fw.seen), 0);
    assert_int_equal(COUNT(fw, messages), 0);
    fake_read_data(&fw, f + 7, n - 7);
    fake_readable(&fw);
    assert_int_equal(buf_len(&fw.seen), n);
    assert_memory_equal(buf_head(&fw.seen), f, n);
    assert_int_equal(COUNT(fw, messages), 1);
    assert_int_equal(COUNT(fw, truncated), 0);
    fake_worker_fini(&fw);
}

/* An HTTP request cut in its headers. */
static void test_http_split_in_its_headers(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fake_open(&fw, PROTO_HTTP);
    fake_read_bytes(&fw, "GET / HTTP/1.1\r\nHo");
    fake_read_again(&fw);
    fake_readable(&fw);
    assert_string_equal(fake_seen(&fw), "");
    fake_read_bytes(&fw, "st: x\r\n\r\n");
    fake_readable(&fw);
    assert_string_equal(fake_seen(&fw), hello_reply(&fw));
    assert_int_equal(COUNT(fw, http_2xx), 1);
    assert_int_equal(COUNT(fw, messages), 1);
    fake_worker_fini(&fw);
}

/* ---- writes that stop short ---- */

/* Every write takes one byte. The replies leave in order, whole; once more than
 * --max-output waits, reading stops (read_off), and starts again (read_on) when it has
 * drained to half. */
static void test_write_one_byte_at_a_time(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fw.set.max_output = 8;
    fake_open(&fw, PROTO_LINE);
    fw.write_max = 1;
    fake_read_bytes(&fw, "one\ntwo\nthree\n");
    fake_read_again(&fw);
    fake_readable(&fw);
    assert_string_equal(fake_seen(&fw), "o");
    assert_int_equal(fw.calls[FAKE_READ_OFF], 0);
    fake_read_bytes(&fw, "four\n");
    fake_read_again(&fw);
    fake_readable(&fw); /* 18 bytes wait now: more than --max-output */
    assert_int_equal(fw.calls[FAKE_READ_OFF], 1);
    assert_int_equal(COUNT(fw, output_paused), 1);
    assert_false(conn_reading(fw.conn));
    drain_writes(&fw);
    assert_non_null(fw.conn);
    assert_true(conn_reading(fw.conn));
    assert_int_equal(fw.calls[FAKE_READ_ON], 1);
    assert_string_equal(fake_seen(&fw), "one\ntwo\nthree\nfour\n");
    assert_int_equal(COUNT(fw, writes), 19);
    assert_int_equal(COUNT(fw, bytes_out), 19);
    assert_int_equal(COUNT(fw, messages), 4);
    assert_false(fake_client_eof(&fw));
    fake_worker_fini(&fw);
}

/* ---- the peer goes away in the middle of a reply ---- */

/* The socket takes 10 bytes of an HTTP reply, then EPIPE: the client has those 10
 * bytes and a closed connection; it counts as a reset, not as an error to log. */
static void test_epipe_mid_reply(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fake_open(&fw, PROTO_HTTP);
    fake_write_take(&fw, 10);
    fake_write_error(&fw, EPIPE);
    fake_read_bytes(&fw, HTTP_GET);
    fake_readable(&fw);
    assert_non_null(fw.conn); /* the socket was full after 10 bytes */
    fake_writable(&fw);
    assert_null(fw.conn);
    assert_int_equal(buf_len(&fw.seen), 10);
    assert_memory_equal(buf_head(&fw.seen), hello_reply(&fw), 10);
    assert_int_equal(COUNT(fw, resets), 1);
    assert_int_equal(COUNT(fw, closed), 1);
    assert_int_equal(COUNT(fw, bytes_out), 10);
    assert_string_equal(fw.trace, "attach send detach release ");
    assert_true(fake_client_eof(&fw));
    fake_worker_fini(&fw);
}

/* ECONNRESET on the write that follows a short one (frame protocol, the rest waiting
 * in the connection's buffer); then on a read. */
static void test_econnreset_mid_reply(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fake_open(&fw, PROTO_FRAME);
    char f[64];
    size_t n = frame(f, "abcdefgh");
    fake_read_data(&fw, f, n);
    fake_write_take(&fw, 5);
    fake_readable(&fw);
    assert_non_null(fw.conn);
    assert_int_equal(buf_len(&fw.conn->out), n - 5);
    fake_write_error(&fw, ECONNRESET);
    fake_writable(&fw);
    assert_null(fw.conn);
    assert_int_equal(buf_len(&fw.seen), 5);
    assert_int_equal(COUNT(fw, resets), 1);
    assert_int_equal(COUNT(fw, closed), 1);
    assert_true(fake_client_eof(&fw));

    fake_open(&fw, PROTO_LINE);
    fake_read_bytes(&fw, "half a li");
    fake_read_error(&fw, ECONNRESET);
    fake_readable(&fw);
    assert_null(fw.conn);
    assert_int_equal(COUNT(fw, resets), 2);
    assert_int_equal(COUNT(fw, closed), 2);
    fake_worker_fini(&fw);
}

/* Any other write error closes too, but is not the peer's doing: not a reset. */
static void test_other_write_error(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fake_open(&fw, PROTO_LINE);
    fake_write_error(&fw, EIO);
    fake_read_bytes(&fw, "x\n");
    enum log_level saved = log_get_level();
    log_set_level(LOG_OFF); /* the warning it logs */
    fake_readable(&fw);
    log_set_level(saved);
    assert_null(fw.conn);
    assert_int_equal(COUNT(fw, resets), 0);
    assert_int_equal(COUNT(fw, closed), 1);
    fake_worker_fini(&fw);
}

/* ---- out of memory ---- */

/* The connection's own allocation fails: the socket is closed at once and counted. */
static void test_nomem_opening(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fail_allocation(0);
    fake_open(&fw, PROTO_LINE);
    assert_int_equal(allocs_failed, 1);
    assert_null(fw.conn);
    assert_int_equal(fw.calls[FAKE_ATTACH], 0);
    assert_int_equal(COUNT(fw, alloc_failures), 1);
    assert_int_equal(COUNT(fw, closed), 1);
    assert_true(fake_client_eof(&fw));
    fake_worker_fini(&fw);
}

/* Keeping a partial message needs memory; without it the connection closes, counted,
 * unanswered. */
static void test_nomem_keeping_a_partial_message(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fake_open(&fw, PROTO_LINE);
    fake_read_bytes(&fw, "no newline yet");
    fake_read_again(&fw);
    enum log_level saved = log_get_level();
    log_set_level(LOG_OFF);
    fail_allocation(0);
    fake_readable(&fw);
    log_set_level(saved);
    assert_int_equal(allocs_failed, 1);
    assert_null(fw.conn);
    assert_string_equal(fake_seen(&fw), "");
    assert_int_equal(COUNT(fw, alloc_failures), 1);
    assert_int_equal(COUNT(fw, closed), 1);
    assert_true(fake_client_eof(&fw));
    fake_worker_fini(&fw);
}

/* The handler cannot grow the reply buffer (replies going into c->out, as with
 * io_uring): the connection closes at once, counted, with nothing half-written. */
static void test_nomem_writing_a_reply(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fake_open(&fw, PROTO_HTTP);
    fake_no_scratch(&fw);
    fake_read_bytes(&fw, HTTP_GET);
    enum log_level saved = log_get_level();
    log_set_level(LOG_OFF);
    fail_allocation(0);
    fake_readable(&fw);
    log_set_level(saved);
    assert_int_equal(allocs_failed, 1);
    assert_null(fw.conn);
    assert_string_equal(fake_seen(&fw), "");
    assert_int_equal(COUNT(fw, alloc_failures), 1);
    assert_int_equal(COUNT(fw, closed), 1);
    assert_true(fake_client_eof(&fw));
    fake_worker_fini(&fw);
}

/* ---- the peer's FIN in the middle of a pipelined batch ---- */

/* "a\nbb\nccc" then EOF, the socket taking one byte per write: both whole lines are
 * answered to the last byte, the cut one is counted as truncated, and only then does
 * the connection close. */
static void test_half_close_mid_batch_line(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fake_open(&fw, PROTO_LINE);
    fw.write_max = 1;
    fake_read_bytes(&fw, "a\nbb\nccc");
    fake_read_eof(&fw);
    fake_readable(&fw);
    assert_non_null(fw.conn);
    assert_int_equal(COUNT(fw, truncated), 1);
    assert_false(fake_client_eof(&fw));
    for (int i = 0; i < 3; i++)
        fake_writable(&fw);
    assert_non_null(fw.conn); /* one byte still to go */
    fake_writable(&fw);
    assert_null(fw.conn);
    assert_string_equal(fake_seen(&fw), "a\nbb\n");
    assert_int_equal(COUNT(fw, messages), 2);
    assert_int_equal(COUNT(fw, closed), 1);
    assert_int_equal(COUNT(fw, resets), 0);
    assert_true(fake_client_eof(&fw));
    fake_worker_fini(&fw);
}

/* Two HTTP requests and half of a third, then EOF. */
static void test_half_close_mid_batch_http(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fake_open(&fw, PROTO_HTTP);
    fake_read_bytes(&fw, HTTP_GET);
    fake_read_bytes(&fw, HTTP_GET);
    fake_read_bytes(&fw, "GET / HT");
    fake_read_eof(&fw);
    fake_readable(&fw);
    drain_writes(&fw);
    assert_null(fw.conn);
    char want[1024];
    snprintf(want, sizeof want, "%s%s", hello_reply(&fw), hello_reply(&fw));
    assert_string_equal(fake_seen(&fw), want);
    assert_int_equal(COUNT(fw, messages), 2);
    assert_int_equal(COUNT(fw, truncated), 1);
    assert_true(fake_client_eof(&fw));
    fake_worker_fini(&fw);
}

/* ---- timers during a partial message ---- */

/* --idle-timeout runs out while a line is half-received: closed, counted, unanswered.
 * Each read pushes the deadline back. */
static void test_idle_timeout_mid_line(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fw.set.idle_timeout_ms = 1000;
    fake_open(&fw, PROTO_LINE);
    fake_read_bytes(&fw, "abc");
    fake_read_again(&fw);
    fake_readable(&fw);
    fake_advance(&fw, 999);
    assert_non_null(fw.conn);
    fake_read_bytes(&fw, "de");
    fake_read_again(&fw);
    fake_readable(&fw);
    fake_advance(&fw, 999);
    assert_non_null(fw.conn);
    assert_false(fake_client_eof(&fw));
    fake_advance(&fw, 1);
    assert_null(fw.conn);
    assert_string_equal(fake_seen(&fw), "");
    assert_int_equal(COUNT(fw, idle_timeouts), 1);
    assert_int_equal(COUNT(fw, header_timeouts), 0);
    assert_int_equal(COUNT(fw, closed), 1);
    assert_true(fake_client_eof(&fw));
    fake_worker_fini(&fw);
}

/* A half-received HTTP request runs on --header-timeout, which a trickle of bytes does
 * not push back; a whole request goes back to the idle deadline. */
static void test_header_timeout_mid_request(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fw.set.idle_timeout_ms = 10000;
    fw.set.header_timeout_ms = 500;
    fake_open(&fw, PROTO_HTTP);
    fake_read_bytes(&fw, HTTP_GET);
    fake_read_again(&fw);
    fake_readable(&fw);
    fake_advance(&fw, 600); /* a whole request: idle, not the header deadline */
    assert_non_null(fw.conn);
    fake_read_bytes(&fw, "GET / HTTP/1.1\r\nHo");
    fake_read_again(&fw);
    fake_readable(&fw);
    fake_advance(&fw, 300);
    fake_read_bytes(&fw, "st: x");
    fake_read_again(&fw);
    fake_readable(&fw);
    fake_advance(&fw, 199);
    assert_non_null(fw.conn);
    fake_advance(&fw, 1);
    assert_null(fw.conn);
    assert_string_equal(fake_seen(&fw), hello_reply(&fw));
    assert_int_equal(COUNT(fw, header_timeouts), 1);
    assert_int_equal(COUNT(fw, idle_timeouts), 0);
    assert_true(fake_client_eof(&fw));
    fake_worker_fini(&fw);
}

/* ---- the stats page, from the counters this worker was handed ---- */

/* GET /stats renders the registry the handler was handed (here the fake worker's own
 * counters): the request before it is counted there, with no server around. */
static void test_stats_page_from_the_handed_registry(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fw.set.stats_allow_all = 1; /* the socketpair is not a loopback address */
    fake_open(&fw, PROTO_HTTP);
    fake_read_bytes(&fw, HTTP_GET);
    fake_read_again(&fw);
    fake_readable(&fw);
    fake_read_bytes(&fw, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n");
    fake_readable(&fw);
    const char *page = fake_seen(&fw) + strlen(hello_reply(&fw));
    if (strncmp(page, "HTTP/1.1 200 OK\r\n", 17) != 0 || !strstr(page, "application/json") ||
        !strstr(page, "\"backend\":\"fake\"") ||
        !strstr(page, "\"workers\":[{\"id\":0,\"active\":1,\"accepted\":1,\"closed\":0,"
                      "\"messages\":1,"))
        fail_msg("unexpected /stats reply:\n%s", page);
    assert_int_equal(COUNT(fw, http_2xx), 2);
    fake_worker_fini(&fw);
}

/* ---- a protocol error: answered, then a lingering close ---- */

/* A line past --max-message gets its error line, then our side shuts down (the client
 * reads the reply, then EOF) while the rest of its input is read and thrown away until
 * its own EOF. */
static void test_protocol_error_lingers(void **state)
{
    (void)state;
    struct fake_worker fw;
    fake_worker_init(&fw);
    fw.set.max_message = 8;
    fake_open(&fw, PROTO_LINE);
    fake_read_bytes(&fw, "ok\nmuch too long for it\n");
    fake_read_again(&fw);
    fake_readable(&fw);
    assert_non_null(fw.conn);
    assert_int_equal(fw.calls[FAKE_LINGER], 1);
    assert_int_equal(COUNT(fw, protocol_errors), 1);
    assert_string_equal(fake_seen(&fw), "ok\nERR line longer than 8 bytes\n");
    assert_true(fake_client_eof(&fw)); /* shut down for writing */
    fake_read_bytes(&fw, "more junk");
    fake_read_again(&fw);
    fake_readable(&fw);
    assert_non_null(fw.conn);
    fake_read_eof(&fw);
    fake_readable(&fw);
    assert_null(fw.conn);
    assert_int_equal(COUNT(fw, closed), 1);
    assert_int_equal(COUNT(fw, messages), 1);
    fake_worker_fini(&fw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_line_split_by_eagain, teardown),
        cmocka_unit_test_teardown(test_frame_split_in_its_header, teardown),
        cmocka_unit_test_teardown(test_http_split_in_its_headers, teardown),
        cmocka_unit_test_teardown(test_write_one_byte_at_a_time, teardown),
        cmocka_unit_test_teardown(test_epipe_mid_reply, teardown),
        cmocka_unit_test_teardown(test_econnreset_mid_reply, teardown),
        cmocka_unit_test_teardown(test_other_write_error, teardown),
        cmocka_unit_test_teardown(test_nomem_opening, teardown),
        cmocka_unit_test_teardown(test_nomem_keeping_a_partial_message, teardown),
        cmocka_unit_test_teardown(test_nomem_writing_a_reply, teardown),
        cmocka_unit_test_teardown(test_half_close_mid_batch_line, teardown),
        cmocka_unit_test_teardown(test_half_close_mid_batch_http, teardown),
        cmocka_unit_test_teardown(test_idle_timeout_mid_line, teardown),
        cmocka_unit_test_teardown(test_header_timeout_mid_request, teardown),
        cmocka_unit_test_teardown(test_protocol_error_lingers, teardown),
        cmocka_unit_test_teardown(test_stats_page_from_the_handed_registry, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
