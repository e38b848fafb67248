/* The sandbox-wide RPCs: CreateSandbox, DestroySandbox, GetGuestDetails,
 * OnlineCPUMem, UpdateEphemeralMounts, RemoveStaleVirtiofsShareMounts. */
#define _XOPEN_SOURCE 700
#include "agent.h"
#include "core/kmod.h"
#include "core/log.h"
#include "core/util.h"
#include "core/version.h"
#include "rpc/cgroups.h"
#include "rpc/devices.h"
#include "rpc/dispatch.h"
#include "rpc/online.h"
#include "rpc/rpc_util.h"
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "agent.pb-c.h"

#define SANDBOX_DIR KA_RUN_DIR "/sandbox"
#define SHARED_CONTAINERS_DIR KA_RUN_DIR "/shared/containers/"
#define MAX_HOSTNAME 64
#define MAX_DNS_BYTES 4096

static struct ttrpc_call *destroy_call;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Upstream starts every sandbox from an empty /run/kata-containers. FTW_MOUNT keeps
 * the walk out of anything mounted below it. */
static void reset_run_dir(void)
{
    nftw(KA_RUN_DIR, remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    mkdir(KA_RUN_DIR, 0755);
}

/* The IPC and UTS namespaces every container shares: unshare them in the agent,
 * keep an fd to each, and step back into the agent's own. */
static int make_shared_namespaces(struct ka_sandbox *sb, const char *hostname, struct ka_error *err)
{
    cleanup_close int own_ipc = open("/proc/self/ns/ipc", O_RDONLY | O_CLOEXEC);
    cleanup_close int own_uts = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
    if (own_ipc < 0 || own_uts < 0)
        return ka_error_set(err, errno, "open the agent's namespaces");
    if (unshare(CLONE_NEWIPC | CLONE_NEWUTS) < 0)
        return ka_error_set(err, errno, "create the sandbox IPC/UTS namespaces");
    int rc = 0;
    if (hostname[0] && sethostname(hostname, strlen(hostname)) < 0)
        rc = ka_error_set(err, errno, "set hostname '%s'", hostname);
    if (rc == 0) {
        sb->ipc_ns_fd = open("/proc/self/ns/ipc", O_RDONLY | O_CLOEXEC);
        sb->uts_ns_fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
        if (sb->ipc_ns_fd < 0 || sb->uts_ns_fd < 0)
            rc = ka_error_set(err, errno, "open the sandbox namespaces");
    }
    if (setns(own_ipc, CLONE_NEWIPC) < 0 || setns(own_uts, CLONE_NEWUTS) < 0) {
        /* The agent would now live in the sandbox's namespaces; say so loudly. */
        ka_log(KA_LOG_CRITICAL, "sandbox", "cannot return to the agent's namespaces: %s",
               strerror(errno));
    }
    return rc;
}

/* DNS for the guest: written next to the sandbox state, then bound over
 * /etc/resolv.conf (the image's file stays untouched underneath). */
static int write_dns(char **dns, size_t n, struct ka_error *err)
{
    struct stat st;
    if (n == 0 || stat("/etc/resolv.conf", &st) < 0 || S_ISDIR(st.st_mode))
        return 0;
    char text[MAX_DNS_BYTES];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *line = dns[i];
        while (*line == ' ' || *line == '\t')
            line++;
        size_t l = strlen(line);
        while (l > 0 && (line[l - 1] == ' ' || line[l - 1] == '\t' || line[l - 1] == '\n'))
            l--;
        if (strchr(line, '\n') && (size_t)(strchr(line, '\n') - line) < l)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "dns entry %zu contains a newline", i);
        if (len + l + 2 > sizeof(text))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "dns entries exceed %d bytes", MAX_DNS_BYTES);
        memcpy(text + len, line, l);
        len += l;
        text[len++] = '\n';
    }
    mkdir(SANDBOX_DIR, 0755);
    const char *tmp = SANDBOX_DIR "/resolv.conf.tmp", *final = SANDBOX_DIR "/resolv.conf";
    cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
        return ka_error_set(err, errno, "write %s", tmp);
    if (rename(tmp, final) < 0)
        return ka_error_set(err, errno, "rename %s", tmp);
    if (mount(final, "/etc/resolv.conf", "none", MS_BIND, NULL) < 0)
        return ka_error_set(err, errno, "bind %s over /etc/resolv.conf", final);
    return 0;
}

/* kernel_modules: by name from /lib/modules/$(uname -r) with finit_module, their
 * dependencies first (upstream runs modprobe; a minimal guest has none). */
static int load_modules(Grpc__KernelModule **mods, size_t n, struct ka_error *err)
{
    if (n > KA_KMOD_MAX_REQUESTS)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "more than %d kernel modules asked for", KA_KMOD_MAX_REQUESTS);
    struct ka_kmod_request reqs[KA_KMOD_MAX_REQUESTS];
    for (size_t i = 0; i < n; i++)
        reqs[i] = (struct ka_kmod_request){.name = mods[i]->name,
                                           .params = mods[i]->parameters,
                                           .n_params = mods[i]->n_parameters};
    return ka_kmod_load_requests(KA_KMOD_ROOT, reqs, n, ka_module_finit, NULL, err);
}

static int create_sandbox(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                          struct ka_error *err)
{
    const Grpc__CreateSandboxRequest *req = (const Grpc__CreateSandboxRequest *)m;
    struct ka_sandbox *sb = &a->sandbox;
    if (sb->created)
        return ka_error_status_set(err, KA_STATUS_ALREADY_EXISTS, "the sandbox already exists");
    if (strlen(req->hostname) > MAX_HOSTNAME)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "hostname too long");
    if (req->sandbox_id[0] && !ka_valid_id(req->sandbox_id))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "invalid sandbox id '%.80s'",
                                   req->sandbox_id);
    if (req->guest_hook_path[0])
        ka_log(KA_LOG_WARN, "sandbox", "guest hooks are not supported yet: ignoring %s",
               req->guest_hook_path);
    /* Block storages may still be on their way: wait (the call is replayed from
     * the top when they come) before anything has a side effect. */
    cleanup_free struct rpc_dev_set *devs = ka_xcalloc(1, sizeof(*devs));
    cleanup_free int *storage_need = ka_xcalloc(req->n_storages + 1, sizeof(int));
    int ready;
    if (rpc_dev_add_storages(devs, req->storages, req->n_storages, storage_need, err) < 0 ||
        (ready = rpc_await_devices(a, call, devs, err)) < 0)
        return ka_error_wrap(err, "CreateSandbox");
    if (ready == 0)
        return 0;
    if (load_modules(req->kernel_modules, req->n_kernel_modules, err) < 0)
        return ka_error_wrap(err, "CreateSandbox");
    reset_run_dir();
    if (make_shared_namespaces(sb, req->hostname, err) < 0)
        goto fail;
    if (rpc_add_storages(&sb->storages, req->storages, req->n_storages, devs, storage_need, NULL,
                         err) < 0)
        goto fail;
    if (write_dns(req->dns, req->n_dns, err) < 0)
        goto fail;
    sb->created = true;
    sb->id = ka_xstrdup(req->sandbox_id);
    sb->hostname = ka_xstrdup(req->hostname);
    ka_log_kv(KA_LOG_INFO, "sandbox", "sandbox created", "sandbox_id", sb->id, NULL);
    rpc_reply(call, NULL);
    return 0;

fail:
    /* Leave nothing half made: a corrected CreateSandbox can follow. */
    ka_storage_release_all(&sb->storages);
    ka_storage_release_shared(); /* no container yet: only this request's */
    if (sb->ipc_ns_fd >= 0)
        close(sb->ipc_ns_fd);
    if (sb->uts_ns_fd >= 0)
        close(sb->uts_ns_fd);
    sb->ipc_ns_fd = sb->uts_ns_fd = -1;
    return ka_error_wrap(err, "CreateSandbox");
}

static void finish_destroy(struct agent *a)
{
    struct ka_sandbox *sb = &a->sandbox;
    ka_storage_release_all(&sb->storages);
    ka_storage_release_shared();
    struct ttrpc_call *call = destroy_call;
    destroy_call = NULL;
    if (call)
        rpc_reply(call, NULL);
    ka_log(KA_LOG_INFO, "sandbox", "sandbox destroyed, shutting down");
    /* main() powers the VM off when the agent is PID 1. */
    ka_reactor_stop(&a->reactor, 0);
}

void rpc_sandbox_container_gone(struct ka_sandbox *sb)
{
    if (destroy_call && !sb->containers)
        finish_destroy(sb->agent);
}

static void cancel_destroy(struct ttrpc_call *call)
{
    (void)call;
    destroy_call = NULL;
}

static int destroy_sandbox(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                           struct ka_error *err)
{
    (void)m;
    if (destroy_call)
        return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                   "the sandbox is already being destroyed");
    destroy_call = call;
    ttrpc_call_park(call, cancel_destroy, NULL);
    struct ka_sandbox *sb = &a->sandbox;
    rpc_cgroup_sandbox_destroyed(sb); /* parked GetOOMEvent calls fail now (§2.3) */
    if (!sb->containers) {
        finish_destroy(a);
        return 0;
    }
    /* Each removal finishes when its processes are reaped; the last one answers us. */
    for (struct ka_container *c = sb->containers, *next; c; c = next) {
        next = c->next;
        if (!c->removing)
            ka_container_remove(c, NULL, 0);
    }
    return 0;
}

static uint64_t read_hex_file(const char *path)
{
    char buf[64];
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtoull(buf, NULL, 16);
}

static int get_guest_details(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                             struct ka_error *err)
{
    (void)err;
    const Grpc__GuestDetailsRequest *req = (const Grpc__GuestDetailsRequest *)m;
    Grpc__GuestDetailsResponse resp = GRPC__GUEST_DETAILS_RESPONSE__INIT;
    Grpc__AgentDetails details = GRPC__AGENT_DETAILS__INIT;
    if (req->mem_block_size)
        resp.mem_block_size_bytes = read_hex_file("/sys/devices/system/memory/block_size_bytes");
    if (req->mem_hotplug_probe)
        resp.support_mem_hotplug_probe = access("/sys/devices/system/memory/probe", F_OK) == 0;
    details.version = (char *)KA_VERSION;
    details.init_daemon = a->init_mode;
    size_t n = 0;
    while (ka_storage_drivers[n])
        n++;
    details.n_storage_handlers = n;
    details.storage_handlers = (char **)ka_storage_drivers;
    details.supports_seccomp = true; /* libseccomp is linked in: profiles are honoured */
    resp.agent_details = &details;
    rpc_reply(call, &resp.base);
    return 0;
}

/* After CPUs came online, the cpusets cut to the old set: every container's
 * cgroup and its parents get the guest's CPUs, a container that asked for CPUs of
 * its own gets those back (upstream's update_cpuset_path). */
static int widen_cpusets(struct ka_sandbox *sb, const char *guest_cpus, struct ka_error *err)
{
    for (struct ka_container *c = sb->containers; c; c = c->next) {
        if (!c->cgroup)
            continue;
        const char *own = c->spec ? c->spec->resources.cpu.cpus : NULL;
        if (ka_cpuset_widen(c->cgroup, guest_cpus, own, err) < 0)
            return ka_error_wrap(err, "container %s", c->id);
    }
    return 0;
}

/* The CPUs part waits on a timer between rounds (a hotplugged CPU's sysfs entry
 * may come a little after the request), never on the loop. */
struct online_job {
    struct agent *agent;
    struct ttrpc_call *call;
    unsigned nb_cpus;
    bool cpu_only;
    unsigned rounds;
    int timer_fd;
    struct ka_watch timer;
};

static void online_job_free(struct online_job *j)
{
    ka_reactor_del(&j->timer);
    if (j->timer_fd >= 0)
        close(j->timer_fd);
    free(j);
}

static void online_job_cancel(struct ttrpc_call *call)
{
    online_job_free(call->park_data);
}

static void online_memory(bool cpu_only)
{
    if (cpu_only)
        return;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/memory", ka_online_sysfs);
    ka_online_all(dir, "memory", 0); /* no memory directory: nothing to online */
}

/* One round; 1 when the call was answered. */
static int online_round(struct agent *a, struct ttrpc_call *call, unsigned nb_cpus, bool cpu_only,
                        bool last, struct ka_error *err)
{
    char cpus[1024];
    unsigned have = ka_online_cpus_step(ka_online_sysfs, nb_cpus, cpus, sizeof(cpus));
    if (have < nb_cpus && !last)
        return 0;
    if (have < nb_cpus)
        ka_error_set(err, 0, "OnlineCPUMem: only %u of the %u CPUs asked for are online (%s)", have,
                     nb_cpus, cpus);
    else if (widen_cpusets(&a->sandbox, cpus, err) == 0) {
        online_memory(cpu_only);
        rpc_reply(call, NULL);
        return 1;
    } else
        ka_error_wrap(err, "OnlineCPUMem");
    rpc_fail(call, err);
    return 1;
}

static void online_tick(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct online_job *j = w->data;
    uint64_t n;
    if (read(j->timer_fd, &n, sizeof(n)) < 0 && errno == EAGAIN)
        return;
    struct ka_error err;
    j->rounds++;
    if (online_round(j->agent, j->call, j->nb_cpus, j->cpu_only, j->rounds >= KA_ONLINE_RETRIES,
                     &err))
        online_job_free(j); /* the call is answered (and freed) */
}

static int online_cpu_mem(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                          struct ka_error *err)
{
    const Grpc__OnlineCPUMemRequest *req = (const Grpc__OnlineCPUMemRequest *)m;
    if (req->nb_cpus == 0) {
        online_memory(req->cpu_only);
        rpc_reply(call, NULL);
        return 0;
    }
    if (online_round(a, call, req->nb_cpus, req->cpu_only, false, err))
        return 0;
    struct online_job *j = ka_xcalloc(1, sizeof(*j));
    *j = (struct online_job){.agent = a,
                             .call = call,
                             .nb_cpus = req->nb_cpus,
                             .cpu_only = req->cpu_only,
                             .rounds = 1};
    long ns = (long)(ka_online_retry_ms ? ka_online_retry_ms : 1) * 1000000L;
    struct itimerspec its = {.it_value = {.tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L},
                             .it_interval = {.tv_sec = ns / 1000000000L,
                                             .tv_nsec = ns % 1000000000L}};
    j->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (j->timer_fd < 0 || timerfd_settime(j->timer_fd, 0, &its, NULL) < 0 ||
        ka_reactor_add(&a->reactor, &j->timer, j->timer_fd, EPOLLIN, online_tick, j, err) < 0) {
        int e = errno;
        online_job_free(j);
        return ka_error_set(err, e, "OnlineCPUMem: arm the retry timer");
    }
    ttrpc_call_park(call, online_job_cancel, j);
    return 0;
}

static int update_ephemeral_mounts(struct agent *a, struct ttrpc_call *call,
                                   const ProtobufCMessage *m, struct ka_error *err)
{
    (void)a;
    const Grpc__UpdateEphemeralMountsRequest *req = (const Grpc__UpdateEphemeralMountsRequest *)m;
    for (size_t i = 0; i < req->n_storages; i++) {
        const Grpc__Storage *s = req->storages[i];
        struct ka_storage st = {.driver = s->driver,
                                .source = s->source,
                                .fstype = s->fstype,
                                .options = s->options,
                                .n_options = s->n_options,
                                .mount_point = s->mount_point};
        if (ka_storage_update_ephemeral(&st, err) < 0)
            return -1;
    }
    rpc_reply(call, NULL);
    return 0;
}

/* stat() every mount under the shared containers dir so virtiofsd can drop stale
 * inodes. Always OK: the runtime treats an error here as fatal on delete. */
static int remove_stale_virtiofs(struct agent *a, struct ttrpc_call *call,
                                 const ProtobufCMessage *m, struct ka_error *err)
{
    (void)a, (void)m, (void)err;
    cleanup_file FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096];
    while (f && fgets(line, sizeof(line), f)) {
        char mnt[4096];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 &&
            strncmp(mnt, SHARED_CONTAINERS_DIR, strlen(SHARED_CONTAINERS_DIR)) == 0) {
            struct stat st;
            stat(mnt, &st);
        }
    }
    rpc_reply(call, NULL);
    return 0;
}

const struct rpc_handler rpc_sandbox_handlers[] = {
    {"CreateSandbox", create_sandbox},
    {"DestroySandbox", destroy_sandbox},
    {"GetGuestDetails", get_guest_details},
    {"OnlineCPUMem", online_cpu_mem},
    {"UpdateEphemeralMounts", update_ephemeral_mounts},
    {"RemoveStaleVirtiofsShareMounts", remove_stale_virtiofs},
    {NULL, NULL},
};
