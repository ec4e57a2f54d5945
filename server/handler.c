#include "handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/http_parse.h"
#include "metrics.h"
#include "peer.h"
#include "status_page.h"

static void handle_raw(const struct handler_env *env, struct handler_io *io, const char *data,
                       size_t len)
{
    if (buf_reserve(io->out, len) < 0) {
        io->verdict = HANDLER_NOMEM;
        return;
    }
    mode_apply(env->mode, data, len, buf_tail(io->out));
    buf_commit(io->out, len);
    io->consumed = len;
    io->messages = 1;
}

/* Frame replies: the same 4-byte length, then the transformed payload. */
static int reply_frame(const struct handler_env *env, struct buf *out, const struct codec_msg *m)
{
    if (buf_reserve(out, FRAME_HEADER_LEN + m->payload_len) < 0)
        return -1;
    codec_frame_header((uint32_t)m->payload_len, (unsigned char *)buf_tail(out));
    mode_apply(env->mode, m->payload, m->payload_len, buf_tail(out) + FRAME_HEADER_LEN);
    buf_commit(out, FRAME_HEADER_LEN + m->payload_len);
    return 0;
}

static int reply_line(const struct handler_env *env, struct buf *out, const struct codec_msg *m)
{
    if (buf_reserve(out, m->payload_len + 1) < 0)
        return -1;
    mode_apply(env->mode, m->payload, m->payload_len, buf_tail(out));
    buf_tail(out)[m->payload_len] = '\n';
    buf_commit(out, m->payload_len + 1);
    return 0;
}

static void line_too_long(const struct handler_env *env, struct buf *out)
{
    /* Best effort: the connection closes whether or not this line fits in memory. */
    buf_printf(out, "ERR line longer than %zu bytes\n", env->max_message);
}

static void handle_framed(const struct handler_env *env, struct handler_io *io, const char *data,
                          size_t len)
{
    struct codec_msg m;
    size_t off = 0;
    for (;;) {
        int rc = codec_decode(io->proto, data + off, len - off, env->max_message, io->cs, &m);
        if (rc == CODEC_NEED_MORE) {
            io->partial = off < len;
            io->need = m.frame_len;
            break;
        }
        if (rc < 0) {
            if (io->proto == PROTO_LINE)
                line_too_long(env, io->out);
            io->verdict = HANDLER_ERROR;
            break;
        }
        int wr = io->proto == PROTO_FRAME ? reply_frame(env, io->out, &m)
                                          : reply_line(env, io->out, &m);
        if (wr < 0) {
            io->verdict = HANDLER_NOMEM;
            break;
        }
        off += m.frame_len;
        io->messages++;
    }
    io->consumed = off;
}

/* ---- HTTP ---- */

/* The path of a request-target, without the query; absolute-form is reduced to its path. */
static void target_path(const struct http_request *req, const char **path, size_t *len)
{
    const char *p = req->target, *end = req->target + req->target_len;
    if (p < end && *p != '/') {
        const char *scheme = memchr(p, ':', (size_t)(end - p));
        if (scheme && end - scheme > 3 && scheme[1] == '/' && scheme[2] == '/') {
            const char *slash = memchr(scheme + 3, '/', (size_t)(end - scheme - 3));
            p = slash ? slash : end;
        }
    }
    const char *q = memchr(p, '?', (size_t)(end - p));
    *path = p;
    *len = (size_t)((q ? q : end) - p);
    if (*len == 0) {
        *path = "/";
        *len = 1;
    }
}

static int path_is(const char *path, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(path, lit, len) == 0;
}

static void count_status(struct worker_stats *st, int status)
{
    if (status < 300)
        counter_add(&st->http_2xx, 1);
    else if (status < 500)
        counter_add(&st->http_4xx, 1);
    else
        counter_add(&st->http_5xx, 1);
}

static int reply_echo(const struct handler_env *env, struct buf *out, const char *msg,
                      const struct http_request *req, unsigned flags)
{
    char *dst;
    if (http_reply_begin(out, env->http, 200, "application/octet-stream", (size_t)req->body_len,
                         flags, NULL, &dst) < 0)
        return -1;
    if (!dst)
        return 0;
    /* Copy, then transform in place: chunked bodies are scattered in the input. */
    http_body_copy(msg, req, dst);
    mode_apply(env->mode, dst, (size_t)req->body_len, dst);
    return 0;
}

static int reply_rendered(const struct handler_env *env, struct buf *out,
                          int (*render)(struct buf *, const struct stats_registry *,
                                        const struct settings *),
                          const char *ctype, unsigned flags)
{
    struct buf doc = {0};
    int rc = render(&doc, env->registry, env->settings);
    if (rc == 0)
        rc = http_reply(out, env->http, 200, ctype, buf_head(&doc), buf_len(&doc), flags, NULL);
    buf_release(&doc);
    return rc;
}

static int reply_status(const struct handler_env *env, struct buf *out, int status,
                        unsigned flags, const char *allow)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, http_status_text(status));
    count_status(env->stats, status);
    return http_reply(out, env->http, status, "text/plain", body, (size_t)n, flags, allow);
}

/* GET /healthz, for a balancer's health check: 200 while serving, 503 from the first
 * SIGTERM on (drain_state.h), so the balancer takes this server out of its pool before it
 * stops accepting. Open to every client whatever --stats-allow says: the checks come
 * from the balancer's address, and the answer tells nothing but the phase. */
static int reply_health(const struct handler_env *env, struct buf *out, int get_or_head,
                        unsigned flags)
{
    if (!get_or_head)
        return reply_status(env, out, 405, flags, "GET, HEAD");
    int status = env->draining ? 503 : 200;
    const char *body = env->draining ? "draining\n" : "ok\n";
    count_status(env->stats, status);
    return http_reply(out, env->http, status, "text/plain", body, strlen(body), flags, NULL);
}

/* Tests of the watchdog need a worker that stops turning its loop: this blocks the
 * calling worker for ?ms=N milliseconds. Only with $WHARFD_TEST_HOOKS=1. */
static int test_stall(const struct handler_env *env, struct buf *out,
                      const struct http_request *req, unsigned flags)
{
    const char *q = memchr(req->target, '=', req->target_len);
    long ms = q ? strtol(q + 1, NULL, 10) : 0;
    if (ms > 0 && ms <= 60000)
        usleep((useconds_t)ms * 1000);
    counter_add(&env->stats->http_2xx, 1);
    return http_reply(out, env->http, 200, "text/plain", "stalled\n", 8, flags, NULL);
}

static int method_is(const struct http_request *req, const char *m)
{
    return strlen(m) == req->method_len && memcmp(req->method, m, req->method_len) == 0;
}

/* The routes a metrics:// listener serves; every other path is 404 there. /status is
 * the /stats page for people (served where the server has it). */
static int stats_route(const char *path, size_t plen)
{
    return path_is(path, plen, "/metrics") || path_is(path, plen, "/stats") ||
           path_is(path, plen, "/status") || path_is(path, plen, "/healthz");
}

/* --stats-allow loopback: the address a PROXY header carried, else the socket's peer. */
static int client_is_loopback(const struct handler_io *io)
{
    if (io->state & HANDLER_PEER_CARRIED)
        return (io->state & HANDLER_PEER_LOOPBACK) != 0;
    return peer_is_loopback(io->fd);
}

/* --stats-allow: everyone, loopback clients (no ranges), or clients in its ranges. The
 * client is the address a PROXY header carried, else the socket's peer, looked up only
 * now: stats pages are asked for rarely. */
static int stats_allowed(const struct handler_env *env, const struct handler_io *io)
{
    const struct settings *set = env->settings;
    if (set->stats_allow_all)
        return 1;
    if (set->stats_allow.n == 0)
        return client_is_loopback(io);
    if (io->state & HANDLER_PEER_CARRIED)
        return (io->state & HANDLER_PEER_STATS_RANGES) != 0;
    return peer_in_ranges(io->fd, &set->stats_allow);
}

/* Answer one complete request; io->metrics_only: it came to a metrics:// listener. */
static int route(const struct handler_env *env, struct buf *out, const struct handler_io *io,
                 const char *msg, const struct http_request *req, unsigned flags)
{
    const char *path;
    size_t plen;
    target_path(req, &path, &plen);
    if (io->metrics_only && !stats_route(path, plen))
        return reply_status(env, out, 404, flags, NULL);
    int get = method_is(req, "GET"), head = method_is(req, "HEAD");
    if (head)
        flags |= REPLY_HEAD;
    if (path_is(path, plen, "/")) {
        if (!get && !head)
            return reply_status(env, out, 405, flags, "GET, HEAD");
        counter_add(&env->stats->http_2xx, 1);
        if ((flags & ~REPLY_CLOSE) == 0)
            return http_reply_hello(out, env->http, flags);
        return http_reply(out, env->http, 200, "text/plain", HELLO_BODY, sizeof HELLO_BODY - 1,
                          flags, NULL);
    }
    if (path_is(path, plen, "/echo")) {
        if (!method_is(req, "POST"))
            return reply_status(env, out, 405, flags, "POST");
        counter_add(&env->stats->http_2xx, 1);
        return reply_echo(env, out, msg, req, flags);
    }
    int stats = path_is(path, plen, "/stats"), metrics = path_is(path, plen, "/metrics");
    int page = path_is(path, plen, "/status");
    if (stats || metrics || page) {
        if (!get && !head)
            return reply_status(env, out, 405, flags, "GET, HEAD");
        if (!stats_allowed(env, io)) {
            counter_add(&env->stats->stats_forbidden, 1);
            return reply_status(env, out, 403, flags, NULL);
        }
        int r = page    ? status_page_reply(out, env->http, env->registry, env->settings,
                                            env->draining, flags)
                : stats ? reply_rendered(env, out, stats_render_json, "application/json", flags)
                : reply_rendered(env, out, metrics_render, "text/plain; version=0.0.4",
                                 flags);
        counter_add(&env->stats->http_2xx, 1); /* after: the page shows the requests before it */
        return r;
    }
    if (path_is(path, plen, "/healthz")) /* past the hot routes, so they pay nothing for it */
        return reply_health(env, out, get || head, flags);
    if (env->test_hooks && path_is(path, plen, "/__test/stall"))
        return test_stall(env, out, req, flags);
    return reply_status(env, out, 404, flags, NULL);
}

static void handle_http(const struct handler_env *env, struct handler_io *io, const char *data,
                        size_t len)
{
    struct http_request req;
    size_t off = 0;
    while (off < len) {
        int rc = http_parse_request(data + off, len - off, env->max_message, io->cs, &req);
        if (rc == HTTP_NEED_MORE) {
            io->partial = 1;
            io->need = (req.flags & HTTP_F_HEADERS_DONE) && !(req.flags & HTTP_F_CHUNKED)
                           ? req.header_len + (size_t)req.body_len
                           : 0;
            if ((req.flags & HTTP_F_CONTINUE) && !(io->state & HANDLER_CONTINUE_SENT)) {
                if (http_reply_continue(io->out) < 0)
                    io->verdict = HANDLER_NOMEM;
                io->state |= HANDLER_CONTINUE_SENT;
            }
            break;
        }
        if (rc < 0) {
            reply_status(env, io->out, -rc, REPLY_CLOSE, NULL);
            io->verdict = HANDLER_ERROR;
            break;
        }
        io->state &= ~HANDLER_CONTINUE_SENT;
        unsigned flags = 0;
        int last = (req.flags & HTTP_F_CLOSE) || env->draining;
        if (last)
            flags |= REPLY_CLOSE;
        else if (req.flags & HTTP_F_KEEPALIVE_10)
            flags |= REPLY_KEEPALIVE_10;
        if (route(env, io->out, io, data + off, &req, flags) < 0) {
            io->verdict = HANDLER_NOMEM;
            break;
        }
        off += req.frame_len;
        io->messages++;
        if (last) {
            io->verdict = HANDLER_CLOSE;
            break;
        }
    }
    io->consumed = off;
}

void handler_process(const struct handler_env *env, struct handler_io *io, const char *data,
                     size_t len)
{
    io->consumed = 0;
    io->messages = 0;
    io->need = 0;
    io->partial = 0;
    io->verdict = HANDLER_CONTINUE;
    switch (io->proto) {
    case PROTO_RAW:
        handle_raw(env, io, data, len);
        break;
    case PROTO_LINE:
    case PROTO_FRAME:
        handle_framed(env, io, data, len);
        break;
    case PROTO_HTTP:
        handle_http(env, io, data, len);
        break;
    default:
        io->verdict = HANDLER_ERROR;
    }
    if (io->verdict == HANDLER_ERROR)
        counter_add(&env->stats->protocol_errors, 1);
}
