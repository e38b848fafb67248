/* Resources into cgroup files, v1 and v2 (see resources.h). */
#include "cgroups/resources.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MISSING(err, what)                                    \
    ka_error_status_set((err), KA_STATUS_FAILED_PRECONDITION, \
                        "the spec sets %s but no such cgroup controller is available", (what))

/* ---- conversions ---------------------------------------------------------------------- */

uint64_t ka_cgroup_shares_to_weight(uint64_t shares)
{
    if (shares == 0)
        return 0;
    if (shares < 2)
        shares = 2;
    if (shares > 262144)
        shares = 262144;
    return 1 + ((shares - 2) * 9999) / 262142;
}

int ka_cgroup_swap_to_v2(int64_t swap, int64_t limit, int64_t *out, struct ka_error *err)
{
    if (limit == -1 && swap == 0) { /* "unlimited memory" means unlimited swap too */
        *out = -1;
        return 0;
    }
    if (swap == -1 || swap == 0) {
        *out = swap;
        return 0;
    }
    if (limit == 0 || limit == -1)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "a swap limit needs a memory limit on cgroup v2");
    if (limit < 0 || swap < limit)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "memory+swap limit %" PRId64
                                   " is below the memory limit %" PRId64,
                                   swap, limit);
    *out = swap - limit;
    return 0;
}

uint64_t ka_cgroup_blkio_weight_to_v2(uint64_t weight)
{
    if (weight == 0)
        return 0;
    if (weight < 10)
        weight = 10;
    if (weight > 1000)
        weight = 1000;
    return 1 + (weight - 10) * 9999 / 990;
}

void ka_cgroup_cpu_max(int64_t quota, uint64_t period, char *buf, size_t size)
{
    if (quota <= 0)
        snprintf(buf, size, "max %" PRIu64, period);
    else
        snprintf(buf, size, "%" PRId64 " %" PRIu64, quota, period);
}

static void fmt_limit(int64_t v, char *buf, size_t size)
{
    if (v < 0)
        snprintf(buf, size, "max");
    else
        snprintf(buf, size, "%" PRId64, v);
}

/* ---- memory ------------------------------------------------------------------------------ */

static int memory_v1(const char *dir, const struct ka_memory_resources *m, struct ka_error *err)
{
    int64_t swap = m->limit == -1 ? -1 : m->swap;
    bool memsw = ka_cg_exists(dir, "memory.memsw.limit_in_bytes");
    if (swap != 0 && !memsw) {
        if (swap > 0 && swap != m->limit)
            return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                       "a swap limit needs swap accounting (memory.memsw.*)");
        swap = 0; /* unlimited, or no swap on top of the limit: nothing to write */
    }
    if (m->limit != 0 && swap != 0) {
        /* The kernel checks memsw >= limit on each write: widen first, narrow last. */
        uint64_t cur = 0;
        if (ka_cg_read_u64(dir, "memory.limit_in_bytes", &cur, err) < 0)
            return -1;
        if (swap == -1 || cur < (uint64_t)swap) {
            if (ka_cg_writef(dir, "memory.memsw.limit_in_bytes", err, "%" PRId64, swap) < 0 ||
                ka_cg_writef(dir, "memory.limit_in_bytes", err, "%" PRId64, m->limit) < 0)
                return -1;
        } else if (ka_cg_writef(dir, "memory.limit_in_bytes", err, "%" PRId64, m->limit) < 0 ||
                   ka_cg_writef(dir, "memory.memsw.limit_in_bytes", err, "%" PRId64, swap) < 0) {
            return -1;
        }
    } else {
        if (m->limit != 0 &&
            ka_cg_writef(dir, "memory.limit_in_bytes", err, "%" PRId64, m->limit) < 0)
            return -1;
        if (swap != 0 &&
            ka_cg_writef(dir, "memory.memsw.limit_in_bytes", err, "%" PRId64, swap) < 0)
            return -1;
    }
    if (m->reservation != 0 &&
        ka_cg_writef(dir, "memory.soft_limit_in_bytes", err, "%" PRId64, m->reservation) < 0)
        return -1;
    /* Kernel memory limits are gone from recent kernels (the file refuses
     * writes): what the Rust agent sets here cannot be honoured, say so and go on. */
    struct ka_error kerr;
    if (m->kernel != 0 &&
        ka_cg_writef(dir, "memory.kmem.limit_in_bytes", &kerr, "%" PRId64, m->kernel) < 0)
        ka_log(KA_LOG_DEBUG, "cgroups", "kernel memory limit not set: %s", kerr.msg);
    if (m->kernel_tcp != 0 &&
        ka_cg_writef(dir, "memory.kmem.tcp.limit_in_bytes", &kerr, "%" PRId64, m->kernel_tcp) < 0)
        ka_log(KA_LOG_DEBUG, "cgroups", "kernel TCP memory limit not set: %s", kerr.msg);
    if (m->swappiness != 0 &&
        ka_cg_writef(dir, "memory.swappiness", err, "%" PRIu64, m->swappiness) < 0)
        return -1;
    if (m->disable_oom_killer && ka_cg_write(dir, "memory.oom_control", "1", err) < 0)
        return -1;
    return 0;
}

static int memory_v2(const char *dir, const struct ka_memory_resources *m, struct ka_error *err)
{
    char buf[32];
    int64_t swap;
    if (ka_cgroup_swap_to_v2(m->swap, m->limit, &swap, err) < 0)
        return -1;
    if (swap != 0 && !ka_cg_exists(dir, "memory.swap.max")) {
        if (swap > 0)
            return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                       "a swap limit needs swap accounting (memory.swap.max)");
        swap = 0;
    }
    /* memory.max and memory.swap.max are independent in v2: no ordering dance. */
    if (m->limit != 0) {
        fmt_limit(m->limit, buf, sizeof(buf));
        if (ka_cg_write(dir, "memory.max", buf, err) < 0)
            return -1;
    }
    if (swap != 0) {
        fmt_limit(swap, buf, sizeof(buf));
        if (ka_cg_write(dir, "memory.swap.max", buf, err) < 0)
            return -1;
    }
    if (m->reservation != 0) {
        fmt_limit(m->reservation, buf, sizeof(buf));
        if (ka_cg_write(dir, "memory.low", buf, err) < 0)
            return -1;
    }
    if (m->kernel || m->kernel_tcp || m->swappiness || m->disable_oom_killer)
        ka_log(KA_LOG_DEBUG, "cgroups",
               "cgroup v2 has no kernel memory, swappiness or OOM-killer setting: skipped");
    return 0;
}

/* ---- cpu ---------------------------------------------------------------------------------- */

static int cpuset(const struct ka_cgroup *cg, const struct ka_cpu_resources *c,
                  struct ka_error *err)
{
    if (!c->cpus && !c->mems)
        return 0;
    const char *dir = ka_cgroup_has(cg, KA_CG_CPUSET) ? ka_cgroup_dir_of(cg, KA_CG_CPUSET) : NULL;
    if (!dir)
        return MISSING(err, "cpus/mems");
    /* Mems first: a task must always have somewhere to allocate. */
    if (c->mems && ka_cg_write(dir, "cpuset.mems", c->mems, err) < 0)
        return -1;
    if (c->cpus && ka_cg_write(dir, "cpuset.cpus", c->cpus, err) < 0)
        return -1;
    return 0;
}

static int cpu_v1(const char *dir, const struct ka_cpu_resources *c, struct ka_error *err)
{
    if (c->shares && ka_cg_writef(dir, "cpu.shares", err, "%" PRIu64, c->shares) < 0)
        return -1;
    /* Period first, then quota; if the kernel refuses that order (the new period
     * is too small for the old quota), the other way round. */
    if (c->period && c->quota) {
        struct ka_error first;
        if (ka_cg_writef(dir, "cpu.cfs_period_us", &first, "%" PRIu64, c->period) < 0) {
            if (ka_cg_writef(dir, "cpu.cfs_quota_us", err, "%" PRId64, c->quota) < 0 ||
                ka_cg_writef(dir, "cpu.cfs_period_us", err, "%" PRIu64, c->period) < 0)
                return -1;
        } else if (ka_cg_writef(dir, "cpu.cfs_quota_us", err, "%" PRId64, c->quota) < 0) {
            return -1;
        }
    } else if (c->period) {
        if (ka_cg_writef(dir, "cpu.cfs_period_us", err, "%" PRIu64, c->period) < 0)
            return -1;
    } else if (c->quota) {
        if (ka_cg_writef(dir, "cpu.cfs_quota_us", err, "%" PRId64, c->quota) < 0)
            return -1;
    }
    if (c->realtime_period &&
        ka_cg_writef(dir, "cpu.rt_period_us", err, "%" PRIu64, c->realtime_period) < 0)
        return -1;
    if (c->realtime_runtime &&
        ka_cg_writef(dir, "cpu.rt_runtime_us", err, "%" PRId64, c->realtime_runtime) < 0)
        return -1;
    return 0;
}

static int cpu_v2(const char *dir, const struct ka_cpu_resources *c, struct ka_error *err)
{
    if (c->shares &&
        ka_cg_writef(dir, "cpu.weight", err, "%" PRIu64, ka_cgroup_shares_to_weight(c->shares)) < 0)
        return -1;
    if (c->quota || c->period) {
        /* cpu.max holds both: keep whichever one the spec leaves alone. */
        char cur[64], buf[64];
        if (ka_cg_read(dir, "cpu.max", cur, sizeof(cur), err) < 0)
            return -1;
        char q[32] = "max";
        unsigned long long p = 100000;
        sscanf(cur, "%31s %llu", q, &p);
        int64_t quota = c->quota ? c->quota : (strcmp(q, "max") == 0 ? -1 : strtoll(q, NULL, 10));
        uint64_t period = c->period ? c->period : p;
        ka_cgroup_cpu_max(quota, period, buf, sizeof(buf));
        if (ka_cg_write(dir, "cpu.max", buf, err) < 0)
            return -1;
    }
    if (c->realtime_runtime || c->realtime_period)
        ka_log(KA_LOG_DEBUG, "cgroups", "cgroup v2 has no realtime cpu settings: skipped");
    return 0;
}

/* ---- blkio / io ---------------------------------------------------------------------------- */

static const char *const throttle_v1[KA_THROTTLE_COUNT] = {"blkio.throttle.read_bps_device",
                                                           "blkio.throttle.write_bps_device",
                                                           "blkio.throttle.read_iops_device",
                                                           "blkio.throttle.write_iops_device"};
static const char *const throttle_v2[KA_THROTTLE_COUNT] = {"rbps", "wbps", "riops", "wiops"};

static int blkio_v1(const char *dir, const struct ka_blkio_resources *b, struct ka_error *err)
{
    /* blkio.weight went with CFQ; BFQ offers blkio.bfq.weight with the same range. */
    const char *wfile = ka_cg_exists(dir, "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
    const char *wdfile = ka_cg_exists(dir, "blkio.weight_device") ? "blkio.weight_device"
                                                                  : "blkio.bfq.weight_device";
    bool have_weight = ka_cg_exists(dir, wfile);
    if ((b->weight || b->n_weight_devices) && !have_weight)
        ka_log(KA_LOG_DEBUG, "cgroups", "no blkio weight file (no CFQ or BFQ scheduler): skipped");
    if (b->weight && have_weight && ka_cg_writef(dir, wfile, err, "%u", b->weight) < 0)
        return -1;
    if (b->leaf_weight) {
        struct ka_error lerr;
        if (ka_cg_writef(dir, "blkio.leaf_weight", &lerr, "%u", b->leaf_weight) < 0)
            ka_log(KA_LOG_DEBUG, "cgroups", "blkio leaf weight not set: %s", lerr.msg);
    }
    for (size_t i = 0; have_weight && i < b->n_weight_devices; i++) {
        const struct ka_blkio_device *d = &b->weight_devices[i];
        if (d->value && ka_cg_writef(dir, wdfile, err, "%" PRId64 ":%" PRId64 " %" PRIu64, d->major,
                                     d->minor, d->value) < 0)
            return -1;
        struct ka_error lerr;
        if (d->leaf_weight &&
            ka_cg_writef(dir, "blkio.leaf_weight_device", &lerr, "%" PRId64 ":%" PRId64 " %u",
                         d->major, d->minor, d->leaf_weight) < 0)
            ka_log(KA_LOG_DEBUG, "cgroups", "blkio leaf weight not set: %s", lerr.msg);
    }
    for (int t = 0; t < KA_THROTTLE_COUNT; t++)
        for (size_t i = 0; i < b->n_throttle[t]; i++) {
            const struct ka_blkio_device *d = &b->throttle[t][i];
            if (ka_cg_writef(dir, throttle_v1[t], err, "%" PRId64 ":%" PRId64 " %" PRIu64, d->major,
                             d->minor, d->value) < 0)
                return -1;
        }
    return 0;
}

static int blkio_v2(const char *dir, const struct ka_blkio_resources *b, struct ka_error *err)
{
    /* As runc: BFQ's io.bfq.weight takes the v1 range as is, io.weight is scaled. */
    bool bfq = ka_cg_exists(dir, "io.bfq.weight");
    if (b->weight) {
        int rc = bfq ? ka_cg_writef(dir, "io.bfq.weight", err, "%u", b->weight)
                     : ka_cg_writef(dir, "io.weight", err, "default %" PRIu64,
                                    ka_cgroup_blkio_weight_to_v2(b->weight));
        if (rc < 0)
            return -1;
    }
    for (size_t i = 0; i < b->n_weight_devices; i++) {
        const struct ka_blkio_device *d = &b->weight_devices[i];
        if (!d->value)
            continue;
        uint64_t w = bfq ? d->value : ka_cgroup_blkio_weight_to_v2(d->value);
        if (ka_cg_writef(dir, bfq ? "io.bfq.weight" : "io.weight", err,
                         "%" PRId64 ":%" PRId64 " %" PRIu64, d->major, d->minor, w) < 0)
            return -1;
    }
    if (b->leaf_weight)
        ka_log(KA_LOG_DEBUG, "cgroups", "cgroup v2 has no leaf weight: skipped");
    for (int t = 0; t < KA_THROTTLE_COUNT; t++)
        for (size_t i = 0; i < b->n_throttle[t]; i++) {
            const struct ka_blkio_device *d = &b->throttle[t][i];
            char v[32];
            if (d->value == 0)
                snprintf(v, sizeof(v), "max");
            else
                snprintf(v, sizeof(v), "%" PRIu64, d->value);
            if (ka_cg_writef(dir, "io.max", err, "%" PRId64 ":%" PRId64 " %s=%s", d->major,
                             d->minor, throttle_v2[t], v) < 0)
                return -1;
        }
    return 0;
}

/* ---- hugetlb, network ------------------------------------------------------------------------ */

static int hugetlb(const struct ka_cgroup *cg, const struct ka_resources *r, struct ka_error *err)
{
    const char *dir = ka_cgroup_has(cg, KA_CG_HUGETLB) ? ka_cgroup_dir_of(cg, KA_CG_HUGETLB) : NULL;
    for (size_t i = 0; i < r->n_hugepages; i++) {
        const struct ka_hugepage_limit *h = &r->hugepages[i];
        char file[64];
        snprintf(file, sizeof(file), "hugetlb.%s.%s", h->page_size,
                 cg->version == KA_CGROUP_V2 ? "max" : "limit_in_bytes");
        if (!dir || !ka_cg_exists(dir, file)) {
            ka_log(KA_LOG_DEBUG, "cgroups",
                   "%s page size support cannot be verified, dropping requested limit",
                   h->page_size);
            continue;
        }
        if (ka_cg_writef(dir, file, err, "%" PRIu64, h->limit) < 0)
            return -1;
    }
    return 0;
}

static int network(const struct ka_cgroup *cg, const struct ka_resources *r, struct ka_error *err)
{
    if (cg->version == KA_CGROUP_V2) {
        ka_log(KA_LOG_DEBUG, "cgroups", "cgroup v2 has no net_cls/net_prio: skipped");
        return 0;
    }
    if (r->net_class_id) {
        const char *dir = ka_cgroup_dir_of(cg, KA_CG_NET_CLS);
        if (!dir)
            return MISSING(err, "a network class id");
        if (ka_cg_writef(dir, "net_cls.classid", err, "%u", r->net_class_id) < 0)
            return -1;
    }
    if (r->n_net_priorities) {
        const char *dir = ka_cgroup_dir_of(cg, KA_CG_NET_PRIO);
        if (!dir)
            return MISSING(err, "network priorities");
        for (size_t i = 0; i < r->n_net_priorities; i++)
            if (ka_cg_writef(dir, "net_prio.ifpriomap", err, "%s %u", r->net_priorities[i].name,
                             r->net_priorities[i].priority) < 0)
                return -1;
    }
    return 0;
}

int ka_cgroup_set_resources(const struct ka_cgroup *cg, const struct ka_resources *r,
                            struct ka_error *err)
{
    bool v2 = cg->version == KA_CGROUP_V2;
    const struct ka_cpu_resources *c = &r->cpu;
    if (c->present) {
        if (cpuset(cg, c, err) < 0)
            return -1;
        bool wants =
            c->shares || c->quota || c->period || c->realtime_period || c->realtime_runtime;
        const char *dir = ka_cgroup_has(cg, KA_CG_CPU) ? ka_cgroup_dir_of(cg, KA_CG_CPU) : NULL;
        if (wants && !dir)
            return MISSING(err, "cpu shares or quota");
        if (wants && (v2 ? cpu_v2(dir, c, err) : cpu_v1(dir, c, err)) < 0)
            return -1;
    }
    const struct ka_memory_resources *m = &r->memory;
    if (m->present) {
        bool wants = m->limit || m->reservation || m->swap || m->kernel || m->kernel_tcp ||
                     m->swappiness || m->disable_oom_killer;
        const char *dir =
            ka_cgroup_has(cg, KA_CG_MEMORY) ? ka_cgroup_dir_of(cg, KA_CG_MEMORY) : NULL;
        if (wants && !dir)
            return MISSING(err, "memory limits");
        if (wants && (v2 ? memory_v2(dir, m, err) : memory_v1(dir, m, err)) < 0)
            return -1;
    }
    if (r->has_pids) {
        const char *dir = ka_cgroup_has(cg, KA_CG_PIDS) ? ka_cgroup_dir_of(cg, KA_CG_PIDS) : NULL;
        if (!dir)
            return MISSING(err, "a pids limit");
        int rc = r->pids_limit > 0 ? ka_cg_writef(dir, "pids.max", err, "%" PRId64, r->pids_limit)
                                   : ka_cg_write(dir, "pids.max", "max", err);
        if (rc < 0)
            return -1;
    }
    const struct ka_blkio_resources *b = &r->blkio;
    bool wants_io = b->weight || b->leaf_weight || b->n_weight_devices;
    for (int t = 0; t < KA_THROTTLE_COUNT; t++)
        wants_io = wants_io || b->n_throttle[t];
    if (b->present && wants_io) {
        const char *dir = ka_cgroup_has(cg, KA_CG_BLKIO) ? ka_cgroup_dir_of(cg, KA_CG_BLKIO) : NULL;
        if (!dir)
            return MISSING(err, "block io limits");
        if ((v2 ? blkio_v2(dir, b, err) : blkio_v1(dir, b, err)) < 0)
            return -1;
    }
    if (r->n_hugepages && hugetlb(cg, r, err) < 0)
        return -1;
    if (r->has_network && (r->net_class_id || r->n_net_priorities) && network(cg, r, err) < 0)
        return -1;
    return 0;
}

/* ---- devices ------------------------------------------------------------------------------ */

const struct ka_device_rule ka_default_device_rules[] = {
    {true, 'c', 1, 3, "rwm"},    /* /dev/null */
    {true, 'c', 1, 5, "rwm"},    /* /dev/zero */
    {true, 'c', 1, 7, "rwm"},    /* /dev/full */
    {true, 'c', 5, 0, "rwm"},    /* /dev/tty */
    {true, 'c', 1, 9, "rwm"},    /* /dev/urandom */
    {true, 'c', 1, 8, "rwm"},    /* /dev/random */
    {true, 'c', -1, -1, "m"},    /* mknod of any char device */
    {true, 'b', -1, -1, "m"},    /* mknod of any block device */
    {true, 'c', 5, 1, "rwm"},    /* /dev/console */
    {true, 'c', 136, -1, "rwm"}, /* /dev/pts/N */
    {true, 'c', 5, 2, "rwm"},    /* /dev/ptmx */
    {true, 'c', 10, 200, "rwm"}, /* /dev/net/tun */
};
const size_t ka_n_default_device_rules = KA_ARRAY_SIZE(ka_default_device_rules);

static const struct ka_device_rule allow_all_rules[] = {
    /* Not "a *:* rwm": v1 refuses an 'a' rule once the cgroup has children. */
    {true, 'c', -1, -1, "rwm"},
    {true, 'b', -1, -1, "rwm"},
};

bool ka_device_rule_is_all(const struct ka_device_rule *r)
{
    return r->type == 'a' && r->major == -1 && r->minor == -1 && strcmp(r->access, "rwm") == 0;
}

bool ka_device_rules_allow_all(const struct ka_device_rule *rules, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ka_device_rule_is_all(&rules[i]))
            return rules[i].allow;
    return false;
}

void ka_device_rule_format(const struct ka_device_rule *r, char *buf, size_t size)
{
    char maj[24] = "*", min[24] = "*";
    if (r->major >= 0)
        snprintf(maj, sizeof(maj), "%" PRId64, r->major);
    if (r->minor >= 0)
        snprintf(min, sizeof(min), "%" PRId64, r->minor);
    snprintf(buf, size, "%c %s:%s %s", r->type, maj, min, r->access);
}

static int v1_rule(const char *dir, const struct ka_device_rule *r, struct ka_error *err)
{
    char line[64];
    ka_device_rule_format(r, line, sizeof(line));
    return ka_cg_write(dir, r->allow ? "devices.allow" : "devices.deny", line, err);
}

int ka_cgroup_set_devices(struct ka_cgroup *cg, bool allow_all, const struct ka_device_rule *rules,
                          size_t n, bool reset, struct ka_error *err)
{
    if (cg->version == KA_CGROUP_V2) {
        /* A whitelist's worth of rules is some 20 instructions per rule at most. */
        size_t max = 16 + (ka_n_default_device_rules + KA_ARRAY_SIZE(allow_all_rules) + n + 1) * 20;
        cleanup_free void *insns = ka_xcalloc(max, 8);
        size_t count = ka_devices_bpf_build(allow_all, rules, n, insns, max);
        if (count == 0)
            return ka_error_set(err, E2BIG, "device program for %s", cg->path);
        int fd = ka_devices_bpf_attach(cg->d[0].dir, insns, count, cg->bpf_prog_fd, err);
        if (fd < 0 && err->errnum == ENOSYS)
            /* A kernel without bpf(2) has no device control on v2 at all: fail
             * closed rather than run the container with every device (issue 13). */
            return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                       "no device control for %s: the kernel has no bpf(2)",
                                       cg->path);
        if (fd < 0)
            return -1;
        if (cg->bpf_prog_fd >= 0)
            close(cg->bpf_prog_fd);
        cg->bpf_prog_fd = fd;
        cg->devices_allow_all = allow_all;
        return 0;
    }
    const char *dir = ka_cgroup_dir_of(cg, KA_CG_DEVICES);
    if (!dir) /* fail closed, as with no cgroup at all (issue 13) */
        return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                   "no devices cgroup hierarchy is mounted: no device control for "
                                   "%s",
                                   cg->path);
    if (reset) {
        if (allow_all) {
            for (size_t i = 0; i < KA_ARRAY_SIZE(allow_all_rules); i++)
                if (v1_rule(dir, &allow_all_rules[i], err) < 0)
                    return -1;
        } else {
            if (ka_cg_write(dir, "devices.deny", "a", err) < 0)
                return -1;
            for (size_t i = 0; i < ka_n_default_device_rules; i++)
                if (v1_rule(dir, &ka_default_device_rules[i], err) < 0)
                    return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (ka_device_rule_is_all(&rules[i]))
            continue;
        if (v1_rule(dir, &rules[i], err) < 0)
            return -1;
    }
    return 0;
}
