/* proto_raw: no framing. A reply is complete when as many bytes came back as were sent
 * (wharfd answers byte for byte), compared with the expected bytes as they stream in:
 * nothing is buffered. */
#include <string.h>

#include "payload.h"
#include "proto.h"

static int raw_build(struct payload *p, int http_close)
{
    (void)http_close;
    return payload_build_echoed(p);
}

static int raw_next(const struct payload *p, struct reply_rx *rx, const char **data, size_t *len)
{
    while (*len) {
        size_t want = p->reply_len - rx->raw_got;
        size_t n = *len < want ? *len : want;
        if (memcmp(*data, p->exp + rx->raw_got, n) != 0)
            rx->raw_bad = 1;
        rx->raw_got += (uint32_t)n;
        *data += n;
        *len -= n;
        if (rx->raw_got == p->reply_len) {
            int bad = rx->raw_bad;
            rx->raw_got = 0;
            rx->raw_bad = 0;
            return bad ? RX_MISMATCH : RX_OK;
        }
    }
    return RX_NEED_MORE;
}

/* Whole expected replies from the read, while none is under way (raw_got). */
static uint32_t raw_take(const struct payload *p, struct reply_rx *rx, const char **data,
                         size_t *len, uint32_t max)
{
    return rx->raw_got ? 0 : payload_take_echoed(p, data, len, max);
}

const struct proto_ops proto_raw_ops = {
    .build = raw_build, .next_reply = raw_next, .take_matched = raw_take};
