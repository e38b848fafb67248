/* The mem-agent's timers and live configuration. */
#include "memagent/memagent_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

uint64_t ka_mem_agent_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void ka_mem_agent_arm(int timer_fd, int64_t ms)
{
    struct itimerspec its = {0};
    if (ms >= 0) {
        its.it_value.tv_sec = (time_t)(ms / 1000);
        its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
        if (ms == 0)
            its.it_value.tv_nsec = 1; /* all zero would disarm */
    }
    timerfd_settime(timer_fd, 0, &its, NULL);
}

static int64_t period_ms(uint64_t secs)
{
    return (int64_t)(secs > KA_MEM_AGENT_PERIOD_MAX ? KA_MEM_AGENT_PERIOD_MAX : secs) * 1000;
}

int ka_mem_agent_pressure(const char *dir, const char *mem_name, const char *io_name,
                          uint64_t *total_us)
{
    const char *names[] = {mem_name, io_name};
    uint64_t sum = 0;
    for (size_t i = 0; i < KA_ARRAY_SIZE(names); i++) {
        char path[PATH_MAX + 32], buf[512];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        long n = ka_config_read_file(path, buf, sizeof(buf));
        if (n < 0)
            return (int)n;
        uint64_t v;
        int rc = ka_psi_parse_some_total(buf, &v);
        if (rc < 0)
            return rc;
        sum += v;
    }
    *total_us = sum;
    return 0;
}

static void drain(int fd)
{
    uint64_t ticks;
    while (read(fd, &ticks, sizeof(ticks)) > 0)
        ;
}

static void on_memcg_timer(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ka_mem_agent *ma = w->data;
    drain(ma->memcg_timer);
    if (ma->memcg.disabled)
        return;
    ka_memcg_period(ma);
    /* The next period counts from the end of this one's scan, as upstream's reset_timers. */
    ka_mem_agent_arm(ma->memcg_timer, period_ms(ma->memcg.period_secs));
}

static void on_step_timer(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ka_mem_agent *ma = w->data;
    drain(ma->step_timer);
    ka_memcg_step(ma);
}

static void on_compact_timer(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ka_mem_agent *ma = w->data;
    drain(ma->compact_timer);
    if (ma->compact.disabled || ma->compact_pid > 0)
        return;
    ka_compact_period(ma); /* re-arms the timer itself, at once or when the child is gone */
}

static void on_progress_timer(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ka_mem_agent *ma = w->data;
    drain(ma->progress_timer);
    ka_compact_progress(ma);
}

static int add_timer(struct ka_mem_agent *ma, int *fd, struct ka_watch *w, ka_watch_fn fn,
                     struct ka_error *err)
{
    *fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (*fd < 0)
        return ka_error_set(err, errno, "mem-agent: timerfd_create");
    return ka_reactor_add(ma->reactor, w, *fd, EPOLLIN, fn, ma, err);
}

static bool file_exists(const char *dir, const char *name, int mode)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, mode) == 0;
}

struct ka_mem_agent *ka_mem_agent_start(struct ka_reactor *r, const struct ka_mem_agent_config *c,
                                        const struct ka_mem_agent_paths *paths,
                                        struct ka_error *err)
{
    struct ka_mem_agent *ma = ka_xcalloc(1, sizeof(*ma));
    ma->reactor = r;
    ma->memcg = c->memcg;
    ma->compact = c->compact;
    ma->memcg_timer = ma->step_timer = ma->compact_timer = ma->progress_timer = -1;
    ma->compact_killed_s = -1;
    snprintf(ma->proc, sizeof(ma->proc), "%s", paths && paths->proc ? paths->proc : "/proc");
    snprintf(ma->cgroup, sizeof(ma->cgroup), "%s",
             paths && paths->cgroup ? paths->cgroup : "/sys/fs/cgroup");

    if (add_timer(ma, &ma->memcg_timer, &ma->memcg_watch, on_memcg_timer, err) < 0 ||
        add_timer(ma, &ma->step_timer, &ma->step_watch, on_step_timer, err) < 0 ||
        add_timer(ma, &ma->compact_timer, &ma->compact_watch, on_compact_timer, err) < 0 ||
        add_timer(ma, &ma->progress_timer, &ma->progress_watch, on_progress_timer, err) < 0) {
        ka_mem_agent_stop(ma);
        return NULL;
    }

    /* cgroup v2 has cgroup.controllers at its root; v1 and MGLRU-only reclaim are
     * not done (upstream's lru_gen interface): said once, here. */
    ma->stats.memcg_available = file_exists(ma->cgroup, "cgroup.controllers", R_OK) &&
                                file_exists(ma->cgroup, "cgroup.subtree_control", R_OK);
    char pressure[PATH_MAX + 16];
    snprintf(pressure, sizeof(pressure), "%s/pressure", ma->proc);
    uint64_t total;
    bool psi = ka_mem_agent_pressure(pressure, "memory", "io", &total) == 0;
    char sysvm[PATH_MAX + 16];
    snprintf(sysvm, sizeof(sysvm), "%s/sys/vm", ma->proc);
    ma->stats.compact_available = file_exists(sysvm, "compact_memory", W_OK);
    if (!psi)
        ka_log(KA_LOG_WARN, "mem-agent",
               "%s/memory and io unreadable (kernel without CONFIG_PSI, or psi=0): nothing "
               "will be reclaimed or compacted",
               pressure);
    if (!ma->stats.memcg_available)
        ka_log(KA_LOG_WARN, "mem-agent",
               "%s is not a cgroup v2 hierarchy: memcg reclaim needs memory.reclaim, idle",
               ma->cgroup);
    if (!ma->stats.compact_available)
        ka_log(KA_LOG_WARN, "mem-agent", "%s/compact_memory is not writable: compaction idle",
               sysvm);
    ka_log_kv(KA_LOG_INFO, "mem-agent", "mem-agent started", "memcg",
              ma->memcg.disabled ? "disabled" : "enabled", "compact",
              ma->compact.disabled ? "disabled" : "enabled", NULL);

    /* Both run first right away, as upstream's timers start expired. */
    if (!ma->memcg.disabled)
        ka_mem_agent_arm(ma->memcg_timer, 0);
    if (!ma->compact.disabled)
        ka_mem_agent_arm(ma->compact_timer, 0);
    return ma;
}

static void del_timer(int *fd, struct ka_watch *w)
{
    if (*fd < 0)
        return;
    ka_reactor_del(w);
    close(*fd);
    *fd = -1;
}

void ka_mem_agent_stop(struct ka_mem_agent *ma)
{
    if (!ma)
        return;
    ka_compact_kill(ma, true);
    del_timer(&ma->memcg_timer, &ma->memcg_watch);
    del_timer(&ma->step_timer, &ma->step_watch);
    del_timer(&ma->compact_timer, &ma->compact_watch);
    del_timer(&ma->progress_timer, &ma->progress_watch);
    ka_memcg_free(ma);
    free(ma);
}

const struct ka_memcg_config *ka_mem_agent_memcg_config(const struct ka_mem_agent *ma)
{
    return &ma->memcg;
}

const struct ka_compact_config *ka_mem_agent_compact_config(const struct ka_mem_agent *ma)
{
    return &ma->compact;
}

void ka_mem_agent_set_memcg(struct ka_mem_agent *ma, const struct ka_memcg_config *c)
{
    if (!ka_memcg_config_apply(&ma->memcg, c))
        return;
    if (ma->memcg.disabled)
        ka_memcg_cancel(ma);
    /* Upstream makes a fresh, already expired timer for a new period: run now. */
    ka_mem_agent_arm(ma->memcg_timer, ma->memcg.disabled ? -1 : 0);
    ka_log(KA_LOG_INFO, "mem-agent", "memcg %s, period %llus",
           ma->memcg.disabled ? "disabled" : "enabled", (unsigned long long)ma->memcg.period_secs);
}

void ka_mem_agent_set_compact(struct ka_mem_agent *ma, const struct ka_compact_config *c)
{
    if (!ka_compact_config_apply(&ma->compact, c))
        return;
    /* Upstream: enabling restarts the wait, a new period applies to the wait under
     * way; neither runs a compaction at once. A running one finishes as it is. */
    if (ma->compact_pid <= 0)
        ka_mem_agent_arm(ma->compact_timer,
                         ma->compact.disabled ? -1 : period_ms(ma->compact.period_secs));
    ka_log(KA_LOG_INFO, "mem-agent", "compact %s, period %llus",
           ma->compact.disabled ? "disabled" : "enabled",
           (unsigned long long)ma->compact.period_secs);
}

void ka_mem_agent_get_stats(const struct ka_mem_agent *ma, struct ka_mem_agent_stats *out)
{
    *out = ma->stats;
}
