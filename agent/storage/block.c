/* Block storages ("blk", "mmioblk", "scsi", "nvdimm") and Storage.fs_group. The
 * RPC layer waits for a hotplugged device (rpc/devices.h) and hands us its /dev
 * node as the source; a PCI path or SCSI address reaching here was not resolved. */
#include "storage/storage_int.h"
#include "core/util.h"

#include <blkid.h>
#include <errno.h>
#include <ftw.h>
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

int ka_st_mount_block(const struct ka_storage *st, struct ka_error *err)
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
    if (ka_st_mkdir_p(st->mount_point, 0755, err) < 0)
        return -1;
    if (ka_st_mounted_as(st->mount_point, fstype))
        return 0;
    if (mount(st->source, st->mount_point, fstype, po.flags, po.data) < 0)
        return ka_error_set(err, errno, "mount %s (%s) on %s", st->source, fstype, st->mount_point);
    return 0;
}

/* nftw has no user pointer: the walk's parameters live here for its duration
 * (one thread, and nothing re-enters a walk). */
static struct {
    gid_t gid;
    mode_t mask;
    int errnum;
    char path[256];
} fsg_walk;

static int fsg_visit(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)ftw;
    /* Symlinks are left alone: chown/chmod would follow them out of the volume. */
    if (type == FTW_SL || type == FTW_SLN)
        return 0;
    if (type == FTW_NS || type == FTW_DNR) {
        fsg_walk.errnum = EACCES;
        snprintf(fsg_walk.path, sizeof(fsg_walk.path), "%s", path);
        return 1;
    }
    mode_t mask = fsg_walk.mask;
    if (type == FTW_D || type == FTW_DP)
        mask |= FSG_EXEC_MASK | S_ISGID;
    if (lchown(path, (uid_t)-1, fsg_walk.gid) < 0 ||
        chmod(path, (sb->st_mode & 07777) | mask) < 0) {
        fsg_walk.errnum = errno;
        snprintf(fsg_walk.path, sizeof(fsg_walk.path), "%s", path);
        return 1;
    }
    return 0;
}

int ka_st_apply_fs_group(const struct ka_storage *st, struct ka_error *err)
{
    if (!st->has_fs_group)
        return 0;
    bool ro = false;
    for (size_t i = 0; i < st->n_options; i++)
        if (strcmp(st->options[i], "ro") == 0)
            ro = true;
    mode_t mask = ro ? FSG_RO_MASK : FSG_RW_MASK;
    struct stat sb;
    if (stat(st->mount_point, &sb) < 0)
        return ka_error_set(err, errno, "fs_group: stat %s", st->mount_point);
    /* OnRootMismatch: a root already of the group, with the bits and setgid, is
     * taken as done (upstream set_ownership). */
    mode_t want = mask | FSG_EXEC_MASK;
    if (st->fs_group_on_root_mismatch && sb.st_gid == (gid_t)st->fs_gid &&
        (sb.st_mode & want) == want && (sb.st_mode & S_ISGID))
        return 0;
    fsg_walk.gid = (gid_t)st->fs_gid;
    fsg_walk.mask = mask;
    fsg_walk.errnum = 0;
    fsg_walk.path[0] = '\0';
    /* FTW_MOUNT: stay on the volume; FTW_PHYS: never follow a symlink. */
    int rc = nftw(st->mount_point, fsg_visit, 32, FTW_PHYS | FTW_MOUNT);
    if (rc < 0)
        return ka_error_set(err, errno, "fs_group: walk %s", st->mount_point);
    if (rc > 0)
        return ka_error_set(err, fsg_walk.errnum, "fs_group %u: %s", st->fs_gid, fsg_walk.path);
    return 0;
}
