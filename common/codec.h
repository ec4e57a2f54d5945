/* codec: cutting a byte stream into messages, for the raw, line and frame protocols.
 *
 * A decoder is given the bytes received so far, starting at a message boundary, and
 * answers "one message of frame_len bytes, payload here", "need more" or "error". It
 * never allocates and never copies: payload points into the caller's bytes. Every
 * length is checked against the caller's limit before the caller could grow a buffer
 * for it. The HTTP codec lives in http_parse.h; it follows the same contract. */
#ifndef WHARF_CODEC_H
#define WHARF_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* PROTO_UDP: datagrams, each one a message (wharfd's udp:// listeners, wharf bench and
 * send); no stream codec applies to it. */
enum proto { PROTO_RAW, PROTO_LINE, PROTO_FRAME, PROTO_HTTP, PROTO_UDP, PROTO_COUNT };

/* "raw", "line", "frame", "http", "udp". */
const char *proto_name(enum proto p);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int proto_parse(const char *name, size_t len, enum proto *out);

enum codec_status {
    CODEC_NEED_MORE = 0,
    CODEC_MESSAGE = 1,
    CODEC_TOO_LONG = -1, /* message larger than the limit */
    CODEC_INVALID = -2,  /* bytes that can never start a valid message */
};

struct codec_msg {
    const char *payload;
    size_t payload_len;
    /* CODEC_MESSAGE: bytes of the stream the message occupies.
     * CODEC_NEED_MORE: total bytes the message will occupy when known, else 0
     * (lets the caller size its buffer once instead of growing it step by step). */
    size_t frame_len;
};

/* Per-connection resume hints, so a message arriving a byte at a time is not
 * rescanned from its start on every read. Zero means "start over". Decoders reset
 * it when they return a message. */
struct codec_state {
    uint32_t scanned;
    uint32_t aux1;
    uint32_t aux2;
};

/* Frame: 4-byte unsigned big-endian length, then that many payload bytes. */
#define FRAME_HEADER_LEN 4
int codec_frame_decode(const char *p, size_t len, size_t max, struct codec_msg *m);
void codec_frame_header(uint32_t payload_len, unsigned char out[FRAME_HEADER_LEN]);

/* Line: payload is everything before '\n' (a '\r' before it stays in the payload,
 * so echoing payload + "\n" keeps a CRLF line a CRLF line). */
int codec_line_decode(const char *p, size_t len, size_t max, struct codec_state *st,
                      struct codec_msg *m);

/* Decode one message of a raw/line/frame stream (PROTO_RAW: all bytes are one message). */
int codec_decode(enum proto proto, const char *p, size_t len, size_t max, struct codec_state *st,
                 struct codec_msg *m);

#endif
