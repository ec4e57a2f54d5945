/* ivlog: the --hdr-log interval log and its logger thread (ivlog.h). */
#include "ivlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "hlog.h"

struct ivlog {
    FILE *f;
    const char *path, *what;
    struct engine *e;
    pthread_t th;
    int running;
    _Atomic int stop;
    uint64_t start_ns, measure_ns, interval_ns;
    uint64_t origin;     /* interval k is [origin + k*I, origin + (k+1)*I) */
    uint64_t next_k;     /* the next interval to write */
    int failed;          /* a write failed (reported once, at the end) */
    struct hist acc;     /* the interval being collected (the logger's own) */
};

uint64_t ivlog_wall_of(uint64_t mono)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t now = clock_ns();
    return mono >= now ? wall + (mono - now) : wall - (now - mono);
}

int ivlog_slot_init(struct eng_thread *t)
{
    if (!t->e->o->hdr_log)
        return 0;
    t->iv = malloc(sizeof *t->iv);
    if (!t->iv)
        return -1;
    t->iv->origin = t->iv->interval_ns = 0;
    hist_init(&t->iv->h[0]);
    hist_init(&t->iv->h[1]);
    errno = pthread_mutex_init(&t->iv->mu, NULL);
    if (errno) {
        free(t->iv);
        t->iv = NULL;
        return -1;
    }
    return 0;
}

void ivlog_slot_free(struct eng_thread *t)
{
    if (!t->iv)
        return;
    pthread_mutex_destroy(&t->iv->mu);
    free(t->iv);
    t->iv = NULL;
}

int ivlog_open(struct engine *e, const char *what)
{
    const char *path = e->o->hdr_log;
    if (!path)
        return 0;
    struct ivlog *iv = calloc(1, sizeof *iv);
    if (!iv || !(iv->f = fopen(path, "w"))) {
        fprintf(stderr, "wharf %s: %s: %s\n", e->drv->name, path, strerror(errno));
        free(iv);
        return -1;
    }
    iv->path = path;
    iv->what = what;
    iv->e = e;
    iv->interval_ns = e->o->interval_ms * 1000000ull;
    e->iv = iv;
    return 0;
}

/* Take interval k's histogram from every thread's slot into iv->acc (emptying them). */
static void collect(struct ivlog *iv, uint64_t k)
{
    hist_init(&iv->acc);
    for (int i = 0; i < iv->e->nthreads; i++) {
        struct iv_slot *s = iv->e->t[i].iv;
        if (!s)
            continue;
        pthread_mutex_lock(&s->mu);
        hist_merge(&iv->acc, &s->h[k & 1]);
        hist_init(&s->h[k & 1]);
        pthread_mutex_unlock(&s->mu);
    }
}

/* Interval iv->next_k, up to `to` at the latest: collect it and write its line. The
 * first starts at the run's start, which may be inside it. */
static void write_interval(struct ivlog *iv, uint64_t to)
{
    uint64_t k = iv->next_k++;
    uint64_t from = iv->origin + k * iv->interval_ns, end = from + iv->interval_ns;
    from = from < iv->start_ns ? iv->start_ns : from;
    end = end > to ? to : end;
    collect(iv, k);
    if (hlog_write_line(iv->f, end <= iv->measure_ns, (double)(from - iv->start_ns) / 1e9,
                        (double)(end - from) / 1e9, &iv->acc) < 0)
        iv->failed = 1;
    fflush(iv->f);
}

/* The origin of the intervals: the measured start minus whole intervals, at or before
 * the start. */
static uint64_t origin_of(const struct ivlog *iv)
{
    uint64_t back = (iv->measure_ns - iv->start_ns + iv->interval_ns - 1) / iv->interval_ns;
    return iv->measure_ns - back * iv->interval_ns;
}

static void *logger(void *arg)
{
    struct ivlog *iv = arg;
    uint64_t grace = min_u64(iv->interval_ns / 4, 250000000ull);
    while (!atomic_load(&iv->stop)) {
        uint64_t now = clock_ns(), due = iv->origin + (iv->next_k + 1) * iv->interval_ns + grace;
        if (now < due) {
            /* Short naps: the end of the run is seen within 50 ms. */
            uint64_t nap = min_u64(due - now, 50000000ull);
            struct timespec ts = {(time_t)(nap / 1000000000u), (long)(nap % 1000000000u)};
            nanosleep(&ts, NULL);
            continue;
        }
        write_interval(iv, UINT64_MAX);
    }
    return NULL;
}

static void write_header(struct ivlog *iv)
{
    char what[ADDR_TEXT_MAX + 96], extra[128];
    snprintf(what, sizeof what, "%s %s, %s", iv->e->drv->name, iv->e->target, iv->what);
    snprintf(extra, sizeof extra,
             "MeasureTime: %.3f (seconds since epoch); intervals before it are tagged warmup",
             (double)ivlog_wall_of(iv->measure_ns) / 1e9);
    hlog_write_header(iv->f, (double)ivlog_wall_of(iv->start_ns) / 1e9, what, extra);
    fflush(iv->f);
}

int ivlog_begin(struct engine *e, uint64_t start_ns, uint64_t measure_ns)
{
    struct ivlog *iv = e->iv;
    if (!iv)
        return 0;
    iv->start_ns = start_ns;
    iv->measure_ns = measure_ns < start_ns ? start_ns : measure_ns;
    iv->origin = origin_of(iv);
    for (int i = 0; i < e->nthreads; i++) {
        struct iv_slot *s = e->t[i].iv;
        pthread_mutex_lock(&s->mu);
        s->origin = iv->origin;
        s->interval_ns = iv->interval_ns;
        pthread_mutex_unlock(&s->mu);
    }
    write_header(iv);
    errno = pthread_create(&iv->th, NULL, logger, iv);
    if (errno) {
        fprintf(stderr, "wharf %s: cannot start the interval logger: %s\n", e->drv->name,
                strerror(errno));
        return -1;
    }
    iv->running = 1;
    return 0;
}

int ivlog_finish(struct engine *e)
{
    struct ivlog *iv = e->iv;
    if (!iv)
        return 0;
    if (iv->running) {
        atomic_store(&iv->stop, 1);
        pthread_join(iv->th, NULL);
        /* What is left: the interval whose grace time had not passed, and the one
         * the run ended in (cut at the end). */
        uint64_t now = clock_ns();
        while (iv->origin + iv->next_k * iv->interval_ns < now)
            write_interval(iv, now);
    }
    int rc = iv->failed || ferror(iv->f) ? -1 : 0;
    if (fclose(iv->f) != 0)
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "wharf %s: %s: could not write the interval log\n", e->drv->name,
                iv->path);
    free(iv);
    e->iv = NULL;
    return rc;
}

/* --start-at: the measured time begins at that wall clock time, the warm-up (what of
 * it is still ahead) before it. -1 when the time has passed (reported, threads told). */
int ivlog_start_at(struct engine *e, uint64_t *start, uint64_t *measure)
{
    const struct load_opts *o = e->o;
    uint64_t now = clock_ns(), wall = ivlog_wall_of(now);
    uint64_t at = (uint64_t)(o->start_at * 1e9);
    if (at <= wall + 1000000) {
        fprintf(stderr, "wharf bench: --start-at %.3f has passed (now %.3f, connections ready)\n",
                o->start_at, (double)wall / 1e9);
        atomic_store(&e->stop, 2);
        engine_wake_all(e);
        return -1;
    }
    *measure = now + (at - wall);
    uint64_t warm = o->warmup_ms * 1000000ull;
    *start = *measure > now + 1000000 + warm ? *measure - warm : now + 1000000;
    return 0;
}
