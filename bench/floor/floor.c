/* floor: the smallest server that does what the benchmarks ask of wharfd, so that
 * bench/http and bench/echo can say how far wharfd is from the floor.
 *
 *   floor http  PORT [ADDR]   answers every request on any path with wharfd's
 *                             "Hello, World!" (Connection: close honoured)
 *   floor frame PORT [ADDR]   echoes 4-byte length-prefixed frames upper-cased,
 *                             like wharfd's frame:// listener in its default mode
 *   floor udp   PORT [ADDR]   answers datagrams upper-cased (floor_udp.c: recvmmsg,
 *                             sendmmsg, one socket)
 *
 * One thread, one epoll set (level-triggered), no timers, no limits beyond a fixed
 * buffer: accept everything that is queued, read everything that arrived, answer all
 * complete requests of that read with one write. A partial write keeps the rest and
 * waits for EPOLLOUT. Built by build.mk as build/floor (from the common objects, so the
 * frame format and the transform are wharfd's own). Not a server to deploy: a yardstick.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "floor_udp.h"
#include "mode.h"

#define BUF_SIZE (256 * 1024)
#define MAX_PENDING (64 * 1024)

struct conn {
    char *in;       /* bytes of an incomplete request, kept for the next read */
    size_t in_len;
    char *out;      /* bytes a short write left */
    size_t out_len;
    int close_after; /* close once out is written */
};

static struct conn *conns;
static size_t nconns;
static int ep;
static int http; /* 1: HTTP, 0: frame */
static char inbuf[BUF_SIZE + MAX_PENDING + 1]; /* + 1: serve_http's terminator */
static char outbuf[BUF_SIZE * 2];

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void conn_close(int fd)
{
    struct conn *c = &conns[fd];
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
    close(fd); /* also leaves the epoll set */
}

/* The response (last: the one that announces the close), with a Date header
 * refreshed once a second as wharfd's is. */
static size_t hello(char *dst, int last)
{
    static time_t sec;
    static char resp[2][256];
    static size_t resp_len[2];
    time_t now = time(NULL);
    if (now != sec) {
        char date[64];
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        for (int i = 0; i < 2; i++)
            resp_len[i] = (size_t)snprintf(resp[i], sizeof resp[i],
                                           "HTTP/1.1 200 OK\r\nServer: floor\r\nDate: %s\r\n"
                                           "Content-Type: text/plain\r\nContent-Length: 13\r\n"
                                           "%s\r\nHello, World!", date,
                                           i ? "Connection: close\r\n" : "");
        sec = now;
    }
    memcpy(dst, resp[last], resp_len[last]);
    return resp_len[last];
}

/* HTTP: every complete header block (requests without bodies) gets the response.
 * Returns bytes consumed; *out and *out_len: the reply; *close_after on Connection: close. */
static size_t serve_http(char *buf, size_t len, const char **out, size_t *out_len,
                         int *close_after)
{
    size_t off = 0, n = 0;
    buf[len] = '\0';
    while (off < len && n + 256 < sizeof outbuf) {
        char *end = strstr(buf + off, "\r\n\r\n");
        if (!end)
            break;
        *end = '\0';
        int cl = strcasestr(buf + off, "\nconnection: close") != NULL;
        *end = '\r';
        n += hello(outbuf + n, cl);
        off = (size_t)(end + 4 - buf);
        if (cl) {
            *close_after = 1;
            break;
        }
    }
    *out = outbuf;
    *out_len = n;
    return off;
}

/* Frames: upper-case each complete frame's payload in place; the reply is the
 * consumed prefix itself (same header, same length). Returns (size_t)-1 on a frame
 * that can never fit. */
static size_t serve_frame(char *buf, size_t len, const char **out, size_t *out_len)
{
    size_t off = 0;
    struct codec_msg m;
    int r;
    while ((r = codec_frame_decode(buf + off, len - off, BUF_SIZE - FRAME_HEADER_LEN, &m)) ==
           CODEC_MESSAGE) {
        mode_apply(MODE_UPPER, m.payload, m.payload_len, (char *)m.payload);
        off += m.frame_len;
    }
    if (r == CODEC_TOO_LONG)
        return (size_t)-1;
    *out = buf;
    *out_len = off;
    return off;
}

static int keep(char **dst, size_t *dst_len, const char *src, size_t n)
{
    char *p = realloc(*dst, n ? n : 1);
    if (!p)
        return -1;
    memcpy(p, src, n);
    *dst = p;
    *dst_len = n;
    return 0;
}

/* Write what is owed; 0: all written, 1: some left (EPOLLOUT armed), -1: close. */
static int flush(int fd, const char *p, size_t n)
{
    struct conn *c = &conns[fd];
    ssize_t w = n ? write(fd, p, n) : 0;
    if (w < 0 && errno != EAGAIN)
        return -1;
    size_t done = w < 0 ? 0 : (size_t)w;
    if (done == n) {
        c->out_len = 0;
        return 0;
    }
    if (keep(&c->out, &c->out_len, p + done, n - done) < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0 ? -1 : 1;
}

static void on_writable(int fd)
{
    struct conn *c = &conns[fd];
    char *rest = c->out;
    size_t n = c->out_len;
    c->out = NULL;
    int r = flush(fd, rest, n);
    free(rest);
    if (r < 0 || (r == 0 && c->close_after)) {
        conn_close(fd);
    } else if (r == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0)
            conn_close(fd);
    }
}

static void on_readable(int fd)
{
    struct conn *c = &conns[fd];
    size_t have = c->in_len;
    if (have) /* c->in is NULL while nothing is kept: memcpy's pointers must be valid */
        memcpy(inbuf, c->in, have);
    ssize_t r = read(fd, inbuf + have, BUF_SIZE);
    if (r < 0 && errno == EAGAIN)
        return;
    if (r <= 0) {
        conn_close(fd);
        return;
    }
    size_t len = have + (size_t)r, used, out_len = 0;
    const char *out = NULL;
    used = http ? serve_http(inbuf, len, &out, &out_len, &c->close_after)
                : serve_frame(inbuf, len, &out, &out_len);
    if (used == (size_t)-1 || (len - used > MAX_PENDING) ||
        keep(&c->in, &c->in_len, inbuf + used, len - used) < 0) {
        conn_close(fd);
        return;
    }
    int w = flush(fd, out, out_len);
    if (w < 0 || (w == 0 && c->close_after))
        conn_close(fd);
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: queue drained; anything else: try again next wake-up */
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if ((size_t)fd >= nconns || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            close(fd);
    }
}

static int listen_on(const char *addr, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "floor: bad IPv4 address %s\n", addr);
        exit(2);
    }
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        die("setsockopt");
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("bind");
    if (listen(fd, 4096) < 0)
        die("listen");
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "http") && strcmp(argv[1], "frame") &&
                     strcmp(argv[1], "udp"))) {
        fprintf(stderr, "usage: floor http|frame|udp PORT [IPV4-ADDR]\n");
        return 2;
    }
    if (strcmp(argv[1], "udp") == 0)
        return floor_udp(argc > 3 ? argv[3] : "127.0.0.1", atoi(argv[2]));
    http = strcmp(argv[1], "http") == 0;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("getrlimit");
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("setrlimit");
    nconns = rl.rlim_cur > 1048576 ? 1048576 : rl.rlim_cur;
    conns = calloc(nconns, sizeof *conns);
    if (!conns)
        die("calloc");
    int lfd = listen_on(argc > 3 ? argv[3] : "127.0.0.1", atoi(argv[2]));
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[512];
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll_ctl");
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd)
                on_accept(lfd);
            else if (evs[i].events & EPOLLOUT)
                on_writable(fd);
            else
                on_readable(fd);
        }
    }
}
