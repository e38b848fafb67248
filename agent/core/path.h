/* Path resolution scoped to a root directory.
 *
 * Every path that a container image or the host controls is resolved with these
 * helpers, never with realpath() followed by open(): a symlink (absolute or
 * relative) or a ".." is interpreted as if rootfd were "/", so nothing can lead
 * out of the root. Magic links (/proc/<pid>/fd/N, /proc/<pid>/exe, ...) are
 * refused with ELOOP because they jump without going through the path.
 *
 * The kernel does this itself with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)
 * (Linux 5.6). On older kernels, or where a seccomp filter refuses openat2, the
 * same resolution is done in user space: one O_PATH|O_NOFOLLOW step per component,
 * symlinks expanded by hand (at most KA_PATH_MAX_SYMLINKS of them, as the kernel
 * allows), ".." clamped at the root.
 *
 * All functions return a new fd (O_CLOEXEC) or a negative errno with err set.
 */
#ifndef KA_CORE_PATH_H
#define KA_CORE_PATH_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/error.h"

/* Symlinks followed in one resolution before ELOOP (the kernel's MAXSYMLINKS). */
#define KA_PATH_MAX_SYMLINKS 40

/* Open `path` (absolute or relative; both are taken inside the root) with open(2)
 * `flags` and `mode`. O_CREAT creates the file where the path resolves inside the
 * root (also through a dangling symlink); O_NOFOLLOW leaves a final symlink
 * unfollowed, as open(2) does. */
int ka_openat_in_root(int rootfd, const char *path, int flags, mode_t mode, struct ka_error *err);

/* Create every missing directory of `path` inside the root (with `mode`, minus the
 * umask) and return an O_PATH fd to the last one. Existing components may be
 * symlinks (resolved inside the root); a dangling symlink in the way is an error. */
int ka_mkdir_p_in_root(int rootfd, const char *path, mode_t mode, struct ka_error *err);

/* Make sure `path` exists inside the root, creating missing parent directories
 * (0755) and, when the path itself is missing, an empty regular file with `mode`
 * (the mount point for a bind-mounted file). Returns an O_PATH fd to it, whatever
 * its type when it already existed. */
int ka_create_file_in_root(int rootfd, const char *path, mode_t mode, struct ka_error *err);

/* Test hook: false forces the user-space walk even where openat2 works. */
void ka_path_set_openat2(bool enabled);

#endif
