#include "opts.h"

#include <stdio.h>
#include <string.h>

const char *opts_typed(char *const argv[], int optind_now, const char *optarg_now)
{
    /* A separate value is the element itself (the same pointer); an attached one
     * ("--name=value") points inside the option's own element. */
    if (optarg_now && optind_now >= 2 && optarg_now == argv[optind_now - 1])
        return argv[optind_now - 2];
    return argv[optind_now - 1];
}

int opts_abbreviated(char *const argv[], int optind_now, const char *optarg_now,
                     const char *name, char *msg, size_t msglen)
{
    const char *typed = opts_typed(argv, optind_now, optarg_now);
    const char *word = typed;
    while (*word == '-' && word - typed < 2)
        word++;
    size_t len = strcspn(word, "=");
    if (len == strlen(name) && memcmp(word, name, len) == 0)
        return 0;
    if (msglen)
        snprintf(msg, msglen, "unknown option '%.*s' (abbreviations are not accepted)",
                 (int)(word - typed + (ptrdiff_t)len), typed);
    return 1;
}
