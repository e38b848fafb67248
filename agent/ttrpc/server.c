#include "ttrpc/server.h"
#include "core/log.h"
#include "core/util.h"
#include "ttrpc.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct out_frame {
    struct out_frame *next;
    size_t cap; /* bytes allocated in data */
    size_t len; /* the frame ends at data + len */
    size_t off; /* next byte to send (a frame built in place starts past 0) */
    uint8_t data[];
};

static struct out_frame *frame_new(size_t cap)
{
    struct out_frame *f = ka_xmalloc(sizeof(*f) + cap);
    f->cap = cap;
    return f;
}

/* Done with a frame. One of stream size is kept for the next bytes reply, so that a
 * ReadStdout loop does not allocate per call. */
static void frame_release(struct ttrpc_server *s, struct out_frame *f)
{
    if (f->cap <= TTRPC_SPARE_FRAME_MAX && (!s->spare || s->spare->cap < f->cap)) {
        free(s->spare);
        s->spare = f;
        return;
    }
    free(f);
}

enum conn_kind {
    CONN_SOCKET,
    CONN_SERIAL,
};

struct ttrpc_conn {
    struct ttrpc_server *server;
    struct ka_watch watch;
    int fd;
    enum conn_kind kind;
    bool host_connected; /* serial only: false while waiting for the host */
    bool read_paused;    /* peer is not reading its responses */
    unsigned busy;       /* inside this connection's event handler */
    bool dead;           /* close once the handler unwinds */
    struct ttrpc_decoder dec;
    struct out_frame *out_head, *out_tail;
    size_t out_bytes;
    struct ttrpc_call *calls;
    size_t ncalls;
    struct ttrpc_conn *next, *prev;
};

static void conn_event(struct ka_watch *w, uint32_t events);

/* ---- connection bookkeeping ------------------------------------------------------ */

static void conn_update_events(struct ttrpc_conn *c)
{
    uint32_t ev;
    if (c->kind == CONN_SERIAL && !c->host_connected)
        ev = EPOLLOUT | EPOLLET; /* see ttrpc_server_adopt_serial */
    else
        ev = (c->read_paused ? 0 : EPOLLIN) | (c->out_head ? EPOLLOUT : 0);
    struct ka_error err;
    if (ka_reactor_mod(&c->watch, ev, &err) < 0)
        ka_log(KA_LOG_WARN, "ttrpc", "%s", err.msg);
}

/* Forget everything in flight: parked calls are cancelled, queued output dropped. */
static void conn_reset_state(struct ttrpc_conn *c)
{
    while (c->calls) {
        struct ttrpc_call *call = c->calls;
        c->calls = call->next;
        if (call->cancel)
            call->cancel(call);
        free(call);
    }
    c->ncalls = 0;
    while (c->out_head) {
        struct out_frame *f = c->out_head;
        c->out_head = f->next;
        frame_release(c->server, f);
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
    c->read_paused = false;
    ttrpc_decoder_reset(&c->dec);
}

static void conn_destroy(struct ttrpc_conn *c)
{
    struct ttrpc_server *s = c->server;
    ka_reactor_del(&c->watch);
    conn_reset_state(c);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    free(c);
}

/* The peer is gone or broke the protocol. A serial port stays open and waits for
 * the host to come back; a socket connection is closed. */
static void conn_lost(struct ttrpc_conn *c, const char *why)
{
    ka_log_kv(KA_LOG_DEBUG, "ttrpc", "connection lost", "reason", why, NULL);
    if (c->kind == CONN_SERIAL) {
        conn_reset_state(c);
        c->host_connected = false;
        conn_update_events(c);
        return;
    }
    if (c->busy)
        c->dead = true;
    else
        conn_destroy(c);
}

static struct ttrpc_conn *conn_new(struct ttrpc_server *s, int fd, enum conn_kind kind,
                                   struct ka_error *err)
{
    struct ttrpc_conn *c = ka_xcalloc(1, sizeof(*c));
    c->server = s;
    c->fd = fd;
    c->kind = kind;
    ttrpc_decoder_init(&c->dec);
    uint32_t ev = kind == CONN_SERIAL ? EPOLLOUT | EPOLLET : EPOLLIN;
    if (ka_reactor_add(s->reactor, &c->watch, fd, ev, conn_event, c, err) < 0) {
        free(c);
        return NULL;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    return c;
}

/* ---- output ------------------------------------------------------------------ */

/* Write queued frames until done or the socket is full. Returns -1 when the peer is gone. */
static int conn_flush(struct ttrpc_conn *c)
{
    while (c->out_head) {
        struct out_frame *f = c->out_head;
        ssize_t n = send(c->fd, f->data + f->off, f->len - f->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == ENOTSOCK)
            n = write(c->fd, f->data + f->off, f->len - f->off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        f->off += (size_t)n;
        c->out_bytes -= (size_t)n;
        if (f->off == f->len) {
            c->out_head = f->next;
            if (!c->out_head)
                c->out_tail = NULL;
            frame_release(c->server, f);
        }
    }
    if (c->read_paused && c->out_bytes < TTRPC_OUTQ_LOW)
        c->read_paused = false;
    else if (!c->read_paused && c->out_bytes > TTRPC_OUTQ_HIGH)
        c->read_paused = true;
    conn_update_events(c);
    return 0;
}

/* Queue one whole frame (f->data[f->off, f->len)) and try to send it now. */
static void conn_send(struct ttrpc_conn *c, struct out_frame *f)
{
    if (c->kind == CONN_SERIAL && !c->host_connected) {
        /* nobody to read it; the host starts afresh when it connects */
        frame_release(c->server, f);
        return;
    }
    f->next = NULL;
    if (c->out_tail)
        c->out_tail->next = f;
    else
        c->out_head = f;
    c->out_tail = f;
    c->out_bytes += f->len - f->off;
    if (conn_flush(c) < 0)
        conn_lost(c, "write failed");
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* A ttrpc.Response{1: status, 2: payload} frame is: header, status field, then the
 * payload field's tag and length, then payload_len bytes of the reply message. */
struct response_layout {
    Ttrpc__Status status;
    size_t status_len;
    size_t payload_len;
    size_t body;   /* frame data length */
    size_t prefix; /* bytes before the reply message */
};

/* False when the frame would exceed the ttrpc limit. */
static bool response_layout(struct response_layout *l, enum ka_status code, const char *message,
                            size_t payload_len)
{
    l->status = (Ttrpc__Status)TTRPC__STATUS__INIT;
    l->status.code = (int32_t)code;
    l->status.message = (char *)(message ? message : "");
    l->status_len = ttrpc__status__get_packed_size(&l->status);
    l->payload_len = payload_len;
    l->body = 1 + varint_size(l->status_len) + l->status_len;
    if (payload_len)
        l->body += 1 + varint_size(payload_len);
    l->prefix = TTRPC_HEADER_SIZE + l->body;
    l->body += payload_len;
    return l->body <= TTRPC_MAX_DATA;
}

static void response_prefix_put(const struct response_layout *l, uint32_t stream_id, uint8_t *p)
{
    struct ttrpc_header h = {.length = (uint32_t)l->body,
                             .stream_id = stream_id,
                             .type = TTRPC_TYPE_RESPONSE,
                             .flags = 0};
    ttrpc_header_encode(&h, p);
    p += TTRPC_HEADER_SIZE;
    *p++ = 0x0a; /* field 1, length-delimited */
    p += varint_put(p, l->status_len);
    p += ttrpc__status__pack(&l->status, p);
    if (l->payload_len) {
        *p++ = 0x12; /* field 2, length-delimited */
        varint_put(p, l->payload_len);
    }
}

/* Encode a Response frame; the reply message is packed straight into it. */
static struct out_frame *build_response(uint32_t stream_id, enum ka_status code,
                                        const char *message, const ProtobufCMessage *reply)
{
    struct response_layout l;
    if (!response_layout(&l, code, message, reply ? protobuf_c_message_get_packed_size(reply) : 0))
        return NULL;
    struct out_frame *f = frame_new(l.prefix + l.payload_len);
    f->off = 0;
    f->len = l.prefix + l.payload_len;
    response_prefix_put(&l, stream_id, f->data);
    if (l.payload_len)
        protobuf_c_message_pack(reply, f->data + l.prefix);
    return f;
}

static void send_status(struct ttrpc_conn *c, uint32_t stream_id, enum ka_status code,
                        const char *message)
{
    struct out_frame *f = build_response(stream_id, code, message, NULL);
    if (f)
        conn_send(c, f);
}

/* ---- calls ------------------------------------------------------------------- */

static void call_unlink(struct ttrpc_call *call)
{
    struct ttrpc_conn *c = call->conn;
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    c->ncalls--;
}

void ttrpc_call_reply(struct ttrpc_call *call, const ProtobufCMessage *reply)
{
    struct ttrpc_conn *c = call->conn;
    uint32_t stream_id = call->stream_id;
    call_unlink(call);
    free(call);
    struct out_frame *f = build_response(stream_id, KA_STATUS_OK, NULL, reply);
    if (!f) {
        send_status(c, stream_id, KA_STATUS_RESOURCE_EXHAUSTED,
                    "response larger than the 4 MiB ttrpc limit");
        return;
    }
    conn_send(c, f);
}

/* Room before the bytes of a bytes reply for everything in front of them: frame header,
 * empty status field (2 bytes), payload tag, two length varints and the field tag. */
#define BYTES_REPLY_ROOM (TTRPC_HEADER_SIZE + 2 + 1 + 5 + 5 + 5)

uint8_t *ttrpc_bytes_reply_begin(struct ttrpc_call *call, size_t cap, struct ttrpc_bytes_reply *r)
{
    struct ttrpc_server *s = call->conn->server;
    size_t need = BYTES_REPLY_ROOM + cap;
    struct out_frame *f;
    if (s->spare && s->spare->cap >= need) {
        f = s->spare;
        s->spare = NULL;
    } else {
        f = frame_new(need);
    }
    r->server = s;
    r->frame = f;
    r->cap = cap;
    return f->data + BYTES_REPLY_ROOM;
}

void ttrpc_bytes_reply_drop(struct ttrpc_bytes_reply *r)
{
    if (r->frame)
        frame_release(r->server, r->frame);
    r->frame = NULL;
}

void ttrpc_bytes_reply_send(struct ttrpc_call *call, uint32_t field, struct ttrpc_bytes_reply *r,
                            size_t len)
{
    struct out_frame *f = r->frame;
    r->frame = NULL;
    if (len > r->cap)
        len = r->cap; /* a caller bug; never send bytes that were not filled */
    /* The message as protobuf packs it: a bytes field is left out when empty. */
    uint32_t tag = field << 3 | 2; /* length-delimited */
    size_t msg_head = len ? varint_size(tag) + varint_size(len) : 0;
    struct response_layout l;
    if (field == 0 || field >= 1u << 29 ||
        !response_layout(&l, KA_STATUS_OK, NULL, msg_head + len) ||
        l.prefix + msg_head > BYTES_REPLY_ROOM) {
        frame_release(r->server, f);
        ttrpc_call_fail(call, KA_STATUS_RESOURCE_EXHAUSTED,
                        "response larger than the 4 MiB ttrpc limit");
        return;
    }
    uint8_t *data = f->data + BYTES_REPLY_ROOM;
    f->off = BYTES_REPLY_ROOM - msg_head - l.prefix;
    f->len = BYTES_REPLY_ROOM + len;
    response_prefix_put(&l, call->stream_id, f->data + f->off);
    if (len) {
        uint8_t *p = data - msg_head;
        p += varint_put(p, tag);
        varint_put(p, len);
    }
    struct ttrpc_conn *c = call->conn;
    call_unlink(call);
    free(call);
    conn_send(c, f);
}

void ttrpc_call_fail(struct ttrpc_call *call, enum ka_status status, const char *message)
{
    struct ttrpc_conn *c = call->conn;
    uint32_t stream_id = call->stream_id;
    call_unlink(call);
    free(call);
    /* An overlong message would make the frame oversize; cut it rather than lose it. */
    char cut[4096];
    if (message && strlen(message) >= sizeof(cut)) {
        memcpy(cut, message, sizeof(cut) - 1);
        cut[sizeof(cut) - 1] = '\0';
        message = cut;
    }
    send_status(c, stream_id, status, message);
}

void ttrpc_call_park(struct ttrpc_call *call, ttrpc_cancel_fn cancel, void *data)
{
    call->cancel = cancel;
    call->park_data = data;
}

static struct ttrpc_call *find_call(struct ttrpc_conn *c, uint32_t stream_id)
{
    for (struct ttrpc_call *call = c->calls; call; call = call->next)
        if (call->stream_id == stream_id)
            return call;
    return NULL;
}

static bool copy_name(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n > TTRPC_MAX_NAME)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static void handle_request(struct ttrpc_conn *c, const struct ttrpc_frame *fr)
{
    uint32_t sid = fr->header.stream_id;
    if ((sid & 1) == 0) {
        send_status(c, sid, KA_STATUS_INVALID_ARGUMENT, "stream id must be odd");
        return;
    }
    if (find_call(c, sid)) {
        send_status(c, sid, KA_STATUS_INVALID_ARGUMENT, "stream id is already in use");
        return;
    }
    if (c->ncalls >= TTRPC_MAX_CALLS_PER_CONN) {
        send_status(c, sid, KA_STATUS_RESOURCE_EXHAUSTED, "too many requests in flight");
        return;
    }
    Ttrpc__Request *req = ttrpc__request__unpack(NULL, fr->header.length, fr->data);
    if (!req) {
        send_status(c, sid, KA_STATUS_INVALID_ARGUMENT, "invalid ttrpc request frame");
        return;
    }
    struct ttrpc_call *call = ka_xcalloc(1, sizeof(*call));
    if (!copy_name(call->service, req->service) || !copy_name(call->method, req->method)) {
        free(call);
        ttrpc__request__free_unpacked(req, NULL);
        send_status(c, sid, KA_STATUS_INVALID_ARGUMENT, "service or method name too long");
        return;
    }
    call->conn = c;
    call->stream_id = sid;
    call->timeout_nano = req->timeout_nano;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->ncalls++;
    c->server->dispatch(c->server->dispatch_ctx, call, req->payload.data, req->payload.len);
    ttrpc__request__free_unpacked(req, NULL);
}

/* ---- input ------------------------------------------------------------------- */

/* Still reading this peer? Not once the connection is lost, or (serial) the host left. */
static bool conn_alive(const struct ttrpc_conn *c)
{
    return !c->dead && (c->kind != CONN_SERIAL || c->host_connected);
}

/* Returns false when the connection must stop reading (lost or protocol error). */
static bool conn_consume(struct ttrpc_conn *c, const uint8_t *buf, size_t len)
{
    while (len > 0 && conn_alive(c)) {
        enum ttrpc_decode_event ev;
        struct ttrpc_frame fr;
        size_t used = ttrpc_decoder_feed(&c->dec, buf, len, &ev, &fr);
        buf += used;
        len -= used;
        switch (ev) {
        case TTRPC_DECODE_NEED_MORE:
            break;
        case TTRPC_DECODE_FRAME:
            if (fr.header.type == TTRPC_TYPE_REQUEST)
                handle_request(c, &fr);
            /* Kata's calls are unary: Data and Response frames from a client mean nothing. */
            free(fr.data);
            break;
        case TTRPC_DECODE_OVERSIZE:
            if (fr.header.type == TTRPC_TYPE_REQUEST)
                send_status(c, fr.header.stream_id, KA_STATUS_RESOURCE_EXHAUSTED,
                            "message length exceeds the 4 MiB ttrpc limit");
            break;
        case TTRPC_DECODE_BAD_TYPE:
            ka_log(KA_LOG_WARN, "ttrpc", "unknown frame type %u: closing connection",
                   fr.header.type);
            conn_lost(c, "protocol error");
            return false;
        }
    }
    return conn_alive(c);
}

static void conn_read(struct ttrpc_conn *c)
{
    uint8_t buf[64 * 1024];
    /* Bounded reads per wake-up so one busy peer cannot starve the others. */
    for (int round = 0; round < 16 && !c->read_paused; round++) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            conn_lost(c, strerror(errno));
            return;
        }
        if (n == 0) {
            conn_lost(c, ttrpc_decoder_mid_frame(&c->dec) ? "eof mid-frame" : "eof");
            return;
        }
        if (!conn_consume(c, buf, (size_t)n))
            return;
        /* A short read drained the socket: another read would only say EAGAIN, and
         * the level-triggered loop brings us back when more arrives. */
        if ((size_t)n < sizeof(buf))
            return;
    }
}

static void conn_event(struct ka_watch *w, uint32_t events)
{
    struct ttrpc_conn *c = w->data;
    c->busy++;
    if (c->kind == CONN_SERIAL && !c->host_connected) {
        /* EPOLLHUP stays up while no host has the port open; EPOLLOUT alone means one has. */
        if (!(events & EPOLLHUP) && (events & EPOLLOUT)) {
            ka_log(KA_LOG_INFO, "ttrpc", "serial host connected");
            conn_reset_state(c);
            c->host_connected = true;
            conn_update_events(c);
        }
    } else {
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            conn_read(c);
        if (!c->dead && (events & EPOLLOUT) && conn_flush(c) < 0)
            conn_lost(c, "write failed");
    }
    c->busy--;
    if (c->dead && c->busy == 0)
        conn_destroy(c);
}

/* ---- listener ---------------------------------------------------------------- */

static void listener_event(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ttrpc_server *s = w->data;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && s->reserve_fd >= 0) {
                /* Out of fds: the pending connection would wake us for ever. Use the
                 * reserve to accept and drop it, then take the reserve back. */
                close(s->reserve_fd);
                int drop = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (drop >= 0)
                    close(drop);
                s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                ka_log(KA_LOG_WARN, "ttrpc", "out of file descriptors: connection refused");
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ka_log(KA_LOG_WARN, "ttrpc", "accept: %s", strerror(errno));
            return;
        }
        struct ka_error err;
        if (!conn_new(s, fd, CONN_SOCKET, &err)) {
            ka_log(KA_LOG_WARN, "ttrpc", "%s", err.msg);
            close(fd);
        }
    }
}

void ttrpc_server_init(struct ttrpc_server *s, struct ka_reactor *r, ttrpc_dispatch_fn dispatch,
                       void *ctx)
{
    memset(s, 0, sizeof(*s));
    s->reactor = r;
    s->dispatch = dispatch;
    s->dispatch_ctx = ctx;
    s->listen_fd = -1;
    s->reserve_fd = -1;
}

int ttrpc_server_listen(struct ttrpc_server *s, const struct ka_addr *addr, struct ka_error *err)
{
    int fd = ka_addr_listen(addr, err);
    if (fd < 0)
        return fd;
    if (ka_reactor_add(s->reactor, &s->listen_watch, fd, EPOLLIN, listener_event, s, err) < 0) {
        close(fd);
        return -1;
    }
    s->listen_fd = fd;
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (addr->kind == KA_ADDR_UNIX)
        snprintf(s->unix_path, sizeof(s->unix_path), "%s", addr->path);
    return 0;
}

int ttrpc_server_adopt_serial(struct ttrpc_server *s, int fd, struct ka_error *err)
{
    if (!conn_new(s, fd, CONN_SERIAL, err)) {
        close(fd);
        return -1;
    }
    return 0;
}

void ttrpc_server_shutdown(struct ttrpc_server *s)
{
    if (s->listen_fd >= 0) {
        ka_reactor_del(&s->listen_watch);
        close(s->listen_fd);
        s->listen_fd = -1;
        if (s->unix_path[0])
            unlink(s->unix_path);
    }
    free(s->spare);
    s->spare = NULL;
    if (s->reserve_fd >= 0) {
        close(s->reserve_fd);
        s->reserve_fd = -1;
    }
    while (s->conns)
        conn_destroy(s->conns);
}
