#include "codec.h"

#include <string.h>

static const char *const proto_names[PROTO_COUNT] = {
    [PROTO_RAW] = "raw", [PROTO_LINE] = "line", [PROTO_FRAME] = "frame", [PROTO_HTTP] = "http",
    [PROTO_UDP] = "udp",
};

const char *proto_name(enum proto p)
{
    return (unsigned)p < PROTO_COUNT ? proto_names[p] : "?";
}

int proto_parse(const char *name, size_t len, enum proto *out)
{
    for (int i = 0; i < PROTO_COUNT; i++) {
        if (strlen(proto_names[i]) == len && memcmp(proto_names[i], name, len) == 0) {
            *out = (enum proto)i;
            return 0;
        }
    }
    return -1;
}

int codec_frame_decode(const char *p, size_t len, size_t max, struct codec_msg *m)
{
    m->frame_len = 0;
    if (len < FRAME_HEADER_LEN)
        return CODEC_NEED_MORE;
    const unsigned char *u = (const unsigned char *)p;
    uint32_t n = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
    if (n > max)
        return CODEC_TOO_LONG;
    m->frame_len = FRAME_HEADER_LEN + (size_t)n;
    if (len < m->frame_len)
        return CODEC_NEED_MORE;
    m->payload = p + FRAME_HEADER_LEN;
    m->payload_len = n;
    return CODEC_MESSAGE;
}

void codec_frame_header(uint32_t n, unsigned char out[FRAME_HEADER_LEN])
{
    out[0] = (unsigned char)(n >> 24);
    out[1] = (unsigned char)(n >> 16);
    out[2] = (unsigned char)(n >> 8);
    out[3] = (unsigned char)n;
}

int codec_line_decode(const char *p, size_t len, size_t max, struct codec_state *st,
                      struct codec_msg *m)
{
    m->frame_len = 0;
    /* A newline beyond max bytes would make the payload too long: never look further. */
    size_t limit = len > max ? max + 1 : len;
    size_t from = st->scanned < limit ? st->scanned : limit;
    const char *nl = limit > from ? memchr(p + from, '\n', limit - from) : NULL;
    if (!nl) {
        if (len > max)
            return CODEC_TOO_LONG;
        st->scanned = (uint32_t)len;
        return CODEC_NEED_MORE;
    }
    st->scanned = 0;
    m->payload = p;
    m->payload_len = (size_t)(nl - p);
    m->frame_len = m->payload_len + 1;
    return CODEC_MESSAGE;
}

int codec_decode(enum proto proto, const char *p, size_t len, size_t max, struct codec_state *st,
                 struct codec_msg *m)
{
    switch (proto) {
    case PROTO_FRAME:
        return codec_frame_decode(p, len, max, m);
    case PROTO_LINE:
        return codec_line_decode(p, len, max, st, m);
    case PROTO_RAW:
        if (len == 0) {
            m->frame_len = 0;
            return CODEC_NEED_MORE;
        }
        m->payload = p;
        m->payload_len = len;
        m->frame_len = len;
        return CODEC_MESSAGE;
    default:
        return CODEC_INVALID;
    }
}
