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
static void format_ts(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    char date[32], zone[8];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(zone, sizeof(zone), "%z", &tm); /* +hhmm */
    snprintf(out, size, "%s.%09ld%.3s:%.2s", date, ts.tv_nsec, zone, zone + 3);
}

static void emit(enum ka_log_level level, const char *subsystem, const char *msg, va_list kv)
{
    struct line l = {.len = 0};
    char ts[64], pid[16];
    pid_t me = getpid();
    format_ts(ts, sizeof(ts));
    snprintf(pid, sizeof(pid), "%d", (int)me);

    put_raw(&l, "{\"msg\":", 7);
    put_json_string(&l, msg);
    put_kv(&l, "level", level_names[level]);
    put_kv(&l, "ts", ts);
    put_kv(&l, "name", "kata-agent");
    put_kv(&l, "pid", pid);
    put_kv(&l, "version", KA_VERSION);
    put_kv(&l, "source", "agent");
    put_kv(&l, "subsystem", subsystem);
    const char *key;
    while ((key = va_arg(kv, const char *)) != NULL) {
        const char *value = va_arg(kv, const char *);
        put_kv(&l, key, value ? value : "");
    }
    if (l.truncated) {
        memcpy(l.buf + l.len, ",\"truncated\":\"true\"", 19);
        l.len += 19;
    }
    l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';

    if (sink_fn && me == sink_pid) {
        sink_fn(sink_data, l.buf, l.len);
        return;
    }
    /* One write per line so concurrent writers (children before exec) never
     * interleave inside a line. A console that fails is not worth dying for. */
    size_t off = 0;
    while (off < l.len) {
        ssize_t n = write(log_fd, l.buf + off, l.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
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
