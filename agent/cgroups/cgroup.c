/* Container cgroups: finding the hierarchies, the path rule, creating, joining,
 * listing, freezing, signalling and removing (see cgroup.h). */
#include "cgroups/cgroup.h"
#include "core/log.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* cgroup.procs of a busy cgroup can be long; bound what we read of it. */
#define PROCS_MAX_BYTES (4u << 20)

/* ---- controllers ------------------------------------------------------------- */

static const char *const v1_names[KA_CG_COUNT] = {
    [KA_CG_CPU] = "cpu",         [KA_CG_CPUACCT] = "cpuacct",   [KA_CG_CPUSET] = "cpuset",
    [KA_CG_MEMORY] = "memory",   [KA_CG_DEVICES] = "devices",   [KA_CG_FREEZER] = "freezer",
    [KA_CG_BLKIO] = "blkio",     [KA_CG_PIDS] = "pids",         [KA_CG_HUGETLB] = "hugetlb",
    [KA_CG_NET_CLS] = "net_cls", [KA_CG_NET_PRIO] = "net_prio", [KA_CG_PERF_EVENT] = "perf_event",
    [KA_CG_RDMA] = "rdma",       [KA_CG_MISC] = "misc",
};

int ka_cgroup_controller_parse(const char *name, enum ka_cgroup_version v)
{
    if (v == KA_CGROUP_V2 && strcmp(name, "io") == 0)
        return KA_CG_BLKIO;
    for (int c = 0; c < KA_CG_COUNT; c++)
        if (strcmp(name, v1_names[c]) == 0 && !(v == KA_CGROUP_V2 && c == KA_CG_BLKIO))
            return c;
    return -1;
}

const char *ka_cgroup_controller_name(enum ka_cgroup_controller c, enum ka_cgroup_version v)
{
    if (v == KA_CGROUP_V2 && c == KA_CG_BLKIO)
        return "io";
    return c < KA_CG_COUNT ? v1_names[c] : "?";
}

/* ---- files ------------------------------------------------------------------- */

static void join_path(char *out, size_t size, const char *dir, const char *file)
{
    snprintf(out, size, "%s/%s", dir, file);
}

int ka_cg_write(const char *dir, const char *file, const char *value, struct ka_error *err)
{
    char path[PATH_MAX];
    join_path(path, sizeof(path), dir, file);
    cleanup_close int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "open %s", path);
    size_t len = strlen(value);
    ssize_t n = write(fd, value, len);
    if (n < 0)
        return ka_error_set(err, errno, "write \"%.64s\" to %s", value, path);
    if ((size_t)n != len)
        return ka_error_set(err, EIO, "short write of \"%.64s\" to %s", value, path);
    return 0;
}

int ka_cg_writef(const char *dir, const char *file, struct ka_error *err, const char *fmt, ...)
{
    char value[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    return ka_cg_write(dir, file, value, err);
}

ssize_t ka_cg_read(const char *dir, const char *file, char *buf, size_t size, struct ka_error *err)
{
    char path[PATH_MAX];
    join_path(path, sizeof(path), dir, file);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "open %s", path);
    size_t len = 0;
    for (;;) {
        if (len + 1 >= size)
            return ka_error_set(err, EFBIG, "read %s", path);
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ka_error_set(err, errno, "read %s", path);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return (ssize_t)len;
}

static int parse_u64(const char *s, uint64_t *out)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (strncmp(s, "max", 3) == 0) {
        *out = UINT64_MAX;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || *s == '-')
        return -1;
    *out = v;
    return 0;
}

int ka_cg_read_u64(const char *dir, const char *file, uint64_t *out, struct ka_error *err)
{
    char buf[64];
    if (ka_cg_read(dir, file, buf, sizeof(buf), err) < 0)
        return -1;
    if (parse_u64(buf, out) < 0)
        return ka_error_set(err, EINVAL, "%s/%s: \"%.32s\" is not a number", dir, file, buf);
    return 0;
}

int ka_cg_read_key(const char *dir, const char *file, const char *key, uint64_t *out,
                   struct ka_error *err)
{
    char buf[8192];
    if (ka_cg_read(dir, file, buf, sizeof(buf), err) < 0)
        return -1;
    size_t klen = strlen(key);
    for (char *line = buf; line && *line;) {
        char *eol = strchr(line, '\n');
        if (eol)
            *eol = '\0';
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ' &&
            parse_u64(line + klen + 1, out) == 0)
            return 0;
        line = eol ? eol + 1 : NULL;
    }
    return ka_error_set(err, ENOENT, "%s/%s has no %s", dir, file, key);
}

bool ka_cg_exists(const char *dir, const char *file)
{
    char path[PATH_MAX];
    join_path(path, sizeof(path), dir, file);
    return access(path, F_OK) == 0;
}

/* ---- layout ------------------------------------------------------------------- */

/* mountinfo escapes ' ', '\t', '\n' and '\\' as \ooo. */
static void unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

/* Controllers named in the super options; *named when there is a name=. */
static unsigned superopts_controllers(const char *opts, bool *named)
{
    unsigned mask = 0;
    *named = false;
    for (const char *p = opts; *p;) {
        size_t l = strcspn(p, ",");
        char name[64];
        if (l < sizeof(name)) {
            memcpy(name, p, l);
            name[l] = '\0';
            int c = ka_cgroup_controller_parse(name, KA_CGROUP_V1);
            if (c >= 0)
                mask |= KA_CG_BIT(c);
            if (strncmp(name, "name=", 5) == 0)
                *named = true;
        }
        p += l;
        if (*p == ',')
            p++;
    }
    return mask;
}

static unsigned read_v2_controllers(const char *dir)
{
    char buf[512];
    struct ka_error err;
    if (ka_cg_read(dir, "cgroup.controllers", buf, sizeof(buf), &err) < 0)
        return 0;
    unsigned mask = 0;
    for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
        int c = ka_cgroup_controller_parse(tok, KA_CGROUP_V2);
        if (c >= 0)
            mask |= KA_CG_BIT(c);
    }
    return mask;
}

int ka_cgroup_layout_detect(struct ka_cgroup_layout *l, const char *mountinfo, const char *root,
                            struct ka_error *err)
{
    memset(l, 0, sizeof(*l));
    struct statfs sfs;
    if (statfs(root, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) {
        l->version = KA_CGROUP_V2;
        l->h[0].mount = ka_xstrdup(root);
        l->h[0].controllers = read_v2_controllers(root);
        l->n = 1;
        return 0;
    }
    cleanup_file FILE *f = fopen(mountinfo, "re");
    if (!f)
        return ka_error_set(err, errno, "open %s", mountinfo);
    cleanup_free char *line = NULL;
    size_t cap = 0;
    unsigned named_seen = 0;
    char named_opts[KA_CGROUP_MAX_HIERARCHIES][128];
    while (getline(&line, &cap, f) > 0) {
        /* "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices" */
        char mnt[PATH_MAX], fstype[32], opts[512];
        const char *sep = strstr(line, " - ");
        if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
            sscanf(sep + 3, "%31s %*s %511s", fstype, opts) != 2 || strcmp(fstype, "cgroup") != 0)
            continue;
        unescape(mnt);
        bool named;
        unsigned mask = superopts_controllers(opts, &named);
        if (mask == 0 && !named)
            continue;
        /* One entry per hierarchy: a second mount of the same one adds nothing,
         * except that one under root is preferred to one elsewhere. */
        bool dup = false;
        size_t rlen = strlen(root);
        bool under = strncmp(mnt, root, rlen) == 0 && mnt[rlen] == '/';
        for (size_t i = 0; i < l->n && !dup; i++) {
            dup = mask != 0 && l->h[i].controllers == mask;
            if (dup && under &&
                !(strncmp(l->h[i].mount, root, rlen) == 0 && l->h[i].mount[rlen] == '/')) {
                free(l->h[i].mount);
                l->h[i].mount = ka_xstrdup(mnt);
            }
        }
        if (mask == 0) {
            const char *nm = strstr(opts, "name=");
            for (unsigned i = 0; i < named_seen && !dup; i++)
                dup = strncmp(named_opts[i], nm, strcspn(nm, ",")) == 0 &&
                      named_opts[i][strcspn(nm, ",")] == '\0';
            if (!dup && named_seen < KA_CGROUP_MAX_HIERARCHIES)
                snprintf(named_opts[named_seen++], sizeof(named_opts[0]), "%.*s",
                         (int)strcspn(nm, ","), nm);
        }
        if (dup || l->n == KA_CGROUP_MAX_HIERARCHIES)
            continue;
        l->h[l->n].mount = ka_xstrdup(mnt);
        l->h[l->n].controllers = mask;
        l->n++;
    }
    l->version = l->n > 0 ? KA_CGROUP_V1 : KA_CGROUP_NONE;
    return 0;
}

void ka_cgroup_layout_free(struct ka_cgroup_layout *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->h[i].mount);
    memset(l, 0, sizeof(*l));
}

/* ---- paths -------------------------------------------------------------------- */

int ka_cgroup_path(const char *cgroups_path, const char *cid, char *out, size_t size,
                   struct ka_error *err)
{
    char in[KA_CGROUP_PATH_MAX + 2];
    if (!cgroups_path || !cgroups_path[0]) {
        if (snprintf(in, sizeof(in), "/%s", cid) >= (int)sizeof(in))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "container id too long");
    } else {
        if (strlen(cgroups_path) > KA_CGROUP_PATH_MAX)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "cgroups path is longer than %d bytes", KA_CGROUP_PATH_MAX);
        snprintf(in, sizeof(in), "%s", cgroups_path);
    }
    size_t o = 0;
    unsigned depth = 0;
    for (const char *p = in; *p;) {
        while (*p == '/' || *p == ':')
            p++;
        size_t l = strcspn(p, "/:");
        if (l == 0)
            break;
        if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "cgroups path \"%.128s\" has a \".\" or \"..\" component",
                                       cgroups_path);
        for (size_t i = 0; i < l; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
                return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                           "cgroups path has a control character");
        if (++depth > KA_CGROUP_MAX_DEPTH)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "cgroups path is deeper than %d", KA_CGROUP_MAX_DEPTH);
        if (o + l + 2 > size)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "cgroups path too long");
        out[o++] = '/';
        memcpy(out + o, p, l);
        o += l;
        p += l;
    }
    if (o == 0)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "cgroups path \"%.128s\" names the root cgroup", cgroups_path);
    out[o] = '\0';
    return 0;
}

void ka_cgroup_parent(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    size_t l = slash ? (size_t)(slash - path) : 0;
    if (l == 0)
        snprintf(out, size, "/");
    else
        snprintf(out, size, "%.*s", (int)l, path);
}

bool ka_cgroup_paths_overlap(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    const char *shorter = la <= lb ? a : b, *longer = la <= lb ? b : a;
    size_t ls = la <= lb ? la : lb;
    if (strncmp(shorter, longer, ls) != 0)
        return false;
    /* Equal, or the shorter ends where a component of the longer one does. */
    return longer[ls] == '\0' || longer[ls] == '/' || (ls > 0 && shorter[ls - 1] == '/');
}

/* ---- the cgroup --------------------------------------------------------------------- */

struct ka_cgroup *ka_cgroup_new(const struct ka_cgroup_layout *l, const char *path)
{
    struct ka_cgroup *cg = ka_xcalloc(1, sizeof(*cg));
    cg->version = l->version;
    cg->path = ka_xstrdup(path);
    cg->bpf_prog_fd = -1;
    for (size_t i = 0; i < l->n; i++) {
        size_t len = strlen(l->h[i].mount) + strlen(path) + 1;
        cg->d[i].dir = ka_xmalloc(len);
        snprintf(cg->d[i].dir, len, "%s%s", l->h[i].mount, path);
        cg->d[i].controllers = l->h[i].controllers;
    }
    cg->n = l->n;
    return cg;
}

void ka_cgroup_free(struct ka_cgroup *cg)
{
    if (!cg)
        return;
    for (size_t i = 0; i < cg->n; i++)
        free(cg->d[i].dir);
    if (cg->bpf_prog_fd >= 0)
        close(cg->bpf_prog_fd);
    free(cg->path);
    free(cg);
}

const char *ka_cgroup_dir_of(const struct ka_cgroup *cg, enum ka_cgroup_controller c)
{
    if (cg->version == KA_CGROUP_V2)
        return cg->n ? cg->d[0].dir : NULL;
    for (size_t i = 0; i < cg->n; i++)
        if (cg->d[i].controllers & KA_CG_BIT(c))
            return cg->d[i].dir;
    return NULL;
}

bool ka_cgroup_has(const struct ka_cgroup *cg, enum ka_cgroup_controller c)
{
    if (cg->version == KA_CGROUP_V2)
        return cg->n && (cg->d[0].controllers & KA_CG_BIT(c));
    return ka_cgroup_dir_of(cg, c) != NULL;
}

/* The mount point of directory i: dir minus the cgroup path. */
static size_t mount_len(const struct ka_cgroup *cg, size_t i)
{
    return strlen(cg->d[i].dir) - strlen(cg->path);
}

/* v1 cpuset: a new cpuset is empty and takes no task until it has cpus and mems. */
static int cpuset_fill(const char *dir, const char *parent, struct ka_error *err)
{
    static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (size_t i = 0; i < KA_ARRAY_SIZE(files); i++) {
        char cur[4096], up[4096];
        if (ka_cg_read(dir, files[i], cur, sizeof(cur), err) < 0)
            return -1;
        if (cur[0] != '\0' && cur[0] != '\n')
            continue;
        if (ka_cg_read(parent, files[i], up, sizeof(up), err) < 0 ||
            ka_cg_write(dir, files[i], up, err) < 0)
            return -1;
    }
    return 0;
}

/* v2: enable in dir's subtree_control what its cgroup.controllers offers. */
static void enable_subtree(const char *dir)
{
    char avail[512], on[512];
    struct ka_error err;
    if (ka_cg_read(dir, "cgroup.controllers", avail, sizeof(avail), &err) < 0 ||
        ka_cg_read(dir, "cgroup.subtree_control", on, sizeof(on), &err) < 0)
        return;
    for (char *save = NULL, *tok = strtok_r(avail, " \n", &save); tok;
         tok = strtok_r(NULL, " \n", &save)) {
        bool enabled = false;
        size_t tl = strlen(tok);
        for (const char *p = on; (p = strstr(p, tok)) != NULL; p += tl)
            if ((p == on || p[-1] == ' ') && (p[tl] == ' ' || p[tl] == '\n' || p[tl] == '\0'))
                enabled = true;
        if (enabled)
            continue;
        if (ka_cg_writef(dir, "cgroup.subtree_control", &err, "+%s", tok) < 0)
            ka_log(KA_LOG_DEBUG, "cgroups", "enable %s: %s", tok, err.msg);
    }
}

int ka_cgroup_create(struct ka_cgroup *cg, struct ka_error *err)
{
    for (size_t i = 0; i < cg->n; i++) {
        char *dir = cg->d[i].dir;
        size_t base = mount_len(cg, i);
        unsigned component = 0;
        cg->d[i].made_from = 0;
        /* Walk the components below the mount: mkdir each, set it up. */
        for (size_t pos = base + 1;; pos++) {
            char c = dir[pos];
            if (c != '/' && c != '\0')
                continue;
            component++;
            dir[pos] = '\0';
            char parent[PATH_MAX];
            snprintf(parent, sizeof(parent), "%s", dir);
            *strrchr(parent, '/') = '\0';
            if (strlen(parent) < base)
                parent[base] = '\0';
            int rc = 0;
            if (cg->version == KA_CGROUP_V2)
                enable_subtree(parent);
            bool made = mkdir(dir, 0755) == 0;
            if (!made && errno != EEXIST)
                rc = ka_error_set(err, errno, "create cgroup %s", dir);
            else if (cg->version == KA_CGROUP_V1 &&
                     (cg->d[i].controllers & KA_CG_BIT(KA_CG_CPUSET)))
                rc = cpuset_fill(dir, parent, err);
            dir[pos] = c;
            /* Remembered so that removal can take away what we made (and only that). */
            if (made && cg->d[i].made_from == 0)
                cg->d[i].made_from = component;
            if (rc < 0)
                return rc;
            if (c == '\0')
                break;
        }
    }
    if (cg->version == KA_CGROUP_V2 && cg->n)
        cg->d[0].controllers = read_v2_controllers(cg->d[0].dir);
    return 0;
}

void ka_cgroup_each_made(const struct ka_cgroup *cg, bool with_leaf,
                         void (*fn)(const char *dir, void *data), void *data)
{
    for (size_t i = 0; i < cg->n; i++) {
        if (cg->d[i].made_from == 0)
            continue;
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", cg->d[i].dir);
        size_t base = mount_len(cg, i);
        unsigned depth = 0;
        for (const char *p = dir + base; *p; p++)
            depth += *p == '/';
        if (!with_leaf) {
            *strrchr(dir, '/') = '\0';
            depth--;
        }
        for (; depth >= cg->d[i].made_from && strlen(dir) > base; depth--) {
            fn(dir, data);
            *strrchr(dir, '/') = '\0';
        }
    }
}

/* ---- joining ---------------------------------------------------------------------- */

int ka_cgroup_open_procs(const struct ka_cgroup *cg, int *fds, size_t max, size_t *n,
                         struct ka_error *err)
{
    *n = 0;
    for (size_t i = 0; i < cg->n; i++) {
        if (*n == max) {
            ka_cgroup_close_fds(fds, *n);
            return ka_error_set(err, E2BIG, "too many cgroup hierarchies");
        }
        char path[PATH_MAX];
        join_path(path, sizeof(path), cg->d[i].dir, "cgroup.procs");
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            ka_cgroup_close_fds(fds, *n);
            *n = 0;
            return ka_error_set(err, e, "open %s", path);
        }
        fds[(*n)++] = fd;
    }
    return 0;
}

int ka_cgroup_enter_fds(const int *fds, size_t n, struct ka_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (write(fds[i], "0", 1) != 1)
            return ka_error_set(err, errno, "join the container cgroup (hierarchy %zu)", i);
    return 0;
}

void ka_cgroup_close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

/* ---- walking the subtree ---------------------------------------------------------- */

typedef int (*dir_fn)(const char *dir, void *data, struct ka_error *err);

/* Call fn on dir and every cgroup below it; children before parents when
 * post_order. A missing dir is skipped. */
static int walk(const char *dir, unsigned depth, bool post_order, dir_fn fn, void *data,
                struct ka_error *err)
{
    if (!post_order) {
        int rc = fn(dir, data, err);
        if (rc < 0)
            return rc;
    }
    cleanup_dir DIR *d = depth < KA_CGROUP_MAX_DEPTH ? opendir(dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >= sizeof(sub))
            continue;
        int rc = walk(sub, depth + 1, post_order, fn, data, err);
        if (rc < 0)
            return rc;
    }
    return post_order ? fn(dir, data, err) : 0;
}

struct pid_set {
    pid_t *pids;
    size_t n, cap;
};

static int collect_pids(const char *dir, void *data, struct ka_error *err)
{
    struct pid_set *set = data;
    char path[PATH_MAX];
    join_path(path, sizeof(path), dir, "cgroup.procs");
    cleanup_file FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : ka_error_set(err, errno, "open %s", path);
    long pid;
    size_t bytes = 0;
    while (fscanf(f, "%ld", &pid) == 1) {
        if ((bytes += 8) > PROCS_MAX_BYTES)
            return ka_error_set(err, E2BIG, "%s lists too many processes", path);
        bool seen = false;
        for (size_t i = 0; i < set->n && !seen; i++)
            seen = set->pids[i] == (pid_t)pid;
        if (seen || pid <= 0)
            continue;
        if (set->n == set->cap) {
            set->cap = set->cap ? set->cap * 2 : 64;
            set->pids = ka_xrealloc(set->pids, set->cap * sizeof(pid_t));
        }
        set->pids[set->n++] = (pid_t)pid;
    }
    return 0;
}

int ka_cgroup_pids(const struct ka_cgroup *cg, pid_t **pids, size_t *n, struct ka_error *err)
{
    struct pid_set set = {0};
    for (size_t i = 0; i < cg->n; i++) {
        if (walk(cg->d[i].dir, 0, false, collect_pids, &set, err) < 0) {
            free(set.pids);
            return -1;
        }
    }
    *pids = set.pids;
    *n = set.n;
    return 0;
}

/* ---- freezing ------------------------------------------------------------------------ */

int ka_cgroup_freeze(const struct ka_cgroup *cg, bool frozen, struct ka_error *err)
{
    if (cg->version == KA_CGROUP_V2)
        return ka_cg_write(cg->d[0].dir, "cgroup.freeze", frozen ? "1" : "0", err);
    const char *dir = ka_cgroup_dir_of(cg, KA_CG_FREEZER);
    if (!dir)
        return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                   "no freezer cgroup hierarchy is mounted");
    return ka_cg_write(dir, "freezer.state", frozen ? "FROZEN" : "THAWED", err);
}

int ka_cgroup_freeze_state(const struct ka_cgroup *cg, struct ka_error *err)
{
    if (cg->version == KA_CGROUP_V2) {
        uint64_t frozen = 0, want = 0;
        if (ka_cg_read_key(cg->d[0].dir, "cgroup.events", "frozen", &frozen, err) < 0 ||
            ka_cg_read_u64(cg->d[0].dir, "cgroup.freeze", &want, err) < 0)
            return -1;
        if (frozen)
            return want ? KA_FREEZE_FROZEN : KA_FREEZE_FREEZING; /* thawing: not there yet */
        return want ? KA_FREEZE_FREEZING : KA_FREEZE_THAWED;
    }
    const char *dir = ka_cgroup_dir_of(cg, KA_CG_FREEZER);
    if (!dir)
        return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                   "no freezer cgroup hierarchy is mounted");
    char buf[32];
    if (ka_cg_read(dir, "freezer.state", buf, sizeof(buf), err) < 0)
        return -1;
    if (strncmp(buf, "FROZEN", 6) == 0)
        return KA_FREEZE_FROZEN;
    if (strncmp(buf, "FREEZING", 8) == 0)
        return KA_FREEZE_FREEZING;
    return KA_FREEZE_THAWED;
}

int ka_cgroup_signal_all(const struct ka_cgroup *cg, int sig, pid_t skip_pid, struct ka_error *err)
{
    /* Frozen, nothing can fork between the listing and the kill. A paused
     * container stays paused. */
    struct ka_error ferr;
    int state = ka_cgroup_freeze_state(cg, &ferr);
    bool froze = state == KA_FREEZE_THAWED && ka_cgroup_freeze(cg, true, &ferr) == 0;
    pid_t *pids = NULL;
    size_t n = 0;
    int rc = ka_cgroup_pids(cg, &pids, &n, err);
    int count = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (pids[i] == skip_pid)
            continue;
        if (kill(pids[i], sig) == 0)
            count++;
        else if (errno != ESRCH)
            ka_log(KA_LOG_DEBUG, "cgroups", "signal %d to %d: %s", sig, (int)pids[i],
                   strerror(errno));
    }
    free(pids);
    if (froze && ka_cgroup_freeze(cg, false, &ferr) < 0)
        ka_log(KA_LOG_DEBUG, "cgroups", "thaw %s: %s", cg->path, ferr.msg);
    return rc < 0 ? rc : count;
}

/* ---- removal ------------------------------------------------------------------------- */

static int remove_dir(const char *dir, void *data, struct ka_error *err)
{
    bool *busy = data;
    if (rmdir(dir) == 0 || errno == ENOENT)
        return 0;
    if (errno == EBUSY) {
        *busy = true;
        return 0;
    }
    return ka_error_set(err, errno, "remove cgroup %s", dir);
}

int ka_cgroup_destroy(const struct ka_cgroup *cg, struct ka_error *err)
{
    struct ka_error kerr;
    bool killed = false;
    if (cg->version == KA_CGROUP_V2 && cg->n && ka_cg_exists(cg->d[0].dir, "cgroup.kill"))
        killed = ka_cg_write(cg->d[0].dir, "cgroup.kill", "1", &kerr) == 0;
    if (!killed && ka_cgroup_signal_all(cg, SIGKILL, 0, &kerr) < 0 && kerr.errnum != ENOENT)
        ka_log(KA_LOG_DEBUG, "cgroups", "kill what is left in %s: %s", cg->path, kerr.msg);
    /* A frozen cgroup's killed tasks cannot exit: thaw it (v1; v2 kills through). */
    if (cg->version == KA_CGROUP_V1 && ka_cgroup_dir_of(cg, KA_CG_FREEZER))
        ka_cgroup_freeze(cg, false, &kerr);
    bool busy = false;
    for (size_t i = 0; i < cg->n; i++) {
        if (access(cg->d[i].dir, F_OK) < 0)
            continue;
        if (walk(cg->d[i].dir, 0, true, remove_dir, &busy, err) < 0)
            return -1;
    }
    if (busy)
        return ka_error_set(err, EBUSY, "remove cgroup %s", cg->path);
    return 0;
}
