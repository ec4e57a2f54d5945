/* script: wrk's Lua scripts (`wharf bench -s FILE`), run by an embedded LuaJIT.
 *
 * The script runs in one Lua state on the main thread, before the load starts and
 * after it ends: its main chunk, setup(thread) for each load thread, init(args), then
 * the request every connection sends (wrk.request(): wrk.format() of the wrk table as
 * the script left it), and done(summary, latency, requests) with the run's figures.
 * Built only when LuaJIT is (build.mk: WHARF_LUA); without it every entry says so. */
#ifndef WHARF_SCRIPT_H
#define WHARF_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

struct endpoint;
struct load_opts;
struct hist;

/* Whether Lua support is built in. */
int script_built_in(void);

/* Run o->script up to the request it sends: sets o->http.raw_req (the first
 * request() when it has one: o->script_request, o->script_batch its most requests). 0, or 2 with one
 * line on stderr (a Lua error, a refused combination): nothing has been sent. */
int script_prepare(struct load_opts *o);

/* The most requests one request() string may hold: what a connection's ring of send
 * times must be able to grow by (more is an error, as a Lua error is). */
#define SCRIPT_BATCH_MAX 4096

/* -s with request(): thread tid's next bytes, from its own state (only thread tid
 * calls this, while the load runs); valid until its next call. *count is how many
 * requests they hold (split with the request parser; 1, with one warning, when it
 * cannot split them), (*heads)[j] whether the j-th is a HEAD (its response has no
 * body). NULL after a Lua error, or more than SCRIPT_BATCH_MAX requests (reported):
 * the caller stops. */
const char *script_request(int tid, size_t *len, size_t *count, const uint8_t **heads);

/* Where thread tid connects when setup() gave it an address of its own (thread.addr),
 * else NULL: the target. Valid until script_close. */
const struct endpoint *script_thread_endpoint(int tid);

/* Whether thread tid's script called wrk.thread:stop() (or setup's thread:stop()). */
int script_stopped(int tid);

/* delay() on thread tid's state: how long to wait before its connection's next
 * request (wrk's milliseconds, in ns; at most an hour). 0, or -1 after a Lua error
 * (reported): the caller stops the thread's sending. */
int script_delay(int tid, uint64_t *ns);

/* Whether the script defines response(): only then are responses kept for it. */
int script_wants_response(void);

/* response(status, headers, body) on thread tid's state, from one whole response's
 * bytes as received (1xx interim ones before it skipped; the body decoded). 0, or -1
 * after a Lua error (reported): the caller stops the thread's sending. */
int script_response(int tid, const char *p, size_t len, int head_request);

/* The run's figures handed to done(), when the script defines it. */
struct script_summary {
    double duration_us;
    uint64_t requests, bytes;
    uint64_t connect, read, write, status, timeout;
    const struct hist *latency;    /* ns */
    const double *rps;             /* per-thread requests per second, once a second */
    size_t n_rps;
};

/* Call done(summary, latency, requests) if the script has it; its output goes to
 * stderr when to_stderr (--json owns stdout). */
void script_done(const struct script_summary *s, int to_stderr);

/* Whether a Lua error ended a thread's sending while the load ran (reported then):
 * the run's exit status is 2. */
int script_failed(void);

/* Close the Lua state (idempotent). */
void script_close(void);

#endif
