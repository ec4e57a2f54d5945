/* report: counters the load threads keep, and how a run is printed (text like wrk,
 * or one JSON object), plus the latency CSV. */
#ifndef WHARF_REPORT_H
#define WHARF_REPORT_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/hist.h"

/* One writer thread (relaxed load + store, no locked instruction); read by the main
 * thread's progress line. */
typedef _Atomic uint64_t ctr_t;

static inline void ctr_add(ctr_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t ctr_get(const ctr_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* The kinds up to ERR_CLOSED are in every report; the HTTP ones (a response the parser
 * rejected, --expect-status, --expect-body) are listed when there were any. */
enum err_kind {
    ERR_CONNECT, ERR_READ, ERR_WRITE, ERR_TIMEOUT, ERR_MISMATCH, ERR_CLOSED,
    ERR_HTTP, ERR_STATUS, ERR_BODY, ERR_KINDS
};
#define ERR_ALWAYS_SHOWN (ERR_CLOSED + 1)

/* "connect", "read", "write", "timeout", "mismatch", "closed", "http", "status",
 * "body". */
const char *err_kind_name(int kind);

/* "  Errors: T (connect N, read N, ...)\n", and "errors":{"total":T,"connect":N,...}:
 * err has ERR_KINDS counts. */
void report_errors_text(FILE *f, const uint64_t *err, uint64_t total);
void report_errors_json(FILE *f, const uint64_t *err, uint64_t total);

/* Failures by errno (connect errors above all). */
#define ERRNO_SLOTS 256
struct errno_counts {
    uint64_t n[ERRNO_SLOTS];
};

static inline void errno_count(struct errno_counts *e, int err)
{
    e->n[err > 0 && err < ERRNO_SLOTS ? err : 0]++;
}

void errno_merge(struct errno_counts *dst, const struct errno_counts *src);
uint64_t errno_total(const struct errno_counts *e);
/* "ECONNREFUSED 3, EADDRNOTAVAIL 10" (most frequent first), or "none". */
void errno_print_text(FILE *f, const struct errno_counts *e);
/* {"ECONNREFUSED":3,...} */
void errno_print_json(FILE *f, const struct errno_counts *e);

/* "812ns", "45.12us", "1.23ms", "2.00s". */
const char *fmt_ns(char *out, size_t len, double ns);

/* wrk-style latency block (Avg/Stdev/Max, then the distribution). */
void report_latency_text(FILE *f, const char *title, const struct hist *h);
/* {"min_us":..,"mean_us":..,"stdev_us":..,"p50_us":..,...,"max_us":..,"count":..} */
void report_latency_json(FILE *f, const struct hist *h);
/* The whole distribution, one row per non-empty bucket: latency_us, percentile, count
 * (cumulative), 1/(1-percentile). Returns 0 or -1 with errno. */
int report_latency_csv(const char *path, const struct hist *h);

/* Process CPU (user + system) in microseconds, from getrusage. */
struct cpu_use {
    double user_s;
    double sys_s;
};
void cpu_now(struct cpu_use *c);

#endif
