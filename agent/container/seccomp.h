/* seccomp from the OCI spec, through libseccomp (2.5.4's API; 2.6.0 works too).
 *
 * The filter is built in the agent before the container is forked, so that a
 * profile the agent cannot honour (SCMP_ACT_NOTIFY, an errnoRet out of range, a
 * rule libseccomp refuses) fails CreateContainer or ExecProcess with a clear
 * error. The child inherits the built filter with its memory and loads it where
 * §6.2 says: without NoNewPrivileges before the capabilities are dropped (loading
 * then needs CAP_SYS_ADMIN, which ka_switch_user keeps effective), with it right
 * before execve. libseccomp's own no_new_privs setting is turned off: the spec's
 * NoNewPrivileges decides (ka_apply_caps sets it).
 *
 * Like runc and crun: syscall names libseccomp does not know are skipped (a
 * profile lists syscalls of newer kernels), as are architectures it does not know
 * and rules whose action is the default action; several conditions on the same
 * argument become one rule each (libseccomp cannot AND them), other conditions of
 * a rule are ANDed. ERRNO and TRACE return EPERM when errnoRet is not given. */
#ifndef KA_CONTAINER_SECCOMP_H
#define KA_CONTAINER_SECCOMP_H

#include "container/spec.h"
#include "core/error.h"

struct ka_seccomp_filter;

int ka_seccomp_build(const struct ka_seccomp *sc, struct ka_seccomp_filter **out,
                     struct ka_error *err);
/* In the container child: install the filter on the calling process. */
int ka_seccomp_load(struct ka_seccomp_filter *f, struct ka_error *err);
/* Write the BPF program (for tests and debugging). */
int ka_seccomp_export_bpf(struct ka_seccomp_filter *f, int fd, struct ka_error *err);
void ka_seccomp_filter_free(struct ka_seccomp_filter *f);

#endif
