/* engine: what bench, churn and hold all are -- many non-blocking connections driven
 * by one epoll loop per thread (or, for hold --procs, per process: procs.h) -- so that
 * each of them is only a driver: the engine opens connections, paces them
 * (--connect-rate, at most max_pending handshakes in flight), retries them when told,
 * times out handshakes, reads what arrives, runs the loop and its wake-ups, starts and
 * joins the threads, watches the clock and Ctrl-C from the main thread, keeps the
 * counters and histograms, and prints what every report has (histograms, errors, CPU).
 * What a connection does once it is open (requests, replies, cycles, probes) and what
 * the report says about it are the driver's; the bytes are the protocol module's.
 *
 * Threads share only: the engine's stop/ready/done atomics (the main thread's stop,
 * the threads' progress), the ctr_t counters of eng_stats (one writer each, read by
 * the progress line), and what a driver documents (bench's start time). A driver's
 * hooks run on their connection's thread, never concurrently for one thread.
 *
 * Lifecycle of a connection slot: QUEUED (eng_queue, eng_queue_at) -> CONNECTING ->
 * OPEN (hook connected) -> closed by the driver (eng_close) -> IDLE, and queued again
 * when the driver wants it back. A failed or timed-out handshake calls connect_failed
 * with the slot closed. */
#ifndef WHARF_ENGINE_H
#define WHARF_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/rate.h"
#include "load.h"
#include "payload.h"
#include "report.h"

#define ENG_RBUF_SIZE (64 * 1024) /* one per thread: replies are cut in place */
#define ENG_NO_LIMIT UINT64_MAX

enum eng_state { EC_IDLE, EC_QUEUED, EC_CONNECTING, EC_OPEN };

struct eng_conn {
    int fd;
    uint16_t gen;       /* bumped per socket: events of an older socket are ignored
                         * (stale ones come within one epoll_wait batch: 16 bits do) */
    uint8_t state;      /* enum eng_state */
    uint8_t resolved;   /* connected or failed at least once (the ramp is over for it) */
    uint64_t t_connect; /* connect() began; while queued for later: when to connect */
};

#define ENG_COUNTERS 20
#define ENG_HISTS 3
#define ENG_MARKS 2

/* A thread's (or process's) counts: the driver's counters and histograms, indexed by
 * the driver's own enums, and the errors by kind and errno. Written by its thread
 * only; the main thread reads the ctr_t ones while it runs (progress lines) and the
 * rest once it ended (engine_collect). A process sends all but the histograms
 * (ENG_STATS_SENT bytes, procs.h), so they come last. */
struct eng_stats {
    ctr_t c[ENG_COUNTERS];
    ctr_t err[ERR_KINDS];
    uint64_t last_ns;  /* the driver's latest completion: the end of the measured time */
    uint64_t mark[ENG_MARKS]; /* the driver's moments (hold: when its last connection
                               * connected, went live): the latest one counts */
    struct errno_counts errnos;
    struct hist h[ENG_HISTS];
};

#define ENG_STATS_SENT offsetof(struct eng_stats, h)

/* Every thread's stats added up (histograms merged, last_ns the latest). */
struct eng_totals {
    uint64_t c[ENG_COUNTERS];
    uint64_t err[ERR_KINDS];
    uint64_t errors;   /* all kinds */
    uint64_t attempts; /* connects started */
    uint64_t last_ns;
    uint64_t mark[ENG_MARKS];
    struct errno_counts errnos;
    struct hist h[ENG_HISTS];
    /* The rates, from the driver's derive hook. */
    double elapsed_s;           /* the measured time */
    double per_sec;             /* requests (bench) or connections (churn) per second */
    double cpu_us;              /* client CPU per request or connection */
    double mib_in_s, mib_out_s; /* bytes read and written */
};

struct engine;
struct iv_slot;
struct ivlog;

struct eng_thread {
    struct engine *e;
    int id;
    pthread_t th;
    int epfd;
    int wakefd;           /* eventfd (threads) or the control socket (processes) */
    uint32_t n;
    uint64_t first_index; /* global number of conns[0], for --source */
    uint64_t quota;       /* this thread's share of -n (ENG_NO_LIMIT without) */
    const struct endpoint *ep; /* where it connects; NULL: the target (a driver may set
                                * it in thread_init: a wrk script's thread.addr) */
    struct eng_conn *conns;
    struct reply_rx *rx;  /* per slot: a reply cut by the end of a read */
    char *rbuf;
    void *d;              /* the driver's per-thread state */
    struct eng_stats *st;
    struct iv_slot *iv;   /* --hdr-log's histogram, handed to the logger (ivlog.h) */
    /* connecting */
    int connecting;       /* 0: queued connections wait (the driver stopped starting) */
    uint64_t attempts, attempt_limit;
    uint32_t *q, qhead, qlen;    /* to connect now, as the pace allows */
    uint32_t *dq, dqhead, dqlen; /* to connect at conns[i].t_connect (allocated when
                                  * first used: hold never retries) */
    uint32_t pending;            /* handshakes in flight */
    uint32_t resolved;           /* connections that connected or failed once */
    struct rate crate;
    uint64_t next_scan;
};

enum { ENG_GONE = -1, ENG_OK = 0, ENG_MORE = 1 }; /* on_bytes' answers */

struct eng_driver {
    const char *name;          /* "bench": for messages */
    const char *conn_noun;     /* "connections", "loops": the file-limit message */
    const char *limit_hint;    /* appended to the file-limit message */
    uint32_t max_pending;      /* handshakes in flight per thread; 0: no limit */
    uint64_t scan_ns;          /* how often the timeouts are checked */
    int source_by_attempt;     /* --source by attempt number, not by slot */
    /* Per-thread state (t->d): set up and free. 0 or -1. */
    int (*thread_init)(struct eng_thread *t);
    void (*thread_free)(struct eng_thread *t);
    /* Once per loop turn, before the engine starts connects: the driver's phase work.
     * Returns 1 to leave the loop. */
    int (*turn)(struct eng_thread *t, uint64_t now);
    /* The latest time the loop may sleep to for the driver's sake. */
    uint64_t (*next_wakeup)(const struct eng_thread *t, uint64_t now);
    /* A connect is about to start on slot i (churn counts its cycles here); optional. */
    void (*starting)(struct eng_thread *t, uint32_t i, uint64_t now);
    void (*connected)(struct eng_thread *t, uint32_t i, uint64_t now);
    /* The handshake failed with err (the slot is closed and IDLE). */
    void (*connect_failed)(struct eng_thread *t, uint32_t i, int err, uint64_t now);
    /* Events on an open connection. */
    void (*on_events)(struct eng_thread *t, uint32_t i, uint32_t events);
    /* Bytes read from i (eng_read): ENG_OK, ENG_MORE (read on after a short read), or
     * ENG_GONE (the driver closed it). */
    int (*on_bytes)(struct eng_thread *t, uint32_t i, const char *d, size_t n, uint64_t now);
    /* The peer closed (kind ERR_CLOSED) or the read failed (ERR_READ, err). The
     * connection is still open: the driver closes it. */
    void (*on_closed)(struct eng_thread *t, uint32_t i, int kind, int err, uint64_t now);
    /* Timeouts of open connections (handshakes are the engine's). */
    void (*scan)(struct eng_thread *t, uint64_t now);
    /* The wake descriptor was readable (processes: a message of the parent); optional. */
    void (*woken)(struct eng_thread *t);
    /* On the main thread, threads running: wait for them as the driver's run needs.
     * Returns 0, or -1 when the run could not happen (reported). */
    int (*main)(struct engine *e);
    /* After the threads ended: the rates of the totals, then the report, as text or
     * (--json) as JSON. */
    void (*derive)(const struct engine *e, struct eng_totals *r);
    void (*print_text)(const struct engine *e, const struct eng_totals *r);
    void (*print_json)(const struct engine *e, const struct eng_totals *r);
    /* Whether the run failed (exit status 1); ran is what main returned. */
    int (*failed)(const struct engine *e, const struct eng_totals *r, int ran);
    int csv_hist;              /* the histogram --latency-csv (and --hgrm) writes */
    const char *ivlog_what;    /* what --hdr-log records, for its header */
    /* The text report's last lines, after the driver's: printf formats of the rate
     * (per_sec, mib_in_s, mib_out_s) and of the CPU (cpu_us, user, system seconds). */
    const char *rate_lines, *cpu_line;
};

struct engine {
    const struct load_opts *o;
    const struct eng_driver *drv;
    void *d;             /* the driver's run-wide state */
    int nthreads;
    struct eng_thread *t;
    uint64_t t0;         /* when the threads were set up: the connect pace starts here */
    char target[ADDR_TEXT_MAX + 16]; /* PROTO://HOST:PORT, for the report */
    _Atomic int stop;    /* 1: stop sending and drain; 2: stop now */
    _Atomic int ready;   /* threads whose every connection resolved once */
    _Atomic int done;    /* threads that left their loop */
    int interrupted;     /* a signal cut the run */
    struct cpu_use cpu0, cpu; /* at engine_cpu_mark; the use since, at the end */
    struct ivlog *iv;    /* --hdr-log's writer (ivlog.h); NULL without */
};

/* Run a load command with threads: set up o->threads threads (o->connections slots and
 * -n shared evenly), start them, call drv->main, join them, call drv->report. d is the
 * driver's run-wide state. Returns the exit status. */
int engine_run(const struct load_opts *o, const struct eng_driver *drv, void *d);

/* The loop of one thread (or one process), until drv->turn says to leave; then every
 * connection is closed. Every slot is queued for a connect first when queue_all. */
void engine_loop(struct eng_thread *t, int queue_all);

/* Set up t's engine state: n slots, epoll with wakefd registered, connect pacing from
 * start_ns shared as `index` of `of`. 0, or -1 with errno. */
int eng_thread_init(struct engine *e, struct eng_thread *t, int id, uint32_t n, int wakefd,
                    uint64_t start_ns, uint64_t index, uint64_t of);
void eng_thread_free(struct eng_thread *t);

/* Queue slot i for a connect now (as the pace allows), or at `when`. */
void eng_queue(struct eng_thread *t, uint32_t i);
void eng_queue_at(struct eng_thread *t, uint32_t i, uint64_t when);
/* Close i's socket (with an RST, no TIME_WAIT, when rst) and forget its partial reply;
 * the slot is IDLE. */
void eng_close(struct eng_thread *t, uint32_t i, int rst);
/* Read what i has into t->rbuf and hand it to drv->on_bytes: until a short read (or
 * EAGAIN when the peer's FIN or an error is pending, or on_bytes asks for more). EOF
 * and read errors go to drv->on_closed. Returns 0 while i is open, -1 once it is not;
 * *now is the time of the last read with bytes (left alone when none came). */
int eng_read(struct eng_thread *t, uint32_t i, uint32_t events, uint64_t *now);

/* The main thread: wait until every thread is ready (or a signal, or none can be: -1),
 * printing "[connecting] N of M connected" each second on a terminal, N from live(). */
int engine_wait_ready(struct engine *e, uint64_t (*live)(const struct engine *e));
/* The main thread: wait until every thread is done. A signal sets stop (a second one
 * stop now) and interrupted; progress(e, now) runs once a second from first_tick. */
void engine_wait_done(struct engine *e, uint64_t first_tick,
                      void (*progress)(struct engine *e, uint64_t now));
/* Add up every thread's stats (after they ended); NULL when out of memory (reported).
 * The caller frees it. */
struct eng_totals *engine_collect(const struct engine *e);
/* The one way counts are added up, for threads (engine_collect) and processes
 * (procs_collect): empty totals, then each one's stats but its histograms (counters,
 * errors, errnos, the latest last_ns and marks) and its connects started. */
void eng_totals_init(struct eng_totals *sum);
void eng_totals_add(struct eng_totals *sum, const struct eng_stats *st, uint64_t attempts);
/* The end of a JSON report: "HIST_NAMES[0]":{latency},... for the histograms named
 * (NULL-terminated, in the driver's order), then ,"errors":{...},"ERRNO_KEY":{by
 * errno},"cpu":{"user_s":..,"sys_s":..,"PER_KEY":per}} and a newline. */
void engine_json_tail(FILE *f, const struct engine *e, const struct eng_totals *r,
                      const char *const *hist_names, const char *errno_key,
                      const char *per_key, double per);
/* The end of a text report: the note that a signal cut the run, the rate lines and the
 * CPU line (eng_driver's formats). */
void engine_text_tail(FILE *f, const struct engine *e, const struct eng_totals *r);
/* After the threads ended: collect, derive, print the report (text or --json), write
 * the latency CSV and .hgrm; the exit status (ran: what the driver's main returned). */
int engine_report(struct engine *e, int ran);
/* One driver counter, or the errors of every kind, over all threads, while they run. */
uint64_t engine_sum(const struct engine *e, int counter);
uint64_t engine_errors(const struct engine *e);

/* Wake every thread (a stop or a start to see). */
void engine_wake_all(struct engine *e);
/* Start counting CPU now (the report's CPU is from here to the threads' end). */
void engine_cpu_mark(struct engine *e);

static inline uint32_t eng_index(const struct eng_thread *t, const struct eng_conn *c)
{
    return (uint32_t)(c - t->conns);
}

static inline uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

#endif
