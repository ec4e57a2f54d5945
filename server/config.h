/* config: wharfd's configuration from its flags and its configuration file.
 *
 * One table (option_table.c) drives --help, getopt_long, the defaults (each default is
 * applied through the same setter a flag uses, so --help cannot lie) and the
 * configuration file, whose lines are "name = value" with the long flags' names.
 * Precedence: defaults, then the file, then the flags. Only main and config read flags. */
#ifndef WHARF_CONFIG_H
#define WHARF_CONFIG_H

#include "settings.h"

/* Parse the file (if --config) and argv into cfg. Returns 0 to run, 1 when --help
 * or --version was printed, or 2 after printing one error line. */
int config_parse(struct config *cfg, int argc, char **argv);

/* Build the configuration SIGHUP asks for: defaults, the file as it is now, then the
 * original flags. Returns 0, or -1 with a one-line reason in err. */
int config_reload(const struct config *cur, struct config *next, char *err, size_t errlen);

const char *dispatch_name(enum dispatch d);

#endif
