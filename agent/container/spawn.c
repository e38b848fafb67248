#include "container/spawn.h"
#include "cgroups/cgroup.h"
#include "container/creds.h"
#include "container/rootfs.h"
#include "container/seccomp.h"
#include "core/child.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

static const int ns_clone_flag[KA_NS_COUNT] = {
    [KA_NS_PID] = CLONE_NEWPID,       [KA_NS_NETWORK] = CLONE_NEWNET, [KA_NS_MOUNT] = CLONE_NEWNS,
    [KA_NS_IPC] = CLONE_NEWIPC,       [KA_NS_UTS] = CLONE_NEWUTS,     [KA_NS_USER] = CLONE_NEWUSER,
    [KA_NS_CGROUP] = CLONE_NEWCGROUP,
};

void ka_spawn_result_close(struct ka_spawn_result *res)
{
    int *fds[] = {&res->sync_fd, &res->start_fd, &res->stdin_fd, &res->stdout_fd, &res->stderr_fd};
    for (size_t i = 0; i < KA_ARRAY_SIZE(fds); i++) {
        if (*fds[i] >= 0 && !(i == 2 && res->tty)) /* a tty's stdin is a dup, closed once */
            close(*fds[i]);
        *fds[i] = -1;
    }
}

/* ---- in the child ----------------------------------------------------------- */

/* What a child keeps of the agent, at fixed numbers after its stdio. Everything
 * else (listeners, host connections, the epoll and signal fds, other containers'
 * stdio) is closed first thing: until execve the child is a copy of the agent, and
 * CLOEXEC only helps at execve (issue 13: a container with CAP_SYS_PTRACE took
 * them with pidfd_getfd from a child on its way into the container). */
enum {
    CHILD_FD_SYNC = 3,
    CHILD_FD_START,
    CHILD_FD_NS, /* + enum ka_ns_type */
    CHILD_FD_CGROUP = CHILD_FD_NS + KA_NS_COUNT,
    CHILD_FD_END = CHILD_FD_CGROUP + KA_CGROUP_MAX_HIERARCHIES,
};

struct child {
    const struct ka_spawn_request *req;
    int stdio[3]; /* the pty slave three times with a tty */
    bool tty;
    int sync_fd;
    int start_fd; /* init only */
    int ns[KA_NS_COUNT];
    int cgroup[KA_CGROUP_MAX_HIERARCHIES];
    size_t n_cgroup;
    bool proc_deferred; /* the init's proc mounts wait for its pid namespace */
};

/* Report a failure to the agent and exit. Only async-signal-safe-ish calls: the
 * agent is single-threaded, so malloc is safe here too. */
static void __attribute__((noreturn)) child_fail(int sync_fd, const struct ka_error *err)
{
    char msg[KA_ERROR_MSG_MAX + 2];
    msg[0] = KA_SPAWN_MSG_ERROR;
    /* What the spec got wrong is the host's mistake; anything else is ours. */
    msg[1] = (char)(ka_error_status(err) == KA_STATUS_INVALID_ARGUMENT ? KA_STATUS_INVALID_ARGUMENT
                                                                       : KA_STATUS_INTERNAL);
    size_t n = strnlen(err->msg, KA_ERROR_MSG_MAX);
    memcpy(msg + 2, err->msg, n);
    if (write(sync_fd, msg, n + 2) < 0) {
        /* nothing left to tell anyone */
    }
    _exit(1);
}

/* Move every fd the child needs to its fixed number and close all the others.
 * Those that sit among the fixed numbers are first copied above them, so that no
 * move lands on an fd still needed; those above cannot be hit. */
static int keep_only_own_fds(struct child *ch, struct ka_error *err)
{
    struct {
        int *fd;
        int target;
    } keep[3 + 2 + KA_NS_COUNT + KA_CGROUP_MAX_HIERARCHIES];
    size_t n = 0;
    for (int i = 0; i < 3; i++)
        keep[n++] = (typeof(keep[0])){&ch->stdio[i], i};
    keep[n++] = (typeof(keep[0])){&ch->sync_fd, CHILD_FD_SYNC};
    keep[n++] = (typeof(keep[0])){&ch->start_fd, CHILD_FD_START};
    for (int i = 0; i < KA_NS_COUNT; i++)
        keep[n++] = (typeof(keep[0])){&ch->ns[i], CHILD_FD_NS + i};
    for (size_t i = 0; i < ch->n_cgroup; i++)
        keep[n++] = (typeof(keep[0])){&ch->cgroup[i], CHILD_FD_CGROUP + (int)i};

    for (size_t i = 0; i < n; i++) {
        if (*keep[i].fd < 0 || *keep[i].fd >= CHILD_FD_END)
            continue;
        int copy = fcntl(*keep[i].fd, F_DUPFD_CLOEXEC, CHILD_FD_END);
        if (copy < 0)
            return ka_error_set(err, errno, "copy fd %d", *keep[i].fd);
        *keep[i].fd = copy;
    }
    bool used[CHILD_FD_END] = {false};
    for (size_t i = 0; i < n; i++) {
        if (*keep[i].fd < 0)
            continue;
        /* stdio without CLOEXEC: it is what the process runs with. */
        int r = keep[i].target < 3 ? dup2(*keep[i].fd, keep[i].target)
                                   : dup3(*keep[i].fd, keep[i].target, O_CLOEXEC);
        if (r < 0)
            return ka_error_set(err, errno, "move fd %d to %d", *keep[i].fd, keep[i].target);
        *keep[i].fd = keep[i].target;
        used[keep[i].target] = true;
    }
    for (int fd = 3; fd < CHILD_FD_END; fd++)
        if (!used[fd])
            close(fd);
    ka_close_fds_from(CHILD_FD_END);
    return 0;
}

static int child_stdio(struct child *ch, struct ka_error *err)
{
    if (setsid() < 0)
        return ka_error_set(err, errno, "setsid");
    if (ch->tty && ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0)
        return ka_error_set(err, errno, "make the pty the controlling terminal");
    return 0;
}

/* Every namespace but the pid one, which is entered last (enter_pid_namespace). */
static int join_namespaces(struct child *ch, struct ka_error *err)
{
    /* Mount last: after it, paths are the container's. */
    static const enum ka_ns_type order[] = {KA_NS_IPC, KA_NS_UTS, KA_NS_NETWORK, KA_NS_CGROUP,
                                            KA_NS_MOUNT};
    static const char *const names[KA_NS_COUNT] = {"pid", "network", "mount", "ipc",
                                                   "uts", "user",    "cgroup"};
    for (size_t i = 0; i < KA_ARRAY_SIZE(order); i++) {
        int *fd = &ch->ns[order[i]];
        if (*fd < 0)
            continue;
        if (setns(*fd, ns_clone_flag[order[i]]) < 0)
            return ka_error_set(err, errno, "join %s namespace", names[order[i]]);
        close(*fd);
        *fd = -1;
    }
    return 0;
}

/* The pid namespace, once nothing of the agent is left in this process but what
 * the container will get anyway: setns(CLONE_NEWPID) only places the children,
 * so fork once more. The intermediate (this process, still in the agent's pid
 * namespace and invisible to the container) reports the new pid as the agent sees
 * it, then opens the gate and exits; the new child waits at the gate, so that its
 * pid is on the sync pipe before anything else it says, and it can only become
 * the agent's child (re-parented when the intermediate exits) after that too.
 * Returns in the new child only. */
static void enter_pid_namespace(struct child *ch)
{
    struct ka_error err;
    if (setns(ch->ns[KA_NS_PID], CLONE_NEWPID) < 0) {
        ka_error_set(&err, errno, "join the pid namespace");
        child_fail(ch->sync_fd, &err);
    }
    close(ch->ns[KA_NS_PID]);
    ch->ns[KA_NS_PID] = -1;
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) < 0) {
        ka_error_set(&err, errno, "gate pipe");
        child_fail(ch->sync_fd, &err);
    }
    pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid == 0) {
        close(gate[1]);
        char go;
        ssize_t n;
        do
            n = read(gate[0], &go, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
            _exit(1); /* the intermediate died before reporting us */
        close(gate[0]);
        return;
    }
    if (pid < 0) {
        ka_error_set(&err, errno, "fork into the pid namespace");
        child_fail(ch->sync_fd, &err);
    }
    close(gate[0]);
    char msg[1 + sizeof(int32_t)] = {KA_SPAWN_MSG_PID};
    int32_t v = (int32_t)pid;
    memcpy(msg + 1, &v, sizeof(v));
    if (write(ch->sync_fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
        _exit(1); /* the gate stays shut: the child exits */
    if (write(gate[1], "G", 1) != 1)
        _exit(1);
    _exit(0);
}

static const char *env_get(char *const *env, size_t n, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (strncmp(env[i], key, klen) == 0 && env[i][klen] == '=')
            return env[i] + klen + 1;
    return NULL;
}

/* The process env, plus HOME from the container's passwd when the spec has none. */
static char **build_env(const struct ka_process *p, const char *home)
{
    char **env = ka_xcalloc(p->n_env + 2, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < p->n_env; i++)
        env[n++] = p->env[i];
    if (!env_get(p->env, p->n_env, "HOME")) {
        char *h = ka_xmalloc(strlen(home) + 6);
        sprintf(h, "HOME=%s", home);
        env[n++] = h;
    }
    env[n] = NULL;
    return env;
}

/* A cwd the process cannot have is the spec's fault: INVALID_ARGUMENT, whatever
 * the errno (a file, a dangling or looping symlink, a read-only root to create it
 * in, a path out of the container). */
static int cwd_refused(struct ka_error *err, int e, const char *what, const char *path)
{
    return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "process cwd: %s %s: %s", what,
                               path, strerror(e));
}

/* chdir into the process's cwd (absolute and free of "..", spec.c checked), making
 * it when it is missing as upstream does, and check that it is inside the root:
 * chdir follows a magic link such as /proc/<pid>/cwd or a procfs bind mount's
 * /proc/1/root to a directory of another mount namespace or above the root, and
 * the process would start with a cwd outside its container. The kernel then
 * reports the cwd as unreachable, which glibc's getcwd() turns into ENOENT (the
 * check of upstream e8688684c4). */
static int make_cwd(const char *cwd, struct ka_error *err)
{
    if (chdir(cwd) < 0) {
        if (errno != ENOENT)
            return cwd_refused(err, errno, "chdir", cwd);
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof(path), "%s", cwd) >= sizeof(path))
            return cwd_refused(err, ENAMETOOLONG, "create", cwd);
        for (char *p = path + 1; *p; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return cwd_refused(err, errno, "create", path);
            *p = '/';
        }
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return cwd_refused(err, errno, "create", path);
        if (chdir(cwd) < 0)
            return cwd_refused(err, errno, "chdir", cwd);
    }
    char here[PATH_MAX];
    if (!getcwd(here, sizeof(here))) {
        if (errno == ENOENT)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "process cwd %s is outside the container's root", cwd);
        return cwd_refused(err, errno, "getcwd in", cwd);
    }
    return 0;
}

/* Outside the container's pid namespace: everything that needs the agent's view
 * (cgroups, namespaces, the rootfs up to and including pivot_root). */
static void setup_outside(struct child *ch)
{
    struct ka_error err;
    const struct ka_spawn_request *req = ch->req;
    const struct ka_process *p = req->process;
    /* Into the container's cgroup before anything else: every limit applies from
     * here on, and whatever this process starts is counted there. */
    if (ka_cgroup_enter_fds(ch->cgroup, ch->n_cgroup, &err) < 0)
        child_fail(ch->sync_fd, &err);
    ka_cgroup_close_fds(ch->cgroup, ch->n_cgroup);
    ch->n_cgroup = 0;
    if (req->new_cgroup_ns && unshare(CLONE_NEWCGROUP) < 0) {
        ka_error_set(&err, errno, "unshare the cgroup namespace");
        child_fail(ch->sync_fd, &err);
    }
    if (ka_reset_signals(&err) < 0 || join_namespaces(ch, &err) < 0)
        child_fail(ch->sync_fd, &err);
    if (!req->init)
        return;
    if (p->has_oom_score_adj && ka_set_oom_score_adj(p->oom_score_adj, &err) < 0)
        child_fail(ch->sync_fd, &err);
    /* An init joining a pid namespace is not in it yet: a procfs mounted now would
     * show the agent's, so proc mounts wait for the final child. */
    ch->proc_deferred = ch->ns[KA_NS_PID] >= 0;
    if (ka_rootfs_setup_ex(req->spec, req->rootfs, req->no_pivot, ch->proc_deferred, &err) < 0)
        child_fail(ch->sync_fd, &err);
}

/* In the container's pid namespace and root: credentials, wait for start, exec. */
static void __attribute__((noreturn)) finish_and_exec(struct child *ch)
{
    struct ka_error err;
    const struct ka_spawn_request *req = ch->req;
    const struct ka_process *p = req->process;
    int sync_fd = ch->sync_fd;
    /* The session here, not in an intermediate: a session leader's exit would take
     * the terminal away from the session and hang up its foreground. */
    if (child_stdio(ch, &err) < 0)
        child_fail(sync_fd, &err);
    if (ch->proc_deferred && ka_rootfs_mount_deferred_proc(req->spec, &err) < 0)
        child_fail(sync_fd, &err);
    struct ka_user user = p->user; /* resolved copy: the spec stays as given */
    char *home = NULL;
    if (ka_user_resolve(&user, "/etc", &home, &err) < 0)
        child_fail(sync_fd, &err);
    char **env = build_env(p, home ? home : "/");
    if (make_cwd(p->cwd, &err) < 0)
        child_fail(sync_fd, &err);
    /* The container's user must be able to reopen its stdio (/dev/stdout is
     * /proc/self/fd/1): hand the pipes or the pty to it, as runc does. */
    if (user.uid != 0)
        for (int fd = 0; fd < 3; fd++)
            if (fchown(fd, user.uid, user.gid) < 0) {
                /* not fatal: a read-only stdio is still usable as it is */
            }
    /* rlimits after everything above that opens files (a RLIMIT_NOFILE of 4 must
     * not break the setup), but before the user switch and the capabilities: raising
     * a hard limit needs CAP_SYS_RESOURCE, which the container may not keep. Nothing
     * below opens an fd it cannot do without. */
    if (ka_apply_rlimits(p->rlimits, p->n_rlimits, &err) < 0)
        child_fail(sync_fd, &err);
    struct ka_process run = *p;
    run.user = user;
    if (ka_switch_user(&run, &err) < 0)
        child_fail(sync_fd, &err);
    /* Without no_new_privileges the filter needs CAP_SYS_ADMIN to load: now,
     * while ka_switch_user has kept it effective (§6.2). */
    if (req->seccomp && !p->no_new_privileges && ka_seccomp_load(req->seccomp, &err) < 0)
        child_fail(sync_fd, &err);
    if (ka_apply_caps(&run, &err) < 0)
        child_fail(sync_fd, &err);
    umask(p->umask);
    /* Resolve after switching user, so access is checked as the container's user. */
    char exe[PATH_MAX];
    const char *path_env = env_get(env, p->n_env + 1, "PATH");
    if (!ka_find_executable(p->args[0], path_env, exe, sizeof(exe))) {
        ka_error_set(&err, errno, "executable '%s' not found in the container", p->args[0]);
        child_fail(sync_fd, &err);
    }
    if (req->init) {
        char ready = KA_SPAWN_MSG_READY;
        if (write(sync_fd, &ready, 1) != 1)
            _exit(1);
        char go;
        ssize_t n;
        do
            n = read(ch->start_fd, &go, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
            _exit(0); /* the agent dropped the container before starting it */
        close(ch->start_fd);
    }
    char **argv = ka_xcalloc(p->n_args + 1, sizeof(char *)); /* execve wants the NULL */
    memcpy(argv, p->args, p->n_args * sizeof(char *));
    /* With no_new_privileges (set by ka_apply_caps), as close to execve as can be,
     * so the profile need not allow what the setup above does. */
    if (req->seccomp && p->no_new_privileges && ka_seccomp_load(req->seccomp, &err) < 0)
        child_fail(sync_fd, &err);
    execve(exe, argv, env);
    ka_error_set(&err, errno, "exec %s", exe);
    child_fail(sync_fd, &err);
}

static void __attribute__((noreturn)) child_main(struct child *ch)
{
    struct ka_error err;
    /* Not dumpable first: a process that is not cannot be ptraced, nor its fds
     * taken or its /proc/<pid>/root followed, by anyone without CAP_SYS_PTRACE. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        ka_error_set(&err, errno, "prctl PR_SET_DUMPABLE 0");
        child_fail(ch->sync_fd, &err);
    }
    if (keep_only_own_fds(ch, &err) < 0)
        child_fail(ch->sync_fd, &err);
    setup_outside(ch);
    if (ch->ns[KA_NS_PID] >= 0)
        enter_pid_namespace(ch); /* from here on, the final child */
    finish_and_exec(ch);
}

/* ---- in the agent ----------------------------------------------------------- */

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

struct child_ends {
    int fds[3]; /* stdin read end, stdout/stderr write ends */
    int slave;
    int sync_w;
    int start_r;
};

static void close_child_ends(struct child_ends *ce)
{
    int *all[] = {&ce->fds[0], &ce->fds[1], &ce->fds[2], &ce->slave, &ce->sync_w, &ce->start_r};
    for (size_t i = 0; i < KA_ARRAY_SIZE(all); i++) {
        if (*all[i] >= 0)
            close(*all[i]);
        *all[i] = -1;
    }
}

static int make_tty(const struct ka_process *p, struct ka_spawn_result *res, struct child_ends *ce,
                    struct ka_error *err)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        return ka_error_set(err, errno, "open pty master");
    char name[64];
    if (grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name))) {
        close(master);
        return ka_error_set(err, errno, "set up pty");
    }
    ce->slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (ce->slave < 0) {
        close(master);
        return ka_error_set(err, errno, "open pty %s", name);
    }
    if (p->console_height || p->console_width) {
        struct winsize ws = {.ws_row = (unsigned short)p->console_height,
                             .ws_col = (unsigned short)p->console_width};
        ioctl(master, TIOCSWINSZ, &ws);
    }
    set_nonblock(master);
    res->tty = true;
    res->stdout_fd = master;
    res->stdin_fd = master; /* the caller dups it for a separate stdin watch */
    return 0;
}

static int make_pipes(uint32_t pipe_size, struct ka_spawn_result *res, struct child_ends *ce,
                      struct ka_error *err)
{
    int p[3][2];
    for (int i = 0; i < 3; i++) {
        if (pipe2(p[i], O_CLOEXEC) < 0) {
            for (int j = 0; j < i; j++)
                close(p[j][0]), close(p[j][1]);
            return ka_error_set(err, errno, "pipe");
        }
    }
    ce->fds[0] = p[0][0];
    res->stdin_fd = p[0][1];
    ce->fds[1] = p[1][1];
    res->stdout_fd = p[1][0];
    ce->fds[2] = p[2][1];
    res->stderr_fd = p[2][0];
    for (int i = 1; i < 3; i++)
        if (pipe_size && fcntl(p[i][0], F_SETPIPE_SZ, (int)pipe_size) < 0)
            return ka_error_set(err, errno, "set pipe size %u", pipe_size);
    set_nonblock(res->stdin_fd);
    set_nonblock(res->stdout_fd);
    set_nonblock(res->stderr_fd);
    return 0;
}

int ka_spawn(const struct ka_spawn_request *req, struct ka_spawn_result *res, struct ka_error *err)
{
    *res = (struct ka_spawn_result){.pid = -1,
                                    .sync_fd = -1,
                                    .start_fd = -1,
                                    .stdin_fd = -1,
                                    .stdout_fd = -1,
                                    .stderr_fd = -1};
    struct child_ends ce = {.fds = {-1, -1, -1}, .slave = -1, .sync_w = -1, .start_r = -1};
    int rc = req->process->terminal ? make_tty(req->process, res, &ce, err)
                                    : make_pipes(req->pipe_size, res, &ce, err);
    if (rc < 0)
        goto fail;
    int sp[2];
    if (pipe2(sp, O_CLOEXEC) < 0) {
        rc = ka_error_set(err, errno, "sync pipe");
        goto fail;
    }
    res->sync_fd = sp[0];
    ce.sync_w = sp[1];
    if (req->init) {
        int st[2];
        if (pipe2(st, O_CLOEXEC) < 0) {
            rc = ka_error_set(err, errno, "start pipe");
            goto fail;
        }
        ce.start_r = st[0];
        res->start_fd = st[1];
    }

    unsigned long flags = SIGCHLD;
    if (req->init)
        flags |= CLONE_NEWNS; /* every container gets its own mount namespace */
    if (req->new_pid_ns)
        flags |= CLONE_NEWPID;
    /* The child's own copy of what it keeps: it moves them to fixed numbers. */
    struct child ch = {.req = req,
                       .stdio = {ce.fds[0], ce.fds[1], ce.fds[2]},
                       .tty = ce.slave >= 0,
                       .sync_fd = ce.sync_w,
                       .start_fd = ce.start_r};
    if (ch.tty)
        ch.stdio[0] = ch.stdio[1] = ch.stdio[2] = ce.slave;
    for (int i = 0; i < KA_NS_COUNT; i++)
        ch.ns[i] = req->join_ns[i];
    if (req->n_cgroup_fds > KA_ARRAY_SIZE(ch.cgroup)) {
        rc = ka_error_set(err, E2BIG, "%zu cgroup hierarchies", req->n_cgroup_fds);
        goto fail;
    }
    ch.n_cgroup = req->n_cgroup_fds;
    for (size_t i = 0; i < ch.n_cgroup; i++)
        ch.cgroup[i] = req->cgroup_fds[i];
    /* A raw clone is a fork that can also make the new namespaces; the agent is
     * single-threaded, so the child may go on using malloc and stdio. The pid
     * namespace to join, if any, is entered by the child itself at the end of its
     * setup (enter_pid_namespace), never by the agent around the clone: a child
     * born there would be visible to the container with all of the agent in it. */
    pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
    if (pid == 0)
        child_main(&ch);
    if (pid < 0) {
        rc = ka_error_set(err, errno, "clone");
        goto fail;
    }
    res->pid = pid;
    res->pid_pending = req->join_ns[KA_NS_PID] >= 0;
    close_child_ends(&ce);
    set_nonblock(res->sync_fd);
    return 0;

fail:
    close_child_ends(&ce);
    ka_spawn_result_close(res);
    return rc;
}
