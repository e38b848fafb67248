/* Container cgroups through the cgroupfs, v1 and v2 (§6.1).
 *
 * A cgroup path ("/kubepods/pod1/c1") is the same under every hierarchy: for v1
 * the container gets that directory under every mounted hierarchy (each
 * controller, combined ones like cpu,cpuacct once, named ones like name=systemd
 * too), for v2 one directory under the unified mount with the controllers the
 * parent offers enabled in every ancestor's cgroup.subtree_control on the way.
 * The hierarchies are found at the time of the call (the init may mount them
 * after the agent starts): /sys/fs/cgroup being a cgroup2 mount means v2,
 * otherwise every "cgroup" mount in /proc/self/mountinfo is a v1 hierarchy and
 * a cgroup2 mount next to them (a hybrid host's "unified") is left alone.
 *
 * Nothing here blocks: freezing reports the state reached so far and the caller
 * polls; removal reports EBUSY and the caller retries. Errors name the file. */
#ifndef KA_CGROUPS_CGROUP_H
#define KA_CGROUPS_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "container/spec.h"
#include "core/error.h"

#define KA_CGROUP_ROOT "/sys/fs/cgroup"
#define KA_CGROUP_PATH_MAX 1024 /* a cgroup path from the spec, after the rules */
#define KA_CGROUP_MAX_HIERARCHIES 32
#define KA_CGROUP_MAX_DEPTH 32 /* components of a path; subtree walks */

enum ka_cgroup_version {
    KA_CGROUP_NONE = 0, /* nothing mounted: CreateContainer is refused (fail closed) */
    KA_CGROUP_V1 = 1,
    KA_CGROUP_V2 = 2,
};

/* Controllers, as bits of a mask. v2 names: cpu cpuset memory io pids hugetlb rdma misc
 * (KA_CG_BLKIO stands for "io"). */
enum ka_cgroup_controller {
    KA_CG_CPU,
    KA_CG_CPUACCT,
    KA_CG_CPUSET,
    KA_CG_MEMORY,
    KA_CG_DEVICES,
    KA_CG_FREEZER,
    KA_CG_BLKIO,
    KA_CG_PIDS,
    KA_CG_HUGETLB,
    KA_CG_NET_CLS,
    KA_CG_NET_PRIO,
    KA_CG_PERF_EVENT,
    KA_CG_RDMA,
    KA_CG_MISC,
    KA_CG_COUNT,
};
#define KA_CG_BIT(c) (1u << (c))

/* A v1 controller name ("cpu") or a v2 one ("io"); -1 when unknown. */
int ka_cgroup_controller_parse(const char *name, enum ka_cgroup_version v);
const char *ka_cgroup_controller_name(enum ka_cgroup_controller c, enum ka_cgroup_version v);

struct ka_cgroup_hierarchy {
    char *mount;          /* where it is mounted ("/sys/fs/cgroup/cpu,cpuacct") */
    unsigned controllers; /* v1: its controllers; v2: those in the root's cgroup.controllers */
};

struct ka_cgroup_layout {
    enum ka_cgroup_version version;
    struct ka_cgroup_hierarchy h[KA_CGROUP_MAX_HIERARCHIES];
    size_t n;
};

/* Find the hierarchies. mountinfo: normally "/proc/self/mountinfo"; root:
 * KA_CGROUP_ROOT (statfs'ed for cgroup2). No cgroup mounted is not an error
 * (version NONE). */
int ka_cgroup_layout_detect(struct ka_cgroup_layout *l, const char *mountinfo, const char *root,
                            struct ka_error *err);
void ka_cgroup_layout_free(struct ka_cgroup_layout *l);

/* The cgroup path rule of the cgroupfs driver: Linux.CgroupsPath with every ':'
 * turned into '/', "" -> "/<cid>", always starting with '/', repeated and
 * trailing '/' dropped. "." and ".." components, control characters and paths
 * longer than KA_CGROUP_PATH_MAX or deeper than KA_CGROUP_MAX_DEPTH are refused
 * (INVALID_ARGUMENT): the path comes from the host. The root "/" is refused
 * too: a container never gets the root cgroup. */
int ka_cgroup_path(const char *cgroups_path, const char *cid, char *out, size_t size,
                   struct ka_error *err);
/* The parent of a path ("/a/b" -> "/a", "/a" -> "/"). */
void ka_cgroup_parent(const char *path, char *out, size_t size);
/* Whether two paths (both as ka_cgroup_path writes them) are equal or one is
 * an ancestor of the other, compared component by component: "/a/b" and
 * "/a/bc" do not overlap. Also true for directories ("/sys/fs/cgroup/x/a"). */
bool ka_cgroup_paths_overlap(const char *a, const char *b);

/* One cgroup: its directory in each hierarchy. */
struct ka_cgroup_dir {
    char *dir;
    unsigned controllers;
    unsigned made_from; /* ka_cgroup_create: first component (1-based) it mkdir'ed; 0: none */
};

struct ka_cgroup {
    enum ka_cgroup_version version;
    char *path; /* "/pod/cid" */
    struct ka_cgroup_dir d[KA_CGROUP_MAX_HIERARCHIES];
    size_t n;
    int bpf_prog_fd;        /* v2: the device program we attached (-1: none) */
    bool devices_allow_all; /* the base the v2 device program is built on */
};

/* A handle on path under the layout, without touching the filesystem. */
struct ka_cgroup *ka_cgroup_new(const struct ka_cgroup_layout *l, const char *path);
/* Make the directories (mkdir -p; existing ones are fine). v1 cpuset: empty
 * cpuset.cpus/mems are copied from the parent on the way down, or nothing could
 * join. v2: each ancestor below the mount enables in cgroup.subtree_control the
 * controllers its cgroup.controllers offers (each one on its own, a refusal is
 * only logged). */
int ka_cgroup_create(struct ka_cgroup *cg, struct ka_error *err);
/* Each directory ka_cgroup_create made (made_from down to the leaf, or to the
 * leaf's parent when !with_leaf), deepest first: fn(dir, data). */
void ka_cgroup_each_made(const struct ka_cgroup *cg, bool with_leaf,
                         void (*fn)(const char *dir, void *data), void *data);
void ka_cgroup_free(struct ka_cgroup *cg);

/* The directory holding a controller's files (v2: the one directory; NULL if v1
 * has no hierarchy with it). */
const char *ka_cgroup_dir_of(const struct ka_cgroup *cg, enum ka_cgroup_controller c);
bool ka_cgroup_has(const struct ka_cgroup *cg, enum ka_cgroup_controller c);

/* Open cgroup.procs of every directory for writing (O_CLOEXEC). The container
 * child writes "0" into each (ka_cgroup_enter_fds) first thing after the clone,
 * so the process is in its cgroup before it runs anything of the container's. */
int ka_cgroup_open_procs(const struct ka_cgroup *cg, int *fds, size_t max, size_t *n,
                         struct ka_error *err);
/* In the child: join (async-signal-safe: write only). */
int ka_cgroup_enter_fds(const int *fds, size_t n, struct ka_error *err);
void ka_cgroup_close_fds(int *fds, size_t n);

/* Every pid in the cgroup and its descendants (deduplicated over the
 * hierarchies), in the caller's pid namespace. *pids is malloc'ed. */
int ka_cgroup_pids(const struct ka_cgroup *cg, pid_t **pids, size_t *n, struct ka_error *err);

enum ka_freeze_state {
    KA_FREEZE_THAWED,
    KA_FREEZE_FREEZING, /* asked for, not reached yet */
    KA_FREEZE_FROZEN,
};
/* v1 freezer.state FROZEN/THAWED, v2 cgroup.freeze 1/0. */
int ka_cgroup_freeze(const struct ka_cgroup *cg, bool frozen, struct ka_error *err);
/* v1 freezer.state; v2 "frozen" of cgroup.events, FREEZING while cgroup.freeze
 * is 1 and the kernel has not got there. Negative on error. */
int ka_cgroup_freeze_state(const struct ka_cgroup *cg, struct ka_error *err);

/* Signal every process of the cgroup (and below): freeze (unless it already is),
 * kill each pid but skip_pid, thaw (unless it was frozen before). Returns how
 * many were signalled. ESRCH is not an error. */
int ka_cgroup_signal_all(const struct ka_cgroup *cg, int sig, pid_t skip_pid, struct ka_error *err);
/* SIGKILL what is left (v2: cgroup.kill when the kernel has it) and remove the
 * directories, deepest first. Returns 0 when all are gone (ENOENT counts as
 * gone), -EBUSY while processes or zombies remain (try again later), another
 * negative value with err on a real failure. */
int ka_cgroup_destroy(const struct ka_cgroup *cg, struct ka_error *err);

/* ---- files ------------------------------------------------------------------ */

/* Write value to dir/file (O_WRONLY|O_TRUNC, one write). */
int ka_cg_write(const char *dir, const char *file, const char *value, struct ka_error *err);
int ka_cg_writef(const char *dir, const char *file, struct ka_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Read dir/file whole into buf (NUL-terminated); -ENOENT etc. with err. Content
 * beyond size-1 bytes is an error (-EFBIG). */
ssize_t ka_cg_read(const char *dir, const char *file, char *buf, size_t size, struct ka_error *err);
/* A number, or "max" (UINT64_MAX). */
int ka_cg_read_u64(const char *dir, const char *file, uint64_t *out, struct ka_error *err);
/* The value of key in a flat-keyed file ("key value" lines); -ENOENT when absent. */
int ka_cg_read_key(const char *dir, const char *file, const char *key, uint64_t *out,
                   struct ka_error *err);
bool ka_cg_exists(const char *dir, const char *file);

#endif
