#include "core/config.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void ka_config_defaults(struct ka_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = KA_LOG_INFO;
    snprintf(cfg->server_addr, sizeof(cfg->server_addr), "%s", KA_DEFAULT_SERVER_ADDR);
    cfg->hotplug_timeout_s = KA_DEFAULT_HOTPLUG_TIMEOUT_S;
    ka_mem_agent_config_defaults(&cfg->mem_agent);
}

bool ka_config_parse_bool(const char *s, bool *out)
{
    if (strcasecmp(s, "true") == 0) {
        *out = true;
        return true;
    }
    if (strcasecmp(s, "false") == 0) {
        *out = false;
        return true;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0)
        return false;
    *out = v != 0;
    return true;
}

static bool parse_u32(const char *s, uint32_t *out, bool allow_zero)
{
    char *end;
    if (*s == '\0' || *s == '-' || *s == '+')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0 || v > UINT32_MAX || (!allow_zero && v == 0))
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool set_string(char *dst, const char *value)
{
    size_t n = strlen(value);
    if (n >= KA_CONFIG_STR_MAX)
        return false;
    memcpy(dst, value, n + 1);
    return true;
}

/* A flag without "=value" ("agent.debug_console") means true for booleans. */
static bool set_bool(bool *dst, const char *value)
{
    if (value == NULL) {
        *dst = true;
        return true;
    }
    return ka_config_parse_bool(value, dst);
}

/* ---- mem-agent options ----------------------------------------------------- */

void ka_mem_agent_config_defaults(struct ka_mem_agent_config *c)
{
    memset(c, 0, sizeof(*c));
    c->memcg.swappiness_max = 50;
    c->memcg.period_secs = 10 * 60;
    c->memcg.period_psi_percent_limit = 1;
    c->memcg.eviction_psi_percent_limit = 1;
    c->memcg.eviction_run_aging_count_min = 3;
    c->compact.period_secs = 10 * 60;
    c->compact.period_psi_percent_limit = 1;
    c->compact.compact_psi_percent_limit = 5;
    c->compact.compact_sec_max = 5 * 60;
    c->compact.compact_order = 9;
    c->compact.compact_threshold = 2 << 9;
    c->compact.compact_force_times = INT64_MAX;
}

static bool ma_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (*s == '\0' || *s == '-' || *s == '+')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0)
        return false;
    *out = v;
    return true;
}

static bool ma_parse_u8(const char *s, uint8_t *out)
{
    uint64_t v;
    if (!ma_parse_u64(s, &v) || v > UINT8_MAX)
        return false;
    *out = (uint8_t)v;
    return true;
}

/* A period of 0 would make the agent work without pause: refused, default kept. */
static bool ma_parse_period(const char *s, uint64_t *out)
{
    uint64_t v;
    if (!ma_parse_u64(s, &v) || v == 0 || v > KA_MEM_AGENT_PERIOD_MAX)
        return false;
    *out = v;
    return true;
}

static bool ma_parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (*s == '\0')
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || errno != 0)
        return false;
    *out = v;
    return true;
}

/* agent.mem_agent_<key>. Unlike upstream, the sub-options do not have to follow
 * agent.mem_agent_enable on the cmdline: they are kept either way, and only
 * used when the mem-agent is enabled. */
static bool parse_mem_agent_option(struct ka_mem_agent_config *c, const char *key,
                                   const char *value)
{
    if (strcmp(key, "enable") == 0)
        return set_bool(&c->enable, value);
    if (strcmp(key, "memcg_disable") == 0)
        return set_bool(&c->memcg.disabled, value);
    if (strcmp(key, "memcg_swap") == 0)
        return set_bool(&c->memcg.swap, value);
    if (strcmp(key, "compact_disable") == 0)
        return set_bool(&c->compact.disabled, value);
    if (value == NULL)
        return false;
    if (strcmp(key, "memcg_swappiness_max") == 0)
        return ma_parse_u8(value, &c->memcg.swappiness_max);
    if (strcmp(key, "memcg_period_secs") == 0)
        return ma_parse_period(value, &c->memcg.period_secs);
    if (strcmp(key, "memcg_period_psi_percent_limit") == 0)
        return ma_parse_u8(value, &c->memcg.period_psi_percent_limit);
    if (strcmp(key, "memcg_eviction_psi_percent_limit") == 0)
        return ma_parse_u8(value, &c->memcg.eviction_psi_percent_limit);
    if (strcmp(key, "memcg_eviction_run_aging_count_min") == 0)
        return ma_parse_u64(value, &c->memcg.eviction_run_aging_count_min);
    if (strcmp(key, "compact_period_secs") == 0)
        return ma_parse_period(value, &c->compact.period_secs);
    if (strcmp(key, "compact_period_psi_percent_limit") == 0)
        return ma_parse_u8(value, &c->compact.period_psi_percent_limit);
    if (strcmp(key, "compact_psi_percent_limit") == 0)
        return ma_parse_u8(value, &c->compact.compact_psi_percent_limit);
    if (strcmp(key, "compact_sec_max") == 0)
        return ma_parse_i64(value, &c->compact.compact_sec_max);
    if (strcmp(key, "compact_order") == 0)
        return ma_parse_u8(value, &c->compact.compact_order);
    if (strcmp(key, "compact_threshold") == 0)
        return ma_parse_u64(value, &c->compact.compact_threshold);
    if (strcmp(key, "compact_force_times") == 0)
        return ma_parse_u64(value, &c->compact.compact_force_times);
    return true; /* an unknown mem_agent_* key is ignored like any other */
}

/* Options of Kata 4.1's agent (src/agent/src/config.rs) that this agent knows but
 * does not act on: they belong to confidential guests' helper processes (CDH,
 * attestation agent, image pull, CDI, secure storage) or to passfd I/O, none of
 * which exists here. A runtime may send any of them, so each is accepted, its
 * value ignored, and logged once per occurrence so nobody believes it applied. */
static const char *const unsupported_options[] = {
    "cdh_api_timeout",        "image_pull_timeout",       "cdi_timeout",
    "launch_process_timeout", "visible_cdi_devices",      "guest_components_rest_api",
    "guest_components_procs", "secure_storage_integrity",
};

static bool note_unsupported(struct ka_config *cfg, const char *key, const char *value)
{
    bool listed = false;
    for (size_t i = 0; i < KA_ARRAY_SIZE(unsupported_options) && !listed; i++)
        listed = strcmp(key, unsupported_options[i]) == 0;
    /* passfd I/O is not implemented: the port is parsed (and kept) but a non-zero
     * one is reported, since the runtime would expect a listener there. */
    if (!listed && strcmp(key, "passfd_listener_port") == 0)
        listed = value && value[0] != '\0' && strcmp(value, "0") != 0;
    if (!listed)
        return false;
    cfg->unsupported++;
    ka_log_kv(KA_LOG_WARN, "config", "option not supported by this agent, ignored", "option", key,
              "value", value ? value : "", NULL);
    return true;
}

bool ka_config_set(struct ka_config *cfg, const char *key, const char *value)
{
    if (strncmp(key, "mem_agent_", 10) == 0)
        return parse_mem_agent_option(&cfg->mem_agent, key + 10, value);
    if (note_unsupported(cfg, key, value) && strcmp(key, "passfd_listener_port") != 0)
        return true;
    if (strcmp(key, "debug_console") == 0)
        return set_bool(&cfg->debug_console, value);
    if (strcmp(key, "devmode") == 0)
        return set_bool(&cfg->devmode, value);
    if (strcmp(key, "vsock_allow_local") == 0)
        return set_bool(&cfg->vsock_allow_local, value);
    if (strcmp(key, "trace") == 0)
        return set_bool(&cfg->tracing, value);
    if (strcmp(key, "unified_cgroup_hierarchy") == 0)
        return set_bool(&cfg->unified_cgroup_hierarchy, value);
    if (value == NULL)
        return false; /* every other option needs a value */
    if (strcmp(key, "log") == 0)
        return ka_log_level_parse(value, &cfg->log_level);
    if (strcmp(key, "server_addr") == 0)
        return value[0] != '\0' && set_string(cfg->server_addr, value);
    if (strcmp(key, "debug_console_vport") == 0)
        return parse_u32(value, &cfg->debug_console_vport, false);
    if (strcmp(key, "log_vport") == 0)
        return parse_u32(value, &cfg->log_vport, false);
    if (strcmp(key, "hotplug_timeout") == 0)
        return parse_u32(value, &cfg->hotplug_timeout_s, false);
    if (strcmp(key, "container_pipe_size") == 0)
        return parse_u32(value, &cfg->container_pipe_size, true);
    if (strcmp(key, "passfd_listener_port") == 0)
        return parse_u32(value, &cfg->passfd_listener_port, true);
    if (strcmp(key, "https_proxy") == 0)
        return set_string(cfg->https_proxy, value);
    if (strcmp(key, "no_proxy") == 0)
        return set_string(cfg->no_proxy, value);
    if (strcmp(key, "config_file") == 0)
        return set_string(cfg->config_file, value);
    if (strcmp(key, "debug_console_port") == 0)
        return value[0] != '\0' && set_string(cfg->debug_console_port, value);
    if (strcmp(key, "modules") == 0)
        return set_string(cfg->modules, value);
    return true; /* unknown agent.* keys are ignored, as upstream does */
}

static void reject(struct ka_config *cfg, const char *where, const char *item)
{
    cfg->warnings++;
    /* "from", not "source": that key is Kata's own ("source":"agent"). */
    ka_log_kv(KA_LOG_WARN, "config", "ignoring invalid option, keeping its default", "from", where,
              "option", item, NULL);
}

/* Options outside the agent.* namespace that still decide the cgroup layout. */
static void apply_foreign_option(struct ka_config *cfg, const char *key, const char *value)
{
    if (strcmp(key, "systemd.unified_cgroup_hierarchy") == 0) {
        bool b;
        if (set_bool(&b, value))
            cfg->unified_cgroup_hierarchy = b;
    } else if (strcmp(key, "cgroup_no_v1") == 0 && value && strcmp(value, "all") == 0) {
        cfg->unified_cgroup_hierarchy = true;
    }
}

void ka_config_parse_cmdline(struct ka_config *cfg, const char *cmdline)
{
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\v' || *p == '\f')
            p++;
        const char *start = p;
        while (*p &&
               !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\v' || *p == '\f'))
            p++;
        size_t len = (size_t)(p - start);
        if (len == 0)
            continue;
        if (len >= 2 * KA_CONFIG_STR_MAX) {
            reject(cfg, "cmdline", "(overlong item)");
            continue;
        }
        char item[2 * KA_CONFIG_STR_MAX];
        memcpy(item, start, len);
        item[len] = '\0';
        char *eq = strchr(item, '=');
        char *value = NULL;
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        if (strncmp(item, "agent.", 6) == 0) {
            if (!ka_config_set(cfg, item + 6, value)) {
                if (eq)
                    *eq = '=';
                reject(cfg, "cmdline", item);
            }
        } else {
            apply_foreign_option(cfg, item, value);
        }
    }
}

void ka_config_apply_env(struct ka_config *cfg, const char *(*lookup)(const char *name))
{
    static const struct {
        const char *env;
        const char *key;
    } map[] = {
        {"KATA_AGENT_SERVER_ADDR", "server_addr"},
        {"KATA_AGENT_LOG_LEVEL", "log"},
        {"KATA_AGENT_TRACING", "trace"},
    };
    for (size_t i = 0; i < KA_ARRAY_SIZE(map); i++) {
        const char *v = lookup(map[i].env);
        if (v && !ka_config_set(cfg, map[i].key, v))
            reject(cfg, "environment", map[i].env);
    }
}

long ka_config_read_file(const char *path, char *buf, size_t size)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off + 1 < size) {
        ssize_t n = read(fd, buf + off, size - 1 - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        off += (size_t)n;
    }
    buf[off] = '\0';
    return (long)off;
}
