/* Where ttrpc is served or reached:
 *   vsock://CID:PORT     AF_VSOCK (CID -1 = any; the agent's default vsock://-1:1024)
 *   unix:///path         AF_UNIX stream socket (host-side tests)
 *   unix://@name         AF_UNIX abstract socket "name" (as Kata's agent takes it)
 *   serial:///dev/vportNpM    a virtio-serial port by device path
 *   serial://NAME              a virtio-serial port by name (agent.channel.0), looked up in
 *                              /sys/class/virtio-ports/(star)/name since no udev makes
 *                              /dev/virtio-ports/ links in a minimal guest */
#ifndef KA_TTRPC_TRANSPORT_H
#define KA_TTRPC_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/error.h"

enum ka_addr_kind {
    KA_ADDR_VSOCK,
    KA_ADDR_UNIX,
    KA_ADDR_SERIAL,
};

#define KA_VIRTIO_PORTS_DIR "/sys/class/virtio-ports"

struct ka_addr {
    enum ka_addr_kind kind;
    uint32_t cid;
    uint32_t port;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix socket or serial device */
    char port_name[128];                                    /* serial by name */
};

int ka_addr_parse(const char *text, struct ka_addr *addr, struct ka_error *err);

/* A listening, non-blocking, close-on-exec socket for vsock or unix addresses. */
int ka_addr_listen(const struct ka_addr *addr, struct ka_error *err);

/* A connected, blocking, close-on-exec socket for vsock or unix addresses. */
int ka_addr_connect(const struct ka_addr *addr, struct ka_error *err);

/* Find the /dev node of the virtio-serial port called name under ports_dir
 * (KA_VIRTIO_PORTS_DIR in the agent). Writes "/dev/<entry>" into out. */
int ka_serial_find_port(const char *ports_dir, const char *name, char *out, size_t size,
                        struct ka_error *err);

/* Open a serial address (by path, or by name under ports_dir), non-blocking. */
int ka_serial_open(const struct ka_addr *addr, const char *ports_dir, struct ka_error *err);

/* Only the host may reach an agent listener. A container in the guest can open
 * AF_VSOCK sockets, and with vsock loopback (CONFIG_VSOCKETS_LOOPBACK) reach the
 * guest's own CID: every vsock listener (ttrpc, debug console, log port) checks the
 * peer of each accepted connection and closes it unless it is the host.
 *
 * The decision on a peer address: not vsock (a unix socket: host-side tests) passes;
 * vsock passes for VMADDR_CID_HOST, and for VMADDR_CID_LOCAL only when allow_local. */
bool ka_peer_addr_allowed(const struct sockaddr *sa, socklen_t len, bool allow_local);

/* Admit loopback vsock peers as well (agent.vsock_allow_local; tests only). Logs a
 * warning when turned on. Applies to every listener's next accept. */
void ka_vsock_set_allow_local(bool allow);

/* For a freshly accepted fd: getpeername and the decision above. A refused peer is
 * logged at WARN under subsystem (rate-limited: a container can connect in a loop);
 * the caller closes the fd. */
bool ka_accepted_peer_allowed(int fd, const char *subsystem, const char *where);

#endif
