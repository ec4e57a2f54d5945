/* wharf: the client. Subcommands: send (interactive), and the load generators
 * bench, churn and hold. */
#include <stdio.h>
#include <string.h>

#include "../common/version.h"
#include "bench.h"
#include "churn.h"
#include "hold.h"
#include "merge.h"
#include "options.h"
#include "script.h"
#include "send.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: wharf COMMAND [OPTION]... [ADDRESS]\n"
               "Commands:\n"
               "  send    interactive client: type a line, see the reply (raw, line, frame)\n"
               "  bench   load generator: throughput and latency (like wrk/wrk2)\n"
               "  churn   load generator: connections per second (connect, ask, close)\n"
               "  hold    load generator: many idle connections, held and verified\n"
               "  merge   several runs' histograms (--hdr-log, --json) as one report\n"
               "Run 'wharf COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("wharf %s\nbuilt in: http, hdr-log%s\n", WHARF_VERSION,
               script_built_in() ? ", lua (wrk scripts, LuaJIT)" : "");
        return 0;
    }
    if (strcmp(cmd, "man-options") == 0) { /* the option list of wharf.1, from the table */
        options_print_man(stdout);
        return 0;
    }
    if (strcmp(cmd, "send") == 0)
        return send_main(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return bench_main(argc - 1, argv + 1);
    if (strcmp(cmd, "churn") == 0)
        return churn_main(argc - 1, argv + 1);
    if (strcmp(cmd, "hold") == 0)
        return hold_main(argc - 1, argv + 1);
    if (strcmp(cmd, "merge") == 0)
        return merge_main(argc - 1, argv + 1);
    fprintf(stderr, "wharf: unknown command '%s' (see wharf --help)\n", cmd);
    return 2;
}
