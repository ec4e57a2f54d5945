/* payload: the request bytes a load generator sends, computed once, and the check of
 * every reply against what the server's --mode must return. */
#ifndef WHARF_PAYLOAD_H
#define WHARF_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/codec.h"
#include "../common/http_resp.h"
#include "../common/mode.h"
#include "http_spec.h"

struct proto_ops;

struct payload {
    const struct proto_ops *ops; /* the protocol module (proto.h) */
    enum proto proto;
    enum mode expect;
    size_t size;         /* payload bytes */
    char *req;           /* one request as sent on the wire */
    size_t req_len;
    char *reqs;          /* `copies` requests back to back: a pipeline is one write */
    size_t copies;
    char *exp;           /* raw/line/frame: the exact reply expected on the wire */
    char *exps;          /* `copies` of exp back to back: a pipeline's replies at once */
    size_t reply_len;
    size_t exp_off;      /* where the reply's payload starts in exp */
    size_t exp_payload_len;
    size_t max_reply;    /* replies longer than this are garbled */
    const struct http_spec *http; /* http: the request and its checks */
    int head_request;    /* http: HEAD, so responses have no body */
};

/* Build the request and the expected reply. http sends what the spec says (method,
 * path, Host, -H fields, body), with 'Connection: close' when http_close. Returns 0
 * or -1 (no memory). */
int payload_init(struct payload *p, enum proto proto, enum mode expect, size_t size,
                 size_t copies, const struct http_spec *http, int http_close);
void payload_free(struct payload *p);

/* udp: every request starts with its sequence number, 8 decimal digits (unchanged by
 * --mode upper), modulo UDP_SEQ_MOD; a datagram holds at most UDP_MAX_DGRAM bytes. */
#define UDP_SEQ_LEN 8
#define UDP_SEQ_MOD 100000000ull
#define UDP_MAX_DGRAM 65507

/* Reply parsing state of one connection: a partial reply, when a read ends inside one.
 * A connection speaks one protocol, so each protocol's own state shares the union
 * (hold keeps one of these per held connection). */
struct reply_rx {
    struct buf in;
    /* http: the response being received, and what the last complete one was; flags
     * stays 0 under the other protocols */
    uint8_t flags;    /* RXF_* of the response being received, then of the last one */
    /* Bit-fields: hold keeps one reply_rx per held connection, and two bytes here
     * would cost eight once aligned. */
    uint8_t head : 1;    /* set by the driver: this response answers a HEAD (a script's
                          * mix of methods), so it has no body whatever its fields say */
    uint8_t in_body : 1; /* its head is done, its body under way */
    uint16_t status;
    uint32_t body_seen; /* --expect-body: bytes compared so far */
    union {
        struct codec_state cs;  /* line and frame */
        struct {                /* raw */
            uint32_t raw_got;   /* bytes of the current reply seen */
            uint8_t raw_bad;
        };
        struct http_body body;  /* http */
    };
};

/* What proto_http says about the response it returned, beside RX_OK / RX_MISMATCH. */
enum {
    RXF_CLOSE = 1,      /* the server closes after it: reconnect */
    RXF_NON2XX = 2,     /* status 400 or above (wrk's "Non-2xx or 3xx responses") */
    RXF_BAD_STATUS = 4, /* not one of --expect-status */
    RXF_BAD_BODY = 8,   /* not --expect-body */
};

enum {
    RX_GARBLED = -1,  /* not a reply at all: the stream cannot be trusted any more */
    RX_NEED_MORE = 0,
    RX_OK = 1,
    RX_MISMATCH = 2,  /* a well-formed reply with the wrong content (or HTTP status) */
};


#include "proto.h"

/* Take the next reply from (*data, *len) (advanced past what was used; bytes of a partial
 * reply are kept in rx), through the protocol module. Call until it returns
 * RX_NEED_MORE or RX_GARBLED. Inline: it is on every reply's path. */
static inline int reply_next(const struct payload *p, struct reply_rx *rx, const char **data,
                             size_t *len)
{
    return p->ops->next_reply(p, rx, data, len);
}

/* Take at most max replies that are exactly the expected one (proto.h: take_matched);
 * 0 for a protocol without that fast path. Each is RX_OK with no flags. */
static inline uint32_t reply_take_matched(const struct payload *p, struct reply_rx *rx,
                                          const char **data, size_t *len, uint32_t max)
{
    return p->ops->take_matched ? p->ops->take_matched(p, rx, data, len, max) : 0;
}

/* The request and expected reply of raw, line and frame: the request's shape with its
 * payload put through the mode (proto_raw.c, proto_framed.c). 0 or -1 (no memory). */
int payload_build_echoed(struct payload *p);

/* raw, line and frame's take_matched, once the module has no partial reply: whole
 * copies of p->exp at the start of (*data, *len), at most max; how many were taken.
 * Inline: it is the whole fast path. */
static inline uint32_t payload_take_echoed(const struct payload *p, const char **data,
                                           size_t *len, uint32_t max)
{
    const char *d = *data;
    size_t n = *len, r = p->reply_len;
    uint32_t k = 0;
    if (!r)
        return 0; /* an empty reply is never a whole one */
    if (max > 1 && n >= 2 * r) { /* several whole replies: one compare for all */
        size_t all = n / r < max ? n / r : max;
        if (all > p->copies)
            all = p->copies;
        if (all > 1 && memcmp(d, p->exps, all * r) == 0) {
            *data = d + all * r;
            *len = n - all * r;
            return (uint32_t)all;
        }
    }
    while (k < max && n >= r && memcmp(d, p->exp, r) == 0) { /* up to the first wrong one */
        d += r;
        n -= r;
        k++;
    }
    *data = d;
    *len = n;
    return k;
}

/* Forget any partial reply (the connection is gone); keeps the memory unless release. */
void reply_rx_reset(struct reply_rx *rx, int release);

#endif
