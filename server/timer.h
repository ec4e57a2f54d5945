/* timer: deadline lists for connection timeouts, O(1) per operation.
 *
 * Every connection in one list has the same timeout, so appending at the tail keeps
 * a list ordered by deadline: expiry looks only at the head, and "activity" moves a
 * connection to the tail. Deadlines are 32-bit milliseconds on the worker's clock and
 * compared by signed difference, which is correct while timeouts stay below 24 days. */
#ifndef WHARF_TIMER_H
#define WHARF_TIMER_H

#include <stddef.h>
#include <stdint.h>

struct tnode {
    struct tnode *prev, *next;
    uint32_t deadline;
    uint8_t list; /* which tlist holds this node; TIMER_NONE when none */
};

#define TIMER_NONE 0xff

struct tlist {
    struct tnode *head, *tail;
    uint32_t timeout_ms; /* 0: entries never expire */
    uint8_t id;
};

static inline int timer_expired(uint32_t deadline, uint32_t now)
{
    return (int32_t)(deadline - now) <= 0;
}

static inline void tlist_remove(struct tlist *l, struct tnode *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
    n->list = TIMER_NONE;
}

static inline void tlist_append(struct tlist *l, struct tnode *n, uint32_t now)
{
    n->deadline = now + l->timeout_ms;
    n->list = l->id;
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

/* Restart n's timeout from now (it must be in l). */
static inline void tlist_touch(struct tlist *l, struct tnode *n, uint32_t now)
{
    if (n->deadline == now + l->timeout_ms)
        return; /* already touched during this millisecond */
    if (l->tail != n) {
        tlist_remove(l, n);
        tlist_append(l, n, now);
    } else {
        n->deadline = now + l->timeout_ms;
    }
}

#endif
