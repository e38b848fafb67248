/* cgroups without a kernel: the path rule, finding the hierarchies in a
 * mountinfo, the v1 -> v2 conversions, resources written to fake v1 and v2
 * cgroup directories (plain files standing for the kernel's), the default device
 * list and the v2 eBPF device program (run through a small interpreter of the
 * instructions it uses), and Linux.Resources taken from protobuf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroups/cgroup.h"
#include "cgroups/resources.h"
#include "core/log.h"
#include "rpc/oci_convert.h"

static char tmp[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/ka-cgunit-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    ka_log_set_level(KA_LOG_CRITICAL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void put(const char *dir, const char *file, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *get(const char *dir, const char *file)
{
    static char buf[4096];
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static char *mkdir_in(const char *name)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    assert_int_equal(mkdir(path, 0755), 0);
    return path;
}

/* ---- paths ---------------------------------------------------------------------------- */

static void path_ok(const char *in, const char *cid, const char *want)
{
    char out[KA_CGROUP_PATH_MAX + 2];
    struct ka_error err;
    if (ka_cgroup_path(in, cid, out, sizeof(out), &err) < 0)
        fail_msg("\"%s\": %s", in, err.msg);
    assert_string_equal(out, want);
}

static void path_bad(const char *in)
{
    char out[KA_CGROUP_PATH_MAX + 2];
    struct ka_error err;
    assert_true(ka_cgroup_path(in, "c1", out, sizeof(out), &err) < 0);
    assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
}

static void test_path_rules(void **state)
{
    (void)state;
    path_ok("", "abc", "/abc");
    path_ok(NULL, "abc", "/abc");
    path_ok("/kubepods/besteffort/pod1/c1", "x", "/kubepods/besteffort/pod1/c1");
    path_ok("kubepods:besteffort:c1", "x", "/kubepods/besteffort/c1");
    path_ok("system.slice:kata:abc", "x", "/system.slice/kata/abc");
    path_ok("//a//b/", "x", "/a/b");
    path_ok("a:/b", "x", "/a/b");
    path_ok("/a/..b/c..", "x", "/a/..b/c..");
    path_bad("/a/../b");
    path_bad("..");
    path_bad("a:..:b");
    path_bad("/a/./b");
    path_bad("/");
    path_bad("::");
    path_bad("/a/b\nc");
    char deep[200] = "";
    for (int i = 0; i < 33; i++)
        strcat(deep, "/d");
    path_bad(deep);
    char *longp = malloc(KA_CGROUP_PATH_MAX + 10);
    memset(longp, 'a', KA_CGROUP_PATH_MAX + 9);
    longp[0] = '/';
    longp[KA_CGROUP_PATH_MAX + 9] = '\0';
    path_bad(longp);
    free(longp);

    char parent[64];
    ka_cgroup_parent("/a/b/c", parent, sizeof(parent));
    assert_string_equal(parent, "/a/b");
    ka_cgroup_parent("/a", parent, sizeof(parent));
    assert_string_equal(parent, "/");
}

static void test_controller_names(void **state)
{
    (void)state;
    assert_int_equal(ka_cgroup_controller_parse("memory", KA_CGROUP_V1), KA_CG_MEMORY);
    assert_int_equal(ka_cgroup_controller_parse("blkio", KA_CGROUP_V1), KA_CG_BLKIO);
    assert_int_equal(ka_cgroup_controller_parse("io", KA_CGROUP_V1), -1);
    assert_int_equal(ka_cgroup_controller_parse("io", KA_CGROUP_V2), KA_CG_BLKIO);
    assert_int_equal(ka_cgroup_controller_parse("blkio", KA_CGROUP_V2), -1);
    assert_int_equal(ka_cgroup_controller_parse("name=systemd", KA_CGROUP_V1), -1);
    assert_string_equal(ka_cgroup_controller_name(KA_CG_BLKIO, KA_CGROUP_V2), "io");
    assert_string_equal(ka_cgroup_controller_name(KA_CG_CPUACCT, KA_CGROUP_V1), "cpuacct");
}

/* ---- layout ------------------------------------------------------------------------------ */

static void test_layout_hybrid(void **state)
{
    (void)state;
    char mi[256];
    snprintf(mi, sizeof(mi), "%s/mountinfo", tmp);
    FILE *f = fopen(mi, "w");
    assert_non_null(f);
    fputs("22 1 0:21 / / rw - ext4 /dev/vda rw\n"
          "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
          "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
          "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
          "36 31 0:33 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n"
          "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
          "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
          /* the same hierarchies mounted again elsewhere: one entry each, the one
           * under /sys/fs/cgroup kept */
          "50 22 0:32 / /mnt/mem\\040x rw - cgroup cgroup rw,memory\n"
          "51 22 0:37 / /mnt/sd rw - cgroup cgroup rw,name=systemd\n",
          f);
    fclose(f);
    struct ka_cgroup_layout l;
    struct ka_error err;
    /* root: a plain directory, so not cgroup2 */
    assert_int_equal(ka_cgroup_layout_detect(&l, mi, tmp, &err), 0);
    assert_int_equal(l.version, KA_CGROUP_V1);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.h[0].mount, "/sys/fs/cgroup/cpu,cpuacct");
    assert_int_equal(l.h[0].controllers, KA_CG_BIT(KA_CG_CPU) | KA_CG_BIT(KA_CG_CPUACCT));
    assert_string_equal(l.h[1].mount, "/sys/fs/cgroup/memory");
    assert_string_equal(l.h[3].mount, "/sys/fs/cgroup/systemd");
    assert_int_equal(l.h[3].controllers, 0);

    struct ka_cgroup *cg = ka_cgroup_new(&l, "/pod/c1");
    assert_int_equal(cg->n, 4);
    assert_string_equal(ka_cgroup_dir_of(cg, KA_CG_CPUACCT), "/sys/fs/cgroup/cpu,cpuacct/pod/c1");
    assert_string_equal(ka_cgroup_dir_of(cg, KA_CG_MEMORY), "/sys/fs/cgroup/memory/pod/c1");
    assert_null(ka_cgroup_dir_of(cg, KA_CG_PIDS));
    assert_false(ka_cgroup_has(cg, KA_CG_FREEZER));
    ka_cgroup_free(cg);
    ka_cgroup_layout_free(&l);

    /* A preferred mount that comes second replaces the first. */
    f = fopen(mi, "w");
    fputs("50 22 0:32 / /mnt/mem rw - cgroup cgroup rw,memory\n"
          "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
          f);
    fclose(f);
    assert_int_equal(ka_cgroup_layout_detect(&l, mi, "/sys/fs/cgroup", &err), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.h[0].mount, "/sys/fs/cgroup/memory");
    ka_cgroup_layout_free(&l);

    /* Nothing mounted: no cgroups, not an error. */
    f = fopen(mi, "w");
    fputs("22 1 0:21 / / rw - ext4 /dev/vda rw\n", f);
    fclose(f);
    assert_int_equal(ka_cgroup_layout_detect(&l, mi, tmp, &err), 0);
    assert_int_equal(l.version, KA_CGROUP_NONE);
    ka_cgroup_layout_free(&l);
    assert_true(ka_cgroup_layout_detect(&l, "/nonexistent/mountinfo", tmp, &err) < 0);
}

/* ---- conversions ---------------------------------------------------------------------------- */

static void test_conversions(void **state)
{
    (void)state;
    assert_int_equal(ka_cgroup_shares_to_weight(0), 0);
    assert_int_equal(ka_cgroup_shares_to_weight(2), 1);
    assert_int_equal(ka_cgroup_shares_to_weight(1024), 39);
    assert_int_equal(ka_cgroup_shares_to_weight(262144), 10000);
    assert_int_equal(ka_cgroup_shares_to_weight(1), 1);
    assert_int_equal(ka_cgroup_shares_to_weight(1u << 30), 10000);

    int64_t out;
    struct ka_error err;
    assert_int_equal(ka_cgroup_swap_to_v2(0, -1, &out, &err), 0);
    assert_int_equal(out, -1);
    assert_int_equal(ka_cgroup_swap_to_v2(-1, 100, &out, &err), 0);
    assert_int_equal(out, -1);
    assert_int_equal(ka_cgroup_swap_to_v2(0, 100, &out, &err), 0);
    assert_int_equal(out, 0);
    assert_int_equal(ka_cgroup_swap_to_v2(300, 100, &out, &err), 0);
    assert_int_equal(out, 200);
    assert_int_equal(ka_cgroup_swap_to_v2(100, 100, &out, &err), 0);
    assert_int_equal(out, 0);
    assert_true(ka_cgroup_swap_to_v2(50, 100, &out, &err) < 0);
    assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
    assert_true(ka_cgroup_swap_to_v2(50, 0, &out, &err) < 0);
    assert_true(ka_cgroup_swap_to_v2(50, -1, &out, &err) < 0);

    assert_int_equal(ka_cgroup_blkio_weight_to_v2(0), 0);
    assert_int_equal(ka_cgroup_blkio_weight_to_v2(10), 1);
    assert_int_equal(ka_cgroup_blkio_weight_to_v2(500), 1 + 490 * 9999 / 990);
    assert_int_equal(ka_cgroup_blkio_weight_to_v2(1000), 10000);

    char buf[64];
    ka_cgroup_cpu_max(50000, 100000, buf, sizeof(buf));
    assert_string_equal(buf, "50000 100000");
    ka_cgroup_cpu_max(-1, 100000, buf, sizeof(buf));
    assert_string_equal(buf, "max 100000");
}

/* ---- resources on fake trees ------------------------------------------------------------------ */

static struct ka_cgroup *fake_cgroup(enum ka_cgroup_version v, const char *dir, unsigned ctrls)
{
    struct ka_cgroup *cg = calloc(1, sizeof(*cg));
    cg->version = v;
    cg->path = strdup("/c1");
    cg->d[0].dir = strdup(dir);
    cg->d[0].controllers = ctrls;
    cg->n = 1;
    cg->bpf_prog_fd = -1;
    return cg;
}

#define ALL_CONTROLLERS ((1u << KA_CG_COUNT) - 1)

static void v1_files(const char *d)
{
    static const char *const files[] = {"memory.limit_in_bytes",
                                        "memory.memsw.limit_in_bytes",
                                        "memory.soft_limit_in_bytes",
                                        "memory.swappiness",
                                        "memory.oom_control",
                                        "memory.kmem.tcp.limit_in_bytes",
                                        "cpu.shares",
                                        "cpu.cfs_quota_us",
                                        "cpu.cfs_period_us",
                                        "cpu.rt_period_us",
                                        "cpu.rt_runtime_us",
                                        "cpuset.cpus",
                                        "cpuset.mems",
                                        "pids.max",
                                        "blkio.throttle.read_bps_device",
                                        "blkio.throttle.write_iops_device",
                                        "blkio.bfq.weight",
                                        "blkio.bfq.weight_device",
                                        "hugetlb.2MB.limit_in_bytes",
                                        "net_cls.classid",
                                        "net_prio.ifpriomap",
                                        "devices.allow",
                                        "devices.deny"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        put(d, files[i], "");
    put(d, "memory.limit_in_bytes", "9223372036854771712\n");
}

static struct ka_resources full_resources(void)
{
    static struct ka_blkio_device wdev = {8, 0, 300, 0};
    static struct ka_blkio_device rbps = {8, 16, 1048576, 0};
    static struct ka_hugepage_limit huge[] = {{"2MB", 4194304}, {"1GB", 1073741824}};
    static struct ka_net_priority prio = {"eth0", 5};
    struct ka_resources r = {0};
    r.memory = (struct ka_memory_resources){.present = true,
                                            .limit = 64 << 20,
                                            .reservation = 32 << 20,
                                            .swap = 128 << 20,
                                            .kernel_tcp = 1 << 20,
                                            .swappiness = 10,
                                            .disable_oom_killer = true};
    r.cpu = (struct ka_cpu_resources){.present = true,
                                      .shares = 512,
                                      .quota = 50000,
                                      .period = 100000,
                                      .realtime_period = 1000000,
                                      .realtime_runtime = 950000,
                                      .cpus = (char *)"0-1",
                                      .mems = (char *)"0"};
    r.has_pids = true;
    r.pids_limit = 64;
    r.blkio.present = true;
    r.blkio.weight = 500;
    r.blkio.weight_devices = &wdev;
    r.blkio.n_weight_devices = 1;
    r.blkio.throttle[KA_THROTTLE_READ_BPS] = &rbps;
    r.blkio.n_throttle[KA_THROTTLE_READ_BPS] = 1;
    r.hugepages = huge;
    r.n_hugepages = 2; /* 1GB has no file: dropped with a warning */
    r.has_network = true;
    r.net_class_id = 0x100001;
    r.net_priorities = &prio;
    r.n_net_priorities = 1;
    return r;
}

static void test_resources_v1(void **state)
{
    (void)state;
    char *d = mkdir_in("v1");
    v1_files(d);
    struct ka_cgroup *cg = fake_cgroup(KA_CGROUP_V1, d, ALL_CONTROLLERS);
    struct ka_resources r = full_resources();
    struct ka_error err;
    if (ka_cgroup_set_resources(cg, &r, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(get(d, "memory.limit_in_bytes"), "67108864");
    assert_string_equal(get(d, "memory.memsw.limit_in_bytes"), "134217728");
    assert_string_equal(get(d, "memory.soft_limit_in_bytes"), "33554432");
    assert_string_equal(get(d, "memory.swappiness"), "10");
    assert_string_equal(get(d, "memory.oom_control"), "1");
    assert_string_equal(get(d, "memory.kmem.tcp.limit_in_bytes"), "1048576");
    assert_string_equal(get(d, "cpu.shares"), "512");
    assert_string_equal(get(d, "cpu.cfs_quota_us"), "50000");
    assert_string_equal(get(d, "cpu.cfs_period_us"), "100000");
    assert_string_equal(get(d, "cpu.rt_period_us"), "1000000");
    assert_string_equal(get(d, "cpu.rt_runtime_us"), "950000");
    assert_string_equal(get(d, "cpuset.cpus"), "0-1");
    assert_string_equal(get(d, "cpuset.mems"), "0");
    assert_string_equal(get(d, "pids.max"), "64");
    assert_string_equal(get(d, "blkio.bfq.weight"), "500"); /* no blkio.weight: BFQ's */
    assert_string_equal(get(d, "blkio.bfq.weight_device"), "8:0 300");
    assert_string_equal(get(d, "blkio.throttle.read_bps_device"), "8:16 1048576");
    assert_string_equal(get(d, "hugetlb.2MB.limit_in_bytes"), "4194304");
    assert_string_equal(get(d, "net_cls.classid"), "1048577");
    assert_string_equal(get(d, "net_prio.ifpriomap"), "eth0 5");

    /* Unlimited memory: swap unlimited too, written first. */
    struct ka_resources u = {.memory = {.present = true, .limit = -1}};
    assert_int_equal(ka_cgroup_set_resources(cg, &u, &err), 0);
    assert_string_equal(get(d, "memory.limit_in_bytes"), "-1");
    assert_string_equal(get(d, "memory.memsw.limit_in_bytes"), "-1");
    /* pids 0: "max" */
    struct ka_resources p = {.has_pids = true};
    assert_int_equal(ka_cgroup_set_resources(cg, &p, &err), 0);
    assert_string_equal(get(d, "pids.max"), "max");

    /* A swap limit without swap accounting is refused; an equal one is fine. */
    char path[512];
    snprintf(path, sizeof(path), "%s/memory.memsw.limit_in_bytes", d);
    assert_int_equal(unlink(path), 0);
    struct ka_resources s = {.memory = {.present = true, .limit = 100, .swap = 200}};
    assert_true(ka_cgroup_set_resources(cg, &s, &err) < 0);
    s.memory.swap = 100;
    assert_int_equal(ka_cgroup_set_resources(cg, &s, &err), 0);

    /* A controller that is not there. */
    struct ka_cgroup *none = fake_cgroup(KA_CGROUP_V1, d, KA_CG_BIT(KA_CG_CPU));
    struct ka_resources m = {.memory = {.present = true, .limit = 100}};
    assert_true(ka_cgroup_set_resources(none, &m, &err) < 0);
    assert_int_equal(ka_error_status(&err), KA_STATUS_FAILED_PRECONDITION);
    assert_non_null(strstr(err.msg, "memory"));
    /* ... but an empty section asks nothing of it. */
    m.memory.limit = 0;
    assert_int_equal(ka_cgroup_set_resources(none, &m, &err), 0);
    ka_cgroup_free(none);
    ka_cgroup_free(cg);
}

static void test_resources_v2(void **state)
{
    (void)state;
    char *d = mkdir_in("v2");
    static const char *const files[] = {"memory.max",     "memory.swap.max", "memory.low",
                                        "cpu.weight",     "cpuset.cpus",     "cpuset.mems",
                                        "pids.max",       "io.weight",       "io.max",
                                        "hugetlb.2MB.max"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        put(d, files[i], "");
    put(d, "cpu.max", "max 100000\n");
    struct ka_cgroup *cg = fake_cgroup(KA_CGROUP_V2, d, ALL_CONTROLLERS);
    struct ka_resources r = full_resources();
    r.has_network = false; /* nothing to write on v2 either way */
    struct ka_error err;
    if (ka_cgroup_set_resources(cg, &r, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(get(d, "memory.max"), "67108864");
    assert_string_equal(get(d, "memory.swap.max"), "67108864"); /* 128 MiB - 64 MiB */
    assert_string_equal(get(d, "memory.low"), "33554432");
    assert_string_equal(get(d, "cpu.weight"), "20"); /* 1 + 510 * 9999 / 262142 */
    assert_string_equal(get(d, "cpu.max"), "50000 100000");
    assert_string_equal(get(d, "cpuset.cpus"), "0-1");
    assert_string_equal(get(d, "pids.max"), "64");
    /* io.weight was written twice (the default, then the device): the last stays */
    assert_string_equal(get(d, "io.weight"), "8:0 2930"); /* 1 + 290 * 9999 / 990 */
    assert_string_equal(get(d, "io.max"), "8:16 rbps=1048576");
    assert_string_equal(get(d, "hugetlb.2MB.max"), "4194304");

    /* cpu.max keeps the half the spec leaves alone. */
    put(d, "cpu.max", "30000 200000\n");
    struct ka_resources q = {.cpu = {.present = true, .quota = 10000}};
    assert_int_equal(ka_cgroup_set_resources(cg, &q, &err), 0);
    assert_string_equal(get(d, "cpu.max"), "10000 200000");
    put(d, "cpu.max", "30000 200000\n");
    q.cpu.quota = 0;
    q.cpu.period = 50000;
    assert_int_equal(ka_cgroup_set_resources(cg, &q, &err), 0);
    assert_string_equal(get(d, "cpu.max"), "30000 50000");
    q.cpu.quota = -1;
    assert_int_equal(ka_cgroup_set_resources(cg, &q, &err), 0);
    assert_string_equal(get(d, "cpu.max"), "max 50000");

    /* Unlimited memory. */
    struct ka_resources u = {.memory = {.present = true, .limit = -1}};
    assert_int_equal(ka_cgroup_set_resources(cg, &u, &err), 0);
    assert_string_equal(get(d, "memory.max"), "max");
    assert_string_equal(get(d, "memory.swap.max"), "max");
    /* Swap below the limit is refused before anything is written. */
    struct ka_resources bad = {.memory = {.present = true, .limit = 100, .swap = 50}};
    assert_true(ka_cgroup_set_resources(cg, &bad, &err) < 0);
    assert_string_equal(get(d, "memory.max"), "max");
    /* v2 has nowhere for these: skipped, not an error. */
    struct ka_resources skip = {
        .memory = {.present = true, .swappiness = 5, .kernel = 10, .disable_oom_killer = true},
        .cpu = {.present = true, .realtime_runtime = 5}};
    assert_int_equal(ka_cgroup_set_resources(cg, &skip, &err), 0);
    /* BFQ takes the v1 weight as is. */
    put(d, "io.bfq.weight", "");
    struct ka_resources w = {.blkio = {.present = true, .weight = 500}};
    assert_int_equal(ka_cgroup_set_resources(cg, &w, &err), 0);
    assert_string_equal(get(d, "io.bfq.weight"), "500");
    /* Controllers not enabled here are missing. */
    cg->d[0].controllers = KA_CG_BIT(KA_CG_CPU);
    struct ka_resources pids = {.has_pids = true, .pids_limit = 3};
    assert_true(ka_cgroup_set_resources(cg, &pids, &err) < 0);
    ka_cgroup_free(cg);
}

static void test_freeze_files(void **state)
{
    (void)state;
    char *d = mkdir_in("frz2");
    struct ka_cgroup *cg = fake_cgroup(KA_CGROUP_V2, d, 0);
    struct ka_error err;
    put(d, "cgroup.freeze", "0\n");
    put(d, "cgroup.events", "populated 1\nfrozen 0\n");
    assert_int_equal(ka_cgroup_freeze_state(cg, &err), KA_FREEZE_THAWED);
    assert_int_equal(ka_cgroup_freeze(cg, true, &err), 0);
    assert_string_equal(get(d, "cgroup.freeze"), "1");
    assert_int_equal(ka_cgroup_freeze_state(cg, &err), KA_FREEZE_FREEZING);
    put(d, "cgroup.events", "populated 1\nfrozen 1\n");
    assert_int_equal(ka_cgroup_freeze_state(cg, &err), KA_FREEZE_FROZEN);
    ka_cgroup_free(cg);

    d = mkdir_in("frz1");
    cg = fake_cgroup(KA_CGROUP_V1, d, KA_CG_BIT(KA_CG_FREEZER));
    put(d, "freezer.state", "THAWED\n");
    assert_int_equal(ka_cgroup_freeze_state(cg, &err), KA_FREEZE_THAWED);
    assert_int_equal(ka_cgroup_freeze(cg, true, &err), 0);
    assert_string_equal(get(d, "freezer.state"), "FROZEN");
    put(d, "freezer.state", "FREEZING\n");
    assert_int_equal(ka_cgroup_freeze_state(cg, &err), KA_FREEZE_FREEZING);
    ka_cgroup_free(cg);
    /* No freezer hierarchy: a clear error. */
    cg = fake_cgroup(KA_CGROUP_V1, d, KA_CG_BIT(KA_CG_MEMORY));
    assert_true(ka_cgroup_freeze(cg, true, &err) < 0);
    assert_int_equal(ka_error_status(&err), KA_STATUS_FAILED_PRECONDITION);
    ka_cgroup_free(cg);
}

/* v2 creation enables the offered controllers in the ancestors on the way. */
/* Issue 13: overlapping container cgroups are compared by component. */
static void test_paths_overlap(void **state)
{
    (void)state;
    assert_true(ka_cgroup_paths_overlap("/a/b", "/a/b"));
    assert_true(ka_cgroup_paths_overlap("/a", "/a/b"));
    assert_true(ka_cgroup_paths_overlap("/a/b/c", "/a"));
    assert_true(ka_cgroup_paths_overlap("/kubepods/pod1", "/kubepods/pod1/c1"));
    assert_false(ka_cgroup_paths_overlap("/a/b", "/a/bc"));
    assert_false(ka_cgroup_paths_overlap("/a/bc", "/a/b"));
    assert_false(ka_cgroup_paths_overlap("/kubepods/pod1/c1", "/kubepods/pod1/c2"));
    assert_false(ka_cgroup_paths_overlap("/ab", "/a"));
    assert_true(ka_cgroup_paths_overlap("/sys/fs/cgroup/memory/p", "/sys/fs/cgroup/memory/p/c"));
}

static void collect_dir(const char *dir, void *data)
{
    char *buf = data;
    strcat(buf, dir);
    strcat(buf, ";");
}

/* Issue 13: creation notes which directories it made, so removal can take away
 * those (and only those) again. */
static void test_create_notes_what_it_made(void **state)
{
    (void)state;
    char *root = mkdir_in("madeRoot");
    struct ka_cgroup_layout l = {.version = KA_CGROUP_V1, .n = 1};
    l.h[0].mount = strdup(root);
    l.h[0].controllers = KA_CG_BIT(KA_CG_MEMORY);
    char pre[512];
    snprintf(pre, sizeof(pre), "%s/kubepods", root);
    assert_int_equal(mkdir(pre, 0755), 0); /* not ours */
    struct ka_cgroup *cg = ka_cgroup_new(&l, "/kubepods/burstable/pod1/c1");
    struct ka_error err;
    if (ka_cgroup_create(cg, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(cg->d[0].made_from, 2);
    char got[2048] = "", want[2048];
    ka_cgroup_each_made(cg, false, collect_dir, got);
    snprintf(want, sizeof(want), "%s/kubepods/burstable/pod1;%s/kubepods/burstable;", root, root);
    assert_string_equal(got, want);
    got[0] = '\0';
    ka_cgroup_each_made(cg, true, collect_dir, got);
    snprintf(want, sizeof(want),
             "%s/kubepods/burstable/pod1/c1;%s/kubepods/burstable/pod1;%s/kubepods/burstable;",
             root, root, root);
    assert_string_equal(got, want);
    ka_cgroup_free(cg);
    /* A second container next to it makes only its own leaf. */
    cg = ka_cgroup_new(&l, "/kubepods/burstable/pod1/c2");
    if (ka_cgroup_create(cg, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(cg->d[0].made_from, 4);
    got[0] = '\0';
    ka_cgroup_each_made(cg, false, collect_dir, got);
    assert_string_equal(got, "");
    ka_cgroup_free(cg);
    ka_cgroup_layout_free(&l);
}

static void test_create_v2_enables_controllers(void **state)
{
    (void)state;
    char *root = mkdir_in("v2root");
    put(root, "cgroup.controllers", "cpu memory pids\n");
    put(root, "cgroup.subtree_control", "cpu\n");
    struct ka_cgroup_layout l = {.version = KA_CGROUP_V2, .n = 1};
    l.h[0].mount = strdup(root);
    struct ka_cgroup *cg = ka_cgroup_new(&l, "/pod/c1");
    struct ka_error err;
    /* The fake /pod has no control files: only the root is set up, then mkdirs. */
    if (ka_cgroup_create(cg, &err) < 0)
        fail_msg("%s", err.msg);
    /* Each missing controller written on its own (a plain file keeps the last). */
    assert_string_equal(get(root, "cgroup.subtree_control"), "+pids");
    char path[512];
    snprintf(path, sizeof(path), "%s/pod/c1", root);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_string_equal(ka_cgroup_dir_of(cg, KA_CG_MEMORY), path);
    ka_cgroup_free(cg);
    ka_cgroup_layout_free(&l);
}

/* ---- devices ----------------------------------------------------------------------------------- */

static void test_device_rules_v1(void **state)
{
    (void)state;
    char buf[64];
    struct ka_device_rule r = {true, 'c', 136, -1, "rwm"};
    ka_device_rule_format(&r, buf, sizeof(buf));
    assert_string_equal(buf, "c 136:* rwm");
    struct ka_device_rule all = {false, 'a', -1, -1, "rwm"};
    assert_true(ka_device_rule_is_all(&all));
    all.access[2] = '\0';
    assert_false(ka_device_rule_is_all(&all));
    /* The list of §6.1. */
    bool null = false, pts = false, tun = false, mknod_b = false;
    for (size_t i = 0; i < ka_n_default_device_rules; i++) {
        ka_device_rule_format(&ka_default_device_rules[i], buf, sizeof(buf));
        null |= strcmp(buf, "c 1:3 rwm") == 0;
        pts |= strcmp(buf, "c 136:* rwm") == 0;
        tun |= strcmp(buf, "c 10:200 rwm") == 0;
        mknod_b |= strcmp(buf, "b *:* m") == 0;
    }
    assert_true(null && pts && tun && mknod_b);
    assert_int_equal(ka_n_default_device_rules, 12);

    /* v1: deny all, then each allow (the fake file keeps the last write). */
    char *d = mkdir_in("dev1");
    put(d, "devices.allow", "");
    put(d, "devices.deny", "");
    struct ka_cgroup *cg = fake_cgroup(KA_CGROUP_V1, d, KA_CG_BIT(KA_CG_DEVICES));
    struct ka_device_rule rules[] = {{true, 'b', 7, 0, "r"}, {true, 'a', -1, -1, "rwm"}};
    struct ka_error err;
    assert_int_equal(ka_cgroup_set_devices(cg, false, rules, 2, true, &err), 0);
    assert_string_equal(get(d, "devices.deny"), "a");
    assert_string_equal(get(d, "devices.allow"), "b 7:0 r"); /* the all rule skipped */
    assert_int_equal(ka_cgroup_set_devices(cg, true, NULL, 0, true, &err), 0);
    assert_string_equal(get(d, "devices.allow"), "b *:* rwm");
    ka_cgroup_free(cg);
}

/* A tiny interpreter for the instructions the device program uses. */
static int run_prog(const struct bpf_insn *p, size_t n, int type, int access, uint32_t major,
                    uint32_t minor)
{
    uint32_t ctx[3] = {(uint32_t)(access << 16 | type), major, minor};
    uint64_t r[11] = {0};
    for (size_t pc = 0; pc < n;) {
        const struct bpf_insn *i = &p[pc++];
        switch (i->code) {
        case BPF_LDX | BPF_MEM | BPF_W:
            assert_int_equal(i->src_reg, 1);
            r[i->dst_reg] = ctx[i->off / 4];
            break;
        case BPF_ALU | BPF_AND | BPF_K:
            r[i->dst_reg] = (uint32_t)r[i->dst_reg] & (uint32_t)i->imm;
            break;
        case BPF_ALU | BPF_RSH | BPF_K:
            r[i->dst_reg] = (uint32_t)r[i->dst_reg] >> i->imm;
            break;
        case BPF_ALU | BPF_MOV | BPF_X:
            r[i->dst_reg] = (uint32_t)r[i->src_reg];
            break;
        case BPF_ALU64 | BPF_MOV | BPF_K:
            r[i->dst_reg] = (uint64_t)(int64_t)i->imm;
            break;
        case BPF_JMP | BPF_JNE | BPF_K:
            if (r[i->dst_reg] != (uint64_t)(int64_t)i->imm)
                pc += (size_t)i->off;
            break;
        case BPF_JMP | BPF_JNE | BPF_X:
            if (r[i->dst_reg] != r[i->src_reg])
                pc += (size_t)i->off;
            break;
        case BPF_JMP | BPF_EXIT:
            return (int)r[0];
        default:
            fail_msg("unexpected instruction 0x%x at %zu", i->code, pc - 1);
        }
        /* The first six instructions load the context; R1 is free afterwards. */
    }
    fail_msg("fell off the end of the program");
    return -1;
}

#define C BPF_DEVCG_DEV_CHAR
#define B BPF_DEVCG_DEV_BLOCK
#define RD BPF_DEVCG_ACC_READ
#define WR BPF_DEVCG_ACC_WRITE
#define MK BPF_DEVCG_ACC_MKNOD

static void test_device_bpf_program(void **state)
{
    (void)state;
    struct bpf_insn prog[512];
    size_t n = ka_devices_bpf_build(false, NULL, 0, prog, 512);
    assert_true(n > 6 && n < 200);
    assert_int_equal(run_prog(prog, n, C, RD | WR, 1, 3), 1);      /* /dev/null */
    assert_int_equal(run_prog(prog, n, C, RD | WR | MK, 1, 9), 1); /* urandom */
    assert_int_equal(run_prog(prog, n, C, RD, 1, 11), 0);          /* kmsg: not listed */
    assert_int_equal(run_prog(prog, n, C, RD | WR, 136, 7), 1);    /* a pts */
    assert_int_equal(run_prog(prog, n, B, RD, 7, 0), 0);           /* loop0 */
    assert_int_equal(run_prog(prog, n, B, MK, 7, 0), 1);           /* b *:* m */
    assert_int_equal(run_prog(prog, n, C, MK, 99, 99), 1);         /* c *:* m */
    assert_int_equal(run_prog(prog, n, C, RD | MK, 99, 99), 0);    /* ... mknod only */

    /* Spec rules: the last that matches decides. */
    struct ka_device_rule rules[] = {
        {true, 'b', 7, -1, "r"},    /* read any loop device */
        {false, 'c', 1, 3, "w"},    /* no writing to /dev/null */
        {true, 'a', -1, -1, "rwm"}, /* the "all" rule: skipped, as on v1 */
    };
    n = ka_devices_bpf_build(false, rules, 3, prog, 512);
    assert_int_equal(run_prog(prog, n, B, RD, 7, 3), 1);
    assert_int_equal(run_prog(prog, n, B, RD | WR, 7, 3), 0);
    assert_int_equal(run_prog(prog, n, C, WR, 1, 3), 0);
    assert_int_equal(run_prog(prog, n, C, RD, 1, 3), 1);
    assert_int_equal(run_prog(prog, n, C, RD, 1, 11), 0);

    /* Allow-all base: everything but what a rule denies. */
    n = ka_devices_bpf_build(true, rules + 1, 1, prog, 512);
    assert_int_equal(run_prog(prog, n, C, RD, 1, 11), 1);
    assert_int_equal(run_prog(prog, n, B, RD | WR, 8, 0), 1);
    assert_int_equal(run_prog(prog, n, C, WR, 1, 3), 0);

    /* Too small a buffer is refused, not overrun. */
    assert_int_equal(ka_devices_bpf_build(false, NULL, 0, prog, 20), 0);
}

/* Issue 13: after a container with "a *:* rwm", the next container with no device
 * rules still starts from deny-all + the defaults: the base depends on its own
 * rules only, and building A's program changes nothing B's is built from. */
static void test_device_base_per_container(void **state)
{
    (void)state;
    struct ka_device_rule a_rules[] = {{true, 'a', -1, -1, "rwm"}};
    struct ka_device_rule denied_first[] = {{false, 'a', -1, -1, "rwm"},
                                            {true, 'a', -1, -1, "rwm"}};
    struct ka_device_rule loop_only[] = {{true, 'b', 7, 0, "r"}};
    assert_true(ka_device_rules_allow_all(a_rules, 1));
    assert_false(ka_device_rules_allow_all(NULL, 0));
    assert_false(ka_device_rules_allow_all(denied_first, 2)); /* the first one decides */
    assert_false(ka_device_rules_allow_all(loop_only, 1));

    struct ka_device_rule defaults_before[32];
    size_t n_defaults = ka_n_default_device_rules;
    assert_true(n_defaults <= 32);
    memcpy(defaults_before, ka_default_device_rules, n_defaults * sizeof(defaults_before[0]));

    struct bpf_insn prog[512];
    size_t n = ka_devices_bpf_build(ka_device_rules_allow_all(a_rules, 1), a_rules, 1, prog, 512);
    assert_int_equal(run_prog(prog, n, B, RD | WR, 8, 0), 1); /* A: the guest disk */
    /* ... and its program ends with that allow (the kernel's verifier refuses the
     * unreachable default-deny after an unconditional return). */
    assert_int_equal(n, 8);
    assert_int_equal(prog[n - 1].code, BPF_JMP | BPF_EXIT);
    assert_int_equal(prog[n - 2].imm, 1);
    n = ka_devices_bpf_build(ka_device_rules_allow_all(NULL, 0), NULL, 0, prog, 512);
    assert_int_equal(run_prog(prog, n, B, RD | WR, 8, 0), 0); /* B: not */
    assert_int_equal(run_prog(prog, n, B, RD, 7, 0), 0);
    assert_int_equal(run_prog(prog, n, C, RD, 1, 11), 0);
    assert_int_equal(run_prog(prog, n, C, RD | WR, 1, 3), 1);
    /* No device control at all (v1 without a devices hierarchy) fails closed. */
    char *d = mkdir_in("nodevices");
    struct ka_cgroup *cg = fake_cgroup(KA_CGROUP_V1, d, KA_CG_BIT(KA_CG_MEMORY));
    struct ka_error err = {0};
    assert_true(ka_cgroup_set_devices(cg, false, NULL, 0, true, &err) < 0);
    assert_int_equal(err.status, KA_STATUS_FAILED_PRECONDITION);
    ka_cgroup_free(cg);
    assert_int_equal(ka_n_default_device_rules, n_defaults);
    assert_memory_equal(defaults_before, ka_default_device_rules,
                        n_defaults * sizeof(defaults_before[0]));
}

/* A program the kernel's verifier refuses (R0 read before it is set): the load is
 * tried without the verifier's log, and the log is fetched only to explain the
 * refusal, which the error carries. As root only (BPF_PROG_LOAD needs CAP_BPF). */
static void test_device_bpf_refusal_explained(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct bpf_insn bad[] = {{.code = BPF_JMP | BPF_EXIT}};
    struct ka_error err = {0};
    assert_true(ka_devices_bpf_attach("/nonexistent-cgroup", bad, 1, -1, &err) < 0);
    if (err.errnum == EPERM)
        skip();
    assert_int_equal(err.errnum, EACCES);
    assert_non_null(strstr(err.msg, "R0 !read_ok"));
}

/* ---- from protobuf ----------------------------------------------------------------------------- */

static void test_resources_from_proto(void **state)
{
    (void)state;
    Grpc__LinuxResources in = GRPC__LINUX_RESOURCES__INIT;
    Grpc__LinuxDeviceCgroup d0 = GRPC__LINUX_DEVICE_CGROUP__INIT, d1 = d0, d2 = d0;
    d0.allow = false; /* OCI's "deny all": type "", 0:0, access "rwm" */
    d0.access = (char *)"rwm";
    d1.allow = true;
    d1.type = (char *)"c";
    d1.major = 5;
    d1.minor = 0;
    d1.access = (char *)"wmr";
    d2.allow = true;
    d2.type = (char *)"b";
    d2.major = 8;
    d2.minor = -1;
    d2.access = (char *)"";
    Grpc__LinuxDeviceCgroup *devs[] = {&d0, &d1, &d2};
    in.devices = devs;
    in.n_devices = 3;
    Grpc__LinuxMemory mem = GRPC__LINUX_MEMORY__INIT;
    mem.limit = 1 << 20;
    mem.swappiness = 60;
    in.memory = &mem;
    Grpc__LinuxCPU cpu = GRPC__LINUX_CPU__INIT;
    cpu.cpus = (char *)"0-3,5";
    cpu.shares = 100;
    in.cpu = &cpu;
    Grpc__LinuxHugepageLimit h = GRPC__LINUX_HUGEPAGE_LIMIT__INIT;
    h.pagesize = (char *)"2MB";
    h.limit = 1 << 21;
    Grpc__LinuxHugepageLimit *hs[] = {&h};
    in.hugepagelimits = hs;
    in.n_hugepagelimits = 1;

    struct ka_resources r;
    struct ka_error err;
    if (ka_resources_from_proto(&in, &r, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(r.n_devices, 3);
    assert_true(ka_device_rule_is_all(&r.devices[0]));
    assert_false(r.devices[0].allow);
    assert_int_equal(r.devices[1].type, 'c');
    assert_int_equal(r.devices[1].major, 5);
    assert_int_equal(r.devices[1].minor, 0); /* a real major keeps minor 0 */
    assert_string_equal(r.devices[1].access, "rwm");
    assert_string_equal(r.devices[2].access, "rwm");
    assert_int_equal(r.devices[2].minor, -1);
    assert_true(r.memory.present);
    assert_int_equal(r.memory.limit, 1 << 20);
    assert_int_equal(r.memory.swappiness, 60);
    assert_string_equal(r.cpu.cpus, "0-3,5");
    assert_null(r.cpu.mems);
    assert_false(r.has_pids);
    assert_string_equal(r.hugepages[0].page_size, "2MB");
    ka_resources_free(&r);

    /* Each bad value names itself. */
    d1.access = (char *)"rx";
    assert_true(ka_resources_from_proto(&in, &r, &err) < 0);
    assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
    d1.access = (char *)"r";
    d1.type = (char *)"x";
    assert_true(ka_resources_from_proto(&in, &r, &err) < 0);
    d1.type = (char *)"c";
    cpu.cpus = (char *)"0-3\n";
    assert_true(ka_resources_from_proto(&in, &r, &err) < 0);
    assert_non_null(strstr(err.msg, "cpus"));
    cpu.cpus = (char *)"";
    mem.swappiness = 101;
    assert_true(ka_resources_from_proto(&in, &r, &err) < 0);
    mem.swappiness = 0;
    h.pagesize = (char *)"2MB/../x";
    assert_true(ka_resources_from_proto(&in, &r, &err) < 0);
    h.pagesize = (char *)"2XB";
    assert_true(ka_resources_from_proto(&in, &r, &err) < 0);
    h.pagesize = (char *)"64KB";
    assert_int_equal(ka_resources_from_proto(&in, &r, &err), 0);
    ka_resources_free(&r);
    mem.limit = -5;
    assert_true(ka_resources_from_proto(&in, &r, &err) < 0);
    mem.limit = 0;
    /* NULL: an empty set. */
    assert_int_equal(ka_resources_from_proto(NULL, &r, &err), 0);
    assert_false(r.memory.present);
    ka_resources_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_rules),
        cmocka_unit_test(test_controller_names),
        cmocka_unit_test(test_layout_hybrid),
        cmocka_unit_test(test_conversions),
        cmocka_unit_test(test_resources_v1),
        cmocka_unit_test(test_resources_v2),
        cmocka_unit_test(test_freeze_files),
        cmocka_unit_test(test_create_v2_enables_controllers),
        cmocka_unit_test(test_device_rules_v1),
        cmocka_unit_test(test_device_bpf_program),
        cmocka_unit_test(test_device_bpf_refusal_explained),
        cmocka_unit_test(test_device_base_per_container),
        cmocka_unit_test(test_paths_overlap),
        cmocka_unit_test(test_create_notes_what_it_made),
        cmocka_unit_test(test_resources_from_proto),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
