#include "mode.h"

#include <string.h>

int mode_parse(const char *s, enum mode *out)
{
    if (strcmp(s, "echo") == 0)
        *out = MODE_ECHO;
    else if (strcmp(s, "upper") == 0)
        *out = MODE_UPPER;
    else
        return -1;
    return 0;
}

const char *mode_name(enum mode m) { return m == MODE_UPPER ? "upper" : "echo"; }

void mode_apply(enum mode m, const char *src, size_t len, char *dst)
{
    if (m == MODE_ECHO) {
        if (dst != src)
            memcpy(dst, src, len);
        return;
    }
    const unsigned char *s = (const unsigned char *)src;
    unsigned char *d = (unsigned char *)dst;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        /* Branch-free: subtract 0x20 exactly for 'a'..'z'. */
        d[i] = (unsigned char)(c - (((unsigned)(c - 'a') < 26u) << 5));
    }
}
