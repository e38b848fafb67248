/* Kernel modules by name, loaded with finit_module(2) in modules.dep order: what
 * PID 1 does for the initrd's list (init/modules.c) and what CreateSandbox does for
 * the runtime's kernel_modules (upstream's load_kernel_module, without modprobe).
 * The modules directory and the loader are parameters so tests need neither a real
 * /lib/modules nor a kernel that accepts the module. */
#ifndef KA_CORE_KMOD_H
#define KA_CORE_KMOD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

#define KA_KMOD_ROOT "/lib/modules"
#define KA_MODULE_NAME_MAX 56 /* the kernel's MODULE_NAME_LEN, NUL included */

struct ka_module_req {
    char *name;   /* as written; '-' and '_' are the same to the kernel */
    char *params; /* for finit_module, "" when none */
};

struct ka_module_list {
    struct ka_module_req *v;
    size_t n;
};

/* A module name the kernel could have: [A-Za-z0-9_-], 1..55 bytes. */
bool ka_kmod_valid_name(const char *s, size_t len);
/* '-' -> '_' in place (the kernel's spelling). */
void ka_kmod_normalise(char *name);
/* Append one request unless the same module (after normalising) is already there
 * (the first one's params win). False, adding nothing, when the name is invalid. */
bool ka_module_list_add(struct ka_module_list *list, const char *name, size_t name_len,
                        const char *params, size_t params_len);
void ka_module_list_free(struct ka_module_list *list);

/* One finit_module to do: dependencies come before what needs them, each once. */
struct ka_module_step {
    char *path;   /* absolute */
    char *name;   /* normalised ('-' -> '_', no .ko suffix) */
    char *params; /* from the module's request, "" when it was not asked for by name */
};

struct ka_module_plan {
    struct ka_module_step *v;
    size_t n;
    /* Requested names found neither in modules.dep nor built in (modules.builtin),
     * each is logged as a warning by ka_modules_plan(); the first one is named. */
    unsigned missing;
    char first_missing[KA_MODULE_NAME_MAX];
};

/* Resolve the requests against <moddir>/modules.dep (and modules.builtin) into load
 * order: a depth-first walk of each module's dependencies (each line of modules.dep
 * is a module followed by everything it needs), so a dependency is loaded before
 * any module that needs it, and nothing twice. */
int ka_modules_plan(const char *moddir, const struct ka_module_list *reqs,
                    struct ka_module_plan *plan, struct ka_error *err);
void ka_module_plan_free(struct ka_module_plan *plan);

/* Load each step through load (0 or -errno; -EEXIST counts as success). A failure is
 * logged with the module's name and the rest still load. Returns how many failed. */
typedef int (*ka_module_load_fn)(void *data, const char *path, const char *params);
unsigned ka_modules_load(const struct ka_module_plan *plan, ka_module_load_fn load, void *data);

/* finit_module(2) on path (compressed modules handed to the kernel to decompress). */
int ka_module_finit(void *data, const char *path, const char *params);

/* CreateSandbox.kernel_modules: one module asked for by name with its parameters. */
struct ka_kmod_request {
    const char *name;
    char *const *params;
    size_t n_params;
};

#define KA_KMOD_MAX_REQUESTS 64
#define KA_KMOD_MAX_PARAMS 64
#define KA_KMOD_MAX_PARAMS_BYTES 4096 /* all of one module's, joined by spaces */

/* Load the requests from <root>/<uname -r> (root: KA_KMOD_ROOT), dependencies first,
 * stopping at the first failure with an error naming the module (INVALID_ARGUMENT for
 * a bad request or a module that is not there). A module already loaded is success. */
int ka_kmod_load_requests(const char *root, const struct ka_kmod_request *reqs, size_t n,
                          ka_module_load_fn load, void *data, struct ka_error *err);

#endif
