/* Validation and freeing of the internal container spec (spec.h).
 *
 * The checks follow rustjail's validator (§6.1, §7 of the protocol reference)
 * with a few deliberate differences, each marked below:
 *  - paths are checked per component ("/a/b..c" is fine, "/a/../b" is not);
 *    rustjail uses a substring test for "..";
 *  - malformed env entries are rejected (rustjail skips them at exec time);
 *  - user namespaces are rejected outright: this agent does not write uid/gid
 *    maps, and the 3.3.0 runtime only asks for one when configured to;
 *  - sysctl keys must be well-formed, because the launcher turns them into a
 *    path under /proc/sys. */
#include "container/spec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define KA_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static bool id_char(char c)
{
    /* ASCII only: Rust's char::is_alphanumeric would accept Unicode letters. */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool ka_valid_id(const char *id)
{
    if (!id || !id_char(id[0]))
        return false;
    size_t n = 1;
    for (; id[n]; n++) {
        if (n >= KA_ID_MAX)
            return false;
        char c = id[n];
        if (!id_char(c) && c != '_' && c != '.' && c != '-')
            return false;
    }
    return n >= 2;
}

/* Absolute and without a ".." component. */
static int check_path(const char *what, const char *path, struct ka_error *err)
{
    if (!path || path[0] != '/')
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "%s \"%.256s\" is not an absolute path", what, path ? path : "");
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        const char *end = strchrnul(p, '/');
        if (end - p == 2 && p[0] == '.' && p[1] == '.')
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "%s \"%.256s\" has a \"..\" component", what, path);
        p = end;
    }
    return 0;
}

static int check_count(const char *what, size_t n, size_t max, struct ka_error *err)
{
    if (n > max)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "too many %s (%zu, at most %zu)", what, n, max);
    return 0;
}

int ka_process_validate(const struct ka_process *proc, struct ka_error *err)
{
    if (check_count("args", proc->n_args, KA_SPEC_MAX_ARGS, err) < 0 ||
        check_count("env entries", proc->n_env, KA_SPEC_MAX_ENV, err) < 0 ||
        check_count("additional gids", proc->user.n_additional_gids, KA_SPEC_MAX_GROUPS, err) < 0 ||
        check_count("rlimits", proc->n_rlimits, RLIM_NLIMITS, err) < 0)
        return -1;

    const struct ka_user *u = &proc->user;
    if (!ka_id_number_ok(u->uid))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "user uid %u is above %d (and -1 would keep the agent's uid)",
                                   u->uid, KA_ID_NUMBER_MAX);
    if (!ka_id_number_ok(u->gid))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "user gid %u is above %d (and -1 would keep the agent's gid)",
                                   u->gid, KA_ID_NUMBER_MAX);
    for (size_t i = 0; i < u->n_additional_gids; i++)
        if (!ka_id_number_ok(u->additional_gids[i]))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "additional gid[%zu] %u is above %d", i,
                                       u->additional_gids[i], KA_ID_NUMBER_MAX);

    if (proc->n_args == 0 || !proc->args)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "process has no args");
    if (!proc->args[0] || proc->args[0][0] == '\0')
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "process args[0] is empty");

    for (size_t i = 0; i < proc->n_env; i++) {
        /* A C string cannot hold a NUL, so what is left of valid_env is the key:
         * the text before the first '=' must be non-empty (and so holds no '='). */
        const char *e = proc->env[i];
        const char *eq = e ? strchr(e, '=') : NULL;
        if (!eq)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "env[%zu] \"%.64s\" is not KEY=value", i, e ? e : "");
        if (eq == e)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "env[%zu] \"%.64s\" has an empty key", i, e);
    }

    if (check_path("process cwd", proc->cwd, err) < 0)
        return -1;

    for (size_t i = 0; i < proc->n_rlimits; i++) {
        const struct ka_rlimit *r = &proc->rlimits[i];
        if (r->resource < 0 || r->resource >= RLIM_NLIMITS)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "rlimit %d is not a resource", r->resource);
        for (size_t j = 0; j < i; j++)
            if (proc->rlimits[j].resource == r->resource)
                return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "rlimit %s given twice",
                                           ka_rlimit_name(r->resource));
        /* setrlimit() would fail with EINVAL in the child, where the error is harder to read. */
        if (r->soft > r->hard)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "rlimit %s: soft limit %llu above hard limit %llu",
                                       ka_rlimit_name(r->resource), (unsigned long long)r->soft,
                                       (unsigned long long)r->hard);
    }

    /* The kernel takes -1000..1000 in /proc/<pid>/oom_score_adj. */
    if (proc->has_oom_score_adj && (proc->oom_score_adj < -1000 || proc->oom_score_adj > 1000))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "oom_score_adj %d out of range -1000..1000",
                                   proc->oom_score_adj);
    return 0;
}

/* A dotted key becomes a path under /proc/sys; launchers differ on whether '/'
 * in a key is a path separator or stands for a '.' in a name (sysctl(8):
 * net.ipv4.conf.eth0/100.forwarding). Either way, a component that is empty or
 * made only of '/' could turn into "", "." or "..", so refuse those. */
static bool sysctl_key_well_formed(const char *key)
{
    const char *p = key;
    for (;;) {
        const char *end = strchrnul(p, '.');
        bool other = false;
        for (const char *q = p; q < end; q++)
            if (*q != '/')
                other = true;
        if (!other)
            return false;
        if (*end == '\0')
            return true;
        p = end + 1;
    }
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int check_sysctl(const struct ka_spec *spec, const struct ka_sysctl *s, struct ka_error *err)
{
    const char *k = s->key ? s->key : "";
    if (!sysctl_key_well_formed(k))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "sysctl \"%.128s\" is malformed", k);

    /* IPC-namespaced knobs (runc's list, with msg and shm as prefixes so that
     * msg_next_id/shm_next_id come along). */
    if (has_prefix(k, "kernel.msg") || strcmp(k, "kernel.sem") == 0 ||
        has_prefix(k, "kernel.shm") || has_prefix(k, "fs.mqueue.")) {
        if (!spec->namespaces[KA_NS_IPC].present)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "sysctl \"%.128s\" needs an ipc namespace", k);
        return 0;
    }
    /* Every container shares the VM's network namespace, which is the sandbox's
     * own: the spec never lists one (the runtime removes it), so do not ask. */
    if (has_prefix(k, "net."))
        return 0;
    if (strcmp(k, "kernel.domainname") == 0) {
        if (!spec->namespaces[KA_NS_UTS].present)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "sysctl \"%.128s\" needs a uts namespace", k);
        return 0;
    }
    /* Everything else, kernel.hostname included (the hostname field is the way). */
    return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                               "sysctl \"%.128s\" is not allowed in a container", k);
}

static int check_device(const struct ka_device *d, struct ka_error *err)
{
    if (check_path("device path", d->path, err) < 0)
        return -1;
    if (!has_prefix(d->path, "/dev/") || d->path[5] == '\0')
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "device path \"%.256s\" is not under /dev/", d->path);
    if (d->type != 'c' && d->type != 'b' && d->type != 'p' && d->type != 'u')
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "device %.256s: type '%c' is not one of c, b, p, u", d->path,
                                   d->type ? d->type : '?');
    return 0;
}

/* ---- resources and seccomp ------------------------------------------------------ */

#define INVALID_RES(err, ...) ka_error_status_set((err), KA_STATUS_INVALID_ARGUMENT, __VA_ARGS__)

/* A cpuset list as the kernel reads it: "0-3,5,7-8" (a trailing newline is not ours). */
static bool cpuset_list_ok(const char *s)
{
    if (!s[0] || strlen(s) > 4096)
        return false;
    for (const char *p = s; *p;) {
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p == '-') {
            p++;
            if (*p < '0' || *p > '9')
                return false;
            while (*p >= '0' && *p <= '9')
                p++;
        }
        if (*p == ',') {
            p++;
            if (!*p)
                return false;
        } else if (*p) {
            return false;
        }
    }
    return true;
}

/* "2MB", "1GB", "64KB": the name in hugetlb.<size>.limit_in_bytes. */
static bool page_size_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n > 0 && n < 8 && strchr("KMG", s[n]) && s[n] != '\0' && s[n + 1] == 'B' &&
           s[n + 2] == '\0';
}

static bool ifname_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 16 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p == '/' || *p == ':' || *p == 0x7f)
            return false;
    return true;
}

static int check_device_rule(size_t i, const struct ka_device_rule *d, struct ka_error *err)
{
    if (d->type != 'a' && d->type != 'c' && d->type != 'b')
        return INVALID_RES(err, "device cgroup rule %zu: type '%c' is not one of a, c, b", i,
                           d->type ? d->type : '?');
    if (d->major < -1 || d->minor < -1 || d->major > UINT32_MAX || d->minor > UINT32_MAX)
        return INVALID_RES(err, "device cgroup rule %zu: bad major/minor %lld:%lld", i,
                           (long long)d->major, (long long)d->minor);
    size_t n = strnlen(d->access, sizeof(d->access));
    if (n == 0 || n >= sizeof(d->access) || strspn(d->access, "rwm") != n)
        return INVALID_RES(err, "device cgroup rule %zu: access must be a subset of rwm", i);
    return 0;
}

int ka_resources_validate(const struct ka_resources *r, struct ka_error *err)
{
    if (check_count("device cgroup rules", r->n_devices, KA_SPEC_MAX_RESOURCE_ITEMS, err) < 0 ||
        check_count("blkio weight devices", r->blkio.n_weight_devices, KA_SPEC_MAX_RESOURCE_ITEMS,
                    err) < 0 ||
        check_count("hugepage limits", r->n_hugepages, KA_SPEC_MAX_HUGEPAGES, err) < 0 ||
        check_count("network priorities", r->n_net_priorities, KA_SPEC_MAX_RESOURCE_ITEMS, err) < 0)
        return -1;
    for (int t = 0; t < KA_THROTTLE_COUNT; t++)
        if (check_count("blkio throttle devices", r->blkio.n_throttle[t],
                        KA_SPEC_MAX_RESOURCE_ITEMS, err) < 0)
            return -1;
    for (size_t i = 0; i < r->n_devices; i++)
        if (check_device_rule(i, &r->devices[i], err) < 0)
            return -1;
    const struct ka_memory_resources *m = &r->memory;
    if (m->swappiness > 100)
        return INVALID_RES(err, "memory swappiness %llu is not in 0..100",
                           (unsigned long long)m->swappiness);
    const int64_t *mem_vals[] = {&m->limit, &m->reservation, &m->swap, &m->kernel, &m->kernel_tcp};
    for (size_t i = 0; i < KA_ARRAY_LEN(mem_vals); i++)
        if (*mem_vals[i] < -1)
            return INVALID_RES(err, "memory value %lld is negative", (long long)*mem_vals[i]);
    if (r->cpu.cpus && !cpuset_list_ok(r->cpu.cpus))
        return INVALID_RES(err, "cpu.cpus \"%.64s\" is not a cpu list", r->cpu.cpus);
    if (r->cpu.mems && !cpuset_list_ok(r->cpu.mems))
        return INVALID_RES(err, "cpu.mems \"%.64s\" is not a node list", r->cpu.mems);
    if (r->cpu.quota < -1)
        return INVALID_RES(err, "cpu quota %lld is negative", (long long)r->cpu.quota);
    if (r->blkio.weight && (r->blkio.weight < 10 || r->blkio.weight > 1000))
        return INVALID_RES(err, "blkio weight %u is not in 10..1000", r->blkio.weight);
    for (size_t i = 0; i < r->blkio.n_weight_devices; i++) {
        const struct ka_blkio_device *d = &r->blkio.weight_devices[i];
        if (d->major < 0 || d->minor < 0 || d->major > UINT32_MAX || d->minor > UINT32_MAX ||
            (d->value && (d->value < 10 || d->value > 1000)))
            return INVALID_RES(err, "blkio weight device %lld:%lld weight %llu is invalid",
                               (long long)d->major, (long long)d->minor,
                               (unsigned long long)d->value);
    }
    for (int t = 0; t < KA_THROTTLE_COUNT; t++)
        for (size_t i = 0; i < r->blkio.n_throttle[t]; i++) {
            const struct ka_blkio_device *d = &r->blkio.throttle[t][i];
            if (d->major < 0 || d->minor < 0 || d->major > UINT32_MAX || d->minor > UINT32_MAX)
                return INVALID_RES(err, "blkio throttle device %lld:%lld is invalid",
                                   (long long)d->major, (long long)d->minor);
        }
    for (size_t i = 0; i < r->n_hugepages; i++)
        if (!page_size_ok(r->hugepages[i].page_size))
            return INVALID_RES(err, "hugepage size \"%.16s\" is not like 2MB or 1GB",
                               r->hugepages[i].page_size);
    for (size_t i = 0; i < r->n_net_priorities; i++)
        if (!ifname_ok(r->net_priorities[i].name))
            return INVALID_RES(err, "network priority interface \"%.16s\" is not a valid name",
                               r->net_priorities[i].name);
    return 0;
}

int ka_seccomp_validate(const struct ka_seccomp *sc, struct ka_error *err)
{
    if (check_count("seccomp architectures", sc->n_arches, KA_SECCOMP_MAX_ARCHES, err) < 0 ||
        check_count("seccomp syscall rules", sc->n_syscalls, KA_SECCOMP_MAX_SYSCALLS, err) < 0)
        return -1;
    for (size_t i = 0; i < sc->n_syscalls; i++) {
        const struct ka_seccomp_syscall *r = &sc->syscalls[i];
        if (check_count("seccomp syscall names", r->n_names, KA_SECCOMP_MAX_NAMES, err) < 0 ||
            check_count("seccomp syscall arguments", r->n_args, KA_SECCOMP_MAX_ARGS, err) < 0)
            return ka_error_wrap(err, "seccomp rule %zu", i);
        if (r->n_names == 0)
            return INVALID_RES(err, "seccomp rule %zu names no syscall", i);
        for (size_t j = 0; j < r->n_names; j++)
            if (!r->names[j] || !r->names[j][0] || strlen(r->names[j]) > 64)
                return INVALID_RES(err, "seccomp rule %zu: syscall name %zu is empty or too long",
                                   i, j);
        for (size_t j = 0; j < r->n_args; j++)
            if (r->args[j].index > 5)
                return INVALID_RES(err, "seccomp rule %zu: argument index %u is not in 0..5", i,
                                   r->args[j].index);
    }
    return 0;
}

void ka_resources_free(struct ka_resources *r)
{
    if (!r)
        return;
    free(r->devices);
    free(r->cpu.cpus);
    free(r->cpu.mems);
    free(r->blkio.weight_devices);
    for (int t = 0; t < KA_THROTTLE_COUNT; t++)
        free(r->blkio.throttle[t]);
    free(r->hugepages);
    free(r->net_priorities);
    memset(r, 0, sizeof(*r));
}

void ka_seccomp_free(struct ka_seccomp *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; sc->arches && i < sc->n_arches; i++)
        free(sc->arches[i]);
    free(sc->arches);
    for (size_t i = 0; sc->syscalls && i < sc->n_syscalls; i++) {
        struct ka_seccomp_syscall *r = &sc->syscalls[i];
        for (size_t j = 0; r->names && j < r->n_names; j++)
            free(r->names[j]);
        free(r->names);
        free(r->args);
    }
    free(sc->syscalls);
    free(sc);
}

int ka_spec_validate(const struct ka_spec *spec, struct ka_error *err)
{
    if (check_count("mounts", spec->n_mounts, KA_SPEC_MAX_MOUNTS, err) < 0 ||
        check_count("devices", spec->n_devices, KA_SPEC_MAX_PATHS, err) < 0 ||
        check_count("masked paths", spec->n_masked_paths, KA_SPEC_MAX_PATHS, err) < 0 ||
        check_count("readonly paths", spec->n_readonly_paths, KA_SPEC_MAX_PATHS, err) < 0 ||
        check_count("sysctls", spec->n_sysctls, KA_SPEC_MAX_PATHS, err) < 0)
        return -1;

    if (check_path("root path", spec->root_path, err) < 0)
        return -1;
    if (ka_process_validate(&spec->process, err) < 0)
        return -1;

    /* We write no uid/gid maps and run no rootless setup: refuse rather than
     * start a container with an unmapped (overflow-id) root. */
    if (spec->namespaces[KA_NS_USER].present)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "user namespaces are not supported");

    for (int t = 0; t < KA_NS_COUNT; t++) {
        const char *p = spec->namespaces[t].path;
        if (p && check_path("namespace path", p, err) < 0)
            return -1;
    }

    if (spec->hostname && spec->hostname[0] && !spec->namespaces[KA_NS_UTS].present)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "hostname needs a uts namespace");

    for (size_t i = 0; i < spec->n_mounts; i++)
        if (check_path("mount destination", spec->mounts[i].destination, err) < 0)
            return -1;
    for (size_t i = 0; i < spec->n_masked_paths; i++)
        if (check_path("masked path", spec->masked_paths[i], err) < 0)
            return -1;
    for (size_t i = 0; i < spec->n_readonly_paths; i++)
        if (check_path("readonly path", spec->readonly_paths[i], err) < 0)
            return -1;
    for (size_t i = 0; i < spec->n_devices; i++)
        if (check_device(&spec->devices[i], err) < 0)
            return -1;
    for (size_t i = 0; i < spec->n_sysctls; i++)
        if (check_sysctl(spec, &spec->sysctls[i], err) < 0)
            return -1;
    if (ka_resources_validate(&spec->resources, err) < 0)
        return ka_error_wrap(err, "resources");
    if (spec->seccomp && ka_seccomp_validate(spec->seccomp, err) < 0)
        return ka_error_wrap(err, "seccomp");
    return 0;
}

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void ka_process_free(struct ka_process *proc)
{
    if (!proc)
        return;
    free(proc->user.additional_gids);
    free(proc->user.username);
    free_strv(proc->args, proc->n_args);
    free_strv(proc->env, proc->n_env);
    free(proc->cwd);
    free(proc->rlimits);
    memset(proc, 0, sizeof(*proc));
}

void ka_spec_free(struct ka_spec *spec)
{
    if (!spec)
        return;
    ka_process_free(&spec->process);
    free(spec->root_path);
    free(spec->hostname);
    free(spec->termination_message_path);
    for (size_t i = 0; spec->mounts && i < spec->n_mounts; i++) {
        struct ka_mount *m = &spec->mounts[i];
        free(m->destination);
        free(m->source);
        free(m->type);
        free(m->data);
    }
    free(spec->mounts);
    for (int t = 0; t < KA_NS_COUNT; t++)
        free(spec->namespaces[t].path);
    for (size_t i = 0; spec->devices && i < spec->n_devices; i++)
        free(spec->devices[i].path);
    free(spec->devices);
    for (size_t i = 0; spec->sysctls && i < spec->n_sysctls; i++) {
        free(spec->sysctls[i].key);
        free(spec->sysctls[i].value);
    }
    free(spec->sysctls);
    free_strv(spec->masked_paths, spec->n_masked_paths);
    free_strv(spec->readonly_paths, spec->n_readonly_paths);
    free(spec->cgroups_path);
    ka_resources_free(&spec->resources);
    ka_seccomp_free(spec->seccomp);
    free(spec);
}
