/* bench_script: the bench driver's side of -s (script.h): the script's requests and
 * responses on a connection, and its done() with the report's figures. Runs on the
 * connection's thread, with that thread's Lua state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_state.h"
#include "script.h"

#define SCRIPT_RESP_MAX (1u << 20) /* response() sees at most this much of a response */
/* A connection's requests in flight, at most: the window (-P, at most 4096, or the first
 * calls' largest batch, at most SCRIPT_BATCH_MAX), less one, and a whole batch. */
#define SCRIPT_RING_MAX (2 * SCRIPT_BATCH_MAX)

int bench_script_thread_init(struct eng_thread *t)
{
    struct bthread *bt = BT(t);
    t->ep = script_thread_endpoint(t->id);
    if (!t->e->o->script_request)
        return 0;
    bt->heads = calloc((size_t)t->n * bt->rcap + 1, 1);
    return bt->heads ? 0 : -1;
}

int bench_script_head(const struct eng_thread *t, uint32_t i)
{
    const struct bthread *bt = BT(t);
    return bt->heads && bt->conns[i].inflight &&
           bt->heads[(size_t)i * bt->rcap + bt->conns[i].head];
}

/* Room for `need` requests in flight on connection i, which has `taking` more than
 * its requests in flight placed already (their HEAD flags: this fill's earlier
 * batches): every ring of the thread (one array, connection k's at k * rcap) laid out
 * again at a larger stride, each connection's requests first, in order. 0, or -1
 * (reported): the thread stops sending. A script's batches are alike on every
 * connection: one stride for all keeps the reply path's lookup what it was. */
static int ring_reserve(struct eng_thread *t, uint32_t i, uint64_t taking, uint64_t need)
{
    struct bthread *bt = BT(t);
    if (need <= bt->rcap)
        return 0;
    uint32_t cap = bt->rcap;
    while (cap < need && cap < SCRIPT_RING_MAX)
        cap *= 2;
    cap = cap < SCRIPT_RING_MAX ? cap : SCRIPT_RING_MAX;
    uint64_t *ring = need <= cap ? malloc(((size_t)t->n * cap + 1) * sizeof *ring) : NULL;
    uint8_t *heads = ring ? calloc((size_t)t->n * cap + 1, 1) : NULL;
    if (!heads) {
        fprintf(stderr, "wharf bench: no room for %llu requests in flight on a connection: %s\n",
                (unsigned long long)need, need <= cap ? strerror(ENOMEM) : "too many");
        free(ring);
        return -1;
    }
    for (uint32_t k = 0; k < t->n; k++) {
        struct bconn *c = &bt->conns[k];
        uint64_t live = c->inflight + (k == i ? taking : 0);
        for (uint32_t j = 0, at = c->head; j < live; j++, at = (at + 1) % bt->rcap) {
            ring[(size_t)k * cap + j] = bt->ring[(size_t)k * bt->rcap + at];
            heads[(size_t)k * cap + j] = bt->heads[(size_t)k * bt->rcap + at];
        }
        c->head = 0;
    }
    free(bt->ring);
    free(bt->heads);
    bt->ring = ring;
    bt->heads = heads;
    bt->rcap = cap;
    return 0;
}

/* One request() call's bytes for connection i, got requests already taken by this
 * fill: appended, their HEAD flags put where their send times will go. The number of
 * requests, or 0 after an error (reported). */
static uint64_t take_batch(struct eng_thread *t, uint32_t i, uint64_t got)
{
    struct bthread *bt = BT(t);
    struct bconn *c = &bt->conns[i];
    size_t len, k;
    const uint8_t *heads;
    const char *p = script_request(t->id, &len, &k, &heads);
    if (!p || ring_reserve(t, i, got, c->inflight + got + k) < 0 ||
        buf_append(&c->out, p, len) < 0)
        return 0;
    c->unsent += (uint32_t)len;
    for (size_t j = 0, at = (c->head + c->inflight + got) % bt->rcap; j < k; j++) {
        bt->heads[(size_t)i * bt->rcap + at] = heads[j];
        at = at + 1 == bt->rcap ? 0 : at + 1;
    }
    return k;
}

uint64_t bench_script_fill(struct eng_thread *t, uint32_t i, uint64_t n)
{
    struct bthread *bt = BT(t);
    struct bconn *c = &bt->conns[i];
    uint64_t batch = t->e->o->script_batch, got = 0, P = BB(t)->P;
    /* -R: slots due to the connection; a batch goes at its first one */
    uint64_t due = t->e->o->rate ? rate_share(bt->ph.due_k, i, t->n) - c->issued : ENG_NO_LIMIT;
    uint64_t left = t->quota - bt->ph.issued_total; /* -n; the window said n >= 1 of each */
    /* delay(): n is 1, one batch per delay, whatever its size */
    uint64_t calls = t->e->o->script_delay ? n : ENG_NO_LIMIT;
    if (!c->unsent)
        buf_clear(&c->out);
    for (; calls && c->inflight + got + batch <= P && got < due && !script_stopped(t->id);
         calls--) {
        if (t->quota != ENG_NO_LIMIT && left < got + batch)
            break; /* the batch would not fit before -n: the thread ends here */
        uint64_t k = take_batch(t, i, got);
        if (!k) {
            t->quota = bt->ph.issued_total + got;
            return got;
        }
        got += k;
    }
    int quota_short = t->quota != ENG_NO_LIMIT && left < got + batch;
    if (script_stopped(t->id) || quota_short)
        t->quota = bt->ph.issued_total + got;
    return got;
}

uint64_t bench_script_delay(struct eng_thread *t, uint32_t i, uint64_t now)
{
    struct bthread *bt = BT(t);
    struct bconn *c = &bt->conns[i];
    /* wrk asks delay() before the next batch: not while a batch has no room to go */
    if (t->e->o->script_request && c->inflight + t->e->o->script_batch > BB(t)->P)
        return 0;
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
    int head = BB(t)->pl.head_request || bench_script_head(t, (uint32_t)(c - BT(t)->conns));
    if (script_response(t->id, buf_head(&c->resp), buf_len(&c->resp), head) ||
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
