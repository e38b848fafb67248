/* Early mounts (§5.1 step 2) and /dev/ptmx (step 5). */
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
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

struct init_mount {
    const char *fstype;
    const char *source;
    const char *target;
    unsigned long flags;
    /* Only logged: a kernel without devtmpfs still has the initrd's own /dev. */
    bool may_fail;
    /* Not needed before the first answer (ka_init_late_mounts, a deferred step). */
    bool late;
};

/* The Rust agent's INIT_ROOTFS_MOUNTS, in its order: /dev/shm and /dev/pts go inside
 * the devtmpfs, so they come after it. devpts gets no options: as upstream, its ptmx
 * keeps mode 000, which only root (the agent, the debug shell) needs. */
static const struct init_mount mount_table[] = {
    {"proc", "proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, false, false},
    {"sysfs", "sysfs", "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC, false, false},
    {"devtmpfs", "dev", "/dev", MS_NOSUID, true, false},
    {"tmpfs", "tmpfs", "/dev/shm", MS_NOSUID | MS_NODEV, false, true},
    {"devpts", "devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC, false, true},
    {"tmpfs", "tmpfs", "/run", MS_NOSUID | MS_NODEV, false, true},
};

enum which_mounts { ALL_MOUNTS, EARLY_MOUNTS, LATE_MOUNTS };

int ka_init_path(char *out, size_t size, const char *root, const char *path)
{
    size_t rl = strlen(root);
    while (rl > 0 && root[rl - 1] == '/')
        rl--;
    int n = snprintf(out, size, "%.*s%s", (int)rl, root, path);
    if (n < 0 || (size_t)n >= size)
        return -ENAMETOOLONG;
    return 0;
}

int ka_init_mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* The n-th space-separated field of a line (cut in place), or NULL. */
static char *field(char *line, unsigned n)
{
    char *p = line;
    for (unsigned i = 0; i < n && p; i++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p)
        return NULL;
    p[strcspn(p, " \n")] = '\0';
    return p;
}

int ka_init_mount_fstype(const char *path, char *fstype, size_t size)
{
    cleanup_file FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    cleanup_free char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        /* id parent major:minor root mount-point options [optional...] - fstype source super.
         * The separator is found before the fields are cut. */
        char *sep = strstr(line, " - ");
        char *mnt = field(line, 4);
        if (!sep || !mnt)
            continue;
        unescape_octal(mnt);
        if (strcmp(mnt, path) != 0)
            continue;
        char *type = field(sep + 3, 0);
        if (!type || strlen(type) >= size)
            continue;
        memcpy(fstype, type, strlen(type) + 1);
        return 1;
    }
    return 0;
}

/* The superblock magic of the file systems asked about here (statfs's f_type). */
static bool fstype_magic(const char *fstype, unsigned long *magic, unsigned long *alt)
{
    static const struct {
        const char *name;
        unsigned long magic, alt;
    } table[] = {
        {"proc", PROC_SUPER_MAGIC, PROC_SUPER_MAGIC},
        {"sysfs", SYSFS_MAGIC, SYSFS_MAGIC},
        /* shmem-backed, or ramfs in a kernel without CONFIG_TMPFS */
        {"devtmpfs", TMPFS_MAGIC, RAMFS_MAGIC},
        {"tmpfs", TMPFS_MAGIC, TMPFS_MAGIC},
        {"devpts", DEVPTS_SUPER_MAGIC, DEVPTS_SUPER_MAGIC},
        {"cgroup", CGROUP_SUPER_MAGIC, CGROUP_SUPER_MAGIC},
        {"cgroup2", CGROUP2_SUPER_MAGIC, CGROUP2_SUPER_MAGIC},
    };
    for (size_t i = 0; i < KA_ARRAY_SIZE(table); i++) {
        if (strcmp(table[i].name, fstype) == 0) {
            *magic = table[i].magic;
            *alt = table[i].alt;
            return true;
        }
    }
    return false;
}

/* statx says whether a path is the root of a mount (5.8+), statfs what is mounted
 * there: two syscalls instead of reading and parsing mountinfo, which under TCG cost
 * the boot milliseconds per early mount (the scanf code run for the first time,
 * then the whole table per mount). mountinfo stays for what statfs cannot name. */
int ka_init_is_mounted(const char *path, const char *fstype)
{
    unsigned long magic, alt;
    struct statx stx;
    if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &stx) < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -errno; /* nothing there */
    if (fstype_magic(fstype, &magic, &alt) && (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)) {
        if (!(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
            return 0;
        struct statfs sfs;
        if (statfs(path, &sfs) < 0)
            return -errno;
        return (unsigned long)sfs.f_type == magic || (unsigned long)sfs.f_type == alt;
    }
    char type[64];
    int rc = ka_init_mount_fstype(path, type, sizeof(type));
    return rc == 1 ? strcmp(type, fstype) == 0 : rc;
}

static int mount_entries(const char *root, enum which_mounts which, unsigned *mounted,
                         struct ka_error *err)
{
    int first = 0;
    unsigned count = 0;
    for (size_t i = 0; i < KA_ARRAY_SIZE(mount_table); i++) {
        const struct init_mount *m = &mount_table[i];
        if ((which == EARLY_MOUNTS && m->late) || (which == LATE_MOUNTS && !m->late))
            continue;
        char target[PATH_MAX];
        if (ka_init_path(target, sizeof(target), root, m->target) < 0) {
            if (!first)
                first = ka_error_set(err, ENAMETOOLONG, "mount %s: path too long", m->target);
            continue;
        }
        /* Before /proc is up nothing can be known, and nothing is mounted yet. */
        if (ka_init_is_mounted(target, m->fstype) == 1) {
            ka_log_kv(KA_LOG_DEBUG, "mount", "already mounted", "target", target, "fstype",
                      m->fstype, NULL);
            continue;
        }
        int rc = ka_init_mkdir_p(target, 0755);
        if (rc == 0 && mount(m->source, target, m->fstype, m->flags, NULL) < 0)
            rc = -errno;
        if (rc == 0) {
            count++;
            continue;
        }
        ka_log_kv(m->may_fail ? KA_LOG_WARN : KA_LOG_ERROR, "mount", "early mount failed", "target",
                  target, "fstype", m->fstype, "error", strerror(-rc), NULL);
        if (!m->may_fail && !first)
            first = ka_error_set(err, -rc, "mount %s on %s", m->fstype, target);
    }
    if (mounted)
        *mounted = count;
    return first;
}

/* With no /dev/console in the initrd the kernel starts init with fds 0-2 closed; the
 * first file we open would then become "stdout" and receive the log. */
static void ensure_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int n = open("/dev/console", O_RDWR | O_NOCTTY);
        if (n < 0)
            n = open("/dev/null", O_RDWR);
        if (n < 0)
            continue;
        if (n != fd) {
            dup2(n, fd);
            close(n);
        }
    }
}

int ka_init_mount_table_at(const char *root, unsigned *mounted, struct ka_error *err)
{
    return mount_entries(root, ALL_MOUNTS, mounted, err);
}

int ka_init_early_mounts(struct ka_error *err)
{
    int rc = mount_entries("", EARLY_MOUNTS, NULL, err);
    ensure_std_fds();
    return rc;
}

int ka_init_late_mounts(struct ka_error *err)
{
    return mount_entries("", LATE_MOUNTS, NULL, err);
}

int ka_init_ptmx_at(const char *root, struct ka_error *err)
{
    char path[PATH_MAX];
    if (ka_init_path(path, sizeof(path), root, "/dev/ptmx") < 0)
        return ka_error_set(err, ENAMETOOLONG, "/dev/ptmx under %s", root);
    if (unlink(path) < 0 && errno != ENOENT)
        return ka_error_set(err, errno, "remove %s", path);
    if (symlink("pts/ptmx", path) < 0)
        return ka_error_set(err, errno, "symlink %s -> pts/ptmx", path);
    return 0;
}
