/* The validated container spec the engine works from. The RPC layer converts
 * Kata's protobuf OCI spec into this once (agent/rpc/oci_convert.c) and validates
 * it (ka_spec_validate); nothing below the RPC layer sees protobuf.
 *
 * Every string is NUL-terminated and owned by the struct (ka_spec_free).
 * Mount options are already split into MS_* flags, propagation and fs data. */
#ifndef KA_CONTAINER_SPEC_H
#define KA_CONTAINER_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

/* Bounds on what the host may ask for (checked before allocating). */
#define KA_ID_MAX 128              /* container and exec ids */
#define KA_SPEC_MAX_ARGS 4096
#define KA_SPEC_MAX_ENV 4096
#define KA_SPEC_MAX_MOUNTS 1024
#define KA_SPEC_MAX_PATHS 1024     /* masked, readonly paths; devices */
#define KA_SPEC_MAX_GROUPS 256     /* additional gids */

struct ka_rlimit {
    int resource; /* RLIMIT_* */
    uint64_t soft;
    uint64_t hard;
};

struct ka_user {
    uint32_t uid;
    uint32_t gid;
    uint32_t *additional_gids;
    size_t n_additional_gids;
    char *username; /* optional: looked up in the container's /etc/passwd when set */
};

/* Capability sets as bit masks of CAP_* numbers. */
struct ka_caps {
    bool present; /* false: none given (an exec then inherits the init's sets) */
    uint64_t bounding;
    uint64_t effective;
    uint64_t inheritable;
    uint64_t permitted;
    uint64_t ambient;
};

struct ka_process {
    bool terminal;
    uint32_t console_height;
    uint32_t console_width;
    struct ka_user user;
    char **args; /* at least one; args[0] resolved on the container's PATH at exec */
    size_t n_args;
    char **env; /* "KEY=value", validated */
    size_t n_env;
    char *cwd; /* absolute; "/" when not given */
    struct ka_caps caps;
    struct ka_rlimit *rlimits;
    size_t n_rlimits;
    bool no_new_privileges;
    bool has_oom_score_adj;
    int oom_score_adj;
    mode_t umask; /* 0022 unless given */
};

struct ka_mount {
    char *destination; /* absolute, no ".." component; resolved inside the rootfs */
    char *source;
    char *type;        /* "bind" for bind mounts, or the fs type ("proc", "tmpfs"...) */
    unsigned long flags;       /* MS_* to mount with (MS_RDONLY, MS_NOSUID, MS_BIND...) */
    unsigned long propagation; /* MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (| MS_REC), or 0 */
    char *data;        /* remaining options joined with ',' (NULL when none) */
    bool bind;         /* bind or rbind */
    bool recursive;    /* rbind */
};

enum ka_ns_type {
    KA_NS_PID,
    KA_NS_NETWORK,
    KA_NS_MOUNT,
    KA_NS_IPC,
    KA_NS_UTS,
    KA_NS_USER,
    KA_NS_CGROUP,
    KA_NS_COUNT,
};

struct ka_namespace {
    bool present; /* the spec lists this namespace */
    char *path;   /* join this one (NULL: create a new one) */
};

struct ka_device {
    char *path; /* absolute, under /dev/ */
    char type;  /* 'c', 'b', 'p' (fifo); 'u' is taken as 'c' */
    int64_t major;
    int64_t minor;
    bool has_file_mode;
    uint32_t file_mode; /* permission bits; 0666 when not given */
    uint32_t uid;
    uint32_t gid;
};

struct ka_sysctl {
    char *key; /* dotted: net.ipv4.ip_forward */
    char *value;
};

struct ka_spec {
    struct ka_process process;
    char *root_path; /* absolute */
    bool root_readonly;
    char *hostname;  /* may be NULL */
    struct ka_mount *mounts;
    size_t n_mounts;
    struct ka_namespace namespaces[KA_NS_COUNT];
    struct ka_device *devices;
    size_t n_devices;
    struct ka_sysctl *sysctls;
    size_t n_sysctls;
    unsigned long rootfs_propagation; /* MS_* | MS_REC; default MS_SLAVE | MS_REC */
    char **masked_paths;
    size_t n_masked_paths;
    char **readonly_paths;
    size_t n_readonly_paths;
    char *cgroups_path; /* may be NULL */
};

/* ^[A-Za-z0-9][A-Za-z0-9_.-]+$ and at most KA_ID_MAX bytes (also keeps ".." out). */
bool ka_valid_id(const char *id);

/* Check the spec as §6.1/§7 of the protocol reference require: absolute paths
 * without "..", devices under /dev/, sysctls allowed by the namespaces, env
 * entries well-formed, at least one arg. Errors are INVALID_ARGUMENT and name the item. */
int ka_spec_validate(const struct ka_spec *spec, struct ka_error *err);
int ka_process_validate(const struct ka_process *proc, struct ka_error *err);

/* Mount options as mount(8) and the OCI spec write them: MS_* flags (set or
 * cleared in order), bind/rbind, the propagation (the last one wins) and what is
 * left as filesystem data joined with ','. Adds to m's flags; replaces m->data. */
void ka_mount_parse_options(char *const *options, size_t n_options, struct ka_mount *m);
/* "shared", "rslave", ... to MS_* flags. */
bool ka_propagation_parse(const char *name, unsigned long *flags);
/* RLIMIT_* numbers and their OCI names ("RLIMIT_NOFILE"); -1 / "unknown rlimit" when unknown. */
int ka_rlimit_parse(const char *name);
const char *ka_rlimit_name(int resource);

void ka_process_free(struct ka_process *proc);
void ka_spec_free(struct ka_spec *spec);

#endif
