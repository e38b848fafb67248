/* Log lines: valid JSON, one per line, Kata's fields, extra keys, escaping, levels;
 * PID 1's start-up lines held until released (ka_log_hold). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "json.h"

static int pipe_fds[2];

static int setup(void **state)
{
    (void)state;
    if (pipe(pipe_fds) < 0)
        return -1;
    ka_log_set_fd(pipe_fds[1]);
    ka_log_set_level(KA_LOG_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return 0;
}

/* Read what was logged since the last call (the pipe is never left full here). */
static size_t drain(char *buf, size_t size)
{
    close(pipe_fds[1]);
    size_t n = 0;
    ssize_t r;
    while ((r = read(pipe_fds[0], buf + n, size - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(pipe_fds[0]);
    assert_int_equal(pipe(pipe_fds), 0);
    ka_log_set_fd(pipe_fds[1]);
    return n;
}

static const char *member(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v))
        fail_msg("log line has no \"%s\"", key);
    assert_true(json_object_is_type(v, json_type_string));
    return json_object_get_string(v);
}

static void test_fields_and_escaping(void **state)
{
    (void)state;
    ka_log_kv(KA_LOG_WARN, "rpc", "quote \" backslash \\ newline \n tab \t bell \a", "method",
              "CreateContainer", "path", "/run/\"x\"", NULL);
    char buf[8192];
    size_t n = drain(buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(buf[n - 1], '\n');
    assert_null(memchr(buf, '\n', n - 1)); /* exactly one line */
    struct json_object *v = NULL;
    struct ka_error err;
    if (ctl_json_parse(buf, n - 1, &v, &err) < 0)
        fail_msg("log line is not JSON: %s: %s", err.msg, buf);
    assert_string_equal(member(v, "msg"), "quote \" backslash \\ newline \n tab \t bell \a");
    assert_string_equal(member(v, "level"), "WARN");
    assert_string_equal(member(v, "name"), "kata-agent");
    assert_string_equal(member(v, "source"), "agent");
    assert_string_equal(member(v, "subsystem"), "rpc");
    assert_string_equal(member(v, "method"), "CreateContainer");
    assert_string_equal(member(v, "path"), "/run/\"x\"");
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    assert_string_equal(member(v, "pid"), pid);
    const char *ts = member(v, "ts");
    /* RFC 3339 with nanoseconds and a numeric offset: 2026-11-24T01:02:03.123456789+00:00 */
    assert_int_equal(strlen(ts), 35);
    assert_int_equal(ts[10], 'T');
    assert_true(ts[29] == '+' || ts[29] == '-');
    assert_int_equal(ts[32], ':');
    json_object_put(v);
}

static void test_levels_filter(void **state)
{
    (void)state;
    char buf[8192];
    ka_log(KA_LOG_DEBUG, "test", "hidden at info");
    ka_log(KA_LOG_INFO, "test", "shown %d", 42);
    drain(buf, sizeof(buf));
    assert_null(strstr(buf, "hidden"));
    assert_non_null(strstr(buf, "\"msg\":\"shown 42\",\"level\":\"INFO\""));
    ka_log_set_level(KA_LOG_TRACE);
    ka_log(KA_LOG_TRACE, "test", "trace line");
    ka_log(KA_LOG_CRITICAL, "test", "crit line");
    drain(buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"level\":\"TRCE\""));
    assert_non_null(strstr(buf, "\"level\":\"CRIT\""));
    ka_log_set_level(KA_LOG_INFO);
}

/* A message longer than a line's buffer is cut, still valid JSON, and marked. */
static void test_long_message_truncated(void **state)
{
    (void)state;
    char *msg = malloc(20000);
    memset(msg, 'm', 19999);
    msg[19999] = '\0';
    ka_log_kv(KA_LOG_ERROR, "test", msg, "k", "v", NULL);
    free(msg);
    char buf[16384];
    size_t n = drain(buf, sizeof(buf));
    struct json_object *v = NULL;
    struct ka_error err;
    if (ctl_json_parse(buf, n - 1, &v, &err) < 0)
        fail_msg("truncated log line is not JSON: %s", err.msg);
    assert_string_equal(member(v, "truncated"), "true");
    json_object_put(v);
}

static void test_level_names(void **state)
{
    (void)state;
    enum ka_log_level l;
    const char *names[] = {"critical", "fatal", "panic", "error", "warn",
                           "warning",  "info",  "debug", "trace"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_true(ka_log_level_parse(names[i], &l));
    assert_false(ka_log_level_parse("INFO", &l));
    assert_false(ka_log_level_parse("", &l));
}

/* Seconds within the minute of a line's ts (…T12:34:SS.nnnnnnnnn+00:00). */
static double ts_seconds(struct json_object *v)
{
    const char *ts = member(v, "ts");
    assert_true(strlen(ts) >= 29);
    return strtod(ts + 17, NULL);
}

/* The n-th line of buf (0-based) parsed, or a failure. */
static struct json_object *line_at(const char *buf, unsigned n)
{
    const char *p = buf;
    for (unsigned i = 0; i < n; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    const char *end = strchr(p, '\n');
    assert_non_null(end);
    struct json_object *v = NULL;
    struct ka_error err;
    if (ctl_json_parse(p, (size_t)(end - p), &v, &err) < 0)
        fail_msg("line %u is not JSON: %s", n, err.msg);
    return v;
}

/* Held lines are written only on release, in order, each with the time it was
 * logged (not the release's), and with its keys; after that lines go out at once. */
static void test_hold_until_release(void **state)
{
    (void)state;
    char buf[16384];
    ka_log_hold();
    ka_log_kv(KA_LOG_INFO, "agent", "announce", "server_addr", "vsock://-1:1024", NULL);
    struct timespec nap = {0, 60 * 1000 * 1000};
    nanosleep(&nap, NULL);
    ka_log(KA_LOG_INFO, "ttrpc", "second %d", 2);
    assert_int_equal(drain(buf, sizeof(buf)), 0);
    ka_log_hold();
    ka_log_release();
    drain(buf, sizeof(buf));
    struct json_object *a = line_at(buf, 0), *b = line_at(buf, 1);
    assert_string_equal(member(a, "msg"), "announce");
    assert_string_equal(member(a, "server_addr"), "vsock://-1:1024");
    assert_string_equal(member(a, "subsystem"), "agent");
    assert_string_equal(member(b, "msg"), "second 2");
    double gap = ts_seconds(b) - ts_seconds(a);
    if (gap < 0)
        gap += 60;
    assert_true(gap >= 0.05);
    json_object_put(a);
    json_object_put(b);
    ka_log(KA_LOG_INFO, "test", "after release");
    drain(buf, sizeof(buf));
    assert_non_null(strstr(buf, "after release"));
}

/* An error line releases what is held, goes out after it, and ends the holding. */
static void test_hold_error_releases(void **state)
{
    (void)state;
    char buf[16384];
    ka_log_hold();
    ka_log(KA_LOG_INFO, "test", "held-one");
    ka_log(KA_LOG_ERROR, "test", "the-error");
    drain(buf, sizeof(buf));
    char *one = strstr(buf, "held-one"), *error = strstr(buf, "the-error");
    assert_non_null(one);
    assert_non_null(error);
    assert_true(one < error);
    ka_log(KA_LOG_INFO, "test", "not-held");
    drain(buf, sizeof(buf));
    assert_non_null(strstr(buf, "not-held"));
}

/* More than the buffer holds (16 KiB; 100 lines of 300 bytes, which the test pipe
 * still takes unread): nothing is lost and the order is kept. */
static void test_hold_overflow(void **state)
{
    (void)state;
    static char buf[65536];
    char msg[300];
    memset(msg, 'x', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    ka_log_hold();
    for (int i = 0; i < 100; i++) {
        char prefix[8];
        snprintf(prefix, sizeof(prefix), "n%03d", i);
        memcpy(msg, prefix, 4);
        ka_log(KA_LOG_INFO, "test", "%s", msg);
    }
    ka_log_release();
    drain(buf, sizeof(buf));
    const char *p = buf;
    for (int i = 0; i < 100; i++) {
        char want[16];
        snprintf(want, sizeof(want), "\"msg\":\"n%03dx", i);
        p = strstr(p, want);
        if (!p)
            fail_msg("line %d missing or out of order", i);
    }
}

/* One line longer than the whole hold buffer (a request's string, say): written at
 * once, cut as any overlong line is, after everything held before it. */
static void test_hold_line_longer_than_buffer(void **state)
{
    (void)state;
    ka_log_hold();
    ka_log(KA_LOG_INFO, "test", "before-the-long-one");
    char *longmsg = malloc(20000);
    memset(longmsg, 'L', 19999);
    longmsg[19999] = '\0';
    ka_log_kv(KA_LOG_INFO, "test", longmsg, NULL); /* ka_log would cut it at 2 KiB */
    free(longmsg);
    static char out[65536];
    drain(out, sizeof(out));
    char *before = strstr(out, "before-the-long-one"), *cut = strstr(out, "\"truncated\":\"true\"");
    assert_non_null(before);
    assert_non_null(cut);
    assert_true(before < cut);
}

/* A forked child writes its own lines at once and never its parent's held ones. */
static void test_hold_child_writes_own_lines(void **state)
{
    (void)state;
    char buf[16384];
    ka_log_hold();
    ka_log(KA_LOG_INFO, "test", "parent-held");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ka_log(KA_LOG_INFO, "test", "child-info");
        ka_log(KA_LOG_ERROR, "test", "child-error");
        ka_log_release();
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    drain(buf, sizeof(buf));
    assert_non_null(strstr(buf, "child-info"));
    assert_non_null(strstr(buf, "child-error"));
    assert_null(strstr(buf, "parent-held"));
    ka_log_release();
    drain(buf, sizeof(buf));
    assert_non_null(strstr(buf, "parent-held"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_escaping),
        cmocka_unit_test(test_levels_filter),
        cmocka_unit_test(test_long_message_truncated),
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_hold_until_release),
        cmocka_unit_test(test_hold_error_releases),
        cmocka_unit_test(test_hold_overflow),
        cmocka_unit_test(test_hold_line_longer_than_buffer),
        cmocka_unit_test(test_hold_child_writes_own_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
