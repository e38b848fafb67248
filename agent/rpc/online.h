/* OnlineCPUMem's work (protocol reference, OnlineCPUMem): bring hotplugged CPUs and
 * memory blocks online through sysfs, then widen the cpusets that were cut to the
 * old CPU set. The sysfs directory is a parameter so tests run on a synthetic tree. */
#ifndef KA_RPC_ONLINE_H
#define KA_RPC_ONLINE_H

#include <stddef.h>

#include "cgroups/cgroup.h"
#include "core/error.h"

#define KA_SYSFS_SYSTEM "/sys/devices/system"
#define KA_ONLINE_RETRIES 100
#define KA_ONLINE_RETRY_MS 50

/* Where OnlineCPUMem looks (KA_SYSFS_SYSTEM unless a test points it elsewhere). */
extern const char *ka_online_sysfs;
/* The pause between rounds, in milliseconds (KA_ONLINE_RETRY_MS; tests shorten it). */
extern unsigned ka_online_retry_ms;

/* Write "1" to <dir>/<prefix>N/online of each block that reads "0", at most limit of
 * them (0: all). Returns how many took the write. A missing dir onlines nothing. */
unsigned ka_online_all(const char *dir, const char *prefix, unsigned limit);

/* The online CPUs of <system>/cpu as a list ("0-3,6") into out; returns how many.
 * A CPU without an online file (cpu0 usually) cannot be taken offline: online. */
unsigned ka_online_cpu_list(const char *system, char *out, size_t size);

/* One round: online offline CPUs until nb_cpus are (as far as sysfs lets us); the
 * list into out; returns how many are online. The agent repeats it on a timer. */
unsigned ka_online_cpus_step(const char *system, unsigned nb_cpus, char *out, size_t size);

/* Online CPUs until nb_cpus are, retrying KA_ONLINE_RETRIES times (the kernel may
 * still be registering a hotplugged CPU); the final list into out. Error when fewer
 * than nb_cpus could be brought online. */
int ka_online_cpus(const char *system, unsigned nb_cpus, char *out, size_t size,
                   struct ka_error *err);

/* Give cg's cpuset the guest's CPUs: every directory from the top of each cpuset
 * hierarchy down to cg itself gets guest_cpus, parents first (v1 refuses a child
 * wider than its parent); then cg gets own_cpus when the container asked for a
 * cpuset of its own (NULL or "": none). v2 directories without cpuset.cpus (the
 * controller not enabled there) are skipped. */
int ka_cpuset_widen(const struct ka_cgroup *cg, const char *guest_cpus, const char *own_cpus,
                    struct ka_error *err);

#endif
