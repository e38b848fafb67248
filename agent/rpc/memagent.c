/* GetDiagnosticData and the mem-agent RPCs (MemAgentMemcgSet, MemAgentCompactSet). */
#include "rpc/memagent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "core/util.h"
#include "memagent/memagent.h"
#include "rpc/dispatch.h"

/* ---- mem-agent -------------------------------------------------------------- */

#define HAS(m, f) ((m)->f##_opt_case != 0)

/* Upstream narrows the uint32 fields to u8 with `as u8` (300 becomes 44); here a
 * value that does not fit is refused and nothing changes. */
static int set_u8(uint8_t *dst, uint32_t v, const char *name, struct ka_error *err)
{
    if (v > UINT8_MAX)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "%s %u is over 255", name, v);
    *dst = (uint8_t)v;
    return 0;
}

static int set_period(uint64_t *dst, uint64_t v, struct ka_error *err)
{
    /* 0 would make the job run without pause. */
    if (v == 0 || v > KA_MEM_AGENT_PERIOD_MAX)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "period_secs %llu is out of range (1..%u)",
                                   (unsigned long long)v, (unsigned)KA_MEM_AGENT_PERIOD_MAX);
    *dst = v;
    return 0;
}

int rpc_memcg_config_update(const Grpc__MemAgentMemcgConfig *m, struct ka_memcg_config *c,
                            struct ka_error *err)
{
    struct ka_memcg_config n = *c;
    if (HAS(m, disabled))
        n.disabled = m->disabled;
    if (HAS(m, swap))
        n.swap = m->swap;
    if (HAS(m, swappiness_max) &&
        set_u8(&n.swappiness_max, m->swappiness_max, "swappiness_max", err) < 0)
        return -1;
    if (HAS(m, period_secs) && set_period(&n.period_secs, m->period_secs, err) < 0)
        return -1;
    if (HAS(m, period_psi_percent_limit) &&
        set_u8(&n.period_psi_percent_limit, m->period_psi_percent_limit, "period_psi_percent_limit",
               err) < 0)
        return -1;
    if (HAS(m, eviction_psi_percent_limit) &&
        set_u8(&n.eviction_psi_percent_limit, m->eviction_psi_percent_limit,
               "eviction_psi_percent_limit", err) < 0)
        return -1;
    if (HAS(m, eviction_run_aging_count_min))
        n.eviction_run_aging_count_min = m->eviction_run_aging_count_min;
    *c = n;
    return 0;
}

int rpc_compact_config_update(const Grpc__MemAgentCompactConfig *m, struct ka_compact_config *c,
                              struct ka_error *err)
{
    struct ka_compact_config n = *c;
    if (HAS(m, disabled))
        n.disabled = m->disabled;
    if (HAS(m, period_secs) && set_period(&n.period_secs, m->period_secs, err) < 0)
        return -1;
    if (HAS(m, period_psi_percent_limit) &&
        set_u8(&n.period_psi_percent_limit, m->period_psi_percent_limit, "period_psi_percent_limit",
               err) < 0)
        return -1;
    if (HAS(m, compact_psi_percent_limit) &&
        set_u8(&n.compact_psi_percent_limit, m->compact_psi_percent_limit,
               "compact_psi_percent_limit", err) < 0)
        return -1;
    if (HAS(m, compact_sec_max))
        n.compact_sec_max = m->compact_sec_max;
    if (HAS(m, compact_order) &&
        set_u8(&n.compact_order, m->compact_order, "compact_order", err) < 0)
        return -1;
    if (HAS(m, compact_threshold))
        n.compact_threshold = m->compact_threshold;
    if (HAS(m, compact_force_times))
        n.compact_force_times = m->compact_force_times;
    *c = n;
    return 0;
}

/* Upstream answers INTERNAL with this text when the agent runs without mem-agent. */
static int mem_agent_disabled(struct ka_error *err)
{
    return ka_error_status_set(err, KA_STATUS_INTERNAL, "mem-agent is disabled");
}

static int mem_agent_memcg_set(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                               struct ka_error *err)
{
    if (!a->mem_agent)
        return mem_agent_disabled(err);
    struct ka_memcg_config c = *ka_mem_agent_memcg_config(a->mem_agent);
    if (rpc_memcg_config_update((const Grpc__MemAgentMemcgConfig *)m, &c, err) < 0)
        return -1;
    ka_mem_agent_set_memcg(a->mem_agent, &c);
    rpc_reply(call, NULL);
    return 0;
}

static int mem_agent_compact_set(struct agent *a, struct ttrpc_call *call,
                                 const ProtobufCMessage *m, struct ka_error *err)
{
    if (!a->mem_agent)
        return mem_agent_disabled(err);
    struct ka_compact_config c = *ka_mem_agent_compact_config(a->mem_agent);
    if (rpc_compact_config_update((const Grpc__MemAgentCompactConfig *)m, &c, err) < 0)
        return -1;
    ka_mem_agent_set_compact(a->mem_agent, &c);
    rpc_reply(call, NULL);
    return 0;
}

/* ---- GetDiagnosticData ------------------------------------------------------ */

size_t rpc_utf8_lossy(const unsigned char *in, size_t len, char *out)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned char b = in[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (b < 0x80)
            need = 1;
        else if (b >= 0xC2 && b <= 0xDF)
            need = 2;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 3;
            if (b == 0xE0)
                lo = 0xA0; /* overlong */
            if (b == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 4;
            if (b == 0xF0)
                lo = 0x90;
            if (b == 0xF4)
                hi = 0x8F;
        } else
            need = 0;
        /* The longest valid prefix: one U+FFFD replaces it when the sequence breaks
         * off (the "maximal subpart" rule Rust's from_utf8_lossy follows). */
        size_t ok = need ? 1 : 0;
        while (ok > 0 && ok < need && i + ok < len) {
            unsigned char c = in[i + ok];
            if (ok == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF))
                break;
            ok++;
        }
        if (need > 0 && ok == need) {
            memcpy(out + o, in + i, need);
            o += need;
            i += need;
        } else {
            memcpy(out + o, replacement, 3);
            o += 3;
            i += ok > 0 ? ok : 1;
        }
    }
    out[o] = '\0';
    return o;
}

/* An O_PATH fd for rel below rootfd, refusing every symlink and "..": no
 * component of the path can lead elsewhere, whoever planted it. */
static int open_beneath_no_symlinks(int rootfd, const char *rel, struct ka_error *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", rel) >= (int)sizeof(buf))
        return ka_error_set(err, ENAMETOOLONG, "%.200s", rel);
    cleanup_close int dir = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    if (dir < 0)
        return ka_error_set(err, errno, "dup");
    char *save = NULL;
    char *comp = strtok_r(buf, "/", &save);
    while (comp) {
        if (strcmp(comp, "..") == 0 || strcmp(comp, ".") == 0)
            return ka_error_set(err, EINVAL, "%.200s: '%s' component", rel, comp);
        int fd = openat(dir, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return ka_error_set(err, errno, "%.200s", rel);
        close(dir);
        dir = fd;
        char *next = strtok_r(NULL, "/", &save);
        struct stat st;
        if (fstat(dir, &st) < 0)
            return ka_error_set(err, errno, "%.200s", rel);
        if (S_ISLNK(st.st_mode))
            return ka_error_set(err, ELOOP, "%.200s: symlink '%s' refused", rel, comp);
        if (next && !S_ISDIR(st.st_mode))
            return ka_error_set(err, ENOTDIR, "%.200s", rel);
        comp = next;
    }
    return take_fd(dir);
}

/* The file is the bind mount's source in the guest (the runtime's copy under
 * /run/kata-containers/shared/containers), as upstream reads it: the bind itself
 * exists only in the container's mount namespace. Walked by fd below
 * /run/kata-containers without following any symlink; anything but a regular
 * file (a fifo that would block the loop, a device) is refused. */
static int read_termination_log(const char *source, char *out, struct ka_error *err)
{
    const char *prefix = KA_RUN_DIR "/";
    if (strncmp(source, prefix, strlen(prefix)) != 0)
        return ka_error_set(err, 0, "termination log %.200s is not under %s", source, KA_RUN_DIR);
    cleanup_close int root = open(KA_RUN_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return ka_error_set(err, errno, "open %s", KA_RUN_DIR);
    struct ka_error e2;
    cleanup_close int fd = open_beneath_no_symlinks(root, source + strlen(prefix), &e2);
    if (fd == -ENOENT) {
        out[0] = '\0'; /* upstream: not written yet reads as empty */
        return 0;
    }
    if (fd < 0)
        return ka_error_set(err, 0, "Failed to read termination log: %s", e2.msg);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return ka_error_set(err, errno, "Failed to read termination log: fstat");
    if (!S_ISREG(st.st_mode))
        return ka_error_set(err, 0, "Failed to read termination log: %.200s is not a regular file",
                            source);
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
    cleanup_close int rfd = open(self, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (rfd < 0)
        return ka_error_set(err, errno, "Failed to read termination log");
    unsigned char buf[RPC_TERMINATION_LOG_MAX];
    size_t got = 0;
    while (got < sizeof(buf)) {
        ssize_t n = read(rfd, buf + got, sizeof(buf) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ka_error_set(err, errno, "Failed to read termination log");
        if (n == 0)
            break;
        got += (size_t)n;
    }
    rpc_utf8_lossy(buf, got, out);
    return 0;
}

static int get_diagnostic_data(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                               struct ka_error *err)
{
    const Grpc__GetDiagnosticDataRequest *req = (const Grpc__GetDiagnosticDataRequest *)m;
    const char *type = req->log_type ? req->log_type : "";
    if (strcmp(type, "termination_log") != 0)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "unsupported diagnostic log_type: %.80s", type);
    const char *cid = req->container_id ? req->container_id : "";
    struct ka_container *c = ka_sandbox_find(&a->sandbox, cid);
    if (!c)
        return ka_error_status_set(err, KA_STATUS_NOT_FOUND, "Invalid container id: %.80s", cid);
    const char *dest = c->spec ? c->spec->termination_message_path : NULL;
    if (!dest)
        return ka_error_set(err, 0, "No terminationMessagePath annotation");
    const char *source = NULL; /* the first mount on that path, as upstream's find_map */
    for (size_t i = 0; i < c->spec->n_mounts && !source; i++)
        if (c->spec->mounts[i].destination && strcmp(c->spec->mounts[i].destination, dest) == 0)
            source = c->spec->mounts[i].source;
    if (!source || !source[0])
        return ka_error_set(err, 0, "termination message mount not found for %.200s", dest);
    /* Every byte may become a 3-byte U+FFFD. */
    cleanup_free char *text = ka_xmalloc(RPC_TERMINATION_LOG_MAX * 3 + 1);
    if (read_termination_log(source, text, err) < 0)
        return -1;
    Grpc__GetDiagnosticDataResponse resp = GRPC__GET_DIAGNOSTIC_DATA_RESPONSE__INIT;
    resp.data = text;
    rpc_reply(call, &resp.base);
    return 0;
}

const struct rpc_handler rpc_memagent_handlers[] = {
    {"MemAgentMemcgSet", mem_agent_memcg_set},
    {"MemAgentCompactSet", mem_agent_compact_set},
    {"GetDiagnosticData", get_diagnostic_data},
    {NULL, NULL},
};
