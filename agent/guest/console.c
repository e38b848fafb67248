/* The debug console: shells on ptys relayed to vsock, unix or virtio-serial clients. */
#include "guest/console.h"

#include "core/child.h"
#include "core/log.h"
#include "core/util.h"
#include "ttrpc/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define RELAY_BUF (16 * 1024)
#define MAX_SESSIONS 8 /* open at once; more connections are told so and closed */
#define MAX_LISTENERS 4
#define MAX_PORTS 4
#define PUMP_ROUNDS 8 /* reads per wake-up, so one busy side cannot starve the loop */

extern char **environ;

struct relay_buf {
    size_t off, len; /* pending bytes are data[off, len) */
    char data[RELAY_BUF];
};

struct serial_port;

struct session {
    struct session *next, *prev;
    struct serial_port *port; /* NULL: the client is a socket this session owns */
    int client_fd;
    struct ka_watch client_watch; /* sockets only; a port's watch belongs to the port */
    int pty_fd;
    struct ka_watch pty_watch;
    pid_t pid;
    bool reaped;
    bool client_gone;   /* EOF/hang-up/error: nothing more can be sent to the client */
    bool client_rd_eof; /* a socket's half-close: no more input, output still wanted */
    bool pty_eof;       /* every slave fd is closed: the shell (and its jobs) left */
    bool closed;        /* fds closed, waiting for the shell to be reaped */
    struct relay_buf to_pty, to_client;
};

struct listener {
    int fd;
    struct ka_watch watch;
    char unix_path[sizeof(((struct ka_addr *)0)->path)];
    char where[128];
};

enum port_state {
    PORT_WAIT_HOST, /* EPOLLOUT|EPOLLET: woken when a host opens its end */
    PORT_SESSION,   /* a shell is relayed; the watch follows the session's needs */
    PORT_DRAIN,     /* the shell ended with the host still there: discard input until it leaves */
};

struct serial_port {
    int fd;
    struct ka_watch watch;
    enum port_state state;
    struct session *session;
    char where[160];
};

static struct {
    struct ka_reactor *reactor;
    struct session *sessions;
    size_t nsessions, nopen;
    struct listener listeners[MAX_LISTENERS];
    size_t nlisteners;
    struct serial_port ports[MAX_PORTS];
    size_t nports;
    pid_t console_pid; /* the no-port shell on /dev/console */
    char shell[PATH_MAX];
    char console_path[PATH_MAX];
    bool stopping;
} dc;

void ka_debug_console_set_shell(const char *path)
{
    snprintf(dc.shell, sizeof(dc.shell), "%s", path ? path : "");
}

void ka_debug_console_set_console_path(const char *path)
{
    snprintf(dc.console_path, sizeof(dc.console_path), "%s", path ? path : "");
}

size_t ka_debug_console_sessions(void)
{
    return dc.nsessions + (dc.console_pid > 0);
}

static const char *shell_path(void)
{
    if (dc.shell[0])
        return dc.shell;
    return access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
}

/* A notice to a peer that may not be reading: never blocks, never raises SIGPIPE. */
static void write_best_effort(int fd, const char *msg, size_t len)
{
    ssize_t n = send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK)
        n = write(fd, msg, len); /* serial ports are non-blocking already */
    (void)n;
}

/* ---- the shell ----------------------------------------------------------------- */

/* In the child: a clean process on tty_fd as stdin/out/err and controlling tty.
 * steal: take the tty from another session (needed for /dev/console, which PID 1
 * holds). Never returns. */
static void __attribute__((noreturn)) exec_shell(const char *shell, int tty_fd, bool steal)
{
    /* The agent blocks SIGCHLD/SIGTERM/SIGINT and ignores SIGPIPE; a mask and an
     * ignored disposition both survive exec, so put everything back. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    if (setsid() < 0 || ioctl(tty_fd, TIOCSCTTY, steal ? 1 : 0) < 0) {
        dprintf(tty_fd, "debug console: controlling tty: %s\r\n", strerror(errno));
        _exit(127);
    }
    for (int fd = 0; fd < 3; fd++)
        if (tty_fd != fd && dup2(tty_fd, fd) < 0)
            _exit(127);
    if (tty_fd > 2)
        close(tty_fd);
    close_range(3, ~0U, 0); /* the agent's fds are close-on-exec; this is belt and braces */
    if (chdir("/") < 0)
        _exit(127);
    const char *base = strrchr(shell, '/');
    char *const argv[] = {(char *)(base ? base + 1 : shell), (char *)"-i", NULL};
    execve(shell, argv, environ);
    dprintf(STDERR_FILENO, "debug console: exec %s: %s\r\n", shell, strerror(errno));
    _exit(127);
}

/* A new pty; the master non-blocking in *master, the slave in *slave. */
static int open_pty(int *master, int *slave, struct ka_error *err)
{
    cleanup_close int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (m < 0)
        return ka_error_set(err, errno, "open /dev/ptmx");
    char name[64];
    if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0)
        return ka_error_set(err, errno, "set up pty");
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0)
        return ka_error_set(err, errno, "open %s", name);
    /* The client sends no window size; give full-screen programs something sane. */
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    ioctl(s, TIOCSWINSZ, &ws);
    *master = take_fd(m);
    *slave = s;
    return 0;
}

/* ---- relay --------------------------------------------------------------------- */

static size_t buf_pending(const struct relay_buf *b)
{
    return b->len - b->off;
}

/* Free space, counting what compaction would give back. */
static size_t buf_room(const struct relay_buf *b)
{
    return RELAY_BUF - buf_pending(b);
}

/* Read from fd into b until it would block, b is full, or PUMP_ROUNDS. Returns 0,
 * 1 at EOF (or a pty's EIO), -errno on error. */
static int pump_in(int fd, struct relay_buf *b)
{
    for (int i = 0; i < PUMP_ROUNDS; i++) {
        if (b->len == RELAY_BUF && b->off > 0) {
            memmove(b->data, b->data + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        size_t room = RELAY_BUF - b->len;
        if (room == 0)
            return 0;
        ssize_t n = read(fd, b->data + b->len, room);
        if (n > 0) {
            b->len += (size_t)n;
            continue;
        }
        if (n == 0)
            return 1;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return errno == EIO ? 1 : -errno;
    }
    return 0;
}

/* Write b's pending bytes to fd until done or it would block. 0, or -errno. */
static int pump_out(int fd, struct relay_buf *b, bool is_socket)
{
    while (buf_pending(b) > 0) {
        const char *p = b->data + b->off;
        ssize_t n = is_socket ? send(fd, p, buf_pending(b), MSG_NOSIGNAL | MSG_DONTWAIT)
                              : write(fd, p, buf_pending(b));
        if (n >= 0) {
            b->off += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -errno;
    }
    b->off = b->len = 0;
    return 0;
}

/* Watch fd for events; with events 0 the watch is dropped unless keep (a socket
 * client stays registered so its hang-up is still reported). */
static void set_interest(struct ka_watch *w, int fd, uint32_t events, bool keep, ka_watch_fn fn,
                         void *data)
{
    struct ka_error err;
    int rc = 0;
    if (events == 0 && !keep) {
        ka_reactor_del(w);
        return;
    }
    if (w->active) {
        if (w->events != events)
            rc = ka_reactor_mod(w, events, &err);
    } else {
        rc = ka_reactor_add(dc.reactor, w, fd, events, fn, data, &err);
    }
    if (rc < 0)
        ka_log(KA_LOG_WARN, "console", "%s", err.msg);
}

static void client_event(struct ka_watch *w, uint32_t events);
static void pty_event(struct ka_watch *w, uint32_t events);
static void port_event(struct ka_watch *w, uint32_t events);
static void port_session_over(struct serial_port *p, bool host_left);

static void session_free(struct session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        dc.sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    dc.nsessions--;
    free(s);
}

/* Close both ends; the session object lives on until its shell is reaped. */
static void session_close(struct session *s)
{
    if (s->closed)
        return;
    s->closed = true;
    dc.nopen--;
    ka_reactor_del(&s->pty_watch);
    close(s->pty_fd); /* hangs up the slave: the shell gets SIGHUP */
    s->pty_fd = -1;
    if (s->port) {
        struct serial_port *p = s->port;
        s->port = NULL;
        port_session_over(p, s->client_gone);
    } else {
        ka_reactor_del(&s->client_watch);
        close(s->client_fd);
    }
    s->client_fd = -1;
    if (!s->reaped)
        kill(s->pid, SIGHUP); /* in case it had not taken the tty yet */
    ka_log_kv(KA_LOG_INFO, "console", "debug console session closed", NULL);
    if (s->reaped)
        session_free(s);
}

static void shell_exited(void *data, pid_t pid, int status)
{
    struct session *s = data;
    s->reaped = true;
    char code[16];
    snprintf(code, sizeof(code), "%d", ka_exit_code(status));
    char p[16];
    snprintf(p, sizeof(p), "%d", (int)pid);
    ka_log_kv(KA_LOG_DEBUG, "console", "debug shell exited", "shell_pid", p, "exit_code", code,
              NULL);
    /* Still open: the pty reads EIO once the shell's output is drained, which ends it. */
    if (s->closed)
        session_free(s);
}

/* After any I/O: end the session, or watch for what each side can do next. */
static void session_update(struct session *s)
{
    if (s->client_gone || (s->pty_eof && buf_pending(&s->to_client) == 0)) {
        session_close(s);
        return;
    }
    uint32_t cev = 0, pev = 0;
    if (!s->client_rd_eof && buf_room(&s->to_pty) > 0)
        cev |= EPOLLIN;
    if (buf_pending(&s->to_client) > 0)
        cev |= EPOLLOUT;
    if (!s->pty_eof && buf_room(&s->to_client) > 0)
        pev |= EPOLLIN;
    if (!s->pty_eof && buf_pending(&s->to_pty) > 0)
        pev |= EPOLLOUT;
    if (s->port)
        set_interest(&s->port->watch, s->client_fd, cev, true, port_event, s->port);
    else
        set_interest(&s->client_watch, s->client_fd, cev, true, client_event, s);
    set_interest(&s->pty_watch, s->pty_fd, pev, false, pty_event, s);
}

static void relay_client(struct session *s, uint32_t events)
{
    bool is_socket = s->port == NULL;
    if ((events & EPOLLIN) && !s->client_rd_eof) {
        int rc = pump_in(s->client_fd, &s->to_pty);
        /* A socket may half-close and still read; a serial port reads EOF only when
         * the host has gone. */
        if (rc > 0 && is_socket)
            s->client_rd_eof = true;
        else if (rc != 0)
            s->client_gone = true;
    }
    /* Hang-up: a socket's peer closed both ways, or the host left a serial port. */
    if (events & (EPOLLHUP | EPOLLERR))
        s->client_gone = true;
    if (!s->client_gone && pump_out(s->client_fd, &s->to_client, is_socket) < 0)
        s->client_gone = true;
    if (!s->pty_eof && pump_out(s->pty_fd, &s->to_pty, false) < 0)
        s->pty_eof = true;
}

static void relay_pty(struct session *s, uint32_t events)
{
    if (!s->pty_eof && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        if (pump_in(s->pty_fd, &s->to_client) != 0)
            s->pty_eof = true;
    }
    if (!s->pty_eof && pump_out(s->pty_fd, &s->to_pty, false) < 0)
        s->pty_eof = true;
    if (!s->client_gone && pump_out(s->client_fd, &s->to_client, s->port == NULL) < 0)
        s->client_gone = true;
}

static void client_event(struct ka_watch *w, uint32_t events)
{
    struct session *s = w->data;
    relay_client(s, events);
    session_update(s);
}

static void pty_event(struct ka_watch *w, uint32_t events)
{
    struct session *s = w->data;
    relay_pty(s, events);
    session_update(s);
}

/* A shell on a new pty for client_fd (a socket we now own, or a port's fd). */
static struct session *session_start(int client_fd, struct serial_port *port, const char *where,
                                     struct ka_error *err)
{
    int master = -1, slave = -1;
    if (open_pty(&master, &slave, err) < 0)
        return NULL;
    const char *shell = shell_path();
    pid_t pid = fork();
    if (pid < 0) {
        ka_error_set(err, errno, "fork debug shell");
        close(master);
        close(slave);
        return NULL;
    }
    if (pid == 0)
        exec_shell(shell, slave, false);
    close(slave); /* the shell holds the only slave fds: their closing is the pty's EOF */

    struct session *s = ka_xcalloc(1, sizeof(*s));
    s->port = port;
    s->client_fd = client_fd;
    s->pty_fd = master;
    s->pid = pid;
    s->next = dc.sessions;
    if (dc.sessions)
        dc.sessions->prev = s;
    dc.sessions = s;
    dc.nsessions++;
    dc.nopen++;
    ka_child_watch(pid, shell_exited, s);
    char p[16];
    snprintf(p, sizeof(p), "%d", (int)pid);
    ka_log_kv(KA_LOG_INFO, "console", "debug console session started", "on", where, "shell", shell,
              "shell_pid", p, NULL);
    session_update(s);
    return s;
}

/* ---- socket front doors -------------------------------------------------------- */

static void listener_event(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct listener *l = w->data;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ka_log(KA_LOG_WARN, "console", "accept on %s: %s", l->where, strerror(errno));
            return;
        }
        /* Before anything else: a shell for a container would be root in the guest. */
        if (!ka_accepted_peer_allowed(fd, "console", l->where)) {
            close(fd);
            continue;
        }
        if (dc.nopen >= MAX_SESSIONS) {
            static const char msg[] = "debug console: too many sessions\r\n";
            write_best_effort(fd, msg, sizeof(msg) - 1);
            close(fd);
            continue;
        }
        struct ka_error err;
        if (!session_start(fd, NULL, l->where, &err)) {
            ka_log(KA_LOG_WARN, "console", "debug console session: %s", err.msg);
            close(fd);
        }
    }
}

static int add_listener(const struct ka_addr *addr, const char *text, struct ka_error *err)
{
    if (dc.nlisteners == MAX_LISTENERS)
        return ka_error_set(err, ENOSPC, "too many debug console addresses");
    int fd = ka_addr_listen(addr, err);
    if (fd < 0)
        return fd;
    struct listener *l = &dc.listeners[dc.nlisteners];
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    snprintf(l->where, sizeof(l->where), "%s", text);
    if (addr->kind == KA_ADDR_UNIX)
        snprintf(l->unix_path, sizeof(l->unix_path), "%s", addr->path);
    if (ka_reactor_add(dc.reactor, &l->watch, fd, EPOLLIN, listener_event, l, err) < 0) {
        close(fd);
        return -1;
    }
    dc.nlisteners++;
    return 0;
}

/* ---- serial front doors -------------------------------------------------------- */

static void port_watch(struct serial_port *p, uint32_t events)
{
    set_interest(&p->watch, p->fd, events, true, port_event, p);
}

static void port_wait_host(struct serial_port *p)
{
    p->state = PORT_WAIT_HOST;
    /* Like the ttrpc serial transport: EPOLLHUP stays up while no host has the port
     * open, so wait for the edge where EPOLLOUT comes without it. */
    port_watch(p, EPOLLOUT | EPOLLET);
}

static void port_session_over(struct serial_port *p, bool host_left)
{
    p->session = NULL;
    if (host_left) {
        port_wait_host(p);
        return;
    }
    if (!dc.stopping) {
        static const char msg[] = "\r\n[debug console: shell exited; reconnect for a new one]\r\n";
        write_best_effort(p->fd, msg, sizeof(msg) - 1);
    }
    p->state = PORT_DRAIN;
    port_watch(p, EPOLLIN);
}

static void port_event(struct ka_watch *w, uint32_t events)
{
    struct serial_port *p = w->data;
    switch (p->state) {
    case PORT_SESSION: {
        struct session *s = p->session;
        relay_client(s, events);
        session_update(s);
        return;
    }
    case PORT_WAIT_HOST:
        if ((events & EPOLLHUP) || !(events & EPOLLOUT))
            return;
        if (dc.nopen >= MAX_SESSIONS) {
            port_session_over(p, false);
            return;
        }
        struct ka_error err;
        p->state = PORT_SESSION;
        p->session = session_start(p->fd, p, p->where, &err);
        if (!p->session) {
            ka_log(KA_LOG_WARN, "console", "debug console session on %s: %s", p->where, err.msg);
            port_session_over(p, false);
        }
        return;
    case PORT_DRAIN: {
        char buf[4096];
        ssize_t n;
        int rounds = 0;
        while ((n = read(p->fd, buf, sizeof(buf))) > 0 && ++rounds < PUMP_ROUNDS)
            ;
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ||
            (events & EPOLLHUP))
            port_wait_host(p);
        return;
    }
    }
}

static int add_port(const struct ka_addr *addr, const char *text, struct ka_error *err)
{
    if (dc.nports == MAX_PORTS)
        return ka_error_set(err, ENOSPC, "too many debug console ports");
    int fd = ka_serial_open(addr, KA_VIRTIO_PORTS_DIR, err);
    if (fd < 0)
        return fd;
    struct serial_port *p = &dc.ports[dc.nports];
    memset(p, 0, sizeof(*p));
    p->fd = fd;
    snprintf(p->where, sizeof(p->where), "%s", text);
    struct ka_error e2;
    p->state = PORT_WAIT_HOST;
    if (ka_reactor_add(dc.reactor, &p->watch, fd, EPOLLOUT | EPOLLET, port_event, p, &e2) < 0) {
        close(fd);
        *err = e2;
        return -1;
    }
    dc.nports++;
    return 0;
}

/* ---- /dev/console -------------------------------------------------------------- */

static void console_shell_exited(void *data, pid_t pid, int status)
{
    (void)data;
    char code[16];
    snprintf(code, sizeof(code), "%d", ka_exit_code(status));
    char p[16];
    snprintf(p, sizeof(p), "%d", (int)pid);
    ka_log_kv(KA_LOG_INFO, "console", "debug console shell exited", "shell_pid", p, "exit_code",
              code, NULL);
    dc.console_pid = 0;
}

static int start_on_console(struct ka_error *err)
{
    const char *path = dc.console_path[0] ? dc.console_path : "/dev/console";
    /* Opened here so a missing console is reported, not just the child's exit. The
     * child takes it as controlling tty from PID 1 (TIOCSCTTY with steal). */
    int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "open %s", path);
    const char *shell = shell_path();
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return ka_error_set(err, errno, "fork debug shell");
    }
    if (pid == 0)
        exec_shell(shell, fd, true);
    close(fd);
    dc.console_pid = pid;
    ka_child_watch(pid, console_shell_exited, NULL);
    ka_log_kv(KA_LOG_INFO, "console", "debug console shell started", "on", path, "shell", shell,
              NULL);
    return 0;
}

/* ---- setup --------------------------------------------------------------------- */

int ka_debug_console_listen(struct ka_reactor *r, const char *text, struct ka_error *err)
{
    dc.reactor = r;
    struct ka_addr addr;
    if (ka_addr_parse(text, &addr, err) < 0)
        return ka_error_wrap(err, "debug console address");
    int rc =
        addr.kind == KA_ADDR_SERIAL ? add_port(&addr, text, err) : add_listener(&addr, text, err);
    if (rc < 0)
        return ka_error_wrap(err, "debug console on %s", text);
    ka_log_kv(KA_LOG_INFO, "console", "debug console listening", "address", text, NULL);
    return 0;
}

int ka_debug_console_start(struct ka_reactor *r, const struct ka_config *cfg, struct ka_error *err)
{
    if (!cfg->debug_console)
        return 0;
    dc.reactor = r;
    int first = 0;
    struct ka_error one;
    bool any = false;
    if (cfg->debug_console_vport > 0) {
        char addr[64];
        snprintf(addr, sizeof(addr), "vsock://-1:%u", cfg->debug_console_vport);
        any = true;
        int rc = ka_debug_console_listen(r, addr, &one);
        if (rc < 0 && !first) {
            first = rc;
            *err = one;
        }
    }
    if (cfg->debug_console_port[0]) {
        /* A bare name is a virtio-serial port name, a path its device. */
        const char *v = cfg->debug_console_port;
        char addr[KA_CONFIG_STR_MAX + 16];
        snprintf(addr, sizeof(addr), "%s%s", strstr(v, "://") ? "" : "serial://", v);
        any = true;
        int rc = ka_debug_console_listen(r, addr, &one);
        if (rc < 0 && !first) {
            first = rc;
            *err = one;
        }
    }
    if (!any) {
        int rc = start_on_console(&one);
        if (rc < 0) {
            first = rc;
            *err = one;
            ka_error_wrap(err, "debug console");
        }
    }
    return first;
}

void ka_debug_console_stop(void)
{
    dc.stopping = true;
    for (size_t i = 0; i < dc.nlisteners; i++) {
        struct listener *l = &dc.listeners[i];
        ka_reactor_del(&l->watch);
        close(l->fd);
        if (l->unix_path[0])
            unlink(l->unix_path);
    }
    dc.nlisteners = 0;
    while (dc.sessions) {
        struct session *s = dc.sessions;
        if (!s->reaped) {
            ka_child_unwatch(s->pid);
            kill(s->pid, SIGKILL);
            s->reaped = true; /* left to the reaper as an unknown child */
        }
        if (s->closed)
            session_free(s);
        else
            session_close(s); /* frees it: reaped is set */
    }
    for (size_t i = 0; i < dc.nports; i++) {
        ka_reactor_del(&dc.ports[i].watch);
        close(dc.ports[i].fd);
    }
    dc.nports = 0;
    if (dc.console_pid > 0) {
        ka_child_unwatch(dc.console_pid);
        kill(dc.console_pid, SIGKILL);
        dc.console_pid = 0;
    }
    dc.nopen = 0;
    dc.stopping = false;
}
