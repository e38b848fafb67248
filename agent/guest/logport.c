/* The log stream on a socket: a bounded buffer in front of one non-blocking
 * connection. Nothing here may call ka_log() from the sink path (it is the logger);
 * the event handlers may, since their lines simply join the buffer. */
#include "guest/logport.h"

#include "core/log.h"
#include "core/util.h"
#include "ttrpc/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFFER_MIN (16 * 1024)
#define MARKER_MAX 512

static struct {
    struct ka_reactor *reactor;
    bool active;
    int listen_fd;
    struct ka_watch listen_watch;
    int conn_fd;
    struct ka_watch conn_watch;
    char unix_path[sizeof(((struct ka_addr *)0)->path)];
    char where[64];

    /* Pending bytes are buf[start, end), whole lines except that the first one may
     * have been sent in part already (mid_line). */
    char *buf;
    size_t cap, start, end;
    bool mid_line;
    /* The marker line for dropped lines, while it is still unsent it sits at
     * buf[marker_off] (always the first whole line) and can be rewritten with a
     * bigger count. */
    size_t marker_off, marker_len;
    uint64_t marker_count;
    uint64_t dropped;
} lp = {.listen_fd = -1, .conn_fd = -1};

bool ka_logport_connected(void)
{
    return lp.conn_fd >= 0;
}

size_t ka_logport_buffered(void)
{
    return lp.end - lp.start;
}

uint64_t ka_logport_dropped(void)
{
    return lp.dropped;
}

/* ---- the buffer ---------------------------------------------------------------- */

/* Where the first whole line starts: past the rest of a line sent in part. */
static size_t first_boundary(void)
{
    if (!lp.mid_line)
        return lp.start;
    const char *nl = memchr(lp.buf + lp.start, '\n', lp.end - lp.start);
    return nl ? (size_t)(nl - lp.buf) + 1 : lp.end;
}

static void compact(void)
{
    if (lp.start == 0)
        return;
    memmove(lp.buf, lp.buf + lp.start, lp.end - lp.start);
    if (lp.marker_len)
        lp.marker_off -= lp.start;
    lp.end -= lp.start;
    lp.start = 0;
}

/* One log line in the agent's format, by hand: the logger cannot call itself. */
static size_t format_marker(char *out, size_t size, uint64_t count)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    char date[32], zone[8];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(zone, sizeof(zone), "%z", &tm);
    int n = snprintf(out, size,
                     "{\"msg\":\"log buffer full: dropped %llu lines\",\"level\":\"WARN\","
                     "\"ts\":\"%s.%09ld%.3s:%.2s\",\"name\":\"kata-agent\",\"pid\":\"%d\","
                     "\"version\":\"%s\",\"source\":\"agent\",\"subsystem\":\"logport\","
                     "\"dropped\":\"%llu\"}\n",
                     (unsigned long long)count, date, ts.tv_nsec, zone, zone + 3, (int)getpid(),
                     KA_VERSION, (unsigned long long)count);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* Make room for need more bytes by dropping the oldest whole lines (never the part
 * of a line already begun on the wire), at least a quarter of the buffer at a time
 * so a full buffer is not shuffled for every line. The marker takes their place. */
static void drop_oldest(size_t need)
{
    compact();
    size_t p0 = first_boundary();
    uint64_t count = 0;
    size_t p1 = p0;
    if (lp.marker_len) { /* the unsent marker goes too, its count carried over */
        count = lp.marker_count;
        p1 += lp.marker_len;
        lp.marker_len = 0;
    }
    uint64_t old_count = count;
    size_t target = need + MARKER_MAX;
    if (target < lp.cap / 4)
        target = lp.cap / 4;
    while (p1 < lp.end && lp.cap - (lp.end - (p1 - p0)) < target) {
        const char *nl = memchr(lp.buf + p1, '\n', lp.end - p1);
        p1 = nl ? (size_t)(nl - lp.buf) + 1 : lp.end;
        count++;
    }
    lp.dropped += count - old_count;
    char marker[MARKER_MAX];
    size_t m = format_marker(marker, sizeof(marker), count);
    memmove(lp.buf + p0 + m, lp.buf + p1, lp.end - p1);
    memcpy(lp.buf + p0, marker, m);
    lp.end = p0 + m + (lp.end - p1);
    if (m) {
        lp.marker_off = p0;
        lp.marker_len = m;
        lp.marker_count = count;
    }
}

static void append(const char *data, size_t len)
{
    if (lp.end + len > lp.cap)
        compact();
    if (lp.end + len > lp.cap)
        drop_oldest(len);
    memcpy(lp.buf + lp.end, data, len);
    lp.end += len;
}

/* ---- the connection ------------------------------------------------------------ */

static void conn_event(struct ka_watch *w, uint32_t events);

static void conn_close(void)
{
    ka_reactor_del(&lp.conn_watch);
    close(lp.conn_fd);
    lp.conn_fd = -1;
    /* The host never sees the rest of a line it got the start of: drop that rest,
     * so the next connection starts on a whole line. */
    lp.start = first_boundary();
    lp.mid_line = false;
    if (lp.start == lp.end)
        lp.start = lp.end = 0;
}

/* Send what is pending. Returns -1 when the connection is gone (it is closed). */
static int flush(void)
{
    while (lp.start < lp.end) {
        ssize_t n =
            send(lp.conn_fd, lp.buf + lp.start, lp.end - lp.start, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close();
            return -1;
        }
        if (n == 0)
            break;
        if (lp.marker_len && lp.marker_off < lp.start + (size_t)n)
            lp.marker_len = 0; /* on the wire: no longer ours to rewrite */
        lp.start += (size_t)n;
        lp.mid_line = lp.buf[lp.start - 1] != '\n';
    }
    if (lp.start == lp.end) {
        lp.start = lp.end = 0;
        lp.mid_line = false;
    }
    uint32_t ev = EPOLLIN | (lp.start < lp.end ? EPOLLOUT : 0);
    struct ka_error err;
    if (ka_reactor_mod(&lp.conn_watch, ev, &err) < 0) {
        conn_close();
        return -1;
    }
    return 0;
}

static void sink(void *data, const char *line, size_t len)
{
    (void)data;
    /* Lines are at most 4 KiB and the buffer at least 16: a quarter keeps room for the
     * rest of a line begun on the wire, the marker and the new line after any drop. */
    if (len > lp.cap / 4) {
        lp.dropped++;
        return;
    }
    if (lp.conn_fd >= 0 && lp.start == lp.end) {
        /* Nothing queued: straight to the socket, the common case. */
        ssize_t n = send(lp.conn_fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == (ssize_t)len)
            return;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn_close();
            append(line, len);
            return;
        }
        if (n < 0)
            n = 0;
        append(line + n, len - (size_t)n);
        lp.mid_line = n > 0;
        flush(); /* arms EPOLLOUT */
        return;
    }
    append(line, len);
    if (lp.conn_fd >= 0)
        flush();
}

static void conn_event(struct ka_watch *w, uint32_t events)
{
    (void)w;
    if (events & EPOLLIN) {
        /* The host sends nothing; read only to see it go. */
        char scratch[512];
        ssize_t n = recv(lp.conn_fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            conn_close();
            ka_log_kv(KA_LOG_DEBUG, "logport", "log connection closed", NULL);
            return;
        }
    }
    if (events & (EPOLLHUP | EPOLLERR)) {
        conn_close();
        ka_log_kv(KA_LOG_DEBUG, "logport", "log connection lost", NULL);
        return;
    }
    if ((events & EPOLLOUT) && flush() < 0)
        ka_log_kv(KA_LOG_DEBUG, "logport", "log connection lost", NULL);
}

static void listen_event(struct ka_watch *w, uint32_t events)
{
    (void)w, (void)events;
    for (int i = 0; i < 8; i++) {
        int fd = accept4(lp.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        /* A container must neither read the agent's log nor take the one reader's place. */
        if (!ka_accepted_peer_allowed(fd, "logport", lp.where)) {
            close(fd);
            continue;
        }
        if (lp.conn_fd >= 0) { /* exactly one reader at a time */
            close(fd);
            continue;
        }
        struct ka_error err;
        if (ka_reactor_add(lp.reactor, &lp.conn_watch, fd, EPOLLIN, conn_event, NULL, &err) < 0) {
            close(fd);
            continue;
        }
        lp.conn_fd = fd;
        lp.mid_line = false; /* the buffer starts on a whole line (conn_close) */
        if (flush() == 0)
            ka_log_kv(KA_LOG_INFO, "logport", "log connection accepted", "address", lp.where, NULL);
    }
}

/* ---- setup --------------------------------------------------------------------- */

int ka_logport_listen(struct ka_reactor *r, const char *text, size_t buffer_size,
                      struct ka_error *err)
{
    if (lp.active)
        return ka_error_set(err, EBUSY, "the log port is already open");
    struct ka_addr addr;
    if (ka_addr_parse(text, &addr, err) < 0)
        return ka_error_wrap(err, "log port address");
    if (addr.kind == KA_ADDR_SERIAL)
        return ka_error_set(err, EINVAL, "log port: serial addresses are not supported");
    int fd = ka_addr_listen(&addr, err);
    if (fd < 0)
        return ka_error_wrap(err, "log port %s", text);
    struct ka_error e2;
    if (ka_reactor_add(r, &lp.listen_watch, fd, EPOLLIN, listen_event, NULL, &e2) < 0) {
        close(fd);
        *err = e2;
        return -1;
    }
    lp.reactor = r;
    lp.listen_fd = fd;
    lp.conn_fd = -1;
    lp.unix_path[0] = '\0';
    if (addr.kind == KA_ADDR_UNIX)
        snprintf(lp.unix_path, sizeof(lp.unix_path), "%s", addr.path);
    snprintf(lp.where, sizeof(lp.where), "%s", text);
    lp.cap = buffer_size ? buffer_size : KA_LOGPORT_BUFFER_DEFAULT;
    if (lp.cap < BUFFER_MIN)
        lp.cap = BUFFER_MIN;
    lp.buf = ka_xmalloc(lp.cap);
    lp.start = lp.end = 0;
    lp.mid_line = false;
    lp.marker_len = 0;
    lp.dropped = 0;
    lp.active = true;
    ka_log_kv(KA_LOG_INFO, "logport", "sending the log to the log port from now on", "address",
              text, NULL);
    ka_log_set_sink(sink, NULL);
    return 0;
}

int ka_logport_start(struct ka_reactor *r, const struct ka_config *cfg, struct ka_error *err)
{
    if (cfg->log_vport == 0)
        return 0;
    char addr[64];
    snprintf(addr, sizeof(addr), "vsock://-1:%u", cfg->log_vport);
    return ka_logport_listen(r, addr, 0, err);
}

void ka_logport_stop(int timeout_ms)
{
    if (!lp.active)
        return;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (lp.conn_fd >= 0 && lp.start < lp.end) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left =
            timeout_ms - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = lp.conn_fd, .events = POLLOUT};
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
            break;
        flush();
    }
    ka_log_set_sink(NULL, NULL);
    size_t left = lp.end - lp.start;
    if (lp.conn_fd >= 0)
        conn_close();
    ka_reactor_del(&lp.listen_watch);
    close(lp.listen_fd);
    lp.listen_fd = -1;
    if (lp.unix_path[0])
        unlink(lp.unix_path);
    free(lp.buf);
    lp.buf = NULL;
    lp.cap = lp.start = lp.end = 0;
    lp.marker_len = 0;
    lp.active = false;
    if (left) {
        char n[32];
        snprintf(n, sizeof(n), "%zu", left);
        ka_log_kv(KA_LOG_WARN, "logport", "log lines never reached the log port", "bytes", n, NULL);
    }
}
