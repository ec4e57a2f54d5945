#include "kernel_metrics.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"

/* The kernel's TCP_LISTEN state (include/net/tcp_states.h); glibc does not name it. */
#define STATE_LISTEN 10

/* Entries of /proc/self/fd, as Prometheus's collector counts them; -1 if unreadable. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* The start time in seconds since the epoch: /proc/self/stat's starttime (clock ticks
 * since boot) plus /proc/stat's btime. Returns 0, or -1. */
static int start_time(double *out)
{
    unsigned long long ticks = 0, btime = 0;
    char line[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *p = strrchr(line, ')'); /* the command name may hold spaces and ')' */
    /* after ')': field 3 (state) ... field 22 (starttime) */
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
                            "%*d %*d %*d %*d %llu", &ticks) != 1)
        return -1;
    if (!(f = fopen("/proc/stat", "re")))
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (!btime || hz <= 0)
        return -1;
    *out = (double)btime + (double)ticks / (double)hz;
    return 0;
}

static int gauge(struct buf *out, const char *name, const char *type, const char *help,
                 double v)
{
    return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.15g\n", name, help, name, type,
                      name, v);
}

int kernel_metrics_process(struct buf *out)
{
    int rc = 0;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        rc |= gauge(out, "process_cpu_seconds_total", "counter",
                    "user and system CPU time spent in seconds",
                    (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                        (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    long fds = open_fds();
    if (fds >= 0)
        rc |= gauge(out, "process_open_fds", "gauge", "number of open file descriptors",
                    (double)fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        rc |= gauge(out, "process_max_fds", "gauge", "maximum number of open file descriptors",
                    (double)rl.rlim_cur);
    unsigned long long vm, rss;
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (fscanf(f, "%llu %llu", &vm, &rss) == 2 && page > 0) {
            rc |= gauge(out, "process_resident_memory_bytes", "gauge",
                        "resident memory size in bytes", (double)rss * (double)page);
            rc |= gauge(out, "process_virtual_memory_bytes", "gauge",
                        "virtual memory size in bytes", (double)vm * (double)page);
        }
        fclose(f);
    }
    double start;
    if (start_time(&start) == 0)
        rc |= gauge(out, "process_start_time_seconds", "gauge",
                    "start time of the process since unix epoch in seconds", start);
    return rc;
}

/* Adds l's queue to *len and *limit: 1, or 0 when l is not a listening TCP socket now. */
static int listen_queue(const struct listener *l, unsigned long long *len,
                        unsigned long long *limit)
{
    struct tcp_info ti;
    socklen_t sl = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (l->fd < 0 || getsockopt(l->fd, IPPROTO_TCP, TCP_INFO, &ti, &sl) < 0 ||
        ti.tcpi_state != STATE_LISTEN)
        return 0;
    *len += ti.tcpi_unacked;
    *limit += ti.tcpi_sacked;
    return 1;
}

/* One of the two families: limit 0 for the lengths, 1 for the limits. */
static int queue_family(struct buf *out, const struct listener *ls, int n, int limit)
{
    int rc = 0, described = 0;
    for (int i = 0; i < n;) {
        char text[LISTEN_SPEC_TEXT_MAX], next[LISTEN_SPEC_TEXT_MAX];
        listen_spec_format(&ls[i].ep, text, sizeof text);
        unsigned long long v[2] = {0, 0};
        int seen = 0, j = i;
        for (; j < n; j++) {
            listen_spec_format(&ls[j].ep, next, sizeof next);
            if (strcmp(next, text) != 0)
                break;
            seen |= listen_queue(&ls[j], &v[0], &v[1]);
        }
        if (seen && !described++)
            rc |= buf_printf(out, "# HELP wharf_listen_queue_%s %s\n"
                                  "# TYPE wharf_listen_queue_%s gauge\n",
                             limit ? "limit" : "length",
                             limit ? "the listen backlog the kernel applies"
                                   : "connections the kernel completed and wharfd has not "
                                     "accepted yet",
                             limit ? "limit" : "length");
        char addr[ADDR_TEXT_MAX]; /* the label is the address; proto is the scheme */
        addr_format((const struct sockaddr *)&ls[i].ep.sa, addr, sizeof addr);
        if (seen)
            rc |= buf_printf(out, "wharf_listen_queue_%s{listener=\"%s\",proto=\"%s\"} %llu\n",
                             limit ? "limit" : "length", addr, listen_spec_scheme(&ls[i].ep),
                             v[limit]);
        i = j;
    }
    return rc;
}

int kernel_metrics_listen_queues(struct buf *out, const struct listener *ls, int n)
{
    return queue_family(out, ls, n, 0) | queue_family(out, ls, n, 1);
}
