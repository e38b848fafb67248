/* libFuzzer: the ttrpc frame decoder fed arbitrary byte streams, cut into chunks
 * whose sizes come from the input itself, as reads from a socket would. */
#include <stdint.h>
#include <stdlib.h>

#include "ttrpc/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] % 64 + 1;
    data++, size--;
    struct ttrpc_decoder d;
    ttrpc_decoder_init(&d);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        size_t done = 0;
        while (done < n) {
            enum ttrpc_decode_event ev;
            struct ttrpc_frame fr = {0};
            size_t used = ttrpc_decoder_feed(&d, data + off + done, n - done, &ev, &fr);
            done += used;
            /* The buffer grows with the bytes that came, never with what a header claims. */
            if (ttrpc_decoder_buffered(&d) > TTRPC_DECODER_FIRST_ALLOC + 2 * d.data_have)
                abort();
            if (ev == TTRPC_DECODE_FRAME) {
                if (fr.header.length > TTRPC_MAX_DATA)
                    abort();
                free(fr.data);
            } else if (ev == TTRPC_DECODE_BAD_TYPE) {
                ttrpc_decoder_reset(&d);
                return 0; /* the server closes such a connection */
            } else if (used == 0) {
                abort(); /* no progress and no event: a hang on a socket */
            }
        }
        off += n;
    }
    ttrpc_decoder_reset(&d);
    return 0;
}
