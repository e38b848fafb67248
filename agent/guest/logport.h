/* agent.log_vport (reference/AGENT-PROTOCOL.md §4.4): the log stream on a vsock port
 * instead of the console.
 *
 * The agent listens on the port and takes one connection at a time (a second one
 * while the first is up is closed at once). Every log line goes to that connection;
 * while there is none, or while it cannot take more, lines wait in a bounded buffer
 * (256 KiB by default) that is flushed, oldest first, as soon as it can be. When the
 * buffer is full the oldest whole lines are dropped and one JSON line in their place
 * says how many ({"msg":"log buffer full: dropped N lines",...,"dropped":"N"}). If the
 * connection goes, logging falls back to buffering and the next connection is
 * accepted; a line cut in the middle by the loss is not resent in part.
 *
 * Writes are non-blocking: logging never blocks the reactor. Lines logged before
 * ka_logport_start() went to the log fd (the console); forked children keep writing
 * to that fd (core/log.h's sink rule). One log port per agent (module-level state). */
#ifndef KA_GUEST_LOGPORT_H
#define KA_GUEST_LOGPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "core/reactor.h"

#define KA_LOGPORT_BUFFER_DEFAULT (256 * 1024)

/* Nothing unless cfg->log_vport > 0: then listen on vsock://-1:<log_vport> and send
 * the log there from now on. On failure the log stays on the console. */
int ka_logport_start(struct ka_reactor *r, const struct ka_config *cfg, struct ka_error *err);

/* The same on any stream address (vsock:// or unix://, the tests' stand-in), with a
 * buffer of buffer_size bytes (0 = KA_LOGPORT_BUFFER_DEFAULT, at least 16 KiB). */
int ka_logport_listen(struct ka_reactor *r, const char *addr, size_t buffer_size,
                      struct ka_error *err);

/* Give a connected host up to timeout_ms to take what is buffered, then put the log
 * back on its fd and close everything. What never reached a host is dropped (its
 * size is logged on the fd). */
void ka_logport_stop(int timeout_ms);

/* For tests and diagnostics. */
bool ka_logport_connected(void);
size_t ka_logport_buffered(void);  /* bytes waiting */
uint64_t ka_logport_dropped(void); /* lines dropped since start */

#endif
