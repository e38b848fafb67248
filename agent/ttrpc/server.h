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
/* Stop reading a connection whose peer does not read its responses once its queued
 * frames hold this much memory (allocations, not wire bytes: a flood of tiny replies
 * costs several times its size); resume below the low mark. Bounds agent memory. */
#define TTRPC_OUTQ_HIGH (8u << 20)
#define TTRPC_OUTQ_LOW (1u << 20)
/* Largest sent frame kept for reuse by the next bytes reply (one per server). */
#define TTRPC_SPARE_FRAME_MAX (128u << 10)

/* What a host can make the agent buffer is bounded, even when it means harm:
 *
 * TTRPC_MAX_CONNS connections at once (the Kata shim uses a handful). Past it a new
 *   connection is accepted and closed at once, and logged.
 * Receive buffers grow with the bytes that arrive (frame.h), not with what a header
 *   claims.
 * TTRPC_BUDGET for all connections together: receive buffers, bytes read but not yet
 *   decoded, queued output (frames as allocated) and objects kept with parked calls
 *   (ttrpc_call_hold). Once the total passes it, a connection buffering more
 *   than TTRPC_CONN_RESERVE is not read (EPOLLIN off) until the total is back under
 *   TTRPC_BUDGET_RESUME. Nothing is dropped: a frame half read stays half read. The
 *   reserve keeps small calls (Health, the shim's usual traffic) served meanwhile.
 * TTRPC_HELD_MAX of requests kept by one connection's parked calls (a WriteStdin to a
 *   full pipe); past it the connection is not read until its calls are answered, so a
 *   host cannot park an unbounded number of large writes. Below it, the connection
 *   stays served, so one container that does not read its stdin cannot stall the
 *   shim's only connection.
 *
 * So the bytes buffered stay under about TTRPC_BUDGET + one growth step (a frame's
 * buffer doubles, at most 2 MiB) + TTRPC_MAX_CONNS times a few reserves + the request
 * being handled (up to three 4 MiB copies while its layers are decoded) and its reply:
 * about 100 MiB in the worst case. integration/test_hostile_host runs the review's
 * three attacks at once (100 half-sent 4 MiB frames, unread GetMetrics replies,
 * 100 x 4 MiB WriteStdin to a container that never reads) and sees 65-85 MB of RSS,
 * asserting 128 MiB; once the attackers leave, the memory goes back to the kernel
 * (big frames are mapped, and the heap is trimmed after a burst). */
#define TTRPC_MAX_CONNS 128
#define TTRPC_BUDGET (64u << 20)
#define TTRPC_BUDGET_RESUME (48u << 20)
#define TTRPC_CONN_RESERVE (64u << 10)
#define TTRPC_HELD_MAX (8u << 20)

struct ttrpc_server;
struct ttrpc_conn;
struct ttrpc_call;
struct ttrpc_hold;
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
    /* Objects kept with the call by ttrpc_call_hold, released when it is freed. */
    struct ttrpc_hold *holds;
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
    struct out_frame *spare;                              /* see TTRPC_SPARE_FRAME_MAX */
    char where[sizeof(((struct ka_addr *)0)->path) + 16]; /* the listener, for logs */
    size_t cap_refusals; /* connections closed at TTRPC_MAX_CONNS */
    /* The memory budget (see TTRPC_BUDGET). */
    size_t buffered;  /* bytes charged by every connection */
    bool over_budget; /* passed TTRPC_BUDGET, not yet back under TTRPC_BUDGET_RESUME */
    size_t peak;      /* most buffered since the heap was last trimmed */
    /* Wakes connections that may read again while nothing new arrives on their socket
     * (bytes already read wait for them), outside whatever handler made room. */
    int kick_fd;
    struct ka_watch kick_watch;
    bool kicked;
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
/* Keep obj with the call until it is answered, failed or cancelled, then release(obj)
 * (after the answer is encoded and after the park's cancel function). For a handler
 * that must keep using memory after it returns (WriteStdin into a full pipe keeps its
 * decoded request rather than copying the data): bytes count against the connection
 * (TTRPC_HELD_MAX) and the server's budget meanwhile. A call may hold several. */
void ttrpc_call_hold(struct ttrpc_call *call, void *obj, size_t bytes, void (*release)(void *obj));

#endif
