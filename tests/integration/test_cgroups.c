/* cgroups and seccomp through the real agent (root; busybox + payload rootfs).
 *
 * The agent must never touch the host's cgroups outside a parent this test owns,
 * so each group runs the agent in a mount namespace whose /sys/fs/cgroup is made
 * of that parent:
 *  - v1: for every v1 hierarchy mounted under /sys/fs/cgroup, a directory
 *    ka-it-<pid> is made below this process's own cgroup there and bound over a
 *    fresh tmpfs on /sys/fs/cgroup/<name>, so that the agent's "/<cid>" is
 *    <own>/ka-it-<pid>/<cid> on the host;
 *  - v2: a directory below this process's cgroup in the cgroup2 hierarchy (the
 *    host's /sys/fs/cgroup, or the "unified" one of a hybrid host) is bound over
 *    /sys/fs/cgroup itself. On a hybrid host the cgroup2 hierarchy has few or no
 *    controllers (they belong to v1): the v2 group tests what works without
 *    them (placement, cgroup namespace, freezing, cgroup.kill, the eBPF device
 *    program, cpu.stat) and whatever controllers it finds; memory, pids and
 *    OOM on v2 are left to the qemu guest's end-to-end run.
 * Everything is removed again at the end (and the directories must then be
 * empty, which checks that the agent cleaned up its own). */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctr.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
/* snprintf into an array, failing the test rather than truncating. */
#define FMT(buf, ...)                                                         \
    do {                                                                      \
        if ((size_t)snprintf((buf), sizeof(buf), __VA_ARGS__) >= sizeof(buf)) \
            fail_msg("%s:%d: text too long", __FILE__, __LINE__);             \
    } while (0)
#define CG "/sys/fs/cgroup"

static const char *rootfs;
static struct agent_proc agent;
static struct ctr t;
static char out[1 << 16];
static bool v2;          /* which group is running */
static int host_ns = -1; /* this process's mount namespace before a group */
static char parent_name[64];

/* Host-side parent directories to remove at the end of a group. */
static char parents[32][PATH_MAX];
static size_t n_parents;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- files -------------------------------------------------------------------------- */

static bool write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text);
}

/* A file of a container cgroup as the agent sees it: CG/<hier>/<path>/<file>
 * (v1) or CG/<path>/<file> (v2). */
static const char *cgfile(const char *hier, const char *path, const char *file)
{
    static char buf[PATH_MAX];
    if (v2 || !hier)
        snprintf(buf, sizeof(buf), CG "%s/%s", path, file);
    else
        snprintf(buf, sizeof(buf), CG "/%s%s/%s", hier, path, file);
    return buf;
}

static unsigned long long cg_u64(const char *hier, const char *path, const char *file)
{
    char buf[256];
    if (!read_text(cgfile(hier, path, file), buf, sizeof(buf)))
        fail_msg("read %s: %s", cgfile(hier, path, file), strerror(errno));
    return strtoull(buf, NULL, 10);
}

static unsigned long long cg_key(const char *hier, const char *path, const char *file,
                                 const char *key)
{
    char buf[8192];
    if (!read_text(cgfile(hier, path, file), buf, sizeof(buf)))
        fail_msg("read %s", cgfile(hier, path, file));
    size_t kl = strlen(key);
    for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, key, kl) == 0 && l[kl] == ' ')
            return strtoull(l + kl + 1, NULL, 10);
    fail_msg("%s has no %s", cgfile(hier, path, file), key);
    return 0;
}

static bool cg_dir_exists(const char *hier, const char *path)
{
    return access(cgfile(hier, path, "cgroup.procs"), F_OK) == 0;
}

static bool wait_gone(const char *hier, const char *path, int ms)
{
    long deadline = now_ms() + ms;
    while (cg_dir_exists(hier, path))
        if (now_ms() > deadline)
            return false;
        else
            usleep(10000);
    return true;
}

/* Remove a cgroup tree, deepest first. */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
        rm_tree(sub);
    }
    if (d)
        closedir(d);
    for (int i = 0; i < 100 && rmdir(dir) < 0 && errno == EBUSY; i++)
        usleep(20000);
}

static bool has_subdirs(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    bool any = false;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_type == DT_DIR && de->d_name[0] != '.')
            any = true;
    if (d)
        closedir(d);
    return any;
}

/* Parents left by a run that died (its pid is gone) are removed. */
static void clean_stale(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        int pid = 0, len = 0;
        if (de->d_type != DT_DIR || sscanf(de->d_name, "ka-it-%d%n", &pid, &len) != 1 || pid <= 0 ||
            (de->d_name[len] != '\0' && strcmp(de->d_name + len, "-v2") != 0))
            continue;
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        char sub[PATH_MAX];
        FMT(sub, "%s/%s", dir, de->d_name);
        rm_tree(sub);
    }
    if (d)
        closedir(d);
}

/* ---- the cgroup sandbox around the agent ----------------------------------------------- */

/* This process's cgroup in the hierarchy whose /proc/self/cgroup controller field is
 * ctrls ("memory", "cpu,cpuacct", "name=systemd", "" for v2). */
static bool own_cgroup(const char *ctrls, char *path, size_t size)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[1024];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = '\0';
        if (strcmp(a + 1, ctrls) == 0) {
            b[1 + strcspn(b + 1, "\n")] = '\0';
            snprintf(path, size, "%s", strcmp(b + 1, "/") == 0 ? "" : b + 1);
            found = true;
        }
    }
    if (f)
        fclose(f);
    return found;
}

struct hier {
    char mnt[PATH_MAX]; /* host mount point */
    char ctrls[128];    /* "cpu,cpuacct" as /proc/self/cgroup writes it */
    char root[PATH_MAX];
};

/* The controllers of a v1 mount's super options, in the kernel's order. */
static void ctrls_of(const char *opts, char *out, size_t size)
{
    static const char *const known[] = {"cpuset",  "cpu",     "cpuacct", "blkio",      "memory",
                                        "devices", "freezer", "net_cls", "perf_event", "net_prio",
                                        "hugetlb", "pids",    "rdma",    "misc"};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        char tok[32];
        snprintf(tok, sizeof(tok), ",%s,", known[i]);
        char wrapped[512];
        FMT(wrapped, ",%s,", opts);
        if (strstr(wrapped, tok))
            snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? "," : "", known[i]);
    }
    const char *nm = strstr(opts, "name=");
    if (nm && !out[0])
        snprintf(out, size, "%.*s", (int)strcspn(nm, ","), nm);
}

static size_t find_mounts(const char *fstype_want, struct hier *h, size_t max)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[2048];
    size_t n = 0;
    while (f && n < max && fgets(line, sizeof(line), f)) {
        char root[PATH_MAX], mnt[PATH_MAX], fstype[32], opts[512];
        char *sep = strstr(line, " - ");
        if (!sep || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
            sscanf(sep + 3, "%31s %*s %511s", fstype, opts) != 2 ||
            strcmp(fstype, fstype_want) != 0 || strncmp(mnt, CG, strlen(CG)) != 0)
            continue;
        snprintf(h[n].mnt, sizeof(h[n].mnt), "%s", mnt);
        snprintf(h[n].root, sizeof(h[n].root), "%s", root);
        ctrls_of(opts, h[n].ctrls, sizeof(h[n].ctrls));
        if (strcmp(fstype_want, "cgroup2") == 0 || h[n].ctrls[0])
            n++;
    }
    if (f)
        fclose(f);
    return n;
}

/* Our cgroup in h, relative to where h is mounted. */
static bool rel_path(const struct hier *h, char *rel, size_t size)
{
    char own[PATH_MAX];
    if (!own_cgroup(h->ctrls, own, sizeof(own)))
        return false;
    size_t rl = strcmp(h->root, "/") == 0 ? 0 : strlen(h->root);
    if (rl && strncmp(own, h->root, rl) != 0)
        return false;
    snprintf(rel, size, "%s", own + rl);
    return true;
}

static void copy_file(const char *from_dir, const char *to_dir, const char *file)
{
    char a[PATH_MAX], b[PATH_MAX], buf[4096];
    snprintf(a, sizeof(a), "%s/%s", from_dir, file);
    snprintf(b, sizeof(b), "%s/%s", to_dir, file);
    if (read_text(a, buf, sizeof(buf)))
        write_text(b, buf);
}

/* v1: returns false when this host has no v1 hierarchy. */
static bool enter_v1_sandbox(void)
{
    struct hier h[32];
    size_t n = find_mounts("cgroup", h, 32);
    if (n == 0)
        return false;
    char stage[64];
    snprintf(stage, sizeof(stage), "/tmp/ka-cg-%d", (int)getpid());
    assert_int_equal(mkdir(stage, 0700), 0);
    host_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    assert_true(host_ns >= 0);
    /* Parents in the host's hierarchies first (while they are visible). */
    char binds[32][PATH_MAX], names[32][128];
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        char rel[PATH_MAX];
        if (!rel_path(&h[i], rel, sizeof(rel)))
            continue;
        const char *base = strrchr(h[i].mnt, '/') + 1;
        char here[PATH_MAX];
        FMT(here, "%s%s", h[i].mnt, rel);
        clean_stale(here);
        FMT(binds[nb], "%s%s/%s", h[i].mnt, rel, parent_name);
        if (mkdir(binds[nb], 0755) < 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", binds[nb], strerror(errno));
        if (strstr(h[i].ctrls, "cpuset")) {
            char up[PATH_MAX];
            FMT(up, "%s%s", h[i].mnt, rel);
            copy_file(up, binds[nb], "cpuset.cpus");
            copy_file(up, binds[nb], "cpuset.mems");
        }
        snprintf(parents[n_parents++], PATH_MAX, "%s", binds[nb]);
        snprintf(names[nb], sizeof(names[nb]), "%s", base);
        nb++;
    }
    /* A namespace of our own, inherited by the agent: stage the binds, cover
     * /sys/fs/cgroup with a tmpfs, move them in. */
    assert_int_equal(unshare(CLONE_NEWNS), 0);
    assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    for (size_t i = 0; i < nb; i++) {
        char st[PATH_MAX];
        snprintf(st, sizeof(st), "%s/%zu", stage, i);
        assert_int_equal(mkdir(st, 0700), 0);
        if (mount(binds[i], st, NULL, MS_BIND, NULL) < 0)
            fail_msg("bind %s: %s", binds[i], strerror(errno));
    }
    assert_int_equal(mount("tmpfs", CG, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755"), 0);
    for (size_t i = 0; i < nb; i++) {
        char st[PATH_MAX], dst[PATH_MAX];
        snprintf(st, sizeof(st), "%s/%zu", stage, i);
        snprintf(dst, sizeof(dst), CG "/%s", names[i]);
        assert_int_equal(mkdir(dst, 0755), 0);
        if (mount(st, dst, NULL, MS_MOVE, NULL) < 0)
            fail_msg("move %s: %s", st, strerror(errno));
        rmdir(st);
        /* cpu -> cpu,cpuacct style links */
        if (strchr(names[i], ',')) {
            char tmp[128];
            snprintf(tmp, sizeof(tmp), "%s", names[i]);
            for (char *s = NULL, *tok = strtok_r(tmp, ",", &s); tok;
                 tok = strtok_r(NULL, ",", &s)) {
                char link[PATH_MAX];
                snprintf(link, sizeof(link), CG "/%s", tok);
                if (symlink(names[i], link) < 0 && errno != EEXIST)
                    fail_msg("symlink %s", link);
            }
        }
    }
    rmdir(stage);
    return true;
}

static bool enter_v2_sandbox(void)
{
    struct hier h[4];
    size_t n = find_mounts("cgroup2", h, 4);
    if (n == 0)
        return false;
    char rel[PATH_MAX];
    snprintf(h[0].ctrls, sizeof(h[0].ctrls), "%s", "");
    if (!rel_path(&h[0], rel, sizeof(rel)))
        return false;
    host_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    assert_true(host_ns >= 0);
    char dir[PATH_MAX];
    FMT(dir, "%s%s", h[0].mnt, rel);
    clean_stale(dir);
    FMT(dir, "%s%s/%s", h[0].mnt, rel, parent_name);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", dir, strerror(errno));
    snprintf(parents[n_parents++], PATH_MAX, "%s", dir);
    assert_int_equal(unshare(CLONE_NEWNS), 0);
    assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    if (mount(dir, CG, NULL, MS_BIND, NULL) < 0)
        fail_msg("bind %s on " CG ": %s", dir, strerror(errno));
    struct statfs sfs;
    assert_int_equal(statfs(CG, &sfs), 0);
    assert_true(sfs.f_type == CGROUP2_SUPER_MAGIC);
    return true;
}

/* Back to the host's mount namespace; remove the parents (they must be empty:
 * the agent removes what it made, the pod cgroups excepted). */
static void leave_sandbox(void)
{
    if (host_ns >= 0) {
        assert_int_equal(setns(host_ns, CLONE_NEWNS), 0);
        close(host_ns);
        host_ns = -1;
    }
    for (size_t i = 0; i < n_parents; i++) {
        rm_tree(parents[i]);
        if (access(parents[i], F_OK) == 0)
            fprintf(stderr, "could not remove %s\n", parents[i]);
    }
    n_parents = 0;
}

/* ---- spec helpers ------------------------------------------------------------------------- */

static void set_memory(Grpc__Spec *s, int64_t limit)
{
    Grpc__LinuxResources *r = spec_resources(s);
    if (!r->memory) {
        r->memory = malloc(sizeof(*r->memory));
        grpc__linux_memory__init(r->memory);
    }
    r->memory->limit = limit;
}

static void set_pids(Grpc__Spec *s, int64_t limit)
{
    Grpc__LinuxResources *r = spec_resources(s);
    r->pids = malloc(sizeof(*r->pids));
    grpc__linux_pids__init(r->pids);
    r->pids->limit = limit;
}

static void set_cpu(Grpc__Spec *s, uint64_t shares, int64_t quota, uint64_t period,
                    const char *cpus)
{
    Grpc__LinuxResources *r = spec_resources(s);
    r->cpu = malloc(sizeof(*r->cpu));
    grpc__linux_cpu__init(r->cpu);
    r->cpu->shares = shares;
    r->cpu->quota = quota;
    r->cpu->period = period;
    r->cpu->cpus = xstrdup(cpus ? cpus : "");
    r->cpu->mems = xstrdup("");
}

static Grpc__LinuxSeccomp *seccomp_of(Grpc__Spec *s, const char *default_action)
{
    Grpc__LinuxSeccomp *sc = malloc(sizeof(*sc));
    grpc__linux_seccomp__init(sc);
    sc->defaultaction = xstrdup(default_action);
    strv_add(&sc->architectures, &sc->n_architectures, "SCMP_ARCH_X86_64");
    strv_add(&sc->architectures, &sc->n_architectures, "SCMP_ARCH_X86");
    strv_add(&sc->architectures, &sc->n_architectures, "SCMP_ARCH_AARCH64");
    strv_add(&sc->architectures, &sc->n_architectures, "SCMP_ARCH_RISCV64");
    s->linux->seccomp = sc;
    return sc;
}

static Grpc__LinuxSyscall *add_syscall(Grpc__LinuxSeccomp *sc, const char *const *names,
                                       const char *action, int errno_ret)
{
    Grpc__LinuxSyscall *r = malloc(sizeof(*r));
    grpc__linux_syscall__init(r);
    for (const char *const *n = names; *n; n++)
        strv_add(&r->names, &r->n_names, *n);
    r->action = xstrdup(action);
    if (errno_ret >= 0) {
        r->errno_ret_case = GRPC__LINUX_SYSCALL__ERRNO_RET_ERRNORET;
        r->errnoret = (uint32_t)errno_ret;
    }
    sc->syscalls = realloc(sc->syscalls, (sc->n_syscalls + 1) * sizeof(*sc->syscalls));
    sc->syscalls[sc->n_syscalls++] = r;
    return r;
}

static void add_arg(Grpc__LinuxSyscall *r, uint64_t index, uint64_t value, uint64_t value_two,
                    const char *op)
{
    Grpc__LinuxSeccompArg *a = malloc(sizeof(*a));
    grpc__linux_seccomp_arg__init(a);
    a->index = index;
    a->value = value;
    a->valuetwo = value_two;
    a->op = xstrdup(op);
    r->args = realloc(r->args, (r->n_args + 1) * sizeof(*r->args));
    r->args[r->n_args++] = a;
}

/* ---- calls ---------------------------------------------------------------------------------- */

static int run_spec(const char *cid, Grpc__Spec *s)
{
    int status = ctr_run(&t, cid, s, out, sizeof(out));
    spec_free(s);
    return status;
}

static int pause_resume(const char *cid, bool pause)
{
    Grpc__PauseContainerRequest preq = GRPC__PAUSE_CONTAINER_REQUEST__INIT;
    Grpc__ResumeContainerRequest rreq = GRPC__RESUME_CONTAINER_REQUEST__INIT;
    preq.container_id = rreq.container_id = (char *)cid;
    return pause ? ctr_call(&t, "PauseContainer", &preq.base, NULL, NULL)
                 : ctr_call(&t, "ResumeContainer", &rreq.base, NULL, NULL);
}

static Grpc__StatsContainerResponse *stats(const char *cid)
{
    Grpc__StatsContainerRequest req = GRPC__STATS_CONTAINER_REQUEST__INIT;
    req.container_id = (char *)cid;
    Grpc__StatsContainerResponse *resp = NULL;
    if (ctr_call(&t, "StatsContainer", &req.base, &grpc__stats_container_response__descriptor,
                 (ProtobufCMessage **)&resp) != 0)
        fail_msg("StatsContainer %s: %s", cid, t.msg);
    return resp;
}

/* A GetOOMEvent on a connection of its own (it parks). */
struct oom_waiter {
    struct ttrpc_client c;
};

static void oom_send(struct oom_waiter *w)
{
    struct ka_error err;
    if (ttrpc_client_open(&w->c, agent.addr, &err) < 0)
        fail_msg("connect: %s", err.msg);
    Grpc__GetOOMEventRequest req = GRPC__GET_OOMEVENT_REQUEST__INIT;
    uint8_t buf[16];
    size_t len = grpc__get_oomevent_request__pack(&req, buf);
    uint32_t sid;
    if (ttrpc_client_send(&w->c, "grpc.AgentService", "GetOOMEvent", buf, len, 0, &sid, &err) < 0)
        fail_msg("send GetOOMEvent: %s", err.msg);
}

/* Wait up to ms for the answer; returns its code, -1 on timeout; cid gets the id. */
static int oom_recv(struct oom_waiter *w, int ms, char *cid, size_t size)
{
    struct pollfd pfd = {.fd = w->c.fd, .events = POLLIN};
    if (poll(&pfd, 1, ms) <= 0)
        return -1;
    struct ttrpc_reply reply;
    struct ka_error err;
    if (ttrpc_client_recv(&w->c, &reply, &err) < 0)
        fail_msg("recv GetOOMEvent: %s", err.msg);
    int code = reply.code;
    cid[0] = '\0';
    if (code == 0) {
        Grpc__OOMEvent *ev = grpc__oomevent__unpack(NULL, reply.payload_len, reply.payload);
        assert_non_null(ev);
        snprintf(cid, size, "%s", ev->container_id);
        grpc__oomevent__free_unpacked(ev, NULL);
    }
    ttrpc_reply_free(&reply);
    return code;
}

/* ---- groups ----------------------------------------------------------------------------------- */

static bool skip_group;

static int v1_setup(void **state)
{
    (void)state;
    rootfs = ctr_test_rootfs();
    if (!rootfs)
        return -1;
    v2 = false;
    snprintf(parent_name, sizeof(parent_name), "ka-it-%d", (int)getpid());
    struct statfs sfs;
    if (statfs(CG, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) {
        fprintf(stderr, "host is cgroup v2 only: v1 tests skipped\n");
        skip_group = true;
        return 0;
    }
    skip_group = !enter_v1_sandbox();
    return skip_group ? 0
                      : ctr_suite_setup(&agent, &t, getenv("KA_TEST_AGENT_CMDLINE"), "cg-sandbox",
                                        &rootfs);
}

static int v2_setup(void **state)
{
    (void)state;
    rootfs = ctr_test_rootfs();
    if (!rootfs)
        return -1;
    v2 = true;
    snprintf(parent_name, sizeof(parent_name), "ka-it-%d-v2", (int)getpid());
    skip_group = !enter_v2_sandbox();
    if (skip_group) {
        fprintf(stderr, "no cgroup2 hierarchy: v2 tests skipped\n");
        return 0;
    }
    return ctr_suite_setup(&agent, &t, getenv("KA_TEST_AGENT_CMDLINE"), "cg-sandbox", &rootfs);
}

static int group_teardown(void **state)
{
    (void)state;
    if (!skip_group)
        ctr_suite_teardown(&agent, &t);
    leave_sandbox();
    return 0;
}

#define SKIP_IF_NO_GROUP() \
    do {                   \
        if (skip_group)    \
            skip();        \
    } while (0)

static bool v2_has(const char *controller)
{
    char buf[512];
    if (!v2 || !read_text(CG "/cgroup.controllers", buf, sizeof(buf)))
        return false;
    char wrapped[600];
    snprintf(wrapped, sizeof(wrapped), " %.*s ", (int)strcspn(buf, "\n"), buf);
    char tok[64];
    snprintf(tok, sizeof(tok), " %s ", controller);
    return strstr(wrapped, tok) != NULL;
}

/* ---- tests (both versions) -------------------------------------------------------------------- */

/* The init is in its cgroup before it runs anything: its very first act (reading
 * its own cgroup) sees it. The path rule: "" -> /<cid>, ':' -> '/'. Removal
 * removes the cgroup; the pod (parent) stays. */
static void test_placement_and_removal(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "read-file", "/proc/self/cgroup"));
    assert_int_equal(run_spec("cg-place", s), 0);
    if (v2) {
        /* The init has a cgroup namespace rooted at its cgroup (§6.3): every
         * hierarchy reads "/" (a hybrid host's v1 ones too). */
        assert_non_null(strstr(out, "0::/\n"));
        for (char *l = out; *l; l = strchr(l, '\n') + 1)
            if (strncmp(strchr(l, '\n') - 2, ":/", 2) != 0)
                fail_msg("not the namespace root: %s", l);
    } else {
        /* Every v1 line ends with our parent and the container's id. */
        char want[128];
        snprintf(want, sizeof(want), "/%s/cg-place\n", parent_name);
        int lines = 0;
        for (char *l = out; *l; l = strchr(l, '\n') + 1) {
            char *eol = strchr(l, '\n');
            /* Only mounted hierarchies hold containers: a v1 hierarchy can outlive its
             * mount (one left by another tool) and still show in /proc/self/cgroup. */
            char name[64] = "";
            const char *c1 = strchr(l, ':');
            if (c1) {
                size_t n = strcspn(c1 + 1, ",:");
                const char *nm = c1 + 1;
                if (strncmp(nm, "name=", 5) == 0)
                    nm += 5, n -= 5;
                snprintf(name, sizeof(name), "%.*s", (int)n, nm);
            }
            char mp[128];
            snprintf(mp, sizeof(mp), CG "/%s", name);
            if (strncmp(l, "0::", 3) != 0 && name[0] && access(mp, F_OK) != 0)
                continue;
            if (strncmp(l, "0::", 3) != 0) {
                size_t len = (size_t)(eol - l) + 1;
                assert_true(len > strlen(want));
                if (memcmp(l + len - strlen(want), want, strlen(want)) != 0)
                    fail_msg("not in its cgroup: %.*s", (int)len, l);
                lines++;
            }
        }
        assert_true(lines >= 3);
    }
    assert_true(wait_gone("memory", "/cg-place", 2000));

    /* "pod-a:cg-pod" is /pod-a/cg-pod. */
    s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    spec_set_cgroups_path(s, "pod-a:cg-pod");
    ctr_create_start(&t, "cg-pod", s);
    assert_true(cg_dir_exists("memory", "/pod-a/cg-pod"));
    assert_true(cg_dir_exists("freezer", "/pod-a/cg-pod"));
    char procs[256];
    assert_true(read_text(cgfile("memory", "/pod-a/cg-pod", "cgroup.procs"), procs, sizeof(procs)));
    assert_true(atoi(procs) > 0);
    ctr_kill_remove(&t, "cg-pod");
    assert_false(cg_dir_exists("memory", "/pod-a/cg-pod"));
    assert_false(cg_dir_exists("pids", "/pod-a/cg-pod"));
    /* The agent made the pod cgroup: it goes with its last container (issue 13;
     * upstream leaves it behind). */
    assert_false(cg_dir_exists("memory", "/pod-a"));
    assert_false(cg_dir_exists("devices", "/pod-a"));

    /* Paths from the host are checked. */
    s = spec_new(rootfs, ARGS("true"));
    spec_set_cgroups_path(s, "/pod-a/../../escape");
    assert_int_not_equal(ctr_create(&t, "cg-bad", s), 0);
    assert_non_null(strstr(t.msg, ".."));
    spec_free(s);
}

/* A Kubernetes pod's cgroupsPath in both forms containerd writes (issue 14 item 7):
 * the cgroupfs driver's /kubepods/burstable/pod<uid>/<id>, and the systemd driver's
 * slice:prefix:name, which the agent (no systemd to ask when it is init) turns into
 * /slice/prefix/name as upstream does. The pause and an app container share the
 * pod-level parent, each with its own limit (v1: the v2 hierarchy of this hybrid
 * host has no pids controller), and the parent goes with the last. */
static void test_pod_cgroups_paths(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    static const char *const forms[][2] = {
        {"/kubepods/burstable/podu1/", "/kubepods/burstable/podu1"},
        {"kubepods-burstable-podu2.slice:cri-containerd:",
         "/kubepods-burstable-podu2.slice/cri-containerd"},
    };
    static const char *const ids[] = {"cg-pause", "cg-app"};
    for (size_t f = 0; f < sizeof(forms) / sizeof(*forms); f++) {
        const char *pod = forms[f][1];
        for (size_t i = 0; i < 2; i++) {
            Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pause"));
            char path[256];
            FMT(path, "%s%s", forms[f][0], ids[i]);
            free(s->linux->cgroupspath);
            s->linux->cgroupspath = strdup(path);
            if (!v2) { /* this host's v2 hierarchy has no pids controller */
                s->linux->resources = calloc(1, sizeof(*s->linux->resources));
                grpc__linux_resources__init(s->linux->resources);
                s->linux->resources->pids = calloc(1, sizeof(*s->linux->resources->pids));
                grpc__linux_pids__init(s->linux->resources->pids);
                s->linux->resources->pids->limit = (int64_t)(20 + i);
            }
            if (ctr_create(&t, ids[i], s) != 0 || ctr_start(&t, ids[i]) != 0)
                fail_msg("%s under %s: %s", ids[i], path, t.msg);
            spec_free(s);
        }
        for (size_t i = 0; i < 2; i++) {
            char leaf[256], procs[256];
            FMT(leaf, "%s/%s", pod, ids[i]);
            assert_true(cg_dir_exists("pids", leaf));
            assert_true(read_text(cgfile("pids", leaf, "cgroup.procs"), procs, sizeof(procs)));
            assert_true(atoi(procs) > 0);
            if (!v2)
                assert_int_equal(cg_u64("pids", leaf, "pids.max"), 20 + i);
        }
        for (size_t i = 2; i-- > 0;) { /* the app, then the pause */
            int status;
            assert_int_equal(ctr_signal(&t, ids[i], "", SIGKILL), 0);
            assert_int_equal(ctr_wait(&t, ids[i], "", &status), 0);
            assert_int_equal(ctr_remove(&t, ids[i]), 0);
            if (i == 1)
                assert_true(cg_dir_exists("pids", pod)); /* the pause still holds it */
        }
        assert_true(wait_gone("pids", pod, 2000));
    }
}

/* Processes the agent did not start are killed at removal and the cgroup goes. */
/* The done-when: removing 100 containers leaves no cgroup directory. */
static void test_hundred_removed_leave_nothing(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    char cid[32];
    for (int i = 0; i < 100; i++) {
        snprintf(cid, sizeof(cid), "cg-h-%d", i);
        ctr_create_start(&t, cid, spec_new(rootfs, ARGS("sleep", "1000")));
    }
    for (int i = 0; i < 100; i++) {
        snprintf(cid, sizeof(cid), "cg-h-%d", i);
        ctr_kill_remove(&t, cid);
    }
    static const char *const v1_hiers[] = {"memory", "pids", "freezer", "devices", "cpu"};
    for (int i = 0; i < 100; i++) {
        char path[40];
        snprintf(path, sizeof(path), "/cg-h-%d", i);
        if (v2) {
            if (cg_dir_exists(NULL, path))
                fail_msg("cgroup %s left behind", path);
            continue;
        }
        for (size_t h = 0; h < sizeof(v1_hiers) / sizeof(v1_hiers[0]); h++)
            if (cg_dir_exists(v1_hiers[h], path))
                fail_msg("cgroup %s left behind in %s", path, v1_hiers[h]);
    }
}

static void test_removal_kills_what_remains(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    ctr_create_start(&t, "cg-leftover", s);
    /* A process of ours put into every hierarchy of the container's cgroup;
     * reaped by the kernel (SIGCHLD ignored) once the agent kills it. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_sa;
    sigaction(SIGCHLD, &ign, &old_sa);
    pid_t gc = fork();
    if (gc == 0) {
        execl("/bin/sleep", "sleep", "1000", (char *)NULL);
        _exit(127);
    }
    assert_true(gc > 0);
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)gc);
    if (v2) {
        assert_true(write_text(cgfile(NULL, "/cg-leftover", "cgroup.procs"), pid));
    } else {
        DIR *d = opendir(CG);
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.' || de->d_type != DT_DIR)
                continue;
            assert_true(write_text(cgfile(de->d_name, "/cg-leftover", "cgroup.procs"), pid));
        }
        closedir(d);
    }
    if (ctr_remove(&t, "cg-leftover") != 0)
        fail_msg("remove: %s", t.msg);
    assert_false(cg_dir_exists("memory", "/cg-leftover"));
    long deadline = now_ms() + 3000;
    while (kill(gc, 0) == 0 && now_ms() < deadline)
        usleep(10000);
    sigaction(SIGCHLD, &old_sa, NULL);
    assert_int_equal(kill(gc, 0), -1);
}

/* Pause stops the container (its cpu time stands still) and answers once frozen;
 * Resume lets it go on. */
static unsigned long long cpu_usage(const char *path)
{
    if (v2)
        return cg_key(NULL, path, "cpu.stat", "usage_usec") * 1000;
    return cg_u64("cpuacct", path, "cpuacct.usage");
}

static void test_pause_resume(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    Grpc__Spec *s = spec_new(rootfs, ARGS("sh", "-c", "while :; do :; done"));
    ctr_create_start(&t, "cg-spin", s);
    usleep(100000);
    assert_int_equal(pause_resume("cg-spin", true), 0);
    if (v2)
        assert_int_equal(cg_key(NULL, "/cg-spin", "cgroup.events", "frozen"), 1);
    else {
        char st[32];
        assert_true(read_text(cgfile("freezer", "/cg-spin", "freezer.state"), st, sizeof(st)));
        assert_string_equal(st, "FROZEN\n");
    }
    unsigned long long a = cpu_usage("/cg-spin");
    usleep(300000);
    unsigned long long b = cpu_usage("/cg-spin");
    assert_true(b - a < 5000000ull); /* under 5 ms of a 300 ms wait: it stood still */
    /* Pausing again is fine; an exec into a frozen container would hang: refused. */
    assert_int_equal(pause_resume("cg-spin", true), 0);
    Grpc__Process *p = process_new(ARGS("true"));
    assert_int_not_equal(ctr_exec(&t, "cg-spin", "e1", p), 0);
    process_free(p);
    assert_int_equal(pause_resume("cg-spin", false), 0);
    a = cpu_usage("/cg-spin");
    usleep(300000);
    b = cpu_usage("/cg-spin");
    assert_true(b - a > 50000000ull); /* it runs again */
    /* SIGKILL ends a paused container (thawed to die), and so does removal. */
    assert_int_equal(pause_resume("cg-spin", true), 0);
    ctr_kill_remove(&t, "cg-spin");
    assert_false(cg_dir_exists(v2 ? NULL : "freezer", "/cg-spin"));
    s = spec_new(rootfs, ARGS("sh", "-c", "while :; do :; done"));
    ctr_create_start(&t, "cg-spin2", s);
    assert_int_equal(pause_resume("cg-spin2", true), 0);
    assert_int_equal(ctr_remove(&t, "cg-spin2"), 0);
    assert_false(cg_dir_exists(v2 ? NULL : "freezer", "/cg-spin2"));
    /* Unknown ids are INVALID_ARGUMENT. */
    assert_int_equal(pause_resume("nope", true), 3);
    assert_int_equal(pause_resume("nope", false), 3);
}

static void test_stats(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    Grpc__Spec *s = spec_new(
        rootfs,
        ARGS("sh", "-c",
             "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; ka-payload memhog 16 --hold"));
    if (!v2 || v2_has("memory"))
        set_memory(s, 256 << 20);
    ctr_create_start(&t, "cg-stats", s);
    /* Wait for memhog to hold its 16 MiB. */
    char buf[64];
    size_t got = 0, n = 0;
    while (!strstr(out, "done") &&
           ctr_read(&t, "cg-stats", "", false, buf, sizeof(buf) - 1, &got) == 0) {
        memcpy(out + n, buf, got);
        n += got;
        out[n] = '\0';
    }
    Grpc__StatsContainerResponse *r = stats("cg-stats");
    assert_non_null(r->cgroup_stats);
    Grpc__CgroupStats *cs = r->cgroup_stats;
    assert_non_null(cs->cpu_stats);
    assert_true(cs->cpu_stats->cpu_usage->total_usage > 10000000ull); /* the loop took > 10 ms */
    assert_true(cs->cpu_stats->cpu_usage->usage_in_usermode > 0);
    if (!v2 || v2_has("memory")) {
        assert_non_null(cs->memory_stats);
        assert_true(cs->memory_stats->usage->usage >= 16u << 20);
        assert_int_equal(cs->memory_stats->usage->limit, 256u << 20);
        assert_true(cs->memory_stats->n_stats > 5);
    }
    if (!v2 || v2_has("pids")) {
        assert_non_null(cs->pids_stats);
        assert_true(cs->pids_stats->current >= 1);
    }
    if (!v2) {
        assert_true(cs->cpu_stats->cpu_usage->n_percpu_usage >= 1);
        assert_non_null(cs->blkio_stats);
        assert_true(cs->memory_stats->use_hierarchy);
    }
    bool lo = false;
    for (size_t i = 0; i < r->n_network_stats; i++)
        if (strcmp(r->network_stats[i]->name, "lo") == 0)
            lo = true;
    assert_true(lo);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    ctr_kill_remove(&t, "cg-stats");
    Grpc__StatsContainerRequest req = GRPC__STATS_CONTAINER_REQUEST__INIT;
    req.container_id = (char *)"nope";
    assert_int_equal(ctr_call(&t, "StatsContainer", &req.base,
                              &grpc__stats_container_response__descriptor, NULL),
                     3);
}

/* Devices: a node the spec creates is refused by the cgroup (v1 devices
 * controller, v2 eBPF program) unless a rule allows it. An unbound loop device
 * opens and reads EOF, so "allowed" shows as no EPERM. */
static void test_device_rules(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "read-file", "/dev/ka-loop"));
    spec_add_device(s, "/dev/ka-loop", "b", 7, 0);
    assert_int_equal(run_spec("cg-dev-deny", s), 1);
    assert_string_equal(out, "EPERM\n");

    s = spec_new(rootfs, ARGS("ka-payload", "read-file", "/dev/ka-loop"));
    spec_add_device(s, "/dev/ka-loop", "b", 7, 0);
    resources_add_device_rule(spec_resources(s), true, "b", 7, 0, "r");
    run_spec("cg-dev-allow", s);
    assert_null(strstr(out, "EPERM"));

    /* The defaults are there: /dev/null, /dev/zero. */
    s = spec_new(rootfs, ARGS("sh", "-c", "echo x > /dev/null && head -c 3 /dev/zero | wc -c"));
    assert_int_equal(run_spec("cg-dev-default", s), 0);
    assert_string_equal(out, "3\n");
    if (!v2) {
        /* The pod cgroup was set to the whitelist by its first container. (pod-a
         * of test_placement_and_removal went with its last container: a pod the
         * agent makes anew is set up anew.) */
        s = spec_new(rootfs, ARGS("ka-payload", "pause"));
        spec_set_cgroups_path(s, "/pod-d/cg-dev-pod");
        ctr_create_start(&t, "cg-dev-pod", s);
        char list[4096];
        assert_true(read_text(cgfile("devices", "/pod-d", "devices.list"), list, sizeof(list)));
        assert_non_null(strstr(list, "c 1:3 rwm"));
        assert_null(strstr(list, "a *:* rwm"));
        ctr_kill_remove(&t, "cg-dev-pod");
        assert_false(cg_dir_exists("devices", "/pod-d"));
    }
}

/* SignalProcess without exec id: SIGKILL reaches a process in the cgroup that the
 * agent did not start; other signals go to the init alone (Kata 4.x). */
static void test_signal_all_in_cgroup(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    ctr_create_start(&t, "cg-sig", s);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sleep", "sleep", "1000", (char *)NULL);
        _exit(127);
    }
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", (int)pid);
    assert_true(write_text(cgfile(v2 ? NULL : "memory", "/cg-sig", "cgroup.procs"), buf));
    if (!v2)
        assert_true(write_text(cgfile("freezer", "/cg-sig", "cgroup.procs"), buf));
    /* As Kata 4.x: an empty exec id sends any signal but SIGKILL to the init alone
     * (which ignores SIGTERM here), so the stray process lives on... */
    assert_int_equal(ctr_signal(&t, "cg-sig", "", SIGTERM), 0);
    int status;
    usleep(200 * 1000);
    assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
    /* ...and SIGKILL reaches every process in the container's cgroup. */
    assert_int_equal(ctr_signal(&t, "cg-sig", "", SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_int_equal(ctr_wait(&t, "cg-sig", "", &status), 0);
    assert_int_equal(ctr_remove(&t, "cg-sig"), 0);
}

/* seccomp: a denied syscall fails with its errnoRet, with and without
 * no_new_privileges; argument conditions; kill actions; execs get the filter. */
static void test_seccomp(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    /* mkdir/mkdirat -> EPERM; openat with O_CREAT -> EACCES. */
    for (int nnp = 0; nnp < 2; nnp++) {
        Grpc__Spec *s =
            spec_new(rootfs,
                     ARGS("sh", "-c",
                          "mkdir /tmp/ka-seccomp-probe; echo mkdir=$?; "
                          "ka-payload write-file /tmp/ka-seccomp-probe-f x; "
                          "ka-payload read-file /proc/self/comm; "
                          "ka-payload status-field NoNewPrivs; ka-payload status-field Seccomp"));
        s->process->nonewprivileges = nnp;
        Grpc__LinuxSeccomp *sc = seccomp_of(s, "SCMP_ACT_ALLOW");
        add_syscall(sc, ARGS("mkdir", "mkdirat"), "SCMP_ACT_ERRNO", 1);
        Grpc__LinuxSyscall *r = add_syscall(sc, ARGS("open"), "SCMP_ACT_ERRNO", 13);
        add_arg(r, 1, O_CREAT, O_CREAT, "SCMP_CMP_MASKED_EQ"); /* open: flags are arg 1 */
        r = add_syscall(sc, ARGS("openat"), "SCMP_ACT_ERRNO", 13);
        add_arg(r, 2, O_CREAT, O_CREAT, "SCMP_CMP_MASKED_EQ"); /* openat: arg 2 */
        char cid[32];
        snprintf(cid, sizeof(cid), "cg-scmp-%d", nnp);
        int status = run_spec(cid, s);
        char want[256];
        snprintf(want, sizeof(want), "mkdir=1\nEACCES\nka-payload\nNoNewPrivs:\t%d\nSeccomp:\t2\n",
                 nnp);
        if (strcmp(out, want) != 0)
            fail_msg("nnp=%d: got \"%s\" (status %d)", nnp, out, status);
    }
    char probe[PATH_MAX];
    snprintf(probe, sizeof(probe), "%s/tmp/ka-seccomp-probe", rootfs);
    assert_int_not_equal(access(probe, F_OK), 0);
    snprintf(probe, sizeof(probe), "%s/tmp/ka-seccomp-probe-f", rootfs);
    assert_int_not_equal(access(probe, F_OK), 0);

    /* A kill action: getppid kills the process (SIGSYS). */
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pid"));
    Grpc__LinuxSeccomp *sc = seccomp_of(s, "SCMP_ACT_ALLOW");
    add_syscall(sc, ARGS("getppid"), "SCMP_ACT_KILL_PROCESS", -1);
    assert_int_equal(run_spec("cg-scmp-kill", s), 128 + SIGSYS);

    /* An exec into the container gets the same filter. */
    s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    sc = seccomp_of(s, "SCMP_ACT_ALLOW");
    add_syscall(sc, ARGS("mkdir", "mkdirat"), "SCMP_ACT_ERRNO", 1);
    ctr_create_start(&t, "cg-scmp-exec", s);
    Grpc__Process *p = process_new(ARGS("sh", "-c", "mkdir /tmp/ka-seccomp-probe 2>&1; echo $?"));
    assert_int_equal(ctr_exec(&t, "cg-scmp-exec", "e1", p), 0);
    process_free(p);
    ctr_read_all(&t, "cg-scmp-exec", "e1", false, out, sizeof(out));
    assert_non_null(strstr(out, "Operation not permitted"));
    int status;
    assert_int_equal(ctr_wait(&t, "cg-scmp-exec", "e1", &status), 0);
    ctr_kill_remove(&t, "cg-scmp-exec");

    /* What the agent cannot honour is a clear error. */
    s = spec_new(rootfs, ARGS("true"));
    sc = seccomp_of(s, "SCMP_ACT_ALLOW");
    add_syscall(sc, ARGS("mkdir"), "SCMP_ACT_NOTIFY", -1);
    assert_int_not_equal(ctr_create(&t, "cg-scmp-notify", s), 0);
    assert_non_null(strstr(t.msg, "SCMP_ACT_NOTIFY"));
    spec_free(s);
    s = spec_new(rootfs, ARGS("true"));
    sc = seccomp_of(s, "SCMP_ACT_BOGUS");
    assert_int_not_equal(ctr_create(&t, "cg-scmp-bogus", s), 0);
    assert_non_null(strstr(t.msg, "SCMP_ACT_BOGUS"));
    spec_free(s);

    /* GetGuestDetails says so. */
    Grpc__GuestDetailsResponse *resp = ctr_guest_details(&t);
    assert_true(resp->agent_details->supports_seccomp);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
}

/* ---- tests that need controllers (v1 here; v2 when it has them) ------------------------------- */

static void test_memory_limit_oom(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    if (v2 && !v2_has("memory"))
        skip();
    struct oom_waiter w;
    oom_send(&w);
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "memhog", "128"));
    set_memory(s, 32 << 20);
    if (ctr_create(&t, "cg-oom", s) != 0)
        fail_msg("create: %s", t.msg);
    spec_free(s);
    if (v2)
        assert_int_equal(cg_u64(NULL, "/cg-oom", "memory.max"), 32u << 20);
    else
        assert_int_equal(cg_u64("memory", "/cg-oom", "memory.limit_in_bytes"), 32u << 20);
    assert_int_equal(ctr_start(&t, "cg-oom"), 0);
    ctr_read_all(&t, "cg-oom", "", false, out, sizeof(out));
    int status;
    assert_int_equal(ctr_wait(&t, "cg-oom", "", &status), 0);
    assert_int_equal(status, 128 + SIGKILL);
    assert_null(strstr(out, "done"));
    char cid[160];
    assert_int_equal(oom_recv(&w, 5000, cid, sizeof(cid)), 0);
    assert_string_equal(cid, "cg-oom");
    ttrpc_client_close(&w.c);
    assert_int_equal(ctr_remove(&t, "cg-oom"), 0);
}

static void test_pids_limit(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    if (v2 && !v2_has("pids"))
        skip();
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "forkbomb", "1000"));
    set_pids(s, 16);
    assert_int_equal(run_spec("cg-pids", s), 0);
    /* The init is one of the 16. */
    int forks = -1;
    char err_name[32] = "";
    assert_int_equal(sscanf(out, "forks=%d\nerrno=%31s", &forks, err_name), 2);
    assert_int_equal(forks, 15);
    assert_string_equal(err_name, "EAGAIN");
}

static void test_cpu_values_and_update(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    if (v2 && !v2_has("cpu"))
        skip();
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    set_cpu(s, 512, 50000, 100000, "0");
    if (!v2 || v2_has("memory"))
        set_memory(s, 64 << 20);
    if (!v2 || v2_has("pids"))
        set_pids(s, 100);
    ctr_create_start(&t, "cg-cpu", s);
    char buf[64];
    if (v2) {
        assert_int_equal(cg_u64(NULL, "/cg-cpu", "cpu.weight"), 1 + (510 * 9999) / 262142);
        assert_true(read_text(cgfile(NULL, "/cg-cpu", "cpu.max"), buf, sizeof(buf)));
        assert_string_equal(buf, "50000 100000\n");
    } else {
        assert_int_equal(cg_u64("cpu", "/cg-cpu", "cpu.shares"), 512);
        assert_int_equal(cg_u64("cpu", "/cg-cpu", "cpu.cfs_quota_us"), 50000);
        assert_int_equal(cg_u64("cpu", "/cg-cpu", "cpu.cfs_period_us"), 100000);
        assert_true(read_text(cgfile("cpuset", "/cg-cpu", "cpuset.cpus"), buf, sizeof(buf)));
        assert_string_equal(buf, "0\n");
    }

    /* UpdateContainer changes them on the running container. */
    Grpc__UpdateContainerRequest req = GRPC__UPDATE_CONTAINER_REQUEST__INIT;
    req.container_id = (char *)"cg-cpu";
    Grpc__LinuxResources res = GRPC__LINUX_RESOURCES__INIT;
    Grpc__LinuxMemory mem = GRPC__LINUX_MEMORY__INIT;
    Grpc__LinuxCPU cpu = GRPC__LINUX_CPU__INIT;
    Grpc__LinuxPids pids = GRPC__LINUX_PIDS__INIT;
    mem.limit = 48 << 20;
    cpu.quota = 20000;
    cpu.shares = 1024;
    pids.limit = 50;
    res.cpu = &cpu;
    if (!v2 || v2_has("memory"))
        res.memory = &mem;
    if (!v2 || v2_has("pids"))
        res.pids = &pids;
    req.resources = &res;
    if (ctr_call(&t, "UpdateContainer", &req.base, NULL, NULL) != 0)
        fail_msg("UpdateContainer: %s", t.msg);
    if (v2) {
        assert_true(read_text(cgfile(NULL, "/cg-cpu", "cpu.max"), buf, sizeof(buf)));
        assert_string_equal(buf, "20000 100000\n"); /* the period kept */
    } else {
        assert_int_equal(cg_u64("cpu", "/cg-cpu", "cpu.cfs_quota_us"), 20000);
        assert_int_equal(cg_u64("cpu", "/cg-cpu", "cpu.cfs_period_us"), 100000);
        assert_int_equal(cg_u64("cpu", "/cg-cpu", "cpu.shares"), 1024);
        assert_int_equal(cg_u64("memory", "/cg-cpu", "memory.limit_in_bytes"), 48u << 20);
        assert_int_equal(cg_u64("pids", "/cg-cpu", "pids.max"), 50);
    }
    /* Bad values and unknown ids. */
    cpu.cpus = (char *)"0-";
    assert_int_equal(ctr_call(&t, "UpdateContainer", &req.base, NULL, NULL), 3);
    cpu.cpus = (char *)"";
    req.container_id = (char *)"nope";
    assert_int_equal(ctr_call(&t, "UpdateContainer", &req.base, NULL, NULL), 3);
    ctr_kill_remove(&t, "cg-cpu");
}

/* DestroySandbox releases a parked GetOOMEvent with INTERNAL and an empty message;
 * the agent then exits, so this runs last. */
static void test_destroy_releases_oom_wait(void **state)
{
    (void)state;
    SKIP_IF_NO_GROUP();
    struct oom_waiter w;
    oom_send(&w);
    char cid[160];
    assert_int_equal(oom_recv(&w, 200, cid, sizeof(cid)), -1); /* parked */
    Grpc__DestroySandboxRequest req = GRPC__DESTROY_SANDBOX_REQUEST__INIT;
    assert_int_equal(ctr_call(&t, "DestroySandbox", &req.base, NULL, NULL), 0);
    assert_int_equal(oom_recv(&w, 5000, cid, sizeof(cid)), 13);
    ttrpc_client_close(&w.c);
    /* Only the pod cgroups remain below our parent: every container's is gone. */
    const char *top = v2 ? CG : CG "/memory";
    DIR *d = opendir(top);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        if (strncmp(de->d_name, "pod-", 4) != 0)
            fail_msg("cgroup %s/%s left behind", top, de->d_name);
        char sub[PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/%s", top, de->d_name);
        assert_false(has_subdirs(sub));
    }
    closedir(d);
    int status;
    assert_int_equal(waitpid(agent.pid, &status, 0), agent.pid);
    agent.pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { /* sanitizers report this way */
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "tail -n 40 %s >&2", agent.log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no agent log)\n");
        fail_msg("agent exit status 0x%x", status);
    }
    char rm[128];
    snprintf(rm, sizeof(rm), "rm -rf %s", agent.dir);
    assert_int_equal(system(rm), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placement_and_removal),
        cmocka_unit_test(test_removal_kills_what_remains),
        cmocka_unit_test(test_hundred_removed_leave_nothing),
        cmocka_unit_test(test_memory_limit_oom),
        cmocka_unit_test(test_pids_limit),
        cmocka_unit_test(test_cpu_values_and_update),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_signal_all_in_cgroup),
        cmocka_unit_test(test_device_rules),
        cmocka_unit_test(test_seccomp),
        cmocka_unit_test(test_pod_cgroups_paths),
        cmocka_unit_test(test_destroy_releases_oom_wait), /* ends the agent: last */
    };
    int failed = cmocka_run_group_tests_name("cgroup v1", tests, v1_setup, group_teardown);
    failed += cmocka_run_group_tests_name("cgroup v2", tests, v2_setup, group_teardown);
    return failed;
}
