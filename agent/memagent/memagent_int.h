/* Shared between the mem-agent's files: the engine state. */
#ifndef KA_MEMAGENT_MEMAGENT_INT_H
#define KA_MEMAGENT_MEMAGENT_INT_H

#include <limits.h>
#include <sys/types.h>

#include "memagent/memagent.h"

/* memory.reclaim is written this much at a time, one write per reactor turn, so
 * the loop is never held for long (clean page cache goes at GB/s; a few MiB take
 * milliseconds even when some of it has to be written back or swapped). */
#define KA_MEMCG_RECLAIM_STEP (4u << 20)
/* At most this much is reclaimed from one cgroup per period. */
#define KA_MEMCG_RECLAIM_MAX_STEPS 256
/* Pause between two reclaim steps. */
#define KA_MEMCG_STEP_GAP_MS 5
/* Cgroups looked at per period, and how deep: the guest has a handful. */
#define KA_MEMCG_MAX_CGROUPS 1024
#define KA_MEMCG_MAX_DEPTH 16
/* After killing a compaction that does not go away, stop waiting for it. */
#define KA_COMPACT_KILL_GRACE_S 5

struct ka_memcg_entry {
    char *path; /* relative to the cgroup root */
    ino_t ino;  /* a cgroup removed and made again is a new one */
    struct ka_psi_period psi;
    uint64_t aging_count; /* periods seen with pressure under the limit */
    bool seen;
};

struct ka_eviction {
    bool active;
    size_t index; /* into the queue */
    uint64_t remaining;
    unsigned steps;
    unsigned swappiness;
    struct ka_psi_period psi;
};

struct ka_mem_agent {
    struct ka_reactor *reactor;
    char proc[PATH_MAX];
    char cgroup[PATH_MAX];
    struct ka_memcg_config memcg;
    struct ka_compact_config compact;
    struct ka_mem_agent_stats stats;

    /* memcg */
    int memcg_timer;
    struct ka_watch memcg_watch;
    struct ka_memcg_entry *cgroups;
    size_t n_cgroups;
    char **queue; /* cgroups to evict this period (relative paths) */
    size_t n_queue;
    struct ka_eviction ev;
    int step_timer;
    struct ka_watch step_watch;
    bool reclaim_no_swappiness; /* the kernel refused "swappiness=" (before 6.13) */

    /* compact */
    int compact_timer;
    struct ka_watch compact_watch;
    struct ka_psi_period compact_psi;
    struct ka_compact_state cstate;
    pid_t compact_pid; /* 0 when none runs */
    int compact_elapsed_s;
    int compact_killed_s; /* seconds since the kill, -1 before */
    struct ka_psi_period compact_run_psi;
    int progress_timer;
    struct ka_watch progress_watch;
};

uint64_t ka_mem_agent_now_us(void);
/* Arm a one-shot timer ms from now (0: as soon as possible); disarm with ms < 0. */
void ka_mem_agent_arm(int timer_fd, int64_t ms);
/* memory.pressure + io.pressure "some" totals of a directory (cgroup or /proc/pressure). */
int ka_mem_agent_pressure(const char *dir, const char *mem_name, const char *io_name,
                          uint64_t *total_us);

void ka_memcg_period(struct ka_mem_agent *ma);
void ka_memcg_step(struct ka_mem_agent *ma);
/* Drop an eviction under way (memcg disabled). */
void ka_memcg_cancel(struct ka_mem_agent *ma);
void ka_memcg_free(struct ka_mem_agent *ma);
void ka_compact_period(struct ka_mem_agent *ma);
void ka_compact_progress(struct ka_mem_agent *ma);
/* SIGKILL a running compaction; forget: stop watching it too (the agent stops). */
void ka_compact_kill(struct ka_mem_agent *ma, bool forget);

#endif
