/* One stdio stream of a container process, seen from the agent: the read end of
 * stdout/stderr (or the pty master) or the write end of stdin (or a dup of the
 * master). ReadStdout/ReadStderr and WriteStdin calls queue on it, first come
 * first served, and are answered as the fd allows.
 *
 * Nothing is buffered in the agent: the fd is only watched while a call waits,
 * so when the host stops reading, the pipe fills (KA_STREAM_PIPE_SIZE) and the
 * container blocks. Agent memory never grows with output. */
#ifndef KA_SANDBOX_STREAM_H
#define KA_SANDBOX_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/reactor.h"
#include "ttrpc/server.h"

/* A read answers at most this much (the shim asks for 32 KiB). */
#define KA_STREAM_MAX_READ (1u << 20)
/* Output pipes are grown to this (best effort; the default is 64 KiB) so that a
 * busy writer stays ahead of the reader (fewer wake-ups on both sides) and each
 * 32 KiB read comes back full. The pages only exist while output is unread and
 * are charged to the writing container's memory cgroup, not to the agent. */
#define KA_STREAM_PIPE_SIZE (1u << 20)

struct ka_stream {
    struct ka_reactor *reactor;
    int fd;           /* -1 when the stream does not exist or was closed */
    bool is_input;    /* the agent writes (stdin) */
    bool eof;         /* reads saw EOF (or EIO from a pty master) */
    bool source_done; /* the process was reaped: an empty read means EOF */
    struct ka_watch watch;
    struct ttrpc_call *head, *tail; /* parked calls */
};

void ka_stream_init(struct ka_stream *s, struct ka_reactor *r, int fd, bool is_input);
/* ReadStdout/ReadStderr: answer now or park until data or EOF. */
void ka_stream_read(struct ka_stream *s, struct ttrpc_call *call, uint32_t len);
/* WriteStdin: answer with the length once all of it is written. What the pipe does
 * not take at once waits with the call, uncopied: data must stay valid until the call
 * is answered or cancelled (the handler keeps its request: ttrpc_call_hold_payload). */
void ka_stream_write(struct ka_stream *s, struct ttrpc_call *call, const uint8_t *data, size_t len);
/* The process is gone: waiting readers get what is left, then EOF. */
void ka_stream_source_done(struct ka_stream *s);
/* Close the fd; parked calls fail. */
void ka_stream_close(struct ka_stream *s);

#endif
