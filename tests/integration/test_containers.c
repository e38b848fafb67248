/* Containers through the real agent (root, the agent in its own mount namespace)
 * on the busybox + payload rootfs: lifecycle, exit codes, stdio both ways, ttys,
 * exec into the init's namespaces, credentials and paths read back from inside. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctr.h"

static struct agent_proc agent;
static struct ctr t;
static const char *rootfs;
static char out[1 << 16];

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static int run(const char *cid, const char *const *args)
{
    Grpc__Spec *s = spec_new(rootfs, args);
    int status = ctr_run(&t, cid, s, out, sizeof(out));
    spec_free(s);
    return status;
}

/* The container's directory, seen through the agent's own mount namespace. */
static bool bundle_exists(const char *cid)
{
    char path[256];
    snprintf(path, sizeof(path), "/proc/%d/root/run/kata-containers/%s", (int)agent.pid, cid);
    return access(path, F_OK) == 0;
}

static void test_true_and_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(run("c-true", ARGS("true")), 0);
    assert_int_equal(run("c-false", ARGS("false")), 1);
    assert_int_equal(run("c-exit", ARGS("ka-payload", "exit", "42")), 42);
    assert_false(bundle_exists("c-exit"));
}

/* pid 1 of a pid namespace cannot kill itself with an ordinary signal, so a real
 * fault stands in for "died by a signal"; SIGKILL comes from SignalProcess below. */
static void test_signal_exit_is_128_plus(void **state)
{
    (void)state;
    assert_int_equal(run("c-segv", ARGS("ka-payload", "kill-self", "SEGV")), 128 + SIGSEGV);
}

static void test_stdout_and_stderr_apart(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("sh", "-c", "echo to-out; echo to-err >&2; exit 5"));
    ctr_create_start(&t, "c-streams", s);
    char err_buf[256];
    ctr_read_all(&t, "c-streams", "", false, out, sizeof(out));
    ctr_read_all(&t, "c-streams", "", true, err_buf, sizeof(err_buf));
    assert_string_equal(out, "to-out\n");
    assert_string_equal(err_buf, "to-err\n");
    int status;
    assert_int_equal(ctr_wait(&t, "c-streams", "", &status), 0);
    assert_int_equal(status, 5);
    /* The process is forgotten once waited for: a second wait fails at once. */
    assert_int_not_equal(ctr_wait(&t, "c-streams", "", &status), 0);
    assert_int_equal(ctr_remove(&t, "c-streams"), 0);
}

static void test_stdin_round_trip(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("cat"));
    ctr_create_start(&t, "c-cat", s);
    assert_int_equal(ctr_write(&t, "c-cat", "", "hello ", 6), 0);
    assert_int_equal(ctr_write(&t, "c-cat", "", "world\n", 6), 0);
    assert_int_equal(ctr_close_stdin(&t, "c-cat", ""), 0);
    ctr_read_all(&t, "c-cat", "", false, out, sizeof(out));
    assert_string_equal(out, "hello world\n");
    int status;
    assert_int_equal(ctr_wait(&t, "c-cat", "", &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(ctr_remove(&t, "c-cat"), 0);
}

/* One WriteStdin of 3 MiB: the pipe takes 64 KiB, the rest waits with the parked call
 * while the process reads, and must arrive intact (the agent keeps the request's own
 * bytes for it, not a copy, until the call is answered). */
static void test_stdin_large_write_delivered(void **state)
{
    (void)state;
    const char *id = ctr_unique_id("c-bigin");
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "read-bytes", "--verify"));
    ctr_create_start(&t, id, s);
    /* read-bytes' pattern: byte i is PATTERN[i % 61] (tests/payload). */
    static const char pattern[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxy";
    size_t len = 3u << 20;
    char *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = pattern[i % (sizeof(pattern) - 1)];
    assert_int_equal(ctr_write(&t, id, "", data, len), 0);
    free(data);
    assert_int_equal(ctr_close_stdin(&t, id, ""), 0);
    ctr_read_all(&t, id, "", false, out, sizeof(out));
    assert_string_equal(out, "3145728\npattern=ok\n");
    int status;
    assert_int_equal(ctr_wait(&t, id, "", &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(ctr_remove(&t, id), 0);
}

static void test_tty_and_window_size(void **state)
{
    (void)state;
    Grpc__Spec *s =
        spec_new(rootfs, ARGS("sh", "-c", "read x; ka-payload isatty 0; ka-payload winsize"));
    s->process->terminal = true;
    ctr_create_start(&t, "c-tty", s);
    Grpc__TtyWinResizeRequest rs = GRPC__TTY_WIN_RESIZE_REQUEST__INIT;
    rs.container_id = (char *)"c-tty";
    rs.exec_id = (char *)"";
    rs.row = 42;
    rs.column = 132;
    assert_int_equal(ctr_call(&t, "TtyWinResize", &rs.base, NULL, NULL), 0);
    assert_int_equal(ctr_write(&t, "c-tty", "", "go\n", 3), 0);
    ctr_read_all(&t, "c-tty", "", false, out, sizeof(out));
    assert_non_null(strstr(out, "tty"));
    assert_null(strstr(out, "notty"));
    assert_non_null(strstr(out, "rows=42 cols=132"));
    int status;
    assert_int_equal(ctr_wait(&t, "c-tty", "", &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(ctr_remove(&t, "c-tty"), 0);
}

static void test_exec_joins_init_namespaces(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("sh", "-c", "ka-payload ns; exec ka-payload pause"));
    ctr_create_start(&t, "c-exec", s);
    char init_ns[4096] = "";
    size_t n = 0;
    while (!strstr(init_ns, "cgroup")) { /* ns prints cgroup last */
        size_t got;
        assert_int_equal(ctr_read(&t, "c-exec", "", false, init_ns + n, sizeof(init_ns) - 1 - n,
                                  &got),
                         0);
        n += got;
        init_ns[n] = '\0';
    }
    Grpc__Process *p = process_new(ARGS("ka-payload", "ns"));
    assert_int_equal(ctr_exec_collect(&t, "c-exec", "exec-1", p, out, sizeof(out)), 0);
    const char *kinds[] = {"pid:", "ipc:", "uts:", "mnt:"};
    for (size_t i = 0; i < 4; i++) {
        const char *a = strstr(init_ns, kinds[i]), *b = strstr(out, kinds[i]);
        assert_non_null(a);
        assert_non_null(b);
        assert_memory_equal(a, b, strcspn(a, "\n"));
    }
    /* A failed exec answers with the cause and leaves no record: its id is free. */
    Grpc__Process *bad = process_new(ARGS("/no/such/tool"));
    assert_int_not_equal(ctr_exec(&t, "c-exec", "exec-2", bad), 0);
    assert_non_null(strstr(t.msg, "not found"));
    int rc = -1;
    for (int i = 0;
         i < 100 && (rc = ctr_exec(&t, "c-exec", "exec-2", p = process_new(ARGS("true")))) != 0;
         i++) {
        process_free(p);
        usleep(10000);
    }
    if (rc == 0)
        process_free(p);
    process_free(bad);
    assert_int_equal(rc, 0);
    int status;
    assert_int_equal(ctr_wait(&t, "c-exec", "exec-2", &status), 0);
    assert_int_equal(status, 0);

    /* SIGTERM to an init that does not handle it becomes SIGKILL. */
    assert_int_equal(ctr_signal(&t, "c-exec", "", SIGTERM), 0);
    assert_int_equal(ctr_wait(&t, "c-exec", "", &status), 0);
    assert_int_equal(status, 137);
    assert_int_equal(ctr_remove(&t, "c-exec"), 0);
}

/* SignalProcess without an exec id: SIGTERM goes to the init alone (4.x,
 * 2212dbdd48), SIGKILL to every process of the container. With no pid namespace
 * the exec outlives the init, so it can only die of a signal sent to it: the
 * SIGTERM must not reach it (that would be 143), the SIGKILL after it must. */
static void test_signal_reaches_all_processes(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("sleep", "1000"));
    ctr_create_start(&t, "c-sigall", s);
    Grpc__Process *p = process_new(ARGS("sleep", "1000"));
    assert_int_equal(ctr_exec(&t, "c-sigall", "e-sleep", p), 0);
    process_free(p);
    assert_int_equal(ctr_signal(&t, "c-sigall", "", SIGTERM), 0);
    usleep(200 * 1000); /* a SIGTERM that reached the exec would have ended it by now */
    assert_int_equal(ctr_signal(&t, "c-sigall", "", SIGKILL), 0);
    int status;
    assert_int_equal(ctr_wait(&t, "c-sigall", "e-sleep", &status), 0);
    assert_int_equal(status, 128 + SIGKILL);
    assert_int_equal(ctr_wait(&t, "c-sigall", "", &status), 0);
    assert_int_equal(status, 128 + SIGKILL); /* an init without a TERM handler gets KILL */
    assert_int_equal(ctr_remove(&t, "c-sigall"), 0);
}

static void test_credentials_inside(void **state)
{
    (void)state;
    Grpc__Spec *s =
        spec_new(rootfs,
                 ARGS("sh", "-c", "ka-payload id; ka-payload caps; ka-payload rlimit NOFILE"));
    s->process->user->uid = 1000;
    s->process->user->gid = 1000;
    s->process->user->n_additionalgids = 2;
    s->process->user->additionalgids = malloc(2 * sizeof(uint32_t));
    s->process->user->additionalgids[0] = 10;
    s->process->user->additionalgids[1] = 29;
    s->process->nonewprivileges = true;
    Grpc__POSIXRlimit *rl = malloc(sizeof(*rl));
    grpc__posixrlimit__init(rl);
    rl->type = strdup("RLIMIT_NOFILE");
    rl->soft = 1000;
    rl->hard = 2000;
    s->process->rlimits = malloc(sizeof(*s->process->rlimits));
    s->process->rlimits[0] = rl;
    s->process->n_rlimits = 1;
    assert_int_equal(ctr_run(&t, "c-creds", s, out, sizeof(out)), 0);
    spec_free(s);
    assert_non_null(strstr(out, "uid=1000"));
    assert_non_null(strstr(out, "gid=1000"));
    assert_non_null(strstr(out, "10"));
    assert_non_null(strstr(out, "29"));
    assert_non_null(strstr(out, "NoNewPrivs:\t1"));
    /* The default set Kata sends (Docker's): bounding kept, nothing effective for uid 1000. */
    assert_non_null(strstr(out, "CapBnd:\t00000000a80425fb"));
    assert_non_null(strstr(out, "CapEff:\t0000000000000000"));
    assert_non_null(strstr(out, "1000 2000"));
}

static void test_masked_and_readonly_paths(void **state)
{
    (void)state;
    Grpc__Spec *s =
        spec_new(rootfs,
                 ARGS("sh", "-c",
                      "cat /etc/hostname; echo; ls /home | wc -l; ka-payload write-file /var/x y; "
                      "ka-payload write-file /tmp/x y"));
    Grpc__Linux *l = s->linux;
    strv_add(&l->maskedpaths, &l->n_maskedpaths, "/etc/hostname");
    strv_add(&l->maskedpaths, &l->n_maskedpaths, "/home");
    strv_add(&l->readonlypaths, &l->n_readonlypaths, "/var");
    ctr_run(&t, "c-paths", s, out, sizeof(out));
    spec_free(s);
    /* hostname masked (empty), /home masked (no entries), /var read-only, /tmp writable. */
    assert_true(strncmp(out, "\n0\n", 3) == 0);
    assert_non_null(strstr(out, "EROFS"));
}

/* Sysctls are written in the container's namespaces, before /proc/sys goes read-only. */
static void test_sysctl_and_readonly_root(void **state)
{
    (void)state;
    Grpc__Spec *s =
        spec_new(rootfs,
                 ARGS("sh", "-c", "cat /proc/sys/kernel/msgmax; ka-payload write-file /x y"));
    Grpc__Linux__SysctlEntry *e = malloc(sizeof(*e));
    grpc__linux__sysctl_entry__init(e);
    e->key = strdup("kernel.msgmax");
    e->value = strdup("12345");
    s->linux->sysctl = malloc(sizeof(*s->linux->sysctl));
    s->linux->sysctl[0] = e;
    s->linux->n_sysctl = 1;
    s->root->readonly = true;
    ctr_run(&t, "c-sysctl", s, out, sizeof(out));
    spec_free(s);
    assert_non_null(strstr(out, "12345\n"));
    assert_non_null(strstr(out, "EROFS"));
}

static void test_missing_executable_fails_cleanly(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("/no/such/binary"));
    assert_int_not_equal(ctr_create(&t, "c-missing", s), 0);
    spec_free(s);
    assert_non_null(strstr(t.msg, "not found"));
    assert_false(bundle_exists("c-missing"));
    /* Nothing left: the same id can be used again. */
    assert_int_equal(run("c-missing", ARGS("true")), 0);
}

static void test_bad_requests(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("true"));
    const char *bad_ids[] = {"", "..", "a/b", "-x"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(ctr_create(&t, bad_ids[i], s), 3);
        assert_non_null(strstr(t.msg, "invalid container id"));
    }
    assert_int_equal(ctr_create(&t, "c-dup", s), 0);
    assert_int_equal(ctr_create(&t, "c-dup", s), 6);
    assert_int_equal(ctr_start(&t, "c-nope"), 5);
    assert_int_not_equal(ctr_exec(&t, "c-dup", "e1", s->process), 0); /* not started */
    assert_int_equal(ctr_remove(&t, "c-dup"), 0);
    assert_int_equal(ctr_remove(&t, "c-dup"), 5);
    assert_int_equal(ctr_signal(&t, "c-nope", "", 9), 5);
    int status;
    assert_int_equal(ctr_wait(&t, "c-nope", "", &status), 5);
    spec_free(s);
}

static void test_fifty_containers(void **state)
{
    (void)state;
    char cid[32];
    for (int i = 0; i < 50; i++) {
        Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pause"));
        snprintf(cid, sizeof(cid), "c-many-%d", i);
        if (ctr_create(&t, cid, s) != 0)
            fail_msg("create %s: %s", cid, t.msg);
        spec_free(s);
        assert_int_equal(ctr_start(&t, cid), 0);
    }
    for (int i = 0; i < 50; i++) {
        snprintf(cid, sizeof(cid), "c-many-%d", i);
        assert_int_equal(ctr_signal(&t, cid, "", SIGKILL), 0);
        int status;
        assert_int_equal(ctr_wait(&t, cid, "", &status), 0);
        assert_int_equal(status, 137);
        assert_int_equal(ctr_remove(&t, cid), 0);
    }
}

/* Parked WaitProcess and ReadStdout do not hold anything else up. */
static void test_health_while_parked(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("sleep", "1000")); /* silent */
    ctr_create_start(&t, "c-park", s);
    int fd = raw_connect(&agent);
    Grpc__WaitProcessRequest w = GRPC__WAIT_PROCESS_REQUEST__INIT;
    w.container_id = (char *)"c-park";
    w.exec_id = (char *)"";
    uint8_t buf[256];
    size_t n = grpc__wait_process_request__pack(&w, buf);
    raw_send_request(fd, 1, "grpc.AgentService", "WaitProcess", buf, n);
    Grpc__ReadStreamRequest r = GRPC__READ_STREAM_REQUEST__INIT;
    r.container_id = (char *)"c-park";
    r.exec_id = (char *)"";
    r.len = 32768;
    n = grpc__read_stream_request__pack(&r, buf);
    raw_send_request(fd, 3, "grpc.AgentService", "ReadStdout", buf, n);
    raw_send_request(fd, 5, "grpc.Health", "Check", NULL, 0);
    uint32_t sid;
    int code;
    assert_int_equal(raw_recv_response(fd, &sid, &code, NULL, 0), 0);
    assert_int_equal(sid, 5); /* Check first, the others still parked */
    assert_int_equal(code, 0);
    assert_int_equal(ctr_signal(&t, "c-park", "", SIGKILL), 0);
    bool got1 = false, got3 = false;
    for (int i = 0; i < 2; i++) {
        char msg[128];
        assert_int_equal(raw_recv_response(fd, &sid, &code, msg, sizeof(msg)), 0);
        if (sid == 1) {
            got1 = true;
            assert_int_equal(code, 0);
        } else {
            got3 = true;
            assert_int_equal(sid, 3);
            assert_int_equal(code, 0); /* the first read at EOF: an empty success */
        }
    }
    assert_true(got1 && got3);
    close(fd);
    assert_int_equal(ctr_remove(&t, "c-park"), 0);
}

/* A process that never reads its stdin: WriteStdin parks once the pipe is full,
 * Health still answers, and the parked write fails when the process goes. */
static void test_stdin_write_parks_when_full(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("sleep", "1000"));
    ctr_create_start(&t, "c-full", s);
    int fd = raw_connect(&agent);
    static uint8_t chunk[32768];
    Grpc__WriteStreamRequest w = GRPC__WRITE_STREAM_REQUEST__INIT;
    w.container_id = (char *)"c-full";
    w.exec_id = (char *)"";
    w.data.data = chunk;
    w.data.len = sizeof(chunk);
    static uint8_t buf[sizeof(chunk) + 256];
    size_t n = grpc__write_stream_request__pack(&w, buf);
    /* 1 MiB: far more than a pipe holds. */
    for (uint32_t i = 0; i < 32; i++)
        raw_send_request(fd, 2 * i + 1, "grpc.AgentService", "WriteStdin", buf, n);
    raw_send_request(fd, 101, "grpc.Health", "Check", NULL, 0);
    uint32_t sid;
    int code, answered = 0;
    for (;;) {
        assert_int_equal(raw_recv_response(fd, &sid, &code, NULL, 0), 0);
        if (sid == 101)
            break;
        assert_int_equal(code, 0);
        answered++;
    }
    assert_true(answered < 32); /* the rest are parked on the full pipe */
    assert_int_equal(ctr_signal(&t, "c-full", "", SIGKILL), 0);
    int status;
    assert_int_equal(ctr_wait(&t, "c-full", "", &status), 0);
    assert_int_equal(ctr_remove(&t, "c-full"), 0);
    /* Every parked write is answered, with an error, once the process is gone. */
    for (int i = answered; i < 32; i++) {
        assert_int_equal(raw_recv_response(fd, &sid, &code, NULL, 0), 0);
        assert_int_not_equal(code, 0);
    }
    close(fd);
}

/* A killed container with background processes leaves no zombie behind under the
 * agent. (Its init reaps those in the kernel as its pid namespace goes; orphans
 * that do reach the agent are covered by unit/test_child.) */
static int agent_zombie_children(void)
{
    char path[300];
    int zombies = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char line[512];
        if (fgets(line, sizeof(line), f)) {
            char *rp = strrchr(line, ')');
            char state;
            int ppid;
            if (rp && sscanf(rp + 2, "%c %d", &state, &ppid) == 2 && ppid == agent.pid &&
                state == 'Z')
                zombies++;
        }
        fclose(f);
    }
    closedir(d);
    return zombies;
}

static void test_no_zombies_after_kill(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("sh", "-c", "sleep 1000 & sleep 1000 & exec sleep 1000"));
    ctr_create_start(&t, "c-orphans", s);
    assert_int_equal(ctr_signal(&t, "c-orphans", "", SIGKILL), 0);
    int status;
    assert_int_equal(ctr_wait(&t, "c-orphans", "", &status), 0);
    assert_int_equal(ctr_remove(&t, "c-orphans"), 0);
    int z = 0;
    for (int i = 0; i < 200 && (z = agent_zombie_children()) > 0; i++)
        usleep(10000);
    assert_int_equal(z, 0);
}

/* 1 GiB through ReadStdout in 32 KiB requests, as the shim reads: every byte
 * arrives and the agent's memory does not grow with it. */
static void test_one_gib_streamed(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "write-bytes", "1073741824"));
    assert_int_equal(ctr_create(&t, "c-gib", s), 0);
    spec_free(s);
    long rss_before = agent_status_kb(&agent, "VmRSS");
    assert_int_equal(ctr_start(&t, "c-gib"), 0);
    static char chunk[32768];
    unsigned long long total = 0;
    long rss_max = rss_before;
    for (unsigned i = 0;; i++) {
        size_t got;
        if (ctr_read(&t, "c-gib", "", false, chunk, sizeof(chunk), &got) != 0)
            break;
        total += got;
        if (i % 4096 == 0) {
            long rss = agent_status_kb(&agent, "VmRSS");
            if (rss > rss_max)
                rss_max = rss;
        }
    }
    assert_true(total == 1073741824ULL);
    int status;
    assert_int_equal(ctr_wait(&t, "c-gib", "", &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(ctr_remove(&t, "c-gib"), 0);
#ifndef KA_TEST_SANITIZED
    /* ASan's quarantine keeps freed chunks resident by design; the native build
     * asserts this bound. */
    if (rss_max - rss_before > 8 * 1024)
        fail_msg("agent RSS grew from %ld kB to %ld kB while streaming", rss_before, rss_max);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_true_and_exit_codes),
        cmocka_unit_test(test_signal_exit_is_128_plus),
        cmocka_unit_test(test_stdout_and_stderr_apart),
        cmocka_unit_test(test_stdin_round_trip),
        cmocka_unit_test(test_stdin_large_write_delivered),
        cmocka_unit_test(test_tty_and_window_size),
        cmocka_unit_test(test_exec_joins_init_namespaces),
        cmocka_unit_test(test_signal_reaches_all_processes),
        cmocka_unit_test(test_credentials_inside),
        cmocka_unit_test(test_masked_and_readonly_paths),
        cmocka_unit_test(test_sysctl_and_readonly_root),
        cmocka_unit_test(test_missing_executable_fails_cleanly),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_fifty_containers),
        cmocka_unit_test(test_health_while_parked),
        cmocka_unit_test(test_stdin_write_parks_when_full),
        cmocka_unit_test(test_no_zombies_after_kill),
        cmocka_unit_test(test_one_gib_streamed),
    };
    ctr_suite_fixtures(&agent, &t, &rootfs, "kata-sandbox");
    return cmocka_run_group_tests(tests, ctr_group_setup, ctr_group_teardown);
}
