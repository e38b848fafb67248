/* Child processes and the reaper. SIGCHLD arrives through a signalfd on the
 * reactor; each wake-up reaps with waitpid(-1, WNOHANG|__WALL) in a loop and hands
 * every status to whoever registered that pid. Unknown pids (orphans re-parented
 * to the agent, which is PID 1 or a child subreaper) are simply reaped.
 *
 * A helper the agent runs synchronously (ka_child_run_sync) waits for its own pid
 * with waitpid(pid): the reaper only runs from the loop, never during that wait,
 * so it cannot take the helper's child first. */
#ifndef KA_CORE_CHILD_H
#define KA_CORE_CHILD_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/error.h"
#include "core/reactor.h"

typedef void (*ka_child_exit_fn)(void *data, pid_t pid, int wait_status);

/* Block SIGCHLD, watch it through a signalfd on r, and become a child subreaper. */
int ka_children_init(struct ka_reactor *r, struct ka_error *err);
void ka_children_fini(void);

/* Deliver pid's wait status to fn once it exits. */
void ka_child_watch(pid_t pid, ka_child_exit_fn fn, void *data);
/* Forget a registration (the object behind data is going away). */
void ka_child_unwatch(pid_t pid);

/* Called for a reaped pid nobody registered, before it is dropped: a spawn whose
 * pid is still on its way (a child forked twice reports the pid of the process on a
 * pipe) gets the chance to read it and register. One hook; NULL removes it. */
typedef void (*ka_child_unknown_fn)(void *data);
void ka_child_set_unknown_hook(ka_child_unknown_fn fn, void *data);

/* Close every fd from `first` up: close_range, or one by one where the kernel has
 * none (before 5.9). */
void ka_close_fds_from(int first);

/* Reap whatever has exited now (also called by the SIGCHLD handler). */
void ka_children_reap(void);

/* Run argv (PATH searched) and wait for it; *wait_status gets its status. stdin is
 * /dev/null; stdout and stderr are inherited. Signals are reset in the child. */
int ka_child_run_sync(char *const argv[], int *wait_status, struct ka_error *err);

/* The exit code the protocol reports: the exit status, or 128 + the signal. */
int ka_exit_code(int wait_status);

#endif
