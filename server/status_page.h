/* status_page: GET /status, the counters of /stats as a page for a browser.
 *
 * The page (server/status.html, compiled in as bytes) carries its own styles and script:
 * with JavaScript it reads /stats every second and draws the last five minutes itself;
 * without, what the server renders into its two slots is the snapshot it shows. Only
 * the snapshot is rendered per request; /status is asked for by people, never by the
 * benchmark routes, which are dispatched before it. */
#ifndef WHARF_STATUS_PAGE_H
#define WHARF_STATUS_PAGE_H

#include "../common/buf.h"
#include "http_reply.h"

struct settings;
struct stats_registry;

/* Append the whole 200 response to GET (or HEAD, in flags) /status: the page with a
 * snapshot of the counters now (reg: everyone's), as the worker that answers sees them (set: its
 * settings; draining: it is closing down). Returns 0 or -1 (no memory). */
int status_page_reply(struct buf *out, const struct http_cache *hc,
                      const struct stats_registry *reg, const struct settings *set, int draining,
                      unsigned flags);

#endif
