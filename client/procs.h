/* procs: the engine in several processes (hold --procs: more connections than one
 * process's file limit allows). The parent forks K children, each running its own
 * engine loop, and gathers their counts the way engine_collect gathers threads'
 * (eng_totals_add): each child sends its engine stats but the histograms, with its
 * connects started, over a SOCK_SEQPACKET socketpair as PROGRESS, READY or FINAL, and
 * the parent answers with one GO (hold: verify now). The socketpair is the child loop's
 * wake descriptor. A child whose parent is gone exits; a child that never reports FINAL
 * is killed and counted as lost. */
#ifndef WHARF_PROCS_H
#define WHARF_PROCS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"

#define PROCS_MAX 256

enum { PROCS_PROGRESS = 1, PROCS_READY, PROCS_FINAL, PROCS_GO };

struct proc {
    pid_t pid;
    int ctl;
    int ready, final, gone;
    uint64_t attempts;     /* the child's last counts: connects started, */
    struct eng_stats *st;  /* and its stats but the histograms */
};

struct procs {
    int k;
    struct proc p[PROCS_MAX];
    int lost;             /* children that never sent FINAL (after procs_reap) */
};

/* Fork k children; child i runs child(ctl, i, arg) and must not return. 0, or -1
 * (reported, children already started are killed by their parent-death signal). */
int procs_spawn(struct procs *ps, int k, void (*child)(int ctl, int index, void *arg),
                void *arg);
/* Read what the children say until each has reached `want` (PROCS_READY or
 * PROCS_FINAL), deadline_ns passes or a signal comes; every second on_tick(ps, now,
 * arg) (may be NULL). Returns the number of signals seen so far. */
int procs_wait(struct procs *ps, int want, uint64_t deadline_ns,
               void (*on_tick)(const struct procs *ps, uint64_t now, void *arg), void *arg);
/* Send GO to every child. */
void procs_go(struct procs *ps);
/* Kill the children that did not report FINAL (they count in ps->lost), and reap all. */
void procs_reap(struct procs *ps);
/* The children's last counts added up into sum (eng_totals_init first). */
void procs_collect(const struct procs *ps, struct eng_totals *sum);
/* Free what procs_spawn allocated. */
void procs_free(struct procs *ps);

/* In a child (its loop's t, t->wakefd the control socket): send its counts as type;
 * exits when the parent is gone. */
void procs_send(const struct eng_thread *t, int type);
/* In a child, when ctl is readable: 1 when it was GO; exits when the parent is gone. */
int procs_take_go(int ctl);

#endif
