#include "ttrpc/frame.h"
#include "core/util.h"

#include <string.h>

void ttrpc_header_encode(const struct ttrpc_header *h, uint8_t out[TTRPC_HEADER_SIZE])
{
    out[0] = (uint8_t)(h->length >> 24);
    out[1] = (uint8_t)(h->length >> 16);
    out[2] = (uint8_t)(h->length >> 8);
    out[3] = (uint8_t)h->length;
    out[4] = (uint8_t)(h->stream_id >> 24);
    out[5] = (uint8_t)(h->stream_id >> 16);
    out[6] = (uint8_t)(h->stream_id >> 8);
    out[7] = (uint8_t)h->stream_id;
    out[8] = h->type;
    out[9] = h->flags;
}

void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], struct ttrpc_header *h)
{
    h->length = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
    h->stream_id = (uint32_t)in[4] << 24 | (uint32_t)in[5] << 16 | (uint32_t)in[6] << 8 | in[7];
    h->type = in[8];
    h->flags = in[9];
}

void ttrpc_decoder_init(struct ttrpc_decoder *d, uint8_t take_type)
{
    memset(d, 0, sizeof(*d));
    d->take_type = take_type;
}

void ttrpc_decoder_reset(struct ttrpc_decoder *d)
{
    free(d->data);
    ttrpc_decoder_init(d, d->take_type);
}

bool ttrpc_decoder_mid_frame(const struct ttrpc_decoder *d)
{
    return d->hdr_have > 0 || d->in_data;
}

size_t ttrpc_decoder_buffered(const struct ttrpc_decoder *d)
{
    return d->data ? d->data_cap : 0;
}

/* Room for need bytes: at least double (so a frame costs O(log n) copies), never past
 * the frame's length, which the header check bounded by TTRPC_MAX_DATA. */
static void grow(struct ttrpc_decoder *d, size_t need)
{
    size_t cap = d->data_cap * 2;
    if (cap < need)
        cap = need;
    if (cap > d->cur.length)
        cap = d->cur.length;
    d->data = ka_xrealloc(d->data, cap);
    d->data_cap = cap;
}

static bool known_type(uint8_t type)
{
    return type == TTRPC_TYPE_REQUEST || type == TTRPC_TYPE_RESPONSE || type == TTRPC_TYPE_DATA;
}

/* Header complete: decide what the data is going to be. */
static enum ttrpc_decode_event start_data(struct ttrpc_decoder *d, struct ttrpc_frame *frame)
{
    ttrpc_header_decode(d->hdr, &d->cur);
    d->hdr_have = 0;
    frame->header = d->cur;
    frame->data = NULL;
    if (d->cur.length > TTRPC_MAX_DATA && !known_type(d->cur.type))
        return TTRPC_DECODE_BAD_TYPE;
    if (d->cur.length > TTRPC_MAX_DATA || d->cur.type != d->take_type) {
        /* Never allocate what the peer claims, nor what this side does not take:
         * skip the bytes as they come. */
        d->skip_left = d->cur.length;
        d->in_data = d->skip_left > 0;
        return d->cur.type != d->take_type ? TTRPC_DECODE_SKIPPED : TTRPC_DECODE_OVERSIZE;
    }
    if (d->cur.length == 0)
        return TTRPC_DECODE_FRAME;
    /* Never allocate what the peer claims either: the buffer grows as bytes come. */
    d->data_cap =
        d->cur.length < TTRPC_DECODER_FIRST_ALLOC ? d->cur.length : TTRPC_DECODER_FIRST_ALLOC;
    d->data = ka_xmalloc(d->data_cap);
    d->data_have = 0;
    d->in_data = true;
    return TTRPC_DECODE_NEED_MORE;
}

size_t ttrpc_decoder_feed(struct ttrpc_decoder *d, const uint8_t *buf, size_t len,
                          enum ttrpc_decode_event *event, struct ttrpc_frame *frame)
{
    size_t used = 0;
    *event = TTRPC_DECODE_NEED_MORE;
    while (used < len) {
        if (!d->in_data) {
            size_t n = TTRPC_HEADER_SIZE - d->hdr_have;
            if (n > len - used)
                n = len - used;
            memcpy(d->hdr + d->hdr_have, buf + used, n);
            d->hdr_have += n;
            used += n;
            if (d->hdr_have < TTRPC_HEADER_SIZE)
                break;
            *event = start_data(d, frame);
            if (*event != TTRPC_DECODE_NEED_MORE)
                return used;
            continue;
        }
        if (d->skip_left > 0 || d->data == NULL) {
            size_t n = d->skip_left;
            if (n > len - used)
                n = len - used;
            d->skip_left -= n;
            used += n;
            if (d->skip_left == 0)
                d->in_data = false;
            continue;
        }
        size_t n = d->cur.length - d->data_have;
        if (n > len - used)
            n = len - used;
        if (d->data_have + n > d->data_cap)
            grow(d, d->data_have + n);
        memcpy(d->data + d->data_have, buf + used, n);
        d->data_have += n;
        used += n;
        if (d->data_have == d->cur.length) {
            frame->header = d->cur;
            frame->data = d->data;
            d->data = NULL;
            d->data_have = 0;
            d->data_cap = 0;
            d->in_data = false;
            *event = TTRPC_DECODE_FRAME;
            return used;
        }
    }
    return used;
}
