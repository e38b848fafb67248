/* Kata's protobuf OCI spec → struct ka_spec. See oci_convert.h for what is
 * read and how absent proto3 fields are taken. */
#include "rpc/oci_convert.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "core/log.h"
#include "core/util.h"

/* Older libcs may lack the newer flags; the values are the kernel ABI. */
#ifndef MS_LAZYTIME
#define MS_LAZYTIME (1 << 25)
#endif

#define INVALID(err, ...) ka_error_status_set((err), KA_STATUS_INVALID_ARGUMENT, __VA_ARGS__)

static int check_count(const char *what, size_t n, size_t max, struct ka_error *err)
{
    if (n > max)
        return INVALID(err, "too many %s (%zu, at most %zu)", what, n, max);
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s && s[0] ? ka_xstrdup(s) : NULL;
}

static char *dup_or_empty(const char *s)
{
    return ka_xstrdup(s ? s : "");
}

/* Count already bounded by the caller. */
static char **dup_strv(char *const *v, size_t n)
{
    char **out = ka_xcalloc(n, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = dup_or_empty(v[i]);
    return out;
}

/* ---- mount options ------------------------------------------------------ */

static void convert_mount(const Grpc__Mount *in, struct ka_mount *m)
{
    m->destination = dup_or_empty(in->destination);
    m->source = dup_or_empty(in->source);
    ka_mount_parse_options(in->options, in->n_options, m);
    /* OCI marks a bind mount by its options; runc and crun also take a type of
     * "bind" alone to mean one. Either way the fs type no longer matters. */
    if (in->type && strcmp(in->type, "bind") == 0 && !m->bind) {
        m->bind = true;
        m->flags |= MS_BIND;
    }
    m->type = ka_xstrdup(m->bind ? "bind" : (in->type ? in->type : ""));
}

/* ---- process ------------------------------------------------------------- */

static int convert_rlimits(const Grpc__Process *in, struct ka_process *out, struct ka_error *err)
{
    /* Every resource at most once (checked by validation), so more entries
     * than resources cannot be valid: refuse before allocating. */
    if (check_count("rlimits", in->n_rlimits, RLIM_NLIMITS, err) < 0)
        return -1;
    if (in->n_rlimits == 0)
        return 0;
    out->rlimits = ka_xcalloc(in->n_rlimits, sizeof(*out->rlimits));
    out->n_rlimits = in->n_rlimits;
    for (size_t i = 0; i < in->n_rlimits; i++) {
        const Grpc__POSIXRlimit *r = in->rlimits[i];
        const char *type = r->type ? r->type : "";
        int resource = ka_rlimit_parse(type);
        if (resource < 0)
            return INVALID(err, "unknown rlimit \"%.64s\"", type);
        out->rlimits[i].resource = resource;
        out->rlimits[i].soft = r->soft;
        out->rlimits[i].hard = r->hard;
    }
    return 0;
}

static bool cap_name_well_formed(const char *name)
{
    /* cap_from_name() is laxer than OCI: it takes numbers, lower case, and
     * stops at a ',' or space ("CAP_CHOWN,CAP_KILL" parses as CAP_CHOWN). */
    if (strncmp(name, "CAP_", 4) != 0 || name[4] == '\0')
        return false;
    for (const char *p = name + 4; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static int convert_cap_set(const char *set, char *const *names, size_t n, uint64_t *mask,
                           struct ka_error *err)
{
    *mask = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i] ? names[i] : "";
        if (!cap_name_well_formed(name))
            return INVALID(err, "capability \"%.64s\" in the %s set is not a CAP_* name", name,
                           set);
        cap_value_t v;
        if (cap_from_name(name, &v) < 0 || v < 0 || v > 63) {
            /* Unknown to this libcap (a newer kernel's cap, typically asked for by
             * a privileged container): it cannot be granted anyway. */
            ka_log(KA_LOG_DEBUG, "oci", "skipping unknown capability %s in the %s set", name, set);
            continue;
        }
        *mask |= UINT64_C(1) << v;
    }
    return 0;
}

static int convert_caps(const Grpc__LinuxCapabilities *in, struct ka_caps *out,
                        struct ka_error *err)
{
    out->present = true;
    if (convert_cap_set("bounding", in->bounding, in->n_bounding, &out->bounding, err) < 0 ||
        convert_cap_set("effective", in->effective, in->n_effective, &out->effective, err) < 0 ||
        convert_cap_set("inheritable", in->inheritable, in->n_inheritable, &out->inheritable, err) <
            0 ||
        convert_cap_set("permitted", in->permitted, in->n_permitted, &out->permitted, err) < 0 ||
        convert_cap_set("ambient", in->ambient, in->n_ambient, &out->ambient, err) < 0)
        return -1;
    return 0;
}

static int convert_process(const Grpc__Process *in, struct ka_process *out, struct ka_error *err)
{
    memset(out, 0, sizeof(*out));
    const Grpc__User *user = in->user;
    if (check_count("args", in->n_args, KA_SPEC_MAX_ARGS, err) < 0 ||
        check_count("env entries", in->n_env, KA_SPEC_MAX_ENV, err) < 0 ||
        (user &&
         check_count("additional gids", user->n_additionalgids, KA_SPEC_MAX_GROUPS, err) < 0))
        return -1;

    out->terminal = in->terminal;
    if (in->consolesize) {
        out->console_height = in->consolesize->height;
        out->console_width = in->consolesize->width;
    }
    if (user) {
        out->user.uid = user->uid;
        out->user.gid = user->gid;
        if (user->n_additionalgids > 0) {
            out->user.additional_gids = ka_xcalloc(user->n_additionalgids, sizeof(uint32_t));
            memcpy(out->user.additional_gids, user->additionalgids,
                   user->n_additionalgids * sizeof(uint32_t));
            out->user.n_additional_gids = user->n_additionalgids;
        }
        out->user.username = dup_or_null(user->username);
    }
    if (in->n_args > 0) {
        out->args = dup_strv(in->args, in->n_args);
        out->n_args = in->n_args;
    }
    if (in->n_env > 0) {
        out->env = dup_strv(in->env, in->n_env);
        out->n_env = in->n_env;
    }
    out->cwd = ka_xstrdup(in->cwd && in->cwd[0] ? in->cwd : "/");
    if (in->capabilities && convert_caps(in->capabilities, &out->caps, err) < 0)
        return -1;
    if (convert_rlimits(in, out, err) < 0)
        return -1;
    out->no_new_privileges = in->nonewprivileges;
    /* proto3 cannot say "absent": 0 is read as not set, like Kata's own
     * grpc→OCI conversion (the process then keeps the agent's score). */
    if (in->oomscoreadj != 0) {
        if (in->oomscoreadj < INT_MIN || in->oomscoreadj > INT_MAX)
            return INVALID(err, "oom_score_adj %lld out of range", (long long)in->oomscoreadj);
        out->has_oom_score_adj = true;
        out->oom_score_adj = (int)in->oomscoreadj;
    }
    out->umask = 0022;
    return 0;
}

int ka_process_from_proto(const Grpc__Process *in, struct ka_process *out, struct ka_error *err)
{
    if (!in) {
        memset(out, 0, sizeof(*out));
        return INVALID(err, "no process given");
    }
    if (convert_process(in, out, err) < 0 || ka_process_validate(out, err) < 0) {
        ka_process_free(out);
        return -1;
    }
    return 0;
}

/* ---- resources ------------------------------------------------------------- */

static int convert_device_rules(Grpc__LinuxDeviceCgroup **in, size_t n, struct ka_resources *out,
                                struct ka_error *err)
{
    if (check_count("device cgroup rules", n, KA_SPEC_MAX_RESOURCE_ITEMS, err) < 0)
        return -1;
    if (n == 0)
        return 0;
    out->devices = ka_xcalloc(n, sizeof(*out->devices));
    out->n_devices = n;
    for (size_t i = 0; i < n; i++) {
        const Grpc__LinuxDeviceCgroup *d = in[i];
        struct ka_device_rule *r = &out->devices[i];
        const char *type = d->type ? d->type : "";
        const char *access = d->access && d->access[0] ? d->access : "rwm";
        if (strlen(type) > 1)
            return INVALID(err, "device cgroup rule %zu: type \"%.16s\" is not a, c or b", i, type);
        r->allow = d->allow;
        r->type = type[0] ? type[0] : 'a';
        /* OCI's absent major/minor (any) arrive as 0:0, which names no device:
         * read it as the wildcard. A minor of 0 with a real major is kept. */
        r->major = d->major == 0 ? -1 : d->major;
        r->minor = d->major == 0 && d->minor == 0 ? -1 : d->minor;
        if (strlen(access) >= sizeof(r->access))
            return INVALID(err, "device cgroup rule %zu: access \"%.16s\" is not a subset of rwm",
                           i, access);
        /* Normalise to "rwm" order without duplicates. */
        size_t k = 0;
        for (const char *c = "rwm"; *c; c++)
            if (strchr(access, *c))
                r->access[k++] = *c;
        if (k == 0 || strspn(access, "rwm") != strlen(access))
            return INVALID(err, "device cgroup rule %zu: access \"%.16s\" is not a subset of rwm",
                           i, access);
    }
    return 0;
}

static int convert_blkio_devices(const char *what, Grpc__LinuxThrottleDevice **in, size_t n,
                                 struct ka_blkio_device **out, size_t *n_out, struct ka_error *err)
{
    if (check_count(what, n, KA_SPEC_MAX_RESOURCE_ITEMS, err) < 0)
        return -1;
    if (n == 0)
        return 0;
    *out = ka_xcalloc(n, sizeof(**out));
    *n_out = n;
    for (size_t i = 0; i < n; i++) {
        (*out)[i].major = in[i]->major;
        (*out)[i].minor = in[i]->minor;
        (*out)[i].value = in[i]->rate;
    }
    return 0;
}

static int convert_blkio(const Grpc__LinuxBlockIO *in, struct ka_blkio_resources *out,
                         struct ka_error *err)
{
    out->present = true;
    if (in->weight > UINT16_MAX || in->leafweight > UINT16_MAX)
        return INVALID(err, "blkio weight %u is not in 10..1000", in->weight);
    out->weight = (uint16_t)in->weight;
    out->leaf_weight = (uint16_t)in->leafweight;
    if (check_count("blkio weight devices", in->n_weightdevice, KA_SPEC_MAX_RESOURCE_ITEMS, err) <
        0)
        return -1;
    if (in->n_weightdevice > 0) {
        out->weight_devices = ka_xcalloc(in->n_weightdevice, sizeof(*out->weight_devices));
        out->n_weight_devices = in->n_weightdevice;
        for (size_t i = 0; i < in->n_weightdevice; i++) {
            const Grpc__LinuxWeightDevice *d = in->weightdevice[i];
            if (d->weight > UINT16_MAX || d->leafweight > UINT16_MAX)
                return INVALID(err, "blkio weight device %zu: weight %u is not in 10..1000", i,
                               d->weight);
            out->weight_devices[i] =
                (struct ka_blkio_device){.major = d->major,
                                         .minor = d->minor,
                                         .value = d->weight,
                                         .leaf_weight = (uint16_t)d->leafweight};
        }
    }
    Grpc__LinuxThrottleDevice **lists[KA_THROTTLE_COUNT] = {in->throttlereadbpsdevice,
                                                            in->throttlewritebpsdevice,
                                                            in->throttlereadiopsdevice,
                                                            in->throttlewriteiopsdevice};
    size_t counts[KA_THROTTLE_COUNT] = {in->n_throttlereadbpsdevice, in->n_throttlewritebpsdevice,
                                        in->n_throttlereadiopsdevice,
                                        in->n_throttlewriteiopsdevice};
    for (int t = 0; t < KA_THROTTLE_COUNT; t++)
        if (convert_blkio_devices("blkio throttle devices", lists[t], counts[t], &out->throttle[t],
                                  &out->n_throttle[t], err) < 0)
            return -1;
    return 0;
}

int ka_resources_from_proto(const Grpc__LinuxResources *in, struct ka_resources *out,
                            struct ka_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!in)
        return 0;
    if (convert_device_rules(in->devices, in->n_devices, out, err) < 0)
        goto fail;
    if (in->memory) {
        const Grpc__LinuxMemory *m = in->memory;
        out->memory = (struct ka_memory_resources){.present = true,
                                                   .limit = m->limit,
                                                   .reservation = m->reservation,
                                                   .swap = m->swap,
                                                   .kernel = m->kernel,
                                                   .kernel_tcp = m->kerneltcp,
                                                   .swappiness = m->swappiness,
                                                   .disable_oom_killer = m->disableoomkiller};
    }
    if (in->cpu) {
        const Grpc__LinuxCPU *c = in->cpu;
        out->cpu = (struct ka_cpu_resources){.present = true,
                                             .shares = c->shares,
                                             .quota = c->quota,
                                             .period = c->period,
                                             .realtime_runtime = c->realtimeruntime,
                                             .realtime_period = c->realtimeperiod,
                                             .cpus = dup_or_null(c->cpus),
                                             .mems = dup_or_null(c->mems)};
    }
    if (in->pids) {
        out->has_pids = true;
        out->pids_limit = in->pids->limit;
    }
    if (in->blockio && convert_blkio(in->blockio, &out->blkio, err) < 0)
        goto fail;
    if (check_count("hugepage limits", in->n_hugepagelimits, KA_SPEC_MAX_HUGEPAGES, err) < 0)
        goto fail;
    if (in->n_hugepagelimits > 0) {
        out->hugepages = ka_xcalloc(in->n_hugepagelimits, sizeof(*out->hugepages));
        out->n_hugepages = in->n_hugepagelimits;
        for (size_t i = 0; i < in->n_hugepagelimits; i++) {
            const char *size =
                in->hugepagelimits[i]->pagesize ? in->hugepagelimits[i]->pagesize : "";
            if (strlen(size) >= sizeof(out->hugepages[i].page_size)) {
                INVALID(err, "hugepage size \"%.16s\" is not like 2MB or 1GB", size);
                goto fail;
            }
            snprintf(out->hugepages[i].page_size, sizeof(out->hugepages[i].page_size), "%s", size);
            out->hugepages[i].limit = in->hugepagelimits[i]->limit;
        }
    }
    if (in->network) {
        out->has_network = true;
        out->net_class_id = in->network->classid;
        size_t n = in->network->n_priorities;
        if (check_count("network priorities", n, KA_SPEC_MAX_RESOURCE_ITEMS, err) < 0)
            goto fail;
        if (n > 0) {
            out->net_priorities = ka_xcalloc(n, sizeof(*out->net_priorities));
            out->n_net_priorities = n;
            for (size_t i = 0; i < n; i++) {
                const char *name =
                    in->network->priorities[i]->name ? in->network->priorities[i]->name : "";
                if (strlen(name) >= sizeof(out->net_priorities[i].name)) {
                    INVALID(err, "network priority interface \"%.16s\" is too long", name);
                    goto fail;
                }
                snprintf(out->net_priorities[i].name, sizeof(out->net_priorities[i].name), "%s",
                         name);
                out->net_priorities[i].priority = in->network->priorities[i]->priority;
            }
        }
    }
    if (ka_resources_validate(out, err) < 0)
        goto fail;
    return 0;
fail:
    ka_resources_free(out);
    return -1;
}

/* ---- seccomp ---------------------------------------------------------------- */

static int convert_seccomp(const Grpc__LinuxSeccomp *in, struct ka_seccomp **out,
                           struct ka_error *err)
{
    if (check_count("seccomp architectures", in->n_architectures, KA_SECCOMP_MAX_ARCHES, err) < 0 ||
        check_count("seccomp syscall rules", in->n_syscalls, KA_SECCOMP_MAX_SYSCALLS, err) < 0 ||
        check_count("seccomp flags", in->n_flags, 16, err) < 0)
        return -1;
    struct ka_seccomp *sc = ka_xcalloc(1, sizeof(*sc));
    *out = sc; /* freed with the spec */
    const char *def = in->defaultaction ? in->defaultaction : "";
    if (!ka_seccomp_action_parse(def, &sc->default_action))
        return INVALID(err, "seccomp default action \"%.64s\" is unknown", def);
    if (in->n_architectures > 0) {
        sc->arches = dup_strv(in->architectures, in->n_architectures);
        sc->n_arches = in->n_architectures;
    }
    for (size_t i = 0; i < in->n_flags; i++) {
        unsigned flag;
        const char *name = in->flags[i] ? in->flags[i] : "";
        if (!ka_seccomp_flag_parse(name, &flag))
            return INVALID(err, "seccomp flag \"%.64s\" is unknown", name);
        sc->flags |= flag;
    }
    if (in->n_syscalls == 0)
        return 0;
    sc->syscalls = ka_xcalloc(in->n_syscalls, sizeof(*sc->syscalls));
    sc->n_syscalls = in->n_syscalls;
    for (size_t i = 0; i < in->n_syscalls; i++) {
        const Grpc__LinuxSyscall *r = in->syscalls[i];
        struct ka_seccomp_syscall *o = &sc->syscalls[i];
        if (check_count("seccomp syscall names", r->n_names, KA_SECCOMP_MAX_NAMES, err) < 0 ||
            check_count("seccomp syscall arguments", r->n_args, KA_SECCOMP_MAX_ARGS, err) < 0)
            return ka_error_wrap(err, "seccomp rule %zu", i);
        o->names = dup_strv(r->names, r->n_names);
        o->n_names = r->n_names;
        const char *action = r->action ? r->action : "";
        if (!ka_seccomp_action_parse(action, &o->action))
            return INVALID(err, "seccomp rule %zu: action \"%.64s\" is unknown", i, action);
        if (r->errno_ret_case == GRPC__LINUX_SYSCALL__ERRNO_RET_ERRNORET) {
            o->has_errno_ret = true;
            o->errno_ret = r->errnoret;
        }
        if (r->n_args > 0) {
            o->args = ka_xcalloc(r->n_args, sizeof(*o->args));
            o->n_args = r->n_args;
        }
        for (size_t j = 0; j < r->n_args; j++) {
            const Grpc__LinuxSeccompArg *a = r->args[j];
            const char *op = a->op ? a->op : "";
            if (a->index > 5)
                return INVALID(err, "seccomp rule %zu: argument index %llu is not in 0..5", i,
                               (unsigned long long)a->index);
            if (!ka_seccomp_op_parse(op, &o->args[j].op))
                return INVALID(err, "seccomp rule %zu: operator \"%.64s\" is unknown", i, op);
            o->args[j].index = (uint32_t)a->index;
            o->args[j].value = a->value;
            o->args[j].value_two = a->valuetwo;
        }
    }
    return 0;
}

/* ---- linux section -------------------------------------------------------- */

static const char *const ns_names[KA_NS_COUNT] = {
    [KA_NS_PID] = "pid",       [KA_NS_NETWORK] = "network", [KA_NS_MOUNT] = "mount",
    [KA_NS_IPC] = "ipc",       [KA_NS_UTS] = "uts",         [KA_NS_USER] = "user",
    [KA_NS_CGROUP] = "cgroup",
};

static int convert_namespaces(const Grpc__Linux *in, struct ka_spec *out, struct ka_error *err)
{
    for (size_t i = 0; i < in->n_namespaces; i++) {
        const Grpc__LinuxNamespace *ns = in->namespaces[i];
        const char *type = ns->type ? ns->type : "";
        int t = -1;
        for (int j = 0; j < KA_NS_COUNT; j++)
            if (strcmp(type, ns_names[j]) == 0)
                t = j;
        if (t < 0)
            return INVALID(err, "unknown namespace type \"%.64s\"", type);
        if (out->namespaces[t].present)
            return INVALID(err, "namespace \"%s\" given twice", type);
        out->namespaces[t].present = true;
        out->namespaces[t].path = dup_or_null(ns->path);
    }
    return 0;
}

static int convert_devices(const Grpc__Linux *in, struct ka_spec *out, struct ka_error *err)
{
    if (check_count("devices", in->n_devices, KA_SPEC_MAX_PATHS, err) < 0)
        return -1;
    if (in->n_devices == 0)
        return 0;
    out->devices = ka_xcalloc(in->n_devices, sizeof(*out->devices));
    out->n_devices = in->n_devices;
    for (size_t i = 0; i < in->n_devices; i++) {
        const Grpc__LinuxDevice *d = in->devices[i];
        struct ka_device *o = &out->devices[i];
        o->path = dup_or_empty(d->path);
        const char *type = d->type ? d->type : "";
        if (strlen(type) != 1)
            return INVALID(err, "device %.256s: type \"%.16s\" is not one of c, b, p, u", o->path,
                           type);
        /* 'u' (unbuffered character device) is a character device to mknod. */
        o->type = type[0] == 'u' ? 'c' : type[0];
        o->major = d->major;
        o->minor = d->minor;
        /* proto3 cannot tell 0 from absent; a node nobody may open is not what
         * anyone asks for, so 0 means "not given" (0666, as runc defaults). */
        o->has_file_mode = (d->filemode & 07777) != 0;
        o->file_mode = o->has_file_mode ? (d->filemode & 07777) : 0666;
        o->uid = d->uid;
        o->gid = d->gid;
    }
    return 0;
}

static int convert_sysctls(const Grpc__Linux *in, struct ka_spec *out, struct ka_error *err)
{
    if (check_count("sysctls", in->n_sysctl, KA_SPEC_MAX_PATHS, err) < 0)
        return -1;
    if (in->n_sysctl == 0)
        return 0;
    out->sysctls = ka_xcalloc(in->n_sysctl, sizeof(*out->sysctls));
    out->n_sysctls = in->n_sysctl;
    for (size_t i = 0; i < in->n_sysctl; i++) {
        out->sysctls[i].key = dup_or_empty(in->sysctl[i]->key);
        out->sysctls[i].value = dup_or_empty(in->sysctl[i]->value);
    }
    return 0;
}

static int convert_linux(const Grpc__Linux *in, struct ka_spec *out, struct ka_error *err)
{
    if (in->n_uidmappings > 0 || in->n_gidmappings > 0)
        return INVALID(err, "uid/gid mappings given: user namespaces are not supported");
    if (check_count("masked paths", in->n_maskedpaths, KA_SPEC_MAX_PATHS, err) < 0 ||
        check_count("readonly paths", in->n_readonlypaths, KA_SPEC_MAX_PATHS, err) < 0)
        return -1;

    if (convert_namespaces(in, out, err) < 0 || convert_devices(in, out, err) < 0 ||
        convert_sysctls(in, out, err) < 0)
        return -1;

    const char *prop = in->rootfspropagation ? in->rootfspropagation : "";
    if (prop[0] == '\0') {
        out->rootfs_propagation = MS_SLAVE | MS_REC;
    } else {
        /* rustjail falls back to rslave for an unknown name; say so instead. */
        unsigned long flags;
        if (!ka_propagation_parse(prop, &flags))
            return INVALID(err, "unknown rootfs propagation \"%.64s\"", prop);
        /* rustjail applies it to "/" with MS_REC whatever the name. */
        out->rootfs_propagation = flags | MS_REC;
    }

    if (in->n_maskedpaths > 0) {
        out->masked_paths = dup_strv(in->maskedpaths, in->n_maskedpaths);
        out->n_masked_paths = in->n_maskedpaths;
    }
    if (in->n_readonlypaths > 0) {
        out->readonly_paths = dup_strv(in->readonlypaths, in->n_readonlypaths);
        out->n_readonly_paths = in->n_readonlypaths;
    }
    out->cgroups_path = dup_or_null(in->cgroupspath);
    if (ka_resources_from_proto(in->resources, &out->resources, err) < 0)
        return ka_error_wrap(err, "resources");
    if (in->seccomp && convert_seccomp(in->seccomp, &out->seccomp, err) < 0)
        return -1;
    return 0;
}

/* ---- spec ----------------------------------------------------------------- */

static void spec_freep(struct ka_spec **s)
{
    ka_spec_free(*s);
}

int ka_spec_from_proto(const Grpc__Spec *in, struct ka_spec **out, struct ka_error *err)
{
    *out = NULL;
    if (!in)
        return INVALID(err, "no spec given");
    if (!in->process)
        return INVALID(err, "spec has no process");
    if (!in->root)
        return INVALID(err, "spec has no root");
    /* rustjail refuses a spec without one too: no namespaces to create. */
    if (!in->linux)
        return INVALID(err, "spec has no linux section");
    if (check_count("mounts", in->n_mounts, KA_SPEC_MAX_MOUNTS, err) < 0)
        return -1;

    __attribute__((cleanup(spec_freep))) struct ka_spec *spec = ka_xcalloc(1, sizeof(*spec));
    if (convert_process(in->process, &spec->process, err) < 0)
        return ka_error_wrap(err, "process");

    spec->root_path = dup_or_empty(in->root->path);
    spec->root_readonly = in->root->readonly;
    spec->hostname = dup_or_null(in->hostname);
    for (size_t i = 0; i < in->n_annotations; i++) {
        const Grpc__Spec__AnnotationsEntry *a = in->annotations[i];
        if (a->key && strcmp(a->key, KA_TERMINATION_MESSAGE_PATH_ANNOTATION) == 0 && a->value &&
            a->value[0] && strlen(a->value) < 4096) {
            free(spec->termination_message_path);
            spec->termination_message_path = ka_xstrdup(a->value);
        }
    }

    if (in->n_mounts > 0) {
        spec->mounts = ka_xcalloc(in->n_mounts, sizeof(*spec->mounts));
        spec->n_mounts = in->n_mounts;
        for (size_t i = 0; i < in->n_mounts; i++)
            convert_mount(in->mounts[i], &spec->mounts[i]);
    }

    if (convert_linux(in->linux, spec, err) < 0)
        return -1;
    if (ka_spec_validate(spec, err) < 0)
        return -1;
    *out = take_ptr(spec);
    return 0;
}
