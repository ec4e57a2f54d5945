#include "send.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/codec.h"
#include "../common/opts.h"
#include "net.h"

#define REPLY_TIMEOUT_S 10
#define MAX_REPLY (64u << 20)

static void usage(FILE *f)
{
    fprintf(f, "Usage: wharf send [--proto raw|line|frame|udp] [PROTO://][HOST:]PORT\n"
               "Send each line typed (or piped in) and print the reply, like the tutorial's\n"
               "client: a '>>> ' prompt on a terminal, empty lines skipped, 'quit' or EOF ends.\n"
               "  -p, --proto P     raw (default), line, frame or udp (one datagram per line)\n"
               "  -h, --help        this help\n"
               "Default address: 127.0.0.1:9000.\n");
}

static char *strip(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static int send_request(int fd, enum proto proto, const char *msg, size_t len)
{
    if (proto == PROTO_UDP) /* one datagram: its boundary is the message's */
        return send(fd, msg, len, 0) == (ssize_t)len ? 0 : -1;
    if (proto == PROTO_FRAME) {
        unsigned char h[FRAME_HEADER_LEN];
        codec_frame_header((uint32_t)len, h);
        if (net_write_all(fd, h, sizeof h) < 0)
            return -1;
    }
    if (net_write_all(fd, msg, len) < 0)
        return -1;
    return proto == PROTO_LINE ? net_write_all(fd, "\n", 1) : 0;
}

/* Read until the reply is complete: one line, one frame, or (raw, which has no
 * framing) as many bytes as were sent, since the server answers byte for byte. */
/* udp: the reply is the next datagram, whole. */
static int read_datagram(int fd, struct buf *in, struct codec_msg *m)
{
    if (buf_reserve(in, 65536) < 0)
        return -1;
    ssize_t n;
    do
        n = recv(fd, buf_tail(in), buf_room(in), 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN)
            fprintf(stderr, "wharf: no reply within %d s (UDP: the datagram or its reply "
                            "may have been lost)\n", REPLY_TIMEOUT_S);
        else
            fprintf(stderr, "wharf: recv: %s\n", strerror(errno));
        return -1;
    }
    buf_commit(in, (size_t)n);
    *m = (struct codec_msg){.payload = buf_head(in), .payload_len = (size_t)n,
                            .frame_len = (size_t)n};
    return 0;
}

static int read_reply(int fd, enum proto proto, size_t sent, struct buf *in, struct codec_msg *m)
{
    if (proto == PROTO_UDP)
        return read_datagram(fd, in, m);
    struct codec_state cs = {0};
    for (;;) {
        int rc = proto == PROTO_RAW
                     ? (buf_len(in) >= sent ? CODEC_MESSAGE : CODEC_NEED_MORE)
                     : codec_decode(proto, buf_head(in), buf_len(in), MAX_REPLY, &cs, m);
        if (rc == CODEC_MESSAGE) {
            if (proto == PROTO_RAW)
                *m = (struct codec_msg){.payload = buf_head(in), .payload_len = sent, .frame_len = sent};
            return 0;
        }
        if (rc < 0) {
            fprintf(stderr, "wharf: malformed reply\n");
            return -1;
        }
        if (buf_reserve(in, 4096) < 0)
            return -1;
        ssize_t n = recv(fd, buf_tail(in), buf_room(in), 0);
        if (n > 0) {
            buf_commit(in, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            fprintf(stderr, "wharf: the server closed the connection\n");
        else if (errno == EAGAIN)
            fprintf(stderr, "wharf: no reply within %d s\n", REPLY_TIMEOUT_S);
        else
            fprintf(stderr, "wharf: recv: %s\n", strerror(errno));
        return -1;
    }
}

static int run(int fd, enum proto proto)
{
    int tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t cap = 0;
    struct buf in = {0};
    int status = 0;
    for (;;) {
        if (tty) {
            fputs(">>> ", stdout);
            fflush(stdout);
        }
        if (getline(&line, &cap, stdin) < 0)
            break;
        char *msg = strip(line);
        if (*msg == '\0')
            continue; /* the tutorial's lesson: never send an empty message */
        if (strcmp(msg, "quit") == 0)
            break;
        size_t len = strlen(msg);
        struct codec_msg m;
        if (send_request(fd, proto, msg, len) < 0) {
            fprintf(stderr, "wharf: send: %s\n", strerror(errno));
            status = 1;
            break;
        }
        if (read_reply(fd, proto, len, &in, &m) < 0) {
            status = 1;
            break;
        }
        size_t plen = m.payload_len;
        if (proto == PROTO_LINE && plen && m.payload[plen - 1] == '\r')
            plen--;
        fwrite(m.payload, 1, plen, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        buf_consume(&in, m.frame_len);
    }
    free(line);
    buf_release(&in);
    return status;
}

/* A datagram socket connected to ep (only its replies arrive), or -1 with err set. */
static int udp_socket(const struct endpoint *ep, char *err, size_t errlen)
{
    int fd = socket(ep->sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&ep->sa, ep->sa_len) < 0) {
        snprintf(err, errlen, "udp socket: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* The flags: --proto into *proto (*have_proto set). 0 to go on, 1 after --help, 2 on a
 * usage error (reported). */
static int parse_flags(int argc, char **argv, enum proto *proto, int *have_proto)
{
    static const struct option opts[] = {
        {"proto", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int c, longindex = -1;
    char why[128];
    for (; (c = getopt_long(argc, argv, "p:h", opts, &longindex)) != -1; longindex = -1) {
        if (longindex >= 0 && opts_abbreviated(argv, optind, optarg, opts[longindex].name, why,
                                               sizeof why)) {
            fprintf(stderr, "wharf send: %s\n", why);
            return 2;
        }
        if (c == 'h') {
            usage(stdout);
            return 1;
        }
        if (c != 'p' || proto_parse(optarg, strlen(optarg), proto) < 0 || *proto == PROTO_HTTP) {
            if (c == 'p')
                fprintf(stderr, "wharf send: --proto: expected raw, line, frame or udp, got '%s'\n",
                        optarg);
            else
                usage(stderr);
            return 2;
        }
        *have_proto = 1;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "wharf send: one address at most (see wharf send --help)\n");
        return 2;
    }
    return 0;
}

/* The address (or the default), its protocol checked against --proto. 0 or 2 (reported). */
static int parse_address(const char *text, struct endpoint *ep, enum proto *proto, int have_proto)
{
    char err[256];
    if (addr_parse(text ? text : "127.0.0.1:9000", ep, err, sizeof err) < 0) {
        fprintf(stderr, "wharf send: %s\n", err);
        return 2;
    }
    if (!ep->has_proto)
        return 0;
    if (have_proto && ep->proto != *proto) {
        fprintf(stderr, "wharf send: --proto %s contradicts the address's %s://\n",
                proto_name(*proto), proto_name(ep->proto));
        return 2;
    }
    if (ep->proto == PROTO_HTTP) {
        fprintf(stderr, "wharf send: http is not a send protocol (use curl)\n");
        return 2;
    }
    *proto = ep->proto;
    return 0;
}

int send_main(int argc, char **argv)
{
    enum proto proto = PROTO_RAW;
    int have_proto = 0;
    struct endpoint ep;
    char err[256];
    int rc = parse_flags(argc, argv, &proto, &have_proto);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (parse_address(optind < argc ? argv[optind] : NULL, &ep, &proto, have_proto))
        return 2;
    int fd = proto == PROTO_UDP ? udp_socket(&ep, err, sizeof err)
                                : net_connect(&ep, 5000, err, sizeof err);
    if (fd < 0) {
        fprintf(stderr, "wharf send: %s\n", err);
        return 1;
    }
    struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int status = run(fd, proto);
    close(fd);
    return status;
}
