/* What splice would save on ReadStdout's path (issue 16), measured outside the agent.
 *
 * The agent answers each ReadStdout (32 KiB asked, one call in flight, as the Kata
 * shim does) by reading the container's pipe into the reply frame and sending the
 * frame: two kernel copies (pipe -> frame, frame -> socket) and no user-space one.
 * splice would move the pipe's pages into the socket instead: FIONREAD for the size,
 * the frame header sent with MSG_MORE, then splice(pipe -> socket). This program
 * runs both on the same request/response loop over a unix socket pair, with a writer
 * filling a 1 MiB pipe, and prints wall time and CPU for each, alternated; a third
 * way sends the header and the data in one splice (the header written into a private
 * pipe, the data spliced behind it, then the pair spliced to the socket):
 *
 *   splice-probe [BYTES [ROUNDS]]      (default 1 GiB, 3 rounds)
 *
 * Frames here are a 4-byte length and the payload: the mechanism, not ttrpc. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ASK (32 * 1024)
#define PIPE_SIZE (1024 * 1024)

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static long long children_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000LL +
           ru.ru_stime.tv_usec;
}

static long long self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000LL +
           ru.ru_stime.tv_usec;
}

static void write_all(int fd, const void *buf, size_t n, int flags)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, flags);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("send");
        p += w;
        n -= (size_t)w;
    }
}

static void read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die("read");
        p += r;
        n -= (size_t)r;
    }
}

/* The writer: BYTES into the pipe in 64 KiB writes, as `ka-payload write-bytes`. */
static void writer(int out, unsigned long long bytes)
{
    static char buf[65536];
    memset(buf, 'x', sizeof(buf));
    while (bytes > 0) {
        size_t n = bytes < sizeof(buf) ? (size_t)bytes : sizeof(buf);
        ssize_t w = write(out, buf, n);
        if (w <= 0)
            die("write pipe");
        bytes -= (unsigned long long)w;
    }
    _exit(0);
}

/* The server: per request, one frame of at most ASK bytes from the pipe; an empty
 * frame at the pipe's end. splice_mode: FIONREAD + header + splice, else read + send. */
static void server(int sock, int in, int splice_mode)
{
    static char frame[4 + ASK];
    for (;;) {
        uint32_t ask;
        read_all(sock, &ask, sizeof(ask));
        if (ask > ASK)
            ask = ASK;
        if (!splice_mode) {
            ssize_t n;
            do
                n = read(in, frame + 4, ask);
            while (n < 0 && errno == EINTR);
            if (n < 0)
                die("read pipe");
            uint32_t len = (uint32_t)n;
            memcpy(frame, &len, 4);
            write_all(sock, frame, 4 + (size_t)n, 0);
            if (n == 0)
                _exit(0);
            continue;
        }
        int avail = 0;
        for (;;) { /* wait for data or the writer's end, as the agent's parked read */
            if (ioctl(in, FIONREAD, &avail) < 0)
                die("FIONREAD");
            if (avail > 0)
                break;
            struct pollfd p = {.fd = in, .events = POLLIN};
            poll(&p, 1, -1);
            if ((p.revents & POLLHUP) && !(p.revents & POLLIN))
                break;
        }
        uint32_t len = (uint32_t)(avail < (int)ask ? avail : (int)ask);
        if (splice_mode == 2 && len) {
            /* header and data in one send: the header written into a private pipe,
             * the data spliced behind it, the pair spliced to the socket */
            static int priv[2] = {-1, -1};
            if (priv[0] < 0 &&
                (pipe2(priv, O_CLOEXEC) < 0 || fcntl(priv[1], F_SETPIPE_SZ, 256 * 1024) < 0))
                die("private pipe");
            if (write(priv[1], &len, 4) != 4)
                die("write header");
            size_t moved = 0;
            while (moved < len) {
                ssize_t s = splice(in, NULL, priv[1], NULL, len - moved, 0);
                if (s <= 0)
                    die("splice to the private pipe");
                moved += (size_t)s;
            }
            size_t left = 4 + (size_t)len;
            while (left > 0) {
                ssize_t s = splice(priv[0], NULL, sock, NULL, left, 0);
                if (s < 0 && errno == EINTR)
                    continue;
                if (s <= 0)
                    die("splice to the socket");
                left -= (size_t)s;
            }
            continue;
        }
        write_all(sock, &len, 4, len ? MSG_MORE : 0);
        if (len == 0)
            _exit(0);
        size_t left = len;
        while (left > 0) {
            ssize_t s = splice(in, NULL, sock, NULL, left, SPLICE_F_MORE);
            if (s < 0 && errno == EINTR)
                continue;
            if (s <= 0)
                die("splice");
            left -= (size_t)s;
        }
    }
}

/* One round: returns wall µs, CPU µs (writer + server + this client), bytes read. */
static void round_once(int splice_mode, unsigned long long bytes, long long *wall, long long *cpu)
{
    int p[2], sv[2];
    if (pipe2(p, O_CLOEXEC) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        die("pipe/socketpair");
    fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE);
    long long c0 = children_cpu_us() + self_cpu_us(), t0 = now_us();
    pid_t w = fork();
    if (w == 0) {
        close(p[0]);
        writer(p[1], bytes);
    }
    close(p[1]);
    pid_t s = fork();
    if (s == 0) {
        close(sv[0]);
        server(sv[1], p[0], splice_mode);
    }
    close(p[0]);
    close(sv[1]);
    static char buf[ASK];
    unsigned long long got = 0;
    for (;;) {
        uint32_t ask = ASK, len;
        write_all(sv[0], &ask, sizeof(ask), 0);
        read_all(sv[0], &len, sizeof(len));
        if (len == 0)
            break;
        read_all(sv[0], buf, len);
        got += len;
    }
    close(sv[0]);
    waitpid(w, NULL, 0);
    waitpid(s, NULL, 0);
    *wall = now_us() - t0;
    *cpu = children_cpu_us() + self_cpu_us() - c0;
    if (got != bytes) {
        fprintf(stderr, "splice-probe: got %llu of %llu bytes\n", got, bytes);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    unsigned long long bytes = argc > 1 ? strtoull(argv[1], NULL, 0) : 1ULL << 30;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    const char *names[] = {"read+send", "header, then splice", "header and data as one splice"};
    printf("| round | mode | GB/s | CPU s per GiB |\n|---:|---|---:|---:|\n");
    for (int r = 1; r <= rounds; r++) {
        for (int m = 0; m < 3; m++) {
            long long wall, cpu;
            round_once(m, bytes, &wall, &cpu);
            printf("| %d | %s | %.2f | %.2f |\n", r, names[m],
                   (double)bytes / (double)wall / 1000.0,
                   (double)cpu / 1e6 * (double)(1ULL << 30) / (double)bytes);
            fflush(stdout);
        }
    }
    return 0;
}
