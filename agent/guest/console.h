/* The debug console (reference/AGENT-PROTOCOL.md §4.3): a root shell on a pty for
 * whoever connects, relayed as raw bytes, no protocol at all.
 *
 * Front doors, all optional and all at once when configured:
 *   agent.debug_console_vport=N    vsock port N (CID any); one shell per connection.
 *                                   `kata-runtime exec <sandbox>` dials it.
 *   agent.debug_console_port=P      our own, for hosts without vhost-vsock: a
 *                                   virtio-serial port by name ("console.0"), by path
 *                                   ("/dev/vport1p2"), or any address (serial://,
 *                                   unix://, vsock://). On a serial port one session
 *                                   runs while the host is connected; when the host
 *                                   disconnects the shell is hung up, and the next
 *                                   connection gets a new one. If the shell exits
 *                                   first, the port waits for the host to disconnect
 *                                   and come back.
 *   neither                         one interactive shell on /dev/console (not
 *                                   restarted when it exits, as upstream).
 *
 * The shell is /bin/bash, else /bin/sh, started with -i as a session leader with the
 * pty's slave as controlling tty, signals reset, cwd /. The relay is non-blocking with
 * bounded buffers in each direction: while one side's buffer is full the other side is
 * not read. A session ends when the client goes (EOF/hang-up; a socket's half-close
 * only stops input) or when the shell's side of the pty closes and its output has
 * been delivered; the pty is then closed (hanging up the shell) and the shell reaped
 * through core/child.h.
 *
 * One console per agent (module-level state); everything runs on the reactor. The
 * reaper (ka_children_init) must be running before a shell is started. */
#ifndef KA_GUEST_CONSOLE_H
#define KA_GUEST_CONSOLE_H

#include <stddef.h>

#include "core/config.h"
#include "core/error.h"
#include "core/reactor.h"

/* Nothing unless cfg->debug_console. Opens every configured front door; one that
 * fails is reported (the first error is returned) while the others keep running.
 * The caller logs the error and carries on: the debug console is never fatal. */
int ka_debug_console_start(struct ka_reactor *r, const struct ka_config *cfg, struct ka_error *err);

/* Serve the console on one address (vsock://, unix://, serial://): what start()
 * does for each front door; tests use it with unix:// and a pty as serial port. */
int ka_debug_console_listen(struct ka_reactor *r, const char *addr, struct ka_error *err);

/* Close every front door and session; shells still running are sent SIGKILL and
 * left to the reaper. */
void ka_debug_console_stop(void);

/* Test hooks: the shell to run (NULL = /bin/bash, else /bin/sh), the device the
 * no-port console uses (NULL = /dev/console), and how many sessions exist (open, or
 * closed and waiting for their shell to be reaped; the /dev/console shell counts as
 * one while it runs). */
void ka_debug_console_set_shell(const char *path);
void ka_debug_console_set_console_path(const char *path);
size_t ka_debug_console_sessions(void);

#endif
