/* Config: cmdline options, environment overrides, bad values keep defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

static void quiet(void)
{
    /* Rejections are logged; keep test output clean. */
    static int devnull = -1;
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY);
    ka_log_set_fd(devnull);
}

static void test_defaults(void **state)
{
    (void)state;
    struct ka_config c;
    ka_config_defaults(&c);
    assert_string_equal(c.server_addr, "vsock://-1:1024");
    assert_int_equal(c.log_level, KA_LOG_INFO);
    assert_int_equal(c.hotplug_timeout_s, 3);
    assert_false(c.debug_console);
    assert_false(c.unified_cgroup_hierarchy);
    assert_false(c.vsock_allow_local); /* only the host may connect unless a test says so */
}

static void test_cmdline_options(void **state)
{
    (void)state;
    struct ka_config c;
    ka_config_defaults(&c);
    ka_config_parse_cmdline(&c, "console=hvc0 panic=1  agent.log=debug agent.debug_console\t"
                                "agent.debug_console_vport=1026 agent.hotplug_timeout=10 "
                                "agent.server_addr=unix:///run/a.sock agent.container_pipe_size=0 "
                                "agent.log_vport=1025 agent.trace=true agent.unknown=1 quiet\n");
    assert_int_equal(c.warnings, 0);
    assert_int_equal(c.log_level, KA_LOG_DEBUG);
    assert_true(c.debug_console);
    assert_int_equal(c.debug_console_vport, 1026);
    assert_int_equal(c.hotplug_timeout_s, 10);
    assert_int_equal(c.log_vport, 1025);
    assert_true(c.tracing);
    assert_string_equal(c.server_addr, "unix:///run/a.sock");
    ka_config_parse_cmdline(&c, "agent.vsock_allow_local");
    assert_true(c.vsock_allow_local);
    ka_config_parse_cmdline(&c, "agent.vsock_allow_local=0");
    assert_false(c.vsock_allow_local);
}

static void test_bad_values_keep_defaults(void **state)
{
    (void)state;
    quiet();
    struct ka_config c;
    ka_config_defaults(&c);
    ka_config_parse_cmdline(&c, "agent.log=loud agent.hotplug_timeout=0 "
                                "agent.debug_console_vport=-5 agent.log_vport=99999999999 "
                                "agent.hotplug_timeout=abc agent.server_addr= agent.log");
    assert_int_equal(c.warnings, 7);
    assert_int_equal(c.log_level, KA_LOG_INFO);
    assert_int_equal(c.hotplug_timeout_s, 3);
    assert_int_equal(c.debug_console_vport, 0);
    assert_int_equal(c.log_vport, 0);
    assert_string_equal(c.server_addr, "vsock://-1:1024");
}

static void test_bools(void **state)
{
    (void)state;
    bool b = false;
    assert_true(ka_config_parse_bool("true", &b) && b);
    assert_true(ka_config_parse_bool("FALSE", &b) && !b);
    assert_true(ka_config_parse_bool("2", &b) && b);
    assert_true(ka_config_parse_bool("0", &b) && !b);
    assert_false(ka_config_parse_bool("yes", &b));
    assert_false(ka_config_parse_bool("", &b));
}

static void test_cgroup_v2_selection(void **state)
{
    (void)state;
    struct ka_config c;
    ka_config_defaults(&c);
    ka_config_parse_cmdline(&c, "cgroup_no_v1=all");
    assert_true(c.unified_cgroup_hierarchy);
    ka_config_defaults(&c);
    ka_config_parse_cmdline(&c, "systemd.unified_cgroup_hierarchy=1");
    assert_true(c.unified_cgroup_hierarchy);
    ka_config_defaults(&c);
    ka_config_parse_cmdline(&c, "agent.unified_cgroup_hierarchy=true");
    assert_true(c.unified_cgroup_hierarchy);
    ka_config_defaults(&c);
    ka_config_parse_cmdline(&c, "cgroup_no_v1=memory");
    assert_false(c.unified_cgroup_hierarchy);
}

/* Every agent.* option of Kata 4.1's config.rs is accepted (none counts as a bad
 * value, none is fatal); those this agent does not act on are counted and logged
 * by name, the others are honoured. (The mem_agent_* family has its own tests.) */
static void test_kata_41_options_recognised(void **state)
{
    (void)state;
    char path[] = "/tmp/ka-config-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    ka_log_set_fd(fd);
    struct ka_config c;
    ka_config_defaults(&c);
    ka_config_parse_cmdline(
        &c, "agent.debug_console agent.devmode agent.trace=false agent.log=info "
            "agent.server_addr=vsock://-1:1024 agent.passfd_listener_port=1027 "
            "agent.hotplug_timeout=7 agent.cdh_api_timeout=50 agent.image_pull_timeout=1200 "
            "agent.cdi_timeout=100 agent.launch_process_timeout=6 agent.visible_cdi_devices=true "
            "agent.debug_console_vport=1026 agent.log_vport=1025 agent.container_pipe_size=4096 "
            "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 "
            "agent.guest_components_rest_api=resource agent.guest_components_procs=none "
            "agent.secure_storage_integrity=false agent.https_proxy=http://proxy:3128 "
            "agent.no_proxy=localhost");
    quiet();
    assert_int_equal(c.warnings, 0);
    assert_int_equal(c.unsupported, 9); /* all of the table below */
    assert_true(c.debug_console);
    assert_true(c.devmode);
    assert_int_equal(c.hotplug_timeout_s, 7);
    assert_int_equal(c.passfd_listener_port, 1027);
    assert_int_equal(c.container_pipe_size, 4096);
    assert_true(c.unified_cgroup_hierarchy);
    assert_string_equal(c.https_proxy, "http://proxy:3128");
    assert_string_equal(c.no_proxy, "localhost");
    char log[8192];
    ssize_t n = pread(fd, log, sizeof(log) - 1, 0);
    close(fd);
    assert_true(n > 0);
    log[n] = '\0';
    static const char *const names[] = {
        "cdh_api_timeout",        "image_pull_timeout",       "cdi_timeout",
        "launch_process_timeout", "visible_cdi_devices",      "guest_components_rest_api",
        "guest_components_procs", "secure_storage_integrity", "passfd_listener_port",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
        char want[128];
        snprintf(want, sizeof(want), "\"option\":\"%s\"", names[i]);
        if (!strstr(log, want))
            fail_msg("%s not logged as unsupported: %s", names[i], log);
    }
    /* Unsupported, but still never a bad value, whatever it says. */
    ka_config_defaults(&c);
    ka_config_parse_cmdline(&c, "agent.cdi_timeout=never agent.guest_components_procs "
                                "agent.passfd_listener_port=0");
    assert_int_equal(c.warnings, 0);
    assert_int_equal(c.unsupported, 2); /* port 0 means passfd off: nothing to report */
}

static const char *fake_env(const char *name)
{
    if (strcmp(name, "KATA_AGENT_SERVER_ADDR") == 0)
        return "unix:///tmp/env.sock";
    if (strcmp(name, "KATA_AGENT_LOG_LEVEL") == 0)
        return "nonsense";
    return NULL;
}

static void test_env_overrides_cmdline(void **state)
{
    (void)state;
    quiet();
    struct ka_config c;
    ka_config_defaults(&c);
    ka_config_parse_cmdline(&c, "agent.server_addr=vsock://-1:2000 agent.log=warn");
    ka_config_apply_env(&c, fake_env);
    assert_string_equal(c.server_addr, "unix:///tmp/env.sock");
    assert_int_equal(c.log_level, KA_LOG_WARN); /* bad env value ignored */
    assert_int_equal(c.warnings, 1);
}

static void test_overlong_item(void **state)
{
    (void)state;
    quiet();
    char line[4000];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    memcpy(line, "agent.server_addr=", 18);
    struct ka_config c;
    ka_config_defaults(&c);
    ka_config_parse_cmdline(&c, line);
    assert_int_equal(c.warnings, 1);
    assert_string_equal(c.server_addr, "vsock://-1:1024");
}

static void test_read_file(void **state)
{
    (void)state;
    char path[] = "/tmp/ka-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "agent.log=trace\n", 16), 16);
    close(fd);
    char buf[8];
    assert_int_equal(ka_config_read_file(path, buf, sizeof(buf)), 7); /* truncated, terminated */
    assert_string_equal(buf, "agent.l");
    unlink(path);
    assert_true(ka_config_read_file("/nonexistent/file", buf, sizeof(buf)) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_cmdline_options),
        cmocka_unit_test(test_bad_values_keep_defaults),
        cmocka_unit_test(test_bools),
        cmocka_unit_test(test_cgroup_v2_selection),
        cmocka_unit_test(test_kata_41_options_recognised),
        cmocka_unit_test(test_env_overrides_cmdline),
        cmocka_unit_test(test_overlong_item),
        cmocka_unit_test(test_read_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
