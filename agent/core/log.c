#include "core/log.h"
#include "core/version.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum ka_log_level log_level = KA_LOG_INFO;
static int log_fd = STDOUT_FILENO;
static ka_log_sink_fn sink_fn;
static void *sink_data;
static pid_t sink_pid;

/* slog's level abbreviations, which kata-log-parser expects. */
static const char *const level_names[] = {
    [KA_LOG_CRITICAL] = "CRIT", [KA_LOG_ERROR] = "ERRO", [KA_LOG_WARN] = "WARN",
    [KA_LOG_INFO] = "INFO",     [KA_LOG_DEBUG] = "DEBG", [KA_LOG_TRACE] = "TRCE",
};

bool ka_log_level_parse(const char *s, enum ka_log_level *out)
{
    static const struct {
        const char *name;
        enum ka_log_level level;
    } names[] = {
        {"critical", KA_LOG_CRITICAL}, {"fatal", KA_LOG_CRITICAL}, {"panic", KA_LOG_CRITICAL},
        {"error", KA_LOG_ERROR},       {"warn", KA_LOG_WARN},      {"warning", KA_LOG_WARN},
        {"info", KA_LOG_INFO},         {"debug", KA_LOG_DEBUG},    {"trace", KA_LOG_TRACE},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return true;
        }
    }
    return false;
}

void ka_log_set_level(enum ka_log_level level)
{
    log_level = level;
}

enum ka_log_level ka_log_get_level(void)
{
    return log_level;
}

void ka_log_set_fd(int fd)
{
    log_fd = fd;
}

void ka_log_set_sink(ka_log_sink_fn fn, void *data)
{
    sink_fn = fn;
    sink_data = data;
    sink_pid = fn ? getpid() : 0;
}

struct line {
    char buf[4096];
    size_t len;
    bool truncated;
};

/* Room always kept free at the end of a line for a string's closing quote and
 * ',"truncated":"true"}\n', so a cut line is still one valid JSON object. */
#define LINE_RESERVE 32

static bool line_fits(const struct line *l, size_t n)
{
    return !l->truncated && l->len + n <= sizeof(l->buf) - LINE_RESERVE;
}

static void put_raw(struct line *l, const char *s, size_t n)
{
    if (!line_fits(l, n)) {
        l->truncated = true;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_json_string(struct line *l, const char *s)
{
    put_raw(l, "\"", 1);
    if (l->truncated)
        return;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        size_t n;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            n = 2;
        } else if (*p == '\n') {
            memcpy(esc, "\\n", 2);
            n = 2;
        } else if (*p == '\t') {
            memcpy(esc, "\\t", 2);
            n = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            n = 6;
        } else {
            esc[0] = (char)*p;
            n = 1;
        }
        if (!line_fits(l, n)) {
            l->truncated = true;
            break;
        }
        memcpy(l->buf + l->len, esc, n);
        l->len += n;
    }
    l->buf[l->len++] = '"'; /* from the reserve when the string was cut */
}

static void put_kv(struct line *l, const char *key, const char *value)
{
    /* Start a member only if its key fits whole, so a cut never splits "key":. */
    if (!line_fits(l, 6 * strlen(key) + 8)) {
        l->truncated = true;
        return;
    }
    put_raw(l, ",", 1);
    put_json_string(l, key);
    put_raw(l, ":", 1);
    put_json_string(l, value);
}

/* RFC 3339 with nanoseconds and a numeric offset, as slog-json writes it. */
static void format_ts(char *out, size_t size, const struct timespec *ts)
{
    struct tm tm;
    localtime_r(&ts->tv_sec, &tm);
    char date[32], zone[8];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(zone, sizeof(zone), "%z", &tm); /* +hhmm */
    snprintf(out, size, "%s.%09ld%.3s:%.2s", date, ts->tv_nsec, zone, zone + 3);
}

static void line_begin(struct line *l, enum ka_log_level level, const struct timespec *when,
                       pid_t me, const char *subsystem, const char *msg)
{
    char ts[64], pid[16];
    format_ts(ts, sizeof(ts), when);
    snprintf(pid, sizeof(pid), "%d", (int)me);
    l->len = 0;
    l->truncated = false;
    put_raw(l, "{\"msg\":", 7);
    put_json_string(l, msg);
    put_kv(l, "level", level_names[level]);
    put_kv(l, "ts", ts);
    put_kv(l, "name", "kata-agent");
    put_kv(l, "pid", pid);
    put_kv(l, "version", KA_VERSION);
    put_kv(l, "source", "agent");
    put_kv(l, "subsystem", subsystem);
}

static void line_end_and_write(struct line *l, pid_t me)
{
    if (l->truncated) {
        memcpy(l->buf + l->len, ",\"truncated\":\"true\"", 19);
        l->len += 19;
    }
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';

    if (sink_fn && me == sink_pid) {
        sink_fn(sink_data, l->buf, l->len);
        return;
    }
    /* One write per line so concurrent writers (children before exec) never
     * interleave inside a line. A console that fails is not worth dying for. */
    size_t off = 0;
    while (off < l->len) {
        ssize_t n = write(log_fd, l->buf + off, l->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
}

/* ---- held lines (ka_log_hold) ---------------------------------------------------
 * A record per line: its header, then subsystem, msg, and the key/value strings, each
 * NUL-terminated. What is stored is the arguments, not the line: formatting (the
 * time zone, strftime, the JSON escaping, run for the first time) costs more than the
 * write under TCG, and both are off the path to the first answer this way. */
struct held_record {
    struct timespec ts;
    enum ka_log_level level;
    unsigned nstrings;
    size_t size; /* of the strings that follow */
};

#define HOLD_BUFFER_SIZE 16384
static _Alignas(struct held_record) char hold_buf[HOLD_BUFFER_SIZE];
static size_t hold_len;
static pid_t hold_pid;

/* Records start aligned for their header. */
static size_t hold_align(size_t n)
{
    return (n + _Alignof(struct held_record) - 1) & ~(_Alignof(struct held_record) - 1);
}

/* A forked child has a copy of the buffer: the lines are its parent's to write. */
static bool holding(void)
{
    return hold_pid && hold_pid == getpid();
}

void ka_log_hold(void)
{
    hold_pid = getpid();
}

void ka_log_release(void)
{
    if (!holding())
        return;
    pid_t me = hold_pid;
    hold_pid = 0;
    struct line l;
    for (size_t off = 0; off < hold_len;) {
        const struct held_record *r = (const struct held_record *)(hold_buf + off);
        const char *s = (const char *)(r + 1);
        const char *subsystem = s, *msg = s + strlen(s) + 1;
        line_begin(&l, r->level, &r->ts, me, subsystem, msg);
        s = msg + strlen(msg) + 1;
        for (unsigned i = 2; i + 1 < r->nstrings; i += 2) {
            const char *value = s + strlen(s) + 1;
            put_kv(&l, s, value);
            s = value + strlen(value) + 1;
        }
        line_end_and_write(&l, me);
        off += hold_align(sizeof(*r) + r->size);
    }
    hold_len = 0;
}

/* Appends one string to the record under construction; false when it does not fit. */
static bool hold_put(size_t *end, const char *str)
{
    size_t n = strlen(str) + 1;
    if (n > HOLD_BUFFER_SIZE - *end)
        return false;
    memcpy(hold_buf + *end, str, n);
    *end += n;
    return true;
}

/* Keeps the line for ka_log_release; false when it was not kept (not holding, or
 * no room: then what is held goes out first and this line is written at once). */
static bool hold_line(enum ka_log_level level, const struct timespec *ts, const char *subsystem,
                      const char *msg, va_list kv)
{
    if (!holding())
        return false;
    size_t start = hold_len, end = start + sizeof(struct held_record);
    unsigned n = 2;
    bool fits = end <= HOLD_BUFFER_SIZE && hold_put(&end, subsystem) && hold_put(&end, msg);
    const char *key;
    while (fits && (key = va_arg(kv, const char *)) != NULL) {
        const char *value = va_arg(kv, const char *);
        fits = hold_put(&end, key) && hold_put(&end, value ? value : "");
        n += 2;
    }
    if (!fits) {
        ka_log_release();
        return false;
    }
    struct held_record *r = (struct held_record *)(hold_buf + start);
    *r = (struct held_record){*ts, level, n, end - start - sizeof(*r)};
    size_t aligned = hold_align(end);
    hold_len = aligned < HOLD_BUFFER_SIZE ? aligned : HOLD_BUFFER_SIZE;
    return true;
}

static void emit(enum ka_log_level level, const char *subsystem, const char *msg, va_list kv)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* An error is worth its cost at once, and what was held before it goes first. */
    if (level <= KA_LOG_ERROR)
        ka_log_release();
    va_list copy;
    va_copy(copy, kv);
    bool held = hold_line(level, &ts, subsystem, msg, copy);
    va_end(copy);
    if (held)
        return;
    pid_t me = getpid();
    struct line l;
    line_begin(&l, level, &ts, me, subsystem, msg);
    const char *key;
    while ((key = va_arg(kv, const char *)) != NULL) {
        const char *value = va_arg(kv, const char *);
        put_kv(&l, key, value ? value : "");
    }
    line_end_and_write(&l, me);
}

static void emit_kv(enum ka_log_level level, const char *subsystem, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    emit(level, subsystem, msg, ap);
    va_end(ap);
}

void ka_log_kv(enum ka_log_level level, const char *subsystem, const char *msg, ...)
{
    if (!ka_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, msg);
    emit(level, subsystem, msg, ap);
    va_end(ap);
}

void ka_log(enum ka_log_level level, const char *subsystem, const char *fmt, ...)
{
    if (!ka_log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    emit_kv(level, subsystem, msg, NULL);
}
