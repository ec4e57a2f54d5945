/* script_wrk: the global `wrk` table wrk's scripts see, in any Lua state: scheme host
 * port method path headers body from the flags, and wrk.format, wrk.request,
 * wrk.lookup, wrk.connect. Addresses are "IP:PORT" strings ("[IPv6]:PORT"). */
#ifndef WHARF_SCRIPT_WRK_H
#define WHARF_SCRIPT_WRK_H

#include <lua.h>

struct load_opts;

/* Set the global wrk in s from o; addr is the target's address. */
void script_push_wrk(lua_State *s, const struct load_opts *o, const char *addr);

#endif
