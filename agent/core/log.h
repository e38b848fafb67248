/* Structured logging: one JSON object per line with Kata's fields
 * (msg, level, ts, name, pid, version, source, subsystem) plus per-call keys.
 * Library code logs at debug at most; the RPC layer logs each outcome once. */
#ifndef KA_CORE_LOG_H
#define KA_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum ka_log_level {
    KA_LOG_CRITICAL = 0,
    KA_LOG_ERROR,
    KA_LOG_WARN,
    KA_LOG_INFO,
    KA_LOG_DEBUG,
    KA_LOG_TRACE,
};

/* Parse a level name as Kata accepts it (critical|fatal|panic|error|warn|warning|
 * info|debug|trace). Returns false for anything else. */
bool ka_log_level_parse(const char *s, enum ka_log_level *out);

void ka_log_set_level(enum ka_log_level level);
enum ka_log_level ka_log_get_level(void);

/* Where log lines go (stdout by default). The fd is not closed by the logger. */
void ka_log_set_fd(int fd);

/* A sink takes every line instead of the fd (one whole JSON line with its '\n'),
 * but only in the process that installed it: a forked child still writes to the fd,
 * so it never touches the parent's buffers or sockets. The sink must not block and
 * must not log. NULL puts the fd back. Used by agent.log_vport (guest/logport.h). */
typedef void (*ka_log_sink_fn)(void *data, const char *line, size_t len);
void ka_log_set_sink(ka_log_sink_fn fn, void *data);

/* Hold this process's lines (a forked child's are written as before) until
 * ka_log_release: PID 1 holds its start-up lines until the first call is answered,
 * since formatting and writing a line to an emulated UART costs milliseconds that the
 * host's first request would wait for. Each line keeps the time it was logged. Lines
 * that do not fit in the hold buffer (16 KiB), and any error line, release what is
 * held and are written at once. */
void ka_log_hold(void);
void ka_log_release(void);

/* Extra "key":"value" pairs: pass them as alternating key, value strings ending
 * with NULL, e.g. ka_log_kv(KA_LOG_INFO, "rpc", "request", "method", m, NULL). */
void ka_log_kv(enum ka_log_level level, const char *subsystem, const char *msg, ...)
    __attribute__((sentinel));

void ka_log(enum ka_log_level level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ka_log_enabled(level) ((level) <= ka_log_get_level())

#endif
