/* One stdio stream of a container process, seen from the agent: the read end of
 * stdout/stderr (or the pty master) or the write end of stdin (or a dup of the
 * master). ReadStdout/ReadStderr and WriteStdin calls queue on it, first come
 * first served, and are answered as the fd allows.
 *
 * Nothing is buffered in the agent: the fd is only watched while a call waits,
 * so when the host stops reading, the pipe fills (KA_STREAM_PIPE_SIZE) and the
 * container blocks. Agent memory never grows with output.
 *
 * End of stream is told so that every Kata runtime from 3.3 to 4.x stops cleanly
 * and gets every byte: the first read at EOF is answered with an empty success (a
 * 4.x runtime stops there, as the 4.x agent answers it), every later read with the
 * "eof" error status (a 3.3 runtime reads until an error: one empty success is one
 * more turn of its copy loop, not a spin). ReadStdout and ReadStderr are told
 * apart, since with a tty both read the one master. */
#ifndef KA_SANDBOX_STREAM_H
#define KA_SANDBOX_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/reactor.h"
#include "ttrpc/server.h"

/* A read answers at most this much (the shim asks for 32 KiB). */
#define KA_STREAM_MAX_READ (1u << 20)
/* Output pipes are grown to this (best effort; the default is 64 KiB) so that a
 * busy writer stays ahead of the reader (fewer wake-ups on both sides) and each
 * 32 KiB read comes back full. The pages only exist while output is unread and
 * are charged to the writing container's memory cgroup, not to the agent. */
#define KA_STREAM_PIPE_SIZE (1u << 20)

/* After the process exits, output still in the pipe is delivered first, and a pipe
 * that is empty but still held by a writer (a background child of the process) is
 * waited on this long after the exit before EOF is answered, as the 4.x agent does
 * (upstream 1080f6d87e). A pty hangs up when its session leader exits: its master
 * hands out what was written, then EIO, with nothing to wait for. */
#define KA_STREAM_DRAIN_MS 500

/* Which call reads: each is told EOF once with an empty success. */
enum ka_stream_reader {
    KA_STREAM_READ_STDOUT = 1,
    KA_STREAM_READ_STDERR = 2,
};

struct ka_stream {
    struct ka_reactor *reactor;
    int fd;           /* -1 when the stream does not exist or was closed */
    bool is_input;    /* the agent writes (stdin) */
    bool eof;         /* reads saw EOF (or EIO from a pty master), or draining ended */
    bool source_done; /* the process was reaped: drain, then EOF */
    bool drain_over;  /* KA_STREAM_DRAIN_MS passed since the exit: an empty pipe is EOF */
    uint8_t eof_told; /* enum ka_stream_reader bits that got their empty success */
    struct timespec drain_deadline; /* CLOCK_MONOTONIC: the exit + KA_STREAM_DRAIN_MS */
    struct ka_watch watch;
    struct ka_watch drain_timer;    /* its timerfd exists while the watch is active */
    struct ttrpc_call *head, *tail; /* parked calls */
};

void ka_stream_init(struct ka_stream *s, struct ka_reactor *r, int fd, bool is_input);
/* ReadStdout/ReadStderr: answer now or park until data or EOF. */
void ka_stream_read(struct ka_stream *s, struct ttrpc_call *call, uint32_t len,
                    enum ka_stream_reader reader);
/* WriteStdin: answer with the length once all of it is written. What the pipe does
 * not take at once waits with the call, uncopied: data must stay valid until the call
 * is answered or cancelled (the handler keeps its request with the call). */
void ka_stream_write(struct ka_stream *s, struct ttrpc_call *call, const uint8_t *data, size_t len);
/* The process is gone: readers get what is left, then EOF (after at most
 * KA_STREAM_DRAIN_MS for writers that still hold the pipe). */
void ka_stream_source_done(struct ka_stream *s);
/* Close the fd. Parked reads get what the pipe holds now, then EOF; parked writes
 * fail. */
void ka_stream_close(struct ka_stream *s);

#endif
