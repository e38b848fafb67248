/* Container statistics for StatsContainer, read from the cgroup files (v1:
 * cpuacct, cpu, memory, pids, blkio, hugetlb; v2: cpu.stat, memory.*, pids.*,
 * io.stat, hugetlb.*) the way the Rust agent fills Kata's CgroupStats, and the
 * guest's network interfaces from /proc/net/dev. Kept free of protobuf: the RPC
 * layer copies these into the reply.
 *
 * Where the Rust agent and runc differ, the choice is noted at the field. A
 * controller that is missing leaves its part absent (present false); a file
 * that is missing reads as 0. */
#ifndef KA_CGROUPS_STATS_H
#define KA_CGROUPS_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroups/cgroup.h"

#define KA_STATS_MAX_CPUS 1024
#define KA_STATS_MAX_KEYS 128   /* memory.stat entries */
#define KA_STATS_MAX_BLKIO 1024 /* entries per blkio list */
#define KA_STATS_MAX_HUGETLB 8
#define KA_STATS_MAX_IFACES 256

struct ka_mem_data {
    uint64_t usage, max_usage, failcnt, limit;
};

struct ka_stat_kv {
    char key[48];
    uint64_t value;
};

struct ka_blkio_entry {
    uint64_t major, minor;
    char op[12]; /* "read", "write", "sync", "async", "total"; "" for time/sectors */
    uint64_t value;
};

enum ka_blkio_list {
    KA_BLKIO_SERVICE_BYTES,
    KA_BLKIO_SERVICED,
    KA_BLKIO_QUEUED,
    KA_BLKIO_SERVICE_TIME,
    KA_BLKIO_WAIT_TIME,
    KA_BLKIO_MERGED,
    KA_BLKIO_TIME,
    KA_BLKIO_SECTORS,
    KA_BLKIO_LIST_COUNT,
};

struct ka_cgroup_stats {
    bool has_cpu;
    uint64_t cpu_total_ns, cpu_kernel_ns, cpu_user_ns;
    uint64_t *percpu_ns; /* v1 only */
    size_t n_percpu;
    bool has_throttling;
    uint64_t throttle_periods, throttled_periods, throttled_ns;

    bool has_memory;
    uint64_t mem_cache;
    struct ka_mem_data mem_usage, swap_usage, kernel_usage;
    bool use_hierarchy;
    struct ka_stat_kv *mem_stats;
    size_t n_mem_stats;

    bool has_pids;
    uint64_t pids_current, pids_limit; /* limit 0 = "max" */

    bool has_blkio;
    struct ka_blkio_entry *blkio[KA_BLKIO_LIST_COUNT];
    size_t n_blkio[KA_BLKIO_LIST_COUNT];

    struct {
        char size[16]; /* "2MB" */
        uint64_t usage, max_usage, failcnt;
    } hugetlb[KA_STATS_MAX_HUGETLB];
    size_t n_hugetlb;
};

/* Read everything there is; never fails on a missing controller or file. */
void ka_cgroup_stats_read(const struct ka_cgroup *cg, struct ka_cgroup_stats *st);
void ka_cgroup_stats_free(struct ka_cgroup_stats *st);

struct ka_net_stats {
    char name[32];
    uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
    uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
};

/* Parse /proc/net/dev text; returns the interfaces found (at most max). */
size_t ka_net_stats_parse(const char *text, struct ka_net_stats *out, size_t max);
/* Read path (normally "/proc/net/dev"); -1 with err when it cannot be read. */
int ka_net_stats_read(const char *path, struct ka_net_stats *out, size_t max, size_t *n,
                      struct ka_error *err);

#endif
