/* proto_udp: datagrams. A request is the run's payload with its sequence number in the
 * first UDP_SEQ_LEN bytes (stamped by the driver before each send); a reply is one whole
 * datagram, checked against the expected bytes after the sequence number (the driver
 * matches the number itself). */
#include <string.h>

#include "payload.h"
#include "proto.h"

static int udp_build(struct payload *p, int http_close)
{
    (void)http_close;
    if (payload_build_echoed(p) < 0)
        return -1;
    size_t n = p->req_len < UDP_SEQ_LEN ? p->req_len : UDP_SEQ_LEN;
    memset(p->req, '0', n); /* digits: --mode upper leaves them alone */
    memset(p->exp, '0', n);
    p->max_reply = UDP_MAX_DGRAM;
    return 0;
}

/* All of (*data, *len) is one datagram. */
static int udp_next(const struct payload *p, struct reply_rx *rx, const char **data, size_t *len)
{
    (void)rx;
    size_t n = *len;
    const char *d = *data;
    *data += n;
    *len = 0;
    if (n != p->reply_len || n < UDP_SEQ_LEN)
        return RX_MISMATCH;
    return memcmp(d + UDP_SEQ_LEN, p->exp + UDP_SEQ_LEN, n - UDP_SEQ_LEN) == 0 ? RX_OK
                                                                              : RX_MISMATCH;
}

const struct proto_ops proto_udp_ops = {.build = udp_build, .next_reply = udp_next};
