/* hdr_codec: HdrHistogram's V2 encoding of wharf's histogram, both ways (hdr_codec.h). */
#include "hdr_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* The most a decoder inflates: far above any real histogram's encoding (wharf's own is
 * at most 40 + 9 * 4352 bytes), and small enough that hostile input costs little. */
#define HDR_MAX_RAW (1u << 20)

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

/* One ZigZag LEB128 number: 7 bits a byte for 8 bytes, then a 9th with all 8 bits (as
 * HdrHistogram writes them). Returns the bytes written (at most 9). */
static size_t put_zigzag(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (n < 8) {
        if (z >> 7 == 0) {
            p[n++] = (uint8_t)z;
            return n;
        }
        p[n++] = (uint8_t)((z & 0x7f) | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

/* Read one number at *pos (< n); -1 when it is cut by the end. */
static int get_zigzag(const uint8_t *p, size_t n, size_t *pos, int64_t *v)
{
    uint64_t z = 0;
    for (unsigned i = 0; i < 9; i++) {
        if (*pos >= n)
            return -1;
        uint8_t b = p[(*pos)++];
        if (i == 8) {
            z |= (uint64_t)b << 56;
            break;
        }
        z |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    *v = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    return 0;
}

int hdr_encode_raw(const struct hist *h, uint8_t **out, size_t *len)
{
    size_t last = 0; /* one past the last non-empty bucket */
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        if (h->buckets[i])
            last = i + 1;
    uint8_t *b = malloc(HDR_HEADER_LEN + 9 * last + 1);
    if (!b)
        return -1;
    size_t n = HDR_HEADER_LEN;
    for (size_t i = 0; i < last;) {
        size_t zeros = 0;
        while (i + zeros < last && h->buckets[i + zeros] == 0)
            zeros++;
        if (zeros > 1) {
            n += put_zigzag(b + n, -(int64_t)zeros);
            i += zeros;
        } else {
            /* Counts past INT64_MAX cannot be written; no run gets near that. */
            uint64_t c = h->buckets[i++];
            n += put_zigzag(b + n, c > INT64_MAX ? INT64_MAX : (int64_t)c);
        }
    }
    double ratio = 1.0;
    uint64_t ratio_bits;
    memcpy(&ratio_bits, &ratio, sizeof ratio_bits);
    put32(b, HDR_COOKIE);
    put32(b + 4, (uint32_t)(n - HDR_HEADER_LEN));
    put32(b + 8, 0);
    put32(b + 12, HDR_SIG_DIGITS);
    put64(b + 16, 1);
    put64(b + 24, HIST_MAX_NS);
    put64(b + 32, ratio_bits);
    *out = b;
    *len = n;
    return 0;
}

int hdr_encode(const struct hist *h, uint8_t **out, size_t *len)
{
    uint8_t *raw;
    size_t rawlen;
    if (hdr_encode_raw(h, &raw, &rawlen) < 0)
        return -1;
    uLongf zlen = compressBound((uLong)rawlen);
    uint8_t *b = malloc(8 + zlen);
    if (!b) {
        free(raw);
        return -1;
    }
    int rc = compress2(b + 8, &zlen, raw, (uLong)rawlen, Z_DEFAULT_COMPRESSION);
    free(raw);
    if (rc != Z_OK) {
        free(b);
        return -1;
    }
    put32(b, HDR_COMPRESSED_COOKIE);
    put32(b + 4, (uint32_t)zlen);
    *out = b;
    *len = 8 + zlen;
    return 0;
}

char *hdr_encode_b64(const struct hist *h)
{
    uint8_t *bin;
    size_t n;
    if (hdr_encode(h, &bin, &n) < 0)
        return NULL;
    char *s = hdr_b64_encode(bin, n);
    free(bin);
    return s;
}

/* ---- decoding ---- */

/* The layout of an encoded histogram: how its counts index maps to values. */
struct layout {
    unsigned half_mag; /* log2 of half the sub-buckets */
    unsigned unit_mag; /* log2 of the lowest discernible value */
};

static int layout_of(const uint8_t *p, struct layout *l, char *err, size_t errlen)
{
    uint32_t digits = get32(p + 12);
    uint64_t lowest = get64(p + 16);
    /* The normalizing index offset (p + 8) is ignored, as HdrHistogram's JavaScript
     * port does (which writes 1 there): only histograms shifted in place have one, and
     * no log writer produces those. */
    if (digits > 5 || lowest < 1 || lowest > (UINT64_C(1) << 32)) {
        snprintf(err, errlen, "histogram header out of range (digits %u, lowest %llu)",
                 digits, (unsigned long long)lowest);
        return -1;
    }
    uint64_t single = 2;
    for (uint32_t i = 0; i < digits; i++)
        single *= 10;
    unsigned mag = 0;
    while ((UINT64_C(1) << mag) < single)
        mag++;
    l->half_mag = mag > 1 ? mag - 1 : 0;
    l->unit_mag = 63u - (unsigned)__builtin_clzll(lowest);
    return 0;
}

/* The lowest value and width of counts index i in layout l; -1 past 2^62. */
static int index_value(const struct layout *l, uint64_t i, uint64_t *low, uint64_t *width)
{
    uint64_t half = UINT64_C(1) << l->half_mag;
    int64_t bucket = (int64_t)(i >> l->half_mag) - 1;
    uint64_t sub = (i & (half - 1)) + half;
    if (bucket < 0) {
        sub -= half;
        bucket = 0;
    }
    /* A huge index (a run of zeros can reach any) must not wrap the shift around. */
    if (bucket > 62)
        return -1;
    unsigned shift = (unsigned)bucket + l->unit_mag;
    if (shift + l->half_mag + 1 > 62)
        return -1;
    *low = sub << shift;
    *width = UINT64_C(1) << shift;
    return 0;
}

/* The counts of payload p (n bytes) into h. */
static int decode_counts(const struct layout *l, const uint8_t *p, size_t n, struct hist *h,
                         char *err, size_t errlen)
{
    uint64_t index = 0;
    size_t pos = 0;
    while (pos < n) {
        int64_t v;
        if (get_zigzag(p, n, &pos, &v) < 0) {
            snprintf(err, errlen, "histogram payload cut inside a count");
            return -1;
        }
        if (v < 0) {
            if (v == INT64_MIN || index + (uint64_t)-v < index) {
                snprintf(err, errlen, "histogram payload has an impossible run of zeros");
                return -1;
            }
            index += (uint64_t)-v;
            continue;
        }
        uint64_t low, width;
        if (v > 0 && index_value(l, index, &low, &width) < 0) {
            snprintf(err, errlen, "histogram count at index %llu is beyond 2^62",
                     (unsigned long long)index);
            return -1;
        }
        /* HdrHistogram's counts are signed 64-bit: a total past that is not one. */
        if (v > 0 && (uint64_t)v > (uint64_t)INT64_MAX - h->count) {
            snprintf(err, errlen, "histogram total count beyond 2^63-1");
            return -1;
        }
        if (v > 0)
            hist_record_n(h, low + (width - 1) / 2, (uint64_t)v);
        index++;
    }
    return 0;
}

/* min and max as HdrHistogram reports them: the edges of the outer non-empty buckets. */
static void set_edges(struct hist *h)
{
    if (!h->count)
        return;
    size_t first = hist_bucket_of(h->min), last = hist_bucket_of(h->max);
    h->min = hist_bucket_low(first);
    h->max = hist_bucket_low(last) + hist_bucket_width(last) - 1;
}

static int decode_raw(const uint8_t *p, size_t n, struct hist *h, char *err, size_t errlen)
{
    if (n < HDR_HEADER_LEN) {
        snprintf(err, errlen, "histogram shorter than its header (%zu bytes)", n);
        return -1;
    }
    if (get32(p) != HDR_COOKIE) {
        snprintf(err, errlen, "not an HdrHistogram V2 encoding (cookie 0x%08x)", get32(p));
        return -1;
    }
    uint32_t plen = get32(p + 4);
    if (plen != n - HDR_HEADER_LEN) {
        snprintf(err, errlen, "histogram payload length %u, but %zu bytes follow", plen,
                 n - HDR_HEADER_LEN);
        return -1;
    }
    struct layout l;
    if (layout_of(p, &l, err, errlen) < 0)
        return -1;
    if (decode_counts(&l, p + HDR_HEADER_LEN, plen, h, err, errlen) < 0)
        return -1;
    set_edges(h);
    return 0;
}

static int decode_any(const uint8_t *in, size_t n, struct hist *h, char *err, size_t errlen)
{
    if (n >= 4 && get32(in) == HDR_COOKIE)
        return decode_raw(in, n, h, err, errlen);
    if (n < 8 || get32(in) != HDR_COMPRESSED_COOKIE) {
        snprintf(err, errlen, "not an HdrHistogram V2 compressed histogram");
        return -1;
    }
    if (get32(in + 4) != n - 8) {
        snprintf(err, errlen, "compressed histogram length %u, but %zu bytes follow",
                 get32(in + 4), n - 8);
        return -1;
    }
    uint8_t *raw = malloc(HDR_MAX_RAW);
    if (!raw) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uLongf rawlen = HDR_MAX_RAW;
    uLong srclen = (uLong)(n - 8);
    int rc = uncompress2(raw, &rawlen, in + 8, &srclen);
    if (rc != Z_OK || srclen != n - 8) {
        const char *why = rc == Z_OK           ? "trailing bytes"
                          : rc == Z_BUF_ERROR ? "too large or cut"
                                              : "corrupt";
        snprintf(err, errlen, "compressed histogram does not inflate (%s)", why);
        free(raw);
        return -1;
    }
    rc = decode_raw(raw, rawlen, h, err, errlen);
    free(raw);
    return rc;
}

int hdr_decode(const uint8_t *in, size_t n, struct hist *h, char *err, size_t errlen)
{
    hist_init(h);
    if (decode_any(in, n, h, err, errlen) == 0)
        return 0;
    hist_init(h); /* nothing of a refused histogram is kept */
    return -1;
}

int hdr_decode_b64(const char *in, size_t n, struct hist *h, char *err, size_t errlen)
{
    uint8_t *bin = malloc(n / 4 * 3 + 1);
    if (!bin) {
        snprintf(err, errlen, "out of memory");
        hist_init(h);
        return -1;
    }
    long len = hdr_b64_decode(in, n, bin);
    if (len < 0) {
        snprintf(err, errlen, "histogram is not valid base64");
        hist_init(h);
        free(bin);
        return -1;
    }
    int rc = hdr_decode(bin, (size_t)len, h, err, errlen);
    free(bin);
    return rc;
}

/* ---- base64 ---- */

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *hdr_b64_encode(const uint8_t *in, size_t n)
{
    char *s = malloc((n + 2) / 3 * 4 + 1), *o = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        *o++ = b64_chars[v >> 18 & 63];
        *o++ = b64_chars[v >> 12 & 63];
        *o++ = i + 1 < n ? b64_chars[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? b64_chars[v & 63] : '=';
    }
    *o = 0;
    return s;
}

static int b64_val(char c)
{
    const char *p = c ? strchr(b64_chars, c) : NULL;
    return p ? (int)(p - b64_chars) : -1;
}

long hdr_b64_decode(const char *in, size_t n, uint8_t *out)
{
    if (n % 4)
        return -1;
    long len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = (in[i + 3] == '=') + (in[i + 2] == '=' && in[i + 3] == '=');
        if (pad && i + 4 != n)
            return -1;
        uint32_t v = 0;
        for (int k = 0; k < 4; k++) {
            int d = k >= 4 - pad ? 0 : b64_val(in[i + k]);
            if (d < 0)
                return -1;
            v = v << 6 | (uint32_t)d;
        }
        out[len++] = (uint8_t)(v >> 16);
        if (pad < 2)
            out[len++] = (uint8_t)(v >> 8);
        if (pad < 1)
            out[len++] = (uint8_t)v;
    }
    return len;
}
