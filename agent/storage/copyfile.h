/* CopyFile: the host writes a file tree into the guest, one request per
 * directory, per symlink and per 1 MiB chunk of a regular file.
 *
 * Unlike the 3.3.0 Rust agent (GHSA-q49m-57vm-c8cc), nothing here follows a
 * symlink or a "..": the path must start with KA_COPYFILE_ROOT, the rest is
 * walked one component at a time below that directory with O_NOFOLLOW, and
 * missing parents are created on the way (never through a symlink). */
#ifndef KA_STORAGE_COPYFILE_H
#define KA_STORAGE_COPYFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

#define KA_COPYFILE_ROOT "/run/kata-containers/shared/containers/"
/* The runtime sends 1 MiB chunks; anything bigger is refused. */
#define KA_COPYFILE_MAX_CHUNK (1u << 20)
/* A bound on the final size the host may announce. */
#define KA_COPYFILE_MAX_SIZE (64LL << 30)

struct ka_copyfile {
    const char *path; /* relative to the root (prefix stripped) */
    int64_t file_size;
    uint32_t file_mode; /* st_mode with the type bits: S_IFDIR, S_IFLNK, S_IFREG (or none) */
    uint32_t dir_mode;  /* for parents created on the way */
    int32_t uid, gid;   /* -1 leaves the owner as it is */
    int64_t offset;
    const uint8_t *data; /* a chunk, or the symlink target */
    size_t len;
};

/* Check that `path` starts with KA_COPYFILE_ROOT and return the rest (non-empty),
 * or NULL with an INVALID_ARGUMENT error. */
const char *ka_copyfile_strip_prefix(const char *path, struct ka_error *err);

/* The whole request's validation (prefix, every component a real name, sizes and
 * type), nothing touched: what ka_copyfile refuses before any side effect. */
int ka_copyfile_check(const struct ka_copyfile *req, struct ka_error *err);

/* Apply one request below rootfd. INVALID_ARGUMENT for bad input (nothing is
 * written), INTERNAL (status left unset) for system failures. */
int ka_copyfile_at(int rootfd, const struct ka_copyfile *req, struct ka_error *err);

/* The whole request: strip the prefix from req->path (the full guest path),
 * create the root if missing, apply below it. */
int ka_copyfile(const struct ka_copyfile *req, struct ka_error *err);

#endif
