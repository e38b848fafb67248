/* Agent configuration: defaults, then the kernel command line (agent.* options),
 * then KATA_AGENT_* environment variables, then command-line flags. A bad value is
 * logged and the default kept: PID 1 must not abort on a typo. */
#ifndef KA_CORE_CONFIG_H
#define KA_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

#define KA_DEFAULT_SERVER_ADDR "vsock://-1:1024"
#define KA_DEFAULT_HOTPLUG_TIMEOUT_S 3
#define KA_CONFIG_STR_MAX 512

/* ---- mem-agent (agent.mem_agent_*) ------------------------------------------
 * Upstream's option names and defaults (src/libs/mem-agent memcg.rs/compact.rs,
 * src/agent/src/config.rs); the engine is agent/memagent/. */
struct ka_memcg_config {
    bool disabled;                         /* false */
    bool swap;                             /* false: reclaim page cache only */
    uint8_t swappiness_max;                /* 50 */
    uint64_t period_secs;                  /* 600 */
    uint8_t period_psi_percent_limit;      /* 1 */
    uint8_t eviction_psi_percent_limit;    /* 1 */
    uint64_t eviction_run_aging_count_min; /* 3 */
};

struct ka_compact_config {
    bool disabled;                     /* false */
    uint64_t period_secs;              /* 600 */
    uint8_t period_psi_percent_limit;  /* 1 */
    uint8_t compact_psi_percent_limit; /* 5 */
    int64_t compact_sec_max;           /* 300 */
    uint8_t compact_order;             /* 9 (PAGE_REPORTING_MIN_ORDER) */
    uint64_t compact_threshold;        /* 1024 pages (2 << 9) */
    uint64_t compact_force_times;      /* INT64_MAX: never forced */
};

struct ka_mem_agent_config {
    bool enable; /* agent.mem_agent_enable; everything else is read even when off */
    struct ka_memcg_config memcg;
    struct ka_compact_config compact;
};

/* A period longer than this is refused (timerfd takes time_t; 136 years is "never"). */
#define KA_MEM_AGENT_PERIOD_MAX UINT32_MAX

void ka_mem_agent_config_defaults(struct ka_mem_agent_config *c);

struct ka_config {
    enum ka_log_level log_level;
    char server_addr[KA_CONFIG_STR_MAX];
    bool debug_console;
    uint32_t debug_console_vport;
    /* Our own: serve the debug console on a virtio-serial port instead of (or as well
     * as) vsock, for hosts without vhost-vsock. A port name ("console.0"), a device
     * path ("/dev/vport1p2") or a full address (serial://, unix://, vsock://). */
    char debug_console_port[KA_CONFIG_STR_MAX];
    uint32_t log_vport;
    uint32_t hotplug_timeout_s;
    uint32_t container_pipe_size;
    bool unified_cgroup_hierarchy;
    bool devmode;
    /* Our own, for tests only: admit vsock peers on the guest's own CID (1, loopback)
     * as well as the host. Off by default: with it a container can drive the agent. */
    bool vsock_allow_local;
    bool tracing;
    uint32_t passfd_listener_port;
    char https_proxy[KA_CONFIG_STR_MAX];
    char no_proxy[KA_CONFIG_STR_MAX];
    char config_file[KA_CONFIG_STR_MAX];
    /* Our own: agent.modules=a,b: kernel modules to load in init mode, on top of
     * those listed in /etc/kata-agent/modules (comma-separated names). */
    char modules[KA_CONFIG_STR_MAX];
    unsigned warnings;    /* bad values seen (each one logged, default kept) */
    unsigned unsupported; /* known Kata options this agent does not act on (each logged) */
    /* agent.mem_agent_* (parse_mem_agent_option) */
    struct ka_mem_agent_config mem_agent;
};

void ka_config_defaults(struct ka_config *cfg);

/* Apply a kernel command line (the text of /proc/cmdline). Unknown keys are
 * ignored: the cmdline carries options for the kernel and everyone else too. */
void ka_config_parse_cmdline(struct ka_config *cfg, const char *cmdline);

/* Apply KATA_AGENT_SERVER_ADDR, KATA_AGENT_LOG_LEVEL and KATA_AGENT_TRACING
 * through a getenv-like lookup (getenv in the agent, a table in tests). */
void ka_config_apply_env(struct ka_config *cfg, const char *(*lookup)(const char *name));

/* Read a whole small file (the cmdline) into buf, NUL-terminated. Returns the
 * length, or -errno. Content beyond size-1 bytes is dropped. */
long ka_config_read_file(const char *path, char *buf, size_t size);

/* Kata's boolean rule: true/false, or an integer where non-zero is true.
 * Returns false (and leaves *out alone) when the text is neither. */
bool ka_config_parse_bool(const char *s, bool *out);

/* Set one option by key (without the "agent." prefix) from text; used by the
 * cmdline parser and by flags. Returns false when the value was rejected. */
bool ka_config_set(struct ka_config *cfg, const char *key, const char *value);

#endif
