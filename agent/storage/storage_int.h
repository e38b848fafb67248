/* Helpers shared by the storage drivers (storage.c, block.c, watchable.c). */
#ifndef KA_STORAGE_STORAGE_INT_H
#define KA_STORAGE_STORAGE_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/error.h"
#include "storage/storage.h"

struct ka_reactor;

/* Options: fsgid= and mode= are the handler's (never passed to mount(2)); the rest
 * are split into MS_* flags and filesystem data by the shared option table. */
struct parsed_options {
    unsigned long flags;
    char *data; /* NULL when none */
    long fsgid;
    long mode;
};

void ka_st_parsed_options_free(struct parsed_options *po);
int ka_st_parse_options(char *const *opts, size_t n, bool mode_is_ours, struct parsed_options *po,
                        struct ka_error *err);
int ka_st_mkdir_p(const char *path, mode_t mode, struct ka_error *err);
bool ka_st_mounted_as(const char *mount_point, const char *fstype);

/* mountpoint.c: every mount point a storage names goes through these. */
#define KA_STORAGE_RUN_DIR "/run/kata-containers"

/* Check that mount_point is strictly below KA_STORAGE_RUN_DIR with no empty, "."
 * or ".." component (trailing '/' dropped) and copy the normalized path to out.
 * INVALID_ARGUMENT otherwise. */
int ka_st_mount_point_check(const char *mount_point, char *out, size_t size, struct ka_error *err);

/* A resolved mount point: fd is the directory (O_RDONLY|O_DIRECTORY), parent the
 * directory holding it under the name leaf; created when this call made it. */
struct ka_st_mount_point {
    int parent;
    int fd;
    bool created;
    char leaf[256];
};
#define KA_ST_MOUNT_POINT_INIT \
    {                          \
        .parent = -1, .fd = -1 \
    }

/* Walk a checked mount point from KA_STORAGE_RUN_DIR one component at a time,
 * never through a symlink, making missing directories (0755) when create. */
int ka_st_open_mount_point(const char *norm, bool create, struct ka_st_mount_point *out,
                           struct ka_error *err);
/* After mounting onto mp->fd: make mp->fd the root of what is now mounted there. */
int ka_st_reopen_mount_point(struct ka_st_mount_point *mp, struct ka_error *err);
void ka_st_mount_point_close(struct ka_st_mount_point *mp);

/* "/proc/self/fd/N": mount(2) and umount2(2) targets that are exactly the fd's
 * directory, whatever the path now names. */
#define KA_ST_FD_PATH_SIZE 32
const char *ka_st_fd_path(int fd, char buf[static KA_ST_FD_PATH_SIZE]);

/* block.c: mounts onto mp (resolved by the caller). */
int ka_st_mount_block(const struct ka_storage *st, struct ka_st_mount_point *mp,
                      struct ka_error *err);
/* Storage.fs_group: chgrp -R and the §3.3 mode bits on the tree whose root is the
 * directory rootfd, by file descriptor, on rootfd's filesystem only. */
int ka_st_apply_fs_group(int rootfd, const struct ka_storage *st, struct ka_error *err);

/* watchable.c: one watched copy per mount point. */
struct ka_watchable;
int ka_watchable_start(struct ka_reactor *r, const struct ka_storage *st, struct ka_watchable **out,
                       struct ka_error *err);
void ka_watchable_stop(struct ka_watchable *w);
/* Check a watchable-bind mount point: strictly below one of the watchable roots
 * (the Go runtime's, runtime-rs passthrough's, either below /run/user/<uid> for
 * a rootless runtime), no empty, "." or ".." component. The root goes to root.
 * INVALID_ARGUMENT otherwise. */
int ka_watchable_root_of(const char *mount_point, char *root, size_t size, struct ka_error *err);

#endif
