#include "ttrpc/client.h"
#include "core/util.h"
#include "ttrpc.pb-c.h"
#include "ttrpc/transport.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void ttrpc_client_adopt(struct ttrpc_client *c, int fd)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->next_stream = 1;
    ttrpc_decoder_init(&c->dec, TTRPC_TYPE_RESPONSE);
}

int ttrpc_client_open(struct ttrpc_client *c, const char *address, struct ka_error *err)
{
    struct ka_addr addr;
    if (ka_addr_parse(address, &addr, err) < 0)
        return -1;
    int fd = ka_addr_connect(&addr, err);
    if (fd < 0)
        return -1;
    ttrpc_client_adopt(c, fd);
    return 0;
}

void ttrpc_client_close(struct ttrpc_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    ttrpc_decoder_reset(&c->dec);
}

static int write_all(int fd, const uint8_t *p, size_t len, struct ka_error *err)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK) /* a serial line or pty */
            n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ka_error_set(err, errno, "ttrpc send");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ttrpc_client_send(struct ttrpc_client *c, const char *service, const char *method,
                      const uint8_t *payload, size_t len, int64_t timeout_nano, uint32_t *stream_id,
                      struct ka_error *err)
{
    Ttrpc__Request req = TTRPC__REQUEST__INIT;
    req.service = (char *)service;
    req.method = (char *)method;
    req.payload.data = (uint8_t *)payload;
    req.payload.len = len;
    req.timeout_nano = timeout_nano;
    size_t body = ttrpc__request__get_packed_size(&req);
    if (body > TTRPC_MAX_DATA)
        return ka_error_status_set(err, KA_STATUS_RESOURCE_EXHAUSTED,
                                   "request of %zu bytes exceeds the 4 MiB ttrpc limit", body);
    cleanup_free uint8_t *frame = ka_xmalloc(TTRPC_HEADER_SIZE + body);
    struct ttrpc_header h = {.length = (uint32_t)body,
                             .stream_id = c->next_stream,
                             .type = TTRPC_TYPE_REQUEST,
                             .flags = 0};
    ttrpc_header_encode(&h, frame);
    ttrpc__request__pack(&req, frame + TTRPC_HEADER_SIZE);
    if (write_all(c->fd, frame, TTRPC_HEADER_SIZE + body, err) < 0)
        return -1;
    if (stream_id)
        *stream_id = c->next_stream;
    c->next_stream += 2;
    return 0;
}

static int decode_reply(const struct ttrpc_frame *fr, struct ttrpc_reply *reply,
                        struct ka_error *err)
{
    memset(reply, 0, sizeof(*reply));
    reply->stream_id = fr->header.stream_id;
    Ttrpc__Response *resp = ttrpc__response__unpack(NULL, fr->header.length, fr->data);
    if (!resp)
        return ka_error_set(err, EBADMSG, "invalid ttrpc response on stream %u",
                            fr->header.stream_id);
    reply->code = resp->status ? resp->status->code : 0;
    reply->message = ka_xstrdup(resp->status && resp->status->message ? resp->status->message : "");
    if (resp->payload.len) {
        reply->payload = ka_xmalloc(resp->payload.len);
        memcpy(reply->payload, resp->payload.data, resp->payload.len);
        reply->payload_len = resp->payload.len;
    }
    ttrpc__response__free_unpacked(resp, NULL);
    return 0;
}

int ttrpc_client_recv(struct ttrpc_client *c, struct ttrpc_reply *reply, struct ka_error *err)
{
    for (;;) {
        while (c->buf_off < c->buf_len) {
            enum ttrpc_decode_event ev;
            struct ttrpc_frame fr;
            c->buf_off +=
                ttrpc_decoder_feed(&c->dec, c->buf + c->buf_off, c->buf_len - c->buf_off, &ev, &fr);
            if (ev == TTRPC_DECODE_FRAME) { /* a response: other types are skipped */
                int rc = decode_reply(&fr, reply, err);
                free(fr.data);
                return rc;
            }
            if (ev == TTRPC_DECODE_OVERSIZE) {
                memset(reply, 0, sizeof(*reply));
                reply->stream_id = fr.header.stream_id;
                reply->code = KA_STATUS_RESOURCE_EXHAUSTED;
                reply->message = ka_xstrdup("response exceeds the 4 MiB ttrpc limit");
                return 0;
            }
            if (ev == TTRPC_DECODE_BAD_TYPE)
                return ka_error_set(err, EPROTO, "ttrpc: bad frame type %u", fr.header.type);
        }
        ssize_t n = read(c->fd, c->buf, sizeof(c->buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ka_error_set(err, errno, "ttrpc receive");
        if (n == 0)
            return ka_error_status_set(err, KA_STATUS_UNAVAILABLE, "ttrpc: closed");
        c->buf_len = (size_t)n;
        c->buf_off = 0;
    }
}

void ttrpc_reply_free(struct ttrpc_reply *reply)
{
    free(reply->message);
    free(reply->payload);
    memset(reply, 0, sizeof(*reply));
}

int ttrpc_client_call(struct ttrpc_client *c, const char *service, const char *method,
                      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                      ProtobufCMessage **resp, struct ka_error *err)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    cleanup_free uint8_t *payload = ka_xmalloc(len);
    protobuf_c_message_pack(req, payload);
    uint32_t sid;
    if (ttrpc_client_send(c, service, method, payload, len, 0, &sid, err) < 0)
        return -1;
    for (;;) {
        struct ttrpc_reply reply;
        if (ttrpc_client_recv(c, &reply, err) < 0)
            return -1;
        if (reply.stream_id != sid) {
            ttrpc_reply_free(&reply);
            continue; /* an answer to a call pipelined earlier; not ours */
        }
        int rc = 0;
        if (reply.code != 0) {
            rc = ka_error_status_set(err, (enum ka_status)reply.code, "%s", reply.message);
        } else {
            *resp = protobuf_c_message_unpack(resp_desc, NULL, reply.payload_len, reply.payload);
            if (!*resp)
                rc = ka_error_set(err, EBADMSG, "reply is not a valid %s", resp_desc->name);
        }
        ttrpc_reply_free(&reply);
        return rc;
    }
}
