/* The reaper: statuses reach whoever registered the pid, orphans re-parented to
 * the agent (a child subreaper) are reaped, and a synchronous helper keeps its
 * own child's status even when the reaper has work at the same time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/child.h"
#include "core/log.h"

static struct ka_reactor reactor;

static int setup(void **state)
{
    (void)state;
    struct ka_error err;
    ka_log_set_fd(open("/dev/null", O_WRONLY));
    if (ka_reactor_init(&reactor, &err) < 0 || ka_children_init(&reactor, &err) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ka_children_fini();
    ka_reactor_fini(&reactor);
    return 0;
}

static int seen_status = -1;
static pid_t seen_pid;

static void on_exit_cb(void *data, pid_t pid, int status)
{
    (void)data;
    seen_pid = pid;
    seen_status = status;
}

static void test_registered_child_status(void **state)
{
    (void)state;
    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    ka_child_watch(pid, on_exit_cb, NULL);
    struct ka_error err;
    for (int i = 0; i < 500 && seen_pid != pid; i++)
        assert_true(ka_reactor_run_once(&reactor, 10, &err) >= 0);
    assert_int_equal(seen_pid, pid);
    assert_true(WIFEXITED(seen_status) && WEXITSTATUS(seen_status) == 7);
    assert_int_equal(ka_exit_code(seen_status), 7);
}

static bool is_zombie_child(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool z = false;
    if (fgets(line, sizeof(line), f)) {
        char *rp = strrchr(line, ')');
        z = rp && rp[2] == 'Z';
    }
    fclose(f);
    return z;
}

/* A child forks a grandchild and exits at once: the grandchild is re-parented to
 * us (the subreaper) and, once it exits, reaped without anyone registering it. */
static void test_orphan_reaped(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    if (child == 0) {
        pid_t grandchild = fork();
        if (grandchild == 0) {
            usleep(200000); /* outlive the parent, then exit */
            _exit(0);
        }
        if (write(p[1], &grandchild, sizeof(grandchild)) != sizeof(grandchild))
            _exit(1);
        _exit(0);
    }
    pid_t orphan;
    assert_int_equal(read(p[0], &orphan, sizeof(orphan)), sizeof(orphan));
    close(p[0]);
    close(p[1]);
    /* The orphan's parent becomes this process. */
    char path[64], line[256];
    int ppid = 0;
    for (int i = 0; i < 100 && ppid != getpid(); i++) {
        struct ka_error err;
        ka_reactor_run_once(&reactor, 10, &err);
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)orphan);
        FILE *f = fopen(path, "r");
        if (f && fgets(line, sizeof(line), f))
            sscanf(strrchr(line, ')') + 2, "%*c %d", &ppid);
        if (f)
            fclose(f);
    }
    assert_int_equal(ppid, getpid());
    /* Let it exit and the loop reap it: no zombie remains, nothing was registered. */
    struct ka_error err;
    for (int i = 0; i < 100 && (kill(orphan, 0) == 0 || is_zombie_child(orphan)); i++)
        ka_reactor_run_once(&reactor, 10, &err);
    assert_false(is_zombie_child(orphan));
    assert_true(kill(orphan, 0) < 0);
}

/* While registered children are exiting, a synchronous helper still gets its own
 * child's exit status (the reaper runs only from the loop). */
static void test_sync_helper_keeps_its_child(void **state)
{
    (void)state;
    pid_t others[5];
    for (int i = 0; i < 5; i++) {
        others[i] = fork();
        if (others[i] == 0)
            _exit(0);
        ka_child_watch(others[i], on_exit_cb, NULL);
    }
    char *argv[] = {"sh", "-c", "exit 3", NULL};
    int status = -1;
    struct ka_error err;
    assert_int_equal(ka_child_run_sync(argv, &status, &err), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
    for (int i = 0; i < 50; i++)
        ka_reactor_run_once(&reactor, 10, &err);
    for (int i = 0; i < 5; i++)
        assert_true(kill(others[i], 0) < 0); /* all reaped by the loop */
}

/* The hook for unknown pids: what a spawn does when the pid of its process comes
 * on a pipe from an intermediate (container/spawn.c). */
static int late_pipe = -1;

static void learn_late(void *data)
{
    (void)data;
    pid_t pid;
    while (read(late_pipe, &pid, sizeof(pid)) == (ssize_t)sizeof(pid))
        ka_child_watch(pid, on_exit_cb, NULL);
}

/* An intermediate forks the process, writes its pid, exits; the process exits at
 * once. Nothing reads the pipe but the hook, so the status reaches on_exit_cb only
 * if the reaper asks the hook before dropping the pid as unknown. */
static void test_unknown_hook_registers_late_pid(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    late_pipe = p[0];
    ka_child_set_unknown_hook(learn_late, NULL);
    seen_pid = 0;
    pid_t intermediate = fork();
    if (intermediate == 0) {
        pid_t process = fork();
        if (process == 0) {
            usleep(50000); /* outlive the intermediate: we become the parent */
            _exit(5);
        }
        if (write(p[1], &process, sizeof(process)) != sizeof(process))
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    struct ka_error err;
    for (int i = 0; i < 300 && seen_pid == 0; i++)
        assert_true(ka_reactor_run_once(&reactor, 10, &err) >= 0);
    ka_child_set_unknown_hook(NULL, NULL);
    close(p[0]);
    assert_true(seen_pid > 0 && seen_pid != intermediate);
    assert_true(WIFEXITED(seen_status) && WEXITSTATUS(seen_status) == 5);
}

/* ka_close_fds_from closes that fd and every one above, nothing below. */
static void test_close_fds_from(void **state)
{
    (void)state;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0 || dup2(fd, 40) < 0 || dup2(fd, 41) < 0 || dup2(fd, 300) < 0)
            _exit(2);
        ka_close_fds_from(41);
        bool ok = fcntl(fd, F_GETFD) >= 0 && fcntl(40, F_GETFD) >= 0 && fcntl(41, F_GETFD) < 0 &&
                  fcntl(300, F_GETFD) < 0;
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registered_child_status),
        cmocka_unit_test(test_orphan_reaped),
        cmocka_unit_test(test_sync_helper_keeps_its_child),
        cmocka_unit_test(test_unknown_hook_registers_late_pid),
        cmocka_unit_test(test_close_fds_from),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
