/* hlog: interval logs and JSON reports read back, and log lines written (hlog.h). */
#include "hlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/hdr_codec.h"
#include "../common/version.h"

#define HLOG_MAX_LINE (1u << 20)  /* one interval's base64: far below this */
#define HLOG_MAX_JSON (16u << 20)

/* Room for one more interval. */
static struct hlog_iv *add_iv(struct hlog *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct hlog_iv *iv = realloc(l->iv, cap * sizeof *iv);
        if (!iv)
            return NULL;
        l->iv = iv;
        l->cap = cap;
    }
    memset(&l->iv[l->n], 0, sizeof l->iv[0]);
    return &l->iv[l->n++];
}

/* A "#[Key: NUMBER" comment: its number into *v. */
static void header_time(const char *line, const char *key, double *v)
{
    size_t n = strlen(key);
    if (strncmp(line, key, n) == 0)
        *v = strtod(line + n, NULL);
}

/* Field f of a comma-separated line as a number; NULL when it is not one. */
static const char *number(const char *p, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(p, &end);
    if (end == p || *end != ',' || errno)
        return NULL;
    return end + 1;
}

/* One interval line (without its newline): [Tag=T,]start,len,max,base64. */
static int parse_line(struct hlog *l, char *line, double base, int keep, char *err,
                      size_t errlen)
{
    int warm = 0;
    if (strncmp(line, "Tag=", 4) == 0) {
        char *comma = strchr(line, ',');
        if (!comma) {
            snprintf(err, errlen, "a tag and nothing else");
            return -1;
        }
        warm = comma - line == 10 && strncmp(line + 4, "warmup", 6) == 0;
        line = comma + 1;
    }
    double start, len, max;
    const char *p = number(line, &start);
    p = p ? number(p, &len) : NULL;
    p = p ? number(p, &max) : NULL;
    if (!p || len < 0) {
        snprintf(err, errlen, "not an interval line (start,length,max,histogram)");
        return -1;
    }
    struct hist *h = malloc(sizeof *h);
    struct hlog_iv *iv = h ? add_iv(l) : NULL;
    if (!iv) {
        free(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (hdr_decode_b64(p, strlen(p), h, err, errlen) < 0) {
        free(h);
        l->n--;
        return -1;
    }
    /* Timestamps below a year past the base's are relative to it (HdrHistogram's rule). */
    iv->start = start < 365 * 86400.0 ? base + start : start;
    iv->len = len;
    iv->warmup = warm;
    if (!warm)
        hist_merge(&l->total, h);
    if (keep)
        iv->h = h;
    else
        free(h);
    return 0;
}

/* The measured span: from the first measured interval's start to the last one's end. */
static void measured_span(struct hlog *l)
{
    l->t0 = l->t1 = 0;
    int any = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->iv[i].warmup)
            continue;
        if (!any || l->iv[i].start < l->t0)
            l->t0 = l->iv[i].start;
        if (!any || l->iv[i].start + l->iv[i].len > l->t1)
            l->t1 = l->iv[i].start + l->iv[i].len;
        any = 1;
    }
}

static int read_log(FILE *f, struct hlog *l, int keep, char *err, size_t errlen)
{
    char *line = NULL, msg[200];
    size_t cap = 0;
    double start = 0, base = -1;
    unsigned lineno = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (n > HLOG_MAX_LINE || line[n - 1] != '\n') {
            snprintf(err, errlen, "%s:%u: %s", l->path, lineno,
                     n > HLOG_MAX_LINE ? "line too long" : "truncated (no newline at the end)");
            rc = -1;
            break;
        }
        line[--n] = 0;
        if (n && line[n - 1] == '\r')
            line[--n] = 0;
        if (strncmp(line, "#[Logged with wharf", 19) == 0 && strstr(line, "connect latency]"))
            l->connects = 1;
        header_time(line, "#[StartTime: ", &start);
        header_time(line, "#[BaseTime: ", &base);
        if (n == 0 || line[0] == '#' || line[0] == '"' || strncmp(line, "StartTimestamp", 14) == 0)
            continue;
        if (parse_line(l, line, base >= 0 ? base : start, keep, msg, sizeof msg) < 0) {
            snprintf(err, errlen, "%s:%u: %s", l->path, lineno, msg);
            rc = -1;
        }
    }
    free(line);
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: %s", l->path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && l->n == 0) {
        snprintf(err, errlen, "%s: no interval in this log", l->path);
        rc = -1;
    }
    measured_span(l);
    return rc;
}

/* Where the value of "key": begins in s, or NULL. Good enough for wharf's own reports,
 * whose keys are unique per level and never appear inside strings. */
static const char *json_value(const char *s, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(s, pat);
    return p ? p + strlen(pat) : NULL;
}

/* A wharf bench or churn --json report: its latency histogram (bench: request latency,
 * churn: connect latency), duration and errors. */
static int parse_json(char *s, struct hlog *l, char *err, size_t errlen)
{
    const char *cmd = json_value(s, "command");
    l->connects = cmd && strncmp(cmd, "\"churn\"", 7) == 0;
    const char *key = l->connects ? "connect_latency" : "latency";
    const char *lat = json_value(s, key), *hdr = lat ? json_value(lat, "hdr") : NULL;
    const char *dur = json_value(s, "duration_s"), *errs = json_value(s, "errors");
    const char *total = errs ? json_value(errs, "total") : NULL;
    if (!hdr || *hdr != '"' || !dur || !total) {
        snprintf(err, errlen, "%s: not a wharf bench or churn --json report with histograms",
                 l->path);
        return -1;
    }
    const char *end = strchr(hdr + 1, '"');
    char msg[160];
    if (!end || hdr_decode_b64(hdr + 1, (size_t)(end - hdr - 1), &l->total, msg, sizeof msg)) {
        snprintf(err, errlen, "%s: %s", l->path, end ? msg : "truncated");
        return -1;
    }
    const char *at = json_value(s, "start_epoch");
    l->is_json = at ? 2 : 1; /* 2: placed in time, so checked for overlap like a log */
    l->t0 = at ? strtod(at, NULL) : 0;
    l->t1 = l->t0 + strtod(dur, NULL);
    l->errors = strtoull(total, NULL, 10);
    l->has_errors = 1;
    return 0;
}

static int read_json(FILE *f, struct hlog *l, char *err, size_t errlen)
{
    char *s = malloc(HLOG_MAX_JSON + 1);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = fread(s, 1, HLOG_MAX_JSON + 1, f);
    int rc = -1;
    if (ferror(f))
        snprintf(err, errlen, "%s: %s", l->path, strerror(errno));
    else if (n > HLOG_MAX_JSON)
        snprintf(err, errlen, "%s: larger than any wharf report", l->path);
    else if (n == 0 || s[n - 1] != '\n' || !memchr(s, '}', n))
        snprintf(err, errlen, "%s: truncated report (no closing line)", l->path);
    else {
        s[n] = 0;
        rc = parse_json(s, l, err, errlen);
    }
    free(s);
    return rc;
}

int hlog_read(const char *path, struct hlog *l, int keep, char *err, size_t errlen)
{
    l->path = path;
    hist_init(&l->total);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int c = fgetc(f);
    while (c == ' ' || c == '\n' || c == '\t')
        c = fgetc(f);
    ungetc(c, f);
    int rc = c == '{' ? read_json(f, l, err, errlen) : read_log(f, l, keep, err, errlen);
    fclose(f);
    return rc;
}

void hlog_free(struct hlog *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->iv[i].h);
    free(l->iv);
    l->iv = NULL;
    l->n = l->cap = 0;
}

void hlog_write_header(FILE *f, double start, const char *what, const char *extra)
{
    time_t secs = (time_t)start;
    struct tm tm;
    char date[64];
    gmtime_r(&secs, &tm);
    strftime(date, sizeof date, "%a %b %d %H:%M:%S UTC %Y", &tm);
    fprintf(f, "#[Logged with wharf %s, %s]\n", WHARF_VERSION, what);
    fprintf(f, "#[Histogram log format version 1.3]\n");
    fprintf(f, "#[StartTime: %.3f (seconds since epoch), %s]\n", start, date);
    fprintf(f, "#[BaseTime: %.3f (seconds since epoch)]\n", start);
    fprintf(f, "#[Values in nanoseconds: lowest 1, highest 2^40-1, 2 significant digits;"
               " Interval_Max in milliseconds]\n");
    if (extra)
        fprintf(f, "#[%s]\n", extra);
    fprintf(f, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
               "\"Interval_Compressed_Histogram\"\n");
}

int hlog_write_line(FILE *f, int warmup, double start, double len, const struct hist *h)
{
    char *b64 = hdr_encode_b64(h);
    if (!b64)
        return -1;
    fprintf(f, "%s%.3f,%.3f,%.3f,%s\n", warmup ? "Tag=warmup," : "", start, len,
            h->count ? (double)h->max / 1e6 : 0.0, b64);
    free(b64);
    return 0;
}
