/* Container lifecycle: CreateContainer, StartContainer, ExecProcess, SignalProcess,
 * WaitProcess, RemoveContainer. The handlers validate and convert the request,
 * then park the call on the child's sync pipe or the process's exit; nothing here
 * waits on the loop. */
#include "agent.h"
#include "cgroups/cgroup.h"
#include "container/seccomp.h"
#include "container/spawn.h"
#include "core/child.h"
#include "core/log.h"
#include "core/util.h"
#include "rpc/cgroups.h"
#include "rpc/devices.h"
#include "rpc/dispatch.h"
#include "rpc/oci_convert.h"
#include "rpc/rpc_util.h"
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.pb-c.h"

static void sync_event(struct ka_watch *w, uint32_t events);

/* ---- processes ---------------------------------------------------------------- */

static bool drain_sync(struct ka_proc *p);

static void proc_on_exit(void *data, pid_t pid, int status)
{
    (void)pid;
    struct ka_proc *p = data;
    struct ka_container *c = p->container;
    bool intermediate = p->pid_pending;
    p->exited = true; /* reaped: its pid must not be signalled any more */
    /* The child is gone, so its sync pipe holds its last word: read it before the
     * exit, or a spawn call could be answered from the wrong event. */
    if (p->sync_watch.active && drain_sync(p))
        return; /* the container was still being created and is gone now */
    if (intermediate && !p->pid_pending)
        return; /* it named the process ('P'), which is watched from now on */
    /* An intermediate that died without naming one: its exit is the process's. */
    p->pid_pending = false;
    if (p->is_init)
        c->state = KA_CONTAINER_STOPPED;
    bool forget = p->forget_on_exit && !p->waiters;
    ka_proc_exited(p, status);
    if (forget) /* its exec id is free again */
        ka_container_forget_proc(c, p);
    ka_container_check_removal(c);
}

/* The intermediate of a double fork named the process ('P'): watch that instead.
 * The intermediate, if not reaped yet, is left to the reaper as an unknown child. */
static void proc_set_pid(struct ka_proc *p, pid_t pid)
{
    if (!p->exited)
        ka_child_unwatch(p->pid);
    p->pid = pid;
    p->exited = false;
    p->pid_pending = false;
    if (p->is_init)
        p->container->init_pid = pid;
    ka_child_watch(pid, proc_on_exit, p);
}

/* The reaper met a pid nobody registered: it may be the process of a spawn whose
 * pid is still in the sync pipe. The intermediate writes it before it exits, and
 * the process only becomes the agent's child (re-parented) when it does, so
 * reading the pipes now is enough for no exit status to be lost. */
static void drain_pending_pids(void *data)
{
    struct ka_sandbox *sb = data;
again:
    for (struct ka_container *c = sb->containers; c; c = c->next)
        for (struct ka_proc *p = c->procs; p; p = p->next)
            if (p->pid_pending && p->sync_watch.active && drain_sync(p))
                goto again; /* that container is gone */
}

static struct ka_proc *proc_new(struct ka_container *c, const char *exec_id, bool is_init,
                                struct ka_spawn_result *res)
{
    struct agent *a = c->sandbox->agent;
    struct ka_proc *p = ka_xcalloc(1, sizeof(*p));
    p->container = c;
    snprintf(p->exec_id, sizeof(p->exec_id), "%s", exec_id);
    p->pid = res->pid;
    p->pid_pending = res->pid_pending;
    if (p->pid_pending)
        ka_child_set_unknown_hook(drain_pending_pids, c->sandbox);
    p->is_init = is_init;
    p->tty = res->tty;
    p->sync_fd = res->sync_fd;
    p->start_fd = res->start_fd;
    int in_fd = res->tty ? fcntl(res->stdout_fd, F_DUPFD_CLOEXEC, 0) : res->stdin_fd;
    ka_stream_init(&p->in, &a->reactor, in_fd, true);
    ka_stream_init(&p->out, &a->reactor, res->stdout_fd, false);
    ka_stream_init(&p->err, &a->reactor, res->stderr_fd, false);
    p->next = NULL;
    struct ka_proc **tail = &c->procs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = p;
    ka_child_watch(p->pid, proc_on_exit, p);
    return p;
}

/* Park call until the child reports on its sync pipe. */
static int await_sync(struct ka_proc *p, struct ttrpc_call *call, struct ka_error *err)
{
    p->spawn_call = call;
    ttrpc_call_park(call, rpc_cancel_spawn_call, p);
    if (!p->sync_watch.active &&
        ka_reactor_add(&p->container->sandbox->agent->reactor, &p->sync_watch, p->sync_fd, EPOLLIN,
                       sync_event, p, err) < 0) {
        p->spawn_call = NULL;
        call->cancel = NULL;
        return -1;
    }
    return 0;
}

void rpc_cancel_spawn_call(struct ttrpc_call *call)
{
    struct ka_proc *p = call->park_data;
    p->spawn_call = NULL;
}

static void finish_spawn_call(struct ka_proc *p, enum ka_status status, const char *error)
{
    struct ttrpc_call *call = p->spawn_call;
    p->spawn_call = NULL;
    if (!call)
        return;
    if (error)
        ttrpc_call_fail(call, status, error);
    else
        ttrpc_call_reply(call, NULL);
}

static void container_destroy(struct ka_container *c);

/* A child that failed its setup is exiting already: collect it here, so the
 * container's cgroup is empty when it is released and goes at once. (Left to the
 * reaper, a background rmdir retry could outlive the container and kill a new one
 * created under the same id and cgroup path.) Bounded: the child has written its
 * last word and is in _exit, or is killed now. */
static void reap_failed_child(struct ka_proc *p)
{
    if (p->exited || p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    ka_child_unwatch(p->pid);
    while (waitpid(p->pid, NULL, __WALL) < 0 && errno == EINTR)
        ;
    p->exited = true;
}

/* The init's namespaces, pinned by fds the agent opens itself while the init
 * waits for StartContainer: nothing of the container has run yet, so these are
 * the namespaces the agent created or joined for it. Through a directory fd of the
 * process, so that every link is read from that one process (the caller made sure
 * it is not reaped, so its pid is still its own). Only those an exec joins: the
 * network one is the agent's for every container, and user namespaces are never
 * made for one. */
static int pin_init_namespaces(struct ka_container *c, pid_t pid, struct ka_error *err)
{
    static const char *const names[KA_NS_COUNT] = {[KA_NS_PID] = "pid",
                                                   [KA_NS_MOUNT] = "mnt",
                                                   [KA_NS_IPC] = "ipc",
                                                   [KA_NS_UTS] = "uts",
                                                   [KA_NS_CGROUP] = "cgroup"};
    char path[32];
    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    cleanup_close int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return ka_error_set(err, errno, "open %s", path);
    for (int i = 0; i < KA_NS_COUNT; i++) {
        if (!names[i] || c->ns_fds[i] >= 0)
            continue;
        snprintf(path, sizeof(path), "ns/%s", names[i]);
        c->ns_fds[i] = openat(dir, path, O_RDONLY | O_CLOEXEC);
        if (c->ns_fds[i] < 0)
            return ka_error_set(err, errno, "pin the init's %s namespace", names[i]);
    }
    return 0;
}

static void close_pinned_namespaces(struct ka_container *c)
{
    for (int i = 0; i < KA_NS_COUNT; i++) {
        if (c->ns_fds[i] >= 0)
            close(c->ns_fds[i]);
        c->ns_fds[i] = -1;
    }
}

/* The child spoke: 'P' + pid (first, from the intermediate of a double fork),
 * 'R' ready (init created), 'E' + message, or EOF (it exec'd).
 * Returns true when the container was destroyed (a failed creation). */
static bool drain_sync(struct ka_proc *p)
{
    struct ka_container *c = p->container;
    /* Room for all a child may have written: every message is one write() below
     * PIPE_BUF, so a read never ends inside one. */
    char buf[1 + sizeof(int32_t) + 1 + KA_ERROR_MSG_MAX + 3];
    ssize_t n = read(p->sync_fd, buf, sizeof(buf) - 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    char *msg = buf;
    if (p->pid_pending && n >= (ssize_t)(1 + sizeof(int32_t)) && buf[0] == KA_SPAWN_MSG_PID) {
        int32_t pid;
        memcpy(&pid, buf + 1, sizeof(pid));
        if (pid > 0)
            proc_set_pid(p, (pid_t)pid);
        msg += 1 + sizeof(int32_t);
        n -= (ssize_t)(1 + sizeof(int32_t));
        if (n == 0 && !p->pid_pending)
            return false; /* more to come */
    }
    /* Only an init being created says 'R' (the write end of the pipe is within reach
     * of a container with CAP_SYS_PTRACE until the exec: a forged one must not
     * turn a running container back into a created one). */
    if (n > 0 && msg[0] == KA_SPAWN_MSG_READY && p->is_init && c->state == KA_CONTAINER_CREATING) {
        /* Created: the init waits for StartContainer. Stop listening until then. */
        ka_reactor_del(&p->sync_watch);
        struct ka_error err;
        if (p->exited || pin_init_namespaces(c, p->pid, &err) < 0) {
            if (p->exited)
                ka_error_set(&err, ESRCH, "container init exited during setup");
            /* Never an init the agent could not exec into later: gone with the rest. */
            struct ttrpc_call *call = p->spawn_call;
            p->spawn_call = NULL;
            reap_failed_child(p);
            container_destroy(c);
            if (call)
                ttrpc_call_fail(call, KA_STATUS_INTERNAL, err.msg);
            return true;
        }
        c->state = KA_CONTAINER_CREATED;
        struct ka_sandbox *sb = c->sandbox;
        if (sb->pid_ns_fd < 0)
            sb->pid_ns_fd = fcntl(c->ns_fds[KA_NS_PID], F_DUPFD_CLOEXEC, 0);
        ka_log_kv(KA_LOG_INFO, "container", "container created", "container_id", c->id, NULL);
        finish_spawn_call(p, KA_STATUS_OK, NULL);
        return false;
    }
    ka_reactor_del(&p->sync_watch);
    close(p->sync_fd);
    p->sync_fd = -1;
    if (n > 1 && msg[0] == KA_SPAWN_MSG_ERROR) {
        msg[n] = '\0';
        enum ka_status status =
            msg[1] == KA_STATUS_INVALID_ARGUMENT ? KA_STATUS_INVALID_ARGUMENT : KA_STATUS_INTERNAL;
        if (c->state == KA_CONTAINER_CREATING) {
            struct ttrpc_call *call = p->spawn_call;
            p->spawn_call = NULL;
            reap_failed_child(p);
            container_destroy(c); /* nothing left behind */
            if (call)
                ttrpc_call_fail(call, status, msg + 2);
            return true;
        }
        if (!p->is_init)
            p->forget_on_exit = true; /* ExecProcess failed: the record goes with the child */
        finish_spawn_call(p, status, msg + 2);
        return false;
    }
    /* EOF: the child exec'd (or died without a word). */
    if (c->state == KA_CONTAINER_CREATING) {
        struct ttrpc_call *call = p->spawn_call;
        p->spawn_call = NULL;
        reap_failed_child(p);
        container_destroy(c);
        if (call)
            ttrpc_call_fail(call, KA_STATUS_INTERNAL, "container init exited during setup");
        return true;
    }
    if (p->pid_pending) { /* the intermediate died before naming the process */
        if (!p->is_init)
            p->forget_on_exit = true;
        finish_spawn_call(p, KA_STATUS_INTERNAL, "process exited during setup");
        return false;
    }
    if (p->is_init && c->state == KA_CONTAINER_CREATED)
        c->state = KA_CONTAINER_RUNNING;
    finish_spawn_call(p, KA_STATUS_OK, NULL);
    return false;
}

static void sync_event(struct ka_watch *w, uint32_t events)
{
    (void)events;
    drain_sync(w->data);
}

/* ---- containers --------------------------------------------------------------- */

static void unmount_rootfs(struct ka_container *c)
{
    if (c->rootfs_mounted && umount2(c->rootfs, MNT_DETACH) < 0)
        ka_log(KA_LOG_WARN, "container", "unmount %s: %s", c->rootfs, strerror(errno));
    c->rootfs_mounted = false;
    if (c->rootfs[0])
        rmdir(c->rootfs);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
        ka_log(KA_LOG_WARN, "container", "remove %s: %s", path, strerror(errno));
    return 0;
}

/* The bundle directory, once the storages are released: a rw overlay left its
 * upper and work directories there (the container's writes, gone with it as
 * upstream removes the container root). Nothing is followed across a mount. */
static void remove_bundle(struct ka_container *c)
{
    if (!c->bundle[0])
        return;
    static const char *const own[] = {"upper", "work"};
    char path[sizeof(c->bundle) + 8];
    for (size_t i = 0; i < KA_ARRAY_SIZE(own); i++) {
        snprintf(path, sizeof(path), "%.*s/%s", (int)sizeof(c->bundle) - 8, c->bundle, own[i]);
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    }
    rmdir(c->bundle);
}

/* Free everything of a container whose processes are all gone or being killed. */
static void container_destroy(struct ka_container *c)
{
    struct ka_sandbox *sb = c->sandbox;
    if (c->remove_timer.active)
        ka_reactor_del(&c->remove_timer);
    if (c->remove_timer_fd >= 0)
        close(c->remove_timer_fd);
    for (struct ka_proc *p = c->procs; p; p = p->next)
        if (!p->exited && p->pid > 0)
            kill(p->pid, SIGKILL);
    while (c->procs) {
        struct ka_proc *p = c->procs;
        c->procs = p->next;
        ka_proc_free(p);
    }
    rpc_cgroup_container_free(c); /* what is left of the cgroup is removed in the background */
    close_pinned_namespaces(c);
    unmount_rootfs(c);
    ka_storage_release_all(&c->storages);
    remove_bundle(c);
    for (struct ka_container **pp = &sb->containers; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    ka_spec_free(c->spec); /* frees the struct too */
    free(c);
    /* The last container is gone: what the containers held (specs, processes, storage
     * and cgroup state, many small blocks) is free but resident, since free() only
     * gives back the heap's top. Hand the free pages in the middle back too. */
    if (!sb->containers)
        malloc_trim(0);
}

static bool has_live_procs(const struct ka_container *c)
{
    for (const struct ka_proc *p = c->procs; p; p = p->next)
        if (!p->exited)
            return true;
    return false;
}

/* A RemoveContainer (or DestroySandbox) waiting for the processes to be reaped. */
void ka_container_check_removal(struct ka_container *c)
{
    if (!c->removing || has_live_procs(c))
        return;
    /* Kill what is left in the cgroup and remove it; a busy one is retried and
     * brings us back here when it is gone. */
    if (!rpc_cgroup_release(c))
        return;
    struct ttrpc_call *call = c->remove_call;
    struct ka_sandbox *sb = c->sandbox;
    c->remove_call = NULL;
    container_destroy(c);
    if (call)
        ttrpc_call_reply(call, NULL);
    rpc_sandbox_container_gone(sb);
}

static void cancel_remove(struct ttrpc_call *call)
{
    struct ka_container *c = call->park_data;
    c->remove_call = NULL;
}

/* The processes outlived RemoveContainer's timeout (a process stuck in the kernel):
 * answer now; the container is still freed once they are reaped. */
static void remove_timeout(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ka_container *c = w->data;
    ka_reactor_del(&c->remove_timer);
    struct ttrpc_call *call = c->remove_call;
    c->remove_call = NULL;
    if (call)
        ttrpc_call_fail(call, KA_STATUS_DEADLINE_EXCEEDED,
                        "timed out waiting for the container's processes to exit");
}

/* Kill what runs, then finish once the reaper has collected it all. */
void ka_container_remove(struct ka_container *c, struct ttrpc_call *call, uint32_t timeout_s)
{
    c->removing = true;
    for (struct ka_proc *p = c->procs; p; p = p->next)
        if (!p->exited && p->pid > 0)
            kill(p->pid, SIGKILL);
    rpc_cgroup_kill(c); /* the processes the agent did not start, and a paused cgroup thawed */
    if (call) {
        c->remove_call = call;
        ttrpc_call_park(call, cancel_remove, c);
        if (timeout_s > 0 && has_live_procs(c)) {
            struct itimerspec its = {.it_value.tv_sec = timeout_s};
            struct ka_error err;
            c->remove_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
            if (c->remove_timer_fd < 0 || timerfd_settime(c->remove_timer_fd, 0, &its, NULL) < 0 ||
                ka_reactor_add(&c->sandbox->agent->reactor, &c->remove_timer, c->remove_timer_fd,
                               EPOLLIN, remove_timeout, c, &err) < 0)
                ka_log(KA_LOG_WARN, "container", "RemoveContainer timeout not armed: %s",
                       strerror(errno));
        }
    }
    ka_container_check_removal(c);
}

/* Only what our own storages put in a container's directory before we get here:
 * a rw overlay's upper and work directories (the container table has already
 * refused a duplicate id, so anything else is not ours). */
static bool bundle_holds_only_storage_dirs(const char *bundle)
{
    cleanup_dir DIR *d = opendir(bundle);
    if (!d)
        return false;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if ((strcmp(de->d_name, "upper") != 0 && strcmp(de->d_name, "work") != 0) ||
            (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
            return false;
    }
    return true;
}

static int prepare_bundle(struct ka_container *c, struct ka_error *err)
{
    snprintf(c->bundle, sizeof(c->bundle), "%s/%s", KA_RUN_DIR, c->id); /* id <= 128 bytes */
    if (mkdir(KA_RUN_DIR, 0755) < 0 && errno != EEXIST)
        return ka_error_set(err, errno, "mkdir %s", KA_RUN_DIR);
    int e = mkdir(c->bundle, 0755) < 0 ? errno : 0;
    if (e && (e != EEXIST || !bundle_holds_only_storage_dirs(c->bundle))) {
        c->bundle[0] = '\0'; /* not ours to remove */
        return ka_error_set(err, e, "create container directory %s/%s", KA_RUN_DIR, c->id);
    }
    if ((size_t)snprintf(c->rootfs, sizeof(c->rootfs), "%.*s/rootfs", (int)sizeof(c->bundle) - 16,
                         c->bundle) >= sizeof(c->rootfs))
        return ka_error_set(err, ENAMETOOLONG, "container path");
    if (mkdir(c->rootfs, 0755) < 0)
        return ka_error_set(err, errno, "mkdir %s", c->rootfs);
    if (mount(c->spec->root_path, c->rootfs, "none", MS_BIND | MS_REC, NULL) < 0)
        return ka_error_set(err, errno, "bind %s on %s", c->spec->root_path, c->rootfs);
    c->rootfs_mounted = true;
    return 0;
}

/* Mount the storages, block ones from the device node the wait found. */
int rpc_add_storages(struct ka_storage_ref **refs, Grpc__Storage **st, size_t n,
                     const struct rpc_dev_set *devs, const int *storage_need, const char *cid,
                     struct ka_error *err)
{
    for (size_t i = 0; i < n; i++) {
        struct ka_storage s = {.driver = st[i]->driver,
                               .source = rpc_dev_storage_source(devs, storage_need, st, i),
                               .fstype = st[i]->fstype,
                               .options = st[i]->options,
                               .n_options = st[i]->n_options,
                               .mount_point = st[i]->mount_point,
                               .has_fs_group = st[i]->fs_group != NULL,
                               .fs_gid = st[i]->fs_group ? st[i]->fs_group->group_id : 0,
                               .fs_group_on_root_mismatch =
                                   st[i]->fs_group &&
                                   st[i]->fs_group->group_change_policy ==
                                       TYPES__FSGROUP_CHANGE_POLICY__OnRootMismatch,
                               .container_id = cid,
                               .shared = st[i]->shared};
        if (ka_storage_add(&s, refs, err) < 0)
            return -1;
    }
    return 0;
}

static int create_container(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                            struct ka_error *err)
{
    const Grpc__CreateContainerRequest *req = (const Grpc__CreateContainerRequest *)m;
    struct ka_sandbox *sb = &a->sandbox;
    if (!ka_valid_id(req->container_id))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "invalid container id '%.80s'",
                                   req->container_id);
    if (req->exec_id[0] && !ka_valid_id(req->exec_id))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "invalid exec id '%.80s'",
                                   req->exec_id);
    if (ka_sandbox_find(sb, req->container_id))
        return ka_error_status_set(err, KA_STATUS_ALREADY_EXISTS, "container %s already exists",
                                   req->container_id);
    if (!req->oci)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "CreateContainer has no OCI spec");
    /* Devices and block storages first: the call may be parked here and run
     * again from the top when they arrive, so nothing above has side effects. */
    cleanup_free struct rpc_dev_set *devs = ka_xcalloc(1, sizeof(*devs));
    cleanup_free int *storage_need = ka_xcalloc(req->n_storages + 1, sizeof(int));
    cleanup_free int *device_need = ka_xcalloc(req->n_devices + 1, sizeof(int));
    int ready;
    if (rpc_dev_add_storages(devs, req->storages, req->n_storages, storage_need, err) < 0 ||
        rpc_dev_add_devices(devs, req->devices, req->n_devices, device_need, err) < 0 ||
        (ready = rpc_await_devices(a, call, devs, err)) < 0)
        return ka_error_wrap(err, "container %s", req->container_id);
    if (ready == 0)
        return 0;
    if (req->n_devices) {
        if (rpc_dev_add_vfio_groups(devs, req->devices, req->n_devices, err) < 0 ||
            (ready = rpc_await_devices(a, call, devs, err)) < 0)
            return ka_error_wrap(err, "container %s", req->container_id);
        if (ready == 0)
            return 0;
    }
    struct ka_spec *spec = NULL;
    if (ka_spec_from_proto(req->oci, &spec, err) < 0)
        return ka_error_wrap(err, "container %s", req->container_id);
    if (rpc_dev_update_spec(spec, req->devices, req->n_devices, devs, device_need, err) < 0) {
        ka_spec_free(spec);
        return ka_error_wrap(err, "container %s", req->container_id);
    }

    struct ka_container *c = ka_xcalloc(1, sizeof(*c));
    c->sandbox = sb;
    c->spec = spec;
    c->remove_timer_fd = -1;
    for (int i = 0; i < KA_NS_COUNT; i++)
        c->ns_fds[i] = -1;
    c->state = KA_CONTAINER_CREATING;
    snprintf(c->id, sizeof(c->id), "%s", req->container_id);
    c->next = sb->containers;
    sb->containers = c;

    struct ka_spawn_request sr = {.spec = spec,
                                  .process = &spec->process,
                                  .init = true,
                                  .rootfs = c->rootfs,
                                  .no_pivot = sb->no_pivot,
                                  .pipe_size = a->cfg.container_pipe_size};
    for (int i = 0; i < KA_NS_COUNT; i++)
        sr.join_ns[i] = -1;
    /* §6.3: every container shares the sandbox's IPC and UTS namespaces; the pid
     * namespace is new, or the first container's when sandbox_pidns is asked for. */
    if (spec->namespaces[KA_NS_IPC].present)
        sr.join_ns[KA_NS_IPC] = sb->ipc_ns_fd;
    if (spec->namespaces[KA_NS_UTS].present)
        sr.join_ns[KA_NS_UTS] = sb->uts_ns_fd;
    if (req->sandbox_pidns) {
        if (sb->pid_ns_fd < 0) {
            ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                "sandbox does not have a sandbox pid namespace yet");
            goto fail;
        }
        sr.join_ns[KA_NS_PID] = sb->pid_ns_fd;
    } else {
        sr.new_pid_ns = true;
    }
    if (rpc_add_storages(&c->storages, req->storages, req->n_storages, devs, storage_need, c->id,
                         err) < 0 ||
        prepare_bundle(c, err) < 0 || rpc_cgroup_setup(c, err) < 0)
        goto fail;
    int cg_fds[KA_CGROUP_MAX_HIERARCHIES];
    struct ka_seccomp_filter *filter = NULL;
    if (rpc_cgroup_procs_fds(c, cg_fds, KA_ARRAY_SIZE(cg_fds), &sr.n_cgroup_fds, err) < 0)
        goto fail;
    if (spec->seccomp && ka_seccomp_build(spec->seccomp, &filter, err) < 0) {
        ka_cgroup_close_fds(cg_fds, sr.n_cgroup_fds);
        goto fail;
    }
    sr.cgroup_fds = cg_fds;
    sr.new_cgroup_ns = c->cgroup && c->cgroup->version == KA_CGROUP_V2;
    sr.seccomp = filter;
    struct ka_spawn_result res;
    int spawned = ka_spawn(&sr, &res, err);
    ka_cgroup_close_fds(cg_fds, sr.n_cgroup_fds);
    ka_seccomp_filter_free(filter); /* the child has its own copy */
    if (spawned < 0)
        goto fail;
    c->init_pid = res.pid;
    struct ka_proc *p = proc_new(c, req->exec_id[0] ? req->exec_id : req->container_id, true, &res);
    if (await_sync(p, call, err) < 0)
        goto fail;
    return 0;

fail:
    ka_error_wrap(err, "create container %s", req->container_id);
    container_destroy(c);
    return -1;
}

static struct ka_container *find_container(struct agent *a, const char *id, struct ka_error *err)
{
    struct ka_container *c = ka_sandbox_find(&a->sandbox, id);
    if (!c)
        ka_error_status_set(err, KA_STATUS_NOT_FOUND, "container %.80s not found", id);
    return c;
}

static struct ka_proc *find_proc(struct agent *a, const char *cid, const char *eid,
                                 struct ka_error *err)
{
    struct ka_container *c = find_container(a, cid, err);
    if (!c)
        return NULL;
    struct ka_proc *p = ka_container_find_proc(c, eid);
    if (!p)
        ka_error_status_set(err, KA_STATUS_NOT_FOUND, "process %.80s of container %.80s not found",
                            eid[0] ? eid : "(init)", cid);
    return p;
}

static int start_container(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                           struct ka_error *err)
{
    const Grpc__StartContainerRequest *req = (const Grpc__StartContainerRequest *)m;
    struct ka_container *c = find_container(a, req->container_id, err);
    if (!c)
        return -1;
    struct ka_proc *init = ka_container_find_proc(c, "");
    if (c->state != KA_CONTAINER_CREATED || !init || init->start_fd < 0)
        return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                   "container %s is not in the created state", c->id);
    char go = 1;
    if (write(init->start_fd, &go, 1) != 1)
        return ka_error_set(err, errno, "start container %s", c->id);
    close(init->start_fd);
    init->start_fd = -1;
    rpc_cgroup_container_started(c); /* OOM events from here on (§5.5) */
    /* Answer once the init has exec'd (sync EOF) or failed to. */
    return await_sync(init, call, err);
}

static int exec_process(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                        struct ka_error *err)
{
    const Grpc__ExecProcessRequest *req = (const Grpc__ExecProcessRequest *)m;
    struct ka_container *c = find_container(a, req->container_id, err);
    if (!c)
        return -1;
    if (!ka_valid_id(req->exec_id))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "invalid exec id '%.80s'",
                                   req->exec_id);
    if (ka_container_find_proc(c, req->exec_id))
        return ka_error_status_set(err, KA_STATUS_ALREADY_EXISTS, "exec id %s already exists",
                                   req->exec_id);
    struct ka_proc *init = ka_container_find_proc(c, "");
    if (c->state != KA_CONTAINER_RUNNING || !init || init->exited)
        return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                   "container %s is not running", c->id);
    if (rpc_cgroup_paused(c)) /* the new process would join a frozen cgroup and hang */
        return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION, "container %s is paused",
                                   c->id);
    if (!req->process)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "ExecProcess has no process");
    struct ka_process proc;
    if (ka_process_from_proto(req->process, &proc, err) < 0)
        return ka_error_wrap(err, "exec %s", req->exec_id);
    if (!proc.caps.present) /* the runtime sends none: use the init's (§6.6) */
        proc.caps = c->spec->process.caps;

    /* The namespaces an exec joins: the init's as pinned at creation (never the
     * network one: containers share the agent's, as upstream's execs do). */
    static const bool joined[KA_NS_COUNT] = {[KA_NS_PID] = true,
                                             [KA_NS_MOUNT] = true,
                                             [KA_NS_IPC] = true,
                                             [KA_NS_UTS] = true,
                                             [KA_NS_CGROUP] = true};
    struct ka_spawn_request sr = {.spec = c->spec,
                                  .process = &proc,
                                  .init = false,
                                  .pipe_size = a->cfg.container_pipe_size};
    /* The init has a cgroup namespace of its own only on v2 (§6.3). */
    bool own_cgroup_ns = c->cgroup && c->cgroup->version == KA_CGROUP_V2;
    int cg_fds[KA_CGROUP_MAX_HIERARCHIES];
    struct ka_seccomp_filter *filter = NULL;
    int rc = rpc_cgroup_procs_fds(c, cg_fds, KA_ARRAY_SIZE(cg_fds), &sr.n_cgroup_fds, err);
    if (rc == 0 && c->spec->seccomp)
        rc = ka_seccomp_build(c->spec->seccomp, &filter, err);
    sr.cgroup_fds = cg_fds;
    sr.seccomp = filter;
    for (int i = 0; i < KA_NS_COUNT; i++) {
        sr.join_ns[i] = -1;
        if (!joined[i] || (i == KA_NS_CGROUP && !own_cgroup_ns))
            continue;
        sr.join_ns[i] = c->ns_fds[i]; /* still the container's: the child gets a copy */
        if (sr.join_ns[i] < 0 && rc == 0)
            rc = ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                     "container %s has no pinned namespace %d", c->id, i);
    }
    struct ka_spawn_result res;
    if (rc == 0)
        rc = ka_spawn(&sr, &res, err);
    ka_cgroup_close_fds(cg_fds, sr.n_cgroup_fds);
    ka_seccomp_filter_free(filter);
    ka_process_free(&proc);
    if (rc < 0)
        return ka_error_wrap(err, "exec %s in container %s", req->exec_id, c->id);
    struct ka_proc *p = proc_new(c, req->exec_id, false, &res);
    return await_sync(p, call, err);
}

/* pid 1 of a pid namespace ignores signals it has no handler for, so a SIGTERM it
 * does not catch would do nothing: upstream sends SIGKILL instead. */
static bool handles_sigterm(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    cleanup_file FILE *f = fopen(path, "re");
    if (!f)
        return true;
    unsigned long long mask = 0, any = 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "SigCgt: %llx", &mask) == 1 || sscanf(line, "SigBlk: %llx", &mask) == 1 ||
            sscanf(line, "SigIgn: %llx", &mask) == 1)
            any |= mask;
    }
    return (any & (1ULL << (SIGTERM - 1))) != 0;
}

static int signal_process(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                          struct ka_error *err)
{
    const Grpc__SignalProcessRequest *req = (const Grpc__SignalProcessRequest *)m;
    struct ka_proc *p = find_proc(a, req->container_id, req->exec_id, err);
    if (!p)
        return -1;
    if (req->signal == 0 || req->signal > 64)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "invalid signal %u",
                                   req->signal);
    /* No exec id and SIGKILL: every process of the container, as upstream 4.x
     * (2212dbdd48): every pid in the cgroup (frozen meanwhile, so nothing forks
     * past the listing), or without a cgroup every process the agent started
     * there. The runtimes send an empty exec id for containerd's "all" kill,
     * which is SIGKILL, and also for a graceful stop (SIGTERM, all=false), which
     * must reach the init alone and once. The others go first: once the init
     * dies its pid namespace is torn down with SIGKILL, which must not overtake
     * the signal asked for. */
    if (req->exec_id[0] == '\0' && req->signal == SIGKILL &&
        rpc_cgroup_signal_all(p->container, (int)req->signal, p->exited ? 0 : p->pid) < 0)
        for (struct ka_proc *q = p->container->procs; q; q = q->next)
            if (q != p && !q->exited && kill(q->pid, (int)req->signal) < 0 && errno != ESRCH)
                ka_log(KA_LOG_DEBUG, "container", "signal %u to %d: %s", req->signal, (int)q->pid,
                       strerror(errno));
    int sig = (int)req->signal;
    if (!p->exited) { /* never signal a pid that may have been reused */
        if (p->is_init && sig == SIGTERM && !handles_sigterm(p->pid))
            sig = SIGKILL;
        if (kill(p->pid, sig) < 0 && errno != ESRCH)
            return ka_error_set(err, errno, "signal %d to process %d", sig, (int)p->pid);
    }
    rpc_reply(call, NULL);
    return 0;
}

static void cancel_wait(struct ttrpc_call *call)
{
    struct ka_proc *p = call->park_data;
    for (struct ttrpc_call **pp = &p->waiters; *pp; pp = &(*pp)->park_next) {
        if (*pp == call) {
            *pp = call->park_next;
            return;
        }
    }
}

static int wait_process(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                        struct ka_error *err)
{
    const Grpc__WaitProcessRequest *req = (const Grpc__WaitProcessRequest *)m;
    struct ka_proc *p = find_proc(a, req->container_id, req->exec_id, err);
    if (!p)
        return -1;
    if (p->exited) {
        Grpc__WaitProcessResponse resp = GRPC__WAIT_PROCESS_RESPONSE__INIT;
        resp.status = p->exit_code;
        rpc_reply(call, &resp.base);
        ka_container_forget_proc(p->container, p);
        return 0;
    }
    call->park_next = p->waiters;
    p->waiters = call;
    ttrpc_call_park(call, cancel_wait, p);
    return 0;
}

static int remove_container(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                            struct ka_error *err)
{
    const Grpc__RemoveContainerRequest *req = (const Grpc__RemoveContainerRequest *)m;
    struct ka_container *c = find_container(a, req->container_id, err);
    if (!c)
        return -1;
    if (c->removing)
        return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                   "container %s is already being removed", c->id);
    ka_container_remove(c, call, req->timeout);
    return 0;
}

const struct rpc_handler rpc_container_handlers[] = {
    {"CreateContainer", create_container},
    {"StartContainer", start_container},
    {"ExecProcess", exec_process},
    {"SignalProcess", signal_process},
    {"WaitProcess", wait_process},
    {"RemoveContainer", remove_container},
    {NULL, NULL},
};
