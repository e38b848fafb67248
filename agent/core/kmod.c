/* Kernel modules by name through modules.dep and finit_module(2), shared by PID 1
 * (init/modules.c: the initrd's list) and CreateSandbox (kernel_modules): neither
 * an initrd nor a minimal guest has modprobe, and modules.dep's order is all of it
 * that is needed. */
#include "core/kmod.h"
#include "core/log.h"
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4 /* linux/module.h, 5.17 */
#endif

#define MODULES_DEP_MAX (32u << 20) /* a whole distribution's is ~1 MB */
#define DEP_DEPTH_MAX 64            /* real chains are a handful deep */

/* ---- requests ------------------------------------------------------------------ */

/* The kernel treats '-' and '_' in module names alike; so do we. */
void ka_kmod_normalise(char *name)
{
    for (char *p = name; *p; p++)
        if (*p == '-')
            *p = '_';
}

bool ka_kmod_valid_name(const char *s, size_t len)
{
    if (len == 0 || len >= KA_MODULE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

bool ka_module_list_add(struct ka_module_list *list, const char *name, size_t name_len,
                        const char *params, size_t params_len)
{
    if (!ka_kmod_valid_name(name, name_len))
        return false;
    char norm[KA_MODULE_NAME_MAX];
    memcpy(norm, name, name_len);
    norm[name_len] = '\0';
    ka_kmod_normalise(norm);
    for (size_t i = 0; i < list->n; i++) {
        char other[KA_MODULE_NAME_MAX];
        snprintf(other, sizeof(other), "%s", list->v[i].name);
        ka_kmod_normalise(other);
        if (strcmp(other, norm) == 0)
            return true;
    }
    list->v = ka_xrealloc(list->v, (list->n + 1) * sizeof(*list->v));
    list->v[list->n].name = ka_xstrndup(name, name_len);
    list->v[list->n].params = ka_xstrndup(params, params_len);
    list->n++;
    return true;
}

void ka_module_list_free(struct ka_module_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->v[i].name);
        free(list->v[i].params);
    }
    free(list->v);
    list->v = NULL;
    list->n = 0;
}

/* ---- modules.dep --------------------------------------------------------------- */

/* A whole file of at most max bytes, NUL-terminated (free it); NULL with errno. */
static char *read_small_file(const char *path, size_t max, size_t *len)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, off = 0;
    char *buf = ka_xmalloc(cap);
    for (;;) {
        if (off + 1 >= cap) {
            if (cap > max) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            cap *= 2;
            buf = ka_xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + off, cap - 1 - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            errno = e;
            return NULL;
        }
        if (n == 0)
            break;
        off += (size_t)n;
    }
    buf[off] = '\0';
    *len = off;
    return buf;
}

struct dep_entry {
    char *path; /* as written in modules.dep, relative to the modules directory */
    char *deps; /* the text after "path:", dependencies separated by spaces */
    char name[KA_MODULE_NAME_MAX];
    bool visited;
};

struct dep_db {
    char *text;
    struct dep_entry *v;
    size_t n;
};

/* "kernel/drivers/net/virtio_net.ko.xz" -> "virtio_net". */
static void name_from_path(const char *path, size_t len, char *out, size_t size)
{
    const char *base = path;
    for (size_t i = 0; i < len; i++)
        if (path[i] == '/')
            base = path + i + 1;
    size_t n = (size_t)(path + len - base);
    const char *ko = NULL;
    for (const char *p = base; p + 3 <= base + n; p++)
        if (memcmp(p, ".ko", 3) == 0 && (p + 3 == base + n || p[3] == '.'))
            ko = p;
    if (ko)
        n = (size_t)(ko - base);
    if (n >= size)
        n = size - 1;
    memcpy(out, base, n);
    out[n] = '\0';
    ka_kmod_normalise(out);
}

static int dep_db_load(struct dep_db *db, const char *path, struct ka_error *err)
{
    size_t len;
    db->text = read_small_file(path, MODULES_DEP_MAX, &len);
    if (!db->text)
        return ka_error_set(err, errno, "read %s", path);
    for (char *p = db->text; *p;) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = '\0';
        char *colon = strchr(p, ':');
        if (colon && colon > p) {
            *colon = '\0';
            db->v = ka_xrealloc(db->v, (db->n + 1) * sizeof(*db->v));
            struct dep_entry *e = &db->v[db->n++];
            e->path = p;
            e->deps = colon + 1;
            e->visited = false;
            name_from_path(p, strlen(p), e->name, sizeof(e->name));
        }
        if (!eol)
            break;
        p = eol + 1;
    }
    return 0;
}

static void dep_db_free(struct dep_db *db)
{
    free(db->text);
    free(db->v);
}

static struct dep_entry *find_by_name(struct dep_db *db, const char *name)
{
    for (size_t i = 0; i < db->n; i++)
        if (strcmp(db->v[i].name, name) == 0)
            return &db->v[i];
    return NULL;
}

static struct dep_entry *find_by_path(struct dep_db *db, const char *path, size_t len)
{
    for (size_t i = 0; i < db->n; i++)
        if (strlen(db->v[i].path) == len && memcmp(db->v[i].path, path, len) == 0)
            return &db->v[i];
    return NULL;
}

/* Is name listed in modules.builtin (compiled into the kernel)? */
static bool is_builtin(const char *moddir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/modules.builtin", moddir);
    cleanup_file FILE *f = fopen(path, "re");
    cleanup_free char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (f && (n = getline(&line, &cap, f)) > 0) {
        char other[KA_MODULE_NAME_MAX];
        while (n > 0 && isspace((unsigned char)line[n - 1]))
            n--;
        name_from_path(line, (size_t)n, other, sizeof(other));
        if (strcmp(other, name) == 0)
            return true;
    }
    return false;
}

struct planner {
    const char *moddir;
    const struct ka_module_list *reqs;
    struct dep_db db;
    struct ka_module_plan *plan;
};

/* A module's parameters come from its request, however it is reached (asked for by
 * name, or as the dependency of a module asked for earlier). */
static const char *params_for(const struct planner *pl, const char *name)
{
    for (size_t i = 0; i < pl->reqs->n; i++) {
        char other[KA_MODULE_NAME_MAX];
        snprintf(other, sizeof(other), "%s", pl->reqs->v[i].name);
        ka_kmod_normalise(other);
        if (strcmp(other, name) == 0)
            return pl->reqs->v[i].params;
    }
    return "";
}

static void plan_add(struct planner *pl, const char *rel, size_t rel_len, const char *name)
{
    char path[PATH_MAX];
    if (rel[0] == '/') /* old depmod wrote absolute paths */
        snprintf(path, sizeof(path), "%.*s", (int)rel_len, rel);
    else
        snprintf(path, sizeof(path), "%s/%.*s", pl->moddir, (int)rel_len, rel);
    struct ka_module_plan *plan = pl->plan;
    plan->v = ka_xrealloc(plan->v, (plan->n + 1) * sizeof(*plan->v));
    plan->v[plan->n].path = ka_xstrdup(path);
    plan->v[plan->n].name = ka_xstrdup(name);
    plan->v[plan->n].params = ka_xstrdup(params_for(pl, name));
    plan->n++;
}

/* Dependencies first (each from its own modules.dep line), then the module itself.
 * depmod lists a module's whole closure with the deepest last, so walking the list
 * backwards loads in modprobe's order; the recursion makes any order correct. */
static void visit(struct planner *pl, struct dep_entry *e, int depth)
{
    if (e->visited)
        return;
    e->visited = true;
    if (depth >= DEP_DEPTH_MAX) {
        ka_log_kv(KA_LOG_WARN, "modules", "dependency chain too deep", "module", e->name, NULL);
        return;
    }
    const char *d = e->deps;
    const char *end = d + strlen(d);
    while (end > d) {
        while (end > d && isspace((unsigned char)end[-1]))
            end--;
        const char *start = end;
        while (start > d && !isspace((unsigned char)start[-1]))
            start--;
        if (start == end)
            break;
        struct dep_entry *dep = find_by_path(&pl->db, start, (size_t)(end - start));
        if (dep) {
            visit(pl, dep, depth + 1);
        } else {
            /* Listed as a dependency but without a line of its own: load it bare,
             * once, like any other (deduplicated by name). */
            char name[KA_MODULE_NAME_MAX];
            name_from_path(start, (size_t)(end - start), name, sizeof(name));
            bool seen = false;
            for (size_t i = 0; i < pl->plan->n && !seen; i++)
                seen = strcmp(pl->plan->v[i].name, name) == 0;
            if (!seen)
                plan_add(pl, start, (size_t)(end - start), name);
        }
        end = start;
    }
    plan_add(pl, e->path, strlen(e->path), e->name);
}

int ka_modules_plan(const char *moddir, const struct ka_module_list *reqs,
                    struct ka_module_plan *plan, struct ka_error *err)
{
    memset(plan, 0, sizeof(*plan));
    struct planner pl = {.moddir = moddir, .reqs = reqs, .plan = plan};
    char dep_path[PATH_MAX];
    if ((size_t)snprintf(dep_path, sizeof(dep_path), "%s/modules.dep", moddir) >= sizeof(dep_path))
        return ka_error_set(err, ENAMETOOLONG, "modules directory");
    if (dep_db_load(&pl.db, dep_path, err) < 0) {
        dep_db_free(&pl.db);
        return -1;
    }
    for (size_t i = 0; i < reqs->n; i++) {
        char name[KA_MODULE_NAME_MAX];
        snprintf(name, sizeof(name), "%s", reqs->v[i].name);
        ka_kmod_normalise(name);
        struct dep_entry *e = find_by_name(&pl.db, name);
        if (e) {
            visit(&pl, e, 0);
        } else if (is_builtin(moddir, name)) {
            ka_log_kv(KA_LOG_DEBUG, "modules", "module is built in", "module", name, NULL);
        } else {
            ka_log_kv(KA_LOG_WARN, "modules", "module not found in modules.dep", "module", name,
                      "dir", moddir, NULL);
            if (plan->missing++ == 0)
                snprintf(plan->first_missing, sizeof(plan->first_missing), "%s", name);
        }
    }
    dep_db_free(&pl.db);
    return 0;
}

void ka_module_plan_free(struct ka_module_plan *plan)
{
    for (size_t i = 0; i < plan->n; i++) {
        free(plan->v[i].path);
        free(plan->v[i].name);
        free(plan->v[i].params);
    }
    free(plan->v);
    memset(plan, 0, sizeof(*plan));
}

/* ---- loading ------------------------------------------------------------------- */

static bool compressed(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot && (strcmp(dot, ".xz") == 0 || strcmp(dot, ".gz") == 0 || strcmp(dot, ".zst") == 0);
}

int ka_module_finit(void *data, const char *path, const char *params)
{
    (void)data;
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* A compressed module is the kernel's to decompress (CONFIG_MODULE_DECOMPRESS);
     * without that support the call fails with EINVAL and the log says which. */
    int flags = compressed(path) ? MODULE_INIT_COMPRESSED_FILE : 0;
    if (syscall(SYS_finit_module, fd, params, flags) < 0)
        return -errno;
    return 0;
}

unsigned ka_modules_load(const struct ka_module_plan *plan, ka_module_load_fn load, void *data)
{
    unsigned failed = 0;
    for (size_t i = 0; i < plan->n; i++) {
        const struct ka_module_step *s = &plan->v[i];
        int rc = load(data, s->path, s->params);
        if (rc == -EEXIST) {
            ka_log_kv(KA_LOG_DEBUG, "modules", "module already loaded", "module", s->name, NULL);
        } else if (rc < 0) {
            ka_log_kv(KA_LOG_ERROR, "modules", "loading module failed", "module", s->name, "path",
                      s->path, "error", strerror(-rc), NULL);
            failed++;
        } else {
            ka_log_kv(KA_LOG_DEBUG, "modules", "module loaded", "module", s->name, NULL);
        }
    }
    return failed;
}

/* ---- CreateSandbox.kernel_modules ---------------------------------------------- */

/* The parameters of one request joined by spaces, as finit_module takes them. */
static int join_params(const struct ka_kmod_request *r, char *out, size_t size,
                       struct ka_error *err)
{
    if (r->n_params > KA_KMOD_MAX_PARAMS)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "module %s: more than %d parameters", r->name,
                                   KA_KMOD_MAX_PARAMS);
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->n_params; i++) {
        const char *p = r->params[i];
        size_t l = strlen(p);
        if (l == 0)
            continue;
        if (len + l + 2 > size)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "module %s: parameters longer than %zu bytes", r->name,
                                       size - 1);
        for (size_t k = 0; k < l; k++)
            if (iscntrl((unsigned char)p[k]))
                return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                           "module %s: parameter %zu has a control character",
                                           r->name, i);
        if (len)
            out[len++] = ' ';
        memcpy(out + len, p, l + 1);
        len += l;
    }
    return 0;
}

static int load_step(const struct ka_module_step *s, ka_module_load_fn load, void *data,
                     struct ka_error *err)
{
    int rc = load(data, s->path, s->params);
    if (rc == 0 || rc == -EEXIST)
        return 0;
    if (compressed(s->path) && (rc == -EINVAL || rc == -EOPNOTSUPP || rc == -ENOSYS))
        return ka_error_set(err, -rc,
                            "load module %s: the kernel refused the compressed file %s "
                            "(it needs Linux 5.17+ with CONFIG_MODULE_DECOMPRESS)",
                            s->name, s->path);
    return ka_error_set(err, -rc, "load module %s from %s", s->name, s->path);
}

int ka_kmod_load_requests(const char *root, const struct ka_kmod_request *reqs, size_t n,
                          ka_module_load_fn load, void *data, struct ka_error *err)
{
    if (n == 0)
        return 0;
    if (n > KA_KMOD_MAX_REQUESTS)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "more than %d kernel modules asked for", KA_KMOD_MAX_REQUESTS);
    struct ka_module_list list = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char params[KA_KMOD_MAX_PARAMS_BYTES];
        const char *name = reqs[i].name ? reqs[i].name : "";
        if (!ka_kmod_valid_name(name, strlen(name)))
            rc = ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                     "invalid kernel module name '%.64s'", name);
        else if (join_params(&reqs[i], params, sizeof(params), err) < 0)
            rc = -1;
        else
            ka_module_list_add(&list, name, strlen(name), params, strlen(params));
    }
    struct utsname u;
    char moddir[PATH_MAX];
    if (rc == 0 && (uname(&u) < 0 || (size_t)snprintf(moddir, sizeof(moddir), "%s/%s", root,
                                                      u.release) >= sizeof(moddir)))
        rc = ka_error_set(err, ENAMETOOLONG, "modules directory under %s", root);
    struct ka_module_plan plan = {0};
    if (rc == 0 && ka_modules_plan(moddir, &list, &plan, err) < 0)
        rc = ka_error_wrap(err, "kernel module%s %s%s", list.n > 1 ? "s" : "", list.v[0].name,
                           list.n > 1 ? ", ..." : "");
    if (rc == 0 && plan.missing)
        rc = ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                 "kernel module %s not found in %s/modules.dep (nor built in)",
                                 plan.first_missing, moddir);
    for (size_t i = 0; rc == 0 && i < plan.n; i++)
        rc = load_step(&plan.v[i], load, data, err);
    ka_module_plan_free(&plan);
    ka_module_list_free(&list);
    return rc;
}
