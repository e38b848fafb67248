/* Reaching the agent: every address form agent-ctl takes, for every command.
 *
 *   vsock://CID:PORT           AF_VSOCK (QEMU)
 *   unix:///path               a unix socket: the agent's own --server-addr in tests,
 *                              or QEMU's socket for the agent's virtio-serial port
 *   unix://@name               an abstract unix socket (unix(7))
 *   hvsock:///path/to.sock:PORT  hybrid vsock (Cloud Hypervisor, Firecracker): a unix
 *                              socket on which the client writes "CONNECT PORT\n" and
 *                              reads "OK <host port>\n" before the stream is the
 *                              guest's vsock PORT
 * and kata-agent-ctl's spelling of hybrid vsock: unix:///path with --hybrid-vsock
 * (port --hybrid-vsock-port, default 1024). */
#ifndef KA_AGENT_CTL_DIAL_H
#define KA_AGENT_CTL_DIAL_H

#include <stdint.h>

#include "core/error.h"
#include "ttrpc/client.h"

#define CTL_HYBRID_VSOCK_DEFAULT_PORT 1024u

/* hybrid_vsock_port: 0 = take addr as it is; else addr must be unix:///path and the
 * CONNECT handshake for that port is done on it. The socket's receive timeout is
 * timeout_s (0 = none), for the handshake and every reply after it. */
int ctl_dial(struct ttrpc_client *c, const char *addr, uint32_t hybrid_vsock_port,
             unsigned long timeout_s, struct ka_error *err);

#endif
