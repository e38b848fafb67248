/* Frame codec: split reads, several frames in one read, zero-length, oversize, truncated,
 * frames of other and unknown types skipped unstored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ttrpc/frame.h"

static size_t put_frame(uint8_t *out, uint32_t sid, uint8_t type, const char *data, uint32_t len)
{
    struct ttrpc_header h = {.length = len, .stream_id = sid, .type = type, .flags = 0};
    ttrpc_header_encode(&h, out);
    if (data)
        memcpy(out + TTRPC_HEADER_SIZE, data, len);
    return TTRPC_HEADER_SIZE + len;
}

static void test_header_roundtrip(void **state)
{
    (void)state;
    uint8_t b[TTRPC_HEADER_SIZE];
    struct ttrpc_header h = {.length = 0x01020304, .stream_id = 0xa0b0c0d1, .type = 2, .flags = 5};
    ttrpc_header_encode(&h, b);
    const uint8_t expect[] = {1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd1, 2, 5};
    assert_memory_equal(b, expect, sizeof(expect));
    struct ttrpc_header back;
    ttrpc_header_decode(b, &back);
    assert_int_equal(back.length, h.length);
    assert_int_equal(back.stream_id, h.stream_id);
    assert_int_equal(back.type, 2);
    assert_int_equal(back.flags, 5);
}

/* Feed one byte at a time: the frame must come out whole exactly at its last byte. */
static void test_split_reads(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_frame(buf, 7, TTRPC_TYPE_REQUEST, "hello", 5);
    struct ttrpc_decoder d;
    ttrpc_decoder_init(&d, TTRPC_TYPE_REQUEST);
    for (size_t i = 0; i < n; i++) {
        enum ttrpc_decode_event ev;
        struct ttrpc_frame fr;
        size_t used = ttrpc_decoder_feed(&d, buf + i, 1, &ev, &fr);
        assert_int_equal(used, 1);
        if (i + 1 < n) {
            assert_int_equal(ev, TTRPC_DECODE_NEED_MORE);
            assert_true(ttrpc_decoder_mid_frame(&d));
        } else {
            assert_int_equal(ev, TTRPC_DECODE_FRAME);
            assert_int_equal(fr.header.stream_id, 7);
            assert_int_equal(fr.header.length, 5);
            assert_memory_equal(fr.data, "hello", 5);
            free(fr.data);
        }
    }
    assert_false(ttrpc_decoder_mid_frame(&d));
    ttrpc_decoder_reset(&d);
}

static void test_several_frames_one_read(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = 0;
    n += put_frame(buf + n, 1, TTRPC_TYPE_REQUEST, "a", 1);
    n += put_frame(buf + n, 3, TTRPC_TYPE_REQUEST, NULL, 0);
    n += put_frame(buf + n, 5, TTRPC_TYPE_DATA, "ccc", 3);   /* not taken: skipped */
    n += put_frame(buf + n, 7, TTRPC_TYPE_REQUEST, "dd", 2); /* cut in half below */
    n -= 1;
    struct ttrpc_decoder d;
    ttrpc_decoder_init(&d, TTRPC_TYPE_REQUEST);
    const uint32_t expect_sid[] = {1, 3, 5};
    const uint32_t expect_len[] = {1, 0, 3};
    const enum ttrpc_decode_event expect_ev[] = {TTRPC_DECODE_FRAME, TTRPC_DECODE_FRAME,
                                                 TTRPC_DECODE_SKIPPED};
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        enum ttrpc_decode_event ev;
        struct ttrpc_frame fr;
        off += ttrpc_decoder_feed(&d, buf + off, n - off, &ev, &fr);
        assert_int_equal(ev, expect_ev[i]);
        assert_int_equal(fr.header.stream_id, expect_sid[i]);
        assert_int_equal(fr.header.length, expect_len[i]);
        if (expect_len[i] == 0)
            assert_null(fr.data);
        free(fr.data);
    }
    enum ttrpc_decode_event ev;
    struct ttrpc_frame fr;
    off += ttrpc_decoder_feed(&d, buf + off, n - off, &ev, &fr);
    assert_int_equal(off, n);
    assert_int_equal(ev, TTRPC_DECODE_NEED_MORE); /* truncated: waits for the last byte */
    assert_true(ttrpc_decoder_mid_frame(&d));
    ttrpc_decoder_feed(&d, (const uint8_t *)"d", 1, &ev, &fr);
    assert_int_equal(ev, TTRPC_DECODE_FRAME);
    assert_memory_equal(fr.data, "dd", 2);
    free(fr.data);
    ttrpc_decoder_reset(&d);
}

/* An oversize frame is announced at its header and skipped without being stored;
 * the frame after it decodes normally. */
static void test_oversize_skipped(void **state)
{
    (void)state;
    const uint32_t big = TTRPC_MAX_DATA + 1;
    uint8_t hdr[TTRPC_HEADER_SIZE];
    struct ttrpc_header h = {.length = big, .stream_id = 9, .type = TTRPC_TYPE_REQUEST};
    ttrpc_header_encode(&h, hdr);
    struct ttrpc_decoder d;
    ttrpc_decoder_init(&d, TTRPC_TYPE_REQUEST);
    enum ttrpc_decode_event ev;
    struct ttrpc_frame fr;
    assert_int_equal(ttrpc_decoder_feed(&d, hdr, sizeof(hdr), &ev, &fr), sizeof(hdr));
    assert_int_equal(ev, TTRPC_DECODE_OVERSIZE);
    assert_int_equal(fr.header.stream_id, 9);
    assert_null(d.data); /* nothing allocated for it */

    uint8_t *junk = calloc(1, 1 << 20);
    uint32_t left = big;
    while (left > 0) {
        uint32_t n = left < (1u << 20) ? left : (1u << 20);
        assert_int_equal(ttrpc_decoder_feed(&d, junk, n, &ev, &fr), n);
        assert_int_equal(ev, TTRPC_DECODE_NEED_MORE);
        left -= n;
    }
    free(junk);
    uint8_t next[32];
    size_t n = put_frame(next, 11, TTRPC_TYPE_REQUEST, "ok", 2);
    assert_int_equal(ttrpc_decoder_feed(&d, next, n, &ev, &fr), n);
    assert_int_equal(ev, TTRPC_DECODE_FRAME);
    assert_int_equal(fr.header.stream_id, 11);
    free(fr.data);
}

static void test_max_size_accepted(void **state)
{
    (void)state;
    uint8_t hdr[TTRPC_HEADER_SIZE];
    struct ttrpc_header h = {.length = TTRPC_MAX_DATA, .stream_id = 1, .type = 1};
    ttrpc_header_encode(&h, hdr);
    struct ttrpc_decoder d;
    ttrpc_decoder_init(&d, TTRPC_TYPE_REQUEST);
    enum ttrpc_decode_event ev;
    struct ttrpc_frame fr;
    ttrpc_decoder_feed(&d, hdr, sizeof(hdr), &ev, &fr);
    assert_int_equal(ev, TTRPC_DECODE_NEED_MORE); /* exactly 4 MiB is allowed */
    ttrpc_decoder_reset(&d);
}

/* A header claiming 4 MiB allocates no more than the first step; the buffer then grows
 * with the bytes that arrive (never past twice what came, plus the first step) and the
 * frame comes out whole and exact. */
static void test_buffer_grows_with_bytes(void **state)
{
    (void)state;
    uint8_t hdr[TTRPC_HEADER_SIZE];
    struct ttrpc_header h = {.length = TTRPC_MAX_DATA, .stream_id = 1, .type = 1};
    ttrpc_header_encode(&h, hdr);
    struct ttrpc_decoder d;
    ttrpc_decoder_init(&d, TTRPC_TYPE_REQUEST);
    enum ttrpc_decode_event ev;
    struct ttrpc_frame fr;
    assert_int_equal(ttrpc_decoder_feed(&d, hdr, sizeof(hdr), &ev, &fr), sizeof(hdr));
    assert_int_equal(ev, TTRPC_DECODE_NEED_MORE);
    assert_true(ttrpc_decoder_buffered(&d) <= TTRPC_DECODER_FIRST_ALLOC);
    uint8_t *data = malloc(TTRPC_MAX_DATA);
    assert_non_null(data);
    for (size_t i = 0; i < TTRPC_MAX_DATA; i++)
        data[i] = (uint8_t)(i * 31 + (i >> 12));
    size_t have = 0, step = 1000; /* odd-sized reads */
    while (have < TTRPC_MAX_DATA - 1) {
        size_t n = have + step > TTRPC_MAX_DATA - 1 ? TTRPC_MAX_DATA - 1 - have : step;
        assert_int_equal(ttrpc_decoder_feed(&d, data + have, n, &ev, &fr), n);
        assert_int_equal(ev, TTRPC_DECODE_NEED_MORE);
        have += n;
        assert_true(ttrpc_decoder_buffered(&d) >= have);
        assert_true(ttrpc_decoder_buffered(&d) <= 2 * have + TTRPC_DECODER_FIRST_ALLOC);
        step = step * 3 / 2 + 7;
    }
    assert_true(ttrpc_decoder_mid_frame(&d));
    assert_int_equal(ttrpc_decoder_feed(&d, data + have, 1, &ev, &fr), 1);
    assert_int_equal(ev, TTRPC_DECODE_FRAME);
    assert_int_equal(fr.header.length, TTRPC_MAX_DATA);
    assert_memory_equal(fr.data, data, TTRPC_MAX_DATA);
    assert_int_equal(ttrpc_decoder_buffered(&d), 0); /* handed over with the frame */
    free(fr.data);
    free(data);
    /* A small frame takes exactly its size. */
    uint8_t small[TTRPC_HEADER_SIZE + 5];
    put_frame(small, 3, 1, "hello", 5);
    ttrpc_decoder_feed(&d, small, TTRPC_HEADER_SIZE + 2, &ev, &fr);
    assert_int_equal(ttrpc_decoder_buffered(&d), 5);
    ttrpc_decoder_reset(&d);
    assert_int_equal(ttrpc_decoder_buffered(&d), 0);
}

/* Frames of a type the decoder does not take, known (Data, Response) or not (a newer
 * peer's), of any size up to the cap: announced at the header, their bytes skipped as
 * they come without a byte stored, and the request after them decodes whole. */
static void test_other_types_skipped(void **state)
{
    (void)state;
    const uint8_t types[] = {TTRPC_TYPE_DATA, TTRPC_TYPE_RESPONSE, 9, 0, 0xff};
    const uint32_t lengths[] = {0, 1, 1u << 20, TTRPC_MAX_DATA};
    uint8_t *junk = calloc(1, 64 * 1024);
    struct ttrpc_decoder d;
    ttrpc_decoder_init(&d, TTRPC_TYPE_REQUEST);
    for (size_t t = 0; t < sizeof(types); t++) {
        for (size_t l = 0; l < sizeof(lengths) / sizeof(*lengths); l++) {
            uint8_t hdr[TTRPC_HEADER_SIZE];
            struct ttrpc_header h = {.length = lengths[l], .stream_id = 3, .type = types[t]};
            ttrpc_header_encode(&h, hdr);
            enum ttrpc_decode_event ev;
            struct ttrpc_frame fr;
            assert_int_equal(ttrpc_decoder_feed(&d, hdr, sizeof(hdr), &ev, &fr), sizeof(hdr));
            assert_int_equal(ev, TTRPC_DECODE_SKIPPED);
            assert_int_equal(fr.header.type, types[t]);
            assert_int_equal(fr.header.length, lengths[l]);
            assert_null(fr.data);
            for (uint32_t left = lengths[l]; left > 0;) {
                size_t n = left < 64 * 1024 ? left : 64 * 1024;
                assert_int_equal(ttrpc_decoder_feed(&d, junk, n, &ev, &fr), n);
                assert_int_equal(ev, TTRPC_DECODE_NEED_MORE);
                assert_int_equal(ttrpc_decoder_buffered(&d), 0); /* never stored */
                left -= (uint32_t)n;
            }
            assert_false(ttrpc_decoder_mid_frame(&d));
            uint8_t next[32];
            size_t n = put_frame(next, 11, TTRPC_TYPE_REQUEST, "ok", 2);
            assert_int_equal(ttrpc_decoder_feed(&d, next, n, &ev, &fr), n);
            assert_int_equal(ev, TTRPC_DECODE_FRAME);
            assert_memory_equal(fr.data, "ok", 2);
            free(fr.data);
        }
    }
    ttrpc_decoder_reset(&d);
    free(junk);
}

/* A client's decoder takes responses and skips requests. */
static void test_client_takes_responses(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_frame(buf, 1, TTRPC_TYPE_REQUEST, "req", 3);
    n += put_frame(buf + n, 1, TTRPC_TYPE_RESPONSE, "resp", 4);
    struct ttrpc_decoder d;
    ttrpc_decoder_init(&d, TTRPC_TYPE_RESPONSE);
    enum ttrpc_decode_event ev;
    struct ttrpc_frame fr;
    size_t off = ttrpc_decoder_feed(&d, buf, n, &ev, &fr);
    assert_int_equal(ev, TTRPC_DECODE_SKIPPED);
    off += ttrpc_decoder_feed(&d, buf + off, n - off, &ev, &fr);
    assert_int_equal(ev, TTRPC_DECODE_FRAME);
    assert_int_equal(off, n);
    assert_memory_equal(fr.data, "resp", 4);
    free(fr.data);
    ttrpc_decoder_reset(&d);
    assert_int_equal(d.take_type, TTRPC_TYPE_RESPONSE); /* reset keeps it */
}

/* A header of an unknown type that also claims more than the cap is not ttrpc at all
 * ("GET / HTTP/1.1" reads as 1.2 GB of type 'T'): garbage, the connection is closed.
 * Over the cap with a known type that is not taken: skipped like the rest. */
static void test_garbage_header(void **state)
{
    (void)state;
    struct ttrpc_decoder d;
    ttrpc_decoder_init(&d, TTRPC_TYPE_REQUEST);
    enum ttrpc_decode_event ev;
    struct ttrpc_frame fr;
    ttrpc_decoder_feed(&d, (const uint8_t *)"GET / HTTP/1.1\r\n", TTRPC_HEADER_SIZE, &ev, &fr);
    assert_int_equal(ev, TTRPC_DECODE_BAD_TYPE);
    assert_int_equal(fr.header.type, 'T');
    ttrpc_decoder_reset(&d);
    uint8_t hdr[TTRPC_HEADER_SIZE];
    struct ttrpc_header h = {.length = TTRPC_MAX_DATA + 1, .stream_id = 3, .type = TTRPC_TYPE_DATA};
    ttrpc_header_encode(&h, hdr);
    ttrpc_decoder_feed(&d, hdr, sizeof(hdr), &ev, &fr);
    assert_int_equal(ev, TTRPC_DECODE_SKIPPED);
    assert_int_equal(ttrpc_decoder_buffered(&d), 0);
    ttrpc_decoder_reset(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip),        cmocka_unit_test(test_split_reads),
        cmocka_unit_test(test_several_frames_one_read), cmocka_unit_test(test_oversize_skipped),
        cmocka_unit_test(test_max_size_accepted),       cmocka_unit_test(test_other_types_skipped),
        cmocka_unit_test(test_client_takes_responses),  cmocka_unit_test(test_garbage_header),
        cmocka_unit_test(test_buffer_grows_with_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
