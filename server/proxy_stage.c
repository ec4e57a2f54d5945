#include "proxy_stage.h"

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../common/addr.h"
#include "../common/cidr.h"
#include "../common/clock.h"
#include "../common/log.h"
#include "../common/proxy_proto.h"
#include "handler.h"
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

/* The header is complete: count the connection under the address it names (or the
 * socket's, for LOCAL and the like). */
static enum proxy_stage_result proxy_apply(struct worker *w, const struct proxy_stage_conn *pc,
                                           const struct proxy_header *h)
{
    struct worker_loop *l = worker_loop(w);
    uint8_t a[16];
    int carried = !h->local && cidr_addr16((const struct sockaddr *)&h->src, a) == 0;
    if (carried)
        *pc->handler_state |= HANDLER_PEER_CARRIED |
                              (peer_addr_is_loopback(a) ? HANDLER_PEER_LOOPBACK : 0u) |
                              (cidr_match(&l->set->stats_allow, a) ? HANDLER_PEER_STATS_RANGES : 0u);
    if (!l->peers)
        return PROXY_STAGE_DONE;
    switch (carried ? peer_admit_addr(l->peers, a, pc->peer)
                    : peer_admit(l->peers, pc->fd, pc->peer)) {
    case PEER_ADMITTED:
        return PROXY_STAGE_DONE;
    case PEER_OVER:
        counter_add(&l->stats->proxy_rejected_per_ip, 1);
        return PROXY_STAGE_REFUSED;
    case PEER_GONE:
        return PROXY_STAGE_REFUSED;
    case PEER_NOMEM:
        break;
    }
    return PROXY_STAGE_NOMEM;
}

enum proxy_stage_result proxy_stage_input(struct worker *w, const struct proxy_stage_conn *pc,
                                          const char **data, size_t *len)
{
    struct worker_loop *l = worker_loop(w);
    struct buf *in = pc->in;
    int in_buf = buf_len(in) != 0;
    struct proxy_header h;
    int rc = in_buf ? proxy_parse(buf_head(in), buf_len(in), &h) : proxy_parse(*data, *len, &h);
    if (rc == PROXY_NEED_MORE) {
        /* Keep what came, with room for what the header needs (at most PROXY_MAX). */
        size_t have = in_buf ? buf_len(in) : 0;
        if (buf_reserve(in, h.need - have) < 0 || (!in_buf && buf_append(in, *data, *len) < 0))
            return PROXY_STAGE_NOMEM;
        return PROXY_STAGE_WAIT;
    }
    if (rc < 0) {
        counter_add(&l->stats->proxy_bad_header, 1);
        note_refused(w, pc->fd, proxy_strerror(rc));
        return PROXY_STAGE_REFUSED;
    }
    enum proxy_stage_result r = proxy_apply(w, pc, &h);
    if (r != PROXY_STAGE_DONE)
        return r;
    counter_add(&l->stats->proxy_headers, 1);
    if (in_buf) {
        buf_consume(in, (size_t)rc);
        if (!buf_len(in))
            buf_release(in);
        *len = 0;
    } else {
        *data += rc;
        *len -= (size_t)rc;
    }
    return PROXY_STAGE_DONE;
}

void proxy_stage_eof(struct worker *w, int fd, struct buf *in)
{
    if (!buf_len(in))
        return;
    counter_add(&worker_loop(w)->stats->proxy_truncated, 1);
    note_refused(w, fd, "ended inside its PROXY header");
    buf_release(in);
}

void proxy_stage_timeout(struct worker *w, int fd)
{
    counter_add(&worker_loop(w)->stats->proxy_timeouts, 1);
    note_refused(w, fd, "no complete PROXY header within --header-timeout");
}
