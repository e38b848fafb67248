/* agent-ctl run / exec against the real agent (root, the agent in its own mount
 * namespace) on the busybox + payload rootfs: an OCI bundle as `runc spec` writes
 * it, exit statuses, stdin, stdout and stderr apart, a tty, signals forwarded,
 * keys Kata's protocol lacks dropped with a note, exec into a running container. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define CTL_TIMEOUT_MS 60000

static struct agent_proc agent;
static const char *rootfs;
static char out[1 << 18];
static char err[1 << 16];

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int group_setup(void **state)
{
    (void)state;
    rootfs = getenv("KA_TEST_ROOTFS");
    if (!rootfs || rootfs[0] != '/' || access(rootfs, F_OK) != 0) {
        fprintf(stderr, "KA_TEST_ROOTFS (%s) is missing or not absolute\n",
                rootfs ? rootfs : "unset");
        return -1;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "container tests need root\n");
        return -1;
    }
    agent_start_isolated(&agent, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    agent_stop(&agent); /* also removes agent.dir, where the bundles are */
    return 0;
}

/* ---- running agent-ctl ---------------------------------------------------------- */

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static size_t read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fd);
    return n;
}

static pid_t spawn_ctl(const char *in_path, const char *out_path, const char *err_path,
                       const char *const *args)
{
    const char *ctl = getenv("KA_AGENT_CTL_BIN");
    if (!ctl || !*ctl)
        ctl = "agent-ctl";
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int i = open(in_path, O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (i < 0 || o < 0 || e < 0)
            _exit(126);
        dup2(i, STDIN_FILENO);
        dup2(o, STDOUT_FILENO);
        dup2(e, STDERR_FILENO);
        const char *argv[64] = {ctl, "--addr", agent.addr};
        int n = 3;
        for (const char *const *a = args; *a && n < 63; a++)
            argv[n++] = *a;
        argv[n] = NULL;
        execv(ctl, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Wait for agent-ctl (killing it after CTL_TIMEOUT_MS); its exit status. */
static int reap_ctl(pid_t pid)
{
    long deadline = now_ms() + CTL_TIMEOUT_MS;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("agent-ctl did not finish within %d ms", CTL_TIMEOUT_MS);
        }
        usleep(5000);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void ctl_paths(char *in, char *o, char *e, size_t size)
{
    snprintf(in, size, "%s/ctl.in", agent.dir);
    snprintf(o, size, "%s/ctl.out", agent.dir);
    snprintf(e, size, "%s/ctl.err", agent.dir);
}

/* agent-ctl --addr AGENT args... with input on its stdin (NULL: empty); out and err
 * get what it printed. Returns its exit status. */
static int ctl_in(const void *input, size_t len, const char *const *args)
{
    char in_path[128], out_path[128], err_path[128];
    ctl_paths(in_path, out_path, err_path, sizeof(in_path));
    write_file(in_path, input ? input : "", input ? len : 0);
    int rc = reap_ctl(spawn_ctl(in_path, out_path, err_path, args));
    read_file(out_path, out, sizeof(out));
    read_file(err_path, err, sizeof(err));
    return rc;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ctl(...) ctl_in(NULL, 0, ARGS(__VA_ARGS__))

/* ---- bundles --------------------------------------------------------------------- */

/* A config.json as `runc spec` writes it (runc 1.1), with args (a JSON array's
 * members), terminal false, root.path the test rootfs, and extra_process /
 * extra_top / extra_linux members (each "" or starting with a comma). */
static const char *bundle_ex(const char *name, const char *args, const char *extra_process,
                             const char *extra_top, const char *extra_linux)
{
    static char dir[256];
    snprintf(dir, sizeof(dir), "%s/bundle-%s", agent.dir, name);
    assert_true(mkdir(dir, 0755) == 0 || errno == EEXIST);
    char path[300];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(
        f,
        "{\n"
        "\t\"ociVersion\": \"1.0.2-dev\",\n"
        "\t\"process\": {\n"
        "\t\t\"terminal\": false,\n"
        "\t\t\"user\": {\"uid\": 0, \"gid\": 0}%s,\n"
        "\t\t\"args\": [%s],\n"
        "\t\t\"env\": [\"PATH=/payload/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\n"
        "\t\t        \"TERM=xterm\"],\n"
        "\t\t\"cwd\": \"/\",\n"
        "\t\t\"capabilities\": {\n"
        "\t\t\t\"bounding\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
        "\t\t\t\"effective\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
        "\t\t\t\"permitted\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
        "\t\t\t\"ambient\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"]\n"
        "\t\t},\n"
        "\t\t\"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}],\n"
        "\t\t\"noNewPrivileges\": true\n"
        "\t},\n"
        "\t\"root\": {\"path\": \"%s\", \"readonly\": true},\n"
        "\t\"hostname\": \"runc\",\n"
        "\t\"mounts\": [\n"
        "\t\t{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},\n"
        "\t\t{\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\",\n"
        "\t\t \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},\n"
        "\t\t{\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\",\n"
        "\t\t \"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\", \"gid=5\"]},\n"
        "\t\t{\"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\",\n"
        "\t\t \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\"]},\n"
        "\t\t{\"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\",\n"
        "\t\t \"options\": [\"nosuid\", \"noexec\", \"nodev\"]},\n"
        "\t\t{\"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\",\n"
        "\t\t \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"ro\"]},\n"
        "\t\t{\"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": \"cgroup\",\n"
        "\t\t \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\"]}\n"
        "\t]%s,\n"
        "\t\"linux\": {\n"
        "\t\t\"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"}]},\n"
        "\t\t\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\"}, {\"type\": \"ipc\"},\n"
        "\t\t               {\"type\": \"uts\"}, {\"type\": \"mount\"}],\n"
        "\t\t\"maskedPaths\": [\"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", \"/proc/keys\",\n"
        "\t\t\t\"/proc/latency_stats\", \"/proc/timer_list\", \"/proc/timer_stats\",\n"
        "\t\t\t\"/proc/sched_debug\", \"/sys/firmware\", \"/proc/scsi\"],\n"
        "\t\t\"readonlyPaths\": [\"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\",\n"
        "\t\t\t\"/proc/sysrq-trigger\"]%s\n"
        "\t}\n"
        "}\n",
        extra_process, args, rootfs, extra_top, extra_linux);
    fclose(f);
    return dir;
}

static const char *bundle(const char *name, const char *args)
{
    return bundle_ex(name, args, "", "", "");
}

/* The container's directory, seen through the agent's own mount namespace. */
static bool container_exists(const char *cid)
{
    char path[256];
    snprintf(path, sizeof(path), "/proc/%d/root/run/kata-containers/%s", (int)agent.pid, cid);
    return access(path, F_OK) == 0;
}

/* ---- run -------------------------------------------------------------------------- */

/* First: it makes the sandbox every later test uses. */
static void test_run_sandbox_echo(void **state)
{
    (void)state;
    const char *b = bundle("echo", "\"/payload/bin/echo\", \"hello\"");
    int rc = ctl("run", "--sandbox", b, "c1");
    assert_string_equal(err, ""); /* nothing of runc's spec is dropped */
    assert_int_equal(rc, 0);
    assert_string_equal(out, "hello\n");
    assert_false(container_exists("c1")); /* removed */
    /* The sandbox exists now: a second one is refused, as an agent error. */
    assert_int_equal(ctl("run", "--sandbox", b, "c1b"), 1);
    assert_non_null(strstr(err, "CreateSandbox: error: ALREADY_EXISTS"));
}

static void test_run_exit_status(void **state)
{
    (void)state;
    assert_int_equal(ctl("run", bundle("exit7", "\"/bin/sh\", \"-c\", \"exit 7\""), "c-exit7"), 7);
    assert_int_equal(ctl("run", bundle("false", "\"false\""), "c-false"), 1);
    assert_int_equal(ctl("run", bundle("exit0", "\"/payload/bin/exit\", \"0\""), "c-exit0"), 0);
    assert_false(container_exists("c-exit7"));
}

static void test_run_stdin_through_cat(void **state)
{
    (void)state;
    /* Several 32 KiB WriteStdin chunks, then CloseStdin at EOF. */
    static char input[100000 + 1];
    for (size_t i = 0; i < sizeof(input) - 1; i++)
        input[i] = (char)('a' + (i * 7 + i / 61) % 26);
    input[sizeof(input) - 2] = '\n';
    const char *b = bundle("cat", "\"/payload/bin/cat\"");
    assert_int_equal(ctl_in(input, sizeof(input) - 1, ARGS("run", "-i", b, "c-cat")), 0);
    assert_int_equal(strlen(out), sizeof(input) - 1);
    assert_memory_equal(out, input, sizeof(input) - 1);
    /* Without -i the process reads EOF at once rather than waiting for ever. */
    assert_int_equal(ctl_in("ignored", 7, ARGS("run", b, "c-cat2")), 0);
    assert_string_equal(out, "");
}

static void test_run_stderr_apart(void **state)
{
    (void)state;
    const char *b =
        bundle("streams",
               "\"/bin/sh\", \"-c\", \"echo to-out; echo to-err >&2; echo more-out; exit 3\"");
    assert_int_equal(ctl("run", b, "c-streams"), 3);
    assert_string_equal(out, "to-out\nmore-out\n");
    assert_string_equal(err, "to-err\n");
}

/* A process that closes its output but lives on: WaitProcess is not bound by
 * --timeout (the agent's reply comes after it). */
static void test_run_wait_outlives_streams(void **state)
{
    (void)state;
    const char *b = bundle("closer", "\"/bin/sh\", \"-c\", \"exec >&- 2>&-; sleep 2; exit 9\"");
    long t0 = now_ms();
    assert_int_equal(ctl("--timeout", "1", "run", b, "c-closer"), 9);
    assert_true(now_ms() - t0 >= 1900);
}

static void test_run_tty(void **state)
{
    (void)state;
    const char *b = bundle("isatty", "\"/payload/bin/isatty\"");
    assert_int_equal(ctl("run", b, "c-notty"), 1);
    assert_string_equal(out, "notty\n");
    assert_int_equal(ctl("run", "-t", b, "c-tty"), 0);
    assert_string_equal(out, "tty\r\n"); /* through the container's pty */
    assert_string_equal(err, "");
}

static void test_run_unknown_keys_dropped(void **state)
{
    (void)state;
    const char *b = bundle_ex("extra", "\"/payload/bin/echo\", \"still runs\"",
                              ", \"oomScoreAdj\": 0, \"apparmorProfile\": \"\"",
                              ", \"domainname\": \"example\", \"annotations\": {\"Uid\": \"x\"}",
                              ", \"personality\": {\"domain\": \"LINUX\"}");
    /* umask is a member of process.user in newer specs: put it there by hand. */
    char path[300];
    snprintf(path, sizeof(path), "%s/config.json", b);
    static char text[16384];
    read_file(path, text, sizeof(text));
    char *user = strstr(text, "\"gid\": 0}");
    assert_non_null(user);
    static char patched[16384];
    size_t head = (size_t)(user - text) + strlen("\"gid\": 0");
    snprintf(patched, sizeof(patched), "%.*s, \"umask\": 18%s", (int)head, text, text + head);
    write_file(path, patched, strlen(patched));

    assert_int_equal(ctl("run", b, "c-extra"), 0);
    assert_string_equal(out, "still runs\n");
    assert_non_null(strstr(err, "ignoring process.user.umask"));
    assert_non_null(strstr(err, "ignoring domainname"));
    assert_non_null(strstr(err, "ignoring linux.personality"));
    /* Map keys are data: the annotation "Uid" is not mistaken for a field. */
    assert_null(strstr(err, "Uid"));
}

static void test_run_keep(void **state)
{
    (void)state;
    const char *b = bundle("keep", "\"true\"");
    assert_int_equal(ctl("run", "--keep", b, "c-keep"), 0);
    assert_true(container_exists("c-keep"));
    assert_int_equal(ctl("call", "RemoveContainer", "{\"container_id\":\"c-keep\"}"), 0);
    assert_false(container_exists("c-keep"));
}

static void test_run_bad_bundles(void **state)
{
    (void)state;
    char missing[256];
    snprintf(missing, sizeof(missing), "%s/no-such-bundle", agent.dir);
    assert_int_equal(ctl("run", missing, "c-bad"), 2);
    assert_non_null(strstr(err, "config.json"));
    /* The agent refuses to create it: exit 1, the status printed, nothing left. */
    const char *b = bundle("badexe", "\"/no/such/exe\"");
    assert_int_equal(ctl("run", b, "c-badexe"), 1);
    assert_non_null(strstr(err, "error: "));
    assert_false(container_exists("c-badexe"));
    assert_int_equal(ctl("run", "only-one-operand"), 2);
}

/* SIGTERM to agent-ctl becomes SignalProcess; the payload handles it and exits 0. */
static void test_run_signal_forwarded(void **state)
{
    (void)state;
    const char *b = bundle("pause", "\"/payload/bin/pause\", \"--handle-term\"");
    char in_path[128], out_path[128], err_path[128];
    ctl_paths(in_path, out_path, err_path, sizeof(in_path));
    write_file(in_path, "", 0);
    pid_t pid = spawn_ctl(in_path, out_path, err_path, ARGS("run", b, "c-pause"));
    long deadline = now_ms() + 20000;
    while (read_file(out_path, out, sizeof(out)) == 0 || !strstr(out, "ready")) {
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("the container never said ready");
        }
        usleep(10000);
    }
    kill(pid, SIGTERM);
    assert_int_equal(reap_ctl(pid), 0);
    read_file(out_path, out, sizeof(out));
    assert_string_equal(out, "ready\nSIGTERM\n");
    assert_false(container_exists("c-pause"));
}

/* ---- exec ------------------------------------------------------------------------- */

static void test_exec_into_running(void **state)
{
    (void)state;
    /* A container made with plain calls, in the protobuf JSON agent-ctl call takes. */
    char req[2048];
    snprintf(
        req, sizeof(req),
        "{\"container_id\":\"c2\",\"exec_id\":\"c2\",\"OCI\":{"
        "\"Version\":\"1.0.2\","
        "\"Process\":{\"Args\":[\"/payload/bin/sleep\",\"1000\"],\"Cwd\":\"/\","
        "\"Env\":[\"PATH=/bin\"],\"User\":{}},"
        "\"Root\":{\"Path\":\"%s\"},"
        "\"Mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
        "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
        "\"options\":[\"nosuid\",\"mode=755\"]}],"
        "\"Linux\":{\"Namespaces\":[{\"Type\":\"ipc\"},{\"Type\":\"uts\"},{\"Type\":\"mount\"}]}}}",
        rootfs);
    assert_int_equal(ctl("call", "CreateContainer", req), 0);
    assert_int_equal(ctl("call", "StartContainer", "{\"container_id\":\"c2\"}"), 0);

    assert_int_equal(ctl("exec", "c2", "--", "/payload/bin/echo", "hi"), 0);
    assert_string_equal(out, "hi\n");
    assert_string_equal(err, "");
    /* Options of the command are its own, with or without "--". */
    assert_int_equal(ctl("exec", "c2", "/bin/sh", "-c", "echo -n x; exit 5"), 5);
    assert_string_equal(out, "x");

    assert_int_equal(ctl("exec", "-u", "1000:1000", "-w", "/tmp", "-e", "FOO=bar", "c2", "--",
                         "/bin/sh", "-c", "id -u; id -g; pwd; echo $FOO; echo $PATH"),
                     0);
    assert_string_equal(out, "1000\n1000\n/tmp\nbar\n"
                             "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
    assert_int_equal(ctl("exec", "-e", "PATH=/payload/bin", "c2", "--", "env"), 0);
    /* The given PATH replaces the default (the agent adds HOME, as rustjail does). */
    assert_non_null(strstr(out, "PATH=/payload/bin\n"));
    assert_null(strstr(out, "/usr/local/sbin"));

    assert_int_equal(ctl_in("through exec\n", 13,
                            ARGS("exec", "-i", "c2", "--", "/payload/bin/cat")),
                     0);
    assert_string_equal(out, "through exec\n");
    assert_int_equal(ctl("exec", "-t", "c2", "--", "/payload/bin/isatty"), 0);
    assert_string_equal(out, "tty\r\n");
    assert_int_equal(ctl("exec", "c2", "--", "/payload/bin/echo-stderr", "oops"), 0);
    assert_string_equal(out, "");
    assert_string_equal(err, "oops\n");

    /* Errors from the agent: exit 1 with its status printed. */
    assert_int_equal(ctl("exec", "c2", "--", "/no/such/exe"), 1);
    assert_non_null(strstr(err, "ExecProcess: error: "));
    assert_int_equal(ctl("exec", "no-such-container", "--", "true"), 1);
    assert_non_null(strstr(err, "NOT_FOUND"));
    assert_int_equal(ctl("exec", "c2"), 2);
    assert_int_equal(ctl("exec", "-u", "root", "c2", "--", "true"), 2);

    /* The init is still there, untouched by the execs. */
    assert_int_equal(ctl("call", "SignalProcess", "{\"container_id\":\"c2\",\"signal\":9}"), 0);
    assert_int_equal(ctl("-c", "call", "WaitProcess", "{\"container_id\":\"c2\"}"), 0);
    assert_string_equal(out, "{\"status\":137}\n");
    assert_int_equal(ctl("call", "RemoveContainer", "{\"container_id\":\"c2\"}"), 0);
    assert_false(container_exists("c2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_sandbox_echo),
        cmocka_unit_test(test_run_exit_status),
        cmocka_unit_test(test_run_stdin_through_cat),
        cmocka_unit_test(test_run_stderr_apart),
        cmocka_unit_test(test_run_wait_outlives_streams),
        cmocka_unit_test(test_run_tty),
        cmocka_unit_test(test_run_unknown_keys_dropped),
        cmocka_unit_test(test_run_keep),
        cmocka_unit_test(test_run_bad_bundles),
        cmocka_unit_test(test_run_signal_forwarded),
        cmocka_unit_test(test_exec_into_running),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
