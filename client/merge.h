/* merge: `wharf merge FILE...` -- several hosts' results as one: interval logs
 * (--hdr-log) and --json reports are read back (hlog.h), their histograms added, and
 * the usual report printed for the whole: requests/s summed over the hosts, percentiles
 * of the merged histogram (never averaged), errors summed (JSON reports carry them,
 * interval logs do not). Logs must overlap in absolute time: logs of runs that were not
 * running at the same time are refused. */
#ifndef WHARF_MERGE_H
#define WHARF_MERGE_H

/* argv[0] is "merge". Returns the exit status (0, 1 on a refused input, 2 on usage). */
int merge_main(int argc, char **argv);

#endif
