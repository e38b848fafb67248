/* OnlineCPUMem's sysfs work against a synthetic /sys/devices/system: offline CPUs
 * brought online up to the count asked for, cpu0 without an online file counted, a
 * CPU that refuses to come online (an error after the retries), memory blocks, a
 * missing memory directory; then the cpuset widening over a synthetic cgroup v1
 * and v2 tree: parents and the container get the guest's CPUs, a container with a
 * cpuset of its own keeps it, hierarchies without cpuset are left alone. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "rpc/online.h"

static char root[] = "/tmp/ka-online-XXXXXX";

/* A shell command run in the scratch root (paths in it are relative to it). */
static void sh(const char *cmd)
{
    char full[1024];
    snprintf(full, sizeof(full), "cd %s && %s", root, cmd);
    assert_int_equal(system(full), 0);
}

static void put(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static bool is(const char *rel, const char *text)
{
    char path[512], buf[128] = "";
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    if (strcmp(buf, text) != 0)
        fprintf(stderr, "%s: '%s', expected '%s'\n", rel, buf, text);
    return strcmp(buf, text) == 0;
}

static int group_setup(void **state)
{
    (void)state;
    ka_online_retry_ms = 1;
    return mkdtemp(root) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_cpus(void **state)
{
    (void)state;
    /* cpu0: no online file (not hot-pluggable); cpu4: its online file is a directory,
     * which no write can change (a CPU the kernel refuses to bring up). */
    sh("mkdir -p sys/cpu/cpu0 sys/cpu/cpu1 sys/cpu/cpu2 sys/cpu/cpu3 "
       "sys/cpu/cpu4/online sys/cpu/cpufreq sys/cpu/cpu10");
    put("sys/cpu/cpu1/online", "1\n");
    put("sys/cpu/cpu2/online", "0\n");
    put("sys/cpu/cpu3/online", "0\n");
    put("sys/cpu/cpu10/online", "0\n");
    char sys[300], list[256];
    snprintf(sys, sizeof(sys), "%s/sys", root);
    assert_int_equal(ka_online_cpu_list(sys, list, sizeof(list)), 2);
    assert_string_equal(list, "0-1");

    struct ka_error err;
    /* Two online are enough for two: nothing written. */
    assert_int_equal(ka_online_cpus(sys, 2, list, sizeof(list), &err), 0);
    assert_true(is("sys/cpu/cpu2/online", "0\n"));
    /* Four: two more (whichever two; each written "1"). */
    assert_int_equal(ka_online_cpus(sys, 4, list, sizeof(list), &err), 0);
    unsigned have = ka_online_cpu_list(sys, list, sizeof(list));
    assert_int_equal(have, 4);
    /* Six: cpu4 never comes up, so only five can be: an error naming the count. */
    assert_true(ka_online_cpus(sys, 6, list, sizeof(list), &err) < 0);
    assert_non_null(strstr(err.msg, "only 5 of the 6 CPUs"));
    assert_string_equal(list, "0-3,10");
}

static void test_memory(void **state)
{
    (void)state;
    sh("mkdir -p sys/memory/memory0 sys/memory/memory1 sys/memory/memory2");
    put("sys/memory/memory0/online", "1\n");
    put("sys/memory/memory1/online", "0\n");
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/sys/memory", root);
    assert_int_equal(ka_online_all(dir, "memory", 0), 1);
    assert_true(is("sys/memory/memory1/online", "1\n"));
    /* No memory hotplug in the guest: nothing to do, no error. */
    snprintf(dir, sizeof(dir), "%s/none/memory", root);
    assert_int_equal(ka_online_all(dir, "memory", 0), 0);
}

static struct ka_cgroup *cgroup_in(enum ka_cgroup_version v, const char *path)
{
    struct ka_cgroup_layout l = {.version = v};
    char mount[300];
    if (v == KA_CGROUP_V1) {
        snprintf(mount, sizeof(mount), "%s/v1/cpuset", root);
        l.h[0] = (struct ka_cgroup_hierarchy){.mount = ka_xstrdup(mount),
                                              .controllers = KA_CG_BIT(KA_CG_CPUSET)};
        snprintf(mount, sizeof(mount), "%s/v1/memory", root);
        l.h[1] = (struct ka_cgroup_hierarchy){.mount = ka_xstrdup(mount),
                                              .controllers = KA_CG_BIT(KA_CG_MEMORY)};
        l.n = 2;
    } else {
        snprintf(mount, sizeof(mount), "%s/v2", root);
        l.h[0] = (struct ka_cgroup_hierarchy){.mount = ka_xstrdup(mount),
                                              .controllers = KA_CG_BIT(KA_CG_CPUSET) |
                                                             KA_CG_BIT(KA_CG_MEMORY)};
        l.n = 1;
    }
    struct ka_cgroup *cg = ka_cgroup_new(&l, path);
    ka_cgroup_layout_free(&l);
    return cg;
}

static void test_widen_v1(void **state)
{
    (void)state;
    sh("mkdir -p v1/cpuset/kata/pod/c1 v1/cpuset/kata/pod/c2 v1/memory/kata/pod/c1");
    put("v1/cpuset/cpuset.cpus", "0-3\n");
    put("v1/cpuset/kata/cpuset.cpus", "0\n");
    put("v1/cpuset/kata/pod/cpuset.cpus", "0\n");
    put("v1/cpuset/kata/pod/c1/cpuset.cpus", "0\n");
    put("v1/cpuset/kata/pod/c2/cpuset.cpus", "0\n");
    put("v1/memory/kata/pod/c1/cpuset.cpus", "untouched");
    struct ka_error err;
    struct ka_cgroup *c1 = cgroup_in(KA_CGROUP_V1, "/kata/pod/c1");
    assert_int_equal(ka_cpuset_widen(c1, "0-3", NULL, &err), 0);
    assert_true(is("v1/cpuset/cpuset.cpus", "0-3\n")); /* the root is the kernel's */
    assert_true(is("v1/cpuset/kata/cpuset.cpus", "0-3"));
    assert_true(is("v1/cpuset/kata/pod/cpuset.cpus", "0-3"));
    assert_true(is("v1/cpuset/kata/pod/c1/cpuset.cpus", "0-3"));
    assert_true(is("v1/memory/kata/pod/c1/cpuset.cpus", "untouched"));
    /* A container that asked for CPU 1 keeps CPU 1. */
    struct ka_cgroup *c2 = cgroup_in(KA_CGROUP_V1, "/kata/pod/c2");
    assert_int_equal(ka_cpuset_widen(c2, "0-3", "1", &err), 0);
    assert_true(is("v1/cpuset/kata/pod/c2/cpuset.cpus", "1"));
    /* Nothing known about the guest: nothing written. */
    put("v1/cpuset/kata/pod/c2/cpuset.cpus", "0\n");
    assert_int_equal(ka_cpuset_widen(c2, "", NULL, &err), 0);
    assert_true(is("v1/cpuset/kata/pod/c2/cpuset.cpus", "0\n"));
    /* v1 has the file everywhere: its absence is an error. */
    sh("rm v1/cpuset/kata/pod/cpuset.cpus");
    assert_true(ka_cpuset_widen(c1, "0-3", NULL, &err) < 0);
    assert_non_null(strstr(err.msg, "kata/pod/cpuset.cpus"));
    ka_cgroup_free(c1);
    ka_cgroup_free(c2);
}

static void test_widen_v2(void **state)
{
    (void)state;
    /* cpuset enabled for /kata's children only: /kata itself has no cpuset.cpus. */
    sh("mkdir -p v2/kata/pod/c1");
    put("v2/kata/pod/cpuset.cpus", "");
    put("v2/kata/pod/c1/cpuset.cpus", "0");
    struct ka_error err;
    struct ka_cgroup *c1 = cgroup_in(KA_CGROUP_V2, "/kata/pod/c1");
    assert_int_equal(ka_cpuset_widen(c1, "0-7", NULL, &err), 0);
    char path[300];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/v2/kata/cpuset.cpus", root);
    assert_int_not_equal(stat(path, &sb), 0);
    assert_true(is("v2/kata/pod/cpuset.cpus", "0-7"));
    assert_true(is("v2/kata/pod/c1/cpuset.cpus", "0-7"));
    ka_cgroup_free(c1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpus),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_widen_v1),
        cmocka_unit_test(test_widen_v2),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
