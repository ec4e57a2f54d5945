/* libFuzzer target: the HTTP response parser (common/http_resp.c), as the load client
 * uses it on a connection's byte stream.
 *
 * The first input byte's low bit says whether the requests were HEAD; the rest is
 * the stream. It is parsed as a connection receives it -- in one read, a byte per read
 * (small inputs), in two reads and in reads of random sizes -- keeping the unparsed
 * bytes and the body state between reads, and every way of cutting must give the same
 * log: each head's fields, each body's decoded length and hash, the error, what was
 * left. Each call sees an exactly sized heap copy (ASan catches any over-read). Per
 * call: head_len within the bytes and the limit; a head parses the same from exactly
 * its own bytes, and every shorter prefix of it is NEED_MORE; a Content-Length body
 * decodes to its length; NEED_MORE from the body means every byte was used. */
#include "../../common/http_resp.h"
#include "fuzz.h"

#define FUZZ_MAX_INPUT (64 * 1024)

struct sim {
    struct buf log, pend;
    int head_req, in_body, dead;
    struct http_resp r;
    struct http_body b;
    uint64_t hash;
};

static void hash_body(void *ctx, const char *p, size_t n)
{
    struct sim *s = ctx;
    for (size_t i = 0; i < n; i++)
        s->hash = (s->hash ^ (unsigned char)p[i]) * 1099511628211ull;
}

static void check_head(struct sim *s, const char *p, size_t n, int rc)
{
    struct http_resp again;
    memset(&again, 0, sizeof again);
    FUZZ_CHECK(s->r.head_len <= n && s->r.head_len <= HRESP_MAX_HEAD);
    FUZZ_CHECK(s->r.status >= 100 && s->r.status <= 599 && s->r.status != 101);
    char *own = fuzz_copy(p, s->r.head_len);
    FUZZ_CHECK(http_resp_head(own, s->r.head_len, s->head_req, &again) == rc);
    FUZZ_CHECK(memcmp(&again, &s->r, sizeof again) == 0);
    if (s->r.head_len < 512)
        for (size_t k = 0; k < s->r.head_len; k++) {
            char *pre = fuzz_copy(p, k);
            FUZZ_CHECK(http_resp_head(pre, k, s->head_req, &again) == HRESP_NEED_MORE);
            free(pre);
        }
    free(own);
}

/* One step on the pending bytes: 1 to go on, 0 when more bytes are needed. */
static int step(struct sim *s)
{
    size_t n = buf_len(&s->pend), used = 0;
    char *p = fuzz_copy(s->pend.data ? buf_head(&s->pend) : "", n);
    int rc, more = 0;
    if (!s->in_body) {
        rc = http_resp_head(p, n, s->head_req, &s->r);
        if (rc == HRESP_DONE) {
            check_head(s, p, n, rc);
            buf_printf(&s->log, "H %d 1.%d close=%d interim=%d body=%d len=%llu hl=%zu\n",
                       s->r.status, s->r.minor, s->r.close, s->r.interim, (int)s->r.body,
                       (unsigned long long)s->r.length, s->r.head_len);
            used = s->r.head_len;
            s->in_body = 1;
            s->hash = 0;
            http_body_start(&s->b, &s->r);
            more = 1;
        }
    } else {
        rc = http_body_feed(&s->b, p, n, &used, hash_body, s);
        FUZZ_CHECK(used <= n);
        FUZZ_CHECK(rc != HRESP_NEED_MORE || used == n);
        if (rc == HRESP_DONE) {
            FUZZ_CHECK(s->r.body != HB_LENGTH || s->b.total == s->r.length);
            buf_printf(&s->log, "B %llu %016llx\n", (unsigned long long)s->b.total,
                       (unsigned long long)s->hash);
            s->in_body = 0;
            more = 1;
        }
    }
    if (rc < 0) {
        buf_printf(&s->log, "E %d\n", rc);
        s->dead = 1;
    }
    free(p);
    buf_consume(&s->pend, used);
    return more && !s->dead;
}

static void run(const uint8_t *data, size_t size, int head_req, enum cut_mode mode,
                struct buf *out)
{
    struct sim s = {.head_req = head_req};
    struct cutter c;
    cutter_init(&c, mode, data, size);
    for (size_t n; !s.dead && (n = cutter_next(&c)) > 0;) {
        FUZZ_CHECK(buf_append(&s.pend, data + c.done - n, n) == 0);
        while (step(&s))
            ;
    }
    if (!s.dead && s.in_body && s.r.body == HB_UNTIL_CLOSE)
        buf_printf(&s.log, "B-close %llu %016llx\n", (unsigned long long)s.b.total,
                   (unsigned long long)s.hash);
    else if (!s.dead)
        buf_printf(&s.log, "END body=%d pend=%zu\n", s.in_body, buf_len(&s.pend));
    *out = s.log;
    buf_release(&s.pend);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    int head_req = data[0] & 1;
    data++, size--;
    struct buf want, got;
    run(data, size, head_req, CUT_WHOLE, &want);
    for (enum cut_mode m = CUT_BYTES; m <= CUT_RANDOM; m++) {
        if (m == CUT_BYTES && size > 2048)
            continue;
        run(data, size, head_req, m, &got);
        FUZZ_CHECK(buf_len(&got) == buf_len(&want));
        FUZZ_CHECK(memcmp(got.data ? buf_head(&got) : "", want.data ? buf_head(&want) : "",
                          buf_len(&want)) == 0);
        buf_release(&got);
    }
    buf_release(&want);
    return 0;
}
