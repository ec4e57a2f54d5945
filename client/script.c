/* script: wrk's Lua scripting API on an embedded LuaJIT (script.h). Only the main
 * thread touches the Lua state: before the threads start and after they ended. */
#include "script.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hist.h"
#include "../common/http_parse.h"
#include "options.h"

#ifndef WHARF_LUA

int script_built_in(void) { return 0; }

int script_prepare(struct load_opts *o)
{
    (void)o;
    fprintf(stderr, "wharf bench: -s: Lua support is not built in (build with "
                    "libluajit-5.1-dev installed)\n");
    return 2;
}

const char *script_request(int tid, size_t *len, size_t *count, const uint8_t **heads)
{
    (void)tid, (void)len, (void)count, (void)heads;
    return NULL;
}

const struct endpoint *script_thread_endpoint(int tid) { return (void)tid, NULL; }

int script_stopped(int tid) { return (void)tid, 0; }
int script_wants_response(void) { return 0; }
int script_failed(void) { return 0; }

int script_delay(int tid, uint64_t *ns)
{
    (void)tid, (void)ns;
    return -1;
}

int script_response(int tid, const char *p, size_t len, int head_request)
{
    (void)tid, (void)p, (void)len, (void)head_request;
    return 0;
}
void script_done(const struct script_summary *s, int to_stderr) { (void)s, (void)to_stderr; }
void script_close(void) {}

#else

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/buf.h"
#include "../common/http_resp.h"
#include "script_stats.h"
#include "script_wrk.h"

static lua_State *L; /* the main state (setup, done), from script_prepare to script_close */

/* One load thread's state: made, and set up by setup() and init(), on the main thread
 * before the load threads start; then only its load thread uses it (request(),
 * wrk.thread:stop()) until they are joined, when done()'s thread:get reads it again. */
struct sthread {
    lua_State *s;
    int stopped;    /* wrk.thread:stop() was called */
    int warned;     /* the one warning about request()'s bytes was given */
    int replay;     /* the bytes of the call made before the load are the next ones */
    int moved;      /* setup() sent it to ep, not to the target */
    struct endpoint ep;
    uint8_t heads[SCRIPT_BATCH_MAX]; /* the last request() string's: which are HEAD */
};
static struct sthread *TH;
static int NTH, HAS_REQUEST, HAS_RESPONSE, HAS_DELAY;
/* A Lua error while the load ran (any load thread sets it; the main thread reads it
 * after joining them): the run's exit status is 2. */
static _Atomic int RUN_FAILED;

int script_failed(void) { return atomic_load(&RUN_FAILED); }

int script_built_in(void) { return 1; }

/* Whether state s has a global function of that name. */
static int has_fn_in(lua_State *s, const char *name)
{
    lua_getglobal(s, name);
    int yes = lua_isfunction(s, -1);
    lua_pop(s, 1);
    return yes;
}

static int has_fn(const char *name) { return has_fn_in(L, name); }

/* Copy the value at idx of `from` onto `to`: nil, booleans, numbers, strings and
 * tables of them (what thread:get/set carry between states); anything else is nil. */
static void copy_value(lua_State *from, int idx, lua_State *to, int depth)
{
    size_t len;
    const char *str;
    idx = idx < 0 ? lua_gettop(from) + idx + 1 : idx;
    switch (lua_type(from, idx)) {
    case LUA_TBOOLEAN: lua_pushboolean(to, lua_toboolean(from, idx)); return;
    case LUA_TNUMBER: lua_pushnumber(to, lua_tonumber(from, idx)); return;
    case LUA_TSTRING:
        str = lua_tolstring(from, idx, &len);
        lua_pushlstring(to, str, len);
        return;
    case LUA_TTABLE:
        lua_newtable(to);
        if (depth > 16)
            return;
        for (lua_pushnil(from); lua_next(from, idx); lua_pop(from, 1)) {
            int kt = lua_type(from, -2); /* a key that does not copy would be nil */
            if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN)
                continue;
            copy_value(from, -2, to, depth + 1);
            copy_value(from, -1, to, depth + 1);
            lua_settable(to, -3);
        }
        return;
    default: lua_pushnil(to);
    }
}

/* The thread object's load-thread state. */
static struct sthread *thread_of(lua_State *s)
{
    luaL_checktype(s, 1, LUA_TTABLE);
    lua_getfield(s, 1, "__tid");
    int i = (int)lua_tointeger(s, -1);
    lua_pop(s, 1);
    if (i < 0 || i >= NTH)
        luaL_error(s, "not a thread object");
    return &TH[i];
}

/* thread:get(name), thread:set(name, value): a global of the thread's own state. */
static int l_thread_get(lua_State *s)
{
    struct sthread *th = thread_of(s);
    lua_getglobal(th->s, luaL_checkstring(s, 2));
    copy_value(th->s, -1, s, 0);
    lua_pop(th->s, 1);
    return 1;
}

static int l_thread_set(lua_State *s)
{
    struct sthread *th = thread_of(s);
    copy_value(s, 3, th->s, 0);
    lua_setglobal(th->s, luaL_checkstring(s, 2));
    return 0;
}

/* thread:stop() (and wrk.thread:stop() inside the thread): it sends no more requests. */
static int l_thread_stop(lua_State *s)
{
    thread_of(s)->stopped = 1;
    return 0;
}

/* Push a thread object for TH[i] onto s. */
static void push_thread(lua_State *s, int i, const char *addr)
{
    lua_newtable(s);
    lua_pushinteger(s, i);
    lua_setfield(s, -2, "__tid");
    lua_pushnumber(s, i + 1);
    lua_setfield(s, -2, "id");
    lua_pushstring(s, addr);
    lua_setfield(s, -2, "addr");
    static const luaL_Reg m[] = {{"get", l_thread_get}, {"set", l_thread_set},
                                 {"stop", l_thread_stop}, {NULL, NULL}};
    luaL_register(s, NULL, m);
}

/* A Lua error in s: one line (what: where), the states closed. Returns 2. */
static int lua_failed_in(lua_State *s, const char *what)
{
    const char *msg = lua_tostring(s, -1);
    fprintf(stderr, "wharf bench: %s: %s\n", what, msg ? msg : "(error object is not a string)");
    script_close();
    return 2;
}

static int lua_failed(const char *what) { return lua_failed_in(L, what); }

/* A state with the libraries, wrk and the script's main chunk run; NULL (reported). */
static lua_State *new_state(const struct load_opts *o, const char *addr)
{
    lua_State *s = luaL_newstate();
    if (!s) {
        fprintf(stderr, "wharf bench: out of memory\n");
        return NULL;
    }
    luaL_openlibs(s);
    script_push_wrk(s, o, addr);
    if (luaL_loadfile(s, o->script) || lua_pcall(s, 0, 0, 0)) {
        fprintf(stderr, "wharf bench: %s\n", lua_tostring(s, -1));
        lua_close(s);
        return NULL;
    }
    return s;
}

/* After setup(thread i) (its thread object on top of L): an address setup() gave it
 * other than the target is where thread i connects (TH[i].ep), and its own state's
 * wrk.thread.addr says so. 0, or 2 (reported). */
static int take_addr(const struct load_opts *o, int i, const char *addr)
{
    char err[200], text[ADDR_TEXT_MAX];
    lua_getfield(L, -1, "addr");
    const char *to = lua_tostring(L, -1); /* wrk's lookup gives objects; wharf's strings */
    if (!to) {
        fprintf(stderr, "wharf bench: setup(): thread.addr is %s, not an address\n",
                luaL_typename(L, -1));
        return script_close(), 2;
    }
    if (strcmp(to, addr) != 0) {
        if (addr_parse_host_port(to, 0, &TH[i].ep, err, sizeof err) < 0) {
            fprintf(stderr, "wharf bench: setup(): thread.addr: %s\n", err);
            return script_close(), 2;
        }
        if (o->n_sources && TH[i].ep.sa.ss_family != o->sources[0].ss_family) {
            fprintf(stderr, "wharf bench: setup(): thread.addr = %s: not the address "
                            "family of --source\n", to);
            return script_close(), 2;
        }
        TH[i].moved = 1;
        addr_format((const struct sockaddr *)&TH[i].ep.sa, text, sizeof text);
        lua_getglobal(TH[i].s, "wrk");
        lua_getfield(TH[i].s, -1, "thread");
        lua_pushstring(TH[i].s, text);
        lua_setfield(TH[i].s, -2, "addr");
        lua_pop(TH[i].s, 2);
    }
    lua_pop(L, 1);
    return 0;
}

const struct endpoint *script_thread_endpoint(int tid)
{
    return TH && tid < NTH && TH[tid].moved ? &TH[tid].ep : NULL;
}

/* One state per load thread, each with wrk.thread; setup(thread) in the main state,
 * which may send the thread to another address (thread.addr, wrk's lookup pattern). */
static int run_setup(const struct load_opts *o, const char *addr)
{
    TH = calloc(o->threads, sizeof *TH);
    if (!TH) {
        fprintf(stderr, "wharf bench: out of memory\n");
        return 2;
    }
    for (NTH = 0; NTH < (int)o->threads; NTH++)
        if (!(TH[NTH].s = new_state(o, addr)))
            return script_close(), 2;
    for (int i = 0; i < NTH; i++) {
        lua_getglobal(TH[i].s, "wrk");
        push_thread(TH[i].s, i, addr);
        lua_setfield(TH[i].s, -2, "thread");
        lua_pop(TH[i].s, 1);
        push_thread(L, i, addr);
        if (has_fn("setup")) {
            lua_getglobal(L, "setup");
            lua_pushvalue(L, -2);
            if (lua_pcall(L, 1, 0, 0))
                return lua_failed("setup()");
        }
        if (take_addr(o, i, addr))
            return 2;
        lua_pop(L, 1);
    }
    return 0;
}

/* init(args) in every thread's state, with the arguments after `--`. */
static int run_init(const struct load_opts *o)
{
    for (int i = 0; i < NTH; i++) {
        lua_State *s = TH[i].s;
        if (!has_fn_in(s, "init"))
            continue;
        lua_getglobal(s, "init");
        lua_newtable(s);
        for (int k = 0; k < o->n_script_args; k++) {
            lua_pushstring(s, o->script_args[k]);
            lua_rawseti(s, -2, k + 1);
        }
        if (lua_pcall(s, 1, 0, 0))
            return lua_failed_in(s, "init()");
    }
    return 0;
}

/* Two pacing rules would fight: refused in one line. */
static int refuse_unbuilt(const struct load_opts *o)
{
    if (o->rate && has_fn("delay")) {
        fprintf(stderr, "wharf bench: the script's delay() and -R both pace requests: "
                        "use one\n");
        return script_close(), 2;
    }
    return 0;
}

/* How many requests wharf's parser finds in (p, len), heads[j] whether the j-th is a
 * HEAD: 0 when it cannot split them all; SCRIPT_BATCH_MAX + 1 when they are more than
 * that (it stops there). */
static size_t count_requests(const char *p, size_t len, uint8_t *heads)
{
    size_t n = 0;
    while (len && n <= SCRIPT_BATCH_MAX) {
        struct codec_state st = {0};
        struct http_request hr;
        if (http_parse_request(p, len, len, &st, &hr) != HTTP_MESSAGE)
            return 0;
        if (n < SCRIPT_BATCH_MAX)
            heads[n] = hr.method_len == 4 && memcmp(hr.method, "HEAD", 4) == 0;
        p += hr.frame_len;
        len -= hr.frame_len;
        n++;
    }
    return n;
}

/* request() in thread i's state: its bytes (valid until the next call) or NULL. */
static const char *call_request(int i, size_t *len)
{
    lua_State *s = TH[i].s;
    lua_settop(s, 0);
    lua_getglobal(s, "request");
    if (lua_pcall(s, 0, 1, 0)) {
        fprintf(stderr, "wharf bench: request(): %s\n", lua_tostring(s, -1));
        atomic_store(&RUN_FAILED, 1);
        return NULL;
    }
    const char *p = lua_tolstring(s, -1, len);
    if (!p) {
        fprintf(stderr, "wharf bench: request() returned %s, not a string\n",
                luaL_typename(s, -1));
        atomic_store(&RUN_FAILED, 1);
    }
    return p;
}

const char *script_request(int tid, size_t *len, size_t *count, const uint8_t **heads)
{
    const char *p;
    if (TH[tid].replay) { /* the first call's bytes (take_request): still on the stack */
        TH[tid].replay = 0;
        p = lua_tolstring(TH[tid].s, -1, len);
    } else
        p = call_request(tid, len);
    if (!p)
        return NULL;
    *count = count_requests(p, *len, TH[tid].heads);
    *heads = TH[tid].heads;
    if (*count > SCRIPT_BATCH_MAX) {
        fprintf(stderr, "wharf bench: request() returned more than %d requests in one "
                        "string\n", SCRIPT_BATCH_MAX);
        atomic_store(&RUN_FAILED, 1);
        return NULL;
    }
    if (!*count) {
        if (!TH[tid].warned)
            fprintf(stderr, "wharf bench: request() returned bytes the request parser "
                            "cannot split: sent as they are, one request per response\n");
        TH[tid].warned = 1;
        *count = 1;
        TH[tid].heads[0] = 0;
    }
    return p;
}

int script_stopped(int tid) { return TH[tid].stopped; }

int script_delay(int tid, uint64_t *ns)
{
    lua_State *s = TH[tid].s;
    int top = lua_gettop(s); /* the first request()'s bytes may wait there (replay) */
    lua_getglobal(s, "delay");
    if (lua_pcall(s, 0, 1, 0)) {
        fprintf(stderr, "wharf bench: delay(): %s\n", lua_tostring(s, -1));
        atomic_store(&RUN_FAILED, 1);
        lua_settop(s, top);
        return -1;
    }
    double ms = lua_tonumber(s, -1);
    lua_settop(s, top);
    *ns = ms > 0 ? (ms < 3.6e6 ? (uint64_t)(ms * 1e6) : 3600000000000ull) : 0;
    return 0;
}

int script_wants_response(void) { return HAS_RESPONSE; }

/* The header fields of a parsed head (p, head_len) as a table name -> value. */
static void push_headers(lua_State *s, const char *p, size_t head_len)
{
    lua_newtable(s);
    const char *end = p + head_len - 2, *line = memchr(p, '\n', head_len);
    while (line && ++line < end) {
        const char *eol = memchr(line, '\r', (size_t)(end - line));
        const char *colon = eol ? memchr(line, ':', (size_t)(eol - line)) : NULL;
        if (!colon)
            break;
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        lua_pushlstring(s, line, (size_t)(colon - line));
        lua_pushlstring(s, v, (size_t)(ve - v));
        lua_settable(s, -3);
        line = eol + 1;
    }
}

static void add_body(void *ctx, const char *d, size_t n) { buf_append(ctx, d, n); }

int script_response(int tid, const char *p, size_t len, int head_request)
{
    struct http_resp r;
    for (;;) { /* 1xx interim responses first: response() sees the final one */
        if (http_resp_head(p, len, head_request, &r) != HRESP_DONE)
            return 0; /* not parseable here: the reply path already counted it */
        if (!r.interim)
            break;
        p += r.head_len;
        len -= r.head_len;
    }
    lua_State *s = TH[tid].s;
    struct buf body = {0};
    struct http_body hb;
    size_t used;
    http_body_start(&hb, &r);
    http_body_feed(&hb, p + r.head_len, len - r.head_len, &used, add_body, &body);
    lua_settop(s, 0);
    lua_getglobal(s, "response");
    lua_pushinteger(s, r.status);
    push_headers(s, p, r.head_len);
    lua_pushlstring(s, buf_len(&body) ? buf_head(&body) : "", buf_len(&body));
    buf_release(&body);
    if (!lua_pcall(s, 3, 0, 0))
        return 0;
    fprintf(stderr, "wharf bench: response(): %s\n", lua_tostring(s, -1));
    atomic_store(&RUN_FAILED, 1);
    return -1;
}

/* The request every connection sends: wrk.request() as the script left wrk (in the
 * first thread's state, after init()); or, with request(), one call per thread now,
 * so that an error shows before anything is sent. Sets o->http.raw_req. */
static int take_request(struct load_opts *o)
{
    size_t len, n = 1;
    const char *req = NULL;
    const uint8_t *heads;
    HAS_REQUEST = has_fn_in(TH[0].s, "request");
    HAS_RESPONSE = has_fn_in(TH[0].s, "response");
    HAS_DELAY = has_fn_in(TH[0].s, "delay");
    for (int i = 0; i < (HAS_REQUEST ? NTH : 0); i++) {
        if (!(req = script_request(i, &len, &n, &heads)))
            return script_close(), 2;
        o->script_batch = n > o->script_batch ? n : o->script_batch;
        TH[i].replay = 1; /* sent first: the script sees every call it made go out */
    }
    if (!HAS_REQUEST) {
        lua_getglobal(TH[0].s, "wrk");
        lua_getfield(TH[0].s, -1, "request");
        if (lua_pcall(TH[0].s, 0, 1, 0))
            return lua_failed_in(TH[0].s, "wrk.request()");
        req = lua_tolstring(TH[0].s, -1, &len);
        if (!req || count_requests(req, len, TH[0].heads) != 1) {
            fprintf(stderr, "wharf bench: wrk.request() is not one well-formed HTTP request\n");
            return script_close(), 2;
        }
    }
    o->http.raw_req = malloc(len);
    if (!o->http.raw_req) {
        fprintf(stderr, "wharf bench: out of memory\n");
        return script_close(), 2;
    }
    memcpy(o->http.raw_req, req, len);
    o->http.raw_len = len;
    if (!HAS_REQUEST && TH[0].heads[0]) { /* its responses have no body, whatever their */
        o->http.method = "HEAD";          /* fields say; with request(), per request */
        o->http.raw_head = 1;
    }
    o->script_request = HAS_REQUEST;
    o->script_response = HAS_RESPONSE;
    o->script_delay = HAS_DELAY;
    return 0;
}

int script_prepare(struct load_opts *o)
{
    char addr[ADDR_TEXT_MAX];
    addr_format((const struct sockaddr *)&o->ep.sa, addr, sizeof addr);
    if (!(L = new_state(o, addr)))
        return 2;
    int rc = refuse_unbuilt(o);
    if (!rc)
        rc = run_setup(o, addr);
    if (!rc)
        rc = run_init(o);
    if (!rc)
        rc = take_request(o);
    return rc;
}

static void set_num(const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

void script_done(const struct script_summary *s, int to_stderr)
{
    if (!L || !has_fn("done"))
        return;
    fflush(stdout);
    int saved = -1;
    if (to_stderr) { /* print and io.write go to stdout: point it at stderr meanwhile */
        saved = dup(1);
        if (saved < 0 || dup2(2, 1) < 0)
            return;
    }
    lua_getglobal(L, "done");
    lua_newtable(L);
    set_num("duration", s->duration_us);
    set_num("requests", (double)s->requests);
    set_num("bytes", (double)s->bytes);
    lua_newtable(L);
    set_num("connect", (double)s->connect);
    set_num("read", (double)s->read);
    set_num("write", (double)s->write);
    set_num("status", (double)s->status);
    set_num("timeout", (double)s->timeout);
    lua_setfield(L, -2, "errors");
    script_push_stats(L, s->latency, NULL, 0);
    script_push_stats(L, NULL, s->rps, s->n_rps);
    if (lua_pcall(L, 3, 0, 0))
        fprintf(stderr, "wharf bench: done(): %s\n", lua_tostring(L, -1));
    fflush(stdout);
    if (saved >= 0) {
        dup2(saved, 1);
        close(saved);
    }
}

void script_close(void)
{
    for (int i = 0; i < NTH; i++)
        if (TH[i].s)
            lua_close(TH[i].s);
    free(TH);
    TH = NULL;
    NTH = 0;
    if (L)
        lua_close(L);
    L = NULL;
}

#endif
