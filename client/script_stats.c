/* script_stats: wrk's stats objects for done() (script_stats.h). */
#ifdef WHARF_LUA
#include "script_stats.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hist.h"

/* done()'s latency and requests: wrk's stats objects. Fields min max mean stdev,
 * :percentile(p), obj(i) -> the i-th recorded value and its count, #obj. */
struct stats_ref {
    const struct hist *h; /* latency, ns (shown in us) */
    const double *v;      /* or requests per second samples */
    size_t n;
};

/* The i-th (1-based) distinct value and its count; 0 when past the end. */
static int stats_nth(const struct stats_ref *r, lua_Integer i, double *val, double *count)
{
    if (!r->h) {
        if (i < 1 || (size_t)i > r->n)
            return 0;
        *val = r->v[i - 1];
        *count = 1;
        return 1;
    }
    size_t pos = 0;
    struct hist_step st;
    for (lua_Integer k = 0; hist_next(r->h, &pos, &st);)
        if (++k == i) {
            *val = (double)st.value / 1e3;
            *count = (double)st.count;
            return 1;
        }
    return 0;
}

static int l_stats_call(lua_State *s)
{
    const struct stats_ref *r = luaL_checkudata(s, 1, "wharf.stats");
    double v, c;
    if (!stats_nth(r, luaL_checkinteger(s, 2), &v, &c))
        return 0;
    lua_pushnumber(s, v);
    lua_pushnumber(s, c);
    return 2;
}

static int l_stats_len(lua_State *s)
{
    const struct stats_ref *r = luaL_checkudata(s, 1, "wharf.stats");
    size_t n = r->n, pos = 0;
    struct hist_step st;
    if (r->h)
        for (n = 0; hist_next(r->h, &pos, &st);)
            n++;
    lua_pushinteger(s, (lua_Integer)n);
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* p-th percentile of the samples (nearest rank). */
static double samples_percentile(const double *v, size_t n, double p)
{
    if (!n)
        return 0;
    double *c = malloc(n * sizeof *c);
    if (!c)
        return 0;
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_double);
    size_t k = (size_t)(p / 100.0 * (double)n + 0.5);
    double x = c[k ? (k > n ? n : k) - 1 : 0];
    free(c);
    return x;
}

static int l_stats_percentile(lua_State *s)
{
    const struct stats_ref *r = luaL_checkudata(s, 1, "wharf.stats");
    double p = luaL_checknumber(s, 2);
    lua_pushnumber(s, r->h ? (double)hist_percentile(r->h, p) / 1e3
                           : samples_percentile(r->v, r->n, p));
    return 1;
}

/* min max mean stdev of the samples (which = 0 1 2 3). */
static double samples_figure(const double *v, size_t n, int which)
{
    double lo = n ? v[0] : 0, hi = lo, sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        sum += v[i];
    }
    double mean = n ? sum / (double)n : 0;
    for (size_t i = 0; i < n; i++)
        sq += (v[i] - mean) * (v[i] - mean);
    double fig[4] = {lo, hi, mean, n > 1 ? sqrt(sq / (double)(n - 1)) : 0};
    return fig[which];
}

static int l_stats_index(lua_State *s)
{
    const struct stats_ref *r = luaL_checkudata(s, 1, "wharf.stats");
    const char *k = luaL_checkstring(s, 2);
    static const char *const names[] = {"min", "max", "mean", "stdev"};
    if (strcmp(k, "percentile") == 0) {
        lua_pushcfunction(s, l_stats_percentile);
        return 1;
    }
    for (int i = 0; i < 4; i++) {
        if (strcmp(k, names[i]) != 0)
            continue;
        if (!r->h)
            lua_pushnumber(s, samples_figure(r->v, r->n, i));
        else if (!r->h->count)
            lua_pushnumber(s, 0);
        else {
            double ns[4] = {(double)r->h->min, (double)r->h->max, hist_mean(r->h),
                            hist_stdev(r->h)};
            lua_pushnumber(s, ns[i] / 1e3);
        }
        return 1;
    }
    return 0;
}

void script_push_stats(lua_State *L, const struct hist *h, const double *v, size_t n)
{
    struct stats_ref *r = lua_newuserdata(L, sizeof *r);
    *r = (struct stats_ref){h, v, n};
    if (luaL_newmetatable(L, "wharf.stats")) {
        static const luaL_Reg m[] = {{"__index", l_stats_index}, {"__call", l_stats_call},
                                     {"__len", l_stats_len}, {NULL, NULL}};
        luaL_register(L, NULL, m);
    }
    lua_setmetatable(L, -2);
}

#endif
