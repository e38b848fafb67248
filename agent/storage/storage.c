#include "storage/storage.h"
#include "storage/storage_int.h"
#include "storage/hugepages.h"
#include "core/log.h"
#include "container/spec.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const ka_storage_drivers[] = {"virtio-fs",      "9p",     "ephemeral",
                                          "local",          "blk",    "mmioblk",
                                          "scsi",           "nvdimm", "overlayfs",
                                          "watchable-bind", NULL};

#define OVERLAY_RW_OPTION "io.katacontainers.fs-opt.overlay-rw"

static struct ka_reactor *storage_reactor;

void ka_storage_init(struct ka_reactor *r)
{
    storage_reactor = r;
}

struct mounted {
    struct mounted *next;
    char *mount_point; /* normalized (ka_st_mount_point_check) */
    unsigned refs;
    bool is_mount;              /* unmount at zero (ephemeral); local is a directory only */
    bool ephemeral_tmpfs;       /* the only kind UpdateEphemeralMounts may remount */
    bool created;               /* the agent made the directory: removed at zero */
    int root_fd;                /* what was mounted (or the directory), or -1 */
    struct ka_watchable *watch; /* watchable-bind: stopped (and removed) at zero */
};

struct ka_storage_ref {
    struct ka_storage_ref *next;
    struct mounted *m;
};

static struct mounted *all_mounted;
/* The references shared storages hold on themselves until the sandbox ends. */
static struct ka_storage_ref *shared_refs;

static void take_ref(struct mounted *m, struct ka_storage_ref **refs)
{
    m->refs++;
    struct ka_storage_ref *r = ka_xcalloc(1, sizeof(*r));
    r->m = m;
    r->next = *refs;
    *refs = r;
}

int ka_st_mkdir_p(const char *path, mode_t mode, struct ka_error *err)
{
    char buf[4096];
    if (strlen(path) >= sizeof(buf) || path[0] != '/')
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "mount point must be an absolute path: '%.200s'", path);
    strcpy(buf, path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return ka_error_set(err, errno, "mkdir %s", buf);
        if (c == '\0')
            return 0;
        *p = c;
    }
}

void ka_st_parsed_options_free(struct parsed_options *po)
{
    free(po->data);
    po->data = NULL;
}

static int take_number(const char *o, const char *key, int base, long max, long *out,
                       struct ka_error *err)
{
    size_t klen = strlen(key);
    if (strncmp(o, key, klen) != 0)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(o + klen, &end, base);
    if (o[klen] == '\0' || *end || errno || v < 0 || v > max)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "invalid storage option '%.64s'", o);
    *out = v;
    return 1;
}

int ka_st_parse_options(char *const *opts, size_t n, bool mode_is_ours, struct parsed_options *po,
                        struct ka_error *err)
{
    memset(po, 0, sizeof(*po));
    po->fsgid = po->mode = -1;
    cleanup_free char **rest = ka_xcalloc(n + 1, sizeof(char *));
    size_t n_rest = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = take_number(opts[i], "fsgid=", 10, 0x7fffffff, &po->fsgid, err);
        if (rc == 0 && mode_is_ours)
            rc = take_number(opts[i], "mode=", 8, 07777, &po->mode, err);
        if (rc < 0)
            return -1;
        /* Kata's own hints (io.katacontainers.fs-opt.*) are never mount data. */
        if (rc == 0 && strncmp(opts[i], "io.katacontainers.", 18) != 0)
            rest[n_rest++] = opts[i];
    }
    struct ka_mount m = {0};
    ka_mount_parse_options(rest, n_rest, &m);
    po->flags = m.flags & ~(MS_BIND | MS_REC);
    po->data = m.data;
    return 0;
}

/* fs_group: the group owns it and new files inherit the group (setgid bit). dirfd
 * is a directory (ka_st_open_mount_point opens nothing else). */
static int apply_fsgid(int dirfd, const char *path, long fsgid, struct ka_error *err)
{
    if (fsgid < 0)
        return 0;
    struct stat st;
    if (fchown(dirfd, (uid_t)-1, (gid_t)fsgid) < 0 || fstat(dirfd, &st) < 0 ||
        fchmod(dirfd, (st.st_mode & 07777) | S_ISGID) < 0)
        return ka_error_set(err, errno, "apply fsgid %ld to %s", fsgid, path);
    return 0;
}

/* Undo a mount made onto mp a moment ago (its fd is the mounted root). */
static void unmount_fd(int fd)
{
    char path[KA_ST_FD_PATH_SIZE];
    umount2(ka_st_fd_path(fd, path), MNT_DETACH);
}

/* hugetlbfs: reserve the pages first (size / pagesize into the pool's
 * nr_hugepages, checked), then mount with the sizes in bytes, which the kernel's
 * parser takes whatever spelling ("2Mi") the request used. */
static int mount_hugetlbfs(const struct ka_storage *st, struct ka_st_mount_point *mp,
                           struct ka_error *err)
{
    uint64_t page_size, size;
    if (ka_hugepages_options(st->options, st->n_options, &page_size, &size, err) < 0 ||
        ka_hugepages_reserve(ka_hugepages_sysfs, page_size, size, err) < 0)
        return ka_error_wrap(err, "allocate hugepages");
    /* One option per element, pagesize= and size= rewritten; the rest as given. */
    size_t n = 0, cap = 2;
    for (size_t i = 0; i < st->n_options; i++)
        cap += 1 + strlen(st->options[i]) / 2; /* at most this many comma-separated parts */
    cleanup_free char **opts = ka_xcalloc(cap, sizeof(char *));
    cleanup_free char *copy_all = NULL;
    char ps[40], sz[40];
    snprintf(ps, sizeof(ps), "pagesize=%" PRIu64, page_size);
    snprintf(sz, sizeof(sz), "size=%" PRIu64, size);
    opts[n++] = ps;
    opts[n++] = sz;
    size_t total = 0;
    for (size_t i = 0; i < st->n_options; i++)
        total += strlen(st->options[i]) + 1;
    copy_all = ka_xmalloc(total + 1);
    char *w = copy_all;
    for (size_t i = 0; i < st->n_options; i++) {
        strcpy(w, st->options[i]);
        char *save = NULL;
        for (char *part = strtok_r(w, ",", &save); part; part = strtok_r(NULL, ",", &save))
            if (strncmp(part, "pagesize=", 9) != 0 && strncmp(part, "size=", 5) != 0 && n < cap)
                opts[n++] = part;
        w += strlen(st->options[i]) + 1;
    }
    __attribute__((cleanup(ka_st_parsed_options_free))) struct parsed_options po = {0};
    if (ka_st_parse_options(opts, n, false, &po, err) < 0)
        return -1;
    char target[KA_ST_FD_PATH_SIZE];
    if (mount(st->source[0] ? st->source : "nodev", ka_st_fd_path(mp->fd, target), "hugetlbfs",
              po.flags, po.data) < 0)
        return ka_error_set(err, errno, "mount hugetlbfs on %s", st->mount_point);
    if (ka_st_reopen_mount_point(mp, err) < 0 ||
        apply_fsgid(mp->fd, st->mount_point, po.fsgid, err) < 0) {
        unmount_fd(mp->fd);
        return -1;
    }
    return 0;
}

static int mount_ephemeral(const struct ka_storage *st, struct ka_st_mount_point *mp,
                           struct ka_error *err)
{
    if (strcmp(st->fstype, "hugetlbfs") == 0)
        return mount_hugetlbfs(st, mp, err);
    __attribute__((cleanup(ka_st_parsed_options_free))) struct parsed_options po = {0};
    if (ka_st_parse_options(st->options, st->n_options, false, &po, err) < 0)
        return -1;
    if (strcmp(st->fstype, "tmpfs") != 0)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "ephemeral storage of type '%.32s' is not supported "
                                   "(tmpfs or hugetlbfs)",
                                   st->fstype);
    char target[KA_ST_FD_PATH_SIZE];
    if (mount(st->source[0] ? st->source : "tmpfs", ka_st_fd_path(mp->fd, target), "tmpfs",
              po.flags, po.data) < 0)
        return ka_error_set(err, errno, "mount tmpfs on %s", st->mount_point);
    if (ka_st_reopen_mount_point(mp, err) < 0 ||
        apply_fsgid(mp->fd, st->mount_point, po.fsgid, err) < 0) {
        unmount_fd(mp->fd);
        return -1;
    }
    return 0;
}

/* Is mount_point already a mount of fstype? (The shared fs may be mounted twice
 * by the runtime's requests; upstream skips the second.) */
bool ka_st_mounted_as(const char *mount_point, const char *fstype)
{
    cleanup_file FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096];
    size_t mplen = strlen(mount_point);
    while (mplen > 1 && mount_point[mplen - 1] == '/')
        mplen--;
    while (f && fgets(line, sizeof(line), f)) {
        char mnt[4096], type[64];
        const char *sep = strstr(line, " - ");
        if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
            sscanf(sep + 3, "%63s", type) != 1)
            continue;
        if (strlen(mnt) == mplen && strncmp(mnt, mount_point, mplen) == 0 &&
            strcmp(type, fstype) == 0)
            return true;
    }
    return false;
}

/* virtio-fs and 9p: the host's shared directory by its tag ("kataShared"). */
static int mount_shared_fs(const struct ka_storage *st, struct ka_st_mount_point *mp,
                           const char *fstype, struct ka_error *err)
{
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

/* A directory only; mp->fd is one (O_DIRECTORY), so no chmod reaches anything else. */
static int make_local(const struct ka_storage *st, struct ka_st_mount_point *mp,
                      struct ka_error *err)
{
    __attribute__((cleanup(ka_st_parsed_options_free))) struct parsed_options po = {0};
    if (ka_st_parse_options(st->options, st->n_options, true, &po, err) < 0)
        return -1;
    mode_t mode = po.mode >= 0 ? (mode_t)po.mode : 0777;
    if (fchmod(mp->fd, mode) < 0)
        return ka_error_set(err, errno, "chmod %s", st->mount_point);
    return apply_fsgid(mp->fd, st->mount_point, po.fsgid, err);
}

static struct mounted *find_mounted(const char *mount_point)
{
    for (struct mounted *m = all_mounted; m; m = m->next)
        if (strcmp(m->mount_point, mount_point) == 0)
            return m;
    return NULL;
}

/* overlayfs: the layers come in the options (lowerdir=, upperdir=, workdir=). With
 * io.katacontainers.fs-opt.overlay-rw the agent makes the upper and work directories
 * under the container's directory, as upstream's OverlayfsHandler does. */
static int mount_overlay(const struct ka_storage *st, struct ka_st_mount_point *mp,
                         struct ka_error *err)
{
    bool rw = false;
    for (size_t i = 0; i < st->n_options; i++)
        if (strcmp(st->options[i], OVERLAY_RW_OPTION) == 0)
            rw = true;
    size_t n = st->n_options;
    cleanup_free char **opts = ka_xcalloc(n + 3, sizeof(char *));
    memcpy(opts, st->options, n * sizeof(char *));
    char upper[512], work[512];
    if (rw) {
        if (!st->container_id || !st->container_id[0])
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "no container id for a rw overlay");
        if (strchr(st->container_id, '/') || strlen(st->container_id) > 256)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "invalid container id");
        snprintf(upper, sizeof(upper), "upperdir=%s/%s/upper", KA_STORAGE_RUN_DIR,
                 st->container_id);
        snprintf(work, sizeof(work), "workdir=%s/%s/work", KA_STORAGE_RUN_DIR, st->container_id);
        if (ka_st_mkdir_p(upper + 9, 0755, err) < 0 || ka_st_mkdir_p(work + 8, 0755, err) < 0)
            return ka_error_wrap(err, "overlay rw directories");
        opts[n++] = upper;
        opts[n++] = work;
    }
    __attribute__((cleanup(ka_st_parsed_options_free))) struct parsed_options po = {0};
    if (ka_st_parse_options(opts, n, false, &po, err) < 0)
        return -1;
    if (ka_st_mounted_as(st->mount_point, "overlay"))
        return 0;
    const char *src = st->source[0] && strcmp(st->source, "none") != 0 ? st->source : "overlay";
    char target[KA_ST_FD_PATH_SIZE];
    if (mount(src, ka_st_fd_path(mp->fd, target), "overlay", po.flags, po.data) < 0)
        return ka_error_set(err, errno, "mount overlay on %s", st->mount_point);
    return ka_st_reopen_mount_point(mp, err);
}

static bool is_block_driver(const char *driver)
{
    return strcmp(driver, "blk") == 0 || strcmp(driver, "mmioblk") == 0 ||
           strcmp(driver, "scsi") == 0 || strcmp(driver, "nvdimm") == 0;
}

/* Make the storage at mp (resolved, created when missing); *m_out gets the record. */
static int add_new(const struct ka_storage *st, struct ka_st_mount_point *mp,
                   struct mounted **m_out, struct ka_error *err)
{
    bool is_mount = true, fs_group = true, ephemeral_tmpfs = false;
    struct ka_watchable *watch = NULL;
    int rc;
    if (strcmp(st->driver, "virtio-fs") == 0 || strcmp(st->driver, "9p") == 0) {
        rc = mount_shared_fs(st, mp, st->driver[0] == '9' ? "9p" : "virtiofs", err);
    } else if (strcmp(st->driver, "ephemeral") == 0) {
        rc = mount_ephemeral(st, mp, err);
        fs_group = false; /* fsgid= option instead */
        ephemeral_tmpfs = strcmp(st->fstype, "tmpfs") == 0;
    } else if (strcmp(st->driver, "local") == 0) {
        rc = make_local(st, mp, err);
        is_mount = fs_group = false;
    } else if (is_block_driver(st->driver)) {
        /* The caller resolved the source to the device node (rpc/devices.h). */
        rc = ka_st_mount_block(st, mp, err);
    } else if (strcmp(st->driver, "overlayfs") == 0) {
        rc = mount_overlay(st, mp, err);
    } else {
        /* watchable-bind: the watcher owns its copy (below its own tmpfs). */
        rc = ka_watchable_start(storage_reactor, st, &watch, err);
        is_mount = fs_group = false;
    }
    if (rc < 0)
        return -1;
    if (fs_group && ka_st_apply_fs_group(mp->fd, st, err) < 0) {
        if (is_mount)
            unmount_fd(mp->fd);
        return -1;
    }
    struct mounted *m = ka_xcalloc(1, sizeof(*m));
    m->mount_point = ka_xstrdup(st->mount_point);
    m->is_mount = is_mount;
    m->ephemeral_tmpfs = ephemeral_tmpfs;
    m->created = mp->created;
    m->root_fd = -1;
    if (!watch)
        m->root_fd = take_fd(mp->fd);
    m->watch = watch;
    *m_out = m;
    return 0;
}

/* Drivers of Kata 4.x's agent that this one does not implement: named, so the
 * runtime's error says what is missing rather than that the driver is unknown. */
static const struct {
    const char *driver;
    const char *what;
} unimplemented_drivers[] = {
    /* CoCo: the guest pulls the image itself (confidential-data-hub, image-rs). */
    {"image_guest_pull", "pulling the container image inside the guest"},
    /* 3.29: erofs layers stacked into an overlay, with optional GPT partitions
     * and dm-verity; the runtime offers it only when configured to. */
    {"erofs.multi-layer", "multi-layer erofs rootfs"},
};

/* A watchable-bind copy lives below a watchable root, which for a rootless runtime
 * is below /run/user/<uid> (upstream db1cc9ed17), so it has its own check; the
 * trailing '/' is dropped as for every other mount point. */
static int watchable_mount_point_check(const char *mount_point, char *out, size_t size,
                                       struct ka_error *err)
{
    size_t len = strlen(mount_point);
    if (len >= size)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "mount point too long");
    memcpy(out, mount_point, len + 1);
    while (len > 1 && out[len - 1] == '/')
        out[--len] = '\0';
    char root[PATH_MAX];
    return ka_watchable_root_of(out, root, sizeof(root), err);
}

int ka_storage_add(const struct ka_storage *req, struct ka_storage_ref **refs, struct ka_error *err)
{
    for (size_t i = 0; i < KA_ARRAY_SIZE(unimplemented_drivers); i++)
        if (strcmp(req->driver, unimplemented_drivers[i].driver) == 0)
            return ka_error_status_set(err, KA_STATUS_UNIMPLEMENTED,
                                       "storage driver '%s' (%s) is not implemented by this agent",
                                       req->driver, unimplemented_drivers[i].what);
    bool known = false;
    for (size_t i = 0; ka_storage_drivers[i]; i++)
        known = known || strcmp(req->driver, ka_storage_drivers[i]) == 0;
    if (!known)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "storage driver '%.64s' is not supported (yet); "
                                   "supported: virtio-fs, 9p, ephemeral, local, blk, "
                                   "mmioblk, scsi, nvdimm, overlayfs, watchable-bind",
                                   req->driver);
    char norm[PATH_MAX];
    bool watchable = strcmp(req->driver, "watchable-bind") == 0;
    if ((watchable ? watchable_mount_point_check(req->mount_point, norm, sizeof(norm), err)
                   : ka_st_mount_point_check(req->mount_point, norm, sizeof(norm), err)) < 0)
        return -1;
    struct ka_storage st = *req;
    st.mount_point = norm;
    struct mounted *m = find_mounted(norm);
    if (!m) {
        if (watchable && !storage_reactor)
            return ka_error_status_set(err, KA_STATUS_INTERNAL,
                                       "storage %s: watchable-bind without a reactor "
                                       "(ka_storage_init not called)",
                                       norm);
        /* watchable-bind makes its copy itself (watchable.c); every other driver
         * mounts or chmods the directory resolved here, and nothing else. */
        __attribute__((cleanup(ka_st_mount_point_close))) struct ka_st_mount_point mp =
            KA_ST_MOUNT_POINT_INIT;
        if (!watchable && ka_st_open_mount_point(norm, true, &mp, err) < 0)
            return ka_error_wrap(err, "storage %s", norm);
        if (add_new(&st, &mp, &m, err) < 0) {
            if (mp.created)
                unlinkat(mp.parent, mp.leaf, AT_REMOVEDIR);
            return ka_error_wrap(err, "storage %s", norm);
        }
        m->next = all_mounted;
        all_mounted = m;
        /* Upstream keeps a shared storage at a count of one when its last user
         * goes; a reference of its own until ka_storage_release_shared does that. */
        if (st.shared)
            take_ref(m, &shared_refs);
    }
    take_ref(m, refs);
    return 0;
}

static void release_one(struct mounted *m)
{
    if (--m->refs > 0)
        return;
    if (m->watch)
        ka_watchable_stop(m->watch); /* removes its copy */
    char path[KA_ST_FD_PATH_SIZE];
    /* By the fd kept since the mount: the mount the agent made, whatever the path
     * names now. */
    if (m->is_mount && m->root_fd >= 0 && umount2(ka_st_fd_path(m->root_fd, path), MNT_DETACH) < 0)
        ka_log(KA_LOG_WARN, "storage", "unmount %s: %s", m->mount_point, strerror(errno));
    if (m->root_fd >= 0)
        close(m->root_fd);
    /* Only a directory the agent made, found again without following a symlink. */
    if (m->created) {
        struct ka_error err;
        __attribute__((cleanup(ka_st_mount_point_close))) struct ka_st_mount_point mp =
            KA_ST_MOUNT_POINT_INIT;
        if (ka_st_open_mount_point(m->mount_point, false, &mp, &err) == 0 &&
            unlinkat(mp.parent, mp.leaf, AT_REMOVEDIR) < 0)
            ka_log(KA_LOG_DEBUG, "storage", "rmdir %s: %s", m->mount_point, strerror(errno));
    }
    for (struct mounted **pp = &all_mounted; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    free(m->mount_point);
    free(m);
}

void ka_storage_release_all(struct ka_storage_ref **refs)
{
    while (*refs) {
        struct ka_storage_ref *r = *refs;
        *refs = r->next;
        release_one(r->m);
        free(r);
    }
}

void ka_storage_release_shared(void)
{
    ka_storage_release_all(&shared_refs);
}

int ka_storage_update_ephemeral(const struct ka_storage *st, struct ka_error *err)
{
    if (strcmp(st->driver, "ephemeral") != 0)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "UpdateEphemeralMounts: storage driver '%.64s' is not ephemeral",
                                   st->driver);
    char norm[PATH_MAX];
    if (ka_st_mount_point_check(st->mount_point, norm, sizeof(norm), err) < 0)
        return ka_error_wrap(err, "UpdateEphemeralMounts");
    /* Nothing to change (upstream only makes the directory, which the storage's own
     * request does when it comes). */
    if (st->n_options == 0)
        return 0;
    /* Only a tmpfs this agent mounted as an ephemeral storage, found in the
     * registry: the request's path alone could name any mount. */
    struct mounted *m = find_mounted(norm);
    if (!m || !m->ephemeral_tmpfs || m->root_fd < 0)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "UpdateEphemeralMounts: %.200s is not an ephemeral tmpfs "
                                   "storage of this sandbox",
                                   norm);
    __attribute__((cleanup(ka_st_parsed_options_free))) struct parsed_options po = {0};
    if (ka_st_parse_options(st->options, st->n_options, false, &po, err) < 0)
        return -1;
    /* fsgid= was consumed by parse_options: it must not reach mount(2). */
    char target[KA_ST_FD_PATH_SIZE];
    if (mount("tmpfs", ka_st_fd_path(m->root_fd, target), "tmpfs", po.flags | MS_REMOUNT, po.data) <
        0)
        return ka_error_set(err, errno, "remount %s", norm);
    return 0;
}
