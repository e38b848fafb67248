/* Linux.Resources written to a container cgroup, v1 files or their v2
 * equivalents with the conversions the Rust agent (and runc) use, and the
 * devices cgroup: the v1 devices controller or, on v2, an eBPF program of type
 * BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup, as crun and runc do. */
#ifndef KA_CGROUPS_RESOURCES_H
#define KA_CGROUPS_RESOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroups/cgroup.h"
#include "container/spec.h"
#include "core/error.h"

/* Apply memory, cpu/cpuset, pids, blkio/io, hugetlb and network (v1 net_cls,
 * net_prio) settings; zero values are not set (spec.h). Used at creation and by
 * UpdateContainer. A controller the spec needs but the cgroup lacks is an error,
 * except hugetlb sizes the kernel does not offer (dropped, as upstream does),
 * kernel memory limits recent kernels refuse, blkio weights without a CFQ or
 * BFQ scheduler, and settings v2 has no file for (kernel memory, swappiness,
 * OOM killer, realtime cpu, net_cls/net_prio): those are logged at debug and
 * skipped. */
int ka_cgroup_set_resources(const struct ka_cgroup *cg, const struct ka_resources *r,
                            struct ka_error *err);

/* ---- v1 -> v2 conversions ---------------------------------------------------------- */

/* cpu.shares [2, 262144] -> cpu.weight [1, 10000]: 1 + ((shares - 2) * 9999) / 262142.
 * 0 stays 0 (not set). */
uint64_t ka_cgroup_shares_to_weight(uint64_t shares);
/* OCI memory.swap is memory+swap; v2's memory.swap.max is swap alone. -1 = max.
 * Limit -1 with swap 0 asks for both unlimited (-1). Errors (INVALID_ARGUMENT)
 * when swap is below the limit or has no limit to go with. */
int ka_cgroup_swap_to_v2(int64_t swap, int64_t limit, int64_t *out, struct ka_error *err);
/* blkio.weight [10, 1000] -> io.weight [1, 10000]: 1 + (w - 10) * 9999 / 990. */
uint64_t ka_cgroup_blkio_weight_to_v2(uint64_t weight);
/* cpu.max for quota (µs, -1 or 0 with no current value: "max") and period. */
void ka_cgroup_cpu_max(int64_t quota, uint64_t period, char *buf, size_t size);

/* ---- devices ----------------------------------------------------------------------- */

/* The default device list of §6.1 (what every container may use). */
extern const struct ka_device_rule ka_default_device_rules[];
extern const size_t ka_n_default_device_rules;

/* OCI's rule for all devices: type a (or empty), any major/minor, access rwm. */
bool ka_device_rule_is_all(const struct ka_device_rule *r);
/* Whether a container's device list starts from "allow everything": the first
 * rule for all devices in its own rules decides (upstream), and nothing else
 * does (not the pod, not an earlier container). */
bool ka_device_rules_allow_all(const struct ka_device_rule *rules, size_t n);
/* "c 1:3 rwm", "a *:* rwm" */
void ka_device_rule_format(const struct ka_device_rule *r, char *buf, size_t size);

/* The devices cgroup of cg. reset: start over from the base (v1: deny everything
 * then allow the defaults, or allow every char and block device when allow_all);
 * without it only rules are added. Then each rule (the rule for all devices is
 * skipped: allow_all stands for it). v2 always builds the whole program from
 * the base and rules and swaps it for the one attached before. */
int ka_cgroup_set_devices(struct ka_cgroup *cg, bool allow_all, const struct ka_device_rule *rules,
                          size_t n, bool reset, struct ka_error *err);

/* The v2 eBPF program for base + rules, evaluated last rule first (the last rule
 * that matches decides, as the kernel's v1 list does), no match denies.
 * Returns the instruction count, or 0 if max is too small. insns is struct bpf_insn[]. */
size_t ka_devices_bpf_build(bool allow_all, const struct ka_device_rule *rules, size_t n,
                            void *insns, size_t max);
/* Load the program and attach it to the cgroup directory (BPF_F_ALLOW_MULTI),
 * then detach old_prog_fd (>= 0) from it. Returns the new program's fd. */
int ka_devices_bpf_attach(const char *cgroup_dir, const void *insns, size_t n_insns,
                          int old_prog_fd, struct ka_error *err);

#endif
