/* libFuzzer: the ttrpc frame decoder fed arbitrary byte streams, cut into chunks
 * whose sizes come from the input itself, as reads from a socket would; frames of
 * other types are skipped without being stored. */
#include <stdint.h>
#include <stdlib.h>

#include "ttrpc/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] % 64 + 1;
    /* The server's decoder takes requests, the client's responses. */
    uint8_t take = data[0] & 0x80 ? TTRPC_TYPE_RESPONSE : TTRPC_TYPE_REQUEST;
    data++, size--;
    struct ttrpc_decoder d;
    ttrpc_decoder_init(&d, take);
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
                /* Only the taken type comes out, never over the cap. */
                if (fr.header.length > TTRPC_MAX_DATA || fr.header.type != d.take_type)
                    abort();
                free(fr.data);
            } else if (ev == TTRPC_DECODE_SKIPPED || ev == TTRPC_DECODE_OVERSIZE) {
                if (fr.data || ttrpc_decoder_buffered(&d) != 0)
                    abort(); /* skipped bytes are never stored */
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
