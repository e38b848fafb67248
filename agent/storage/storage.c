#include "storage/storage.h"
#include "core/log.h"
#include "container/spec.h"
#include "core/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const ka_storage_drivers[] = {"virtio-fs", "9p", "ephemeral", "local", NULL};

struct mounted {
    struct mounted *next;
    char *mount_point;
    unsigned refs;
    bool is_mount; /* unmount at zero (ephemeral); local is a directory only */
};

struct ka_storage_ref {
    struct ka_storage_ref *next;
    struct mounted *m;
};

static struct mounted *all_mounted;

static int mkdir_p(const char *path, mode_t mode, struct ka_error *err)
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

/* Options: fsgid= and mode= are the handler's (never passed to mount(2)); the rest
 * are split into MS_* flags and filesystem data by the shared option table. */
struct parsed_options {
    unsigned long flags;
    char *data; /* NULL when none */
    long fsgid;
    long mode;
};

static void parsed_options_free(struct parsed_options *po)
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

static int parse_options(char *const *opts, size_t n, bool mode_is_ours, struct parsed_options *po,
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
        if (rc == 0)
            rest[n_rest++] = opts[i];
    }
    struct ka_mount m = {0};
    ka_mount_parse_options(rest, n_rest, &m);
    po->flags = m.flags & ~(MS_BIND | MS_REC);
    po->data = m.data;
    return 0;
}

/* fs_group: the group owns it and new files inherit the group (setgid bit). */
static int apply_fsgid(const char *path, long fsgid, struct ka_error *err)
{
    if (fsgid < 0)
        return 0;
    struct stat st;
    if (chown(path, (uid_t)-1, (gid_t)fsgid) < 0 || stat(path, &st) < 0 ||
        chmod(path, (st.st_mode & 07777) | S_ISGID) < 0)
        return ka_error_set(err, errno, "apply fsgid %ld to %s", fsgid, path);
    return 0;
}

static int mount_ephemeral(const struct ka_storage *st, struct ka_error *err)
{
    __attribute__((cleanup(parsed_options_free))) struct parsed_options po = {0};
    if (parse_options(st->options, st->n_options, false, &po, err) < 0)
        return -1;
    if (strcmp(st->fstype, "tmpfs") != 0)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "ephemeral storage of type '%.32s' is not supported yet",
                                   st->fstype);
    if (mkdir_p(st->mount_point, 0755, err) < 0)
        return -1;
    if (mount(st->source[0] ? st->source : "tmpfs", st->mount_point, "tmpfs", po.flags,
              po.data) < 0)
        return ka_error_set(err, errno, "mount tmpfs on %s", st->mount_point);
    if (apply_fsgid(st->mount_point, po.fsgid, err) < 0) {
        umount2(st->mount_point, MNT_DETACH);
        return -1;
    }
    return 0;
}

/* Is mount_point already a mount of fstype? (The shared fs may be mounted twice
 * by the runtime's requests; upstream skips the second.) */
static bool mounted_as(const char *mount_point, const char *fstype)
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
static int mount_shared_fs(const struct ka_storage *st, const char *fstype, struct ka_error *err)
{
    __attribute__((cleanup(parsed_options_free))) struct parsed_options po = {0};
    if (parse_options(st->options, st->n_options, false, &po, err) < 0)
        return -1;
    if (mkdir_p(st->mount_point, 0755, err) < 0)
        return -1;
    if (mounted_as(st->mount_point, fstype))
        return 0;
    if (mount(st->source, st->mount_point, fstype, po.flags, po.data) < 0)
        return ka_error_set(err, errno, "mount %s (%s) on %s", st->source, fstype,
                            st->mount_point);
    return 0;
}

static int make_local(const struct ka_storage *st, struct ka_error *err)
{
    __attribute__((cleanup(parsed_options_free))) struct parsed_options po = {0};
    if (parse_options(st->options, st->n_options, true, &po, err) < 0)
        return -1;
    mode_t mode = po.mode >= 0 ? (mode_t)po.mode : 0777;
    if (mkdir_p(st->mount_point, 0755, err) < 0)
        return -1;
    if (chmod(st->mount_point, mode) < 0)
        return ka_error_set(err, errno, "chmod %s", st->mount_point);
    return apply_fsgid(st->mount_point, po.fsgid, err);
}

static struct mounted *find_mounted(const char *mount_point)
{
    for (struct mounted *m = all_mounted; m; m = m->next)
        if (strcmp(m->mount_point, mount_point) == 0)
            return m;
    return NULL;
}

int ka_storage_add(const struct ka_storage *st, struct ka_storage_ref **refs,
                   struct ka_error *err)
{
    struct mounted *m = find_mounted(st->mount_point);
    if (!m) {
        bool is_mount;
        if (strcmp(st->driver, "virtio-fs") == 0 || strcmp(st->driver, "9p") == 0) {
            const char *fstype = st->driver[0] == '9' ? "9p" : "virtiofs";
            if (mount_shared_fs(st, fstype, err) < 0)
                return ka_error_wrap(err, "storage %s", st->mount_point);
            is_mount = true;
        } else if (strcmp(st->driver, "ephemeral") == 0) {
            if (mount_ephemeral(st, err) < 0)
                return ka_error_wrap(err, "storage %s", st->mount_point);
            is_mount = true;
        } else if (strcmp(st->driver, "local") == 0) {
            if (make_local(st, err) < 0)
                return ka_error_wrap(err, "storage %s", st->mount_point);
            is_mount = false;
        } else {
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "storage driver '%.64s' is not supported (yet); "
                                       "supported: virtio-fs, 9p, ephemeral, local",
                                       st->driver);
        }
        m = ka_xcalloc(1, sizeof(*m));
        m->mount_point = ka_xstrdup(st->mount_point);
        m->is_mount = is_mount;
        m->next = all_mounted;
        all_mounted = m;
    }
    m->refs++;
    struct ka_storage_ref *r = ka_xcalloc(1, sizeof(*r));
    r->m = m;
    r->next = *refs;
    *refs = r;
    return 0;
}

static void release_one(struct mounted *m)
{
    if (--m->refs > 0)
        return;
    if (m->is_mount && umount2(m->mount_point, MNT_DETACH) < 0)
        ka_log(KA_LOG_WARN, "storage", "unmount %s: %s", m->mount_point, strerror(errno));
    if (rmdir(m->mount_point) < 0 && errno != ENOENT)
        ka_log(KA_LOG_DEBUG, "storage", "rmdir %s: %s", m->mount_point, strerror(errno));
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

int ka_storage_update_ephemeral(const struct ka_storage *st, struct ka_error *err)
{
    if (strcmp(st->driver, "ephemeral") != 0)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "UpdateEphemeralMounts: storage driver '%.64s' is not ephemeral",
                                   st->driver);
    if (mkdir_p(st->mount_point, 0755, err) < 0)
        return -1;
    if (st->n_options == 0)
        return 0;
    __attribute__((cleanup(parsed_options_free))) struct parsed_options po = {0};
    if (parse_options(st->options, st->n_options, false, &po, err) < 0)
        return -1;
    /* fsgid= was consumed by parse_options: it must not reach mount(2). */
    if (mount("tmpfs", st->mount_point, "tmpfs", po.flags | MS_REMOUNT, po.data) < 0)
        return ka_error_set(err, errno, "remount %s", st->mount_point);
    return 0;
}
