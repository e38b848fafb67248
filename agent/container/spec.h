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
#define KA_ID_MAX 128 /* container and exec ids */
#define KA_SPEC_MAX_ARGS 4096
#define KA_SPEC_MAX_ENV 4096
#define KA_SPEC_MAX_MOUNTS 1024
#define KA_SPEC_MAX_PATHS 1024 /* masked, readonly paths; devices */
#define KA_SPEC_MAX_GROUPS 256 /* additional gids */

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
    char *type;                /* "bind" for bind mounts, or the fs type ("proc", "tmpfs"...) */
    unsigned long flags;       /* MS_* to mount with (MS_RDONLY, MS_NOSUID, MS_BIND...) */
    unsigned long propagation; /* MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (| MS_REC), or 0 */
    char *data;                /* remaining options joined with ',' (NULL when none) */
    bool bind;                 /* bind or rbind */
    bool recursive;            /* rbind */
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

/* ---- Linux.Resources (§6.1) ---------------------------------------------------
 * proto3 cannot say "absent": a zero is "not set" everywhere below, as the Rust
 * agent's set_resource! treats it; -1 means "unlimited" where the OCI spec says so.
 * Swappiness 0 is read as not set too (upstream would write 0). */
#define KA_SPEC_MAX_RESOURCE_ITEMS 1024 /* device rules, blkio devices, net priorities */
#define KA_SPEC_MAX_HUGEPAGES 16

/* One devices-cgroup rule, as devices.allow/deny and the v2 eBPF program take it. */
struct ka_device_rule {
    bool allow;
    char type;      /* 'a', 'c' or 'b' */
    int64_t major;  /* -1 = any */
    int64_t minor;  /* -1 = any */
    char access[4]; /* a non-empty subset of "rwm", in that order */
};

struct ka_memory_resources {
    bool present;
    int64_t limit;       /* bytes; -1 unlimited */
    int64_t reservation; /* soft limit */
    int64_t swap;        /* memory + swap, as v1 has it; -1 unlimited */
    int64_t kernel;      /* deprecated by the kernel: tried, failure ignored */
    int64_t kernel_tcp;
    uint64_t swappiness; /* 1..100 (0 = not set) */
    bool disable_oom_killer;
};

struct ka_cpu_resources {
    bool present;
    uint64_t shares;
    int64_t quota;   /* µs per period; -1 unlimited */
    uint64_t period; /* µs */
    int64_t realtime_runtime;
    uint64_t realtime_period;
    char *cpus; /* cpuset list ("0-3,5"), NULL when not set */
    char *mems;
};

struct ka_blkio_device {
    int64_t major;
    int64_t minor;
    uint64_t value; /* weight (weight devices) or rate (throttles) */
    uint16_t leaf_weight;
};

enum ka_blkio_throttle {
    KA_THROTTLE_READ_BPS,
    KA_THROTTLE_WRITE_BPS,
    KA_THROTTLE_READ_IOPS,
    KA_THROTTLE_WRITE_IOPS,
    KA_THROTTLE_COUNT,
};

struct ka_blkio_resources {
    bool present;
    uint16_t weight; /* 10..1000 */
    uint16_t leaf_weight;
    struct ka_blkio_device *weight_devices;
    size_t n_weight_devices;
    struct ka_blkio_device *throttle[KA_THROTTLE_COUNT];
    size_t n_throttle[KA_THROTTLE_COUNT];
};

struct ka_hugepage_limit {
    char page_size[16]; /* "2MB", "1GB": the cgroup file names' form */
    uint64_t limit;     /* bytes */
};

struct ka_net_priority {
    char name[16]; /* interface name (IFNAMSIZ) */
    uint32_t priority;
};

struct ka_resources {
    struct ka_device_rule *devices;
    size_t n_devices;
    struct ka_memory_resources memory;
    struct ka_cpu_resources cpu;
    bool has_pids;
    int64_t pids_limit; /* <= 0: "max" */
    struct ka_blkio_resources blkio;
    struct ka_hugepage_limit *hugepages;
    size_t n_hugepages;
    bool has_network;
    uint32_t net_class_id;
    struct ka_net_priority *net_priorities;
    size_t n_net_priorities;
};

/* ---- Linux.Seccomp (§6.2) -------------------------------------------------------- */
#define KA_SECCOMP_MAX_SYSCALLS 4096 /* rules; Docker's default profile has ~50 */
#define KA_SECCOMP_MAX_NAMES 4096    /* names in one rule */
#define KA_SECCOMP_MAX_ARGS 6        /* a syscall has six arguments */
#define KA_SECCOMP_MAX_ARCHES 32

enum ka_seccomp_action {
    KA_SCMP_ACT_KILL, /* SCMP_ACT_KILL = kill the thread */
    KA_SCMP_ACT_KILL_PROCESS,
    KA_SCMP_ACT_KILL_THREAD,
    KA_SCMP_ACT_TRAP,
    KA_SCMP_ACT_ERRNO,
    KA_SCMP_ACT_TRACE,
    KA_SCMP_ACT_ALLOW,
    KA_SCMP_ACT_LOG,
    KA_SCMP_ACT_NOTIFY, /* parsed so the error can name it: there is no listener */
};

enum ka_seccomp_op {
    KA_SCMP_CMP_NE,
    KA_SCMP_CMP_LT,
    KA_SCMP_CMP_LE,
    KA_SCMP_CMP_EQ,
    KA_SCMP_CMP_GE,
    KA_SCMP_CMP_GT,
    KA_SCMP_CMP_MASKED_EQ,
};

/* Filter flags (SECCOMP_FILTER_FLAG_*), as bits. */
#define KA_SECCOMP_FLAG_TSYNC (1u << 0)
#define KA_SECCOMP_FLAG_LOG (1u << 1)
#define KA_SECCOMP_FLAG_SPEC_ALLOW (1u << 2)
#define KA_SECCOMP_FLAG_WAIT_KILLABLE_RECV (1u << 3)

struct ka_seccomp_arg {
    uint32_t index; /* 0..5 */
    uint64_t value;
    uint64_t value_two; /* the mask's compare value for MASKED_EQ */
    enum ka_seccomp_op op;
};

struct ka_seccomp_syscall {
    char **names;
    size_t n_names;
    enum ka_seccomp_action action;
    bool has_errno_ret;
    uint32_t errno_ret; /* ERRNO/TRACE; EPERM when not given */
    struct ka_seccomp_arg *args;
    size_t n_args;
};

struct ka_seccomp {
    enum ka_seccomp_action default_action;
    char **arches; /* "SCMP_ARCH_X86_64"...; none = the native one only */
    size_t n_arches;
    unsigned flags;
    struct ka_seccomp_syscall *syscalls;
    size_t n_syscalls;
};

#define KA_TERMINATION_MESSAGE_PATH_ANNOTATION "io.kubernetes.container.terminationMessagePath"

struct ka_spec {
    struct ka_process process;
    char *root_path; /* absolute */
    bool root_readonly;
    char *hostname; /* may be NULL */
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
    struct ka_resources resources;
    struct ka_seccomp *seccomp; /* NULL: no filter */
    /* The io.kubernetes.container.terminationMessagePath annotation (the only one
     * kept): GetDiagnosticData finds the termination log through it. NULL if none. */
    char *termination_message_path;
};

/* The largest uid or gid a process may be given. (uid_t)-1 tells setresuid() and
 * setresgid() to leave the id unchanged (the child would stay root), and upstream
 * (Kata, runc) refuses ids above INT32_MAX: so do we, for every id the host or the
 * image names. */
#define KA_ID_NUMBER_MAX INT32_MAX
static inline bool ka_id_number_ok(uint32_t id)
{
    return id <= KA_ID_NUMBER_MAX;
}

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

/* Parse OCI names (SCMP_ACT_ERRNO, SCMP_CMP_EQ, SECCOMP_FILTER_FLAG_LOG); false when unknown. */
bool ka_seccomp_action_parse(const char *name, enum ka_seccomp_action *out);
bool ka_seccomp_op_parse(const char *name, enum ka_seccomp_op *out);
bool ka_seccomp_flag_parse(const char *name, unsigned *flag);

/* Check the values that end up in cgroup files: cpuset lists, page sizes,
 * interface names, device rules (INVALID_ARGUMENT naming the item). */
int ka_resources_validate(const struct ka_resources *r, struct ka_error *err);
/* Bounded counts, argument indexes, names present. */
int ka_seccomp_validate(const struct ka_seccomp *s, struct ka_error *err);

void ka_resources_free(struct ka_resources *r);
void ka_seccomp_free(struct ka_seccomp *s);
void ka_process_free(struct ka_process *proc);
void ka_spec_free(struct ka_spec *spec);

#endif
