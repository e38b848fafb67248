#include "ttrpc/transport.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/vm_sockets.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>

static int parse_u32_field(const char *s, uint32_t *out, bool allow_minus_one)
{
    if (allow_minus_one && strcmp(s, "-1") == 0) {
        *out = VMADDR_CID_ANY;
        return 0;
    }
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0 || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_vsock(const char *rest, struct ka_addr *addr, struct ka_error *err)
{
    const char *colon = strrchr(rest, ':');
    if (!colon || colon == rest || strlen(rest) > 32)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "vsock address must be vsock://CID:PORT");
    char cid[33];
    memcpy(cid, rest, (size_t)(colon - rest));
    cid[colon - rest] = '\0';
    if (parse_u32_field(cid, &addr->cid, true) < 0 ||
        parse_u32_field(colon + 1, &addr->port, false) < 0)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "vsock address must be vsock://CID:PORT");
    addr->kind = KA_ADDR_VSOCK;
    return 0;
}

static int copy_path(char *dst, size_t size, const char *src, const char *what,
                     struct ka_error *err)
{
    size_t n = strlen(src);
    if (n == 0 || n >= size)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "%s must be 1 to %zu bytes",
                                   what, size - 1);
    memcpy(dst, src, n + 1);
    return 0;
}

int ka_addr_parse(const char *text, struct ka_addr *addr, struct ka_error *err)
{
    memset(addr, 0, sizeof(*addr));
    if (strncmp(text, "vsock://", 8) == 0)
        return parse_vsock(text + 8, addr, err);
    if (strncmp(text, "unix://", 7) == 0) {
        addr->kind = KA_ADDR_UNIX;
        /* unix://@NAME: the abstract socket NAME (unix(7)), as Kata's agent and
         * kata-agent-ctl take it; kept as "@NAME" in path. */
        if (text[7] != '/' && !(text[7] == '@' && text[8] != '\0'))
            return ka_error_status_set(
                err, KA_STATUS_INVALID_ARGUMENT,
                "unix address must be unix:///absolute/path or unix://@name");
        return copy_path(addr->path, sizeof(addr->path), text + 7, "unix socket path", err);
    }
    if (strncmp(text, "serial://", 9) == 0) {
        addr->kind = KA_ADDR_SERIAL;
        const char *rest = text + 9;
        if (rest[0] == '/')
            return copy_path(addr->path, sizeof(addr->path), rest, "serial device path", err);
        if (strchr(rest, '/'))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "serial port name must not contain '/'");
        return copy_path(addr->port_name, sizeof(addr->port_name), rest, "serial port name", err);
    }
    return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                               "unsupported address '%.64s' (vsock://, unix:// or serial://)",
                               text);
}

static int fill_sockaddr(const struct ka_addr *addr, struct sockaddr_storage *ss, socklen_t *len,
                         struct ka_error *err)
{
    memset(ss, 0, sizeof(*ss));
    if (addr->kind == KA_ADDR_VSOCK) {
        struct sockaddr_vm *vm = (struct sockaddr_vm *)ss;
        vm->svm_family = AF_VSOCK;
        vm->svm_cid = addr->cid;
        vm->svm_port = addr->port;
        *len = sizeof(*vm);
        return AF_VSOCK;
    }
    if (addr->kind == KA_ADDR_UNIX) {
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        un->sun_family = AF_UNIX;
        size_t n = strlen(addr->path);
        memcpy(un->sun_path, addr->path, n + 1);
        *len = sizeof(*un);
        if (addr->path[0] == '@') {
            /* Abstract: a NUL, then the name, whose every byte counts, so the length
             * must end exactly after it. */
            un->sun_path[0] = '\0';
            *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        }
        return AF_UNIX;
    }
    return ka_error_set(err, EINVAL, "serial addresses are not sockets");
}

int ka_addr_listen(const struct ka_addr *addr, struct ka_error *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int family = fill_sockaddr(addr, &ss, &len, err);
    if (family < 0)
        return family;
    cleanup_close int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ka_error_set(err, errno, "socket(%s)", family == AF_VSOCK ? "AF_VSOCK" : "AF_UNIX");
    if (family == AF_UNIX && addr->path[0] != '@') {
        /* A socket left behind by an earlier run would make bind fail; remove only a socket. */
        struct stat st;
        if (lstat(addr->path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(addr->path);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        if (family == AF_VSOCK)
            return ka_error_set(err, errno, "bind vsock port %u", addr->port);
        return ka_error_set(err, errno, "bind %s", addr->path);
    }
    if (listen(fd, SOMAXCONN) < 0)
        return ka_error_set(err, errno, "listen");
    return take_fd(fd);
}

int ka_addr_connect(const struct ka_addr *addr, struct ka_error *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int family = fill_sockaddr(addr, &ss, &len, err);
    if (family < 0)
        return family;
    cleanup_close int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ka_error_set(err, errno, "socket");
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&ss, len);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        if (family == AF_VSOCK)
            return ka_error_set(err, errno, "connect vsock %u:%u", addr->cid, addr->port);
        return ka_error_set(err, errno, "connect %s", addr->path);
    }
    return take_fd(fd);
}

int ka_serial_find_port(const char *ports_dir, const char *name, char *out, size_t size,
                        struct ka_error *err)
{
    cleanup_dir DIR *dir = opendir(ports_dir);
    if (!dir)
        return ka_error_set(err, errno, "open %s", ports_dir);
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[PATH_MAX], text[256];
        snprintf(path, sizeof(path), "%s/%s/name", ports_dir, de->d_name);
        cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, text, sizeof(text) - 1);
        if (n <= 0)
            continue;
        text[n] = '\0';
        text[strcspn(text, "\n")] = '\0';
        if (strcmp(text, name) == 0) {
            if ((size_t)snprintf(out, size, "/dev/%s", de->d_name) >= size)
                return ka_error_set(err, ENAMETOOLONG, "port device name");
            return 0;
        }
    }
    return ka_error_set(err, ENOENT, "no virtio-serial port named '%s' in %s", name, ports_dir);
}

int ka_serial_open(const struct ka_addr *addr, const char *ports_dir, struct ka_error *err)
{
    char path[PATH_MAX];
    if (addr->port_name[0]) {
        if (ka_serial_find_port(ports_dir, addr->port_name, path, sizeof(path), err) < 0)
            return -1;
    } else {
        snprintf(path, sizeof(path), "%s", addr->path);
    }
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "open serial port %s", path);
    /* A virtio port is not a tty; a tty (a pty in tests, a console) must be raw or
     * its line discipline would rewrite the binary frames. */
    struct termios tio;
    if (tcgetattr(fd, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(fd, TCSANOW, &tio);
    }
    return fd;
}

/* ---- who may connect ---------------------------------------------------------- */

static bool vsock_allow_local;

bool ka_peer_addr_allowed(const struct sockaddr *sa, socklen_t len, bool allow_local)
{
    if (len < (socklen_t)sizeof(sa->sa_family))
        return false; /* nothing to judge by (an unnamed peer has at least a family) */
    if (sa->sa_family != AF_VSOCK)
        return true;
    if (len < (socklen_t)sizeof(struct sockaddr_vm))
        return false;
    const struct sockaddr_vm *vm = (const struct sockaddr_vm *)sa;
    return vm->svm_cid == VMADDR_CID_HOST || (allow_local && vm->svm_cid == VMADDR_CID_LOCAL);
}

void ka_vsock_set_allow_local(bool allow)
{
    vsock_allow_local = allow;
    if (allow)
        ka_log(KA_LOG_WARN, "transport",
               "agent.vsock_allow_local is set: processes in the guest, containers included, "
               "can connect to the agent's vsock listeners (for tests only)");
}

/* At most REFUSAL_LOG_BURST lines per REFUSAL_LOG_WINDOW seconds; the rest are counted
 * and the count given with the next line logged. */
#define REFUSAL_LOG_WINDOW 10
#define REFUSAL_LOG_BURST 5

static void log_refusal(const char *subsystem, const char *where, const char *peer)
{
    static time_t window_start;
    static unsigned logged, suppressed;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - window_start >= REFUSAL_LOG_WINDOW) {
        window_start = now.tv_sec;
        logged = 0;
    }
    if (logged >= REFUSAL_LOG_BURST) {
        suppressed++;
        return;
    }
    logged++;
    char more[16];
    snprintf(more, sizeof(more), "%u", suppressed);
    suppressed = 0;
    ka_log_kv(KA_LOG_WARN, subsystem, "connection refused: only the host may connect", "address",
              where, "peer", peer, "refusals_not_logged", more, NULL);
}

bool ka_accepted_peer_allowed(int fd, const char *subsystem, const char *where)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    char peer[64];
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
        /* Already reset, or not a socket we know: nothing proves it is the host. */
        snprintf(peer, sizeof(peer), "unknown (%s)", strerror(errno));
        log_refusal(subsystem, where, peer);
        return false;
    }
    if (ka_peer_addr_allowed((struct sockaddr *)&ss, len, vsock_allow_local))
        return true;
    if (ss.ss_family == AF_VSOCK) {
        const struct sockaddr_vm *vm = (const struct sockaddr_vm *)&ss;
        snprintf(peer, sizeof(peer), "vsock cid %u port %u", vm->svm_cid, vm->svm_port);
    } else {
        snprintf(peer, sizeof(peer), "family %u", ss.ss_family);
    }
    log_refusal(subsystem, where, peer);
    return false;
}
