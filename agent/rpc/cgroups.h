/* The cgroup side of the container lifecycle, called from rpc/container.c and
 * rpc/sandbox.c; the cgroup RPCs themselves (UpdateContainer, StatsContainer,
 * PauseContainer, ResumeContainer, GetOOMEvent) are rpc_cgroup_handlers. */
#ifndef KA_RPC_CGROUPS_H
#define KA_RPC_CGROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/error.h"
#include "sandbox/sandbox.h"

/* Sandbox-wide queue of OOM events for GetOOMEvent (§5.5). */
#define KA_OOM_QUEUE_CAP 100

/* CreateContainer, before the spawn: the container's cgroup under the path rule,
 * the pod (parent) cgroup's device setup on v1 (§6.1), the container's devices
 * (from its own spec only) and resources. Refused: no hierarchy or no device
 * control (FAILED_PRECONDITION), a path equal to, above or below another
 * container's (INVALID_ARGUMENT). Directories made on the way (the pod, the
 * path's intermediates) are removed with the last container below them. */
int rpc_cgroup_setup(struct ka_container *c, struct ka_error *err);
/* cgroup.procs fds for a spawn into c's cgroup (*n = 0 without one). */
int rpc_cgroup_procs_fds(struct ka_container *c, int *fds, size_t max, size_t *n,
                         struct ka_error *err);
/* StartContainer: watch for OOM kills (not for the sandbox's own container). */
void rpc_cgroup_container_started(struct ka_container *c);
/* A PauseContainer holds (ExecProcess would join a frozen cgroup and hang). */
bool rpc_cgroup_paused(const struct ka_container *c);
/* SignalProcess without exec id: every process in the cgroup but skip (frozen
 * meanwhile). Returns how many, or -1 without a cgroup. */
int rpc_cgroup_signal_all(struct ka_container *c, int sig, pid_t skip);
/* RemoveContainer: SIGKILL what is in the cgroup now, and thaw a paused one so
 * that it can die. */
void rpc_cgroup_kill(struct ka_container *c);
/* Once nothing of c runs: kill what is left, remove the cgroup. false while it
 * retries on EBUSY; ka_container_check_removal(c) is called again when done. */
bool rpc_cgroup_release(struct ka_container *c);
/* Freeing c: stop its OOM watch, fail a waiting Pause/Resume, and leave a cgroup
 * still there to a background remover. */
void rpc_cgroup_container_free(struct ka_container *c);
/* DestroySandbox: parked and later GetOOMEvent calls fail (INTERNAL, empty message). */
void rpc_cgroup_sandbox_destroyed(struct ka_sandbox *sb);

#endif
