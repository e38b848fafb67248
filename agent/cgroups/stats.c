/* StatsContainer numbers from cgroup files and /proc/net/dev (see stats.h). */
#include "cgroups/stats.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define NS_PER_SEC 1000000000ull

static uint64_t read_u64_or0(const char *dir, const char *file)
{
    uint64_t v = 0;
    struct ka_error err;
    if (ka_cg_read_u64(dir, file, &v, &err) < 0)
        return 0;
    return v;
}

/* A flat-keyed file ("key value" lines) into fn(key, value). */
static void each_kv(const char *dir, const char *file,
                    void (*fn)(void *data, const char *key, uint64_t value), void *data)
{
    char buf[16384];
    struct ka_error err;
    if (ka_cg_read(dir, file, buf, sizeof(buf), &err) < 0)
        return;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char key[64];
        unsigned long long v;
        if (sscanf(line, "%63s %llu", key, &v) == 2)
            fn(data, key, v);
    }
}

struct want {
    const char *keys[8];
    uint64_t *out[8];
};

static void pick(void *data, const char *key, uint64_t value)
{
    struct want *w = data;
    for (size_t i = 0; i < KA_ARRAY_SIZE(w->keys) && w->keys[i]; i++)
        if (strcmp(key, w->keys[i]) == 0)
            *w->out[i] = value;
}

/* ---- cpu ------------------------------------------------------------------------- */

static void cpu_stats(const struct ka_cgroup *cg, struct ka_cgroup_stats *st)
{
    bool v2 = cg->version == KA_CGROUP_V2;
    const char *acct = v2 ? NULL : ka_cgroup_dir_of(cg, KA_CG_CPUACCT);
    const char *cpu = ka_cgroup_dir_of(cg, KA_CG_CPU);
    if (acct) {
        /* cpuacct.stat counts USER_HZ ticks. */
        long hz = sysconf(_SC_CLK_TCK);
        uint64_t user = 0, sys = 0;
        struct want w = {{"user", "system"}, {&user, &sys}};
        each_kv(acct, "cpuacct.stat", pick, &w);
        st->has_cpu = true;
        st->cpu_total_ns = read_u64_or0(acct, "cpuacct.usage");
        st->cpu_user_ns = hz > 0 ? user * NS_PER_SEC / (uint64_t)hz : 0;
        st->cpu_kernel_ns = hz > 0 ? sys * NS_PER_SEC / (uint64_t)hz : 0;
        char buf[16384];
        struct ka_error err;
        if (ka_cg_read(acct, "cpuacct.usage_percpu", buf, sizeof(buf), &err) > 0) {
            st->percpu_ns = ka_xcalloc(KA_STATS_MAX_CPUS, sizeof(uint64_t));
            char *p = buf, *end;
            while (st->n_percpu < KA_STATS_MAX_CPUS) {
                unsigned long long v = strtoull(p, &end, 10);
                if (end == p)
                    break;
                st->percpu_ns[st->n_percpu++] = v;
                p = end;
            }
        }
    } else {
        /* v2 (or v1 without cpuacct): cpu.stat in microseconds. */
        const char *dir = v2 ? cg->d[0].dir : cpu;
        if (dir && ka_cg_exists(dir, "cpu.stat")) {
            uint64_t usage = 0, user = 0, sys = 0;
            struct want w = {{"usage_usec", "user_usec", "system_usec"}, {&usage, &user, &sys}};
            each_kv(dir, "cpu.stat", pick, &w);
            st->has_cpu = true;
            st->cpu_total_ns = usage * 1000;
            st->cpu_user_ns = user * 1000;
            st->cpu_kernel_ns = sys * 1000;
        }
    }
    const char *tdir = v2 ? (cg->n ? cg->d[0].dir : NULL) : cpu;
    if (tdir && ka_cg_exists(tdir, "cpu.stat")) {
        uint64_t periods = 0, throttled = 0, time_ns = 0, time_us = 0;
        struct want w = {{"nr_periods", "nr_throttled", "throttled_time", "throttled_usec"},
                         {&periods, &throttled, &time_ns, &time_us}};
        each_kv(tdir, "cpu.stat", pick, &w);
        st->has_throttling = true;
        st->throttle_periods = periods;
        st->throttled_periods = throttled;
        /* v1 counts nanoseconds; v2 microseconds (the Rust agent reads only the
         * v1 key and so reports 0 on v2; runc converts, as here). */
        st->throttled_ns = time_ns ? time_ns : time_us * 1000;
    }
}

/* ---- memory ---------------------------------------------------------------------- */

static void add_mem_stat(void *data, const char *key, uint64_t value)
{
    struct ka_cgroup_stats *st = data;
    if (st->n_mem_stats == KA_STATS_MAX_KEYS)
        return;
    if (!st->mem_stats)
        st->mem_stats = ka_xcalloc(KA_STATS_MAX_KEYS, sizeof(*st->mem_stats));
    struct ka_stat_kv *kv = &st->mem_stats[st->n_mem_stats++];
    snprintf(kv->key, sizeof(kv->key), "%s", key);
    kv->value = value;
}

static uint64_t mem_stat(const struct ka_cgroup_stats *st, const char *key)
{
    for (size_t i = 0; i < st->n_mem_stats; i++)
        if (strcmp(st->mem_stats[i].key, key) == 0)
            return st->mem_stats[i].value;
    return 0;
}

static void mem_data_v1(const char *dir, const char *prefix, struct ka_mem_data *d)
{
    char f[64];
    snprintf(f, sizeof(f), "%s.usage_in_bytes", prefix);
    d->usage = read_u64_or0(dir, f);
    snprintf(f, sizeof(f), "%s.max_usage_in_bytes", prefix);
    d->max_usage = read_u64_or0(dir, f);
    snprintf(f, sizeof(f), "%s.failcnt", prefix);
    d->failcnt = read_u64_or0(dir, f);
    snprintf(f, sizeof(f), "%s.limit_in_bytes", prefix);
    d->limit = read_u64_or0(dir, f);
}

static uint64_t key_or0(const char *dir, const char *file, const char *key)
{
    uint64_t v = 0;
    struct ka_error err;
    if (ka_cg_read_key(dir, file, key, &v, &err) < 0)
        return 0;
    return v;
}

static void memory_stats(const struct ka_cgroup *cg, struct ka_cgroup_stats *st)
{
    if (!ka_cgroup_has(cg, KA_CG_MEMORY))
        return;
    const char *dir = ka_cgroup_dir_of(cg, KA_CG_MEMORY);
    if (!ka_cg_exists(dir,
                      cg->version == KA_CGROUP_V2 ? "memory.current" : "memory.usage_in_bytes"))
        return;
    st->has_memory = true;
    each_kv(dir, "memory.stat", add_mem_stat, st);
    if (cg->version == KA_CGROUP_V1) {
        st->mem_cache = mem_stat(st, "cache");
        st->use_hierarchy = read_u64_or0(dir, "memory.use_hierarchy") == 1;
        mem_data_v1(dir, "memory", &st->mem_usage);
        mem_data_v1(dir, "memory.memsw", &st->swap_usage);
        mem_data_v1(dir, "memory.kmem", &st->kernel_usage);
        return;
    }
    /* v2: "file" is what v1 called cache; the hierarchy is always on. */
    st->mem_cache = mem_stat(st, "file");
    st->use_hierarchy = true;
    st->mem_usage.usage = read_u64_or0(dir, "memory.current");
    st->mem_usage.max_usage = read_u64_or0(dir, "memory.peak");
    st->mem_usage.failcnt = key_or0(dir, "memory.events", "max");
    st->mem_usage.limit = read_u64_or0(dir, "memory.max");
    /* Swap alone, as cgroups-rs reads it for the Rust agent. */
    st->swap_usage.usage = read_u64_or0(dir, "memory.swap.current");
    st->swap_usage.max_usage = read_u64_or0(dir, "memory.swap.peak");
    st->swap_usage.failcnt = key_or0(dir, "memory.swap.events", "fail");
    st->swap_usage.limit = read_u64_or0(dir, "memory.swap.max");
}

/* ---- pids ------------------------------------------------------------------------- */

static void pids_stats(const struct ka_cgroup *cg, struct ka_cgroup_stats *st)
{
    if (!ka_cgroup_has(cg, KA_CG_PIDS))
        return;
    const char *dir = ka_cgroup_dir_of(cg, KA_CG_PIDS);
    if (!ka_cg_exists(dir, "pids.current"))
        return;
    st->has_pids = true;
    st->pids_current = read_u64_or0(dir, "pids.current");
    uint64_t max = read_u64_or0(dir, "pids.max");
    st->pids_limit = max == UINT64_MAX ? 0 : max;
}

/* ---- blkio ---------------------------------------------------------------------- */

static void blkio_add(struct ka_cgroup_stats *st, enum ka_blkio_list l, uint64_t major,
                      uint64_t minor, const char *op, uint64_t value)
{
    if (st->n_blkio[l] == KA_STATS_MAX_BLKIO)
        return;
    if (!st->blkio[l])
        st->blkio[l] = ka_xcalloc(KA_STATS_MAX_BLKIO, sizeof(struct ka_blkio_entry));
    struct ka_blkio_entry *e = &st->blkio[l][st->n_blkio[l]++];
    e->major = major;
    e->minor = minor;
    snprintf(e->op, sizeof(e->op), "%s", op);
    e->value = value;
}

/* "8:0 Read 123" lines (the "Total N" summary skipped) into per-device read,
 * write, sync, async, total entries, as the Rust agent lists them. Returns
 * false when the file is missing or empty. */
static bool blkio_ioservice(const char *dir, const char *file, struct ka_cgroup_stats *st,
                            enum ka_blkio_list l)
{
    static const char *const ops[] = {"read", "write", "sync", "async", "total"};
    char buf[65536];
    struct ka_error err;
    if (ka_cg_read(dir, file, buf, sizeof(buf), &err) <= 0)
        return false;
    struct dev {
        unsigned long long major, minor, v[5];
    } devs[64];
    size_t n = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned long long ma, mi, v;
        char op[16];
        if (sscanf(line, "%llu:%llu %15s %llu", &ma, &mi, op, &v) != 4)
            continue;
        size_t i = 0;
        while (i < n && !(devs[i].major == ma && devs[i].minor == mi))
            i++;
        if (i == n) {
            if (n == KA_ARRAY_SIZE(devs))
                continue;
            devs[n++] = (struct dev){.major = ma, .minor = mi};
        }
        for (size_t k = 0; k < KA_ARRAY_SIZE(ops); k++)
            if (strcasecmp(op, ops[k]) == 0)
                devs[i].v[k] = v;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < KA_ARRAY_SIZE(ops); k++)
            blkio_add(st, l, devs[i].major, devs[i].minor, ops[k], devs[i].v[k]);
    return n > 0;
}

/* "8:0 6792" lines (blkio.time_recursive, blkio.sectors_recursive): op "". */
static void blkio_data(const char *dir, const char *file, struct ka_cgroup_stats *st,
                       enum ka_blkio_list l)
{
    char buf[65536];
    struct ka_error err;
    if (ka_cg_read(dir, file, buf, sizeof(buf), &err) <= 0)
        return;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned long long ma, mi, v;
        if (sscanf(line, "%llu:%llu %llu", &ma, &mi, &v) == 3)
            blkio_add(st, l, ma, mi, "", v);
    }
}

static void blkio_stats_v2(const char *dir, struct ka_cgroup_stats *st)
{
    /* "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6": every key is an entry
     * of io_service_bytes_recursive, named as the Rust agent names them. */
    static const struct {
        const char *key, *op;
    } keys[] = {{"rbytes", "read"}, {"wbytes", "write"},  {"rios", "rios"},
                {"wios", "wios"},   {"dbytes", "dbytes"}, {"dios", "dios"}};
    char buf[65536];
    struct ka_error err;
    if (ka_cg_read(dir, "io.stat", buf, sizeof(buf), &err) < 0)
        return;
    st->has_blkio = true;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned long long ma, mi;
        int off = 0;
        if (sscanf(line, "%llu:%llu%n", &ma, &mi, &off) != 2)
            continue;
        uint64_t vals[KA_ARRAY_SIZE(keys)] = {0};
        for (char *s2 = NULL, *tok = strtok_r(line + off, " ", &s2); tok;
             tok = strtok_r(NULL, " ", &s2)) {
            char *eq = strchr(tok, '=');
            if (!eq)
                continue;
            *eq = '\0';
            for (size_t k = 0; k < KA_ARRAY_SIZE(keys); k++)
                if (strcmp(tok, keys[k].key) == 0)
                    vals[k] = strtoull(eq + 1, NULL, 10);
        }
        for (size_t k = 0; k < KA_ARRAY_SIZE(keys); k++)
            blkio_add(st, KA_BLKIO_SERVICE_BYTES, ma, mi, keys[k].op, vals[k]);
    }
}

static void blkio_stats(const struct ka_cgroup *cg, struct ka_cgroup_stats *st)
{
    if (!ka_cgroup_has(cg, KA_CG_BLKIO))
        return;
    const char *dir = ka_cgroup_dir_of(cg, KA_CG_BLKIO);
    if (cg->version == KA_CGROUP_V2) {
        blkio_stats_v2(dir, st);
        return;
    }
    st->has_blkio = true;
    /* CFQ's files first (kernels before 5.0); then the throttle layer's, which
     * every kernel has, as the Rust agent falls back to. */
    if (blkio_ioservice(dir, "blkio.io_serviced_recursive", st, KA_BLKIO_SERVICED)) {
        blkio_ioservice(dir, "blkio.io_service_bytes_recursive", st, KA_BLKIO_SERVICE_BYTES);
        blkio_ioservice(dir, "blkio.io_queued_recursive", st, KA_BLKIO_QUEUED);
        blkio_ioservice(dir, "blkio.io_service_time_recursive", st, KA_BLKIO_SERVICE_TIME);
        blkio_ioservice(dir, "blkio.io_wait_time_recursive", st, KA_BLKIO_WAIT_TIME);
        blkio_ioservice(dir, "blkio.io_merged_recursive", st, KA_BLKIO_MERGED);
        blkio_data(dir, "blkio.time_recursive", st, KA_BLKIO_TIME);
        blkio_data(dir, "blkio.sectors_recursive", st, KA_BLKIO_SECTORS);
        return;
    }
    if (!blkio_ioservice(dir, "blkio.throttle.io_service_bytes_recursive", st,
                         KA_BLKIO_SERVICE_BYTES))
        blkio_ioservice(dir, "blkio.throttle.io_service_bytes", st, KA_BLKIO_SERVICE_BYTES);
    if (!blkio_ioservice(dir, "blkio.throttle.io_serviced_recursive", st, KA_BLKIO_SERVICED))
        blkio_ioservice(dir, "blkio.throttle.io_serviced", st, KA_BLKIO_SERVICED);
}

/* ---- hugetlb ---------------------------------------------------------------------- */

static void hugetlb_stats(const struct ka_cgroup *cg, struct ka_cgroup_stats *st)
{
    if (!ka_cgroup_has(cg, KA_CG_HUGETLB))
        return;
    const char *dir = ka_cgroup_dir_of(cg, KA_CG_HUGETLB);
    bool v2 = cg->version == KA_CGROUP_V2;
    const char *suffix = v2 ? ".current" : ".usage_in_bytes";
    cleanup_dir DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL && st->n_hugetlb < KA_STATS_MAX_HUGETLB) {
        /* hugetlb.2MB.usage_in_bytes (v1), hugetlb.2MB.current (v2) */
        const char *name = de->d_name;
        size_t len = strlen(name), sl = strlen(suffix);
        if (strncmp(name, "hugetlb.", 8) != 0 || len <= 8 + sl ||
            strcmp(name + len - sl, suffix) != 0 || len - 8 - sl >= sizeof(st->hugetlb[0].size))
            continue;
        char size[16];
        snprintf(size, sizeof(size), "%.*s", (int)(len - 8 - sl), name + 8);
        if (strchr(size, '.'))
            continue; /* hugetlb.2MB.rsvd.current and the like */
        char f[64];
        typeof(st->hugetlb[0]) *h = &st->hugetlb[st->n_hugetlb++];
        snprintf(h->size, sizeof(h->size), "%s", size);
        h->usage = read_u64_or0(dir, name);
        if (v2) {
            snprintf(f, sizeof(f), "hugetlb.%s.events", size);
            h->failcnt = key_or0(dir, f, "max");
        } else {
            snprintf(f, sizeof(f), "hugetlb.%s.max_usage_in_bytes", size);
            h->max_usage = read_u64_or0(dir, f);
            snprintf(f, sizeof(f), "hugetlb.%s.failcnt", size);
            h->failcnt = read_u64_or0(dir, f);
        }
    }
}

void ka_cgroup_stats_read(const struct ka_cgroup *cg, struct ka_cgroup_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!cg || cg->n == 0)
        return;
    cpu_stats(cg, st);
    memory_stats(cg, st);
    pids_stats(cg, st);
    blkio_stats(cg, st);
    hugetlb_stats(cg, st);
}

void ka_cgroup_stats_free(struct ka_cgroup_stats *st)
{
    free(st->percpu_ns);
    free(st->mem_stats);
    for (int l = 0; l < KA_BLKIO_LIST_COUNT; l++)
        free(st->blkio[l]);
    memset(st, 0, sizeof(*st));
}

/* ---- network ------------------------------------------------------------------------ */

size_t ka_net_stats_parse(const char *text, struct ka_net_stats *out, size_t max)
{
    /* Two header lines, then "  eth0: rx_bytes rx_packets rx_errs rx_drop fifo frame
     * compressed multicast tx_bytes tx_packets tx_errs tx_drop ..." */
    size_t n = 0;
    for (const char *line = text; line && *line && n < max;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        const char *colon = memchr(line, ':', len);
        if (colon) {
            const char *name = line;
            while (name < colon && (*name == ' ' || *name == '\t'))
                name++;
            size_t nl = (size_t)(colon - name);
            unsigned long long v[16];
            char rest[512];
            size_t rl = len - (size_t)(colon + 1 - line);
            if (nl > 0 && nl < sizeof(out->name) && rl < sizeof(rest)) {
                memcpy(rest, colon + 1, rl);
                rest[rl] = '\0';
                if (sscanf(rest, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
                           &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9],
                           &v[10], &v[11]) == 12) {
                    struct ka_net_stats *s = &out[n++];
                    memset(s, 0, sizeof(*s));
                    memcpy(s->name, name, nl);
                    s->rx_bytes = v[0];
                    s->rx_packets = v[1];
                    s->rx_errors = v[2];
                    s->rx_dropped = v[3];
                    s->tx_bytes = v[8];
                    s->tx_packets = v[9];
                    s->tx_errors = v[10];
                    s->tx_dropped = v[11];
                }
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return n;
}

int ka_net_stats_read(const char *path, struct ka_net_stats *out, size_t max, size_t *n,
                      struct ka_error *err)
{
    char buf[65536], dir[256];
    *n = 0;
    const char *slash = strrchr(path, '/');
    if (!slash || (size_t)(slash - path) >= sizeof(dir))
        return ka_error_set(err, EINVAL, "bad path %s", path);
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    if (ka_cg_read(dir, slash + 1, buf, sizeof(buf), err) < 0)
        return -1;
    *n = ka_net_stats_parse(buf, out, max);
    return 0;
}
