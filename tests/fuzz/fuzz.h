/* fuzz: what every fuzz target shares.
 *
 * Each target is a libFuzzer entry point (LLVMFuzzerTestOneInput) that checks
 * invariants, not just "does not crash": it decodes its input in one piece and again cut
 * into reads the way a connection receives them (the unconsumed bytes are kept, the next
 * read is appended, the decoder is called again from the message boundary with the
 * same codec_state), and asserts that every way of cutting gives the same messages and
 * the same error. Every decoder call sees a private copy of its bytes in a heap block of
 * exactly that size, so AddressSanitizer catches a read even one byte past the end.
 *
 * The same sources are linked with libFuzzer (clang, tests/fuzz/README.md) and with
 * replay.c, a plain main that runs the committed corpus in `make test`. */
#ifndef WHARF_FUZZ_H
#define WHARF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: say which, then abort so that libFuzzer saves the input and the
 * replay runner fails. Never an assert(): NDEBUG must not turn the checks off. */
#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond))                                                                       \
            fuzz_fail(__FILE__, __LINE__, #cond);                                          \
    } while (0)

static inline void __attribute__((noreturn, unused))
fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, what);
    abort();
}

/* Allocation failure is not what the targets test: stop loudly. */
static inline void *fuzz_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        fuzz_fail(__FILE__, __LINE__, "malloc");
    return p;
}

/* An exactly sized heap copy (ASan reports any access outside it). */
static inline char *fuzz_copy(const void *p, size_t n)
{
    char *c = malloc(n);
    if (!c && n)
        fuzz_fail(__FILE__, __LINE__, "malloc");
    if (n)
        memcpy(c, p, n);
    return c;
}

static inline uint64_t fuzz_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static inline uint64_t fuzz_rand(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull; /* splitmix64 */
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- cutting an input into reads ------------------------------------------ */

enum cut_mode {
    CUT_WHOLE, /* one read */
    CUT_BYTES, /* a byte per read */
    CUT_TWO,   /* two reads, cut at a point chosen by the input's hash */
    CUT_RANDOM /* reads of 1, 2, 3 ... 4096 bytes, sizes drawn from the input's hash */
};

struct cutter {
    enum cut_mode mode;
    uint64_t rng;
    size_t size, done;
};

static inline void cutter_init(struct cutter *c, enum cut_mode mode, const uint8_t *data,
                               size_t size)
{
    c->mode = mode;
    c->rng = fuzz_hash(data, size) ^ (uint64_t)mode;
    c->size = size;
    c->done = 0;
}

/* Length of the next read (0 when the input is used up). */
static inline size_t cutter_next(struct cutter *c)
{
    size_t left = c->size - c->done, n = left;
    switch (c->mode) {
    case CUT_WHOLE:
        break;
    case CUT_BYTES:
        n = left ? 1 : 0;
        break;
    case CUT_TWO:
        if (c->done == 0 && left > 1)
            n = 1 + (size_t)(fuzz_rand(&c->rng) % (left - 1));
        break;
    case CUT_RANDOM: {
        static const size_t scale[] = {1, 2, 3, 4, 7, 16, 64, 256, 4096};
        size_t max = scale[fuzz_rand(&c->rng) % (sizeof scale / sizeof scale[0])];
        n = 1 + (size_t)(fuzz_rand(&c->rng) % max);
        if (n > left)
            n = left;
        break;
    }
    }
    c->done += n;
    return n;
}

/* ---- feeding reads to a decoder the way a connection does ----------------- */

/* Called with every unconsumed byte (an exact heap copy) each time a read arrives.
 * Returns how many bytes from the front it consumed; sets *stop to end the stream
 * (an error: the connection closes). */
typedef size_t (*fuzz_step_fn)(void *ctx, const char *p, size_t len, int *stop);

/* Returns the number of bytes left unconsumed when the input ran out. */
static inline size_t fuzz_feed(const uint8_t *data, size_t size, enum cut_mode mode,
                               fuzz_step_fn step, void *ctx)
{
    struct cutter c;
    cutter_init(&c, mode, data, size);
    size_t kept = 0;  /* unconsumed bytes, ending at data + c.done */
    size_t n;
    int stop = 0;
    while (!stop && (n = cutter_next(&c)) > 0) {
        size_t len = kept + n;
        char *p = fuzz_copy(data + c.done - len, len);
        size_t used = step(ctx, p, len, &stop);
        free(p);
        FUZZ_CHECK(used <= len);
        kept = len - used;
    }
    return kept;
}

/* ---- event logs ----------------------------------------------------------- */

/* Append bytes to a log, escaping anything unprintable (logs are compared, and printed
 * when they differ). */
static inline void fuzz_log_bytes(struct buf *log, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        int rc = (ch >= 0x20 && ch < 0x7f && ch != '\\') ? buf_append(log, &p[i], 1)
                                                         : buf_printf(log, "\\x%02x", ch);
        FUZZ_CHECK(rc == 0);
    }
}

#define fuzz_log(log, ...) FUZZ_CHECK(buf_printf((log), __VA_ARGS__) == 0)

/* Two logs of the same input must be equal; print both when they are not. */
static inline void fuzz_same_log(const struct buf *a, const char *aname, const struct buf *b,
                                 const char *bname)
{
    /* (an empty buf has no data pointer: never compute buf_head() of one) */
    const char *pa = buf_len(a) ? buf_head(a) : "", *pb = buf_len(b) ? buf_head(b) : "";
    if (buf_len(a) == buf_len(b) && memcmp(pa, pb, buf_len(a)) == 0)
        return;
    fprintf(stderr, "--- %s:\n%.*s\n--- %s:\n%.*s\n", aname, (int)buf_len(a), pa, bname,
            (int)buf_len(b), pb);
    fuzz_fail(__FILE__, __LINE__, "logs differ between two ways of cutting the input");
}

#endif
