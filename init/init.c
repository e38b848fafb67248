/* The PID 1 sequence after the config is read, and power-off. */
#include "init/init.h"
#include "init/internal.h"

#include "core/deferred.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <unistd.h>

char *ka_init_read_file(const char *path, size_t max, size_t *len)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, off = 0;
    cleanup_free char *buf = ka_xmalloc(cap);
    for (;;) {
        if (off + 1 >= cap) {
            if (cap > max) {
                errno = EFBIG;
                return NULL;
            }
            cap *= 2;
            buf = ka_xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + off, cap - 1 - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return NULL;
        if (n == 0)
            break;
        off += (size_t)n;
    }
    if (off > max) {
        errno = EFBIG;
        return NULL;
    }
    buf[off] = '\0';
    *len = off;
    return take_ptr(buf);
}

/* Run one step; log its failure and keep the first error for the caller. */
static void step(int rc, const char *what, struct ka_error *one, int *first, struct ka_error *err)
{
    if (rc >= 0)
        return;
    ka_log_kv(KA_LOG_WARN, "init", "init step failed, carrying on", "step", what, "error", one->msg,
              NULL);
    if (*first == 0) {
        *first = rc;
        if (err)
            *err = *one;
    }
}

int ka_init_raise_nofile(struct ka_error *err)
{
    /* The kernel starts init with 1024 open files (of 4096 allowed); each container
     * holds about a dozen fds in the agent (stdio pipes, pidfd, namespaces, cgroup),
     * so the hundredth CreateContainer failed with EMFILE. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return ka_error_set(err, errno, "getrlimit NOFILE");
    if (rl.rlim_cur >= rl.rlim_max)
        return 0;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return ka_error_set(err, errno, "setrlimit NOFILE");
    return 0;
}

int ka_init_setup_early(const struct ka_config *cfg, struct ka_error *err)
{
    struct ka_error one;
    int first = 0;
    step(ka_init_raise_nofile(&one), "nofile", &one, &first, err);

    /* Modules first: a virtio driver built as a module (virtio_console for a serial
     * ttrpc channel, vsock, 9p, virtiofs) must be in before anything looks for it. */
    step(ka_init_load_modules_at("", cfg, ka_module_finit, NULL, &one), "modules", &one, &first,
         err);
    ka_boot_mark("modules");
    ka_init_console_tty();
    if (setenv("PATH", KA_INIT_PATH, 1) < 0)
        step(ka_error_set(&one, errno, "setenv PATH"), "path", &one, &first, err);
    return first;
}

static int defer_mounts(void *data, struct ka_error *err)
{
    (void)data;
    return ka_init_late_mounts(err);
}

static int defer_cgroups(void *data, struct ka_error *err)
{
    const struct ka_config *cfg = data;
    return ka_init_cgroups_at("", "/proc/cgroups", cfg->unified_cgroup_hierarchy, NULL, err);
}

static int defer_ptmx(void *data, struct ka_error *err)
{
    (void)data;
    return ka_init_ptmx_at("", err);
}

static int defer_hostname(void *data, struct ka_error *err)
{
    (void)data;
    return ka_init_hostname_at("", err);
}

static int defer_lo(void *data, struct ka_error *err)
{
    (void)data;
    return ka_init_lo_up(err);
}

void ka_init_defer_rest(const struct ka_config *cfg, struct ka_deferred *d)
{
    /* /dev/shm, /dev/pts, /run, then cgroups: the steps run in order, and these are
     * what CreateSandbox and CreateContainer wait on most often (ptmx needs /dev/pts). */
    ka_deferred_add(d, "mounts", defer_mounts, NULL);
    ka_deferred_add(d, "cgroups", defer_cgroups, (void *)cfg);
    ka_deferred_add(d, "ptmx", defer_ptmx, NULL);
    ka_deferred_add(d, "hostname", defer_hostname, NULL);
    ka_deferred_add(d, "lo", defer_lo, NULL);
}

int ka_init_setup(const struct ka_config *cfg, struct ka_error *err)
{
    struct ka_deferred d;
    ka_deferred_init(&d);
    int rc = ka_init_setup_early(cfg, err);
    ka_init_defer_rest(cfg, &d);
    ka_deferred_finish(&d);
    return rc;
}

void ka_init_power_off(void)
{
    /* The agent's own files are gone with the VM; whatever a container wrote to a
     * block device or a shared filesystem must reach the host first. */
    sync();
    reboot(RB_POWER_OFF);
    /* Refused (not PID 1 of the initial namespace, or no CAP_SYS_BOOT): wait for
     * the host to kill the VM rather than exit, which would panic the kernel. */
    for (;;)
        pause();
}
