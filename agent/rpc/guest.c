/* Guest operations the host asks for outside the container lifecycle: CopyFile,
 * SetGuestDateTime, ReseedRandomDev, MemHotplugByProbe, AddSwap / AddSwapPath,
 * GetIPTables / SetIPTables, GetVolumeStats and GetMetrics. */
#include "agent.h"
#include "core/child.h"
#include "core/util.h"
#include "rpc/devices.h"
#include "rpc/dispatch.h"
#include "storage/copyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/random.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/time.h>
#include <sys/vfs.h>
#include <time.h>

#include "agent.pb-c.h"
#include "csi.pb-c.h"

#define MEM_PROBE_PATH "/sys/devices/system/memory/probe"
/* The Rust agent has no bound beyond the 4 MiB frame; a seed is a few hundred bytes. */
#define RESEED_MAX_DATA (64u << 10)

/* ---- A growable byte buffer ------------------------------------------------------ */

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = ka_xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* ---- CopyFile ----------------------------------------------------------------------- */

static int copy_file(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                     struct ka_error *err)
{
    (void)a;
    const Grpc__CopyFileRequest *req = (const Grpc__CopyFileRequest *)m;
    struct ka_copyfile r = {
        .path = req->path,
        .file_size = req->file_size,
        .file_mode = req->file_mode,
        .dir_mode = req->dir_mode,
        .uid = req->uid,
        .gid = req->gid,
        .offset = req->offset,
        .data = req->data.data,
        .len = req->data.len,
    };
    if (ka_copyfile(&r, err) < 0)
        return -1;
    rpc_reply(call, NULL);
    return 0;
}

/* ---- SetGuestDateTime, ReseedRandomDev ---------------------------------------------- */

static int set_guest_date_time(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                               struct ka_error *err)
{
    (void)a;
    const Grpc__SetGuestDateTimeRequest *req = (const Grpc__SetGuestDateTimeRequest *)m;
    if (req->sec < 0 || req->usec < 0 || req->usec >= 1000000 ||
        (sizeof(time_t) < sizeof(int64_t) && req->sec > INT32_MAX))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "set guest time: bad time %" PRId64 " s %" PRId64 " us",
                                   req->sec, req->usec);
    struct timeval tv = {.tv_sec = (time_t)req->sec, .tv_usec = (suseconds_t)req->usec};
    if (settimeofday(&tv, NULL) < 0)
        return ka_error_set(err, errno, "set guest time");
    rpc_reply(call, NULL);
    return 0;
}

static int reseed_random_dev(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                             struct ka_error *err)
{
    (void)a;
    const Grpc__ReseedRandomDevRequest *req = (const Grpc__ReseedRandomDevRequest *)m;
    if (req->data.len > RESEED_MAX_DATA)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "reseed random: %zu bytes of data (at most %u)", req->data.len,
                                   RESEED_MAX_DATA);
    cleanup_close int fd = open("/dev/random", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "reseed random: open /dev/random");
    size_t done = 0;
    while (done < req->data.len) {
        ssize_t n = write(fd, req->data.data + done, req->data.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return ka_error_set(err, n < 0 ? errno : EIO, "reseed random: write /dev/random");
        done += (size_t)n;
    }
    /* Credit what was written, then make the CRNG take it now. */
    int bits = (int)(req->data.len * 8);
    if (ioctl(fd, RNDADDTOENTCNT, &bits) < 0)
        return ka_error_set(err, errno, "reseed random: RNDADDTOENTCNT");
    if (ioctl(fd, RNDRESEEDCRNG, NULL) < 0)
        return ka_error_set(err, errno, "reseed random: RNDRESEEDCRNG");
    rpc_reply(call, NULL);
    return 0;
}

/* ---- MemHotplugByProbe, AddSwap, AddSwapPath ---------------------------------------- */

static int mem_hotplug_by_probe(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                                struct ka_error *err)
{
    (void)a;
    const Grpc__MemHotplugByProbeRequest *req = (const Grpc__MemHotplugByProbeRequest *)m;
    if (req->n_memhotplugprobeaddr > 0) {
        cleanup_close int fd = open(MEM_PROBE_PATH, O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                           "memory hotplug by probe: %s does not exist (the "
                                           "guest kernel has no CONFIG_ARCH_MEMORY_PROBE)",
                                           MEM_PROBE_PATH);
            return ka_error_set(err, errno, "memory hotplug by probe: open %s", MEM_PROBE_PATH);
        }
        for (size_t i = 0; i < req->n_memhotplugprobeaddr; i++) {
            char text[32];
            /* One address per write: the kernel parses each write on its own. */
            int n = snprintf(text, sizeof(text), "0x%" PRIX64, req->memhotplugprobeaddr[i]);
            if (write(fd, text, (size_t)n) != n)
                return ka_error_set(err, errno, "memory hotplug by probe: write %s to %s", text,
                                    MEM_PROBE_PATH);
        }
    }
    rpc_reply(call, NULL);
    return 0;
}

/* AddSwap: the virtio-blk disk at a PCI path (one slot per element), once it is
 * there (waiting for its uevent up to agent.hotplug_timeout). */
static int add_swap(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                    struct ka_error *err)
{
    const Grpc__AddSwapRequest *req = (const Grpc__AddSwapRequest *)m;
    cleanup_free struct rpc_dev_set *set = ka_xcalloc(1, sizeof(*set));
    struct rpc_dev_need *need = &set->needs[set->n++];
    need->device = -1;
    need->q.kind = KA_DEV_BLK_PCI;
    if (ka_pci_path_from_slots(req->pcipath, req->n_pcipath, &need->q.pci, err) < 0)
        return ka_error_wrap(err, "add swap");
    for (size_t i = 0; i < req->n_pcipath; i++)
        snprintf(need->q.arg + strlen(need->q.arg), sizeof(need->q.arg) - strlen(need->q.arg),
                 "%s%02x", i ? "/" : "", req->pcipath[i]);
    int rc = rpc_await_devices(a, call, set, err);
    if (rc <= 0)
        return rc < 0 ? ka_error_wrap(err, "add swap") : 0;
    if (swapon(need->found.node, 0) < 0)
        return ka_error_set(err, errno, "add swap: swapon %s", need->found.node);
    rpc_reply(call, NULL);
    return 0;
}

/* The checks every path-taking RPC here makes: absolute, and a missing path is
 * NOT_FOUND rather than an internal failure. */
static int require_absolute(const char *what, const char *path, struct ka_error *err)
{
    if (path[0] == '/')
        return 0;
    return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                               "%s: path \"%.256s\" is not absolute", what, path);
}

static int path_failed(const char *what, const char *op, const char *path, struct ka_error *err)
{
    if (errno == ENOENT)
        return ka_error_status_set(err, KA_STATUS_NOT_FOUND, "%s: %.256s does not exist", what,
                                   path);
    return ka_error_set(err, errno, "%s: %s %.256s", what, op, path);
}

static int add_swap_path(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                         struct ka_error *err)
{
    (void)a;
    const Grpc__AddSwapPathRequest *req = (const Grpc__AddSwapPathRequest *)m;
    const char *path = req->path;
    if (require_absolute("add swap", path, err) < 0)
        return -1;
    struct stat st;
    if (stat(path, &st) < 0)
        return path_failed("add swap", "stat", path, err);
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "add swap: %.256s is not a file or a block device", path);
    if (swapon(path, 0) < 0)
        return ka_error_set(err, errno, "add swap: swapon %.256s", path);
    rpc_reply(call, NULL);
    return 0;
}

/* ---- GetVolumeStats ------------------------------------------------------------------ */

static int get_volume_stats(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                            struct ka_error *err)
{
    (void)a;
    const Grpc__VolumeStatsRequest *req = (const Grpc__VolumeStatsRequest *)m;
    const char *path = req->volume_guest_path;
    if (require_absolute("volume stats", path, err) < 0)
        return -1;
    struct statfs sf;
    if (statfs(path, &sf) < 0)
        return path_failed("volume stats", "statfs", path, err);
    uint64_t bs = (uint64_t)sf.f_bsize;
    Grpc__VolumeUsage bytes = GRPC__VOLUME_USAGE__INIT, inodes = GRPC__VOLUME_USAGE__INIT;
    bytes.unit = GRPC__VOLUME_USAGE__UNIT__BYTES;
    bytes.total = (uint64_t)sf.f_blocks * bs;
    bytes.available = (uint64_t)sf.f_bavail * bs;
    bytes.used = ((uint64_t)sf.f_blocks - (uint64_t)sf.f_bfree) * bs;
    inodes.unit = GRPC__VOLUME_USAGE__UNIT__INODES;
    inodes.total = (uint64_t)sf.f_files;
    inodes.available = (uint64_t)sf.f_ffree;
    inodes.used = (uint64_t)sf.f_files - (uint64_t)sf.f_ffree;
    Grpc__VolumeUsage *usage[] = {&bytes, &inodes};
    Grpc__VolumeCondition cond = GRPC__VOLUME_CONDITION__INIT;
    cond.abnormal = false;
    cond.message = "OK";
    Grpc__VolumeStatsResponse resp = GRPC__VOLUME_STATS_RESPONSE__INIT;
    resp.n_usage = 2;
    resp.usage = usage;
    resp.volume_condition = &cond;
    rpc_reply(call, &resp.base);
    return 0;
}

/* ---- GetMetrics ----------------------------------------------------------------------
 * Prometheus text exposition with the Rust agent's metric names (src/agent/src/metrics.rs):
 * kata_agent_* for the agent process, kata_guest_* for the guest. */

static uint64_t scrape_count;

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values come from /proc; escape them anyway (\\, \" and \n). */
static void label_value(struct buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_add(b, "\\", 1), buf_add(b, v, 1);
        else if (*v == '\n')
            buf_add(b, "\\n", 2);
        else
            buf_add(b, v, 1);
    }
}

static void sample1(struct buf *b, const char *name, const char *label, const char *value,
                    const char *num)
{
    buf_printf(b, "%s{%s=\"", name, label);
    label_value(b, value);
    buf_printf(b, "\"} %s\n", num);
}

static void sample2(struct buf *b, const char *name, const char *l1, const char *v1, const char *l2,
                    const char *v2, const char *num)
{
    buf_printf(b, "%s{%s=\"", name, l1);
    label_value(b, v1);
    buf_printf(b, "\",%s=\"", l2);
    label_value(b, v2);
    buf_printf(b, "\"} %s\n", num);
}

static char *read_text(const char *path)
{
    cleanup_file FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    struct buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < (4u << 20))
        buf_add(&b, chunk, n);
    if (!b.p)
        buf_add(&b, "", 0);
    return b.p;
}

/* "MemTotal" -> "mem_total", "Active(anon)" -> "active_anon", "SReclaimable" ->
 * "s_reclaimable", "DirectMap4k" -> "direct_map_4k", as the Rust agent names them. */
static void snake(const char *in, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 2 < size; i++) {
        char c = in[i], prev = i ? in[i - 1] : 0, next = i + 1 < len ? in[i + 1] : 0;
        if (c == '(' || c == ')' || c == ' ') {
            if (c == '(' && o && out[o - 1] != '_')
                out[o++] = '_';
            continue;
        }
        bool up = c >= 'A' && c <= 'Z';
        bool prev_lower = prev >= 'a' && prev <= 'z';
        bool prev_upper = prev >= 'A' && prev <= 'Z';
        bool next_lower = next >= 'a' && next <= 'z';
        bool digit = c >= '0' && c <= '9';
        if (o && out[o - 1] != '_' &&
            ((up && (prev_lower || (prev_upper && next_lower))) ||
             (digit && !(prev >= '0' && prev <= '9'))))
            out[o++] = '_';
        out[o++] = up ? (char)(c - 'A' + 'a') : c;
    }
    out[o] = '\0';
    /* procfs spells these without the inner underscore. */
    char *h = strstr(out, "huge_pages");
    if (h)
        memmove(h + 4, h + 5, strlen(h + 5) + 1);
}

static void agent_metrics(struct buf *b)
{
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    cleanup_free char *stat = read_text("/proc/self/stat");
    char *rp = stat ? strrchr(stat, ')') : NULL;
    if (rp && rp[1] == ' ') {
        /* Fields from 3 (state) on; see proc(5). */
        static const struct {
            int field;
            const char *item;
        } items[] = {{10, "minflt"},      {12, "majflt"}, {14, "utime"},    {15, "stime"},
                     {16, "cutime"},      {17, "cstime"}, {18, "priority"}, {19, "nice"},
                     {20, "num_threads"}, {23, "vsize"},  {24, "rss"}};
        long long f[64] = {0};
        int nf = 3;
        char *save = NULL;
        for (char *tok = strtok_r(rp + 2, " \n", &save); tok && nf < 64;
             tok = strtok_r(NULL, " \n", &save), nf++)
            f[nf] = strtoll(tok, NULL, 10);
        char num[32];
        family(b, "kata_agent_threads", "gauge", "Agent process threads");
        buf_printf(b, "kata_agent_threads %lld\n", f[20]);
        family(b, "kata_agent_total_time", "gauge", "Agent process total time");
        buf_printf(b, "kata_agent_total_time %.2f\n", (double)(f[14] + f[15]) / (double)tck);
        family(b, "kata_agent_total_vm", "gauge", "Agent process total VM size");
        buf_printf(b, "kata_agent_total_vm %lld\n", f[23]);
        family(b, "kata_agent_total_rss", "gauge", "Agent process total RSS size");
        buf_printf(b, "kata_agent_total_rss %lld\n", f[24] * page);
        family(b, "kata_agent_proc_stat", "gauge", "Agent process statistics.");
        for (size_t i = 0; i < KA_ARRAY_SIZE(items); i++) {
            snprintf(num, sizeof(num), "%lld", f[items[i].field]);
            sample1(b, "kata_agent_proc_stat", "item", items[i].item, num);
        }
    }
    cleanup_free char *status = read_text("/proc/self/status");
    if (status) {
        family(b, "kata_agent_proc_status", "gauge", "Agent process status.");
        char *save = NULL;
        for (char *line = strtok_r(status, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *colon = strchr(line, ':');
            if (!colon)
                continue;
            char *end;
            unsigned long long v = strtoull(colon + 1, &end, 10);
            while (*end == ' ' || *end == '\t')
                end++;
            /* Numeric lines only (sizes in kB, as the Rust agent reports them). */
            if (end == colon + 1 || (*end && strcmp(end, "kB") != 0))
                continue;
            char key[64], num[32];
            snprintf(key, sizeof(key), "%.*s", (int)(colon - line), line);
            for (char *k = key; *k; k++)
                *k = (*k >= 'A' && *k <= 'Z') ? (char)(*k - 'A' + 'a') : *k;
            snprintf(num, sizeof(num), "%llu", v);
            sample1(b, "kata_agent_proc_status", "item", key, num);
        }
    }
    cleanup_free char *io = read_text("/proc/self/io");
    if (io) {
        family(b, "kata_agent_io_stat", "gauge", "Agent process IO statistics.");
        char *save = NULL;
        for (char *line = strtok_r(io, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *colon = strchr(line, ':');
            if (!colon)
                continue;
            *colon = '\0';
            char num[32];
            snprintf(num, sizeof(num), "%llu", strtoull(colon + 1, NULL, 10));
            sample1(b, "kata_agent_io_stat", "item", line, num);
        }
    }
}

static void guest_cpu_time(struct buf *b)
{
    cleanup_free char *stat = read_text("/proc/stat");
    if (!stat)
        return;
    static const char *const items[] = {"user", "nice",    "system", "idle",  "iowait",
                                        "irq",  "softirq", "steal",  "guest", "guest_nice"};
    long tck = sysconf(_SC_CLK_TCK);
    family(b, "kata_guest_cpu_time", "gauge", "Guest CPU statistics.");
    char *save = NULL;
    for (char *line = strtok_r(stat, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "cpu", 3) != 0)
            continue;
        char cpu[32];
        char *p = line + 3;
        if (*p == ' ')
            snprintf(cpu, sizeof(cpu), "total");
        else
            snprintf(cpu, sizeof(cpu), "%.*s", (int)strcspn(p, " "), p);
        p += strcspn(p, " ");
        for (size_t i = 0; i < KA_ARRAY_SIZE(items); i++) {
            char *end;
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p)
                break;
            p = end;
            char num[32];
            /* Milliseconds, as the Rust agent reports them. */
            snprintf(num, sizeof(num), "%llu", v * 1000 / (unsigned long long)tck);
            sample2(b, "kata_guest_cpu_time", "cpu", cpu, "item", items[i], num);
        }
    }
}

/* One sample per number in text (whitespace-separated counters, as /proc prints
 * them), labelled item=items[i], until the numbers or the names run out. */
static void sample_columns(struct buf *b, const char *metric, const char *label, const char *value,
                           const char *const *items, size_t n, const char *text)
{
    for (size_t i = 0; i < n; i++) {
        char *end;
        unsigned long long v = strtoull(text, &end, 10);
        if (end == text)
            return;
        text = end;
        char num[32];
        snprintf(num, sizeof(num), "%llu", v);
        sample2(b, metric, label, value, "item", items[i], num);
    }
}

static void guest_netdev(struct buf *b)
{
    cleanup_free char *dev = read_text("/proc/net/dev");
    if (!dev)
        return;
    static const char *const items[] = {"recv_bytes",      "recv_packets",   "recv_errs",
                                        "recv_drop",       "recv_fifo",      "recv_frame",
                                        "recv_compressed", "recv_multicast", "sent_bytes",
                                        "sent_packets",    "sent_errs",      "sent_drop",
                                        "sent_fifo",       "sent_colls",     "sent_carrier",
                                        "sent_compressed"};
    family(b, "kata_guest_netdev_stat", "gauge", "Guest net devices statistics.");
    char *save = NULL;
    for (char *line = strtok_r(dev, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue; /* the two header lines */
        *colon = '\0';
        char *name = line + strspn(line, " ");
        sample_columns(b, "kata_guest_netdev_stat", "interface", name, items, KA_ARRAY_SIZE(items),
                       colon + 1);
    }
}

static void guest_diskstats(struct buf *b)
{
    cleanup_free char *ds = read_text("/proc/diskstats");
    if (!ds)
        return;
    static const char *const items[] = {"reads",
                                        "merged",
                                        "sectors_read",
                                        "time_reading",
                                        "writes",
                                        "writes_merged",
                                        "sectors_written",
                                        "time_writing",
                                        "in_progress",
                                        "time_in_progress",
                                        "weighted_time_in_progress"};
    family(b, "kata_guest_diskstat", "gauge", "Disks statistics in system.");
    char *save = NULL;
    for (char *line = strtok_r(ds, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        unsigned maj, min;
        char name[64];
        int off = 0;
        if (sscanf(line, " %u %u %63s %n", &maj, &min, name, &off) != 3)
            continue;
        sample_columns(b, "kata_guest_diskstat", "disk", name, items, KA_ARRAY_SIZE(items),
                       line + off);
    }
}

static void guest_metrics(struct buf *b)
{
    double l1, l5, l15;
    unsigned cur, max;
    cleanup_file FILE *f = fopen("/proc/loadavg", "re");
    if (f && fscanf(f, "%lf %lf %lf %u/%u", &l1, &l5, &l15, &cur, &max) == 5) {
        char num[32];
        family(b, "kata_guest_load", "gauge", "Guest system load.");
        snprintf(num, sizeof(num), "%.2f", l1);
        sample1(b, "kata_guest_load", "item", "load1", num);
        snprintf(num, sizeof(num), "%.2f", l5);
        sample1(b, "kata_guest_load", "item", "load5", num);
        snprintf(num, sizeof(num), "%.2f", l15);
        sample1(b, "kata_guest_load", "item", "load15", num);
        family(b, "kata_guest_tasks", "gauge", "Guest system load.");
        snprintf(num, sizeof(num), "%u", cur);
        sample1(b, "kata_guest_tasks", "item", "cur", num);
        snprintf(num, sizeof(num), "%u", max);
        sample1(b, "kata_guest_tasks", "item", "max", num);
    }
    guest_cpu_time(b);
    cleanup_free char *vm = read_text("/proc/vmstat");
    if (vm) {
        family(b, "kata_guest_vm_stat", "gauge", "Guest virtual memory statistics.");
        char *save = NULL;
        for (char *line = strtok_r(vm, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *sp = strchr(line, ' ');
            if (!sp)
                continue;
            *sp = '\0';
            char num[32];
            snprintf(num, sizeof(num), "%lld", strtoll(sp + 1, NULL, 10));
            sample1(b, "kata_guest_vm_stat", "item", line, num);
        }
    }
    guest_netdev(b);
    guest_diskstats(b);
    cleanup_free char *mi = read_text("/proc/meminfo");
    if (mi) {
        family(b, "kata_guest_meminfo", "gauge", "Statistics about memory usage in the system.");
        char *save = NULL;
        for (char *line = strtok_r(mi, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *colon = strchr(line, ':');
            if (!colon)
                continue;
            char key[64], num[32];
            snake(line, (size_t)(colon - line), key, sizeof(key));
            char *end;
            unsigned long long v = strtoull(colon + 1, &end, 10);
            /* Bytes, as the Rust agent (procfs) reports them. */
            if (strstr(end, "kB"))
                v *= 1024;
            snprintf(num, sizeof(num), "%llu", v);
            sample1(b, "kata_guest_meminfo", "item", key, num);
        }
    }
}

static int get_metrics(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                       struct ka_error *err)
{
    (void)a, (void)m, (void)err;
    struct buf b = {0};
    scrape_count++;
    family(&b, "kata_agent_scrape_count", "counter", "Metrics scrape count");
    buf_printf(&b, "kata_agent_scrape_count %" PRIu64 "\n", scrape_count);
    agent_metrics(&b);
    guest_metrics(&b);
    Grpc__Metrics resp = GRPC__METRICS__INIT;
    resp.metrics = b.p;
    rpc_reply(call, &resp.base);
    free(b.p);
    return 0;
}

const struct rpc_handler rpc_guest_handlers[] = {
    {"CopyFile", copy_file},
    {"SetGuestDateTime", set_guest_date_time},
    {"ReseedRandomDev", reseed_random_dev},
    {"MemHotplugByProbe", mem_hotplug_by_probe},
    {"AddSwap", add_swap},
    {"AddSwapPath", add_swap_path},
    {"GetVolumeStats", get_volume_stats},
    {"GetMetrics", get_metrics},
    {NULL, NULL},
};
