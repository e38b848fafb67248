/* Where the agent takes its configuration from, end to end: the kernel command
 * line, the environment over it, flags over both; bad values do not stop it. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char out[1 << 14], err[1 << 14];

static void assert_serving(struct agent_proc *p)
{
    const char *args[] = {"check", NULL};
    assert_int_equal(run_ctl(p, out, sizeof(out), err, sizeof(err), args), 0);
    assert_non_null(strstr(out, "SERVING"));
}

static bool log_contains(const struct agent_proc *p, const char *needle)
{
    FILE *f = fopen(p->log, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void test_address_from_cmdline(void **state)
{
    (void)state;
    struct agent_proc p;
    agent_start_full(&p, "", "console=hvc0 agent.server_addr=unix://@SOCK@ agent.log=debug", NULL);
    assert_serving(&p);
    assert_true(log_contains(&p, "\"level\":\"DEBG\""));
    agent_stop(&p);
}

static void test_env_overrides_cmdline(void **state)
{
    (void)state;
    struct agent_proc p;
    char *env[] = {"KATA_AGENT_SERVER_ADDR=unix://@SOCK@", NULL};
    agent_start_full(&p, "", "agent.server_addr=unix:///nonexistent/dir/x.sock", env);
    assert_serving(&p);
    agent_stop(&p);
}

/* Rust's agent aborts on an unknown agent.log value; PID 1 must not. */
static void test_bad_values_are_logged_not_fatal(void **state)
{
    (void)state;
    struct agent_proc p;
    agent_start_full(&p, NULL,
                     "agent.log=loud agent.hotplug_timeout=never agent.debug_console_vport=-1",
                     NULL);
    assert_serving(&p);
    assert_true(log_contains(&p, "\"option\":\"agent.log=loud\""));
    assert_true(log_contains(&p, "\"option\":\"agent.hotplug_timeout=never\""));
    agent_stop(&p);
}

static int vsock_bind(unsigned port)
{
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_vm vm = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    int rc = bind(fd, (struct sockaddr *)&vm, sizeof(vm)) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

/* With no address configured the agent holds vsock port 1024, as the runtime expects.
 * (No vsock transport on a host lets us connect; a second bind proves the listener.) */
static void test_default_address_is_vsock_1024(void **state)
{
    (void)state;
    if (vsock_bind(1024) != 0)
        fail_msg("vsock port 1024 is not free on this machine before the test");
    struct agent_proc p;
    agent_start_full(&p, AGENT_ADDR_BUILTIN, "console=hvc0", NULL);
    int rc = 0;
    for (int i = 0; i < 500 && (rc = vsock_bind(1024)) == 0; i++)
        usleep(10000);
    assert_int_equal(rc, EADDRINUSE);
    assert_true(agent_alive(&p));
    agent_stop(&p);
    assert_int_equal(vsock_bind(1024), 0);
}

static void test_version_flag(void **state)
{
    (void)state;
    char cmd[512];
    const char *emu = getenv("KA_AGENT_EMULATOR");
    snprintf(cmd, sizeof(cmd), "%s %s --version", emu ? emu : "", getenv("KA_AGENT_BIN"));
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    assert_int_equal(pclose(f), 0);
    assert_non_null(strstr(out, "kata-agent version " KA_TEST_VERSION));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_from_cmdline),
        cmocka_unit_test(test_env_overrides_cmdline),
        cmocka_unit_test(test_bad_values_are_logged_not_fatal),
        cmocka_unit_test(test_default_address_is_vsock_1024),
        cmocka_unit_test(test_version_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
