/* hdr_codec: wharf's histogram in HdrHistogram's "V2 compressed" encoding, the form
 * HdrHistogram's interval logs carry (base64 of it), so that HdrHistogram's own tools
 * and libraries read wharf's results and wharf reads theirs.
 *
 * Layout: wharf's histogram (hist.h: values in nanoseconds, exact below 256, then 128
 * buckets per power of two, tracked below 2^40) is bucket for bucket HdrHistogram's
 * histogram with lowestDiscernibleValue 1, numberOfSignificantValueDigits 2 and
 * highestTrackableValue 2^40 - 1: both have 256 sub-buckets of which the upper 128 are
 * used above the first power of two, and both number the counts the same way, so
 * wharf's bucket i is HdrHistogram's counts index i and no count is moved.
 *
 * Encoding (all integers big-endian): the compressed cookie 0x1c849314, the length of
 * the deflated part, then zlib's deflate of: cookie 0x1c849313, payload length,
 * normalizing index offset (0), significant digits (2), lowest (1, 64-bit), highest
 * (2^40 - 1, 64-bit), the integer-to-double ratio (1.0, IEEE double), and the payload:
 * the counts from index 0 to the last non-empty one, each a ZigZag LEB128 number, a run
 * of N > 1 empty buckets written as -N.
 *
 * Decoding takes any layout HdrHistogram writes (other significant digits, another
 * lowest value): a count whose bucket is not one of wharf's goes to the wharf bucket
 * holding its bucket's lowest value (within wharf's 1/128 precision, never exact
 * beyond it). The normalizing index offset is ignored (as HdrHistogram's JavaScript
 * port does). Bad input of any kind is refused with a reason; the decoder never reads
 * past the length it is given and never allocates more than the histogram's counts
 * (deflated data is inflated into a buffer of bounded size). */
#ifndef WHARF_HDR_CODEC_H
#define WHARF_HDR_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"

#define HDR_COOKIE 0x1c849313u
#define HDR_COMPRESSED_COOKIE 0x1c849314u
#define HDR_HEADER_LEN 40
#define HDR_SIG_DIGITS 2

/* The uncompressed encoding of h into a malloc'd buffer (*out, *len). 0, or -1 when
 * out of memory. */
int hdr_encode_raw(const struct hist *h, uint8_t **out, size_t *len);
/* The compressed encoding (what the log's base64 holds). 0, or -1 (out of memory, or
 * zlib failed). */
int hdr_encode(const struct hist *h, uint8_t **out, size_t *len);
/* The compressed encoding as base64 text, NUL-terminated and malloc'd; NULL when out
 * of memory. */
char *hdr_encode_b64(const struct hist *h);

/* Decode an uncompressed (cookie 0x1c849313) or compressed (0x1c849314) encoding of n
 * bytes into h (initialized here). count, min, max, sum and sumsq are rebuilt from the
 * buckets (min/max as the bucket's edges). 0, or -1 with a one-line reason in err. */
int hdr_decode(const uint8_t *in, size_t n, struct hist *h, char *err, size_t errlen);
/* The same from base64 text of n characters. */
int hdr_decode_b64(const char *in, size_t n, struct hist *h, char *err, size_t errlen);

/* Base64 (standard alphabet, padded). hdr_b64_decode writes at most n / 4 * 3 bytes to
 * out and returns their number, or -1 on a character or length base64 does not have. */
char *hdr_b64_encode(const uint8_t *in, size_t n);
long hdr_b64_decode(const char *in, size_t n, uint8_t *out);

#endif
