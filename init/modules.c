/* Kernel modules carried in the initrd: the list file and agent.modules= parsed here,
 * resolved and loaded with finit_module(2) by core/kmod.c (an initrd has no
 * modprobe). */
#include "init/init.h"
#include "init/internal.h"

#include "core/kmod.h"
#include "core/log.h"
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* ---- requests ------------------------------------------------------------------ */

static void add_request(struct ka_module_list *list, const char *name, size_t name_len,
                        const char *params, size_t params_len)
{
    if (!ka_module_list_add(list, name, name_len, params, params_len)) {
        char shown[64];
        snprintf(shown, sizeof(shown), "%.*s", name_len > 60 ? 60 : (int)name_len, name);
        ka_log_kv(KA_LOG_WARN, "modules", "ignoring invalid module name", "name", shown, NULL);
    }
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && isspace((unsigned char)*p))
        p++;
    return p;
}

void ka_modules_parse(struct ka_module_list *list, const char *file_text, const char *comma_list)
{
    for (const char *p = file_text; p && *p;) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *hash = memchr(p, '#', (size_t)(end - p));
        const char *stop = hash ? hash : end;
        const char *name = skip_space(p, stop);
        const char *q = name;
        while (q < stop && !isspace((unsigned char)*q))
            q++;
        const char *params = skip_space(q, stop);
        const char *pend = stop;
        while (pend > params && isspace((unsigned char)pend[-1]))
            pend--;
        if (q > name)
            add_request(list, name, (size_t)(q - name), params, (size_t)(pend - params));
        p = eol ? eol + 1 : end;
    }
    for (const char *p = comma_list; p && *p;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *name = skip_space(p, end);
        const char *nend = end;
        while (nend > name && isspace((unsigned char)nend[-1]))
            nend--;
        if (nend > name)
            add_request(list, name, (size_t)(nend - name), "", 0);
        p = comma ? comma + 1 : end;
    }
}

int ka_init_load_modules_at(const char *root, const struct ka_config *cfg, ka_module_load_fn load,
                            void *data, struct ka_error *err)
{
    char list_path[PATH_MAX];
    if (ka_init_path(list_path, sizeof(list_path), root, KA_MODULES_LIST_FILE) < 0)
        return ka_error_set(err, ENAMETOOLONG, "modules list under %s", root);
    size_t len;
    cleanup_free char *text = ka_init_read_file(list_path, 1u << 20, &len);
    if (!text && errno != ENOENT)
        ka_log(KA_LOG_WARN, "modules", "read %s: %s", list_path, strerror(errno));

    struct ka_module_list reqs = {0};
    ka_modules_parse(&reqs, text, cfg->modules);
    if (reqs.n == 0)
        return 0;

    struct utsname u;
    uname(&u);
    char rel[PATH_MAX], moddir[PATH_MAX], dep[PATH_MAX];
    snprintf(rel, sizeof(rel), "/lib/modules/%s", u.release);
    int rc = 0;
    if (ka_init_path(moddir, sizeof(moddir), root, rel) < 0 ||
        (size_t)snprintf(dep, sizeof(dep), "%s/modules.dep", moddir) >= sizeof(dep)) {
        rc = ka_error_set(err, ENAMETOOLONG, "modules directory under %s", root);
    } else if (access(dep, F_OK) < 0) {
        ka_log_kv(KA_LOG_WARN, "modules", "modules requested but the image has no modules.dep",
                  "path", dep, NULL);
        rc = ka_error_set(err, errno, "%zu module(s) requested, but %s", reqs.n, dep);
    } else {
        struct ka_module_plan plan;
        rc = ka_modules_plan(moddir, &reqs, &plan, err);
        if (rc == 0) {
            unsigned failed = ka_modules_load(&plan, load, data);
            if (failed || plan.missing)
                rc = ka_error_set(err, 0, "%u module(s) failed to load, %u not found", failed,
                                  plan.missing);
        }
        ka_module_plan_free(&plan);
    }
    ka_module_list_free(&reqs);
    return rc;
}
