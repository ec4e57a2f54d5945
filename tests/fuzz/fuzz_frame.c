/* libFuzzer target: the frame codec (codec_decode with PROTO_FRAME) and the frame handler.
 * What is checked: fuzz_codec.h. */
#include "fuzz_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_codec_one(PROTO_FRAME, data, size);
    return 0;
}
