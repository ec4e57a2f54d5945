/* settings: the shape of wharfd's configuration, data only: the limits, the enums,
 * what SIGHUP can change (struct settings) and the whole of it (struct config). The
 * table that fills it is option_table.c; reading flags and files, config.c. */
#ifndef WHARF_SETTINGS_H
#define WHARF_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/addr.h"
#include "../common/cidr.h"
#include "../common/log.h"
#include "../common/mode.h"
#include "listen_spec.h"

#define MAX_LISTENERS 16
/* --workers is capped here; every per-worker array (stats registry, acceptor batches,
 * the watchdog) is sized by it. */
#define MAX_WORKERS 256

enum dispatch { DISPATCH_LEAST, DISPATCH_RR, DISPATCH_REUSEPORT };

/* Which event loop serves connections: auto picks io_uring where it is built in and
 * usable (see backend.h), epoll otherwise. */
enum backend_kind { BACKEND_AUTO, BACKEND_EPOLL, BACKEND_IO_URING };

/* What SIGHUP can change while connections stay up. Each worker keeps its own copy,
 * updated through its handoff (see handoff.h), so no thread reads another's. */
struct settings {
    enum mode mode;
    enum log_level log_level;
    uint64_t max_message;
    uint64_t max_output;
    uint64_t max_conns;           /* 0: as many as the file limit allows */
    uint64_t idle_timeout_ms;     /* 0: off */
    uint64_t header_timeout_ms;   /* 0: off */
    uint64_t shutdown_timeout_ms;
    uint64_t stats_interval_ms;   /* 0: off */
    int stats_allow_all;          /* /stats and /metrics for every client, not only loopback */
    struct cidr_list stats_allow; /* else only clients in these; none: loopback clients */
    uint64_t drain_delay_ms;      /* SIGTERM: /healthz says 503 this long before draining; 0: off */
    struct cidr_list proxy_from;  /* who may send a PROXY header to a +proxy listener */
};

/* Socket options set on each listener; Linux copies them to every accepted socket,
 * so they cost no system call per connection. 0 means "leave the kernel's default". */
struct sockopts {
    int nodelay;
    int defer_accept_s;
    int fastopen_qlen;
    int rcvbuf, sndbuf;
    int busy_poll_us;
};

struct config {
    struct listen_spec listen[MAX_LISTENERS];
    int n_listen;
    int workers;                  /* 0 until resolved: the CPUs this process may run on */
    enum dispatch dispatch;
    enum backend_kind backend;
    int backlog;
    int cpu_affinity;
    unsigned udp_batch;           /* udp:// datagrams per recvmmsg/sendmmsg; 1: recvmsg/sendmsg */
    uint32_t max_conns_per_ip;    /* 0: off; set at start only */
    struct sockopts sock;
    struct settings set;
    const char *config_file;      /* NULL: none */
    const char *user;             /* NULL: keep the user we started as */
    int test_hooks;               /* $WHARFD_TEST_HOOKS=1: routes that exist for tests only */
    int check_only;               /* -t: check the configuration, start nothing */
    /* the command line, kept to re-apply the flags over the file on reload */
    int argc;
    char **argv;
};

#endif
