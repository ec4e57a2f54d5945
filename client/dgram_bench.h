/* dgram_bench: wharf bench udp:// (datagrams with sequence numbers; see dgram_bench.c). */
#ifndef WHARF_DGRAM_BENCH_H
#define WHARF_DGRAM_BENCH_H

#include "options.h"

/* Run the bench with o (o->proto is PROTO_UDP). Returns the exit status. */
int dgram_bench_run(const struct load_opts *o);

#endif
