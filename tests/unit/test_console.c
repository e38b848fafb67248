/* The debug console and the log port, in process on the reactor, with stand-ins for
 * what the host lacks: a unix socket for vsock, a pty pair for a virtio-serial port
 * and for /dev/console. The console's shell is /bin/sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/child.h"
#include "core/config.h"
#include "core/log.h"
#include "core/reactor.h"
#include "guest/console.h"
#include "guest/logport.h"

static struct ka_reactor reactor;
static char tmpdir[64];
static char sock_path[108];
static int devnull = -1;

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void spin(int ms)
{
    struct ka_error err;
    long end = now_ms() + ms;
    while (now_ms() < end)
        assert_true(ka_reactor_run_once(&reactor, 10, &err) >= 0);
}

/* Run the loop until fd has produced text containing want (read into acc). */
static bool run_until_output(int fd, char *acc, size_t size, size_t *len, const char *want,
                             int timeout_ms)
{
    struct ka_error err;
    long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        assert_true(ka_reactor_run_once(&reactor, 10, &err) >= 0);
        ssize_t n;
        while (*len + 1 < size && (n = read(fd, acc + *len, size - 1 - *len)) > 0) {
            *len += (size_t)n;
            acc[*len] = '\0';
        }
        if (strstr(acc, want))
            return true;
    }
    fprintf(stderr, "waited for \"%s\", got \"%s\"\n", want, acc);
    return false;
}

static bool run_until_sessions(size_t want, int timeout_ms)
{
    struct ka_error err;
    long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        if (ka_debug_console_sessions() == want)
            return true;
        assert_true(ka_reactor_run_once(&reactor, 10, &err) >= 0);
    }
    return ka_debug_console_sessions() == want;
}

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void write_all(int fd, const char *s)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t n = write(fd, s + off, len - off);
        if (n < 0 && errno == EAGAIN) {
            spin(5);
            continue;
        }
        assert_true(n > 0);
        off += (size_t)n;
    }
}

static int setup(void **state)
{
    (void)state;
    struct ka_error err;
    if (ka_reactor_init(&reactor, &err) < 0 || ka_children_init(&reactor, &err) < 0)
        return -1;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ka-console-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(sock_path, sizeof(sock_path), "%s/console.sock", tmpdir);
    ka_debug_console_set_shell("/bin/sh");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ka_children_fini();
    ka_reactor_fini(&reactor);
    rmdir(tmpdir);
    return 0;
}

/* ---- debug console ------------------------------------------------------------- */

/* A shell on a pty that is its controlling tty and session: the pid is the session
 * id (field 6 of stat) and the tty (field 7) is set. Arithmetic so that the typed
 * command echoed by the pty never contains the answer. */
static const char probe[] = "read -r a b c d e f g rest < /proc/$$/stat; "
                            "[ \"$a\" = \"$f\" ] && [ \"$g\" != 0 ] && echo OK$((40+2))\n";

static void test_unix_session(void **state)
{
    (void)state;
    struct ka_error err;
    char addr[PATH_MAX + 16];
    snprintf(addr, sizeof(addr), "unix://%s", sock_path);
    assert_int_equal(ka_debug_console_listen(&reactor, addr, &err), 0);
    int fds = count_fds();

    int c = unix_connect(sock_path);
    char out[8192] = "";
    size_t len = 0;
    write_all(c, "echo $((6*7))\n");
    assert_true(run_until_output(c, out, sizeof(out), &len, "42", 5000));
    write_all(c, probe);
    assert_true(run_until_output(c, out, sizeof(out), &len, "OK42", 5000));
    assert_int_equal(ka_debug_console_sessions(), 1);

    /* Two at once: each its own shell. */
    int c2 = unix_connect(sock_path);
    char out2[4096] = "";
    size_t len2 = 0;
    write_all(c2, "echo $((100+23))\n");
    assert_true(run_until_output(c2, out2, sizeof(out2), &len2, "123", 5000));
    assert_int_equal(ka_debug_console_sessions(), 2);

    /* The client goes: pty closed, shell hung up and reaped, fds back. */
    close(c);
    close(c2);
    assert_true(run_until_sessions(0, 5000));
    assert_int_equal(count_fds(), fds);
    ka_debug_console_stop();
    assert_int_equal(access(sock_path, F_OK), -1);
}

/* The shell leaves first: its output still arrives, then the connection closes. A
 * half-close from the client stops only its input. */
static void test_shell_exit_closes_connection(void **state)
{
    (void)state;
    struct ka_error err;
    char addr[PATH_MAX + 16];
    snprintf(addr, sizeof(addr), "unix://%s", sock_path);
    assert_int_equal(ka_debug_console_listen(&reactor, addr, &err), 0);
    int fds = count_fds();
    int c = unix_connect(sock_path);
    write_all(c, "echo $((6*7)); exit 3\n");
    shutdown(c, SHUT_WR);
    char out[4096] = "";
    size_t len = 0;
    bool eof = false;
    long end = now_ms() + 5000;
    while (!eof && now_ms() < end) {
        assert_true(ka_reactor_run_once(&reactor, 10, &err) >= 0);
        ssize_t n;
        while ((n = read(c, out + len, sizeof(out) - 1 - len)) > 0) {
            len += (size_t)n;
            out[len] = '\0';
        }
        eof = n == 0;
    }
    assert_true(eof);
    assert_non_null(strstr(out, "42"));
    close(c);
    assert_true(run_until_sessions(0, 5000));
    assert_int_equal(count_fds(), fds);
    ka_debug_console_stop();
}

/* A shell that floods while the client reads nothing: the loop never blocks (each
 * pass returns), and the session still ends cleanly when the client goes. */
static void test_backpressure(void **state)
{
    (void)state;
    struct ka_error err;
    char addr[PATH_MAX + 16];
    snprintf(addr, sizeof(addr), "unix://%s", sock_path);
    assert_int_equal(ka_debug_console_listen(&reactor, addr, &err), 0);
    int fds = count_fds();
    int c = unix_connect(sock_path);
    int small = 4096;
    setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    write_all(c, "yes flood\n");
    long worst = 0;
    for (int i = 0; i < 200; i++) {
        long t = now_ms();
        assert_true(ka_reactor_run_once(&reactor, 5, &err) >= 0);
        long d = now_ms() - t;
        worst = d > worst ? d : worst;
    }
    assert_true(worst < 500);
    /* Output is there to read, and it is what the shell wrote. */
    char out[4096] = "";
    size_t len = 0;
    assert_true(run_until_output(c, out, sizeof(out), &len, "flood\r\nflood", 5000));
    close(c);
    assert_true(run_until_sessions(0, 5000));
    assert_int_equal(count_fds(), fds);
    ka_debug_console_stop();
}

/* A pty pair stands in for a virtio-serial port: the test holds the master (the
 * host's end), the console opens the slave by path. */
static int open_host_end(char *slave, size_t size)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(m >= 0);
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    assert_int_equal(ptsname_r(m, slave, size), 0);
    fcntl(m, F_SETFL, O_NONBLOCK);
    return m;
}

static void test_serial_port(void **state)
{
    (void)state;
    int fds = count_fds();
    char slave[64];
    int host = open_host_end(slave, sizeof(slave));
    struct ka_config cfg;
    ka_config_defaults(&cfg);
    ka_config_set(&cfg, "debug_console", NULL);
    ka_config_set(&cfg, "debug_console_port", slave); /* a path: serial://<path> */
    struct ka_error err;
    assert_int_equal(ka_debug_console_start(&reactor, &cfg, &err), 0);

    /* The host is connected (the master is open): a session starts by itself. */
    char out[8192] = "";
    size_t len = 0;
    write_all(host, "echo $((6*7))\n");
    assert_true(run_until_output(host, out, sizeof(out), &len, "42", 5000));
    assert_int_equal(ka_debug_console_sessions(), 1);

    /* The shell exits with the host still there: the port says so and waits. */
    write_all(host, "exit\n");
    assert_true(run_until_output(host, out, sizeof(out), &len, "reconnect for a new one", 5000));
    assert_true(run_until_sessions(0, 5000));
    write_all(host, "ignored\n");
    spin(100);
    assert_int_equal(ka_debug_console_sessions(), 0);

    /* The host goes: the port waits for the next one (a pty cannot come back, a
     * virtio port can: the e2e test covers that). */
    close(host);
    spin(100);
    assert_int_equal(ka_debug_console_sessions(), 0);
    ka_debug_console_stop();
    assert_int_equal(count_fds(), fds);
}

/* The host leaves mid-session: the shell is hung up and reaped. */
static void test_serial_host_leaves(void **state)
{
    (void)state;
    int fds = count_fds();
    char slave[64], addr[96];
    int host = open_host_end(slave, sizeof(slave));
    snprintf(addr, sizeof(addr), "serial://%s", slave);
    struct ka_error err;
    assert_int_equal(ka_debug_console_listen(&reactor, addr, &err), 0);
    char out[8192] = "";
    size_t len = 0;
    write_all(host, probe);
    assert_true(run_until_output(host, out, sizeof(out), &len, "OK42", 5000));
    close(host);
    assert_true(run_until_sessions(0, 5000));
    ka_debug_console_stop();
    assert_int_equal(count_fds(), fds);
}

/* No port: one shell on the console (a pty's slave stands in for /dev/console). */
static void test_console_shell(void **state)
{
    (void)state;
    int fds = count_fds();
    char slave[64];
    int host = open_host_end(slave, sizeof(slave));
    ka_debug_console_set_console_path(slave);
    struct ka_config cfg;
    ka_config_defaults(&cfg);
    struct ka_error err;
    assert_int_equal(ka_debug_console_start(&reactor, &cfg, &err), 0); /* not enabled */
    assert_int_equal(ka_debug_console_sessions(), 0);
    cfg.debug_console = true;
    assert_int_equal(ka_debug_console_start(&reactor, &cfg, &err), 0);
    assert_int_equal(ka_debug_console_sessions(), 1);
    char out[8192] = "";
    size_t len = 0;
    write_all(host, probe);
    assert_true(run_until_output(host, out, sizeof(out), &len, "OK42", 5000));
    close(host); /* hang-up: the shell gets SIGHUP */
    assert_true(run_until_sessions(0, 5000));
    ka_debug_console_set_console_path(NULL);
    ka_debug_console_stop();
    assert_int_equal(count_fds(), fds);
}

static void test_bad_address(void **state)
{
    (void)state;
    struct ka_config cfg;
    ka_config_defaults(&cfg);
    cfg.debug_console = true;
    ka_config_set(&cfg, "debug_console_port", "no-such-port-name");
    struct ka_error err;
    assert_true(ka_debug_console_start(&reactor, &cfg, &err) < 0);
    assert_non_null(strstr(err.msg, "no-such-port-name"));
    ka_debug_console_stop();
}

/* ---- log port ------------------------------------------------------------------ */

/* Read whole lines from fd (blocking with a deadline) while the loop runs. */
struct reader {
    int fd;
    char buf[1 << 20];
    size_t len;
};

static void reader_pump(struct reader *r, int ms)
{
    struct ka_error err;
    long end = now_ms() + ms;
    do {
        assert_true(ka_reactor_run_once(&reactor, 5, &err) >= 0);
        ssize_t n;
        while (r->len + 1 < sizeof(r->buf) &&
               (n = read(r->fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len)) > 0)
            r->len += (size_t)n;
        r->buf[r->len] = '\0';
    } while (now_ms() < end);
}

static size_t count_substr(const char *s, const char *sub)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, sub)) != NULL; p += strlen(sub))
        n++;
    return n;
}

/* Every received line is whole JSON-looking text; returns how many lines. Adds the
 * counts of dropped-lines markers to *dropped and of test lines to *test_lines. */
static size_t check_lines(const char *buf, unsigned long long *dropped, size_t *test_lines)
{
    size_t lines = 0;
    for (const char *p = buf; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_true(strncmp(p, "{\"msg\":", 7) == 0);
        assert_true(nl[-1] == '}');
        const char *m = strstr(p, "log buffer full: dropped ");
        if (m && m < nl)
            *dropped += strtoull(m + strlen("log buffer full: dropped "), NULL, 10);
        const char *t = strstr(p, "\"msg\":\"test line ");
        if (t && t < nl)
            (*test_lines)++;
        lines++;
        p = nl + 1;
    }
    return lines;
}

static void test_logport_buffer_then_flush(void **state)
{
    (void)state;
    int fds = count_fds();
    struct ka_error err;
    char addr[PATH_MAX + 16];
    snprintf(addr, sizeof(addr), "unix://%s", sock_path);
    assert_int_equal(ka_logport_listen(&reactor, addr, 0, &err), 0);
    assert_false(ka_logport_connected());
    for (int i = 0; i < 10; i++)
        ka_log(KA_LOG_INFO, "test", "test line %d", i);
    assert_true(ka_logport_buffered() > 0);

    struct reader *r = calloc(1, sizeof(*r));
    r->fd = unix_connect(sock_path);
    reader_pump(r, 100);
    assert_true(ka_logport_connected());
    assert_int_equal(ka_logport_buffered(), 0);
    /* in order, the buffered ones first, then the connection notice */
    const char *prev = r->buf;
    for (int i = 0; i < 10; i++) {
        char want[32];
        snprintf(want, sizeof(want), "\"test line %d\"", i);
        const char *at = strstr(r->buf, want);
        assert_non_null(at);
        assert_true(at >= prev);
        prev = at;
    }
    assert_true(strstr(r->buf, "log connection accepted") > prev);

    /* connected: straight through */
    r->len = 0;
    ka_log(KA_LOG_INFO, "test", "test line live");
    reader_pump(r, 50);
    assert_non_null(strstr(r->buf, "\"test line live\""));

    /* a second connection while the first is up is turned away */
    int other = unix_connect(sock_path);
    reader_pump(r, 50);
    char c;
    assert_int_equal(read(other, &c, 1), 0);
    close(other);

    /* the connection goes: buffer again; the next one gets what was missed only */
    close(r->fd);
    reader_pump(r, 50);
    assert_false(ka_logport_connected());
    ka_log(KA_LOG_INFO, "test", "test line while away");
    r->fd = unix_connect(sock_path);
    r->len = 0;
    reader_pump(r, 100);
    assert_non_null(strstr(r->buf, "\"test line while away\""));
    assert_null(strstr(r->buf, "\"test line live\""));

    /* children write to the fd, not to the parent's socket */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    ka_log_set_fd(pfd[1]);
    pid_t pid = fork();
    if (pid == 0) {
        ka_log(KA_LOG_INFO, "test", "from the child");
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    char cb[4096] = "";
    assert_true(read(pfd[0], cb, sizeof(cb) - 1) > 0);
    assert_non_null(strstr(cb, "from the child"));
    close(pfd[0]);
    close(pfd[1]);
    ka_log_set_fd(devnull);
    r->len = 0;
    reader_pump(r, 30);
    assert_null(strstr(r->buf, "from the child"));

    ka_logport_stop(100);
    close(r->fd);
    free(r);
    assert_int_equal(access(sock_path, F_OK), -1);
    assert_int_equal(count_fds(), fds);
}

/* Nobody connected and far more than fits: the oldest lines go, one marker says how
 * many, and every line is either delivered or counted. */
static void test_logport_overflow(void **state)
{
    (void)state;
    struct ka_error err;
    char addr[PATH_MAX + 16];
    snprintf(addr, sizeof(addr), "unix://%s", sock_path);
    assert_int_equal(ka_logport_listen(&reactor, addr, 16 * 1024, &err), 0);
    const int total = 1000;
    for (int i = 0; i < total; i++)
        ka_log(KA_LOG_INFO, "test", "test line %d", i);
    assert_true(ka_logport_buffered() <= 16 * 1024);
    assert_true(ka_logport_dropped() > 0);

    struct reader *r = calloc(1, sizeof(*r));
    r->fd = unix_connect(sock_path);
    reader_pump(r, 100);
    unsigned long long dropped = 0;
    size_t test_lines = 0;
    check_lines(r->buf, &dropped, &test_lines);
    assert_int_equal(count_substr(r->buf, "log buffer full"), 1);
    /* the marker stands where the oldest lines were */
    assert_true(strncmp(r->buf, "{\"msg\":\"log buffer full: dropped ", 33) == 0);
    assert_int_equal(dropped + test_lines, (unsigned long long)total);
    assert_int_equal(dropped, ka_logport_dropped());
    char last[32];
    snprintf(last, sizeof(last), "\"test line %d\"", total - 1);
    assert_non_null(strstr(r->buf, last));
    ka_logport_stop(100);
    close(r->fd);
    free(r);
}

/* Connected to a host that reads nothing: logging goes on without blocking; once
 * the host reads, every line arrives whole or is counted in a marker. */
static void test_logport_never_blocks(void **state)
{
    (void)state;
    struct ka_error err;
    char addr[PATH_MAX + 16];
    snprintf(addr, sizeof(addr), "unix://%s", sock_path);
    assert_int_equal(ka_logport_listen(&reactor, addr, 32 * 1024, &err), 0);
    struct reader *r = calloc(1, sizeof(*r));
    r->fd = unix_connect(sock_path);
    int small = 4096;
    setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    reader_pump(r, 50);
    assert_true(ka_logport_connected());
    r->len = 0;

    const int total = 5000;
    long t = now_ms();
    for (int i = 0; i < total; i++) {
        ka_log(KA_LOG_INFO, "test", "test line %d", i);
        if (i % 500 == 0)
            assert_true(ka_reactor_run_once(&reactor, 0, &err) >= 0);
    }
    assert_true(now_ms() - t < 5000);
    assert_true(ka_logport_buffered() <= 32 * 1024);
    assert_true(ka_logport_dropped() > 0);

    reader_pump(r, 300);
    unsigned long long dropped = 0;
    size_t test_lines = 0;
    check_lines(r->buf, &dropped, &test_lines);
    assert_int_equal(dropped + test_lines, (unsigned long long)total);
    assert_int_equal(dropped, ka_logport_dropped());
    ka_logport_stop(100);
    close(r->fd);
    free(r);
}

static void test_logport_off_by_default(void **state)
{
    (void)state;
    struct ka_config cfg;
    ka_config_defaults(&cfg);
    struct ka_error err;
    assert_int_equal(ka_logport_start(&reactor, &cfg, &err), 0);
    assert_false(ka_logport_connected());
    ka_logport_stop(0); /* nothing to stop */
}

int main(void)
{
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (!getenv("KA_TEST_VERBOSE"))
        ka_log_set_fd(devnull);
    ka_log_set_level(KA_LOG_INFO);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unix_session),
        cmocka_unit_test(test_shell_exit_closes_connection),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_serial_port),
        cmocka_unit_test(test_serial_host_leaves),
        cmocka_unit_test(test_console_shell),
        cmocka_unit_test(test_bad_address),
        cmocka_unit_test(test_logport_buffer_then_flush),
        cmocka_unit_test(test_logport_overflow),
        cmocka_unit_test(test_logport_never_blocks),
        cmocka_unit_test(test_logport_off_by_default),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
