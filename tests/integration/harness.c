#include <stdbool.h>

#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ttrpc.pb-c.h"
#include "ttrpc/frame.h"

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int try_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&un, sizeof(un)) == 0)
        return fd;
    close(fd);
    return -1;
}

/* Replace every "@SOCK@" in text with the scratch socket path. */
static void expand(char *out, size_t size, const char *text, const char *sock)
{
    size_t n = 0;
    while (*text && n + 1 < size) {
        if (strncmp(text, "@SOCK@", 6) == 0) {
            n += (size_t)snprintf(out + n, size - n, "%s", sock);
            text += 6;
        } else {
            out[n++] = *text++;
        }
    }
    out[n < size ? n : size - 1] = '\0';
}

static int isolate_next;    /* unshare flags for the next agent, 0 = none */
static int inherit_next[4]; /* fd numbers the next agent inherits */
static size_t n_inherit_next;

void agent_inherit_fds_next(const int *numbers, size_t n)
{
    assert_true(n <= sizeof(inherit_next) / sizeof(*inherit_next));
    memcpy(inherit_next, numbers, n * sizeof(*numbers));
    n_inherit_next = n;
}

void agent_start_isolated(struct agent_proc *p, const char *cmdline)
{
    isolate_next = CLONE_NEWNS;
    agent_start_full(p, NULL, cmdline, NULL);
}

void agent_start_isolated_netns(struct agent_proc *p, const char *cmdline)
{
    isolate_next = CLONE_NEWNS | CLONE_NEWNET;
    agent_start_full(p, NULL, cmdline, NULL);
}

/* In the agent's child, before exec: a private mount namespace with its own /run
 * (and a network namespace of its own when asked). */
static void isolate(int flags)
{
    if (unshare(flags) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755") < 0) {
        perror("isolate the agent (root needed)");
        _exit(126);
    }
}

void agent_start_full(struct agent_proc *p, const char *addr, const char *cmdline,
                      char *const *extra_env)
{
    int isolated = isolate_next;
    isolate_next = 0;
    size_t n_inherit = n_inherit_next;
    n_inherit_next = 0;
    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "/tmp/ka-it-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->sock, sizeof(p->sock), "%s/agent.sock", p->dir);
    snprintf(p->log, sizeof(p->log), "%s/agent.log", p->dir);
    bool builtin = addr && strcmp(addr, AGENT_ADDR_BUILTIN) == 0;
    bool on_sock = addr == NULL || *addr == '\0';
    if (on_sock)
        snprintf(p->addr, sizeof(p->addr), "unix://%s", p->sock);
    else
        snprintf(p->addr, sizeof(p->addr), "%s", addr);
    char cmdline_path[128];
    snprintf(cmdline_path, sizeof(cmdline_path), "%s/cmdline", p->dir);
    FILE *f = fopen(cmdline_path, "w");
    assert_non_null(f);
    char text[1024];
    expand(text, sizeof(text), cmdline ? cmdline : "", p->sock);
    fputs(text, f);
    fclose(f);

    const char *bin = env_or("KA_AGENT_BIN", "kata-agent");
    const char *emu = getenv("KA_AGENT_EMULATOR");
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        int log = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
        /* Nothing of the test's own goes with it: an agent left behind by a failed
         * test must not hold, say, the fd of a `flock` around the test run. */
        close_range(3, ~0u, 0);
        for (size_t i = 0; i < n_inherit; i++) {
            int dir = open(p->dir, O_RDONLY | O_DIRECTORY); /* no CLOEXEC: inherited */
            if (dir < 0 ||
                (dir != inherit_next[i] && (dup2(dir, inherit_next[i]) < 0 || close(dir) < 0)))
                _exit(125);
        }
        if (isolated)
            isolate(isolated);
        for (char *const *e = extra_env; e && *e; e++) {
            char *entry = malloc(1024);
            expand(entry, 1024, *e, p->sock);
            putenv(entry);
        }
        char server_flag[200], cmdline_flag[160];
        snprintf(server_flag, sizeof(server_flag), "--server-addr=%s", p->addr);
        snprintf(cmdline_flag, sizeof(cmdline_flag), "--cmdline-file=%s", cmdline_path);
        /* addr "" means: no flag, the cmdline or the environment names the socket. */
        const char *argv[5];
        int n = 0;
        if (emu && *emu)
            argv[n++] = emu;
        argv[n++] = bin;
        argv[n++] = cmdline_flag;
        if (!(addr && *addr == '\0') && !builtin)
            argv[n++] = server_flag;
        argv[n] = NULL;
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (!on_sock)
        return;                       /* the caller knows how to reach it */
    long deadline = now_ms() + 20000; /* qemu-user start-up can be slow */
    for (;;) {
        int fd = try_connect(p->sock);
        if (fd >= 0) {
            close(fd);
            return;
        }
        int status;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            fail_msg("agent exited during start-up (status 0x%x); log in %s", status, p->log);
        }
        if (now_ms() > deadline)
            fail_msg("agent did not start listening on %s", p->sock);
        usleep(10000);
    }
}

void agent_start(struct agent_proc *p)
{
    agent_start_full(p, NULL, NULL, NULL);
}

bool agent_alive(const struct agent_proc *p)
{
    return p->pid > 0 && kill(p->pid, 0) == 0 && waitpid(p->pid, NULL, WNOHANG) == 0;
}

void agent_kill(struct agent_proc *p)
{
    if (agent_alive(p)) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    p->pid = 0;
}

void agent_stop(struct agent_proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGTERM);
    int status = 0;
    long deadline = now_ms() + 20000;
    while (waitpid(p->pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            fail_msg("agent did not exit on SIGTERM");
        }
        usleep(5000);
    }
    p->pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "tail -n 40 %s >&2", p->log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no agent log)\n");
        fail_msg("agent exit status 0x%x", status);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", p->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", p->dir);
}

int agent_fd_count(const struct agent_proc *p)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)p->pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int agent_wait_fd_count(const struct agent_proc *p, int want, int ms)
{
    long deadline = now_ms() + ms;
    int n;
    while ((n = agent_fd_count(p)) != want && now_ms() < deadline)
        usleep(10000);
    return n;
}

static void drain(int fd, char *buf, size_t size)
{
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, buf + n, size - 1 - n)) > 0 && n + 1 < size)
        n += (size_t)r;
    buf[n] = '\0';
}

int run_ctl(const struct agent_proc *p, char *out, size_t out_size, char *err, size_t err_size,
            const char *const *args)
{
    char out_path[128], err_path[128];
    snprintf(out_path, sizeof(out_path), "%s/ctl.out", p->dir);
    snprintf(err_path, sizeof(err_path), "%s/ctl.err", p->dir);
    const char *ctl = env_or("KA_AGENT_CTL_BIN", "agent-ctl");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, STDOUT_FILENO);
        dup2(e, STDERR_FILENO);
        const char *argv[32] = {ctl, "--addr", p->addr};
        int n = 3;
        for (const char *const *a = args; *a && n < 31; a++)
            argv[n++] = *a;
        argv[n] = NULL;
        execv(ctl, (char *const *)argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    int fd = open(out_path, O_RDONLY);
    drain(fd, out, out_size);
    close(fd);
    fd = open(err_path, O_RDONLY);
    drain(fd, err, err_size);
    close(fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int raw_connect(const struct agent_proc *p)
{
    int fd = try_connect(p->sock);
    assert_true(fd >= 0);
    return fd;
}

void raw_send(int fd, const void *buf, size_t len)
{
    const uint8_t *b = buf;
    while (len > 0) {
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, b, len);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        b += n;
        len -= (size_t)n;
    }
}

void raw_send_frame(int fd, uint32_t stream_id, uint8_t type, uint8_t flags, const void *data,
                    uint32_t len)
{
    uint8_t hdr[TTRPC_HEADER_SIZE];
    struct ttrpc_header h = {.length = len, .stream_id = stream_id, .type = type, .flags = flags};
    ttrpc_header_encode(&h, hdr);
    raw_send(fd, hdr, sizeof(hdr));
    if (len)
        raw_send(fd, data, len);
}

void raw_send_request(int fd, uint32_t stream_id, const char *service, const char *method,
                      const void *payload, size_t len)
{
    Ttrpc__Request req = TTRPC__REQUEST__INIT;
    req.service = (char *)service;
    req.method = (char *)method;
    req.payload.data = (uint8_t *)payload;
    req.payload.len = len;
    size_t n = ttrpc__request__get_packed_size(&req);
    uint8_t *buf = malloc(n ? n : 1);
    ttrpc__request__pack(&req, buf);
    raw_send_frame(fd, stream_id, TTRPC_TYPE_REQUEST, 0, buf, (uint32_t)n);
    free(buf);
}

static int read_full(int fd, void *buf, size_t len, int ms)
{
    uint8_t *b = buf;
    long deadline = now_ms() + ms;
    while (len > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        long left = deadline - now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return -1;
        ssize_t n = read(fd, b, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

int raw_recv_response(int fd, uint32_t *stream_id, int *code, char *message, size_t msg_size)
{
    uint8_t hdr[TTRPC_HEADER_SIZE];
    if (read_full(fd, hdr, sizeof(hdr), 5000) < 0)
        return -1;
    struct ttrpc_header h;
    ttrpc_header_decode(hdr, &h);
    assert_int_equal(h.type, TTRPC_TYPE_RESPONSE);
    assert_true(h.length <= TTRPC_MAX_DATA);
    uint8_t *data = malloc(h.length ? h.length : 1);
    if (read_full(fd, data, h.length, 5000) < 0) {
        free(data);
        return -1;
    }
    Ttrpc__Response *resp = ttrpc__response__unpack(NULL, h.length, data);
    free(data);
    assert_non_null(resp);
    *stream_id = h.stream_id;
    *code = resp->status ? resp->status->code : 0;
    if (message)
        snprintf(message, msg_size, "%s",
                 resp->status && resp->status->message ? resp->status->message : "");
    ttrpc__response__free_unpacked(resp, NULL);
    return 0;
}

bool raw_wait_closed(int fd, int ms)
{
    uint8_t b[4096];
    long deadline = now_ms() + ms;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        long left = deadline - now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return false;
        ssize_t n = read(fd, b, sizeof(b));
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
    }
}

int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

bool have_loop_tools(void)
{
    if (sh("command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null") == 0)
        return true;
    fprintf(stderr, "needs mkfs.ext4 and losetup\n");
    return false;
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool read_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

long agent_status_kb(const struct agent_proc *p, const char *field)
{
    char path[64], line[256], key[32];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
    snprintf(key, sizeof(key), "%s: %%ld", field);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, key, &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

int agent_mount_count(const struct agent_proc *p, const char *mount_point, const char *type)
{
    char path[64], line[4096], want[600];
    snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)p->pid);
    snprintf(want, sizeof(want), " %s ", mount_point);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        const char *sep = strstr(line, " - ");
        if (!strstr(line, want) || !sep || strstr(line, want) > sep)
            continue;
        if (!type || strncmp(sep + 3, type, strlen(type)) == 0)
            n++;
    }
    fclose(f);
    return n;
}
