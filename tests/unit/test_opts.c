/* opts: an abbreviated long option is told from one typed in full, whichever way its
 * value is written, with getopt_long itself doing the parsing as the programs do. */
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/opts.h"

static const struct option longopts[] = {
    {"latency", no_argument, NULL, 'L'},
    {"latency-csv", required_argument, NULL, 'C'},
    {"connections", required_argument, NULL, 'c'},
    {"json", no_argument, NULL, 'j'},
    {0},
};

/* Parse argv (NULL-terminated) with getopt_long; the first long option refused as an
 * abbreviation is copied to msg. Returns how many options were refused; *accepted
 * counts the options taken (long or short). */
static int parse(char **argv, char *msg, size_t msglen, int *accepted)
{
    int argc = 0, refused = 0, c, longindex;
    while (argv[argc])
        argc++;
    optind = 0; /* a fresh scan for every case */
    opterr = 0;
    *accepted = 0;
    msg[0] = '\0';
    for (longindex = -1; (c = getopt_long(argc, argv, ":c:", longopts, &longindex)) != -1;
         longindex = -1) {
        if (c == '?' || c == ':')
            continue;
        if (longindex >= 0 && opts_abbreviated(argv, optind, optarg, longopts[longindex].name,
                                               refused ? NULL : msg, refused ? 0 : msglen)) {
            refused++;
            continue;
        }
        (*accepted)++;
    }
    return refused;
}

struct want {
    char *argv[6];
    int refused;
    int accepted;
    const char *msg; /* the refusal's message, when refused */
};

static void check(const struct want *w)
{
    char msg[128];
    int accepted;
    char *argv[6]; /* getopt_long permutes it: a writable copy */
    memcpy(argv, w->argv, sizeof argv);
    int refused = parse(argv, msg, sizeof msg, &accepted);
    if (refused != w->refused || accepted != w->accepted)
        fail_msg("%s %s: refused %d accepted %d, want %d and %d", w->argv[1],
                 w->argv[2] ? w->argv[2] : "", refused, accepted, w->refused, w->accepted);
    if (w->msg && strcmp(msg, w->msg) != 0)
        fail_msg("%s: message \"%s\", want \"%s\"", w->argv[1], msg, w->msg);
}

static void test_full_names_accepted(void **state)
{
    (void)state;
    static const struct want cases[] = {
        {{"x", "--latency", "addr", NULL}, 0, 1, NULL},
        {{"x", "--latency-csv", "f.csv", "addr", NULL}, 0, 1, NULL},
        {{"x", "--latency-csv=f.csv", "addr", NULL}, 0, 1, NULL},
        {{"x", "--connections", "5", "--json", NULL}, 0, 2, NULL},
        {{"x", "addr", "--connections=5", NULL}, 0, 1, NULL}, /* after a non-option */
        {{"x", "-c", "5", "-c5", NULL}, 0, 2, NULL},          /* short options */
        {{"x", "--", "--lat", NULL}, 0, 0, NULL},             /* not an option */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(&cases[i]);
}

static void test_abbreviations_refused(void **state)
{
    (void)state;
    static const struct want cases[] = {
        {{"x", "--latency-c", "f.csv", "addr", NULL}, 1, 0,
         "unknown option '--latency-c' (abbreviations are not accepted)"},
        {{"x", "--latency-c=f.csv", NULL}, 1, 0,
         "unknown option '--latency-c' (abbreviations are not accepted)"},
        {{"x", "--conn", "5", NULL}, 1, 0,
         "unknown option '--conn' (abbreviations are not accepted)"},
        {{"x", "--conn=5", NULL}, 1, 0, "unknown option '--conn' (abbreviations are not accepted)"},
        {{"x", "--js", "--json", NULL}, 1, 1,
         "unknown option '--js' (abbreviations are not accepted)"},
        {{"x", "addr", "--js", NULL}, 1, 0, "unknown option '--js' (abbreviations are not accepted)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(&cases[i]);
}

static void test_value_that_looks_like_the_option(void **state)
{
    (void)state;
    /* A separate value is found by pointer, not by its text: "--latency-csv --lat"
     * names the file "--lat", and the option was typed in full. */
    static const struct want full = {{"x", "--latency-csv", "--lat", NULL}, 0, 1, NULL};
    check(&full);
    char *argv[] = {"x", "--conn", "--connections", NULL};
    assert_string_equal(opts_typed(argv, 3, argv[2]), "--conn");
    assert_string_equal(opts_typed(argv, 2, NULL), "--conn");
    char *attached[] = {"x", "--conn=--connections", NULL};
    assert_string_equal(opts_typed(attached, 2, attached[1] + 7), "--conn=--connections");
}

static void test_message_truncated_safely(void **state)
{
    (void)state;
    char *argv[] = {"x", "--latency-c=f", NULL};
    char msg[12];
    memset(msg, 'z', sizeof msg);
    assert_int_equal(opts_abbreviated(argv, 2, argv[1] + 12, "latency-csv", msg, sizeof msg), 1);
    assert_int_equal(strlen(msg), sizeof msg - 1);
    assert_int_equal(opts_abbreviated(argv, 2, argv[1] + 12, "latency-csv", NULL, 0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_names_accepted),
        cmocka_unit_test(test_abbreviations_refused),
        cmocka_unit_test(test_value_that_looks_like_the_option),
        cmocka_unit_test(test_message_truncated_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
