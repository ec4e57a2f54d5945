/* rate: a constant-rate schedule of "slots" (intended send times), wrk2 style.
 *
 * The whole run has one global schedule: slot j is due at start + floor(j * 1e9 / rate)
 * nanoseconds. A scheduler owns every stride-th slot from first on (a thread takes
 * first = its number, stride = the thread count), so the threads' slots interleave into
 * one evenly spaced sequence. Times are computed from the slot number, never by adding
 * intervals, so they never drift, however long the run.
 *
 * A sender asks how many of its slots are due (rate_backlog), takes them (rate_take)
 * and measures each request's latency from rate_time(slot), its intended send time.
 * A sender that stalls finds a backlog when it resumes and sends it at once, latency
 * still counted from the intended times: a stalled server cannot hide behind
 * coordinated omission. */
#ifndef WHARF_RATE_H
#define WHARF_RATE_H

#include <stdint.h>

struct rate {
    uint64_t start_ns;
    uint64_t per_sec; /* slots per second in the global schedule; > 0 */
    uint64_t first;   /* this scheduler's first global slot */
    uint64_t stride;  /* ... and every stride-th after it; > 0 */
    uint64_t taken;   /* local slots handed out so far */
};

void rate_init(struct rate *r, uint64_t start_ns, uint64_t per_sec, uint64_t first,
               uint64_t stride);

/* Intended time of local slot k (global slot first + k * stride). */
uint64_t rate_time(const struct rate *r, uint64_t k);

/* Local slots due by now: the number of k with rate_time(k) <= now. */
uint64_t rate_due(const struct rate *r, uint64_t now);

/* Local slots due by now and not yet taken. */
static inline uint64_t rate_backlog(const struct rate *r, uint64_t now)
{
    uint64_t due = rate_due(r, now);
    return due > r->taken ? due - r->taken : 0;
}

/* Take n slots; returns the first one's number (their times: rate_time(k..k+n-1)). */
static inline uint64_t rate_take(struct rate *r, uint64_t n)
{
    uint64_t k = r->taken;
    r->taken += n;
    return k;
}

/* When the next slot not yet taken is due. */
static inline uint64_t rate_next(const struct rate *r) { return rate_time(r, r->taken); }

/* Drop due slots beyond max, so a sender that had nothing to do for a while does not
 * burst (used to pace connects; requests never skip slots). Returns slots dropped. */
uint64_t rate_cap_backlog(struct rate *r, uint64_t now, uint64_t max);

/* How many of the first total slots of a schedule fall to member index of stride
 * members, when slot k goes to member k % stride (a thread's slots over its
 * connections). */
static inline uint64_t rate_share(uint64_t total, uint64_t index, uint64_t stride)
{
    return total > index ? (total - index - 1) / stride + 1 : 0;
}

#endif
