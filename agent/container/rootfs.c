/* Container rootfs setup: see rootfs.h for the preconditions and the order.
 *
 * Mounting: every target is resolved inside the rootfs with core/path.h to an
 * O_PATH fd and the mount is made onto /proc/self/fd/N, so a symlink in the image
 * can never redirect a mount outside the rootfs (the path string is never walked
 * again by the kernel). The classic mount(2) API is used rather than open_tree/
 * move_mount/mount_setattr: it works on every kernel the guest may run, and with
 * targets already pinned by fd the new API would add no safety here (no container
 * process exists yet to race with). After each mount the target is resolved again,
 * because the old fd still names the directory underneath the new mount.
 */
#include "container/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/path.h"
#include "core/util.h"

#define PROPAGATION_FLAGS (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE)
#define ATIME_FLAGS (MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME)

/* "/proc/self/fd/" + an int */
#define FD_PATH_MAX 32

static const char *fd_path(char buf[FD_PATH_MAX], int fd)
{
    snprintf(buf, FD_PATH_MAX, "/proc/self/fd/%d", fd);
    return buf;
}

/* ---- Paths -------------------------------------------------------------------- */

/* Compare two absolute paths component by component ("//dev/" equals "/dev"). */
static bool path_equal(const char *a, const char *b)
{
    for (;;) {
        while (*a == '/')
            a++;
        while (*b == '/')
            b++;
        if (*a == '\0' || *b == '\0')
            return *a == *b;
        size_t la = strcspn(a, "/");
        size_t lb = strcspn(b, "/");
        if (la != lb || memcmp(a, b, la) != 0)
            return false;
        a += la;
        b += lb;
    }
}

/* Whether `path` is `prefix` or below it, by components ("/proc2" is not under "/proc"). */
static bool path_under(const char *path, const char *prefix)
{
    for (;;) {
        while (*prefix == '/')
            prefix++;
        while (*path == '/')
            path++;
        if (*prefix == '\0')
            return true;
        size_t lp = strcspn(prefix, "/");
        size_t l = strcspn(path, "/");
        if (lp != l || memcmp(path, prefix, l) != 0)
            return false;
        path += l;
        prefix += lp;
    }
}

/* ---- /proc/self/mountinfo ------------------------------------------------------- */

struct mountinfo {
    char *root; /* the mount's root inside its filesystem */
    char *mountpoint;
    bool shared; /* has a "shared:N" optional field */
    char *fstype;
    char *superopts;
};

/* Undo the kernel's octal escapes ("\040" for a space) in place. */
static void unescape_octal(char *s)
{
    char *out = s;
    for (char *in = s; *in;) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
            in[3] >= '0' && in[3] <= '7') {
            *out++ = (char)(((in[1] - '0') << 6) | ((in[2] - '0') << 3) | (in[3] - '0'));
            in += 4;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
}

/* Split one mountinfo line in place:
 * "36 35 98:0 /root /mnt opts [optional...] - fstype source superopts". */
static bool mountinfo_parse(char *line, struct mountinfo *mi)
{
    char *field[64];
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \n", &save); t && n < KA_ARRAY_SIZE(field);
         t = strtok_r(NULL, " \n", &save))
        field[n++] = t;
    size_t sep = 6;
    while (sep < n && strcmp(field[sep], "-") != 0)
        sep++;
    if (sep + 3 >= n)
        return false;
    mi->root = field[3];
    mi->mountpoint = field[4];
    unescape_octal(mi->root);
    unescape_octal(mi->mountpoint);
    mi->shared = false;
    for (size_t i = 6; i < sep; i++)
        if (strncmp(field[i], "shared:", 7) == 0)
            mi->shared = true;
    mi->fstype = field[sep + 1];
    mi->superopts = field[sep + 3];
    return true;
}

/* Calls fn for each mount until it returns non-zero (returned) or the end (0). */
static int mountinfo_each(int (*fn)(const struct mountinfo *mi, void *data), void *data,
                          struct ka_error *err)
{
    cleanup_file FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return ka_error_set(err, errno, "open /proc/self/mountinfo");
    cleanup_free char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        struct mountinfo mi;
        if (!mountinfo_parse(line, &mi))
            continue;
        int r = fn(&mi, data);
        if (r)
            return r;
    }
    return 0;
}

/* ---- Small mount helpers -------------------------------------------------------- */

static unsigned long statfs_flags_to_ms(unsigned long f)
{
    unsigned long ms = 0;
    if (f & ST_RDONLY)
        ms |= MS_RDONLY;
    if (f & ST_NOSUID)
        ms |= MS_NOSUID;
    if (f & ST_NODEV)
        ms |= MS_NODEV;
    if (f & ST_NOEXEC)
        ms |= MS_NOEXEC;
    if (f & ST_NOATIME)
        ms |= MS_NOATIME;
    if (f & ST_NODIRATIME)
        ms |= MS_NODIRATIME;
    if (f & ST_RELATIME)
        ms |= MS_RELATIME;
    return ms;
}

/* Change the per-mount flags of the mount whose root fd names. A bind remount
 * replaces all of them, so nosuid/nodev/noexec and the atime mode already on the
 * mount are kept: dropping them silently widens the mount as root, and inside a
 * user namespace the kernel refuses it (locked flags). */
static unsigned long keep_mount_flags(const struct statfs *sfs, unsigned long flags)
{
    unsigned long cur = statfs_flags_to_ms((unsigned long)sfs->f_flags);
    flags |= cur & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
    if (!(flags & ATIME_FLAGS))
        flags |= (cur & ATIME_FLAGS) ? (cur & ATIME_FLAGS) : MS_STRICTATIME;
    return flags;
}

static int remount_bind(int fd, unsigned long flags, const char *what, struct ka_error *err)
{
    struct statfs sfs;
    if (fstatfs(fd, &sfs) < 0)
        return ka_error_set(err, errno, "remount %s: statfs", what);
    char tp[FD_PATH_MAX];
    if (mount(NULL, fd_path(tp, fd), NULL, MS_REMOUNT | MS_BIND | keep_mount_flags(&sfs, flags),
              NULL) < 0)
        return ka_error_set(err, errno, "remount %s", what);
    return 0;
}

/* After a mount on `dest`, an fd to its new root (the old one names what is below). */
static int reopen(int rootfd, const char *dest, struct ka_error *err)
{
    return ka_openat_in_root(rootfd, dest, O_PATH, 0, err);
}

/* The rootfs fd is opened again after every mount, in case one covered the rootfs. */
static int reopen_root(const char *rootfs, int *rootfd, struct ka_error *err)
{
    int fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "open rootfs %s", rootfs);
    if (*rootfd >= 0)
        close(*rootfd);
    *rootfd = fd;
    return 0;
}

/* The last spec mount on /dev, if any. */
static const struct ka_mount *dev_mount(const struct ka_spec *spec)
{
    const struct ka_mount *found = NULL;
    for (size_t i = 0; i < spec->n_mounts; i++)
        if (path_equal(spec->mounts[i].destination, "/dev"))
            found = &spec->mounts[i];
    return found;
}

/* ---- Step 1: propagation and the rootfs bind ------------------------------------- */

struct parent_mount {
    const char *rootfs;
    char *mountpoint;
    size_t len;
    bool shared;
};

static int find_parent_mount(const struct mountinfo *mi, void *data)
{
    struct parent_mount *pm = data;
    size_t len = strlen(mi->mountpoint);
    /* ">=": of mounts stacked on one mount point, the last listed is the visible one. */
    if (path_under(pm->rootfs, mi->mountpoint) && (!pm->mountpoint || len >= pm->len)) {
        free(pm->mountpoint);
        pm->mountpoint = ka_xstrdup(mi->mountpoint);
        pm->len = len;
        pm->shared = mi->shared;
    }
    return 0;
}

/* pivot_root and MS_MOVE refuse a rootfs whose parent mount is shared (possible
 * with rootfsPropagation "shared"); as runc and rustjail do, make that one private. */
static int make_parent_private(const char *rootfs, struct ka_error *err)
{
    struct parent_mount pm = {.rootfs = rootfs};
    int ret = mountinfo_each(find_parent_mount, &pm, err);
    cleanup_free char *mp = pm.mountpoint;
    if (ret < 0)
        return ret;
    if (mp && pm.shared && mount(NULL, mp, NULL, MS_PRIVATE, NULL) < 0)
        return ka_error_set(err, errno, "make %s private", mp);
    return 0;
}

/* ---- Step 1: spec mounts -------------------------------------------------------- */

/* Binds into /proc would let an image cover what masking relies on; runc's
 * checkProcMount allows only these lxcfs-style files, and /proc itself from a procfs. */
static const char *const proc_bind_allowed[] = {
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
};

static bool proc_bind_listed(const char *path)
{
    for (size_t i = 0; i < KA_ARRAY_SIZE(proc_bind_allowed); i++)
        if (path_equal(path, proc_bind_allowed[i]))
            return true;
    return false;
}

static int check_proc_bind(const struct ka_mount *m, struct ka_error *err)
{
    if (!path_under(m->destination, "/proc") || proc_bind_listed(m->destination))
        return 0;
    if (path_equal(m->destination, "/proc")) {
        struct statfs sfs;
        if (statfs(m->source, &sfs) < 0)
            return ka_error_set(err, errno, "bind mount %s on /proc: statfs the source", m->source);
        if (sfs.f_type == PROC_SUPER_MAGIC)
            return 0;
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "bind mount %s on /proc: the source is not a procfs", m->source);
    }
    return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                               "bind mount %s on %s: binds inside /proc are not allowed", m->source,
                               m->destination);
}

/* Where fd is, as a path inside the root whose fd is rootfd ("/proc/stat"); -1 when
 * it is not below the root (or the kernel cannot say). */
static int path_in_root(int rootfd, int fd, char *out, size_t size)
{
    char tp[FD_PATH_MAX], root[PATH_MAX], at[PATH_MAX];
    ssize_t rl = readlink(fd_path(tp, rootfd), root, sizeof(root) - 1);
    ssize_t al = readlink(fd_path(tp, fd), at, sizeof(at) - 1);
    if (rl <= 0 || al <= 0 || rl == (ssize_t)sizeof(root) - 1 || al == (ssize_t)sizeof(at) - 1)
        return -1;
    root[rl] = at[al] = '\0';
    size_t skip = strcmp(root, "/") == 0 ? 0 : (size_t)rl;
    if (strncmp(at, root, skip) != 0 || (at[skip] != '/' && at[skip] != '\0'))
        return -1;
    if ((size_t)snprintf(out, size, "%s", at[skip] ? at + skip : "/") >= size)
        return -1;
    return 0;
}

/* The destination string says nothing once the image's symlinks are followed: an
 * image's /etc/hostname -> /proc/sys/kernel/domainname put a bind on the
 * container's procfs (issue 13). So look at where the target really is: on a
 * procfs only the allowed files (and /proc itself, checked above), on a sysfs
 * nothing. */
static int check_bind_target(int rootfd, int target, const struct ka_mount *m, struct ka_error *err)
{
    struct statfs sfs;
    if (fstatfs(target, &sfs) < 0)
        return ka_error_set(err, errno, "bind mount %s on %s: statfs the target", m->source,
                            m->destination);
    if (sfs.f_type != PROC_SUPER_MAGIC && sfs.f_type != SYSFS_MAGIC)
        return 0;
    char at[PATH_MAX] = "?";
    bool resolved = path_in_root(rootfd, target, at, sizeof(at)) == 0;
    if (sfs.f_type == PROC_SUPER_MAGIC && resolved &&
        (proc_bind_listed(at) || (path_equal(at, "/proc") && path_equal(m->destination, "/proc"))))
        return 0;
    return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                               "bind mount %s on %s: the target is %s on a %s, where binds are "
                               "not allowed",
                               m->source, m->destination, at,
                               sfs.f_type == SYSFS_MAGIC ? "sysfs" : "procfs");
}

/* proc and sysfs must land on a real directory: following a symlink there is the
 * CVE-2019-19921 pattern (an image pointing /proc somewhere a later step trusts),
 * refused by runc, crun and rustjail alike. A missing one is created. */
static int check_plain_dir(int rootfd, const struct ka_mount *m, struct ka_error *err)
{
    struct ka_error lookup;
    cleanup_close int fd =
        ka_openat_in_root(rootfd, m->destination, O_PATH | O_NOFOLLOW, 0, &lookup);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0) {
        if (err)
            *err = lookup;
        return ka_error_wrap(err, "mount %s on %s", m->type, m->destination);
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return ka_error_set(err, errno, "mount %s on %s: stat", m->type, m->destination);
    if (!S_ISDIR(st.st_mode))
        return ka_error_status_set(
            err, KA_STATUS_INVALID_ARGUMENT,
            "mount %s on %s: must be mounted on an ordinary directory, not a %s", m->type,
            m->destination, S_ISLNK(st.st_mode) ? "symlink" : "file");
    return 0;
}

static int set_propagation(int rootfd, const struct ka_mount *m, struct ka_error *err)
{
    if (!m->propagation)
        return 0;
    cleanup_close int fd = reopen(rootfd, m->destination, err);
    if (fd < 0)
        return ka_error_wrap(err, "set propagation of %s", m->destination);
    char tp[FD_PATH_MAX];
    if (mount(NULL, fd_path(tp, fd), NULL, m->propagation, NULL) < 0)
        return ka_error_set(err, errno, "set propagation of %s", m->destination);
    return 0;
}

static int mount_bind(int rootfd, const struct ka_mount *m, unsigned long flags,
                      struct ka_error *err)
{
    int ret = check_proc_bind(m, err);
    if (ret < 0)
        return ret;
    /* The source is a guest path the agent prepared (trusted, §7.2); the target is
     * created as a directory, or as a file when the source is not a directory. */
    struct stat st;
    if (stat(m->source, &st) < 0)
        return ka_error_set(err, errno, "bind mount %s on %s: stat the source", m->source,
                            m->destination);
    cleanup_close int target = S_ISDIR(st.st_mode)
                                   ? ka_mkdir_p_in_root(rootfd, m->destination, 0755, err)
                                   : ka_create_file_in_root(rootfd, m->destination, 0644, err);
    if (target < 0)
        return ka_error_wrap(err, "bind mount %s on %s", m->source, m->destination);
    ret = check_bind_target(rootfd, target, m, err);
    if (ret < 0)
        return ret;
    char tp[FD_PATH_MAX];
    if (mount(m->source, fd_path(tp, target), NULL, MS_BIND | (m->recursive ? MS_REC : 0), NULL) <
        0)
        return ka_error_set(err, errno, "bind mount %s on %s", m->source, m->destination);

    /* A bind ignores every other flag: ro, nosuid... take a second, remount pass. */
    if (flags) {
        cleanup_close int fd = reopen(rootfd, m->destination, err);
        if (fd < 0)
            return ka_error_wrap(err, "bind mount %s on %s", m->source, m->destination);
        ret = remount_bind(fd, flags, m->destination, err);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* The v1 hierarchies the agent sees, read from mountinfo once per container, not
 * once per hierarchy (twelve reads and parses were part of the 16 ms a v1 container's
 * /sys/fs/cgroup took in a TCG guest). */
struct cgroup_mount {
    char *mountpoint;
    char *root;
    char *superopts;
};

struct cgroup_mounts {
    struct cgroup_mount *v;
    size_t n;
};

static int collect_cgroup_mount(const struct mountinfo *mi, void *data)
{
    struct cgroup_mounts *all = data;
    if (strcmp(mi->fstype, "cgroup") != 0)
        return 0;
    all->v = ka_xrealloc(all->v, (all->n + 1) * sizeof(*all->v));
    all->v[all->n++] = (struct cgroup_mount){ka_xstrdup(mi->mountpoint), ka_xstrdup(mi->root),
                                             ka_xstrdup(mi->superopts)};
    return 0;
}

static void cgroup_mounts_free(struct cgroup_mounts *all)
{
    for (size_t i = 0; i < all->n; i++) {
        free(all->v[i].mountpoint);
        free(all->v[i].root);
        free(all->v[i].superopts);
    }
    free(all->v);
    all->v = NULL;
    all->n = 0;
}

static bool superopts_have(const char *superopts, const char *opt, size_t len)
{
    for (const char *p = superopts; *p;) {
        size_t l = strcspn(p, ",");
        if (l == len && memcmp(p, opt, len) == 0)
            return true;
        p += l;
        if (*p == ',')
            p++;
    }
    return false;
}

/* The first hierarchy (in mountinfo's order) with every one of controllers ("cpu,cpuacct"
 * or "name=systemd", from /proc/self/cgroup), or NULL. */
static const struct cgroup_mount *find_hierarchy(const struct cgroup_mounts *all,
                                                 const char *controllers)
{
    for (size_t i = 0; i < all->n; i++) {
        bool every = true;
        for (const char *p = controllers; *p && every;) {
            size_t l = strcspn(p, ",");
            every = superopts_have(all->v[i].superopts, p, l);
            p += l;
            if (*p == ',')
                p++;
        }
        if (every)
            return &all->v[i];
    }
    return NULL;
}

static int bind_cgroup_hierarchy(int dirfd, const char *dest, const struct cgroup_mounts *all,
                                 const char *controllers, const char *cgpath, unsigned long flags,
                                 struct ka_error *err)
{
    const struct cgroup_mount *h = find_hierarchy(all, controllers);
    if (!h)
        return 0; /* listed but not mounted in the agent: nothing to show */
    const char *mountpoint = h->mountpoint, *root = h->root;
    /* The hierarchy may be mounted from a subtree; our cgroup must be inside it. */
    if (!path_under(cgpath, root))
        return 0;
    const char *rel = cgpath + (strcmp(root, "/") == 0 ? 0 : strlen(root));
    const char *base = strrchr(mountpoint, '/');
    base = base ? base + 1 : mountpoint;
    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return 0;

    cleanup_free char *source = NULL;
    if (asprintf(&source, "%s%s", mountpoint, rel) < 0)
        abort();
    if (mkdirat(dirfd, base, 0755) < 0 && errno != EEXIST)
        return ka_error_set(err, errno, "mount cgroup on %s: mkdir %s", dest, base);
    cleanup_close int sub = openat(dirfd, base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return ka_error_set(err, errno, "mount cgroup on %s: open %s", dest, base);
    char tp[FD_PATH_MAX];
    if (mount(source, fd_path(tp, sub), NULL, MS_BIND | MS_REC, NULL) < 0)
        return ka_error_set(err, errno, "mount cgroup on %s: bind %s on %s/%s", dest, source, dest,
                            base);

    /* rustjail leaves name=systemd writable for systemd in the container. */
    unsigned long rflags = flags | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (strstr(controllers, "name=systemd"))
        rflags &= ~MS_RDONLY;
    cleanup_close int top = openat(dirfd, base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (top < 0)
        return ka_error_set(err, errno, "mount cgroup on %s: open %s", dest, base);
    if (remount_bind(top, rflags, base, err) < 0)
        return ka_error_wrap(err, "mount cgroup on %s", dest);

    for (const char *p = controllers; *p;) {
        size_t l = strcspn(p, ",");
        char name[NAME_MAX + 1];
        if (l > 0 && l <= NAME_MAX && strncmp(p, "name=", 5) != 0) {
            memcpy(name, p, l);
            name[l] = '\0';
            if (strcmp(name, base) != 0 && symlinkat(base, dirfd, name) < 0 && errno != EEXIST)
                return ka_error_set(err, errno, "mount cgroup on %s: symlink %s -> %s", dest, name,
                                    base);
        }
        p += l;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* cgroup v1: a tmpfs, then a bind of the container's own cgroup of each hierarchy
 * (what the container sees is its own cgroup as the root), with symlinks for
 * combined controllers (cpu -> cpu,cpuacct); read-only by remount. This is
 * rustjail's mount_cgroups; the per-hierarchy paths are read from
 * /proc/self/cgroup, as crun does, since the caller is already in its cgroups. */
static int mount_cgroup_v1(int rootfd, const struct ka_mount *m, int target, unsigned long flags,
                           struct ka_error *err)
{
    char tp[FD_PATH_MAX];
    if (mount("tmpfs", fd_path(tp, target), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") <
        0)
        return ka_error_set(err, errno, "mount cgroup on %s: mount tmpfs", m->destination);
    cleanup_close int dir = reopen(rootfd, m->destination, err);
    if (dir < 0)
        return ka_error_wrap(err, "mount cgroup on %s", m->destination);

    __attribute__((cleanup(cgroup_mounts_free))) struct cgroup_mounts all = {0};
    int ret = mountinfo_each(collect_cgroup_mount, &all, err);
    if (ret < 0)
        return ret;
    cleanup_file FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return ka_error_set(err, errno, "mount cgroup on %s: open /proc/self/cgroup",
                            m->destination);
    cleanup_free char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        /* "4:cpu,cpuacct:/kata/abc" */
        char *controllers = strchr(line, ':');
        char *cgpath = controllers ? strchr(controllers + 1, ':') : NULL;
        if (!cgpath)
            continue;
        *controllers++ = '\0';
        *cgpath++ = '\0';
        if (controllers[0] == '\0')
            continue; /* "0::/..." is the v2 hierarchy of a hybrid host */
        ret = bind_cgroup_hierarchy(dir, m->destination, &all, controllers, cgpath, flags, err);
        if (ret < 0)
            return ret;
    }
    if (flags & MS_RDONLY)
        return remount_bind(dir, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, m->destination, err);
    return 0;
}

/* cgroup v2: a cgroup2 mount. The caller has unshared its cgroup namespace, so the
 * mount is rooted at the container's cgroup (rustjail's mount_cgroups_v2). */
static int mount_cgroup(int rootfd, const struct ka_mount *m, unsigned long flags,
                        struct ka_error *err)
{
    cleanup_close int target = ka_mkdir_p_in_root(rootfd, m->destination, 0755, err);
    if (target < 0)
        return ka_error_wrap(err, "mount cgroup on %s", m->destination);
    struct statfs sfs;
    if (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) {
        char tp[FD_PATH_MAX];
        if (mount("cgroup2", fd_path(tp, target), "cgroup2", flags, NULL) < 0)
            return ka_error_set(err, errno, "mount cgroup2 on %s", m->destination);
        return 0;
    }
    return mount_cgroup_v1(rootfd, m, target, flags, err);
}

static int mount_one(int rootfd, const struct ka_mount *m, struct ka_error *err)
{
    unsigned long flags = m->flags & ~(MS_BIND | MS_REC | MS_REMOUNT | PROPAGATION_FLAGS);
    /* /dev "ro" waits for ka_rootfs_finish: the device nodes go in first. */
    if (path_equal(m->destination, "/dev"))
        flags &= ~MS_RDONLY;

    int ret;
    if (strcmp(m->type, "cgroup") == 0) {
        ret = mount_cgroup(rootfd, m, flags, err);
    } else if (m->bind) {
        ret = mount_bind(rootfd, m, flags, err);
    } else {
        if (strcmp(m->type, "proc") == 0 || strcmp(m->type, "sysfs") == 0) {
            ret = check_plain_dir(rootfd, m, err);
            if (ret < 0)
                return ret;
        }
        cleanup_close int target = ka_mkdir_p_in_root(rootfd, m->destination, 0755, err);
        if (target < 0)
            return ka_error_wrap(err, "mount %s on %s", m->type, m->destination);
        char tp[FD_PATH_MAX];
        const char *source = m->source && m->source[0] ? m->source : m->type;
        ret = 0;
        if (mount(source, fd_path(tp, target), m->type, flags, m->data) < 0)
            ret = ka_error_set(err, errno, "mount %s on %s", m->type, m->destination);
    }
    if (ret < 0)
        return ret;
    return set_propagation(rootfd, m, err);
}

/* ---- Step 1: /dev ----------------------------------------------------------------- */

struct dev_node {
    const char *path;
    char type; /* 'c', 'b', 'p' */
    unsigned major;
    unsigned minor;
    mode_t mode;
    uid_t uid;
    gid_t gid;
};

/* rustjail's DEFAULT_DEVICES; the same list is allowed by the default device cgroup. */
static const struct dev_node default_devices[] = {
    {"/dev/null", 'c', 1, 3, 0666, 0, 0},    {"/dev/zero", 'c', 1, 5, 0666, 0, 0},
    {"/dev/full", 'c', 1, 7, 0666, 0, 0},    {"/dev/tty", 'c', 5, 0, 0666, 0, 0},
    {"/dev/urandom", 'c', 1, 9, 0666, 0, 0}, {"/dev/random", 'c', 1, 8, 0666, 0, 0},
};

static const struct {
    const char *name;
    const char *target;
} default_symlinks[] = {
    {"fd", "/proc/self/fd"},
    {"stdin", "/proc/self/fd/0"},
    {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"},
};

/* Create dirfd/name -> target, replacing whatever the image had there. */
static int replace_symlink(int dirfd, const char *name, const char *target, struct ka_error *err)
{
    if (symlinkat(target, dirfd, name) == 0)
        return 0;
    if (errno != EEXIST)
        return ka_error_set(err, errno, "symlink /dev/%s -> %s", name, target);
    if (unlinkat(dirfd, name, 0) < 0 &&
        (errno != EISDIR || unlinkat(dirfd, name, AT_REMOVEDIR) < 0))
        return ka_error_set(err, errno, "symlink /dev/%s -> %s: remove the existing entry", name,
                            target);
    if (symlinkat(target, dirfd, name) < 0)
        return ka_error_set(err, errno, "symlink /dev/%s -> %s", name, target);
    return 0;
}

/* mknod failed with EPERM (no CAP_MKNOD, a user namespace): bind the agent's node
 * at the same path instead, as rustjail's bind_dev and crun do. */
static int bind_device(int dirfd, const char *base, const struct dev_node *d, struct ka_error *err)
{
    int fd = openat(dirfd, base, O_CREAT | O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd < 0)
        return ka_error_set(err, errno, "create device %s: create the bind target", d->path);
    close(fd);
    cleanup_close int target = openat(dirfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (target < 0)
        return ka_error_set(err, errno, "create device %s: open the bind target", d->path);
    char tp[FD_PATH_MAX];
    if (mount(d->path, fd_path(tp, target), NULL, MS_BIND, NULL) < 0)
        return ka_error_set(err, errno, "create device %s: bind the agent's node", d->path);
    return 0;
}

/* The umask must be 0 while this runs (the mode is exact). */
static int create_device(int rootfd, const struct dev_node *d, struct ka_error *err)
{
    const char *slash = strrchr(d->path, '/');
    const char *base = slash ? slash + 1 : ""; /* no arithmetic on NULL */
    if (!slash || base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "create device %s: invalid path", d->path);
    cleanup_free char *parent = ka_xstrndup(d->path, (size_t)(slash - d->path));
    cleanup_close int dirfd = ka_mkdir_p_in_root(rootfd, parent[0] ? parent : "/", 0755, err);
    if (dirfd < 0)
        return ka_error_wrap(err, "create device %s", d->path);

    mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
    dev_t rdev = d->type == 'p' ? 0 : makedev(d->major, d->minor);
    int ret = mknodat(dirfd, base, type | (d->mode & 07777), rdev);
    if (ret < 0 && errno == EEXIST) {
        /* Whatever the image (or an earlier entry) left there is replaced. */
        if (unlinkat(dirfd, base, 0) < 0)
            return ka_error_set(err, errno, "create device %s: remove the existing entry", d->path);
        ret = mknodat(dirfd, base, type | (d->mode & 07777), rdev);
    }
    if (ret < 0) {
        if (errno == EPERM && type != S_IFIFO)
            return bind_device(dirfd, base, d, err);
        return ka_error_set(err, errno, "create device %s: mknod", d->path);
    }
    if (fchownat(dirfd, base, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return ka_error_set(err, errno, "create device %s: chown %u:%u", d->path, (unsigned)d->uid,
                            (unsigned)d->gid);
    return 0;
}

static int create_devices(int rootfd, const struct ka_spec *spec, struct ka_error *err)
{
    for (size_t i = 0; i < KA_ARRAY_SIZE(default_devices); i++) {
        int ret = create_device(rootfd, &default_devices[i], err);
        if (ret < 0)
            return ret;
    }
    for (size_t i = 0; i < spec->n_devices; i++) {
        const struct ka_device *sd = &spec->devices[i];
        if (!path_under(sd->path, "/dev") || path_equal(sd->path, "/dev"))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "device %s is not under /dev/", sd->path);
        if (sd->type != 'p' &&
            (sd->major < 0 || sd->major > UINT32_MAX || sd->minor < 0 || sd->minor > UINT32_MAX))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "device %s: invalid number %lld:%lld", sd->path,
                                       (long long)sd->major, (long long)sd->minor);
        struct dev_node d = {
            .path = sd->path,
            .type = sd->type == 'u' ? 'c' : sd->type,
            .major = (unsigned)sd->major,
            .minor = (unsigned)sd->minor,
            .mode = sd->has_file_mode ? (mode_t)(sd->file_mode & 07777) : 0666,
            .uid = sd->uid,
            .gid = sd->gid,
        };
        int ret = create_device(rootfd, &d, err);
        if (ret < 0)
            return ret;
    }
    return 0;
}

static int setup_dev(int rootfd, const struct ka_spec *spec, struct ka_error *err)
{
    cleanup_close int devfd = ka_mkdir_p_in_root(rootfd, "/dev", 0755, err);
    if (devfd < 0)
        return ka_error_wrap(err, "populate /dev");
    for (size_t i = 0; i < KA_ARRAY_SIZE(default_symlinks); i++) {
        int ret = replace_symlink(devfd, default_symlinks[i].name, default_symlinks[i].target, err);
        if (ret < 0)
            return ret;
    }
    /* rustjail links /dev/kcore when the agent's /proc/kcore exists. */
    if (access("/proc/kcore", F_OK) == 0) {
        int ret = replace_symlink(devfd, "kcore", "/proc/kcore", err);
        if (ret < 0)
            return ret;
    }

    mode_t old_umask = umask(0);
    int ret = create_devices(rootfd, spec, err);
    umask(old_umask);
    if (ret < 0)
        return ret;

    /* The pty multiplexer of the container's own devpts instance. */
    return replace_symlink(devfd, "ptmx", "pts/ptmx", err);
}

/* ---- proc mounts of a child that joins a pid namespace later ------------------------ */

static bool is_proc_mount(const struct ka_mount *m)
{
    return !m->bind && strcmp(m->type, "proc") == 0;
}

/* Whether spec->mounts[i] waits for the container's pid namespace: a procfs (it
 * shows the pid namespace of its mounter), or anything mounted on or under one. */
static bool proc_deferred(const struct ka_spec *spec, size_t i)
{
    if (is_proc_mount(&spec->mounts[i]))
        return true;
    for (size_t j = 0; j < i; j++)
        if (is_proc_mount(&spec->mounts[j]) &&
            path_under(spec->mounts[i].destination, spec->mounts[j].destination))
            return true;
    return false;
}

/* Whether a masked or read-only path lies in a deferred procfs. */
static bool path_in_deferred_proc(const struct ka_spec *spec, const char *path)
{
    for (size_t j = 0; j < spec->n_mounts; j++)
        if (is_proc_mount(&spec->mounts[j]) && path_under(path, spec->mounts[j].destination))
            return true;
    return false;
}

/* Before pivot_root: the mount point of a deferred procfs is checked and made now,
 * while the rootfs is writable; anything else on or under it is refused (its
 * source would be out of reach after pivot_root). */
static int prepare_deferred(int rootfd, const struct ka_mount *m, struct ka_error *err)
{
    if (!is_proc_mount(m))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "mount %s on %s: only proc may be mounted on or under a proc "
                                   "mount when the container joins the sandbox pid namespace",
                                   m->type, m->destination);
    int ret = check_plain_dir(rootfd, m, err);
    if (ret < 0)
        return ret;
    cleanup_close int target = ka_mkdir_p_in_root(rootfd, m->destination, 0755, err);
    if (target < 0)
        return ka_error_wrap(err, "mount %s on %s", m->type, m->destination);
    return 0;
}

static int rootfs_prepare(const struct ka_spec *spec, const char *rootfs, bool defer_proc,
                          struct ka_error *err);

int ka_rootfs_prepare(const struct ka_spec *spec, const char *rootfs, struct ka_error *err)
{
    return rootfs_prepare(spec, rootfs, false, err);
}

static int rootfs_prepare(const struct ka_spec *spec, const char *rootfs, bool defer_proc,
                          struct ka_error *err)
{
    unsigned long prop = spec->rootfs_propagation ? spec->rootfs_propagation : MS_SLAVE | MS_REC;
    if (mount(NULL, "/", NULL, prop, NULL) < 0)
        return ka_error_set(err, errno, "set the propagation of / to %#lx", prop);
    int ret = make_parent_private(rootfs, err);
    if (ret < 0)
        return ret;
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        return ka_error_set(err, errno, "bind mount the rootfs %s onto itself", rootfs);

    cleanup_close int rootfd = -1;
    ret = reopen_root(rootfs, &rootfd, err);
    if (ret < 0)
        return ret;
    for (size_t i = 0; i < spec->n_mounts; i++) {
        if (defer_proc && proc_deferred(spec, i))
            ret = prepare_deferred(rootfd, &spec->mounts[i], err);
        else
            ret = mount_one(rootfd, &spec->mounts[i], err);
        if (ret < 0)
            return ret;
        ret = reopen_root(rootfs, &rootfd, err);
        if (ret < 0)
            return ret;
    }

    /* With /dev bound in from the guest, the nodes are the guest's: leave them. */
    const struct ka_mount *dev = dev_mount(spec);
    if (dev && dev->bind)
        return 0;
    return setup_dev(rootfd, spec, err);
}

/* ---- Step 2: sysctls ------------------------------------------------------------- */

int ka_apply_sysctls(const struct ka_spec *spec, struct ka_error *err)
{
    if (spec->n_sysctls == 0)
        return 0;
    cleanup_close int dir = open("/proc/sys", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return ka_error_set(err, errno, "open /proc/sys");
    for (size_t i = 0; i < spec->n_sysctls; i++) {
        const struct ka_sysctl *s = &spec->sysctls[i];
        /* sysctl(8)'s convention: '.' separates, '/' stands for a '.' in a name
         * (net.ipv4.conf.eth0/100.forwarding is .../eth0.100/forwarding). */
        cleanup_free char *rel = ka_xstrdup(s->key);
        for (char *p = rel; *p; p++)
            *p = *p == '.' ? '/' : *p == '/' ? '.' : *p;
        bool ok = rel[0] != '\0';
        for (const char *p = rel; ok && *p;) {
            size_t l = strcspn(p, "/");
            ok = l > 0 && !(l == 1 && p[0] == '.') && !(l == 2 && p[0] == '.' && p[1] == '.');
            p += l;
            if (*p == '/' && *++p == '\0')
                ok = false;
        }
        if (!ok)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "sysctl %s: invalid key",
                                       s->key);

        /* Resolved with /proc/sys as the root: nothing in the key leads elsewhere. */
        cleanup_close int fd = ka_openat_in_root(dir, rel, O_WRONLY | O_NOFOLLOW, 0, err);
        if (fd < 0)
            return ka_error_wrap(err, "sysctl %s", s->key);
        size_t len = strlen(s->value);
        ssize_t n = write(fd, s->value, len);
        if (n < 0)
            return ka_error_set(err, errno, "sysctl %s=%s", s->key, s->value);
        if ((size_t)n != len)
            return ka_error_set(err, EIO, "sysctl %s=%s: short write", s->key, s->value);
    }
    return 0;
}

/* ---- Step 3: masked and read-only paths ------------------------------------------ */

static int mask_path(int rootfd, const char *path, struct ka_error *err)
{
    struct ka_error lookup;
    cleanup_close int fd = ka_openat_in_root(rootfd, path, O_PATH, 0, &lookup);
    if (fd == -ENOENT || fd == -ENOTDIR)
        return 0;
    if (fd < 0) {
        if (err)
            *err = lookup;
        return ka_error_wrap(err, "mask %s", path);
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return ka_error_set(err, errno, "mask %s: stat", path);
    char tp[FD_PATH_MAX];
    fd_path(tp, fd);
    if (S_ISDIR(st.st_mode)) {
        /* An empty read-only tmpfs hides the directory's entries (crun does this;
         * rustjail 3.3.0 tries /dev/null, which fails on a directory and is skipped). */
        if (mount("tmpfs", tp, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "nr_blocks=1,nr_inodes=1") < 0)
            return ka_error_set(err, errno, "mask %s: mount tmpfs", path);
    } else if (mount("/dev/null", tp, NULL, MS_BIND, NULL) < 0) {
        return ka_error_set(err, errno, "mask %s: bind /dev/null", path);
    }
    return 0;
}

static int readonly_path(int rootfd, const char *path, struct ka_error *err)
{
    struct ka_error lookup;
    cleanup_close int fd = ka_openat_in_root(rootfd, path, O_PATH, 0, &lookup);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0) {
        if (err)
            *err = lookup;
        return ka_error_wrap(err, "make %s read-only", path);
    }
    char tp[FD_PATH_MAX];
    fd_path(tp, fd);
    if (mount(tp, tp, NULL, MS_BIND | MS_REC, NULL) < 0)
        return ka_error_set(err, errno, "make %s read-only: bind it onto itself", path);
    cleanup_close int top = reopen(rootfd, path, err);
    if (top < 0)
        return ka_error_wrap(err, "make %s read-only", path);
    return remount_bind(top, MS_RDONLY, path, err);
}

/* Masked, then read-only paths; with only_proc false those outside a deferred
 * procfs (all of them when defer_proc is false), with only_proc true the others. */
static int mask_and_protect(int rootfd, const struct ka_spec *spec, bool defer_proc, bool only_proc,
                            struct ka_error *err)
{
    for (size_t i = 0; i < spec->n_masked_paths; i++) {
        const char *path = spec->masked_paths[i];
        if (defer_proc && path_in_deferred_proc(spec, path) != only_proc)
            continue;
        int ret = mask_path(rootfd, path, err);
        if (ret < 0)
            return ret;
    }
    for (size_t i = 0; i < spec->n_readonly_paths; i++) {
        const char *path = spec->readonly_paths[i];
        if (defer_proc && path_in_deferred_proc(spec, path) != only_proc)
            continue;
        int ret = readonly_path(rootfd, path, err);
        if (ret < 0)
            return ret;
    }
    return 0;
}

static int rootfs_finish(const struct ka_spec *spec, const char *rootfs, bool defer_proc,
                         struct ka_error *err);

int ka_rootfs_finish(const struct ka_spec *spec, const char *rootfs, struct ka_error *err)
{
    return rootfs_finish(spec, rootfs, false, err);
}

static int rootfs_finish(const struct ka_spec *spec, const char *rootfs, bool defer_proc,
                         struct ka_error *err)
{
    cleanup_close int rootfd = -1;
    int ret = reopen_root(rootfs, &rootfd, err);
    if (ret < 0)
        return ret;
    ret = mask_and_protect(rootfd, spec, defer_proc, false, err);
    if (ret < 0)
        return ret;
    const struct ka_mount *dev = dev_mount(spec);
    if (dev && (dev->flags & MS_RDONLY)) {
        cleanup_close int fd = reopen(rootfd, "/dev", err);
        if (fd < 0)
            return ka_error_wrap(err, "make /dev read-only");
        ret = remount_bind(fd, dev->flags & ~(MS_BIND | MS_REC | MS_REMOUNT | PROPAGATION_FLAGS),
                           "/dev", err);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* ---- Step 4: pivot ----------------------------------------------------------------- */

static int pivot(const char *rootfs, struct ka_error *err)
{
    cleanup_close int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (oldroot < 0)
        return ka_error_set(err, errno, "pivot_root: open /");
    cleanup_close int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (newroot < 0)
        return ka_error_set(err, errno, "pivot_root: open %s", rootfs);
    if (fchdir(newroot) < 0)
        return ka_error_set(err, errno, "pivot_root: chdir %s", rootfs);
    /* pivot_root(".", "."): the old root is stacked on the new one, so no
     * directory for it is needed in the image; it is then detached from ".". */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return ka_error_set(err, errno, "pivot_root into %s", rootfs);
    if (fchdir(oldroot) < 0)
        return ka_error_set(err, errno, "pivot_root: chdir to the old root");
    /* rslave, not rprivate, so that unmounting it cannot propagate anywhere while
     * mounts still referenced elsewhere stay intact (runc's reasoning). */
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        return ka_error_set(err, errno, "pivot_root: make the old root rslave");
    if (umount2(".", MNT_DETACH) < 0)
        return ka_error_set(err, errno, "pivot_root: detach the old root");
    if (chdir("/") < 0)
        return ka_error_set(err, errno, "chdir /");
    return 0;
}

struct mount_list {
    const char *rootfs;
    char **paths;
    size_t n;
};

static int collect_proc_sys(const struct mountinfo *mi, void *data)
{
    struct mount_list *l = data;
    if ((strcmp(mi->fstype, "proc") == 0 || strcmp(mi->fstype, "sysfs") == 0) &&
        !path_under(mi->mountpoint, l->rootfs)) {
        l->paths = ka_xrealloc(l->paths, (l->n + 1) * sizeof(*l->paths));
        l->paths[l->n++] = ka_xstrdup(mi->mountpoint);
    }
    return 0;
}

/* Without pivot_root the old root stays in the namespace under the new one. A
 * fully visible proc or sysfs there would let the container mount a fresh, unmasked
 * one (the kernel's mnt_too_revealing check counts hidden mounts), so runc and
 * rustjail detach them first, or cover them when that is refused. */
static int detach_proc_sys(const char *rootfs, struct ka_error *err)
{
    struct mount_list l = {.rootfs = rootfs};
    int ret = mountinfo_each(collect_proc_sys, &l, err);
    for (size_t i = l.n; ret >= 0 && i-- > 0;) {
        const char *mp = l.paths[i];
        /* Children first (reverse order); one may be gone with an earlier parent. */
        if (mount(NULL, mp, NULL, MS_SLAVE | MS_REC, NULL) < 0 && errno != EINVAL &&
            errno != ENOENT)
            ret = ka_error_set(err, errno, "make %s rslave", mp);
        else if (umount2(mp, MNT_DETACH) < 0) {
            if (errno == EPERM) {
                if (mount("tmpfs", mp, "tmpfs", 0, NULL) < 0)
                    ret = ka_error_set(err, errno, "cover %s with a tmpfs", mp);
            } else if (errno != EINVAL && errno != ENOENT) {
                ret = ka_error_set(err, errno, "detach %s", mp);
            }
        }
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.paths[i]);
    free(l.paths);
    return ret;
}

static int move_root(const char *rootfs, struct ka_error *err)
{
    if (chdir(rootfs) < 0)
        return ka_error_set(err, errno, "chdir %s", rootfs);
    int ret = detach_proc_sys(rootfs, err);
    if (ret < 0)
        return ret;
    if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0)
        return ka_error_set(err, errno, "move %s onto /", rootfs);
    if (chroot(".") < 0)
        return ka_error_set(err, errno, "chroot %s", rootfs);
    if (chdir("/") < 0)
        return ka_error_set(err, errno, "chdir /");
    return 0;
}

int ka_rootfs_enter(const struct ka_spec *spec, const char *rootfs, bool no_pivot,
                    struct ka_error *err)
{
    int ret = no_pivot ? move_root(rootfs, err) : pivot(rootfs, err);
    if (ret < 0)
        return ret;
    /* The rootfs bind came from a parent made slave or private, so it is not shared:
     * for "(r)shared" and "(r)unbindable" give the new "/" the propagation asked for,
     * as runc and crun do after pivot_root (on our own root now, it cannot reach the
     * agent). Not for "(r)slave": that is already so, and redoing it recursively
     * would turn a mount the spec made "shared" into a slave. */
    unsigned long prop = spec->rootfs_propagation;
    if ((prop & (MS_SHARED | MS_UNBINDABLE)) && mount(NULL, "/", NULL, prop, NULL) < 0)
        return ka_error_set(err, errno, "set the propagation of the container's / to %#lx", prop);
    if (spec->root_readonly) {
        /* By path: the container may have no /proc for /proc/self/fd. */
        struct statfs sfs;
        if (statfs("/", &sfs) < 0)
            return ka_error_set(err, errno, "make / read-only: statfs");
        /* rustjail adds nodev; only safe when the device nodes are not on "/". */
        unsigned long flags = MS_RDONLY | (dev_mount(spec) ? MS_NODEV : 0);
        if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | keep_mount_flags(&sfs, flags), NULL) < 0)
            return ka_error_set(err, errno, "make / read-only");
    }
    return 0;
}

int ka_rootfs_setup(const struct ka_spec *spec, const char *rootfs, bool no_pivot,
                    struct ka_error *err)
{
    return ka_rootfs_setup_ex(spec, rootfs, no_pivot, false, err);
}

int ka_rootfs_setup_ex(const struct ka_spec *spec, const char *rootfs, bool no_pivot,
                       bool defer_proc, struct ka_error *err)
{
    int ret = rootfs_prepare(spec, rootfs, defer_proc, err);
    if (ret < 0)
        return ret;
    ret = ka_apply_sysctls(spec, err);
    if (ret < 0)
        return ret;
    ret = rootfs_finish(spec, rootfs, defer_proc, err);
    if (ret < 0)
        return ret;
    return ka_rootfs_enter(spec, rootfs, no_pivot, err);
}

/* Mount onto the directory fd names without /proc/self/fd (there is no /proc
 * yet): through the working directory. */
static int mount_on_dir_fd(int dirfd, const char *source, const char *type, unsigned long flags,
                           const void *data)
{
    if (fchdir(dirfd) < 0)
        return -1;
    return mount(source, ".", type, flags, data);
}

int ka_rootfs_mount_deferred_proc(const struct ka_spec *spec, struct ka_error *err)
{
    cleanup_close int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return ka_error_set(err, errno, "open /");
    bool any = false;
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct ka_mount *m = &spec->mounts[i];
        if (!is_proc_mount(m))
            continue;
        any = true;
        int ret = check_plain_dir(rootfd, m, err);
        if (ret < 0)
            return ret;
        cleanup_close int target =
            ka_openat_in_root(rootfd, m->destination, O_PATH | O_DIRECTORY, 0, err);
        if (target < 0)
            return ka_error_wrap(err, "mount proc on %s", m->destination);
        unsigned long flags = m->flags & ~(MS_BIND | MS_REC | MS_REMOUNT | PROPAGATION_FLAGS);
        const char *source = m->source && m->source[0] ? m->source : m->type;
        if (mount_on_dir_fd(target, source, m->type, flags, m->data) < 0)
            return ka_error_set(err, errno, "mount proc on %s", m->destination);
        if (m->propagation) {
            cleanup_close int top = reopen(rootfd, m->destination, err);
            if (top < 0)
                return ka_error_wrap(err, "set propagation of %s", m->destination);
            if (mount_on_dir_fd(top, NULL, NULL, m->propagation, NULL) < 0)
                return ka_error_set(err, errno, "set propagation of %s", m->destination);
        }
    }
    if (chdir("/") < 0)
        return ka_error_set(err, errno, "chdir /");
    if (!any)
        return 0;
    return mask_and_protect(rootfd, spec, true, true, err);
}
