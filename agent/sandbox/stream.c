#include "sandbox/stream.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "agent.pb-c.h"

struct stream_req {
    struct ka_stream *stream;
    uint32_t len;        /* read: most bytes to answer */
    const uint8_t *data; /* write: the request's bytes, kept by the server with the call */
    size_t off;
    size_t total;
};

static void stream_event(struct ka_watch *w, uint32_t events);

static void queue_push(struct ka_stream *s, struct ttrpc_call *call)
{
    call->park_next = NULL;
    call->park_prev = s->tail;
    if (s->tail)
        s->tail->park_next = call;
    else
        s->head = call;
    s->tail = call;
}

static void queue_unlink(struct ka_stream *s, struct ttrpc_call *call)
{
    if (call->park_prev)
        call->park_prev->park_next = call->park_next;
    else
        s->head = call->park_next;
    if (call->park_next)
        call->park_next->park_prev = call->park_prev;
    else
        s->tail = call->park_prev;
}

/* Watch the fd only while someone waits on it: an idle pipe must not wake the loop
 * (a read end whose writers are gone reports EPOLLHUP for ever). */
static void update_watch(struct ka_stream *s)
{
    bool want = s->head != NULL && s->fd >= 0;
    if (want && !s->watch.active) {
        struct ka_error err;
        uint32_t ev = s->is_input ? EPOLLOUT : EPOLLIN;
        if (ka_reactor_add(s->reactor, &s->watch, s->fd, ev, stream_event, s, &err) < 0) {
            /* An fd epoll cannot take (a regular file) is always ready: serve later reads
             * without the loop. Fail the waiters rather than hang them. */
            while (s->head) {
                struct ttrpc_call *c = s->head;
                struct stream_req *rq = c->park_data;
                queue_unlink(s, c);
                free(rq);
                ttrpc_call_fail(c, KA_STATUS_INTERNAL, err.msg);
            }
        }
    } else if (!want && s->watch.active) {
        ka_reactor_del(&s->watch);
    }
}

static void finish(struct ka_stream *s, struct ttrpc_call *call)
{
    struct stream_req *rq = call->park_data;
    queue_unlink(s, call);
    free(rq);
}

static void cancel_req(struct ttrpc_call *call)
{
    struct stream_req *rq = call->park_data;
    struct ka_stream *s = rq->stream;
    finish(s, call);
    update_watch(s);
}

static void fail_all(struct ka_stream *s, enum ka_status code, const char *msg)
{
    while (s->head) {
        struct ttrpc_call *c = s->head;
        finish(s, c);
        ttrpc_call_fail(c, code, msg);
    }
}

/* ReadStreamResponse { bytes data = 1; }: read replies are built in place around it. */
#define READ_STREAM_DATA_FIELD 1

static void reply_written(struct ttrpc_call *call, size_t len)
{
    Grpc__WriteStreamResponse resp = GRPC__WRITE_STREAM_RESPONSE__INIT;
    resp.len = (uint32_t)len;
    ttrpc_call_reply(call, &resp.base);
}

/* EOF is an error status, not an empty reply: an OK with no data makes the shim's
 * copy loop spin (protocol reference §0.5). */
#define EOF_MESSAGE "eof"

static void serve_reads(struct ka_stream *s)
{
    while (s->head) {
        if (s->eof || s->fd < 0) {
            fail_all(s, KA_STATUS_INTERNAL, EOF_MESSAGE);
            break;
        }
        struct ttrpc_call *c = s->head;
        struct stream_req *rq = c->park_data;
        /* Read straight into the response frame: no copy of the data in the agent. */
        struct ttrpc_bytes_reply reply;
        uint8_t *buf = ttrpc_bytes_reply_begin(c, rq->len, &reply);
        ssize_t n = read(s->fd, buf, rq->len);
        if (n > 0) {
            finish(s, c);
            ttrpc_bytes_reply_send(c, READ_STREAM_DATA_FIELD, &reply, (size_t)n);
            continue;
        }
        int read_errno = errno;
        ttrpc_bytes_reply_drop(&reply); /* may free, which may clobber errno */
        errno = read_errno;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* Drained. If the process is gone, a grandchild may still hold the pipe
             * open: answer EOF rather than wait on it for ever. */
            if (s->source_done)
                fail_all(s, KA_STATUS_INTERNAL, EOF_MESSAGE);
            break;
        }
        /* 0 is EOF on a pipe; EIO is how a pty master says every slave is closed. */
        s->eof = true;
    }
    update_watch(s);
}

static void serve_writes(struct ka_stream *s)
{
    while (s->head) {
        struct stream_req *rq = s->head->park_data;
        if (s->fd < 0) {
            fail_all(s, KA_STATUS_INTERNAL, "stdin is closed");
            break;
        }
        ssize_t n = write(s->fd, rq->data + rq->off, rq->total - rq->off);
        if (n > 0) {
            rq->off += (size_t)n;
            if (rq->off == rq->total) {
                struct ttrpc_call *c = s->head;
                size_t total = rq->total;
                finish(s, c);
                reply_written(c, total);
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        char msg[128];
        snprintf(msg, sizeof(msg), "write stdin: %s", strerror(n < 0 ? errno : EPIPE));
        struct ttrpc_call *c = s->head;
        finish(s, c);
        ttrpc_call_fail(c, KA_STATUS_INTERNAL, msg);
    }
    update_watch(s);
}

static void stream_event(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ka_stream *s = w->data;
    if (s->is_input)
        serve_writes(s);
    else
        serve_reads(s);
}

void ka_stream_init(struct ka_stream *s, struct ka_reactor *r, int fd, bool is_input)
{
    memset(s, 0, sizeof(*s));
    s->reactor = r;
    s->fd = fd;
    s->is_input = is_input;
    /* Fails on a pty master or over the system's limits: the default size still works. */
    if (!is_input && fd >= 0)
        (void)fcntl(fd, F_SETPIPE_SZ, KA_STREAM_PIPE_SIZE);
}

void ka_stream_read(struct ka_stream *s, struct ttrpc_call *call, uint32_t len)
{
    if (len == 0 || len > KA_STREAM_MAX_READ)
        len = KA_STREAM_MAX_READ;
    struct stream_req *rq = ka_xcalloc(1, sizeof(*rq));
    rq->stream = s;
    rq->len = len;
    ttrpc_call_park(call, cancel_req, rq);
    queue_push(s, call);
    if (s->head == call)
        serve_reads(s);
}

void ka_stream_write(struct ka_stream *s, struct ttrpc_call *call, const uint8_t *data, size_t len)
{
    if (s->fd < 0) {
        ttrpc_call_fail(call, KA_STATUS_INTERNAL, "stdin is closed");
        return;
    }
    size_t off = 0;
    if (!s->head) {
        /* The common case: the pipe has room, answer without copying. */
        while (off < len) {
            ssize_t n = write(s->fd, data + off, len - off);
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            char msg[128];
            snprintf(msg, sizeof(msg), "write stdin: %s", strerror(n < 0 ? errno : EPIPE));
            ttrpc_call_fail(call, KA_STATUS_INTERNAL, msg);
            return;
        }
        if (off == len) {
            reply_written(call, len);
            return;
        }
    }
    /* No copy: data stays valid until the call is answered (see stream.h). */
    struct stream_req *rq = ka_xcalloc(1, sizeof(*rq));
    rq->stream = s;
    rq->total = len;
    rq->off = off;
    rq->data = data;
    ttrpc_call_park(call, cancel_req, rq);
    queue_push(s, call);
    update_watch(s);
}

void ka_stream_source_done(struct ka_stream *s)
{
    s->source_done = true;
    if (!s->is_input && s->head)
        serve_reads(s);
}

void ka_stream_close(struct ka_stream *s)
{
    if (s->watch.active)
        ka_reactor_del(&s->watch);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    fail_all(s, KA_STATUS_INTERNAL, s->is_input ? "stdin is closed" : EOF_MESSAGE);
}
