/* stats: /stats JSON and /metrics text rendered from counters set here, through the
 * registry value handed to them (no server, no global). The JSON is read back by a small validating
 * parser (RFC 8259 grammar); the Prometheus text is checked line by line against the
 * text exposition format: HELP and TYPE before a family's samples, valid names, one
 * line per series. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../common/version.h"
#include "../../server/drain_state.h"
#include "../../server/handoff.h"
#include "../../server/listener.h"
#include "../../server/metrics.h"
#include "../../server/option_table.h"
#include "../../server/stats.h"

/* ---- a validating JSON reader: returns the end of the value at p, or NULL ---- */
static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL; /* control characters (and the end of the text) */
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i]))
                        return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return p + 1;
}

static const char *json_number(const char *p)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (isdigit((unsigned char)*p))
            p++;
    else
        return NULL;
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p))
            return NULL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return NULL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return p;
}

/* An object ('{', members '}') or an array ('[', elements, ']'), p past the opener. */
static const char *json_container(const char *p, char close, int depth)
{
    p = json_ws(p);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (close == '}') {
            if (!(p = json_string(json_ws(p))) || *(p = json_ws(p)) != ':')
                return NULL;
            p++;
        }
        if (!(p = json_value(p, depth + 1)))
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *json_value(const char *p, int depth)
{
    if (depth > 32)
        return NULL;
    p = json_ws(p);
    switch (*p) {
    case '{': return json_container(p + 1, '}', depth);
    case '[': return json_container(p + 1, ']', depth);
    case '"': return json_string(p);
    case 't': return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f': return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n': return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default: return json_number(p);
    }
}

/* The whole text is one JSON value, with only white space after it. */
static int json_valid(const char *text)
{
    const char *end = json_value(text, 0);
    return end && *json_ws(end) == '\0';
}

static void test_json_reader_itself(void **state)
{
    (void)state;
    static const char *const good[] = {"{}", "[]", "{\"a\":[1,-2.5e3,true,null,\"x\\n\"]}",
                                       " {\"a\" : {\"b\":0}} \n", "\"\\u00e9\"", "0"};
    static const char *const bad[] = {"{", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "{a:1}", "01",
                                      "[1] [2]", "\"\x01\"", "{\"a\":1}}", "-", "1.", "tru"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (!json_valid(good[i]))
            fail_msg("refused valid JSON: %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (json_valid(bad[i]))
            fail_msg("accepted invalid JSON: %s", bad[i]);
}

/* ---- the Prometheus text exposition format ---- */
#define MAX_SERIES 512

struct prom_state {
    char family[128];  /* the family whose samples may follow */
    int help_seen, type_seen;
    char *families[MAX_SERIES], *series[MAX_SERIES];
    int n_families, n_series;
    char why[256]; /* what was wrong, when a check returns -1 */
};

static int prom_fail(struct prom_state *st, const char *what, const char *line)
{
    snprintf(st->why, sizeof st->why, "%s: %s", what, line);
    return -1;
}

static int metric_name_len(const char *p, int label)
{
    int n = 0;
    while (isalpha((unsigned char)p[n]) || p[n] == '_' || (!label && p[n] == ':') ||
           (n > 0 && isdigit((unsigned char)p[n])))
        n++;
    return n;
}

/* {name="value",...}: returns the end past '}', or NULL. */
static const char *prom_labels(const char *p)
{
    if (*p++ != '{')
        return NULL;
    while (*p != '}') {
        int n = metric_name_len(p, 1);
        if (n == 0 || p[n] != '=' || p[n + 1] != '"')
            return NULL;
        for (p += n + 2; *p != '"'; p++) {
            if (*p == '\\') { /* an escape: \\, \" or \n only */
                if (!p[1] || !strchr("\\\"n", p[1]))
                    return NULL;
                p++;
            } else if (!*p || *p == '\n') {
                return NULL;
            }
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return NULL;
    }
    return p + 1;
}

static int prom_comment(struct prom_state *st, const char *line)
{
    int help = strncmp(line, "# HELP ", 7) == 0, type = strncmp(line, "# TYPE ", 7) == 0;
    if (!help && !type)
        return 0; /* any other comment is allowed */
    const char *name = line + 7;
    int n = metric_name_len(name, 0);
    if (n == 0 || name[n] != ' ' || n >= (int)sizeof st->family)
        return prom_fail(st, "bad metric name in", line);
    if (help) {
        snprintf(st->family, sizeof st->family, "%.*s", n, name);
        for (int i = 0; i < st->n_families; i++)
            if (strcmp(st->families[i], st->family) == 0)
                return prom_fail(st, "family described twice", line);
        assert_true(st->n_families < MAX_SERIES);
        st->families[st->n_families++] = strdup(st->family);
        st->help_seen = 1, st->type_seen = 0;
        if (name[n + 1] == '\0')
            return prom_fail(st, "HELP without text", line);
        return 0;
    }
    if (!st->help_seen || strncmp(name, st->family, (size_t)n) != 0 || st->family[n] != '\0')
        return prom_fail(st, "TYPE without its HELP first", line);
    if (st->type_seen)
        return prom_fail(st, "second TYPE", line);
    if (strcmp(name + n + 1, "counter") != 0 && strcmp(name + n + 1, "gauge") != 0)
        return prom_fail(st, "TYPE neither counter nor gauge", line);
    st->type_seen = 1;
    return 0;
}

static int prom_sample(struct prom_state *st, const char *line)
{
    int n = metric_name_len(line, 0);
    if (n == 0)
        return prom_fail(st, "bad sample line", line);
    if (!st->help_seen || !st->type_seen || strncmp(line, st->family, (size_t)n) != 0 ||
        st->family[n] != '\0')
        return prom_fail(st, "sample not under its family's HELP and TYPE", line);
    const char *p = line + n;
    if (*p == '{' && !(p = prom_labels(p)))
        return prom_fail(st, "bad labels", line);
    if (*p != ' ')
        return prom_fail(st, "no space before the value", line);
    char *end;
    strtod(p + 1, &end);
    if (end == p + 1 || *end != '\0')
        return prom_fail(st, "bad value", line);
    char *key = strndup(line, (size_t)(p - line));
    assert_true(st->n_series < MAX_SERIES);
    st->series[st->n_series++] = key; /* freed by prom_check, also when a duplicate */
    for (int i = 0; i < st->n_series - 1; i++)
        if (strcmp(st->series[i], key) == 0)
            return prom_fail(st, "duplicate series", key);
    return 0;
}

/* Checks text: the number of series it has, or -1 with the reason in why (256 bytes). */
static int prom_check(const char *text, char *why)
{
    struct prom_state st = {0};
    int rc = 0;
    if (!*text || text[strlen(text) - 1] != '\n' || strstr(text, "\n\n"))
        rc = prom_fail(&st, "empty, blank line or no final newline", "");
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save))
        rc = line[0] == '#' ? prom_comment(&st, line) : prom_sample(&st, line);
    for (int i = 0; i < st.n_families; i++)
        free(st.families[i]);
    for (int i = 0; i < st.n_series; i++)
        free(st.series[i]);
    free(copy);
    snprintf(why, 256, "%s", st.why);
    return rc < 0 ? -1 : st.n_series;
}

static void test_prometheus_checker_itself(void **state)
{
    (void)state;
    char why[256];
    static const char ok[] = "# HELP a_total some help\n# TYPE a_total counter\n"
                             "a_total{w=\"0\"} 1\na_total{w=\"1\",x=\"q\\\"\"} 2.5\n"
                             "# HELP b:c gauge\n# TYPE b:c gauge\nb:c -3\n";
    if (prom_check(ok, why) != 3)
        fail_msg("refused good text: %s", why);
    static const char *const bad[] = {
        "a 1\n",                                                   /* no HELP, TYPE */
        "# TYPE a counter\na 1\n",                                 /* TYPE before HELP */
        "# HELP a h\na 1\n",                                       /* no TYPE */
        "# HELP a h\n# TYPE a summary\na 1\n",                    /* not counter|gauge */
        "# HELP a h\n# TYPE a counter\nb 1\n",                    /* another family */
        "# HELP a h\n# TYPE a counter\na{w=\"0\"} 1\na{w=\"0\"} 2\n", /* duplicate */
        "# HELP a h\n# TYPE a counter\na{w=0} 1\n",               /* unquoted label */
        "# HELP a h\n# TYPE a counter\na{0w=\"0\"} 1\n",          /* bad label name */
        "# HELP a h\n# TYPE a counter\na one\n",                  /* bad value */
        "# HELP a h\n# TYPE a counter\na{w=\"\\x\"} 1\n",         /* bad escape */
        "# HELP a h\n# TYPE a counter\na{w=\"\\\n",               /* cut short */
        "# HELP a h\n# TYPE a counter\na\n",                      /* no value */
        "# HELP 9a h\n# TYPE 9a counter\n9a 1\n",                 /* bad metric name */
        "# HELP a h\n# TYPE a counter\na 1\n# HELP a h\n# TYPE a counter\n", /* twice */
        "# HELP a h\n# TYPE a counter\na 1",                       /* no last newline */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (prom_check(bad[i], why) >= 0)
            fail_msg("accepted bad text %zu:\n%s", i, bad[i]);
}

/* ---- a registry with known counters: two workers, one acceptor ---- */
static struct config cfg;
static struct worker_stats workers[2];
static struct acceptor_stats acceptor;
static struct stats_registry reg;
static struct handoff handoffs[2];

static int setup(void **state)
{
    (void)state;
    char err[256];
    options_apply_defaults(&cfg);
    if (options_default_listeners(&cfg, err, sizeof err) < 0)
        return -1;
    cfg.workers = 2;
    memset(workers, 0, sizeof workers);
    memset(&acceptor, 0, sizeof acceptor);
    counter_add(&workers[0].accepted, 10);
    counter_add(&workers[0].closed, 3);
    counter_add(&workers[0].messages, 12345);
    counter_add(&workers[0].http_4xx, 6);
    counter_add(&workers[1].accepted, 7);
    counter_add(&workers[1].closed, 7);
    counter_add(&workers[1].messages, 55);
    counter_add(&workers[1].bytes_in, 987654321);
    counter_add(&workers[1].uring_sq_stalls, 2);
    counter_add(&workers[1].header_timeouts, 4);
    counter_add(&acceptor.accepted, 17);
    counter_add(&acceptor.rejected_per_ip, 42);
    counter_sub(&acceptor.rejected_per_ip, 1);
    reg = (struct stats_registry){.cfg = &cfg, .n_workers = 2, .n_acceptors = 1,
                                  .capacity = 1000, .backend = "epoll"};
    reg.workers[0] = &workers[0];
    reg.workers[1] = &workers[1];
    reg.acceptors[0] = &acceptor;
    for (int i = 0; i < 2; i++) {
        if (handoff_init(&handoffs[i]) < 0)
            return -1;
        reg.handoffs[i] = &handoffs[i];
    }
    struct handoff_item queued[3] = {{.fd = -1}, {.fd = -1}, {.fd = -1}};
    return handoff_push(&handoffs[1], queued, 3);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        handoffs[i].n = 0; /* the items are not sockets */
        handoff_destroy(&handoffs[i]);
    }
    return 0;
}

/* out as a NUL-terminated string (the buffer keeps its length). */
static const char *text_of(struct buf *out)
{
    assert_int_equal(buf_reserve(out, 1), 0);
    buf_tail(out)[0] = '\0';
    return buf_head(out);
}

static void expect_in(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("missing %s in:\n%s", want, text);
}

static void test_json_parses_and_has_the_counters(void **state)
{
    (void)state;
    struct buf out = {0};
    assert_int_equal(stats_render_json(&out, &reg, &cfg.set), 0);
    const char *j = text_of(&out);
    if (!json_valid(j))
        fail_msg("/stats is not JSON:\n%s", j);
    expect_in(j, "{\"server\":\"wharfd\",");
    expect_in(j, "\"backend\":\"epoll\"");
    expect_in(j, "\"capacity\":1000,");
    expect_in(j, "\"listen\":[\"raw://127.0.0.1:9000\",\"http://127.0.0.1:8080\"]");
    expect_in(j, "\"totals\":{\"active\":7,\"accepted\":17,\"closed\":10,\"messages\":12400,");
    expect_in(j, "\"bytes_in\":987654321,");
    expect_in(j, "\"acceptor\":{\"accepted\":17,\"rejected_max_conns\":0,\"rejected_no_fd\":0,"
                 "\"rejected_per_ip\":41,\"accept_errors\":0}");
    expect_in(j, "\"workers\":[{\"id\":0,\"active\":7,\"accepted\":10,\"closed\":3,"
                 "\"messages\":12345,");
    expect_in(j, "{\"id\":1,\"active\":0,\"accepted\":7,\"closed\":7,\"messages\":55,");
    expect_in(j, "\"uring_sq_stalls\":2,");
    expect_in(j, "\"udp_icmp_errors\":0,");
    expect_in(j, "\"udp_ring_nobufs\":0}],\"files\":{\"open\":");
    /* added last: each acceptor's own counters */
    expect_in(j, "\"acceptors\":[{\"accepted\":17,\"rejected_max_conns\":0,\"rejected_no_fd\":0,"
                 "\"rejected_per_ip\":41,\"accept_errors\":0}],");
    /* without --max-conns-per-ip there is no table of addresses to show */
    expect_in(j, "}],\"top_peers\":null}\n");
    buf_release(&out);
}

/* Every counter of the X-macro lists is in the JSON, per worker and in the totals
 * (accepted: in the acceptor's sum and in its own entry too). */
#define EXPECT_JSON_KEY(name, metric, labels, help)                                           \
    assert_int_equal(count_of(j, "\"" #name "\":"), 2 + 1 + 2 * (strcmp(#name, "accepted") == 0));
#define EXPECT_ACCEPTOR_KEY(name, metric, labels, help)                                       \
    assert_non_null(strstr(acc, "\"" #name "\":"));

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_json_has_every_counter(void **state)
{
    (void)state;
    struct buf out = {0};
    assert_int_equal(stats_render_json(&out, &reg, &cfg.set), 0);
    const char *j = text_of(&out);
    WORKER_COUNTERS(EXPECT_JSON_KEY)
    const char *acc = strstr(j, "\"acceptor\":{");
    assert_non_null(acc);
    ACCEPTOR_COUNTERS(EXPECT_ACCEPTOR_KEY)
    buf_release(&out);
}

static void test_prometheus_format_and_values(void **state)
{
    (void)state;
    struct buf out = {0};
    assert_int_equal(metrics_render(&out, &reg, &cfg.set), 0);
    const char *t = text_of(&out);
    char why[256];
    int n = prom_check(t, why);
    if (n < 0)
        fail_msg("/metrics: %s", why);
    /* per worker: active, handoff queue and each counter; each acceptor counter; build
     * info, capacity; the drain state (one per phase) and the drain delay; six process_* */
#define ONE(name, metric, labels, help) +1
    assert_int_equal(n, 2 * (2 WORKER_COUNTERS(ONE)) + (0 ACCEPTOR_COUNTERS(ONE)) + 2 + 4 + 6);
#undef ONE
    expect_in(t, "\nwharf_connections_active{worker=\"0\"} 7\n");
    expect_in(t, "\nwharf_connections_active{worker=\"1\"} 0\n");
    expect_in(t, "\nwharf_handoff_queue_length{worker=\"1\"} 3\n");
    expect_in(t, "\nwharf_messages_total{worker=\"0\"} 12345\n");
    expect_in(t, "\nwharf_messages_total{worker=\"1\"} 55\n");
    expect_in(t, "\nwharf_received_bytes_total{worker=\"1\"} 987654321\n");
    expect_in(t, "\nwharf_http_responses_total{worker=\"0\",code=\"4xx\"} 6\n");
    expect_in(t, "\nwharf_http_responses_total{worker=\"0\",code=\"2xx\"} 0\n");
    expect_in(t, "\nwharf_timeouts_total{worker=\"1\",kind=\"header\"} 4\n");
    expect_in(t, "\nwharf_connections_rejected_total{reason=\"per_ip\"} 41\n");
    expect_in(t, "\nwharf_connections_accepted_total 17\n");
    expect_in(t, "\nwharf_connections_capacity 1000\n");
    expect_in(t, "\nwharf_build_info{version=\"" WHARF_VERSION "\",backends=\"" WHARF_BACKENDS
                 "\"} 1\n");
    expect_in(t, "# TYPE wharf_connections_active gauge\n");
    expect_in(t, "# TYPE wharf_messages_total counter\n");
    expect_in(t, "# TYPE wharf_http_responses_total counter\n");
    expect_in(t, "# TYPE process_cpu_seconds_total counter\n");
    expect_in(t, "\nprocess_max_fds ");
    expect_in(t, "\nprocess_start_time_seconds 1");
    /* none of the names the rename retired */
    assert_null(strstr(t, "wharf_http_4xx_total"));
    assert_null(strstr(t, "wharf_bytes_in_total"));
    assert_null(strstr(t, "wharf_uptime_seconds"));
    buf_release(&out);
}

/* Appended to what the buffer holds, as a worker does to its output. */
static void test_render_appends(void **state)
{
    (void)state;
    struct buf out = {0};
    assert_int_equal(buf_append(&out, "HEAD", 4), 0);
    assert_int_equal(stats_render_json(&out, &reg, &cfg.set), 0);
    assert_memory_equal(buf_head(&out), "HEAD{", 5);
    buf_release(&out);
}

static void test_totals(void **state)
{
    (void)state;
    struct stats_totals t;
    stats_totals(&reg, &t);
    assert_int_equal(t.accepted, 17);
    assert_int_equal(t.closed, 10);
    assert_int_equal(t.active, 7);
    assert_int_equal(t.messages, 12400);
    assert_int_equal(t.bytes_in, 987654321);
    assert_int_equal(stats_active_connections(&reg), 7);
}

/* The stop sequence's phase and --drain-delay, as /stats and /metrics show them. */
static void test_drain_state_shown(void **state)
{
    (void)state;
    struct buf out = {0};
    assert_int_equal(stats_render_json(&out, &reg, &cfg.set), 0);
    expect_in(text_of(&out), ",\"drain\":{\"state\":\"serving\",\"delay_ms\":0}");
    buf_release(&out);
    cfg.set.drain_delay_ms = 1500;
    drain_state_set(DRAIN_DELAY);
    assert_int_equal(stats_render_json(&out, &reg, &cfg.set), 0);
    const char *j = text_of(&out);
    expect_in(j, ",\"drain\":{\"state\":\"delay\",\"delay_ms\":1500}");
    assert_true(json_valid(j));
    buf_release(&out);
    assert_int_equal(metrics_render(&out, &reg, &cfg.set), 0);
    const char *t = text_of(&out);
    expect_in(t, "\nwharf_drain_state{state=\"serving\"} 0\n");
    expect_in(t, "\nwharf_drain_state{state=\"delay\"} 1\n");
    expect_in(t, "\nwharf_drain_state{state=\"draining\"} 0\n");
    expect_in(t, "\nwharf_drain_delay_seconds 1.500\n");
    buf_release(&out);
    drain_state_set(DRAIN_SERVING); /* only this test goes back: the server never does */
}

/* The listen queue, from TCP_INFO on a real listening socket: two connections the
 * kernel completed and nobody accepted, against a backlog of 8; a closed one is left out. */
static void test_listen_queue_gauges(void **state)
{
    (void)state;
    struct listener l[2];
    struct listen_spec spec;
    char err[256];
    struct sockopts so = {0};
    struct listen_opts o = {.backlog = 8, .sock = &so};
    assert_int_equal(listen_spec_parse("line://127.0.0.1:0", &spec, err, sizeof err), 0);
    assert_int_equal(listener_open(&l[0], &spec, &o, err, sizeof err), 0);
    assert_int_equal(listen_spec_parse("http://127.0.0.1:0", &spec, err, sizeof err), 0);
    assert_int_equal(listener_open(&l[1], &spec, &o, err, sizeof err), 0);
    int c[2];
    for (int i = 0; i < 2; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(c[i] >= 0);
        assert_int_equal(connect(c[i], (struct sockaddr *)&l[0].ep.sa, l[0].ep.sa_len), 0);
    }
    listener_close(&l[1]); /* as when draining: its descriptor is no listener any more */
    reg.listeners = l;
    reg.n_listeners = 2;
    struct buf out = {0};
    assert_int_equal(metrics_render(&out, &reg, &cfg.set), 0);
    const char *t = text_of(&out);
    if (prom_check(t, err) < 0)
        fail_msg("/metrics: %s", err);
    char addr[ADDR_TEXT_MAX], want[256];
    addr_format((const struct sockaddr *)&l[0].ep.sa, addr, sizeof addr);
    snprintf(want, sizeof want, "\nwharf_listen_queue_length{listener=\"%s\",proto=\"line\"} 2\n",
             addr);
    expect_in(t, want);
    snprintf(want, sizeof want, "\nwharf_listen_queue_limit{listener=\"%s\",proto=\"line\"} 8\n",
             addr);
    expect_in(t, want);
    assert_null(strstr(t, "proto=\"http\""));
    buf_release(&out);
    for (int i = 0; i < 2; i++)
        close(c[i]);
    listener_close(&l[0]);
    reg.listeners = NULL;
    reg.n_listeners = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_reader_itself),
        cmocka_unit_test(test_prometheus_checker_itself),
        cmocka_unit_test_setup_teardown(test_json_parses_and_has_the_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_has_every_counter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prometheus_format_and_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_totals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_state_shown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_queue_gauges, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
