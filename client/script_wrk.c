/* script_wrk: the global `wrk` table of wrk's scripts (script_wrk.h). */
#ifdef WHARF_LUA
#include "script_wrk.h"

#include <lauxlib.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/buf.h"
#include "../common/version.h"
#include "options.h"

/* Append t[k] = v (string) to the table at the top. */
static void set_str(lua_State *s, const char *k, const char *v)
{
    lua_pushstring(s, v);
    lua_setfield(s, -2, k);
}

/* wrk.format(method, path, headers, body): one request's bytes, defaults from wrk. */
static int l_format(lua_State *s)
{
    lua_settop(s, 4); /* missing arguments are nil, and wrk goes above them */
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

/* The wrk table from the flags: what the script reads and changes. */
void script_push_wrk(lua_State *s, const struct load_opts *o, const char *addr)
{
    char host[HTTP_SPEC_HOST_MAX];
    snprintf(host, sizeof host, "%s", o->http.host);
    char *port = host[0] == '[' ? strchr(host, ']') : host;
    port = port ? strchr(port, ':') : NULL;
    if (port)
        *port++ = '\0';
    lua_newtable(s);
    set_str(s, "scheme", "http");
    set_str(s, "host", host);
    set_str(s, "port", port ? port : "80");
    set_str(s, "method", o->http.method);
    set_str(s, "path", o->http.path);
    set_str(s, "__authority", o->http.host);
    set_str(s, "wharf", WHARF_VERSION); /* scripts (bench/lua/json.lua) tell the tools apart */
    set_str(s, "__addr", addr);
    lua_newtable(s);
    for (int i = 0; i < o->http.n_headers; i++) {
        const char *h = o->http.headers[i], *colon = strchr(h, ':');
        lua_pushlstring(s, h, (size_t)(colon - h));
        lua_pushstring(s, colon + 1 + strspn(colon + 1, " \t"));
        lua_settable(s, -3);
    }
    lua_setfield(s, -2, "headers");
    if (o->http.body) {
        lua_pushlstring(s, o->http.body, o->http.body_len);
        lua_setfield(s, -2, "body");
    }
    static const luaL_Reg fns[] = {{"format", l_format}, {"request", l_request},
                                   {"lookup", l_lookup}, {"connect", l_connect}, {NULL, NULL}};
    luaL_register(s, NULL, fns);
    lua_setglobal(s, "wrk");
}
#endif
