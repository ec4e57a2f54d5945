/* codec: raw, line and frame decoders, driven the way the server drives them.
 *
 * The simulator below keeps unconsumed bytes, appends each new piece, calls the decoder
 * again from the message boundary with the connection's codec_state, and records what
 * came out as a text log. Every way of cutting a stream into reads must give the same
 * log as the expected one. Each decode call sees a private copy of its input that ends
 * at a PROT_NONE page (guard.h) or at the end of an exactly sized heap block (so ASan
 * also sees a read before the start), so an over-read fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/buf.h"
#include "../../common/codec.h"
#include "guard.h"

#define GUARD_CAP (256 * 1024)

static struct guard guard;

static int setup_guard(void **state)
{
    (void)state;
    return guard_open(&guard, GUARD_CAP);
}

static int teardown_guard(void **state)
{
    (void)state;
    guard_close(&guard);
    return 0;
}

/* buf_head() of a buffer that may never have allocated (NULL + 0 is undefined). */
static const char *bytes_of(const struct buf *b)
{
    return b->data ? buf_head(b) : "";
}

/* ---- logs ---------------------------------------------------------------- */

static void log_bytes(struct buf *log, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            assert_int_equal(buf_append(log, &p[i], 1), 0);
        else
            assert_int_equal(buf_printf(log, "\\x%02x", c), 0);
    }
}

static void log_msg(struct buf *log, const char *payload, size_t n)
{
    assert_int_equal(buf_printf(log, "MSG %zu [", n), 0);
    log_bytes(log, payload, n);
    assert_int_equal(buf_printf(log, "]\n"), 0);
}

static const char *rc_name(int rc)
{
    switch (rc) {
    case CODEC_NEED_MORE: return "NEED_MORE";
    case CODEC_MESSAGE: return "MESSAGE";
    case CODEC_TOO_LONG: return "TOO_LONG";
    case CODEC_INVALID: return "INVALID";
    default: return "?";
    }
}

static void log_end(struct buf *log, int rc, size_t left)
{
    if (rc == CODEC_NEED_MORE)
        assert_int_equal(buf_printf(log, "END left=%zu\n", left), 0);
    else
        assert_int_equal(buf_printf(log, "ERR %s\n", rc_name(rc)), 0);
}

/* Compare two logs; on a difference, show the first differing line of each. */
static void assert_logs_equal(const struct buf *got, const struct buf *want, const char *what)
{
    size_t gl = buf_len(got), wl = buf_len(want);
    const char *g = bytes_of(got), *w = bytes_of(want);
    if (gl == wl && memcmp(g, w, gl) == 0)
        return;
    size_t i = 0, line = 1, bol = 0;
    while (i < gl && i < wl && g[i] == w[i]) {
        if (g[i] == '\n') {
            line++;
            bol = i + 1;
        }
        i++;
    }
    const char *ge = memchr(g + bol, '\n', gl - bol), *we = memchr(w + bol, '\n', wl - bol);
    int gn = (int)((ge ? ge : g + gl) - (g + bol)), wn = (int)((we ? we : w + wl) - (w + bol));
    fail_msg("%s: logs differ at line %zu:\n  got:  %.*s\n  want: %.*s", what, line,
             gn > 200 ? 200 : gn, g + bol, wn > 200 ? 200 : wn, w + bol);
}

/* ---- the simulated connection --------------------------------------------- */

enum placement { PLACE_GUARD, PLACE_HEAP };

struct sim {
    enum proto proto;
    size_t max;
    enum placement place;
    int forget_state; /* zero the codec_state before every call ("start over" is valid) */
    struct codec_state st;
    struct buf pending; /* unconsumed bytes, starting at a message boundary */
    int dead;
    int last_rc;
    struct buf log;
};

static void sim_init(struct sim *s, enum proto proto, size_t max, enum placement place)
{
    memset(s, 0, sizeof *s);
    s->proto = proto;
    s->max = max;
    s->place = place;
}

/* One decode call on a private copy of in[0, len). */
static int decode_copy(struct sim *s, const char *in, size_t len, struct codec_msg *m,
                       const char **base)
{
    char *heap = NULL;
    const char *p;
    if (s->place == PLACE_GUARD) {
        p = guard_place(&guard, in, len);
        assert_non_null(p);
    } else {
        heap = malloc(len ? len : 1);
        assert_non_null(heap);
        if (len)
            memcpy(heap, in, len);
        p = heap;
    }
    memset(m, 0xA5, sizeof *m); /* no field may be trusted unless set */
    if (s->forget_state)
        s->st = (struct codec_state){0};
    int rc = codec_decode(s->proto, p, len, s->max, &s->st, m);
    if (rc == CODEC_MESSAGE) {
        /* The payload lies inside the message, the message inside the input. */
        assert_true(m->frame_len > 0);
        assert_true(m->frame_len <= len);
        assert_true(m->payload >= p);
        assert_true(m->payload + m->payload_len <= p + m->frame_len);
        if (s->proto != PROTO_RAW)
            assert_true(m->payload_len <= s->max);
        /* "Decoders reset it when they return a message." */
        assert_int_equal(s->st.scanned, 0);
        assert_int_equal(s->st.aux1, 0);
        assert_int_equal(s->st.aux2, 0);
        /* Translate the payload back into the caller's copy before freeing ours. */
        *base = in + (m->payload - p);
    } else if (rc == CODEC_NEED_MORE) {
        /* The size hint is the total when known, else 0: never left unset. Only a frame
         * whose header has arrived knows its total. */
        if (s->proto == PROTO_FRAME && len >= FRAME_HEADER_LEN) {
            const unsigned char *u = (const unsigned char *)in;
            size_t n = (size_t)u[0] << 24 | (size_t)u[1] << 16 | (size_t)u[2] << 8 | u[3];
            assert_true(m->frame_len == FRAME_HEADER_LEN + n);
            assert_true(m->frame_len > len);
        } else {
            assert_int_equal(m->frame_len, 0);
        }
    }
    free(heap);
    return rc;
}

static void sim_feed(struct sim *s, const char *piece, size_t n)
{
    if (s->dead)
        return;
    assert_int_equal(buf_append(&s->pending, piece, n), 0);
    size_t off = 0;
    for (;;) {
        struct codec_msg m;
        const char *payload = NULL;
        const char *in = bytes_of(&s->pending) + off;
        size_t len = buf_len(&s->pending) - off;
        int rc = decode_copy(s, in, len, &m, &payload);
        s->last_rc = rc;
        if (rc == CODEC_MESSAGE) {
            log_msg(&s->log, payload, m.payload_len);
            off += m.frame_len;
            continue;
        }
        if (rc != CODEC_NEED_MORE) {
            log_end(&s->log, rc, 0);
            s->dead = 1;
        }
        break;
    }
    buf_consume(&s->pending, off);
}

static void sim_finish(struct sim *s)
{
    if (!s->dead)
        log_end(&s->log, CODEC_NEED_MORE, buf_len(&s->pending));
    buf_release(&s->pending);
}

static void sim_free(struct sim *s)
{
    buf_release(&s->pending);
    buf_release(&s->log);
}

/* Feed in[0, len) cut at the given positions (ascending, each within [0, len]). */
static void run_cuts(enum proto proto, const char *in, size_t len, size_t max,
                     enum placement place, int forget, const size_t *cuts, size_t ncuts,
                     struct buf *log)
{
    struct sim s;
    sim_init(&s, proto, max, place);
    s.forget_state = forget;
    size_t from = 0;
    for (size_t i = 0; i < ncuts; i++) {
        sim_feed(&s, in + from, cuts[i] - from);
        from = cuts[i];
    }
    sim_feed(&s, in + from, len - from);
    sim_finish(&s);
    *log = s.log;
    s.log = (struct buf){0};
    sim_free(&s);
}

/* Every way of reading the stream that the issue asks for must give `want`:
 * one read, a byte at a time (with and without resume hints), every two-piece split
 * (including empty pieces at either end), and, when len is small, every three-piece
 * split. Raw has no message boundaries of its own, so it is checked separately. */
static void check_all_splits(enum proto proto, const char *in, size_t len, size_t max,
                             const struct buf *want)
{
    char what[96];
    struct buf log;

    run_cuts(proto, in, len, max, PLACE_GUARD, 0, NULL, 0, &log);
    assert_logs_equal(&log, want, "one read");
    buf_release(&log);

    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    for (int forget = 0; forget <= 1; forget++) {
        run_cuts(proto, in, len, max, PLACE_GUARD, forget, cuts, len, &log);
        assert_logs_equal(&log, want, forget ? "byte by byte, no hints" : "byte by byte");
        buf_release(&log);
    }

    for (size_t c = 0; c <= len; c++) {
        run_cuts(proto, in, len, max, PLACE_HEAP, 0, &c, 1, &log);
        snprintf(what, sizeof what, "two pieces cut at %zu", c);
        assert_logs_equal(&log, want, what);
        buf_release(&log);
    }

    if (len <= 160) {
        for (size_t a = 1; a < len; a++) {
            for (size_t b = a; b < len; b++) {
                size_t two[2] = {a, b};
                run_cuts(proto, in, len, max, (a + b) % 2 ? PLACE_HEAP : PLACE_GUARD, 0, two, 2,
                         &log);
                snprintf(what, sizeof what, "three pieces cut at %zu, %zu", a, b);
                assert_logs_equal(&log, want, what);
                buf_release(&log);
            }
        }
    }
    free(cuts);
}

/* ---- stream builders ---------------------------------------------------------- */

static void add_line(struct buf *stream, struct buf *want, const char *payload, size_t n)
{
    assert_int_equal(buf_append(stream, payload, n), 0);
    assert_int_equal(buf_append(stream, "\n", 1), 0);
    log_msg(want, payload, n);
}

static void add_frame(struct buf *stream, struct buf *want, const char *payload, size_t n)
{
    unsigned char h[FRAME_HEADER_LEN];
    codec_frame_header((uint32_t)n, h);
    assert_int_equal(buf_append(stream, h, sizeof h), 0);
    assert_int_equal(buf_append(stream, payload, n), 0);
    log_msg(want, payload, n);
}

static void fill_pattern(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        char c = (char)(' ' + (seed * 31 + i * 7) % 95);
        p[i] = c == '\n' ? '.' : c;
    }
}

/* ---- raw ----------------------------------------------------------------------- */

static void test_raw_everything_is_one_message(void **state)
{
    (void)state;
    struct codec_state st = {0};
    struct codec_msg m;
    const char *in = guard_place(&guard, "abc\n\0def", 8);
    assert_int_equal(codec_decode(PROTO_RAW, in, 8, 4, &st, &m), CODEC_MESSAGE);
    assert_ptr_equal(m.payload, in);
    assert_int_equal(m.payload_len, 8); /* raw is not bound by max: it is whatever arrived */
    assert_int_equal(m.frame_len, 8);
    in = guard_place(&guard, "", 0);
    m.frame_len = 12345;
    assert_int_equal(codec_decode(PROTO_RAW, in, 0, 4, &st, &m), CODEC_NEED_MORE);
    assert_int_equal(m.frame_len, 0); /* "total when known, else 0" */
}

/* Raw messages are the reads themselves: any split gives the bytes back in order, one
 * message per non-empty piece. */
static void test_raw_splits(void **state)
{
    (void)state;
    char in[64];
    fill_pattern(in, sizeof in, 3);
    for (size_t c = 0; c <= sizeof in; c++) {
        struct sim s;
        sim_init(&s, PROTO_RAW, 16, c % 2 ? PLACE_HEAP : PLACE_GUARD);
        sim_feed(&s, in, c);
        sim_feed(&s, in + c, sizeof in - c);
        sim_finish(&s);
        struct buf want = {0};
        if (c > 0)
            log_msg(&want, in, c);
        if (c < sizeof in)
            log_msg(&want, in + c, sizeof in - c);
        log_end(&want, CODEC_NEED_MORE, 0);
        assert_logs_equal(&s.log, &want, "raw two pieces");
        buf_release(&want);
        sim_free(&s);
    }
    struct sim s;
    sim_init(&s, PROTO_RAW, 16, PLACE_GUARD);
    for (size_t i = 0; i < sizeof in; i++)
        sim_feed(&s, in + i, 1);
    sim_finish(&s);
    struct buf want = {0};
    for (size_t i = 0; i < sizeof in; i++)
        log_msg(&want, in + i, 1);
    log_end(&want, CODEC_NEED_MORE, 0);
    assert_logs_equal(&s.log, &want, "raw byte by byte");
    buf_release(&want);
    sim_free(&s);
}

static void test_decode_dispatch(void **state)
{
    (void)state;
    struct codec_state st = {0};
    struct codec_msg m;
    const char *in = guard_place(&guard, "\0\0\0\1xab\n", 8);
    assert_int_equal(codec_decode(PROTO_FRAME, in, 8, 100, &st, &m), CODEC_MESSAGE);
    assert_int_equal(m.frame_len, 5);
    assert_int_equal(codec_decode(PROTO_LINE, in, 8, 100, &st, &m), CODEC_MESSAGE);
    assert_int_equal(m.frame_len, 8);
    /* HTTP is not a codec_decode protocol, and nor is anything out of range. */
    assert_int_equal(codec_decode(PROTO_HTTP, in, 8, 100, &st, &m), CODEC_INVALID);
    assert_int_equal(codec_decode(PROTO_COUNT, in, 8, 100, &st, &m), CODEC_INVALID);
}

/* ---- line ---------------------------------------------------------------------- */

static void test_line_basic(void **state)
{
    (void)state;
    struct codec_state st = {0};
    struct codec_msg m;
    const char *in = guard_place(&guard, "hello\nworld", 11);
    assert_int_equal(codec_line_decode(in, 11, 100, &st, &m), CODEC_MESSAGE);
    assert_ptr_equal(m.payload, in);
    assert_int_equal(m.payload_len, 5);
    assert_int_equal(m.frame_len, 6);
    assert_int_equal(codec_line_decode(in + 6, 5, 100, &st, &m), CODEC_NEED_MORE);
    assert_int_equal(m.frame_len, 0); /* a line's length is unknown until its end */

    /* Empty lines are messages of zero bytes. */
    st = (struct codec_state){0};
    in = guard_place(&guard, "\n\n", 2);
    assert_int_equal(codec_line_decode(in, 2, 100, &st, &m), CODEC_MESSAGE);
    assert_int_equal(m.payload_len, 0);
    assert_int_equal(m.frame_len, 1);
    assert_int_equal(codec_line_decode(in, 0, 100, &st, &m), CODEC_NEED_MORE);

    /* NUL and other bytes are payload like any other. */
    st = (struct codec_state){0};
    in = guard_place(&guard, "a\0\xff\r\n", 5);
    assert_int_equal(codec_line_decode(in, 5, 100, &st, &m), CODEC_MESSAGE);
    assert_int_equal(m.payload_len, 4);
    assert_memory_equal(m.payload, "a\0\xff\r", 4);
}

/* CRLF lines keep their '\r' in the payload, so echoing payload + "\n" keeps them CRLF. */
static void test_line_crlf(void **state)
{
    (void)state;
    struct buf stream = {0}, want = {0};
    add_line(&stream, &want, "GET\r", 4);
    add_line(&stream, &want, "\r", 1);
    add_line(&stream, &want, "", 0);
    add_line(&stream, &want, "\r\r", 2);
    add_line(&stream, &want, "a\rb\r", 4);
    assert_int_equal(buf_append(&stream, "tail\r", 5), 0);
    log_end(&want, CODEC_NEED_MORE, 5);
    check_all_splits(PROTO_LINE, buf_head(&stream), buf_len(&stream), 8, &want);
    buf_release(&stream);
    buf_release(&want);
}

static void test_line_exactly_max(void **state)
{
    (void)state;
    const size_t max = 10;
    struct codec_state st = {0};
    struct codec_msg m;
    /* max payload bytes + '\n': a message. */
    const char *in = guard_place(&guard, "0123456789\n", max + 1);
    assert_int_equal(codec_line_decode(in, max + 1, max, &st, &m), CODEC_MESSAGE);
    assert_int_equal(m.payload_len, max);
    assert_int_equal(m.frame_len, max + 1);
    /* Also when more bytes follow it. */
    in = guard_place(&guard, "0123456789\nabc", max + 4);
    assert_int_equal(codec_line_decode(in, max + 4, max, &st, &m), CODEC_MESSAGE);
    assert_int_equal(m.payload_len, max);
    /* One byte over: too long, whether or not its newline has arrived. */
    in = guard_place(&guard, "0123456789X\n", max + 2);
    st = (struct codec_state){0};
    assert_int_equal(codec_line_decode(in, max + 2, max, &st, &m), CODEC_TOO_LONG);
    in = guard_place(&guard, "0123456789X", max + 1);
    st = (struct codec_state){0};
    assert_int_equal(codec_line_decode(in, max + 1, max, &st, &m), CODEC_TOO_LONG);
    /* max 0: only empty lines. */
    st = (struct codec_state){0};
    in = guard_place(&guard, "\n", 1);
    assert_int_equal(codec_line_decode(in, 1, 0, &st, &m), CODEC_MESSAGE);
    assert_int_equal(m.payload_len, 0);
    in = guard_place(&guard, "a", 1);
    assert_int_equal(codec_line_decode(in, 1, 0, &st, &m), CODEC_TOO_LONG);
}

/* A line longer than max with no newline is refused as soon as max+1 bytes are there,
 * not when (if ever) its newline arrives; and not a byte earlier. Fed a byte at a time
 * with hints, a byte at a time without, and in one piece. */
static void test_line_too_long_without_newline(void **state)
{
    (void)state;
    const size_t maxes[] = {0, 1, 2, 7, 100, 4096};
    for (size_t k = 0; k < sizeof maxes / sizeof maxes[0]; k++) {
        size_t max = maxes[k];
        char *line = malloc(max + 50);
        fill_pattern(line, max + 50, (unsigned)k);
        for (int forget = 0; forget <= 1; forget++) {
            struct codec_state st = {0};
            for (size_t len = 0; len <= max + 50; len++) {
                struct codec_msg m;
                if (forget)
                    st = (struct codec_state){0};
                const char *in = guard_place(&guard, line, len);
                int rc = codec_line_decode(in, len, max, &st, &m);
                int want = len <= max ? CODEC_NEED_MORE : CODEC_TOO_LONG;
                if (rc != want)
                    fail_msg("max %zu, %zu bytes without newline: %s, want %s", max, len,
                             rc_name(rc), rc_name(want));
                if (len == max + 1)
                    break; /* a server stops at the first error */
            }
        }
        free(line);
    }
}

/* Many lines in one read ("sticky packets"): exactly those payloads, in order. */
static void test_line_sticky(void **state)
{
    (void)state;
    const size_t max = 300;
    struct buf stream = {0}, want = {0};
    char payload[300];
    for (unsigned i = 0; i < 2000; i++) {
        size_t n = (i * 37) % (max + 1);
        fill_pattern(payload, n, i);
        if (i % 5 == 0 && n > 0)
            payload[n - 1] = '\r';
        add_line(&stream, &want, payload, n);
    }
    log_end(&want, CODEC_NEED_MORE, 0);
    struct buf log;
    run_cuts(PROTO_LINE, buf_head(&stream), buf_len(&stream), max, PLACE_HEAP, 0, NULL, 0, &log);
    assert_logs_equal(&log, &want, "2000 lines in one read");
    buf_release(&log);
    /* The same stream in reads of a prime size, so boundaries fall everywhere. */
    size_t ncuts = buf_len(&stream) / 1021, *cuts = malloc((ncuts + 1) * sizeof *cuts);
    for (size_t i = 0; i < ncuts; i++)
        cuts[i] = (i + 1) * 1021;
    run_cuts(PROTO_LINE, buf_head(&stream), buf_len(&stream), max, PLACE_GUARD, 0, cuts, ncuts,
             &log);
    assert_logs_equal(&log, &want, "2000 lines in 1021-byte reads");
    buf_release(&log);
    free(cuts);
    buf_release(&stream);
    buf_release(&want);
}

static void test_line_every_split(void **state)
{
    (void)state;
    struct buf stream = {0}, want = {0};
    add_line(&stream, &want, "first", 5);
    add_line(&stream, &want, "", 0);
    add_line(&stream, &want, "x", 1);
    add_line(&stream, &want, "exactly12345", 12);
    add_line(&stream, &want, "crlf\r", 5);
    add_line(&stream, &want, "\0\1\2", 3);
    assert_int_equal(buf_append(&stream, "partial", 7), 0);
    log_end(&want, CODEC_NEED_MORE, 7);
    check_all_splits(PROTO_LINE, buf_head(&stream), buf_len(&stream), 12, &want);
    /* With no limit to speak of. */
    check_all_splits(PROTO_LINE, buf_head(&stream), buf_len(&stream), SIZE_MAX, &want);
    buf_release(&stream);
    buf_release(&want);
}

/* Good lines, then one a byte too long: the good ones come out, then the error, at the
 * same place however the stream is cut. */
static void test_line_error_after_messages(void **state)
{
    (void)state;
    const size_t max = 12;
    struct buf stream = {0}, want = {0};
    add_line(&stream, &want, "one", 3);
    add_line(&stream, &want, "exactly12345", 12);
    assert_int_equal(buf_append(&stream, "thirteen13131\nnever", 19), 0);
    log_end(&want, CODEC_TOO_LONG, 0);
    check_all_splits(PROTO_LINE, buf_head(&stream), buf_len(&stream), max, &want);

    /* Same, with the overlong line still missing its newline. */
    buf_release(&stream);
    buf_release(&want);
    add_line(&stream, &want, "one", 3);
    assert_int_equal(buf_append(&stream, "thirteen13131", 13), 0);
    log_end(&want, CODEC_TOO_LONG, 0);
    check_all_splits(PROTO_LINE, buf_head(&stream), buf_len(&stream), max, &want);
    buf_release(&stream);
    buf_release(&want);
}

/* ---- frame --------------------------------------------------------------------- */

static void test_frame_header_round_trip(void **state)
{
    (void)state;
    const uint32_t values[] = {0, 1, 0xff, 0x100, 0x1234, 0x01020304, 0x7fffffff, 0x80000000,
                               0xfffffffe, 0xffffffff};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        unsigned char h[FRAME_HEADER_LEN];
        codec_frame_header(values[i], h);
        /* Big-endian on the wire. */
        assert_int_equal(h[0], values[i] >> 24);
        assert_int_equal(h[1], (values[i] >> 16) & 0xff);
        assert_int_equal(h[2], (values[i] >> 8) & 0xff);
        assert_int_equal(h[3], values[i] & 0xff);
        struct codec_msg m;
        const char *in = guard_place(&guard, h, sizeof h);
        int rc = codec_frame_decode(in, sizeof h, SIZE_MAX, &m);
        if (values[i] == 0) {
            assert_int_equal(rc, CODEC_MESSAGE);
            assert_int_equal(m.frame_len, FRAME_HEADER_LEN);
        } else {
            assert_int_equal(rc, CODEC_NEED_MORE);
            assert_true(m.frame_len == FRAME_HEADER_LEN + (size_t)values[i]);
        }
    }
}

static void test_frame_zero_length(void **state)
{
    (void)state;
    struct codec_msg m;
    const char *in = guard_place(&guard, "\0\0\0\0", 4);
    assert_int_equal(codec_frame_decode(in, 4, 0, &m), CODEC_MESSAGE);
    assert_int_equal(m.payload_len, 0);
    assert_int_equal(m.frame_len, 4);
    assert_ptr_equal(m.payload, in + 4);
    /* Several zero-length frames in a row, mixed with others, under every split. */
    struct buf stream = {0}, want = {0};
    add_frame(&stream, &want, "", 0);
    add_frame(&stream, &want, "", 0);
    add_frame(&stream, &want, "ab", 2);
    add_frame(&stream, &want, "", 0);
    log_end(&want, CODEC_NEED_MORE, 0);
    check_all_splits(PROTO_FRAME, buf_head(&stream), buf_len(&stream), 2, &want);
    buf_release(&stream);
    buf_release(&want);
}

static void test_frame_need_more_hint(void **state)
{
    (void)state;
    unsigned char f[4 + 300];
    codec_frame_header(300, f);
    memset(f + 4, 'z', 300);
    for (size_t len = 0; len <= sizeof f; len++) {
        struct codec_msg m;
        const char *in = guard_place(&guard, f, len);
        int rc = codec_frame_decode(in, len, 300, &m);
        if (len < 4) {
            assert_int_equal(rc, CODEC_NEED_MORE);
            assert_int_equal(m.frame_len, 0);
        } else if (len < sizeof f) {
            assert_int_equal(rc, CODEC_NEED_MORE);
            assert_int_equal(m.frame_len, sizeof f);
        } else {
            assert_int_equal(rc, CODEC_MESSAGE);
            assert_int_equal(m.frame_len, sizeof f);
            assert_int_equal(m.payload_len, 300);
            assert_ptr_equal(m.payload, in + 4);
        }
    }
}

/* A length over the limit is refused from the 4 header bytes alone. */
static void test_frame_too_long(void **state)
{
    (void)state;
    unsigned char h[8];
    struct codec_msg m;
    const size_t maxes[] = {0, 1, 100, 65535, 0xfffffffe};
    for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++) {
        size_t max = maxes[i];
        codec_frame_header((uint32_t)(max + 1), h);
        memset(h + 4, 'p', 4);
        for (size_t len = 4; len <= 8; len++) {
            const char *in = guard_place(&guard, h, len);
            assert_int_equal(codec_frame_decode(in, len, max, &m), CODEC_TOO_LONG);
        }
        /* Exactly max is fine (need more, with the total known). */
        codec_frame_header((uint32_t)max, h);
        const char *in = guard_place(&guard, h, 4);
        int rc = codec_frame_decode(in, 4, max, &m);
        if (max == 0) {
            assert_int_equal(rc, CODEC_MESSAGE);
        } else {
            assert_int_equal(rc, CODEC_NEED_MORE);
            assert_true(m.frame_len == 4 + max);
        }
    }
}

/* Lengths up to 0xFFFFFFFF: no sign extension, no wrap of the 4-byte field. */
static void test_frame_huge_lengths(void **state)
{
    (void)state;
    struct codec_msg m;
    const char *in = guard_place(&guard, "\xff\xff\xff\xff", 4);
    assert_int_equal(codec_frame_decode(in, 4, SIZE_MAX, &m), CODEC_NEED_MORE);
    assert_true(m.frame_len == (size_t)0xffffffff + 4);
    assert_int_equal(codec_frame_decode(in, 4, 0xffffffff, &m), CODEC_NEED_MORE);
    assert_true(m.frame_len == (size_t)0xffffffff + 4);
    assert_int_equal(codec_frame_decode(in, 4, 0xfffffffe, &m), CODEC_TOO_LONG);
    in = guard_place(&guard, "\x80\0\0\0", 4);
    assert_int_equal(codec_frame_decode(in, 4, SIZE_MAX, &m), CODEC_NEED_MORE);
    assert_true(m.frame_len == (size_t)0x80000000 + 4);
    assert_int_equal(codec_frame_decode(in, 4, 0x7fffffff, &m), CODEC_TOO_LONG);
    /* The byte order is big-endian: 0x00000100 is 256, not 65536 or 1. */
    unsigned char f[4 + 256];
    memcpy(f, "\0\0\1\0", 4);
    memset(f + 4, 'q', 256);
    in = guard_place(&guard, f, sizeof f);
    assert_int_equal(codec_frame_decode(in, sizeof f, 256, &m), CODEC_MESSAGE);
    assert_int_equal(m.payload_len, 256);
    assert_int_equal(codec_frame_decode(in, sizeof f, 255, &m), CODEC_TOO_LONG);
}

static void test_frame_sticky(void **state)
{
    (void)state;
    const size_t max = 700;
    struct buf stream = {0}, want = {0};
    char payload[700];
    for (unsigned i = 0; i < 1500; i++) {
        size_t n = (i * 53) % (max + 1);
        for (size_t j = 0; j < n; j++)
            payload[j] = (char)(i + j * 3); /* all byte values, '\n' and NUL included */
        add_frame(&stream, &want, payload, n);
    }
    log_end(&want, CODEC_NEED_MORE, 0);
    struct buf log;
    run_cuts(PROTO_FRAME, buf_head(&stream), buf_len(&stream), max, PLACE_HEAP, 0, NULL, 0, &log);
    assert_logs_equal(&log, &want, "1500 frames in one read");
    buf_release(&log);
    size_t ncuts = buf_len(&stream) / 997, *cuts = malloc((ncuts + 1) * sizeof *cuts);
    for (size_t i = 0; i < ncuts; i++)
        cuts[i] = (i + 1) * 997;
    run_cuts(PROTO_FRAME, buf_head(&stream), buf_len(&stream), max, PLACE_GUARD, 0, cuts, ncuts,
             &log);
    assert_logs_equal(&log, &want, "1500 frames in 997-byte reads");
    buf_release(&log);
    free(cuts);
    buf_release(&stream);
    buf_release(&want);
}

static void test_frame_every_split(void **state)
{
    (void)state;
    struct buf stream = {0}, want = {0};
    add_frame(&stream, &want, "hello", 5);
    add_frame(&stream, &want, "", 0);
    add_frame(&stream, &want, "\n\0\xff", 3);
    add_frame(&stream, &want, "exactly-max!", 12);
    add_frame(&stream, &want, "x", 1);
    /* A partial frame at the end: header and part of the payload. */
    assert_int_equal(buf_append(&stream, "\0\0\0\x0a" "abc", 7), 0);
    log_end(&want, CODEC_NEED_MORE, 7);
    check_all_splits(PROTO_FRAME, buf_head(&stream), buf_len(&stream), 12, &want);
    buf_release(&stream);
    buf_release(&want);

    /* Messages, then a frame over the limit: TOO_LONG at the same place every time. */
    add_frame(&stream, &want, "ok", 2);
    assert_int_equal(buf_append(&stream, "\0\0\0\x0d" "thirteen-byte", 17), 0);
    log_end(&want, CODEC_TOO_LONG, 0);
    check_all_splits(PROTO_FRAME, buf_head(&stream), buf_len(&stream), 12, &want);
    buf_release(&stream);
    buf_release(&want);
}

/* ---- over-read guard -------------------------------------------------------------- */

static void test_guard_catches_overread(void **state)
{
    (void)state;
    assert_true(guard_faults_past_end(&guard));
}

/* Every prefix of several inputs, placed right before the guard page and decoded with
 * a fresh state and with the state a byte-at-a-time reader would have. A read past len
 * crashes the test. */
static void test_overread_every_prefix(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
    } inputs[] = {
        {"hello\nworld\n", 12},
        {"\r\n\r\n\n", 5},
        {"no newline at all here", 22},
        {"0123456789abcdef0123456789", 26},
        {"\0\0\0\5hello\0\0\0\0\0\0\0\2", 17},
        {"\xff\xff\xff\xff", 4},
        {"\0\0\0\x10short", 9},
        {"", 0},
    };
    const size_t maxes[] = {0, 4, 10, 16, SIZE_MAX};
    const enum proto protos[] = {PROTO_RAW, PROTO_LINE, PROTO_FRAME};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        for (size_t pi = 0; pi < 3; pi++) {
            for (size_t mi = 0; mi < sizeof maxes / sizeof maxes[0]; mi++) {
                struct codec_state carried = {0};
                for (size_t len = 0; len <= inputs[i].len; len++) {
                    struct codec_msg m;
                    struct codec_state fresh = {0};
                    const char *in = guard_place(&guard, inputs[i].bytes, len);
                    int rc1 = codec_decode(protos[pi], in, len, maxes[mi], &fresh, &m);
                    int rc2 = codec_decode(protos[pi], in, len, maxes[mi], &carried, &m);
                    /* Hints only save work: they never change the answer. */
                    assert_int_equal(rc1, rc2);
                    if (rc2 != CODEC_NEED_MORE)
                        carried = (struct codec_state){0};
                }
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_everything_is_one_message),
        cmocka_unit_test(test_raw_splits),
        cmocka_unit_test(test_decode_dispatch),
        cmocka_unit_test(test_line_basic),
        cmocka_unit_test(test_line_crlf),
        cmocka_unit_test(test_line_exactly_max),
        cmocka_unit_test(test_line_too_long_without_newline),
        cmocka_unit_test(test_line_sticky),
        cmocka_unit_test(test_line_every_split),
        cmocka_unit_test(test_line_error_after_messages),
        cmocka_unit_test(test_frame_header_round_trip),
        cmocka_unit_test(test_frame_zero_length),
        cmocka_unit_test(test_frame_need_more_hint),
        cmocka_unit_test(test_frame_too_long),
        cmocka_unit_test(test_frame_huge_lengths),
        cmocka_unit_test(test_frame_sticky),
        cmocka_unit_test(test_frame_every_split),
        cmocka_unit_test(test_guard_catches_overread),
        cmocka_unit_test(test_overread_every_prefix),
    };
    return cmocka_run_group_tests_name("codec", tests, setup_guard, teardown_guard);
}
