/* libFuzzer target: the PROXY protocol header parser (common/proxy_proto.c).
 *
 * Checked, beside "no crash, no read past the end" (every call sees an exactly sized
 * heap copy): the parser is a function of the bytes received so far, the way a
 * connection calls it, so
 * - a complete header of n bytes: every shorter prefix waits, asking for more than it
 *   has and no more than n, and the first n bytes alone give the same header;
 * - an error: the prefixes before it wait, and every longer prefix is an error too
 *   (a refused beginning never becomes valid);
 * - waiting: need is more than what was given. */
#include "fuzz.h"

#include "../../common/proxy_proto.h"

static int parse_copy(const uint8_t *data, size_t n, struct proxy_header *h)
{
    char *c = fuzz_copy(data, n);
    int rc = proxy_parse(c, n, h);
    free(c);
    return rc;
}

/* Prefix lengths worth checking: all short ones, then a sample, and the ends. */
static int worth(size_t n, size_t len, int rc)
{
    return n < 256 || n % 61 == 0 || n + 1 == len || (rc > 0 && n + 1 == (size_t)rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_header whole, h;
    int rc = parse_copy(data, size, &whole);
    FUZZ_CHECK(rc <= (int)size);
    if (rc == PROXY_NEED_MORE)
        FUZZ_CHECK(whole.need > size);
    if (rc > 0) {
        FUZZ_CHECK(parse_copy(data, (size_t)rc, &h) == rc);
        FUZZ_CHECK(h.version == whole.version && h.local == whole.local &&
                   h.family == whole.family && h.n_tlvs == whole.n_tlvs);
        FUZZ_CHECK(memcmp(&h.src, &whole.src, sizeof h.src) == 0);
        FUZZ_CHECK(whole.version == 1 ? rc <= PROXY_V1_MAX : rc <= PROXY_V2_MAX);
    }
    size_t end = rc > 0 ? (size_t)rc : size;
    int failed = 0;
    for (size_t n = 0; n < end; n++) {
        if (!worth(n, end, rc))
            continue;
        int r = parse_copy(data, n, &h);
        if (rc > 0 || rc == PROXY_NEED_MORE) {
            FUZZ_CHECK(r == PROXY_NEED_MORE);
        } else if (r < 0) {
            failed = 1;
        } else {
            FUZZ_CHECK(r == PROXY_NEED_MORE && !failed);
        }
        if (r == PROXY_NEED_MORE) {
            FUZZ_CHECK(h.need > n);
            if (rc > 0)
                FUZZ_CHECK(h.need <= (size_t)rc);
        }
    }
    return 0;
}
