#include "proxy_stage.h"

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../common/addr.h"
#include "../common/cidr.h"
#include "../common/clock.h"
#include "../common/log.h"
#include "../common/proxy_proto.h"
#include "conn.h"
#include "handler.h"
#include "listener.h"
#include "peer.h"
#include "settings.h"
#include "stats.h"
#include "worker_loop.h"

/* The once-a-second log of refused connections: each worker thread its own, so that no
 * state is shared (a flood of bad headers on one worker costs the others nothing). */
static _Thread_local uint64_t last_log_ms;
static _Thread_local uint64_t unlogged;

/* Log a refused connection (fd: its socket, still open) unless one was logged less than
 * a second ago; those are only counted, and their number is told the next time. */
static void note_refused(struct worker *w, int fd, const char *why)
{
    uint64_t now = clock_ms();
    if (last_log_ms && now - last_log_ms < 1000) {
        unlogged++;
        return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char a[ADDR_TEXT_MAX] = "an unknown address";
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        addr_format((const struct sockaddr *)&ss, a, sizeof a);
    log_warn("worker %d: closed a +proxy connection from %s: %s (%llu more refused since the "
             "last report)",
             worker_loop(w)->id, a, why, (unsigned long long)unlogged);
    last_log_ms = now;
    unlogged = 0;
}

int proxy_stage_trusted(struct worker *w, int fd)
{
    struct worker_loop *l = worker_loop(w);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        return 0; /* already gone: nothing to serve, nothing to report */
    if (cidr_match_sa(&l->set->proxy_from, (const struct sockaddr *)&ss))
        return 1;
    counter_add(&l->stats->proxy_untrusted, 1);
    note_refused(w, fd, "not in --proxy-from");
    return 0;
}

void proxy_stage_begin(struct worker *w, struct conn *c)
{
    /* With --header-timeout 0 the idle timeout alone bounds the wait. */
    if (worker_loop(w)->timers[TIMER_HEADER].timeout_ms)
        worker_timer_set(w, &c->timer, TIMER_HEADER);
}

/* The header is complete: count the connection under the address it names (or the
 * socket's, for LOCAL and the like). 0, or -1 when c was closed. */
static int proxy_apply(struct worker *w, struct conn *c, const struct proxy_header *h)
{
    struct worker_loop *l = worker_loop(w);
    uint8_t a[16];
    int carried = !h->local && cidr_addr16((const struct sockaddr *)&h->src, a) == 0;
    if (carried)
        c->handler_state |= HANDLER_PEER_CARRIED |
                            (peer_addr_is_loopback(a) ? HANDLER_PEER_LOOPBACK : 0u);
    if (!l->peers)
        return 0;
    switch (carried ? peer_admit_addr(l->peers, a, &c->peer)
                    : peer_admit(l->peers, c->fd, &c->peer)) {
    case PEER_ADMITTED:
        return 0;
    case PEER_OVER:
        counter_add(&l->stats->proxy_rejected_per_ip, 1);
        conn_close(w, c);
        return -1;
    case PEER_GONE:
        conn_close(w, c);
        return -1;
    case PEER_NOMEM:
        break;
    }
    conn_nomem(w, c);
    return -1;
}

int proxy_stage_input(struct worker *w, struct conn *c, const char **data, size_t *len)
{
    struct worker_loop *l = worker_loop(w);
    int in_buf = buf_len(&c->in) != 0;
    struct proxy_header h;
    int rc = in_buf ? proxy_parse(buf_head(&c->in), buf_len(&c->in), &h)
                    : proxy_parse(*data, *len, &h);
    if (rc == PROXY_NEED_MORE) {
        /* Keep what came, with room for what the header needs (at most PROXY_MAX). */
        size_t have = in_buf ? buf_len(&c->in) : 0;
        if (buf_reserve(&c->in, h.need - have) < 0 ||
            (!in_buf && buf_append(&c->in, *data, *len) < 0)) {
            conn_nomem(w, c);
            return -1;
        }
        return 0;
    }
    if (rc < 0) {
        counter_add(&l->stats->proxy_bad_header, 1);
        note_refused(w, c->fd, proxy_strerror(rc));
        conn_close(w, c);
        return -1;
    }
    if (proxy_apply(w, c, &h) < 0)
        return -1;
    counter_add(&l->stats->proxy_headers, 1);
    c->proto &= (uint8_t)~LISTENER_PROTO_PROXY;
    worker_timer_set(w, &c->timer, TIMER_IDLE);
    if (in_buf) {
        buf_consume(&c->in, (size_t)rc);
        if (!buf_len(&c->in))
            buf_release(&c->in);
        *len = 0;
    } else {
        *data += rc;
        *len -= (size_t)rc;
    }
    return 1;
}

void proxy_stage_eof(struct worker *w, struct conn *c)
{
    struct worker_loop *l = worker_loop(w);
    if (!buf_len(&c->in))
        return; /* connected and left without a byte: a balancer's plain TCP check */
    counter_add(&l->stats->proxy_truncated, 1);
    note_refused(w, c->fd, "ended inside its PROXY header");
    buf_release(&c->in); /* counted here, not again as an ordinary truncated message */
}

void proxy_stage_timeout(struct worker *w, struct conn *c)
{
    counter_add(&worker_loop(w)->stats->proxy_timeouts, 1);
    note_refused(w, c->fd, "no complete PROXY header within --header-timeout");
}
