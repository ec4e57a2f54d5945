/* fuzz_codec: the body of the raw, line and frame targets (one file each includes it
 * with its protocol).
 *
 * For each input, with a large and a small message limit:
 *  - every call of codec_decode must give what a naive reference decoder gives on the
 *    same bytes (status, payload position and length, frame length, the frame_len hint);
 *  - the input decoded in one read, a byte per read (small inputs), in two reads and in
 *    reads of random sizes must give the same log of messages and the same final status;
 *  - handler_process (server/handler.c), driven the way server/conn.c drives it, must
 *    reply exactly what the reference says: the transformed payload of each message in
 *    order (plus "ERR ..." for an over-long line), whatever the cutting. */
#ifndef WHARF_FUZZ_CODEC_H
#define WHARF_FUZZ_CODEC_H

#include "../../common/codec.h"
#include "../../common/mode.h"
#include "../../server/handler.h"
#include "fuzz.h"

#define FUZZ_MAX_INPUT (64 * 1024)

/* ---- the reference ---------------------------------------------------------- */

static int ref_decode(enum proto proto, const char *p, size_t len, size_t max,
                      struct codec_msg *m)
{
    m->frame_len = 0;
    m->payload = NULL;
    m->payload_len = 0;
    if (proto == PROTO_RAW) {
        if (len == 0)
            return CODEC_NEED_MORE;
        m->payload = p;
        m->payload_len = m->frame_len = len;
        return CODEC_MESSAGE;
    }
    if (proto == PROTO_FRAME) {
        if (len < 4)
            return CODEC_NEED_MORE;
        uint64_t n = 0;
        for (int i = 0; i < 4; i++)
            n = n << 8 | (unsigned char)p[i];
        if (n > max)
            return CODEC_TOO_LONG;
        m->frame_len = 4 + (size_t)n;
        if (len < 4 + n)
            return CODEC_NEED_MORE;
        m->payload = p + 4;
        m->payload_len = (size_t)n;
        return CODEC_MESSAGE;
    }
    /* line: the first '\n' ends the message; more than max bytes before it is too long */
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\n') {
            if (i > max)
                return CODEC_TOO_LONG;
            m->payload = p;
            m->payload_len = i;
            m->frame_len = i + 1;
            return CODEC_MESSAGE;
        }
    }
    return len > max ? CODEC_TOO_LONG : CODEC_NEED_MORE;
}

/* ---- decoding a stream -------------------------------------------------------- */

struct codec_run {
    enum proto proto;
    size_t max;
    struct codec_state cs;
    struct buf log;
    int failed;
};

static size_t codec_step(void *ctx, const char *p, size_t len, int *stop)
{
    struct codec_run *r = ctx;
    size_t off = 0;
    for (;;) {
        struct codec_msg m, ref;
        memset(&m, 0xa5, sizeof m);
        int rc = codec_decode(r->proto, p + off, len - off, r->max, &r->cs, &m);
        int want = ref_decode(r->proto, p + off, len - off, r->max, &ref);
        FUZZ_CHECK(rc == want);
        if (rc == CODEC_MESSAGE) {
            FUZZ_CHECK(m.frame_len == ref.frame_len);
            FUZZ_CHECK(m.payload == ref.payload && m.payload_len == ref.payload_len);
            FUZZ_CHECK(m.frame_len >= 1 && m.frame_len <= len - off);
            FUZZ_CHECK(m.payload >= p + off && m.payload + m.payload_len <= p + off + m.frame_len);
            FUZZ_CHECK(m.payload_len <= r->max || r->proto == PROTO_RAW);
            FUZZ_CHECK(r->cs.scanned == 0); /* reset when a message is returned */
            /* raw has no boundaries of its own: only its bytes must match */
            if (r->proto != PROTO_RAW)
                fuzz_log(&r->log, "\nmsg %zu:", m.frame_len);
            fuzz_log_bytes(&r->log, m.payload, m.payload_len);
            off += m.frame_len;
            continue;
        }
        if (rc == CODEC_NEED_MORE) {
            /* the hint is the final length when known, and then more than we have */
            FUZZ_CHECK(m.frame_len == ref.frame_len);
            FUZZ_CHECK(m.frame_len == 0 || m.frame_len > len - off);
            return off;
        }
        FUZZ_CHECK(rc == CODEC_TOO_LONG || rc == CODEC_INVALID);
        FUZZ_CHECK(r->proto != PROTO_RAW);
        fuzz_log(&r->log, "\nerror %d\n", rc);
        r->failed = 1;
        *stop = 1;
        return off;
    }
}

static void codec_run_stream(struct codec_run *r, const uint8_t *data, size_t size,
                             enum cut_mode mode)
{
    memset(&r->cs, 0, sizeof r->cs);
    size_t kept = fuzz_feed(data, size, mode, codec_step, r);
    /* after an error the rest is never read: how much had arrived depends on the cuts */
    if (!r->failed)
        fuzz_log(&r->log, "\nend, %zu bytes pending\n", kept);
}

/* ---- the handler ------------------------------------------------------------- */

static struct worker_stats fuzz_codec_stats;

struct handler_run {
    struct handler_env env;
    struct codec_state cs;
    struct buf out;
    unsigned state;
    size_t consumed;
    uint32_t messages;
    enum handler_verdict verdict;
    enum proto proto;
};

static size_t handler_step(void *ctx, const char *p, size_t len, int *stop)
{
    struct handler_run *h = ctx;
    struct handler_io io = {.proto = h->proto, .cs = &h->cs, .out = &h->out, .state = h->state,
                            .fd = -1};
    handler_process(&h->env, &io, p, len);
    h->state = io.state;
    FUZZ_CHECK(io.consumed <= len);
    FUZZ_CHECK(io.verdict != HANDLER_NOMEM);
    FUZZ_CHECK(io.partial == (io.consumed < len) || io.verdict != HANDLER_CONTINUE);
    h->consumed += io.consumed;
    h->messages += io.messages;
    h->verdict = io.verdict;
    if (io.verdict != HANDLER_CONTINUE)
        *stop = 1;
    return io.consumed;
}

/* What the server must have answered to the whole input, from the reference decoder. */
static void expected_replies(enum proto proto, const struct handler_env *env, const uint8_t *data,
                             size_t size, struct buf *out, uint32_t *messages, int *error)
{
    size_t off = 0;
    *messages = 0;
    *error = 0;
    for (;;) {
        struct codec_msg m;
        int rc = ref_decode(proto, (const char *)data + off, size - off, env->max_message, &m);
        if (rc == CODEC_NEED_MORE)
            return;
        if (rc < 0) {
            *error = 1;
            if (proto == PROTO_LINE)
                fuzz_log(out, "ERR line longer than %zu bytes\n", env->max_message);
            return;
        }
        if (proto == PROTO_FRAME) {
            unsigned char hdr[4];
            codec_frame_header((uint32_t)m.payload_len, hdr);
            FUZZ_CHECK(buf_append(out, hdr, 4) == 0);
        }
        if (m.payload_len) {
            FUZZ_CHECK(buf_reserve(out, m.payload_len) == 0);
            mode_apply(env->mode, m.payload, m.payload_len, buf_tail(out));
            buf_commit(out, m.payload_len);
        }
        if (proto == PROTO_LINE)
            FUZZ_CHECK(buf_append(out, "\n", 1) == 0);
        (*messages)++;
        off += m.frame_len;
        if (proto == PROTO_RAW)
            return;
    }
}

static void handler_check(enum proto proto, const uint8_t *data, size_t size, size_t max,
                          enum mode mode, enum cut_mode cut)
{
    struct handler_run h = {
        .env = {.mode = mode, .max_message = max, .stats = &fuzz_codec_stats},
        .proto = proto,
        .verdict = HANDLER_CONTINUE,
    };
    fuzz_feed(data, size, cut, handler_step, &h);

    struct buf want = {0};
    uint32_t messages;
    int error;
    expected_replies(proto, &h.env, data, size, &want, &messages, &error);
    if (proto == PROTO_RAW) {
        /* one message per read: count only the bytes */
        FUZZ_CHECK(h.consumed == size && h.verdict == HANDLER_CONTINUE);
    } else {
        FUZZ_CHECK(h.messages == messages);
        FUZZ_CHECK((h.verdict == HANDLER_ERROR) == error);
        FUZZ_CHECK(h.verdict == HANDLER_ERROR || h.verdict == HANDLER_CONTINUE);
    }
    fuzz_same_log(&want, "expected replies", &h.out, "handler replies");
    buf_release(&want);
    buf_release(&h.out);
}

/* ---- the target ----------------------------------------------------------------- */

static void fuzz_codec_one(enum proto proto, const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return;
    uint64_t h = fuzz_hash(data, size);
    /* A limit the input can exceed, and the server's default (1 MiB). */
    size_t limits[2] = {(size_t)(h % 48), 1u << 20};
    for (int i = 0; i < 2; i++) {
        struct codec_run whole = {.proto = proto, .max = limits[i]};
        codec_run_stream(&whole, data, size, CUT_WHOLE);
        static const enum cut_mode cuts[] = {CUT_BYTES, CUT_TWO, CUT_RANDOM};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            if (cuts[c] == CUT_BYTES && size > 512)
                continue;
            struct codec_run cut = {.proto = proto, .max = limits[i]};
            codec_run_stream(&cut, data, size, cuts[c]);
            fuzz_same_log(&whole.log, "one read", &cut.log, "cut into reads");
            buf_release(&cut.log);
        }
        buf_release(&whole.log);
        enum mode mode = (h >> 8) & 1 ? MODE_UPPER : MODE_ECHO;
        handler_check(proto, data, size, limits[i], mode, CUT_WHOLE);
        handler_check(proto, data, size, limits[i], mode, size > 512 ? CUT_RANDOM : CUT_BYTES);
    }
}

#endif
