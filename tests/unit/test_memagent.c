/* The mem-agent: its options, its parsers and decisions on synthetic /proc and
 * cgroup text, the RPC's partial updates, and the engine run on a fake tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/child.h"
#include "core/config.h"
#include "core/log.h"
#include "core/reactor.h"
#include "memagent/memagent.h"
#include "rpc/memagent.h"

static void quiet(void)
{
    static int devnull = -1;
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY);
    ka_log_set_fd(devnull);
}

/* ---- options ---------------------------------------------------------------- */

static void test_defaults_are_upstreams(void **state)
{
    (void)state;
    struct ka_config c;
    ka_config_defaults(&c);
    const struct ka_mem_agent_config *m = &c.mem_agent;
    assert_false(m->enable);
    assert_false(m->memcg.disabled);
    assert_false(m->memcg.swap);
    assert_int_equal(m->memcg.swappiness_max, 50);
    assert_int_equal(m->memcg.period_secs, 600);
    assert_int_equal(m->memcg.period_psi_percent_limit, 1);
    assert_int_equal(m->memcg.eviction_psi_percent_limit, 1);
    assert_int_equal(m->memcg.eviction_run_aging_count_min, 3);
    assert_false(m->compact.disabled);
    assert_int_equal(m->compact.period_secs, 600);
    assert_int_equal(m->compact.period_psi_percent_limit, 1);
    assert_int_equal(m->compact.compact_psi_percent_limit, 5);
    assert_int_equal(m->compact.compact_sec_max, 300);
    assert_int_equal(m->compact.compact_order, 9);
    assert_int_equal(m->compact.compact_threshold, 1024);
    assert_true(m->compact.compact_force_times == (uint64_t)INT64_MAX);
}

static void test_cmdline_options(void **state)
{
    (void)state;
    struct ka_config c;
    ka_config_defaults(&c);
    /* Sub-options before agent.mem_agent_enable count too (upstream needs them after). */
    ka_config_parse_cmdline(
        &c, "agent.mem_agent_memcg_swap=true agent.mem_agent_enable=1 "
            "agent.mem_agent_memcg_disable=false agent.mem_agent_memcg_swappiness_max=120 "
            "agent.mem_agent_memcg_period_secs=30 agent.mem_agent_memcg_period_psi_percent_limit=7 "
            "agent.mem_agent_memcg_eviction_psi_percent_limit=9 "
            "agent.mem_agent_memcg_eviction_run_aging_count_min=5 "
            "agent.mem_agent_compact_disable=1 agent.mem_agent_compact_period_secs=40 "
            "agent.mem_agent_compact_period_psi_percent_limit=2 "
            "agent.mem_agent_compact_psi_percent_limit=8 agent.mem_agent_compact_sec_max=-1 "
            "agent.mem_agent_compact_order=4 agent.mem_agent_compact_threshold=77 "
            "agent.mem_agent_compact_force_times=0");
    const struct ka_mem_agent_config *m = &c.mem_agent;
    assert_int_equal(c.warnings, 0);
    assert_true(m->enable);
    assert_true(m->memcg.swap);
    assert_false(m->memcg.disabled);
    assert_int_equal(m->memcg.swappiness_max, 120);
    assert_int_equal(m->memcg.period_secs, 30);
    assert_int_equal(m->memcg.period_psi_percent_limit, 7);
    assert_int_equal(m->memcg.eviction_psi_percent_limit, 9);
    assert_int_equal(m->memcg.eviction_run_aging_count_min, 5);
    assert_true(m->compact.disabled);
    assert_int_equal(m->compact.period_secs, 40);
    assert_int_equal(m->compact.period_psi_percent_limit, 2);
    assert_int_equal(m->compact.compact_psi_percent_limit, 8);
    assert_int_equal(m->compact.compact_sec_max, -1);
    assert_int_equal(m->compact.compact_order, 4);
    assert_int_equal(m->compact.compact_threshold, 77);
    assert_int_equal(m->compact.compact_force_times, 0);
}

static void test_cmdline_bad_values_keep_defaults(void **state)
{
    (void)state;
    quiet();
    struct ka_config c;
    ka_config_defaults(&c);
    ka_config_parse_cmdline(&c,
                            "agent.mem_agent_enable=maybe agent.mem_agent_memcg_swappiness_max=256 "
                            "agent.mem_agent_memcg_period_secs=0 "
                            "agent.mem_agent_compact_period_secs=-5 "
                            "agent.mem_agent_compact_threshold=x "
                            "agent.mem_agent_compact_sec_max=99999999999999999999 "
                            "agent.mem_agent_memcg_period_secs=4294967296 "
                            "agent.mem_agent_no_such_option=1");
    assert_int_equal(c.warnings, 7);
    struct ka_mem_agent_config d;
    ka_mem_agent_config_defaults(&d);
    assert_memory_equal(&c.mem_agent, &d, sizeof(d));
}

/* ---- parsers ---------------------------------------------------------------- */

static void test_psi(void **state)
{
    (void)state;
    uint64_t t = 0;
    assert_int_equal(ka_psi_parse_some_total("some avg10=0.00 avg60=0.00 avg300=0.00 total=37820\n"
                                             "full avg10=0.00 avg60=0.00 avg300=0.00 total=28881\n",
                                             &t),
                     0);
    assert_int_equal(t, 37820);
    assert_true(ka_psi_parse_some_total("full avg10=0.00 total=5\n", &t) < 0);
    assert_true(ka_psi_parse_some_total("some avg10=0.00\nfull total=5\n", &t) < 0);
    assert_true(ka_psi_parse_some_total("some total=abc\n", &t) < 0);
    assert_true(ka_psi_parse_some_total("", &t) < 0);

    struct ka_psi_period p = {0};
    /* The first sample is 0%, as upstream's. */
    assert_int_equal(ka_psi_period_percent(&p, 1000, 1000000), 0);
    /* 50 ms stalled in one second: 5%. */
    assert_int_equal(ka_psi_period_percent(&p, 51000, 2000000), 5);
    /* A counter that went back, or no time passed: 0. */
    assert_int_equal(ka_psi_period_percent(&p, 10, 3000000), 0);
    assert_int_equal(ka_psi_period_percent(&p, 900000, 3000000), 0);
}

static void test_meminfo_memstat(void **state)
{
    (void)state;
    const char *meminfo = "MemTotal:        8000000 kB\nMemFree:         1234567 kB\n"
                          "MemAvailable:    5000000 kB\nSwapFree:              0 kB\n";
    uint64_t v;
    assert_int_equal(ka_meminfo_get(meminfo, "MemFree", &v), 0);
    assert_int_equal(v, 1234567);
    assert_int_equal(ka_meminfo_get(meminfo, "SwapFree", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ka_meminfo_get(meminfo, "Mem", &v), -ENOENT);
    const char *stat = "anon 10\nfile 20\ninactive_anon 4096\nactive_anon 1\ninactive_file 8192\n";
    assert_int_equal(ka_memstat_get(stat, "inactive_file", &v), 0);
    assert_int_equal(v, 8192);
    assert_int_equal(ka_memstat_get(stat, "inactive_anon", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(ka_memstat_get(stat, "inactive", &v), -ENOENT);
}

static const char pagetypeinfo[] =
    "Page block order: 9\nPages per block:  512\n\n"
    "Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 \n"
    "Node    0, zone      DMA, type    Unmovable      0      0      0      0      0      0      0      0      1      0      0 \n"
    "Node    0, zone      DMA, type      Movable      0      0      0      0      0      0      0      0      0      1      3 \n"
    "Node    0, zone   Normal, type      Movable    699   2806   1465    755   1134   1539    149    508    312    146    159 \n"
    "Node    0, zone   Normal, type  Reclaimable    753      1      1      0     12      8      2      0      1      0      0 \n"
    "\nNumber of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate \n"
    "Node 0, zone      DMA            1            7            0            0            0 \n";

static void test_pagetypeinfo(void **state)
{
    (void)state;
    /* Orders 0..2 of the Movable lines: 699 + 2806*2 + 1465*4 (DMA's are 0). */
    assert_int_equal(ka_pagetypeinfo_free_movable(pagetypeinfo, 3), 699 + 2806 * 2 + 1465 * 4);
    assert_int_equal(ka_pagetypeinfo_free_movable(pagetypeinfo, 0), 0);
    /* Order 9 and 10 in DMA count once the order limit passes them. */
    uint64_t all = ka_pagetypeinfo_free_movable(pagetypeinfo, 11);
    assert_int_equal(all, ka_pagetypeinfo_free_movable(pagetypeinfo, 9) + (146 + 1) * 512 +
                              (159 + 3) * 1024);
    /* Absurd numbers saturate instead of wrapping. */
    assert_true(ka_pagetypeinfo_free_movable(
                    "Node 0, zone N, type Movable 18446744073709551615 18446744073709551615\n",
                    2) == UINT64_MAX);
}

/* ---- decisions -------------------------------------------------------------- */

static void test_compact_decisions(void **state)
{
    (void)state;
    struct ka_mem_agent_config m;
    ka_mem_agent_config_defaults(&m);
    struct ka_compact_state s = {0};
    /* Right after start (nothing recorded), a few movable pages do not trigger it... */
    assert_false(ka_compact_threshold_reached(&m.compact, &s, 100000, 1024));
    /* ...more than the threshold does. */
    assert_true(ka_compact_threshold_reached(&m.compact, &s, 100000, 1025));
    /* Growth is counted from what the last compaction left. */
    s.prev_free_movable = 5000;
    s.prev_memfree_kb = 100000;
    assert_false(ka_compact_threshold_reached(&m.compact, &s, 100000, 6024));
    assert_true(ka_compact_threshold_reached(&m.compact, &s, 100000, 6025));
    /* MemFree dropping by more than threshold pages (4 KiB each) triggers it too. */
    assert_false(ka_compact_threshold_reached(&m.compact, &s, 100000 - 4096, 0));
    assert_true(ka_compact_threshold_reached(&m.compact, &s, 100000 - 4097, 0));

    /* Never forced by default; 0 forces every period; N after N quiet periods. */
    s.force_counter = 1000000;
    assert_false(ka_compact_force_due(&m.compact, &s));
    m.compact.compact_force_times = 0;
    s.force_counter = 0;
    assert_true(ka_compact_force_due(&m.compact, &s));
    m.compact.compact_force_times = 3;
    s.force_counter = 2;
    assert_false(ka_compact_force_due(&m.compact, &s));
    s.force_counter = 3;
    assert_true(ka_compact_force_due(&m.compact, &s));
    m.compact.compact_force_times = UINT64_MAX;
    assert_false(ka_compact_force_due(&m.compact, &s));
}

static void test_swappiness(void **state)
{
    (void)state;
    struct ka_mem_agent_config m;
    ka_mem_agent_config_defaults(&m);
    /* swap off (the default): file pages only. */
    assert_int_equal(ka_memcg_swappiness(&m.memcg, true, 100, 100), 0);
    m.memcg.swap = true;
    assert_int_equal(ka_memcg_swappiness(&m.memcg, false, 100, 100), 0); /* no swap space */
    assert_int_equal(ka_memcg_swappiness(&m.memcg, true, 10, 90), 20);
    assert_int_equal(ka_memcg_swappiness(&m.memcg, true, 100, 100), 50); /* capped at 50 */
    m.memcg.swappiness_max = 200;
    assert_int_equal(ka_memcg_swappiness(&m.memcg, true, 100, 100), 100);
    assert_int_equal(ka_memcg_swappiness(&m.memcg, true, 100, 0), 200); /* anon only */
    assert_int_equal(ka_memcg_swappiness(&m.memcg, true, 0, 100), 0);
}

static void test_config_apply_resets(void **state)
{
    (void)state;
    struct ka_mem_agent_config m, n;
    ka_mem_agent_config_defaults(&m);
    n = m;
    n.memcg.swappiness_max = 10;
    assert_false(ka_memcg_config_apply(&m.memcg, &n.memcg));
    assert_int_equal(m.memcg.swappiness_max, 10);
    n.memcg.period_secs = 5;
    assert_true(ka_memcg_config_apply(&m.memcg, &n.memcg));
    n.memcg.disabled = true;
    assert_true(ka_memcg_config_apply(&m.memcg, &n.memcg));
    n.compact.compact_order = 3;
    assert_false(ka_compact_config_apply(&m.compact, &n.compact));
    n.compact.disabled = true;
    assert_true(ka_compact_config_apply(&m.compact, &n.compact));
}

/* ---- the RPC edge ------------------------------------------------------------ */

static void test_rpc_updates_only_set_fields(void **state)
{
    (void)state;
    struct ka_mem_agent_config m, before;
    ka_mem_agent_config_defaults(&m);
    before = m;
    struct ka_error err;

    Grpc__MemAgentMemcgConfig mc = GRPC__MEM_AGENT_MEMCG_CONFIG__INIT;
    assert_int_equal(rpc_memcg_config_update(&mc, &m.memcg, &err), 0);
    assert_memory_equal(&m.memcg, &before.memcg, sizeof(m.memcg)); /* nothing set: no change */
    mc.swap_opt_case = GRPC__MEM_AGENT_MEMCG_CONFIG__SWAP_OPT_SWAP;
    mc.swap = true;
    mc.period_secs_opt_case = GRPC__MEM_AGENT_MEMCG_CONFIG__PERIOD_SECS_OPT_PERIOD_SECS;
    mc.period_secs = 60;
    /* A field whose case is not set is ignored even with a value in it. */
    mc.swappiness_max = 99;
    assert_int_equal(rpc_memcg_config_update(&mc, &m.memcg, &err), 0);
    assert_true(m.memcg.swap);
    assert_int_equal(m.memcg.period_secs, 60);
    assert_int_equal(m.memcg.swappiness_max, 50);
    assert_int_equal(m.memcg.eviction_run_aging_count_min, 3);

    /* Out of range: INVALID_ARGUMENT and nothing changes, not even the valid fields. */
    struct ka_memcg_config snapshot = m.memcg;
    mc.disabled_opt_case = GRPC__MEM_AGENT_MEMCG_CONFIG__DISABLED_OPT_DISABLED;
    mc.disabled = true;
    mc.swappiness_max_opt_case = GRPC__MEM_AGENT_MEMCG_CONFIG__SWAPPINESS_MAX_OPT_SWAPPINESS_MAX;
    mc.swappiness_max = 300;
    assert_true(rpc_memcg_config_update(&mc, &m.memcg, &err) < 0);
    assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
    assert_memory_equal(&m.memcg, &snapshot, sizeof(snapshot));
    mc.swappiness_max = 100;
    mc.period_secs = 0;
    assert_true(rpc_memcg_config_update(&mc, &m.memcg, &err) < 0);
    assert_memory_equal(&m.memcg, &snapshot, sizeof(snapshot));

    Grpc__MemAgentCompactConfig cc = GRPC__MEM_AGENT_COMPACT_CONFIG__INIT;
    cc.compact_sec_max_opt_case =
        GRPC__MEM_AGENT_COMPACT_CONFIG__COMPACT_SEC_MAX_OPT_COMPACT_SEC_MAX;
    cc.compact_sec_max = 7;
    cc.compact_force_times_opt_case =
        GRPC__MEM_AGENT_COMPACT_CONFIG__COMPACT_FORCE_TIMES_OPT_COMPACT_FORCE_TIMES;
    cc.compact_force_times = 2;
    assert_int_equal(rpc_compact_config_update(&cc, &m.compact, &err), 0);
    assert_int_equal(m.compact.compact_sec_max, 7);
    assert_int_equal(m.compact.compact_force_times, 2);
    assert_int_equal(m.compact.compact_order, 9);
    assert_int_equal(m.compact.period_secs, 600);
    cc.compact_order_opt_case = GRPC__MEM_AGENT_COMPACT_CONFIG__COMPACT_ORDER_OPT_COMPACT_ORDER;
    cc.compact_order = 256;
    assert_true(rpc_compact_config_update(&cc, &m.compact, &err) < 0);
    assert_int_equal(m.compact.compact_order, 9);
}

static void test_utf8_lossy(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(rpc_utf8_lossy((const unsigned char *)"plain", 5, out), 5);
    assert_string_equal(out, "plain");
    /* Valid multi-byte text passes unchanged. */
    assert_int_equal(rpc_utf8_lossy((const unsigned char *)"\xC3\xA9\xE2\x82\xAC", 5, out), 5);
    assert_string_equal(out, "\xC3\xA9\xE2\x82\xAC");
    /* A stray byte, a truncated sequence, a surrogate and an overlong each become U+FFFD. */
    rpc_utf8_lossy((const unsigned char *)"a\xFF"
                                          "b",
                   3, out);
    assert_string_equal(out, "a\xEF\xBF\xBD"
                             "b");
    rpc_utf8_lossy((const unsigned char *)"\xE2\x82", 2, out); /* cut at the 4 KiB limit */
    assert_string_equal(out, "\xEF\xBF\xBD");
    rpc_utf8_lossy((const unsigned char *)"\xED\xA0\x80", 3, out);
    assert_string_equal(out, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    rpc_utf8_lossy((const unsigned char *)"\xC0\xAF", 2, out);
    assert_string_equal(out, "\xEF\xBF\xBD\xEF\xBF\xBD");
}

/* ---- the engine on a fake tree ----------------------------------------------- */

static char tree[64];

static void put(const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tree, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void get(const char *rel, char *buf, size_t size)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tree, rel);
    long n = ka_config_read_file(path, buf, size);
    assert_true(n >= 0);
}

static void make_tree(void)
{
    snprintf(tree, sizeof(tree), "/tmp/ka-memagent-XXXXXX");
    assert_non_null(mkdtemp(tree));
    const char *dirs[] = {"proc", "proc/pressure", "proc/sys",   "proc/sys/vm",
                          "cg",   "cg/pod",        "cg/pod/ctr", "cg/idle"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", tree, dirs[i]);
        assert_int_equal(mkdir(path, 0755), 0);
    }
    const char *psi = "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n"
                      "full avg10=0.00 avg60=0.00 avg300=0.00 total=500\n";
    put("proc/pressure/memory", psi);
    put("proc/pressure/io", psi);
    put("proc/meminfo", "MemTotal: 1000000 kB\nMemFree: 500000 kB\nSwapFree: 0 kB\n");
    put("proc/pagetypeinfo", pagetypeinfo);
    put("proc/sys/vm/compact_memory", "");
    put("cg/cgroup.controllers", "memory\n");
    put("cg/cgroup.subtree_control", "memory\n");
    /* pod/ctr is the leaf holding 10 MiB of inactive page cache; idle holds none. */
    put("cg/pod/ctr/memory.stat", "anon 0\nfile 10485760\ninactive_anon 8192\n"
                                  "inactive_file 10485760\n");
    put("cg/pod/ctr/memory.pressure", psi);
    put("cg/pod/ctr/io.pressure", psi);
    put("cg/pod/ctr/memory.reclaim", "");
    put("cg/idle/memory.stat", "inactive_anon 0\ninactive_file 0\n");
    put("cg/idle/memory.pressure", psi);
    put("cg/idle/io.pressure", psi);
    put("cg/idle/memory.reclaim", "");
}

static void drop_tree(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tree);
    assert_int_equal(system(cmd), 0);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop for ms of wall time. */
static void run_for(struct ka_reactor *r, int ms)
{
    struct ka_error err;
    uint64_t end = now_ms() + (uint64_t)ms;
    while (now_ms() < end)
        assert_true(ka_reactor_run_once(r, 10, &err) >= 0);
}

/* Run the loop until cond (over the stats `st`) holds, at most ms; the caller
 * asserts afterwards. Waiting for the event, not a fixed time, keeps the tests
 * steady on a loaded machine. */
#define RUN_UNTIL(r, ma, st, cond, ms)                             \
    do {                                                           \
        struct ka_error err_;                                      \
        uint64_t end_ = now_ms() + (ms);                           \
        for (;;) {                                                 \
            ka_mem_agent_get_stats((ma), &(st));                   \
            if ((cond) || now_ms() > end_)                         \
                break;                                             \
            assert_true(ka_reactor_run_once((r), 10, &err_) >= 0); \
        }                                                          \
    } while (0)

static struct ka_mem_agent *start_on_tree(struct ka_reactor *r, struct ka_mem_agent_config *c)
{
    static char proc[128], cg[128];
    snprintf(proc, sizeof(proc), "%s/proc", tree);
    snprintf(cg, sizeof(cg), "%s/cg", tree);
    struct ka_mem_agent_paths paths = {.proc = proc, .cgroup = cg};
    struct ka_error err;
    struct ka_mem_agent *ma = ka_mem_agent_start(r, c, &paths, &err);
    assert_non_null(ma);
    return ma;
}

/* Defaults with compaction off and eviction after aging quiet periods. */
static struct ka_mem_agent_config memcg_only(uint64_t aging)
{
    struct ka_mem_agent_config c;
    ka_mem_agent_config_defaults(&c);
    c.compact.disabled = true;
    c.memcg.eviction_run_aging_count_min = aging;
    return c;
}

static void stop_on_tree(struct ka_reactor *r, struct ka_mem_agent *ma)
{
    ka_mem_agent_stop(ma);
    ka_reactor_fini(r);
    drop_tree();
}

static void test_engine_reclaims_and_compacts(void **state)
{
    (void)state;
    quiet();
    make_tree();
    struct ka_reactor r;
    struct ka_error err;
    assert_int_equal(ka_reactor_init(&r, &err), 0);
    assert_int_equal(ka_children_init(&r, &err), 0);

    struct ka_mem_agent_config c;
    ka_mem_agent_config_defaults(&c);
    c.enable = true;
    c.memcg.eviction_run_aging_count_min = 1;
    struct ka_mem_agent *ma = start_on_tree(&r, &c);
    struct ka_mem_agent_stats st;
    RUN_UNTIL(&r, ma, st, st.reclaim_writes >= 3 && st.compactions >= 1, 5000);
    run_for(&r, 100); /* the child's exit, and no write more */
    ka_mem_agent_get_stats(ma, &st);
    assert_true(st.memcg_available);
    assert_true(st.compact_available);
    assert_int_equal(st.memcg_runs, 1);
    /* 10 MiB of inactive file pages in 4 MiB steps, file only (swap is off). */
    assert_int_equal(st.reclaim_writes, 3);
    assert_int_equal(st.reclaimed_bytes, 10485760);
    char buf[128];
    get("cg/pod/ctr/memory.reclaim", buf, sizeof(buf));
    assert_string_equal(buf, "2097152 swappiness=0");
    get("cg/idle/memory.reclaim", buf, sizeof(buf));
    assert_string_equal(buf, ""); /* nothing inactive there: nothing asked */

    /* The first compaction period: free movable pages of order < 9 are over the
     * threshold with nothing recorded yet, so the child writes compact_memory. */
    assert_int_equal(st.compact_runs, 1);
    assert_int_equal(st.compactions, 1);
    get("proc/sys/vm/compact_memory", buf, sizeof(buf));
    assert_string_equal(buf, "1");

    /* Config updates take effect live: disabling memcg stops its timer. */
    struct ka_memcg_config mc = *ka_mem_agent_memcg_config(ma);
    mc.disabled = true;
    ka_mem_agent_set_memcg(ma, &mc);
    assert_true(ka_mem_agent_memcg_config(ma)->disabled);
    /* Re-enabled with a period of 1 s and an aging minimum of 3: the run at once
     * is the cgroup's second quiet period (no eviction), the one a second later
     * its third (eviction). */
    mc.disabled = false;
    mc.period_secs = 1;
    mc.eviction_run_aging_count_min = 3;
    put("cg/pod/ctr/memory.reclaim", "");
    ka_mem_agent_set_memcg(ma, &mc);
    RUN_UNTIL(&r, ma, st, st.memcg_runs >= 2, 2000);
    assert_int_equal(st.memcg_runs, 2);
    assert_int_equal(st.reclaim_writes, 3); /* aging count 2 < 3 */
    RUN_UNTIL(&r, ma, st, st.reclaim_writes >= 6, 5000);
    assert_int_equal(st.memcg_runs, 3);
    assert_int_equal(st.reclaim_writes, 6);

    ka_mem_agent_stop(ma);
    ka_children_fini();
    ka_reactor_fini(&r);
    drop_tree();
}

static void psi_total(const char *rel, unsigned long long total)
{
    char text[256];
    snprintf(text, sizeof(text),
             "some avg10=0.00 avg60=0.00 avg300=0.00 total=%llu\n"
             "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
             total);
    put(rel, text);
}

/* A cgroup under pressure is left alone: the period's stall time over the limit
 * neither counts as a quiet period nor lets an eviction start. */
static void test_engine_pressure_holds_reclaim(void **state)
{
    (void)state;
    quiet();
    make_tree();
    struct ka_reactor r;
    struct ka_error err;
    assert_int_equal(ka_reactor_init(&r, &err), 0);
    struct ka_mem_agent_config c = memcg_only(2);
    c.memcg.period_secs = 1;
    struct ka_mem_agent *ma = start_on_tree(&r, &c);
    struct ka_mem_agent_stats st;
    RUN_UNTIL(&r, ma, st, st.memcg_runs >= 1, 2000); /* the first sample, aging 1 */
    assert_int_equal(st.reclaim_writes, 0);
    /* 300 ms of memory stall within the next second: 30% > 1%. */
    psi_total("cg/pod/ctr/memory.pressure", 1000 + 300000);
    RUN_UNTIL(&r, ma, st, st.memcg_runs >= 2, 3000);
    run_for(&r, 50);
    ka_mem_agent_get_stats(ma, &st);
    assert_int_equal(st.memcg_runs, 2);
    assert_int_equal(st.reclaim_writes, 0);
    /* Quiet again: aging 2, evicted. */
    RUN_UNTIL(&r, ma, st, st.reclaim_writes >= 3, 3000);
    assert_int_equal(st.memcg_runs, 3);
    assert_int_equal(st.reclaim_writes, 3);
    stop_on_tree(&r, ma);
}

/* Pressure rising during an eviction stops it between two writes. */
static void test_engine_pressure_stops_eviction(void **state)
{
    (void)state;
    quiet();
    make_tree();
    /* 1 GiB of inactive page cache: 256 writes, 5 ms apart, when nothing stops it. */
    put("cg/pod/ctr/memory.stat", "inactive_anon 0\ninactive_file 1073741824\n");
    struct ka_reactor r;
    struct ka_error err;
    assert_int_equal(ka_reactor_init(&r, &err), 0);
    struct ka_mem_agent_config c = memcg_only(1);
    struct ka_mem_agent *ma = start_on_tree(&r, &c);
    struct ka_mem_agent_stats st;
    RUN_UNTIL(&r, ma, st, st.reclaim_writes >= 5, 3000);
    uint64_t before = st.reclaim_writes;
    assert_true(before > 0 && before < 256);
    psi_total("cg/pod/ctr/io.pressure", 1000 + 10000000); /* 10 s stalled: far over 1% */
    run_for(&r, 300);
    ka_mem_agent_get_stats(ma, &st);
    assert_true(st.reclaim_writes <= before + 1);
    run_for(&r, 1500);
    ka_mem_agent_get_stats(ma, &st);
    assert_true(st.reclaim_writes <= before + 1);
    assert_true(st.reclaim_writes < 256);
    stop_on_tree(&r, ma);
}

/* MemAgentMemcgSet{disabled: true} stops an eviction under way. */
static void test_engine_disable_stops_eviction(void **state)
{
    (void)state;
    quiet();
    make_tree();
    put("cg/pod/ctr/memory.stat", "inactive_anon 0\ninactive_file 1073741824\n");
    struct ka_reactor r;
    struct ka_error err;
    assert_int_equal(ka_reactor_init(&r, &err), 0);
    struct ka_mem_agent_config c = memcg_only(1);
    struct ka_mem_agent *ma = start_on_tree(&r, &c);
    struct ka_mem_agent_stats st;
    RUN_UNTIL(&r, ma, st, st.reclaim_writes >= 5, 3000);
    uint64_t before = st.reclaim_writes;
    struct ka_memcg_config mc = *ka_mem_agent_memcg_config(ma);
    mc.disabled = true;
    ka_mem_agent_set_memcg(ma, &mc);
    run_for(&r, 300);
    ka_mem_agent_get_stats(ma, &st);
    assert_int_equal(st.reclaim_writes, before);
    stop_on_tree(&r, ma);
}

/* Without cgroup v2 and compact_memory the engine idles and says so; the RPCs
 * still change its configuration. */
static void test_engine_idles_without_kernel_support(void **state)
{
    (void)state;
    quiet();
    make_tree();
    char path[256];
    snprintf(path, sizeof(path), "%s/cg/cgroup.controllers", tree);
    unlink(path);
    snprintf(path, sizeof(path), "%s/proc/sys/vm/compact_memory", tree);
    unlink(path);
    struct ka_reactor r;
    struct ka_error err;
    assert_int_equal(ka_reactor_init(&r, &err), 0);
    struct ka_mem_agent_config c;
    ka_mem_agent_config_defaults(&c);
    c.memcg.eviction_run_aging_count_min = 0;
    struct ka_mem_agent *ma = start_on_tree(&r, &c);
    struct ka_mem_agent_stats st;
    RUN_UNTIL(&r, ma, st, st.memcg_runs >= 1 && st.compact_runs >= 1, 2000);
    run_for(&r, 50);
    ka_mem_agent_get_stats(ma, &st);
    assert_int_equal(st.memcg_runs, 1);
    assert_int_equal(st.compact_runs, 1);
    assert_false(st.memcg_available);
    assert_false(st.compact_available);
    assert_int_equal(st.reclaim_writes, 0);
    assert_int_equal(st.compactions, 0);
    stop_on_tree(&r, ma);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_upstreams),
        cmocka_unit_test(test_cmdline_options),
        cmocka_unit_test(test_cmdline_bad_values_keep_defaults),
        cmocka_unit_test(test_psi),
        cmocka_unit_test(test_meminfo_memstat),
        cmocka_unit_test(test_pagetypeinfo),
        cmocka_unit_test(test_compact_decisions),
        cmocka_unit_test(test_swappiness),
        cmocka_unit_test(test_config_apply_resets),
        cmocka_unit_test(test_rpc_updates_only_set_fields),
        cmocka_unit_test(test_utf8_lossy),
        cmocka_unit_test(test_engine_reclaims_and_compacts),
        cmocka_unit_test(test_engine_pressure_holds_reclaim),
        cmocka_unit_test(test_engine_pressure_stops_eviction),
        cmocka_unit_test(test_engine_disable_stops_eviction),
        cmocka_unit_test(test_engine_idles_without_kernel_support),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
