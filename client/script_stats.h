/* script_stats: the latency and requests objects wrk's done() receives (script.c),
 * as Lua userdata over the report's histogram or the per-thread rate samples. */
#ifndef WHARF_SCRIPT_STATS_H
#define WHARF_SCRIPT_STATS_H

#include <lua.h>
#include <stddef.h>

struct hist;

/* Push a stats object: over h (ns, shown in us as wrk's are) or, when h is NULL, over
 * the n samples v. Fields min max mean stdev, :percentile(p), obj(i) -> the i-th
 * distinct value and its count, #obj. h or v must outlive the object's use. */
void script_push_stats(lua_State *L, const struct hist *h, const double *v, size_t n);

#endif
