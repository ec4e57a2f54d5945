/* libFuzzer target: HdrHistogram's V2 encoding read back (common/hdr_codec.h), as
 * `wharf merge` reads the logs it is given. The input is tried as binary (compressed or
 * not) and as base64 text, each from a heap block of exactly its size (AddressSanitizer
 * sees a read one byte past the end). What is checked: a refused input leaves an empty
 * histogram and a reason; an accepted one encodes again (wharf's layout, lossless for
 * its own buckets) and that decodes to the very same buckets and count. */
#include "../../common/hdr_codec.h"
#include "fuzz.h"

static struct hist a, b;

static void check_one(int rc, const char *err)
{
    if (rc < 0) {
        FUZZ_CHECK(a.count == 0 && err[0] != 0);
        return;
    }
    FUZZ_CHECK(rc == 0);
    uint8_t *enc;
    size_t n;
    char e2[160];
    FUZZ_CHECK(hdr_encode(&a, &enc, &n) == 0);
    FUZZ_CHECK(hdr_decode(enc, n, &b, e2, sizeof e2) == 0);
    FUZZ_CHECK(b.count == a.count);
    FUZZ_CHECK(memcmp(a.buckets, b.buckets, sizeof a.buckets) == 0);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    char err[160] = "";
    check_one(hdr_decode(copy, size, &a, err, sizeof err), err);
    err[0] = 0;
    check_one(hdr_decode_b64((const char *)copy, size, &a, err, sizeof err), err);
    free(copy);
    return 0;
}
