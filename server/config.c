#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/opts.h"
#include "../common/version.h"
#include "config_check.h"
#include "option_table.h"

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* The file's values are kept for the process's life: settings such as --user point
 * into them. A reload reads a new copy (a few hundred bytes per SIGHUP). They stay
 * reachable from this list, so a leak checker sees them as kept rather than lost. */
static struct kept_value {
    struct kept_value *next;
    char text[];
} *kept_values;

static char *keep_value(const char *v)
{
    size_t n = strlen(v) + 1;
    struct kept_value *k = malloc(sizeof *k + n);
    if (!k)
        return NULL;
    memcpy(k->text, v, n);
    k->next = kept_values;
    kept_values = k;
    return k->text;
}

/* -t (--check-config): every problem is printed and counted instead of stopping at the
 * first, and each listener remembers the file line that named it. NULL while starting. */
struct check {
    int problems;
    int listen_line[MAX_LISTENERS]; /* 0: from the flags or the defaults */
};

/* After a problem described in err: -1 to stop (starting), or 0 to go on (-t). */
static int problem(struct check *ck, const char *err)
{
    if (!ck)
        return -1;
    fprintf(stderr, "wharfd: %s\n", err);
    ck->problems++;
    return 0;
}

/* One "name = value" line (p, trimmed, not a comment) of path. 0, or -1 with err set. */
static int load_line(struct config *cfg, const char *path, int lineno, char *p, char *err,
                     size_t errlen)
{
    char *eq = strchr(p, '=');
    if (!eq)
        return ERR("%s:%d: expected 'name = value'", path, lineno);
    *eq = '\0';
    char *name = trim(p), *value = keep_value(trim(eq + 1));
    const struct option_def *o = option_find(name, strlen(name));
    char why[256];
    if (!value)
        return ERR("out of memory");
    if (!o || option_is_meta(o))
        return ERR("%s:%d: unknown setting '%s' (see wharfd --help)", path, lineno, name);
    if (o->set(cfg, value, why, sizeof why) < 0)
        return ERR("%s:%d: %s: %s", path, lineno, name, why);
    return 0;
}

static int load_file(struct config *cfg, const char *path, struct check *ck, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        (void)ERR("cannot read %s: %s", path, strerror(errno));
        return problem(ck, err);
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *p = trim(line);
        if (*p == '\0' || *p == '#')
            continue;
        int n = cfg->n_listen;
        if (load_line(cfg, path, lineno, p, err, errlen) < 0)
            rc = problem(ck, err);
        else if (ck && cfg->n_listen > n)
            ck->listen_line[n] = lineno;
    }
    free(line);
    fclose(f);
    return rc;
}

/* Pass 0's options: --help, --print-defaults, --version (1: printed, exit), --config
 * and -t (remembered in cfg). 0 otherwise. */
static int meta_option(struct config *cfg, const struct option_def *o, const char *arg)
{
    if (strcmp(o->name, "help") == 0) {
        options_print_help();
        return 1;
    }
    if (strcmp(o->name, "print-defaults") == 0) {
        options_print_defaults();
        return 1;
    }
    if (strcmp(o->name, "version") == 0) {
        printf("wharfd %s (backends: %s)\n", WHARF_VERSION, WHARF_BACKENDS);
        return 1;
    }
    if (option_is_config_file(o))
        cfg->config_file = arg;
    if (option_is_check(o))
        cfg->check_only = 1;
    return 0;
}

/* One flag of pass 1 (o, its value arg). 0, or -1 with err set. */
static int apply_flag(struct config *cfg, const struct option_def *o, const char *arg,
                      int *listen_seen, char *err, size_t errlen)
{
    if (option_is_meta(o))
        return 0;
    /* --listen on the command line replaces the file's listeners, not adds to them */
    if (option_is_listen(o) && !(*listen_seen)++)
        cfg->n_listen = 0;
    char why[256];
    if (o->set(cfg, arg, why, sizeof why) < 0)
        return ERR("--%s: %s", o->name, why);
    return 0;
}

/* A flag that cannot be read (err set). Pass 0 keeps only the first such error and goes
 * on looking for -t, which reports them all in pass 1; pass 1 asks problem(). */
static int bad_flag(int pass, struct check *ck, const char *err, char *first, size_t len)
{
    if (pass == 0) {
        if (!first[0])
            snprintf(first, len, "%s", err);
        return 0;
    }
    return problem(ck, err);
}

/* Apply the flags in argv over cfg. pass 0 only looks for --help, --version, --config
 * and -t; pass 1 applies every other flag. Returns 0, 1 (help/version printed) or -1
 * with err set; with ck (-t), every problem is printed and the scan goes on. */
static int apply_flags(struct config *cfg, int argc, char **argv, int pass, struct check *ck,
                       char *err, size_t errlen)
{
    struct getopt_tables t;
    options_getopt_tables(&t);
    int c, longindex = -1, listen_seen = 0, rc = 0;
    char first[512] = "";
    optind = 0; /* 0, not 1: glibc re-initialises its state for a new scan */
    opterr = 0;
    for (; rc == 0 && (c = getopt_long(argc, argv, t.shortopts, t.longopts, &longindex)) != -1;
         longindex = -1) {
        if (c == '?' || c == ':') {
            (void)ERR("%s: %s (see wharfd --help)", argv[optind - 1],
                      c == '?' ? "unknown option" : "missing value");
            rc = bad_flag(pass, ck, err, first, sizeof first);
            continue;
        }
        const struct option_def *o = option_for_getopt(c);
        if (longindex >= 0 && opts_abbreviated(argv, optind, optarg, o->name, err, errlen))
            rc = bad_flag(pass, ck, err, first, sizeof first);
        else if (pass == 0 && (!first[0] || option_is_check(o)))
            rc = meta_option(cfg, o, optarg);
        else if (pass == 1 && apply_flag(cfg, o, optarg, &listen_seen, err, errlen) < 0)
            rc = problem(ck, err);
    }
    if (ck && listen_seen) /* the flags' listeners replaced the file's */
        memset(ck->listen_line, 0, sizeof ck->listen_line);
    if (rc == 0 && optind < argc) {
        (void)ERR("unexpected argument '%s' (see wharfd --help)", argv[optind]);
        rc = bad_flag(pass, ck, err, first, sizeof first);
    }
    if (rc == 0 && first[0] && !cfg->check_only)
        rc = ERR("%s", first);
    return rc;
}

static int build(struct config *cfg, int argc, char **argv, const char *file,
                 struct check *ck, char *err, size_t errlen)
{
    options_apply_defaults(cfg);
    cfg->argc = argc;
    cfg->argv = argv;
    cfg->config_file = file;
    if (file && load_file(cfg, file, ck, err, errlen) < 0)
        return -1;
    if (apply_flags(cfg, argc, argv, 1, ck, err, errlen) < 0)
        return -1;
    if (cfg->n_listen == 0 && options_default_listeners(cfg, err, errlen) < 0)
        return -1;
    return 0;
}

/* Listener i and an earlier one cannot both be bound: 1 with a reason in why, else 0. */
static int listener_clash(const struct config *cfg, int i, char *why, size_t len)
{
    for (int k = 0; k < i; k++) {
        if (!config_check_clash(&cfg->listen[k], &cfg->listen[i]))
            continue;
        char a[LISTEN_SPEC_TEXT_MAX], b[LISTEN_SPEC_TEXT_MAX];
        listen_spec_format(&cfg->listen[k], a, sizeof a);
        listen_spec_format(&cfg->listen[i], b, sizeof b);
        snprintf(why, len, "'%s': its address and port are taken by '%s' already", b, a);
        return 1;
    }
    return 0;
}

/* -t: build as a start would, printing every problem, then ask the host about what only
 * it can answer (config_check.h). Prints "configuration ok" when there was nothing. */
static int check_config(struct config *cfg, int argc, char **argv, const char *file)
{
    struct check ck = {0};
    char err[512];
    if (build(cfg, argc, argv, file, &ck, err, sizeof err) < 0) /* the defaults only */
        problem(&ck, err);
    for (int i = 0; i < cfg->n_listen; i++) {
        char why[384];
        if (config_check_listener(&cfg->listen[i], why, sizeof why) == 0 &&
            listener_clash(cfg, i, why, sizeof why) == 0)
            continue;
        if (ck.listen_line[i])
            snprintf(err, sizeof err, "%s:%d: listen: %s", file, ck.listen_line[i], why);
        else
            snprintf(err, sizeof err, "--listen: %s", why);
        problem(&ck, err);
    }
    if (cfg->user && config_check_user(cfg->user, err, sizeof err) < 0)
        problem(&ck, err);
    if (ck.problems == 0)
        printf("configuration ok\n");
    return ck.problems ? CONFIG_CHECK_FAILED : CONFIG_DONE;
}

int config_parse(struct config *cfg, int argc, char **argv)
{
    char err[512];
    struct config probe = {0};
    int rc = apply_flags(&probe, argc, argv, 0, NULL, err, sizeof err);
    if (rc == 0 && probe.check_only)
        return check_config(cfg, argc, argv, probe.config_file);
    if (rc == 0)
        rc = build(cfg, argc, argv, probe.config_file, NULL, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "wharfd: %s\n", err);
        return CONFIG_ERROR;
    }
    return rc;
}

int config_reload(const struct config *cur, struct config *next, char *err, size_t errlen)
{
    return build(next, cur->argc, cur->argv, cur->config_file, NULL, err, errlen);
}

static int same_listeners(const struct config *a, const struct config *b)
{
    if (a->n_listen != b->n_listen)
        return 0;
    for (int i = 0; i < a->n_listen; i++) {
        const struct listen_spec *x = &a->listen[i], *y = &b->listen[i];
        /* port 0 was resolved at bind time: compare with what was asked for */
        if (x->proto != y->proto || x->scheme_flags != y->scheme_flags ||
            x->modifiers != y->modifiers || x->transport != y->transport ||
            x->sa.ss_family != y->sa.ss_family ||
            (addr_port((const struct sockaddr *)&y->sa) != 0 &&
             addr_port((const struct sockaddr *)&x->sa) != addr_port((const struct sockaddr *)&y->sa)))
            return 0;
    }
    return 1;
}

/* Settings a reload cannot change without dropping connections. */
static const char *restart_only_change(const struct config *cur, const struct config *next,
                                       int inherited)
{
    if (!inherited && !same_listeners(cur, next))
        return "listen";
    if (next->workers && cur->workers != next->workers)
        return "workers";
    if (cur->dispatch != next->dispatch && !inherited)
        return "dispatch";
    if (cur->backlog != next->backlog)
        return "backlog";
    if (cur->backend != next->backend)
        return "backend";
    if (cur->max_conns_per_ip != next->max_conns_per_ip)
        return "max-conns-per-ip";
    if (memcmp(&cur->sock, &next->sock, sizeof cur->sock) != 0)
        return "socket options";
    if (cur->udp_batch != next->udp_batch)
        return "udp-batch";
    if ((cur->user == NULL) != (next->user == NULL) ||
        (cur->user && strcmp(cur->user, next->user) != 0))
        return "user";
    return NULL;
}

const char *config_reload_refused(const struct config *cur, const struct config *next,
                                  int inherited)
{
    const char *what = restart_only_change(cur, next, inherited);
    if (what)
        log_warn("reload: '%s' changed in %s but needs a restart; not applied", what,
                 cur->config_file ? cur->config_file : "the configuration");
    return what;
}

const char *dispatch_name(enum dispatch d)
{
    return d == DISPATCH_RR ? "rr" : d == DISPATCH_REUSEPORT ? "reuseport" : "least";
}
