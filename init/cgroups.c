/* cgroup mounts (§5.1 step 4): v1 one hierarchy per controller, as the Rust agent's
 * default, or the unified v2 hierarchy. */
#include "init/init.h"
#include "init/internal.h"

#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP_FLAGS (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME)

/* The controllers the Rust agent mounts (its CGROUPS map); others are left alone. */
static const char *const known_controllers[] = {
    "cpu",     "cpuacct",    "blkio",    "cpuset",  "memory", "devices", "freezer",
    "net_cls", "perf_event", "net_prio", "hugetlb", "pids",   "rdma",
};

static bool is_known(const char *name)
{
    for (size_t i = 0; i < KA_ARRAY_SIZE(known_controllers); i++)
        if (strcmp(name, known_controllers[i]) == 0)
            return true;
    return false;
}

/* Walk /proc/cgroups ("#subsys_name hierarchy num_cgroups enabled") calling fn for
 * every enabled controller, in the file's order. */
static void each_enabled(const char *text, void (*fn)(void *data, const char *name), void *data)
{
    const char *p = text;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[256];
        if (len < sizeof(line) && *p != '#') {
            memcpy(line, p, len);
            line[len] = '\0';
            char name[64];
            unsigned hierarchy, num, enabled;
            if (sscanf(line, "%63s %u %u %u", name, &hierarchy, &num, &enabled) == 4 && enabled)
                fn(data, name);
        }
        p = eol ? eol + 1 : NULL;
    }
}

struct presence {
    bool memory, devices;
};

static void note_presence(void *data, const char *name)
{
    struct presence *pr = data;
    if (strcmp(name, "memory") == 0)
        pr->memory = true;
    else if (strcmp(name, "devices") == 0)
        pr->devices = true;
}

enum ka_cgroup_mode ka_cgroup_choose(const char *proc_cgroups, bool unified)
{
    if (unified || !proc_cgroups)
        return KA_CGROUP_V2;
    struct presence pr = {false, false};
    each_enabled(proc_cgroups, note_presence, &pr);
    /* A kernel built without v1 memory (CONFIG_MEMCG_V1=n, or cgroup_no_v1=memory)
     * cannot give containers a v1 memory limit: v2 is the only useful layout. */
    if (!pr.memory)
        return KA_CGROUP_V2;
    return pr.devices ? KA_CGROUP_V1 : KA_CGROUP_NONE;
}

/* A cgroup hierarchy with favordynmods (6.0+), or without on a kernel that does not
 * know it. Moving a process into a cgroup takes the kernel's threadgroup rwsem for
 * writing, which waits for an RCU grace period each time unless a hierarchy favours
 * dynamic modifications: every container init and exec is such a move (13 ms each
 * in a TCG guest, v1 or v2). In exchange fork and exit take the rwsem's slower read
 * side, which costs far less than a grace period. */
static int mount_cgroup_fs(const char *type, const char *target, const char *opts)
{
    char with[256];
    snprintf(with, sizeof(with), "%s%sfavordynmods", opts ? opts : "", opts ? "," : "");
    if (mount(type, target, type, CGROUP_FLAGS, with) == 0)
        return 0;
    if (errno != EINVAL)
        return -errno;
    return mount(type, target, type, CGROUP_FLAGS, opts) == 0 ? 0 : -errno;
}

static int mount_v2(const char *base, struct ka_error *err)
{
    if (ka_init_is_mounted(base, "cgroup2") == 1)
        return 0;
    int rc = ka_init_mkdir_p(base, 0755);
    if (rc < 0)
        return ka_error_set(err, -rc, "mkdir %s", base);
    if ((rc = mount_cgroup_fs("cgroup2", base, "nsdelegate")) == 0)
        return 0;
    /* nsdelegate needs 4.15; an older kernel still gets a usable hierarchy. */
    if (rc == -EINVAL && (rc = mount_cgroup_fs("cgroup2", base, NULL)) == 0)
        return 0;
    return ka_error_set(err, -rc, "mount cgroup2 on %s", base);
}

struct v1_state {
    const char *base;
    int first;
    struct ka_error *err;
};

static void mount_controller(void *data, const char *name)
{
    struct v1_state *st = data;
    if (!is_known(name))
        return;
    char target[PATH_MAX];
    if ((size_t)snprintf(target, sizeof(target), "%s/%s", st->base, name) >= sizeof(target))
        return;
    if (ka_init_is_mounted(target, "cgroup") == 1)
        return;
    int rc = ka_init_mkdir_p(target, 0755);
    if (rc == 0)
        rc = mount_cgroup_fs("cgroup", target, name);
    if (rc == 0)
        return;
    ka_log_kv(KA_LOG_WARN, "mount", "cgroup mount failed", "controller", name, "error",
              strerror(-rc), NULL);
    if (!st->first)
        st->first = ka_error_set(st->err, -rc, "mount cgroup %s on %s", name, target);
}

static int mount_v1(const char *base, const char *proc_cgroups, struct ka_error *err)
{
    if (ka_init_is_mounted(base, "tmpfs") != 1) {
        int rc = ka_init_mkdir_p(base, 0755);
        if (rc < 0)
            return ka_error_set(err, -rc, "mkdir %s", base);
        if (mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0)
            return ka_error_set(err, errno, "mount tmpfs on %s", base);
    }
    struct v1_state st = {base, 0, err};
    each_enabled(proc_cgroups, mount_controller, &st);

    /* Hierarchical accounting, as upstream asks; a kernel that has it always on
     * accepts the 1 and ignores it. */
    char path[PATH_MAX];
    cleanup_close int fd = -1;
    if ((size_t)snprintf(path, sizeof(path), "%s/memory/memory.use_hierarchy", base) < sizeof(path))
        fd = open(path, O_WRONLY | O_CLOEXEC);
    else
        errno = ENAMETOOLONG;
    if (fd >= 0) {
        if (write(fd, "1", 1) != 1)
            ka_log(KA_LOG_WARN, "mount", "write %s: %s", path, strerror(errno));
    } else if (errno != ENOENT) {
        ka_log(KA_LOG_WARN, "mount", "open %s: %s", path, strerror(errno));
    }

    /* Read-only for this mount only (a bind remount), so nothing adds hierarchies
     * later; the controller mounts below it stay writable. A bind remount sets the
     * per-mount flags as a whole, so nosuid,nodev,noexec are restated. */
    if (mount(NULL, base, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              NULL) < 0 &&
        !st.first)
        st.first = ka_error_set(err, errno, "remount %s read-only", base);
    return st.first;
}

int ka_init_cgroups_at(const char *root, const char *proc_cgroups_path, bool unified,
                       enum ka_cgroup_mode *mode, struct ka_error *err)
{
    char base[PATH_MAX];
    if (ka_init_path(base, sizeof(base), root, CGROUP_ROOT) < 0)
        return ka_error_set(err, ENAMETOOLONG, "cgroup root under %s", root);
    size_t len;
    cleanup_free char *text = ka_init_read_file(proc_cgroups_path, 64 * 1024, &len);
    if (!text && errno != ENOENT)
        ka_log(KA_LOG_WARN, "mount", "read %s: %s", proc_cgroups_path, strerror(errno));
    enum ka_cgroup_mode m = ka_cgroup_choose(text, unified);
    if (mode)
        *mode = m;
    switch (m) {
    case KA_CGROUP_V2:
        ka_log(KA_LOG_DEBUG, "mount", "mounting cgroup v2 on %s", base);
        return mount_v2(base, err);
    case KA_CGROUP_V1:
        ka_log(KA_LOG_DEBUG, "mount", "mounting cgroup v1 hierarchies under %s", base);
        return mount_v1(base, text, err);
    case KA_CGROUP_NONE:
        break;
    }
    ka_log(KA_LOG_WARN, "mount",
           "no devices cgroup controller: not mounting any cgroups, containers get none");
    return 0;
}
