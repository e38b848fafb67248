/* The container's root filesystem, set up by the container child (§6.2 of the
 * protocol reference; rustjail mount.rs init_rootfs/pivot_rootfs/finish_rootfs).
 *
 * Preconditions (the spawn code's job):
 *  - the calling process is single-threaded, root in the VM (or holds
 *    CAP_SYS_ADMIN/CAP_MKNOD over its namespaces) and has not dropped credentials;
 *  - it is already in its own mount namespace (unshare(CLONE_NEWNS)) and has joined
 *    or created its other namespaces: sysctls apply to the namespaces of the writer;
 *  - it is already in the container's cgroups (v1 "cgroup" mounts bind the
 *    caller's own cgroup of each hierarchy, read from /proc/self/cgroup), and under
 *    cgroup v2 it has unshared its cgroup namespace, so that the cgroup2 mount is
 *    rooted at the container's cgroup;
 *  - the agent's /proc and /sys are mounted in that namespace (they are, as the copy
 *    of the agent's mounts): every mount is made onto /proc/self/fd/N of an O_PATH
 *    fd resolved inside the rootfs, and /proc/self/cgroup, /proc/self/mountinfo and
 *    /sys/fs/cgroup are read;
 *  - `rootfs` is the canonical absolute path of the bundle rootfs (a path the
 *    agent made; everything below it is the image's and is resolved with
 *    core/path.h so no symlink there leads out).
 *
 * The order is that of rustjail, with one difference: masked and read-only paths
 * are applied before pivot_root, through fds resolved inside the rootfs, instead of
 * after it, so that no /proc is needed inside the container for them. The mount
 * tree is the same either way because pivot_root moves the whole rootfs tree.
 */
#ifndef KA_CONTAINER_ROOTFS_H
#define KA_CONTAINER_ROOTFS_H

#include <stdbool.h>

#include "container/spec.h"
#include "core/error.h"

/* All of it, in order: ka_rootfs_prepare, ka_apply_sysctls, ka_rootfs_finish,
 * ka_rootfs_enter. For callers with prestart hooks, which run between
 * ka_rootfs_prepare and the rest (§6.5), call the steps one by one. */
int ka_rootfs_setup(const struct ka_spec *spec, const char *rootfs, bool no_pivot,
                    struct ka_error *err);

/* ka_rootfs_setup for a child that enters the container's pid namespace only
 * after pivot_root (spawn.c): with defer_proc, proc mounts (a procfs shows the pid
 * namespace of the process that mounts it) and the masked and read-only paths in
 * them are left out, their mount points checked and created; anything else to be
 * mounted on or under a proc mount is refused (INVALID_ARGUMENT). The process then
 * calls ka_rootfs_mount_deferred_proc once it is in the pid namespace. */
int ka_rootfs_setup_ex(const struct ka_spec *spec, const char *rootfs, bool no_pivot,
                       bool defer_proc, struct ka_error *err);

/* After ka_rootfs_setup_ex(defer_proc) and the setns: in the container's root,
 * mount its procfs mounts and apply the masked and read-only paths in them. */
int ka_rootfs_mount_deferred_proc(const struct ka_spec *spec, struct ka_error *err);

/* Step 1: make "/" recursively spec->rootfs_propagation (rslave by default) so
 * nothing we mount leaks back to the agent, make the rootfs's parent mount private
 * if it is shared, bind the rootfs onto itself (MS_BIND|MS_REC) so it is a mount
 * point, perform spec->mounts in order, then (unless /dev is bind-mounted from the
 * guest) create the default /dev nodes and symlinks and spec->devices. */
int ka_rootfs_prepare(const struct ka_spec *spec, const char *rootfs, struct ka_error *err);

/* Step 2 (after the prestart hooks): write spec->sysctls to /proc/sys/<key with
 * '.' as '/'> of the proc visible now (any procfs gives the caller's namespaces'
 * values). Must come before ka_rootfs_finish: /proc/sys is usually a read-only path. */
int ka_apply_sysctls(const struct ka_spec *spec, struct ka_error *err);

/* Step 3: maskedPaths (a file gets /dev/null bound over it, a directory a read-only
 * empty tmpfs; missing paths are skipped), readonlyPaths (bound onto themselves and
 * remounted read-only keeping nosuid/nodev/noexec; missing skipped), and /dev made
 * read-only if the spec's /dev mount asked for "ro". Paths resolved inside rootfs. */
int ka_rootfs_finish(const struct ka_spec *spec, const char *rootfs, struct ka_error *err);

/* Step 4: make rootfs "/": pivot_root(".", ".") and detach the old root, or with
 * no_pivot (the agent's "/" is an initramfs, where pivot_root fails with EINVAL)
 * detach every proc and sysfs mount outside the rootfs, MS_MOVE the rootfs onto "/"
 * and chroot("."). Then chdir("/"), give the new "/" spec->rootfs_propagation
 * again when it is (r)shared or (r)unbindable (runc and crun do; the rootfs bind
 * inherited a private or slave parent) and, if
 * spec->root_readonly, remount "/" read-only (and nodev when /dev is a mount of its
 * own). */
int ka_rootfs_enter(const struct ka_spec *spec, const char *rootfs, bool no_pivot,
                    struct ka_error *err);

#endif
