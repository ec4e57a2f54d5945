/* libFuzzer target: the line codec (codec_decode with PROTO_LINE) and the line handler.
 * What is checked: fuzz_codec.h. */
#include "fuzz_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_codec_one(PROTO_LINE, data, size);
    return 0;
}
