#include "sd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SD_LISTEN_FDS_START 3

/* Used by the main thread only. */
static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;

int sd_notify_open(char *err, size_t errlen)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    size_t n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof notify_addr.sun_path) {
        snprintf(err, errlen, "NOTIFY_SOCKET='%s' is neither a path nor an @abstract name", path);
        return -1;
    }
    memset(&notify_addr, 0, sizeof notify_addr);
    notify_addr.sun_family = AF_UNIX;
    memcpy(notify_addr.sun_path, path, n);
    if (path[0] == '@')
        notify_addr.sun_path[0] = '\0'; /* abstract namespace: the length says where it ends */
    notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify_fd < 0) {
        snprintf(err, errlen, "notify socket: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int sd_notify_enabled(void) { return notify_fd >= 0; }

void sd_notify(const char *fmt, ...)
{
    if (notify_fd < 0)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n <= 0 || (size_t)n >= sizeof msg)
        return;
    /* Best effort: a manager that went away must not stop the server. */
    while (sendto(notify_fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&notify_addr,
                  notify_len) < 0 && errno == EINTR)
        ;
}

void sd_notify_close(void)
{
    if (notify_fd >= 0)
        close(notify_fd);
    notify_fd = -1;
}

static int env_is_our_pid(const char *name)
{
    const char *v = getenv(name);
    if (!v)
        return -1; /* unset */
    char *end;
    long pid = strtol(v, &end, 10);
    return *end == '\0' && pid == (long)getpid();
}

uint64_t sd_watchdog_usec(void)
{
    const char *v = getenv("WATCHDOG_USEC");
    if (!v || env_is_our_pid("WATCHDOG_PID") == 0)
        return 0;
    char *end;
    unsigned long long usec = strtoull(v, &end, 10);
    return *end == '\0' ? usec : 0;
}

static int check_listening_stream(int fd, char *err, size_t errlen)
{
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        snprintf(err, errlen, "inherited fd %d is not a socket (%s)", fd, strerror(errno));
        return -1;
    }
    if (type == SOCK_DGRAM) {
        /* udp:// sockets are one per worker (SO_REUSEPORT), which one inherited socket
         * cannot be: refused rather than served by a single worker. */
        snprintf(err, errlen, "inherited fd %d is a datagram socket; udp:// listeners are "
                 "bound by wharfd itself (--listen udp://HOST:PORT)", fd);
        return -1;
    }
    len = sizeof listening;
    if (type != SOCK_STREAM || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
        !listening) {
        snprintf(err, errlen, "inherited fd %d is not a listening stream socket", fd);
        return -1;
    }
    return 0;
}

/* The name of fd number i in $LISTEN_FDNAMES, copied into name. */
static void nth_name(const char *names, int i, char *name, size_t n)
{
    name[0] = '\0';
    if (!names)
        return;
    for (const char *p = names; i >= 0; i--) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (i == 0) {
            snprintf(name, n, "%.*s", (int)len, p);
            return;
        }
        if (!colon)
            return;
        p = colon + 1;
    }
}

static int adopt(int fd, const char *name, struct listener *l, char *err, size_t errlen)
{
    if (check_listening_stream(fd, err, errlen) < 0)
        return -1;
    /* "http", "http-anything" or (once a modifier exists) "http+proxy-public": the
     * listener's scheme is the name up to the first '-' or '.', read as --listen reads
     * the part before "://". */
    char why[192];
    memset(&l->ep, 0, sizeof l->ep);
    if (listen_spec_parse_name(name, strcspn(name, "-."), &l->ep, why, sizeof why) < 0) {
        snprintf(err, errlen,
                 "inherited fd %d is named '%s': %s; set FileDescriptorName= in the .socket "
                 "unit",
                 fd, name, why);
        return -1;
    }
    l->fd = fd;
    socklen_t len = sizeof l->ep.sa;
    int flags = fcntl(fd, F_GETFL);
    if (getsockname(fd, (struct sockaddr *)&l->ep.sa, &len) < 0 || flags < 0 ||
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        snprintf(err, errlen, "inherited fd %d: %s", fd, strerror(errno));
        return -1;
    }
    l->ep.sa_len = len;
    return 0;
}

int sd_listen_fds(struct listener *out, int max, char *err, size_t errlen)
{
    const char *fds = getenv("LISTEN_FDS");
    if (!fds || env_is_our_pid("LISTEN_PID") != 1)
        return 0;
    char *end;
    long n = strtol(fds, &end, 10);
    if (*end != '\0' || n < 1 || n > max) {
        snprintf(err, errlen, "LISTEN_FDS='%s': expected 1 to %d sockets", fds, max);
        return -1;
    }
    const char *names = getenv("LISTEN_FDNAMES");
    for (int i = 0; i < n; i++) {
        char name[64];
        nth_name(names, i, name, sizeof name);
        if (adopt(SD_LISTEN_FDS_START + i, name, &out[i], err, errlen) < 0)
            return -1;
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return (int)n;
}
