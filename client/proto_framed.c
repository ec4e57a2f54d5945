/* proto_framed: line and frame, the protocols the common codecs cut. Replies are cut
 * straight from the caller's bytes; only a reply cut by the end of a read is copied,
 * into rx->in. */
#include <string.h>

#include "payload.h"
#include "proto.h"

static int framed_build(struct payload *p, int http_close)
{
    (void)http_close;
    return payload_build_echoed(p);
}

static int judge(const struct payload *p, const struct codec_msg *m)
{
    return m->payload_len == p->exp_payload_len &&
                   memcmp(m->payload, p->exp + p->exp_off, p->exp_payload_len) == 0
               ? RX_OK
               : RX_MISMATCH;
}

/* Move into rx->in the bytes the partial reply there lacks: up to the frame's end, or
 * the line's '\n' (the rest of the read is then cut in place, not copied). */
static int top_up(const struct payload *p, struct reply_rx *rx, const struct codec_msg *m,
                  const char **data, size_t *len)
{
    size_t take = *len, have = buf_len(&rx->in);
    if (p->proto == PROTO_FRAME) {
        size_t want = m->frame_len ? m->frame_len - have : FRAME_HEADER_LEN - have;
        if (want < take)
            take = want;
    } else {
        const char *nl = memchr(*data, '\n', *len);
        if (nl)
            take = (size_t)(nl - *data) + 1;
    }
    if (buf_append(&rx->in, *data, take) < 0)
        return -1;
    *data += take;
    *len -= take;
    return 0;
}

/* A reply begun in an earlier read. RX_NEED_MORE once rx->in is empty (go on with the
 * bytes left) or the bytes ran out. */
static int finish_partial(const struct payload *p, struct reply_rx *rx, const char **data,
                          size_t *len)
{
    struct codec_msg m;
    while (buf_len(&rx->in)) {
        int rc = codec_decode(p->proto, buf_head(&rx->in), buf_len(&rx->in), p->max_reply,
                              &rx->cs, &m);
        if (rc == CODEC_MESSAGE) {
            rc = judge(p, &m);
            buf_consume(&rx->in, m.frame_len);
            return rc;
        }
        if (rc < 0)
            return RX_GARBLED;
        if (!*len)
            return RX_NEED_MORE;
        if (top_up(p, rx, &m, data, len) < 0)
            return RX_GARBLED;
    }
    return RX_NEED_MORE;
}

static int framed_next(const struct payload *p, struct reply_rx *rx, const char **data,
                       size_t *len)
{
    struct codec_msg m;
    if (buf_len(&rx->in)) {
        int rc = finish_partial(p, rx, data, len);
        if (rc != RX_NEED_MORE)
            return rc;
    }
    if (!*len)
        return RX_NEED_MORE;
    int rc = codec_decode(p->proto, *data, *len, p->max_reply, &rx->cs, &m);
    if (rc == CODEC_NEED_MORE) {
        size_t need = m.frame_len > *len ? m.frame_len : *len;
        if (buf_reserve(&rx->in, need) < 0 || buf_append(&rx->in, *data, *len) < 0)
            return RX_GARBLED;
        *data += *len;
        *len = 0;
        return RX_NEED_MORE;
    }
    if (rc < 0)
        return RX_GARBLED;
    rc = judge(p, &m);
    *data += m.frame_len;
    *len -= m.frame_len;
    return rc;
}

/* Expected replies straight from the read, while no partial one waits in rx->in: a
 * line or frame byte for byte equal to the expected one is that reply (the expected
 * payload holds no '\n', and a frame's header is its length). */
static uint32_t framed_take(const struct payload *p, struct reply_rx *rx, const char **data,
                            size_t *len, uint32_t max)
{
    return buf_len(&rx->in) ? 0 : payload_take_echoed(p, data, len, max);
}

const struct proto_ops proto_line_ops = {
    .build = framed_build, .next_reply = framed_next, .take_matched = framed_take};
const struct proto_ops proto_frame_ops = {
    .build = framed_build, .next_reply = framed_next, .take_matched = framed_take};
