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
