/* ttrpc server on the reactor: any number of connections, many calls in flight on
 * each, responses in any order, each frame written whole.
 *
 * A call is handed to the dispatch function with its payload. The handler either
 * answers at once (ttrpc_call_reply / ttrpc_call_fail) or parks the call
 * (ttrpc_call_park) on whatever it waits for and answers it later. When the
 * connection goes away first, the park's cancel function runs so the owner
 * forgets the call; the call is then freed by the server. */
#ifndef KA_TTRPC_SERVER_H
#define KA_TTRPC_SERVER_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/reactor.h"
#include "ttrpc/frame.h"
#include "ttrpc/transport.h"

/* Longest service or method name accepted; Kata's longest is 31 bytes. */
#define TTRPC_MAX_NAME 256
/* Calls one connection may have in flight; past this new calls get RESOURCE_EXHAUSTED.
 * The shim parks Wait/ReadStdout/ReadStderr per process, so keep it generous. */
#define TTRPC_MAX_CALLS_PER_CONN 4096
/* Stop reading a connection whose peer does not read its responses once this many
 * bytes are queued for it; resume below the low mark. Bounds agent memory. */
#define TTRPC_OUTQ_HIGH (8u << 20)
#define TTRPC_OUTQ_LOW (1u << 20)
/* Largest sent frame kept for reuse by the next bytes reply (one per server). */
#define TTRPC_SPARE_FRAME_MAX (128u << 10)

struct ttrpc_server;
struct ttrpc_conn;
struct ttrpc_call;
struct out_frame;

typedef void (*ttrpc_cancel_fn)(struct ttrpc_call *call);

struct ttrpc_call {
    struct ttrpc_conn *conn;
    uint32_t stream_id;
    char service[TTRPC_MAX_NAME + 1];
    char method[TTRPC_MAX_NAME + 1];
    int64_t timeout_nano;
    struct ttrpc_call *next, *prev; /* the connection's list */
    /* Set by ttrpc_call_park: */
    ttrpc_cancel_fn cancel;
    void *park_data;
    /* Free for the owner of a parked call to chain it into a wait list. */
    struct ttrpc_call *park_next, *park_prev;
};

/* Called once per request. payload is only valid during the call. */
typedef void (*ttrpc_dispatch_fn)(void *ctx, struct ttrpc_call *call, const uint8_t *payload,
                                  size_t len);

struct ttrpc_server {
    struct ka_reactor *reactor;
    ttrpc_dispatch_fn dispatch;
    void *dispatch_ctx;
    int listen_fd;
    struct ka_watch listen_watch;
    int reserve_fd; /* spare fd released to accept-and-drop when out of fds */
    char unix_path[sizeof(((struct ka_addr *)0)->path)];
    struct ttrpc_conn *conns;
    size_t nconns;
    struct out_frame *spare; /* see TTRPC_SPARE_FRAME_MAX */
};

void ttrpc_server_init(struct ttrpc_server *s, struct ka_reactor *r, ttrpc_dispatch_fn dispatch,
                       void *ctx);

/* Serve a vsock or unix address. */
int ttrpc_server_listen(struct ttrpc_server *s, const struct ka_addr *addr, struct ka_error *err);

/* Serve one virtio-serial port (fd from ka_serial_open; the server owns it). The
 * port reads EOF while no host is connected: the server waits for the host with
 * edge-triggered EPOLLOUT (HUP is level and would spin) and starts a fresh
 * connection state each time the host connects again. */
int ttrpc_server_adopt_serial(struct ttrpc_server *s, int fd, struct ka_error *err);

/* Close the listener and every connection (parked calls are cancelled). */
void ttrpc_server_shutdown(struct ttrpc_server *s);

/* Answer a call with a reply message (NULL = google.protobuf.Empty). Frees the call. */
void ttrpc_call_reply(struct ttrpc_call *call, const ProtobufCMessage *reply);
/* Answer a call with an error status. Frees the call. */
void ttrpc_call_fail(struct ttrpc_call *call, enum ka_status status, const char *message);
/* A reply whose message has one bytes field (ReadStreamResponse), built in place: the
 * caller reads straight into the frame and the encoding is put in front of the bytes,
 * so large payloads are not copied. begin returns room for cap bytes; then either
 * send (answers and frees the call; len <= cap) or drop (the call stays as it was). */
struct ttrpc_bytes_reply {
    struct ttrpc_server *server;
    struct out_frame *frame;
    size_t cap;
};
uint8_t *ttrpc_bytes_reply_begin(struct ttrpc_call *call, size_t cap, struct ttrpc_bytes_reply *r);
void ttrpc_bytes_reply_send(struct ttrpc_call *call, uint32_t field, struct ttrpc_bytes_reply *r,
                            size_t len);
void ttrpc_bytes_reply_drop(struct ttrpc_bytes_reply *r);
/* Keep the call for a later answer; cancel runs if the connection goes first. */
void ttrpc_call_park(struct ttrpc_call *call, ttrpc_cancel_fn cancel, void *data);

#endif
