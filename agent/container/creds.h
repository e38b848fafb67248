/* Credentials of a container process: the user, groups, capabilities, rlimits,
 * oom_score_adj and signal state it is exec'd with, and args[0] on its PATH.
 *
 * Everything here runs in the container child after its rootfs is in place, so
 * "/etc/passwd" is the container's own. The passwd and group files are parsed
 * here rather than through getpwnam() and friends: those go through NSS, which a
 * static glibc cannot load, and we must never consult the agent's own files.
 *
 * Order the caller follows (as runc, crun and Kata's rustjail do):
 *   ka_set_oom_score_adj, ka_apply_rlimits   before the user namespace (raising a
 *                                            hard limit needs CAP_SYS_RESOURCE)
 *   ... namespaces, rootfs, pivot_root, cwd ...
 *   ka_user_resolve                           reads the container's /etc files
 *   ka_switch_user                            groups, gid, uid; keeps the caps
 *   (seccomp when NoNewPrivileges is false: needs CAP_SYS_ADMIN, still effective here)
 *   ka_apply_caps                             final sets, ambient, no_new_privs
 *   ka_reset_signals, ka_find_executable, execve
 * ka_apply_user_and_caps() is ka_switch_user() followed by ka_apply_caps(). */
#ifndef KA_CONTAINER_CREDS_H
#define KA_CONTAINER_CREDS_H

#include <stddef.h>
#include <stdint.h>

#include "container/spec.h"
#include "core/error.h"

/* Bounds on the container's /etc/passwd and /etc/group (the image controls them). */
#define KA_CREDS_FILE_MAX (4u << 20) /* larger files are refused (EFBIG) */
#define KA_CREDS_LINE_MAX 4096       /* longer lines are skipped as malformed */

/* The default search path when the process env has no PATH (runc's and Docker's). */
#define KA_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct ka_passwd_entry {
    char *name;
    uint32_t uid;
    uint32_t gid;
    char *home;  /* "" when the field is empty or missing */
    char *shell; /* "" when the field is empty or missing */
};

struct ka_group_entry {
    char *name;
    uint32_t gid;
};

void ka_passwd_entry_free(struct ka_passwd_entry *e);
void ka_group_entry_free(struct ka_group_entry *e);

/* Find the first entry of a passwd(5) file whose name is name_or_null, or, when
 * that is NULL, whose uid is uid. Names are compared literally ("1000" is a name
 * here; ka_user_resolve decides when digits mean a uid).
 *
 * Lines are "name:password:uid:gid[:gecos[:home[:shell]]]" (extra fields ignored);
 * blank lines, '#' comments, NIS "+"/"-" lines, lines over KA_CREDS_LINE_MAX bytes,
 * and lines with an empty name or a uid/gid that is not a plain decimal number
 * above KA_ID_NUMBER_MAX (INT32_MAX) are skipped. Leading and trailing whitespace is ignored.
 *
 * Returns 1 and fills out (free with ka_passwd_entry_free) when found, 0 when no
 * line matches, negative on error: -ENOENT when the file does not exist, -EFBIG
 * over KA_CREDS_FILE_MAX, -EINVAL when it is not a regular file (a FIFO does not
 * block: it is opened O_NONBLOCK and refused). */
int ka_passwd_lookup(const char *passwd_path, const char *name_or_null, uint32_t uid,
                     struct ka_passwd_entry *out, struct ka_error *err);

/* The same for a group(5) file ("name:password:gid[:member,member...]"), by name
 * or, when name_or_null is NULL, by gid. */
int ka_group_lookup(const char *group_path, const char *name_or_null, uint32_t gid,
                    struct ka_group_entry *out, struct ka_error *err);

/* The gids of the groups whose member list names user, in file order without
 * duplicates. *gids is malloc'ed (NULL when *n is 0). At most KA_SPEC_MAX_GROUPS:
 * more is an error (-E2BIG). A missing file is an error (-ENOENT) the caller may
 * choose to ignore. */
int ka_group_user_gids(const char *group_path, const char *user, uint32_t **gids, size_t *n,
                       struct ka_error *err);

/* Settle user->uid/gid from user->username, looked up under etc_dir ("/etc" when
 * NULL; call it after pivot_root: a host-side "<rootfs>/etc" would follow the
 * image's symlinks out of the rootfs), the way runc reads a user spec:
 *   "name"        uid and gid from passwd; the groups listing name in /etc/group
 *                 are appended to additional_gids (without duplicates)
 *   "uid"         uid; gid, home and groups from passwd when it has that uid,
 *                 otherwise gid stays as given (a missing /etc/passwd is fine)
 *   "user:group"  either part a name or a number; an explicit group sets the gid
 *                 and adds no groups from /etc/group. An empty user part keeps uid.
 * A name that cannot be found (including when the file is missing) is an
 * INVALID_ARGUMENT error. With no username, uid/gid are left alone.
 *
 * home (may be NULL) gets a malloc'ed copy of the passwd home of the final uid,
 * or "/" when there is none, for the caller to use as HOME when the env lacks it.
 * Looking up only the home never fails the call: an unreadable passwd gives "/",
 * as Kata does. */
int ka_user_resolve(struct ka_user *user, const char *etc_dir, char **home, struct ka_error *err);

/* setrlimit() each entry in order; soft > hard is refused before the call. */
int ka_apply_rlimits(const struct ka_rlimit *r, size_t n, struct ka_error *err);

/* The highest capability number the kernel knows, probed with PR_CAPBSET_READ
 * (never trusted from a /proc a container may control); /proc/sys/kernel/cap_last_cap
 * only when the probe itself fails (e.g. refused by a seccomp filter). -1 when
 * neither answers. Bits above it in a struct ka_caps are ignored. */
int ka_cap_last_cap(void);

/* First half of the switch: PR_SET_KEEPCAPS; drop from the bounding set every
 * cap not in caps.bounding (needs CAP_SETPCAP, so before setuid; skipped when
 * caps.present is false) and check that none is left; setgroups(additional gids, or none);
 * setresgid; setresuid; PR_SET_KEEPCAPS 0. Then the effective (and ambient) sets the process had
 * before are restored, because the kernel clears them when the uid leaves 0: the caller may still
 * need them (seccomp without no_new_privs needs CAP_SYS_ADMIN). */
int ka_switch_user(const struct ka_process *p, struct ka_error *err);

/* Second half: when caps.present, set effective, permitted and inheritable to
 * exactly the spec's (cap_set_proc), then clear the ambient set and raise each
 * ambient cap that is also permitted and inheritable (the kernel refuses the
 * others; crun and rustjail skip them too). When caps.present is false the
 * current sets are kept (an exec inheriting the init's caps gets them passed in
 * by the caller). Finally PR_SET_NO_NEW_PRIVS when no_new_privileges. */
int ka_apply_caps(const struct ka_process *p, struct ka_error *err);

/* ka_switch_user() then ka_apply_caps(). */
int ka_apply_user_and_caps(const struct ka_process *p, struct ka_error *err);

/* Write value (-1000..1000) to /proc/self/oom_score_adj. Lowering it needs
 * CAP_SYS_RESOURCE. */
int ka_set_oom_score_adj(int value, struct ka_error *err);

/* Unblock every signal and set every disposition back to SIG_DFL: the agent
 * ignores SIGPIPE and blocks SIGCHLD for its signalfd, and execve() keeps both. */
int ka_reset_signals(struct ka_error *err);

/* Resolve name (args[0]) as execvp() would on path_env (the value of the
 * process's PATH, KA_DEFAULT_PATH when NULL), into buf. A name containing '/' is
 * used as is. A candidate must be a regular file the caller may execute
 * (access(X_OK)); empty PATH entries are skipped rather than meaning the cwd.
 * Returns buf, or NULL with errno ENOENT (nothing found), EACCES (found only
 * things that are not executable regular files) or ENAMETOOLONG. */
const char *ka_find_executable(const char *name, const char *path_env, char *buf, size_t size);

#endif
