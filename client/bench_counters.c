#include "bench_counters.h"

#include "../common/clock.h"

void bench_derive(const struct engine *e, uint64_t measure_ns, struct eng_totals *r)
{
    const struct load_opts *o = e->o;
    uint64_t until = r->last_ns > measure_ns ? r->last_ns : clock_ns();
    r->elapsed_s = measure_ns && until > measure_ns ? (double)(until - measure_ns) / 1e9 : 0;
    uint64_t replies = r->c[OK] + r->c[WARM] + r->err[ERR_MISMATCH];
    if (r->elapsed_s > 0) {
        r->per_sec = (double)(r->c[OK] + r->err[ERR_MISMATCH]) / r->elapsed_s;
        double span = r->elapsed_s + (double)o->warmup_ms / 1e3; /* bytes flow in both */
        r->mib_in_s = (double)r->c[BYTES_IN] / 1048576.0 / span;
        r->mib_out_s = (double)r->c[BYTES_OUT] / 1048576.0 / span;
    }
    r->cpu_us = replies ? (e->cpu.user_s + e->cpu.sys_s) * 1e6 / (double)replies : 0;
}
