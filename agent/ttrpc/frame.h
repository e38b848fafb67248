/* ttrpc frame codec (containerd ttrpc PROTOCOL.md): a 10-byte big-endian header
 * (data length u32, stream id u32, type u8, flags u8) then the data.
 *
 * The decoder is incremental and never allocates more than TTRPC_MAX_DATA: an
 * oversize frame is reported at its header and its bytes are skipped as they
 * arrive, so the connection stays usable (as the Go client does). Nor does it
 * allocate what a header claims: the buffer of a frame starts at
 * TTRPC_DECODER_FIRST_ALLOC at most and doubles as the bytes arrive, so a peer that
 * sends a 4 MiB header and stops costs that first allocation, not 4 MiB.
 *
 * A decoder takes frames of one type (a server requests, a client responses).
 * Frames of any other type, including types this code does not know (a newer
 * peer's, such as the streaming Data frame to a unary server), are announced at
 * their header and their bytes skipped as they arrive, never stored, so the
 * connection stays usable, as containerd's Go server and the Rust server ignore
 * them. Only a header that is both of an unknown type and over TTRPC_MAX_DATA
 * (no ttrpc peer sends that: it is not ttrpc, e.g. "GET / HTTP/1.1") is garbage. */
#ifndef KA_TTRPC_FRAME_H
#define KA_TTRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TTRPC_HEADER_SIZE 10
#define TTRPC_MAX_DATA (4u << 20)
#define TTRPC_DECODER_FIRST_ALLOC (16u << 10)

enum ttrpc_msg_type {
    TTRPC_TYPE_REQUEST = 1,
    TTRPC_TYPE_RESPONSE = 2,
    TTRPC_TYPE_DATA = 3,
};

#define TTRPC_FLAG_REMOTE_CLOSED 0x01
#define TTRPC_FLAG_REMOTE_OPEN 0x02
#define TTRPC_FLAG_NO_DATA 0x04

struct ttrpc_header {
    uint32_t length;
    uint32_t stream_id;
    uint8_t type;
    uint8_t flags;
};

void ttrpc_header_encode(const struct ttrpc_header *h, uint8_t out[TTRPC_HEADER_SIZE]);
void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], struct ttrpc_header *h);

enum ttrpc_decode_event {
    TTRPC_DECODE_NEED_MORE = 0, /* all input consumed, no frame completed */
    TTRPC_DECODE_FRAME,         /* a whole frame of the taken type is in the output */
    TTRPC_DECODE_OVERSIZE,      /* header of a frame over the cap; its data will be skipped */
    TTRPC_DECODE_SKIPPED,       /* header of a frame of another type; its data will be skipped */
    TTRPC_DECODE_BAD_TYPE,      /* unknown type and over the cap: the stream is garbage */
};

struct ttrpc_frame {
    struct ttrpc_header header;
    uint8_t *data; /* malloc'd, owned by the receiver of the event; NULL when length is 0 */
};

struct ttrpc_decoder {
    uint8_t hdr[TTRPC_HEADER_SIZE];
    size_t hdr_have;
    struct ttrpc_header cur;
    uint8_t *data;
    size_t data_cap; /* bytes allocated in data: data_have <= data_cap <= cur.length */
    size_t data_have;
    size_t skip_left;  /* bytes of an oversize or skipped frame still to discard */
    bool in_data;      /* header complete, reading or skipping data */
    uint8_t take_type; /* enum ttrpc_msg_type: the frames handed out; others are skipped */
};

/* A decoder that hands out frames of take_type (enum ttrpc_msg_type). */
void ttrpc_decoder_init(struct ttrpc_decoder *d, uint8_t take_type);
/* Drop partial state (e.g. when a serial host reconnects); keeps take_type. */
void ttrpc_decoder_reset(struct ttrpc_decoder *d);

/* Consume bytes from buf until one event happens or the input is used up.
 * Returns how many bytes were consumed and sets *event; call again with the
 * rest. On any event but NEED_MORE, *frame holds the header (and the data for
 * FRAME). After BAD_TYPE the decoder must not be fed again. */
size_t ttrpc_decoder_feed(struct ttrpc_decoder *d, const uint8_t *buf, size_t len,
                          enum ttrpc_decode_event *event, struct ttrpc_frame *frame);

/* Bytes the decoder holds allocated now (for the server's memory budget). */
size_t ttrpc_decoder_buffered(const struct ttrpc_decoder *d);

/* True while a frame is partly read (used to tell a clean EOF from a truncated one). */
bool ttrpc_decoder_mid_frame(const struct ttrpc_decoder *d);

#endif
