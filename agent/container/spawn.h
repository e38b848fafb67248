/* Forking a container process. The child is a fork of the agent (not a re-exec
 * of /proc/self/exe, which avoids the CVE-2019-5736 class). First thing it makes
 * itself non-dumpable and closes every fd but the ones it needs (moved to fixed
 * numbers); then it sets itself up outside the container's pid namespace
 * (cgroups, namespaces, for the init the rootfs up to pivot_root), and only then
 * enters the pid namespace, when it has one to join, through one more fork (runc's
 * nsexec order). So nothing a container can see ever holds anything of the agent:
 * the process that appears in its pid namespace has the container's root, its stdio
 * and the sync pipe, and finishes with the credentials and execve.
 *
 * It reports on the sync pipe:
 *   'P' + pid      (int32, host order) the pid of the process, as the agent sees
 *                  it, when it was forked once more into a pid namespace to join
 *                  (ka_spawn_result.pid_pending); always first
 *   'R'            the init is ready and waits for StartContainer (init only)
 *   'E' + status + message  setup or exec failed (status: one byte, a ka_status;
 *                  INVALID_ARGUMENT for a bad spec, else INTERNAL); the child exits
 *   EOF            the child has exec'd (the pipe is close-on-exec), or is gone
 * The init blocks on start_fd until the agent writes one byte (or closes it, which
 * makes it exit). */
#ifndef KA_CONTAINER_SPAWN_H
#define KA_CONTAINER_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "container/spec.h"
#include "core/error.h"

struct ka_seccomp_filter;

struct ka_spawn_request {
    const struct ka_spec *spec;       /* the container's spec */
    const struct ka_process *process; /* what to run (spec->process for the init) */
    bool init;                        /* full container setup, then wait for start */
    const char *rootfs;               /* init: the rootfs to pivot into */
    bool no_pivot;
    /* Namespaces to join (fds, -1 = none). The pid one is joined last, by the
     * child, and makes it fork once more (see above). */
    int join_ns[KA_NS_COUNT];
    bool new_pid_ns;    /* init without a pid namespace to join */
    uint32_t pipe_size; /* F_SETPIPE_SZ for stdout/stderr, 0 = kernel default */
    /* cgroup.procs of the container's cgroup in each hierarchy: the child writes
     * "0" into each first thing after the clone, before anything else runs. */
    const int *cgroup_fds;
    size_t n_cgroup_fds;
    bool new_cgroup_ns; /* then unshare the cgroup namespace (cgroup v2, §6.3) */
    /* Loaded where §6.2 says: before the capabilities are set without
     * no_new_privileges, right before execve with it. NULL: no filter. */
    struct ka_seccomp_filter *seccomp;
};

#define KA_SPAWN_MSG_PID 'P'
#define KA_SPAWN_MSG_READY 'R'
#define KA_SPAWN_MSG_ERROR 'E'

struct ka_spawn_result {
    /* The child. With pid_pending, that is an intermediate that reports the pid
     * of the process ('P') and exits; the process then becomes the agent's child
     * (re-parented: the agent is PID 1 or a child subreaper). */
    pid_t pid;
    bool pid_pending;
    int sync_fd;  /* agent's end of the sync pipe (non-blocking) */
    int start_fd; /* init only: write one byte to start it */
    bool tty;
    int stdin_fd; /* agent ends, non-blocking; a tty gives the master twice */
    int stdout_fd;
    int stderr_fd; /* -1 with a tty */
};

int ka_spawn(const struct ka_spawn_request *req, struct ka_spawn_result *res, struct ka_error *err);

/* Close every fd of a result (after a failure). */
void ka_spawn_result_close(struct ka_spawn_result *res);

#endif
