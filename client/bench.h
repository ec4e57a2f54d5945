/* bench: throughput and latency of request/reply over many connections. */
#ifndef WHARF_BENCH_H
#define WHARF_BENCH_H

int bench_main(int argc, char **argv);

#endif
