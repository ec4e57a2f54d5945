#include "rate.h"

#define NS_PER_S UINT64_C(1000000000)

void rate_init(struct rate *r, uint64_t start_ns, uint64_t per_sec, uint64_t first,
               uint64_t stride)
{
    r->start_ns = start_ns;
    r->per_sec = per_sec ? per_sec : 1;
    r->first = first;
    r->stride = stride ? stride : 1;
    r->taken = 0;
}

uint64_t rate_time(const struct rate *r, uint64_t k)
{
    unsigned __int128 j = (unsigned __int128)r->first + (unsigned __int128)k * r->stride;
    unsigned __int128 off = j * NS_PER_S / r->per_sec;
    if (off > UINT64_MAX - r->start_ns)
        return UINT64_MAX;
    return r->start_ns + (uint64_t)off;
}

uint64_t rate_due(const struct rate *r, uint64_t now)
{
    if (now < r->start_ns)
        return 0;
    /* floor(j * 1e9 / rate) <= d  <=>  j * 1e9 < (d + 1) * rate: the last due global
     * slot is J = ((d + 1) * rate - 1) / 1e9. */
    unsigned __int128 d = now - r->start_ns;
    unsigned __int128 last = ((d + 1) * r->per_sec - 1) / NS_PER_S;
    if (last < r->first)
        return 0;
    unsigned __int128 n = (last - r->first) / r->stride + 1;
    return n > UINT64_MAX ? UINT64_MAX : (uint64_t)n;
}

uint64_t rate_cap_backlog(struct rate *r, uint64_t now, uint64_t max)
{
    uint64_t due = rate_due(r, now);
    if (due <= r->taken || due - r->taken <= max)
        return 0;
    uint64_t dropped = due - r->taken - max;
    r->taken = due - max;
    return dropped;
}
