/* accept_ctx: the admit path of server/accept_ctx.c over a real loopback listener and
 * real clients, with the process's file table faked full. The test is linked with
 * accept4, open, close, clock_gettime and log_msg wrapped (build.mk, WRAP_test_accept):
 *
 *   - "the table is full" (EMFILE, or ENFILE for the system's) is modelled, not just
 *     returned: while it is, accept4 and open fail unless a descriptor was closed since,
 *     so shedding works only if the reserve descriptor really is given up first;
 *   - the monotonic clock is frozen and moved by the test (the once-a-second log);
 *   - log lines are recorded instead of written.
 *
 * What the client sees is read from its own socket: a shed connection reads EOF at
 * once instead of waiting in the backlog. The counters are the accept_ctx's own, and
 * live connections for --max-conns come from a registry value built here. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../common/log.h"
#include "../../server/accept_ctx.h"
#include "../../server/stats.h"

/* ---- the faked file table ---- */
int __real_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);
int __real_open(const char *path, int flags, ...);
int __real_close(int fd);
int __real_clock_gettime(clockid_t id, struct timespec *ts);
void __real_log_msg(enum log_level level, const char *fmt, ...);
int __wrap_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);
int __wrap_open(const char *path, int flags, ...);
int __wrap_close(int fd);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts);
void __wrap_log_msg(enum log_level level, const char *fmt, ...);

static int table_full;   /* 0, or the errno a new descriptor gets: EMFILE or ENFILE */
static int table_room;   /* descriptors closed since the table filled up */

/* A new descriptor, if the faked table has room for it. */
static int take_slot(void)
{
    if (!table_full)
        return 1;
    if (table_room == 0) {
        errno = table_full;
        return 0;
    }
    table_room--;
    return 1;
}

int __wrap_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
    /* As the kernel does, the descriptor is found before the queue is looked at. */
    if (!take_slot())
        return -1;
    int r = __real_accept4(fd, sa, len, flags);
    if (r < 0 && table_full)
        table_room++;
    return r;
}

int __wrap_open(const char *path, int flags, ...)
{
    if (!take_slot())
        return -1;
    int r = __real_open(path, flags);
    if (r < 0 && table_full)
        table_room++;
    return r;
}

int __wrap_close(int fd)
{
    int r = __real_close(fd);
    if (r == 0 && table_full)
        table_room++;
    return r;
}

/* ---- the clock, frozen ---- */
static int clock_frozen;
static struct timespec frozen_at;

int __wrap_clock_gettime(clockid_t id, struct timespec *ts)
{
    if (!clock_frozen || (id != CLOCK_MONOTONIC && id != CLOCK_MONOTONIC_COARSE))
        return __real_clock_gettime(id, ts);
    *ts = frozen_at;
    return 0;
}

static void clock_advance_ms(long ms)
{
    frozen_at.tv_sec += ms / 1000;
    frozen_at.tv_nsec += (ms % 1000) * 1000000L;
    if (frozen_at.tv_nsec >= 1000000000L) {
        frozen_at.tv_sec++;
        frozen_at.tv_nsec -= 1000000000L;
    }
}

/* ---- the log, recorded ---- */
#define MAX_LINES 16
static char lines[MAX_LINES][512];
static int n_lines;

void __wrap_log_msg(enum log_level level, const char *fmt, ...)
{
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    if (n_lines < MAX_LINES)
        vsnprintf(lines[n_lines++], sizeof lines[0], fmt, ap);
    va_end(ap);
}

/* ---- a listener, clients, and the accept_ctx under test ---- */
static struct accept_ctx a;
static struct stats_registry reg;
static struct worker_stats worker;
static int delivered[64], n_delivered;
static int clients[16], n_clients;

static void deliver(void *arg, int fd, uint8_t proto, uint32_t peer)
{
    (void)arg;
    (void)proto;
    (void)peer;
    assert_true(n_delivered < 64);
    delivered[n_delivered++] = fd;
}

static int setup(void **state)
{
    (void)state;
    table_full = table_room = 0;
    n_lines = n_delivered = n_clients = 0;
    clock_frozen = 1;
    __real_clock_gettime(CLOCK_MONOTONIC, &frozen_at);
    frozen_at.tv_sec += 100; /* well past the "last report" at 0 */
    memset(&worker, 0, sizeof worker);
    reg = (struct stats_registry){.n_workers = 1};
    reg.workers[0] = &worker;
    accept_ctx_init(&a, 0);
    a.registry = &reg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 16) < 0)
        return -1;
    a.listeners[0] = (struct listener){.fd = fd};
    a.listeners[0].ep.proto = PROTO_LINE;
    a.n_listeners = 1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    table_full = 0;
    clock_frozen = 0;
    accept_ctx_close(&a);
    for (int i = 0; i < n_delivered; i++)
        close(delivered[i]);
    for (int i = 0; i < n_clients; i++)
        close(clients[i]);
    return 0;
}

/* A client connects (it waits in the listener's backlog); returns its socket. */
static int connect_client(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(a.listeners[0].fd, (struct sockaddr *)&sin, &len), 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, len), 0);
    clients[n_clients++] = fd;
    return fd;
}

/* What the client reads within a second: 1 for EOF (or a reset: closed on it), 0 when
 * nothing came (still waiting). */
static int client_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 1000) != 1)
        return 0;
    char b[16];
    ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Whether the client is still queued, unanswered (polled briefly). */
static int client_waiting(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 50) == 0;
}

static int reserve_open(void) { return a.reserve_fd >= 0 && fcntl(a.reserve_fd, F_GETFD) >= 0; }

/* ---- tests ---- */

/* The table is full: the reserve descriptor is given up, the waiting connection is
 * taken and closed at once (its client reads EOF), the reserve is taken back, and one
 * line is logged. */
static void shed_through_the_reserve(int err, const char *why)
{
    int c = connect_client();
    table_full = err;
    assert_int_equal(accept_drain(&a, &a.listeners[0], deliver, NULL), 1);
    assert_int_equal(n_delivered, 0);
    assert_int_equal(counter_get(&a.stats.rejected_no_fd), 1);
    assert_int_equal(counter_get(&a.stats.accept_errors), 0);
    assert_int_equal(a.paused_until_ms, 0);
    assert_true(reserve_open());
    assert_true(client_closed(c));
    assert_int_equal(n_lines, 1);
    if (!strstr(lines[0], why) || !strstr(lines[0], "(1 since the last report)"))
        fail_msg("unexpected log line: %s", lines[0]);
    /* Room again: the next client is served. */
    table_full = 0;
    int d = connect_client();
    assert_int_equal(accept_drain(&a, &a.listeners[0], deliver, NULL), 0);
    assert_int_equal(n_delivered, 1);
    assert_true(client_waiting(d));
}

static void test_emfile_sheds_through_the_reserve(void **state)
{
    (void)state;
    shed_through_the_reserve(EMFILE, strerror(EMFILE));
}

static void test_enfile_sheds_through_the_reserve(void **state)
{
    (void)state;
    shed_through_the_reserve(ENFILE, strerror(ENFILE));
}

/* Shedding is logged at most once a second, with what was shed since. */
static void test_shed_log_once_a_second(void **state)
{
    (void)state;
    table_full = EMFILE;
    int c[4];
    for (int i = 0; i < 3; i++) {
        c[i] = connect_client();
        accept_drain(&a, &a.listeners[0], deliver, NULL);
        assert_true(client_closed(c[i]));
        clock_advance_ms(400);
    }
    assert_int_equal(counter_get(&a.stats.rejected_no_fd), 3);
    assert_int_equal(n_lines, 1); /* at 0 ms; 400 and 800 ms were inside its second */
    clock_advance_ms(200);        /* 1000 ms since the report */
    c[3] = connect_client();
    accept_drain(&a, &a.listeners[0], deliver, NULL);
    assert_true(client_closed(c[3]));
    assert_int_equal(counter_get(&a.stats.rejected_no_fd), 4);
    assert_int_equal(n_lines, 2);
    if (!strstr(lines[1], "(3 since the last report)"))
        fail_msg("unexpected log line: %s", lines[1]);
    assert_true(reserve_open());
    assert_int_equal(n_delivered, 0);
}

/* Without a reserve (it could not be reopened), accepting pauses instead of spinning:
 * the client stays queued and is served once the pause is over and there is room. */
static void test_no_reserve_pauses(void **state)
{
    (void)state;
    close(a.reserve_fd);
    a.reserve_fd = -1;
    int c = connect_client();
    table_full = EMFILE;
    assert_int_equal(accept_drain(&a, &a.listeners[0], deliver, NULL), 1);
    assert_true(a.paused_until_ms > 0);
    assert_int_equal(counter_get(&a.stats.rejected_no_fd), 1);
    assert_true(client_waiting(c));
    table_full = 0;
    clock_advance_ms(50);
    assert_int_equal(accept_drain(&a, &a.listeners[0], deliver, NULL), 1); /* still paused */
    assert_int_equal(n_delivered, 0);
    clock_advance_ms(50);
    assert_int_equal(accept_drain(&a, &a.listeners[0], deliver, NULL), 0);
    assert_int_equal(n_delivered, 1);
    assert_int_equal(a.paused_until_ms, 0);
}

/* --max-conns counts the live connections of the registry it was handed: at the limit
 * a new connection is accepted and closed, counted; below it, delivered. */
static void test_max_conns_from_the_registry(void **state)
{
    (void)state;
    atomic_store(&a.max_conns, 2);
    counter_add(&worker.accepted, 5);
    counter_add(&worker.closed, 3); /* 2 live */
    int c = connect_client();
    assert_int_equal(accept_drain(&a, &a.listeners[0], deliver, NULL), 0);
    assert_int_equal(n_delivered, 0);
    assert_int_equal(counter_get(&a.stats.rejected_max_conns), 1);
    assert_int_equal(counter_get(&a.stats.accepted), 1);
    assert_true(client_closed(c));
    counter_add(&worker.closed, 1); /* 1 live */
    int d = connect_client();
    assert_int_equal(accept_drain(&a, &a.listeners[0], deliver, NULL), 0);
    assert_int_equal(n_delivered, 1);
    assert_true(client_waiting(d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_emfile_sheds_through_the_reserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enfile_sheds_through_the_reserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shed_log_once_a_second, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_reserve_pauses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_conns_from_the_registry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
