#include "core/path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/util.h"

/* The inode number of the procfs root (fs/proc/root.c); symlinks there ("self",
 * "thread-self", "mounts", "net") are ordinary ones, all others on procfs are the
 * magic kind. */
#define PROC_ROOT_INO 1

/* openat2(RESOLVE_IN_ROOT) answers EAGAIN when a rename or mount raced with a ".."
 * step; it is safe to retry, but not for ever. */
#define OPENAT2_RETRIES 64

static bool openat2_enabled = true;

void ka_path_set_openat2(bool enabled)
{
    openat2_enabled = enabled;
}

static int sys_openat2(int dirfd, const char *path, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t)(unsigned)flags,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    /* Unlike open(2), openat2 refuses a mode that O_CREAT/O_TMPFILE do not use. */
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
        how.mode = mode;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* ---- The user-space walk ---------------------------------------------------- */

/* The directories between the root and the current position, innermost last.
 * Keeping them (rather than opening "..") means ".." goes back the way we came,
 * so a directory moved out of the root meanwhile cannot take us with it. */
struct walk {
    int rootfd; /* borrowed */
    int *dirs;  /* owned */
    size_t n;
    size_t cap;
};

static int walk_top(const struct walk *w)
{
    return w->n ? w->dirs[w->n - 1] : w->rootfd;
}

static void walk_push(struct walk *w, int fd)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->dirs = ka_xrealloc(w->dirs, w->cap * sizeof(*w->dirs));
    }
    w->dirs[w->n++] = fd;
}

/* ".." at the root stays at the root, as RESOLVE_IN_ROOT does. */
static void walk_pop(struct walk *w)
{
    if (w->n)
        close(w->dirs[--w->n]);
}

static void walk_reset(struct walk *w)
{
    while (w->n)
        walk_pop(w);
}

/* Whether a symlink found in dirfd is a magic link: on procfs, anything below the
 * procfs root (/proc/<pid>/fd/N, exe, cwd, root, ns/..., map_files/...). */
static bool in_magic_link_dir(int dirfd)
{
    struct statfs sfs;
    struct stat st;
    if (fstatfs(dirfd, &sfs) < 0 || fstat(dirfd, &st) < 0)
        return true; /* cannot tell: refuse */
    return sfs.f_type == PROC_SUPER_MAGIC && st.st_ino != PROC_ROOT_INO;
}

/* The component `name` in dirfd is a symlink: make *buf "<target>/<rest>" (or just
 * "<target>" when the link was the last component) and restart from the root for
 * an absolute target. `rest` points into *buf. */
static int expand_symlink(struct walk *w, int dirfd, const char *name, char **buf, const char *rest,
                          bool more, int *hops)
{
    if (++*hops > KA_PATH_MAX_SYMLINKS)
        return -ELOOP;
    if (in_magic_link_dir(dirfd))
        return -ELOOP; /* as RESOLVE_NO_MAGICLINKS */

    char target[PATH_MAX];
    ssize_t len = readlinkat(dirfd, name, target, sizeof(target));
    if (len < 0)
        return -errno;
    if (len == 0)
        return -ENOENT; /* the kernel's answer for an empty symlink */
    if ((size_t)len >= sizeof(target))
        return -ENAMETOOLONG;

    size_t rlen = strlen(rest);
    char *nbuf = ka_xmalloc((size_t)len + 1 + rlen + 1);
    memcpy(nbuf, target, (size_t)len);
    if (more) {
        /* Keep the '/' even when nothing follows: "link/" must name a directory. */
        nbuf[len] = '/';
        memcpy(nbuf + len + 1, rest, rlen + 1);
    } else {
        nbuf[len] = '\0';
    }
    if (target[0] == '/')
        walk_reset(w);
    free(*buf);
    *buf = nbuf;
    return 0;
}

static int walk_open(int rootfd, const char *path, int flags, mode_t mode)
{
    struct walk w = {.rootfd = rootfd};
    cleanup_free char *buf = ka_xstrdup(path);
    char *p = buf;
    int hops = 0;
    int ret;
    /* O_CREAT|O_EXCL never follows a final symlink (open(2) answers EEXIST). */
    bool follow_last = !(flags & O_NOFOLLOW) && !((flags & O_CREAT) && (flags & O_EXCL));

    for (;;) {
        while (*p == '/')
            p++;
        if (*p == '\0') {
            /* The path ended on a directory we hold: the root, ".", "..", "dir/". */
            ret = openat(walk_top(&w), ".", flags | O_CLOEXEC, mode);
            if (ret < 0)
                ret = -errno;
            break;
        }

        char *end = strchrnul(p, '/');
        bool last = *end == '\0';
        char *rest = last ? end : end + 1;
        *end = '\0';
        if (end - p > NAME_MAX) {
            ret = -ENAMETOOLONG;
            break;
        }
        if (strcmp(p, ".") == 0) {
            p = rest;
            continue;
        }
        if (strcmp(p, "..") == 0) {
            walk_pop(&w);
            p = rest;
            continue;
        }

        int dirfd = walk_top(&w);
        if (!last) {
            int fd = openat(dirfd, p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                ret = -errno;
                break;
            }
            struct stat st;
            if (fstat(fd, &st) < 0) {
                ret = -errno;
                close(fd);
                break;
            }
            if (S_ISLNK(st.st_mode)) {
                close(fd);
                ret = expand_symlink(&w, dirfd, p, &buf, rest, true, &hops);
                if (ret < 0)
                    break;
                p = buf;
                continue;
            }
            if (!S_ISDIR(st.st_mode)) {
                close(fd);
                ret = -ENOTDIR;
                break;
            }
            walk_push(&w, fd);
            p = rest;
            continue;
        }

        /* The last component: follow it if it is a symlink (unless told not to),
         * then open it with the caller's flags, never following anything more. */
        struct stat st;
        if (follow_last && fstatat(dirfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode)) {
            ret = expand_symlink(&w, dirfd, p, &buf, rest, false, &hops);
            if (ret < 0)
                break;
            p = buf;
            continue;
        }
        int fd = openat(dirfd, p, flags | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0) {
            ret = -errno;
            if (ret == -ELOOP && follow_last) {
                /* It turned into a symlink since the check: resolve it all the same. */
                ret = expand_symlink(&w, dirfd, p, &buf, rest, false, &hops);
                if (ret < 0)
                    break;
                p = buf;
                continue;
            }
            break;
        }
        if (follow_last && (flags & O_PATH) && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
            /* O_PATH|O_NOFOLLOW opens a symlink itself: same race as above. */
            close(fd);
            ret = expand_symlink(&w, dirfd, p, &buf, rest, false, &hops);
            if (ret < 0)
                break;
            p = buf;
            continue;
        }
        ret = fd;
        break;
    }

    walk_reset(&w);
    free(w.dirs);
    return ret;
}

/* ---- Public ------------------------------------------------------------------ */

/* A symlink loop, or a path that would leave the root, is a bad path from the
 * host (an image's /dev pointing at itself, a destination through "/..."):
 * INVALID_ARGUMENT; the negative errno is kept for callers that look at it. */
static int open_failed(struct ka_error *err, int e, const char *path)
{
    int rc = ka_error_set(err, e, "open %s", path);
    if (err && (e == ELOOP || e == EXDEV))
        err->status = KA_STATUS_INVALID_ARGUMENT;
    return rc;
}

int ka_openat_in_root(int rootfd, const char *path, int flags, mode_t mode, struct ka_error *err)
{
    if (path[0] == '\0')
        return ka_error_set(err, ENOENT, "open \"\"");
    if (strlen(path) >= PATH_MAX)
        return ka_error_set(err, ENAMETOOLONG, "open %.64s...", path);
    flags |= O_CLOEXEC;

    if (openat2_enabled) {
        for (int i = 0; i < OPENAT2_RETRIES; i++) {
            int fd = sys_openat2(rootfd, path, flags, mode);
            if (fd >= 0)
                return fd;
            if (errno == EAGAIN || errno == EINTR)
                continue;
            if (errno == ENOSYS) {
                openat2_enabled = false; /* not coming back: skip it from now on */
                break;
            }
            /* EINVAL: flags this kernel's openat2 does not know; EPERM: a seccomp
             * filter that refuses the syscall. Either way, walk. */
            if (errno == EINVAL || errno == EPERM)
                break;
            return open_failed(err, errno, path);
        }
    }

    int fd = walk_open(rootfd, path, flags, mode);
    if (fd < 0)
        return open_failed(err, -fd, path);
    return fd;
}

int ka_mkdir_p_in_root(int rootfd, const char *path, mode_t mode, struct ka_error *err)
{
    size_t len = strlen(path);
    if (len >= PATH_MAX)
        return ka_error_set(err, ENAMETOOLONG, "mkdir %.64s...", path);
    cleanup_close int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0)
        return ka_error_set(err, errno, "mkdir %s: open the root", path);

    /* Resolve each prefix afresh inside the root; when one is missing, its parent is
     * the directory the previous prefix resolved to. */
    cleanup_free char *prefix = ka_xmalloc(len + 2);
    size_t plen = 0;
    const char *p = path;
    for (;;) {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        const char *end = strchrnul(p, '/');
        size_t clen = (size_t)(end - p);
        if (clen > NAME_MAX)
            return ka_error_set(err, ENAMETOOLONG, "mkdir %s", path);
        char comp[NAME_MAX + 1];
        memcpy(comp, p, clen);
        comp[clen] = '\0';
        prefix[plen++] = '/';
        memcpy(prefix + plen, comp, clen + 1);
        plen += clen;
        p = end;

        struct ka_error lookup;
        int fd = ka_openat_in_root(rootfd, prefix, O_PATH | O_DIRECTORY, 0, &lookup);
        if (fd == -ENOENT && strcmp(comp, ".") != 0 && strcmp(comp, "..") != 0) {
            if (mkdirat(cur, comp, mode) < 0 && errno != EEXIST)
                return ka_error_set(err, errno, "mkdir %s", prefix);
            /* EEXIST with the lookup failing: a dangling symlink, which O_NOFOLLOW
             * turns into an error here rather than a directory somewhere else. */
            fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0)
                return ka_error_set(err, errno, "mkdir %s", prefix);
        } else if (fd < 0) {
            if (err)
                *err = lookup;
            return ka_error_wrap(err, "mkdir %s", path);
        }
        close(cur);
        cur = fd;
    }
    return take_fd(cur);
}

int ka_create_file_in_root(int rootfd, const char *path, mode_t mode, struct ka_error *err)
{
    struct ka_error lookup;
    int fd = ka_openat_in_root(rootfd, path, O_PATH, 0, &lookup);
    if (fd >= 0)
        return fd;
    if (fd != -ENOENT) {
        if (err)
            *err = lookup;
        return fd;
    }

    cleanup_free char *parent = ka_xstrdup(path);
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(parent, ".");
    cleanup_close int pfd = ka_mkdir_p_in_root(rootfd, parent[0] ? parent : "/", 0755, err);
    if (pfd < 0)
        return ka_error_wrap(err, "create %s", path);

    /* Created wherever the path resolves inside the root (a dangling symlink's
     * target included). O_NONBLOCK: never hang on a FIFO that appeared meanwhile. */
    cleanup_close int wfd =
        ka_openat_in_root(rootfd, path, O_CREAT | O_WRONLY | O_NONBLOCK | O_NOCTTY, mode, err);
    if (wfd < 0)
        return ka_error_wrap(err, "create %s", path);
    return ka_openat_in_root(rootfd, path, O_PATH, 0, err);
}
