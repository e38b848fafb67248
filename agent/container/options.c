/* Name tables shared by the spec conversion, the storage handlers and the
 * credentials code: mount options (MS_* flags, propagation, fs data) and rlimits. */
#include "container/spec.h"
#include "core/util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

struct mount_opt {
    const char *name;
    bool clear; /* the option clears the flag rather than sets it */
    unsigned long flag;
};

/* The fstab/mount(8) names runc, crun and rustjail accept. */
static const struct mount_opt mount_opts[] = {
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"suid", true, MS_NOSUID},
    {"nosuid", false, MS_NOSUID},
    {"dev", true, MS_NODEV},
    {"nodev", false, MS_NODEV},
    {"exec", true, MS_NOEXEC},
    {"noexec", false, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"atime", true, MS_NOATIME},
    {"noatime", false, MS_NOATIME},
    {"diratime", true, MS_NODIRATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"lazytime", false, MS_LAZYTIME},
    {"nolazytime", true, MS_LAZYTIME},
    {"silent", false, MS_SILENT},
    {"loud", true, MS_SILENT},
    {"iversion", false, MS_I_VERSION},
    {"noiversion", true, MS_I_VERSION},
};

struct propagation_opt {
    const char *name;
    unsigned long flags;
};

static const struct propagation_opt propagation_opts[] = {
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

static const struct propagation_opt *find_propagation(const char *name)
{
    for (size_t i = 0; i < KA_ARRAY_SIZE(propagation_opts); i++)
        if (strcmp(name, propagation_opts[i].name) == 0)
            return &propagation_opts[i];
    return NULL;
}

bool ka_propagation_parse(const char *name, unsigned long *flags)
{
    const struct propagation_opt *p = find_propagation(name);
    if (p)
        *flags = p->flags;
    return p != NULL;
}

void ka_mount_parse_options(char *const *options, size_t n_options, struct ka_mount *m)
{
    /* Two passes: the first sizes data, so it is allocated once. Lengths are
     * bounded by the request, which the ttrpc layer caps at 4 MiB. */
    size_t data_len = 0;
    free(m->data);
    m->data = NULL;
    for (int pass = 0; pass < 2; pass++) {
        size_t pos = 0;
        for (size_t i = 0; i < n_options; i++) {
            const char *o = options[i];
            if (!o || o[0] == '\0' || strcmp(o, "defaults") == 0)
                continue;
            if (strcmp(o, "bind") == 0 || strcmp(o, "rbind") == 0) {
                bool rec = o[0] == 'r';
                if (pass == 0) {
                    m->bind = true;
                    m->flags |= MS_BIND;
                    if (rec) {
                        m->recursive = true;
                        m->flags |= MS_REC;
                    }
                }
                continue;
            }
            const struct propagation_opt *p = find_propagation(o);
            if (p) {
                if (pass == 0)
                    m->propagation = p->flags; /* the last one wins */
                continue;
            }
            const struct mount_opt *mo = NULL;
            for (size_t j = 0; j < KA_ARRAY_SIZE(mount_opts); j++)
                if (strcmp(o, mount_opts[j].name) == 0)
                    mo = &mount_opts[j];
            if (mo) {
                if (pass == 0) {
                    if (mo->clear)
                        m->flags &= ~mo->flag;
                    else
                        m->flags |= mo->flag;
                }
                continue;
            }
            /* Anything else is for the filesystem: mode=755, size=65536k, newinstance... */
            size_t len = strlen(o);
            if (pass == 0) {
                data_len += len + 1;
            } else {
                if (pos > 0)
                    m->data[pos++] = ',';
                memcpy(m->data + pos, o, len);
                pos += len;
                m->data[pos] = '\0';
            }
        }
        if (pass == 0) {
            if (data_len == 0)
                return;
            m->data = ka_xmalloc(data_len);
        }
    }
}

static const char *const rlimit_names[RLIM_NLIMITS] = {
    [RLIMIT_CPU] = "RLIMIT_CPU",           [RLIMIT_FSIZE] = "RLIMIT_FSIZE",
    [RLIMIT_DATA] = "RLIMIT_DATA",         [RLIMIT_STACK] = "RLIMIT_STACK",
    [RLIMIT_CORE] = "RLIMIT_CORE",         [RLIMIT_RSS] = "RLIMIT_RSS",
    [RLIMIT_NPROC] = "RLIMIT_NPROC",       [RLIMIT_NOFILE] = "RLIMIT_NOFILE",
    [RLIMIT_MEMLOCK] = "RLIMIT_MEMLOCK",   [RLIMIT_AS] = "RLIMIT_AS",
    [RLIMIT_LOCKS] = "RLIMIT_LOCKS",       [RLIMIT_SIGPENDING] = "RLIMIT_SIGPENDING",
    [RLIMIT_MSGQUEUE] = "RLIMIT_MSGQUEUE", [RLIMIT_NICE] = "RLIMIT_NICE",
    [RLIMIT_RTPRIO] = "RLIMIT_RTPRIO",     [RLIMIT_RTTIME] = "RLIMIT_RTTIME",
};

const char *ka_rlimit_name(int resource)
{
    return resource >= 0 && resource < RLIM_NLIMITS && rlimit_names[resource]
               ? rlimit_names[resource]
               : "unknown rlimit";
}

int ka_rlimit_parse(const char *name)
{
    for (int r = 0; r < RLIM_NLIMITS; r++)
        if (rlimit_names[r] && strcmp(name, rlimit_names[r]) == 0)
            return r;
    return -1;
}
