/* A small blocking ttrpc client (agent-ctl, tests, benchmarks). Calls can be
 * pipelined: send several, then receive the responses in whatever order they come. */
#ifndef KA_TTRPC_CLIENT_H
#define KA_TTRPC_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "ttrpc/frame.h"

struct ttrpc_client {
    int fd;
    uint32_t next_stream;
    struct ttrpc_decoder dec;
    uint8_t buf[64 * 1024];
    size_t buf_len, buf_off;
};

struct ttrpc_reply {
    uint32_t stream_id;
    int code;         /* 0 = OK */
    char *message;    /* status message, malloc'd ("" when none) */
    uint8_t *payload; /* reply message bytes, malloc'd (may be NULL) */
    size_t payload_len;
};

/* Connect to vsock://CID:PORT or unix:///path. */
int ttrpc_client_open(struct ttrpc_client *c, const char *address, struct ka_error *err);
/* Use an already connected fd (owned by the client from then on). */
void ttrpc_client_adopt(struct ttrpc_client *c, int fd);
void ttrpc_client_close(struct ttrpc_client *c);

/* Send one request; *stream_id gets the stream it went out on. */
int ttrpc_client_send(struct ttrpc_client *c, const char *service, const char *method,
                      const uint8_t *payload, size_t len, int64_t timeout_nano, uint32_t *stream_id,
                      struct ka_error *err);
/* Receive the next response (any stream). */
int ttrpc_client_recv(struct ttrpc_client *c, struct ttrpc_reply *reply, struct ka_error *err);
void ttrpc_reply_free(struct ttrpc_reply *reply);

/* One unary call: pack req, send, wait for its response, unpack it as resp_desc.
 * A non-OK status becomes an error carrying that status code and message. */
int ttrpc_client_call(struct ttrpc_client *c, const char *service, const char *method,
                      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                      ProtobufCMessage **resp, struct ka_error *err);

#endif
