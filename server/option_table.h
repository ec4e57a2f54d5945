/* option_table: the table of wharfd's settings, for config.c only.
 *
 * One row per setting (name, short flag, value's form, default, setter, help). config.c
 * reads flags and configuration files through it; the setters check a value and store
 * it in a struct config, with a one-line reason when it is refused. */
#ifndef WHARF_OPTION_TABLE_H
#define WHARF_OPTION_TABLE_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "settings.h"

/* Set err (errlen bytes) to a message and yield -1: the setters' and readers' error return. */
#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

typedef int (*setter_fn)(struct config *cfg, const char *val, char *err, size_t errlen);

struct option_def {
    const char *name;
    int short_name;      /* 0: long only */
    const char *metavar; /* NULL: takes no value */
    const char *defval;  /* applied through the setter before the flags; NULL: none */
    setter_fn set;       /* NULL: --help, --version, --print-defaults */
    const char *help;
};

#define OPTIONS_MAX 48 /* rows the table may have (getopt's arrays are sized by it) */

/* getopt_long's tables for every row: a long option's val is 256 + its row. */
struct getopt_tables {
    struct option longopts[OPTIONS_MAX + 1];
    char shortopts[2 * OPTIONS_MAX + 2];
};

/* Fill t for the whole table (shortopts starts with ':' so a missing value is told
 * apart from an unknown option). */
void options_getopt_tables(struct getopt_tables *t);
/* The row for what getopt_long returned (256 + row, or a short flag); NULL for none. */
const struct option_def *option_for_getopt(int c);
/* The row named name[0, len) (the long flag's name, as in a configuration file); NULL. */
const struct option_def *option_find(const char *name, size_t len);

/* Rows that are not settings (--help, --version, --print-defaults, --config, -t): a
 * configuration file may not name them, and the flags' second pass skips them. */
int option_is_meta(const struct option_def *o);
int option_is_listen(const struct option_def *o);
int option_is_config_file(const struct option_def *o);
int option_is_check(const struct option_def *o); /* -t, --check-config */

/* Zero cfg, then apply every row's default through its setter. */
void options_apply_defaults(struct config *cfg);
/* Add the default listeners (raw on 9000, http on 8080): when none was named. 0, or
 * -1 with err set. */
int options_default_listeners(struct config *cfg, char *err, size_t errlen);

/* --help and --print-defaults, on stdout. */
void options_print_help(void);
void options_print_defaults(void);

#endif
