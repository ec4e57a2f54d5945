/* procs: the engine in several processes (hold --procs: more connections than one
 * process's file limit allows). The parent forks K children, each running its own
 * engine loop, and gathers their counts the way engine_collect gathers threads': each
 * child sends its driver's counts (a fixed-size struct, at most PROCS_COUNTS_MAX bytes)
 * over a SOCK_SEQPACKET socketpair as PROGRESS, READY or FINAL, and the parent answers
 * with one GO (hold: verify now). The socketpair is the child loop's wake descriptor.
 * A child whose parent is gone exits; a child that never reports FINAL is killed and
 * counted as lost. */
#ifndef WHARF_PROCS_H
#define WHARF_PROCS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCS_MAX 256
#define PROCS_COUNTS_MAX 4096

enum { PROCS_PROGRESS = 1, PROCS_READY, PROCS_FINAL, PROCS_GO };

struct proc {
    pid_t pid;
    int ctl;
    int ready, final, gone;
    uint64_t counts[PROCS_COUNTS_MAX / 8]; /* the child's last counts */
};

struct procs {
    int k;
    size_t counts_size;
    struct proc p[PROCS_MAX];
    int lost;             /* children that never sent FINAL (after procs_reap) */
};

/* Fork k children; child i runs child(ctl, i, arg) and must not return. 0, or -1
 * (reported, children already started are killed by their parent-death signal). */
int procs_spawn(struct procs *ps, int k, size_t counts_size,
                void (*child)(int ctl, int index, void *arg), void *arg);
/* Read what the children say until each has reached `want` (PROCS_READY or
 * PROCS_FINAL), deadline_ns passes or a signal comes; every second on_tick(ps, now,
 * arg) (may be NULL). Returns the number of signals seen so far. */
int procs_wait(struct procs *ps, int want, uint64_t deadline_ns,
               void (*on_tick)(const struct procs *ps, uint64_t now, void *arg), void *arg);
/* Send GO to every child. */
void procs_go(struct procs *ps);
/* Kill the children that did not report FINAL (they count in ps->lost), and reap all. */
void procs_reap(struct procs *ps);

/* In a child: send counts as type; exits when the parent is gone. */
void procs_send(int ctl, int type, const void *counts, size_t size);
/* In a child, when ctl is readable: 1 when it was GO; exits when the parent is gone. */
int procs_take_go(int ctl);

#endif
