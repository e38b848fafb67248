#include "sandbox/stream.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "agent.pb-c.h"

struct stream_req {
    struct ka_stream *stream;
    uint32_t len;        /* read: most bytes to answer */
    uint8_t reader;      /* read: enum ka_stream_reader */
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

/* Stdin is watched only while a write waits on it: an idle pipe must not wake the loop.
 * Output is watched edge-triggered from the first read that had to wait until the
 * stream is closed: a read that finds the pipe empty parks without an epoll_ctl, and
 * the next write to the pipe (or the writers' hang-up, reported once, not for ever)
 * wakes it. That was two epoll_ctl per parked ReadStdout (a third of the calls when
 * streaming); a wake-up with no read waiting costs a handler call that does nothing.
 * A cancelled read (its host gone) unwatches, see cancel_req. */
static void update_watch(struct ka_stream *s)
{
    bool want = s->head != NULL && s->fd >= 0;
    if (!s->is_input && s->watch.active)
        return;
    if (want && !s->watch.active) {
        struct ka_error err;
        uint32_t ev = s->is_input ? EPOLLOUT : EPOLLIN | EPOLLET;
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
    /* The reader went away (its host or connection is gone): nobody may come back,
     * so stop watching rather than be woken by each write. */
    if (!s->head && s->watch.active)
        ka_reactor_del(&s->watch);
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

/* The error status of every read after the first at EOF (what the 3.3 agent answers
 * to all of them, and the 3.3 runtime waits for). */
#define EOF_MESSAGE "eof"

/* Every waiting read is at EOF: the first of each reader gets the empty success a
 * 4.x runtime stops at, the others the error a 3.3 runtime stops at (stream.h). */
static void answer_eof(struct ka_stream *s)
{
    while (s->head) {
        struct ttrpc_call *c = s->head;
        uint8_t reader = ((struct stream_req *)c->park_data)->reader;
        finish(s, c);
        if (s->eof_told & reader) {
            ttrpc_call_fail(c, KA_STATUS_INTERNAL, EOF_MESSAGE);
            continue;
        }
        s->eof_told |= reader;
        Grpc__ReadStreamResponse resp = GRPC__READ_STREAM_RESPONSE__INIT;
        ttrpc_call_reply(c, &resp.base);
    }
}

static void stop_drain_timer(struct ka_stream *s)
{
    if (!s->drain_timer.active)
        return;
    int fd = s->drain_timer.fd;
    ka_reactor_del(&s->drain_timer);
    close(fd);
}

static void serve_reads(struct ka_stream *s);

static void drain_timer_event(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ka_stream *s = w->data;
    s->drain_over = true;
    stop_drain_timer(s);
    serve_reads(s);
}

static bool deadline_passed(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* The process is gone and its pipe is empty but still held: wake the reads at the
 * drain deadline. False when there is nothing to wait for (the deadline passed, or
 * no timer could be had: then EOF now rather than a read that may hang for ever). */
static bool wait_for_drain(struct ka_stream *s)
{
    if (s->drain_over || deadline_passed(&s->drain_deadline)) {
        s->drain_over = true;
        return false;
    }
    if (s->drain_timer.active)
        return true;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {.it_value = s->drain_deadline};
    struct ka_error err;
    if (fd < 0 || timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) < 0 ||
        ka_reactor_add(s->reactor, &s->drain_timer, fd, EPOLLIN, drain_timer_event, s, &err) < 0) {
        if (fd >= 0)
            close(fd);
        s->drain_over = true;
        return false;
    }
    return true;
}

static void serve_reads(struct ka_stream *s)
{
    while (s->head) {
        if (s->eof || s->fd < 0) {
            s->eof = true;
            answer_eof(s);
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
            /* Empty, and a writer still holds it. Once the process is gone that is a
             * background child of it: wait for what it writes a little
             * (KA_STREAM_DRAIN_MS), never for ever. */
            if (s->source_done && !wait_for_drain(s)) {
                s->eof = true;
                continue;
            }
            break;
        }
        /* 0 is EOF on a pipe; EIO is how a pty master says every slave is closed
         * (it hands out what the slave wrote first). */
        s->eof = true;
    }
    if (s->eof)
        stop_drain_timer(s);
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

void ka_stream_read(struct ka_stream *s, struct ttrpc_call *call, uint32_t len,
                    enum ka_stream_reader reader)
{
    if (len == 0 || len > KA_STREAM_MAX_READ)
        len = KA_STREAM_MAX_READ;
    struct stream_req *rq = ka_xcalloc(1, sizeof(*rq));
    rq->stream = s;
    rq->len = len;
    rq->reader = (uint8_t)reader;
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
    if (s->source_done)
        return;
    s->source_done = true;
    clock_gettime(CLOCK_MONOTONIC, &s->drain_deadline);
    s->drain_deadline.tv_sec += KA_STREAM_DRAIN_MS / 1000;
    s->drain_deadline.tv_nsec += (long)(KA_STREAM_DRAIN_MS % 1000) * 1000000L;
    if (s->drain_deadline.tv_nsec >= 1000000000L) {
        s->drain_deadline.tv_sec++;
        s->drain_deadline.tv_nsec -= 1000000000L;
    }
    if (!s->is_input && s->head)
        serve_reads(s);
}

void ka_stream_close(struct ka_stream *s)
{
    if (!s->is_input && s->fd >= 0 && s->head) {
        /* Closed under waiting reads (the process was waited for or removed): what
         * the pipe holds now is theirs, then EOF, without waiting for more. */
        s->source_done = true;
        s->drain_over = true;
        serve_reads(s);
    }
    stop_drain_timer(s);
    if (s->watch.active)
        ka_reactor_del(&s->watch);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    if (s->is_input) {
        fail_all(s, KA_STATUS_INTERNAL, "stdin is closed");
    } else {
        s->eof = true;
        answer_eof(s);
    }
}
