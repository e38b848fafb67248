/* watchable-bind: k8s configmaps, secrets and projected volumes reach the guest
 * over the shared fs, which is read-only for the guest and whose updates the
 * containers must see. As upstream (watcher.rs), every watched copy lives in a
 * tmpfs at a watchable root, and the copy is bounded (16 entries, 1 MiB): a source
 * grown past that is bind-mounted instead and no longer watched. Unlike upstream's
 * 2 s poll, changes are noticed with inotify in the reactor, except on virtio-fs,
 * 9p and FUSE sources, where the host changes files without this kernel seeing it:
 * those are polled with a timerfd (watchable.h).
 *
 * A refresh is a full, stateless mirror (new or changed by size/mtime copied via a
 * temporary name and rename, so a reader never sees half a file; what the source
 * no longer has removed), which the bounds keep cheap. */
#include "storage/storage_int.h"
#include "storage/watchable.h"
#include "core/log.h"
#include "core/reactor.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* The watchable roots, as upstream 4.1 (db1cc9ed17) takes them from the mount
 * points it is given: the Go runtime's, runtime-rs' passthrough sharing's, and
 * either below /run/user/<uid> for a rootless runtime. */
#define WATCHABLE_ROOT "/run/kata-containers/shared/containers/watchable"
#define WATCHABLE_ROOT_PASSTHROUGH "/run/kata-containers/shared/containers/passthrough/watchable"
#define ROOTLESS_RUN_DIR "/run/user/"
#define WATCHABLE_MAX_ENTRIES 16          /* upstream MAX_ENTRIES_PER_STORAGE */
#define WATCHABLE_MAX_BYTES (1024 * 1024) /* upstream MAX_SIZE_PER_WATCHABLE_MOUNT */
#define WATCHABLE_MAX_DEPTH 16
#define WATCH_MASK                                                                      \
    (IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | \
     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

#define FUSE_SUPER_MAGIC 0x65735546 /* virtio-fs is FUSE underneath */
#define V9FS_MAGIC 0x01021997

bool ka_watchable_force_poll;
unsigned ka_watchable_poll_ms = KA_WATCHABLE_POLL_MS;

struct ka_watchable {
    char *src;
    char *dst;
    int ifd;               /* inotify, or -1 when polling */
    int tfd;               /* the poll timerfd, or -1 */
    struct ka_watch watch; /* on ifd or tfd */
    bool bound;            /* too large: a bind mount of the source, not watched */
};

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)ftw;
    if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
        ka_log(KA_LOG_DEBUG, "storage", "remove %s: %s", path, strerror(errno));
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* Count what a copy would take; > 0 when over the bounds. */
static int measure(const char *path, int depth, size_t *entries, size_t *bytes)
{
    struct stat sb;
    if (lstat(path, &sb) < 0)
        return -errno;
    if (!S_ISDIR(sb.st_mode)) {
        (*entries)++;
        *bytes += S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode) ? (size_t)sb.st_size : 0;
        return *entries > WATCHABLE_MAX_ENTRIES || *bytes > WATCHABLE_MAX_BYTES;
    }
    if (depth > WATCHABLE_MAX_DEPTH)
        return 1;
    cleanup_dir DIR *d = opendir(path);
    if (!d)
        return -errno;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= sizeof(sub))
            return -ENAMETOOLONG;
        struct stat ss;
        if (lstat(sub, &ss) == 0 && S_ISDIR(ss.st_mode))
            (*entries)++; /* directories count too, as in upstream's map */
        int rc = measure(sub, depth + 1, entries, bytes);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return (a->st_mode & S_IFMT) == (b->st_mode & S_IFMT) && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           (a->st_mode & 07777) == (b->st_mode & 07777) && a->st_uid == b->st_uid &&
           a->st_gid == b->st_gid;
}

/* Copy one regular file or symlink to dst through "dst.ka-tmp" and rename. */
static int copy_entry(const char *src, const struct stat *sb, const char *dst)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.ka-tmp", dst) >= sizeof(tmp))
        return -ENAMETOOLONG;
    unlink(tmp);
    if (S_ISLNK(sb->st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(src, target, sizeof(target) - 1);
        if (n < 0)
            return -errno;
        target[n] = '\0';
        if (symlink(target, tmp) < 0)
            return -errno;
    } else {
        cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in < 0)
            return -errno;
        cleanup_close int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (out < 0)
            return -errno;
        off_t left = sb->st_size;
        while (left > 0) {
            ssize_t n = sendfile(out, in, NULL, (size_t)left);
            if (n <= 0)
                break; /* shrank while copying: the next event copies again */
            left -= n;
        }
        struct timespec ts[2] = {sb->st_atim, sb->st_mtim};
        if (fchown(out, sb->st_uid, sb->st_gid) < 0 || fchmod(out, sb->st_mode & 07777) < 0 ||
            futimens(out, ts) < 0) {
            int e = errno;
            unlink(tmp);
            return -e;
        }
    }
    if (S_ISLNK(sb->st_mode)) {
        struct timespec ts[2] = {sb->st_atim, sb->st_mtim};
        if (lchown(tmp, sb->st_uid, sb->st_gid) < 0 ||
            utimensat(AT_FDCWD, tmp, ts, AT_SYMLINK_NOFOLLOW) < 0)
            ka_log(KA_LOG_DEBUG, "storage", "symlink %s attributes: %s", tmp, strerror(errno));
    }
    struct stat ds;
    if (lstat(dst, &ds) == 0 && S_ISDIR(ds.st_mode))
        rm_rf(dst);
    if (rename(tmp, dst) < 0) {
        int e = errno;
        unlink(tmp);
        return -e;
    }
    return 0;
}

/* Mirror src onto dst; adds an inotify watch on every source directory. */
static int mirror(struct ka_watchable *w, const char *src, const char *dst, int depth)
{
    struct stat sb, ds;
    if (lstat(src, &sb) < 0)
        return -errno;
    bool have = lstat(dst, &ds) == 0;
    if (!S_ISDIR(sb.st_mode)) {
        if (have && same_file(&sb, &ds))
            return 0;
        return copy_entry(src, &sb, dst);
    }
    if (depth > WATCHABLE_MAX_DEPTH)
        return -ELOOP;
    if (have && !S_ISDIR(ds.st_mode)) {
        unlink(dst);
        have = false;
    }
    if (!have && mkdir(dst, 0700) < 0)
        return -errno;
    if (chmod(dst, sb.st_mode & 07777) < 0 || lchown(dst, sb.st_uid, sb.st_gid) < 0)
        return -errno;
    if (w->ifd >= 0 && inotify_add_watch(w->ifd, src, WATCH_MASK | IN_ONLYDIR) < 0)
        ka_log(KA_LOG_DEBUG, "storage", "inotify watch %s: %s", src, strerror(errno));
    /* Symlinks after everything else: kubelet's atomic writer points "..data" at a
     * new timestamped directory, and a reader of the copy must never find it
     * pointing at a directory not copied yet, whatever order readdir gives. */
    for (int links = 0; links < 2; links++) {
        cleanup_dir DIR *d = opendir(src);
        if (!d)
            return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char s[PATH_MAX], t[PATH_MAX];
            if ((size_t)snprintf(s, sizeof(s), "%s/%s", src, de->d_name) >= sizeof(s) ||
                (size_t)snprintf(t, sizeof(t), "%s/%s", dst, de->d_name) >= sizeof(t))
                return -ENAMETOOLONG;
            struct stat es;
            if (lstat(s, &es) < 0 || S_ISLNK(es.st_mode) != (links == 1))
                continue; /* gone meanwhile (the next refresh tidies up), or the other pass */
            int rc = mirror(w, s, t, depth + 1);
            if (rc < 0 && rc != -ENOENT)
                return rc;
        }
    }
    /* What the source no longer has. */
    cleanup_dir DIR *d = opendir(dst);
    if (!d)
        return -errno;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char s[PATH_MAX], t[PATH_MAX];
        struct stat x;
        if ((size_t)snprintf(s, sizeof(s), "%s/%s", src, de->d_name) >= sizeof(s) ||
            (size_t)snprintf(t, sizeof(t), "%s/%s", dst, de->d_name) >= sizeof(t))
            continue;
        if (lstat(s, &x) < 0 && errno == ENOENT)
            rm_rf(t);
    }
    return 0;
}

/* Replace the copy by a bind mount of the source (upstream's fallback when too big). */
static int switch_to_bind(struct ka_watchable *w, struct ka_error *err)
{
    ka_reactor_del(&w->watch);
    if (w->ifd >= 0)
        close(w->ifd);
    if (w->tfd >= 0)
        close(w->tfd);
    w->ifd = w->tfd = -1;
    struct stat sb;
    if (stat(w->src, &sb) < 0)
        return ka_error_set(err, errno, "watchable source %s", w->src);
    rm_rf(w->dst);
    if (S_ISDIR(sb.st_mode) ? mkdir(w->dst, 0755) < 0 && errno != EEXIST
                            : close(open(w->dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)
        return ka_error_set(err, errno, "create %s", w->dst);
    if (mount(w->src, w->dst, "none", MS_BIND, NULL) < 0)
        return ka_error_set(err, errno, "bind %s on %s", w->src, w->dst);
    w->bound = true;
    ka_log(KA_LOG_INFO, "storage", "watchable %s is too large to copy: bind-mounted instead",
           w->src);
    return 0;
}

/* Bring the copy up to date; switches to a bind mount when over the bounds. */
static int refresh(struct ka_watchable *w, struct ka_error *err)
{
    size_t entries = 0, bytes = 0;
    int rc = measure(w->src, 0, &entries, &bytes);
    if (rc < 0)
        return ka_error_set(err, -rc, "watchable source %s", w->src);
    if (rc > 0)
        return switch_to_bind(w, err);
    rc = mirror(w, w->src, w->dst, 0);
    if (rc < 0)
        return ka_error_set(err, -rc, "copy %s to %s", w->src, w->dst);
    return 0;
}

static void on_inotify(struct ka_watch *watch, uint32_t events)
{
    (void)events;
    struct ka_watchable *w = watch->data;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    /* Drain everything pending: one refresh covers the whole burst. */
    while (read(w->ifd, buf, sizeof(buf)) > 0)
        ;
    struct ka_error err;
    if (refresh(w, &err) < 0)
        ka_log(KA_LOG_WARN, "storage", "refresh watchable %s: %s", w->dst, err.msg);
}

static void on_poll(struct ka_watch *watch, uint32_t events)
{
    (void)events;
    struct ka_watchable *w = watch->data;
    uint64_t expirations;
    if (read(w->tfd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
        return;
    struct ka_error err;
    if (refresh(w, &err) < 0)
        ka_log(KA_LOG_WARN, "storage", "refresh watchable %s: %s", w->dst, err.msg);
}

bool ka_watchable_fs_needs_poll(long f_type)
{
    return f_type == FUSE_SUPER_MAGIC || f_type == V9FS_MAGIC;
}

bool ka_watchable_polling(const struct ka_watchable *w)
{
    return w && w->tfd >= 0;
}

static int start_poll(struct ka_reactor *r, struct ka_watchable *w, struct ka_error *err)
{
    w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->tfd < 0)
        return ka_error_set(err, errno, "timerfd");
    unsigned ms = ka_watchable_poll_ms ? ka_watchable_poll_ms : KA_WATCHABLE_POLL_MS;
    struct timespec every = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    struct itimerspec its = {.it_interval = every, .it_value = every};
    if (timerfd_settime(w->tfd, 0, &its, NULL) < 0)
        return ka_error_set(err, errno, "timerfd_settime");
    return ka_reactor_add(r, &w->watch, w->tfd, EPOLLIN, on_poll, w, err);
}

/* Does p start with root followed by '/'? Returns what follows, or NULL. */
static const char *after_root(const char *p, const char *root)
{
    size_t n = strlen(root);
    return strncmp(p, root, n) == 0 && p[n] == '/' ? p + n + 1 : NULL;
}

/* The rest after "/run/user/<uid>/" (uid decimal as printed, not 0), or NULL. */
static const char *after_rootless_prefix(const char *p)
{
    const char *s = after_root(p, "/run/user");
    if (!s || s[0] < '1' || s[0] > '9')
        return NULL;
    unsigned long long uid = 0;
    while (*s >= '0' && *s <= '9' && uid <= UINT32_MAX)
        uid = uid * 10 + (unsigned)(*s++ - '0');
    return uid <= UINT32_MAX && *s == '/' ? s : NULL;
}

int ka_watchable_root_of(const char *mount_point, char *root, size_t size, struct ka_error *err)
{
    static const char *const roots[] = {WATCHABLE_ROOT, WATCHABLE_ROOT_PASSTHROUGH};
    const char *rootless = after_rootless_prefix(mount_point);
    size_t prefix = rootless ? (size_t)(rootless - mount_point) : 0;
    const char *rest = NULL;
    size_t root_len = 0;
    for (size_t i = 0; i < KA_ARRAY_SIZE(roots) && !rest; i++) {
        rest = after_root(mount_point + prefix, roots[i]);
        root_len = prefix + strlen(roots[i]);
    }
    if (!rest || root_len >= size || strlen(mount_point) >= PATH_MAX)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "watchable-bind mount point '%.200s' must be below %s/ or "
                                   "%s/ (or either below " ROOTLESS_RUN_DIR "<uid>)",
                                   mount_point, WATCHABLE_ROOT, WATCHABLE_ROOT_PASSTHROUGH);
    /* Strictly below the root, every component a real name: "" and "." would make
     * the copy the watchable root itself (mirrored over, every other copy
     * deleted), ".." somewhere else. One spelling per copy, so the registry's
     * count is right. */
    for (const char *c = rest;;) {
        const char *end = strchrnul(c, '/');
        size_t len = (size_t)(end - c);
        if (len == 0 || len > NAME_MAX || (len == 1 && c[0] == '.') ||
            (len == 2 && c[0] == '.' && c[1] == '.'))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "watchable-bind mount point '%.200s': empty, \".\" or "
                                       "\"..\" component",
                                       mount_point);
        if (*end == '\0')
            break;
        c = end + 1;
    }
    memcpy(root, mount_point, root_len);
    root[root_len] = '\0';
    return 0;
}

int ka_watchable_start(struct ka_reactor *r, const struct ka_storage *st, struct ka_watchable **out,
                       struct ka_error *err)
{
    char root[PATH_MAX];
    if (ka_watchable_root_of(st->mount_point, root, sizeof(root), err) < 0)
        return -1;
    if (st->source[0] != '/')
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "watchable-bind source must be an absolute path");
    struct stat sb;
    if (stat(st->source, &sb) < 0)
        return ka_error_set(err, errno, "watchable source %s", st->source);
    /* The shared fs is read-only for the guest: the copies live in a tmpfs. The
     * agent makes its own roots below /run/kata-containers; a rootless runtime's
     * must exist already (as upstream requires of every root): nothing is created
     * outside the agent's directory. */
    bool rootless = strncmp(root, ROOTLESS_RUN_DIR, strlen(ROOTLESS_RUN_DIR)) == 0;
    struct stat rs;
    if (rootless && (lstat(root, &rs) < 0 || !S_ISDIR(rs.st_mode)))
        return ka_error_status_set(err, KA_STATUS_NOT_FOUND, "watchable root %s is not a directory",
                                   root);
    if (!rootless && ka_st_mkdir_p(root, 0755, err) < 0)
        return -1;
    if (!ka_st_mounted_as(root, "tmpfs") &&
        mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755") < 0)
        return ka_error_set(err, errno, "mount tmpfs on %s", root);
    /* Parents of the copy (the copy itself is made by the mirror). */
    cleanup_free char *parent = ka_xstrdup(st->mount_point);
    *strrchr(parent, '/') = '\0';
    if (ka_st_mkdir_p(parent, 0755, err) < 0)
        return -1;

    struct statfs sfs;
    bool poll = ka_watchable_force_poll ||
                (statfs(st->source, &sfs) == 0 && ka_watchable_fs_needs_poll((long)sfs.f_type));

    struct ka_watchable *w = ka_xcalloc(1, sizeof(*w));
    w->src = ka_xstrdup(st->source);
    w->dst = ka_xstrdup(st->mount_point);
    w->ifd = w->tfd = -1;
    if (poll) {
        if (start_poll(r, w, err) < 0)
            goto fail;
        ka_log(KA_LOG_DEBUG, "storage",
               "watchable %s: polled every %u ms (inotify would not "
               "see the host's changes)",
               st->source, ka_watchable_poll_ms);
    } else {
        w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->ifd < 0) {
            ka_error_set(err, errno, "inotify");
            goto fail;
        }
        /* A file source: watch its directory too, for the rename that replaces it. */
        if (!S_ISDIR(sb.st_mode)) {
            cleanup_free char *dir = ka_xstrdup(st->source);
            char *slash = strrchr(dir, '/');
            slash[slash == dir ? 1 : 0] = '\0';
            if (inotify_add_watch(w->ifd, dir, WATCH_MASK | IN_ONLYDIR) < 0 ||
                inotify_add_watch(w->ifd, st->source, WATCH_MASK) < 0) {
                ka_error_set(err, errno, "inotify watch %s", st->source);
                goto fail;
            }
        }
        if (ka_reactor_add(r, &w->watch, w->ifd, EPOLLIN, on_inotify, w, err) < 0)
            goto fail;
    }
    if (refresh(w, err) < 0)
        goto fail;
    *out = w;
    return 0;
fail:
    ka_watchable_stop(w);
    return -1;
}

void ka_watchable_stop(struct ka_watchable *w)
{
    if (!w)
        return;
    ka_reactor_del(&w->watch);
    if (w->ifd >= 0)
        close(w->ifd);
    if (w->tfd >= 0)
        close(w->tfd);
    if (w->bound && umount2(w->dst, MNT_DETACH) < 0)
        ka_log(KA_LOG_WARN, "storage", "unmount %s: %s", w->dst, strerror(errno));
    rm_rf(w->dst);
    free(w->src);
    free(w->dst);
    free(w);
}
