/* opts: long options must be spelled out in full.
 *
 * getopt_long accepts any unambiguous prefix of a long option, so wrk's habit
 * "--latency" would silently become "--latency-csv" and swallow the next argument as a
 * file name. glibc has no switch to turn that off; instead, after getopt_long returns a
 * long option, the caller asks opts_abbreviated whether the name typed on the command
 * line is the option's whole name, and refuses it when it is not. */
#ifndef WHARF_OPTS_H
#define WHARF_OPTS_H

#include <stddef.h>

/* The command-line element that named the option getopt_long has just returned, given
 * optind and optarg as that call left them: argv[optind - 1], or argv[optind - 2] when
 * the option's value came as a separate element ("--name value"). */
const char *opts_typed(char *const argv[], int optind_now, const char *optarg_now);

/* After getopt_long returned the long option called name (its longindex was set):
 * 0 when it was typed in full ("--name", "--name=value"); 1 when it was an
 * abbreviation, with "unknown option '--nam' (abbreviations are not accepted)" in msg
 * (truncated to msglen, always terminated). */
int opts_abbreviated(char *const argv[], int optind_now, const char *optarg_now,
                     const char *name, char *msg, size_t msglen);

#endif
