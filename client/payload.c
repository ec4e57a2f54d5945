#include "payload.h"

#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* The protocol module of each enum proto. */
static const struct proto_ops *proto_ops_of(enum proto proto)
{
    switch (proto) {
    case PROTO_RAW:
        return &proto_raw_ops;
    case PROTO_LINE:
        return &proto_line_ops;
    case PROTO_FRAME:
        return &proto_frame_ops;
    case PROTO_HTTP:
        return &proto_http_ops;
    case PROTO_UDP:
        return &proto_udp_ops;
    default:
        return NULL;
    }
}

/* Lower-case letters, so that "upper" replies differ from "echo" ones in every byte
 * run, and no '\n' that would cut a line. */
static void fill(char *p, size_t n)
{
    static const char pat[] = "abcdefghijklmnopqrstuvwxyz";
    for (size_t i = 0; i < n; i++)
        p[i] = pat[i % (sizeof pat - 1)];
}

int payload_build_echoed(struct payload *p)
{
    size_t head = p->proto == PROTO_FRAME ? FRAME_HEADER_LEN : 0;
    size_t tail = p->proto == PROTO_LINE ? 1 : 0;
    p->req_len = head + p->size + tail;
    p->req = malloc(p->req_len ? p->req_len : 1);
    p->exp = malloc(p->req_len ? p->req_len : 1);
    if (!p->req || !p->exp)
        return -1;
    if (head)
        codec_frame_header((uint32_t)p->size, (unsigned char *)p->req);
    fill(p->req + head, p->size);
    if (tail)
        p->req[head + p->size] = '\n';
    /* The reply has the request's shape, its payload put through the mode. */
    memcpy(p->exp, p->req, p->req_len);
    mode_apply(p->expect, p->req + head, p->size, p->exp + head);
    p->reply_len = p->req_len;
    p->exp_off = head;
    p->exp_payload_len = p->size;
    p->max_reply = 2 * p->size + 4096;
    return 0;
}

int payload_init(struct payload *p, enum proto proto, enum mode expect, size_t size,
                 size_t copies, const struct http_spec *http, int http_close)
{
    memset(p, 0, sizeof *p);
    p->ops = proto_ops_of(proto);
    p->proto = proto;
    p->expect = expect;
    p->size = size;
    p->copies = copies ? copies : 1;
    p->http = http;
    if (!p->ops || p->ops->build(p, http_close) < 0)
        return -1;
    size_t all = p->req_len * p->copies;
    p->reqs = malloc(all ? all : 1);
    if (!p->reqs)
        return -1;
    for (size_t i = 0; i < p->copies; i++)
        memcpy(p->reqs + i * p->req_len, p->req, p->req_len);
    if (!p->exp)
        return 0;
    p->exps = malloc(p->reply_len * p->copies + 1);
    if (!p->exps)
        return -1;
    for (size_t i = 0; i < p->copies; i++)
        memcpy(p->exps + i * p->reply_len, p->exp, p->reply_len);
    return 0;
}

void payload_free(struct payload *p)
{
    free(p->req);
    free(p->reqs);
    free(p->exp);
    free(p->exps);
    memset(p, 0, sizeof *p);
}

void reply_rx_reset(struct reply_rx *rx, int release)
{
    if (release)
        buf_release(&rx->in);
    else
        buf_clear(&rx->in);
    rx->cs = (struct codec_state){0};
    rx->raw_got = 0;
    rx->raw_bad = 0;
    rx->in_body = 0;
    rx->flags = 0;
}
