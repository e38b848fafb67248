/* The mem-agent: Kata 3.x/4.x's memory helper for small guests (upstream
 * src/libs/mem-agent), on the agent's reactor instead of threads.
 *
 * Two jobs, each on its own period timer:
 *  - memcg: proactive reclaim of cold memory from the guest's memory cgroups. A
 *    cgroup whose pressure (memory.pressure + io.pressure, "some" stall time over
 *    the period) stays under period_psi_percent_limit for
 *    eviction_run_aging_count_min periods has its inactive page cache (and
 *    inactive anon, when swap is on and swap space is free) reclaimed through
 *    cgroup v2's memory.reclaim, a few MiB per reactor turn, stopping as soon as
 *    its pressure during the eviction exceeds eviction_psi_percent_limit or the
 *    kernel finds nothing more to reclaim. Upstream drives MGLRU generations
 *    through /sys/kernel/debug/lru_gen instead; memory.reclaim is what every v2
 *    kernel offers (and it uses MGLRU itself where that is enabled).
 *  - compact: memory compaction (/proc/sys/vm/compact_memory) when the system's
 *    pressure is low and free movable pages below compact_order have grown (or
 *    MemFree dropped) by compact_threshold pages since the last compaction, or
 *    every compact_force_times periods. The write blocks until the kernel is done,
 *    so it runs in a forked child that is killed after compact_sec_max seconds or
 *    when pressure exceeds compact_psi_percent_limit (checked every second), as
 *    upstream does.
 *
 * The parsers and decisions below are pure functions, unit-tested on synthetic
 * text; the /proc and cgroup roots are parameters so the engine can be pointed at
 * a fake tree. */
#ifndef KA_MEMAGENT_MEMAGENT_H
#define KA_MEMAGENT_MEMAGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "core/reactor.h"

/* ---- parsers ---------------------------------------------------------------- */

/* The "total=" of the first ("some") line of a PSI file, in microseconds. */
int ka_psi_parse_some_total(const char *text, uint64_t *total_us);

/* Stall percentage between two samples, upstream's psi::Period: the first sample,
 * a counter that went back, or no elapsed time give 0. */
struct ka_psi_period {
    uint64_t last_total_us;
    uint64_t last_sample_us;
};
uint64_t ka_psi_period_percent(struct ka_psi_period *p, uint64_t total_us, uint64_t now_us);

/* "Key: value" (meminfo, kB) or "key value" (memory.stat) lines. */
int ka_meminfo_get(const char *text, const char *key, uint64_t *value);
int ka_memstat_get(const char *text, const char *key, uint64_t *value);

/* Free pages of the Movable migrate type in blocks of order < `order`, in pages,
 * summed over every node and zone of /proc/pagetypeinfo. */
uint64_t ka_pagetypeinfo_free_movable(const char *text, unsigned order);

/* ---- decisions -------------------------------------------------------------- */

struct ka_compact_state {
    uint64_t force_counter;     /* periods since the last compaction */
    uint64_t prev_memfree_kb;   /* after the last compaction */
    uint64_t prev_free_movable; /* pages, after the last compaction */
};

/* Upstream's check_compact_threshold: MemFree dropped by more than threshold pages
 * (threshold << 2 kB), or free movable small-order pages grew beyond threshold. */
bool ka_compact_threshold_reached(const struct ka_compact_config *c,
                                  const struct ka_compact_state *s, uint64_t memfree_kb,
                                  uint64_t free_movable);
/* compact_force_times periods without a compaction force one (never at >= INT64_MAX). */
bool ka_compact_force_due(const struct ka_compact_config *c, const struct ka_compact_state *s);

/* memory.reclaim's swappiness for one eviction: 0 without swap, otherwise
 * 200 * anon / (anon + file) rounded, capped at swappiness_max; 200 when there is
 * no file memory left (anon only). */
unsigned ka_memcg_swappiness(const struct ka_memcg_config *c, bool swap_usable, uint64_t anon,
                             uint64_t file);

/* Apply a new configuration; true when the period timer has to be re-armed
 * (period or disabled changed), as upstream's set_config reports. */
bool ka_memcg_config_apply(struct ka_memcg_config *cur, const struct ka_memcg_config *next);
bool ka_compact_config_apply(struct ka_compact_config *cur, const struct ka_compact_config *next);

/* ---- the engine ------------------------------------------------------------- */

struct ka_mem_agent_paths {
    const char *proc;   /* "/proc" */
    const char *cgroup; /* "/sys/fs/cgroup" */
};

struct ka_mem_agent;

/* Start both jobs on r (their first run is right away, as upstream's). What the
 * kernel lacks (PSI, memory.reclaim, compact_memory) is logged and that part
 * idles; the RPCs still change its configuration. paths NULL: the real ones. */
struct ka_mem_agent *ka_mem_agent_start(struct ka_reactor *r, const struct ka_mem_agent_config *c,
                                        const struct ka_mem_agent_paths *paths,
                                        struct ka_error *err);
/* Stop the timers and kill a running compaction. NULL is fine. */
void ka_mem_agent_stop(struct ka_mem_agent *ma);

const struct ka_memcg_config *ka_mem_agent_memcg_config(const struct ka_mem_agent *ma);
const struct ka_compact_config *ka_mem_agent_compact_config(const struct ka_mem_agent *ma);
void ka_mem_agent_set_memcg(struct ka_mem_agent *ma, const struct ka_memcg_config *c);
void ka_mem_agent_set_compact(struct ka_mem_agent *ma, const struct ka_compact_config *c);

/* What the jobs did so far (for logs and tests). */
struct ka_mem_agent_stats {
    uint64_t memcg_runs;      /* memcg periods run */
    uint64_t reclaim_writes;  /* successful memory.reclaim writes */
    uint64_t reclaimed_bytes; /* bytes asked for by those writes */
    uint64_t compact_runs;    /* compact periods run */
    uint64_t compactions;     /* compactions started */
    uint64_t compactions_killed;
    bool memcg_available;
    bool compact_available;
};
void ka_mem_agent_get_stats(const struct ka_mem_agent *ma, struct ka_mem_agent_stats *out);

#endif
