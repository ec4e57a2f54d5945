/* bench_script: the bench driver's side of -s (script.h): the script's requests and
 * responses on a connection, and its done() with the report's figures. Runs on the
 * connection's thread, with that thread's Lua state. */
#include <stdio.h>

#include "bench_state.h"
#include "script.h"

#define SCRIPT_RESP_MAX (1u << 20) /* response() sees at most this much of a response */

uint64_t bench_script_fill(struct eng_thread *t, uint32_t i, uint64_t n)
{
    struct bconn *c = &BT(t)->conns[i];
    uint64_t batch = t->e->o->script_batch, got = 0;
    if (!c->unsent)
        buf_clear(&c->out);
    while (n - got >= batch && !script_stopped(t->id)) {
        size_t len, k;
        const char *p = script_request(t->id, &len, &k);
        if (!p || buf_append(&c->out, p, len) < 0) {
            t->quota = BT(t)->ph.issued_total + got;
            break;
        }
        got += k < n - got ? k : n - got; /* more than the first batch: as many as fit */
        c->unsent += (uint32_t)len;
    }
    int quota_short = t->quota != ENG_NO_LIMIT && t->quota - BT(t)->ph.issued_total - got < batch;
    if (script_stopped(t->id) || quota_short)
        t->quota = BT(t)->ph.issued_total + got;
    return got;
}

uint64_t bench_script_delay(struct eng_thread *t, uint32_t i, uint64_t now)
{
    struct bthread *bt = BT(t);
    struct bconn *c = &bt->conns[i];
    if (!c->due) {
        uint64_t ns;
        if (script_delay(t->id, &ns) < 0) {
            t->quota = bt->ph.issued_total;
            return 0;
        }
        c->due = now + ns;
    }
    if (now < c->due) {
        bt->next_due = min_u64(bt->next_due, c->due);
        return 0;
    }
    c->due = 0;
    return 1;
}

void bench_script_response(struct eng_thread *t, struct bconn *c, const char *p, size_t n,
                          int complete)
{
    size_t room = SCRIPT_RESP_MAX - buf_len(&c->resp);
    if (n && buf_append(&c->resp, p, n < room ? n : room) < 0)
        buf_clear(&c->resp);
    if (!complete || !buf_len(&c->resp))
        return;
    if (script_response(t->id, buf_head(&c->resp), buf_len(&c->resp), BB(t)->pl.head_request) ||
        script_stopped(t->id))
        t->quota = BT(t)->ph.issued_total;
    buf_clear(&c->resp);
}

void bench_script_done(const struct engine *e, const struct eng_totals *r)
{
    if (!e->o->script)
        return;
    const struct rps_samples *rps = &((const struct bench *)e->d)->rps;
    struct script_summary s = {
        .duration_us = r->elapsed_s * 1e6,
        .requests = r->c[OK] + r->err[ERR_MISMATCH] + r->err[ERR_STATUS] + r->err[ERR_BODY],
        .bytes = r->c[BYTES_IN],
        .connect = r->err[ERR_CONNECT],
        .read = r->err[ERR_READ] + r->err[ERR_CLOSED],
        .write = r->err[ERR_WRITE],
        .status = r->c[NON2XX],
        .timeout = r->err[ERR_TIMEOUT],
        .latency = &r->h[LAT],
        .rps = rps->v,
        .n_rps = rps->n,
    };
    script_done(&s, e->o->json);
}
