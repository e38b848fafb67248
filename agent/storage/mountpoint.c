/* Storage mount points: where the host may ask the agent to mount, make or chmod
 * something. Only below /run/kata-containers (the runtimes send
 * /run/kata-containers/shared/containers/..., /run/kata-containers/sandbox/{shm,
 * ephemeral/<name>,local/<name>,storage/...} and /run/kata-containers/<cid>/...),
 * written without "", "." or "..", and walked one component at a time from a
 * directory fd of that root without following a symlink: a container that can
 * write below a mount point (its rootfs on the shared fs) cannot send the agent
 * elsewhere by planting a link. The caller mounts onto the fd it gets back. */
#include "storage/storage_int.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ka_st_mount_point_check(const char *mount_point, char *out, size_t size, struct ka_error *err)
{
    size_t root_len = strlen(KA_STORAGE_RUN_DIR);
    size_t len = strlen(mount_point);
    if (strncmp(mount_point, KA_STORAGE_RUN_DIR "/", root_len + 1) != 0 || len >= size ||
        len >= PATH_MAX)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "mount point '%.200s' is not below %s/", mount_point,
                                   KA_STORAGE_RUN_DIR);
    memcpy(out, mount_point, len + 1);
    /* One trailing '/' is how the runtime names the shared directory; drop it so the
     * registry counts ".../x/" and ".../x" as one mount point. */
    while (len > root_len + 1 && out[len - 1] == '/')
        out[--len] = '\0';
    const char *p = out + root_len + 1;
    for (;;) {
        const char *end = strchrnul(p, '/');
        size_t clen = (size_t)(end - p);
        /* "x/./" would name the parent (watchable-bind mirrored onto its own root);
         * "" and ".." likewise; the check is on the text, before anything is opened. */
        if (clen == 0 || (clen == 1 && p[0] == '.') || (clen == 2 && p[0] == '.' && p[1] == '.'))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "mount point '%.200s': empty, \".\" or \"..\" component",
                                       mount_point);
        if (clen > NAME_MAX)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "mount point '%.200s': component too long", mount_point);
        if (*end == '\0')
            return 0;
        p = end + 1;
    }
}

/* The root itself is the agent's (on its own /run); make it when missing. */
static int open_run_dir(struct ka_error *err)
{
    if (mkdir(KA_STORAGE_RUN_DIR, 0755) < 0 && errno != EEXIST)
        return ka_error_set(err, errno, "mkdir %s", KA_STORAGE_RUN_DIR);
    int fd = open(KA_STORAGE_RUN_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "open %s", KA_STORAGE_RUN_DIR);
    return fd;
}

/* One step: the directory `name` in dirfd, never through a symlink (O_NOFOLLOW with
 * O_DIRECTORY fails on one), made first when missing and `create`. Opening a
 * directory read-only has no side effect, and the fd serves fchmod and fdopendir. */
static int step(int dirfd, const char *name, bool create, bool *created, struct ka_error *err)
{
    *created = false;
    for (int tries = 0; tries < 2; tries++) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno == ENOTDIR || errno == ELOOP)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "%s is not a directory (symlinks are not followed)", name);
        if (errno != ENOENT || !create || tries > 0)
            return ka_error_set(err, errno, "open %s", name);
        if (mkdirat(dirfd, name, 0755) == 0)
            *created = true;
        else if (errno != EEXIST)
            return ka_error_set(err, errno, "mkdir %s", name);
    }
    return ka_error_set(err, ENOENT, "open %s", name);
}

int ka_st_open_mount_point(const char *norm, bool create, struct ka_st_mount_point *out,
                           struct ka_error *err)
{
    out->parent = out->fd = -1;
    out->created = false;
    size_t root_len = strlen(KA_STORAGE_RUN_DIR);
    if (strncmp(norm, KA_STORAGE_RUN_DIR "/", root_len + 1) != 0 || strlen(norm) >= PATH_MAX)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "mount point '%.200s' is not below %s/", norm,
                                   KA_STORAGE_RUN_DIR);
    cleanup_close int cur = open_run_dir(err);
    if (cur < 0)
        return -1;
    cleanup_close int parent = -1;
    const char *p = norm + root_len + 1;
    for (;;) {
        const char *end = strchrnul(p, '/');
        char name[NAME_MAX + 1];
        if ((size_t)(end - p) > NAME_MAX)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "name too long");
        memcpy(name, p, (size_t)(end - p));
        name[end - p] = '\0';
        bool made;
        int next = step(cur, name, create, &made, err);
        if (next < 0)
            return ka_error_wrap(err, "mount point %.200s", norm);
        if (parent >= 0)
            close(parent);
        parent = cur;
        cur = next;
        if (*end == '\0') {
            out->created = made;
            snprintf(out->leaf, sizeof(out->leaf), "%s", name);
            break;
        }
        p = end + 1;
    }
    out->parent = take_fd(parent);
    out->fd = take_fd(cur);
    return 0;
}

int ka_st_reopen_mount_point(struct ka_st_mount_point *mp, struct ka_error *err)
{
    int fd = openat(mp->parent, mp->leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "reopen %s", mp->leaf);
    close(mp->fd);
    mp->fd = fd;
    return 0;
}

void ka_st_mount_point_close(struct ka_st_mount_point *mp)
{
    if (mp->parent >= 0)
        close(mp->parent);
    if (mp->fd >= 0)
        close(mp->fd);
    mp->parent = mp->fd = -1;
}

const char *ka_st_fd_path(int fd, char buf[static KA_ST_FD_PATH_SIZE])
{
    snprintf(buf, KA_ST_FD_PATH_SIZE, "/proc/self/fd/%d", fd);
    return buf;
}
