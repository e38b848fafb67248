#include "dial.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/util.h"
#include "ttrpc/transport.h"

/* "OK 1073741824\n" is what Firecracker and Cloud Hypervisor answer; a longer line
 * is not a handshake reply. */
#define HANDSHAKE_LINE_MAX 64

/* Read the handshake's reply line a byte at a time: whatever follows the '\n' is
 * already the agent's ttrpc stream and must stay in the socket. */
static int hybrid_vsock_handshake(int fd, uint32_t port, struct ka_error *err)
{
    char line[HANDSHAKE_LINE_MAX + 1];
    int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
    if (write(fd, line, (size_t)n) != n)
        return ka_error_set(err, errno ? errno : EIO, "hybrid vsock: sending CONNECT");
    size_t len = 0;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ka_error_set(err, errno, "hybrid vsock: waiting for the reply to CONNECT %u",
                                port);
        if (r == 0)
            return ka_error_set(err, ECONNRESET,
                                "hybrid vsock: connection closed after CONNECT %u (no agent on "
                                "that port?)",
                                port);
        if (ch == '\n')
            break;
        if (len == HANDSHAKE_LINE_MAX)
            return ka_error_set(err, EPROTO, "hybrid vsock: reply to CONNECT is too long");
        line[len++] = ch;
    }
    line[len] = '\0';
    if (strncmp(line, "OK ", 3) != 0) {
        for (size_t i = 0; i < len; i++) /* the peer is not trusted to print */
            if (line[i] < 0x20 || line[i] > 0x7E)
                line[i] = '?';
        return ka_error_set(err, ECONNREFUSED, "hybrid vsock: CONNECT %u refused: '%s'", port,
                            line);
    }
    return 0;
}

/* hvsock:///path:PORT into the unix address and the port. */
static int parse_hvsock(const char *rest, char *unix_addr, size_t size, uint32_t *port,
                        struct ka_error *err)
{
    const char *colon = strrchr(rest, ':');
    char *end = NULL;
    unsigned long p = 0;
    if (colon && colon[1] >= '0' && colon[1] <= '9') {
        errno = 0;
        p = strtoul(colon + 1, &end, 10);
    }
    if (rest[0] != '/' || !colon || !end || *end || errno || p > UINT32_MAX)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "hybrid vsock address must be hvsock:///path/to.sock:PORT");
    int n = snprintf(unix_addr, size, "unix://%.*s", (int)(colon - rest), rest);
    if (n < 0 || (size_t)n >= size)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "hvsock path is too long");
    *port = (uint32_t)p;
    return 0;
}

int ctl_dial(struct ttrpc_client *c, const char *addr, uint32_t hybrid_vsock_port,
             unsigned long timeout_s, struct ka_error *err)
{
    char unix_addr[sizeof(((struct ka_addr *)0)->path) + 16];
    uint32_t port = hybrid_vsock_port;
    if (strncmp(addr, "hvsock://", 9) == 0) {
        if (parse_hvsock(addr + 9, unix_addr, sizeof(unix_addr), &port, err) < 0)
            return -1;
        addr = unix_addr;
    } else if (port && strncmp(addr, "unix://", 7) != 0) {
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "--hybrid-vsock needs a unix:// address");
    }
    struct ka_addr a;
    if (ka_addr_parse(addr, &a, err) < 0)
        return -1;
    if (a.kind == KA_ADDR_SERIAL)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "serial:// is the agent's side; reach a serial port through "
                                   "the unix socket the VMM puts it on (unix:///path)");
    cleanup_close int fd = ka_addr_connect(&a, err);
    if (fd < 0)
        return -1;
    if (timeout_s) {
        struct timeval tv = {.tv_sec = (time_t)timeout_s};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    if (port && hybrid_vsock_handshake(fd, port, err) < 0)
        return -1;
    ttrpc_client_adopt(c, take_fd(fd));
    return 0;
}
