#include "storage/copyfile.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_SUFFIX ".tmp"

const char *ka_copyfile_strip_prefix(const char *path, struct ka_error *err)
{
    size_t n = strlen(KA_COPYFILE_ROOT);
    /* Byte-wise on the prefix with its trailing '/': ".../containers-evil/x" fails. */
    if (strncmp(path, KA_COPYFILE_ROOT, n) != 0 || path[n] == '\0') {
        ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                            "copy file %.256s: the path must be below %s", path, KA_COPYFILE_ROOT);
        return NULL;
    }
    return path + n;
}

/* Every component non-empty, not "." or "..", at most NAME_MAX bytes: "." would
 * name the root itself (a chmod and chown of the shared directory). */
static int check_rel_path(const char *rel, struct ka_error *err)
{
    if (strlen(rel) >= PATH_MAX)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "path too long");
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "empty path component");
        if ((len == 2 && p[0] == '.' && p[1] == '.') || (len == 1 && p[0] == '.'))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "\".\" and \"..\" are not allowed");
        if (len > NAME_MAX - strlen(TMP_SUFFIX))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "path component too long");
        if (!slash)
            return 0;
        p = slash + 1;
    }
}

static int check_request(const struct ka_copyfile *r, struct ka_error *err)
{
    const char *path = r->path;
    if (check_rel_path(path, err) < 0)
        return -1;
    switch (r->file_mode & S_IFMT) {
    case S_IFDIR:
        return 0;
    case S_IFLNK:
        if (r->len == 0 || r->len >= PATH_MAX || memchr(r->data, '\0', r->len))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "bad symlink target");
        return 0;
    case S_IFREG:
    case 0: /* no type bits: a regular file, as the Rust agent takes it */
        break;
    default:
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "unsupported file type 0%o",
                                   r->file_mode & S_IFMT);
    }
    if (r->len > KA_COPYFILE_MAX_CHUNK)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "%zu bytes of data (at most %u per call)", r->len,
                                   KA_COPYFILE_MAX_CHUNK);
    if (r->file_size < 0 || r->file_size > KA_COPYFILE_MAX_SIZE)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "bad file size %lld",
                                   (long long)r->file_size);
    /* Both are bounded above, so the sum cannot overflow. */
    if (r->offset < 0 || r->offset > r->file_size || r->offset + (int64_t)r->len > r->file_size)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "%zu bytes at offset %lld do not fit in "
                                   "file size %lld",
                                   r->len, (long long)r->offset, (long long)r->file_size);
    return 0;
}

/* Open (creating when missing, with mode) the directory `name` below dirfd
 * without following a symlink. Returns an O_PATH fd. */
static int open_dir_nofollow(int dirfd, const char *name, mode_t mode, struct ka_error *err)
{
    for (int tries = 0; tries < 2; tries++) {
        int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            struct stat st;
            if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
                close(fd);
                return ka_error_set(err, ENOTDIR, "%s", name);
            }
            return fd;
        }
        if (errno == ENOTDIR || errno == ELOOP)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "%s is not a directory (symlinks "
                                       "are not followed)",
                                       name);
        if (errno != ENOENT || tries > 0)
            return ka_error_set(err, errno, "open %s", name);
        if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
            return ka_error_set(err, errno, "mkdir %s", name);
    }
    return ka_error_set(err, ENOENT, "%s", name);
}

/* Walk the parents of rel below rootfd (creating them with mode) and return an
 * O_PATH fd to the last one; *base points at the final component in `buf`. */
static int open_parent(int rootfd, const char *rel, mode_t mode, char *buf, size_t size,
                       const char **base, struct ka_error *err)
{
    snprintf(buf, size, "%s", rel);
    int fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "open the root");
    char *p = buf;
    char *slash;
    while ((slash = strchr(p, '/'))) {
        *slash = '\0';
        int next = open_dir_nofollow(fd, p, mode, err);
        close(fd);
        if (next < 0)
            return -1;
        fd = next;
        p = slash + 1;
    }
    *base = p;
    return fd;
}

static int copy_dir(int parent, const char *name, const struct ka_copyfile *r, struct ka_error *err)
{
    mode_t mode = r->file_mode & 07777;
    if (mkdirat(parent, name, mode) < 0 && errno != EEXIST)
        return ka_error_set(err, errno, "mkdir");
    cleanup_close int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOTDIR || errno == ELOOP)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "exists and is not a directory");
        return ka_error_set(err, errno, "open");
    }
    /* chown first: it clears setuid/setgid, which the chmod then sets. */
    if (fchown(fd, (uid_t)r->uid, (gid_t)r->gid) < 0)
        return ka_error_set(err, errno, "chown");
    if (fchmod(fd, mode) < 0)
        return ka_error_set(err, errno, "chmod");
    return 0;
}

static int copy_symlink(int parent, const char *name, const struct ka_copyfile *r,
                        struct ka_error *err)
{
    char target[PATH_MAX];
    memcpy(target, r->data, r->len);
    target[r->len] = '\0';
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISLNK(st.st_mode))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "exists and is not a symlink");
        if (unlinkat(parent, name, 0) < 0)
            return ka_error_set(err, errno, "unlink");
    } else if (errno != ENOENT) {
        return ka_error_set(err, errno, "stat");
    }
    if (symlinkat(target, parent, name) < 0)
        return ka_error_set(err, errno, "symlink");
    if (fchownat(parent, name, (uid_t)r->uid, (gid_t)r->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return ka_error_set(err, errno, "lchown");
    return 0;
}

static int copy_chunk(int parent, const char *name, const struct ka_copyfile *r,
                      struct ka_error *err)
{
    char tmp[NAME_MAX + 1];
    /* check_rel_path bounded the name to NAME_MAX - 4. */
    snprintf(tmp, sizeof(tmp), "%.251s" TMP_SUFFIX, name);
    /* Chunks arrive one call each. The first makes the temporary afresh with O_EXCL
     * (whatever had the name, a hard link planted there included, only loses the
     * name); later ones open it without O_CREAT and refuse one that is not the
     * agent's own single-named regular file, so nothing is written through a link
     * to a file elsewhere. 0600 until the last chunk sets the mode. */
    int flags = O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
    if (r->offset == 0) {
        if (unlinkat(parent, tmp, 0) < 0 && errno != ENOENT)
            return ka_error_set(err, errno, "remove stale %s", tmp);
        flags |= O_CREAT | O_EXCL;
    }
    cleanup_close int fd = openat(parent, tmp, flags, 0600);
    if (fd < 0)
        return ka_error_set(err, errno, "open %s", tmp);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return ka_error_set(err, errno, "stat %s", tmp);
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "%s is not a regular file with one name", tmp);
    size_t done = 0;
    while (done < r->len) {
        ssize_t n = pwrite(fd, r->data + done, r->len - done, (off_t)(r->offset + (int64_t)done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ka_error_set(err, errno, "write");
        }
        done += (size_t)n;
    }
    if (r->offset + (int64_t)r->len < r->file_size)
        return 0;
    /* The last chunk: a stale longer .tmp must not leave a tail behind. */
    if (ftruncate(fd, (off_t)r->file_size) < 0)
        return ka_error_set(err, errno, "truncate");
    /* chown first: it clears setuid/setgid, which the chmod then sets. */
    if (fchown(fd, (uid_t)r->uid, (gid_t)r->gid) < 0)
        return ka_error_set(err, errno, "chown");
    if (fchmod(fd, r->file_mode & 07777) < 0)
        return ka_error_set(err, errno, "chmod");
    if (renameat(parent, tmp, parent, name) < 0)
        return ka_error_set(err, errno, "rename");
    return 0;
}

/* Apply r below rootfd; errors are prefixed "copy file <shown>". */
static int copy_at(int rootfd, const struct ka_copyfile *r, const char *shown, struct ka_error *err)
{
    if (check_request(r, err) < 0)
        return ka_error_wrap(err, "copy file %.256s", shown);
    char buf[PATH_MAX];
    const char *name = NULL;
    cleanup_close int parent =
        open_parent(rootfd, r->path, r->dir_mode & 0777, buf, sizeof(buf), &name, err);
    if (parent < 0)
        return ka_error_wrap(err, "copy file %.256s", shown);
    int rc;
    switch (r->file_mode & S_IFMT) {
    case S_IFDIR:
        rc = copy_dir(parent, name, r, err);
        break;
    case S_IFLNK:
        rc = copy_symlink(parent, name, r, err);
        break;
    default:
        rc = copy_chunk(parent, name, r, err);
        break;
    }
    return rc < 0 ? ka_error_wrap(err, "copy file %.256s", shown) : 0;
}

int ka_copyfile_at(int rootfd, const struct ka_copyfile *r, struct ka_error *err)
{
    return copy_at(rootfd, r, r->path, err);
}

int ka_copyfile_check(const struct ka_copyfile *req, struct ka_error *err)
{
    const char *rel = ka_copyfile_strip_prefix(req->path, err);
    if (!rel)
        return -1;
    struct ka_copyfile r = *req;
    r.path = rel;
    return check_request(&r, err);
}

int ka_copyfile(const struct ka_copyfile *req, struct ka_error *err)
{
    const char *rel = ka_copyfile_strip_prefix(req->path, err);
    if (!rel)
        return -1;
    struct ka_copyfile r = *req;
    r.path = rel;
    /* Reject bad input before creating the root. */
    if (check_request(&r, err) < 0)
        return ka_error_wrap(err, "copy file %.256s", req->path);
    /* The root is the agent's own (under its /run): create it when no shared
     * filesystem is mounted there, still without following symlinks. */
    static const char *const parts[] = {"run", "kata-containers", "shared", "containers"};
    cleanup_close int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "copy file %.256s: open /", req->path);
    for (size_t i = 0; i < KA_ARRAY_SIZE(parts); i++) {
        int next = open_dir_nofollow(fd, parts[i], 0755, err);
        if (next < 0)
            return ka_error_wrap(err, "copy file %.256s", req->path);
        close(fd);
        fd = next;
    }
    return copy_at(fd, &r, req->path, err);
}
