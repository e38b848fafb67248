/* The mem-agent's compaction job (upstream compact.rs). */
#include "memagent/memagent_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/child.h"
#include "core/log.h"
#include "core/util.h"

/* /proc/pagetypeinfo grows with nodes and zones; a guest has a few of each. */
#define PAGETYPEINFO_MAX (64 * 1024)

static int read_counters(struct ka_mem_agent *ma, uint64_t *memfree_kb, uint64_t *free_movable)
{
    char path[PATH_MAX + 32];
    char meminfo[8192];
    snprintf(path, sizeof(path), "%s/meminfo", ma->proc);
    long n = ka_config_read_file(path, meminfo, sizeof(meminfo));
    if (n < 0)
        return (int)n;
    int rc = ka_meminfo_get(meminfo, "MemFree", memfree_kb);
    if (rc < 0)
        return rc;
    cleanup_free char *pti = ka_xmalloc(PAGETYPEINFO_MAX);
    snprintf(path, sizeof(path), "%s/pagetypeinfo", ma->proc);
    n = ka_config_read_file(path, pti, PAGETYPEINFO_MAX);
    if (n < 0)
        return (int)n;
    *free_movable = ka_pagetypeinfo_free_movable(pti, ma->compact.compact_order);
    return 0;
}

static int system_psi_percent(struct ka_mem_agent *ma, struct ka_psi_period *p, uint64_t *percent)
{
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/pressure", ma->proc);
    uint64_t total;
    int rc = ka_mem_agent_pressure(dir, "memory", "io", &total);
    if (rc < 0)
        return rc;
    *percent = ka_psi_period_percent(p, total, ka_mem_agent_now_us());
    return 0;
}

static void schedule_next(struct ka_mem_agent *ma)
{
    if (ma->compact.disabled)
        return;
    uint64_t s = ma->compact.period_secs > KA_MEM_AGENT_PERIOD_MAX ? KA_MEM_AGENT_PERIOD_MAX
                                                                   : ma->compact.period_secs;
    ka_mem_agent_arm(ma->compact_timer, (int64_t)s * 1000);
}

static void compaction_exited(void *data, pid_t pid, int wait_status)
{
    struct ka_mem_agent *ma = data;
    (void)pid;
    ma->compact_pid = 0;
    ka_mem_agent_arm(ma->progress_timer, -1);
    uint64_t memfree, movable;
    if (read_counters(ma, &memfree, &movable) == 0) {
        ma->cstate.prev_memfree_kb = memfree;
        ma->cstate.prev_free_movable = movable;
    }
    ma->cstate.force_counter = 0;
    char code[16];
    snprintf(code, sizeof(code), "%d", ka_exit_code(wait_status));
    ka_log_kv(KA_LOG_INFO, "mem-agent", "compaction done", "exit_code", code, NULL);
    schedule_next(ma);
}

/* The write blocks until the kernel has compacted every zone: a child does it, so
 * the loop keeps running and the child can be killed (compaction checks for fatal
 * signals between blocks). */
static int start_compaction(struct ka_mem_agent *ma, struct ka_error *err)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/sys/vm/compact_memory", ma->proc);
    pid_t pid = fork();
    if (pid < 0)
        return ka_error_set(err, errno, "fork");
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            _exit(1);
        _exit(write(fd, "1", 1) == 1 ? 0 : 1);
    }
    ma->compact_pid = pid;
    ma->compact_elapsed_s = 0;
    ma->compact_killed_s = -1;
    memset(&ma->compact_run_psi, 0, sizeof(ma->compact_run_psi));
    uint64_t ignored;
    system_psi_percent(ma, &ma->compact_run_psi, &ignored); /* the first sample */
    ka_child_watch(pid, compaction_exited, ma);
    ka_mem_agent_arm(ma->progress_timer, 1000);
    ma->stats.compactions++;
    ka_log(KA_LOG_INFO, "mem-agent", "compaction started (pid %d)", (int)pid);
    return 0;
}

void ka_compact_kill(struct ka_mem_agent *ma, bool forget)
{
    if (ma->compact_pid <= 0)
        return;
    if (ma->compact_killed_s < 0) {
        kill(ma->compact_pid, SIGKILL);
        ma->compact_killed_s = 0;
        ma->stats.compactions_killed++;
    }
    if (forget) {
        /* The reaper still reaps it, as a pid nobody watches. */
        ka_child_unwatch(ma->compact_pid);
        ma->compact_pid = 0;
    }
}

void ka_compact_progress(struct ka_mem_agent *ma)
{
    if (ma->compact_pid <= 0)
        return;
    if (ma->compact_killed_s >= 0) {
        if (++ma->compact_killed_s >= KA_COMPACT_KILL_GRACE_S) {
            ka_log(KA_LOG_ERROR, "mem-agent", "compaction pid %d killed but still running",
                   (int)ma->compact_pid);
            ka_child_unwatch(ma->compact_pid);
            ma->compact_pid = 0;
            schedule_next(ma);
            return;
        }
    } else {
        ma->compact_elapsed_s++;
        uint64_t percent = 0;
        if ((int64_t)ma->compact_elapsed_s >= ma->compact.compact_sec_max) {
            ka_log(KA_LOG_INFO, "mem-agent", "compaction stopped after %llds",
                   (long long)ma->compact_elapsed_s);
            ka_compact_kill(ma, false);
        } else if (system_psi_percent(ma, &ma->compact_run_psi, &percent) == 0 &&
                   percent > ma->compact.compact_psi_percent_limit) {
            ka_log(KA_LOG_INFO, "mem-agent", "compaction stopped: pressure %llu%% over %u%%",
                   (unsigned long long)percent, ma->compact.compact_psi_percent_limit);
            ka_compact_kill(ma, false);
        }
    }
    ka_mem_agent_arm(ma->progress_timer, 1000);
}

void ka_compact_period(struct ka_mem_agent *ma)
{
    ma->stats.compact_runs++;
    bool run = ma->stats.compact_available;
    uint64_t percent = 0;
    if (run && system_psi_percent(ma, &ma->compact_psi, &percent) < 0)
        run = false; /* upstream: no pressure figure, no compaction */
    if (run && percent > ma->compact.period_psi_percent_limit) {
        ka_log(KA_LOG_INFO, "mem-agent", "no compaction: pressure %llu%% over %u%%",
               (unsigned long long)percent, ma->compact.period_psi_percent_limit);
        run = false;
    }
    if (run && !ka_compact_force_due(&ma->compact, &ma->cstate)) {
        uint64_t memfree, movable;
        run = read_counters(ma, &memfree, &movable) == 0 &&
              ka_compact_threshold_reached(&ma->compact, &ma->cstate, memfree, movable);
        if (!run)
            ka_log(KA_LOG_DEBUG, "mem-agent", "no compaction: below the threshold");
    }
    struct ka_error err;
    if (run && start_compaction(ma, &err) == 0)
        return; /* the next period starts when it is over */
    if (run)
        ka_log(KA_LOG_WARN, "mem-agent", "compaction: %s", err.msg);
    ma->cstate.force_counter++;
    schedule_next(ma);
}
