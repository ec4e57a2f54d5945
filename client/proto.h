/* proto: a load protocol behind one small interface, so that the engine and the
 * drivers never look at the bytes on the wire.
 *
 * A protocol module (proto_raw.c, proto_framed.c for line and frame, proto_http.c)
 * builds the request once -- every request of a run is the same bytes, so the engine
 * can send a pipeline of them in one write -- and the reply it expects, and then
 * consumes received bytes: each call reports one completed reply (matched or not), or
 * that it needs more bytes, or a protocol error after which the stream cannot be
 * trusted. A module whose replies are compared byte for byte also takes a whole read's
 * worth of matching replies in one call (take_matched), so that a pipeline's replies
 * cost one call, not one each. Adding a protocol: a new proto_NAME.c with one
 * `const struct proto_ops`, its entry in proto_ops_of() (payload.c), and its name in
 * common/codec's proto list. */
#ifndef WHARF_PROTO_H
#define WHARF_PROTO_H

#include <stddef.h>

struct payload;
struct reply_rx;

struct proto_ops {
    /* Fill p's request (p->req, p->req_len), the expected reply when the protocol
     * checks bytes (p->exp, p->reply_len, p->exp_off, p->exp_payload_len) and
     * p->max_reply, from p->proto, p->expect, p->size, p->http and http_close. 0, or -1
     * (no memory). */
    int (*build)(struct payload *p, int http_close);
    /* Take the next reply from (*data, *len), advancing past what it used; a reply cut
     * by the end of the bytes is kept in rx. Returns RX_OK, RX_MISMATCH, RX_NEED_MORE
     * (all used, no reply complete) or RX_GARBLED (protocol error). */
    int (*next_reply)(const struct payload *p, struct reply_rx *rx, const char **data,
                      size_t *len);
    /* The fast path, optional: take from (*data, *len) the replies that are exactly
     * the expected one, back to back, at most max, in one call, and return how many;
     * stop at anything else (a partial reply in rx, a short or different reply),
     * which next_reply then takes. Such a reply is RX_OK with no flags: the caller
     * only counts it. */
    uint32_t (*take_matched)(const struct payload *p, struct reply_rx *rx, const char **data,
                             size_t *len, uint32_t max);
    /* The peer closed: a reply that ends with the close (HTTP's body up to the close)
     * is complete now (RX_OK or RX_MISMATCH); otherwise RX_NEED_MORE. Optional. */
    int (*at_eof)(const struct payload *p, struct reply_rx *rx);
};

extern const struct proto_ops proto_raw_ops;
extern const struct proto_ops proto_line_ops;
extern const struct proto_ops proto_frame_ops;
extern const struct proto_ops proto_http_ops;
extern const struct proto_ops proto_udp_ops;

#endif
