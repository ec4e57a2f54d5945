/* engine_totals: the threads' (and processes') counts added up, and the parts every
 * report has (histograms, errors, errnos, CPU, the latency CSV and .hgrm); see
 * engine.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hgrm.h"

void eng_totals_init(struct eng_totals *sum)
{
    memset(sum, 0, sizeof *sum);
    for (int h = 0; h < ENG_HISTS; h++)
        hist_init(&sum->h[h]);
}

void eng_totals_add(struct eng_totals *sum, const struct eng_stats *st, uint64_t attempts)
{
    for (int k = 0; k < ENG_COUNTERS; k++)
        sum->c[k] += ctr_get(&st->c[k]);
    for (int k = 0; k < ERR_KINDS; k++) {
        uint64_t n = ctr_get(&st->err[k]);
        sum->err[k] += n;
        sum->errors += n;
    }
    errno_merge(&sum->errnos, &st->errnos);
    sum->attempts += attempts;
    if (st->last_ns > sum->last_ns)
        sum->last_ns = st->last_ns;
    for (int k = 0; k < ENG_MARKS; k++)
        if (st->mark[k] > sum->mark[k])
            sum->mark[k] = st->mark[k];
}

struct eng_totals *engine_collect(const struct engine *e)
{
    struct eng_totals *sum = malloc(sizeof *sum);
    if (!sum) {
        fprintf(stderr, "wharf %s: out of memory\n", e->drv->name);
        return NULL;
    }
    eng_totals_init(sum);
    for (int i = 0; i < e->nthreads; i++) {
        eng_totals_add(sum, e->t[i].st, e->t[i].attempts);
        for (int h = 0; h < ENG_HISTS; h++)
            hist_merge(&sum->h[h], &e->t[i].st->h[h]);
    }
    return sum;
}

void engine_json_tail(FILE *f, const struct engine *e, const struct eng_totals *r,
                      const char *const *hist_names, const char *errno_key,
                      const char *per_key, double per)
{
    for (int h = 0; h < ENG_HISTS && hist_names[h]; h++) {
        fprintf(f, "%s\"%s\":", h ? "," : "", hist_names[h]);
        report_latency_json(f, &r->h[h]);
    }
    fputc(',', f);
    report_errors_json(f, r->err, r->errors);
    fprintf(f, ",\"%s\":", errno_key);
    errno_print_json(f, &r->errnos);
    fprintf(f, ",\"cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f,\"%s\":%.3f}}\n", e->cpu.user_s,
            e->cpu.sys_s, per_key, per);
}

void engine_text_tail(FILE *f, const struct engine *e, const struct eng_totals *r)
{
    if (e->interrupted)
        fprintf(f, "  Interrupted: the run was cut short by a signal\n");
    fprintf(f, e->drv->rate_lines, r->per_sec, r->mib_in_s, r->mib_out_s);
    fprintf(f, e->drv->cpu_line, r->cpu_us, e->cpu.user_s, e->cpu.sys_s);
}

int engine_report(struct engine *e, int ran)
{
    const struct load_opts *o = e->o;
    struct eng_totals *r = engine_collect(e);
    if (!r)
        return 1;
    e->drv->derive(e, r);
    if (o->json)
        e->drv->print_json(e, r);
    else
        e->drv->print_text(e, r);
    int status = e->drv->failed(e, r, ran);
    if (o->latency_csv && report_latency_csv(o->latency_csv, &r->h[e->drv->csv_hist]) < 0) {
        fprintf(stderr, "wharf %s: %s: %s\n", e->drv->name, o->latency_csv, strerror(errno));
        status = 1;
    }
    if (o->hgrm && report_hgrm(o->hgrm, &r->h[e->drv->csv_hist]) < 0) {
        fprintf(stderr, "wharf %s: %s: %s\n", e->drv->name, o->hgrm, strerror(errno));
        status = 1;
    }
    free(r);
    return status;
}

uint64_t engine_sum(const struct engine *e, int counter)
{
    uint64_t n = 0;
    for (int i = 0; i < e->nthreads; i++)
        n += ctr_get(&e->t[i].st->c[counter]);
    return n;
}

uint64_t engine_errors(const struct engine *e)
{
    uint64_t n = 0;
    for (int i = 0; i < e->nthreads; i++)
        for (int k = 0; k < ERR_KINDS; k++)
            n += ctr_get(&e->t[i].st->err[k]);
    return n;
}
