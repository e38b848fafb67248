/* PID 1 duties, with no knowledge of ttrpc (reference/AGENT-PROTOCOL.md §5.1-5.3).
 *
 * The agent calls these only when getpid() == 1 (an initrd's /init, or
 * init=/usr/bin/kata-agent). Under systemd none of it runs: systemd did it all.
 *
 *   ka_init_early_mounts()    step 2, what the listener needs: proc, sys, dev; then
 *                             make sure fds 0-2 are open (on /dev/console, else /dev/null)
 *   (read the config: /proc/cmdline needs /proc)
 *   ka_init_setup_early(cfg)  open-file limit, modules, setsid + TIOCSCTTY, PATH
 *   ka_init_defer_rest(cfg)   queued (core/deferred.h), run once the listener is up or
 *                             before the first request that is not Health: the rest of
 *                             step 2 (dev/shm, dev/pts, run: ka_init_late_mounts),
 *                             cgroups (step 4), /dev/ptmx, hostname (step 5), lo up (step 8)
 *   ...serve...
 *   ka_init_power_off()       sync + reboot(RB_POWER_OFF); PID 1 never exits
 *
 * Every step tolerates failure: it is logged and the next one runs, because a PID 1
 * that gives up panics the kernel and tells nobody why. The functions return the
 * first error so the caller can log it once more, but it is never a reason to stop.
 *
 * Signals for PID 1, on purpose (no ka_init_signals() is needed beyond agent/main.c):
 *   SIGCHLD         blocked, read through a signalfd by the reaper (core/child.h).
 *   SIGTERM/SIGINT  blocked and read by main.c's signalfd, then ignored in init mode.
 *                   The kernel drops any signal PID 1 has no handler for (even from
 *                   root), so without the signalfd they would be ignored anyway;
 *                   upstream handles neither. Ctrl-C on the console lands here too.
 *   SIGPIPE         ignored (main.c): a vanished peer gives EPIPE, it does not kill
 *                   PID 1. Ignored dispositions survive exec, so every fork that
 *                   execs (reaper helpers, containers, the debug shell) puts SIG_DFL
 *                   back and clears the mask first.
 *   SIGHUP          when the console hangs up, PID 1 (its session leader) would get
 *                   it; having no handler, the kernel drops it. Nothing to do.
 *   everything else default, which for PID 1 means dropped.
 *
 * The *_at() variants take a root prefix ("" in the agent) so the unit tests can run
 * them in a private mount namespace under a temporary directory. */
#ifndef KA_INIT_INIT_H
#define KA_INIT_INIT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/deferred.h"
#include "core/error.h"
#include "core/kmod.h"

/* ---- mounts (init/mounts.c) ------------------------------------------------------ */

/* §5.1 step 2 (early: proc, sys, dev; late: dev/shm, dev/pts, run; the table
 * function: all six under a root), in order, each target made with mkdir -p first;
 * a mount already present with the same fstype is skipped; a devtmpfs failure is
 * only logged. After the early ones, fds 0, 1 and 2 are made valid (a kernel that
 * found no /dev/console leaves them closed, and the first open() would become
 * "stdout"). */
int ka_init_early_mounts(struct ka_error *err);
int ka_init_late_mounts(struct ka_error *err);

/* The mount table under root ("" = /). Returns the first failure (devtmpfs aside);
 * *mounted (may be NULL) gets how many mounts were made, not counting skipped ones. */
int ka_init_mount_table_at(const char *root, unsigned *mounted, struct ka_error *err);

/* Is something of fstype mounted exactly on path? By statx's mount-root attribute
 * and statfs's magic (devtmpfs reads as tmpfs there), or /proc/self/mountinfo for a
 * kernel before 5.8 or a type without a known magic. Returns 1 yes, 0 no, -errno
 * when it cannot be told. */
int ka_init_is_mounted(const char *path, const char *fstype);

/* The fstype of the first mount on exactly path in /proc/self/mountinfo: 1 and
 * fstype filled, 0 when nothing is mounted there, -errno. */
int ka_init_mount_fstype(const char *path, char *fstype, size_t size);

/* Replace <root>/dev/ptmx with a symlink to pts/ptmx (the devpts instance's own
 * ptmx, so ptys come from the /dev/pts we mounted). */
int ka_init_ptmx_at(const char *root, struct ka_error *err);

/* ---- cgroups (init/cgroups.c) ---------------------------------------------------- */

enum ka_cgroup_mode {
    KA_CGROUP_NONE, /* v1 wanted but no devices controller: nothing is mounted */
    KA_CGROUP_V1,
    KA_CGROUP_V2,
};

/* Decide from the text of /proc/cgroups (NULL when it could not be read): v2 when
 * asked (agent.unified_cgroup_hierarchy, systemd.unified_cgroup_hierarchy, or
 * cgroup_no_v1=all), or when the kernel has no enabled v1 memory controller;
 * otherwise v1, or NONE without an enabled devices controller. */
enum ka_cgroup_mode ka_cgroup_choose(const char *proc_cgroups, bool unified);

/* §5.1 step 4 under root, reading the controllers from proc_cgroups_path. v1: tmpfs
 * on sys/fs/cgroup, one cgroup mount per enabled known controller, memory.use_hierarchy
 * set to 1, then sys/fs/cgroup remounted read-only. v2: cgroup2 with nsdelegate.
 * *mode (may be NULL) gets what was chosen. */
int ka_init_cgroups_at(const char *root, const char *proc_cgroups_path, bool unified,
                       enum ka_cgroup_mode *mode, struct ka_error *err);

/* ---- kernel modules (init/modules.c) --------------------------------------------- */

/* The list of modules to load: one per line ("name [param=value ...]", '#' starts a
 * comment), and agent.modules=a,b on the cmdline (no parameters). */
#define KA_MODULES_LIST_FILE "/etc/kata-agent/modules"

/* ka_module_list, ka_module_plan, ka_modules_plan/_load, ka_module_finit: core/kmod.h. */

/* Append the requests in file text (NULL = none) and in a comma-separated list
 * (NULL = none). Duplicates are kept once (the first one's params win). */
void ka_modules_parse(struct ka_module_list *list, const char *file_text, const char *comma_list);

/* The whole step: /lib/modules/$(uname -r) under root, the list file under root plus
 * cfg->modules, each step through load (ka_module_finit in the agent). Nothing asked
 * is success; modules asked for without a modules.dep, or failing to load, are an
 * error (already logged). */
int ka_init_load_modules_at(const char *root, const struct ka_config *cfg, ka_module_load_fn load,
                            void *data, struct ka_error *err);

/* ---- session, console tty, hostname (init/tty.c) --------------------------------- */

/* setsid() and TIOCSCTTY on stdin so the console is our controlling tty; failures
 * are only logged (no console, or already a session leader). */
void ka_init_console_tty(void);

/* First whitespace-separated word of text into out; "localhost" when there is none. */
void ka_init_hostname_parse(const char *text, char *out, size_t size);

/* sethostname() from <root>/etc/hostname, else "localhost". */
int ka_init_hostname_at(const char *root, struct ka_error *err);

/* ---- network (init/net.c) -------------------------------------------------------- */

/* Bring the loopback interface up: RTM_NEWLINK with IFF_UP through rtnetlink, in the
 * caller's network namespace. */
int ka_init_lo_up(struct ka_error *err);

/* ---- the sequence (init/init.c) -------------------------------------------------- */

#define KA_INIT_PATH "/bin:/sbin:/usr/bin:/usr/sbin"

/* Raise the soft RLIMIT_NOFILE to the hard one (1024 -> 4096 for a kernel's init). */
int ka_init_raise_nofile(struct ka_error *err);

/* After the config is read, what must precede the listener: the open-file limit, modules (a virtio
 * driver for the ttrpc channel may be one), setsid + TIOCSCTTY, PATH. The first error
 * is returned (and every one was logged). */
int ka_init_setup_early(const struct ka_config *cfg, struct ka_error *err);

/* Queue what no early request needs (core/deferred.h), in this order: cgroups,
 * /dev/ptmx, hostname, lo up. Failures are logged when the steps run. cfg must
 * outlive the steps. */
void ka_init_defer_rest(const struct ka_config *cfg, struct ka_deferred *d);

/* Both at once, nothing deferred (every step runs even when an earlier one failed;
 * the first error of the early part is returned). */
int ka_init_setup(const struct ka_config *cfg, struct ka_error *err);

/* sync() then reboot(RB_POWER_OFF). Never returns: if the reboot is refused it
 * sleeps for ever, since PID 1 exiting would panic the kernel. */
void __attribute__((noreturn)) ka_init_power_off(void);

#endif
