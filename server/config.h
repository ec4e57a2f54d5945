/* config: wharfd's configuration from its flags and its configuration file.
 *
 * One table (option_table.c) drives --help, getopt_long, the defaults (each default is
 * applied through the same setter a flag uses, so --help cannot lie) and the
 * configuration file, whose lines are "name = value" with the long flags' names.
 * Precedence: defaults, then the file, then the flags. Only main and config read flags. */
#ifndef WHARF_CONFIG_H
#define WHARF_CONFIG_H

#include "settings.h"

enum config_outcome {
    CONFIG_RUN = 0,          /* start the server */
    CONFIG_DONE = 1,         /* --help, --version or --print-defaults printed, or -t passed */
    CONFIG_ERROR = 2,        /* one error line printed */
    CONFIG_CHECK_FAILED = 3, /* -t printed one line per problem */
};

/* Parse the file (if --config) and argv into cfg: an enum config_outcome.
 * With -t (--check-config) nothing starts: every value and listener is checked, every
 * problem printed on stderr as one line (FILE:LINE: for the file's), or "configuration
 * ok" on stdout. The caller exits 0 for CONFIG_DONE, 1 for CONFIG_CHECK_FAILED, 2 for
 * CONFIG_ERROR. */
int config_parse(struct config *cfg, int argc, char **argv);

/* Build the configuration SIGHUP asks for: defaults, the file as it is now, then the
 * original flags. Returns 0, or -1 with a one-line reason in err. */
int config_reload(const struct config *cur, struct config *next, char *err, size_t errlen);

/* What of next (from config_reload) cannot be applied to the running cur without a
 * restart: the listeners, the workers, the dispatch, the backlog, the backend,
 * --max-conns-per-ip, the socket options, the user. The first one found is named in a
 * warning ("needs a restart; not applied") and returned; NULL when none changed. The
 * caller applies next->set (what can change live) either way, and nothing else.
 * inherited: the listeners came from systemd, so their addresses and the dispatch are
 * not this process's to change and are not compared. */
const char *config_reload_refused(const struct config *cur, const struct config *next,
                                  int inherited);

const char *dispatch_name(enum dispatch d);

#endif
