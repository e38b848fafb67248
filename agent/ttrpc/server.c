#include "ttrpc/server.h"
#include "core/log.h"
#include "core/util.h"
#include "ttrpc.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
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
    size_t out_bytes; /* memory held by queued frames (frame_charge), not wire bytes */
    struct ttrpc_call *calls;
    size_t ncalls;
    struct ttrpc_conn *next, *prev;
    /* Bytes read but not decoded yet: the connection stopped being read in the middle
     * of a read (budget, held requests, output queue); decoded first when it resumes. */
    uint8_t *pending;
    size_t pending_off, pending_len;
    /* The memory budget: what this connection has charged, and parts of it. */
    size_t charged;
    size_t rx_charged; /* the decoder's buffer, and a frame being handled */
    size_t held;       /* bytes kept with calls (ttrpc_call_hold) */
};

static void conn_event(struct ka_watch *w, uint32_t events);

#define TTRPC_MMAP_THRESHOLD (128 * 1024)
/* Give freed heap pages back once buffered bytes fall under TRIM_BELOW after having
 * passed TRIM_AFTER. */
#define TTRPC_TRIM_AFTER (8u << 20)
#define TTRPC_TRIM_BELOW (1u << 20)

/* ---- the memory budget ------------------------------------------------------- */

static void server_kick(struct ttrpc_server *s)
{
    if (s->kicked || s->kick_fd < 0)
        return;
    uint64_t one = 1;
    if (write(s->kick_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
        s->kicked = true;
}

static void charge(struct ttrpc_conn *c, size_t n)
{
    struct ttrpc_server *s = c->server;
    c->charged += n;
    s->buffered += n;
    if (s->buffered > s->peak)
        s->peak = s->buffered;
    if (s->buffered > TTRPC_BUDGET && !s->over_budget) {
        s->over_budget = true;
        ka_log_kv(KA_LOG_WARN, "ttrpc", "buffer budget spent: pausing connections that hold more",
                  NULL);
    }
}

static void uncharge(struct ttrpc_conn *c, size_t n)
{
    struct ttrpc_server *s = c->server;
    c->charged -= n;
    s->buffered -= n;
    if (s->over_budget && s->buffered <= TTRPC_BUDGET_RESUME) {
        s->over_budget = false;
        server_kick(s); /* every paused connection may read again */
    }
    if (s->buffered < TTRPC_TRIM_BELOW && s->peak >= TTRPC_TRIM_AFTER) {
        /* A burst is over. Small blocks (replies, first steps of receive buffers) came
         * from the heap, and free() only gives back its top: hand the free pages in
         * the middle back too, so the agent's RSS returns to where it was. */
        malloc_trim(0);
        s->peak = s->buffered;
    }
}

/* Bring the charge for the receive side to what the decoder holds, plus extra (a
 * frame handed out of the decoder and being handled). */
static void charge_rx(struct ttrpc_conn *c, size_t extra)
{
    size_t now = ttrpc_decoder_buffered(&c->dec) + extra;
    if (now > c->rx_charged)
        charge(c, now - c->rx_charged);
    else if (now < c->rx_charged)
        uncharge(c, c->rx_charged - now);
    c->rx_charged = now;
}

/* What a queued frame costs in memory: a flood of tiny replies (Health) costs far
 * more in allocations than in wire bytes, so the queue bound counts this. */
#define MALLOC_CHUNK_OVERHEAD 16
static size_t frame_charge(const struct out_frame *f)
{
    return sizeof(*f) + f->cap + MALLOC_CHUNK_OVERHEAD;
}

/* May this connection's input be read (or its read bytes decoded) now? */
static bool conn_may_read(const struct ttrpc_conn *c)
{
    if (c->read_paused || c->held > TTRPC_HELD_MAX)
        return false;
    return !c->server->over_budget || c->charged <= TTRPC_CONN_RESERVE;
}

/* ---- connection bookkeeping ------------------------------------------------------ */

static void conn_update_events(struct ttrpc_conn *c)
{
    uint32_t ev;
    if (c->kind == CONN_SERIAL && !c->host_connected) {
        ev = EPOLLOUT | EPOLLET; /* see ttrpc_server_adopt_serial */
    } else {
        bool may_read = conn_may_read(c);
        /* Bytes already read come first; nothing on the socket would wake us for them. */
        if (may_read && c->pending)
            server_kick(c->server);
        ev = (may_read && !c->pending ? EPOLLIN : 0) | (c->out_head ? EPOLLOUT : 0);
    }
    struct ka_error err;
    if (ka_reactor_mod(&c->watch, ev, &err) < 0)
        ka_log(KA_LOG_WARN, "ttrpc", "%s", err.msg);
}

static void conn_drop_pending(struct ttrpc_conn *c)
{
    if (!c->pending)
        return;
    uncharge(c, c->pending_len);
    free(c->pending);
    c->pending = NULL;
    c->pending_off = c->pending_len = 0;
}

struct ttrpc_hold {
    struct ttrpc_hold *next;
    void *obj;
    size_t bytes;
    void (*release)(void *obj);
};

/* Free a call and release what it holds; the caller has unlinked it. The one place
 * where held objects go, whether the call was answered, failed or cancelled. */
static void call_free(struct ttrpc_call *call)
{
    struct ttrpc_conn *c = call->conn;
    while (call->holds) {
        struct ttrpc_hold *h = call->holds;
        call->holds = h->next;
        c->held -= h->bytes;
        uncharge(c, h->bytes);
        h->release(h->obj);
        free(h);
    }
    free(call);
}

/* Forget everything in flight: parked calls are cancelled, queued output dropped. */
static void conn_reset_state(struct ttrpc_conn *c)
{
    while (c->calls) {
        struct ttrpc_call *call = c->calls;
        c->calls = call->next;
        if (call->cancel)
            call->cancel(call);
        call_free(call);
    }
    c->ncalls = 0;
    while (c->out_head) {
        struct out_frame *f = c->out_head;
        c->out_head = f->next;
        uncharge(c, frame_charge(f));
        frame_release(c->server, f);
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
    c->read_paused = false;
    conn_drop_pending(c);
    ttrpc_decoder_reset(&c->dec);
    charge_rx(c, 0);
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
    ttrpc_decoder_init(&c->dec, TTRPC_TYPE_REQUEST);
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
        if (f->off == f->len) {
            c->out_head = f->next;
            if (!c->out_head)
                c->out_tail = NULL;
            c->out_bytes -= frame_charge(f);
            uncharge(c, frame_charge(f));
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
    c->out_bytes += frame_charge(f);
    charge(c, frame_charge(f));
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

/* The answer is encoded before the call goes: the reply or message may point into
 * what the call holds. */
void ttrpc_call_reply(struct ttrpc_call *call, const ProtobufCMessage *reply)
{
    struct ttrpc_conn *c = call->conn;
    uint32_t stream_id = call->stream_id;
    struct out_frame *f = build_response(stream_id, KA_STATUS_OK, NULL, reply);
    call_unlink(call);
    call_free(call);
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
    f->off = BYTES_REPLY_ROOM - msg_head - l.prefix;
    f->len = BYTES_REPLY_ROOM + len;
    if (f->cap > TTRPC_SPARE_FRAME_MAX && f->len < f->cap / 2) {
        /* A short answer to a large read: queue what it holds, not what was asked. */
        f = ka_xrealloc(f, sizeof(*f) + f->len);
        f->cap = f->len;
    }
    uint8_t *data = f->data + BYTES_REPLY_ROOM;
    response_prefix_put(&l, call->stream_id, f->data + f->off);
    if (len) {
        uint8_t *p = data - msg_head;
        p += varint_put(p, tag);
        varint_put(p, len);
    }
    struct ttrpc_conn *c = call->conn;
    call_unlink(call);
    call_free(call);
    conn_send(c, f);
}

void ttrpc_call_fail(struct ttrpc_call *call, enum ka_status status, const char *message)
{
    struct ttrpc_conn *c = call->conn;
    /* An overlong message would make the frame oversize; cut it rather than lose it. */
    char cut[4096];
    if (message && strlen(message) >= sizeof(cut)) {
        memcpy(cut, message, sizeof(cut) - 1);
        cut[sizeof(cut) - 1] = '\0';
        message = cut;
    }
    struct out_frame *f = build_response(call->stream_id, status, message, NULL);
    call_unlink(call);
    call_free(call);
    if (f)
        conn_send(c, f);
}

void ttrpc_call_park(struct ttrpc_call *call, ttrpc_cancel_fn cancel, void *data)
{
    call->cancel = cancel;
    call->park_data = data;
}

void ttrpc_call_hold(struct ttrpc_call *call, void *obj, size_t bytes, void (*release)(void *obj))
{
    struct ttrpc_hold *h = ka_xmalloc(sizeof(*h));
    *h = (struct ttrpc_hold){.next = call->holds, .obj = obj, .bytes = bytes, .release = release};
    call->holds = h;
    call->conn->held += bytes;
    charge(call->conn, bytes);
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
    struct ttrpc_server *s = c->server;
    s->dispatch(s->dispatch_ctx, call, req->payload.data, req->payload.len);
    ttrpc__request__free_unpacked(req, NULL);
}

/* ---- input ------------------------------------------------------------------- */

/* Still reading this peer? Not once the connection is lost, or (serial) the host left. */
static bool conn_alive(const struct ttrpc_conn *c)
{
    return !c->dead && (c->kind != CONN_SERIAL || c->host_connected);
}

/* Decode bytes until they are used up, the connection may not read on (budget, held
 * requests, output queue) or is lost. Returns how many bytes were used. */
static size_t conn_consume(struct ttrpc_conn *c, const uint8_t *buf, size_t len)
{
    size_t total = 0;
    while (len > 0 && conn_alive(c) && conn_may_read(c)) {
        enum ttrpc_decode_event ev;
        struct ttrpc_frame fr;
        size_t used = ttrpc_decoder_feed(&c->dec, buf, len, &ev, &fr);
        buf += used;
        len -= used;
        total += used;
        charge_rx(c, ev == TTRPC_DECODE_FRAME ? fr.header.length : 0);
        switch (ev) {
        case TTRPC_DECODE_NEED_MORE:
            break;
        case TTRPC_DECODE_FRAME: /* a request: the decoder takes no other type */
            handle_request(c, &fr);
            free(fr.data);
            charge_rx(c, 0);
            break;
        case TTRPC_DECODE_OVERSIZE:
            send_status(c, fr.header.stream_id, KA_STATUS_RESOURCE_EXHAUSTED,
                        "message length exceeds the 4 MiB ttrpc limit");
            break;
        case TTRPC_DECODE_SKIPPED:
            /* Kata's calls are unary: Data and Response frames, or a type a newer peer
             * sends, mean nothing here. Skipped unread, as containerd's server does. */
            ka_log(KA_LOG_DEBUG, "ttrpc", "skipping a frame of type %u (%u bytes)", fr.header.type,
                   fr.header.length);
            break;
        case TTRPC_DECODE_BAD_TYPE:
            ka_log(KA_LOG_WARN, "ttrpc", "unknown frame type %u: closing connection",
                   fr.header.type);
            conn_lost(c, "protocol error");
            return total;
        }
    }
    return total;
}

/* Decode what was read before the connection paused. False while some is left. */
static bool conn_consume_pending(struct ttrpc_conn *c)
{
    if (!c->pending)
        return true;
    size_t used = conn_consume(c, c->pending + c->pending_off, c->pending_len - c->pending_off);
    c->pending_off += used;
    if (c->pending_off < c->pending_len)
        return false;
    conn_drop_pending(c);
    return true;
}

/* Keep bytes read that the connection may not decode now (copied: they are on the
 * stack). At most one read's worth, charged like everything else. */
static void conn_keep_pending(struct ttrpc_conn *c, const uint8_t *buf, size_t len)
{
    c->pending = ka_xmalloc(len);
    memcpy(c->pending, buf, len);
    c->pending_off = 0;
    c->pending_len = len;
    charge(c, len);
}

#define CONN_READ_SIZE (64 * 1024)

static void conn_read(struct ttrpc_conn *c)
{
    if (!conn_consume_pending(c) || !conn_alive(c)) {
        if (conn_alive(c))
            conn_update_events(c);
        return;
    }
    uint8_t buf[CONN_READ_SIZE];
    /* Bounded reads per wake-up so one busy peer cannot starve the others. */
    for (int round = 0; round < 16; round++) {
        if (!conn_may_read(c)) {
            conn_update_events(c); /* EPOLLIN off until there is room again */
            return;
        }
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
        size_t used = conn_consume(c, buf, (size_t)n);
        if (!conn_alive(c))
            return;
        if (used < (size_t)n) {
            conn_keep_pending(c, buf + used, (size_t)n - used);
            conn_update_events(c);
            return;
        }
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
        if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN) && !conn_may_read(c)) {
            /* Gone while paused: HUP is level-triggered and would wake us for ever, and
             * nobody is left to take an answer. */
            conn_lost(c, "hang-up");
        } else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            conn_read(c);
        }
        if (!c->dead && (events & EPOLLOUT) && conn_flush(c) < 0)
            conn_lost(c, "write failed");
    }
    c->busy--;
    if (c->dead && c->busy == 0)
        conn_destroy(c);
}

/* ---- listener ---------------------------------------------------------------- */

static void log_conn_cap(struct ttrpc_server *s);
static void reap_hung_up(struct ttrpc_server *s);

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
        if (!ka_accepted_peer_allowed(fd, "ttrpc", s->where)) {
            close(fd);
            continue;
        }
        if (s->nconns >= TTRPC_MAX_CONNS)
            reap_hung_up(s);
        if (s->nconns >= TTRPC_MAX_CONNS) {
            /* Accepted to be closed: left in the backlog it would wake us for ever. */
            close(fd);
            log_conn_cap(s);
            continue;
        }
        struct ka_error err;
        if (!conn_new(s, fd, CONN_SOCKET, &err)) {
            ka_log(KA_LOG_WARN, "ttrpc", "%s", err.msg);
            close(fd);
        }
    }
}

/* At the cap, connections whose peers are gone but whose hang-up the loop has not
 * seen yet (a client that connects and closes in a loop outruns it) must not hold
 * places: close them now. Only full hang-ups: a peer that shut down its sending side
 * still waits for its answers. */
static void reap_hung_up(struct ttrpc_server *s)
{
    struct pollfd pfds[TTRPC_MAX_CONNS];
    struct ttrpc_conn *conns[TTRPC_MAX_CONNS];
    nfds_t n = 0;
    for (struct ttrpc_conn *c = s->conns; c && n < TTRPC_MAX_CONNS; c = c->next) {
        if (c->kind != CONN_SOCKET || c->busy || c->dead)
            continue;
        pfds[n] = (struct pollfd){.fd = c->fd, .events = 0};
        conns[n++] = c;
    }
    if (poll(pfds, n, 0) <= 0)
        return;
    for (nfds_t i = 0; i < n; i++)
        if (pfds[i].revents & (POLLHUP | POLLERR | POLLNVAL))
            conn_lost(conns[i], "hang-up");
}

/* Once per burst of refusals, with how many there were since the last line. */
static void log_conn_cap(struct ttrpc_server *s)
{
    s->cap_refusals++;
    if (s->cap_refusals == 1 || s->cap_refusals % 1000 == 0) {
        char n[24], max[16];
        snprintf(n, sizeof(n), "%zu", s->cap_refusals);
        snprintf(max, sizeof(max), "%u", (unsigned)TTRPC_MAX_CONNS);
        ka_log_kv(KA_LOG_WARN, "ttrpc", "too many connections: new connection closed", "max", max,
                  "refused_so_far", n, NULL);
    }
}

/* Connections that may read again: bytes they read before pausing are decoded now. */
static void kick_event(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ttrpc_server *s = w->data;
    uint64_t v;
    if (read(s->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        ka_log(KA_LOG_WARN, "ttrpc", "read kick eventfd: %s", strerror(errno));
    s->kicked = false;
    for (struct ttrpc_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->kind == CONN_SERIAL && !c->host_connected)
            continue;
        c->busy++;
        if (c->pending && conn_may_read(c))
            conn_consume_pending(c);
        if (!c->dead)
            conn_update_events(c);
        c->busy--;
        if (c->dead && c->busy == 0)
            conn_destroy(c);
    }
}

static int kick_setup(struct ttrpc_server *s, struct ka_error *err)
{
    if (s->kick_fd >= 0)
        return 0;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "eventfd");
    if (ka_reactor_add(s->reactor, &s->kick_watch, fd, EPOLLIN, kick_event, s, err) < 0) {
        close(fd);
        return -1;
    }
    s->kick_fd = fd;
    return 0;
}

void ttrpc_server_init(struct ttrpc_server *s, struct ka_reactor *r, ttrpc_dispatch_fn dispatch,
                       void *ctx)
{
    /* Frames of up to 4 MiB come and go with the peers. glibc raises its mmap threshold
     * to the size of each mapped block freed, after which such buffers come from the
     * heap, where memory freed between live blocks stays resident: once a hostile host
     * leaves, the agent would keep its peak. A fixed threshold (glibc's default value;
     * setting it turns the adjustment off) keeps them mapped, returned when freed. */
    mallopt(M_MMAP_THRESHOLD, TTRPC_MMAP_THRESHOLD);
    memset(s, 0, sizeof(*s));
    s->reactor = r;
    s->dispatch = dispatch;
    s->dispatch_ctx = ctx;
    s->listen_fd = -1;
    s->reserve_fd = -1;
    s->kick_fd = -1;
}

int ttrpc_server_listen(struct ttrpc_server *s, const struct ka_addr *addr, struct ka_error *err)
{
    if (kick_setup(s, err) < 0)
        return -1;
    int fd = ka_addr_listen(addr, err);
    if (fd < 0)
        return fd;
    if (ka_reactor_add(s->reactor, &s->listen_watch, fd, EPOLLIN, listener_event, s, err) < 0) {
        close(fd);
        return -1;
    }
    s->listen_fd = fd;
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (addr->kind == KA_ADDR_UNIX) {
        snprintf(s->unix_path, sizeof(s->unix_path), "%s", addr->path);
        snprintf(s->where, sizeof(s->where), "unix://%s", addr->path);
    } else {
        snprintf(s->where, sizeof(s->where), "vsock://%d:%u", (int)addr->cid, addr->port);
    }
    return 0;
}

int ttrpc_server_adopt_serial(struct ttrpc_server *s, int fd, struct ka_error *err)
{
    if (kick_setup(s, err) < 0 || !conn_new(s, fd, CONN_SERIAL, err)) {
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
    if (s->kick_fd >= 0) {
        ka_reactor_del(&s->kick_watch);
        close(s->kick_fd);
        s->kick_fd = -1;
    }
    s->kicked = false;
}
