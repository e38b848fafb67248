/* agent-ctl in kata-agent-ctl's style against the real agent: `connect
 * --server-address ADDR -c ...` on every address form the host can show (unix
 * path, abstract unix socket, hybrid vsock through a peer that speaks the CONNECT
 * handshake, vsock dialled), and the commands of the examples section of
 * upstream's agent-ctl README (tag 4.1.0, src/tools/agent-ctl/README.md), written
 * from its documented syntax, run in order on a unix socket. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct agent_proc agent;
static char out[1 << 18];
static char err[1 << 16];

/* Ids carry the test's pid: container ids and cgroup paths are global here. */
static const char *with_pid(const char *name)
{
    static char ids[8][64];
    static int next;
    char *id = ids[next++ % 8];
    snprintf(id, 64, "%s-%d", name, (int)getpid());
    return id;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ctl(...) run_ctl(&agent, out, sizeof(out), err, sizeof(err), ARGS(__VA_ARGS__))

static void expect_in(const char *what, const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("%s: no '%s' in:\n%s\nstderr:\n%s", what, needle, out, err);
}

static int group_setup(void **state)
{
    (void)state;
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
    agent_stop(&agent);
    return 0;
}

/* ---- address forms ------------------------------------------------------------ */

static void test_unix_path_json_and_order(void **state)
{
    (void)state;
    /* Upstream's JSON example, replies printed in the order of the -c options. */
    int rc = ctl("-l", "debug", "connect", "--server-address", agent.addr, "-c", "Check", "-c",
                 "GetGuestDetails json://{\"mem_block_size\": true, \"mem_hotplug_probe\": true}");
    if (rc != 0)
        fail_msg("rc %d: %s", rc, err);
    expect_in("Check", out, "\"status\": \"SERVING\"");
    expect_in("GetGuestDetails", out, "\"agent_details\"");
    assert_true(strstr(out, "SERVING") < strstr(out, "agent_details"));
    /* -l debug shows each request as sent. */
    expect_in("-l debug", err, "grpc.AgentService/GetGuestDetails {\"mem_block_size\":true");
}

/* An agent on an abstract socket (its own --server-addr), reached the same way. */
static void test_abstract_socket(void **state)
{
    (void)state;
    char addr[64];
    snprintf(addr, sizeof(addr), "unix://@ka-ctl-upstream-%d", (int)getpid());
    struct agent_proc abstract;
    agent_start_full(&abstract, addr, NULL, NULL);
    int rc = -1;
    for (int i = 0; i < 400 && rc != 0; i++) { /* it does not wait for an abstract socket */
        rc = run_ctl(&abstract, out, sizeof(out), err, sizeof(err),
                     ARGS("connect", "--server-address", addr, "-c", "Check"));
        if (rc)
            usleep(50000);
    }
    if (rc != 0)
        fail_msg("abstract socket: rc %d: %s", rc, err);
    expect_in("Check on @", out, "\"status\": \"SERVING\"");
    /* And our own verbs take the address too. */
    assert_int_equal(run_ctl(&abstract, out, sizeof(out), err, sizeof(err), ARGS("check")), 0);
    expect_in("check on @", out, "SERVING");
    /* No file was made for it. */
    char path[80];
    snprintf(path, sizeof(path), "@ka-ctl-upstream-%d", (int)getpid());
    assert_int_equal(access(path, F_OK), -1);
    agent_stop(&abstract);
}

/* A hybrid vsock peer as Firecracker and Cloud Hypervisor are: a unix socket on
 * which exactly "CONNECT <port>\n" for the agent's port is answered "OK <n>\n"
 * and the stream then relayed to the agent; any other first line is dropped. */
static void relay(int a, int b)
{
    char buf[65536];
    struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0)
            return;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(p[i].fd, buf, sizeof(buf));
            if (n <= 0)
                return;
            if (write(p[1 - i].fd, buf, (size_t)n) != n)
                return;
        }
    }
}

static void hvsock_peer(int listener, const char *agent_sock, unsigned port)
{
    char want[32];
    snprintf(want, sizeof(want), "CONNECT %u\n", port);
    for (;;) {
        int c = accept(listener, NULL, NULL);
        if (c < 0)
            _exit(1);
        char line[64];
        size_t n = 0;
        while (n < sizeof(line) - 1 && read(c, line + n, 1) == 1 && line[n++] != '\n')
            ;
        line[n] = '\0';
        if (strcmp(line, want) != 0) {
            close(c); /* what Firecracker does for a port nobody listens on */
            continue;
        }
        int a = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        snprintf(un.sun_path, sizeof(un.sun_path), "%.100s", agent_sock);
        if (a < 0 || connect(a, (struct sockaddr *)&un, sizeof(un)) < 0)
            _exit(2);
        /* The reply and the agent's first bytes may share a read on the client's
         * side; agent-ctl must take only the line. */
        static const char ok[] = "OK 1073741824\n";
        if (write(c, ok, sizeof(ok) - 1) != (ssize_t)(sizeof(ok) - 1))
            _exit(3);
        relay(c, a);
        close(a);
        close(c);
    }
}

static pid_t start_hvsock_peer(char *path, size_t size)
{
    snprintf(path, size, "%s/hv.sock", agent.dir);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%.100s", path);
    assert_int_equal(bind(l, (struct sockaddr *)&un, sizeof(un)), 0);
    assert_int_equal(listen(l, 8), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        hvsock_peer(l, agent.sock, 1024);
    close(l);
    return pid;
}

static void test_hybrid_vsock(void **state)
{
    (void)state;
    char path[128], addr[160];
    pid_t peer = start_hvsock_peer(path, sizeof(path));

    snprintf(addr, sizeof(addr), "hvsock://%s:1024", path);
    int rc = ctl("connect", "--server-address", addr, "-c", "Check", "-c", "GetGuestDetails");
    if (rc != 0)
        fail_msg("hvsock://: rc %d: %s", rc, err);
    expect_in("Check over hybrid vsock", out, "SERVING");
    expect_in("GetGuestDetails over hybrid vsock", out, "agent_details");

    /* kata-agent-ctl's spelling: unix://PATH --hybrid-vsock (port 1024 by default). */
    snprintf(addr, sizeof(addr), "unix://%s", path);
    rc = ctl("connect", "--server-address", addr, "--hybrid-vsock", "-c", "Check");
    if (rc != 0)
        fail_msg("--hybrid-vsock: rc %d: %s", rc, err);
    expect_in("--hybrid-vsock", out, "SERVING");

    /* Our own verbs take hvsock:// too. */
    snprintf(addr, sizeof(addr), "hvsock://%s:1024", path);
    assert_int_equal(ctl("--addr", addr, "check"), 0);

    /* A port nobody serves: the peer hangs up, a transport error that says so. */
    snprintf(addr, sizeof(addr), "hvsock://%s:2048", path);
    assert_int_equal(ctl("connect", "--server-address", addr, "-c", "Check"), 3);
    expect_in("refused port", err, "CONNECT 2048");
    assert_int_equal(ctl("connect", "--server-address", "hvsock://relative:1", "-c", "Check"), 3);
    expect_in("bad hvsock address", err, "hvsock:///path/to.sock:PORT");

    kill(peer, SIGKILL);
    waitpid(peer, NULL, 0);
}

static void test_vsock_dialled(void **state)
{
    (void)state;
    /* No vsock transport on this host: what can be shown is that the address is
     * taken and dialled as AF_VSOCK (the guest e2e reaches the agent through the
     * VMM's unix socket). */
    int rc = ctl("connect", "--server-address", "vsock://4294967295:1", "-c", "Check");
    assert_int_equal(rc, 3);
    expect_in("vsock", err, "connect vsock 4294967295:1");
    assert_int_equal(ctl("connect", "--server-address", "vsock://x:1", "-c", "Check"), 3);
    expect_in("bad vsock address", err, "vsock://CID:PORT");
}

/* ---- command syntax --------------------------------------------------------- */

static void test_key_value_file_and_errors(void **state)
{
    (void)state;
    /* key=value: booleans, numbers, quoted strings. */
    int rc = ctl("-l", "trace", "connect", "--server-address", agent.addr, "-c",
                 "GetGuestDetails mem_block_size=true mem_hotplug_probe=false");
    if (rc != 0)
        fail_msg("key=value: rc %d: %s", rc, err);
    expect_in("key=value request", err, "{\"mem_block_size\":true}");

    char path[160];
    snprintf(path, sizeof(path), "%s/req.json", agent.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"mem_block_size\": true}", f);
    fclose(f);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "GetGuestDetails file://%s", path);
    rc = ctl("-l", "debug", "connect", "--server-address", agent.addr, "-c", cmd);
    if (rc != 0)
        fail_msg("file://: rc %d: %s", rc, err);
    expect_in("file:// request", err, "{\"mem_block_size\":true}");

    /* Errors name what is wrong; nothing after a failed command runs. */
    assert_int_equal(ctl("connect", "--server-address", agent.addr, "-c", "NoSuchRpc"), 2);
    expect_in("unknown command", err, "unknown command 'NoSuchRpc'");
    assert_int_equal(ctl("connect", "--server-address", agent.addr, "-c",
                         "GetGuestDetails json://{\"bogus\": 1}"),
                     2);
    expect_in("unknown field", err, "unknown field 'bogus'");
    assert_int_equal(ctl("connect", "--server-address", agent.addr, "-c", "Check x=\"open"), 2);
    assert_int_equal(ctl("connect", "--server-address", agent.addr, "-c",
                         "PauseContainer container_id=no-such", "-c", "Check"),
                     1);
    assert_null(strstr(out, "SERVING"));
    assert_int_equal(ctl("connect", "-c", "Check"), 2);
    expect_in("no address", err, "--server-address");

    /* kata-agent-ctl's builtins: echo, sleep, and quit, which skips the rest. */
    rc = ctl("connect", "--server-address", agent.addr, "-c", "echo before  it", "-c", "sleep 20ms",
             "-c", "Check", "-c", "quit", "-c", "NoSuchRpc");
    if (rc != 0)
        fail_msg("builtins: rc %d: %s", rc, err);
    expect_in("echo", out, "before  it\n");
    expect_in("Check after sleep", out, "SERVING");
    assert_int_equal(ctl("connect", "--server-address", agent.addr, "-c", "sleep 2 days"), 2);
}

/* ---- upstream's examples ------------------------------------------------------ */

static const char *write_bundle(void)
{
    static char dir[160];
    const char *rootfs = getenv("KA_TEST_ROOTFS");
    assert_non_null(rootfs);
    snprintf(dir, sizeof(dir), "%s/bundle", agent.dir);
    assert_true(mkdir(dir, 0755) == 0 || errno == EEXIST);
    char path[200];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(
        f,
        "{\"ociVersion\": \"1.0.2\",\n"
        " \"process\": {\"user\": {\"uid\": 0, \"gid\": 0}, \"args\": [\"sleep\", \"600\"],\n"
        "   \"env\": [\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\"], \"cwd\": \"/\"},\n"
        " \"root\": {\"path\": \"%s\", \"readonly\": true},\n"
        " \"hostname\": \"ctl\",\n"
        " \"mounts\": [{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"}],\n"
        " \"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"},\n"
        "   {\"type\": \"uts\"}, {\"type\": \"mount\"}]}}\n",
        rootfs);
    fclose(f);
    return dir;
}

/* Each example's command line, as upstream's README writes it (-l trace connect
 * --no-auto-values --bundle-dir ... --server-address ... -c ...), against the
 * agent on a unix socket, in the README's order: sandbox first (its "Local
 * examples"), then a container for the QEMU examples to act on (the README
 * starts it with ctr; here CreateContainer from the bundle does). */
static void test_upstream_readme_examples(void **state)
{
    (void)state;
    const char *bundle_dir = write_bundle();
    const char *sandbox_id = with_pid("foo");
    const char *container_id = with_pid("ctl-up");
    char cmd[512];
#define EXAMPLE(command)                                                                        \
    do {                                                                                        \
        int rc_ = ctl("-l", "trace", "connect", "--no-auto-values", "--bundle-dir", bundle_dir, \
                      "--server-address", agent.addr, "-c", (command));                         \
        if (rc_ != 0)                                                                           \
            fail_msg("example '%s': rc %d: %s", (command), rc_, err);                           \
    } while (0)

    snprintf(cmd, sizeof(cmd), "CreateSandbox json://{\"sandbox_id\": \"%s\"}", sandbox_id);
    EXAMPLE(cmd);
    EXAMPLE("Check");
    expect_in("Check", out, "SERVING");
    EXAMPLE("GetGuestDetails");
    expect_in("GetGuestDetails", out, "agent_details");
    EXAMPLE("GetMetrics");
    expect_in("GetMetrics", out, "\"metrics\"");

    /* The container the examples assume, made with the auto values' help: the
     * bundle's spec and the ids given as key=value. */
    snprintf(cmd, sizeof(cmd), "CreateContainer container_id=%s exec_id=%s", container_id,
             container_id);
    int rc = ctl("connect", "--bundle-dir", bundle_dir, "--server-address", agent.addr, "-c", cmd);
    if (rc != 0)
        fail_msg("CreateContainer from the bundle: rc %d: %s", rc, err);
    snprintf(cmd, sizeof(cmd), "StartContainer json://{\"container_id\": \"%s\"}", container_id);
    EXAMPLE(cmd);

    snprintf(cmd, sizeof(cmd), "StatsContainer json://{\"container_id\": \"%s\"}", container_id);
    EXAMPLE(cmd);
    expect_in("StatsContainer", out, "cgroup_stats");
    snprintf(cmd, sizeof(cmd), "PauseContainer json://{\"container_id\": \"%s\"}", container_id);
    EXAMPLE(cmd);
    snprintf(cmd, sizeof(cmd), "ResumeContainer json://{\"container_id\": \"%s\"}", container_id);
    EXAMPLE(cmd);
    snprintf(cmd, sizeof(cmd), "RemoveContainer json://{\"container_id\": \"%s\"}", container_id);
    EXAMPLE(cmd);
    EXAMPLE("DestroySandbox");
#undef EXAMPLE
    /* `examples` and --help show both styles. */
    assert_int_equal(ctl("examples"), 0);
    expect_in("examples", out, "connect --server-address");
    expect_in("examples", out, "hvsock://");
    assert_int_equal(ctl("--help"), 0);
    expect_in("--help", out, "connect --server-address ADDR");
    expect_in("--help", out, "call METHOD [JSON]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unix_path_json_and_order),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_hybrid_vsock),
        cmocka_unit_test(test_vsock_dialled),
        cmocka_unit_test(test_key_value_file_and_errors),
        cmocka_unit_test(test_upstream_readme_examples),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
