/* status_page: the response to GET /status, rendered from a registry with known
 * counters. The page's script is exercised in a real browser by
 * tests/browser/test_status_page.py; here: the snapshot's numbers, their text for
 * people, both slots filled, the headers, HEAD, and the size budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../server/option_table.h"
#include "../../server/stats.h"
#include "../../server/status_page.h"

static struct config cfg;
static struct worker_stats workers[2];
static struct acceptor_stats acceptors[2];
static struct stats_registry reg;
static struct http_cache hc;

/* Two workers, each with its own acceptor (as with --dispatch reuseport). */
static int setup(void **state)
{
    (void)state;
    char err[256];
    options_apply_defaults(&cfg);
    if (options_default_listeners(&cfg, err, sizeof err) < 0)
        return -1;
    cfg.workers = 2;
    cfg.set.max_conns = 900;
    memset(workers, 0, sizeof workers);
    memset(acceptors, 0, sizeof acceptors);
    counter_add(&workers[0].accepted, 10);
    counter_add(&workers[0].closed, 3);
    counter_add(&workers[0].messages, 12345);
    counter_add(&workers[0].idle_timeouts, 2);
    counter_add(&workers[0].header_timeouts, 1);
    counter_add(&workers[1].messages, 999);
    counter_add(&workers[1].bytes_in, 4299161); /* 4.1 MiB */
    counter_add(&workers[1].bytes_out, 1000);
    counter_add(&acceptors[1].rejected_no_fd, 5);
    counter_add(&acceptors[1].rejected_max_conns, 2);
    reg = (struct stats_registry){.cfg = &cfg, .n_workers = 2, .n_acceptors = 2,
                                  .capacity = 1000, .backend = "epoll"};
    for (int i = 0; i < 2; i++) {
        reg.workers[i] = &workers[i];
        reg.acceptors[i] = &acceptors[i];
    }
    http_cache_refresh(&hc, 0);
    return 0;
}

/* The response as a NUL-terminated string; *body: where the body starts. */
static const char *reply(struct buf *out, int draining, unsigned flags, const char **body)
{
    assert_int_equal(status_page_reply(out, &hc, &reg, &cfg.set, draining, flags), 0);
    assert_int_equal(buf_reserve(out, 1), 0);
    buf_tail(out)[0] = '\0';
    const char *r = buf_head(out);
    *body = strstr(r, "\r\n\r\n");
    assert_non_null(*body);
    *body += 4;
    return r;
}

static void expect_in(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("missing %s", want);
}

static void test_snapshot_numbers(void **state)
{
    (void)state;
    struct buf out = {0};
    const char *body, *r = reply(&out, 0, 0, &body);
    expect_in(r, "HTTP/1.1 200 OK\r\n");
    expect_in(r, "Content-Type: text/html; charset=utf-8\r\n");
    char len[64];
    snprintf(len, sizeof len, "Content-Length: %zu\r\n", strlen(body));
    expect_in(r, len);
    assert_null(strstr(body, "<!--")); /* both slots filled, no marker left */
    expect_in(body, "<b data-k=\"totals.active\" data-v=\"7\">7</b>");
    expect_in(body, "<td data-k=\"workers.0.messages\" data-v=\"12345\">12.3k</td>");
    expect_in(body, "<td data-k=\"workers.1.messages\" data-v=\"999\">999</td>");
    expect_in(body, "<td data-k=\"workers.1.bytes_in\" data-v=\"4299161\">4.1 MiB</td>");
    expect_in(body, "<td data-k=\"workers.1.bytes_out\" data-v=\"1000\">1000 B</td>");
    expect_in(body, "<td data-k=\"=w0.timeouts\" data-v=\"3\">3</td>");
    expect_in(body, "<td data-k=\"=w1.shed\" data-v=\"7\">7</td>"); /* its own acceptor's */
    expect_in(body, "<td data-k=\"config.max_conns\" data-v=\"900\">900</td>");
    expect_in(body, "<td data-k=\"capacity\" data-v=\"1000\">1.00k</td>");
    expect_in(body, "<td data-k=\"acceptor.rejected_no_fd\" data-v=\"5\">5</td>");
    expect_in(body, "<td data-k=\"files.limit\"");
    expect_in(body, ">serving</span>");
    expect_in(body, "<code>raw://127.0.0.1:9000</code>");
    expect_in(body, "<noscript>");
    expect_in(body, "</html>");
    assert_true(strlen(body) <= 16 * 1024);
    buf_release(&out);
}

static void test_draining_and_head(void **state)
{
    (void)state;
    struct buf out = {0};
    const char *body, *r = reply(&out, 1, 0, &body);
    expect_in(body, "<span class=\"st draining\" id=\"state\" data-k=\"drain.state\">"
                    "draining</span>");
    buf_release(&out);
    out = (struct buf){0};
    r = reply(&out, 0, REPLY_HEAD, &body);
    assert_string_equal(body, ""); /* the headers only, with the GET's length */
    const char *len = strstr(r, "Content-Length: ");
    assert_non_null(len);
    assert_true(strtoul(len + 16, NULL, 10) > 8192);
    buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_snapshot_numbers, setup),
        cmocka_unit_test_setup(test_draining_and_head, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
