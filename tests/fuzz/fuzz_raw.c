/* libFuzzer target: the raw codec (codec_decode with PROTO_RAW) and the raw handler.
 * What is checked: fuzz_codec.h. */
#include "fuzz_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_codec_one(PROTO_RAW, data, size);
    return 0;
}
