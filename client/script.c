/* script: wrk's Lua scripting API on an embedded LuaJIT (script.h). Only the main
 * thread touches the Lua state: before the threads start and after they ended. */
#include "script.h"

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

void script_done(const struct script_summary *s, int to_stderr) { (void)s, (void)to_stderr; }
void script_close(void) {}

#else

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/buf.h"
#include "script_stats.h"

static lua_State *L; /* the main thread's state, from script_prepare to script_close */

int script_built_in(void) { return 1; }

/* Append t[k] = v (string) to the table at the top. */
static void set_str(lua_State *s, const char *k, const char *v)
{
    lua_pushstring(s, v);
    lua_setfield(s, -2, k);
}

/* Whether a global function of that name exists. */
static int has_fn(const char *name)
{
    lua_getglobal(L, name);
    int yes = lua_isfunction(L, -1);
    lua_pop(L, 1);
    return yes;
}

/* wrk.format(method, path, headers, body): one request's bytes, defaults from wrk. */
static int l_format(lua_State *s)
{
    lua_getglobal(s, "wrk");
    int w = lua_gettop(s);
    const char *method = luaL_optstring(s, 1, NULL), *path = luaL_optstring(s, 2, NULL);
    lua_getfield(s, w, "method");
    lua_getfield(s, w, "path");
    if (!method)
        method = luaL_checkstring(s, -2);
    if (!path)
        path = luaL_checkstring(s, -1);
    size_t blen = 0;
    const char *body = lua_isnoneornil(s, 4) ? NULL : luaL_checklstring(s, 4, &blen);
    struct buf b = {0};
    int rc = buf_printf(&b, "%s %s HTTP/1.1\r\n", method, path), host = 0;
    if (lua_istable(s, 3))
        lua_pushvalue(s, 3);
    else
        lua_getfield(s, w, "headers");
    for (lua_pushnil(s); lua_istable(s, -2) && lua_next(s, -2); lua_pop(s, 1)) {
        lua_pushvalue(s, -2); /* tostring of a copy: lua_next needs the key as it was */
        const char *k = lua_tostring(s, -1), *v = lua_tostring(s, -2);
        if (k && v && strcasecmp(k, "content-length") != 0)
            rc |= buf_printf(&b, "%s: %s\r\n", k, v);
        host |= k && strcasecmp(k, "host") == 0;
        lua_pop(s, 1);
    }
    lua_getfield(s, w, "__authority");
    if (!host)
        rc |= buf_printf(&b, "Host: %s\r\n", lua_tostring(s, -1));
    if (body)
        rc |= buf_printf(&b, "Content-Length: %zu\r\n", blen);
    rc |= buf_printf(&b, "\r\n");
    if (body)
        rc |= buf_append(&b, body, blen);
    if (rc) {
        buf_release(&b);
        return luaL_error(s, "wrk.format: out of memory");
    }
    lua_pushlstring(s, buf_head(&b), buf_len(&b));
    buf_release(&b);
    return 1;
}

/* wrk.request(): the request every connection sends when the script has no request(). */
static int l_request(lua_State *s)
{
    lua_settop(s, 0);
    lua_getglobal(s, "wrk");
    lua_getfield(s, 1, "body");
    lua_pushcfunction(s, l_format);
    lua_pushnil(s);
    lua_pushnil(s);
    lua_pushnil(s);
    lua_pushvalue(s, 2);
    lua_call(s, 4, 1);
    return 1;
}

/* wrk.lookup(host, service): a table of the addresses it resolves to ("IP:PORT"
 * strings, what thread.addr and wrk.connect take); an error when none. */
static int l_lookup(lua_State *s)
{
    const char *host = luaL_checkstring(s, 1), *service = luaL_checkstring(s, 2);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc)
        return luaL_error(s, "wrk.lookup %s:%s: %s", host, service, gai_strerror(rc));
    lua_newtable(s);
    int n = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        char text[ADDR_TEXT_MAX];
        addr_format(a->ai_addr, text, sizeof text);
        lua_pushstring(s, text);
        lua_rawseti(s, -2, ++n);
    }
    freeaddrinfo(res);
    return 1;
}

/* wrk.connect(addr): whether a TCP connection to addr opens (it is closed again). */
static int l_connect(lua_State *s)
{
    const char *text = luaL_checkstring(s, 1);
    struct endpoint ep;
    char err[200];
    int ok = 0;
    if (addr_parse_host_port(text, 0, &ep, err, sizeof err) == 0) {
        int fd = socket(ep.sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ok = fd >= 0 && connect(fd, (struct sockaddr *)&ep.sa, ep.sa_len) == 0;
        if (fd >= 0)
            close(fd);
    }
    lua_pushboolean(s, ok);
    return 1;
}

/* thread:get(name), thread:set(name, value): the thread's own variables (its __env). */
static int l_thread_get(lua_State *s)
{
    luaL_checktype(s, 1, LUA_TTABLE);
    lua_getfield(s, 1, "__env");
    lua_pushvalue(s, 2);
    lua_gettable(s, -2);
    return 1;
}

static int l_thread_set(lua_State *s)
{
    luaL_checktype(s, 1, LUA_TTABLE);
    lua_getfield(s, 1, "__env");
    lua_pushvalue(s, 2);
    lua_pushvalue(s, 3);
    lua_settable(s, -3);
    return 0;
}

/* thread:stop(): the thread sends no more requests. */
static int l_thread_stop(lua_State *s)
{
    luaL_checktype(s, 1, LUA_TTABLE);
    lua_pushboolean(s, 1);
    lua_setfield(s, 1, "__stopped");
    return 0;
}

/* The wrk table from the flags: what the script reads and changes. */
static void push_wrk(const struct load_opts *o, const char *addr)
{
    char host[HTTP_SPEC_HOST_MAX];
    snprintf(host, sizeof host, "%s", o->http.host);
    char *port = host[0] == '[' ? strchr(host, ']') : host;
    port = port ? strchr(port, ':') : NULL;
    if (port)
        *port++ = '\0';
    lua_newtable(L);
    set_str(L, "scheme", "http");
    set_str(L, "host", host);
    set_str(L, "port", port ? port : "80");
    set_str(L, "method", o->http.method);
    set_str(L, "path", o->http.path);
    set_str(L, "__authority", o->http.host);
    set_str(L, "__addr", addr);
    lua_newtable(L);
    for (int i = 0; i < o->http.n_headers; i++) {
        const char *h = o->http.headers[i], *colon = strchr(h, ':');
        lua_pushlstring(L, h, (size_t)(colon - h));
        lua_pushstring(L, colon + 1 + strspn(colon + 1, " \t"));
        lua_settable(L, -3);
    }
    lua_setfield(L, -2, "headers");
    if (o->http.body) {
        lua_pushlstring(L, o->http.body, o->http.body_len);
        lua_setfield(L, -2, "body");
    }
    static const luaL_Reg fns[] = {{"format", l_format}, {"request", l_request},
                                   {"lookup", l_lookup}, {"connect", l_connect}, {NULL, NULL}};
    luaL_register(L, NULL, fns);
    lua_setglobal(L, "wrk");
}

/* A Lua error: one line, the state closed. Returns 2 (the exit status). */
static int lua_failed(const char *what)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "wharf bench: %s: %s\n", what, msg ? msg : "(error object is not a string)");
    script_close();
    return 2;
}

/* setup(thread) for every load thread; refuses a thread sent elsewhere (thread.addr
 * set to another address), which one shared target cannot do yet. */
static int run_setup(const struct load_opts *o, const char *addr)
{
    int has = has_fn("setup");
    for (uint64_t i = 0; i < o->threads; i++) {
        lua_newtable(L);
        lua_pushnumber(L, (double)i + 1);
        lua_setfield(L, -2, "id");
        set_str(L, "addr", addr);
        lua_newtable(L);
        lua_setfield(L, -2, "__env");
        static const luaL_Reg m[] = {{"get", l_thread_get}, {"set", l_thread_set},
                                     {"stop", l_thread_stop}, {NULL, NULL}};
        luaL_register(L, NULL, m);
        if (has) {
            lua_getglobal(L, "setup");
            lua_pushvalue(L, -2);
            if (lua_pcall(L, 1, 0, 0))
                return lua_failed("setup()");
        }
        lua_getfield(L, -1, "addr");
        const char *now = lua_tostring(L, -1);
        if (!now || strcmp(now, addr) != 0) {
            fprintf(stderr, "wharf bench: setup(): thread.addr = %s: a thread sent to "
                            "another address is not supported\n", now ? now : "nil");
            script_close();
            return 2;
        }
        lua_pop(L, 2);
    }
    return 0;
}

/* init(args) with the arguments after `--`. */
static int run_init(const struct load_opts *o)
{
    if (!has_fn("init"))
        return 0;
    lua_getglobal(L, "init");
    lua_newtable(L);
    for (int i = 0; i < o->n_script_args; i++) {
        lua_pushstring(L, o->script_args[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return lua_pcall(L, 1, 0, 0) ? lua_failed("init()") : 0;
}

/* What this version does not run yet: said in one line rather than ignored. */
static int refuse_unbuilt(const struct load_opts *o)
{
    const char *const unbuilt[] = {"request", "response", "delay"};
    for (size_t i = 0; i < sizeof unbuilt / sizeof *unbuilt; i++) {
        if (i == 2 && o->rate && has_fn("delay")) {
            fprintf(stderr, "wharf bench: the script's delay() and -R both pace requests: "
                            "use one\n");
            script_close();
            return 2;
        }
        if (has_fn(unbuilt[i])) {
            fprintf(stderr, "wharf bench: the script defines %s(), which this wharf does "
                            "not run yet\n", unbuilt[i]);
            script_close();
            return 2;
        }
    }
    return 0;
}

/* The request of every connection: wrk.request() as the script left wrk; it must be
 * one request wharf's parser reads whole (pipelined strings come with request()). */
static int take_request(struct load_opts *o)
{
    lua_getglobal(L, "wrk");
    lua_getfield(L, -1, "request");
    if (lua_pcall(L, 0, 1, 0))
        return lua_failed("wrk.request()");
    size_t len;
    const char *req = lua_tolstring(L, -1, &len);
    struct codec_state st = {0};
    struct http_request hr;
    int rc = req ? http_parse_request(req, len, len, &st, &hr) : HTTP_ERR_BAD_REQUEST;
    if (rc != HTTP_MESSAGE || hr.frame_len != len) {
        fprintf(stderr, "wharf bench: wrk.request() is not one well-formed HTTP request\n");
        script_close();
        return 2;
    }
    o->http.raw_req = malloc(len);
    if (!o->http.raw_req) {
        fprintf(stderr, "wharf bench: out of memory\n");
        script_close();
        return 2;
    }
    memcpy(o->http.raw_req, req, len);
    o->http.raw_len = len;
    if (http_token_eq(hr.method, hr.method_len, "HEAD"))
        o->http.method = "HEAD"; /* its responses have no body */
    lua_pop(L, 2);
    return 0;
}

int script_prepare(struct load_opts *o)
{
    char addr[ADDR_TEXT_MAX];
    addr_format((const struct sockaddr *)&o->ep.sa, addr, sizeof addr);
    L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "wharf bench: out of memory\n");
        return 2;
    }
    luaL_openlibs(L);
    push_wrk(o, addr);
    if (luaL_loadfile(L, o->script) || lua_pcall(L, 0, 0, 0))
        return lua_failed(o->script);
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
    if (L)
        lua_close(L);
    L = NULL;
}

#endif
