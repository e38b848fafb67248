/* The mem-agent's memory cgroup job (upstream memcg.rs), on cgroup v2's
 * memory.reclaim. */
#include "memagent/memagent_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

struct found {
    char **paths;
    ino_t *inos;
    size_t n;
};

/* root/rel/name; a path too long comes out empty, and opening "" fails. */
static void join(char *out, size_t size, const char *root, const char *rel, const char *name)
{
    int n = snprintf(out, size, "%s%s%s%s%s", root, rel[0] ? "/" : "", rel, name ? "/" : "",
                     name ? name : "");
    if (n < 0 || (size_t)n >= size)
        out[0] = '\0';
}

/* Leaf cgroups below the root that have memory.reclaim: pages are charged to the
 * leaves (v2's no-internal-process rule), and reclaiming a parent would reclaim
 * its children a second time. Bounded in depth and count. */
static bool walk(struct ka_mem_agent *ma, const char *rel, int depth, struct found *f)
{
    char path[PATH_MAX];
    join(path, sizeof(path), ma->cgroup, rel, NULL);
    cleanup_dir DIR *d = opendir(path);
    if (!d)
        return false;
    bool has_children = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        has_children = true;
        char child[PATH_MAX];
        if (snprintf(child, sizeof(child), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >=
            (int)sizeof(child))
            continue;
        if (depth + 1 < KA_MEMCG_MAX_DEPTH && f->n < KA_MEMCG_MAX_CGROUPS)
            walk(ma, child, depth + 1, f);
    }
    if (has_children || rel[0] == '\0' || f->n >= KA_MEMCG_MAX_CGROUPS)
        return true;
    char reclaim[PATH_MAX + 16];
    join(reclaim, sizeof(reclaim), ma->cgroup, rel, "memory.reclaim");
    struct stat st;
    if (access(reclaim, W_OK) != 0 || stat(path, &st) != 0)
        return true;
    f->paths = ka_xrealloc(f->paths, (f->n + 1) * sizeof(*f->paths));
    f->inos = ka_xrealloc(f->inos, (f->n + 1) * sizeof(*f->inos));
    f->paths[f->n] = ka_xstrdup(rel);
    f->inos[f->n] = st.st_ino;
    f->n++;
    return true;
}

static struct ka_memcg_entry *entry_for(struct ka_mem_agent *ma, const char *rel, ino_t ino)
{
    for (size_t i = 0; i < ma->n_cgroups; i++)
        if (ma->cgroups[i].ino == ino && strcmp(ma->cgroups[i].path, rel) == 0)
            return &ma->cgroups[i];
    ma->cgroups = ka_xrealloc(ma->cgroups, (ma->n_cgroups + 1) * sizeof(*ma->cgroups));
    struct ka_memcg_entry *e = &ma->cgroups[ma->n_cgroups++];
    memset(e, 0, sizeof(*e));
    e->path = ka_xstrdup(rel);
    e->ino = ino;
    return e;
}

static void free_queue(struct ka_mem_agent *ma)
{
    for (size_t i = 0; i < ma->n_queue; i++)
        free(ma->queue[i]);
    free(ma->queue);
    ma->queue = NULL;
    ma->n_queue = 0;
    memset(&ma->ev, 0, sizeof(ma->ev));
}

void ka_memcg_cancel(struct ka_mem_agent *ma)
{
    if (ma->step_timer >= 0)
        ka_mem_agent_arm(ma->step_timer, -1);
    free_queue(ma);
}

void ka_memcg_free(struct ka_mem_agent *ma)
{
    free_queue(ma);
    for (size_t i = 0; i < ma->n_cgroups; i++)
        free(ma->cgroups[i].path);
    free(ma->cgroups);
    ma->cgroups = NULL;
    ma->n_cgroups = 0;
}

static int cgroup_pressure(struct ka_mem_agent *ma, const char *rel, uint64_t *total)
{
    char dir[PATH_MAX];
    join(dir, sizeof(dir), ma->cgroup, rel, NULL);
    return ka_mem_agent_pressure(dir, "memory.pressure", "io.pressure", total);
}

void ka_memcg_period(struct ka_mem_agent *ma)
{
    ma->stats.memcg_runs++;
    if (!ma->stats.memcg_available)
        return;
    if (ma->n_queue > 0) {
        ka_log(KA_LOG_INFO, "mem-agent", "memcg: last period's eviction still running");
        return;
    }
    struct found f = {0};
    walk(ma, "", 0, &f);
    for (size_t i = 0; i < ma->n_cgroups; i++)
        ma->cgroups[i].seen = false;
    uint64_t now = ka_mem_agent_now_us();
    for (size_t i = 0; i < f.n; i++) {
        struct ka_memcg_entry *e = entry_for(ma, f.paths[i], f.inos[i]);
        e->seen = true;
        uint64_t total;
        if (cgroup_pressure(ma, e->path, &total) < 0)
            continue; /* upstream skips a cgroup whose pressure it cannot read */
        uint64_t percent = ka_psi_period_percent(&e->psi, total, now);
        if (percent > ma->memcg.period_psi_percent_limit) {
            ka_log(KA_LOG_INFO, "mem-agent", "memcg %s: pressure %llu%% over %u%%, left alone",
                   e->path, (unsigned long long)percent, ma->memcg.period_psi_percent_limit);
            continue;
        }
        /* Memory idle through this many quiet periods is cold enough to evict
         * (upstream: MGLRU aging runs before the oldest generation is evicted). */
        if (++e->aging_count < ma->memcg.eviction_run_aging_count_min)
            continue;
        ma->queue = ka_xrealloc(ma->queue, (ma->n_queue + 1) * sizeof(*ma->queue));
        ma->queue[ma->n_queue++] = ka_xstrdup(e->path);
    }
    /* Forget cgroups that are gone (compacting the table in place). */
    size_t keep = 0;
    for (size_t i = 0; i < ma->n_cgroups; i++) {
        if (ma->cgroups[i].seen)
            ma->cgroups[keep++] = ma->cgroups[i];
        else
            free(ma->cgroups[i].path);
    }
    ma->n_cgroups = keep;
    for (size_t i = 0; i < f.n; i++)
        free(f.paths[i]);
    free(f.paths);
    free(f.inos);
    if (ma->n_queue > 0)
        ka_mem_agent_arm(ma->step_timer, 0);
}

/* Upstream's swap_not_available: less than 256 pages of swap free. */
static bool swap_usable(struct ka_mem_agent *ma)
{
    char path[PATH_MAX + 16], buf[8192];
    snprintf(path, sizeof(path), "%s/meminfo", ma->proc);
    uint64_t kb;
    if (ka_config_read_file(path, buf, sizeof(buf)) < 0 || ka_meminfo_get(buf, "SwapFree", &kb) < 0)
        return false;
    return kb > 256 * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

static bool begin_eviction(struct ka_mem_agent *ma, const char *rel)
{
    char path[PATH_MAX + 16], stat[8192];
    join(path, sizeof(path), ma->cgroup, rel, "memory.stat");
    uint64_t file = 0, anon = 0;
    if (ka_config_read_file(path, stat, sizeof(stat)) < 0 ||
        ka_memstat_get(stat, "inactive_file", &file) < 0)
        return false;
    ka_memstat_get(stat, "inactive_anon", &anon);
    struct ka_eviction *ev = &ma->ev;
    ev->swappiness = ka_memcg_swappiness(&ma->memcg, ma->memcg.swap && swap_usable(ma), anon, file);
    ev->remaining = file + (ev->swappiness > 0 ? anon : 0);
    if (ev->remaining == 0)
        return false;
    ev->steps = 0;
    memset(&ev->psi, 0, sizeof(ev->psi));
    uint64_t total;
    if (cgroup_pressure(ma, rel, &total) < 0)
        return false;
    ka_psi_period_percent(&ev->psi, total, ka_mem_agent_now_us());
    ev->active = true;
    return true;
}

/* One memory.reclaim write. 0, or -errno (EAGAIN: the kernel found too little). */
static int reclaim_once(struct ka_mem_agent *ma, const char *rel, uint64_t bytes)
{
    char path[PATH_MAX + 16], req[64];
    join(path, sizeof(path), ma->cgroup, rel, "memory.reclaim");
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    for (;;) {
        int len = ma->reclaim_no_swappiness
                      ? snprintf(req, sizeof(req), "%llu", (unsigned long long)bytes)
                      : snprintf(req, sizeof(req), "%llu swappiness=%u", (unsigned long long)bytes,
                                 ma->ev.swappiness);
        if (write(fd, req, (size_t)len) == len)
            return 0;
        /* Kernels before 6.13 take no swappiness= key. */
        if (errno == EINVAL && !ma->reclaim_no_swappiness) {
            ma->reclaim_no_swappiness = true;
            ka_log(KA_LOG_INFO, "mem-agent", "memory.reclaim takes no swappiness=");
            continue;
        }
        return -errno;
    }
}

void ka_memcg_step(struct ka_mem_agent *ma)
{
    while (ma->ev.index < ma->n_queue) {
        const char *rel = ma->queue[ma->ev.index];
        struct ka_eviction *ev = &ma->ev;
        bool done = false;
        if (!ev->active) {
            done = !begin_eviction(ma, rel);
        } else {
            uint64_t total, percent;
            if (cgroup_pressure(ma, rel, &total) < 0)
                done = true;
            else if ((percent = ka_psi_period_percent(&ev->psi, total, ka_mem_agent_now_us())) >
                     ma->memcg.eviction_psi_percent_limit) {
                ka_log(KA_LOG_INFO, "mem-agent", "memcg %s: eviction stopped, pressure %llu%%", rel,
                       (unsigned long long)percent);
                done = true;
            }
        }
        if (!done) {
            uint64_t bytes =
                ev->remaining < KA_MEMCG_RECLAIM_STEP ? ev->remaining : KA_MEMCG_RECLAIM_STEP;
            int rc = reclaim_once(ma, rel, bytes);
            if (rc == 0) {
                ma->stats.reclaim_writes++;
                ma->stats.reclaimed_bytes += bytes;
                ev->remaining -= bytes;
                ev->steps++;
            } else if (rc != -EAGAIN) {
                ka_log(KA_LOG_WARN, "mem-agent", "memcg %s: memory.reclaim: %s", rel,
                       strerror(-rc));
            }
            done = rc < 0 || ev->remaining == 0 || ev->steps >= KA_MEMCG_RECLAIM_MAX_STEPS;
            if (!done) {
                /* Give the loop back between two writes. */
                ka_mem_agent_arm(ma->step_timer, KA_MEMCG_STEP_GAP_MS);
                return;
            }
        }
        if (ev->active)
            ka_log(KA_LOG_DEBUG, "mem-agent", "memcg %s: evicted in %u steps", rel, ev->steps);
        ev->active = false;
        ev->index++;
    }
    free_queue(ma);
}
