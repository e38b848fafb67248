/* agent-ctl run / exec (see run.h).
 *
 * The stdio loop follows the Kata shim (AGENT-PROTOCOL.md §3.7): one ReadStdout and,
 * without a tty, one ReadStderr always in flight (long polls with no deadline, each
 * stream ends at its first empty success or error status: the agent tells EOF with
 * one, then the other, so both the 4.x and the 3.3 runtime's rule work); local
 * stdin goes out as WriteStdin, one 32 KiB chunk in flight at a time, then
 * CloseStdin at local EOF; WaitProcess once both output streams have ended. All of
 * it is pipelined on one connection and multiplexed with poll() over the socket,
 * local stdin and a signalfd (SIGINT/SIGTERM become SignalProcess, SIGWINCH a
 * TtyWinResize). In-flight requests are bounded (two reads, one write, a few small
 * control calls), so the agent's replies always fit the socket buffer and the
 * blocking sends cannot deadlock against it. */
#include "run.h"
#include "dial.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "oci.h"
#include "pbjson.h"

#include "agent.pb-c.h"

#define AGENT_SERVICE "grpc.AgentService"
#define STREAM_CHUNK (32u * 1024) /* the shim's buffer size for every stream */
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_HOSTNAME 64
#define MAX_EXEC_ENV 1024

/* ---- connection and unary calls ---------------------------------------------- */

struct ctl {
    struct ttrpc_client c;
    int64_t timeout_nano; /* for every request but the long polls and WaitProcess */
};

static void print_status(const char *method, int code, const char *message)
{
    fprintf(stderr, "agent-ctl: %s: error: %s (%d): %s\n", method, ka_status_name(code), code,
            message);
}

static void print_transport(const char *method, const struct ka_error *err)
{
    if (err->errnum == EAGAIN || err->errnum == EWOULDBLOCK)
        fprintf(stderr, "agent-ctl: %s: no reply in time (--timeout)\n", method);
    else
        fprintf(stderr, "agent-ctl: %s: %s\n", method, err->msg);
}

static int ctl_open(struct ctl *x, const struct ctl_conn_opts *o)
{
    struct ka_error err;
    if (!o->addr) {
        fprintf(stderr, "agent-ctl: no address: use --addr or KATA_AGENT_ADDR\n");
        return CTL_EXIT_USAGE;
    }
    /* The timeout bounds the blocking unary calls; the stdio loop reads without
     * blocking. */
    if (ctl_dial(&x->c, o->addr, 0, o->timeout_s, &err) < 0) {
        fprintf(stderr, "agent-ctl: %s\n", err.msg);
        return CTL_EXIT_TRANSPORT;
    }
    x->timeout_nano = (int64_t)o->timeout_s * 1000000000LL;
    return 0;
}

static int send_req(struct ctl *x, const char *method, const ProtobufCMessage *req,
                    int64_t timeout_nano, uint32_t *sid, struct ka_error *err)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    cleanup_free uint8_t *buf = ka_xmalloc(len ? len : 1);
    protobuf_c_message_pack(req, buf);
    return ttrpc_client_send(&x->c, AGENT_SERVICE, method, buf, len, timeout_nano, sid, err);
}

/* One blocking call. Returns 0 (and *resp when asked), CTL_EXIT_STATUS_ERROR for a
 * non-OK status, CTL_EXIT_TRANSPORT when the connection failed; prints the error
 * unless quiet. Replies to anything pipelined earlier are dropped. */
static int unary(struct ctl *x, const char *method, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, bool quiet)
{
    struct ka_error err;
    uint32_t sid;
    if (send_req(x, method, req, x->timeout_nano, &sid, &err) < 0) {
        print_transport(method, &err);
        return CTL_EXIT_TRANSPORT;
    }
    for (;;) {
        struct ttrpc_reply r;
        if (ttrpc_client_recv(&x->c, &r, &err) < 0) {
            print_transport(method, &err);
            return CTL_EXIT_TRANSPORT;
        }
        if (r.stream_id != sid) {
            ttrpc_reply_free(&r);
            continue;
        }
        int rc = 0;
        if (r.code != 0) {
            if (!quiet)
                print_status(method, r.code, r.message);
            rc = CTL_EXIT_STATUS_ERROR;
        } else if (resp_desc && resp) {
            *resp = protobuf_c_message_unpack(resp_desc, NULL, r.payload_len, r.payload);
            if (!*resp) {
                fprintf(stderr, "agent-ctl: %s: reply is not a valid %s\n", method,
                        resp_desc->name);
                rc = CTL_EXIT_TRANSPORT;
            }
        }
        ttrpc_reply_free(&r);
        return rc;
    }
}

/* ---- the local terminal and signals --------------------------------------------- */

static struct termios saved_termios;
static bool termios_saved, raw_active;

static void term_restore(void)
{
    if (raw_active) {
        tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
        raw_active = false;
    }
}

static void term_raw(void)
{
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios) < 0)
        return;
    if (!termios_saved) {
        termios_saved = true;
        atexit(term_restore); /* a backstop for exit() paths */
    }
    struct termios t = saved_termios;
    cfmakeraw(&t); /* output too: the container's pty already turns \n into \r\n */
    if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) == 0)
        raw_active = true;
}

static bool local_winsize(struct winsize *ws)
{
    const int fds[] = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO};
    for (size_t i = 0; i < KA_ARRAY_SIZE(fds); i++)
        if (isatty(fds[i]) && ioctl(fds[i], TIOCGWINSZ, ws) == 0 && ws->ws_row && ws->ws_col)
            return true;
    return false;
}

struct sigs {
    int fd;
    sigset_t old;
};

/* SIGINT, SIGTERM and SIGWINCH through a signalfd from now on; SIGPIPE ignored so
 * a closed local stdout is an EPIPE to handle, not death with the terminal raw. */
static int sigs_begin(struct sigs *s)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGWINCH);
    signal(SIGPIPE, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, &set, &s->old) < 0)
        return -1;
    s->fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->fd < 0) {
        sigprocmask(SIG_SETMASK, &s->old, NULL);
        return -1;
    }
    return 0;
}

/* SIGINT or SIGTERM if one is pending (taken, with any SIGWINCH), else 0. */
static int sigs_take_stop(struct sigs *s)
{
    struct signalfd_siginfo si;
    int stop = 0;
    while (read(s->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        if (si.ssi_signo != SIGWINCH && !stop)
            stop = (int)si.ssi_signo;
    return stop;
}

/* Discard what is pending (it was forwarded or came too late) and unblock. */
static void sigs_end(struct sigs *s)
{
    if (s->fd < 0)
        return;
    struct signalfd_siginfo si;
    while (read(s->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        ;
    close(s->fd);
    s->fd = -1;
    sigprocmask(SIG_SETMASK, &s->old, NULL);
}

/* ---- the stdio loop ------------------------------------------------------------- */

struct proc_io {
    const char *cid;
    const char *eid;        /* streams and WaitProcess */
    const char *signal_eid; /* SignalProcess: "" for a container's init, as the shim */
    bool tty;
    bool forward_stdin;
};

enum in_state {
    IN_OPEN,   /* reading local stdin */
    IN_EOF,    /* local EOF seen: CloseStdin once the last write is answered */
    IN_CLOSED, /* CloseStdin sent, or stdin not forwarded */
};

struct loop {
    struct ctl *x;
    const struct proc_io *p;
    uint32_t out_sid, err_sid, in_sid, wait_sid, sig_sid;
    bool out_done, err_done, out_broken, err_broken, wait_done;
    enum in_state in;
    int status;
};

static int write_local(int fd, const uint8_t *data, size_t len, bool *broken)
{
    while (len > 0 && !*broken) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, -1);
            continue;
        }
        if (n < 0) {
            /* EPIPE and the like: keep draining the stream so the process is not
             * blocked on a full pipe, but drop the output. */
            *broken = true;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_read(struct loop *l, bool is_stderr, struct ka_error *err)
{
    Grpc__ReadStreamRequest req = GRPC__READ_STREAM_REQUEST__INIT;
    req.container_id = (char *)l->p->cid;
    req.exec_id = (char *)l->p->eid;
    req.len = STREAM_CHUNK;
    return send_req(l->x, is_stderr ? "ReadStderr" : "ReadStdout", &req.base, 0,
                    is_stderr ? &l->err_sid : &l->out_sid, err);
}

static int send_resize(struct loop *l, struct ka_error *err)
{
    struct winsize ws;
    if (!l->p->tty || !local_winsize(&ws))
        return 0;
    Grpc__TtyWinResizeRequest req = GRPC__TTY_WIN_RESIZE_REQUEST__INIT;
    req.container_id = (char *)l->p->cid;
    req.exec_id = (char *)l->p->eid;
    req.row = ws.ws_row;
    req.column = ws.ws_col;
    return send_req(l->x, "TtyWinResize", &req.base, l->x->timeout_nano, NULL, err);
}

static int send_signal(struct loop *l, int sig, struct ka_error *err)
{
    Grpc__SignalProcessRequest req = GRPC__SIGNAL_PROCESS_REQUEST__INIT;
    req.container_id = (char *)l->p->cid;
    req.exec_id = (char *)l->p->signal_eid;
    req.signal = (uint32_t)sig;
    return send_req(l->x, "SignalProcess", &req.base, l->x->timeout_nano, &l->sig_sid, err);
}

static int send_close_stdin(struct loop *l, struct ka_error *err)
{
    Grpc__CloseStdinRequest req = GRPC__CLOSE_STDIN_REQUEST__INIT;
    req.container_id = (char *)l->p->cid;
    req.exec_id = (char *)l->p->eid;
    l->in = IN_CLOSED;
    return send_req(l->x, "CloseStdin", &req.base, l->x->timeout_nano, NULL, err);
}

/* Local stdin is readable: one chunk out as WriteStdin, or EOF. */
static int pump_stdin(struct loop *l, struct ka_error *err)
{
    static uint8_t buf[STREAM_CHUNK];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n <= 0) {
        l->in = IN_EOF; /* EOF, or stdin unreadable: the process gets EOF either way */
        return 0;
    }
    Grpc__WriteStreamRequest req = GRPC__WRITE_STREAM_REQUEST__INIT;
    req.container_id = (char *)l->p->cid;
    req.exec_id = (char *)l->p->eid;
    req.data.data = buf;
    req.data.len = (size_t)n;
    return send_req(l->x, "WriteStdin", &req.base, l->x->timeout_nano, &l->in_sid, err);
}

/* Returns 0, or CTL_EXIT_* when the loop must end with that code. */
static int handle_reply(struct loop *l, struct ttrpc_reply *r)
{
    uint32_t sid = r->stream_id;
    if (sid == 0)
        return 0;
    if (sid == l->out_sid || sid == l->err_sid) {
        bool is_err = sid == l->err_sid;
        if (is_err)
            l->err_sid = 0;
        else
            l->out_sid = 0;
        if (r->code != 0) { /* EOF, or the stream is gone: either way it has ended */
            if (is_err)
                l->err_done = true;
            else
                l->out_done = true;
            return 0;
        }
        Grpc__ReadStreamResponse *resp =
            grpc__read_stream_response__unpack(NULL, r->payload_len, r->payload);
        if (!resp) {
            fprintf(stderr, "agent-ctl: %s: reply is not a valid ReadStreamResponse\n",
                    is_err ? "ReadStderr" : "ReadStdout");
            return CTL_EXIT_TRANSPORT;
        }
        /* An empty success is EOF too, as the 4.x runtimes take it (the agent answers
         * it once before the error status; a 4.x agent only answers that). */
        if (resp->data.len == 0) {
            if (is_err)
                l->err_done = true;
            else
                l->out_done = true;
        }
        write_local(is_err ? STDERR_FILENO : STDOUT_FILENO, resp->data.data, resp->data.len,
                    is_err ? &l->err_broken : &l->out_broken);
        grpc__read_stream_response__free_unpacked(resp, NULL);
        return 0;
    }
    if (sid == l->in_sid) {
        l->in_sid = 0;
        if (r->code != 0 && l->in == IN_OPEN)
            l->in = IN_CLOSED; /* the process closed its stdin: stop sending */
        return 0;
    }
    if (sid == l->sig_sid) {
        l->sig_sid = 0;
        if (r->code != 0)
            print_status("SignalProcess", r->code, r->message);
        return 0;
    }
    if (sid == l->wait_sid) {
        l->wait_sid = 0;
        if (r->code != 0) {
            print_status("WaitProcess", r->code, r->message);
            return CTL_EXIT_STATUS_ERROR;
        }
        Grpc__WaitProcessResponse *resp =
            grpc__wait_process_response__unpack(NULL, r->payload_len, r->payload);
        if (!resp) {
            fprintf(stderr, "agent-ctl: WaitProcess: reply is not a valid WaitProcessResponse\n");
            return CTL_EXIT_TRANSPORT;
        }
        l->status = resp->status;
        l->wait_done = true;
        grpc__wait_process_response__free_unpacked(resp, NULL);
        return 0;
    }
    return 0; /* CloseStdin, TtyWinResize: nothing to do either way */
}

/* Every reply that has arrived, without blocking. Returns 0 or CTL_EXIT_*,
 * having printed why. */
static int drain_socket(struct loop *l, int sock_flags)
{
    int fd = l->x->c.fd;
    if (fcntl(fd, F_SETFL, sock_flags | O_NONBLOCK) < 0) {
        fprintf(stderr, "agent-ctl: ttrpc socket: %s\n", strerror(errno));
        return CTL_EXIT_TRANSPORT;
    }
    int rc = 0;
    while (rc == 0 && !l->wait_done) {
        struct ttrpc_reply r;
        struct ka_error err;
        if (ttrpc_client_recv(&l->x->c, &r, &err) < 0) {
            if (err.errnum == EAGAIN || err.errnum == EWOULDBLOCK)
                break;
            fprintf(stderr, "agent-ctl: agent connection: %s\n", err.msg);
            rc = CTL_EXIT_TRANSPORT;
            break;
        }
        rc = handle_reply(l, &r);
        ttrpc_reply_free(&r);
    }
    fcntl(fd, F_SETFL, sock_flags);
    return rc;
}

static int handle_signals(struct loop *l, int sigfd, struct ka_error *err)
{
    struct signalfd_siginfo si;
    ssize_t n;
    while ((n = read(sigfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
        int rc = 0;
        if (si.ssi_signo == SIGWINCH)
            rc = send_resize(l, err);
        else if (!l->wait_done)
            rc = send_signal(l, (int)si.ssi_signo, err);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Drive the process's stdio until WaitProcess answers. Returns 0 with *status set,
 * or CTL_EXIT_*, having printed why. */
static int stdio_loop(struct ctl *x, const struct proc_io *p, int sigfd, int *status)
{
    struct loop l = {.x = x,
                     .p = p,
                     .err_done = p->tty, /* a tty has one stream */
                     .in = p->forward_stdin ? IN_OPEN : IN_CLOSED};
    struct ka_error err;
    ka_error_clear(&err);
    int sock_flags = fcntl(x->c.fd, F_GETFL);
    if (sock_flags < 0) {
        fprintf(stderr, "agent-ctl: ttrpc socket: %s\n", strerror(errno));
        return CTL_EXIT_TRANSPORT;
    }
    const char *failed = "TtyWinResize";
    if (send_resize(&l, &err) < 0)
        goto transport;
    /* Without -i the process reads EOF, as from /dev/null, rather than waiting. */
    failed = "CloseStdin";
    if (!p->forward_stdin && send_close_stdin(&l, &err) < 0)
        goto transport;

    for (;;) {
        failed = "ReadStdout";
        if (!l.out_done && !l.out_sid && send_read(&l, false, &err) < 0)
            goto transport;
        failed = "ReadStderr";
        if (!l.err_done && !l.err_sid && send_read(&l, true, &err) < 0)
            goto transport;
        bool streams_done = l.out_done && l.err_done;
        if (streams_done && l.in != IN_CLOSED)
            l.in = IN_CLOSED; /* the runtime stops stdin with stdout too */
        failed = "CloseStdin";
        if (l.in == IN_EOF && !l.in_sid && send_close_stdin(&l, &err) < 0)
            goto transport;
        if (streams_done && !l.wait_sid && !l.wait_done) {
            Grpc__WaitProcessRequest req = GRPC__WAIT_PROCESS_REQUEST__INIT;
            req.container_id = (char *)p->cid;
            req.exec_id = (char *)p->eid;
            failed = "WaitProcess";
            if (send_req(x, "WaitProcess", &req.base, 0, &l.wait_sid, &err) < 0)
                goto transport;
        }

        struct pollfd pfd[3] = {
            {.fd = x->c.fd, .events = POLLIN},
            {.fd = sigfd, .events = POLLIN},
            {.fd = l.in == IN_OPEN && !l.in_sid ? STDIN_FILENO : -1, .events = POLLIN},
        };
        if (poll(pfd, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "agent-ctl: poll: %s\n", strerror(errno));
            return CTL_EXIT_TRANSPORT;
        }
        failed = "SignalProcess";
        if ((pfd[1].revents & POLLIN) && handle_signals(&l, sigfd, &err) < 0)
            goto transport;
        failed = "WriteStdin";
        if (pfd[2].revents && pump_stdin(&l, &err) < 0)
            goto transport;
        if (pfd[0].revents) {
            int rc = drain_socket(&l, sock_flags);
            if (rc)
                return rc;
            if (l.wait_done) {
                *status = l.status;
                return 0;
            }
        }
    }

transport:
    print_transport(failed, &err);
    return CTL_EXIT_TRANSPORT;
}

/* The exit status agent-ctl passes on for a process's. */
static int exit_code(int status)
{
    return status >= 0 && status <= 255 ? status : 255;
}

/* Raw terminal (a tty with -i), the loop, then the terminal and signal mask restored. */
static int session(struct ctl *x, const struct proc_io *p, struct sigs *s, int *status)
{
    if (p->tty && p->forward_stdin)
        term_raw();
    int rc = stdio_loop(x, p, s->fd, status);
    term_restore();
    sigs_end(s);
    return rc;
}

/* ---- run ------------------------------------------------------------------------ */

static void usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "agent-ctl %s: %s (see agent-ctl --help)\n", cmd, msg);
}

/* getopt's '?' (opterr is off, so the message is ours). */
static int bad_option(const char *cmd, char **argv)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "bad option %.64s (unknown, or its argument is missing)",
             optind > 0 ? argv[optind - 1] : "");
    usage_error(cmd, msg);
    return CTL_EXIT_USAGE;
}

static int remove_container(struct ctl *x, const char *cid)
{
    Grpc__RemoveContainerRequest req = GRPC__REMOVE_CONTAINER_REQUEST__INIT;
    req.container_id = (char *)cid;
    req.timeout = 0; /* as the runtime: no limit */
    return unary(x, "RemoveContainer", &req.base, NULL, NULL, false);
}

#define RUN_MAX_EXTRAS 16

static void free_extras(ProtobufCMessage **msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        protobuf_c_message_free_unpacked(msgs[i], NULL);
}

/* Each JSON text as a message of desc; on failure say which and free the rest. */
static int parse_extras(const ProtobufCMessageDescriptor *desc, const char *flag,
                        const char *const *json, size_t n, ProtobufCMessage **out)
{
    for (size_t i = 0; i < n; i++) {
        struct ka_error err;
        if (pbjson_to_message(desc, json[i], strlen(json[i]), &out[i], &err) < 0) {
            fprintf(stderr, "agent-ctl: run: %s: %s\n", flag, err.msg);
            free_extras(out, i);
            return -1;
        }
    }
    return 0;
}

int ctl_cmd_run(const struct ctl_conn_opts *o, int argc, char **argv)
{
    static const struct option opts[] = {
        {"sandbox", no_argument, NULL, 'S'},
        {"tty", no_argument, NULL, 't'},
        {"interactive", no_argument, NULL, 'i'},
        {"guest-rootfs", required_argument, NULL, 'R'},
        {"keep", no_argument, NULL, 'k'},
        {"detach", no_argument, NULL, 'd'},
        {"storage", required_argument, NULL, 's'},
        {"device", required_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    bool sandbox = false, tty = false, interactive = false, keep = false, detach = false;
    const char *guest_rootfs = NULL;
    /* --storage / --device JSON: what the runtime would add to CreateContainer. */
    const char *storage_json[RUN_MAX_EXTRAS], *device_json[RUN_MAX_EXTRAS];
    size_t n_storage = 0, n_device = 0;
    int opt;
    optind = 0; /* reinitialise getopt for the command's own argv */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "tid", opts, NULL)) != -1) {
        switch (opt) {
        case 'S':
            sandbox = true;
            break;
        case 'd':
            detach = keep = true;
            break;
        case 't':
            tty = true;
            break;
        case 'i':
            interactive = true;
            break;
        case 'R':
            guest_rootfs = optarg;
            break;
        case 'k':
            keep = true;
            break;
        case 's':
        case 'D':
            if ((opt == 's' ? n_storage : n_device) == RUN_MAX_EXTRAS) {
                usage_error("run", "too many --storage or --device");
                return CTL_EXIT_USAGE;
            }
            if (opt == 's')
                storage_json[n_storage++] = optarg;
            else
                device_json[n_device++] = optarg;
            break;
        default:
            return bad_option(argv[0], argv);
        }
    }
    if (argc - optind != 2) {
        usage_error("run", "takes BUNDLE and CID");
        return CTL_EXIT_USAGE;
    }
    const char *bundle = argv[optind], *cid = argv[optind + 1];
    if (cid[0] == '\0') {
        usage_error("run", "CID is empty");
        return CTL_EXIT_USAGE;
    }

    struct ka_error err;
    Grpc__Storage *storages[RUN_MAX_EXTRAS];
    Grpc__Device *devices[RUN_MAX_EXTRAS];
    if (parse_extras(&grpc__storage__descriptor, "--storage", storage_json, n_storage,
                     (ProtobufCMessage **)storages) < 0)
        return CTL_EXIT_USAGE;
    if (parse_extras(&grpc__device__descriptor, "--device", device_json, n_device,
                     (ProtobufCMessage **)devices) < 0) {
        free_extras((ProtobufCMessage **)storages, n_storage);
        return CTL_EXIT_USAGE;
    }
    Grpc__Spec *spec = NULL;
    bool sandbox_pidns = false;
    if (oci_bundle_to_spec(bundle, guest_rootfs, &spec, &sandbox_pidns, &err) < 0) {
        fprintf(stderr, "agent-ctl: bundle %s: %s\n", bundle, err.msg);
        return CTL_EXIT_USAGE;
    }
    if (!spec->process) {
        fprintf(stderr, "agent-ctl: bundle %s: config.json has no process\n", bundle);
        protobuf_c_message_free_unpacked(&spec->base, NULL);
        return CTL_EXIT_USAGE;
    }
    if (tty)
        spec->process->terminal = true;
    struct winsize ws;
    if (spec->process->terminal && !spec->process->consolesize && local_winsize(&ws)) {
        spec->process->consolesize = ka_xmalloc(sizeof(*spec->process->consolesize));
        grpc__box__init(spec->process->consolesize);
        spec->process->consolesize->height = ws.ws_row;
        spec->process->consolesize->width = ws.ws_col;
    }
    struct proc_io p = {.cid = cid,
                        .eid = cid,
                        .signal_eid = "",
                        .tty = spec->process->terminal,
                        .forward_stdin = interactive};

    /* Signals wait in the signalfd from here on: one that comes before the process
     * has started cancels the run (below) instead of leaving a container behind. */
    struct sigs s = {.fd = -1};
    if (sigs_begin(&s) < 0) {
        fprintf(stderr, "agent-ctl: signalfd: %s\n", strerror(errno));
        protobuf_c_message_free_unpacked(&spec->base, NULL);
        return CTL_EXIT_TRANSPORT;
    }
    struct ctl x;
    int rc = ctl_open(&x, o);
    if (rc) {
        sigs_end(&s);
        protobuf_c_message_free_unpacked(&spec->base, NULL);
        return rc;
    }
    if (sandbox) {
        char hostname[MAX_HOSTNAME + 1];
        snprintf(hostname, sizeof(hostname), "%s", cid);
        Grpc__CreateSandboxRequest req = GRPC__CREATE_SANDBOX_REQUEST__INIT;
        req.hostname = hostname;
        req.sandbox_id = (char *)cid;
        req.sandbox_pidns = sandbox_pidns;
        rc = unary(&x, "CreateSandbox", &req.base, NULL, NULL, false);
    }
    if (rc == 0) {
        Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
        req.container_id = (char *)cid;
        req.exec_id = (char *)cid;
        req.oci = spec;
        req.sandbox_pidns = sandbox_pidns;
        req.storages = storages;
        req.n_storages = n_storage;
        req.devices = devices;
        req.n_devices = n_device;
        rc = unary(&x, "CreateContainer", &req.base, NULL, NULL, false);
    }
    protobuf_c_message_free_unpacked(&spec->base, NULL);
    free_extras((ProtobufCMessage **)storages, n_storage);
    free_extras((ProtobufCMessage **)devices, n_device);
    if (rc) {
        sigs_end(&s);
        ttrpc_client_close(&x.c);
        return rc;
    }

    int stop = sigs_take_stop(&s);
    if (stop) {
        fprintf(stderr, "agent-ctl: %s before the container started\n", strsignal(stop));
        rc = 128 + stop;
    }
    if (rc == 0) {
        Grpc__StartContainerRequest req = GRPC__START_CONTAINER_REQUEST__INIT;
        req.container_id = (char *)cid;
        rc = unary(&x, "StartContainer", &req.base, NULL, NULL, false);
    }
    int status = 0;
    if (rc == 0 && detach) {
        /* Started and left running: its stdio stays with the agent (ReadStdout,
         * WaitProcess... by anyone), as after the runtime's own StartContainer. */
        sigs_end(&s);
        ttrpc_client_close(&x.c);
        return 0;
    }
    if (rc == 0)
        rc = session(&x, &p, &s, &status);
    sigs_end(&s);
    /* After a failed start too, so a failed run leaves nothing behind; not after a
     * broken connection, which cannot carry it. */
    if (!keep && rc != CTL_EXIT_TRANSPORT) {
        int rrc = remove_container(&x, cid);
        if (rc == 0)
            rc = rrc;
    }
    ttrpc_client_close(&x.c);
    return rc ? rc : exit_code(status);
}

/* ---- exec ----------------------------------------------------------------------- */

void ctl_random_bytes(uint8_t *b, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(b + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) { /* no getrandom: time and pid are enough to be unique here */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)getpid();
            for (size_t i = got; i < len; i++, v = v * 6364136223846793005ULL + 1)
                b[i] = (uint8_t)(v >> 56);
            return;
        }
        got += (size_t)n;
    }
}

/* A random UUID (version 4), as the runtime picks for each exec. */
static void new_exec_id(char out[37])
{
    uint8_t b[16];
    ctl_random_bytes(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
    if (len == 0 || len > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

int ctl_cmd_exec(const struct ctl_conn_opts *o, int argc, char **argv)
{
    static const struct option opts[] = {
        {"tty", no_argument, NULL, 't'},        {"interactive", no_argument, NULL, 'i'},
        {"user", required_argument, NULL, 'u'}, {"cwd", required_argument, NULL, 'w'},
        {"env", required_argument, NULL, 'e'},  {NULL, 0, NULL, 0},
    };
    bool tty = false, interactive = false;
    uint32_t uid = 0, gid = 0;
    const char *cwd = "/";
    cleanup_free char **env = ka_xcalloc(MAX_EXEC_ENV + 2, sizeof(char *));
    size_t n_env = 0;
    bool have_path = false, have_term = false;
    int opt;
    optind = 0;
    opterr = 0;
    /* '+': options end at CID, so ARGS keep theirs even without "--". */
    while ((opt = getopt_long(argc, argv, "+tiu:w:e:", opts, NULL)) != -1) {
        switch (opt) {
        case 't':
            tty = true;
            break;
        case 'i':
            interactive = true;
            break;
        case 'u': {
            const char *colon = strchr(optarg, ':');
            size_t ulen = colon ? (size_t)(colon - optarg) : strlen(optarg);
            if (!parse_u32(optarg, ulen, &uid) ||
                (colon && !parse_u32(colon + 1, strlen(colon + 1), &gid))) {
                usage_error("exec", "--user takes UID or UID:GID (numbers)");
                return CTL_EXIT_USAGE;
            }
            if (!colon)
                gid = 0;
            break;
        }
        case 'w':
            if (optarg[0] != '/') {
                usage_error("exec", "--cwd takes an absolute path");
                return CTL_EXIT_USAGE;
            }
            cwd = optarg;
            break;
        case 'e':
            if (!strchr(optarg, '=') || optarg[0] == '=') {
                usage_error("exec", "--env takes NAME=VALUE");
                return CTL_EXIT_USAGE;
            }
            if (n_env >= MAX_EXEC_ENV) {
                usage_error("exec", "too many --env");
                return CTL_EXIT_USAGE;
            }
            have_path |= strncmp(optarg, "PATH=", 5) == 0;
            have_term |= strncmp(optarg, "TERM=", 5) == 0;
            env[n_env++] = optarg;
            break;
        default:
            return bad_option(argv[0], argv);
        }
    }
    if (optind >= argc) {
        usage_error("exec", "takes CID -- ARGS...");
        return CTL_EXIT_USAGE;
    }
    const char *cid = argv[optind++];
    if (optind < argc && strcmp(argv[optind], "--") == 0)
        optind++;
    if (optind >= argc) {
        usage_error("exec", "no command to run (CID -- ARGS...)");
        return CTL_EXIT_USAGE;
    }
    if (!have_path)
        env[n_env++] = (char *)DEFAULT_PATH;
    if (tty && !have_term)
        env[n_env++] = (char *)"TERM=xterm";

    Grpc__User user = GRPC__USER__INIT;
    user.uid = uid;
    user.gid = gid;
    Grpc__Process proc = GRPC__PROCESS__INIT;
    proc.terminal = tty;
    proc.user = &user;
    proc.args = argv + optind;
    proc.n_args = (size_t)(argc - optind);
    proc.env = env;
    proc.n_env = n_env;
    proc.cwd = (char *)cwd;
    Grpc__Box box = GRPC__BOX__INIT;
    struct winsize ws;
    if (tty && local_winsize(&ws)) {
        box.height = ws.ws_row;
        box.width = ws.ws_col;
        proc.consolesize = &box;
    }
    char eid[37];
    new_exec_id(eid);
    struct proc_io p = {.cid = cid,
                        .eid = eid,
                        .signal_eid = eid,
                        .tty = tty,
                        .forward_stdin = interactive};

    struct ctl x;
    int rc = ctl_open(&x, o);
    if (rc)
        return rc;
    struct sigs s = {.fd = -1};
    if (sigs_begin(&s) < 0) {
        fprintf(stderr, "agent-ctl: signalfd: %s\n", strerror(errno));
        ttrpc_client_close(&x.c);
        return CTL_EXIT_TRANSPORT;
    }
    Grpc__ExecProcessRequest req = GRPC__EXEC_PROCESS_REQUEST__INIT;
    req.container_id = (char *)cid;
    req.exec_id = eid;
    req.process = &proc;
    rc = unary(&x, "ExecProcess", &req.base, NULL, NULL, false);
    int status = 0;
    if (rc == 0)
        rc = session(&x, &p, &s, &status);
    sigs_end(&s);
    ttrpc_client_close(&x.c);
    return rc ? rc : exit_code(status);
}
