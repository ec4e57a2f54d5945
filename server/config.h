/* config: every setting of wharfd, its flag, its default and its help line.
 *
 * One table (config.c) drives --help, getopt_long, the defaults (each default is
 * applied through the same setter a flag uses, so --help cannot lie) and, later,
 * the configuration file. Only main and config read flags. */
#ifndef WHARF_CONFIG_H
#define WHARF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/mode.h"

#define MAX_LISTENERS 16
#define MAX_WORKERS 256

enum dispatch { DISPATCH_LEAST, DISPATCH_RR, DISPATCH_REUSEPORT };

struct config {
    struct endpoint listen[MAX_LISTENERS];
    int n_listen;
    int workers;                  /* 0 until resolved: the CPUs this process may run on */
    enum dispatch dispatch;
    enum mode mode;
    uint64_t max_message;
    uint64_t max_output;
    uint64_t max_conns;           /* 0: as many as the file limit allows */
    uint64_t idle_timeout_ms;     /* 0: off */
    uint64_t header_timeout_ms;   /* 0: off */
    uint64_t shutdown_timeout_ms;
    uint64_t stats_interval_ms;   /* 0: off */
    int backlog;
    int nodelay;
    enum log_level log_level;
};

/* Parse argv into cfg (defaults first). Returns 0 to run, 1 when --help or --version
 * was printed, or 2 after printing one error line. */
int config_parse(struct config *cfg, int argc, char **argv);

const char *dispatch_name(enum dispatch d);

#endif
