/* Storages the host asks for in CreateSandbox/CreateContainer, reference-counted
 * by mount point: a second request for the same mount point only takes a
 * reference; the last release unmounts and removes it (protocol reference §3.4).
 * Drivers: "virtio-fs" and "9p" (the host's shared directory by tag), "ephemeral"
 * (tmpfs), "local" (a directory), "blk"/"mmioblk" given as a /dev node (no
 * hotplug wait yet), "overlayfs" and "watchable-bind" (a tmpfs copy kept fresh
 * with inotify). 4.x's "image_guest_pull" and "erofs.multi-layer" answer
 * UNIMPLEMENTED naming the driver; any other driver is a clear error (INVALID_ARGUMENT).
 * Neither mounts anything.
 *
 * Every mount point must lie below /run/kata-containers (watchable-bind's below
 * one of its roots, which for a rootless runtime are below /run/user/<uid>; see
 * ka_watchable_root_of), spelled without empty,
 * "." or ".." components (INVALID_ARGUMENT otherwise); it is reached one directory
 * at a time without following a symlink and mounted onto by fd, so neither the
 * host nor a container's planted link can point a storage elsewhere. Release
 * unmounts what was mounted (by the fd kept since) and removes only directories
 * the agent made. */
#ifndef KA_STORAGE_STORAGE_H
#define KA_STORAGE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

struct ka_reactor;

struct ka_storage {
    const char *driver;
    const char *source;
    const char *fstype;
    char *const *options;
    size_t n_options;
    const char *mount_point;
    /* Storage.fs_group (k8s fsGroup), when has_fs_group: the gid the mounted tree is
     * given; OnRootMismatch skips the walk when the root already matches. */
    bool has_fs_group;
    unsigned fs_gid;
    bool fs_group_on_root_mismatch;
    /* The container asking (NULL for CreateSandbox): overlay-rw puts its upper and
     * work directories under /run/kata-containers/<container_id>/. */
    const char *container_id;
    /* Storage.shared (4.x): used by several containers (a pod's emptyDir), so it
     * stays mounted when the last container lets go, until the sandbox ends. The
     * first request for a mount point decides, as upstream. */
    bool shared;
};

struct ka_storage_ref; /* one holder's reference, chained per holder */

/* Give the storage layer the reactor (watchable-bind's inotify watches). Call once
 * before serving; without it watchable-bind storages answer an error. */
void ka_storage_init(struct ka_reactor *r);

/* Mount (or take a reference on) one storage; the reference is pushed on *refs. */
int ka_storage_add(const struct ka_storage *st, struct ka_storage_ref **refs, struct ka_error *err);
/* Drop every reference on the chain; unmount and remove at zero. */
void ka_storage_release_all(struct ka_storage_ref **refs);
/* The sandbox ends: drop the references shared storages hold on themselves. */
void ka_storage_release_shared(void);

/* UpdateEphemeralMounts: remount an ephemeral storage with new options. */
int ka_storage_update_ephemeral(const struct ka_storage *st, struct ka_error *err);

/* The storage drivers this agent handles (for GetGuestDetails). */
extern const char *const ka_storage_drivers[];

#endif
