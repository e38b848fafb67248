/* StatsContainer parsing from fixture cgroup directories (the files as kernels
 * write them, v1 and v2), /proc/net/dev, and the v2 OOM watcher driven by a real
 * reactor over a fake memory.events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroups/cgroup.h"
#include "cgroups/oom.h"
#include "cgroups/stats.h"
#include "core/log.h"
#include "core/reactor.h"

static char tmp[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/ka-cgstats-XXXXXX");
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

static char *subdir(const char *name)
{
    char *path = malloc(256);
    snprintf(path, 256, "%s/%s", tmp, name);
    assert_int_equal(mkdir(path, 0755), 0);
    return path;
}

static const struct ka_blkio_entry *entry(const struct ka_cgroup_stats *st, enum ka_blkio_list l,
                                          const char *op, uint64_t major, uint64_t minor)
{
    for (size_t i = 0; i < st->n_blkio[l]; i++)
        if (strcmp(st->blkio[l][i].op, op) == 0 && st->blkio[l][i].major == major &&
            st->blkio[l][i].minor == minor)
            return &st->blkio[l][i];
    return NULL;
}

static uint64_t mem_stat(const struct ka_cgroup_stats *st, const char *key)
{
    for (size_t i = 0; i < st->n_mem_stats; i++)
        if (strcmp(st->mem_stats[i].key, key) == 0)
            return st->mem_stats[i].value;
    fail_msg("no memory.stat %s", key);
    return 0;
}

/* v1 with split cpu and cpuacct hierarchies (as on this project's CI host),
 * the others each on their own. */
static void test_stats_v1(void **state)
{
    (void)state;
    char *cpu = subdir("cpu"), *acct = subdir("cpuacct"), *mem = subdir("memory");
    char *pids = subdir("pids"), *blkio = subdir("blkio"), *huge = subdir("hugetlb");
    put(acct, "cpuacct.usage", "123456789\n");
    put(acct, "cpuacct.usage_percpu", "100 200 \n");
    put(acct, "cpuacct.stat", "user 10\nsystem 5\n");
    put(cpu, "cpu.stat", "nr_periods 7\nnr_throttled 2\nthrottled_time 999\nnr_bursts 0\n");
    put(mem, "memory.stat",
        "cache 4096\nrss 8192\nrss_huge 0\nshmem 0\nmapped_file 0\ndirty 0\n"
        "total_cache 4096\ntotal_rss 8192\n");
    put(mem, "memory.usage_in_bytes", "12288\n");
    put(mem, "memory.max_usage_in_bytes", "20480\n");
    put(mem, "memory.failcnt", "3\n");
    put(mem, "memory.limit_in_bytes", "33554432\n");
    put(mem, "memory.memsw.usage_in_bytes", "12288\n");
    put(mem, "memory.memsw.limit_in_bytes", "9223372036854771712\n");
    put(mem, "memory.kmem.usage_in_bytes", "1024\n");
    put(mem, "memory.use_hierarchy", "1\n");
    put(pids, "pids.current", "3\n");
    put(pids, "pids.max", "max\n");
    put(blkio, "blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 100\n8:0 Write 200\n8:0 Sync 50\n8:0 Async 250\n8:0 Discard 0\n8:0 Total 300\n"
        "253:1 Read 7\n253:1 Total 7\nTotal 307\n");
    put(blkio, "blkio.throttle.io_serviced_recursive", "8:0 Read 1\n8:0 Total 1\nTotal 1\n");
    put(blkio, "blkio.io_serviced_recursive", "Total 0\n"); /* no CFQ: empty */
    put(huge, "hugetlb.2MB.usage_in_bytes", "2097152\n");
    put(huge, "hugetlb.2MB.max_usage_in_bytes", "4194304\n");
    put(huge, "hugetlb.2MB.failcnt", "1\n");
    put(huge, "hugetlb.1GB.usage_in_bytes", "0\n");

    struct ka_cgroup cg = {.version = KA_CGROUP_V1, .path = (char *)"/c1", .bpf_prog_fd = -1};
    char *dirs[] = {cpu, acct, mem, pids, blkio, huge};
    enum ka_cgroup_controller ctl[] = {KA_CG_CPU,  KA_CG_CPUACCT, KA_CG_MEMORY,
                                       KA_CG_PIDS, KA_CG_BLKIO,   KA_CG_HUGETLB};
    for (size_t i = 0; i < 6; i++) {
        cg.d[i].dir = dirs[i];
        cg.d[i].controllers = KA_CG_BIT(ctl[i]);
    }
    cg.n = 6;
    struct ka_cgroup_stats st;
    ka_cgroup_stats_read(&cg, &st);

    long hz = sysconf(_SC_CLK_TCK);
    assert_true(st.has_cpu);
    assert_int_equal(st.cpu_total_ns, 123456789);
    assert_int_equal(st.cpu_user_ns, 10 * 1000000000ull / (uint64_t)hz);
    assert_int_equal(st.cpu_kernel_ns, 5 * 1000000000ull / (uint64_t)hz);
    assert_int_equal(st.n_percpu, 2);
    assert_int_equal(st.percpu_ns[1], 200);
    assert_true(st.has_throttling);
    assert_int_equal(st.throttle_periods, 7);
    assert_int_equal(st.throttled_periods, 2);
    assert_int_equal(st.throttled_ns, 999);

    assert_true(st.has_memory);
    assert_int_equal(st.mem_cache, 4096);
    assert_true(st.use_hierarchy);
    assert_int_equal(st.mem_usage.usage, 12288);
    assert_int_equal(st.mem_usage.max_usage, 20480);
    assert_int_equal(st.mem_usage.failcnt, 3);
    assert_int_equal(st.mem_usage.limit, 33554432);
    assert_int_equal(st.swap_usage.limit, 9223372036854771712ull);
    assert_int_equal(st.kernel_usage.usage, 1024);
    assert_int_equal(st.kernel_usage.limit, 0); /* file missing: 0 */
    assert_int_equal(st.n_mem_stats, 8);
    assert_int_equal(mem_stat(&st, "rss"), 8192);

    assert_true(st.has_pids);
    assert_int_equal(st.pids_current, 3);
    assert_int_equal(st.pids_limit, 0); /* "max" */

    assert_true(st.has_blkio);
    /* Per device: read, write, sync, async, total (the Rust agent's five). */
    assert_int_equal(st.n_blkio[KA_BLKIO_SERVICE_BYTES], 10);
    assert_string_equal(st.blkio[KA_BLKIO_SERVICE_BYTES][0].op, "read");
    assert_string_equal(st.blkio[KA_BLKIO_SERVICE_BYTES][4].op, "total");
    assert_int_equal(entry(&st, KA_BLKIO_SERVICE_BYTES, "write", 8, 0)->value, 200);
    assert_int_equal(entry(&st, KA_BLKIO_SERVICE_BYTES, "async", 8, 0)->value, 250);
    assert_int_equal(entry(&st, KA_BLKIO_SERVICE_BYTES, "read", 253, 1)->value, 7);
    assert_int_equal(entry(&st, KA_BLKIO_SERVICE_BYTES, "write", 253, 1)->value, 0);
    assert_int_equal(st.n_blkio[KA_BLKIO_SERVICED], 5);
    assert_int_equal(st.n_blkio[KA_BLKIO_QUEUED], 0);

    assert_int_equal(st.n_hugetlb, 2);
    for (size_t i = 0; i < st.n_hugetlb; i++)
        if (strcmp(st.hugetlb[i].size, "2MB") == 0) {
            assert_int_equal(st.hugetlb[i].usage, 2097152);
            assert_int_equal(st.hugetlb[i].max_usage, 4194304);
            assert_int_equal(st.hugetlb[i].failcnt, 1);
        } else {
            assert_string_equal(st.hugetlb[i].size, "1GB");
        }
    ka_cgroup_stats_free(&st);

    /* CFQ's recursive files, when a kernel has them, take precedence. */
    put(blkio, "blkio.io_serviced_recursive", "8:0 Read 9\n8:0 Write 1\n8:0 Total 10\nTotal 10\n");
    put(blkio, "blkio.io_service_bytes_recursive", "8:0 Read 90\n8:0 Total 90\n");
    put(blkio, "blkio.sectors_recursive", "8:0 6792\n");
    ka_cgroup_stats_read(&cg, &st);
    assert_int_equal(entry(&st, KA_BLKIO_SERVICED, "read", 8, 0)->value, 9);
    assert_int_equal(entry(&st, KA_BLKIO_SERVICE_BYTES, "read", 8, 0)->value, 90);
    assert_int_equal(entry(&st, KA_BLKIO_SECTORS, "", 8, 0)->value, 6792);
    ka_cgroup_stats_free(&st);

    /* Without cpuacct: cpu.stat's usage_usec (newer v1 kernels have it too). */
    put(cpu, "cpu.stat", "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 1\n");
    cg.d[1].controllers = 0;
    ka_cgroup_stats_read(&cg, &st);
    assert_int_equal(st.cpu_total_ns, 2000000);
    assert_int_equal(st.cpu_user_ns, 1500000);
    assert_int_equal(st.n_percpu, 0);
    ka_cgroup_stats_free(&st);
    for (size_t i = 0; i < 6; i++)
        free(dirs[i]);
}

static void test_stats_v2(void **state)
{
    (void)state;
    char *d = subdir("v2");
    put(d, "cpu.stat",
        "usage_usec 1000\nuser_usec 600\nsystem_usec 400\nnr_periods 3\nnr_throttled 1\n"
        "throttled_usec 5\n");
    put(d, "memory.current", "8192\n");
    put(d, "memory.peak", "16384\n");
    put(d, "memory.max", "max\n");
    put(d, "memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n");
    put(d, "memory.stat", "anon 4096\nfile 2048\nkernel 512\n");
    put(d, "memory.swap.current", "0\n");
    put(d, "memory.swap.max", "max\n");
    put(d, "memory.swap.events", "high 0\nmax 0\nfail 2\n");
    put(d, "pids.current", "4\n");
    put(d, "pids.max", "20\n");
    put(d, "io.stat",
        "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n"
        "253:0 rbytes=10 wbytes=20 rios=30 wios=40 dbytes=0 dios=0\n");
    put(d, "hugetlb.2MB.current", "2097152\n");
    put(d, "hugetlb.2MB.events", "max 3\n");
    put(d, "hugetlb.2MB.rsvd.current", "0\n"); /* not a size of its own */
    struct ka_cgroup cg = {.version = KA_CGROUP_V2,
                           .path = (char *)"/c1",
                           .bpf_prog_fd = -1,
                           .n = 1};
    cg.d[0].dir = d;
    cg.d[0].controllers = (1u << KA_CG_COUNT) - 1;
    struct ka_cgroup_stats st;
    ka_cgroup_stats_read(&cg, &st);
    assert_int_equal(st.cpu_total_ns, 1000000);
    assert_int_equal(st.cpu_user_ns, 600000);
    assert_int_equal(st.cpu_kernel_ns, 400000);
    assert_int_equal(st.n_percpu, 0);
    assert_int_equal(st.throttle_periods, 3);
    assert_int_equal(st.throttled_periods, 1);
    assert_int_equal(st.throttled_ns, 5000);
    assert_true(st.has_memory);
    assert_int_equal(st.mem_usage.usage, 8192);
    assert_int_equal(st.mem_usage.max_usage, 16384);
    assert_int_equal(st.mem_usage.failcnt, 4);
    assert_int_equal(st.mem_usage.limit, UINT64_MAX);
    assert_int_equal(st.mem_cache, 2048); /* "file" */
    assert_true(st.use_hierarchy);
    assert_int_equal(st.swap_usage.failcnt, 2);
    assert_int_equal(st.pids_current, 4);
    assert_int_equal(st.pids_limit, 20);
    assert_int_equal(st.n_blkio[KA_BLKIO_SERVICE_BYTES], 12);
    assert_int_equal(entry(&st, KA_BLKIO_SERVICE_BYTES, "read", 8, 0)->value, 1);
    assert_int_equal(entry(&st, KA_BLKIO_SERVICE_BYTES, "wios", 253, 0)->value, 40);
    assert_int_equal(entry(&st, KA_BLKIO_SERVICE_BYTES, "dios", 8, 0)->value, 6);
    assert_int_equal(st.n_hugetlb, 1);
    assert_string_equal(st.hugetlb[0].size, "2MB");
    assert_int_equal(st.hugetlb[0].usage, 2097152);
    assert_int_equal(st.hugetlb[0].failcnt, 3);
    ka_cgroup_stats_free(&st);

    /* Controllers not enabled: only the core cpu.stat is read. */
    cg.d[0].controllers = 0;
    ka_cgroup_stats_read(&cg, &st);
    assert_true(st.has_cpu);
    assert_false(st.has_memory);
    assert_false(st.has_pids);
    assert_false(st.has_blkio);
    assert_int_equal(st.n_hugetlb, 0);
    ka_cgroup_stats_free(&st);
    ka_cgroup_stats_read(NULL, &st); /* no cgroup at all */
    assert_false(st.has_cpu);
    free(d);
}

static void test_net_dev(void **state)
{
    (void)state;
    const char *text =
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
        "    lo:    1234      12    0    0    0     0          0         0     1234      12    0    0    0     0       0          0\n"
        "  eth0: 9876543   6789    1    2    0     0          0         5  123456    1111    3    4    0     0       0          0\n"
        "bad line\n"
        "veth-very-long-name-indeed-longer-than-32: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
    struct ka_net_stats s[8];
    size_t n = ka_net_stats_parse(text, s, 8);
    assert_int_equal(n, 2);
    assert_string_equal(s[0].name, "lo");
    assert_int_equal(s[0].rx_bytes, 1234);
    assert_string_equal(s[1].name, "eth0");
    assert_int_equal(s[1].rx_bytes, 9876543);
    assert_int_equal(s[1].rx_packets, 6789);
    assert_int_equal(s[1].rx_errors, 1);
    assert_int_equal(s[1].rx_dropped, 2);
    assert_int_equal(s[1].tx_bytes, 123456);
    assert_int_equal(s[1].tx_packets, 1111);
    assert_int_equal(s[1].tx_errors, 3);
    assert_int_equal(s[1].tx_dropped, 4);
    assert_int_equal(ka_net_stats_parse(text, s, 1), 1);
    /* The real file parses and has lo. */
    struct ka_error err;
    assert_int_equal(ka_net_stats_read("/proc/net/dev", s, 8, &n, &err), 0);
    bool lo = false;
    for (size_t i = 0; i < n; i++)
        lo |= strcmp(s[i].name, "lo") == 0;
    assert_true(lo);
    assert_true(ka_net_stats_read("/nonexistent/dev", s, 8, &n, &err) < 0);
}

/* ---- the v2 OOM watcher ---------------------------------------------------------------- */

static int oom_count;

static void on_oom(void *data)
{
    (void)data;
    oom_count++;
}

static void pump(struct ka_reactor *r, int ms)
{
    struct ka_error err;
    for (int i = 0; i < ms / 10; i++)
        assert_int_equal(ka_reactor_run_once(r, 10, &err) < 0, 0);
}

static void test_oom_watch_v2(void **state)
{
    (void)state;
    char *d = subdir("oom");
    put(d, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 2\n");
    struct ka_reactor r;
    struct ka_error err;
    assert_int_equal(ka_reactor_init(&r, &err), 0);
    struct ka_cgroup cg = {.version = KA_CGROUP_V2,
                           .path = (char *)"/c1",
                           .bpf_prog_fd = -1,
                           .n = 1};
    cg.d[0].dir = d;
    cg.d[0].controllers = KA_CG_BIT(KA_CG_MEMORY);
    struct ka_oom_watch *w = NULL;
    assert_int_equal(ka_oom_watch_start(&r, &cg, on_oom, NULL, &w, &err), 0);
    assert_non_null(w);
    oom_count = 0;
    pump(&r, 50);
    assert_int_equal(oom_count, 0); /* kills before the watch are not events */
    put(d, "memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 3\n");
    pump(&r, 100);
    assert_int_equal(oom_count, 1);
    put(d, "memory.events", "low 0\nhigh 0\nmax 9\noom 2\noom_kill 3\n"); /* no new kill */
    pump(&r, 100);
    assert_int_equal(oom_count, 1);
    put(d, "memory.events", "low 0\nhigh 0\nmax 9\noom 3\noom_kill 5\n");
    pump(&r, 100);
    assert_int_equal(oom_count, 2);
    ka_oom_watch_stop(w);
    ka_reactor_fini(&r);

    /* No memory controller: nothing to watch, not an error. */
    cg.d[0].controllers = 0;
    assert_int_equal(ka_oom_watch_start(&r, &cg, on_oom, NULL, &w, &err), 0);
    assert_null(w);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_v1),
        cmocka_unit_test(test_stats_v2),
        cmocka_unit_test(test_net_dev),
        cmocka_unit_test(test_oom_watch_v2),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
