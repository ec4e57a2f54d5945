#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/opts.h"
#include "../common/version.h"
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

static int load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return ERR("cannot read %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *p = trim(line);
        if (*p == '\0' || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            rc = ERR("%s:%d: expected 'name = value'", path, lineno);
            break;
        }
        *eq = '\0';
        char *name = trim(p), *value = keep_value(trim(eq + 1));
        const struct option_def *o = option_find(name, strlen(name));
        char why[256];
        if (!value)
            rc = ERR("out of memory");
        else if (!o || option_is_meta(o))
            rc = ERR("%s:%d: unknown setting '%s' (see wharfd --help)", path, lineno, name);
        else if (o->set(cfg, value, why, sizeof why) < 0)
            rc = ERR("%s:%d: %s: %s", path, lineno, name, why);
    }
    free(line);
    fclose(f);
    return rc;
}

/* Apply the flags in argv over cfg. pass 0 only looks for --help, --version and
 * --config; pass 1 applies every other flag. Returns 0, 1 (help/version printed) or
 * -1 with err set. */
static int apply_flags(struct config *cfg, int argc, char **argv, int pass, char *err,
                       size_t errlen)
{
    struct getopt_tables t;
    options_getopt_tables(&t);
    int c, longindex = -1, listen_seen = 0;
    optind = 0; /* 0, not 1: glibc re-initialises its state for a new scan */
    opterr = 0;
    for (; (c = getopt_long(argc, argv, t.shortopts, t.longopts, &longindex)) != -1;
         longindex = -1) {
        if (c == '?' || c == ':')
            return ERR("%s: %s (see wharfd --help)", argv[optind - 1],
                       c == '?' ? "unknown option" : "missing value");
        const struct option_def *o = option_for_getopt(c);
        if (longindex >= 0 && opts_abbreviated(argv, optind, optarg, o->name, err, errlen))
            return -1;
        if (pass == 0) {
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
                cfg->config_file = optarg;
            continue;
        }
        if (option_is_meta(o))
            continue;
        /* --listen on the command line replaces the file's listeners, not adds to them */
        if (option_is_listen(o) && !listen_seen++)
            cfg->n_listen = 0;
        char why[256];
        if (o->set(cfg, optarg, why, sizeof why) < 0)
            return ERR("--%s: %s", o->name, why);
    }
    if (optind < argc)
        return ERR("unexpected argument '%s' (see wharfd --help)", argv[optind]);
    return 0;
}

static int build(struct config *cfg, int argc, char **argv, const char *file, char *err,
                 size_t errlen)
{
    options_apply_defaults(cfg);
    cfg->argc = argc;
    cfg->argv = argv;
    cfg->config_file = file;
    if (file && load_file(cfg, file, err, errlen) < 0)
        return -1;
    if (apply_flags(cfg, argc, argv, 1, err, errlen) < 0)
        return -1;
    if (cfg->n_listen == 0 && options_default_listeners(cfg, err, errlen) < 0)
        return -1;
    return 0;
}

int config_parse(struct config *cfg, int argc, char **argv)
{
    char err[512];
    struct config probe = {0};
    int rc = apply_flags(&probe, argc, argv, 0, err, sizeof err);
    if (rc == 0)
        rc = build(cfg, argc, argv, probe.config_file, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "wharfd: %s\n", err);
        return 2;
    }
    return rc;
}

int config_reload(const struct config *cur, struct config *next, char *err, size_t errlen)
{
    return build(next, cur->argc, cur->argv, cur->config_file, err, errlen);
}

static int same_listeners(const struct config *a, const struct config *b)
{
    if (a->n_listen != b->n_listen)
        return 0;
    for (int i = 0; i < a->n_listen; i++) {
        const struct listen_spec *x = &a->listen[i], *y = &b->listen[i];
        /* port 0 was resolved at bind time: compare with what was asked for */
        if (x->proto != y->proto || x->modifiers != y->modifiers || x->transport != y->transport ||
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
