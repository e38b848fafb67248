/* GetIPTables / SetIPTables: iptables-save and iptables-restore --wait 5 (or the
 * ip6 ones) run as children of the agent without stopping the loop. The call is
 * parked while the helper runs; its stdin is fed, its stdout collected (bounded)
 * and the start of its stderr kept for the message, all through watches on the
 * reactor; the exit comes from the reaper. A helper still running after 30 s is
 * killed and the call answered DEADLINE_EXCEEDED. A client that goes away takes
 * the helper with it. */
#include "agent.h"
#include "core/child.h"
#include "core/log.h"
#include "core/util.h"
#include "rpc/dispatch.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.pb-c.h"

/* iptables-save output must fit in a reply frame (4 MiB) with room to spare. */
#define IPTABLES_MAX_OUTPUT (3u << 20)
#define IPTABLES_STDERR_MAX 512
#define IPTABLES_TIMEOUT_S 30
#define DEFAULT_PATH "/usr/sbin:/usr/bin:/sbin:/bin"

struct bytes {
    uint8_t *p;
    size_t len;
};

struct ipt_job {
    struct ttrpc_call *call;
    const char *prog;
    bool restore;
    pid_t pid;
    bool exited;
    int wstatus;
    int in_fd, out_fd, err_fd, timer_fd;
    struct ka_watch in_w, out_w, err_w, timer_w;
    struct bytes in, out, errb;
    size_t written;
};

/* Find prog in $PATH (or a default for sbin tools) as execvp would. */
static int find_program(const char *prog, char *out, size_t size)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = DEFAULT_PATH;
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        if (len > 0 && (size_t)snprintf(out, size, "%.*s/%s", (int)len, path, prog) < size &&
            access(out, X_OK) == 0)
            return 0;
        path += len + (colon ? 1 : 0);
    }
    return -1;
}

static void close_watched(struct ka_watch *w, int *fd)
{
    ka_reactor_del(w);
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Everything but the call: the helper (killed if it still runs; the reaper
 * collects it), fds, watches, buffers. */
static void job_free(struct ipt_job *j)
{
    if (!j->exited && j->pid > 0) {
        ka_child_unwatch(j->pid);
        kill(j->pid, SIGKILL);
    }
    close_watched(&j->in_w, &j->in_fd);
    close_watched(&j->out_w, &j->out_fd);
    close_watched(&j->err_w, &j->err_fd);
    close_watched(&j->timer_w, &j->timer_fd);
    free(j->in.p);
    free(j->out.p);
    free(j->errb.p);
    free(j);
}

static void job_cancel(struct ttrpc_call *call)
{
    job_free(call->park_data);
}

static void job_fail(struct ipt_job *j, enum ka_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void job_fail(struct ipt_job *j, enum ka_status status, const char *fmt, ...)
{
    struct ka_error err;
    va_list ap;
    va_start(ap, fmt);
    char msg[KA_ERROR_MSG_MAX];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ka_error_status_set(&err, status, "%s", msg);
    rpc_fail(j->call, &err);
    job_free(j);
}

/* Answer once the helper has exited and both of its outputs are closed. */
static void job_maybe_done(struct ipt_job *j)
{
    if (!j->exited || j->out_fd >= 0 || j->err_fd >= 0)
        return;
    if (!WIFEXITED(j->wstatus) || WEXITSTATUS(j->wstatus) != 0) {
        size_t n = j->errb.len;
        while (n > 0 && (j->errb.p[n - 1] == '\n' || j->errb.p[n - 1] == '\r'))
            n--;
        job_fail(j, KA_STATUS_INTERNAL, "%s failed (exit code %d): %.*s", j->prog,
                 ka_exit_code(j->wstatus), (int)n, j->errb.p ? (const char *)j->errb.p : "");
        return;
    }
    /* GetIPTablesResponse and SetIPTablesResponse are both {1 data bytes}. */
    Grpc__GetIPTablesResponse get = GRPC__GET_IPTABLES_RESPONSE__INIT;
    Grpc__SetIPTablesResponse set = GRPC__SET_IPTABLES_RESPONSE__INIT;
    get.data = set.data = (ProtobufCBinaryData){.len = j->out.len, .data = j->out.p};
    rpc_reply(j->call, j->restore ? &set.base : &get.base);
    job_free(j);
}

static void on_exit_status(void *data, pid_t pid, int wstatus)
{
    (void)pid;
    struct ipt_job *j = data;
    j->exited = true;
    j->wstatus = wstatus;
    job_maybe_done(j);
}

/* Read what is there; false when the job was answered (output too big). */
static bool drain(struct ipt_job *j, struct ka_watch *w, int *fd, struct bytes *b, size_t max,
                  bool fatal)
{
    uint8_t chunk[16384];
    for (;;) {
        ssize_t n = read(*fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0) {
            close_watched(w, fd);
            return true;
        }
        size_t take = (size_t)n;
        if (b->len + take > max) {
            if (fatal) {
                job_fail(j, KA_STATUS_RESOURCE_EXHAUSTED, "%s wrote more than %u bytes", j->prog,
                         IPTABLES_MAX_OUTPUT);
                return false;
            }
            take = max - b->len; /* stderr: the start is what explains */
        }
        if (take) {
            b->p = ka_xrealloc(b->p, b->len + take);
            memcpy(b->p + b->len, chunk, take);
            b->len += take;
        }
    }
}

static void on_out(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ipt_job *j = w->data;
    if (drain(j, w, &j->out_fd, &j->out, IPTABLES_MAX_OUTPUT, true))
        job_maybe_done(j);
}

static void on_err(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ipt_job *j = w->data;
    if (drain(j, w, &j->err_fd, &j->errb, IPTABLES_STDERR_MAX, false))
        job_maybe_done(j);
}

static void on_in(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ipt_job *j = w->data;
    ssize_t n = write(j->in_fd, j->in.p + j->written, j->in.len - j->written);
    if (n > 0)
        j->written += (size_t)n;
    /* EPIPE (SIGPIPE is ignored): the helper stopped reading; its status says why. */
    if ((n < 0 && errno != EAGAIN && errno != EINTR) || j->written == j->in.len)
        close_watched(w, &j->in_fd);
}

static void on_timeout(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ipt_job *j = w->data;
    job_fail(j, KA_STATUS_DEADLINE_EXCEEDED, "%s did not finish in %d s", j->prog,
             IPTABLES_TIMEOUT_S);
}

static pid_t spawn(const char *path, char *const argv[], int pin[2], int pout[2], int perr[2])
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
    dup2(pin[0], STDIN_FILENO);
    dup2(pout[1], STDOUT_FILENO);
    dup2(perr[1], STDERR_FILENO);
    execv(path, argv);
    _exit(127);
}

static void close_pipes(int p[][2], size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++)
            if (p[i][k] >= 0)
                close(p[i][k]);
}

/* Run the helper for this call and park the call until it is done. */
static int start(struct agent *a, struct ttrpc_call *call, bool v6, bool restore, const uint8_t *in,
                 size_t in_len, struct ka_error *err)
{
    const char *prog = restore ? (v6 ? "ip6tables-restore" : "iptables-restore")
                               : (v6 ? "ip6tables-save" : "iptables-save");
    char path[4096];
    if (find_program(prog, path, sizeof(path)) < 0)
        return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION, "%s not found", prog);
    int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}; /* stdin, stdout, stderr */
    for (int i = 0; i < 3; i++)
        if (pipe2(p[i], O_CLOEXEC) < 0) {
            int e = errno;
            close_pipes(p, 3);
            return ka_error_set(err, e, "pipe");
        }
    char *const save_argv[] = {(char *)prog, NULL};
    char *const restore_argv[] = {(char *)prog, "--wait", "5", NULL};
    pid_t pid = spawn(path, restore ? restore_argv : save_argv, p[0], p[1], p[2]);
    if (pid < 0) {
        int e = errno;
        close_pipes(p, 3);
        return ka_error_set(err, e, "fork %s", prog);
    }
    close(p[0][0]), close(p[1][1]), close(p[2][1]);
    struct ipt_job *j = ka_xcalloc(1, sizeof(*j));
    j->call = call;
    j->prog = prog;
    j->restore = restore;
    j->pid = pid;
    j->in_fd = p[0][1];
    j->out_fd = p[1][0];
    j->err_fd = p[2][0];
    j->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    ka_child_watch(pid, on_exit_status, j);
    fcntl(j->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(j->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(j->err_fd, F_SETFL, O_NONBLOCK);
    if (in_len) {
        j->in.p = ka_xmalloc(in_len);
        memcpy(j->in.p, in, in_len);
        j->in.len = in_len;
    } else {
        close(j->in_fd);
        j->in_fd = -1;
    }
    struct itimerspec its = {.it_value = {.tv_sec = IPTABLES_TIMEOUT_S}};
    if (j->timer_fd < 0 || timerfd_settime(j->timer_fd, 0, &its, NULL) < 0 ||
        ka_reactor_add(&a->reactor, &j->timer_w, j->timer_fd, EPOLLIN, on_timeout, j, err) < 0 ||
        ka_reactor_add(&a->reactor, &j->out_w, j->out_fd, EPOLLIN, on_out, j, err) < 0 ||
        ka_reactor_add(&a->reactor, &j->err_w, j->err_fd, EPOLLIN, on_err, j, err) < 0 ||
        (j->in_fd >= 0 &&
         ka_reactor_add(&a->reactor, &j->in_w, j->in_fd, EPOLLOUT, on_in, j, err) < 0)) {
        int e = errno;
        job_free(j);
        return ka_error_set(err, e, "watch %s", prog);
    }
    ttrpc_call_park(call, job_cancel, j);
    return 0;
}

static int get_iptables(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                        struct ka_error *err)
{
    const Grpc__GetIPTablesRequest *req = (const Grpc__GetIPTablesRequest *)m;
    return start(a, call, req->is_ipv6, false, NULL, 0, err);
}

static int set_iptables(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                        struct ka_error *err)
{
    const Grpc__SetIPTablesRequest *req = (const Grpc__SetIPTablesRequest *)m;
    return start(a, call, req->is_ipv6, true, req->data.data, req->data.len, err);
}

const struct rpc_handler rpc_iptables_handlers[] = {
    {"GetIPTables", get_iptables},
    {"SetIPTables", set_iptables},
    {NULL, NULL},
};
