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
