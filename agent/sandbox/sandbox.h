/* Sandbox state: the containers of the pod, their processes, and the namespaces
 * they share. All in memory: if the agent dies the VM dies with it. */
#ifndef KA_SANDBOX_SANDBOX_H
#define KA_SANDBOX_SANDBOX_H

#include <limits.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#include "container/spec.h"
#include "core/reactor.h"
#include "sandbox/stream.h"
#include "ttrpc/server.h"

#define KA_RUN_DIR "/run/kata-containers"

struct agent;
struct ka_container;
struct ka_storage_ref;
struct ka_cgroup;            /* cgroups/cgroup.h */
struct ka_container_cgroups; /* rpc/cgroups.c: OOM watch, pause/resume, removal retries */
struct ka_sandbox_cgroups;   /* rpc/cgroups.c: pod devices setup, OOM event queue */

struct ka_proc {
    struct ka_proc *next;
    struct ka_container *container;
    char exec_id[KA_ID_MAX + 1];
    pid_t pid;
    /* pid is the intermediate of a double fork (container/spawn.h) until it names
     * the process on the sync pipe */
    bool pid_pending;
    bool is_init;
    bool exited;
    int exit_code; /* ka_exit_code(): status, or 128 + signal */
    bool tty;
    struct ka_stream in;        /* stdin pipe, or a dup of the pty master */
    struct ka_stream out;       /* stdout pipe, or the pty master */
    struct ka_stream err;       /* stderr pipe; fd -1 with a tty */
    struct ttrpc_call *waiters; /* WaitProcess calls, chained by park_next */
    /* Spawn rendezvous: the child reports on sync_fd ('E' + status + message on failure;
     * EOF once it has exec'd). */
    int sync_fd;
    struct ka_watch sync_watch;
    struct ttrpc_call *spawn_call; /* CreateContainer/StartContainer/ExecProcess waiting */
    int start_fd;                  /* init only: one byte here lets it exec */
    bool forget_on_exit;           /* a failed exec: nobody will wait for it */
};

enum ka_container_state {
    KA_CONTAINER_CREATING,
    KA_CONTAINER_CREATED,
    KA_CONTAINER_RUNNING,
    KA_CONTAINER_STOPPED,
};

struct ka_container {
    struct ka_container *next;
    struct ka_sandbox *sandbox;
    char id[KA_ID_MAX + 1];
    struct ka_spec *spec;
    enum ka_container_state state;
    struct ka_proc *procs; /* the init first, then execs */
    pid_t init_pid;
    char bundle[PATH_MAX]; /* /run/kata-containers/<cid> */
    char rootfs[PATH_MAX]; /* bundle/rootfs, a bind of Root.Path */
    bool rootfs_mounted;
    struct ka_storage_ref *storages; /* released at removal */
    bool removing;                   /* killed; freed once every process is reaped */
    struct ttrpc_call *remove_call;  /* the RemoveContainer waiting for that */
    int remove_timer_fd;             /* RemoveContainer's timeout, -1 when none */
    struct ka_watch remove_timer;
    struct ka_cgroup *cgroup;        /* NULL when no cgroup hierarchy is mounted */
    struct ka_container_cgroups *cg; /* allocated when first needed (rpc/cgroups.c) */
    /* The init's namespaces, opened by the agent when the init reported ready
     * (before any container code ran) and kept until removal: an exec joins these,
     * never /proc/<init pid>/ns/ paths, which the container changes with setns/unshare
     * in its init and which names another process once that pid is reused (as
     * upstream 3796ca53dc). -1 where not pinned. */
    int ns_fds[KA_NS_COUNT];
};

struct ka_sandbox {
    struct ka_reactor *reactor;
    struct agent *agent;
    bool created;
    char *id;
    char *hostname;
    uint32_t container_pipe_size;
    bool no_pivot;     /* / is an initramfs: MS_MOVE + chroot instead of pivot_root */
    int ipc_ns_fd;     /* shared IPC namespace (-1 until CreateSandbox) */
    int uts_ns_fd;     /* shared UTS namespace, holding the sandbox hostname */
    int pid_ns_fd;     /* the first container's pid namespace (-1 until then) */
    int own_pid_ns_fd; /* the agent's, to return to after joining another */
    struct ka_container *containers;
    struct ka_storage_ref *storages; /* the sandbox's own; never released */
    struct ka_sandbox_cgroups *cg;   /* allocated when first needed (rpc/cgroups.c) */
};

void ka_sandbox_init(struct ka_sandbox *sb, struct agent *agent, struct ka_reactor *r);

struct ka_container *ka_sandbox_find(struct ka_sandbox *sb, const char *id);
/* The process exec_id of a container ("" = its init); NULL when unknown. */
struct ka_proc *ka_container_find_proc(struct ka_container *c, const char *exec_id);

/* Kill what runs in c and free it once all is reaped; call (may be NULL) is
 * answered then. */
void ka_container_remove(struct ka_container *c, struct ttrpc_call *call, uint32_t timeout_s);
/* Finish a pending removal if nothing of c runs any more. */
void ka_container_check_removal(struct ka_container *c);

/* Record that a process exited: answer its waiters, wake its readers. */
void ka_proc_exited(struct ka_proc *p, int wait_status);
/* Drop a process record: streams closed, pending calls failed, reaper told. */
void ka_proc_free(struct ka_proc *p);
/* Unlink and free one process of its container. */
void ka_container_forget_proc(struct ka_container *c, struct ka_proc *p);

#endif
