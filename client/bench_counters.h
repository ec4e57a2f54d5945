/* bench_counters: the counters that every request-reply load driver keeps in eng_stats
 * (bench.c over streams, dgram_bench.c over datagrams), in one order, and the rates the
 * engine's report derives from them. A driver appends its own counters from
 * BENCH_COUNTERS on. */
#ifndef WHARF_BENCH_COUNTERS_H
#define WHARF_BENCH_COUNTERS_H

#include <stdint.h>

#include "engine.h"

/* SENT requests; OK replies in the measured time, WARM before it; LIVE connections;
 * bytes both ways; BACKLOG: due by the rate but never sent; UNANSWERED at the end. */
enum { SENT, OK, WARM, LIVE, BYTES_IN, BYTES_OUT, BACKLOG, UNANSWERED, BENCH_COUNTERS };
enum { LAT, CLAT };

/* The engine's derive hook for a driver whose measured time began at measure_ns (0: not
 * yet): elapsed time, replies per second, MiB/s both ways over warm-up and measured time,
 * and client CPU per reply. Main thread, after the threads are collected. */
void bench_derive(const struct engine *e, uint64_t measure_ns, struct eng_totals *r);

#endif
