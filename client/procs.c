#include "procs.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/clock.h"
#include "load.h"

#define TICK_NS 1000000000ull

struct procs_msg {
    uint32_t type;
    uint32_t len;      /* of stats: ENG_STATS_SENT, or 0 (GO) */
    uint64_t attempts;
    unsigned char stats[ENG_STATS_SENT];
};

int procs_spawn(struct procs *ps, int k, void (*child)(int ctl, int index, void *arg),
                void *arg)
{
    ps->k = k;
    fflush(NULL);
    for (int i = 0; i < k; i++) {
        int sv[2];
        /* Room for a child's counts (its stats but the histograms) from the start. */
        if (!(ps->p[i].st = calloc(1, sizeof *ps->p[i].st))) {
            fprintf(stderr, "wharf: out of memory\n");
            return -1;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
            perror("wharf: socketpair");
            return -1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("wharf: fork");
            return -1;
        }
        if (pid == 0) {
            close(sv[0]);
            for (int j = 0; j < i; j++)
                close(ps->p[j].ctl);
            child(sv[1], i, arg);
            _exit(0);
        }
        close(sv[1]);
        ps->p[i].pid = pid;
        ps->p[i].ctl = sv[0];
    }
    return 0;
}

static int waiting(const struct procs *ps, int want)
{
    int n = 0;
    for (int i = 0; i < ps->k; i++)
        if (!ps->p[i].gone && !(want == PROCS_READY ? ps->p[i].ready : ps->p[i].final))
            n++;
    return n;
}

/* What child i said (it is readable). */
static void take(struct procs *ps, int i)
{
    struct procs_msg m;
    struct proc *p = &ps->p[i];
    ssize_t got = recv(p->ctl, &m, sizeof m, MSG_DONTWAIT);
    if (got == (ssize_t)sizeof m && m.len == ENG_STATS_SENT) {
        memcpy(p->st, m.stats, ENG_STATS_SENT);
        p->attempts = m.attempts;
        if (m.type == PROCS_READY)
            p->ready = 1;
        else if (m.type == PROCS_FINAL)
            p->final = 1;
    } else if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        p->gone = 1;
    }
}

int procs_wait(struct procs *ps, int want, uint64_t deadline_ns,
               void (*on_tick)(const struct procs *ps, uint64_t now, void *arg), void *arg)
{
    struct pollfd pf[PROCS_MAX + 1];
    uint64_t next_tick = clock_ns() + TICK_NS;
    int signals = runctl_signals();
    for (;;) {
        uint64_t now = clock_ns();
        if (!waiting(ps, want) || now >= deadline_ns || runctl_signals() != signals)
            return runctl_signals();
        if (now >= next_tick) {
            next_tick += TICK_NS;
            if (on_tick)
                on_tick(ps, now, arg);
        }
        pf[0] = (struct pollfd){.fd = runctl_fd(), .events = POLLIN};
        for (int i = 0; i < ps->k; i++)
            pf[i + 1] = (struct pollfd){.fd = ps->p[i].gone ? -1 : ps->p[i].ctl, .events = POLLIN};
        uint64_t until = deadline_ns < next_tick ? deadline_ns : next_tick;
        int ms = until > now ? (int)((until - now + 999999) / 1000000) : 0;
        if (poll(pf, (nfds_t)ps->k + 1, ms) <= 0)
            continue;
        if (pf[0].revents)
            runctl_take();
        for (int i = 0; i < ps->k; i++)
            if (pf[i + 1].revents)
                take(ps, i);
    }
}

void procs_go(struct procs *ps)
{
    struct procs_msg m = {.type = PROCS_GO};
    for (int i = 0; i < ps->k; i++)
        if (!ps->p[i].gone && send(ps->p[i].ctl, &m, sizeof m, MSG_NOSIGNAL) < 0)
            ps->p[i].gone = 1;
}

void procs_reap(struct procs *ps)
{
    for (int i = 0; i < ps->k; i++) {
        if (!ps->p[i].final) {
            ps->lost++;
            kill(ps->p[i].pid, SIGKILL);
        }
        waitpid(ps->p[i].pid, NULL, 0);
        close(ps->p[i].ctl);
    }
}

void procs_collect(const struct procs *ps, struct eng_totals *sum)
{
    for (int i = 0; i < ps->k; i++)
        if (ps->p[i].st)
            eng_totals_add(sum, ps->p[i].st, ps->p[i].attempts);
}

void procs_free(struct procs *ps)
{
    for (int i = 0; i < ps->k; i++) {
        free(ps->p[i].st);
        ps->p[i].st = NULL;
    }
}

void procs_send(const struct eng_thread *t, int type)
{
    struct procs_msg m = {.type = (uint32_t)type, .len = ENG_STATS_SENT, .attempts = t->attempts};
    memcpy(m.stats, t->st, ENG_STATS_SENT);
    if (send(t->wakefd, &m, sizeof m, MSG_NOSIGNAL) < 0)
        _exit(3); /* the parent is gone */
}

int procs_take_go(int ctl)
{
    struct procs_msg m;
    ssize_t n = recv(ctl, &m, sizeof m, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        _exit(3);
    return n > 0 && m.type == PROCS_GO;
}
