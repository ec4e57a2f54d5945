/* config: defaults < file < flags, --listen on the command line replacing the file's
 * listeners, a reload that re-reads the file under the same flags, errors that name the
 * file and line on one line, settings the file may not name, and the option table
 * round-tripping through --help and --print-defaults.
 * A reload that changes a setting only a restart can change is refused and logged
 * (config_reload_refused, which main's SIGHUP handler calls). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cmocka.h>

#include "../../server/config.h"
#include "../../server/option_table.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

/* A temporary file holding text; its path is written to path (PATH_MAX bytes). */
static void write_temp(char *path, const char *text)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, 4096, "%s/wharf-test-config-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

/* Overwrite an existing file (a reload reads it again by name). */
static void rewrite(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    fclose(f);
}

/* Run config_parse with fd (1 or 2) sent to a temporary file; returns what was written
 * there (malloc'd) and stores config_parse's result in *rc. */
static char *parse_capturing(int fd, struct config *cfg, int argc, char **argv, int *rc)
{
    FILE *cap = tmpfile();
    assert_non_null(cap);
    fflush(stdout);
    fflush(stderr);
    int saved = dup(fd);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(cap), fd) >= 0);
    *rc = config_parse(cfg, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved, fd);
    close(saved);
    struct stat st;
    assert_int_equal(fstat(fileno(cap), &st), 0);
    char *text = calloc(1, (size_t)st.st_size + 1);
    assert_non_null(text);
    assert_int_equal(pread(fileno(cap), text, (size_t)st.st_size, 0), st.st_size);
    fclose(cap);
    return text;
}

static void expect_listeners(const struct config *c, const char *const *want, int n)
{
    assert_int_equal(c->n_listen, n);
    for (int i = 0; i < n; i++) {
        char text[LISTEN_SPEC_TEXT_MAX];
        listen_spec_format(&c->listen[i], text, sizeof text);
        assert_string_equal(text, want[i]);
    }
}

/* The settings of two configurations agree (not where they came from: argv, the file). */
static void expect_same_settings(const struct config *a, const struct config *b)
{
    assert_int_equal(a->n_listen, b->n_listen);
    for (int i = 0; i < a->n_listen; i++) {
        char ta[LISTEN_SPEC_TEXT_MAX], tb[LISTEN_SPEC_TEXT_MAX];
        listen_spec_format(&a->listen[i], ta, sizeof ta);
        listen_spec_format(&b->listen[i], tb, sizeof tb);
        assert_string_equal(ta, tb);
    }
    assert_int_equal(a->workers, b->workers);
    assert_int_equal(a->dispatch, b->dispatch);
    assert_int_equal(a->backend, b->backend);
    assert_int_equal(a->backlog, b->backlog);
    assert_int_equal(a->cpu_affinity, b->cpu_affinity);
    assert_int_equal(a->max_conns_per_ip, b->max_conns_per_ip);
    assert_memory_equal(&a->sock, &b->sock, sizeof a->sock);
    assert_int_equal(a->set.mode, b->set.mode);
    assert_int_equal(a->set.log_level, b->set.log_level);
    assert_int_equal(a->set.max_message, b->set.max_message);
    assert_int_equal(a->set.max_output, b->set.max_output);
    assert_int_equal(a->set.max_conns, b->set.max_conns);
    assert_int_equal(a->set.idle_timeout_ms, b->set.idle_timeout_ms);
    assert_int_equal(a->set.header_timeout_ms, b->set.header_timeout_ms);
    assert_int_equal(a->set.shutdown_timeout_ms, b->set.shutdown_timeout_ms);
    assert_int_equal(a->set.stats_interval_ms, b->set.stats_interval_ms);
    assert_int_equal(a->set.stats_allow_all, b->set.stats_allow_all);
    assert_int_equal(a->set.stats_allow.n, b->set.stats_allow.n);
    assert_memory_equal(a->set.stats_allow.r, b->set.stats_allow.r,
                        sizeof a->set.stats_allow.r[0] * (size_t)a->set.stats_allow.n);
    assert_int_equal(a->set.drain_delay_ms, b->set.drain_delay_ms);
    assert_true(a->user == b->user || (a->user && b->user && !strcmp(a->user, b->user)));
}

static void test_defaults(void **state)
{
    (void)state;
    char *argv[] = {"wharfd", NULL};
    struct config c;
    assert_int_equal(config_parse(&c, ARGC(argv), argv), 0);
    static const char *const listen[] = {"raw://127.0.0.1:9000", "http://127.0.0.1:8080"};
    expect_listeners(&c, listen, 2);
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.dispatch, DISPATCH_LEAST);
    assert_int_equal(c.backend, BACKEND_AUTO);
    assert_int_equal(c.backlog, 4096);
    assert_int_equal(c.sock.nodelay, 1);
    assert_int_equal(c.set.mode, MODE_UPPER);
    assert_int_equal(c.set.log_level, LOG_INFO);
    assert_int_equal(c.set.max_message, 1 << 20);
    assert_int_equal(c.set.idle_timeout_ms, 60000);
    assert_int_equal(c.set.header_timeout_ms, 30000);
    assert_int_equal(c.set.shutdown_timeout_ms, 10000);
    assert_int_equal(c.set.drain_delay_ms, 0); /* no delay: SIGTERM drains at once, as before */
    assert_null(c.config_file);
    assert_null(c.user);
}

static const char file_settings[] = "# a comment, then a blank line\n"
                                    "\n"
                                    "listen = http://127.0.0.1:1234\n"
                                    "  idle-timeout = 5s  \n"
                                    "backlog=100\n"
                                    "mode = echo\n"
                                    "max-message = 2K\n";

static void test_file_then_flags(void **state)
{
    (void)state;
    char path[4096];
    write_temp(path, file_settings);
    char *argv[] = {"wharfd", "--backlog", "200", "--config", path, "--idle-timeout=7s", NULL};
    struct config c;
    assert_int_equal(config_parse(&c, ARGC(argv), argv), 0);
    assert_string_equal(c.config_file, path);
    assert_int_equal(c.backlog, 200);               /* flag over file */
    assert_int_equal(c.set.idle_timeout_ms, 7000);  /* flag over file, after --config */
    assert_int_equal(c.set.mode, MODE_ECHO);        /* file over default */
    assert_int_equal(c.set.max_message, 2048);      /* file over default */
    assert_int_equal(c.set.header_timeout_ms, 30000); /* default */
    static const char *const from_file[] = {"http://127.0.0.1:1234"};
    expect_listeners(&c, from_file, 1);             /* not added to the defaults */

    /* --listen on the command line replaces the file's listeners (all of them). */
    char *argv2[] = {"wharfd", "-c", path, "-l", "raw://127.0.0.1:5555", "--listen",
                     "line://127.0.0.1:5556", NULL};
    assert_int_equal(config_parse(&c, ARGC(argv2), argv2), 0);
    static const char *const from_flags[] = {"raw://127.0.0.1:5555", "line://127.0.0.1:5556"};
    expect_listeners(&c, from_flags, 2);
    assert_int_equal(c.backlog, 100);
    unlink(path);
}

static void test_reload_rereads_the_file(void **state)
{
    (void)state;
    char path[4096];
    write_temp(path, file_settings);
    char *argv[] = {"wharfd", "--config", path, "--backlog", "200", "--listen",
                    "raw://127.0.0.1:5555", NULL};
    struct config cur, next;
    assert_int_equal(config_parse(&cur, ARGC(argv), argv), 0);
    rewrite(path, "backlog = 300\n"
                  "mode = upper\n"
                  "header-timeout = 3s\n"
                  "listen = http://127.0.0.1:4321\n"
                  "user = nobody\n");
    char err[512] = "";
    assert_int_equal(config_reload(&cur, &next, err, sizeof err), 0);
    assert_int_equal(next.backlog, 200);             /* the flag still wins */
    assert_int_equal(next.set.mode, MODE_UPPER);     /* the file's new value */
    assert_int_equal(next.set.header_timeout_ms, 3000);
    assert_int_equal(next.set.idle_timeout_ms, 60000); /* gone from the file: default */
    assert_int_equal(next.set.max_message, 1 << 20);
    assert_string_equal(next.user, "nobody");
    static const char *const flags_listener[] = {"raw://127.0.0.1:5555"};
    expect_listeners(&next, flags_listener, 1);
    /* cur is left as it was */
    assert_int_equal(cur.set.mode, MODE_ECHO);
    assert_null(cur.user);

    /* A file broken since: -1 and one line naming the file and line. */
    rewrite(path, "mode = echo\nworkers = many\n");
    char want[4200];
    snprintf(want, sizeof want, "%s:2: workers: expected 'auto' or an integer 1-256, got 'many'",
             path);
    assert_int_equal(config_reload(&cur, &next, err, sizeof err), -1);
    assert_string_equal(err, want);
    unlink(path);
    assert_int_equal(config_reload(&cur, &next, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot read "));
    assert_non_null(strstr(err, path));
}

/* config_reload_refused(cur, next, inherited) with stderr (where the log goes) sent to
 * a temporary file; returns what was written there (malloc'd), *what its result. */
static char *refused_capturing(const struct config *cur, const struct config *next,
                               int inherited, const char **what)
{
    FILE *cap = tmpfile();
    assert_non_null(cap);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(cap), 2) >= 0);
    *what = config_reload_refused(cur, next, inherited);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    struct stat st;
    assert_int_equal(fstat(fileno(cap), &st), 0);
    char *text = calloc(1, (size_t)st.st_size + 1);
    assert_non_null(text);
    assert_int_equal(pread(fileno(cap), text, (size_t)st.st_size, 0), st.st_size);
    fclose(cap);
    return text;
}

/* A reload that changes what only a restart can change: that setting is named in one
 * warning line and returned (the caller then applies only the live settings, which
 * next still carries); one that changes only live settings is taken silently. */
static void test_reload_needing_a_restart_is_refused(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        int inherited;
        const char *refused; /* NULL: applied */
    } cases[] = {
        {"workers = 2\nmode = upper\nidle-timeout = 5s\n", 0, NULL},
        {"workers = 3\nmode = upper\n", 0, "workers"},
        {"workers = 2\nbacklog = 7\n", 0, "backlog"},
        {"workers = 2\nlisten = raw://127.0.0.1:7777\n", 0, "listen"},
        {"workers = 2\nlisten = raw://127.0.0.1:7777\n", 1, NULL}, /* systemd's listeners */
        {"workers = 2\ndispatch = rr\n", 0, "dispatch"},
        {"workers = 2\nuser = nobody\n", 0, "user"},
        {"workers = 2\nmax-conns-per-ip = 9\n", 0, "max-conns-per-ip"},
        {"workers = 2\nnodelay = off\n", 0, "socket options"},
    };
    char path[4096];
    write_temp(path, "workers = 2\nmode = echo\n");
    char *argv[] = {"wharfd", "--config", path, NULL};
    struct config cur, next;
    assert_int_equal(config_parse(&cur, ARGC(argv), argv), 0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rewrite(path, cases[i].file);
        char err[512] = "";
        if (config_reload(&cur, &next, err, sizeof err) != 0)
            fail_msg("case %zu: reload failed: %s", i, err);
        const char *what;
        char *log = refused_capturing(&cur, &next, cases[i].inherited, &what);
        if (!cases[i].refused) {
            if (what || *log)
                fail_msg("case %zu: refused '%s', logged \"%s\"", i, what ? what : "", log);
        } else {
            char want[4300];
            snprintf(want, sizeof want, "reload: '%s' changed in %s but needs a restart; not applied\n",
                     cases[i].refused, path);
            size_t n = strlen(log), w = strlen(want);
            if (!what || strcmp(what, cases[i].refused) != 0 || n < w ||
                strcmp(log + n - w, want) != 0 || strchr(log, '\n') != log + n - 1)
                fail_msg("case %zu: refused '%s', logged \"%s\"; want '%s'", i, what ? what : "",
                         log, cases[i].refused);
        }
        free(log);
        assert_int_equal(cur.set.mode, MODE_ECHO); /* cur is the caller's to change */
    }
    rewrite(path, "workers = 3\nmode = upper\n");
    char err[512] = "";
    assert_int_equal(config_reload(&cur, &next, err, sizeof err), 0);
    assert_int_equal(next.workers, 3);
    assert_int_equal(next.set.mode, MODE_UPPER); /* the live part, for the caller to apply */
    unlink(path);
}

/* config_parse with "--config FILE" (FILE holding text) must return 2 and print exactly
 * "wharfd: " + want + "\n" to stderr, where want's %s is the file's path. */
static void expect_file_error(const char *text, const char *want_fmt)
{
    char path[4096], want[4400];
    write_temp(path, text);
    snprintf(want, sizeof want, want_fmt, path);
    char *argv[] = {"wharfd", "--config", path, NULL};
    struct config c;
    int rc;
    char *err = parse_capturing(2, &c, ARGC(argv), argv, &rc);
    assert_int_equal(rc, 2);
    size_t n = strlen(err);
    if (n == 0 || err[n - 1] != '\n' || strchr(err, '\n') != err + n - 1)
        fail_msg("not one line: \"%s\"", err);
    err[n - 1] = '\0';
    if (strncmp(err, "wharfd: ", 8) != 0 || strcmp(err + 8, want) != 0)
        fail_msg("error \"%s\", want \"wharfd: %s\"", err, want);
    free(err);
    unlink(path);
}

static void test_file_errors_name_the_line(void **state)
{
    (void)state;
    expect_file_error("# ok\n\nbacklog = 10\nbacklog = zero\n",
                      "%s:4: backlog: expected an integer 1-1048576, got 'zero'");
    expect_file_error("mode = echo\nidle-timeout 5s\n", "%s:2: expected 'name = value'");
    expect_file_error("\n\ncolour = blue\n",
                      "%s:3: unknown setting 'colour' (see wharfd --help)");
    /* Flags that are not settings may not be set from a file. */
    expect_file_error("help = yes\n", "%s:1: unknown setting 'help' (see wharfd --help)");
    expect_file_error("config = /etc/passwd\n",
                      "%s:1: unknown setting 'config' (see wharfd --help)");
    expect_file_error("version = 1\n", "%s:1: unknown setting 'version' (see wharfd --help)");
    /* Names are whole: no abbreviations, no case folding. */
    expect_file_error("back = 10\n", "%s:1: unknown setting 'back' (see wharfd --help)");
    expect_file_error("Backlog = 10\n", "%s:1: unknown setting 'Backlog' (see wharfd --help)");
}

static void test_flag_errors(void **state)
{
    (void)state;
    static char *const bad[][3] = {
        {"--no-such-flag", NULL}, {"--backlog", NULL}, {"--backlog", "0"},
        {"--config", "/nonexistent/wharf.conf"}, {"stray", NULL}, {"--mode", "shout"},
        {"--backl", "10"}, {"--back", "10"},
    };
    static const char *const want[] = {
        "wharfd: --no-such-flag: unknown option (see wharfd --help)\n",
        "wharfd: --backlog: missing value (see wharfd --help)\n",
        "wharfd: --backlog: expected an integer 1-1048576, got '0'\n",
        "wharfd: cannot read /nonexistent/wharf.conf: No such file or directory\n",
        "wharfd: unexpected argument 'stray' (see wharfd --help)\n",
        "wharfd: --mode: expected echo or upper, got 'shout'\n",
        "wharfd: unknown option '--backl' (abbreviations are not accepted)\n",
        "wharfd: --back: unknown option (see wharfd --help)\n", /* ambiguous */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = {"wharfd", bad[i][0], bad[i][1], NULL};
        int argc = bad[i][1] ? 3 : 2, rc;
        struct config c;
        char *err = parse_capturing(2, &c, argc, argv, &rc);
        assert_int_equal(rc, 2);
        assert_string_equal(err, want[i]);
        free(err);
    }
}

/* --drain-delay: a duration from a flag or the file, reloadable, refused on one line. */
static void test_drain_delay(void **state)
{
    (void)state;
    char path[4096];
    write_temp(path, "drain-delay = 2s\n");
    char *argv[] = {"wharfd", "--config", path, NULL};
    struct config cur, next;
    assert_int_equal(config_parse(&cur, ARGC(argv), argv), 0);
    assert_int_equal(cur.set.drain_delay_ms, 2000);
    rewrite(path, "drain-delay = 750ms\n");
    char err[512] = "";
    assert_int_equal(config_reload(&cur, &next, err, sizeof err), 0);
    assert_int_equal(next.set.drain_delay_ms, 750);
    char *flag[] = {"wharfd", "-c", path, "--drain-delay", "0", NULL};
    assert_int_equal(config_parse(&cur, ARGC(flag), flag), 0);
    assert_int_equal(cur.set.drain_delay_ms, 0); /* the flag over the file */
    unlink(path);
    char *bad[] = {"wharfd", "--drain-delay", "soon", NULL};
    int rc;
    char *msg = parse_capturing(2, &cur, ARGC(bad), bad, &rc);
    assert_int_equal(rc, 2);
    assert_string_equal(msg, "wharfd: --drain-delay: expected a duration up to 1 day like 30, "
                             "30s, 500ms or 2m, got 'soon'\n");
    free(msg);
}

/* stdout of config_parse(argv = wharfd FLAG), which must print and return 1. */
static char *printed_by(const char *flag)
{
    char *argv[] = {"wharfd", (char *)flag, NULL};
    struct config c;
    int rc;
    char *out = parse_capturing(1, &c, ARGC(argv), argv, &rc);
    assert_int_equal(rc, 1);
    return out;
}

/* --help with each option's text on one line: the wrapping's newline and indent undone. */
static void unwrap(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '\n' && strncmp(r + 1, "        ", 8) == 0) { /* a wrapped text line */
            *w++ = ' ';
            while (r[1] == ' ')
                r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* The line of --print-defaults that names o ("name = value" or "# name = METAVAR"). */
static const char *defaults_line(const char *defaults, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = defaults; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *q = strncmp(p, "# ", 2) == 0 ? p + 2 : p;
        if (strncmp(q, name, n) == 0 && strncmp(q + n, " = ", 3) == 0)
            return p;
    }
    return NULL;
}

static void test_every_option_in_help_and_defaults(void **state)
{
    (void)state;
    char *help = printed_by("--help"), *defaults = printed_by("--print-defaults");
    char *flat = strdup(help);
    unwrap(flat);
    struct getopt_tables t;
    options_getopt_tables(&t);
    int rows = 0;
    for (const struct option *lo = t.longopts; lo->name; lo++, rows++) {
        const struct option_def *o = option_find(lo->name, strlen(lo->name));
        assert_non_null(o);
        char head[160];
        snprintf(head, sizeof head, "--%s%s%s\n", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        if (!strstr(help, head))
            fail_msg("--help has no line \"%s\"", head);
        /* unwrapped, the option's line is its head, its help and its default */
        head[strlen(head) - 1] = ' ';
        const char *text = strstr(flat, head);
        assert_non_null(text);
        const char *end = strchr(text, '\n');
        assert_non_null(end);
        if (o->defval) {
            char dflt[160];
            size_t n = (size_t)snprintf(dflt, sizeof dflt, "[default: %s]", o->defval);
            if ((size_t)(end - text) < n || memcmp(end - n, dflt, n) != 0)
                fail_msg("--help line of %s does not end in %s", o->name, dflt);
        }
        const char *line = defaults_line(defaults, o->name);
        if (option_is_meta(o)) {
            assert_null(line);
            continue;
        }
        if (!line)
            fail_msg("--print-defaults has no line for %s", o->name);
        /* the value printed is the default (user has none: commented out) */
        char want[160];
        snprintf(want, sizeof want, "%s%s = %s\n", o->defval || option_is_listen(o) ? "" : "# ",
                 o->name, o->defval ? o->defval : o->metavar);
        if (!option_is_listen(o))
            assert_memory_equal(line, want, strlen(want));
    }
    assert_true(rows >= 25);
    free(help);
    free(flat);
    free(defaults);
}

/* --print-defaults, read back as a configuration file, is the configuration without one;
 * and each of its values given as a flag changes nothing either. */
static void test_print_defaults_reads_back(void **state)
{
    (void)state;
    char *defaults = printed_by("--print-defaults"), path[4096];
    write_temp(path, defaults);
    char *plain[] = {"wharfd", NULL}, *with_file[] = {"wharfd", "--config", path, NULL};
    struct config a, b;
    assert_int_equal(config_parse(&a, ARGC(plain), plain), 0);
    assert_int_equal(config_parse(&b, ARGC(with_file), with_file), 0);
    expect_same_settings(&a, &b);
    char *save = NULL;
    for (char *line = strtok_r(defaults, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strstr(line, " = ");
        if (line[0] == '#' || !eq)
            continue;
        *eq = '\0';
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", line);
        char *argv[] = {"wharfd", flag, eq + 3, NULL};
        assert_int_equal(config_parse(&b, ARGC(argv), argv), 0);
        if (strcmp(line, "listen") != 0) /* one --listen replaces both defaults */
            expect_same_settings(&a, &b);
    }
    free(defaults);
    unlink(path);
}

/* -t: every problem, one line each, with the file's line numbers; the addresses asked of
 * the host (192.0.2.1, TEST-NET-1, is on no interface here; 127.0.0.7 is, as all of
 * 127.0.0.0/8 is); exit status 1 (CONFIG_CHECK_FAILED), nothing started. */
static void test_check_config_lists_every_problem(void **state)
{
    (void)state;
    char path[4096];
    write_temp(path, "listen = http://127.0.0.1:0\n"
                     "# a comment\n"
                     "workers = banana\n"
                     "listen = raw://192.0.2.1:9000\n"
                     "no-such-setting = 1\n"
                     "listen = line://127.0.0.7:0\n"
                     "idle-timeout = 5s\n");
    char *argv[] = {"wharfd", "-t", "--config", path, "--max-message", "huge", NULL};
    struct config c;
    int rc;
    char *out = parse_capturing(2, &c, ARGC(argv), argv, &rc);
    assert_int_equal(rc, CONFIG_CHECK_FAILED);
    char want[4200];
    snprintf(want, sizeof want, "wharfd: %s:3: workers: ", path);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "wharfd: %s:5: unknown setting 'no-such-setting'", path);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "wharfd: %s:4: listen: 'raw://192.0.2.1:9000': address "
                                "192.0.2.1 does not exist on this host\n", path);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "wharfd: --max-message: "));
    assert_null(strstr(out, "127.0.0.7"));
    int lines = 0;
    for (const char *p = out; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines, 4); /* one per problem, nothing else */
    free(out);
    unlink(path);
}

static void test_check_config_ok(void **state)
{
    (void)state;
    char path[4096];
    write_temp(path, "listen = http://127.0.0.1:0\nlisten = raw://[::]:0\nmode = echo\n");
    char *argv[] = {"wharfd", "--config", path, "--check-config", NULL};
    struct config c;
    int rc;
    char *out = parse_capturing(1, &c, ARGC(argv), argv, &rc);
    assert_int_equal(rc, CONFIG_DONE);
    assert_string_equal(out, "configuration ok\n");
    free(out);
    /* --listen on the command line replaces the file's: its problem has no line number */
    char *argv2[] = {"wharfd", "-t", "--config", path, "--listen", "frame://192.0.2.1:1", NULL};
    out = parse_capturing(2, &c, ARGC(argv2), argv2, &rc);
    assert_int_equal(rc, CONFIG_CHECK_FAILED);
    assert_string_equal(out, "wharfd: --listen: 'frame://192.0.2.1:1': address 192.0.2.1 does "
                             "not exist on this host\n");
    free(out);
    /* an unknown flag before -t is reported by the check, not instead of it */
    char *argv3[] = {"wharfd", "--bogus", "-t", "--user", "no-such-user-here", NULL};
    out = parse_capturing(2, &c, ARGC(argv3), argv3, &rc);
    assert_int_equal(rc, CONFIG_CHECK_FAILED);
    assert_non_null(strstr(out, "wharfd: --bogus: unknown option"));
    assert_non_null(strstr(out, "wharfd: user: no user 'no-such-user-here' on this host\n"));
    free(out);
    /* without -t the first problem still stops */
    char *argv4[] = {"wharfd", "--bogus", "--help", NULL};
    out = parse_capturing(2, &c, ARGC(argv4), argv4, &rc);
    assert_int_equal(rc, CONFIG_ERROR);
    free(out);
    unlink(path);
}

/* -t: two listeners that cannot both be bound (the same port on the same address, or a
 * wildcard of the family); port 0 and the other family never clash. */
static void test_check_config_listener_clash(void **state)
{
    (void)state;
    char *argv[] = {"wharfd", "-t", "--listen", "http://127.0.0.1:8080", "--listen",
                    "raw://*:8080", "--listen", "line://127.0.0.1:0", "--listen",
                    "frame://127.0.0.1:0", "--listen", "http://[::1]:8080", "--listen",
                    "line://127.0.0.2:8080", NULL};
    struct config c;
    int rc;
    char *out = parse_capturing(2, &c, ARGC(argv), argv, &rc);
    assert_int_equal(rc, CONFIG_CHECK_FAILED);
    assert_string_equal(out, "wharfd: --listen: 'raw://0.0.0.0:8080': its address and port are "
                             "taken by 'http://127.0.0.1:8080' already\n"
                             "wharfd: --listen: 'line://127.0.0.2:8080': its address and port "
                             "are taken by 'raw://0.0.0.0:8080' already\n");
    free(out);
}

/* --stats-allow: loopback (no ranges), all, or ranges; a bad range is refused with the
 * reason, and the flag's last value wins whole (no mix of an old list and a new word). */
static void test_stats_allow_ranges(void **state)
{
    (void)state;
    struct config c;
    char *argv[] = {"wharfd", "--stats-allow", "10.0.0.0/8,2001:db8::/32", NULL};
    assert_int_equal(config_parse(&c, ARGC(argv), argv), CONFIG_RUN);
    assert_int_equal(c.set.stats_allow_all, 0);
    assert_int_equal(c.set.stats_allow.n, 2);
    char text[256];
    cidr_list_format(&c.set.stats_allow, text, sizeof text);
    assert_string_equal(text, "10.0.0.0/8,2001:db8::/32");
    char *argv2[] = {"wharfd", "--stats-allow", "10.0.0.0/8", "--stats-allow", "loopback", NULL};
    assert_int_equal(config_parse(&c, ARGC(argv2), argv2), CONFIG_RUN);
    assert_int_equal(c.set.stats_allow.n, 0);
    assert_int_equal(c.set.stats_allow_all, 0);
    char *argv3[] = {"wharfd", "--stats-allow", "10.0.0.0/8", "--stats-allow", "all", NULL};
    assert_int_equal(config_parse(&c, ARGC(argv3), argv3), CONFIG_RUN);
    assert_int_equal(c.set.stats_allow.n, 0);
    assert_int_equal(c.set.stats_allow_all, 1);
    char *argv4[] = {"wharfd", "--stats-allow", "10.0.0.1/8", NULL};
    int rc;
    char *out = parse_capturing(2, &c, ARGC(argv4), argv4, &rc);
    assert_int_equal(rc, CONFIG_ERROR);
    assert_non_null(strstr(out, "wharfd: --stats-allow: expected loopback, all or CIDR"));
    assert_non_null(strstr(out, "10.0.0.1/8"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_then_flags),
        cmocka_unit_test(test_reload_rereads_the_file),
        cmocka_unit_test(test_reload_needing_a_restart_is_refused),
        cmocka_unit_test(test_file_errors_name_the_line),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_every_option_in_help_and_defaults),
        cmocka_unit_test(test_print_defaults_reads_back),
        cmocka_unit_test(test_drain_delay),
        cmocka_unit_test(test_check_config_lists_every_problem),
        cmocka_unit_test(test_check_config_ok),
        cmocka_unit_test(test_stats_allow_ranges),
        cmocka_unit_test(test_check_config_listener_clash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
