/* Process stdio: ReadStdout, ReadStderr, WriteStdin, CloseStdin, TtyWinResize. */
#include "agent.h"
#include "rpc/dispatch.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "agent.pb-c.h"

static struct ka_proc *lookup(struct agent *a, const char *cid, const char *eid,
                              enum ka_status code, struct ka_error *err)
{
    struct ka_container *c = ka_sandbox_find(&a->sandbox, cid);
    struct ka_proc *p = c ? ka_container_find_proc(c, eid) : NULL;
    if (!p)
        ka_error_status_set(err, code, "process %.80s of container %.80s not found",
                            eid[0] ? eid : "(init)", cid);
    return p;
}

static int read_stream(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                       bool is_stderr, struct ka_error *err)
{
    const Grpc__ReadStreamRequest *req = (const Grpc__ReadStreamRequest *)m;
    struct ka_proc *p = lookup(a, req->container_id, req->exec_id, KA_STATUS_NOT_FOUND, err);
    if (!p)
        return -1;
    /* A tty has only the master: both calls read it (and each is told EOF). */
    ka_stream_read(is_stderr && !p->tty ? &p->err : &p->out, call, req->len,
                   is_stderr ? KA_STREAM_READ_STDERR : KA_STREAM_READ_STDOUT);
    return 0;
}

static int read_stdout(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                       struct ka_error *err)
{
    return read_stream(a, call, m, false, err);
}

static int read_stderr(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                       struct ka_error *err)
{
    return read_stream(a, call, m, true, err);
}

static int write_stdin(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                       struct ka_error *err)
{
    const Grpc__WriteStreamRequest *req = (const Grpc__WriteStreamRequest *)m;
    struct ka_proc *p = lookup(a, req->container_id, req->exec_id, KA_STATUS_NOT_FOUND, err);
    if (!p)
        return -1;
    /* What the pipe does not take at once must wait, up to 4 MiB per call. Rather than
     * copy it, keep the request itself with the call: the server counts it against its
     * budget and stops reading this connection while it holds too much, so a host
     * writing to a process that never reads cannot grow the agent without bound. */
    if (!rpc_keep_request(&a->dispatcher, call, m))
        return ka_error_status_set(err, KA_STATUS_INTERNAL, "WriteStdin: request not kept");
    ka_stream_write(&p->in, call, req->data.data, req->data.len);
    return 0;
}

static int close_stdin(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                       struct ka_error *err)
{
    const Grpc__CloseStdinRequest *req = (const Grpc__CloseStdinRequest *)m;
    struct ka_proc *p = lookup(a, req->container_id, req->exec_id, KA_STATUS_INVALID_ARGUMENT, err);
    if (!p)
        return -1;
    ka_stream_close(&p->in);
    rpc_reply(call, NULL);
    return 0;
}

static int tty_win_resize(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                          struct ka_error *err)
{
    const Grpc__TtyWinResizeRequest *req = (const Grpc__TtyWinResizeRequest *)m;
    struct ka_proc *p = lookup(a, req->container_id, req->exec_id, KA_STATUS_UNAVAILABLE, err);
    if (!p)
        return -1;
    if (!p->tty || p->out.fd < 0)
        return ka_error_status_set(err, KA_STATUS_UNAVAILABLE, "process %s has no tty", p->exec_id);
    if (req->row > 0xffff || req->column > 0xffff)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "window size %ux%u too large",
                                   req->row, req->column);
    struct winsize ws = {.ws_row = (unsigned short)req->row, .ws_col = (unsigned short)req->column};
    if (ioctl(p->out.fd, TIOCSWINSZ, &ws) < 0)
        return ka_error_set(err, errno, "resize tty");
    rpc_reply(call, NULL);
    return 0;
}

const struct rpc_handler rpc_io_handlers[] = {
    {"ReadStdout", read_stdout}, {"ReadStderr", read_stderr},      {"WriteStdin", write_stdin},
    {"CloseStdin", close_stdin}, {"TtyWinResize", tty_win_resize}, {NULL, NULL},
};
