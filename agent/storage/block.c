/* Block storages ("blk", "mmioblk", "scsi", "nvdimm") and Storage.fs_group. The
 * RPC layer waits for a hotplugged device (rpc/devices.h) and hands us its /dev
 * node as the source; a PCI path or SCSI address reaching here was not resolved. */
#include "storage/storage_int.h"
#include "core/util.h"

#include <blkid.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define FSG_RO_MASK (S_IRUSR | S_IRGRP)                     /* 0440 */
#define FSG_RW_MASK (S_IRUSR | S_IWUSR | S_IRGRP | S_IWGRP) /* 0660 */
#define FSG_EXEC_MASK (S_IXUSR | S_IXGRP)                   /* 0110 */

/* The filesystem on the device, from its superblock (libblkid, as `blkid -o value -s TYPE`). */
static int probe_fstype(const char *dev, char *out, size_t size, struct ka_error *err)
{
    blkid_probe pr = blkid_new_probe_from_filename(dev);
    if (!pr)
        return ka_error_set(err, errno ? errno : EIO, "probe %s", dev);
    blkid_probe_enable_superblocks(pr, 1);
    blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
    const char *type = NULL;
    int rc = blkid_do_safeprobe(pr);
    if (rc == 0 && blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0 && type &&
        strlen(type) < size) {
        strcpy(out, type);
        blkid_free_probe(pr);
        return 0;
    }
    blkid_free_probe(pr);
    return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                               "no filesystem type given and none found on %s%s", dev,
                               rc == -2 ? " (ambiguous)" : "");
}

int ka_st_mount_block(const struct ka_storage *st, struct ka_st_mount_point *mp,
                      struct ka_error *err)
{
    if (strncmp(st->source, "/dev/", 5) != 0)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "block storage source '%.64s' is not a device node", st->source);
    struct stat sb;
    if (stat(st->source, &sb) < 0)
        return ka_error_set(err, errno, "block device %s", st->source);
    if (!S_ISBLK(sb.st_mode))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "%s is not a block device",
                                   st->source);
    char fstype[64];
    if (st->fstype && st->fstype[0]) {
        if (strlen(st->fstype) >= sizeof(fstype))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "filesystem type too long");
        strcpy(fstype, st->fstype);
    } else if (probe_fstype(st->source, fstype, sizeof(fstype), err) < 0) {
        return -1;
    }
    __attribute__((cleanup(ka_st_parsed_options_free))) struct parsed_options po = {0};
    if (ka_st_parse_options(st->options, st->n_options, false, &po, err) < 0)
        return -1;
    if (ka_st_mounted_as(st->mount_point, fstype))
        return 0;
    char target[KA_ST_FD_PATH_SIZE];
    if (mount(st->source, ka_st_fd_path(mp->fd, target), fstype, po.flags, po.data) < 0)
        return ka_error_set(err, errno, "mount %s (%s) on %s", st->source, fstype, st->mount_point);
    return ka_st_reopen_mount_point(mp, err);
}

/* Deeper trees are refused rather than walked: one open directory per level. */
#define FSG_MAX_DEPTH 256

struct fsg_walk {
    dev_t dev; /* the volume's: other filesystems mounted inside are left alone */
    gid_t gid;
    mode_t mask;
    char failed[256]; /* the name that failed, for the error */
};

/* chgrp and chmod one non-directory `name` in dirfd through an O_PATH fd: opening it
 * for real could block (a FIFO) or have side effects (a device), and O_NOFOLLOW
 * makes a symlink swapped in meanwhile the fd's own object, which is skipped. */
static int fsg_file(int dirfd, const char *name, const struct fsg_walk *w)
{
    cleanup_close int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno; /* removed meanwhile: nothing to change */
    struct stat sb;
    if (fstat(fd, &sb) < 0)
        return -errno;
    if (S_ISLNK(sb.st_mode) || S_ISDIR(sb.st_mode) || sb.st_dev != w->dev)
        return 0; /* a symlink is never followed; a directory swapped in is not walked */
    char path[KA_ST_FD_PATH_SIZE];
    /* chmod through /proc/self/fd reaches exactly the inode the fd holds. */
    if (fchownat(fd, "", (uid_t)-1, w->gid, AT_EMPTY_PATH) < 0 ||
        chmod(ka_st_fd_path(fd, path), (sb.st_mode & 07777) | w->mask) < 0)
        return -errno;
    return 0;
}

/* The directory fd (opened O_RDONLY|O_DIRECTORY|O_NOFOLLOW; owned: it becomes the
 * DIR's, so a level of the walk holds one fd) and everything below it. */
static int fsg_dir(int fd, int depth, struct fsg_walk *w)
{
    cleanup_dir DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0)
        return -errno;
    if (sb.st_dev != w->dev)
        return 0;
    if (fchown(fd, (uid_t)-1, w->gid) < 0 ||
        fchmod(fd, (sb.st_mode & 07777) | w->mask | FSG_EXEC_MASK | S_ISGID) < 0)
        return -errno;
    if (depth >= FSG_MAX_DEPTH)
        return -ELOOP;
    struct dirent *de;
    while ((errno = 0, de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int rc;
        /* O_NOFOLLOW|O_DIRECTORY: a directory replaced by a symlink fails here
         * (ELOOP/ENOTDIR) instead of taking the walk out of the volume. */
        int sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0)
            rc = fsg_dir(sub, depth + 1, w);
        else if (errno == ENOTDIR || errno == ELOOP)
            rc = fsg_file(fd, de->d_name, w);
        else
            rc = errno == ENOENT ? 0 : -errno;
        if (rc < 0) {
            if (!w->failed[0])
                snprintf(w->failed, sizeof(w->failed), "%s", de->d_name);
            return rc;
        }
    }
    return errno ? -errno : 0;
}

int ka_st_apply_fs_group(int rootfd, const struct ka_storage *st, struct ka_error *err)
{
    if (!st->has_fs_group)
        return 0;
    bool ro = false;
    for (size_t i = 0; i < st->n_options; i++)
        if (strcmp(st->options[i], "ro") == 0)
            ro = true;
    mode_t mask = ro ? FSG_RO_MASK : FSG_RW_MASK;
    struct stat sb;
    if (fstat(rootfd, &sb) < 0)
        return ka_error_set(err, errno, "fs_group: stat %s", st->mount_point);
    if (!S_ISDIR(sb.st_mode))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "fs_group: %s is not a directory", st->mount_point);
    /* OnRootMismatch: a root already of the group, with the bits and setgid, is
     * taken as done (upstream set_ownership). */
    mode_t want = mask | FSG_EXEC_MASK;
    if (st->fs_group_on_root_mismatch && sb.st_gid == (gid_t)st->fs_gid &&
        (sb.st_mode & want) == want && (sb.st_mode & S_ISGID))
        return 0;
    struct fsg_walk w = {.dev = sb.st_dev, .gid = (gid_t)st->fs_gid, .mask = mask};
    int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "fs_group: open %s", st->mount_point);
    int rc = fsg_dir(fd, 0, &w);
    if (rc < 0)
        return ka_error_set(err, -rc, "fs_group %u: %s%s%s", st->fs_gid, st->mount_point,
                            w.failed[0] ? ": " : "", w.failed);
    return 0;
}
