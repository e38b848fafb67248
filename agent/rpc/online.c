/* OnlineCPUMem through sysfs, and the cpuset widening that must follow it: a v1
 * cpuset made while the guest had 1 CPU keeps "0" forever unless someone writes
 * the new set, top-down, as upstream's update_cpuset_path does. */
#include "rpc/online.h"
#include "core/log.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *ka_online_sysfs = KA_SYSFS_SYSTEM;
unsigned ka_online_retry_ms = KA_ONLINE_RETRY_MS;

#define MAX_CPUS 8192 /* the kernel's NR_CPUS ceiling; bounds the list we build */

/* "<prefix><digits>" -> the number, or -1. */
static long block_number(const char *name, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) != 0 || name[plen] < '0' || name[plen] > '9')
        return -1;
    char *end;
    long n = strtol(name + plen, &end, 10);
    return *end || n > INT_MAX ? -1 : n;
}

unsigned ka_online_all(const char *dir, const char *prefix, unsigned limit)
{
    cleanup_dir DIR *d = opendir(dir);
    if (!d)
        return 0;
    unsigned done = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && (limit == 0 || done < limit)) {
        if (block_number(de->d_name, prefix) < 0)
            continue;
        char path[PATH_MAX], state[4] = "";
        if ((size_t)snprintf(path, sizeof(path), "%s/%s/online", dir, de->d_name) >= sizeof(path))
            continue;
        cleanup_close int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0 || read(fd, state, sizeof(state) - 1) <= 0 || state[0] != '0')
            continue;
        if (pwrite(fd, "1", 1, 0) == 1)
            done++;
        else
            ka_log(KA_LOG_DEBUG, "online", "online %s: %s", path, strerror(errno));
    }
    return done;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

unsigned ka_online_cpu_list(const char *system, char *out, size_t size)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/cpu", system);
    if (size)
        out[0] = '\0';
    cleanup_dir DIR *d = opendir(dir);
    if (!d)
        return 0;
    cleanup_free long *ids = ka_xcalloc(MAX_CPUS, sizeof(long));
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < MAX_CPUS) {
        long id = block_number(de->d_name, "cpu");
        if (id < 0)
            continue;
        char path[PATH_MAX], state[4] = "";
        if ((size_t)snprintf(path, sizeof(path), "%s/%s/online", dir, de->d_name) >= sizeof(path))
            continue;
        cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && (read(fd, state, sizeof(state) - 1) <= 0 || state[0] != '1'))
            continue;
        ids[n++] = id;
    }
    qsort(ids, n, sizeof(*ids), cmp_long);
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && ids[j + 1] == ids[j] + 1)
            j++;
        int w = j > i ? snprintf(out + len, size - len, "%s%ld-%ld", len ? "," : "", ids[i], ids[j])
                      : snprintf(out + len, size - len, "%s%ld", len ? "," : "", ids[i]);
        if (w < 0 || (size_t)w >= size - len) {
            out[len] = '\0'; /* cut at the last whole range */
            break;
        }
        len += (size_t)w;
        i = j + 1;
    }
    return (unsigned)n;
}

unsigned ka_online_cpus_step(const char *system, unsigned nb_cpus, char *out, size_t size)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/cpu", system);
    unsigned have = ka_online_cpu_list(system, out, size);
    if (have < nb_cpus) {
        ka_online_all(dir, "cpu", nb_cpus - have);
        have = ka_online_cpu_list(system, out, size);
    }
    return have;
}

int ka_online_cpus(const char *system, unsigned nb_cpus, char *out, size_t size,
                   struct ka_error *err)
{
    unsigned have = ka_online_cpu_list(system, out, size);
    /* A hotplugged CPU's sysfs entry may show up a little after the runtime asks. */
    for (unsigned round = 0; have < nb_cpus && round < KA_ONLINE_RETRIES; round++) {
        if (round > 0) {
            struct timespec ts = {.tv_sec = ka_online_retry_ms / 1000,
                                  .tv_nsec = (long)(ka_online_retry_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        have = ka_online_cpus_step(system, nb_cpus, out, size);
    }
    if (have < nb_cpus)
        return ka_error_set(err, 0, "only %u of the %u CPUs asked for are online (%s)", have,
                            nb_cpus, out);
    return 0;
}

/* Write cpus to dir/cpuset.cpus; a v2 directory without the file is skipped. */
static int set_cpus(const char *dir, const char *cpus, bool v2, struct ka_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/cpuset.cpus", dir);
    if (v2 && access(path, F_OK) < 0)
        return 0;
    return ka_cg_write(dir, "cpuset.cpus", cpus, err);
}

int ka_cpuset_widen(const struct ka_cgroup *cg, const char *guest_cpus, const char *own_cpus,
                    struct ka_error *err)
{
    if (!guest_cpus || !guest_cpus[0])
        return 0;
    bool v2 = cg->version == KA_CGROUP_V2;
    size_t plen = strlen(cg->path);
    for (size_t i = 0; i < cg->n; i++) {
        const char *full = cg->d[i].dir;
        size_t flen = strlen(full);
        if (!(cg->d[i].controllers & KA_CG_BIT(KA_CG_CPUSET)) || flen < plen ||
            strcmp(full + flen - plen, cg->path) != 0)
            continue;
        /* Each prefix of the path below the hierarchy's mount, shortest first. */
        char dir[PATH_MAX];
        if (flen >= sizeof(dir))
            return ka_error_set(err, ENAMETOOLONG, "cgroup directory");
        memcpy(dir, full, flen + 1);
        for (size_t k = flen - plen + 1; k <= flen; k++) {
            if (k < flen && dir[k] != '/')
                continue;
            char saved = dir[k];
            dir[k] = '\0';
            int rc = set_cpus(dir, guest_cpus, v2, err);
            dir[k] = saved;
            if (rc < 0)
                return ka_error_wrap(err, "widen cpuset to %s", guest_cpus);
        }
        if (own_cpus && own_cpus[0] && set_cpus(full, own_cpus, v2, err) < 0)
            return ka_error_wrap(err, "restore the container's cpuset %s", own_cpus);
    }
    return 0;
}
